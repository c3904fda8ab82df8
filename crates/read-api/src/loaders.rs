//! Batched loads, so a list of bookings with `passengers`, `payment` and
//! `flight` costs one query per table, not one per row. One [`PgLoader`]
//! serves every key type; the [`DataLoader`](async_graphql::dataloader::DataLoader)
//! around it does not cache (it lives as long as the schema), it only
//! batches the loads of one execution step.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use projections::model::billing::{PaymentRow, PAYMENT_COLUMNS};
use projections::model::bookings::{BookingRow, BOOKING_COLUMNS};
use projections::model::flights::{self, FlightRow, FLIGHT_COLUMNS};

use crate::types::{id, Cabin, CabinAvailability, Money, Passenger, Payment};

pub struct PgLoader {
    pub pool: PgPool,
}

/// Loader failures are shared by every key of the batch.
#[derive(Debug, Clone)]
pub struct LoadError(Arc<String>);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn load_error(e: impl std::fmt::Display) -> LoadError {
    LoadError(Arc::new(e.to_string()))
}

fn ids<K: Copy>(keys: &[K], f: impl Fn(K) -> Uuid) -> Vec<Uuid> {
    keys.iter().map(|k| f(*k)).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlightKey(pub Uuid);

impl Loader<FlightKey> for PgLoader {
    type Value = FlightRow;
    type Error = LoadError;

    async fn load(&self, keys: &[FlightKey]) -> Result<HashMap<FlightKey, FlightRow>, LoadError> {
        let rows: Vec<FlightRow> = sqlx::query_as(&format!(
            "SELECT {FLIGHT_COLUMNS} FROM rm_flights f WHERE f.flight_id = ANY($1)"
        ))
        .bind(ids(keys, |k| k.0))
        .fetch_all(&self.pool)
        .await
        .map_err(load_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (FlightKey(r.flight_id), r))
            .collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BookingKey(pub Uuid);

impl Loader<BookingKey> for PgLoader {
    type Value = BookingRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[BookingKey],
    ) -> Result<HashMap<BookingKey, BookingRow>, LoadError> {
        let rows: Vec<BookingRow> = sqlx::query_as(&format!(
            "SELECT {BOOKING_COLUMNS} FROM rm_bookings b WHERE b.booking_id = ANY($1)"
        ))
        .bind(ids(keys, |k| k.0))
        .fetch_all(&self.pool)
        .await
        .map_err(load_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (BookingKey(r.booking_id), r))
            .collect())
    }
}

/// A flight's cabins, first class first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CabinsKey(pub Uuid);

impl Loader<CabinsKey> for PgLoader {
    type Value = Vec<CabinAvailability>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CabinsKey],
    ) -> Result<HashMap<CabinsKey, Vec<CabinAvailability>>, LoadError> {
        // A hold past its expiry is available even before its HoldExpired
        // event is projected, as in the seat map.
        let rows = flights::cabins_of(&self.pool, &ids(keys, |k| k.0))
            .await
            .map_err(load_error)?;
        let mut out: HashMap<CabinsKey, Vec<CabinAvailability>> = HashMap::new();
        for row in rows {
            out.entry(CabinsKey(row.flight_id))
                .or_default()
                .push(row.into());
        }
        for cabins in out.values_mut() {
            cabins.sort_by_key(|c| c.cabin as u8);
        }
        Ok(out)
    }
}

/// A booking's passengers, in booking order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PassengersKey(pub Uuid);

#[derive(sqlx::FromRow)]
struct PassengerRow {
    booking_id: Uuid,
    passenger_id: Uuid,
    seat: String,
    passenger_type: String,
    travels_with: Option<Uuid>,
    cabin: String,
    fare: Decimal,
    first_name: Option<String>,
    last_name: Option<String>,
    ticket_number: Option<String>,
    currency: String,
}

