//! What happens to a booking, as recorded in its stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BookingStatus, CancelledBy, PassengerDetails, PassengerType};
use crate::discount::Code;
use crate::event::DomainEvent;
use crate::values::{Cabin, Money, Personal, Pnr, Seat, TicketNumber};

/// The non-personal part of a passenger, readable after erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookedPassenger {
    pub passenger_id: Uuid,
    /// Absent in events from before passenger types: an adult.
    #[serde(default, rename = "type")]
    pub kind: PassengerType,
    /// `None` for an infant.
    pub seat: Option<Seat>,
    /// The adult an infant travels with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub travels_with: Option<Uuid>,
    pub cabin: Cabin,
    pub fare: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassengerPersonal {
    pub passenger_id: Uuid,
    pub details: PassengerDetails,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingCreated {
    pub booking_id: Uuid,
    /// The customer: their key encrypts `personal`.
    pub subject: Uuid,
    pub pnr: Pnr,
    pub flight_id: Uuid,
    pub customer_id: Uuid,
    pub created_by: Uuid,
    pub passengers: Vec<BookedPassenger>,
    /// What the passengers pay: their fares less `discount`.
    pub total: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<AppliedDiscount>,
    pub hold_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub personal: Personal<Vec<PassengerPersonal>>,
    /// The itinerary's further flights, in the order they are flown (a
    /// connection, the way back, the next city); `flight_id` is its first.
    /// Empty for a booking of one flight, as in every event from before
    /// itineraries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<BookedSegment>,
}

/// One further flight of an itinerary: where each passenger sits on it and
/// what they pay for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookedSegment {
    pub flight_id: Uuid,
    pub passengers: Vec<SegmentPassenger>,
}

/// A passenger on one further flight of an itinerary. `seat` is `None` for
/// an infant, who flies on the same adult's lap on every flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentPassenger {
    pub passenger_id: Uuid,
    pub seat: Option<Seat>,
    pub cabin: Cabin,
    pub fare: Money,
}

