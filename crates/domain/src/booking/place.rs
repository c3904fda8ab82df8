//! Placing a booking: one decision over three aggregates.
//!
//! The flight is read (is it on sale, what do seats cost), the seat
//! inventory decides the holds, and the booking is created with the seats it
//! got. The caller appends the seat and booking events in one transaction,
//! expecting the versions it read, so a concurrent booking of the same seat
//! is a conflict, never a double sale.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::decide::{check_party_of, PartyMember};
use super::{
    validate_details, AppliedDiscount, Booking, BookingCommand, BookingError, BookingEvent,
    NewPassenger, PassengerDetails, PassengerType,
};
use crate::discount::{DiscountCode, DiscountCommand, DiscountError, DiscountEvent};
use crate::event::Aggregate;
use crate::flight::Flight;
use crate::pricing::{quote, PricingError};
use crate::seats::{SeatCommand, SeatError, SeatEvent, SeatInventory, SeatRequest};
use crate::values::{Cabin, Pnr, Seat};

#[derive(Debug, Clone, PartialEq)]
pub struct PassengerRequest {
    pub passenger_id: Uuid,
    pub kind: PassengerType,
    /// `None` for an infant, who takes no seat.
    pub seat: Option<SeatRequest>,
    /// The adult an infant travels with.
    pub travels_with: Option<Uuid>,
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

/// What placing a booking decided, for each stream it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub seats: Vec<SeatEvent>,
    pub booking: Vec<BookingEvent>,
    /// The discount code's use, when the booking names one.
    pub discount: Vec<DiscountEvent>,
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
    #[error(transparent)]
    Discount(#[from] DiscountError),
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
/// cabin of the seat they got (an infant at the fare of their adult's
/// cabin), takes a discount code off when one is given (`discount`: the
/// code's state, empty when no such code exists), and creates the booking.
///
/// Seats that came back to a cabin whose waiting list they would serve are
/// the line's: such a booking is refused with [`SeatError::LineFirst`].
pub fn place_booking(
    flight: &Flight,
    inventory: &SeatInventory,
    discount: Option<&DiscountCode>,
    cmd: PlaceBooking,
) -> Result<Placed, PlaceBookingError> {
    for request in cmd.passengers.iter().filter_map(|p| p.seat) {
        let cabin = match request {
            SeatRequest::Cabin(cabin) => Some(cabin),
            SeatRequest::Seat(seat) => inventory.cabin_of(seat),
        };
        if let Some(cabin) = cabin.filter(|c| inventory.line_first(*c, cmd.now)) {
            return Err(SeatError::LineFirst { cabin }.into());
        }
    }
    place_booking_unchecked(flight, inventory, discount, cmd)
}

/// [`place_booking`] without the waiting list's claim: how an offer to the
/// line itself is placed.
pub fn place_booking_unchecked(
    flight: &Flight,
    inventory: &SeatInventory,
    discount: Option<&DiscountCode>,
    cmd: PlaceBooking,
) -> Result<Placed, PlaceBookingError> {
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
    // Bad names or an infant without an adult should be reported as such,
    // not masked by a seat conflict.
    for p in &cmd.passengers {
        validate_details(p.details.clone(), cmd.now.date_naive())?;
    }
    let party: Vec<PartyMember> = cmd
        .passengers
        .iter()
        .map(|p| PartyMember {
            passenger_id: p.passenger_id,
            kind: p.kind,
            seated: p.seat.is_some(),
            travels_with: p.travels_with,
        })
        .collect();
    check_party_of(&party)?;

    let seat_events = inventory.decide(SeatCommand::Hold {
        booking_id: cmd.booking_id,
        requests: cmd.passengers.iter().filter_map(|p| p.seat).collect(),
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
    // The seats come back in the order of the seated passengers' requests;
    // an infant flies in the cabin of the adult whose lap they sit on.
    let mut held = held.into_iter();
    let mut placed: Vec<(Option<Seat>, Option<Cabin>, PassengerType)> =
        Vec::with_capacity(cmd.passengers.len());
    for p in &cmd.passengers {
        let seat = match p.seat {
            Some(_) => Some(held.next().ok_or(SeatError::NothingRequested)?),
            None => None,
        };
        let cabin = match seat {
            Some(seat) => Some(
                after
                    .cabin_of(seat)
                    .ok_or(SeatError::UnknownSeats(vec![seat]))?,
            ),
            None => None,
        };
        placed.push((seat, cabin, p.kind));
    }
    let cabins = cmd
        .passengers
        .iter()
        .zip(&placed)
        .map(|(p, (_, cabin, _))| {
            cabin
                .or_else(|| {
                    let adult = cmd
                        .passengers
                        .iter()
                        .position(|a| Some(a.passenger_id) == p.travels_with)?;
                    placed[adult].1
                })
                .ok_or(BookingError::InfantWithoutAdult(p.passenger_id))
        })
        .collect::<Result<Vec<Cabin>, _>>()?;
    let placed: Vec<(Option<Seat>, Cabin, PassengerType)> = placed
        .into_iter()
        .zip(cabins)
        .map(|((seat, _, kind), cabin)| (seat, cabin, kind))
        .collect();
    let priced = quote(
        flight,
        &placed.iter().map(|(_, c, k)| (*c, *k)).collect::<Vec<_>>(),
    )?;

    let discount_events = match discount {
        Some(code) => code.decide(DiscountCommand::Redeem {
            booking_id: cmd.booking_id,
            customer_id: cmd.customer_id,
            routes: flight.route().into_iter().collect(),
            cabins: placed.iter().map(|(_, c, _)| *c).collect(),
            fares: priced.total,
            now: cmd.now,
        })?,
        None => vec![],
    };
    let applied = discount_events.iter().find_map(|e| match e {
        DiscountEvent::DiscountRedeemed(r) => Some(AppliedDiscount {
            code: r.code.clone(),
            amount: r.amount,
        }),
        _ => None,
    });
    let total = match &applied {
        Some(d) => priced
            .total
            .checked_sub(&d.amount)
            .map_err(PricingError::from)?,
        None => priced.total,
    };

    let passengers = cmd
        .passengers
        .into_iter()
        .zip(placed.iter().zip(priced.fares.iter()))
        .map(|(p, ((seat, cabin, kind), fare))| NewPassenger {
            passenger_id: p.passenger_id,
            kind: *kind,
            seat: *seat,
            travels_with: p.travels_with,
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
        total,
        discount: applied,
        hold_expires_at: cmd.hold_expires_at,
        now: cmd.now,
    })?;
    Ok(Placed {
        seats: seat_events,
        booking: booking_events,
        discount: discount_events,
    })
}
