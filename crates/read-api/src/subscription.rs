//! Subscriptions, fed by one watcher per flight, booking or customer's
//! waiting list, whatever the number of subscribers.
//!
//! A watcher looks at its row of the read models every
//! [`ReadSettings::poll_interval`](crate::ReadSettings) (one primary-key
//! query), and reads the seat map or the booking again only when the
//! projectors changed it (or a hold lapsed). A waiting list is read whole at
//! each look (a customer's few entries, by index): an entry's place moves
//! when entries of other customers leave the line, which no row of theirs
//! records. What a watcher reads is shared with every subscriber in memory:
//! two thousand subscriptions to one flight cost what one does. A watcher
//! ends when its last subscriber goes.
//!
//! Limits: [`ReadSettings::max_subscriptions_per_connection`] per websocket
//! and [`ReadSettings::max_connections_per_address`] websockets per client
//! address; past them, `RATE_LIMITED`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{Context, Result, Subscription, ID};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use projections::model::bookings::{booking_by, BookingRow};
use projections::model::flights::next_lapse;
use projections::model::waitlist::{my_waitlist, WaitlistEntryRow};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::Viewer;
use crate::error::{error, internal, Code, OrInternal};
use crate::types::{
    id, parse_id, pool, seat_map, Booking, SeatChange, SeatState, SeatStatus, WaitlistEntry,
};
use crate::ReadSettings;

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// The booking now, then each time it (or its payment) changes. Its
    /// customer, agents and admins only.
    async fn booking_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = Result<Booking>>> {
        let booking = parse_id(&id, "id")?;
        let slot = Slot::take(ctx)?;
        let pool = pool(ctx).clone();
        let row = booking_by(&pool, Some(booking), None)
            .await
            .or_internal()?
            .ok_or_else(|| error(Code::NotFound, "no such booking"))?;
        Viewer::of(ctx).owner_or_staff(row.customer_id)?;
        let every = ctx.data_unchecked::<ReadSettings>().poll_interval;
        let feeds = ctx.data_unchecked::<Hub>().bookings.clone();
        let feed = feeds.watch(booking, move |tx| watch_booking(pool, booking, every, tx));
        Ok(follow(feed, slot, |snapshot: &BookingSnapshot, _| {
            Some(snapshot.row.clone().map(Booking))
        }))
    }

    /// The flight's seat map now (every seat), then the seats whose status
    /// changed. Anyone may watch.
    async fn seat_map_changed(
        &self,
        ctx: &Context<'_>,
        flight_id: ID,
    ) -> Result<impl Stream<Item = Result<SeatChange>>> {
        let flight = parse_id(&flight_id, "flightId")?;
        let slot = Slot::take(ctx)?;
        let pool = pool(ctx).clone();
        flight_version(&pool, flight)
            .await
            .or_internal()?
            .ok_or_else(|| error(Code::NotFound, "no such flight"))?;
        let every = ctx.data_unchecked::<ReadSettings>().poll_interval;
        let feeds = ctx.data_unchecked::<Hub>().flights.clone();
        let feed = feeds.watch(flight, move |tx| watch_flight(pool, flight, every, tx));
        Ok(follow(feed, slot, move |snapshot: &SeatsSnapshot, last| {
            let seats = match &snapshot.seats {
                Ok(s) => s,
                Err(e) => return Some(Err(e.clone())),
            };
            let changed: Vec<SeatState> = match last {
                None => seats.clone(),
                Some(previous) => match &previous.seats {
                    Ok(before) => {
                        let before: HashMap<&str, SeatStatus> =
                            before.iter().map(|s| (s.seat.as_str(), s.status)).collect();
                        seats
                            .iter()
                            .filter(|s| before.get(s.seat.as_str()) != Some(&s.status))
                            .cloned()
                            .collect()
                    }
                    Err(_) => seats.clone(),
                },
            };
            let push = match last {
                None => true,
                Some(previous) => !changed.is_empty() || previous.cancelled != snapshot.cancelled,
            };
            push.then(|| {
                Ok(SeatChange {
                    flight_id: id(flight),
                    seats: changed,
                    available_seats: seats
                        .iter()
                        .filter(|s| s.status == SeatStatus::Available)
                        .count() as i32,
                    cancelled: snapshot.cancelled,
                })
            })
        }))
    }

    /// The caller's waiting-list entries now (as `myWaitlist`), then all of
    /// them again each time one changes: its status, or its place as the
    /// line moves. Any signed-in user, for their own entries.
    async fn waitlist_updated(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<Vec<WaitlistEntry>>>> {
        let customer = Viewer::of(ctx).user()?.user_id;
        let slot = Slot::take(ctx)?;
        let pool = pool(ctx).clone();
        let every = ctx.data_unchecked::<ReadSettings>().poll_interval;
        let feeds = ctx.data_unchecked::<Hub>().waitlists.clone();
        let feed = feeds.watch(customer, move |tx| {
            watch_waitlist(pool, customer, every, tx)
        });
        Ok(follow(feed, slot, |snapshot: &WaitlistSnapshot, _| {
            Some(
                snapshot
                    .entries
                    .clone()
                    .map(|rows| rows.into_iter().map(WaitlistEntry).collect()),
            )
        }))
    }
}

