//! `POST /discount-codes`: admins create discount codes; bookings redeem
//! them by `discount_code`.

use application::discounts::NewDiscountCode;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use domain::values::Cabin;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::Command;
use crate::error::ApiResult;
use crate::extract::Json;
use crate::reply::Reply;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/discount-codes", post(create))
}

/// Money as everywhere in the API.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MoneyInput {
    /// A decimal string, more than zero, at most 2 decimals.
    #[schema(value_type = String, example = "20.00")]
    pub amount: Decimal,
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

/// A discount code: exactly one of `percent_off` or `amount_off`, and
/// `valid_until` after `valid_from` (else 422 `VALIDATION_FAILED`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateDiscountCodeRequest {
    /// 3 to 32 letters, digits, `-` or `_`; matched without regard to case.
    #[schema(example = "SUMMER-10", min_length = 3, max_length = 32)]
    pub code: String,
    #[schema(minimum = 1, maximum = 100)]
    pub percent_off: Option<u8>,
    pub amount_off: Option<MoneyInput>,
    pub valid_from: DateTime<Utc>,
    /// After `valid_from`.
    pub valid_until: DateTime<Utc>,
    /// How many bookings may use it, in all.
    #[schema(minimum = 1)]
    pub max_uses: u32,
    /// How many bookings of one customer may use it.
    #[schema(minimum = 1)]
    pub max_uses_per_customer: u32,
    /// Limits it to these routes (`"LHR-JFK"`, one direction); every route
    /// when omitted.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Limits it to these cabins; every cabin when omitted.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["economy"]))]
    pub cabins: Vec<Cabin>,
}

/// Create a discount code (admin).
#[utoipa::path(post, path = "/api/v1/discount-codes", tag = "discounts",
    request_body = CreateDiscountCodeRequest,
    responses((status = 201, description = "`{code, percent_off, amount_off, valid_from, valid_until, max_uses, max_uses_per_customer, routes, cabins, position}`"),
              (status = 403),
              (status = 409, description = "`CONFLICT`: the code exists"),
              (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    cmd: Command,
    Json(req): Json<CreateDiscountCodeRequest>,
) -> ApiResult<Reply> {
    let input = NewDiscountCode {
        code: req.code,
        percent_off: req.percent_off,
        amount_off: req.amount_off.map(|m| (m.amount, m.currency)),
        valid_from: req.valid_from,
        valid_until: req.valid_until,
        max_uses: req.max_uses,
        max_uses_per_customer: req.max_uses_per_customer,
        routes: req.routes,
        cabins: req.cabins,
    };
    let outcome = state
        .create_discount_code(&cmd.caller, cmd.ctx, input)
        .await?;
    Ok(Reply::created(outcome))
}
