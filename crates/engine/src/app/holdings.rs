//! The hold caps' view of what customers hold, from the bookings read
//! model.
//!
//! Every new booking asks. One query per booking would put a round trip on
//! the API's pool in front of each one, and under load those queries queue
//! for connections with the flights' lanes, whose commits then wait behind
//! them (measured: a hot flight sold at a quarter of its speed). So the
//! questions that arrive while a query is out are answered together by the
//! next one: the first caller does not wait for company, and a burst costs
//! a round trip or two, whatever its size.

use std::collections::{HashMap, HashSet};
use std::mem;
use std::sync::{Arc, Mutex};

use application::holdings::{Holding, Holdings, Unpaid};
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
