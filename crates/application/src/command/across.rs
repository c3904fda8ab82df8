//! Commands over a booking and several flights at once: a booking of
//! several flights placed, paid, cancelled; a booking moved from one flight
//! to another.
//!
//! Such a command cannot run on one [`super::lane`]: each lane owns one
//! flight. It runs beside them, optimistically: it reads the booking and
//! every flight and seat inventory it names from the store, decides, and
//! appends to all of those streams in one transaction, each guarded by the
//! version it read. The store takes its stream locks in one order, so two
//! such commands never deadlock; a lane that appended in between makes the
//! append a conflict, and the command is decided again on fresh state (the
//! lane, in turn, sees its cached state is stale on its next append and
//! reloads). A conflict is retried after a short random pause, so that a
//! command racing a busy lane gets between its batches. The streams are
//! read one after another, so a refusal decided on them counts only when
//! none of them moved since (else the command is decided again).

use std::sync::Arc;
use std::time::Duration;

use domain::booking::{Booking, BookingEvent, FlightSeats, SeatsByFlight};
use domain::discount::{DiscountCode, DiscountEvent};
use domain::flight::Flight;
use domain::payment::{Payment, PaymentEvent};
use domain::seats::{SeatEvent, SeatInventory};
use domain::Aggregate;
use eventstore::{ExpectedVersion, StreamAppend, StreamId};
use rand::Rng;
use serde_json::Value;
use uuid::Uuid;

use super::lane::{BookingRef, Decide, Decided};
use super::{encode_events, load, CommandContext, Commands, Loaded, Outcome};
use crate::error::{CommandError, CommandResult};

/// How often a command across flights is decided again after losing a race
/// for one of its streams: more than a single-stream command, since every
/// lane it touches may write between its read and its append.
const ATTEMPTS: usize = 24;

/// A flight as a command across flights reads it.
pub struct FlightRead {
    pub flight: Flight,
    pub seats: SeatInventory,
}

/// What a command across flights decided: the booking's events, each
/// flight's seat events (in the order the flights were named), payments it
/// starts (new streams, such as a move's difference), the discount code's
/// events (a new booking's redemption) and the reply.
#[derive(Default)]
pub struct AcrossDecided {
    pub booking: Vec<BookingEvent>,
    pub seats: Vec<Vec<SeatEvent>>,
    pub payments: Vec<(Uuid, Vec<PaymentEvent>)>,
    pub discount: Vec<DiscountEvent>,
    pub reply: Value,
}

