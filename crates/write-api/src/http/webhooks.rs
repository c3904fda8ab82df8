//! `/webhooks`: admins register endpoints for notifications, list what was
//! delivered to them and send a delivery again.

use application::webhooks::{Delivery, Registered};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use uuid::Uuid;

use super::Command;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(register))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route("/webhooks/{id}/deliveries/{delivery_id}/retry", post(retry))
}

/// A webhook: where to POST, and which notifications.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterWebhookRequest {
    /// An absolute `http` or `https` URL.
    #[schema(example = "https://hooks.example.com/booking", max_length = 2048)]
    pub url: String,
    /// Notification types: `booking.ticketed`, `booking.payment_failed`,
    /// `booking.cancelled`, `booking.expired`, `booking.reminder`,
    /// `flight.rescheduled`, `flight.cancelled`, `waitlist.offered`.
    #[schema(example = json!(["booking.ticketed", "flight.cancelled"]), min_items = 1)]
    pub events: Vec<String>,
}

/// The webhook's id, and the secret its deliveries are signed with (shown
/// only here).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RegisteredWebhook {
    pub webhook_id: Uuid,
    /// HMAC-SHA256 key of `Booking-Signature: t=<unix>,v1=<hex of HMAC("<t>.<body>")>`.
    pub secret: String,
}

impl From<Registered> for RegisteredWebhook {
    fn from(r: Registered) -> Self {
        Self {
            webhook_id: r.webhook_id,
            secret: r.secret,
        }
    }
}

/// Register a webhook (admin).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = RegisterWebhookRequest,
    responses((status = 201, body = RegisteredWebhook),
              (status = 401), (status = 403), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    cmd: Command,
    Json(req): Json<RegisterWebhookRequest>,
) -> ApiResult<(StatusCode, axum::Json<RegisteredWebhook>)> {
    let registered = state
        .register_webhook(&cmd.caller, &*state.webhooks, &req.url, &req.events)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(registered.into())))
}

/// One delivery of a webhook.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub delivery_id: Uuid,
    pub event_type: String,
    /// `PENDING`, `DELIVERED`, or `DEAD` once the retries ran out.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The JSON body the receiver gets.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// A webhook's deliveries.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    pub webhook_id: Uuid,
    /// Newest first (at most 1,000).
    pub deliveries: Vec<DeliveryView>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            delivery_id: d.delivery_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
            payload: d.payload,
        }
    }
}

/// List a webhook's deliveries (admin).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Deliveries), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(webhook_id = %id))]
pub async fn deliveries(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Deliveries>> {
    let list = state
        .webhook_deliveries(&cmd.caller, &*state.webhooks, id)
        .await?;
    Ok(axum::Json(Deliveries {
        webhook_id: id,
        deliveries: list.into_iter().map(Into::into).collect(),
    }))
}

/// Send a delivery again (admin): a dead one gets a fresh retry budget.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 202, description = "queued; sent under the same `Booking-Delivery` id"),
              (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(webhook_id = %id, delivery_id = %delivery_id))]
pub async fn retry(
    State(state): State<AppState>,
    cmd: Command,
    Path((id, delivery_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    state
        .retry_delivery(&cmd.caller, &*state.webhooks, id, delivery_id)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
