//! The hold caps' view of what customers hold.
//!
//! [`LogHoldings`] keeps it in memory by following the log (what the
//! engine uses); [`ReadModelHoldings`] asks the bookings read model, and
//! answers until the index is loaded.
//!
//! Every new booking asks. One query per booking would put a round trip on
//! the API's pool in front of each one, and under load those queries queue
//! for connections with the flights' lanes, whose commits then wait behind
//! them (measured: a hot flight sold at a quarter of its speed). So the
//! questions that arrive while a query is out are answered together by the
//! next one: the first caller does not wait for company, and a burst costs
//! a round trip or two, whatever its size.

use std::collections::{HashMap, HashSet, VecDeque};
use std::mem;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use application::holdings::{Holding, Holdings, Unpaid};
use chrono::{DateTime, Utc};
use eventstore::{EventStore, Position, RecordedEvent};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most questions one query answers.
const BATCH: usize = 256;

/// The bookings read model, asked in batches.
#[derive(Clone)]
pub struct ReadModelHoldings {
    pool: PgPool,
    queue: Arc<Mutex<Queue>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Question>,
    /// Whether a task is answering; it takes whatever waits until nothing
    /// does.
    answering: bool,
}

struct Question {
    customer: Uuid,
    ours: Vec<Uuid>,
    answer: oneshot::Sender<Result<Holding, String>>,
}

