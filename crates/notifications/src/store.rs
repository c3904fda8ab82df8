//! The `notification_deliveries` rows: queued by the inbox, leased, sent
//! and marked by the workers.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The channel workers listen on for rows that fell due.
pub const CHANNEL: &str = "booking_notifications";

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Webhook(Uuid),
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery_id: Uuid,
    pub event_type: &'static str,
    pub channel: Channel,
    pub user_id: Option<Uuid>,
    pub booking_id: Option<Uuid>,
    pub flight_id: Option<Uuid>,
    pub position: String,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
    pub due: DateTime<Utc>,
}

/// A leased row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub delivery_id: Uuid,
    pub event_type: String,
    pub channel: String,
    pub webhook_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub booking_id: Option<Uuid>,
    pub flight_id: Option<Uuid>,
    pub position: String,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
    pub attempts: i32,
}

impl Due {
    /// The body a webhook receives (and an admin sees).
    pub fn payload(&self) -> Value {
        payload(
            self.delivery_id,
            &self.event_type,
            self.occurred_at,
            &self.data,
        )
    }
}

pub fn payload(id: Uuid, event_type: &str, occurred_at: DateTime<Utc>, data: &Value) -> Value {
    json!({
        "delivery_id": id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "data": data,
    })
}

/// Queues `rows`; a row queued before (a replayed batch) stays as it was.
pub async fn queue(conn: &mut PgConnection, rows: &[NewDelivery]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewDelivery) -> Option<Uuid>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO notification_deliveries (delivery_id, event_type, channel, webhook_id, \
             user_id, booking_id, flight_id, position, occurred_at, data, next_attempt_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], \
             $6::uuid[], $7::uuid[], $8::text[], $9::timestamptz[], $10::jsonb[], \
             $11::timestamptz[]) \
         ON CONFLICT (delivery_id) DO NOTHING",
    )
    .bind(rows.iter().map(|r| r.delivery_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event_type).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| match r.channel {
                Channel::Email => "email",
                Channel::Webhook(_) => "webhook",
            })
            .collect::<Vec<_>>(),
    )
    .bind(column(|r| match r.channel {
        Channel::Webhook(id) => Some(id),
        Channel::Email => None,
    }))
    .bind(column(|r| r.user_id))
    .bind(column(|r| r.booking_id))
    .bind(column(|r| r.flight_id))
    .bind(rows.iter().map(|r| r.position.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.data.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.due).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Leases up to `limit` due rows for `lease`.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    lease: std::time::Duration,
) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "UPDATE notification_deliveries d \
         SET leased_until = now() + make_interval(secs => $2) \
         FROM (SELECT delivery_id FROM notification_deliveries \
               WHERE status = 'PENDING' AND next_attempt_at <= now() \
                 AND (leased_until IS NULL OR leased_until < now()) \
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) c \
         WHERE d.delivery_id = c.delivery_id \
         RETURNING d.delivery_id, d.event_type, d.channel, d.webhook_id, d.user_id, \
                   d.booking_id, d.flight_id, d.position, d.occurred_at, d.data, d.attempts",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// When the next row falls due, if any is waiting.
pub async fn next_due(pool: &PgPool) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "SELECT min(next_attempt_at) FROM notification_deliveries WHERE status = 'PENDING'",
    )
    .fetch_one(pool)
    .await
}

/// How a leased row ends this round.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered,
    /// Nothing to send any more (why).
    Skipped(String),
    /// Not yet: try again at `at`, without counting an attempt (the read
    /// models have not reached the event).
    Later(DateTime<Utc>),
    /// The attempt failed: try again at `at`, or give up (`dead`).
    Failed {
        error: String,
        at: DateTime<Utc>,
        dead: bool,
    },
}

/// Lets go of a leased row.
pub async fn release(pool: &PgPool, id: Uuid, outcome: &Outcome) -> sqlx::Result<()> {
    let q = match outcome {
        Outcome::Delivered => sqlx::query(
            "UPDATE notification_deliveries SET status = 'DELIVERED', delivered_at = now(), \
                 attempts = attempts + 1, leased_until = NULL, last_error = NULL \
             WHERE delivery_id = $1",
        )
        .bind(id),
        Outcome::Skipped(why) => sqlx::query(
            "UPDATE notification_deliveries SET status = 'SKIPPED', leased_until = NULL, \
                 last_error = $2 WHERE delivery_id = $1",
        )
        .bind(id)
        .bind(why),
        Outcome::Later(at) => sqlx::query(
            "UPDATE notification_deliveries SET next_attempt_at = $2, leased_until = NULL \
             WHERE delivery_id = $1",
        )
        .bind(id)
        .bind(at),
        Outcome::Failed { error, at, dead } => sqlx::query(
            "UPDATE notification_deliveries SET attempts = attempts + 1, last_error = $2, \
                 next_attempt_at = $3, leased_until = NULL, \
                 status = CASE WHEN $4 THEN 'DEAD' ELSE status END \
             WHERE delivery_id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(at)
        .bind(dead),
    };
    q.execute(pool).await?;
    Ok(())
}
