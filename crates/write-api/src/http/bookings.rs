//! `/bookings`: create (seats held atomically with the booking), cancel,
//! passenger edits.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::Router;
use chrono::{Duration, NaiveDate};
use domain::booking::{
    place_booking, Booking, BookingCommand, BookingError, CancelledBy, PassengerDetails,
    PassengerRequest, PlaceBooking, PlaceBookingError,
};
use domain::pricing::PricingError;
use domain::seats::{SeatError, SeatRequest};
use domain::user::User;
use domain::values::{Cabin, Email, Personal, Role, Seat};
use domain::Aggregate;
use eventstore::ExpectedVersion;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::Command;
use crate::commands::lane::Decided;
use crate::commands::Accepted;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bookings", post(create))
        .route("/bookings/{id}/cancel", post(cancel))
        .route(
            "/bookings/{id}/passengers/{passenger_id}",
            patch(update_passenger),
        )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateBookingRequest {
    pub flight_id: Uuid,
    /// Agents book for a customer; customers book for themselves.
    pub customer_id: Option<Uuid>,
    pub passengers: Vec<PassengerInput>,
}

/// A passenger names a `seat`, or a `cabin` to be given one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PassengerInput {
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: NaiveDate,
    #[schema(value_type = Option<String>)]
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub passport: Option<String>,
    #[schema(example = "12A")]
    pub seat: Option<String>,
    #[schema(value_type = Option<String>, example = "economy")]
    pub cabin: Option<Cabin>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CancelBookingRequest {
    pub reason: String,
}

