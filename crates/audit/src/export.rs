//! The log as NDJSON: one envelope per line (the contract's Kafka
//! envelope, plus the metadata and hashes), in stored form: personal data
//! stays sealed, so the export verifies against its own hashes offline and
//! carries nothing an erasure would have to reach.
//!
//! PostgreSQL renders each line; the engine passes pages of text through.
//! Memory stays at a few pages whatever the log's size.

use bytes::Bytes;
use eventstore::Position;
use futures::Stream;

use crate::{Audit, AuditError, LogQuery};

/// Events per page of an export.
pub const EXPORT_PAGE: i64 = 10_000;

const LINES: &str = "\
SELECT tx::text::bigint AS tx_num, position, jsonb_build_object(\
  'event_id', event_id, 'type', event_type, 'version', schema_version, \
  'stream_id', stream_id, 'stream_version', version, \
  'position', lpad(to_hex(tx::text::bigint), 16, '0') || lpad(to_hex(position), 16, '0'), \
  'recorded_at', to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
  'correlation_id', metadata->'correlation_id', 'causation_id', metadata->'causation_id', \
  'command_id', metadata->'command_id', 'actor', metadata->'actor', \
  'data', data, 'hash', encode(hash, 'hex'), 'prev_hash', encode(prev_hash, 'hex'))::text AS line \
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
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(LINES)
        .bind(cursor.after.tx as i64)
        .bind(cursor.after.seq as i64)
        .bind(q.category.as_deref())
        .bind(q.stream.as_ref().map(|s| s.as_str()))
        .bind(q.from)
        .bind(q.to)
        .bind(EXPORT_PAGE)
        .fetch_all(pool)
        .await?;
    let Some(&(tx, seq, _)) = rows.last() else {
        return Ok(None);
    };
    let done = (rows.len() as i64) < EXPORT_PAGE;
    let mut out = String::with_capacity(rows.iter().map(|r| r.2.len() + 1).sum());
    for (_, _, line) in &rows {
        out.push_str(line);
        out.push('\n');
    }
    let next = Cursor {
        after: Position::new(tx as u64, seq as u64),
        done,
    };
    Ok(Some((Bytes::from(out), next)))
}
