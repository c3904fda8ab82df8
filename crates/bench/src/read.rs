//! The read side: projection rebuilds, `searchFlights` over HTTP, and
//! projection lag under a booking load.
//!
//! 1. **Rebuild.** The scratch database is filled with at least a million
//!    domain events made by the domain's own decisions: flights scheduled
//!    with `schedule_flight`, then rounds of bookings placed with
//!    `place_booking`, each then paid (payment requested and captured,
//!    booking confirmed, seats confirmed), cancelled while held (seats
//!    released), expired (hold expired) or left held. Events are encoded
//!    with `domain::encode`, personal data sealed with the [`Sealer`], and
//!    appended in multi-stream batches of several flights (each seats
//!    stream with its exact expected version). Then every projector is
//!    rebuilt from the whole log with [`projections::rebuild`].
//! 2. **Search.** The engine serves on loopback (the projectors run in it);
//!    concurrent clients POST `searchFlights` for routes and dates that
//!    exist, for a fixed time.
//! 3. **Lag.** Clients book one passenger each over REST on the flights of
//!    part 1 while `projections::status` is sampled every 50 ms.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use domain::booking::{
    place_booking, Booking, BookingCommand, CancelledBy, PassengerDetails, PassengerRequest,
    PassengerType, PlaceBooking, Placed,
};
use domain::flight::{schedule_flight, CabinSpec, Flight, ScheduleFlight};
use domain::payment::{Payment, PaymentCommand};
use domain::seats::{SeatCommand, SeatInventory, SeatRequest};
use domain::values::{AirportCode, Cabin, Currency, FlightNumber, Money, Pnr};
use domain::{Aggregate, DomainEvent};
use eventstore::{
    Actor, AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, PgEventStore, Sealer,
    StreamAppend, StreamId,
};
use hdrhistogram::Histogram;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use super::http::{book, customers};
use super::{latency, micros, new_histogram, scratch_database};
use engine::app::{AppConfig, Application, Secret};

#[derive(Debug, Clone, clap::Args)]
pub struct ReadBench {
    /// Flights scheduled in the log (and in the search read model).
    #[arg(long, default_value_t = 10_000)]
    pub flights: usize,
    /// Events to put in the log before the rebuild (at least).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Seconds of the search run and of the lag run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent GraphQL clients in the search run.
    #[arg(long, default_value_t = 16)]
    pub search_clients: usize,
    /// Concurrent booking clients in the lag run.
    #[arg(long, default_value_t = 64)]
    pub write_clients: usize,
    /// The engine's `BOOKING_DB_MAX_CONNECTIONS`: fewer connections commit
    /// fewer bookings a second and leave the projectors more of the CPU.
    #[arg(long, default_value_t = 32)]
    pub db_max_connections: u32,
    /// Keep the scratch database afterwards (its name is printed), to run
    /// `booking projections rebuild` or queries against it.
    #[arg(long)]
    pub keep_database: bool,
}

/// Airports of the generated network; routes are ordered pairs of them.
const AIRPORTS: [&str; 12] = [
    "LHR", "JFK", "CDG", "FRA", "AMS", "MAD", "FCO", "DXB", "SIN", "HND", "SFO", "ORD",
];
/// Routes flown, and days of departures.
const ROUTES: usize = 60;
const DAYS: i64 = 30;
/// Bookings per flight per round, and flights per append.
const PER_ROUND: usize = 3;
const FLIGHTS_PER_APPEND: usize = 16;
/// Customers (sealing subjects) of the generated bookings.
const CUSTOMERS: usize = 2_000;
/// Tasks generating and appending at once.
const LOADERS: usize = 3;

pub async fn run(database_url: &str, args: ReadBench) -> anyhow::Result<()> {
    let (admin, url, name) = scratch_database(database_url).await?;
    let result = measure(&url, &args).await;
    if args.keep_database {
        println!("\nThe scratch database is kept: {url}");
    } else {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await?;
    }
    result
}

