//! Discount codes: admins create them; bookings redeem them (see
//! [`crate::bookings`], where a code is taken off inside the booking's
//! decision on the flight's lane).

use chrono::{DateTime, Utc};
use domain::discount::{Code, DiscountCode, DiscountCommand, Reduction, Route};
use domain::values::{Cabin, Currency, Money, Role};
use domain::Aggregate;
use rust_decimal::Decimal;
use serde_json::json;

use crate::error::{discount_error, CommandError, CommandResult, FieldError};
use crate::{CommandContext, Outcome, Services};
use auth::Caller;

/// A new code as an admin enters it: exactly one of `percent_off` or
/// `amount_off`.
#[derive(Debug, Clone)]
pub struct NewDiscountCode {
    pub code: String,
    pub percent_off: Option<u8>,
    /// An amount and its currency.
    pub amount_off: Option<(Decimal, String)>,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub max_uses: u32,
    pub max_uses_per_customer: u32,
    /// `"LHR-JFK"`; empty for every route.
    pub routes: Vec<String>,
    /// Empty for every cabin.
    pub cabins: Vec<Cabin>,
}

impl NewDiscountCode {
    fn parse(self) -> CommandResult<(Code, Reduction, Vec<Route>)> {
        let mut errors = Vec::new();
        let code = Code::parse(&self.code)
            .map_err(|e| errors.push(FieldError::new("code", e.to_string())))
            .ok();
        let reduction = match (self.percent_off, self.amount_off) {
            (Some(p), None) => Some(Reduction::PercentOff(p)),
            (None, Some((amount, currency))) => match Currency::parse(&currency)
                .map_err(|e| e.to_string())
                .and_then(|c| Money::new(amount, c).map_err(|e| e.to_string()))
            {
                Ok(m) => Some(Reduction::AmountOff(m)),
                Err(e) => {
                    errors.push(FieldError::new("amount_off", e));
                    None
                }
            },
            _ => {
                errors.push(FieldError::new(
                    "percent_off",
                    "name exactly one of `percent_off` or `amount_off`",
                ));
                None
            }
        };
        let mut routes = Vec::with_capacity(self.routes.len());
        for (i, r) in self.routes.iter().enumerate() {
            match Route::parse(r) {
                Some(route) => routes.push(route),
                None => errors.push(FieldError::new(
                    format!("routes[{i}]"),
                    "a route is two airport codes joined by '-', e.g. LHR-JFK",
                )),
            }
        }
        match (code, reduction, errors.is_empty()) {
            (Some(code), Some(reduction), true) => Ok((code, reduction, routes)),
            _ => Err(CommandError::Invalid(errors)),
        }
    }
}

impl Services {
    /// Creates a discount code (admins only); 409 if the code exists.
    pub async fn create_discount_code(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        input: NewDiscountCode,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        let (valid_from, valid_until) = (input.valid_from, input.valid_until);
        let (max_uses, per_customer) = (input.max_uses, input.max_uses_per_customer);
        let cabins = input.cabins.clone();
        let (code, reduction, routes) = input.parse()?;
        let now = ctx.now;
        let created_by = caller.user_id;
        self.commands
            .execute::<DiscountCode, _, _>(
                &ctx,
                code.stream_uuid(),
                |state| {
                    state
                        .decide(DiscountCommand::Create {
                            code: code.clone(),
                            reduction,
                            valid_from,
                            valid_until,
                            max_uses,
                            max_uses_per_customer: per_customer,
                            routes: routes.clone(),
                            cabins: cabins.clone(),
                            created_by,
                            now,
                        })
                        .map_err(discount_error)
                },
                |state| match &state.terms {
                    Some(t) => json!({
                        "code": t.code,
                        "percent_off": match t.reduction { Reduction::PercentOff(p) => Some(p), _ => None },
                        "amount_off": match t.reduction { Reduction::AmountOff(m) => Some(m), _ => None },
                        "valid_from": t.valid_from,
                        "valid_until": t.valid_until,
                        "max_uses": t.max_uses,
                        "max_uses_per_customer": t.max_uses_per_customer,
                        "routes": t.routes.iter().map(Route::to_string).collect::<Vec<_>>(),
                        "cabins": t.cabins,
                    }),
                    None => json!({ "code": code }),
                },
            )
            .await
    }
}
