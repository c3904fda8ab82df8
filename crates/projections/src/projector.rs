//! The projector interface and the built-in projectors.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::event::Decoded;
use crate::Result;

/// Turns events into read-model rows.
///
/// `apply` runs inside the runner's transaction (which also moves the
/// checkpoint) and must write only to [`Projector::tables`], by unqualified
/// name: a rebuild points `search_path` at copies of those tables.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the checkpoint key and the metrics label.
    fn name(&self) -> &'static str;

    /// Stream categories whose events `apply` receives; the checkpoint moves
    /// past every other event too.
    fn categories(&self) -> &'static [&'static str];

    /// The tables this projector owns (and a rebuild recreates).
    fn tables(&self) -> &'static [&'static str];

    /// Whether events' personal data must be decrypted for this projector.
    fn needs_personal(&self) -> bool {
        false
    }

    /// Applies `events` (in log order, possibly empty) within `conn`'s
    /// open transaction.
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> Result<()>;
}

/// Every built-in projector, in the order `booking serve` starts them.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(crate::flights::FlightsProjector),
        Arc::new(crate::bookings::BookingsProjector),
        Arc::new(crate::billing::BillingProjector),
        Arc::new(crate::analytics::AnalyticsProjector),
    ]
}

/// The built-in projector called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projector>> {
    all().into_iter().find(|p| p.name() == name)
}
