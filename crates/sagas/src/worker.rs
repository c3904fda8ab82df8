//! Workers: lease due sagas, decide their next action from the log, run it,
//! and let go with the next deadline. Failures retry with exponential
//! backoff; a saga that keeps failing is parked for an admin.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::booking::{Booking, BookingCommand, CancelledBy};
use domain::flight::Flight;
use domain::payment::{InvoiceLineInput, Payment, PaymentCommand};
use domain::seats::{SeatCommand, SeatError};
use domain::Aggregate;
use eventstore::{Actor, EventStore, ExpectedVersion, Sealer};
use futures::FutureExt;
use gateway::{ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundRequest};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;
use write_api::commands::lane::{Decide, Decided};
use write_api::commands::{CommandContext, Commands, Idempotency, Loaded};
use write_api::error::ApiError;

use crate::fulfilment::{self, Action, Outcome, Progress, Step};
use crate::inbox::{SagaInbox, CHANNEL};
use crate::store::{self, Kind, Release, SagaRow, Status};
use crate::tickets::{IssueError, TicketIssuer, TicketRequest};

/// Settings of the saga workers.
#[derive(Debug, Clone)]
pub struct SagaConfig {
    /// Sagas one process runs at once.
    pub concurrency: usize,
    /// How long a claimed saga stays with its worker without news.
    pub lease: Duration,
    /// Failed runs in a row before a saga is parked.
    pub max_attempts: i32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest a single provider call may take.
    pub gateway_timeout: Duration,
    /// How long after submission a payment may still complete.
    pub payment_timeout: Duration,
    /// VAT-style rate contained in fares, for invoices (`0.20` = 20 %).
    pub tax_rate: Decimal,
    /// Check for due sagas at least this often (deadlines, lost wake-ups).
    pub idle_poll: Duration,
}

impl Default for SagaConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            lease: Duration::from_secs(30),
            max_attempts: 8,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            gateway_timeout: Duration::from_secs(10),
            payment_timeout: Duration::from_secs(600),
            tax_rate: Decimal::ZERO,
            idle_poll: Duration::from_millis(250),
        }
    }
}

/// Why a run stopped short; every kind is retried with backoff.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Command(#[from] ApiError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Tickets(#[from] IssueError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

/// The process managers of one process.
#[derive(Clone)]
pub struct Sagas {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    commands: Commands,
    gateway: Arc<dyn PaymentGateway>,
    issuer: Arc<dyn TicketIssuer>,
    config: SagaConfig,
    worker: Uuid,
}

