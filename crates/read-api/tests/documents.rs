//! The e-ticket and invoice PDFs, read back as text with poppler's
//! `pdftotext` (a real PDF reader), and who may download them.

use std::time::Duration;

use domain::booking::BookingStatus;
use domain::values::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn_with, Options, TestApp, CARD_OK};

/// The text of a PDF, as `pdftotext -layout` reads it.
fn pdf_text(bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("booking-pdf-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("document.pdf");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed; .ci/run installs it");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "pdftotext failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Books `body` for `token`'s customer, pays and waits for the tickets and
/// the read models: the booking's id, its PNR and the booking as logged.
async fn ticketed(
    app: &TestApp,
    token: &str,
    body: Value,
) -> (uuid::Uuid, String, domain::booking::Booking) {
    let r = app.post("/bookings", Some(token), body).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let booked: Value = r.json().await.unwrap();
    let booking: uuid::Uuid = booked["booking_id"].as_str().unwrap().parse().unwrap();
    let pnr = booked["pnr"].as_str().unwrap().to_owned();
    app.pay(token, booking, CARD_OK).await;
    let b = app
        .wait_for(booking, BookingStatus::Ticketed, Duration::from_secs(15))
        .await;
    app.catch_up().await;
    (booking, pnr, b)
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_ticketed_familys_e_ticket_and_invoice_read_as_they_should(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let (_, token) = app.customer().await;
    let (_, stranger) = app.customer().await;
    let flight = app.flight().await;
    let person = |first: &str, extra: Value| {
        let mut p =
            json!({"first_name": first, "last_name": "Lovelace", "date_of_birth": "2019-12-10"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let family = json!({"flight_id": flight, "passengers": [
        person("Ada", json!({"seat": "12A"})),
        person("Byron", json!({"seat": "12B", "type": "child"})),
        person("Annabella", json!({"type": "infant", "travels_with": 0}))]});
    let (booking, pnr, b) = ticketed(&app, &token, family).await;

    let r = get(
        &app,
        &format!("/bookings/{booking}/tickets.pdf"),
        Some(&token),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let text = pdf_text(&r.bytes().await.unwrap());
    for expected in [
        pnr.as_str(),
        "TICKETED",
        "BA117",
        "LHR to JFK",
        "Ada Lovelace",
        "Byron Lovelace",
        "Annabella Lovelace",
        "seat 12A",
        "seat 12B",
        "on the lap of 12A",
        "infant",
    ] {
        assert!(text.contains(expected), "{expected:?} is not in:\n{text}");
    }
    for p in &b.passengers {
        let number = p.ticket_number.as_ref().unwrap().to_string();
        assert!(text.contains(&number), "ticket {number} is not in:\n{text}");
    }

    let number = format!("INV-{pnr}");
    let r = get(&app, &format!("/invoices/{number}.pdf"), Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let text = pdf_text(&r.bytes().await.unwrap());
    for expected in [
        format!("Invoice {number}"),
        pnr.clone(),
        "Adult fare, economy seat 12A".into(),
        "Child fare, economy seat 12B".into(),
        "Infant fare, economy, on the lap of seat 12A".into(),
        "420.00 USD".into(),
        "315.00 USD".into(),
        "42.00 USD".into(),
        "Tax".into(),
        "777.00 USD".into(),
    ] {
        assert!(text.contains(&expected), "{expected:?} is not in:\n{text}");
    }

    // Who may read them: the customer, agents, admins, auditors.
    let (_, auditor) = app.token(Role::Auditor);
    let r = get(&app, &format!("/invoices/{number}.pdf"), Some(&auditor)).await;
    assert_eq!(r.status(), StatusCode::OK);
    for (who, status, code) in [
        (Some(stranger.as_str()), StatusCode::FORBIDDEN, "FORBIDDEN"),
        (
            Some(app.token(Role::Analyst).1.as_str()),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
        (None, StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        (
            Some("forged.token.here"),
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
        ),
    ] {
        let r = get(&app, &format!("/bookings/{booking}/tickets.pdf"), who).await;
        problem(r, status, code).await;
        let r = get(&app, &format!("/invoices/{number}.pdf"), who).await;
        problem(r, status, code).await;
    }
    let unknown = uuid::Uuid::now_v7();
    let r = get(
        &app,
        &format!("/bookings/{unknown}/tickets.pdf"),
        Some(&token),
    )
    .await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let r = get(&app, "/invoices/INV-NOSUCH.pdf", Some(&token)).await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let r = get(&app, &format!("/invoices/{number}"), Some(&token)).await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_itinerarys_e_ticket_and_invoice_show_every_flight(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas()).await;
    let (_, token) = app.customer().await;
    let (first, second) = app.trip(chrono::Duration::hours(2)).await;
    let trip = json!({"flights": [first, second], "passengers": [
        {"first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10",
         "seat": {first.to_string(): "12A", second.to_string(): "14C"}}]});
    let (booking, pnr, b) = ticketed(&app, &token, trip).await;

    let r = get(
        &app,
        &format!("/bookings/{booking}/tickets.pdf"),
        Some(&token),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = pdf_text(&r.bytes().await.unwrap());
    let ada = &b.passengers[0];
    for expected in [
        "Flight 1 of 2: BA117".to_owned(),
        "LHR to JFK".into(),
        "Flight 2 of 2: BA1511".into(),
        "JFK to BOS".into(),
        "seat 12A - flight BA117".into(),
        "seat 14C - flight BA1511".into(),
        ada.ticket_number.as_ref().unwrap().to_string(),
        ada.legs[0].ticket_number.as_ref().unwrap().to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} is not in:\n{text}");
    }

    let r = get(&app, &format!("/invoices/INV-{pnr}.pdf"), Some(&token)).await;
    let text = pdf_text(&r.bytes().await.unwrap());
    for expected in [
        "Adult fare, economy seat 12A, flight 1 of 2",
        "Adult fare, economy seat 14C, flight 2 of 2",
        "570.00 USD",
    ] {
        assert!(text.contains(expected), "{expected:?} is not in:\n{text}");
    }
}
