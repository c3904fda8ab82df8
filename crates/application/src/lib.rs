//! The application layer: every command of the engine, whoever sends it.
//! REST handlers, the sagas and start-up all call these; none of them
//! loads, decides or appends on its own.
//!
//! A command is loaded by replaying its aggregate, decided by the pure
//! domain, appended with the version it read, and retried when another
//! writer got there first. It answers an [`Outcome`] (the position it
//! reached and its reply) or a typed [`CommandError`]; nothing here knows
//! HTTP.
//!
//! # Layout
//! - [`command`]: the command path ([`Commands`]: load, execute, append,
//!   replay) and [`command::lane`], the per-flight serialisation and group
//!   commit.
//! - [`bookings`], [`payments`], [`flights`], [`users`], [`accounts`],
//!   [`discounts`], [`waitlist`]: the commands, one module per area, as methods of
//!   [`Services`].
//! - [`pnr`]: booking references reserved in blocks.
//! - [`holdings`]: the per-customer caps on unpaid holds.
//! - [`sagas`]: the port through which admins retry parked sagas.
//! - [`error`]: [`CommandError`] and the domain's refusals mapped to it.
//! - [`MIGRATOR`]: this crate's tables (`booking_pnrs`,
//!   `waitlist_entry_flights`).

pub mod accounts;
pub mod bookings;
pub mod command;
pub mod discounts;
pub mod error;
pub mod flights;
pub mod holdings;
pub mod payments;
pub mod pnr;
pub mod sagas;
pub mod users;
pub mod waitlist;
pub mod webhooks;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use auth::account_tokens::AccountTokens;
use auth::limiter::LoginLimiter;
use auth::{Caller, TokenKeys};
use eventstore::{Actor, EventStore, Sealer};
use gateway::{PaymentGateway, SimulatedGateway};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

pub use command::{CommandContext, Commands, Idempotency, Loaded, Outcome};
pub use error::{CommandError, CommandResult, FieldError};

/// The application's tables (`booking_pnrs`).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Settings of the command side.
#[derive(Clone)]
pub struct Settings {
    /// Signs access tokens; keep it secret and the same across processes.
    pub jwt_secret: Vec<u8>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long seats stay held for an unpaid booking.
    pub hold_ttl: Duration,
    /// Login attempts allowed per email (and per client address) per
    /// minute, counted before the password is checked; a success gives its
    /// attempt back. `0`: no limit.
    pub login_attempts_per_minute: u32,
    /// Accounts one client address may register per hour; `None`: no limit.
    pub registrations_per_hour: Option<u32>,
    /// Caps on what one customer may hold unpaid; `None`: no caps.
    pub hold_caps: Option<HoldCaps>,
    /// How long a mailed password-reset token stays good.
    pub reset_token_ttl: Duration,
    /// How long seats offered to the waiting list stay held for it.
    pub waitlist_offer_ttl: Duration,
}

/// What one customer may hold unpaid at once, so nobody can hoard a
/// flight's seats by holding them over and over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldCaps {
    pub max_held_seats: u32,
    pub max_unpaid_bookings: u32,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("jwt_secret", &"<secret>")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("hold_ttl", &self.hold_ttl)
            .finish()
    }
}

impl Settings {
    pub fn with_secret(jwt_secret: Vec<u8>) -> Self {
        Self {
            jwt_secret,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            hold_ttl: Duration::from_secs(600),
            login_attempts_per_minute: 10,
            registrations_per_hour: None,
            hold_caps: None,
            reset_token_ttl: Duration::from_secs(3600),
            waitlist_offer_ttl: Duration::from_secs(900),
        }
    }
}

/// Every command, over one event store. Cheap to clone.
#[derive(Clone)]
pub struct Services(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn EventStore>,
    /// The application's own tables and auth's (credentials, tokens).
    pub pool: PgPool,
    pub sealer: Sealer,
    pub tokens: TokenKeys,
    pub settings: Settings,
    pub commands: Commands,
    pub login_limiter: LoginLimiter,
    /// Registrations per client address, when limited.
    pub registrations: Option<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// Unique booking references, reserved in blocks.
    pub pnrs: pnr::PnrPool,
    /// The card provider: the payment command tokenizes cards with it.
    pub gateway: Arc<dyn PaymentGateway>,
    /// What customers hold unpaid (for the hold caps).
    pub holdings: Arc<dyn holdings::Holdings>,
    pub(crate) ledger: Arc<holdings::Ledger>,
    /// Opens the tokens the notifier mails (reset, verification).
    pub account_tokens: AccountTokens,
}

impl Services {
    /// The commands with the simulated payment provider.
    pub fn new(store: Arc<dyn EventStore>, pool: PgPool, settings: Settings) -> Self {
        let gateway = Arc::new(SimulatedGateway::new(pool.clone()));
        Self::with_gateway(store, pool, settings, gateway)
    }

    pub fn with_gateway(
        store: Arc<dyn EventStore>,
        pool: PgPool,
        settings: Settings,
        gateway: Arc<dyn PaymentGateway>,
    ) -> Self {
        Self::with_ports(store, pool, settings, gateway, Arc::new(holdings::Unknown))
    }

    /// The commands with these ports: the card provider, and where the
    /// hold caps count what customers hold.
    pub fn with_ports(
        store: Arc<dyn EventStore>,
        pool: PgPool,
        settings: Settings,
        gateway: Arc<dyn PaymentGateway>,
        holdings: Arc<dyn holdings::Holdings>,
    ) -> Self {
        let sealer = Sealer::postgres(pool.clone());
        let tokens = TokenKeys::new(&settings.jwt_secret, settings.access_ttl);
        let commands = Commands::new(store.clone(), sealer.clone());
        let login_limiter = LoginLimiter::new(settings.login_attempts_per_minute);
        let registrations = settings.registrations_per_hour.and_then(|n| {
            let n = std::num::NonZeroU32::new(n)?;
            Some(governor::RateLimiter::keyed(governor::Quota::per_hour(n)))
        });
        let pnrs = pnr::PnrPool::new(pool.clone());
        let account_tokens = AccountTokens::new(&settings.jwt_secret);
        Self(Arc::new(Inner {
            store,
            pool,
            sealer,
            tokens,
            settings,
            commands,
            login_limiter,
            registrations,
            pnrs,
            gateway,
            holdings,
            ledger: Arc::default(),
            account_tokens,
        }))
    }
}

impl Deref for Services {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The actor events record for a caller.
pub fn actor(caller: &Caller) -> Actor {
    Actor::user(caller.user_id, caller.role.as_str())
}
