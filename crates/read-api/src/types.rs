//! The GraphQL types of `CONTRACT.md` and the rows they are read from.
//! Enum and type names are fixed by the contract; extra fields are
//! additions.

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, Enum, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject,
    Value, ID,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{internal, OrInternal};
use crate::loaders::{BookingKey, CabinsKey, FlightKey, PassengersKey, PaymentKey, PgLoader};

/// A calendar date, `YYYY-MM-DD` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("expected a date as YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

macro_rules! db_enum {
    ($name:ident { $($variant:ident => $db:literal),+ $(,)? }) => {
        impl $name {
            /// The spelling in the read-model tables.
            pub fn as_db(self) -> &'static str {
                match self { $($name::$variant => $db),+ }
            }

            pub fn from_db(s: &str) -> async_graphql::Result<Self> {
                match s {
                    $($db => Ok($name::$variant),)+
                    other => Err(internal(format!(concat!("unknown ", stringify!($name), " {:?} in a read model"), other))),
                }
            }
        }
    };
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cabin {
    First,
    Business,
    PremiumEconomy,
    Economy,
}
db_enum!(Cabin { First => "first", Business => "business", PremiumEconomy => "premium_economy", Economy => "economy" });

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}
db_enum!(SeatStatus { Available => "AVAILABLE", Held => "HELD", Sold => "SOLD" });

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingStatus {
    Held,
    PaymentPending,
    Confirmed,
    Ticketed,
    Cancelled,
    PaymentFailed,
    Expired,
    Failed,
}
db_enum!(BookingStatus {
    Held => "HELD", PaymentPending => "PAYMENT_PENDING", Confirmed => "CONFIRMED",
    Ticketed => "TICKETED", Cancelled => "CANCELLED", PaymentFailed => "PAYMENT_FAILED",
    Expired => "EXPIRED", Failed => "FAILED",
});

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    Captured,
    Declined,
    Refunded,
    PartiallyRefunded,
}
db_enum!(PaymentStatus {
    Pending => "PENDING", Captured => "CAPTURED", Declined => "DECLINED",
    Refunded => "REFUNDED", PartiallyRefunded => "PARTIALLY_REFUNDED",
});

/// Where a saga stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaStatus {
    /// Moving forward (or waiting for a payment or a deadline).
    Running,
    /// Undoing what it did.
    Compensating,
    /// Done: the booking is ticketed, or the flight's bookings cancelled.
    Completed,
    /// Done after undoing what it did.
    Compensated,
    /// Retries ran out: an admin can retry it (`POST /api/v1/sagas/{id}/retry`).
    Parked,
}
db_enum!(SagaStatus {
    Running => "RUNNING", Compensating => "COMPENSATING", Completed => "COMPLETED",
    Compensated => "COMPENSATED", Parked => "PARKED",
});

/// Which process a saga runs.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaKind {
    /// A booking's payment, confirmation, tickets and invoice.
    Fulfilment,
    /// Cancelling and refunding every booking of a cancelled flight.
    FlightCancellation,
}
db_enum!(SagaKind { Fulfilment => "fulfilment", FlightCancellation => "flight_cancellation" });

#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    pub currency: String,
}

impl Money {
    /// Amounts read with two decimals, as the write side answers them.
    pub fn new(mut amount: Decimal, currency: &str) -> Self {
        amount.rescale(2);
        Self {
            amount,
            currency: currency.to_owned(),
        }
    }
}

pub fn id(uuid: Uuid) -> ID {
    ID(uuid.to_string())
}

/// An `ID` argument as a UUID, or `BAD_REQUEST`.
pub fn parse_id(id: &ID, what: &str) -> async_graphql::Result<Uuid> {
    id.parse::<Uuid>()
        .map_err(|_| crate::error::bad_request(format!("{what} is not a valid id")))
}

pub fn loader<'a>(ctx: &'a Context<'_>) -> &'a DataLoader<PgLoader> {
    ctx.data_unchecked::<DataLoader<PgLoader>>()
}

pub fn pool<'a>(ctx: &'a Context<'_>) -> &'a PgPool {
    ctx.data_unchecked::<PgPool>()
}

// ------------------------------------------------------------------ flights

pub const FLIGHT_COLUMNS: &str =
    "f.flight_id, f.flight_number, f.airline, f.origin, f.destination, \
     f.departs_at, f.arrives_at, f.currency, f.cancelled, f.cancel_reason, f.total_seats";

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
    /// parallel arrays; otherwise the cabins loader fetches them.
    #[sqlx(default)]
    pub cabin_names: Option<Vec<String>>,
    #[sqlx(default)]
    pub cabin_fares: Option<Vec<Decimal>>,
    #[sqlx(default)]
    pub cabin_totals: Option<Vec<i32>>,
    #[sqlx(default)]
    pub cabin_available: Option<Vec<i32>>,
}

