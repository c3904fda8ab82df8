//! The behaviour every backend must show. Each backend's tests call every
//! case with a fresh, empty store (see `tests/conformance.rs`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use crate::{
    subscribe, subscribe_in, Actor, AppendRequest, CommandRecord, EventStore, ExpectedVersion,
    Metadata, NewEvent, StoreError, StreamAppend, StreamId, SubscriptionOptions,
};

/// Names of every case, for backends that generate one test per case.
pub const CASES: &[&str] = &[
    "appends_and_reads_a_stream",
    "refuses_a_wrong_expected_version",
    "appends_to_several_streams_atomically",
    "an_empty_append_guards_a_stream",
    "records_a_command_once",
    "pages_through_the_global_log_in_order",
    "pages_through_some_categories",
    "subscribes_from_the_start_then_live",
    "verifies_an_untouched_log",
    "lets_one_of_many_concurrent_writers_win_each_version",
    "refuses_malformed_requests",
    "isolates_each_of_many_concurrent_appends",
];

/// Runs one case by name.
pub async fn run(case: &str, store: Arc<dyn EventStore>) {
    match case {
        "appends_and_reads_a_stream" => appends_and_reads_a_stream(store).await,
        "refuses_a_wrong_expected_version" => refuses_a_wrong_expected_version(store).await,
        "appends_to_several_streams_atomically" => {
            appends_to_several_streams_atomically(store).await
        }
        "an_empty_append_guards_a_stream" => an_empty_append_guards_a_stream(store).await,
        "records_a_command_once" => records_a_command_once(store).await,
        "pages_through_the_global_log_in_order" => {
            pages_through_the_global_log_in_order(store).await
        }
        "pages_through_some_categories" => pages_through_some_categories(store).await,
        "subscribes_from_the_start_then_live" => subscribes_from_the_start_then_live(store).await,
        "verifies_an_untouched_log" => verifies_an_untouched_log(store).await,
        "lets_one_of_many_concurrent_writers_win_each_version" => {
            lets_one_of_many_concurrent_writers_win_each_version(store).await
        }
        "refuses_malformed_requests" => refuses_malformed_requests(store).await,
        "isolates_each_of_many_concurrent_appends" => {
            isolates_each_of_many_concurrent_appends(store).await
        }
        other => panic!("unknown conformance case {other}"),
    }
}

pub fn stream(category: &str) -> StreamId {
    StreamId::new(category, Uuid::now_v7())
}

pub fn event(event_type: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        data,
        metadata: Metadata {
            correlation_id: Uuid::now_v7(),
            causation_id: Some(Uuid::now_v7()),
            command_id: None,
            actor: Actor::user(Uuid::now_v7(), "admin"),
        },
    }
}

/// Waits until readers of the global log can see `position`. In PostgreSQL
/// an append becomes readable once every transaction that began before it has
/// ended, on the whole server, not only its own.
pub async fn settled(store: &dyn EventStore, position: crate::Position) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.head().await.unwrap() < Some(position) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{position} never became readable"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n).map(|i| event("Ticked", json!({ "n": i }))).collect()
}

async fn appends_and_reads_a_stream(store: Arc<dyn EventStore>) {
    let s = stream("test");
    assert_eq!(store.stream_version(&s).await.unwrap(), 0);
    let first = events(3);
    let r = store
        .append(AppendRequest::single(
            s.clone(),
            ExpectedVersion::NO_STREAM,
            first.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(r.version_of(&s), Some(3));
    let r2 = store
        .append(AppendRequest::single(
            s.clone(),
            ExpectedVersion::Exact(3),
            events(2),
        ))
        .await
        .unwrap();
    assert_eq!(r2.version_of(&s), Some(5));
    assert!(r2.position > r.position);

    let read = store.read_stream(&s, 1, None).await.unwrap();
    assert_eq!(read.len(), 5);
    for (i, e) in read.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1);
        assert_eq!(e.stream_id, s);
    }
    for (stored, sent) in read.iter().zip(&first) {
        assert_eq!(stored.event_id, sent.event_id);
        assert_eq!(stored.event_type, sent.event_type);
        assert_eq!(stored.data, sent.data);
        assert_eq!(stored.metadata, sent.metadata);
    }
    assert_eq!(read[4].position, r2.position);
    let middle = store.read_stream(&s, 2, Some(4)).await.unwrap();
    assert_eq!(
        middle.iter().map(|e| e.version).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), 5);
    assert!(store
        .read_stream(&stream("test"), 1, None)
        .await
        .unwrap()
        .is_empty());
    settled(&*store, r2.position).await;
    assert_eq!(store.head().await.unwrap(), Some(r2.position));
}

