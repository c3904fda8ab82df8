//! `POST /bookings/{id}/payment`: pay a held booking with a card. The card
//! is checked and tokenized by the application and never stored; the
//! fulfilment saga charges, confirms and tickets.

use application::payments::CardInput;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use uuid::Uuid;

use super::Command;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::reply::Reply;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/bookings/{id}/payment", post(pay))
}

/// Card details. Test cards: `4242424242424242` succeeds,
/// `4000000000000002` is declined, `4000000000009995` has insufficient
/// funds, `4000000000000119` fails transiently and succeeds on a retry.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    /// A Luhn-valid card number (spaces and dashes are ignored).
    #[schema(example = "4242424242424242", min_length = 1, max_length = 40)]
    pub card_number: String,
    #[schema(example = 12, minimum = 1, maximum = 12)]
    pub expiry_month: u32,
    /// Not past, at most 20 years ahead.
    #[schema(example = 2030)]
    pub expiry_year: i32,
    #[schema(example = "123", pattern = "^[0-9]{3,4}$")]
    pub cvc: String,
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(min_length = 1, max_length = 100)]
    pub holder: String,
}

impl std::fmt::Debug for PaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentRequest { .. }")
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
) -> ApiResult<Reply> {
    let card = CardInput {
        card_number: req.card_number,
        expiry_month: req.expiry_month,
        expiry_year: req.expiry_year,
        cvc: req.cvc,
        holder: req.holder,
    };
    let outcome = state.pay_booking(&cmd.caller, cmd.ctx, id, card).await?;
    Ok(Reply::accepted(outcome))
}
