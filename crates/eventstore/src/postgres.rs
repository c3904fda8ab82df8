//! The PostgreSQL backend (the default).
//!
//! One append is one call of the `es_append` SQL function (see
//! `migrations/0001_event_store.sql`): one round trip that locks the
//! streams, checks their versions, chains the hashes and inserts events and
//! commands. The global order is `(tx, position)`, read only below the oldest
//! running transaction (`pg_snapshot_xmin`), so a reader's cursor never passes
//! an event that is still to commit. LISTEN/NOTIFY only wakes readers.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::{PgConnection, Row};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use uuid::Uuid;

use crate::batch;
use crate::error::StoreError;
use crate::hash::{self, Content};
use crate::model::{
    AppendRequest, AppendResult, BadEvent, Capabilities, ExpectedVersion, Metadata, Page, Position,
    RecordedEvent, StoredCommand, StreamId, VerifyReport,
};
use crate::store::EventStore;
use crate::verify::{ChainVerifier, Link};

/// The event store's own tables (`es_*`). The engine applies them with
/// every other crate's, in version order.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The LISTEN/NOTIFY channel that wakes readers in other processes.
const CHANNEL: &str = "es_appended";

// `tx_num`, not `tx`: an output column named `tx` would shadow the table
// column in ORDER BY and sort by the cast instead of using the index.
const EVENT_COLUMNS: &str = "position, tx::text::bigint AS tx_num, stream_id, version, event_id, \
     event_type, schema_version, data, metadata, recorded_at, prev_hash, hash";

#[derive(Clone)]
pub struct PgEventStore {
    pool: PgPool,
    shared: Arc<Shared>,
    /// Group commit ([`crate::batch`]); `None` appends each alone.
    batcher: Option<mpsc::Sender<batch::Pending>>,
}

struct Shared {
    wake: watch::Sender<u64>,
    /// Asks the notifier task to tell other processes that events were
    /// appended. Coalesced: many appends, one NOTIFY.
    notify_others: Notify,
}

impl PgEventStore {
    /// A store over `pool`. Starts two small background tasks (they end when
    /// the store is dropped): one LISTENs for appends by other processes, one
    /// NOTIFYs them of ours. NOTIFY is sent after commit, outside the append's
    /// transaction, because a transaction that notifies takes a global lock
    /// at commit and would serialise every append.
    pub fn new(pool: PgPool) -> Self {
        let shared = Arc::new(Shared {
            wake: watch::channel(0).0,
            notify_others: Notify::new(),
        });
        tokio::spawn(listen(pool.clone(), Arc::downgrade(&shared)));
        tokio::spawn(notify(pool.clone(), Arc::downgrade(&shared)));
        let alone = Self {
            pool,
            shared,
            batcher: None,
        };
        Self {
            batcher: Some(batch::spawn(alone.clone())),
            ..alone
        }
    }

