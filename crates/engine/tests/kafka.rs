//! The Kafka relay against a real broker: `tansu`, an Apache
//! Kafka-compatible broker (`cargo install tansu --features dynostore
//! --locked`; `.ci/run` installs it when missing). Each test starts its own
//! broker on free ports (`TANSU` names the binary when it is not on the
//! PATH or in `~/.cargo/bin`).
//!
//! Proved here, always by consuming the topics and comparing with the log:
//! - every committed event arrives, once per consumer group after dedupe by
//!   `event_id`, in stream order, with the contract's envelope, for a log
//!   written by many concurrent writers whose transactions commit out of
//!   order;
//! - two consumers in one group split the partitions;
//! - the broker unreachable for 10 s mid-load: nothing lost, order kept,
//!   and the relay's readiness follows the broker;
//! - relay processes (two at once, one lease) killed -9 at random moments,
//!   several cycles: nothing lost, order kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::Rng as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers as _;
use rdkafka::Message as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use test_support::{database_url, free_port, spawn, TestApp};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

// ------------------------------------------------------------------ broker

fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU") {
        return p.into();
    }
    let in_cargo = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/tansu"))
        .ok()
        .filter(|p| p.exists());
    in_cargo.unwrap_or_else(|| "tansu".into())
}

/// A tansu broker of this test, in memory, killed when dropped.
struct Broker {
    child: Child,
    /// Where clients connect (the broker's own port, or a proxy's).
    advertised: u16,
}

impl Broker {
    /// Listens on `listen`, telling clients to come to `advertised`.
    async fn start(listen: u16, advertised: u16) -> Self {
        let log = std::env::temp_dir().join(format!("tansu-{listen}.log"));
        let log = std::fs::File::create(&log).unwrap();
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{listen}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{advertised}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start tansu ({e}): install it with \
                     `cargo install tansu --features dynostore --locked`"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", listen)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {listen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, advertised }
    }

    async fn local() -> Self {
        let port = free_port();
        Self::start(port, port).await
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.advertised)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of the broker that can go down: while down it
/// drops every connection and refuses new ones, as a broker that stopped.
struct Proxy {
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    /// Runs on a thread and runtime of its own: a consumer dropped on the
    /// test's runtime blocks it while it leaves its group, through this
    /// proxy.
    fn start(port: u16, target: u16) -> Self {
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        let (bound, is_bound) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
                bound.send(()).unwrap();
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up2.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    open2.lock().unwrap().push(task.abort_handle());
                }
            });
        });
        is_bound.recv().unwrap();
        Self { up, open }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

// ------------------------------------------------------------------ consumers

/// One message as a consumer saw it.
#[derive(Debug, Clone)]
struct Received {
    topic: String,
    partition: i32,
    key: String,
    header_id: String,
    header_type: String,
    envelope: Value,
}

impl Received {
    fn event_id(&self) -> String {
        self.envelope["event_id"].as_str().unwrap().to_string()
    }
}

fn consumer(brokers: &str, group: &str) -> StreamConsumer {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("session.timeout.ms", "10000")
        .create()
        .unwrap();
    c.subscribe(&relay::TOPICS).unwrap();
    c
}

/// Consumes as `group` until every id of `expected` arrived (or panics
/// after `within`).
async fn consume(
    brokers: &str,
    group: &str,
    expected: &HashSet<String>,
    within: Duration,
) -> Vec<Received> {
    let c = consumer(brokers, group);
    let mut stream = c.stream();
    let mut got = Vec::new();
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + within;
    while !expected.is_subset(&seen) {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let Ok(Some(m)) = next else {
            panic!(
                "{} of {} events arrived within {within:?}",
                expected.intersection(&seen).count(),
                expected.len()
            );
        };
        let Ok(m) = m else { continue };
        let r = received(&m);
        seen.insert(r.event_id());
        got.push(r);
    }
    got
}

