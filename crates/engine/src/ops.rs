//! One-shot operator commands: migrations and projection maintenance.

use std::sync::Arc;

use eventstore::{EventStore, PgEventStore, Sealer};
use sqlx::PgPool;

pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let pool = PgPool::connect(database_url).await?;
    crate::migrations::run(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// `booking projections rebuild <name>`: replays the whole log into fresh
/// tables while the current ones keep serving, then swaps them in.
pub async fn rebuild(database_url: &str, name: &str) -> anyhow::Result<()> {
    let pool = PgPool::connect(database_url).await?;
    crate::migrations::run(&pool).await?;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(pool.clone()));
    let runner = projections::Runner::new(pool.clone(), store, Sealer::postgres(pool));
    let report = projections::rebuild::rebuild_by_name(&runner, name).await?;
    println!(
        "rebuilt {}: {} events in {:.2} s ({:.0} events/s), now at {}",
        report.name,
        report.events,
        report.elapsed.as_secs_f64(),
        report.events_per_second(),
        report.position
    );
    Ok(())
}

/// `booking projections status`: each projection's position and lag.
pub async fn status(database_url: &str) -> anyhow::Result<()> {
    let pool = PgPool::connect(database_url).await?;
    println!(
        "{:<12} {:>34} {:>12} {:>12}",
        "name", "position", "lag events", "lag seconds"
    );
    for s in projections::status(&pool).await? {
        println!(
            "{:<12} {:>34} {:>12} {:>12.3}",
            s.name, s.position, s.lag_events, s.lag_seconds
        );
    }
    Ok(())
}
