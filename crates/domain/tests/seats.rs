mod common;

use common::*;
use domain::seats::*;
use domain::testing::given;
use domain::values::Cabin;

fn hold(booking: u128, requests: Vec<SeatRequest>) -> SeatCommand {
    SeatCommand::Hold {
        booking_id: id(booking),
        requests,
        expires_at: t0() + minutes(10),
        now: t0(),
    }
}

fn named(list: &[&str]) -> Vec<SeatRequest> {
    list.iter().map(|s| SeatRequest::Seat(seat(s))).collect()
}

fn held(booking: u128, list: &[&str]) -> SeatEvent {
    SeatEvent::SeatsHeld(SeatsHeld {
        booking_id: id(booking),
        seats: seats(list),
        expires_at: t0() + minutes(10),
    })
}

fn confirmed(booking: u128, list: &[&str]) -> SeatEvent {
    SeatEvent::SeatsConfirmed(SeatsConfirmed {
        booking_id: id(booking),
        seats: seats(list),
    })
}

#[test]
fn it_should_hold_named_seats_in_request_order() {
    let inventory = given::<SeatInventory>([inventory_opened()])
        .when(hold(BOOKING_A, named(&["10B", "10A"])))
        .then([held(BOOKING_A, &["10B", "10A"])]);
    assert_eq!(
        inventory.status_at(seat("10A"), t0()),
        Some(SeatState::Held {
            booking_id: id(BOOKING_A),
            expires_at: t0() + minutes(10)
        })
    );
    assert_eq!(inventory.available_in(Cabin::Economy, t0()), 4);
}

#[test]
fn it_should_not_hold_a_seat_that_is_already_held() {
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A"])])
        .when(hold(BOOKING_B, named(&["10A", "10B"])))
        .then_err(SeatError::SeatUnavailable(seats(&["10A"])));
}

#[test]
fn it_should_name_every_unavailable_seat() {
    let err = given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A", "11C"])])
        .when(hold(BOOKING_B, named(&["11C", "10B", "10A"])))
        .result()
        .clone()
        .unwrap_err();
    assert_eq!(err, SeatError::SeatUnavailable(seats(&["11C", "10A"])));
    assert_eq!(err.seats().len(), 2);
    assert_eq!(err.to_string(), "seats not available: 11C, 10A");
}

#[test]
fn it_should_not_hold_a_sold_seat() {
    given::<SeatInventory>([
        inventory_opened(),
        held(BOOKING_A, &["10A"]),
        confirmed(BOOKING_A, &["10A"]),
    ])
    .when(SeatCommand::Hold {
        booking_id: id(BOOKING_B),
        requests: named(&["10A"]),
        expires_at: t0() + minutes(100),
        now: t0() + minutes(50),
    })
    .then_err(SeatError::SeatUnavailable(seats(&["10A"])));
}

#[test]
fn it_should_give_cabin_requests_the_first_free_seats_not_named_in_the_same_command() {
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10B"])])
        .when(hold(
            BOOKING_B,
            vec![
                SeatRequest::Cabin(Cabin::Economy),
                SeatRequest::Seat(seat("10A")),
                SeatRequest::Cabin(Cabin::Economy),
            ],
        ))
        .then([held(BOOKING_B, &["10C", "10A", "11A"])]);
}

#[test]
fn it_should_refuse_a_cabin_request_for_more_seats_than_are_free() {
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["1A"])])
        .when(hold(
            BOOKING_B,
            vec![SeatRequest::Cabin(Cabin::Business); 4],
        ))
        .then_err(SeatError::CabinFull {
            cabin: Cabin::Business,
            requested: 4,
            available: 3,
        });
    given::<SeatInventory>([inventory_opened()])
        .when(hold(BOOKING_B, vec![SeatRequest::Cabin(Cabin::First)]))
        .then_err(SeatError::CabinFull {
            cabin: Cabin::First,
            requested: 1,
            available: 0,
        });
}

