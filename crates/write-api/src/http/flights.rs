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
    /// A 2-character airline designator and 1 to 4 digits.
    #[schema(example = "BA117", min_length = 3, max_length = 6)]
    pub flight_number: String,
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(example = "British Airways", min_length = 1, max_length = 100)]
    pub airline: String,
    /// A 3-letter airport code.
    #[schema(example = "LHR", min_length = 3, max_length = 3)]
    pub origin: String,
    /// A 3-letter airport code, not the origin.
    #[schema(example = "JFK", min_length = 3, max_length = 3)]
    pub destination: String,
    /// In the future.
    pub departs_at: DateTime<Utc>,
    /// After the departure.
    pub arrives_at: DateTime<Utc>,
    /// An upper-case ISO 4217 code.
    #[schema(
        example = "USD",
        min_length = 3,
        max_length = 3,
        pattern = "^[A-Z]{3}$"
    )]
    pub currency: String,
    /// One or more cabins, each once, their rows not overlapping.
    #[schema(min_items = 1)]
    pub cabins: Vec<CabinRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CabinRequest {
    #[schema(value_type = String, example = "economy")]
    pub cabin: Cabin,
    #[schema(minimum = 1, maximum = 99)]
    pub first_row: u8,
    /// At least `first_row`.
    #[schema(minimum = 1, maximum = 99)]
    pub last_row: u8,
    /// Distinct letters A to K.
    #[schema(example = "ABCDEF", min_length = 1, max_length = 11)]
    pub seat_letters: String,
    /// A decimal string in the flight's currency, more than zero and at
    /// most 1000000, with at most 2 decimals.
    #[schema(value_type = String, example = "420.00")]
    pub fare: Decimal,
    /// What a child pays, in percent of `fare` (default 75).
    #[schema(minimum = 0, maximum = 100)]
    pub child_fare_percent: Option<u8>,
    /// What an infant on an adult's lap pays, in percent of `fare`
    /// (default 10).
    #[schema(minimum = 0, maximum = 100)]
    pub infant_fare_percent: Option<u8>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangeFareRequest {
    #[schema(value_type = String, example = "economy")]
    pub cabin: Cabin,
    /// A decimal string, more than zero and at most 1000000, with at most
    /// 2 decimals.
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
    /// 1 to 500 characters, no control or invisible formatting characters.
    #[schema(min_length = 1, max_length = 500)]
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
                child_percent: c.child_fare_percent,
                infant_percent: c.infant_fare_percent,
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
