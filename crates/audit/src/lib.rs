//! The auditor's side of the log.
//!
//! Auditors replay any stream to any moment, page or export the global
//! log, check the hash chains, and take signed digests of the whole log
//! that prove later that it was never rewritten. Everything here reads the
//! event store's tables directly (the PostgreSQL backend): an auditor with
//! database access gets the same answers from the `booking audit` commands
//! as from the REST routes, with no engine running. Every read is itself
//! recorded ([`Audit::record`]) for admins to read.
//!
//! - [`Audit::stream`], [`Audit::events`]: events with all their metadata and
//!   hashes, personal data opened (or `"erased"` once shredded);
//! - [`Audit::state`]: an aggregate folded with the domain's own `evolve`
//!   up to a time, a position or a version;
//! - [`Audit::export`]: the log as NDJSON envelopes, in stored form,
//!   streamed page by page with bounded memory;
//! - [`Audit::verify`]: the hash chains, the whole log or one stream;
//! - [`Audit::digest`], [`Audit::verify_digest`]: see [`digest`].

pub mod digest;
mod export;
mod log;
mod reads;
mod state;

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use eventstore::{PgEventStore, Sealer, StoreError};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

pub use digest::{Checkpoint, Digest, DigestCheck, SignedDigest};
pub use export::EXPORT_PAGE;
pub use log::{AuditedEvent, LogPage, LogQuery};
pub use reads::AuditRead;
pub use state::{AsOf, StateAt};

/// The `audit_reads` table and the stored signing key.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why an audit read has no answer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The question itself is wrong (a bad cursor, time or stream id).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

pub type AuditResult<T> = Result<T, AuditError>;

/// The auditor's reads over one event store.
#[derive(Clone)]
pub struct Audit {
    pool: PgPool,
    store: PgEventStore,
    sealer: Sealer,
    key: Arc<SigningKey>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Reads over the process's event store (no second LISTEN connection),
    /// opening personal data with
    /// `sealer` (the process's own, so that an erasure here shows at once);
    /// digests are signed with `seed` (the 32 bytes of an Ed25519 secret
    /// key) or, without one, with a key made once and kept in the database.
    pub async fn new(
        store: PgEventStore,
        sealer: Sealer,
        seed: Option<[u8; 32]>,
    ) -> AuditResult<Self> {
        let pool = store.pool().clone();
        let seed = match seed {
            Some(seed) => seed,
            None => stored_seed(&pool).await?,
        };
        Ok(Self {
            store,
            sealer,
            pool,
            key: Arc::new(SigningKey::from_bytes(&seed)),
        })
    }

    /// The public half of the signing key, hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }
}

/// The stored key's seed, made on first use (two processes starting
/// together agree on the first one written).
async fn stored_seed(pool: &PgPool) -> AuditResult<[u8; 32]> {
    let fresh: [u8; 32] = rand::random();
    sqlx::query("INSERT INTO audit_signing_key (seed) VALUES ($1) ON CONFLICT (id) DO NOTHING")
        .bind(fresh.as_slice())
        .execute(pool)
        .await?;
    let seed: Vec<u8> = sqlx::query_scalar("SELECT seed FROM audit_signing_key")
        .fetch_one(pool)
        .await?;
    seed.try_into()
        .map_err(|_| AuditError::Invalid("the stored audit key is not 32 bytes".into()))
}

/// Parses `BOOKING_AUDIT_KEY`: 64 hex digits.
pub fn parse_seed(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s.trim()).map_err(|e| format!("the audit key is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "the audit key must be 32 bytes (64 hex digits)".to_string())
}

impl Audit {
    /// Checks the hash chains of one stream, or of the whole log. It reads
    /// in one snapshot and takes no lock: writers go on meanwhile.
    pub async fn verify(
        &self,
        stream: Option<&eventstore::StreamId>,
    ) -> AuditResult<eventstore::VerifyReport> {
        use eventstore::EventStore as _;
        Ok(self.store.verify(stream).await?)
    }
}
