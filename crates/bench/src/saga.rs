//! Fulfilment end to end: bookings created and paid over HTTP, then charged,
//! confirmed, ticketed and invoiced by the sagas the engine runs in the same
//! process (role `all`), against the simulated payment provider.
//!
//! A booking is one passenger in economy (flights taken in turn among many,
//! so seats never run out), created with `POST /bookings` and paid at once
//! with `POST /bookings/{id}/payment` and a card the provider approves. The
//! load comes one of two ways:
//!
//! - closed loop (the default): `--clients` clients, each creating and
//!   paying one booking, then the next, so the load waits on the engine;
//! - open loop (`--rate N`): a booking is started every 1/N s, each in a
//!   task of its own, whether or not the earlier ones have finished, until
//!   `--bookings` have been offered (about bookings/N seconds). At most
//!   4,096 are in flight; one due while that many are counts as not
//!   offered. The offered rate achieved is the bookings started over the
//!   time to the last start (plus one interval), which falls short of N
//!   only when this process cannot keep the schedule.
//!
//! Once every paid booking is `TICKETED` (or the wait times out), the times
//! come from the log rather than from polling each booking: per booking
//! stream, the `recorded_at` of `BookingCreated`, `PaymentSubmitted` and
//! `TicketsIssued` (the server's clock), and the client's clock just before
//! it asked for the booking (the same machine's clock).
//!
//! - throughput: bookings ticketed / (first `BookingCreated` to last
//!   `TicketsIssued`);
//! - payment to `TICKETED`: `TicketsIssued` - `PaymentSubmitted`;
//! - created to `TICKETED`: `TicketsIssued` - the client's time before
//!   `POST /bookings`.
//!
//! The engine runs in this process, so its memory is the process's: the
//! peak resident set (VmHWM, reset through `/proc/self/clear_refs` as the
//! run's engine starts, where the kernel allows) and the resident set once
//! the last booking is ticketed (VmRSS). Both include the client's share
//! (its tasks and connections), and the end figure what jemalloc has not
//! yet handed back.
//!
//! The engine runs with the rate limits and hold caps off
//! ([`super::http::config`] with `Switch::Off`), so the 32 customers the
//! bookings go round (fewer in a closed loop of fewer clients) are never
//! refused for holding too much.
//!
//! `--gateway-latency-ms 0,50` makes one run per value, each on a fresh
//! database, so the pipeline shows with an instant provider and with a
//! realistic one; `--rate 50,100` likewise, one run per rate (per provider
//! latency).

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
use tokio::task::JoinSet;
use uuid::Uuid;

use super::http::{customers, login, schedule, ADMIN};
use super::{latency, mib, micros, new_histogram, scratch_database, Memory};
use engine::app::{Application, Switch};

#[derive(Debug, Clone, clap::Args)]
pub struct SagaBench {
    /// Closed loop: concurrent clients, each creating and paying one
    /// booking at a time. Not used with --rate.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Open loop: bookings offered per second, each started on schedule
    /// (create, then pay, in a task of its own) whether or not the earlier
    /// ones have finished, at most 4,096 in flight. A list (`50,100`) makes
    /// one run per value, each on a fresh database. Absent: the closed loop
    /// of --clients.
    #[arg(long, value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Bookings created and paid in each run (open loop: offered, over
    /// about bookings/rate seconds).
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
/// Open loop: bookings in flight at most; one due while this many are is
/// not offered.
const MAX_IN_FLIGHT: usize = 4096;
/// Customers the bookings go round (at most, in a closed loop).
const CUSTOMERS: usize = 32;

/// How the bookings are offered.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// This many clients, each one booking after the other.
    Closed { clients: usize },
    /// One booking started every 1/rate s.
    Open { rate: f64 },
}

pub async fn run(database_url: &str, args: SagaBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients > 0 && args.flights > 0,
        "--clients and --flights must be at least 1"
    );
    anyhow::ensure!(
        args.rate.iter().all(|r| r.is_finite() && *r > 0.0),
        "--rate must be a positive number of bookings per second"
    );
    anyhow::ensure!(
        args.bookings <= args.flights * SEATS,
        "{} flights hold {} passengers, fewer than --bookings {}",
        args.flights,
        args.flights * SEATS,
        args.bookings
    );
    let loads: Vec<Load> = if args.rate.is_empty() {
        vec![Load::Closed {
            clients: args.clients,
        }]
    } else {
        args.rate.iter().map(|&rate| Load::Open { rate }).collect()
    };
    let mut runs = Vec::new();
    for &gateway_ms in &args.gateway_latency_ms {
        for &load in &loads {
            let (admin_pool, url, name) = scratch_database(database_url).await?;
            let result = measure(&url, &args, gateway_ms, load).await;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin_pool)
                .await?;
            runs.push(result?);
        }
    }
    print(&args, &runs);
    Ok(())
}

