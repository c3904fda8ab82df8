//! Given/when/then for moving a booking to another flight of the same
//! route: both flights' seats and the booking, decided together.
mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use domain::booking::*;
use domain::flight::{schedule_flight, Flight, FlightCancelled, FlightEvent};
use domain::seats::*;
use domain::values::AirportCode;
use domain::Aggregate;

const LATER: u128 = 2;
const ELSEWHERE: u128 = 3;
const SUPPLEMENT: u128 = 4;

/// The same route a day later; economy at `fare`.
fn later_flight(fare: &str) -> (Flight, SeatInventory) {
    let mut s = schedule();
    s.flight_id = id(LATER);
    s.departs_at = departs() + Duration::days(1);
    s.arrives_at = s.departs_at + Duration::hours(8);
    s.cabins[1].fare = usd(fare);
    let (f, seats) = schedule_flight(s).unwrap();
    (Flight::fold(&f), SeatInventory::fold(&seats))
}

fn first_flight(booking_seats: Vec<SeatEvent>) -> (Flight, SeatInventory) {
    let (f, mut seats) = scheduled();
    seats.extend(booking_seats);
    (Flight::fold(&f), SeatInventory::fold(&seats))
}

fn a_held() -> SeatEvent {
    SeatEvent::SeatsHeld(SeatsHeld {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A", "10B"]),
        expires_at: t0() + minutes(10),
    })
}

fn a_sold() -> SeatEvent {
    SeatEvent::SeatsConfirmed(SeatsConfirmed {
        booking_id: id(BOOKING_A),
        seats: seats(&["10A", "10B"]),
    })
}

fn ticketed() -> Vec<BookingEvent> {
    let mut events = booking_paid();
    events.push(tickets_issued());
    events
}

/// Booking A's seats on `seats`: exactly two, each in `state` (soon).
fn a_holds_two(seats: &SeatInventory, state: SeatState) -> Vec<domain::values::Seat> {
    let taken = seats.seats_of(id(BOOKING_A));
    assert_eq!(taken.len(), 2);
    for s in &taken {
        assert_eq!(seats.status_at(*s, soon()), Some(state));
    }
    taken
}

fn soon() -> DateTime<Utc> {
    t0() + minutes(5)
}

fn move_to(to: u128, now: DateTime<Utc>) -> MoveBooking {
    MoveBooking {
        from_flight_id: id(FLIGHT),
        to_flight_id: id(to),
        supplement_id: id(SUPPLEMENT),
        now,
    }
}

fn decide(
    booking: &[BookingEvent],
    from: &(Flight, SeatInventory),
    to: &(Flight, SeatInventory),
    cmd: MoveBooking,
) -> Result<Moved, MoveBookingError> {
    move_booking(
        &Booking::fold(booking),
        (&from.0, &from.1),
        (&to.0, &to.1),
        cmd,
    )
}

fn the_move(moved: &Moved) -> &BookingMoved {
    match &moved.booking[..] {
        [BookingEvent::BookingMoved(m)] => m,
        other => panic!("expected one BookingMoved, got {other:?}"),
    }
}

#[test]
fn a_held_booking_takes_its_hold_to_the_new_flight_and_frees_the_old_seats() {
    let from = first_flight(vec![a_held()]);
    let to = later_flight("380.00");
    let moved = decide(&[booking_created()], &from, &to, move_to(LATER, soon())).unwrap();

    // The old seats are released, the new ones held until the same time.
    let old = moved
        .from_seats
        .iter()
        .fold(from.1.clone(), |s, e| s.evolve(e));
    assert!(old.is_available(seat("10A"), soon()) && old.is_available(seat("10B"), soon()));
    let new = moved.to_seats.iter().fold(to.1.clone(), |s, e| s.evolve(e));
    let taken = a_holds_two(
        &new,
        SeatState::Held {
            booking_id: id(BOOKING_A),
            expires_at: t0() + minutes(10),
        },
    );

    // Re-priced at the new fare, nothing owed back (nothing was paid).
    let m = the_move(&moved);
    assert_eq!(m.total, usd("760.00"));
    assert!(m.refund.is_zero());
    let booking = moved
        .booking
        .iter()
        .fold(Booking::fold(&[booking_created()]), |b, e| b.evolve(e));
    let info = booking.info.as_ref().unwrap();
    assert_eq!(info.flight_id, id(LATER));
    assert_eq!(booking.status, Some(BookingStatus::Held));
    assert_eq!(booking.amount_due(), Some(usd("760.00")));
    let mut now_seated = booking.seats();
    now_seated.sort();
    let mut expected = taken.clone();
    expected.sort();
    assert_eq!(now_seated, expected);
    assert!(booking.passengers.iter().all(|p| p.fare == usd("380.00")));
}

