mod common;

use chrono::{Duration, NaiveDate};
use common::*;
use domain::booking::*;
use domain::flight::{Flight, FlightCancelled, FlightEvent};
use domain::seats::{SeatError, SeatEvent, SeatInventory, SeatRequest};
use domain::testing::given;
use domain::values::{Cabin, Personal, TicketNumber};
use domain::Aggregate;

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

fn ticket(n: u64) -> TicketNumber {
    TicketNumber::new(125, n).unwrap()
}

fn ticketed() -> BookingEvent {
    BookingEvent::TicketsIssued(TicketsIssued {
        booking_id: id(BOOKING_A),
        tickets: vec![
            IssuedTicket::new(id(PASSENGER_1), ticket(1)),
            IssuedTicket::new(id(PASSENGER_2), ticket(2)),
        ],
        issued_at: t0(),
    })
}

fn cancel(by: CancelledBy, now: chrono::DateTime<chrono::Utc>) -> BookingCommand {
    BookingCommand::Cancel {
        reason: "change of plans".into(),
        now,
        departs_at: departs(),
        by,
    }
}

fn create() -> BookingCommand {
    BookingCommand::Create {
        booking_id: id(BOOKING_A),
        pnr: pnr(),
        flight_id: id(FLIGHT),
        customer_id: id(CUSTOMER),
        created_by: id(CUSTOMER),
        passengers: vec![
            NewPassenger {
                passenger_id: id(PASSENGER_1),
                kind: PassengerType::Adult,
                seat: Some(seat("10A")),
                travels_with: None,
                cabin: Cabin::Economy,
                fare: usd("420"),
                details: ada(),
            },
            NewPassenger {
                passenger_id: id(PASSENGER_2),
                kind: PassengerType::Adult,
                seat: Some(seat("10B")),
                travels_with: None,
                cabin: Cabin::Economy,
                fare: usd("420"),
                details: alan(),
            },
        ],
        connections: vec![],
        total: usd("840.00"),
        discount: None,
        hold_expires_at: t0() + minutes(10),
        now: t0(),
    }
}

fn with_passengers(f: impl FnOnce(&mut Vec<NewPassenger>)) -> BookingCommand {
    let mut cmd = create();
    if let BookingCommand::Create { passengers, .. } = &mut cmd {
        f(passengers);
    }
    cmd
}

#[test]
fn it_should_create_a_held_booking_with_personal_data_keyed_by_the_customer() {
    let booking = given::<Booking>([])
        .when(create())
        .then([booking_created()]);
    assert_eq!(booking.status, Some(BookingStatus::Held));
    assert_eq!(booking.seats(), seats(&["10A", "10B"]));
    assert_eq!(booking.amount_paid(), Some(usd("0")));
}

#[test]
fn it_should_not_create_a_booking_twice() {
    given::<Booking>([booking_created()])
        .when(create())
        .then_err(BookingError::AlreadyCreated);
}

#[test]
fn it_should_refuse_invalid_passengers() {
    given::<Booking>([])
        .when(with_passengers(|p| p.clear()))
        .then_err(BookingError::PassengerCount);
    given::<Booking>([])
        .when(with_passengers(|p| p[0].details.first_name = " ".into()))
        .then_err(BookingError::InvalidName("first_name"));
    given::<Booking>([])
        .when(with_passengers(|p| {
            p[1].details.last_name = "x".repeat(101)
        }))
        .then_err(BookingError::InvalidName("last_name"));
    given::<Booking>([])
        .when(with_passengers(|p| {
            p[0].details.date_of_birth = NaiveDate::from_ymd_opt(2031, 1, 1).unwrap()
        }))
        .then_err(BookingError::DateOfBirthInFuture);
    given::<Booking>([])
        .when(with_passengers(|p| p[1].seat = Some(seat("10A"))))
        .then_err(BookingError::DuplicateSeat(seat("10A")));
    given::<Booking>([])
        .when(with_passengers(|p| p[1].fare = usd("1")))
        .then_err(BookingError::TotalMismatch {
            total: usd("840"),
            fares: usd("421"),
        });
    given::<Booking>([])
        .when(with_passengers(|p| {
            let first = p[0].clone();
            p.extend(std::iter::repeat_n(first, 8));
        }))
        .then_err(BookingError::PassengerCount);
    assert_eq!(
        BookingError::InvalidName("first_name").field(),
        Some("first_name")
    );
}

