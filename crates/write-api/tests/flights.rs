//! Flights over HTTP: scheduling, fares, reschedule, cancellation (admin).

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{flight_body, problem, spawn};

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_admin_schedules_a_flight_with_its_seat_map(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let r = app
        .post("/flights", Some(&admin), flight_body(Duration::days(10)))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert!(body["flight_id"].is_string());
    assert_eq!(body["position"].as_str().unwrap().len(), 32);
    assert_eq!(app.stream_count("flight").await, 1);
    assert_eq!(app.stream_count("seats").await, 1);
    let opened: Value =
        sqlx::query_scalar("SELECT data FROM es_events WHERE event_type = 'InventoryOpened'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(opened["seats"].as_array().unwrap().len(), 80);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn only_admins_schedule_flights(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, customer) = app.user("customer").await;
    let (_, agent) = app.user("agent").await;
    for token in [&customer, &agent] {
        let r = app
            .post("/flights", Some(token), flight_body(Duration::days(10)))
            .await;
        problem(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    }
    let r = app
        .post("/flights", None, flight_body(Duration::days(10)))
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(app.stream_count("flight").await, 0);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn invalid_flights_are_refused_field_by_field(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let cases = [
        ("origin", json!("LONDON")),
        ("destination", json!("LHR")),
        ("currency", json!("dollars")),
        ("flight_number", json!("??")),
        ("arrives_at", json!("2020-01-01T00:00:00Z")),
    ];
    for (field, value) in cases {
        let mut body = flight_body(Duration::days(10));
        body[field] = value;
        let r = app.post("/flights", Some(&admin), body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.iter().any(|f| f.contains(field)), "{field}: {p}");
    }
    // Wrong types and unknown enum values are 422 too; broken JSON is 400.
    let mut body = flight_body(Duration::days(10));
    body["cabins"][0]["first_row"] = json!("one");
    problem(
        app.post("/flights", Some(&admin), body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let mut body = flight_body(Duration::days(10));
    body["cabins"][0]["cabin"] = json!("cargo");
    problem(
        app.post("/flights", Some(&admin), body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let r = app
        .client
        .post(app.url("/flights"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"flight_number\": ")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
    assert_eq!(app.stream_count("flight").await, 0);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn fares_change_and_flights_move_and_cancel(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let flight = app.flight().await;
    let r = app
        .send(
            Method::PUT,
            &format!("/flights/{flight}/fares"),
            Some(&admin),
            Some(json!({"cabin": "economy", "fare": "450.00"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["fare"], json!({"amount": "450.00", "currency": "USD"}));
    assert!(body["position"].is_string());

    // New bookings pay the new fare.
    let (_, customer) = app.user("customer").await;
    let booked: Value = app
        .book(&customer, flight, &["economy"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        booked["total"],
        json!({"amount": "450.00", "currency": "USD"})
    );

    let r = app
        .send(
            Method::PUT,
            &format!("/flights/{flight}/fares"),
            Some(&admin),
            Some(json!({"cabin": "first", "fare": "9000.00"})),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;

    let departs = chrono::Utc::now() + Duration::days(40);
    let r = app
        .post(
            &format!("/flights/{flight}/reschedule"),
            Some(&admin),
            json!({"departs_at": departs, "arrives_at": departs + Duration::hours(8)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = app
        .post(
            &format!("/flights/{flight}/cancel"),
            Some(&admin),
            json!({"reason": "strike"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let again = app
        .post(
            &format!("/flights/{flight}/cancel"),
            Some(&admin),
            json!({"reason": "strike"}),
        )
        .await;
    problem(again, StatusCode::CONFLICT, "INVALID_STATE").await;
    // A cancelled flight sells nothing.
    problem(
        app.book(&customer, flight, &["economy"]).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn unknown_and_malformed_flight_ids(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let r = app
        .post(
            &format!("/flights/{}/cancel", uuid::Uuid::now_v7()),
            Some(&admin),
            json!({"reason": "x"}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let r = app
        .post(
            "/flights/not-a-uuid/cancel",
            Some(&admin),
            json!({"reason": "x"}),
        )
        .await;
    problem(r, StatusCode::BAD_REQUEST, "INVALID_ID").await;
}
