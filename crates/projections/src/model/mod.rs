//! The read models' contract: the one description of the `rm_*` tables
//! that the projectors write and the read side queries. Row types, status
//! values and the predicates both sides must agree on live here, so a
//! change to a table is a change to this module and nowhere else.
//!
//! - [`flights`]: `rm_flights`, `rm_flight_cabins`, `rm_seats`.
//! - [`bookings`]: `rm_bookings`, `rm_booking_passengers`.
//! - [`billing`]: `rm_payments`, `rm_invoices`.
//! - [`users`]: `rm_users`, one row per account.
//! - [`waitlist`]: `rm_waitlist_entries`, one row per waiting-list entry,
//!   read with its place in line.
//!
//! Cabins, booking, payment and waiting-list statuses are stored as the
//! domain spells them (`Cabin::as_str`, `BookingStatus::as_str`,
//! `PaymentStatus::as_str`, `WaitlistStatus::as_str`);
//! seats have a status of the read model's own, [`SeatStatus`].

pub mod billing;
pub mod bookings;
pub mod documents;
pub mod flights;
pub mod users;
pub mod waitlist;

use std::fmt;
use std::str::FromStr;

/// A seat as the seat map shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

impl SeatStatus {
    /// The spelling in `rm_seats.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "AVAILABLE",
            SeatStatus::Held => "HELD",
            SeatStatus::Sold => "SOLD",
        }
    }
}

impl fmt::Display for SeatStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value in a read model that is none of its type's: the model and its
/// contract disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} in a read model")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

impl FromStr for SeatStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AVAILABLE" => Ok(SeatStatus::Available),
            "HELD" => Ok(SeatStatus::Held),
            "SOLD" => Ok(SeatStatus::Sold),
            other => Err(UnknownValue {
                kind: "seat status",
                value: other.to_owned(),
            }),
        }
    }
}

impl TryFrom<String> for SeatStatus {
    type Error = UnknownValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A stored value parsed with its type's `FromStr`, as a decode error when
/// it does not parse.
pub(crate) fn parse<T>(kind: &'static str, value: &str) -> Result<T, sqlx::Error>
where
    T: FromStr,
{
    value.parse().map_err(|_| {
        sqlx::Error::Decode(Box::new(UnknownValue {
            kind,
            value: value.to_owned(),
        }))
    })
}
