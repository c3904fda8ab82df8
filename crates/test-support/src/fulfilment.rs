//! Payments and the fulfilment process in tests: paying, reading the
//! aggregates, waiting for a booking's saga, the simulated provider's books.

use std::time::Duration;

use domain::booking::{Booking, BookingStatus};
use domain::payment::Payment;
use domain::seats::SeatInventory;
use reqwest::Response;
use serde_json::json;
use uuid::Uuid;

use crate::TestApp;

impl TestApp {
    pub async fn pay(&self, token: &str, booking: Uuid, card: &str) -> Response {
        self.post(
            &format!("/bookings/{booking}/payment"),
            Some(token),
            json!({"card_number": card, "expiry_month": 12, "expiry_year": 2040,
                   "cvc": "123", "holder": "Ada Lovelace"}),
        )
        .await
    }

    /// The booking, replayed from the log.
    pub async fn booking(&self, id: Uuid) -> Booking {
        self.state.commands.load::<Booking>(id).await.unwrap().state
    }

    pub async fn payment_of(&self, booking: Uuid) -> Option<Payment> {
        let id = self.booking(booking).await.payment_id?;
        Some(self.state.commands.load::<Payment>(id).await.unwrap().state)
    }

    pub async fn payment(&self, id: Uuid) -> Payment {
        self.state.commands.load::<Payment>(id).await.unwrap().state
    }

    /// Refunded over all the booking's payments: its first, and the
    /// differences charged for its moves.
    pub async fn refunded_in_all(&self, booking: Uuid) -> rust_decimal::Decimal {
        let b = self.booking(booking).await;
        let mut total = rust_decimal::Decimal::ZERO;
        let ids = b
            .payment_id
            .into_iter()
            .chain(b.supplements.iter().map(|s| s.payment_id));
        for id in ids {
            let p = self.payment(id).await;
            total += p
                .refunded()
                .map_or(rust_decimal::Decimal::ZERO, |m| m.amount());
        }
        total
    }

    pub async fn seats(&self, flight: Uuid) -> SeatInventory {
        self.state
            .commands
            .load::<SeatInventory>(flight)
            .await
            .unwrap()
            .state
    }

    /// Waits until the booking reaches `status` and its saga has let go.
    pub async fn wait_for(
        &self,
        booking: Uuid,
        status: BookingStatus,
        within: Duration,
    ) -> Booking {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let b = self.booking(booking).await;
            let saga = self.saga_status(booking).await;
            if b.status == Some(status)
                && matches!(saga.as_deref(), Some("COMPLETED" | "COMPENSATED"))
            {
                return b;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "booking {booking} is {:?} (saga {saga:?}), not {status}",
                    b.status
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the booking's payment has `amount` refunded in all.
    pub async fn wait_refunded(&self, booking: Uuid, amount: &str, within: Duration) -> Payment {
        let want: rust_decimal::Decimal = amount.parse().unwrap();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let p = self.payment_of(booking).await.expect("a payment");
            if p.refunded().map(|m| m.amount()) == Some(want) {
                return p;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("refunded {:?}, not {amount}: {p:?}", p.refunded());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn saga_status(&self, booking: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM sagas WHERE booking_id = $1")
            .bind(booking)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    /// Captured charges and refunds in the simulated provider's books for
    /// this payment id: (captures, refunded total).
    pub async fn provider_books(&self, payment_id: Uuid) -> (i64, rust_decimal::Decimal) {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE c.status = 'captured'), \
                    coalesce((SELECT sum(r.amount) FROM gateway_sim_refunds r \
                              JOIN gateway_sim_charges c2 ON c2.reference = r.charge_reference \
                              WHERE c2.merchant_reference = $1), 0) \
             FROM gateway_sim_charges c WHERE c.merchant_reference = $1",
        )
        .bind(payment_id.to_string())
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}
