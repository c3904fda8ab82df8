//! Users: registration, profile, role, suspension and erasure (`user-…`
//! streams).
//!
//! Credentials are not domain data: password hashes live in an
//! infrastructure table keyed by user id, so erasing a user never has to
//! rewrite the log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::event::{Aggregate, DomainEvent, UpcastError};
use crate::values::{Email, Personal, Role};

pub const MAX_NAME_LEN: usize = 100;
/// Longest suspension reason, in characters.
pub const MAX_REASON_LEN: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register {
        user_id: Uuid,
        email: Email,
        full_name: String,
        role: Role,
        now: DateTime<Utc>,
    },
    /// `None` leaves a field as it is; an empty `phone` removes the number.
    UpdateProfile {
        full_name: Option<String>,
        phone: Option<String>,
        now: DateTime<Utc>,
    },
    ChangeRole {
        role: Role,
        now: DateTime<Utc>,
    },
    Erase {
        now: DateTime<Utc>,
    },
    /// An admin locks the account: no login, no session, no command.
    Suspend {
        reason: String,
        now: DateTime<Utc>,
    },
    /// An admin lifts a suspension.
    Reactivate {
        now: DateTime<Utc>,
    },
    /// Someone asked for a reset link for this account. The token itself is
    /// never in the log: it is derived from `token_id` with a server key, so
    /// the mail can be written from the event without the log holding a
    /// secret. A newer request replaces an older one.
    RequestPasswordReset {
        token_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// A reset token was presented; valid once, before it expires, and only
    /// the newest one.
    ResetPassword {
        token_id: Uuid,
        now: DateTime<Utc>,
    },
    /// The user proved they read mail at their address.
    VerifyEmail {
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPersonal {
    pub email: Email,
    pub full_name: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub subject: Uuid,
    /// Added in v2; v1 users were all customers (see [`UserEvent::upcast`]).
    pub role: Role,
    pub personal: Personal<UserPersonal>,
    pub registered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfileUpdated {
    pub user_id: Uuid,
    pub subject: Uuid,
    /// The whole profile after the change, so a reader never has to merge.
    pub personal: Personal<UserPersonal>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRoleChanged {
    pub user_id: Uuid,
    pub role: Role,
    pub previous_role: Role,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserErased {
    pub user_id: Uuid,
    /// Whose key infrastructure must shred.
    pub subject: Uuid,
    pub erased_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSuspended {
    pub user_id: Uuid,
    /// Why, as the admin wrote it: an operational note, not personal data.
    pub reason: String,
    pub suspended_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserReactivated {
    pub user_id: Uuid,
    pub reactivated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetRequested {
    pub user_id: Uuid,
    /// Names the token; the token is `AccountTokens::reset(token_id)`.
    pub token_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordReset {
    pub user_id: Uuid,
    /// The token spent.
    pub token_id: Uuid,
    pub reset_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailVerified {
    pub user_id: Uuid,
    pub verified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    UserRegistered(UserRegistered),
    UserProfileUpdated(UserProfileUpdated),
    UserRoleChanged(UserRoleChanged),
    UserErased(UserErased),
    UserSuspended(UserSuspended),
    UserReactivated(UserReactivated),
    PasswordResetRequested(PasswordResetRequested),
    PasswordReset(PasswordReset),
    EmailVerified(EmailVerified),
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            UserEvent::UserRegistered(_) => "UserRegistered",
            UserEvent::UserProfileUpdated(_) => "UserProfileUpdated",
            UserEvent::UserRoleChanged(_) => "UserRoleChanged",
            UserEvent::UserErased(_) => "UserErased",
            UserEvent::UserSuspended(_) => "UserSuspended",
            UserEvent::UserReactivated(_) => "UserReactivated",
            UserEvent::PasswordResetRequested(_) => "PasswordResetRequested",
            UserEvent::PasswordReset(_) => "PasswordReset",
            UserEvent::EmailVerified(_) => "EmailVerified",
        }
    }

    fn schema_version(&self) -> u16 {
        match self {
            UserEvent::UserRegistered(_) => 2,
            _ => 1,
        }
    }

    /// `UserRegistered` v1 predates roles: everyone who registered then was
    /// a customer.
    fn upcast(event_type: &str, version: u16, mut data: Value) -> Result<Value, UpcastError> {
        match (event_type, version) {
            ("UserRegistered", 1) => {
                let object = data.as_object_mut().ok_or_else(|| UpcastError::Malformed {
                    event_type: event_type.to_owned(),
                    version,
                    reason: "data is not an object".to_owned(),
                })?;
                object
                    .entry("role")
                    .or_insert_with(|| Value::String(Role::Customer.as_str().to_owned()));
                Ok(data)
            }
            (_, 0) => Err(UpcastError::UnknownVersion {
                event_type: event_type.to_owned(),
                version,
            }),
            _ => Ok(data),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user is already registered")]
    AlreadyRegistered,
    #[error("user is not registered")]
    NotRegistered,
    #[error("user has been erased")]
    Erased,
    #[error("full name must be 1 to {MAX_NAME_LEN} characters, none of them control or invisible formatting characters")]
    InvalidFullName,
    #[error("phone number is not valid")]
    InvalidPhone,
    #[error("reason must be 1 to {MAX_REASON_LEN} characters, none of them control or invisible formatting characters")]
    InvalidReason,
    #[error("the token is spent, expired or was never issued")]
    InvalidToken,
}

impl UserError {
    /// The request field a validation error is about, for field-level
    /// problem details.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            UserError::InvalidFullName => Some("full_name"),
            UserError::InvalidPhone => Some("phone"),
            UserError::InvalidReason => Some("reason"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    #[default]
    Unregistered,
    Active,
    /// Locked by an admin until reactivated.
    Suspended,
    Erased,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct User {
    pub user_id: Option<Uuid>,
    pub status: UserStatus,
    pub role: Option<Role>,
    pub personal: Personal<UserPersonal>,
    pub registered_at: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
    /// Why the account is suspended, while it is.
    pub suspension_reason: Option<String>,
    /// The newest unspent reset token and when it expires.
    pub pending_reset: Option<(Uuid, DateTime<Utc>)>,
    pub email_verified: bool,
}

/// Trims, and refuses empty or over-long names (counted in characters) and
/// names with control or invisible formatting characters.
pub fn validate_name(name: &str) -> Option<String> {
    crate::values::plain_text(name, MAX_NAME_LEN).ok()
}

/// A loose E.164-ish check: digits with optional `+`, spaces, dashes,
/// dots and parentheses; 6 to 15 digits.
pub fn validate_phone(phone: &str) -> Option<String> {
    let trimmed = phone.trim();
    let digits = trimmed.chars().filter(char::is_ascii_digit).count();
    let allowed = trimmed.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')') || (c == '+' && i == 0)
    });
    (allowed && (6..=15).contains(&digits)).then(|| trimmed.to_owned())
}

impl User {
    /// The id and role of a registered, not erased user. A suspended
    /// user's account is still managed (an admin edits, re-roles or erases
    /// it): suspension refuses the user, not the account.
    fn existing(&self) -> Result<(Uuid, Role), UserError> {
        match (self.status, self.user_id, self.role) {
            (UserStatus::Active | UserStatus::Suspended, Some(id), Some(role)) => Ok((id, role)),
            (UserStatus::Erased, ..) => Err(UserError::Erased),
            _ => Err(UserError::NotRegistered),
        }
    }

    /// Whether the user may log in and act.
    pub fn may_act(&self) -> bool {
        self.status == UserStatus::Active
    }
}

impl Aggregate for User {
    const CATEGORY: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::Register {
                user_id,
                email,
                full_name,
                role,
                now,
            } => {
                if self.status != UserStatus::Unregistered {
                    return Err(UserError::AlreadyRegistered);
                }
                let full_name = validate_name(&full_name).ok_or(UserError::InvalidFullName)?;
                Ok(vec![UserEvent::UserRegistered(UserRegistered {
                    user_id,
                    subject: user_id,
                    role,
                    personal: Personal::Known(UserPersonal {
                        email,
                        full_name,
                        phone: None,
                    }),
                    registered_at: now,
                })])
            }
            UserCommand::UpdateProfile {
                full_name,
                phone,
                now,
            } => {
                let (user_id, _) = self.existing()?;
                let full_name = full_name
                    .map(|n| validate_name(&n).ok_or(UserError::InvalidFullName))
                    .transpose()?;
                let phone = phone
                    .map(|p| match p.trim() {
                        "" => Ok(None),
                        p => validate_phone(p).map(Some).ok_or(UserError::InvalidPhone),
                    })
                    .transpose()?;
                // A profile whose data was shredded cannot be patched: there
                // is no email left to keep.
                let Some(current) = self.personal.known() else {
                    return Err(UserError::Erased);
                };
                let mut next = current.clone();
                if let Some(full_name) = full_name {
                    next.full_name = full_name;
                }
                if let Some(phone) = phone {
                    next.phone = phone;
                }
                if &next == current {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserProfileUpdated(UserProfileUpdated {
                    user_id,
                    subject: user_id,
                    personal: Personal::Known(next),
                    updated_at: now,
                })])
            }
            UserCommand::ChangeRole { role, now } => {
                let (user_id, previous_role) = self.existing()?;
                if role == previous_role {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserRoleChanged(UserRoleChanged {
                    user_id,
                    role,
                    previous_role,
                    changed_at: now,
                })])
            }
            UserCommand::Erase { now } => {
                let (user_id, _) = self.existing()?;
                Ok(vec![UserEvent::UserErased(UserErased {
                    user_id,
                    subject: user_id,
                    erased_at: now,
                })])
            }
            UserCommand::Suspend { reason, now } => {
                let (user_id, _) = self.existing()?;
                let reason = crate::values::plain_text(&reason, MAX_REASON_LEN)
                    .map_err(|_| UserError::InvalidReason)?;
                // Suspending twice records nothing: the first reason stands.
                if self.status == UserStatus::Suspended {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserSuspended(UserSuspended {
                    user_id,
                    reason,
                    suspended_at: now,
                })])
            }
            UserCommand::Reactivate { now } => {
                let (user_id, _) = self.existing()?;
                if self.status != UserStatus::Suspended {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserReactivated(UserReactivated {
                    user_id,
                    reactivated_at: now,
                })])
            }
            UserCommand::RequestPasswordReset {
                token_id,
                expires_at,
                now,
            } => {
                let (user_id, _) = self.existing()?;
                // A suspended account gets no way back in by mail.
                if !self.may_act() || expires_at <= now {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::PasswordResetRequested(
                    PasswordResetRequested {
                        user_id,
                        token_id,
                        expires_at,
                        requested_at: now,
                    },
                )])
            }
            UserCommand::ResetPassword { token_id, now } => {
                let (user_id, _) = self.existing().map_err(|_| UserError::InvalidToken)?;
                match self.pending_reset {
                    Some((pending, expires_at))
                        if pending == token_id && now < expires_at && self.may_act() =>
                    {
                        Ok(vec![UserEvent::PasswordReset(PasswordReset {
                            user_id,
                            token_id,
                            reset_at: now,
                        })])
                    }
                    _ => Err(UserError::InvalidToken),
                }
            }
            UserCommand::VerifyEmail { now } => {
                let (user_id, _) = self.existing().map_err(|_| UserError::InvalidToken)?;
                if self.email_verified {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::EmailVerified(EmailVerified {
                    user_id,
                    verified_at: now,
                })])
            }
        }
    }

    fn evolve(mut self, event: &UserEvent) -> Self {
        match event {
            UserEvent::UserRegistered(e) => {
                self.user_id = Some(e.user_id);
                self.status = UserStatus::Active;
                self.role = Some(e.role);
                self.personal = e.personal.clone();
                self.registered_at = Some(e.registered_at);
            }
            UserEvent::UserProfileUpdated(e) => self.personal = e.personal.clone(),
            UserEvent::UserRoleChanged(e) => self.role = Some(e.role),
            UserEvent::UserErased(e) => {
                self.status = UserStatus::Erased;
                self.personal = Personal::Erased;
                self.erased_at = Some(e.erased_at);
                self.suspension_reason = None;
            }
            UserEvent::UserSuspended(e) => {
                self.status = UserStatus::Suspended;
                self.suspension_reason = Some(e.reason.clone());
            }
            UserEvent::UserReactivated(_) => {
                self.status = UserStatus::Active;
                self.suspension_reason = None;
            }
            UserEvent::PasswordResetRequested(e) => {
                self.pending_reset = Some((e.token_id, e.expires_at));
            }
            UserEvent::PasswordReset(_) => self.pending_reset = None,
            UserEvent::EmailVerified(_) => self.email_verified = true,
        }
        self
    }
}
