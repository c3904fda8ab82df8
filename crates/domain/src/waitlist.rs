//! The waiting list of a flight's cabins.
//!
//! The line lives in the seat inventory (`seats-…`), not in a stream of its
//! own: who gets a seat that comes back is a decision over the seats and the
//! line together, and one aggregate is one consistency boundary. An offer is
//! therefore appended with the seats it holds, under the same expected
//! version, so a seat can never be offered to two entries, nor to an entry
//! and a walk-in booking.
//!
//! ```text
//! WAITING ─seats fit─▶ OFFERED ─seats sold─▶ ACCEPTED
//!    │                    └─hold lapsed, released─▶ LAPSED
//!    ├─withdraw─▶ WITHDRAWN
//!    └─flight cancelled or departed, data erased─▶ LAPSED
//! ```
//!
//! While an entry of a cabin is waiting and the free seats of that cabin
//! would fit it, the line goes first: walk-in bookings of that cabin are
//! refused ([`SeatError::LineFirst`]) until the offer is made, which the
//! waiting-list process manager does as soon as it sees the seats come back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::booking::{
    place_booking_unchecked, BookingError, BookingEvent, PassengerDetails, PassengerPersonal,
    PassengerRequest, PassengerType, PlaceBooking, PlaceBookingError,
};
use crate::event::Aggregate;
use crate::flight::Flight;
use crate::seats::{SeatError, SeatEvent, SeatInventory, SeatRequest};
use crate::values::{Cabin, Personal, Pnr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WaitlistStatus {
    Waiting,
    Offered,
    Accepted,
    Lapsed,
    Withdrawn,
}

impl WaitlistStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            WaitlistStatus::Waiting => "WAITING",
            WaitlistStatus::Offered => "OFFERED",
            WaitlistStatus::Accepted => "ACCEPTED",
            WaitlistStatus::Lapsed => "LAPSED",
            WaitlistStatus::Withdrawn => "WITHDRAWN",
        }
    }

    /// Still in line or holding an offer.
    pub fn is_open(&self) -> bool {
        matches!(self, WaitlistStatus::Waiting | WaitlistStatus::Offered)
    }
}