/// The shared watchers of one schema.
#[derive(Default)]
pub struct Hub {
    flights: Arc<Feeds<Uuid, SeatsSnapshot>>,
    bookings: Arc<Feeds<Uuid, BookingSnapshot>>,
    /// By customer.
    waitlists: Arc<Feeds<Uuid, WaitlistSnapshot>>,
}

/// What a subscriber is sent: the newest snapshot, `None` before the first.
type Feed<T> = watch::Receiver<Option<Arc<T>>>;

/// One watcher per key, shared by every subscriber of that key.
pub struct Feeds<K, T> {
    live: Mutex<HashMap<K, Feed<T>>>,
}

impl<K, T> Default for Feeds<K, T> {
    fn default() -> Self {
        Self {
            live: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, T> Feeds<K, T>
where
    K: Eq + Hash + Copy + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    /// A receiver of `key`'s snapshots; starts its watcher (`start`) if none
    /// runs. The watcher stops when nobody receives any more.
    fn watch<F, Fut>(self: &Arc<Self>, key: K, start: F) -> Feed<T>
    where
        F: FnOnce(watch::Sender<Option<Arc<T>>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = live.get(&key) {
            if rx.has_changed().is_ok() {
                return rx.clone();
            }
        }
        let (tx, rx) = watch::channel(None);
        live.insert(key, rx.clone());
        let feeds = Arc::clone(self);
        let run = start(tx);
        tokio::spawn(async move {
            run.await;
            let mut live = feeds.live.lock().unwrap_or_else(|p| p.into_inner());
            // A newer watcher of the key may have replaced this one.
            if live.get(&key).is_some_and(|rx| rx.has_changed().is_err()) {
                live.remove(&key);
            }
        });
        rx
    }
}

/// Turns a feed into a subscription's stream: `render` makes what to push
/// from the new snapshot and the last one this subscriber saw (`None` to
/// push nothing). The slot is held for as long as the stream lives.
fn follow<T, I, R>(feed: Feed<T>, slot: Slot, render: R) -> impl Stream<Item = Result<I>>
where
    T: Send + Sync + 'static,
    I: Send + 'static,
    R: Fn(&T, Option<&T>) -> Option<Result<I>> + Send + Sync + 'static,
{
    let render = Arc::new(render);
    futures::stream::unfold(
        (feed, None::<Arc<T>>, slot),
        move |(mut feed, mut last, slot)| {
            let render = render.clone();
            async move {
                loop {
                    let current = feed.borrow_and_update().clone();
                    if let Some(now) = current {
                        let changed = last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &now));
                        if changed {
                            let item = render(&now, last.as_deref());
                            last = Some(now);
                            if let Some(item) = item {
                                return Some((item, (feed, last, slot)));
                            }
                        }
                    }
                    if feed.changed().await.is_err() {
                        return None;
                    }
                }
            }
        },
    )
    .boxed()
}