/// A discount code's reduction of a booking's fares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedDiscount {
    pub code: Code,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentSubmitted {
    pub booking_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingConfirmed {
    pub booking_id: Uuid,
    pub confirmed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingPaymentFailed {
    pub booking_id: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingExpired {
    pub booking_id: Uuid,
    pub expired_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedTicket {
    pub passenger_id: Uuid,
    /// The flight of an itinerary the ticket is for (a ticket per passenger
    /// per flight); `None` on a booking of one flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flight_id: Option<Uuid>,
    pub ticket_number: TicketNumber,
}

impl IssuedTicket {
    /// A ticket on the booking's (first) flight.
    pub fn new(passenger_id: Uuid, ticket_number: TicketNumber) -> Self {
        Self {
            passenger_id,
            flight_id: None,
            ticket_number,
        }
    }

    /// A ticket on one flight of an itinerary.
    pub fn on(flight_id: Uuid, passenger_id: Uuid, ticket_number: TicketNumber) -> Self {
        Self {
            passenger_id,
            flight_id: Some(flight_id),
            ticket_number,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketsIssued {
    pub booking_id: Uuid,
    pub tickets: Vec<IssuedTicket>,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingFailed {
    pub booking_id: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingCancelled {
    pub booking_id: Uuid,
    pub reason: String,
    /// What the customer is owed back; zero for an unpaid booking.
    pub refund: Money,
    pub cancelled_by: CancelledBy,
    /// The status the booking was cancelled from, so the saga knows whether
    /// seats were held (release) or sold (return).
    pub previous_status: BookingStatus,
    pub cancelled_at: DateTime<Utc>,
}

/// One passenger of several taken off a booking; their seat goes back on
/// sale in the same append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassengerCancelled {
    pub booking_id: Uuid,
    pub passenger_id: Uuid,
    /// Their part of the booking's total.
    pub share: Money,
    /// What they are owed back by the policy (zero for an unpaid booking).
    pub refund: Money,
    pub reason: String,
    pub cancelled_by: CancelledBy,
    /// The booking's status then: paid (`CONFIRMED`, `TICKETED`) or not.
    pub booking_status: BookingStatus,
    pub cancelled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassengerUpdated {
    pub booking_id: Uuid,
    pub passenger_id: Uuid,
    pub subject: Uuid,
    pub personal: Personal<PassengerDetails>,
    pub updated_at: DateTime<Utc>,
}

/// A passenger moved to another seat of the same cabin and flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassengerSeatChanged {
    pub booking_id: Uuid,
    pub passenger_id: Uuid,
    /// The flight of an itinerary the seat is on; `None` on a booking of
    /// one flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flight_id: Option<Uuid>,
    pub from: Seat,
    pub to: Seat,
    pub changed_at: DateTime<Utc>,
}

/// A passenger's seat and fare on the flight their booking moved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedPassenger {
    pub passenger_id: Uuid,
    /// `None` for an infant.
    pub seat: Option<Seat>,
    pub fare: Money,
}

/// The booking moved to another flight of the same route: its passengers'
/// new seats and fares, its new total, and what the move owes back (zero
/// unless a paid booking moved to a cheaper flight). Tickets of the old
/// flight are void.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingMoved {
    pub booking_id: Uuid,
    pub from_flight_id: Uuid,
    pub to_flight_id: Uuid,
    pub passengers: Vec<MovedPassenger>,
    pub total: Money,
    pub refund: Money,
    pub moved_at: DateTime<Utc>,
}

/// A paid booking's move to a dearer flight, waiting for the difference:
/// the new flight's seats are held for it until `hold_expires_at`, the old
/// ones stay its own, and the saga charges `difference` to the card of the
/// first payment as payment `payment_id`. It ends in [`BookingMoved`] once
/// that is captured, or in [`BookingMoveAbandoned`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingMoveHeld {
    pub booking_id: Uuid,
    pub from_flight_id: Uuid,
    pub to_flight_id: Uuid,
    pub passengers: Vec<MovedPassenger>,
    /// The booking's total once moved.
    pub total: Money,
    pub difference: Money,
    pub payment_id: Uuid,
    pub hold_expires_at: DateTime<Utc>,
    pub held_at: DateTime<Utc>,
}

/// A held move that did not happen (the difference was declined, the hold
/// ran out, the new flight was cancelled): the booking stays where it was,
/// the held seats go back, and a difference that was captured is owed
/// back (`refund`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingMoveAbandoned {
    pub booking_id: Uuid,
    pub to_flight_id: Uuid,
    pub payment_id: Uuid,
    pub reason: String,
    pub refund: Money,
    pub abandoned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum BookingEvent {
    BookingCreated(BookingCreated),
    PaymentSubmitted(PaymentSubmitted),
    BookingConfirmed(BookingConfirmed),
    BookingPaymentFailed(BookingPaymentFailed),
    BookingExpired(BookingExpired),
    TicketsIssued(TicketsIssued),
    BookingFailed(BookingFailed),
    BookingCancelled(BookingCancelled),
    PassengerUpdated(PassengerUpdated),
    PassengerSeatChanged(PassengerSeatChanged),
    PassengerCancelled(PassengerCancelled),
    BookingMoved(BookingMoved),
    BookingMoveHeld(BookingMoveHeld),
    BookingMoveAbandoned(BookingMoveAbandoned),
}

impl BookingEvent {
    /// The booking the event is about.
    pub fn booking_id(&self) -> Uuid {
        match self {
            BookingEvent::BookingCreated(e) => e.booking_id,
            BookingEvent::PaymentSubmitted(e) => e.booking_id,
            BookingEvent::BookingConfirmed(e) => e.booking_id,
            BookingEvent::BookingPaymentFailed(e) => e.booking_id,
            BookingEvent::BookingExpired(e) => e.booking_id,
            BookingEvent::TicketsIssued(e) => e.booking_id,
            BookingEvent::BookingFailed(e) => e.booking_id,
            BookingEvent::BookingCancelled(e) => e.booking_id,
            BookingEvent::PassengerUpdated(e) => e.booking_id,
            BookingEvent::PassengerCancelled(e) => e.booking_id,
            BookingEvent::PassengerSeatChanged(e) => e.booking_id,
            BookingEvent::BookingMoved(e) => e.booking_id,
            BookingEvent::BookingMoveHeld(e) => e.booking_id,
            BookingEvent::BookingMoveAbandoned(e) => e.booking_id,
        }
    }
}

impl DomainEvent for BookingEvent {
    fn event_type(&self) -> &'static str {
        match self {
            BookingEvent::BookingCreated(_) => "BookingCreated",
            BookingEvent::PaymentSubmitted(_) => "PaymentSubmitted",
            BookingEvent::BookingConfirmed(_) => "BookingConfirmed",
            BookingEvent::BookingPaymentFailed(_) => "BookingPaymentFailed",
            BookingEvent::BookingExpired(_) => "BookingExpired",
            BookingEvent::TicketsIssued(_) => "TicketsIssued",
            BookingEvent::BookingFailed(_) => "BookingFailed",
            BookingEvent::BookingCancelled(_) => "BookingCancelled",
            BookingEvent::PassengerUpdated(_) => "PassengerUpdated",
            BookingEvent::PassengerSeatChanged(_) => "PassengerSeatChanged",
            BookingEvent::PassengerCancelled(_) => "PassengerCancelled",
            BookingEvent::BookingMoved(_) => "BookingMoved",
            BookingEvent::BookingMoveHeld(_) => "BookingMoveHeld",
            BookingEvent::BookingMoveAbandoned(_) => "BookingMoveAbandoned",
        }
    }
}
