//! `rm_flights` (one row per flight, with seat counts), `rm_flight_cabins`
//! (per cabin: fare and counts) and `rm_seats` (the seat map).
//!
//! Counts follow the recorded seat locks. A hold whose expiry has passed
//! before its `HoldExpired` event was projected stays `HELD` in `rm_seats`
//! with its `hold_expires_at`; every reader counts it as available at once
//! ([`lapsed_hold`]).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use domain::values::Cabin;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use super::SeatStatus;

/// The condition a seat of alias `seat` meets when its hold has lapsed: it
/// is available, whatever its row still says.
pub fn lapsed_hold(seat: &str) -> String {
    format!("{seat}.status = 'HELD' AND {seat}.hold_expires_at <= now()")
}

/// A seat's status as readers show it: a lapsed hold is available.
pub fn seat_status_now(seat: &str) -> String {
    format!(
        "CASE WHEN {} THEN 'AVAILABLE' ELSE {seat}.status END",
        lapsed_hold(seat)
    )
}

/// Lapsed holds of cabin `fc` (a `rm_flight_cabins` alias), counted.
pub fn lapsed_in_cabin(fc: &str) -> String {
    format!(
        "(SELECT count(*)::int FROM rm_seats s \
          WHERE s.flight_id = {fc}.flight_id AND s.cabin = {fc}.cabin AND {})",
        lapsed_hold("s")
    )
}

/// The columns of [`FlightRow`] from `rm_flights f`.
pub const FLIGHT_COLUMNS: &str =
    "f.flight_id, f.flight_number, f.airline, f.origin, f.destination, \
     f.departs_at, f.arrives_at, f.currency, f.cancelled, f.cancel_reason, f.total_seats";

/// A flight as readers see it.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct FlightRow {
    pub flight_id: Uuid,
    pub flight_number: String,
    pub airline: String,
    pub origin: String,
    pub destination: String,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
    pub currency: String,
    pub cancelled: bool,
    pub cancel_reason: Option<String>,
    pub total_seats: i32,
    /// The fare a search ranked it by.
    #[sqlx(default)]
    pub price: Option<Decimal>,
    /// Cabins fetched with the row (a search does, in its one query), as
    /// parallel arrays; see [`FLIGHT_CABINS_LATERAL`].
    #[sqlx(default)]
    pub cabin_names: Option<Vec<String>>,
    #[sqlx(default)]
    pub cabin_fares: Option<Vec<Decimal>>,
    #[sqlx(default)]
    pub cabin_totals: Option<Vec<i32>>,
    #[sqlx(default)]
    pub cabin_available: Option<Vec<i32>>,
}

/// One cabin's fare and seats; available counts lapsed holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CabinRow {
    pub flight_id: Uuid,
    pub cabin: Cabin,
    pub fare: Decimal,
    pub currency: String,
    pub total_seats: i32,
    pub available_seats: i32,
}