async fn refuses_a_wrong_expected_version(store: Arc<dyn EventStore>) {
    let s = stream("test");
    store
        .append(AppendRequest::single(
            s.clone(),
            ExpectedVersion::NO_STREAM,
            events(2),
        ))
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::NO_STREAM,
        ExpectedVersion::Exact(1),
        ExpectedVersion::Exact(3),
    ] {
        let err = store
            .append(AppendRequest::single(s.clone(), expected, events(1)))
            .await
            .unwrap_err();
        match err {
            StoreError::Conflict { stream, actual, .. } => {
                assert_eq!(stream, s);
                assert_eq!(actual, 2);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    let empty = stream("test");
    let err = store
        .append(AppendRequest::single(
            empty.clone(),
            ExpectedVersion::StreamExists,
            events(1),
        ))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(store.stream_version(&s).await.unwrap(), 2);
    assert_eq!(store.stream_version(&empty).await.unwrap(), 0);
    // Any and StreamExists accept the existing stream.
    store
        .append(AppendRequest::single(
            s.clone(),
            ExpectedVersion::Any,
            events(1),
        ))
        .await
        .unwrap();
    store
        .append(AppendRequest::single(
            s.clone(),
            ExpectedVersion::StreamExists,
            events(1),
        ))
        .await
        .unwrap();
    assert_eq!(store.stream_version(&s).await.unwrap(), 4);
}

async fn appends_to_several_streams_atomically(store: Arc<dyn EventStore>) {
    let (a, b) = (stream("booking"), stream("seats"));
    store
        .append(AppendRequest::single(
            b.clone(),
            ExpectedVersion::NO_STREAM,
            events(1),
        ))
        .await
        .unwrap();
    let both = |expected_b| AppendRequest {
        streams: vec![
            StreamAppend {
                stream: a.clone(),
                expected: ExpectedVersion::NO_STREAM,
                events: events(2),
            },
            StreamAppend {
                stream: b.clone(),
                expected: expected_b,
                events: events(3),
            },
        ],
        commands: vec![],
    };
    // b is at 1, not 0: nothing is written to a either.
    let err = store
        .append(both(ExpectedVersion::NO_STREAM))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(store.stream_version(&a).await.unwrap(), 0);
    assert_eq!(store.stream_version(&b).await.unwrap(), 1);

    let r = store.append(both(ExpectedVersion::Exact(1))).await.unwrap();
    assert_eq!(r.version_of(&a), Some(2));
    assert_eq!(r.version_of(&b), Some(4));
    // Both streams' events sit together in the global log.
    settled(&*store, r.position).await;
    let all = store.read_all(None, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all.last().unwrap().position, r.position);
}

async fn an_empty_append_guards_a_stream(store: Arc<dyn EventStore>) {
    let (flight, booking) = (stream("flight"), stream("booking"));
    store
        .append(AppendRequest::single(
            flight.clone(),
            ExpectedVersion::NO_STREAM,
            events(1),
        ))
        .await
        .unwrap();
    let guarded = |v| AppendRequest {
        streams: vec![
            StreamAppend {
                stream: flight.clone(),
                expected: ExpectedVersion::Exact(v),
                events: vec![],
            },
            StreamAppend {
                stream: booking.clone(),
                expected: ExpectedVersion::Any,
                events: events(1),
            },
        ],
        commands: vec![],
    };
    assert!(store.append(guarded(0)).await.unwrap_err().is_conflict());
    assert_eq!(store.stream_version(&booking).await.unwrap(), 0);
    let r = store.append(guarded(1)).await.unwrap();
    assert_eq!(r.version_of(&flight), Some(1));
    assert_eq!(r.version_of(&booking), Some(1));
}

async fn records_a_command_once(store: Arc<dyn EventStore>) {
    let s = stream("test");
    let command_id = Uuid::now_v7();
    let record = CommandRecord {
        command_id,
        fingerprint: Some(vec![1, 2, 3]),
        outcome: json!({ "status": 201, "body": { "id": "x" } }),
    };
    assert!(store.find_command(command_id).await.unwrap().is_none());
    let r = store
        .append(
            AppendRequest::single(s.clone(), ExpectedVersion::Any, events(2))
                .with_command(record.clone()),
        )
        .await
        .unwrap();
    let again = store
        .append(
            AppendRequest::single(s.clone(), ExpectedVersion::Any, events(2)).with_command(record),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::DuplicateCommand(id) if id == command_id),
        "{again:?}"
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), 2);
    let found = store.find_command(command_id).await.unwrap().unwrap();
    assert_eq!(
        found.outcome,
        json!({ "status": 201, "body": { "id": "x" } })
    );
    assert_eq!(found.fingerprint.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(found.position, r.position);

    // The same with a single event (a backend may take a faster path).
    let single = CommandRecord {
        command_id: Uuid::now_v7(),
        fingerprint: None,
        outcome: json!({ "status": 200 }),
    };
    let r = store
        .append(
            AppendRequest::single(s.clone(), ExpectedVersion::Exact(2), events(1))
                .with_command(single.clone()),
        )
        .await
        .unwrap();
    assert_eq!(r.version_of(&s), Some(3));
    let again = store
        .append(
            AppendRequest::single(s.clone(), ExpectedVersion::Exact(3), events(1))
                .with_command(single.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::DuplicateCommand(id) if id == single.command_id),
        "{again:?}"
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), 3);
    let found = store
        .find_command(single.command_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.position, found.fingerprint), (r.position, None));
}

