//! Payments and invoices.

use async_graphql::{SimpleObject, ID};
use chrono::{DateTime, Utc};
use projections::model::billing::PaymentRow;
use rust_decimal::Decimal;

use super::{id, Money, PaymentStatus};

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

impl From<PaymentRow> for Payment {
    fn from(r: PaymentRow) -> Self {
        Payment {
            id: id(r.payment_id),
            booking_id: id(r.booking_id),
            status: r.status.into(),
            amount: Money::new(r.amount, &r.currency),
            refunded: Money::new(r.refunded, &r.currency),
            card_brand: r.card_brand,
            card_last4: r.card_last4,
            decline_code: r.decline_code,
            decline_reason: r.decline_reason,
            created_at: r.requested_at,
            captured_at: r.captured_at,
            updated_at: r.updated_at,
        }
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
    /// Taken off the total (a discount) rather than charged.
    #[serde(default)]
    pub credit: bool,
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
