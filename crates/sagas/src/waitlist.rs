//! The waiting-list process manager: offers seats that come back to the
//! people waiting for them.
//!
//! - [`WaitlistInbox`], a checkpointed follower of the log, counts each
//!   flight's open entries and, when a seat of a flight with open entries
//!   comes back (released, expired, returned, exchanged), is sold (an offer
//!   accepted) or its flight is cancelled, marks the flight due. Rows and
//!   checkpoint commit together: no seat event is missed.
//! - [`Waitlists::work`] looks for due flights every `idle_poll` (default
//!   200 ms; it holds no connection of its own to LISTEN with: a small pool
//!   must still serve requests), claims them (`FOR UPDATE SKIP LOCKED`, with
//!   a lease, so several processes share them) and serves each line through
//!   [`application::Services::serve_waitlist`] until nothing changes: one
//!   offer per decision, on the flight's lane, appended with the seats it
//!   holds. Serving is idempotent by state (an entry offered is no longer
//!   waiting, a seat held is no longer free), so a run repeated after a
//!   crash offers nothing twice.
//!
//! An unpaid offer is a `HELD` booking: its fulfilment saga expires it at
//! its deadline, and that `HoldExpired` wakes the line again, which lapses
//! the entry and offers the seats to the next.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use application::{CommandContext, Services};
use async_trait::async_trait;
use chrono::Utc;
use domain::flight::FlightEvent;
use domain::seats::SeatEvent;
use eventstore::{Actor, EventStore, Sealer};
use futures::FutureExt;
use projections::{Decoded, Event, Projector};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The follower's checkpoint name.
pub const NAME: &str = "waitlist_offers";
/// Decisions one run makes on a line before letting another flight go
/// first (it is marked due again).
const MAX_ROUNDS: usize = 64;

/// Counts open entries and marks lines due (see the module docs).
pub struct WaitlistInbox;

