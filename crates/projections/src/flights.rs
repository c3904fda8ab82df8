//! Projector `flights`: flight search (`rm_flights`, `rm_flight_cabins`)
//! and the seat map (`rm_seats`).
//!
//! Seat counts follow the recorded seat locks: a held seat is not
//! available; it becomes available again when `SeatsReleased`,
//! `HoldExpired` or `SeatsReturned` arrives. A hold whose expiry passed
//! before its `HoldExpired` was written stays `HELD` here, with its
//! `hold_expires_at`, so a reader can show it as available at once.
//! Load factor per flight is `sold_seats / total_seats`.

use std::collections::HashSet;

use rustc_hash::{FxHashMap, FxHashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::flight::FlightEvent;
use domain::seats::SeatEvent;
use domain::values::Seat;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

use crate::event::{Decoded, Event};
use crate::projector::{Projector, RebuildMemo};
use crate::sql::{day, CopyIn};
use crate::Result;

pub const AVAILABLE: &str = "AVAILABLE";
pub const HELD: &str = "HELD";
pub const SOLD: &str = "SOLD";

pub struct FlightsProjector {
    /// A rebuild keeps up to this many rows in memory (see
    /// [`Projector::apply_rebuilding`]).
    memory_rows: usize,
}

impl Default for FlightsProjector {
    fn default() -> Self {
        Self {
            memory_rows: MEMO_ROWS,
        }
    }
}

impl FlightsProjector {
    /// A projector whose rebuilds write what they have built once it holds
    /// `rows` rows and go on batch by batch.
    pub fn with_memory_rows(rows: usize) -> Self {
        Self { memory_rows: rows }
    }
}

#[async_trait]
impl Projector for FlightsProjector {
    fn name(&self) -> &'static str {
        "flights"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["flight", "seats"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_flights", "rm_flight_cabins", "rm_seats"]
    }
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> Result<()> {
        let mut state = State::load(conn, events).await?;
        for d in events {
            state.apply(d);
        }
        state.write(conn).await
    }

    /// Builds the whole read model in memory and writes it once, with
    /// COPY, at the end: per batch, reading the touched seats back and
    /// upserting them again cost most of a rebuild's time. Past
    /// `memory_rows` rows it writes what it has and goes on batch by batch.
    async fn apply_rebuilding(
        &self,
        conn: &mut PgConnection,
        events: &[Decoded],
        memo: &mut RebuildMemo,
    ) -> Result<()> {
        let memo = memo.get_or_insert_with(|| {
            Box::new(Buffered(State {
                everything: true,
                ..State::default()
            }))
        });
        let Some(Buffered(state)) = memo.downcast_mut::<Buffered>() else {
            return self.apply(conn, events).await;
        };
        for d in events {
            state.apply(d);
        }
        if state.rows() > self.memory_rows {
            state.write_all(conn).await?;
            *memo = Box::new(Written);
        }
        Ok(())
    }

    async fn finish_rebuild(&self, conn: &mut PgConnection, memo: &mut RebuildMemo) -> Result<()> {
        if let Some(Buffered(state)) = memo.as_mut().and_then(|m| m.downcast_mut::<Buffered>()) {
            state.write_all(conn).await?;
        }
        *memo = Some(Box::new(Written));
        Ok(())
    }
}

/// A rebuild's read model while it is built in memory: every row in it
/// is new to the (empty) tables.
struct Buffered(State);

/// A rebuild's read model once written: later batches go through the
/// tables as usual.
struct Written;

/// About 300 bytes each: a few million rows (seats, mostly) bound a
/// rebuild's memory.
const MEMO_ROWS: usize = 3_000_000;

#[derive(Debug, Clone, sqlx::FromRow)]
struct FlightRow {
    flight_id: Uuid,
    flight_number: String,
    airline: String,
    origin: String,
    destination: String,
    departs_at: DateTime<Utc>,
    arrives_at: DateTime<Utc>,
    currency: String,
    cancelled: bool,
    cancel_reason: Option<String>,
    total_seats: i32,
    available_seats: i32,
    held_seats: i32,
    sold_seats: i32,
    scheduled_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Not in the table yet: written with COPY rather than an upsert.
    #[sqlx(skip)]
    new: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct CabinRow {
    flight_id: Uuid,
    cabin: String,
    fare: Decimal,
    currency: String,
    total_seats: i32,
    available_seats: i32,
    held_seats: i32,
    sold_seats: i32,
    #[sqlx(skip)]
    new: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct SeatRow {
    flight_id: Uuid,
    seat: String,
    seat_row: i16,
    seat_letter: String,
    cabin: String,
    status: String,
    booking_id: Option<Uuid>,
    hold_expires_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    new: bool,
}

#[derive(Default)]
struct State {
    flights: FxHashMap<Uuid, FlightRow>,
    cabins: FxHashMap<(Uuid, String), CabinRow>,
    seats: FxHashMap<(Uuid, String), SeatRow>,
    /// The rows changed since loaded, unless `everything` (a rebuild's
    /// in-memory model, written whole at the end, tracks nothing).
    dirty_flights: FxHashSet<Uuid>,
    dirty_cabins: FxHashSet<(Uuid, String)>,
    dirty_seats: FxHashSet<(Uuid, String)>,
    everything: bool,
}

fn flight_id_of(e: &FlightEvent) -> Uuid {
    match e {
        FlightEvent::FlightScheduled(e) => e.flight_id,
        FlightEvent::FareChanged(e) => e.flight_id,
        FlightEvent::FlightRescheduled(e) => e.flight_id,
        FlightEvent::FlightCancelled(e) => e.flight_id,
    }
}

fn seats_of(e: &SeatEvent) -> &[Seat] {
    match e {
        SeatEvent::InventoryOpened(_) => &[],
        SeatEvent::SeatsHeld(e) => &e.seats,
        SeatEvent::SeatsReleased(e) => &e.seats,
        SeatEvent::HoldExpired(e) => &e.seats,
        SeatEvent::SeatsConfirmed(e) => &e.seats,
        SeatEvent::SeatsReturned(e) => &e.seats,
    }
}

impl State {
    async fn load(conn: &mut PgConnection, events: &[Decoded]) -> Result<Self> {
        let mut flight_ids = HashSet::new();
        let mut seat_keys = HashSet::new();
        for d in events {
            match &d.event {
                Event::Flight(e) => {
                    flight_ids.insert(flight_id_of(e));
                }
                Event::Seats(e) => {
                    let Some(flight) = d.aggregate_id else {
                        continue;
                    };
                    flight_ids.insert(flight);
                    for seat in seats_of(e) {
                        seat_keys.insert((flight, seat.to_string()));
                    }
                }
                _ => {}
            }
        }
        let mut state = State::default();
        if flight_ids.is_empty() {
            return Ok(state);
        }
        let ids: Vec<Uuid> = flight_ids.into_iter().collect();
        // A flight and its cabins in one query (one round trip fewer per
        // batch): the flight's columns repeat on each of its cabins' rows.
        let rows = sqlx::query(
            "SELECT f.flight_id, f.flight_number, f.airline, f.origin, f.destination, f.departs_at, \
                    f.arrives_at, f.currency, f.cancelled, f.cancel_reason, f.total_seats, \
                    f.available_seats, f.held_seats, f.sold_seats, f.scheduled_at, f.updated_at, \
                    c.cabin AS c_cabin, c.fare AS c_fare, c.currency AS c_currency, \
                    c.total_seats AS c_total, c.available_seats AS c_available, \
                    c.held_seats AS c_held, c.sold_seats AS c_sold \
             FROM rm_flights f LEFT JOIN rm_flight_cabins c ON c.flight_id = f.flight_id \
             WHERE f.flight_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            let flight = FlightRow::from_row(row)?;
            if let Some(cabin) = row.try_get::<Option<String>, _>("c_cabin")? {
                let c = CabinRow {
                    flight_id: flight.flight_id,
                    cabin: cabin.clone(),
                    fare: row.try_get("c_fare")?,
                    currency: row.try_get("c_currency")?,
                    total_seats: row.try_get("c_total")?,
                    available_seats: row.try_get("c_available")?,
                    held_seats: row.try_get("c_held")?,
                    sold_seats: row.try_get("c_sold")?,
                    new: false,
                };
                state.cabins.insert((flight.flight_id, cabin), c);
            }
            state.flights.entry(flight.flight_id).or_insert(flight);
        }
        if !seat_keys.is_empty() {
            let (fs, ss): (Vec<Uuid>, Vec<String>) = seat_keys.into_iter().unzip();
            let seats: Vec<SeatRow> = sqlx::query_as(
                "SELECT s.flight_id, s.seat, s.seat_row, s.seat_letter, s.cabin, s.status, \
                        s.booking_id, s.hold_expires_at \
                 FROM rm_seats s JOIN UNNEST($1::uuid[], $2::text[]) AS k(flight_id, seat) \
                   ON s.flight_id = k.flight_id AND s.seat = k.seat",
            )
            .bind(&fs)
            .bind(&ss)
            .fetch_all(&mut *conn)
            .await?;
            state.seats = seats
                .into_iter()
                .map(|s| ((s.flight_id, s.seat.clone()), s))
                .collect();
        }
        Ok(state)
    }

    fn apply(&mut self, d: &Decoded) {
        let at = d.recorded_at;
        match &d.event {
            Event::Flight(e) => self.apply_flight(e, at),
            Event::Seats(e) => {
                if let Some(flight) = d.aggregate_id {
                    self.apply_seats(flight, e, at);
                }
            }
            _ => {}
        }
    }

    fn apply_flight(&mut self, e: &FlightEvent, at: DateTime<Utc>) {
        let id = flight_id_of(e);
        match e {
            FlightEvent::FlightScheduled(s) => {
                let currency = s.currency.as_str().to_owned();
                let mut total = 0;
                for spec in &s.cabins {
                    let n = spec.seat_count() as i32;
                    total += n;
                    let key = (id, spec.cabin.as_str().to_owned());
                    let new = self.cabins.get(&key).is_none_or(|c| c.new);
                    self.cabins.insert(
                        key.clone(),
                        CabinRow {
                            flight_id: id,
                            cabin: key.1.clone(),
                            fare: spec.fare.amount(),
                            currency: currency.clone(),
                            total_seats: n,
                            available_seats: n,
                            held_seats: 0,
                            sold_seats: 0,
                            new,
                        },
                    );
                    self.touch_cabin(key);
                }
                let new = self.flights.get(&id).is_none_or(|f| f.new);
                self.flights.insert(
                    id,
                    FlightRow {
                        flight_id: id,
                        flight_number: s.flight_number.as_str().to_owned(),
                        airline: s.airline.clone(),
                        origin: s.origin.as_str().to_owned(),
                        destination: s.destination.as_str().to_owned(),
                        departs_at: s.departs_at,
                        arrives_at: s.arrives_at,
                        currency,
                        cancelled: false,
                        cancel_reason: None,
                        total_seats: total,
                        available_seats: total,
                        held_seats: 0,
                        sold_seats: 0,
                        scheduled_at: s.scheduled_at,
                        updated_at: at,
                        new,
                    },
                );
            }
            FlightEvent::FareChanged(f) => {
                let key = (id, f.cabin.as_str().to_owned());
                if let Some(c) = self.cabins.get_mut(&key) {
                    c.fare = f.fare.amount();
                    self.touch_cabin(key);
                }
                self.touch(id, at);
            }
            FlightEvent::FlightRescheduled(r) => {
                if let Some(f) = self.flights.get_mut(&id) {
                    f.departs_at = r.departs_at;
                    f.arrives_at = r.arrives_at;
                }
                self.touch(id, at);
            }
            FlightEvent::FlightCancelled(c) => {
                if let Some(f) = self.flights.get_mut(&id) {
                    f.cancelled = true;
                    f.cancel_reason = Some(c.reason.clone());
                }
                self.touch(id, at);
            }
        }
        self.touch_flight(id);
    }

    fn touch(&mut self, flight: Uuid, at: DateTime<Utc>) {
        if let Some(f) = self.flights.get_mut(&flight) {
            f.updated_at = at;
            self.touch_flight(flight);
        }
    }

    fn apply_seats(&mut self, flight: Uuid, e: &SeatEvent, at: DateTime<Utc>) {
        match e {
            SeatEvent::InventoryOpened(o) => {
                for s in &o.seats {
                    let key = (flight, s.seat.to_string());
                    let new = self.seats.get(&key).is_none_or(|s| s.new);
                    self.seats.insert(
                        key.clone(),
                        SeatRow {
                            flight_id: flight,
                            seat: key.1.clone(),
                            seat_row: i16::from(s.seat.row()),
                            seat_letter: s.seat.letter().to_string(),
                            cabin: s.cabin.as_str().to_owned(),
                            status: AVAILABLE.into(),
                            booking_id: None,
                            hold_expires_at: None,
                            new,
                        },
                    );
                    self.touch_seat(key);
                }
            }
            // Mirrors `SeatInventory::evolve`: a hold takes the seat as is;
            // every other change touches only the event's own booking's seats.
            SeatEvent::SeatsHeld(h) => {
                for seat in &h.seats {
                    self.set_seat(
                        flight,
                        seat,
                        HELD,
                        Some(h.booking_id),
                        Some(h.expires_at),
                        None,
                        at,
                    );
                }
            }
            SeatEvent::SeatsConfirmed(c) => {
                for seat in &c.seats {
                    self.set_seat(
                        flight,
                        seat,
                        SOLD,
                        Some(c.booking_id),
                        None,
                        Some(c.booking_id),
                        at,
                    );
                }
            }
            SeatEvent::SeatsReleased(domain::seats::SeatsReleased {
                booking_id, seats, ..
            })
            | SeatEvent::HoldExpired(domain::seats::HoldExpired { booking_id, seats })
            | SeatEvent::SeatsReturned(domain::seats::SeatsReturned {
                booking_id, seats, ..
            }) => {
                for seat in seats {
                    self.set_seat(flight, seat, AVAILABLE, None, None, Some(*booking_id), at);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn set_seat(
        &mut self,
        flight: Uuid,
        seat: &Seat,
        status: &str,
        booking_id: Option<Uuid>,
        hold_expires_at: Option<DateTime<Utc>>,
        only_if_owner: Option<Uuid>,
        at: DateTime<Utc>,
    ) {
        let key = (flight, seat.to_string());
        let Some(row) = self.seats.get_mut(&key) else {
            tracing::warn!(%flight, %seat, "seat event for a seat not in the inventory");
            return;
        };
        if only_if_owner.is_some() && row.booking_id != only_if_owner {
            return;
        }
        let old = std::mem::replace(&mut row.status, status.to_owned());
        row.booking_id = booking_id;
        row.hold_expires_at = hold_expires_at;
        let cabin = row.cabin.clone();
        self.touch_seat(key);
        if old == status {
            return;
        }
        fn count<'a>(
            status: &str,
            available: &'a mut i32,
            held: &'a mut i32,
            sold: &'a mut i32,
        ) -> Option<&'a mut i32> {
            match status {
                AVAILABLE => Some(available),
                HELD => Some(held),
                SOLD => Some(sold),
                _ => None,
            }
        }
        let ckey = (flight, cabin);
        if let Some(c) = self.cabins.get_mut(&ckey) {
            if let Some(n) = count(
                &old,
                &mut c.available_seats,
                &mut c.held_seats,
                &mut c.sold_seats,
            ) {
                *n -= 1;
            }
            if let Some(n) = count(
                status,
                &mut c.available_seats,
                &mut c.held_seats,
                &mut c.sold_seats,
            ) {
                *n += 1;
            }
            self.touch_cabin(ckey);
        }
        if let Some(f) = self.flights.get_mut(&flight) {
            if let Some(n) = count(
                &old,
                &mut f.available_seats,
                &mut f.held_seats,
                &mut f.sold_seats,
            ) {
                *n -= 1;
            }
            if let Some(n) = count(
                status,
                &mut f.available_seats,
                &mut f.held_seats,
                &mut f.sold_seats,
            ) {
                *n += 1;
            }
            f.updated_at = at;
            self.touch_flight(flight);
        }
    }

    fn rows(&self) -> usize {
        self.flights.len() + self.cabins.len() + self.seats.len()
    }

    /// Writes every row (all new to the tables) and forgets them.
    async fn write_all(&mut self, conn: &mut PgConnection) -> Result<()> {
        self.everything = true;
        self.write(conn).await?;
        *self = State::default();
        Ok(())
    }

    fn touch_flight(&mut self, id: Uuid) {
        if !self.everything {
            self.dirty_flights.insert(id);
        }
    }

    fn touch_cabin(&mut self, key: (Uuid, String)) {
        if !self.everything {
            self.dirty_cabins.insert(key);
        }
    }

    fn touch_seat(&mut self, key: (Uuid, String)) {
        if !self.everything {
            self.dirty_seats.insert(key);
        }
    }

    /// The rows to write, new (for COPY) or not (for an upsert).
    fn changed_flights(&self, new: bool) -> Vec<&FlightRow> {
        changed(self.everything, &self.flights, &self.dirty_flights, |r| {
            r.new == new
        })
    }

    fn changed_cabins(&self, new: bool) -> Vec<&CabinRow> {
        changed(self.everything, &self.cabins, &self.dirty_cabins, |r| {
            r.new == new
        })
    }

    fn changed_seats(&self, new: bool) -> Vec<&SeatRow> {
        changed(self.everything, &self.seats, &self.dirty_seats, |r| {
            r.new == new
        })
    }

    /// Adds the rows this batch created with COPY.
    async fn copy_new(&self, conn: &mut PgConnection) -> Result<()> {
        let mut flights = CopyIn::new(
            conn,
            "rm_flights",
            "flight_id, flight_number, airline, origin, destination, departs_at, arrives_at, \
             departure_date, currency, cancelled, cancel_reason, total_seats, available_seats, \
             held_seats, sold_seats, scheduled_at, updated_at",
        );
        for f in self.changed_flights(true) {
            flights
                .row()
                .field(f.flight_id)
                .field(&f.flight_number)
                .field(&f.airline)
                .field(&f.origin)
                .field(&f.destination)
                .field(f.departs_at)
                .field(f.arrives_at)
                .field(day(f.departs_at))
                .field(&f.currency)
                .field(f.cancelled)
                .field(f.cancel_reason.as_ref())
                .field(f.total_seats)
                .field(f.available_seats)
                .field(f.held_seats)
                .field(f.sold_seats)
                .field(f.scheduled_at)
                .field(f.updated_at);
            flights.end_row().await?;
        }
        flights.finish().await?;
        let mut cabins = CopyIn::new(
            conn,
            "rm_flight_cabins",
            "flight_id, cabin, fare, currency, total_seats, available_seats, held_seats, \
             sold_seats",
        );
        for c in self.changed_cabins(true) {
            cabins
                .row()
                .field(c.flight_id)
                .field(&c.cabin)
                .field(c.fare)
                .field(&c.currency)
                .field(c.total_seats)
                .field(c.available_seats)
                .field(c.held_seats)
                .field(c.sold_seats);
            cabins.end_row().await?;
        }
        cabins.finish().await?;
        let mut seats = CopyIn::new(
            conn,
            "rm_seats",
            "flight_id, seat, seat_row, seat_letter, cabin, status, booking_id, hold_expires_at",
        );
        // In key order: the primary key's index then grows at its end
        // instead of taking a million inserts at random places.
        let mut new_seats = self.changed_seats(true);
        new_seats.sort_unstable_by(|a, b| (a.flight_id, &a.seat).cmp(&(b.flight_id, &b.seat)));
        for s in new_seats {
            seats
                .row()
                .field(s.flight_id)
                .field(&s.seat)
                .field(s.seat_row)
                .field(&s.seat_letter)
                .field(&s.cabin)
                .field(s.status.as_str())
                .field(s.booking_id)
                .field(s.hold_expires_at);
            seats.end_row().await?;
        }
        seats.finish().await?;
        Ok(())
    }

    async fn write(&self, conn: &mut PgConnection) -> Result<()> {
        self.copy_new(conn).await?;
        let flights = self.changed_flights(false);
        let cabins = self.changed_cabins(false);
        let seats = self.changed_seats(false);
        if flights.is_empty() && cabins.is_empty() && seats.is_empty() {
            return Ok(());
        }
        // One statement for the three tables: a batch's writes cost one
        // round trip, not three (an empty array writes nothing).
        sqlx::query(
            "WITH flights AS ( \
                INSERT INTO rm_flights (flight_id, flight_number, airline, origin, destination, \
                    departs_at, arrives_at, departure_date, currency, cancelled, cancel_reason, \
                    total_seats, available_seats, held_seats, sold_seats, scheduled_at, updated_at) \
                 SELECT f.id, f.num, f.airline, f.origin, f.dest, f.dep, f.arr, (f.dep AT TIME ZONE 'UTC')::date, \
                    f.cur, f.cancelled, f.reason, f.total, f.avail, f.held, f.sold, f.sched, f.upd \
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
                    $6::timestamptz[], $7::timestamptz[], $8::text[], $9::bool[], $10::text[], \
                    $11::int[], $12::int[], $13::int[], $14::int[], $15::timestamptz[], $16::timestamptz[]) \
                    AS f(id, num, airline, origin, dest, dep, arr, cur, cancelled, reason, total, avail, held, sold, sched, upd) \
                 ON CONFLICT (flight_id) DO UPDATE SET flight_number = excluded.flight_number, \
                    airline = excluded.airline, origin = excluded.origin, destination = excluded.destination, \
                    departs_at = excluded.departs_at, arrives_at = excluded.arrives_at, \
                    departure_date = excluded.departure_date, currency = excluded.currency, \
                    cancelled = excluded.cancelled, cancel_reason = excluded.cancel_reason, \
                    total_seats = excluded.total_seats, available_seats = excluded.available_seats, \
                    held_seats = excluded.held_seats, sold_seats = excluded.sold_seats, \
                    scheduled_at = excluded.scheduled_at, updated_at = excluded.updated_at), \
             cabins AS ( \
                INSERT INTO rm_flight_cabins (flight_id, cabin, fare, currency, total_seats, \
                    available_seats, held_seats, sold_seats) \
                 SELECT * FROM UNNEST($17::uuid[], $18::text[], $19::numeric[], $20::text[], $21::int[], \
                    $22::int[], $23::int[], $24::int[]) \
                 ON CONFLICT (flight_id, cabin) DO UPDATE SET fare = excluded.fare, \
                    currency = excluded.currency, total_seats = excluded.total_seats, \
                    available_seats = excluded.available_seats, held_seats = excluded.held_seats, \
                    sold_seats = excluded.sold_seats) \
             INSERT INTO rm_seats (flight_id, seat, seat_row, seat_letter, cabin, status, \
                booking_id, hold_expires_at) \
             SELECT * FROM UNNEST($25::uuid[], $26::text[], $27::int2[], $28::text[], $29::text[], \
                $30::text[], $31::uuid[], $32::timestamptz[]) \
             ON CONFLICT (flight_id, seat) DO UPDATE SET status = excluded.status, \
                booking_id = excluded.booking_id, hold_expires_at = excluded.hold_expires_at, \
                cabin = excluded.cabin",
        )
        .bind(flights.iter().map(|f| f.flight_id).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.flight_number.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.airline.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.origin.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.destination.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.departs_at).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.arrives_at).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.currency.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.cancelled).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.cancel_reason.clone()).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.total_seats).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.available_seats).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.held_seats).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.sold_seats).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.scheduled_at).collect::<Vec<_>>())
        .bind(flights.iter().map(|f| f.updated_at).collect::<Vec<_>>())
        .bind(cabins.iter().map(|c| c.flight_id).collect::<Vec<_>>())
        .bind(cabins.iter().map(|c| c.cabin.clone()).collect::<Vec<_>>())
        .bind(cabins.iter().map(|c| c.fare).collect::<Vec<_>>())
        .bind(cabins.iter().map(|c| c.currency.clone()).collect::<Vec<_>>())
        .bind(cabins.iter().map(|c| c.total_seats).collect::<Vec<_>>())
        .bind(cabins.iter().map(|c| c.available_seats).collect::<Vec<_>>())
        .bind(cabins.iter().map(|c| c.held_seats).collect::<Vec<_>>())
        .bind(cabins.iter().map(|c| c.sold_seats).collect::<Vec<_>>())
        .bind(seats.iter().map(|s| s.flight_id).collect::<Vec<_>>())
        .bind(seats.iter().map(|s| s.seat.clone()).collect::<Vec<_>>())
        .bind(seats.iter().map(|s| s.seat_row).collect::<Vec<_>>())
        .bind(
            seats
                .iter()
                .map(|s| s.seat_letter.clone())
                .collect::<Vec<_>>(),
        )
        .bind(seats.iter().map(|s| s.cabin.clone()).collect::<Vec<_>>())
        .bind(seats.iter().map(|s| s.status.clone()).collect::<Vec<_>>())
        .bind(seats.iter().map(|s| s.booking_id).collect::<Vec<_>>())
        .bind(seats.iter().map(|s| s.hold_expires_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// The rows of `rows` that `keep` accepts among the dirty ones, or among all
/// of them when `everything` is tracked.
fn changed<'a, K: Eq + std::hash::Hash, R>(
    everything: bool,
    rows: &'a FxHashMap<K, R>,
    dirty: &'a FxHashSet<K>,
    keep: impl Fn(&R) -> bool,
) -> Vec<&'a R> {
    if everything {
        rows.values().filter(|r| keep(r)).collect()
    } else {
        dirty
            .iter()
            .filter_map(|k| rows.get(k))
            .filter(|r| keep(r))
            .collect()
    }
}
