//! `booking serve`: the engine as one HTTP server.
//!
//! [`Application::build`] does everything that can fail at start-up
//! (connect, migrate, bootstrap the admin, bind the port) so that a running
//! [`Application`] only has to serve. Tests build it on port 0 and read
//! [`Application::port`].
//!
//! One router answers on one port:
//! - `/api/v1/...`: the REST commands ([`write_api::router`]);
//! - `/api/v1/openapi.json`: their OpenAPI document;
//! - `/graphql` (queries, GraphiQL) and `/graphql/ws` (subscriptions): the
//!   read side ([`read_api::router`]);
//! - `/health/live`, `/health/ready`: liveness, and readiness (the database
//!   answers `SELECT 1` within [`READY_TIMEOUT`]);
//! - `/metrics`: Prometheus text.
//!
//! While it serves, the projectors ([`projections::all`]) follow the log
//! into the read models GraphQL reads, and stop with the server.
//!
//! Around every route: a request id (`x-request-id`, a UUID v7 unless the
//! client sent one, echoed in the response), a trace span naming it, HTTP
//! metrics, and a panic guard answering a problem document. Unknown routes
//! and wrong methods are problem documents too.

use std::any::Any;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use application::{Services, Settings};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use eventstore::{EventStore, PgEventStore, Sealer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use write_api::{ApiError, AppState};

/// `/health/ready` answers 503 when the database takes longer than this.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// After the shutdown signal, open requests get this long to finish before
/// their connections are closed (under the 10 s a container runtime waits
/// before it kills).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);
/// How long closing the database pool may take at the very end.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_ID: &str = "x-request-id";
/// Buckets of every `*_seconds` histogram, from 0.5 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A value that must never be printed: its `Debug` and `Display` say `<secret>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

/// What one `booking serve` process does. One machine runs `all`; past one
/// machine, API processes scale behind a load balancer and a separate
/// process follows the log into the read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// REST, GraphQL, the projectors and the sagas.
    #[default]
    All,
    /// REST and GraphQL only.
    Api,
    /// The projectors only (with health and metrics on the port).
    Projections,
    /// The sagas only: the fulfilment process managers and their deadlines
    /// (with health and metrics on the port).
    Sagas,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn runs_projections(self) -> bool {
        matches!(self, Role::All | Role::Projections)
    }

    pub fn runs_sagas(self) -> bool {
        matches!(self, Role::All | Role::Sagas)
    }
}

/// Settings of `booking serve`, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct AppConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "BOOKING_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Key that signs access tokens; every process of one deployment needs
    /// the same. Unset, a random one is made at start: tokens then die with
    /// the process and work in no other.
    #[arg(long, env = "BOOKING_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// Seconds seats stay held for an unpaid booking.
    #[arg(long, env = "BOOKING_HOLD_TTL_SECS", default_value_t = 600)]
    pub hold_ttl_secs: u64,
    /// With --admin-password: make sure this admin account exists at start.
    #[arg(long, env = "BOOKING_ADMIN_EMAIL", requires = "admin_password")]
    pub admin_email: Option<String>,
    /// The bootstrap admin's password (used only when the account is new).
    #[arg(
        long,
        env = "BOOKING_ADMIN_PASSWORD",
        hide_env_values = true,
        requires = "admin_email"
    )]
    pub admin_password: Option<Secret>,
    /// Most database connections the API and the sagas share (the
    /// projectors have one each besides).
    #[arg(long, env = "BOOKING_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,
    /// Seconds a submitted payment may take before the booking gives up on
    /// it (PAYMENT_FAILED; a capture that arrives later is refunded).
    #[arg(long, env = "BOOKING_PAYMENT_TIMEOUT_SECS", default_value_t = 600)]
    pub payment_timeout_secs: u64,
    /// Tax contained in fares, as a fraction, for invoices (0.20 = 20 %).
    #[arg(long, env = "BOOKING_TAX_RATE", default_value = "0")]
    pub tax_rate: rust_decimal::Decimal,
    /// Delay of every simulated payment provider call, in milliseconds.
    #[arg(long, env = "BOOKING_GATEWAY_LATENCY_MS", default_value_t = 0)]
    pub gateway_latency_ms: u64,
    /// What this process does: everything, the APIs, the projectors, or
    /// the sagas.
    #[arg(long, env = "BOOKING_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,
    /// Whether a role that runs the sagas does: the read benchmark turns
    /// them off to measure the read side alone.
    #[arg(skip = true)]
    pub sagas_enabled: bool,
    /// The PostgreSQL to use: `booking serve` fills it in from DATABASE_URL
    /// or the embedded server.
    #[arg(skip)]
    pub database_url: Secret,
}

