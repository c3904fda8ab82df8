//! The port through which admins act on the process managers: the sagas
//! crate implements it, the binary wires it, and the REST layer calls it
//! through [`Services::retry_saga`] without depending on the sagas.

use async_trait::async_trait;
use auth::Caller;
use domain::values::Role;
use eventstore::Position;
use serde_json::json;
use uuid::Uuid;

use crate::{CommandError, CommandResult, Outcome, Services};

/// What became of a retry request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The saga runs again with a fresh retry budget.
    Restarted,
    /// The saga exists but is not parked.
    NotParked,
    NotFound,
}

/// Admin operations on sagas.
#[async_trait]
pub trait SagaAdmin: Send + Sync {
    /// Gives a parked saga a fresh retry budget and runs it now.
    async fn retry(&self, saga_id: Uuid) -> Result<Retry, sqlx::Error>;
}

impl Services {
    /// Retries a parked saga (admin).
    pub async fn retry_saga(
        &self,
        caller: &Caller,
        sagas: &dyn SagaAdmin,
        id: Uuid,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        match sagas.retry(id).await? {
            Retry::NotFound => Err(CommandError::not_found("saga")),
            Retry::NotParked => Err(CommandError::InvalidState(
                "only a parked saga can be retried".into(),
            )),
            Retry::Restarted => {
                tracing::info!(by = %caller.user_id, "parked saga retried");
                let position = self.store.head().await?.unwrap_or(Position::START);
                Ok(Outcome {
                    position,
                    reply: json!({ "saga_id": id, "status": "RUNNING" }),
                    replayed: false,
                })
            }
        }
    }
}
