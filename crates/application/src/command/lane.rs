//! One lane per flight: the in-process serialisation and group commit of
//! every command that touches a flight's streams (`flight-…`, `seats-…`).
//!
//! A popular flight is one hot stream. Letting concurrent requests race on
//! it with optimistic concurrency turns into a retry storm. Instead each
//! flight gets one worker task that keeps the flight and its seat inventory
//! in memory, takes every command queued for it, decides them one after
//! another against the evolving state and appends all their events in a
//! single transaction. Expected versions still guard the append, so another
//! process writing the same flight is detected as a conflict: the worker
//! reloads and decides the batch again.
//!
//! A command's failure is its own. Within a batch:
//! - commands on the same booking are decided in order against the
//!   booking as the earlier ones left it (a second cancel sees a cancelled
//!   booking), and their events go out in one append to that stream;
//! - a second command with the same id (a client retrying before the first
//!   answer came back) waits for the first and gets its outcome;
//! - a command whose events cannot be encoded fails alone, and the others
//!   are decided again without it;
//! - when the store refuses the batch for any reason but a conflict, the
//!   commands are appended one by one, so only the one the store refuses
//!   fails;
//! - a command may also append to its booking's payment (the fulfilment
//!   completing in one step); a conflict on that payment fails that command
//!   alone;
//! - a command may redeem a discount code: commands of the batch on the
//!   same code are decided in order against its uses as the earlier ones
//!   left them, and its stream is guarded by the version read, so a code
//!   redeemed on another flight's lane at the same time is a conflict and
//!   the batch is decided again on the new count (a cap is never passed);
//! - a booking that moved to another flight (see [`super::across`]) is
//!   refused: its caller read it on the old flight, and retries on the new
//!   one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::booking::{Booking, BookingEvent};
use domain::discount::{DiscountCode, DiscountEvent};
use domain::flight::{Flight, FlightEvent};
use domain::payment::{Payment, PaymentEvent};
use domain::seats::{SeatEvent, SeatInventory};
use domain::Aggregate;
use eventstore::{
    AppendRequest, AppendResult, CommandRecord, EventStore, ExpectedVersion, NewEvent, Sealer,
    StoreError, StreamAppend, StreamId,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    command_record, encode_events, load, outcome, replay, CommandContext, Loaded, Outcome,
    MAX_ATTEMPTS,
};
use crate::error::{CommandError, CommandResult};

/// Most commands decided and appended together.
const MAX_BATCH: usize = 256;
/// A lane with nothing to do for this long lets its state go.
const IDLE: Duration = Duration::from_secs(30);

/// What one command decided on a flight.
#[derive(Debug, Default)]
pub struct Decided {
    pub flight: Vec<FlightEvent>,
    pub seats: Vec<SeatEvent>,
    /// Events for the booking the command named when it was submitted.
    pub booking: Vec<BookingEvent>,
    /// Events for the discount code the command named when it was
    /// submitted.
    pub discount: Vec<DiscountEvent>,
    /// Events for a payment, decided on the version the command read.
    pub payment: Option<PaymentAppend>,
    /// The command's reply (see [`Outcome`]).
    pub reply: Value,
}

/// A command's events for a payment stream, guarded by the version its
/// decision read (nothing else on the lane keeps payments).
#[derive(Debug)]
pub struct PaymentAppend {
    pub payment_id: Uuid,
    pub version: u64,
    pub events: Vec<PaymentEvent>,
}

/// A decision over a flight, its seats, the booking the command names (an
/// empty booking when it names none, or one that does not exist yet) and
/// the discount code it names, if any (empty when no such code exists).
/// Called again whenever the batch is decided again, so it must not have
/// side effects.
pub type Decide = Box<
    dyn Fn(&Flight, &SeatInventory, &Booking, Option<&DiscountCode>) -> CommandResult<Decided>
        + Send
        + Sync,
>;

/// The booking a command reads and writes on the lane.
#[derive(Debug, Clone)]
pub struct BookingRef {
    pub id: Uuid,
    /// The booking as the caller read it, if it did: used unless another
    /// command of the batch changed it, or the store says it is stale.
    pub read: Option<Loaded<Booking>>,
}

impl BookingRef {
    /// A booking the command creates.
    pub fn new(id: Uuid) -> Self {
        Self {
            id,
            read: Some(Loaded {
                state: Booking::default(),
                version: 0,
            }),
        }
    }

    /// A booking the caller has read.
    pub fn read(id: Uuid, loaded: Loaded<Booking>) -> Self {
        Self {
            id,
            read: Some(loaded),
        }
    }
}

