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

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Uid, User};
use tracing::{debug, info, warn};

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

/// The system user PostgreSQL runs as when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

#[derive(Debug)]
struct Installation {
    dir: PathBuf,
    /// As `postgres --version` prints it, e.g. `15.18`.
    version: String,
}

struct Server {
    bin: Installation,
    /// The folder given to `start`, canonical.
    root: PathBuf,
    /// `root/data`, the cluster.
    data: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    /// Held for as long as the server is ours; the kernel lets go if we crash.
    _lock: Flock<File>,
}

impl Server {
    fn log_path(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// A command for one of the server tools, as the user the server runs as.
    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.dir.join(name));
        scrub_env(&mut cmd);
        cmd.current_dir(&self.root);
        if let Some(user) = &self.run_as {
            // std drops root's supplementary groups before switching uid.
            cmd.uid(user.uid).gid(user.gid).env("HOME", &user.home);
        }
        cmd
    }

    fn chown(&self, path: &Path) -> Result<()> {
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("could not give {} to `{}`", path.display(), user.name))?;
        }
        Ok(())
    }

    /// Writes a small file of ours, owned by the server's user.
    fn write_file(&self, path: &Path, contents: &str) -> Result<()> {
        fs::write(path, contents).with_context(|| format!("could not write {}", path.display()))?;
        self.chown(path)
    }

    async fn init(&self) -> Result<()> {
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
    fn fix_ownership(&self) -> Result<()> {
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
    async fn clear_leftovers(&self) -> Result<()> {
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
    async fn is_running(&self) -> Result<bool> {
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
    fn ensure_include(&self) -> Result<()> {
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

    fn write_settings(&self) -> Result<()> {
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
    fn choose_port(&self, fresh: bool) -> Result<u16> {
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

    async fn start(&mut self) -> Result<()> {
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

    fn psql(&self, sql: &str) -> Result<Command> {
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

    async fn wait_ready(&self) -> Result<()> {
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

    async fn ensure_database(&self) -> Result<()> {
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

    fn stop_command(&self, mode: &str) -> Command {
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

    async fn stop(&self) -> Result<()> {
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
    fn stop_blocking(&self) -> Result<()> {
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

fn check(result: io::Result<Output>, what: &str) -> Result<Output> {
    let out = result.with_context(|| format!("could not run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", describe(&out));
    }
    Ok(out)
}

/// Runs a command to its end within `limit`, whatever its exit status.
async fn output(cmd: Command, what: &str, limit: Duration) -> Result<Output> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    debug!(command = ?cmd.as_std(), "running");
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(result) => result.with_context(|| format!("could not run {what}")),
        Err(_) => bail!("{what} did not finish within {limit:?}"),
    }
}

/// Runs a command to its end within `limit`; an error unless it succeeded.
async fn run(cmd: Command, what: &str, limit: Duration) -> Result<Output> {
    let out = output(cmd, what, limit).await?;
    if !out.status.success() {
        bail!("{what} failed: {}", describe(&out));
    }
    Ok(out)
}

fn describe(out: &Output) -> String {
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
fn scrub_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
}

/// `Some(postgres)` when we are root.
fn run_as() -> Result<Option<RunAs>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = User::from_name(SYSTEM_USER)
        .with_context(|| format!("could not look up the `{SYSTEM_USER}` user"))?
        .ok_or_else(|| {
            anyhow!(
                "booking runs as root, and PostgreSQL refuses to: it would run its embedded \
                 PostgreSQL as the `{SYSTEM_USER}` system user, but there is none. Create it \
                 (`useradd --system --home-dir /var/lib/postgresql {SYSTEM_USER}`; installing the \
                 `postgresql` package does), run booking as a normal user, or set DATABASE_URL \
                 to use a PostgreSQL of your own"
            )
        })?;
    Ok(Some(RunAs {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
    }))
}

/// Makes the folder (0700 when new), checks that the server's user can reach
/// it, gives it to that user; returns it canonical.
fn prepare_root(dir: &Path, run_as: Option<&RunAs>) -> Result<PathBuf> {
    let created = !dir.exists();
    if let (Some(user), true) = (run_as, created) {
        // Say so before making folders nobody can use.
        let dir = std::path::absolute(dir)
            .with_context(|| format!("could not resolve {}", dir.display()))?;
        if let Some(existing) = dir.ancestors().find(|d| d.exists()) {
            check_reachable(&dir, existing, user)?;
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("could not make {}", dir.display()))?;
    let root = dir
        .canonicalize()
        .with_context(|| format!("could not resolve {}", dir.display()))?;
    if created {
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("could not set the mode of {}", root.display()))?;
    }
    if let Some(user) = run_as {
        if let Some(parent) = root.parent() {
            check_reachable(&root, parent, user)?;
        }
        std::os::unix::fs::chown(&root, Some(user.uid), Some(user.gid))
            .with_context(|| format!("could not give {} to `{}`", root.display(), user.name))?;
    }
    Ok(root)
}

/// `from` and every folder above it, on the way to `root`, must be searchable
/// by `user` (by mode bits; ACLs and the user's supplementary groups are not
/// considered).
fn check_reachable(root: &Path, from: &Path, user: &RunAs) -> Result<()> {
    for dir in from.ancestors() {
        let meta =
            fs::metadata(dir).with_context(|| format!("could not read {}", dir.display()))?;
        let mode = meta.mode();
        let searchable = mode & 0o001 != 0
            || (meta.gid() == user.gid && mode & 0o010 != 0)
            || (meta.uid() == user.uid && mode & 0o100 != 0);
        if !searchable {
            bail!(
                "booking runs as root, so its embedded PostgreSQL runs as the `{name}` system user \
                 (PostgreSQL refuses to run as root), and `{name}` cannot reach {root}: {dir} \
                 (owner uid {owner}, mode {mode:o}) is not searchable by it. Use a data folder \
                 `{name}` can reach (e.g. under /var/lib or /tmp), or `chmod o+x {dir}`, or run \
                 booking as a normal user, or set DATABASE_URL to use a PostgreSQL of your own",
                name = user.name,
                root = root.display(),
                dir = dir.display(),
                owner = meta.uid(),
                mode = mode & 0o7777,
            );
        }
    }
    Ok(())
}

fn lock_root(root: &Path, run_as: Option<&RunAs>) -> Result<Flock<File>> {
    let path = root.join("booking.lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("could not open {}", path.display()))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("could not give {} to `{}`", path.display(), user.name))?;
    }
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, errno)) if errno == Errno::EWOULDBLOCK || errno == Errno::EAGAIN => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "{} is in use by another booking process (pid {}) running its embedded \
                 PostgreSQL: stop that one, or give this one another data folder",
                root.display(),
                holder.trim()
            );
        }
        Err((_, errno)) => {
            return Err(anyhow!(errno).context(format!("could not lock {}", path.display())))
        }
    };
    // Only for the message above; the lock is what counts.
    lock.set_len(0)
        .and_then(|()| lock.seek(SeekFrom::Start(0)))
        .and_then(|_| write!(lock, "{}", std::process::id()))
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(lock)
}

/// The major version the cluster was made by, if there is one.
fn cluster_version(data: &Path) -> Result<Option<String>> {
    let file = data.join("PG_VERSION");
    match fs::read_to_string(&file) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("could not read {}", file.display())),
    }
}

const SERVER_TOOLS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

fn has_server_tools(dir: &Path) -> bool {
    SERVER_TOOLS.iter().all(|t| dir.join(t).is_file())
}

/// Folders that may hold the server tools, most wanted first: `$BOOKING_PG_BIN_DIR`,
/// `PATH` (and where its `initdb` links to), then the usual install places,
/// highest version first.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if !initdb.is_file() {
                continue;
            }
            // e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb
            if let Some(real) = initdb
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                dirs.push(real);
            }
            dirs.push(dir);
        }
    }
    dirs.extend(versioned_dirs(Path::new("/usr/lib/postgresql"), "", "bin"));
    dirs.extend(versioned_dirs(Path::new("/usr/"), "pgsql-", "bin"));
    dirs.extend(versioned_dirs(
        Path::new("/opt/homebrew/opt"),
        "postgresql@",
        "bin",
    ));
    dirs.extend(versioned_dirs(
        Path::new("/usr/local/opt"),
        "postgresql@",
        "bin",
    ));
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));

    let mut seen = Vec::new();
    dirs.retain(|dir| {
        if !has_server_tools(dir) {
            return false;
        }
        let key = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if seen.contains(&key) {
            return false;
        }
        seen.push(key);
        true
    });
    dirs
}

