//! Placing a booking: one decision over the flights, their seats, the
//! discount code and the new booking.
//!
//! Each flight is read (is it on sale, what do seats cost), its seat
//! inventory decides the holds, and the booking is created with the seats it
//! got. An itinerary (a connection, a round trip, several cities) holds on
//! every flight or on none: one refused hold refuses the booking. The caller
//! appends the seat and booking events in one transaction, expecting the
//! versions it read, so a concurrent booking of the same seat is a
//! conflict, never a double sale.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::cancel::FlightSeats;
use super::decide::{check_party_of, PartyMember};
use super::{
    validate_details, AppliedDiscount, BookedSegment, Booking, BookingCommand, BookingError,
    BookingEvent, NewPassenger, PassengerDetails, PassengerType, SegmentPassenger, MAX_FLIGHTS,
};
use crate::discount::{DiscountCode, DiscountCommand, DiscountError, DiscountEvent};
use crate::event::Aggregate;
use crate::flight::Flight;
use crate::pricing::{quote, PricingError};
use crate::seats::{SeatCommand, SeatError, SeatEvent, SeatInventory, SeatRequest};
use crate::values::{Cabin, Money, Pnr, Seat};

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

/// A booking of several flights to place: `booking` names the passengers
/// and their seat requests on the first flight; `connections` their
/// requests on each further flight, in the order flown, one per passenger
/// in the same order (`None` for an infant).
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceItinerary {
    pub booking: PlaceBooking,
    pub connections: Vec<Vec<Option<SeatRequest>>>,
}

/// What placing an itinerary decided: each flight's seat events (in the
/// order flown), the booking's and the discount code's.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedItinerary {
    pub seats: Vec<Vec<SeatEvent>>,
    pub booking: Vec<BookingEvent>,
    pub discount: Vec<DiscountEvent>,
}

/// The least time between landing and the next flight's departure from the
/// same airport (the itinerary search's default).
pub const MIN_CONNECTION: Duration = Duration::minutes(45);

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
    #[error("flight {0} leaves before the flight before it lands")]
    OutOfOrder(Uuid),
    #[error("flight {0} leaves less than {minutes} minutes after the flight before it lands", minutes = MIN_CONNECTION.num_minutes())]
    ConnectionTooShort(Uuid),
    #[error("the flights of an itinerary are sold in one currency")]
    MixedCurrencies,
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
            PlaceBookingError::OutOfOrder(_)
            | PlaceBookingError::ConnectionTooShort(_)
            | PlaceBookingError::MixedCurrencies => Some("flights"),
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
    single(place_itinerary(
        &[(flight, inventory)],
        discount,
        PlaceItinerary {
            booking: cmd,
            connections: vec![],
        },
    ))
}

/// [`place_booking`] without the waiting list's claim: how an offer to the
/// line itself is placed.
pub fn place_booking_unchecked(
    flight: &Flight,
    inventory: &SeatInventory,
    discount: Option<&DiscountCode>,
    cmd: PlaceBooking,
) -> Result<Placed, PlaceBookingError> {
    single(place_unchecked(
        &[(flight, inventory)],
        discount,
        PlaceItinerary {
            booking: cmd,
            connections: vec![],
        },
    ))
}

fn single(placed: Result<PlacedItinerary, PlaceBookingError>) -> Result<Placed, PlaceBookingError> {
    let placed = placed?;
    Ok(Placed {
        seats: placed.seats.into_iter().next().unwrap_or_default(),
        booking: placed.booking,
        discount: placed.discount,
    })
}

