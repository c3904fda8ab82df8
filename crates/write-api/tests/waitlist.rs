//! The waiting list over HTTP: joining a sold-out cabin, seats that come
//! back offered in line order as `HELD` bookings (never one seat to two),
//! unpaid offers passing on, paid ones accepted, and the rules around it.

use std::collections::HashSet;
use std::time::Duration;

use domain::booking::BookingStatus;
use domain::seats::SeatInventory;
use domain::waitlist::WaitlistStatus;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn, spawn_with, Options, TestApp, CARD_OK};
use uuid::Uuid;

fn party(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"first_name": "Grace", "last_name": format!("Hopper{i}"),
                   "date_of_birth": "1980-12-09", "email": "grace@example.com"})
        })
        .collect()
}

async fn join(
    app: &TestApp,
    token: &str,
    flight: Uuid,
    cabin: &str,
    n: usize,
) -> reqwest::Response {
    app.post(
        &format!("/flights/{flight}/waitlist"),
        Some(token),
        json!({"cabin": cabin, "passengers": party(n)}),
    )
    .await
}

/// Fills business (20 seats) with held bookings of 4, 4, 4, 4, 1, 1, 1, 1
/// seats; returns their ids in that order.
async fn sell_out_business(app: &TestApp, flight: Uuid) -> Vec<Uuid> {
    let (_, token) = app.customer().await;
    let mut ids = Vec::new();
    for size in [4, 4, 4, 4, 1, 1, 1, 1] {
        ids.push(app.book_id(&token, flight, &vec!["business"; size]).await);
    }
    let r = app.book(&token, flight, &["business"]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "business is sold out");
    ids
}

