//! Workers: lease due deliveries, send them, mark them. Failures retry
//! with exponential backoff; after `max_attempts` a delivery is dead until
//! an admin retries it.

use std::future::Future;
use std::pin::pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use auth::account_tokens::{AccountTokens, Purpose};
use chrono::{DateTime, Utc};
use eventstore::{EventStore, Position, Sealer};
use futures::FutureExt;
use projections::model::bookings::booking_by;
use projections::model::documents::ticket_view;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::inbox::NotificationInbox;
use crate::mail::{self, FlightLine, Letter, Mailer, Pdf};
use crate::store::{self, Due, Outcome, CHANNEL};
use crate::webhook::Poster;

/// Settings of the notifier.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Deliveries one process sends at once.
    pub concurrency: usize,
    /// How long a leased delivery stays with its worker: one sent just
    /// before a crash goes out again after this.
    pub lease: Duration,
    /// Failed attempts before a delivery is dead-lettered.
    pub max_attempts: i32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Check for due deliveries at least this often.
    pub idle_poll: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            lease: Duration::from_secs(60),
            max_attempts: 10,
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30 * 60),
            idle_poll: Duration::from_millis(500),
        }
    }
}

/// The notifier of one process.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    config: NotifyConfig,
    /// None: no mail server configured; emails are skipped.
    mailer: Option<Mailer>,
    poster: Poster,
    tokens: AccountTokens,
}