    /// The same store over another pool of the same database: its readers
    /// are woken by the same appends, with no second LISTEN. A bulkhead: the
    /// projectors read and write through a pool of their own, so under load
    /// they never queue for a connection behind the API's requests. Its
    /// appends (the projectors make none) are not batched.
    pub fn on_pool(&self, pool: PgPool) -> Self {
        Self {
            pool,
            shared: self.shared.clone(),
            batcher: None,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the engine's migrations.
    pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(pool).await
    }

    /// Appends inside the caller's transaction; the caller commits (and then
    /// calls [`PgEventStore::appended`] to wake readers promptly).
    pub async fn append_in(
        &self,
        conn: &mut PgConnection,
        request: AppendRequest,
    ) -> Result<AppendResult, StoreError> {
        crate::validate(&request)?;
        let recorded_at = hash::truncate_to_micros(Utc::now());
        if let Some(result) = self.append_one(conn, &request, recorded_at).await? {
            return Ok(result);
        }

        let mut flat = Flat::default();
        flat.push(&request, recorded_at)?;
        let call = sqlx::query(
            "SELECT conflict, stream_id, expected, actual, tx, first_position, last_position \
             FROM es_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        );
        let rows = flat
            .bind(call, recorded_at)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| map_append_error(e, &request))?;
        let rows: Vec<&PgRow> = rows.iter().collect();
        appended_as(&mut *conn, &request, &rows).await
    }

    /// Several independent appends in one statement (so one transaction,
    /// committed once): each runs in its own subtransaction and gets its
    /// own outcome, in order. See `migrations/0014_append_batch.sql`.
    pub(crate) async fn append_many(
        &self,
        conn: &mut PgConnection,
        requests: &[AppendRequest],
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        let recorded_at = hash::truncate_to_micros(Utc::now());
        let mut flat = Flat::default();
        // Appends that cannot even be encoded fail alone, before the call.
        let mut early: Vec<Option<StoreError>> = Vec::with_capacity(requests.len());
        for r in requests {
            early.push(
                crate::validate(r)
                    .and_then(|()| flat.push(r, recorded_at))
                    .err(),
            );
        }
        let rows = if flat.appends == 0 {
            vec![]
        } else {
            let call = sqlx::query(
                "SELECT append_no, conflict, stream_id, expected, actual, tx, first_position, \
                        last_position, error_state, error_constraint, error_message \
                 FROM es_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                                      $14, $15)",
            )
            .bind(&flat.append)
            .bind(&flat.command_append);
            flat.bind(call, recorded_at).fetch_all(&mut *conn).await?
        };
        let mut results = Vec::with_capacity(requests.len());
        let mut number = 0i32;
        for (request, early) in requests.iter().zip(early) {
            if let Some(e) = early {
                results.push(Err(e));
                continue;
            }
            number += 1;
            let mine: Vec<&PgRow> = rows
                .iter()
                .filter(|r| r.try_get::<i32, _>("append_no").ok() == Some(number))
                .collect();
            let failed = match mine.first() {
                Some(r) => r.try_get::<Option<String>, _>("error_state")?,
                None => None,
            };
            results.push(match failed {
                Some(state) => {
                    let first = mine[0];
                    let constraint: Option<String> = first.try_get("error_constraint")?;
                    let message: String = first
                        .try_get::<Option<String>, _>("error_message")?
                        .unwrap_or_default();
                    Err(
                        refused(constraint.as_deref(), &message, request).unwrap_or_else(|| {
                            StoreError::Backend(format!("{state}: {message}").into())
                        }),
                    )
                }
                None => appended_as(&mut *conn, request, &mine).await,
            });
        }
        Ok(results)
    }

    /// The fast path for the most common append: one event to one existing
    /// stream (with at most one command record). One statement moves the
    /// stream's head (lock, version check and hash chain in a single
    /// `UPDATE`) and inserts the event, without a PL/pgSQL call. `None` when
    /// it does not apply or wrote nothing (a new stream, or a version
    /// mismatch): the general path then runs and reports what happened.
    async fn append_one(
        &self,
        conn: &mut PgConnection,
        request: &AppendRequest,
        recorded_at: DateTime<Utc>,
    ) -> Result<Option<AppendResult>, StoreError> {
        let ([s], true) = (request.streams.as_slice(), request.commands.len() <= 1) else {
            return Ok(None);
        };
        let [e] = s.events.as_slice() else {
            return Ok(None);
        };
        if s.expected == ExpectedVersion::Exact(0) {
            return Ok(None);
        }
        let expected = sql_expected(s.expected);
        let content = hash::content_hash(&Content::of_new(&s.stream, e, recorded_at));
        let metadata = serde_json::to_value(&e.metadata)
            .map_err(|e| StoreError::InvalidAppend(e.to_string()))?;
        let command = request.commands.first();
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "WITH head AS ( \
                UPDATE es_streams \
                   SET version = version + 1, prev_hash = last_hash, \
                       last_hash = sha256(last_hash || $9) \
                 WHERE stream_id = $1 AND version > 0 \
                   AND ($2 = -1 OR $2 = -2 OR version = $2) \
             RETURNING version, prev_hash, last_hash), \
             ev AS ( \
                INSERT INTO es_events (stream_id, version, event_id, event_type, schema_version, \
                                       data, metadata, recorded_at, prev_hash, hash) \
                SELECT $1, head.version, $3, $4, $5, $6, $7, $8, head.prev_hash, head.last_hash \
                  FROM head \
             RETURNING tx::text::bigint AS tx_num, position, version), \
             cmd AS ( \
                INSERT INTO es_commands (command_id, fingerprint, outcome, tx, position, recorded_at) \
                SELECT $10, $11, $12, pg_current_xact_id(), ev.position, $8 FROM ev WHERE $10::uuid IS NOT NULL) \
             SELECT tx_num, position, version FROM ev",
        )
        .bind(s.stream.as_str())
        .bind(expected)
        .bind(e.event_id)
        .bind(&e.event_type)
        .bind(i32::from(e.schema_version))
        .bind(&e.data)
        .bind(&metadata)
        .bind(recorded_at)
        .bind(content.as_slice())
        .bind(command.map(|c| c.command_id))
        .bind(command.and_then(|c| c.fingerprint.clone()))
        .bind(command.map(|c| c.outcome.clone()))
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| map_append_error(e, request))?;
        Ok(row.map(|(tx, seq, version)| AppendResult {
            versions: vec![(s.stream.clone(), version as u64)],
            position: Position::new(tx as u64, seq as u64),
        }))
    }

    /// One append in its own (autocommit) transaction.
    pub(crate) async fn append_alone(
        &self,
        request: AppendRequest,
    ) -> Result<AppendResult, StoreError> {
        let mut conn = self.pool.acquire().await?;
        // Autocommit: es_append runs as one statement, so as one transaction.
        let result = self.append_in(&mut conn, request).await?;
        self.appended();
        Ok(result)
    }

    /// Wakes local readers and (coalesced) other processes' readers.
    pub fn appended(&self) {
        self.shared.wake.send_modify(|n| *n = n.wrapping_add(1));
        self.shared.notify_others.notify_one();
    }
}

