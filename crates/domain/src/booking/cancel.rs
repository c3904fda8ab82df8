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

/// One passenger of several to take off a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelPassenger {
    pub passenger_id: uuid::Uuid,
    pub reason: String,
    pub by: CancelledBy,
    pub now: DateTime<Utc>,
}

/// The events that take one passenger off `booking` (their share refunded
/// by the policy) and give their seat back (released while held, returned
/// once sold). An infant has no seat to give back.
pub fn cancel_passenger(
    booking: &Booking,
    flight: &Flight,
    seats: &SeatInventory,
    command: CancelPassenger,
) -> Result<(Vec<BookingEvent>, Vec<SeatEvent>), CancelBookingError> {
    let booking_id = booking.id().ok_or(BookingError::NotCreated)?;
    let departs_at = flight
        .departs_at()
        .ok_or(CancelBookingError::FlightNotFound)?;
    let seat = booking
        .passengers
        .iter()
        .find(|p| p.passenger_id == command.passenger_id)
        .and_then(|p| p.seat);
    let events = booking.decide(BookingCommand::CancelPassenger {
        passenger_id: command.passenger_id,
        reason: command.reason.clone(),
        now: command.now,
        departs_at,
        by: command.by,
    })?;
    let seat_events = match seat {
        Some(seat) => match seats.decide(SeatCommand::GiveBack {
            booking_id,
            seat,
            reason: command.reason,
        }) {
            Ok(events) => events,
            // A hold that lapsed already gave its seat back.
            Err(SeatError::NothingHeld(_)) => vec![],
            Err(e) => return Err(e.into()),
        },
        None => vec![],
    };
    Ok((events, seat_events))
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
