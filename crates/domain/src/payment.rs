//! Billing for one booking (`payment-…`): request, capture or decline,
//! refunds, and the invoice.
//!
//! Card numbers never enter the log: the gateway sees the number, the
//! events keep the brand and the last four digits. [`card_brand`] and
//! [`luhn_valid`] let the API check a number before it goes anywhere.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Aggregate, DomainEvent};
use crate::values::{Money, MoneyError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Pending,
    Captured,
    Declined,
    Refunded,
    PartiallyRefunded,
}

impl PaymentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Captured => "CAPTURED",
            PaymentStatus::Declined => "DECLINED",
            PaymentStatus::Refunded => "REFUNDED",
            PaymentStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
        }
    }
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Pending,
        PaymentStatus::Captured,
        PaymentStatus::Declined,
        PaymentStatus::Refunded,
        PaymentStatus::PartiallyRefunded,
    ];
}

/// A name that is no payment status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment status {0:?}")]
pub struct UnknownPaymentStatus(pub String);

impl std::str::FromStr for PaymentStatus {
    type Err = UnknownPaymentStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPaymentStatus(s.to_owned()))
    }
}

impl TryFrom<String> for PaymentStatus {
    type Error = UnknownPaymentStatus;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invoice line as asked for; `amount` is computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceLineInput {
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
    /// A reduction (a discount): its amount is taken off the total.
    pub credit: bool,
}

impl InvoiceLineInput {
    /// One of something at `unit_price`.
    pub fn charge(description: impl Into<String>, unit_price: Money) -> Self {
        Self {
            description: description.into(),
            quantity: 1,
            unit_price,
            credit: false,
        }
    }

