//! The checked-in `schema/openapi.json` is the document the code generates,
//! so a change to the API's contract shows up as a diff in review.
//!
//! After a deliberate change, regenerate it:
//! `UPDATE_SCHEMA=1 cargo test -p engine --test openapi`.

use std::path::PathBuf;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/openapi.json")
}

#[test]
fn the_checked_in_document_is_current() {
    let generated = format!("{}\n", engine::app::openapi_json());
    let path = checked_in();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write schema/openapi.json");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != generated {
        let first_difference = current
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| {
                format!(
                    "first difference at line {}:\n  checked in: {a}\n  generated:  {b}",
                    i + 1
                )
            })
            .unwrap_or_else(|| "one is a prefix of the other".into());
        panic!(
            "schema/openapi.json differs from the generated OpenAPI document ({first_difference}).\n\
             If the API change is intended, regenerate it with \
             `UPDATE_SCHEMA=1 cargo test -p engine --test openapi` and commit the diff."
        );
    }
}

#[test]
fn every_command_is_documented_and_secured() {
    let doc: serde_json::Value = serde_json::from_str(&engine::app::openapi_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/role",
        "/api/v1/flights",
        "/api/v1/flights/{id}/fares",
        "/api/v1/flights/{id}/reschedule",
        "/api/v1/flights/{id}/cancel",
        "/api/v1/bookings",
        "/api/v1/bookings/{id}/cancel",
        "/api/v1/bookings/{id}/passengers/{passenger_id}",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    // Operation ids are unique.
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operation ids: {ids:?}");
    // Error answers are problem documents.
    let not_found = &paths["/api/v1/bookings/{id}/cancel"]["post"]["responses"]["404"];
    assert_eq!(
        not_found["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
}
