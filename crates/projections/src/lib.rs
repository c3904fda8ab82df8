//! Projectors: the read side of the CQRS split. Each projector follows the
//! global event log from its checkpoint and writes PostgreSQL read models
//! (`rm_*` tables, `migrations/0004_read_models.sql`), described once for
//! writers and readers in [`model`].
//!
//! # Guarantees
//!
//! - **Exactly once.** A batch of events is applied and the checkpoint moved
//!   in one transaction. The transaction first locks the projector's
//!   checkpoint row and checks it still holds the position the batch was
//!   read after; if not (another runner of the same projector, or a rebuild
//!   that was swapped in) the batch is dropped and reading resumes from the
//!   stored checkpoint. A crash at any point loses or repeats nothing.
//! - **Batched writes.** A projector loads the rows a batch touches with one
//!   query per table, applies the events in log order in memory, and writes
//!   the changed rows back with one multi-row (`UNNEST`) upsert per table.
//!   The cost per batch is a handful of round trips, whatever its size.
//! - **Deterministic.** Rows carry times from events, never `now()`, so a
//!   rebuild equals the incrementally built model.
//! - **Rebuild while serving.** [`rebuild`] replays the whole log into copies
//!   of a projector's tables in a schema of their own
//!   (`rm_rebuild_<name>`, reached through `SET LOCAL search_path`, so the
//!   projector's SQL is unchanged), then in one transaction catches up the
//!   last events, drops the live tables, moves the copies in and moves the
//!   checkpoint. Readers see the old tables until that commit.
//! - **Lag** per projector as Prometheus gauges (`projection_lag_events`,
//!   `projection_lag_seconds`, label `name`) and from [`status`].
//! - **Read-your-writes.** [`wait_for`] waits until every projector has
//!   passed a position a command answered with.
//!
//! Personal data is opened with [`eventstore::Sealer`] only for projectors
//! that ask for it ([`Projector::needs_personal`]); an erased subject reads
//! as erased and its names are stored as `NULL`.
//!
//! # Layout
//! - [`event`]: [`Decoded`] events (typed by stream category).
//! - [`projector`]: the [`Projector`] trait and the built-in list ([`all`]).
//! - [`runner`]: the [`Runner`] (checkpoints, batches, lag), [`status`],
//!   [`wait_for`].
//! - [`rebuild`](mod@rebuild): shadow tables and the swap.
//! - [`flights`], [`bookings`], [`billing`], [`analytics`], [`users`],
//!   [`waitlist`]: the projectors.
//! - [`model`]: the read models' contract: rows, statuses, shared
//!   predicates, the queries the read side runs.
//! - [`sql`]: small helpers shared by the projectors.
//! - [`MIGRATOR`]: the read models' tables and the checkpoints.

pub mod analytics;
pub mod billing;
pub mod bookings;
pub mod event;
pub mod flights;
pub mod model;
pub mod projector;
pub mod rebuild;
pub mod runner;
pub mod sql;
pub mod users;
pub mod waitlist;

pub use event::{Decoded, Event};
pub use projector::{all, by_name, Projector};
pub use rebuild::{rebuild, RebuildReport};
pub use runner::{export_lag, status, wait_for, ProjectionStatus, Runner, RunnerOptions};

use eventstore::{Position, StoreError};
use sqlx::migrate::Migrator;

/// The read models' tables (`rm_*`) and `projection_checkpoints`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What can go wrong on the read side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event {stream}@{version} cannot be decoded: {reason}")]
    Decode {
        stream: String,
        version: u64,
        reason: String,
    },
    #[error("read models have not reached {wanted} (slowest at {reached})")]
    Stale { wanted: Position, reached: Position },
    #[error("unknown projection {0:?}")]
    UnknownProjection(String),
    #[error("a rebuild of {0} is already running")]
    RebuildRunning(String),
    #[error("projector {name} failed: {reason}")]
    Projector { name: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
