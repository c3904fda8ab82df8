//! What every handler can reach.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use eventstore::{EventStore, Sealer};
use gateway::{PaymentGateway, SimulatedGateway};
use sqlx::PgPool;

use crate::auth::refresh::LoginLimiter;
use crate::auth::tokens::TokenKeys;
use crate::commands::Commands;

/// Settings of the write side.
#[derive(Clone)]
pub struct WriteConfig {
    /// Signs access tokens; keep it secret and the same across processes.
    pub jwt_secret: Vec<u8>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long seats stay held for an unpaid booking.
    pub hold_ttl: Duration,
    /// Failed logins allowed per email (and per client address) per minute.
    pub login_attempts_per_minute: u32,
}

impl std::fmt::Debug for WriteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteConfig")
            .field("jwt_secret", &"<secret>")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("hold_ttl", &self.hold_ttl)
            .finish()
    }
}

impl WriteConfig {
    pub fn with_secret(jwt_secret: Vec<u8>) -> Self {
        Self {
            jwt_secret,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            hold_ttl: Duration::from_secs(600),
            login_attempts_per_minute: 10,
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn EventStore>,
    /// The write side's own tables (credentials, refresh tokens).
    pub pool: PgPool,
    pub sealer: Sealer,
    pub tokens: TokenKeys,
    pub config: WriteConfig,
    pub commands: Commands,
    pub login_limiter: LoginLimiter,
    /// Unique booking references, reserved in blocks.
    pub pnrs: crate::commands::pnr::PnrPool,
    /// The card provider: the payment command tokenizes cards with it.
    pub gateway: Arc<dyn PaymentGateway>,
}

impl AppState {
    /// The write side with the simulated payment provider.
    pub fn new(store: Arc<dyn EventStore>, pool: PgPool, config: WriteConfig) -> Self {
        let gateway = Arc::new(SimulatedGateway::new(pool.clone()));
        Self::with_gateway(store, pool, config, gateway)
    }

    pub fn with_gateway(
        store: Arc<dyn EventStore>,
        pool: PgPool,
        config: WriteConfig,
        gateway: Arc<dyn PaymentGateway>,
    ) -> Self {
        let sealer = Sealer::postgres(pool.clone());
        let tokens = TokenKeys::new(&config.jwt_secret, config.access_ttl);
        let commands = Commands::new(store.clone(), sealer.clone());
        let login_limiter = LoginLimiter::new(config.login_attempts_per_minute);
        let pnrs = crate::commands::pnr::PnrPool::new(pool.clone());
        Self(Arc::new(Inner {
            store,
            pool,
            sealer,
            tokens,
            config,
            commands,
            login_limiter,
            pnrs,
            gateway,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
