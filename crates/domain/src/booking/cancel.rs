//! Cancelling a booking: one decision over the booking and its flights'
//! seats (one flight, or every flight of an itinerary). The booking is
//! cancelled with the refund the policy allows, and its seats go back on
//! sale in the same append: held seats are released,
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

/// One flight of a booking and its seat inventory, as decisions over every
/// flight of an itinerary read them (in the order flown).
pub type FlightSeats<'a> = (&'a Flight, &'a SeatInventory);

/// Each flight's seat events of a decision over an itinerary, in the order
/// the flights were given.
pub type SeatsByFlight = Vec<Vec<SeatEvent>>;

/// The booking's flights, in its order, and when the first of them leaves
/// (the itinerary's departure, which the refund policy counts from).
fn departure(
    booking: &Booking,
    flights: &[FlightSeats<'_>],
) -> Result<DateTime<Utc>, CancelBookingError> {
    let ids = booking.flight_ids();
    let given: Vec<_> = flights.iter().map(|(f, _)| f.id()).collect();
    let inventories: Vec<_> = flights.iter().map(|(_, s)| s.flight_id()).collect();
    let wanted: Vec<_> = ids.into_iter().map(Some).collect();
    if given != wanted || inventories != wanted {
        return Err(CancelBookingError::FlightNotFound);
    }
    flights
        .first()
        .and_then(|(f, _)| f.departs_at())
        .ok_or(CancelBookingError::FlightNotFound)
}

/// The events that take one passenger off `booking` (their share refunded
/// by the policy) and give their seat on each of its `flights` back
/// (released while held, returned once sold). An infant has no seat to give
/// back.
pub fn cancel_passenger(
    booking: &Booking,
    flights: &[FlightSeats<'_>],
    command: CancelPassenger,
) -> Result<(Vec<BookingEvent>, SeatsByFlight), CancelBookingError> {
    let booking_id = booking.id().ok_or(BookingError::NotCreated)?;
    let departs_at = departure(booking, flights)?;
    let first = flights[0].0.id();
    let passenger = booking
        .passengers
        .iter()
        .find(|p| p.passenger_id == command.passenger_id);
    let events = booking.decide(BookingCommand::CancelPassenger {
        passenger_id: command.passenger_id,
        reason: command.reason.clone(),
        now: command.now,
        departs_at,
        by: command.by,
    })?;
    let mut seat_events = Vec::with_capacity(flights.len());
    for (flight, seats) in flights {
        let seat = match (passenger, flight.id(), first) {
            (Some(p), Some(f), Some(first)) => p.seat_on(f, first),
            _ => None,
        };
        seat_events.push(match seat {
            Some(seat) => match seats.decide(SeatCommand::GiveBack {
                booking_id,
                seat,
                reason: command.reason.clone(),
            }) {
                Ok(events) => events,
                // A hold that lapsed already gave its seat back.
                Err(SeatError::NothingHeld(_)) => vec![],
                Err(e) => return Err(e.into()),
            },
            None => vec![],
        });
    }
    Ok((events, seat_events))
}

/// The events that cancel `booking` and give its seats on each of its
/// `flights` back.
pub fn cancel_booking(
    booking: &Booking,
    flights: &[FlightSeats<'_>],
    command: CancelBooking,
) -> Result<(Vec<BookingEvent>, SeatsByFlight), CancelBookingError> {
    let booking_id = booking.id().ok_or(BookingError::NotCreated)?;
    let departs_at = departure(booking, flights)?;
    let events = booking.decide(BookingCommand::Cancel {
        reason: command.reason.clone(),
        now: command.now,
        departs_at,
        by: command.by,
    })?;
    let seat_command = || match booking.status {
        Some(BookingStatus::Confirmed | BookingStatus::Ticketed) => Some(SeatCommand::Return {
            booking_id,
            reason: command.reason.clone(),
        }),
        Some(BookingStatus::Held | BookingStatus::PaymentPending) => Some(SeatCommand::Release {
            booking_id,
            reason: command.reason.clone(),
        }),
        _ => None,
    };
    let mut seat_events = Vec::with_capacity(flights.len());
    for (_, seats) in flights {
        seat_events.push(match seat_command().map(|c| seats.decide(c)) {
            Some(Ok(events)) => events,
            // An expired hold already gave its seats back.
            Some(Err(SeatError::NothingHeld(_) | SeatError::NothingSold(_))) | None => vec![],
            Some(Err(e)) => return Err(e.into()),
        });
    }
    Ok((events, seat_events))
}
