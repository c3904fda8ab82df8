//! The auditor's reads over a log of a million events: the hash-chain
//! check, the signed digest and its check, and the NDJSON export, in this
//! process and over HTTP.
//!
//! The log is made as the read benchmark makes it ([`super::read::fill`]):
//! domain events of flights and bookings, sealed, appended through the real
//! store in multi-stream batches by several loaders, so every event's hash
//! and every stream's chain is the one the write side would have stored.
//! A log of synthetic rows inserted by SQL would be faster to make but
//! would not verify, and verifying is the first thing measured.
//!
//! The engine is started before the fill: its admin bootstrap appends the
//! admin's events, so every read below covers the same log, and each one
//! checks it saw all of it (`events_checked`, the digest's count, the
//! export's lines equal the log's `count(*)`). It serves the API only: the
//! projectors would catch up with the whole log meanwhile and take the
//! CPU from the reads being measured.
//!
//! - **verify**: [`audit::Audit::verify`] over the whole log (every event
//!   decoded and its hash and chain link recomputed).
//! - **digest**, **verify_digest**: the signed digest of the log, then its
//!   check against the same log (which verifies the chains again, so it
//!   costs a digest plus a verify).
//! - **export**: the NDJSON export consumed in this process, page by page.
//! - **export over HTTP**: `GET /api/v1/audit/events` with
//!   `Accept: application/x-ndjson` as an admin, the body streamed by
//!   reqwest and counted chunk by chunk, never held whole.
//! - **memory**: the export promises memory bounded by a page whatever the
//!   log's size. Client and server share this process, so its resident set
//!   is read around each export; the peak (VmHWM) is reset first through
//!   `/proc/self/clear_refs`, since the fill already raised it higher than
//!   an export should.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit::{Audit, LogQuery};
use eventstore::{PgEventStore, Sealer};
use futures::{StreamExt as _, TryStreamExt as _};
use reqwest::header::ACCEPT;
use reqwest::Client;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, PgPool};

use super::http::{config, login, ADMIN};
use super::{mib, scratch_database, Memory};
use engine::app::{Application, Role, Switch};

#[derive(Debug, Clone, clap::Args)]
pub struct AuditBench {
    /// Events in the log the reads go over (at least: bookings are
    /// appended whole, so the log ends a few hundred past it).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Flights the generated bookings are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub flights: usize,
    /// Keep the scratch database afterwards (its name is printed).
    #[arg(long)]
    pub keep_database: bool,
    /// Measure on this database instead of a scratch one, created and
    /// filled if it is not there yet, and kept: repeated runs (to compare
    /// two builds) skip the fill.
    #[arg(long, value_name = "NAME")]
    pub reuse_database: Option<String>,
}

pub async fn run(database_url: &str, args: AuditBench) -> anyhow::Result<()> {
    if let Some(name) = &args.reuse_database {
        let url = super::named_database(database_url, name).await?;
        return measure(&url, &args).await;
    }
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

async fn measure(url: &str, args: &AuditBench) -> anyhow::Result<()> {
    // A read of the whole log is slow by design: sqlx's slow-statement
    // warnings would only bury the table.
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.disable_statement_logging())
        .await?;
    engine::migrations::run(&pool).await?;
    let mut config = config(url, Switch::Off);
    config.role = Role::Api;
    config.sagas_enabled = false;
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let result = reads(&pool, addr, args).await;
    let _ = stop.send(());
    server.await??;
    result
}

/// One row of the table.
struct Row {
    read: &'static str,
    events: u64,
    elapsed: Duration,
    notes: String,
}

/// The resident set around one export.
struct Footprint {
    name: &'static str,
    before: Memory,
    after: Memory,
    reset: bool,
}

/// Runs `f` between two readings of the resident set, the peak reset
/// between them.
async fn footprint<T, F>(name: &'static str, f: F) -> anyhow::Result<(T, Footprint)>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let before = Memory::now()?;
    let reset = Memory::reset_peak();
    let out = f.await?;
    let after = Memory::now()?;
    Ok((
        out,
        Footprint {
            name,
            before,
            after,
            reset,
        },
    ))
}

