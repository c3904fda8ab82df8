//! What admins do to webhooks: register one, list its deliveries, send one
//! again. The REST layer reaches it through the application's
//! [`WebhookAdmin`] port.

use application::webhooks::{Delivery, Redelivery, Registered, WebhookAdmin};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{payload, CHANNEL};
use crate::webhook::new_secret;

/// The webhooks of one database, as admins act on them.
#[derive(Debug, Clone)]
pub struct Admin {
    pool: PgPool,
}

impl Admin {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

type DeliveryRow = (
    Uuid,
    String,
    String,
    i32,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
    Value,
);

#[async_trait]
impl WebhookAdmin for Admin {
    async fn register(
        &self,
        url: &str,
        events: &[String],
        created_by: Uuid,
    ) -> Result<Registered, sqlx::Error> {
        let webhook_id = Uuid::now_v7();
        let secret = new_secret();
        sqlx::query(
            "INSERT INTO webhooks (webhook_id, url, events, secret, created_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(webhook_id)
        .bind(url)
        .bind(events)
        .bind(&secret)
        .bind(created_by)
        .execute(&self.pool)
        .await?;
        Ok(Registered { webhook_id, secret })
    }

    async fn deliveries(&self, webhook_id: Uuid) -> Result<Option<Vec<Delivery>>, sqlx::Error> {
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT webhook_id FROM webhooks WHERE webhook_id = $1")
                .bind(webhook_id)
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT delivery_id, event_type, status, attempts, last_error, next_attempt_at, \
                    delivered_at, created_at, occurred_at, data \
             FROM notification_deliveries WHERE webhook_id = $1 \
             ORDER BY created_at DESC, delivery_id DESC LIMIT 1000",
        )
        .bind(webhook_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(
            rows.into_iter()
                .map(
                    |(
                        id,
                        event_type,
                        status,
                        attempts,
                        last_error,
                        next,
                        delivered,
                        created,
                        occurred,
                        data,
                    )| {
                        Delivery {
                            payload: payload(id, &event_type, occurred, &data),
                            delivery_id: id,
                            next_attempt_at: (status == "PENDING").then_some(next),
                            event_type,
                            status,
                            attempts,
                            last_error,
                            delivered_at: delivered,
                            created_at: created,
                        }
                    },
                )
                .collect(),
        ))
    }

    async fn retry(&self, webhook_id: Uuid, delivery_id: Uuid) -> Result<Redelivery, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE notification_deliveries SET status = 'PENDING', attempts = 0, \
                 next_attempt_at = now(), leased_until = NULL, last_error = NULL \
             WHERE webhook_id = $1 AND delivery_id = $2",
        )
        .bind(webhook_id)
        .bind(delivery_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(Redelivery::NotFound);
        }
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(Redelivery::Queued)
    }
}
