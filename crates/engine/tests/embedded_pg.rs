//! Runs the machine's PostgreSQL through `EmbeddedPostgres` (it must be installed).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use engine::embedded_pg::EmbeddedPostgres;

/// A temporary folder the `postgres` user can reach when the tests run as
/// root, whatever the umask.
fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn psql(pg: &EmbeddedPostgres, sql: &str) -> Result<String, String> {
    let beside = pg.bin_dir().join("psql");
    let psql = if beside.is_file() {
        beside
    } else {
        PathBuf::from("psql")
    };
    let out = Command::new(psql)
        .args(["-X", "-w", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(pg.database_url())
        .arg("-c")
        .arg(sql)
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_data_between_runs() {
    let tmp = temp_dir();
    let dir = tmp.path().join("pg");

    let pg = EmbeddedPostgres::start(&dir).await.expect("first start");
    let url = pg.database_url();
    assert!(url.starts_with("postgres://booking@127.0.0.1:"), "{url}");
    assert!(url.ends_with("/booking"), "{url}");
    assert_ne!(pg.port(), 5432);
    assert_eq!(psql(&pg, "select 1").unwrap(), "1");
    assert_eq!(psql(&pg, "select current_database()").unwrap(), "booking");
    assert_eq!(
        psql(
            &pg,
            "select pg_encoding_to_char(encoding) from pg_database where datname = 'booking'"
        )
        .unwrap(),
        "UTF8"
    );
    assert_eq!(psql(&pg, "show fsync").unwrap(), "on");
    psql(
        &pg,
        "create table kept (id int primary key); insert into kept values (42)",
    )
    .unwrap();
    let port = pg.port();

    // A second process on the same folder is refused while the first runs.
    let err = EmbeddedPostgres::start(&dir).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("in use by another booking process"),
        "{err:#}"
    );

    pg.stop().await.expect("first stop");
    assert!(!dir.join("data/postmaster.pid").exists());

    let pg = EmbeddedPostgres::start(&dir).await.expect("second start");
    assert_eq!(pg.port(), port, "the port of the first run is reused");
    assert_eq!(psql(&pg, "select id from kept").unwrap(), "42");
    let url = pg.database_url();

    // Dropping without stop() stops it too.
    drop(pg);
    assert!(!dir.join("data/postmaster.pid").exists());
    assert!(!port_in_use(&url), "server still listening after drop");
}

fn port_in_use(url: &str) -> bool {
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .expect("port in url");
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_from_a_crash() {
    let tmp = temp_dir();
    let dir = tmp.path().join("pg");
    let pg = EmbeddedPostgres::start(&dir).await.expect("first start");
    psql(&pg, "create table kept (id int)").unwrap();
    let bin_dir = pg.bin_dir().to_owned();
    pg.stop().await.expect("stop");

    // A crash leaves the server running with nobody holding the folder:
    // start one by hand, as the tools would.
    let data = dir.join("data");
    pg_ctl(
        &bin_dir,
        &data,
        &["start", "-w", "-s", "-l"],
        Some(&dir.join("manual.log")),
    );
    assert!(data.join("postmaster.pid").exists());
    let pg = EmbeddedPostgres::start(&dir)
        .await
        .expect("start over a leftover server");
    psql(&pg, "select count(*) from kept").unwrap();
    pg.stop().await.expect("stop");

    // A postmaster.pid whose pid went to another process of the same user.
    let mut sleeper = sleep_as_server_user();
    let pid_file = format!(
        "{}\n{}\n1700000000\n{}\n\n127.0.0.1\n  1234567         0\nready   \n",
        sleeper.id(),
        data.display(),
        50000
    );
    fs::write(data.join("postmaster.pid"), pid_file).unwrap();
    let started = EmbeddedPostgres::start(&dir).await;
    sleeper.kill().ok();
    sleeper.wait().ok();
    let pg = started.expect("start over a stale postmaster.pid");
    psql(&pg, "select count(*) from kept").unwrap();
    pg.stop().await.expect("stop");
}

fn server_user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres").unwrap().unwrap();
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

fn as_server_user(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = server_user() {
        cmd.uid(uid).gid(gid).current_dir("/");
    }
    cmd
}

fn pg_ctl(bin_dir: &Path, data: &Path, args: &[&str], log: Option<&Path>) {
    if let (Some(log), Some((uid, gid))) = (log, server_user()) {
        fs::write(log, "").unwrap();
        std::os::unix::fs::chown(log, Some(uid), Some(gid)).unwrap();
    }
    let mut cmd = Command::new(bin_dir.join("pg_ctl"));
    as_server_user(&mut cmd).arg("-D").arg(data).args(args);
    if let Some(log) = log {
        cmd.arg(log);
    }
    let status = cmd.status().expect("run pg_ctl");
    assert!(status.success(), "pg_ctl {args:?}: {status}");
}

fn sleep_as_server_user() -> std::process::Child {
    let mut cmd = Command::new("sleep");
    as_server_user(&mut cmd)
        .arg("60")
        .spawn()
        .expect("spawn sleep")
}

#[tokio::test]
async fn as_root_refuses_a_folder_postgres_cannot_reach() {
    if !is_root() {
        eprintln!("not root: nothing to check");
        return;
    }
    let tmp = tempfile::tempdir().unwrap(); // owned by root
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let err = EmbeddedPostgres::start(&tmp.path().join("pg"))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("cannot reach"), "{msg}");
    assert!(msg.contains("DATABASE_URL"), "{msg}");
}
