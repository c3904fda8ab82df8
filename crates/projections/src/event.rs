//! Events as projectors see them: opened (when asked) and decoded into the
//! domain's types by stream category.

use chrono::{DateTime, Utc};
use domain::booking::BookingEvent;
use domain::flight::FlightEvent;
use domain::payment::PaymentEvent;
use domain::seats::SeatEvent;
use domain::user::UserEvent;
use domain::DomainEvent;
use eventstore::{Position, RecordedEvent, Sealer, StreamId};
use serde_json::Value;
use uuid::Uuid;

use crate::{Error, Result};

/// A domain event, by the category of its stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Flight(FlightEvent),
    Seats(SeatEvent),
    Booking(BookingEvent),
    Payment(PaymentEvent),
    User(UserEvent),
}

/// One event of the log, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub position: Position,
    pub stream_id: StreamId,
    /// The id part of the stream name, when it is a UUID (the flight of a
    /// `seats-…` stream).
    pub aggregate_id: Option<Uuid>,
    pub version: u64,
    pub event_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub event: Event,
}

/// The stream categories the domain writes.
pub const CATEGORIES: &[&str] = &["flight", "seats", "booking", "payment", "user"];

/// Decodes the events of `batch` whose category is in `categories`; other
/// events are skipped. With `open`, sealed personal data is decrypted
/// (reading as erased once shredded); without, it is replaced by "erased"
/// unread, which costs nothing.
pub async fn decode_batch(
    batch: Vec<RecordedEvent>,
    categories: &[&str],
    sealer: Option<&Sealer>,
) -> Result<Vec<Decoded>> {
    let mut out = Vec::with_capacity(batch.len());
    for mut e in batch {
        let category = e.stream_id.category();
        if !categories.contains(&category) || !CATEGORIES.contains(&category) {
            continue;
        }
        // The data is moved out, not copied: it is the bulk of the event.
        let mut data = std::mem::take(&mut e.data);
        if data.get("personal").is_some() {
            match sealer {
                Some(sealer) => data = sealer.open(data).await?,
                None => data["personal"] = Value::String("erased".into()),
            }
        }
        out.push(decode_one(&e, data)?);
    }
    Ok(out)
}

fn decode_one(e: &RecordedEvent, data: Value) -> Result<Decoded> {
    fn typed<E: DomainEvent>(e: &RecordedEvent, data: Value) -> Result<E> {
        domain::decode::<E>(&e.event_type, e.schema_version, data).map_err(|err| Error::Decode {
            stream: e.stream_id.to_string(),
            version: e.version,
            reason: err.to_string(),
        })
    }
    let event = match e.stream_id.category() {
        "flight" => Event::Flight(typed(e, data)?),
        "seats" => Event::Seats(typed(e, data)?),
        "booking" => Event::Booking(typed(e, data)?),
        "payment" => Event::Payment(typed(e, data)?),
        "user" => Event::User(typed(e, data)?),
        other => {
            return Err(Error::Decode {
                stream: e.stream_id.to_string(),
                version: e.version,
                reason: format!("unknown category {other}"),
            })
        }
    };
    Ok(Decoded {
        position: e.position,
        stream_id: e.stream_id.clone(),
        aggregate_id: e.stream_id.id().parse().ok(),
        version: e.version,
        event_id: e.event_id,
        recorded_at: e.recorded_at,
        event,
    })
}
