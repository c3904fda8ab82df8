//! Authentication and authorisation: access tokens (JWT), the caller
//! extractor, role and ownership rules. Passwords and refresh tokens live in
//! [`password`] and [`refresh`].

pub mod password;
pub mod refresh;
pub mod tokens;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::values::Role;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
}

impl Caller {
    pub fn actor(&self) -> eventstore::Actor {
        eventstore::Actor::user(self.user_id, self.role.as_str())
    }

    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }

    /// Refuses callers without one of `roles` (403).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    /// Refuses anyone but `owner` or a caller with one of `roles` (403).
    pub fn require_self_or(&self, owner: Uuid, roles: &[Role]) -> Result<(), ApiError> {
        if self.user_id == owner || roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("not yours".into()))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into())
            })?;
        state.tokens.verify(token.trim())
    }
}
