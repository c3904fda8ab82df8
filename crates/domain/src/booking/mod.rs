//! Bookings (`booking-…`): from hold to ticket, and every way out.
//!
//! ```text
//! HELD ─submit─▶ PAYMENT_PENDING ─confirm─▶ CONFIRMED ─issue─▶ TICKETED
//!  │                 │  └─payment failed─▶ PAYMENT_FAILED        │
//!  └─expire─▶ EXPIRED ◀┘                                          │
//! HELD / PAYMENT_PENDING / CONFIRMED ─fail─▶ FAILED               │
//! HELD / CONFIRMED / TICKETED (and PAYMENT_PENDING when the flight is
//! cancelled) ─cancel─▶ CANCELLED ◀────────────────────────────────┘
//! ```
//!
//! Submodules: [`place`] (the multi-aggregate decision that holds seats and
//! creates the booking together), [`cancel`] (cancellation with its
//! seats given back), [`change_seat`] (a passenger's seat exchanged for
//! another in one append) and [`move_flight`] (the booking moved to another
//! flight of the route, both flights' seats in one append).

mod cancel;
mod change_seat;
mod decide;
mod events;
mod move_flight;
mod place;

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Aggregate;
use crate::payment::InvoiceLineInput;
pub use crate::pricing::{refund_policy, RefundError};
use crate::user::{validate_name, validate_phone};
use crate::values::{Cabin, Email, Money, MoneyError, Personal, Pnr, Seat, TicketNumber};
pub use cancel::{
    cancel_booking, cancel_passenger, CancelBooking, CancelBookingError, CancelPassenger,
    FlightSeats, SeatsByFlight,
};
pub use change_seat::{change_seat, ChangeSeat, ChangeSeatError};
pub use events::*;
pub use move_flight::{
    abandon_move, complete_move, move_booking, MoveBooking, MoveBookingError, Moved, MOVE_HOLD,
};
pub use place::{
    place_booking, place_booking_unchecked, place_itinerary, PassengerRequest, PlaceBooking,
    PlaceBookingError, PlaceItinerary, Placed, PlacedItinerary, MIN_CONNECTION,
};

pub const MAX_PASSENGERS: usize = 9;

/// The most flights one booking's itinerary holds: a round trip of two
/// stops each way.
pub const MAX_FLIGHTS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingStatus {
    Held,
    PaymentPending,
    Confirmed,
    Ticketed,
    Cancelled,
    PaymentFailed,
    Expired,
    Failed,
}

impl BookingStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            BookingStatus::Held => "HELD",
            BookingStatus::PaymentPending => "PAYMENT_PENDING",
            BookingStatus::Confirmed => "CONFIRMED",
            BookingStatus::Ticketed => "TICKETED",
            BookingStatus::Cancelled => "CANCELLED",
            BookingStatus::PaymentFailed => "PAYMENT_FAILED",
            BookingStatus::Expired => "EXPIRED",
            BookingStatus::Failed => "FAILED",
        }
    }

    /// No command moves a booking out of these.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            BookingStatus::Cancelled
                | BookingStatus::PaymentFailed
                | BookingStatus::Expired
                | BookingStatus::Failed
        )
    }
}

impl BookingStatus {
    pub const ALL: [BookingStatus; 8] = [
        BookingStatus::Held,
        BookingStatus::PaymentPending,
        BookingStatus::Confirmed,
        BookingStatus::Ticketed,
        BookingStatus::Cancelled,
        BookingStatus::PaymentFailed,
        BookingStatus::Expired,
        BookingStatus::Failed,
    ];
}

/// A name that is no booking status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown booking status {0:?}")]
pub struct UnknownBookingStatus(pub String);

impl std::str::FromStr for BookingStatus {
    type Err = UnknownBookingStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| UnknownBookingStatus(s.to_owned()))
    }
}

