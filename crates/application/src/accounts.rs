//! Accounts: register, log in, refresh, log out, change a password, and
//! the admin bootstrap.
//!
//! Credentials (the normalised email and an argon2id hash) live in auth's
//! `auth_credentials` table, never in events; the user's profile and role
//! live in their `user-…` stream. Registration writes the credential row
//! first (its unique email is the guard against duplicate accounts), then
//! appends `UserRegistered`, and removes the row again if the append fails.
//! A row left behind by a crash between the two (a credential without a
//! stream) is recognised as an orphan and reclaimed.

use std::net::IpAddr;
use std::time::Duration;

use auth::account_tokens::Purpose;
use auth::credentials::{self, Credential};
use auth::limiter::LimitKey;
use auth::password::{self, Password};
use auth::refresh::{self, RefreshToken};
use auth::Caller;
use chrono::Utc;
use domain::user::{validate_name, User, UserCommand, UserStatus, MAX_NAME_LEN};
use domain::values::{Email, Role};
use domain::Aggregate;
use serde_json::json;
use uuid::Uuid;

use crate::error::{user_error, CommandError, CommandResult, FieldError};
use crate::{CommandContext, Outcome, Services};

/// The one answer to every failed login, whatever failed.
const BAD_CREDENTIALS: &str = "invalid email or password";

/// A fresh pair of tokens for a logged-in user.
pub struct Session {
    /// A short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchanged once for the next pair.
    pub refresh_token: RefreshToken,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user_id: Uuid,
    pub role: Role,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token)
            .field("expires_in", &self.expires_in)
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .finish()
    }
}

impl Services {
    /// Registers a customer account. Replies `{user_id}`.
    pub async fn register(
        &self,
        ctx: CommandContext,
        email: &str,
        password: &Password,
        full_name: String,
        client_ip: Option<IpAddr>,
    ) -> CommandResult<Outcome> {
        // Per address, before anything else: accounts cost a slow hash
        // each, which every login shares.
        if let (Some(limiter), Some(ip)) = (&self.registrations, client_ip) {
            if let Err(not_until) = limiter.check_key(&ip) {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                metrics::counter!("booking_registrations_total", "outcome" => "rate_limited")
                    .increment(1);
                return Err(CommandError::RateLimited {
                    retry_after: Duration::from_secs(wait.as_secs().max(1)),
                });
            }
        }
        let mut errors = Vec::new();
        let parsed = match Email::parse(email) {
            Ok(email) => Some(email),
            Err(_) => {
                errors.push(FieldError::new("email", "not a valid email address"));
                None
            }
        };
        if let Err(message) = password::check_strength(password.expose(), email) {
            errors.push(FieldError::new("password", message));
        }
        if validate_name(&full_name).is_none() {
            errors.push(FieldError::new(
                "full_name",
                format!(
                    "must be 1 to {MAX_NAME_LEN} characters, none of them control or \
                     invisible formatting characters"
                ),
            ));
        }
        let Some(email) = parsed.filter(|_| errors.is_empty()) else {
            return Err(CommandError::Invalid(errors));
        };
        let (user_id, outcome) = self
            .create_user(&ctx, email, password, full_name, Role::Customer)
            .await?;
        tracing::Span::current().record("user_id", tracing::field::display(user_id));
        Ok(outcome)
    }

