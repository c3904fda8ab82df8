//! Notifications, black box (issue 17): the real `booking serve` binary
//! mails through a real SMTP server (Python's aiosmtpd, `support/smtp_sink.py`)
//! and posts webhooks to a real HTTP receiver in this test.
//!
//! What is promised, and tried here:
//! - the right mails and webhooks arrive, exactly once after dedupe by the
//!   delivery id the receiver sees (`Booking-Delivery`, the mail's
//!   `Message-ID`), across a `kill -9` in the middle of a webhook POST, a
//!   `kill -9` in the middle of an SMTP conversation, and a mail server
//!   that is down for a while;
//! - the ticket mail carries the e-ticket PDF (read back with `pdftotext`);
//!   the account mails carry tokens that work;
//! - every webhook is signed (HMAC-SHA256 over `"<t>.<body>"`) and carries
//!   no personal data;
//! - nothing is sent for a refused command, and nothing to an erased user;
//! - a webhook that keeps failing is dead-lettered, listed, and sent again
//!   when an admin asks.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use test_support::{database_url, free_port};
use tokio::sync::Notify;
use uuid::Uuid;

const ADMIN_EMAIL: &str = "root@example.com";
const PASSWORD: &str = "correct horse battery staple";
const JWT_SECRET: &str = "a-notify-test-secret-that-is-long-enough-for-hs256";
const SETTLE: Duration = Duration::from_secs(90);

async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------------ engine

/// `booking serve`, mailing through `smtp_port`; killed if the test fails.
struct Engine {
    child: Option<Child>,
    database_url: String,
    port: u16,
    smtp_port: u16,
    log: PathBuf,
    max_attempts: u32,
    hold_ttl_secs: u64,
}

impl Engine {
    fn new(options: &PgConnectOptions, smtp_port: u16) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("booking-notify-{port}.log"));
        println!("engine log: {}", log.display());
        Self {
            child: None,
            database_url: database_url(options),
            port,
            smtp_port,
            log,
            max_attempts: 100,
            hold_ttl_secs: 600,
        }
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_booking"))
            .arg("serve")
            .env("DATABASE_URL", &self.database_url)
            .env("BOOKING_ADDR", format!("127.0.0.1:{}", self.port))
            .env("BOOKING_JWT_SECRET", JWT_SECRET)
            .env("BOOKING_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("BOOKING_ADMIN_PASSWORD", PASSWORD)
            .env(
                "BOOKING_SMTP_URL",
                format!("smtp://127.0.0.1:{}", self.smtp_port),
            )
            .env("BOOKING_MAIL_FROM", "Booking Test <tickets@example.com>")
            // A delivery cut off by a kill goes out again 2 s later.
            .env("BOOKING_NOTIFY_LEASE_SECS", "2")
            .env("BOOKING_NOTIFY_BACKOFF_MS", "200")
            .env("BOOKING_NOTIFY_MAX_ATTEMPTS", self.max_attempts.to_string())
            .env("BOOKING_RATE_LIMITS", "off")
            .env("BOOKING_HOLD_TTL_SECS", self.hold_ttl_secs.to_string())
            .env("RUST_LOG", "warn,notifications=info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start booking serve");
        self.child = Some(child);
    }

    async fn start(&mut self, http: &Client) {
        self.spawn();
        let ready = format!("http://127.0.0.1:{}/health/ready", self.port);
        eventually("booking serve to be ready", Duration::from_secs(60), || {
            let r = http.get(&ready).send();
            async move { r.await.ok().filter(|r| r.status() == StatusCode::OK) }
        })
        .await;
    }

    fn kill9(&mut self) {
        let child = self.child.take().unwrap();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        let mut child = child;
        let status = child.wait().unwrap();
        assert!(!status.success());
    }

    async fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "booking serve ignored SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------------ SMTP

/// The aiosmtpd sink, writing what it receives to `out`.
struct SmtpSink {
    child: Child,
    out: PathBuf,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Mail {
    rcpt_tos: Vec<String>,
    message_id: Option<String>,
    delivery: Option<String>,
    event: Option<String>,
    subject: String,
    body: String,
    attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Attachment {
    filename: Option<String>,
    content_type: String,
    path: String,
}

impl SmtpSink {
    async fn start(port: u16, out: &Path, hold_first_secs: u32) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string()])
            .arg("--out")
            .arg(out)
            .args(["--hold-first", &hold_first_secs.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 runs the SMTP sink (aiosmtpd: `pip install aiosmtpd`)");
        eventually(
            "the SMTP sink to listen",
            Duration::from_secs(20),
            move || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
            },
        )
        .await;
        Self {
            child,
            out: out.to_path_buf(),
        }
    }

