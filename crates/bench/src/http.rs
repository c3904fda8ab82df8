//! Booking creations end to end over HTTP: a real client against the engine
//! listening on loopback, both in this process (so they share the machine's
//! cores, as a client on the same host would).
//!
//! - spread: clients book one passenger each on random flights among many;
//! - itineraries: the same, each booking on one of those flights and one of
//!   as many connections (two flights held in one append, beside their
//!   lanes), in the same run as the spread for comparison;
//! - hot: every client books on the same flight until it is sold out
//!   (1,089 seats), three flights in a row.
//!
//! Each request books for the next of `--customers` customers in turn, as
//! a public site sees many customers each booking a little. Their access
//! tokens are signed here with the engine's key, for fresh user ids:
//! registering ten thousand accounts would measure Argon2, not bookings.
//!
//! Each run goes once per `--limits` setting, each on a fresh database:
//! `off` turns the rate limits and hold caps off; `on` runs the hold caps
//! at their defaults, which these customers stay within, and the rate
//! limits with the default's three windows raised (the bench's admin
//! schedules a hundred flights in a second): the difference is their cost,
//! not their refusals.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{latency, micros, new_histogram, scratch_database};
use engine::app::{AppConfig, Application, Secret, Switch};

#[derive(Debug, Clone, clap::Args)]
pub struct HttpBench {
    /// The limits settings to run with, in turn (see the module docs).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "off,on")]
    pub limits: Vec<Switch>,
    /// Seconds of the spread run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Customers the bookings go round.
    #[arg(long, default_value_t = 10_000)]
    pub customers: usize,
    /// Flights the spread run books on.
    #[arg(long, default_value_t = 100)]
    pub flights: usize,
    /// The engine's `BOOKING_DB_MAX_CONNECTIONS`.
    #[arg(long, default_value_t = 32)]
    pub db_max_connections: u32,
}

pub(super) const ADMIN: &str = "bench-admin@example.com";
/// The password of every bench account.
pub(super) const PASSWORD: &str = "bench password that is long";
/// Rows 1-99, letters A-K: the largest seat map the domain allows.
const HOT_SEATS: usize = 99 * 11;

pub async fn run(database_url: &str, args: HttpBench) -> anyhow::Result<()> {
    println!(
        "## Booking creations over HTTP ({} clients)\n",
        args.clients
    );
    println!(
        "| run | limits | bookings | seconds | bookings/s | p50 ms | p99 ms | other answers |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for limits in &args.limits {
        let (admin_pool, url, name) = scratch_database(database_url).await?;
        let result = measure(&url, &args, *limits).await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin_pool)
            .await?;
        result?;
    }
    Ok(())
}

/// The key the bench's engine signs access tokens with.
const SECRET: &str = "bench-secret-bench-secret-bench-secret";

/// The engine's settings for a run with `limits` at their defaults or off.
pub(super) fn config(url: &str, limits: Switch) -> AppConfig {
    let mut config = match limits {
        Switch::On => AppConfig::new(url),
        Switch::Off => AppConfig::new(url).without_limits(),
    };
    config.rate_limit = "1000/s,100000/min,1000000/h"
        .parse()
        .expect("the bench's policy parses");
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.jwt_secret = Some(Secret::new(SECRET));
    config.admin_email = Some(ADMIN.into());
    config.admin_password = Some(Secret::new(PASSWORD));
    config
}

/// Customers' access tokens, handed out in turn.
pub(super) struct Customers {
    tokens: Vec<String>,
    next: AtomicUsize,
}

