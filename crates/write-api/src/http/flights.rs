//! `/flights`: schedule, fares, reschedule, cancel (admin).

use application::flights::{NewCabin, NewFlight};
use axum::extract::State;
use axum::routing::{post, put};
use axum::Router;
use chrono::{DateTime, Utc};
use domain::values::Cabin;
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

use super::Command;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::reply::Reply;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/flights", post(schedule))
        .route("/flights/{id}/fares", put(change_fare))
        .route("/flights/{id}/reschedule", post(reschedule))
        .route("/flights/{id}/cancel", post(cancel))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ScheduleFlightRequest {
    #[schema(example = "BA117")]
    pub flight_number: String,
    #[schema(example = "British Airways")]
    pub airline: String,
    #[schema(example = "LHR")]
    pub origin: String,
    #[schema(example = "JFK")]
    pub destination: String,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
    #[schema(example = "USD")]
    pub currency: String,
    pub cabins: Vec<CabinRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CabinRequest {
    #[schema(value_type = String, example = "economy")]
    pub cabin: Cabin,
    pub first_row: u8,
    pub last_row: u8,
    #[schema(example = "ABCDEF")]
    pub seat_letters: String,
    /// A decimal string in the flight's currency.
    #[schema(value_type = String, example = "420.00")]
    pub fare: Decimal,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangeFareRequest {
    #[schema(value_type = String, example = "economy")]
    pub cabin: Cabin,
    #[schema(value_type = String, example = "450.00")]
    pub fare: Decimal,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RescheduleRequest {
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CancelFlightRequest {
    pub reason: String,
}

/// Schedule a flight with its cabins, seat map and fares.
#[utoipa::path(post, path = "/api/v1/flights", tag = "flights",
    request_body = ScheduleFlightRequest,
    responses((status = 201, description = "`{flight_id, position}`"),
              (status = 401), (status = 403), (status = 422, description = "invalid fields")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_number = %req.flight_number))]
pub async fn schedule(
    State(state): State<AppState>,
    cmd: Command,
    Json(req): Json<ScheduleFlightRequest>,
) -> ApiResult<Reply> {
    let flight = NewFlight {
        flight_number: req.flight_number,
        airline: req.airline,
        origin: req.origin,
        destination: req.destination,
        departs_at: req.departs_at,
        arrives_at: req.arrives_at,
        currency: req.currency,
        cabins: req
            .cabins
            .into_iter()
            .map(|c| NewCabin {
                cabin: c.cabin,
                first_row: c.first_row,
                last_row: c.last_row,
                seat_letters: c.seat_letters,
                fare: c.fare,
            })
            .collect(),
    };
    let outcome = state.schedule_flight(&cmd.caller, cmd.ctx, flight).await?;
    Ok(Reply::created(outcome))
}

/// Change a cabin's fare (for bookings made from now on).
#[utoipa::path(put, path = "/api/v1/flights/{id}/fares", tag = "flights",
    params(("id" = Uuid, Path)), request_body = ChangeFareRequest,
    responses((status = 200), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = %id))]
pub async fn change_fare(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<ChangeFareRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .change_fare(&cmd.caller, cmd.ctx, id, req.cabin, req.fare)
        .await?;
    Ok(Reply::ok(outcome))
}

/// Move a flight's departure and arrival.
#[utoipa::path(post, path = "/api/v1/flights/{id}/reschedule", tag = "flights",
    params(("id" = Uuid, Path)), request_body = RescheduleRequest,
    responses((status = 200), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = %id))]
pub async fn reschedule(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<RescheduleRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .reschedule_flight(&cmd.caller, cmd.ctx, id, req.departs_at, req.arrives_at)
        .await?;
    Ok(Reply::ok(outcome))
}

/// Cancel a flight. Its bookings are cancelled and refunded by the
/// fulfilment process.
#[utoipa::path(post, path = "/api/v1/flights/{id}/cancel", tag = "flights",
    params(("id" = Uuid, Path)), request_body = CancelFlightRequest,
    responses((status = 202), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = %id))]
pub async fn cancel(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<CancelFlightRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .cancel_flight(&cmd.caller, cmd.ctx, id, req.reason)
        .await?;
    Ok(Reply::accepted(outcome))
}