    /// Every message received so far, in the order received.
    fn received(&self) -> Vec<Mail> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "json").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ webhooks

#[derive(Debug, Clone)]
struct Hit {
    delivery: String,
    signature_ok: bool,
    body: Value,
    raw: String,
}

/// An HTTP receiver: records every POST, checks its signature, and answers
/// as told (hold the first POST, or fail them all).
#[derive(Default)]
struct Receiver {
    secret: Mutex<String>,
    hits: Mutex<Vec<Hit>>,
    hold_first: AtomicBool,
    failing: AtomicBool,
    first_arrived: Notify,
    posts: AtomicUsize,
}

/// Checks `Booking-Signature: t=<unix>,v1=<hex>` the way a receiver would:
/// recompute over the raw body, compare in constant time, refuse an old
/// timestamp.
fn signature_ok(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let n = r.posts.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let secret = r.secret.lock().unwrap().clone();
    r.hits.lock().unwrap().push(Hit {
        delivery: header("booking-delivery"),
        signature_ok: signature_ok(&secret, &header("booking-signature"), &body),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&body).into_owned(),
    });
    if n == 0 && r.hold_first.load(Ordering::SeqCst) {
        r.first_arrived.notify_one();
        // Longer than the test takes to kill the sender, shorter than its
        // 10 s timeout.
        tokio::time::sleep(Duration::from_secs(8)).await;
    }
    if r.failing.load(Ordering::SeqCst) {
        AxumStatus::SERVICE_UNAVAILABLE
    } else {
        AxumStatus::NO_CONTENT
    }
}

