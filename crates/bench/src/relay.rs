//! The Kafka relay against a real broker: how fast it publishes a log it
//! is behind on, and how long a booking takes from the log to a consumer
//! downstream.
//!
//! The broker is `tansu` (Apache Kafka compatible, storage in memory),
//! started here as a child process on a free port as the engine's Kafka
//! tests start it, and killed at the end (`TANSU` names the binary when it
//! is neither in `~/.cargo/bin` nor on the PATH). Each part gets a broker
//! and a scratch database of its own: the second part's engine would
//! otherwise start with the first part's backlog to project, and its broker
//! with the first part's messages to hold.
//!
//! 1. **Catch-up publish.** What a relay does after an outage, when it is
//!    first deployed on a log that already exists, or under a new topic
//!    prefix: publish a backlog. The log is filled as the audit benchmark
//!    fills it ([`super::read::fill`]: domain events made by domain
//!    decisions, sealed, appended through the store), then one
//!    [`relay::Relay`] starts from an empty checkpoint and is timed until its
//!    checkpoint reaches the log's head (topic creation included). The
//!    checkpoint moves only past events the broker acknowledged, so this is
//!    the rate at which events are durably at the broker, not the rate at
//!    which they are handed to the producer. Then a consumer group reads the
//!    five topics once from the earliest offsets, to check that every event
//!    of the log arrived (deduplicated by the envelope's `event_id`; with no
//!    relay killed, none should come twice) and to time a consumer over the
//!    same backlog.
//! 2. **End-to-end latency.** The engine runs as `booking serve` does with
//!    `KAFKA_BROKERS` set (the relay in the process; rate limits and hold
//!    caps off), and bookings arrive over HTTP at a fixed rate, open loop: a
//!    ticker spawns each request at its scheduled instant whether or not the
//!    earlier ones have answered. A closed loop would slow down with the
//!    engine and so hide the latency it is there to show (coordinated
//!    omission); here a slow engine shows as late or failed requests. Two
//!    consumers subscribed to `booking.events` (each a group from the latest
//!    offsets, assigned before the load starts) take, for each
//!    `BookingCreated`, its arrival minus the envelope's `recorded_at`: the
//!    time the store stamps on the event as it appends it, just before the
//!    commit. So the figure is the commit, the relay waking up and reading
//!    the log, the broker's acknowledgement (the relay sends a batch and
//!    waits for all of it) and the consumer's fetch. The two differ only in
//!    `fetch.wait.max.ms`, librdkafka's default and 1 ms: against tansu the
//!    figure follows it (see [`LatencyConsumer`]), and the second shows what
//!    is left of it, mostly the relay. Each consumer polls on a thread of its
//!    own, so the clock is read when librdkafka hands over the message, not
//!    when a runtime busy with the load and the engine gets round to a task.
//!    Client, engine, relay, broker, consumers and PostgreSQL share the
//!    machine.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use eventstore::{EventStore, PgEventStore, Position, Sealer};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::Message as _;
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, PgPool};
use uuid::Uuid;

use super::http::{book, config, login, schedule, settle, Customers, ADMIN};
use super::{micros, new_histogram, scratch_database};
use engine::app::{Application, Switch};

#[derive(Debug, Clone, clap::Args)]
pub struct RelayBench {
    /// Events in the log of the catch-up publish (at least: bookings are
    /// appended whole, so the log ends a few hundred past it).
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Flights the generated bookings of the catch-up log are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub flights: usize,
    /// Bookings a second offered over HTTP in the latency run.
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Customers the bookings of the latency run go round.
    #[arg(long, default_value_t = 10_000)]
    pub customers: usize,
}

pub async fn run(database_url: &str, args: RelayBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.seconds > 0,
        "--rate and --seconds > 0"
    );
    let tansu = tansu_bin();
    let version = Command::new(&tansu)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "Broker: {} ({}), one broker, storage in memory, on loopback; topics of 6 partitions, \
         replication 1.\n",
        if version.is_empty() {
            "tansu"
        } else {
            &version
        },
        tansu.display()
    );

    let (admin, url, name) = scratch_database(database_url).await?;
    let result = catch_up(&url, &args).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result?;

    let (admin, url, name) = scratch_database(database_url).await?;
    let result = end_to_end(&url, &args).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result
}

// ---------------------------------------------------------------------------
// The broker.

fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU") {
        return p.into();
    }
    std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/tansu"))
        .ok()
        .filter(|p| p.exists())
        .unwrap_or_else(|| "tansu".into())
}

