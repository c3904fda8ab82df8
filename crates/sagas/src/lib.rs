//! Process managers: the booking -> payment -> ticket fulfilment with its
//! compensations, the cancellation of a cancelled flight's bookings, and
//! the offers of seats that come back to a waiting list ([`waitlist`]).
//!
//! # How it runs
//! - [`inbox`]: a checkpointed follower of the log (run by the projections
//!   runner) starts a saga row per booking and per cancelled flight, and
//!   wakes sagas on outside events. Deadlines are rows (`next_run_at`), so
//!   they survive restarts and fire once.
//! - [`worker`]: workers lease due rows and let go with the next deadline;
//!   [`steps`] decides each saga's next action with the pure
//!   [`domain::fulfilment::next`] and runs it through the application's
//!   command path (seat moves on the flight's lane, with the booking
//!   transition in the same append) and the [`gateway`] / [`tickets`] ports;
//!   `moves` has the steps of a paid booking moving to a dearer flight.
//!   Failures back off exponentially; after `max_attempts` the saga is
//!   parked (status `PARKED`) until an admin retries it ([`admin`]).
//! - Every command a step appends carries an id derived from the saga and
//!   the step, and every provider call an idempotency key derived the same
//!   way, so a step run twice (a crash, a lost lease) has one effect.
//!
//! # Layout
//! - [`store`]: the `sagas` table (`ledger`: the workers' writes to it,
//!   committed together); [`tickets`]: the ticket issuer port and
//!   the simulated issuer; [`waitlist`]: the waiting-list process
//!   manager (`waitlist_lines`); [`MIGRATOR`]: the `sagas` and
//!   `waitlist_lines` tables and the simulated payment provider's (which
//!   came with the first).

pub mod admin;
pub mod inbox;
mod ledger;
mod moves;
pub mod steps;
pub mod store;
pub mod tickets;
pub mod waitlist;
pub mod worker;

use sqlx::migrate::Migrator;

pub use admin::Admin;
pub use waitlist::{WaitlistConfig, Waitlists};
pub use worker::{SagaConfig, Sagas};

/// The `sagas` table, and the simulated payment provider's tables
/// (`gateway_sim_*`), which were introduced with it.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