/// `parent/<prefix><version>/<sub>`, highest version first.
fn versioned_dirs(parent: &Path, prefix: &str, sub: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix(prefix)?;
            let key = version
                .split('.')
                .map(|n| n.parse::<u32>().ok())
                .collect::<Option<Vec<_>>>()?;
            Some((key, e.path().join(sub)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, dir)| dir).collect()
}

/// `postgres --version` of a folder, e.g. `15.18`.
fn server_version(dir: &Path) -> Option<String> {
    let mut cmd = Command::new(dir.join("postgres"));
    scrub_env(&mut cmd);
    let out = cmd.arg("--version").stdin(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
}

fn not_installed() -> anyhow::Error {
    anyhow!(
        "no PostgreSQL installation found: with no DATABASE_URL set, `booking serve` runs a \
         PostgreSQL of its own, and needs `initdb`, `pg_ctl` and `postgres` for that (looked in \
         ${BIN_DIR_ENV}, on PATH, under /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, Homebrew's \
         opt/postgresql@*/bin and /usr/local/pgsql/bin). Either:\n\
         - install PostgreSQL: `sudo apt-get install postgresql` (Debian, Ubuntu), \
         `sudo dnf install postgresql-server` (Fedora, RHEL) or `brew install postgresql@17` \
         (macOS), or set {BIN_DIR_ENV} to the folder holding its binaries;\n\
         - or set DATABASE_URL to a PostgreSQL you run, e.g. \
         DATABASE_URL=postgres://user:password@localhost:5432/booking;\n\
         - or run the whole system in containers with `docker compose up`."
    )
}

/// The installation to run: the first one found, or, for an existing
/// cluster, the first one of the cluster's major version.
fn find_installation(wanted: Option<&str>, data: &Path) -> Result<Installation> {
    let dirs = candidate_dirs();
    if dirs.is_empty() {
        return Err(not_installed());
    }
    let mut found = Vec::new();
    for dir in dirs {
        let Some(version) = server_version(&dir) else {
            debug!(dir = %dir.display(), "`postgres --version` failed: skipped");
            continue;
        };
        let fits = wanted
            .is_none_or(|major| version == major || version.starts_with(&format!("{major}.")));
        if fits {
            return Ok(Installation { dir, version });
        }
        found.push(format!("{version} in {}", dir.display()));
    }
    match wanted {
        Some(major) if !found.is_empty() => bail!(
            "the cluster in {} was made by PostgreSQL {major}, and only other versions are \
             installed ({}). Install PostgreSQL {major} (e.g. `apt-get install postgresql-{major}`), \
             or upgrade the cluster with pg_upgrade, or move the folder away to start afresh",
            data.display(),
            found.join(", ")
        ),
        _ => Err(not_installed()),
    }
}

/// `psql` from the server's folder, else from `PATH`.
fn find_psql(bin_dir: &Path) -> Result<PathBuf> {
    let beside = bin_dir.join("psql");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("psql"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "`psql` is needed to set up the embedded PostgreSQL and is neither in {} nor on \
                 PATH: install the PostgreSQL client (`apt-get install postgresql-client`), or \
                 set DATABASE_URL",
                bin_dir.display()
            )
        })
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((HOST, port)).is_ok()
}

