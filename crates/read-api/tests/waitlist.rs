//! `myWaitlist` and `waitlistUpdated` over the read model the `waitlist`
//! projector builds from the line's events (appended here as the seat
//! inventory would decide them).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use domain::booking::{PassengerDetails, PassengerPersonal, PassengerType};
use domain::seats::SeatEvent;
use domain::values::{Cabin, Personal, Role};
use domain::waitlist::{WaitingPassenger, WaitlistJoined, WaitlistOffered, WaitlistWithdrawn};
use eventstore::{
    Actor, AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, Sealer, StreamAppend,
    StreamId,
};
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{spawn, TestApp};
use uuid::Uuid;

const MY_WAITLIST: &str = "{ myWaitlist {
  id flightId cabin place status offerBookingId offerExpiresAt seats joinedAt flight { id origin }
} }";

/// Appends `events` to the flight's seat inventory stream; returns the
/// position to read after.
async fn append(app: &TestApp, flight: Uuid, events: &[SeatEvent]) -> String {
    let sealer = Sealer::postgres(app.pool.clone());
    let mut encoded = Vec::new();
    for e in events {
        let (event_type, schema_version, data) = domain::encode(e);
        encoded.push(NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            data: sealer.seal(data).await.unwrap(),
            metadata: Metadata {
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                command_id: None,
                actor: Actor::system("test"),
            },
        });
    }
    let appended = app
        .store
        .append(AppendRequest {
            streams: vec![StreamAppend {
                stream: StreamId::parse(&format!("seats-{flight}")).unwrap(),
                expected: ExpectedVersion::Any,
                events: encoded,
            }],
            commands: vec![],
        })
        .await
        .unwrap();
    appended.position.to_string()
}

/// `customer`'s party of `adults` joins the line of business.
fn joined(entry_id: Uuid, customer: Uuid, adults: usize, at: DateTime<Utc>) -> SeatEvent {
    let ids: Vec<Uuid> = (0..adults).map(|_| Uuid::now_v7()).collect();
    SeatEvent::WaitlistJoined(WaitlistJoined {
        entry_id,
        subject: customer,
        customer_id: customer,
        cabin: Cabin::Business,
        passengers: ids
            .iter()
            .map(|id| WaitingPassenger {
                passenger_id: *id,
                kind: PassengerType::Adult,
                travels_with: None,
            })
            .collect(),
        joined_at: at,
        personal: Personal::Known(
            ids.iter()
                .map(|id| PassengerPersonal {
                    passenger_id: *id,
                    details: PassengerDetails {
                        first_name: "Grace".into(),
                        last_name: "Hopper".into(),
                        date_of_birth: NaiveDate::from_ymd_opt(1980, 12, 9).unwrap(),
                        email: None,
                        phone: None,
                        passport: None,
                    },
                })
                .collect(),
        ),
    })
}

/// The answer's entries of `myWaitlist` as (id, status, place).
fn places(data: &Value) -> Vec<(String, String, i64)> {
    data["myWaitlist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
                e["place"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn my_waitlist_shows_the_callers_entries_their_offers_and_places(pool: PgPool) {
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

    let (ada, ada_token) = app.token(Role::Customer);
    let (bob, bob_token) = app.token(Role::Customer);
    let (cyd, cyd_token) = app.token(Role::Customer);
    let (_, dan_token) = app.token(Role::Customer);
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let joined_at: DateTime<Utc> = "2030-05-01T08:00:00Z".parse().unwrap();
    let offer = Uuid::now_v7();
    let expires_at: DateTime<Utc> = "2030-05-01T10:15:00Z".parse().unwrap();
    let position = append(
        &app,
        flight,
        &[
            joined(a, ada, 2, joined_at),
            joined(b, bob, 1, joined_at),
            joined(c, cyd, 1, joined_at),
            SeatEvent::WaitlistOffered(WaitlistOffered {
                entry_id: a,
                customer_id: ada,
                booking_id: offer,
                expires_at,
            }),
        ],
    )
    .await;

    // Read straight after the append (X-Read-After), as after a command.
    let (status, body) = app
        .gql_with(Some(&ada_token), Some(&position), MY_WAITLIST, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["myWaitlist"],
        json!([{
            "id": a, "flightId": flight, "cabin": "BUSINESS", "place": 0, "status": "OFFERED",
            "offerBookingId": offer, "offerExpiresAt": body["data"]["myWaitlist"][0]["offerExpiresAt"],
            "seats": 2, "joinedAt": body["data"]["myWaitlist"][0]["joinedAt"],
            "flight": {"id": flight, "origin": "LHR"},
        }]),
        "{body}"
    );
    let at = |key: &str| -> DateTime<Utc> {
        body["data"]["myWaitlist"][0][key]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        (at("offerExpiresAt"), at("joinedAt")),
        (expires_at, joined_at)
    );

    // Ada's offer took her out of the line: Bob is next, Cyd after him.
    let data = app.gql(Some(&bob_token), MY_WAITLIST, json!({})).await;
    assert_eq!(places(&data), [(b.to_string(), "WAITING".into(), 1)]);
    assert_eq!(data["myWaitlist"][0]["offerBookingId"], Value::Null);
    assert_eq!(data["myWaitlist"][0]["offerExpiresAt"], Value::Null);
    let data = app.gql(Some(&cyd_token), MY_WAITLIST, json!({})).await;
    assert_eq!(places(&data), [(c.to_string(), "WAITING".into(), 2)]);
    // Someone else sees none of it; nobody anonymous sees anything.
    let data = app.gql(Some(&dan_token), MY_WAITLIST, json!({})).await;
    assert_eq!(data["myWaitlist"], json!([]));
    app.gql_err(None, MY_WAITLIST, json!({}), "UNAUTHORIZED")
        .await;

    // Cyd watches her entry: it moves up when Bob leaves the line.
    let schema = read_api::schema(&app.read);
    let caller = app.state.tokens.verify(&cyd_token).unwrap();
    let request =
        async_graphql::Request::new("subscription { waitlistUpdated { id status place } }")
            .data(read_api::Viewer(Some(caller)));
    let mut stream = schema.execute_stream(request);
    let mut next = async || {
        let item = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an update in time")
            .unwrap();
        assert!(item.errors.is_empty(), "{:?}", item.errors);
        item.data.into_json().unwrap()
    };
    let first = next().await;
    assert_eq!(
        first["waitlistUpdated"],
        json!([{"id": c, "status": "WAITING", "place": 2}])
    );
    append(
        &app,
        flight,
        &[SeatEvent::WaitlistWithdrawn(WaitlistWithdrawn {
            entry_id: b,
        })],
    )
    .await;
    let moved = next().await;
    assert_eq!(
        moved["waitlistUpdated"],
        json!([{"id": c, "status": "WAITING", "place": 1}])
    );

    // Anonymous callers cannot watch.
    let refused = schema
        .execute_stream(async_graphql::Request::new(
            "subscription { waitlistUpdated { id } }",
        ))
        .next()
        .await
        .unwrap();
    assert_eq!(
        refused.errors[0].extensions.as_ref().unwrap().get("code"),
        Some(&async_graphql::Value::from("UNAUTHORIZED"))
    );

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