#[test]
fn it_should_submit_payment_while_the_hold_runs() {
    given::<Booking>([booking_created()])
        .when(BookingCommand::SubmitPayment {
            payment_id: id(9),
            now: t0(),
        })
        .then([submitted()]);
    given::<Booking>([booking_created()])
        .when(BookingCommand::SubmitPayment {
            payment_id: id(9),
            now: t0() + minutes(10),
        })
        .then_err(BookingError::HoldExpired(t0() + minutes(10)));
    given::<Booking>([booking_created(), submitted()])
        .when(BookingCommand::SubmitPayment {
            payment_id: id(9),
            now: t0(),
        })
        .then_err(BookingError::InvalidState {
            status: BookingStatus::PaymentPending,
            action: "submit payment",
        });
    given::<Booking>([])
        .when(BookingCommand::SubmitPayment {
            payment_id: id(9),
            now: t0(),
        })
        .then_err(BookingError::NotCreated);
}

#[test]
fn it_should_confirm_a_paid_booking() {
    let booking = given::<Booking>([booking_created(), submitted()])
        .when(BookingCommand::Confirm { now: t0() })
        .then([confirmed()]);
    assert_eq!(booking.amount_paid(), Some(usd("840")));
    given::<Booking>([booking_created()])
        .when(BookingCommand::Confirm { now: t0() })
        .then_err(BookingError::InvalidState {
            status: BookingStatus::Held,
            action: "confirm",
        });
}

#[test]
fn it_should_record_a_failed_payment() {
    let booking = given::<Booking>([booking_created(), submitted()])
        .when(BookingCommand::MarkPaymentFailed {
            reason: "card declined".into(),
        })
        .then([BookingEvent::BookingPaymentFailed(BookingPaymentFailed {
            booking_id: id(BOOKING_A),
            reason: "card declined".into(),
        })]);
    assert_eq!(booking.status, Some(BookingStatus::PaymentFailed));
    given::<Booking>([booking_created()])
        .when(BookingCommand::MarkPaymentFailed { reason: "x".into() })
        .then_err(BookingError::InvalidState {
            status: BookingStatus::Held,
            action: "mark payment failed",
        });
}

#[test]
fn it_should_expire_a_booking_whose_hold_ran_out() {
    let expired = BookingEvent::BookingExpired(BookingExpired {
        booking_id: id(BOOKING_A),
        expired_at: t0() + minutes(10),
    });
    given::<Booking>([booking_created()])
        .when(BookingCommand::Expire {
            now: t0() + minutes(10),
        })
        .then([expired.clone()]);
    given::<Booking>([booking_created(), submitted()])
        .when(BookingCommand::Expire {
            now: t0() + minutes(10),
        })
        .then([expired.clone()]);
    given::<Booking>([booking_created()])
        .when(BookingCommand::Expire {
            now: t0() + minutes(9),
        })
        .then_err(BookingError::HoldNotExpired(t0() + minutes(10)));
    given::<Booking>([booking_created(), expired])
        .when(BookingCommand::Expire {
            now: t0() + minutes(10),
        })
        .then_err(BookingError::InvalidState {
            status: BookingStatus::Expired,
            action: "expire",
        });
}

#[test]
fn it_should_issue_one_ticket_per_passenger() {
    let booking = given::<Booking>([booking_created(), submitted(), confirmed()])
        .when(BookingCommand::IssueTickets {
            tickets: vec![
                IssuedTicket::new(id(PASSENGER_1), ticket(1)),
                IssuedTicket::new(id(PASSENGER_2), ticket(2)),
            ],
            now: t0(),
        })
        .then([ticketed()]);
    assert_eq!(booking.status, Some(BookingStatus::Ticketed));
    assert_eq!(booking.passengers[1].ticket_number, Some(ticket(2)));
}

#[test]
fn it_should_refuse_tickets_that_do_not_match_the_passengers() {
    let history = [booking_created(), submitted(), confirmed()];
    given::<Booking>(history.clone())
        .when(BookingCommand::IssueTickets {
            tickets: vec![IssuedTicket::new(id(PASSENGER_1), ticket(1))],
            now: t0(),
        })
        .then_err(BookingError::TicketsMismatch);
    given::<Booking>(history.clone())
        .when(BookingCommand::IssueTickets {
            tickets: vec![
                IssuedTicket::new(id(PASSENGER_1), ticket(1)),
                IssuedTicket::new(id(PASSENGER_1), ticket(2)),
            ],
            now: t0(),
        })
        .then_err(BookingError::TicketsMismatch);
    given::<Booking>(history)
        .when(BookingCommand::IssueTickets {
            tickets: vec![
                IssuedTicket::new(id(PASSENGER_1), ticket(1)),
                IssuedTicket::new(id(PASSENGER_2), ticket(1)),
            ],
            now: t0(),
        })
        .then_err(BookingError::TicketsMismatch);
    given::<Booking>([booking_created()])
        .when(BookingCommand::IssueTickets {
            tickets: vec![],
            now: t0(),
        })
        .then_err(BookingError::InvalidState {
            status: BookingStatus::Held,
            action: "issue tickets",
        });
}

