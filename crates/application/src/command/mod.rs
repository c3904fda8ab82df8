//! The one path every command takes.
//!
//! Load the aggregate by replaying its stream, decide with the pure domain,
//! append the events with the version that was read, and retry a bounded
//! number of times when another writer got there first
//! ([`CommandError::Concurrency`]). Commands that carry an idempotency key
//! record their reply atomically with their events, so a retry gets the
//! first reply and never appends twice.
//!
//! Commands on one flight's seats go through a [`lane`]: one worker per hot
//! flight decides queued commands one after another against its cached state
//! and appends what queued up in one transaction (group commit).

pub mod across;
pub mod lane;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use domain::{Aggregate, DomainEvent};
use eventstore::{
    Actor, AppendRequest, AppendResult, CommandRecord, EventStore, ExpectedVersion, Metadata,
    NewEvent, Position, Sealer, StoreError, StreamAppend, StreamId,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{CommandError, CommandResult};

/// How often a command is re-decided after losing a race for its stream.
pub const MAX_ATTEMPTS: usize = 8;

/// A command's idempotency key, scoped to its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub command_id: Uuid,
    /// A digest of the request: tells a retry from a reuse of the key.
    pub fingerprint: Vec<u8>,
}

/// Who runs a command, on behalf of which request, and when.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub correlation_id: Uuid,
    pub actor: Actor,
    pub idempotency: Option<Idempotency>,
    /// Whose personal data the command's reply may carry: its idempotency
    /// record is sealed under their key, so erasing them shreds it too.
    /// `None` for replies that carry none (and are kept in clear).
    pub data_subject: Option<Uuid>,
    pub now: DateTime<Utc>,
}

impl CommandContext {
    pub fn metadata(&self) -> Metadata {
        let command_id = self.idempotency.as_ref().map(|i| i.command_id);
        Metadata {
            correlation_id: self.correlation_id,
            causation_id: Some(command_id.unwrap_or(self.correlation_id)),
            command_id,
            actor: self.actor.clone(),
        }
    }
}

/// An accepted command: the point in the log it reached and its reply (a
/// JSON object the caller shows as it likes). `replayed` when this is the
/// stored reply of an earlier run of the same command.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub position: Position,
    pub reply: Value,
    pub replayed: bool,
}

/// An aggregate's state and the version it was read at.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    pub version: u64,
}

#[derive(Clone)]
pub struct Commands {
    store: Arc<dyn EventStore>,
    sealer: Sealer,
    pub lanes: lane::Lanes,
}