impl FlightRow {
    /// The cabins fetched with the row, in cabin order, if they were.
    pub fn prefetched_cabins(&self) -> Option<Result<Vec<CabinRow>, sqlx::Error>> {
        let (Some(names), Some(fares), Some(totals), Some(available)) = (
            &self.cabin_names,
            &self.cabin_fares,
            &self.cabin_totals,
            &self.cabin_available,
        ) else {
            return None;
        };
        let cabins = names
            .iter()
            .zip(fares)
            .zip(totals)
            .zip(available)
            .map(|(((name, fare), total), available)| {
                Ok(CabinRow {
                    flight_id: self.flight_id,
                    cabin: super::parse("cabin", name)?,
                    fare: *fare,
                    currency: self.currency.clone(),
                    total_seats: *total,
                    available_seats: *available,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>();
        Some(cabins.map(|mut c| {
            c.sort_by_key(|c| c.cabin);
            c
        }))
    }
}

/// The columns of [`FlightRow`]'s prefetched cabins, with
/// [`FLIGHT_CABINS_LATERAL`] joined to `rm_flights f`.
pub const FLIGHT_CABIN_ARRAYS: &str = "\
    k.cabin_names, k.cabin_fares, k.cabin_totals, k.cabin_available";

/// Joins each flight `f` to its cabins as arrays (see [`FLIGHT_CABIN_ARRAYS`]).
pub static FLIGHT_CABINS_LATERAL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CROSS JOIN LATERAL ( \
            SELECT array_agg(fc.cabin) AS cabin_names, array_agg(fc.fare) AS cabin_fares, \
                   array_agg(fc.total_seats) AS cabin_totals, \
                   array_agg(fc.available_seats + {}) AS cabin_available \
            FROM rm_flight_cabins fc WHERE fc.flight_id = f.flight_id) k",
        lapsed_in_cabin("fc")
    )
});

/// The cabins of these flights.
pub async fn cabins_of(pool: &PgPool, flights: &[Uuid]) -> Result<Vec<CabinRow>, sqlx::Error> {
    static QUERY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT fc.flight_id, fc.cabin, fc.fare, fc.currency, fc.total_seats, \
                    fc.available_seats + COALESCE(l.lapsed, 0) \
             FROM rm_flight_cabins fc \
             LEFT JOIN (SELECT s.flight_id, s.cabin, count(*)::int AS lapsed FROM rm_seats s \
                        WHERE s.flight_id = ANY($1) AND {} \
                        GROUP BY s.flight_id, s.cabin) l \
               ON l.flight_id = fc.flight_id AND l.cabin = fc.cabin \
             WHERE fc.flight_id = ANY($1)",
            lapsed_hold("s")
        )
    });
    let rows: Vec<(Uuid, String, Decimal, String, i32, i32)> =
        sqlx::query_as(&QUERY).bind(flights).fetch_all(pool).await?;
    rows.into_iter()
        .map(
            |(flight_id, cabin, fare, currency, total_seats, available_seats)| {
                Ok(CabinRow {
                    flight_id,
                    cabin: super::parse("cabin", &cabin)?,
                    fare,
                    currency,
                    total_seats,
                    available_seats,
                })
            },
        )
        .collect()
}

/// One seat of a seat map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRow {
    pub seat: String,
    pub cabin: Cabin,
    pub status: SeatStatus,
}

/// A flight's seats by row and letter; a lapsed hold reads available.
pub async fn seat_map(pool: &PgPool, flight: Uuid) -> Result<Vec<SeatRow>, sqlx::Error> {
    static QUERY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT s.seat, s.cabin, {} FROM rm_seats s \
             WHERE s.flight_id = $1 ORDER BY s.seat_row, s.seat_letter",
            seat_status_now("s")
        )
    });
    let rows: Vec<(String, String, String)> =
        sqlx::query_as(&QUERY).bind(flight).fetch_all(pool).await?;
    rows.into_iter()
        .map(|(seat, cabin, status)| {
            Ok(SeatRow {
                seat,
                cabin: super::parse("cabin", &cabin)?,
                status: super::parse("seat status", &status)?,
            })
        })
        .collect()
}

/// When the next hold on this flight lapses, if one is held.
pub async fn next_lapse(pool: &PgPool, flight: Uuid) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(hold_expires_at) FROM rm_seats \
         WHERE flight_id = $1 AND status = 'HELD' AND hold_expires_at > now()",
    )
    .bind(flight)
    .fetch_one(pool)
    .await
}

/// What an itinerary search asks of the flights: those leaving one of
/// `origins` (for one of `destinations`, when given) in `[from, until]`,
/// not cancelled, not departed, of `airline` when given, with `passengers`
/// seats in `cabin` (any cabin when not given).
#[derive(Debug, Clone)]
pub struct Departures<'a> {
    pub origins: &'a [String],
    pub destinations: Option<&'a [String]>,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub cabin: Option<Cabin>,
    pub passengers: i32,
    pub airline: Option<&'a str>,
    /// The most flights answered, earliest departures first.
    pub limit: i64,
}

