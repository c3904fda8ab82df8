//! `/auth`: register, login, refresh, logout; and the admin bootstrap.
//!
//! Credentials (the normalised email and an argon2id hash) live in the
//! write side's `auth_credentials` table, never in events; the user's
//! profile and role live in their `user-…` stream. Registration writes the
//! credential row first (its unique email is the guard against duplicate
//! accounts), then appends `UserRegistered`, and removes the row again if the
//! append fails. A row left behind by a crash between the two (a credential
//! without a stream) is recognised as an orphan and reclaimed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use domain::user::{validate_name, User, UserCommand, UserStatus, MAX_NAME_LEN};
use domain::values::{Email, Role};
use domain::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::users::{user_error, RoleName};
use super::AnonymousCommand;
use crate::auth::password::{self, Password};
use crate::auth::refresh::{self, LimitKey, RefreshToken};
use crate::auth::Caller;
use crate::commands::{Accepted, CommandContext};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::Json;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
}

/// The one answer to every failed login, whatever failed.
const BAD_CREDENTIALS: &str = "invalid email or password";

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// At least 12 characters, of at least two kinds (lower case, upper
    /// case, digits, symbols or spaces), and not the email.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    #[schema(example = "Ada Lovelace")]
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
/// are not trusted: a client could pick its own address to dodge limits.
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
    cmd: AnonymousCommand,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<Accepted> {
    let mut errors = Vec::new();
    let email = match Email::parse(&req.email) {
        Ok(email) => Some(email),
        Err(_) => {
            errors.push(FieldError::new("email", "not a valid email address"));
            None
        }
    };
    if let Err(message) = password::check_strength(req.password.expose(), &req.email) {
        errors.push(FieldError::new("password", message));
    }
    if validate_name(&req.full_name).is_none() {
        errors.push(FieldError::new(
            "full_name",
            format!("must be 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let (user_id, accepted) = create_user(
        &state,
        &cmd.ctx,
        email,
        &req.password,
        req.full_name,
        Role::Customer,
    )
    .await?;
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    Ok(accepted)
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
        (status = 429, description = "`RATE_LIMITED`: too many failed logins; see `Retry-After`"),
    )
)]
#[tracing::instrument(skip_all, fields(client_ip = ?ip, user_id = tracing::field::Empty))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let email = Email::parse(&req.email).ok();
    let email_key = LimitKey::email(
        &email
            .as_ref()
            .map_or_else(|| req.email.trim().to_lowercase(), |e| e.to_string()),
    );
    let mut keys = vec![email_key.clone()];
    keys.extend(ip.map(LimitKey::Ip));
    if let Err(wait) = state.login_limiter.check(&keys) {
        metrics::counter!("booking_logins_total", "outcome" => "rate_limited").increment(1);
        return Err(ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }

    let credential = match &email {
        Some(email) => find_credential(&state, email).await?,
        None => None,
    };
    let verified = password::verify(
        &req.password,
        credential.as_ref().map(|c| c.password_hash.clone()),
    )
    .await?;
    let user = match credential {
        Some(c) if verified => Some(
            active_role(&state, c.user_id)
                .await?
                .map(|r| (c.user_id, r)),
        ),
        _ => None,
    };
    let Some(Some((user_id, role))) = user else {
        state.login_limiter.failed(&keys);
        metrics::counter!("booking_logins_total", "outcome" => "failed").increment(1);
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
    };
    state.login_limiter.succeeded(&email_key);
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    metrics::counter!("booking_logins_total", "outcome" => "ok").increment(1);
    let issued = refresh::issue(&state.pool, user_id, state.config.refresh_ttl).await?;
    Ok(axum::Json(token_pair(&state, user_id, role, issued.token)?))
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
    let issued =
        match refresh::rotate(&state.pool, &req.refresh_token, state.config.refresh_ttl).await? {
            Ok(issued) => issued,
            Err(reason) => {
                tracing::info!(%reason, "refresh refused");
                return Err(reason.into());
            }
        };
    let user_id = issued.user_id;
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    let Some(role) = active_role(&state, user_id).await? else {
        refresh::revoke_user(&state.pool, user_id).await?;
        return Err(refresh::RefreshError::Revoked.into());
    };
    Ok(axum::Json(token_pair(&state, user_id, role, issued.token)?))
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
    caller: Caller,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    // Another user's (or an unknown) token is left alone, with the same
    // answer: logging out is idempotent and tells nothing about tokens.
    let revoked =
        refresh::revoke_family_of(&state.pool, &req.refresh_token, caller.user_id).await?;
    tracing::debug!(revoked, "logout");
    Ok(StatusCode::NO_CONTENT)
}

/// Makes sure an admin with this email exists: registers it (with this
/// password) when the email is unknown, or gives the existing account the
/// admin role. An existing account keeps its password. Safe to call on
/// every start-up and from several processes at once.
pub async fn ensure_admin(state: &AppState, email: &str, password: &str) -> Result<Uuid, ApiError> {
    let email = Email::parse(email)
        .map_err(|_| ApiError::validation("email", "not a valid email address"))?;
    let password = Password::new(password);
    password::check_strength(password.expose(), email.as_str())
        .map_err(|m| ApiError::validation("password", m))?;
    let ctx = CommandContext {
        correlation_id: Uuid::now_v7(),
        actor: eventstore::Actor::system("bootstrap"),
        idempotency: None,
        now: Utc::now(),
    };
    for _ in 0..20 {
        if let Some(credential) = find_credential(state, &email).await? {
            let loaded = state.commands.load::<User>(credential.user_id).await?;
            if loaded.state.status == UserStatus::Active {
                if loaded.state.role != Some(Role::Admin) {
                    let now = ctx.now;
                    state
                        .commands
                        .execute::<User, _, _>(
                            &ctx,
                            credential.user_id,
                            StatusCode::OK,
                            |u| {
                                u.decide(UserCommand::ChangeRole {
                                    role: Role::Admin,
                                    now,
                                })
                                .map_err(user_error)
                            },
                            |_| json!({}),
                        )
                        .await?;
                    tracing::info!(user_id = %credential.user_id, "bootstrap: made the admin an admin");
                }
                return Ok(credential.user_id);
            }
            // Being registered right now, or an orphan: `create_user` tells.
        }
        match create_user(
            state,
            &ctx,
            email.clone(),
            &password,
            "Administrator".into(),
            Role::Admin,
        )
        .await
        {
            Ok((user_id, _)) => {
                tracing::info!(%user_id, "bootstrap: registered the admin");
                return Ok(user_id);
            }
            Err(ApiError::Conflict {
                code: "EMAIL_TAKEN",
                ..
            }) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::Unavailable(
        "the admin account is being created by someone else; retry".into(),
    ))
}

/// Writes the credential row, then the `UserRegistered` event; undoes the
/// row when the event cannot be appended.
async fn create_user(
    state: &AppState,
    ctx: &CommandContext,
    email: Email,
    password: &Password,
    full_name: String,
    role: Role,
) -> ApiResult<(Uuid, Accepted)> {
    // Cheap early answer before the expensive hash; the insert below is
    // what actually guards uniqueness.
    if let Some(existing) = find_credential(state, &email).await? {
        if !is_orphan(state, &existing).await? {
            return Err(email_taken());
        }
    }
    let hash = password::hash(password).await?;
    let user_id = Uuid::now_v7();
    insert_credential(state, &email, user_id, &hash).await?;
    let now = ctx.now;
    let result = state
        .commands
        .execute::<User, _, _>(
            ctx,
            user_id,
            StatusCode::CREATED,
            |u| {
                u.decide(UserCommand::Register {
                    user_id,
                    email: email.clone(),
                    full_name: full_name.clone(),
                    role,
                    now,
                })
                .map_err(user_error)
            },
            |_| json!({ "user_id": user_id }),
        )
        .await;
    match result {
        // A replay is the answer of a twin request that registered first.
        Ok(accepted) if !accepted.replayed => Ok((user_id, accepted)),
        other => {
            if let Err(e) = delete_credential(&state.pool, user_id).await {
                tracing::error!(%user_id, error = %e, "could not undo a credential row");
            }
            other.map(|a| (user_id, a))
        }
    }
}

fn email_taken() -> ApiError {
    ApiError::Conflict {
        code: "EMAIL_TAKEN",
        detail: "this email is registered already".into(),
    }
}

struct Credential {
    user_id: Uuid,
    password_hash: String,
    /// Old enough that a registration in progress would have finished.
    old: bool,
}

/// How long a credential row may exist without its user stream before it
/// counts as left behind by a crash.
const ORPHAN_AFTER_SECS: f64 = 60.0;

async fn find_credential(state: &AppState, email: &Email) -> ApiResult<Option<Credential>> {
    let row: Option<(Uuid, String, bool)> = sqlx::query_as(
        "SELECT user_id, password_hash, created_at < now() - make_interval(secs => $2) \
         FROM auth_credentials WHERE email = $1",
    )
    .bind(email.as_str())
    .bind(ORPHAN_AFTER_SECS)
    .fetch_optional(&state.pool)
    .await?;
    Ok(row.map(|(user_id, password_hash, old)| Credential {
        user_id,
        password_hash,
        old,
    }))
}

/// A credential row left behind by a crash: old, and without its stream.
async fn is_orphan(state: &AppState, credential: &Credential) -> ApiResult<bool> {
    Ok(credential.old
        && state
            .commands
            .load::<User>(credential.user_id)
            .await?
            .version
            == 0)
}

async fn insert_credential(
    state: &AppState,
    email: &Email,
    user_id: Uuid,
    password_hash: &str,
) -> ApiResult<()> {
    for _ in 0..3 {
        let inserted = sqlx::query(
            "INSERT INTO auth_credentials (email, user_id, password_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(email.as_str())
        .bind(user_id)
        .bind(password_hash)
        .execute(&state.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(());
        }
        let existing = find_credential(state, email).await?;
        let orphan = match &existing {
            Some(c) => is_orphan(state, c).await?,
            None => false,
        };
        match existing {
            Some(c) if orphan => {
                tracing::warn!(orphan = %c.user_id, "reclaiming a credential row without a user");
                sqlx::query("DELETE FROM auth_credentials WHERE email = $1 AND user_id = $2")
                    .bind(email.as_str())
                    .bind(c.user_id)
                    .execute(&state.pool)
                    .await?;
            }
            Some(_) => return Err(email_taken()),
            // Deleted in between (an erasure or an undo): try again.
            None => {}
        }
    }
    Err(email_taken())
}

pub(crate) async fn delete_credential(pool: &sqlx::PgPool, user_id: Uuid) -> ApiResult<()> {
    sqlx::query("DELETE FROM auth_credentials WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The user's role if they may log in (registered and not erased).
async fn active_role(state: &AppState, user_id: Uuid) -> ApiResult<Option<Role>> {
    let user = state.commands.load::<User>(user_id).await?.state;
    Ok(match (user.status, user.role) {
        (UserStatus::Active, Some(role)) => Some(role),
        _ => None,
    })
}

fn token_pair(
    state: &AppState,
    user_id: Uuid,
    role: Role,
    refresh_token: RefreshToken,
) -> ApiResult<TokenResponse> {
    Ok(TokenResponse {
        access_token: state.tokens.issue(user_id, role)?,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl.as_secs(),
        user_id,
        role,
    })
}