impl AppConfig {
    /// The defaults, on this database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            hold_ttl_secs: 600,
            admin_email: None,
            admin_password: None,
            db_max_connections: 32,
            payment_timeout_secs: 600,
            tax_rate: rust_decimal::Decimal::ZERO,
            gateway_latency_ms: 0,
            role: Role::All,
            sagas_enabled: true,
            database_url: Secret::new(database_url),
        }
    }

    fn settings(&self) -> Settings {
        let secret = match &self.jwt_secret {
            Some(s) if !s.expose().is_empty() => {
                if s.expose().len() < 32 {
                    tracing::warn!("BOOKING_JWT_SECRET is shorter than 32 bytes: use a longer one");
                }
                s.expose().as_bytes().to_vec()
            }
            _ => {
                tracing::warn!(
                    "BOOKING_JWT_SECRET is not set: using a random secret; access tokens \
                     will not survive a restart nor work in another process"
                );
                rand::random::<[u8; 32]>().to_vec()
            }
        };
        let mut settings = Settings::with_secret(secret);
        settings.hold_ttl = Duration::from_secs(self.hold_ttl_secs);
        settings
    }

    fn saga_config(&self) -> sagas::SagaConfig {
        sagas::SagaConfig {
            payment_timeout: Duration::from_secs(self.payment_timeout_secs),
            tax_rate: self.tax_rate,
            ..sagas::SagaConfig::default()
        }
    }
}

/// The engine, connected, migrated and bound; [`Application::run_until_stopped`] serves it.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    pool: PgPool,
    projection_pool: PgPool,
    store: Arc<dyn EventStore>,
    projection_store: Arc<dyn EventStore>,
    sealer: Sealer,
    sagas: sagas::Sagas,
    role: Role,
    run_sagas: bool,
}

impl Application {
    pub async fn build(config: AppConfig) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(config.database_url.expose())
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .context("connecting to PostgreSQL")?;
        crate::migrations::run(&pool)
            .await
            .context("applying the migrations")?;
        // The projectors' own connections (one each, and a spare): in the
        // API's pool they would queue behind its requests for a connection
        // at every batch, and the read models would fall behind exactly
        // when bookings come fastest (lag p99 about 100 ms more in `bench
        // read`). Opened lazily, so the API-only role never opens them.
        let projection_pool = PgPoolOptions::new()
            .max_connections(projections::all().len() as u32 + 1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);

        let pg_store = PgEventStore::new(pool.clone());
        let projection_store: Arc<dyn EventStore> =
            Arc::new(pg_store.on_pool(projection_pool.clone()));
        let store: Arc<dyn EventStore> = Arc::new(pg_store);
        let gateway = Arc::new(
            gateway::SimulatedGateway::new(pool.clone())
                .with_latency(Duration::from_millis(config.gateway_latency_ms)),
        );
        let services = Services::with_gateway(
            store.clone(),
            pool.clone(),
            config.settings(),
            gateway.clone(),
        );
        // The sagas share the API's command path, so a flight's lane (and
        // its cached seat map) is one per process.
        let sagas = sagas::Sagas::new(
            pool.clone(),
            services.commands.clone(),
            gateway,
            Arc::new(sagas::tickets::SimulatedIssuer::new(pool.clone())),
            config.saga_config(),
        );
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
            let user_id = services
                .ensure_admin(email, password.expose())
                .await
                .with_context(|| format!("bootstrapping the admin {email}"))?;
            tracing::info!(%user_id, "bootstrap admin in place");
        }
        let state = AppState::new(services, Arc::new(sagas::Admin::new(pool.clone())));

        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        let sealer = state.sealer.clone();
        let router = match config.role {
            Role::Projections | Role::Sagas => with_edge(ops_router(pool.clone())),
            Role::All | Role::Api => router(state, pool.clone()),
        };
        Ok(Self {
            listener,
            addr,
            router,
            pool,
            projection_pool,
            store,
            projection_store,
            sealer,
            sagas,
            role: config.role,
            run_sagas: config.role.runs_sagas() && config.sagas_enabled,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until `shutdown` completes, then lets open requests finish for
    /// up to [`DRAIN_TIMEOUT`] and closes the database pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stopping, mut stopped) = tokio::sync::watch::channel(false);
        // The projectors stop on the same signal as the server.
        let mut projectors_stop = stopped.clone();
        let mut sagas_stop = stopped.clone();
        let (run_sagas, saga_store, saga_sealer) =
            (self.run_sagas, self.store.clone(), self.sealer.clone());
        let sagas = self.sagas;
        let sagas = tokio::spawn(async move {
            if !run_sagas {
                return;
            }
            let stop = async move {
                let _ = sagas_stop.wait_for(|s| *s).await;
            };
            sagas.run(saga_store, saga_sealer, stop).await;
        });
        let runner = projections::Runner::new(
            self.projection_pool.clone(),
            self.projection_store,
            self.sealer,
        );
        let run_projections = self.role.runs_projections();
        let projectors = tokio::spawn(async move {
            if !run_projections {
                return;
            }
            let stop = async move {
                let _ = projectors_stop.wait_for(|s| *s).await;
            };
            if let Err(e) = runner.run_all(projections::all(), stop).await {
                tracing::error!(error = %e, "the projectors stopped");
            }
        });
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: draining open requests");
            let _ = stopping.send(true);
        };
        let server = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .into_future();
        let drain_deadline = async move {
            if stopped.wait_for(|s| *s).await.is_err() {
                // The server ended without being told to: let it say why.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        };
        tokio::select! {
            served = server => served.context("serving HTTP")?,
            () = drain_deadline => {
                tracing::warn!(timeout = ?DRAIN_TIMEOUT, "requests still open after the drain timeout: closing them");
            }
        }
        // Their batches are short; they finish before the pool closes.
        if tokio::time::timeout(DRAIN_TIMEOUT, projectors)
            .await
            .is_err()
        {
            tracing::warn!("the projectors did not stop in time");
        }
        // A saga cut short here is picked up again from the log.
        if tokio::time::timeout(DRAIN_TIMEOUT, sagas).await.is_err() {
            tracing::warn!("the sagas did not stop in time");
        }
        let pools = futures::future::join(self.pool.close(), self.projection_pool.close());
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, pools)
            .await
            .is_err()
        {
            tracing::warn!("database connections still in use at exit");
        }
        Ok(())
    }
}

