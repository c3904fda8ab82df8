//! The fulfilment's own decisions over a booking and its flight's seats.
//! Each moves the booking and the seats together, so the caller appends
//! both in one transaction: a booking is never confirmed without its seats
//! sold, nor failed without its seats given back.
//!
//! They are decided again on fresh state whenever a step is retried, so a
//! seat movement that already happened (an expired hold, seats already
//! released) is not an error.

use chrono::{DateTime, Utc};

use crate::booking::{Booking, BookingCommand, BookingError, BookingEvent};
use crate::event::Aggregate;
use crate::seats::{SeatCommand, SeatError, SeatEvent, SeatInventory};

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
