//! The two traits every aggregate implements, and the codec between a typed
//! event and the `(type, version, data)` triple that the event store keeps.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// An event of one aggregate: an enum serialized with
/// `#[serde(tag = "type", content = "data")]` whose tags equal
/// [`event_type`](DomainEvent::event_type).
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static
{
    /// Past-tense type name stored with the event, e.g. `"FlightScheduled"`.
    fn event_type(&self) -> &'static str;

    /// Schema version of the current shape of this event type (starts at 1).
    fn schema_version(&self) -> u16 {
        1
    }

    /// Turns the stored `data` of an older `version` of `event_type` into the
    /// current shape. The default knows no older versions.
    fn upcast(event_type: &str, version: u16, data: Value) -> Result<Value, UpcastError> {
        let _ = (event_type, version);
        Ok(data)
    }
}

/// A consistency boundary: decides on commands against its current state and
/// folds its own events back into that state.
pub trait Aggregate: Default + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Stream category: the stream of instance `id` is `"{CATEGORY}-{id}"`.
    const CATEGORY: &'static str;
    type Command;
    type Event: DomainEvent;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Business rules live here and only here: `evolve` never refuses.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event. Must accept any event `decide` ever produced,
    /// including ones whose personal data has since been erased.
    fn evolve(self, event: &Self::Event) -> Self;

    /// The state after `events`, starting from the default (empty) state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self {
        events
            .into_iter()
            .fold(Self::default(), |state, event| state.evolve(event))
    }

    /// Stream name of one instance, e.g. `flight-0190…`.
    fn stream_id(id: uuid::Uuid) -> String {
        format!("{}-{}", Self::CATEGORY, id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("event {event_type} has no version {version}")]
    UnknownVersion { event_type: String, version: u16 },
    #[error("cannot upcast {event_type} v{version}: {reason}")]
    Malformed {
        event_type: String,
        version: u16,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Upcast(#[from] UpcastError),
    #[error("event {event_type} v{version} is newer than this build knows (v{current})")]
    TooNew {
        event_type: String,
        version: u16,
        current: u16,
    },
    #[error("malformed {event_type} event: {reason}")]
    Malformed { event_type: String, reason: String },
}

/// Splits an event into `(type, schema version, data)`.
///
/// # Panics
///
/// Only if the event's `Serialize` fails, which cannot happen for the
/// domain's events (plain structs with string keys); use [`try_encode`] for
/// foreign event types.
pub fn encode<E: DomainEvent>(event: &E) -> (&'static str, u16, Value) {
    try_encode(event).expect("domain events always serialize to JSON")
}

/// [`encode`] that reports a serialization failure instead of panicking.
pub fn try_encode<E: DomainEvent>(
    event: &E,
) -> Result<(&'static str, u16, Value), serde_json::Error> {
    let event_type = event.event_type();
    let version = event.schema_version();
    let data = match serde_json::to_value(event)? {
        Value::Object(mut map) => map.remove("data").unwrap_or(Value::Null),
        other => other,
    };
    Ok((event_type, version, data))
}

/// Rebuilds an event from what the store kept: upcasts older versions, then
/// deserializes. Malformed data is an error, never a panic.
pub fn decode<E: DomainEvent>(
    event_type: &str,
    version: u16,
    data: Value,
) -> Result<E, DecodeError> {
    let data = E::upcast(event_type, version, data)?;
    let mut envelope = serde_json::Map::with_capacity(2);
    envelope.insert("type".to_owned(), Value::String(event_type.to_owned()));
    envelope.insert("data".to_owned(), data);
    let event: E =
        serde_json::from_value(Value::Object(envelope)).map_err(|e| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            reason: e.to_string(),
        })?;
    // A version from the future would have been read with today's shape and
    // silently lost fields; refuse it so a rolling deploy fails loudly.
    let current = event.schema_version();
    if version > current {
        return Err(DecodeError::TooNew {
            event_type: event_type.to_owned(),
            version,
            current,
        });
    }
    Ok(event)
}