impl Customers {
    /// `n` customers with fresh ids and sessions.
    pub(super) fn mint(n: usize) -> anyhow::Result<Self> {
        let keys = auth::TokenKeys::new(SECRET.as_bytes(), Duration::from_secs(3600));
        let tokens = (0..n.max(1))
            .map(|_| {
                keys.issue(
                    Uuid::now_v7(),
                    domain::values::Role::Customer,
                    Uuid::now_v7(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            tokens,
            next: AtomicUsize::new(0),
        })
    }

    pub(super) fn next(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.tokens[i % self.tokens.len()]
    }
}

async fn measure(url: &str, args: &HttpBench, limits: Switch) -> anyhow::Result<()> {
    let mut config = config(url, limits);
    config.db_max_connections = args.db_max_connections;
    let setting = match limits {
        Switch::On => "on",
        Switch::Off => "off",
    };
    let app = Application::build(config).await?;
    let base = format!("http://{}/api/v1", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let client = Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let admin = login(&client, &base, ADMIN).await?;
    let customers = Arc::new(Customers::mint(args.customers)?);

    let mut flights = Vec::new();
    for _ in 0..args.flights {
        flights.push(schedule(&client, &base, &admin).await?);
    }
    let flights = Arc::new(flights);
    let pool = sqlx::PgPool::connect(url).await?;
    settle(&pool).await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let spread = flights.clone();
    let run = drive(&client, &base, args.clients, &customers, move |i| {
        (Instant::now() < deadline).then(|| vec![spread[(i * 7919) % spread.len()]])
    })
    .await?;
    run.print(&format!("spread over {} flights", args.flights), setting);

    let mut connections = Vec::new();
    for _ in 0..args.flights {
        connections.push(schedule_from(&client, &base, &admin, "JFK", "BOS", 10).await?);
    }
    settle(&pool).await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let run = drive(&client, &base, args.clients, &customers, move |i| {
        (Instant::now() < deadline).then(|| {
            vec![
                flights[(i * 7919) % flights.len()],
                connections[(i * 104_729) % connections.len()],
            ]
        })
    })
    .await?;
    run.print(
        &format!(
            "itineraries of 2 flights over {} + {} flights",
            args.flights, args.flights
        ),
        setting,
    );

    let mut hot = Run::default();
    for _ in 0..3 {
        let flight = schedule(&client, &base, &admin).await?;
        settle(&pool).await?;
        let sold_out = Arc::new(AtomicBool::new(false));
        let r = drive_until(&client, &base, args.clients, &customers, flight, sold_out).await?;
        anyhow::ensure!(
            r.ok as usize == HOT_SEATS,
            "sold {} of {HOT_SEATS} seats",
            r.ok
        );
        hot.merge(r);
    }
    hot.print("one hot flight, sold out three times", setting);

    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Waits until the projectors and sagas have caught up with the log, so
/// that each run starts with the machine to itself rather than behind the
/// last one's backlog.
pub(super) async fn settle(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let status = projections::status(pool).await?;
        if status.iter().all(|s| s.lag_events == 0) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the projectors did not catch up within two minutes")
}

#[derive(Default)]
struct Run {
    ok: u64,
    other: u64,
    elapsed: Duration,
    hist: Option<Histogram<u64>>,
}

impl Run {
    fn merge(&mut self, r: Run) {
        self.ok += r.ok;
        self.other += r.other;
        self.elapsed += r.elapsed;
        match (&mut self.hist, r.hist) {
            (Some(h), Some(o)) => h.add(o).unwrap_or(()),
            (h @ None, o) => *h = o,
            _ => {}
        }
    }

    fn print(&self, name: &str, limits: &str) {
        let l = self.hist.as_ref().map(latency);
        println!(
            "| {name} | {limits} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {} |",
            self.ok,
            self.elapsed.as_secs_f64(),
            self.ok as f64 / self.elapsed.as_secs_f64(),
            l.as_ref().map_or(0.0, |l| l.p50),
            l.as_ref().map_or(0.0, |l| l.p99),
            self.other
        );
    }
}

/// `clients` tasks book while `next(i)` names a flight (or an itinerary's
/// flights).
async fn drive(
    client: &Client,
    base: &str,
    clients: usize,
    customers: &Arc<Customers>,
    next: impl Fn(usize) -> Option<Vec<Uuid>> + Send + Sync + 'static,
) -> anyhow::Result<Run> {
    let next = Arc::new(next);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, base, customers, next, counter) = (
                client.clone(),
                base.to_string(),
                customers.clone(),
                next.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let mut hist = new_histogram();
                let (mut ok, mut other) = (0u64, 0u64);
                loop {
                    let i = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(flights) = next(i) else { break };
                    let t = Instant::now();
                    let status = book_flights(&client, &base, customers.next(), &flights).await?;
                    if status == StatusCode::CREATED {
                        hist.record(micros(t.elapsed()))?;
                        ok += 1;
                    } else {
                        other += 1;
                    }
                }
                anyhow::Ok((ok, other, hist))
            })
        })
        .collect();
    collect(tasks, started).await
}

