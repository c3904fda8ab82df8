//! Per-customer caps on what is held unpaid, so that nobody can hoard a
//! flight by holding its seats over and over.
//!
//! What a customer holds comes from the read models through the
//! [`Holdings`] port (the binary wires it). Each process also keeps a
//! [`Ledger`] of the bookings it made lately, reserved before they are
//! decided: a booking counts from the read models once they have seen it,
//! and from the ledger until then (matched by id, so none counts twice,
//! and one paid since counts no more). A burst of bookings by one customer
//! cannot slip past the cap, and nobody waits for the projectors nor for
//! the customer's other bookings. Across processes the count can be behind
//! by the port's lag: the engine's port follows the log in memory (well
//! under a second behind).

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

/// What the read models show of a customer's holdings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holding {
    /// Bookings held or awaiting payment, their hold not lapsed.
    pub unpaid: Unpaid,
    /// Which of the bookings asked about they have seen, in any state.
    pub seen: Vec<Uuid>,
}

/// Where the unpaid holds come from.
#[async_trait]
pub trait Holdings: Send + Sync {
    /// `customer`'s unpaid total, and which of `ours` are in it or past it.
    async fn unpaid(
        &self,
        customer: Uuid,
        ours: &[Uuid],
    ) -> Result<Holding, Box<dyn std::error::Error + Send + Sync>>;
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
    ) -> Result<Holding, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Holding::default())
    }
}

/// How long a booking made here counts even if the read models have not
/// seen it: far past any projection lag, well under a hold.
const RECENT: Duration = Duration::from_secs(60);

/// A booking made (or being made) here: its seats and when.
struct Entry {
    booking: Uuid,
    seats: u32,
    at: Instant,
}

/// Each customer's bookings made here lately.
#[derive(Default)]
pub(crate) struct Ledger {
    customers: Mutex<HashMap<Uuid, Vec<Entry>>>,
}

impl Ledger {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Uuid, Vec<Entry>>) -> T) -> T {
        let mut customers = self.customers.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut customers)
    }

    /// The bookings made here lately for `customer`, to ask the read
    /// models about.
    pub(crate) fn ours(&self, customer: Uuid) -> Vec<Uuid> {
        self.with(|customers| {
            let Some(entries) = customers.get_mut(&customer) else {
                return Vec::new();
            };
            entries.retain(|e| e.at.elapsed() < RECENT);
            let ours = entries.iter().map(|e| e.booking).collect();
            if entries.is_empty() {
                customers.remove(&customer);
            }
            ours
        })
    }

    /// Reserves `seats` for `booking` if, with what `known` shows and what
    /// this process made since (or is making), `customer` stays within
    /// `caps`. The reservation lapses when dropped unless kept.
    pub(crate) fn reserve(
        self: &Arc<Self>,
        caps: HoldCaps,
        customer: Uuid,
        booking: Uuid,
        seats: u32,
        known: &Holding,
    ) -> CommandResult<Reservation> {
        self.with(|customers| {
            let entries = customers.entry(customer).or_default();
            let mut unpaid = known.unpaid;
            for e in entries.iter().filter(|e| !known.seen.contains(&e.booking)) {
                unpaid.bookings += 1;
                unpaid.seats += e.seats;
            }
            check(caps, unpaid, seats)?;
            entries.push(Entry {
                booking,
                seats,
                at: Instant::now(),
            });
            Ok(Reservation {
                ledger: self.clone(),
                customer,
                booking,
                kept: false,
            })
        })
    }
}

/// A booking's place in the ledger while it is decided.
pub(crate) struct Reservation {
    ledger: Arc<Ledger>,
    customer: Uuid,
    booking: Uuid,
    kept: bool,
}

impl Reservation {
    /// The booking was made: it counts until the read models show it.
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        self.ledger.with(|customers| {
            if let Some(entries) = customers.get_mut(&self.customer) {
                entries.retain(|e| e.booking != self.booking);
                if entries.is_empty() {
                    customers.remove(&self.customer);
                }
            }
        });
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
    fn it_should_count_a_booking_made_here_until_the_read_models_see_it() {
        let caps = HoldCaps {
            max_held_seats: 10,
            max_unpaid_bookings: 3,
        };
        let ledger = Arc::new(Ledger::default());
        let me = Uuid::new_v4();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let nothing = Holding::default();
        ledger.reserve(caps, me, a, 3, &nothing).unwrap().keep();
        // Being decided: counts already.
        let pending = ledger.reserve(caps, me, b, 2, &nothing).unwrap();
        assert!(ledger
            .reserve(caps, me, Uuid::new_v4(), 6, &nothing)
            .is_err());
        // Refused or failed: counts no more.
        drop(pending);
        assert_eq!(ledger.ours(me), vec![a]);
        // The read models show `a` unpaid: it counts once, not twice.
        let a_unpaid = Holding {
            unpaid: Unpaid {
                bookings: 1,
                seats: 3,
            },
            seen: vec![a],
        };
        assert!(ledger
            .reserve(caps, me, Uuid::new_v4(), 8, &a_unpaid)
            .is_err());
        ledger.reserve(caps, me, b, 7, &a_unpaid).unwrap().keep();
        // `a` was paid since, `b` not seen yet: `b` alone counts.
        let a_paid = Holding {
            unpaid: Unpaid::default(),
            seen: vec![a],
        };
        assert!(ledger
            .reserve(caps, me, Uuid::new_v4(), 4, &a_paid)
            .is_err());
        assert!(ledger.reserve(caps, me, Uuid::new_v4(), 3, &a_paid).is_ok());
        // Nobody else's count moves.
        assert!(ledger
            .reserve(caps, Uuid::new_v4(), Uuid::new_v4(), 10, &nothing)
            .is_ok());
    }
}
