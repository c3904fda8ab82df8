//! Finding the machine's PostgreSQL installation.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use tracing::debug;

use super::server::*;
use super::BIN_DIR_ENV;

#[derive(Debug)]
pub(super) struct Installation {
    pub(super) dir: PathBuf,
    /// As `postgres --version` prints it, e.g. `15.18`.
    pub(super) version: String,
}

/// The major version the cluster was made by, if there is one.
pub(super) fn cluster_version(data: &Path) -> Result<Option<String>> {
    let file = data.join("PG_VERSION");
    match fs::read_to_string(&file) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("could not read {}", file.display())),
    }
}

pub(super) const SERVER_TOOLS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

pub(super) fn has_server_tools(dir: &Path) -> bool {
    SERVER_TOOLS.iter().all(|t| dir.join(t).is_file())
}

/// Folders that may hold the server tools, most wanted first: `$BOOKING_PG_BIN_DIR`,
/// `PATH` (and where its `initdb` links to), then the usual install places,
/// highest version first.
pub(super) fn candidate_dirs() -> Vec<PathBuf> {
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
pub(super) fn versioned_dirs(parent: &Path, prefix: &str, sub: &str) -> Vec<PathBuf> {
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
pub(super) fn server_version(dir: &Path) -> Option<String> {
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

pub(super) fn not_installed() -> anyhow::Error {
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
pub(super) fn find_installation(wanted: Option<&str>, data: &Path) -> Result<Installation> {
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
pub(super) fn find_psql(bin_dir: &Path) -> Result<PathBuf> {
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
