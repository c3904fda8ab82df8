//! Given/when/then for the decisions that move a booking and its flight's
//! seats together: the fulfilment's steps (confirm, expire, fail the
//! payment, fail ticketing) and the cancellation of a booking.
mod common;

use chrono::Duration;
use common::*;
use domain::booking::*;
use domain::flight::Flight;
use domain::fulfilment::{self, StepEvents, StepRefused};
use domain::seats::{SeatEvent, SeatInventory, SeatsConfirmed, SeatsHeld, SeatsReleased};
use domain::Aggregate;

/// A booking and its flight's seats, as their histories fold.
struct Given {
    flight: Flight,
    booking: Booking,
    seats: SeatInventory,
}

fn given(booking: Vec<BookingEvent>, seats: Vec<SeatEvent>) -> Given {
    let mut seat_history = vec![inventory_opened()];
    seat_history.extend(seats);
    Given {
        flight: Flight::fold(&flight_events()),
        booking: Booking::fold(&booking),
        seats: SeatInventory::fold(&seat_history),
    }
}

impl Given {
    fn when(
        &self,
        step: impl FnOnce(&Booking, &[&SeatInventory]) -> Result<StepEvents, StepRefused>,
    ) -> Result<StepEvents, StepRefused> {
        step(&self.booking, &[&self.seats])
    }
}

/// The event names of a step on the one flight, booking's first.
fn names((booking, seats): &StepEvents) -> (Vec<&'static str>, Vec<&'static str>) {
    use domain::DomainEvent;
    assert_eq!(seats.len(), 1, "one flight, one list of seat events");
    (
        booking.iter().map(|e| e.event_type()).collect(),
        seats[0].iter().map(|e| e.event_type()).collect(),
    )
}

fn held() -> SeatEvent {
    SeatEvent::SeatsHeld(SeatsHeld {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A", "10B"]),
        expires_at: t0() + minutes(10),
    })
}

fn sold() -> SeatEvent {
    SeatEvent::SeatsConfirmed(SeatsConfirmed {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A", "10B"]),
    })
}

fn released() -> SeatEvent {
    SeatEvent::SeatsReleased(SeatsReleased {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A", "10B"]),
        reason: "gone".into(),
    })
}

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

/// Before the hold runs out.
fn soon() -> chrono::DateTime<chrono::Utc> {
    t0() + minutes(5)
}

/// After the hold ran out.
fn late() -> chrono::DateTime<chrono::Utc> {
    t0() + minutes(11)
}

#[test]
fn it_should_confirm_a_paid_booking_and_sell_its_held_seats() {
    let then = given(vec![booking_created(), submitted()], vec![held()])
        .when(|b, s| fulfilment::confirm(b, s, soon()))
        .unwrap();
    assert_eq!(
        names(&then),
        (vec!["BookingConfirmed"], vec!["SeatsConfirmed"])
    );
}

#[test]
fn it_should_confirm_without_selling_the_seats_twice() {
    // A retried step: the seats were sold by the first try.
    let then = given(vec![booking_created(), submitted()], vec![held(), sold()])
        .when(|b, s| fulfilment::confirm(b, s, soon()))
        .unwrap();
    assert_eq!(names(&then), (vec!["BookingConfirmed"], vec![]));
}

#[test]
fn it_should_expire_a_booking_whose_payment_came_after_its_hold() {
    let then = given(vec![booking_created(), submitted()], vec![held()])
        .when(|b, s| fulfilment::confirm(b, s, late()))
        .unwrap();
    assert_eq!(names(&then), (vec!["BookingExpired"], vec!["HoldExpired"]));
}

#[test]
fn it_should_fail_a_paid_booking_whose_seats_are_no_longer_held() {
    let then = given(
        vec![booking_created(), submitted()],
        vec![held(), released()],
    )
    .when(|b, s| fulfilment::confirm(b, s, soon()))
    .unwrap();
    assert_eq!(names(&then), (vec!["BookingFailed"], vec![]));
}

#[test]
fn it_should_not_confirm_a_booking_that_is_not_paying() {
    let err = given(vec![booking_created()], vec![held()])
        .when(|b, s| fulfilment::confirm(b, s, soon()))
        .unwrap_err();
    assert!(
        matches!(err, StepRefused::Booking(BookingError::InvalidState { .. })),
        "{err:?}"
    );
}

#[test]
fn it_should_refuse_a_step_for_a_booking_that_does_not_exist() {
    let err = given(vec![], vec![held()])
        .when(|b, s| fulfilment::expire_hold(b, s, late()))
        .unwrap_err();
    assert_eq!(err, StepRefused::Booking(BookingError::NotCreated));
}

#[test]
fn it_should_expire_a_held_booking_and_record_its_hold_as_expired() {
    let then = given(vec![booking_created()], vec![held()])
        .when(|b, s| fulfilment::expire_hold(b, s, late()))
        .unwrap();
    assert_eq!(names(&then), (vec!["BookingExpired"], vec!["HoldExpired"]));
}