/// A tansu broker of this run, in memory, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("tansu-bench-{port}.log"));
        let log = std::fs::File::create(&log)?;
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context(
                "starting tansu: install it with `cargo install tansu --features dynostore \
                 --locked`, or name it with TANSU",
            )?;
        // Owned from here: an error below still kills it.
        let broker = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(Instant::now() < deadline, "tansu did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(broker)
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The log and the relay's checkpoint.

/// Events of the log by the topic the relay publishes them to (events of
/// categories without a topic are not published, and not counted).
async fn log_by_topic(pool: &PgPool) -> anyhow::Result<BTreeMap<&'static str, u64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT split_part(stream_id, '-', 1), count(*) FROM es_events GROUP BY 1")
            .fetch_all(pool)
            .await?;
    let mut by = BTreeMap::new();
    for (category, n) in rows {
        if let Some(topic) = relay::topic_of(&category) {
            *by.entry(topic).or_default() += n as u64;
        }
    }
    Ok(by)
}

async fn checkpoint(pool: &PgPool) -> anyhow::Result<Option<Position>> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT tx, seq FROM relay_checkpoints WHERE name = 'kafka'")
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(tx, seq)| Position::new(tx as u64, seq as u64)))
}

/// Waits until the relay's checkpoint is at `head`; how long that took.
async fn relay_reaches(
    pool: &PgPool,
    head: Position,
    within: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if checkpoint(pool).await? >= Some(head) {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < within,
            "the relay did not reach {head} within {within:?} (at {:?})",
            checkpoint(pool).await?
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------
// Consumers.

/// What the bench reads of an envelope.
#[derive(Deserialize)]
struct Envelope<'a> {
    event_id: Uuid,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    recorded_at: DateTime<Utc>,
}

fn consumer(brokers: &str, group: &str, reset: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", reset)
        .set("enable.auto.commit", "true")
        .set("session.timeout.ms", "6000");
    c
}

/// One group's read of every topic.
struct Consumed {
    /// Distinct events by topic.
    by_topic: BTreeMap<String, u64>,
    distinct: u64,
    duplicates: u64,
    /// From the consumer's creation to the first message (the group's
    /// join) and to the last new event.
    first: Duration,
    elapsed: Duration,
}

/// Reads every topic as a fresh group from the earliest offsets until
/// `expected` distinct events arrived, or nothing new came for `idle`.
/// Blocking: run it on a thread of its own.
fn consume_all(brokers: &str, expected: u64, idle: Duration) -> anyhow::Result<Consumed> {
    let started = Instant::now();
    let c: BaseConsumer =
        consumer(brokers, &format!("bench-{}", Uuid::now_v7()), "earliest").create()?;
    c.subscribe(&relay::TOPICS)?;
    let mut seen: HashSet<Uuid> = HashSet::with_capacity(expected as usize);
    let mut by_topic: BTreeMap<String, u64> = BTreeMap::new();
    let mut duplicates = 0;
    let mut first = None;
    let mut last = started;
    while (seen.len() as u64) < expected && last.elapsed() < idle {
        let Some(m) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        first.get_or_insert_with(|| started.elapsed());
        let e: Envelope<'_> = serde_json::from_slice(m.payload().unwrap_or_default())
            .context("a message that is not an envelope")?;
        if seen.insert(e.event_id) {
            *by_topic.entry(m.topic().to_string()).or_default() += 1;
            last = Instant::now();
        } else {
            duplicates += 1;
        }
    }
    Ok(Consumed {
        by_topic,
        distinct: seen.len() as u64,
        duplicates,
        first: first.unwrap_or_default(),
        elapsed: last - started,
    })
}

/// The latency consumer's findings.
struct Arrivals {
    /// Commit -> consumer of each first `BookingCreated`, microseconds.
    latency: Histogram<u64>,
    /// Messages of `booking.events`, and of them `BookingCreated` events
    /// (distinct) and duplicates.
    messages: u64,
    created: u64,
    duplicates: u64,
    /// Arrivals before their `recorded_at`: both are read from this
    /// machine's clock, so only if it stepped back.
    negative: u64,
}

/// A consumer of `booking.events` on a thread of its own, from the latest
/// offsets: `ready` once it owns every partition, `created` as
/// `BookingCreated` events arrive, until `stop`.
///
/// Its `fetch.wait.max.ms` is a setting of the run: against tansu the
/// latency follows it (a fetch with nothing to return is answered when the
/// wait runs out, and data arriving meanwhile waits with it, where Kafka
/// answers as soon as data arrives), so the run has two consumers, one at
/// librdkafka's default and one at 1 ms, which leaves mostly the relay.
struct LatencyConsumer {
    created: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<Arrivals>>,
}

const BOOKING_TOPIC: &str = "booking.events";

impl LatencyConsumer {
    async fn start(brokers: &str, fetch_wait: Option<u32>) -> anyhow::Result<Self> {
        let mut config = consumer(
            brokers,
            &format!("bench-latency-{}", Uuid::now_v7()),
            "latest",
        );
        if let Some(ms) = fetch_wait {
            config.set("fetch.wait.max.ms", ms.to_string());
        }
        let c: BaseConsumer = config.create()?;
        let created = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, is_ready) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
        let (created2, stop2) = (created.clone(), stop.clone());
        let thread = std::thread::spawn(move || -> anyhow::Result<Arrivals> {
            let mut ready = Some(ready);
            let result = Self::consume(&c, &created2, &stop2, &mut ready);
            if let (Some(ready), Err(e)) = (ready, &result) {
                let _ = ready.send(Err(anyhow::anyhow!("{e:#}")));
            }
            result
        });
        is_ready
            .await
            .context("the latency consumer stopped before it was ready")??;
        Ok(Self {
            created,
            stop,
            thread,
        })
    }

    fn consume(
        c: &BaseConsumer,
        created: &AtomicU64,
        stop: &AtomicBool,
        ready: &mut Option<tokio::sync::oneshot::Sender<anyhow::Result<()>>>,
    ) -> anyhow::Result<Arrivals> {
        let partitions = c
            .fetch_metadata(Some(BOOKING_TOPIC), Duration::from_secs(10))?
            .topics()
            .iter()
            .find(|t| t.name() == BOOKING_TOPIC)
            .map_or(0, |t| t.partitions().len());
        anyhow::ensure!(partitions > 0, "{BOOKING_TOPIC} has no partitions");
        c.subscribe(&[BOOKING_TOPIC])?;
        // Assigned: the group has given this member every partition.
        let deadline = Instant::now() + Duration::from_secs(60);
        while c.assignment()?.count() < partitions {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the latency consumer was not assigned {partitions} partitions"
            );
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                m?;
            }
        }
        // librdkafka resolves "latest" right after the assignment, with a
        // request of its own per partition; a second of polls lets it land,
        // so no booking of the load is before the consumer's offsets (and
        // the counts at the end would show if one were).
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(1) {
            if let Some(m) = c.poll(Duration::from_millis(50)) {
                m?;
            }
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(()));
        }

        let mut arrivals = Arrivals {
            latency: new_histogram(),
            messages: 0,
            created: 0,
            duplicates: 0,
            negative: 0,
        };
        let mut seen = HashSet::new();
        while !stop.load(Ordering::Relaxed) {
            let Some(m) = c.poll(Duration::from_millis(50)) else {
                continue;
            };
            let m = m?;
            // The clock first: parsing is the consumer's cost, not the
            // relay's.
            let now = Utc::now();
            arrivals.messages += 1;
            let e: Envelope<'_> = serde_json::from_slice(m.payload().unwrap_or_default())
                .context("a message that is not an envelope")?;
            if e.event_type != "BookingCreated" {
                continue;
            }
            if !seen.insert(e.event_id) {
                arrivals.duplicates += 1;
                continue;
            }
            match (now - e.recorded_at).to_std() {
                Ok(d) => arrivals.latency.record(micros(d))?,
                Err(_) => arrivals.negative += 1,
            }
            arrivals.created += 1;
            created.store(arrivals.created, Ordering::Relaxed);
        }
        Ok(arrivals)
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn stop(self) -> anyhow::Result<Arrivals> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the latency consumer panicked"))?
    }
}

