//! `booking audit ...` against a real database, as an auditor with
//! database access and no running engine would use it: an untouched log
//! verifies, exports and digests; after a payload is changed behind the
//! engine's back, `verify` and `digest verify` of a digest saved before
//! both name it and exit 1.

use std::process::{Command, Output};

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use test_support::{database_url, spawn};

fn audit(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_booking"))
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .arg("audit")
        .args(args)
        .output()
        .expect("run booking audit")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[sqlx::test(migrator = "engine::migrations::MIGRATOR")]
async fn the_cli_verifies_exports_digests_and_names_tampering(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.clone())
        .await
        .unwrap();
    let app = spawn(pool.clone()).await;
    let flight = app.flight().await;
    let (_, token) = app.customer().await;
    let booked = app.book_id(&token, flight, &["10A"]).await;
    app.book_id(&token, flight, &["10B"]).await;
    let url = database_url(&options);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&pool)
        .await
        .unwrap();

    let out = audit(&url, &["verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["events_checked"], total);

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("log.ndjson");
    let out = audit(&url, &["export", "--out", export.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count() as i64, total);

    let stream = format!("booking-{booked}");
    let out = audit(&url, &["state", &stream, "--as-of", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["state"]["status"], "HELD");

    let out = audit(&url, &["digest"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = json_of(&out);
    assert_eq!(digest["events"], total);
    let saved = dir.path().join("digest.json");
    std::fs::write(&saved, &out.stdout).unwrap();
    let out = audit(&url, &["digest", "verify", saved.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["ok"], true);

    sqlx::query(
        "UPDATE es_events SET data = jsonb_set(data, '{total,amount}', '\"1.00\"') \
         WHERE stream_id = $1 AND version = 1",
    )
    .bind(&stream)
    .execute(&pool)
    .await
    .unwrap();

    let out = audit(&url, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(&out);
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad"]["stream_id"], stream.as_str());
    let out = audit(&url, &["verify", "--stream", &stream]);
    assert_eq!(out.status.code(), Some(1));
    let out = audit(&url, &["digest", "verify", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let check = json_of(&out);
    assert_eq!(check["ok"], false);
    assert_eq!(
        check["first_difference"]["event"]["stream_id"],
        stream.as_str()
    );

    // Every CLI read was recorded.
    let reads: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_reads WHERE actor LIKE 'cli:%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(reads, 8);
}
