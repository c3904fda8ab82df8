//! The event store against plain PostgreSQL on the same server.
//!
//! - one-event appends across many streams at 1, 8, 32 and 64 writers, each
//!   with an exact expected version (the way commands append);
//! - ten-event appends;
//! - one-row INSERT transactions into a plain table at the same concurrency,
//!   the ceiling the store is compared with;
//! - the same INSERT from `pgbench` (`-M prepared`, a table of its own with
//!   the same columns, the same payload made on the server), at the same
//!   writer counts: the ceiling without this process's client (sqlx, tokio)
//!   in the way. Skipped, with a note, where `pgbench` is not installed;
//! - the catch-up read rate over at least a million events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventstore::{
    Actor, AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, PgEventStore, StreamId,
};
use hdrhistogram::Histogram;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use super::{latency, micros, new_histogram, scratch_database};

use pgbench::Pgbench;

#[derive(Debug, Clone, clap::Args)]
pub struct StoreBench {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Writer counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    pub writers: Vec<usize>,
    /// Events in the log for the catch-up read.
    #[arg(long, default_value_t = 1_000_000)]
    pub read_events: u64,
}

struct Run {
    ops: u64,
    events: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(database_url: &str, args: StoreBench) -> anyhow::Result<()> {
    let (admin, bench_url, name) = scratch_database(database_url).await?;
    let result = measure(&bench_url, &args).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result
}

async fn measure(url: &str, args: &StoreBench) -> anyhow::Result<()> {
    let max = args.writers.iter().copied().max().unwrap_or(1) as u32;
    let pool = PgPoolOptions::new()
        .max_connections(max + 4)
        .connect(url)
        .await?;
    PgEventStore::migrate(&pool).await?;
    for table in ["bench_plain", "bench_pgbench"] {
        sqlx::query(&format!(
            "CREATE TABLE {table} (id bigserial PRIMARY KEY, stream_id text NOT NULL, data jsonb NOT NULL)"
        ))
        .execute(&pool)
        .await?;
    }
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let secs = Duration::from_secs(args.seconds);
    let pgbench = Pgbench::find(url).await?;

    println!("## Appends: one event per append, many streams\n");
    if pgbench.is_none() {
        println!(
            "pgbench is not on PATH: its column is skipped (`apt-get install postgresql-client` \
             installs it).\n"
        );
    }
    println!("| writers | store appends/s | p50 ms | p99 ms | plain INSERT/s | p50 ms | p99 ms | store / plain | pgbench tx/s | store / pgbench |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut commands = Vec::new();
    for &w in &args.writers {
        let s = appends(store.clone(), w, 1, secs).await?;
        let p = plain_inserts(pool.clone(), w, secs).await?;
        let (sl, pl) = (latency(&s.hist), latency(&p.hist));
        let bench = match &pgbench {
            Some(pgbench) => {
                // pgbench's connections need the server's slots the pool
                // keeps open since the runs above.
                close_idle(&pool).await;
                let (command, tps) = pgbench.run(w, args.seconds).await;
                commands.push(command);
                match tps {
                    Ok(tps) => format!("{tps:.0} | {:.2}", s.per_sec() / tps),
                    Err(e) => {
                        tracing::warn!("pgbench at {w} writers: {e:#}");
                        "failed | n/a".to_string()
                    }
                }
            }
            None => "n/a | n/a".to_string(),
        };
        println!(
            "| {w} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {bench} |",
            s.per_sec(),
            sl.p50,
            sl.p99,
            p.per_sec(),
            pl.p50,
            pl.p99,
            s.per_sec() / p.per_sec()
        );
    }
    if let Some(pgbench) = &pgbench {
        println!(
            "\npgbench, one run per writer count (its own processes and connections, on this \
             machine), the script (written to a temporary file for the run):\n\n```\n{}```\n",
            pgbench::SCRIPT
        );
        for c in &commands {
            println!("    {c}");
        }
        if pgbench.password {
            println!("\n(the password passed in PGPASSWORD)");
        }
    }

    println!("\n## Appends: ten events per append\n");
    println!("| writers | appends/s | events/s | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|");
    for &w in args.writers.iter().filter(|&&w| w == 8 || w == 32) {
        let r = appends(store.clone(), w, 10, secs).await?;
        let l = latency(&r.hist);
        println!(
            "| {w} | {:.0} | {:.0} | {:.2} | {:.2} |",
            r.per_sec(),
            r.events as f64 / r.elapsed.as_secs_f64(),
            l.p50,
            l.p99
        );
    }

    println!("\n## Catch-up read of the global log\n");
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&pool)
        .await?;
    let missing = args.read_events.saturating_sub(have as u64);
    let load_started = Instant::now();
    fill(store.clone(), missing).await?;
    let load = load_started.elapsed();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&pool)
        .await?;
    // Settle: the log is readable once no writer is in flight.
    while store.head().await?.is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let mut cursor = None;
    let mut read = 0u64;
    loop {
        let page = store.read_all(cursor, 1000).await?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.position);
        read += page.len() as u64;
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(read == total as u64, "read {read} of {total} events");
    println!(
        "{read} events read in {:.2} s: {:.0} events/s (pages of 1000, decoded into events). \
         Loading the {missing} extra events through 1000-event appends took {:.1} s ({:.0} events/s).",
        elapsed.as_secs_f64(),
        read as f64 / elapsed.as_secs_f64(),
        load.as_secs_f64(),
        missing as f64 / load.as_secs_f64().max(1e-9),
    );
    // Before the scratch database is dropped under them.
    pool.close().await;
    Ok(())
}

