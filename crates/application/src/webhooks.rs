//! The port through which admins manage webhooks: the notifications crate
//! implements it, the binary wires it, and the REST layer calls it through
//! [`Services`] without depending on the notifier.
//!
//! Webhook registrations are configuration, not domain facts: they live in
//! the notifier's tables, like credentials live in auth's.

use async_trait::async_trait;
use auth::Caller;
use chrono::{DateTime, Utc};
use domain::values::Role;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::FieldError;
use crate::{CommandError, CommandResult, Services};

/// The notification types a webhook may ask for (the contract's list).
pub const EVENT_TYPES: &[&str] = &[
    "booking.ticketed",
    "booking.payment_failed",
    "booking.cancelled",
    "booking.expired",
    "booking.reminder",
    "flight.rescheduled",
    "flight.cancelled",
    "waitlist.offered",
];

/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A webhook as registered: the secret is shown once, at registration.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub webhook_id: Uuid,
    pub secret: String,
}

/// One delivery to a webhook, as an admin lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub delivery_id: Uuid,
    pub event_type: String,
    /// `PENDING`, `DELIVERED` or `DEAD` (gave up after the retry limit).
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The body the receiver gets (`{delivery_id, event_type, occurred_at,
    /// data}`).
    pub payload: Value,
}

/// What became of a retry request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// Sent again as soon as a worker is free.
    Queued,
    NotFound,
}

/// Admin operations on webhooks.
#[async_trait]
pub trait WebhookAdmin: Send + Sync {
    async fn register(
        &self,
        url: &str,
        events: &[String],
        created_by: Uuid,
    ) -> Result<Registered, sqlx::Error>;
    /// `None` when there is no such webhook.
    async fn deliveries(&self, webhook_id: Uuid) -> Result<Option<Vec<Delivery>>, sqlx::Error>;
    /// Sends a delivery again, whatever its status (a delivered one is sent
    /// once more under the same id, for a receiver that lost it).
    async fn retry(&self, webhook_id: Uuid, delivery_id: Uuid) -> Result<Redelivery, sqlx::Error>;
}

impl Services {
    /// Registers a webhook (admin): an `http` or `https` URL and the
    /// notification types it wants.
    pub async fn register_webhook(
        &self,
        caller: &Caller,
        webhooks: &dyn WebhookAdmin,
        url: &str,
        events: &[String],
    ) -> CommandResult<Registered> {
        caller.require(&[Role::Admin])?;
        let mut errors = vec![];
        if !valid_url(url) {
            errors.push(FieldError::new(
                "url",
                format!(
                    "must be an absolute http or https URL of at most {MAX_URL_LEN} characters"
                ),
            ));
        }
        if events.is_empty() {
            errors.push(FieldError::new("events", "name at least one event type"));
        }
        if let Some(unknown) = events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
            errors.push(FieldError::new(
                "events",
                format!(
                    "unknown event type {unknown:?}; known: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(CommandError::Invalid(errors));
        }
        let mut events = events.to_vec();
        events.sort();
        events.dedup();
        let registered = webhooks.register(url, &events, caller.user_id).await?;
        tracing::info!(webhook_id = %registered.webhook_id, by = %caller.user_id, "webhook registered");
        Ok(registered)
    }

    /// A webhook's deliveries, newest first (admin).
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        webhooks: &dyn WebhookAdmin,
        webhook_id: Uuid,
    ) -> CommandResult<Vec<Delivery>> {
        caller.require(&[Role::Admin])?;
        webhooks
            .deliveries(webhook_id)
            .await?
            .ok_or_else(|| CommandError::not_found("webhook"))
    }

    /// Queues a delivery to be sent again (admin).
    pub async fn retry_delivery(
        &self,
        caller: &Caller,
        webhooks: &dyn WebhookAdmin,
        webhook_id: Uuid,
        delivery_id: Uuid,
    ) -> CommandResult<()> {
        caller.require(&[Role::Admin])?;
        match webhooks.retry(webhook_id, delivery_id).await? {
            Redelivery::Queued => Ok(()),
            Redelivery::NotFound => Err(CommandError::not_found("delivery")),
        }
    }
}

/// An absolute `http(s)://host...` URL without spaces or control
/// characters. The notifier's HTTP client parses it again when sending.
fn valid_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    url.len() <= MAX_URL_LEN
        && !host.is_empty()
        && !host.starts_with(':')
        && url.chars().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::valid_url;

    #[test]
    fn only_absolute_http_urls_are_webhooks() {
        for ok in [
            "http://127.0.0.1:9000/hooks",
            "https://example.com",
            "https://a.b/c?d=e",
        ] {
            assert!(valid_url(ok), "{ok}");
        }
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http:///x",
            "https://:80/",
            "http://a b",
            "example.com",
        ] {
            assert!(!valid_url(bad), "{bad}");
        }
    }
}
