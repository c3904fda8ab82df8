//! `rm_bookings` (one row per booking) and `rm_booking_passengers`.

use chrono::{DateTime, Utc};
use domain::booking::BookingStatus;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

/// The columns of [`BookingRow`] from `rm_bookings b`.
pub const BOOKING_COLUMNS: &str = "b.booking_id, b.pnr, b.flight_id, b.customer_id, b.created_by, \
     b.status, b.total, b.currency, b.discount, b.discount_code, b.refund, b.hold_expires_at, \
     b.payment_id, b.reason, b.created_at, b.updated_at";

/// A booking as readers see it.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct BookingRow {
    pub booking_id: Uuid,
    pub pnr: String,
    pub flight_id: Uuid,
    pub customer_id: Uuid,
    pub created_by: Uuid,
    #[sqlx(try_from = "String")]
    pub status: BookingStatus,
    /// What the passengers pay: their fares less `discount`.
    pub total: Decimal,
    pub currency: String,
    /// What a discount code took off (zero without one).
    pub discount: Decimal,
    pub discount_code: Option<String>,
    pub refund: Option<Decimal>,
    pub hold_expires_at: DateTime<Utc>,
    pub payment_id: Option<Uuid>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A booking by id, by PNR, or by both.
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

/// What each of `customers` holds unpaid (bookings `HELD` or
/// `PAYMENT_PENDING` whose hold has not lapsed, and their passengers'
/// seats), one row per customer holding any; and which of `ours` the read
/// model has seen, in any state. One statement for many callers: the hold
/// caps ask for every new booking, and coalesce what arrives together.
pub async fn unpaid_of(
    pool: &PgPool,
    customers: &[Uuid],
    ours: &[Uuid],
) -> Result<(Vec<(Uuid, i64, i64)>, Vec<Uuid>), sqlx::Error> {
    let rows: Vec<(Option<Uuid>, i64, i64, Option<Uuid>)> = sqlx::query_as(
        "SELECT b.customer_id, count(*), \
                coalesce(sum((SELECT count(*) FROM rm_booking_passengers p \
                              WHERE p.booking_id = b.booking_id AND p.seat IS NOT NULL)), 0)::bigint, NULL::uuid \
         FROM rm_bookings b \
         WHERE b.customer_id = ANY($1) AND b.status IN ('HELD', 'PAYMENT_PENDING') \
           AND b.hold_expires_at > now() \
         GROUP BY b.customer_id \
         UNION ALL \
         SELECT NULL, 0, 0, booking_id FROM rm_bookings WHERE booking_id = ANY($2)",
    )
    .bind(customers)
    .bind(ours)
    .fetch_all(pool)
    .await?;
    let mut unpaid = Vec::new();
    let mut seen = Vec::new();
    for (customer, bookings, seats, booking) in rows {
        match (customer, booking) {
            (Some(c), _) => unpaid.push((c, bookings, seats)),
            (None, Some(b)) => seen.push(b),
            (None, None) => {}
        }
    }
    Ok((unpaid, seen))
}

/// Every unpaid booking whose hold has not lapsed: (booking, customer,
/// seats, hold expiry). On `conn`, so that a caller can read it in the same
/// snapshot as the projector's checkpoint.
pub async fn all_unpaid(
    conn: &mut sqlx::PgConnection,
) -> Result<Vec<(Uuid, Uuid, i64, chrono::DateTime<chrono::Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.booking_id, b.customer_id, \
                (SELECT count(*) FROM rm_booking_passengers p \
                  WHERE p.booking_id = b.booking_id AND p.seat IS NOT NULL), \
                b.hold_expires_at \
         FROM rm_bookings b \
         WHERE b.status IN ('HELD', 'PAYMENT_PENDING') AND b.hold_expires_at > now()",
    )
    .fetch_all(conn)
    .await
}
