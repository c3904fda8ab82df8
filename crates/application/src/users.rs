//! Users: profile, role, suspension, erasure.
//!
//! A customer may only touch their own account (refused before anything is
//! read, so ids of other users are not confirmed); an admin may touch any,
//! and learns "not found" for ids that are not users.

use domain::user::{User, UserCommand, UserStatus};
use domain::values::Role;
use domain::Aggregate;
use serde_json::json;
use uuid::Uuid;

use crate::error::{user_error, CommandError, CommandResult};
use crate::{CommandContext, Outcome, Services};
use auth::Caller;

impl Services {
    /// Edits a profile (self or admin). `None` keeps a field; an empty
    /// phone removes the number.
    pub async fn update_profile(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        full_name: Option<String>,
        phone: Option<String>,
    ) -> CommandResult<Outcome> {
        caller.require_self_or(id, &[Role::Admin])?;
        let now = ctx.now;
        self.commands
            .execute::<User, _, _>(
                &ctx,
                id,
                |u| {
                    u.decide(UserCommand::UpdateProfile {
                        full_name: full_name.clone(),
                        phone: phone.clone(),
                        now,
                    })
                    .map_err(user_error)
                },
                |u| {
                    let personal = u.personal.known();
                    json!({
                        "user_id": id,
                        "full_name": personal.map(|p| &p.full_name),
                        "phone": personal.and_then(|p| p.phone.as_ref()),
                    })
                },
            )
            .await
    }

    /// Changes a user's role (admin).
    pub async fn change_role(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        role: Role,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        // An admin demoting themselves could leave nobody able to undo it.
        if id == caller.user_id && role != Role::Admin {
            return Err(CommandError::InvalidState(
                "admins cannot change their own role".into(),
            ));
        }
        self.set_role(&ctx, id, role).await
    }

    pub(crate) async fn set_role(
        &self,
        ctx: &CommandContext,
        id: Uuid,
        role: Role,
    ) -> CommandResult<Outcome> {
        let now = ctx.now;
        let changed = std::sync::atomic::AtomicBool::new(false);
        let outcome = self
            .commands
            .execute::<User, _, _>(
                ctx,
                id,
                |u| {
                    let events = u
                        .decide(UserCommand::ChangeRole { role, now })
                        .map_err(user_error)?;
                    changed.store(!events.is_empty(), std::sync::atomic::Ordering::Relaxed);
                    Ok(events)
                },
                |u| json!({ "user_id": id, "role": u.role }),
            )
            .await?;
        // Tokens carry the role: the old ones must not outlive a change.
        if changed.load(std::sync::atomic::Ordering::Relaxed) && !outcome.replayed {
            self.end_sessions_of(id).await?;
        }
        Ok(outcome)
    }

    /// Suspends a user (admin): they cannot log in, and their sessions end
    /// at once, so every command of theirs is refused. Suspending a
    /// suspended user records nothing and ends any session again.
    pub async fn suspend_user(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        reason: String,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        // An admin locking themselves out could leave nobody to undo it.
        if id == caller.user_id {
            return Err(CommandError::InvalidState(
                "admins cannot suspend themselves".into(),
            ));
        }
        let now = ctx.now;
        let outcome = self
            .commands
            .execute::<User, _, _>(
                &ctx,
                id,
                |u| {
                    u.decide(UserCommand::Suspend {
                        reason: reason.clone(),
                        now,
                    })
                    .map_err(user_error)
                },
                |u| json!({ "user_id": id, "status": u.status }),
            )
            .await?;
        // After the event: a login that read the account as active before
        // it has issued its session by now, so this ends it too.
        self.end_sessions_of(id).await?;
        tracing::info!("user suspended");
        Ok(outcome)
    }

    /// Reactivates a suspended user (admin): they may log in again.
    pub async fn reactivate_user(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        let now = ctx.now;
        self.commands
            .execute::<User, _, _>(
                &ctx,
                id,
                |u| {
                    u.decide(UserCommand::Reactivate { now })
                        .map_err(user_error)
                },
                |u| json!({ "user_id": id, "status": u.status }),
            )
            .await
    }

    /// Erases a user (self or admin): their personal data is
    /// crypto-shredded, their login and sessions are deleted; their
    /// bookings stay for accounting. Erasing an erased user is a no-op that
    /// finishes any clean-up a failure interrupted.
    pub async fn erase_user(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
    ) -> CommandResult<Outcome> {
        caller.require_self_or(id, &[Role::Admin])?;
        let now = ctx.now;
        let outcome = self
            .commands
            .execute::<User, _, _>(
                &ctx,
                id,
                |u| match u.status {
                    UserStatus::Erased => Ok(vec![]),
                    _ => u.decide(UserCommand::Erase { now }).map_err(user_error),
                },
                |_| json!({ "user_id": id }),
            )
            .await?;
        // After the event, so a failure here leaves an erased user whose
        // clean-up a repeated erasure completes.
        self.end_sessions_of(id).await?;
        self.sealer.shred(id).await?;
        auth::credentials::delete_user(&self.pool, id).await?;
        tracing::info!("user erased");
        Ok(outcome)
    }
}