/// One run, at one provider latency and one load.
struct Outcome {
    gateway_ms: u64,
    load: Load,
    /// Open loop only: how the schedule went.
    offered: Option<Offered>,
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
    /// The process's resident set once the last booking is ticketed, and
    /// its peak since the engine of the run started (`None`: no
    /// `/proc/self/status`); whether the peak could be reset at the start.
    memory: Option<Memory>,
    peak_reset: bool,
}

/// The open loop's schedule, as kept.
struct Offered {
    /// Bookings started, and those due while `MAX_IN_FLIGHT` were in flight.
    started: u64,
    not_offered: u64,
    /// Started bookings per second: started / (last start + one interval).
    rate: f64,
    /// Bookings in flight at most.
    peak_in_flight: usize,
    /// Bookings whose requests failed below HTTP (connection errors).
    errors: u64,
}

/// What the client saw of one booking.
enum Attempt {
    /// 201 then 202: the booking, the client's clock just before it asked,
    /// and the two requests' latencies.
    Paid {
        booking: Uuid,
        asked_at: DateTime<Utc>,
        create: Duration,
        pay: Duration,
    },
    /// 201, then any other answer to the payment.
    Unpaid { create: Duration },
    /// Any answer but 201 to the booking.
    Refused,
}

/// The client side of a run: the bookings paid, other answers, and each
/// request's latency.
struct Tally {
    paid: Vec<(Uuid, DateTime<Utc>)>,
    other: u64,
    create: Histogram<u64>,
    pay: Histogram<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            paid: Vec::new(),
            other: 0,
            create: new_histogram(),
            pay: new_histogram(),
        }
    }

    fn record(&mut self, attempt: Attempt) -> anyhow::Result<()> {
        match attempt {
            Attempt::Paid {
                booking,
                asked_at,
                create,
                pay,
            } => {
                self.create.record(micros(create))?;
                self.pay.record(micros(pay))?;
                self.paid.push((booking, asked_at));
            }
            Attempt::Unpaid { create } => {
                self.create.record(micros(create))?;
                self.other += 1;
            }
            Attempt::Refused => self.other += 1,
        }
        Ok(())
    }

    fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.paid.extend(other.paid);
        self.other += other.other;
        self.create.add(other.create)?;
        self.pay.add(other.pay)?;
        Ok(())
    }
}

async fn measure(
    url: &str,
    args: &SagaBench,
    gateway_ms: u64,
    load: Load,
) -> anyhow::Result<Outcome> {
    let mut config = super::http::config(url, Switch::Off);
    config.gateway_latency_ms = gateway_ms;
    let peak_reset = Memory::reset_peak();
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    let result = drive_and_read(&pool, addr, args, gateway_ms, load).await;
    let _ = stop.send(());
    server.await??;
    pool.close().await;
    result.map(|outcome| Outcome {
        peak_reset,
        ..outcome
    })
}

async fn drive_and_read(
    pool: &PgPool,
    addr: SocketAddr,
    args: &SagaBench,
    gateway_ms: u64,
    load: Load,
) -> anyhow::Result<Outcome> {
    let base = format!("http://{addr}/api/v1");
    let (idle, how_many) = match load {
        Load::Closed { clients } => (clients, clients.min(CUSTOMERS)),
        Load::Open { .. } => (MAX_IN_FLIGHT, CUSTOMERS),
    };
    let client = Client::builder().pool_max_idle_per_host(idle).build()?;
    let admin = login(&client, &base, ADMIN).await?;
    let customers = Arc::new(customers(&client, &base, how_many).await?);
    let mut flights = Vec::new();
    for _ in 0..args.flights {
        flights.push(schedule(&client, &base, &admin).await?);
    }
    let flights = Arc::new(flights);
    let failures_before = step_failures(&client, addr).await?;

    let started = Instant::now();
    let (tally, offered) = match load {
        Load::Closed { clients } => (
            closed_loop(&client, &base, &customers, &flights, clients, args.bookings).await?,
            None,
        ),
        Load::Open { rate } => {
            let (tally, offered) =
                open_loop(&client, &base, &customers, &flights, rate, args.bookings).await?;
            (tally, Some(offered))
        }
    };
    let driving = started.elapsed();
    let Tally {
        paid: asked,
        other,
        create,
        pay,
    } = tally;
    let asked: HashMap<Uuid, DateTime<Utc>> = asked.into_iter().collect();
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
    let memory = Memory::now()
        .inspect_err(|e| tracing::warn!("no memory figures: {e:#}"))
        .ok();
    Ok(Outcome {
        gateway_ms,
        load,
        offered,
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
        memory,
        peak_reset: false,
    })
}