impl Notifier {
    pub fn new(
        pool: PgPool,
        mailer: Option<Mailer>,
        tokens: AccountTokens,
        config: NotifyConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                config,
                mailer,
                poster: Poster::new(),
                tokens,
            }),
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
        let inbox = runner.run(Arc::new(NotificationInbox), shutdown.clone());
        let workers = self.work(shutdown);
        let (inbox, ()) = tokio::join!(inbox, workers);
        if let Err(e) = inbox {
            tracing::error!(error = %e, "the notification inbox stopped");
        }
    }

    /// Leases and sends due deliveries until `shutdown` resolves.
    pub async fn work(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = pin!(shutdown.fuse());
        let permits = Arc::new(Semaphore::new(self.inner.config.concurrency));
        let mut listener = self.listen().await;
        loop {
            let free = permits.available_permits();
            let claimed = if free == 0 {
                vec![]
            } else {
                match store::claim(&self.inner.pool, free as i64, self.inner.config.lease).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot lease deliveries");
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
        // Let sends in flight finish.
        let all = self.inner.config.concurrency as u32;
        let _ = tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(all)).await;
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut l = PgListener::connect_with(&self.inner.pool).await.ok()?;
        l.listen(CHANNEL).await.ok()?;
        Some(l)
    }

    /// Until the next delivery falls due, at most the idle poll.
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

    #[tracing::instrument(name = "delivery", skip_all,
        fields(delivery_id = %row.delivery_id, event_type = %row.event_type, channel = %row.channel))]
    async fn drive(&self, row: Due) {
        let outcome = match self.attempt(&row).await {
            Ok(outcome) => outcome,
            Err(error) => {
                let attempts = row.attempts + 1;
                let dead = attempts >= self.inner.config.max_attempts;
                tracing::warn!(%error, attempts, dead, "delivery failed");
                Outcome::Failed {
                    error,
                    at: Utc::now() + self.backoff(attempts),
                    dead,
                }
            }
        };
        let label = match &outcome {
            Outcome::Delivered => "delivered",
            Outcome::Skipped(_) => "skipped",
            Outcome::Later(_) => "later",
            Outcome::Failed { dead: true, .. } => "dead",
            Outcome::Failed { .. } => "failed",
        };
        metrics::counter!("notification_deliveries_total",
            "channel" => row.channel.clone(), "outcome" => label)
        .increment(1);
        if let Err(e) = store::release(&self.inner.pool, row.delivery_id, &outcome).await {
            // The lease runs out and another run sends it again.
            tracing::warn!(error = %e, "cannot release the delivery");
        }
    }

    /// One attempt: `Err` is a failure to retry.
    async fn attempt(&self, row: &Due) -> Result<Outcome, String> {
        match (row.channel.as_str(), row.webhook_id) {
            ("webhook", Some(webhook_id)) => self.post(row, webhook_id).await,
            _ => self.mail(row).await,
        }
    }

    async fn post(&self, row: &Due, webhook_id: Uuid) -> Result<Outcome, String> {
        let hook: Option<(String, String)> =
            sqlx::query_as("SELECT url, secret FROM webhooks WHERE webhook_id = $1")
                .bind(webhook_id)
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(|e| e.to_string())?;
        let Some((url, secret)) = hook else {
            return Ok(Outcome::Skipped("the webhook is gone".into()));
        };
        let body = serde_json::to_vec(&row.payload()).map_err(|e| e.to_string())?;
        self.inner
            .poster
            .post(&url, &secret, row.delivery_id, body)
            .await?;
        Ok(Outcome::Delivered)
    }

    async fn mail(&self, row: &Due) -> Result<Outcome, String> {
        let Some(mailer) = &self.inner.mailer else {
            return Ok(Outcome::Skipped(
                "no mail server is configured (BOOKING_SMTP_URL)".into(),
            ));
        };
        let pool = &self.inner.pool;
        // Written from the read models: wait until they have the event.
        let position = Position::from_str(&row.position).map_err(|e| e.to_string())?;
        if projections::wait_for(pool, position, Duration::ZERO)
            .await
            .is_err()
        {
            return Ok(Outcome::Later(
                Utc::now() + chrono::Duration::milliseconds(200),
            ));
        }
        let Some(user_id) = row.user_id else {
            return Ok(Outcome::Skipped("nobody to write to".into()));
        };
        let user: Option<(Option<String>, Option<String>, String)> =
            sqlx::query_as("SELECT email, full_name, status FROM rm_users WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await
                .map_err(|e| e.to_string())?;
        // Never a mail to an erased user, whatever was queued for them.
        let (to_email, to_name) = match user {
            Some((Some(email), Some(name), status)) if status != "ERASED" => (email, name),
            Some(_) => return Ok(Outcome::Skipped("the user is erased".into())),
            None => return Ok(Outcome::Skipped("no such user".into())),
        };
        let flight = match row.flight_id {
            None => None,
            Some(id) => {
                let f: Option<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT flight_number, origin, destination, departs_at \
                     FROM notification_flights WHERE flight_id = $1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| e.to_string())?;
                f.map(|(number, origin, destination, departs_at)| FlightLine {
                    number,
                    origin,
                    destination,
                    departs_at,
                })
            }
        };
        let token = match row.event_type.as_str() {
            "account.password_reset" => {
                let expires: Option<DateTime<Utc>> =
                    row.data["expires_at"].as_str().and_then(|t| t.parse().ok());
                if expires.is_some_and(|e| e <= Utc::now()) {
                    return Ok(Outcome::Skipped("the reset token expired unsent".into()));
                }
                let token_id = row.data["token_id"]
                    .as_str()
                    .and_then(|t| Uuid::try_parse(t).ok())
                    .ok_or("the reset has no token id")?;
                Some(self.inner.tokens.mint(Purpose::PasswordReset, token_id))
            }
            "account.verify_email" => {
                Some(self.inner.tokens.mint(Purpose::EmailVerification, user_id))
            }
            _ => None,
        };
        if row.event_type == "booking.reminder"
            && flight.as_ref().is_some_and(|f| f.departs_at <= Utc::now())
        {
            return Ok(Outcome::Skipped("the flight has left".into()));
        }
        // "Held for you until ..." is untrue once that has passed (a mail
        // server down for long): the seats have gone to the next in line.
        if row.event_type == "waitlist.offered"
            && row.data["expires_at"]
                .as_str()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                .is_some_and(|t| t <= Utc::now())
        {
            return Ok(Outcome::Skipped("the offer lapsed unsent".into()));
        }
        let attachment = match (row.event_type.as_str(), row.booking_id) {
            ("booking.ticketed", Some(booking_id)) => Some(self.ticket(booking_id).await?),
            _ => None,
        };
        let letter = Letter {
            delivery_id: row.delivery_id,
            event_type: row.event_type.clone(),
            to_name,
            to_email,
            flight,
            data: row.data.clone(),
            token,
            attachment,
        };
        let message = match mail::message(mailer.from(), &letter) {
            Ok(m) => m,
            // An address lettre cannot write to will not get better.
            Err(e) => return Ok(Outcome::Skipped(e.to_string())),
        };
        mailer.send(message).await.map_err(|e| e.to_string())?;
        Ok(Outcome::Delivered)
    }

    /// The booking's e-ticket, as `GET /bookings/{id}/tickets.pdf` serves it.
    async fn ticket(&self, booking_id: Uuid) -> Result<Pdf, String> {
        let pool = &self.inner.pool;
        let booking = booking_by(pool, Some(booking_id), None)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the booking is not in the read model")?;
        let view = ticket_view(pool, &booking)
            .await
            .map_err(|e| e.to_string())?;
        let bytes = documents::ticket_pdf(&view).map_err(|e| e.to_string())?;
        Ok(Pdf {
            name: format!("e-ticket-{}.pdf", booking.pnr),
            bytes,
        })
    }

    fn backoff(&self, attempts: i32) -> chrono::Duration {
        let c = &self.inner.config;
        let exp = c
            .base_backoff
            .saturating_mul(1u32 << (attempts.clamp(1, 20) as u32 - 1));
        let capped = exp.min(c.max_backoff);
        // Up to 20 % jitter, so a receiver back up is not hit in lockstep.
        let jitter = capped.mul_f64(rand::random::<f64>() * 0.2);
        chrono::Duration::from_std(capped + jitter).unwrap_or(chrono::Duration::minutes(30))
    }
}
