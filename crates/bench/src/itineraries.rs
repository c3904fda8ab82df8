//! One-stop `searchItineraries` over HTTP with 10,000 flights in the read
//! model.
//!
//! The log is filled as the read benchmark fills it ([`super::read`]:
//! flights scheduled by the domain's decisions over 12 airports, 60 routes
//! and 30 days, then rounds of bookings paid, cancelled, expired or left
//! held, so cabins have seats held and sold), the projectors are rebuilt
//! from it, and the engine serves on loopback. Concurrent clients then
//! POST `searchItineraries(maxStops: 1)` for origin-destination-days that
//! have a one-stop connection in the read model, for a fixed time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use eventstore::{PgEventStore, Sealer};
use reqwest::Client;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{latency, micros, new_histogram, scratch_database};
use engine::app::{AppConfig, Application, Secret};

#[derive(Debug, Clone, clap::Args)]
pub struct ItineraryBench {
    /// Flights scheduled in the log (and in the read model).
    #[arg(long, default_value_t = 10_000)]
    pub flights: usize,
    /// Events to put in the log (at least): the flights, then bookings.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Seconds of the search run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent GraphQL clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Keep the scratch database afterwards (its name is printed).
    #[arg(long)]
    pub keep_database: bool,
}

const SEARCH: &str = "query($o: String!, $d: String!, $date: Date!) { \
    searchItineraries(origin: $o, destination: $d, date: $date, maxStops: 1, first: 20) { \
      nodes { flights { id flightNumber origin destination departsAt arrivesAt } \
              cabins totalPrice { amount currency } durationMinutes stops seatsLeft } \
      pageInfo { hasNextPage endCursor } } }";

pub async fn run(database_url: &str, args: ItineraryBench) -> anyhow::Result<()> {
    let (admin, url, name) = scratch_database(database_url).await?;
    let result = measure(&url, &args).await;
    if args.keep_database {
        println!("\nThe scratch database is kept: {url}");
    } else {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await?;
    }
    result
}

async fn measure(url: &str, args: &ItineraryBench) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    engine::migrations::run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let sealer = Sealer::postgres(pool.clone());
    let started = Instant::now();
    let flights = super::read::fill(store.clone(), &sealer, args.flights, args.events).await?;
    let runner = projections::Runner::new(pool.clone(), store.clone(), sealer.clone());
    for p in projections::all() {
        projections::rebuild(&runner, &*p).await?;
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&pool)
        .await?;
    let in_model: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_flights")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        in_model as usize >= flights.len(),
        "{in_model} flights in the read model"
    );
    println!(
        "{events} events in the log, {in_model} flights in the read model (filled and \
         projected in {:.1} s).",
        started.elapsed().as_secs_f64()
    );

    let mut config = AppConfig::new(url).without_limits();
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.jwt_secret = Some(Secret::new("bench-secret-bench-secret-bench-secret"));
    // Nothing but the searches runs: no sagas replaying the history.
    config.sagas_enabled = false;
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let result = search(&pool, addr, args, in_model).await;
    let _ = stop.send(());
    server.await??;
    result
}

/// Origin, destination and day of every one-stop connection in the read
/// model (45 min to 24 h at the connecting airport).
async fn one_stop_keys(pool: &PgPool) -> anyhow::Result<Vec<(String, String, NaiveDate)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT a.origin, b.destination, a.departure_date \
         FROM rm_flights a JOIN rm_flights b \
           ON b.origin = a.destination AND b.destination <> a.origin \
          AND b.departs_at BETWEEN a.arrives_at + interval '45 minutes' \
                               AND a.arrives_at + interval '24 hours' \
         WHERE NOT a.cancelled AND NOT b.cancelled \
         ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await?)
}

async fn search(
    pool: &PgPool,
    addr: SocketAddr,
    args: &ItineraryBench,
    in_model: i64,
) -> anyhow::Result<()> {
    let keys = one_stop_keys(pool).await?;
    anyhow::ensure!(!keys.is_empty(), "no one-stop connections to search");
    let keys = Arc::new(keys);
    let client = Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let url = format!("http://{addr}/graphql");
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.clients)
        .map(|_| {
            let (client, url, keys, counter) =
                (client.clone(), url.clone(), keys.clone(), counter.clone());
            tokio::spawn(async move {
                let mut hist = new_histogram();
                let (mut ok, mut found, mut with_stop, mut errors) = (0u64, 0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    let (o, d, date) = &keys[(i * 7919) % keys.len()];
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .json(&json!({"query": SEARCH,
                                      "variables": {"o": o, "d": d, "date": date}}))
                        .send()
                        .await?;
                    let status = r.status();
                    let body: Value = r.json().await?;
                    let elapsed = t.elapsed();
                    match body["data"]["searchItineraries"]["nodes"].as_array() {
                        Some(nodes) if status.is_success() && body.get("errors").is_none() => {
                            hist.record(micros(elapsed))?;
                            ok += 1;
                            found += nodes.len() as u64;
                            if nodes.iter().any(|n| n["stops"] == 1) {
                                with_stop += 1;
                            }
                        }
                        _ => {
                            if errors == 0 {
                                tracing::warn!(%status, %body, "searchItineraries failed");
                            }
                            errors += 1;
                        }
                    }
                }
                anyhow::Ok((ok, found, with_stop, errors, hist))
            })
        })
        .collect();
    let mut hist = new_histogram();
    let (mut ok, mut found, mut with_stop, mut errors) = (0u64, 0u64, 0u64, 0u64);
    for t in tasks {
        let (o, f, w, e, h) = t.await??;
        ok += o;
        found += f;
        with_stop += w;
        errors += e;
        hist.add(h)?;
    }
    let elapsed = started.elapsed();
    let l = latency(&hist);
    println!(
        "\n## One-stop searchItineraries over HTTP ({} clients, {in_model} flights in the read \
         model, {} origin-destination-days with a one-stop connection)\n",
        args.clients,
        keys.len()
    );
    println!(
        "| queries | seconds | queries/s | trips per answer | answers with a one-stop trip | \
         p50 ms | p99 ms | goal p99 | errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    println!(
        "| {ok} | {:.1} | {:.0} | {:.1} | {:.0} % | {:.2} | {:.2} | < 20 ms ({}) | {errors} |",
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        found as f64 / ok.max(1) as f64,
        100.0 * with_stop as f64 / ok.max(1) as f64,
        l.p50,
        l.p99,
        if l.p99 < 20.0 { "met" } else { "missed" }
    );
    Ok(())
}