/// Places a booking on every flight of `flights` (in the order flown; the
/// first is the booking's own): seats held on each, all or none, priced
/// flight by flight, the discount code taken off their sum. The flights
/// must follow one another: each leaves after the one before lands, at
/// least [`MIN_CONNECTION`] later when it leaves from where that one
/// landed. The waiting lists' claims hold on every flight, as in
/// [`place_booking`].
pub fn place_itinerary(
    flights: &[FlightSeats<'_>],
    discount: Option<&DiscountCode>,
    cmd: PlaceItinerary,
) -> Result<PlacedItinerary, PlaceBookingError> {
    let now = cmd.booking.now;
    for (n, (_, inventory)) in flights.iter().enumerate() {
        let requests: Vec<SeatRequest> = requests_on(&cmd, n).into_iter().flatten().collect();
        for request in requests {
            let cabin = match request {
                SeatRequest::Cabin(cabin) => Some(cabin),
                SeatRequest::Seat(seat) => inventory.cabin_of(seat),
            };
            if let Some(cabin) = cabin.filter(|c| inventory.line_first(*c, now)) {
                return Err(SeatError::LineFirst { cabin }.into());
            }
        }
    }
    place_unchecked(flights, discount, cmd)
}

/// Each passenger's seat request on the `n`th flight.
fn requests_on(cmd: &PlaceItinerary, n: usize) -> Vec<Option<SeatRequest>> {
    match n {
        0 => cmd.booking.passengers.iter().map(|p| p.seat).collect(),
        n => cmd.connections.get(n - 1).cloned().unwrap_or_default(),
    }
}

/// The seats one flight of a booking got, and their fares.
struct Leg {
    seat_events: Vec<SeatEvent>,
    /// Per passenger: their seat (`None` for an infant) and cabin.
    placed: Vec<(Option<Seat>, Cabin)>,
    fares: Vec<Money>,
    total: Money,
}

fn place_unchecked(
    flights: &[FlightSeats<'_>],
    discount: Option<&DiscountCode>,
    cmd: PlaceItinerary,
) -> Result<PlacedItinerary, PlaceBookingError> {
    let PlaceItinerary {
        booking: cmd,
        connections,
    } = &cmd;
    if flights.is_empty() || flights.len() > MAX_FLIGHTS || flights.len() != connections.len() + 1 {
        return Err(BookingError::FlightCount.into());
    }
    check_sequence(flights, cmd.now)?;
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

    let whole = PlaceItinerary {
        booking: cmd.clone(),
        connections: connections.clone(),
    };
    let mut legs = Vec::with_capacity(flights.len());
    for (n, (flight, inventory)) in flights.iter().enumerate() {
        let requests = requests_on(&whole, n);
        let seat_of = |i: usize| requests.get(i).copied().flatten();
        // On every flight an infant has no seat and everyone else one.
        let mismatch = requests.len() != cmd.passengers.len()
            || cmd
                .passengers
                .iter()
                .enumerate()
                .any(|(i, p)| seat_of(i).is_some() != p.seat.is_some());
        if mismatch {
            return Err(BookingError::SegmentMismatch(flight.id().unwrap_or_default()).into());
        }
        legs.push(hold_on(flight, inventory, cmd, &requests)?);
    }

    let currency = legs[0].total.currency();
    let fares = Money::sum(currency, legs.iter().map(|l| &l.total)).map_err(PricingError::from)?;
    let discount_events = match discount {
        Some(code) => code.decide(DiscountCommand::Redeem {
            booking_id: cmd.booking_id,
            customer_id: cmd.customer_id,
            routes: flights.iter().filter_map(|(f, _)| f.route()).collect(),
            cabins: legs
                .iter()
                .flat_map(|l| l.placed.iter().map(|(_, c)| *c))
                .collect(),
            fares,
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
        Some(d) => fares.checked_sub(&d.amount).map_err(PricingError::from)?,
        None => fares,
    };

    let mut legs = legs.into_iter();
    let first = legs.next().ok_or(BookingError::FlightCount)?;
    let passengers = cmd
        .passengers
        .iter()
        .zip(first.placed.iter().zip(&first.fares))
        .map(|(p, ((seat, cabin), fare))| NewPassenger {
            passenger_id: p.passenger_id,
            kind: p.kind,
            seat: *seat,
            travels_with: p.travels_with,
            cabin: *cabin,
            fare: *fare,
            details: p.details.clone(),
        })
        .collect();
    let mut seats = vec![first.seat_events];
    let mut segments = Vec::with_capacity(flights.len() - 1);
    for ((flight, _), leg) in flights[1..].iter().zip(legs) {
        segments.push(BookedSegment {
            flight_id: flight.id().ok_or(PlaceBookingError::FlightNotFound)?,
            passengers: cmd
                .passengers
                .iter()
                .zip(leg.placed.iter().zip(&leg.fares))
                .map(|(p, ((seat, cabin), fare))| SegmentPassenger {
                    passenger_id: p.passenger_id,
                    seat: *seat,
                    cabin: *cabin,
                    fare: *fare,
                })
                .collect(),
        });
        seats.push(leg.seat_events);
    }
    let booking_events = Booking::default().decide(BookingCommand::Create {
        booking_id: cmd.booking_id,
        pnr: cmd.pnr.clone(),
        flight_id: flights[0].0.id().ok_or(PlaceBookingError::FlightNotFound)?,
        customer_id: cmd.customer_id,
        created_by: cmd.created_by,
        passengers,
        connections: segments,
        total,
        discount: applied,
        hold_expires_at: cmd.hold_expires_at,
        now: cmd.now,
    })?;
    Ok(PlacedItinerary {
        seats,
        booking: booking_events,
        discount: discount_events,
    })
}

/// The flights of an itinerary follow one another, in one currency, each
/// named once.
fn check_sequence(
    flights: &[FlightSeats<'_>],
    now: DateTime<Utc>,
) -> Result<(), PlaceBookingError> {
    let mut seen = std::collections::BTreeSet::new();
    for (flight, inventory) in flights {
        let flight_id = flight.id().ok_or(PlaceBookingError::FlightNotFound)?;
        if !seen.insert(flight_id) {
            return Err(BookingError::FlightTwice(flight_id).into());
        }
        if flight.is_cancelled() {
            return Err(PlaceBookingError::FlightCancelled);
        }
        if flight.has_departed(now) {
            return Err(PlaceBookingError::FlightDeparted);
        }
        if inventory.flight_id() != Some(flight_id) {
            return Err(PlaceBookingError::InventoryMismatch);
        }
        if flight.currency() != flights[0].0.currency() {
            return Err(PlaceBookingError::MixedCurrencies);
        }
    }
    for pair in flights.windows(2) {
        let (before, after) = (pair[0].0, pair[1].0);
        let (Some(lands), Some(leaves), Some(next)) =
            (before.arrives_at(), after.departs_at(), after.id())
        else {
            return Err(PlaceBookingError::FlightNotFound);
        };
        let same_airport = matches!(
            (before.route(), after.route()),
            (Some(a), Some(b)) if a.destination == b.origin
        );
        if leaves < lands {
            return Err(PlaceBookingError::OutOfOrder(next));
        }
        if same_airport && leaves < lands + MIN_CONNECTION {
            return Err(PlaceBookingError::ConnectionTooShort(next));
        }
    }
    Ok(())
}

/// Holds one flight's seats for the booking's passengers (`requests`, one
/// per passenger) and prices them: each in the cabin of the seat they got,
/// an infant in the cabin of the adult whose lap they sit on.
fn hold_on(
    flight: &Flight,
    inventory: &SeatInventory,
    cmd: &PlaceBooking,
    requests: &[Option<SeatRequest>],
) -> Result<Leg, PlaceBookingError> {
    let seat_events = inventory.decide(SeatCommand::Hold {
        booking_id: cmd.booking_id,
        requests: requests.iter().flatten().copied().collect(),
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
    // The seats come back in the order of the seated passengers' requests.
    let mut held = held.into_iter();
    let mut placed: Vec<(Option<Seat>, Option<Cabin>)> = Vec::with_capacity(requests.len());
    for request in requests {
        let seat = match request {
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
        placed.push((seat, cabin));
    }
    let cabins = cmd
        .passengers
        .iter()
        .zip(&placed)
        .map(|(p, (_, cabin))| {
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
    let priced = quote(
        flight,
        &cmd.passengers
            .iter()
            .zip(&cabins)
            .map(|(p, c)| (*c, p.kind))
            .collect::<Vec<_>>(),
    )?;
    Ok(Leg {
        seat_events,
        placed: placed
            .into_iter()
            .zip(cabins)
            .map(|((seat, _), cabin)| (seat, cabin))
            .collect(),
        fares: priced.fares,
        total: priced.total,
    })
}
