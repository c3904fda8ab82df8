//! Projector `users`: accounts (`rm_users`), with the profile opened from
//! the sealed personal data, for `me` and the admin's user search.
//!
//! User events are few (a registration, the odd profile edit), so each is
//! written as it comes rather than batched like the booking projector's.

use async_trait::async_trait;
use domain::user::UserEvent;
use sqlx::PgConnection;

use crate::event::{Decoded, Event};
use crate::model::users::UserStatus;
use crate::projector::Projector;
use crate::Result;

pub struct UsersProjector;

#[async_trait]
impl Projector for UsersProjector {
    fn name(&self) -> &'static str {
        "users"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["user"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_users"]
    }
    fn needs_personal(&self) -> bool {
        true
    }
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> Result<()> {
        for d in events {
            let Event::User(e) = &d.event else { continue };
            match e {
                UserEvent::UserRegistered(r) => {
                    let p = r.personal.known();
                    sqlx::query(
                        "INSERT INTO rm_users (user_id, email, full_name, phone, role, status, \
                                               registered_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                         ON CONFLICT (user_id) DO NOTHING",
                    )
                    .bind(r.user_id)
                    .bind(p.map(|p| p.email.as_str().to_owned()))
                    .bind(p.map(|p| p.full_name.clone()))
                    .bind(p.and_then(|p| p.phone.clone()))
                    .bind(r.role.as_str())
                    .bind(UserStatus::Active.as_str())
                    .bind(r.registered_at)
                    .execute(&mut *conn)
                    .await?;
                }
                UserEvent::UserProfileUpdated(u) => {
                    // Shredded meanwhile (a replay after erasure): nothing
                    // to show, and the erasure blanked the row already.
                    let Some(p) = u.personal.known() else {
                        continue;
                    };
                    sqlx::query(
                        "UPDATE rm_users SET email = $2, full_name = $3, phone = $4, \
                                updated_at = $5 \
                         WHERE user_id = $1 AND status <> $6",
                    )
                    .bind(u.user_id)
                    .bind(p.email.as_str())
                    .bind(&p.full_name)
                    .bind(&p.phone)
                    .bind(u.updated_at)
                    .bind(UserStatus::Erased.as_str())
                    .execute(&mut *conn)
                    .await?;
                }
                UserEvent::UserRoleChanged(c) => {
                    sqlx::query(
                        "UPDATE rm_users SET role = $2, updated_at = $3 WHERE user_id = $1",
                    )
                    .bind(c.user_id)
                    .bind(c.role.as_str())
                    .bind(c.changed_at)
                    .execute(&mut *conn)
                    .await?;
                }
                UserEvent::UserSuspended(s) => {
                    sqlx::query(
                        "UPDATE rm_users SET status = $2, suspension_reason = $3, updated_at = $4 \
                         WHERE user_id = $1",
                    )
                    .bind(s.user_id)
                    .bind(UserStatus::Suspended.as_str())
                    .bind(&s.reason)
                    .bind(s.suspended_at)
                    .execute(&mut *conn)
                    .await?;
                }
                UserEvent::UserReactivated(r) => {
                    sqlx::query(
                        "UPDATE rm_users SET status = $2, suspension_reason = NULL, \
                                updated_at = $3 \
                         WHERE user_id = $1",
                    )
                    .bind(r.user_id)
                    .bind(UserStatus::Active.as_str())
                    .bind(r.reactivated_at)
                    .execute(&mut *conn)
                    .await?;
                }
                UserEvent::EmailVerified(v) => {
                    sqlx::query(
                        "UPDATE rm_users SET email_verified = true, updated_at = $2 \
                         WHERE user_id = $1",
                    )
                    .bind(v.user_id)
                    .bind(v.verified_at)
                    .execute(&mut *conn)
                    .await?;
                }
                // Reset requests and resets show in no read model: they are
                // the user stream's (and the notifier's) business.
                UserEvent::PasswordResetRequested(_) | UserEvent::PasswordReset(_) => {}
                UserEvent::UserErased(e) => {
                    sqlx::query(
                        "UPDATE rm_users SET status = $2, email = NULL, full_name = NULL, \
                                phone = NULL, suspension_reason = NULL, updated_at = $3 \
                         WHERE user_id = $1",
                    )
                    .bind(e.user_id)
                    .bind(UserStatus::Erased.as_str())
                    .bind(e.erased_at)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        Ok(())
    }
}
