//! Given/when/then for changing a passenger's seat: the seat inventory's
//! exchange, the booking's record of it, and the decision over both.
mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use domain::booking::*;
use domain::flight::{Flight, FlightCancelled, FlightEvent};
use domain::seats::*;
use domain::testing::given;
use domain::values::{Cabin, Personal};
use domain::Aggregate;

const INFANT: u128 = 1003;

fn held(booking: u128, list: &[&str], expires_at: DateTime<Utc>) -> SeatEvent {
    SeatEvent::SeatsHeld(SeatsHeld {
        booking_id: id(booking),
        seats: seats(list),
        expires_at,
    })
}

/// Booking A's two economy seats, held for 10 minutes.
fn a_held() -> SeatEvent {
    held(BOOKING_A, &["10A", "10B"], t0() + minutes(10))
}

fn a_sold() -> SeatEvent {
    SeatEvent::SeatsConfirmed(SeatsConfirmed {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A", "10B"]),
    })
}

fn change(from: &str, to: &str, now: DateTime<Utc>) -> SeatCommand {
    SeatCommand::Change {
        booking_id: id(BOOKING_A),
        from: seat(from),
        to: seat(to),
        now,
    }
}

fn seat_changed(from: &str, to: &str) -> SeatEvent {
    SeatEvent::SeatChanged(domain::seats::SeatChanged {
        booking_id: id(BOOKING_A),
        from: seat(from),
        to: seat(to),
    })
}

/// Before the hold runs out.
fn soon() -> DateTime<Utc> {
    t0() + minutes(5)
}

/// After the hold ran out.
fn late() -> DateTime<Utc> {
    t0() + minutes(11)
}

// The seat inventory.

#[test]
fn it_should_move_a_held_seat_with_its_hold_and_free_the_old_one() {
    let inventory = given::<SeatInventory>([inventory_opened(), a_held()])
        .when(change("10A", "11C", soon()))
        .then([seat_changed("10A", "11C")]);
    assert_eq!(
        inventory.status_at(seat("11C"), soon()),
        Some(SeatState::Held {
            booking_id: id(BOOKING_A),
            expires_at: t0() + minutes(10),
        })
    );
    assert!(inventory.is_available(seat("10A"), soon()));
    assert_eq!(inventory.seats_of(id(BOOKING_A)), seats(&["10B", "11C"]));
    assert_eq!(inventory.available_in(Cabin::Economy, soon()), 4);
}

#[test]
fn it_should_move_a_sold_seat_and_keep_it_sold() {
    let inventory = given::<SeatInventory>([inventory_opened(), a_held(), a_sold()])
        .when(change("10B", "11A", late()))
        .then([seat_changed("10B", "11A")]);
    assert_eq!(
        inventory.status_at(seat("11A"), late()),
        Some(SeatState::Sold {
            booking_id: id(BOOKING_A)
        })
    );
    assert!(inventory.is_available(seat("10B"), late()));
}

#[test]
fn it_should_not_move_to_a_seat_another_booking_holds_or_bought() {
    let b_sold = SeatEvent::SeatsConfirmed(SeatsConfirmed {
        booking_id: id(BOOKING_B),
        seats: seats(&["11A"]),
    });
    let history = [
        inventory_opened(),
        a_held(),
        held(BOOKING_B, &["11A"], t0() + minutes(10)),
        b_sold,
        held(300, &["11B"], t0() + minutes(10)),
    ];
    given::<SeatInventory>(history.clone())
        .when(change("10A", "11A", soon()))
        .then_err(SeatError::SeatUnavailable(seats(&["11A"])));
    given::<SeatInventory>(history)
        .when(change("10A", "11B", soon()))
        .then_err(SeatError::SeatUnavailable(seats(&["11B"])));
}

#[test]
fn it_should_not_move_to_a_seat_of_another_passenger_of_the_same_booking() {
    given::<SeatInventory>([inventory_opened(), a_held()])
        .when(change("10A", "10B", soon()))
        .then_err(SeatError::SeatUnavailable(seats(&["10B"])));
}

