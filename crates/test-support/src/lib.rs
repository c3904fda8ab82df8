//! What the black-box tests of every crate share: the engine's routes
//! served on `127.0.0.1:0` over the test's own database (one per test, from
//! `#[sqlx::test(migrator = "test_support::MIGRATOR")]`), optionally with
//! saga workers, the projectors caught up on demand, and a real HTTP client
//! with the calls tests make over and over.
//!
//! # Layout
//! - this module: [`spawn`], [`Options`], [`TestApp`] and its HTTP calls.
//! - [`graphql`]: GraphQL calls and read-model catch-up.
//! - [`fulfilment`]: payments, waiting for a booking's saga, the simulated
//!   provider's books.

pub mod fulfilment;
pub mod graphql;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use application::{Commands, Services, Settings};
use eventstore::{EventStore, PgEventStore};
use gateway::{PaymentGateway, SimulatedGateway};
use read_api::{ReadSettings, ReadState};
use reqwest::{Client, Method, Response, StatusCode};
use sagas::tickets::{SimulatedIssuer, TicketIssuer};
use sagas::{SagaConfig, Sagas};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;
use write_api::AppState;

/// Every crate's migrations, as the engine applies them.
pub use engine::migrations::MIGRATOR;

pub const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
pub const CARD_OK: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";
pub const CARD_NO_FUNDS: &str = "4000000000009995";
pub const CARD_TRANSIENT: &str = "4000000000000119";

/// What to run besides the HTTP routes.
pub struct Options {
    pub settings: Settings,
    pub read: ReadSettings,
    /// Saga workers, with this configuration; none when `None`.
    pub sagas: Option<SagaConfig>,
    /// Saga processes (each with its own workers and lanes) on the database.
    pub saga_processes: usize,
    pub gateway: Option<Arc<dyn PaymentGateway>>,
    pub issuer: Option<Arc<dyn TicketIssuer>>,
    /// Limits, CORS and the like; none unless given (tests of other things
    /// send many requests quickly).
    pub edge: Option<engine::app::Edge>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            settings: Settings::with_secret(SECRET.to_vec()),
            read: ReadSettings {
                read_after_timeout: Duration::from_millis(300),
                poll_interval: Duration::from_millis(50),
                ..ReadSettings::default()
            },
            sagas: None,
            saga_processes: 1,
            gateway: None,
            issuer: None,
            edge: None,
        }
    }
}

impl Options {
    /// With saga workers that back off and poll briefly, so tests finish
    /// quickly.
    pub fn with_sagas() -> Self {
        Self {
            sagas: Some(fast_sagas()),
            ..Self::default()
        }
    }

    pub fn hold_ttl(mut self, ttl: Duration) -> Self {
        self.settings.hold_ttl = ttl;
        self
    }

    /// How long seats offered to a waiting list stay held.
    pub fn waitlist_offer_ttl(mut self, ttl: Duration) -> Self {
        self.settings.waitlist_offer_ttl = ttl;
        self
    }

    pub fn saga_config(mut self, config: SagaConfig) -> Self {
        self.sagas = Some(config);
        self
    }

