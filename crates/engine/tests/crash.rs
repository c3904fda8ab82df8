//! The crash test (issue 5, "Proof"): the real `booking serve` binary is
//! killed with SIGKILL at random moments while customers book, pay with
//! every kind of test card, leave bookings unpaid and cancel them, and an
//! admin cancels a whole flight. After each kill the engine is started again
//! on the same port, and the clients retry what the kill cut off with the
//! same `Idempotency-Key`.
//!
//! Once the last engine has settled every saga, the event log itself (not a
//! read model) and the simulated provider's books are checked:
//! - every booking is final, and exactly the bookings the clients were told
//!   about exist (no retried request created a second one);
//! - no seat is held or sold twice, at the end or at any point of the seat
//!   log; a ticketed booking owns its seats, nobody else holds any;
//! - every payment is settled; at most one capture per payment, and per
//!   booking one plus one per move's difference; the log's captures and
//!   refunds match the provider's books;
//!   every capture belongs to a ticketed booking or is refunded as the
//!   booking's end (and the refund policy) says;
//! - every saga is `COMPLETED` or `COMPENSATED` (none parked), the cancelled
//!   flight sold nothing, and the hash chains verify;
//! - trips: a discount code some bookings race for is never redeemed past
//!   its cap, and exactly the discounted bookings redeemed it; passengers
//!   taken off paid bookings were refunded their share by the policy, and
//!   the booking's later cancellation refunded only what was left; a
//!   passenger whose seat change was accepted ends in the new seat; a
//!   booking whose move to another flight (while held, or once paid; the
//!   second 30-day flight is dearer, so a paid move there charges the
//!   difference first) was accepted is on that flight (or, its difference
//!   refunded, on its own when that flight was cancelled first), one
//!   refused never moved;
//! - itineraries: some bookings fly a 30-day LHR-JFK flight and its JFK-BOS
//!   connection as one booking (held, paid, ticketed, cancelled and, when
//!   the cancelled flight is theirs, refunded whole): a ticketed one owns
//!   its seats on both flights and has a ticket per passenger on each, and
//!   no seat of either is sold to a booking that is not ticketed;
//! - the waiting list: customers refused by a small flight's full cabin join
//!   its line, take the offers they are made (pay, leave unpaid, cancel) or
//!   leave the line; exactly the entries they were told of exist, offers
//!   went out in line order and each is a booking its customer was told
//!   of, every offer ended accepted or lapsed, and nobody waits for seats
//!   that are free.
//!
//! The run is random but seeded: the seed is printed, and
//! `CRASH_SEED=<seed>` replays the same plan (timing still varies).
//! `CRASH_BOOKINGS` and `CRASH_KILLS` change the scale.
//!
//! Two tests at the end reproduce, deterministically, the one engine bug
//! this test caught (a seat left sold to a cancelled booking after another
//! process wrote the flight: lanes now guard the seats stream's version on
//! every append).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::booking::{Booking, BookingEvent, BookingStatus, CancelledBy};
use domain::flight::Flight;
use domain::payment::{Payment, PaymentStatus};
use domain::seats::{SeatEvent, SeatInventory, SeatState};
use domain::values::{Seat, TicketNumber};
use domain::waitlist::WaitlistStatus;
use domain::Aggregate;
use eventstore::{EventStore, PgEventStore, Position, Sealer, StreamId};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

const ADMIN_EMAIL: &str = "root@example.com";
const PASSWORD: &str = "correct horse battery staple";
const JWT_SECRET: &str = "a-crash-test-secret-that-is-long-enough-for-hs256";
/// Short, so unpaid bookings expire within the test.
const HOLD_TTL_SECS: u64 = 6;
const CUSTOMERS: usize = 16;
/// How long a client keeps retrying one request before calling the engine
/// dead.
const GIVE_UP: Duration = Duration::from_secs(120);
/// How long the last engine gets to settle every saga.
const SETTLE: Duration = Duration::from_secs(120);

use test_support::{database_url, free_port};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------------ engine

/// The `booking serve` child; killed (and reaped) if the test fails.
struct Engine {
    child: Option<Child>,
    database_url: String,
    port: u16,
    log: PathBuf,
    starts: usize,
    /// `BOOKING_ROLE`: `all`, or one role per process.
    role: &'static str,
    hold_ttl_secs: u64,
    gateway_latency_ms: u64,
}

