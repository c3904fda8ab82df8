//! The per-stream hash chain.
//!
//! `hash = SHA-256(prev_hash || content_hash)` where `content_hash` is the
//! SHA-256 of a canonical JSON rendering of everything the event says: its
//! stream, id, type, schema version, recording time, data and metadata. The
//! first event of a stream chains from 32 zero bytes. Changing, removing,
//! reordering or moving any event breaks the chain from that event on.
//!
//! The canonical rendering sorts object keys itself rather than trusting
//! `serde_json::Map`'s order, which changes with the `preserve_order` feature
//! and differs from the order PostgreSQL's `jsonb` gives back.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::{Metadata, NewEvent, StreamId};

pub const GENESIS: [u8; 32] = [0; 32];

/// The recording time as hashed and stored: microsecond precision, the
/// precision of PostgreSQL's `timestamptz`.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

pub struct Content<'a> {
    pub stream_id: &'a StreamId,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub recorded_at: DateTime<Utc>,
    pub data: &'a Value,
    pub metadata: &'a Metadata,
}

impl<'a> Content<'a> {
    /// What an event about to be appended to `stream_id` at `recorded_at`
    /// will be hashed as.
    pub fn of_new(stream_id: &'a StreamId, e: &'a NewEvent, recorded_at: DateTime<Utc>) -> Self {
        Self {
            stream_id,
            event_id: e.event_id,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            recorded_at,
            data: &e.data,
            metadata: &e.metadata,
        }
    }
}

pub fn content_hash(c: &Content<'_>) -> [u8; 32] {
    // The canonical rendering of the array [stream, id, type, schema
    // version, recorded at, data, metadata], written piece by piece rather
    // than built as one value first: the data is not copied, and hashing
    // (on every append and every verify) allocates little.
    let mut out = Vec::with_capacity(512);
    out.push(b'[');
    write_str(c.stream_id.as_str(), &mut out);
    out.push(b',');
    write_str(&c.event_id.to_string(), &mut out);
    out.push(b',');
    write_str(c.event_type, &mut out);
    out.push(b',');
    out.extend_from_slice(c.schema_version.to_string().as_bytes());
    out.push(b',');
    write_str(
        &c.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        &mut out,
    );
    out.push(b',');
    write_canonical(c.data, &mut out);
    out.push(b',');
    let metadata = serde_json::to_value(c.metadata).unwrap_or(Value::Null);
    write_canonical(&metadata, &mut out);
    out.push(b']');
    Sha256::digest(&out).into()
}

pub fn chain(prev: &[u8], content_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(content_hash);
    h.finalize().into()
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(s, out),
        // Numbers, booleans and null as serde_json writes them.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is deterministic; writing to a Vec
    // cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Actor;

    fn meta() -> Metadata {
        Metadata {
            correlation_id: Uuid::nil(),
            causation_id: None,
            command_id: None,
            actor: Actor::system("test"),
        }
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":"x","x":[1,2]}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":[1,2],"y":"x"},"b":1}"#).unwrap();
        let s = StreamId::parse("t-1").unwrap();
        let m = meta();
        let c = |d| Content {
            stream_id: &s,
            event_id: Uuid::nil(),
            event_type: "X",
            schema_version: 1,
            recorded_at: DateTime::from_timestamp(0, 0).unwrap(),
            data: d,
            metadata: &m,
        };
        assert_eq!(content_hash(&c(&a)), content_hash(&c(&b)));
        let changed: Value = serde_json::from_str(r#"{"b":2,"a":{"x":[1,2],"y":"x"}}"#).unwrap();
        assert_ne!(content_hash(&c(&a)), content_hash(&c(&changed)));
    }

    /// The rendering every stored hash was made with, kept to prove the
    /// faster one writes the same bytes.
    fn first_rendering(c: &Content<'_>) -> [u8; 32] {
        fn canonical(v: &Value, out: &mut Vec<u8>) {
            match v {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push(b'{');
                    for (i, k) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                        out.push(b':');
                        canonical(&map[k], out);
                    }
                    out.push(b'}');
                }
                Value::Array(items) => {
                    out.push(b'[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        canonical(item, out);
                    }
                    out.push(b']');
                }
                other => out.extend_from_slice(other.to_string().as_bytes()),
            }
        }
        let metadata = serde_json::to_value(c.metadata).unwrap_or(Value::Null);
        let doc = serde_json::json!([
            c.stream_id.as_str(),
            c.event_id.to_string(),
            c.event_type,
            c.schema_version,
            c.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            c.data,
            metadata,
        ]);
        let mut out = Vec::new();
        canonical(&doc, &mut out);
        Sha256::digest(&out).into()
    }

    #[test]
    fn the_rendering_has_not_changed() {
        let data: Value = serde_json::from_str(
            r#"{"z":"quote \" and \\ and \u0001 and é and 🚀","a":[1,-2.5,1e30,true,null,{"k":"v"}],
                "n":{"b":18446744073709551615,"a":"x"},"personal":{"sealed":{"ciphertext":"AAE="}}}"#,
        )
        .unwrap();
        let s = StreamId::parse("booking-01a22f36-7742-7029-8efa-4e4533e79d5b").unwrap();
        let m = Metadata {
            correlation_id: Uuid::now_v7(),
            causation_id: Some(Uuid::now_v7()),
            command_id: Some(Uuid::now_v7()),
            actor: Actor::user(Uuid::now_v7(), "customer"),
        };
        let c = Content {
            stream_id: &s,
            event_id: Uuid::now_v7(),
            event_type: "BookingCreated",
            schema_version: 3,
            recorded_at: truncate_to_micros(Utc::now()),
            data: &data,
            metadata: &m,
        };
        assert_eq!(content_hash(&c), first_rendering(&c));
    }

    #[test]
    fn the_chain_depends_on_the_previous_hash() {
        let c = [7u8; 32];
        assert_ne!(chain(&GENESIS, &c), chain(&[1u8; 32], &c));
    }
}