#[test]
fn it_should_refuse_duplicate_unknown_or_no_seats() {
    given::<SeatInventory>([inventory_opened()])
        .when(hold(BOOKING_A, named(&["10A", "10A"])))
        .then_err(SeatError::DuplicateSeat(seat("10A")));
    given::<SeatInventory>([inventory_opened()])
        .when(hold(BOOKING_A, named(&["30A"])))
        .then_err(SeatError::UnknownSeats(seats(&["30A"])));
    given::<SeatInventory>([inventory_opened()])
        .when(hold(BOOKING_A, vec![]))
        .then_err(SeatError::NothingRequested);
    given::<SeatInventory>([])
        .when(hold(BOOKING_A, named(&["10A"])))
        .then_err(SeatError::NotOpened);
    given::<SeatInventory>([inventory_opened()])
        .when(SeatCommand::Hold {
            booking_id: id(BOOKING_A),
            requests: named(&["10A"]),
            expires_at: t0(),
            now: t0(),
        })
        .then_err(SeatError::ExpiryNotInFuture);
}

#[test]
fn it_should_not_let_one_booking_hold_twice() {
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A"])])
        .when(hold(BOOKING_A, named(&["10B"])))
        .then_err(SeatError::AlreadyHolding(id(BOOKING_A)));
}

#[test]
fn it_should_expire_a_stale_hold_before_taking_its_seat() {
    let later = t0() + minutes(10);
    let inventory = given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A", "10B"])])
        .when(SeatCommand::Hold {
            booking_id: id(BOOKING_B),
            requests: named(&["10A"]),
            expires_at: later + minutes(10),
            now: later,
        })
        .then([
            SeatEvent::HoldExpired(HoldExpired {
                booking_id: id(BOOKING_A),
                seats: seats(&["10A", "10B"]),
            }),
            SeatEvent::SeatsHeld(SeatsHeld {
                booking_id: id(BOOKING_B),
                seats: seats(&["10A"]),
                expires_at: later + minutes(10),
            }),
        ]);
    assert_eq!(
        inventory.status_at(seat("10B"), later),
        Some(SeatState::Available)
    );
    assert!(inventory.seats_of(id(BOOKING_A)).is_empty());
}

#[test]
fn it_should_release_held_seats() {
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A", "10B"])])
        .when(SeatCommand::Release {
            booking_id: id(BOOKING_A),
            reason: "payment declined".into(),
        })
        .then([SeatEvent::SeatsReleased(SeatsReleased {
            booking_id: id(BOOKING_A),
            seats: seats(&["10A", "10B"]),
            reason: "payment declined".into(),
        })]);
}

#[test]
fn it_should_say_nothing_is_held_when_releasing_twice() {
    let released = SeatEvent::SeatsReleased(SeatsReleased {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A"]),
        reason: "x".into(),
    });
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A"]), released])
        .when(SeatCommand::Release {
            booking_id: id(BOOKING_A),
            reason: "x".into(),
        })
        .then_err(SeatError::NothingHeld(id(BOOKING_A)));
}

#[test]
fn it_should_expire_a_hold_only_once_it_has_run_out() {
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A"])])
        .when(SeatCommand::Expire {
            booking_id: id(BOOKING_A),
            now: t0() + minutes(9),
        })
        .then_err(SeatError::HoldNotExpired {
            booking_id: id(BOOKING_A),
            expires_at: t0() + minutes(10),
        });
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A"])])
        .when(SeatCommand::Expire {
            booking_id: id(BOOKING_A),
            now: t0() + minutes(10),
        })
        .then([SeatEvent::HoldExpired(HoldExpired {
            booking_id: id(BOOKING_A),
            seats: seats(&["10A"]),
        })]);
    given::<SeatInventory>([inventory_opened()])
        .when(SeatCommand::Expire {
            booking_id: id(BOOKING_A),
            now: t0(),
        })
        .then_err(SeatError::NothingHeld(id(BOOKING_A)));
}

