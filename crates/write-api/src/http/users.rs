//! `/users`: profile, role, suspension, erasure.
//!
//! A customer may only touch their own account (403 otherwise, before
//! anything is read, so ids of other users are not confirmed); an admin may
//! touch any, and learns 404 for ids that are not users.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post, put};
use axum::Router;
use domain::values::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Command;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::reply::Reply;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/{id}", patch(update_profile).delete(erase))
        .route("/users/{id}/role", put(change_role))
        .route("/users/{id}/suspend", post(suspend))
        .route("/users/{id}/reactivate", post(reactivate))
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
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(example = "Ada King", min_length = 1, max_length = 100)]
    pub full_name: Option<String>,
    /// Digits with an optional leading `+`, spaces, dashes, dots and
    /// parentheses; 6 to 15 digits. Empty removes the number.
    #[schema(example = "+44 20 7946 0958", max_length = 40)]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    /// Why: 1 to 500 characters, kept in the user's stream for the audit.
    #[schema(
        example = "chargebacks under investigation",
        min_length = 1,
        max_length = 500
    )]
    pub reason: String,
}

/// An account's status, as the wire names it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountStatus {
    Active,
    Suspended,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    pub user_id: Uuid,
    pub status: AccountStatus,
    pub position: String,
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
) -> ApiResult<Reply> {
    let outcome = state
        .update_profile(&cmd.caller, cmd.ctx, id, req.full_name, req.phone)
        .await?;
    Ok(Reply::ok(outcome))
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
) -> ApiResult<Reply> {
    let outcome = state
        .change_role(&cmd.caller, cmd.ctx, id, req.role)
        .await?;
    Ok(Reply::ok(outcome))
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
) -> ApiResult<Reply> {
    let outcome = state.erase_user(&cmd.caller, cmd.ctx, id).await?;
    Ok(Reply::new(StatusCode::NO_CONTENT, outcome))
}

/// Suspend a user (admin): their sessions end at once (access and refresh
/// tokens), login answers 403 `ACCOUNT_SUSPENDED`, and so every command of
/// theirs is refused. Suspending a suspended user changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/suspend",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = SuspendRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Suspended", body = StatusResponse),
        (status = 400, description = "Malformed JSON or id"),
        (status = 401, description = "No valid access token"),
        (status = 403, description = "The caller is not an admin"),
        (status = 404, description = "No such user (or an erased one)"),
        (status = 409, description = "`INVALID_STATE`: an admin suspending themselves"),
        (status = 422, description = "`VALIDATION_FAILED`: no reason, or one too long"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %id, caller = %cmd.caller.user_id))]
pub async fn suspend(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
    Json(req): Json<SuspendRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .suspend_user(&cmd.caller, cmd.ctx, id, req.reason)
        .await?;
    Ok(Reply::ok(outcome))
}

/// Reactivate a suspended user (admin): they may log in again. Reactivating
/// an active user changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/reactivate",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active", body = StatusResponse),
        (status = 400, description = "Malformed id"),
        (status = 401, description = "No valid access token"),
        (status = 403, description = "The caller is not an admin"),
        (status = 404, description = "No such user (or an erased one)"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %id, caller = %cmd.caller.user_id))]
pub async fn reactivate(
    State(state): State<AppState>,
    cmd: Command,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply> {
    let outcome = state.reactivate_user(&cmd.caller, cmd.ctx, id).await?;
    Ok(Reply::ok(outcome))
}
