//! Running a saga's actions: the fulfilment decides with the pure
//! [`domain::fulfilment::next`], and each action goes through the
//! application's command path (seat moves on the flight's lane, with the
//! booking transition in the same append) and the gateway and ticket ports.

use std::collections::HashMap;
use std::sync::Arc;

use application::command::across::OnFlights;
use application::command::lane::{BookingRef, Decide, Decided, PaymentAppend};
use application::{CommandContext, CommandError, Idempotency, Loaded};
use chrono::{DateTime, Utc};
use domain::booking::{Booking, BookingCommand, BookingStatus, CancelledBy, IssuedTicket};
use domain::flight::Flight;
use domain::fulfilment::{
    self, Action, Compensation, Outcome, Progress, SagaStatus, Step, StepEvents, StepRefused,
};
use domain::payment::{Payment, PaymentCommand};
use domain::seats::SeatInventory;
use domain::Aggregate;
use eventstore::Actor;
use gateway::{ChargeOutcome, RefundRequest};
use serde_json::json;
use uuid::Uuid;

use crate::ledger::Write;
use crate::store::{self, Release, SagaRow};
use crate::tickets::{IssueError, TicketRequest};
use crate::worker::{Sagas, StepError};

/// How often a flight's cancellation looks again at a booking whose move
/// waits for its difference.
const MOVE_POLL: chrono::Duration = chrono::Duration::seconds(1);

/// Flights whose airline a process remembers; past this it starts over.
const AIRLINES_KEPT: usize = 100_000;

/// A missing id or record the step needs: a broken invariant, retried (and
/// in the end parked) rather than acted on with a made-up value.
/// The flight a booking is on now: the one its saga started with, unless
/// it moved.
fn flight_of(row: &SagaRow, booking: &Booking) -> Uuid {
    booking.info.as_ref().map_or(row.flight_id, |i| i.flight_id)
}

/// The ticketing step's name: each move to another flight voids the
/// tickets, so the new ones are drawn under a new command id and issuer
/// key (the first keeps the name it always had).
fn tickets_step(booking: &Booking) -> String {
    match booking.moves {
        0 => "tickets".to_owned(),
        n => format!("tickets-after-move-{n}"),
    }
}

fn missing(what: &str) -> StepError {
    StepError::Other(format!("{what} is missing"))
}

impl Sagas {
    /// Runs the fulfilment until it waits or ends; `current` follows the
    /// step being worked on, for the row when a step fails.
    pub(crate) async fn fulfil(
        &self,
        row: &SagaRow,
        progress: &mut Progress,
        current: &mut Step,
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
            let mut supplements = Vec::with_capacity(booking.state.supplements.len());
            for s in &booking.state.supplements {
                supplements.push(self.inner.commands.load::<Payment>(s.payment_id).await?);
            }
            let supplement_states: Vec<Payment> =
                supplements.iter().map(|p| p.state.clone()).collect();
            let action = fulfilment::next(
                &booking.state,
                payment.as_ref().map(|p| &p.state),
                &supplement_states,
                progress,
                now,
            );
            let step = action.step();
            *current = step;
            match action {
                Action::Wait { until, .. } => {
                    return Ok(Release {
                        status: SagaStatus::Running,
                        step,
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
                            Outcome::Completed => SagaStatus::Completed,
                            Outcome::Compensated => SagaStatus::Compensated,
                        },
                        step,
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
                    if let Action::ChargeSupplement { payment_id } = action {
                        if !progress.supplements_charged.contains(&payment_id) {
                            progress.supplements_charged.push(payment_id);
                            save = true;
                        }
                    }
                    if action == Action::Charge
                        && booking.state.status == Some(BookingStatus::PaymentPending)
                    {
                        // The charge may complete the whole fulfilment in one
                        // append, seats sold included: what undoes that is
                        // registered first, as the Confirm step would.
                        save |= progress.register(Compensation::ReturnSeats);
                    }
                    if save
                        && !self
                            .inner
                            .ledger
                            .write(Write::Progress {
                                saga_id: row.saga_id,
                                step,
                                progress: progress.clone(),
                            })
                            .await?
                    {
                        return Err(StepError::Other("lost the saga's lease".into()));
                    }
                    tracing::debug!(?action, "saga step");
                    let completed = self
                        .perform(
                            row,
                            &booking,
                            payment.as_ref(),
                            &supplements,
                            action,
                            progress,
                            now,
                        )
                        .await?;
                    if completed {
                        // Ticketed and invoiced in one append: nothing is
                        // left to decide, so no need to read both back.
                        metrics::counter!("sagas_finished_total", "outcome" => "completed")
                            .increment(1);
                        return Ok(Release {
                            status: SagaStatus::Completed,
                            step: Step::Done,
                            next_run_at: Utc::now(),
                            attempts: 0,
                            last_error: None,
                        });
                    }
                }
            }
        }
        Err(StepError::Other("too many steps in one run".into()))
    }

