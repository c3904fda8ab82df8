//! Rebuilding a projection from the whole log while the live one serves.
//!
//! 1. Copies of the projector's tables (`CREATE TABLE … (LIKE … INCLUDING
//!    ALL)`: columns, defaults, constraints, indexes) are made in a schema
//!    of their own, `rm_rebuild_<name>`, created afresh.
//!    Their secondary (non-unique) indexes are dropped at once and built
//!    again after the replay: one sort per index instead of an index
//!    update per row. Unique indexes stay, the projectors' upserts need them.
//! 2. The log is replayed into them batch by batch, each transaction with
//!    `SET LOCAL search_path TO rm_rebuild_<name>, <live schema>` so the
//!    projector's unqualified SQL lands in the copies. These transactions
//!    commit with `synchronous_commit = off`: until the swap nothing depends
//!    on them, and a crash only means starting the rebuild again. The next
//!    batch is read and decoded while the current one is applied.
//! 3. The swap is one transaction: it locks the projector's checkpoint row
//!    (the live runner waits on it), applies the last events to the copies,
//!    drops the live tables, moves the copies into the live schema, gives
//!    their indexes the live indexes' names, and moves the checkpoint to
//!    where the copies stand. The live runner then finds its checkpoint
//!    moved, drops its pending batch and carries on from there.
//!
//! Readers keep reading the old tables until the swap commits; the swap
//! itself holds an exclusive lock on them for as long as the last batch and
//! a few catalog updates take. One rebuild per projector at a time (an
//! advisory lock); a second gets [`Error::RebuildRunning`].

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eventstore::{Page, Position, Sealer};
use sqlx::{Connection, PgConnection};

use crate::event::{decode_batch, Decoded};
use crate::projector::{Projector, RebuildMemo};
use crate::runner::{lock_checkpoint, Runner};
use crate::{Error, Result};

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    pub name: String,
    pub events: u64,
    /// Where the rebuilt projection (and its checkpoint) stands.
    pub position: Position,
    pub elapsed: Duration,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Rebuilds `projector`'s tables from the whole log and swaps them in.
#[tracing::instrument(skip_all, fields(name = projector.name()))]
pub async fn rebuild(runner: &Runner, projector: &dyn Projector) -> Result<RebuildReport> {
    let name = projector.name();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Error::UnknownProjection(name.into()));
    }
    let mut lock = runner.pool().acquire().await?;
    let key = format!("projection_rebuild:{name}");
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(&key)
        .fetch_one(&mut *lock)
        .await?;
    if !locked {
        return Err(Error::RebuildRunning(name.into()));
    }
    let result = rebuild_locked(runner, projector).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&key)
        .execute(&mut *lock)
        .await;
    if unlocked.is_err() {
        // Never hand a connection that still holds the lock back to the pool.
        lock.detach();
    }
    result
}

/// [`rebuild`] of the built-in projector called `name`.
pub async fn rebuild_by_name(runner: &Runner, name: &str) -> Result<RebuildReport> {
    let projector =
        crate::projector::by_name(name).ok_or_else(|| Error::UnknownProjection(name.into()))?;
    rebuild(runner, &*projector).await
}