async fn reads(pool: &PgPool, addr: SocketAddr, args: &AuditBench) -> anyhow::Result<()> {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let sealer = Sealer::postgres(pool.clone());
    let already = count(pool).await?;
    let started = Instant::now();
    // A reused database that holds enough already is measured as it is.
    let flights = if already < args.events {
        super::read::fill(store.clone(), &sealer, args.flights, args.events - already)
            .await?
            .len()
    } else {
        0
    };
    let fill_time = started.elapsed();
    let total = count(pool).await?;
    println!("## Audit reads over the whole log\n");
    if flights == 0 {
        println!("{total} events in the log (a database kept from an earlier run).\n");
    } else {
        println!(
            "{total} events in the log ({flights} flights and their bookings, made by domain \
             decisions, sealed and appended through the store in {:.1} s, {:.0} events/s; \
             {already} of them there before).\n",
            fill_time.as_secs_f64(),
            (total - already) as f64 / fill_time.as_secs_f64()
        );
    }

    let audit = Audit::new(PgEventStore::new(pool.clone()), sealer.clone(), None).await?;
    let mut rows = Vec::new();

    // The floor under verify: PostgreSQL producing the rows verify reads,
    // in its order, with no client at all (COPY to the server's /dev/null;
    // it needs a superuser or pg_write_server_files).
    let copy = format!(
        "COPY ({}) TO '/dev/null' (FORMAT binary)",
        eventstore::postgres::VERIFY_ROWS.replace("$1", "NULL")
    );
    let t = Instant::now();
    match sqlx::query(&copy).execute(pool).await {
        Ok(done) => rows.push(Row {
            read: "baseline: PostgreSQL alone renders the rows verify reads",
            events: done.rows_affected(),
            elapsed: t.elapsed(),
            notes: "COPY (the same query) TO '/dev/null': no client, one backend".into(),
        }),
        Err(e) => println!("(no PostgreSQL-alone baseline: {e})\n"),
    }

    let t = Instant::now();
    let report = audit.verify(None).await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(report.ok, "the log does not verify: {:?}", report.first_bad);
    anyhow::ensure!(
        report.events_checked == total,
        "verify checked {} of {total} events",
        report.events_checked
    );
    rows.push(Row {
        read: "verify (hash chains, whole log)",
        events: report.events_checked,
        elapsed,
        notes: format!("ok; {} streams", report.streams_checked),
    });

    let t = Instant::now();
    let digest = audit.digest().await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(
        digest.digest.events == total,
        "the digest covers {} of {total} events",
        digest.digest.events
    );
    rows.push(Row {
        read: "digest (signed)",
        events: digest.digest.events,
        elapsed,
        notes: format!(
            "{} checkpoints every {} events; {} bytes of JSON",
            digest.digest.checkpoints.len(),
            digest.digest.checkpoint_every,
            serde_json::to_vec(&digest)?.len()
        ),
    });

    let t = Instant::now();
    let check = audit.verify_digest(&digest).await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(check.ok, "the digest does not verify: {check:?}");
    rows.push(Row {
        read: "verify_digest",
        events: check.events_covered,
        elapsed,
        notes: "ok; recomputes the chain and verifies the hash chains again".into(),
    });

    let t = Instant::now();
    let ((lines, bytes), local) = footprint("export in process", async {
        let mut pages = std::pin::pin!(audit.export(LogQuery::default()));
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut last = b'\n';
        while let Some(page) = pages.try_next().await? {
            lines += newlines(&page);
            bytes += page.len() as u64;
            last = page.last().copied().unwrap_or(last);
        }
        anyhow::ensure!(last == b'\n', "the export ends in the middle of a line");
        anyhow::Ok((lines, bytes))
    })
    .await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(
        lines == total,
        "the export has {lines} lines for {total} events"
    );
    rows.push(Row {
        read: "export, NDJSON in process",
        events: lines,
        elapsed,
        notes: throughput(bytes, elapsed),
    });

    let client = Client::new();
    let token = login(&client, &format!("http://{addr}/api/v1"), ADMIN).await?;
    let t = Instant::now();
    let ((lines, bytes, first_byte), remote) = footprint("export over HTTP", async {
        let response = client
            .get(format!("http://{addr}/api/v1/audit/events"))
            .bearer_auth(&token)
            .header(ACCEPT, "application/x-ndjson")
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the export answered {}",
            response.status()
        );
        let first_byte = t.elapsed();
        let mut body = response.bytes_stream();
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut last = b'\n';
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            lines += newlines(&chunk);
            bytes += chunk.len() as u64;
            last = chunk.last().copied().unwrap_or(last);
        }
        anyhow::ensure!(last == b'\n', "the export ends in the middle of a line");
        anyhow::Ok((lines, bytes, first_byte))
    })
    .await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(
        lines == total,
        "the HTTP export has {lines} lines for {total} events"
    );
    rows.push(Row {
        read: "export, NDJSON over HTTP",
        events: lines,
        elapsed,
        notes: format!(
            "{}; headers after {:.0} ms",
            throughput(bytes, elapsed),
            first_byte.as_secs_f64() * 1000.0
        ),
    });

    println!("| read | events | seconds | events/s | notes |");
    println!("|---|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.0} | {} |",
            r.read,
            r.events,
            r.elapsed.as_secs_f64(),
            r.events as f64 / r.elapsed.as_secs_f64(),
            r.notes
        );
    }

    println!(
        "\n## Memory of the exports\n\n\
         Resident set of this process (client and server both) around each export; the peak \
         is reset just before it{}.\n",
        if local.reset && remote.reset {
            ""
        } else {
            " where the kernel allows (where not, the peak is the process's so far)"
        }
    );
    println!("| export | VmRSS before MiB | VmRSS after MiB | VmHWM before MiB | VmHWM after MiB | peak growth MiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for f in [&local, &remote] {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            f.name,
            mib(f.before.rss),
            mib(f.after.rss),
            mib(f.before.hwm),
            mib(f.after.hwm),
            (mib(f.after.hwm) - mib(if f.reset { f.before.rss } else { f.before.hwm })).max(0.0)
        );
    }
    Ok(())
}

async fn count(pool: &PgPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(pool)
        .await?;
    Ok(n as u64)
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn throughput(bytes: u64, elapsed: Duration) -> String {
    let mb = bytes as f64 / 1e6;
    format!("{mb:.0} MB, {:.1} MB/s", mb / elapsed.as_secs_f64())
}