    /// The context of a step's command: its id derives from the saga and
    /// the step, so a step run twice appends once.
    pub(crate) fn ctx(&self, row: &SagaRow, step: &str, now: DateTime<Utc>) -> CommandContext {
        CommandContext {
            correlation_id: row.saga_id,
            actor: Actor::saga(row.saga_id),
            idempotency: Some(Idempotency {
                command_id: Uuid::new_v5(&row.saga_id, step.as_bytes()),
                fingerprint: step.as_bytes().to_vec(),
            }),
            data_subject: None,
            now,
        }
    }

    /// Runs one action; `true` when it completed the whole fulfilment.
    #[allow(clippy::too_many_arguments)]
    async fn perform(
        &self,
        row: &SagaRow,
        booking: &Loaded<Booking>,
        payment: Option<&Loaded<Payment>>,
        supplements: &[Loaded<Payment>],
        action: Action,
        progress: &mut Progress,
        now: DateTime<Utc>,
    ) -> Result<bool, StepError> {
        let booking_id = booking.state.id().ok_or_else(|| missing("the booking"))?;
        let payment_of = || payment.ok_or_else(|| missing("the booking's payment"));
        let supplement_of = |id: Uuid| {
            supplements
                .iter()
                .find(|p| p.state.requested.as_ref().map(|r| r.payment_id) == Some(id))
                .ok_or_else(|| missing("the difference's payment"))
        };
        let stepped: Result<(), StepError> = match action {
            Action::ExpireHold => {
                self.on_lane(row, "expire", now, booking, move |b, seats| {
                    fulfilment::expire_hold(b, seats, now)
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
                let key = format!("{}:charge", row.saga_id);
                let outcome = self.charge_card(key, requested).await?;
                let (step, command) = match outcome {
                    ChargeOutcome::Captured { reference } => {
                        let paying = booking.state.status == Some(BookingStatus::PaymentPending);
                        if paying
                            && self
                                .complete(row, booking, payment_of()?, &reference)
                                .await?
                        {
                            return Ok(true);
                        }
                        crate::moves::recorded(ChargeOutcome::Captured { reference }, now)
                    }
                    declined => crate::moves::recorded(declined, now),
                };
                self.on_payment(row, step, payment_id, command, now).await
            }
            Action::VoidPayment => {
                let payment_id = booking
                    .state
                    .payment_id
                    .ok_or_else(|| missing("the booking's payment id"))?;
                let command = PaymentCommand::Decline {
                    code: "voided".into(),
                    reason: "the booking ended before the card was charged".into(),
                    now,
                };
                self.on_payment(row, "void", payment_id, command, now).await
            }
            Action::Confirm => {
                self.on_lane(row, "confirm", now, booking, move |b, seats| {
                    fulfilment::confirm(b, seats, now)
                })
                .await
            }
            Action::FailPayment { reason } => {
                self.on_lane(row, "fail-payment", now, booking, move |b, seats| {
                    fulfilment::fail_payment(b, seats, &reason)
                })
                .await
            }
            Action::IssueTickets => self.issue_tickets(row, booking, booking_id, now).await,
            Action::IssueInvoice => {
                let p = payment_of()?;
                let payment_id = p
                    .state
                    .requested
                    .as_ref()
                    .map(|r| r.payment_id)
                    .ok_or_else(|| missing("the payment request"))?;
                let command = self.invoice(&booking.state, now)?;
                self.on_payment(row, "invoice", payment_id, command, now)
                    .await
            }
            Action::ChargeSupplement { payment_id } => {
                self.charge_supplement(row, &supplement_of(payment_id)?.state, now)
                    .await
            }
            Action::VoidSupplement { payment_id } => {
                let command = PaymentCommand::Decline {
                    code: "voided".into(),
                    reason: "the move was abandoned before the difference was charged".into(),
                    now,
                };
                self.on_payment(row, &format!("void:{payment_id}"), payment_id, command, now)
                    .await
            }
            Action::CompleteMove => self.complete_move(row, booking, now).await,
            Action::AbandonMove { captured, reason } => {
                self.abandon_move(row, booking, captured, &reason, now)
                    .await
            }
            Action::InvoiceSupplement { payment_id } => {
                self.invoice_supplement(row, &booking.state, payment_id, now)
                    .await
            }
            Action::Refund { payment_id, amount } => {
                let first = payment_of().ok().and_then(|p| p.state.requested.as_ref());
                let is_first = first.map(|r| r.payment_id) == Some(payment_id);
                let p = if is_first {
                    &payment_of()?.state
                } else {
                    &supplement_of(payment_id)?.state
                };
                let requested = p
                    .requested
                    .as_ref()
                    .ok_or_else(|| StepError::Other("payment not requested".into()))?;
                let charge = p
                    .gateway_reference
                    .clone()
                    .ok_or_else(|| StepError::Other("a refund without a capture".into()))?;
                // The n-th refund of this payment: same n, same key, one
                // refund (the first payment's keep the name they always had).
                let step = if is_first {
                    format!("refund:{}", p.refunds.len())
                } else {
                    format!("refund:{payment_id}:{}", p.refunds.len())
                };
                let request = RefundRequest {
                    idempotency_key: format!("{}:{step}", row.saga_id),
                    charge_reference: charge,
                    amount,
                };
                let call = self.inner.gateway.refund(&request);
                gateway::within(self.inner.config.gateway_timeout, call).await?;
                let reason = match booking.state.status {
                    // Still travelling: someone was taken off it, it moved
                    // to a cheaper flight, or a move was let go.
                    Some(BookingStatus::Confirmed | BookingStatus::Ticketed) => {
                        "owed back on a changed booking".into()
                    }
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
                let write = Write::Progress {
                    saga_id: row.saga_id,
                    step: Step::Compensating,
                    progress: progress.clone(),
                };
                if self.inner.ledger.write(write).await? {
                    Ok(())
                } else {
                    Err(StepError::Other("lost the saga's lease".into()))
                }
            }
            Action::Wait { .. } | Action::Finish(_) => Ok(()),
        };
        stepped.map(|()| false)
    }

    /// The invoice of a paid booking: a line per passenger's fare (adult,
    /// child or infant), and the discount as a credit line.
    fn invoice(&self, booking: &Booking, now: DateTime<Utc>) -> Result<PaymentCommand, StepError> {
        let info = booking
            .info
            .as_ref()
            .ok_or_else(|| missing("the booking"))?;
        let lines = booking
            .invoice_lines()
            .map_err(|e| StepError::Other(e.to_string()))?;
        Ok(PaymentCommand::IssueInvoice {
            invoice_number: format!("INV-{}", info.pnr),
            tax_rate: self.inner.config.tax_rate,
            lines,
            now,
        })
    }

    /// The flight's airline designator (`BA` of `BA117`), which never
    /// changes: read from the flight's stream once per process.
    async fn airline(&self, flight_id: Uuid) -> Result<String, StepError> {
        if let Some(a) = self.airlines().get(&flight_id) {
            return Ok(a.clone());
        }
        let flight = self.inner.commands.load::<Flight>(flight_id).await?;
        let airline = flight
            .state
            .schedule
            .as_ref()
            .map(|s| s.flight_number.airline_designator().to_owned())
            .ok_or_else(|| missing("the booking's flight"))?;
        let mut known = self.airlines();
        if known.len() >= AIRLINES_KEPT {
            known.clear();
        }
        known.insert(flight_id, airline.clone());
        Ok(airline)
    }

    fn airlines(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, String>> {
        self.inner
            .airlines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn ticket_request(&self, row: &SagaRow, booking: &Booking, airline: String) -> TicketRequest {
        TicketRequest {
            booking_id: row.booking_id.unwrap_or_default(),
            airline,
            passengers: booking.passengers.iter().map(|p| p.passenger_id).collect(),
            idempotency_key: format!("{}:{}", row.saga_id, tickets_step(booking)),
        }
    }

    /// The provider captured the card at once: draw the tickets and record
    /// the capture, the seats sold, the booking confirmed and ticketed and
    /// the invoice in one append on the flight's lane (decided by the pure
    /// [`fulfilment::complete`]). `false` when that does not apply (the
    /// booking would not be confirmed, the issuer did not answer, the
    /// payment moved): the caller then records the capture alone and the
    /// steps go on one by one, exactly as if this had not been tried. The
    /// same idempotency keys serve both paths, so a crash anywhere in here
    /// repeats no charge and no ticket.
    async fn complete(
        &self,
        row: &SagaRow,
        booking: &Loaded<Booking>,
        payment: &Loaded<Payment>,
        reference: &str,
    ) -> Result<bool, StepError> {
        // An itinerary's tickets are drawn flight by flight, by the
        // ticketing step.
        if booking.state.is_itinerary() {
            return Ok(false);
        }
        // Decided as of now, not as of before the provider call: the hold
        // may have run out while the provider took its time.
        let now = Utc::now();
        let capture = PaymentCommand::Capture {
            gateway_reference: reference.to_owned(),
            now,
        };
        let booking_id = booking.state.id().ok_or_else(|| missing("the booking"))?;
        let payment_id = payment
            .state
            .requested
            .as_ref()
            .map(|r| r.payment_id)
            .ok_or_else(|| missing("the payment request"))?;
        let airline = self.airline(flight_of(row, &booking.state)).await?;
        let request = self.ticket_request(row, &booking.state, airline);
        let numbers = match self.inner.issuer.issue(&request).await {
            Ok(n) => n,
            // The ticketing step asks again, and handles a refusal.
            Err(_) => return Ok(false),
        };
        let tickets: Vec<_> = request
            .passengers
            .into_iter()
            .zip(numbers)
            .map(|(p, n)| IssuedTicket::new(p, n))
            .collect();
        let invoice = self.invoice(&booking.state, now)?;
        let (paid, version) = (payment.state.clone(), payment.version);
        let decide: Decide = Box::new(move |_flight, seats, b, _| {
            // On its flight's lane: a booking of one flight.
            let completed = fulfilment::complete(
                b,
                &[seats],
                &paid,
                capture.clone(),
                tickets.clone(),
                invoice.clone(),
                now,
            )
            .map_err(CommandError::from)?
            .ok_or_else(|| CommandError::InvalidState("not confirmable at once".into()))?;
            Ok(Decided {
                seats: completed.seats.into_iter().flatten().collect(),
                booking: completed.booking,
                payment: Some(PaymentAppend {
                    payment_id,
                    version,
                    events: completed.payment,
                }),
                reply: json!({}),
                ..Decided::default()
            })
        });
        let read = BookingRef::read(booking_id, booking.clone());
        let submitted = self
            .inner
            .commands
            .lanes
            .submit(
                flight_of(row, &booking.state),
                self.ctx(row, "complete", now),
                Some(read),
                decide,
            )
            .await;
        match submitted {
            Ok(_) => {
                metrics::counter!("saga_completed_at_once_total").increment(1);
                Ok(true)
            }
            Err(CommandError::InvalidState(_) | CommandError::Concurrency(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Tickets from the issuer, one per passenger per flight (each flight
    /// asks its own airline, under its own key); a refusal fails the
    /// booking and returns its seats on every flight.
    async fn issue_tickets(
        &self,
        row: &SagaRow,
        booking: &Loaded<Booking>,
        booking_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let itinerary = booking.state.is_itinerary();
        let mut tickets = Vec::new();
        for flight_id in booking.state.flight_ids() {
            let airline = self.airline(flight_id).await?;
            let mut request = self.ticket_request(row, &booking.state, airline);
            if itinerary {
                request.idempotency_key = format!("{}:{flight_id}", request.idempotency_key);
            }
            match self.inner.issuer.issue(&request).await {
                Ok(numbers) => {
                    tickets.extend(request.passengers.iter().zip(numbers).map(|(p, n)| {
                        match itinerary {
                            true => IssuedTicket::on(flight_id, *p, n),
                            false => IssuedTicket::new(*p, n),
                        }
                    }))
                }
                Err(IssueError::Refused(reason)) => {
                    return self
                        .on_lane(row, "fail-ticketing", now, booking, move |b, seats| {
                            fulfilment::fail_ticketing(b, seats, &reason)
                        })
                        .await
                }
                Err(e) => return Err(e.into()),
            }
        }
        let ctx = self.ctx(row, &tickets_step(&booking.state), now);
        self.inner
            .commands
            .execute::<Booking, _, _>(
                &ctx,
                booking_id,
                |b| {
                    b.decide(BookingCommand::IssueTickets {
                        tickets: tickets.clone(),
                        now,
                    })
                    .map_err(|e| StepRefused::from(e).into())
                },
                |_| json!({}),
            )
            .await?;
        Ok(())
    }

    /// A payment command, decided on the payment's current state.
    pub(crate) async fn on_payment(
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
                |p| {
                    p.decide(command.clone())
                        .map_err(|e| application::CommandError::InvalidState(e.to_string()))
                },
                |_| json!({}),
            )
            .await?;
        Ok(())
    }

    /// A booking transition with its seat movement, on the lane of the
    /// booking's flight (across every flight of an itinerary): both commit
    /// together.
    async fn on_lane<F>(
        &self,
        row: &SagaRow,
        step: &str,
        now: DateTime<Utc>,
        booking: &Loaded<Booking>,
        decide: F,
    ) -> Result<(), StepError>
    where
        F: Fn(&Booking, &[&SeatInventory]) -> Result<StepEvents, StepRefused>
            + Send
            + Sync
            + 'static,
    {
        let booking_id = booking.state.id().ok_or_else(|| missing("the booking"))?;
        // Decided on the booking as the lane reads it: the one read here,
        // unless it proves stale.
        let decision: OnFlights = Arc::new(move |booking, flights| {
            let seats: Vec<&SeatInventory> = flights.iter().map(|(_, s)| *s).collect();
            let (events, seat_events) = decide(booking, &seats)?;
            Ok((events, seat_events, json!({})))
        });
        self.inner
            .commands
            .on_its_flights(
                &self.ctx(row, step, now),
                booking_id,
                booking.clone(),
                decision,
            )
            .await?;
        Ok(())
    }

    /// Cancels every live booking of a cancelled flight; each booking's own
    /// saga then refunds it in full.
    pub(crate) async fn cancel_flight(&self, row: &SagaRow) -> Result<Release, StepError> {
        let bookings = store::bookings_of_flight(&self.inner.pool, row.flight_id).await?;
        let mut cancelled = 0usize;
        // A booking that cannot be cancelled yet does not hold up the
        // others: the saga runs again for it, and the ones done are skipped
        // as final. One whose move waits for its difference is waited for
        // (seconds, normally; the move may take it off this flight), not
        // counted as a failure.
        let mut later = None;
        let mut moving = false;
        for booking_id in bookings {
            let loaded = self.inner.commands.load::<Booking>(booking_id).await?;
            if loaded.state.status.is_none_or(|s| s.is_terminal()) {
                continue;
            }
            if loaded.state.pending_move.is_some() {
                moving = true;
                continue;
            }
            // Moved to another flight before this one was cancelled.
            if !loaded.state.flight_ids().contains(&row.flight_id) {
                continue;
            }
            let now = Utc::now();
            let decide = application::bookings::cancellation(
                "flight cancelled".into(),
                CancelledBy::FlightCancelled,
                now,
            );
            let ctx = self.ctx(row, &format!("cancel:{booking_id}"), now);
            match self
                .inner
                .commands
                .on_its_flights(&ctx, booking_id, loaded, decide)
                .await
            {
                Ok(_) => cancelled += 1,
                Err(e) => later = Some(StepError::from(e)),
            }
        }
        if let Some(e) = later {
            return Err(e);
        }
        if moving {
            return Ok(Release {
                status: SagaStatus::Running,
                step: Step::CancellingBookings,
                next_run_at: Utc::now() + MOVE_POLL,
                attempts: 0,
                last_error: None,
            });
        }
        tracing::info!(cancelled, "flight's bookings cancelled");
        Ok(Release {
            status: SagaStatus::Completed,
            step: Step::Done,
            next_run_at: Utc::now(),
            attempts: 0,
            last_error: None,
        })
    }
}
