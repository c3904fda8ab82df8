//! The projectors against a real PostgreSQL: realistic events from the
//! domain, appended through the store, projected, and read back.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, NaiveDate, Utc};
use domain::booking::{
    place_booking, Booking, BookingCommand, CancelledBy, PassengerDetails, PassengerRequest,
    PassengerType, PlaceBooking, Placed,
};
use domain::flight::{schedule_flight, CabinSpec, Flight, ScheduleFlight};
use domain::payment::{InvoiceLineInput, Payment, PaymentCommand};
use domain::seats::{SeatCommand, SeatInventory, SeatRequest};
use domain::user::{User, UserCommand};
use domain::values::{
    AirportCode, Cabin, Currency, Email, FlightNumber, Money, Pnr, Role, Seat, TicketNumber,
};
use domain::waitlist::{serve_waitlist, JoinWaitlist, ServeWaitlist, WaitingPassenger};
use domain::{Aggregate, DomainEvent};
use eventstore::{
    Actor, AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, PgEventStore, Position,
    Sealer, StreamAppend, StreamId,
};
use projections::flights::FlightsProjector;
use projections::model::waitlist::{my_waitlist, WaitlistEntryRow};
use projections::waitlist::WaitlistProjector;
use projections::{Decoded, Error, ProjectionStatus, Projector, Runner, RunnerOptions};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

struct World {
    pool: PgPool,
    store: Arc<PgEventStore>,
    sealer: Sealer,
    runner: Runner,
    /// The newest position appended, so tests can wait until it is readable
    /// (an open transaction anywhere in the cluster holds readers back).
    appended: std::sync::Mutex<Position>,
}

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::parse("USD").unwrap()).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

