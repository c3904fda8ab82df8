//! `POST /api/v1/sagas/{id}/retry` (admin): give a parked saga a fresh
//! retry budget and run it now.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use domain::values::Role;
use serde_json::json;
use uuid::Uuid;
use write_api::commands::Accepted;
use write_api::error::{ApiError, ApiResult};
use write_api::extract::Path;
use write_api::http::Command;
use write_api::AppState;

use crate::store;

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(retry),
    tags((name = "sagas", description = "The fulfilment process managers (admin)"))
)]
pub struct AdminDoc;

/// Routes to merge under `/api/v1` (see `write_api::router_with`).
pub fn router() -> Router<AppState> {
    Router::new().route("/sagas/{id}/retry", post(retry))
}

/// Retry a parked saga.
#[utoipa::path(post, path = "/api/v1/sagas/{id}/retry", tag = "sagas",
    params(("id" = Uuid, Path)),
    responses((status = 202, description = "`{saga_id, status: RUNNING, position}`"),
              (status = 403), (status = 404),
              (status = 409, description = "`INVALID_STATE`: the saga is not parked")),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
) -> ApiResult<Accepted> {
    cmd.caller.require(&[Role::Admin])?;
    match store::retry(&state.pool, id)
        .await
        .map_err(ApiError::internal)?
    {
        None => Err(ApiError::not_found("saga")),
        Some(false) => Err(ApiError::invalid_state("only a parked saga can be retried")),
        Some(true) => {
            tracing::info!(saga_id = %id, by = %cmd.caller.user_id, "parked saga retried");
            let position = state.store.head().await.map_err(ApiError::from)?;
            Ok(Accepted {
                status: StatusCode::ACCEPTED,
                body: json!({ "saga_id": id, "status": "RUNNING", "position": position.unwrap_or(eventstore::Position::START).to_string() }),
                replayed: false,
            })
        }
    }
}