/// A subscription's place among its connection's: given back when the
/// subscription ends.
pub struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(ctx: &Context<'_>) -> Result<Self> {
        let max = ctx
            .data_unchecked::<ReadSettings>()
            .max_subscriptions_per_connection;
        let count = ctx
            .data_opt::<ConnectionSubscriptions>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        if count.fetch_add(1, Ordering::SeqCst) >= max {
            count.fetch_sub(1, Ordering::SeqCst);
            return Err(error(
                Code::RateLimited,
                format!("at most {max} subscriptions per connection"),
            ));
        }
        Ok(Self(count))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The subscriptions one websocket holds.
#[derive(Clone, Default)]
pub struct ConnectionSubscriptions(Arc<AtomicUsize>);

/// Websockets open per client address.
#[derive(Clone, Default)]
pub struct Sockets(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One open websocket of an address; closing it frees its place.
pub struct SocketGuard {
    sockets: Sockets,
    ip: IpAddr,
}

impl Sockets {
    /// A place for one more websocket of `ip`, unless it has `max` open.
    pub fn open(&self, ip: IpAddr, max: usize) -> Option<SocketGuard> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SocketGuard {
            sockets: self.clone(),
            ip,
        })
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let mut open = self.sockets.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A seat map as the watcher last read it.
pub struct SeatsSnapshot {
    seats: Result<Vec<SeatState>, async_graphql::Error>,
    cancelled: bool,
}

/// A booking as the watcher last read it (an error once it is gone).
pub struct BookingSnapshot {
    row: Result<BookingRow, async_graphql::Error>,
}

/// A customer's waiting-list entries as the watcher last read them.
pub struct WaitlistSnapshot {
    entries: Result<Vec<WaitlistEntryRow>, async_graphql::Error>,
}

/// Sends the customer's entries whenever they read differently (a status,
/// an offer, a place in line).
async fn watch_waitlist(
    pool: PgPool,
    customer: Uuid,
    every: Duration,
    tx: watch::Sender<Option<Arc<WaitlistSnapshot>>>,
) {
    let mut seen: Option<Vec<WaitlistEntryRow>> = None;
    while !tx.is_closed() {
        match my_waitlist(&pool, customer).await {
            Ok(rows) => {
                if seen.as_ref() != Some(&rows) {
                    seen = Some(rows.clone());
                    tx.send_replace(Some(Arc::new(WaitlistSnapshot { entries: Ok(rows) })));
                }
            }
            Err(e) => {
                // Once the read works again, its answer goes out whatever
                // it is: the subscriber's last message was this error.
                seen = None;
                tx.send_replace(Some(Arc::new(WaitlistSnapshot {
                    entries: Err(internal(e)),
                })));
            }
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn watch_flight(
    pool: PgPool,
    flight: Uuid,
    every: Duration,
    tx: watch::Sender<Option<Arc<SeatsSnapshot>>>,
) {
    let mut seen: Option<(DateTime<Utc>, bool, Option<DateTime<Utc>>)> = None;
    while !tx.is_closed() {
        match flight_version(&pool, flight).await {
            Ok(Some((updated_at, cancelled))) => {
                // Read the seats again only when the flight changed or a
                // hold may have lapsed since the last look.
                let due = match &seen {
                    None => true,
                    Some((at, was_cancelled, lapse)) => {
                        *at != updated_at
                            || *was_cancelled != cancelled
                            || lapse.is_some_and(|t| t <= Utc::now())
                    }
                };
                if due {
                    let read = async {
                        Ok::<_, sqlx::Error>((
                            seat_map(&pool, flight).await?,
                            next_lapse(&pool, flight).await?,
                        ))
                    };
                    match read.await {
                        Ok((seats, lapse)) => {
                            seen = Some((updated_at, cancelled, lapse));
                            tx.send_replace(Some(Arc::new(SeatsSnapshot {
                                seats: Ok(seats),
                                cancelled,
                            })));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, %flight, "cannot read a seat map");
                        }
                    }
                }
            }
            Ok(None) => {
                tx.send_replace(Some(Arc::new(SeatsSnapshot {
                    seats: Err(error(Code::NotFound, "the flight is gone")),
                    cancelled: false,
                })));
                return;
            }
            Err(e) => tracing::warn!(error = %e, %flight, "cannot read a flight"),
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn watch_booking(
    pool: PgPool,
    booking: Uuid,
    every: Duration,
    tx: watch::Sender<Option<Arc<BookingSnapshot>>>,
) {
    type Fingerprint = (
        DateTime<Utc>,
        domain::booking::BookingStatus,
        Option<DateTime<Utc>>,
    );
    let mut seen: Option<Fingerprint> = None;
    while !tx.is_closed() {
        match booking_and_payment(&pool, booking).await {
            Ok(Some((row, payment_at))) => {
                let now = (row.updated_at, row.status, payment_at);
                if seen.as_ref() != Some(&now) {
                    seen = Some(now);
                    tx.send_replace(Some(Arc::new(BookingSnapshot { row: Ok(row) })));
                }
            }
            Ok(None) => {
                tx.send_replace(Some(Arc::new(BookingSnapshot {
                    row: Err(error(Code::NotFound, "the booking is gone")),
                })));
                return;
            }
            Err(e) => {
                tx.send_replace(Some(Arc::new(BookingSnapshot {
                    row: Err(internal(e)),
                })));
            }
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn flight_version(
    pool: &PgPool,
    flight: Uuid,
) -> Result<Option<(DateTime<Utc>, bool)>, sqlx::Error> {
    sqlx::query_as("SELECT updated_at, cancelled FROM rm_flights WHERE flight_id = $1")
        .bind(flight)
        .fetch_optional(pool)
        .await
}

async fn booking_and_payment(
    pool: &PgPool,
    booking: Uuid,
) -> Result<Option<(BookingRow, Option<DateTime<Utc>>)>, sqlx::Error> {
    let Some(row) = booking_by(pool, Some(booking), None).await? else {
        return Ok(None);
    };
    let payment_at: Option<DateTime<Utc>> = match row.payment_id {
        Some(p) => {
            sqlx::query_scalar("SELECT updated_at FROM rm_payments WHERE payment_id = $1")
                .bind(p)
                .fetch_optional(pool)
                .await?
        }
        None => None,
    };
    Ok(Some((row, payment_at)))
}
