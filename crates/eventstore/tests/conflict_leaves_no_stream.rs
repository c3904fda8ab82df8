//! A conflicting append on PostgreSQL leaves nothing behind, not even the
//! row of a new stream it named before the conflicting one. The crash test
//! found such an empty `booking-…` stream (version 0, no events) after a
//! lane's batch conflicted on the seats or a discount code: the batch
//! append commits its other appends, so the row outlived the conflict.

use eventstore::conformance::{event, stream};
use eventstore::{AppendRequest, EventStore, ExpectedVersion, PgEventStore, StreamAppend};
use serde_json::json;
use sqlx::PgPool;

async fn rows(pool: &PgPool, id: &eventstore::StreamId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM es_streams WHERE stream_id = $1")
        .bind(id.to_string())
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn a_conflict_leaves_no_row_for_the_new_streams_it_named(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let (new, taken) = (stream("booking"), stream("seats"));
    store
        .append(AppendRequest::single(
            taken.clone(),
            ExpectedVersion::NO_STREAM,
            vec![event("SeatsHeld", json!({}))],
        ))
        .await
        .unwrap();
    let request = || AppendRequest {
        streams: vec![
            StreamAppend {
                stream: new.clone(),
                expected: ExpectedVersion::NO_STREAM,
                events: vec![event("BookingCreated", json!({}))],
            },
            // At 1, not 0: a conflict.
            StreamAppend {
                stream: taken.clone(),
                expected: ExpectedVersion::NO_STREAM,
                events: vec![event("SeatsHeld", json!({}))],
            },
        ],
        commands: vec![],
    };
    let err = store.append(request()).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(rows(&pool, &new).await, 0, "the new stream's row is gone");

    // In a caller's transaction that commits anyway (as a batch of
    // appends does for the others).
    let mut tx = pool.begin().await.unwrap();
    let err = store.append_in(&mut tx, request()).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    tx.commit().await.unwrap();
    assert_eq!(rows(&pool, &new).await, 0, "the new stream's row is gone");
    assert_eq!(store.stream_version(&taken).await.unwrap(), 1);
}
