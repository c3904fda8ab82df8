use uuid::Uuid;

use crate::model::{ExpectedVersion, StreamId};

/// Everything an event store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream moved since the writer read it.
    #[error("stream {stream} is at version {actual}, expected {expected:?}")]
    Conflict {
        stream: StreamId,
        expected: ExpectedVersion,
        actual: u64,
    },
    /// The command id was already recorded by an earlier append.
    #[error("command {0} was already appended")]
    DuplicateCommand(Uuid),
    /// The request itself is unusable (empty, duplicate streams, ...).
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// The backend cannot do this (for example multi-stream appends).
    #[error("unsupported by this backend: {0}")]
    Unsupported(&'static str),
    /// Stored data that cannot be read back; never a panic.
    #[error("corrupt stored event {stream}@{version}: {reason}")]
    Corrupt {
        stream: String,
        version: u64,
        reason: String,
    },
    #[error("event store backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::backend(e)
    }
}
