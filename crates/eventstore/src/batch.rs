//! Group commit for the PostgreSQL backend: concurrent appends, to any
//! streams, merged into one transaction.
//!
//! Every commit waits for its WAL flush and pays a transaction's fixed
//! costs and a round trip; under load most of an append is that. The
//! batcher takes the appends waiting when a transaction slot frees up (at
//! most [`MAX_BATCH`]) and sends them in one statement, `es_append_batch`,
//! which runs each through `es_append` in a subtransaction of its own and
//! commits once. What each append gets back is its own:
//!
//! - a version conflict is answered to that append alone; a refusal by the
//!   database (a command id or an event id already stored) undoes that
//!   append's subtransaction alone; the others commit;
//! - answers go out only after the commit, so no one is told "appended"
//!   about an append that did not commit; a failed commit fails the batch
//!   (as it would fail a lone append).
//!
//! The store's promises hold unchanged because each append runs the same
//! statements as alone: locks, version checks, hash chains and command
//! records are per append, and the global order is `(tx, position)` with
//! positions from the sequence in execution order, so a batch is simply a
//! transaction with many appends in it, visible to readers all at once.
//!
//! Deadlocks: within a batch the appends run one after another on one
//! connection, so they cannot wait on each other. Two batches in flight
//! never share a stream (an append that touches a stream of the batch in
//! flight waits for the next one), so batches cannot wait on each other
//! either. An append alone (nothing else waiting) runs at once in
//! autocommit, exactly as without the batcher: batching costs nothing at
//! low load.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use crate::error::StoreError;
use crate::model::{AppendRequest, AppendResult, StreamId};
use crate::postgres::PgEventStore;

/// Appends merged into one transaction at most. Each runs in a
/// subtransaction; PostgreSQL keeps up to 64 of a transaction's
/// subtransaction ids in shared memory before every snapshot has to look
/// them up on disk, so a batch stays well under that.
pub const MAX_BATCH: usize = 32;

/// Batch transactions in flight at once: one committing (waiting for its
/// WAL flush) while the next runs its appends.
const IN_FLIGHT: usize = 2;

pub(crate) struct Pending {
    pub(crate) request: AppendRequest,
    pub(crate) reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// Starts the batcher of `store` (a store without a batcher of its own);
/// it ends when every sender is dropped.
pub(crate) fn spawn(store: PgEventStore) -> mpsc::Sender<Pending> {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH * IN_FLIGHT);
    tokio::spawn(run(store, rx));
    tx
}

