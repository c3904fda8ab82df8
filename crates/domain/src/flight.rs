//! Flights: schedule, fares, reschedule and cancellation (`flight-…`).
//!
//! The seat locks of a flight live in their own aggregate
//! ([`crate::seats`]) so that a fare change never contends with bookings on
//! a hot flight; [`schedule_flight`] opens both together.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Aggregate, DomainEvent};
use crate::seats::{InventoryOpened, InventorySeat, SeatEvent};
use crate::values::{plain_text, AirportCode, Cabin, Currency, FlightNumber, Money, Seat};

pub const MAX_AIRLINE_LEN: usize = 100;
pub const MAX_REASON_LEN: usize = 500;
/// The highest fare of a seat, in the flight's currency: nine passengers'
/// fares, refunds and invoice lines then stay far from any overflow.
pub const MAX_FARE: rust_decimal::Decimal =
    rust_decimal::Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// One cabin's block of rows. `seat_letters` such as `"ABCDEF"` is
/// normalised to upper case in the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinSpec {
    pub cabin: Cabin,
    pub first_row: u8,
    pub last_row: u8,
    pub seat_letters: String,
    pub fare: Money,
    /// What a child pays, in percent of `fare` ([`DEFAULT_CHILD_PERCENT`]
    /// when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_percent: Option<u8>,
    /// What an infant on an adult's lap pays, in percent of `fare`
    /// ([`DEFAULT_INFANT_PERCENT`] when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infant_percent: Option<u8>,
}

/// A child's share of the adult fare unless the cabin says otherwise.
pub const DEFAULT_CHILD_PERCENT: u8 = 75;
/// An infant's share of the adult fare unless the cabin says otherwise.
pub const DEFAULT_INFANT_PERCENT: u8 = 10;

impl CabinSpec {
    /// A cabin with the default child and infant fares.
    pub fn new(cabin: Cabin, first_row: u8, last_row: u8, seat_letters: &str, fare: Money) -> Self {
        Self {
            cabin,
            first_row,
            last_row,
            seat_letters: seat_letters.to_owned(),
            fare,
            child_percent: None,
            infant_percent: None,
        }
    }

    /// The share of the adult fare a passenger of `kind` pays, in percent.
    pub fn percent_for(&self, kind: crate::booking::PassengerType) -> u8 {
        use crate::booking::PassengerType as P;
        match kind {
            P::Adult => 100,
            P::Child => self.child_percent.unwrap_or(DEFAULT_CHILD_PERCENT),
            P::Infant => self.infant_percent.unwrap_or(DEFAULT_INFANT_PERCENT),
        }
    }

