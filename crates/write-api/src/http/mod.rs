//! The REST routes and their middleware.

pub mod audit;
pub mod auth;
pub mod bookings;
pub mod discounts;
pub mod flights;
pub mod idempotency;
pub mod payments;
pub mod sagas;
pub mod users;
pub mod waitlist;
pub mod webhooks;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware;
use axum::Router;
use chrono::Utc;
use tower_http::timeout::TimeoutLayer;
use uuid::Uuid;

use ::auth::Caller;
use application::{CommandContext, Idempotency};

use crate::error::ApiError;
use crate::state::AppState;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// A request that takes longer is answered 408 (the work it started either
/// committed atomically or not at all).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every REST route under `/api/v1`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(flights::router())
        .merge(bookings::router())
        .merge(discounts::router())
        .merge(waitlist::router())
        .merge(payments::router())
        .merge(sagas::router())
        .merge(audit::router())
        .merge(webhooks::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ))
        .route_layer(middleware::from_fn(count_commands))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    Router::new().nest("/api/v1", api).with_state(state)
}

/// `booking_commands_total{command, outcome}`: every command by its route,
/// accepted (2xx), refused (4xx: the client's or the domain's no) or failed.
async fn count_commands(
    matched: Option<axum::extract::MatchedPath>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let res = next.run(req).await;
    if method != axum::http::Method::GET {
        let outcome = match res.status().as_u16() {
            200..=299 => "accepted",
            400..=499 => "refused",
            _ => "failed",
        };
        let command = format!(
            "{method} {}",
            matched.as_ref().map_or("unmatched", |m| m.as_str())
        );
        metrics::counter!("booking_commands_total", "command" => command, "outcome" => outcome)
            .increment(1);
    }
    res
}

/// The request's correlation id: the `x-request-id` the request came with
/// (or was given at the edge) when it is a UUID, else a fresh one.
#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(request_id(parts)))
    }
}

pub fn request_id(parts: &Parts) -> Uuid {
    parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(Uuid::now_v7)
}

/// The authenticated caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(state.tokens.verify(bearer(parts)?)?))
    }
}

/// The caller of a logout: a valid token, even of a session that has
/// already ended (logging out twice is no error).
#[derive(Debug, Clone, Copy)]
pub struct LoggingOut(pub Caller);

impl FromRequestParts<AppState> for LoggingOut {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        Ok(Self(state.tokens.verify_even_if_ended(token)?))
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    header
        .to_str()
        .ok()
        .and_then(::auth::bearer_token)
        .ok_or_else(|| ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into()))
}

/// The context of a command run by an authenticated caller.
pub struct Command {
    pub caller: Caller,
    pub ctx: CommandContext,
}

impl FromRequestParts<AppState> for Command {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        let ctx = CommandContext {
            correlation_id: request_id(parts),
            actor: application::actor(&caller),
            idempotency: parts.extensions.get::<Idempotency>().cloned(),
            data_subject: Some(caller.user_id),
            now: Utc::now(),
        };
        Ok(Self { caller, ctx })
    }
}

/// The context of a command anyone may run (registration, login).
pub struct AnonymousCommand {
    pub ctx: CommandContext,
}

impl FromRequestParts<AppState> for AnonymousCommand {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self {
            ctx: CommandContext {
                correlation_id: request_id(parts),
                actor: eventstore::Actor::anonymous(),
                idempotency: parts.extensions.get::<Idempotency>().cloned(),
                data_subject: None,
                now: Utc::now(),
            },
        })
    }
}

/// The status each command answers when it is accepted, by method and
/// route: a replay of a command answers with it too. (`tests` check it
/// against the OpenAPI document, which the handlers' annotations write.)
pub fn success_status(method: &axum::http::Method, route: &str) -> StatusCode {
    match (method.as_str(), route) {
        (
            "POST",
            "/api/v1/auth/register"
            | "/api/v1/flights"
            | "/api/v1/bookings"
            | "/api/v1/discount-codes"
            | "/api/v1/flights/{id}/waitlist"
            | "/api/v1/webhooks",
        ) => StatusCode::CREATED,
        (
            "POST",
            "/api/v1/flights/{id}/cancel"
            | "/api/v1/bookings/{id}/cancel"
            | "/api/v1/bookings/{id}/passengers/{passenger_id}/cancel"
            | "/api/v1/bookings/{id}/move"
            | "/api/v1/bookings/{id}/payment"
            | "/api/v1/sagas/{id}/retry"
            | "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry"
            | "/api/v1/auth/password-reset",
        ) => StatusCode::ACCEPTED,
        ("DELETE", "/api/v1/users/{id}" | "/api/v1/waitlist/{entry_id}")
        | (
            "POST",
            "/api/v1/auth/logout"
            | "/api/v1/auth/password"
            | "/api/v1/auth/password-reset/confirm"
            | "/api/v1/auth/verify-email",
        ) => StatusCode::NO_CONTENT,
        _ => StatusCode::OK,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::success_status;

    /// Every command's replay answers the success status its operation
    /// documents.
    #[test]
    fn replays_answer_each_commands_documented_status() {
        let doc = crate::openapi::document();
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, op) in operations {
                let Some(op) = op else { continue };
                let documented: Vec<u16> = op
                    .responses
                    .responses
                    .keys()
                    .filter_map(|k| k.parse().ok())
                    .filter(|s| (200..300).contains(s))
                    .collect();
                assert_eq!(
                    documented,
                    vec![success_status(&method, path).as_u16()],
                    "{method} {path}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 16, "only {checked} commands documented");
    }
}
