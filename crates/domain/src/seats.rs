//! The seat locks of one flight (`seats-…`): the heart of overbooking
//! safety.
//!
//! Every seat is `Available`, `Held` by one booking until an expiry, or
//! `Sold` to one booking. A hold past its expiry counts as available without
//! any event having been written, so a crashed saga can never keep a seat
//! locked; whoever takes such a seat first records the stale hold's expiry.
//! The booking and its `SeatsHeld` are appended in one transaction, with
//! optimistic concurrency on this stream, which makes double-selling
//! impossible by construction.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Aggregate, DomainEvent};
use crate::values::{Cabin, Seat};
use crate::waitlist::{
    evolve_line, JoinWaitlist, WaitlistEntry, WaitlistEntryLapsed, WaitlistJoined,
    WaitlistOfferAccepted, WaitlistOffered, WaitlistStatus, WaitlistWithdrawn,
};

/// One passenger's wish: a named seat, or any seat in a cabin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatRequest {
    Seat(Seat),
    Cabin(Cabin),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SeatCommand {
    OpenInventory {
        flight_id: Uuid,
        seats: Vec<(Seat, Cabin)>,
    },
    Hold {
        booking_id: Uuid,
        requests: Vec<SeatRequest>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// Gives held seats back (payment failed, booking cancelled while held).
    Release { booking_id: Uuid, reason: String },
    /// Records that a hold ran out; refused while it is still running.
    Expire {
        booking_id: Uuid,
        now: DateTime<Utc>,
    },
    /// Turns a running hold into a sale.
    Confirm {
        booking_id: Uuid,
        now: DateTime<Utc>,
    },
    /// Puts sold seats back on sale after a cancellation.
    Return { booking_id: Uuid, reason: String },
    /// Moves one of the booking's seats to another of the same cabin: `to`
    /// takes over `from`'s hold (same expiry) or sale, and `from` goes back
    /// on sale, in one event.
    Change {
        booking_id: Uuid,
        from: Seat,
        to: Seat,
        now: DateTime<Utc>,
    },
    /// Gives back one seat of a booking (one passenger taken off): released
    /// if held, returned if sold.
    GiveBack {
        booking_id: Uuid,
        seat: Seat,
        reason: String,
    },
    /// Puts a customer's party in the line of a sold-out cabin (see
    /// [`crate::waitlist`]).
    JoinWaitlist(JoinWaitlist),
    /// Takes a waiting entry out of the line.
    WithdrawWaitlist { entry_id: Uuid },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventorySeat {
    pub seat: Seat,
    pub cabin: Cabin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryOpened {
    pub flight_id: Uuid,
    pub seats: Vec<InventorySeat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatsHeld {
    pub booking_id: Uuid,
    /// In the order of the requests that produced them.
    pub seats: Vec<Seat>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatsReleased {
    pub booking_id: Uuid,
    pub seats: Vec<Seat>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldExpired {
    pub booking_id: Uuid,
    pub seats: Vec<Seat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatsConfirmed {
    pub booking_id: Uuid,
    pub seats: Vec<Seat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatsReturned {
    pub booking_id: Uuid,
    pub seats: Vec<Seat>,
    pub reason: String,
}

/// One seat of a booking exchanged for another of the same cabin: `to` is
/// held (with `from`'s expiry) or sold as `from` was, and `from` is
/// available.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatChanged {
    pub booking_id: Uuid,
    pub from: Seat,
    pub to: Seat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SeatEvent {
    InventoryOpened(InventoryOpened),
    SeatsHeld(SeatsHeld),
    SeatsReleased(SeatsReleased),
    HoldExpired(HoldExpired),
    SeatsConfirmed(SeatsConfirmed),
    SeatsReturned(SeatsReturned),
    SeatChanged(SeatChanged),
    WaitlistJoined(WaitlistJoined),
    WaitlistOffered(WaitlistOffered),
    WaitlistOfferAccepted(WaitlistOfferAccepted),
    WaitlistEntryLapsed(WaitlistEntryLapsed),
    WaitlistWithdrawn(WaitlistWithdrawn),
}

impl DomainEvent for SeatEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SeatEvent::InventoryOpened(_) => "InventoryOpened",
            SeatEvent::SeatsHeld(_) => "SeatsHeld",
            SeatEvent::SeatsReleased(_) => "SeatsReleased",
            SeatEvent::HoldExpired(_) => "HoldExpired",
            SeatEvent::SeatsConfirmed(_) => "SeatsConfirmed",
            SeatEvent::SeatsReturned(_) => "SeatsReturned",
            SeatEvent::SeatChanged(_) => "SeatChanged",
            SeatEvent::WaitlistJoined(_) => "WaitlistJoined",
            SeatEvent::WaitlistOffered(_) => "WaitlistOffered",
            SeatEvent::WaitlistOfferAccepted(_) => "WaitlistOfferAccepted",
            SeatEvent::WaitlistEntryLapsed(_) => "WaitlistEntryLapsed",
            SeatEvent::WaitlistWithdrawn(_) => "WaitlistWithdrawn",
        }
    }
}

impl SeatEvent {
    pub fn booking_id(&self) -> Option<Uuid> {
        match self {
            SeatEvent::InventoryOpened(_) => None,
            SeatEvent::SeatsHeld(e) => Some(e.booking_id),
            SeatEvent::SeatsReleased(e) => Some(e.booking_id),
            SeatEvent::HoldExpired(e) => Some(e.booking_id),
            SeatEvent::SeatsConfirmed(e) => Some(e.booking_id),
            SeatEvent::SeatsReturned(e) => Some(e.booking_id),
            SeatEvent::SeatChanged(e) => Some(e.booking_id),
            SeatEvent::WaitlistOffered(e) => Some(e.booking_id),
            SeatEvent::WaitlistOfferAccepted(e) => Some(e.booking_id),
            SeatEvent::WaitlistJoined(_)
            | SeatEvent::WaitlistEntryLapsed(_)
            | SeatEvent::WaitlistWithdrawn(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    #[error("seat inventory is already open")]
    AlreadyOpened,
    #[error("seat inventory is not open")]
    NotOpened,
    #[error("an inventory needs at least one seat")]
    NoSeats,
    #[error("seat {0} is listed twice")]
    DuplicateSeat(Seat),
    #[error("no seats requested")]
    NothingRequested,
    #[error("hold must expire after now")]
    ExpiryNotInFuture,
    #[error("no such seats on this flight: {}", seat_list(.0))]
    UnknownSeats(Vec<Seat>),
    #[error("seats not available: {}", seat_list(.0))]
    SeatUnavailable(Vec<Seat>),
    #[error("cabin {cabin} has {available} seats available, {requested} requested")]
    CabinFull {
        cabin: Cabin,
        requested: usize,
        available: usize,
    },
    #[error("booking {0} already has seats on this flight")]
    AlreadyHolding(Uuid),
    #[error("booking {0} holds no seats")]
    NothingHeld(Uuid),
    #[error("booking {0} has no sold seats")]
    NothingSold(Uuid),
    #[error("hold of booking {booking_id} runs until {expires_at}")]
    HoldNotExpired {
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    #[error("hold of booking {booking_id} expired at {expires_at}")]
    HoldHasExpired {
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    #[error("seats of booking {0} are already confirmed")]
    AlreadyConfirmed(Uuid),
    #[error("seat {seat} is not held or sold to booking {booking_id}")]
    NotTheBookings { booking_id: Uuid, seat: Seat },
    #[error(
        "seat {to} is in {to_cabin}, not {from_cabin} like {from}: changing cabin changes the fare"
    )]
    OtherCabin {
        from: Seat,
        from_cabin: Cabin,
        to: Seat,
        to_cabin: Cabin,
    },
    #[error("{available} seats of {cabin} can be booked now: book them instead of waiting")]
    SeatsAvailable { cabin: Cabin, available: usize },
    #[error("seats coming back in {cabin} go to its waiting list first")]
    LineFirst { cabin: Cabin },
    #[error("already on this cabin's waiting list (entry {0})")]
    AlreadyWaiting(Uuid),
    #[error("no waiting-list entry {0} on this flight")]
    NoSuchEntry(Uuid),
    #[error("waiting-list entry {entry_id} is {}, not waiting", .status.as_str())]
    EntryNotWaiting {
        entry_id: Uuid,
        status: WaitlistStatus,
    },
}

fn seat_list(seats: &[Seat]) -> String {
    seats
        .iter()
        .map(Seat::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl SeatError {
    /// The seats a `SeatUnavailable`/`UnknownSeats` refusal names, for the
    /// API's `SEAT_UNAVAILABLE` problem.
    pub fn seats(&self) -> &[Seat] {
        match self {
            SeatError::SeatUnavailable(seats) | SeatError::UnknownSeats(seats) => seats,
            _ => &[],
        }
    }
}

/// Where a seat stands. A `Held` whose `expires_at` has passed is kept as
/// recorded; [`SeatInventory::status_at`] reads it as available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatState {
    Available,
    Held {
        booking_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    Sold {
        booking_id: Uuid,
    },
}

/// The coarse status read models show (`AVAILABLE`, `HELD`, `SOLD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

impl SeatState {
    pub fn status(&self) -> SeatStatus {
        match self {
            SeatState::Available => SeatStatus::Available,
            SeatState::Held { .. } => SeatStatus::Held,
            SeatState::Sold { .. } => SeatStatus::Sold,
        }
    }

    pub fn booking_id(&self) -> Option<Uuid> {
        match self {
            SeatState::Available => None,
            SeatState::Held { booking_id, .. } | SeatState::Sold { booking_id } => {
                Some(*booking_id)
            }
        }
    }

    /// The state as it stands at `now`: a lapsed hold is available.
    pub fn at(self, now: DateTime<Utc>) -> SeatState {
        match self {
            SeatState::Held { expires_at, .. } if now >= expires_at => SeatState::Available,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeatSlot {
    pub cabin: Cabin,
    pub state: SeatState,
}

/// The seat inventory of one flight.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeatInventory {
    flight_id: Option<Uuid>,
    seats: BTreeMap<Seat, SeatSlot>,
    /// The line of the sold-out cabins, in the order it was joined.
    pub(crate) waitlist: Vec<WaitlistEntry>,
}

/// What one booking has on this flight.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holding {
    None,
    Held {
        seats: Vec<Seat>,
        expires_at: DateTime<Utc>,
    },
    Sold {
        seats: Vec<Seat>,
    },
}

impl SeatInventory {
    pub fn flight_id(&self) -> Option<Uuid> {
        self.flight_id
    }

    pub fn is_open(&self) -> bool {
        self.flight_id.is_some()
    }

    /// Every seat with its cabin and recorded state, by row then letter.
    pub fn seats(&self) -> impl Iterator<Item = (Seat, SeatSlot)> + '_ {
        self.seats.iter().map(|(seat, slot)| (*seat, *slot))
    }

    pub fn cabin_of(&self, seat: Seat) -> Option<Cabin> {
        self.seats.get(&seat).map(|slot| slot.cabin)
    }

    /// The state of `seat` as it stands at `now` (`None`: no such seat).
    pub fn status_at(&self, seat: Seat, now: DateTime<Utc>) -> Option<SeatState> {
        self.seats.get(&seat).map(|slot| slot.state.at(now))
    }

    pub fn is_available(&self, seat: Seat, now: DateTime<Utc>) -> bool {
        self.status_at(seat, now) == Some(SeatState::Available)
    }

    /// Seats of `cabin` free at `now`, lapsed holds included.
    pub fn available_in(&self, cabin: Cabin, now: DateTime<Utc>) -> usize {
        self.available_seats_in(cabin, now).count()
    }

    pub fn total_in(&self, cabin: Cabin) -> usize {
        self.seats
            .values()
            .filter(|slot| slot.cabin == cabin)
            .count()
    }

    pub fn available_seats_in(
        &self,
        cabin: Cabin,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = Seat> + '_ {
        self.seats
            .iter()
            .filter(move |(_, slot)| {
                slot.cabin == cabin && slot.state.at(now) == SeatState::Available
            })
            .map(|(seat, _)| *seat)
    }

    /// Seats recorded for `booking_id` (held, lapsed or not, or sold).
    pub fn seats_of(&self, booking_id: Uuid) -> Vec<Seat> {
        self.seats
            .iter()
            .filter(|(_, slot)| slot.state.booking_id() == Some(booking_id))
            .map(|(seat, _)| *seat)
            .collect()
    }

    /// Seat map at `now`: every seat with cabin and effective state.
    pub fn seat_map(&self, now: DateTime<Utc>) -> Vec<(Seat, Cabin, SeatState)> {
        self.seats
            .iter()
            .map(|(seat, slot)| (*seat, slot.cabin, slot.state.at(now)))
            .collect()
    }

    fn holding(&self, booking_id: Uuid) -> Holding {
        let mut held = Vec::new();
        let mut sold = Vec::new();
        let mut expiry = None;
        for (seat, slot) in &self.seats {
            match slot.state {
                SeatState::Held {
                    booking_id: b,
                    expires_at,
                } if b == booking_id => {
                    held.push(*seat);
                    // All seats of one hold share an expiry; take the
                    // earliest so a mixed record (never produced) is strict.
                    expiry = Some(expiry.map_or(expires_at, |e: DateTime<Utc>| e.min(expires_at)));
                }
                SeatState::Sold { booking_id: b } if b == booking_id => sold.push(*seat),
                _ => {}
            }
        }
        match (expiry, sold.is_empty()) {
            (Some(expires_at), _) => Holding::Held {
                seats: held,
                expires_at,
            },
            (None, false) => Holding::Sold { seats: sold },
            (None, true) => Holding::None,
        }
    }

    fn opened(&self) -> Result<(), SeatError> {
        if self.is_open() {
            Ok(())
        } else {
            Err(SeatError::NotOpened)
        }
    }

    fn hold(
        &self,
        booking_id: Uuid,
        requests: &[SeatRequest],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SeatEvent>, SeatError> {
        self.opened()?;
        if requests.is_empty() {
            return Err(SeatError::NothingRequested);
        }
        if expires_at <= now {
            return Err(SeatError::ExpiryNotInFuture);
        }
        let mut events = Vec::new();
        let mut stale: BTreeSet<Uuid> = BTreeSet::new();
        match self.holding(booking_id) {
            Holding::None => {}
            // Re-holding after one's own hold lapsed: record the lapse first
            // so the booking never owns seats under two expiries.
            Holding::Held { expires_at: e, .. } if now >= e => {
                stale.insert(booking_id);
            }
            Holding::Held { .. } | Holding::Sold { .. } => {
                return Err(SeatError::AlreadyHolding(booking_id))
            }
        }

        let mut explicit = BTreeSet::new();
        let mut unknown = Vec::new();
        let mut unavailable = Vec::new();
        for request in requests {
            if let SeatRequest::Seat(seat) = request {
                if !explicit.insert(*seat) {
                    return Err(SeatError::DuplicateSeat(*seat));
                }
                match self.status_at(*seat, now) {
                    None => unknown.push(*seat),
                    Some(SeatState::Available) => {}
                    Some(_) => unavailable.push(*seat),
                }
            }
        }
        if !unknown.is_empty() {
            return Err(SeatError::UnknownSeats(unknown));
        }
        if !unavailable.is_empty() {
            return Err(SeatError::SeatUnavailable(unavailable));
        }

        // Cabin requests take the lowest free seats not already named by
        // this same command, in request order.
        let mut free: BTreeMap<Cabin, std::vec::IntoIter<Seat>> = BTreeMap::new();
        let mut wanted: BTreeMap<Cabin, usize> = BTreeMap::new();
        for request in requests {
            if let SeatRequest::Cabin(cabin) = request {
                *wanted.entry(*cabin).or_default() += 1;
            }
        }
        for (cabin, requested) in &wanted {
            let candidates: Vec<Seat> = self
                .available_seats_in(*cabin, now)
                .filter(|seat| !explicit.contains(seat))
                .collect();
            if candidates.len() < *requested {
                return Err(SeatError::CabinFull {
                    cabin: *cabin,
                    requested: *requested,
                    available: candidates.len(),
                });
            }
            free.insert(*cabin, candidates.into_iter());
        }
        let mut seats = Vec::with_capacity(requests.len());
        for request in requests {
            let seat = match request {
                SeatRequest::Seat(seat) => Some(*seat),
                SeatRequest::Cabin(cabin) => free.get_mut(cabin).and_then(Iterator::next),
            };
            // Counted above, so a cabin iterator cannot run dry.
            seats.extend(seat);
        }

        for seat in &seats {
            if let Some(SeatSlot {
                state: SeatState::Held {
                    booking_id: owner, ..
                },
                ..
            }) = self.seats.get(seat)
            {
                stale.insert(*owner);
            }
        }
        for owner in stale {
            events.push(SeatEvent::HoldExpired(HoldExpired {
                booking_id: owner,
                seats: self.seats_of(owner),
            }));
        }
        events.push(SeatEvent::SeatsHeld(SeatsHeld {
            booking_id,
            seats,
            expires_at,
        }));
        Ok(events)
    }

    fn change(
        &self,
        booking_id: Uuid,
        from: Seat,
        to: Seat,
        now: DateTime<Utc>,
    ) -> Result<Vec<SeatEvent>, SeatError> {
        self.opened()?;
        let Some(from_slot) = self
            .seats
            .get(&from)
            .filter(|slot| slot.state.booking_id() == Some(booking_id))
        else {
            return Err(SeatError::NotTheBookings {
                booking_id,
                seat: from,
            });
        };
        if let SeatState::Held { expires_at, .. } = from_slot.state {
            if now >= expires_at {
                return Err(SeatError::HoldHasExpired {
                    booking_id,
                    expires_at,
                });
            }
        }
        if from == to {
            return Ok(vec![]);
        }
        let Some(to_slot) = self.seats.get(&to) else {
            return Err(SeatError::UnknownSeats(vec![to]));
        };
        if to_slot.cabin != from_slot.cabin {
            return Err(SeatError::OtherCabin {
                from,
                from_cabin: from_slot.cabin,
                to,
                to_cabin: to_slot.cabin,
            });
        }
        if to_slot.state.at(now) != SeatState::Available {
            return Err(SeatError::SeatUnavailable(vec![to]));
        }
        let mut events = Vec::with_capacity(2);
        // A lapsed hold on `to` is recorded first, as a new hold would.
        if let SeatState::Held {
            booking_id: owner, ..
        } = to_slot.state
        {
            events.push(SeatEvent::HoldExpired(HoldExpired {
                booking_id: owner,
                seats: self.seats_of(owner),
            }));
        }
        events.push(SeatEvent::SeatChanged(SeatChanged {
            booking_id,
            from,
            to,
        }));
        Ok(events)
    }
}

impl Aggregate for SeatInventory {
    const CATEGORY: &'static str = "seats";
    type Command = SeatCommand;
    type Event = SeatEvent;
    type Error = SeatError;

    fn decide(&self, command: SeatCommand) -> Result<Vec<SeatEvent>, SeatError> {
        match command {
            SeatCommand::OpenInventory { flight_id, seats } => {
                if self.is_open() {
                    return Err(SeatError::AlreadyOpened);
                }
                if seats.is_empty() {
                    return Err(SeatError::NoSeats);
                }
                let mut seen = BTreeSet::new();
                for (seat, _) in &seats {
                    if !seen.insert(*seat) {
                        return Err(SeatError::DuplicateSeat(*seat));
                    }
                }
                let mut seats: Vec<InventorySeat> = seats
                    .into_iter()
                    .map(|(seat, cabin)| InventorySeat { seat, cabin })
                    .collect();
                seats.sort_by_key(|s| s.seat);
                Ok(vec![SeatEvent::InventoryOpened(InventoryOpened {
                    flight_id,
                    seats,
                })])
            }
            SeatCommand::Hold {
                booking_id,
                requests,
                expires_at,
                now,
            } => self.hold(booking_id, &requests, expires_at, now),
            SeatCommand::Release { booking_id, reason } => {
                self.opened()?;
                match self.holding(booking_id) {
                    Holding::Held { seats, .. } => {
                        Ok(vec![SeatEvent::SeatsReleased(SeatsReleased {
                            booking_id,
                            seats,
                            reason,
                        })])
                    }
                    _ => Err(SeatError::NothingHeld(booking_id)),
                }
            }
            SeatCommand::Expire { booking_id, now } => {
                self.opened()?;
                match self.holding(booking_id) {
                    Holding::Held { seats, expires_at } if now >= expires_at => {
                        Ok(vec![SeatEvent::HoldExpired(HoldExpired {
                            booking_id,
                            seats,
                        })])
                    }
                    Holding::Held { expires_at, .. } => Err(SeatError::HoldNotExpired {
                        booking_id,
                        expires_at,
                    }),
                    _ => Err(SeatError::NothingHeld(booking_id)),
                }
            }
            SeatCommand::Confirm { booking_id, now } => {
                self.opened()?;
                match self.holding(booking_id) {
                    Holding::Held { seats, expires_at } if now < expires_at => {
                        Ok(vec![SeatEvent::SeatsConfirmed(SeatsConfirmed {
                            booking_id,
                            seats,
                        })])
                    }
                    Holding::Held { expires_at, .. } => Err(SeatError::HoldHasExpired {
                        booking_id,
                        expires_at,
                    }),
                    Holding::Sold { .. } => Err(SeatError::AlreadyConfirmed(booking_id)),
                    Holding::None => Err(SeatError::NothingHeld(booking_id)),
                }
            }
            SeatCommand::GiveBack {
                booking_id,
                seat,
                reason,
            } => {
                self.opened()?;
                let seats = vec![seat];
                match self.seats.get(&seat).map(|slot| slot.state) {
                    Some(SeatState::Held { booking_id: b, .. }) if b == booking_id => {
                        Ok(vec![SeatEvent::SeatsReleased(SeatsReleased {
                            booking_id,
                            seats,
                            reason,
                        })])
                    }
                    Some(SeatState::Sold { booking_id: b }) if b == booking_id => {
                        Ok(vec![SeatEvent::SeatsReturned(SeatsReturned {
                            booking_id,
                            seats,
                            reason,
                        })])
                    }
                    Some(_) => Err(SeatError::NothingHeld(booking_id)),
                    None => Err(SeatError::UnknownSeats(seats)),
                }
            }
            SeatCommand::Return { booking_id, reason } => {
                self.opened()?;
                match self.holding(booking_id) {
                    Holding::Sold { seats } => Ok(vec![SeatEvent::SeatsReturned(SeatsReturned {
                        booking_id,
                        seats,
                        reason,
                    })]),
                    _ => Err(SeatError::NothingSold(booking_id)),
                }
            }
            SeatCommand::Change {
                booking_id,
                from,
                to,
                now,
            } => self.change(booking_id, from, to, now),
            SeatCommand::JoinWaitlist(join) => self.join_waitlist(join),
            SeatCommand::WithdrawWaitlist { entry_id } => self.withdraw_waitlist(entry_id),
        }
    }

    fn evolve(mut self, event: &SeatEvent) -> Self {
        // Releasing, expiring, confirming and returning only touch seats the
        // event's own booking has: a replayed stale event can never free a
        // seat that belongs to someone else by now.
        let mut set = |seats: &[Seat], owner: Option<Uuid>, state: SeatState| {
            for seat in seats {
                if let Some(slot) = self.seats.get_mut(seat) {
                    if owner.is_none() || slot.state.booking_id() == owner {
                        slot.state = state;
                    }
                }
            }
        };
        match event {
            SeatEvent::InventoryOpened(e) => {
                self.flight_id = Some(e.flight_id);
                self.seats = e
                    .seats
                    .iter()
                    .map(|s| {
                        (
                            s.seat,
                            SeatSlot {
                                cabin: s.cabin,
                                state: SeatState::Available,
                            },
                        )
                    })
                    .collect();
            }
            SeatEvent::SeatsHeld(e) => set(
                &e.seats,
                None,
                SeatState::Held {
                    booking_id: e.booking_id,
                    expires_at: e.expires_at,
                },
            ),
            SeatEvent::SeatsConfirmed(e) => {
                set(
                    &e.seats,
                    Some(e.booking_id),
                    SeatState::Sold {
                        booking_id: e.booking_id,
                    },
                );
                evolve_line(&mut self.waitlist, event);
            }
            SeatEvent::SeatsReleased(SeatsReleased {
                booking_id, seats, ..
            })
            | SeatEvent::HoldExpired(HoldExpired { booking_id, seats })
            | SeatEvent::SeatsReturned(SeatsReturned {
                booking_id, seats, ..
            }) => set(seats, Some(*booking_id), SeatState::Available),
            SeatEvent::SeatChanged(e) => {
                let state = self
                    .seats
                    .get(&e.from)
                    .map(|slot| slot.state)
                    .filter(|state| state.booking_id() == Some(e.booking_id));
                // Only a seat the booking still has moves.
                if let (Some(state), true) = (state, self.seats.contains_key(&e.to)) {
                    for (seat, state) in [(e.to, state), (e.from, SeatState::Available)] {
                        if let Some(slot) = self.seats.get_mut(&seat) {
                            slot.state = state;
                        }
                    }
                }
            }
            SeatEvent::WaitlistJoined(_)
            | SeatEvent::WaitlistOffered(_)
            | SeatEvent::WaitlistOfferAccepted(_)
            | SeatEvent::WaitlistEntryLapsed(_)
            | SeatEvent::WaitlistWithdrawn(_) => evolve_line(&mut self.waitlist, event),
        }
        self
    }
}
