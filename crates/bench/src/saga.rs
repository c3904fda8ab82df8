//! Fulfilment end to end: bookings created and paid over HTTP, then charged,
//! confirmed, ticketed and invoiced by the sagas the engine runs in the same
//! process (role `all`), against the simulated payment provider.
//!
//! Each client creates a one-passenger economy booking (flights taken in
//! turn among many, so seats never run out) and pays it at once with a card
//! the provider approves, then the next. Once every paid booking is
//! `TICKETED` (or the wait times out), the times come from the log rather
//! than from polling each booking: per booking stream, the `recorded_at` of
//! `BookingCreated`, `PaymentSubmitted` and `TicketsIssued` (the server's
//! clock), and the client's clock just before it asked for the booking
//! (the same machine's clock).
//!
//! - throughput: bookings ticketed / (first `BookingCreated` to last
//!   `TicketsIssued`);
//! - payment to `TICKETED`: `TicketsIssued` - `PaymentSubmitted`;
//! - created to `TICKETED`: `TicketsIssued` - the client's time before
//!   `POST /bookings`.
//!
//! `--gateway-latency-ms 0,50` makes one run per value, each on a fresh
//! database, so the pipeline shows with an instant provider and with a
//! realistic one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use super::http::{customers, login, schedule, ADMIN};
use super::{latency, micros, new_histogram, scratch_database};
use engine::app::{Application, Switch};

#[derive(Debug, Clone, clap::Args)]
pub struct SagaBench {
    /// Concurrent clients, each creating and paying one booking at a time.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Bookings created and paid in each run.
    #[arg(long, default_value_t = 2000)]
    pub bookings: usize,
    /// Flights the bookings are spread over (1,089 seats each).
    #[arg(long, default_value_t = 20)]
    pub flights: usize,
    /// Delay of every simulated payment provider call, in milliseconds. A
    /// list (`0,50`) makes one run per value, each on a fresh database.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub gateway_latency_ms: Vec<u64>,
    /// Longest wait, once the clients are done, for the last booking to be
    /// ticketed, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
}

/// Rows 1-99, letters A-K: one flight's seats.
const SEATS: usize = 99 * 11;
/// A card the simulated provider approves.
const CARD: &str = "4242424242424242";

pub async fn run(database_url: &str, args: SagaBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients > 0 && args.flights > 0,
        "--clients and --flights must be at least 1"
    );
    anyhow::ensure!(
        args.bookings <= args.flights * SEATS,
        "{} flights hold {} passengers, fewer than --bookings {}",
        args.flights,
        args.flights * SEATS,
        args.bookings
    );
    let mut runs = Vec::new();
    for &gateway_ms in &args.gateway_latency_ms {
        let (admin_pool, url, name) = scratch_database(database_url).await?;
        let result = measure(&url, &args, gateway_ms).await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin_pool)
            .await?;
        runs.push(result?);
    }
    print(&args, &runs);
    Ok(())
}

/// One run, at one provider latency.
struct Outcome {
    gateway_ms: u64,
    /// Client side: bookings created and paid (201 then 202), other
    /// answers, how long the clients took, and each request's latency.
    paid: u64,
    other: u64,
    driving: Duration,
    create: Histogram<u64>,
    pay: Histogram<u64>,
    /// From the log: bookings ticketed, first `BookingCreated` to last
    /// `TicketsIssued`, and the two latencies.
    ticketed: u64,
    window: Duration,
    pay_to_ticket: Histogram<u64>,
    create_to_ticket: Histogram<u64>,
    /// How long the wait for the last ticket took after the clients were
    /// done, and whether it gave up.
    drained: Duration,
    timed_out: bool,
    /// `(kind, status, count)` of the `sagas` table at the end.
    sagas: Vec<(String, String, i64)>,
    /// `saga_step_failures_total` during the run (retried steps).
    step_failures: u64,
}

async fn measure(url: &str, args: &SagaBench, gateway_ms: u64) -> anyhow::Result<Outcome> {
    let mut config = super::http::config(url, Switch::Off);
    config.gateway_latency_ms = gateway_ms;
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    let result = drive_and_read(&pool, addr, args, gateway_ms).await;
    let _ = stop.send(());
    server.await??;
    pool.close().await;
    result
}

