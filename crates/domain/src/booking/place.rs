//! Placing a booking: one decision over three aggregates.
//!
//! The flight is read (is it on sale, what do seats cost), the seat
//! inventory decides the holds, and the booking is created with the seats it
//! got. The caller appends the seat and booking events in one transaction,
//! expecting the versions it read, so a concurrent booking of the same seat
//! is a conflict, never a double sale.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    validate_details, Booking, BookingCommand, BookingError, BookingEvent, NewPassenger,
    PassengerDetails,
};
use crate::event::Aggregate;
use crate::flight::Flight;
use crate::pricing::{quote, PricingError};
use crate::seats::{SeatCommand, SeatError, SeatEvent, SeatInventory, SeatRequest};
use crate::values::Pnr;

#[derive(Debug, Clone, PartialEq)]
pub struct PassengerRequest {
    pub passenger_id: Uuid,
    pub seat: SeatRequest,
    pub details: PassengerDetails,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlaceBooking {
    pub booking_id: Uuid,
    pub pnr: Pnr,
    pub customer_id: Uuid,
    pub created_by: Uuid,
    pub passengers: Vec<PassengerRequest>,
    pub hold_expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceBookingError {
    #[error("flight does not exist")]
    FlightNotFound,
    #[error("flight is cancelled")]
    FlightCancelled,
    #[error("flight has departed")]
    FlightDeparted,
    #[error("seat inventory does not belong to this flight")]
    InventoryMismatch,
    #[error(transparent)]
    Seats(#[from] SeatError),
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Pricing(#[from] PricingError),
}

impl PlaceBookingError {
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PlaceBookingError::Booking(e) => e.field(),
            PlaceBookingError::Seats(SeatError::DuplicateSeat(_) | SeatError::UnknownSeats(_)) => {
                Some("seat")
            }
            _ => None,
        }
    }
}

/// Holds seats for every passenger, prices each at the current fare of the
/// cabin of the seat they got, and creates the booking.
pub fn place_booking(
    flight: &Flight,
    inventory: &SeatInventory,
    cmd: PlaceBooking,
) -> Result<(Vec<SeatEvent>, Vec<BookingEvent>), PlaceBookingError> {
    let flight_id = flight.id().ok_or(PlaceBookingError::FlightNotFound)?;
    if flight.is_cancelled() {
        return Err(PlaceBookingError::FlightCancelled);
    }
    if flight.has_departed(cmd.now) {
        return Err(PlaceBookingError::FlightDeparted);
    }
    if inventory.flight_id() != Some(flight_id) {
        return Err(PlaceBookingError::InventoryMismatch);
    }
    if cmd.passengers.is_empty() || cmd.passengers.len() > super::MAX_PASSENGERS {
        return Err(BookingError::PassengerCount.into());
    }
    // Bad names should be reported as such, not masked by a seat conflict.
    for p in &cmd.passengers {
        validate_details(p.details.clone(), cmd.now.date_naive())?;
    }

    let seat_events = inventory.decide(SeatCommand::Hold {
        booking_id: cmd.booking_id,
        requests: cmd.passengers.iter().map(|p| p.seat).collect(),
        expires_at: cmd.hold_expires_at,
        now: cmd.now,
    })?;
    let held = seat_events
        .iter()
        .find_map(|e| match e {
            SeatEvent::SeatsHeld(held) if held.booking_id == cmd.booking_id => {
                Some(held.seats.clone())
            }
            _ => None,
        })
        .unwrap_or_default();
    let after = seat_events
        .iter()
        .fold(inventory.clone(), |s, e| s.evolve(e));
    let cabins = held
        .iter()
        .map(|seat| {
            after
                .cabin_of(*seat)
                .ok_or(SeatError::UnknownSeats(vec![*seat]))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let priced = quote(flight, &cabins)?;

    let passengers = cmd
        .passengers
        .into_iter()
        .zip(held.iter().zip(cabins.iter().zip(priced.fares.iter())))
        .map(|(p, (seat, (cabin, fare)))| NewPassenger {
            passenger_id: p.passenger_id,
            seat: *seat,
            cabin: *cabin,
            fare: *fare,
            details: p.details,
        })
        .collect();
    let booking_events = Booking::default().decide(BookingCommand::Create {
        booking_id: cmd.booking_id,
        pnr: cmd.pnr,
        flight_id,
        customer_id: cmd.customer_id,
        created_by: cmd.created_by,
        passengers,
        total: priced.total,
        hold_expires_at: cmd.hold_expires_at,
        now: cmd.now,
    })?;
    Ok((seat_events, booking_events))
}
