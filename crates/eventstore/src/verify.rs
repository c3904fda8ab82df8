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

#[derive(Default)]
pub struct ChainVerifier {
    current: Option<(String, u64, Vec<u8>)>,
    streams: u64,
    events: u64,
    first_bad: Option<BadEvent>,
}

impl ChainVerifier {
    /// Checks the next event; events must come grouped by stream, in version
    /// order. After the first bad event the rest is only counted.
    pub fn check(&mut self, e: &RecordedEvent) {
        let content = content_of(e);
        self.check_hashed(e, &content);
    }

    /// As [`ChainVerifier::check`], with the event's content hash computed
    /// already ([`content_of`]; a caller may compute many in parallel).
    pub fn check_hashed(&mut self, e: &RecordedEvent, content: &[u8; 32]) {
        self.events += 1;
        let stream = e.stream_id.as_str();
        let (expected_version, expected_prev) = match &self.current {
            Some((s, v, h)) if s == stream => (v + 1, h.clone()),
            _ => {
                self.streams += 1;
                (1, GENESIS.to_vec())
            }
        };
        self.current = Some((stream.to_owned(), e.version, e.hash.clone()));
        if self.first_bad.is_some() {
            return;
        }
        let bad = |reason: String| BadEvent {
            stream_id: stream.to_owned(),
            version: e.version,
            event_id: Some(e.event_id),
            reason,
        };
        if e.version != expected_version {
            self.first_bad = Some(bad(format!(
                "version {} follows version {} (an event is missing)",
                e.version,
                expected_version - 1
            )));
            return;
        }
        if e.prev_hash != expected_prev {
            self.first_bad = Some(bad(
                "previous hash does not match the previous event's hash".into(),
            ));
            return;
        }
        if hash::chain(&e.prev_hash, content).as_slice() != e.hash.as_slice() {
            self.first_bad = Some(bad(
                "content does not match its hash (the event was altered)".into(),
            ));
        }
    }

    /// Records a problem found outside the chain (for example a stream head
    /// that disagrees with its last event).
    pub fn fail(&mut self, bad: BadEvent) {
        if self.first_bad.is_none() {
            self.first_bad = Some(bad);
        }
    }

    /// The hash and version of the last event checked in the current stream.
    pub fn last(&self) -> Option<(&str, u64, &[u8])> {
        self.current
            .as_ref()
            .map(|(s, v, h)| (s.as_str(), *v, h.as_slice()))
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
