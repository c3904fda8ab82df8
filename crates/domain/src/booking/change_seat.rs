//! Changing a passenger's seat: one decision over the booking and the
//! seats of one of its flights (any flight of an itinerary). The new seat takes over the old one's hold (same expiry)
//! or sale and the old one goes back on sale in the same append, so a seat
//! is never held by two bookings and none is lost on the way.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Booking, BookingCommand, BookingError, BookingEvent};
use crate::event::Aggregate;
use crate::flight::Flight;
use crate::seats::{SeatCommand, SeatError, SeatEvent, SeatInventory};
use crate::values::Seat;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSeat {
    pub passenger_id: Uuid,
    pub seat: Seat,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeSeatError {
    #[error("flight does not exist")]
    FlightNotFound,
    #[error("flight is cancelled; its seats can no longer be changed")]
    FlightCancelled,
    #[error("flight has departed; its seats can no longer be changed")]
    FlightDeparted,
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Seats(#[from] SeatError),
}

/// The events that move `command.passenger_id` of `booking` to
/// `command.seat` on `flight`, one of the booking's flights; none when they
/// sit there already.
pub fn change_seat(
    booking: &Booking,
    flight: &Flight,
    seats: &SeatInventory,
    command: ChangeSeat,
) -> Result<(Vec<BookingEvent>, Vec<SeatEvent>), ChangeSeatError> {
    let booking_id = booking.id().ok_or(BookingError::NotCreated)?;
    let Some(flight_id) = flight.id() else {
        return Err(ChangeSeatError::FlightNotFound);
    };
    if seats.flight_id() != Some(flight_id) {
        return Err(ChangeSeatError::FlightNotFound);
    }
    if flight.is_cancelled() {
        return Err(ChangeSeatError::FlightCancelled);
    }
    if flight.has_departed(command.now) {
        return Err(ChangeSeatError::FlightDeparted);
    }
    let events = booking.decide(BookingCommand::ChangeSeat {
        passenger_id: command.passenger_id,
        flight_id,
        seat: command.seat,
        now: command.now,
    })?;
    let Some(BookingEvent::PassengerSeatChanged(changed)) = events.first() else {
        return Ok((events, vec![]));
    };
    let seat_events = seats.decide(SeatCommand::Change {
        booking_id,
        from: changed.from,
        to: changed.to,
        now: command.now,
    })?;
    Ok((events, seat_events))
}