async fn start_receiver(receiver: Arc<Receiver>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

// ------------------------------------------------------------------ client

struct Api {
    http: Client,
    base: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers and logs in: (user id, token).
    async fn customer(&self, email: &str, name: &str) -> (Uuid, String) {
        let (status, body) = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "full_name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["user_id"].as_str().unwrap().parse().unwrap();
        let (status, body) = self.login(email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (id, body["access_token"].as_str().unwrap().to_string())
    }

    async fn admin(&self) -> String {
        let (status, body) = self.login(ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn flight(&self, admin: &str) -> Uuid {
        let (status, body) = self
            .post(
                "/flights",
                Some(admin),
                test_support::flight_body(chrono::Duration::days(30)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["flight_id"].as_str().unwrap().parse().unwrap()
    }

    /// Books `seat` for `name`: (status, booking id if booked, pnr).
    async fn book(&self, token: &str, flight: Uuid, name: &str, seat: &str) -> (StatusCode, Value) {
        let (first, last) = name.split_once(' ').unwrap();
        self.post(
            "/bookings",
            Some(token),
            json!({"flight_id": flight, "passengers": [{"first_name": first,
                "last_name": last, "date_of_birth": "1990-12-10", "seat": seat}]}),
        )
        .await
    }

    /// Waits until the newest delivery listed at `path` has `status`.
    async fn newest_delivery_once(&self, admin: &str, path: &str, status: &str) -> Value {
        eventually(&format!("a {status} delivery"), SETTLE, || async {
            let (_, list) = self
                .send(reqwest::Method::GET, path, Some(admin), None)
                .await;
            list["deliveries"]
                .as_array()
                .and_then(|l| l.first().cloned())
                .filter(|d| d["status"] == status)
        })
        .await
    }

    async fn pay(&self, token: &str, booking: &str, card: &str) {
        let (status, body) = self
            .post(
                &format!("/bookings/{booking}/payment"),
                Some(token),
                json!({"card_number": card, "expiry_month": 12, "expiry_year": 2040,
                       "cvc": "123", "holder": "Card Holder"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
}

async fn booking_status(pool: &PgPool, booking: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM rm_bookings WHERE booking_id = $1::uuid")
        .bind(booking)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// No delivery left to send now (reminders due weeks from now aside), and
/// none being sent.
async fn settled(pool: &PgPool) -> bool {
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_deliveries \
         WHERE status = 'PENDING' AND next_attempt_at < now() + interval '1 hour'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    open == 0
}

fn pdf_text(path: &str) -> String {
    let out = Command::new("pdftotext")
        .args([path, "-"])
        .output()
        .expect("pdftotext (poppler-utils) reads the attachment");
    assert!(out.status.success(), "pdftotext failed on {path}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The token on its own line in an account mail.
fn token_in(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .map(|l| l.strip_prefix("Reset token: ").unwrap_or(l))
        .find(|l| l.len() > 40 && !l.contains(' '))
        .unwrap_or_else(|| panic!("no token in the mail: {body}"))
        .to_string()
}

// ------------------------------------------------------------------ tests

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn mails_and_webhooks_arrive_once_across_kills_and_a_mail_server_outage(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let receiver = Arc::new(Receiver::default());
    receiver.hold_first.store(true, Ordering::SeqCst);
    let hook_url = start_receiver(receiver.clone()).await;
    let mut engine = Engine::new(&options, smtp_port);
    let port = engine.port;
    let http = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    engine.start(&http).await;
    let api = Api {
        http: http.clone(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let admin = api.admin().await;
    let (status, hook) = api
        .post(
            "/webhooks",
            Some(&admin),
            json!({"url": hook_url, "events":
                ["booking.ticketed", "booking.payment_failed", "booking.cancelled"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    *receiver.secret.lock().unwrap() = hook["secret"].as_str().unwrap().to_string();
    let webhook_id = hook["webhook_id"].as_str().unwrap().to_string();

    // The mail server is down: customers register, one erases herself.
    let flight = api.flight(&admin).await;
    let (_ada, ada_token) = api.customer("ada@example.com", "Ada Lovelace").await;
    let (_bob, bob_token) = api.customer("bob@example.com", "Bob Babbage").await;
    let (_cy, cy_token) = api.customer("cy@example.com", "Cy Hopper").await;
    let (eve, eve_token) = api.customer("eve@example.com", "Eve Noether").await;
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            &format!("/users/{eve}"),
            Some(&eve_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Ada books and pays: the ticket webhook is held by the receiver, and
    // the engine is killed while it waits for the answer.
    let (status, ada_booking) = api.book(&ada_token, flight, "Ada Lovelace", "12A").await;
    assert_eq!(status, StatusCode::CREATED, "{ada_booking}");
    let ada_id = ada_booking["booking_id"].as_str().unwrap().to_string();
    let ada_pnr = ada_booking["pnr"].as_str().unwrap().to_string();
    api.pay(&ada_token, &ada_id, test_support::CARD_OK).await;
    tokio::time::timeout(Duration::from_secs(60), receiver.first_arrived.notified())
        .await
        .expect("the ticket webhook was never posted");
    engine.kill9();
    engine.start(&http).await;

    // Mails have been tried and failed while the server was down; the
    // erasure has reached the read model.
    let db = &pool;
    eventually(
        "failed mail attempts",
        Duration::from_secs(30),
        move || async move {
            let failed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM notification_deliveries \
             WHERE channel = 'email' AND attempts >= 2 AND last_error IS NOT NULL",
            )
            .fetch_one(db)
            .await
            .unwrap();
            (failed > 0).then_some(())
        },
    )
    .await;
    eventually(
        "the erasure in the read model",
        SETTLE,
        move || async move {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM rm_users WHERE user_id = $1")
                    .bind(eve)
                    .fetch_optional(db)
                    .await
                    .unwrap();
            (status.as_deref() == Some("ERASED")).then_some(())
        },
    )
    .await;

    // The mail server comes up, holds the first message it takes, and the
    // engine is killed in the middle of that conversation.
    let sink = SmtpSink::start(smtp_port, dir.path(), 12).await;
    let held = eventually("the first mail", SETTLE, || {
        let got = sink.received();
        async move { got.into_iter().next() }
    })
    .await;
    engine.kill9();
    engine.start(&http).await;

    // More to tell: a declined payment, a refused command, a reset, a
    // cancellation.
    let (status, bob_booking) = api.book(&bob_token, flight, "Bob Babbage", "12B").await;
    assert_eq!(status, StatusCode::CREATED, "{bob_booking}");
    let bob_id = bob_booking["booking_id"].as_str().unwrap().to_string();
    api.pay(&bob_token, &bob_id, test_support::CARD_DECLINED)
        .await;
    let (status, refused) = api.book(&cy_token, flight, "Cy Hopper", "12A").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let (status, refused) = api
        .post(
            &format!("/bookings/{ada_id}/cancel"),
            Some(&cy_token),
            json!({"reason": "not mine"}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {refused}");
    eventually("Ada's booking ticketed", SETTLE, || {
        let pool = pool.clone();
        let id = ada_id.clone();
        async move { (booking_status(&pool, &id).await.as_deref() == Some("TICKETED")).then_some(()) }
    })
    .await;
    let (status, body) = api
        .post(
            "/auth/password-reset",
            None,
            json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = api
        .post(
            &format!("/bookings/{ada_id}/cancel"),
            Some(&ada_token),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // Everything told, once: the mails.
    let expected_mails: BTreeSet<(String, String)> = [
        (ADMIN_EMAIL, "account.verify_email"),
        ("ada@example.com", "account.verify_email"),
        ("bob@example.com", "account.verify_email"),
        ("cy@example.com", "account.verify_email"),
        ("ada@example.com", "booking.ticketed"),
        ("bob@example.com", "booking.payment_failed"),
        ("ada@example.com", "account.password_reset"),
        ("ada@example.com", "booking.cancelled"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let mails: BTreeMap<String, Mail> = eventually("every mail", SETTLE, || {
        let got = sink.received();
        let pool = pool.clone();
        let expected = expected_mails.len();
        async move {
            let by_delivery: BTreeMap<String, Mail> = got
                .into_iter()
                .map(|m| (m.delivery.clone().unwrap_or_default(), m))
                .collect();
            (by_delivery.len() >= expected && settled(&pool).await).then_some(by_delivery)
        }
    })
    .await;
    // Nothing more trickles in after the queue is empty.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let raw = sink.received();
    let got: BTreeSet<(String, String)> = mails
        .values()
        .map(|m| {
            assert_eq!(m.rcpt_tos.len(), 1, "{m:?}");
            (m.rcpt_tos[0].clone(), m.event.clone().unwrap_or_default())
        })
        .collect();
    assert_eq!(got, expected_mails, "the mails, deduped by delivery id");
    assert_eq!(
        mails.len(),
        expected_mails.len(),
        "one delivery id per mail: {:?}",
        mails.keys()
    );
    assert!(
        raw.iter()
            .all(|m| !m.rcpt_tos.iter().any(|r| r.starts_with("eve"))),
        "a mail went to the erased user"
    );
    for (delivery, m) in &mails {
        assert_eq!(
            m.message_id.as_deref(),
            Some(format!("<{delivery}@booking-engine>").as_str()),
            "the Message-ID is the delivery id"
        );
    }
    // The message the kill cut off came again, under the same id.
    let held_id = held.delivery.clone().unwrap();
    assert!(
        raw.iter()
            .filter(|m| m.delivery.as_deref() == Some(held_id.as_str()))
            .count()
            >= 2,
        "the mail cut off by the kill was not sent again"
    );
    let eve_skipped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_deliveries WHERE user_id = $1 AND status = 'SKIPPED'",
    )
    .bind(eve)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(eve_skipped, 1, "the erased user's welcome mail is skipped");

    let mail = |to: &str, event: &str| {
        mails
            .values()
            .find(|m| m.rcpt_tos[0] == to && m.event.as_deref() == Some(event))
            .unwrap()
            .clone()
    };

    // The e-ticket, attached and readable.
    let ticketed = mail("ada@example.com", "booking.ticketed");
    assert!(ticketed.subject.contains(&ada_pnr), "{}", ticketed.subject);
    assert_eq!(ticketed.attachments.len(), 1, "{ticketed:?}");
    let pdf = &ticketed.attachments[0];
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(
        pdf.filename.as_deref(),
        Some(format!("e-ticket-{ada_pnr}.pdf").as_str())
    );
    let text = pdf_text(&pdf.path);
    assert!(
        text.contains(&ada_pnr),
        "the PNR is on the e-ticket: {text}"
    );
    assert!(
        text.to_uppercase().contains("LOVELACE"),
        "the passenger: {text}"
    );
    assert!(text.contains("12A"), "the seat: {text}");
    assert!(text.contains("BA117"), "the flight: {text}");

    let cancelled = mail("ada@example.com", "booking.cancelled");
    assert!(cancelled.body.contains("Refund"), "{}", cancelled.body);
    let failed = mail("bob@example.com", "booking.payment_failed");
    assert!(
        failed
            .subject
            .contains(bob_booking["pnr"].as_str().unwrap()),
        "{}",
        failed.subject
    );

    // The account mails' tokens work.
    let verify = mail("ada@example.com", "account.verify_email");
    let (status, body) = api
        .post(
            "/auth/verify-email",
            None,
            json!({"token": token_in(&verify.body)}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let reset = mail("ada@example.com", "account.password_reset");
    let new_password = "a much newer horse battery staple";
    let (status, body) = api
        .post(
            "/auth/password-reset/confirm",
            None,
            json!({"token": token_in(&reset.body), "new_password": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = api.login("ada@example.com", new_password).await;
    assert_eq!(status, StatusCode::OK);

    // The webhooks: signed, once per delivery id, the right ones.
    let hits = receiver.hits.lock().unwrap().clone();
    assert!(
        hits.iter().all(|h| h.signature_ok),
        "an unsigned or badly signed delivery"
    );
    let mut by_delivery: BTreeMap<String, Hit> = BTreeMap::new();
    for h in &hits {
        assert_eq!(h.body["delivery_id"], h.delivery, "{}", h.raw);
        by_delivery.insert(h.delivery.clone(), h.clone());
    }
    let got: BTreeSet<(String, String)> = by_delivery
        .values()
        .map(|h| {
            (
                h.body["event_type"].as_str().unwrap().to_string(),
                h.body["data"]["booking_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("booking.ticketed", &ada_id),
        ("booking.payment_failed", &bob_id),
        ("booking.cancelled", &ada_id),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, expected, "the webhooks, deduped by delivery id");
    assert_eq!(by_delivery.len(), expected.len());
    assert!(
        hits.len() > by_delivery.len(),
        "the webhook cut off by the kill was not posted again"
    );
    let ticket = by_delivery
        .values()
        .find(|h| h.body["event_type"] == "booking.ticketed")
        .unwrap();
    assert_eq!(ticket.body["data"]["pnr"], ada_pnr.as_str());
    let ticket_number = ticket.body["data"]["tickets"][0].as_str().unwrap();
    assert!(
        text.contains(ticket_number),
        "the ticket number is on the e-ticket"
    );
    for h in by_delivery.values() {
        for personal in ["@example.com", "Lovelace", "Babbage"] {
            assert!(
                !h.raw.contains(personal),
                "personal data in a webhook: {}",
                h.raw
            );
        }
    }
    let (status, list) = api
        .send(
            reqwest::Method::GET,
            &format!("/webhooks/{webhook_id}/deliveries"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = list["deliveries"].as_array().expect("a list of deliveries");
    assert_eq!(listed.len(), 3, "{list}");
    assert!(listed.iter().all(|d| d["status"] == "DELIVERED"), "{list}");

    engine.stop().await;
    drop(sink);
    pool.close().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn a_webhook_that_keeps_failing_is_dead_lettered_then_sent_again_by_an_admin(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let receiver = Arc::new(Receiver::default());
    receiver.failing.store(true, Ordering::SeqCst);
    let hook_url = start_receiver(receiver.clone()).await;
    // Nothing listens at the mail port: mails fail, webhooks are tested.
    let mut engine = Engine::new(&options, free_port());
    engine.max_attempts = 3;
    let port = engine.port;
    let http = Client::new();
    engine.start(&http).await;
    let api = Api {
        http: http.clone(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let admin = api.admin().await;
    let (status, hook) = api
        .post(
            "/webhooks",
            Some(&admin),
            json!({"url": hook_url, "events": ["booking.payment_failed"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    *receiver.secret.lock().unwrap() = hook["secret"].as_str().unwrap().to_string();
    let webhook_id = hook["webhook_id"].as_str().unwrap().to_string();
    let deliveries = format!("/webhooks/{webhook_id}/deliveries");

    let flight = api.flight(&admin).await;
    let (_, token) = api.customer("bob@example.com", "Bob Babbage").await;
    let (status, booking) = api.book(&token, flight, "Bob Babbage", "12B").await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let booking_id = booking["booking_id"].as_str().unwrap().to_string();
    api.pay(&token, &booking_id, test_support::CARD_DECLINED)
        .await;

    let dead = api.newest_delivery_once(&admin, &deliveries, "DEAD").await;
    assert_eq!(dead["attempts"], 3, "{dead}");
    assert_eq!(dead["event_type"], "booking.payment_failed");
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "{dead}"
    );
    assert_eq!(
        receiver.posts.load(Ordering::SeqCst),
        3,
        "three attempts, then no more"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.posts.load(Ordering::SeqCst),
        3,
        "a dead delivery is not retried"
    );

    // Only admins see or retry deliveries; unknown ids are 404.
    let (status, _) = api
        .send(reqwest::Method::GET, &deliveries, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let delivery_id = dead["delivery_id"].as_str().unwrap().to_string();
    let retry = format!("{deliveries}/{delivery_id}/retry");
    let (status, _) = api.post(&retry, Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .post(
            &format!("/webhooks/{webhook_id}/deliveries/{}/retry", Uuid::now_v7()),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .send(
            reqwest::Method::GET,
            &format!("/webhooks/{}/deliveries", Uuid::now_v7()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The receiver is fixed; the admin sends it again.
    receiver.failing.store(false, Ordering::SeqCst);
    let (status, body) = api.post(&retry, Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let delivered = api
        .newest_delivery_once(&admin, &deliveries, "DELIVERED")
        .await;
    assert_eq!(delivered["delivery_id"], delivery_id.as_str());
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert!(hits
        .iter()
        .all(|h| h.signature_ok && h.delivery == delivery_id));
    assert_eq!(hits[3].body["data"]["booking_id"], booking_id.as_str());

    engine.stop().await;
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn flight_changes_expiries_and_the_reminder_are_told(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let sink = SmtpSink::start(smtp_port, dir.path(), 0).await;
    let receiver = Arc::new(Receiver::default());
    let hook_url = start_receiver(receiver.clone()).await;
    let mut engine = Engine::new(&options, smtp_port);
    // Unpaid holds expire within the test.
    engine.hold_ttl_secs = 5;
    let http = Client::new();
    engine.start(&http).await;
    let api = Api {
        http: http.clone(),
        base: format!("http://127.0.0.1:{}", engine.port),
    };
    let admin = api.admin().await;
    let (status, hook) = api
        .post(
            "/webhooks",
            Some(&admin),
            json!({"url": hook_url, "events": ["flight.rescheduled", "flight.cancelled",
                "booking.expired", "booking.reminder"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    *receiver.secret.lock().unwrap() = hook["secret"].as_str().unwrap().to_string();

    let flight = api.flight(&admin).await;
    let (_, ada) = api.customer("ada@example.com", "Ada Lovelace").await;
    let (_, bob) = api.customer("bob@example.com", "Bob Babbage").await;
    let (status, booking) = api.book(&ada, flight, "Ada Lovelace", "12A").await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let ada_booking = booking["booking_id"].as_str().unwrap().to_string();
    let pnr = booking["pnr"].as_str().unwrap().to_string();
    api.pay(&ada, &ada_booking, test_support::CARD_OK).await;
    // Bob never pays: his hold expires.
    let (status, booking) = api.book(&bob, flight, "Bob Babbage", "12B").await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let bob_booking = booking["booking_id"].as_str().unwrap().to_string();
    eventually("Ada's booking ticketed", SETTLE, || {
        let pool = pool.clone();
        let id = ada_booking.clone();
        async move { (booking_status(&pool, &id).await.as_deref() == Some("TICKETED")).then_some(()) }
    })
    .await;
    // Her reminder waits for 24 h before a departure a month away.
    let reminder: (String, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT status, next_attempt_at FROM notification_deliveries \
         WHERE event_type = 'booking.reminder' AND channel = 'email'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(reminder.0, "PENDING");
    assert!(reminder.1 > chrono::Utc::now() + chrono::Duration::days(28));

    let got = |want: &'static str| {
        let sink = &sink;
        move || {
            let mails = sink.received();
            async move { mails.into_iter().find(|m| m.event.as_deref() == Some(want)) }
        }
    };
    let expired = eventually("the expiry mail", SETTLE, got("booking.expired")).await;
    assert_eq!(expired.rcpt_tos, ["bob@example.com"]);

    // The flight moves to tomorrow, 10 s past 24 h from now: the reminder
    // moves with it and goes out in 10 s.
    let departs = chrono::Utc::now() + chrono::Duration::hours(24) + chrono::Duration::seconds(10);
    let (status, body) = api
        .post(
            &format!("/flights/{flight}/reschedule"),
            Some(&admin),
            json!({"departs_at": departs, "arrives_at": departs + chrono::Duration::hours(8)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let moved = eventually("the rescheduling mail", SETTLE, got("flight.rescheduled")).await;

    assert_eq!(moved.rcpt_tos, ["ada@example.com"]);
    assert!(moved.subject.contains(&pnr), "{}", moved.subject);
    assert!(
        moved
            .body
            .contains(&departs.format("%Y-%m-%d %H:%M UTC").to_string()),
        "the new time: {}",
        moved.body
    );
    let reminded = eventually("the reminder", SETTLE, got("booking.reminder")).await;
    assert_eq!(reminded.rcpt_tos, ["ada@example.com"]);
    assert!(reminded.subject.contains(&pnr), "{}", reminded.subject);

    // The flight is cancelled: Ada hears of it and of her refund.
    let (status, body) = api
        .post(
            &format!("/flights/{flight}/cancel"),
            Some(&admin),
            json!({"reason": "aircraft unavailable"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let cancelled = eventually(
        "the flight cancellation mail",
        SETTLE,
        got("flight.cancelled"),
    )
    .await;
    assert_eq!(cancelled.rcpt_tos, ["ada@example.com"]);
    assert!(
        cancelled.body.contains("aircraft unavailable"),
        "{}",
        cancelled.body
    );
    let refunded = eventually(
        "the booking cancellation mail",
        SETTLE,
        got("booking.cancelled"),
    )
    .await;
    assert_eq!(refunded.rcpt_tos, ["ada@example.com"]);
    assert!(refunded.body.contains("Refund: 420"), "{}", refunded.body);

    eventually("the queue to empty", SETTLE, || {
        let pool = pool.clone();
        async move { settled(&pool).await.then_some(()) }
    })
    .await;
    // Once each, by kind and recipient (the welcome mails aside).
    let mut kinds: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in sink.received() {
        *kinds
            .entry((m.rcpt_tos[0].clone(), m.event.unwrap_or_default()))
            .or_default() += 1;
    }
    kinds.retain(|(_, kind), _| kind != "account.verify_email");
    let expected: BTreeMap<(String, String), usize> = [
        ("ada@example.com", "booking.ticketed"),
        ("ada@example.com", "flight.rescheduled"),
        ("ada@example.com", "booking.reminder"),
        ("ada@example.com", "flight.cancelled"),
        ("ada@example.com", "booking.cancelled"),
        ("bob@example.com", "booking.expired"),
    ]
    .into_iter()
    .map(|(a, b)| ((a.to_string(), b.to_string()), 1))
    .collect();
    assert_eq!(kinds, expected);

    // Webhooks: the flight's news once per flight, without customers.
    let hits = receiver.hits.lock().unwrap().clone();
    assert!(hits.iter().all(|h| h.signature_ok));
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for h in &hits {
        by_kind
            .entry(h.body["event_type"].as_str().unwrap().to_string())
            .or_default()
            .push(h.body["data"].clone());
    }
    let kinds: Vec<&str> = by_kind.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "booking.expired",
            "booking.reminder",
            "flight.cancelled",
            "flight.rescheduled"
        ]
    );
    assert!(by_kind.values().all(|v| v.len() == 1), "{by_kind:?}");
    assert_eq!(
        by_kind["flight.rescheduled"][0]["flight_id"],
        flight.to_string()
    );
    assert!(by_kind["flight.rescheduled"][0].get("booking_id").is_none());
    assert_eq!(
        by_kind["booking.expired"][0]["booking_id"],
        bob_booking.as_str()
    );
    assert_eq!(by_kind["booking.reminder"][0]["pnr"], pnr.as_str());

    engine.stop().await;
    drop(sink);
    pool.close().await;
}
