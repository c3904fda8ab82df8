//! Sessions end at once, in every process.
//!
//! A session is a refresh token family: a login starts one, each refresh
//! continues it, and every access token names it (`sid`). Ending a session
//! (logout, a reused refresh token, a role change, an erasure) records it in
//! `auth_revocations` and notifies `booking_sessions`; each process keeps the
//! sessions ended within an access token's lifetime in memory
//! ([`Revocations`]) and refuses their tokens, so checking a token costs no
//! query. A process learns of a revocation by the notification at once, and
//! by polling within [`POLL`] if a notification is lost.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Error;

/// The channel revocations are announced on; the payload is a session id.
pub const CHANNEL: &str = "booking_sessions";
/// How often each process reads recent revocations, whatever it heard.
pub const POLL: Duration = Duration::from_secs(1);
/// How often a follower drops revocations no token can name any more.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How far back each poll reads past the newest revocation it saw: a
/// revocation whose transaction committed late is still found.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(10);

/// The sessions that ended recently, as this process knows them.
#[derive(Clone, Default)]
pub struct Revocations {
    inner: Arc<RwLock<Known>>,
}

#[derive(Default)]
struct Known {
    ended: HashMap<Uuid, DateTime<Utc>>,
    /// The newest revocation time read from the table.
    newest: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known = self.inner.read().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("Revocations")
            .field("ended", &known.ended.len())
            .finish()
    }
}

impl Revocations {
    /// Whether `session` has ended.
    pub fn has_ended(&self, session: Uuid) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .ended
            .contains_key(&session)
    }

    /// Notes sessions as ended (this process ended them, or heard of it).
    pub fn note(&self, sessions: impl IntoIterator<Item = (Uuid, DateTime<Utc>)>) {
        let mut known = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for (session, at) in sessions {
            known.ended.insert(session, at);
        }
    }

    /// Reads the revocations recorded since the last read (with an overlap)
    /// and forgets those older than `keep`.
    pub async fn refresh(&self, pool: &PgPool, keep: Duration) -> Result<(), Error> {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::hours(1));
        let since = {
            let known = self.inner.read().unwrap_or_else(|p| p.into_inner());
            known
                .newest
                .map_or_else(|| Utc::now() - keep, |n| n - OVERLAP)
        };
        let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT session_id, revoked_at FROM auth_revocations WHERE revoked_at >= $1",
        )
        .bind(since)
        .fetch_all(pool)
        .await?;
        let mut known = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for (session, at) in rows {
            known.newest = Some(known.newest.map_or(at, |n| n.max(at)));
            known.ended.insert(session, at);
        }
        let horizon = Utc::now() - keep;
        known.ended.retain(|_, at| *at > horizon);
        Ok(())
    }

    /// Follows revocations until `stop` resolves: at once when notified,
    /// every [`POLL`] regardless. `keep` is how long an access token lives.
    pub async fn follow(
        self,
        pool: PgPool,
        keep: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut stop = std::pin::pin!(stop);
        let mut listener = listen(&pool).await;
        let mut pruned = std::time::Instant::now();
        loop {
            if let Err(e) = self.refresh(&pool, keep).await {
                tracing::warn!(error = %e, "cannot read session revocations");
            }
            // Any process may prune; doing it rarely keeps it cheap.
            if pruned.elapsed() > PRUNE_EVERY {
                pruned = std::time::Instant::now();
                if let Err(e) = prune(&pool, keep).await {
                    tracing::warn!(error = %e, "cannot prune session revocations");
                }
            }
            let heard = async {
                match listener.as_mut() {
                    Some(l) => match l.recv().await {
                        Ok(n) => {
                            if let Ok(session) = n.payload().parse::<Uuid>() {
                                self.note([(session, Utc::now())]);
                            }
                        }
                        Err(_) => tokio::time::sleep(POLL).await,
                    },
                    None => tokio::time::sleep(POLL).await,
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = heard => {}
                () = tokio::time::sleep(POLL) => {}
            }
            if listener.is_none() {
                listener = listen(&pool).await;
            }
        }
    }
}

/// A listener on a connection of its own: a listener keeps its connection
/// for good, which a small pool cannot spare.
async fn listen(pool: &PgPool) -> Option<PgListener> {
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut l = PgListener::connect_with(&own).await.ok()?;
    l.listen(CHANNEL).await.ok()?;
    Some(l)
}

/// Records `sessions` as ended and tells every process.
pub async fn end(conn: &mut PgConnection, sessions: &[Uuid]) -> Result<(), Error> {
    if sessions.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH ended AS ( \
             INSERT INTO auth_revocations (session_id) SELECT unnest($1::uuid[]) \
             RETURNING session_id) \
         SELECT pg_notify($2, session_id::text) FROM ended",
    )
    .bind(sessions)
    .bind(CHANNEL)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Drops revocations no access token can still name.
pub async fn prune(pool: &PgPool, keep: Duration) -> Result<u64, Error> {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::hours(1));
    Ok(
        sqlx::query("DELETE FROM auth_revocations WHERE revoked_at < $1")
            .bind(Utc::now() - keep - OVERLAP)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_session_has_ended() {
        let r = Revocations::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        r.note([(a, Utc::now())]);
        assert!(r.has_ended(a));
        assert!(!r.has_ended(b));
        let copy = r.clone();
        copy.note([(b, Utc::now())]);
        assert!(r.has_ended(b), "clones share what they know");
    }
}
