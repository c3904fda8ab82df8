//! The fulfilment's own decisions over a booking and its flights' seats
//! (one flight, or every flight of an itinerary, in the order flown). Each
//! moves the booking and the seats together, so the caller appends both in
//! one transaction: a booking is never confirmed without its seats sold,
//! nor failed without its seats given back.
//!
//! They are decided again on fresh state whenever a step is retried, so a
//! seat movement that already happened (an expired hold, seats already
//! released) is not an error.

use chrono::{DateTime, Utc};

use crate::booking::{
    Booking, BookingCommand, BookingError, BookingEvent, BookingStatus, IssuedTicket, SeatsByFlight,
};
use crate::event::Aggregate;
use crate::payment::{Payment, PaymentCommand, PaymentError, PaymentEvent};
use crate::seats::{SeatCommand, SeatError, SeatInventory};

/// The booking's events of one step, and each flight's seat events.
pub type StepEvents = (Vec<BookingEvent>, SeatsByFlight);

/// A step the state does not allow (any more): the process decides again
/// from a fresh read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepRefused {
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Seats(#[from] SeatError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The seats given are not those of every flight of the booking, in
    /// its order: deciding on some of them would sell part of a trip.
    #[error("the seats of every flight of the booking are needed, in its order")]
    OtherFlights,
}

/// The booking's id, once `seats` are checked to be its flights' seats.
fn booking_id(booking: &Booking, seats: &[&SeatInventory]) -> Result<uuid::Uuid, StepRefused> {
    let id = booking.id().ok_or(BookingError::NotCreated)?;
    let given: Vec<_> = seats.iter().map(|s| s.flight_id()).collect();
    let wanted: Vec<_> = booking.flight_ids().into_iter().map(Some).collect();
    if given != wanted {
        return Err(StepRefused::OtherFlights);
    }
    Ok(id)
}

/// `command` on every flight's seats; a refusal `done` says was already
/// done (the seats moved before) is no events.
fn on_each(
    seats: &[&SeatInventory],
    command: impl Fn() -> SeatCommand,
    done: impl Fn(&SeatError) -> bool,
) -> Result<SeatsByFlight, StepRefused> {
    seats
        .iter()
        .map(|s| match s.decide(command()) {
            Ok(e) => Ok(e),
            Err(e) if done(&e) => Ok(vec![]),
            Err(e) => Err(e.into()),
        })
        .collect()
}

/// The hold ran out before the booking was paid: the booking expires and
/// the hold is recorded as expired on every flight.
pub fn expire_hold(
    booking: &Booking,
    seats: &[&SeatInventory],
    now: DateTime<Utc>,
) -> Result<StepEvents, StepRefused> {
    let booking_id = booking_id(booking, seats)?;
    let events = booking.decide(BookingCommand::Expire { now })?;
    let seats = on_each(
        seats,
        || SeatCommand::Expire { booking_id, now },
        |e| matches!(e, SeatError::NothingHeld(_)),
    )?;
    Ok((events, seats))
}

