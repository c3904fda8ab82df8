//! A PostgreSQL of its own for `booking serve` when no `DATABASE_URL` is set.
//!
//! [`EmbeddedPostgres::start`] runs the machine's PostgreSQL installation
//! (`initdb`, `pg_ctl` and `postgres`, found on `PATH` or under
//! `/usr/lib/postgresql/*/bin`) on a folder of its own, which keeps its data
//! between runs:
//!
//! - `data/`: the cluster, made by `initdb` on first use (superuser
//!   `booking`, trust authentication, UTF8), with a database `booking`;
//! - `data/booking.conf`: the settings, rewritten at every start: listen on
//!   127.0.0.1 only, on the port below, no unix socket, `fsync` on;
//! - `port`: the TCP port picked on first use (never 5432), reused while free;
//! - `postgres.log`: the server's log;
//! - `booking.lock`: locked while a `booking` process runs the server, so two
//!   of them never share one folder.
//!
//! PostgreSQL refuses to run as root: when the effective uid is 0, `initdb`
//! and `pg_ctl` run as the `postgres` system user, which then owns the folder
//! and must be able to reach it (every folder above it searchable by that
//! user).
//!
//! A server left running by a `booking` that crashed is stopped and started
//! afresh; a `postmaster.pid` left by a crash is dealt with whether or not its
//! pid has been reused since.

mod folder;
mod install;
mod server;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use tracing::{info, warn};

use folder::*;
use install::*;
use server::*;

/// The superuser `initdb` makes, and the user in [`EmbeddedPostgres::database_url`].
pub const SUPERUSER: &str = "booking";
/// The database made on first start.
pub const DATABASE: &str = "booking";
/// Names a folder holding `initdb`, `pg_ctl` and `postgres`, tried before any other.
pub const BIN_DIR_ENV: &str = "BOOKING_PG_BIN_DIR";

/// The machine's own PostgreSQL usually listens there: never use it.
const SYSTEM_PORT: u16 = 5432;
const HOST: &str = "127.0.0.1";
const SYSTEM_USER: &str = "postgres";
const INCLUDE_LINE: &str = "include_if_exists = 'booking.conf'";
const INITDB_TIMEOUT: Duration = Duration::from_secs(180);
/// Given to `pg_ctl -t`; our own limit on the command is a little longer.
const PG_CTL_WAIT_SECS: u64 = 60;
const PG_CTL_TIMEOUT: Duration = Duration::from_secs(PG_CTL_WAIT_SECS + 15);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const PSQL_TIMEOUT: Duration = Duration::from_secs(30);
/// Past this size the log is moved to `postgres.log.old` at start.
const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;
const START_ATTEMPTS: u32 = 3;

/// A PostgreSQL server run from the machine's installation on a folder of its own.
///
/// Stop it with [`EmbeddedPostgres::stop`]; dropping it stops it too, blocking
/// the thread for as long as that takes.
pub struct EmbeddedPostgres {
    server: Option<Server>,
    port: u16,
    root: PathBuf,
    bin_dir: PathBuf,
}

impl fmt::Debug for EmbeddedPostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedPostgres")
            .field("root", &self.root)
            .field("port", &self.port)
            .field("bin_dir", &self.bin_dir)
            .field("running", &self.server.is_some())
            .finish()
    }
}

impl EmbeddedPostgres {
    /// Starts PostgreSQL on `data_dir` (made if missing), after making the
    /// cluster there on first use, and waits until the database `booking`
    /// takes connections.
    pub async fn start(data_dir: &Path) -> Result<Self> {
        let run_as = run_as()?;
        let root = prepare_root(data_dir, run_as.as_ref())?;
        let lock = lock_root(&root, run_as.as_ref())?;
        let data = root.join("data");
        let wanted = cluster_version(&data)?;
        let bin = find_installation(wanted.as_deref(), &data)?;
        info!(
            folder = %root.display(),
            bin_dir = %bin.dir.display(),
            version = %bin.version,
            as_user = run_as.as_ref().map(|u| u.name.as_str()).unwrap_or("self"),
            "starting embedded PostgreSQL"
        );
        let mut server = Server {
            bin,
            root: root.clone(),
            data,
            port: 0,
            run_as,
            _lock: lock,
        };
        if wanted.is_none() {
            server.init().await?;
        } else {
            server.fix_ownership()?;
        }
        server.clear_leftovers().await?;
        server.ensure_include()?;
        server.start().await?;

        // From here on, dropping `this` stops the server.
        let this = Self {
            port: server.port,
            bin_dir: server.bin.dir.clone(),
            root,
            server: Some(server),
        };
        let server = this.server.as_ref().expect("just set");
        server.wait_ready().await?;
        server.ensure_database().await?;
        info!(url = %this.database_url(), "embedded PostgreSQL is ready");
        Ok(this)
    }

    /// `postgres://booking@127.0.0.1:PORT/booking` (trust authentication: no password).
    pub fn database_url(&self) -> String {
        format!("postgres://{SUPERUSER}@{HOST}:{}/{DATABASE}", self.port)
    }

    /// The TCP port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder it runs on, made absolute (the `data_dir` given to [`EmbeddedPostgres::start`]).
    pub fn data_dir(&self) -> &Path {
        &self.root
    }

    /// The folder of the PostgreSQL binaries it runs (`psql`, `pg_dump`… are usually there too).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Stops the server (`pg_ctl stop -m fast`, then `-m immediate` if that fails).
    pub async fn stop(mut self) -> Result<()> {
        let Some(server) = self.server.take() else {
            return Ok(());
        };
        server.stop().await?;
        info!(folder = %server.root.display(), "embedded PostgreSQL stopped");
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            info!(folder = %server.root.display(), "stopping embedded PostgreSQL on drop");
            if let Err(e) = server.stop_blocking() {
                warn!(error = %format!("{e:#}"), "could not stop embedded PostgreSQL");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn versioned_dirs_highest_first() {
        let tmp = tempfile::tempdir().unwrap();
        for v in ["9.6", "15", "13", "notaversion", "16"] {
            fs::create_dir(tmp.path().join(v)).unwrap();
        }
        let dirs = versioned_dirs(tmp.path(), "", "bin");
        let names: Vec<_> = dirs
            .iter()
            .map(|d| d.parent().unwrap().file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["16", "15", "13", "9.6"]);
    }

    #[test]
    fn pid_of_another_process_is_not_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().canonicalize().unwrap();
        assert_eq!(postmaster_of(std::process::id(), &data), Owner::Other);
        // No such process (pids stay far below this on Linux and macOS).
        assert_eq!(postmaster_of(999_999_999, &data), Owner::Other);
    }

    #[test]
    fn free_port_is_never_the_system_one() {
        let port = free_port().unwrap();
        assert_ne!(port, SYSTEM_PORT);
        assert!(port_is_free(port));
    }
}