impl ReadModelHoldings {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queue: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers batches until none waits.
    async fn answer(self) {
        loop {
            let batch = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    queue.answering = false;
                    return;
                }
                let take = queue.waiting.len().min(BATCH);
                queue.waiting.drain(..take).collect::<Vec<_>>()
            };
            let customers: Vec<Uuid> = batch.iter().map(|q| q.customer).collect();
            let ours: Vec<Uuid> = batch.iter().flat_map(|q| q.ours.iter().copied()).collect();
            match projections::model::bookings::unpaid_of(&self.pool, &customers, &ours).await {
                Ok((unpaid, seen)) => {
                    let unpaid: HashMap<Uuid, Unpaid> = unpaid
                        .into_iter()
                        .map(|(customer, bookings, seats)| {
                            let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
                            (
                                customer,
                                Unpaid {
                                    bookings: count(bookings),
                                    seats: count(seats),
                                },
                            )
                        })
                        .collect();
                    let seen: HashSet<Uuid> = seen.into_iter().collect();
                    for q in batch {
                        let holding = Holding {
                            unpaid: unpaid.get(&q.customer).copied().unwrap_or_default(),
                            seen: q.ours.into_iter().filter(|b| seen.contains(b)).collect(),
                        };
                        let _ = q.answer.send(Ok(holding));
                    }
                }
                Err(e) => {
                    let e = format!("the bookings read model: {e}");
                    for q in batch {
                        let _ = q.answer.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Holdings for ReadModelHoldings {
    async fn unpaid(&self, customer: Uuid, ours: &[Uuid]) -> Result<Holding, BoxError> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.waiting.push(Question {
                customer,
                ours: ours.to_vec(),
                answer,
            });
            !mem::replace(&mut queue.answering, true)
        };
        if start {
            tokio::spawn(self.clone().answer());
        }
        match answered.await {
            Ok(answer) => answer.map_err(Into::into),
            // The answering task ended without a word: only when the
            // runtime shuts down.
            Err(_) => Err("the holdings query was dropped".into()),
        }
    }
}

/// How long a booking id stays known after its creation was seen: past the
/// ledger's window (a minute) with room for the log's lag.
const SEEN_FOR: Duration = Duration::from_secs(180);

/// The unpaid holdings in memory, kept by following the log: the caps'
/// question costs no round trip, so a hot flight's lane sells at full
/// speed with the caps on. Until the index is loaded (from the bookings
/// read model and its checkpoint, then the log after it), the read model
/// answers.
#[derive(Clone)]
pub struct LogHoldings {
    index: Arc<Mutex<Option<Index>>>,
    fallback: ReadModelHoldings,
}

/// A hold: its seats, until when.
#[derive(Debug, Clone, Copy)]
struct Held {
    seats: u32,
    until: DateTime<Utc>,
}

#[derive(Default)]
struct Index {
    /// customer -> unpaid booking -> hold.
    unpaid: HashMap<Uuid, HashMap<Uuid, Held>>,
    /// unpaid booking -> customer.
    owner: HashMap<Uuid, Uuid>,
    /// Bookings whose creation was seen lately, for the ledger's question
    /// "has the log shown this one yet?".
    seen: HashSet<Uuid>,
    seen_order: VecDeque<(Instant, Uuid)>,
}

impl Index {
    fn created(&mut self, booking: Uuid, customer: Uuid, held: Held) {
        self.unpaid
            .entry(customer)
            .or_default()
            .insert(booking, held);
        self.owner.insert(booking, customer);
        if self.seen.insert(booking) {
            self.seen_order.push_back((Instant::now(), booking));
        }
    }

    fn settled(&mut self, booking: Uuid) {
        if let Some(customer) = self.owner.remove(&booking) {
            if let Some(held) = self.unpaid.get_mut(&customer) {
                held.remove(&booking);
                if held.is_empty() {
                    self.unpaid.remove(&customer);
                }
            }
        }
    }

    fn apply(&mut self, e: &RecordedEvent) {
        let Some(booking) = e
            .stream_id
            .as_str()
            .strip_prefix("booking-")
            .and_then(|id| id.parse::<Uuid>().ok())
        else {
            return;
        };
        match e.event_type.as_str() {
            "BookingCreated" => {
                let customer = e.data["customer_id"].as_str().and_then(|c| c.parse().ok());
                let until = e.data["hold_expires_at"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
                let seats = e.data["passengers"].as_array().map_or(0, Vec::len);
                if let (Some(customer), Some(until)) = (customer, until) {
                    let held = Held {
                        seats: u32::try_from(seats).unwrap_or(u32::MAX),
                        until: until.with_timezone(&Utc),
                    };
                    self.created(booking, customer, held);
                }
            }
            // Paid, failed, expired or cancelled: no longer held unpaid.
            "BookingConfirmed"
            | "TicketsIssued"
            | "BookingPaymentFailed"
            | "BookingExpired"
            | "BookingFailed"
            | "BookingCancelled" => self.settled(booking),
            _ => {}
        }
    }

    /// Forgets lapsed holds and old sightings.
    fn tidy(&mut self, now: DateTime<Utc>) {
        let lapsed: Vec<Uuid> = self
            .unpaid
            .values()
            .flat_map(|held| held.iter().filter(|(_, h)| h.until <= now).map(|(b, _)| *b))
            .collect();
        for b in lapsed {
            self.settled(b);
        }
        while let Some(&(at, b)) = self.seen_order.front() {
            if at.elapsed() < SEEN_FOR {
                break;
            }
            self.seen_order.pop_front();
            self.seen.remove(&b);
        }
    }

    fn holding(&self, customer: Uuid, ours: &[Uuid], now: DateTime<Utc>) -> Holding {
        let mut unpaid = Unpaid::default();
        for h in self
            .unpaid
            .get(&customer)
            .into_iter()
            .flat_map(|held| held.values())
            .filter(|h| h.until > now)
        {
            unpaid.bookings += 1;
            unpaid.seats = unpaid.seats.saturating_add(h.seats);
        }
        Holding {
            unpaid,
            seen: ours
                .iter()
                .copied()
                .filter(|b| self.seen.contains(b))
                .collect(),
        }
    }
}

impl LogHoldings {
    pub fn new(pool: PgPool) -> Self {
        Self {
            index: Arc::default(),
            fallback: ReadModelHoldings::new(pool),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Index>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the index, then follows the log until `stop` resolves.
    pub async fn follow(
        self,
        pool: PgPool,
        store: Arc<dyn EventStore>,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        let mut stop = std::pin::pin!(stop);
        let work = async {
            let mut after = loop {
                match self.load(&pool).await {
                    Ok(after) => break after,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot load the holdings index yet");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            let mut wake = store.wake();
            let mut tidied = Instant::now();
            loop {
                match store.read_all_in(Some(after), 2000, &["booking"]).await {
                    Ok(page) => {
                        if let Some((position, _)) = page.scanned_to {
                            let mut index = self.lock();
                            if let Some(index) = index.as_mut() {
                                for e in &page.events {
                                    index.apply(e);
                                }
                            }
                            after = position;
                        }
                        if page.scanned == 0 {
                            let _ =
                                tokio::time::timeout(Duration::from_millis(100), wake.changed())
                                    .await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the holdings index cannot read the log");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
                if tidied.elapsed() > Duration::from_secs(5) {
                    if let Some(index) = self.lock().as_mut() {
                        index.tidy(Utc::now());
                    }
                    tidied = Instant::now();
                }
            }
        };
        tokio::select! {
            () = &mut stop => {}
            () = work => {}
        }
    }

    /// The unpaid bookings as the bookings read model shows them, and the
    /// position it shows them at, in one snapshot.
    async fn load(&self, pool: &PgPool) -> Result<Position, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let at: Option<(i64, i64)> =
            sqlx::query_as("SELECT tx, seq FROM projection_checkpoints WHERE name = 'bookings'")
                .fetch_optional(&mut *tx)
                .await?;
        let rows = projections::model::bookings::all_unpaid(&mut tx).await?;
        tx.commit().await?;
        let mut index = Index::default();
        for (booking, customer, seats, until) in rows {
            let held = Held {
                seats: u32::try_from(seats).unwrap_or(u32::MAX),
                until,
            };
            index.created(booking, customer, held);
        }
        *self.lock() = Some(index);
        let (tx, seq) = at.unwrap_or((0, 0));
        Ok(Position::new(tx as u64, seq as u64))
    }
}

#[async_trait::async_trait]
impl Holdings for LogHoldings {
    async fn unpaid(&self, customer: Uuid, ours: &[Uuid]) -> Result<Holding, BoxError> {
        let known = self
            .lock()
            .as_ref()
            .map(|index| index.holding(customer, ours, Utc::now()));
        match known {
            Some(holding) => Ok(holding),
            None => self.fallback.unpaid(customer, ours).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventstore::{Actor, Metadata, StreamId};
    use serde_json::json;

    fn event(booking: Uuid, event_type: &str, data: serde_json::Value) -> RecordedEvent {
        RecordedEvent {
            position: Position::new(1, 1),
            stream_id: StreamId::new("booking", booking),
            version: 1,
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            data,
            metadata: Metadata {
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                command_id: None,
                actor: Actor::system("test"),
            },
            recorded_at: Utc::now(),
            prev_hash: vec![],
            hash: vec![],
        }
    }

    fn created(booking: Uuid, customer: Uuid, seats: usize, until: DateTime<Utc>) -> RecordedEvent {
        let passengers: Vec<_> = (0..seats).map(|_| json!({"seat": "1A"})).collect();
        event(
            booking,
            "BookingCreated",
            json!({"customer_id": customer, "passengers": passengers, "hold_expires_at": until}),
        )
    }

    #[test]
    fn it_should_count_unpaid_holds_until_paid_cancelled_or_lapsed() {
        let now = Utc::now();
        let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let (b1, b2, b3, b4) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let mut index = Index::default();
        index.apply(&created(b1, ada, 2, now + chrono::Duration::minutes(10)));
        index.apply(&created(b2, ada, 3, now + chrono::Duration::minutes(10)));
        index.apply(&created(b3, ada, 1, now - chrono::Duration::seconds(1)));
        index.apply(&created(b4, bob, 9, now + chrono::Duration::minutes(10)));
        let h = index.holding(ada, &[b1, Uuid::now_v7()], now);
        assert_eq!(
            (h.unpaid.bookings, h.unpaid.seats),
            (2, 5),
            "the lapsed hold does not count"
        );
        assert_eq!(h.seen, vec![b1]);

        index.apply(&event(b1, "PaymentSubmitted", json!({})));
        assert_eq!(
            index.holding(ada, &[], now).unpaid.bookings,
            2,
            "awaiting payment still counts"
        );
        index.apply(&event(b1, "BookingConfirmed", json!({})));
        index.apply(&event(b2, "BookingCancelled", json!({})));
        let h = index.holding(ada, &[b1], now);
        assert_eq!(h.unpaid, Unpaid::default());
        assert_eq!(h.seen, vec![b1], "a paid booking is still known as seen");
        assert_eq!(index.holding(bob, &[], now).unpaid.seats, 9);

        index.tidy(now);
        assert!(!index.owner.contains_key(&b3), "lapsed holds are forgotten");
    }
}
