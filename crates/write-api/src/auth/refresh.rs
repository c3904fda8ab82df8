//! Refresh tokens (opaque, stored hashed, rotated in families) and login
//! rate limiting.

/// Limits failed logins.
pub struct LoginLimiter;

impl LoginLimiter {
    pub fn new(_per_minute: u32) -> Self {
        Self
    }
}
