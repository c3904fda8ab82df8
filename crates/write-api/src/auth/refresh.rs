//! Refresh tokens (opaque, stored hashed, rotated in families) and login
//! rate limiting.
//!
//! A refresh token is 256 random bits, base64url-encoded; the database keeps
//! only its SHA-256, so a leaked table cannot be replayed. Every login starts
//! a family; each refresh spends the presented token and issues the next one
//! of the same family. A spent token presented again means it was copied:
//! the whole family is revoked, so the thief and the victim both have to log
//! in again (OAuth 2.0 Security BCP, "refresh token rotation").

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ApiError;

/// An opaque refresh token: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// 256 fresh random bits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(B64URL.encode(bytes))
    }

    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database keeps.
    pub fn digest(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

impl Serialize for RefreshToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RefreshToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// Why a refresh token was refused. All of them answer the same 401; the
/// distinction is for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    #[error("unknown refresh token")]
    Unknown,
    #[error("expired refresh token")]
    Expired,
    #[error("revoked refresh token")]
    Revoked,
    /// A spent token came back: its family is now revoked.
    #[error("reused refresh token; its family was revoked")]
    Reused,
}

impl From<RefreshError> for ApiError {
    fn from(_: RefreshError) -> Self {
        ApiError::Unauthorized("the refresh token is invalid, expired or revoked".into())
    }
}

/// A token that was just issued.
#[derive(Debug)]
pub struct Issued {
    pub token: RefreshToken,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Issues the first token of a new family (a login).
pub async fn issue(pool: &PgPool, user_id: Uuid, ttl: Duration) -> Result<Issued, ApiError> {
    let mut conn = pool.acquire().await?;
    // Expired tokens can no longer be reused, so they need not be kept.
    sqlx::query("DELETE FROM auth_refresh_tokens WHERE user_id = $1 AND expires_at < now()")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    insert(&mut conn, user_id, Uuid::now_v7(), ttl).await
}

async fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    family_id: Uuid,
    ttl: Duration,
) -> Result<Issued, ApiError> {
    let token = RefreshToken::generate();
    let ttl = chrono::Duration::from_std(ttl).map_err(ApiError::internal)?;
    let expires_at = Utc::now() + ttl;
    sqlx::query(
        "INSERT INTO auth_refresh_tokens (token_hash, user_id, family_id, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token.digest())
    .bind(user_id)
    .bind(family_id)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(Issued {
        token,
        user_id,
        family_id,
        expires_at,
    })
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: Uuid,
    family_id: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Spends `token` and issues the next one of its family.
///
/// The row is locked (`FOR UPDATE`) for the whole exchange, so of two
/// concurrent refreshes with the same token exactly one succeeds; the other
/// then sees a spent token and revokes the family.
pub async fn rotate(
    pool: &PgPool,
    token: &RefreshToken,
    ttl: Duration,
) -> Result<Result<Issued, RefreshError>, ApiError> {
    let mut tx = pool.begin().await?;
    let row: Option<Row> = sqlx::query_as(
        "SELECT user_id, family_id, expires_at, used_at, revoked_at \
         FROM auth_refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token.digest())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Err(RefreshError::Unknown));
    };
    if row.revoked_at.is_some() {
        return Ok(Err(RefreshError::Revoked));
    }
    if row.used_at.is_some() {
        revoke_family_in(&mut tx, row.family_id).await?;
        tx.commit().await?;
        tracing::warn!(user_id = %row.user_id, family_id = %row.family_id,
            "a spent refresh token was reused; its family is revoked");
        metrics::counter!("booking_refresh_token_reuse_total").increment(1);
        return Ok(Err(RefreshError::Reused));
    }
    if row.expires_at <= Utc::now() {
        return Ok(Err(RefreshError::Expired));
    }
    sqlx::query("UPDATE auth_refresh_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(token.digest())
        .execute(&mut *tx)
        .await?;
    let next = insert(&mut tx, row.user_id, row.family_id, ttl).await?;
    tx.commit().await?;
    Ok(Ok(next))
}

async fn revoke_family_in(conn: &mut PgConnection, family_id: Uuid) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = now() \
         WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Revokes the family of `token` if the token is `user_id`'s (logout).
/// Answers whether a family was revoked.
pub async fn revoke_family_of(
    pool: &PgPool,
    token: &RefreshToken,
    user_id: Uuid,
) -> Result<bool, ApiError> {
    let revoked = sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = now() \
         WHERE revoked_at IS NULL AND family_id = ( \
             SELECT family_id FROM auth_refresh_tokens WHERE token_hash = $1 AND user_id = $2)",
    )
    .bind(token.digest())
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(revoked.rows_affected() > 0)
}

/// Revokes every family of one user.
pub async fn revoke_user(pool: &PgPool, user_id: Uuid) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = now() \
         WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// What the login limiter counts failures by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// The normalised email that was tried (known or not).
    Email(String),
    /// The client's address.
    Ip(IpAddr),
}

impl LimitKey {
    /// Long inputs are cut: a key only needs to tell attempts apart.
    pub fn email(normalised: &str) -> Self {
        Self::Email(normalised.chars().take(320).collect())
    }
}

/// Limits failed logins per key with a token bucket: `per_minute` failures
/// in a burst, then one more every `60 / per_minute` seconds. Only failures
/// take from the bucket; a success clears its email's bucket. `0` disables
/// the limit.
///
/// The buckets live in this process: behind several replicas each one
/// limits on its own, which bounds guessing all the same.
pub struct LoginLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<LimitKey, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before full ones are pruned.
const MAX_BUCKETS: usize = 100_000;

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn refill_per_sec(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    fn refilled(&self, b: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        Bucket {
            tokens: (b.tokens + elapsed * self.refill_per_sec()).min(self.capacity()),
            at: now,
        }
    }

    /// `Err(wait)` when any of `keys` has no failures left: the caller
    /// should answer 429 without checking the password.
    pub fn check(&self, keys: &[LimitKey]) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(b) = buckets.get(key) {
                let b = self.refilled(*b, now);
                if b.tokens < 1.0 {
                    let secs = (1.0 - b.tokens) / self.refill_per_sec();
                    wait = wait.max(Duration::from_secs_f64(secs));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Counts one failed login against each of `keys`.
    pub fn failed(&self, keys: &[LimitKey]) {
        if self.per_minute == 0 {
            return;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            let full = self.capacity();
            buckets.retain(|_, b| self.refilled(*b, now).tokens < full);
        }
        for key in keys {
            let b = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: self.capacity(),
                at: now,
            });
            let mut next = self.refilled(*b, now);
            next.tokens = (next.tokens - 1.0).max(0.0);
            *b = next;
        }
    }

    /// Forgets past failures of `key` (a successful login for that email).
    pub fn succeeded(&self, key: &LimitKey) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_allow_per_minute_failures_then_refuse() {
        let limiter = LoginLimiter::new(3);
        let keys = [LimitKey::email("ada@example.com")];
        for _ in 0..3 {
            assert!(limiter.check(&keys).is_ok());
            limiter.failed(&keys);
        }
        let wait = limiter.check(&keys).unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20));
        assert!(limiter.check(&[LimitKey::email("bob@example.com")]).is_ok());
        limiter.succeeded(&keys[0]);
        assert!(limiter.check(&keys).is_ok());
    }

    #[test]
    fn it_should_never_print_a_refresh_token() {
        let t = RefreshToken::generate();
        assert_eq!(t.expose().len(), 43);
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