#[test]
fn it_should_expire_a_booking_whose_seats_were_already_given_back() {
    let then = given(vec![booking_created()], vec![held(), released()])
        .when(|b, s| fulfilment::expire_hold(b, s, late()))
        .unwrap();
    assert_eq!(names(&then), (vec!["BookingExpired"], vec![]));
}

#[test]
fn it_should_fail_the_payment_and_release_the_held_seats() {
    let then = given(vec![booking_created(), submitted()], vec![held()])
        .when(|b, s| fulfilment::fail_payment(b, s, "card declined"))
        .unwrap();
    assert_eq!(
        names(&then),
        (vec!["BookingPaymentFailed"], vec!["SeatsReleased"])
    );
    let BookingEvent::BookingPaymentFailed(failed) = &then.0[0] else {
        unreachable!()
    };
    assert_eq!(failed.reason, "card declined");
}

#[test]
fn it_should_fail_ticketing_and_put_the_sold_seats_back_on_sale() {
    let then = given(
        vec![booking_created(), submitted(), confirmed()],
        vec![held(), sold()],
    )
    .when(|b, s| fulfilment::fail_ticketing(b, s, "no ticket stock"))
    .unwrap();
    assert_eq!(names(&then), (vec!["BookingFailed"], vec!["SeatsReturned"]));
    let BookingEvent::BookingFailed(failed) = &then.0[0] else {
        unreachable!()
    };
    assert_eq!(failed.reason, "ticketing failed: no ticket stock");
}

fn cancel(by: CancelledBy, now: chrono::DateTime<chrono::Utc>) -> CancelBooking {
    CancelBooking {
        reason: "change of plans".into(),
        by,
        now,
    }
}

#[test]
fn it_should_cancel_a_held_booking_and_release_its_seats() {
    let g = given(vec![booking_created()], vec![held()]);
    let then = cancel_booking(
        &g.booking,
        &[(&g.flight, &g.seats)],
        cancel(CancelledBy::Customer, soon()),
    )
    .unwrap();
    assert_eq!(
        names(&then),
        (vec!["BookingCancelled"], vec!["SeatsReleased"])
    );
}

#[test]
fn it_should_cancel_a_ticketed_booking_and_return_its_sold_seats_with_the_policys_refund() {
    let g = given(
        vec![booking_created(), submitted(), confirmed()],
        vec![held(), sold()],
    );
    // Within 24 hours of departure: half back.
    let then = cancel_booking(
        &g.booking,
        &[(&g.flight, &g.seats)],
        cancel(CancelledBy::Customer, departs() - Duration::hours(2)),
    )
    .unwrap();
    assert_eq!(
        names(&then),
        (vec!["BookingCancelled"], vec!["SeatsReturned"])
    );
    let BookingEvent::BookingCancelled(c) = &then.0[0] else {
        unreachable!()
    };
    assert_eq!(c.refund, usd("420.00"));
}

#[test]
fn it_should_cancel_a_booking_whose_hold_already_expired_without_moving_seats() {
    let expired = SeatEvent::HoldExpired(domain::seats::HoldExpired {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A", "10B"]),
    });
    let g = given(vec![booking_created()], vec![held(), expired]);
    let then = cancel_booking(
        &g.booking,
        &[(&g.flight, &g.seats)],
        cancel(CancelledBy::Agent, soon()),
    )
    .unwrap();
    assert_eq!(names(&then), (vec!["BookingCancelled"], vec![]));
}

#[test]
fn it_should_not_cancel_a_booking_twice() {
    let g = given(vec![booking_created()], vec![held()]);
    let (first, seat_events) = cancel_booking(
        &g.booking,
        &[(&g.flight, &g.seats)],
        cancel(CancelledBy::Customer, soon()),
    )
    .unwrap();
    let booking = first.iter().fold(g.booking.clone(), |b, e| b.evolve(e));
    let seats = seat_events[0]
        .iter()
        .fold(g.seats.clone(), |s, e| s.evolve(e));
    let err = cancel_booking(
        &booking,
        &[(&g.flight, &seats)],
        cancel(CancelledBy::Customer, soon()),
    )
    .unwrap_err();
    assert_eq!(
        err,
        CancelBookingError::Booking(BookingError::AlreadyCancelled)
    );
}

#[test]
fn it_should_not_cancel_on_a_flight_that_does_not_exist() {
    let g = given(vec![booking_created()], vec![held()]);
    let err = cancel_booking(
        &g.booking,
        &[(&Flight::default(), &g.seats)],
        cancel(CancelledBy::Admin, soon()),
    )
    .unwrap_err();
    assert_eq!(err, CancelBookingError::FlightNotFound);
}

