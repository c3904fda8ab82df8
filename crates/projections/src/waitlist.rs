//! Projector `waitlist`: the entries of the flights' waiting lists
//! (`rm_waitlist_entries`), for `myWaitlist` and `waitlistUpdated`.
//!
//! The line lives in the seat inventory stream (`seats-<flight_id>`, see
//! [`domain::waitlist`]), among a flight's seat events: the projector reads
//! the `seats` category and skips every event but the line's. Nothing
//! personal is kept (the passengers' names stay in the sealed event), so it
//! never opens personal data.
//!
//! An entry's place in line is not stored: every entry that leaves the line
//! would move all those behind it. It is counted when read
//! ([`crate::model::waitlist`]), from `joined_position`, the order of the
//! `WaitlistJoined` events in the log.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::seats::SeatEvent;
use domain::waitlist::WaitlistStatus;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::event::{Decoded, Event};
use crate::model::waitlist::EntryRecord;
use crate::projector::Projector;
use crate::Result;

pub struct WaitlistProjector;

#[async_trait]
impl Projector for WaitlistProjector {
    fn name(&self) -> &'static str {
        "waitlist"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["seats"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_waitlist_entries"]
    }
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> Result<()> {
        // Most batches of the seats category are holds and sales: nothing
        // to read or write for them.
        if !events.iter().any(|d| line_event(d).is_some()) {
            return Ok(());
        }
        let mut state = State::load(conn, events).await?;
        for d in events {
            state.apply(d);
        }
        state.write(conn).await
    }
}

/// The waiting-list event of `d` and its entry, if it is one.
fn line_event(d: &Decoded) -> Option<(&SeatEvent, Uuid)> {
    let Event::Seats(e) = &d.event else {
        return None;
    };
    let entry = match e {
        SeatEvent::WaitlistJoined(j) => j.entry_id,
        SeatEvent::WaitlistOffered(o) => o.entry_id,
        SeatEvent::WaitlistOfferAccepted(a) => a.entry_id,
        SeatEvent::WaitlistEntryLapsed(l) => l.entry_id,
        SeatEvent::WaitlistWithdrawn(w) => w.entry_id,
        SeatEvent::SeatsHeld(_)
        | SeatEvent::SeatsReleased(_)
        | SeatEvent::HoldExpired(_)
        | SeatEvent::SeatsConfirmed(_)
        | SeatEvent::SeatsReturned(_)
        | SeatEvent::SeatChanged(_)
        | SeatEvent::InventoryOpened(_) => return None,
    };
    Some((e, entry))
}

#[derive(Default)]
struct State {
    entries: HashMap<Uuid, EntryRecord>,
    dirty: HashSet<Uuid>,
}

impl State {
    /// The rows of the entries the batch moves on; entries that join in
    /// the batch have none yet.
    async fn load(conn: &mut PgConnection, events: &[Decoded]) -> Result<Self> {
        let joined: HashSet<Uuid> = events
            .iter()
            .filter_map(|d| match line_event(d) {
                Some((SeatEvent::WaitlistJoined(_), id)) => Some(id),
                _ => None,
            })
            .collect();
        let ids: Vec<Uuid> = events
            .iter()
            .filter_map(line_event)
            .map(|(_, id)| id)
            .filter(|id| !joined.contains(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut state = State::default();
        if ids.is_empty() {
            return Ok(state);
        }
        let rows: Vec<EntryRecord> = sqlx::query_as(
            "SELECT entry_id, flight_id, cabin, customer_id, seats, passengers, status, \
                    joined_position, joined_at, offer_booking_id, offer_expires_at, updated_at \
             FROM rm_waitlist_entries WHERE entry_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        state.entries = rows.into_iter().map(|r| (r.entry_id, r)).collect();
        Ok(state)
    }

    fn apply(&mut self, d: &Decoded) {
        let Some((event, id)) = line_event(d) else {
            return;
        };
        let at: DateTime<Utc> = d.recorded_at;
        if let SeatEvent::WaitlistJoined(j) = event {
            let Some(flight_id) = d.aggregate_id else {
                tracing::warn!(stream = %d.stream_id, entry = %id, "waiting-list entry outside a flight's stream");
                return;
            };
            let seats = j
                .passengers
                .iter()
                .filter(|p| p.kind != domain::booking::PassengerType::Infant)
                .count();
            self.entries.insert(
                id,
                EntryRecord {
                    entry_id: id,
                    flight_id,
                    cabin: j.cabin.as_str().to_owned(),
                    customer_id: j.customer_id,
                    seats: seats as i32,
                    passengers: j.passengers.len() as i32,
                    status: WaitlistStatus::Waiting.as_str().to_owned(),
                    // The log's sequence number: unique, and in a flight's
                    // stream in the order its events were appended.
                    joined_position: d.position.seq as i64,
                    joined_at: j.joined_at,
                    offer_booking_id: None,
                    offer_expires_at: None,
                    updated_at: at,
                },
            );
            self.dirty.insert(id);
            return;
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            tracing::warn!(entry = %id, "waiting-list event for an entry never joined");
            return;
        };
        let status = match event {
            SeatEvent::WaitlistOffered(o) => {
                entry.offer_booking_id = Some(o.booking_id);
                entry.offer_expires_at = Some(o.expires_at);
                WaitlistStatus::Offered
            }
            SeatEvent::WaitlistOfferAccepted(a) => {
                entry.offer_booking_id = Some(a.booking_id);
                WaitlistStatus::Accepted
            }
            SeatEvent::WaitlistEntryLapsed(_) => WaitlistStatus::Lapsed,
            SeatEvent::WaitlistWithdrawn(_) => WaitlistStatus::Withdrawn,
            _ => return,
        };
        entry.status = status.as_str().to_owned();
        entry.updated_at = at;
        self.dirty.insert(id);
    }

    /// Every changed entry in one multi-row upsert.
    async fn write(self, conn: &mut PgConnection) -> Result<()> {
        let rows: Vec<&EntryRecord> = self
            .dirty
            .iter()
            .filter_map(|id| self.entries.get(id))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO rm_waitlist_entries (entry_id, flight_id, cabin, customer_id, seats, \
                passengers, status, joined_position, joined_at, offer_booking_id, \
                offer_expires_at, updated_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::int4[], \
                $6::int4[], $7::text[], $8::int8[], $9::timestamptz[], $10::uuid[], \
                $11::timestamptz[], $12::timestamptz[]) \
             ON CONFLICT (entry_id) DO UPDATE SET status = excluded.status, \
                offer_booking_id = excluded.offer_booking_id, \
                offer_expires_at = excluded.offer_expires_at, updated_at = excluded.updated_at",
        )
        .bind(rows.iter().map(|r| r.entry_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.flight_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.cabin.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.customer_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seats).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.passengers).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.status.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.joined_position).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.joined_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.offer_booking_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.offer_expires_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