fn new_event(i: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "SeatsHeld".into(),
        schema_version: 1,
        // About the size of a real seat-hold event.
        data: json!({
            "booking_id": Uuid::now_v7(),
            "seats": ["12A", "12B"],
            "expires_at": "2026-12-01T09:10:00Z",
            "n": i,
        }),
        metadata: Metadata {
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            command_id: Some(Uuid::now_v7()),
            actor: Actor::user(Uuid::now_v7(), "customer"),
        },
    }
}

/// `writers` tasks append `per_append` events to their own streams, each with
/// the exact version they last wrote, for `secs`.
async fn appends(
    store: Arc<PgEventStore>,
    writers: usize,
    per_append: usize,
    secs: Duration,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let deadline = started + secs;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let streams: Vec<StreamId> = (0..64)
                    .map(|_| StreamId::new("bench", Uuid::now_v7()))
                    .collect();
                let mut versions = vec![0u64; streams.len()];
                let mut hist = new_histogram();
                let mut ops = 0u64;
                let mut i = w as u64;
                while Instant::now() < deadline {
                    let k = (i as usize) % streams.len();
                    i += 1;
                    let events = (0..per_append).map(|j| new_event(i + j as u64)).collect();
                    let t = Instant::now();
                    let r = store
                        .append(AppendRequest::single(
                            streams[k].clone(),
                            ExpectedVersion::Exact(versions[k]),
                            events,
                        ))
                        .await?;
                    hist.record(micros(t.elapsed()))?;
                    versions[k] = r.version_of(&streams[k]).unwrap_or(versions[k]);
                    ops += 1;
                }
                anyhow::Ok((ops, hist))
            })
        })
        .collect();
    collect(tasks, started, per_append as u64).await
}

async fn plain_inserts(pool: PgPool, writers: usize, secs: Duration) -> anyhow::Result<Run> {
    let started = Instant::now();
    let deadline = started + secs;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut hist = new_histogram();
                let mut ops = 0u64;
                let mut i = w as u64;
                while Instant::now() < deadline {
                    let e = new_event(i);
                    i += 1;
                    let t = Instant::now();
                    sqlx::query("INSERT INTO bench_plain (stream_id, data) VALUES ($1, $2)")
                        .bind(format!("bench-{w}"))
                        .bind(&e.data)
                        .execute(&pool)
                        .await?;
                    hist.record(micros(t.elapsed()))?;
                    ops += 1;
                }
                anyhow::Ok((ops, hist))
            })
        })
        .collect();
    collect(tasks, started, 1).await
}

/// A writer task's count of operations and their latencies.
type Writer = tokio::task::JoinHandle<anyhow::Result<(u64, Histogram<u64>)>>;

async fn collect(tasks: Vec<Writer>, started: Instant, events_per_op: u64) -> anyhow::Result<Run> {
    let mut hist = new_histogram();
    let mut ops = 0;
    for t in tasks {
        let (n, h) = t.await??;
        ops += n;
        hist.add(h)?;
    }
    Ok(Run {
        ops,
        events: ops * events_per_op,
        elapsed: started.elapsed(),
        hist,
    })
}

