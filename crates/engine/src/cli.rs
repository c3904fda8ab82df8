//! The command line: `booking serve | migrate | projections ...`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::AppConfig;

/// An event-sourced flight booking engine.
///
/// With no DATABASE_URL, commands that need a database start a private
/// PostgreSQL from this machine's installation, keeping its data in
/// --data-dir.
#[derive(Debug, Parser)]
#[command(name = "booking", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL to use, e.g. postgres://user@host:5432/booking.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the embedded PostgreSQL keeps its data when DATABASE_URL is unset.
    #[arg(
        long,
        env = "BOOKING_DATA_DIR",
        global = true,
        default_value = ".booking/pg"
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine: REST API, health, metrics and the OpenAPI document on
    /// one port.
    ///
    /// Applies the migrations, makes sure the bootstrap admin exists (with
    /// BOOKING_ADMIN_EMAIL and BOOKING_ADMIN_PASSWORD), then serves until
    /// Ctrl-C or SIGTERM, letting open requests finish.
    Serve(Box<AppConfig>),
    /// Apply the database migrations and exit.
    Migrate,
    /// Read-model maintenance.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Print the envelopes of a Kafka topic as they arrive (an operator's
    /// kafkacat), e.g. `booking tail booking.events --from-beginning`.
    Tail {
        topic: String,
        /// Consume as this consumer group (its offsets are committed);
        /// a fresh group of its own when unset.
        #[arg(long)]
        group: Option<String>,
        /// Start at the oldest retained message rather than new ones.
        #[arg(long)]
        from_beginning: bool,
        /// The brokers, `host:port,...`.
        #[arg(long, env = "KAFKA_BROKERS")]
        brokers: String,
    },
    /// The auditor's reads, straight from the database (no engine needed):
    /// the same answers as `/api/v1/audit`, as JSON (exports as NDJSON).
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The Ed25519 key (64 hex digits) digests are signed with; unset, the
    /// key the engine keeps in the database.
    #[arg(long, env = "BOOKING_AUDIT_KEY", hide_env_values = true)]
    pub audit_key: Option<String>,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chains of the whole log, or of one stream; exits 1
    /// when they do not verify.
    Verify {
        /// One stream, e.g. booking-<uuid>.
        #[arg(long)]
        stream: Option<String>,
    },
    /// The log as NDJSON envelopes (stored form, with hashes).
    Export {
        /// Only events after this position.
        #[arg(long)]
        after: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A stream's aggregate as it stood at a moment.
    State {
        stream: String,
        /// An RFC 3339 time, a position or a stream version; now if unset.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// A signed digest of the whole log (`digest`), or the check of a saved
    /// one against today's log (`digest verify FILE`, exits 1 when it fails).
    Digest {
        #[command(subcommand)]
        command: Option<DigestCommand>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Check a digest saved earlier (a file, `-` for standard input).
    Verify { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Replay the whole log into fresh tables while the current ones keep
    /// serving, then swap them in (flights, bookings, billing, analytics).
    Rebuild {
        /// The projection to rebuild.
        name: String,
    },
    /// Each projection's position and lag.
    Status,
}