async fn pages_through_the_global_log_in_order(store: Arc<dyn EventStore>) {
    let streams: Vec<StreamId> = (0..5).map(|_| stream("test")).collect();
    let mut expected = Vec::new();
    let mut last = crate::Position::START;
    for round in 0..4 {
        for s in &streams {
            let batch = events(round % 3 + 1);
            expected.extend(batch.iter().map(|e| e.event_id));
            last = store
                .append(AppendRequest::single(
                    s.clone(),
                    ExpectedVersion::Any,
                    batch,
                ))
                .await
                .unwrap()
                .position;
        }
    }
    settled(&*store, last).await;
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = store.read_all(cursor, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        for w in page.windows(2) {
            assert!(w[0].position < w[1].position);
        }
        if let Some(c) = cursor {
            assert!(page[0].position > c);
        }
        cursor = page.last().map(|e| e.position);
        seen.extend(page.iter().map(|e| e.event_id));
    }
    assert_eq!(seen, expected, "the log order is the append order here");
    assert_eq!(store.head().await.unwrap(), cursor);
}

async fn pages_through_some_categories(store: Arc<dyn EventStore>) {
    assert_eq!(
        store.read_all_in(None, 10, &["wanted"]).await.unwrap(),
        crate::Page::default(),
        "an empty log has nothing to go past"
    );
    // Interleave a wanted category with two others, some pages holding
    // none of the wanted events at all.
    let mut wanted = Vec::new();
    let mut last = crate::Position::START;
    for round in 0..6 {
        for (category, n) in [("other", 3), ("wanted", round % 2), ("noise", 2)] {
            if n == 0 {
                continue;
            }
            let batch = events(n);
            if category == "wanted" {
                wanted.extend(batch.iter().map(|e| e.event_id));
            }
            last = store
                .append(AppendRequest::single(
                    stream(category),
                    ExpectedVersion::Any,
                    batch,
                ))
                .await
                .unwrap()
                .position;
        }
    }
    settled(&*store, last).await;
    let mut cursor = None;
    let (mut seen, mut scanned) = (Vec::new(), 0);
    loop {
        let page = store.read_all_in(cursor, 4, &["wanted"]).await.unwrap();
        let whole = store.read_all(cursor, 4).await.unwrap();
        // The page goes exactly as far as a plain read of the same size
        // and keeps exactly its wanted events.
        assert_eq!(page.scanned, whole.len());
        assert_eq!(
            page.scanned_to,
            whole.last().map(|e| (e.position, e.recorded_at))
        );
        let kept: Vec<_> = whole
            .into_iter()
            .filter(|e| e.stream_id.category() == "wanted")
            .collect();
        assert_eq!(page.events, kept);
        let Some((to, _)) = page.scanned_to else {
            assert!(page.events.is_empty());
            break;
        };
        cursor = Some(to);
        scanned += page.scanned;
        seen.extend(page.events.iter().map(|e| e.event_id));
    }
    assert_eq!(seen, wanted);
    assert_eq!(scanned, 6 * 5 + 3);
    assert_eq!(cursor, Some(last));

    // A subscription to the category moves past the others too.
    let options = SubscriptionOptions {
        batch_size: 4,
        idle_poll: Duration::from_millis(200),
    };
    let mut sub = Box::pin(subscribe_in(store.clone(), None, &["wanted"], options));
    let (mut got, mut to) = (Vec::new(), None);
    while to != Some(last) {
        let page = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("the subscription reaches the head")
            .unwrap()
            .unwrap();
        to = page.scanned_to.map(|(p, _)| p);
        got.extend(page.events.iter().map(|e| e.event_id));
    }
    assert_eq!(got, wanted);
}

