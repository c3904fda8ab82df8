//! The saga inbox: a checkpointed follower of the log (a projector, run by
//! the projections runner) that starts sagas and wakes them.
//!
//! - `BookingCreated` starts the booking's fulfilment saga, due when its
//!   hold expires (a durable deadline: it is a row, not a timer).
//! - `PaymentSubmitted` sets the payment deadline and wakes it.
//! - `BookingCancelled` wakes it (to refund), reopening a finished one;
//!   so do `BookingMoved` (a refund or new tickets) and `BookingMoveHeld`
//!   (a move's difference to charge).
//! - `FlightCancelled` starts the saga that cancels the flight's bookings.
//!
//! Rows and the checkpoint commit in one transaction, so no event is
//! missed or applied twice; the inserts are idempotent anyway. Events the
//! sagas write themselves need no wake-up: the worker that wrote them goes
//! on deciding from the new state.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::booking::BookingEvent;
use domain::flight::FlightEvent;
use projections::{Decoded, Event, Projector};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::store::{flight_cancellation_id, fulfilment_id};
use domain::fulfilment::{Progress, SagaKind, SagaStatus, Step};

pub struct SagaInbox {
    pub payment_timeout: Duration,
}

/// The inbox's checkpoint name.
pub const NAME: &str = "sagas";
/// The channel workers listen on for sagas that fell due.
pub const CHANNEL: &str = "booking_sagas";