impl TryFrom<String> for BookingStatus {
    type Error = UnknownBookingStatus;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who or what cancelled a booking; a flight cancellation always refunds in
/// full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    Customer,
    Agent,
    Admin,
    FlightCancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassengerDetails {
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: NaiveDate,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub passport: Option<String>,
}

/// Who a passenger is for pricing and seating: adults pay the cabin's
/// fare, children a share of it, and an infant sits on an adult's lap (no
/// seat of their own, at most one per adult).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassengerType {
    #[default]
    Adult,
    Child,
    Infant,
}

impl PassengerType {
    pub fn as_str(&self) -> &'static str {
        match self {
            PassengerType::Adult => "adult",
            PassengerType::Child => "child",
            PassengerType::Infant => "infant",
        }
    }

    /// Whether such a passenger takes a seat of their own.
    pub fn has_seat(&self) -> bool {
        !matches!(self, PassengerType::Infant)
    }
}

impl fmt::Display for PassengerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPassenger {
    pub passenger_id: Uuid,
    pub kind: PassengerType,
    /// `None` for an infant, who travels on `travels_with`'s lap.
    pub seat: Option<Seat>,
    pub travels_with: Option<Uuid>,
    pub cabin: Cabin,
    pub fare: Money,
    pub details: PassengerDetails,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BookingCommand {
    Create {
        booking_id: Uuid,
        pnr: Pnr,
        flight_id: Uuid,
        customer_id: Uuid,
        created_by: Uuid,
        passengers: Vec<NewPassenger>,
        /// The itinerary's further flights (empty for one flight), each
        /// naming every passenger of `passengers`.
        connections: Vec<BookedSegment>,
        /// The fares on every flight less `discount`.
        total: Money,
        discount: Option<AppliedDiscount>,
        hold_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    SubmitPayment {
        payment_id: Uuid,
        now: DateTime<Utc>,
    },
    Confirm {
        now: DateTime<Utc>,
    },
    MarkPaymentFailed {
        reason: String,
    },
    Expire {
        now: DateTime<Utc>,
    },
    /// One ticket per passenger per flight (`flight_id` may be left out
    /// on a booking of one flight).
    IssueTickets {
        tickets: Vec<IssuedTicket>,
        now: DateTime<Utc>,
    },
    Fail {
        reason: String,
    },
    Cancel {
        reason: String,
        now: DateTime<Utc>,
        departs_at: DateTime<Utc>,
        by: CancelledBy,
    },
    UpdatePassenger {
        passenger_id: Uuid,
        details: PassengerDetails,
        now: DateTime<Utc>,
    },
    /// Moves a passenger to `seat` on `flight_id` (one of the booking's);
    /// whether it is free is the seat inventory's to say (see
    /// [`change_seat`]).
    ChangeSeat {
        passenger_id: Uuid,
        flight_id: Uuid,
        seat: Seat,
        now: DateTime<Utc>,
    },
    /// Takes one passenger of several off the booking, refunding their
    /// share by the policy.
    CancelPassenger {
        passenger_id: Uuid,
        reason: String,
        now: DateTime<Utc>,
        departs_at: DateTime<Utc>,
        by: CancelledBy,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    #[error("booking already exists")]
    AlreadyCreated,
    #[error("booking does not exist")]
    NotCreated,
    #[error("booking is {status}; cannot {action}")]
    InvalidState {
        status: BookingStatus,
        action: &'static str,
    },
    #[error("a booking needs 1 to {MAX_PASSENGERS} passengers")]
    PassengerCount,
    #[error("passenger {0} is listed twice")]
    DuplicatePassenger(Uuid),
    #[error("seat {0} is given to two passengers")]
    DuplicateSeat(Seat),
    #[error("passenger {0}: an infant has no seat and travels with an adult of the booking")]
    InfantWithoutAdult(Uuid),
    #[error("passenger {0}: only an infant travels on another passenger's lap; everyone else needs a seat")]
    SeatRequired(Uuid),
    #[error("adult {0} already has an infant on their lap")]
    SecondInfant(Uuid),
    #[error(
        "{0} must be 1 to 100 characters, none of them control or invisible formatting characters"
    )]
    InvalidName(&'static str),
    #[error("date of birth is in the future")]
    DateOfBirthInFuture,
    #[error("date of birth must be at most {MAX_AGE_YEARS} years ago")]
    DateOfBirthTooEarly,
    #[error("phone number is not valid")]
    InvalidPhone,
    #[error("passport number is not valid")]
    InvalidPassport,
    #[error("total {total} does not match the fares {fares} less the discount")]
    TotalMismatch { total: Money, fares: Money },
    #[error("the discount is in another currency than the fares")]
    DiscountCurrency,
    #[error("hold must expire after now")]
    HoldExpiryNotInFuture,
    #[error("hold expired at {0}")]
    HoldExpired(DateTime<Utc>),
    #[error("hold runs until {0}")]
    HoldNotExpired(DateTime<Utc>),
    #[error("no passenger {0} on this booking")]
    UnknownPassenger(Uuid),
    #[error("passenger {0} is an infant on an adult's lap and has no seat to change")]
    NoSeatToChange(Uuid),
    #[error("passenger {0} is the booking's last: cancel the booking instead")]
    LastPassenger(Uuid),
    #[error("an infant travels on the lap of passenger {0}: cancel the infant first")]
    InfantOnLap(Uuid),
    #[error(
        "a move to flight {0} is waiting for its fare difference to be paid; try again in a moment"
    )]
    MovePending(Uuid),
    #[error("no move is waiting for payment")]
    NoPendingMove,
    #[error("exactly one ticket per passenger per flight is required")]
    TicketsMismatch,
    #[error("an itinerary holds 1 to {MAX_FLIGHTS} flights")]
    FlightCount,
    #[error("flight {0} is named twice in the itinerary")]
    FlightTwice(Uuid),
    #[error("flight {0}: every passenger of the booking needs a place on every flight, an infant on the same adult's lap")]
    SegmentMismatch(Uuid),
    #[error("the booking does not fly flight {0}")]
    NotOnFlight(Uuid),
    #[error("a booking of several flights cannot {0}: cancel it and book again")]
    NotForItinerary(&'static str),
    #[error("booking is already cancelled")]
    AlreadyCancelled,
    #[error("flight has departed; the booking can no longer be cancelled")]
    Departed,
    #[error("reason must be 1 to {MAX_REASON_LEN} characters, none of them control or invisible formatting characters")]
    InvalidReason,
    #[error(transparent)]
    Money(#[from] crate::values::MoneyError),
}

impl BookingError {
    /// The request field a validation error is about, for field-level
    /// problem details. Passenger fields are named as in the request body.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            BookingError::PassengerCount
            | BookingError::DuplicatePassenger(_)
            | BookingError::SegmentMismatch(_) => Some("passengers"),
            BookingError::FlightCount | BookingError::FlightTwice(_) => Some("flights"),
            BookingError::DuplicateSeat(_)
            | BookingError::SeatRequired(_)
            | BookingError::NoSeatToChange(_) => Some("seat"),
            BookingError::InfantWithoutAdult(_) | BookingError::SecondInfant(_) => {
                Some("travels_with")
            }
            BookingError::InvalidName(field) => Some(field),
            BookingError::DateOfBirthInFuture | BookingError::DateOfBirthTooEarly => {
                Some("date_of_birth")
            }
            BookingError::InvalidPhone => Some("phone"),
            BookingError::InvalidPassport => Some("passport"),
            BookingError::InvalidReason => Some("reason"),
            BookingError::TotalMismatch { .. } => Some("total"),
            _ => None,
        }
    }
}

