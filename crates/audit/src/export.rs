//! The log as NDJSON: one envelope per line (the contract's Kafka
//! envelope, plus the metadata and hashes), in stored form: personal data
//! stays sealed, so the export verifies against its own hashes offline and
//! carries nothing an erasure would have to reach.
//!
//! PostgreSQL sends the columns (the payload and the actor as the JSON
//! text it stores) and the engine writes the lines around them while the
//! rows are still arriving: the database does no JSON building of its own,
//! and the two work at once. Memory stays at a few pages whatever the log's
//! size.

use std::io::Write as _;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use eventstore::Position;
use futures::{Stream, TryStreamExt};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::{Audit, AuditError, LogQuery};

/// Events per page of an export.
pub const EXPORT_PAGE: i64 = 10_000;

// `tx_num`, not `tx`: `ORDER BY tx` would name that output column, sorting
// by a number no index has.
const ROWS: &str = "\
SELECT tx::text::bigint AS tx_num, position, event_id, event_type, schema_version, stream_id, version, \
  recorded_at, metadata->>'correlation_id', metadata->>'causation_id', \
  metadata->>'command_id', (metadata->'actor')::text, data::text, hash, prev_hash \
FROM es_events \
WHERE (tx, position) > ($1::text::xid8, $2) \
  AND tx < pg_snapshot_xmin(pg_current_snapshot()) \
  AND ($3::text IS NULL OR stream_id LIKE $3 || '-%') \
  AND ($4::text IS NULL OR stream_id = $4) \
  AND ($5::timestamptz IS NULL OR recorded_at >= $5) \
  AND ($6::timestamptz IS NULL OR recorded_at < $6) \
ORDER BY tx, position LIMIT $7";

struct Cursor {
    after: Position,
    done: bool,
}

/// Pages rendered ahead of the one being sent: PostgreSQL renders the next
/// while the caller writes this one, and memory stays at a few pages.
const AHEAD: usize = 2;

impl Audit {
    /// The log after `q.after` (filters as for [`Audit::events`]; the limit
    /// is ignored), as NDJSON, page by page. A task renders the pages a
    /// little ahead; it stops when the stream is dropped.
    pub fn export(
        &self,
        q: LogQuery,
    ) -> impl Stream<Item = Result<Bytes, AuditError>> + Send + 'static {
        let pool = self.pool.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        tokio::spawn(async move {
            let mut cursor = Cursor {
                after: q.after.unwrap_or_default(),
                done: false,
            };
            while !cursor.done {
                let page = match page(&pool, &q, &cursor).await {
                    Ok(Some((bytes, next))) => {
                        cursor = next;
                        Ok(bytes)
                    }
                    Ok(None) => break,
                    Err(e) => {
                        cursor.done = true;
                        Err(e)
                    }
                };
                if tx.send(page).await.is_err() {
                    break;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

/// The page after `cursor`, and the cursor after it; `None` at the end.
async fn page(
    pool: &sqlx::PgPool,
    q: &LogQuery,
    cursor: &Cursor,
) -> Result<Option<(Bytes, Cursor)>, AuditError> {
    let mut rows = sqlx::query(ROWS)
        .bind(cursor.after.tx as i64)
        .bind(cursor.after.seq as i64)
        .bind(q.category.as_deref())
        .bind(q.stream.as_ref().map(|s| s.as_str()))
        .bind(q.from)
        .bind(q.to)
        .bind(EXPORT_PAGE)
        .fetch(pool);
    let mut out = Vec::with_capacity(1 << 20);
    let mut count = 0;
    let mut last = None;
    while let Some(row) = rows.try_next().await? {
        last = Some(write_line(&mut out, &row)?);
        count += 1;
    }
    let Some(after) = last else {
        return Ok(None);
    };
    let next = Cursor {
        after,
        done: count < EXPORT_PAGE,
    };
    Ok(Some((Bytes::from(out), next)))
}

/// Writing to memory does not fail.
const IN_MEMORY: &str = "a Vec takes every write";

/// A JSON string (escaped as JSON requires), or `null`.
fn string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => serde_json::to_writer(&mut *out, s).expect(IN_MEMORY),
        None => out.extend_from_slice(b"null"),
    }
}

/// `bytes` in lower-case hex, written in place.
fn hex_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    hex::encode_to_slice(bytes, &mut out[start..]).expect("room for two digits a byte");
}

/// Writes the row's envelope and a newline; answers its position.
fn write_line(out: &mut Vec<u8>, r: &PgRow) -> Result<Position, AuditError> {
    let tx: i64 = r.try_get(0)?;
    let seq: i64 = r.try_get(1)?;
    let position = Position::new(tx as u64, seq as u64);
    let event_id: Uuid = r.try_get(2)?;
    let recorded_at: DateTime<Utc> = r.try_get(7)?;
    let hash: &[u8] = r.try_get(13)?;
    let prev_hash: &[u8] = r.try_get(14)?;
    out.extend_from_slice(b"{\"event_id\":\"");
    out.extend_from_slice(
        event_id
            .as_hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
    );
    out.extend_from_slice(b"\",\"type\":");
    string(out, Some(r.try_get(3)?));
    write!(
        out,
        ",\"version\":{},\"stream_id\":",
        r.try_get::<i32, _>(4)?
    )
    .expect(IN_MEMORY);
    string(out, Some(r.try_get(5)?));
    write!(
        out,
        ",\"stream_version\":{},\"position\":\"{position}\",\"recorded_at\":\"{}\",\"correlation_id\":",
        r.try_get::<i64, _>(6)?,
        recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    )
    .expect(IN_MEMORY);
    string(out, r.try_get(8)?);
    out.extend_from_slice(b",\"causation_id\":");
    string(out, r.try_get(9)?);
    out.extend_from_slice(b",\"command_id\":");
    string(out, r.try_get(10)?);
    // Already JSON, as stored.
    out.extend_from_slice(b",\"actor\":");
    out.extend_from_slice(
        r.try_get::<Option<&str>, _>(11)?
            .unwrap_or("null")
            .as_bytes(),
    );
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(r.try_get::<&str, _>(12)?.as_bytes());
    out.extend_from_slice(b",\"hash\":\"");
    hex_into(out, hash);
    out.extend_from_slice(b"\",\"prev_hash\":\"");
    hex_into(out, prev_hash);
    out.extend_from_slice(b"\"}\n");
    Ok(position)
}