async fn rebuild_locked(runner: &Runner, projector: &dyn Projector) -> Result<RebuildReport> {
    let started = Instant::now();
    let name = projector.name();
    let pool = runner.pool();
    let live: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pool)
        .await?;
    let shadow = format!("rm_rebuild_{name}");
    let search_path = format!(
        "SET LOCAL search_path TO {}, {}",
        ident(&shadow),
        ident(&live)
    );
    let deferred: Vec<String>;

    {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&shadow)))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("CREATE SCHEMA {}", ident(&shadow)))
            .execute(&mut *tx)
            .await?;
        for table in projector.tables() {
            sqlx::query(&format!(
                "CREATE TABLE {s}.{t} (LIKE {l}.{t} INCLUDING ALL)",
                s = ident(&shadow),
                l = ident(&live),
                t = ident(table)
            ))
            .execute(&mut *tx)
            .await?;
        }
        deferred = defer_secondary_indexes(&mut tx, &shadow, projector.tables()).await?;
        tx.commit().await?;
    }

    let mut at = Position::START;
    let mut last_recorded: Option<DateTime<Utc>> = None;
    let mut events = 0u64;
    // Replay while the live projection serves. A task of its own reads the
    // log ahead, and each page is decoded in a task of its own, so reading,
    // decoding and applying run side by side on the runtime's threads.
    let mut memo: RebuildMemo = None;
    // The decodings, in log order; the last answers `Ok(None)` (the head of
    // the log) or an error.
    let (tx_batches, mut batches) = tokio::sync::mpsc::channel(2);
    let reader = {
        let (store, categories) = (runner.store().clone(), projector.categories());
        let size = runner.options().rebuild_batch_size;
        let sealer = projector.needs_personal().then(|| runner.sealer().clone());
        tokio::spawn(async move {
            let mut cursor = None;
            loop {
                let (decoding, more) = match store.read_all_in(cursor, size, categories).await {
                    Err(e) => (tokio::spawn(async move { Err(e.into()) }), None),
                    Ok(page) => match page.scanned_to {
                        None => (tokio::spawn(async { Ok(None) }), None),
                        Some((last, _)) => {
                            let sealer = sealer.clone();
                            let decoding = tokio::spawn(async move {
                                decode(page, categories, sealer.as_ref()).await.map(Some)
                            });
                            (decoding, Some(last))
                        }
                    },
                };
                if tx_batches.send(decoding).await.is_err() || more.is_none() {
                    return;
                }
                cursor = more;
            }
        })
    };
    let _abort_reader = AbortOnDrop(reader);
    let stopped = |reason: String| Error::Projector {
        name: name.into(),
        reason,
    };
    loop {
        let decoding = batches
            .recv()
            .await
            .ok_or_else(|| stopped("the rebuild's log reader stopped".into()))?;
        let batch = match decoding.await {
            Ok(Ok(Some(batch))) => batch,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(stopped(format!("decoding the log failed: {e}"))),
        };
        // A crash loses the shadow tables anyway: no need to wait for the
        // WAL flush, and one round trip with the BEGIN.
        let mut tx = pool
            .begin_with(format!(
                "BEGIN; {search_path}; SET LOCAL synchronous_commit TO off"
            ))
            .await?;
        projector
            .apply_rebuilding(&mut tx, &batch.events, &mut memo)
            .await?;
        tx.commit().await?;
        at = batch.last;
        last_recorded = Some(batch.last_recorded_at);
        events += batch.read;
    }

    let replayed = started.elapsed();
    {
        let mut tx = pool.begin().await?;
        sqlx::query(&search_path).execute(&mut *tx).await?;
        projector.finish_rebuild(&mut tx, &mut memo).await?;
        tx.commit().await?;
    }
    let written = started.elapsed();
    for index in &deferred {
        sqlx::query(index).execute(pool).await?;
    }
    // Fresh tables have no planner statistics until autovacuum gets to
    // them: without these, the first queries after the swap (a flight
    // search over thousands of rows) are planned blind.
    for table in projector.tables() {
        sqlx::query(&format!("ANALYZE {}.{}", ident(&shadow), ident(table)))
            .execute(pool)
            .await?;
    }

    let indexed = started.elapsed();
    // The swap.
    let mut tx = pool.begin().await?;
    lock_checkpoint(&mut tx, name).await?;
    sqlx::query(&search_path).execute(&mut *tx).await?;
    loop {
        let sealer = projector.needs_personal().then_some(runner.sealer());
        let Some(batch) = read_decoded(runner, projector.categories(), sealer, at).await? else {
            break;
        };
        projector
            .apply_rebuilding(&mut tx, &batch.events, &mut memo)
            .await?;
        at = batch.last;
        last_recorded = Some(batch.last_recorded_at);
        events += batch.read;
    }
    for table in projector.tables() {
        swap_table(&mut tx, &live, &shadow, table).await?;
    }
    sqlx::query(&format!("DROP SCHEMA {}", ident(&shadow)))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE projection_checkpoints SET tx = $2, seq = $3, last_recorded_at = $4, \
         events_seen = $5, rebuilt_at = now(), updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(at.tx as i64)
    .bind(at.seq as i64)
    .bind(last_recorded)
    .bind(events as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let report = RebuildReport {
        name: name.into(),
        events,
        position: at,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        events,
        position = %at,
        per_second = report.events_per_second(),
        replayed_secs = replayed.as_secs_f64(),
        written_secs = written.as_secs_f64(),
        indexed_secs = indexed.as_secs_f64(),
        "projection rebuilt and swapped in"
    );
    Ok(report)
}

