//! The engine's schema: every crate's own migrations, applied together in
//! version order by `booking migrate` and at start-up. Each crate owns the
//! tables it writes (the event store its `es_*` tables, auth its
//! credentials, the projections their read models, the sagas their rows);
//! this list is the one place that knows them all.

use std::sync::LazyLock;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, Migrator};
use sqlx::PgPool;

/// Each crate's migrations.
pub fn owners() -> [(&'static str, &'static Migrator); 8] {
    [
        ("eventstore", &eventstore::postgres::MIGRATOR),
        ("auth", &auth::MIGRATOR),
        ("application", &application::MIGRATOR),
        ("projections", &projections::MIGRATOR),
        ("sagas", &sagas::MIGRATOR),
        ("notifications", &notifications::MIGRATOR),
        ("audit", &audit::MIGRATOR),
        ("relay", &relay::MIGRATOR),
    ]
}

/// Migrations already resolved (embedded by each crate at compile time).
#[derive(Debug)]
struct Resolved(Vec<Migration>);

impl<'s> MigrationSource<'s> for Resolved {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { Ok(self.0) })
    }
}

/// Every migration of every crate, in version order.
pub static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut all: Vec<Migration> = owners()
        .iter()
        .flat_map(|(_, m)| m.iter().cloned())
        .collect();
    all.sort_by_key(|m| m.version);
    // Resolving a list that is already in memory finishes at once.
    futures::executor::block_on(Migrator::new(Resolved(all)))
        .expect("in-memory migrations always resolve")
});

/// Applies every migration not applied yet.
pub async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn every_version_belongs_to_one_crate() {
        let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
        for (owner, migrator) in owners() {
            for m in migrator.iter() {
                if let Some(other) = seen.insert(m.version, owner) {
                    panic!("migration {} is both {other}'s and {owner}'s", m.version);
                }
            }
        }
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert_eq!(versions, seen.keys().copied().collect::<Vec<_>>());
        assert_eq!(versions.first(), Some(&1));
    }
}
