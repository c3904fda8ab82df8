//! `/users`: profile, role, erasure.
//!
//! A customer may only touch their own account (403 otherwise, before
//! anything is read, so ids of other users are not confirmed); an admin may
//! touch any, and learns 404 for ids that are not users.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, put};
use axum::Router;
use domain::user::{User, UserCommand, UserError, UserStatus};
use domain::values::Role;
use domain::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Command;
use crate::commands::Accepted;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/{id}", patch(update_profile).delete(erase))
        .route("/users/{id}/role", put(change_role))
}

/// A role, as the wire names it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Role)]
pub enum RoleName {
    Customer,
    Agent,
    Analyst,
    Auditor,
    Admin,
}

/// Fields left out (or `null`) stay as they are; an empty `phone` removes
/// the number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    #[schema(example = "Ada King")]
    pub full_name: Option<String>,
    #[schema(example = "+44 20 7946 0958")]
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileResponse {
    pub user_id: Uuid,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub position: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    #[schema(value_type = RoleName)]
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleResponse {
    pub user_id: Uuid,
    #[schema(value_type = RoleName)]
    pub role: Role,
    pub position: String,
}

/// The domain's refusals as API errors.
pub(crate) fn user_error(e: UserError) -> ApiError {
    if let Some(field) = e.field() {
        return ApiError::validation(field, e.to_string());
    }
    match e {
        UserError::NotRegistered | UserError::Erased => ApiError::not_found("user"),
        other => ApiError::invalid_state(other.to_string()),
    }
}

/// Edit a profile (self or admin).
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = UpdateProfileRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile after the change", body = ProfileResponse),
        (status = 400, description = "Malformed JSON or id"),
        (status = 401, description = "No valid access token"),
        (status = 403, description = "Another user's profile"),
        (status = 404, description = "No such user"),
        (status = 422, description = "`VALIDATION_FAILED`, or a reused Idempotency-Key"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %id, caller = %cmd.caller.user_id))]
pub async fn update_profile(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateProfileRequest>,
) -> ApiResult<Accepted> {
    cmd.caller.require_self_or(id, &[Role::Admin])?;
    let now = cmd.ctx.now;
    state
        .commands
        .execute::<User, _, _>(
            &cmd.ctx,
            id,
            StatusCode::OK,
            |u| {
                u.decide(UserCommand::UpdateProfile {
                    full_name: req.full_name.clone(),
                    phone: req.phone.clone(),
                    now,
                })
                .map_err(user_error)
            },
            |u| {
                let personal = u.personal.known();
                json!({
                    "user_id": id,
                    "full_name": personal.map(|p| &p.full_name),
                    "phone": personal.and_then(|p| p.phone.as_ref()),
                })
            },
        )
        .await
}

/// Change a user's role (admin).
#[utoipa::path(
    put,
    path = "/api/v1/users/{id}/role",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = ChangeRoleRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The role after the change", body = RoleResponse),
        (status = 401, description = "No valid access token"),
        (status = 403, description = "The caller is not an admin"),
        (status = 404, description = "No such user"),
        (status = 409, description = "`INVALID_STATE`: an admin demoting themselves"),
        (status = 422, description = "`VALIDATION_FAILED`: unknown role"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %id, caller = %cmd.caller.user_id, role = %req.role))]
pub async fn change_role(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<ChangeRoleRequest>,
) -> ApiResult<Accepted> {
    cmd.caller.require(&[Role::Admin])?;
    // An admin demoting themselves could leave nobody able to undo it.
    if id == cmd.caller.user_id && req.role != Role::Admin {
        return Err(ApiError::invalid_state(
            "admins cannot change their own role",
        ));
    }
    let now = cmd.ctx.now;
    state
        .commands
        .execute::<User, _, _>(
            &cmd.ctx,
            id,
            StatusCode::OK,
            |u| {
                u.decide(UserCommand::ChangeRole {
                    role: req.role,
                    now,
                })
                .map_err(user_error)
            },
            |u| json!({ "user_id": id, "role": u.role }),
        )
        .await
}

/// Erase a user (self or admin): their personal data is crypto-shredded,
/// their login and sessions are deleted; their bookings stay for accounting.
/// Erasing an erased user is a no-op that finishes any clean-up a failure
/// interrupted.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Erased; the `position` header names the point in the log"),
        (status = 401, description = "No valid access token"),
        (status = 403, description = "Another user"),
        (status = 404, description = "No such user"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %id, caller = %cmd.caller.user_id))]
pub async fn erase(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    cmd.caller.require_self_or(id, &[Role::Admin])?;
    let now = cmd.ctx.now;
    let accepted = state
        .commands
        .execute::<User, _, _>(
            &cmd.ctx,
            id,
            StatusCode::NO_CONTENT,
            |u| match u.status {
                UserStatus::Erased => Ok(vec![]),
                _ => u.decide(UserCommand::Erase { now }).map_err(user_error),
            },
            |_| json!({ "user_id": id }),
        )
        .await?;
    // After the event, so a failure here leaves an erased user whose
    // clean-up a repeated DELETE completes.
    state.sealer.shred(id).await?;
    super::auth::delete_credential(&state.pool, id).await?;
    sqlx::query("DELETE FROM auth_refresh_tokens WHERE user_id = $1")
        .bind(id)
        .execute(&state.pool)
        .await?;
    tracing::info!("user erased");
    Ok(no_content(accepted))
}

/// A 204 carries no body: the position travels in a header instead.
fn no_content(accepted: Accepted) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Some(position) = accepted
        .body
        .get("position")
        .and_then(|p| p.as_str())
        .and_then(|p| p.parse().ok())
    {
        res.headers_mut().insert("position", position);
    }
    if accepted.replayed {
        res.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    res
}