struct Job {
    ctx: CommandContext,
    booking: Option<BookingRef>,
    /// The discount code (its stream's id) the command redeems.
    discount: Option<Uuid>,
    decide: Decide,
    reply: oneshot::Sender<CommandResult<Outcome>>,
}

impl Job {
    fn command_id(&self) -> Option<Uuid> {
        self.ctx.idempotency.as_ref().map(|i| i.command_id)
    }
}

#[derive(Clone)]
pub struct Lanes {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn EventStore>,
    sealer: Sealer,
    senders: Mutex<HashMap<Uuid, mpsc::Sender<Job>>>,
}

impl Lanes {
    pub fn new(store: Arc<dyn EventStore>, sealer: Sealer) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                sealer,
                senders: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Queues a command on the flight's lane and waits for its outcome.
    pub async fn submit(
        &self,
        flight_id: Uuid,
        ctx: CommandContext,
        booking: Option<BookingRef>,
        decide: Decide,
    ) -> CommandResult<Outcome> {
        self.submit_with_discount(flight_id, ctx, booking, None, decide)
            .await
    }

    /// [`submit`](Self::submit) for a command that also redeems the
    /// discount code whose stream is `discount`.
    pub async fn submit_with_discount(
        &self,
        flight_id: Uuid,
        ctx: CommandContext,
        booking: Option<BookingRef>,
        discount: Option<Uuid>,
        decide: Decide,
    ) -> CommandResult<Outcome> {
        let (reply, answer) = oneshot::channel();
        let mut job = Job {
            ctx,
            booking,
            discount,
            decide,
            reply,
        };
        loop {
            let sender = self.sender(flight_id);
            match sender.send(job).await {
                Ok(()) => break,
                // The lane just retired: start a new one.
                Err(mpsc::error::SendError(returned)) => {
                    job = returned;
                    self.retire(flight_id, &sender);
                }
            }
        }
        answer
            .await
            .map_err(|_| CommandError::Unavailable("the command was interrupted; retry".into()))?
    }

    fn sender(&self, flight_id: Uuid) -> mpsc::Sender<Job> {
        let mut senders = self.inner.senders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = senders.get(&flight_id) {
            if !s.is_closed() {
                return s.clone();
            }
        }
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        senders.insert(flight_id, tx.clone());
        tokio::spawn(run_lane(self.clone(), flight_id, rx, tx.downgrade()));
        tx
    }

    fn retire(&self, flight_id: Uuid, sender: &mpsc::Sender<Job>) {
        let mut senders = self.inner.senders.lock().unwrap_or_else(|p| p.into_inner());
        if senders
            .get(&flight_id)
            .is_some_and(|s| s.same_channel(sender))
        {
            senders.remove(&flight_id);
        }
    }
}

struct FlightState {
    flight: Loaded<Flight>,
    seats: Loaded<SeatInventory>,
}

/// One flight's lane: its streams and the state it keeps of them.
struct Lane {
    lanes: Lanes,
    flight_id: Uuid,
    flight_stream: StreamId,
    seats_stream: StreamId,
    cached: Option<FlightState>,
}

async fn run_lane(
    lanes: Lanes,
    flight_id: Uuid,
    mut rx: mpsc::Receiver<Job>,
    me: mpsc::WeakSender<Job>,
) {
    let mut lane = Lane {
        lanes,
        flight_id,
        flight_stream: StreamId::new(Flight::CATEGORY, flight_id),
        seats_stream: StreamId::new(SeatInventory::CATEGORY, flight_id),
        cached: None,
    };
    // Commands that waited for another of their batch to commit.
    let mut waiting: Vec<Job> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut waiting);
        if batch.is_empty() {
            let first = match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(job)) => job,
                Ok(None) => return,
                Err(_idle) => {
                    // Retire unless something is queued. A sender that cloned
                    // the channel just before finds it closed and starts a new
                    // lane.
                    let mut senders = lane
                        .lanes
                        .inner
                        .senders
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    if rx.is_empty() {
                        let mine = me.upgrade();
                        if let (Some(current), Some(mine)) = (senders.get(&flight_id), mine) {
                            if current.same_channel(&mine) {
                                senders.remove(&flight_id);
                            }
                        }
                        return;
                    }
                    continue;
                }
            };
            batch.push(first);
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("booking_lane_batch_size").record(batch.len() as f64);
        waiting = lane.run(batch).await;
    }
}