/// A flight a trip may take, with the cabin it would fly: the cabin asked
/// for, or else the cheapest with enough seats (by fare, then name).
#[derive(Debug, Clone)]
pub struct LegRow {
    /// With `price` set to `fare`.
    pub flight: FlightRow,
    pub cabin: Cabin,
    /// One adult's fare in `cabin`, in the flight's currency.
    pub fare: Decimal,
    /// Seats available in `cabin` now (lapsed holds counted).
    pub seats_left: i32,
}

#[derive(sqlx::FromRow)]
struct LegColumns {
    #[sqlx(flatten)]
    flight: FlightRow,
    leg_cabin: String,
    leg_fare: Decimal,
    leg_seats: i32,
}

/// The cheapest cabin of `rm_flights f` with `$passengers` seats, of cabin
/// `$cabin` if not null (a lateral join: `c.cabin, c.fare, c.seats`).
fn bookable_cabin_lateral(cabin: &str, passengers: &str) -> String {
    format!(
        "CROSS JOIN LATERAL ( \
            SELECT b.cabin, b.fare, b.seats FROM ( \
                SELECT fc.cabin, fc.fare, fc.available_seats + {lapsed} AS seats \
                FROM rm_flight_cabins fc \
                WHERE fc.flight_id = f.flight_id AND ({cabin}::text IS NULL OR fc.cabin = {cabin})) b \
            WHERE b.seats >= {passengers} ORDER BY b.fare, b.cabin LIMIT 1) c",
        lapsed = lapsed_in_cabin("fc"),
    )
}

/// Flights for an itinerary search ([`Departures`]), earliest first. The
/// route index (`rm_flights_search`) serves a search with destinations,
/// `rm_flights_departures` one without.
pub async fn departures(pool: &PgPool, q: &Departures<'_>) -> Result<Vec<LegRow>, sqlx::Error> {
    fn query(to_destinations: bool) -> String {
        format!(
            "SELECT {FLIGHT_COLUMNS}, c.cabin AS leg_cabin, c.fare AS leg_fare, c.seats AS leg_seats \
             FROM rm_flights f {lateral} \
             WHERE f.origin = ANY($1) {destinations} \
               AND f.departure_date BETWEEN ($3::timestamptz AT TIME ZONE 'UTC')::date \
                                        AND ($4::timestamptz AT TIME ZONE 'UTC')::date \
               AND f.departs_at >= $3 AND f.departs_at <= $4 AND f.departs_at > now() \
               AND NOT f.cancelled AND ($7::text IS NULL OR f.airline = $7) \
             ORDER BY f.departs_at, f.flight_id LIMIT $8",
            lateral = bookable_cabin_lateral("$5", "$6"),
            destinations = if to_destinations {
                "AND f.destination = ANY($2)"
            } else {
                "AND $2::text[] IS NULL"
            },
        )
    }
    static TO: LazyLock<String> = LazyLock::new(|| query(true));
    static ANYWHERE: LazyLock<String> = LazyLock::new(|| query(false));
    let sql = if q.destinations.is_some() {
        &TO
    } else {
        &ANYWHERE
    };
    let rows: Vec<LegColumns> = sqlx::query_as(sql)
        .bind(q.origins)
        .bind(q.destinations)
        .bind(q.from)
        .bind(q.until)
        .bind(q.cabin.map(|c| c.as_str()))
        .bind(q.passengers)
        .bind(q.airline)
        .bind(q.limit)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            let mut flight = r.flight;
            flight.price = Some(r.leg_fare);
            Ok(LegRow {
                flight,
                cabin: super::parse("cabin", &r.leg_cabin)?,
                fare: r.leg_fare,
                seats_left: r.leg_seats,
            })
        })
        .collect()
}