impl Loader<PassengersKey> for PgLoader {
    type Value = Vec<Passenger>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PassengersKey],
    ) -> Result<HashMap<PassengersKey, Vec<Passenger>>, LoadError> {
        // An infant has no seat of their own: they are shown in the seat of
        // the adult whose lap they sit on.
        let rows: Vec<PassengerRow> = sqlx::query_as(
            "SELECT p.booking_id, p.passenger_id, \
                    coalesce(p.seat, (SELECT a.seat FROM rm_booking_passengers a \
                                      WHERE a.booking_id = p.booking_id \
                                        AND a.passenger_id = p.travels_with), '') AS seat, \
                    p.passenger_type, p.travels_with, p.cabin, p.fare, p.first_name, \
                    p.last_name, p.ticket_number, b.currency \
             FROM rm_booking_passengers p JOIN rm_bookings b ON b.booking_id = p.booking_id \
             WHERE p.booking_id = ANY($1) ORDER BY p.booking_id, p.ordinal",
        )
        .bind(ids(keys, |k| k.0))
        .fetch_all(&self.pool)
        .await
        .map_err(load_error)?;
        let mut out: HashMap<PassengersKey, Vec<Passenger>> = HashMap::new();
        for r in rows {
            let cabin: domain::values::Cabin = r.cabin.parse().map_err(load_error)?;
            let kind = match r.passenger_type.as_str() {
                "child" => domain::booking::PassengerType::Child,
                "infant" => domain::booking::PassengerType::Infant,
                _ => domain::booking::PassengerType::Adult,
            };
            out.entry(PassengersKey(r.booking_id))
                .or_default()
                .push(Passenger {
                    id: id(r.passenger_id),
                    erased: r.first_name.is_none() && r.last_name.is_none(),
                    first_name: r.first_name.unwrap_or_default(),
                    last_name: r.last_name.unwrap_or_default(),
                    passenger_type: kind.into(),
                    seat: r.seat,
                    travels_with: r.travels_with.map(id),
                    cabin: Cabin::from(cabin),
                    fare: Money::new(r.fare, &r.currency),
                    ticket_number: r.ticket_number,
                });
        }
        Ok(out)
    }
}

/// An itinerary's further flights (none for a booking of one flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionsKey(pub Uuid);

/// A passenger on a further flight of an itinerary.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionSeat {
    pub booking_id: Uuid,
    pub flight_id: Uuid,
    pub passenger_id: Uuid,
    /// An infant's: the seat of the adult whose lap they sit on.
    pub seat: String,
    /// `None` for an infant's own seat (they have none).
    pub own_seat: Option<String>,
    pub ticket_number: Option<String>,
}

impl Loader<ConnectionsKey> for PgLoader {
    /// In the order flown, each flight's passengers in the booking's order.
    type Value = Vec<ConnectionSeat>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ConnectionsKey],
    ) -> Result<HashMap<ConnectionsKey, Self::Value>, LoadError> {
        let rows: Vec<ConnectionSeat> = sqlx::query_as(
            "SELECT c.booking_id, c.flight_id, c.passenger_id, \
                    coalesce(c.seat, (SELECT a.seat FROM rm_booking_connections a \
                                      WHERE a.booking_id = c.booking_id \
                                        AND a.flight_id = c.flight_id \
                                        AND a.passenger_id = p.travels_with), '') AS seat, \
                    c.seat AS own_seat, c.ticket_number \
             FROM rm_booking_connections c \
             JOIN rm_booking_passengers p \
               ON p.booking_id = c.booking_id AND p.passenger_id = c.passenger_id \
             WHERE c.booking_id = ANY($1) ORDER BY c.booking_id, c.ordinal, p.ordinal",
        )
        .bind(ids(keys, |k| k.0))
        .fetch_all(&self.pool)
        .await
        .map_err(load_error)?;
        let mut out: HashMap<ConnectionsKey, Self::Value> = HashMap::new();
        for row in rows {
            out.entry(ConnectionsKey(row.booking_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentKey(pub Uuid);

impl Loader<PaymentKey> for PgLoader {
    type Value = Payment;
    type Error = LoadError;

    async fn load(&self, keys: &[PaymentKey]) -> Result<HashMap<PaymentKey, Payment>, LoadError> {
        let rows: Vec<PaymentRow> = sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM rm_payments p WHERE p.payment_id = ANY($1)"
        ))
        .bind(ids(keys, |k| k.0))
        .fetch_all(&self.pool)
        .await
        .map_err(load_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (PaymentKey(r.payment_id), Payment::from(r)))
            .collect())
    }
}