/// A command decided and encoded, ready to be appended.
struct Staged {
    job: Job,
    flight: Vec<NewEvent>,
    seats: Vec<NewEvent>,
    booking: Vec<NewEvent>,
    discount: Vec<NewEvent>,
    payment: Option<StreamAppend>,
    record: Option<CommandRecord>,
    reply: Value,
}

/// The discount codes a batch reads, as its commands leave them.
struct BatchDiscount {
    /// The version the batch's append expects.
    base: u64,
    state: DiscountCode,
}

/// The bookings a batch reads, as its commands leave them.
struct BatchBooking {
    /// The version the batch's append expects.
    base: u64,
    state: Booking,
}

/// How an append of staged commands went.
enum Appended {
    /// Every command has its answer.
    Done,
    /// Decide these again (the store moved under them).
    Again(Vec<Job>),
    /// The store refused the append for another reason than a conflict:
    /// these commands need to be appended one by one.
    Refused(Vec<Job>),
}

impl Lane {
    fn store(&self) -> &dyn EventStore {
        &*self.lanes.inner.store
    }

    fn sealer(&self) -> &Sealer {
        &self.lanes.inner.sealer
    }

    /// Runs a batch; answers the commands that waited for a twin of theirs
    /// to commit, and returns those that must wait for another round.
    async fn run(&mut self, batch: Vec<Job>) -> Vec<Job> {
        let (jobs, waiting) = split_twins(batch);
        let mut stale = HashSet::new();
        match self.decide_and_append(jobs, &mut stale).await {
            Appended::Done => {}
            Appended::Again(jobs) => fail_all(jobs, &CommandError::contention()),
            // One by one: the one the store refuses fails alone.
            Appended::Refused(jobs) => {
                for job in jobs {
                    match self.decide_and_append(vec![job], &mut stale).await {
                        Appended::Done => {}
                        Appended::Again(jobs) => fail_all(jobs, &CommandError::contention()),
                        Appended::Refused(jobs) => fail_all(jobs, &storage_failed()),
                    }
                }
            }
        }
        self.answer_twins(waiting).await
    }