#[test]
fn it_should_cancel_a_booking_that_holds_no_seats_without_moving_any() {
    // The seat map holds nothing for this booking (its seats went back
    // before): the booking is cancelled, no seat changes hands.
    let g = given(vec![booking_created()], vec![]);
    let then = cancel_booking(
        &g.booking,
        &[(&g.flight, &g.seats)],
        cancel(CancelledBy::Customer, soon()),
    )
    .unwrap();
    assert_eq!(names(&then), (vec!["BookingCancelled"], vec![]));
}

/// The payment the booking submitted, as requested.
fn payment_requested() -> domain::payment::Payment {
    use domain::payment::{Payment, PaymentEvent, PaymentRequested};
    Payment::fold(&[PaymentEvent::PaymentRequested(PaymentRequested {
        payment_id: id(9),
        booking_id: id(BOOKING_A),
        amount: usd("840.00"),
        card_brand: "visa".into(),
        card_last4: "4242".into(),
        card_token: Some("tok_1".into()),
        requested_at: t0(),
    })])
}

fn capture() -> domain::payment::PaymentCommand {
    domain::payment::PaymentCommand::Capture {
        gateway_reference: "ch_1".into(),
        now: soon(),
    }
}

fn invoice() -> domain::payment::PaymentCommand {
    domain::payment::PaymentCommand::IssueInvoice {
        invoice_number: "INV-1".into(),
        tax_rate: rust_decimal::Decimal::new(20, 2),
        lines: vec![domain::payment::InvoiceLineInput {
            description: "Fare".into(),
            quantity: 2,
            unit_price: usd("420.00"),
            credit: false,
        }],
        now: soon(),
    }
}

fn tickets(booking: &Booking) -> Vec<IssuedTicket> {
    booking
        .passengers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            IssuedTicket::new(
                p.passenger_id,
                domain::values::TicketNumber::new(125, 1_000 + i as u64).unwrap(),
            )
        })
        .collect()
}

#[test]
fn it_should_complete_a_captured_booking_in_one_step_as_the_four_steps_would() {
    let g = given(vec![booking_created(), submitted()], vec![held()]);
    let payment = payment_requested();
    let tickets = tickets(&g.booking);
    let then = fulfilment::complete(
        &g.booking,
        &[&g.seats],
        &payment,
        capture(),
        tickets.clone(),
        invoice(),
        soon(),
    )
    .unwrap()
    .expect("a booking paid in time is completed");

    // The same events as capture; confirm; tickets; invoice, one by one.
    let captured = payment.decide(capture()).unwrap();
    let paid = captured.iter().fold(payment.clone(), |p, e| p.evolve(e));
    let (mut booking_events, seat_events) =
        fulfilment::confirm(&g.booking, &[&g.seats], soon()).unwrap();
    let confirmed = booking_events
        .iter()
        .fold(g.booking.clone(), |b, e| b.evolve(e));
    booking_events.extend(
        confirmed
            .decide(BookingCommand::IssueTickets {
                tickets,
                now: soon(),
            })
            .unwrap(),
    );
    let mut payment_events = captured;
    payment_events.extend(paid.decide(invoice()).unwrap());
    assert_eq!(then.booking, booking_events);
    assert_eq!(then.seats, seat_events);
    assert_eq!(then.payment, payment_events);
    use domain::DomainEvent;
    let payment_names: Vec<_> = then.payment.iter().map(|e| e.event_type()).collect();
    assert_eq!(payment_names, ["PaymentCaptured", "InvoiceIssued"]);
    assert_eq!(
        names(&(then.booking.clone(), then.seats.clone())),
        (
            vec!["BookingConfirmed", "TicketsIssued"],
            vec!["SeatsConfirmed"]
        )
    );
    let ticketed = then
        .booking
        .iter()
        .fold(g.booking.clone(), |b, e| b.evolve(e));
    assert_eq!(ticketed.status, Some(BookingStatus::Ticketed));
}

#[test]
fn it_should_leave_a_capture_after_the_hold_to_the_steps() {
    // Paid too late: one step cannot confirm it, so it completes nothing
    // (the steps expire the booking and refund the capture).
    let g = given(vec![booking_created(), submitted()], vec![held()]);
    let payment = payment_requested();
    let then = fulfilment::complete(
        &g.booking,
        &[&g.seats],
        &payment,
        capture(),
        tickets(&g.booking),
        invoice(),
        late(),
    )
    .unwrap();
    assert_eq!(then, None);
}

#[test]
fn it_should_refuse_to_complete_a_payment_that_was_already_captured() {
    let g = given(vec![booking_created(), submitted()], vec![held()]);
    let payment = payment_requested();
    let captured = payment.decide(capture()).unwrap();
    let payment = captured.iter().fold(payment, |p, e| p.evolve(e));
    let err = fulfilment::complete(
        &g.booking,
        &[&g.seats],
        &payment,
        capture(),
        tickets(&g.booking),
        invoice(),
        soon(),
    )
    .unwrap_err();
    assert!(matches!(err, StepRefused::Payment(_)), "{err:?}");
}
