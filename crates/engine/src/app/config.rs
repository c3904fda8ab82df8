//! What `booking serve` is told: flags and environment.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use application::{HoldCaps, Settings};

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

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
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
    /// The Kafka relay only (needs `KAFKA_BROKERS`; its readiness is the
    /// broker's).
    Relay,
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

    /// With `KAFKA_BROKERS` set.
    pub fn runs_relay(self) -> bool {
        matches!(self, Role::All | Role::Relay)
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
    /// Seconds seats offered to a waiting list stay held for it.
    #[arg(long, env = "BOOKING_WAITLIST_OFFER_SECS", default_value_t = 900)]
    pub waitlist_offer_secs: u64,
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
    /// Request rate limits (per user, per address, registrations, logins):
    /// `on`, or `off` for load tests and benchmarks.
    #[arg(long, env = "BOOKING_RATE_LIMITS", value_enum, default_value_t = Switch::On)]
    pub rate_limits: Switch,
    /// The windows each user (and each anonymous address) may send, on REST
    /// and GraphQL together.
    #[arg(
        long,
        env = "BOOKING_RATE_LIMIT",
        default_value = "10/s,100/min,1000/h"
    )]
    pub rate_limit: super::limits::Policy,
    /// Failed logins allowed per email and per address, per minute.
    #[arg(long, env = "BOOKING_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 10)]
    pub login_attempts_per_minute: u32,
    /// Accounts one address may register per hour.
    #[arg(long, env = "BOOKING_REGISTRATIONS_PER_HOUR", default_value_t = 20)]
    pub registrations_per_hour: u32,
    /// Proxies (comma-separated addresses or CIDR networks) whose
    /// `X-Forwarded-For` names the client; nobody else's is believed.
    #[arg(long, env = "BOOKING_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: super::limits::Proxies,
    /// Per-customer caps on held seats and unpaid bookings: `on`, or `off`
    /// for load tests and benchmarks.
    #[arg(long, env = "BOOKING_HOLD_LIMITS", value_enum, default_value_t = Switch::On)]
    pub hold_limits: Switch,
    /// Seats one customer may hold unpaid at once.
    #[arg(long, env = "BOOKING_MAX_HELD_SEATS", default_value_t = 18)]
    pub max_held_seats: u32,
    /// Unpaid bookings one customer may have at once.
    #[arg(long, env = "BOOKING_MAX_UNPAID_BOOKINGS", default_value_t = 4)]
    pub max_unpaid_bookings: u32,
    /// Browser origins (comma-separated, e.g. `https://app.example.com`)
    /// allowed to call the APIs cross-origin; none when empty.
    #[arg(long, env = "BOOKING_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,
    /// Whether `GET /graphql` serves the GraphiQL explorer.
    #[arg(long, env = "BOOKING_GRAPHIQL", value_enum, default_value_t = Switch::On)]
    pub graphiql: Switch,
    /// Whether GraphQL answers introspection queries.
    #[arg(long, env = "BOOKING_INTROSPECTION", value_enum, default_value_t = Switch::On)]
    pub introspection: Switch,
    /// Whether `/metrics` is served (keep it off the public port in
    /// production, or turn it off).
    #[arg(long, env = "BOOKING_METRICS", value_enum, default_value_t = Switch::On)]
    pub metrics: Switch,
    /// Kafka brokers (`host:port,...`): when set, the relay publishes every
    /// event to its category's topic (in `booking serve`, or alone with
    /// `BOOKING_ROLE=relay`).
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Partitions of each topic the relay creates.
    #[arg(long, env = "BOOKING_KAFKA_PARTITIONS", default_value_t = 6)]
    pub kafka_partitions: i32,
    /// Replication factor of each topic the relay creates.
    #[arg(long, env = "BOOKING_KAFKA_REPLICATION", default_value_t = 1)]
    pub kafka_replication: i32,
    /// Put before every topic name, for clusters shared with others.
    #[arg(long, env = "BOOKING_KAFKA_TOPIC_PREFIX", default_value = "")]
    pub kafka_topic_prefix: String,
    /// The Ed25519 key (64 hex digits) audit digests are signed with.
    /// Unset, a key is made once and kept in the database; set it from a
    /// secret store in production, so that whoever can write the database
    /// cannot also sign.
    #[arg(long, env = "BOOKING_AUDIT_KEY", hide_env_values = true)]
    pub audit_key: Option<Secret>,
    /// The mail server notifications go out through, e.g.
    /// `smtp://127.0.0.1:2525`, `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://host:465`. Unset, no mail is sent (webhooks
    /// still are).
    #[arg(long, env = "BOOKING_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,
    /// The sender of notification mails.
    #[arg(
        long,
        env = "BOOKING_MAIL_FROM",
        default_value = "Booking Engine <booking@localhost>"
    )]
    pub mail_from: String,
    /// Seconds a notification being sent stays with its worker: after a
    /// crash it is sent again (same delivery id) once this runs out.
    #[arg(long, env = "BOOKING_NOTIFY_LEASE_SECS", default_value_t = 60)]
    pub notify_lease_secs: u64,
    /// Failed attempts before a notification is dead-lettered (an admin
    /// can retry it).
    #[arg(long, env = "BOOKING_NOTIFY_MAX_ATTEMPTS", default_value_t = 10)]
    pub notify_max_attempts: u32,
    /// The first retry's delay in milliseconds; it doubles with each
    /// failure, up to 30 minutes.
    #[arg(long, env = "BOOKING_NOTIFY_BACKOFF_MS", default_value_t = 2000)]
    pub notify_backoff_ms: u64,
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
            waitlist_offer_secs: 900,
            admin_email: None,
            admin_password: None,
            db_max_connections: 32,
            payment_timeout_secs: 600,
            tax_rate: rust_decimal::Decimal::ZERO,
            gateway_latency_ms: 0,
            role: Role::All,
            rate_limits: Switch::On,
            rate_limit: "10/s,100/min,1000/h"
                .parse()
                .expect("the default policy parses"),
            login_attempts_per_minute: 10,
            registrations_per_hour: 20,
            trusted_proxies: super::limits::Proxies::default(),
            hold_limits: Switch::On,
            max_held_seats: 18,
            max_unpaid_bookings: 4,
            cors_origins: String::new(),
            graphiql: Switch::On,
            introspection: Switch::On,
            metrics: Switch::On,
            audit_key: None,
            smtp_url: None,
            mail_from: "Booking Engine <booking@localhost>".into(),
            notify_lease_secs: 60,
            notify_max_attempts: 10,
            notify_backoff_ms: 2000,
            kafka_brokers: None,
            kafka_partitions: 6,
            kafka_replication: 1,
            kafka_topic_prefix: String::new(),
            sagas_enabled: true,
            database_url: Secret::new(database_url),
        }
    }

    /// The settings with every limit off, as load tests need.
    pub fn without_limits(mut self) -> Self {
        self.rate_limits = Switch::Off;
        self.hold_limits = Switch::Off;
        self
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
        settings.waitlist_offer_ttl = Duration::from_secs(self.waitlist_offer_secs);
        let limits = self.rate_limits == Switch::On;
        settings.login_attempts_per_minute = if limits {
            self.login_attempts_per_minute
        } else {
            0
        };
        settings.registrations_per_hour = limits.then_some(self.registrations_per_hour);
        settings.hold_caps = (self.hold_limits == Switch::On).then_some(HoldCaps {
            max_held_seats: self.max_held_seats,
            max_unpaid_bookings: self.max_unpaid_bookings,
        });
        settings
    }

    /// What surrounds the APIs.
    pub(super) fn edge(&self, tokens: auth::TokenKeys) -> anyhow::Result<super::Edge> {
        let policy = (self.rate_limits == Switch::On).then_some(&self.rate_limit);
        let cors = self
            .cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                axum::http::HeaderValue::from_str(o)
                    .map_err(|_| anyhow::anyhow!("BOOKING_CORS_ORIGINS: {o:?} is not an origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(super::Edge {
            limits: super::limits::RateLimits::new(policy, self.trusted_proxies.clone(), tokens),
            cors,
            metrics: self.metrics == Switch::On,
        })
    }

    /// The GraphQL side's settings.
    pub(super) fn read_settings(&self) -> read_api::ReadSettings {
        read_api::ReadSettings {
            graphiql: self.graphiql == Switch::On,
            introspection: self.introspection == Switch::On,
            ..read_api::ReadSettings::default()
        }
    }

    /// The relay's settings, when this process runs it.
    pub(super) fn relay_config(&self) -> anyhow::Result<Option<relay::RelayConfig>> {
        let brokers = self
            .kafka_brokers
            .as_deref()
            .filter(|b| !b.trim().is_empty());
        match (brokers, self.role) {
            (None, Role::Relay) => anyhow::bail!("BOOKING_ROLE=relay needs KAFKA_BROKERS"),
            (Some(brokers), role) if role.runs_relay() => {
                let mut c = relay::RelayConfig::new(brokers);
                c.partitions = self.kafka_partitions;
                c.replication = self.kafka_replication;
                c.topic_prefix = self.kafka_topic_prefix.clone();
                Ok(Some(c))
            }
            _ => Ok(None),
        }
    }

    /// The notifier's mail server, when one is configured.
    pub(super) fn mailer(&self) -> anyhow::Result<Option<notifications::mail::Mailer>> {
        match self.smtp_url.as_ref().filter(|u| !u.expose().is_empty()) {
            None => Ok(None),
            Some(url) => Ok(Some(notifications::mail::Mailer::new(
                url.expose(),
                &self.mail_from,
            )?)),
        }
    }

    pub(super) fn notify_config(&self) -> notifications::NotifyConfig {
        notifications::NotifyConfig {
            lease: Duration::from_secs(self.notify_lease_secs.max(1)),
            max_attempts: i32::try_from(self.notify_max_attempts.max(1)).unwrap_or(i32::MAX),
            base_backoff: Duration::from_millis(self.notify_backoff_ms.max(1)),
            ..notifications::NotifyConfig::default()
        }
    }

    pub(super) fn saga_config(&self) -> sagas::SagaConfig {
        sagas::SagaConfig {
            payment_timeout: Duration::from_secs(self.payment_timeout_secs),
            tax_rate: self.tax_rate,
            ..sagas::SagaConfig::default()
        }
    }
}