async fn subscribes_from_the_start_then_live(store: Arc<dyn EventStore>) {
    let s = stream("test");
    store
        .append(AppendRequest::single(
            s.clone(),
            ExpectedVersion::Any,
            events(3),
        ))
        .await
        .unwrap();
    let options = SubscriptionOptions {
        batch_size: 2,
        idle_poll: Duration::from_millis(200),
    };
    let mut sub = Box::pin(subscribe(store.clone(), None, options));
    let mut got = Vec::new();
    while got.len() < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("catch-up")
            .unwrap()
            .unwrap();
        got.extend(batch.into_iter().map(|e| e.version));
    }
    let writer = {
        let store = store.clone();
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                store
                    .append(AppendRequest::single(
                        s.clone(),
                        ExpectedVersion::Any,
                        events(1),
                    ))
                    .await
                    .unwrap();
            }
        })
    };
    while got.len() < 7 {
        let batch = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("live events arrive")
            .unwrap()
            .unwrap();
        got.extend(batch.into_iter().map(|e| e.version));
    }
    writer.await.unwrap();
    assert_eq!(got, (1..=7).collect::<Vec<u64>>());
}

async fn verifies_an_untouched_log(store: Arc<dyn EventStore>) {
    let (a, b) = (stream("test"), stream("test"));
    for _ in 0..3 {
        for s in [&a, &b] {
            store
                .append(AppendRequest::single(
                    s.clone(),
                    ExpectedVersion::Any,
                    vec![event(
                        "Nested",
                        json!({"z": 1, "a": {"y": [1, "two", null], "b": true}}),
                    )],
                ))
                .await
                .unwrap();
        }
    }
    let all = store.verify(None).await.unwrap();
    assert!(all.ok, "{all:?}");
    assert_eq!((all.streams_checked, all.events_checked), (2, 6));
    let one = store.verify(Some(&a)).await.unwrap();
    assert!(one.ok);
    assert_eq!((one.streams_checked, one.events_checked), (1, 3));
    let read = store.read_stream(&a, 1, None).await.unwrap();
    assert_eq!(read[0].prev_hash, vec![0u8; 32]);
    assert_eq!(read[1].prev_hash, read[0].hash);
}

async fn lets_one_of_many_concurrent_writers_win_each_version(store: Arc<dyn EventStore>) {
    let s = stream("hot");
    let mut tasks = Vec::new();
    for w in 0..16 {
        let store = store.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for _ in 0..20 {
                let v = store.stream_version(&s).await.unwrap();
                let e = event("Wrote", json!({ "writer": w }));
                let id = e.event_id;
                match store
                    .append(AppendRequest::single(
                        s.clone(),
                        ExpectedVersion::Exact(v),
                        vec![e],
                    ))
                    .await
                {
                    Ok(r) => {
                        assert_eq!(r.version_of(&s), Some(v + 1));
                        won.push((v + 1, id));
                    }
                    Err(e) if e.is_conflict() => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
            won
        }));
    }
    let mut wins = Vec::new();
    for t in tasks {
        wins.extend(t.await.unwrap());
    }
    let stored = store.read_stream(&s, 1, None).await.unwrap();
    assert_eq!(
        stored.len(),
        wins.len(),
        "every success is stored, nothing else"
    );
    let versions: HashSet<u64> = wins.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions.len(), wins.len(), "no version was won twice");
    for (v, id) in wins {
        assert_eq!(stored[v as usize - 1].event_id, id);
    }
    assert!(store.verify(Some(&s)).await.unwrap().ok);
}

async fn refuses_malformed_requests(store: Arc<dyn EventStore>) {
    let err = store.append(AppendRequest::default()).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidAppend(_)), "{err:?}");
    let s = stream("test");
    let twice = AppendRequest {
        streams: vec![
            StreamAppend {
                stream: s.clone(),
                expected: ExpectedVersion::Any,
                events: events(1),
            },
            StreamAppend {
                stream: s.clone(),
                expected: ExpectedVersion::Any,
                events: events(1),
            },
        ],
        commands: vec![],
    };
    let err = store.append(twice).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidAppend(_)), "{err:?}");
    assert_eq!(store.stream_version(&s).await.unwrap(), 0);
}