#[test]
fn a_held_booking_moved_to_a_dearer_flight_will_cost_the_new_total() {
    let from = first_flight(vec![a_held()]);
    let to = later_flight("500.00");
    let moved = decide(&[booking_created()], &from, &to, move_to(LATER, soon())).unwrap();
    let m = the_move(&moved);
    assert_eq!(m.total, usd("1000.00"));
    assert!(m.refund.is_zero());
}

#[test]
fn a_paid_booking_is_sold_on_the_new_flight_and_the_difference_is_owed_back() {
    let from = first_flight(vec![a_held(), a_sold()]);
    let to = later_flight("300.00");
    let later = t0() + Duration::days(2);
    let moved = decide(&booking_paid(), &from, &to, move_to(LATER, later)).unwrap();

    let old = moved
        .from_seats
        .iter()
        .fold(from.1.clone(), |s, e| s.evolve(e));
    assert!(old.seats_of(id(BOOKING_A)).is_empty());
    assert!(old.is_available(seat("10A"), later));
    let new = moved.to_seats.iter().fold(to.1.clone(), |s, e| s.evolve(e));
    let taken = new.seats_of(id(BOOKING_A));
    assert_eq!(taken.len(), 2);
    // Sold, not held: nothing expires a paid booking's seats.
    for s in &taken {
        assert_eq!(
            new.status_at(*s, later + Duration::days(1)),
            Some(SeatState::Sold {
                booking_id: id(BOOKING_A)
            })
        );
    }

    let m = the_move(&moved);
    assert_eq!(m.total, usd("600.00"));
    assert_eq!(m.refund, usd("240.00"));
    let booking = moved
        .booking
        .iter()
        .fold(Booking::fold(&booking_paid()), |b, e| b.evolve(e));
    assert_eq!(booking.refund, Some(usd("240.00")));
    assert_eq!(booking.status, Some(BookingStatus::Confirmed));
}

#[test]
fn a_ticketed_booking_is_confirmed_again_its_old_tickets_void() {
    let from = first_flight(vec![a_held(), a_sold()]);
    let to = later_flight("420.00");
    let moved = decide(&ticketed(), &from, &to, move_to(LATER, soon())).unwrap();
    let m = the_move(&moved);
    assert!(m.refund.is_zero());
    assert_eq!(m.total, usd("840.00"));
    let booking = moved
        .booking
        .iter()
        .fold(Booking::fold(&ticketed()), |b, e| b.evolve(e));
    assert_eq!(booking.status, Some(BookingStatus::Confirmed));
    assert!(booking.passengers.iter().all(|p| p.ticket_number.is_none()));
    assert_eq!(booking.moves, 1);
}

/// A paid booking (seats 10A and 10B sold at 420.00) whose move to the
/// flight a day later at 500.00 waits for its 160.00 difference.
fn dearer_move_held() -> (
    Vec<BookingEvent>,
    (Flight, SeatInventory),
    (Flight, SeatInventory),
) {
    let from = first_flight(vec![a_held(), a_sold()]);
    let to = later_flight("500.00");
    let moved = decide(&booking_paid(), &from, &to, move_to(LATER, soon())).unwrap();
    let mut events = booking_paid();
    events.extend(moved.booking);
    let to = (to.0, moved.to_seats.iter().fold(to.1, |s, e| s.evolve(e)));
    (events, from, to)
}

