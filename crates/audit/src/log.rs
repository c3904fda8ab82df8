//! Events as auditors read them: everything the log says of each one.

use chrono::{DateTime, Utc};
use eventstore::{Actor, EventStore, Position, RecordedEvent, StreamId};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{Audit, AuditError, AuditResult};

/// One event with its metadata and hashes; personal data opened.
#[derive(Debug, Clone, Serialize)]
pub struct AuditedEvent {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u16,
    pub stream_id: String,
    pub stream_version: u64,
    pub position: String,
    pub recorded_at: DateTime<Utc>,
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub command_id: Option<Uuid>,
    pub data: Value,
    pub hash: String,
    pub prev_hash: String,
}

/// Which part of the global log to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub after: Option<Position>,
    pub limit: usize,
    /// Stream category (`booking`, `payment`, ...).
    pub category: Option<String>,
    pub stream: Option<StreamId>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
}

/// A page of the global log and the cursor after it.
#[derive(Debug, Clone, Serialize)]
pub struct LogPage {
    pub events: Vec<AuditedEvent>,
    /// Pass as `after` for the next page; `null` at the end of the log.
    pub next: Option<String>,
}

/// Events one read of the log goes past at most, whatever the filters
/// keep: a page is bounded in time even when nothing matches.
const SCAN: usize = 10_000;

impl Audit {
    /// The stream's events with `from <= version <= to`.
    pub async fn stream(
        &self,
        stream: &StreamId,
        from: u64,
        to: Option<u64>,
    ) -> AuditResult<Vec<AuditedEvent>> {
        if self.store.stream_version(stream).await? == 0 {
            return Err(AuditError::NotFound(format!("stream {stream}")));
        }
        let events = self.store.read_stream(stream, from.max(1), to).await?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(self.audited(e).await?);
        }
        Ok(out)
    }

    /// A page of the global log, filtered.
    pub async fn events(&self, q: &LogQuery) -> AuditResult<LogPage> {
        let limit = q.limit.clamp(1, 1000);
        let keep = |e: &RecordedEvent| {
            q.category
                .as_deref()
                .is_none_or(|c| e.stream_id.category() == c)
                && q.stream.as_ref().is_none_or(|s| &e.stream_id == s)
                && q.from.is_none_or(|f| e.recorded_at >= f)
                && q.to.is_none_or(|t| e.recorded_at < t)
        };
        let mut after = q.after;
        let mut scanned = 0;
        let mut events = Vec::new();
        loop {
            let batch = self.store.read_all(after, 1000).await?;
            let Some(last) = batch.last().map(|e| e.position) else {
                // The end of the log.
                return Ok(LogPage { events, next: None });
            };
            for e in batch {
                after = Some(e.position);
                scanned += 1;
                if keep(&e) {
                    events.push(self.audited(e).await?);
                    if events.len() == limit {
                        return Ok(LogPage {
                            events,
                            next: after.map(|p| p.to_string()),
                        });
                    }
                }
            }
            after = Some(last);
            if scanned >= SCAN {
                return Ok(LogPage {
                    events,
                    next: after.map(|p| p.to_string()),
                });
            }
        }
    }

    pub(crate) async fn audited(&self, e: RecordedEvent) -> AuditResult<AuditedEvent> {
        let data = self.sealer.open(e.data).await?;
        Ok(AuditedEvent {
            event_id: e.event_id,
            event_type: e.event_type,
            schema_version: e.schema_version,
            stream_id: e.stream_id.as_str().to_owned(),
            stream_version: e.version,
            position: e.position.to_string(),
            recorded_at: e.recorded_at,
            actor: e.metadata.actor,
            correlation_id: e.metadata.correlation_id,
            causation_id: e.metadata.causation_id,
            command_id: e.metadata.command_id,
            data,
            hash: hex::encode(&e.hash),
            prev_hash: hex::encode(&e.prev_hash),
        })
    }
}
