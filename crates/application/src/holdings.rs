//! Per-customer caps on what is held unpaid, so that nobody can hoard a
//! flight by holding its seats over and over.
//!
//! The count comes from the read models through the [`Holdings`] port (the
//! binary wires it). One process serialises each customer's new bookings
//! and, before counting, waits until the read models include the
//! customer's previous booking from this process: a burst of bookings by
//! one customer cannot slip past the cap. Across processes the count can be
//! behind by the projectors' lag (well under a second).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use eventstore::Position;
use uuid::Uuid;

use crate::{CommandError, CommandResult, HoldCaps};

/// What one customer holds unpaid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unpaid {
    pub bookings: u32,
    pub seats: u32,
}

/// Where the count of unpaid holds comes from.
#[async_trait]
pub trait Holdings: Send + Sync {
    /// What `customer` holds unpaid now, counting everything up to
    /// `at_least` when given.
    async fn unpaid(
        &self,
        customer: Uuid,
        at_least: Option<Position>,
    ) -> Result<Unpaid, Box<dyn std::error::Error + Send + Sync>>;
}

/// Knows of no holdings: with it the caps never refuse.
pub struct Unknown;

#[async_trait]
impl Holdings for Unknown {
    async fn unpaid(
        &self,
        _: Uuid,
        _: Option<Position>,
    ) -> Result<Unpaid, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Unpaid::default())
    }
}

/// Each customer's turn to book in this process, with the position of
/// their last booking from it.
#[derive(Default)]
pub(crate) struct Turns {
    turns: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Option<Position>>>>>,
}

/// A customer's turn: held while their booking is decided.
pub(crate) type Turn = tokio::sync::OwnedMutexGuard<Option<Position>>;

impl Turns {
    pub(crate) async fn take(&self, customer: Uuid) -> Turn {
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            if turns.len() > 10_000 {
                turns.retain(|_, t| Arc::strong_count(t) > 1);
            }
            turns.entry(customer).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// Refuses a booking of `seats` seats that would take `unpaid` past `caps`.
pub(crate) fn check(caps: HoldCaps, unpaid: Unpaid, seats: u32) -> CommandResult<()> {
    if unpaid.bookings + 1 > caps.max_unpaid_bookings {
        return Err(CommandError::HoldLimit(format!(
            "at most {} unpaid bookings at once: pay or cancel one first",
            caps.max_unpaid_bookings
        )));
    }
    if unpaid.seats + seats > caps.max_held_seats {
        return Err(CommandError::HoldLimit(format!(
            "at most {} seats held unpaid at once ({} held now)",
            caps.max_held_seats, unpaid.seats
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_refuse_past_either_cap() {
        let caps = HoldCaps {
            max_held_seats: 10,
            max_unpaid_bookings: 2,
        };
        let none = Unpaid::default();
        assert!(check(caps, none, 9).is_ok());
        assert!(check(caps, none, 11).is_err());
        let one = Unpaid {
            bookings: 1,
            seats: 9,
        };
        assert!(check(caps, one, 1).is_ok());
        assert!(check(caps, one, 2).is_err());
        let two = Unpaid {
            bookings: 2,
            seats: 2,
        };
        assert!(check(caps, two, 1).is_err());
    }
}
