//! Moving a booking to another flight of the same route over HTTP: both
//! flights' seats and the booking in one append, the re-priced total, the
//! refund and new tickets of a paid booking through its saga, the refusals,
//! and moves racing new bookings for the new flight's last seats.

use std::collections::HashMap;
use std::time::Duration;

use domain::booking::BookingStatus;
use domain::seats::SeatState;
use domain::values::Seat;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{flight_body, id_in, problem, spawn, spawn_with, Options, TestApp, CARD_OK};
use uuid::Uuid;

async fn move_booking(app: &TestApp, token: &str, booking: Uuid, from: Uuid, to: Uuid) -> Response {
    app.post(
        &format!("/bookings/{booking}/move"),
        Some(token),
        json!({"from_flight_id": from, "to_flight_id": to}),
    )
    .await
}

async fn set_fare(app: &TestApp, flight: Uuid, fare: &str) {
    let admin = app.admin_token().await;
    let r = app
        .send(
            Method::PUT,
            &format!("/flights/{flight}/fares"),
            Some(&admin),
            Some(json!({"cabin": "economy", "fare": fare})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Another flight of the contract's route (LHR-JFK), a day later.
async fn later_flight(app: &TestApp, economy_fare: &str) -> Uuid {
    let flight = app.flight_departing(chrono::Duration::days(31)).await;
    set_fare(app, flight, economy_fare).await;
    flight
}

async fn moves_logged(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM es_events WHERE event_type = 'BookingMoved'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Moves each booking from `from` to `to` while another request of the
/// same customer (`path`, `body`) runs on it, started 20 ms later for each
/// booking, so that some land before, some during and some after the move.
/// Each booking with the other request's answer and the move's.
async fn race_moves(
    app: &TestApp,
    token: &str,
    (from, to): (Uuid, Uuid),
    requests: Vec<(Uuid, String, Value)>,
) -> Vec<(Uuid, StatusCode, StatusCode)> {
    let races = requests
        .into_iter()
        .enumerate()
        .map(|(i, (id, path, body))| async move {
            let other = async {
                tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
                app.post(&path, Some(token), body).await
            };
            let (o, m) = futures::future::join(other, move_booking(app, token, id, from, to)).await;
            (id, o.status(), m.status())
        });
    futures::future::join_all(races).await
}

/// The flight a booking raced by [`race_moves`] must end on: the new one
/// if its move was accepted, else the old one. Any other answer fails.
fn ends_on(id: Uuid, moved: StatusCode, (from, to): (Uuid, Uuid)) -> Uuid {
    match moved {
        StatusCode::ACCEPTED => to,
        StatusCode::CONFLICT => from,
        other => panic!("{id}: the move answered {other}"),
    }
}

/// The app with sagas and a provider slow enough (1.5 s a call) that a
/// move's charge is still running while the test does something else.
async fn slow_provider(pool: PgPool) -> TestApp {
    let gateway =
        gateway::SimulatedGateway::new(pool.clone()).with_latency(Duration::from_millis(1500));
    let options = Options {
        gateway: Some(std::sync::Arc::new(gateway)),
        ..Options::with_sagas()
    };
    spawn_with(pool, options).await
}

/// Books 56 of the flight's 60 economy seats: 4 are left.
async fn four_left(app: &TestApp, flight: Uuid) {
    let (_, filler) = app.customer().await;
    for _ in 0..6 {
        app.booked(&filler, flight, &["economy"; 9]).await;
    }
    app.booked(&filler, flight, &["economy", "economy"]).await;
}

/// Asserts every economy seat of the flight has exactly one booking and
/// none is left; the inventory.
async fn sold_out(
    app: &TestApp,
    flight: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> domain::seats::SeatInventory {
    let seats = app.seats(flight).await;
    let mut owners: HashMap<Seat, Uuid> = HashMap::new();
    for (seat, slot) in seats.seats() {
        if let Some(b) = slot.state.booking_id() {
            assert!(owners.insert(seat, b).is_none());
        }
    }
    assert_eq!(owners.len(), 60, "sold out, not oversold");
    assert_eq!(seats.available_in(domain::values::Cabin::Economy, now), 0);
    seats
}

fn uuid(v: &Value) -> Uuid {
    v.as_str().unwrap().parse().unwrap()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_held_booking_moves_with_its_hold_and_its_new_price(pool: PgPool) {
    let app = spawn(pool).await;
    let from = app.flight().await;
    let to = later_flight(&app, "380.00").await;
    let (_, token) = app.customer().await;
    let b = app.booked(&token, from, &["12A", "economy"]).await;
    let id = uuid(&b["booking_id"]);
    let expires: chrono::DateTime<chrono::Utc> =
        b["hold_expires_at"].as_str().unwrap().parse().unwrap();

    let r = move_booking(&app, &token, id, from, to).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let after: Value = r.json().await.unwrap();
    assert_eq!(after["flight_id"], json!(to));
    assert_eq!(after["status"], "HELD");
    assert_eq!(
        after["total"],
        json!({"amount": "760.00", "currency": "USD"})
    );
    assert_eq!(
        after["refund"],
        json!({"amount": "0.00", "currency": "USD"})
    );
    assert_eq!(after["segments"][0]["flight_id"], json!(to));
    assert!(after["position"].is_string());
    let new_seats: Vec<Seat> = after["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Seat::parse(s.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(new_seats.len(), 2);

    // The old flight has its seats back; the new one holds the booking's
    // seats until the hold's old expiry.
    let now = chrono::Utc::now();
    let old = app.seats(from).await;
    assert!(old.seats_of(id).is_empty());
    assert!(old.is_available(Seat::parse("12A").unwrap(), now));
    let new = app.seats(to).await;
    let mut held = new.seats_of(id);
    held.sort();
    let mut named = new_seats.clone();
    named.sort();
    assert_eq!(held, named);
    for s in &held {
        let Some(SeatState::Held {
            booking_id,
            expires_at,
        }) = new.status_at(*s, now)
        else {
            panic!("{s} is not held");
        };
        assert_eq!(booking_id, id);
        assert_eq!(expires_at.timestamp_millis(), expires.timestamp_millis());
    }
    let booking = app.booking(id).await;
    assert_eq!(booking.info.as_ref().unwrap().flight_id, to);
    assert_eq!(booking.amount_due().unwrap().to_string(), "760.00 USD");

    // Both flights' seats and the booking in one transaction.
    let txs: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT tx::text::bigint FROM es_events \
         WHERE event_type IN ('BookingMoved', 'SeatsReleased', 'SeatsHeld') \
           AND recorded_at >= (SELECT recorded_at FROM es_events WHERE event_type = 'BookingMoved')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(txs.len(), 1, "one append: {txs:?}");

    // The read side follows the booking to its new flight.
    app.catch_up().await;
    let data = app
        .gql(
            Some(&token),
            "query($b: ID!) { booking(id: $b) { flightId status total { amount }
               segments { flightId seats } passengers { fare { amount } } } }",
            json!({"b": id}),
        )
        .await;
    assert_eq!(data["booking"]["flightId"], json!(to));
    assert_eq!(data["booking"]["total"]["amount"], "760.00");
    assert_eq!(data["booking"]["segments"][0]["flightId"], json!(to));
    for p in data["booking"]["passengers"].as_array().unwrap() {
        assert_eq!(p["fare"]["amount"], "380.00");
    }

    // The customer pays the new total, on the new flight.
    assert_eq!(
        app.pay(&token, id, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    let payment = app.payment_of(id).await.unwrap();
    assert_eq!(payment.requested.unwrap().amount.to_string(), "760.00 USD");
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn moves_that_cannot_be_made_change_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let from = app.flight().await;
    let to = later_flight(&app, "420.00").await;
    let admin = app.admin_token().await;
    let mut body = flight_body(chrono::Duration::days(31));
    body["destination"] = json!("BOS");
    let boston = id_in(app.post("/flights", Some(&admin), body).await, "flight_id").await;
    let (_, token) = app.customer().await;
    let (_, stranger) = app.customer().await;
    let id = app.book_id(&token, from, &["12A"]).await;

    for (from_id, to_id, status, code) in [
        (
            to,
            from,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            from,
            boston,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            from,
            from,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (from, Uuid::now_v7(), StatusCode::NOT_FOUND, "NOT_FOUND"),
    ] {
        let r = move_booking(&app, &token, id, from_id, to_id).await;
        problem(r, status, code).await;
    }
    problem(
        move_booking(&app, &stranger, id, from, to).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        move_booking(&app, &token, Uuid::now_v7(), from, to).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let r = app
        .post(
            &format!("/bookings/{id}/move"),
            Some(&token),
            json!({"from_flight_id": "nope", "to_flight_id": to}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A cancelled flight takes no one.
    let r = app
        .post(
            &format!("/flights/{to}/cancel"),
            Some(&admin),
            json!({"reason": "weather"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    problem(
        move_booking(&app, &token, id, from, to).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;

    assert_eq!(moves_logged(&app).await, 0);
    assert_eq!(app.booking(id).await.info.unwrap().flight_id, from);
    assert_eq!(app.seats(from).await.seats_of(id).len(), 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_ticketed_booking_moved_to_a_cheaper_flight_is_refunded_and_ticketed_anew(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let from = app.flight().await;
    let cheaper = later_flight(&app, "400.00").await;
    let (_, token) = app.customer().await;
    let id = app.book_id(&token, from, &["12A", "12B"]).await;
    assert_eq!(
        app.pay(&token, id, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    let first = app
        .wait_for(id, BookingStatus::Ticketed, Duration::from_secs(20))
        .await;
    let old_tickets: Vec<String> = first
        .passengers
        .iter()
        .map(|p| p.ticket_number.clone().unwrap().to_string())
        .collect();

    let r = move_booking(&app, &token, id, from, cheaper).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let after: Value = r.json().await.unwrap();
    assert_eq!(
        after["refund"],
        json!({"amount": "40.00", "currency": "USD"})
    );
    assert_eq!(after["status"], "CONFIRMED", "the old tickets are void");

    // The saga refunds the difference and tickets the new flight.
    let payment = app
        .wait_refunded(id, "40.00", Duration::from_secs(20))
        .await;
    let booking = app
        .wait_for(id, BookingStatus::Ticketed, Duration::from_secs(20))
        .await;
    assert_eq!(booking.info.as_ref().unwrap().flight_id, cheaper);
    let new_tickets: Vec<String> = booking
        .passengers
        .iter()
        .map(|p| p.ticket_number.clone().expect("a new ticket").to_string())
        .collect();
    for t in &new_tickets {
        assert!(!old_tickets.contains(t), "{t} was the old flight's");
    }
    let (captures, refunded) = app
        .provider_books(payment.requested.as_ref().unwrap().payment_id)
        .await;
    assert_eq!(captures, 1, "no second charge");
    assert_eq!(refunded.to_string(), "40.00");

    // Sold on the new flight, back on sale on the old one.
    let now = chrono::Utc::now();
    let new = app.seats(cheaper).await;
    let sold = new.seats_of(id);
    assert_eq!(sold.len(), 2);
    for s in &sold {
        assert_eq!(
            new.status_at(*s, now),
            Some(SeatState::Sold { booking_id: id })
        );
    }
    let old = app.seats(from).await;
    assert!(old.seats_of(id).is_empty());

    // A later cancellation of the new flight finds the booking there.
    let admin = app.admin_token().await;
    let r = app
        .post(
            &format!("/flights/{cheaper}/cancel"),
            Some(&admin),
            json!({"reason": "strike"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_for(id, BookingStatus::Cancelled, Duration::from_secs(20))
        .await;
    // Everything captured is back: the difference, then the rest.
    app.wait_refunded(id, "840.00", Duration::from_secs(20))
        .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn moves_racing_bookings_for_the_last_seats_never_oversell(pool: PgPool) {
    let app = spawn(pool).await;
    let from = app.flight().await;
    let to = later_flight(&app, "420.00").await;
    four_left(&app, to).await;
    let mut customers = Vec::new();
    for _ in 0..4 {
        customers.push(app.customer().await.1);
    }
    let mut movers = Vec::new();
    for i in 0..8 {
        let token = customers[i % customers.len()].clone();
        let id = app.book_id(&token, from, &["economy"]).await;
        movers.push((token, id));
    }
    let moves = movers.iter().map(|(token, id)| {
        let app = &app;
        async move {
            (
                Some(*id),
                move_booking(app, token, *id, from, to).await.status(),
            )
        }
    });
    let bookings = (0..8).map(|i| {
        let app = &app;
        let token = customers[i % customers.len()].clone();
        async move {
            let r = app.book(&token, to, &["economy"]).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (
                body["booking_id"].as_str().and_then(|s| s.parse().ok()),
                status,
            )
        }
    });
    let (moved, booked) = futures::future::join(
        futures::future::join_all(moves),
        futures::future::join_all(bookings),
    )
    .await;

    let mut won = 0;
    for (_, status) in moved.iter().chain(booked.iter()) {
        match *status {
            StatusCode::ACCEPTED | StatusCode::CREATED => won += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(won, 4, "exactly the four seats left were taken");

    // Every seat of the new flight has one booking; every mover has exactly
    // one seat, on the flight its booking names.
    let new = sold_out(&app, to, chrono::Utc::now()).await;
    let old = app.seats(from).await;
    for ((_, id), (_, status)) in movers.iter().zip(&moved) {
        let booking = app.booking(*id).await;
        let on = booking.info.as_ref().unwrap().flight_id;
        let (here, there) = (new.seats_of(*id), old.seats_of(*id));
        if *status == StatusCode::ACCEPTED {
            assert_eq!((on, here.len(), there.len()), (to, 1, 0), "{id}");
        } else {
            assert_eq!((on, here.len(), there.len()), (from, 0, 1), "{id}");
        }
        assert_eq!(booking.seats(), if on == to { here } else { there });
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_moved_family_keeps_its_discount_and_what_its_cancelled_child_took_off(pool: PgPool) {
    let app = spawn(pool).await;
    let from = app.flight().await;
    let to = later_flight(&app, "380.00").await;
    let admin = app.admin_token().await;
    let now = chrono::Utc::now();
    let r = app
        .post(
            "/discount-codes",
            Some(&admin),
            json!({"code": "FAMILY10", "percent_off": 10, "max_uses": 10, "max_uses_per_customer": 2,
                   "valid_from": (now - chrono::Duration::hours(1)).to_rfc3339(),
                   "valid_until": (now + chrono::Duration::days(60)).to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, token) = app.customer().await;
    let r = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flight_id": from, "discount_code": "FAMILY10", "passengers": [
                {"first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10", "seat": "12A"},
                {"first_name": "Byron", "last_name": "Lovelace", "date_of_birth": "2018-05-02", "type": "child", "seat": "12B"},
                {"first_name": "Annabella", "last_name": "Lovelace", "date_of_birth": "2026-01-15", "type": "infant", "travels_with": 0}]}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let family: Value = r.json().await.unwrap();
    assert_eq!(family["total"]["amount"], "699.30");
    let id = uuid(&family["booking_id"]);
    let byron = family["passengers"][1]["passenger_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/bookings/{id}/passengers/{byron}/cancel"),
            Some(&token),
            json!({"reason": "school trip"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let r = move_booking(&app, &token, id, from, to).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let after: Value = r.json().await.unwrap();
    // Ada 420.00 and the infant 42.00 less their 46.20 of the discount were
    // 415.80; at 380.00 and 38.00 they are 371.80, 44.00 less. Byron's
    // 283.50 stays what it was.
    assert_eq!(after["total"]["amount"], "655.30");
    assert_eq!(after["seats"].as_array().unwrap().len(), 1);
    let fares: Vec<&str> = after["passengers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["fare"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(fares, ["380.00", "38.00"]);
    let booking = app.booking(id).await;
    assert_eq!(booking.amount_due().unwrap().to_string(), "371.80 USD");
    assert_eq!(booking.value_left().unwrap().to_string(), "371.80 USD");
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_cancellation_racing_a_move_lands_and_leaves_no_seat_behind(pool: PgPool) {
    let app = spawn(pool).await;
    let from = app.flight().await;
    let to = later_flight(&app, "420.00").await;
    let (_, token) = app.customer().await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(app.book_id(&token, from, &["economy", "economy"]).await);
    }
    // Each booking is moved and cancelled at about the same time: the
    // cancellation, read on the old flight, may reach the old flight's lane
    // after the move.
    let requests = ids
        .iter()
        .map(|id| {
            let body = json!({"reason": "changed my mind"});
            (*id, format!("/bookings/{id}/cancel"), body)
        })
        .collect();
    let answers = race_moves(&app, &token, (from, to), requests).await;

    let (old, new) = (app.seats(from).await, app.seats(to).await);
    for (id, cancel, moved) in answers {
        // The cancellation lands whichever came first: on the old flight
        // before the move, or on the new one after it (a lane refuses a
        // booking that moved off its flight, and the command follows it).
        assert_eq!(cancel, StatusCode::ACCEPTED, "{id}");
        let booking = app.booking(id).await;
        assert_eq!(booking.status, Some(BookingStatus::Cancelled), "{id}");
        let on = booking.info.as_ref().unwrap().flight_id;
        assert_eq!(on, ends_on(id, moved, (from, to)));
        let (here, there) = (old.seats_of(id), new.seats_of(id));
        assert!(
            here.is_empty() && there.is_empty(),
            "{id}: {here:?} {there:?}"
        );
    }
    // Nobody holds a seat for a cancelled booking, on either flight.
    for inventory in [&old, &new] {
        for (seat, slot) in inventory.seats() {
            if let Some(b) = slot.state.booking_id() {
                let status = app.booking(b).await.status;
                assert_ne!(
                    status,
                    Some(BookingStatus::Cancelled),
                    "{seat} held for {b}"
                );
            }
        }
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_move_retried_with_its_idempotency_key_moves_once_and_answers_alike(pool: PgPool) {
    let app = spawn(pool).await;
    let from = app.flight().await;
    let to = later_flight(&app, "400.00").await;
    let (_, token) = app.customer().await;
    let id = app.book_id(&token, from, &["economy"]).await;
    let body = json!({"from_flight_id": from, "to_flight_id": to});
    // Ten copies at once, as a client retrying a request it lost.
    let retries = (0..10).map(|_| {
        app.client
            .post(app.url(&format!("/bookings/{id}/move")))
            .bearer_auth(&token)
            .header("idempotency-key", "move-1")
            .json(&body)
            .send()
    });
    let mut answers = Vec::new();
    for r in futures::future::join_all(retries).await {
        let r = r.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{}",
            r.text().await.unwrap()
        );
        let mut v: Value = r.json().await.unwrap();
        v.as_object_mut().unwrap().remove("position");
        answers.push(v);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0]["flight_id"], json!(to));
    assert_eq!(moves_logged(&app).await, 1);
    assert_eq!(app.seats(to).await.seats_of(id).len(), 1);
    assert!(app.seats(from).await.seats_of(id).is_empty());
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_seat_change_racing_a_move_lands_on_the_flight_the_booking_ends_on(pool: PgPool) {
    let app = spawn(pool).await;
    let from = app.flight().await;
    let to = later_flight(&app, "420.00").await;
    let (_, token) = app.customer().await;
    let mut booked = Vec::new();
    for _ in 0..10 {
        let b = app.booked(&token, from, &["economy"]).await;
        booked.push((
            uuid(&b["booking_id"]),
            uuid(&b["passengers"][0]["passenger_id"]),
        ));
    }
    // Each passenger asks for a seat of row 19 while their booking moves.
    let seats: HashMap<Uuid, String> = booked
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, format!("19{}", ['A', 'B', 'C', 'D', 'E', 'F'][i % 6])))
        .collect();
    let requests = booked
        .iter()
        .map(|(id, passenger)| {
            let path = format!("/bookings/{id}/passengers/{passenger}/seat");
            (*id, path, json!({"seat": seats[id]}))
        })
        .collect();
    let answers = race_moves(&app, &token, (from, to), requests).await;

    let (old, new) = (app.seats(from).await, app.seats(to).await);
    for (id, change, moved) in answers {
        let seat = &seats[&id];
        let booking = app.booking(id).await;
        let on = booking.info.as_ref().unwrap().flight_id;
        assert_eq!(on, ends_on(id, moved, (from, to)));
        let (here, there) = (old.seats_of(id), new.seats_of(id));
        let (mine, other) = if on == to {
            (there, here)
        } else {
            (here, there)
        };
        assert!(
            other.is_empty(),
            "{id} kept {other:?} on the flight it left"
        );
        assert_eq!(
            booking.seats(),
            mine,
            "{id}: the booking and the seat map agree"
        );
        // Seats of row 19 are asked for by one booking each (or two, six
        // apart, on different flights or one after the other): a change
        // that was refused saw its seat taken, never the move.
        if change == StatusCode::OK {
            assert_eq!(mine.len(), 1);
            // Not moved: the change is the last word on its seat.
            if moved != StatusCode::ACCEPTED {
                assert_eq!(&mine[0].to_string(), seat, "{id}");
            }
        } else {
            assert_eq!(change, StatusCode::CONFLICT, "{id}: {seat}");
        }
    }
}

/// Waits until the booking's saga is done with it and no move waits for a
/// difference; the booking then.
async fn wait_settled(app: &TestApp, id: Uuid) -> domain::booking::Booking {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let b = app.booking(id).await;
        let saga = app.saga_status(id).await;
        if b.pending_move.is_none()
            && b.status == Some(BookingStatus::Ticketed)
            && matches!(saga.as_deref(), Some("COMPLETED"))
            // Held with its difference's payment: the saga has settled
            // that payment once it is no longer pending.
            && !b.supplements.is_empty()
        {
            let p = app.payment(b.supplements.last().unwrap().payment_id).await;
            if p.status != Some(domain::payment::PaymentStatus::Pending) {
                return b;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "booking {id} did not settle: {:?}, saga {saga:?}, pending {:?}",
            b.status,
            b.pending_move
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A paid booking and its ticket numbers, on `from`.
async fn ticketed(app: &TestApp, token: &str, from: Uuid) -> (Uuid, Vec<String>) {
    let id = app.book_id(token, from, &["12A", "12B"]).await;
    assert_eq!(
        app.pay(token, id, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    let b = app
        .wait_for(id, BookingStatus::Ticketed, Duration::from_secs(20))
        .await;
    let tickets = b
        .passengers
        .iter()
        .map(|p| p.ticket_number.clone().unwrap().to_string())
        .collect();
    (id, tickets)
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_ticketed_booking_moved_to_a_dearer_flight_pays_the_difference_then_moves(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let from = app.flight().await;
    let dearer = later_flight(&app, "500.00").await;
    let (_, token) = app.customer().await;
    let (id, old_tickets) = ticketed(&app, &token, from).await;
    let first = app.payment_of(id).await.unwrap();

    let r = move_booking(&app, &token, id, from, dearer).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["charge"],
        json!({"amount": "160.00", "currency": "USD"})
    );
    assert_eq!(
        answer["refund"],
        json!({"amount": "0.00", "currency": "USD"})
    );
    // Still on its flight, paid as it was, until the difference is in.
    assert_eq!(uuid(&answer["flight_id"]), from);
    assert_eq!(uuid(&answer["pending_move"]["to_flight_id"]), dearer);
    let supplement = uuid(&answer["pending_move"]["payment_id"]);

    let booking = wait_settled(&app, id).await;
    let info = booking.info.as_ref().unwrap();
    assert_eq!(info.flight_id, dearer);
    assert_eq!(info.total.amount().to_string(), "1000.00");
    assert_eq!(
        booking.amount_paid().unwrap().amount().to_string(),
        "1000.00"
    );
    for p in &booking.passengers {
        let t = p.ticket_number.clone().expect("a new ticket").to_string();
        assert!(!old_tickets.contains(&t), "{t} was the old flight's");
    }

    // The difference was charged once, on the same card, and invoiced on
    // its own; the first payment is untouched.
    let paid = app.payment(supplement).await;
    assert_eq!(paid.captured.unwrap().amount().to_string(), "160.00");
    assert_eq!(
        paid.requested.as_ref().unwrap().card_last4,
        first.requested.as_ref().unwrap().card_last4
    );
    let invoice = paid.invoice.expect("the difference is invoiced");
    assert_eq!(invoice.total.amount().to_string(), "160.00");
    assert_eq!(invoice.lines.len(), 1);
    assert_eq!(app.provider_books(supplement).await, (1, 0.into()));
    let first_id = first.requested.as_ref().unwrap().payment_id;
    assert_eq!(app.provider_books(first_id).await, (1, 0.into()));
    let first_now = app.payment(first_id).await;
    assert_eq!(first_now.captured.unwrap().amount().to_string(), "840.00");
    let first_invoice = first_now.invoice.expect("the first payment's invoice");
    assert_eq!(first_invoice.total.amount().to_string(), "840.00");

    // Sold on the new flight, back on sale on the old one.
    let now = chrono::Utc::now();
    let new = app.seats(dearer).await;
    let sold = new.seats_of(id);
    assert_eq!(sold.len(), 2);
    for s in &sold {
        assert_eq!(
            new.status_at(*s, now),
            Some(SeatState::Sold { booking_id: id })
        );
    }
    assert!(app.seats(from).await.seats_of(id).is_empty());
    assert_eq!(moves_logged(&app).await, 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_declined_difference_leaves_the_booking_where_it_was_and_frees_the_held_seats(
    pool: PgPool,
) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let from = app.flight().await;
    let dearer = later_flight(&app, "500.00").await;
    let (_, token) = app.customer().await;
    let (id, old_tickets) = ticketed(&app, &token, from).await;
    // The card has run dry since the booking was paid.
    sqlx::query("UPDATE gateway_sim_cards SET behaviour = 'insufficient_funds'")
        .execute(&app.pool)
        .await
        .unwrap();

    let r = move_booking(&app, &token, id, from, dearer).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let answer: Value = r.json().await.unwrap();
    let supplement = uuid(&answer["pending_move"]["payment_id"]);

    let booking = wait_settled(&app, id).await;
    // Where it was, at its price, with its tickets.
    let info = booking.info.as_ref().unwrap();
    assert_eq!(info.flight_id, from);
    assert_eq!(info.total.amount().to_string(), "840.00");
    let tickets: Vec<String> = booking
        .passengers
        .iter()
        .map(|p| p.ticket_number.clone().unwrap().to_string())
        .collect();
    assert_eq!(tickets, old_tickets);
    assert_eq!(booking.refund, None, "nothing was taken, nothing is owed");
    let declined = app.payment(supplement).await;
    assert_eq!(
        declined.status,
        Some(domain::payment::PaymentStatus::Declined)
    );
    assert_eq!(app.provider_books(supplement).await, (0, 0.into()));
    // Its own seats are still sold to it; the held ones went back.
    assert_eq!(app.seats(from).await.seats_of(id).len(), 2);
    assert!(app.seats(dearer).await.seats_of(id).is_empty());
    assert_eq!(moves_logged(&app).await, 0);
    let abandoned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM es_events WHERE event_type = 'BookingMoveAbandoned'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(abandoned, 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn while_the_difference_is_charged_the_booking_waits_then_cancels_refunding_both_charges(
    pool: PgPool,
) {
    // The move's charge is still running when the customer cancels.
    let app = slow_provider(pool).await;
    let from = app.flight().await;
    let dearer = later_flight(&app, "500.00").await;
    let (_, token) = app.customer().await;
    let (id, _) = ticketed(&app, &token, from).await;

    let r = move_booking(&app, &token, id, from, dearer).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let path = format!("/bookings/{id}/cancel");
    let cancel = |reason: &'static str| app.post(&path, Some(&token), json!({"reason": reason}));
    problem(
        cancel("too early").await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
    assert_eq!(app.booking(id).await.status, Some(BookingStatus::Ticketed));

    let booking = wait_settled(&app, id).await;
    assert_eq!(booking.info.as_ref().unwrap().flight_id, dearer);
    let r = cancel("plans changed").await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let cancelled = app
        .wait_for(id, BookingStatus::Cancelled, Duration::from_secs(30))
        .await;
    // The policy's refund, taken from the difference first, then the rest
    // from the first payment; the provider's books say the same.
    let owed = cancelled.refund.unwrap().amount();
    assert!(owed >= "160.00".parse().unwrap(), "refund {owed}");
    // The cancellation's wake-up reaches the saga after the answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.refunded_in_all(id).await != owed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "refunded {} of {owed}",
            app.refunded_in_all(id).await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let supplement = cancelled.supplements[0].payment_id;
    assert_eq!(
        app.provider_books(supplement).await,
        (1, "160.00".parse().unwrap())
    );
    let first = cancelled.payment_id.unwrap();
    let (_, from_first) = app.provider_books(first).await;
    assert_eq!(from_first + rust_decimal::Decimal::from(160), owed);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn paid_moves_to_a_dearer_flight_racing_bookings_for_its_last_seats_never_oversell(
    pool: PgPool,
) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let from = app.flight().await;
    let to = later_flight(&app, "500.00").await;
    four_left(&app, to).await;
    let mut movers = Vec::new();
    for _ in 0..6 {
        let (_, token) = app.customer().await;
        let id = app.book_id(&token, from, &["economy"]).await;
        assert_eq!(
            app.pay(&token, id, CARD_OK).await.status(),
            StatusCode::ACCEPTED
        );
        movers.push((token, id));
    }
    for (_, id) in &movers {
        app.wait_for(*id, BookingStatus::Ticketed, Duration::from_secs(20))
            .await;
    }
    let (_, walk_in) = app.customer().await;
    let moves = movers.iter().map(|(token, id)| {
        let app = &app;
        async move { move_booking(app, token, *id, from, to).await.status() }
    });
    let bookings = (0..6).map(|_| {
        let (app, token) = (&app, &walk_in);
        async move { app.book(token, to, &["economy"]).await.status() }
    });
    let (moved, booked) = futures::future::join(
        futures::future::join_all(moves),
        futures::future::join_all(bookings),
    )
    .await;
    let mut won = 0;
    for status in moved.iter().chain(booked.iter()) {
        match *status {
            StatusCode::ACCEPTED | StatusCode::CREATED => won += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(won, 4, "exactly the four seats left were taken");

    // Each accepted move was charged its difference once and ended on the
    // new flight; each refused one stayed, paid once.
    for ((_, id), status) in movers.iter().zip(&moved) {
        let (on, payments) = if *status == StatusCode::ACCEPTED {
            let b = wait_settled(&app, *id).await;
            let s = b.supplements[0].payment_id;
            assert_eq!(app.provider_books(s).await, (1, 0.into()), "{id}");
            (to, 2)
        } else {
            (from, 1)
        };
        let b = app.booking(*id).await;
        assert_eq!(b.info.as_ref().unwrap().flight_id, on, "{id}");
        assert_eq!(b.supplements.len() + 1, payments, "{id}");
        let (here, there) = (
            app.seats(to).await.seats_of(*id),
            app.seats(from).await.seats_of(*id),
        );
        let expected = if on == to { (1, 0) } else { (0, 1) };
        assert_eq!((here.len(), there.len()), expected, "{id}");
    }
    sold_out(&app, to, chrono::Utc::now()).await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_flight_cancelled_while_a_move_off_it_is_paid_cancels_the_others_and_lets_the_mover_go(
    pool: PgPool,
) {
    // The move's charge is still running when the admin cancels the flight the booking is leaving.
    let app = slow_provider(pool).await;
    let from = app.flight().await;
    let dearer = later_flight(&app, "500.00").await;
    let (_, token) = app.customer().await;
    let (mover, _) = ticketed(&app, &token, from).await;
    let (_, other) = app.customer().await;
    let stayer = app.book_id(&other, from, &["economy"]).await;

    let r = move_booking(&app, &token, mover, from, dearer).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let admin = app.admin_token().await;
    let r = app
        .post(
            &format!("/flights/{from}/cancel"),
            Some(&admin),
            json!({"reason": "strike"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // The other booking is cancelled without waiting for the move; the
    // mover leaves the cancelled flight once its difference is in, and
    // keeps flying.
    app.wait_for(stayer, BookingStatus::Cancelled, Duration::from_secs(30))
        .await;
    let moved = wait_settled(&app, mover).await;
    assert_eq!(moved.info.as_ref().unwrap().flight_id, dearer);
    assert_eq!(moved.refund, None);
    assert_eq!(app.seats(dearer).await.seats_of(mover).len(), 2);
    assert!(app.seats(from).await.seats_of(mover).is_empty());
    // The flight's cancellation saga ends, the mover skipped as moved off.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status: Option<(String, Option<String>, i32)> = sqlx::query_as(
            "SELECT status, last_error, attempts FROM sagas \
             WHERE flight_id = $1 AND kind = 'flight_cancellation'",
        )
        .bind(from)
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if status.as_ref().is_some_and(|s| s.0 == "COMPLETED") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "flight cancellation saga is {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.booking(mover).await.status,
        Some(BookingStatus::Ticketed)
    );
}