/// A decision over a booking and its flights' seats (its one flight, or
/// every flight of an itinerary in the order flown): the booking's events,
/// each flight's seat events and the reply. Runs on the lane of a booking
/// of one flight, across the flights of an itinerary.
pub type OnFlights = Arc<
    dyn Fn(&Booking, &[FlightSeats<'_>]) -> CommandResult<(Vec<BookingEvent>, SeatsByFlight, Value)>
        + Send
        + Sync,
>;

/// `decision` as the lane of a booking's one flight runs it.
pub fn on_lane(decision: OnFlights) -> Decide {
    Box::new(move |flight, seats, booking, _| {
        let (events, seat_events, reply) = decision(booking, &[(flight, seats)])?;
        Ok(Decided {
            seats: seat_events.into_iter().flatten().collect(),
            booking: events,
            reply,
            ..Decided::default()
        })
    })
}

impl Commands {
    /// Runs `decision` on the booking as read (`loaded`) and its flights'
    /// seats: on its flight's lane, or across every flight of an
    /// itinerary.
    pub async fn on_its_flights(
        &self,
        ctx: &CommandContext,
        booking_id: Uuid,
        loaded: Loaded<Booking>,
        decision: OnFlights,
    ) -> CommandResult<Outcome> {
        let flights = loaded.state.flight_ids();
        match &flights[..] {
            [] => Err(CommandError::not_found("booking")),
            [flight_id] => {
                self.lanes
                    .submit(
                        *flight_id,
                        ctx.clone(),
                        Some(BookingRef::read(booking_id, loaded)),
                        on_lane(decision),
                    )
                    .await
            }
            many => self.on_flights(ctx, booking_id, many, decision).await,
        }
    }

    /// Runs `decision` across the flights `flight_ids` (all of a booking's,
    /// or the one of an itinerary a seat changes on).
    pub async fn on_flights(
        &self,
        ctx: &CommandContext,
        booking_id: Uuid,
        flight_ids: &[Uuid],
        decision: OnFlights,
    ) -> CommandResult<Outcome> {
        self.across_flights(ctx, booking_id, flight_ids, |b, read| {
            let pairs: Vec<FlightSeats<'_>> = read.iter().map(|f| (&f.flight, &f.seats)).collect();
            let (booking, seats, reply) = decision(b, &pairs)?;
            Ok(AcrossDecided {
                booking,
                seats,
                reply,
                ..AcrossDecided::default()
            })
        })
        .await
    }

    /// Runs a command on `booking_id` and the flights `flight_ids` together
    /// (see the module documentation). `decide` sees the booking and the
    /// flights in the order named.
    pub async fn across_flights<D>(
        &self,
        ctx: &CommandContext,
        booking_id: Uuid,
        flight_ids: &[Uuid],
        decide: D,
    ) -> CommandResult<Outcome>
    where
        D: Fn(&Booking, &[FlightRead]) -> CommandResult<AcrossDecided>,
    {
        self.across_flights_redeeming(ctx, booking_id, flight_ids, None, |b, f, _| decide(b, f))
            .await
    }

    /// [`Self::across_flights`] that also reads the discount code whose
    /// stream is `code` (`decide` sees its state, empty when no such code
    /// exists) and
    /// appends its events guarded by the version read: a code is never
    /// redeemed past its cap, whichever lanes or commands race for it.
    pub async fn across_flights_redeeming<D>(
        &self,
        ctx: &CommandContext,
        booking_id: Uuid,
        flight_ids: &[Uuid],
        code: Option<Uuid>,
        decide: D,
    ) -> CommandResult<Outcome>
    where
        D: Fn(&Booking, &[FlightRead], Option<&DiscountCode>) -> CommandResult<AcrossDecided>,
    {
        let booking_stream = StreamId::new(Booking::CATEGORY, booking_id);
        for attempt in 1..=ATTEMPTS {
            let code_read = match code {
                Some(id) => Some((
                    id,
                    load::<DiscountCode>(
                        &**self.store(),
                        self.sealer(),
                        &StreamId::new(DiscountCode::CATEGORY, id),
                    )
                    .await?,
                )),
                None => None,
            };
            let code_state = code_read.as_ref().map(|(_, c)| &c.state);
            let booking: Loaded<Booking> =
                load(&**self.store(), self.sealer(), &booking_stream).await?;
            let mut flights = Vec::with_capacity(flight_ids.len());
            let mut versions = Vec::with_capacity(flight_ids.len());
            for id in flight_ids {
                let flight: Loaded<Flight> = load(
                    &**self.store(),
                    self.sealer(),
                    &StreamId::new(Flight::CATEGORY, *id),
                )
                .await?;
                let seats: Loaded<SeatInventory> = load(
                    &**self.store(),
                    self.sealer(),
                    &StreamId::new(SeatInventory::CATEGORY, *id),
                )
                .await?;
                versions.push((flight.version, seats.version));
                flights.push(FlightRead {
                    flight: flight.state,
                    seats: seats.state,
                });
            }
            let decided = match decide(&booking.state, &flights, code_state) {
                Ok(d) => d,
                Err(e) => {
                    // A retry of a command that was accepted answers as
                    // before.
                    if let Some(first) = self.replay(ctx).await? {
                        return Ok(first);
                    }
                    // The streams were read one after another, not in one
                    // snapshot: a refusal is only an answer if none of them
                    // moved meanwhile (a booking read before its
                    // cancellation and its seats read after it would be
                    // refused for holding none).
                    let code_moved = match &code_read {
                        Some((id, c)) => {
                            self.store()
                                .stream_version(&StreamId::new(DiscountCode::CATEGORY, *id))
                                .await?
                                != c.version
                        }
                        None => false,
                    };
                    if attempt < ATTEMPTS
                        && (code_moved
                            || self
                                .moved_since(
                                    &booking_stream,
                                    booking.version,
                                    flight_ids,
                                    &versions,
                                )
                                .await?)
                    {
                        continue;
                    }
                    return Err(e);
                }
            };
            let mut appends = vec![StreamAppend {
                stream: booking_stream.clone(),
                expected: ExpectedVersion::Exact(booking.version),
                events: encode_events(self.sealer(), &decided.booking, ctx).await?,
            }];
            for ((id, (flight_version, seats_version)), events) in
                flight_ids.iter().zip(&versions).zip(&decided.seats)
            {
                // The flight is guarded too (unchanged): a flight cancelled
                // or re-priced meanwhile is decided again.
                appends.push(StreamAppend {
                    stream: StreamId::new(Flight::CATEGORY, *id),
                    expected: ExpectedVersion::Exact(*flight_version),
                    events: vec![],
                });
                appends.push(StreamAppend {
                    stream: StreamId::new(SeatInventory::CATEGORY, *id),
                    expected: ExpectedVersion::Exact(*seats_version),
                    events: encode_events(self.sealer(), events, ctx).await?,
                });
            }
            if let Some((id, read)) = &code_read {
                if !decided.discount.is_empty() {
                    appends.push(StreamAppend {
                        stream: StreamId::new(DiscountCode::CATEGORY, *id),
                        expected: ExpectedVersion::Exact(read.version),
                        events: encode_events(self.sealer(), &decided.discount, ctx).await?,
                    });
                }
            }
            for (payment_id, events) in &decided.payments {
                appends.push(StreamAppend {
                    stream: StreamId::new(Payment::CATEGORY, *payment_id),
                    expected: ExpectedVersion::NO_STREAM,
                    events: encode_events(self.sealer(), events, ctx).await?,
                });
            }
            match self.append(ctx, appends, decided.reply).await {
                Err(CommandError::Concurrency(_)) if attempt < ATTEMPTS => {
                    metrics::counter!("booking_command_conflicts_total", "stream" => "across")
                        .increment(1);
                    let pause = rand::thread_rng().gen_range(1..=5 * attempt as u64);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
        Err(CommandError::contention())
    }

    /// Whether the booking or any of the flights' streams is past the
    /// version a decision read.
    async fn moved_since(
        &self,
        booking: &StreamId,
        booking_version: u64,
        flight_ids: &[Uuid],
        versions: &[(u64, u64)],
    ) -> CommandResult<bool> {
        let store = self.store();
        if store.stream_version(booking).await? != booking_version {
            return Ok(true);
        }
        for (id, (flight, seats)) in flight_ids.iter().zip(versions) {
            if store
                .stream_version(&StreamId::new(Flight::CATEGORY, *id))
                .await?
                != *flight
                || store
                    .stream_version(&StreamId::new(SeatInventory::CATEGORY, *id))
                    .await?
                    != *seats
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
