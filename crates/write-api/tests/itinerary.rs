//! Bookings of several flights over HTTP: every flight's seats held in one
//! append or none, paid once, ticketed per passenger per flight, cancelled
//! and refunded whole when one of its flights is cancelled, and two-leg
//! bookings racing one-leg bookings for a connection's last seats.

use std::time::Duration;

use domain::booking::BookingStatus;
use domain::values::{Cabin, Seat};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn, spawn_with, Options, TestApp, CARD_DECLINED, CARD_OK};
use uuid::Uuid;

fn passenger(i: usize, extra: Value) -> Value {
    let mut p = json!({"first_name": "Ada", "last_name": format!("Lovelace{i}"),
                       "date_of_birth": "1990-12-10", "email": "ada@example.com"});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// Books `n` passengers in economy on every flight of `flights`.
async fn book_trip(app: &TestApp, token: &str, flights: &[Uuid], n: usize) -> Response {
    let passengers: Vec<Value> = (0..n)
        .map(|i| passenger(i, json!({"cabin": "economy"})))
        .collect();
    app.post(
        "/bookings",
        Some(token),
        json!({"flights": flights, "passengers": passengers}),
    )
    .await
}

/// Revenue per route (origin-destination): captured, refunded.
async fn revenue_by_route(app: &TestApp) -> Vec<(String, String, String)> {
    app.catch_up().await;
    let rows: Vec<(String, String, rust_decimal::Decimal, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT origin, destination, sum(gross), sum(refunds) FROM rm_revenue_daily \
             GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(o, d, gross, refunds)| (format!("{o}-{d}"), gross.to_string(), refunds.to_string()))
        .collect()
}

/// Asserts a booking was made (201); its answer and id.
async fn created(r: Response) -> (Value, Uuid) {
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let body: Value = r.json().await.unwrap();
    let id = uuid(&body["booking_id"]);
    (body, id)
}

fn uuid(v: &Value) -> Uuid {
    v.as_str().unwrap().parse().unwrap()
}

/// Fills `flight`'s economy until `left` seats remain.
async fn leave(app: &TestApp, flight: Uuid, left: usize) {
    let (_, filler) = app.customer().await;
    let mut to_fill = 60 - left;
    while to_fill > 0 {
        let n = to_fill.min(9);
        app.booked(&filler, flight, &vec!["economy"; n]).await;
        to_fill -= n;
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_connection_is_held_paid_and_ticketed_on_both_flights(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let (a, b) = app.trip(chrono::Duration::hours(2)).await;
    let (_, token) = app.customer().await;

    let (body, id) = created(book_trip(&app, &token, &[a, b], 2).await).await;
    // 2 x 420.00 + 2 x 150.00, each passenger's fare over both flights.
    assert_eq!(body["total"]["amount"], "1140.00", "{body}");
    assert_eq!(body["passengers"][0]["fare"]["amount"], "570.00");
    let segments = body["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    for (segment, flight) in segments.iter().zip([a, b]) {
        assert_eq!(uuid(&segment["flight_id"]), flight);
        let named: Vec<Seat> = segment["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Seat::parse(s.as_str().unwrap()).unwrap())
            .collect();
        let mut held = app.seats(flight).await.seats_of(id);
        held.sort();
        let mut named_sorted = named.clone();
        named_sorted.sort();
        assert_eq!(
            named_sorted, held,
            "the answer names the seats each flight holds"
        );
    }

    assert_eq!(
        app.pay(&token, id, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    let booking = app
        .wait_for(id, BookingStatus::Ticketed, Duration::from_secs(30))
        .await;
    // A ticket per passenger per flight, all different.
    let mut numbers = vec![];
    for p in &booking.passengers {
        numbers.push(p.ticket_number.clone().expect("first flight's ticket"));
        assert_eq!(p.legs.len(), 1);
        numbers.push(
            p.legs[0]
                .ticket_number
                .clone()
                .expect("connection's ticket"),
        );
    }
    let distinct: std::collections::HashSet<_> = numbers.iter().collect();
    assert_eq!(distinct.len(), 4);
    // Sold on both flights; one capture of the whole price, one invoice
    // with a line per passenger per flight.
    let now = chrono::Utc::now();
    for flight in [a, b] {
        let seats = app.seats(flight).await;
        let theirs = seats.seats_of(id);
        assert_eq!(theirs.len(), 2);
        for s in theirs {
            assert_eq!(
                seats.status_at(s, now),
                Some(domain::seats::SeatState::Sold { booking_id: id })
            );
        }
    }
    let payment = app.payment_of(id).await.unwrap();
    assert_eq!(payment.captured.unwrap().amount().to_string(), "1140.00");
    let invoice = payment.invoice.as_ref().expect("invoiced");
    assert_eq!(invoice.lines.len(), 4);
    assert_eq!(invoice.total.amount().to_string(), "1140.00");

    // The read side lists the four tickets, each with its flight.
    app.catch_up().await;
    let data = app
        .gql(
            Some(&token),
            "query($id: ID) { booking(id: $id) { status tickets { flightId number } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(data["booking"]["status"], "TICKETED");
    let mut read: Vec<(String, String)> = data["booking"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["flightId"].as_str().unwrap().to_owned(),
                t["number"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    read.sort();
    let mut logged: Vec<(String, String)> = booking
        .passengers
        .iter()
        .flat_map(|p| {
            [
                (a.to_string(), p.ticket_number.clone().unwrap().to_string()),
                (
                    b.to_string(),
                    p.legs[0].ticket_number.clone().unwrap().to_string(),
                ),
            ]
        })
        .collect();
    logged.sort();
    assert_eq!(read, logged);

    // Analysts see each flight's part of the capture on its own route.
    assert_eq!(
        revenue_by_route(&app).await,
        vec![
            ("JFK-BOS".to_owned(), "300.00".to_owned(), "0".to_owned()),
            ("LHR-JFK".to_owned(), "840.00".to_owned(), "0".to_owned()),
        ]
    );
}

/// Asserts `booking` holds and owns no seat on any of `flights`, and
/// their economy cabins are whole again.
async fn nothing_kept(app: &TestApp, booking: Uuid, flights: &[Uuid]) {
    let now = chrono::Utc::now();
    for flight in flights {
        let seats = app.seats(*flight).await;
        assert!(seats.seats_of(booking).is_empty(), "{flight} keeps seats");
        assert_eq!(seats.available_in(Cabin::Economy, now), 60);
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_unpaid_itinerary_gives_every_flights_seats_back_when_its_hold_runs_out(pool: PgPool) {
    let options = Options::with_sagas().hold_ttl(Duration::from_secs(1));
    let app = spawn_with(pool, options).await;
    let (a, b) = app.trip(chrono::Duration::hours(2)).await;
    let (_, token) = app.customer().await;
    let (_, id) = created(book_trip(&app, &token, &[a, b], 2).await).await;

    app.wait_for(id, BookingStatus::Expired, Duration::from_secs(30))
        .await;
    nothing_kept(&app, id, &[a, b]).await;
    let r = app.pay(&token, id, CARD_OK).await;
    problem(r, StatusCode::CONFLICT, "INVALID_STATE").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_declined_card_gives_every_flights_seats_back(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let (a, b) = app.trip(chrono::Duration::hours(2)).await;
    let (_, token) = app.customer().await;
    let (_, id) = created(book_trip(&app, &token, &[a, b], 2).await).await;

    assert_eq!(
        app.pay(&token, id, CARD_DECLINED).await.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for(id, BookingStatus::PaymentFailed, Duration::from_secs(30))
        .await;
    nothing_kept(&app, id, &[a, b]).await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_itinerary_one_of_whose_flights_is_full_holds_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let (a, b) = app.trip(chrono::Duration::hours(2)).await;
    leave(&app, b, 1).await;
    let (_, token) = app.customer().await;
    let bookings_before = app.stream_count("booking").await;

    let r = book_trip(&app, &token, &[a, b], 2).await;
    problem(r, StatusCode::CONFLICT, "SEAT_UNAVAILABLE").await;
    // Not a seat held on the first flight, no booking made.
    let now = chrono::Utc::now();
    assert_eq!(app.seats(a).await.available_in(Cabin::Economy, now), 60);
    assert_eq!(app.seats(b).await.available_in(Cabin::Economy, now), 1);
    assert_eq!(app.stream_count("booking").await, bookings_before);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_bad_itinerary_is_refused_and_holds_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let (a, b) = app.trip(chrono::Duration::hours(2)).await;
    let (_, tight) = app.trip(chrono::Duration::minutes(30)).await;
    let (_, token) = app.customer().await;
    let economy = || vec![passenger(0, json!({"cabin": "economy"}))];

    let cases = [
        // One flight is booked with `flight_id`.
        json!({"flights": [a], "passengers": economy()}),
        // Both, or neither.
        json!({"flight_id": a, "flights": [a, b], "passengers": economy()}),
        json!({"passengers": economy()}),
        // Backwards, twice the same flight, too short a connection.
        json!({"flights": [b, a], "passengers": economy()}),
        json!({"flights": [a, a], "passengers": economy()}),
        json!({"flights": [a, tight], "passengers": economy()}),
        // Seats by flight: a string, a flight not in the trip, a flight
        // without a seat or a cabin.
        json!({"flights": [a, b], "passengers": [passenger(0, json!({"seat": "12A"}))]}),
        json!({"flights": [a, b], "passengers": [passenger(0, json!({"seat": {Uuid::now_v7().to_string(): "12A"}, "cabin": "economy"}))]}),
        json!({"flights": [a, b], "passengers": [passenger(0, json!({"seat": {a.to_string(): "12A"}}))]}),
        // A seat map on a booking of one flight.
        json!({"flight_id": a, "passengers": [passenger(0, json!({"seat": {a.to_string(): "12A"}}))]}),
    ];
    for body in cases {
        let r = app.post("/bookings", Some(&token), body.clone()).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {text}");
    }
    let r = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flights": [a, Uuid::now_v7()], "passengers": economy()}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(app.stream_count("booking").await, 0);
    let now = chrono::Utc::now();
    assert_eq!(app.seats(a).await.available_in(Cabin::Economy, now), 60);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_passengers_seat_changes_on_one_flight_and_a_passenger_leaves_every_flight(pool: PgPool) {
    let app = spawn(pool).await;
    let (a, b) = app.trip(chrono::Duration::hours(2)).await;
    let (_, token) = app.customer().await;
    let passengers = vec![
        passenger(
            0,
            json!({"seat": {a.to_string(): "12A", b.to_string(): "14A"}}),
        ),
        passenger(
            1,
            json!({"seat": {b.to_string(): "14B"}, "cabin": "economy"}),
        ),
    ];
    let r = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flights": [a, b], "passengers": passengers}),
        )
        .await;
    let (body, id) = created(r).await;
    assert_eq!(body["segments"][1]["seats"], json!(["14A", "14B"]));
    let first = uuid(&body["passengers"][0]["passenger_id"]);
    let second = uuid(&body["passengers"][1]["passenger_id"]);

    // The connection's seat changes; the first flight's stays.
    let path = format!("/bookings/{id}/passengers/{first}/seat");
    let r = app.post(&path, Some(&token), json!({"seat": "15C"})).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = app
        .post(&path, Some(&token), json!({"seat": "15C", "flight_id": b}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let now = chrono::Utc::now();
    let on_b = app.seats(b).await;
    assert!(on_b.is_available(Seat::parse("14A").unwrap(), now));
    assert!(!on_b.is_available(Seat::parse("15C").unwrap(), now));
    let on_a = app.seats(a).await;
    assert!(!on_a.is_available(Seat::parse("12A").unwrap(), now));

    // The second passenger leaves: their seat on each flight goes back.
    let their_first = app.booking(id).await.passengers[1].seat.unwrap();
    let r = app
        .post(
            &format!("/bookings/{id}/passengers/{second}/cancel"),
            Some(&token),
            json!({"reason": "not coming"}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    let now = chrono::Utc::now();
    assert!(app.seats(a).await.is_available(their_first, now));
    assert!(app
        .seats(b)
        .await
        .is_available(Seat::parse("14B").unwrap(), now));
    let left = app.booking(id).await;
    assert_eq!(left.passengers.len(), 1);
    assert_eq!(left.seats_on(b), vec![Seat::parse("15C").unwrap()]);

    // The read side shows each flight with the seats left on it.
    app.catch_up().await;
    let data = app
        .gql(
            Some(&token),
            "query($id: ID) { booking(id: $id) { segments { flightId seats } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        data["booking"]["segments"],
        json!([{"flightId": a, "seats": ["12A"]}, {"flightId": b, "seats": ["15C"]}])
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_cancelled_connection_cancels_and_refunds_the_whole_trip(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let (a, b) = app.trip(chrono::Duration::hours(2)).await;
    let (_, token) = app.customer().await;
    let (_, id) = created(book_trip(&app, &token, &[a, b], 2).await).await;
    assert_eq!(
        app.pay(&token, id, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for(id, BookingStatus::Ticketed, Duration::from_secs(30))
        .await;

    // The connection, not the first flight, is cancelled.
    let admin = app.admin_token().await;
    let r = app
        .post(
            &format!("/flights/{b}/cancel"),
            Some(&admin),
            json!({"reason": "storm"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let cancelled = app
        .wait_for(id, BookingStatus::Cancelled, Duration::from_secs(30))
        .await;
    assert_eq!(cancelled.refund.unwrap().amount().to_string(), "1140.00");
    app.wait_refunded(id, "1140.00", Duration::from_secs(30))
        .await;
    // The first flight's seats are back on sale.
    let now = chrono::Utc::now();
    assert!(app.seats(a).await.seats_of(id).is_empty());
    assert_eq!(app.seats(a).await.available_in(Cabin::Economy, now), 60);
    // The refund comes off each route's revenue by its part.
    assert_eq!(
        revenue_by_route(&app).await,
        vec![
            (
                "JFK-BOS".to_owned(),
                "300.00".to_owned(),
                "300.00".to_owned()
            ),
            (
                "LHR-JFK".to_owned(),
                "840.00".to_owned(),
                "840.00".to_owned()
            ),
        ]
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn two_leg_bookings_race_one_leg_bookings_for_the_connections_last_seats(pool: PgPool) {
    let app = spawn(pool).await;
    let (a, b) = app.trip(chrono::Duration::hours(2)).await;
    leave(&app, b, 4).await;
    let (_, token) = app.customer().await;

    // 8 two-leg and 8 one-leg bookings of one passenger each, at once.
    let both = [a, b];
    let two_legs = (0..8).map(|_| book_trip(&app, &token, &both, 1));
    let one_leg = (0..8).map(|_| app.book(&token, b, &["economy"]));
    let (two, one) = futures::future::join(
        futures::future::join_all(two_legs),
        futures::future::join_all(one_leg),
    )
    .await;
    let mut won_two = vec![];
    let mut won = 0;
    for (r, is_trip) in two
        .into_iter()
        .map(|r| (r, true))
        .chain(one.into_iter().map(|r| (r, false)))
    {
        match r.status() {
            StatusCode::CREATED => {
                won += 1;
                if is_trip {
                    won_two.push(uuid(&r.json::<Value>().await.unwrap()["booking_id"]));
                }
            }
            StatusCode::CONFLICT => {
                // Sold out; or, rarely, a two-leg booking that lost every
                // round to the connection's busy lane (retryable).
                let body: Value = r.json().await.unwrap();
                assert!(
                    matches!(body["code"].as_str(), Some("SEAT_UNAVAILABLE" | "CONFLICT")),
                    "{body}"
                );
            }
            other => panic!(
                "every answer is 201 or 409, not {other}: {}",
                r.text().await.unwrap()
            ),
        }
    }
    assert_eq!(won, 4, "exactly the four seats left are sold");

    // The connection sold out: every economy seat taken, none left.
    let now = chrono::Utc::now();
    let on_b = app.seats(b).await;
    let taken = on_b
        .seats()
        .filter(|(_, slot)| slot.state.booking_id().is_some())
        .count();
    assert_eq!(taken, 60);
    assert_eq!(on_b.available_in(Cabin::Economy, now), 0);
    // No half holds: on the first flight exactly the two-leg winners hold
    // a seat, each also holding one on the connection.
    let on_a = app.seats(a).await;
    let mut holders: Vec<Uuid> = on_a
        .seats()
        .filter_map(|(_, slot)| slot.state.booking_id())
        .collect();
    holders.sort();
    won_two.sort();
    assert_eq!(holders, won_two);
    for id in &won_two {
        assert_eq!(on_b.seats_of(*id).len(), 1);
        assert_eq!(app.booking(*id).await.flight_ids(), vec![a, b]);
    }
}
