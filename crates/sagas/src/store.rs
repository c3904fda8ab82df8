//! The `sagas` table: one row per process instance, leased by workers.
//!
//! A worker claims due rows with a lease (`locked_until`) in a short
//! transaction and works on them outside any transaction: an open
//! transaction during a provider call would hold back every reader of the
//! log (see the event store's cursor). A worker that dies simply lets its
//! lease run out; the next one carries on from the log's state.

use application::sagas::Retry;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use domain::fulfilment::{Progress, Registered, SagaKind, SagaStatus, Step};

/// Namespaces of the ids derived for sagas and their steps.
const FULFILMENT: Uuid = Uuid::from_u128(0x0b5c_7e4a_61a4_4a41_9c3e_2f1a_7d10_0001);
const FLIGHT_CANCELLATION: Uuid = Uuid::from_u128(0x0b5c_7e4a_61a4_4a41_9c3e_2f1a_7d10_0002);

/// The fulfilment saga of a booking.
pub fn fulfilment_id(booking_id: Uuid) -> Uuid {
    Uuid::new_v5(&FULFILMENT, booking_id.as_bytes())
}

/// The saga that cancels a flight's bookings.
pub fn flight_cancellation_id(flight_id: Uuid) -> Uuid {
    Uuid::new_v5(&FLIGHT_CANCELLATION, flight_id.as_bytes())
}