#[async_trait]
impl EventStore for PgEventStore {
    /// Through the batcher: alone at once when nothing else is waiting,
    /// else in one transaction with the appends waiting beside it.
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, StoreError> {
        // Refused before it can share a transaction with anyone.
        crate::validate(&request)?;
        let Some(batcher) = &self.batcher else {
            return self.append_alone(request).await;
        };
        let (reply, answer) = oneshot::channel();
        batcher
            .send(batch::Pending { request, reply })
            .await
            .map_err(|_| StoreError::Backend("the event store is shutting down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the append was interrupted".into()))?
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM es_events \
             WHERE stream_id = $1 AND version >= $2 AND version <= $3 ORDER BY version"
        );
        let rows = sqlx::query(&sql)
            .bind(stream.as_str())
            .bind(from as i64)
            .bind(to.map_or(i64::MAX, |t| t.min(i64::MAX as u64) as i64))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT version FROM es_streams WHERE stream_id = $1")
                .bind(stream.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.unwrap_or(0) as u64)
    }

    async fn read_all(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let after = after.unwrap_or(Position::START);
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM es_events \
             WHERE (es_events.tx, position) > ($1::bigint::text::xid8, $2) \
               AND es_events.tx < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY es_events.tx, es_events.position LIMIT $3"
        );
        // Not a named prepared statement: a cached generic plan cannot see
        // that the cursor leaves few rows and degrades to a sequential scan
        // and sort per page on a large log. An unnamed statement is planned
        // for its actual cursor every time (an index range scan).
        let rows = sqlx::query(&sql)
            .persistent(false)
            .bind(after.tx as i64)
            .bind(after.seq as i64)
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn read_all_in(
        &self,
        after: Option<Position>,
        limit: usize,
        categories: &[&str],
    ) -> Result<Page, StoreError> {
        let after = after.unwrap_or(Position::START);
        // One statement (one snapshot): the page of the log, from the
        // (tx, position) index and the heap but without the events' data;
        // then the whole rows of the wanted ones, plus the page's last row
        // whatever its category, which is the cursor. Each row is fetched by
        // its own index lookup (the LATERAL with LIMIT cannot be turned into
        // a join): on a young, fast-growing log the statistics lag and a
        // plain join was planned as a hash join over a sequential scan of
        // the whole log, for every page of every projector.
        let sql = format!(
            "WITH page AS MATERIALIZED ( \
                 SELECT position AS p_position, tx AS p_tx, \
                        split_part(stream_id, '-', 1) = ANY($4) AS p_wanted \
                 FROM es_events \
                 WHERE (es_events.tx, position) > ($1::bigint::text::xid8, $2) \
                   AND es_events.tx < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY es_events.tx, es_events.position LIMIT $3), \
             last AS (SELECT p_tx AS l_tx, p_position AS l_position FROM page \
                      ORDER BY p_tx DESC, p_position DESC LIMIT 1) \
             SELECT ev.*, p_wanted, (SELECT count(*) FROM page) AS scanned \
             FROM page CROSS JOIN LATERAL ( \
                 SELECT {EVENT_COLUMNS} FROM es_events \
                 WHERE es_events.tx = page.p_tx AND es_events.position = page.p_position \
                 LIMIT 1) ev \
             WHERE p_wanted OR (p_tx, p_position) = (SELECT l_tx, l_position FROM last) \
             ORDER BY p_tx, p_position"
        );
        let rows = sqlx::query(&sql)
            .persistent(false)
            .bind(after.tx as i64)
            .bind(after.seq as i64)
            .bind(limit.min(i64::MAX as usize) as i64)
            .bind(categories)
            .fetch_all(&self.pool)
            .await?;
        let mut page = Page::default();
        for row in &rows {
            let event = decode_event(row)?;
            page.scanned = row.try_get::<i64, _>("scanned")? as usize;
            page.scanned_to = Some((event.position, event.recorded_at));
            if row.try_get::<bool, _>("p_wanted")? {
                page.events.push(event);
            }
        }
        Ok(page)
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        head_on(&mut conn).await
    }

    async fn find_command(&self, command_id: Uuid) -> Result<Option<StoredCommand>, StoreError> {
        let row = sqlx::query(
            "SELECT command_id, fingerprint, outcome, tx::text::bigint AS tx, position, recorded_at \
             FROM es_commands WHERE command_id = $1",
        )
        .bind(command_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredCommand {
                command_id: r.try_get("command_id")?,
                fingerprint: r.try_get("fingerprint")?,
                outcome: r.try_get("outcome")?,
                position: Position::new(
                    r.try_get::<i64, _>("tx")? as u64,
                    r.try_get::<i64, _>("position")? as u64,
                ),
                recorded_at: r.try_get("recorded_at")?,
            })
        })
        .transpose()
    }

    async fn verify(&self, stream: Option<&StreamId>) -> Result<VerifyReport, StoreError> {
        let mut v = ChainVerifier::default();
        {
            let mut rows = sqlx::query(VERIFY_ROWS)
                .bind(stream.map(|s| s.as_str()))
                .fetch(&self.pool);
            // Rows arrive here while the chunks before are decoded and
            // hashed on blocking threads: receiving, decoding and hashing
            // (and PostgreSQL sending) run at once. Chunks are checked in
            // order, so the chains are followed as stored.
            let mut hashing: std::collections::VecDeque<
                tokio::task::JoinHandle<Result<Hashed, StoreError>>,
            > = std::collections::VecDeque::with_capacity(VERIFY_AHEAD + 1);
            let mut chunk = Vec::with_capacity(VERIFY_CHUNK);
            loop {
                let row = rows.try_next().await?;
                let end = row.is_none();
                if let Some(row) = row {
                    chunk.push(row);
                }
                if chunk.len() == VERIFY_CHUNK || (end && !chunk.is_empty()) {
                    if hashing.len() == VERIFY_AHEAD {
                        let done = hashing.pop_front().expect("a chunk in flight");
                        check_chunk(
                            &mut v,
                            done.await.map_err(|e| StoreError::Backend(Box::new(e)))??,
                        )?;
                    }
                    let next = std::mem::replace(&mut chunk, Vec::with_capacity(VERIFY_CHUNK));
                    hashing.push_back(tokio::task::spawn_blocking(move || hash_chunk(next)));
                }
                if end {
                    break;
                }
            }
            for done in hashing {
                check_chunk(
                    &mut v,
                    done.await.map_err(|e| StoreError::Backend(Box::new(e)))??,
                )?;
            }
        }
        // The stream heads must agree with the last event: this catches a
        // stream whose newest events were deleted.
        let heads = sqlx::query(
            "SELECT s.stream_id, s.version FROM es_streams s \
             LEFT JOIN es_events e ON e.stream_id = s.stream_id AND e.version = s.version \
             WHERE ($1::text IS NULL OR s.stream_id = $1) \
               AND ((s.version > 0 AND e.hash IS DISTINCT FROM s.last_hash) \
                    OR EXISTS (SELECT 1 FROM es_events x WHERE x.stream_id = s.stream_id AND x.version > s.version)) \
             ORDER BY s.stream_id LIMIT 1",
        )
        .bind(stream.map(|s| s.as_str()))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = heads {
            v.fail(BadEvent {
                stream_id: row.try_get("stream_id")?,
                version: row.try_get::<i64, _>("version")? as u64,
                event_id: None,
                reason: "the stream head does not match its last event (events were removed or added outside the store)".into(),
            });
        }
        Ok(v.report())
    }

    fn wake(&self) -> watch::Receiver<u64> {
        self.shared.wake.subscribe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            multi_stream_append: true,
        }
    }
}

