//! What admins can do to sagas: retry a parked one. The REST layer reaches
//! it through the application's [`SagaAdmin`] port.

use application::sagas::{Retry, SagaAdmin};
use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store;

/// The sagas of one database, as admins act on them.
#[derive(Debug, Clone)]
pub struct Admin {
    pool: PgPool,
}

impl Admin {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl SagaAdmin for Admin {
    async fn retry(&self, saga_id: Uuid) -> Result<Retry, sqlx::Error> {
        store::retry(&self.pool, saga_id).await
    }
}
