//! `/audit`: the auditor's reads of the log (auditors and admins), the
//! public key digests are signed with (anyone), and the record of audit
//! reads (admins). Every audit read is recorded before it is answered.

use ::auth::Caller;
use audit::{AsOf, AuditError, LogQuery, SignedDigest};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use domain::values::Role;
use eventstore::{Position, StreamId};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The media type of a streamed export.
pub const NDJSON: &str = "application/x-ndjson";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/streams/{stream_id}", get(stream))
        .route("/audit/streams/{stream_id}/state", get(state_at))
        .route("/audit/events", get(events))
        .route("/audit/verify", get(verify))
        .route("/audit/digest", get(digest))
        .route("/audit/digest/verify", post(verify_digest))
        .route("/audit/public-key", get(public_key))
        .route("/audit/reads", get(reads))
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Invalid(detail) => ApiError::BadRequest {
                code: "INVALID_QUERY",
                detail,
            },
            AuditError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            AuditError::Store(e) => ApiError::Internal(Box::new(e)),
            AuditError::Db(e) => ApiError::Unavailable(e.to_string()),
        }
    }
}

/// Lets auditors and admins through, and records what they read.
async fn audited(state: &AppState, caller: &Caller, action: &str, target: &str) -> ApiResult<()> {
    caller.require(&[Role::Auditor, Role::Admin])?;
    state
        .audit
        .record(
            &format!("user:{}", caller.user_id),
            Some(caller.role.as_str()),
            action,
            target,
        )
        .await?;
    Ok(())
}

/// A page size within `1..=1000`, 100 by default.
fn limit(limit: Option<u32>) -> ApiResult<usize> {
    match limit {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n as usize),
        Some(n) => Err(ApiError::BadRequest {
            code: "INVALID_QUERY",
            detail: format!("limit must be between 1 and 1000, not {n}"),
        }),
    }
}

fn stream_id(s: &str) -> ApiResult<StreamId> {
    StreamId::parse(s).map_err(|e| ApiError::BadRequest {
        code: "INVALID_QUERY",
        detail: e.to_string(),
    })
}

fn position(s: Option<&str>) -> ApiResult<Option<Position>> {
    s.map(str::parse::<Position>)
        .transpose()
        .map_err(|e| ApiError::BadRequest {
            code: "INVALID_QUERY",
            detail: e.to_string(),
        })
}

/// A stream, `<category>-<id>`, e.g. `booking-<uuid>`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct StreamPath {
    #[param(pattern = "^[a-z_]+-[!-~]+$", max_length = 200)]
    pub stream_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionRange {
    /// The first version to show (default 1).
    #[param(minimum = 1)]
    pub from_version: Option<u64>,
    /// The last version to show (default: the newest).
    #[param(minimum = 1)]
    pub to_version: Option<u64>,
}

