//! Catch-up-then-live subscriptions, built on `read_all` for every backend.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::model::{Position, RecordedEvent};
use crate::store::EventStore;

/// The slowest poll while appended events are not readable yet.
const PENDING_POLL_MAX: Duration = Duration::from_millis(20);
/// Quick polls after one wake-up (about a second's worth).
const PENDING_POLLS: u32 = 50;

/// How a subscription reads.
#[derive(Debug, Clone)]
pub struct SubscriptionOptions {
    /// Events per `read_all` call.
    pub batch_size: usize,
    /// The longest wait without a wake-up before polling again. A wake-up
    /// that finds nothing readable (the writer's transaction is visible but
    /// an older one is still open) switches to quicker polls until the log
    /// moves.
    pub idle_poll: Duration,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            batch_size: 512,
            idle_poll: Duration::from_millis(500),
        }
    }
}

/// Reads batches of the global log from `after`, forever: first what is
/// there, then what is appended. Each item is a non-empty batch in log order.
pub fn subscribe(
    store: Arc<dyn EventStore>,
    after: Option<Position>,
    options: SubscriptionOptions,
) -> impl Stream<Item = Result<Vec<RecordedEvent>, StoreError>> + Send + 'static {
    let wake = store.wake();
    futures::stream::unfold(
        State {
            store,
            cursor: after,
            wake,
            options,
            pending_wake: false,
            pending_polls: 0,
            backoff: Duration::ZERO,
        },
        |mut st| async move {
            loop {
                // Mark the current tick seen before reading, so a tick that
                // arrives during the read wakes the next wait.
                st.wake.borrow_and_update();
                match st.store.read_all(st.cursor, st.options.batch_size).await {
                    Ok(batch) if !batch.is_empty() => {
                        st.cursor = batch.last().map(|e| e.position);
                        st.pending_wake = false;
                        st.pending_polls = 0;
                        st.backoff = Duration::ZERO;
                        return Some((Ok(batch), st));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Let the consumer decide; the stream can be polled again.
                        return Some((Err(e), st));
                    }
                }
                // A wake-up for events that were read already would keep the
                // quick polls going forever: give up on it after a while.
                if st.pending_wake && st.pending_polls >= PENDING_POLLS {
                    st.pending_wake = false;
                }
                let wait = if st.pending_wake {
                    st.pending_polls += 1;
                    // Something was appended but is not readable yet: an older
                    // transaction is still open. Poll quickly, backing off.
                    // Capped low: an open transaction usually ends within
                    // milliseconds, and every reader (projectors, the saga
                    // inbox) waits for the slowest of these polls.
                    st.backoff = (st.backoff * 2)
                        .clamp(Duration::from_millis(2), PENDING_POLL_MAX)
                        .min(st.options.idle_poll);
                    st.backoff
                } else {
                    st.options.idle_poll
                };
                tokio::select! {
                    changed = st.wake.changed() => {
                        if changed.is_err() {
                            // The store is gone: keep polling on a timer.
                            tokio::time::sleep(wait).await;
                        }
                        st.pending_wake = true;
                        st.pending_polls = 0;
                        st.backoff = Duration::ZERO;
                    }
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        },
    )
}

struct State {
    store: Arc<dyn EventStore>,
    cursor: Option<Position>,
    wake: watch::Receiver<u64>,
    options: SubscriptionOptions,
    pending_wake: bool,
    pending_polls: u32,
    backoff: Duration,
}
