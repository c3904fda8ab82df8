//! Bookings over HTTP: seats held atomically with the booking, 409s that
//! name the seats, agents, cancellation, passenger edits, idempotency.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn};
use uuid::Uuid;

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_customer_books_two_passengers(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (customer_id, token) = app.user("customer").await;
    let r = app.book(&token, flight, &["12A", "economy"]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["status"], "HELD");
    assert_eq!(b["customer_id"], json!(customer_id));
    let pnr = b["pnr"].as_str().unwrap();
    assert_eq!(pnr.len(), 6);
    assert!(pnr
        .chars()
        .all(|c| domain::values::PNR_ALPHABET.contains(c)));
    let seats: Vec<&str> = b["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(seats[0], "12A");
    assert_eq!(seats[1], "10A", "the first free economy seat");
    assert_eq!(b["total"], json!({"amount": "840.00", "currency": "USD"}));
    assert_eq!(b["passengers"].as_array().unwrap().len(), 2);
    assert!(b["passengers"][0]["passenger_id"].is_string());
    let expires: chrono::DateTime<chrono::Utc> =
        b["hold_expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires > chrono::Utc::now() + Duration::minutes(9));
    assert_eq!(b["position"].as_str().unwrap().len(), 32);

    // The booking and its seat holds are in the log, written together.
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT stream_id, event_type FROM es_events WHERE event_type IN ('BookingCreated', 'SeatsHeld')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
    let txs: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT tx) FROM es_events WHERE event_type IN ('BookingCreated', 'SeatsHeld')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(txs, 1, "one transaction");
    // Passenger names are never stored in clear.
    let raw: String =
        sqlx::query_scalar("SELECT data::text FROM es_events WHERE event_type = 'BookingCreated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!raw.contains("Lovelace"), "{raw}");
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_taken_seat_is_a_409_naming_it_and_nothing_is_half_written(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let (_, bob) = app.user("customer").await;
    assert_eq!(
        app.book(&ada, flight, &["12A", "12B"]).await.status(),
        StatusCode::CREATED
    );
    let r = app.book(&bob, flight, &["12C", "12B", "12A"]).await;
    let p = problem(r, StatusCode::CONFLICT, "SEAT_UNAVAILABLE").await;
    assert_eq!(p["seats"], json!(["12B", "12A"]));
    // 12C was not held by the refused booking.
    assert_eq!(
        app.book(&bob, flight, &["12C"]).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.stream_count("booking").await, 2);
    // A full cabin is a 409 too.
    let business: Vec<&str> = vec!["business"; 9];
    assert_eq!(
        app.book(&ada, flight, &business).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.book(&bob, flight, &business).await.status(),
        StatusCode::CREATED
    );
    problem(
        app.book(&bob, flight, &["business", "business", "business"])
            .await,
        StatusCode::CONFLICT,
        "SEAT_UNAVAILABLE",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn bad_booking_requests_are_refused_and_change_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.user("customer").await;
    let passenger = json!({"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "seat": "12A"});
    let cases = [
        (
            json!({"flight_id": Uuid::now_v7(), "passengers": [passenger]}),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            json!({"flight_id": "nope", "passengers": [passenger]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "seat": "99Z"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "seat": "60A"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "seat": "12A", "cabin": "economy"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "cabin": "cargo"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": [{"first_name": "", "last_name": "L", "date_of_birth": "1990-12-10", "seat": "12A"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "2990-12-10", "seat": "12A"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "email": "not-an-email", "seat": "12A"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": "Ada"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"flight_id": flight, "passengers": [passenger.clone(), passenger.clone()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
    ];
    for (body, status, code) in cases {
        let r = app.post("/bookings", Some(&token), body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        problem(r, status, code).await;
    }
    let r = app
        .client
        .post(app.url("/bookings"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"flight_id\": ")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
    let huge = json!({"flight_id": flight, "passengers": [{"first_name": "x".repeat(70_000), "last_name": "L", "date_of_birth": "1990-12-10", "seat": "12A"}]});
    problem(
        app.post("/bookings", Some(&token), huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(app.stream_count("booking").await, 0);
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM es_events WHERE event_type = 'SeatsHeld'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(held, 0);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn who_may_book_for_whom(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (customer, customer_token) = app.user("customer").await;
    let (_, other_token) = app.user("customer").await;
    let (_, agent) = app.user("agent").await;
    let (_, analyst) = app.user("analyst").await;
    let body = |customer_id: Option<Uuid>, seat: &str| {
        let mut b = json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "seat": seat}]});
        if let Some(c) = customer_id {
            b["customer_id"] = json!(c);
        }
        b
    };
    let r = app
        .post("/bookings", Some(&agent), body(Some(customer), "12A"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let booked: Value = r.json().await.unwrap();
    assert_eq!(booked["customer_id"], json!(customer));
    problem(
        app.post("/bookings", Some(&other_token), body(Some(customer), "12B"))
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        app.post("/bookings", Some(&analyst), body(None, "12C"))
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        app.post("/bookings", Some(&agent), body(Some(Uuid::now_v7()), "12D"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    problem(
        app.post("/bookings", None, body(None, "12E")).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // The customer owns the agent's booking.
    let id = booked["booking_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/bookings/{id}/cancel"),
            Some(&customer_token),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn cancelling_returns_the_seats_and_follows_the_refund_policy(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let (_, bob) = app.user("customer").await;
    let booked: Value = app.book(&ada, flight, &["12A"]).await.json().await.unwrap();
    let id = booked["booking_id"].as_str().unwrap();
    problem(
        app.post(
            &format!("/bookings/{id}/cancel"),
            Some(&bob),
            json!({"reason": "mine now"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let r = app
        .post(
            &format!("/bookings/{id}/cancel"),
            Some(&ada),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "CANCELLED");
    // Nothing was paid, so nothing is refunded.
    assert_eq!(body["refund"], json!({"amount": "0.00", "currency": "USD"}));
    assert!(body["position"].is_string());
    problem(
        app.post(
            &format!("/bookings/{id}/cancel"),
            Some(&ada),
            json!({"reason": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
    // The seat is on sale again.
    assert_eq!(
        app.book(&bob, flight, &["12A"]).await.status(),
        StatusCode::CREATED
    );
    problem(
        app.post(
            &format!("/bookings/{}/cancel", Uuid::now_v7()),
            Some(&ada),
            json!({"reason": "x"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    problem(
        app.post("/bookings/123/cancel", Some(&ada), json!({"reason": "x"}))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_ID",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn cancelling_after_departure_is_a_409(pool: PgPool) {
    let app = spawn(pool).await;
    // Everything slow (logins) first, so the booking lands before departure.
    let (_, ada) = app.user("customer").await;
    let admin = app.admin_token().await;
    let departs = chrono::Utc::now() + Duration::seconds(4);
    let mut body = test_support::flight_body(Duration::days(1));
    body["departs_at"] = json!(departs);
    body["arrives_at"] = json!(departs + Duration::hours(8));
    let flight: Value = app
        .post("/flights", Some(&admin), body)
        .await
        .json()
        .await
        .unwrap();
    let flight: Uuid = flight["flight_id"].as_str().unwrap().parse().unwrap();
    let r = app.book(&ada, flight, &["12A"]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let booked: Value = r.json().await.unwrap();
    let id = booked["booking_id"].as_str().unwrap();
    let wait = departs - chrono::Utc::now() + Duration::milliseconds(300);
    tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
    let r = app
        .post(
            &format!("/bookings/{id}/cancel"),
            Some(&ada),
            json!({"reason": "late"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "INVALID_STATE").await;
    // And nothing departs twice: a departed flight sells nothing.
    problem(
        app.book(&ada, flight, &["14A"]).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn passengers_can_be_corrected(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let (_, bob) = app.user("customer").await;
    let (_, agent) = app.user("agent").await;
    let booked: Value = app.book(&ada, flight, &["12A"]).await.json().await.unwrap();
    let id = booked["booking_id"].as_str().unwrap();
    let pid = booked["passengers"][0]["passenger_id"].as_str().unwrap();
    let path = format!("/bookings/{id}/passengers/{pid}");
    let r = app
        .send(
            Method::PATCH,
            &path,
            Some(&ada),
            Some(json!({"last_name": "Byron"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["passenger"]["last_name"], "Byron");
    assert_eq!(body["passenger"]["first_name"], "Ada");
    let r = app
        .send(
            Method::PATCH,
            &path,
            Some(&agent),
            Some(json!({"passport": "P1234567"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    problem(
        app.send(
            Method::PATCH,
            &path,
            Some(&bob),
            Some(json!({"last_name": "X"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        app.send(
            Method::PATCH,
            &path,
            Some(&ada),
            Some(json!({"first_name": ""})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let unknown = format!("/bookings/{id}/passengers/{}", Uuid::now_v7());
    problem(
        app.send(
            Method::PATCH,
            &unknown,
            Some(&ada),
            Some(json!({"last_name": "X"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_idempotency_key_books_once(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let body = json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "cabin": "economy"}]});
    let send = |body: Value| {
        app.client
            .post(app.url("/bookings"))
            .bearer_auth(&ada)
            .header("idempotency-key", "book-1")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    // Concurrent and later retries get the same answer.
    let retries = futures::future::join_all((0..5).map(|_| send(body.clone()))).await;
    for r in retries {
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.json::<Value>().await.unwrap(), first);
    }
    assert_eq!(app.stream_count("booking").await, 1);
    let mut other = body.clone();
    other["passengers"][0]["cabin"] = json!("business");
    problem(
        send(other).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(app.stream_count("booking").await, 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn the_request_id_becomes_the_events_correlation_id(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (customer, token) = app.user("customer").await;
    let request_id = Uuid::now_v7();
    let r = app
        .client
        .post(app.url("/bookings"))
        .bearer_auth(&token)
        .header("x-request-id", request_id.to_string())
        .json(&json!({"flight_id": flight, "passengers": [{"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "seat": "12A"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let metadata: Vec<Value> = sqlx::query_scalar(
        "SELECT metadata FROM es_events WHERE event_type IN ('BookingCreated', 'SeatsHeld')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(metadata.len(), 2);
    for m in metadata {
        assert_eq!(m["correlation_id"], json!(request_id));
        assert_eq!(
            m["actor"],
            json!({"kind": "user", "id": customer, "role": "customer"})
        );
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn booking_references_are_unique_even_when_the_draw_clashes(pool: PgPool) {
    use application::pnr::PnrPool;
    use application::CommandError;
    // Two processes drawing from the same tiny space of 32 codes (only the
    // first character varies).
    let a = PnrPool::new(pool.clone());
    let b = PnrPool::new(pool.clone());
    let mut n = 0u8;
    let mut draw = move || {
        n = n.wrapping_add(1);
        [n, 0, 0, 0, 0, 0]
    };
    let mut handed = std::collections::HashSet::new();
    for _ in 0..20 {
        let pnr = a.next(&mut draw).await.unwrap();
        assert!(handed.insert(pnr.clone()), "{pnr} handed out twice");
    }
    // a's block took every code: b can have none of them.
    match b.next(&mut draw).await {
        Ok(pnr) => assert!(!handed.contains(&pnr), "{pnr} handed out twice"),
        Err(e) => assert!(matches!(e, CommandError::Unavailable(_)), "{e}"),
    }
    while let Ok(pnr) = a.next(&mut draw).await {
        assert!(handed.insert(pnr.clone()), "{pnr} handed out twice");
    }
    assert_eq!(handed.len(), 32, "every code once, then a clear error");
    // Bookings made over HTTP carry a registered PNR.
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let booked: Value = app.book(&ada, flight, &["12A"]).await.json().await.unwrap();
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM booking_pnrs WHERE pnr = $1")
        .bind(booked["pnr"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(registered, 1);
}
