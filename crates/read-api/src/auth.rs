//! Who is asking. The same Bearer JWT as the REST API ([`auth::TokenKeys`]):
//! no token is an anonymous [`Viewer`], a bad or expired one is refused with
//! `UNAUTHORIZED` before anything runs.

use ::auth::{Caller, TokenKeys};
use async_graphql::Context;
use axum::http::HeaderMap;
use domain::values::Role;
use uuid::Uuid;

use crate::error::{error, Code};

/// The caller of one request (or one websocket connection); `None` when
/// anonymous.
#[derive(Debug, Clone, Copy, Default)]
pub struct Viewer(pub Option<Caller>);

impl Viewer {
    pub fn of(ctx: &Context<'_>) -> Viewer {
        ctx.data_opt::<Viewer>().copied().unwrap_or_default()
    }

    /// The caller, or `UNAUTHORIZED` when anonymous.
    pub fn user(&self) -> async_graphql::Result<Caller> {
        self.0
            .ok_or_else(|| error(Code::Unauthorized, "this needs a bearer token"))
    }

    /// The caller when they have one of `roles`: `UNAUTHORIZED` when
    /// anonymous, `FORBIDDEN` otherwise.
    pub fn with_role(&self, roles: &[Role]) -> async_graphql::Result<Caller> {
        let caller = self.user()?;
        if roles.contains(&caller.role) {
            Ok(caller)
        } else {
            Err(error(
                Code::Forbidden,
                format!(
                    "this needs the role {}",
                    roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ))
        }
    }

    /// The customer `owner`'s own data, or an agent or admin: anyone else
    /// gets `FORBIDDEN` (`UNAUTHORIZED` when anonymous).
    pub fn owner_or_staff(&self, owner: Uuid) -> async_graphql::Result<Caller> {
        let caller = self.user()?;
        if caller.user_id == owner || sees_everything(caller.role) {
            Ok(caller)
        } else {
            Err(error(Code::Forbidden, "not yours"))
        }
    }
}

/// Roles that see every booking and payment (auditors read, never write).
pub fn sees_everything(role: Role) -> bool {
    matches!(role, Role::Agent | Role::Auditor | Role::Admin)
}

/// Reads `Authorization: Bearer <token>`; `Ok(anonymous)` without one.
pub fn viewer_from_headers(tokens: &TokenKeys, headers: &HeaderMap) -> Result<Viewer, String> {
    match headers.get(axum::http::header::AUTHORIZATION) {
        None => Ok(Viewer(None)),
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| "the Authorization header is not text".to_string())?;
            viewer_from_authorization(tokens, value)
        }
    }
}

/// `Bearer <token>` (or a bare token, as websocket clients send in
/// `connection_init`).
pub fn viewer_from_authorization(tokens: &TokenKeys, value: &str) -> Result<Viewer, String> {
    let value = value.trim();
    let token = ::auth::bearer_token(value).unwrap_or(value);
    if token.is_empty() {
        return Err("expected `Authorization: Bearer <token>`".into());
    }
    tokens
        .verify(token)
        .map(|caller| Viewer(Some(caller)))
        .map_err(|e| e.to_string())
}
