//! A card provider that decides by card number, like the test cards of
//! common providers, and keeps its books in PostgreSQL so they outlive the
//! engine's process.
//!
//! | card | result |
//! | --- | --- |
//! | `4242424242424242` | captured |
//! | `4000000000000002` | declined (`card_declined`) |
//! | `4000000000009995` | declined (`insufficient_funds`) |
//! | `4000000000000119` | fails transiently twice per charge, then captures |
//! | any other Luhn-valid number | captured |
//!
//! Idempotency is by key only, as with a real provider: a caller that sent
//! the same payment under two keys would be charged twice, and the books
//! would show it.

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};

use crate::{
    Card, CardToken, ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundReceipt,
    RefundRequest,
};

/// Attempts a transiently failing card needs before its charge goes through.
const TRANSIENT_ATTEMPTS: i32 = 3;

/// How the simulated provider treats a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Approve,
    Decline,
    InsufficientFunds,
    Transient,
}

impl Behaviour {
    pub fn of(number: &str) -> Self {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        match digits.as_str() {
            "4000000000000002" => Behaviour::Decline,
            "4000000000009995" => Behaviour::InsufficientFunds,
            "4000000000000119" => Behaviour::Transient,
            _ => Behaviour::Approve,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Behaviour::Approve => "approve",
            Behaviour::Decline => "decline",
            Behaviour::InsufficientFunds => "insufficient_funds",
            Behaviour::Transient => "transient",
        }
    }
}

#[derive(Clone)]
pub struct SimulatedGateway {
    pool: PgPool,
    latency: Duration,
}

impl SimulatedGateway {
    /// The provider's books live in `pool`'s `gateway_sim_*` tables.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            latency: Duration::ZERO,
        }
    }

    /// Every call takes at least this long, like a network round trip.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

fn reference(prefix: &str) -> String {
    let bytes: [u8; 12] = rand::thread_rng().gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

fn unavailable(e: sqlx::Error) -> GatewayError {
    GatewayError::Transient(e.to_string())
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn tokenize(&self, card: &Card) -> Result<CardToken, GatewayError> {
        self.delay().await;
        if !domain::payment::luhn_valid(&card.number) {
            return Err(GatewayError::Rejected("invalid card number".into()));
        }
        let last4 = domain::payment::card_last4(&card.number)
            .ok_or_else(|| GatewayError::Rejected("invalid card number".into()))?;
        let token = CardToken {
            token: reference("tok"),
            brand: domain::payment::card_brand(&card.number).to_owned(),
            last4,
        };
        sqlx::query(
            "INSERT INTO gateway_sim_cards (token, behaviour, brand, last4) VALUES ($1, $2, $3, $4)",
        )
        .bind(&token.token)
        .bind(Behaviour::of(&card.number).as_str())
        .bind(&token.brand)
        .bind(&token.last4)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(token)
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        self.delay().await;
        // One statement: the first call records the charge, a retry with the
        // same key counts an attempt and returns what the first decided (a
        // transiently failing card goes through on its third attempt).
        let row = sqlx::query(
            "INSERT INTO gateway_sim_charges AS g \
                 (idempotency_key, reference, token, merchant_reference, amount, currency, \
                  status, decline_code, attempts) \
             SELECT $1, $2, c.token, $4, $5, $6, \
                    CASE c.behaviour WHEN 'approve' THEN 'captured' \
                                     WHEN 'transient' THEN 'failing' ELSE 'declined' END, \
                    CASE c.behaviour WHEN 'decline' THEN 'card_declined' \
                                     WHEN 'insufficient_funds' THEN 'insufficient_funds' END, \
                    1 \
             FROM gateway_sim_cards c WHERE c.token = $3 \
             ON CONFLICT (idempotency_key) DO UPDATE SET \
                 attempts = g.attempts + 1, \
                 status = CASE WHEN g.status = 'failing' AND g.attempts + 1 >= $7 \
                               THEN 'captured' ELSE g.status END, \
                 updated_at = now() \
             RETURNING reference, token, amount, currency, status, decline_code",
        )
        .bind(&request.idempotency_key)
        .bind(reference("ch"))
        .bind(&request.token)
        .bind(&request.merchant_reference)
        .bind(request.amount.amount())
        .bind(request.amount.currency().as_str())
        .bind(TRANSIENT_ATTEMPTS)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            return Err(GatewayError::Rejected("unknown card token".into()));
        };
        let amount: Decimal = row.try_get("amount").map_err(unavailable)?;
        let currency: String = row.try_get("currency").map_err(unavailable)?;
        let token: String = row.try_get("token").map_err(unavailable)?;
        if amount != request.amount.amount()
            || currency != request.amount.currency().as_str()
            || token != request.token
        {
            return Err(GatewayError::Rejected(
                "idempotency key reused for a different charge".into(),
            ));
        }
        let status: String = row.try_get("status").map_err(unavailable)?;
        match status.as_str() {
            "captured" => Ok(ChargeOutcome::Captured {
                reference: row.try_get("reference").map_err(unavailable)?,
            }),
            "declined" => {
                let code: Option<String> = row.try_get("decline_code").map_err(unavailable)?;
                let code = code.unwrap_or_else(|| "card_declined".into());
                let reason = match code.as_str() {
                    "insufficient_funds" => "Your card has insufficient funds.",
                    _ => "Your card was declined.",
                };
                Ok(ChargeOutcome::Declined {
                    code,
                    reason: reason.into(),
                })
            }
            _ => Err(GatewayError::Transient(
                "processing error, try again later".into(),
            )),
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundReceipt, GatewayError> {
        self.delay().await;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if let Some(existing) = sqlx::query_scalar::<_, String>(
            "SELECT reference FROM gateway_sim_refunds WHERE idempotency_key = $1",
        )
        .bind(&request.idempotency_key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?
        {
            return Ok(RefundReceipt {
                reference: existing,
            });
        }
        // The charge row is locked so two refunds of one charge cannot both
        // see room for themselves.
        let charge: Option<(Decimal, String)> = sqlx::query_as(
            "SELECT amount, currency FROM gateway_sim_charges \
             WHERE reference = $1 AND status = 'captured' FOR UPDATE",
        )
        .bind(&request.charge_reference)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some((captured, currency)) = charge else {
            return Err(GatewayError::Rejected("no such captured charge".into()));
        };
        if currency != request.amount.currency().as_str() {
            return Err(GatewayError::Rejected("refund currency differs".into()));
        }
        let refunded: Decimal = sqlx::query_scalar(
            "SELECT coalesce(sum(amount), 0) FROM gateway_sim_refunds WHERE charge_reference = $1",
        )
        .bind(&request.charge_reference)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        if refunded + request.amount.amount() > captured {
            return Err(GatewayError::Rejected(format!(
                "refund of {} exceeds the {} left on the charge",
                request.amount.amount(),
                captured - refunded
            )));
        }
        let receipt = RefundReceipt {
            reference: reference("re"),
        };
        sqlx::query(
            "INSERT INTO gateway_sim_refunds \
                 (idempotency_key, reference, charge_reference, amount, currency) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&request.idempotency_key)
        .bind(&receipt.reference)
        .bind(&request.charge_reference)
        .bind(request.amount.amount())
        .bind(currency)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(receipt)
    }
}
