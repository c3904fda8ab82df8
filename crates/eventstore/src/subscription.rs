//! Catch-up-then-live subscriptions, built on `read_all` for every backend.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::model::{Page, Position, RecordedEvent};
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
    pages(store, after, None, options).map(|page| page.map(|p| p.events))
}

/// [`subscribe`] for the events of some stream categories only
/// ([`EventStore::read_all_in`]). Each item is a page that went past at
/// least one event; its wanted events may be none, and
/// [`Page::scanned_to`] is where the next one starts.
pub fn subscribe_in(
    store: Arc<dyn EventStore>,
    after: Option<Position>,
    categories: &'static [&'static str],
    options: SubscriptionOptions,
) -> impl Stream<Item = Result<Page, StoreError>> + Send + 'static {
    pages(store, after, Some(categories), options)
}

fn pages(
    store: Arc<dyn EventStore>,
    after: Option<Position>,
    categories: Option<&'static [&'static str]>,
    options: SubscriptionOptions,
) -> impl Stream<Item = Result<Page, StoreError>> + Send + 'static {
    let wake = store.wake();
    futures::stream::unfold(
        State {
            store,
            cursor: after,
            categories,
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
                let read = match st.categories {
                    Some(categories) => {
                        st.store
                            .read_all_in(st.cursor, st.options.batch_size, categories)
                            .await
                    }
                    None => st
                        .store
                        .read_all(st.cursor, st.options.batch_size)
                        .await
                        .map(|events| Page::of(events, |_| true)),
                };
                match read {
                    Ok(page) if page.scanned_to.is_some() => {
                        st.cursor = page.scanned_to.map(|(p, _)| p);
                        st.pending_wake = false;
                        st.pending_polls = 0;
                        st.backoff = Duration::ZERO;
                        return Some((Ok(page), st));
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
    categories: Option<&'static [&'static str]>,
    wake: watch::Receiver<u64>,
    options: SubscriptionOptions,
    pending_wake: bool,
    pending_polls: u32,
    backoff: Duration,
}
