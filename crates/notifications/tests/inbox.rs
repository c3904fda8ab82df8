//! The inbox against a real PostgreSQL: domain events appended through the
//! store, followed by the inbox, and the deliveries it queues for them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, NaiveDate, Utc};
use domain::booking::{
    place_booking, BookingEvent, PassengerDetails, PassengerRequest, PassengerType, PlaceBooking,
};
use domain::flight::{schedule_flight, CabinSpec, Flight, ScheduleFlight};
use domain::seats::{SeatCommand, SeatEvent, SeatInventory, SeatRequest};
use domain::values::{AirportCode, Cabin, Currency, FlightNumber, Money, Pnr};
use domain::waitlist::{serve_waitlist, JoinWaitlist, ServeWaitlist, WaitingPassenger};
use domain::{Aggregate, DomainEvent};
use eventstore::{
    Actor, AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, PgEventStore, Position,
    Sealer, StreamAppend, StreamId,
};
use notifications::inbox::NotificationInbox;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

struct World {
    pool: PgPool,
    store: Arc<PgEventStore>,
    sealer: Sealer,
    appended: Position,
}

impl World {
    fn new(pool: PgPool) -> Self {
        Self {
            store: Arc::new(PgEventStore::new(pool.clone())),
            sealer: Sealer::postgres(pool.clone()),
            pool,
            appended: Position::START,
        }
    }

    async fn encode<E: DomainEvent>(&self, events: &[E]) -> Vec<NewEvent> {
        let mut out = Vec::new();
        for e in events {
            let (event_type, schema_version, data) = domain::encode(e);
            out.push(NewEvent {
                event_id: Uuid::now_v7(),
                event_type: event_type.into(),
                schema_version,
                data: self.sealer.seal(data).await.unwrap(),
                metadata: Metadata {
                    correlation_id: Uuid::now_v7(),
                    causation_id: None,
                    command_id: None,
                    actor: Actor::system("test"),
                },
            });
        }
        out
    }

    /// Appends the streams' events in one append, in the order given.
    async fn append(&mut self, streams: Vec<(String, Vec<NewEvent>)>) {
        let request = AppendRequest {
            streams: streams
                .into_iter()
                .map(|(s, events)| StreamAppend {
                    stream: StreamId::parse(&s).unwrap(),
                    expected: ExpectedVersion::Any,
                    events,
                })
                .collect(),
            commands: vec![],
        };
        let at = self.store.append(request).await.unwrap().position;
        self.appended = self.appended.max(at);
    }

    /// Runs the inbox over everything appended so far (once the log lets
    /// readers see it: transactions of tests alongside hold it back).
    async fn notify(&self) {
        loop {
            let head = self.store.head().await.unwrap().unwrap_or_default();
            if head >= self.appended {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let runner =
            projections::Runner::new(self.pool.clone(), self.store.clone(), self.sealer.clone());
        runner.catch_up(&NotificationInbox).await.unwrap();
    }

    async fn webhook(&self, events: &[&str]) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO webhooks (webhook_id, url, events, secret, created_by) \
             VALUES ($1, 'http://127.0.0.1:9/hook', $2, 'secret', $1)",
        )
        .bind(id)
        .bind(events)
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }
}

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::parse("USD").unwrap()).unwrap()
}

fn details(i: usize) -> PassengerDetails {
    PassengerDetails {
        first_name: format!("Ada{i}"),
        last_name: "Lovelace".into(),
        date_of_birth: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
        email: None,
        phone: None,
        passport: None,
    }
}

