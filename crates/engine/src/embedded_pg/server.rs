//! The server process: `initdb`, settings, `pg_ctl start`/`stop`, and
//! the leftovers of a crashed run.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::Flock;
use tracing::{debug, info, warn};

use super::folder::*;
use super::install::*;
use super::{
    DATABASE, HOST, INCLUDE_LINE, INITDB_TIMEOUT, PG_CTL_TIMEOUT, PG_CTL_WAIT_SECS, PSQL_TIMEOUT,
    READY_TIMEOUT, START_ATTEMPTS, SUPERUSER, SYSTEM_PORT,
};

pub(super) struct Server {
    pub(super) bin: Installation,
    /// The folder given to `start`, canonical.
    pub(super) root: PathBuf,
    /// `root/data`, the cluster.
    pub(super) data: PathBuf,
    pub(super) port: u16,
    pub(super) run_as: Option<RunAs>,
    /// Held for as long as the server is ours; the kernel lets go if we crash.
    pub(super) _lock: Flock<File>,
}

impl Server {
    pub(super) fn log_path(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// A command for one of the server tools, as the user the server runs as.
    pub(super) fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.dir.join(name));
        scrub_env(&mut cmd);
        cmd.current_dir(&self.root);
        if let Some(user) = &self.run_as {
            // std drops root's supplementary groups before switching uid.
            cmd.uid(user.uid).gid(user.gid).env("HOME", &user.home);
        }
        cmd
    }

    pub(super) fn chown(&self, path: &Path) -> Result<()> {
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("could not give {} to `{}`", path.display(), user.name))?;
        }
        Ok(())
    }

    /// Writes a small file of ours, owned by the server's user.
    pub(super) fn write_file(&self, path: &Path, contents: &str) -> Result<()> {
        fs::write(path, contents).with_context(|| format!("could not write {}", path.display()))?;
        self.chown(path)
    }

    pub(super) async fn init(&self) -> Result<()> {
        if self.data.exists() {
            let empty = fs::read_dir(&self.data)
                .with_context(|| format!("could not read {}", self.data.display()))?
                .next()
                .is_none();
            if !empty {
                bail!(
                    "{} is not empty but holds no PostgreSQL cluster (no PG_VERSION): move it away \
                     and start again",
                    self.data.display()
                );
            }
            fs::remove_dir(&self.data)
                .with_context(|| format!("could not remove {}", self.data.display()))?;
        }
        // initdb into a side folder, renamed once complete: a run cut short
        // never leaves a half-made cluster where the next run looks.
        let staging = self.root.join("data.initdb");
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("could not remove {}", staging.display()))?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .with_context(|| format!("could not make {}", staging.display()))?;
        self.chown(&staging)?;
        info!(folder = %self.data.display(), "initialising a new PostgreSQL cluster");
        let mut cmd = self.tool("initdb");
        cmd.arg("-D").arg(&staging).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]);
        run(cmd, "initdb", INITDB_TIMEOUT).await?;
        fs::rename(&staging, &self.data).with_context(|| {
            format!(
                "could not rename {} to {}",
                staging.display(),
                self.data.display()
            )
        })?;
        Ok(())
    }

    /// As root, a cluster made by another user (e.g. by a run as a normal
    /// user) is given to `postgres`, which PostgreSQL requires.
    pub(super) fn fix_ownership(&self) -> Result<()> {
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        let owner = fs::metadata(&self.data)
            .with_context(|| format!("could not read {}", self.data.display()))?
            .uid();
        if owner != user.uid {
            warn!(
                folder = %self.data.display(),
                owner,
                "cluster not owned by `{}`: changing its owner",
                user.name
            );
            chown_tree(&self.data, user).with_context(|| {
                format!("could not give {} to `{}`", self.data.display(), user.name)
            })?;
        }
        Ok(())
    }

    /// Deals with a `postmaster.pid` left behind: a server still running from
    /// an earlier run (whose `booking` crashed or was killed) is stopped; a
    /// file whose pid now names some other process is removed.
    pub(super) async fn clear_leftovers(&self) -> Result<()> {
        let pid_file = self.data.join("postmaster.pid");
        if !pid_file.exists() {
            return Ok(());
        }
        if !self.is_running().await? {
            // PostgreSQL replaces a pid file whose process is gone.
            debug!(file = %pid_file.display(), "stale postmaster.pid; PostgreSQL replaces it");
            return Ok(());
        }
        let pid = read_pid(&pid_file)?;
        let data = self
            .data
            .canonicalize()
            .with_context(|| format!("could not resolve {}", self.data.display()))?;
        match postmaster_of(pid, &data) {
            Owner::Ours => {
                warn!(
                    pid,
                    "a PostgreSQL left running by an earlier run is up on this folder: stopping it"
                );
                self.stop().await
            }
            Owner::Other => {
                warn!(
                    pid,
                    file = %pid_file.display(),
                    "postmaster.pid left by a crash names a process that is not this cluster's \
                     server: removing it"
                );
                fs::remove_file(&pid_file)
                    .with_context(|| format!("could not remove {}", pid_file.display()))
            }
            Owner::Unknown => bail!(
                "{} says a PostgreSQL (pid {pid}) runs on this folder, and that could not be \
                 checked: stop that server, or if there is none, delete that file",
                pid_file.display()
            ),
        }
    }

    /// `pg_ctl status`: 0 running, 3 not running, 4 no cluster there.
    pub(super) async fn is_running(&self) -> Result<bool> {
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("status").arg("-D").arg(&self.data);
        let out = output(cmd, "pg_ctl status", PG_CTL_TIMEOUT).await?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => bail!("pg_ctl status failed: {}", describe(&out)),
        }
    }

    /// Makes `postgresql.conf` read our `booking.conf` (last, so it wins).
    pub(super) fn ensure_include(&self) -> Result<()> {
        let conf = self.data.join("postgresql.conf");
        let text = fs::read_to_string(&conf)
            .with_context(|| format!("could not read {}", conf.display()))?;
        if !text.lines().any(|l| l.trim() == INCLUDE_LINE) {
            let mut file = OpenOptions::new()
                .append(true)
                .open(&conf)
                .with_context(|| format!("could not open {}", conf.display()))?;
            write!(
                file,
                "\n# Settings of booking's embedded PostgreSQL, rewritten at every start.\n{INCLUDE_LINE}\n"
            )
            .with_context(|| format!("could not write {}", conf.display()))?;
        }
        Ok(())
    }

    pub(super) fn write_settings(&self) -> Result<()> {
        let text = format!(
            "# Written by `booking` at every start of its embedded PostgreSQL: edits are lost.\n\
             listen_addresses = '{HOST}'\n\
             port = {port}\n\
             unix_socket_directories = ''\n\
             fsync = on\n\
             timezone = 'UTC'\n\
             log_timezone = 'UTC'\n\
             logging_collector = off\n",
            port = self.port
        );
        self.write_file(&self.data.join("booking.conf"), &text)
    }

    /// The port of the last run if it is still free, else a new free one.
    pub(super) fn choose_port(&self, fresh: bool) -> Result<u16> {
        let file = self.root.join("port");
        if !fresh {
            if let Some(port) = fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
            {
                if port != 0 && port != SYSTEM_PORT && port_is_free(port) {
                    return Ok(port);
                }
                info!(port, "the port of the last run is taken: picking another");
            }
        }
        let port = free_port()?;
        self.write_file(&file, &format!("{port}\n"))?;
        Ok(port)
    }

    pub(super) async fn start(&mut self) -> Result<()> {
        let log = self.log_path();
        for attempt in 1..=START_ATTEMPTS {
            self.port = self.choose_port(attempt > 1)?;
            self.write_settings()?;
            let offset = prepare_log(&log)?;
            self.chown(&log)?;
            let mut cmd = self.tool("pg_ctl");
            cmd.arg("start")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-s", "-t", &PG_CTL_WAIT_SECS.to_string()]);
            match run(cmd, "pg_ctl start", PG_CTL_TIMEOUT).await {
                Ok(_) => {
                    info!(port = self.port, log = %log.display(), "PostgreSQL started");
                    return Ok(());
                }
                Err(e) => {
                    let tail = log_tail(&log, offset);
                    let port_taken =
                        tail.contains("could not bind") || tail.contains("already in use");
                    if port_taken && attempt < START_ATTEMPTS {
                        warn!(port = self.port, "port taken meanwhile: trying another");
                        continue;
                    }
                    return Err(e.context(format!(
                        "could not start the embedded PostgreSQL on {} (port {}); end of {}:\n{tail}",
                        self.data.display(),
                        self.port,
                        log.display()
                    )));
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    pub(super) fn psql(&self, sql: &str) -> Result<Command> {
        let psql = find_psql(&self.bin.dir)?;
        let mut cmd = Command::new(psql);
        scrub_env(&mut cmd);
        cmd.args(["-X", "-w", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!(
                "host={HOST} port={} user={SUPERUSER} dbname=postgres sslmode=disable connect_timeout=5",
                self.port
            ))
            .arg("-c")
            .arg(sql);
        Ok(cmd)
    }

    pub(super) async fn wait_ready(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            let out = output(self.psql("SELECT 1")?, "psql", PSQL_TIMEOUT).await?;
            if out.status.success() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "the embedded PostgreSQL on port {} takes no connections after {:?}: {}",
                    self.port,
                    READY_TIMEOUT,
                    describe(&out)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(super) async fn ensure_database(&self) -> Result<()> {
        let query = format!("SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'");
        let out = run(self.psql(&query)?, "psql", PSQL_TIMEOUT).await?;
        if String::from_utf8_lossy(&out.stdout).trim() != "1" {
            info!(database = DATABASE, "creating the database");
            run(
                self.psql(&format!("CREATE DATABASE {DATABASE}"))?,
                "psql (CREATE DATABASE)",
                PSQL_TIMEOUT,
            )
            .await?;
        }
        Ok(())
    }

    pub(super) fn stop_command(&self, mode: &str) -> Command {
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("stop").arg("-D").arg(&self.data).args([
            "-m",
            mode,
            "-w",
            "-s",
            "-t",
            &PG_CTL_WAIT_SECS.to_string(),
        ]);
        cmd
    }

    pub(super) async fn stop(&self) -> Result<()> {
        let Err(e) = run(
            self.stop_command("fast"),
            "pg_ctl stop -m fast",
            PG_CTL_TIMEOUT,
        )
        .await
        else {
            return Ok(());
        };
        if !self.is_running().await? {
            warn!(error = %format!("{e:#}"), "pg_ctl stop failed but the server is down");
            return Ok(());
        }
        warn!(error = %format!("{e:#}"), "fast stop failed: stopping immediately");
        run(
            self.stop_command("immediate"),
            "pg_ctl stop -m immediate",
            PG_CTL_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// For `Drop`: the same as [`Server::stop`], blocking.
    pub(super) fn stop_blocking(&self) -> Result<()> {
        let fast = check(
            self.stop_command("fast").stdin(Stdio::null()).output(),
            "pg_ctl stop",
        );
        if fast.is_ok() {
            return Ok(());
        }
        check(
            self.stop_command("immediate").stdin(Stdio::null()).output(),
            "pg_ctl stop -m immediate",
        )
        .map(drop)
        .context("pg_ctl stop -m fast failed, then -m immediate too")
    }
}

pub(super) fn check(result: io::Result<Output>, what: &str) -> Result<Output> {
    let out = result.with_context(|| format!("could not run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", describe(&out));
    }
    Ok(out)
}

/// Runs a command to its end within `limit`, whatever its exit status.
pub(super) async fn output(cmd: Command, what: &str, limit: Duration) -> Result<Output> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    debug!(command = ?cmd.as_std(), "running");
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(result) => result.with_context(|| format!("could not run {what}")),
        Err(_) => bail!("{what} did not finish within {limit:?}"),
    }
}

/// Runs a command to its end within `limit`; an error unless it succeeded.
pub(super) async fn run(cmd: Command, what: &str, limit: Duration) -> Result<Output> {
    let out = output(cmd, what, limit).await?;
    if !out.status.success() {
        bail!("{what} failed: {}", describe(&out));
    }
    Ok(out)
}

pub(super) fn describe(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = [stderr.trim(), stdout.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    if text.is_empty() {
        out.status.to_string()
    } else {
        format!("{}: {text}", out.status)
    }
}

/// Libpq and the server read `PG*` variables (PGPORT, PGHOST, PGDATA…): ours
/// are all given explicitly, and none of the caller's may change them.
pub(super) fn scrub_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
}
