//! What a command can answer besides success: one typed error for every
//! command, whoever runs it (REST, the sagas, start-up). Each API maps it to
//! its own answer in one place; the sagas retry on it.

use std::time::Duration;

use domain::booking::{BookingError, ChangeSeatError, MoveBookingError, PlaceBookingError};
use domain::discount::DiscountError;
use domain::flight::FlightError;
use domain::pricing::PricingError;
use domain::seats::SeatError;
use domain::user::UserError;
use eventstore::StoreError;
use serde::Serialize;

/// One invalid field of a command's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a command did not append anything.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input is invalid, field by field.
    #[error("validation failed")]
    Invalid(Vec<FieldError>),
    /// The caller is not authenticated (or no longer may be).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// These seats are held or sold.
    #[error("seats not available: {}", .0.join(", "))]
    SeatUnavailable(Vec<String>),
    /// The cabin has no seats left for the request.
    #[error("{0}")]
    CabinFull(String),
    /// The domain refuses the command in the aggregate's current state.
    #[error("{0}")]
    InvalidState(String),
    /// What the command would create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The customer holds as much unpaid as they may.
    #[error("{0}")]
    HoldLimit(String),
    /// The discount code is unknown, not valid now, used up, or does not
    /// apply to this booking.
    #[error("{0}")]
    DiscountUnavailable(String),
    /// The email belongs to another account.
    #[error("this email is registered already")]
    EmailTaken,
    /// The account is suspended by an admin: it may not log in.
    #[error("this account is suspended")]
    AccountSuspended,
    /// A mailed token (password reset, email verification) that is forged,
    /// spent, superseded or expired.
    #[error("this token is invalid, spent or expired")]
    InvalidToken,
    /// Another writer changed the aggregate first, every time it was tried.
    /// Retrying later is safe: nothing was appended.
    #[error("{0}")]
    Concurrency(String),
    /// The command's idempotency key was used for a different request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// Too many attempts; try again after `retry_after`.
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    /// A dependency (a provider, the database) is not available now.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken invariant: logged, never shown in detail.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type CommandResult<T> = Result<T, CommandError>;

