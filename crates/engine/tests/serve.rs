//! `booking serve`, black-box: the [`Application`] on port 0 over a fresh
//! database (one per test, from `#[sqlx::test]`), driven over HTTP; and the
//! real binary, stopped with SIGTERM.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine::app::{AppConfig, Application, Secret};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ADMIN_EMAIL: &str = "root@example.com";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

use test_support::{database_url, free_port};

struct TestApp {
    addr: SocketAddr,
    client: Client,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    async fn spawn(options: PgConnectOptions) -> Self {
        Self::spawn_as(options, engine::app::Role::All).await
    }

    async fn spawn_as(options: PgConnectOptions, role: engine::app::Role) -> Self {
        let mut config = AppConfig::new(database_url(&options));
        config.role = role;
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.db_max_connections = 4;
        config.jwt_secret = Some(Secret::new("a-test-secret-that-is-long-enough-for-hs256"));
        config.admin_email = Some(ADMIN_EMAIL.into());
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        let app = Application::build(config).await.expect("the app builds");
        let addr = app.local_addr();
        assert_eq!(app.port(), addr.port());
        assert_ne!(app.port(), 0);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            client: Client::new(),
            stop: Some(stop),
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Stops the server and waits for it, so the test database can be dropped.
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), &mut self.server)
            .await
            .expect("the server stops")
            .unwrap()
            .expect("the server ends cleanly");
    }
}

