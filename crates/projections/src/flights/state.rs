//! The flights read model's rows that a batch touches, and the events
//! applied to them in memory.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use domain::flight::FlightEvent;
use domain::seats::SeatEvent;
use domain::values::{Cabin, Seat};
use rust_decimal::Decimal;
use rustc_hash::{FxHashMap, FxHashSet};
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

use crate::event::{Decoded, Event};
use crate::model::SeatStatus;
use crate::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct FlightRow {
    pub(super) flight_id: Uuid,
    pub(super) flight_number: String,
    pub(super) airline: String,
    pub(super) origin: String,
    pub(super) destination: String,
    pub(super) departs_at: DateTime<Utc>,
    pub(super) arrives_at: DateTime<Utc>,
    pub(super) currency: String,
    pub(super) cancelled: bool,
    pub(super) cancel_reason: Option<String>,
    pub(super) total_seats: i32,
    pub(super) available_seats: i32,
    pub(super) held_seats: i32,
    pub(super) sold_seats: i32,
    pub(super) scheduled_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    /// Not in the table yet: written with COPY rather than an upsert.
    #[sqlx(skip)]
    pub(super) new: bool,
}

#[derive(Debug, Clone)]
pub(super) struct CabinRow {
    pub(super) flight_id: Uuid,
    pub(super) cabin: Cabin,
    pub(super) fare: Decimal,
    pub(super) currency: String,
    pub(super) total_seats: i32,
    pub(super) available_seats: i32,
    pub(super) held_seats: i32,
    pub(super) sold_seats: i32,
    pub(super) new: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct SeatRow {
    pub(super) flight_id: Uuid,
    pub(super) seat: String,
    pub(super) seat_row: i16,
    pub(super) seat_letter: String,
    #[sqlx(try_from = "String")]
    pub(super) cabin: Cabin,
    #[sqlx(try_from = "String")]
    pub(super) status: SeatStatus,
    pub(super) booking_id: Option<Uuid>,
    pub(super) hold_expires_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    pub(super) new: bool,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) flights: FxHashMap<Uuid, FlightRow>,
    pub(super) cabins: FxHashMap<(Uuid, Cabin), CabinRow>,
    pub(super) seats: FxHashMap<(Uuid, String), SeatRow>,
    /// The rows changed since loaded, unless `everything` (a rebuild's
    /// in-memory model, written whole at the end, tracks nothing).
    pub(super) dirty_flights: FxHashSet<Uuid>,
    pub(super) dirty_cabins: FxHashSet<(Uuid, Cabin)>,
    pub(super) dirty_seats: FxHashSet<(Uuid, String)>,
    pub(super) everything: bool,
}

fn flight_id_of(e: &FlightEvent) -> Uuid {
    match e {
        FlightEvent::FlightScheduled(e) => e.flight_id,
        FlightEvent::FareChanged(e) => e.flight_id,
        FlightEvent::FlightRescheduled(e) => e.flight_id,
        FlightEvent::FlightCancelled(e) => e.flight_id,
    }
}

fn seats_of(e: &SeatEvent) -> Cow<'_, [Seat]> {
    match e {
        SeatEvent::InventoryOpened(_) => Cow::Borrowed(&[]),
        SeatEvent::SeatsHeld(e) => Cow::Borrowed(&e.seats),
        SeatEvent::SeatsReleased(e) => Cow::Borrowed(&e.seats),
        SeatEvent::HoldExpired(e) => Cow::Borrowed(&e.seats),
        SeatEvent::SeatsConfirmed(e) => Cow::Borrowed(&e.seats),
        SeatEvent::SeatsReturned(e) => Cow::Borrowed(&e.seats),
        SeatEvent::SeatChanged(e) => Cow::Owned(vec![e.from, e.to]),
        // The line moves no seat: an offer's seats come in its `SeatsHeld`.
        SeatEvent::WaitlistJoined(_)
        | SeatEvent::WaitlistOffered(_)
        | SeatEvent::WaitlistOfferAccepted(_)
        | SeatEvent::WaitlistEntryLapsed(_)
        | SeatEvent::WaitlistWithdrawn(_) => Cow::Borrowed(&[]),
    }
}

