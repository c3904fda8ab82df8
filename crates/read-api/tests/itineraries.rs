//! `searchItineraries` over HTTP against a real PostgreSQL: flights
//! scheduled through the write API, the read models caught up, trips read
//! back.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{spawn, TestApp};
use uuid::Uuid;

const SEARCH: &str = "query($o: String!, $d: String!, $date: Date!, $ret: Date, $stops: Int,
    $cabin: Cabin, $n: Int, $max: Decimal, $sort: ItinerarySort, $first: Int, $after: String,
    $legs: [ItineraryLegInput!], $airline: String, $from: DateTime, $until: DateTime,
    $mct: Int, $layover: Int) {
  searchItineraries(origin: $o, destination: $d, date: $date, returnDate: $ret, maxStops: $stops,
      cabin: $cabin, passengers: $n, maxPrice: $max, sort: $sort, first: $first, after: $after,
      legs: $legs, airline: $airline, departAfter: $from, departBefore: $until,
      minConnectionMinutes: $mct, maxLayoverMinutes: $layover) {
    edges { cursor node { flights { id origin destination } cabins totalPrice { amount currency }
                          durationMinutes stops seatsLeft } }
    pageInfo { hasNextPage endCursor }
  }
}";

/// A flight to schedule: economy rows 10 to `economy_rows + 9` (seats A
/// and B), business rows 1-2 (A and C, 4 seats).
struct Spec<'a> {
    from: &'a str,
    to: &'a str,
    at: &'a str,
    minutes: i64,
    economy: &'a str,
    business: &'a str,
    economy_rows: u32,
    airline: &'a str,
    currency: &'a str,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Self {
            from: "LHR",
            to: "JFK",
            at: "2030-06-01T09:00:00Z",
            minutes: 480,
            economy: "500.00",
            business: "1800.00",
            economy_rows: 5,
            airline: "British Airways",
            currency: "USD",
        }
    }
}

