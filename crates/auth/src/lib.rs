//! Who is calling and what they may do: access tokens (JWT), passwords
//! (argon2id), refresh tokens, login credentials, and the role and
//! ownership rules every API applies.
//!
//! Nothing here speaks HTTP: the REST and GraphQL crates read the
//! `Authorization` header with [`bearer_token`] and turn an [`Error`] into
//! their own answer.
//!
//! # Layout
//! - [`tokens`]: issuing and verifying access tokens.
//! - [`password`]: hashing, verifying and the strength rule.
//! - [`refresh`]: opaque refresh tokens, rotated in families.
//! - [`sessions`]: sessions ended at once in every process.
//! - [`limiter`]: failed-login limits.
//! - [`credentials`]: the email and password hash of each account.
//! - [`MIGRATOR`]: this crate's tables (`auth_*`).

pub mod account_tokens;
pub mod credentials;
pub mod limiter;
pub mod password;
pub mod refresh;
pub mod sessions;
pub mod tokens;

use domain::values::Role;
use sqlx::migrate::Migrator;
use uuid::Uuid;

pub use tokens::TokenKeys;

/// The `auth_*` tables.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why a caller is turned away, or what failed while checking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid credentials: answered as 401.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right: answered as 403.
    #[error("{0}")]
    Forbidden(String),
    #[error("auth storage: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The authenticated caller: who, and in which role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
    /// The session the caller's token belongs to.
    pub session: Uuid,
}

impl Caller {
    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }

    /// Refuses callers without one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    /// Refuses anyone but `owner` or a caller with one of `roles`.
    pub fn require_self_or(&self, owner: Uuid, roles: &[Role]) -> Result<()> {
        if self.user_id == owner || roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::Forbidden("not yours".into()))
        }
    }
}

/// The token of an `Authorization` header value: `Bearer <token>`, the
/// scheme matched without regard to case (RFC 9110 §11.1). `None` for any
/// other scheme or an empty token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn it_should_read_the_bearer_scheme_in_any_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