/// Appends `n` events in 1000-event appends over four writers.
async fn fill(store: Arc<PgEventStore>, n: u64) -> anyhow::Result<()> {
    const BATCH: u64 = 1000;
    let appends = n.div_ceil(BATCH);
    let tasks: Vec<_> = (0..4u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut a = w;
                while a < appends {
                    let count = BATCH.min(n - a * BATCH);
                    let events = (0..count).map(|i| new_event(a * BATCH + i)).collect();
                    store
                        .append(AppendRequest::single(
                            StreamId::new("fill", Uuid::now_v7()),
                            ExpectedVersion::NO_STREAM,
                            events,
                        ))
                        .await?;
                    a += 4;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Closes the pool's idle connections (it opens new ones when asked).
async fn close_idle(pool: &PgPool) {
    while let Some(conn) = pool.try_acquire() {
        let _ = conn.close().await;
    }
}

/// The plain INSERT again, from `pgbench`.
mod pgbench {
    use std::path::{Path, PathBuf};

    use anyhow::Context as _;

    /// One INSERT per transaction into `bench_pgbench`, which has the
    /// columns of `bench_plain`: the payload of [`super::new_event`] (the same
    /// keys and about the same bytes, a fresh `booking_id` each time), made
    /// on the server and parsed as `jsonb` there as the plain INSERT's is.
    pub(super) const SCRIPT: &str = r#"\set n random(1, 1000000)
INSERT INTO bench_pgbench (stream_id, data) VALUES ('bench-' || :client_id, ('{"booking_id":"' || gen_random_uuid() || '","expires_at":"2026-12-01T09:10:00Z","n":' || :n || ',"seats":["12A","12B"]}')::jsonb);
"#;

    /// `pgbench` on PATH, its script written and the scratch database's
    /// URL as libpq takes it.
    pub(super) struct Pgbench {
        script: Script,
        /// The URL without its password (passed in PGPASSWORD, so the
        /// printed command holds none) nor sqlx's own parameters.
        url: String,
        secret: Option<String>,
        pub(super) password: bool,
    }

    /// The script file, removed when dropped.
    struct Script(PathBuf);

    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    impl Pgbench {
        /// `None` if `pgbench` is not on PATH.
        pub(super) async fn find(url: &str) -> anyhow::Result<Option<Self>> {
            match tokio::process::Command::new("pgbench")
                .arg("--version")
                .output()
                .await
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e).context("running pgbench --version"),
            }
            let mut parsed: reqwest::Url = url.parse().context("the scratch database's URL")?;
            let secret = parsed.password().map(str::to_owned);
            let _ = parsed.set_password(None);
            // libpq refuses parameters it does not know, such as sqlx's
            // statement-cache-capacity.
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .filter(|(k, _)| k != "statement-cache-capacity")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            parsed.set_query(None);
            if !pairs.is_empty() {
                parsed.query_pairs_mut().extend_pairs(pairs);
            }
            let path = std::env::temp_dir()
                .join(format!("booking-bench-pgbench-{}.sql", std::process::id()));
            std::fs::write(&path, SCRIPT).with_context(|| format!("writing {}", path.display()))?;
            Ok(Some(Self {
                script: Script(path),
                url: parsed.to_string(),
                password: secret.is_some(),
                secret,
            }))
        }

        fn args(&self, writers: usize, secs: u64) -> Vec<String> {
            let script: &Path = &self.script.0;
            [
                "-n",
                "-c",
                &writers.to_string(),
                "-j",
                &writers.min(2).to_string(),
                "-T",
                &secs.to_string(),
                "-M",
                "prepared",
                "-f",
                &script.display().to_string(),
                &self.url,
            ]
            .map(str::to_owned)
            .to_vec()
        }

        /// The command as run, and the `tps` it printed.
        pub(super) async fn run(&self, writers: usize, secs: u64) -> (String, anyhow::Result<f64>) {
            let args = self.args(writers, secs);
            let (url, rest) = args.split_last().expect("the URL is the last argument");
            let command = format!("pgbench {} '{url}'", rest.join(" "));
            let mut cmd = tokio::process::Command::new("pgbench");
            cmd.args(&args);
            if let Some(secret) = &self.secret {
                cmd.env("PGPASSWORD", secret);
            }
            let tps = async {
                let out = cmd.output().await.context("running pgbench")?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                anyhow::ensure!(
                    out.status.success(),
                    "pgbench exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                tps(&stdout).with_context(|| format!("no tps line in pgbench's output: {stdout}"))
            }
            .await;
            (command, tps)
        }
    }

    /// `tps = 23175.123456 (without initial connection time)`.
    fn tps(output: &str) -> Option<f64> {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn reads_pgbench_15_tps() {
            let out = "latency average = 0.733 ms\ninitial connection time = 4.775 ms\n\
                       tps = 23175.123456 (without initial connection time)\n";
            assert_eq!(super::tps(out), Some(23175.123456));
            assert_eq!(super::tps("number of failed transactions: 0\n"), None);
        }
    }
}