#[test]
fn it_should_fail_a_booking_that_cannot_be_fulfilled() {
    given::<Booking>([booking_created(), submitted(), confirmed()])
        .when(BookingCommand::Fail {
            reason: "ticketing down".into(),
        })
        .then([BookingEvent::BookingFailed(BookingFailed {
            booking_id: id(BOOKING_A),
            reason: "ticketing down".into(),
        })]);
    given::<Booking>([booking_created(), submitted(), confirmed(), ticketed()])
        .when(BookingCommand::Fail { reason: "x".into() })
        .then_err(BookingError::InvalidState {
            status: BookingStatus::Ticketed,
            action: "fail",
        });
}

#[test]
fn it_should_refund_nothing_when_cancelling_an_unpaid_booking() {
    given::<Booking>([booking_created()])
        .when(cancel(CancelledBy::Customer, t0()))
        .then_events(|e| matches!(&e[0], BookingEvent::BookingCancelled(c) if c.refund == usd("0") && c.previous_status == BookingStatus::Held));
}

#[test]
fn it_should_refund_everything_more_than_a_day_before_departure() {
    given::<Booking>([booking_created(), submitted(), confirmed(), ticketed()])
        .when(cancel(CancelledBy::Customer, t0()))
        .then([BookingEvent::BookingCancelled(BookingCancelled {
            booking_id: id(BOOKING_A),
            reason: "change of plans".into(),
            refund: usd("840.00"),
            cancelled_by: CancelledBy::Customer,
            previous_status: BookingStatus::Ticketed,
            cancelled_at: t0(),
        })]);
}

#[test]
fn it_should_refund_half_within_a_day_of_departure() {
    given::<Booking>([booking_created(), submitted(), confirmed()])
        .when(cancel(CancelledBy::Agent, departs() - Duration::hours(2)))
        .then_events(
            |e| matches!(&e[0], BookingEvent::BookingCancelled(c) if c.refund == usd("420.00")),
        );
}

#[test]
fn it_should_refund_everything_when_the_flight_is_cancelled() {
    given::<Booking>([booking_created(), submitted(), confirmed()])
        .when(cancel(
            CancelledBy::FlightCancelled,
            departs() - Duration::hours(2),
        ))
        .then_events(
            |e| matches!(&e[0], BookingEvent::BookingCancelled(c) if c.refund == usd("840.00")),
        );
    given::<Booking>([booking_created(), submitted()])
        .when(cancel(CancelledBy::FlightCancelled, t0()))
        .then_events(
            |e| matches!(&e[0], BookingEvent::BookingCancelled(c) if c.refund == usd("840.00")),
        );
}

#[test]
fn it_should_not_cancel_after_departure_or_twice_or_mid_payment() {
    given::<Booking>([booking_created(), submitted(), confirmed()])
        .when(cancel(CancelledBy::Customer, departs()))
        .then_err(BookingError::Departed);
    given::<Booking>([booking_created()])
        .when(cancel(CancelledBy::Customer, departs()))
        .then_err(BookingError::Departed);
    let (_, cancelled) = given::<Booking>([booking_created()])
        .when(cancel(CancelledBy::Customer, t0()))
        .then_ok();
    domain::testing::given_state(cancelled)
        .when(cancel(CancelledBy::Admin, t0()))
        .then_err(BookingError::AlreadyCancelled);
    given::<Booking>([booking_created(), submitted()])
        .when(cancel(CancelledBy::Customer, t0()))
        .then_err(BookingError::InvalidState {
            status: BookingStatus::PaymentPending,
            action: "cancel",
        });
}