    /// Commands that waited for their twin: the twin's stored outcome if it
    /// committed, another round otherwise.
    async fn answer_twins(&self, waiting: Vec<Job>) -> Vec<Job> {
        let mut again = Vec::new();
        for job in waiting {
            let found = match &job.ctx.idempotency {
                Some(idem) => replay(self.store(), self.sealer(), idem).await,
                None => Ok(None),
            };
            match found {
                Ok(Some(first)) => {
                    let _ = job.reply.send(Ok(first));
                }
                Ok(None) => again.push(job),
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
        again
    }

    /// Decides `batch` against the flight and appends what it decided, again
    /// while another writer got there first (at most [`MAX_ATTEMPTS`] times).
    async fn decide_and_append(
        &mut self,
        mut batch: Vec<Job>,
        stale: &mut HashSet<Uuid>,
    ) -> Appended {
        for _ in 0..MAX_ATTEMPTS {
            if batch.is_empty() {
                return Appended::Done;
            }
            if let Err(e) = self.ensure_loaded().await {
                fail_all(batch, &e);
                return Appended::Done;
            }
            // The cached state is taken, not cloned (a seat map is large):
            // it is put back only once the append succeeded, and reloaded
            // otherwise.
            let Some(state) = self.cached.take() else {
                return Appended::Done;
            };
            let versions = (state.flight.version, state.seats.version);
            let (mut flight, mut seats) = (state.flight.state, state.seats.state);
            let mut bookings: HashMap<Uuid, BatchBooking> = HashMap::new();
            let mut discounts: HashMap<Uuid, BatchDiscount> = HashMap::new();
            let mut staged: Vec<Staged> = Vec::with_capacity(batch.len());
            for job in batch.drain(..) {
                let booking = match self.booking_for(&job, &bookings, stale).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = job.reply.send(Err(e));
                        continue;
                    }
                };
                // A booking that moved to another flight (after the caller
                // read it) is that flight's lane's: deciding it here would
                // touch seats it no longer has.
                if let Some(info) = &booking.state.info {
                    if info.flight_id != self.flight_id {
                        let _ = job.reply.send(Err(CommandError::Concurrency(
                            "the booking moved to another flight meanwhile; retry".into(),
                        )));
                        continue;
                    }
                }
                let discount = match job.discount {
                    Some(id) => match self.discount_for(id, &mut discounts).await {
                        Ok(()) => discounts.get(&id).map(|d| &d.state),
                        Err(e) => {
                            let _ = job.reply.send(Err(e));
                            continue;
                        }
                    },
                    None => None,
                };
                let decided = match (job.decide)(&flight, &seats, &booking.state, discount) {
                    Ok(d) => d,
                    Err(e) => {
                        // A retry of an already accepted command answers as
                        // before.
                        let answer = self.replay_or(&job.ctx, e).await;
                        let _ = job.reply.send(answer);
                        continue;
                    }
                };
                // Encoded before anything is applied: a command whose
                // events cannot be stored fails alone.
                let encoded = match self.encode(&job, &decided).await {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(correlation_id = %job.ctx.correlation_id, error = %e,
                            "a command's events could not be encoded");
                        let _ = job.reply.send(Err(e));
                        continue;
                    }
                };
                flight = decided.flight.iter().fold(flight, |s, e| s.evolve(e));
                seats = decided.seats.iter().fold(seats, |s, e| s.evolve(e));
                if let Some(d) = job.discount.and_then(|id| discounts.get_mut(&id)) {
                    d.state = decided
                        .discount
                        .iter()
                        .fold(std::mem::take(&mut d.state), |s, e| s.evolve(e));
                }
                if let Some(b) = &job.booking {
                    let state = decided
                        .booking
                        .iter()
                        .fold(booking.state, |s, e| s.evolve(e));
                    bookings.insert(
                        b.id,
                        BatchBooking {
                            base: booking.base,
                            state,
                        },
                    );
                }
                let (flight_events, seat_events, booking_events, discount_events, payment, record) =
                    encoded;
                staged.push(Staged {
                    job,
                    flight: flight_events,
                    seats: seat_events,
                    booking: booking_events,
                    discount: discount_events,
                    payment,
                    record,
                    reply: decided.reply,
                });
            }
            if staged.is_empty() {
                // Nothing was decided: the taken state is still current.
                self.cached = Some(FlightState {
                    flight: Loaded {
                        state: flight,
                        version: versions.0,
                    },
                    seats: Loaded {
                        state: seats,
                        version: versions.1,
                    },
                });
                return Appended::Done;
            }
            let request = self.request(versions, &bookings, &discounts, &mut staged);
            let started = Instant::now();
            let result = self.store().append(request).await;
            metrics::histogram!("booking_append_seconds").record(started.elapsed().as_secs_f64());
            match result {
                Ok(r) => {
                    self.cache(versions, flight, seats, &r);
                    for s in staged {
                        let _ = s.job.reply.send(Ok(outcome(s.reply, &r)));
                    }
                    return Appended::Done;
                }
                Err(StoreError::Conflict { stream, .. })
                    if stream.as_str().starts_with(PAYMENT_PREFIX) =>
                {
                    // A payment moved under the command that read it: that
                    // command fails alone; the others are decided again.
                    for s in staged {
                        if s.payment.as_ref().is_some_and(|p| p.stream == stream) {
                            let _ = s.job.reply.send(Err(CommandError::contention()));
                        } else {
                            batch.push(s.job);
                        }
                    }
                }
                Err(StoreError::Conflict { stream, .. }) => {
                    // Another process wrote this flight or one of these
                    // bookings, or another lane redeemed one of these codes:
                    // reload and decide again on fresh state (discount codes
                    // are read afresh by every attempt).
                    let what = if stream == self.flight_stream || stream == self.seats_stream {
                        "seats"
                    } else if stream.as_str().starts_with(DISCOUNT_PREFIX) {
                        "discount"
                    } else {
                        "booking"
                    };
                    metrics::counter!("booking_command_conflicts_total", "stream" => what)
                        .increment(1);
                    if let Some(id) = booking_of(&stream) {
                        stale.insert(id);
                    }
                    batch = staged.into_iter().map(|s| s.job).collect();
                }
                Err(StoreError::DuplicateCommand(_)) => {
                    // A twin of one of these committed first (another
                    // process, or before a restart): answer it from its
                    // record and decide the others again.
                    for s in staged {
                        let found = match &s.job.ctx.idempotency {
                            Some(idem) => replay(self.store(), self.sealer(), idem).await,
                            None => Ok(None),
                        };
                        match found {
                            Ok(Some(a)) => {
                                let _ = s.job.reply.send(Ok(a));
                            }
                            Ok(None) => batch.push(s.job),
                            Err(e) => {
                                let _ = s.job.reply.send(Err(e));
                            }
                        }
                    }
                }
                Err(e) => {
                    let jobs: Vec<Job> = staged.into_iter().map(|s| s.job).collect();
                    if jobs.len() > 1 {
                        tracing::warn!(error = %e, commands = jobs.len(),
                            "a batch was refused by the store; appending its commands one by one");
                        return Appended::Refused(jobs);
                    }
                    for job in jobs {
                        tracing::error!(correlation_id = %job.ctx.correlation_id, error = %e,
                            "the store refused a command");
                        let _ = job.reply.send(Err(storage_failed()));
                    }
                    return Appended::Done;
                }
            }
        }
        Appended::Again(batch)
    }

    async fn ensure_loaded(&mut self) -> CommandResult<()> {
        if self.cached.is_none() {
            let store = &*self.lanes.inner.store;
            let sealer = &self.lanes.inner.sealer;
            self.cached = Some(FlightState {
                flight: load(store, sealer, &self.flight_stream).await?,
                seats: load(store, sealer, &self.seats_stream).await?,
            });
        }
        Ok(())
    }

    /// The booking a job decides on: as the batch's earlier commands left
    /// it, else as the caller read it, else (or when that read proved
    /// stale) from the store.
    async fn booking_for(
        &self,
        job: &Job,
        batch: &HashMap<Uuid, BatchBooking>,
        stale: &HashSet<Uuid>,
    ) -> CommandResult<BatchBooking> {
        let Some(b) = &job.booking else {
            return Ok(BatchBooking {
                base: 0,
                state: Booking::default(),
            });
        };
        if let Some(current) = batch.get(&b.id) {
            return Ok(BatchBooking {
                base: current.base,
                state: current.state.clone(),
            });
        }
        let loaded = match &b.read {
            Some(read) if !stale.contains(&b.id) => read.clone(),
            _ => {
                load(
                    self.store(),
                    self.sealer(),
                    &StreamId::new(Booking::CATEGORY, b.id),
                )
                .await?
            }
        };
        Ok(BatchBooking {
            base: loaded.version,
            state: loaded.state,
        })
    }

    /// Loads the discount code `id` into the batch, unless an earlier
    /// command of the batch did: always from the store, so that an attempt
    /// after a conflict sees the uses another lane added.
    async fn discount_for(
        &self,
        id: Uuid,
        batch: &mut HashMap<Uuid, BatchDiscount>,
    ) -> CommandResult<()> {
        if let std::collections::hash_map::Entry::Vacant(slot) = batch.entry(id) {
            let loaded: Loaded<DiscountCode> = load(
                self.store(),
                self.sealer(),
                &StreamId::new(DiscountCode::CATEGORY, id),
            )
            .await?;
            slot.insert(BatchDiscount {
                base: loaded.version,
                state: loaded.state,
            });
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    async fn encode(
        &self,
        job: &Job,
        d: &Decided,
    ) -> CommandResult<(
        Vec<NewEvent>,
        Vec<NewEvent>,
        Vec<NewEvent>,
        Vec<NewEvent>,
        Option<StreamAppend>,
        Option<CommandRecord>,
    )> {
        let sealer = self.sealer();
        let payment = match &d.payment {
            Some(p) => Some(StreamAppend {
                stream: StreamId::new(Payment::CATEGORY, p.payment_id),
                expected: ExpectedVersion::Exact(p.version),
                events: encode_events(sealer, &p.events, &job.ctx).await?,
            }),
            None => None,
        };
        Ok((
            encode_events(sealer, &d.flight, &job.ctx).await?,
            encode_events(sealer, &d.seats, &job.ctx).await?,
            encode_events(sealer, &d.booking, &job.ctx).await?,
            encode_events(sealer, &d.discount, &job.ctx).await?,
            payment,
            match &job.ctx.idempotency {
                Some(idem) => Some(command_record(sealer, idem, &job.ctx, &d.reply).await?),
                None => None,
            },
        ))
    }

    /// One append for the whole batch: the flight, its seats, each booking
    /// once (with every event the batch decided for it), and the command
    /// records.
    fn request(
        &self,
        versions: (u64, u64),
        bookings: &HashMap<Uuid, BatchBooking>,
        discounts: &HashMap<Uuid, BatchDiscount>,
        staged: &mut [Staged],
    ) -> AppendRequest {
        let mut flight_events = Vec::new();
        let mut seat_events = Vec::new();
        let mut booking_events: Vec<(Uuid, Vec<NewEvent>)> = Vec::new();
        let mut discount_events: Vec<(Uuid, Vec<NewEvent>)> = Vec::new();
        let mut commands = Vec::new();
        let mut payments = Vec::new();
        for s in staged.iter_mut() {
            payments.extend(s.payment.clone());
            flight_events.append(&mut s.flight);
            seat_events.append(&mut s.seats);
            if let Some(b) = &s.job.booking {
                let events = std::mem::take(&mut s.booking);
                match booking_events.iter_mut().find(|(id, _)| *id == b.id) {
                    Some((_, all)) => all.extend(events),
                    None => booking_events.push((b.id, events)),
                }
            }
            if let Some(id) = s.job.discount {
                let events = std::mem::take(&mut s.discount);
                match discount_events.iter_mut().find(|(d, _)| *d == id) {
                    Some((_, all)) => all.extend(events),
                    None => discount_events.push((id, events)),
                }
            }
            commands.extend(s.record.take());
        }
        // Both versions guard every decision, even one that writes nothing to
        // that stream: decisions read the flight (fares, schedule, whether it
        // is cancelled) and the seat map (a cancellation that finds nothing
        // sold returns nothing). Another process's write to either, or a
        // killed process's append that committed late, then shows as a
        // conflict and the batch is decided again on fresh state instead of
        // on a stale map.
        let mut streams = vec![StreamAppend {
            stream: self.flight_stream.clone(),
            expected: ExpectedVersion::Exact(versions.0),
            events: flight_events,
        }];
        if !seat_events.is_empty() || versions.1 > 0 {
            streams.push(StreamAppend {
                stream: self.seats_stream.clone(),
                expected: ExpectedVersion::Exact(versions.1),
                events: seat_events,
            });
        }
        for (id, events) in booking_events {
            // A booking read (and guarded) but left unchanged by every
            // command of the batch needs no append of its own.
            let base = bookings.get(&id).map_or(0, |b| b.base);
            if events.is_empty() {
                continue;
            }
            streams.push(StreamAppend {
                stream: StreamId::new(Booking::CATEGORY, id),
                expected: ExpectedVersion::Exact(base),
                events,
            });
        }
        for (id, events) in discount_events {
            // A code whose every redemption was refused is not written;
            // one that was read is guarded whenever it is.
            if events.is_empty() {
                continue;
            }
            streams.push(StreamAppend {
                stream: StreamId::new(DiscountCode::CATEGORY, id),
                expected: ExpectedVersion::Exact(discounts.get(&id).map_or(0, |d| d.base)),
                events,
            });
        }
        streams.extend(payments);
        AppendRequest { streams, commands }
    }

    fn cache(
        &mut self,
        versions: (u64, u64),
        flight: Flight,
        seats: SeatInventory,
        r: &AppendResult,
    ) {
        self.cached = Some(FlightState {
            flight: Loaded {
                state: flight,
                version: r.version_of(&self.flight_stream).unwrap_or(versions.0),
            },
            seats: Loaded {
                state: seats,
                version: r.version_of(&self.seats_stream).unwrap_or(versions.1),
            },
        });
    }

    async fn replay_or(&self, ctx: &CommandContext, e: CommandError) -> CommandResult<Outcome> {
        if let Some(idem) = &ctx.idempotency {
            if let Some(a) = replay(self.store(), self.sealer(), idem).await? {
                return Ok(a);
            }
        }
        Err(e)
    }
}

/// The jobs to decide now, and the twins (a second command with an id seen
/// earlier in the batch) that wait for the first to commit.
fn split_twins(batch: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut seen = HashSet::new();
    let (mut now, mut later) = (Vec::with_capacity(batch.len()), Vec::new());
    for job in batch {
        match job.command_id() {
            Some(id) if !seen.insert(id) => later.push(job),
            _ => now.push(job),
        }
    }
    (now, later)
}

/// How payment streams' names begin.
const PAYMENT_PREFIX: &str = "payment-";
/// How discount code streams' names begin.
const DISCOUNT_PREFIX: &str = "discount-";

/// The booking id of a `booking-…` stream.
fn booking_of(stream: &StreamId) -> Option<Uuid> {
    let (category, id) = stream.as_str().split_once('-')?;
    (category == Booking::CATEGORY)
        .then(|| id.parse().ok())
        .flatten()
}

/// What a command the store refused is told; the cause is logged, not
/// answered.
fn storage_failed() -> CommandError {
    CommandError::Unavailable("the command could not be stored; retry later".into())
}

fn fail_all(jobs: Vec<Job>, e: &CommandError) {
    for job in jobs {
        let _ = job.reply.send(Err(e.for_each_of_batch()));
    }
}