/// Many appends at once, to many streams, with every kind of outcome mixed
/// (a backend may commit them together, as PostgreSQL's group commit does):
/// each gets its own answer. Per stream one of four racing writers wins;
/// of two appends that share a command id one commits and the other is
/// told it is a duplicate, writing nothing; an append to several streams
/// of which one moved writes none of them; appends with no expectation all
/// commit; and the log still verifies.
pub async fn isolates_each_of_many_concurrent_appends(store: Arc<dyn EventStore>) {
    const STREAMS: usize = 24;
    let hot: Vec<StreamId> = (0..STREAMS).map(|_| stream("iso")).collect();
    for s in &hot {
        store
            .append(AppendRequest::single(
                s.clone(),
                ExpectedVersion::Exact(0),
                events(1),
            ))
            .await
            .unwrap();
    }
    #[derive(Debug)]
    enum Kind {
        Race(usize),
        Twin(usize),
        Pair,
        Free,
    }
    let mut tasks = Vec::new();
    let twins: Vec<Uuid> = (0..STREAMS / 2).map(|_| Uuid::now_v7()).collect();
    let mut spawn = |kind: Kind, request: AppendRequest| {
        let store = store.clone();
        let streams: Vec<StreamId> = request.streams.iter().map(|s| s.stream.clone()).collect();
        tasks.push(tokio::spawn(async move {
            (kind, streams, store.append(request).await)
        }));
    };
    for round in 0..4 {
        for (i, s) in hot.iter().enumerate() {
            spawn(
                Kind::Race(i),
                AppendRequest::single(s.clone(), ExpectedVersion::Exact(1), events(1)),
            );
            if round == 0 {
                spawn(
                    Kind::Free,
                    AppendRequest::single(stream("free"), ExpectedVersion::Any, events(2)),
                );
            }
        }
        for (k, id) in twins.iter().enumerate().filter(|_| round < 2) {
            let mut r = AppendRequest::single(stream("twin"), ExpectedVersion::Exact(0), events(1));
            r.commands.push(CommandRecord {
                command_id: *id,
                fingerprint: None,
                outcome: json!({ "k": k }),
            });
            spawn(Kind::Twin(k), r);
        }
    }
    // Several streams, one of which stands at 1 while the append expects 0.
    for s in hot.iter().take(4) {
        let fresh = stream("pair");
        spawn(
            Kind::Pair,
            AppendRequest {
                streams: vec![
                    StreamAppend {
                        stream: fresh,
                        expected: ExpectedVersion::Exact(0),
                        events: events(1),
                    },
                    StreamAppend {
                        stream: s.clone(),
                        expected: ExpectedVersion::Exact(0),
                        events: events(1),
                    },
                ],
                commands: vec![],
            },
        );
    }
    let mut race_wins = vec![0usize; STREAMS];
    let mut twin_wins = vec![0usize; twins.len()];
    for t in tasks {
        let (kind, streams, result) = t.await.unwrap();
        match (kind, result) {
            (Kind::Race(i), Ok(_)) => race_wins[i] += 1,
            (Kind::Race(_), Err(e)) => assert!(e.is_conflict(), "{e:?}"),
            (Kind::Twin(k), Ok(_)) => twin_wins[k] += 1,
            (Kind::Twin(k), Err(StoreError::DuplicateCommand(id))) => {
                assert_eq!(id, twins[k]);
                assert_eq!(store.stream_version(&streams[0]).await.unwrap(), 0);
            }
            (Kind::Pair, Err(e)) => {
                assert!(e.is_conflict(), "{e:?}");
                assert_eq!(store.stream_version(&streams[0]).await.unwrap(), 0);
            }
            (Kind::Free, Ok(r)) => assert_eq!(r.version_of(&streams[0]), Some(2)),
            (kind, result) => panic!("{kind:?} answered {result:?}"),
        }
    }
    assert_eq!(race_wins, vec![1; STREAMS], "one winner per stream");
    assert_eq!(twin_wins, vec![1; twins.len()], "one append per command id");
    for s in &hot {
        assert_eq!(store.stream_version(s).await.unwrap(), 2);
    }
    assert!(store.verify(None).await.unwrap().ok);
}
