//! Value types: parse at the edge, then trust the type.
//!
//! Each type has a `parse`/`new` that returns a typed error, and its serde
//! implementation goes through the same validation, so a malformed value in
//! a request body or a stored event is an error, never an invalid value.

mod codes;
mod contact;
mod ids;
mod money;
mod personal;
mod role;
mod seat;
pub mod text;

pub use codes::{AirportCode, CodeError, Currency, FlightNumber};
pub use contact::{Email, EmailError};
pub use ids::{Pnr, PnrError, TicketNumber, TicketNumberError, PNR_ALPHABET};
pub use money::{Money, MoneyError};
pub use personal::Personal;
pub use role::{Role, RoleError};
pub use seat::{Cabin, CabinError, Seat, SeatError};
pub use text::{plain_text, TextError};
