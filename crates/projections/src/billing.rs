//! Projector `billing`: payments (`rm_payments`) and invoices
//! (`rm_invoices`, line items as JSON).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::payment::{PaymentEvent, PaymentStatus};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::event::{Decoded, Event};
use crate::projector::Projector;
use crate::Result;

pub struct BillingProjector;

#[async_trait]
impl Projector for BillingProjector {
    fn name(&self) -> &'static str {
        "billing"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["payment"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_payments", "rm_invoices"]
    }
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> Result<()> {
        let ids: Vec<Uuid> = events
            .iter()
            .filter_map(|d| match &d.event {
                Event::Payment(e) => Some(payment_id_of(e)),
                _ => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let rows: Vec<PaymentRow> = sqlx::query_as(
            "SELECT payment_id, booking_id, status, amount, currency, refunded, card_brand, \
                    card_last4, gateway_reference, decline_code, decline_reason, requested_at, \
                    captured_at, updated_at \
             FROM rm_payments WHERE payment_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut payments: HashMap<Uuid, PaymentRow> =
            rows.into_iter().map(|p| (p.payment_id, p)).collect();
        let mut dirty = HashSet::new();
        let mut invoices = Vec::new();
        for d in events {
            let Event::Payment(e) = &d.event else {
                continue;
            };
            let id = payment_id_of(e);
            if let PaymentEvent::PaymentRequested(r) = e {
                let (amount, currency) = crate::sql::money(&r.amount);
                payments.insert(
                    id,
                    PaymentRow {
                        payment_id: id,
                        booking_id: r.booking_id,
                        status: PaymentStatus::Pending.as_str().into(),
                        amount,
                        currency,
                        refunded: Decimal::ZERO,
                        card_brand: Some(r.card_brand.clone()),
                        card_last4: Some(r.card_last4.clone()),
                        gateway_reference: None,
                        decline_code: None,
                        decline_reason: None,
                        requested_at: r.requested_at,
                        captured_at: None,
                        updated_at: d.recorded_at,
                    },
                );
                dirty.insert(id);
                continue;
            }
            if let PaymentEvent::InvoiceIssued(i) = e {
                invoices.push(i.clone());
            }
            let Some(p) = payments.get_mut(&id) else {
                tracing::warn!(payment = %id, "event for a payment never requested");
                continue;
            };
            p.updated_at = d.recorded_at;
            dirty.insert(id);
            match e {
                PaymentEvent::PaymentRequested(_) | PaymentEvent::InvoiceIssued(_) => {}
                PaymentEvent::PaymentCaptured(c) => {
                    p.status = PaymentStatus::Captured.as_str().into();
                    p.amount = c.amount.amount();
                    p.gateway_reference = Some(c.gateway_reference.clone());
                    p.captured_at = Some(c.captured_at);
                }
                PaymentEvent::PaymentDeclined(x) => {
                    p.status = PaymentStatus::Declined.as_str().into();
                    p.decline_code = Some(x.code.clone());
                    p.decline_reason = Some(x.reason.clone());
                }
                PaymentEvent::PaymentRefunded(r) => {
                    p.refunded = r.total_refunded.amount();
                    p.status = if p.refunded >= p.amount {
                        PaymentStatus::Refunded
                    } else {
                        PaymentStatus::PartiallyRefunded
                    }
                    .as_str()
                    .into();
                }
            }
        }
        let rows: Vec<&PaymentRow> = dirty.iter().filter_map(|id| payments.get(id)).collect();
        if !rows.is_empty() {
            sqlx::query(
                "INSERT INTO rm_payments (payment_id, booking_id, status, amount, currency, refunded, \
                    card_brand, card_last4, gateway_reference, decline_code, decline_reason, \
                    requested_at, captured_at, updated_at) \
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::text[], \
                    $6::numeric[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
                    $12::timestamptz[], $13::timestamptz[], $14::timestamptz[]) \
                 ON CONFLICT (payment_id) DO UPDATE SET status = excluded.status, \
                    amount = excluded.amount, refunded = excluded.refunded, \
                    gateway_reference = excluded.gateway_reference, decline_code = excluded.decline_code, \
                    decline_reason = excluded.decline_reason, captured_at = excluded.captured_at, \
                    updated_at = excluded.updated_at",
            )
            .bind(rows.iter().map(|p| p.payment_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.booking_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.status.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.amount).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.currency.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.refunded).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.card_brand.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.card_last4.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.gateway_reference.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.decline_code.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.decline_reason.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.requested_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.captured_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.updated_at).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !invoices.is_empty() {
            let lines = invoices
                .iter()
                .map(|i| serde_json::to_value(&i.lines).unwrap_or_default())
                .collect::<Vec<_>>();
            sqlx::query(
                "INSERT INTO rm_invoices (invoice_number, payment_id, booking_id, currency, lines, \
                    subtotal, tax_rate, tax, total, issued_at) \
                 SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], \
                    $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::timestamptz[]) \
                 ON CONFLICT (invoice_number) DO NOTHING",
            )
            .bind(invoices.iter().map(|i| i.invoice_number.clone()).collect::<Vec<_>>())
            .bind(invoices.iter().map(|i| i.payment_id).collect::<Vec<_>>())
            .bind(invoices.iter().map(|i| i.booking_id).collect::<Vec<_>>())
            .bind(
                invoices
                    .iter()
                    .map(|i| i.total.currency().as_str().to_owned())
                    .collect::<Vec<_>>(),
            )
            .bind(lines)
            .bind(invoices.iter().map(|i| i.subtotal.amount()).collect::<Vec<_>>())
            .bind(invoices.iter().map(|i| i.tax_rate).collect::<Vec<_>>())
            .bind(invoices.iter().map(|i| i.tax.amount()).collect::<Vec<_>>())
            .bind(invoices.iter().map(|i| i.total.amount()).collect::<Vec<_>>())
            .bind(invoices.iter().map(|i| i.issued_at).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct PaymentRow {
    payment_id: Uuid,
    booking_id: Uuid,
    status: String,
    amount: Decimal,
    currency: String,
    refunded: Decimal,
    card_brand: Option<String>,
    card_last4: Option<String>,
    gateway_reference: Option<String>,
    decline_code: Option<String>,
    decline_reason: Option<String>,
    requested_at: DateTime<Utc>,
    captured_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

fn payment_id_of(e: &PaymentEvent) -> Uuid {
    match e {
        PaymentEvent::PaymentRequested(e) => e.payment_id,
        PaymentEvent::PaymentCaptured(e) => e.payment_id,
        PaymentEvent::PaymentDeclined(e) => e.payment_id,
        PaymentEvent::PaymentRefunded(e) => e.payment_id,
        PaymentEvent::InvoiceIssued(e) => e.payment_id,
    }
}