impl Sagas {
    pub fn new(
        pool: PgPool,
        commands: Commands,
        gateway: Arc<dyn PaymentGateway>,
        issuer: Arc<dyn TicketIssuer>,
        config: SagaConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                commands,
                gateway,
                issuer,
                config,
                worker: Uuid::now_v7(),
            }),
        }
    }

    /// The inbox projector that starts and wakes sagas.
    pub fn inbox(&self) -> SagaInbox {
        SagaInbox {
            payment_timeout: self.inner.config.payment_timeout,
        }
    }

    /// Runs the inbox and the workers until `shutdown` resolves.
    pub async fn run(
        &self,
        store: Arc<dyn EventStore>,
        sealer: Sealer,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let shutdown = shutdown.shared();
        let runner = projections::Runner::new(self.inner.pool.clone(), store, sealer);
        let inbox = runner.run(Arc::new(self.inbox()), shutdown.clone());
        let workers = self.work(shutdown);
        let (inbox, ()) = tokio::join!(inbox, workers);
        if let Err(e) = inbox {
            tracing::error!(error = %e, "the saga inbox stopped");
        }
    }

    /// Claims and runs due sagas until `shutdown` resolves; running ones
    /// finish their current action first.
    pub async fn work(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = pin!(shutdown.fuse());
        let permits = Arc::new(Semaphore::new(self.inner.config.concurrency));
        let mut listener = self.listen().await;
        loop {
            let free = permits.available_permits();
            let claimed = if free == 0 {
                vec![]
            } else {
                match store::claim(
                    &self.inner.pool,
                    self.inner.worker,
                    free as i64,
                    self.inner.config.lease,
                )
                .await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim sagas");
                        vec![]
                    }
                }
            };
            let busy = !claimed.is_empty();
            for row in claimed {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    me.drive(row).await;
                    drop(permit);
                });
            }
            if busy {
                continue;
            }
            let pause = self.pause().await;
            let woken = async {
                match listener.as_mut() {
                    Some(l) => {
                        if l.recv().await.is_err() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    None => tokio::time::sleep(pause).await,
                }
            };
            futures::select_biased! {
                _ = shutdown => break,
                _ = woken.fuse() => {}
                _ = tokio::time::sleep(pause).fuse() => {}
            }
        }
        // Let running sagas finish their step.
        let all = self.inner.config.concurrency as u32;
        let _ = tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(all)).await;
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut l = PgListener::connect_with(&self.inner.pool).await.ok()?;
        l.listen(CHANNEL).await.ok()?;
        Some(l)
    }

    /// Until the next saga falls due, at most the idle poll.
    async fn pause(&self) -> Duration {
        let poll = self.inner.config.idle_poll;
        match store::next_due(&self.inner.pool).await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::from_millis(1))
                .min(poll),
            _ => poll,
        }
    }

    /// Runs one claimed saga as far as it goes, then lets go of it.
    #[tracing::instrument(name = "saga", skip_all, fields(saga_id = %row.saga_id, kind = row.kind.as_str()))]
    async fn drive(&self, row: SagaRow) {
        let mut progress = row.progress.clone();
        let mut step = row.step.clone();
        let result = match row.kind {
            Kind::Fulfilment => self.fulfil(&row, &mut progress, &mut step).await,
            Kind::FlightCancellation => self.cancel_flight(&row).await,
        };
        let release = match result {
            Ok(r) => r,
            Err(e) => {
                let attempts = row.attempts + 1;
                let parked = attempts >= self.inner.config.max_attempts;
                tracing::warn!(error = %e, attempts, parked, "saga step failed");
                metrics::counter!("saga_step_failures_total", "kind" => row.kind.as_str())
                    .increment(1);
                Release {
                    status: if parked {
                        Status::Parked
                    } else if step == Step::Compensating.as_str() {
                        Status::Compensating
                    } else {
                        Status::Running
                    },
                    step,
                    next_run_at: Utc::now() + self.backoff(attempts),
                    attempts,
                    last_error: Some(e.to_string()),
                }
            }
        };
        if let Err(e) = store::release(
            &self.inner.pool,
            row.saga_id,
            self.inner.worker,
            &progress,
            &release,
        )
        .await
        {
            // The lease runs out and another run picks it up.
            tracing::warn!(error = %e, "cannot release the saga");
        }
    }

    fn backoff(&self, attempts: i32) -> chrono::Duration {
        let c = &self.inner.config;
        let exp = c
            .base_backoff
            .saturating_mul(1u32 << attempts.clamp(0, 20) as u32 >> 1);
        let capped = exp.min(c.max_backoff);
        // Up to 20 % jitter, so parked bursts do not retry in lockstep.
        let jitter = capped.mul_f64(rand::random::<f64>() * 0.2);
        chrono::Duration::from_std(capped + jitter).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Runs the fulfilment until it waits or ends; `current` follows the
    /// step being worked on, for the row when a step fails.
    async fn fulfil(
        &self,
        row: &SagaRow,
        progress: &mut Progress,
        current: &mut String,
    ) -> Result<Release, StepError> {
        let booking_id = row
            .booking_id
            .ok_or_else(|| StepError::Other("fulfilment saga without a booking".into()))?;
        // Each pass does one action; the bound only guards against a bug
        // turning into a busy loop.
        for _ in 0..32 {
            let now = Utc::now();
            let booking = self.inner.commands.load::<Booking>(booking_id).await?;
            let payment = match booking.state.payment_id {
                Some(id) => Some(self.inner.commands.load::<Payment>(id).await?),
                None => None,
            };
            let action = fulfilment::next(
                &booking.state,
                payment.as_ref().map(|p| &p.state),
                progress,
                now,
            );
            let step = action.step();
            step.as_str().clone_into(current);
            match action {
                Action::Wait { until, .. } => {
                    return Ok(Release {
                        status: Status::Running,
                        step: step.as_str().into(),
                        // No deadline: look again in a while anyway.
                        next_run_at: until.unwrap_or(now + chrono::Duration::minutes(5)),
                        attempts: 0,
                        last_error: None,
                    });
                }
                Action::Finish(outcome) => {
                    metrics::counter!("sagas_finished_total", "outcome" => match outcome {
                        Outcome::Completed => "completed",
                        Outcome::Compensated => "compensated",
                    })
                    .increment(1);
                    return Ok(Release {
                        status: match outcome {
                            Outcome::Completed => Status::Completed,
                            Outcome::Compensated => Status::Compensated,
                        },
                        step: step.as_str().into(),
                        next_run_at: now,
                        attempts: 0,
                        last_error: None,
                    });
                }
                action => {
                    let mut save = false;
                    if let Some(c) = action.registers() {
                        save |= progress.register(c);
                    }
                    if action == Action::Charge && !progress.charge_started {
                        progress.charge_started = true;
                        save = true;
                    }
                    if save
                        && !store::save_progress(
                            &self.inner.pool,
                            row.saga_id,
                            self.inner.worker,
                            step.as_str(),
                            progress,
                        )
                        .await?
                    {
                        return Err(StepError::Other("lost the saga's lease".into()));
                    }
                    tracing::debug!(?action, "saga step");
                    self.perform(row, &booking, payment.as_ref(), action, progress, now)
                        .await?;
                }
            }
        }
        Err(StepError::Other("too many steps in one run".into()))
    }

    fn ctx(&self, row: &SagaRow, step: &str, now: DateTime<Utc>) -> CommandContext {
        CommandContext {
            correlation_id: row.saga_id,
            actor: Actor::saga(row.saga_id),
            idempotency: Some(Idempotency {
                command_id: Uuid::new_v5(&row.saga_id, step.as_bytes()),
                fingerprint: step.as_bytes().to_vec(),
            }),
            now,
        }
    }

    async fn perform(
        &self,
        row: &SagaRow,
        booking: &Loaded<Booking>,
        payment: Option<&Loaded<Payment>>,
        action: Action,
        progress: &mut Progress,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let commands = &self.inner.commands;
        let booking_id = booking.state.id().unwrap_or_default();
        let payment_of =
            || payment.ok_or_else(|| StepError::Other("the booking has no payment".into()));
        match action {
            Action::ExpireHold => {
                self.on_lane(row, "expire", now, booking, move |b, _, seats| {
                    let events = b
                        .decide(BookingCommand::Expire { now })
                        .map_err(command_error)?;
                    let seats = match seats.decide(SeatCommand::Expire { booking_id, now }) {
                        Ok(e) => e,
                        Err(SeatError::NothingHeld(_)) => vec![],
                        Err(e) => return Err(command_error(e)),
                    };
                    Ok((events, seats))
                })
                .await
            }
            Action::Charge => {
                let p = &payment_of()?.state;
                let requested = p
                    .requested
                    .as_ref()
                    .ok_or_else(|| StepError::Other("payment not requested".into()))?;
                let payment_id = requested.payment_id;
                let outcome = match &requested.card_token {
                    None => ChargeOutcome::Declined {
                        code: "no_card".into(),
                        reason: "no card was given".into(),
                    },
                    Some(token) => {
                        let request = ChargeRequest {
                            idempotency_key: format!("{}:charge", row.saga_id),
                            token: token.clone(),
                            amount: requested.amount,
                            merchant_reference: payment_id.to_string(),
                        };
                        let call = self.inner.gateway.charge(&request);
                        match gateway::within(self.inner.config.gateway_timeout, call).await {
                            Ok(o) => o,
                            Err(GatewayError::Rejected(reason)) => ChargeOutcome::Declined {
                                code: "rejected".into(),
                                reason,
                            },
                            Err(e) => return Err(e.into()),
                        }
                    }
                };
                let (step, command) = match outcome {
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
                };
                self.on_payment(row, step, payment_id, command, now).await
            }
            Action::VoidPayment => {
                let payment_id = booking.state.payment_id.unwrap_or_default();
                let command = PaymentCommand::Decline {
                    code: "voided".into(),
                    reason: "the booking ended before the card was charged".into(),
                    now,
                };
                self.on_payment(row, "void", payment_id, command, now).await
            }
            Action::Confirm => {
                self.on_lane(row, "confirm", now, booking, move |b, _, seats| {
                    match seats.decide(SeatCommand::Confirm { booking_id, now }) {
                        Ok(seats) => {
                            let events = b
                                .decide(BookingCommand::Confirm { now })
                                .map_err(command_error)?;
                            Ok((events, seats))
                        }
                        Err(SeatError::AlreadyConfirmed(_)) => Ok((
                            b.decide(BookingCommand::Confirm { now })
                                .map_err(command_error)?,
                            vec![],
                        )),
                        // The capture came after the hold ran out: the
                        // booking expires and the refund follows.
                        Err(SeatError::HoldHasExpired { .. }) => Ok((
                            b.decide(BookingCommand::Expire { now })
                                .map_err(command_error)?,
                            seats
                                .decide(SeatCommand::Expire { booking_id, now })
                                .unwrap_or_default(),
                        )),
                        Err(SeatError::NothingHeld(_)) => Ok((
                            b.decide(BookingCommand::Fail {
                                reason: "the seats were no longer held".into(),
                            })
                            .map_err(command_error)?,
                            vec![],
                        )),
                        Err(e) => Err(command_error(e)),
                    }
                })
                .await
            }
            Action::FailPayment { reason } => {
                self.on_lane(row, "fail-payment", now, booking, move |b, _, seats| {
                    let events = b
                        .decide(BookingCommand::MarkPaymentFailed {
                            reason: reason.clone(),
                        })
                        .map_err(command_error)?;
                    let seats = match seats.decide(SeatCommand::Release {
                        booking_id,
                        reason: reason.clone(),
                    }) {
                        Ok(e) => e,
                        Err(SeatError::NothingHeld(_)) => vec![],
                        Err(e) => return Err(command_error(e)),
                    };
                    Ok((events, seats))
                })
                .await
            }
            Action::IssueTickets => {
                let flight = commands.load::<Flight>(row.flight_id).await?;
                let airline = flight
                    .state
                    .schedule
                    .as_ref()
                    .map(|s| s.flight_number.airline_designator().to_owned())
                    .unwrap_or_default();
                let passengers: Vec<Uuid> = booking
                    .state
                    .passengers
                    .iter()
                    .map(|p| p.passenger_id)
                    .collect();
                let request = TicketRequest {
                    booking_id,
                    airline,
                    passengers: passengers.clone(),
                    idempotency_key: format!("{}:tickets", row.saga_id),
                };
                match self.inner.issuer.issue(&request).await {
                    Ok(numbers) => {
                        let tickets = passengers.into_iter().zip(numbers).collect();
                        let ctx = self.ctx(row, "tickets", now);
                        commands
                            .execute::<Booking, _, _>(
                                &ctx,
                                booking_id,
                                StatusCode::OK,
                                |b| {
                                    b.decide(BookingCommand::IssueTickets {
                                        tickets: Vec::clone(&tickets),
                                        now,
                                    })
                                    .map_err(command_error)
                                },
                                |_| json!({}),
                            )
                            .await?;
                        Ok(())
                    }
                    Err(IssueError::Refused(reason)) => {
                        self.on_lane(row, "fail-ticketing", now, booking, move |b, _, seats| {
                            let events = b
                                .decide(BookingCommand::Fail {
                                    reason: format!("ticketing failed: {reason}"),
                                })
                                .map_err(command_error)?;
                            let seats = match seats.decide(SeatCommand::Return {
                                booking_id,
                                reason: "ticketing failed".into(),
                            }) {
                                Ok(e) => e,
                                Err(SeatError::NothingSold(_)) => vec![],
                                Err(e) => return Err(command_error(e)),
                            };
                            Ok((events, seats))
                        })
                        .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Action::IssueInvoice => {
                let p = payment_of()?;
                let payment_id = p.state.requested.as_ref().map(|r| r.payment_id);
                let payment_id = payment_id.unwrap_or_default();
                let info = booking
                    .state
                    .info
                    .as_ref()
                    .ok_or_else(|| StepError::Other("no booking".into()))?;
                let lines: Vec<InvoiceLineInput> = booking
                    .state
                    .passengers
                    .iter()
                    .map(|p| InvoiceLineInput {
                        description: format!("Fare, {} seat {}", p.cabin, p.seat),
                        quantity: 1,
                        unit_price: p.fare,
                    })
                    .collect();
                let command = PaymentCommand::IssueInvoice {
                    invoice_number: format!("INV-{}", info.pnr),
                    tax_rate: self.inner.config.tax_rate,
                    lines,
                    now,
                };
                self.on_payment(row, "invoice", payment_id, command, now)
                    .await
            }
            Action::Refund { amount } => {
                let p = &payment_of()?.state;
                let requested = p
                    .requested
                    .as_ref()
                    .ok_or_else(|| StepError::Other("payment not requested".into()))?;
                let charge = p
                    .gateway_reference
                    .clone()
                    .ok_or_else(|| StepError::Other("a refund without a capture".into()))?;
                // The n-th refund of this saga: same n, same key, one refund.
                let step = format!("refund:{}", p.refunds.len());
                let request = RefundRequest {
                    idempotency_key: format!("{}:{step}", row.saga_id),
                    charge_reference: charge,
                    amount,
                };
                let call = self.inner.gateway.refund(&request);
                gateway::within(self.inner.config.gateway_timeout, call).await?;
                let reason = match booking.state.status {
                    Some(s) => format!("booking {}", s.as_str().to_ascii_lowercase()),
                    None => "refund".into(),
                };
                let command = PaymentCommand::Refund {
                    refund_id: Uuid::new_v5(&row.saga_id, step.as_bytes()),
                    amount,
                    reason,
                    now,
                };
                self.on_payment(row, &step, requested.payment_id, command, now)
                    .await
            }
            Action::MarkDone(c) => {
                progress.mark_done(c);
                if store::save_progress(
                    &self.inner.pool,
                    row.saga_id,
                    self.inner.worker,
                    Step::Compensating.as_str(),
                    progress,
                )
                .await?
                {
                    Ok(())
                } else {
                    Err(StepError::Other("lost the saga's lease".into()))
                }
            }
            Action::Wait { .. } | Action::Finish(_) => Ok(()),
        }
    }

    /// A payment command, decided on the payment's current state.
    async fn on_payment(
        &self,
        row: &SagaRow,
        step: &str,
        payment_id: Uuid,
        command: PaymentCommand,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let ctx = self.ctx(row, step, now);
        self.inner
            .commands
            .execute::<Payment, _, _>(
                &ctx,
                payment_id,
                StatusCode::OK,
                |p| p.decide(command.clone()).map_err(command_error),
                |_| json!({}),
            )
            .await?;
        Ok(())
    }

    /// A booking transition with its seat movement, on the flight's lane:
    /// both commit together.
    async fn on_lane<F>(
        &self,
        row: &SagaRow,
        step: &str,
        now: DateTime<Utc>,
        booking: &Loaded<Booking>,
        decide: F,
    ) -> Result<(), StepError>
    where
        F: Fn(
                &Booking,
                &Flight,
                &domain::seats::SeatInventory,
            ) -> Result<
                (
                    Vec<domain::booking::BookingEvent>,
                    Vec<domain::seats::SeatEvent>,
                ),
                ApiError,
            > + Send
            + Sync
            + 'static,
    {
        let (state, version) = (booking.state.clone(), booking.version);
        let booking_id = state.id().unwrap_or_default();
        let decide: Decide = Box::new(move |flight, seats| {
            let (events, seat_events) = decide(&state, flight, seats)?;
            Ok(Decided {
                seats: seat_events,
                booking: Some((booking_id, ExpectedVersion::Exact(version), events)),
                body: json!({}),
                ..Decided::default()
            })
        });
        self.inner
            .commands
            .lanes
            .submit(row.flight_id, self.ctx(row, step, now), decide)
            .await?;
        Ok(())
    }

    /// Cancels every live booking of a cancelled flight; each booking's own
    /// saga then refunds it in full.
    async fn cancel_flight(&self, row: &SagaRow) -> Result<Release, StepError> {
        let bookings = store::bookings_of_flight(&self.inner.pool, row.flight_id).await?;
        let mut cancelled = 0usize;
        for booking_id in bookings {
            let loaded = self.inner.commands.load::<Booking>(booking_id).await?;
            if loaded.state.status.is_none_or(|s| s.is_terminal()) {
                continue;
            }
            let now = Utc::now();
            let decide = write_api::commands::cancel::cancellation(
                loaded.state,
                loaded.version,
                "flight cancelled".into(),
                CancelledBy::FlightCancelled,
                now,
            );
            let ctx = self.ctx(row, &format!("cancel:{booking_id}"), now);
            self.inner
                .commands
                .lanes
                .submit(row.flight_id, ctx, decide)
                .await?;
            cancelled += 1;
        }
        tracing::info!(cancelled, "flight's bookings cancelled");
        Ok(Release {
            status: Status::Completed,
            step: Step::Done.as_str().into(),
            next_run_at: Utc::now(),
            attempts: 0,
            last_error: None,
        })
    }
}

/// A domain refusal met by a saga: the state moved under it; deciding again
/// on a fresh read sorts it out, so it is retried like any failure.
fn command_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_state(e.to_string())
}