async fn measure(url: &str, args: &ReadBench) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    engine::migrations::run(&pool).await?;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let sealer = Sealer::postgres(pool.clone());

    // 1. Rebuild.
    let started = Instant::now();
    let flights = fill(store.clone(), &sealer, args.flights, args.events).await?;
    let fill_time = started.elapsed();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&pool)
        .await?;
    println!("## Projection rebuild over the whole log\n");
    println!(
        "{total} events in the log ({} flights; made by domain decisions, sealed and appended \
         in {:.1} s, {:.0} events/s).\n",
        flights.len(),
        fill_time.as_secs_f64(),
        total as f64 / fill_time.as_secs_f64()
    );
    println!("| projector | events replayed | seconds | events/s | goal |");
    println!("|---|---:|---:|---:|---|");
    let runner = projections::Runner::new(pool.clone(), store.clone(), sealer.clone());
    let mut all_time = Duration::ZERO;
    for p in projections::all() {
        let r = projections::rebuild(&runner, &*p).await?;
        all_time += r.elapsed;
        let rate = r.events_per_second();
        println!(
            "| {} | {} | {:.1} | {:.0} | >= 50,000 ({}) |",
            r.name,
            r.events,
            r.elapsed.as_secs_f64(),
            rate,
            if rate >= 50_000.0 { "met" } else { "missed" }
        );
    }
    println!(
        "| all four, one after the other | {} | {:.1} | {:.0} (log events / total time) | |",
        total,
        all_time.as_secs_f64(),
        total as f64 / all_time.as_secs_f64()
    );

    // 2. and 3. against the engine serving this database.
    let in_model: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_flights")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        in_model as usize >= flights.len(),
        "{in_model} flights in the read model"
    );
    // The load comes from few accounts on one address.
    let mut config = AppConfig::new(url).without_limits();
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.jwt_secret = Some(Secret::new("bench-secret-bench-secret-bench-secret"));
    config.db_max_connections = args.db_max_connections;
    // The sagas would replay the generated history (expiring, ticketing)
    // and load the machine the read side is measured on.
    config.sagas_enabled = false;
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let result = serve_phases(&pool, addr, args, in_model, flights).await;
    let _ = stop.send(());
    server.await??;
    result
}

async fn serve_phases(
    pool: &PgPool,
    addr: SocketAddr,
    args: &ReadBench,
    in_model: i64,
    flights: Vec<Uuid>,
) -> anyhow::Result<()> {
    let client = Client::builder()
        .pool_max_idle_per_host(args.search_clients.max(args.write_clients))
        .build()?;
    search(pool, &client, addr, args, in_model).await?;
    lag(pool, &client, addr, args, flights).await
}

// ---------------------------------------------------------------------------
// Part 1: the log.

/// A small deterministic generator (splitmix64): no dependence on a crate's
/// API, the same log on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One flight as the generator knows it.
struct Gen {
    flight: Flight,
    seats: SeatInventory,
    /// Version of the seats stream.
    version: u64,
}

fn route(i: usize) -> (AirportCode, AirportCode) {
    let n = AIRPORTS.len();
    let o = i % n;
    let d = (o + 1 + (i / n) % (n - 1)) % n;
    (
        AIRPORTS[o].parse().expect("airport code"),
        AIRPORTS[d].parse().expect("airport code"),
    )
}

