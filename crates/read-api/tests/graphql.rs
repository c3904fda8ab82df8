//! The GraphQL API over HTTP, against a real PostgreSQL: read models built
//! by driving the write API and catching the projectors up.

use std::collections::HashSet;
use std::time::Duration;

use domain::values::Role;
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::graphql::error_code;
use test_support::spawn;

const SEARCH: &str = "query($o: String!, $d: String!, $date: Date!, $cabin: Cabin, $n: Int, $max: Decimal, $first: Int, $after: String) {
  searchFlights(origin: $o, destination: $d, date: $date, cabin: $cabin, passengers: $n, maxPrice: $max, first: $first, after: $after) {
    edges { cursor node { id departsAt lowestFare { amount currency } cabins { cabin fare { amount } availableSeats } } }
    pageInfo { hasNextPage endCursor }
  }
}";

const BOOKING: &str = "query($id: ID, $pnr: String) {
  booking(id: $id, pnr: $pnr) {
    id pnr status customerId seats total { amount currency } holdExpiresAt
    flight { id origin } passengers { id firstName lastName seat cabin } payment { id } tickets { number }
  }
}";

fn ids_of(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn search_flights_filters_ranks_and_pages_without_gaps(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let day = "2030-06-01";
    // Five matching flights, economy fares 400..440, departing an hour apart.
    let mut matching = Vec::new();
    for i in 0..5u32 {
        let at = format!("{day}T{:02}:00:00Z", 6 + i);
        let fare = format!("{}.00", 440 - i * 10);
        matching.push(
            app.flight_on(&admin, "LHR", "JFK", &at, &fare, "1800.00", 12)
                .await,
        );
    }
    // Same fare as another: ties go to the earlier departure.
    let tie = app
        .flight_on(
            &admin,
            "LHR",
            "JFK",
            &format!("{day}T23:00:00Z"),
            "400.00",
            "1800.00",
            12,
        )
        .await;
    // Not matching: another day, another route, cancelled.
    app.flight_on(
        &admin,
        "LHR",
        "JFK",
        "2030-06-02T09:00:00Z",
        "100.00",
        "900.00",
        12,
    )
    .await;
    app.flight_on(
        &admin,
        "LHR",
        "CDG",
        &format!("{day}T09:00:00Z"),
        "100.00",
        "900.00",
        12,
    )
    .await;
    let cancelled = app
        .flight_on(
            &admin,
            "LHR",
            "JFK",
            &format!("{day}T12:30:00Z"),
            "100.00",
            "900.00",
            12,
        )
        .await;
    let r = app
        .post(
            &format!("/flights/{cancelled}/cancel"),
            Some(&admin),
            json!({"reason": "weather"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // A small flight: economy has 2 seats (row 10 only).
    let small = app
        .flight_on(
            &admin,
            "LHR",
            "JFK",
            &format!("{day}T05:00:00Z"),
            "50.00",
            "1800.00",
            10,
        )
        .await;
    app.catch_up().await;

    let vars = |extra: Value| {
        let mut v = json!({"o": "LHR", "d": "jfk", "date": day});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };

    // Economy for 3: the small flight has too few seats. Page by 2.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .gql(
                None,
                SEARCH,
                vars(json!({"cabin": "ECONOMY", "n": 3, "first": 2, "after": after})),
            )
            .await;
        let page = &data["searchFlights"];
        let ids = ids_of(page);
        assert!(ids.len() <= 2);
        seen.extend(ids);
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    let mut expected: Vec<String> = matching.iter().rev().map(|u| u.to_string()).collect();
    expected.insert(1, tie.to_string());
    assert_eq!(
        seen, expected,
        "cheapest first, then earliest; no gaps nor duplicates"
    );

    // One passenger: the small flight is in, and cheapest.
    let data = app
        .gql(None, SEARCH, vars(json!({"cabin": "ECONOMY"})))
        .await;
    let ids = ids_of(&data["searchFlights"]);
    assert_eq!(ids[0], small.to_string());
    assert_eq!(ids.len(), 7);
    assert!(!ids.contains(&cancelled.to_string()));

    // maxPrice.
    let data = app
        .gql(
            None,
            SEARCH,
            vars(json!({"cabin": "ECONOMY", "max": "410.00"})),
        )
        .await;
    assert_eq!(ids_of(&data["searchFlights"]).len(), 4);

    // Business for 5: every business cabin has 4 seats.
    let data = app
        .gql(None, SEARCH, vars(json!({"cabin": "BUSINESS", "n": 5})))
        .await;
    assert!(ids_of(&data["searchFlights"]).is_empty());

    // A cursor of garbage is a BAD_REQUEST.
    app.gql_err(None, SEARCH, vars(json!({"after": "nope"})), "BAD_REQUEST")
        .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_flight_shows_its_seat_map_and_a_lapsed_hold_reads_available(pool: PgPool) {
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
    let (_, customer) = app.customer().await;
    app.booked(&customer, flight, &["10A", "11B"]).await;
    app.catch_up().await;

    let q = "query($id: ID!) { flight(id: $id) { id cancelled availableSeats
                cabins { cabin availableSeats totalSeats fare { amount currency } }
                seatMap { seat cabin status } } }";
    let data = app.gql(None, q, json!({"id": flight})).await;
    let f = &data["flight"];
    assert_eq!(f["availableSeats"], 8);
    assert_eq!(f["cabins"][0]["cabin"], "BUSINESS");
    assert_eq!(f["cabins"][1]["availableSeats"], 4);
    assert_eq!(f["cabins"][1]["fare"]["amount"], "420.00");
    let seats = f["seatMap"].as_array().unwrap();
    assert_eq!(seats.len(), 10);
    assert_eq!(
        seats[0],
        json!({"seat": "1A", "cabin": "BUSINESS", "status": "AVAILABLE"})
    );
    let status = |seats: &[Value], seat: &str| {
        seats.iter().find(|s| s["seat"] == seat).unwrap()["status"].clone()
    };
    assert_eq!(status(seats, "10A"), "HELD");
    assert_eq!(status(seats, "11B"), "HELD");

    // The hold lapses before its HoldExpired event is projected.
    sqlx::query(
        "UPDATE rm_seats SET hold_expires_at = now() - interval '1 second' WHERE seat = '10A'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let data = app.gql(None, q, json!({"id": flight})).await;
    let seats = data["flight"]["seatMap"].as_array().unwrap().clone();
    assert_eq!(status(&seats, "10A"), "AVAILABLE");
    assert_eq!(status(&seats, "11B"), "HELD");
    assert_eq!(data["flight"]["availableSeats"], 9);
    let cabins = data["flight"]["cabins"].clone();
    assert_eq!(cabins[1]["availableSeats"], 5);

    // A search (which fetches cabins with the flights) and a booking's
    // flight (through the cabins loader) count the lapsed hold alike.
    let search = "{ searchFlights(origin: \"LHR\", destination: \"JFK\", date: \"2030-06-01\") {
        nodes { id availableSeats cabins { cabin availableSeats totalSeats fare { amount currency } } } } }";
    let data = app.gql(None, search, json!({})).await;
    let node = &data["searchFlights"]["nodes"][0];
    assert_eq!(node["id"], flight.to_string());
    assert_eq!(node["availableSeats"], 9);
    assert_eq!(node["cabins"], cabins);
    let mine = "{ myBookings { nodes { flight { availableSeats cabins { cabin availableSeats totalSeats fare { amount currency } } } } } }";
    let data = app.gql(Some(&customer), mine, json!({})).await;
    let f = &data["myBookings"]["nodes"][0]["flight"];
    assert_eq!(f["availableSeats"], 9);
    assert_eq!(f["cabins"], cabins);

    let data = app.gql(None, q, json!({"id": uuid::Uuid::now_v7()})).await;
    assert!(data["flight"].is_null());
    app.gql_err(None, q, json!({"id": "not-a-uuid"}), "BAD_REQUEST")
        .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_booking_is_read_by_its_owner_and_staff_only(pool: PgPool) {
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
    let (owner_id, owner) = app.customer().await;
    let (_, other) = app.customer().await;
    let made = app.booked(&owner, flight, &["10A", "1C"]).await;
    let booking = made["booking_id"].as_str().unwrap();
    let pnr = made["pnr"].as_str().unwrap();
    app.catch_up().await;

    let by_id = app.gql(Some(&owner), BOOKING, json!({"id": booking})).await;
    let b = &by_id["booking"];
    assert_eq!(b["pnr"], pnr);
    assert_eq!(b["status"], "HELD");
    assert_eq!(b["customerId"], owner_id.to_string());
    assert_eq!(b["seats"], json!(["10A", "1C"]));
    assert_eq!(b["total"], json!({"amount": "2220.00", "currency": "USD"}));
    assert!(b["holdExpiresAt"].is_string());
    assert_eq!(b["flight"]["id"], flight.to_string());
    assert_eq!(b["passengers"][0]["firstName"], "Ada");
    assert_eq!(b["passengers"][1]["cabin"], "BUSINESS");
    assert!(b["payment"].is_null());
    assert_eq!(b["tickets"], json!([]));

    let by_pnr = app.gql(Some(&owner), BOOKING, json!({"pnr": pnr})).await;
    assert_eq!(by_pnr["booking"]["id"], booking);

    let (_, agent) = app.token(Role::Agent);
    let seen = app.gql(Some(&agent), BOOKING, json!({"pnr": pnr})).await;
    assert_eq!(seen["booking"]["id"], booking);
    let seen = app.gql(Some(&admin), BOOKING, json!({"id": booking})).await;
    assert_eq!(seen["booking"]["id"], booking);

    let body = app
        .gql_err(Some(&other), BOOKING, json!({"id": booking}), "FORBIDDEN")
        .await;
    assert!(body["data"]["booking"].is_null(), "no data leaks: {body}");
    // By PNR (six guessable characters) someone else's booking answers
    // exactly as a PNR that does not exist: no existence oracle.
    let theirs = app.gql(Some(&other), BOOKING, json!({"pnr": pnr})).await;
    let missing = app
        .gql(Some(&other), BOOKING, json!({"pnr": "ZZZZZZ"}))
        .await;
    assert!(theirs["booking"].is_null(), "{theirs}");
    assert_eq!(theirs, missing);
    let (_, analyst) = app.token(Role::Analyst);
    app.gql_err(Some(&analyst), BOOKING, json!({"id": booking}), "FORBIDDEN")
        .await;
    app.gql_err(None, BOOKING, json!({"id": booking}), "UNAUTHORIZED")
        .await;
    app.gql_err(Some(&owner), BOOKING, json!({}), "BAD_REQUEST")
        .await;
    let none = app
        .gql(Some(&owner), BOOKING, json!({"id": uuid::Uuid::now_v7()}))
        .await;
    assert!(none["booking"].is_null());

    // A token that is not ours: refused before anything runs.
    let (status, body) = app
        .gql_with(Some("not.a.token"), None, BOOKING, json!({"id": booking}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body).as_deref(), Some("UNAUTHORIZED"));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn booking_lists_page_and_follow_the_role_rules(pool: PgPool) {
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
    let (_, ada) = app.customer().await;
    let (_, bob) = app.customer().await;
    let mut made = Vec::new();
    for seat in ["10A", "10B", "11A"] {
        made.push(
            app.booked(&ada, flight, &[seat]).await["booking_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let bobs = app.booked(&bob, flight, &["12A"]).await["booking_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.catch_up().await;

    let mine = "query($first: Int, $after: String, $status: BookingStatus) {
        myBookings(first: $first, after: $after, status: $status) {
          edges { cursor node { id passengers { seat } payment { id } flight { id } } }
          pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .gql(Some(&ada), mine, json!({"first": 2, "after": after}))
            .await;
        let page = &data["myBookings"];
        seen.extend(ids_of(page));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(seen, expected, "newest first, no gaps nor duplicates");
    let data = app
        .gql(Some(&ada), mine, json!({"status": "CANCELLED"}))
        .await;
    assert!(ids_of(&data["myBookings"]).is_empty());
    app.gql_err(None, mine, json!({}), "UNAUTHORIZED").await;

    let all =
        "query($flight: ID) { bookings(flightId: $flight, first: 10) { edges { node { id } } } }";
    let (_, agent) = app.token(Role::Agent);
    let data = app.gql(Some(&agent), all, json!({"flight": flight})).await;
    let ids: HashSet<String> = ids_of(&data["bookings"]).into_iter().collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.contains(&bobs));
    app.gql_err(Some(&ada), all, json!({}), "FORBIDDEN").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn analytics_is_for_analysts_and_admins(pool: PgPool) {
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
    let (_, customer) = app.customer().await;
    app.booked(&customer, flight, &["10A"]).await;
    app.catch_up().await;
    let q = "{ analytics { revenueByDay { day net { amount } } revenueByMonth { month }
               topRoutes { origin destination net { amount } } airlines { airline }
               loadFactor { flightId soldSeats totalSeats loadFactor }
               funnel { created paid expiryRate } } }";
    let body = app
        .gql_err(Some(&customer), q, json!({}), "FORBIDDEN")
        .await;
    assert!(body["data"].is_null(), "{body}");
    app.gql_err(None, q, json!({}), "UNAUTHORIZED").await;
    let (_, analyst) = app.token(Role::Analyst);
    let data = app.gql(Some(&analyst), q, json!({})).await;
    let a = &data["analytics"];
    assert_eq!(a["funnel"]["created"], 1);
    assert_eq!(a["loadFactor"][0]["flightId"], flight.to_string());
    assert_eq!(a["loadFactor"][0]["totalSeats"], 10);
    app.gql(Some(&admin), q, json!({})).await;

    // sagas: admins only (none run here); projections: anyone.
    let sagas = "{ sagas { edges { node { id } } pageInfo { hasNextPage } } }";
    app.gql_err(Some(&analyst), sagas, json!({}), "FORBIDDEN")
        .await;
    let data = app.gql(Some(&admin), sagas, json!({})).await;
    assert_eq!(data["sagas"]["edges"], json!([]));
    let data = app
        .gql(
            None,
            "{ projections { name position lag lagSeconds } }",
            json!({}),
        )
        .await;
    // The other followers of the log (the notifier's inbox, the waiting
    // list's process manager) are listed with the read models (operators
    // watch their lag); this app does not run them.
    let built_in: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
    let (read_models, others): (Vec<&Value>, Vec<&Value>) = data["projections"]
        .as_array()
        .unwrap()
        .iter()
        .partition(|p| built_in.contains(&p["name"].as_str().unwrap_or_default()));
    assert!(
        others.iter().any(|p| p["name"] == "notifications"),
        "{data}"
    );
    let names: Vec<&str> = read_models
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "analytics",
            "billing",
            "bookings",
            "flights",
            "users",
            "waitlist"
        ]
    );
    assert!(read_models.iter().all(|p| p["lag"] == 0));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn payments_and_invoices_are_the_customers_own(pool: PgPool) {
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
    let (_, ada) = app.customer().await;
    let (_, bob) = app.customer().await;
    let booking: uuid::Uuid = app.booked(&ada, flight, &["10A"]).await["booking_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.catch_up().await;
    // The billing projector's rows, as the sagas will make them.
    let payment = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO rm_payments (payment_id, booking_id, status, amount, currency, card_brand, \
            card_last4, requested_at, updated_at) \
         VALUES ($1, $2, 'CAPTURED', 420, 'USD', 'visa', '4242', now(), now())",
    )
    .bind(payment)
    .bind(booking)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE rm_bookings SET payment_id = $1 WHERE booking_id = $2")
        .bind(payment)
        .bind(booking)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO rm_invoices (invoice_number, payment_id, booking_id, currency, lines, \
            subtotal, tax_rate, tax, total, issued_at) \
         VALUES ('INV-1', $1, $2, 'USD', $3, 350, 0.2, 70, 420, now())",
    )
    .bind(payment)
    .bind(booking)
    .bind(json!([{"description": "Seat 10A", "quantity": 1,
                  "unit_price": {"amount": "420.00", "currency": "USD"},
                  "amount": {"amount": "420.00", "currency": "USD"}}]))
    .execute(&app.pool)
    .await
    .unwrap();

    let q = "{ payments(status: CAPTURED) { edges { node { id bookingId status amount { amount } cardLast4 } } } }";
    let data = app.gql(Some(&ada), q, json!({})).await;
    assert_eq!(ids_of(&data["payments"]), [payment.to_string()]);
    let data = app.gql(Some(&bob), q, json!({})).await;
    assert!(ids_of(&data["payments"]).is_empty());
    let (_, agent) = app.token(Role::Agent);
    let data = app.gql(Some(&agent), q, json!({})).await;
    assert_eq!(ids_of(&data["payments"]).len(), 1);

    let b = app
        .gql(
            Some(&ada),
            "query($id: ID) { booking(id: $id) { payment { status cardBrand } } }",
            json!({"id": booking}),
        )
        .await;
    assert_eq!(
        b["booking"]["payment"],
        json!({"status": "CAPTURED", "cardBrand": "visa"})
    );

    let inv = "{ invoice(number: \"INV-1\") { number total { amount } tax { amount } lines { description unitPrice { amount currency } } } }";
    let data = app.gql(Some(&ada), inv, json!({})).await;
    assert_eq!(data["invoice"]["lines"][0]["unitPrice"]["amount"], "420.00");
    assert_eq!(data["invoice"]["tax"]["amount"], "70.00");
    // Someone else's invoice answers exactly as one that does not exist:
    // invoice numbers follow guessable PNRs.
    let theirs = app.gql(Some(&bob), inv, json!({})).await;
    let missing = app
        .gql(
            Some(&bob),
            "{ invoice(number: \"INV-NOPE\") { number total { amount } tax { amount } lines { description unitPrice { amount currency } } } }",
            json!({}),
        )
        .await;
    assert!(theirs["invoice"].is_null(), "{theirs}");
    assert_eq!(theirs, missing);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn x_read_after_reads_a_booking_straight_after_it_is_made(pool: PgPool) {
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
    // The projectors follow the log in the background, as in `booking serve`.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = app.runner.clone();
    let running = tokio::spawn(async move {
        runner
            .run_all(projections::all(), async move {
                let _ = stopped.await;
            })
            .await
    });
    let (_, customer) = app.customer().await;
    let made = app.booked(&customer, flight, &["10A"]).await;
    let position = made["position"].as_str().unwrap();
    let (status, body) = app
        .gql_with(
            Some(&customer),
            Some(position),
            BOOKING,
            json!({"id": made["booking_id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["booking"]["pnr"], made["pnr"], "{body}");

    // A position the log has not reached: STALE_READ after a short wait.
    let (status, body) = app
        .gql_with(
            Some(&customer),
            Some("7fffffffffffffff0000000000000001"),
            BOOKING,
            json!({"id": made["booking_id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body).as_deref(), Some("STALE_READ"), "{body}");

    let (status, body) = app
        .gql_with(
            Some(&customer),
            Some("yesterday"),
            BOOKING,
            json!({"id": made["booking_id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body).as_deref(), Some("BAD_REQUEST"));

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn deep_or_costly_queries_are_refused_and_introspection_works(pool: PgPool) {
    let app = spawn(pool).await;
    let deep = "{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }";
    let (_, body) = app.gql_with(None, None, deep, json!({})).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("QUERY_TOO_DEEP"),
        "{body}"
    );

    // 100 flights, each with its seat map: too costly.
    let costly =
        "{ searchFlights(origin: \"LHR\", destination: \"JFK\", date: \"2030-01-01\", first: 100) {
        edges { node { id seatMap { seat } cabins { cabin } } } } }";
    let (_, body) = app.gql_with(None, None, costly, json!({})).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{body}"
    );

    // GraphiQL's introspection is deeper than 10 and must still work.
    let introspection = "{ __schema { types { name fields { name type { kind ofType { kind ofType {
        kind ofType { kind ofType { kind ofType { kind ofType { kind ofType { name } } } } } } } } } } } }";
    let data = app.gql(None, introspection, json!({})).await;
    assert!(data["__schema"]["types"].as_array().unwrap().len() > 10);

    let page = app
        .client
        .get(format!("http://{}/graphql", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("graphiql"));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn booking_updated_pushes_the_booking_then_its_changes(pool: PgPool) {
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
    let (owner_id, owner) = app.customer().await;
    let made = app.booked(&owner, flight, &["10A"]).await;
    let booking = made["booking_id"].as_str().unwrap().to_owned();
    app.catch_up().await;

    let schema = read_api::schema(&app.read);
    let caller = auth::Caller {
        user_id: owner_id,
        role: Role::Customer,
        session: uuid::Uuid::now_v7(),
    };
    let request = async_graphql::Request::new(
        "subscription($id: ID!) { bookingUpdated(id: $id) { id status passengers { seat } } }",
    )
    .variables(async_graphql::Variables::from_json(json!({"id": booking})))
    .data(read_api::Viewer(Some(caller)));
    let mut stream = schema.execute_stream(request);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let first = first.data.into_json().unwrap();
    assert_eq!(first["bookingUpdated"]["status"], "HELD");

    let r = app
        .post(
            &format!("/bookings/{booking}/cancel"),
            Some(&owner),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    app.catch_up().await;
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    let next = next.data.into_json().unwrap();
    assert_eq!(next["bookingUpdated"]["status"], "CANCELLED");

    // Someone else's booking cannot be watched.
    let (_, other) = app.token(Role::Customer);
    let other_caller = app.state.tokens.verify(&other).unwrap();
    let request =
        async_graphql::Request::new("subscription($id: ID!) { bookingUpdated(id: $id) { id } }")
            .variables(async_graphql::Variables::from_json(json!({"id": booking})))
            .data(read_api::Viewer(Some(other_caller)));
    let refused = schema.execute_stream(request).next().await.unwrap();
    assert_eq!(
        refused.errors[0].extensions.as_ref().unwrap().get("code"),
        Some(&async_graphql::Value::from("FORBIDDEN"))
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn seat_map_changed_pushes_over_graphql_transport_ws(pool: PgPool) {
    use futures::SinkExt as _;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message;

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

    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init", "payload": {}})))
        .await
        .unwrap();
    let recv = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str::<Value>(&t).unwrap();
        }
    };
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    ws.send(send(json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription($f: ID!) { seatMapChanged(flightId: $f) { flightId availableSeats seats { seat status } } }",
        "variables": {"f": flight}}})))
        .await
        .unwrap();
    let first = recv(&mut ws).await;
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(
        first["payload"]["data"]["seatMapChanged"]["availableSeats"],
        10
    );

    let (_, customer) = app.customer().await;
    app.booked(&customer, flight, &["10A"]).await;
    app.catch_up().await;
    let change = recv(&mut ws).await;
    assert_eq!(
        change["payload"]["data"]["seatMapChanged"]["seats"],
        json!([{"seat": "10A", "status": "HELD"}]),
        "{change}"
    );
    assert_eq!(
        change["payload"]["data"]["seatMapChanged"]["availableSeats"],
        9
    );
}

// ------------------------------------------------------------------ sagas

const SAGAS: &str = "query($status: SagaStatus, $first: Int, $after: String) {
  sagas(status: $status, first: $first, after: $after) {
    edges { cursor node { id kind status step bookingId flightId attempts lastError createdAt } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}";

/// A row as the saga workers keep it: the read side only reads the table.
#[allow(clippy::too_many_arguments)]
async fn insert_saga(
    pool: &PgPool,
    kind: &str,
    booking: Option<uuid::Uuid>,
    flight: uuid::Uuid,
    status: &str,
    step: &str,
    created_at: chrono::DateTime<chrono::Utc>,
) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sagas (saga_id, kind, booking_id, flight_id, status, step, next_run_at, \
                            created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id)
    .bind(kind)
    .bind(booking)
    .bind(flight)
    .bind(status)
    .bind(step)
    .bind(created_at)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// Every node id of `sagas(status)`, following `endCursor` `first` at a time.
async fn all_saga_pages(
    app: &test_support::TestApp,
    token: &str,
    status: Option<&str>,
    first: i32,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .gql(
                Some(token),
                SAGAS,
                json!({"status": status, "first": first, "after": after}),
            )
            .await;
        let page = &data["sagas"];
        let ids = ids_of(page);
        assert!(ids.len() <= first as usize, "{page}");
        assert_eq!(page["pageInfo"]["hasPreviousPage"], after.is_some());
        seen.extend(ids);
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return seen;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn sagas_are_listed_newest_first_and_page_without_gaps_or_duplicates(pool: PgPool) {
    let app = spawn(pool.clone()).await;
    let admin = app.admin_token().await;
    let flight = uuid::Uuid::now_v7();
    let start: chrono::DateTime<chrono::Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
    let statuses = [
        "RUNNING",
        "COMPENSATING",
        "COMPLETED",
        "COMPENSATED",
        "PARKED",
    ];
    // Eleven sagas; every third starts in the same microsecond as the one
    // before, so the id has to break ties.
    let mut made: Vec<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> = Vec::new();
    for i in 0..11i64 {
        let at = start + chrono::Duration::seconds(i - i / 3);
        let status = statuses[i as usize % statuses.len()];
        let id = insert_saga(
            &pool,
            "fulfilment",
            Some(uuid::Uuid::now_v7()),
            flight,
            status,
            "AWAITING_PAYMENT",
            at,
        )
        .await;
        made.push((at, id));
    }
    made.sort();
    let expected: Vec<String> = made.iter().rev().map(|(_, id)| id.to_string()).collect();

    for first in [1, 3, 4, 11, 20] {
        let seen = all_saga_pages(&app, &admin, None, first).await;
        assert_eq!(
            seen, expected,
            "first: {first}: newest first, no gaps nor duplicates"
        );
    }

    // The default page holds them all; the newest is first.
    let data = app.gql(Some(&admin), SAGAS, json!({})).await;
    let page = &data["sagas"];
    assert_eq!(ids_of(page), expected);
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    let newest = &page["edges"][0]["node"];
    assert_eq!(newest["kind"], "FULFILMENT");
    assert_eq!(newest["flightId"], flight.to_string());
    assert_eq!(newest["step"], "AWAITING_PAYMENT");
    assert_eq!(newest["attempts"], 0);
    assert!(newest["lastError"].is_null());

    // A cursor of another list, or of garbage, is refused.
    let bookings_cursor = read_api::cursor::encode("bookings", &(start, uuid::Uuid::nil()));
    app.gql_err(
        Some(&admin),
        SAGAS,
        json!({"after": bookings_cursor}),
        "BAD_REQUEST",
    )
    .await;
    app.gql_err(Some(&admin), SAGAS, json!({"after": "nope"}), "BAD_REQUEST")
        .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn sagas_filter_by_status_and_show_steps_deadlines_retries_and_errors(pool: PgPool) {
    let app = spawn(pool.clone()).await;
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
    let (_, customer) = app.customer().await;
    let made = app.booked(&customer, flight, &["10A"]).await;
    let booking: uuid::Uuid = made["booking_id"].as_str().unwrap().parse().unwrap();
    app.catch_up().await;

    let start: chrono::DateTime<chrono::Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
    let at = |s: i64| start + chrono::Duration::seconds(s);
    // A parked fulfilment of the real booking, with its retries spent.
    let parked = insert_saga(
        &pool,
        "fulfilment",
        Some(booking),
        flight,
        "PARKED",
        "CHARGING",
        at(0),
    )
    .await;
    sqlx::query(
        "UPDATE sagas SET compensations = $2, charge_started = true, attempts = 8, \
                last_error = 'gateway: timed out', hold_expires_at = $3, \
                payment_deadline = $4, locked_until = now() + interval '1 minute' \
         WHERE saga_id = $1",
    )
    .bind(parked)
    .bind(json!([{"name": "release_seats", "done": false},
                 {"name": "refund_payment", "done": false}]))
    .bind(at(600))
    .bind(at(300))
    .execute(&pool)
    .await
    .unwrap();
    let mut running = Vec::new();
    for i in 1..=4 {
        running.push(
            insert_saga(
                &pool,
                "fulfilment",
                Some(uuid::Uuid::now_v7()),
                flight,
                "RUNNING",
                "AWAITING_PAYMENT",
                at(i),
            )
            .await
            .to_string(),
        );
    }
    let cancellation = insert_saga(
        &pool,
        "flight_cancellation",
        None,
        flight,
        "COMPLETED",
        "DONE",
        at(10),
    )
    .await;

    // Each status lists its own, newest first, across pages.
    let seen = all_saga_pages(&app, &admin, Some("RUNNING"), 3).await;
    assert_eq!(seen, running.iter().rev().cloned().collect::<Vec<_>>());
    let seen = all_saga_pages(&app, &admin, Some("COMPLETED"), 3).await;
    assert_eq!(seen, [cancellation.to_string()]);
    assert!(all_saga_pages(&app, &admin, Some("COMPENSATING"), 3)
        .await
        .is_empty());

    let q = "query($status: SagaStatus) { sagas(status: $status) { edges { node {
        id kind status step bookingId flightId chargeStarted holdExpiresAt paymentDeadline
        nextRunAt attempts lastError leasedUntil createdAt updatedAt
        compensations { name done }
        booking { id pnr status } flight { id origin } } } } }";
    let data = app.gql(Some(&admin), q, json!({"status": "PARKED"})).await;
    let edges = data["sagas"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    let s = &edges[0]["node"];
    assert_eq!(s["id"], parked.to_string());
    assert_eq!(s["kind"], "FULFILMENT");
    assert_eq!(s["status"], "PARKED");
    assert_eq!(s["step"], "CHARGING");
    assert_eq!(s["bookingId"], booking.to_string());
    assert_eq!(s["flightId"], flight.to_string());
    assert_eq!(s["chargeStarted"], true);
    assert_eq!(s["holdExpiresAt"], "2030-01-01T00:10:00+00:00");
    assert_eq!(s["paymentDeadline"], "2030-01-01T00:05:00+00:00");
    assert_eq!(s["createdAt"], "2030-01-01T00:00:00+00:00");
    assert!(s["nextRunAt"].is_string() && s["updatedAt"].is_string());
    assert_eq!(s["attempts"], 8);
    assert_eq!(s["lastError"], "gateway: timed out");
    assert!(s["leasedUntil"].is_string(), "{s}");
    assert_eq!(
        s["compensations"],
        json!([{"name": "release_seats", "done": false},
               {"name": "refund_payment", "done": false}])
    );
    assert_eq!(s["booking"]["id"], booking.to_string());
    assert_eq!(s["booking"]["pnr"], made["pnr"]);
    assert_eq!(s["booking"]["status"], "HELD");
    assert_eq!(s["flight"]["origin"], "LHR");

    // A flight cancellation has no booking; no lease is shown when none is held.
    let data = app
        .gql(Some(&admin), q, json!({"status": "COMPLETED"}))
        .await;
    let s = &data["sagas"]["edges"][0]["node"];
    assert_eq!(s["kind"], "FLIGHT_CANCELLATION");
    assert_eq!(s["step"], "DONE");
    assert!(s["bookingId"].is_null() && s["booking"].is_null());
    assert!(s["leasedUntil"].is_null());
    assert_eq!(s["compensations"], json!([]));

    // Not a status.
    let (_, body) = app
        .gql_with(Some(&admin), None, SAGAS, json!({"status": "FAILED"}))
        .await;
    assert!(body["errors"].is_array(), "{body}");
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn sagas_are_for_admins_and_auditors_only(pool: PgPool) {
    let app = spawn(pool.clone()).await;
    let start: chrono::DateTime<chrono::Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
    insert_saga(
        &pool,
        "fulfilment",
        Some(uuid::Uuid::now_v7()),
        uuid::Uuid::now_v7(),
        "PARKED",
        "CHARGING",
        start,
    )
    .await;
    for role in [Role::Customer, Role::Agent, Role::Analyst] {
        let (_, token) = app.token(role);
        let body = app
            .gql_err(Some(&token), SAGAS, json!({}), "FORBIDDEN")
            .await;
        assert!(body["data"].is_null(), "no data leaks: {body}");
    }
    app.gql_err(None, SAGAS, json!({}), "UNAUTHORIZED").await;
    // Auditors read what admins read, and write nothing.
    for role in [Role::Admin, Role::Auditor] {
        let (_, token) = app.token(role);
        let data = app.gql(Some(&token), SAGAS, json!({})).await;
        assert_eq!(ids_of(&data["sagas"]).len(), 1);
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn auditors_read_bookings_payments_and_analytics(pool: PgPool) {
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
    let (_, customer) = app.customer().await;
    let booked = app.booked(&customer, flight, &["10A"]).await;
    app.catch_up().await;
    let (_, auditor) = app.token(Role::Auditor);
    let data = app
        .gql(
            Some(&auditor),
            "{ bookings { edges { node { id pnr status } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["bookings"]["edges"][0]["node"]["id"], booked["booking_id"],
        "{data}"
    );
    let pnr = booked["pnr"].as_str().unwrap();
    let data = app
        .gql(
            Some(&auditor),
            "query($pnr: String) { booking(pnr: $pnr) { id status } }",
            json!({"pnr": pnr}),
        )
        .await;
    assert_eq!(data["booking"]["id"], booked["booking_id"]);
    app.gql(
        Some(&auditor),
        "{ payments { edges { node { id } } } analytics { funnel { created } } }",
        json!({}),
    )
    .await;
}

/// Registers someone with this email and name and logs them in: (id, token).
async fn account(app: &test_support::TestApp, email: &str, name: &str) -> (String, String) {
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"email": email, "password": test_support::PASSWORD, "full_name": name}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let id = r.json::<Value>().await.unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    (id, app.login(email, test_support::PASSWORD).await)
}

const ME: &str = "query($status: BookingStatus) { me {
  id email fullName phone role status erased createdAt
  bookings(status: $status, first: 10) { edges { node { id customerId } } }
} }";

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn me_should_answer_the_caller_with_their_own_bookings(pool: PgPool) {
    let app = spawn(pool).await;
    let (ada_id, ada) = account(&app, "ada@example.com", "Ada Lovelace").await;
    let (_, bob) = account(&app, "bob@example.com", "Bob Babbage").await;
    let flight = app.flight().await;
    let mine = app.book_id(&ada, flight, &["12A"]).await;
    app.book_id(&bob, flight, &["12B"]).await;
    let r = app
        .send(
            reqwest::Method::PATCH,
            &format!("/users/{ada_id}"),
            Some(&ada),
            Some(json!({"phone": "+44 20 7946 0958"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.catch_up().await;

    let data = app.gql(Some(&ada), ME, json!({})).await;
    let me = &data["me"];
    assert_eq!(me["id"], ada_id);
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["fullName"], "Ada Lovelace");
    assert_eq!(me["phone"], "+44 20 7946 0958");
    assert_eq!(me["role"], "CUSTOMER");
    assert_eq!(me["status"], "ACTIVE");
    assert_eq!(me["erased"], false);
    assert!(me["createdAt"].is_string());
    let bookings = me["bookings"]["edges"].as_array().unwrap();
    assert_eq!(bookings.len(), 1, "{me}");
    assert_eq!(bookings[0]["node"]["id"], mine.to_string());
    assert_eq!(bookings[0]["node"]["customerId"], ada_id);
    let data = app
        .gql(Some(&ada), ME, json!({"status": "CANCELLED"}))
        .await;
    assert_eq!(data["me"]["bookings"]["edges"], json!([]));

    // Anonymous: nobody.
    let data = app.gql(None, ME, json!({})).await;
    assert_eq!(data["me"], Value::Null);
}

const USERS: &str = "query($search: String, $role: Role, $first: Int, $after: String) {
  users(search: $search, role: $role, first: $first, after: $after) {
    edges { cursor node { id email fullName role status erased } }
    pageInfo { hasNextPage endCursor }
  }
}";

fn emails(data: &Value) -> Vec<String> {
    data["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["node"]["email"]
                .as_str()
                .unwrap_or("<erased>")
                .to_string()
        })
        .collect()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn users_should_let_admins_find_accounts_by_email_or_name_page_by_page(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let (ada_id, ada) = account(&app, "ada@example.com", "Ada Lovelace").await;
    let (bob_id, _) = account(&app, "bob@example.com", "Bob Babbage").await;
    let (eve_id, eve) = account(&app, "eve@lovelace.org", "Eve Dropper").await;
    account(&app, "zed_percent@example.com", "Zed 100% Sure").await;
    let (_, agent) = app.user("agent").await;
    // Bob is suspended, Eve erased.
    let r = app
        .post(
            &format!("/users/{bob_id}/suspend"),
            Some(&admin),
            json!({"reason": "chargebacks"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/users/{eve_id}"),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.catch_up().await;

    // Only admins.
    for token in [&ada, &agent] {
        app.gql_err(Some(token), USERS, json!({}), "FORBIDDEN")
            .await;
        app.gql_err(
            Some(token),
            "query($id: ID!) { user(id: $id) { id } }",
            json!({"id": ada_id}),
            "FORBIDDEN",
        )
        .await;
    }
    app.gql_err(None, USERS, json!({}), "UNAUTHORIZED").await;

    // By a part of the email or the name, whatever its case: Ada by both,
    // Eve's old address no longer (erased).
    let data = app
        .gql(Some(&admin), USERS, json!({"search": "LOVELACE"}))
        .await;
    assert_eq!(emails(&data), ["ada@example.com"]);
    let data = app
        .gql(Some(&admin), USERS, json!({"search": "bAbBaGe"}))
        .await;
    assert_eq!(emails(&data), ["bob@example.com"]);
    assert_eq!(data["users"]["edges"][0]["node"]["status"], "SUSPENDED");
    let data = app
        .gql(Some(&admin), USERS, json!({"search": "Bob@Example"}))
        .await;
    assert_eq!(emails(&data), ["bob@example.com"]);
    // LIKE's wildcards are plain characters in a search.
    let data = app.gql(Some(&admin), USERS, json!({"search": "0%"})).await;
    assert_eq!(emails(&data), ["zed_percent@example.com"]);
    let data = app.gql(Some(&admin), USERS, json!({"search": "_"})).await;
    assert_eq!(emails(&data), ["zed_percent@example.com"]);
    let data = app
        .gql(Some(&admin), USERS, json!({"search": "nobody"}))
        .await;
    assert_eq!(emails(&data), Vec::<String>::new());
    let data = app.gql(Some(&admin), USERS, json!({"role": "AGENT"})).await;
    assert_eq!(data["users"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(data["users"]["edges"][0]["node"]["role"], "AGENT");

    // Every account (admin, four registered, the agent), newest first, two
    // at a time.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app
            .gql(Some(&admin), USERS, json!({"first": 2, "after": after}))
            .await;
        let edges = data["users"]["edges"].as_array().unwrap().clone();
        assert!(edges.len() <= 2);
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_string()),
        );
        let page = &data["users"]["pageInfo"];
        if page["hasNextPage"] != true {
            break;
        }
        after = page["endCursor"].clone();
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 6);
    assert_eq!(seen[2], eve_id, "newest first: {seen:?}");

    // One user; an erased one shows as erased, without personal data.
    let one = "query($id: ID!) { user(id: $id) { id email fullName phone status erased } }";
    let data = app.gql(Some(&admin), one, json!({"id": eve_id})).await;
    assert_eq!(
        data["user"],
        json!({"id": eve_id, "email": null, "fullName": null, "phone": null,
               "status": "ERASED", "erased": true})
    );
    let data = app.gql(Some(&admin), one, json!({"id": ada_id})).await;
    assert_eq!(data["user"]["email"], "ada@example.com");
    let data = app
        .gql(Some(&admin), one, json!({"id": uuid::Uuid::now_v7()}))
        .await;
    assert_eq!(data["user"], Value::Null);
}
