//! Operations: sagas and projections.

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::fulfilment::Step;
use uuid::Uuid;

use super::{id, loader, Booking, Flight, SagaKind, SagaStatus};
use crate::error::OrInternal;
use crate::loaders::{BookingKey, FlightKey};

pub const SAGA_COLUMNS: &str = "s.saga_id, s.kind, s.booking_id, s.flight_id, s.status, s.step, \
     s.compensations, s.charge_started, s.hold_expires_at, s.payment_deadline, s.next_run_at, \
     s.attempts, s.last_error, s.locked_until, s.created_at, s.updated_at";

/// A saga's stored name, read as its enum.
#[derive(Debug, Clone, Copy)]
pub struct NameOf<T>(pub T);

impl<T> TryFrom<String> for NameOf<T>
where
    T: std::str::FromStr<Err = domain::fulfilment::UnknownName>,
{
    type Error = domain::fulfilment::UnknownName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map(NameOf)
    }
}

/// A row of the `sagas` table (the sagas crate's `0007_sagas.sql`), which
/// the saga workers keep: it is their state, read here as it stands.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct SagaRow {
    pub saga_id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: NameOf<domain::fulfilment::SagaKind>,
    pub booking_id: Option<Uuid>,
    pub flight_id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: NameOf<domain::fulfilment::SagaStatus>,
    #[sqlx(try_from = "String")]
    pub step: NameOf<Step>,
    pub compensations: sqlx::types::Json<Vec<Compensation>>,
    pub charge_started: bool,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub payment_deadline: Option<DateTime<Utc>>,
    pub next_run_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A process instance (admins): where it stands, its deadlines, its
/// retries and its last error.
pub struct Saga(pub SagaRow);

#[Object]
impl Saga {
    async fn id(&self) -> ID {
        id(self.0.saga_id)
    }
    async fn kind(&self) -> SagaKind {
        self.0.kind.0.into()
    }
    /// The booking it fulfils; null for a flight cancellation.
    async fn booking_id(&self) -> Option<ID> {
        self.0.booking_id.map(id)
    }
    async fn booking(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Booking>> {
        let Some(booking) = self.0.booking_id else {
            return Ok(None);
        };
        Ok(loader(ctx)
            .load_one(BookingKey(booking))
            .await
            .or_internal()?
            .map(Booking))
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
    async fn status(&self) -> SagaStatus {
        self.0.status.0.into()
    }
    /// The step it is at or waiting in (`AWAITING_PAYMENT`, `CHARGING`,
    /// `MOVING`, `CONFIRMING`, `TICKETING`, `INVOICING`, `COMPENSATING`,
    /// `CANCELLING_BOOKINGS`, `DONE`, ...).
    async fn step(&self) -> &str {
        self.0.step.0.as_str()
    }
    /// What undoes the steps taken so far, in the order registered, and
    /// whether each has run.
    async fn compensations(&self) -> &[Compensation] {
        &self.0.compensations.0
    }
    /// Whether the payment provider has been called: from then on the
    /// charge's outcome is learnt from the provider, never assumed.
    async fn charge_started(&self) -> bool {
        self.0.charge_started
    }
    /// When the booking's seat hold lapses unless paid.
    async fn hold_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.hold_expires_at
    }
    /// When a submitted payment stops being worth waiting for.
    async fn payment_deadline(&self) -> Option<DateTime<Utc>> {
        self.0.payment_deadline
    }
    /// When a worker runs it next (its durable timer or retry back-off).
    async fn next_run_at(&self) -> DateTime<Utc> {
        self.0.next_run_at
    }
    /// Failed tries in a row (back to 0 once a step succeeds); when they
    /// run out the saga is parked.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// Until when a worker holds it; null when none does.
    async fn leased_until(&self) -> Option<DateTime<Utc>> {
        self.0.locked_until.filter(|t| *t > Utc::now())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A registered compensation of a saga.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[graphql(name = "SagaCompensation")]
pub struct Compensation {
    /// `release_seats`, `refund_payment` or `return_seats`.
    pub name: String,
    pub done: bool,
}

/// A projector's progress.
#[derive(SimpleObject, Debug, Clone)]
pub struct ProjectionStatus {
    pub name: String,
    /// The last log position it has seen (the format of `X-Read-After`).
    pub position: String,
    /// About how many events it is behind the head of the log.
    pub lag: i64,
    /// Age of the oldest event it has not applied yet.
    pub lag_seconds: f64,
    pub events_seen: i64,
    pub last_recorded_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}