async fn problem(r: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn health_answers(_: PgPoolOptions, options: PgConnectOptions) {
    let app = TestApp::spawn(options).await;

    let r = app.get("/health/live").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));

    let r = app.get("/health/ready").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));

    app.stop().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn metrics_count_requests_by_route(_: PgPoolOptions, options: PgConnectOptions) {
    let app = TestApp::spawn(options).await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/no/such/thing").await.status(),
        StatusCode::NOT_FOUND
    );
    // A refused command (bad credentials) is counted as a command.
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "wrong password here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = app.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let live = text
        .lines()
        .find(|l| l.starts_with("http_requests_total{") && l.contains(r#"route="/health/live""#))
        .unwrap_or_else(|| panic!("no http_requests_total for /health/live in:\n{text}"));
    assert!(
        live.contains(r#"method="GET""#) && live.contains(r#"status="200""#),
        "{live}"
    );
    assert!(
        text.contains(r#"route="unmatched""#),
        "unknown routes share one label:\n{text}"
    );
    assert!(!text.contains("/no/such/thing"), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("booking_commands_total{")
                && l.contains(r#"command="POST /api/v1/auth/login""#)
                && l.contains(r#"outcome="refused""#)),
        "{text}"
    );

    // Every projector's lag, read at scrape time (its checkpoint appears
    // once its runner has started).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = app.get("/metrics").await.text().await.unwrap();
        let missing: Vec<_> = ["flights", "bookings", "billing", "analytics"]
            .into_iter()
            .filter(|name| {
                !["projection_lag_seconds", "projection_lag_events"]
                    .iter()
                    .all(|m| text.contains(&format!(r#"{m}{{name="{name}"}} 0"#)))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no lag for {missing:?} in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    app.stop().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn serves_the_openapi_document(_: PgPoolOptions, options: PgConnectOptions) {
    let app = TestApp::spawn(options).await;

    let r = app.get("/api/v1/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/api/v1/bookings", "/api/v1/auth/login", "/api/v1/flights"] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    app.stop().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn unknown_routes_and_methods_are_problems(_: PgPoolOptions, options: PgConnectOptions) {
    let app = TestApp::spawn(options).await;

    let r = app.get("/nowhere").await;
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let made: uuid::Uuid = request_id.parse().expect("a UUID");
    assert_eq!(made.get_version_num(), 7);
    let body = problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert!(body["detail"].as_str().unwrap().contains("/nowhere"));

    let r = app.get("/api/v1/nowhere").await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // A wrong method on a REST route.
    let r = app.get("/api/v1/bookings").await;
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;

    // A wrong method on an operations route.
    let r = app
        .client
        .post(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;

    app.stop().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn responses_carry_the_request_id(_: PgPoolOptions, options: PgConnectOptions) {
    let app = TestApp::spawn(options).await;

    let r = app.get("/health/live").await;
    assert!(r.headers().contains_key("x-request-id"));

    // The client's own id is kept, on REST answers too.
    let id = uuid::Uuid::now_v7().to_string();
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-request-id", &id)
        .json(&json!({"email": "nobody@example.com", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], id.as_str());
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    app.stop().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn the_bootstrap_admin_can_log_in(_: PgPoolOptions, options: PgConnectOptions) {
    let app = TestApp::spawn(options.clone()).await;

    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["role"], "admin", "{body}");
    assert!(body["access_token"].is_string());
    app.stop().await;

    // A second start finds the admin in place.
    let again = TestApp::spawn(options).await;
    let r = again
        .client
        .post(again.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    again.stop().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn readiness_fails_without_the_database(_: PgPoolOptions, options: PgConnectOptions) {
    let app = TestApp::spawn(options.clone()).await;
    // Refuse new connections to this database and cut the open ones, from
    // the server's maintenance database.
    let server = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    let database = options.get_database().unwrap().to_owned();
    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false"
    ))
    .execute(&server)
    .await
    .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&database)
    .execute(&server)
    .await
    .unwrap();

    let r = app.get("/health/ready").await;
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);

    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true"
    ))
    .execute(&server)
    .await
    .unwrap();
    server.close().await;
    app.stop().await;
}

/// Kills the child if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn the_binary_serves_and_stops_on_sigterm(_: PgPoolOptions, options: PgConnectOptions) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let port = free_port();
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_booking"))
            .arg("serve")
            .env("DATABASE_URL", database_url(&options))
            .env("BOOKING_ADDR", format!("127.0.0.1:{port}"))
            .env("BOOKING_DB_MAX_CONNECTIONS", "4")
            .env("RUST_LOG", "warn")
            .env_remove("BOOKING_JWT_SECRET")
            .env_remove("BOOKING_ADMIN_EMAIL")
            .env_remove("BOOKING_ADMIN_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start booking serve"),
    );

    let client = Client::new();
    let ready = format!("http://127.0.0.1:{port}/health/ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(&ready).send().await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("booking serve exited before it was ready: {status}");
        }
        assert!(Instant::now() < deadline, "booking serve never got ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pid = Pid::from_raw(i32::try_from(child.0.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "booking serve still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "booking serve exited with {status}");
}

/// Roles split across processes: an API process and a projections process
/// on one database. A booking made through the API becomes readable over
/// GraphQL only because the other process projected it.
#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn api_and_projections_run_as_separate_roles(_: PgPoolOptions, options: PgConnectOptions) {
    use engine::app::Role;
    let api = TestApp::spawn_as(options.clone(), Role::Api).await;
    let login = |email: &'static str, password: &'static str| {
        let api = &api;
        async move {
            let r: Value = api
                .client
                .post(api.url("/api/v1/auth/login"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_string()
        }
    };
    let admin = login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let departs = chrono::Utc::now() + chrono::Duration::days(3);
    let flight: Value = api
        .client
        .post(api.url("/api/v1/flights"))
        .bearer_auth(&admin)
        .json(&json!({"flight_number": "BA117", "airline": "British Airways", "origin": "LHR",
            "destination": "JFK", "departs_at": departs, "arrives_at": departs + chrono::Duration::hours(8),
            "currency": "USD", "cabins": [{"cabin": "economy", "first_row": 10, "last_row": 12,
            "seat_letters": "ABC", "fare": "420.00"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let position = flight["position"].as_str().unwrap().to_string();
    let query = json!({"query": format!("{{ flight(id: \"{}\") {{ flightNumber availableSeats }} }}",
        flight["flight_id"].as_str().unwrap())});
    let read = |position: String| {
        let api = &api;
        let query = query.clone();
        async move {
            api.client
                .post(api.url("/graphql"))
                .header("x-read-after", position)
                .json(&query)
                .send()
                .await
                .unwrap()
        }
    };
    // No projector runs yet: the read cannot catch up.
    let r = read(position.clone()).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "STALE_READ",
        "{body}"
    );

    let projector = TestApp::spawn_as(options, Role::Projections).await;
    assert_eq!(
        projector.get("/health/ready").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        projector.get("/graphql").await.status(),
        StatusCode::NOT_FOUND
    );
    let body: Value = read(position).await.json().await.unwrap();
    assert_eq!(body["data"]["flight"]["availableSeats"], 9, "{body}");

    projector.stop().await;
    api.stop().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn payments_are_fulfilled_by_a_separate_sagas_process(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    use engine::app::Role;
    let api = TestApp::spawn_as(options.clone(), Role::Api).await;
    let post = |path: &'static str, token: Option<String>, body: Value| {
        let api = &api;
        async move {
            let mut req = api.client.post(api.url(path)).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (_, admin) = post(
        "/api/v1/auth/login",
        None,
        json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    let admin = admin["access_token"].as_str().unwrap().to_string();
    let departs = chrono::Utc::now() + chrono::Duration::days(3);
    let (_, flight) = post(
        "/api/v1/flights",
        Some(admin),
        json!({"flight_number": "BA117",
        "airline": "British Airways", "origin": "LHR", "destination": "JFK", "departs_at": departs,
        "arrives_at": departs + chrono::Duration::hours(8), "currency": "USD",
        "cabins": [{"cabin": "economy", "first_row": 10, "last_row": 12, "seat_letters": "ABC",
                    "fare": "420.00"}]}),
    )
    .await;
    post(
        "/api/v1/auth/register",
        None,
        json!({"email": "ada@example.com", "password": ADMIN_PASSWORD, "full_name": "Ada"}),
    )
    .await;
    let (_, ada) = post(
        "/api/v1/auth/login",
        None,
        json!({"email": "ada@example.com", "password": ADMIN_PASSWORD}),
    )
    .await;
    let ada = ada["access_token"].as_str().unwrap().to_string();
    let (status, booking) = post(
        "/api/v1/bookings",
        Some(ada.clone()),
        json!({
        "flight_id": flight["flight_id"], "passengers": [{"first_name": "Ada",
        "last_name": "Lovelace", "date_of_birth": "1990-12-10", "seat": "10A"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let id = booking["booking_id"].as_str().unwrap().to_string();
    let pay = api
        .client
        .post(api.url(&format!("/api/v1/bookings/{id}/payment")))
        .bearer_auth(&ada)
        .json(
            &json!({"card_number": "4242 4242 4242 4242", "expiry_month": 1,
                      "expiry_year": 2040, "cvc": "123", "holder": "Ada Lovelace"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pay.status(), StatusCode::ACCEPTED);

    let pool = PgPoolOptions::new()
        .connect_with(options.clone())
        .await
        .unwrap();
    let ticketed = || {
        let pool = pool.clone();
        let stream = format!("booking-{id}");
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM es_events WHERE stream_id = $1 AND event_type = 'TicketsIssued'",
            )
            .bind(stream)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // The API process runs no sagas: the payment waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ticketed().await, 0);

    let sagas = TestApp::spawn_as(options, Role::Sagas).await;
    assert_eq!(sagas.get("/health/ready").await.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticketed().await == 0 {
        assert!(
            Instant::now() < deadline,
            "not ticketed by the sagas process"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sagas.stop().await;
    api.stop().await;
}
