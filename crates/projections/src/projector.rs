//! The projector interface and the built-in projectors.

use std::any::Any;
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

    /// [`Projector::apply`] within a rebuild, where nothing else writes the
    /// (fresh) tables: `memo` lives from the first batch to the swap, so a
    /// projector may keep the rows it wrote instead of reading them back.
    async fn apply_rebuilding(
        &self,
        conn: &mut PgConnection,
        events: &[Decoded],
        memo: &mut RebuildMemo,
    ) -> Result<()> {
        let _ = memo;
        self.apply(conn, events).await
    }

    /// Called once a rebuild has replayed the log, before the tables'
    /// indexes are built and they are swapped in: whatever
    /// [`Projector::apply_rebuilding`] kept back must be written now. The
    /// events appended meanwhile are applied afterwards, with `memo` again.
    async fn finish_rebuild(&self, conn: &mut PgConnection, memo: &mut RebuildMemo) -> Result<()> {
        let _ = (conn, memo);
        Ok(())
    }
}

/// What a projector keeps across the batches of one rebuild.
pub type RebuildMemo = Option<Box<dyn Any + Send>>;

/// Every built-in projector, in the order `booking serve` starts them.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(crate::flights::FlightsProjector::default()),
        Arc::new(crate::bookings::BookingsProjector),
        Arc::new(crate::billing::BillingProjector),
        Arc::new(crate::analytics::AnalyticsProjector),
        Arc::new(crate::users::UsersProjector),
        Arc::new(crate::waitlist::WaitlistProjector),
    ]
}

/// The built-in projector called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projector>> {
    all().into_iter().find(|p| p.name() == name)
}
