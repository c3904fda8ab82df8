//! The Kafka relay: follows the global log from its own checkpoint and
//! publishes every event to its category's topic, for the systems
//! downstream (loyalty, revenue accounting, notifications, a data lake).
//!
//! - **Topics**: `user.events`, `flight.events`, `seat.events`,
//!   `booking.events`, `billing.events` (payments and discount codes), each
//!   behind an optional
//!   prefix for shared clusters; created at start through the admin API
//!   ([`Relay::create_topics`]), never left to auto-creation.
//! - **Records**: key = stream id, value = the JSON envelope of the
//!   contract ([`envelope`]), event id and type also as headers. Personal
//!   data goes out only in its sealed form: the relay publishes what the
//!   store holds and holds no key.
//! - **At least once, in order per stream**: the producer is idempotent
//!   (acks from all replicas, retries without reordering or duplicates
//!   within a session) and partitions by key with murmur2 (Java clients
//!   agree on the partition); messages never time out, so a broker that is
//!   down only makes the relay wait, the log being the buffer. The
//!   checkpoint moves only past events the broker acknowledged; a relay
//!   killed mid-batch sends that batch again (consumers dedupe by
//!   `event_id`).
//! - **One at a time**: a relay publishes only while it holds a PostgreSQL
//!   advisory lock on a connection of its own. Another process's relay
//!   waits on the lock and takes over when the holder dies (its
//!   connection, and so its lock, go with it).

mod tail;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventstore::{EventStore, Position, RecordedEvent, StoreError};
use futures::future::join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::{json, Value};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

pub use tail::tail;

/// The relay's table.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The topic of each stream category, before the prefix.
pub fn topic_of(category: &str) -> Option<&'static str> {
    match category {
        "user" => Some("user.events"),
        "flight" => Some("flight.events"),
        "seats" => Some("seat.events"),
        "booking" => Some("booking.events"),
        "payment" | "discount" => Some("billing.events"),
        _ => None,
    }
}

/// Every topic the relay publishes to, before the prefix.
pub const TOPICS: [&str; 5] = [
    "user.events",
    "flight.events",
    "seat.events",
    "booking.events",
    "billing.events",
];

/// The contract's envelope of one event.
pub fn envelope(e: &RecordedEvent) -> Value {
    json!({
        "event_id": e.event_id,
        "type": e.event_type,
        "version": e.schema_version,
        "stream_id": e.stream_id.as_str(),
        "stream_version": e.version,
        "position": e.position.to_string(),
        "recorded_at": e.recorded_at,
        "correlation_id": e.metadata.correlation_id,
        "causation_id": e.metadata.causation_id,
        "data": e.data,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("creating topic {topic}: {code}")]
    Topic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `KAFKA_BROKERS`: `host:port,...`.
    pub brokers: String,
    pub partitions: i32,
    pub replication: i32,
    /// Put before every topic name (e.g. `prod.`), for shared clusters.
    pub topic_prefix: String,
    /// Events read and published per round.
    pub batch: usize,
    /// The checkpoint's (and the lock's) name: relays of one name publish
    /// one at a time.
    pub name: String,
}

impl RelayConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            partitions: 6,
            replication: 1,
            topic_prefix: String::new(),
            batch: 5_000,
            name: "kafka".into(),
        }
    }

    pub fn topic(&self, category: &str) -> Option<String> {
        topic_of(category).map(|t| format!("{}{t}", self.topic_prefix))
    }
}

/// Whether the relay can reach its broker: `/health/ready` of the relay
/// role answers from it.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
}