/// Completes on the first Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// The REST API's OpenAPI document.
pub fn openapi_json() -> String {
    write_api::openapi::json()
}

/// Every route of the process, with the edge middleware around them.
pub fn router(state: AppState, pool: PgPool) -> Router {
    let read = read_api::ReadState::new(pool.clone(), state.tokens.clone());
    router_with(state, read, pool)
}

/// Every route, with the read side's own settings.
pub fn router_with(state: AppState, read: read_api::ReadState, pool: PgPool) -> Router {
    let routes = Router::new()
        .merge(write_api::router(state))
        .merge(read_api::router(read))
        .merge(ops_router(pool));
    with_edge(routes)
}

/// Health, metrics and the OpenAPI document: every role serves them.
fn ops_router(pool: PgPool) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(Ops {
            pool,
            metrics: prometheus(),
        })
}

/// The middleware every route gets, and the answers for unknown routes and
/// wrong methods. Call it once all routes are merged.
pub(crate) fn with_edge(routes: Router) -> Router {
    routes
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(
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
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(ops): State<Ops>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    async fn call(router: Router, method: Method, path: &str) -> Response {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        router.oneshot(req).await.unwrap()
    }

    async fn body_json(res: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn panicking() -> Router {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        with_edge(Router::new().route("/boom", get(boom)))
    }

    #[tokio::test]
    async fn a_panic_is_a_problem_document() {
        let res = call(panicking(), Method::GET, "/boom").await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(res.headers().contains_key(REQUEST_ID));
        let body = body_json(res).await;
        assert_eq!(body["code"], "INTERNAL");
        assert!(!body["detail"].as_str().unwrap().contains("boom"), "{body}");
    }

    #[tokio::test]
    async fn a_wrong_method_is_a_problem_document() {
        let res = call(panicking(), Method::DELETE, "/boom").await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body_json(res).await["code"], "METHOD_NOT_ALLOWED");
    }

    #[tokio::test]
    async fn a_request_id_is_kept_or_made() {
        let res = call(panicking(), Method::GET, "/nowhere").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let made: uuid::Uuid = res.headers()[REQUEST_ID].to_str().unwrap().parse().unwrap();
        assert_eq!(made.get_version_num(), 7);

        let req = Request::builder()
            .uri("/nowhere")
            .header(REQUEST_ID, "abc-123")
            .body(Body::empty())
            .unwrap();
        let res = panicking().oneshot(req).await.unwrap();
        assert_eq!(res.headers()[REQUEST_ID], "abc-123");
    }

    #[test]
    fn secrets_never_print() {
        let mut config = AppConfig::new("postgres://u:hunter2@db/booking");
        config.jwt_secret = Some(Secret::new("jwt-hunter2"));
        config.admin_password = Some(Secret::new("admin-hunter2"));
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("<secret>"));
    }
}
