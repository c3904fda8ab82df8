//! What every handler can reach: the application's commands, and the ports
//! the REST layer serves besides them.

use std::ops::Deref;
use std::sync::Arc;

use application::sagas::SagaAdmin;
use application::Services;

/// The REST layer's state: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Admin operations on the sagas (`POST /sagas/{id}/retry`).
    pub sagas: Arc<dyn SagaAdmin>,
    /// The auditor's reads of the log.
    pub audit: audit::Audit,
}

impl AppState {
    pub fn new(services: Services, sagas: Arc<dyn SagaAdmin>, audit: audit::Audit) -> Self {
        Self {
            services,
            sagas,
            audit,
        }
    }
}

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}
