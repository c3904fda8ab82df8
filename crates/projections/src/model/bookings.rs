//! `rm_bookings` (one row per booking) and `rm_booking_passengers`.

use chrono::{DateTime, Utc};
use domain::booking::BookingStatus;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

/// The columns of [`BookingRow`] from `rm_bookings b`.
pub const BOOKING_COLUMNS: &str = "b.booking_id, b.pnr, b.flight_id, b.customer_id, b.created_by, \
     b.status, b.total, b.currency, b.refund, b.hold_expires_at, b.payment_id, b.reason, \
     b.created_at, b.updated_at";

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
    pub total: Decimal,
    pub currency: String,
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

/// A customer's unpaid bookings (`HELD` or `PAYMENT_PENDING`, their hold
/// not lapsed), and those of `also` in whatever state: each with its
/// passengers' seats and whether it is unpaid.
pub async fn unpaid_of(
    pool: &PgPool,
    customer: Uuid,
    also: &[Uuid],
) -> Result<Vec<(Uuid, i64, bool)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT booking_id, seats, unpaid FROM ( \
           SELECT b.booking_id, \
                  (SELECT count(*) FROM rm_booking_passengers p \
                   WHERE p.booking_id = b.booking_id) AS seats, \
                  coalesce(b.status IN ('HELD', 'PAYMENT_PENDING') \
                           AND b.hold_expires_at > now(), false) AS unpaid \
           FROM rm_bookings b \
           WHERE b.customer_id = $1 \
             AND ((b.status IN ('HELD', 'PAYMENT_PENDING') AND b.hold_expires_at > now()) \
                  OR b.booking_id = ANY($2))) held",
    )
    .bind(customer)
    .bind(also)
    .fetch_all(pool)
    .await
}