async fn schedule(app: &TestApp, admin: &str, s: Spec<'_>) -> Uuid {
    let departs: chrono::DateTime<chrono::Utc> = s.at.parse().unwrap();
    let arrives = departs + chrono::Duration::minutes(s.minutes);
    let r = app
        .post(
            "/flights",
            Some(admin),
            json!({
                "flight_number": "XY100", "airline": s.airline,
                "origin": s.from, "destination": s.to,
                "departs_at": departs.to_rfc3339(), "arrives_at": arrives.to_rfc3339(),
                "currency": s.currency,
                "cabins": [
                    {"cabin": "business", "first_row": 1, "last_row": 2, "seat_letters": "AC", "fare": s.business},
                    {"cabin": "economy", "first_row": 10, "last_row": 9 + s.economy_rows, "seat_letters": "AB", "fare": s.economy}
                ]
            }),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    test_support::id_in(r, "flight_id").await
}

/// A short flight: `from` to `to` at `at`, `minutes` long, economy at `fare`.
async fn hop(
    app: &TestApp,
    admin: &str,
    from: &str,
    to: &str,
    at: &str,
    minutes: i64,
    fare: &str,
) -> Uuid {
    schedule(
        app,
        admin,
        Spec {
            from,
            to,
            at,
            minutes,
            economy: fare,
            ..Spec::default()
        },
    )
    .await
}

fn vars(base: Value, extra: Value) -> Value {
    let mut v = base;
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

async fn search(app: &TestApp, v: Value) -> Value {
    app.gql(None, SEARCH, v).await["searchItineraries"].clone()
}

fn nodes(page: &Value) -> Vec<Value> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Each trip's flight ids, in travel order.
fn trips(page: &Value) -> Vec<Vec<Uuid>> {
    nodes(page)
        .iter()
        .map(|n| {
            n["flights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap().parse().unwrap())
                .collect()
        })
        .collect()
}

fn prices(page: &Value) -> Vec<String> {
    nodes(page)
        .iter()
        .map(|n| n["totalPrice"]["amount"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn one_way_trips_with_up_to_two_stops_connect_as_the_rules_say(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let day = "2030-06-01";
    // Direct: 09:00 and 12:00, eight hours.
    let direct = hop(
        &app,
        &admin,
        "LHR",
        "JFK",
        "2030-06-01T09:00:00Z",
        480,
        "500.00",
    )
    .await;
    let late = hop(
        &app,
        &admin,
        "LHR",
        "JFK",
        "2030-06-01T12:00:00Z",
        480,
        "700.00",
    )
    .await;
    // To Paris, landing 09:00.
    let to_cdg = hop(
        &app,
        &admin,
        "LHR",
        "CDG",
        "2030-06-01T08:00:00Z",
        60,
        "100.00",
    )
    .await;
    // On from Paris: 45 min after landing (the default MCT, so it connects),
    // 30 min after (too short), 25 h after (too long a layover).
    let on_time = hop(
        &app,
        &admin,
        "CDG",
        "JFK",
        "2030-06-01T09:45:00Z",
        480,
        "250.00",
    )
    .await;
    let too_soon = hop(
        &app,
        &admin,
        "CDG",
        "JFK",
        "2030-06-01T09:30:00Z",
        480,
        "50.00",
    )
    .await;
    let next_day = hop(
        &app,
        &admin,
        "CDG",
        "JFK",
        "2030-06-02T10:00:00Z",
        480,
        "60.00",
    )
    .await;
    // Two stops: Paris, Frankfurt.
    let to_fra = hop(
        &app,
        &admin,
        "CDG",
        "FRA",
        "2030-06-01T10:00:00Z",
        60,
        "50.00",
    )
    .await;
    let fra_jfk = hop(
        &app,
        &admin,
        "FRA",
        "JFK",
        "2030-06-01T12:00:00Z",
        480,
        "60.00",
    )
    .await;
    // Back to London from Paris: on to JFK at 12:00 would visit LHR twice.
    hop(
        &app,
        &admin,
        "CDG",
        "LHR",
        "2030-06-01T10:00:00Z",
        60,
        "10.00",
    )
    .await;
    // Cancelled, and on another day.
    let cancelled = hop(
        &app,
        &admin,
        "LHR",
        "JFK",
        "2030-06-01T10:00:00Z",
        480,
        "10.00",
    )
    .await;
    hop(
        &app,
        &admin,
        "LHR",
        "JFK",
        "2030-06-02T09:00:00Z",
        480,
        "10.00",
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
    app.catch_up().await;
    let base = json!({"o": "lhr", "d": "JFK", "date": day});

    // Direct only.
    let page = search(&app, vars(base.clone(), json!({"stops": 0}))).await;
    assert_eq!(trips(&page), vec![vec![direct], vec![late]]);
    assert_eq!(prices(&page), vec!["500.00", "700.00"]);
    let n = &nodes(&page)[0];
    assert_eq!(n["stops"], 0);
    assert_eq!(n["durationMinutes"], 480);
    assert_eq!(n["cabins"], json!(["ECONOMY"]));
    assert_eq!(n["totalPrice"]["currency"], "USD");
    // Every economy seat is free: 5 rows of 2.
    assert_eq!(n["seatsLeft"], 10);

    // One stop (the default): only the connection 45 min after landing.
    let page = search(&app, base.clone()).await;
    assert_eq!(
        trips(&page),
        vec![vec![to_cdg, on_time], vec![direct], vec![late]]
    );
    let n = &nodes(&page)[0];
    assert_eq!(n["stops"], 1);
    assert_eq!(n["durationMinutes"], 585, "08:00 to 17:45");
    assert_eq!(n["totalPrice"]["amount"], "350.00");
    assert_eq!(
        n["flights"],
        json!([
            {"id": to_cdg.to_string(), "origin": "LHR", "destination": "CDG"},
            {"id": on_time.to_string(), "origin": "CDG", "destination": "JFK"}
        ])
    );

    // A shorter minimum connection time lets the 09:30 connect; a longer
    // layover the next day's.
    let page = search(&app, vars(base.clone(), json!({"mct": 30}))).await;
    assert_eq!(trips(&page)[0], vec![to_cdg, too_soon]);
    let page = search(&app, vars(base.clone(), json!({"layover": 1600}))).await;
    assert!(trips(&page).contains(&vec![to_cdg, next_day]));
    assert!(!trips(&page).contains(&vec![to_cdg, too_soon]));

    // Two stops: through Frankfurt, but never back through London.
    let page = search(&app, vars(base.clone(), json!({"stops": 2}))).await;
    assert_eq!(
        trips(&page),
        vec![
            vec![to_cdg, to_fra, fra_jfk],
            vec![to_cdg, on_time],
            vec![direct],
            vec![late]
        ]
    );
    assert_eq!(nodes(&page)[0]["stops"], 2);
    assert_eq!(nodes(&page)[0]["durationMinutes"], 720);
    assert_eq!(nodes(&page)[0]["totalPrice"]["amount"], "210.00");

    // Sorts: the two eight-hour directs tie on duration, the cheaper first;
    // the two 08:00 departures tie on departure, the cheaper first.
    let page = search(
        &app,
        vars(base.clone(), json!({"stops": 2, "sort": "DURATION"})),
    )
    .await;
    assert_eq!(
        trips(&page),
        vec![
            vec![direct],
            vec![late],
            vec![to_cdg, on_time],
            vec![to_cdg, to_fra, fra_jfk]
        ]
    );
    let page = search(
        &app,
        vars(base.clone(), json!({"stops": 2, "sort": "DEPARTURE"})),
    )
    .await;
    assert_eq!(
        trips(&page),
        vec![
            vec![to_cdg, to_fra, fra_jfk],
            vec![to_cdg, on_time],
            vec![direct],
            vec![late]
        ]
    );

    // Pages of one, for each sort, give the whole list without gaps.
    for sort in ["PRICE", "DURATION", "DEPARTURE"] {
        let all = trips(&search(&app, vars(base.clone(), json!({"stops": 2, "sort": sort}))).await);
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = search(
                &app,
                vars(
                    base.clone(),
                    json!({"stops": 2, "sort": sort, "first": 1, "after": after}),
                ),
            )
            .await;
            let got = trips(&page);
            assert!(got.len() <= 1);
            seen.extend(got);
            if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen, all, "{sort}");
        assert_eq!(seen.len(), 4);
    }

    // A cancelled connection is no longer offered.
    let r = app
        .post(
            &format!("/flights/{on_time}/cancel"),
            Some(&admin),
            json!({"reason": "crew"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    app.catch_up().await;
    let page = search(&app, base.clone()).await;
    assert_eq!(trips(&page), vec![vec![direct], vec![late]]);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn round_trips_and_multi_city_trips_fly_in_travel_order(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let direct = hop(
        &app,
        &admin,
        "LHR",
        "JFK",
        "2030-06-01T09:00:00Z",
        480,
        "500.00",
    )
    .await;
    let to_cdg = hop(
        &app,
        &admin,
        "LHR",
        "CDG",
        "2030-06-01T08:00:00Z",
        60,
        "100.00",
    )
    .await;
    let cdg_jfk = hop(
        &app,
        &admin,
        "CDG",
        "JFK",
        "2030-06-01T10:00:00Z",
        480,
        "250.00",
    )
    .await;
    // Back a week later: direct at 20:00, or through Paris overnight.
    let back = hop(
        &app,
        &admin,
        "JFK",
        "LHR",
        "2030-06-08T20:00:00Z",
        420,
        "450.00",
    )
    .await;
    let jfk_cdg = hop(
        &app,
        &admin,
        "JFK",
        "CDG",
        "2030-06-08T18:00:00Z",
        420,
        "300.00",
    )
    .await;
    let cdg_lhr = hop(
        &app,
        &admin,
        "CDG",
        "LHR",
        "2030-06-09T03:00:00Z",
        60,
        "80.00",
    )
    .await;
    // On to San Francisco, then home.
    let to_sfo = hop(
        &app,
        &admin,
        "JFK",
        "SFO",
        "2030-06-03T12:00:00Z",
        360,
        "200.00",
    )
    .await;
    let sfo_lhr = hop(
        &app,
        &admin,
        "SFO",
        "LHR",
        "2030-06-06T12:00:00Z",
        600,
        "600.00",
    )
    .await;
    // A same-day return departing before the outbound lands.
    hop(
        &app,
        &admin,
        "JFK",
        "LHR",
        "2030-06-01T15:00:00Z",
        420,
        "1.00",
    )
    .await;
    app.catch_up().await;

    let base = json!({"o": "LHR", "d": "JFK", "date": "2030-06-01", "n": 2});
    let round = search(&app, vars(base.clone(), json!({"ret": "2030-06-08"}))).await;
    let page = round.clone();
    assert_eq!(
        trips(&page),
        vec![
            vec![to_cdg, cdg_jfk, jfk_cdg, cdg_lhr],
            vec![to_cdg, cdg_jfk, back],
            vec![direct, jfk_cdg, cdg_lhr],
            vec![direct, back],
        ]
    );
    // For two passengers.
    assert_eq!(
        prices(&page),
        vec!["1460.00", "1600.00", "1760.00", "1900.00"]
    );
    let first = &nodes(&page)[0];
    assert_eq!(first["stops"], 2, "one connection each way");
    assert_eq!(
        first["durationMinutes"],
        600 + 600,
        "08:00-18:00 out, 18:00-04:00 back"
    );
    let last = &nodes(&page)[3];
    assert_eq!(last["stops"], 0);
    assert_eq!(last["durationMinutes"], 480 + 420);

    // The same day back: only a return departing after the outbound lands
    // (there is none).
    let page = search(&app, vars(base.clone(), json!({"ret": "2030-06-01"}))).await;
    assert!(trips(&page).is_empty(), "{page}");

    // A round trip spelled as legs is the same search.
    let legs = search(
        &app,
        vars(
            base.clone(),
            json!({"legs": [{"origin": "JFK", "destination": "LHR", "date": "2030-06-08"}]}),
        ),
    )
    .await;
    assert_eq!(trips(&legs), trips(&round));
    assert_eq!(prices(&legs), prices(&round));

    // Multi-city, direct flights only: London, New York, San Francisco, London.
    let page = search(
        &app,
        vars(
            base.clone(),
            json!({"stops": 0, "legs": [
                {"origin": "JFK", "destination": "SFO", "date": "2030-06-03"},
                {"origin": "SFO", "destination": "LHR", "date": "2030-06-06"}
            ]}),
        ),
    )
    .await;
    assert_eq!(trips(&page), vec![vec![direct, to_sfo, sfo_lhr]]);
    assert_eq!(nodes(&page)[0]["totalPrice"]["amount"], "2600.00");
    assert_eq!(nodes(&page)[0]["durationMinutes"], 480 + 360 + 600);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn cabins_passengers_price_airline_window_and_currency_filter_trips(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    // KLM at 08:00: economy 100 (one row: 2 seats), business 500.
    let klm = schedule(
        &app,
        &admin,
        Spec {
            from: "AMS",
            to: "MAD",
            at: "2030-07-01T08:00:00Z",
            minutes: 150,
            economy: "100.00",
            business: "500.00",
            economy_rows: 1,
            airline: "KLM",
            ..Spec::default()
        },
    )
    .await;
    // Iberia at 12:00: economy 150 (6 seats), business 400.
    let iberia = schedule(
        &app,
        &admin,
        Spec {
            from: "AMS",
            to: "MAD",
            at: "2030-07-01T12:00:00Z",
            minutes: 150,
            economy: "150.00",
            business: "400.00",
            economy_rows: 3,
            airline: "Iberia",
            ..Spec::default()
        },
    )
    .await;
    // Cheaper through Rome, but priced in two currencies: never offered.
    hop(
        &app,
        &admin,
        "AMS",
        "FCO",
        "2030-07-01T06:00:00Z",
        60,
        "10.00",
    )
    .await;
    schedule(
        &app,
        &admin,
        Spec {
            from: "FCO",
            to: "MAD",
            at: "2030-07-01T08:00:00Z",
            minutes: 60,
            economy: "10.00",
            currency: "EUR",
            ..Spec::default()
        },
    )
    .await;
    app.catch_up().await;
    let base = json!({"o": "AMS", "d": "MAD", "date": "2030-07-01"});
    let cabins =
        |page: &Value| -> Vec<Value> { nodes(page).iter().map(|n| n["cabins"].clone()).collect() };

    let page = search(&app, base.clone()).await;
    assert_eq!(trips(&page), vec![vec![klm], vec![iberia]]);
    assert_eq!(prices(&page), vec!["100.00", "150.00"]);

    // Three passengers: KLM's economy is too small, its cheapest cabin with
    // three seats is business.
    let page = search(&app, vars(base.clone(), json!({"n": 3}))).await;
    assert_eq!(trips(&page), vec![vec![iberia], vec![klm]]);
    assert_eq!(prices(&page), vec!["450.00", "1500.00"]);
    assert_eq!(cabins(&page), vec![json!(["ECONOMY"]), json!(["BUSINESS"])]);
    assert_eq!(nodes(&page)[0]["seatsLeft"], 6);
    assert_eq!(nodes(&page)[1]["seatsLeft"], 4);

    let page = search(&app, vars(base.clone(), json!({"cabin": "BUSINESS"}))).await;
    assert_eq!(trips(&page), vec![vec![iberia], vec![klm]]);
    let page = search(
        &app,
        vars(base.clone(), json!({"cabin": "BUSINESS", "n": 5})),
    )
    .await;
    assert!(trips(&page).is_empty());

    // maxPrice caps the total, for all passengers.
    let page = search(&app, vars(base.clone(), json!({"max": "120"}))).await;
    assert_eq!(trips(&page), vec![vec![klm]]);
    let page = search(&app, vars(base.clone(), json!({"n": 2, "max": "250.00"}))).await;
    assert_eq!(trips(&page), vec![vec![klm]]);
    let page = search(&app, vars(base.clone(), json!({"n": 2, "max": "300.00"}))).await;
    assert_eq!(trips(&page), vec![vec![klm], vec![iberia]]);

    let page = search(&app, vars(base.clone(), json!({"airline": "Iberia"}))).await;
    assert_eq!(trips(&page), vec![vec![iberia]]);
    let page = search(
        &app,
        vars(base.clone(), json!({"from": "2030-07-01T10:00:00Z"})),
    )
    .await;
    assert_eq!(trips(&page), vec![vec![iberia]]);
    let page = search(
        &app,
        vars(base.clone(), json!({"until": "2030-07-01T09:00:00Z"})),
    )
    .await;
    assert_eq!(trips(&page), vec![vec![klm]]);

    // Both KLM economy seats held: KLM is offered in business, until the
    // holds lapse (before their HoldExpired is projected).
    let (_, customer) = app.customer().await;
    app.booked(&customer, klm, &["10A", "10B"]).await;
    app.catch_up().await;
    let page = search(&app, base.clone()).await;
    assert_eq!(trips(&page), vec![vec![iberia], vec![klm]]);
    assert_eq!(cabins(&page)[1], json!(["BUSINESS"]));
    sqlx::query(
        "UPDATE rm_seats SET hold_expires_at = now() - interval '1 second' WHERE flight_id = $1",
    )
    .bind(klm)
    .execute(&app.pool)
    .await
    .unwrap();
    let page = search(&app, base.clone()).await;
    assert_eq!(trips(&page), vec![vec![klm], vec![iberia]]);
    assert_eq!(nodes(&page)[0]["seatsLeft"], 2);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_departed_flight_is_not_offered(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight_departing(chrono::Duration::hours(3)).await;
    app.catch_up().await;
    // Move its departure in the read model: a second ago, or in an hour,
    // its date following.
    let move_to = |offset: &'static str| {
        let pool = app.pool.clone();
        async move {
            let date: chrono::NaiveDate = sqlx::query_scalar(&format!(
                "UPDATE rm_flights SET departs_at = now() + interval '{offset}', \
                        arrives_at = now() + interval '{offset}' + interval '8 hours', \
                        departure_date = ((now() + interval '{offset}') AT TIME ZONE 'UTC')::date \
                 WHERE flight_id = $1 RETURNING departure_date"
            ))
            .bind(flight)
            .fetch_one(&pool)
            .await
            .unwrap();
            json!({"o": "LHR", "d": "JFK", "date": date.to_string()})
        }
    };
    let v = move_to("1 hour").await;
    assert_eq!(trips(&search(&app, v).await), vec![vec![flight]]);
    let v = move_to("-1 second").await;
    assert!(trips(&search(&app, v).await).is_empty());
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn bad_arguments_are_clean_errors(pool: PgPool) {
    let app = spawn(pool).await;
    let base = json!({"o": "LHR", "d": "JFK", "date": "2030-06-01"});
    for (extra, message) in [
        (json!({"stops": 3}), "maxStops"),
        (json!({"stops": -1}), "maxStops"),
        (json!({"n": 0}), "passengers"),
        (json!({"n": 10}), "passengers"),
        (json!({"o": "LONDON"}), "origin"),
        (json!({"d": "J1K"}), "destination"),
        (json!({"d": "LHR"}), "differ"),
        (json!({"max": "-1"}), "maxPrice"),
        (json!({"ret": "2030-05-31"}), "returnDate"),
        (
            json!({"ret": "2030-06-08", "legs": [{"origin": "JFK", "destination": "LHR", "date": "2030-06-08"}]}),
            "not both",
        ),
        (
            json!({"legs": [{"origin": "JFK", "destination": "XX", "date": "2030-06-08"}]}),
            "legs[0].destination",
        ),
        (
            json!({"legs": [{"origin": "JFK", "destination": "SFO", "date": "2030-05-08"}]}),
            "legs[0].date",
        ),
        (json!({"mct": -5}), "minConnectionMinutes"),
        (json!({"mct": 120, "layover": 60}), "maxLayoverMinutes"),
        (
            json!({"from": "2030-06-01T12:00:00Z", "until": "2030-06-01T08:00:00Z"}),
            "departAfter",
        ),
        (json!({"airline": " "}), "airline"),
        (json!({"first": -1}), "first"),
        (json!({"after": "nope"}), "cursor"),
    ] {
        let body = app
            .gql_err(
                None,
                SEARCH,
                vars(base.clone(), extra.clone()),
                "BAD_REQUEST",
            )
            .await;
        let said = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(said.contains(message), "{extra}: {body}");
    }
    // A cursor of one ranking is refused by another.
    let admin = app.admin_token().await;
    hop(
        &app,
        &admin,
        "LHR",
        "JFK",
        "2030-06-01T09:00:00Z",
        480,
        "500.00",
    )
    .await;
    hop(
        &app,
        &admin,
        "LHR",
        "JFK",
        "2030-06-01T10:00:00Z",
        480,
        "500.00",
    )
    .await;
    app.catch_up().await;
    let page = search(&app, vars(base.clone(), json!({"first": 1}))).await;
    let cursor = page["pageInfo"]["endCursor"].as_str().unwrap();
    app.gql_err(
        None,
        SEARCH,
        vars(base.clone(), json!({"after": cursor, "sort": "DURATION"})),
        "BAD_REQUEST",
    )
    .await;
}
