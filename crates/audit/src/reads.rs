//! Audited auditors: every audit read leaves a row admins can read.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Audit, AuditResult};

/// One audit read: who looked at what, and when.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRead {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub target: String,
}

impl Audit {
    /// Records a read; recorded before it is answered, so a read that
    /// fails half-way still shows.
    pub async fn record(
        &self,
        actor: &str,
        role: Option<&str>,
        action: &str,
        target: &str,
    ) -> AuditResult<()> {
        sqlx::query(
            "INSERT INTO audit_reads (actor, role, action, target) VALUES ($1, $2, $3, $4)",
        )
        .bind(actor)
        .bind(role)
        .bind(action)
        .bind(target)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest reads first, before the id `before` when given.
    pub async fn reads(&self, before: Option<i64>, limit: usize) -> AuditResult<Vec<AuditRead>> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor, role, action, target FROM audit_reads \
             WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }
}
