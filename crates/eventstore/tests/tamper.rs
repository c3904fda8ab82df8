//! Tamper evidence: altering, removing or reordering stored events is found
//! by `verify`, which names the first bad event.

use eventstore::conformance::{event, stream};
use eventstore::{
    AppendRequest, EventStore, ExpectedVersion, MemoryEventStore, PgEventStore, StreamId,
};
use serde_json::json;
use sqlx::PgPool;

async fn three_events(store: &dyn EventStore) -> (StreamId, StreamId) {
    let (a, b) = (stream("audit"), stream("audit"));
    for s in [&a, &b] {
        let events = (1..=3)
            .map(|i| event("Paid", json!({"amount": format!("{i}0.00")})))
            .collect();
        store
            .append(AppendRequest::single(
                s.clone(),
                ExpectedVersion::NO_STREAM,
                events,
            ))
            .await
            .unwrap();
    }
    (a, b)
}

#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn an_altered_event_is_named(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let (a, b) = three_events(&store).await;
    assert!(store.verify(None).await.unwrap().ok);
    sqlx::query(
        "UPDATE es_events SET data = '{\"amount\": \"0.01\"}' WHERE stream_id = $1 AND version = 2",
    )
    .bind(a.as_str())
    .execute(&pool)
    .await
    .unwrap();
    let report = store.verify(None).await.unwrap();
    assert!(!report.ok);
    let bad = report.first_bad.unwrap();
    assert_eq!((bad.stream_id.as_str(), bad.version), (a.as_str(), 2));
    assert!(bad.reason.contains("altered"), "{}", bad.reason);
    assert_eq!(report.events_checked, 6);
    // The untouched stream still verifies on its own.
    assert!(store.verify(Some(&b)).await.unwrap().ok);
}

#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn altered_metadata_or_time_is_found(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let (a, _) = three_events(&store).await;
    sqlx::query("UPDATE es_events SET metadata = jsonb_set(metadata, '{actor,id}', '\"mallory\"') WHERE stream_id = $1 AND version = 1")
        .bind(a.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let bad = store.verify(Some(&a)).await.unwrap().first_bad.unwrap();
    assert_eq!(bad.version, 1);

    let (c, _) = three_events(&store).await;
    sqlx::query("UPDATE es_events SET recorded_at = recorded_at - interval '1 day' WHERE stream_id = $1 AND version = 3")
        .bind(c.as_str())
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        store
            .verify(Some(&c))
            .await
            .unwrap()
            .first_bad
            .unwrap()
            .version,
        3
    );
}

/// Verify hashes what PostgreSQL hands back (its key order, its spacing,
/// numbers as `numeric` spells them): an untouched payload of awkward
/// values verifies, and so does one rewritten with the same content in
/// another order; a key slipped into the metadata, which reading it as
/// metadata would ignore, is found.
#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn what_is_hashed_is_the_stored_content_however_it_is_spelled(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let s = stream("audit");
    let awkward = json!({
        "zz": [1.5, 1e30, -0.25, 18446744073709551615u64, -9223372036854775807i64, null, true],
        "a": {"quote \"é\" \n\t\u{1}": "🚀 \\ /", "": {}},
        "amount": "10.00",
    });
    store
        .append(AppendRequest::single(
            s.clone(),
            ExpectedVersion::NO_STREAM,
            vec![
                event("Paid", awkward),
                event("Paid", json!({"amount": "1"})),
            ],
        ))
        .await
        .unwrap();
    assert!(store.verify(Some(&s)).await.unwrap().ok);

    sqlx::query(
        "UPDATE es_events SET data = '{\"amount\":\"1\"}'::jsonb, \
         metadata = (SELECT jsonb_object_agg(key, value) FROM \
                     (SELECT * FROM jsonb_each(metadata) ORDER BY key DESC) m) \
         WHERE stream_id = $1 AND version = 2",
    )
    .bind(s.as_str())
    .execute(&pool)
    .await
    .unwrap();
    assert!(store.verify(Some(&s)).await.unwrap().ok);

    sqlx::query(
        "UPDATE es_events SET metadata = metadata || '{\"approved_by\": \"mallory\"}' \
         WHERE stream_id = $1 AND version = 2",
    )
    .bind(s.as_str())
    .execute(&pool)
    .await
    .unwrap();
    let bad = store.verify(None).await.unwrap().first_bad.unwrap();
    assert_eq!((bad.stream_id.as_str(), bad.version), (s.as_str(), 2));
    assert!(bad.reason.contains("altered"), "{}", bad.reason);
}

#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn a_removed_event_is_found(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let (a, _) = three_events(&store).await;
    sqlx::query("DELETE FROM es_events WHERE stream_id = $1 AND version = 2")
        .bind(a.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let bad = store.verify(None).await.unwrap().first_bad.unwrap();
    assert_eq!((bad.stream_id.as_str(), bad.version), (a.as_str(), 3));

    // Removing the newest event leaves a consistent chain, but the stream
    // head remembers it.
    let (c, _) = three_events(&store).await;
    sqlx::query("DELETE FROM es_events WHERE stream_id = $1 AND version = 3")
        .bind(c.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let bad = store.verify(Some(&c)).await.unwrap().first_bad.unwrap();
    assert_eq!((bad.stream_id.as_str(), bad.version), (c.as_str(), 3));
}

#[sqlx::test(migrator = "eventstore::postgres::MIGRATOR")]
async fn malformed_stored_data_is_an_error_not_a_panic(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let (a, _) = three_events(&store).await;
    sqlx::query("UPDATE es_events SET metadata = '{\"nonsense\": true}' WHERE stream_id = $1 AND version = 1")
        .bind(a.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let err = store.read_stream(&a, 1, None).await.unwrap_err();
    assert!(
        matches!(err, eventstore::StoreError::Corrupt { version: 1, .. }),
        "{err:?}"
    );
    let report = store.verify(Some(&a)).await.unwrap();
    assert_eq!(report.first_bad.unwrap().version, 1);
}

#[tokio::test]
async fn the_memory_store_finds_tampering_too() {
    let store = MemoryEventStore::new();
    let (a, _) = three_events(&store).await;
    store.tamper(&a, 2, |e| e.data = json!({"amount": "0.01"}));
    let bad = store.verify(None).await.unwrap().first_bad.unwrap();
    assert_eq!((bad.stream_id.as_str(), bad.version), (a.as_str(), 2));
}
