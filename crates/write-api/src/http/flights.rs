//! `/flights`: schedule, fares, reschedule, cancel (admin).

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