async fn run(store: PgEventStore, mut rx: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // The streams of the batches in flight.
    let busy: Arc<Mutex<HashSet<StreamId>>> = Arc::default();
    let finished = Arc::new(Notify::new());
    let mut held: VecDeque<Pending> = VecDeque::new();
    loop {
        if held.is_empty() {
            match rx.recv().await {
                Some(p) => held.push_back(p),
                None => break,
            }
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        // Everything that queued up while the slots were taken.
        while let Ok(p) = rx.try_recv() {
            held.push_back(p);
        }
        let (batch, streams) = {
            let busy = busy.lock().unwrap_or_else(|p| p.into_inner());
            take_batch(&mut held, &busy)
        };
        if batch.is_empty() {
            // All that waits touches a batch in flight: wait for it.
            drop(slot);
            finished.notified().await;
            continue;
        }
        busy.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(streams.iter().cloned());
        let (store, busy, finished) = (store.clone(), busy.clone(), finished.clone());
        tokio::spawn(async move {
            execute(&store, batch).await;
            let mut b = busy.lock().unwrap_or_else(|p| p.into_inner());
            for s in &streams {
                b.remove(s);
            }
            drop(b);
            drop(slot);
            finished.notify_one();
        });
    }
}

/// The next batch, in arrival order: up to [`MAX_BATCH`] appends that touch
/// no stream of a batch in flight. The rest stays held, in order.
fn take_batch(
    held: &mut VecDeque<Pending>,
    busy: &HashSet<StreamId>,
) -> (Vec<Pending>, HashSet<StreamId>) {
    let mut batch = Vec::new();
    let mut streams = HashSet::new();
    let mut rest = VecDeque::with_capacity(held.len());
    // Streams of appends held back: a later append to one of them must not
    // overtake the earlier one.
    let mut blocked: HashSet<StreamId> = HashSet::new();
    while let Some(p) = held.pop_front() {
        let touches =
            |set: &HashSet<StreamId>| p.request.streams.iter().any(|s| set.contains(&s.stream));
        if batch.len() < MAX_BATCH && !touches(busy) && !touches(&blocked) {
            streams.extend(p.request.streams.iter().map(|s| s.stream.clone()));
            batch.push(p);
        } else {
            blocked.extend(p.request.streams.iter().map(|s| s.stream.clone()));
            rest.push_back(p);
        }
    }
    *held = rest;
    (batch, streams)
}

/// Runs a batch: alone through the one-statement fast path, or together.
async fn execute(store: &PgEventStore, mut batch: Vec<Pending>) {
    metrics::histogram!("eventstore_batch_size").record(batch.len() as f64);
    if batch.len() == 1 {
        let p = batch.remove(0);
        let _ = p.reply.send(store.append_alone(p.request).await);
        return;
    }
    match together(store, &mut batch).await {
        Ok(results) => {
            store.appended();
            for (p, r) in batch.into_iter().zip(results) {
                let _ = p.reply.send(r);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, appends = batch.len(), "a batch of appends did not commit");
            let message = e.to_string();
            for p in batch {
                let _ = p
                    .reply
                    .send(Err(StoreError::Backend(message.clone().into())));
            }
        }
    }
}

/// The appends of `batch` in one statement, so one transaction; `Err` when
/// it did not commit (then nothing of it did).
async fn together(
    store: &PgEventStore,
    batch: &mut [Pending],
) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
    let requests: Vec<AppendRequest> = batch
        .iter_mut()
        .map(|p| std::mem::take(&mut p.request))
        .collect();
    let mut conn = store.pool().acquire().await?;
    store.append_many(&mut conn, &requests).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExpectedVersion, StreamAppend};

    fn pending(streams: &[&str]) -> Pending {
        let request = AppendRequest {
            streams: streams
                .iter()
                .map(|s| StreamAppend {
                    stream: StreamId::parse(s).unwrap(),
                    expected: ExpectedVersion::Any,
                    events: vec![],
                })
                .collect(),
            commands: vec![],
        };
        Pending {
            request,
            reply: oneshot::channel().0,
        }
    }

    fn names(batch: &[Pending]) -> Vec<String> {
        batch
            .iter()
            .map(|p| {
                p.request
                    .streams
                    .iter()
                    .map(|s| s.stream.as_str().to_owned())
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect()
    }

    #[test]
    fn a_batch_skips_streams_in_flight_and_keeps_their_order() {
        let mut held: VecDeque<Pending> = [
            pending(&["a-1"]),
            pending(&["b-1", "c-1"]),
            pending(&["c-1"]),
            pending(&["d-1"]),
            pending(&["a-1"]),
        ]
        .into();
        let busy: HashSet<StreamId> = [StreamId::parse("b-1").unwrap()].into();
        let (batch, streams) = take_batch(&mut held, &busy);
        // b-1 is in flight: its append waits, and so does the later append
        // to c-1 that it shares a stream with (it must not overtake it).
        assert_eq!(names(&batch), ["a-1", "d-1", "a-1"]);
        assert_eq!(streams.len(), 2);
        let rest: Vec<Pending> = held.into_iter().collect();
        assert_eq!(names(&rest), ["b-1+c-1", "c-1"]);
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_appends() {
        let mut held: VecDeque<Pending> = (0..MAX_BATCH + 5)
            .map(|i| pending(&[&format!("s-{i}")]))
            .collect();
        let (batch, _) = take_batch(&mut held, &HashSet::new());
        assert_eq!(batch.len(), MAX_BATCH);
        assert_eq!(held.len(), 5);
    }
}
