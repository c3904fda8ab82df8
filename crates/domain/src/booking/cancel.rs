//! Cancelling a booking: one decision over the booking and its flight's
//! seats. The booking is cancelled with the refund the policy allows, and
//! its seats go back on sale in the same append: held seats are released,
//! sold ones returned. Used by customers, agents, admins and the
//! flight-cancellation process alike.

use chrono::{DateTime, Utc};

use super::{Booking, BookingCommand, BookingError, BookingEvent, BookingStatus, CancelledBy};
use crate::event::Aggregate;
use crate::flight::Flight;
use crate::seats::{SeatCommand, SeatError, SeatEvent, SeatInventory};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelBooking {
    pub reason: String,
    pub by: CancelledBy,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelBookingError {
    #[error("flight does not exist")]
    FlightNotFound,
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Seats(#[from] SeatError),
}

/// The events that cancel `booking` on `flight` and give its seats back.
pub fn cancel_booking(
    booking: &Booking,
    flight: &Flight,
    seats: &SeatInventory,
    command: CancelBooking,
) -> Result<(Vec<BookingEvent>, Vec<SeatEvent>), CancelBookingError> {
    let booking_id = booking.id().ok_or(BookingError::NotCreated)?;
    let departs_at = flight
        .departs_at()
        .ok_or(CancelBookingError::FlightNotFound)?;
    let events = booking.decide(BookingCommand::Cancel {
        reason: command.reason.clone(),
        now: command.now,
        departs_at,
        by: command.by,
    })?;
    let seat_command = match booking.status {
        Some(BookingStatus::Confirmed | BookingStatus::Ticketed) => Some(SeatCommand::Return {
            booking_id,
            reason: command.reason,
        }),
        Some(BookingStatus::Held | BookingStatus::PaymentPending) => Some(SeatCommand::Release {
            booking_id,
            reason: command.reason,
        }),
        _ => None,
    };
    let seat_events = match seat_command.map(|c| seats.decide(c)) {
        Some(Ok(events)) => events,
        // An expired hold already gave its seats back.
        Some(Err(SeatError::NothingHeld(_) | SeatError::NothingSold(_))) | None => vec![],
        Some(Err(e)) => return Err(e.into()),
    };
    Ok((events, seat_events))
}
