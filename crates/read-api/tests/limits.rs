//! GraphQL under attack: bounded bodies and operations, no amplification,
//! subscriptions whose cost does not grow with their number, bad values
//! answered as bad requests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use read_api::ReadSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::graphql::error_code;
use test_support::{spawn, spawn_with, Options, TestApp};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn post_raw(app: &TestApp, body: String) -> reqwest::Response {
    app.client
        .post(format!("http://{}/graphql", app.addr))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_body_over_64_kib_is_refused_before_it_is_read_whole(pool: PgPool) {
    let app = spawn(pool).await;
    let padding = " ".repeat(200 * 1024);
    let r = post_raw(
        &app,
        format!("{{\"query\": \"{{ projections {{ name }} }}\"{padding}}}"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        error_code(&body).as_deref(),
        Some("PAYLOAD_TOO_LARGE"),
        "{body}"
    );
    // Just under the limit is fine.
    let padding = " ".repeat(60 * 1024);
    let r = post_raw(
        &app,
        format!("{{\"query\": \"{{ projections {{ name }} }}\"{padding}}}"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn many_aliases_of_a_cheap_field_are_refused(pool: PgPool) {
    let app = spawn(pool).await;
    let aliases: String = (0..200)
        .map(|i| format!("s{i}: searchFlights(origin: \"LHR\", destination: \"JFK\", date: \"2030-06-01\") {{ edges {{ cursor }} }} "))
        .collect();
    let (_, body) = app
        .gql_with(None, None, &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("QUERY_TOO_WIDE"),
        "{body}"
    );
    assert!(body["data"].is_null(), "nothing ran: {body}");
    // Through a fragment too.
    let q = format!("{{ ...f }} fragment f on Query {{ {aliases} }}");
    let (_, body) = app.gql_with(None, None, &q, json!({})).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("QUERY_TOO_WIDE"),
        "{body}"
    );
    // A few are fine.
    let few: String = (0..3)
        .map(|i| format!("s{i}: searchFlights(origin: \"LHR\", destination: \"JFK\", date: \"2030-06-01\") {{ edges {{ cursor }} }} "))
        .collect();
    app.gql(None, &format!("{{ {few} }}"), json!({})).await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn bad_values_are_bad_requests_not_internal_errors(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, customer) = app.customer().await;
    let (_, analyst) = app.token(domain::values::Role::Analyst);
    let cases = [
        (
            &customer,
            "query($p: String) { booking(pnr: $p) { id } }",
            json!({"p": "AB\u{0}CDE"}),
        ),
        (
            &customer,
            "query($n: String!) { invoice(number: $n) { number } }",
            json!({"n": "INV-\u{0}"}),
        ),
        (
            &analyst,
            "{ analytics { topRoutes(limit: 2147483648) { origin } } }",
            json!({}),
        ),
        (
            &analyst,
            "query($n: Int) { analytics { topRoutes(limit: $n) { origin } } }",
            json!({"n": -2147483649i64}),
        ),
        (
            &analyst,
            "query($d: Date) { analytics { revenueByDay(from: $d) { day } } }",
            json!({"d": "-5000-01-01"}),
        ),
        (
            &customer,
            "query($d: Date!) { searchFlights(origin: \"LHR\", destination: \"JFK\", date: $d) { edges { cursor } } }",
            json!({"d": "0000-01-01"}),
        ),
    ];
    for (token, query, variables) in cases {
        let (status, body) = app.gql_with(Some(token), None, query, variables).await;
        assert!(
            status.is_success() || status.is_client_error(),
            "{status} {body}"
        );
        let code = error_code(&body);
        assert!(
            matches!(
                code.as_deref(),
                Some("BAD_REQUEST" | "GRAPHQL_VALIDATION_FAILED")
            ),
            "{query}: {body}"
        );
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn graphiql_and_introspection_can_be_turned_off(pool: PgPool) {
    let app = spawn_with(
        pool,
        Options {
            read: ReadSettings {
                graphiql: false,
                introspection: false,
                ..ReadSettings::default()
            },
            ..Options::default()
        },
    )
    .await;
    let r = app
        .client
        .get(format!("http://{}/graphql", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (_, body) = app
        .gql_with(None, None, "{ __schema { types { name } } }", json!({}))
        .await;
    assert!(
        body["errors"].is_array() || body["data"]["__schema"].is_null(),
        "the schema is not told: {body}"
    );
    // Queries still work.
    app.gql(None, "{ projections { name } }", json!({})).await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A websocket that has said hello, or the refusal of the upgrade.
async fn open(app: &TestApp) -> Result<Ws, reqwest::StatusCode> {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, _)) => {
            ws.send(Message::Text(
                json!({"type": "connection_init", "payload": {}})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
            assert_eq!(recv(&mut ws).await["type"], "connection_ack");
            Ok(ws)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            Err(reqwest::StatusCode::from_u16(r.status().as_u16()).unwrap())
        }
        Err(e) => panic!("{e}"),
    }
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

async fn subscribe(ws: &mut Ws, id: usize, flight: uuid::Uuid) -> Value {
    ws.send(Message::Text(
        json!({"id": id.to_string(), "type": "subscribe", "payload": {
            "query": "subscription($f: ID!) { seatMapChanged(flightId: $f) { availableSeats } }",
            "variables": {"f": flight}}})
        .to_string()
        .into(),
    ))
    .await
    .unwrap();
    recv(ws).await
}

/// Index scans of `rm_flights` so far (the watchers' one query per look).
async fn flight_reads(app: &TestApp) -> i64 {
    // Statistics reach the shared view when a backend goes idle.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sqlx::query_scalar(
        "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE relname = 'rm_flights'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn subscriptions_are_capped_and_cost_the_same_however_many_watch(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let flight = app
        .flight_on(
            &admin,
            "LHR",
            "JFK",
            "2030-06-01T09:00:00Z",
            "420.00",
            "1800.00",
            12,
        )
        .await;
    app.catch_up().await;

    // One watcher: how often it reads the flight in three seconds.
    let mut first = open(&app).await.unwrap();
    assert_eq!(subscribe(&mut first, 1, flight).await["type"], "next");
    let before = flight_reads(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let one = flight_reads(&app).await - before;

    // Fifteen more on this connection and sixteen on another: the same.
    for id in 2..=16 {
        assert_eq!(subscribe(&mut first, id, flight).await["type"], "next");
    }
    let mut second = open(&app).await.unwrap();
    for id in 1..=16 {
        assert_eq!(subscribe(&mut second, id, flight).await["type"], "next");
    }
    let before = flight_reads(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let many = flight_reads(&app).await - before;
    assert!(
        many <= one * 2 + 5,
        "32 subscribers read the flight {many} times, one read it {one} times"
    );

    // The 17th on one connection is refused.
    let refused = subscribe(&mut first, 17, flight).await;
    let errors = if refused["type"] == "error" {
        &refused["payload"]
    } else {
        &refused["payload"]["errors"]
    };
    assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED", "{refused}");
    assert!(refused["payload"]["data"].is_null(), "{refused}");

    // Connections per address are capped too (8 by default).
    let mut more = Vec::new();
    for _ in 0..6 {
        more.push(open(&app).await.unwrap());
    }
    assert_eq!(open(&app).await.err(), Some(StatusCode::TOO_MANY_REQUESTS));
    // Closing one frees its place.
    drop(more.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match open(&app).await {
            Ok(_) => break,
            Err(s) => {
                assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the place was not freed"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
