//! Overbooking races: many concurrent clients, one flight.

use std::collections::HashSet;

use domain::seats::{SeatInventory, SeatStatus};
use eventstore::EventStore;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::spawn;
use uuid::Uuid;

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn three_hundred_clients_for_sixty_seats(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(app.user("customer").await.1);
    }
    let requests = (0..300).map(|i| {
        let token = tokens[i % tokens.len()].clone();
        let app = &app;
        async move {
            let r = app.book(&token, flight, &["economy"]).await;
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(requests).await;
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    let lost = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "SEAT_UNAVAILABLE")
        .count();
    assert_eq!(won.len(), 60, "exactly the 60 economy seats are sold");
    assert_eq!(lost, 240, "everyone else is told the cabin is full");
    let seats: HashSet<&str> = won
        .iter()
        .map(|b| b["seats"][0].as_str().unwrap())
        .collect();
    assert_eq!(seats.len(), 60, "no seat twice");

    // The log agrees with the answers: 60 bookings, each holding its seat.
    assert_eq!(app.stream_count("booking").await, 60);
    let inventory = app
        .state
        .commands
        .load::<SeatInventory>(flight)
        .await
        .unwrap()
        .state;
    let now = chrono::Utc::now();
    let held: Vec<(String, Option<Uuid>)> = inventory
        .seat_map(now)
        .into_iter()
        .filter(|(_, cabin, _)| *cabin == domain::values::Cabin::Economy)
        .map(|(seat, _, state)| {
            (
                seat.to_string(),
                (state.status() == SeatStatus::Held)
                    .then(|| state.booking_id())
                    .flatten(),
            )
        })
        .collect();
    assert!(
        held.iter().all(|(_, b)| b.is_some()),
        "every economy seat is held"
    );
    for b in &won {
        let id: Uuid = b["booking_id"].as_str().unwrap().parse().unwrap();
        let seat = b["seats"][0].as_str().unwrap();
        assert!(
            held.contains(&(seat.to_string(), Some(id))),
            "{seat} is held by {id}"
        );
    }
    assert!(app.store.verify(None).await.unwrap().ok);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_hundred_clients_for_one_seat(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.user("customer").await;
    let requests = (0..100).map(|_| async {
        let r = app.book(&token, flight, &["12A"]).await;
        (r.status(), r.json::<Value>().await.unwrap())
    });
    let answers = futures::future::join_all(requests).await;
    let winners = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(winners, 1);
    for (s, b) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*s, StatusCode::CONFLICT);
        assert_eq!(b["seats"], json!(["12A"]));
    }
    assert_eq!(app.stream_count("booking").await, 1);
}
