//! Trips over HTTP: passenger types (adult, child, infant on a lap) and
//! discount codes, with the race that tries to redeem a capped code past
//! its cap.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn, TestApp};

fn person(first: &str, extra: Value) -> Value {
    let mut p =
        json!({"first_name": first, "last_name": "Lovelace", "date_of_birth": "1990-12-10"});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// An adult, a child and an infant on the adult's lap, all in economy.
fn family() -> Vec<Value> {
    vec![
        person("Ada", json!({"cabin": "economy"})),
        person(
            "Byron",
            json!({"cabin": "economy", "type": "child", "date_of_birth": "2018-01-01"}),
        ),
        person(
            "Annabella",
            json!({"type": "infant", "travels_with": 0, "date_of_birth": "2026-01-01"}),
        ),
    ]
}

async fn create_code(app: &TestApp, admin: &str, body: Value) -> reqwest::Response {
    app.post("/discount-codes", Some(admin), body).await
}

fn code_body(code: &str, off: Value, max_uses: u32, per_customer: u32) -> Value {
    let mut body = json!({
        "code": code,
        "valid_from": (Utc::now() - Duration::hours(1)).to_rfc3339(),
        "valid_until": (Utc::now() + Duration::days(7)).to_rfc3339(),
        "max_uses": max_uses,
        "max_uses_per_customer": per_customer,
    });
    for (k, v) in off.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_family_is_priced_by_passenger_type_and_the_infant_takes_no_seat(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.customer().await;
    let r = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flight_id": flight, "passengers": family()}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    // 420 + 75 % of 420 + 10 % of 420.
    assert_eq!(b["total"], json!({"amount": "777.00", "currency": "USD"}));
    assert_eq!(b["discount"], json!({"amount": "0.00", "currency": "USD"}));
    assert_eq!(b["seats"].as_array().unwrap().len(), 2);
    assert_eq!(b["segments"][0]["flight_id"], json!(flight));
    let types: Vec<&str> = b["passengers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["adult", "child", "infant"]);
    let infant = &b["passengers"][2];
    assert_eq!(infant["seat"], Value::Null);
    assert_eq!(infant["travels_with"], b["passengers"][0]["passenger_id"]);
    assert_eq!(infant["fare"]["amount"], "42.00");

    // The read side shows each passenger's type, the infant in the lap's seat.
    app.catch_up().await;
    let data = app
        .gql(
            Some(&token),
            "query($id: ID!) { booking(id: $id) { seats discount { amount } total { amount }
               passengers { type seat fare { amount } travelsWith } } }",
            json!({"id": b["booking_id"]}),
        )
        .await;
    let booking = &data["booking"];
    assert_eq!(booking["seats"].as_array().unwrap().len(), 2);
    assert_eq!(booking["total"]["amount"], "777.00");
    assert_eq!(booking["discount"]["amount"], "0.00");
    let passengers = booking["passengers"].as_array().unwrap();
    assert_eq!(passengers[1]["type"], "CHILD");
    assert_eq!(passengers[2]["type"], "INFANT");
    assert_eq!(passengers[2]["seat"], passengers[0]["seat"]);
    assert_eq!(
        passengers[2]["travelsWith"],
        b["passengers"][0]["passenger_id"]
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_cabin_may_set_its_own_child_and_infant_shares(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let mut body = test_support::flight_body(Duration::days(30));
    body["cabins"][1]["child_fare_percent"] = json!(50);
    body["cabins"][1]["infant_fare_percent"] = json!(0);
    let r = app.post("/flights", Some(&admin), body.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let flight = test_support::id_in(r, "flight_id").await;
    let (_, token) = app.customer().await;
    let b: Value = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flight_id": flight, "passengers": family()}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["total"]["amount"], "630.00");

    body["cabins"][1]["child_fare_percent"] = json!(101);
    let r = app.post("/flights", Some(&admin), body).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn infants_need_an_adult_of_their_own_and_nothing_is_held_otherwise(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.customer().await;
    let cases: Vec<(Value, &str)> = vec![
        // On a child's lap.
        (
            json!([
                person("A", json!({"cabin": "economy", "type": "child"})),
                person("B", json!({"type": "infant", "travels_with": 0}))
            ]),
            "passengers[1].travels_with",
        ),
        // On nobody's lap.
        (
            json!([
                person("A", json!({"cabin": "economy"})),
                person("B", json!({"type": "infant"}))
            ]),
            "passengers[1].travels_with",
        ),
        // Past the list.
        (
            json!([
                person("A", json!({"cabin": "economy"})),
                person("B", json!({"type": "infant", "travels_with": 7}))
            ]),
            "passengers[1].travels_with",
        ),
        // With a seat.
        (
            json!([
                person("A", json!({"cabin": "economy"})),
                person(
                    "B",
                    json!({"type": "infant", "travels_with": 0, "seat": "12B"})
                )
            ]),
            "passengers[1]",
        ),
        // An adult on a lap.
        (
            json!([
                person("A", json!({"cabin": "economy"})),
                person("B", json!({"cabin": "economy", "travels_with": 0}))
            ]),
            "passengers[1].travels_with",
        ),
    ];
    for (passengers, field) in cases {
        let r = app
            .post(
                "/bookings",
                Some(&token),
                json!({"flight_id": flight, "passengers": passengers}),
            )
            .await;
        let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    // Two infants on one adult: the domain's rule.
    let r = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flight_id": flight, "passengers": [
                person("A", json!({"cabin": "economy"})),
                person("B", json!({"type": "infant", "travels_with": 0})),
                person("C", json!({"type": "infant", "travels_with": 0}))]}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    // An unknown type is a bad request body.
    let r = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flight_id": flight, "passengers": [person("A", json!({"cabin": "economy", "type": "pet"}))]}),
        )
        .await;
    assert!(r.status().is_client_error());
    assert_eq!(app.stream_count("booking").await, 0);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn admins_create_discount_codes_once_and_nobody_else_can(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let (_, customer) = app.customer().await;
    let body = code_body("Spring-20", json!({"percent_off": 20}), 10, 1);

    let r = create_code(&app, &customer, body.clone()).await;
    problem(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let r = create_code(&app, &admin, body.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["code"], "SPRING-20");
    assert_eq!(created["percent_off"], 20);
    assert!(created["position"].is_string());

    // The same code in any case is the same code.
    let mut again = body.clone();
    again["code"] = json!("spring-20");
    let r = create_code(&app, &admin, again).await;
    problem(r, StatusCode::CONFLICT, "CONFLICT").await;

    for (field, value) in [
        ("percent_off", json!(0)),
        ("percent_off", json!(101)),
        ("code", json!("x")),
        ("max_uses", json!(0)),
        ("routes", json!(["LHRJFK"])),
        (
            "valid_until",
            json!((Utc::now() - Duration::days(2)).to_rfc3339()),
        ),
    ] {
        let mut bad = code_body("OTHER", json!({"percent_off": 10}), 10, 1);
        bad[field] = value;
        let r = create_code(&app, &admin, bad).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
    }
    let mut both = code_body("BOTH", json!({"percent_off": 10}), 10, 1);
    both["amount_off"] = json!({"amount": "10.00", "currency": "USD"});
    let r = create_code(&app, &admin, both).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(app.stream_count("discount").await, 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_code_comes_off_the_fares_and_a_code_that_does_not_apply_holds_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let flight = app.flight().await;
    let (_, token) = app.customer().await;
    let r = create_code(
        &app,
        &admin,
        code_body(
            "TENOFF",
            json!({"amount_off": {"amount": "10.00", "currency": "USD"}}),
            5,
            1,
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut limited = code_body("BIZ", json!({"percent_off": 50}), 5, 5);
    limited["cabins"] = json!(["business"]);
    limited["routes"] = json!(["LHR-CDG"]);
    assert_eq!(
        create_code(&app, &admin, limited).await.status(),
        StatusCode::CREATED
    );
    let mut later = code_body("LATER", json!({"percent_off": 50}), 5, 5);
    later["valid_from"] = json!((Utc::now() + Duration::days(1)).to_rfc3339());
    assert_eq!(
        create_code(&app, &admin, later).await.status(),
        StatusCode::CREATED
    );

    let book = |code: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            app.post(
                "/bookings",
                Some(&token),
                json!({"flight_id": flight, "passengers": family(), "discount_code": code}),
            )
            .await
        }
    };
    for code in ["NOPE", "BIZ", "LATER", "no spaces allowed"] {
        let body = problem(
            book(code).await,
            StatusCode::CONFLICT,
            "DISCOUNT_UNAVAILABLE",
        )
        .await;
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
    assert_eq!(app.stream_count("booking").await, 0, "nothing was held");

    let r = book("tenoff").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["total"]["amount"], "767.00");
    assert_eq!(b["discount"]["amount"], "10.00");
    assert_eq!(b["discount_code"], "TENOFF");
    // Once per customer.
    problem(
        book("TENOFF").await,
        StatusCode::CONFLICT,
        "DISCOUNT_UNAVAILABLE",
    )
    .await;
    app.catch_up().await;
    let data = app
        .gql(
            Some(&token),
            "query($id: ID!) { booking(id: $id) { total { amount } discount { amount } discountCode } }",
            json!({"id": b["booking_id"]}),
        )
        .await;
    assert_eq!(data["booking"]["discount"]["amount"], "10.00");
    assert_eq!(data["booking"]["discountCode"], "TENOFF");
}

/// The race: 200 bookings at once, over four flights (four lanes
/// contending for the code's stream), for a code capped at 50.
#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn two_hundred_redemptions_of_a_code_capped_at_fifty(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let mut flights = Vec::new();
    for _ in 0..4 {
        flights.push(app.flight().await);
    }
    let r = create_code(
        &app,
        &admin,
        code_body("FIFTY", json!({"percent_off": 10}), 50, 10),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(app.customer().await.1);
    }
    let requests = (0..200).map(|i| {
        let token = tokens[i % tokens.len()].clone();
        let flight = flights[i % flights.len()];
        let app = &app;
        async move {
            let r = app
                .post(
                    "/bookings",
                    Some(&token),
                    json!({"flight_id": flight, "discount_code": "FIFTY",
                           "passengers": [person("Ada", json!({"cabin": "economy"}))]}),
                )
                .await;
            (r.status(), r.json::<Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(requests).await;
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    let refused = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "DISCOUNT_UNAVAILABLE")
        .count();
    assert_eq!(won.len(), 50, "exactly the cap is redeemed");
    assert_eq!(refused, 150, "everyone else is told the code is used up");
    assert!(won.iter().all(|b| b["discount"]["amount"] == "42.00"));

    // The log agrees: 50 bookings, 50 uses, each for one of them.
    assert_eq!(app.stream_count("booking").await, 50);
    let redeemed: Vec<String> = sqlx::query_scalar(
        "SELECT data->>'booking_id' FROM es_events WHERE event_type = 'DiscountRedeemed'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(redeemed.len(), 50);
    let booked: HashSet<String> = won
        .iter()
        .map(|b| b["booking_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(redeemed.into_iter().collect::<HashSet<_>>(), booked);
}