/// Polls the flight's line, replayed from the log, until `done` holds.
async fn wait_line(
    app: &TestApp,
    flight: Uuid,
    what: &str,
    done: impl Fn(&SeatInventory) -> bool,
) -> SeatInventory {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seats = app.seats(flight).await;
        if done(&seats) {
            return seats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the line never got to {what}: {:?}",
            seats
                .waitlist()
                .iter()
                .map(|e| (e.entry_id, e.status))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(seats: &SeatInventory, status: WaitlistStatus) -> usize {
    seats
        .waitlist()
        .iter()
        .filter(|e| e.status == status)
        .count()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn twenty_waiting_five_seats_back_five_offers_in_order_none_twice(pool: PgPool) {
    let app = spawn_with(
        pool,
        Options::with_sagas().waitlist_offer_ttl(Duration::from_secs(3)),
    )
    .await;
    let flight = app.flight().await;
    let held = sell_out_business(&app, flight).await;

    // Twenty customers join at once; each gets a distinct place.
    let mut customers = Vec::new();
    for _ in 0..20 {
        customers.push(app.customer().await);
    }
    let joins = customers.iter().map(|(_, token)| {
        let app = &app;
        async move {
            let r = join(app, token, flight, "business", 1).await;
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.unwrap()
        }
    });
    let answers = futures::future::join_all(joins).await;
    let places: HashSet<u64> = answers
        .iter()
        .map(|a| a["place"].as_u64().unwrap())
        .collect();
    assert_eq!(places, (1..=20).collect(), "places 1 to 20, each once");
    assert!(answers.iter().all(|a| a["position"].is_string()));
    let line: Vec<Uuid> = app
        .seats(flight)
        .await
        .waitlist()
        .iter()
        .map(|e| e.entry_id)
        .collect();
    assert_eq!(line.len(), 20);

    // Five seats come back at once: a 4-seat and a 1-seat booking cancelled.
    let (_, token) = app.customer().await;
    let admin = app.admin_token().await;
    let cancels = [held[0], held[4]].map(|b| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.post(
                &format!("/bookings/{b}/cancel"),
                Some(&admin),
                json!({"reason": "plans changed"}),
            )
            .await
            .status()
        }
    });
    for status in futures::future::join_all(cancels).await {
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    // Walk-ins racing the line get nothing while it is served.
    let walk_in = app.book(&token, flight, &["business"]).await;
    assert_eq!(walk_in.status(), StatusCode::CONFLICT);

    let seats = wait_line(&app, flight, "five offers", |s| {
        count(s, WaitlistStatus::Offered) == 5
    })
    .await;
    let offered: Vec<Uuid> = seats
        .waitlist()
        .iter()
        .filter(|e| e.status == WaitlistStatus::Offered)
        .map(|e| e.entry_id)
        .collect();
    assert_eq!(offered, line[..5], "the first five in line get the offers");
    let offers: Vec<Uuid> = seats
        .waitlist()
        .iter()
        .filter_map(|e| e.offer.map(|(booking, _)| booking))
        .collect();
    let mut offered_seats = HashSet::new();
    for booking in &offers {
        let b = app.booking(*booking).await;
        assert_eq!(
            b.status,
            Some(BookingStatus::Held),
            "an offer is a held booking"
        );
        for seat in seats.seats_of(*booking) {
            assert!(offered_seats.insert(seat), "seat {seat} offered twice");
        }
    }
    assert_eq!(offered_seats.len(), 5, "one seat per offer, five in all");
    assert_eq!(
        seats.available_in(domain::values::Cabin::Business, chrono::Utc::now()),
        0
    );
    assert_eq!(count(&seats, WaitlistStatus::Waiting), 15);

    // The sixth pays nothing and the offers lapse: the seats pass to the
    // next five. The first of those pays at once and is accepted.
    let seats = wait_line(&app, flight, "the next five offers", |s| {
        count(s, WaitlistStatus::Lapsed) == 5 && count(s, WaitlistStatus::Offered) == 5
    })
    .await;
    let second: Vec<Uuid> = seats
        .waitlist()
        .iter()
        .filter(|e| e.status == WaitlistStatus::Offered)
        .map(|e| e.entry_id)
        .collect();
    assert_eq!(
        second,
        line[5..10],
        "the lapsed offers pass on in line order"
    );
    for booking in &offers {
        app.wait_for(*booking, BookingStatus::Expired, Duration::from_secs(20))
            .await;
    }
    let next = seats.waitlist_entry(line[5]).unwrap();
    let (offer, _) = next.offer.unwrap();
    let owner = customers
        .iter()
        .find(|(id, _)| *id == next.customer_id)
        .map(|(_, t)| t.clone())
        .unwrap();
    let r = app.pay(&owner, offer, CARD_OK).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    app.wait_for(offer, BookingStatus::Ticketed, Duration::from_secs(20))
        .await;
    wait_line(&app, flight, "the paid offer accepted", |s| {
        s.waitlist_entry(line[5])
            .is_some_and(|e| e.status == WaitlistStatus::Accepted)
    })
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn the_line_is_for_sold_out_cabins_and_its_owners(pool: PgPool) {
    // No process manager: what the line claims stays visible.
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.customer().await;
    let (_, other) = app.customer().await;

    // Economy has seats: book them instead.
    problem(
        join(&app, &token, flight, "economy", 1).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
    let held = sell_out_business(&app, flight).await;

    // A seat named, an analyst, an unknown flight, an empty party.
    let r = app
        .post(
            &format!("/flights/{flight}/waitlist"),
            Some(&token),
            json!({"cabin": "business", "passengers": [{"first_name": "A", "last_name": "B",
                   "date_of_birth": "1990-01-01", "seat": "1A"}]}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let analyst = app.user("analyst").await.1;
    problem(
        join(&app, &analyst, flight, "business", 1).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        join(&app, &token, Uuid::now_v7(), "business", 1).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    problem(
        join(&app, &token, flight, "business", 0).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;

    let r = join(&app, &token, flight, "business", 2).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let entry: Value = r.json().await.unwrap();
    assert_eq!(entry["place"], 1);
    let entry_id = entry["entry_id"].as_str().unwrap().to_string();
    problem(
        join(&app, &token, flight, "business", 1).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;

    // One seat back does not fit a party of two: walk-ins may take it.
    app.post(
        &format!("/bookings/{}/cancel", held[4]),
        Some(&app.admin_token().await),
        json!({"reason": "changed"}),
    )
    .await;
    let (_, walker) = app.customer().await;
    app.book_id(&walker, flight, &["business"]).await;
    // Two back do: they are the line's until it is served.
    for b in [held[5], held[6]] {
        let r = app
            .post(
                &format!("/bookings/{b}/cancel"),
                Some(&app.admin_token().await),
                json!({"reason": "changed"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    problem(
        app.book(&walker, flight, &["business"]).await,
        StatusCode::CONFLICT,
        "SEAT_UNAVAILABLE",
    )
    .await;
    let seat = app
        .seats(flight)
        .await
        .available_seats_in(domain::values::Cabin::Business, chrono::Utc::now())
        .next()
        .unwrap()
        .to_string();
    problem(
        app.book(&walker, flight, &[seat.as_str()]).await,
        StatusCode::CONFLICT,
        "SEAT_UNAVAILABLE",
    )
    .await;

    // Only its customer (or staff) takes it out of line; twice is once.
    let leave = |token: String| {
        let app = &app;
        let path = format!("/waitlist/{entry_id}");
        async move {
            app.send(reqwest::Method::DELETE, &path, Some(&token), None)
                .await
        }
    };
    problem(
        leave(other.clone()).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let r = leave(token.clone()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers().contains_key("position"));
    assert_eq!(leave(token.clone()).await.status(), StatusCode::NO_CONTENT);
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/waitlist/{}", Uuid::now_v7()),
            Some(&token),
            None,
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    // Ids that are not UUIDs are problems, not plain-text rejections.
    let r = app
        .post(
            "/flights/not-a-uuid/waitlist",
            Some(&token),
            json!({"cabin": "business", "passengers": party(1)}),
        )
        .await;
    problem(r, StatusCode::BAD_REQUEST, "INVALID_ID").await;
    let r = app
        .send(
            reqwest::Method::DELETE,
            "/waitlist/null,null",
            Some(&token),
            None,
        )
        .await;
    problem(r, StatusCode::BAD_REQUEST, "INVALID_ID").await;
    // With the line empty, the seats are anyone's again.
    app.book_id(&walker, flight, &["business"]).await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_agent_queues_a_customer_who_then_owns_the_entry(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    sell_out_business(&app, flight).await;
    let (customer, customer_token) = app.customer().await;
    let (_, agent) = app.user("agent").await;

    let body = |who: Uuid| json!({"cabin": "business", "customer_id": who, "passengers": party(1)});
    problem(
        app.post(
            &format!("/flights/{flight}/waitlist"),
            Some(&agent),
            body(Uuid::now_v7()),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    // A customer cannot queue someone else.
    let (other, _) = app.customer().await;
    problem(
        app.post(
            &format!("/flights/{flight}/waitlist"),
            Some(&customer_token),
            body(other),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    let r = app
        .post(
            &format!("/flights/{flight}/waitlist"),
            Some(&agent),
            body(customer),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let entry: Uuid = r.json::<Value>().await.unwrap()["entry_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let seats = app.seats(flight).await;
    let queued = seats.waitlist_entry(entry).unwrap();
    assert_eq!(queued.customer_id, customer, "the entry is the customer's");
    assert_eq!(queued.status, WaitlistStatus::Waiting);
    // Theirs to leave.
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/waitlist/{entry}"),
            Some(&customer_token),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.seats(flight)
            .await
            .waitlist_entry(entry)
            .unwrap()
            .status,
        WaitlistStatus::Withdrawn
    );
}