/// Fields to change; the others keep their value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdatePassengerRequest {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    #[schema(value_type = Option<String>)]
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub passport: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PassengerView {
    pub passenger_id: Uuid,
    pub seat: String,
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
    responses((status = 201, description = "the booking summary: `{booking_id, pnr, status, hold_expires_at, seats, total, passengers, position}`"),
              (status = 404, description = "unknown flight or customer"),
              (status = 409, description = "`SEAT_UNAVAILABLE` naming the seats"),
              (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(flight_id = %req.flight_id))]
pub async fn create(
    State(state): State<AppState>,
    cmd: Command,
    Json(req): Json<CreateBookingRequest>,
) -> ApiResult<Accepted> {
    cmd.caller.require(&[Role::Customer, Role::Agent])?;
    let customer_id = match (cmd.caller.role, req.customer_id) {
        (Role::Agent, Some(customer)) if customer != cmd.caller.user_id => {
            let user = state.commands.load::<User>(customer).await?;
            if user.version == 0 || user.state.personal.is_erased() {
                return Err(ApiError::validation("customer_id", "no such customer"));
            }
            customer
        }
        (_, Some(customer)) if customer != cmd.caller.user_id => {
            return Err(ApiError::Forbidden(
                "only agents book for someone else".into(),
            ));
        }
        _ => cmd.caller.user_id,
    };

    let mut errors = Vec::new();
    let mut passengers = Vec::with_capacity(req.passengers.len());
    for (i, p) in req.passengers.into_iter().enumerate() {
        let seat = match (&p.seat, p.cabin) {
            (Some(s), None) => match Seat::parse(s) {
                Ok(seat) => Some(SeatRequest::Seat(seat)),
                Err(e) => {
                    errors.push(FieldError::new(
                        format!("passengers[{i}].seat"),
                        e.to_string(),
                    ));
                    None
                }
            },
            (None, Some(cabin)) => Some(SeatRequest::Cabin(cabin)),
            _ => {
                errors.push(FieldError::new(
                    format!("passengers[{i}]"),
                    "name exactly one of `seat` or `cabin`",
                ));
                None
            }
        };
        if let Some(seat) = seat {
            passengers.push(PassengerRequest {
                passenger_id: Uuid::now_v7(),
                seat,
                details: PassengerDetails {
                    first_name: p.first_name,
                    last_name: p.last_name,
                    date_of_birth: p.date_of_birth,
                    email: p.email,
                    phone: p.phone,
                    passport: p.passport,
                },
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }

    let booking_id = Uuid::now_v7();
    let pnr = state
        .pnrs
        .next(|| {
            let mut bytes = [0u8; 6];
            rand::thread_rng().fill_bytes(&mut bytes);
            bytes
        })
        .await?;
    let now = cmd.ctx.now;
    let hold = Duration::from_std(state.config.hold_ttl).unwrap_or(Duration::minutes(10));
    let place = PlaceBooking {
        booking_id,
        pnr,
        customer_id,
        created_by: cmd.caller.user_id,
        passengers,
        hold_expires_at: now + hold,
        now,
    };
    let flight_id = req.flight_id;
    let mut accepted = state
        .commands
        .lanes
        .submit(
            flight_id,
            cmd.ctx,
            Box::new(move |flight, seats| {
                let (seat_events, booking_events) =
                    place_booking(flight, seats, place.clone()).map_err(place_error)?;
                let booking = booking_events
                    .iter()
                    .fold(Booking::default(), |b, e| b.evolve(e));
                Ok(Decided {
                    seats: seat_events,
                    booking: Some((place.booking_id, ExpectedVersion::NO_STREAM, booking_events)),
                    status: Some(StatusCode::CREATED),
                    body: summary(&booking),
                    ..Decided::default()
                })
            }),
        )
        .await?;
    accepted.status = StatusCode::CREATED;
    Ok(accepted)
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
) -> ApiResult<Accepted> {
    let loaded = state.commands.load::<Booking>(id).await?;
    let flight_id = owned_by(&loaded.state, cmd.caller)?.flight_id;
    let by = match cmd.caller.role {
        Role::Admin => CancelledBy::Admin,
        Role::Agent => CancelledBy::Agent,
        _ => CancelledBy::Customer,
    };
    let (version, now) = (loaded.version, cmd.ctx.now);
    let decide = crate::commands::cancel::cancellation(loaded.state, version, req.reason, by, now);
    let mut accepted = state
        .commands
        .lanes
        .submit(flight_id, cmd.ctx, decide)
        .await?;
    accepted.status = StatusCode::ACCEPTED;
    Ok(accepted)
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
) -> ApiResult<Accepted> {
    // Ownership is checked on the state the command is decided on.
    let caller = cmd.caller;
    let now = cmd.ctx.now;
    state
        .commands
        .execute::<Booking, _, _>(
            &cmd.ctx,
            id,
            StatusCode::OK,
            |booking| {
                owned_by(booking, caller)?;
                let current = booking
                    .passengers
                    .iter()
                    .find(|p| p.passenger_id == passenger_id)
                    .ok_or_else(|| ApiError::not_found("passenger"))?;
                let Personal::Known(details) = &current.personal else {
                    return Err(ApiError::invalid_state(
                        "the passenger's personal data was erased",
                    ));
                };
                let mut details = details.clone();
                if let Some(v) = &req.first_name {
                    details.first_name = v.clone();
                }
                if let Some(v) = &req.last_name {
                    details.last_name = v.clone();
                }
                if let Some(v) = req.date_of_birth {
                    details.date_of_birth = v;
                }
                if let Some(v) = &req.email {
                    details.email = Some(v.clone());
                }
                if let Some(v) = &req.phone {
                    details.phone = Some(v.clone());
                }
                if let Some(v) = &req.passport {
                    details.passport = Some(v.clone());
                }
                booking
                    .decide(BookingCommand::UpdatePassenger {
                        passenger_id,
                        details,
                        now,
                    })
                    .map_err(booking_error)
            },
            |booking| {
                let p = booking
                    .passengers
                    .iter()
                    .find(|p| p.passenger_id == passenger_id);
                json!({ "booking_id": id, "passenger": p.map(passenger_view) })
            },
        )
        .await
}

/// The booking, if the caller may act on it: its customer, an agent, an admin.
pub(crate) fn owned_by(
    booking: &Booking,
    caller: crate::auth::Caller,
) -> ApiResult<&domain::booking::BookingInfo> {
    let info = booking
        .info
        .as_ref()
        .ok_or_else(|| ApiError::not_found("booking"))?;
    match caller.role {
        Role::Agent | Role::Admin => Ok(info),
        _ if info.customer_id == caller.user_id => Ok(info),
        // Not a 404: the id is a UUID nobody guesses, and 403 tells the
        // caller plainly that this booking is not theirs.
        _ => Err(ApiError::Forbidden(
            "this booking belongs to someone else".into(),
        )),
    }
}

fn passenger_view(p: &domain::booking::Passenger) -> PassengerView {
    let known = p.personal.known();
    PassengerView {
        passenger_id: p.passenger_id,
        seat: p.seat.to_string(),
        cabin: p.cabin,
        fare: p.fare,
        first_name: known.map(|d| d.first_name.clone()),
        last_name: known.map(|d| d.last_name.clone()),
    }
}

/// The 201 answer of a new booking.
fn summary(b: &Booking) -> Value {
    let Some(info) = &b.info else {
        return Value::Null;
    };
    json!({
        "booking_id": info.booking_id,
        "pnr": info.pnr,
        "status": b.status.map(|s| s.as_str()),
        "flight_id": info.flight_id,
        "customer_id": info.customer_id,
        "hold_expires_at": info.hold_expires_at,
        "seats": b.seats().iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "total": info.total,
        "passengers": b.passengers.iter().map(passenger_view).collect::<Vec<_>>(),
    })
}

fn place_error(e: PlaceBookingError) -> ApiError {
    match e {
        PlaceBookingError::FlightNotFound => ApiError::not_found("flight"),
        PlaceBookingError::FlightCancelled | PlaceBookingError::FlightDeparted => {
            ApiError::invalid_state(e.to_string())
        }
        PlaceBookingError::Seats(e) => seat_error(e),
        PlaceBookingError::Booking(e) => booking_error(e),
        PlaceBookingError::Pricing(PricingError::NoFare(_)) => {
            ApiError::validation("cabin", e.to_string())
        }
        other => ApiError::internal(other),
    }
}

pub(crate) fn seat_error(e: SeatError) -> ApiError {
    match e {
        SeatError::SeatUnavailable(seats) => {
            ApiError::SeatUnavailable(seats.iter().map(|s| s.to_string()).collect())
        }
        SeatError::CabinFull { .. } => ApiError::Conflict {
            code: "SEAT_UNAVAILABLE",
            detail: e.to_string(),
        },
        SeatError::UnknownSeats(_) | SeatError::DuplicateSeat(_) => {
            ApiError::validation("seat", e.to_string())
        }
        SeatError::NothingRequested => ApiError::validation("passengers", e.to_string()),
        SeatError::NotOpened => ApiError::not_found("flight"),
        other => ApiError::invalid_state(other.to_string()),
    }
}

pub(crate) fn booking_error(e: BookingError) -> ApiError {
    if let Some(field) = e.field() {
        return ApiError::validation(field, e.to_string());
    }
    match e {
        BookingError::NotCreated => ApiError::not_found("booking"),
        BookingError::Departed => ApiError::invalid_state(e.to_string()),
        BookingError::Money(_) => ApiError::internal(e),
        other => ApiError::invalid_state(other.to_string()),
    }
}
