//! `/auth`: register, login, refresh, logout, password change. The accounts' rules live in
//! the application (`application::accounts`); tokens and passwords in the
//! `auth` crate.

use std::net::{IpAddr, SocketAddr};

use application::accounts::Session;
use auth::password::Password;
use auth::refresh::RefreshToken;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use domain::values::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::users::RoleName;
use super::{AnonymousCommand, Authenticated, LoggingOut};
use crate::error::ApiResult;
use crate::extract::Json;
use crate::reply::Reply;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/auth/password", post(change_password))
        .route("/auth/password-reset", post(request_password_reset))
        .route("/auth/password-reset/confirm", post(confirm_password_reset))
        .route("/auth/verify-email", post(verify_email))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// An email address (up to 254 characters).
    #[schema(example = "ada@example.com", min_length = 3, max_length = 254)]
    pub email: String,
    /// 12 to 1,024 characters, of at least two kinds (lower case, upper
    /// case, digits, symbols or spaces), and not the email.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 1024)]
    pub password: Password,
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(example = "Ada Lovelace", min_length = 1, max_length = 100)]
    pub full_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub user_id: Uuid,
    /// The point in the log the registration reached.
    pub position: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: Password,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    #[schema(value_type = String)]
    pub refresh_token: RefreshToken,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password the account has now.
    #[schema(value_type = String, format = Password)]
    pub current_password: Password,
    /// 12 to 1,024 characters, of at least two kinds (lower case, upper
    /// case, digits, symbols or spaces), not the email, and not the current
    /// password.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 1024)]
    pub new_password: Password,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The account's email address.
    #[schema(example = "ada@example.com", min_length = 3, max_length = 254)]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPasswordResetRequest {
    /// The token from the reset mail.
    pub token: String,
    /// The registration rules apply.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 1024)]
    pub new_password: Password,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The token from the welcome mail.
    pub token: String,
}

/// A fresh token pair.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// A short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchange it once at `/auth/refresh`.
    #[schema(value_type = String)]
    pub refresh_token: RefreshToken,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user_id: Uuid,
    #[schema(value_type = RoleName)]
    pub role: Role,
}

impl From<Session> for TokenResponse {
    fn from(s: Session) -> Self {
        Self {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            token_type: "Bearer",
            expires_in: s.expires_in,
            user_id: s.user_id,
            role: s.role,
        }
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token)
            .field("expires_in", &self.expires_in)
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .finish()
    }
}

/// The client's address, when the server was started with connect info
/// (`into_make_service_with_connect_info::<SocketAddr>`). Forwarding headers
/// are read only from trusted proxies, at the edge, which writes the client
/// it finds back into the connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// Register a customer account.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = RegisterResponse),
        (status = 400, description = "Malformed JSON"),
        (status = 409, description = "`EMAIL_TAKEN`: the email is registered already"),
        (status = 413, description = "Body over 64 KiB"),
        (status = 422, description = "`VALIDATION_FAILED`, with the invalid fields"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    cmd: AnonymousCommand,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<Reply> {
    let outcome = state
        .register(cmd.ctx, &req.email, &req.password, req.full_name, ip)
        .await?;
    Ok(Reply::created(outcome))
}

/// Log in: a token pair for an email and password.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "`UNAUTHORIZED`: unknown email or wrong password"),
        (status = 403, description = "`ACCOUNT_SUSPENDED`: the password is right but an admin suspended the account"),
        (status = 429, description = "`RATE_LIMITED`: too many failed logins; see `Retry-After`"),
    )
)]
#[tracing::instrument(skip_all, fields(client_ip = ?ip, user_id = tracing::field::Empty))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let session = state.login(&req.email, &req.password, ip).await?;
    Ok(axum::Json(session.into()))
}

/// Exchange a refresh token for a new pair. The presented token is spent;
/// presenting it again revokes its whole family.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenResponse),
        (status = 401, description = "`UNAUTHORIZED`: unknown, expired, revoked or reused token"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let session = state.refresh(&req.refresh_token).await?;
    Ok(axum::Json(session.into()))
}

/// Log out: revokes the refresh token's family (if it is the caller's).
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body = RefreshRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "`UNAUTHORIZED`: no valid access token"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn logout(
    State(state): State<AppState>,
    LoggingOut(caller): LoggingOut,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    state.logout(&caller, &req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the caller's password. Every other session of the caller ends
/// (their refresh tokens are revoked, their access tokens refused at once);
/// the session of the token that asked stays valid.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "auth",
    request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; the caller's other sessions have ended"),
        (status = 400, description = "Malformed JSON"),
        (status = 401, description = "`UNAUTHORIZED`: no valid access token"),
        (status = 409, description = "`CONFLICT`: the password was changed meanwhile"),
        (status = 422, description = "`VALIDATION_FAILED`: `current_password` is wrong (nothing changed), or `new_password` breaks the registration rules"),
        (status = 429, description = "`RATE_LIMITED`: too many wrong passwords; see `Retry-After`"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn change_password(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    state
        .change_password(&caller, &req.current_password, &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask for a password-reset mail. The answer is the same whether or not
/// the email has an account; a single-use token that expires (one hour by
/// default) is mailed when it does. A newer request supersedes older ones.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset",
    tag = "auth",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted; a mail is on its way if the account exists"),
        (status = 400, description = "Malformed JSON"),
        (status = 422, description = "`VALIDATION_FAILED`: not an email address"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn request_password_reset(
    State(state): State<AppState>,
    cmd: AnonymousCommand,
    Json(req): Json<PasswordResetRequest>,
) -> ApiResult<StatusCode> {
    state.request_password_reset(cmd.ctx, &req.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with a reset token. Every session of the account
/// ends; log in with the new password.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/confirm",
    tag = "auth",
    request_body = ConfirmPasswordResetRequest,
    responses(
        (status = 204, description = "The password is changed; every session has ended"),
        (status = 400, description = "`INVALID_TOKEN`: forged, spent, superseded or expired; or malformed JSON"),
        (status = 422, description = "`VALIDATION_FAILED`: `new_password` breaks the registration rules (the token stays good)"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    cmd: AnonymousCommand,
    Json(req): Json<ConfirmPasswordResetRequest>,
) -> ApiResult<StatusCode> {
    state
        .confirm_password_reset(cmd.ctx, &req.token, &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verify the account's email with the token mailed at registration.
/// Unverified accounts may log in and book; `me.emailVerified` tells.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email",
    tag = "auth",
    request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "Verified (or verified already)"),
        (status = 400, description = "`INVALID_TOKEN`: forged, or the account is gone; or malformed JSON"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn verify_email(
    State(state): State<AppState>,
    cmd: AnonymousCommand,
    Json(req): Json<VerifyEmailRequest>,
) -> ApiResult<StatusCode> {
    state.verify_email(cmd.ctx, &req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}