/// The columns of [`FlightRow`]'s prefetched cabins, for a query that
/// selects from `rm_flights f`. A hold past its expiry counts as available,
/// as in the seat map.
pub const FLIGHT_CABIN_ARRAYS: &str = "\
    k.cabin_names, k.cabin_fares, k.cabin_totals, k.cabin_available";
pub const FLIGHT_CABINS_LATERAL: &str = "\
    CROSS JOIN LATERAL ( \
        SELECT array_agg(fc.cabin) AS cabin_names, array_agg(fc.fare) AS cabin_fares, \
               array_agg(fc.total_seats) AS cabin_totals, \
               array_agg(fc.available_seats + ( \
                   SELECT count(*)::int FROM rm_seats s \
                   WHERE s.flight_id = fc.flight_id AND s.cabin = fc.cabin \
                     AND s.status = 'HELD' AND s.hold_expires_at <= now())) AS cabin_available \
        FROM rm_flight_cabins fc WHERE fc.flight_id = f.flight_id) k";

impl FlightRow {
    /// The cabins fetched with the row, in cabin order, if they were.
    fn prefetched_cabins(&self) -> Option<async_graphql::Result<Vec<CabinAvailability>>> {
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
                Ok(CabinAvailability {
                    cabin: Cabin::from_db(name)?,
                    fare: Money::new(*fare, &self.currency),
                    available_seats: *available,
                    total_seats: *total,
                })
            })
            .collect::<async_graphql::Result<Vec<_>>>();
        Some(cabins.map(|mut c| {
            c.sort_by_key(|c| c.cabin as u8);
            c
        }))
    }
}

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
            return cabins;
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
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT seat, cabin, \
                CASE WHEN status = 'HELD' AND hold_expires_at <= now() THEN 'AVAILABLE' ELSE status END \
         FROM rm_seats WHERE flight_id = $1 ORDER BY seat_row, seat_letter",
    )
    .bind(flight)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(seat, cabin, status)| {
            Ok(SeatState {
                seat,
                cabin: Cabin::from_db(&cabin).map_err(|e| sqlx::Error::Decode(e.message.into()))?,
                status: SeatStatus::from_db(&status)
                    .map_err(|e| sqlx::Error::Decode(e.message.into()))?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ bookings

pub const BOOKING_COLUMNS: &str = "b.booking_id, b.pnr, b.flight_id, b.customer_id, b.created_by, \
     b.status, b.total, b.currency, b.refund, b.hold_expires_at, b.payment_id, b.reason, \
     b.created_at, b.updated_at";

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct BookingRow {
    pub booking_id: Uuid,
    pub pnr: String,
    pub flight_id: Uuid,
    pub customer_id: Uuid,
    pub created_by: Uuid,
    pub status: String,
    pub total: Decimal,
    pub currency: String,
    pub refund: Option<Decimal>,
    pub hold_expires_at: DateTime<Utc>,
    pub payment_id: Option<Uuid>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn booking_by(
    pool: &PgPool,
    id: Option<Uuid>,
    pnr: Option<&str>,
) -> Result<Option<BookingRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {BOOKING_COLUMNS} FROM rm_bookings b \
         WHERE ($1::uuid IS NULL OR b.booking_id = $1) AND ($2::text IS NULL OR b.pnr = $2)"
    ))
    .bind(id)
    .bind(pnr)
    .fetch_optional(pool)
    .await
}

pub struct Booking(pub BookingRow);

#[Object]
impl Booking {
    async fn id(&self) -> ID {
        id(self.0.booking_id)
    }
    async fn pnr(&self) -> &str {
        &self.0.pnr
    }
    async fn status(&self) -> async_graphql::Result<BookingStatus> {
        BookingStatus::from_db(&self.0.status)
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
    async fn customer_id(&self) -> ID {
        id(self.0.customer_id)
    }
    /// Who made it: the customer, or the agent who booked for them.
    async fn created_by(&self) -> ID {
        id(self.0.created_by)
    }
    async fn passengers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Passenger>> {
        Ok(loader(ctx)
            .load_one(PassengersKey(self.0.booking_id))
            .await
            .or_internal()?
            .unwrap_or_default())
    }
    async fn seats(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(self
            .passengers(ctx)
            .await?
            .into_iter()
            .map(|p| p.seat)
            .collect())
    }
    async fn total(&self) -> Money {
        Money::new(self.0.total, &self.0.currency)
    }
    /// What a cancellation refunded.
    async fn refund(&self) -> Option<Money> {
        self.0.refund.map(|r| Money::new(r, &self.0.currency))
    }
    /// Why it failed or was cancelled.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// Until when the seats are held; null once paid, cancelled or lapsed.
    async fn hold_expires_at(&self) -> Option<DateTime<Utc>> {
        matches!(self.0.status.as_str(), "HELD" | "PAYMENT_PENDING")
            .then_some(self.0.hold_expires_at)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn payment(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Payment>> {
        let Some(payment) = self.0.payment_id else {
            return Ok(None);
        };
        loader(ctx)
            .load_one(PaymentKey(payment))
            .await
            .or_internal()
    }
    async fn tickets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Ticket>> {
        Ok(self
            .passengers(ctx)
            .await?
            .into_iter()
            .filter_map(|p| {
                p.ticket_number.map(|number| Ticket {
                    number,
                    passenger_id: p.id,
                    seat: p.seat,
                })
            })
            .collect())
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Passenger {
    pub id: ID,
    /// Empty once the customer's personal data is erased (see `erased`).
    pub first_name: String,
    pub last_name: String,
    pub erased: bool,
    pub seat: String,
    pub cabin: Cabin,
    pub fare: Money,
    pub ticket_number: Option<String>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Ticket {
    pub number: String,
    pub passenger_id: ID,
    pub seat: String,
}

// ------------------------------------------------------------------ billing

pub const PAYMENT_COLUMNS: &str = "p.payment_id, p.booking_id, p.status, p.amount, p.currency, \
     p.refunded, p.card_brand, p.card_last4, p.decline_code, p.decline_reason, p.requested_at, \
     p.captured_at, p.updated_at";

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub status: String,
    pub amount: Decimal,
    pub currency: String,
    pub refunded: Decimal,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub decline_code: Option<String>,
    pub decline_reason: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub captured_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Payment {
    pub id: ID,
    pub booking_id: ID,
    pub status: PaymentStatus,
    pub amount: Money,
    pub refunded: Money,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub decline_code: Option<String>,
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub captured_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = async_graphql::Error;
    fn try_from(r: PaymentRow) -> async_graphql::Result<Self> {
        Ok(Payment {
            id: id(r.payment_id),
            booking_id: id(r.booking_id),
            status: PaymentStatus::from_db(&r.status)?,
            amount: Money::new(r.amount, &r.currency),
            refunded: Money::new(r.refunded, &r.currency),
            card_brand: r.card_brand,
            card_last4: r.card_last4,
            decline_code: r.decline_code,
            decline_reason: r.decline_reason,
            created_at: r.requested_at,
            captured_at: r.captured_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Invoice {
    pub number: String,
    pub payment_id: ID,
    pub booking_id: ID,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: Money,
    pub tax_rate: Decimal,
    pub tax: Money,
    pub total: Money,
    pub issued_at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone, serde::Deserialize)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: i32,
    #[serde(rename = "unit_price")]
    pub unit_price: Money,
    pub amount: Money,
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Repr {
            amount: Decimal,
            currency: String,
        }
        let r = Repr::deserialize(d)?;
        Ok(Money::new(r.amount, &r.currency))
    }
}

// ------------------------------------------------------------------ operations

pub const SAGA_COLUMNS: &str = "s.saga_id, s.kind, s.booking_id, s.flight_id, s.status, s.step, \
     s.compensations, s.charge_started, s.hold_expires_at, s.payment_deadline, s.next_run_at, \
     s.attempts, s.last_error, s.locked_until, s.created_at, s.updated_at";

/// A row of the `sagas` table (`schema/migrations/0007_sagas.sql`), which
/// the saga workers keep: it is their state, read here as it stands.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct SagaRow {
    pub saga_id: Uuid,
    pub kind: String,
    pub booking_id: Option<Uuid>,
    pub flight_id: Uuid,
    pub status: String,
    pub step: String,
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
    async fn kind(&self) -> async_graphql::Result<SagaKind> {
        SagaKind::from_db(&self.0.kind)
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
    async fn status(&self) -> async_graphql::Result<SagaStatus> {
        SagaStatus::from_db(&self.0.status)
    }
    /// The step it is at or waiting in (`AWAITING_PAYMENT`, `CHARGING`,
    /// `CONFIRMING`, `TICKETING`, `INVOICING`, `COMPENSATING`,
    /// `CANCELLING_BOOKINGS`, `DONE`, ...).
    async fn step(&self) -> &str {
        &self.0.step
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

/// What `seatMapChanged` pushes: the first message carries the whole map,
/// later ones the seats whose status changed.
#[derive(SimpleObject, Debug, Clone)]
pub struct SeatChange {
    pub flight_id: ID,
    pub seats: Vec<SeatState>,
    pub available_seats: i32,
    pub cancelled: bool,
}
