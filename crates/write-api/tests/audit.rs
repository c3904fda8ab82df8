//! `/audit`: the auditor's reads, black-box over HTTP. Who may read; a
//! stream with its metadata, hashes and opened (or erased) personal data;
//! state as of a moment; the global log as pages and as NDJSON; and every
//! way of tampering with the database directly named by verify and by a
//! digest taken before.

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{spawn, TestApp};
use uuid::Uuid;

/// GET as `token`, expecting `status`; the JSON answer.
async fn get(app: &TestApp, path: &str, token: Option<&str>, status: StatusCode) -> Value {
    let r = app.send(Method::GET, path, token, None).await;
    let got = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let r = app.post(path, Some(token), body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "POST {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A log to audit: a flight, three bookings of one customer (one
/// cancelled). Returns (customer id, customer token, flight, bookings).
async fn a_log(app: &TestApp) -> (Uuid, String, Uuid, Vec<Uuid>) {
    let flight = app.flight().await;
    let (customer, token) = app.customer().await;
    let mut bookings = Vec::new();
    for seat in ["10A", "10B", "10C"] {
        bookings.push(app.book_id(&token, flight, &[seat]).await);
    }
    let r = app
        .post(
            &format!("/bookings/{}/cancel", bookings[2]),
            Some(&token),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    (customer, token, flight, bookings)
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn only_auditors_and_admins_read_the_audit_log(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, _, _, bookings) = a_log(&app).await;
    let stream = format!("booking-{}", bookings[0]);
    let routes = [
        format!("/audit/streams/{stream}"),
        format!("/audit/streams/{stream}/state"),
        "/audit/events".to_string(),
        "/audit/verify".to_string(),
        "/audit/digest".to_string(),
    ];
    for role in ["customer", "agent", "analyst"] {
        let (_, token) = app.user(role).await;
        for path in &routes {
            get(&app, path, Some(&token), StatusCode::FORBIDDEN).await;
        }
        get(&app, "/audit/reads", Some(&token), StatusCode::FORBIDDEN).await;
    }
    for path in &routes {
        get(&app, path, None, StatusCode::UNAUTHORIZED).await;
    }
    let (auditor_id, auditor) = app.user("auditor").await;
    let admin = app.admin_token().await;
    for token in [&auditor, &admin] {
        for path in &routes {
            get(&app, path, Some(token), StatusCode::OK).await;
        }
    }
    // The key is public.
    let key = get(&app, "/audit/public-key", None, StatusCode::OK).await;
    assert_eq!(key["algorithm"], "Ed25519");
    assert_eq!(key["public_key"].as_str().unwrap().len(), 64);

    // Audited auditors: every read is recorded, and only admins see them.
    get(&app, "/audit/reads", Some(&auditor), StatusCode::FORBIDDEN).await;
    let reads = get(
        &app,
        "/audit/reads?limit=1000",
        Some(&admin),
        StatusCode::OK,
    )
    .await;
    let reads = reads["reads"].as_array().unwrap();
    let by_auditor: Vec<&Value> = reads
        .iter()
        .filter(|r| r["actor"] == format!("user:{auditor_id}"))
        .collect();
    assert_eq!(by_auditor.len(), routes.len(), "{reads:?}");
    assert!(by_auditor
        .iter()
        .any(|r| r["action"] == "stream" && r["target"] == stream.as_str()));
    assert!(by_auditor.iter().all(|r| r["role"] == "auditor"));

    // Auditors read, never write: every command refuses them.
    let r = app
        .post(
            &format!("/bookings/{}/cancel", bookings[0]),
            Some(&auditor),
            json!({"reason": "audit"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .post(
            "/flights",
            Some(&auditor),
            test_support::flight_body(chrono::Duration::days(30)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_stream_shows_every_event_with_metadata_hashes_and_personal_data(pool: PgPool) {
    let app = spawn(pool).await;
    let (customer, token, _, bookings) = a_log(&app).await;
    let (_, auditor) = app.user("auditor").await;
    let stream = format!("booking-{}", bookings[2]);
    let body = get(
        &app,
        &format!("/audit/streams/{stream}"),
        Some(&auditor),
        StatusCode::OK,
    )
    .await;
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{body}");
    let created = &events[0];
    assert_eq!(created["type"], "BookingCreated");
    assert_eq!(created["stream_version"], 1);
    assert_eq!(created["actor"]["id"], customer.to_string());
    for field in [
        "event_id",
        "position",
        "recorded_at",
        "correlation_id",
        "schema_version",
    ] {
        assert!(!created[field].is_null(), "{field} in {created}");
    }
    assert_eq!(created["prev_hash"], "0".repeat(64));
    assert_eq!(events[1]["prev_hash"], created["hash"]);
    assert_eq!(events[1]["type"], "BookingCancelled");
    assert!(
        created.to_string().contains("Lovelace0"),
        "opened for auditors: {created}"
    );

    // A version range.
    let body = get(
        &app,
        &format!("/audit/streams/{stream}?from_version=2&to_version=2"),
        Some(&auditor),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    // Versions outside what the schema allows (1 to 2^63-1) are refused.
    for bad in ["from_version=0", "to_version=9223372036854775808"] {
        get(
            &app,
            &format!("/audit/streams/{stream}?{bad}"),
            Some(&auditor),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    get(
        &app,
        "/audit/streams/booking-00000000-0000-0000-0000-000000000000",
        Some(&auditor),
        StatusCode::NOT_FOUND,
    )
    .await;
    get(
        &app,
        "/audit/streams/not%20a%20stream",
        Some(&auditor),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Erased: the personal fields read as erased, and the log still verifies.
    let r = app
        .send(
            Method::DELETE,
            &format!("/users/{customer}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let body = get(
        &app,
        &format!("/audit/streams/{stream}"),
        Some(&auditor),
        StatusCode::OK,
    )
    .await;
    let created = &body["events"][0];
    assert!(!created.to_string().contains("Lovelace0"), "{created}");
    assert_eq!(created["data"]["personal"], "erased", "{created}");
    let report = get(&app, "/audit/verify", Some(&auditor), StatusCode::OK).await;
    assert_eq!(report["ok"], true, "{report}");
    let user = get(
        &app,
        &format!("/audit/streams/user-{customer}/state"),
        Some(&auditor),
        StatusCode::OK,
    )
    .await;
    assert!(
        user["state"].to_string().contains("erased") || user["state"]["status"] == "ERASED",
        "{user}"
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn state_as_of_a_moment_before_and_after_a_cancellation(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.customer().await;
    let booking = app.book_id(&token, flight, &["11A"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let before = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let r = app
        .post(
            &format!("/bookings/{booking}/cancel"),
            Some(&token),
            json!({"reason": "ill"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (_, auditor) = app.user("auditor").await;
    let path = format!("/audit/streams/booking-{booking}/state");

    let at = |q: String| {
        let (app, auditor, path) = (&app, &auditor, &path);
        async move { get(app, &format!("{path}{q}"), Some(auditor), StatusCode::OK).await }
    };
    let then = at(format!("?as_of={}", urlencode(&before.to_rfc3339()))).await;
    assert_eq!(then["state"]["status"], "HELD", "{then}");
    assert_eq!(then["version"], 1);
    assert_eq!(then["current_version"], 2);
    let now = at(String::new()).await;
    assert_eq!(now["state"]["status"], "CANCELLED", "{now}");
    assert_eq!(now["version"], 2);
    // By version, and by the position the first event stands at.
    let v1 = at("?as_of=1".into()).await;
    assert_eq!(v1["state"]["status"], "HELD");
    let p1 = at(format!("?as_of={}", then["position"].as_str().unwrap())).await;
    assert_eq!(p1["state"]["status"], "HELD");
    assert_eq!(p1["version"], 1);
    // The seat inventory folds too.
    let seats = get(
        &app,
        &format!("/audit/streams/seats-{flight}/state"),
        Some(&auditor),
        StatusCode::OK,
    )
    .await;
    assert_eq!(seats["category"], "seats");
    get(
        &app,
        &format!("{path}?as_of=yesterday"),
        Some(&auditor),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn the_global_log_pages_and_exports_as_ndjson(pool: PgPool) {
    let app = spawn(pool).await;
    a_log(&app).await;
    let (_, auditor) = app.user("auditor").await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // Pages of 3 with the next cursor: every event once, in order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/audit/events?limit=3&after={a}"),
            None => "/audit/events?limit=3".into(),
        };
        let page = get(&app, &path, Some(&auditor), StatusCode::OK).await;
        for e in page["events"].as_array().unwrap() {
            seen.push(e["event_id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len() as i64, total);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    // Filters.
    let bookings = get(
        &app,
        "/audit/events?category=booking&limit=1000",
        Some(&auditor),
        StatusCode::OK,
    )
    .await;
    let bookings = bookings["events"].as_array().unwrap();
    assert_eq!(bookings.len(), 4, "3 created, 1 cancelled");
    assert!(bookings
        .iter()
        .all(|e| e["stream_id"].as_str().unwrap().starts_with("booking-")));
    get(
        &app,
        "/audit/events?after=nope",
        Some(&auditor),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // NDJSON: the whole log, one envelope per line.
    let r = app
        .client
        .get(app.url("/audit/events"))
        .bearer_auth(&auditor)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as i64, total);
    for field in [
        "event_id",
        "type",
        "version",
        "stream_id",
        "stream_version",
        "position",
        "recorded_at",
        "correlation_id",
        "data",
        "hash",
        "prev_hash",
    ] {
        assert!(lines.iter().all(|l| l.get(field).is_some()), "{field}");
    }
    let ids: Vec<String> = lines
        .iter()
        .map(|l| l["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, seen, "the export is in log order");
    // Stored form: personal data stays sealed in an export.
    assert!(!text.contains("Lovelace0"));
}

/// A digest covering every event written so far: a digest stops before
/// the oldest transaction still running, so one taken while another
/// commits may cover fewer.
async fn whole_digest(app: &TestApp, token: &str) -> Value {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for _ in 0..100 {
        let digest = get(app, "/audit/digest", Some(token), StatusCode::OK).await;
        if digest["events"].as_i64() == Some(total) {
            return digest;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no digest covered all {total} events");
}

/// One way of rewriting the log behind the engine's back.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    Payload,
    Metadata,
    DeleteMiddle,
    DeleteNewest,
    Swap,
    Forge,
}

/// Builds a log, saves a digest, tampers, and checks that verify and the
/// digest both name it. Returns (verify report, digest check).
async fn tampered(pool: PgPool, how: Tamper) -> (Value, Value, String) {
    let app = spawn(pool).await;
    let (_, _, flight, bookings) = a_log(&app).await;
    let (_, auditor) = app.user("auditor").await;
    let clean = get(&app, "/audit/verify", Some(&auditor), StatusCode::OK).await;
    assert_eq!(clean["ok"], true, "{clean}");
    let digest = whole_digest(&app, &auditor).await;
    let check = post(&app, "/audit/digest/verify", &auditor, digest.clone()).await;
    assert_eq!(check["ok"], true, "an untouched log verifies: {check}");

    let booking = format!("booking-{}", bookings[0]);
    let seats = format!("seats-{flight}");
    let seats_version: i64 =
        sqlx::query_scalar("SELECT max(version) FROM es_events WHERE stream_id = $1")
            .bind(&seats)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(seats_version >= 4, "{seats_version}");
    let (sql, named): (String, String) = match how {
        Tamper::Payload => (
            format!("UPDATE es_events SET data = jsonb_set(data, '{{total,amount}}', '\"1.00\"') WHERE stream_id = '{booking}' AND version = 1"),
            booking.clone(),
        ),
        Tamper::Metadata => (
            format!("UPDATE es_events SET metadata = jsonb_set(metadata, '{{actor,id}}', '\"someone-else\"') WHERE stream_id = '{booking}' AND version = 1"),
            booking.clone(),
        ),
        Tamper::DeleteMiddle => (
            format!("DELETE FROM es_events WHERE stream_id = '{seats}' AND version = 2"),
            seats.clone(),
        ),
        Tamper::DeleteNewest => (
            format!("DELETE FROM es_events WHERE stream_id = '{seats}' AND version = {seats_version}"),
            seats.clone(),
        ),
        Tamper::Swap => (
            format!(
                "UPDATE es_events SET version = 1000000 WHERE stream_id = '{seats}' AND version = 2; \
                 UPDATE es_events SET version = 2 WHERE stream_id = '{seats}' AND version = 3; \
                 UPDATE es_events SET version = 3 WHERE stream_id = '{seats}' AND version = 1000000"
            ),
            seats.clone(),
        ),
        Tamper::Forge => {
            let forged = format!("booking-{}", Uuid::now_v7());
            (
                format!(
                    "INSERT INTO es_events (tx, position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash) \
                     SELECT tx, position + 1000000, '{forged}', 1, gen_random_uuid(), 'BookingCreated', 1, '{{}}', metadata, recorded_at, prev_hash, sha256('forged') \
                     FROM es_events WHERE stream_id = '{booking}' AND version = 1"
                ),
                forged,
            )
        }
    };
    sqlx::raw_sql(&sql).execute(&app.pool).await.unwrap();

    let report = get(&app, "/audit/verify", Some(&auditor), StatusCode::OK).await;
    assert_eq!(report["ok"], false, "{how:?}: {report}");
    assert_eq!(
        report["first_bad"]["stream_id"],
        named.as_str(),
        "{how:?}: {report}"
    );
    let one = get(
        &app,
        &format!("/audit/verify?stream_id={named}"),
        Some(&auditor),
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["ok"], false, "{how:?}: {one}");
    let check = post(&app, "/audit/digest/verify", &auditor, digest).await;
    assert_eq!(check["ok"], false, "{how:?}: {check}");
    assert_eq!(check["signature_valid"], true);
    assert!(check["first_difference"].is_object(), "{how:?}: {check}");
    (report, check, named)
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_changed_payload_is_named(pool: PgPool) {
    let (report, check, named) = tampered(pool, Tamper::Payload).await;
    assert_eq!(report["first_bad"]["version"], 1);
    assert!(report["first_bad"]["reason"]
        .as_str()
        .unwrap()
        .contains("altered"));
    assert_eq!(
        check["first_difference"]["event"]["stream_id"],
        named.as_str(),
        "{check}"
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn changed_metadata_is_named(pool: PgPool) {
    let (report, check, named) = tampered(pool, Tamper::Metadata).await;
    assert_eq!(report["first_bad"]["version"], 1);
    assert_eq!(
        check["first_difference"]["event"]["stream_id"],
        named.as_str(),
        "{check}"
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_deleted_middle_event_is_named(pool: PgPool) {
    let (report, check, _) = tampered(pool, Tamper::DeleteMiddle).await;
    assert_eq!(report["first_bad"]["version"], 3, "{report}");
    assert!(report["first_bad"]["reason"]
        .as_str()
        .unwrap()
        .contains("missing"));
    assert!(
        check["first_difference"]["reason"]
            .as_str()
            .unwrap()
            .contains("removed"),
        "{check}"
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_deleted_newest_event_is_named(pool: PgPool) {
    let (report, check, _) = tampered(pool, Tamper::DeleteNewest).await;
    assert!(
        report["first_bad"]["reason"]
            .as_str()
            .unwrap()
            .contains("head"),
        "{report}"
    );
    assert!(
        check["first_difference"]["reason"]
            .as_str()
            .unwrap()
            .contains("removed"),
        "{check}"
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn swapped_events_are_named(pool: PgPool) {
    let (report, check, named) = tampered(pool, Tamper::Swap).await;
    assert_eq!(report["first_bad"]["version"], 2, "{report}");
    assert_eq!(
        check["first_difference"]["event"]["stream_id"],
        named.as_str(),
        "{check}"
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_forged_event_is_named(pool: PgPool) {
    let (_, check, _) = tampered(pool, Tamper::Forge).await;
    assert!(
        check["first_difference"]["reason"]
            .as_str()
            .unwrap()
            .contains("inserted"),
        "{check}"
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_saved_digest_still_verifies_once_the_log_grows(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, token, flight, _) = a_log(&app).await;
    let (_, auditor) = app.user("auditor").await;
    let last_month = whole_digest(&app, &auditor).await;
    app.book_id(&token, flight, &["12A"]).await;
    let this_month = whole_digest(&app, &auditor).await;
    assert!(this_month["events"].as_u64() > last_month["events"].as_u64());
    for d in [&last_month, &this_month] {
        let check = post(&app, "/audit/digest/verify", &auditor, d.clone()).await;
        assert_eq!(check["ok"], true, "{check}");
    }
    // A digest edited after signing is caught by its signature.
    let mut edited = last_month.clone();
    edited["events"] = json!(last_month["events"].as_u64().unwrap() - 1);
    let check = post(&app, "/audit/digest/verify", &auditor, edited).await;
    assert_eq!(check["ok"], false);
    assert_eq!(check["signature_valid"], false);
    // Not a digest at all.
    let r = app
        .post(
            "/audit/digest/verify",
            Some(&auditor),
            json!({"events": "many"}),
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
}
