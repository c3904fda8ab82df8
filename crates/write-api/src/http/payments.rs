//! `POST /bookings/{id}/payment`: the card goes to the payment provider for
//! a token, and the booking moves to `PAYMENT_PENDING` together with a new
//! payment stream. The fulfilment saga charges, confirms and tickets.
//!
//! The card number stops here: it is checked (Luhn), handed to the gateway
//! and dropped; the events keep the token, the brand and the last four
//! digits.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::{Datelike, Utc};
use domain::booking::{Booking, BookingCommand};
use domain::payment::{Payment, PaymentCommand};
use domain::Aggregate;
use eventstore::{ExpectedVersion, StreamAppend, StreamId};
use gateway::{Card, GatewayError};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::bookings::{booking_error, owned_by};
use super::Command;
use crate::commands::{encode_events, too_much_contention, Accepted, MAX_ATTEMPTS};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// How long the provider gets to tokenize a card.
const TOKENIZE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router() -> Router<AppState> {
    Router::new().route("/bookings/{id}/payment", post(pay))
}

/// Card details. Test cards: `4242424242424242` succeeds,
/// `4000000000000002` is declined, `4000000000009995` has insufficient
/// funds, `4000000000000119` fails transiently and succeeds on a retry.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    #[schema(example = "4242424242424242")]
    pub card_number: String,
    #[schema(example = 12)]
    pub expiry_month: u32,
    #[schema(example = 2030)]
    pub expiry_year: i32,
    #[schema(example = "123")]
    pub cvc: String,
    pub holder: String,
}

impl std::fmt::Debug for PaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentRequest { .. }")
    }
}

impl PaymentRequest {
    fn validate(self) -> ApiResult<Card> {
        let mut errors = vec![];
        let number: String = self
            .card_number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if !domain::payment::luhn_valid(&number) {
            errors.push(FieldError::new("card_number", "not a valid card number"));
        }
        if !(1..=12).contains(&self.expiry_month) {
            errors.push(FieldError::new("expiry_month", "must be 1 to 12"));
        } else {
            let today = Utc::now().date_naive();
            let (year, month) = (today.year(), today.month());
            if self.expiry_year < year || (self.expiry_year == year && self.expiry_month < month) {
                errors.push(FieldError::new("expiry_year", "the card has expired"));
            } else if self.expiry_year > year + 20 {
                errors.push(FieldError::new("expiry_year", "is too far in the future"));
            }
        }
        if !(3..=4).contains(&self.cvc.len()) || !self.cvc.chars().all(|c| c.is_ascii_digit()) {
            errors.push(FieldError::new("cvc", "must be 3 or 4 digits"));
        }
        let holder = self.holder.trim();
        if holder.is_empty() || holder.chars().count() > 100 {
            errors.push(FieldError::new("holder", "must be 1 to 100 characters"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Card {
            number,
            expiry_month: self.expiry_month,
            expiry_year: self.expiry_year,
            cvc: self.cvc,
            holder: holder.to_owned(),
        })
    }
}

/// Pay a held booking. The answer comes before the charge: follow the
/// booking (GraphQL `booking`, `bookingUpdated`) to `TICKETED`, or
/// `PAYMENT_FAILED` when the card is declined.
#[utoipa::path(post, path = "/api/v1/bookings/{id}/payment", tag = "bookings",
    params(("id" = Uuid, Path)), request_body = PaymentRequest,
    responses((status = 202, description = "`{booking_id, payment_id, status: PAYMENT_PENDING, position}`"),
              (status = 403), (status = 404),
              (status = 409, description = "`INVALID_STATE`: already paid or paying, expired, failed or cancelled"),
              (status = 422, description = "invalid card details (Luhn check, expiry, cvc, holder)"),
              (status = 503, description = "the payment provider is unavailable; retry")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(booking_id = %id))]
pub async fn pay(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<PaymentRequest>,
) -> ApiResult<Accepted> {
    let card = req.validate()?;
    let now = cmd.ctx.now;
    // Refuse before the card goes anywhere.
    let loaded = state.commands.load::<Booking>(id).await?;
    owned_by(&loaded.state, cmd.caller)?;
    loaded
        .state
        .decide(BookingCommand::SubmitPayment {
            payment_id: Uuid::nil(),
            now,
        })
        .map_err(booking_error)?;

    let token = gateway::within(TOKENIZE_TIMEOUT, state.gateway.tokenize(&card))
        .await
        .map_err(|e| match e {
            GatewayError::Rejected(reason) => ApiError::validation("card_number", reason),
            other => ApiError::Unavailable(other.to_string()),
        })?;
    drop(card);

    let payment_id = Uuid::now_v7();
    let mut loaded = loaded;
    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            loaded = state.commands.load::<Booking>(id).await?;
        }
        let booking_events = loaded
            .state
            .decide(BookingCommand::SubmitPayment { payment_id, now })
            .map_err(booking_error)?;
        let total = loaded
            .state
            .info
            .as_ref()
            .map(|i| i.total)
            .ok_or_else(|| ApiError::not_found("booking"))?;
        let payment_events = Payment::default()
            .decide(PaymentCommand::Request {
                payment_id,
                booking_id: id,
                amount: total,
                card_brand: token.brand.clone(),
                card_last4: token.last4.clone(),
                card_token: Some(token.token.clone()),
                now,
            })
            .map_err(ApiError::internal)?;
        let sealer = state.commands.sealer();
        let appends = vec![
            StreamAppend {
                stream: StreamId::new(Booking::CATEGORY, id),
                expected: ExpectedVersion::Exact(loaded.version),
                events: encode_events(sealer, &booking_events, &cmd.ctx).await?,
            },
            StreamAppend {
                stream: StreamId::new(Payment::CATEGORY, payment_id),
                expected: ExpectedVersion::NO_STREAM,
                events: encode_events(sealer, &payment_events, &cmd.ctx).await?,
            },
        ];
        let body = json!({
            "booking_id": id,
            "payment_id": payment_id,
            "status": "PAYMENT_PENDING",
            "amount": total,
            "card_brand": token.brand,
            "card_last4": token.last4,
        });
        match state
            .commands
            .append(&cmd.ctx, appends, StatusCode::ACCEPTED, body)
            .await
        {
            Err(ApiError::Conflict {
                code: "CONFLICT", ..
            }) if attempt < MAX_ATTEMPTS => continue,
            Ok(mut accepted) => {
                accepted.status = StatusCode::ACCEPTED;
                return Ok(accepted);
            }
            Err(e) => return Err(e),
        }
    }
    Err(too_much_contention())
}
