//! The fulfilment's own decisions over a booking and its flight's seats.
//! Each moves the booking and the seats together, so the caller appends
//! both in one transaction: a booking is never confirmed without its seats
//! sold, nor failed without its seats given back.
//!
//! They are decided again on fresh state whenever a step is retried, so a
//! seat movement that already happened (an expired hold, seats already
//! released) is not an error.

use chrono::{DateTime, Utc};

use uuid::Uuid;

use crate::booking::{Booking, BookingCommand, BookingError, BookingEvent, BookingStatus};
use crate::event::Aggregate;
use crate::payment::{Payment, PaymentCommand, PaymentError, PaymentEvent};
use crate::seats::{SeatCommand, SeatError, SeatEvent, SeatInventory};
use crate::values::TicketNumber;

/// The booking's and the seats' events of one step.
pub type StepEvents = (Vec<BookingEvent>, Vec<SeatEvent>);

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
}

fn booking_id(booking: &Booking) -> Result<uuid::Uuid, StepRefused> {
    Ok(booking.id().ok_or(BookingError::NotCreated)?)
}

/// The hold ran out before the booking was paid: the booking expires and
/// the hold is recorded as expired.
pub fn expire_hold(
    booking: &Booking,
    seats: &SeatInventory,
    now: DateTime<Utc>,
) -> Result<StepEvents, StepRefused> {
    let booking_id = booking_id(booking)?;
    let events = booking.decide(BookingCommand::Expire { now })?;
    let seats = match seats.decide(SeatCommand::Expire { booking_id, now }) {
        Ok(e) => e,
        Err(SeatError::NothingHeld(_)) => vec![],
        Err(e) => return Err(e.into()),
    };
    Ok((events, seats))
}

/// The payment was captured: the held seats are sold and the booking
/// confirmed. If the hold ran out first, the booking expires instead (and
/// the capture is refunded later); if the seats are gone, it fails.
pub fn confirm(
    booking: &Booking,
    seats: &SeatInventory,
    now: DateTime<Utc>,
) -> Result<StepEvents, StepRefused> {
    let booking_id = booking_id(booking)?;
    match seats.decide(SeatCommand::Confirm { booking_id, now }) {
        Ok(sold) => Ok((booking.decide(BookingCommand::Confirm { now })?, sold)),
        Err(SeatError::AlreadyConfirmed(_)) => {
            Ok((booking.decide(BookingCommand::Confirm { now })?, vec![]))
        }
        Err(SeatError::HoldHasExpired { .. }) => Ok((
            booking.decide(BookingCommand::Expire { now })?,
            seats
                .decide(SeatCommand::Expire { booking_id, now })
                .unwrap_or_default(),
        )),
        Err(SeatError::NothingHeld(_)) => Ok((
            booking.decide(BookingCommand::Fail {
                reason: "the seats were no longer held".into(),
            })?,
            vec![],
        )),
        Err(e) => Err(e.into()),
    }
}

/// The payment failed: the booking is `PAYMENT_FAILED` and its seats are
/// released.
pub fn fail_payment(
    booking: &Booking,
    seats: &SeatInventory,
    reason: &str,
) -> Result<StepEvents, StepRefused> {
    let booking_id = booking_id(booking)?;
    let events = booking.decide(BookingCommand::MarkPaymentFailed {
        reason: reason.to_owned(),
    })?;
    let seats = match seats.decide(SeatCommand::Release {
        booking_id,
        reason: reason.to_owned(),
    }) {
        Ok(e) => e,
        Err(SeatError::NothingHeld(_)) => vec![],
        Err(e) => return Err(e.into()),
    };
    Ok((events, seats))
}

/// Tickets could not be issued: the booking fails and its sold seats go
/// back on sale (the payment is refunded as a compensation).
pub fn fail_ticketing(
    booking: &Booking,
    seats: &SeatInventory,
    reason: &str,
) -> Result<StepEvents, StepRefused> {
    let booking_id = booking_id(booking)?;
    let events = booking.decide(BookingCommand::Fail {
        reason: format!("ticketing failed: {reason}"),
    })?;
    let seats = match seats.decide(SeatCommand::Return {
        booking_id,
        reason: "ticketing failed".into(),
    }) {
        Ok(e) => e,
        Err(SeatError::NothingSold(_)) => vec![],
        Err(e) => return Err(e.into()),
    };
    Ok((events, seats))
}

/// The events of a fulfilment completed in one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub payment: Vec<PaymentEvent>,
    pub booking: Vec<BookingEvent>,
    pub seats: Vec<SeatEvent>,
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
    seats: &SeatInventory,
    payment: &Payment,
    capture: PaymentCommand,
    tickets: Vec<(Uuid, TicketNumber)>,
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
