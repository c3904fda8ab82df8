//! What `booking serve` is told: flags and environment.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use application::Settings;

/// A value that must never be printed: its `Debug` and `Display` say `<secret>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

/// What one `booking serve` process does. One machine runs `all`; past one
/// machine, API processes scale behind a load balancer and a separate
/// process follows the log into the read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// REST, GraphQL, the projectors and the sagas.
    #[default]
    All,
    /// REST and GraphQL only.
    Api,
    /// The projectors only (with health and metrics on the port).
    Projections,
    /// The sagas only: the fulfilment process managers and their deadlines
    /// (with health and metrics on the port).
    Sagas,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn runs_projections(self) -> bool {
        matches!(self, Role::All | Role::Projections)
    }

    pub fn runs_sagas(self) -> bool {
        matches!(self, Role::All | Role::Sagas)
    }
}

/// Settings of `booking serve`, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct AppConfig {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "BOOKING_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Key that signs access tokens; every process of one deployment needs
    /// the same. Unset, a random one is made at start: tokens then die with
    /// the process and work in no other.
    #[arg(long, env = "BOOKING_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// Seconds seats stay held for an unpaid booking.
    #[arg(long, env = "BOOKING_HOLD_TTL_SECS", default_value_t = 600)]
    pub hold_ttl_secs: u64,
    /// With --admin-password: make sure this admin account exists at start.
    #[arg(long, env = "BOOKING_ADMIN_EMAIL", requires = "admin_password")]
    pub admin_email: Option<String>,
    /// The bootstrap admin's password (used only when the account is new).
    #[arg(
        long,
        env = "BOOKING_ADMIN_PASSWORD",
        hide_env_values = true,
        requires = "admin_email"
    )]
    pub admin_password: Option<Secret>,
    /// Most database connections the API and the sagas share (the
    /// projectors have one each besides).
    #[arg(long, env = "BOOKING_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,
    /// Seconds a submitted payment may take before the booking gives up on
    /// it (PAYMENT_FAILED; a capture that arrives later is refunded).
    #[arg(long, env = "BOOKING_PAYMENT_TIMEOUT_SECS", default_value_t = 600)]
    pub payment_timeout_secs: u64,
    /// Tax contained in fares, as a fraction, for invoices (0.20 = 20 %).
    #[arg(long, env = "BOOKING_TAX_RATE", default_value = "0")]
    pub tax_rate: rust_decimal::Decimal,
    /// Delay of every simulated payment provider call, in milliseconds.
    #[arg(long, env = "BOOKING_GATEWAY_LATENCY_MS", default_value_t = 0)]
    pub gateway_latency_ms: u64,
    /// What this process does: everything, the APIs, the projectors, or
    /// the sagas.
    #[arg(long, env = "BOOKING_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,
    /// Whether a role that runs the sagas does: the read benchmark turns
    /// them off to measure the read side alone.
    #[arg(skip = true)]
    pub sagas_enabled: bool,
    /// The PostgreSQL to use: `booking serve` fills it in from DATABASE_URL
    /// or the embedded server.
    #[arg(skip)]
    pub database_url: Secret,
}

impl AppConfig {
    /// The defaults, on this database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            hold_ttl_secs: 600,
            admin_email: None,
            admin_password: None,
            db_max_connections: 32,
            payment_timeout_secs: 600,
            tax_rate: rust_decimal::Decimal::ZERO,
            gateway_latency_ms: 0,
            role: Role::All,
            sagas_enabled: true,
            database_url: Secret::new(database_url),
        }
    }

    pub(super) fn settings(&self) -> Settings {
        let secret = match &self.jwt_secret {
            Some(s) if !s.expose().is_empty() => {
                if s.expose().len() < 32 {
                    tracing::warn!("BOOKING_JWT_SECRET is shorter than 32 bytes: use a longer one");
                }
                s.expose().as_bytes().to_vec()
            }
            _ => {
                tracing::warn!(
                    "BOOKING_JWT_SECRET is not set: using a random secret; access tokens \
                     will not survive a restart nor work in another process"
                );
                rand::random::<[u8; 32]>().to_vec()
            }
        };
        let mut settings = Settings::with_secret(secret);
        settings.hold_ttl = Duration::from_secs(self.hold_ttl_secs);
        settings
    }

    pub(super) fn saga_config(&self) -> sagas::SagaConfig {
        sagas::SagaConfig {
            payment_timeout: Duration::from_secs(self.payment_timeout_secs),
            tax_rate: self.tax_rate,
            ..sagas::SagaConfig::default()
        }
    }
}
