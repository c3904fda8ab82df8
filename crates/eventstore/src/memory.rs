//! An in-memory backend for domain and unit tests. It keeps every promise of
//! the trait (it runs the same conformance suite) but nothing survives the
//! process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::hash::{self, Content, GENESIS};
use crate::model::{
    AppendRequest, AppendResult, Capabilities, Position, RecordedEvent, StoredCommand, StreamId,
    VerifyReport,
};
use crate::store::EventStore;
use crate::verify::ChainVerifier;

pub struct MemoryEventStore {
    inner: Mutex<Inner>,
    wake: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    log: Vec<RecordedEvent>,
    /// Indexes into `log` for each stream, in version order.
    streams: HashMap<StreamId, Vec<usize>>,
    commands: HashMap<Uuid, StoredCommand>,
    appends: u64,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryEventStore {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            wake: watch::channel(0).0,
        }
    }

    /// Rewrites a stored event in place, for tests of tamper detection.
    pub fn tamper(&self, stream: &StreamId, version: u64, f: impl FnOnce(&mut RecordedEvent)) {
        let mut inner = self.lock();
        let idx = inner
            .streams
            .get(stream)
            .and_then(|v| v.get(version as usize - 1))
            .copied();
        if let Some(i) = idx {
            f(&mut inner.log[i]);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied append:
        // appends validate everything before mutating.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, StoreError> {
        crate::validate(&request)?;
        let recorded_at = hash::truncate_to_micros(Utc::now());
        let result = {
            let mut inner = self.lock();
            for c in &request.commands {
                if inner.commands.contains_key(&c.command_id) {
                    return Err(StoreError::DuplicateCommand(c.command_id));
                }
            }
            for s in &request.streams {
                let actual = inner.streams.get(&s.stream).map_or(0, |v| v.len() as u64);
                if !s.expected.accepts(actual) {
                    return Err(StoreError::Conflict {
                        stream: s.stream.clone(),
                        expected: s.expected,
                        actual,
                    });
                }
            }
            inner.appends += 1;
            let tx = inner.appends;
            let mut versions = Vec::with_capacity(request.streams.len());
            for s in request.streams {
                for e in s.events {
                    let seq = inner.log.len() as u64 + 1;
                    let indexes = inner.streams.entry(s.stream.clone()).or_default();
                    let version = indexes.len() as u64 + 1;
                    let prev_hash = indexes
                        .last()
                        .copied()
                        .map_or(GENESIS.to_vec(), |i| inner.log[i].hash.clone());
                    let content = hash::content_hash(&Content::of_new(&s.stream, &e, recorded_at));
                    let hash = hash::chain(&prev_hash, &content).to_vec();
                    let idx = inner.log.len();
                    inner.log.push(RecordedEvent {
                        position: Position::new(tx, seq),
                        stream_id: s.stream.clone(),
                        version,
                        event_id: e.event_id,
                        event_type: e.event_type,
                        schema_version: e.schema_version,
                        data: e.data,
                        metadata: e.metadata,
                        recorded_at,
                        prev_hash,
                        hash,
                    });
                    inner.streams.entry(s.stream.clone()).or_default().push(idx);
                }
                let v = inner.streams.get(&s.stream).map_or(0, |v| v.len() as u64);
                versions.push((s.stream, v));
            }
            let position = inner.log.last().map_or(Position::START, |e| e.position);
            for c in request.commands {
                inner.commands.insert(
                    c.command_id,
                    StoredCommand {
                        command_id: c.command_id,
                        fingerprint: c.fingerprint,
                        outcome: c.outcome,
                        position,
                        recorded_at,
                    },
                );
            }
            AppendResult { versions, position }
        };
        self.wake.send_modify(|n| *n += 1);
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .streams
            .get(stream)
            .map(|idx| {
                idx.iter()
                    .map(|&i| &inner.log[i])
                    .filter(|e| e.version >= from && to.is_none_or(|t| e.version <= t))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .streams
            .get(stream)
            .map_or(0, |v| v.len() as u64))
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.lock();
        let start = match after {
            None => 0,
            Some(p) => inner.log.partition_point(|e| e.position <= p),
        };
        Ok(inner.log[start..].iter().take(limit).cloned().collect())
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        Ok(self.lock().log.last().map(|e| e.position))
    }

    async fn find_command(&self, command_id: Uuid) -> Result<Option<StoredCommand>, StoreError> {
        Ok(self.lock().commands.get(&command_id).cloned())
    }

    async fn verify(&self, stream: Option<&StreamId>) -> Result<VerifyReport, StoreError> {
        let inner = self.lock();
        let mut names: Vec<&StreamId> = match stream {
            Some(s) => inner
                .streams
                .get_key_value(s)
                .map(|(k, _)| k)
                .into_iter()
                .collect(),
            None => inner.streams.keys().collect(),
        };
        names.sort();
        let mut v = ChainVerifier::default();
        for name in names {
            for &i in &inner.streams[name] {
                v.check(&inner.log[i]);
            }
        }
        Ok(v.report())
    }

    fn wake(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            multi_stream_append: true,
        }
    }
}