#[derive(Debug, Clone)]
pub struct SagaRow {
    pub saga_id: Uuid,
    pub kind: SagaKind,
    pub booking_id: Option<Uuid>,
    pub flight_id: Uuid,
    pub status: SagaStatus,
    pub step: Step,
    pub progress: Progress,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub next_run_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "saga_id, kind, booking_id, flight_id, status, step, compensations, \
                       charge_started, supplements_charged, payment_deadline, hold_expires_at, next_run_at, attempts, \
                       last_error";

/// A stored name read back as its enum; anything else is a decode error.
fn named<T>(r: &sqlx::postgres::PgRow, column: &str) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr<Err = domain::fulfilment::UnknownName>,
{
    let name: String = r.try_get(column)?;
    name.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn row(r: &sqlx::postgres::PgRow) -> Result<SagaRow, sqlx::Error> {
    let compensations: serde_json::Value = r.try_get("compensations")?;
    let compensations: Vec<Registered> =
        serde_json::from_value(compensations).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let charged: serde_json::Value = r.try_get("supplements_charged")?;
    let supplements_charged: Vec<Uuid> =
        serde_json::from_value(charged).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(SagaRow {
        saga_id: r.try_get("saga_id")?,
        kind: named(r, "kind")?,
        booking_id: r.try_get("booking_id")?,
        flight_id: r.try_get("flight_id")?,
        status: named(r, "status")?,
        step: named(r, "step")?,
        progress: Progress {
            charge_started: r.try_get("charge_started")?,
            compensations,
            payment_deadline: r.try_get("payment_deadline")?,
            supplements_charged,
        },
        hold_expires_at: r.try_get("hold_expires_at")?,
        next_run_at: r.try_get("next_run_at")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
    })
}

/// Leases up to `limit` due sagas to `worker` for `lease`.
pub async fn claim(
    pool: &PgPool,
    worker: Uuid,
    limit: i64,
    lease: std::time::Duration,
) -> Result<Vec<SagaRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "UPDATE sagas s SET locked_by = $1, \
             locked_until = now() + make_interval(secs => $3), \
             claimed_wakes = s.wakes \
         FROM (SELECT saga_id FROM sagas \
               WHERE status IN ('RUNNING', 'COMPENSATING') AND next_run_at <= now() \
                 AND (locked_until IS NULL OR locked_until < now()) \
               ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED) due \
         WHERE s.saga_id = due.saga_id \
         RETURNING {}",
        COLUMNS
            .split(", ")
            .map(|c| format!("s.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(worker)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    rows.iter().map(row).collect()
}

/// When the next saga falls due (for a worker deciding how long to sleep).
pub async fn next_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(next_run_at) FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')",
    )
    .fetch_one(pool)
    .await
}

/// Records progress before a step runs (a compensation registered, a
/// charge about to start). Fails if the lease was lost.
pub async fn save_progress(
    pool: &PgPool,
    saga_id: Uuid,
    worker: Uuid,
    step: Step,
    progress: &Progress,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sagas SET step = $3, compensations = $4, charge_started = $5, \
             supplements_charged = $6, updated_at = now() \
         WHERE saga_id = $1 AND locked_by = $2",
    )
    .bind(saga_id)
    .bind(worker)
    .bind(step.as_str())
    .bind(serde_json::to_value(&progress.compensations).unwrap_or_default())
    .bind(progress.charge_started)
    .bind(serde_json::to_value(&progress.supplements_charged).unwrap_or_default())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How a worker leaves a saga.
#[derive(Debug, Clone)]
pub struct Release {
    pub status: SagaStatus,
    pub step: Step,
    pub next_run_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// Gives the lease back (`false` if it was lost). A wake-up that came in
/// meanwhile makes the saga due at once.
pub async fn release(
    pool: &PgPool,
    saga_id: Uuid,
    worker: Uuid,
    progress: &Progress,
    r: &Release,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sagas SET \
             status = CASE WHEN wakes <> claimed_wakes AND $3 IN ('COMPLETED', 'COMPENSATED') \
                           THEN 'RUNNING' ELSE $3 END, \
             step = $4, \
             next_run_at = CASE WHEN wakes <> claimed_wakes THEN now() ELSE $5 END, \
             attempts = $6, last_error = $7, compensations = $8, charge_started = $9, \
             supplements_charged = $10, locked_by = NULL, locked_until = NULL, updated_at = now() \
         WHERE saga_id = $1 AND locked_by = $2",
    )
    .bind(saga_id)
    .bind(worker)
    .bind(r.status.as_str())
    .bind(r.step.as_str())
    .bind(r.next_run_at)
    .bind(r.attempts)
    .bind(&r.last_error)
    .bind(serde_json::to_value(&progress.compensations).unwrap_or_default())
    .bind(progress.charge_started)
    .bind(serde_json::to_value(&progress.supplements_charged).unwrap_or_default())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An admin's retry of a parked saga: due now with a fresh retry budget.
pub async fn retry(pool: &PgPool, saga_id: Uuid) -> Result<Retry, sqlx::Error> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM sagas WHERE saga_id = $1")
        .bind(saga_id)
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Ok(Retry::NotFound);
    }
    let done = sqlx::query(
        "UPDATE sagas SET status = 'RUNNING', attempts = 0, next_run_at = now(), \
             updated_at = now() \
         WHERE saga_id = $1 AND status = 'PARKED'",
    )
    .bind(saga_id)
    .execute(pool)
    .await?;
    Ok(if done.rows_affected() == 1 {
        Retry::Restarted
    } else {
        Retry::NotParked
    })
}

/// One saga by id.
pub async fn get(pool: &PgPool, saga_id: Uuid) -> Result<Option<SagaRow>, sqlx::Error> {
    let r = sqlx::query(&format!("SELECT {COLUMNS} FROM sagas WHERE saga_id = $1"))
        .bind(saga_id)
        .fetch_optional(pool)
        .await?;
    r.as_ref().map(row).transpose()
}

/// The bookings ever made on a flight (their fulfilment sagas), whether
/// it is their first flight or a further flight of an itinerary.
pub async fn bookings_of_flight(pool: &PgPool, flight_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT booking_id FROM sagas WHERE kind = 'fulfilment' \
             AND (flight_id = $1 OR connections @> ARRAY[$1]::uuid[]) \
         ORDER BY created_at, booking_id",
    )
    .bind(flight_id)
    .fetch_all(pool)
    .await
}
