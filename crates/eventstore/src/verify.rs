//! Hash-chain verification shared by the backends: feed it each stream's
//! events in version order.

use crate::hash::{self, Content, GENESIS};
use crate::model::{BadEvent, RecordedEvent, VerifyReport};

/// The hash of what an event says, as its chain link covers it.
pub fn content_of(e: &RecordedEvent) -> [u8; 32] {
    hash::content_hash(&Content {
        stream_id: &e.stream_id,
        event_id: e.event_id,
        event_type: &e.event_type,
        schema_version: e.schema_version,
        recorded_at: e.recorded_at,
        data: &e.data,
        metadata: &e.metadata,
    })
}

/// What the chain check reads of an event.
pub struct Link<'a> {
    pub stream_id: &'a str,
    pub version: u64,
    pub event_id: uuid::Uuid,
    pub prev_hash: &'a [u8],
    pub hash: &'a [u8],
}

impl<'a> From<&'a RecordedEvent> for Link<'a> {
    fn from(e: &'a RecordedEvent) -> Self {
        Self {
            stream_id: e.stream_id.as_str(),
            version: e.version,
            event_id: e.event_id,
            prev_hash: &e.prev_hash,
            hash: &e.hash,
        }
    }
}

#[derive(Default)]
pub struct ChainVerifier {
    /// The stream being followed, its last version and hash (kept in place
    /// from event to event: a long log is checked without an allocation
    /// per event).
    stream: String,
    version: u64,
    hash: Vec<u8>,
    streams: u64,
    events: u64,
    first_bad: Option<BadEvent>,
}

impl ChainVerifier {
    /// Checks the next event; events must come grouped by stream, in version
    /// order. After the first bad event the rest is only counted.
    pub fn check(&mut self, e: &RecordedEvent) {
        let content = content_of(e);
        self.check_hashed(&Link::from(e), &content);
    }

    /// As [`ChainVerifier::check`], with the event's content hash computed
    /// already ([`content_of`], or [`hash::stored_content_hash`] off the
    /// stored columns; a caller may compute many in parallel).
    pub fn check_hashed(&mut self, e: &Link<'_>, content: &[u8; 32]) {
        self.events += 1;
        let same_stream = self.events > 1 && self.stream == e.stream_id;
        let expected_version = if same_stream {
            self.version + 1
        } else {
            self.streams += 1;
            self.stream.clear();
            self.stream.push_str(e.stream_id);
            self.hash.clear();
            self.hash.extend_from_slice(&GENESIS);
            1
        };
        // The previous event's hash is still in `self.hash` for the checks
        // below; it becomes this event's after them.
        let verdict = if self.first_bad.is_some() {
            None
        } else if e.version != expected_version {
            Some(format!(
                "version {} follows version {} (an event is missing)",
                e.version,
                expected_version - 1
            ))
        } else if e.prev_hash != self.hash.as_slice() {
            Some("previous hash does not match the previous event's hash".into())
        } else if hash::chain(e.prev_hash, content).as_slice() != e.hash {
            Some("content does not match its hash (the event was altered)".into())
        } else {
            None
        };
        if let Some(reason) = verdict {
            self.first_bad = Some(BadEvent {
                stream_id: e.stream_id.to_owned(),
                version: e.version,
                event_id: Some(e.event_id),
                reason,
            });
        }
        self.version = e.version;
        self.hash.clear();
        self.hash.extend_from_slice(e.hash);
    }

    /// Records a problem found outside the chain (for example a stream head
    /// that disagrees with its last event).
    pub fn fail(&mut self, bad: BadEvent) {
        if self.first_bad.is_none() {
            self.first_bad = Some(bad);
        }
    }

    pub fn report(self) -> VerifyReport {
        VerifyReport {
            ok: self.first_bad.is_none(),
            streams_checked: self.streams,
            events_checked: self.events,
            first_bad: self.first_bad,
        }
    }
}
