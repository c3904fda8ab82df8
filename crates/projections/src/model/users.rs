//! `rm_users`: one row per account, for `me` and the admin's user list.
//! The personal columns are `NULL` once the user is erased.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The columns of [`UserRow`], in its order.
pub const USER_COLUMNS: &str = "u.user_id, u.email, u.full_name, u.phone, u.role, u.status, \
     u.suspension_reason, u.email_verified, u.registered_at, u.updated_at";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: Uuid,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    /// As `Role::as_str` spells it.
    pub role: String,
    /// As [`UserStatus::as_str`] spells it.
    pub status: String,
    pub suspension_reason: Option<String>,
    /// Whether the user proved they read mail at the address.
    pub email_verified: bool,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An account's status as the read model stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Active,
    Suspended,
    Erased,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "ACTIVE",
            UserStatus::Suspended => "SUSPENDED",
            UserStatus::Erased => "ERASED",
        }
    }
}

impl std::str::FromStr for UserStatus {
    type Err = super::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACTIVE" => Ok(UserStatus::Active),
            "SUSPENDED" => Ok(UserStatus::Suspended),
            "ERASED" => Ok(UserStatus::Erased),
            other => Err(super::UnknownValue {
                kind: "user status",
                value: other.to_owned(),
            }),
        }
    }
}

/// Escapes `%`, `_` and `\` so `text` matches itself in a `LIKE` pattern.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
