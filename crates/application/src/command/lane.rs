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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::booking::BookingEvent;
use domain::flight::{Flight, FlightEvent};
use domain::seats::{SeatEvent, SeatInventory};
use domain::Aggregate;
use eventstore::{
    AppendRequest, EventStore, ExpectedVersion, Sealer, StoreError, StreamAppend, StreamId,
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
    /// Events for one booking stream, with the version they expect.
    pub booking: Option<(Uuid, ExpectedVersion, Vec<BookingEvent>)>,
    /// The command's reply (see [`Outcome`]).
    pub reply: Value,
}

/// A decision over a flight and its seats. Called again if the batch has to
/// be re-decided after a conflict, so it must not have side effects.
pub type Decide = Box<dyn Fn(&Flight, &SeatInventory) -> CommandResult<Decided> + Send + Sync>;

struct Job {
    ctx: CommandContext,
    decide: Decide,
    reply: oneshot::Sender<CommandResult<Outcome>>,
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

    /// Queues a command on the flight's lane and waits for its answer.
    pub async fn submit(
        &self,
        flight_id: Uuid,
        ctx: CommandContext,
        decide: Decide,
    ) -> CommandResult<Outcome> {
        let (reply, answer) = oneshot::channel();
        let mut job = Job { ctx, decide, reply };
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

async fn run_lane(
    lanes: Lanes,
    flight_id: Uuid,
    mut rx: mpsc::Receiver<Job>,
    me: mpsc::WeakSender<Job>,
) {
    let flight_stream = StreamId::new(Flight::CATEGORY, flight_id);
    let seats_stream = StreamId::new(SeatInventory::CATEGORY, flight_id);
    let mut cached: Option<FlightState> = None;
    loop {
        let first = match tokio::time::timeout(IDLE, rx.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(_idle) => {
                // Retire unless something is queued. A sender that cloned the
                // channel just before finds it closed and starts a new lane.
                let mut senders = lanes
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
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&lanes, &flight_stream, &seats_stream, &mut cached, batch).await;
    }
}

async fn run_batch(
    lanes: &Lanes,
    flight_stream: &StreamId,
    seats_stream: &StreamId,
    cached: &mut Option<FlightState>,
    mut batch: Vec<Job>,
) {
    let store = &*lanes.inner.store;
    let sealer = &lanes.inner.sealer;
    metrics::histogram!("booking_lane_batch_size").record(batch.len() as f64);
    for attempt in 1..=MAX_ATTEMPTS {
        if cached.is_none() {
            let loaded = async {
                Ok::<_, CommandError>(FlightState {
                    flight: load(store, sealer, flight_stream).await?,
                    seats: load(store, sealer, seats_stream).await?,
                })
            }
            .await;
            match loaded {
                Ok(s) => *cached = Some(s),
                Err(e) => return fail_all(batch, &e),
            }
        }
        // Decide every job against the state the previous ones left. The
        // cached state is taken, not cloned (a seat map is large): it is put
        // back only once the append succeeded, and reloaded otherwise.
        let Some(state) = cached.take() else { return };
        let versions = (state.flight.version, state.seats.version);
        let (mut flight, mut seats) = (state.flight.state, state.seats.state);
        let mut staged: Vec<(Job, Decided)> = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            match (job.decide)(&flight, &seats) {
                Ok(d) => {
                    flight = d.flight.iter().fold(flight, |s, e| s.evolve(e));
                    seats = d.seats.iter().fold(seats, |s, e| s.evolve(e));
                    staged.push((job, d));
                }
                Err(e) => {
                    // A retry of an already accepted command answers as before.
                    let _ = job.reply.send(replay_or(store, &job.ctx, e).await);
                }
            }
        }
        if staged.is_empty() {
            return;
        }

        let request =
            match build_request(sealer, versions, flight_stream, seats_stream, &staged).await {
                Ok(r) => r,
                Err(e) => {
                    return fail_all(staged.into_iter().map(|(j, _)| j).collect(), &e);
                }
            };
        let started = Instant::now();
        let result = store.append(request).await;
        metrics::histogram!("booking_append_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(r) => {
                let (fv, sv) = (
                    r.version_of(flight_stream).unwrap_or(versions.0),
                    r.version_of(seats_stream).unwrap_or(versions.1),
                );
                *cached = Some(FlightState {
                    flight: Loaded {
                        state: flight,
                        version: fv,
                    },
                    seats: Loaded {
                        state: seats,
                        version: sv,
                    },
                });
                for (job, d) in staged {
                    let _ = job.reply.send(Ok(outcome(d.reply, &r)));
                }
                return;
            }
            Err(StoreError::Conflict { stream, .. })
                if attempt < MAX_ATTEMPTS
                    && (&stream == flight_stream || &stream == seats_stream) =>
            {
                // Another process wrote this flight: reload and decide again.
                metrics::counter!("booking_command_conflicts_total", "stream" => "seats")
                    .increment(1);
                *cached = None;
                batch = staged.into_iter().map(|(j, _)| j).collect();
            }
            Err(StoreError::Conflict { stream, .. }) if attempt < MAX_ATTEMPTS => {
                // One job's booking moved under it: only that job fails and
                // the others are decided again (on a reloaded flight, since
                // the taken state already holds the batch's decisions).
                metrics::counter!("booking_command_conflicts_total", "stream" => "booking")
                    .increment(1);
                for (job, d) in staged {
                    let conflicted = d.booking.as_ref().is_some_and(|(id, _, _)| {
                        StreamId::new(domain::booking::Booking::CATEGORY, id) == stream
                    });
                    if conflicted {
                        let _ = job.reply.send(Err(CommandError::Concurrency(
                            "the booking was changed concurrently; retry".into(),
                        )));
                    } else {
                        batch.push(job);
                    }
                }
                if batch.is_empty() {
                    return;
                }
            }
            Err(StoreError::DuplicateCommand(_)) => {
                // A twin of one of these commands committed first: answer it
                // from its record and run the others again.
                let mut rest = Vec::new();
                for (job, _) in staged {
                    let found = match &job.ctx.idempotency {
                        Some(idem) => replay(store, idem).await,
                        None => Ok(None),
                    };
                    match found {
                        Ok(Some(a)) => {
                            let _ = job.reply.send(Ok(a));
                        }
                        Ok(None) => rest.push(job),
                        Err(e) => {
                            let _ = job.reply.send(Err(e));
                        }
                    }
                }
                batch = rest;
                if batch.is_empty() {
                    return;
                }
            }
            Err(e) => {
                *cached = None;
                let e = CommandError::from(e);
                return fail_all(staged.into_iter().map(|(j, _)| j).collect(), &e);
            }
        }
    }
    fail_all(batch, &CommandError::contention());
}

async fn replay_or(
    store: &dyn EventStore,
    ctx: &CommandContext,
    e: CommandError,
) -> CommandResult<Outcome> {
    if let Some(idem) = &ctx.idempotency {
        if let Some(a) = replay(store, idem).await? {
            return Ok(a);
        }
    }
    Err(e)
}

async fn build_request(
    sealer: &Sealer,
    versions: (u64, u64),
    flight_stream: &StreamId,
    seats_stream: &StreamId,
    staged: &[(Job, Decided)],
) -> CommandResult<AppendRequest> {
    let mut flight_events = Vec::new();
    let mut seat_events = Vec::new();
    let mut others = Vec::new();
    let mut commands = Vec::new();
    for (job, d) in staged {
        flight_events.extend(encode_events(sealer, &d.flight, &job.ctx).await?);
        seat_events.extend(encode_events(sealer, &d.seats, &job.ctx).await?);
        if let Some((booking_id, expected, events)) = &d.booking {
            others.push(StreamAppend {
                stream: StreamId::new(domain::booking::Booking::CATEGORY, booking_id),
                expected: *expected,
                events: encode_events(sealer, events, &job.ctx).await?,
            });
        }
        if let Some(idem) = &job.ctx.idempotency {
            commands.push(command_record(idem, &d.reply));
        }
    }
    // Both versions guard every decision, even one that writes nothing to
    // that stream: decisions read the flight (fares, schedule, whether it is
    // cancelled) and the seat map (a cancellation that finds nothing sold
    // returns nothing). Another process's write to either, or a killed
    // process's append that committed late, then shows as a conflict and the
    // batch is decided again on fresh state instead of on a stale map.
    let mut streams = vec![StreamAppend {
        stream: flight_stream.clone(),
        expected: ExpectedVersion::Exact(versions.0),
        events: flight_events,
    }];
    if !seat_events.is_empty() || versions.1 > 0 {
        streams.push(StreamAppend {
            stream: seats_stream.clone(),
            expected: ExpectedVersion::Exact(versions.1),
            events: seat_events,
        });
    }
    streams.extend(others);
    Ok(AppendRequest { streams, commands })
}

fn fail_all(jobs: Vec<Job>, e: &CommandError) {
    for job in jobs {
        let _ = job.reply.send(Err(e.for_each_of_batch()));
    }
}