/// es_append's parallel arrays, for one append or, numbered, several.
#[derive(Default)]
struct Flat {
    appends: i32,
    /// Per stream: the append it belongs to (1-based).
    append: Vec<i32>,
    streams: Vec<String>,
    expected: Vec<i64>,
    /// Per event: its stream's index in `streams` (1-based).
    ev_stream: Vec<i32>,
    ids: Vec<Uuid>,
    types: Vec<String>,
    schema_versions: Vec<i32>,
    data: Vec<serde_json::Value>,
    metadata: Vec<serde_json::Value>,
    content_hashes: Vec<Vec<u8>>,
    command_append: Vec<i32>,
    command_ids: Vec<Uuid>,
    fingerprints: Vec<Option<Vec<u8>>>,
    outcomes: Vec<serde_json::Value>,
}

/// An expected version as es_append takes it: -1 any, -2 the stream must
/// exist, n >= 0 exactly n.
fn sql_expected(expected: ExpectedVersion) -> i64 {
    match expected {
        ExpectedVersion::Any => -1,
        ExpectedVersion::StreamExists => -2,
        ExpectedVersion::Exact(v) => v as i64,
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl Flat {
    /// Binds es_append's arguments, in its order, after what `query` has.
    fn bind<'q>(&'q self, query: PgQuery<'q>, recorded_at: DateTime<Utc>) -> PgQuery<'q> {
        query
            .bind(&self.streams)
            .bind(&self.expected)
            .bind(&self.ev_stream)
            .bind(&self.ids)
            .bind(&self.types)
            .bind(&self.schema_versions)
            .bind(&self.data)
            .bind(&self.metadata)
            .bind(&self.content_hashes)
            .bind(recorded_at)
            .bind(&self.command_ids)
            .bind(&self.fingerprints)
            .bind(&self.outcomes)
    }

    /// Adds one append; nothing of it when it cannot be encoded.
    fn push(
        &mut self,
        request: &AppendRequest,
        recorded_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = request.event_count();
        let mut metadata = Vec::with_capacity(n);
        for s in &request.streams {
            for e in &s.events {
                metadata.push(
                    serde_json::to_value(&e.metadata)
                        .map_err(|e| StoreError::InvalidAppend(e.to_string()))?,
                );
            }
        }
        self.metadata.extend(metadata);
        self.appends += 1;
        let base = self.streams.len() as i32;
        // Lock streams in one global order so that concurrent multi-stream
        // appends cannot deadlock.
        let mut order: Vec<usize> = (0..request.streams.len()).collect();
        order.sort_by(|&a, &b| request.streams[a].stream.cmp(&request.streams[b].stream));
        let mut slot = vec![0i32; request.streams.len()];
        for (sorted, &orig) in order.iter().enumerate() {
            slot[orig] = base + sorted as i32 + 1;
        }
        for &i in &order {
            let s = &request.streams[i];
            self.append.push(self.appends);
            self.streams.push(s.stream.to_string());
            self.expected.push(sql_expected(s.expected));
        }
        for (i, s) in request.streams.iter().enumerate() {
            for e in &s.events {
                self.content_hashes
                    .push(hash::content_hash(&Content::of_new(&s.stream, e, recorded_at)).to_vec());
                self.ev_stream.push(slot[i]);
                self.ids.push(e.event_id);
                self.types.push(e.event_type.clone());
                self.schema_versions.push(i32::from(e.schema_version));
                self.data.push(e.data.clone());
            }
        }
        for c in &request.commands {
            self.command_append.push(self.appends);
            self.command_ids.push(c.command_id);
            self.fingerprints.push(c.fingerprint.clone());
            self.outcomes.push(c.outcome.clone());
        }
        Ok(())
    }
}

/// What es_append's rows for `request` say: a conflict, or the versions
/// and position it appended at.
async fn appended_as(
    conn: &mut PgConnection,
    request: &AppendRequest,
    rows: &[&PgRow],
) -> Result<AppendResult, StoreError> {
    let first = rows
        .first()
        .ok_or_else(|| StoreError::InvalidAppend("es_append returned nothing".into()))?;
    if first.try_get::<bool, _>("conflict")? {
        let stream: String = first.try_get("stream_id")?;
        let actual: i64 = first.try_get("actual")?;
        let stream = StreamId::parse(&stream).map_err(StoreError::backend)?;
        let expected = request
            .streams
            .iter()
            .find(|s| s.stream == stream)
            .map_or(ExpectedVersion::Any, |s| s.expected);
        return Err(StoreError::Conflict {
            stream,
            expected,
            actual: actual as u64,
        });
    }
    let mut versions = Vec::with_capacity(request.streams.len());
    for s in &request.streams {
        let row = rows
            .iter()
            .find(|r| {
                r.try_get::<String, _>("stream_id").ok().as_deref() == Some(s.stream.as_str())
            })
            .ok_or_else(|| StoreError::InvalidAppend("stream missing from result".into()))?;
        versions.push((s.stream.clone(), row.try_get::<i64, _>("actual")? as u64));
    }
    let tx: i64 = first.try_get("tx")?;
    let last: Option<i64> = first.try_get("last_position")?;
    let position = match last {
        Some(seq) => Position::new(tx as u64, seq as u64),
        // A guard-only append wrote nothing: it is as fresh as the head.
        None => head_on(&mut *conn).await?.unwrap_or(Position::START),
    };
    Ok(AppendResult { versions, position })
}

async fn head_on(conn: &mut PgConnection) -> Result<Option<Position>, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT e.tx::text::bigint AS tx_num, e.position FROM es_events e \
         WHERE e.tx < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY e.tx DESC, e.position DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(tx, seq)| Position::new(tx as u64, seq as u64)))
}

