//! `/bookings`: create (seats held atomically with the booking), cancel,
//! passenger edits, seat changes, moves to another flight.

use std::collections::BTreeMap;

use application::bookings::{CreateBooking, NewPassenger, PassengerChanges};
use axum::extract::State;
use axum::routing::{patch, post};
use axum::Router;
use chrono::NaiveDate;
use domain::booking::PassengerType;
use domain::values::{Cabin, Email};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Command;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::reply::Reply;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bookings", post(create))
        .route("/bookings/{id}/cancel", post(cancel))
        .route(
            "/bookings/{id}/passengers/{passenger_id}",
            patch(update_passenger),
        )
        .route(
            "/bookings/{id}/passengers/{passenger_id}/seat",
            post(change_seat),
        )
        .route(
            "/bookings/{id}/passengers/{passenger_id}/cancel",
            post(cancel_passenger),
        )
        .route("/bookings/{id}/move", post(move_booking))
}

/// One flight (`flight_id`) or several (`flights`, in travel order): name
/// exactly one of them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateBookingRequest {
    pub flight_id: Option<Uuid>,
    /// An itinerary (a connection, a round trip, several cities), in travel
    /// order: every flight's seats are held together or none is.
    #[schema(min_items = 2, max_items = 6)]
    pub flights: Option<Vec<Uuid>>,
    /// Agents book for a customer; customers book for themselves.
    pub customer_id: Option<Uuid>,
    #[schema(min_items = 1, max_items = 9)]
    pub passengers: Vec<PassengerInput>,
    /// Taken off the fares; an unknown, expired, used up or inapplicable
    /// code is a 409 `DISCOUNT_UNAVAILABLE` and nothing is held.
    #[schema(example = "SUMMER-10", max_length = 64)]
    pub discount_code: Option<String>,
}

/// A seat on the one flight (`"12A"`), or on an itinerary's flights by
/// flight id (`{"<flight_id>": "12A"}`; the flights not named get a seat in
/// `cabin`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SeatInput {
    #[schema(example = "12A")]
    One(String),
    ByFlight(BTreeMap<Uuid, String>),
}

/// A passenger names a `seat`, or a `cabin` to be given one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PassengerInput {
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(min_length = 1, max_length = 100)]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: String,
    /// Not in the future, at most 130 years ago.
    pub date_of_birth: NaiveDate,
    #[schema(value_type = Option<String>)]
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub passport: Option<String>,
    /// Omitted for an infant.
    pub seat: Option<SeatInput>,
    /// Omitted for an infant; on an itinerary, the cabin of the flights
    /// `seat` does not name.
    #[schema(value_type = Option<String>, example = "economy")]
    pub cabin: Option<Cabin>,
    /// `adult` (the default), `child` or `infant`.
    #[serde(default, rename = "type")]
    #[schema(value_type = Option<String>, example = "adult")]
    pub kind: Option<PassengerType>,
    /// An infant's adult: the index of an adult in the same `passengers`
    /// list (at most one infant per adult).
    #[schema(minimum = 0, maximum = 8)]
    pub travels_with: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CancelBookingRequest {
    /// 1 to 500 characters, no control or invisible formatting characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// Fields to change; the others keep their value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdatePassengerRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub first_name: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    #[schema(value_type = Option<String>)]
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub passport: Option<String>,
}

/// The seat to move a passenger to, in the same cabin.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChangeSeatRequest {
    #[schema(example = "14C")]
    pub seat: String,
    /// For an itinerary: the flight whose seat changes (required there).
    pub flight_id: Option<Uuid>,
}

/// The flight a booking leaves and the one of the same route it moves to.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MoveBookingRequest {
    pub from_flight_id: Uuid,
    pub to_flight_id: Uuid,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PassengerView {
    pub passenger_id: Uuid,
    /// `adult`, `child` or `infant`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: PassengerType,
    /// `null` for an infant.
    pub seat: Option<String>,
    /// The adult an infant travels with.
    pub travels_with: Option<Uuid>,
    #[schema(value_type = String)]
    pub cabin: Cabin,
    #[schema(value_type = Object)]
    pub fare: domain::values::Money,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Hold seats and create a booking: both commit together or not at all.
#[utoipa::path(post, path = "/api/v1/bookings", tag = "bookings",
    request_body = CreateBookingRequest,
    responses((status = 201, description = "the booking summary: `{booking_id, pnr, status, hold_expires_at, seats, segments, total, discount, passengers, position}`"),
              (status = 404, description = "unknown flight or customer"),
              (status = 409, description = "`SEAT_UNAVAILABLE` naming the seats; `DISCOUNT_UNAVAILABLE`"),
              (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = ?req.flight_id))]
