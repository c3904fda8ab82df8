//! Test helpers: the write API and the GraphQL router served together on
//! 127.0.0.1:0 over a fresh database (one per test, from `#[sqlx::test]`),
//! the projectors caught up on demand, and a GraphQL client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::values::Role;
use eventstore::{EventStore, PgEventStore};
use read_api::{ReadSettings, ReadState};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;
use write_api::{AppState, WriteConfig};

pub const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: Client,
    pub pool: PgPool,
    pub state: AppState,
    pub read: ReadState,
    pub runner: Arc<projections::Runner>,
}

pub async fn spawn(pool: PgPool) -> TestApp {
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(pool.clone()));
    let state = AppState::new(
        store.clone(),
        pool.clone(),
        WriteConfig::with_secret(SECRET.to_vec()),
    );
    let read = ReadState {
        pool: pool.clone(),
        tokens: state.tokens.clone(),
        settings: ReadSettings {
            read_after_timeout: Duration::from_millis(300),
            poll_interval: Duration::from_millis(50),
        },
    };
    let app = write_api::router(state.clone()).merge(read_api::router(read.clone()));
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
    let runner = Arc::new(projections::Runner::new(
        pool.clone(),
        store,
        state.sealer.clone(),
    ));
    TestApp {
        addr,
        client: Client::new(),
        pool,
        state,
        read,
        runner,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/api/v1{}", self.addr, path)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Applies every event so far to the read models. The log is read
    /// only below the server-wide snapshot horizon, which transactions of
    /// tests running alongside hold back: catch up until every projector is
    /// past the last event.
    pub async fn catch_up(&self) {
        let head: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx::text::bigint, position FROM es_events ORDER BY tx DESC, position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .unwrap();
        let Some((tx, seq)) = head else { return };
        let head = eventstore::Position::new(tx as u64, seq as u64);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            for p in projections::all() {
                self.runner.catch_up(p.as_ref()).await.unwrap();
            }
            if projections::wait_for(&self.pool, head, Duration::ZERO)
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the projectors did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A token for a user who need not exist (the read side only checks it).
    pub fn token(&self, role: Role) -> (Uuid, String) {
        let id = Uuid::now_v7();
        (id, self.state.tokens.issue(id, role).unwrap())
    }

    /// A registered customer: (user id, access token).
    pub async fn customer(&self) -> (Uuid, String) {
        let email = format!("c-{}@example.com", Uuid::now_v7().simple());
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
        let r = self
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        let token = r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        (id, token)
    }

    pub async fn admin_token(&self) -> String {
        write_api::http::auth::ensure_admin(&self.state, ADMIN_EMAIL, PASSWORD)
            .await
            .unwrap();
        let r = self
            .post(
                "/auth/login",
                None,
                json!({"email": ADMIN_EMAIL, "password": PASSWORD}),
            )
            .await;
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Schedules a flight: business rows 1-2 (AC, 4 seats) at
    /// `business_fare`, economy rows 10-`last_economy_row` (AB) at
    /// `economy_fare`. Returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn flight(
        &self,
        admin: &str,
        origin: &str,
        destination: &str,
        departs_at: &str,
        economy_fare: &str,
        business_fare: &str,
        last_economy_row: u32,
    ) -> Uuid {
        let departs: chrono::DateTime<chrono::Utc> = departs_at.parse().unwrap();
        let arrives = departs + chrono::Duration::hours(8);
        let r = self
            .post(
                "/flights",
                Some(admin),
                json!({
                    "flight_number": "BA117", "airline": "British Airways",
                    "origin": origin, "destination": destination,
                    "departs_at": departs.to_rfc3339(), "arrives_at": arrives.to_rfc3339(),
                    "currency": "USD",
                    "cabins": [
                        {"cabin": "business", "first_row": 1, "last_row": 2, "seat_letters": "AC", "fare": business_fare},
                        {"cabin": "economy", "first_row": 10, "last_row": last_economy_row, "seat_letters": "AB", "fare": economy_fare}
                    ]
                }),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        r.json::<Value>().await.unwrap()["flight_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Books `seats` on `flight`; returns the 201 answer.
    pub async fn book(&self, token: &str, flight: Uuid, seats: &[&str]) -> Value {
        let passengers: Vec<Value> = seats
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({"first_name": "Ada", "last_name": format!("Lovelace{i}"),
                       "date_of_birth": "1990-12-10", "email": "ada@example.com", "seat": s})
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
        r.json().await.unwrap()
    }

    /// Runs a GraphQL query; returns (HTTP status, body).
    pub async fn gql_with(
        &self,
        token: Option<&str>,
        read_after: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("http://{}/graphql", self.addr))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(p) = read_after {
            req = req.header("X-Read-After", p);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// Runs a query that must succeed; returns `data`.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql_with(token, None, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// Runs a query that must fail with `code`; returns the body.
    pub async fn gql_err(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        code: &str,
    ) -> Value {
        let (_, body) = self.gql_with(token, None, query, variables).await;
        assert_eq!(error_code(&body), Some(code.to_string()), "{body}");
        body
    }
}

pub fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}
