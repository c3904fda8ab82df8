//! Around every route: request ids, traces, HTTP metrics, the panic guard,
//! problem answers for unknown routes and wrong methods; and the routes
//! every role serves (health, metrics, the OpenAPI document).

use std::any::Any;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use write_api::ApiError;

use super::*;

/// What surrounds the routes: request limits, the origins browsers may
/// call from, and whether `/metrics` is served.
#[derive(Clone)]
pub struct Edge {
    pub limits: super::limits::RateLimits,
    /// Origins allowed cross-origin; none when empty (no CORS headers).
    pub cors: Vec<HeaderValue>,
    pub metrics: bool,
}

impl Edge {
    /// No limits, no CORS, metrics on: for tests and load tests.
    pub fn open(tokens: auth::TokenKeys) -> Self {
        Self {
            limits: super::limits::RateLimits::new(None, Default::default(), tokens),
            cors: Vec::new(),
            metrics: true,
        }
    }
}

/// Health, metrics (unless turned off) and the OpenAPI document: every
/// role serves them.
pub(super) fn ops_router(pool: PgPool, metrics: bool, relay: Option<relay::Readiness>) -> Router {
    let mut routes = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/api/v1/openapi.json", get(openapi));
    if metrics {
        routes = routes.route("/metrics", get(render_metrics));
    }
    routes.with_state(Ops {
        pool,
        metrics: prometheus(),
        relay,
    })
}

/// Headers every answer carries: no sniffing, no framing, no referrer, and
/// (unless the page says otherwise) no content from anywhere. Answers are
/// never cached (they carry tokens and personal data).
fn security_headers() -> [(header::HeaderName, HeaderValue); 5] {
    [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// The middleware every route gets, and the answers for unknown routes and
/// wrong methods. Call it once all routes are merged.
pub fn with_edge(routes: Router, edge: &Edge) -> Router {
    let mut routes = routes
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found);
    // After the fallbacks, so unknown routes and wrong methods get them too.
    for (name, value) in security_headers() {
        routes = routes.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    if !edge.cors.is_empty() {
        routes = routes.layer(cors(&edge.cors));
    }
    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(
                header::HeaderName::from_static(REQUEST_ID),
                MakeRequestUuidV7,
            ))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let request_id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "http",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %request_id,
                )
            }))
            .layer(PropagateRequestIdLayer::new(
                header::HeaderName::from_static(REQUEST_ID),
            ))
            .layer(middleware::from_fn(http_metrics))
            .layer(CatchPanicLayer::custom(panic_response)),
    )
}

/// Request ids are UUID v7, so they sort by time like every other id here.
#[derive(Debug, Clone, Copy)]
struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

#[derive(Clone)]
struct Ops {
    pool: PgPool,
    metrics: PrometheusHandle,
    /// The relay role is ready only while its broker answers.
    relay: Option<relay::Readiness>,
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(ops): State<Ops>) -> Response {
    if ops.relay.as_ref().is_some_and(|r| !r.is_ready()) {
        return ApiError::Unavailable("the Kafka broker is not reachable".into()).into_response();
    }
    let ping = sqlx::query("SELECT 1").execute(&ops.pool);
    match tokio::time::timeout(READY_TIMEOUT, ping).await {
        Ok(Ok(_)) => Json(json!({"status": "ok"})).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database failed");
            ApiError::Unavailable("the database is not available".into()).into_response()
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer in time");
            ApiError::Unavailable("the database did not answer in time".into()).into_response()
        }
    }
}

async fn render_metrics(State(ops): State<Ops>) -> Response {
    // Projection lag is read from the database at scrape time; a scrape
    // still answers (with the last figures) when that read fails.
    match tokio::time::timeout(READY_TIMEOUT, projections::export_lag(&ops.pool)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot read projection lag"),
        Err(_) => tracing::warn!("projection lag: the database did not answer in time"),
    }
    ops.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        ops.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(openapi_json).clone();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The process's Prometheus recorder, installed on first use.
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                    .expect("the buckets are not empty")
            };
            match builder().install_recorder() {
                Ok(handle) => handle,
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed: /metrics will be empty");
                    builder().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// `http_requests_total` and `http_request_duration_seconds`, by method,
/// matched route (`unmatched` for unknown ones) and status.
async fn http_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = match *req.method() {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::OPTIONS => req.method().as_str().to_owned(),
        _ => "OTHER".to_owned(),
    };
    let res = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", res.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    res
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    let status = StatusCode::METHOD_NOT_ALLOWED;
    let body = json!({
        "type": "urn:problem:booking:method-not-allowed",
        "title": status.canonical_reason(),
        "status": status.as_u16(),
        "detail": format!("{method} is not allowed on {}", uri.path()),
        "code": "METHOD_NOT_ALLOWED",
    });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(std::io::Error::other(format!(
        "handler panicked: {message}"
    )))
    .into_response()
}

/// Cross-origin calls from `origins`: the APIs' methods and headers, and the
/// answer headers a client reads.
fn cors(origins: &[HeaderValue]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-read-after"),
            header::HeaderName::from_static(REQUEST_ID),
        ])
        .expose_headers([
            header::HeaderName::from_static("position"),
            header::HeaderName::from_static("idempotent-replayed"),
            header::HeaderName::from_static("ratelimit"),
            header::HeaderName::from_static("ratelimit-policy"),
            header::RETRY_AFTER,
            header::HeaderName::from_static(REQUEST_ID),
        ])
        .max_age(Duration::from_secs(600))
}
