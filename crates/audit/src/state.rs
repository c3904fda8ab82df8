//! "What did this booking look like at 14:03 yesterday?": an aggregate
//! folded with the domain's own `evolve` up to a moment.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use domain::booking::Booking;
use domain::flight::Flight;
use domain::payment::Payment;
use domain::seats::SeatInventory;
use domain::user::User;
use domain::Aggregate;
use eventstore::{EventStore, Position, RecordedEvent, StreamId};
use serde::Serialize;
use serde_json::Value;

use crate::{Audit, AuditError, AuditResult};

/// The moment to stop at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Events recorded at or before this time.
    Time(DateTime<Utc>),
    /// Events at or before this position of the global log.
    Position(Position),
    /// The stream's first `n` events.
    Version(u64),
}

impl FromStr for AsOf {
    type Err = String;

    /// An RFC 3339 time, a position (32 hex digits, as commands answer), or
    /// a stream version (a number).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(AsOf::Time(t.with_timezone(&Utc)));
        }
        if let Ok(p) = s.parse::<Position>() {
            return Ok(AsOf::Position(p));
        }
        if let Ok(v) = s.parse::<u64>() {
            return Ok(AsOf::Version(v));
        }
        Err("as_of must be an RFC 3339 time, a position (32 hex digits) or a stream version".into())
    }
}

impl AsOf {
    fn includes(&self, e: &RecordedEvent) -> bool {
        match *self {
            AsOf::Time(t) => e.recorded_at <= t,
            AsOf::Position(p) => e.position <= p,
            AsOf::Version(v) => e.version <= v,
        }
    }
}

/// An aggregate's state at a moment, and where in the log it stands.
#[derive(Debug, Clone, Serialize)]
pub struct StateAt {
    pub stream_id: String,
    pub category: String,
    /// The stream version the state includes (0: before its first event).
    pub version: u64,
    /// The position of the last event included.
    pub position: Option<String>,
    /// When that event was recorded.
    pub recorded_at: Option<DateTime<Utc>>,
    /// The stream's current version, for comparison.
    pub current_version: u64,
    pub state: Value,
}

impl Audit {
    /// `stream`'s aggregate as of `as_of` (now when `None`).
    pub async fn state(&self, stream: &StreamId, as_of: Option<AsOf>) -> AuditResult<StateAt> {
        let category = stream.category().to_owned();
        let events = self.store.read_stream(stream, 1, None).await?;
        if events.is_empty() {
            return Err(AuditError::NotFound(format!("stream {stream}")));
        }
        let current_version = events.last().map_or(0, |e| e.version);
        // A stream's events are in version order; positions and (nearly)
        // times follow it, and the first one past the moment ends it.
        let mut included = Vec::new();
        for e in events {
            if as_of.is_some_and(|a| !a.includes(&e)) {
                break;
            }
            included.push(e);
        }
        let last = included
            .last()
            .map(|e| (e.version, e.position, e.recorded_at));
        let state = match category.as_str() {
            Booking::CATEGORY => self.fold::<Booking>(included).await?,
            Flight::CATEGORY => self.fold::<Flight>(included).await?,
            SeatInventory::CATEGORY => self.fold::<SeatInventory>(included).await?,
            Payment::CATEGORY => self.fold::<Payment>(included).await?,
            User::CATEGORY => self.fold::<User>(included).await?,
            other => {
                return Err(AuditError::Invalid(format!(
                    "streams of category {other} have no aggregate to fold"
                )))
            }
        };
        Ok(StateAt {
            stream_id: stream.as_str().to_owned(),
            category,
            version: last.map_or(0, |l| l.0),
            position: last.map(|l| l.1.to_string()),
            recorded_at: last.map(|l| l.2),
            current_version,
            state,
        })
    }

    async fn fold<A: Aggregate + Serialize>(
        &self,
        events: Vec<RecordedEvent>,
    ) -> AuditResult<Value> {
        let mut state = A::default();
        for e in events {
            let data = self.sealer.open(e.data).await?;
            let event: A::Event =
                domain::decode(&e.event_type, e.schema_version, data).map_err(|err| {
                    AuditError::Invalid(format!(
                        "{} v{} cannot be read: {err}",
                        e.stream_id, e.version
                    ))
                })?;
            state = state.evolve(&event);
        }
        serde_json::to_value(&state)
            .map_err(|e| AuditError::Invalid(format!("the state cannot be shown: {e}")))
    }
}
