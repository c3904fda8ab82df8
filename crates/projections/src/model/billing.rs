//! `rm_payments` (one row per payment) and `rm_invoices`.

use chrono::{DateTime, Utc};
use domain::payment::PaymentStatus;
use rust_decimal::Decimal;
use uuid::Uuid;

/// The columns of [`PaymentRow`] from `rm_payments p`.
pub const PAYMENT_COLUMNS: &str = "p.payment_id, p.booking_id, p.status, p.amount, p.currency, \
     p.refunded, p.card_brand, p.card_last4, p.decline_code, p.decline_reason, p.requested_at, \
     p.captured_at, p.updated_at";

/// A payment as readers see it.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
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
