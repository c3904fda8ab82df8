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
    write_head(
        c.stream_id.as_str(),
        c.event_id,
        c.event_type,
        c.schema_version,
        c.recorded_at,
        &mut out,
    );
    write_canonical(c.data, &mut out);
    out.push(b',');
    let metadata = serde_json::to_value(c.metadata).unwrap_or(Value::Null);
    write_canonical(&metadata, &mut out);
    out.push(b']');
    Sha256::digest(&out).into()
}

/// An event as stored: its data and metadata as the JSON text the database
/// gives back.
pub struct StoredContent<'a> {
    pub stream_id: &'a str,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub recorded_at: DateTime<Utc>,
    pub data: &'a str,
    pub metadata: &'a str,
}

/// The same hash as [`content_hash`] gives the event these columns were
/// stored from, read straight off the stored JSON text: no value is built,
/// which is most of what verifying a long log costs. The metadata is hashed
/// as stored (the store writes it as `Metadata` serializes), so a field
/// added to it behind the store's back breaks the chain too.
pub fn stored_content_hash(c: &StoredContent<'_>) -> Result<[u8; 32], serde_json::Error> {
    let mut out = Vec::with_capacity(c.data.len() + c.metadata.len() + 192);
    write_head(
        c.stream_id,
        c.event_id,
        c.event_type,
        c.schema_version,
        c.recorded_at,
        &mut out,
    );
    write_canonical_text(c.data, &mut out)?;
    out.push(b',');
    write_canonical_text(c.metadata, &mut out)?;
    out.push(b']');
    Ok(Sha256::digest(&out).into())
}

/// `[stream, id, type, schema version, recorded at,` of the rendering.
fn write_head(
    stream_id: &str,
    event_id: Uuid,
    event_type: &str,
    schema_version: u16,
    recorded_at: DateTime<Utc>,
    out: &mut Vec<u8>,
) {
    out.push(b'[');
    write_str(stream_id, out);
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(
        event_id
            .as_hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
    );
    out.push(b'"');
    out.push(b',');
    write_str(event_type, out);
    out.push(b',');
    out.extend_from_slice(itoa::Buffer::new().format(schema_version).as_bytes());
    out.push(b',');
    write_str(
        &recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        out,
    );
    out.push(b',');
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

/// Renders JSON text as [`write_canonical`] renders the `Value` serde_json
/// parses it into, byte for byte, without building that value: the parser's
/// events are written as they come, and an object's members, rendered in
/// the order they arrive, are put in key order when it closes. A repeated
/// key keeps its last value, as a parsed `Value` does.
pub fn write_canonical_text(json: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde::de::DeserializeSeed::deserialize(Canonical(out), &mut de)?;
    de.end()
}

struct Canonical<'o>(&'o mut Vec<u8>);

impl<'de> serde::de::DeserializeSeed<'de> for Canonical<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Scalars are written as serde_json writes the `Value` its own visitor
/// would have made of them.
impl<'de> serde::de::Visitor<'de> for Canonical<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.0
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        // A non-finite float has no JSON number; serde_json's value holds
        // it as null.
        let _ = serde_json::to_writer(&mut *self.0, &Value::from(v));
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        write_str(v, self.0);
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.0;
        out.push(b'[');
        let start = out.len();
        loop {
            let mark = out.len();
            if mark > start {
                out.push(b',');
            }
            if seq.next_element_seed(Canonical(&mut *out))?.is_none() {
                out.truncate(mark);
                break;
            }
        }
        out.push(b']');
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.0;
        let base = out.len();
        let mut members: Vec<(std::borrow::Cow<'de, str>, std::ops::Range<usize>)> = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let start = out.len() - base;
            map.next_value_seed(Canonical(&mut *out))?;
            members.push((key, start..out.len() - base));
        }
        let rendered = out.split_off(base);
        // Stable: of repeated keys the last stays last, and wins below.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        out.push(b'{');
        let mut first = true;
        for (i, (key, range)) in members.iter().enumerate() {
            if members.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(key, out);
            out.push(b':');
            out.extend_from_slice(&rendered[range.clone()]);
        }
        out.push(b'}');
        Ok(())
    }
}

/// An object key, borrowed from the text unless it had escapes.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }
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

    /// Canonical via a parsed `Value`, as every stored hash was made.
    fn via_value(json: &str) -> Vec<u8> {
        let v: Value = serde_json::from_str(json).unwrap();
        let mut out = Vec::new();
        write_canonical(&v, &mut out);
        out
    }

    fn via_text(json: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_canonical_text(json, &mut out).unwrap();
        out
    }

    #[test]
    fn the_text_rendering_writes_what_the_value_rendering_writes() {
        for json in [
            r#"{"b":1,"a":{"y":"x","x":[1,2]}}"#,
            // PostgreSQL's jsonb order (shorter keys first), its spacing,
            // and numbers spelled as numeric keeps them.
            r#"{"b": 1.50, "aa": [], "ab": {}, "abc": -0, "é": 1E2, "z": 18446744073709551616}"#,
            r#"{"k": 1, "k": 2, "a": {"k": [1], "k": "last"}}"#,
            r#"{"s": "tab\there \"quoted\" \u00e9 \ud83d\ude80 \/ \u0000", "\u0041": null}"#,
            r#"[true, false, null, -9223372036854775808, 1e-7, 0.1, 123456789.123456789]"#,
            r#""just a string""#,
            "3",
        ] {
            assert_eq!(
                String::from_utf8(via_text(json)).unwrap(),
                String::from_utf8(via_value(json)).unwrap(),
                "{json}"
            );
        }
    }

    #[test]
    fn the_text_rendering_refuses_what_is_not_json() {
        for bad in ["", "{", r#"{"a":1} x"#, "[1,]", "nul"] {
            assert!(write_canonical_text(bad, &mut Vec::new()).is_err(), "{bad}");
        }
    }

    /// JSON text as a database may give it back: any key order, repeated
    /// keys, escapes, and numbers in any spelling.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            "[a-e]{0,3}",
            Just("\\u00e9".to_owned()),
            Just("\\\"q".to_owned()),
            Just("é".to_owned()),
        ];
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| serde_json::to_string(&f).unwrap()),
            (-999i32..999, 0u32..4, -30i32..30).prop_map(|(m, zeros, e)| format!(
                "{m}.{}5{}E{e}",
                "0".repeat(zeros as usize),
                "0".repeat(zeros as usize)
            )),
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
            "[ -~]{0,6}"
                .prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\u0022"))),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\" : {v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_text_renders_as_its_value_does(json in json_text()) {
            proptest::prop_assert_eq!(via_text(&json), via_value(&json));
        }
    }

    #[test]
    fn the_chain_depends_on_the_previous_hash() {
        let c = [7u8; 32];
        assert_ne!(chain(&GENESIS, &c), chain(&[1u8; 32], &c));
    }
}