/// `clients` tasks book on one flight until it answers that it is full.
async fn drive_until(
    client: &Client,
    base: &str,
    clients: usize,
    customers: &Arc<Customers>,
    flight: Uuid,
    sold_out: Arc<AtomicBool>,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, base, customers, sold_out) = (
                client.clone(),
                base.to_string(),
                customers.clone(),
                sold_out.clone(),
            );
            tokio::spawn(async move {
                let mut hist = new_histogram();
                let (mut ok, mut other) = (0u64, 0u64);
                while !sold_out.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match book(&client, &base, customers.next(), flight).await? {
                        StatusCode::CREATED => {
                            hist.record(micros(t.elapsed()))?;
                            ok += 1;
                        }
                        StatusCode::CONFLICT => sold_out.store(true, Ordering::Relaxed),
                        _ => other += 1,
                    }
                }
                anyhow::Ok((ok, other, hist))
            })
        })
        .collect();
    collect(tasks, started).await
}

/// A client task's successes, other answers and latencies.
type ClientTask = tokio::task::JoinHandle<anyhow::Result<(u64, u64, Histogram<u64>)>>;

async fn collect(tasks: Vec<ClientTask>, started: Instant) -> anyhow::Result<Run> {
    let mut run = Run {
        hist: Some(new_histogram()),
        ..Run::default()
    };
    for t in tasks {
        let (ok, other, h) = t.await??;
        run.ok += ok;
        run.other += other;
        if let Some(all) = &mut run.hist {
            all.add(h)?;
        }
    }
    run.elapsed = started.elapsed();
    Ok(run)
}

/// Books one passenger in economy; anything but 201 and 409 is logged.
pub(super) async fn book(
    client: &Client,
    base: &str,
    token: &str,
    flight: Uuid,
) -> anyhow::Result<StatusCode> {
    book_flights(client, base, token, &[flight]).await
}

/// [`book`] on one flight, or on every flight of an itinerary.
async fn book_flights(
    client: &Client,
    base: &str,
    token: &str,
    flights: &[Uuid],
) -> anyhow::Result<StatusCode> {
    let passengers = json!([{
        "first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10",
        "email": "ada@example.com", "cabin": "economy"}]);
    let body = match flights {
        [one] => json!({"flight_id": one, "passengers": passengers}),
        many => json!({"flights": many, "passengers": passengers}),
    };
    let r = client
        .post(format!("{base}/bookings"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
        let body = r.text().await.unwrap_or_default();
        tracing::warn!(%status, %body, "unexpected answer");
    }
    Ok(status)
}

pub(super) async fn login(client: &Client, base: &str, email: &str) -> anyhow::Result<String> {
    let r: Value = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    r["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("login of {email}: {r}"))
}

/// A flight with one economy cabin of 1,089 seats.
/// Registers and logs in `n` customers (`bench-<i>@example.com`); their
/// access tokens.
pub(super) async fn customers(
    client: &Client,
    base: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let email = format!("bench-{i}@example.com");
        let r = client
            .post(format!("{base}/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD, "full_name": "Bench Customer"}))
            .send()
            .await?;
        anyhow::ensure!(
            r.status() == StatusCode::CREATED,
            "register: {}",
            r.text().await?
        );
        tokens.push(login(client, base, &email).await?);
    }
    Ok(tokens)
}

/// Schedules a one-cabin flight of 1,089 economy seats in 30 days.
pub(super) async fn schedule(client: &Client, base: &str, admin: &str) -> anyhow::Result<Uuid> {
    schedule_from(client, base, admin, "LHR", "JFK", 0).await
}

/// [`schedule`] from `origin` to `destination`, `later` hours after the
/// LHR-JFK flights (10: two hours after they land).
async fn schedule_from(
    client: &Client,
    base: &str,
    admin: &str,
    origin: &str,
    destination: &str,
    later: i64,
) -> anyhow::Result<Uuid> {
    let departs = chrono::Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(later);
    let r: Value = client
        .post(format!("{base}/flights"))
        .bearer_auth(admin)
        .json(&json!({
            "flight_number": "BE100", "airline": "Bench Air", "origin": origin, "destination": destination,
            "departs_at": departs, "arrives_at": departs + chrono::Duration::hours(8), "currency": "USD",
            "cabins": [{"cabin": "economy", "first_row": 1, "last_row": 99,
                        "seat_letters": "ABCDEFGHIJK", "fare": "420.00"}]}))
        .send()
        .await?
        .json()
        .await?;
    r["flight_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("scheduling a flight: {r}"))
}