    pub fn gateway(mut self, gateway: Arc<dyn PaymentGateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    pub fn issuer(mut self, issuer: Arc<dyn TicketIssuer>) -> Self {
        self.issuer = Some(issuer);
        self
    }
}

/// Short backoffs and polls.
pub fn fast_sagas() -> SagaConfig {
    SagaConfig {
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        idle_poll: Duration::from_millis(100),
        ..SagaConfig::default()
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: Client,
    pub pool: PgPool,
    pub store: Arc<PgEventStore>,
    pub state: AppState,
    pub read: ReadState,
    pub runner: Arc<projections::Runner>,
    /// Stops the saga workers.
    pub stop: watch::Sender<bool>,
}

/// The engine's routes, without saga workers.
pub async fn spawn(pool: PgPool) -> TestApp {
    spawn_with(pool, Options::default()).await
}

pub async fn spawn_with(pool: PgPool, options: Options) -> TestApp {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let gateway: Arc<dyn PaymentGateway> = options
        .gateway
        .unwrap_or_else(|| Arc::new(SimulatedGateway::new(pool.clone())));
    let issuer: Arc<dyn TicketIssuer> = options
        .issuer
        .unwrap_or_else(|| Arc::new(SimulatedIssuer::new(pool.clone())));
    let holdings = engine::app::LogHoldings::new(pool.clone());
    let hold_caps = options.settings.hold_caps.is_some();
    let services = Services::with_ports(
        dyn_store.clone(),
        pool.clone(),
        options.settings,
        gateway.clone(),
        Arc::new(holdings.clone()),
    );
    let audit = audit::Audit::new((*store).clone(), services.sealer.clone(), None)
        .await
        .expect("the audit key");
    let state = AppState::new(
        services.clone(),
        Arc::new(sagas::Admin::new(pool.clone())),
        audit,
        Arc::new(notifications::Admin::new(pool.clone())),
    );
    let read = ReadState {
        pool: pool.clone(),
        tokens: services.tokens.clone(),
        settings: options.read,
    };
    let edge = options
        .edge
        .unwrap_or_else(|| engine::app::Edge::open(services.tokens.clone()));
    let app = engine::app::router(state.clone(), read.clone(), pool.clone(), &edge);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let (stop, stopped) = watch::channel(false);
    // Ended sessions, followed as `booking serve` does.
    let mut revocations_stop = stopped.clone();
    tokio::spawn(services.tokens.revocations.clone().follow(
        pool.clone(),
        services.tokens.access_ttl + Duration::from_secs(60),
        async move {
            let _ = revocations_stop.wait_for(|s| *s).await;
        },
    ));
    // As in `booking serve`: the holdings index follows the log only when
    // the hold caps are on.
    if hold_caps {
        let mut holdings_stop = stopped.clone();
        tokio::spawn(
            holdings.follow(pool.clone(), dyn_store.clone(), async move {
                let _ = holdings_stop.wait_for(|s| *s).await;
            }),
        );
    }
    if let Some(config) = options.sagas {
        // The waiting-list process manager runs where the sagas run, as in
        // `booking serve`, polling as briefly as the test sagas.
        let waitlists = sagas::Waitlists::new(
            pool.clone(),
            services.clone(),
            sagas::WaitlistConfig {
                idle_poll: config.idle_poll,
                base_backoff: config.base_backoff,
                max_backoff: config.max_backoff,
                ..sagas::WaitlistConfig::default()
            },
        );
        let mut waitlists_stop = stopped.clone();
        let (store, sealer) = (dyn_store.clone(), services.sealer.clone());
        tokio::spawn(async move {
            waitlists
                .run(store, sealer, async move {
                    let _ = waitlists_stop.wait_for(|s| *s).await;
                })
                .await;
        });
        for n in 0..options.saga_processes.max(1) {
            // The first shares the API's lanes like `booking serve`; others
            // are like separate saga processes.
            let commands = if n == 0 {
                services.commands.clone()
            } else {
                Commands::new(dyn_store.clone(), services.sealer.clone())
            };
            let sagas = Sagas::new(
                pool.clone(),
                commands,
                gateway.clone(),
                issuer.clone(),
                config.clone(),
            );
            let mut stopped = stopped.clone();
            let (store, sealer) = (dyn_store.clone(), services.sealer.clone());
            tokio::spawn(async move {
                sagas
                    .run(store, sealer, async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
            });
        }
    }
    let runner = Arc::new(projections::Runner::new(
        pool.clone(),
        dyn_store,
        services.sealer.clone(),
    ));
    TestApp {
        addr,
        client: Client::new(),
        pool,
        store,
        state,
        read,
        runner,
        stop,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/api/v1{}", self.addr, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.send(Method::POST, path, token, Some(body)).await
    }

    /// Registers a user, gives them `role` (as the bootstrap admin) and logs
    /// them in. Returns (user id, access token).
    pub async fn user(&self, role: &str) -> (Uuid, String) {
        let email = format!("{role}-{}@example.com", Uuid::now_v7().simple());
        let r = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "full_name": "Test User"}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        let id: Uuid = r.json::<Value>().await.unwrap()["user_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if role != "customer" {
            let admin = self.admin_token().await;
            let r = self
                .send(
                    Method::PUT,
                    &format!("/users/{id}/role"),
                    Some(&admin),
                    Some(json!({"role": role})),
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
        (id, self.login(&email, PASSWORD).await)
    }

    /// A registered customer: (user id, access token).
    pub async fn customer(&self) -> (Uuid, String) {
        self.user("customer").await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The bootstrap admin's access token.
    pub async fn admin_token(&self) -> String {
        self.state
            .ensure_admin(ADMIN_EMAIL, PASSWORD)
            .await
            .unwrap();
        self.login(ADMIN_EMAIL, PASSWORD).await
    }

    /// Schedules a flight (as admin) departing in 30 days; returns its id.
    pub async fn flight(&self) -> Uuid {
        self.flight_departing(chrono::Duration::days(30)).await
    }

    /// A flight departing after `departs_in` (see [`flight_body`]).
    pub async fn flight_departing(&self, departs_in: chrono::Duration) -> Uuid {
        let admin = self.admin_token().await;
        let r = self
            .post("/flights", Some(&admin), flight_body(departs_in))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        id_in(r, "flight_id").await
    }

    /// [`Self::flight`] and a JFK-BOS connection (BA1511) leaving
    /// `layover` after it lands, economy at 150.00 (60 seats): an
    /// itinerary's two flights.
    pub async fn trip(&self, layover: chrono::Duration) -> (Uuid, Uuid) {
        let first = self.flight().await;
        let lands = chrono::Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(8);
        let mut body = flight_body(chrono::Duration::days(30));
        body["flight_number"] = json!("BA1511");
        body["origin"] = json!("JFK");
        body["destination"] = json!("BOS");
        body["departs_at"] = json!((lands + layover).to_rfc3339());
        body["arrives_at"] = json!((lands + layover + chrono::Duration::hours(1)).to_rfc3339());
        body["cabins"][1]["fare"] = json!("150.00");
        let admin = self.admin_token().await;
        let r = self.post("/flights", Some(&admin), body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        (first, id_in(r, "flight_id").await)
    }

    /// Books one passenger per seat request (`"12A"` or a cabin name).
    pub async fn book(&self, token: &str, flight: Uuid, requests: &[&str]) -> Response {
        let passengers: Vec<Value> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut p = json!({"first_name": "Ada", "last_name": format!("Lovelace{i}"),
                                   "date_of_birth": "1990-12-10", "email": "ada@example.com"});
                if r.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    p["seat"] = json!(r);
                } else {
                    p["cabin"] = json!(r);
                }
                p
            })
            .collect();
        self.post(
            "/bookings",
            Some(token),
            json!({"flight_id": flight, "passengers": passengers}),
        )
        .await
    }

    /// Books as [`TestApp::book`] and expects a 201; returns the answer.
    pub async fn booked(&self, token: &str, flight: Uuid, requests: &[&str]) -> Value {
        let r = self.book(token, flight, requests).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    /// Books as [`TestApp::book`] and expects a 201; returns the booking id.
    pub async fn book_id(&self, token: &str, flight: Uuid, requests: &[&str]) -> Uuid {
        self.booked(token, flight, requests).await["booking_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Streams of a category in the event log.
    pub async fn stream_count(&self, category: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM es_streams WHERE stream_id LIKE $1 AND version > 0",
        )
        .bind(format!("{category}-%"))
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

/// The id named `field` in a JSON answer.
pub async fn id_in(r: Response, field: &str) -> Uuid {
    r.json::<Value>().await.unwrap()[field]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Asserts a problem document with this status and code; returns it.
pub async fn problem(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string() && body["type"].is_string() && body["detail"].is_string());
    body
}

/// A flight body as in the contract, departing `departs_in` from now:
/// business rows 1-5 (ACDF, 20 seats at 1800), economy rows 10-19 (ABCDEF,
/// 60 seats at 420), in USD.
pub fn flight_body(departs_in: chrono::Duration) -> Value {
    let departs = chrono::Utc::now() + departs_in;
    let arrives = departs + chrono::Duration::hours(8);
    json!({
        "flight_number": "BA117", "airline": "British Airways",
        "origin": "LHR", "destination": "JFK",
        "departs_at": departs.to_rfc3339(), "arrives_at": arrives.to_rfc3339(),
        "currency": "USD",
        "cabins": [
            {"cabin": "business", "first_row": 1, "last_row": 5, "seat_letters": "ACDF", "fare": "1800.00"},
            {"cabin": "economy", "first_row": 10, "last_row": 19, "seat_letters": "ABCDEF", "fare": "420.00"}
        ]
    })
}

/// A port free on 127.0.0.1 a moment ago, for a process a test starts
/// (the real binary, a mail server) that must be told its port up front.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("the bound address")
        .port()
}

/// The URL of a test's own database (`options`, from `#[sqlx::test]`) on
/// the server `DATABASE_URL` names: for the real binary started by a test.
pub fn database_url(options: &sqlx::postgres::PgConnectOptions) -> String {
    let server = std::env::var("DATABASE_URL").expect("DATABASE_URL names the test server");
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server.as_str(), String::new()),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|i| start + i))
        .unwrap_or(base.len());
    let database = options
        .get_database()
        .expect("the test database has a name");
    format!("{}/{database}{query}", &base[..authority_end])
}