impl Commands {
    pub fn new(store: Arc<dyn EventStore>, sealer: Sealer) -> Self {
        let lanes = lane::Lanes::new(store.clone(), sealer.clone());
        Self {
            store,
            sealer,
            lanes,
        }
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Replays an aggregate's stream.
    pub async fn load<A: Aggregate>(&self, id: Uuid) -> CommandResult<Loaded<A>> {
        load(&*self.store, &self.sealer, &StreamId::new(A::CATEGORY, id)).await
    }

    /// Runs a command on one aggregate: decide on its current state, append
    /// with the version read, retry on a concurrency conflict. `reply`
    /// builds the reply from the state after the command.
    pub async fn execute<A, D, R>(
        &self,
        ctx: &CommandContext,
        id: Uuid,
        decide: D,
        reply: R,
    ) -> CommandResult<Outcome>
    where
        A: Aggregate,
        D: Fn(&A) -> CommandResult<Vec<A::Event>>,
        R: Fn(&A) -> Value,
    {
        let stream = &StreamId::new(A::CATEGORY, id);
        let (decide, reply) = (&decide, &reply);
        self.retrying(A::CATEGORY, move || async move {
            let loaded: Loaded<A> = load(&*self.store, &self.sealer, stream).await?;
            let events = decide(&loaded.state)?;
            let after = events.iter().fold(loaded.state, |s, e| s.evolve(e));
            let new = encode_events(&self.sealer, &events, ctx).await?;
            let appends = vec![StreamAppend {
                stream: stream.clone(),
                expected: ExpectedVersion::Exact(loaded.version),
                events: new,
            }];
            self.append(ctx, appends, reply(&after)).await
        })
        .await
    }

    /// Runs `attempt` (a command that reads, decides and appends) again
    /// while it loses the race for its streams, a bounded number of times.
    pub async fn retrying<F, Fut>(
        &self,
        category: &'static str,
        mut attempt: F,
    ) -> CommandResult<Outcome>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = CommandResult<Outcome>>,
    {
        for n in 1..=MAX_ATTEMPTS {
            match attempt().await {
                Err(CommandError::Concurrency(_)) if n < MAX_ATTEMPTS => {
                    metrics::counter!("booking_command_conflicts_total", "stream" => category)
                        .increment(1);
                }
                other => return other,
            }
        }
        Err(CommandError::contention())
    }

    /// Appends decided events, recording the command (and its reply) when
    /// it carries an idempotency key. A concurrent twin of the same command
    /// gets the twin's reply.
    pub async fn append(
        &self,
        ctx: &CommandContext,
        appends: Vec<StreamAppend>,
        reply: Value,
    ) -> CommandResult<Outcome> {
        let mut request = AppendRequest {
            streams: appends,
            commands: vec![],
        };
        if let Some(idem) = &ctx.idempotency {
            request
                .commands
                .push(command_record(&self.sealer, idem, ctx, &reply).await?);
        }
        let started = Instant::now();
        let result = self.store.append(request).await;
        metrics::histogram!("booking_append_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(r) => Ok(outcome(reply, &r)),
            Err(StoreError::DuplicateCommand(_)) => match self.replay(ctx).await? {
                Some(a) => Ok(a),
                None => Err(CommandError::internal(StoreError::InvalidAppend(
                    "a duplicate command has no record".into(),
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The first reply to this command, if it ran before; refuses a
    /// different request with the same key.
    pub async fn replay(&self, ctx: &CommandContext) -> CommandResult<Option<Outcome>> {
        let Some(idem) = &ctx.idempotency else {
            return Ok(None);
        };
        replay(&*self.store, &self.sealer, idem).await
    }

    /// The first reply to the command `idem` names, if it ran before.
    pub async fn replay_of(&self, idem: &Idempotency) -> CommandResult<Option<Outcome>> {
        replay(&*self.store, &self.sealer, idem).await
    }
}

/// What is kept of an accepted command: its reply, without its position
/// (the store keeps that), sealed under its data subject's key when it has
/// one.
pub(crate) async fn command_record(
    sealer: &Sealer,
    idem: &Idempotency,
    ctx: &CommandContext,
    reply: &Value,
) -> CommandResult<CommandRecord> {
    let outcome = match ctx.data_subject {
        Some(subject) => {
            sealer
                .seal(json!({ "subject": subject, "personal": { "reply": reply } }))
                .await?
        }
        None => json!({ "reply": reply }),
    };
    Ok(CommandRecord {
        command_id: idem.command_id,
        fingerprint: Some(idem.fingerprint.clone()),
        outcome,
    })
}

pub(crate) fn outcome(reply: Value, r: &AppendResult) -> Outcome {
    Outcome {
        position: r.position,
        reply,
        replayed: false,
    }
}

pub(crate) async fn replay(
    store: &dyn EventStore,
    sealer: &Sealer,
    idem: &Idempotency,
) -> CommandResult<Option<Outcome>> {
    let Some(stored) = store.find_command(idem.command_id).await? else {
        return Ok(None);
    };
    if stored.fingerprint.as_deref() != Some(idem.fingerprint.as_slice()) {
        return Err(CommandError::IdempotencyKeyReused);
    }
    let outcome = if stored.outcome.get("subject").is_some() {
        let opened = sealer.open(stored.outcome).await?;
        match opened.get("personal").and_then(|p| p.get("reply")) {
            Some(reply) => json!({ "reply": reply }),
            // The subject was erased: so was the first answer.
            None => {
                return Err(CommandError::InvalidState(
                    "the first answer to this request was erased".into(),
                ))
            }
        }
    } else {
        stored.outcome
    };
    // Records written before replies were kept apart from HTTP answers
    // hold `{status, body}`.
    let reply = outcome
        .get("reply")
        .or_else(|| outcome.get("body"))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Some(Outcome {
        position: stored.position,
        reply,
        replayed: true,
    }))
}

pub(crate) async fn load<A: Aggregate>(
    store: &dyn EventStore,
    sealer: &Sealer,
    stream: &StreamId,
) -> CommandResult<Loaded<A>> {
    let recorded = store.read_stream(stream, 1, None).await?;
    let mut state = A::default();
    let mut version = 0;
    for e in recorded {
        let data = sealer.open(e.data).await?;
        let event: A::Event =
            domain::decode(&e.event_type, e.schema_version, data).map_err(|err| {
                CommandError::internal(StoreError::Corrupt {
                    stream: e.stream_id.to_string(),
                    version: e.version,
                    reason: err.to_string(),
                })
            })?;
        state = state.evolve(&event);
        version = e.version;
    }
    Ok(Loaded { state, version })
}

/// Domain events to storable events: encoded, personal data sealed, with
/// the command's metadata.
pub async fn encode_events<E: DomainEvent>(
    sealer: &Sealer,
    events: &[E],
    ctx: &CommandContext,
) -> CommandResult<Vec<NewEvent>> {
    let metadata = ctx.metadata();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let (event_type, schema_version, data) =
            domain::try_encode(e).map_err(CommandError::internal)?;
        out.push(NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.to_string(),
            schema_version,
            data: sealer.seal(data).await?,
            metadata: metadata.clone(),
        });
    }
    Ok(out)
}