pub async fn create(
    State(state): State<AppState>,
    cmd: Command,
    Json(req): Json<CreateBookingRequest>,
) -> ApiResult<Reply> {
    let flights = match (req.flight_id, req.flights) {
        (Some(id), None) => vec![id],
        (None, Some(flights)) if flights.len() >= 2 => flights,
        (None, Some(_)) => {
            return Err(application::CommandError::invalid(
                "flights",
                "an itinerary names 2 to 6 flights; book one flight with `flight_id`",
            )
            .into())
        }
        _ => {
            return Err(application::CommandError::invalid(
                "flight_id",
                "name exactly one of `flight_id` (one flight) or `flights` (an itinerary)",
            )
            .into())
        }
    };
    let input = CreateBooking {
        flights,
        customer_id: req.customer_id,
        passengers: req.passengers.into_iter().map(Into::into).collect(),
        discount_code: req.discount_code,
    };
    let outcome = state.create_booking(&cmd.caller, cmd.ctx, input).await?;
    Ok(Reply::created(outcome))
}

/// Cancel a booking: refund by policy, seats back on sale.
#[utoipa::path(post, path = "/api/v1/bookings/{id}/cancel", tag = "bookings",
    params(("id" = Uuid, Path)), request_body = CancelBookingRequest,
    responses((status = 202, description = "`{booking_id, status: CANCELLED, refund, position}`"),
              (status = 403), (status = 404),
              (status = 409, description = "after departure, or not cancellable in its state")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(booking_id = %id))]
pub async fn cancel(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<CancelBookingRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .cancel_booking(&cmd.caller, cmd.ctx, id, req.reason)
        .await?;
    Ok(Reply::accepted(outcome))
}

/// Take one passenger of several off a booking: their share (their fare
/// less their part of any discount) refunded by the policy, their seat back
/// on sale. The last passenger is cancelled with the booking; an adult with
/// an infant on their lap after the infant.
#[utoipa::path(post, path = "/api/v1/bookings/{id}/passengers/{passenger_id}/cancel", tag = "bookings",
    params(("id" = Uuid, Path), ("passenger_id" = Uuid, Path)), request_body = CancelBookingRequest,
    responses((status = 202, description = "`{booking_id, passenger_id, refund, position}`"),
              (status = 403), (status = 404),
              (status = 409, description = "`INVALID_STATE`: the last passenger, an infant's adult, after departure, or not cancellable in the booking's state"),
              (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(booking_id = %id, passenger_id = %passenger_id))]
pub async fn cancel_passenger(
    State(state): State<AppState>,
    cmd: Command,
    Path((id, passenger_id)): Path<(Uuid, Uuid)>,
    Json(req): Json<CancelBookingRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .cancel_passenger(&cmd.caller, cmd.ctx, id, passenger_id, req.reason)
        .await?;
    Ok(Reply::accepted(outcome))
}

/// Correct a passenger's details (until tickets are issued).
#[utoipa::path(patch, path = "/api/v1/bookings/{id}/passengers/{passenger_id}", tag = "bookings",
    params(("id" = Uuid, Path), ("passenger_id" = Uuid, Path)), request_body = UpdatePassengerRequest,
    responses((status = 200), (status = 403), (status = 404),
              (status = 409, description = "`INVALID_STATE` once ticketed"), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(booking_id = %id, passenger_id = %passenger_id))]