fn free_port() -> Result<u16> {
    for _ in 0..20 {
        let listener =
            TcpListener::bind((HOST, 0)).context("could not find a free port on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        if port != SYSTEM_PORT {
            return Ok(port);
        }
    }
    bail!("could not find a free port on 127.0.0.1")
}

/// Moves a large log aside; returns where this run's lines will start.
fn prepare_log(log: &Path) -> Result<u64> {
    let len = fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    if len > MAX_LOG_BYTES {
        let old = log.with_extension("log.old");
        fs::rename(log, &old).with_context(|| format!("could not rename {}", log.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("could not open {}", log.display()))?;
    Ok(file.metadata()?.len())
}

/// The last lines of the log written since `offset`.
fn log_tail(log: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(log) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = file.take(64 * 1024).read_to_string(&mut text);
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn read_pid(pid_file: &Path) -> Result<u32> {
    let text = fs::read_to_string(pid_file)
        .with_context(|| format!("could not read {}", pid_file.display()))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow!("{} holds no pid", pid_file.display()))
}

#[derive(Debug, PartialEq, Eq)]
enum Owner {
    /// A postmaster running on this cluster.
    Ours,
    /// Gone, or some other process that got the pid since.
    Other,
    Unknown,
}

/// Whether `pid` is the postmaster of `data` (canonical): a postmaster works
/// in its cluster's folder, and names it on its command line.
fn postmaster_of(pid: u32, data: &Path) -> Owner {
    if Path::new("/proc/self/cwd").exists() {
        return match fs::read_link(format!("/proc/{pid}/cwd")) {
            Ok(cwd) if cwd == data => Owner::Ours,
            Ok(_) => Owner::Other,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Owner::Other,
            Err(_) => Owner::Unknown,
        };
    }
    // No /proc (e.g. macOS).
    let Some(data) = data.to_str() else {
        return Owner::Unknown;
    };
    match Command::new("ps")
        .args(["-o", "command=", "-p", &pid.to_string()])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains(data) => Owner::Ours,
        Ok(out) if out.status.code() == Some(1) || out.status.success() => Owner::Other,
        _ => Owner::Unknown,
    }
}

fn chown_tree(path: &Path, user: &RunAs) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), user)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