/// The relay of one process.
pub struct Relay {
    pool: PgPool,
    store: Arc<dyn EventStore>,
    config: RelayConfig,
    producer: FutureProducer,
    readiness: Readiness,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        store: Arc<dyn EventStore>,
        config: RelayConfig,
    ) -> Result<Self, RelayError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Never give up on a message: a broker that is down makes the
            // relay wait; the log keeps what it has not published yet.
            .set("message.timeout.ms", "0")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "200000")
            .create()?;
        Ok(Self {
            pool,
            store,
            config,
            producer,
            readiness: Readiness::default(),
        })
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Creates the topics that do not exist yet.
    pub async fn create_topics(&self) -> Result<(), RelayError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .create()?;
        let names: Vec<String> = TOPICS
            .iter()
            .map(|t| format!("{}{t}", self.config.topic_prefix))
            .collect();
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| {
                NewTopic::new(
                    n,
                    self.config.partitions,
                    TopicReplication::Fixed(self.config.replication),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(&topics, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(RelayError::Topic { topic, code }),
            }
        }
        Ok(())
    }

    /// Creates the topics (retrying while the broker is away), then
    /// publishes whenever this process holds the lease, until `shutdown`.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        let this = Arc::new(self);
        let watcher = tokio::spawn(watch_broker(this.clone()));
        let work = async {
            let mut backoff = Duration::from_millis(200);
            while let Err(e) = this.create_topics().await {
                tracing::warn!(error = %e, "cannot create the relay's topics yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            loop {
                match this.lease_and_publish().await {
                    Ok(()) => tokio::time::sleep(Duration::from_secs(1)).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "the relay stopped publishing; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        };
        tokio::select! {
            () = &mut shutdown => {}
            () = work => {}
        }
        watcher.abort();
        // What was handed to the producer gets a moment to be acknowledged;
        // whatever is not is sent again by the next relay.
        let producer = this.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    }

    /// Publishes while holding the advisory lock; returns when another
    /// process holds it (to try again later) or the lock's connection dies.
    async fn lease_and_publish(&self) -> Result<(), RelayError> {
        let mut lock = self.pool.acquire().await?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(format!("booking-relay:{}", self.config.name))
            .fetch_one(&mut *lock)
            .await?;
        if !held {
            return Ok(());
        }
        // The lock lives as long as this connection: keep it out of the
        // pool, so that dropping it (or dying) releases the lock.
        let mut lock = PoolConnection::<Postgres>::detach(lock);
        tracing::info!(name = %self.config.name, "the relay holds the lease");
        let result = self.publish(&mut lock).await;
        drop(lock);
        result
    }

    async fn publish(&self, lock: &mut sqlx::PgConnection) -> Result<(), RelayError> {
        let mut after = self.checkpoint().await?;
        let mut wake = self.store.wake();
        let mut lag_at = Instant::now() - Duration::from_secs(10);
        loop {
            // Still ours? A dead connection means another relay may have
            // taken over: stop before publishing anything more.
            sqlx::query("SELECT 1").execute(&mut *lock).await?;
            if lag_at.elapsed() >= Duration::from_secs(1) {
                self.export_lag(after).await;
                lag_at = Instant::now();
            }
            let events = self.store.read_all(after, self.config.batch).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                let _ = tokio::time::timeout(Duration::from_millis(250), wake.changed()).await;
                continue;
            };
            let acked = self.send(&events).await;
            if let Some(position) = acked {
                self.save(position).await?;
                after = Some(position);
            }
            if acked != Some(last) {
                // Something was refused: the rest goes again from the
                // checkpoint after a pause.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Hands `events` to the producer and waits for the broker; the
    /// position of the last event of the acknowledged prefix.
    async fn send(&self, events: &[RecordedEvent]) -> Option<Position> {
        let mut deliveries = Vec::with_capacity(events.len());
        for e in events {
            let Some(topic) = self.config.topic(e.stream_id.category()) else {
                deliveries.push(None);
                continue;
            };
            let payload = envelope(e).to_string();
            let event_id = e.event_id.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "event_id",
                    value: Some(event_id.as_bytes()),
                })
                .insert(Header {
                    key: "type",
                    value: Some(e.event_type.as_bytes()),
                });
            let mut record = FutureRecord::to(&topic)
                .key(e.stream_id.as_str())
                .payload(&payload)
                .headers(headers);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(Some(delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // The local queue is full: let the broker catch up.
                        record = r;
                        self.producer.poll(Duration::from_millis(50));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        tracing::warn!(error = %e, "cannot hand an event to the producer");
                        deliveries.push(None);
                        return self.acked_prefix(events, deliveries, true).await;
                    }
                }
            }
        }
        self.acked_prefix(events, deliveries, false).await
    }

    /// Waits for every delivery; the last position before the first
    /// failure (`cut`: the last one was never handed over).
    async fn acked_prefix(
        &self,
        events: &[RecordedEvent],
        deliveries: Vec<Option<rdkafka::producer::DeliveryFuture>>,
        cut: bool,
    ) -> Option<Position> {
        let n = deliveries.len();
        let handed: Vec<bool> = deliveries.iter().map(Option::is_some).collect();
        let results = join_all(deliveries.into_iter().map(|d| async move {
            match d {
                Some(d) => matches!(d.await, Ok(Ok(_))),
                None => true,
            }
        }))
        .await;
        let mut acked = None;
        let mut published = 0u64;
        for (i, ok) in results.into_iter().enumerate() {
            let failed = !ok || (cut && i == n - 1);
            if failed {
                tracing::warn!(event = %events[i].event_id, "the broker did not acknowledge an event");
                break;
            }
            if handed[i] {
                published += 1;
            }
            acked = Some(events[i].position);
        }
        metrics::counter!("relay_published_total").increment(published);
        self.readiness.set(acked.is_some() || n == 0);
        acked
    }

    async fn checkpoint(&self) -> Result<Option<Position>, RelayError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT tx, seq FROM relay_checkpoints WHERE name = $1")
                .bind(&self.config.name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(tx, seq)| Position::new(tx as u64, seq as u64)))
    }

    async fn save(&self, p: Position) -> Result<(), RelayError> {
        sqlx::query(
            "INSERT INTO relay_checkpoints (name, tx, seq) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET tx = $2, seq = $3, updated_at = now()",
        )
        .bind(&self.config.name)
        .bind(p.tx as i64)
        .bind(p.seq as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `relay_lag_events` and `relay_lag_seconds`: what is in the log and
    /// not yet published, and how old the oldest of it is.
    async fn export_lag(&self, after: Option<Position>) {
        let after = after.unwrap_or_default();
        let row: Result<(i64, Option<f64>), _> = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(recorded_at))::float8 FROM es_events \
             WHERE (tx, position) > ($1::text::xid8, $2) \
               AND tx < pg_snapshot_xmin(pg_current_snapshot())",
        )
        .bind(after.tx as i64)
        .bind(after.seq as i64)
        .fetch_one(&self.pool)
        .await;
        if let Ok((events, seconds)) = row {
            metrics::gauge!("relay_lag_events").set(events as f64);
            metrics::gauge!("relay_lag_seconds").set(seconds.unwrap_or(0.0));
        }
    }
}

/// Asks the broker for its metadata every few seconds: the relay is ready
/// while it answers.
async fn watch_broker(relay: Arc<Relay>) {
    loop {
        let producer = relay.producer.clone();
        let reachable = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(2))
                .is_ok()
        })
        .await
        .unwrap_or(false);
        relay.readiness.set(reachable);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