    pub fn seats(&self) -> impl Iterator<Item = Seat> + '_ {
        (self.first_row..=self.last_row).flat_map(move |row| {
            self.seat_letters
                .chars()
                .filter_map(move |letter| Seat::new(row, letter).ok())
        })
    }

    pub fn seat_count(&self) -> usize {
        self.seats().count()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFlight {
    pub flight_id: Uuid,
    pub flight_number: FlightNumber,
    pub airline: String,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
    pub currency: Currency,
    pub cabins: Vec<CabinSpec>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FlightCommand {
    Schedule(ScheduleFlight),
    ChangeFare {
        cabin: Cabin,
        fare: Money,
        now: DateTime<Utc>,
    },
    Reschedule {
        departs_at: DateTime<Utc>,
        arrives_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    Cancel {
        reason: String,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlightScheduled {
    pub flight_id: Uuid,
    pub flight_number: FlightNumber,
    pub airline: String,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
    pub currency: Currency,
    pub cabins: Vec<CabinSpec>,
    pub scheduled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FareChanged {
    pub flight_id: Uuid,
    pub cabin: Cabin,
    pub previous_fare: Money,
    pub fare: Money,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlightRescheduled {
    pub flight_id: Uuid,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
    pub previous_departs_at: DateTime<Utc>,
    pub previous_arrives_at: DateTime<Utc>,
    pub rescheduled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlightCancelled {
    pub flight_id: Uuid,
    pub reason: String,
    pub cancelled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum FlightEvent {
    FlightScheduled(FlightScheduled),
    FareChanged(FareChanged),
    FlightRescheduled(FlightRescheduled),
    FlightCancelled(FlightCancelled),
}

impl DomainEvent for FlightEvent {
    fn event_type(&self) -> &'static str {
        match self {
            FlightEvent::FlightScheduled(_) => "FlightScheduled",
            FlightEvent::FareChanged(_) => "FareChanged",
            FlightEvent::FlightRescheduled(_) => "FlightRescheduled",
            FlightEvent::FlightCancelled(_) => "FlightCancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlightError {
    #[error("flight is already scheduled")]
    AlreadyScheduled,
    #[error("flight is not scheduled")]
    NotScheduled,
    #[error("flight is cancelled")]
    Cancelled,
    #[error("flight has departed")]
    Departed,
    #[error("airline must be 1 to {MAX_AIRLINE_LEN} characters, none of them control or invisible formatting characters")]
    InvalidAirline,
    #[error("origin and destination must differ")]
    SameOriginAndDestination,
    #[error("arrival must be after departure")]
    ArrivesBeforeDeparture,
    #[error("departure must be in the future")]
    DepartsInPast,
    #[error("a flight needs at least one cabin")]
    NoCabins,
    #[error("cabin {0} is listed twice")]
    DuplicateCabin(Cabin),
    #[error("cabin {0} rows must be within 1-99 and first_row <= last_row")]
    InvalidRows(Cabin),
    #[error("cabins {0} and {1} share rows")]
    OverlappingRows(Cabin, Cabin),
    #[error("cabin {0} seat letters must be distinct letters A-K")]
    InvalidSeatLetters(Cabin),
    #[error("fare for {0} must be greater than zero")]
    InvalidFare(Cabin),
    #[error("fare for {0} must be at most {MAX_FARE}")]
    FareTooHigh(Cabin),
    #[error("cabin {0}: child and infant fares are 0 to 100 percent of the adult fare")]
    InvalidFareShare(Cabin),
    #[error("fare must be in {expected}, got {found}")]
    WrongCurrency { expected: Currency, found: Currency },
    #[error("flight has no {0} cabin")]
    UnknownCabin(Cabin),
    #[error("reason must be 1 to {MAX_REASON_LEN} characters, none of them control or invisible formatting characters")]
    InvalidReason,
    #[error("flight is already cancelled")]
    AlreadyCancelled,
}

impl FlightError {
    /// The request field a validation error is about (`None` for state
    /// conflicts), for field-level problem details.
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            FlightError::InvalidAirline => "airline",
            FlightError::SameOriginAndDestination => "destination",
            FlightError::ArrivesBeforeDeparture => "arrives_at",
            FlightError::DepartsInPast => "departs_at",
            FlightError::NoCabins
            | FlightError::DuplicateCabin(_)
            | FlightError::InvalidRows(_)
            | FlightError::OverlappingRows(..)
            | FlightError::InvalidSeatLetters(_) => "cabins",
            FlightError::InvalidFare(_)
            | FlightError::FareTooHigh(_)
            | FlightError::InvalidFareShare(_)
            | FlightError::WrongCurrency { .. } => "fare",
            FlightError::UnknownCabin(_) => "cabin",
            FlightError::InvalidReason => "reason",
            FlightError::AlreadyScheduled
            | FlightError::NotScheduled
            | FlightError::Cancelled
            | FlightError::Departed
            | FlightError::AlreadyCancelled => return None,
        })
    }

    /// True for refusals caused by bad input rather than the flight's state.
    pub fn is_validation(&self) -> bool {
        self.field().is_some()
    }
}

/// A flight's state. `schedule` is `None` until `FlightScheduled`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Flight {
    pub schedule: Option<FlightScheduled>,
    pub cancelled: Option<FlightCancelled>,
}

impl Flight {
    pub fn id(&self) -> Option<Uuid> {
        self.schedule.as_ref().map(|s| s.flight_id)
    }

    pub fn is_scheduled(&self) -> bool {
        self.schedule.is_some()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_some()
    }

    pub fn departs_at(&self) -> Option<DateTime<Utc>> {
        self.schedule.as_ref().map(|s| s.departs_at)
    }

    pub fn arrives_at(&self) -> Option<DateTime<Utc>> {
        self.schedule.as_ref().map(|s| s.arrives_at)
    }

    pub fn currency(&self) -> Option<Currency> {
        self.schedule.as_ref().map(|s| s.currency)
    }

    /// Departed means "at or past the scheduled departure": no more sales or
    /// changes from then on.
    pub fn has_departed(&self, now: DateTime<Utc>) -> bool {
        self.departs_at().is_some_and(|d| now >= d)
    }

    pub fn cabins(&self) -> &[CabinSpec] {
        self.schedule
            .as_ref()
            .map(|s| s.cabins.as_slice())
            .unwrap_or_default()
    }

    /// Where it flies from and to.
    pub fn route(&self) -> Option<crate::discount::Route> {
        self.schedule.as_ref().map(|s| crate::discount::Route {
            origin: s.origin,
            destination: s.destination,
        })
    }

    pub fn cabin(&self, cabin: Cabin) -> Option<&CabinSpec> {
        self.cabins().iter().find(|c| c.cabin == cabin)
    }

    pub fn fare(&self, cabin: Cabin) -> Option<Money> {
        self.cabins()
            .iter()
            .find(|c| c.cabin == cabin)
            .map(|c| c.fare)
    }

    /// Every seat with its cabin, ordered by row then letter.
    pub fn seat_map(&self) -> Vec<(Seat, Cabin)> {
        let mut seats: Vec<(Seat, Cabin)> = self
            .cabins()
            .iter()
            .flat_map(|c| c.seats().map(move |s| (s, c.cabin)))
            .collect();
        seats.sort();
        seats
    }

    pub fn cabin_of(&self, seat: Seat) -> Option<Cabin> {
        self.cabins()
            .iter()
            .find(|c| {
                (c.first_row..=c.last_row).contains(&seat.row())
                    && c.seat_letters.contains(seat.letter())
            })
            .map(|c| c.cabin)
    }

    /// The schedule of a flight that can still change: scheduled, not
    /// cancelled, not departed.
    fn changeable(&self, now: DateTime<Utc>) -> Result<&FlightScheduled, FlightError> {
        let schedule = self.schedule.as_ref().ok_or(FlightError::NotScheduled)?;
        if self.cancelled.is_some() {
            return Err(FlightError::Cancelled);
        }
        if now >= schedule.departs_at {
            return Err(FlightError::Departed);
        }
        Ok(schedule)
    }
}

fn validate_times(
    departs_at: DateTime<Utc>,
    arrives_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), FlightError> {
    if departs_at <= now {
        return Err(FlightError::DepartsInPast);
    }
    if arrives_at <= departs_at {
        return Err(FlightError::ArrivesBeforeDeparture);
    }
    Ok(())
}

fn validate_fare(cabin: Cabin, fare: Money, currency: Currency) -> Result<(), FlightError> {
    if fare.currency() != currency {
        return Err(FlightError::WrongCurrency {
            expected: currency,
            found: fare.currency(),
        });
    }
    if fare.is_zero() {
        return Err(FlightError::InvalidFare(cabin));
    }
    if fare.amount() > MAX_FARE {
        return Err(FlightError::FareTooHigh(cabin));
    }
    Ok(())
}

fn validate_cabins(
    cabins: &[CabinSpec],
    currency: Currency,
) -> Result<Vec<CabinSpec>, FlightError> {
    if cabins.is_empty() {
        return Err(FlightError::NoCabins);
    }
    let mut normalised: Vec<CabinSpec> = Vec::with_capacity(cabins.len());
    for spec in cabins {
        if normalised.iter().any(|c| c.cabin == spec.cabin) {
            return Err(FlightError::DuplicateCabin(spec.cabin));
        }
        if spec.first_row < 1 || spec.last_row > Seat::MAX_ROW || spec.first_row > spec.last_row {
            return Err(FlightError::InvalidRows(spec.cabin));
        }
        let letters = spec.seat_letters.trim().to_ascii_uppercase();
        let distinct: BTreeSet<char> = letters.chars().collect();
        if letters.is_empty()
            || distinct.len() != letters.chars().count()
            || !letters.chars().all(Seat::is_letter)
        {
            return Err(FlightError::InvalidSeatLetters(spec.cabin));
        }
        validate_fare(spec.cabin, spec.fare, currency)?;
        if [spec.child_percent, spec.infant_percent]
            .into_iter()
            .flatten()
            .any(|p| p > 100)
        {
            return Err(FlightError::InvalidFareShare(spec.cabin));
        }
        if let Some(other) = normalised
            .iter()
            .find(|c| spec.first_row <= c.last_row && c.first_row <= spec.last_row)
        {
            return Err(FlightError::OverlappingRows(other.cabin, spec.cabin));
        }
        normalised.push(CabinSpec {
            seat_letters: letters,
            ..spec.clone()
        });
    }
    Ok(normalised)
}

fn validate_reason(reason: &str) -> Result<String, FlightError> {
    plain_text(reason, MAX_REASON_LEN).map_err(|_| FlightError::InvalidReason)
}

impl Aggregate for Flight {
    const CATEGORY: &'static str = "flight";
    type Command = FlightCommand;
    type Event = FlightEvent;
    type Error = FlightError;

    fn decide(&self, command: FlightCommand) -> Result<Vec<FlightEvent>, FlightError> {
        match command {
            FlightCommand::Schedule(cmd) => {
                if self.schedule.is_some() {
                    return Err(FlightError::AlreadyScheduled);
                }
                let airline = plain_text(&cmd.airline, MAX_AIRLINE_LEN)
                    .map_err(|_| FlightError::InvalidAirline)?;
                if cmd.origin == cmd.destination {
                    return Err(FlightError::SameOriginAndDestination);
                }
                validate_times(cmd.departs_at, cmd.arrives_at, cmd.now)?;
                let cabins = validate_cabins(&cmd.cabins, cmd.currency)?;
                Ok(vec![FlightEvent::FlightScheduled(FlightScheduled {
                    flight_id: cmd.flight_id,
                    flight_number: cmd.flight_number,
                    airline,
                    origin: cmd.origin,
                    destination: cmd.destination,
                    departs_at: cmd.departs_at,
                    arrives_at: cmd.arrives_at,
                    currency: cmd.currency,
                    cabins,
                    scheduled_at: cmd.now,
                })])
            }
            FlightCommand::ChangeFare { cabin, fare, now } => {
                let schedule = self.changeable(now)?;
                let previous_fare = self.fare(cabin).ok_or(FlightError::UnknownCabin(cabin))?;
                validate_fare(cabin, fare, schedule.currency)?;
                if previous_fare == fare {
                    return Ok(vec![]);
                }
                Ok(vec![FlightEvent::FareChanged(FareChanged {
                    flight_id: schedule.flight_id,
                    cabin,
                    previous_fare,
                    fare,
                    changed_at: now,
                })])
            }
            FlightCommand::Reschedule {
                departs_at,
                arrives_at,
                now,
            } => {
                let schedule = self.changeable(now)?;
                validate_times(departs_at, arrives_at, now)?;
                if (departs_at, arrives_at) == (schedule.departs_at, schedule.arrives_at) {
                    return Ok(vec![]);
                }
                Ok(vec![FlightEvent::FlightRescheduled(FlightRescheduled {
                    flight_id: schedule.flight_id,
                    departs_at,
                    arrives_at,
                    previous_departs_at: schedule.departs_at,
                    previous_arrives_at: schedule.arrives_at,
                    rescheduled_at: now,
                })])
            }
            FlightCommand::Cancel { reason, now } => {
                if self.schedule.is_some() && self.cancelled.is_some() {
                    return Err(FlightError::AlreadyCancelled);
                }
                let schedule = self.changeable(now)?;
                let reason = validate_reason(&reason)?;
                Ok(vec![FlightEvent::FlightCancelled(FlightCancelled {
                    flight_id: schedule.flight_id,
                    reason,
                    cancelled_at: now,
                })])
            }
        }
    }

    fn evolve(mut self, event: &FlightEvent) -> Self {
        match event {
            FlightEvent::FlightScheduled(e) => self.schedule = Some(e.clone()),
            FlightEvent::FareChanged(e) => {
                if let Some(spec) = self
                    .schedule
                    .as_mut()
                    .and_then(|s| s.cabins.iter_mut().find(|c| c.cabin == e.cabin))
                {
                    spec.fare = e.fare;
                }
            }
            FlightEvent::FlightRescheduled(e) => {
                if let Some(schedule) = self.schedule.as_mut() {
                    schedule.departs_at = e.departs_at;
                    schedule.arrives_at = e.arrives_at;
                }
            }
            FlightEvent::FlightCancelled(e) => self.cancelled = Some(e.clone()),
        }
        self
    }
}

/// Schedules a flight and opens its seat inventory in one decision, so the
/// caller appends both streams atomically and a flight never exists without
/// seats to sell.
pub fn schedule_flight(
    cmd: ScheduleFlight,
) -> Result<(Vec<FlightEvent>, Vec<SeatEvent>), FlightError> {
    let flight_id = cmd.flight_id;
    let flight_events = Flight::default().decide(FlightCommand::Schedule(cmd))?;
    let flight = Flight::fold(&flight_events);
    let seats = flight
        .seat_map()
        .into_iter()
        .map(|(seat, cabin)| InventorySeat { seat, cabin })
        .collect();
    let seat_events = vec![SeatEvent::InventoryOpened(InventoryOpened {
        flight_id,
        seats,
    })];
    Ok((flight_events, seat_events))
}
