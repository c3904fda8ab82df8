//! Which PostgreSQL the engine uses: the one `DATABASE_URL` names, or, with
//! none set, a private one started from the machine's installation.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::embedded_pg::EmbeddedPostgres;

/// A database to connect to, and the embedded server behind it if we
/// started one (stopped by [`Database::shutdown`]).
pub struct Database {
    pub url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    pub async fn open(url: Option<String>, data_dir: PathBuf) -> anyhow::Result<Self> {
        match url {
            Some(url) => Ok(Self {
                url,
                embedded: None,
            }),
            None => {
                tracing::info!(data_dir = %data_dir.display(), "no DATABASE_URL: starting an embedded PostgreSQL");
                let pg = EmbeddedPostgres::start(&data_dir)
                    .await
                    .context("starting the embedded PostgreSQL (or set DATABASE_URL)")?;
                Ok(Self {
                    url: pg.database_url(),
                    embedded: Some(pg),
                })
            }
        }
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(pg) = self.embedded {
            pg.stop().await?;
        }
        Ok(())
    }
}
