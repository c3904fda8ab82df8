//! The workers' writes to the `sagas` table, committed together.
//!
//! Each run of a saga writes its row twice or more (progress saved before a
//! step, the lease given back after), each a one-row `UPDATE` that paid a
//! commit of its own. The ledger takes the writes that wait while one is in
//! flight and sends them as one statement (`UPDATE ... FROM UNNEST`, progress
//! and releases in two CTEs), so they share a commit. A saga has at most
//! one write waiting (its run waits for the answer), so a batch never holds
//! two writes of one row.
//!
//! Each caller still learns its own outcome (whether it still held the
//! lease). If the shared statement fails, each write is tried again on its
//! own, so one bad write fails alone.

use chrono::{DateTime, Utc};
use domain::fulfilment::{Progress, Step};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::{self, Release};

/// Writes sent in one statement at most.
const MAX_BATCH: usize = 128;

pub(crate) enum Write {
    Progress {
        saga_id: Uuid,
        step: Step,
        progress: Progress,
    },
    Release {
        saga_id: Uuid,
        progress: Progress,
        release: Release,
    },
}

impl Write {
    fn saga_id(&self) -> Uuid {
        match self {
            Write::Progress { saga_id, .. } | Write::Release { saga_id, .. } => *saga_id,
        }
    }
}

struct Pending {
    write: Write,
    reply: oneshot::Sender<Result<bool, sqlx::Error>>,
}

/// The writes of one worker (`worker` is the lease holder they check).
#[derive(Clone)]
pub(crate) struct Ledger {
    pool: PgPool,
    worker: Uuid,
    /// `None` outside a tokio runtime: each write then goes alone.
    tx: Option<mpsc::Sender<Pending>>,
}

impl Ledger {
    pub(crate) fn new(pool: PgPool, worker: Uuid) -> Self {
        let tx = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
            rt.spawn(run(pool.clone(), worker, rx));
            tx
        });
        Self { pool, worker, tx }
    }

    /// Applies `write`; `false` when the worker no longer held the lease.
    pub(crate) async fn write(&self, write: Write) -> Result<bool, sqlx::Error> {
        let Some(tx) = &self.tx else {
            return alone(&self.pool, self.worker, &write).await;
        };
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(p)) = tx.send(Pending { write, reply }).await {
            return alone(&self.pool, self.worker, &p.write).await;
        }
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn alone(pool: &PgPool, worker: Uuid, write: &Write) -> Result<bool, sqlx::Error> {
    match write {
        Write::Progress {
            saga_id,
            step,
            progress,
        } => store::save_progress(pool, *saga_id, worker, *step, progress).await,
        Write::Release {
            saga_id,
            progress,
            release,
        } => store::release(pool, *saga_id, worker, progress, release).await,
    }
}

async fn run(pool: PgPool, worker: Uuid, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if batch.len() == 1 {
            let p = batch.remove(0);
            let _ = p.reply.send(alone(&pool, worker, &p.write).await);
            continue;
        }
        let writes: Vec<&Write> = batch.iter().map(|p| &p.write).collect();
        match together(&pool, worker, &writes).await {
            Ok(held) => {
                for p in batch {
                    let id = p.write.saga_id();
                    let _ = p.reply.send(Ok(held.contains(&id)));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = batch.len(),
                    "the sagas' writes failed together; trying each alone");
                for p in batch {
                    let _ = p.reply.send(alone(&pool, worker, &p.write).await);
                }
            }
        }
    }
}

/// Every write in one statement; the sagas whose row this worker still
/// held (and so was written).
async fn together(
    pool: &PgPool,
    worker: Uuid,
    writes: &[&Write],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    let mut p_ids = Vec::new();
    let mut p_steps = Vec::new();
    let mut p_comp = Vec::new();
    let mut p_charge = Vec::new();
    let mut p_supp = Vec::new();
    let mut r_ids = Vec::new();
    let mut r_status = Vec::new();
    let mut r_steps = Vec::new();
    let mut r_next: Vec<DateTime<Utc>> = Vec::new();
    let mut r_attempts = Vec::new();
    let mut r_errors: Vec<Option<String>> = Vec::new();
    let mut r_comp = Vec::new();
    let mut r_charge = Vec::new();
    let mut r_supp = Vec::new();
    for w in writes {
        match w {
            Write::Progress {
                saga_id,
                step,
                progress,
            } => {
                p_ids.push(*saga_id);
                p_steps.push(step.as_str());
                p_comp.push(serde_json::to_value(&progress.compensations).unwrap_or_default());
                p_charge.push(progress.charge_started);
                p_supp
                    .push(serde_json::to_value(&progress.supplements_charged).unwrap_or_default());
            }
            Write::Release {
                saga_id,
                progress,
                release,
            } => {
                r_ids.push(*saga_id);
                r_status.push(release.status.as_str());
                r_steps.push(release.step.as_str());
                r_next.push(release.next_run_at);
                r_attempts.push(release.attempts);
                r_errors.push(release.last_error.clone());
                r_comp.push(serde_json::to_value(&progress.compensations).unwrap_or_default());
                r_charge.push(progress.charge_started);
                r_supp
                    .push(serde_json::to_value(&progress.supplements_charged).unwrap_or_default());
            }
        }
    }
    // The same statements as `store::save_progress` and `store::release`,
    // over arrays.
    let held: Vec<Uuid> = sqlx::query_scalar(
        "WITH progress AS ( \
             UPDATE sagas s SET step = t.step, compensations = t.comp, \
                 charge_started = t.charge, supplements_charged = t.supp, updated_at = now() \
             FROM UNNEST($2::uuid[], $3::text[], $4::jsonb[], $5::bool[], $14::jsonb[]) \
                  AS t(id, step, comp, charge, supp) \
             WHERE s.saga_id = t.id AND s.locked_by = $1 \
             RETURNING s.saga_id), \
         released AS ( \
             UPDATE sagas s SET \
                 status = CASE WHEN s.wakes <> s.claimed_wakes \
                                    AND t.status IN ('COMPLETED', 'COMPENSATED') \
                               THEN 'RUNNING' ELSE t.status END, \
                 step = t.step, \
                 next_run_at = CASE WHEN s.wakes <> s.claimed_wakes THEN now() ELSE t.next END, \
                 attempts = t.attempts, last_error = t.error, compensations = t.comp, \
                 charge_started = t.charge, supplements_charged = t.supp, locked_by = NULL, \
                 locked_until = NULL, updated_at = now() \
             FROM UNNEST($6::uuid[], $7::text[], $8::text[], $9::timestamptz[], $10::int[], \
                         $11::text[], $12::jsonb[], $13::bool[], $15::jsonb[]) \
                  AS t(id, status, step, next, attempts, error, comp, charge, supp) \
             WHERE s.saga_id = t.id AND s.locked_by = $1 \
             RETURNING s.saga_id) \
         SELECT saga_id FROM progress UNION ALL SELECT saga_id FROM released",
    )
    .bind(worker)
    .bind(&p_ids)
    .bind(&p_steps)
    .bind(&p_comp)
    .bind(&p_charge)
    .bind(&r_ids)
    .bind(&r_status)
    .bind(&r_steps)
    .bind(&r_next)
    .bind(&r_attempts)
    .bind(&r_errors)
    .bind(&r_comp)
    .bind(&r_charge)
    .bind(&p_supp)
    .bind(&r_supp)
    .fetch_all(pool)
    .await?;
    Ok(held.into_iter().collect())
}