impl World {
    fn new(pool: PgPool) -> Self {
        let store = Arc::new(PgEventStore::new(pool.clone()));
        let sealer = Sealer::postgres(pool.clone());
        let runner = Runner::new(pool.clone(), store.clone(), sealer.clone());
        Self {
            pool,
            store,
            sealer,
            runner,
            appended: Default::default(),
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

    async fn append(&self, streams: Vec<(String, Vec<NewEvent>)>) -> Position {
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
        let mut appended = self.appended.lock().unwrap();
        *appended = (*appended).max(at);
        at
    }

    /// Waits until everything appended so far is readable from the log.
    async fn readable(&self) -> Position {
        let wanted = *self.appended.lock().unwrap();
        loop {
            let head = self.store.head().await.unwrap().unwrap_or_default();
            if head >= wanted {
                return head;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn load<A: Aggregate>(&self, id: Uuid) -> A {
        let stream = StreamId::parse(&A::stream_id(id)).unwrap();
        let mut state = A::default();
        for e in self.store.read_stream(&stream, 1, None).await.unwrap() {
            let data = self.sealer.open(e.data).await.unwrap();
            let event: A::Event = domain::decode(&e.event_type, e.schema_version, data).unwrap();
            state = state.evolve(&event);
        }
        state
    }

    /// Loads, decides and appends one command.
    async fn exec<A: Aggregate>(&self, id: Uuid, command: A::Command) -> Position {
        let state: A = self.load(id).await;
        let events = state.decide(command).expect("command accepted");
        let events = self.encode(&events).await;
        self.append(vec![(A::stream_id(id), events)]).await
    }

    async fn flight(&self, now: DateTime<Utc>) -> Uuid {
        let flight_id = Uuid::now_v7();
        let departs_at = now + Span::days(30);
        let (flight, seats) = schedule_flight(ScheduleFlight {
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
                    last_row: 2,
                    seat_letters: "AC".into(),
                    fare: usd("1800.00"),
                    child_percent: None,
                    infant_percent: None,
                },
                CabinSpec {
                    cabin: Cabin::Economy,
                    first_row: 10,
                    last_row: 12,
                    seat_letters: "ABC".into(),
                    fare: usd("420.00"),
                    child_percent: None,
                    infant_percent: None,
                },
            ],
            now,
        })
        .unwrap();
        let flight = self.encode(&flight).await;
        let seats = self.encode(&seats).await;
        self.append(vec![
            (format!("flight-{flight_id}"), flight),
            (format!("seats-{flight_id}"), seats),
        ])
        .await;
        flight_id
    }

    /// Books `seats` ("10A", or a cabin name) for `customer`; the hold
    /// lasts 10 minutes from `now`.
    async fn book(
        &self,
        flight_id: Uuid,
        customer: Uuid,
        seats: &[&str],
        now: DateTime<Utc>,
    ) -> Uuid {
        let flight: Flight = self.load(flight_id).await;
        let inventory: SeatInventory = self.load(flight_id).await;
        let booking_id = Uuid::now_v7();
        let passengers = seats
            .iter()
            .enumerate()
            .map(|(i, s)| PassengerRequest {
                passenger_id: Uuid::now_v7(),
                kind: PassengerType::Adult,
                seat: Some(match s.parse::<Cabin>() {
                    Ok(c) => SeatRequest::Cabin(c),
                    Err(_) => SeatRequest::Seat(Seat::parse(s).unwrap()),
                }),
                travels_with: None,
                details: PassengerDetails {
                    first_name: format!("Ada{i}"),
                    last_name: "Lovelace".into(),
                    date_of_birth: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
                    email: None,
                    phone: None,
                    passport: None,
                },
            })
            .collect();
        let id_bytes = booking_id.as_bytes();
        let Placed {
            seats: seat_events,
            booking: booking_events,
            ..
        } = place_booking(
            &flight,
            &inventory,
            None,
            PlaceBooking {
                booking_id,
                pnr: Pnr::from_random([
                    id_bytes[10],
                    id_bytes[11],
                    id_bytes[12],
                    id_bytes[13],
                    id_bytes[14],
                    id_bytes[15],
                ]),
                customer_id: customer,
                created_by: customer,
                passengers,
                hold_expires_at: now + Span::minutes(10),
                now,
            },
        )
        .unwrap();
        let seat_events = self.encode(&seat_events).await;
        let booking_events = self.encode(&booking_events).await;
        self.append(vec![
            (format!("seats-{flight_id}"), seat_events),
            (format!("booking-{booking_id}"), booking_events),
        ])
        .await;
        booking_id
    }

    /// Pays, captures, confirms seats and booking, issues tickets and an
    /// invoice: the happy path the saga will drive.
    async fn pay_and_ticket(&self, flight_id: Uuid, booking_id: Uuid, now: DateTime<Utc>) -> Uuid {
        let booking: Booking = self.load(booking_id).await;
        let total = booking.info.as_ref().unwrap().total;
        let payment_id = Uuid::now_v7();
        self.exec::<Booking>(
            booking_id,
            BookingCommand::SubmitPayment { payment_id, now },
        )
        .await;
        self.exec::<Payment>(
            payment_id,
            PaymentCommand::Request {
                payment_id,
                booking_id,
                amount: total,
                card_brand: "visa".into(),
                card_last4: "4242".into(),
                card_token: None,
                now,
            },
        )
        .await;
        self.exec::<Payment>(
            payment_id,
            PaymentCommand::Capture {
                gateway_reference: "ch_1".into(),
                now,
            },
        )
        .await;
        self.exec::<SeatInventory>(flight_id, SeatCommand::Confirm { booking_id, now })
            .await;
        self.exec::<Booking>(booking_id, BookingCommand::Confirm { now })
            .await;
        let tickets = booking
            .passengers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                domain::booking::IssuedTicket::new(
                    p.passenger_id,
                    TicketNumber::new(125, i as u64 + 1).unwrap(),
                )
            })
            .collect();
        self.exec::<Booking>(booking_id, BookingCommand::IssueTickets { tickets, now })
            .await;
        self.exec::<Payment>(
            payment_id,
            PaymentCommand::IssueInvoice {
                invoice_number: format!("INV-{}", &booking_id.simple().to_string()[..8]),
                tax_rate: dec("0.20"),
                lines: vec![InvoiceLineInput {
                    description: "Fare".into(),
                    quantity: 1,
                    unit_price: total,
                    credit: false,
                }],
                now,
            },
        )
        .await;
        payment_id
    }

    /// Puts `customer`'s party (one passenger of each `kinds`, an infant
    /// on the first adult's lap) in the line of `cabin`; returns the entry.
    async fn join(
        &self,
        flight_id: Uuid,
        customer: Uuid,
        cabin: Cabin,
        kinds: &[PassengerType],
        now: DateTime<Utc>,
    ) -> Uuid {
        let entry_id = Uuid::now_v7();
        let ids: Vec<Uuid> = kinds.iter().map(|_| Uuid::now_v7()).collect();
        let passengers = kinds
            .iter()
            .zip(&ids)
            .map(|(kind, id)| WaitingPassenger {
                passenger_id: *id,
                kind: *kind,
                travels_with: (*kind == PassengerType::Infant).then_some(ids[0]),
            })
            .collect();
        let details = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| PassengerDetails {
                first_name: format!("Wait{i}"),
                last_name: "Lister".into(),
                date_of_birth: match kind {
                    PassengerType::Infant => (now - Span::days(200)).date_naive(),
                    _ => NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
                },
                email: None,
                phone: None,
                passport: None,
            })
            .collect();
        self.exec::<SeatInventory>(
            flight_id,
            SeatCommand::JoinWaitlist(JoinWaitlist {
                entry_id,
                customer_id: customer,
                cabin,
                passengers,
                details,
                now,
            }),
        )
        .await;
        entry_id
    }

