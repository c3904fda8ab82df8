//! The projector runner: checkpoints, batches, lag; and the read-side
//! helpers [`status`] and [`wait_for`].

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eventstore::{subscribe_in, EventStore, Page, Position, Sealer, SubscriptionOptions};
use futures::{FutureExt, StreamExt};
use sqlx::{PgConnection, PgPool, Row};

use crate::event::decode_batch;
use crate::projector::Projector;
use crate::{Error, Result};

/// How a runner reads and retries.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Events per batch (and per transaction).
    pub batch_size: usize,
    /// The longest wait for new events without a wake-up.
    pub idle_poll: Duration,
    /// The pause after a failed batch before it is tried again.
    pub retry_delay: Duration,
    /// Events per transaction of a rebuild's replay. Larger than the live
    /// batches: rows touched many times within a batch (a seat held, then
    /// sold) are written once.
    pub rebuild_batch_size: usize,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            idle_poll: Duration::from_millis(500),
            retry_delay: Duration::from_secs(1),
            rebuild_batch_size: 20_000,
        }
    }
}

/// Runs projectors over one store into one database.
#[derive(Clone)]
pub struct Runner {
    pool: PgPool,
    store: Arc<dyn EventStore>,
    sealer: Sealer,
    options: RunnerOptions,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Applied; the checkpoint is now here.
    Applied(Position),
    /// The stored checkpoint was not where the batch started (another
    /// runner, or a rebuild swapped in): nothing applied.
    Moved(Position),
}

impl Runner {
    pub fn new(pool: PgPool, store: Arc<dyn EventStore>, sealer: Sealer) -> Self {
        Self {
            pool,
            store,
            sealer,
            options: RunnerOptions::default(),
        }
    }

    pub fn with_options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    pub fn options(&self) -> &RunnerOptions {
        &self.options
    }

    /// Runs every projector until `shutdown` resolves. A projector whose
    /// batch fails retries it after [`RunnerOptions::retry_delay`]; the
    /// others carry on.
    pub async fn run_all(
        &self,
        projectors: Vec<Arc<dyn Projector>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let shutdown = shutdown.shared();
        let runs = projectors
            .into_iter()
            .map(|p| self.run(p, shutdown.clone()))
            .collect::<Vec<_>>();
        futures::future::try_join_all(runs).await?;
        Ok(())
    }