/// Normalises and checks one passenger's personal details.
pub fn validate_details(
    details: PassengerDetails,
    today: NaiveDate,
) -> Result<PassengerDetails, BookingError> {
    let first_name =
        validate_name(&details.first_name).ok_or(BookingError::InvalidName("first_name"))?;
    let last_name =
        validate_name(&details.last_name).ok_or(BookingError::InvalidName("last_name"))?;
    if details.date_of_birth > today {
        return Err(BookingError::DateOfBirthInFuture);
    }
    if today.years_since(details.date_of_birth).unwrap_or(0) > MAX_AGE_YEARS {
        return Err(BookingError::DateOfBirthTooEarly);
    }
    let phone = match details.phone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => Some(validate_phone(p).ok_or(BookingError::InvalidPhone)?),
    };
    let passport = match details.passport.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) if (5..=20).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Some(p.to_ascii_uppercase())
        }
        Some(_) => return Err(BookingError::InvalidPassport),
    };
    Ok(PassengerDetails {
        first_name,
        last_name,
        date_of_birth: details.date_of_birth,
        email: details.email,
        phone,
        passport,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Passenger {
    pub passenger_id: Uuid,
    pub kind: PassengerType,
    /// `None` for an infant.
    pub seat: Option<Seat>,
    pub travels_with: Option<Uuid>,
    pub cabin: Cabin,
    pub fare: Money,
    pub personal: Personal<PassengerDetails>,
    pub ticket_number: Option<TicketNumber>,
    /// Their place on the itinerary's further flights, in order (empty for
    /// a booking of one flight); the fields above are the first flight's.
    pub legs: Vec<Leg>,
}

/// A passenger's place on one further flight of an itinerary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leg {
    pub flight_id: Uuid,
    pub seat: Option<Seat>,
    pub cabin: Cabin,
    pub fare: Money,
    pub ticket_number: Option<TicketNumber>,
}

impl Passenger {
    /// What they pay for every flight of the booking.
    pub fn fares(&self) -> Result<Money, MoneyError> {
        Money::sum(
            self.fare.currency(),
            std::iter::once(&self.fare).chain(self.legs.iter().map(|l| &l.fare)),
        )
    }

    /// Their seat on `flight_id` (`None` for an infant, or a flight not
    /// theirs).
    pub fn seat_on(&self, flight_id: Uuid, first: Uuid) -> Option<Seat> {
        if flight_id == first {
            return self.seat;
        }
        self.legs
            .iter()
            .find(|l| l.flight_id == flight_id)
            .and_then(|l| l.seat)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BookingInfo {
    pub booking_id: Uuid,
    pub pnr: Pnr,
    pub flight_id: Uuid,
    pub customer_id: Uuid,
    pub created_by: Uuid,
    pub total: Money,
    pub discount: Option<AppliedDiscount>,
    pub hold_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The itinerary's further flights, in the order flown.
    pub connections: Vec<Uuid>,
}

/// A passenger taken off a booking of several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelledPassenger {
    pub passenger: Passenger,
    /// Their part of the booking's total (their fare less their part of
    /// the discount).
    pub share: Money,
    /// Whether the booking was paid when they were taken off (then their
    /// share was charged, and refunded by the policy).
    pub paid: bool,
}

/// A booking's state; `info` is `None` until `BookingCreated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Booking {
    pub info: Option<BookingInfo>,
    pub status: Option<BookingStatus>,
    /// The passengers travelling (cancelled ones are in `cancelled`).
    pub passengers: Vec<Passenger>,
    pub cancelled: Vec<CancelledPassenger>,
    pub payment_id: Option<Uuid>,
    /// Everything refunds were decided for: passengers taken off, then the
    /// booking's own cancellation.
    pub refund: Option<Money>,
    pub reason: Option<String>,
    /// How many times it moved to another flight: each move's tickets are
    /// issued anew.
    pub moves: u32,
    /// A move to a dearer flight waiting for its difference to be paid.
    pub pending_move: Option<BookingMoveHeld>,
    /// The fare differences charged for moves, each its own payment.
    pub supplements: Vec<Supplement>,
    /// The invoice as paid, taken when the booking was first confirmed: a
    /// later move re-prices the passengers, but the invoice of the first
    /// payment says what that payment charged.
    pub paid_lines: Option<Vec<InvoiceLineInput>>,
}

/// A fare difference charged for a move to a dearer flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Supplement {
    pub payment_id: Uuid,
    pub amount: Money,
    pub from_flight_id: Uuid,
    pub to_flight_id: Uuid,
    /// Whether the move it paid for happened (else it is refunded).
    pub moved: bool,
}