fn received(m: &rdkafka::message::BorrowedMessage<'_>) -> Received {
    let mut header_id = String::new();
    let mut header_type = String::new();
    if let Some(h) = m.headers() {
        for h in h.iter() {
            let v = String::from_utf8_lossy(h.value.unwrap_or_default()).to_string();
            match h.key {
                "event_id" => header_id = v,
                "type" => header_type = v,
                _ => {}
            }
        }
    }
    Received {
        topic: m.topic().to_string(),
        partition: m.partition(),
        key: String::from_utf8_lossy(m.key().unwrap_or_default()).to_string(),
        header_id,
        header_type,
        envelope: serde_json::from_slice(m.payload().unwrap_or_default()).unwrap(),
    }
}

// ------------------------------------------------------------------ the log

/// Every event of the log: id -> (stream, version, type, position).
async fn log(pool: &PgPool) -> HashMap<String, (String, i64, String, String)> {
    let rows: Vec<(Uuid, String, i64, String, i64, i64)> = sqlx::query_as(
        "SELECT event_id, stream_id, version, event_type, tx::text::bigint, position FROM es_events",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, stream, version, ty, tx, seq)| {
            let position = format!("{tx:016x}{seq:016x}");
            (id.to_string(), (stream, version, ty, position))
        })
        .collect()
}

/// Nothing lost, nothing foreign, each stream in order; the number of
/// duplicates.
fn check(log: &HashMap<String, (String, i64, String, String)>, got: &[Received]) -> usize {
    let mut first: Vec<&Received> = Vec::new();
    let mut seen = HashSet::new();
    for r in got {
        if seen.insert(r.event_id()) {
            first.push(r);
        }
    }
    let expected: HashSet<&String> = log.keys().collect();
    let arrived: HashSet<&String> = seen.iter().collect();
    assert_eq!(arrived, expected, "exactly the log's events arrive");
    // In stream order: within a stream (one key, one partition) versions
    // arrive 1, 2, 3...
    let mut next: HashMap<&str, i64> = HashMap::new();
    for r in &first {
        let (stream, version, ty, position) = &log[&r.event_id()];
        let want = next.entry(stream.as_str()).or_insert(1);
        assert_eq!(
            *version, *want,
            "{stream}: version {version} arrived when {want} was due"
        );
        *want += 1;
        // The envelope says what the log says.
        let e = &r.envelope;
        assert_eq!(e["stream_id"], stream.as_str());
        assert_eq!(e["stream_version"], *version);
        assert_eq!(e["type"], ty.as_str());
        assert_eq!(e["position"], position.as_str());
        for field in ["version", "recorded_at", "correlation_id", "data"] {
            assert!(!e[field].is_null(), "{field} in {e}");
        }
        assert!(e.get("causation_id").is_some());
        assert_eq!(r.key, *stream);
        assert_eq!(r.header_id, r.event_id());
        assert_eq!(r.header_type, *ty);
        let category = stream.split_once('-').unwrap().0;
        assert_eq!(r.topic, relay::topic_of(category).unwrap());
        // Personal data only sealed.
        assert!(!e.to_string().contains("Lovelace"), "{e}");
    }
    got.len() - first.len()
}

/// `writers` customers book and cancel at once on two flights until
/// `until`: many transactions committing out of order.
async fn write(app: Arc<TestApp>, writers: usize, until: Instant) -> usize {
    let flights = [app.flight().await, app.flight().await];
    let mut tasks = Vec::new();
    for w in 0..writers {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let (_, token) = app.customer().await;
            let mut made = 0;
            while Instant::now() < until {
                let r = app
                    .book(&token, flights[(w + made) % 2], &["economy"])
                    .await;
                if r.status() != StatusCode::CREATED {
                    continue;
                }
                let booking: Value = r.json().await.unwrap();
                made += 1;
                if made % 3 == 0 {
                    let id = booking["booking_id"].as_str().unwrap();
                    let r = app
                        .post(
                            &format!("/bookings/{id}/cancel"),
                            Some(&token),
                            json!({"reason": "changed"}),
                        )
                        .await;
                    assert_eq!(r.status(), StatusCode::ACCEPTED);
                }
            }
            made
        }));
    }
    let mut made = 0;
    for t in tasks {
        made += t.await.unwrap();
    }
    made
}