    /// Logs in: a token pair for an email and password. Failed attempts are
    /// limited per email and per client address.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        client_ip: Option<IpAddr>,
    ) -> CommandResult<Session> {
        let parsed = Email::parse(email).ok();
        let email_key = LimitKey::email(
            &parsed
                .as_ref()
                .map_or_else(|| email.trim().to_lowercase(), |e| e.to_string()),
        );
        let mut keys = vec![email_key];
        keys.extend(client_ip.map(LimitKey::Ip));
        // Counted before the (slow) password check: parallel guesses queue
        // on the same bucket as sequential ones.
        if let Err(wait) = self.login_limiter.attempt(&keys) {
            metrics::counter!("booking_logins_total", "outcome" => "rate_limited").increment(1);
            return Err(CommandError::RateLimited {
                retry_after: Duration::from_secs_f64(wait.as_secs_f64().ceil().max(1.0)),
            });
        }

        let credential = match &parsed {
            Some(email) => credentials::find(&self.pool, email).await?,
            None => None,
        };
        let verified = password::verify(
            password,
            credential.as_ref().map(|c| c.password_hash.clone()),
        )
        .await?;
        let Some(user_id) = credential.filter(|_| verified).map(|c| c.user_id) else {
            metrics::counter!("booking_logins_total", "outcome" => "failed").increment(1);
            return Err(CommandError::Unauthorized(BAD_CREDENTIALS.into()));
        };
        // The session is opened before the account's status is read: a
        // suspension that commits after the read revokes every session it
        // finds, this one included; one that committed before it is seen.
        let issued = refresh::issue(&self.pool, user_id, self.settings.refresh_ttl).await?;
        let user = self.commands.load::<User>(user_id).await?.state;
        let refused = match (user.status, user.role) {
            (UserStatus::Active, Some(role)) => {
                self.login_limiter.succeeded(&keys);
                tracing::Span::current().record("user_id", tracing::field::display(user_id));
                metrics::counter!("booking_logins_total", "outcome" => "ok").increment(1);
                return self.session(user_id, role, issued);
            }
            // Told apart from a wrong password only once the password is
            // right: the account's state is no secret from its owner.
            (UserStatus::Suspended, _) => {
                metrics::counter!("booking_logins_total", "outcome" => "suspended").increment(1);
                CommandError::AccountSuspended
            }
            _ => {
                metrics::counter!("booking_logins_total", "outcome" => "failed").increment(1);
                CommandError::Unauthorized(BAD_CREDENTIALS.into())
            }
        };
        refresh::revoke_family_of(&self.pool, &issued.token, user_id).await?;
        Err(refused)
    }

    /// Changes the caller's password: the current one must be given, the
    /// new one obeys the registration rules. Every other session of the
    /// caller ends; the one that asked stays. Wrong current passwords count
    /// against the account's failed-login limit.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &Password,
        new: &Password,
    ) -> CommandResult<()> {
        let Some((email, hash)) = credentials::find_by_user(&self.pool, caller.user_id).await?
        else {
            return Err(CommandError::Unauthorized(
                "this account can no longer log in".into(),
            ));
        };
        let keys = [LimitKey::email(&email)];
        if let Err(wait) = self.login_limiter.attempt(&keys) {
            return Err(CommandError::RateLimited {
                retry_after: Duration::from_secs_f64(wait.as_secs_f64().ceil().max(1.0)),
            });
        }
        if !password::verify(current, Some(hash.clone())).await? {
            metrics::counter!("booking_password_changes_total", "outcome" => "wrong_password")
                .increment(1);
            return Err(CommandError::invalid(
                "current_password",
                "is not the account's password",
            ));
        }
        self.login_limiter.succeeded(&keys);
        if let Err(message) = password::check_strength(new.expose(), &email) {
            return Err(CommandError::invalid("new_password", message));
        }
        if new.expose() == current.expose() {
            return Err(CommandError::invalid(
                "new_password",
                "must differ from the current password",
            ));
        }
        let new_hash = password::hash(new).await?;
        if !credentials::replace_hash(&self.pool, caller.user_id, &hash, &new_hash).await? {
            return Err(CommandError::Concurrency(
                "the password was changed meanwhile; log in again".into(),
            ));
        }
        let ended =
            refresh::revoke_user_except(&self.pool, caller.user_id, Some(caller.session)).await?;
        self.note_ended(&ended);
        metrics::counter!("booking_password_changes_total", "outcome" => "ok").increment(1);
        tracing::info!(sessions_ended = ended.len(), "password changed");
        Ok(())
    }

    /// Asks for a password-reset mail. Answers the same whether or not the
    /// email has an account (so it tells nobody which addresses do). The
    /// token is derived from a fresh request id the user's stream records;
    /// the notifier mails it. A newer request supersedes older ones; a
    /// suspended or erased account gets none.
    pub async fn request_password_reset(
        &self,
        ctx: CommandContext,
        email: &str,
    ) -> CommandResult<()> {
        let Ok(email) = Email::parse(email) else {
            return Err(CommandError::invalid("email", "not a valid email address"));
        };
        let Some(credential) = credentials::find(&self.pool, &email).await? else {
            metrics::counter!("booking_password_resets_total", "outcome" => "unknown_email")
                .increment(1);
            return Ok(());
        };
        let user_id = credential.user_id;
        let token_id = Uuid::new_v4();
        // First: a token whose request the stream never records opens
        // nothing, while an event without its row would be a mailed token
        // that cannot be used.
        credentials::record_reset(&self.pool, token_id, user_id).await?;
        let now = ctx.now;
        let expires_at = now
            + chrono::Duration::from_std(self.settings.reset_token_ttl)
                .unwrap_or(chrono::Duration::hours(1));
        let refused = self
            .commands
            .execute::<User, _, _>(
                &ctx,
                user_id,
                |u| {
                    u.decide(UserCommand::RequestPasswordReset {
                        token_id,
                        expires_at,
                        now,
                    })
                    .map_err(user_error)
                },
                |_| json!({}),
            )
            .await;
        match refused {
            Ok(_) => {
                metrics::counter!("booking_password_resets_total", "outcome" => "requested")
                    .increment(1);
                Ok(())
            }
            // An account erased meanwhile: the same silence as no account.
            Err(CommandError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sets a new password with a mailed reset token: once, before it
    /// expires, and only the newest one. Every session of the user ends.
    /// The token is spent (the event appended) before the password is set,
    /// so two racing confirmations cannot both succeed; a crash between
    /// the two leaves the old password and a spent token, and the user
    /// asks again.
    pub async fn confirm_password_reset(
        &self,
        ctx: CommandContext,
        token: &str,
        new: &Password,
    ) -> CommandResult<()> {
        let token_id = self
            .account_tokens
            .open(Purpose::PasswordReset, token)
            .ok_or(CommandError::InvalidToken)?;
        let Some(user_id) = credentials::reset_owner(&self.pool, token_id).await? else {
            return Err(CommandError::InvalidToken);
        };
        let Some((email, _)) = credentials::find_by_user(&self.pool, user_id).await? else {
            return Err(CommandError::InvalidToken);
        };
        if let Err(message) = password::check_strength(new.expose(), &email) {
            return Err(CommandError::invalid("new_password", message));
        }
        let new_hash = password::hash(new).await?;
        let now = ctx.now;
        self.commands
            .execute::<User, _, _>(
                &ctx,
                user_id,
                |u| {
                    u.decide(UserCommand::ResetPassword { token_id, now })
                        .map_err(user_error)
                },
                |_| json!({}),
            )
            .await?;
        credentials::set_hash(&self.pool, user_id, &new_hash).await?;
        self.end_sessions_of(user_id).await?;
        metrics::counter!("booking_password_resets_total", "outcome" => "reset").increment(1);
        tracing::info!(%user_id, "password reset");
        Ok(())
    }

    /// Marks the account's email verified with the token mailed at
    /// registration. Verifying twice is fine.
    pub async fn verify_email(&self, ctx: CommandContext, token: &str) -> CommandResult<()> {
        let user_id = self
            .account_tokens
            .open(Purpose::EmailVerification, token)
            .ok_or(CommandError::InvalidToken)?;
        let now = ctx.now;
        self.commands
            .execute::<User, _, _>(
                &ctx,
                user_id,
                |u| {
                    u.decide(UserCommand::VerifyEmail { now })
                        .map_err(user_error)
                },
                |_| json!({}),
            )
            .await?;
        Ok(())
    }

    /// Exchanges a refresh token for a new pair. The presented token is
    /// spent; presenting it again revokes its whole family.
    pub async fn refresh(&self, token: &RefreshToken) -> CommandResult<Session> {
        let issued = match refresh::rotate(&self.pool, token, self.settings.refresh_ttl).await? {
            Ok(issued) => issued,
            Err(reason) => {
                tracing::info!(%reason, "refresh refused");
                return Err(auth::Error::from(reason).into());
            }
        };
        let user_id = issued.user_id;
        tracing::Span::current().record("user_id", tracing::field::display(user_id));
        let Some(role) = self.active_role(user_id).await? else {
            self.end_sessions_of(user_id).await?;
            return Err(auth::Error::from(refresh::RefreshError::Revoked).into());
        };
        self.session(user_id, role, issued)
    }

    /// Logs out: revokes the refresh token's family if it is the caller's,
    /// and ends that session: its access tokens stop working at once.
    /// Another user's (or an unknown) refresh token is left alone with the
    /// same answer: logging out is idempotent and tells nothing about
    /// tokens.
    pub async fn logout(&self, caller: &Caller, token: &RefreshToken) -> CommandResult<()> {
        let ended = refresh::revoke_family_of(&self.pool, token, caller.user_id).await?;
        self.note_ended(&ended);
        tracing::debug!(sessions = ended.len(), "logout");
        Ok(())
    }

    /// Ends every session of a user: their access and refresh tokens stop
    /// working at once, here and, within a second, in every process.
    pub async fn end_sessions_of(&self, user_id: uuid::Uuid) -> CommandResult<()> {
        let ended = refresh::revoke_user(&self.pool, user_id).await?;
        self.note_ended(&ended);
        Ok(())
    }

    fn note_ended(&self, sessions: &[uuid::Uuid]) {
        let now = Utc::now();
        self.tokens
            .revocations
            .note(sessions.iter().map(|s| (*s, now)));
    }

    /// Makes sure an admin with this email exists: registers it (with this
    /// password) when the email is unknown, or gives the existing account
    /// the admin role. An existing account keeps its password. Safe to call
    /// on every start-up and from several processes at once.
    pub async fn ensure_admin(&self, email: &str, password: &str) -> CommandResult<Uuid> {
        let email = Email::parse(email)
            .map_err(|_| CommandError::invalid("email", "not a valid email address"))?;
        let password = Password::new(password);
        password::check_strength(password.expose(), email.as_str())
            .map_err(|m| CommandError::invalid("password", m))?;
        let ctx = CommandContext {
            correlation_id: Uuid::now_v7(),
            actor: eventstore::Actor::system("bootstrap"),
            idempotency: None,
            data_subject: None,
            now: Utc::now(),
        };
        for _ in 0..20 {
            if let Some(credential) = credentials::find(&self.pool, &email).await? {
                let loaded = self.commands.load::<User>(credential.user_id).await?;
                // A suspended bootstrap admin stays suspended: another admin
                // decided it, and start-up must not fail over it.
                if matches!(
                    loaded.state.status,
                    UserStatus::Active | UserStatus::Suspended
                ) {
                    if loaded.state.status == UserStatus::Suspended {
                        tracing::warn!(user_id = %credential.user_id, "bootstrap: the admin account is suspended");
                    }
                    if loaded.state.role != Some(Role::Admin) {
                        self.set_role(&ctx, credential.user_id, Role::Admin).await?;
                        tracing::info!(user_id = %credential.user_id, "bootstrap: made the admin an admin");
                    }
                    return Ok(credential.user_id);
                }
                // Being registered right now, or an orphan: `create_user` tells.
            }
            match self
                .create_user(
                    &ctx,
                    email.clone(),
                    &password,
                    "Administrator".into(),
                    Role::Admin,
                )
                .await
            {
                Ok((user_id, _)) => {
                    tracing::info!(%user_id, "bootstrap: registered the admin");
                    return Ok(user_id);
                }
                Err(CommandError::EmailTaken) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => return Err(e),
            }
        }
        Err(CommandError::Unavailable(
            "the admin account is being created by someone else; retry".into(),
        ))
    }

    /// Writes the credential row, then the `UserRegistered` event; undoes
    /// the row when the event cannot be appended.
    async fn create_user(
        &self,
        ctx: &CommandContext,
        email: Email,
        password: &Password,
        full_name: String,
        role: Role,
    ) -> CommandResult<(Uuid, Outcome)> {
        // Cheap early answer before the expensive hash; the insert below is
        // what actually guards uniqueness.
        if let Some(existing) = credentials::find(&self.pool, &email).await? {
            if !self.is_orphan(&existing).await? {
                return Err(CommandError::EmailTaken);
            }
        }
        let hash = password::hash(password).await?;
        let user_id = Uuid::now_v7();
        self.insert_credential(&email, user_id, &hash).await?;
        let now = ctx.now;
        let result = self
            .commands
            .execute::<User, _, _>(
                ctx,
                user_id,
                |u| {
                    u.decide(UserCommand::Register {
                        user_id,
                        email: email.clone(),
                        full_name: full_name.clone(),
                        role,
                        now,
                    })
                    .map_err(user_error)
                },
                |_| json!({ "user_id": user_id }),
            )
            .await;
        match result {
            // A replay is the reply of a twin request that registered first.
            Ok(outcome) if !outcome.replayed => Ok((user_id, outcome)),
            other => {
                if let Err(e) = credentials::delete(&self.pool, user_id).await {
                    tracing::error!(%user_id, error = %e, "could not undo a credential row");
                }
                other.map(|o| (user_id, o))
            }
        }
    }

    /// A credential row left behind by a crash: old, and without its stream.
    async fn is_orphan(&self, credential: &Credential) -> CommandResult<bool> {
        Ok(credential.old
            && self
                .commands
                .load::<User>(credential.user_id)
                .await?
                .version
                == 0)
    }

    async fn insert_credential(
        &self,
        email: &Email,
        user_id: Uuid,
        password_hash: &str,
    ) -> CommandResult<()> {
        for _ in 0..3 {
            if credentials::insert(&self.pool, email, user_id, password_hash).await? {
                return Ok(());
            }
            let existing = credentials::find(&self.pool, email).await?;
            let orphan = match &existing {
                Some(c) => self.is_orphan(c).await?,
                None => false,
            };
            match existing {
                Some(c) if orphan => {
                    tracing::warn!(orphan = %c.user_id, "reclaiming a credential row without a user");
                    credentials::delete_if_owned(&self.pool, email, c.user_id).await?;
                }
                Some(_) => return Err(CommandError::EmailTaken),
                // Deleted in between (an erasure or an undo): try again.
                None => {}
            }
        }
        Err(CommandError::EmailTaken)
    }

    /// The user's role if they may log in (registered, not suspended, not
    /// erased).
    async fn active_role(&self, user_id: Uuid) -> CommandResult<Option<Role>> {
        let user = self.commands.load::<User>(user_id).await?.state;
        Ok(match (user.status, user.role) {
            (UserStatus::Active, Some(role)) => Some(role),
            _ => None,
        })
    }

    /// The token pair of a session (a refresh token family).
    fn session(
        &self,
        user_id: Uuid,
        role: Role,
        issued: refresh::Issued,
    ) -> CommandResult<Session> {
        Ok(Session {
            access_token: self.tokens.issue(user_id, role, issued.family_id)?,
            refresh_token: issued.token,
            expires_in: self.tokens.access_ttl.as_secs(),
            user_id,
            role,
        })
    }
}
