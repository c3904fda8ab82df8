//! Writing a batch's changed rows: COPY for rows new to the tables, one
//! upsert statement (data-modifying CTEs over `UNNEST`ed arrays) for the
//! rest.

use rustc_hash::{FxHashMap, FxHashSet};
use sqlx::PgConnection;

use super::state::{CabinRow, FlightRow, SeatRow, State};
use crate::sql::{day, CopyIn};
use crate::Result;

impl State {
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
                .field(c.cabin.as_str())
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
                .field(s.cabin.as_str())
                .field(s.status.as_str())
                .field(s.booking_id)
                .field(s.hold_expires_at);
            seats.end_row().await?;
        }
        seats.finish().await?;
        Ok(())
    }

    pub(super) async fn write(&self, conn: &mut PgConnection) -> Result<()> {
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
        .bind(cabins.iter().map(|c| c.cabin.as_str()).collect::<Vec<_>>())
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
        .bind(seats.iter().map(|s| s.cabin.as_str()).collect::<Vec<_>>())
        .bind(seats.iter().map(|s| s.status.as_str()).collect::<Vec<_>>())
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