/// `clients` tasks create and pay one booking, then the next, until
/// `total` have been asked for.
async fn closed_loop(
    client: &Client,
    base: &str,
    customers: &Arc<Vec<String>>,
    flights: &Arc<Vec<Uuid>>,
    clients: usize,
    total: usize,
) -> anyhow::Result<Tally> {
    let counter = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, base, customers, flights, counter) = (
                client.clone(),
                base.to_string(),
                customers.clone(),
                flights.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let token = &customers[c % customers.len()];
                let mut tally = Tally::new();
                loop {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let flight = flights[i % flights.len()];
                    tally.record(attempt(&client, &base, token, flight).await?)?;
                }
                anyhow::Ok(tally)
            })
        })
        .collect();
    let mut all = Tally::new();
    for t in tasks {
        all.merge(t.await??)?;
    }
    Ok(all)
}

/// Starts booking `i` at `i / rate` s, each in a task of its own, whatever
/// is still in flight, until `total` are due.
async fn open_loop(
    client: &Client,
    base: &str,
    customers: &Arc<Vec<String>>,
    flights: &Arc<Vec<Uuid>>,
    rate: f64,
    total: usize,
) -> anyhow::Result<(Tally, Offered)> {
    let mut tally = Tally::new();
    let mut in_flight: JoinSet<anyhow::Result<Attempt>> = JoinSet::new();
    let (mut started, mut not_offered, mut errors) = (0u64, 0u64, 0u64);
    let mut peak_in_flight = 0;
    // Each task only hands back what it saw: a histogram each would cost
    // the process more memory than the engine under measure.
    let mut fold = |done: Result<anyhow::Result<Attempt>, tokio::task::JoinError>,
                    tally: &mut Tally|
     -> anyhow::Result<()> {
        match done? {
            Ok(attempt) => tally.record(attempt)?,
            Err(e) => {
                if errors == 0 {
                    tracing::warn!("a booking failed: {e:#}");
                }
                errors += 1;
            }
        }
        Ok(())
    };
    let start = Instant::now();
    let mut last_start = start;
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        while let Some(done) = in_flight.try_join_next() {
            fold(done, &mut tally)?;
        }
        if in_flight.len() >= MAX_IN_FLIGHT {
            not_offered += 1;
            continue;
        }
        let (client, base, token, flight) = (
            client.clone(),
            base.to_string(),
            customers[i % customers.len()].clone(),
            flights[i % flights.len()],
        );
        in_flight.spawn(async move { attempt(&client, &base, &token, flight).await });
        last_start = Instant::now();
        started += 1;
        peak_in_flight = peak_in_flight.max(in_flight.len());
    }
    while let Some(done) = in_flight.join_next().await {
        fold(done, &mut tally)?;
    }
    let span = (last_start - start).as_secs_f64() + 1.0 / rate;
    Ok((
        tally,
        Offered {
            started,
            not_offered,
            rate: started as f64 / span,
            peak_in_flight,
            errors,
        },
    ))
}

/// Creates one booking, then pays it.
async fn attempt(
    client: &Client,
    base: &str,
    token: &str,
    flight: Uuid,
) -> anyhow::Result<Attempt> {
    let asked_at = Utc::now();
    let t = Instant::now();
    let Some(booking) = create_booking(client, base, token, flight).await? else {
        return Ok(Attempt::Refused);
    };
    let create = t.elapsed();
    let t = Instant::now();
    Ok(if pay_booking(client, base, token, booking).await? {
        Attempt::Paid {
            booking,
            asked_at,
            create,
            pay: t.elapsed(),
        }
    } else {
        Attempt::Unpaid { create }
    })
}

