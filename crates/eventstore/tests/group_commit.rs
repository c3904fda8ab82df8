//! Group commit: concurrent appends share transactions, and each keeps its
//! own outcome. The conformance suite runs every case through the batcher
//! too (a `PgEventStore` always appends through it); this proves the batches
//! really form under load and that a failure inside one is its own.

use std::sync::Arc;

use eventstore::conformance::{self, event, stream};
use eventstore::{AppendRequest, EventStore, ExpectedVersion, PgEventStore, StoreError};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn concurrent_appends_share_transactions_and_keep_their_outcomes(pool: PgPool) {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    conformance::isolates_each_of_many_concurrent_appends(store.clone()).await;

    // The appends above were merged: some transaction holds several streams.
    let most: i64 = sqlx::query_scalar(
        "SELECT max(n) FROM (SELECT count(DISTINCT stream_id) AS n FROM es_events GROUP BY tx) t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(most > 1, "no two appends ever shared a transaction");
}

#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn an_append_the_database_refuses_fails_alone_in_its_batch(pool: PgPool) {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let taken = event("Wrote", json!({}));
    let first = stream("dup");
    store
        .append(AppendRequest::single(
            first,
            ExpectedVersion::Exact(0),
            vec![taken.clone()],
        ))
        .await
        .unwrap();
    // Rounds of 64 appends at once, one of each round reusing a stored event
    // id (a unique violation inside PostgreSQL, which aborts the statement).
    for _ in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = store.clone();
            let e = if i == 31 {
                taken.clone()
            } else {
                event("Wrote", json!({ "i": i }))
            };
            let s = stream("many");
            tasks.push(tokio::spawn(async move {
                let r = store
                    .append(AppendRequest::single(
                        s.clone(),
                        ExpectedVersion::Any,
                        vec![e],
                    ))
                    .await;
                (i, s, r)
            }));
        }
        for t in tasks {
            let (i, s, r) = t.await.unwrap();
            if i == 31 {
                assert!(matches!(r, Err(StoreError::InvalidAppend(_))), "{r:?}");
                assert_eq!(store.stream_version(&s).await.unwrap(), 0);
            } else {
                assert_eq!(r.unwrap().version_of(&s), Some(1));
            }
        }
    }
    let batched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT tx FROM es_events GROUP BY tx HAVING count(*) > 1) t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(batched > 0, "the appends never shared a transaction");
    assert!(store.verify(None).await.unwrap().ok);
}
