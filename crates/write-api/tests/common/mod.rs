//! Black-box test helpers: the write API served on 127.0.0.1:0 over a fresh
//! database (one per test, from `#[sqlx::test]`), driven by a real HTTP client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use eventstore::{EventStore, PgEventStore};
use reqwest::{Client, Method, Response, StatusCode};
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
    pub store: Arc<PgEventStore>,
    pub state: AppState,
}

pub async fn spawn(pool: PgPool) -> TestApp {
    spawn_with(pool, WriteConfig::with_secret(SECRET.to_vec())).await
}

pub async fn spawn_with(pool: PgPool, config: WriteConfig) -> TestApp {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let state = AppState::new(dyn_store, pool.clone(), config);
    let app = write_api::router(state.clone());
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
    TestApp {
        addr,
        client: Client::new(),
        pool,
        store,
        state,
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
        write_api::http::auth::ensure_admin(&self.state, ADMIN_EMAIL, PASSWORD)
            .await
            .unwrap();
        self.login(ADMIN_EMAIL, PASSWORD).await
    }
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

/// A flight body as in the contract, departing `days` from now: business
/// rows 1-5 (ACDF, 20 seats), economy rows 10-19 (ABCDEF, 60 seats).
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

impl TestApp {
    /// Schedules a flight (as admin) departing in 30 days; returns its id.
    pub async fn flight(&self) -> Uuid {
        self.flight_departing(chrono::Duration::days(30)).await
    }

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
        r.json::<Value>().await.unwrap()["flight_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
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