/// Events hashed per chunk while the next chunk is read.
const VERIFY_CHUNK: usize = 2048;

/// Chunks decoded and hashed at once, ahead of the one being checked.
const VERIFY_AHEAD: usize = 3;

/// What verify reads of each event: the chain fields and the content, the
/// payload and metadata as their JSON text (hashed off that text). Public
/// for the benchmark, which times PostgreSQL producing these rows alone.
pub const VERIFY_ROWS: &str = "SELECT stream_id, version, event_id, event_type, schema_version, \
     recorded_at, data::text, metadata::text, prev_hash, hash FROM es_events \
     WHERE $1::text IS NULL OR stream_id = $1 ORDER BY stream_id, version";

/// A chunk of rows, each with its content hash or why it has none.
struct Hashed {
    rows: Vec<PgRow>,
    contents: Vec<Result<[u8; 32], String>>,
}

fn hash_chunk(rows: Vec<PgRow>) -> Result<Hashed, StoreError> {
    let contents = rows
        .iter()
        .map(stored_content)
        .collect::<Result<_, StoreError>>()?;
    Ok(Hashed { rows, contents })
}

/// The content hash of a [`VERIFY_ROWS`] row, or why the row cannot have
/// one (it is corrupt).
fn stored_content(r: &PgRow) -> Result<Result<[u8; 32], String>, StoreError> {
    let stream_id: &str = r.try_get(0)?;
    if let Err(e) = StreamId::parse(stream_id) {
        return Ok(Err(e.to_string()));
    }
    let schema_version: i32 = r.try_get(4)?;
    let Ok(schema_version) = u16::try_from(schema_version) else {
        return Ok(Err(format!("schema version {schema_version}")));
    };
    Ok(hash::stored_content_hash(&hash::StoredContent {
        stream_id,
        event_id: r.try_get(2)?,
        event_type: r.try_get(3)?,
        schema_version,
        recorded_at: r.try_get(5)?,
        data: r.try_get(6)?,
        metadata: r.try_get(7)?,
    })
    .map_err(|e| format!("stored JSON: {e}")))
}

