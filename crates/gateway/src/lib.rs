//! The payment gateway port, and a simulated provider behind it.
//!
//! The engine talks to a card provider through [`PaymentGateway`]: the REST
//! payment command exchanges the card for a token ([`PaymentGateway::tokenize`])
//! so that the number never goes further than that call, and the fulfilment
//! saga charges and refunds the token. Every charge and refund carries an
//! idempotency key derived from the saga and its step: a provider that
//! honours it (as real ones do) makes a retried call return the first
//! result instead of moving money twice. Calls are bounded by [`within`].
//!
//! [`SimulatedGateway`] decides by card number like common test cards and
//! keeps its own books in PostgreSQL (`gateway_sim_*`), so tests can check
//! that the event log and the provider agree and that nobody was charged
//! twice, across crashes of the engine.

mod simulated;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use domain::values::Money;

pub use simulated::{Behaviour, SimulatedGateway};

/// A card as typed by the customer. Its `Debug` shows the last four digits
/// only, so it cannot leak into a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Card {
    pub number: String,
    pub expiry_month: u32,
    pub expiry_year: i32,
    pub cvc: String,
    pub holder: String,
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field(
                "number",
                &format!(
                    "****{}",
                    domain::payment::card_last4(&self.number).unwrap_or_default()
                ),
            )
            .field("expiry", &(self.expiry_month, self.expiry_year))
            .finish_non_exhaustive()
    }
}

/// What the provider hands back for a card: a token to charge later, and
/// what may be shown and stored (brand, last four digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardToken {
    pub token: String,
    pub brand: String,
    pub last4: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Same key, same charge: a retry returns the first outcome.
    pub idempotency_key: String,
    pub token: String,
    pub amount: Money,
    /// The merchant's own id for the payment.
    pub merchant_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Captured { reference: String },
    Declined { code: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub idempotency_key: String,
    /// The captured charge to refund.
    pub charge_reference: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReceipt {
    pub reference: String,
}

/// A call that did not give an answer. A decline is an answer
/// ([`ChargeOutcome::Declined`]), not an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// Worth retrying later: the provider is down, busy or flaky.
    #[error("payment provider unavailable: {0}")]
    Transient(String),
    /// No answer in time; the call may or may not have taken effect, so it
    /// is retried with the same idempotency key.
    #[error("payment provider did not answer within {0:?}")]
    Timeout(Duration),
    /// The provider refuses the request itself (unknown token, refund over
    /// the captured amount, an idempotency key reused for another request).
    #[error("payment provider rejected the request: {0}")]
    Rejected(String),
}

impl GatewayError {
    pub fn is_transient(&self) -> bool {
        matches!(self, GatewayError::Transient(_) | GatewayError::Timeout(_))
    }
}

/// A card payment provider.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Exchanges card details for a token.
    async fn tokenize(&self, card: &Card) -> Result<CardToken, GatewayError>;

    /// Authorises and captures `amount` on a tokenized card.
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError>;

    /// Gives back (part of) a captured charge.
    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, GatewayError>;
}

/// Runs a gateway call for at most `timeout`.
pub async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, GatewayError>>,
) -> Result<T, GatewayError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(GatewayError::Timeout(timeout)))
}
