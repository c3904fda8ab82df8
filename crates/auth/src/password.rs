//! Password hashing (argon2id) and the strength rule.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool and at most
//! [`MAX_CONCURRENT_HASHES`] at a time: a burst of logins queues instead of
//! starving the runtime or exhausting memory (each hash takes ~19 MiB).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::rngs::OsRng;
use serde::{Deserialize, Deserializer};
use tokio::sync::Semaphore;

use crate::Error;

/// The shortest accepted password, in characters.
pub const MIN_LEN: usize = 12;
/// The longest accepted password, in characters: bounds the hashing work a
/// request can ask for.
pub const MAX_LEN: usize = 1024;
/// Hashes computed at the same time.
pub const MAX_CONCURRENT_HASHES: usize = 4;

static HASHING: Semaphore = Semaphore::const_new(MAX_CONCURRENT_HASHES);

/// A password as it arrived: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The plaintext, for hashing and checking only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// Why a password is refused; the message is shown to the user.
pub fn check_strength(password: &str, email: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err("password must be at least 12 characters");
    }
    if len > MAX_LEN {
        return Err("password must be at most 1024 characters");
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_numeric()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|&&present| present).count() < 2 {
        return Err("password must mix at least two kinds of characters (lower case, upper case, digits, symbols or spaces)");
    }
    if password.trim().to_lowercase() == email.trim().to_lowercase() {
        return Err("password must not be the email address");
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    // argon2id v19 with the crate's (OWASP-recommended) defaults.
    Argon2::default()
}

/// Hashes a password into a PHC string (`$argon2id$v=19$...`).
pub async fn hash(password: &Password) -> Result<String, Error> {
    let password = password.clone();
    blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
    })
    .await
}

/// Checks a password against a stored hash. Without a stored hash (unknown
/// user) it checks against a dummy one and answers `false`, so both cases
/// take about as long and timing does not tell which emails exist.
pub async fn verify(password: &Password, stored: Option<String>) -> Result<bool, Error> {
    let password = password.clone();
    blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            tracing::error!("a stored password hash does not parse");
            return Ok(false);
        };
        let ok = hasher()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok();
        Ok(ok && known)
    })
    .await
}

/// A hash of a random password, with the same parameters as real ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let random = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(random.as_str().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

async fn blocking<T, F>(f: F) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("password hashing stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_refuse_weak_passwords() {
        let email = "ada@example.com";
        assert!(check_strength("short1A", email).is_err());
        assert!(check_strength("alllowercaseletters", email).is_err());
        assert!(check_strength("123456789012345", email).is_err());
        assert!(check_strength("Ada@Example.com", "ada@example.com").is_err());
        assert!(check_strength("correct horse battery staple", email).is_ok());
        assert!(check_strength("Tr0ub4dor&3xyz", email).is_ok());
    }

    #[test]
    fn it_should_never_print_a_password() {
        let p = Password::new("hunter2hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn it_should_verify_what_it_hashed() {
        let p = Password::new("correct horse battery staple");
        let h = hash(&p).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&p, Some(h.clone())).await.unwrap());
        assert!(!verify(&Password::new("wrong password!!"), Some(h))
            .await
            .unwrap());
        assert!(!verify(&p, None).await.unwrap());
    }
}
