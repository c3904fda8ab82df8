//! The global order is safe by construction against transactions that
//! commit out of order: many writers, some holding their transaction open on
//! purpose and some rolling back, while subscribers read the log live. Every
//! subscriber must end with every committed event exactly once, none of a
//! rolled-back transaction, all in the same order. A third of the appends go
//! through the store's group commit, batched with each other.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use eventstore::conformance::{event, stream};
use eventstore::{
    subscribe, AppendRequest, EventStore, ExpectedVersion, PgEventStore, StreamId,
    SubscriptionOptions,
};
use futures::StreamExt;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const WRITERS: usize = 24;
const APPENDS_PER_WRITER: usize = 30;
const SUBSCRIBERS: usize = 3;

/// A tiny deterministic generator, so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn subscribers_never_skip_a_late_commit(_: PgPoolOptions, connect: PgConnectOptions) {
    // Our own pool: the test harness's caps its connections below what the
    // writers need.
    let pool = PgPoolOptions::new()
        .max_connections(WRITERS as u32 + SUBSCRIBERS as u32 + 8)
        .connect_with(connect)
        .await
        .unwrap();
    let store = PgEventStore::new(pool.clone());
    let streams: Arc<Vec<StreamId>> = Arc::new((0..8).map(|_| stream("order")).collect());

    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let dyn_store: Arc<dyn EventStore> = Arc::new(store.clone());
            let options = SubscriptionOptions {
                batch_size: 3 + i * 5,
                idle_poll: Duration::from_millis(50),
            };
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut sub = Box::pin(subscribe(dyn_store, None, options));
                let quiet = Duration::from_secs(3);
                // Reads until the log has been quiet for a while; the writers'
                // total is checked afterwards.
                while let Ok(Some(batch)) = tokio::time::timeout(quiet, sub.next()).await {
                    for e in batch.unwrap() {
                        seen.push((e.position, e.event_id));
                    }
                }
                seen
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let pool = pool.clone();
            let streams = streams.clone();
            tokio::spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1000_0001));
                let mut committed = Vec::new();
                let mut rolled_back = Vec::new();
                for _ in 0..APPENDS_PER_WRITER {
                    let s = streams[rng.below(streams.len() as u64) as usize].clone();
                    let n = 1 + rng.below(3) as usize;
                    let events: Vec<_> = (0..n)
                        .map(|i| event("Wrote", json!({"w": w, "i": i})))
                        .collect();
                    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
                    if rng.below(3) == 0 {
                        // Through the store's group commit, sharing a
                        // transaction with whatever else waits.
                        store
                            .append(AppendRequest::single(s, ExpectedVersion::Any, events))
                            .await
                            .unwrap();
                        committed.extend(ids);
                        continue;
                    }
                    let mut tx = pool.begin().await.unwrap();
                    store
                        .append_in(
                            &mut tx,
                            AppendRequest::single(s, ExpectedVersion::Any, events),
                        )
                        .await
                        .unwrap();
                    match rng.below(10) {
                        // Hold the transaction open so that later ones commit first.
                        0..=2 => {
                            tokio::time::sleep(Duration::from_millis(rng.below(80))).await;
                            tx.commit().await.unwrap();
                            committed.extend(ids);
                        }
                        3 => {
                            tokio::time::sleep(Duration::from_millis(rng.below(30))).await;
                            tx.rollback().await.unwrap();
                            rolled_back.extend(ids);
                        }
                        _ => {
                            tx.commit().await.unwrap();
                            committed.extend(ids);
                        }
                    }
                    store.appended();
                }
                (committed, rolled_back)
            })
        })
        .collect();

    let mut committed = HashSet::new();
    let mut rolled_back = HashSet::new();
    for w in writers {
        let (c, r) = w.await.unwrap();
        committed.extend(c);
        rolled_back.extend(r);
    }
    assert!(!rolled_back.is_empty() && committed.len() > 500);

    let mut orders = Vec::new();
    for s in subscribers {
        let seen = s.await.unwrap();
        let ids: Vec<Uuid> = seen.iter().map(|(_, id)| *id).collect();
        let unique: HashSet<Uuid> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "an event was delivered twice");
        assert!(
            unique.is_disjoint(&rolled_back),
            "a rolled-back event was delivered"
        );
        let missing = committed.difference(&unique).count();
        assert_eq!(missing, 0, "{missing} committed events were skipped");
        assert_eq!(unique.len(), committed.len());
        for w in seen.windows(2) {
            assert!(w[0].0 < w[1].0, "positions go forward");
        }
        orders.push(ids);
    }
    for o in &orders[1..] {
        assert_eq!(o, &orders[0], "every subscriber sees the same order");
    }
    // A reader starting afterwards agrees too.
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.read_all(cursor, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(last.position);
        all.extend(page.iter().map(|e| e.event_id));
    }
    assert_eq!(all, orders[0]);
    assert!(store.verify(None).await.unwrap().ok);
}