async fn drive_and_read(
    pool: &PgPool,
    addr: SocketAddr,
    args: &SagaBench,
    gateway_ms: u64,
) -> anyhow::Result<Outcome> {
    let base = format!("http://{addr}/api/v1");
    let client = Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let admin = login(&client, &base, ADMIN).await?;
    let customers = customers(&client, &base, args.clients.min(32)).await?;
    let customers = Arc::new(customers);
    let mut flights = Vec::new();
    for _ in 0..args.flights {
        flights.push(schedule(&client, &base, &admin).await?);
    }
    let flights = Arc::new(flights);
    let failures_before = step_failures(&client, addr).await?;

    // The clients: create, pay, next.
    let counter = Arc::new(AtomicUsize::new(0));
    let total = args.bookings;
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|c| {
            let (client, base, customers, flights, counter) = (
                client.clone(),
                base.clone(),
                customers.clone(),
                flights.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let token = &customers[c % customers.len()];
                let (mut create, mut pay) = (new_histogram(), new_histogram());
                let mut paid = Vec::new();
                let mut other = 0u64;
                loop {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let flight = flights[i % flights.len()];
                    let asked_at = Utc::now();
                    let t = Instant::now();
                    let Some(booking) = create_booking(&client, &base, token, flight).await? else {
                        other += 1;
                        continue;
                    };
                    create.record(micros(t.elapsed()))?;
                    let t = Instant::now();
                    if pay_booking(&client, &base, token, booking).await? {
                        pay.record(micros(t.elapsed()))?;
                        paid.push((booking, asked_at));
                    } else {
                        other += 1;
                    }
                }
                anyhow::Ok((paid, other, create, pay))
            })
        })
        .collect();
    let mut asked: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let (mut create, mut pay) = (new_histogram(), new_histogram());
    let mut other = 0u64;
    for t in tasks {
        let (p, o, c, y) = t.await??;
        asked.extend(p);
        other += o;
        create.add(c)?;
        pay.add(y)?;
    }
    let driving = started.elapsed();
    let paid = asked.len() as u64;

    // The sagas finish what the clients started.
    let waiting = Instant::now();
    let timeout = Duration::from_secs(args.timeout_secs);
    let timed_out = loop {
        let ticketed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM es_events WHERE event_type = 'TicketsIssued' \
             AND stream_id LIKE 'booking-%'",
        )
        .fetch_one(pool)
        .await?;
        if ticketed as u64 >= paid {
            break false;
        }
        // Some bookings may never be ticketed (a step failed for good):
        // stop once no fulfilment saga is left to run.
        let (open, all): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status IN ('RUNNING', 'COMPENSATING')), count(*) \
             FROM sagas WHERE kind = 'fulfilment'",
        )
        .fetch_one(pool)
        .await?;
        if open == 0 && all as u64 >= paid {
            break false;
        }
        if waiting.elapsed() > timeout {
            break true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let drained = waiting.elapsed();

    // The times, from the log.
    let rows = sqlx::query(
        "SELECT stream_id, \
                min(recorded_at) FILTER (WHERE event_type = 'BookingCreated') AS created, \
                min(recorded_at) FILTER (WHERE event_type = 'PaymentSubmitted') AS paid, \
                min(recorded_at) FILTER (WHERE event_type = 'TicketsIssued') AS ticketed \
           FROM es_events WHERE stream_id LIKE 'booking-%' GROUP BY stream_id",
    )
    .fetch_all(pool)
    .await?;
    let (mut pay_to_ticket, mut create_to_ticket) = (new_histogram(), new_histogram());
    let (mut first, mut last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    let mut ticketed = 0u64;
    for row in rows {
        let stream: String = row.try_get("stream_id")?;
        let id: Uuid = stream
            .strip_prefix("booking-")
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("booking stream {stream}"))?;
        let created: Option<DateTime<Utc>> = row.try_get("created")?;
        let submitted: Option<DateTime<Utc>> = row.try_get("paid")?;
        let issued: Option<DateTime<Utc>> = row.try_get("ticketed")?;
        if let Some(c) = created {
            first = Some(first.map_or(c, |f| f.min(c)));
        }
        let Some(issued) = issued else { continue };
        ticketed += 1;
        last = Some(last.map_or(issued, |l| l.max(issued)));
        if let Some(s) = submitted {
            pay_to_ticket.record(micros(since(s, issued)))?;
        }
        if let Some(a) = asked.get(&id) {
            create_to_ticket.record(micros(since(*a, issued)))?;
        }
    }
    let window = match (first, last) {
        (Some(f), Some(l)) => since(f, l),
        _ => Duration::ZERO,
    };

    let sagas = sqlx::query_as(
        "SELECT kind, status, count(*) FROM sagas GROUP BY kind, status ORDER BY kind, status",
    )
    .fetch_all(pool)
    .await?;
    let failures_after = step_failures(&client, addr).await?;
    Ok(Outcome {
        gateway_ms,
        paid,
        other,
        driving,
        create,
        pay,
        ticketed,
        window,
        pay_to_ticket,
        create_to_ticket,
        drained,
        timed_out,
        sagas,
        step_failures: failures_after.saturating_sub(failures_before),
    })
}