#[test]
fn a_paid_booking_moving_to_a_dearer_flight_holds_the_new_seats_and_keeps_its_own() {
    let from = first_flight(vec![a_held(), a_sold()]);
    let to = later_flight("500.00");
    let moved = decide(&booking_paid(), &from, &to, move_to(LATER, soon())).unwrap();

    assert_eq!(moved.charge, Some(usd("160.00")));
    let held = match &moved.booking[..] {
        [BookingEvent::BookingMoveHeld(h)] => h.clone(),
        other => panic!("expected one BookingMoveHeld, got {other:?}"),
    };
    assert_eq!(held.difference, usd("160.00"));
    assert_eq!(held.total, usd("1000.00"));
    assert_eq!(held.payment_id, id(SUPPLEMENT));
    assert_eq!(held.hold_expires_at, soon() + MOVE_HOLD);
    // The old seats stay sold to it; the new ones are only held.
    assert!(moved.from_seats.is_empty());
    let new = moved.to_seats.iter().fold(to.1.clone(), |s, e| s.evolve(e));
    a_holds_two(
        &new,
        SeatState::Held {
            booking_id: id(BOOKING_A),
            expires_at: soon() + MOVE_HOLD,
        },
    );
    // The booking is where it was, at its old price, until the money is in.
    let booking = moved
        .booking
        .iter()
        .fold(Booking::fold(&booking_paid()), |b, e| b.evolve(e));
    assert_eq!(booking.info.as_ref().unwrap().flight_id, id(FLIGHT));
    assert_eq!(booking.info.as_ref().unwrap().total, usd("840.00"));
    assert_eq!(booking.status, Some(BookingStatus::Confirmed));
    assert!(booking.pending_move.is_some());
    assert_eq!(booking.supplements.len(), 1);
    assert!(!booking.supplements[0].moved);
}

#[test]
fn while_a_move_waits_for_its_difference_the_booking_is_not_changed_otherwise() {
    let (events, from, to) = dearer_move_held();
    let booking = Booking::fold(&events);
    assert_eq!(
        move_booking(
            &booking,
            (&from.0, &from.1),
            (&to.0, &to.1),
            move_to(LATER, soon())
        ),
        Err(MoveBookingError::Booking(BookingError::MovePending(id(
            LATER
        ))))
    );
    let cancel = CancelBooking {
        reason: "changed my mind".into(),
        by: CancelledBy::Customer,
        now: soon(),
    };
    assert_eq!(
        cancel_booking(&booking, &[(&from.0, &from.1)], cancel),
        Err(CancelBookingError::Booking(BookingError::MovePending(id(
            LATER
        ))))
    );
}

#[test]
fn a_captured_difference_completes_the_move_in_one_append() {
    let (events, from, to) = dearer_move_held();
    let booking = Booking::fold(&events);
    let moved = complete_move(&booking, &from.1, (&to.0, &to.1), soon()).unwrap();

    let m = the_move(&moved);
    assert_eq!(m.total, usd("1000.00"));
    assert!(m.refund.is_zero());
    // The old seats go back on sale, the new ones are sold.
    let old = moved
        .from_seats
        .iter()
        .fold(from.1.clone(), |s, e| s.evolve(e));
    assert!(old.is_available(seat("10A"), soon()) && old.is_available(seat("10B"), soon()));
    let new = moved.to_seats.iter().fold(to.1.clone(), |s, e| s.evolve(e));
    a_holds_two(
        &new,
        SeatState::Sold {
            booking_id: id(BOOKING_A),
        },
    );
    let after = moved.booking.iter().fold(booking, |b, e| b.evolve(e));
    assert_eq!(after.info.as_ref().unwrap().flight_id, id(LATER));
    assert_eq!(after.amount_paid(), Some(usd("1000.00")));
    assert!(after.pending_move.is_none());
    assert!(after.supplements[0].moved);
    assert_eq!(after.refund, None);
    // The first payment's invoice still says what it charged.
    let lines = after.invoice_lines().unwrap();
    assert!(lines.iter().all(|l| l.unit_price == usd("420.00")));
}

#[test]
fn a_move_to_a_flight_cancelled_meanwhile_is_not_completed() {
    let (events, from, mut to) = dearer_move_held();
    to.0 = to.0.evolve(&FlightEvent::FlightCancelled(FlightCancelled {
        flight_id: id(LATER),
        reason: "weather".into(),
        cancelled_at: soon(),
    }));
    assert_eq!(
        complete_move(&Booking::fold(&events), &from.1, (&to.0, &to.1), soon()),
        Err(MoveBookingError::FlightCancelled)
    );
}

