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

    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
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
        assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
        let id: Uuid = r.json::<Value>().await.unwrap()["user_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if role != "customer" {
            let admin = self.admin_token().await;
            let r = self
                .send(Method::PUT, &format!("/users/{id}/role"), Some(&admin), Some(json!({"role": role})))
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
        (id, self.login(&email, PASSWORD).await)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .post("/auth/login", None, json!({"email": email, "password": password}))
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
