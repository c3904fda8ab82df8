//! Process managers: the booking -> payment -> ticket fulfilment with its
//! compensations, and the cancellation of a cancelled flight's bookings.
//!
//! # How it runs
//! - [`inbox`]: a checkpointed follower of the log (run by the projections
//!   runner) starts a saga row per booking and per cancelled flight, and
//!   wakes sagas on outside events. Deadlines are rows (`next_run_at`), so
//!   they survive restarts and fire once.
//! - [`worker`]: workers lease due rows, decide the next action with the
//!   pure [`fulfilment::next`], run it through the write side (seat moves on
//!   the flight's lane, with the booking transition in the same append) and
//!   the [`gateway`] / [`tickets`] ports, and let go with the next deadline.
//!   Failures back off exponentially; after `max_attempts` the saga is
//!   parked (status `PARKED`) until an admin retries it ([`admin`]).
//! - Every command a step appends carries an id derived from the saga and
//!   the step, and every provider call an idempotency key derived the same
//!   way, so a step run twice (a crash, a lost lease) has one effect.
//!
//! # Layout
//! - [`fulfilment`]: the decisions (pure); [`store`]: the `sagas` table;
//!   [`tickets`]: the ticket issuer port and the simulated issuer.

pub mod admin;
pub mod fulfilment;
pub mod inbox;
pub mod store;
pub mod tickets;
pub mod worker;

pub use worker::{SagaConfig, Sagas};