fn since(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

fn print(args: &SagaBench, runs: &[Outcome]) {
    let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "## Fulfilment: bookings created, paid and ticketed by the sagas \
         ({} clients, {} bookings over {} flights)\n",
        args.clients, args.bookings, args.flights
    );
    println!(
        "| provider latency ms | ticketed | seconds | ticketed/s | payment to TICKETED \
         p50 ms | p99 ms | created to TICKETED p50 ms | p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let (p, c) = (latency(&r.pay_to_ticket), latency(&r.create_to_ticket));
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.gateway_ms,
            r.ticketed,
            r.window.as_secs_f64(),
            per_s(r.ticketed, r.window),
            p.p50,
            p.p99,
            c.p50,
            c.p99
        );
    }
    println!(
        "\nSeconds: first `BookingCreated` to last `TicketsIssued` (server clock). \
         Client side:\n"
    );
    println!(
        "| provider latency ms | created and paid | seconds | per s | POST bookings p50 ms \
         | p99 ms | POST payment p50 ms | p99 ms | other answers | last ticket after the \
         clients, s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let (c, p) = (latency(&r.create), latency(&r.pay));
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.2}{} |",
            r.gateway_ms,
            r.paid,
            r.driving.as_secs_f64(),
            per_s(r.paid, r.driving),
            c.p50,
            c.p99,
            p.p50,
            p.p99,
            r.other,
            r.drained.as_secs_f64(),
            if r.timed_out { " (timed out)" } else { "" }
        );
    }
    println!("\nSagas at the end of each run:\n");
    println!("| provider latency ms | sagas by kind and status | step failures (retried) |");
    println!("|---:|---|---:|");
    for r in runs {
        let sagas = r
            .sagas
            .iter()
            .map(|(kind, status, n)| format!("{kind} {status}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("| {} | {sagas} | {} |", r.gateway_ms, r.step_failures);
    }
}

/// Books one passenger in economy; the new booking's id, or `None` (logged)
/// for any answer but 201.
async fn create_booking(
    client: &Client,
    base: &str,
    token: &str,
    flight: Uuid,
) -> anyhow::Result<Option<Uuid>> {
    let r = client
        .post(format!("{base}/bookings"))
        .bearer_auth(token)
        .json(&json!({"flight_id": flight, "passengers": [{
            "first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10",
            "email": "ada@example.com", "cabin": "economy"}]}))
        .send()
        .await?;
    let status = r.status();
    if status != StatusCode::CREATED {
        let body = r.text().await.unwrap_or_default();
        tracing::warn!(%status, %body, "unexpected answer to a booking");
        return Ok(None);
    }
    let body: Value = r.json().await?;
    body["booking_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .map(Some)
        .with_context(|| format!("a booking without an id: {body}"))
}

/// Pays a held booking with the approved test card; false (logged) for any
/// answer but 202.
async fn pay_booking(
    client: &Client,
    base: &str,
    token: &str,
    booking: Uuid,
) -> anyhow::Result<bool> {
    let r = client
        .post(format!("{base}/bookings/{booking}/payment"))
        .bearer_auth(token)
        .json(
            &json!({"card_number": CARD, "expiry_month": 12, "expiry_year": 2040,
                      "cvc": "123", "holder": "Ada"}),
        )
        .send()
        .await?;
    let status = r.status();
    if status != StatusCode::ACCEPTED {
        let body = r.text().await.unwrap_or_default();
        tracing::warn!(%status, %body, "unexpected answer to a payment");
    }
    Ok(status == StatusCode::ACCEPTED)
}

/// `saga_step_failures_total` from the engine's `/metrics`, all kinds. The
/// recorder is the process's, so runs in one process take differences.
async fn step_failures(client: &Client, addr: SocketAddr) -> anyhow::Result<u64> {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("saga_step_failures_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}