#[async_trait]
impl Projector for SagaInbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn categories(&self) -> &'static [&'static str] {
        &["booking", "flight"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sagas"]
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> projections::Result<()> {
        let mut started: Vec<(Uuid, Uuid, Uuid, DateTime<Utc>, DateTime<Utc>)> = vec![];
        let mut cancelled_flights: Vec<(Uuid, Uuid, DateTime<Utc>)> = vec![];
        let mut deadlines: Vec<(Uuid, DateTime<Utc>)> = vec![];
        let mut wakes: Vec<Uuid> = vec![];
        let mut moved: Vec<(Uuid, Uuid)> = vec![];
        let mut itineraries: Vec<(Uuid, Vec<Uuid>)> = vec![];
        for e in events {
            match &e.event {
                Event::Booking(BookingEvent::BookingCreated(c)) => {
                    started.push((
                        fulfilment_id(c.booking_id),
                        c.booking_id,
                        c.flight_id,
                        c.hold_expires_at,
                        c.created_at,
                    ));
                    if !c.connections.is_empty() {
                        itineraries.push((
                            fulfilment_id(c.booking_id),
                            c.connections.iter().map(|s| s.flight_id).collect(),
                        ));
                    }
                }
                Event::Booking(BookingEvent::PaymentSubmitted(p)) => {
                    let timeout = chrono::Duration::from_std(self.payment_timeout)
                        .unwrap_or(chrono::Duration::MAX);
                    let deadline = p.submitted_at.checked_add_signed(timeout);
                    if let Some(d) = deadline {
                        deadlines.push((fulfilment_id(p.booking_id), d));
                    }
                    wakes.push(fulfilment_id(p.booking_id));
                }
                Event::Booking(BookingEvent::BookingCancelled(c)) => {
                    wakes.push(fulfilment_id(c.booking_id));
                }
                // The booking's saga follows it to its new flight (a later
                // cancellation of that flight finds it), and refunds or
                // tickets it anew.
                Event::Booking(BookingEvent::BookingMoved(m)) => {
                    moved.push((fulfilment_id(m.booking_id), m.to_flight_id));
                    wakes.push(fulfilment_id(m.booking_id));
                }
                // A paid booking's move to a dearer flight: charge the
                // difference.
                Event::Booking(BookingEvent::BookingMoveHeld(m)) => {
                    wakes.push(fulfilment_id(m.booking_id));
                }
                // A passenger taken off a paid booking is owed a refund.
                Event::Booking(BookingEvent::PassengerCancelled(c)) if c.refund.is_positive() => {
                    wakes.push(fulfilment_id(c.booking_id));
                }
                Event::Flight(FlightEvent::FlightCancelled(c)) => {
                    cancelled_flights.push((
                        flight_cancellation_id(c.flight_id),
                        c.flight_id,
                        c.cancelled_at,
                    ));
                }
                _ => {}
            }
        }
        if !started.is_empty() {
            let compensations =
                serde_json::to_value(Progress::started().compensations).unwrap_or_default();
            sqlx::query(
                "INSERT INTO sagas (saga_id, kind, booking_id, flight_id, status, step, \
                     compensations, hold_expires_at, next_run_at, created_at) \
                 SELECT s, $7, b, f, $8, $9, $6, h, h, c \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], \
                             $5::timestamptz[]) AS t(s, b, f, h, c) \
                 ON CONFLICT (saga_id) DO NOTHING",
            )
            .bind(started.iter().map(|s| s.0).collect::<Vec<_>>())
            .bind(started.iter().map(|s| s.1).collect::<Vec<_>>())
            .bind(started.iter().map(|s| s.2).collect::<Vec<_>>())
            .bind(started.iter().map(|s| s.3).collect::<Vec<_>>())
            .bind(started.iter().map(|s| s.4).collect::<Vec<_>>())
            .bind(compensations)
            .bind(SagaKind::Fulfilment.as_str())
            .bind(SagaStatus::Running.as_str())
            .bind(Step::AwaitingPayment.as_str())
            .execute(&mut *conn)
            .await?;
        }
        // Few bookings are itineraries: each its own row update.
        for (saga_id, connections) in &itineraries {
            sqlx::query("UPDATE sagas SET connections = $2 WHERE saga_id = $1")
                .bind(saga_id)
                .bind(connections)
                .execute(&mut *conn)
                .await?;
        }
        if !moved.is_empty() {
            // In log order: a booking moved twice in one batch ends on the
            // last flight.
            for (saga_id, flight_id) in &moved {
                sqlx::query("UPDATE sagas SET flight_id = $2 WHERE saga_id = $1")
                    .bind(saga_id)
                    .bind(flight_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        if !cancelled_flights.is_empty() {
            sqlx::query(
                "INSERT INTO sagas (saga_id, kind, flight_id, status, step, next_run_at, \
                     created_at) \
                 SELECT s, $4, f, $5, $6, now(), c \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[]) AS t(s, f, c) \
                 ON CONFLICT (saga_id) DO NOTHING",
            )
            .bind(cancelled_flights.iter().map(|s| s.0).collect::<Vec<_>>())
            .bind(cancelled_flights.iter().map(|s| s.1).collect::<Vec<_>>())
            .bind(cancelled_flights.iter().map(|s| s.2).collect::<Vec<_>>())
            .bind(SagaKind::FlightCancellation.as_str())
            .bind(SagaStatus::Running.as_str())
            .bind(Step::CancellingBookings.as_str())
            .execute(&mut *conn)
            .await?;
        }
        if !deadlines.is_empty() {
            sqlx::query(
                "UPDATE sagas SET payment_deadline = t.d \
                 FROM UNNEST($1::uuid[], $2::timestamptz[]) AS t(s, d) WHERE saga_id = t.s",
            )
            .bind(deadlines.iter().map(|d| d.0).collect::<Vec<_>>())
            .bind(deadlines.iter().map(|d| d.1).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !wakes.is_empty() {
            sqlx::query(
                "UPDATE sagas SET wakes = wakes + 1, next_run_at = LEAST(next_run_at, now()), \
                     status = CASE WHEN status IN ('COMPLETED', 'COMPENSATED') \
                                   THEN 'RUNNING' ELSE status END, \
                     updated_at = now() \
                 WHERE saga_id = ANY($1)",
            )
            .bind(&wakes)
            .execute(&mut *conn)
            .await?;
        }
        if !(wakes.is_empty() && cancelled_flights.is_empty()) {
            // Delivered at commit, to the workers of every process: before
            // it, the rows are locked and a claim would skip them.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}