/// Schedules `flights` flights, then books on them round after round
/// until at least `target` events are appended. Returns the flight ids.
/// The audit benchmark fills its log with it too.
pub(super) async fn fill(
    store: Arc<PgEventStore>,
    sealer: &Sealer,
    flights: usize,
    target: u64,
) -> anyhow::Result<Vec<Uuid>> {
    let appended = Arc::new(AtomicU64::new(0));
    let base = Utc::now();
    let tasks: Vec<_> = (0..LOADERS)
        .map(|w| {
            let (store, sealer, appended) = (store.clone(), sealer.clone(), appended.clone());
            let flights = (w..flights).step_by(LOADERS).collect::<Vec<_>>();
            tokio::spawn(async move {
                load(store, sealer, appended, target, base, w as u64, flights).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await??);
    }
    Ok(ids)
}

/// One loader: schedules its flights, then books on them in rounds.
async fn load(
    store: Arc<PgEventStore>,
    sealer: Sealer,
    appended: Arc<AtomicU64>,
    target: u64,
    base: DateTime<Utc>,
    seed: u64,
    numbers: Vec<usize>,
) -> anyhow::Result<Vec<Uuid>> {
    let mut rng = Rng(seed.wrapping_mul(0x1234_5678_9ABC_DEF1) ^ 0xB00C);
    let usd: Currency = "USD".parse().expect("currency");
    let money = |s: &str| Money::parse(s, usd).expect("money");
    let admin = Uuid::now_v7();
    let meta = |actor: Actor| Metadata {
        correlation_id: Uuid::now_v7(),
        causation_id: Some(Uuid::now_v7()),
        command_id: None,
        actor,
    };

    // Schedule.
    let mut flights: Vec<Gen> = Vec::with_capacity(numbers.len());
    for chunk in numbers.chunks(100) {
        let mut streams = Vec::new();
        for &n in chunk {
            let (origin, destination) = route(n % ROUTES);
            let departs_at = base
                + chrono::Duration::days(2 + (n as i64 / ROUTES as i64) % DAYS)
                + chrono::Duration::minutes((n % 96) as i64 * 15);
            let flight_id = Uuid::now_v7();
            let (fe, se) = schedule_flight(ScheduleFlight {
                flight_id,
                flight_number: format!("BE{}", 100 + n % 9000)
                    .parse::<FlightNumber>()
                    .expect("flight number"),
                airline: "Bench Air".into(),
                origin,
                destination,
                departs_at,
                arrives_at: departs_at + chrono::Duration::hours(7),
                currency: usd,
                cabins: vec![
                    CabinSpec {
                        cabin: Cabin::Business,
                        first_row: 1,
                        last_row: 3,
                        seat_letters: "ACDF".into(),
                        fare: money(&format!("{}.00", 1200 + n % 400)),
                        child_percent: None,
                        infant_percent: None,
                    },
                    CabinSpec {
                        cabin: Cabin::Economy,
                        first_row: 4,
                        last_row: 25,
                        seat_letters: "ABCDEF".into(),
                        fare: money(&format!("{}.00", 150 + n % 300)),
                        child_percent: None,
                        infant_percent: None,
                    },
                ],
                now: base - chrono::Duration::days(60),
            })
            .map_err(|e| anyhow::anyhow!("scheduling: {e}"))?;
            let m = meta(Actor::user(admin, "admin"));
            streams.push(StreamAppend {
                stream: StreamId::new(Flight::CATEGORY, flight_id),
                expected: ExpectedVersion::NO_STREAM,
                events: encode(&sealer, &fe, &m).await?,
            });
            streams.push(StreamAppend {
                stream: StreamId::new(SeatInventory::CATEGORY, flight_id),
                expected: ExpectedVersion::NO_STREAM,
                events: encode(&sealer, &se, &m).await?,
            });
            flights.push(Gen {
                flight: Flight::fold(&fe),
                seats: SeatInventory::fold(&se),
                version: se.len() as u64,
            });
        }
        let n = streams.iter().map(|s| s.events.len() as u64).sum::<u64>();
        store
            .append(AppendRequest {
                streams,
                commands: vec![],
            })
            .await?;
        appended.fetch_add(n, Ordering::Relaxed);
    }
    let ids = flights
        .iter()
        .filter_map(|g| g.flight.id())
        .collect::<Vec<_>>();

    // Book, round after round, until the log is big enough.
    let customers: Vec<Uuid> = (0..CUSTOMERS / LOADERS).map(|_| Uuid::now_v7()).collect();
    // PNRs are unique: digits of a counter, one sequence per loader, and
    // reserved in booking_pnrs as the write side reserves its random ones.
    let mut pnrs = seed;
    let mut round = 0i64;
    while appended.load(Ordering::Relaxed) < target {
        // Bookings of a round are made a few minutes apart, weeks before
        // their flights.
        let now0 = base - chrono::Duration::days(30) + chrono::Duration::minutes(round * 30);
        round += 1;
        for chunk in flights.chunks_mut(FLIGHTS_PER_APPEND) {
            let mut streams = Vec::new();
            // Reserved like the write side does, so the bookings made over
            // HTTP later never draw one of these.
            let mut reserved: Vec<(String, Uuid)> = Vec::new();
            for g in chunk.iter_mut() {
                let flight_id = g.flight.id().expect("scheduled");
                let mut seat_events = Vec::new();
                for k in 0..PER_ROUND {
                    let now = now0 + chrono::Duration::seconds(k as i64 * 20);
                    let customer = customers[rng.below(customers.len())];
                    let m = meta(Actor::user(customer, "customer"));
                    let party = 1 + rng.below(3);
                    let cabin = if rng.below(10) == 0 {
                        Cabin::Business
                    } else {
                        Cabin::Economy
                    };
                    let booking_id = Uuid::now_v7();
                    let pnr = unique_pnr(&mut pnrs);
                    let hold_expires_at = now + chrono::Duration::minutes(10);
                    let placed = place_booking(
                        &g.flight,
                        &g.seats,
                        None,
                        PlaceBooking {
                            booking_id,
                            pnr: pnr.clone(),
                            customer_id: customer,
                            created_by: customer,
                            passengers: (0..party)
                                .map(|p| PassengerRequest {
                                    passenger_id: Uuid::now_v7(),
                                    kind: PassengerType::Adult,
                                    seat: Some(SeatRequest::Cabin(cabin)),
                                    travels_with: None,
                                    details: PassengerDetails {
                                        first_name: ["Ada", "Grace", "Alan", "Edsger"][p % 4]
                                            .into(),
                                        last_name: "Bench".into(),
                                        date_of_birth: NaiveDate::from_ymd_opt(
                                            1960 + (p as i32 * 7),
                                            3,
                                            14,
                                        )
                                        .expect("date"),
                                        email: None,
                                        phone: None,
                                        passport: None,
                                    },
                                })
                                .collect(),
                            hold_expires_at,
                            now,
                        },
                    );
                    // A full cabin: this flight is done for the round.
                    let Ok(Placed {
                        seats: mut se,
                        booking: mut be,
                        ..
                    }) = placed
                    else {
                        break;
                    };
                    reserved.push((pnr.as_str().to_string(), booking_id));
                    let mut booking = Booking::fold(&be);
                    let mut seats = se.iter().fold(g.seats.clone(), |s, e| s.evolve(e));
                    let later = now + chrono::Duration::minutes(2);
                    let mut payment_events = Vec::new();
                    let payment_id = Uuid::now_v7();
                    let outcome = rng.below(10);
                    match outcome {
                        // Paid: 40 %.
                        0..=3 => {
                            let submitted = booking.decide(BookingCommand::SubmitPayment {
                                payment_id,
                                now: later,
                            })?;
                            booking = submitted.iter().fold(booking, |b, e| b.evolve(e));
                            be.extend(submitted);
                            let total =
                                booking.info.as_ref().map(|i| i.total).context("created")?;
                            let requested = Payment::default().decide(PaymentCommand::Request {
                                payment_id,
                                booking_id,
                                amount: total,
                                card_brand: "visa".into(),
                                card_last4: "4242".into(),
                                card_token: None,
                                now: later,
                            })?;
                            let payment = Payment::fold(&requested);
                            let captured = payment.decide(PaymentCommand::Capture {
                                gateway_reference: format!("gw-{payment_id}"),
                                now: later,
                            })?;
                            payment_events.extend(requested);
                            payment_events.extend(captured);
                            let confirmed =
                                booking.decide(BookingCommand::Confirm { now: later })?;
                            be.extend(confirmed);
                            let sc = seats.decide(SeatCommand::Confirm {
                                booking_id,
                                now: later,
                            })?;
                            seats = sc.iter().fold(seats, |s, e| s.evolve(e));
                            se.extend(sc);
                        }
                        // Cancelled while held: 20 %.
                        4 | 5 => {
                            be.extend(booking.decide(BookingCommand::Cancel {
                                reason: "changed plans".into(),
                                now: later,
                                departs_at: g.flight.departs_at().context("scheduled")?,
                                by: CancelledBy::Customer,
                            })?);
                            let sr = seats.decide(SeatCommand::Release {
                                booking_id,
                                reason: "booking cancelled".into(),
                            })?;
                            seats = sr.iter().fold(seats, |s, e| s.evolve(e));
                            se.extend(sr);
                        }
                        // Expired: 20 %.
                        6 | 7 => {
                            be.extend(booking.decide(BookingCommand::Expire {
                                now: hold_expires_at,
                            })?);
                            let sx = seats.decide(SeatCommand::Expire {
                                booking_id,
                                now: hold_expires_at,
                            })?;
                            seats = sx.iter().fold(seats, |s, e| s.evolve(e));
                            se.extend(sx);
                        }
                        // Left held (its hold lapses unrecorded): 20 %.
                        _ => {}
                    }
                    g.seats = seats;
                    seat_events.extend(encode(&sealer, &se, &m).await?);
                    streams.push(StreamAppend {
                        stream: StreamId::new(Booking::CATEGORY, booking_id),
                        expected: ExpectedVersion::NO_STREAM,
                        events: encode(&sealer, &be, &m).await?,
                    });
                    if !payment_events.is_empty() {
                        streams.push(StreamAppend {
                            stream: StreamId::new(Payment::CATEGORY, payment_id),
                            expected: ExpectedVersion::NO_STREAM,
                            events: encode(&sealer, &payment_events, &m).await?,
                        });
                    }
                }
                if !seat_events.is_empty() {
                    let n = seat_events.len() as u64;
                    streams.push(StreamAppend {
                        stream: StreamId::new(SeatInventory::CATEGORY, flight_id),
                        expected: ExpectedVersion::Exact(g.version),
                        events: seat_events,
                    });
                    g.version += n;
                }
            }
            let n = streams.iter().map(|s| s.events.len() as u64).sum::<u64>();
            if n == 0 {
                continue;
            }
            let codes: Vec<String> = reserved.into_iter().map(|(code, _)| code).collect();
            sqlx::query("INSERT INTO booking_pnrs (pnr) SELECT unnest($1::text[])")
                .bind(&codes)
                .execute(store.pool())
                .await?;
            store
                .append(AppendRequest {
                    streams,
                    commands: vec![],
                })
                .await?;
            appended.fetch_add(n, Ordering::Relaxed);
            if appended.load(Ordering::Relaxed) >= target {
                break;
            }
        }
        anyhow::ensure!(round < 200, "the flights are full before {target} events");
    }
    Ok(ids)
}

/// The next PNR of a loader: `counter` in base 24 (each byte picks one of
/// the PNR symbols), stepping by [`LOADERS`] so loaders never collide.
fn unique_pnr(counter: &mut u64) -> Pnr {
    let mut n = *counter;
    *counter += LOADERS as u64;
    let mut bytes = [0u8; 6];
    for b in &mut bytes {
        *b = (n % 24) as u8;
        n /= 24;
    }
    Pnr::from_random(bytes)
}

/// Encoded, sealed, with `metadata`: what the write side appends.
async fn encode<E: DomainEvent>(
    sealer: &Sealer,
    events: &[E],
    metadata: &Metadata,
) -> anyhow::Result<Vec<NewEvent>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let (event_type, schema_version, data) = domain::encode(e);
        out.push(NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            data: sealer.seal(data).await?,
            metadata: metadata.clone(),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Part 2: searchFlights.

const SEARCH: &str = "query($o: String!, $d: String!, $date: Date!) { \
    searchFlights(origin: $o, destination: $d, date: $date, first: 20) { \
      nodes { id flightNumber departsAt arrivesAt availableSeats \
              lowestFare { amount currency } \
              cabins { cabin availableSeats fare { amount currency } } } \
      pageInfo { hasNextPage endCursor } } }";

async fn search(
    pool: &PgPool,
    client: &Client,
    addr: SocketAddr,
    args: &ReadBench,
    in_model: i64,
) -> anyhow::Result<()> {
    let keys: Vec<(String, String, NaiveDate)> = sqlx::query_as(
        "SELECT DISTINCT origin, destination, departure_date FROM rm_flights \
         ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await?;
    anyhow::ensure!(!keys.is_empty(), "no flights to search");
    let keys = Arc::new(keys);
    let url = format!("http://{addr}/graphql");
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.search_clients)
        .map(|_| {
            let (client, url, keys, counter) =
                (client.clone(), url.clone(), keys.clone(), counter.clone());
            tokio::spawn(async move {
                let mut hist = new_histogram();
                let (mut ok, mut found, mut errors) = (0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    let (o, d, date) = &keys[(i * 7919) % keys.len()];
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .json(&json!({"query": SEARCH,
                                      "variables": {"o": o, "d": d, "date": date}}))
                        .send()
                        .await?;
                    let status = r.status();
                    let body: Value = r.json().await?;
                    let elapsed = t.elapsed();
                    match body["data"]["searchFlights"]["nodes"].as_array() {
                        Some(nodes) if status.is_success() && body.get("errors").is_none() => {
                            hist.record(micros(elapsed))?;
                            ok += 1;
                            found += nodes.len() as u64;
                        }
                        _ => {
                            if errors == 0 {
                                tracing::warn!(%status, %body, "searchFlights failed");
                            }
                            errors += 1;
                        }
                    }
                }
                anyhow::Ok((ok, found, errors, hist))
            })
        })
        .collect();
    let mut hist = new_histogram();
    let (mut ok, mut found, mut errors) = (0u64, 0u64, 0u64);
    for t in tasks {
        let (o, f, e, h) = t.await??;
        ok += o;
        found += f;
        errors += e;
        hist.add(h)?;
    }
    let elapsed = started.elapsed();
    let l = latency(&hist);
    println!(
        "\n## searchFlights over HTTP ({} clients, {in_model} flights in the read model, \
         {} route-days)\n",
        args.search_clients,
        keys.len()
    );
    println!("| queries | seconds | queries/s | flights per answer | p50 ms | p99 ms | goal p99 | errors |");
    println!("|---:|---:|---:|---:|---:|---:|---|---:|");
    println!(
        "| {ok} | {:.1} | {:.0} | {:.1} | {:.2} | {:.2} | < 10 ms ({}) | {errors} |",
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        found as f64 / ok.max(1) as f64,
        l.p50,
        l.p99,
        if l.p99 < 10.0 { "met" } else { "missed" }
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Part 3: projection lag under a booking load.

async fn lag(
    pool: &PgPool,
    client: &Client,
    addr: SocketAddr,
    args: &ReadBench,
    flights: Vec<Uuid>,
) -> anyhow::Result<()> {
    let base = format!("http://{addr}/api/v1");
    let customers = customers(client, &base, args.write_clients.clamp(1, 32)).await?;
    let customers = Arc::new(customers);
    let flights = Arc::new(flights);
    let before = seen(pool).await?;

    let (stop_sampling, mut sampling_stopped) = tokio::sync::watch::channel(false);
    let sampler = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut by_name: BTreeMap<String, (Histogram<u64>, f64)> = BTreeMap::new();
            let mut overall = new_histogram();
            let mut samples = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = sampling_stopped.changed() => break,
                }
                let status = projections::status(&pool).await?;
                let mut worst = 0.0f64;
                for s in status {
                    let (h, max) = by_name
                        .entry(s.name.clone())
                        .or_insert_with(|| (new_histogram(), 0.0));
                    h.record(micros(Duration::from_secs_f64(s.lag_seconds)))?;
                    *max = max.max(s.lag_seconds);
                    worst = worst.max(s.lag_seconds);
                }
                overall.record(micros(Duration::from_secs_f64(worst)))?;
                samples += 1;
            }
            anyhow::Ok((by_name, overall, samples))
        })
    };

    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.write_clients)
        .map(|c| {
            let (client, base, customers, flights, counter) = (
                client.clone(),
                base.clone(),
                customers.clone(),
                flights.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let token = &customers[c % customers.len()];
                let (mut ok, mut other) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    let flight = flights[(i * 7919) % flights.len()];
                    if book(&client, &base, token, flight).await? == StatusCode::CREATED {
                        ok += 1;
                    } else {
                        other += 1;
                    }
                }
                anyhow::Ok((ok, other))
            })
        })
        .collect();
    let (mut ok, mut other) = (0u64, 0u64);
    for t in tasks {
        let (o, x) = t.await??;
        ok += o;
        other += x;
    }
    let writing = started.elapsed();
    // Keep sampling until the projectors have caught up with the load.
    let catch_up = Instant::now();
    loop {
        let status = projections::status(pool).await?;
        if status.iter().all(|s| s.lag_events == 0) || catch_up.elapsed() > Duration::from_secs(30)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let caught_up = catch_up.elapsed();
    let _ = stop_sampling.send(true);
    let (by_name, overall, samples) = sampler.await??;
    let after = seen(pool).await?;
    let total = started.elapsed().as_secs_f64();

    println!(
        "\n## Projection lag while bookings are written over HTTP ({} clients, {} API \
         connections)\n",
        args.write_clients, args.db_max_connections
    );
    println!(
        "{ok} bookings created in {:.1} s ({:.0}/s, {other} other answers); the projectors \
         were caught up {:.2} s after the load stopped. Lag sampled every 50 ms with \
         `projections::status` ({samples} samples, through the catch-up).\n",
        writing.as_secs_f64(),
        ok as f64 / writing.as_secs_f64(),
        caught_up.as_secs_f64()
    );
    println!("| projector | lag p50 ms | lag p99 ms | lag max ms | events applied | events/s applied | goal p99 |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (name, (h, max)) in &by_name {
        let l = latency(h);
        let applied =
            after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {applied} | {:.0} | < 250 ms ({}) |",
            l.p50,
            l.p99,
            max * 1000.0,
            applied as f64 / total,
            if l.p99 < 250.0 { "met" } else { "missed" }
        );
    }
    let l = latency(&overall);
    println!(
        "| slowest projector at each sample | {:.0} | {:.0} | {:.0} | | | < 250 ms ({}) |",
        l.p50,
        l.p99,
        overall.max() as f64 / 1000.0,
        if l.p99 < 250.0 { "met" } else { "missed" }
    );
    Ok(())
}

/// Events each projector has applied so far.
async fn seen(pool: &PgPool) -> anyhow::Result<BTreeMap<String, u64>> {
    Ok(projections::status(pool)
        .await?
        .into_iter()
        .map(|s| (s.name, s.events_seen))
        .collect())
}
