//! What every handler can reach: the application's commands, and the ports
//! the REST layer serves besides them.

use std::ops::Deref;
use std::sync::Arc;

use application::sagas::SagaAdmin;
use application::webhooks::WebhookAdmin;
use application::Services;

/// The REST layer's state: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Admin operations on the sagas (`POST /sagas/{id}/retry`).
    pub sagas: Arc<dyn SagaAdmin>,
    /// The auditor's reads of the log.
    pub audit: audit::Audit,
    /// Admin operations on webhooks (`/webhooks`).
    pub webhooks: Arc<dyn WebhookAdmin>,
}

impl AppState {
    pub fn new(
        services: Services,
        sagas: Arc<dyn SagaAdmin>,
        audit: audit::Audit,
        webhooks: Arc<dyn WebhookAdmin>,
    ) -> Self {
        Self {
            services,
            sagas,
            audit,
            webhooks,
        }
    }
}

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}
