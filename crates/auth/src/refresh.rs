//! Refresh tokens: opaque, stored hashed, rotated in families.
//!
//! A refresh token is 256 random bits, base64url-encoded; the database keeps
//! only its SHA-256, so a leaked table cannot be replayed. Every login starts
//! a family; each refresh spends the presented token and issues the next one
//! of the same family. A spent token presented again means it was copied:
//! the whole family is revoked, so the thief and the victim both have to log
//! in again (OAuth 2.0 Security BCP, "refresh token rotation").

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{sessions, Error};

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

impl From<RefreshError> for Error {
    fn from(_: RefreshError) -> Self {
        Error::Unauthorized("the refresh token is invalid, expired or revoked".into())
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
pub async fn issue(pool: &PgPool, user_id: Uuid, ttl: Duration) -> Result<Issued, Error> {
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
) -> Result<Issued, Error> {
    let token = RefreshToken::generate();
    let ttl = chrono::Duration::from_std(ttl).map_err(|e| Error::Internal(e.to_string()))?;
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
) -> Result<Result<Issued, RefreshError>, Error> {
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

/// Revokes a family's tokens and ends its session.
async fn revoke_family_in(conn: &mut PgConnection, family_id: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = now() \
         WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    sessions::end(conn, &[family_id]).await
}

/// Logs out: revokes the family of `token` if it is `user_id`'s, and ends
/// that session (its access tokens included). Answers the sessions that
/// ended.
pub async fn revoke_family_of(
    pool: &PgPool,
    token: &RefreshToken,
    user_id: Uuid,
) -> Result<Vec<Uuid>, Error> {
    let mut tx = pool.begin().await?;
    let families: Vec<Uuid> = sqlx::query_scalar(
        "SELECT family_id FROM auth_refresh_tokens WHERE token_hash = $1 AND user_id = $2",
    )
    .bind(token.digest())
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = now() \
         WHERE revoked_at IS NULL AND family_id = ANY($1)",
    )
    .bind(&families)
    .execute(&mut *tx)
    .await?;
    sessions::end(&mut tx, &families).await?;
    tx.commit().await?;
    Ok(families)
}

/// Revokes every family of one user and ends all their sessions (a role
/// change, an erasure, a suspension). Answers the sessions that ended.
pub async fn revoke_user(pool: &PgPool, user_id: Uuid) -> Result<Vec<Uuid>, Error> {
    revoke_user_except(pool, user_id, None).await
}

/// Revokes every family of one user but `keep` (the session changing the
/// password stays logged in) and ends those sessions. Answers the sessions
/// that ended.
pub async fn revoke_user_except(
    pool: &PgPool,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<Vec<Uuid>, Error> {
    let mut tx = pool.begin().await?;
    let families: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT family_id FROM auth_refresh_tokens \
         WHERE user_id = $1 AND expires_at > now() AND family_id IS DISTINCT FROM $2",
    )
    .bind(user_id)
    .bind(keep)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = now() \
         WHERE user_id = $1 AND revoked_at IS NULL AND family_id IS DISTINCT FROM $2",
    )
    .bind(user_id)
    .bind(keep)
    .execute(&mut *tx)
    .await?;
    sessions::end(&mut tx, &families).await?;
    tx.commit().await?;
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_never_print_a_refresh_token() {
        let t = RefreshToken::generate();
        assert_eq!(t.expose().len(), 43);
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
