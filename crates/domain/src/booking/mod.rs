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
//! creates the booking together) and [`cancel`] (cancellation with its
//! seats given back).

mod cancel;
mod place;

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Aggregate, DomainEvent};
pub use crate::pricing::{refund_policy, RefundError};
use crate::user::{validate_name, validate_phone};
use crate::values::{Cabin, Email, Money, Personal, Pnr, Seat, TicketNumber};
pub use cancel::{cancel_booking, CancelBooking, CancelBookingError};
pub use place::{place_booking, PassengerRequest, PlaceBooking, PlaceBookingError};

pub const MAX_PASSENGERS: usize = 9;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPassenger {
    pub passenger_id: Uuid,
    pub seat: Seat,
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
        total: Money,
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
    IssueTickets {
        tickets: Vec<(Uuid, TicketNumber)>,
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
}

/// The non-personal part of a passenger, readable after erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookedPassenger {
    pub passenger_id: Uuid,
    pub seat: Seat,
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
    pub total: Money,
    pub hold_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub personal: Personal<Vec<PassengerPersonal>>,
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
    pub ticket_number: TicketNumber,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassengerUpdated {
    pub booking_id: Uuid,
    pub passenger_id: Uuid,
    pub subject: Uuid,
    pub personal: Personal<PassengerDetails>,
    pub updated_at: DateTime<Utc>,
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
        }
    }
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
    #[error("{0} must be 1 to 100 characters")]
    InvalidName(&'static str),
    #[error("date of birth is in the future")]
    DateOfBirthInFuture,
    #[error("phone number is not valid")]
    InvalidPhone,
    #[error("passport number is not valid")]
    InvalidPassport,
    #[error("total {total} does not match the fares {fares}")]
    TotalMismatch { total: Money, fares: Money },
    #[error("hold must expire after now")]
    HoldExpiryNotInFuture,
    #[error("hold expired at {0}")]
    HoldExpired(DateTime<Utc>),
    #[error("hold runs until {0}")]
    HoldNotExpired(DateTime<Utc>),
    #[error("no passenger {0} on this booking")]
    UnknownPassenger(Uuid),
    #[error("exactly one ticket per passenger is required")]
    TicketsMismatch,
    #[error("booking is already cancelled")]
    AlreadyCancelled,
    #[error("flight has departed; the booking can no longer be cancelled")]
    Departed,
    #[error("reason must not be empty")]
    InvalidReason,
    #[error(transparent)]
    Money(#[from] crate::values::MoneyError),
}

impl BookingError {
    /// The request field a validation error is about, for field-level
    /// problem details. Passenger fields are named as in the request body.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            BookingError::PassengerCount | BookingError::DuplicatePassenger(_) => {
                Some("passengers")
            }
            BookingError::DuplicateSeat(_) => Some("seat"),
            BookingError::InvalidName(field) => Some(field),
            BookingError::DateOfBirthInFuture => Some("date_of_birth"),
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
    pub seat: Seat,
    pub cabin: Cabin,
    pub fare: Money,
    pub personal: Personal<PassengerDetails>,
    pub ticket_number: Option<TicketNumber>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BookingInfo {
    pub booking_id: Uuid,
    pub pnr: Pnr,
    pub flight_id: Uuid,
    pub customer_id: Uuid,
    pub created_by: Uuid,
    pub total: Money,
    pub hold_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A booking's state; `info` is `None` until `BookingCreated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Booking {
    pub info: Option<BookingInfo>,
    pub status: Option<BookingStatus>,
    pub passengers: Vec<Passenger>,
    pub payment_id: Option<Uuid>,
    pub refund: Option<Money>,
    pub reason: Option<String>,
}

impl Booking {
    pub fn id(&self) -> Option<Uuid> {
        self.info.as_ref().map(|i| i.booking_id)
    }

    pub fn seats(&self) -> Vec<Seat> {
        self.passengers.iter().map(|p| p.seat).collect()
    }

    /// What the customer has paid: the total once confirmed, else nothing.
    pub fn amount_paid(&self) -> Option<Money> {
        let info = self.info.as_ref()?;
        match self.status? {
            BookingStatus::Confirmed | BookingStatus::Ticketed => Some(info.total),
            _ => Some(Money::zero(info.total.currency())),
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

fn non_empty(reason: String) -> Result<String, BookingError> {
    let trimmed = reason.trim();
    if trimmed.is_empty() {
        Err(BookingError::InvalidReason)
    } else {
        Ok(trimmed.to_owned())
    }
}

use BookingStatus as S;

impl Aggregate for Booking {
    const CATEGORY: &'static str = "booking";
    type Command = BookingCommand;
    type Event = BookingEvent;
    type Error = BookingError;

    fn decide(&self, command: BookingCommand) -> Result<Vec<BookingEvent>, BookingError> {
        match command {
            BookingCommand::Create {
                booking_id,
                pnr,
                flight_id,
                customer_id,
                created_by,
                passengers,
                total,
                hold_expires_at,
                now,
            } => {
                if self.info.is_some() {
                    return Err(BookingError::AlreadyCreated);
                }
                if passengers.is_empty() || passengers.len() > MAX_PASSENGERS {
                    return Err(BookingError::PassengerCount);
                }
                if hold_expires_at <= now {
                    return Err(BookingError::HoldExpiryNotInFuture);
                }
                let mut ids = BTreeSet::new();
                let mut seats = BTreeSet::new();
                let mut booked = Vec::with_capacity(passengers.len());
                let mut personal = Vec::with_capacity(passengers.len());
                for p in passengers {
                    if !ids.insert(p.passenger_id) {
                        return Err(BookingError::DuplicatePassenger(p.passenger_id));
                    }
                    if !seats.insert(p.seat) {
                        return Err(BookingError::DuplicateSeat(p.seat));
                    }
                    personal.push(PassengerPersonal {
                        passenger_id: p.passenger_id,
                        details: validate_details(p.details, now.date_naive())?,
                    });
                    booked.push(BookedPassenger {
                        passenger_id: p.passenger_id,
                        seat: p.seat,
                        cabin: p.cabin,
                        fare: p.fare,
                    });
                }
                let fares = Money::sum(total.currency(), booked.iter().map(|p| &p.fare))?;
                if fares != total {
                    return Err(BookingError::TotalMismatch { total, fares });
                }
                Ok(vec![BookingEvent::BookingCreated(BookingCreated {
                    booking_id,
                    subject: customer_id,
                    pnr,
                    flight_id,
                    customer_id,
                    created_by,
                    passengers: booked,
                    total,
                    hold_expires_at,
                    created_at: now,
                    personal: Personal::Known(personal),
                })])
            }
            BookingCommand::SubmitPayment { payment_id, now } => {
                let info = self.expect(&[S::Held], "submit payment")?;
                if now >= info.hold_expires_at {
                    return Err(BookingError::HoldExpired(info.hold_expires_at));
                }
                Ok(vec![BookingEvent::PaymentSubmitted(PaymentSubmitted {
                    booking_id: info.booking_id,
                    payment_id,
                    amount: info.total,
                    submitted_at: now,
                })])
            }
            BookingCommand::Confirm { now } => {
                let info = self.expect(&[S::PaymentPending], "confirm")?;
                Ok(vec![BookingEvent::BookingConfirmed(BookingConfirmed {
                    booking_id: info.booking_id,
                    confirmed_at: now,
                })])
            }
            BookingCommand::MarkPaymentFailed { reason } => {
                let info = self.expect(&[S::PaymentPending], "mark payment failed")?;
                Ok(vec![BookingEvent::BookingPaymentFailed(
                    BookingPaymentFailed {
                        booking_id: info.booking_id,
                        reason: non_empty(reason)?,
                    },
                )])
            }
            BookingCommand::Expire { now } => {
                let info = self.expect(&[S::Held, S::PaymentPending], "expire")?;
                if now < info.hold_expires_at {
                    return Err(BookingError::HoldNotExpired(info.hold_expires_at));
                }
                Ok(vec![BookingEvent::BookingExpired(BookingExpired {
                    booking_id: info.booking_id,
                    expired_at: now,
                })])
            }
            BookingCommand::IssueTickets { tickets, now } => {
                let info = self.expect(&[S::Confirmed], "issue tickets")?;
                let wanted: BTreeSet<Uuid> =
                    self.passengers.iter().map(|p| p.passenger_id).collect();
                let given: BTreeSet<Uuid> = tickets.iter().map(|(id, _)| *id).collect();
                let numbers: BTreeSet<&TicketNumber> = tickets.iter().map(|(_, n)| n).collect();
                if tickets.len() != wanted.len()
                    || given != wanted
                    || numbers.len() != tickets.len()
                {
                    return Err(BookingError::TicketsMismatch);
                }
                Ok(vec![BookingEvent::TicketsIssued(TicketsIssued {
                    booking_id: info.booking_id,
                    tickets: tickets
                        .into_iter()
                        .map(|(passenger_id, ticket_number)| IssuedTicket {
                            passenger_id,
                            ticket_number,
                        })
                        .collect(),
                    issued_at: now,
                })])
            }
            BookingCommand::Fail { reason } => {
                let info = self.expect(&[S::Held, S::PaymentPending, S::Confirmed], "fail")?;
                Ok(vec![BookingEvent::BookingFailed(BookingFailed {
                    booking_id: info.booking_id,
                    reason: non_empty(reason)?,
                })])
            }
            BookingCommand::Cancel {
                reason,
                now,
                departs_at,
                by,
            } => {
                let (info, status) = self.created()?;
                if status == S::Cancelled {
                    return Err(BookingError::AlreadyCancelled);
                }
                // While payment is in flight only the flight's cancellation
                // may cut in: the saga refunds whatever gets captured.
                let allowed: &[BookingStatus] = match by {
                    CancelledBy::FlightCancelled => {
                        &[S::Held, S::PaymentPending, S::Confirmed, S::Ticketed]
                    }
                    _ => &[S::Held, S::Confirmed, S::Ticketed],
                };
                let info = if allowed.contains(&status) {
                    info
                } else {
                    return Err(BookingError::InvalidState {
                        status,
                        action: "cancel",
                    });
                };
                let reason = non_empty(reason)?;
                let refund = match (by, status) {
                    (CancelledBy::FlightCancelled, S::Held) => Money::zero(info.total.currency()),
                    (CancelledBy::FlightCancelled, _) => info.total,
                    (_, S::Held) => {
                        if now >= departs_at {
                            return Err(BookingError::Departed);
                        }
                        Money::zero(info.total.currency())
                    }
                    _ => refund_policy(info.total, departs_at, now).map_err(|e| match e {
                        RefundError::AfterDeparture => BookingError::Departed,
                        RefundError::Money(m) => BookingError::Money(m),
                    })?,
                };
                Ok(vec![BookingEvent::BookingCancelled(BookingCancelled {
                    booking_id: info.booking_id,
                    reason,
                    refund,
                    cancelled_by: by,
                    previous_status: status,
                    cancelled_at: now,
                })])
            }
            BookingCommand::UpdatePassenger {
                passenger_id,
                details,
                now,
            } => {
                let info = self.expect(
                    &[S::Held, S::PaymentPending, S::Confirmed],
                    "update a passenger",
                )?;
                let passenger = self
                    .passengers
                    .iter()
                    .find(|p| p.passenger_id == passenger_id)
                    .ok_or(BookingError::UnknownPassenger(passenger_id))?;
                let details = validate_details(details, now.date_naive())?;
                if passenger.personal.known() == Some(&details) {
                    return Ok(vec![]);
                }
                Ok(vec![BookingEvent::PassengerUpdated(PassengerUpdated {
                    booking_id: info.booking_id,
                    passenger_id,
                    subject: info.customer_id,
                    personal: Personal::Known(details),
                    updated_at: now,
                })])
            }
        }
    }

    fn evolve(mut self, event: &BookingEvent) -> Self {
        match event {
            BookingEvent::BookingCreated(e) => {
                self.info = Some(BookingInfo {
                    booking_id: e.booking_id,
                    pnr: e.pnr.clone(),
                    flight_id: e.flight_id,
                    customer_id: e.customer_id,
                    created_by: e.created_by,
                    total: e.total,
                    hold_expires_at: e.hold_expires_at,
                    created_at: e.created_at,
                });
                self.status = Some(S::Held);
                let details = e.personal.known();
                self.passengers = e
                    .passengers
                    .iter()
                    .map(|p| Passenger {
                        passenger_id: p.passenger_id,
                        seat: p.seat,
                        cabin: p.cabin,
                        fare: p.fare,
                        personal: details
                            .and_then(|all| all.iter().find(|d| d.passenger_id == p.passenger_id))
                            .map_or(Personal::Erased, |d| Personal::Known(d.details.clone())),
                        ticket_number: None,
                    })
                    .collect();
            }
            BookingEvent::PaymentSubmitted(e) => {
                self.status = Some(S::PaymentPending);
                self.payment_id = Some(e.payment_id);
            }
            BookingEvent::BookingConfirmed(_) => self.status = Some(S::Confirmed),
            BookingEvent::BookingPaymentFailed(e) => {
                self.status = Some(S::PaymentFailed);
                self.reason = Some(e.reason.clone());
            }
            BookingEvent::BookingExpired(_) => self.status = Some(S::Expired),
            BookingEvent::TicketsIssued(e) => {
                self.status = Some(S::Ticketed);
                for ticket in &e.tickets {
                    if let Some(p) = self
                        .passengers
                        .iter_mut()
                        .find(|p| p.passenger_id == ticket.passenger_id)
                    {
                        p.ticket_number = Some(ticket.ticket_number.clone());
                    }
                }
            }
            BookingEvent::BookingFailed(e) => {
                self.status = Some(S::Failed);
                self.reason = Some(e.reason.clone());
            }
            BookingEvent::BookingCancelled(e) => {
                self.status = Some(S::Cancelled);
                self.refund = Some(e.refund);
                self.reason = Some(e.reason.clone());
            }
            BookingEvent::PassengerUpdated(e) => {
                if let Some(p) = self
                    .passengers
                    .iter_mut()
                    .find(|p| p.passenger_id == e.passenger_id)
                {
                    p.personal = e.personal.clone();
                }
            }
        }
        self
    }
}