    /// Serves the flight's line once, as the waiting-list process manager
    /// does: the offer (if one is made) is a booking held for 15 minutes
    /// from `now`, appended with the seat events. Returns that booking.
    async fn serve(&self, flight_id: Uuid, now: DateTime<Utc>) -> Uuid {
        let flight: Flight = self.load(flight_id).await;
        let inventory: SeatInventory = self.load(flight_id).await;
        let booking_id = Uuid::now_v7();
        let b = booking_id.as_bytes();
        let served = serve_waitlist(
            &flight,
            &inventory,
            ServeWaitlist {
                booking_id,
                pnr: Pnr::from_random([b[10], b[11], b[12], b[13], b[14], b[15]]),
                offer_expires_at: now + Span::minutes(15),
                now,
            },
        )
        .unwrap();
        let mut streams = vec![(
            format!("seats-{flight_id}"),
            self.encode(&served.seats).await,
        )];
        if !served.booking.is_empty() {
            streams.push((
                format!("booking-{booking_id}"),
                self.encode(&served.booking).await,
            ));
        }
        self.append(streams).await;
        booking_id
    }

    /// The `rm_waitlist_entries` row of `entry`, read as the read side does.
    async fn entry(&self, customer: Uuid, entry: Uuid) -> WaitlistEntryRow {
        my_waitlist(&self.pool, customer)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.entry_id == entry)
            .expect("the entry is in the read model")
    }

    async fn catch_up_all(&self) {
        self.readable().await;
        for p in projections::all() {
            self.runner.catch_up(&*p).await.unwrap();
        }
    }

    async fn seat_status(&self, flight: Uuid, seat: &str) -> (String, Option<Uuid>) {
        sqlx::query_as("SELECT status, booking_id FROM rm_seats WHERE flight_id = $1 AND seat = $2")
            .bind(flight)
            .bind(seat)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// (available, held, sold) of a cabin, and of the whole flight.
    async fn counts(&self, flight: Uuid, cabin: &str) -> ((i32, i32, i32), (i32, i32, i32)) {
        let c = sqlx::query_as(
            "SELECT available_seats, held_seats, sold_seats FROM rm_flight_cabins \
             WHERE flight_id = $1 AND cabin = $2",
        )
        .bind(flight)
        .bind(cabin)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        let f = sqlx::query_as(
            "SELECT available_seats, held_seats, sold_seats FROM rm_flights WHERE flight_id = $1",
        )
        .bind(flight)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        (c, f)
    }

    /// Every row of every read-model table, in a stable order.
    async fn snapshot(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for p in projections::all() {
            for table in p.tables() {
                let rows: Value = sqlx::query_scalar(&format!(
                    "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]'::jsonb) FROM {table} t"
                ))
                .fetch_one(&self.pool)
                .await
                .unwrap();
                out.push((table.to_string(), rows));
            }
        }
        out
    }

    /// Ada, Bob and Cyd register; Ada adds a phone, Bob becomes an agent
    /// and is suspended, reactivated and suspended again; Cyd is erased.
    async fn accounts(&self, ada: Uuid, now: chrono::DateTime<Utc>) {
        let (bob, cyd) = (Uuid::now_v7(), Uuid::now_v7());
        for (id, email, name) in [
            (ada, "ada@example.com", "Ada Lovelace"),
            (bob, "bob@example.com", "Bob Babbage"),
            (cyd, "cyd@example.com", "Cyd Charisse"),
        ] {
            self.exec::<User>(
                id,
                UserCommand::Register {
                    user_id: id,
                    email: Email::parse(email).unwrap(),
                    full_name: name.into(),
                    role: Role::Customer,
                    now,
                },
            )
            .await;
        }
        self.exec::<User>(
            ada,
            UserCommand::UpdateProfile {
                full_name: None,
                phone: Some("+44 20 7946 0958".into()),
                now,
            },
        )
        .await;
        self.exec::<User>(
            bob,
            UserCommand::ChangeRole {
                role: Role::Agent,
                now,
            },
        )
        .await;
        for command in [
            UserCommand::Suspend {
                reason: "chargebacks".into(),
                now,
            },
            UserCommand::Reactivate { now },
            UserCommand::Suspend {
                reason: "again".into(),
                now,
            },
        ] {
            self.exec::<User>(bob, command).await;
        }
        self.exec::<User>(cyd, UserCommand::Erase { now }).await;
        self.sealer.shred(cyd).await.unwrap();
    }

    /// A varied history: accounts (registered, edited, re-roled,
    /// suspended and reactivated, erased), holds, a sale, an expiry, a
    /// cancellation with a refund.
    async fn history(&self) -> Uuid {
        let now = Utc::now();
        let flight = self.flight(now).await;
        let ada = Uuid::now_v7();
        self.accounts(ada, now).await;
        let paid = self.book(flight, ada, &["10A", "10B"], now).await;
        self.pay_and_ticket(flight, paid, now).await;
        let lapsed = self.book(flight, Uuid::now_v7(), &["business"], now).await;
        self.exec::<SeatInventory>(
            flight,
            SeatCommand::Expire {
                booking_id: lapsed,
                now: now + Span::minutes(11),
            },
        )
        .await;
        self.exec::<Booking>(
            lapsed,
            BookingCommand::Expire {
                now: now + Span::minutes(11),
            },
        )
        .await;
        let cancelled = self.book(flight, ada, &["11C"], now).await;
        let payment = self.pay_and_ticket(flight, cancelled, now).await;
        self.exec::<Booking>(
            cancelled,
            BookingCommand::Cancel {
                reason: "change of plans".into(),
                now,
                departs_at: now + Span::days(30),
                by: CancelledBy::Customer,
            },
        )
        .await;
        self.exec::<SeatInventory>(
            flight,
            SeatCommand::Return {
                booking_id: cancelled,
                reason: "cancelled".into(),
            },
        )
        .await;
        self.exec::<Payment>(
            payment,
            PaymentCommand::Refund {
                refund_id: Uuid::now_v7(),
                amount: usd("420.00"),
                reason: "cancelled".into(),
                now,
            },
        )
        .await;
        self.book(flight, Uuid::now_v7(), &["12A"], now).await;
        flight
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn seat_map_and_counts_follow_holds_expiries_and_sales(pool: PgPool) {
    let w = World::new(pool);
    let now = Utc::now();
    let flight = w.flight(now).await;
    w.catch_up_all().await;
    assert_eq!(w.counts(flight, "economy").await, ((9, 0, 0), (13, 0, 0)));
    assert_eq!(
        w.seat_status(flight, "10A").await,
        ("AVAILABLE".into(), None)
    );

    let sold = w.book(flight, Uuid::now_v7(), &["10A", "10B"], now).await;
    let lapsing = w
        .book(flight, Uuid::now_v7(), &["business", "economy"], now)
        .await;
    w.catch_up_all().await;
    assert_eq!(
        w.seat_status(flight, "10A").await,
        ("HELD".into(), Some(sold))
    );
    assert_eq!(
        w.seat_status(flight, "1A").await,
        ("HELD".into(), Some(lapsing))
    );
    assert_eq!(w.counts(flight, "economy").await, ((6, 3, 0), (9, 4, 0)));
    assert_eq!(w.counts(flight, "business").await.0, (3, 1, 0));

    w.pay_and_ticket(flight, sold, now).await;
    w.exec::<SeatInventory>(
        flight,
        SeatCommand::Expire {
            booking_id: lapsing,
            now: now + Span::minutes(11),
        },
    )
    .await;
    w.catch_up_all().await;
    assert_eq!(
        w.seat_status(flight, "10A").await,
        ("SOLD".into(), Some(sold))
    );
    assert_eq!(
        w.seat_status(flight, "1A").await,
        ("AVAILABLE".into(), None)
    );
    assert_eq!(w.counts(flight, "economy").await, ((7, 0, 2), (11, 0, 2)));
    assert_eq!(w.counts(flight, "business").await.0, (4, 0, 0));

    let (departure_date, total): (NaiveDate, i32) = sqlx::query_as(
        "SELECT departure_date, total_seats FROM rm_flights \
         WHERE origin = 'LHR' AND destination = 'JFK' AND flight_id = $1",
    )
    .bind(flight)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(departure_date, (now + Span::days(30)).date_naive());
    assert_eq!(total, 13);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn bookings_payments_invoices_and_analytics(pool: PgPool) {
    let w = World::new(pool);
    let flight = w.history().await;
    w.catch_up_all().await;

    let rows: Vec<(String, Option<Uuid>, Decimal, Option<Decimal>)> = sqlx::query_as(
        "SELECT status, payment_id, total, refund FROM rm_bookings WHERE flight_id = $1 ORDER BY created_at, booking_id",
    )
    .bind(flight)
    .fetch_all(&w.pool)
    .await
    .unwrap();
    let statuses: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(statuses, ["TICKETED", "EXPIRED", "CANCELLED", "HELD"]);
    assert!(rows[0].1.is_some());
    assert_eq!(rows[0].2, dec("840.00"));
    assert_eq!(rows[2].3, Some(dec("420.00")));

    let tickets: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT p.seat, p.first_name, p.ticket_number FROM rm_booking_passengers p \
         JOIN rm_bookings b USING (booking_id) WHERE b.status = 'TICKETED' ORDER BY p.ordinal",
    )
    .fetch_all(&w.pool)
    .await
    .unwrap();
    assert_eq!(
        tickets,
        [
            (
                "10A".into(),
                Some("Ada0".into()),
                Some("1250000000001".into())
            ),
            (
                "10B".into(),
                Some("Ada1".into()),
                Some("1250000000002".into())
            ),
        ]
    );

    let payments: Vec<(String, Decimal, Decimal, Option<String>)> = sqlx::query_as(
        "SELECT status, amount, refunded, card_last4 FROM rm_payments ORDER BY requested_at, payment_id",
    )
    .fetch_all(&w.pool)
    .await
    .unwrap();
    assert_eq!(
        payments,
        [
            (
                "CAPTURED".into(),
                dec("840.00"),
                dec("0"),
                Some("4242".into())
            ),
            (
                "REFUNDED".into(),
                dec("420.00"),
                dec("420.00"),
                Some("4242".into())
            ),
        ]
    );
    let (lines, total): (Value, Decimal) =
        sqlx::query_as("SELECT lines, total FROM rm_invoices WHERE total = 840")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(total, dec("840.00"));
    assert_eq!(lines[0]["description"], "Fare");
    assert_eq!(lines[0]["amount"]["amount"], "840.00");

    let (gross, refunds, net, airline): (Decimal, Decimal, Decimal, String) = sqlx::query_as(
        "SELECT sum(gross), sum(refunds), sum(net), min(airline) FROM rm_revenue_daily \
         WHERE origin = 'LHR' AND destination = 'JFK'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(
        (gross, refunds, net, airline.as_str()),
        (
            dec("1260.00"),
            dec("420.00"),
            dec("840.00"),
            "British Airways"
        )
    );
    let funnel: (i32, i32, i32, i32, i32, i32) = sqlx::query_as(
        "SELECT created, payment_submitted, paid, ticketed, expired, cancelled FROM rm_booking_funnel",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(funnel, (4, 2, 2, 2, 1, 1));
    let (sold, total): (i32, i32) =
        sqlx::query_as("SELECT sold_seats, total_seats FROM rm_flights WHERE flight_id = $1")
            .bind(flight)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!((sold, total), (2, 13), "load factor 2/13");
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_erased_customer_has_no_names_in_the_read_model(pool: PgPool) {
    let w = World::new(pool);
    let now = Utc::now();
    let flight = w.flight(now).await;
    let user = Uuid::now_v7();
    w.exec::<User>(
        user,
        UserCommand::Register {
            user_id: user,
            email: Email::parse("ada@example.com").unwrap(),
            full_name: "Ada Lovelace".into(),
            role: Role::Customer,
            now,
        },
    )
    .await;
    let other = w.book(flight, Uuid::now_v7(), &["12C"], now).await;
    w.book(flight, user, &["10A", "10B"], now).await;
    w.catch_up_all().await;
    let names = |w: &World| {
        let pool = w.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT p.first_name FROM rm_booking_passengers p JOIN rm_bookings b USING (booking_id) \
                 WHERE b.customer_id = $1 ORDER BY p.ordinal",
            )
            .bind(user)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(names(&w).await, [Some("Ada0".into()), Some("Ada1".into())]);

    w.exec::<User>(user, UserCommand::Erase { now }).await;
    w.sealer.shred(user).await.unwrap();
    w.catch_up_all().await;
    assert_eq!(names(&w).await, [None, None]);
    let kept: Option<String> =
        sqlx::query_scalar("SELECT first_name FROM rm_booking_passengers WHERE booking_id = $1")
            .bind(other)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(kept.as_deref(), Some("Ada0"), "other customers keep theirs");

    // The account shows as erased, without personal data.
    let account = |w: &World| {
        let pool = w.pool.clone();
        async move {
            sqlx::query_as::<_, (Option<String>, Option<String>, String)>(
                "SELECT email, full_name, status FROM rm_users WHERE user_id = $1",
            )
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(account(&w).await, (None, None, "ERASED".to_string()));

    // A rebuild after the erasure never sees the names at all.
    projections::rebuild(&w.runner, &projections::bookings::BookingsProjector)
        .await
        .unwrap();
    assert_eq!(names(&w).await, [None, None]);
    projections::rebuild(&w.runner, &projections::users::UsersProjector)
        .await
        .unwrap();
    assert_eq!(account(&w).await, (None, None, "ERASED".to_string()));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn the_waiting_list_shows_each_entry_with_its_status_and_place(pool: PgPool) {
    use domain::waitlist::WaitlistStatus as S;
    use PassengerType::{Adult, Infant};

    let w = World::new(pool);
    let now = Utc::now();
    let flight = w.flight(now).await;
    // Business (4 seats) is held whole by one booking: a line forms.
    let filling = w.book(flight, Uuid::now_v7(), &["business"; 4], now).await;
    let (ada, bob, cyd) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let a = w
        .join(flight, ada, Cabin::Business, &[Adult, Adult], now)
        .await;
    let b = w
        .join(flight, bob, Cabin::Business, &[Adult, Infant], now)
        .await;
    let c = w.join(flight, cyd, Cabin::Business, &[Adult], now).await;
    // Another flight's line is a line of its own.
    let other = w.flight(now).await;
    w.book(other, Uuid::now_v7(), &["business"; 4], now).await;
    let eve = Uuid::now_v7();
    let e = w.join(other, eve, Cabin::Business, &[Adult], now).await;
    w.catch_up_all().await;

    let ada_entry = w.entry(ada, a).await;
    assert_eq!(
        (
            ada_entry.flight_id,
            ada_entry.cabin,
            ada_entry.status,
            ada_entry.place
        ),
        (flight, Cabin::Business, S::Waiting, 1)
    );
    assert_eq!(
        ada_entry.joined_at.timestamp_micros(),
        now.timestamp_micros()
    );
    assert_eq!((ada_entry.seats, ada_entry.passengers), (2, 2));
    let bob_entry = w.entry(bob, b).await;
    // An infant needs no seat of their own.
    assert_eq!(
        (bob_entry.place, bob_entry.seats, bob_entry.passengers),
        (2, 1, 2)
    );
    assert_eq!(w.entry(cyd, c).await.place, 3);
    assert_eq!(w.entry(eve, e).await.place, 1);
    assert!(ada_entry.joined_position < bob_entry.joined_position);

    // Bob leaves the line: Cyd moves up.
    w.exec::<SeatInventory>(flight, SeatCommand::WithdrawWaitlist { entry_id: b })
        .await;
    w.catch_up_all().await;
    let bob_entry = w.entry(bob, b).await;
    assert_eq!((bob_entry.status, bob_entry.place), (S::Withdrawn, 0));
    assert_eq!(w.entry(ada, a).await.place, 1);
    assert_eq!(w.entry(cyd, c).await.place, 2);

    // The hold lapses: Ada, first in line, is offered two of the seats.
    let later = now + Span::minutes(11);
    w.exec::<SeatInventory>(
        flight,
        SeatCommand::Expire {
            booking_id: filling,
            now: later,
        },
    )
    .await;
    let offer = w.serve(flight, later).await;
    w.catch_up_all().await;
    let ada_entry = w.entry(ada, a).await;
    assert_eq!(
        (
            ada_entry.status,
            ada_entry.place,
            ada_entry.offer_booking_id,
            ada_entry.offer_expires_at.map(|t| t.timestamp_micros())
        ),
        (
            S::Offered,
            0,
            Some(offer),
            Some((later + Span::minutes(15)).timestamp_micros())
        )
    );
    assert_eq!(w.entry(cyd, c).await.place, 1);
    let (status,): (String,) =
        sqlx::query_as("SELECT status FROM rm_bookings WHERE booking_id = $1")
            .bind(offer)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(status, "HELD");

    // Ada lets the offer lapse: the line passes on to Cyd.
    let lapsed = later + Span::minutes(16);
    w.exec::<SeatInventory>(
        flight,
        SeatCommand::Expire {
            booking_id: offer,
            now: lapsed,
        },
    )
    .await;
    let second = w.serve(flight, lapsed).await;
    w.catch_up_all().await;
    let ada_entry = w.entry(ada, a).await;
    assert_eq!(
        (
            ada_entry.status,
            ada_entry.place,
            ada_entry.offer_booking_id
        ),
        (S::Lapsed, 0, Some(offer))
    );
    let cyd_entry = w.entry(cyd, c).await;
    assert_eq!(
        (
            cyd_entry.status,
            cyd_entry.place,
            cyd_entry.offer_booking_id
        ),
        (S::Offered, 0, Some(second))
    );
    assert!(cyd_entry.updated_at >= ada_entry.joined_at);

    // A customer reads their own entries only.
    let mine = my_waitlist(&w.pool, ada).await.unwrap();
    assert_eq!(mine.iter().map(|e| e.entry_id).collect::<Vec<_>>(), [a]);
    assert!(my_waitlist(&w.pool, Uuid::now_v7())
        .await
        .unwrap()
        .is_empty());

    // A rebuild from the log gives the same rows.
    let built = w.snapshot().await;
    projections::rebuild(&w.runner, &WaitlistProjector)
        .await
        .unwrap();
    assert_eq!(w.snapshot().await, built);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'rm_waitlist_entries' ORDER BY 1",
    )
    .fetch_all(&w.pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "rm_waitlist_entries_customer",
            "rm_waitlist_entries_line",
            "rm_waitlist_entries_pkey"
        ]
    );
}

/// Delegates to a real projector but fails once it has been handed
/// `fail_after` events in total, after writing part of the batch: the
/// crash in the middle of a batch.
struct Crashing {
    inner: Arc<dyn Projector>,
    fail_after: usize,
    seen: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Projector for Crashing {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn categories(&self) -> &'static [&'static str] {
        self.inner.categories()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
    fn needs_personal(&self) -> bool {
        self.inner.needs_personal()
    }
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> projections::Result<()> {
        let seen = self
            .seen
            .fetch_add(events.len(), std::sync::atomic::Ordering::SeqCst);
        if seen + events.len() > self.fail_after {
            let cut = self.fail_after.saturating_sub(seen);
            self.inner.apply(conn, &events[..cut]).await?;
            return Err(Error::Projector {
                name: self.name().into(),
                reason: format!("crash at event {}", self.fail_after),
            });
        }
        self.inner.apply(conn, events).await
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_projector_that_crashes_mid_batch_resumes_and_equals_a_rebuild(pool: PgPool) {
    let w = World::new(pool);
    w.history().await;
    w.readable().await;
    let small = w.runner.clone().with_options(RunnerOptions {
        batch_size: 4,
        ..RunnerOptions::default()
    });
    for (i, p) in projections::all().into_iter().enumerate() {
        let crashing = Crashing {
            inner: p.clone(),
            fail_after: 2 + i,
            seen: Default::default(),
        };
        assert!(small.catch_up(&crashing).await.is_err());
        // Then the process restarts with the real projector.
        small.catch_up(&*p).await.unwrap();
    }
    let resumed = w.snapshot().await;
    for p in projections::all() {
        projections::rebuild(&w.runner, &*p).await.unwrap();
    }
    assert_eq!(w.snapshot().await, resumed);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_rebuild_equals_the_incremental_model_and_the_runner_carries_on(pool: PgPool) {
    let w = World::new(pool);
    w.history().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = w.runner.clone().with_options(RunnerOptions {
        batch_size: 7,
        idle_poll: Duration::from_millis(20),
        retry_delay: Duration::from_millis(20),
        ..RunnerOptions::default()
    });
    let task = tokio::spawn(async move {
        runner
            .run_all(projections::all(), async move {
                let _ = stopped.await;
            })
            .await
    });
    let head = w.readable().await;
    projections::wait_for(&w.pool, head, Duration::from_secs(10))
        .await
        .unwrap();
    let incremental = w.snapshot().await;

    let mut total = 0;
    for p in projections::all() {
        let report = projections::rebuild(&w.runner, &*p).await.unwrap();
        assert_eq!(report.position, head);
        total += report.events;
    }
    assert!(total > 0);
    assert_eq!(w.snapshot().await, incremental);
    // Small replay batches, and a flights rebuild that outgrows its memory
    // after its first batch: what it built is written, and the rest of
    // the log is applied through the tables, to the same model.
    let small = w.runner.clone().with_options(RunnerOptions {
        rebuild_batch_size: 5,
        ..RunnerOptions::default()
    });
    let report = projections::rebuild(&small, &FlightsProjector::with_memory_rows(10))
        .await
        .unwrap();
    assert_eq!(report.position, head);
    assert_eq!(w.snapshot().await, incremental);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'rm_flights' ORDER BY 1",
    )
    .fetch_all(&w.pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "rm_flights_airline",
            "rm_flights_departures",
            "rm_flights_pkey",
            "rm_flights_search"
        ]
    );

    // The live runners follow the swapped-in tables.
    let flight = w.flight(Utc::now()).await;
    let at = w.book(flight, Uuid::now_v7(), &["10A"], Utc::now()).await;
    let head = w.readable().await;
    projections::wait_for(&w.pool, head, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        w.seat_status(flight, "10A").await,
        ("HELD".into(), Some(at))
    );
    for s in read_models(projections::status(&w.pool).await.unwrap()) {
        assert_eq!(
            (s.position, s.lag_events, s.lag_seconds),
            (head, 0, 0.0),
            "{}",
            s.name
        );
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Two processes running the same projectors (two `--role projections`)
/// race for every batch. Each batch is applied by one of them only: the
/// analytics sums would count twice, and a seat or booking row would
/// carry a stale state, if a batch were applied from a checkpoint another
/// runner had already moved.
#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn two_runners_of_one_projector_never_apply_a_batch_twice(pool: PgPool) {
    let w = World::new(pool);
    for _ in 0..3 {
        w.history().await;
    }
    let options = RunnerOptions {
        batch_size: 3,
        idle_poll: Duration::from_millis(20),
        retry_delay: Duration::from_millis(20),
        ..RunnerOptions::default()
    };
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runner = w.runner.clone().with_options(options.clone());
        tasks.push(tokio::spawn(async move {
            runner
                .run_all(projections::all(), async move {
                    let _ = stopped.await;
                })
                .await
        }));
        stops.push(stop);
    }
    let head = w.readable().await;
    projections::wait_for(&w.pool, head, Duration::from_secs(20))
        .await
        .unwrap();
    for stop in stops {
        stop.send(()).unwrap();
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let raced = w.snapshot().await;
    let names: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
    let seen: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, events_seen FROM projection_checkpoints WHERE name = ANY($1) ORDER BY name",
    )
    .bind(&names)
    .fetch_all(&w.pool)
    .await
    .unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    for (name, n) in seen {
        assert_eq!(n, total, "{name} went past each event once");
    }
    for p in projections::all() {
        projections::rebuild(&w.runner, &*p).await.unwrap();
    }
    assert_eq!(w.snapshot().await, raced);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn wait_for_returns_once_caught_up_and_times_out_otherwise(pool: PgPool) {
    let w = World::new(pool);
    let flight = w.flight(Utc::now()).await;
    let head = w.readable().await;
    match projections::wait_for(&w.pool, head, Duration::from_millis(50)).await {
        Err(Error::Stale { wanted, reached }) => {
            assert_eq!((wanted, reached), (head, Position::START));
        }
        other => panic!("expected a stale read, got {other:?}"),
    }
    let lagging = read_models(projections::status(&w.pool).await.unwrap());
    assert_eq!(lagging.len(), 6);
    assert!(lagging
        .iter()
        .all(|s| s.lag_events > 0 && s.lag_seconds >= 0.0));

    let waiter = {
        let pool = w.pool.clone();
        tokio::spawn(
            async move { projections::wait_for(&pool, head, Duration::from_secs(10)).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    w.catch_up_all().await;
    waiter.await.unwrap().unwrap();
    let (available,): (i32,) =
        sqlx::query_as("SELECT available_seats FROM rm_flights WHERE flight_id = $1")
            .bind(flight)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(available, 13);
}

/// The statuses of the read models' projectors: the other followers of the
/// log that keep a checkpoint in the same table (the sagas', the notifier's
/// and the waiting-list process manager's inboxes) are not run by these
/// tests.
fn read_models(statuses: Vec<ProjectionStatus>) -> Vec<ProjectionStatus> {
    let names: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
    statuses
        .into_iter()
        .filter(|s| names.contains(&s.name.as_str()))
        .collect()
}