#[async_trait]
impl Projector for WaitlistInbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn categories(&self) -> &'static [&'static str] {
        &["seats", "flight"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["waitlist_lines"]
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> projections::Result<()> {
        let mut opened: Vec<(Uuid, i32)> = Vec::new();
        let mut woken: Vec<Uuid> = Vec::new();
        for e in events {
            let (delta, wake) = match &e.event {
                Event::Seats(s) => match s {
                    SeatEvent::WaitlistJoined(_) => (1, false),
                    SeatEvent::WaitlistOfferAccepted(_)
                    | SeatEvent::WaitlistEntryLapsed(_)
                    | SeatEvent::WaitlistWithdrawn(_) => (-1, false),
                    SeatEvent::SeatsReleased(_)
                    | SeatEvent::HoldExpired(_)
                    | SeatEvent::SeatsReturned(_)
                    | SeatEvent::SeatChanged(_)
                    | SeatEvent::SeatsConfirmed(_) => (0, true),
                    _ => continue,
                },
                Event::Flight(FlightEvent::FlightCancelled(_)) => (0, true),
                _ => continue,
            };
            let Some(flight) = e.aggregate_id else {
                continue;
            };
            if delta != 0 {
                match opened.iter_mut().find(|(f, _)| *f == flight) {
                    Some((_, d)) => *d += delta,
                    None => opened.push((flight, delta)),
                }
            }
            if wake && !woken.contains(&flight) {
                woken.push(flight);
            }
        }
        if !opened.is_empty() {
            sqlx::query(
                "INSERT INTO waitlist_lines (flight_id, open_entries) \
                 SELECT f, d FROM UNNEST($1::uuid[], $2::int[]) AS t(f, d) \
                 ON CONFLICT (flight_id) DO UPDATE \
                 SET open_entries = waitlist_lines.open_entries + EXCLUDED.open_entries, \
                     updated_at = now()",
            )
            .bind(opened.iter().map(|o| o.0).collect::<Vec<_>>())
            .bind(opened.iter().map(|o| o.1).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !woken.is_empty() {
            // Only lines someone still waits in; the others have nothing to
            // serve (and a flight that never had a line has no row).
            sqlx::query(
                "UPDATE waitlist_lines SET wakes = wakes + 1, \
                     next_run_at = LEAST(next_run_at, now()), updated_at = now() \
                 WHERE flight_id = ANY($1) AND open_entries > 0",
            )
            .bind(&woken)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Settings of the waiting-list workers.
#[derive(Debug, Clone)]
pub struct WaitlistConfig {
    /// How long a claimed line stays with its worker.
    pub lease: Duration,
    /// How often to look for due lines.
    pub idle_poll: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WaitlistConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(200),
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// The waiting-list process manager of one process.
#[derive(Clone)]
pub struct Waitlists {
    pool: PgPool,
    services: Services,
    config: WaitlistConfig,
}

/// A claimed line.
struct Claimed {
    flight_id: Uuid,
    wakes: i64,
    attempts: i32,
}

impl Waitlists {
    pub fn new(pool: PgPool, services: Services, config: WaitlistConfig) -> Self {
        Self {
            pool,
            services,
            config,
        }
    }

    /// Runs the follower and the workers until `shutdown` resolves.
    pub async fn run(
        &self,
        store: Arc<dyn EventStore>,
        sealer: Sealer,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let shutdown = shutdown.shared();
        let runner = projections::Runner::new(self.pool.clone(), store, sealer);
        let inbox = runner.run(Arc::new(WaitlistInbox), shutdown.clone());
        let (inbox, ()) = tokio::join!(inbox, self.work(shutdown));
        if let Err(e) = inbox {
            tracing::error!(error = %e, "the waiting-list follower stopped");
        }
    }

    /// Serves due lines until `shutdown` resolves.
    pub async fn work(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = pin!(shutdown.fuse());
        loop {
            let claimed = match self.claim().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim waiting lists");
                    vec![]
                }
            };
            let busy = !claimed.is_empty();
            for line in claimed {
                self.serve(line).await;
            }
            if busy {
                continue;
            }
            futures::select_biased! {
                _ = shutdown => break,
                _ = tokio::time::sleep(self.config.idle_poll).fuse() => {}
            }
        }
    }

    /// Due lines, leased to this worker.
    async fn claim(&self) -> Result<Vec<Claimed>, sqlx::Error> {
        let lease =
            chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(30));
        let rows: Vec<(Uuid, i64, i32)> = sqlx::query_as(
            "UPDATE waitlist_lines SET next_run_at = $1 \
             WHERE flight_id IN (SELECT flight_id FROM waitlist_lines \
                                 WHERE next_run_at <= now() ORDER BY next_run_at \
                                 LIMIT 16 FOR UPDATE SKIP LOCKED) \
             RETURNING flight_id, wakes, attempts",
        )
        .bind(Utc::now() + lease)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(flight_id, wakes, attempts)| Claimed {
                flight_id,
                wakes,
                attempts,
            })
            .collect())
    }

    /// Serves one line until a decision changes nothing, then lets go of it:
    /// not due any more unless another wake-up came in meanwhile.
    #[tracing::instrument(name = "waitlist", skip_all, fields(flight_id = %line.flight_id))]
    async fn serve(&self, line: Claimed) {
        let mut rounds = 0;
        let result = loop {
            if rounds == MAX_ROUNDS {
                break Ok(true);
            }
            rounds += 1;
            let ctx = CommandContext {
                correlation_id: Uuid::now_v7(),
                actor: Actor::saga(format!("waitlist-{}", line.flight_id)),
                idempotency: None,
                data_subject: None,
                now: Utc::now(),
            };
            match self.services.serve_waitlist(ctx, line.flight_id).await {
                Ok(served) if served.changed => {
                    if let Some(entry) = served.offered {
                        tracing::info!(%entry, "seats offered to the waiting list");
                        metrics::counter!("waitlist_offers_total").increment(1);
                    }
                }
                Ok(_) => break Ok(false),
                Err(e) => break Err(e),
            }
        };
        let release = match result {
            Ok(more) => sqlx::query(
                "UPDATE waitlist_lines SET attempts = 0, last_error = NULL, updated_at = now(), \
                     next_run_at = CASE WHEN $2 OR wakes <> $3 THEN now() ELSE NULL END \
                 WHERE flight_id = $1",
            )
            .bind(line.flight_id)
            .bind(more)
            .bind(line.wakes),
            Err(e) => {
                let attempts = line.attempts + 1;
                tracing::warn!(error = %e, attempts, "serving a waiting list failed");
                sqlx::query(
                    "UPDATE waitlist_lines SET attempts = $2, last_error = $3, \
                         next_run_at = now() + $4 * interval '1 millisecond', updated_at = now() \
                     WHERE flight_id = $1",
                )
                .bind(line.flight_id)
                .bind(attempts)
                .bind(e.to_string())
                .bind(self.backoff(attempts).as_millis() as f64)
            }
        };
        if let Err(e) = release.execute(&self.pool).await {
            // The lease runs out and another run picks it up.
            tracing::warn!(error = %e, "cannot release a waiting list");
        }
    }

    fn backoff(&self, attempts: i32) -> Duration {
        let c = &self.config;
        c.base_backoff
            .saturating_mul(1u32 << attempts.clamp(0, 16) as u32 >> 1)
            .min(c.max_backoff)
    }
}