/// A stream's events with all their metadata and hashes.
#[utoipa::path(get, path = "/api/v1/audit/streams/{stream_id}", tag = "audit",
    params(StreamPath, VersionRange),
    responses((status = 200, description = "`{stream_id, events: [{event_id, type, schema_version, stream_version, position, recorded_at, actor, correlation_id, causation_id, command_id, data, hash, prev_hash}]}`; personal data opened, or `\"erased\"`"),
              (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(stream): Path<String>,
    Query(range): Query<VersionRange>,
) -> ApiResult<Response> {
    let stream = stream_id(&stream)?;
    let versions = [range.from_version, range.to_version];
    if versions.contains(&Some(0)) {
        return Err(ApiError::BadRequest {
            code: "INVALID_QUERY",
            detail: "versions start at 1".into(),
        });
    }
    // As the schema says: versions are stored as 63-bit integers.
    if versions.iter().flatten().any(|&v| v > i64::MAX as u64) {
        return Err(ApiError::BadRequest {
            code: "INVALID_QUERY",
            detail: "versions are at most 9223372036854775807".into(),
        });
    }
    audited(&state, &caller, "stream", stream.as_str()).await?;
    let events = state
        .audit
        .stream(&stream, range.from_version.unwrap_or(1), range.to_version)
        .await?;
    Ok(
        axum::Json(serde_json::json!({ "stream_id": stream.as_str(), "events": events }))
            .into_response(),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// An RFC 3339 time, a position (as commands answer it) or a stream
    /// version; now when absent.
    pub as_of: Option<String>,
}

/// The aggregate as it stood at a moment, folded with the domain's own
/// rules.
#[utoipa::path(get, path = "/api/v1/audit/streams/{stream_id}/state", tag = "audit",
    params(StreamPath, AsOfQuery),
    responses((status = 200, description = "`{stream_id, category, version, position, recorded_at, current_version, state}`"),
              (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn state_at(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(stream): Path<String>,
    Query(q): Query<AsOfQuery>,
) -> ApiResult<Response> {
    let stream = stream_id(&stream)?;
    let as_of = q
        .as_of
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(str::parse::<AsOf>)
        .transpose()
        .map_err(|detail| ApiError::BadRequest {
            code: "INVALID_QUERY",
            detail,
        })?;
    let target = format!("{stream} as_of={}", q.as_of.as_deref().unwrap_or("now"));
    audited(&state, &caller, "state", &target).await?;
    let at = state.audit.state(&stream, as_of).await?;
    Ok(axum::Json(at).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this position (the `next` of the previous page).
    #[param(pattern = "^[0-9a-fA-F]{32}$")]
    pub after: Option<String>,
    /// Events per JSON page (1 to 1000, default 100); ignored by an NDJSON
    /// export, which runs to the end of the log.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// A stream category: `user`, `flight`, `seats`, `booking`, `payment`.
    #[param(pattern = "^[a-z_]*$")]
    pub category: Option<String>,
    /// One stream.
    #[param(pattern = "^[a-z_]+-[!-~]+$", max_length = 200)]
    pub stream: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
}

/// The global log: JSON pages with a `next` cursor, or the whole rest of
/// the log streamed as NDJSON when `Accept: application/x-ndjson`.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit",
    params(EventsQuery),
    responses((status = 200, description = "`{events, next}`, or NDJSON envelopes `{event_id, type, version, stream_id, stream_version, position, recorded_at, correlation_id, causation_id, command_id, actor, data, hash, prev_hash}` (stored form: personal data sealed)"),
              (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Response> {
    if let Some(c) = &q.category {
        if !c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(ApiError::BadRequest {
                code: "INVALID_QUERY",
                detail: "category is a stream category such as booking or payment".into(),
            });
        }
    }
    let query = LogQuery {
        after: position(q.after.as_deref())?,
        limit: limit(q.limit)?,
        category: q.category.clone(),
        stream: q.stream.as_deref().map(stream_id).transpose()?,
        from: q.from,
        to: q.to,
    };
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(NDJSON));
    let target = format!(
        "after={} category={} stream={}",
        q.after.as_deref().unwrap_or("start"),
        q.category.as_deref().unwrap_or("*"),
        q.stream.as_deref().unwrap_or("*")
    );
    audited(
        &state,
        &caller,
        if ndjson { "export" } else { "events" },
        &target,
    )
    .await?;
    if ndjson {
        let body = state.audit.export(query).map_err(|e| {
            tracing::warn!(error = %e, "the export stopped");
            std::io::Error::other(e.to_string())
        });
        let mut res = Body::from_stream(body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
        return Ok(res);
    }
    Ok(axum::Json(state.audit.events(&query).await?).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// One stream; the whole log when absent.
    #[param(pattern = "^[a-z_]+-[!-~]+$", max_length = 200)]
    pub stream_id: Option<String>,
}

/// Checks the hash chains, of one stream or of the whole log (a snapshot
/// read: writers do not wait).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    params(VerifyQuery),
    responses((status = 200, description = "`{ok, streams_checked, events_checked, first_bad?: {stream_id, version, event_id, reason}}`"),
              (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<VerifyQuery>,
) -> ApiResult<Response> {
    let stream = q.stream_id.as_deref().map(stream_id).transpose()?;
    audited(
        &state,
        &caller,
        "verify",
        stream.as_ref().map_or("*", |s| s.as_str()),
    )
    .await?;
    Ok(axum::Json(state.audit.verify(stream.as_ref()).await?).into_response())
}

/// A signed digest of the whole log up to its newest event: save it, and
/// post it back later to prove the log still holds what it covered.
#[utoipa::path(get, path = "/api/v1/audit/digest", tag = "audit",
    responses((status = 200, description = "`{format, position, events, chain, checkpoint_every, checkpoints, taken_at, public_key, signature}`"),
              (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn digest(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Response> {
    audited(&state, &caller, "digest", "*").await?;
    Ok(axum::Json(state.audit.digest().await?).into_response())
}

/// A saved digest, as `GET /audit/digest` answered it.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct DigestBody {
    pub format: String,
    pub position: Option<String>,
    pub events: u64,
    pub chain: String,
    #[schema(minimum = 1)]
    pub checkpoint_every: u64,
    pub checkpoints: Vec<CheckpointBody>,
    pub taken_at: DateTime<Utc>,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CheckpointBody {
    pub events: u64,
    pub position: String,
    pub chain: String,
}

/// Proves that today's log still contains exactly the events a saved
/// digest covered, or names the first difference. Post the digest as it
/// was answered: its counts are integers without a fraction (`4.0` is
/// refused with 422).
#[utoipa::path(post, path = "/api/v1/audit/digest/verify", tag = "audit",
    request_body = DigestBody,
    responses((status = 200, description = "`{ok, signature_valid, signed_by_this_engine, events_covered, events_now, first_difference?: {from_event, to_event, agreed_up_to, reason, event?}}`"),
              (status = 400), (status = 401), (status = 403), (status = 422)),
    security(("bearer" = [])))]
pub async fn verify_digest(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Json(saved): Json<SignedDigest>,
) -> ApiResult<Response> {
    // The engine counts in 63 bits, as the document says.
    let counts = [
        ("events", saved.digest.events),
        ("checkpoint_every", saved.digest.checkpoint_every),
    ]
    .into_iter()
    .chain(
        saved
            .digest
            .checkpoints
            .iter()
            .map(|c| ("checkpoints.events", c.events)),
    );
    if saved.digest.checkpoint_every == 0 {
        return Err(ApiError::Validation(vec![application::FieldError::new(
            "checkpoint_every",
            "must be at least 1",
        )]));
    }
    for (field, n) in counts {
        if n > i64::MAX as u64 {
            return Err(ApiError::Validation(vec![application::FieldError::new(
                field,
                "must be at most 9223372036854775807",
            )]));
        }
    }
    let target = saved
        .digest
        .position
        .clone()
        .unwrap_or_else(|| "empty".into());
    audited(&state, &caller, "digest_verify", &target).await?;
    Ok(axum::Json(state.audit.verify_digest(&saved).await?).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The 32-byte public key, hex.
    pub public_key: String,
}

/// The key digests are signed with.
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = PublicKey)))]
pub async fn public_key(State(state): State<AppState>) -> axum::Json<PublicKey> {
    axum::Json(PublicKey {
        algorithm: "Ed25519",
        public_key: state.audit.public_key_hex(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadsQuery {
    /// Reads older than this id (the last `id` of the previous page).
    pub before: Option<i64>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Who read what of the audit log, newest first (admins).
#[utoipa::path(get, path = "/api/v1/audit/reads", tag = "audit",
    params(ReadsQuery),
    responses((status = 200, description = "`{reads: [{id, at, actor, role, action, target}]}`"),
              (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn reads(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<ReadsQuery>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let reads = state.audit.reads(q.before, limit(q.limit)?).await?;
    Ok(axum::Json(serde_json::json!({ "reads": reads })).into_response())
}