#[test]
fn it_should_update_a_passenger_until_ticketed() {
    let mut details = ada();
    details.phone = Some("+1 555 0100 123".into());
    let booking = given::<Booking>([booking_created(), submitted(), confirmed()])
        .when(BookingCommand::UpdatePassenger {
            passenger_id: id(PASSENGER_1),
            details: details.clone(),
            now: t0(),
        })
        .then([BookingEvent::PassengerUpdated(PassengerUpdated {
            booking_id: id(BOOKING_A),
            passenger_id: id(PASSENGER_1),
            subject: id(CUSTOMER),
            personal: Personal::Known(details.clone()),
            updated_at: t0(),
        })]);
    assert_eq!(
        booking.passengers[0].personal,
        Personal::Known(details.clone())
    );
    given::<Booking>([booking_created(), submitted(), confirmed(), ticketed()])
        .when(BookingCommand::UpdatePassenger {
            passenger_id: id(PASSENGER_1),
            details: details.clone(),
            now: t0(),
        })
        .then_err(BookingError::InvalidState {
            status: BookingStatus::Ticketed,
            action: "update a passenger",
        });
    given::<Booking>([booking_created()])
        .when(BookingCommand::UpdatePassenger {
            passenger_id: id(77),
            details,
            now: t0(),
        })
        .then_err(BookingError::UnknownPassenger(id(77)));
}

#[test]
fn it_should_fold_a_booking_whose_personal_data_was_shredded() {
    let BookingEvent::BookingCreated(mut e) = booking_created() else {
        unreachable!()
    };
    e.personal = Personal::Erased;
    let booking = Booking::fold(&[BookingEvent::BookingCreated(e)]);
    assert!(booking.passengers.iter().all(|p| p.personal.is_erased()));
    assert_eq!(booking.seats(), seats(&["10A", "10B"]));
}

fn place(requests: Vec<SeatRequest>) -> PlaceBooking {
    PlaceBooking {
        booking_id: id(BOOKING_B),
        pnr: pnr(),
        customer_id: id(CUSTOMER),
        created_by: id(CUSTOMER),
        passengers: requests
            .into_iter()
            .enumerate()
            .map(|(i, seat)| PassengerRequest {
                passenger_id: id(5000 + i as u128),
                kind: PassengerType::Adult,
                seat: Some(seat),
                travels_with: None,
                details: ada(),
            })
            .collect(),
        hold_expires_at: t0() + minutes(10),
        now: t0(),
    }
}

#[test]
fn it_should_place_a_booking_priced_by_the_cabin_of_each_seat() {
    let (flight_events, seat_events) = scheduled();
    let flight = Flight::fold(&flight_events);
    let inventory = SeatInventory::fold(&seat_events);
    let Placed {
        seats: seats_out,
        booking: booking_out,
        ..
    } = place_booking(
        &flight,
        &inventory,
        None,
        place(vec![
            SeatRequest::Seat(seat("1C")),
            SeatRequest::Cabin(Cabin::Economy),
        ]),
    )
    .unwrap();
    assert!(
        matches!(&seats_out[..], [SeatEvent::SeatsHeld(h)] if h.seats == seats(&["1C", "10A"]))
    );
    let booking = Booking::fold(&booking_out);
    assert_eq!(booking.info.unwrap().total, usd("2220.00"));
    assert_eq!(booking.passengers[0].cabin, Cabin::Business);
    assert_eq!(booking.passengers[1].fare, usd("420.00"));
}

#[test]
fn it_should_not_place_a_booking_on_a_taken_seat_or_a_cancelled_or_departed_flight() {
    let (flight_events, seat_events) = scheduled();
    let flight = Flight::fold(&flight_events);
    let mut inventory = SeatInventory::fold(&seat_events);
    let Placed { seats: held, .. } = place_booking(
        &flight,
        &inventory,
        None,
        place(vec![SeatRequest::Seat(seat("10A"))]),
    )
    .unwrap();
    inventory = held.iter().fold(inventory, |s, e| s.evolve(e));
    let mut other = place(vec![SeatRequest::Seat(seat("10A"))]);
    other.booking_id = id(BOOKING_A);
    assert_eq!(
        place_booking(&flight, &inventory, None, other.clone()),
        Err(PlaceBookingError::Seats(SeatError::SeatUnavailable(seats(
            &["10A"]
        ))))
    );
    let late = PlaceBooking {
        now: departs(),
        hold_expires_at: departs() + minutes(10),
        ..other.clone()
    };
    assert_eq!(
        place_booking(&flight, &inventory, None, late),
        Err(PlaceBookingError::FlightDeparted)
    );
    let cancelled = flight
        .clone()
        .evolve(&FlightEvent::FlightCancelled(FlightCancelled {
            flight_id: id(FLIGHT),
            reason: "x".into(),
            cancelled_at: t0(),
        }));
    assert_eq!(
        place_booking(&cancelled, &inventory, None, other.clone()),
        Err(PlaceBookingError::FlightCancelled)
    );
    let mut nameless = other;
    nameless.passengers[0].details.first_name.clear();
    let err = place_booking(&flight, &inventory, None, nameless).unwrap_err();
    assert_eq!(err.field(), Some("first_name"));
}
