//! Projector `flights`: flight search (`rm_flights`, `rm_flight_cabins`)
//! and the seat map (`rm_seats`), as [`crate::model::flights`] describes them.
//!
//! Seat counts follow the recorded seat locks: a held seat is not
//! available; it becomes available again when `SeatsReleased`,
//! `HoldExpired` or `SeatsReturned` arrives. A hold whose expiry passed
//! before its `HoldExpired` was written stays `HELD` here, with its
//! `hold_expires_at`, so a reader can show it as available at once.
//! Load factor per flight is `sold_seats / total_seats`.

//!
//! # Layout
//! - [`state`]: the rows a batch touches, loaded, and the events applied
//!   to them in memory.
//! - [`write`]: the changed rows written back (COPY for new ones, one
//!   upsert statement for the rest).

mod state;
mod write;

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::event::Decoded;
use crate::projector::{Projector, RebuildMemo};
use crate::Result;
use state::State;

pub struct FlightsProjector {
    /// A rebuild keeps up to this many rows in memory (see
    /// [`Projector::apply_rebuilding`]).
    memory_rows: usize,
}

impl Default for FlightsProjector {
    fn default() -> Self {
        Self {
            memory_rows: MEMO_ROWS,
        }
    }
}

impl FlightsProjector {
    /// A projector whose rebuilds write what they have built once it holds
    /// `rows` rows and go on batch by batch.
    pub fn with_memory_rows(rows: usize) -> Self {
        Self { memory_rows: rows }
    }
}

#[async_trait]
impl Projector for FlightsProjector {
    fn name(&self) -> &'static str {
        "flights"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["flight", "seats"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_flights", "rm_flight_cabins", "rm_seats"]
    }
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> Result<()> {
        let mut state = State::load(conn, events).await?;
        for d in events {
            state.apply(d);
        }
        state.write(conn).await
    }

    /// Builds the whole read model in memory and writes it once, with
    /// COPY, at the end: per batch, reading the touched seats back and
    /// upserting them again cost most of a rebuild's time. Past
    /// `memory_rows` rows it writes what it has and goes on batch by batch.
    async fn apply_rebuilding(
        &self,
        conn: &mut PgConnection,
        events: &[Decoded],
        memo: &mut RebuildMemo,
    ) -> Result<()> {
        let memo = memo.get_or_insert_with(|| {
            Box::new(Buffered(State {
                everything: true,
                ..State::default()
            }))
        });
        let Some(Buffered(state)) = memo.downcast_mut::<Buffered>() else {
            return self.apply(conn, events).await;
        };
        for d in events {
            state.apply(d);
        }
        if state.rows() > self.memory_rows {
            state.write_all(conn).await?;
            *memo = Box::new(Written);
        }
        Ok(())
    }

    async fn finish_rebuild(&self, conn: &mut PgConnection, memo: &mut RebuildMemo) -> Result<()> {
        if let Some(Buffered(state)) = memo.as_mut().and_then(|m| m.downcast_mut::<Buffered>()) {
            state.write_all(conn).await?;
        }
        *memo = Some(Box::new(Written));
        Ok(())
    }
}

/// A rebuild's read model while it is built in memory: every row in it
/// is new to the (empty) tables.
struct Buffered(State);

/// A rebuild's read model once written: later batches go through the
/// tables as usual.
struct Written;

/// About 300 bytes each: a few million rows (seats, mostly) bound a
/// rebuild's memory.
const MEMO_ROWS: usize = 3_000_000;
