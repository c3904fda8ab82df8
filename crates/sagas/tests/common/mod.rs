//! Black-box helpers: the write API with the sagas' routes served on
//! 127.0.0.1:0 over a fresh database (one per test, from `#[sqlx::test]`),
//! with saga workers running against the same database.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::booking::{Booking, BookingStatus};
use domain::payment::Payment;
use domain::seats::SeatInventory;
use eventstore::{EventStore, PgEventStore};
use gateway::{
    Card, CardToken, ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundReceipt,
    RefundRequest, SimulatedGateway,
};
use reqwest::{Client, Method, Response, StatusCode};
use sagas::tickets::{IssueError, SimulatedIssuer, TicketIssuer, TicketRequest};
use sagas::{SagaConfig, Sagas};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;
use write_api::{AppState, WriteConfig};

pub const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
pub const CARD_OK: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";
pub const CARD_NO_FUNDS: &str = "4000000000009995";
pub const CARD_TRANSIENT: &str = "4000000000000119";

/// A gateway that fails transiently while `down` is set.
pub struct Flaky {
    pub inner: SimulatedGateway,
    pub down: AtomicBool,
}

#[async_trait]
impl PaymentGateway for Flaky {
    async fn tokenize(&self, card: &Card) -> Result<CardToken, GatewayError> {
        self.inner.tokenize(card).await
    }
    async fn charge(&self, r: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(GatewayError::Transient("provider down".into()));
        }
        self.inner.charge(r).await
    }
    async fn refund(&self, r: &RefundRequest) -> Result<RefundReceipt, GatewayError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(GatewayError::Transient("provider down".into()));
        }
        self.inner.refund(r).await
    }
}

/// An issuer that refuses every booking.
pub struct RefusingIssuer;

#[async_trait]
impl TicketIssuer for RefusingIssuer {
    async fn issue(
        &self,
        _: &TicketRequest,
    ) -> Result<Vec<domain::values::TicketNumber>, IssueError> {
        Err(IssueError::Refused("no ticket stock".into()))
    }
}

pub struct Options {
    pub hold_ttl: Duration,
    pub config: SagaConfig,
    pub gateway: Option<Arc<dyn PaymentGateway>>,
    pub issuer: Option<Arc<dyn TicketIssuer>>,
    /// Saga processes (each with its own workers and lanes) on the database.
    pub saga_processes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hold_ttl: Duration::from_secs(600),
            config: fast(),
            gateway: None,
            issuer: None,
            saga_processes: 1,
        }
    }
}

/// Short backoffs and polls, so tests finish quickly.
pub fn fast() -> SagaConfig {
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
    pub stop: watch::Sender<bool>,
}

pub async fn spawn(pool: PgPool) -> TestApp {
    spawn_with(pool, Options::default()).await
}