/// The payment was captured: the held seats are sold on every flight and
/// the booking confirmed. If the hold ran out first, the booking expires
/// instead (and the capture is refunded later); if the seats of any flight
/// are gone, it fails and the other flights' seats are released.
pub fn confirm(
    booking: &Booking,
    seats: &[&SeatInventory],
    now: DateTime<Utc>,
) -> Result<StepEvents, StepRefused> {
    let booking_id = booking_id(booking, seats)?;
    let mut sold = Vec::with_capacity(seats.len());
    for inventory in seats {
        match inventory.decide(SeatCommand::Confirm { booking_id, now }) {
            Ok(events) => sold.push(events),
            Err(SeatError::AlreadyConfirmed(_)) => sold.push(vec![]),
            Err(SeatError::HoldHasExpired { .. }) => {
                let expired = seats
                    .iter()
                    .map(|s| {
                        s.decide(SeatCommand::Expire { booking_id, now })
                            .unwrap_or_default()
                    })
                    .collect();
                return Ok((booking.decide(BookingCommand::Expire { now })?, expired));
            }
            Err(SeatError::NothingHeld(_)) => {
                let reason = "the seats were no longer held";
                let released = on_each(
                    seats,
                    || SeatCommand::Release {
                        booking_id,
                        reason: reason.into(),
                    },
                    |e| matches!(e, SeatError::NothingHeld(_)),
                )?;
                return Ok((
                    booking.decide(BookingCommand::Fail {
                        reason: reason.into(),
                    })?,
                    released,
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((booking.decide(BookingCommand::Confirm { now })?, sold))
}

/// The payment failed: the booking is `PAYMENT_FAILED` and its seats are
/// released on every flight.
pub fn fail_payment(
    booking: &Booking,
    seats: &[&SeatInventory],
    reason: &str,
) -> Result<StepEvents, StepRefused> {
    let booking_id = booking_id(booking, seats)?;
    let events = booking.decide(BookingCommand::MarkPaymentFailed {
        reason: reason.to_owned(),
    })?;
    let seats = on_each(
        seats,
        || SeatCommand::Release {
            booking_id,
            reason: reason.to_owned(),
        },
        |e| matches!(e, SeatError::NothingHeld(_)),
    )?;
    Ok((events, seats))
}

/// Tickets could not be issued: the booking fails and its sold seats go
/// back on sale on every flight (the payment is refunded as a
/// compensation).
pub fn fail_ticketing(
    booking: &Booking,
    seats: &[&SeatInventory],
    reason: &str,
) -> Result<StepEvents, StepRefused> {
    let booking_id = booking_id(booking, seats)?;
    let events = booking.decide(BookingCommand::Fail {
        reason: format!("ticketing failed: {reason}"),
    })?;
    let seats = on_each(
        seats,
        || SeatCommand::Return {
            booking_id,
            reason: "ticketing failed".into(),
        },
        |e| matches!(e, SeatError::NothingSold(_)),
    )?;
    Ok((events, seats))
}

/// The events of a fulfilment completed in one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub payment: Vec<PaymentEvent>,
    pub booking: Vec<BookingEvent>,
    /// Each flight's seat events.
    pub seats: SeatsByFlight,
}

/// The provider captured the card at once and the tickets are drawn: the
/// capture, the seats sold, the booking confirmed and ticketed, and the
/// invoice, decided together on one state so that one append records what
/// the step-by-step path records in four (capture; confirm; tickets;
/// invoice). The same events, in the same order, as those four steps.
///
/// `Ok(None)` when the booking would not come out confirmed (its hold ran
/// out, its seats are gone): then nothing here applies, and the caller
/// records the capture alone and lets the steps take over (which expire or
/// fail the booking and refund the capture).
pub fn complete(
    booking: &Booking,
    seats: &[&SeatInventory],
    payment: &Payment,
    capture: PaymentCommand,
    tickets: Vec<IssuedTicket>,
    invoice: PaymentCommand,
    now: DateTime<Utc>,
) -> Result<Option<Completed>, StepRefused> {
    let mut payment_events = payment.decide(capture)?;
    let payment = payment_events
        .iter()
        .fold(payment.clone(), |p, e| p.evolve(e));
    let (mut booking_events, seat_events) = confirm(booking, seats, now)?;
    let confirmed = booking_events
        .iter()
        .fold(booking.clone(), |b, e| b.evolve(e));
    if confirmed.status != Some(BookingStatus::Confirmed) {
        return Ok(None);
    }
    booking_events.extend(confirmed.decide(BookingCommand::IssueTickets { tickets, now })?);
    payment_events.extend(payment.decide(invoice)?);
    Ok(Some(Completed {
        payment: payment_events,
        booking: booking_events,
        seats: seat_events,
    }))
}
