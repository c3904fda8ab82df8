//! The store's vocabulary: streams, versions, positions, events and metadata.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A stream name, `category-id` (for example `flight-0190…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// Longest accepted stream name; keeps keys and Kafka message keys bounded.
    pub const MAX_LEN: usize = 200;

    pub fn new(category: &str, id: impl fmt::Display) -> Self {
        Self(format!("{category}-{id}"))
    }

    pub fn parse(s: &str) -> Result<Self, InvalidStreamId> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.split_once('-').is_some_and(|(c, id)| {
                !c.is_empty()
                    && !id.is_empty()
                    && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidStreamId(s.chars().take(Self::MAX_LEN).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-`: `flight` for `flight-…`.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(c, _)| c)
    }

    /// The part after the first `-`.
    pub fn id(&self) -> &str {
        self.0.split_once('-').map_or("", |(_, id)| id)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<StreamId> for String {
    fn from(s: StreamId) -> Self {
        s.0
    }
}

impl FromStr for StreamId {
    type Err = InvalidStreamId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id {0:?}: expected `category-id`")]
pub struct InvalidStreamId(pub String);

/// What the writer believes the stream's version is. Versions count events:
/// an empty stream is at 0, its first event is version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream must be exactly at this version (0: it must not exist).
    Exact(u64),
}

impl ExpectedVersion {
    pub const NO_STREAM: Self = Self::Exact(0);

    pub fn accepts(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::StreamExists => actual > 0,
            Self::Exact(v) => v == actual,
        }
    }
}

/// A point in the global log. Ordered; `Display` gives an opaque string
/// whose lexical order is the log order.
///
/// In PostgreSQL `tx` is the writing transaction's id and `seq` the event's
/// sequence number; EventStoreDB's commit/prepare positions map onto the same
/// pair; the in-memory store uses its index for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub tx: u64,
    pub seq: u64,
}

impl Position {
    pub const START: Position = Position { tx: 0, seq: 0 };

    pub fn new(tx: u64, seq: u64) -> Self {
        Self { tx, seq }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.tx, self.seq)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid position {0:?}: expected the 32 hex digits a command answered with")]
pub struct InvalidPosition(pub String);

impl FromStr for Position {
    type Err = InvalidPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPosition(s.chars().take(64).collect());
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let tx = u64::from_str_radix(&s[..16], 16).map_err(|_| bad())?;
        let seq = u64::from_str_radix(&s[16..], 16).map_err(|_| bad())?;
        Ok(Self { tx, seq })
    }
}

impl Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Who caused an event: a user with a role, a saga, or the system itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `user`, `saga` or `system`.
    pub kind: String,
    /// The user id, the saga id, or the system component's name.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Actor {
    pub fn user(id: Uuid, role: &str) -> Self {
        Self {
            kind: "user".into(),
            id: id.to_string(),
            role: Some(role.into()),
        }
    }
    pub fn saga(id: impl fmt::Display) -> Self {
        Self {
            kind: "saga".into(),
            id: id.to_string(),
            role: None,
        }
    }
    pub fn system(component: &str) -> Self {
        Self {
            kind: "system".into(),
            id: component.into(),
            role: None,
        }
    }
    pub fn anonymous() -> Self {
        Self::system("anonymous")
    }
}

/// Metadata carried by every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The request or saga the event belongs to.
    pub correlation_id: Uuid,
    /// The event or command that directly caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The command that appended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
    pub actor: Actor,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub data: serde_json::Value,
    pub metadata: Metadata,
}

/// The events to append to one stream, with the version they were decided on.
/// An empty `events` list is a guard: the append only succeeds if the stream
/// is still at `expected`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// A command recorded atomically with its events, so that a repeat of the
/// same command id is recognised and answered with `outcome`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRecord {
    pub command_id: Uuid,
    /// A digest of the request, to tell a true retry from a reused key.
    pub fingerprint: Option<Vec<u8>>,
    /// What the command answered; returned verbatim to a retry.
    pub outcome: serde_json::Value,
}

/// One atomic append, to one or several streams.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppendRequest {
    pub streams: Vec<StreamAppend>,
    pub commands: Vec<CommandRecord>,
}

impl AppendRequest {
    pub fn single(stream: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self {
            streams: vec![StreamAppend {
                stream,
                expected,
                events,
            }],
            commands: vec![],
        }
    }

    pub fn with_command(mut self, command: CommandRecord) -> Self {
        self.commands.push(command);
        self
    }

    pub fn event_count(&self) -> usize {
        self.streams.iter().map(|s| s.events.len()).sum()
    }
}

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// Each stream's version after the append, in request order.
    pub versions: Vec<(StreamId, u64)>,
    /// The position of the last event written (or of the log head when the
    /// append wrote none): a read at least this fresh sees the append.
    pub position: Position,
}

impl AppendResult {
    pub fn version_of(&self, stream: &StreamId) -> Option<u64> {
        self.versions
            .iter()
            .find(|(s, _)| s == stream)
            .map(|(_, v)| *v)
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: Position,
    pub stream_id: StreamId,
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub data: serde_json::Value,
    pub metadata: Metadata,
    pub recorded_at: DateTime<Utc>,
    #[serde(with = "hex_bytes")]
    pub prev_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

/// A page of the global log read for some stream categories only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The events of the wanted categories, in log order.
    pub events: Vec<RecordedEvent>,
    /// How many events of the log the read went past (all categories).
    pub scanned: usize,
    /// The last event the read went past, whatever its category, and when
    /// it was recorded: the cursor for the next page. `None` when there was
    /// nothing to read.
    pub scanned_to: Option<(Position, DateTime<Utc>)>,
}

impl Page {
    /// The page a plain read of `events` went past, keeping those `wanted`.
    pub fn of(events: Vec<RecordedEvent>, wanted: impl Fn(&RecordedEvent) -> bool) -> Self {
        Self {
            scanned: events.len(),
            scanned_to: events.last().map(|e| (e.position, e.recorded_at)),
            events: events.into_iter().filter(|e| wanted(e)).collect(),
        }
    }
}

/// A command found by id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCommand {
    pub command_id: Uuid,
    pub fingerprint: Option<Vec<u8>>,
    pub outcome: serde_json::Value,
    pub position: Position,
    pub recorded_at: DateTime<Utc>,
}

/// The result of checking hash chains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub streams_checked: u64,
    pub events_checked: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<BadEvent>,
}

/// The first event that fails verification, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadEvent {
    pub stream_id: String,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    pub reason: String,
}

/// What a backend can do; callers adapt (for example, a backend without
/// multi-stream transactions gets one stream per append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub multi_stream_append: bool,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_in_log_order() {
        let a = Position::new(9, 100);
        let b = Position::new(10, 2);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.to_string().parse::<Position>().unwrap(), a);
    }

    #[test]
    fn malformed_positions_are_refused() {
        for s in [
            "",
            "12",
            "zz00000000000000000000000000000000",
            &"0".repeat(33),
        ] {
            assert!(s.parse::<Position>().is_err(), "{s}");
        }
    }

    #[test]
    fn stream_ids_have_a_category_and_an_id() {
        let s = StreamId::parse("flight-0190a0b1-aaaa").unwrap();
        assert_eq!(s.category(), "flight");
        assert_eq!(s.id(), "0190a0b1-aaaa");
        for bad in ["", "flight", "-x", "Flight-1", "flight-", "fl ight-1"] {
            assert!(StreamId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expected_versions_accept_what_they_say() {
        assert!(ExpectedVersion::Any.accepts(0));
        assert!(ExpectedVersion::NO_STREAM.accepts(0));
        assert!(!ExpectedVersion::NO_STREAM.accepts(1));
        assert!(!ExpectedVersion::StreamExists.accepts(0));
        assert!(ExpectedVersion::Exact(3).accepts(3));
    }
}
