//! Login attempt limits: a token bucket per email and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the login limiter counts failures by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// The normalised email that was tried (known or not).
    Email(String),
    /// The client's address.
    Ip(IpAddr),
}

impl LimitKey {
    /// Long inputs are cut: a key only needs to tell attempts apart.
    pub fn email(normalised: &str) -> Self {
        Self::Email(normalised.chars().take(320).collect())
    }
}

/// Limits failed logins per key with a token bucket: `per_minute` failures
/// in a burst, then one more every `60 / per_minute` seconds. Only failures
/// take from the bucket; a success clears its email's bucket. `0` disables
/// the limit.
///
/// The buckets live in this process: behind several replicas each one
/// limits on its own, which bounds guessing all the same.
pub struct LoginLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<LimitKey, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before full ones are pruned.
const MAX_BUCKETS: usize = 100_000;

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn refill_per_sec(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    fn refilled(&self, b: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        Bucket {
            tokens: (b.tokens + elapsed * self.refill_per_sec()).min(self.capacity()),
            at: now,
        }
    }

    /// Takes one attempt from each of `keys`: `Err(wait)`, taking nothing,
    /// when any has none left (the caller answers 429 without checking the
    /// password).
    pub fn attempt(&self, keys: &[LimitKey]) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(b) = buckets.get(key) {
                let b = self.refilled(*b, now);
                if b.tokens < 1.0 {
                    let secs = (1.0 - b.tokens) / self.refill_per_sec();
                    wait = wait.max(Duration::from_secs_f64(secs));
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if buckets.len() >= MAX_BUCKETS {
            let full = self.capacity();
            buckets.retain(|_, b| self.refilled(*b, now).tokens < full);
        }
        for key in keys {
            let b = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: self.capacity(),
                at: now,
            });
            let mut next = self.refilled(*b, now);
            next.tokens = (next.tokens - 1.0).max(0.0);
            *b = next;
        }
        Ok(())
    }

    /// A successful login: gives its attempt back to every key, and forgets
    /// the email's past failures.
    pub fn succeeded(&self, keys: &[LimitKey]) {
        if self.per_minute == 0 {
            return;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            if matches!(key, LimitKey::Email(_)) {
                buckets.remove(key);
            } else if let Some(b) = buckets.get_mut(key) {
                let mut next = self.refilled(*b, now);
                next.tokens = (next.tokens + 1.0).min(self.capacity());
                *b = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_allow_per_minute_attempts_then_refuse_before_checking() {
        let limiter = LoginLimiter::new(3);
        let keys = [LimitKey::email("ada@example.com")];
        for _ in 0..3 {
            assert!(limiter.attempt(&keys).is_ok());
        }
        let wait = limiter.attempt(&keys).unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20));
        assert!(limiter
            .attempt(&[LimitKey::email("bob@example.com")])
            .is_ok());
        limiter.succeeded(&keys);
        assert!(limiter.attempt(&keys).is_ok());
    }
}
