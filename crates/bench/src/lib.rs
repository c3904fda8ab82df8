//! `booking-bench`: the figures the README reports, measured on this
//! machine. A binary of its own, so none of this ships in the engine.
//!
//! Each benchmark runs in a database of its own, created for the run and
//! dropped afterwards, on the server named by `DATABASE_URL`.
//!
//! # Layout
//! - [`store`]: event store appends and catch-up reads against plain
//!   PostgreSQL.
//! - [`http`]: bookings over HTTP against the whole engine.
//! - [`read`]: projection rebuilds, search latency, projection lag.
//! - [`itineraries`]: one-stop itinerary search latency.
//! - [`saga`]: booking -> payment -> ticket throughput and latency.
//! - [`audit`]: verification, digests and the NDJSON export over a large
//!   log.
//! - [`relay`]: the Kafka relay against a real broker: catch-up publish
//!   rate, and commit-to-consumer latency under a booking load.

pub mod audit;
pub mod http;
pub mod itineraries;
pub mod read;
pub mod relay;
pub mod saga;
pub mod store;

use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// Latency percentiles of one run, in milliseconds.
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

pub fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |q| h.value_at_quantile(q) as f64 / 1000.0;
    Latency {
        p50: ms(0.50),
        p99: ms(0.99),
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // Microseconds, up to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds")
}

pub fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1, 60_000_000) as u64
}

/// The process's resident set now and its peak, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss: u64,
    pub hwm: u64,
}

impl Memory {
    /// VmRSS and VmHWM from `/proc/self/status` (Linux).
    pub fn now() -> anyhow::Result<Self> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("{name} in /proc/self/status"))
        };
        Ok(Self {
            rss: field("VmRSS:")?,
            hwm: field("VmHWM:")?,
        })
    }

    /// Resets VmHWM to the current VmRSS (Linux 4.0 and later); false where
    /// it cannot, and the peak then stays the process's so far.
    pub fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }
}

/// KiB in MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A connection to the database `url` names, to create others beside it.
async fn admin(url: &str) -> anyhow::Result<(PgConnectOptions, PgPool)> {
    let options: PgConnectOptions = url.parse().context("DATABASE_URL")?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .context("connecting to DATABASE_URL")?;
    Ok((options, admin))
}

/// The URL of database `name` beside `url`'s, created if missing and left
/// as it is if there.
pub async fn named_database(url: &str, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "a database name of letters, digits and underscores"
    );
    let (options, admin) = admin(url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&admin)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
    }
    Ok(options.database(name).to_url_lossy().to_string())
}

/// Creates an empty database next to the one `url` names.
pub async fn scratch_database(url: &str) -> anyhow::Result<(PgPool, String, String)> {
    let (options, admin) = admin(url).await?;
    let name = format!("booking_bench_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let bench = options.database(&name);
    Ok((admin, bench.to_url_lossy().to_string(), name))
}
