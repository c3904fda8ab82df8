//! The fulfilment's steps for a paid booking moving to a dearer flight
//! (decided by [`domain::fulfilment::next`]): charge the difference as a
//! payment of its own, then move the booking, or let the move go.
//!
//! Completing and abandoning write the booking and both flights' seats, so
//! they run beside the lanes as the move command itself does
//! ([`application::command::across`]). A completion the domain refuses
//! (the new flight was cancelled meanwhile, or the hold lapsed and its
//! seats went to others) abandons the move in the same decision, owing the
//! captured difference back: a difference is never kept without its move.

use application::command::across::AcrossDecided;
use application::CommandError;
use chrono::{DateTime, Utc};
use domain::booking::{abandon_move, complete_move, Booking, BookingMoveHeld};
use domain::flight::Flight;
use domain::payment::{InvoiceLineInput, Payment, PaymentCommand, PaymentRequested};
use gateway::{ChargeOutcome, ChargeRequest, GatewayError};
use serde_json::json;
use uuid::Uuid;

use crate::store::SagaRow;
use crate::worker::{Sagas, StepError};
use application::Loaded;

impl Sagas {
    /// Charges a payment's card (or, with the same key, learns what a
    /// started charge became). A provider's refusal is a decline.
    pub(crate) async fn charge_card(
        &self,
        idempotency_key: String,
        requested: &PaymentRequested,
    ) -> Result<ChargeOutcome, StepError> {
        let Some(token) = &requested.card_token else {
            return Ok(ChargeOutcome::Declined {
                code: "no_card".into(),
                reason: "no card was given".into(),
            });
        };
        let request = ChargeRequest {
            idempotency_key,
            token: token.clone(),
            amount: requested.amount,
            merchant_reference: requested.payment_id.to_string(),
        };
        let call = self.inner.gateway.charge(&request);
        match gateway::within(self.inner.config.gateway_timeout, call).await {
            Ok(o) => Ok(o),
            Err(GatewayError::Rejected(reason)) => Ok(ChargeOutcome::Declined {
                code: "rejected".into(),
                reason,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Charges a move's difference and records the outcome on its payment.
    pub(crate) async fn charge_supplement(
        &self,
        row: &SagaRow,
        supplement: &Payment,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let requested = supplement
            .requested
            .as_ref()
            .ok_or_else(|| StepError::Other("difference not requested".into()))?;
        let payment_id = requested.payment_id;
        let key = format!("{}:charge:{payment_id}", row.saga_id);
        let (step, command) = recorded(self.charge_card(key, requested).await?, now);
        self.on_payment(
            row,
            &format!("{step}:{payment_id}"),
            payment_id,
            command,
            now,
        )
        .await
    }

    /// The difference is in: the booking moves, the new seats are sold and
    /// the old ones returned; if the domain refuses that, the move is let
    /// go and the difference owed back, in the same append.
    pub(crate) async fn complete_move(
        &self,
        row: &SagaRow,
        booking: &Loaded<Booking>,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let (held, booking_id) = held_move(booking)?;
        let ctx = self.ctx(row, &format!("complete-move:{}", held.payment_id), now);
        self.inner
            .commands
            .across_flights(
                &ctx,
                booking_id,
                &[held.from_flight_id, held.to_flight_id],
                |b, flights| {
                    let [from, to] = flights else {
                        return Err(CommandError::not_found("flight"));
                    };
                    match complete_move(b, &from.seats, (&to.flight, &to.seats), now) {
                        Ok(moved) => Ok(AcrossDecided {
                            booking: moved.booking,
                            seats: vec![moved.from_seats, moved.to_seats],
                            payments: vec![],
                            reply: json!({"moved": true}),
                            ..AcrossDecided::default()
                        }),
                        Err(refused) => {
                            let (events, seats) = abandon_move(
                                b,
                                &to.seats,
                                true,
                                &format!("the move could not complete: {refused}"),
                                now,
                            )
                            .map_err(|e| CommandError::InvalidState(e.to_string()))?;
                            Ok(AcrossDecided {
                                booking: events,
                                seats: vec![vec![], seats],
                                payments: vec![],
                                reply: json!({"moved": false}),
                                ..AcrossDecided::default()
                            })
                        }
                    }
                },
            )
            .await?;
        Ok(())
    }

    /// Lets a held move go: the held seats back, the difference owed back
    /// if it was `captured`.
    pub(crate) async fn abandon_move(
        &self,
        row: &SagaRow,
        booking: &Loaded<Booking>,
        captured: bool,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let (held, booking_id) = held_move(booking)?;
        let ctx = self.ctx(row, &format!("abandon-move:{}", held.payment_id), now);
        self.inner
            .commands
            .across_flights(&ctx, booking_id, &[held.to_flight_id], |b, flights| {
                let [to] = flights else {
                    return Err(CommandError::not_found("flight"));
                };
                let (events, seats) = abandon_move(b, &to.seats, captured, reason, now)
                    .map_err(|e| CommandError::InvalidState(e.to_string()))?;
                Ok(AcrossDecided {
                    booking: events,
                    seats: vec![seats],
                    payments: vec![],
                    reply: json!({"moved": false}),
                    ..AcrossDecided::default()
                })
            })
            .await?;
        Ok(())
    }

    /// The invoice of a move's difference: one line, the difference, under
    /// the booking's invoice number and the move's place among its moves.
    pub(crate) async fn invoice_supplement(
        &self,
        row: &SagaRow,
        booking: &Booking,
        payment_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let info = booking
            .info
            .as_ref()
            .ok_or_else(|| missing("the booking"))?;
        let (n, supplement) = booking
            .supplements
            .iter()
            .enumerate()
            .find(|(_, s)| s.payment_id == payment_id)
            .ok_or_else(|| missing("the difference"))?;
        let to = self
            .inner
            .commands
            .load::<Flight>(supplement.to_flight_id)
            .await?;
        let flight = to.state.schedule.as_ref().map_or_else(
            || "another flight".to_owned(),
            |s| format!("flight {}", s.flight_number),
        );
        let command = PaymentCommand::IssueInvoice {
            invoice_number: format!("INV-{}-{}", info.pnr, n + 2),
            tax_rate: self.inner.config.tax_rate,
            lines: vec![InvoiceLineInput::charge(
                format!("Fare difference, booking moved to {flight}"),
                supplement.amount,
            )],
            now,
        };
        self.on_payment(
            row,
            &format!("invoice:{payment_id}"),
            payment_id,
            command,
            now,
        )
        .await
    }
}

/// What a charge's outcome records on its payment, and the step's name.
pub(crate) fn recorded(
    outcome: ChargeOutcome,
    now: DateTime<Utc>,
) -> (&'static str, PaymentCommand) {
    match outcome {
        ChargeOutcome::Captured { reference } => (
            "capture",
            PaymentCommand::Capture {
                gateway_reference: reference,
                now,
            },
        ),
        ChargeOutcome::Declined { code, reason } => {
            ("decline", PaymentCommand::Decline { code, reason, now })
        }
    }
}

/// The move a booking waits to complete, and the booking's id.
fn held_move(booking: &Loaded<Booking>) -> Result<(BookingMoveHeld, Uuid), StepError> {
    let held = booking
        .state
        .pending_move
        .clone()
        .ok_or_else(|| missing("the held move"))?;
    let booking_id = booking.state.id().ok_or_else(|| missing("the booking"))?;
    Ok((held, booking_id))
}

fn missing(what: &str) -> StepError {
    StepError::Other(format!("{what} is missing"))
}