fn since(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

fn print(args: &SagaBench, runs: &[Outcome]) {
    let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let open = !args.rate.is_empty();
    if open {
        println!(
            "## Fulfilment, open loop: a booking created and paid every 1/rate s, whatever is \
             in flight, and ticketed by the sagas ({} bookings per run over {} flights, at \
             most {MAX_IN_FLIGHT} in flight)\n",
            args.bookings, args.flights
        );
    } else {
        println!(
            "## Fulfilment: bookings created, paid and ticketed by the sagas \
             ({} clients, {} bookings over {} flights)\n",
            args.clients, args.bookings, args.flights
        );
    }
    // The open loop's rows say which rate they ran at.
    let (load_head, load_rule) = if open {
        ("| offered/s ", "---:|")
    } else {
        ("", "")
    };
    let load = |r: &Outcome| match r.load {
        Load::Open { rate } => format!("| {rate} "),
        Load::Closed { .. } => String::new(),
    };
    let memory = |r: &Outcome| match r.memory {
        Some(m) => format!("{:.0} | {:.0}", mib(m.hwm), mib(m.rss)),
        None => "n/a | n/a".to_string(),
    };
    let achieved_head = if open { "achieved offered/s | " } else { "" };
    println!(
        "| provider latency ms {load_head}| {achieved_head}ticketed | seconds | ticketed/s \
         | payment to TICKETED p50 ms | p99 ms | created to TICKETED p50 ms | p99 ms \
         | peak RSS MiB | RSS at end MiB |"
    );
    println!(
        "|---:|{load_rule}{}---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        if open { "---:|" } else { "" }
    );
    for r in runs {
        let (p, c) = (latency(&r.pay_to_ticket), latency(&r.create_to_ticket));
        let achieved = match &r.offered {
            Some(o) => format!("{:.1} | ", o.rate),
            None => String::new(),
        };
        println!(
            "| {} {}| {achieved}{} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            r.gateway_ms,
            load(r),
            r.ticketed,
            r.window.as_secs_f64(),
            per_s(r.ticketed, r.window),
            p.p50,
            p.p99,
            c.p50,
            c.p99,
            memory(r)
        );
    }
    println!(
        "\nSeconds: first `BookingCreated` to last `TicketsIssued` (server clock). Memory: \
         this process's (engine and client), the peak since the run's engine started{} \
         (VmHWM) and the resident set once the last booking was ticketed (VmRSS).",
        if runs.iter().all(|r| r.peak_reset) {
            ""
        } else {
            " where the kernel let it be reset, the process's so far where not"
        }
    );
    if open {
        println!(
            "Achieved offered/s: bookings started / (last start + one interval), short of the \
             rate only when this process could not keep the schedule."
        );
    }
    println!("\nClient side:\n");
    let open_head = if open {
        "| started | not offered | errors | most in flight "
    } else {
        ""
    };
    println!(
        "| provider latency ms {load_head}| created and paid | seconds | per s \
         | POST bookings p50 ms | p99 ms | POST payment p50 ms | p99 ms | other answers \
         {open_head}| last ticket after the clients, s |"
    );
    println!(
        "|---:|{load_rule}---:|---:|---:|---:|---:|---:|---:|---:|{}---:|",
        if open { "---:|---:|---:|---:|" } else { "" }
    );
    for r in runs {
        let (c, p) = (latency(&r.create), latency(&r.pay));
        let offered = match &r.offered {
            Some(o) => format!(
                "| {} | {} | {} | {} ",
                o.started, o.not_offered, o.errors, o.peak_in_flight
            ),
            None => String::new(),
        };
        println!(
            "| {} {}| {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} {offered}| {:.2}{} |",
            r.gateway_ms,
            load(r),
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
    if open {
        println!(
            "\nSeconds: the first start to the last booking's payment answer. Not offered: due \
             while {MAX_IN_FLIGHT} were in flight. Errors: requests that failed below HTTP."
        );
    }
    println!("\nSagas at the end of each run:\n");
    println!(
        "| provider latency ms {load_head}| sagas by kind and status | step failures (retried) |"
    );
    println!("|---:|{load_rule}---|---:|");
    for r in runs {
        let sagas = r
            .sagas
            .iter()
            .map(|(kind, status, n)| format!("{kind} {status}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {} {}| {sagas} | {} |",
            r.gateway_ms,
            load(r),
            r.step_failures
        );
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