fn check_chunk(v: &mut ChainVerifier, hashed: Hashed) -> Result<(), StoreError> {
    for (r, content) in hashed.rows.iter().zip(hashed.contents) {
        let link = Link {
            stream_id: r.try_get(0)?,
            version: r.try_get::<i64, _>(1)? as u64,
            event_id: r.try_get(2)?,
            prev_hash: r.try_get(8)?,
            hash: r.try_get(9)?,
        };
        match content {
            Ok(content) => v.check_hashed(&link, &content),
            Err(reason) => v.fail(BadEvent {
                stream_id: link.stream_id.to_owned(),
                version: link.version,
                event_id: Some(link.event_id),
                reason,
            }),
        }
    }
    Ok(())
}

fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let stream: String = row.try_get("stream_id")?;
    let version = row.try_get::<i64, _>("version")? as u64;
    let corrupt = |reason: String| StoreError::Corrupt {
        stream: stream.clone(),
        version,
        reason,
    };
    let stream_id = StreamId::parse(&stream).map_err(|e| corrupt(e.to_string()))?;
    let metadata: serde_json::Value = row.try_get("metadata")?;
    let metadata: Metadata =
        serde_json::from_value(metadata).map_err(|e| corrupt(format!("metadata: {e}")))?;
    let schema_version: i32 = row.try_get("schema_version")?;
    let schema_version = u16::try_from(schema_version)
        .map_err(|_| corrupt(format!("schema version {schema_version}")))?;
    let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
    Ok(RecordedEvent {
        position: Position::new(
            row.try_get::<i64, _>("tx_num")? as u64,
            row.try_get::<i64, _>("position")? as u64,
        ),
        stream_id,
        version,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version,
        data: row.try_get("data")?,
        metadata,
        recorded_at,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

fn map_append_error(e: sqlx::Error, request: &AppendRequest) -> StoreError {
    if let Some(db) = e.as_database_error() {
        if let Some(mapped) = refused(db.constraint(), db.message(), request) {
            return mapped;
        }
    }
    StoreError::from(e)
}

/// What a constraint the database enforced means for the append.
fn refused(constraint: Option<&str>, message: &str, request: &AppendRequest) -> Option<StoreError> {
    match constraint? {
        // Another append created the same new stream first.
        "es_streams_pkey" | "es_events_stream_version" => {
            let s = request
                .streams
                .iter()
                .find(|s| message.contains(s.stream.as_str()))
                .or_else(|| request.streams.first())?;
            Some(StoreError::Conflict {
                stream: s.stream.clone(),
                expected: s.expected,
                actual: u64::MAX,
            })
        }
        "es_commands_pkey" => {
            let id = request
                .commands
                .iter()
                .find(|c| message.contains(&c.command_id.to_string()))
                .or_else(|| request.commands.first())
                .map_or(Uuid::nil(), |c| c.command_id);
            Some(StoreError::DuplicateCommand(id))
        }
        "es_events_event_id" => Some(StoreError::InvalidAppend(
            "an event id is already stored".into(),
        )),
        _ => None,
    }
}

/// Turns other processes' NOTIFYs into local wake-ups.
async fn listen(pool: PgPool, shared: Weak<Shared>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(_) if pool.is_closed() => return,
            Err(e) => {
                tracing::debug!(error = %e, "event store listener could not connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if shared.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::debug!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await {
                Ok(Ok(Some(_))) => match shared.upgrade() {
                    Some(s) => s.wake.send_modify(|n| *n = n.wrapping_add(1)),
                    None => return,
                },
                // The connection dropped: reconnect (readers poll meanwhile).
                Ok(Ok(None)) | Ok(Err(_)) => break,
                Err(_timeout) => {
                    if shared.strong_count() == 0 || pool.is_closed() {
                        return;
                    }
                }
            }
        }
    }
}

/// Sends one NOTIFY for any number of local appends since the last one.
async fn notify(pool: PgPool, shared: Weak<Shared>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        let woken = tokio::time::timeout(Duration::from_secs(1), s.notify_others.notified()).await;
        drop(s);
        if woken.is_err() {
            if pool.is_closed() {
                return;
            }
            continue;
        }
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::debug!(error = %e, "NOTIFY failed; other processes will poll");
        }
        // Coalesce bursts of appends into one NOTIFY: at most 100 a second,
        // since every notifying commit takes a server-wide lock. Readers in
        // this process are woken at once; other processes within 10 ms.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