#[test]
fn it_should_take_a_seat_whose_hold_lapsed_recording_the_lapse_first() {
    let b_lapsing = held(BOOKING_B, &["11A", "11B"], t0() + minutes(2));
    let inventory = given::<SeatInventory>([inventory_opened(), b_lapsing, a_held()])
        .when(change("10A", "11A", soon()))
        .then([
            SeatEvent::HoldExpired(HoldExpired {
                booking_id: id(BOOKING_B),
                seats: seats(&["11A", "11B"]),
            }),
            seat_changed("10A", "11A"),
        ]);
    assert_eq!(
        inventory
            .status_at(seat("11A"), soon())
            .unwrap()
            .booking_id(),
        Some(id(BOOKING_A))
    );
}

#[test]
fn it_should_not_change_cabin_since_that_changes_the_fare() {
    given::<SeatInventory>([inventory_opened(), a_held()])
        .when(change("10A", "1A", soon()))
        .then_err(SeatError::OtherCabin {
            from: seat("10A"),
            from_cabin: Cabin::Economy,
            to: seat("1A"),
            to_cabin: Cabin::Business,
        });
}

#[test]
fn it_should_not_move_to_a_seat_the_flight_does_not_have() {
    given::<SeatInventory>([inventory_opened(), a_held()])
        .when(change("10A", "30F", soon()))
        .then_err(SeatError::UnknownSeats(seats(&["30F"])));
}

#[test]
fn it_should_only_move_a_seat_the_booking_has() {
    given::<SeatInventory>([
        inventory_opened(),
        a_held(),
        held(BOOKING_B, &["11A"], t0() + minutes(10)),
    ])
    .when(change("11A", "11B", soon()))
    .then_err(SeatError::NotTheBookings {
        booking_id: id(BOOKING_A),
        seat: seat("11A"),
    });
    given::<SeatInventory>([inventory_opened(), a_held()])
        .when(change("11C", "11B", soon()))
        .then_err(SeatError::NotTheBookings {
            booking_id: id(BOOKING_A),
            seat: seat("11C"),
        });
}

#[test]
fn it_should_not_move_a_seat_whose_hold_lapsed() {
    given::<SeatInventory>([inventory_opened(), a_held()])
        .when(change("10A", "11A", late()))
        .then_err(SeatError::HoldHasExpired {
            booking_id: id(BOOKING_A),
            expires_at: t0() + minutes(10),
        });
}

#[test]
fn it_should_change_nothing_when_the_seat_is_the_same() {
    given::<SeatInventory>([inventory_opened(), a_held()])
        .when(change("10A", "10A", soon()))
        .then([]);
}

#[test]
fn it_should_not_let_a_replayed_change_move_a_seat_the_booking_no_longer_has() {
    // 10A went back on sale and to booking B: a stale change is ignored.
    let released = SeatEvent::SeatsReleased(SeatsReleased {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A", "10B"]),
        reason: "gone".into(),
    });
    let inventory = SeatInventory::fold(&[
        inventory_opened(),
        a_held(),
        released,
        held(BOOKING_B, &["10A"], t0() + minutes(10)),
        seat_changed("10A", "11A"),
    ]);
    assert_eq!(
        inventory
            .status_at(seat("10A"), soon())
            .unwrap()
            .booking_id(),
        Some(id(BOOKING_B))
    );
    assert!(inventory.is_available(seat("11A"), soon()));
}

// The booking.

fn submitted() -> BookingEvent {
    BookingEvent::PaymentSubmitted(PaymentSubmitted {
        booking_id: id(BOOKING_A),
        payment_id: id(9),
        amount: usd("840.00"),
        submitted_at: t0(),
    })
}

fn confirmed() -> BookingEvent {
    BookingEvent::BookingConfirmed(BookingConfirmed {
        booking_id: id(BOOKING_A),
        confirmed_at: t0(),
    })
}

fn cancelled() -> BookingEvent {
    BookingEvent::BookingCancelled(BookingCancelled {
        booking_id: id(BOOKING_A),
        reason: "change of plans".into(),
        refund: usd("0.00"),
        cancelled_by: CancelledBy::Customer,
        previous_status: BookingStatus::Held,
        cancelled_at: t0(),
    })
}

/// Booking A with an infant on passenger 1's lap.
fn created_with_infant() -> BookingEvent {
    let BookingEvent::BookingCreated(mut created) = booking_created() else {
        unreachable!()
    };
    created.passengers.push(BookedPassenger {
        passenger_id: id(INFANT),
        kind: PassengerType::Infant,
        seat: None,
        travels_with: Some(id(PASSENGER_1)),
        cabin: Cabin::Economy,
        fare: usd("42.00"),
    });
    created.total = usd("882.00");
    BookingEvent::BookingCreated(created)
}

