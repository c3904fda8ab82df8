//! A domain-agnostic event store: streams of events with optimistic
//! concurrency, atomic multi-stream appends, idempotent commands, a global
//! order that no subscriber can skip through, and per-stream hash chains.
//!
//! # Layout
//! - [`model`]: stream ids, expected versions, positions, events, metadata.
//! - [`store`]: the [`EventStore`] trait every backend implements.
//! - [`postgres`]: the default backend (sqlx), and its migrations;
//!   [`batch`]: its group commit of concurrent appends.
//! - [`memory`]: an in-memory backend for domain and unit tests.
//! - [`subscription`]: catch-up-then-live reading of the global log.
//! - [`sealing`]: encryption of personal data with a key per person
//!   (crypto-shredding).
//! - [`hash`] and [`verify`]: the tamper-evident hash chain and its checker.
//! - [`conformance`] (feature `testing`): the behaviour every backend must
//!   show, run by each backend's tests.

pub mod batch;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod error;
pub mod hash;
pub mod memory;
pub mod model;
pub mod postgres;
pub mod sealing;
pub mod store;
pub mod subscription;
pub mod verify;

pub use error::StoreError;
pub use memory::MemoryEventStore;
pub use model::{
    Actor, AppendRequest, AppendResult, BadEvent, Capabilities, CommandRecord, ExpectedVersion,
    Metadata, NewEvent, Page, Position, RecordedEvent, StoredCommand, StreamAppend, StreamId,
    VerifyReport,
};
pub use postgres::PgEventStore;
pub use sealing::Sealer;
pub use store::EventStore;
pub use subscription::{subscribe, subscribe_in, SubscriptionOptions};

/// Refuses requests no backend should run: nothing to append, or the same
/// stream twice (its expected versions would contradict each other).
pub(crate) fn validate(request: &AppendRequest) -> Result<(), StoreError> {
    if request.streams.is_empty() {
        return Err(StoreError::InvalidAppend("no streams".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for s in &request.streams {
        if !seen.insert(&s.stream) {
            return Err(StoreError::InvalidAppend(format!(
                "stream {} appears twice",
                s.stream
            )));
        }
    }
    let mut ids = std::collections::HashSet::new();
    for c in &request.commands {
        if !ids.insert(c.command_id) {
            return Err(StoreError::InvalidAppend(format!(
                "command {} appears twice",
                c.command_id
            )));
        }
    }
    Ok(())
}