fn relay_config(brokers: &str) -> relay::RelayConfig {
    let mut c = relay::RelayConfig::new(brokers);
    c.partitions = 4;
    c
}

/// Runs a relay in this process until the returned sender is dropped.
fn run_relay(pool: &PgPool, brokers: &str) -> (tokio::sync::oneshot::Sender<()>, relay::Readiness) {
    let store: Arc<dyn eventstore::EventStore> =
        Arc::new(eventstore::PgEventStore::new(pool.clone()));
    let relay = relay::Relay::new(pool.clone(), store, relay_config(brokers)).unwrap();
    let readiness = relay.readiness();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    (stop, readiness)
}

async fn ids(pool: &PgPool) -> HashSet<String> {
    log(pool).await.into_keys().collect()
}

// ------------------------------------------------------------------ tests

/// The tests take turns: each starts a broker, an engine, writers and
/// consumers, and on two cores four at once starve each other's consumer
/// groups of the time they need to form.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// (topic, partition) pairs.
type Partitions = HashSet<(String, i32)>;

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn every_event_arrives_once_in_stream_order_with_its_envelope(pool: PgPool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let broker = Broker::local().await;
    let (_stop, _) = run_relay(&pool, &broker.brokers());
    let app = Arc::new(spawn(pool.clone()).await);
    let made = write(app, 8, Instant::now() + Duration::from_secs(4)).await;
    assert!(made > 20, "{made} bookings");
    let log = log(&pool).await;
    let expected: HashSet<String> = log.keys().cloned().collect();
    let got = consume(
        &broker.brokers(),
        "auditors",
        &expected,
        Duration::from_secs(60),
    )
    .await;
    let duplicates = check(&log, &got);
    assert_eq!(duplicates, 0, "no relay died: nothing is sent twice");
    // A second group gets everything again, on its own.
    let again = consume(
        &broker.brokers(),
        "loyalty",
        &expected,
        Duration::from_secs(60),
    )
    .await;
    check(&log, &again);
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn two_consumers_of_one_group_split_the_partitions(pool: PgPool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let broker = Broker::local().await;
    let (_stop, _) = run_relay(&pool, &broker.brokers());
    let app = Arc::new(spawn(pool.clone()).await);
    // The group forms first (each member owns some partitions), then the
    // events come.
    let (a, b) = (
        consumer(&broker.brokers(), "split"),
        consumer(&broker.brokers(), "split"),
    );
    let seen: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let by: Arc<Mutex<[Partitions; 2]>> = Arc::default();
    let note = |r: Received, who: usize| {
        *seen.lock().unwrap().entry(r.event_id()).or_default() += 1;
        by.lock().unwrap()[who].insert((r.topic.clone(), r.partition));
    };
    let owned = |c: &StreamConsumer| c.assignment().map_or(0, |a| a.count());
    let deadline = Instant::now() + Duration::from_secs(60);
    while owned(&a) == 0 || owned(&b) == 0 || owned(&a) + owned(&b) < relay::TOPICS.len() * 4 {
        assert!(Instant::now() < deadline, "the group never formed");
        for (who, c) in [(0, &a), (1, &b)] {
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(100), c.recv()).await {
                note(received(&m), who);
            }
        }
    }
    write(app, 4, Instant::now() + Duration::from_secs(2)).await;
    let log = log(&pool).await;
    let expected: HashSet<String> = log.keys().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.lock().unwrap().len() < expected.len() {
        assert!(
            Instant::now() < deadline,
            "the group got {} of {} events; partitions read: {:?}",
            seen.lock().unwrap().len(),
            expected.len(),
            by.lock().unwrap()
        );
        for (who, c) in [(0, &a), (1, &b)] {
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(100), c.recv()).await {
                note(received(&m), who);
            }
        }
    }
    let seen = seen.lock().unwrap().clone();
    let got: HashSet<String> = seen.keys().cloned().collect();
    assert_eq!(got, expected, "the group got every event");
    let by = by.lock().unwrap().clone();
    assert!(
        !by[0].is_empty() && !by[1].is_empty(),
        "both consumers read: {by:?}"
    );
    assert!(
        by[0].is_disjoint(&by[1]),
        "no partition read by both: {by:?}"
    );
    // Each event once in the group: the group was stable throughout.
    assert!(
        seen.values().all(|&n| n == 1),
        "an event went to the group twice"
    );
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn a_broker_gone_for_ten_seconds_loses_nothing(pool: PgPool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (listen, front) = (free_port(), free_port());
    let proxy = Proxy::start(front, listen);
    let broker = Broker::start(listen, front).await;
    let (_stop, readiness) = run_relay(&pool, &broker.brokers());
    let app = Arc::new(spawn(pool.clone()).await);
    let writing = tokio::spawn(write(app, 4, Instant::now() + Duration::from_secs(16)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(readiness.is_ready(), "ready while the broker answers");
    proxy.down();
    let mut saw_unready = false;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(10) {
        saw_unready |= !readiness.is_ready();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(saw_unready, "not ready while the broker is away");
    proxy.up();
    writing.await.unwrap();
    let log = log(&pool).await;
    let expected: HashSet<String> = log.keys().cloned().collect();
    let got = consume(
        &broker.brokers(),
        "after-outage",
        &expected,
        Duration::from_secs(90),
    )
    .await;
    check(&log, &got);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !readiness.is_ready() {
        assert!(
            Instant::now() < deadline,
            "ready again once the broker is back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `booking serve` as a relay process.
fn relay_process(url: &str, brokers: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_booking"))
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("BOOKING_ADDR", "127.0.0.1:0")
        .env("BOOKING_ROLE", "relay")
        .env("KAFKA_BROKERS", brokers)
        .env("BOOKING_KAFKA_PARTITIONS", "4")
        .env(
            "BOOKING_JWT_SECRET",
            "a-kafka-test-secret-that-is-long-enough",
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start booking serve")
}

fn kill9(child: &mut Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let _ = child.wait();
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn relays_killed_nine_at_random_moments_lose_nothing(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options.clone())
        .await
        .unwrap();
    let broker = Broker::local().await;
    let url = database_url(&options);
    let app = Arc::new(spawn(pool.clone()).await);
    let writing = tokio::spawn(write(app, 4, Instant::now() + Duration::from_secs(14)));
    // Two relay processes at once: one holds the lease, the other waits
    // and takes over when the holder dies.
    let mut relays = [
        relay_process(&url, &broker.brokers()),
        relay_process(&url, &broker.brokers()),
    ];
    let mut rng = rand::thread_rng();
    let kills = 6;
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(800..2500))).await;
        let i = rng.gen_range(0..2);
        kill9(&mut relays[i]);
        relays[i] = relay_process(&url, &broker.brokers());
    }
    writing.await.unwrap();
    let log = log(&pool).await;
    let expected: HashSet<String> = log.keys().cloned().collect();
    let got = consume(
        &broker.brokers(),
        "after-kills",
        &expected,
        Duration::from_secs(120),
    )
    .await;
    let duplicates = check(&log, &got);
    println!(
        "{} events, {} duplicates after {kills} kills",
        log.len(),
        duplicates
    );
    // Only what a killed relay had not checkpointed goes twice: at most a
    // batch per kill.
    assert!(
        duplicates <= kills * relay::RelayConfig::new("").batch,
        "{duplicates}"
    );
    for r in &mut relays {
        kill9(r);
    }
    let _ = ids(&pool).await;
}