impl CommandError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// Lost every race for the aggregate.
    pub fn contention() -> Self {
        Self::Concurrency("too much concurrent change on this resource; retry".into())
    }

    /// The same error, for each command of a batch that failed together.
    /// An internal error is told to each as unavailable: its details are
    /// logged once, by whoever saw it.
    pub fn for_each_of_batch(&self) -> Self {
        match self {
            Self::Invalid(e) => Self::Invalid(e.clone()),
            Self::Unauthorized(s) => Self::Unauthorized(s.clone()),
            Self::Forbidden(s) => Self::Forbidden(s.clone()),
            Self::NotFound(s) => Self::NotFound(s.clone()),
            Self::SeatUnavailable(s) => Self::SeatUnavailable(s.clone()),
            Self::CabinFull(s) => Self::CabinFull(s.clone()),
            Self::InvalidState(s) => Self::InvalidState(s.clone()),
            Self::AlreadyExists(s) => Self::AlreadyExists(s.clone()),
            Self::HoldLimit(s) => Self::HoldLimit(s.clone()),
            Self::DiscountUnavailable(s) => Self::DiscountUnavailable(s.clone()),
            Self::EmailTaken => Self::EmailTaken,
            Self::AccountSuspended => Self::AccountSuspended,
            Self::InvalidToken => Self::InvalidToken,
            Self::Concurrency(s) => Self::Concurrency(s.clone()),
            Self::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            Self::RateLimited { retry_after } => Self::RateLimited {
                retry_after: *retry_after,
            },
            Self::Unavailable(s) => Self::Unavailable(s.clone()),
            Self::Internal(e) => Self::Unavailable(format!("the command could not be stored: {e}")),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => {
                Self::Concurrency("the resource was changed concurrently; retry".into())
            }
            other => Self::internal(other),
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

/// A process step the state no longer allows: decided again on a fresh read.
impl From<domain::fulfilment::StepRefused> for CommandError {
    fn from(e: domain::fulfilment::StepRefused) -> Self {
        Self::InvalidState(e.to_string())
    }
}

impl From<auth::Error> for CommandError {
    fn from(e: auth::Error) -> Self {
        match e {
            auth::Error::Unauthorized(s) => Self::Unauthorized(s),
            auth::Error::Forbidden(s) => Self::Forbidden(s),
            auth::Error::Db(e) => Self::internal(e),
            auth::Error::Internal(s) => Self::Internal(s.into()),
        }
    }
}

/// The domain's refusals, as command errors: one mapping per aggregate.
pub fn seat_error(e: SeatError) -> CommandError {
    match e {
        SeatError::SeatUnavailable(seats) => {
            CommandError::SeatUnavailable(seats.iter().map(|s| s.to_string()).collect())
        }
        SeatError::CabinFull { .. } => CommandError::CabinFull(e.to_string()),
        SeatError::UnknownSeats(_) | SeatError::DuplicateSeat(_) | SeatError::OtherCabin { .. } => {
            CommandError::invalid("seat", e.to_string())
        }
        SeatError::NothingRequested => CommandError::invalid("passengers", e.to_string()),
        SeatError::NotOpened => CommandError::not_found("flight"),
        SeatError::LineFirst { .. } => CommandError::CabinFull(e.to_string()),
        SeatError::NoSuchEntry(_) => CommandError::not_found("waiting-list entry"),
        other => CommandError::InvalidState(other.to_string()),
    }
}

pub fn booking_error(e: BookingError) -> CommandError {
    if let Some(field) = e.field() {
        return CommandError::invalid(field, e.to_string());
    }
    match e {
        BookingError::NotCreated => CommandError::not_found("booking"),
        BookingError::Departed => CommandError::InvalidState(e.to_string()),
        BookingError::Money(_) => CommandError::internal(e),
        other => CommandError::InvalidState(other.to_string()),
    }
}

pub fn place_error(e: PlaceBookingError) -> CommandError {
    match e {
        PlaceBookingError::FlightNotFound => CommandError::not_found("flight"),
        PlaceBookingError::FlightCancelled | PlaceBookingError::FlightDeparted => {
            CommandError::InvalidState(e.to_string())
        }
        PlaceBookingError::Seats(e) => seat_error(e),
        PlaceBookingError::Booking(e) => booking_error(e),
        PlaceBookingError::Pricing(PricingError::NoFare(_)) => {
            CommandError::invalid("cabin", e.to_string())
        }
        PlaceBookingError::Discount(d) => discount_error(d),
        PlaceBookingError::OutOfOrder(_)
        | PlaceBookingError::ConnectionTooShort(_)
        | PlaceBookingError::MixedCurrencies => CommandError::invalid("flights", e.to_string()),
        other => CommandError::internal(other),
    }
}

pub fn change_seat_error(e: ChangeSeatError) -> CommandError {
    match e {
        ChangeSeatError::FlightNotFound => CommandError::not_found("flight"),
        ChangeSeatError::FlightCancelled | ChangeSeatError::FlightDeparted => {
            CommandError::InvalidState(e.to_string())
        }
        ChangeSeatError::Booking(BookingError::UnknownPassenger(_)) => {
            CommandError::not_found("passenger")
        }
        ChangeSeatError::Booking(e) => booking_error(e),
        ChangeSeatError::Seats(e) => seat_error(e),
    }
}

pub fn move_error(e: MoveBookingError) -> CommandError {
    if let Some(field) = e.field() {
        return CommandError::invalid(field, e.to_string());
    }
    match e {
        MoveBookingError::FlightNotFound => CommandError::not_found("flight"),
        MoveBookingError::Seats(e) => seat_error(e),
        MoveBookingError::Booking(e) => booking_error(e),
        MoveBookingError::Pricing(PricingError::NoFare(_)) => {
            CommandError::CabinFull(e.to_string())
        }
        other => CommandError::InvalidState(other.to_string()),
    }
}

pub fn discount_error(e: DiscountError) -> CommandError {
    if let Some(field) = e.field() {
        return CommandError::invalid(field, e.to_string());
    }
    match e {
        e if e.is_unavailable() => CommandError::DiscountUnavailable(e.to_string()),
        e @ DiscountError::AlreadyExists(_) => CommandError::AlreadyExists(e.to_string()),
        other => CommandError::internal(other),
    }
}

pub fn flight_error(e: FlightError) -> CommandError {
    match e.field() {
        Some(field) => CommandError::invalid(field, e.to_string()),
        None => match e {
            FlightError::NotScheduled => CommandError::not_found("flight"),
            FlightError::AlreadyScheduled => CommandError::AlreadyExists(e.to_string()),
            other => CommandError::InvalidState(other.to_string()),
        },
    }
}

pub fn user_error(e: UserError) -> CommandError {
    if let Some(field) = e.field() {
        return CommandError::invalid(field, e.to_string());
    }
    match e {
        UserError::NotRegistered | UserError::Erased => CommandError::not_found("user"),
        UserError::InvalidToken => CommandError::InvalidToken,
        other => CommandError::InvalidState(other.to_string()),
    }
}
