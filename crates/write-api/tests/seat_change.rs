//! Changing a passenger's seat over HTTP: the new seat taken and the old one
//! given back in one append, 409s that name the seat, who may, bad
//! requests, a ticketed booking, and a race for a few seats.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use domain::booking::BookingStatus;
use domain::seats::{SeatInventory, SeatState};
use domain::values::Seat;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn, spawn_with, Options, TestApp, CARD_OK};
use uuid::Uuid;

async fn change(
    app: &TestApp,
    token: &str,
    booking: Uuid,
    passenger: &Value,
    body: Value,
) -> Response {
    let passenger = passenger.as_str().unwrap();
    app.post(
        &format!("/bookings/{booking}/passengers/{passenger}/seat"),
        Some(token),
        body,
    )
    .await
}

fn seat(s: &str) -> Seat {
    Seat::parse(s).unwrap()
}

async fn seat_events(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM es_events WHERE event_type IN ('SeatChanged', 'PassengerSeatChanged')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_seat_change_takes_the_new_seat_and_gives_the_old_one_back(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.customer().await;
    let b = app.booked(&token, flight, &["12A", "12B"]).await;
    let id: Uuid = b["booking_id"].as_str().unwrap().parse().unwrap();
    let passenger = b["passengers"][0]["passenger_id"].clone();
    let expires: chrono::DateTime<chrono::Utc> =
        b["hold_expires_at"].as_str().unwrap().parse().unwrap();

    let r = change(&app, &token, id, &passenger, json!({"seat": "14C"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let after: Value = r.json().await.unwrap();
    assert_eq!(after["booking_id"], json!(id));
    assert_eq!(after["seats"], json!(["14C", "12B"]));
    assert_eq!(after["passengers"][0]["passenger_id"], passenger);
    assert_eq!(after["passengers"][0]["seat"], "14C");
    assert_eq!(after["status"], "HELD");
    assert_eq!(after["position"].as_str().unwrap().len(), 32);

    // The seat inventory: 14C held as 12A was, 12A on sale again.
    let seats = app.seats(flight).await;
    let now = chrono::Utc::now();
    assert!(seats.is_available(seat("12A"), now));
    let SeatState::Held {
        booking_id,
        expires_at,
    } = seats.status_at(seat("14C"), now).unwrap()
    else {
        panic!("14C is not held");
    };
    assert_eq!(booking_id, id);
    assert_eq!(
        expires_at.timestamp_millis(),
        expires.timestamp_millis(),
        "the same hold"
    );
    assert_eq!(seats.seats_of(id), vec![seat("12B"), seat("14C")]);
    let booking = app.booking(id).await;
    assert_eq!(booking.seats(), vec![seat("14C"), seat("12B")]);

    // Both streams changed in one transaction.
    let txs: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT tx) FROM es_events WHERE event_type IN ('SeatChanged', 'PassengerSeatChanged')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((seat_events(&app).await, txs), (2, 1));

    // The read side, once caught up.
    app.catch_up().await;
    let data = app
        .gql(
            Some(&token),
            "query($f: ID!, $b: ID) { flight(id: $f) { availableSeats seatMap { seat status } }
               booking(id: $b) { seats passengers { id seat } } }",
            json!({"f": flight, "b": id}),
        )
        .await;
    let map: HashMap<&str, &str> = data["flight"]["seatMap"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["seat"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(map["12A"], "AVAILABLE");
    assert_eq!(map["14C"], "HELD");
    assert_eq!(map["12B"], "HELD");
    assert_eq!(data["flight"]["availableSeats"], 78, "counts unchanged");
    let passengers = data["booking"]["passengers"].as_array().unwrap();
    let moved = passengers
        .iter()
        .find(|p| p["id"] == passenger)
        .expect("the passenger");
    assert_eq!(moved["seat"], "14C");

    // The same seat again changes nothing.
    let r = change(&app, &token, id, &passenger, json!({"seat": "14C"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["seats"],
        json!(["14C", "12B"])
    );
    assert_eq!(seat_events(&app).await, 2);
    // The booking's own flight may be named.
    let r = change(
        &app,
        &token,
        id,
        &passenger,
        json!({"seat": "12A", "flight_id": flight}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(app.seats(flight).await.is_available(seat("14C"), now));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_held_or_sold_seat_is_a_409_naming_it_and_nothing_changes(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.customer().await;
    let (_, bob) = app.customer().await;
    let b = app.booked(&ada, flight, &["12A", "12B"]).await;
    let id: Uuid = b["booking_id"].as_str().unwrap().parse().unwrap();
    let passenger = b["passengers"][0]["passenger_id"].clone();
    app.booked(&bob, flight, &["14C"]).await;

    for taken in ["14C", "12B"] {
        let r = change(&app, &ada, id, &passenger, json!({"seat": taken})).await;
        let p = problem(r, StatusCode::CONFLICT, "SEAT_UNAVAILABLE").await;
        assert_eq!(p["seats"], json!([taken]));
    }
    assert_eq!(seat_events(&app).await, 0);
    assert_eq!(
        app.booking(id).await.seats(),
        vec![seat("12A"), seat("12B")]
    );
    let seats = app.seats(flight).await;
    assert_eq!(seats.seats_of(id), vec![seat("12A"), seat("12B")]);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn who_may_change_a_seat(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, ada) = app.customer().await;
    let (_, bob) = app.customer().await;
    let (_, agent) = app.user("agent").await;
    let (_, analyst) = app.user("analyst").await;
    let admin = app.admin_token().await;
    let b = app.booked(&ada, flight, &["12A"]).await;
    let id: Uuid = b["booking_id"].as_str().unwrap().parse().unwrap();
    let passenger = b["passengers"][0]["passenger_id"].clone();

    for other in [&bob, &analyst] {
        problem(
            change(&app, other, id, &passenger, json!({"seat": "14C"})).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
    let r = app
        .post(
            &format!(
                "/bookings/{id}/passengers/{}/seat",
                passenger.as_str().unwrap()
            ),
            None,
            json!({"seat": "14C"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seat_events(&app).await, 0);

    for (token, to) in [(&agent, "14C"), (&admin, "14D"), (&ada, "14E")] {
        let r = change(&app, token, id, &passenger, json!({"seat": to})).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    assert_eq!(app.booking(id).await.seats(), vec![seat("14E")]);

    let nobody = json!(Uuid::now_v7());
    problem(
        change(&app, &ada, id, &nobody, json!({"seat": "15A"})).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    problem(
        change(
            &app,
            &ada,
            Uuid::now_v7(),
            &passenger,
            json!({"seat": "15A"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn bad_seat_changes_are_refused_and_change_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let other_flight = app.flight().await;
    let (_, token) = app.customer().await;
    let r = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flight_id": flight, "passengers": [
                {"first_name": "Ada", "last_name": "L", "date_of_birth": "1990-12-10", "seat": "12A"},
                {"first_name": "Ann", "last_name": "L", "date_of_birth": "2026-01-01", "type": "infant", "travels_with": 0},
            ]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    let id: Uuid = b["booking_id"].as_str().unwrap().parse().unwrap();
    let adult = b["passengers"][0]["passenger_id"].clone();
    let infant = b["passengers"][1]["passenger_id"].clone();
    let cases = [
        (&adult, json!({"seat": "nope"}), "seat"),
        (&adult, json!({"seat": "60A"}), "seat"),
        (&adult, json!({"seat": "2A"}), "seat"),
        (
            &adult,
            json!({"seat": "14C", "flight_id": other_flight}),
            "flight_id",
        ),
        (&infant, json!({"seat": "14C"}), "seat"),
    ];
    for (passenger, body, field) in cases {
        let r = change(&app, &token, id, passenger, body.clone()).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    let r = change(&app, &token, id, &adult, json!({})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p = problem(
        change(&app, &token, id, &adult, json!({"seat": "2A"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cabin"),
        "{p}"
    );
    assert_eq!(seat_events(&app).await, 0);

    // A cancelled booking keeps its seats where they were.
    let r = app
        .post(
            &format!("/bookings/{id}/cancel"),
            Some(&token),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    problem(
        change(&app, &token, id, &adult, json!({"seat": "14C"})).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
    assert_eq!(seat_events(&app).await, 0);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_ticketed_passenger_moves_to_another_seat_still_sold(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let flight = app.flight().await;
    let (_, token) = app.customer().await;
    let b = app.booked(&token, flight, &["12A", "12B"]).await;
    let id: Uuid = b["booking_id"].as_str().unwrap().parse().unwrap();
    let passenger = b["passengers"][1]["passenger_id"].clone();
    assert_eq!(
        app.pay(&token, id, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for(id, BookingStatus::Ticketed, Duration::from_secs(20))
        .await;

    let r = change(&app, &token, id, &passenger, json!({"seat": "19F"})).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let after: Value = r.json().await.unwrap();
    assert_eq!(after["status"], "TICKETED");
    assert_eq!(after["seats"], json!(["12A", "19F"]));

    let seats = app.seats(flight).await;
    let now = chrono::Utc::now();
    assert_eq!(
        seats.status_at(seat("19F"), now),
        Some(SeatState::Sold { booking_id: id })
    );
    assert!(seats.is_available(seat("12B"), now));
    let booking = app.booking(id).await;
    assert_eq!(booking.status, Some(BookingStatus::Ticketed));
    let moved = booking
        .passengers
        .iter()
        .find(|p| json!(p.passenger_id) == passenger)
        .unwrap();
    assert_eq!(moved.seat, Some(seat("19F")));
    assert!(moved.ticket_number.is_some(), "the ticket stays");

    app.catch_up().await;
    let data = app
        .gql(
            Some(&token),
            "query($f: ID!) { flight(id: $f) { seatMap { seat status } } }",
            json!({"f": flight}),
        )
        .await;
    let map: HashMap<&str, &str> = data["flight"]["seatMap"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["seat"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!((map["19F"], map["12B"]), ("SOLD", "AVAILABLE"));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn racing_changes_and_bookings_never_put_two_bookings_on_a_seat(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let mut customers = Vec::new();
    for _ in 0..4 {
        customers.push(app.customer().await.1);
    }
    // Twelve one-passenger bookings (economy rows 10-11) change seats while
    // eight new bookings want the same four seats of row 15.
    let targets = ["15A", "15B", "15C", "15D"];
    let mut movers = Vec::new();
    for i in 0..12 {
        let token = customers[i % customers.len()].clone();
        let b = app.booked(&token, flight, &["economy"]).await;
        let id: Uuid = b["booking_id"].as_str().unwrap().parse().unwrap();
        movers.push((token, id, b["passengers"][0]["passenger_id"].clone()));
    }
    let changes = movers.iter().enumerate().map(|(i, (token, id, p))| {
        let app = &app;
        async move {
            let to = targets[i % targets.len()];
            let r = change(app, token, *id, p, json!({"seat": to})).await;
            (to, Some(*id), r.status())
        }
    });
    let bookings = (0..8).map(|i| {
        let app = &app;
        let token = customers[i % customers.len()].clone();
        async move {
            let to = targets[(i + 1) % targets.len()];
            let r = app.book(&token, flight, &[to]).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            let id = body["booking_id"].as_str().and_then(|s| s.parse().ok());
            (to, id, status)
        }
    });
    let (moved, booked) = futures::future::join(
        futures::future::join_all(changes),
        futures::future::join_all(bookings),
    )
    .await;

    let mut winners: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
    for (to, id, status) in moved.iter().chain(booked.iter()) {
        match *status {
            StatusCode::OK | StatusCode::CREATED => {
                winners.entry(to).or_default().push(id.unwrap())
            }
            StatusCode::CONFLICT => {}
            other => panic!("{to}: unexpected {other}"),
        }
    }
    assert_eq!(
        winners.len(),
        targets.len(),
        "every seat was won: {winners:?}"
    );
    for (to, won) in &winners {
        assert_eq!(won.len(), 1, "{to} was given to {won:?}");
    }

    // The inventory, folded from the log, agrees: each target seat is its
    // winner's, each mover still has exactly one seat, and it is the one
    // its booking names.
    let seats: SeatInventory = app.seats(flight).await;
    let now = chrono::Utc::now();
    for (to, won) in &winners {
        assert_eq!(
            seats.status_at(seat(to), now).unwrap().booking_id(),
            Some(won[0]),
            "{to}"
        );
    }
    let mut owners: HashMap<Seat, Uuid> = HashMap::new();
    for (_, id, _) in &movers {
        let held = seats.seats_of(*id);
        assert_eq!(held.len(), 1, "booking {id} has {held:?}");
        assert_eq!(app.booking(*id).await.seats(), held, "booking {id}");
        assert!(owners.insert(held[0], *id).is_none());
    }
    let total_held = seats
        .seats()
        .filter(|(_, slot)| slot.state.booking_id().is_some())
        .count();
    let new_bookings = booked
        .iter()
        .filter(|(_, _, s)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(
        total_held,
        movers.len() + new_bookings,
        "no seat lost or doubled"
    );
}
