//! `/flights`: schedule, fares, reschedule, cancel (admin).

use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::Router;
use chrono::{DateTime, Utc};
use domain::flight::{schedule_flight, CabinSpec, FlightCommand, FlightError, ScheduleFlight};
use domain::seats::SeatInventory;
use domain::values::{AirportCode, Cabin, Currency, FlightNumber, Money, Role};
use domain::Aggregate;
use eventstore::{ExpectedVersion, StreamAppend, StreamId};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::Command;
use crate::commands::lane::Decided;
use crate::commands::{encode_events, Accepted};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path};
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
    state: axum::extract::State<AppState>,
    cmd: Command,
    Json(req): Json<ScheduleFlightRequest>,
) -> ApiResult<Accepted> {
    cmd.caller.require(&[Role::Admin])?;
    let mut errors = Vec::new();
    let flight_number = FlightNumber::parse(&req.flight_number)
        .map_err(|e| errors.push(FieldError::new("flight_number", e.to_string())))
        .ok();
    let origin = AirportCode::parse(&req.origin)
        .map_err(|e| errors.push(FieldError::new("origin", e.to_string())))
        .ok();
    let destination = AirportCode::parse(&req.destination)
        .map_err(|e| errors.push(FieldError::new("destination", e.to_string())))
        .ok();
    let currency = Currency::parse(&req.currency)
        .map_err(|e| errors.push(FieldError::new("currency", e.to_string())))
        .ok();
    let mut cabins = Vec::new();
    if let Some(currency) = currency {
        for (i, c) in req.cabins.iter().enumerate() {
            match Money::new(c.fare, currency) {
                Ok(fare) => cabins.push(CabinSpec {
                    cabin: c.cabin,
                    first_row: c.first_row,
                    last_row: c.last_row,
                    seat_letters: c.seat_letters.clone(),
                    fare,
                }),
                Err(e) => errors.push(FieldError::new(format!("cabins[{i}].fare"), e.to_string())),
            }
        }
    }
    let (Some(flight_number), Some(origin), Some(destination), Some(currency), true) = (
        flight_number,
        origin,
        destination,
        currency,
        errors.is_empty(),
    ) else {
        return Err(ApiError::Validation(errors));
    };
    let flight_id = Uuid::now_v7();
    let (flight_events, seat_events) = schedule_flight(ScheduleFlight {
        flight_id,
        flight_number,
        airline: req.airline,
        origin,
        destination,
        departs_at: req.departs_at,
        arrives_at: req.arrives_at,
        currency,
        cabins,
        now: cmd.ctx.now,
    })
    .map_err(flight_error)?;
    let sealer = state.commands.sealer();
    let appends = vec![
        StreamAppend {
            stream: StreamId::new(domain::flight::Flight::CATEGORY, flight_id),
            expected: ExpectedVersion::NO_STREAM,
            events: encode_events(sealer, &flight_events, &cmd.ctx).await?,
        },
        StreamAppend {
            stream: StreamId::new(SeatInventory::CATEGORY, flight_id),
            expected: ExpectedVersion::NO_STREAM,
            events: encode_events(sealer, &seat_events, &cmd.ctx).await?,
        },
    ];
    state
        .commands
        .append(
            &cmd.ctx,
            appends,
            StatusCode::CREATED,
            json!({ "flight_id": flight_id }),
        )
        .await
}

/// Change a cabin's fare (for bookings made from now on).
#[utoipa::path(put, path = "/api/v1/flights/{id}/fares", tag = "flights",
    params(("id" = Uuid, Path)), request_body = ChangeFareRequest,
    responses((status = 200), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = %id))]
pub async fn change_fare(
    state: axum::extract::State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<ChangeFareRequest>,
) -> ApiResult<Accepted> {
    cmd.caller.require(&[Role::Admin])?;
    let now = cmd.ctx.now;
    flight_command(&state, cmd, id, move |currency| {
        let fare = Money::new(req.fare, currency)
            .map_err(|e| ApiError::validation("fare", e.to_string()))?;
        Ok((
            FlightCommand::ChangeFare {
                cabin: req.cabin,
                fare,
                now,
            },
            json!({ "flight_id": id, "cabin": req.cabin, "fare": fare }),
        ))
    })
    .await
}

/// Move a flight's departure and arrival.
#[utoipa::path(post, path = "/api/v1/flights/{id}/reschedule", tag = "flights",
    params(("id" = Uuid, Path)), request_body = RescheduleRequest,
    responses((status = 200), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = %id))]
pub async fn reschedule(
    state: axum::extract::State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<RescheduleRequest>,
) -> ApiResult<Accepted> {
    cmd.caller.require(&[Role::Admin])?;
    let now = cmd.ctx.now;
    flight_command(&state, cmd, id, move |_| {
        Ok((
            FlightCommand::Reschedule {
                departs_at: req.departs_at,
                arrives_at: req.arrives_at,
                now,
            },
            json!({ "flight_id": id, "departs_at": req.departs_at, "arrives_at": req.arrives_at }),
        ))
    })
    .await
}

/// Cancel a flight. Its bookings are cancelled and refunded by the
/// fulfilment process.
#[utoipa::path(post, path = "/api/v1/flights/{id}/cancel", tag = "flights",
    params(("id" = Uuid, Path)), request_body = CancelFlightRequest,
    responses((status = 202), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = %id))]
pub async fn cancel(
    state: axum::extract::State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<CancelFlightRequest>,
) -> ApiResult<Accepted> {
    cmd.caller.require(&[Role::Admin])?;
    let now = cmd.ctx.now;
    let mut accepted = flight_command(&state, cmd, id, move |_| {
        Ok((
            FlightCommand::Cancel {
                reason: req.reason.clone(),
                now,
            },
            json!({ "flight_id": id, "status": "CANCELLED" }),
        ))
    })
    .await?;
    accepted.status = StatusCode::ACCEPTED;
    Ok(accepted)
}

/// Runs a flight command on the flight's lane.
async fn flight_command<F>(state: &AppState, cmd: Command, id: Uuid, make: F) -> ApiResult<Accepted>
where
    F: Fn(Currency) -> ApiResult<(FlightCommand, serde_json::Value)> + Send + Sync + 'static,
{
    state
        .commands
        .lanes
        .submit(
            id,
            cmd.ctx,
            Box::new(move |flight, _seats| {
                let currency = flight
                    .currency()
                    .ok_or_else(|| ApiError::not_found("flight"))?;
                let (command, body) = make(currency)?;
                let events = flight.decide(command).map_err(flight_error)?;
                Ok(Decided {
                    flight: events,
                    body,
                    ..Decided::default()
                })
            }),
        )
        .await
}

pub(crate) fn flight_error(e: FlightError) -> ApiError {
    match e.field() {
        Some(field) => ApiError::validation(field, e.to_string()),
        None => match e {
            FlightError::NotScheduled => ApiError::not_found("flight"),
            FlightError::AlreadyScheduled => ApiError::Conflict {
                code: "CONFLICT",
                detail: e.to_string(),
            },
            other => ApiError::invalid_state(other.to_string()),
        },
    }
}