fn move_passenger(passenger: u128, to: &str, now: DateTime<Utc>) -> BookingCommand {
    BookingCommand::ChangeSeat {
        passenger_id: id(passenger),
        flight_id: id(FLIGHT),
        seat: seat(to),
        now,
    }
}

fn passenger_moved(passenger: u128, from: &str, to: &str, now: DateTime<Utc>) -> BookingEvent {
    BookingEvent::PassengerSeatChanged(PassengerSeatChanged {
        booking_id: id(BOOKING_A),
        passenger_id: id(passenger),
        flight_id: None,
        from: seat(from),
        to: seat(to),
        changed_at: now,
    })
}

#[test]
fn it_should_record_the_passengers_new_seat() {
    let booking = given::<Booking>([booking_created()])
        .when(move_passenger(PASSENGER_2, "11C", soon()))
        .then([passenger_moved(PASSENGER_2, "10B", "11C", soon())]);
    assert_eq!(booking.seats(), seats(&["10A", "11C"]));
    assert_eq!(booking.status, Some(BookingStatus::Held));
}

#[test]
fn it_should_change_a_seat_while_paying_paid_or_ticketed() {
    for history in [
        vec![booking_created(), submitted()],
        vec![booking_created(), submitted(), confirmed()],
        vec![
            booking_created(),
            submitted(),
            confirmed(),
            tickets_issued(),
        ],
    ] {
        given::<Booking>(history)
            .when(move_passenger(PASSENGER_1, "11A", soon()))
            .then([passenger_moved(PASSENGER_1, "10A", "11A", soon())]);
    }
}

#[test]
fn it_should_not_change_a_seat_of_a_booking_that_is_over() {
    given::<Booking>([booking_created(), cancelled()])
        .when(move_passenger(PASSENGER_1, "11A", soon()))
        .then_err(BookingError::InvalidState {
            status: BookingStatus::Cancelled,
            action: "change a seat",
        });
    given::<Booking>([])
        .when(move_passenger(PASSENGER_1, "11A", soon()))
        .then_err(BookingError::NotCreated);
}

#[test]
fn it_should_not_change_a_seat_once_an_unpaid_hold_ran_out() {
    given::<Booking>([booking_created()])
        .when(move_passenger(PASSENGER_1, "11A", late()))
        .then_err(BookingError::HoldExpired(t0() + minutes(10)));
    // Paid: the seats are sold, the hold's expiry no longer matters.
    given::<Booking>([booking_created(), submitted(), confirmed()])
        .when(move_passenger(PASSENGER_1, "11A", late()))
        .then([passenger_moved(PASSENGER_1, "10A", "11A", late())]);
}

#[test]
fn it_should_not_change_the_seat_of_an_unknown_passenger() {
    given::<Booking>([booking_created()])
        .when(move_passenger(999, "11A", soon()))
        .then_err(BookingError::UnknownPassenger(id(999)));
}

#[test]
fn it_should_not_give_an_infant_a_seat() {
    given::<Booking>([created_with_infant()])
        .when(move_passenger(INFANT, "11A", soon()))
        .then_err(BookingError::NoSeatToChange(id(INFANT)));
}

#[test]
fn it_should_record_nothing_when_the_passenger_already_sits_there() {
    given::<Booking>([booking_created()])
        .when(move_passenger(PASSENGER_1, "10A", soon()))
        .then([]);
}

#[test]
fn it_should_keep_the_infant_on_the_lap_of_an_adult_who_moves() {
    let booking = given::<Booking>([created_with_infant()])
        .when(move_passenger(PASSENGER_1, "11A", soon()))
        .then([passenger_moved(PASSENGER_1, "10A", "11A", soon())]);
    let infant = booking
        .passengers
        .iter()
        .find(|p| p.passenger_id == id(INFANT))
        .unwrap();
    assert_eq!(
        (infant.seat, infant.travels_with),
        (None, Some(id(PASSENGER_1)))
    );
    assert!(matches!(
        infant.personal,
        Personal::Known(_) | Personal::Erased
    ));
}

