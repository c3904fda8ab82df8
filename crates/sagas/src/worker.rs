//! Workers: lease due sagas, run them as far as they go ([`crate::steps`]),
//! and let go with the next deadline. Failures retry with exponential
//! backoff; a saga that keeps failing is parked for an admin.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use application::{CommandError, Commands};
use chrono::Utc;
use domain::fulfilment::{SagaKind, SagaStatus, Step};
use eventstore::{EventStore, Sealer};
use futures::FutureExt;
use gateway::{GatewayError, PaymentGateway};
use rust_decimal::Decimal;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::inbox::{SagaInbox, CHANNEL};
use crate::ledger::{Ledger, Write};
use crate::store::{self, Release, SagaRow};
use crate::tickets::{IssueError, TicketIssuer};

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
pub(crate) enum StepError {
    #[error(transparent)]
    Command(#[from] CommandError),
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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) commands: Commands,
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    pub(crate) issuer: Arc<dyn TicketIssuer>,
    pub(crate) config: SagaConfig,
    pub(crate) worker: Uuid,
    /// The workers' writes to their rows, committed together.
    pub(crate) ledger: Ledger,
    /// Airline designators of flights, by flight id (they never change).
    pub(crate) airlines: std::sync::Mutex<std::collections::HashMap<Uuid, String>>,
}

impl Sagas {
    pub fn new(
        pool: PgPool,
        commands: Commands,
        gateway: Arc<dyn PaymentGateway>,
        issuer: Arc<dyn TicketIssuer>,
        config: SagaConfig,
    ) -> Self {
        let worker = Uuid::now_v7();
        Self {
            inner: Arc::new(Inner {
                ledger: Ledger::new(pool.clone(), worker),
                pool,
                commands,
                gateway,
                issuer,
                config,
                worker,
                airlines: Default::default(),
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
        let mut step = row.step;
        let result = match row.kind {
            SagaKind::Fulfilment => self.fulfil(&row, &mut progress, &mut step).await,
            SagaKind::FlightCancellation => self.cancel_flight(&row).await,
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
                        SagaStatus::Parked
                    } else if step == Step::Compensating {
                        SagaStatus::Compensating
                    } else {
                        SagaStatus::Running
                    },
                    step,
                    next_run_at: Utc::now() + self.backoff(attempts),
                    attempts,
                    last_error: Some(e.to_string()),
                }
            }
        };
        let write = Write::Release {
            saga_id: row.saga_id,
            progress,
            release,
        };
        if let Err(e) = self.inner.ledger.write(write).await {
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
}