pub async fn update_passenger(
    State(state): State<AppState>,
    cmd: Command,
    Path((id, passenger_id)): Path<(Uuid, Uuid)>,
    Json(req): Json<UpdatePassengerRequest>,
) -> ApiResult<Reply> {
    let changes = PassengerChanges {
        first_name: req.first_name,
        last_name: req.last_name,
        date_of_birth: req.date_of_birth,
        email: req.email,
        phone: req.phone,
        passport: req.passport,
    };
    let outcome = state
        .update_passenger(&cmd.caller, cmd.ctx, id, passenger_id, changes)
        .await?;
    Ok(Reply::ok(outcome))
}

/// Move a passenger to another seat of the same cabin: the new seat is
/// taken and the old one given back in one step.
#[utoipa::path(post, path = "/api/v1/bookings/{id}/passengers/{passenger_id}/seat", tag = "bookings",
    params(("id" = Uuid, Path), ("passenger_id" = Uuid, Path)), request_body = ChangeSeatRequest,
    responses((status = 200, description = "the booking summary with the passenger's new seat: `{booking_id, pnr, status, seats, segments, passengers, ..., position}`; the same seat changes nothing"),
              (status = 403), (status = 404, description = "unknown booking or passenger"),
              (status = 409, description = "`SEAT_UNAVAILABLE` naming the seat when it is held or sold; `INVALID_STATE` when the booking is over, its hold ran out or the flight departed"),
              (status = 422, description = "a malformed or unknown seat, a seat in another cabin, an infant (no seat), a `flight_id` not the booking's")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(booking_id = %id, passenger_id = %passenger_id))]
pub async fn change_seat(
    State(state): State<AppState>,
    cmd: Command,
    Path((id, passenger_id)): Path<(Uuid, Uuid)>,
    Json(req): Json<ChangeSeatRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .change_seat(
            &cmd.caller,
            cmd.ctx,
            id,
            passenger_id,
            req.seat,
            req.flight_id,
        )
        .await?;
    Ok(Reply::ok(outcome))
}

/// Move a booking to another flight of the same route: every passenger
/// gets a seat in their cabin on the new flight and the old seats go back
/// on sale, in one step. A held booking is re-priced (its hold keeps its
/// expiry); a paid one moved to a cheaper flight is refunded the difference
/// by its saga, and a ticketed one is ticketed anew for the new flight. A
/// paid booking moved to a dearer flight holds the new seats while its saga
/// charges the difference to the card it was paid with, then moves it (or,
/// if the card declines, lets the held seats go and leaves it where it
/// was).
#[utoipa::path(post, path = "/api/v1/bookings/{id}/move", tag = "bookings",
    params(("id" = Uuid, Path)), request_body = MoveBookingRequest,
    responses((status = 202, description = "the booking summary, with `refund` (what the saga gives back), `charge` (the difference the saga charges; the booking stays on its flight, with `pending_move`, until it is paid), and `position`"),
              (status = 403), (status = 404, description = "unknown booking or flight"),
              (status = 409, description = "`SEAT_UNAVAILABLE` when the new flight has too few seats left in a passenger's cabin; `INVALID_STATE` when the booking is being paid or is over, its hold ran out, a flight is cancelled or departed, or another move waits for its difference"),
              (status = 422, description = "a `from_flight_id` that is not the booking's, a `to_flight_id` of another route or currency, or the same flight")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(booking_id = %id))]
pub async fn move_booking(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<MoveBookingRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .move_booking(
            &cmd.caller,
            cmd.ctx,
            id,
            req.from_flight_id,
            req.to_flight_id,
        )
        .await?;
    Ok(Reply::accepted(outcome))
}

impl From<PassengerInput> for NewPassenger {
    fn from(p: PassengerInput) -> Self {
        Self {
            first_name: p.first_name,
            last_name: p.last_name,
            date_of_birth: p.date_of_birth,
            email: p.email,
            phone: p.phone,
            passport: p.passport,
            seat: match &p.seat {
                Some(SeatInput::One(s)) => Some(s.clone()),
                _ => None,
            },
            seats: match p.seat {
                Some(SeatInput::ByFlight(by_flight)) => by_flight.into_iter().collect(),
                _ => vec![],
            },
            cabin: p.cabin,
            kind: p.kind.unwrap_or_default(),
            travels_with: p.travels_with,
        }
    }
}
