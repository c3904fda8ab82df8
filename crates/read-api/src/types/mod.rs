//! The GraphQL types of the API contract (`docs/api.md`), over the rows of
//! the read-model contract ([`projections::model`]). Enum and type names are
//! fixed by the contract; extra fields are additions.
//!
//! # Layout
//! - this module: scalars, enums, `Money`, helpers;
//! - [`flight`], [`itinerary`], [`booking`], [`billing`], [`saga`], [`user`],
//!   [`waitlist`]: the object types.

mod billing;
mod booking;
mod flight;
mod itinerary;
mod saga;

pub use billing::{Invoice, InvoiceLine, Payment};
pub use booking::{Booking, Passenger, Ticket};
pub use flight::{seat_map, CabinAvailability, Flight, SeatChange, SeatState};
pub use itinerary::{Itinerary, ItineraryLegInput, ItinerarySort};
pub use saga::{Compensation, ProjectionStatus, Saga, SagaRow, SAGA_COLUMNS};
pub use user::{Role, User, UserStatus};
pub use waitlist::{WaitlistEntry, WaitlistStatus};

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, Enum, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value, ID,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::loaders::PgLoader;

/// A calendar date, `YYYY-MM-DD` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            // Years 1 to 9999: what the read models can store and anyone
            // means.
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .filter(|d| (1..=9999).contains(&chrono::Datelike::year(d)))
                .map(Date)
                .ok_or_else(|| {
                    InputValueError::custom("expected a date as YYYY-MM-DD, years 1 to 9999")
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// A GraphQL enum that mirrors a domain (or read-model) enum variant for
/// variant: conversions both ways, so nothing matches on spellings.
macro_rules! mirror {
    ($name:ident <=> $other:path { $($variant:ident),+ $(,)? }) => {
        impl From<$other> for $name {
            fn from(v: $other) -> Self {
                type O = $other;
                match v { $(O::$variant => $name::$variant),+ }
            }
        }
        impl From<$name> for $other {
            fn from(v: $name) -> Self {
                type O = $other;
                match v { $($name::$variant => O::$variant),+ }
            }
        }
    };
}

// After `mirror!`, which they use.
mod user;
mod waitlist;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cabin {
    First,
    Business,
    PremiumEconomy,
    Economy,
}
mirror!(Cabin <=> domain::values::Cabin { First, Business, PremiumEconomy, Economy });

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PassengerType {
    Adult,
    Child,
    Infant,
}
mirror!(PassengerType <=> domain::booking::PassengerType { Adult, Child, Infant });

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}
mirror!(SeatStatus <=> projections::model::SeatStatus { Available, Held, Sold });

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
mirror!(BookingStatus <=> domain::booking::BookingStatus {
    Held, PaymentPending, Confirmed, Ticketed, Cancelled, PaymentFailed, Expired, Failed,
});

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    Captured,
    Declined,
    Refunded,
    PartiallyRefunded,
}
mirror!(PaymentStatus <=> domain::payment::PaymentStatus {
    Pending, Captured, Declined, Refunded, PartiallyRefunded,
});

/// Where a saga stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaStatus {
    /// Moving forward (or waiting for a payment or a deadline).
    Running,
    /// Undoing what it did.
    Compensating,
    /// Done: the booking is ticketed, or the flight's bookings cancelled.
    Completed,
    /// Done after undoing what it did.
    Compensated,
    /// Retries ran out: an admin can retry it (`POST /api/v1/sagas/{id}/retry`).
    Parked,
}
mirror!(SagaStatus <=> domain::fulfilment::SagaStatus {
    Running, Compensating, Completed, Compensated, Parked,
});

/// Which process a saga runs.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaKind {
    /// A booking's payment, confirmation, tickets and invoice.
    Fulfilment,
    /// Cancelling and refunding every booking of a cancelled flight.
    FlightCancellation,
}
mirror!(SagaKind <=> domain::fulfilment::SagaKind { Fulfilment, FlightCancellation });

#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    pub currency: String,
}

impl Money {
    /// Amounts read with two decimals, as the write side answers them.
    pub fn new(mut amount: Decimal, currency: &str) -> Self {
        amount.rescale(2);
        Self {
            amount,
            currency: currency.to_owned(),
        }
    }
}

pub fn id(uuid: Uuid) -> ID {
    ID(uuid.to_string())
}

/// An `ID` argument as a UUID, or `BAD_REQUEST`.
pub fn parse_id(id: &ID, what: &str) -> async_graphql::Result<Uuid> {
    id.parse::<Uuid>()
        .map_err(|_| crate::error::bad_request(format!("{what} is not a valid id")))
}

pub fn loader<'a>(ctx: &'a Context<'_>) -> &'a DataLoader<PgLoader> {
    ctx.data_unchecked::<DataLoader<PgLoader>>()
}

pub fn pool<'a>(ctx: &'a Context<'_>) -> &'a PgPool {
    ctx.data_unchecked::<PgPool>()
}