/// Aborts the task when dropped (the rebuild returned early).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One batch of the log, decoded for a projector.
struct DecodedBatch {
    events: Vec<Decoded>,
    /// Events read from the log (the projector's and everyone else's).
    read: u64,
    last: Position,
    last_recorded_at: DateTime<Utc>,
}

/// The next batch of events after `at`, or `None` at the head.
async fn read_decoded(
    runner: &Runner,
    categories: &[&str],
    sealer: Option<&Sealer>,
    at: Position,
) -> Result<Option<DecodedBatch>> {
    let size = runner.options().rebuild_batch_size;
    let page = runner
        .store()
        .read_all_in(Some(at), size, categories)
        .await?;
    if page.scanned_to.is_none() {
        return Ok(None);
    }
    decode(page, categories, sealer).await.map(Some)
}

/// Decodes a page that went past at least one event.
async fn decode(page: Page, categories: &[&str], sealer: Option<&Sealer>) -> Result<DecodedBatch> {
    let read = page.scanned as u64;
    let (last, last_recorded_at) = page
        .scanned_to
        .unwrap_or((Position::START, DateTime::<Utc>::MIN_UTC));
    let events = decode_batch(page.events, categories, sealer).await?;
    Ok(DecodedBatch {
        events,
        read,
        last,
        last_recorded_at,
    })
}

/// Drops the non-unique indexes of the shadow `tables` and returns the
/// statements that build them again.
async fn defer_secondary_indexes(
    conn: &mut PgConnection,
    shadow: &str,
    tables: &[&str],
) -> Result<Vec<String>> {
    let mut deferred = Vec::new();
    for table in tables {
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = to_regclass($1) AND NOT i.indisunique",
        )
        .bind(format!("{}.{}", ident(shadow), ident(table)))
        .fetch_all(&mut *conn)
        .await?;
        for (name, definition) in indexes {
            sqlx::query(&format!("DROP INDEX {}.{}", ident(shadow), ident(&name)))
                .execute(&mut *conn)
                .await?;
            deferred.push(definition);
        }
    }
    Ok(deferred)
}

/// Replaces `live.table` by `shadow.table`, keeping the live index names.
async fn swap_table(conn: &mut PgConnection, live: &str, shadow: &str, table: &str) -> Result<()> {
    const INDEXES: &str =
        "SELECT c.relname::text, split_part(pg_get_indexdef(i.indexrelid), ' USING ', 2) \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = to_regclass($1)";
    let live_table = format!("{}.{}", ident(live), ident(table));
    let old: Vec<(String, String)> = sqlx::query_as(INDEXES)
        .bind(&live_table)
        .fetch_all(&mut *conn)
        .await?;
    sqlx::query(&format!("DROP TABLE IF EXISTS {live_table}"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "ALTER TABLE {}.{} SET SCHEMA {}",
        ident(shadow),
        ident(table),
        ident(live)
    ))
    .execute(&mut *conn)
    .await?;
    let new: Vec<(String, String)> = sqlx::query_as(INDEXES)
        .bind(&live_table)
        .fetch_all(&mut *conn)
        .await?;
    for (new_name, def) in new {
        if let Some((old_name, _)) = old.iter().find(|(n, d)| *d == def && *n != new_name) {
            sqlx::query(&format!(
                "ALTER INDEX {}.{} RENAME TO {}",
                ident(live),
                ident(&new_name),
                ident(old_name)
            ))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
