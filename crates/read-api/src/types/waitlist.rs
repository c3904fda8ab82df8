//! The waiting list: a customer's entries (`myWaitlist`,
//! `waitlistUpdated`).

use async_graphql::{Context, Enum, Object, ID};
use chrono::{DateTime, Utc};
use projections::model::waitlist::WaitlistEntryRow;

use super::{id, loader, Cabin, Flight};
use crate::error::OrInternal;
use crate::loaders::FlightKey;

/// Where an entry of a waiting list stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitlistStatus {
    /// In line for seats of its cabin.
    Waiting,
    /// Seats came back and are held for it, as a booking to pay.
    Offered,
    /// The offered booking was paid.
    Accepted,
    /// The offer ran out unpaid, or the entry left the line otherwise: the
    /// flight was cancelled or departed, or the party could no longer be
    /// booked.
    Lapsed,
    /// Taken out of the line by the customer (or an agent).
    Withdrawn,
}
mirror!(WaitlistStatus <=> domain::waitlist::WaitlistStatus {
    Waiting, Offered, Accepted, Lapsed, Withdrawn,
});

/// One party waiting for seats of a sold-out cabin.
pub struct WaitlistEntry(pub WaitlistEntryRow);

#[Object]
impl WaitlistEntry {
    async fn id(&self) -> ID {
        id(self.0.entry_id)
    }
    async fn flight_id(&self) -> ID {
        id(self.0.flight_id)
    }
    async fn flight(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Flight>> {
        Ok(loader(ctx)
            .load_one(FlightKey(self.0.flight_id))
            .await
            .or_internal()?
            .map(Flight))
    }
    async fn cabin(&self) -> Cabin {
        self.0.cabin.into()
    }
    /// 1 for the next in line among those waiting in this cabin; 0 once the
    /// entry no longer waits.
    async fn place(&self) -> i32 {
        self.0.place
    }
    async fn status(&self) -> WaitlistStatus {
        self.0.status.into()
    }
    /// The `HELD` booking that holds the offered seats: pay it to keep
    /// them. Still set once the offer is accepted or has lapsed.
    async fn offer_booking_id(&self) -> Option<ID> {
        self.0.offer_booking_id.map(id)
    }
    /// Until when the offered seats are held; null unless `OFFERED`.
    async fn offer_expires_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == domain::waitlist::WaitlistStatus::Offered)
            .then_some(self.0.offer_expires_at)
            .flatten()
    }
    /// Seats the party needs (an infant sits on a lap).
    async fn seats(&self) -> i32 {
        self.0.seats
    }
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}