#[test]
fn an_abandoned_move_lets_the_held_seats_go_and_owes_back_a_captured_difference() {
    let (events, _, to) = dearer_move_held();
    let booking = Booking::fold(&events);
    for (captured, refund) in [(false, None), (true, Some(usd("160.00")))] {
        let (booking_events, seat_events) =
            abandon_move(&booking, &to.1, captured, "card declined", soon()).unwrap();
        let seats = seat_events.iter().fold(to.1.clone(), |s, e| s.evolve(e));
        assert!(seats.seats_of(id(BOOKING_A)).is_empty());
        let after = booking_events
            .iter()
            .fold(booking.clone(), |b, e| b.evolve(e));
        assert_eq!(after.info.as_ref().unwrap().flight_id, id(FLIGHT));
        assert_eq!(after.info.as_ref().unwrap().total, usd("840.00"));
        assert!(after.pending_move.is_none());
        assert_eq!(after.refund, refund);
        assert_eq!(after.status, Some(BookingStatus::Confirmed));
    }
}

#[test]
fn it_should_not_move_when_the_new_flight_has_too_few_seats_left() {
    let from = first_flight(vec![a_held()]);
    let mut to = later_flight("420.00");
    // Five of the new flight's six economy seats are gone.
    to.1 = to.1.evolve(&SeatEvent::SeatsHeld(SeatsHeld {
        booking_id: id(BOOKING_B),
        seats: seats(&["10A", "10B", "10C", "11A", "11B"]),
        expires_at: t0() + minutes(30),
    }));
    let err = decide(&[booking_created()], &from, &to, move_to(LATER, soon())).unwrap_err();
    assert!(
        matches!(err, MoveBookingError::Seats(_)),
        "expected a seat refusal, got {err:?}"
    );
}

#[test]
fn it_should_only_move_to_another_flight_of_the_same_route() {
    let from = first_flight(vec![a_held()]);
    let mut s = schedule();
    s.flight_id = id(ELSEWHERE);
    s.destination = AirportCode::parse("BOS").unwrap();
    let (f, seats) = schedule_flight(s).unwrap();
    let elsewhere = (Flight::fold(&f), SeatInventory::fold(&seats));
    assert_eq!(
        decide(
            &[booking_created()],
            &from,
            &elsewhere,
            move_to(ELSEWHERE, soon())
        ),
        Err(MoveBookingError::OtherRoute)
    );
    assert_eq!(
        decide(&[booking_created()], &from, &from, move_to(FLIGHT, soon())),
        Err(MoveBookingError::SameFlight)
    );
}

#[test]
fn it_should_name_the_flight_the_booking_is_on() {
    let from = first_flight(vec![a_held()]);
    let to = later_flight("420.00");
    let cmd = MoveBooking {
        from_flight_id: id(ELSEWHERE),
        to_flight_id: id(LATER),
        supplement_id: id(SUPPLEMENT),
        now: soon(),
    };
    assert_eq!(
        decide(&[booking_created()], &from, &to, cmd),
        Err(MoveBookingError::NotOnFlight(id(ELSEWHERE)))
    );
}

#[test]
fn it_should_not_move_to_a_cancelled_flight() {
    let from = first_flight(vec![a_held()]);
    let mut to = later_flight("420.00");
    to.0 = to.0.evolve(&FlightEvent::FlightCancelled(FlightCancelled {
        flight_id: id(LATER),
        reason: "weather".into(),
        cancelled_at: t0(),
    }));
    assert_eq!(
        decide(&[booking_created()], &from, &to, move_to(LATER, soon())),
        Err(MoveBookingError::FlightCancelled)
    );
}

#[test]
fn it_should_not_move_a_lapsed_hold_or_a_booking_being_paid() {
    let from = first_flight(vec![a_held()]);
    let to = later_flight("420.00");
    assert_eq!(
        decide(
            &[booking_created()],
            &from,
            &to,
            move_to(LATER, t0() + minutes(11))
        ),
        Err(MoveBookingError::Booking(BookingError::HoldExpired(
            t0() + minutes(10)
        )))
    );
    let pending = &booking_paid()[..2];
    assert_eq!(
        decide(pending, &from, &to, move_to(LATER, soon())),
        Err(MoveBookingError::Booking(BookingError::InvalidState {
            status: BookingStatus::PaymentPending,
            action: "move",
        }))
    );
}