fn pnr_of(id: Uuid) -> Pnr {
    let b = id.as_bytes();
    Pnr::from_random([b[10], b[11], b[12], b[13], b[14], b[15]])
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_offer_to_the_waiting_list_is_mailed_and_posted_once(pool: PgPool) {
    let mut w = World::new(pool);
    let now: DateTime<Utc> = Utc::now();
    let offers_hook = w.webhook(&["waitlist.offered"]).await;
    let other_hook = w.webhook(&["booking.ticketed"]).await;

    // A flight whose one business seat is held, and a customer in line.
    let flight_id = Uuid::now_v7();
    let departs_at = now + Span::days(30);
    let (flight_events, mut seats) = schedule_flight(ScheduleFlight {
        flight_id,
        flight_number: FlightNumber::parse("BA117").unwrap(),
        airline: "British Airways".into(),
        origin: AirportCode::parse("LHR").unwrap(),
        destination: AirportCode::parse("JFK").unwrap(),
        departs_at,
        arrives_at: departs_at + Span::hours(8),
        currency: Currency::parse("USD").unwrap(),
        cabins: vec![
            CabinSpec {
                cabin: Cabin::Business,
                first_row: 1,
                last_row: 1,
                seat_letters: "A".into(),
                fare: usd("1800.00"),
                child_percent: None,
                infant_percent: None,
            },
            CabinSpec {
                cabin: Cabin::Economy,
                first_row: 10,
                last_row: 10,
                seat_letters: "AB".into(),
                fare: usd("420.00"),
                child_percent: None,
                infant_percent: None,
            },
        ],
        now,
    })
    .unwrap();
    let flight: Flight = Flight::fold(&flight_events);
    let seats_stream = format!("seats-{flight_id}");
    let encoded_flight = w.encode(&flight_events).await;
    let encoded_seats = w.encode(&seats).await;
    w.append(vec![
        (format!("flight-{flight_id}"), encoded_flight),
        (seats_stream.clone(), encoded_seats),
    ])
    .await;

    let holder = Uuid::now_v7();
    let placed = place_booking(
        &flight,
        &SeatInventory::fold(&seats),
        None,
        PlaceBooking {
            booking_id: holder,
            pnr: pnr_of(holder),
            customer_id: Uuid::now_v7(),
            created_by: Uuid::now_v7(),
            passengers: vec![PassengerRequest {
                passenger_id: Uuid::now_v7(),
                kind: PassengerType::Adult,
                seat: Some(SeatRequest::Cabin(Cabin::Business)),
                travels_with: None,
                details: details(0),
            }],
            hold_expires_at: now + Span::minutes(10),
            now,
        },
    )
    .unwrap();
    seats.extend(placed.seats.iter().cloned());
    let (held, created) = (
        w.encode(&placed.seats).await,
        w.encode(&placed.booking).await,
    );
    w.append(vec![
        (format!("booking-{holder}"), created),
        (seats_stream.clone(), held),
    ])
    .await;

    let customer = Uuid::now_v7();
    let entry_id = Uuid::now_v7();
    let joined = SeatInventory::fold(&seats)
        .decide(SeatCommand::JoinWaitlist(JoinWaitlist {
            entry_id,
            customer_id: customer,
            cabin: Cabin::Business,
            passengers: vec![WaitingPassenger {
                passenger_id: Uuid::now_v7(),
                kind: PassengerType::Adult,
                travels_with: None,
            }],
            details: vec![details(1)],
            now,
        }))
        .unwrap();
    seats.extend(joined.iter().cloned());

    // The hold lapses and the seat is offered to the line: the offer's
    // seat events come first in the append, its booking after them.
    let later = now + Span::minutes(11);
    let expired = SeatInventory::fold(&seats)
        .decide(SeatCommand::Expire {
            booking_id: holder,
            now: later,
        })
        .unwrap();
    seats.extend(expired.iter().cloned());
    let offer = Uuid::now_v7();
    let expires_at = later + Span::minutes(15);
    let served = serve_waitlist(
        &flight,
        &SeatInventory::fold(&seats),
        ServeWaitlist {
            booking_id: offer,
            pnr: pnr_of(offer),
            offer_expires_at: expires_at,
            now: later,
        },
    )
    .unwrap();
    assert_eq!(served.offered, Some(entry_id));
    assert!(served
        .seats
        .iter()
        .any(|e| matches!(e, SeatEvent::WaitlistOffered(_))));
    assert!(matches!(
        served.booking.first(),
        Some(BookingEvent::BookingCreated(_))
    ));
    let line = [joined, expired, served.seats].concat();
    let (line, booked) = (w.encode(&line).await, w.encode(&served.booking).await);
    w.append(vec![
        (seats_stream.clone(), line),
        (format!("booking-{offer}"), booked),
    ])
    .await;

    w.notify().await;
    type Row = (
        String,
        String,
        Option<Uuid>,
        Option<Uuid>,
        Option<Uuid>,
        Option<Uuid>,
        Value,
    );
    let deliveries = || async {
        sqlx::query_as::<_, Row>(
            "SELECT event_type, channel, webhook_id, user_id, booking_id, flight_id, data \
             FROM notification_deliveries ORDER BY channel",
        )
        .fetch_all(&w.pool)
        .await
        .unwrap()
    };
    let rows = deliveries().await;
    // Nothing for the other seat events (the holds, the expiry, the join)
    // nor for the webhook that did not ask for offers.
    let data = json!({
        "entry_id": entry_id,
        "booking_id": offer,
        "pnr": pnr_of(offer).as_str(),
        "flight_id": flight_id,
        "customer_id": customer,
        "expires_at": expires_at,
    });
    let expected: Vec<Row> = vec![
        (
            "waitlist.offered".into(),
            "email".into(),
            None,
            Some(customer),
            Some(offer),
            Some(flight_id),
            data.clone(),
        ),
        (
            "waitlist.offered".into(),
            "webhook".into(),
            Some(offers_hook),
            None,
            Some(offer),
            Some(flight_id),
            data,
        ),
    ];
    assert_eq!(rows, expected);
    assert!(rows.iter().all(|r| r.2 != Some(other_hook)));

    // Followed again from the start (a replay): nothing is queued twice.
    sqlx::query("UPDATE projection_checkpoints SET tx = 0, seq = 0 WHERE name = 'notifications'")
        .execute(&w.pool)
        .await
        .unwrap();
    w.notify().await;
    assert_eq!(deliveries().await, expected);
}
