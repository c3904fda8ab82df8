//! Login credentials: the normalised email and the argon2id hash of each
//! account, in `auth_credentials`, never in events. The unique email is
//! what keeps two accounts from sharing one.

use domain::values::Email;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Error;

/// One account's credential row.
#[derive(Debug, Clone)]
pub struct Credential {
    pub user_id: Uuid,
    pub password_hash: String,
    /// Old enough that a registration in progress would have finished.
    pub old: bool,
}

/// How long a credential row may exist without its user stream before it
/// counts as left behind by a crash.
pub const ORPHAN_AFTER_SECS: f64 = 60.0;

/// The credential of `email`, if any.
pub async fn find(pool: &PgPool, email: &Email) -> Result<Option<Credential>, Error> {
    let row: Option<(Uuid, String, bool)> = sqlx::query_as(
        "SELECT user_id, password_hash, created_at < now() - make_interval(secs => $2) \
         FROM auth_credentials WHERE email = $1",
    )
    .bind(email.as_str())
    .bind(ORPHAN_AFTER_SECS)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(user_id, password_hash, old)| Credential {
        user_id,
        password_hash,
        old,
    }))
}

/// The email and password hash of `user_id`'s account, if it has one.
pub async fn find_by_user(pool: &PgPool, user_id: Uuid) -> Result<Option<(String, String)>, Error> {
    Ok(
        sqlx::query_as("SELECT email, password_hash FROM auth_credentials WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Replaces `user_id`'s password hash if it is still `expected` (a change
/// that raced another one loses rather than overwrites it): answers
/// whether it did.
pub async fn replace_hash(
    pool: &PgPool,
    user_id: Uuid,
    expected: &str,
    password_hash: &str,
) -> Result<bool, Error> {
    let updated = sqlx::query(
        "UPDATE auth_credentials SET password_hash = $3 \
         WHERE user_id = $1 AND password_hash = $2",
    )
    .bind(user_id)
    .bind(expected)
    .bind(password_hash)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Sets a user's password hash whatever it was (a password reset, which
/// proves the mailbox rather than the old password).
pub async fn set_hash(pool: &PgPool, user_id: Uuid, password_hash: &str) -> Result<bool, Error> {
    let updated = sqlx::query("UPDATE auth_credentials SET password_hash = $2 WHERE user_id = $1")
        .bind(user_id)
        .bind(password_hash)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(updated == 1)
}

/// Records whose password-reset request `token_id` is.
pub async fn record_reset(pool: &PgPool, token_id: Uuid, user_id: Uuid) -> Result<(), Error> {
    sqlx::query("INSERT INTO auth_reset_requests (token_id, user_id) VALUES ($1, $2)")
        .bind(token_id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The user a password-reset request belongs to.
pub async fn reset_owner(pool: &PgPool, token_id: Uuid) -> Result<Option<Uuid>, Error> {
    Ok(
        sqlx::query_scalar("SELECT user_id FROM auth_reset_requests WHERE token_id = $1")
            .bind(token_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Inserts a credential unless the email has one: answers whether it did.
pub async fn insert(
    pool: &PgPool,
    email: &Email,
    user_id: Uuid,
    password_hash: &str,
) -> Result<bool, Error> {
    let inserted = sqlx::query(
        "INSERT INTO auth_credentials (email, user_id, password_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(email.as_str())
    .bind(user_id)
    .bind(password_hash)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Removes `email`'s credential if it still belongs to `user_id`.
pub async fn delete_if_owned(pool: &PgPool, email: &Email, user_id: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM auth_credentials WHERE email = $1 AND user_id = $2")
        .bind(email.as_str())
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes a user's credential.
pub async fn delete(pool: &PgPool, user_id: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM auth_credentials WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes a user's credential and refresh tokens: they can no longer log
/// in or refresh.
pub async fn delete_user(pool: &PgPool, user_id: Uuid) -> Result<(), Error> {
    delete(pool, user_id).await?;
    sqlx::query("DELETE FROM auth_refresh_tokens WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM auth_reset_requests WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}
