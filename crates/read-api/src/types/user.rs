//! Accounts: `me` and the admin's `users` / `user`.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, Object, Result, ID};
use chrono::{DateTime, Utc};
use projections::model::users::UserRow;

use super::{id, Booking, BookingStatus};
use crate::cursor::page_cost;
use crate::error::OrInternal;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Customer,
    Agent,
    Analyst,
    Auditor,
    Admin,
}
mirror!(Role <=> domain::values::Role { Customer, Agent, Analyst, Auditor, Admin });

/// Whether an account may log in.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Active,
    /// Locked by an admin: no login, no session.
    Suspended,
    /// Personal data crypto-shredded; bookings stay for accounting.
    Erased,
}
mirror!(UserStatus <=> projections::model::users::UserStatus { Active, Suspended, Erased });

/// An account. Its personal fields (`email`, `fullName`, `phone`) are null
/// once the user is erased.
pub struct User(pub UserRow);

#[Object]
impl User {
    async fn id(&self) -> ID {
        id(self.0.user_id)
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn full_name(&self) -> Option<&str> {
        self.0.full_name.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn role(&self) -> Result<Role> {
        self.0
            .role
            .parse::<domain::values::Role>()
            .map(Role::from)
            .or_internal()
    }
    async fn status(&self) -> Result<UserStatus> {
        self.0
            .status
            .parse::<projections::model::users::UserStatus>()
            .map(UserStatus::from)
            .or_internal()
    }
    /// Whether the personal data is gone.
    async fn erased(&self) -> bool {
        self.0.status == projections::model::users::UserStatus::Erased.as_str()
    }
    /// Why the account is suspended, while it is.
    async fn suspension_reason(&self) -> Option<&str> {
        self.0.suspension_reason.as_deref()
    }
    /// Whether the user followed the link mailed at registration.
    /// Unverified accounts may log in and book all the same.
    async fn email_verified(&self) -> bool {
        self.0.email_verified
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.registered_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The bookings this user made (as the customer), newest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn bookings(
        &self,
        ctx: &Context<'_>,
        status: Option<BookingStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Booking>> {
        crate::query::list_bookings(ctx, Some(self.0.user_id), None, status, first, after).await
    }
}