/// The non-personal part of a waiting passenger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingPassenger {
    pub passenger_id: Uuid,
    #[serde(rename = "type")]
    pub kind: PassengerType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub travels_with: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistJoined {
    pub entry_id: Uuid,
    /// The customer: their key encrypts `personal`.
    pub subject: Uuid,
    pub customer_id: Uuid,
    pub cabin: Cabin,
    pub passengers: Vec<WaitingPassenger>,
    pub joined_at: DateTime<Utc>,
    pub personal: Personal<Vec<PassengerPersonal>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistOffered {
    pub entry_id: Uuid,
    pub customer_id: Uuid,
    /// The `HELD` booking that holds the offered seats.
    pub booking_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistOfferAccepted {
    pub entry_id: Uuid,
    pub booking_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistEntryLapsed {
    pub entry_id: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistWithdrawn {
    pub entry_id: Uuid,
}

/// One entry of the line, as the inventory keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitlistEntry {
    pub entry_id: Uuid,
    pub customer_id: Uuid,
    pub cabin: Cabin,
    pub passengers: Vec<WaitingPassenger>,
    #[serde(skip)]
    pub personal: Personal<Vec<PassengerPersonal>>,
    pub joined_at: DateTime<Utc>,
    pub status: WaitlistStatus,
    /// The offered booking and when its hold runs out.
    pub offer: Option<(Uuid, DateTime<Utc>)>,
    /// The offer's seats were sold: it is accepted, whatever happens to the
    /// booking afterwards (a cancellation gives the seats back, not the
    /// offer).
    pub offer_sold: bool,
}

impl WaitlistEntry {
    /// Seats the entry needs: one per passenger but infants.
    pub fn seats_needed(&self) -> usize {
        seats_needed(&self.passengers)
    }
}

fn seats_needed(passengers: &[WaitingPassenger]) -> usize {
    passengers
        .iter()
        .filter(|p| p.kind != PassengerType::Infant)
        .count()
}

/// A customer asking for a place in line.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinWaitlist {
    pub entry_id: Uuid,
    pub customer_id: Uuid,
    pub cabin: Cabin,
    pub passengers: Vec<WaitingPassenger>,
    pub details: Vec<PassengerDetails>,
    pub now: DateTime<Utc>,
}

impl SeatInventory {
    /// The entries of the line, in the order they joined.
    pub fn waitlist(&self) -> &[WaitlistEntry] {
        &self.waitlist
    }

    pub fn waitlist_entry(&self, entry_id: Uuid) -> Option<&WaitlistEntry> {
        self.waitlist.iter().find(|e| e.entry_id == entry_id)
    }

    /// An entry's place among those still waiting in its cabin (1: next),
    /// `None` once it no longer waits.
    pub fn place_in_line(&self, entry_id: Uuid) -> Option<usize> {
        let entry = self.waitlist_entry(entry_id)?;
        if entry.status != WaitlistStatus::Waiting {
            return None;
        }
        Some(
            self.waitlist
                .iter()
                .take_while(|e| e.entry_id != entry_id)
                .filter(|e| e.cabin == entry.cabin && e.status == WaitlistStatus::Waiting)
                .count()
                + 1,
        )
    }

    /// Whether the seats free in `cabin` at `now` are owed to the line: a
    /// waiting entry of that cabin fits in them.
    pub fn line_first(&self, cabin: Cabin, now: DateTime<Utc>) -> bool {
        let waiting: Vec<usize> = self
            .waitlist
            .iter()
            .filter(|e| e.cabin == cabin && e.status == WaitlistStatus::Waiting)
            .map(WaitlistEntry::seats_needed)
            .collect();
        if waiting.is_empty() {
            return false;
        }
        let free = self.available_in(cabin, now);
        waiting.into_iter().any(|needed| needed <= free)
    }

    /// Seats of `cabin` a walk-in booking could take at `now`.
    pub fn bookable_in(&self, cabin: Cabin, now: DateTime<Utc>) -> usize {
        if self.line_first(cabin, now) {
            0
        } else {
            self.available_in(cabin, now)
        }
    }

    pub(crate) fn join_waitlist(&self, cmd: JoinWaitlist) -> Result<Vec<SeatEvent>, SeatError> {
        if !self.is_open() {
            return Err(SeatError::NotOpened);
        }
        let needed = seats_needed(&cmd.passengers);
        if needed == 0 {
            return Err(SeatError::NothingRequested);
        }
        if self.total_in(cmd.cabin) < needed {
            return Err(SeatError::CabinFull {
                cabin: cmd.cabin,
                requested: needed,
                available: self.total_in(cmd.cabin),
            });
        }
        let bookable = self.bookable_in(cmd.cabin, cmd.now);
        if bookable >= needed {
            return Err(SeatError::SeatsAvailable {
                cabin: cmd.cabin,
                available: bookable,
            });
        }
        if let Some(open) = self.waitlist.iter().find(|e| {
            e.customer_id == cmd.customer_id && e.cabin == cmd.cabin && e.status.is_open()
        }) {
            return Err(SeatError::AlreadyWaiting(open.entry_id));
        }
        if self.waitlist_entry(cmd.entry_id).is_some() {
            return Err(SeatError::AlreadyWaiting(cmd.entry_id));
        }
        let personal = cmd
            .passengers
            .iter()
            .zip(cmd.details)
            .map(|(p, details)| PassengerPersonal {
                passenger_id: p.passenger_id,
                details,
            })
            .collect();
        Ok(vec![SeatEvent::WaitlistJoined(WaitlistJoined {
            entry_id: cmd.entry_id,
            subject: cmd.customer_id,
            customer_id: cmd.customer_id,
            cabin: cmd.cabin,
            passengers: cmd.passengers,
            joined_at: cmd.now,
            personal: Personal::Known(personal),
        })])
    }

    pub(crate) fn withdraw_waitlist(&self, entry_id: Uuid) -> Result<Vec<SeatEvent>, SeatError> {
        let entry = self
            .waitlist_entry(entry_id)
            .ok_or(SeatError::NoSuchEntry(entry_id))?;
        match entry.status {
            WaitlistStatus::Waiting => Ok(vec![SeatEvent::WaitlistWithdrawn(WaitlistWithdrawn {
                entry_id,
            })]),
            WaitlistStatus::Withdrawn => Ok(vec![]),
            status => Err(SeatError::EntryNotWaiting { entry_id, status }),
        }
    }

    /// Settles the offers: sold seats accept one (even if given back since),
    /// a lapsed or given-back hold lapses it.
    fn settle_offers(&self, now: DateTime<Utc>) -> Vec<SeatEvent> {
        let mut events = Vec::new();
        for entry in &self.waitlist {
            let (WaitlistStatus::Offered, Some((booking_id, _))) = (entry.status, entry.offer)
            else {
                continue;
            };
            let seats = self.seats_of(booking_id);
            let states: Vec<_> = seats
                .iter()
                .filter_map(|s| self.status_at(*s, now))
                .collect();
            if entry.offer_sold {
                events.push(SeatEvent::WaitlistOfferAccepted(WaitlistOfferAccepted {
                    entry_id: entry.entry_id,
                    booking_id,
                }));
            } else if states.is_empty()
                || states
                    .iter()
                    .all(|s| *s == crate::seats::SeatState::Available)
            {
                events.push(SeatEvent::WaitlistEntryLapsed(WaitlistEntryLapsed {
                    entry_id: entry.entry_id,
                    reason: "the offer was not taken up in time".into(),
                }));
            }
        }
        events
    }
}

/// Serving the line: what the waiting-list process manager asks for when
/// seats of a flight with people waiting may have come back.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeWaitlist {
    /// The booking an offer creates, if one is made.
    pub booking_id: Uuid,
    pub pnr: Pnr,
    pub offer_expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What serving the line decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Served {
    pub seats: Vec<SeatEvent>,
    /// The offered booking's creation, when an offer was made.
    pub booking: Vec<BookingEvent>,
    /// The entry that got an offer: serve again, more may fit.
    pub offered: Option<Uuid>,
}

/// Settles the offers (accepted when the seats were sold, lapsed when the
/// hold ran out or was given back), closes the line of a cancelled or
/// departed flight, and offers the free seats to the first waiting entry
/// they fit, as a `HELD` booking of its passengers until
/// `offer_expires_at`. One offer per call: the caller serves again while
/// offers are made.
pub fn serve_waitlist(
    flight: &Flight,
    inventory: &SeatInventory,
    cmd: ServeWaitlist,
) -> Result<Served, PlaceBookingError> {
    let mut served = Served {
        seats: inventory.settle_offers(cmd.now),
        ..Served::default()
    };
    let closed = if flight.is_cancelled() {
        Some("the flight was cancelled")
    } else if flight.has_departed(cmd.now) {
        Some("the flight has departed")
    } else {
        None
    };
    if let Some(reason) = closed {
        for entry in inventory
            .waitlist
            .iter()
            .filter(|e| e.status == WaitlistStatus::Waiting)
        {
            served
                .seats
                .push(SeatEvent::WaitlistEntryLapsed(WaitlistEntryLapsed {
                    entry_id: entry.entry_id,
                    reason: reason.into(),
                }));
        }
        return Ok(served);
    }
    let settled = served
        .seats
        .iter()
        .fold(inventory.clone(), |s, e| s.evolve(e));
    let next = settled.waitlist.iter().find(|e| {
        e.status == WaitlistStatus::Waiting
            && e.seats_needed() <= settled.available_in(e.cabin, cmd.now)
    });
    let Some(entry) = next else {
        return Ok(served);
    };
    let entry_id = entry.entry_id;
    let lapse = |reason: &str| {
        SeatEvent::WaitlistEntryLapsed(WaitlistEntryLapsed {
            entry_id,
            reason: reason.into(),
        })
    };
    let Personal::Known(personal) = &entry.personal else {
        served
            .seats
            .push(lapse("the passengers' personal data was erased"));
        return Ok(served);
    };
    let passengers: Vec<PassengerRequest> = entry
        .passengers
        .iter()
        .map(|p| {
            let details = personal
                .iter()
                .find(|d| d.passenger_id == p.passenger_id)
                .map(|d| d.details.clone())
                .ok_or(BookingError::UnknownPassenger(p.passenger_id))?;
            Ok(PassengerRequest {
                passenger_id: p.passenger_id,
                kind: p.kind,
                seat: (p.kind != PassengerType::Infant).then_some(SeatRequest::Cabin(entry.cabin)),
                travels_with: p.travels_with,
                details,
            })
        })
        .collect::<Result<_, BookingError>>()?;
    let placed = place_booking_unchecked(
        flight,
        &settled,
        None,
        PlaceBooking {
            booking_id: cmd.booking_id,
            pnr: cmd.pnr,
            customer_id: entry.customer_id,
            created_by: entry.customer_id,
            passengers,
            hold_expires_at: cmd.offer_expires_at,
            now: cmd.now,
        },
    );
    match placed {
        Ok(placed) => {
            served.seats.extend(placed.seats);
            served
                .seats
                .push(SeatEvent::WaitlistOffered(WaitlistOffered {
                    entry_id,
                    customer_id: entry.customer_id,
                    booking_id: cmd.booking_id,
                    expires_at: cmd.offer_expires_at,
                }));
            served.booking = placed.booking;
            served.offered = Some(entry_id);
        }
        // The entry can never be booked as it stands (a passenger who is
        // too young by now, a cabin no longer sold): it leaves the line
        // rather than block it.
        Err(PlaceBookingError::Booking(e)) => served.seats.push(lapse(&e.to_string())),
        Err(PlaceBookingError::Pricing(e)) => served.seats.push(lapse(&e.to_string())),
        Err(e) => return Err(e),
    }
    Ok(served)
}

/// Folds a waiting-list event into the inventory's line.
pub(crate) fn evolve_line(line: &mut Vec<WaitlistEntry>, event: &SeatEvent) {
    let mut set = |entry_id: Uuid, f: &dyn Fn(&mut WaitlistEntry)| {
        if let Some(e) = line.iter_mut().find(|e| e.entry_id == entry_id) {
            f(e);
        }
    };
    match event {
        SeatEvent::WaitlistJoined(j) => line.push(WaitlistEntry {
            entry_id: j.entry_id,
            customer_id: j.customer_id,
            cabin: j.cabin,
            passengers: j.passengers.clone(),
            personal: j.personal.clone(),
            joined_at: j.joined_at,
            status: WaitlistStatus::Waiting,
            offer: None,
            offer_sold: false,
        }),
        SeatEvent::WaitlistOffered(o) => set(o.entry_id, &|e| {
            e.status = WaitlistStatus::Offered;
            e.offer = Some((o.booking_id, o.expires_at));
        }),
        SeatEvent::WaitlistOfferAccepted(a) => {
            set(a.entry_id, &|e| e.status = WaitlistStatus::Accepted)
        }
        SeatEvent::WaitlistEntryLapsed(l) => {
            set(l.entry_id, &|e| e.status = WaitlistStatus::Lapsed)
        }
        SeatEvent::WaitlistWithdrawn(w) => {
            set(w.entry_id, &|e| e.status = WaitlistStatus::Withdrawn)
        }
        SeatEvent::SeatsConfirmed(c) => {
            for e in line.iter_mut().filter(|e| {
                e.status == WaitlistStatus::Offered
                    && e.offer.is_some_and(|(booking, _)| booking == c.booking_id)
            }) {
                e.offer_sold = true;
            }
        }
        _ => {}
    }
}