impl Booking {
    pub fn id(&self) -> Option<Uuid> {
        self.info.as_ref().map(|i| i.booking_id)
    }

    pub fn seats(&self) -> Vec<Seat> {
        self.passengers.iter().filter_map(|p| p.seat).collect()
    }

    /// Every flight of the booking, in the order flown: its flight, then
    /// an itinerary's connections.
    pub fn flight_ids(&self) -> Vec<Uuid> {
        self.info
            .iter()
            .flat_map(|i| std::iter::once(i.flight_id).chain(i.connections.iter().copied()))
            .collect()
    }

    /// Whether the booking flies more than one flight.
    pub fn is_itinerary(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| !i.connections.is_empty())
    }

    /// The travelling passengers' seats on one of the booking's flights.
    pub fn seats_on(&self, flight_id: Uuid) -> Vec<Seat> {
        let Some(info) = &self.info else {
            return vec![];
        };
        self.passengers
            .iter()
            .filter_map(|p| p.seat_on(flight_id, info.flight_id))
            .collect()
    }

    /// Refuses what a booking of several flights does not offer.
    fn one_flight(&self, action: &'static str) -> Result<(), BookingError> {
        if self.is_itinerary() {
            return Err(BookingError::NotForItinerary(action));
        }
        Ok(())
    }

    /// What the customer has paid: the amount due once confirmed, else
    /// nothing.
    pub fn amount_paid(&self) -> Option<Money> {
        let info = self.info.as_ref()?;
        match self.status? {
            BookingStatus::Confirmed | BookingStatus::Ticketed => self.amount_due(),
            _ => Some(Money::zero(info.total.currency())),
        }
    }

    /// What paying the booking costs: the total less the shares of the
    /// passengers taken off before it was paid.
    pub fn amount_due(&self) -> Option<Money> {
        let info = self.info.as_ref()?;
        let unpaid = self.cancelled.iter().filter(|c| !c.paid).map(|c| &c.share);
        info.total
            .saturating_sub(&Money::sum(info.total.currency(), unpaid).ok()?)
            .ok()
    }

    /// What the passengers still travelling account for: the total less
    /// every cancelled passenger's share. A cancellation refunds from this.
    pub fn value_left(&self) -> Option<Money> {
        let info = self.info.as_ref()?;
        let gone = self.cancelled.iter().map(|c| &c.share);
        info.total
            .saturating_sub(&Money::sum(info.total.currency(), gone).ok()?)
            .ok()
    }

    /// The invoice of the paid booking: a line per passenger paid for (those
    /// travelling, and those taken off after the payment: their refund is
    /// the policy's, not the invoice's), and the discount on them as a
    /// credit. The lines add up to what was charged.
    pub fn invoice_lines(&self) -> Result<Vec<InvoiceLineInput>, MoneyError> {
        if let Some(lines) = &self.paid_lines {
            return Ok(lines.clone());
        }
        let Some(info) = &self.info else {
            return Ok(vec![]);
        };
        let paid_for: Vec<&Passenger> = self
            .passengers
            .iter()
            .chain(
                self.cancelled
                    .iter()
                    .filter(|c| c.paid)
                    .map(|c| &c.passenger),
            )
            .collect();
        // A line per passenger per flight, flight by flight.
        let flights = 1 + info.connections.len();
        let mut lines: Vec<InvoiceLineInput> = Vec::with_capacity(paid_for.len() * flights);
        for (n, flight_id) in self.flight_ids().into_iter().enumerate() {
            for p in &paid_for {
                let (seat, cabin, fare) = if n == 0 {
                    (p.seat, p.cabin, p.fare)
                } else {
                    match p.legs.iter().find(|l| l.flight_id == flight_id) {
                        Some(l) => (l.seat, l.cabin, l.fare),
                        None => continue,
                    }
                };
                let mut text = self.fare_line(p, seat, cabin, flight_id);
                if flights > 1 {
                    text.push_str(&format!(", flight {} of {flights}", n + 1));
                }
                lines.push(InvoiceLineInput::charge(text, fare));
            }
        }
        if let Some(d) = &info.discount {
            // All of the discount, or its part for the passengers left when
            // some were taken off unpaid.
            let fares = Money::sum(
                info.total.currency(),
                paid_for
                    .iter()
                    .map(|p| p.fares())
                    .collect::<Result<Vec<_>, _>>()?
                    .iter(),
            )?;
            let due = self.amount_due().unwrap_or(info.total);
            let off = fares.saturating_sub(&due)?;
            if off.is_positive() {
                lines.push(InvoiceLineInput::credit(
                    format!("Discount {}", d.code),
                    off,
                ));
            }
        }
        Ok(lines)
    }

    /// An invoice line's text for one passenger's fare on one flight.
    fn fare_line(
        &self,
        p: &Passenger,
        seat: Option<Seat>,
        cabin: Cabin,
        flight_id: Uuid,
    ) -> String {
        let who = match p.kind {
            PassengerType::Adult => "Adult fare",
            PassengerType::Child => "Child fare",
            PassengerType::Infant => "Infant fare",
        };
        let first = self.info.as_ref().map_or(flight_id, |i| i.flight_id);
        let lap = p
            .travels_with
            .and_then(|a| self.passengers.iter().find(|x| x.passenger_id == a))
            .and_then(|a| a.seat_on(flight_id, first));
        match (seat, lap) {
            (Some(seat), _) => format!("{who}, {cabin} seat {seat}"),
            (None, Some(seat)) => format!("{who}, {cabin}, on the lap of seat {seat}"),
            (None, None) => format!("{who}, {cabin}"),
        }
    }

    /// One passenger's part of the total: their fares (on every flight),
    /// less their part of the discount (prorated by fare, rounded to the
    /// cent).
    pub fn share_of(&self, fare: Money) -> Option<Money> {
        let info = self.info.as_ref()?;
        let Some(discount) = &info.discount else {
            return Some(fare);
        };
        let all = self
            .passengers
            .iter()
            .chain(self.cancelled.iter().map(|c| &c.passenger))
            .map(Passenger::fares)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let fares = Money::sum(info.total.currency(), all.iter()).ok()?;
        if fares.is_zero() {
            return Some(fare);
        }
        let off = discount
            .amount
            .mul_ratio(fare.amount() / fares.amount())
            .ok()?;
        fare.saturating_sub(&off).ok()
    }

    /// Refuses a change while a move waits for its difference: the move
    /// decides where the booking's seats are.
    fn not_moving(&self) -> Result<(), BookingError> {
        match &self.pending_move {
            Some(m) => Err(BookingError::MovePending(m.to_flight_id)),
            None => Ok(()),
        }
    }

    fn created(&self) -> Result<(&BookingInfo, BookingStatus), BookingError> {
        match (&self.info, self.status) {
            (Some(info), Some(status)) => Ok((info, status)),
            _ => Err(BookingError::NotCreated),
        }
    }

    fn expect(
        &self,
        allowed: &[BookingStatus],
        action: &'static str,
    ) -> Result<&BookingInfo, BookingError> {
        let (info, status) = self.created()?;
        if allowed.contains(&status) {
            Ok(info)
        } else {
            Err(BookingError::InvalidState { status, action })
        }
    }
}

/// Nobody this old flies: an earlier date of birth is a typo.
pub const MAX_AGE_YEARS: u32 = 130;

/// The longest reason a booking records.
pub const MAX_REASON_LEN: usize = 500;

fn non_empty(reason: String) -> Result<String, BookingError> {
    crate::values::plain_text(&reason, MAX_REASON_LEN).map_err(|_| BookingError::InvalidReason)
}

impl Aggregate for Booking {
    const CATEGORY: &'static str = "booking";
    type Command = BookingCommand;
    type Event = BookingEvent;
    type Error = BookingError;

    fn decide(&self, command: BookingCommand) -> Result<Vec<BookingEvent>, BookingError> {
        decide::decide(self, command)
    }

    fn evolve(self, event: &BookingEvent) -> Self {
        decide::evolve(self, event)
    }
}
