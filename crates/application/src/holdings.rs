//! Per-customer caps on what is held unpaid, so that nobody can hoard a
//! flight by holding its seats over and over.
//!
//! What a customer holds comes from the read models through the
//! [`Holdings`] port (the binary wires it): their unpaid bookings, by id.
//! One process decides each customer's new bookings one at a time and adds
//! the bookings it made that the read models have not seen yet (matched by
//! id, so none counts twice, and one paid since counts no more): a burst of
//! bookings by one customer cannot slip past the cap, and nobody waits for
//! the projectors. Across processes the count can be behind by the
//! projectors' lag (well under a second).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use crate::{CommandError, CommandResult, HoldCaps};

/// What one customer holds unpaid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unpaid {
    pub bookings: u32,
    pub seats: u32,
}

/// One of a customer's bookings as the read models show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub booking: Uuid,
    pub seats: u32,
    /// Held or awaiting payment, its hold not lapsed.
    pub unpaid: bool,
}

/// Where the unpaid holds come from.
#[async_trait]
pub trait Holdings: Send + Sync {
    /// `customer`'s unpaid bookings, and those of `also` they have seen in
    /// whatever state.
    async fn unpaid(
        &self,
        customer: Uuid,
        also: &[Uuid],
    ) -> Result<Vec<Held>, Box<dyn std::error::Error + Send + Sync>>;
}

/// Knows of no holdings: with it the caps count only what this process
/// made.
pub struct Unknown;

#[async_trait]
impl Holdings for Unknown {
    async fn unpaid(
        &self,
        _: Uuid,
        _: &[Uuid],
    ) -> Result<Vec<Held>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Vec::new())
    }
}

/// A customer's bookings made here lately: (id, seats, when).
#[derive(Default)]
pub(crate) struct Recent(Vec<(Uuid, u32, Instant)>);

/// How long a booking made here counts even if the read models have not
/// seen it: far past any projection lag, well under a hold.
const RECENT: Duration = Duration::from_secs(60);

impl Recent {
    /// The bookings made here to ask the read models about.
    pub(crate) fn ids(&mut self) -> Vec<Uuid> {
        self.0.retain(|(_, _, at)| at.elapsed() < RECENT);
        self.0.iter().map(|(id, _, _)| *id).collect()
    }

    /// The unpaid total: the read models' unpaid bookings, and ours they
    /// have not seen yet.
    pub(crate) fn total(&mut self, known: &[Held]) -> Unpaid {
        self.0
            .retain(|(id, _, _)| !known.iter().any(|k| k.booking == *id));
        let seats = known
            .iter()
            .filter(|k| k.unpaid)
            .map(|k| k.seats)
            .chain(self.0.iter().map(|(_, s, _)| *s));
        let mut unpaid = Unpaid::default();
        for s in seats {
            unpaid.bookings += 1;
            unpaid.seats += s;
        }
        unpaid
    }

    pub(crate) fn add(&mut self, booking: Uuid, seats: u32) {
        self.0.push((booking, seats, Instant::now()));
    }
}

/// Each customer's turn to book in this process, with their recent
/// bookings.
#[derive(Default)]
pub(crate) struct Turns {
    turns: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Recent>>>>,
}

/// A customer's turn: held while their booking is decided.
pub(crate) type Turn = tokio::sync::OwnedMutexGuard<Recent>;

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

    #[test]
    fn it_should_count_a_booking_made_here_once_and_not_once_it_is_paid() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut recent = Recent::default();
        recent.add(a, 3);
        recent.add(b, 2);
        // The read models have seen neither: both count.
        assert_eq!(recent.total(&[]).seats, 5);
        // They show `a` unpaid: it counts once, not twice.
        let a_unpaid = Held {
            booking: a,
            seats: 3,
            unpaid: true,
        };
        let total = recent.total(&[a_unpaid]);
        assert_eq!((total.bookings, total.seats), (2, 5));
        // `b` was paid since: only `a` is held.
        let b_paid = Held {
            booking: b,
            seats: 2,
            unpaid: false,
        };
        let total = recent.total(&[a_unpaid, b_paid]);
        assert_eq!((total.bookings, total.seats), (1, 3));
        assert_eq!(recent.ids(), Vec::<Uuid>::new());
    }
}
