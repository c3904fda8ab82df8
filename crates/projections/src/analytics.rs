//! Projector `analytics`: revenue per day, route, airline and currency
//! (`rm_revenue_daily`; months and totals are `GROUP BY`s over it) and the
//! booking funnel by creation day (`rm_booking_funnel`). Load factor per
//! flight lives in `rm_flights` (`sold_seats / total_seats`).
//!
//! Revenue is captured payments on their capture day minus refunds on their
//! refund day (`net`). A booking of several flights splits each of its
//! captures and refunds between its flights' airlines and routes by each
//! flight's part of its fares. Every write is an additive upsert, so a
//! batch costs one statement per table whatever it holds.
//!
//! Example queries:
//! ```sql
//! -- revenue per month
//! SELECT date_trunc('month', day)::date AS month, currency, sum(gross), sum(refunds), sum(net)
//!   FROM rm_revenue_daily GROUP BY 1, 2 ORDER BY 1;
//! -- top routes
//! SELECT origin, destination, currency, sum(net) FROM rm_revenue_daily
//!   GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10;
//! -- load factor
//! SELECT flight_id, sold_seats::numeric / nullif(total_seats, 0) FROM rm_flights;
//! ```

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::NaiveDate;
use domain::booking::BookingEvent;
use domain::flight::FlightEvent;
use domain::payment::PaymentEvent;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::event::{Decoded, Event};
use crate::projector::Projector;
use crate::sql::day;
use crate::Result;

pub struct AnalyticsProjector;