// Both together.

struct Scene {
    flight: Flight,
    booking: Booking,
    seats: SeatInventory,
}

fn scene(booking: Vec<BookingEvent>, seat_events: Vec<SeatEvent>) -> Scene {
    let mut history = vec![inventory_opened()];
    history.extend(seat_events);
    Scene {
        flight: Flight::fold(&flight_events()),
        booking: Booking::fold(&booking),
        seats: SeatInventory::fold(&history),
    }
}

impl Scene {
    fn change(
        &self,
        passenger: u128,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<(Vec<BookingEvent>, Vec<SeatEvent>), ChangeSeatError> {
        change_seat(
            &self.booking,
            &self.flight,
            &self.seats,
            ChangeSeat {
                passenger_id: id(passenger),
                seat: seat(to),
                now,
            },
        )
    }
}

#[test]
fn it_should_change_a_held_seat_on_the_booking_and_the_flight_together() {
    let s = scene(vec![booking_created()], vec![a_held()]);
    assert_eq!(
        s.change(PASSENGER_2, "11C", soon()),
        Ok((
            vec![passenger_moved(PASSENGER_2, "10B", "11C", soon())],
            vec![seat_changed("10B", "11C")]
        ))
    );
}

#[test]
fn it_should_change_a_ticketed_passengers_sold_seat() {
    let s = scene(
        vec![
            booking_created(),
            submitted(),
            confirmed(),
            tickets_issued(),
        ],
        vec![a_held(), a_sold()],
    );
    let (booking, seat_events) = s.change(PASSENGER_1, "11B", late()).unwrap();
    assert_eq!(
        booking,
        vec![passenger_moved(PASSENGER_1, "10A", "11B", late())]
    );
    assert_eq!(seat_events, vec![seat_changed("10A", "11B")]);
    let after = seat_events.iter().fold(s.seats, |i, e| i.evolve(e));
    assert_eq!(
        after.status_at(seat("11B"), late()),
        Some(SeatState::Sold {
            booking_id: id(BOOKING_A)
        })
    );
}

#[test]
fn it_should_change_nothing_when_the_new_seat_is_taken() {
    let s = scene(
        vec![booking_created()],
        vec![a_held(), held(BOOKING_B, &["11C"], t0() + minutes(10))],
    );
    assert_eq!(
        s.change(PASSENGER_1, "11C", soon()),
        Err(ChangeSeatError::Seats(SeatError::SeatUnavailable(seats(
            &["11C"]
        ))))
    );
}

#[test]
fn it_should_refuse_another_cabin_for_a_passenger() {
    let s = scene(vec![booking_created()], vec![a_held()]);
    assert!(matches!(
        s.change(PASSENGER_1, "2C", soon()),
        Err(ChangeSeatError::Seats(SeatError::OtherCabin { .. }))
    ));
}

#[test]
fn it_should_answer_the_same_seat_with_no_events() {
    let s = scene(vec![booking_created()], vec![a_held()]);
    assert_eq!(s.change(PASSENGER_1, "10A", soon()), Ok((vec![], vec![])));
}

#[test]
fn it_should_not_change_an_infants_seat() {
    let s = scene(vec![created_with_infant()], vec![a_held()]);
    assert_eq!(
        s.change(INFANT, "11A", soon()),
        Err(ChangeSeatError::Booking(BookingError::NoSeatToChange(id(
            INFANT
        ))))
    );
}

#[test]
fn it_should_not_change_a_seat_once_the_flight_departed_or_was_cancelled() {
    let paid = vec![booking_created(), submitted(), confirmed()];
    let s = scene(paid.clone(), vec![a_held(), a_sold()]);
    assert_eq!(
        s.change(PASSENGER_1, "11A", departs()),
        Err(ChangeSeatError::FlightDeparted)
    );
    let mut s = scene(paid, vec![a_held(), a_sold()]);
    s.flight = s
        .flight
        .evolve(&FlightEvent::FlightCancelled(FlightCancelled {
            flight_id: id(FLIGHT),
            reason: "strike".into(),
            cancelled_at: t0(),
        }));
    assert_eq!(
        s.change(PASSENGER_1, "11A", departs() - Duration::days(1)),
        Err(ChangeSeatError::FlightCancelled)
    );
}