#[test]
fn it_should_confirm_a_running_hold_as_sold() {
    let inventory = given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A"])])
        .when(SeatCommand::Confirm {
            booking_id: id(BOOKING_A),
            now: t0() + minutes(5),
        })
        .then([confirmed(BOOKING_A, &["10A"])]);
    // A sale does not lapse.
    assert_eq!(
        inventory.status_at(seat("10A"), departs()),
        Some(SeatState::Sold {
            booking_id: id(BOOKING_A)
        })
    );
}

#[test]
fn it_should_not_confirm_a_lapsed_missing_or_confirmed_hold() {
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A"])])
        .when(SeatCommand::Confirm {
            booking_id: id(BOOKING_A),
            now: t0() + minutes(10),
        })
        .then_err(SeatError::HoldHasExpired {
            booking_id: id(BOOKING_A),
            expires_at: t0() + minutes(10),
        });
    given::<SeatInventory>([inventory_opened()])
        .when(SeatCommand::Confirm {
            booking_id: id(BOOKING_A),
            now: t0(),
        })
        .then_err(SeatError::NothingHeld(id(BOOKING_A)));
    given::<SeatInventory>([
        inventory_opened(),
        held(BOOKING_A, &["10A"]),
        confirmed(BOOKING_A, &["10A"]),
    ])
    .when(SeatCommand::Confirm {
        booking_id: id(BOOKING_A),
        now: t0(),
    })
    .then_err(SeatError::AlreadyConfirmed(id(BOOKING_A)));
}

#[test]
fn it_should_return_sold_seats_to_sale() {
    let inventory = given::<SeatInventory>([
        inventory_opened(),
        held(BOOKING_A, &["10A"]),
        confirmed(BOOKING_A, &["10A"]),
    ])
    .when(SeatCommand::Return {
        booking_id: id(BOOKING_A),
        reason: "cancelled".into(),
    })
    .then([SeatEvent::SeatsReturned(SeatsReturned {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A"]),
        reason: "cancelled".into(),
    })]);
    assert!(inventory.is_available(seat("10A"), t0()));
}

#[test]
fn it_should_not_return_seats_that_were_never_sold() {
    given::<SeatInventory>([inventory_opened(), held(BOOKING_A, &["10A"])])
        .when(SeatCommand::Return {
            booking_id: id(BOOKING_A),
            reason: "x".into(),
        })
        .then_err(SeatError::NothingSold(id(BOOKING_A)));
    given::<SeatInventory>([
        inventory_opened(),
        held(BOOKING_A, &["10A"]),
        confirmed(BOOKING_A, &["10A"]),
    ])
    .when(SeatCommand::Release {
        booking_id: id(BOOKING_A),
        reason: "x".into(),
    })
    .then_err(SeatError::NothingHeld(id(BOOKING_A)));
}

#[test]
fn it_should_open_an_inventory_once() {
    given::<SeatInventory>([])
        .when(SeatCommand::OpenInventory {
            flight_id: id(FLIGHT),
            seats: vec![(seat("2A"), Cabin::Economy), (seat("1A"), Cabin::First)],
        })
        .then([SeatEvent::InventoryOpened(InventoryOpened {
            flight_id: id(FLIGHT),
            seats: vec![
                InventorySeat {
                    seat: seat("1A"),
                    cabin: Cabin::First,
                },
                InventorySeat {
                    seat: seat("2A"),
                    cabin: Cabin::Economy,
                },
            ],
        })]);
    given::<SeatInventory>([inventory_opened()])
        .when(SeatCommand::OpenInventory {
            flight_id: id(FLIGHT),
            seats: vec![(seat("1A"), Cabin::First)],
        })
        .then_err(SeatError::AlreadyOpened);
    given::<SeatInventory>([])
        .when(SeatCommand::OpenInventory {
            flight_id: id(FLIGHT),
            seats: vec![],
        })
        .then_err(SeatError::NoSeats);
    given::<SeatInventory>([])
        .when(SeatCommand::OpenInventory {
            flight_id: id(FLIGHT),
            seats: vec![(seat("1A"), Cabin::First), (seat("1A"), Cabin::Economy)],
        })
        .then_err(SeatError::DuplicateSeat(seat("1A")));
}
