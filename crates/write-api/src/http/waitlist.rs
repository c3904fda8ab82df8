//! The waiting list of a sold-out cabin: `POST /flights/{id}/waitlist`
//! joins it, `DELETE /waitlist/{entry_id}` leaves it. Offers arrive as
//! `HELD` bookings, paid like any other.

use application::waitlist::JoinWaitlistInput;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::Router;
use domain::values::Cabin;
use serde::Deserialize;
use uuid::Uuid;

use super::bookings::PassengerInput;
use super::Command;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::reply::Reply;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/flights/{id}/waitlist", post(join))
        .route("/waitlist/{entry_id}", delete(leave))
}

/// A party for the line of one cabin.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct JoinWaitlistRequest {
    #[schema(value_type = String, example = "economy")]
    pub cabin: Cabin,
    /// Agents queue a customer; customers queue themselves.
    pub customer_id: Option<Uuid>,
    /// As a booking's, without `seat` (an offer is any seat of `cabin`);
    /// `cabin` may be left out.
    #[schema(min_items = 1, max_items = 9)]
    pub passengers: Vec<PassengerInput>,
}

/// Join the waiting list of a sold-out cabin. When seats of that cabin come
/// back, the first entry they fit gets a booking in status `HELD` holding
/// them for `BOOKING_WAITLIST_OFFER_SECS` (default 900); unpaid, the offer
/// lapses and passes to the next.
#[utoipa::path(post, path = "/api/v1/flights/{id}/waitlist", tag = "waitlist",
    params(("id" = Uuid, Path)), request_body = JoinWaitlistRequest,
    responses((status = 201, description = "`{entry_id, place, position}`: `place` 1 is next in line"),
              (status = 403), (status = 404, description = "unknown flight or customer"),
              (status = 409, description = "`INVALID_STATE`: the cabin has seats to book, the flight is cancelled or departed, or the customer is in this line already"),
              (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = %id))]
pub async fn join(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<JoinWaitlistRequest>,
) -> ApiResult<Reply> {
    let input = JoinWaitlistInput {
        flight_id: id,
        customer_id: req.customer_id,
        cabin: req.cabin,
        passengers: req.passengers.into_iter().map(Into::into).collect(),
    };
    let outcome = state.join_waitlist(&cmd.caller, cmd.ctx, input).await?;
    Ok(Reply::created(outcome))
}

/// Leave the waiting list (the entry's customer, an agent or an admin).
/// Only a waiting entry leaves; an offer is declined by cancelling its
/// booking.
#[utoipa::path(delete, path = "/api/v1/waitlist/{entry_id}", tag = "waitlist",
    params(("entry_id" = Uuid, Path)),
    responses((status = 204, description = "Left the line; the `position` header names the point in the log"),
              (status = 403), (status = 404),
              (status = 409, description = "`INVALID_STATE`: the entry holds an offer or was closed")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(entry_id = %entry_id))]
pub async fn leave(
    State(state): State<AppState>,
    cmd: Command,
    Path(entry_id): Path<Uuid>,
) -> ApiResult<Reply> {
    let outcome = state.leave_waitlist(&cmd.caller, cmd.ctx, entry_id).await?;
    Ok(Reply::new(StatusCode::NO_CONTENT, outcome))
}