    /// A reduction of `amount`.
    pub fn credit(description: impl Into<String>, amount: Money) -> Self {
        Self {
            credit: true,
            ..Self::charge(description, amount)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PaymentCommand {
    Request {
        payment_id: Uuid,
        booking_id: Uuid,
        amount: Money,
        card_brand: String,
        card_last4: String,
        /// The provider's token for the card (never the number itself).
        card_token: Option<String>,
        now: DateTime<Utc>,
    },
    Capture {
        gateway_reference: String,
        now: DateTime<Utc>,
    },
    Decline {
        code: String,
        reason: String,
        now: DateTime<Utc>,
    },
    Refund {
        refund_id: Uuid,
        amount: Money,
        reason: String,
        now: DateTime<Utc>,
    },
    /// `tax_rate` is a fraction (`0.20` for 20 %); fares are tax-inclusive.
    IssueInvoice {
        invoice_number: String,
        tax_rate: Decimal,
        lines: Vec<InvoiceLineInput>,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRequested {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub amount: Money,
    pub card_brand: String,
    pub card_last4: String,
    /// What the saga charges: the provider's token for the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_token: Option<String>,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub amount: Money,
    pub gateway_reference: String,
    pub captured_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub code: String,
    pub reason: String,
    pub declined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub refund_id: Uuid,
    pub amount: Money,
    /// Everything refunded so far, this refund included.
    pub total_refunded: Money,
    pub reason: String,
    pub refunded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub amount: Money,
    /// Taken off the total (a discount); absent on charges.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceIssued {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub invoice_number: String,
    pub lines: Vec<InvoiceLine>,
    /// `total - tax`.
    pub subtotal: Money,
    pub tax_rate: Decimal,
    /// The tax contained in the tax-inclusive `total`.
    pub tax: Money,
    /// Equals the captured amount.
    pub total: Money,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PaymentEvent {
    PaymentRequested(PaymentRequested),
    PaymentCaptured(PaymentCaptured),
    PaymentDeclined(PaymentDeclined),
    PaymentRefunded(PaymentRefunded),
    InvoiceIssued(InvoiceIssued),
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> &'static str {
        match self {
            PaymentEvent::PaymentRequested(_) => "PaymentRequested",
            PaymentEvent::PaymentCaptured(_) => "PaymentCaptured",
            PaymentEvent::PaymentDeclined(_) => "PaymentDeclined",
            PaymentEvent::PaymentRefunded(_) => "PaymentRefunded",
            PaymentEvent::InvoiceIssued(_) => "InvoiceIssued",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("payment was already requested")]
    AlreadyRequested,
    #[error("payment was not requested")]
    NotRequested,
    #[error("payment is {status}; cannot {action}")]
    InvalidState {
        status: PaymentStatus,
        action: &'static str,
    },
    #[error("payment is already captured")]
    AlreadyCaptured,
    #[error("amount must be greater than zero")]
    InvalidAmount,
    #[error("card brand must not be empty")]
    InvalidCardBrand,
    #[error("card last4 must be 4 digits")]
    InvalidCardLast4,
    #[error("{0} must not be empty")]
    Missing(&'static str),
    #[error("refund {requested} exceeds the refundable {refundable}")]
    ExceedsRefundable { requested: Money, refundable: Money },
    #[error("refund {0} was already made")]
    DuplicateRefund(Uuid),
    #[error("an invoice was already issued")]
    AlreadyInvoiced,
    #[error("tax rate must be between 0 and 1")]
    InvalidTaxRate,
    #[error("invoice lines must be non-empty with quantities of at least 1")]
    InvalidLines,
    #[error("invoice lines add up to {lines}, but {captured} was captured")]
    InvoiceTotalMismatch { lines: Money, captured: Money },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl PaymentError {
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PaymentError::InvalidAmount | PaymentError::ExceedsRefundable { .. } => Some("amount"),
            PaymentError::InvalidCardBrand => Some("card_brand"),
            PaymentError::InvalidCardLast4 => Some("card_last4"),
            PaymentError::Missing(field) => Some(field),
            PaymentError::InvalidTaxRate => Some("tax_rate"),
            PaymentError::InvalidLines | PaymentError::InvoiceTotalMismatch { .. } => Some("lines"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Payment {
    pub requested: Option<PaymentRequested>,
    pub status: Option<PaymentStatus>,
    pub captured: Option<Money>,
    pub gateway_reference: Option<String>,
    pub decline: Option<PaymentDeclined>,
    pub refunds: Vec<PaymentRefunded>,
    pub invoice: Option<InvoiceIssued>,
}

impl Payment {
    pub fn refunded(&self) -> Option<Money> {
        let currency = self.requested.as_ref()?.amount.currency();
        Money::sum(currency, self.refunds.iter().map(|r| &r.amount)).ok()
    }

    /// Captured minus already refunded (zero before capture).
    pub fn refundable(&self) -> Option<Money> {
        let requested = self.requested.as_ref()?;
        let captured = self
            .captured
            .unwrap_or(Money::zero(requested.amount.currency()));
        captured.saturating_sub(&self.refunded()?).ok()
    }

    fn requested(&self) -> Result<(&PaymentRequested, PaymentStatus), PaymentError> {
        match (&self.requested, self.status) {
            (Some(r), Some(s)) => Ok((r, s)),
            _ => Err(PaymentError::NotRequested),
        }
    }
}

fn required(value: String, field: &'static str) -> Result<String, PaymentError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Err(PaymentError::Missing(field))
    } else {
        Ok(trimmed.to_owned())
    }
}

/// The tax inside a tax-inclusive `total`: `total - total / (1 + rate)`,
/// rounded half away from zero.
pub fn included_tax(total: Money, tax_rate: Decimal) -> Result<Money, MoneyError> {
    let net = total.amount() / (Decimal::ONE + tax_rate);
    let net = Money::new(
        net.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
        total.currency(),
    )?;
    total.checked_sub(&net)
}

impl Aggregate for Payment {
    const CATEGORY: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;

    fn decide(&self, command: PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        match command {
            PaymentCommand::Request {
                payment_id,
                booking_id,
                amount,
                card_brand,
                card_last4,
                card_token,
                now,
            } => {
                if self.requested.is_some() {
                    return Err(PaymentError::AlreadyRequested);
                }
                if amount.is_zero() {
                    return Err(PaymentError::InvalidAmount);
                }
                let card_brand = card_brand.trim().to_ascii_lowercase();
                if card_brand.is_empty() || card_brand.len() > 32 {
                    return Err(PaymentError::InvalidCardBrand);
                }
                if card_last4.len() != 4 || !card_last4.chars().all(|c| c.is_ascii_digit()) {
                    return Err(PaymentError::InvalidCardLast4);
                }
                Ok(vec![PaymentEvent::PaymentRequested(PaymentRequested {
                    payment_id,
                    booking_id,
                    amount,
                    card_brand,
                    card_last4,
                    card_token,
                    requested_at: now,
                })])
            }
            PaymentCommand::Capture {
                gateway_reference,
                now,
            } => {
                let (requested, status) = self.requested()?;
                match status {
                    PaymentStatus::Pending => {}
                    PaymentStatus::Captured
                    | PaymentStatus::PartiallyRefunded
                    | PaymentStatus::Refunded => return Err(PaymentError::AlreadyCaptured),
                    PaymentStatus::Declined => {
                        return Err(PaymentError::InvalidState {
                            status,
                            action: "capture",
                        })
                    }
                }
                Ok(vec![PaymentEvent::PaymentCaptured(PaymentCaptured {
                    payment_id: requested.payment_id,
                    booking_id: requested.booking_id,
                    amount: requested.amount,
                    gateway_reference: required(gateway_reference, "gateway_reference")?,
                    captured_at: now,
                })])
            }
            PaymentCommand::Decline { code, reason, now } => {
                let (requested, status) = self.requested()?;
                if status != PaymentStatus::Pending {
                    return Err(PaymentError::InvalidState {
                        status,
                        action: "decline",
                    });
                }
                Ok(vec![PaymentEvent::PaymentDeclined(PaymentDeclined {
                    payment_id: requested.payment_id,
                    booking_id: requested.booking_id,
                    code: required(code, "code")?,
                    reason: required(reason, "reason")?,
                    declined_at: now,
                })])
            }
            PaymentCommand::Refund {
                refund_id,
                amount,
                reason,
                now,
            } => {
                let (requested, status) = self.requested()?;
                if self.refunds.iter().any(|r| r.refund_id == refund_id) {
                    return Err(PaymentError::DuplicateRefund(refund_id));
                }
                if !matches!(
                    status,
                    PaymentStatus::Captured | PaymentStatus::PartiallyRefunded
                ) {
                    return Err(PaymentError::InvalidState {
                        status,
                        action: "refund",
                    });
                }
                if amount.is_zero() {
                    return Err(PaymentError::InvalidAmount);
                }
                let refundable = self
                    .refundable()
                    .unwrap_or(Money::zero(requested.amount.currency()));
                if amount.compare(&refundable)?.is_gt() {
                    return Err(PaymentError::ExceedsRefundable {
                        requested: amount,
                        refundable,
                    });
                }
                let total_refunded = self
                    .refunded()
                    .unwrap_or(Money::zero(amount.currency()))
                    .checked_add(&amount)?;
                Ok(vec![PaymentEvent::PaymentRefunded(PaymentRefunded {
                    payment_id: requested.payment_id,
                    booking_id: requested.booking_id,
                    refund_id,
                    amount,
                    total_refunded,
                    reason: required(reason, "reason")?,
                    refunded_at: now,
                })])
            }
            PaymentCommand::IssueInvoice {
                invoice_number,
                tax_rate,
                lines,
                now,
            } => {
                let (requested, status) = self.requested()?;
                if self.invoice.is_some() {
                    return Err(PaymentError::AlreadyInvoiced);
                }
                let Some(captured) = self.captured else {
                    return Err(PaymentError::InvalidState {
                        status,
                        action: "issue an invoice",
                    });
                };
                let invoice_number = required(invoice_number, "invoice_number")?;
                if tax_rate.is_sign_negative() || tax_rate >= Decimal::ONE {
                    return Err(PaymentError::InvalidTaxRate);
                }
                if lines.is_empty()
                    || lines
                        .iter()
                        .any(|l| l.quantity == 0 || l.description.trim().is_empty())
                {
                    return Err(PaymentError::InvalidLines);
                }
                let lines = lines
                    .into_iter()
                    .map(|l| {
                        Ok(InvoiceLine {
                            amount: l.unit_price.checked_mul(l.quantity)?,
                            description: l.description.trim().to_owned(),
                            quantity: l.quantity,
                            unit_price: l.unit_price,
                            credit: l.credit,
                        })
                    })
                    .collect::<Result<Vec<_>, MoneyError>>()?;
                let charges = Money::sum(
                    captured.currency(),
                    lines.iter().filter(|l| !l.credit).map(|l| &l.amount),
                )?;
                let credits = Money::sum(
                    captured.currency(),
                    lines.iter().filter(|l| l.credit).map(|l| &l.amount),
                )?;
                let total = charges.saturating_sub(&credits)?;
                if total != captured {
                    return Err(PaymentError::InvoiceTotalMismatch {
                        lines: total,
                        captured,
                    });
                }
                let tax = included_tax(total, tax_rate)?;
                let subtotal = total.checked_sub(&tax)?;
                Ok(vec![PaymentEvent::InvoiceIssued(InvoiceIssued {
                    payment_id: requested.payment_id,
                    booking_id: requested.booking_id,
                    invoice_number,
                    lines,
                    subtotal,
                    tax_rate,
                    tax,
                    total,
                    issued_at: now,
                })])
            }
        }
    }

    fn evolve(mut self, event: &PaymentEvent) -> Self {
        match event {
            PaymentEvent::PaymentRequested(e) => {
                self.requested = Some(e.clone());
                self.status = Some(PaymentStatus::Pending);
            }
            PaymentEvent::PaymentCaptured(e) => {
                self.captured = Some(e.amount);
                self.gateway_reference = Some(e.gateway_reference.clone());
                self.status = Some(PaymentStatus::Captured);
            }
            PaymentEvent::PaymentDeclined(e) => {
                self.decline = Some(e.clone());
                self.status = Some(PaymentStatus::Declined);
            }
            PaymentEvent::PaymentRefunded(e) => {
                self.refunds.push(e.clone());
                let fully = self.refundable().is_some_and(|r| r.is_zero());
                self.status = Some(if fully {
                    PaymentStatus::Refunded
                } else {
                    PaymentStatus::PartiallyRefunded
                });
            }
            PaymentEvent::InvoiceIssued(e) => self.invoice = Some(e.clone()),
        }
        self
    }
}

fn digits(number: &str) -> Option<Vec<u32>> {
    number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_digit(10))
        .collect()
}

/// Brand by issuer prefix: `"visa"`, `"mastercard"`, `"amex"`,
/// `"discover"` or `"unknown"`. Spaces and dashes are ignored.
pub fn card_brand(number: &str) -> &'static str {
    let Some(d) = digits(number) else {
        return "unknown";
    };
    let prefix = |n: usize| d.iter().take(n).fold(0u32, |acc, x| acc * 10 + x);
    if d.len() < 4 {
        return "unknown";
    }
    match (prefix(1), prefix(2), prefix(3), prefix(4)) {
        (4, ..) => "visa",
        (_, 34 | 37, ..) => "amex",
        (_, 51..=55, ..) | (.., 2221..=2720) => "mastercard",
        (_, 65, ..) | (_, _, 644..=649, _) | (.., 6011) => "discover",
        _ => "unknown",
    }
}

/// Luhn checksum over 12 to 19 digits (spaces and dashes ignored).
pub fn luhn_valid(number: &str) -> bool {
    let Some(d) = digits(number) else {
        return false;
    };
    if !(12..=19).contains(&d.len()) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let doubled = x * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

/// The last four digits, the only part of a card number events keep.
pub fn card_last4(number: &str) -> Option<String> {
    let d = digits(number)?;
    (d.len() >= 4).then(|| {
        d[d.len() - 4..]
            .iter()
            .map(|x| char::from_digit(*x, 10).unwrap_or('0'))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_recognise_test_cards() {
        for valid in [
            "4242424242424242",
            "4000 0000 0000 0002",
            "4000000000009995",
            "4000000000000119",
            "5555555555554444",
            "378282246310005",
        ] {
            assert!(luhn_valid(valid), "{valid}");
        }
        assert!(!luhn_valid("4242424242424241"));
        assert!(!luhn_valid("42424242"));
        assert!(!luhn_valid("4242x24242424242"));
        assert_eq!(card_brand("4242424242424242"), "visa");
        assert_eq!(card_brand("5555555555554444"), "mastercard");
        assert_eq!(card_brand("2223003122003222"), "mastercard");
        assert_eq!(card_brand("378282246310005"), "amex");
        assert_eq!(card_brand("6011111111111117"), "discover");
        assert_eq!(card_brand("9999999999999995"), "unknown");
        assert_eq!(card_last4("4242 4242 4242 4242").as_deref(), Some("4242"));
    }

    #[test]
    fn it_should_extract_tax_from_an_inclusive_total() {
        let total = Money::parse("120.00", crate::values::Currency::USD).unwrap();
        assert_eq!(
            included_tax(total, Decimal::new(20, 2))
                .unwrap()
                .to_string(),
            "20.00 USD"
        );
        assert!(included_tax(total, Decimal::ZERO).unwrap().is_zero());
    }
}