pub async fn spawn_with(pool: PgPool, options: Options) -> TestApp {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let mut config = WriteConfig::with_secret(SECRET.to_vec());
    config.hold_ttl = options.hold_ttl;
    let gateway: Arc<dyn PaymentGateway> = options
        .gateway
        .unwrap_or_else(|| Arc::new(SimulatedGateway::new(pool.clone())));
    let issuer: Arc<dyn TicketIssuer> = options
        .issuer
        .unwrap_or_else(|| Arc::new(SimulatedIssuer::new(pool.clone())));
    let state = AppState::with_gateway(
        dyn_store.clone(),
        pool.clone(),
        config.clone(),
        gateway.clone(),
    );
    let app = write_api::router_with(state.clone(), sagas::admin::router());
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
    for n in 0..options.saga_processes.max(1) {
        // The first shares the API's lanes like `booking serve`; others are
        // like separate saga processes.
        let commands = if n == 0 {
            state.commands.clone()
        } else {
            write_api::commands::Commands::new(dyn_store.clone(), state.sealer.clone())
        };
        let sagas = Sagas::new(
            pool.clone(),
            commands,
            gateway.clone(),
            issuer.clone(),
            options.config.clone(),
        );
        let mut stopped = stopped.clone();
        let (store, sealer) = (dyn_store.clone(), state.sealer.clone());
        tokio::spawn(async move {
            sagas
                .run(store, sealer, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
    }
    TestApp {
        addr,
        client: Client::new(),
        pool,
        store,
        state,
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

    /// Registers a user with `role` and logs in: (user id, access token).
    pub async fn user(&self, role: &str) -> (Uuid, String) {
        let email = format!("{role}-{}@example.com", Uuid::now_v7().simple());
        let r = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "full_name": "Test User"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
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
            assert_eq!(r.status(), StatusCode::OK);
        }
        (id, self.login(&email).await)
    }

    async fn login(&self, email: &str) -> String {
        let r = self
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn admin_token(&self) -> String {
        write_api::http::auth::ensure_admin(&self.state, ADMIN_EMAIL, PASSWORD)
            .await
            .unwrap();
        self.login(ADMIN_EMAIL).await
    }

    /// A flight departing after `departs_in`: business 1-5 ACDF at 1800,
    /// economy 10-19 ABCDEF at 420 (USD).
    pub async fn flight_departing(&self, departs_in: chrono::Duration) -> Uuid {
        let departs = chrono::Utc::now() + departs_in;
        let arrives = departs + chrono::Duration::hours(8);
        let admin = self.admin_token().await;
        let r = self
            .post(
                "/flights",
                Some(&admin),
                json!({
                    "flight_number": "BA117", "airline": "British Airways",
                    "origin": "LHR", "destination": "JFK",
                    "departs_at": departs.to_rfc3339(), "arrives_at": arrives.to_rfc3339(),
                    "currency": "USD",
                    "cabins": [
                        {"cabin": "business", "first_row": 1, "last_row": 5, "seat_letters": "ACDF", "fare": "1800.00"},
                        {"cabin": "economy", "first_row": 10, "last_row": 19, "seat_letters": "ABCDEF", "fare": "420.00"}
                    ]
                }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["flight_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub async fn flight(&self) -> Uuid {
        self.flight_departing(chrono::Duration::days(30)).await
    }

    /// Books one passenger per seat (`"12A"`) or cabin (`"economy"`);
    /// returns the booking id.
    pub async fn book(&self, token: &str, flight: Uuid, requests: &[&str]) -> Uuid {
        let passengers: Vec<Value> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut p = json!({"first_name": "Ada", "last_name": format!("Lovelace{i}"),
                                   "date_of_birth": "1990-12-10"});
                if r.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    p["seat"] = json!(r);
                } else {
                    p["cabin"] = json!(r);
                }
                p
            })
            .collect();
        let r = self
            .post(
                "/bookings",
                Some(token),
                json!({"flight_id": flight, "passengers": passengers}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        r.json::<Value>().await.unwrap()["booking_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub async fn pay(&self, token: &str, booking: Uuid, card: &str) -> Response {
        self.post(
            &format!("/bookings/{booking}/payment"),
            Some(token),
            json!({"card_number": card, "expiry_month": 12, "expiry_year": 2040,
                   "cvc": "123", "holder": "Ada Lovelace"}),
        )
        .await
    }

    pub async fn booking(&self, id: Uuid) -> Booking {
        self.state.commands.load::<Booking>(id).await.unwrap().state
    }

    pub async fn payment_of(&self, booking: Uuid) -> Option<Payment> {
        let id = self.booking(booking).await.payment_id?;
        Some(self.state.commands.load::<Payment>(id).await.unwrap().state)
    }

    pub async fn seats(&self, flight: Uuid) -> SeatInventory {
        self.state
            .commands
            .load::<SeatInventory>(flight)
            .await
            .unwrap()
            .state
    }

    /// Waits until the booking reaches `status` and its saga has let go.
    pub async fn wait_for(
        &self,
        booking: Uuid,
        status: BookingStatus,
        within: Duration,
    ) -> Booking {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let b = self.booking(booking).await;
            let saga = self.saga_status(booking).await;
            if b.status == Some(status)
                && matches!(saga.as_deref(), Some("COMPLETED" | "COMPENSATED"))
            {
                return b;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "booking {booking} is {:?} (saga {saga:?}), not {status}",
                    b.status
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the booking's payment has `amount` refunded in all.
    pub async fn wait_refunded(&self, booking: Uuid, amount: &str, within: Duration) -> Payment {
        let want: rust_decimal::Decimal = amount.parse().unwrap();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let p = self.payment_of(booking).await.expect("a payment");
            if p.refunded().map(|m| m.amount()) == Some(want) {
                return p;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("refunded {:?}, not {amount}: {p:?}", p.refunded());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn saga_status(&self, booking: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM sagas WHERE booking_id = $1")
            .bind(booking)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    /// Captured charges and refunds in the simulated provider's books for
    /// this payment id: (captures, refunded total).
    pub async fn provider_books(&self, payment_id: Uuid) -> (i64, rust_decimal::Decimal) {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE c.status = 'captured'), \
                    coalesce((SELECT sum(r.amount) FROM gateway_sim_refunds r \
                              JOIN gateway_sim_charges c2 ON c2.reference = r.charge_reference \
                              WHERE c2.merchant_reference = $1), 0) \
             FROM gateway_sim_charges c WHERE c.merchant_reference = $1",
        )
        .bind(payment_id.to_string())
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

/// Asserts a problem document with this status and code.
pub async fn problem(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body
}
