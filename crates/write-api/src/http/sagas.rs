//! `/sagas`: admins retry a parked saga.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use uuid::Uuid;

use super::Command;
use crate::error::ApiResult;
use crate::extract::Path;
use crate::reply::Reply;
use crate::state::AppState;

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
#[tracing::instrument(skip_all, fields(saga_id = %id))]
pub async fn retry(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply> {
    let outcome = state.retry_saga(&cmd.caller, &*state.sagas, id).await?;
    Ok(Reply::accepted(outcome))
}
