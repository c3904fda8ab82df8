//! What an attacker tried against `booking serve`, each a test: one
//! customer cannot fail another's booking, revocation is at once, stored
//! answers leak nothing, guesses and hoarding are limited, bad values are
//! refused with a field error.

use std::time::Duration;

use application::{HoldCaps, Settings};
use engine::app::limits::{Policy, Proxies, RateLimits};
use engine::app::Edge;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn, spawn_with, Options, TestApp, PASSWORD, SECRET};
use uuid::Uuid;

/// `n` customers booking one economy seat each on `flight`, all at once,
/// alongside `other`: every booking must go through.
async fn others_book_while<F: std::future::Future>(
    app: &TestApp,
    flight: Uuid,
    n: usize,
    other: F,
) -> F::Output {
    let mut customers = Vec::new();
    for _ in 0..4 {
        customers.push(app.user("customer").await.1);
    }
    let bookings = (0..n).map(|i| {
        let token = customers[i % customers.len()].clone();
        async move { app.book(&token, flight, &["economy"]).await }
    });
    let (answers, out) = tokio::join!(futures::future::join_all(bookings), other);
    for r in answers {
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "another customer's booking failed: {}",
            r.text().await.unwrap()
        );
    }
    out
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_nul_in_a_cancel_reason_is_refused_and_fails_nobody_else(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, mallory) = app.user("customer").await;
    let hers = app.book_id(&mallory, flight, &["1A"]).await;
    let path = format!("/bookings/{hers}/cancel");
    let cancels = (0..10).map(|_| app.post(&path, Some(&mallory), json!({"reason": "\u{0}"})));
    let answers = others_book_while(&app, flight, 40, futures::future::join_all(cancels)).await;
    for r in answers {
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(p["errors"][0]["field"], "reason", "{p}");
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_double_click_cancels_once_and_fails_nobody_else(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let booking = app.book_id(&ada, flight, &["1A"]).await;
    let path = format!("/bookings/{booking}/cancel");
    let cancel = || app.post(&path, Some(&ada), json!({"reason": "changed my mind"}));
    let (a, b) =
        others_book_while(&app, flight, 40, async { tokio::join!(cancel(), cancel()) }).await;
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::ACCEPTED, StatusCode::CONFLICT]);
    let second = if a.status() == StatusCode::CONFLICT {
        a
    } else {
        b
    };
    problem(second, StatusCode::CONFLICT, "INVALID_STATE").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn retries_with_one_idempotency_key_all_get_the_first_answer(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let body = json!({"flight_id": flight, "passengers": [
        {"first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10", "cabin": "business"}]});
    let retries = (0..15).map(|_| {
        app.client
            .post(app.url("/bookings"))
            .bearer_auth(&ada)
            .header("idempotency-key", "ada-retry-1")
            .json(&body)
            .send()
    });
    let answers = others_book_while(&app, flight, 40, futures::future::join_all(retries)).await;
    let mut ids = std::collections::HashSet::new();
    for r in answers {
        let r = r.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        ids.insert(r.json::<Value>().await.unwrap()["booking_id"].clone());
    }
    assert_eq!(ids.len(), 1, "one booking, answered fifteen times: {ids:?}");
    let business: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM es_events WHERE event_type = 'BookingCreated' \
         AND data->'passengers'->0->>'cabin' = 'business'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(business, 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_erased_users_token_stops_at_once_and_fails_nobody_else(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (id, eve) = app.user("customer").await;
    let r = app
        .send(Method::DELETE, &format!("/users/{id}"), Some(&eve), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let tries = (0..10).map(|_| app.book(&eve, flight, &["economy"]));
    for r in others_book_while(&app, flight, 40, futures::future::join_all(tries)).await {
        problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_demoted_admin_loses_admin_rights_at_once_in_every_process(pool: PgPool) {
    // Two processes of one deployment on one database.
    let a = spawn(pool.clone()).await;
    let b = spawn(pool).await;
    let admin = a.admin_token().await;
    let (eve_id, eve) = a.user("admin").await;
    async fn schedule(app: &TestApp, token: &str) -> reqwest::Response {
        app.post(
            "/flights",
            Some(token),
            test_support::flight_body(chrono::Duration::days(9)),
        )
        .await
    }
    assert_eq!(schedule(&b, &eve).await.status(), StatusCode::CREATED);
    let r = a
        .send(
            Method::PUT,
            &format!("/users/{eve_id}/role"),
            Some(&admin),
            Some(json!({"role": "customer"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // In the process that demoted her: at once.
    problem(
        schedule(&a, &eve).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // In the other: within seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = schedule(&b, &eve).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other process still took her token: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // She cannot promote anyone meanwhile, and logging in again gives her
    // the role she has now.
    let r = b
        .send(
            Method::PUT,
            &format!("/users/{eve_id}/role"),
            Some(&eve),
            Some(json!({"role": "admin"})),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_logged_out_token_stops_working(pool: PgPool) {
    let app = spawn(pool).await;
    app.user("customer").await;
    let email = "leaving@example.com";
    app.post(
        "/auth/register",
        None,
        json!({"email": email, "password": PASSWORD, "full_name": "Leaving"}),
    )
    .await;
    let pair: Value = app
        .post(
            "/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let token = pair["access_token"].as_str().unwrap();
    let me = pair["user_id"].as_str().unwrap();
    let r = app
        .post(
            "/auth/logout",
            Some(token),
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .send(
            Method::PATCH,
            &format!("/users/{me}"),
            Some(token),
            Some(json!({"full_name": "Back"})),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn stored_answers_hold_no_personal_data_and_replay_only_to_their_caller(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let body = json!({"flight_id": flight, "passengers": [
        {"first_name": "Augusta", "last_name": "Byron", "date_of_birth": "1990-12-10", "seat": "12A"}]});
    // The scheme in lower case, as some clients send it.
    let r = app
        .client
        .post(app.url("/bookings"))
        .header("authorization", format!("bearer {ada}"))
        .header("idempotency-key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let stored: Vec<String> = sqlx::query_scalar("SELECT outcome::text FROM es_commands")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(!stored.is_empty());
    for outcome in &stored {
        assert!(!outcome.contains("Byron"), "a name in clear: {outcome}");
    }
    // The same key, path and body without a token is not her request.
    let r = app
        .client
        .post(app.url("/bookings"))
        .header("idempotency-key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert!(!p.to_string().contains("Byron"));
    // Nor is it someone else's.
    let (_, bob) = app.user("customer").await;
    let r = app
        .client
        .post(app.url("/bookings"))
        .bearer_auth(&bob)
        .header("idempotency-key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_ne!(
        r.headers().get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert!(!r.text().await.unwrap().contains("Byron"));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn parallel_login_guesses_are_counted_before_the_password_is_checked(pool: PgPool) {
    let mut settings = Settings::with_secret(SECRET.to_vec());
    settings.login_attempts_per_minute = 5;
    let app = spawn_with(
        pool,
        Options {
            settings,
            ..Options::default()
        },
    )
    .await;
    app.post(
        "/auth/register",
        None,
        json!({"email": "ada@example.com", "password": PASSWORD, "full_name": "Ada"}),
    )
    .await;
    let guesses = (0..60).map(|i| {
        app.post(
            "/auth/login",
            None,
            json!({"email": "ada@example.com", "password": format!("guess number {i:04}")}),
        )
    });
    let answers = futures::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|r| r.status() == StatusCode::UNAUTHORIZED)
        .count();
    let limited = answers
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + limited, 60);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn registrations_are_limited_per_address(pool: PgPool) {
    let mut settings = Settings::with_secret(SECRET.to_vec());
    settings.registrations_per_hour = Some(3);
    let app = spawn_with(
        pool,
        Options {
            settings,
            ..Options::default()
        },
    )
    .await;
    let register = |i: usize| {
        app.post(
            "/auth/register",
            None,
            json!({"email": format!("bot{i}@example.com"), "password": PASSWORD, "full_name": "Bot"}),
        )
    };
    for i in 0..3 {
        assert_eq!(register(i).await.status(), StatusCode::CREATED);
    }
    let r = register(3).await;
    assert!(r.headers().contains_key("retry-after"));
    problem(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn one_customer_cannot_hold_a_flights_seats(pool: PgPool) {
    let mut settings = Settings::with_secret(SECRET.to_vec());
    settings.hold_caps = Some(HoldCaps {
        max_held_seats: 10,
        max_unpaid_bookings: 2,
    });
    let app = spawn_with(
        pool,
        Options {
            settings,
            ..Options::default()
        },
    )
    .await;
    // The projectors follow the log, as in `booking serve`: the caps count
    // from the read models.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = app.runner.clone();
    let projectors = tokio::spawn(async move {
        runner
            .run_all(projections::all(), async {
                let _ = stopped.await;
            })
            .await
    });
    let flight = app.flight().await;
    let (_, hoarder) = app.user("customer").await;
    let nine = ["economy"; 9];
    assert_eq!(
        app.book(&hoarder, flight, &nine).await.status(),
        StatusCode::CREATED
    );
    let r = app.book(&hoarder, flight, &["economy", "economy"]).await;
    problem(r, StatusCode::CONFLICT, "HOLD_LIMIT").await;
    let second = app.booked(&hoarder, flight, &["economy"]).await;
    let r = app.book(&hoarder, flight, &["economy"]).await;
    problem(r, StatusCode::CONFLICT, "HOLD_LIMIT").await;
    // Someone else books as usual.
    let (_, other) = app.user("customer").await;
    assert_eq!(
        app.book(&other, flight, &nine).await.status(),
        StatusCode::CREATED
    );
    // A cancelled hold no longer counts.
    let id = second["booking_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/bookings/{id}/cancel"),
            Some(&hoarder),
            json!({"reason": "done"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.book(&hoarder, flight, &["economy"]).await;
        if r.status() == StatusCode::CREATED {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            r.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A burst at once, before the read models show any of it, gets no
    // further than the cap.
    let (_, burst) = app.user("customer").await;
    let tries = (0..8).map(|_| app.book(&burst, flight, &["economy"]));
    let created = futures::future::join_all(tries)
        .await
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 2);
    let _ = stop.send(());
    let _ = projectors.await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn requests_past_the_rate_limit_are_told_when_to_come_back(pool: PgPool) {
    let settings = Settings::with_secret(SECRET.to_vec());
    let tokens = auth::TokenKeys::new(SECRET, settings.access_ttl);
    let edge = Edge {
        limits: RateLimits::new(
            Some(&"4/min".parse::<Policy>().unwrap()),
            Proxies::default(),
            tokens,
        ),
        ..Edge::open(auth::TokenKeys::new(SECRET, settings.access_ttl))
    };
    let app = spawn_with(
        pool,
        Options {
            settings,
            edge: Some(edge),
            ..Options::default()
        },
    )
    .await;
    let token = app
        .state
        .tokens
        .issue(
            Uuid::now_v7(),
            domain::values::Role::Customer,
            Uuid::now_v7(),
        )
        .unwrap();
    let other = app
        .state
        .tokens
        .issue(
            Uuid::now_v7(),
            domain::values::Role::Customer,
            Uuid::now_v7(),
        )
        .unwrap();
    let me = |t: &str| {
        app.client
            .post(format!("http://{}/graphql", app.addr))
            .bearer_auth(t.to_owned())
            .json(&json!({"query": "{ projections { name } }"}))
            .send()
    };
    for _ in 0..4 {
        let r = me(&token).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().contains_key("ratelimit-policy"));
        assert!(r.headers().contains_key("ratelimit"));
    }
    // REST and GraphQL count together, per user.
    let r = app
        .send(Method::POST, "/flights", Some(&token), Some(json!({})))
        .await;
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(r.headers()["ratelimit"].to_str().unwrap().contains("r=0"));
    problem(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    // Another user is not affected.
    assert_eq!(me(&other).await.unwrap().status(), StatusCode::OK);
    // Health is never limited.
    for _ in 0..10 {
        let r = app
            .client
            .get(format!("http://{}/health/live", app.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn every_answer_carries_the_security_headers(pool: PgPool) {
    let app = spawn(pool).await;
    for path in ["/api/v1/auth/login", "/health/live", "/nowhere"] {
        let r = app
            .client
            .get(format!("http://{}{path}", app.addr))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.contains_key("content-security-policy"), "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn implausible_values_are_refused_with_a_field_error(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let mut huge = test_support::flight_body(chrono::Duration::days(9));
    huge["cabins"][1]["fare"] = json!("79228162514264337593543950335");
    let p = problem(
        app.post("/flights", Some(&admin), huge).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "fare", "{p}");
    let mut cents = test_support::flight_body(chrono::Duration::days(9));
    cents["cabins"][1]["fare"] = json!("420.001");
    problem(
        app.post("/flights", Some(&admin), cents).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;

    let flight = app.flight().await;
    let (_, ada) = app.user("customer").await;
    let passenger = |first: &str, born: &str| {
        json!({"flight_id": flight, "passengers": [
            {"first_name": first, "last_name": "Lovelace", "date_of_birth": born, "seat": "12A"}]})
    };
    for (first, born, field) in [
        ("Ada", "0000-01-01", "date_of_birth"),
        ("Ada\u{202E}txt", "1990-12-10", "first_name"),
        ("A\u{200B}da", "1990-12-10", "first_name"),
        ("Ada\u{0}", "1990-12-10", "first_name"),
    ] {
        let p = problem(
            app.post("/bookings", Some(&ada), passenger(first, born))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        )
        .await;
        assert!(
            p["errors"][0]["field"].as_str().unwrap().ends_with(field),
            "{p}"
        );
    }
    assert_eq!(app.stream_count("booking").await, 0, "nothing was written");
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_body_that_is_not_an_object_is_refused(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, token) = app.user("customer").await;
    for body in ["[null, null]", "[\"Ada\", null]", "\"Ada\"", "42"] {
        let r = app
            .client
            .patch(app.url(&format!("/users/{id}")))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(p["errors"][0]["field"], "body", "{body}: {p}");
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn hold_caps_count_what_another_process_holds(pool: PgPool) {
    // Two engines on one database: each follows the log, so what a
    // customer holds through one counts in the other within moments.
    let caps = || {
        let mut settings = Settings::with_secret(SECRET.to_vec());
        settings.hold_caps = Some(HoldCaps {
            max_held_seats: 10,
            max_unpaid_bookings: 2,
        });
        Options {
            settings,
            ..Options::default()
        }
    };
    let one = spawn_with(pool.clone(), caps()).await;
    let other = spawn_with(pool, caps()).await;
    let flight = one.flight().await;
    let (_, hoarder) = one.user("customer").await;
    one.booked(&hoarder, flight, &["economy"]).await;
    one.booked(&hoarder, flight, &["economy"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = other.book(&hoarder, flight, &["economy"]).await;
        if r.status() == StatusCode::CONFLICT {
            problem(r, StatusCode::CONFLICT, "HOLD_LIMIT").await;
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other engine never counted them: {}",
            r.status()
        );
        // A booking that slipped through before the log reached the other
        // engine is cancelled, so the cap is what stops the next one.
        let booked: serde_json::Value = r.json().await.unwrap();
        let id = booked["booking_id"].as_str().unwrap();
        other
            .post(
                &format!("/bookings/{id}/cancel"),
                Some(&hoarder),
                json!({"reason": "retry"}),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