impl State {
    pub(super) async fn load(conn: &mut PgConnection, events: &[Decoded]) -> Result<Self> {
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
                    for seat in seats_of(e).iter() {
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
                let cabin: Cabin = crate::model::parse("cabin", &cabin)?;
                let c = CabinRow {
                    flight_id: flight.flight_id,
                    cabin,
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

    pub(super) fn apply(&mut self, d: &Decoded) {
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
                    let key = (id, spec.cabin);
                    let new = self.cabins.get(&key).is_none_or(|c| c.new);
                    self.cabins.insert(
                        key,
                        CabinRow {
                            flight_id: id,
                            cabin: spec.cabin,
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
                let key = (id, f.cabin);
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
                            cabin: s.cabin,
                            status: SeatStatus::Available,
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
                        SeatStatus::Held,
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
                        SeatStatus::Sold,
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
                    self.set_seat(
                        flight,
                        seat,
                        SeatStatus::Available,
                        None,
                        None,
                        Some(*booking_id),
                        at,
                    );
                }
            }
            // `to` takes `from`'s status, booking and expiry; the counts
            // move one way and back, so they end unchanged.
            SeatEvent::SeatChanged(c) => {
                let key = (flight, c.from.to_string());
                let Some(from) = self
                    .seats
                    .get(&key)
                    .filter(|row| row.booking_id == Some(c.booking_id))
                else {
                    return;
                };
                let (status, expires_at) = (from.status, from.hold_expires_at);
                self.set_seat(
                    flight,
                    &c.to,
                    status,
                    Some(c.booking_id),
                    expires_at,
                    None,
                    at,
                );
                self.set_seat(
                    flight,
                    &c.from,
                    SeatStatus::Available,
                    None,
                    None,
                    Some(c.booking_id),
                    at,
                );
            }
            // The waiting list has its own read model.
            SeatEvent::WaitlistJoined(_)
            | SeatEvent::WaitlistOffered(_)
            | SeatEvent::WaitlistOfferAccepted(_)
            | SeatEvent::WaitlistEntryLapsed(_)
            | SeatEvent::WaitlistWithdrawn(_) => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn set_seat(
        &mut self,
        flight: Uuid,
        seat: &Seat,
        status: SeatStatus,
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
        let old = std::mem::replace(&mut row.status, status);
        row.booking_id = booking_id;
        row.hold_expires_at = hold_expires_at;
        let cabin = row.cabin;
        self.touch_seat(key);
        if old == status {
            return;
        }
        fn count<'a>(
            status: SeatStatus,
            available: &'a mut i32,
            held: &'a mut i32,
            sold: &'a mut i32,
        ) -> &'a mut i32 {
            match status {
                SeatStatus::Available => available,
                SeatStatus::Held => held,
                SeatStatus::Sold => sold,
            }
        }
        let ckey = (flight, cabin);
        if let Some(c) = self.cabins.get_mut(&ckey) {
            *count(
                old,
                &mut c.available_seats,
                &mut c.held_seats,
                &mut c.sold_seats,
            ) -= 1;
            *count(
                status,
                &mut c.available_seats,
                &mut c.held_seats,
                &mut c.sold_seats,
            ) += 1;
            self.touch_cabin(ckey);
        }
        if let Some(f) = self.flights.get_mut(&flight) {
            *count(
                old,
                &mut f.available_seats,
                &mut f.held_seats,
                &mut f.sold_seats,
            ) -= 1;
            *count(
                status,
                &mut f.available_seats,
                &mut f.held_seats,
                &mut f.sold_seats,
            ) += 1;
            f.updated_at = at;
            self.touch_flight(flight);
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.flights.len() + self.cabins.len() + self.seats.len()
    }

    /// Writes every row (all new to the tables) and forgets them.
    pub(super) async fn write_all(&mut self, conn: &mut PgConnection) -> Result<()> {
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

    fn touch_cabin(&mut self, key: (Uuid, Cabin)) {
        if !self.everything {
            self.dirty_cabins.insert(key);
        }
    }

    fn touch_seat(&mut self, key: (Uuid, String)) {
        if !self.everything {
            self.dirty_seats.insert(key);
        }
    }
}