#[async_trait]
impl Projector for AnalyticsProjector {
    fn name(&self) -> &'static str {
        "analytics"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["flight", "booking", "payment"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_an_flights",
            "rm_an_bookings",
            "rm_revenue_daily",
            "rm_booking_funnel",
        ]
    }
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> Result<()> {
        let mut state = State::load(conn, events).await?;
        for d in events {
            state.apply(d);
        }
        state.write(conn).await
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct FlightInfo {
    flight_id: Uuid,
    airline: String,
    origin: String,
    destination: String,
    currency: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct BookingInfo {
    booking_id: Uuid,
    flight_id: Uuid,
    created_day: NaiveDate,
    /// An itinerary's flights in the order flown and each one's part of its
    /// fares; empty for a booking of one flight.
    flights: Vec<Uuid>,
    shares: Vec<Decimal>,
}

impl BookingInfo {
    /// `amount` split between the booking's flights by their parts, to the
    /// cent, the last flight taking what rounding left so the parts add up.
    fn split(&self, amount: Decimal) -> Vec<(Uuid, Decimal)> {
        if self.flights.is_empty() {
            return vec![(self.flight_id, amount)];
        }
        let mut left = amount;
        let mut parts = Vec::with_capacity(self.flights.len());
        for (i, (flight, share)) in self.flights.iter().zip(&self.shares).enumerate() {
            let part = if i + 1 == self.flights.len() {
                left
            } else {
                (amount * share).round_dp(2)
            };
            left -= part;
            parts.push((*flight, part));
        }
        parts
    }
}

/// Funnel steps, in the column order of `rm_booking_funnel`.
const CREATED: usize = 0;
const PAYMENT_SUBMITTED: usize = 1;
const PAID: usize = 2;
const TICKETED: usize = 3;
const EXPIRED: usize = 4;
const CANCELLED: usize = 5;
const PAYMENT_FAILED: usize = 6;
const FAILED: usize = 7;

#[derive(Default, Clone, Copy)]
struct Revenue {
    gross: Decimal,
    refunds: Decimal,
    captures: i32,
    refund_count: i32,
}

/// (day, airline, origin, destination, currency)
type RevenueKey = (NaiveDate, String, String, String, String);

#[derive(Default)]
struct State {
    flights: HashMap<Uuid, FlightInfo>,
    bookings: HashMap<Uuid, BookingInfo>,
    new_flights: Vec<Uuid>,
    new_bookings: Vec<Uuid>,
    funnel: HashMap<NaiveDate, [i32; 8]>,
    revenue: HashMap<RevenueKey, Revenue>,
}

fn booking_of(e: &Event) -> Option<Uuid> {
    match e {
        Event::Booking(BookingEvent::BookingCreated(_)) => None,
        Event::Booking(b) => Some(b.booking_id()),
        Event::Payment(PaymentEvent::PaymentCaptured(e)) => Some(e.booking_id),
        Event::Payment(PaymentEvent::PaymentRefunded(e)) => Some(e.booking_id),
        _ => None,
    }
}

impl State {
    async fn load(conn: &mut PgConnection, events: &[Decoded]) -> Result<Self> {
        let mut state = State::default();
        let booking_ids: Vec<Uuid> = events
            .iter()
            .filter_map(|d| booking_of(&d.event))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !booking_ids.is_empty() {
            let rows: Vec<BookingInfo> = sqlx::query_as(
                "SELECT booking_id, flight_id, created_day, flights, shares FROM rm_an_bookings \
                 WHERE booking_id = ANY($1)",
            )
            .bind(&booking_ids)
            .fetch_all(&mut *conn)
            .await?;
            state.bookings = rows.into_iter().map(|b| (b.booking_id, b)).collect();
        }
        let mut flight_ids: HashSet<Uuid> = state
            .bookings
            .values()
            .flat_map(|b| std::iter::once(b.flight_id).chain(b.flights.iter().copied()))
            .collect();
        for d in events {
            if let Event::Booking(BookingEvent::BookingCreated(c)) = &d.event {
                flight_ids.insert(c.flight_id);
                flight_ids.extend(c.connections.iter().map(|s| s.flight_id));
            }
        }
        if !flight_ids.is_empty() {
            let ids: Vec<Uuid> = flight_ids.into_iter().collect();
            let rows: Vec<FlightInfo> = sqlx::query_as(
                "SELECT flight_id, airline, origin, destination, currency FROM rm_an_flights \
                 WHERE flight_id = ANY($1)",
            )
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
            state.flights = rows.into_iter().map(|f| (f.flight_id, f)).collect();
        }
        Ok(state)
    }

    fn step(&mut self, booking: Uuid, step: usize) {
        if let Some(b) = self.bookings.get(&booking) {
            self.funnel.entry(b.created_day).or_default()[step] += 1;
        }
    }

    /// Adds `amount` of `booking`, on day `on`, to the revenue of its
    /// flight (or its flights' parts), as `add` says.
    fn revenue(
        &mut self,
        booking: Uuid,
        on: NaiveDate,
        amount: Decimal,
        add: impl Fn(&mut Revenue, Decimal),
    ) {
        let Some(b) = self.bookings.get(&booking) else {
            return;
        };
        for (flight, part) in b.split(amount) {
            let Some(f) = self.flights.get(&flight) else {
                continue;
            };
            let key = (
                on,
                f.airline.clone(),
                f.origin.clone(),
                f.destination.clone(),
                f.currency.clone(),
            );
            add(self.revenue.entry(key).or_default(), part);
        }
    }

    fn apply(&mut self, d: &Decoded) {
        match &d.event {
            Event::Flight(FlightEvent::FlightScheduled(s)) => {
                self.flights.insert(
                    s.flight_id,
                    FlightInfo {
                        flight_id: s.flight_id,
                        airline: s.airline.clone(),
                        origin: s.origin.as_str().to_owned(),
                        destination: s.destination.as_str().to_owned(),
                        currency: s.currency.as_str().to_owned(),
                    },
                );
                self.new_flights.push(s.flight_id);
            }
            Event::Booking(BookingEvent::BookingCreated(c)) => {
                let created_day = day(c.created_at);
                let (flights, shares) = shares_of(c);
                self.bookings.insert(
                    c.booking_id,
                    BookingInfo {
                        booking_id: c.booking_id,
                        flight_id: c.flight_id,
                        created_day,
                        flights,
                        shares,
                    },
                );
                self.new_bookings.push(c.booking_id);
                self.funnel.entry(created_day).or_default()[CREATED] += 1;
            }
            Event::Booking(e) => {
                let Some(id) = booking_of(&d.event) else {
                    return;
                };
                let step = match e {
                    BookingEvent::PaymentSubmitted(_) => PAYMENT_SUBMITTED,
                    BookingEvent::BookingConfirmed(_) => PAID,
                    BookingEvent::TicketsIssued(_) => TICKETED,
                    BookingEvent::BookingExpired(_) => EXPIRED,
                    BookingEvent::BookingCancelled(_) => CANCELLED,
                    BookingEvent::BookingPaymentFailed(_) => PAYMENT_FAILED,
                    BookingEvent::BookingFailed(_) => FAILED,
                    BookingEvent::BookingCreated(_)
                    | BookingEvent::PassengerUpdated(_)
                    | BookingEvent::PassengerSeatChanged(_)
                    | BookingEvent::PassengerCancelled(_)
                    // A moved booking's money stays with the flight it was
                    // sold on: its capture was counted there, and its
                    // refunds must come off the same airline's revenue.
                    | BookingEvent::BookingMoved(_)
                    | BookingEvent::BookingMoveHeld(_)
                    | BookingEvent::BookingMoveAbandoned(_) => return,
                };
                self.step(id, step);
            }
            Event::Payment(PaymentEvent::PaymentCaptured(c)) => {
                self.revenue(
                    c.booking_id,
                    day(c.captured_at),
                    c.amount.amount(),
                    |r, part| {
                        r.gross += part;
                        r.captures += 1;
                    },
                );
            }
            Event::Payment(PaymentEvent::PaymentRefunded(x)) => {
                self.revenue(
                    x.booking_id,
                    day(x.refunded_at),
                    x.amount.amount(),
                    |r, part| {
                        r.refunds += part;
                        r.refund_count += 1;
                    },
                );
            }
            _ => {}
        }
    }

    async fn write(self, conn: &mut PgConnection) -> Result<()> {
        let flights: Vec<&FlightInfo> = self
            .new_flights
            .iter()
            .filter_map(|id| self.flights.get(id))
            .collect();
        let bookings: Vec<&BookingInfo> = self
            .new_bookings
            .iter()
            .filter_map(|id| self.bookings.get(id))
            .collect();
        let funnel: Vec<(&NaiveDate, &[i32; 8])> = self.funnel.iter().collect();
        let revenue: Vec<(&RevenueKey, &Revenue)> = self.revenue.iter().collect();
        if flights.is_empty() && bookings.is_empty() && funnel.is_empty() && revenue.is_empty() {
            return Ok(());
        }
        let col = |i: usize| funnel.iter().map(|(_, c)| c[i]).collect::<Vec<_>>();
        // The four tables in one statement: one round trip per batch (an
        // empty array writes nothing).
        sqlx::query(
            "WITH flights AS ( \
                INSERT INTO rm_an_flights (flight_id, airline, origin, destination, currency) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                 ON CONFLICT (flight_id) DO NOTHING), \
             bookings AS ( \
                INSERT INTO rm_an_bookings (booking_id, flight_id, created_day) \
                 SELECT * FROM UNNEST($6::uuid[], $7::uuid[], $8::date[]) \
                 ON CONFLICT (booking_id) DO NOTHING), \
             funnel AS ( \
                INSERT INTO rm_booking_funnel AS f (day, created, payment_submitted, paid, ticketed, \
                    expired, cancelled, payment_failed, failed) \
                 SELECT * FROM UNNEST($9::date[], $10::int[], $11::int[], $12::int[], $13::int[], \
                    $14::int[], $15::int[], $16::int[], $17::int[]) \
                 ON CONFLICT (day) DO UPDATE SET created = f.created + excluded.created, \
                    payment_submitted = f.payment_submitted + excluded.payment_submitted, \
                    paid = f.paid + excluded.paid, ticketed = f.ticketed + excluded.ticketed, \
                    expired = f.expired + excluded.expired, cancelled = f.cancelled + excluded.cancelled, \
                    payment_failed = f.payment_failed + excluded.payment_failed, \
                    failed = f.failed + excluded.failed) \
             INSERT INTO rm_revenue_daily AS r (day, airline, origin, destination, currency, \
                gross, refunds, captures, refund_count) \
             SELECT * FROM UNNEST($18::date[], $19::text[], $20::text[], $21::text[], $22::text[], \
                $23::numeric[], $24::numeric[], $25::int[], $26::int[]) \
             ON CONFLICT (day, airline, origin, destination, currency) DO UPDATE SET \
                gross = r.gross + excluded.gross, refunds = r.refunds + excluded.refunds, \
                captures = r.captures + excluded.captures, \
                refund_count = r.refund_count + excluded.refund_count",
        )
        .bind(flights.iter().map(|f| f.flight_id).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.airline.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.origin.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.destination.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.currency.clone()).collect::<Vec<_>>())
        .bind(bookings.iter().map(|b| b.booking_id).collect::<Vec<_>>())
        .bind(bookings.iter().map(|b| b.flight_id).collect::<Vec<_>>())
        .bind(bookings.iter().map(|b| b.created_day).collect::<Vec<_>>())
        .bind(funnel.iter().map(|(d, _)| **d).collect::<Vec<_>>())
        .bind(col(CREATED))
        .bind(col(PAYMENT_SUBMITTED))
        .bind(col(PAID))
        .bind(col(TICKETED))
        .bind(col(EXPIRED))
        .bind(col(CANCELLED))
        .bind(col(PAYMENT_FAILED))
        .bind(col(FAILED))
        .bind(revenue.iter().map(|(k, _)| k.0).collect::<Vec<_>>())
        .bind(revenue.iter().map(|(k, _)| k.1.clone()).collect::<Vec<_>>())
        .bind(revenue.iter().map(|(k, _)| k.2.clone()).collect::<Vec<_>>())
        .bind(revenue.iter().map(|(k, _)| k.3.clone()).collect::<Vec<_>>())
        .bind(revenue.iter().map(|(k, _)| k.4.clone()).collect::<Vec<_>>())
        .bind(revenue.iter().map(|(_, r)| r.gross).collect::<Vec<_>>())
        .bind(revenue.iter().map(|(_, r)| r.refunds).collect::<Vec<_>>())
        .bind(revenue.iter().map(|(_, r)| r.captures).collect::<Vec<_>>())
        .bind(revenue.iter().map(|(_, r)| r.refund_count).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        // Few bookings are itineraries: each its own row update.
        for b in bookings.iter().filter(|b| !b.flights.is_empty()) {
            sqlx::query(
                "UPDATE rm_an_bookings SET flights = $2, shares = $3 WHERE booking_id = $1",
            )
            .bind(b.booking_id)
            .bind(&b.flights)
            .bind(&b.shares)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// An itinerary's flights in the order flown, each with its part of the
/// fares; empty for a booking of one flight.
fn shares_of(c: &domain::booking::BookingCreated) -> (Vec<Uuid>, Vec<Decimal>) {
    if c.connections.is_empty() {
        return (vec![], vec![]);
    }
    let first: Decimal = c.passengers.iter().map(|p| p.fare.amount()).sum();
    let mut fares = vec![(c.flight_id, first)];
    fares.extend(c.connections.iter().map(|s| {
        (
            s.flight_id,
            s.passengers.iter().map(|p| p.fare.amount()).sum(),
        )
    }));
    let total: Decimal = fares.iter().map(|(_, f)| *f).sum();
    if total.is_zero() {
        let even = Decimal::ONE / Decimal::from(fares.len());
        return fares.into_iter().map(|(f, _)| (f, even)).unzip();
    }
    fares.into_iter().map(|(f, fare)| (f, fare / total)).unzip()
}
