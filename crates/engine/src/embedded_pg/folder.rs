//! The folder the server lives in: who owns it, its lock, its port, its
//! log, its pid file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Uid, User};

use super::{HOST, MAX_LOG_BYTES, SYSTEM_PORT, SYSTEM_USER};

/// The system user PostgreSQL runs as when we are root.
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    pub(super) name: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) home: PathBuf,
}

/// `Some(postgres)` when we are root.
pub(super) fn run_as() -> Result<Option<RunAs>> {
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
pub(super) fn prepare_root(dir: &Path, run_as: Option<&RunAs>) -> Result<PathBuf> {
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
pub(super) fn check_reachable(root: &Path, from: &Path, user: &RunAs) -> Result<()> {
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

pub(super) fn lock_root(root: &Path, run_as: Option<&RunAs>) -> Result<Flock<File>> {
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

pub(super) fn port_is_free(port: u16) -> bool {
    TcpListener::bind((HOST, port)).is_ok()
}

pub(super) fn free_port() -> Result<u16> {
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
pub(super) fn prepare_log(log: &Path) -> Result<u64> {
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
pub(super) fn log_tail(log: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(log) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = file.take(64 * 1024).read_to_string(&mut text);
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub(super) fn read_pid(pid_file: &Path) -> Result<u32> {
    let text = fs::read_to_string(pid_file)
        .with_context(|| format!("could not read {}", pid_file.display()))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow!("{} holds no pid", pid_file.display()))
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Owner {
    /// A postmaster running on this cluster.
    Ours,
    /// Gone, or some other process that got the pid since.
    Other,
    Unknown,
}

/// Whether `pid` is the postmaster of `data` (canonical): a postmaster works
/// in its cluster's folder, and names it on its command line.
pub(super) fn postmaster_of(pid: u32, data: &Path) -> Owner {
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

pub(super) fn chown_tree(path: &Path, user: &RunAs) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), user)?;
        }
    }
    Ok(())
}