impl Engine {
    fn new(database_url: String, port: u16, log: PathBuf) -> Self {
        Self {
            child: None,
            database_url,
            port,
            log,
            starts: 0,
            role: "all",
            hold_ttl_secs: HOLD_TTL_SECS,
            gateway_latency_ms: 40,
        }
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the engine log");
        let child = Command::new(env!("CARGO_BIN_EXE_booking"))
            .arg("serve")
            .env("DATABASE_URL", &self.database_url)
            .env("BOOKING_ADDR", format!("127.0.0.1:{}", self.port))
            .env("BOOKING_JWT_SECRET", JWT_SECRET)
            .env("BOOKING_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("BOOKING_ADMIN_PASSWORD", PASSWORD)
            .env("BOOKING_HOLD_TTL_SECS", self.hold_ttl_secs.to_string())
            .env(
                "BOOKING_WAITLIST_OFFER_SECS",
                self.hold_ttl_secs.to_string(),
            )
            .env("BOOKING_PAYMENT_TIMEOUT_SECS", "30")
            // A provider round trip widens the window between a charge and
            // its record, where a kill hurts most.
            .env(
                "BOOKING_GATEWAY_LATENCY_MS",
                self.gateway_latency_ms.to_string(),
            )
            .env("BOOKING_DB_MAX_CONNECTIONS", "12")
            .env("BOOKING_ROLE", self.role)
            // A load test: the request and hold limits are for real clients.
            .env("BOOKING_RATE_LIMITS", "off")
            .env("BOOKING_HOLD_LIMITS", "off")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start booking serve");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Starts the engine and waits until it answers `/health/ready`.
    async fn start(&mut self, http: &Client) -> Duration {
        let started = Instant::now();
        // The port was free a moment ago; if the new process cannot bind it
        // (or dies early for another reason) try again a few times.
        for _ in 0..5 {
            self.spawn();
            let ready = format!("http://127.0.0.1:{}/health/ready", self.port);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(r) = http.get(&ready).send().await {
                    if r.status() == StatusCode::OK {
                        return started.elapsed();
                    }
                }
                let child = self.child.as_mut().unwrap();
                if let Some(status) = child.try_wait().unwrap() {
                    eprintln!(
                        "booking serve exited before it was ready ({status}); see {}",
                        self.log.display()
                    );
                    self.child = None;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "booking serve never got ready; see {}",
                    self.log.display()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("booking serve would not start; see {}", self.log.display());
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.as_ref().unwrap().id()).unwrap())
    }

    /// SIGKILL: no drain, no shutdown hook, no flushed anything.
    fn kill9(&mut self) {
        kill(self.pid(), Signal::SIGKILL).expect("SIGKILL the engine");
        let status = self.child.take().unwrap().wait().expect("reap the engine");
        assert!(!status.success(), "a killed engine cannot exit cleanly");
    }

    /// SIGTERM at the end, so the test database can be dropped.
    async fn stop(&mut self) {
        kill(self.pid(), Signal::SIGTERM).expect("SIGTERM the engine");
        let deadline = Instant::now() + Duration::from_secs(20);
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "booking serve exited with {status}");
                self.child = None;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "booking serve still running 20 s after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

// ------------------------------------------------------------------ client

/// What the clients saw, for the report.
#[derive(Default)]
struct Stats {
    retries: BTreeMap<&'static str, usize>,
    /// Answers replayed from an earlier attempt that the client never heard.
    replayed_after_retry: BTreeMap<&'static str, usize>,
    server_errors: Vec<String>,
    server_error_count: usize,
}

#[derive(Clone)]
struct Api {
    http: Client,
    base: String,
    stats: Arc<Mutex<Stats>>,
}

impl Api {
    /// POSTs until the engine gives an answer that is not "try again":
    /// connection errors (a killed engine), 5xx and 409 `CONFLICT`
    /// (contention, never recorded) are retried with the same key, so a
    /// request the kill cut off either ran once or runs now.
    async fn post(
        &self,
        label: &'static str,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let started = Instant::now();
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(k) = key {
                req = req.header("Idempotency-Key", k);
            }
            let answer = match req.send().await {
                Ok(r) => {
                    let status = r.status();
                    let replayed = r.headers().contains_key("idempotent-replayed");
                    r.bytes().await.ok().map(|b| {
                        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                        (status, v, replayed)
                    })
                }
                Err(_) => None,
            };
            {
                let mut stats = self.stats.lock().unwrap();
                match answer {
                    Some((status, v, _)) if status.is_server_error() => {
                        stats.server_error_count += 1;
                        if stats.server_errors.len() < 20 {
                            stats
                                .server_errors
                                .push(format!("{label} {path}: {status} {v}"));
                        }
                    }
                    Some((status, v, _))
                        if status == StatusCode::CONFLICT && v["code"] == "CONFLICT" => {}
                    Some((status, v, replayed)) => {
                        if replayed && attempt > 1 {
                            *stats.replayed_after_retry.entry(label).or_default() += 1;
                        }
                        return (status, v);
                    }
                    None => {}
                }
                *stats.retries.entry(label).or_default() += 1;
            }
            assert!(
                started.elapsed() < GIVE_UP,
                "{label} {path}: no answer from the engine for {GIVE_UP:?}"
            );
            tokio::time::sleep(Duration::from_millis((50 * attempt).min(400))).await;
        }
    }

    /// DELETEs until the engine answers (a kill cuts connections).
    async fn delete(&self, label: &'static str, path: &str, token: &str) -> StatusCode {
        let started = Instant::now();
        loop {
            let r = self
                .http
                .delete(format!("{}{path}", self.base))
                .bearer_auth(token)
                .send()
                .await;
            match r {
                Ok(r) if !r.status().is_server_error() => return r.status(),
                _ => *self.stats.lock().unwrap().retries.entry(label).or_default() += 1,
            }
            assert!(
                started.elapsed() < GIVE_UP,
                "{label} {path}: no answer from the engine for {GIVE_UP:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn register_and_login(&self, email: &str) -> String {
        let (status, body) = self
            .post(
                "register",
                "/auth/register",
                None,
                None,
                &json!({"email": email, "password": PASSWORD, "full_name": "Crash Test"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.login(email).await
    }

    async fn login(&self, email: &str) -> String {
        let (status, body) = self
            .post(
                "login",
                "/auth/login",
                None,
                None,
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }
}

// ------------------------------------------------------------------ plans

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Card {
    Approved,
    Declined,
    InsufficientFunds,
    Transient,
    OtherApproved,
}

impl Card {
    const ALL: [Card; 5] = [
        Card::Approved,
        Card::Declined,
        Card::InsufficientFunds,
        Card::Transient,
        Card::OtherApproved,
    ];

    fn number(self) -> &'static str {
        match self {
            Card::Approved => "4242424242424242",
            Card::Declined => "4000000000000002",
            Card::InsufficientFunds => "4000000000009995",
            Card::Transient => "4000000000000119",
            Card::OtherApproved => "5555555555554444",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Then {
    LeaveUnpaid,
    CancelHeld,
    Pay { card: Card, cancel: bool },
}

#[derive(Debug, Clone)]
struct Plan {
    flight: usize,
    /// `"economy"`, `"business"` or a seat such as `"12A"`.
    passengers: Vec<String>,
    then: Then,
    think: Duration,
    /// Books with the discount code [`CODE`].
    code: bool,
    /// Once paid (and not cancelled), takes the second passenger off.
    drop_one: bool,
    /// Once held, moves the first passenger to this seat of their cabin
    /// (economy, business).
    change: Option<(String, String)>,
    /// Moves the booking to the other flight of the route that departs in
    /// 30 days (0 and 2), while held or once paid.
    relocate: Option<Relocate>,
    /// Books `flight` (0 or 2) and the JFK-BOS connection [`CONNECTION`]
    /// as one booking of two flights.
    connect: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relocate {
    WhileHeld,
    OncePaid,
}

/// The flight a plan's booking moves to: 0 and 2 trade places.
fn other_flight(flight: usize) -> usize {
    if flight == 0 {
        CANCELLED_FLIGHT
    } else {
        0
    }
}

/// The discount code some plans race for, and how many uses it has.
const CODE: &str = "CRASH10";
const CODE_USES: usize = 25;

/// Three flights: 0 departs in 30 days (full refunds), 1 in 12 hours (a
/// customer's cancellation refunds half), 2 in 30 days and is cancelled by
/// the admin half-way through.
const FLIGHTS: [(&str, i64); 3] = [("BA117", 30 * 24), ("BA217", 12), ("BA317", 30 * 24)];
const CANCELLED_FLIGHT: usize = 2;
/// A fourth flight of 2 business and 3 economy seats, full at once: the
/// customers it refuses join its waiting lists.
const SMALL_FLIGHT: usize = FLIGHTS.len();
/// A JFK-BOS flight leaving two hours after the 30-day flights land: some
/// bookings fly one of them and this connection as one itinerary.
const CONNECTION: usize = SMALL_FLIGHT + 1;

/// The cabin a seat such as `"12A"` is in (business rows 1-5).
fn cabin_of(seat: &str) -> &'static str {
    let row: u32 = seat
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(10);
    if row <= 5 {
        "business"
    } else {
        "economy"
    }
}
/// How long a customer in line waits for an offer before leaving the line.
const WAIT_FOR_OFFER: Duration = Duration::from_secs(15);

fn random_seat(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.15) {
        format!(
            "{}{}",
            rng.gen_range(1..=5),
            ['A', 'C', 'D', 'F'][rng.gen_range(0..4)]
        )
    } else {
        format!(
            "{}{}",
            rng.gen_range(10..=40),
            ['A', 'B', 'C', 'D', 'E', 'F'][rng.gen_range(0..6)]
        )
    }
}

fn plans(rng: &mut StdRng, n: usize) -> Vec<Plan> {
    (0..n)
        .map(|_| {
            let change = rng.gen_bool(0.2).then(|| {
                let economy = format!(
                    "{}{}",
                    rng.gen_range(10..=40),
                    ['A', 'B', 'C', 'D', 'E', 'F'][rng.gen_range(0..6)]
                );
                let business = format!(
                    "{}{}",
                    rng.gen_range(1..=5),
                    ['A', 'C', 'D', 'F'][rng.gen_range(0..4)]
                );
                (economy, business)
            });
            if rng.gen_bool(0.15) {
                let cabin = if rng.gen_bool(0.5) {
                    "economy"
                } else {
                    "business"
                };
                return Plan {
                    flight: SMALL_FLIGHT,
                    passengers: vec![cabin.to_string()],
                    // Often given back, so that the lines move.
                    then: match rng.gen_range(0..10) {
                        0..=2 => Then::LeaveUnpaid,
                        3..=4 => Then::CancelHeld,
                        _ => Then::Pay {
                            card: Card::ALL[rng.gen_range(0..Card::ALL.len())],
                            cancel: rng.gen_bool(0.5),
                        },
                    },
                    think: Duration::from_millis(rng.gen_range(200..1500)),
                    code: false,
                    drop_one: false,
                    change: None,
                    relocate: None,
                    connect: false,
                };
            }
            let flight = rng.gen_range(0..FLIGHTS.len());
            let count = match rng.gen_range(0..10) {
                0..=5 => 1,
                6..=8 => 2,
                _ => 3,
            };
            let mut passengers: Vec<String> = vec![];
            while passengers.len() < count {
                let p = match rng.gen_range(0..10) {
                    0..=5 => "economy".to_string(),
                    6 => "business".to_string(),
                    _ => random_seat(rng),
                };
                if !passengers.contains(&p) || !p.starts_with(|c: char| c.is_ascii_digit()) {
                    passengers.push(p);
                }
            }
            let then = match rng.gen_range(0..100) {
                0..=9 => Then::LeaveUnpaid,
                10..=17 => Then::CancelHeld,
                _ => Then::Pay {
                    card: Card::ALL[rng.gen_range(0..Card::ALL.len())],
                    cancel: rng.gen_bool(0.25),
                },
            };
            let drop_one = passengers.len() >= 2 && rng.gen_bool(0.4);
            // A booking that moves keeps its seats' names out of the check
            // of seat changes: it moves or changes a seat, not both.
            let relocate = (flight != 1 && change.is_none() && rng.gen_bool(0.25)).then(|| {
                if matches!(then, Then::Pay { cancel: false, .. }) && !drop_one && rng.gen_bool(0.5)
                {
                    Relocate::OncePaid
                } else {
                    Relocate::WhileHeld
                }
            });
            // A seat change names the first flight's seat, a move one flight:
            // an itinerary does neither here.
            let connect =
                flight != 1 && change.is_none() && relocate.is_none() && rng.gen_bool(0.25);
            Plan {
                flight,
                passengers,
                then,
                think: Duration::from_millis(rng.gen_range(200..1500)),
                code: rng.gen_bool(0.3),
                drop_one,
                change,
                relocate,
                connect,
            }
        })
        .collect()
}

/// What happened to one plan, as the client saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    create: u16,
    create_code: String,
    booking: Option<Uuid>,
    pay: Option<u16>,
    payment_id: Option<Uuid>,
    cancel: Option<u16>,
    /// The passenger taken off, once that was accepted.
    dropped: Option<Uuid>,
    /// A passenger moved to a seat, once that was accepted.
    moved: Option<(Uuid, String)>,
    /// The answer to moving the booking to another flight, and that
    /// flight.
    relocated: Option<(u16, Uuid)>,
    /// The answer to joining the waiting list, and the entry it made.
    join: Option<u16>,
    entry: Option<Uuid>,
    /// The booking the waiting list offered (also in `booking`).
    offer: Option<Uuid>,
}

struct Drive {
    api: Api,
    plans: Vec<Plan>,
    flights: Vec<Uuid>,
    next: AtomicUsize,
    done: AtomicUsize,
    store: PgEventStore,
    sealer: Sealer,
}

impl Drive {
    async fn booking(&self, id: Uuid) -> Booking {
        fold::<Booking>(
            &self.store,
            &self.sealer,
            &StreamId::new(Booking::CATEGORY, id),
        )
        .await
        .0
    }

    async fn run(&self, worker: usize, token: &str) -> Vec<(usize, Seen)> {
        let mut seen = vec![];
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            let Some(plan) = self.plans.get(i) else {
                return seen;
            };
            let s = self.one(worker, i, plan, token).await;
            self.done.fetch_add(1, Ordering::SeqCst);
            seen.push((i, s));
        }
    }

    async fn one(&self, worker: usize, i: usize, plan: &Plan, token: &str) -> Seen {
        const LAST_NAMES: [&str; 3] = ["Lovelace", "Turing", "Hopper"];
        let passengers: Vec<Value> = plan
            .passengers
            .iter()
            .enumerate()
            .map(|(n, p)| {
                let mut v = json!({"first_name": "Ada", "last_name": LAST_NAMES[n],
                                   "date_of_birth": "1990-12-10"});
                match (p.starts_with(|c: char| c.is_ascii_digit()), plan.connect) {
                    (true, false) => v["seat"] = json!(p),
                    // The seat on the first flight; the connection's in the
                    // same cabin.
                    (true, true) => {
                        v["seat"] = json!({self.flights[plan.flight].to_string(): p});
                        v["cabin"] = json!(cabin_of(p));
                    }
                    (false, _) => v["cabin"] = json!(p),
                }
                v
            })
            .collect();
        let mut body = match plan.connect {
            true => json!({"flights": [self.flights[plan.flight], self.flights[CONNECTION]],
                           "passengers": passengers}),
            false => json!({"flight_id": self.flights[plan.flight], "passengers": passengers}),
        };
        if plan.code {
            body["discount_code"] = json!(CODE);
        }
        let (status, answer) = self
            .api
            .post(
                "create",
                "/bookings",
                Some(token),
                Some(&format!("create-{worker}-{i}")),
                &body,
            )
            .await;
        let mut seen = Seen {
            create: status.as_u16(),
            create_code: answer["code"].as_str().unwrap_or_default().to_string(),
            ..Seen::default()
        };
        if status != StatusCode::CREATED {
            assert!(
                matches!(status.as_u16(), 409 | 422),
                "booking {i}: unexpected answer {status} {answer}"
            );
            if plan.flight == SMALL_FLIGHT && status == StatusCode::CONFLICT {
                if let Some(offer) = self.wait_in_line(i, plan, token, &mut seen).await {
                    seen.booking = Some(offer);
                    seen.offer = Some(offer);
                    self.follow_up(i, plan, offer, &Value::Null, token, &mut seen)
                        .await;
                }
            }
            return seen;
        }
        let booking: Uuid = answer["booking_id"].as_str().unwrap().parse().unwrap();
        seen.booking = Some(booking);
        if let Some((economy, business)) = &plan.change {
            let passenger = answer_passenger(&answer, 0);
            let seat = if answer["passengers"][0]["cabin"] == "business" {
                business
            } else {
                economy
            };
            let (status, body) = self
                .api
                .post(
                    "change seat",
                    &format!("/bookings/{booking}/passengers/{passenger}/seat"),
                    Some(token),
                    Some(&format!("seat-{i}")),
                    &json!({"seat": seat}),
                )
                .await;
            assert!(
                matches!(status.as_u16(), 200 | 409),
                "seat change of {booking} to {seat}: {status} {body}"
            );
            if status == StatusCode::OK {
                seen.moved = Some((passenger, seat.clone()));
            }
        }
        if plan.relocate == Some(Relocate::WhileHeld) {
            let to = self.flights[other_flight(plan.flight)];
            let status = self.relocate(i, 0, booking, plan.flight, token).await;
            seen.relocated = Some((status, to));
        }
        self.follow_up(i, plan, booking, &answer, token, &mut seen)
            .await;
        seen
    }

    /// What the plan does with its booking once it has one.
    async fn follow_up(
        &self,
        i: usize,
        plan: &Plan,
        booking: Uuid,
        seen_answer: &Value,
        token: &str,
        seen: &mut Seen,
    ) {
        tokio::time::sleep(plan.think).await;
        match plan.then {
            Then::LeaveUnpaid => {}
            Then::CancelHeld => {
                seen.cancel = Some(self.cancel(booking, token, &format!("cancel-{i}")).await);
            }
            Then::Pay { card, cancel } => {
                let body = json!({"card_number": card.number(), "expiry_month": 12,
                                  "expiry_year": 2040, "cvc": "123", "holder": "Ada Lovelace"});
                let (status, answer) = self
                    .api
                    .post(
                        "pay",
                        &format!("/bookings/{booking}/payment"),
                        Some(token),
                        Some(&format!("pay-{i}")),
                        &body,
                    )
                    .await;
                seen.pay = Some(status.as_u16());
                if status == StatusCode::ACCEPTED {
                    seen.payment_id = answer["payment_id"].as_str().and_then(|s| s.parse().ok());
                } else {
                    // Too late (the hold lapsed while the engine was down,
                    // or the flight was cancelled): a final answer.
                    assert_eq!(status, StatusCode::CONFLICT, "booking {i}: {answer}");
                }
                if plan.relocate == Some(Relocate::OncePaid) && status == StatusCode::ACCEPTED {
                    seen.relocated = self.relocate_once_paid(i, plan, booking, token).await;
                } else if cancel && status == StatusCode::ACCEPTED {
                    seen.cancel = self.cancel_once_paid(i, booking, token).await;
                } else if plan.drop_one && status == StatusCode::ACCEPTED {
                    let passenger: Uuid = answer_passenger(seen_answer, 1);
                    seen.dropped = self.drop_once_paid(i, booking, passenger, token).await;
                }
            }
        }
    }

    /// Joins the line of the cabin that refused the plan and waits for an
    /// offer; leaves the line when none comes in time. The offered booking,
    /// if one came.
    async fn wait_in_line(
        &self,
        i: usize,
        plan: &Plan,
        token: &str,
        seen: &mut Seen,
    ) -> Option<Uuid> {
        let flight = self.flights[SMALL_FLIGHT];
        let (status, answer) = self
            .api
            .post(
                "join waitlist",
                &format!("/flights/{flight}/waitlist"),
                Some(token),
                Some(&format!("join-{i}")),
                &json!({"cabin": plan.passengers[0], "passengers": [
                    {"first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10"}]}),
            )
            .await;
        seen.join = Some(status.as_u16());
        // 409: the cabin has seats again, or this customer waits already.
        assert!(
            matches!(status.as_u16(), 201 | 409),
            "plan {i}: join: {status} {answer}"
        );
        if status != StatusCode::CREATED {
            return None;
        }
        let entry: Uuid = answer["entry_id"].as_str().unwrap().parse().unwrap();
        seen.entry = Some(entry);
        if let Some(offer) = self.offer_of(flight, entry, WAIT_FOR_OFFER).await {
            return Some(offer);
        }
        match self
            .api
            .delete("leave waitlist", &format!("/waitlist/{entry}"), token)
            .await
        {
            StatusCode::NO_CONTENT => None,
            // Offered meanwhile: the offer is the customer's.
            StatusCode::CONFLICT => self.offer_of(flight, entry, Duration::from_secs(5)).await,
            other => panic!("plan {i}: leaving the line answered {other}"),
        }
    }

    /// The booking offered to `entry`, read from the log, once there is one.
    async fn offer_of(&self, flight: Uuid, entry: Uuid, within: Duration) -> Option<Uuid> {
        let deadline = Instant::now() + within;
        loop {
            let (seats, _) = fold::<SeatInventory>(
                &self.store,
                &self.sealer,
                &StreamId::new(SeatInventory::CATEGORY, flight),
            )
            .await;
            if let Some((booking, _)) = seats.waitlist_entry(entry).and_then(|e| e.offer) {
                return Some(booking);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn cancel(&self, booking: Uuid, token: &str, key: &str) -> u16 {
        let (status, answer) = self
            .api
            .post(
                "cancel",
                &format!("/bookings/{booking}/cancel"),
                Some(token),
                Some(key),
                &json!({"reason": "change of plans"}),
            )
            .await;
        assert!(
            matches!(status.as_u16(), 202 | 409),
            "cancel {booking}: {status} {answer}"
        );
        status.as_u16()
    }

    /// Runs `attempt` (numbered from 1) whenever the booking is confirmed
    /// or ticketed (what a customer can do once paid cannot be done while
    /// the payment is in flight), until it gives an answer; `None` when the
    /// booking ended first or 40 s passed.
    async fn once_paid<T, F>(&self, booking: Uuid, attempt: impl Fn(usize) -> F) -> Option<T>
    where
        F: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut n = 0;
        while Instant::now() < deadline {
            match self.booking(booking).await.status {
                Some(BookingStatus::Confirmed | BookingStatus::Ticketed) => {
                    n += 1;
                    if let Some(answer) = attempt(n).await {
                        return Some(answer);
                    }
                }
                Some(s) if s.is_terminal() => return None,
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    }

    /// Takes `passenger` off a paid booking; the passenger, if that was
    /// accepted.
    async fn drop_once_paid(
        &self,
        i: usize,
        booking: Uuid,
        passenger: Uuid,
        token: &str,
    ) -> Option<Uuid> {
        self.once_paid(booking, move |attempt| async move {
            let (status, answer) = self
                .api
                .post(
                    "drop passenger",
                    &format!("/bookings/{booking}/passengers/{passenger}/cancel"),
                    Some(token),
                    Some(&format!("drop-{i}-{attempt}")),
                    &json!({"reason": "stays home"}),
                )
                .await;
            assert!(
                matches!(status.as_u16(), 202 | 409),
                "drop {passenger} of {booking}: {status} {answer}"
            );
            (status == StatusCode::ACCEPTED).then_some(passenger)
        })
        .await
    }

    /// Moves a booking from the plan's flight to the other one of the
    /// route; the answer (202, or 409 when that flight is full, cancelled,
    /// or the booking cannot move in its state).
    async fn relocate(
        &self,
        i: usize,
        attempt: usize,
        booking: Uuid,
        from: usize,
        token: &str,
    ) -> u16 {
        let body = json!({"from_flight_id": self.flights[from],
                          "to_flight_id": self.flights[other_flight(from)]});
        let (status, answer) = self
            .api
            .post(
                "move",
                &format!("/bookings/{booking}/move"),
                Some(token),
                Some(&format!("move-{i}-{attempt}")),
                &body,
            )
            .await;
        assert!(
            matches!(status.as_u16(), 202 | 409),
            "move of {booking}: {status} {answer}"
        );
        status.as_u16()
    }

    /// Moves a paid booking: the answer and the flight, once one was
    /// final.
    async fn relocate_once_paid(
        &self,
        i: usize,
        plan: &Plan,
        booking: Uuid,
        token: &str,
    ) -> Option<(u16, Uuid)> {
        let to = self.flights[other_flight(plan.flight)];
        self.once_paid(booking, move |attempt| async move {
            let status = self.relocate(i, attempt, booking, plan.flight, token).await;
            // A 409 may be a moment's (the saga was ticketing); a third one
            // is taken as final (the other flight is cancelled or full).
            (status == 202 || attempt >= 3).then_some((status, to))
        })
        .await
    }

    /// Cancels a paid booking as its customer.
    async fn cancel_once_paid(&self, i: usize, booking: Uuid, token: &str) -> Option<u16> {
        self.once_paid(booking, move |attempt| async move {
            let status = self
                .cancel(booking, token, &format!("cancel-{i}-{attempt}"))
                .await;
            (status == 202).then_some(status)
        })
        .await
    }
}

/// The id of the `n`-th passenger of a booking answer.
fn answer_passenger(answer: &Value, n: usize) -> Uuid {
    answer["passengers"][n]["passenger_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a booking answer names its passengers")
}

// ------------------------------------------------------------------ the log

/// Replays one stream: the folded aggregate and its events with the time
/// each was recorded.
async fn fold<A: Aggregate>(
    store: &PgEventStore,
    sealer: &Sealer,
    stream: &StreamId,
) -> (A, Vec<(DateTime<Utc>, A::Event)>) {
    let recorded = store.read_stream(stream, 1, None).await.unwrap();
    let mut state = A::default();
    let mut events = Vec::with_capacity(recorded.len());
    for e in recorded {
        let data = sealer.open(e.data).await.unwrap();
        let event: A::Event = domain::decode(&e.event_type, e.schema_version, data)
            .unwrap_or_else(|err| panic!("{stream} v{}: {err}", e.version));
        state = state.evolve(&event);
        events.push((e.recorded_at, event));
    }
    (state, events)
}

async fn stream_ids(pool: &PgPool, category: &str) -> Vec<Uuid> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT stream_id FROM es_streams WHERE stream_id LIKE $1")
            .bind(format!("{category}-%"))
            .fetch_all(pool)
            .await
            .unwrap();
    ids.iter()
        .map(|s| s[category.len() + 1..].parse().unwrap())
        .collect()
}

struct Charge {
    reference: String,
    merchant_reference: String,
    amount: Decimal,
    status: String,
    attempts: i32,
}

struct SagaRow {
    kind: String,
    booking_id: Option<Uuid>,
    flight_id: Uuid,
    status: String,
    attempts: i32,
    last_error: Option<String>,
}

/// A flight's seat events, each with the time it was recorded.
type SeatLog = Vec<(DateTime<Utc>, SeatEvent)>;

/// One raw event: stream, version, type, recorded at, tx, metadata, data.
type RawEvent = (String, i64, String, DateTime<Utc>, String, Value, Value);

/// Everything the checks read: the log, the provider's books, the sagas.
struct World {
    now: DateTime<Utc>,
    flights: Vec<Uuid>,
    flight_states: HashMap<Uuid, Flight>,
    bookings: BTreeMap<Uuid, (Booking, Vec<BookingEvent>)>,
    payments: BTreeMap<Uuid, Payment>,
    seats: BTreeMap<Uuid, (SeatInventory, SeatLog)>,
    charges: Vec<Charge>,
    /// Refunded per charge reference: (count, total).
    refunds: HashMap<String, (usize, Decimal)>,
    sagas: Vec<SagaRow>,
    /// The discount code's uses: (booking, amount).
    redemptions: Vec<(Uuid, Decimal)>,
}

impl World {
    async fn load(pool: &PgPool, store: &PgEventStore, sealer: &Sealer, flights: &[Uuid]) -> Self {
        let now = Utc::now();
        let mut flight_states = HashMap::new();
        let mut seats = BTreeMap::new();
        for &f in flights {
            let flight = fold::<Flight>(store, sealer, &StreamId::new(Flight::CATEGORY, f)).await;
            flight_states.insert(f, flight.0);
            let inventory =
                fold::<SeatInventory>(store, sealer, &StreamId::new(SeatInventory::CATEGORY, f))
                    .await;
            seats.insert(f, inventory);
        }
        let mut bookings = BTreeMap::new();
        for id in stream_ids(pool, Booking::CATEGORY).await {
            let (b, events) =
                fold::<Booking>(store, sealer, &StreamId::new(Booking::CATEGORY, id)).await;
            let events = events.into_iter().map(|(_, e)| e).collect();
            bookings.insert(id, (b, events));
        }
        let mut payments = BTreeMap::new();
        for id in stream_ids(pool, Payment::CATEGORY).await {
            let (p, _) =
                fold::<Payment>(store, sealer, &StreamId::new(Payment::CATEGORY, id)).await;
            payments.insert(id, p);
        }
        let charges = sqlx::query_as::<_, (String, String, String, String, i32)>(
            "SELECT reference, merchant_reference, amount::text, status, attempts \
             FROM gateway_sim_charges",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(
            |(reference, merchant_reference, amount, status, attempts)| Charge {
                reference,
                merchant_reference,
                amount: amount.parse().unwrap(),
                status,
                attempts,
            },
        )
        .collect();
        let refunds = sqlx::query_as::<_, (String, i64, String)>(
            "SELECT charge_reference, count(*), sum(amount)::text \
             FROM gateway_sim_refunds GROUP BY charge_reference",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(charge, count, sum)| (charge, (count as usize, sum.parse().unwrap())))
        .collect();
        let sagas = sqlx::query_as::<_, (String, Option<Uuid>, Uuid, String, i32, Option<String>)>(
            "SELECT kind, booking_id, flight_id, status, attempts, last_error FROM sagas",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(
            |(kind, booking_id, flight_id, status, attempts, last_error)| SagaRow {
                kind,
                booking_id,
                flight_id,
                status,
                attempts,
                last_error,
            },
        )
        .collect();
        let redemptions = sqlx::query_as::<_, (Uuid, String)>(
            "SELECT (data->>'booking_id')::uuid, data->'amount'->>'amount' \
             FROM es_events WHERE event_type = 'DiscountRedeemed'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(b, a)| (b, a.parse().unwrap()))
        .collect();
        Self {
            redemptions,
            now,
            flights: flights.to_vec(),
            flight_states,
            bookings,
            payments,
            seats,
            charges,
            refunds,
            sagas,
        }
    }

    /// Why the engine is not done yet, if it is not.
    fn unsettled(&self) -> Option<String> {
        let open: Vec<_> = self
            .bookings
            .iter()
            .filter(|(_, (b, _))| {
                !b.status
                    .is_some_and(|s| s.is_terminal() || s == BookingStatus::Ticketed)
            })
            .map(|(id, (b, _))| format!("{id} {:?}", b.status))
            .collect();
        if !open.is_empty() {
            return Some(format!(
                "{} bookings not final, e.g. {}",
                open.len(),
                open[0]
            ));
        }
        let running: Vec<_> = self
            .sagas
            .iter()
            .filter(|s| !matches!(s.status.as_str(), "COMPLETED" | "COMPENSATED"))
            .map(|s| {
                format!(
                    "{} {:?} {} {:?}",
                    s.kind, s.booking_id, s.status, s.last_error
                )
            })
            .collect();
        if !running.is_empty() {
            return Some(format!(
                "{} sagas still open, e.g. {}",
                running.len(),
                running[0]
            ));
        }
        let with_saga = self.sagas.iter().filter(|s| s.kind == "fulfilment").count();
        if with_saga != self.bookings.len() {
            return Some(format!(
                "{with_saga} fulfilment sagas for {} bookings",
                self.bookings.len()
            ));
        }
        let pending = self
            .payments
            .values()
            .filter(|p| p.status == Some(PaymentStatus::Pending))
            .count();
        if pending > 0 {
            return Some(format!("{pending} payments pending"));
        }
        for (flight, (inventory, _)) in &self.seats {
            if let Some(why) = self.line_unserved(inventory) {
                return Some(format!("flight {flight}: {why}"));
            }
        }
        None
    }

    /// Why a flight's line is not done: an offer not settled, or someone
    /// waiting for seats that are free.
    fn line_unserved(&self, inventory: &SeatInventory) -> Option<String> {
        for e in inventory.waitlist() {
            match e.status {
                WaitlistStatus::Offered => {
                    return Some(format!(
                        "entry {} still holds its offer {:?}",
                        e.entry_id, e.offer
                    ))
                }
                WaitlistStatus::Waiting
                    if inventory.available_in(e.cabin, self.now) >= e.seats_needed() =>
                {
                    return Some(format!(
                        "entry {} waits for {} seats of {:?}, which has {} free",
                        e.entry_id,
                        e.seats_needed(),
                        e.cabin,
                        inventory.available_in(e.cabin, self.now)
                    ))
                }
                _ => {}
            }
        }
        None
    }

    /// Every invariant the crash test promises; one line per breach.
    fn violations(&self, seen: &[(usize, Seen)]) -> Vec<String> {
        let mut v = vec![];
        self.check_bookings(seen, &mut v);
        self.check_seats(&mut v);
        self.check_payments(&mut v);
        self.check_sagas(&mut v);
        self.check_discounts(&mut v);
        self.check_waitlist(seen, &mut v);
        v
    }

    /// The line: exactly the entries customers were told of; offers in line
    /// order, each a booking of its entry's customer that the customer was
    /// told of; an entry accepted exactly when its offer was paid for;
    /// every offer settled, nobody left waiting for free seats.
    fn check_waitlist(&self, seen: &[(usize, Seen)], v: &mut Vec<String>) {
        let told: BTreeSet<Uuid> = seen.iter().filter_map(|(_, s)| s.entry).collect();
        let offers_told: BTreeSet<Uuid> = seen.iter().filter_map(|(_, s)| s.offer).collect();
        let mut logged = BTreeSet::new();
        for (flight, (inventory, events)) in &self.seats {
            let line = inventory.waitlist();
            logged.extend(line.iter().map(|e| e.entry_id));
            if let Some(why) = self.line_unserved(inventory) {
                v.push(format!(
                    "flight {flight}: the line was left unserved: {why}"
                ));
            }
            let mut last_offered: HashMap<String, usize> = HashMap::new();
            let mut offered = BTreeSet::new();
            for (_, e) in events {
                let SeatEvent::WaitlistOffered(o) = e else {
                    continue;
                };
                let Some(n) = line.iter().position(|e| e.entry_id == o.entry_id) else {
                    v.push(format!("offer {} to an entry not in line", o.booking_id));
                    continue;
                };
                let entry = &line[n];
                // Every party is one passenger: nobody is passed over.
                let cabin = format!("{:?}", entry.cabin);
                if last_offered.get(&cabin).is_some_and(|last| *last > n) {
                    v.push(format!(
                        "flight {flight}: entry {} (place {n}) offered after a later one",
                        o.entry_id
                    ));
                }
                last_offered.insert(cabin, n);
                if !offered.insert(o.entry_id) {
                    v.push(format!("entry {} offered twice", o.entry_id));
                }
                match self.bookings.get(&o.booking_id) {
                    Some((b, booking_events)) => {
                        let info = b.info.as_ref();
                        if info.map(|i| (i.customer_id, i.flight_id))
                            != Some((entry.customer_id, *flight))
                        {
                            v.push(format!(
                                "offer {} is not a booking of {} on {flight}",
                                o.booking_id, entry.customer_id
                            ));
                        }
                        let paid = booking_events
                            .iter()
                            .any(|e| matches!(e, BookingEvent::BookingConfirmed(_)));
                        if (entry.status == WaitlistStatus::Accepted) != paid {
                            v.push(format!(
                                "entry {} is {:?} but its offer {} ended {:?} (confirmed: {paid})",
                                o.entry_id, entry.status, o.booking_id, b.status
                            ));
                        }
                    }
                    None => v.push(format!("offer {} has no booking", o.booking_id)),
                }
                if !offers_told.contains(&o.booking_id) {
                    v.push(format!(
                        "offer {} of entry {} reached no customer",
                        o.booking_id, o.entry_id
                    ));
                }
            }
        }
        for id in logged.difference(&told) {
            v.push(format!(
                "entry {id} is in a line but no customer was told of it"
            ));
        }
        for id in told.difference(&logged) {
            v.push(format!("entry {id} was answered 201 but is in no line"));
        }
    }

    /// The code's cap held, and its uses are exactly the discounted
    /// bookings'.
    fn check_discounts(&self, v: &mut Vec<String>) {
        if self.redemptions.len() > CODE_USES {
            v.push(format!(
                "code {CODE} was redeemed {} times, its cap is {CODE_USES}",
                self.redemptions.len()
            ));
        }
        let mut redeemed: HashMap<Uuid, Decimal> = HashMap::new();
        for (booking, amount) in &self.redemptions {
            if redeemed.insert(*booking, *amount).is_some() {
                v.push(format!("booking {booking} redeemed {CODE} twice"));
            }
        }
        for (id, (b, _)) in &self.bookings {
            let discount = b.info.as_ref().and_then(|i| i.discount.as_ref());
            match (discount, redeemed.get(id)) {
                (Some(d), Some(amount)) if d.amount.amount() == *amount => {}
                (None, None) => {}
                (d, r) => v.push(format!("booking {id}: discount {d:?} but redemption {r:?}")),
            }
        }
        for id in redeemed.keys() {
            if !self.bookings.contains_key(id) {
                v.push(format!(
                    "{CODE} was redeemed by booking {id}, not in the log"
                ));
            }
        }
    }

    fn check_bookings(&self, seen: &[(usize, Seen)], v: &mut Vec<String>) {
        // Exactly the bookings the clients heard of: a request retried after
        // a kill never made a second booking, nor one nobody was told of.
        let told: BTreeSet<Uuid> = seen.iter().filter_map(|(_, s)| s.booking).collect();
        let logged: BTreeSet<Uuid> = self.bookings.keys().copied().collect();
        for id in logged.difference(&told) {
            let (b, _) = &self.bookings[id];
            v.push(format!(
                "booking {id} ({:?}, seats {:?}) is in the log but no client was told of it",
                b.status,
                b.seats()
            ));
        }
        for id in told.difference(&logged) {
            v.push(format!(
                "booking {id} was answered 201 but is not in the log"
            ));
        }
        let mut tickets: HashMap<TicketNumber, Uuid> = HashMap::new();
        for (id, (b, _)) in &self.bookings {
            let status = b.status;
            if !status.is_some_and(|s| s.is_terminal() || s == BookingStatus::Ticketed) {
                v.push(format!(
                    "booking {id} ended {status:?}, not in a final state"
                ));
            }
            if status == Some(BookingStatus::Ticketed) {
                for p in &b.passengers {
                    // A ticket per flight: the first, and each connection.
                    let numbers = std::iter::once(&p.ticket_number)
                        .chain(p.legs.iter().map(|l| &l.ticket_number));
                    for number in numbers {
                        match number {
                            None => v.push(format!(
                                "ticketed booking {id}: passenger {} lacks a ticket",
                                p.passenger_id
                            )),
                            Some(t) => {
                                if let Some(other) = tickets.insert(t.clone(), *id) {
                                    v.push(format!("ticket {t:?} issued to {other} and {id}"));
                                }
                            }
                        }
                    }
                }
            }
        }
        for (i, s) in seen {
            let Some(id) = s.booking else { continue };
            let Some((b, _)) = self.bookings.get(&id) else {
                continue;
            };
            if let Some(p) = s.payment_id {
                if b.payment_id != Some(p) {
                    v.push(format!(
                        "plan {i}: payment {p} was accepted but booking {id} pays with {:?}",
                        b.payment_id
                    ));
                }
            }
            // A move the customer was told of happened, to that flight; one
            // refused left the booking where it was.
            if let Some((status, to)) = s.relocated {
                let events = &self.bookings[&id].1;
                let moved_to: Vec<Uuid> = events
                    .iter()
                    .filter_map(|e| match e {
                        BookingEvent::BookingMoved(m) => Some(m.to_flight_id),
                        _ => None,
                    })
                    .collect();
                let on = b.info.as_ref().map(|i| i.flight_id);
                // A paid booking's move to the dearer flight is accepted
                // before its difference is charged: it is let go (and the
                // difference refunded) if that flight is cancelled first.
                let let_go = events.iter().any(
                    |e| matches!(e, BookingEvent::BookingMoveAbandoned(a) if a.to_flight_id == to),
                );
                match status {
                    202 if let_go && moved_to.is_empty() && on != Some(to) => {}
                    202 if moved_to != vec![to] || on != Some(to) => v.push(format!(
                        "plan {i}: booking {id} was moved to {to} (202) but moved to {moved_to:?} and is on {on:?}"
                    )),
                    409 if !moved_to.is_empty() => v.push(format!(
                        "plan {i}: booking {id} was refused a move (409) but moved to {moved_to:?}"
                    )),
                    _ => {}
                }
            }
            if let Some((p, seat)) = &s.moved {
                let now = b
                    .passengers
                    .iter()
                    .chain(b.cancelled.iter().map(|c| &c.passenger))
                    .find(|x| x.passenger_id == *p)
                    .and_then(|x| x.seat)
                    .map(|x| x.to_string());
                if now.as_deref() != Some(seat.as_str()) {
                    v.push(format!(
                        "plan {i}: passenger {p} of {id} was moved to {seat} but sits in {now:?}"
                    ));
                }
            }
            if let Some(p) = s.dropped {
                if !b.cancelled.iter().any(|c| c.passenger.passenger_id == p) {
                    v.push(format!(
                        "plan {i}: passenger {p} of {id} was taken off, but the booking still has them"
                    ));
                }
            }
            if s.cancel == Some(202) && b.status != Some(BookingStatus::Cancelled) {
                v.push(format!(
                    "plan {i}: cancel of {id} was accepted but it ended {:?}",
                    b.status
                ));
            }
        }
    }

    fn check_seats(&self, v: &mut Vec<String>) {
        for (&flight, (inventory, events)) in &self.seats {
            let cancelled = self.flight_states[&flight].is_cancelled();
            // The final seat map.
            let mut sold_to: HashMap<Uuid, BTreeSet<Seat>> = HashMap::new();
            for (seat, _) in inventory.seats() {
                match inventory.status_at(seat, self.now) {
                    Some(SeatState::Held {
                        booking_id,
                        expires_at,
                    }) => v.push(format!(
                        "flight {flight}: seat {seat} still held by {booking_id} until {expires_at}"
                    )),
                    Some(SeatState::Sold { booking_id }) => {
                        sold_to.entry(booking_id).or_default().insert(seat);
                        let status = self.bookings.get(&booking_id).and_then(|(b, _)| b.status);
                        if status != Some(BookingStatus::Ticketed) {
                            v.push(format!(
                                "flight {flight}: seat {seat} is sold to {booking_id}, which is {status:?}"
                            ));
                        }
                        if cancelled {
                            v.push(format!("cancelled flight {flight}: seat {seat} is sold"));
                        }
                    }
                    _ => {}
                }
            }
            let mut owner: HashMap<Seat, Uuid> = HashMap::new();
            for (id, (b, _)) in &self.bookings {
                if !b.flight_ids().contains(&flight) || b.status != Some(BookingStatus::Ticketed) {
                    continue;
                }
                if cancelled {
                    v.push(format!(
                        "booking {id} is ticketed on the cancelled flight {flight}"
                    ));
                }
                let want: BTreeSet<Seat> = b.seats_on(flight).into_iter().collect();
                let has = sold_to.get(id).cloned().unwrap_or_default();
                if want != has {
                    v.push(format!(
                        "ticketed booking {id} has seats {want:?} but owns {has:?} on the seat map"
                    ));
                }
                for seat in want {
                    if let Some(other) = owner.insert(seat, *id) {
                        v.push(format!(
                            "flight {flight}: seat {seat} ticketed to {other} and {id}"
                        ));
                    }
                }
            }
            self.replay_seats(flight, inventory, events, v);
        }
    }

    /// Walks the seat log on its own rules: at no point was a seat held
    /// while another booking's hold on it ran, or sold twice.
    fn replay_seats(
        &self,
        flight: Uuid,
        inventory: &SeatInventory,
        events: &[(DateTime<Utc>, SeatEvent)],
        v: &mut Vec<String>,
    ) {
        let mut state: BTreeMap<Seat, SeatState> = BTreeMap::new();
        let breach = |v: &mut Vec<String>, what: String| {
            v.push(format!("flight {flight} seat log: {what}"));
        };
        for (at, e) in events {
            match e {
                SeatEvent::InventoryOpened(o) => {
                    for s in &o.seats {
                        state.insert(s.seat, SeatState::Available);
                    }
                }
                SeatEvent::SeatsHeld(h) => {
                    for seat in &h.seats {
                        match state.get(seat) {
                            Some(SeatState::Sold { booking_id }) => breach(
                                v,
                                format!("{seat} held by {} at {at} while sold to {booking_id}", h.booking_id),
                            ),
                            Some(SeatState::Held { booking_id, expires_at })
                                if *expires_at > *at =>
                            {
                                breach(
                                    v,
                                    format!(
                                        "{seat} held by {} at {at} while held by {booking_id} until {expires_at}",
                                        h.booking_id
                                    ),
                                )
                            }
                            None => breach(v, format!("{seat} held but not on the flight")),
                            _ => {}
                        }
                        state.insert(
                            *seat,
                            SeatState::Held {
                                booking_id: h.booking_id,
                                expires_at: h.expires_at,
                            },
                        );
                    }
                }
                SeatEvent::SeatsConfirmed(c) => {
                    for seat in &c.seats {
                        match state.get(seat) {
                            Some(SeatState::Held { booking_id, .. })
                                if *booking_id == c.booking_id => {}
                            other => breach(
                                v,
                                format!(
                                    "{seat} sold to {} at {at} but it was {other:?}",
                                    c.booking_id
                                ),
                            ),
                        }
                        state.insert(
                            *seat,
                            SeatState::Sold {
                                booking_id: c.booking_id,
                            },
                        );
                    }
                }
                SeatEvent::SeatsReleased(r) => {
                    for seat in &r.seats {
                        if !matches!(state.get(seat), Some(SeatState::Held { booking_id, .. }) if *booking_id == r.booking_id)
                        {
                            breach(
                                v,
                                format!(
                                    "{seat} released by {} at {at} but it was {:?}",
                                    r.booking_id,
                                    state.get(seat)
                                ),
                            );
                        }
                        state.insert(*seat, SeatState::Available);
                    }
                }
                SeatEvent::HoldExpired(x) => {
                    for seat in &x.seats {
                        if !matches!(state.get(seat), Some(SeatState::Held { booking_id, .. }) if *booking_id == x.booking_id)
                        {
                            breach(
                                v,
                                format!(
                                    "{seat} expired for {} at {at} but it was {:?}",
                                    x.booking_id,
                                    state.get(seat)
                                ),
                            );
                        }
                        state.insert(*seat, SeatState::Available);
                    }
                }
                SeatEvent::SeatsReturned(r) => {
                    for seat in &r.seats {
                        if state.get(seat)
                            != Some(&SeatState::Sold {
                                booking_id: r.booking_id,
                            })
                        {
                            breach(
                                v,
                                format!(
                                    "{seat} returned by {} at {at} but it was {:?}",
                                    r.booking_id,
                                    state.get(seat)
                                ),
                            );
                        }
                        state.insert(*seat, SeatState::Available);
                    }
                }
                SeatEvent::SeatChanged(c) => {
                    let from = state.get(&c.from).copied();
                    let owned = match from {
                        Some(SeatState::Held {
                            booking_id,
                            expires_at,
                        }) => booking_id == c.booking_id && expires_at > *at,
                        Some(SeatState::Sold { booking_id }) => booking_id == c.booking_id,
                        _ => false,
                    };
                    if !owned {
                        breach(
                            v,
                            format!(
                                "{} moved by {} at {at} but it was {from:?}",
                                c.from, c.booking_id
                            ),
                        );
                    }
                    match state.get(&c.to).map(|s| s.at(*at)) {
                        Some(SeatState::Available) => {}
                        other => breach(
                            v,
                            format!(
                                "{} taken by {} at {at} but it was {other:?}",
                                c.to, c.booking_id
                            ),
                        ),
                    }
                    if let Some(from) = from {
                        state.insert(c.to, from);
                    }
                    state.insert(c.from, SeatState::Available);
                }
                // The line moves no seat: an offer's seats come in its
                // `SeatsHeld`, checked above.
                SeatEvent::WaitlistJoined(_)
                | SeatEvent::WaitlistOffered(_)
                | SeatEvent::WaitlistOfferAccepted(_)
                | SeatEvent::WaitlistEntryLapsed(_)
                | SeatEvent::WaitlistWithdrawn(_) => {}
            }
        }
        // The aggregate's own fold agrees with this walk.
        for (seat, slot) in inventory.seats() {
            let mine = state.get(&seat).copied().unwrap_or(SeatState::Available);
            if slot.state.at(self.now) != mine.at(self.now) {
                breach(
                    v,
                    format!(
                        "{seat}: the aggregate says {:?}, the log walk {mine:?}",
                        slot.state
                    ),
                );
            }
        }
    }

    fn check_payments(&self, v: &mut Vec<String>) {
        let mut charges_of: HashMap<&str, Vec<&Charge>> = HashMap::new();
        for c in &self.charges {
            charges_of
                .entry(c.merchant_reference.as_str())
                .or_default()
                .push(c);
        }
        // Provider charges for payments the log does not know: money taken
        // with no record.
        for c in &self.charges {
            let known = c
                .merchant_reference
                .parse::<Uuid>()
                .is_ok_and(|id| self.payments.contains_key(&id));
            if !known {
                v.push(format!(
                    "provider charge {} ({}, {}) names payment {}, which is not in the log",
                    c.reference, c.status, c.amount, c.merchant_reference
                ));
            }
        }
        let mut captures_per_booking: HashMap<Uuid, usize> = HashMap::new();
        // Per booking, over its payments: captured, refunded.
        let mut money_of: HashMap<Uuid, (Decimal, Decimal)> = HashMap::new();
        for (id, p) in &self.payments {
            let Some(requested) = &p.requested else {
                v.push(format!("payment {id} has no request"));
                continue;
            };
            let booking_id = requested.booking_id;
            let charges = charges_of
                .get(id.to_string().as_str())
                .cloned()
                .unwrap_or_default();
            let captured: Vec<&&Charge> =
                charges.iter().filter(|c| c.status == "captured").collect();
            *captures_per_booking.entry(booking_id).or_default() += captured.len();
            if captured.len() > 1 {
                v.push(format!(
                    "payment {id} was charged {} times: {:?}",
                    captured.len(),
                    captured.iter().map(|c| &c.reference).collect::<Vec<_>>()
                ));
            }
            if p.status == Some(PaymentStatus::Pending) {
                v.push(format!("payment {id} is still pending"));
            }
            let refunded_log = p.refunded().map(|m| m.amount()).unwrap_or_default();
            match (&p.captured, captured.first()) {
                (Some(money), Some(charge)) => {
                    if p.gateway_reference.as_deref() != Some(charge.reference.as_str()) {
                        v.push(format!(
                            "payment {id} records capture {:?}, the provider captured {}",
                            p.gateway_reference, charge.reference
                        ));
                    }
                    if money.amount() != charge.amount {
                        v.push(format!(
                            "payment {id} records {} captured, the provider {}",
                            money.amount(),
                            charge.amount
                        ));
                    }
                    let (count, sum) = self
                        .refunds
                        .get(&charge.reference)
                        .copied()
                        .unwrap_or_default();
                    if sum != refunded_log || count != p.refunds.len() {
                        v.push(format!(
                            "payment {id}: the log refunded {refunded_log} in {} refunds, the provider {sum} in {count}",
                            p.refunds.len()
                        ));
                    }
                }
                (Some(_), None) => v.push(format!(
                    "payment {id} records a capture ({:?}) the provider never made",
                    p.gateway_reference
                )),
                (None, Some(charge)) => v.push(format!(
                    "payment {id} ({:?}): the provider captured {} ({}) but the log has no capture",
                    p.status, charge.reference, charge.amount
                )),
                (None, None) => {
                    if !p.refunds.is_empty() {
                        v.push(format!("payment {id} refunds a payment never captured"));
                    }
                }
            }
            // The payment is the booking's, or a move's difference.
            let Some((b, _)) = self.bookings.get(&booking_id) else {
                v.push(format!(
                    "payment {id} is for booking {booking_id}, not in the log"
                ));
                continue;
            };
            let first = b.payment_id == Some(*id);
            let supplement = b.supplements.iter().find(|s| s.payment_id == *id);
            if !first && supplement.is_none() {
                v.push(format!(
                    "payment {id} ({:?}, captured {:?}) is for booking {booking_id}, which pays with {:?}",
                    p.status, p.captured, b.payment_id
                ));
            }
            if b.status == Some(BookingStatus::Ticketed) {
                if first && p.captured.is_none() {
                    v.push(format!(
                        "ticketed booking {booking_id}: payment {id} not captured"
                    ));
                }
                // The first payment, and the difference of a move that
                // happened, are invoiced.
                let billed = first || supplement.is_some_and(|s| s.moved);
                if billed && p.captured.is_some() && p.invoice.is_none() {
                    v.push(format!(
                        "ticketed booking {booking_id}: payment {id} not invoiced"
                    ));
                }
            }
            let money = money_of.entry(booking_id).or_default();
            money.0 += p.captured.map(|m| m.amount()).unwrap_or_default();
            money.1 += refunded_log;
        }
        // Every capture of a booking belongs to it while it is ticketed, or
        // went back as its end says.
        for (booking_id, (captured_amount, refunded_log)) in money_of {
            let Some((b, events)) = self.bookings.get(&booking_id) else {
                continue;
            };
            let owed = match b.status {
                Some(BookingStatus::Ticketed) => {
                    self.check_dropped(booking_id, b, events, v);
                    // What the passengers taken off, a cheaper move and a
                    // move let go after its difference was captured were
                    // owed.
                    b.refund
                        .map(|m| m.amount())
                        .unwrap_or_default()
                        .min(captured_amount)
                }
                Some(BookingStatus::Cancelled) => {
                    self.check_dropped(booking_id, b, events, v);
                    let policy = self.refund_policy(booking_id, b, events);
                    let recorded = events.iter().find_map(|e| match e {
                        BookingEvent::BookingCancelled(c) => Some(c.refund.amount()),
                        _ => None,
                    });
                    if let Some(recorded) = recorded {
                        if recorded != policy {
                            v.push(format!(
                                "cancelled booking {booking_id}: refund {recorded} recorded, the policy gives {policy}"
                            ));
                        }
                    }
                    // Every refund decided: passengers taken off, moves,
                    // then the booking.
                    b.refund
                        .map(|m| m.amount())
                        .unwrap_or(policy)
                        .min(captured_amount)
                }
                _ => captured_amount,
            };
            if refunded_log != owed {
                v.push(format!(
                    "booking {booking_id} ({:?}): captured {captured_amount}, refunded {refunded_log}, owed back {owed}",
                    b.status
                ));
            }
        }
        for (booking, n) in captures_per_booking {
            // One capture for the booking, one per move's difference.
            let allowed = 1 + self
                .bookings
                .get(&booking)
                .map_or(0, |(b, _)| b.supplements.len());
            if n > allowed {
                v.push(format!("booking {booking} was charged {n} times"));
            }
        }
    }

    /// Each passenger taken off a paid booking was refunded their share by
    /// the policy; off a held one, nothing.
    fn check_dropped(&self, id: Uuid, b: &Booking, events: &[BookingEvent], v: &mut Vec<String>) {
        let Some(info) = &b.info else { return };
        let departs = self.flight_states[&info.flight_id]
            .departs_at()
            .unwrap_or_else(|| panic!("booking {id}: flight without a schedule"));
        for e in events {
            let BookingEvent::PassengerCancelled(c) = e else {
                continue;
            };
            let share = c.share.amount();
            let policy = match c.booking_status {
                BookingStatus::Held => Decimal::ZERO,
                _ if departs - c.cancelled_at > chrono::Duration::hours(24) => share,
                _ => (share / Decimal::from(2)).round_dp(2),
            };
            if c.refund.amount() != policy {
                v.push(format!(
                    "booking {id}: passenger {} taken off with refund {}, the policy gives {policy}",
                    c.passenger_id,
                    c.refund.amount()
                ));
            }
        }
    }

    /// The refund a cancelled booking is owed, from the contract: nothing
    /// for a hold, everything when the flight is cancelled or more than a
    /// day ahead, half within a day; of what the passengers left on it
    /// account for.
    fn refund_policy(&self, id: Uuid, b: &Booking, events: &[BookingEvent]) -> Decimal {
        let Some(info) = &b.info else {
            return Decimal::ZERO;
        };
        let Some(c) = events.iter().find_map(|e| match e {
            BookingEvent::BookingCancelled(c) => Some(c),
            _ => None,
        }) else {
            return Decimal::ZERO;
        };
        let total = b.value_left().unwrap_or(info.total).amount();
        let departs = self.flight_states[&info.flight_id]
            .departs_at()
            .unwrap_or_else(|| panic!("booking {id}: flight without a schedule"));
        match (c.cancelled_by, c.previous_status) {
            (_, BookingStatus::Held) => Decimal::ZERO,
            (CancelledBy::FlightCancelled, _) => total,
            _ if departs - c.cancelled_at > chrono::Duration::hours(24) => total,
            _ => (total / Decimal::from(2)).round_dp(2),
        }
    }

    fn check_sagas(&self, v: &mut Vec<String>) {
        for s in &self.sagas {
            if s.status == "PARKED" {
                v.push(format!(
                    "saga {} of {:?} parked after {} attempts: {:?}",
                    s.kind, s.booking_id, s.attempts, s.last_error
                ));
            } else if !matches!(s.status.as_str(), "COMPLETED" | "COMPENSATED") {
                v.push(format!(
                    "saga {} of {:?} is {}",
                    s.kind, s.booking_id, s.status
                ));
            }
        }
        let with_saga: HashSet<Uuid> = self.sagas.iter().filter_map(|s| s.booking_id).collect();
        for id in self.bookings.keys() {
            if !with_saga.contains(id) {
                v.push(format!("booking {id} has no fulfilment saga"));
            }
        }
        let cancelled = self.flights[CANCELLED_FLIGHT];
        if !self
            .sagas
            .iter()
            .any(|s| s.kind == "flight_cancellation" && s.flight_id == cancelled)
        {
            v.push(format!(
                "the cancelled flight {cancelled} has no cancellation saga"
            ));
        }
    }

    fn report(&self, plans: &[Plan], seen: &[(usize, Seen)]) {
        let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
        for (b, _) in self.bookings.values() {
            *by_status.entry(format!("{:?}", b.status)).or_default() += 1;
        }
        println!("final booking states: {by_status:?}");
        let mut by_plan: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (i, s) in seen {
            let outcome = match s.booking.and_then(|id| self.bookings.get(&id)) {
                Some((b, _)) => format!("{:?}", b.status.unwrap()),
                None => format!("refused {} {}", s.create, s.create_code),
            };
            let plan = &plans[*i];
            let with = if plan.connect { " + connection" } else { "" };
            let key = format!("{:?} flight {}{with}", plan.then, plan.flight);
            *by_plan.entry(key).or_default().entry(outcome).or_default() += 1;
        }
        for (plan, outcomes) in by_plan {
            println!("  {plan}: {outcomes:?}");
        }
        let captured = self
            .charges
            .iter()
            .filter(|c| c.status == "captured")
            .count();
        let retried = self.charges.iter().filter(|c| c.attempts > 1).count();
        let refunded: Decimal = self.refunds.values().map(|(_, s)| *s).sum();
        println!(
            "provider: {} charges ({captured} captured, {retried} called more than once), {} refunds totalling {refunded}",
            self.charges.len(),
            self.refunds.values().map(|(n, _)| n).sum::<usize>()
        );
        let mut sagas: BTreeMap<(String, String), usize> = BTreeMap::new();
        for s in &self.sagas {
            *sagas.entry((s.kind.clone(), s.status.clone())).or_default() += 1;
        }
        println!("sagas: {sagas:?}");
    }
}

/// The raw history behind a breach: for the first bookings a violation
/// names, their own events and every seat event about them, in log order,
/// with when and by whom each was written (compare with the kill times).
async fn dump_history(pool: &PgPool, violations: &[String]) {
    let mut ids: Vec<Uuid> = vec![];
    for line in violations {
        for word in line.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')) {
            if let Ok(id) = word.parse::<Uuid>() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    let mut shown = 0;
    for id in ids {
        let rows: Vec<RawEvent> = sqlx::query_as(
            "SELECT stream_id, version, event_type, recorded_at, tx::text, metadata, data \
             FROM es_events \
             WHERE stream_id = $1 OR stream_id = $2 \
                OR (stream_id LIKE 'seats-%' AND data->>'booking_id' = $3) \
             ORDER BY tx, position",
        )
        .bind(format!("booking-{id}"))
        .bind(format!("payment-{id}"))
        .bind(id.to_string())
        .fetch_all(pool)
        .await
        .unwrap();
        if !rows.iter().any(|r| r.0.starts_with("booking-")) {
            continue;
        }
        println!("history of booking {id}:");
        for (stream, version, event_type, at, tx, meta, data) in rows {
            let stream = stream.split('-').next().unwrap_or_default().to_string();
            let mut data = data;
            if let Some(o) = data.as_object_mut() {
                o.remove("personal");
                o.remove("booking_id");
            }
            println!(
                "  {at} tx {tx} {stream} v{version} {event_type} by {}:{} cmd {} {data}",
                meta["actor"]["kind"].as_str().unwrap_or_default(),
                meta["actor"]["id"].as_str().unwrap_or_default(),
                meta["command_id"].as_str().unwrap_or("-"),
            );
        }
        shown += 1;
        if shown == 4 {
            break;
        }
    }
}

/// Waits until the last engine has finished every saga (or the time is
/// up), and reads the world as it then stands.
async fn settle(pool: &PgPool, store: &PgEventStore, sealer: &Sealer, flights: &[Uuid]) -> World {
    let started = Instant::now();
    loop {
        // The world is read stream by stream, not in one snapshot: it only
        // counts as settled when nothing was appended while it was read (a
        // saga finishing meanwhile could show its provider refund without
        // the refund's event).
        let before = store.head().await.unwrap();
        let world = World::load(pool, store, sealer, flights).await;
        let head = store.head().await.unwrap();
        let still = before == head;
        let caught_up = {
            let inbox: Option<(i64, i64)> =
                sqlx::query_as("SELECT tx, seq FROM projection_checkpoints WHERE name = 'sagas'")
                    .fetch_optional(pool)
                    .await
                    .unwrap();
            let inbox = inbox.map(|(tx, seq)| Position::new(tx as u64, seq as u64));
            head.is_none() || inbox >= head
        };
        let why = world
            .unsettled()
            .or_else(|| (!caught_up).then(|| "the saga inbox is behind the log".to_string()))
            .or_else(|| (!still).then(|| "events were appended while reading".to_string()));
        match why {
            None => {
                println!("settled {:.1?} after the last restart", started.elapsed());
                return world;
            }
            Some(why) if started.elapsed() > SETTLE => {
                println!("not settled after {SETTLE:?}: {why}");
                return world;
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

// ------------------------------------------------------------------ the test

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn kill_9_at_random_moments_loses_and_doubles_nothing(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let test_started = Instant::now();
    let seed: u64 = env_or("CRASH_SEED", rand::random());
    let bookings: usize = env_or("CRASH_BOOKINGS", 300);
    let kills: usize = env_or("CRASH_KILLS", 5);
    println!("crash test: seed {seed} (CRASH_SEED={seed} replays the plan), {bookings} bookings, {kills} kills");
    let mut rng = StdRng::seed_from_u64(seed);

    let pool = PgPoolOptions::new()
        .max_connections(6)
        .connect_with(options.clone())
        .await
        .unwrap();
    let store = PgEventStore::new(pool.clone());
    let sealer = Sealer::postgres(pool.clone());

    println!(
        "database: {} (kept when the test fails, until the next run)",
        options.get_database().unwrap_or_default()
    );
    let port = free_port();
    let log = std::env::temp_dir().join(format!("booking-crash-{seed}.log"));
    let _ = std::fs::remove_file(&log);
    println!("engine log: {}", log.display());
    let mut engine = Engine::new(database_url(&options), port, log);
    let http = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let took = engine.start(&http).await;
    println!("engine up on port {port} in {took:.1?}");
    let api = Api {
        http: http.clone(),
        base: format!("http://127.0.0.1:{port}/api/v1"),
        stats: Arc::default(),
    };

    // Setup, before the chaos: the admin's flights and the customers.
    let admin = api.login(ADMIN_EMAIL).await;
    let mut flights = vec![];
    for (number, hours) in FLIGHTS {
        let departs = Utc::now() + chrono::Duration::hours(hours);
        // The later flight of the pair bookings move between is dearer: a
        // paid booking moving there pays the difference first.
        let economy = if number == FLIGHTS[CANCELLED_FLIGHT].0 {
            "460.00"
        } else {
            "420.00"
        };
        let (status, body) = api
            .post("flight", "/flights", Some(&admin), Some(&format!("flight-{number}")), &json!({
                "flight_number": number, "airline": "British Airways",
                "origin": "LHR", "destination": "JFK",
                "departs_at": departs, "arrives_at": departs + chrono::Duration::hours(8),
                "currency": "USD",
                "cabins": [
                    {"cabin": "business", "first_row": 1, "last_row": 5, "seat_letters": "ACDF", "fare": "1800.00"},
                    {"cabin": "economy", "first_row": 10, "last_row": 40, "seat_letters": "ABCDEF", "fare": economy}]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        flights.push(body["flight_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let departs = Utc::now() + chrono::Duration::days(30);
    let (status, body) = api
        .post("flight", "/flights", Some(&admin), Some("flight-small"), &json!({
            "flight_number": "BA417", "airline": "British Airways",
            "origin": "LHR", "destination": "JFK",
            "departs_at": departs, "arrives_at": departs + chrono::Duration::hours(8),
            "currency": "USD",
            "cabins": [
                {"cabin": "business", "first_row": 1, "last_row": 1, "seat_letters": "AC", "fare": "1800.00"},
                {"cabin": "economy", "first_row": 10, "last_row": 10, "seat_letters": "ABC", "fare": "420.00"}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    flights.push(body["flight_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    let leaves = departs + chrono::Duration::hours(10);
    let (status, body) = api
        .post("flight", "/flights", Some(&admin), Some("flight-connection"), &json!({
            "flight_number": "BA1511", "airline": "British Airways",
            "origin": "JFK", "destination": "BOS",
            "departs_at": leaves, "arrives_at": leaves + chrono::Duration::hours(1),
            "currency": "USD",
            "cabins": [
                {"cabin": "business", "first_row": 1, "last_row": 5, "seat_letters": "ACDF", "fare": "600.00"},
                {"cabin": "economy", "first_row": 10, "last_row": 40, "seat_letters": "ABCDEF", "fare": "150.00"}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    flights.push(body["flight_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    let (status, body) = api
        .post(
            "code",
            "/discount-codes",
            Some(&admin),
            Some("code"),
            &json!({
            "code": CODE, "percent_off": 10, "max_uses": CODE_USES, "max_uses_per_customer": 1000,
            "valid_from": Utc::now() - chrono::Duration::hours(1),
            "valid_until": Utc::now() + chrono::Duration::days(2)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut tokens = vec![];
    for n in 0..CUSTOMERS {
        let email = format!("customer{n}-{seed}@example.com");
        tokens.push(api.register_and_login(&email).await);
    }

    let drive = Arc::new(Drive {
        api: api.clone(),
        plans: plans(&mut rng, bookings),
        flights: flights.clone(),
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        store: PgEventStore::new(pool.clone()),
        sealer: sealer.clone(),
    });

    // The customers.
    let drive_started = Instant::now();
    let workers: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(w, token)| {
            let drive = drive.clone();
            tokio::spawn(async move { drive.run(w, &token).await })
        })
        .collect();

    // The admin cancels one flight half-way through.
    let flight_cancel = {
        let (drive, api, flight) = (drive.clone(), api.clone(), flights[CANCELLED_FLIGHT]);
        tokio::spawn(async move {
            while drive.next.load(Ordering::SeqCst) < bookings / 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let (status, body) = api
                .post(
                    "cancel flight",
                    &format!("/flights/{flight}/cancel"),
                    Some(&admin),
                    Some("cancel-flight"),
                    &json!({"reason": "crew shortage"}),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            println!(
                "flight {flight} cancelled after {:.1?}",
                drive_started.elapsed()
            );
        })
    };

    // The chaos: kill -9 at random moments, spread over the drive (the
    // k-th kill comes 0.5-3 s after k/(kills+1) of the bookings were
    // driven), and start again on the same port.
    let mut chaos_rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    for k in 1..=kills {
        while drive.done.load(Ordering::SeqCst) < k * bookings / (kills + 1) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wait = Duration::from_millis(chaos_rng.gen_range(500..=3000));
        tokio::time::sleep(wait).await;
        let done = drive.done.load(Ordering::SeqCst);
        let killed_at = Utc::now();
        engine.kill9();
        let down = Duration::from_millis(chaos_rng.gen_range(0..=700));
        tokio::time::sleep(down).await;
        let took = engine.start(&http).await;
        println!(
            "kill {k}/{kills} at {killed_at} (+{:.1?}, {done}/{bookings} bookings driven), down {down:.1?}, restarted in {took:.1?}",
            drive_started.elapsed()
        );
    }

    let mut seen = vec![];
    for w in workers {
        seen.extend(w.await.expect("a customer task panicked"));
    }
    seen.sort_by_key(|(i, _)| *i);
    flight_cancel.await.expect("the flight cancellation failed");
    println!(
        "drive done in {:.1?}; the engine was started {} times",
        drive_started.elapsed(),
        engine.starts
    );
    {
        let stats = api.stats.lock().unwrap();
        println!("client retries: {:?}", stats.retries);
        println!(
            "answers replayed from a request the kill cut off: {:?}",
            stats.replayed_after_retry
        );
        println!("5xx answers (retried): {}", stats.server_error_count);
        for e in &stats.server_errors {
            println!("  {e}");
        }
    }
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for (_, s) in &seen {
        *answers
            .entry(format!("create {} {}", s.create, s.create_code))
            .or_default() += 1;
        if let Some(p) = s.pay {
            *answers.entry(format!("pay {p}")).or_default() += 1;
        }
        if let Some(c) = s.cancel {
            *answers.entry(format!("cancel {c}")).or_default() += 1;
        }
    }
    println!("answers: {answers:?}");

    let world = settle(&pool, &store, &sealer, &flights).await;
    world.report(&drive.plans, &seen);
    let mut violations = world.violations(&seen);
    let verified = store.verify(None).await.unwrap();
    if !verified.ok {
        violations.push(format!("the hash chains do not verify: {verified:?}"));
    }
    let events_of = |kind: fn(&BookingEvent) -> bool| {
        world
            .bookings
            .values()
            .flat_map(|(_, events)| events.iter())
            .filter(|e| kind(e))
            .count()
    };
    println!(
        "trips: {CODE} redeemed {} times (cap {CODE_USES}), {} passengers taken off paid bookings, {} seats changed, {} bookings moved to another flight ({} refused; {} paid moves charged a difference, {} of them let go)",
        world.redemptions.len(),
        seen.iter().filter(|(_, s)| s.dropped.is_some()).count(),
        seen.iter().filter(|(_, s)| s.moved.is_some()).count(),
        seen.iter().filter(|(_, s)| matches!(s.relocated, Some((202, _)))).count(),
        seen.iter().filter(|(_, s)| matches!(s.relocated, Some((409, _)))).count(),
        events_of(|e| matches!(e, BookingEvent::BookingMoveHeld(_))),
        events_of(|e| matches!(e, BookingEvent::BookingMoveAbandoned(_))),
    );
    println!(
        "waiting list: {} joined, {} offers taken by their customers",
        seen.iter().filter(|(_, s)| s.entry.is_some()).count(),
        seen.iter().filter(|(_, s)| s.offer.is_some()).count()
    );
    println!(
        "hash chains: {} streams, {} events, ok = {}",
        verified.streams_checked, verified.events_checked, verified.ok
    );

    if !violations.is_empty() {
        dump_history(&pool, &violations).await;
    }
    engine.stop().await;
    pool.close().await;
    println!(
        "crash test took {:.1?} (seed {seed})",
        test_started.elapsed()
    );
    assert!(
        violations.is_empty(),
        "{} violations (seed {seed}):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// A seat sold to a booking that is then cancelled must go back on sale.
/// Here the API and the sagas run as separate processes (a supported
/// topology), so the sagas' lane confirms the seats while the API's lane
/// still caches them as held; the customer's cancellation is then decided
/// on that stale seat map. The same happens in one process when a killed
/// engine's last append commits after the new engine loaded the flight.
#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn a_cancelled_booking_returns_its_seats_when_roles_run_apart(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await
        .unwrap();
    let store = PgEventStore::new(pool.clone());
    let sealer = Sealer::postgres(pool.clone());
    let http = Client::new();
    let log = std::env::temp_dir().join(format!("booking-split-{}.log", Uuid::now_v7()));
    let mut api_engine = Engine::new(database_url(&options), free_port(), log.clone());
    api_engine.role = "api";
    api_engine.hold_ttl_secs = 600;
    api_engine.start(&http).await;
    let mut sagas_engine = Engine::new(database_url(&options), free_port(), log);
    sagas_engine.role = "sagas";
    sagas_engine.hold_ttl_secs = 600;
    sagas_engine.start(&http).await;
    let api = Api {
        http: http.clone(),
        base: format!("http://127.0.0.1:{}/api/v1", api_engine.port),
        stats: Arc::default(),
    };

    let admin = api.login(ADMIN_EMAIL).await;
    let (flight, customer, booking) = book_and_pay_12a(&api, &admin, "split@example.com").await;
    let booking_stream = StreamId::new(Booking::CATEGORY, booking);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fold::<Booking>(&store, &sealer, &booking_stream)
        .await
        .0
        .status
        != Some(BookingStatus::Ticketed)
    {
        assert!(
            Instant::now() < deadline,
            "booking {booking} never ticketed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, body) = api
        .post(
            "cancel",
            &format!("/bookings/{booking}/cancel"),
            Some(&customer),
            None,
            &json!({"reason": "change of plans"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let (seats, events) = fold::<SeatInventory>(
        &store,
        &sealer,
        &StreamId::new(SeatInventory::CATEGORY, flight),
    )
    .await;
    let seat = Seat::parse("12A").unwrap();
    let state = seats.status_at(seat, Utc::now());
    let book = json!({"flight_id": flight, "passengers": [{"first_name": "Ada",
        "last_name": "Lovelace", "date_of_birth": "1990-12-10", "seat": "12A"}]});
    let again = api
        .post("create", "/bookings", Some(&customer), None, &book)
        .await;
    sagas_engine.stop().await;
    api_engine.stop().await;
    pool.close().await;
    let log: Vec<String> = events.iter().map(|(at, e)| format!("{at} {e:?}")).collect();
    assert_eq!(
        state,
        Some(SeatState::Available),
        "seat 12A of the cancelled booking {booking} was not returned; booking it again \
         answers {} {}; the seat log:\n{}",
        again.0,
        again.1,
        log.join("\n")
    );
    assert_eq!(again.0, StatusCode::CREATED, "{}", again.1);
}

/// The crash path of the same bug, made deterministic: a killed engine's
/// last append (the saga confirming a paid booking's seats) is held back
/// by a row lock, so it commits only after the new engine has loaded the
/// flight. PostgreSQL finishes a statement whose client died, so in the
/// crash test this happens whenever such an append is slow to commit.
#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn a_late_commit_from_a_killed_engine_does_not_strand_seats(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options.clone())
        .await
        .unwrap();
    let store = PgEventStore::new(pool.clone());
    let sealer = Sealer::postgres(pool.clone());
    let http = Client::new();
    let log = std::env::temp_dir().join(format!("booking-late-{}.log", Uuid::now_v7()));
    let mut engine = Engine::new(database_url(&options), free_port(), log);
    engine.hold_ttl_secs = 600;
    // A slow provider: the test takes its lock while the saga charges.
    engine.gateway_latency_ms = 1500;
    engine.start(&http).await;
    let api = Api {
        http: http.clone(),
        base: format!("http://127.0.0.1:{}/api/v1", engine.port),
        stats: Arc::default(),
    };
    let admin = api.login(ADMIN_EMAIL).await;
    let (flight, _, booking) = book_and_pay_12a(&api, &admin, "late@example.com").await;
    // Once the saga is at the provider, hold the seat stream's row: the
    // confirmation that follows the capture will wait on it. (Not sooner:
    // an open transaction holds the log's readers back, the saga inbox
    // included.)
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let charging: Option<bool> =
            sqlx::query_scalar("SELECT charge_started FROM sagas WHERE booking_id = $1")
                .bind(booking)
                .fetch_optional(&pool)
                .await
                .unwrap();
        if charging == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "the saga never charged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM es_streams WHERE stream_id = $1 FOR UPDATE")
        .bind(format!("seats-{flight}"))
        .execute(&mut *blocker)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE '%es_append%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the confirmation never reached the database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // kill -9 while that append waits. The admin, retrying, cancels the
    // flight on the new engine: its lane loads the flight before the killed
    // engine's append commits, and its own append (flight events only)
    // queues behind it.
    engine.kill9();
    engine.start(&http).await;
    let cancel_flight = {
        let api = api.clone();
        tokio::spawn(async move {
            api.post(
                "cancel flight",
                &format!("/flights/{flight}/cancel"),
                Some(&admin),
                None,
                &json!({"reason": "crew shortage"}),
            )
            .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting >= 2 {
            break;
        }
        if Instant::now() > deadline {
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT concat_ws(' ', state, wait_event_type, wait_event, left(query, 120)) \
                 FROM pg_stat_activity WHERE datname = current_database()",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            panic!("the flight's cancellation never reached the database: {rows:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    blocker.commit().await.unwrap();
    let (status, body) = cancel_flight.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // The flight's cancellation cancels the (by now confirmed) booking; its
    // seat must go back.
    let booking_stream = StreamId::new(Booking::CATEGORY, booking);
    let deadline = Instant::now() + Duration::from_secs(15);
    let cancelled = loop {
        let (b, events) = fold::<Booking>(&store, &sealer, &booking_stream).await;
        if b.status == Some(BookingStatus::Cancelled) {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "booking {booking} was never cancelled: {:?}",
            b.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cancelled = format!("{:?}", cancelled.last().map(|(_, e)| e));
    let (seats, events) = fold::<SeatInventory>(
        &store,
        &sealer,
        &StreamId::new(SeatInventory::CATEGORY, flight),
    )
    .await;
    let state = seats.status_at(Seat::parse("12A").unwrap(), Utc::now());
    engine.stop().await;
    pool.close().await;
    let log: Vec<String> = events
        .iter()
        .skip(1)
        .map(|(at, e)| format!("{at} {e:?}"))
        .collect();
    assert_eq!(
        state,
        Some(SeatState::Available),
        "seat 12A of the cancelled booking {booking} was not returned ({cancelled}); \
         the seat log:\n{}",
        log.join("\n")
    );
}

/// Schedules a 9-seat flight, books seat 12A for a new customer and pays
/// it with 4242...: (flight, the customer's token, booking).
async fn book_and_pay_12a(api: &Api, admin: &str, email: &str) -> (Uuid, String, Uuid) {
    let departs = Utc::now() + chrono::Duration::days(30);
    let (status, body) = api
        .post(
            "flight",
            "/flights",
            Some(admin),
            None,
            &json!({
            "flight_number": "BA117", "airline": "British Airways", "origin": "LHR",
            "destination": "JFK", "departs_at": departs,
            "arrives_at": departs + chrono::Duration::hours(8), "currency": "USD",
            "cabins": [{"cabin": "economy", "first_row": 10, "last_row": 12,
                        "seat_letters": "ABC", "fare": "420.00"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let flight: Uuid = body["flight_id"].as_str().unwrap().parse().unwrap();
    let customer = api.register_and_login(email).await;
    let book = json!({"flight_id": flight, "passengers": [{"first_name": "Ada",
        "last_name": "Lovelace", "date_of_birth": "1990-12-10", "seat": "12A"}]});
    let (status, body) = api
        .post("create", "/bookings", Some(&customer), None, &book)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let booking: Uuid = body["booking_id"].as_str().unwrap().parse().unwrap();
    let (status, body) = api
        .post(
            "pay",
            &format!("/bookings/{booking}/payment"),
            Some(&customer),
            None,
            &json!({"card_number": "4242424242424242", "expiry_month": 12,
                    "expiry_year": 2040, "cvc": "123", "holder": "Ada Lovelace"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    (flight, customer, booking)
}
