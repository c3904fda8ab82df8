//! Customers hear back: mails over SMTP and signed webhooks, written from
//! the log.
//!
//! # How it runs
//! - [`inbox`]: a checkpointed follower of the log (a projector) turns each
//!   event worth telling (a booking ticketed, a payment failed, a flight
//!   moved, seats offered to the waiting list, a reset requested...) into
//!   delivery rows, one per recipient: an email to the customer, a POST to
//!   every webhook that asked for the type. Rows and checkpoint commit
//!   together: nothing is queued for a command that rolled back, nothing
//!   committed is left out. Reminders 24 h before departure are rows due
//!   then (a durable deadline), moved when the flight is and dropped when
//!   the booking is cancelled.
//! - [`worker`]: workers lease due rows, send them ([`mail`], [`webhook`])
//!   and mark them; failures back off exponentially and after
//!   `max_attempts` a row is dead-lettered (`DEAD`) until an admin retries
//!   it ([`admin`]). A message sent just before a crash is sent again when
//!   its lease runs out, under the same delivery id: receivers dedupe by
//!   the `Booking-Delivery` header (and a mail's `Message-ID`).
//! - Mails are written when sent, from the read models once they have
//!   reached the event: an erased user gets nothing, whatever was queued.
//!   Webhook bodies carry ids, references, times and amounts, never names
//!   or addresses.

pub mod admin;
pub mod inbox;
pub mod mail;
pub mod store;
pub mod webhook;
pub mod worker;

use sqlx::migrate::Migrator;

pub use admin::Admin;
pub use worker::{Notifier, NotifyConfig};

/// The notifier's tables (`webhooks`, `notification_*`) and its checkpoint.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