    /// Follows the log with one projector until `shutdown` resolves:
    /// catch-up, then live. Returns only at shutdown.
    #[tracing::instrument(name = "projector", skip_all, fields(name = projector.name()))]
    pub async fn run(
        &self,
        projector: Arc<dyn Projector>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let mut shutdown = pin!(shutdown.fuse());
        let name = projector.name();
        'outer: loop {
            let mut cp = match ensure_checkpoint(&self.pool, name).await {
                Ok(cp) => cp,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the checkpoint");
                    if self.pause(&mut shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            let options = SubscriptionOptions {
                batch_size: self.options.batch_size,
                idle_poll: self.options.idle_poll,
            };
            // Only the projector's categories are fetched whole; the rest
            // of the log is gone past, and the checkpoint moves past it.
            let mut batches = pin!(subscribe_in(
                self.store.clone(),
                Some(cp),
                projector.categories(),
                options
            ));
            loop {
                let item = futures::select_biased! {
                    _ = shutdown => return Ok(()),
                    item = batches.next().fuse() => item,
                };
                let Some(item) = item else { continue 'outer };
                let step = match item {
                    Ok(page) => self.step(&*projector, cp, page).await,
                    Err(e) => Err(e.into()),
                };
                match step {
                    Ok(Step::Applied(p)) => cp = p,
                    Ok(Step::Moved(p)) => {
                        tracing::info!(from = %p, "checkpoint moved elsewhere; resuming from it");
                        continue 'outer;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, at = %cp, "batch failed; will retry");
                        metrics::counter!("projection_errors_total", "name" => name).increment(1);
                        if self.pause(&mut shutdown).await {
                            return Ok(());
                        }
                        continue 'outer;
                    }
                }
            }
        }
    }

    /// Applies everything readable now and returns how many events the
    /// checkpoint moved past. For tests, tools and start-up.
    pub async fn catch_up(&self, projector: &dyn Projector) -> Result<u64> {
        let mut seen = 0;
        let mut cp = ensure_checkpoint(&self.pool, projector.name()).await?;
        loop {
            let page = self
                .store
                .read_all_in(Some(cp), self.options.batch_size, projector.categories())
                .await?;
            if page.scanned_to.is_none() {
                return Ok(seen);
            }
            let read = page.scanned as u64;
            match self.step(projector, cp, page).await? {
                Step::Applied(p) => {
                    seen += read;
                    cp = p;
                }
                Step::Moved(p) => cp = p,
            }
        }
    }

    /// Applies one page read after `after`, with the checkpoint, in one
    /// transaction.
    pub(crate) async fn step(
        &self,
        projector: &dyn Projector,
        after: Position,
        page: Page,
    ) -> Result<Step> {
        let Some((last_position, last_recorded_at)) = page.scanned_to else {
            return Ok(Step::Applied(after));
        };
        let read = page.scanned;
        let sealer = projector.needs_personal().then_some(&self.sealer);
        let decoded = decode_batch(page.events, projector.categories(), sealer).await?;
        // A read model is derived from the (durably committed) log and its
        // checkpoint commits with it, so the commit need not wait for the
        // WAL flush: a crash can only lose the newest batches whole, rows
        // and checkpoint together, and they are applied again. Anything
        // committed synchronously afterwards (a saga's step) flushes the
        // WAL past this commit too. The checkpoint's row lock is taken in
        // the same round trip: under load every round trip waits for a
        // share of a busy CPU, and the lag is counted in them.
        let name = projector.name();
        let mut tx = self
            .pool
            .begin_with(format!(
                "BEGIN; SET LOCAL synchronous_commit TO off; {}",
                lock_checkpoint_statement(name)
            ))
            .await?;
        let started = Instant::now();
        let applied = if decoded.is_empty() {
            Ok(())
        } else {
            projector.apply(&mut tx, &decoded).await
        };
        // The lock serialises everyone who moves this checkpoint, so it is
        // still where it was when the lock was granted. If another runner or
        // a rebuild's swap moved it before that, this batch started from the
        // wrong place: it is rolled back whole, and a batch that failed for
        // that reason (rows it thought new were there) is no error.
        let advanced = match applied {
            Ok(()) => {
                advance_checkpoint(&mut tx, name, after, last_position, last_recorded_at, read)
                    .await
            }
            Err(e) => Err(e),
        };
        match advanced {
            Ok(true) => tx.commit().await?,
            Ok(false) => {
                tx.rollback().await?;
                return Ok(Step::Moved(ensure_checkpoint(&self.pool, name).await?));
            }
            Err(e) => {
                tx.rollback().await?;
                let stored = ensure_checkpoint(&self.pool, name).await?;
                if stored != after {
                    return Ok(Step::Moved(stored));
                }
                return Err(e);
            }
        }
        metrics::counter!("projection_events_total", "name" => name).increment(read as u64);
        metrics::histogram!("projection_batch_seconds", "name" => name)
            .record(started.elapsed().as_secs_f64());
        Ok(Step::Applied(last_position))
    }

    /// Sleeps the retry delay; true if shutdown came first.
    async fn pause<S>(&self, mut shutdown: &mut S) -> bool
    where
        S: futures::future::FusedFuture<Output = ()> + Unpin,
    {
        futures::select_biased! {
            _ = shutdown => true,
            _ = tokio::time::sleep(self.options.retry_delay).fuse() => false,
        }
    }
}

fn pos_of(tx: i64, seq: i64) -> Position {
    Position::new(tx as u64, seq as u64)
}

/// The projector's checkpoint, created at the start of the log if missing.
pub async fn ensure_checkpoint(pool: &PgPool, name: &str) -> Result<Position> {
    sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(pool)
        .await?;
    let (tx, seq): (i64, i64) =
        sqlx::query_as("SELECT tx, seq FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await?;
    Ok(pos_of(tx, seq))
}

/// Locks the checkpoint row for the rest of the transaction and reads it.
/// Everyone who moves a checkpoint takes this lock first, so runners and
/// rebuilds of one projector serialise on it and never interleave writes.
pub(crate) async fn lock_checkpoint(conn: &mut PgConnection, name: &str) -> Result<Position> {
    const LOCK: &str = "SELECT tx, seq FROM projection_checkpoints WHERE name = $1 FOR UPDATE";
    let found: Option<(i64, i64)> = sqlx::query_as(LOCK)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    let (tx, seq) = match found {
        Some(at) => at,
        None => {
            sqlx::query(
                "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(name)
            .execute(&mut *conn)
            .await?;
            sqlx::query_as(LOCK)
                .bind(name)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    Ok(pos_of(tx, seq))
}

/// `SELECT … FOR UPDATE` of the projector's checkpoint row, as plain SQL
/// for a simple-query string (projector names are code constants).
fn lock_checkpoint_statement(name: &str) -> String {
    format!(
        "SELECT FROM projection_checkpoints WHERE name = '{}' FOR UPDATE",
        name.replace('\'', "''")
    )
}

/// Moves the checkpoint from `from` to `to`; false (nothing written) if it
/// was not at `from`.
async fn advance_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    from: Position,
    to: Position,
    recorded_at: DateTime<Utc>,
    seen: usize,
) -> Result<bool> {
    let moved = sqlx::query(
        "UPDATE projection_checkpoints SET tx = $4, seq = $5, last_recorded_at = $6, \
         events_seen = events_seen + $7, updated_at = now() \
         WHERE name = $1 AND tx = $2 AND seq = $3",
    )
    .bind(name)
    .bind(from.tx as i64)
    .bind(from.seq as i64)
    .bind(to.tx as i64)
    .bind(to.seq as i64)
    .bind(recorded_at)
    .bind(seen as i64)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Where a projector stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    pub name: String,
    /// The last event it has seen.
    pub position: Position,
    /// About how many events the log head is past `position` (the
    /// difference of sequence numbers; 0 when caught up).
    pub lag_events: u64,
    /// Age of the oldest event it has not applied yet; 0 when caught up.
    pub lag_seconds: f64,
    pub events_seen: u64,
    pub last_recorded_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Every projector's position and lag, by name. Reads the PostgreSQL event
/// store's tables directly.
pub async fn status(pool: &PgPool) -> Result<Vec<ProjectionStatus>> {
    let rows = sqlx::query(
        "WITH head AS ( \
             SELECT e.tx::text::bigint AS tx, e.position AS seq FROM es_events e \
             WHERE e.tx < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY e.tx DESC, e.position DESC LIMIT 1) \
         SELECT c.name, c.tx, c.seq, c.events_seen, c.last_recorded_at, c.updated_at, \
                h.tx AS head_tx, h.seq AS head_seq, \
                (SELECT e.recorded_at FROM es_events e \
                  WHERE (e.tx, e.position) > (c.tx::text::xid8, c.seq) \
                    AND e.tx < pg_snapshot_xmin(pg_current_snapshot()) \
                  ORDER BY e.tx, e.position LIMIT 1) AS next_recorded_at, \
                now() AS now \
         FROM projection_checkpoints c LEFT JOIN head h ON true ORDER BY c.name",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let at = pos_of(r.try_get("tx")?, r.try_get("seq")?);
            let head = match (
                r.try_get::<Option<i64>, _>("head_tx")?,
                r.try_get::<Option<i64>, _>("head_seq")?,
            ) {
                (Some(tx), Some(seq)) => pos_of(tx, seq),
                _ => Position::START,
            };
            let behind = head > at;
            let now: DateTime<Utc> = r.try_get("now")?;
            let next: Option<DateTime<Utc>> = r.try_get("next_recorded_at")?;
            Ok(ProjectionStatus {
                name: r.try_get("name")?,
                position: at,
                lag_events: if behind {
                    head.seq.saturating_sub(at.seq).max(1)
                } else {
                    0
                },
                lag_seconds: match next {
                    Some(t) if behind => {
                        ((now - t).num_microseconds().unwrap_or(0) as f64 / 1e6).max(0.0)
                    }
                    _ => 0.0,
                },
                events_seen: r.try_get::<i64, _>("events_seen")? as u64,
                last_recorded_at: r.try_get("last_recorded_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Sets the lag gauges (`projection_lag_events`, `projection_lag_seconds`,
/// `projection_position_seq`, label `name`) from [`status`]. Called when
/// metrics are scraped rather than after every batch: one query per scrape
/// instead of two per batch per projector, and never a stale figure from a
/// projector that has gone quiet.
pub async fn export_lag(pool: &PgPool) -> Result<()> {
    for s in status(pool).await? {
        let name = s.name;
        metrics::gauge!("projection_lag_events", "name" => name.clone()).set(s.lag_events as f64);
        metrics::gauge!("projection_lag_seconds", "name" => name.clone()).set(s.lag_seconds);
        metrics::gauge!("projection_position_seq", "name" => name).set(s.position.seq as f64);
    }
    Ok(())
}

/// Waits until every read model's checkpoint is at or past `position`
/// (read-your-writes); [`Error::Stale`] after `timeout`. Only the built-in
/// projectors ([`all`](crate::all)) are waited for: the other followers that
/// keep a checkpoint in the same table (the sagas', the notifier's, the
/// waiting-list process manager's inboxes) write no read model, and may not
/// run in this process at all.
pub async fn wait_for(pool: &PgPool, position: Position, timeout: Duration) -> Result<()> {
    static READ_MODELS: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| crate::projector::all().iter().map(|p| p.name()).collect());
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let slowest: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx, seq FROM projection_checkpoints WHERE name = ANY($1) \
             ORDER BY tx, seq LIMIT 1",
        )
        .bind(&*READ_MODELS)
        .fetch_optional(pool)
        .await?;
        let reached = slowest.map_or(Position::START, |(tx, seq)| pos_of(tx, seq));
        if slowest.is_none() || reached >= position {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Stale {
                wanted: position,
                reached,
            });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}