// ---------------------------------------------------------------------------
// Part 1: catch-up publish.

async fn catch_up(url: &str, args: &RelayBench) -> anyhow::Result<()> {
    // The relay reads batches of 5,000 events: sqlx's slow-statement
    // warnings would only bury the tables.
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.disable_statement_logging())
        .await?;
    engine::migrations::run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let sealer = Sealer::postgres(pool.clone());
    let started = Instant::now();
    let flights = super::read::fill(store.clone(), &sealer, args.flights, args.events).await?;
    let fill_time = started.elapsed();
    let head = store.head().await?.context("the log is empty")?;
    let by_topic = log_by_topic(&pool).await?;
    let total: u64 = by_topic.values().sum();

    let broker = Broker::start().await?;
    let brokers = broker.brokers();
    let config = relay::RelayConfig::new(&brokers);
    let batch = config.batch;
    let relay = relay::Relay::new(pool.clone(), store.clone(), config)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    // The first checkpoint: topics created, the lease taken and the first
    // batch acknowledged.
    let mut first = None;
    let deadline = Duration::from_secs(3600);
    loop {
        let at = checkpoint(&pool).await?;
        if at.is_some() {
            first.get_or_insert_with(|| started.elapsed());
        }
        if at >= Some(head) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < deadline,
            "the relay did not reach the head within an hour (at {at:?})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let publish = started.elapsed();
    let _ = stop.send(());
    running.await?;

    let consumed = {
        let brokers = brokers.clone();
        tokio::task::spawn_blocking(move || consume_all(&brokers, total, Duration::from_secs(30)))
            .await??
    };
    drop(broker);

    println!("## Catch-up publish: a relay from an empty checkpoint to the log's head\n");
    println!(
        "{total} events in the log ({} flights and their bookings, made by domain decisions, \
         sealed and appended through the store in {:.1} s). One relay (batches of {batch}, \
         idempotent producer, acks=all, linger 5 ms), timed from its start (topics created, \
         lease taken) until its checkpoint, which moves only past acknowledged events, is the \
         head; then one consumer group reads the five topics from the earliest offsets.\n",
        flights.len(),
        fill_time.as_secs_f64(),
    );
    println!("| step | events | seconds | events/s | notes |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| relay: empty checkpoint to head, acknowledged by the broker | {total} | {:.2} | {:.0} | \
         first checkpoint (topics, lease, first batch) after {:.0} ms |",
        publish.as_secs_f64(),
        total as f64 / publish.as_secs_f64(),
        first.unwrap_or_default().as_secs_f64() * 1000.0
    );
    println!(
        "| consumer group: five topics from the earliest offsets | {} | {:.2} | {:.0} | \
         first message after {:.0} ms (group join); {} duplicates; {} missing |",
        consumed.distinct,
        consumed.elapsed.as_secs_f64(),
        consumed.distinct as f64 / consumed.elapsed.as_secs_f64(),
        consumed.first.as_secs_f64() * 1000.0,
        consumed.duplicates,
        total.saturating_sub(consumed.distinct)
    );
    println!("\n| topic | events in the log | arrived (distinct) |");
    println!("|---|---:|---:|");
    for topic in relay::TOPICS {
        println!(
            "| {topic} | {} | {} |",
            by_topic.get(topic).copied().unwrap_or(0),
            consumed.by_topic.get(topic).copied().unwrap_or(0)
        );
    }
    println!();
    anyhow::ensure!(
        consumed.distinct == total,
        "{} of {total} events arrived",
        consumed.distinct
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Part 2: end-to-end latency under a booking load.

/// A request that starts this long after its scheduled instant is late:
/// the ticker fell behind (the machine is saturated), and the offered rate
/// was not the one asked for.
const LATE: Duration = Duration::from_millis(10);
/// The latency consumers: librdkafka's default `fetch.wait.max.ms`, and
/// 1 ms (see [`LatencyConsumer`]).
const FETCH_WAITS: [(&str, Option<u32>); 2] = [
    ("fetch.wait.max.ms 500 (librdkafka default)", None),
    ("fetch.wait.max.ms 1", Some(1)),
];
/// Seats of a bench flight ([`schedule`]). The load takes at most 80% of
/// them: no flight sells out, so every request can succeed.
const SEATS: u64 = 99 * 11;

async fn end_to_end(url: &str, args: &RelayBench) -> anyhow::Result<()> {
    let broker = Broker::start().await?;
    let brokers = broker.brokers();
    let mut config = config(url, Switch::Off);
    config.kafka_brokers = Some(brokers.clone());
    let app = Application::build(config).await?;
    let base = format!("http://{}/api/v1", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let result = load(url, &base, &brokers, args).await;
    let _ = stop.send(());
    server.await??;
    drop(broker);
    result
}

async fn load(url: &str, base: &str, brokers: &str, args: &RelayBench) -> anyhow::Result<()> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.disable_statement_logging())
        .await?;
    let store = PgEventStore::new(pool.clone());
    // The relay created its topics and published the admin's bootstrap:
    // the consumer can join.
    let head = store.head().await?.context("no bootstrap events")?;
    relay_reaches(&pool, head, Duration::from_secs(60)).await?;
    let mut consumers = Vec::new();
    for (name, fetch_wait) in FETCH_WAITS {
        consumers.push((name, LatencyConsumer::start(brokers, fetch_wait).await?));
    }

    let client = Client::new();
    let admin = login(&client, base, ADMIN).await?;
    let total = args.rate * args.seconds;
    let mut flights = Vec::new();
    for _ in 0..(total * 10 / (SEATS * 8)).max(3) + 1 {
        flights.push(schedule(&client, base, &admin).await?);
    }
    let customers = Arc::new(Customers::mint(args.customers)?);
    settle(&pool).await?;
    let head = store.head().await?.context("an empty log")?;
    relay_reaches(&pool, head, Duration::from_secs(60)).await?;
    let before = log_by_topic(&pool).await?;

    // Open loop: request i goes at start + i / rate, whatever the earlier
    // ones are doing.
    let mut late = 0u64;
    let mut requests = Vec::with_capacity(total as usize);
    let start = tokio::time::Instant::now();
    for i in 0..total {
        let at = start + Duration::from_secs_f64(i as f64 / args.rate as f64);
        tokio::time::sleep_until(at).await;
        if at.elapsed() > LATE {
            late += 1;
        }
        let (client, base, token) = (
            client.clone(),
            base.to_string(),
            customers.next().to_string(),
        );
        let flight = flights[i as usize % flights.len()];
        requests.push(tokio::spawn(async move {
            book(&client, &base, &token, flight).await
        }));
    }
    let sent = start.elapsed();
    let (mut created, mut failed) = (0u64, 0u64);
    for r in requests {
        match r.await? {
            Ok(StatusCode::CREATED) => created += 1,
            _ => failed += 1,
        }
    }
    let answered = start.elapsed();

    // Everything committed reaches the broker, then the consumer.
    let head = store.head().await?.context("an empty log")?;
    let drained = relay_reaches(&pool, head, Duration::from_secs(120)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumers.iter().any(|(_, c)| c.created() < created) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut arrivals = Vec::new();
    for (name, c) in consumers {
        arrivals.push((name, c.stop()?));
    }
    let after = log_by_topic(&pool).await?;
    let published: u64 = after
        .iter()
        .map(|(t, n)| n - before.get(t).copied().unwrap_or(0))
        .sum();
    let booking_events = after.get(BOOKING_TOPIC).copied().unwrap_or(0)
        - before.get(BOOKING_TOPIC).copied().unwrap_or(0);

    println!(
        "## End to end: booking committed to a consumer of {BOOKING_TOPIC}, under {} bookings/s\n",
        args.rate
    );
    println!(
        "The engine as `booking serve` with KAFKA_BROKERS (relay, projectors and sagas in the \
         process; rate limits and hold caps off); {total} bookings offered open loop at {} /s \
         for {} s over HTTP on {} flights by {} customers, each request spawned at its \
         scheduled instant. Latency: arrival at each consumer minus the envelope's \
         `recorded_at`, per `BookingCreated`.\n",
        args.rate,
        args.seconds,
        flights.len(),
        args.customers
    );
    println!(
        "| offered /s | seconds | sent | created | failed | late (>{} ms) | bookings/s | \
         events published | relay at head after |",
        LATE.as_millis()
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {:.1} | {total} | {created} | {failed} | {late} | {:.0} | {published} \
         ({booking_events} on {BOOKING_TOPIC}) | {:.0} ms |",
        args.rate,
        sent.as_secs_f64(),
        created as f64 / answered.as_secs_f64(),
        drained.as_secs_f64() * 1000.0
    );
    let ms = |v: u64| v as f64 / 1000.0;
    println!(
        "\n| consumer | BookingCreated received | duplicates | missing | messages on \
         {BOOKING_TOPIC} | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, a) in &arrivals {
        let h = &a.latency;
        println!(
            "| {name} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            a.created,
            a.duplicates,
            created.saturating_sub(a.created),
            a.messages,
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max())
        );
    }
    for (name, a) in &arrivals {
        if a.negative > 0 {
            println!(
                "\n{name}: {} arrivals before their `recorded_at` (the clock stepped) are left out.",
                a.negative
            );
        }
    }
    println!();
    for (name, a) in &arrivals {
        anyhow::ensure!(
            a.created >= created,
            "{name}: {} of {created} BookingCreated events reached the consumer",
            a.created
        );
    }
    Ok(())
}
