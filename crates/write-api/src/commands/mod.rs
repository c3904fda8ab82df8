//! Command handling: the one path every command takes.
//!
//! Load the aggregate by replaying its stream, decide with the pure domain,
//! append the events with the version that was read, and retry a bounded
//! number of times when another writer got there first. Commands that carry
//! an `Idempotency-Key` record their answer atomically with their events, so
//! a retry gets the first answer and never appends twice.
//!
//! Commands on one flight's seats go through a [`lane`]: one worker per hot
//! flight decides queued commands one after another against its cached state
//! and appends what queued up in one transaction (group commit).

pub mod cancel;
pub mod lane;
pub mod pnr;

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::{Aggregate, DomainEvent};
use eventstore::{
    Actor, AppendRequest, AppendResult, CommandRecord, EventStore, ExpectedVersion, Metadata,
    NewEvent, Sealer, StoreError, StreamAppend, StreamId,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// How often a command is re-decided after losing a race for its stream.
pub(crate) const MAX_ATTEMPTS: usize = 8;

/// An `Idempotency-Key`, scoped to its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub command_id: Uuid,
    /// SHA-256 of the method, path and body: tells a retry from a reuse.
    pub fingerprint: Vec<u8>,
}

/// Who runs a command, on behalf of which request, and when.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub correlation_id: Uuid,
    pub actor: Actor,
    pub idempotency: Option<Idempotency>,
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

/// An accepted command's answer: a status and a JSON body that carries the
/// `position` the command reached.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body)).into_response();
        if self.replayed {
            res.headers_mut().insert(
                "idempotent-replayed",
                axum::http::HeaderValue::from_static("true"),
            );
        }
        res
    }
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

    /// Replays an aggregate's stream.
    pub async fn load<A: Aggregate>(&self, id: Uuid) -> ApiResult<Loaded<A>> {
        load(&*self.store, &self.sealer, &StreamId::new(A::CATEGORY, id)).await
    }

    /// Runs a command on one aggregate: decide on its current state, append
    /// with the version read, retry on conflict. `body` builds the answer
    /// from the state after the command.
    pub async fn execute<A, D, B>(
        &self,
        ctx: &CommandContext,
        id: Uuid,
        status: StatusCode,
        decide: D,
        body: B,
    ) -> ApiResult<Accepted>
    where
        A: Aggregate,
        D: Fn(&A) -> ApiResult<Vec<A::Event>>,
        B: Fn(&A) -> Value,
    {
        let stream = StreamId::new(A::CATEGORY, id);
        for attempt in 1..=MAX_ATTEMPTS {
            let loaded: Loaded<A> = load(&*self.store, &self.sealer, &stream).await?;
            let events = decide(&loaded.state)?;
            let after = events.iter().fold(loaded.state, |s, e| s.evolve(e));
            let new = encode_events(&self.sealer, &events, ctx).await?;
            let appends = vec![StreamAppend {
                stream: stream.clone(),
                expected: ExpectedVersion::Exact(loaded.version),
                events: new,
            }];
            match self.append(ctx, appends, status, body(&after)).await {
                Err(ApiError::Conflict {
                    code: "CONFLICT", ..
                }) if attempt < MAX_ATTEMPTS => {
                    metrics::counter!("booking_command_conflicts_total", "stream" => A::CATEGORY)
                        .increment(1);
                    continue;
                }
                other => return other,
            }
        }
        Err(too_much_contention())
    }

    /// Appends decided events, recording the command (and its answer) when
    /// it carries an idempotency key. A concurrent twin of the same command
    /// gets the twin's answer.
    pub async fn append(
        &self,
        ctx: &CommandContext,
        appends: Vec<StreamAppend>,
        status: StatusCode,
        body: Value,
    ) -> ApiResult<Accepted> {
        let mut request = AppendRequest {
            streams: appends,
            commands: vec![],
        };
        if let Some(idem) = &ctx.idempotency {
            request.commands.push(command_record(idem, status, &body));
        }
        let started = Instant::now();
        let result = self.store.append(request).await;
        metrics::histogram!("booking_append_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(r) => Ok(accepted(status, body, &r)),
            Err(StoreError::DuplicateCommand(_)) => match self.replay(ctx).await? {
                Some(a) => Ok(a),
                None => Err(ApiError::internal(StoreError::InvalidAppend(
                    "a duplicate command has no record".into(),
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The first answer to this command, if it ran before: the stored one
    /// for the same request, a 422 for a different request with the same key.
    pub async fn replay(&self, ctx: &CommandContext) -> ApiResult<Option<Accepted>> {
        let Some(idem) = &ctx.idempotency else {
            return Ok(None);
        };
        replay(&*self.store, idem).await
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }
}

pub(crate) fn command_record(
    idem: &Idempotency,
    status: StatusCode,
    body: &Value,
) -> CommandRecord {
    CommandRecord {
        command_id: idem.command_id,
        fingerprint: Some(idem.fingerprint.clone()),
        outcome: json!({ "status": status.as_u16(), "body": body }),
    }
}

pub(crate) fn accepted(status: StatusCode, mut body: Value, r: &AppendResult) -> Accepted {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("position".into(), json!(r.position.to_string()));
    }
    Accepted {
        status,
        body,
        replayed: false,
    }
}

pub(crate) async fn replay(
    store: &dyn EventStore,
    idem: &Idempotency,
) -> ApiResult<Option<Accepted>> {
    let Some(stored) = store.find_command(idem.command_id).await? else {
        return Ok(None);
    };
    if stored.fingerprint.as_deref() != Some(idem.fingerprint.as_slice()) {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let status = stored
        .outcome
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let body = stored.outcome.get("body").cloned().unwrap_or(Value::Null);
    let mut a = accepted(
        status,
        body,
        &AppendResult {
            versions: vec![],
            position: stored.position,
        },
    );
    a.replayed = true;
    Ok(Some(a))
}

pub(crate) async fn load<A: Aggregate>(
    store: &dyn EventStore,
    sealer: &Sealer,
    stream: &StreamId,
) -> ApiResult<Loaded<A>> {
    let recorded = store.read_stream(stream, 1, None).await?;
    let mut state = A::default();
    let mut version = 0;
    for e in recorded {
        let data = sealer.open(e.data).await?;
        let event: A::Event =
            domain::decode(&e.event_type, e.schema_version, data).map_err(|err| {
                ApiError::internal(StoreError::Corrupt {
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
pub(crate) async fn encode_events<E: DomainEvent>(
    sealer: &Sealer,
    events: &[E],
    ctx: &CommandContext,
) -> ApiResult<Vec<NewEvent>> {
    let metadata = ctx.metadata();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let (event_type, schema_version, data) =
            domain::try_encode(e).map_err(ApiError::internal)?;
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

/// Every attempt lost the race for its stream.
pub(crate) fn too_much_contention() -> ApiError {
    ApiError::Conflict {
        code: "CONFLICT",
        detail: "too much concurrent change on this resource; retry".into(),
    }
}
