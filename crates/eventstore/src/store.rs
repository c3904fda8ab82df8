//! The backend-agnostic store interface.

use async_trait::async_trait;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{
    AppendRequest, AppendResult, Capabilities, Page, Position, RecordedEvent, StoredCommand,
    StreamId, VerifyReport,
};

/// An append-only log of streams with a global order.
///
/// Promises every backend keeps (and `conformance` checks):
/// - an append is atomic over all its streams, and each stream's expected
///   version is checked; a mismatch is [`StoreError::Conflict`] and writes
///   nothing;
/// - a command id is recorded with the append that carried it; appending it
///   again is [`StoreError::DuplicateCommand`] and writes nothing;
/// - [`EventStore::read_all`] pages through every committed event exactly once,
///   in one order that every reader sees, and never returns an event after a
///   cursor that a later read could still place before it;
/// - each stream carries a hash chain that [`EventStore::verify`] checks.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends atomically to every stream of the request.
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, StoreError>;

    /// Events of one stream with `from <= version <= to` (versions start at 1).
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The stream's current version (0 when it has no events).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError>;

    /// Up to `limit` events of the global log after `after` (from the start
    /// when `None`), in log order.
    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Goes past up to `limit` events of the global log after `after`, as
    /// [`EventStore::read_all`] would return them, and keeps those whose
    /// stream category is in `categories`. A reader that wants a few
    /// categories does not fetch the others' data (most of a booking log is
    /// sealed booking events that a flight projection never looks at).
    async fn read_all_in(
        &self,
        after: Option<Position>,
        limit: usize,
        categories: &[&str],
    ) -> Result<Page, StoreError> {
        let events = self.read_all(after, limit).await?;
        Ok(Page::of(events, |e| {
            categories.contains(&e.stream_id.category())
        }))
    }

    /// The position of the newest event readers can see.
    async fn head(&self) -> Result<Option<Position>, StoreError>;

    /// The first outcome of a command id, if it was appended.
    async fn find_command(&self, command_id: Uuid) -> Result<Option<StoredCommand>, StoreError>;

    /// Checks hash chains: one stream, or the whole log.
    async fn verify(&self, stream: Option<&StreamId>) -> Result<VerifyReport, StoreError>;

    /// Ticks (best effort, possibly coalesced) when new events may be
    /// readable. Only a hint: readers also poll, so a missed tick delays
    /// but never loses an event.
    fn wake(&self) -> watch::Receiver<u64>;

    fn capabilities(&self) -> Capabilities;
}
