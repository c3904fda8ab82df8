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

mod config;
mod edge;
mod holdings;
pub mod limits;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use application::Services;
use axum::{middleware, Router};
use eventstore::{EventStore, PgEventStore, Sealer};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::net::TcpListener;
use write_api::AppState;

pub use config::{AppConfig, Role, Secret, Switch};
use edge::ops_router;
pub use edge::{with_edge, Edge};
pub use holdings::{LogHoldings, ReadModelHoldings};

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
    /// Offers of seats that come back to the waiting lists, run where the
    /// sagas run.
    waitlists: sagas::Waitlists,
    /// Mails and webhooks, run where the sagas run.
    notifier: notifications::Notifier,
    /// The Kafka relay, when `KAFKA_BROKERS` is set and the role runs it.
    relay: Option<relay::Relay>,
    /// What customers hold unpaid, followed from the log for the hold caps.
    /// What customers hold unpaid, followed from the log for the hold caps
    /// (only when they are on).
    holdings: Option<LogHoldings>,
    /// Checks access tokens; its revocations are followed while serving.
    tokens: auth::TokenKeys,
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
        let store: Arc<dyn EventStore> = Arc::new(pg_store.clone());
        let gateway = Arc::new(
            gateway::SimulatedGateway::new(pool.clone())
                .with_latency(Duration::from_millis(config.gateway_latency_ms)),
        );
        let holdings = LogHoldings::new(pool.clone());
        let services = Services::with_ports(
            store.clone(),
            pool.clone(),
            config.settings(),
            gateway.clone(),
            Arc::new(holdings.clone()),
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
        let waitlists = sagas::Waitlists::new(
            pool.clone(),
            services.clone(),
            sagas::WaitlistConfig::default(),
        );
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
            let user_id = services
                .ensure_admin(email, password.expose())
                .await
                .with_context(|| format!("bootstrapping the admin {email}"))?;
            tracing::info!(%user_id, "bootstrap admin in place");
        }
        let audit_seed = config
            .audit_key
            .as_ref()
            .map(|k| audit::parse_seed(k.expose()))
            .transpose()
            .map_err(anyhow::Error::msg)
            .context("BOOKING_AUDIT_KEY")?;
        let audit = audit::Audit::new(pg_store.clone(), services.sealer.clone(), audit_seed)
            .await
            .context("loading the audit key")?;
        // Mailed tokens are keyed by the same secret as access tokens, so
        // the notifier's mail opens in every API process.
        let notifier = notifications::Notifier::new(
            pool.clone(),
            config.mailer().context("the mail server")?,
            auth::account_tokens::AccountTokens::new(&services.settings.jwt_secret),
            config.notify_config(),
        );
        let state = AppState::new(
            services,
            Arc::new(sagas::Admin::new(pool.clone())),
            audit,
            Arc::new(notifications::Admin::new(pool.clone())),
        );

        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        let sealer = state.sealer.clone();
        let tokens = state.tokens.clone();
        let edge = config.edge(tokens.clone())?;
        let relay = match config.relay_config()? {
            Some(c) => {
                Some(relay::Relay::new(pool.clone(), store.clone(), c).context("the Kafka relay")?)
            }
            None => None,
        };
        let router = match config.role {
            Role::Projections | Role::Sagas => {
                with_edge(ops_router(pool.clone(), edge.metrics, None), &edge)
            }
            Role::Relay => with_edge(
                ops_router(
                    pool.clone(),
                    edge.metrics,
                    relay.as_ref().map(|r| r.readiness()),
                ),
                &edge,
            ),
            Role::All | Role::Api => {
                let read = read_api::ReadState {
                    pool: pool.clone(),
                    tokens: tokens.clone(),
                    settings: config.read_settings(),
                };
                router(state, read, pool.clone(), &edge)
            }
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
            waitlists,
            notifier,
            relay,
            holdings: (config.hold_limits == Switch::On).then_some(holdings),
            tokens,
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
        let mut waitlists_stop = stopped.clone();
        let (waitlists_store, waitlists_sealer) = (self.store.clone(), self.sealer.clone());
        let waitlists = self.waitlists;
        let waitlists = tokio::spawn(async move {
            if !run_sagas {
                return;
            }
            let stop = async move {
                let _ = waitlists_stop.wait_for(|s| *s).await;
            };
            waitlists.run(waitlists_store, waitlists_sealer, stop).await;
        });
        let mut notifier_stop = stopped.clone();
        let (notifier_store, notifier_sealer) = (self.store.clone(), self.sealer.clone());
        let notifier = self.notifier;
        let notifier = tokio::spawn(async move {
            if !run_sagas {
                return;
            }
            let stop = async move {
                let _ = notifier_stop.wait_for(|s| *s).await;
            };
            notifier.run(notifier_store, notifier_sealer, stop).await;
        });
        // Ended sessions, followed wherever tokens are checked.
        if self.role.serves_api() {
            let mut revocations_stop = stopped.clone();
            let stop = async move {
                let _ = revocations_stop.wait_for(|s| *s).await;
            };
            let keep = self.tokens.access_ttl + Duration::from_secs(60);
            tokio::spawn(
                self.tokens
                    .revocations
                    .clone()
                    .follow(self.pool.clone(), keep, stop),
            );
            if let Some(holdings) = self.holdings {
                let mut holdings_stop = stopped.clone();
                tokio::spawn(
                    holdings.follow(self.pool.clone(), self.store.clone(), async move {
                        let _ = holdings_stop.wait_for(|s| *s).await;
                    }),
                );
            }
        }
        let runner = projections::Runner::new(
            self.projection_pool.clone(),
            self.projection_store,
            self.sealer,
        );
        // The relay stops with the rest; what it had not published goes
        // out from its checkpoint next time.
        let relay = self.relay.map(|relay| {
            let mut relay_stop = stopped.clone();
            tokio::spawn(relay.run(async move {
                let _ = relay_stop.wait_for(|s| *s).await;
            }))
        });
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
        if let Some(relay) = relay {
            if tokio::time::timeout(DRAIN_TIMEOUT, relay).await.is_err() {
                tracing::warn!("the relay did not stop in time");
            }
        }
        // A saga cut short here is picked up again from the log.
        if tokio::time::timeout(DRAIN_TIMEOUT, sagas).await.is_err() {
            tracing::warn!("the sagas did not stop in time");
        }
        // A line cut short here is still due: it is served again.
        if tokio::time::timeout(DRAIN_TIMEOUT, waitlists)
            .await
            .is_err()
        {
            tracing::warn!("the waiting lists did not stop in time");
        }
        // A mail cut short here goes out again when its lease runs out.
        if tokio::time::timeout(DRAIN_TIMEOUT, notifier).await.is_err() {
            tracing::warn!("the notifier did not stop in time");
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

/// Every route of the process, with the edge middleware around them: the
/// REST and GraphQL APIs behind the rate limits, and the operators' routes.
pub fn router(state: AppState, read: read_api::ReadState, pool: PgPool, edge: &Edge) -> Router {
    let limited = middleware::from_fn_with_state(edge.limits.clone(), limits::limit);
    let apis = Router::new()
        .merge(write_api::router(state))
        .merge(read_api::router(read))
        .layer(limited);
    with_edge(apis.merge(ops_router(pool, edge.metrics, None)), edge)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::{header, Method, StatusCode};
    use axum::response::Response;
    use axum::routing::get;

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
        let tokens =
            auth::TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        with_edge(Router::new().route("/boom", get(boom)), &Edge::open(tokens))
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
