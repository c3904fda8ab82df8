//! Tokens mailed to a user: password reset and email verification.
//!
//! A token is `<id>.<mac>`: the id (the reset request's `token_id`, or the
//! user id for verification) and an HMAC-SHA256 of the purpose and the id
//! under a key derived from the deployment's signing secret. The log names
//! the id, never the token, so the notifier can write the mail from the
//! event while neither the log, Kafka nor an auditor ever holds a usable
//! secret. Whether a token is still good (unspent, unexpired) is the user
//! stream's business, not the token's.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// What a token is for; a token of one purpose never opens another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    EmailVerification,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::PasswordReset => b"password-reset",
            Purpose::EmailVerification => b"email-verification",
        }
    }
}

/// Mints and opens mailed tokens.
#[derive(Clone)]
pub struct AccountTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for AccountTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountTokens(<secret>)")
    }
}

impl AccountTokens {
    /// Derives the key from the deployment's signing secret, so that a
    /// leaked access-token key and a leaked mail key are not the same bytes.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"booking-engine account tokens v1");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, purpose: Purpose, id: Uuid) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("32-byte key");
        mac.update(purpose.label());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        mac
    }

    /// The token for `id`.
    pub fn mint(&self, purpose: Purpose, id: Uuid) -> String {
        let tag = self.mac(purpose, id).finalize().into_bytes();
        format!("{}.{}", id.simple(), hex::encode(tag))
    }

    /// The id of a genuine token of this purpose; `None` for anything else.
    /// The comparison is constant-time.
    pub fn open(&self, purpose: Purpose, token: &str) -> Option<Uuid> {
        let (id, tag) = token.trim().split_once('.')?;
        let id = Uuid::try_parse(id).ok()?;
        let tag = hex::decode(tag).ok()?;
        self.mac(purpose, id).verify_slice(&tag).ok()?;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_opens_to_its_id_for_its_purpose_only() {
        let keys = AccountTokens::new(b"a secret of the deployment, long enough");
        let id = Uuid::now_v7();
        let token = keys.mint(Purpose::PasswordReset, id);
        assert_eq!(keys.open(Purpose::PasswordReset, &token), Some(id));
        assert_eq!(keys.open(Purpose::EmailVerification, &token), None);
        let other = AccountTokens::new(b"another deployment's secret");
        assert_eq!(other.open(Purpose::PasswordReset, &token), None);
    }

    #[test]
    fn a_forged_or_garbled_token_opens_to_nothing() {
        let keys = AccountTokens::new(b"secret");
        let id = Uuid::now_v7();
        let token = keys.mint(Purpose::PasswordReset, id);
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", Uuid::now_v7().simple());
        assert_eq!(keys.open(Purpose::PasswordReset, &forged), None);
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        for bad in ["", ".", "x.y", &flipped, &token[..token.len() - 2]] {
            assert_eq!(keys.open(Purpose::PasswordReset, bad), None, "{bad:?}");
        }
    }
}
