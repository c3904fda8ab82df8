//! Flights, their cabins and seat maps.

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use projections::model::flights::{self as model, CabinRow, FlightRow};
use sqlx::PgPool;
use uuid::Uuid;

use super::{id, loader, pool, Cabin, Money, SeatStatus};
use crate::error::OrInternal;
use crate::loaders::CabinsKey;

pub struct Flight(pub FlightRow);

#[Object]
impl Flight {
    async fn id(&self) -> ID {
        id(self.0.flight_id)
    }
    async fn flight_number(&self) -> &str {
        &self.0.flight_number
    }
    async fn airline(&self) -> &str {
        &self.0.airline
    }
    async fn origin(&self) -> &str {
        &self.0.origin
    }
    async fn destination(&self) -> &str {
        &self.0.destination
    }
    async fn departs_at(&self) -> DateTime<Utc> {
        self.0.departs_at
    }
    async fn arrives_at(&self) -> DateTime<Utc> {
        self.0.arrives_at
    }
    async fn cancelled(&self) -> bool {
        self.0.cancelled
    }
    async fn cancel_reason(&self) -> Option<&str> {
        self.0.cancel_reason.as_deref()
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn total_seats(&self) -> i32 {
        self.0.total_seats
    }
    /// Seats that can be booked now (a lapsed hold counts as available).
    async fn available_seats(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(self
            .cabins(ctx)
            .await?
            .iter()
            .map(|c| c.available_seats)
            .sum())
    }
    /// In a search: the fare it was ranked by (the cheapest matching cabin);
    /// elsewhere the cheapest cabin.
    async fn lowest_fare(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        if let Some(p) = self.0.price {
            return Ok(Some(Money::new(p, &self.0.currency)));
        }
        Ok(self
            .cabins(ctx)
            .await?
            .into_iter()
            .map(|c| c.fare)
            .min_by(|a, b| a.amount.cmp(&b.amount)))
    }
    async fn cabins(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CabinAvailability>> {
        if let Some(cabins) = self.0.prefetched_cabins() {
            return Ok(cabins.or_internal()?.into_iter().map(Into::into).collect());
        }
        Ok(loader(ctx)
            .load_one(CabinsKey(self.0.flight_id))
            .await
            .or_internal()?
            .unwrap_or_default())
    }
    /// Every seat, by row and letter. A hold past its expiry reads
    /// AVAILABLE even before its HoldExpired event is projected.
    #[graphql(complexity = 50)]
    async fn seat_map(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SeatState>> {
        seat_map(pool(ctx), self.0.flight_id).await.or_internal()
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct CabinAvailability {
    pub cabin: Cabin,
    pub fare: Money,
    pub available_seats: i32,
    pub total_seats: i32,
}

#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct SeatState {
    pub seat: String,
    pub cabin: Cabin,
    pub status: SeatStatus,
}

pub async fn seat_map(pool: &PgPool, flight: Uuid) -> Result<Vec<SeatState>, sqlx::Error> {
    Ok(model::seat_map(pool, flight)
        .await?
        .into_iter()
        .map(|s| SeatState {
            seat: s.seat,
            cabin: s.cabin.into(),
            status: s.status.into(),
        })
        .collect())
}

impl From<CabinRow> for CabinAvailability {
    fn from(c: CabinRow) -> Self {
        Self {
            cabin: c.cabin.into(),
            fare: Money::new(c.fare, &c.currency),
            available_seats: c.available_seats,
            total_seats: c.total_seats,
        }
    }
}

/// What `seatMapChanged` pushes: the first message carries the whole map,
/// later ones the seats whose status changed.
#[derive(SimpleObject, Debug, Clone)]
pub struct SeatChange {
    pub flight_id: ID,
    pub seats: Vec<SeatState>,
    pub available_seats: i32,
    pub cancelled: bool,
}
