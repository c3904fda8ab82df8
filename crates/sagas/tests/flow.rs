//! The fulfilment saga end to end: REST commands in, saga workers running,
//! the event log and the simulated provider's books checked afterwards.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::booking::BookingStatus;
use domain::payment::PaymentStatus;
use domain::seats::SeatStatus;
use gateway::{
    Card, CardToken, ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundReceipt,
    RefundRequest, SimulatedGateway,
};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use sagas::tickets::{IssueError, TicketIssuer, TicketRequest};
use serde_json::json;
use sqlx::PgPool;
use std::sync::atomic::AtomicBool;
use test_support::*;

const WAIT: Duration = Duration::from_secs(15);

/// The engine with saga workers.
async fn spawn(pool: PgPool) -> TestApp {
    spawn_with(pool, Options::with_sagas()).await
}

/// A gateway that fails transiently while `down` is set.
struct Flaky {
    inner: SimulatedGateway,
    down: AtomicBool,
}

#[async_trait]
impl PaymentGateway for Flaky {
    async fn tokenize(&self, card: &Card) -> Result<CardToken, GatewayError> {
        self.inner.tokenize(card).await
    }
    async fn charge(&self, r: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(GatewayError::Transient("provider down".into()));
        }
        self.inner.charge(r).await
    }
    async fn refund(&self, r: &RefundRequest) -> Result<RefundReceipt, GatewayError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(GatewayError::Transient("provider down".into()));
        }
        self.inner.refund(r).await
    }
}

/// An issuer that refuses every booking.
struct RefusingIssuer;

#[async_trait]
impl TicketIssuer for RefusingIssuer {
    async fn issue(
        &self,
        _: &TicketRequest,
    ) -> Result<Vec<domain::values::TicketNumber>, IssueError> {
        Err(IssueError::Refused("no ticket stock".into()))
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_paid_booking_is_charged_once_confirmed_ticketed_and_invoiced(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, token) = app.user("customer").await;
    let flight = app.flight().await;
    let booking = app.book_id(&token, flight, &["12A", "economy"]).await;

    let r = app.pay(&token, booking, CARD_OK).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "PAYMENT_PENDING");
    assert!(body["position"].is_string());
    assert_eq!(body["card_last4"], "4242");

    let b = app.wait_for(booking, BookingStatus::Ticketed, WAIT).await;
    assert_eq!(app.saga_status(booking).await.as_deref(), Some("COMPLETED"));
    // One 13-digit ticket per passenger, all different.
    let tickets: Vec<String> = b
        .passengers
        .iter()
        .map(|p| p.ticket_number.clone().expect("ticketed").to_string())
        .collect();
    assert_eq!(tickets.len(), 2);
    assert!(tickets
        .iter()
        .all(|t| t.len() == 13 && t.chars().all(|c| c.is_ascii_digit())));
    assert_ne!(tickets[0], tickets[1]);
    // Seats sold to this booking.
    let seats = app.seats(flight).await;
    for s in b.seats() {
        let state = seats.status_at(s, chrono::Utc::now()).unwrap();
        assert_eq!(state.status(), SeatStatus::Sold);
        assert_eq!(state.booking_id(), Some(booking));
    }
    // Captured once, invoiced for the total, nothing refunded.
    let p = app.payment_of(booking).await.unwrap();
    assert_eq!(p.status, Some(PaymentStatus::Captured));
    let invoice = p.invoice.as_ref().expect("invoiced");
    assert_eq!(invoice.total.amount(), dec("840.00"));
    assert_eq!(invoice.lines.len(), 2);
    let payment_id = p.requested.as_ref().unwrap().payment_id;
    assert_eq!(app.provider_books(payment_id).await, (1, Decimal::ZERO));
    // The card number is nowhere in the log.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM es_events WHERE data::text LIKE '%4242424242424242%' \
            OR metadata::text LIKE '%4242424242424242%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_declined_card_fails_the_payment_and_releases_the_seats(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, token) = app.user("customer").await;
    let flight = app.flight().await;
    for (card, reason) in [
        (CARD_DECLINED, "declined"),
        (CARD_NO_FUNDS, "insufficient funds"),
    ] {
        let booking = app.book_id(&token, flight, &["12A"]).await;
        assert_eq!(
            app.pay(&token, booking, card).await.status(),
            StatusCode::ACCEPTED
        );
        let b = app
            .wait_for(booking, BookingStatus::PaymentFailed, WAIT)
            .await;
        assert!(
            b.reason.as_deref().unwrap().contains(reason),
            "{:?}",
            b.reason
        );
        assert_eq!(
            app.saga_status(booking).await.as_deref(),
            Some("COMPENSATED")
        );
        let p = app.payment_of(booking).await.unwrap();
        assert_eq!(p.status, Some(PaymentStatus::Declined));
        let payment_id = p.requested.as_ref().unwrap().payment_id;
        assert_eq!(app.provider_books(payment_id).await.0, 0);
        // 12A is free again: the next round books it.
        assert!(app
            .seats(flight)
            .await
            .is_available("12A".parse().unwrap(), chrono::Utc::now()));
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_transient_failure_is_retried_and_charged_once(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, token) = app.user("customer").await;
    let flight = app.flight().await;
    let booking = app.book_id(&token, flight, &["economy"]).await;
    assert_eq!(
        app.pay(&token, booking, CARD_TRANSIENT).await.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for(booking, BookingStatus::Ticketed, WAIT).await;
    let p = app.payment_of(booking).await.unwrap();
    let payment_id = p.requested.as_ref().unwrap().payment_id;
    assert_eq!(app.provider_books(payment_id).await, (1, Decimal::ZERO));
    let attempts: i32 = sqlx::query_scalar(
        "SELECT attempts FROM gateway_sim_charges WHERE merchant_reference = $1",
    )
    .bind(payment_id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(attempts, 3, "two transient failures, then the capture");
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn bad_cards_and_wrong_states_are_refused_and_change_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, token) = app.user("customer").await;
    let (_, other) = app.user("customer").await;
    let flight = app.flight().await;
    let booking = app.book_id(&token, flight, &["12A"]).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let body = problem(
        app.pay(&token, booking, "4242424242424241").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "card_number");
    let r = app
        .post(
            &format!("/bookings/{booking}/payment"),
            Some(&token),
            json!({"card_number": CARD_OK, "expiry_month": 13, "expiry_year": 2020, "cvc": "1", "holder": " "}),
        )
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");
    let r = app
        .post(
            &format!("/bookings/{booking}/payment"),
            Some(&token),
            json!({"card_number": 4242}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    problem(
        app.pay(&other, booking, CARD_OK).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        app.pay(&token, uuid::Uuid::now_v7(), CARD_OK).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "refused payments append nothing");
    let cards: i64 = sqlx::query_scalar("SELECT count(*) FROM gateway_sim_cards")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(cards, 0, "refused before the card went to the provider");

    // Paying twice.
    assert_eq!(
        app.pay(&token, booking, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    problem(
        app.pay(&token, booking, CARD_OK).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
    app.wait_for(booking, BookingStatus::Ticketed, WAIT).await;
    problem(
        app.pay(&token, booking, CARD_OK).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;

    // A failed, and a cancelled booking.
    let failed = app.book_id(&token, flight, &["14A"]).await;
    app.pay(&token, failed, CARD_DECLINED).await;
    app.wait_for(failed, BookingStatus::PaymentFailed, WAIT)
        .await;
    problem(
        app.pay(&token, failed, CARD_OK).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
    let cancelled = app.book_id(&token, flight, &["15A"]).await;
    let r = app
        .post(
            &format!("/bookings/{cancelled}/cancel"),
            Some(&token),
            json!({"reason": "changed plans"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    problem(
        app.pay(&token, cancelled, CARD_OK).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_unpaid_hold_expires_once_and_frees_its_seats(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas().hold_ttl(Duration::from_secs(1))).await;
    let (_, token) = app.user("customer").await;
    let flight = app.flight().await;
    let booking = app.book_id(&token, flight, &["12A", "12B"]).await;
    app.wait_for(booking, BookingStatus::Expired, WAIT).await;
    assert_eq!(
        app.saga_status(booking).await.as_deref(),
        Some("COMPENSATED")
    );
    problem(
        app.pay(&token, booking, CARD_OK).await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
    // The expiry is recorded once on the booking and once on the seats.
    let expiries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM es_events WHERE event_type IN ('BookingExpired', 'HoldExpired')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(expiries, 2);
    let seats = app.seats(flight).await;
    assert!(seats.is_available("12A".parse().unwrap(), chrono::Utc::now()));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_capture_after_the_hold_expired_is_refunded_in_full(pool: PgPool) {
    // The provider answers after the hold is gone.
    let gateway =
        Arc::new(SimulatedGateway::new(pool.clone()).with_latency(Duration::from_millis(2500)));
    let app = spawn_with(
        pool,
        Options::with_sagas()
            .hold_ttl(Duration::from_secs(4))
            .gateway(gateway),
    )
    .await;
    let (_, token) = app.user("customer").await;
    let flight = app.flight().await;
    // Tokenizing takes 2.5 s too, so the charge starts at about 2.5 s, well
    // within the hold (a saga that only gets to it after 4 s expires the
    // booking before charging, and there is nothing to refund), and returns
    // after 5 s, when the hold is gone.
    let booking = app.book_id(&token, flight, &["12A"]).await;
    assert_eq!(
        app.pay(&token, booking, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    app.wait_for(booking, BookingStatus::Expired, WAIT).await;
    let p = app.payment_of(booking).await.unwrap();
    assert_eq!(p.status, Some(PaymentStatus::Refunded), "{p:?}");
    let payment_id = p.requested.as_ref().unwrap().payment_id;
    assert_eq!(app.provider_books(payment_id).await, (1, dec("420.00")));
    assert!(app
        .seats(flight)
        .await
        .is_available("12A".parse().unwrap(), chrono::Utc::now()));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_ticketing_failure_refunds_and_returns_the_seats(pool: PgPool) {
    let app = spawn_with(pool, Options::with_sagas().issuer(Arc::new(RefusingIssuer))).await;
    let (_, token) = app.user("customer").await;
    let flight = app.flight().await;
    let booking = app.book_id(&token, flight, &["12A"]).await;
    app.pay(&token, booking, CARD_OK).await;
    let b = app.wait_for(booking, BookingStatus::Failed, WAIT).await;
    assert!(b.reason.unwrap().contains("ticketing failed"));
    let p = app.payment_of(booking).await.unwrap();
    assert_eq!(p.status, Some(PaymentStatus::Refunded));
    let payment_id = p.requested.as_ref().unwrap().payment_id;
    assert_eq!(app.provider_books(payment_id).await, (1, dec("420.00")));
    assert!(app
        .seats(flight)
        .await
        .is_available("12A".parse().unwrap(), chrono::Utc::now()));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_cancelled_flight_cancels_and_fully_refunds_every_booking(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, token) = app.user("customer").await;
    // Departing in 2 hours: a customer would get 50 % back, the flight's
    // cancellation gives everything back.
    let flight = app.flight_departing(chrono::Duration::hours(2)).await;
    let held = app.book_id(&token, flight, &["12A"]).await;
    let ticketed = app.book_id(&token, flight, &["12B", "12C"]).await;
    app.pay(&token, ticketed, CARD_OK).await;
    app.wait_for(ticketed, BookingStatus::Ticketed, WAIT).await;
    let failed = app.book_id(&token, flight, &["12D"]).await;
    app.pay(&token, failed, CARD_DECLINED).await;
    app.wait_for(failed, BookingStatus::PaymentFailed, WAIT)
        .await;

    let admin = app.admin_token().await;
    let r = app
        .post(
            &format!("/flights/{flight}/cancel"),
            Some(&admin),
            json!({"reason": "strike"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_for(held, BookingStatus::Cancelled, WAIT).await;
    let p = app.wait_refunded(ticketed, "840.00", WAIT).await;
    app.wait_for(ticketed, BookingStatus::Cancelled, WAIT).await;
    assert_eq!(
        app.booking(failed).await.status,
        Some(BookingStatus::PaymentFailed)
    );
    assert_eq!(p.status, Some(PaymentStatus::Refunded));
    let payment_id = p.requested.as_ref().unwrap().payment_id;
    assert_eq!(app.provider_books(payment_id).await, (1, dec("840.00")));
    let seats = app.seats(flight).await;
    for s in ["12A", "12B", "12C", "12D"] {
        assert_eq!(
            seats
                .status_at(s.parse().unwrap(), chrono::Utc::now())
                .unwrap()
                .status(),
            SeatStatus::Available
        );
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_customer_cancellation_refunds_by_the_policy(pool: PgPool) {
    let app = spawn(pool).await;
    let (_, token) = app.user("customer").await;
    for (departs_in, refunded) in [
        (chrono::Duration::days(3), "420.00"),
        (chrono::Duration::hours(3), "210.00"),
    ] {
        let flight = app.flight_departing(departs_in).await;
        let booking = app.book_id(&token, flight, &["12A"]).await;
        app.pay(&token, booking, CARD_OK).await;
        app.wait_for(booking, BookingStatus::Ticketed, WAIT).await;
        let r = app
            .post(
                &format!("/bookings/{booking}/cancel"),
                Some(&token),
                json!({"reason": "changed plans"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let p = app.wait_refunded(booking, refunded, WAIT).await;
        app.wait_for(booking, BookingStatus::Cancelled, WAIT).await;
        let payment_id = p.requested.as_ref().unwrap().payment_id;
        assert_eq!(app.provider_books(payment_id).await, (1, dec(refunded)));
        assert!(app
            .seats(flight)
            .await
            .is_available("12A".parse().unwrap(), chrono::Utc::now()));
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_saga_that_keeps_failing_is_parked_and_an_admin_retries_it(pool: PgPool) {
    let flaky = Arc::new(Flaky {
        inner: SimulatedGateway::new(pool.clone()),
        down: true.into(),
    });
    let mut config = fast_sagas();
    config.max_attempts = 3;
    let app = spawn_with(
        pool,
        Options::with_sagas()
            .gateway(flaky.clone())
            .saga_config(config),
    )
    .await;
    let (_, token) = app.user("customer").await;
    let flight = app.flight().await;
    let booking = app.book_id(&token, flight, &["12A"]).await;
    assert_eq!(
        app.pay(&token, booking, CARD_OK).await.status(),
        StatusCode::ACCEPTED
    );
    let saga_id = sagas::store::fulfilment_id(booking);
    let deadline = tokio::time::Instant::now() + WAIT;
    let row = loop {
        // The inbox creates the saga's row asynchronously: until it has
        // read the booking's events there may be no row at all.
        let row = sagas::store::get(&app.pool, saga_id).await.unwrap();
        if let Some(row) = row.as_ref().filter(|r| r.status.as_str() == "PARKED") {
            break row.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not parked: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.attempts, 3);
    assert!(row.last_error.unwrap().contains("provider down"));
    assert_eq!(row.step.as_str(), "CHARGING");
    assert_eq!(
        app.booking(booking).await.status,
        Some(BookingStatus::PaymentPending)
    );

    // Only an admin retries, and only a parked saga.
    let admin = app.admin_token().await;
    problem(
        app.post(&format!("/sagas/{saga_id}/retry"), Some(&token), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        app.post(
            &format!("/sagas/{}/retry", uuid::Uuid::now_v7()),
            Some(&admin),
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    flaky.down.store(false, Ordering::SeqCst);
    let r = app
        .post(&format!("/sagas/{saga_id}/retry"), Some(&admin), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_for(booking, BookingStatus::Ticketed, WAIT).await;
    problem(
        app.post(&format!("/sagas/{saga_id}/retry"), Some(&admin), json!({}))
            .await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn competing_saga_processes_charge_and_ticket_each_booking_once(pool: PgPool) {
    // Three processes' workers race for the same sagas; leases are short so
    // they also steal each other's work mid-step.
    let mut config = fast_sagas();
    config.lease = Duration::from_millis(300);
    let app = spawn_with(
        pool,
        Options {
            saga_processes: 3,
            ..Options::with_sagas().saga_config(config)
        },
    )
    .await;
    let (_, token) = app.user("customer").await;
    let flight = app.flight().await;
    let cards = [
        CARD_OK,
        CARD_TRANSIENT,
        CARD_DECLINED,
        CARD_NO_FUNDS,
        "5555555555554444",
    ];
    let mut bookings = vec![];
    for i in 0..30 {
        let b = app.book_id(&token, flight, &["economy"]).await;
        let card = cards[i % cards.len()];
        assert_eq!(
            app.pay(&token, b, card).await.status(),
            StatusCode::ACCEPTED
        );
        bookings.push((b, card));
    }
    for (b, card) in bookings {
        let want = if card == CARD_DECLINED || card == CARD_NO_FUNDS {
            BookingStatus::PaymentFailed
        } else {
            BookingStatus::Ticketed
        };
        app.wait_for(b, want, Duration::from_secs(30)).await;
        let p = app.payment_of(b).await.unwrap();
        let payment_id = p.requested.as_ref().unwrap().payment_id;
        let (captures, _) = app.provider_books(payment_id).await;
        assert_eq!(captures, i64::from(want == BookingStatus::Ticketed));
    }
    // One of each step's events per booking, however many workers ran it.
    let dupes: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT stream_id, event_type, count(*) FROM es_events \
         WHERE event_type IN ('PaymentCaptured', 'PaymentDeclined', 'BookingConfirmed', \
                              'TicketsIssued', 'InvoiceIssued', 'BookingPaymentFailed') \
         GROUP BY 1, 2 HAVING count(*) > 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(dupes.is_empty(), "{dupes:?}");
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_discounted_family_is_invoiced_line_by_line_and_refunded_what_it_paid(pool: PgPool) {
    let app = spawn(pool).await;
    let admin = app.admin_token().await;
    let r = app
        .post(
            "/discount-codes",
            Some(&admin),
            json!({"code": "FAMILY", "percent_off": 10,
                   "valid_from": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
                   "valid_until": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
                   "max_uses": 10, "max_uses_per_customer": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, token) = app.user("customer").await;
    let flight = app.flight_departing(chrono::Duration::days(3)).await;
    let person = |first: &str| json!({"first_name": first, "last_name": "Lovelace", "date_of_birth": "2019-12-10"});
    let mut adult = person("Ada");
    adult["seat"] = json!("12A");
    let mut child = person("Byron");
    child["seat"] = json!("12B");
    child["type"] = json!("child");
    let mut infant = person("Annabella");
    infant["type"] = json!("infant");
    infant["travels_with"] = json!(0);
    let r = app
        .post(
            "/bookings",
            Some(&token),
            json!({"flight_id": flight, "discount_code": "family",
                   "passengers": [adult, child, infant]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let booking = id_in(r, "booking_id").await;
    app.pay(&token, booking, CARD_OK).await;
    let b = app.wait_for(booking, BookingStatus::Ticketed, WAIT).await;
    // Everyone is ticketed, the infant too.
    assert!(b.passengers.iter().all(|p| p.ticket_number.is_some()));

    // 777.00 of fares less 77.70: captured and invoiced as such, a line per
    // passenger's fare and the discount as a credit.
    let p = app.payment_of(booking).await.unwrap();
    assert_eq!(p.captured.unwrap().amount(), dec("699.30"));
    let invoice = p.invoice.as_ref().expect("invoiced");
    assert_eq!(invoice.total.amount(), dec("699.30"));
    let lines: Vec<(String, String, bool)> = invoice
        .lines
        .iter()
        .map(|l| {
            (
                l.description.clone(),
                l.amount.amount().to_string(),
                l.credit,
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                "Adult fare, economy seat 12A".to_owned(),
                "420.00".to_owned(),
                false
            ),
            (
                "Child fare, economy seat 12B".to_owned(),
                "315.00".to_owned(),
                false
            ),
            (
                "Infant fare, economy, on the lap of seat 12A".to_owned(),
                "42.00".to_owned(),
                false
            ),
            ("Discount FAMILY".to_owned(), "77.70".to_owned(), true),
        ]
    );

    // A cancellation three days out refunds everything paid: the discounted
    // price, never the discount.
    let r = app
        .post(
            &format!("/bookings/{booking}/cancel"),
            Some(&token),
            json!({"reason": "changed plans"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_refunded(booking, "699.30", WAIT).await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn one_passenger_of_a_ticketed_booking_is_cancelled_refunded_and_their_seat_returned(
    pool: PgPool,
) {
    let app = spawn(pool).await;
    let (_, token) = app.user("customer").await;
    let (_, stranger) = app.user("customer").await;
    let flight = app.flight_departing(chrono::Duration::days(3)).await;
    let booked = app.booked(&token, flight, &["12A", "12B"]).await;
    let booking: uuid::Uuid = booked["booking_id"].as_str().unwrap().parse().unwrap();
    let second = booked["passengers"][1]["passenger_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = booked["passengers"][0]["passenger_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.pay(&token, booking, CARD_OK).await;
    app.wait_for(booking, BookingStatus::Ticketed, WAIT).await;

    let path = format!("/bookings/{booking}/passengers/{second}/cancel");
    let r = app
        .post(&path, Some(&stranger), json!({"reason": "not mine"}))
        .await;
    problem(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let r = app
        .post(
            &format!(
                "/bookings/{booking}/passengers/{}/cancel",
                uuid::Uuid::now_v7()
            ),
            Some(&token),
            json!({"reason": "nobody"}),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    let r = app
        .post(&path, Some(&token), json!({"reason": "cannot come"}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["refund"]["amount"], "420.00");
    assert!(body["position"].is_string());

    // The share goes back through the provider; the seat is on sale again;
    // the other passenger still flies, ticketed.
    let p = app.wait_refunded(booking, "420.00", WAIT).await;
    let payment_id = p.requested.as_ref().unwrap().payment_id;
    assert_eq!(app.provider_books(payment_id).await, (1, dec("420.00")));
    assert_eq!(p.status, Some(PaymentStatus::PartiallyRefunded));
    let seats = app.seats(flight).await;
    assert!(seats.is_available("12B".parse().unwrap(), chrono::Utc::now()));
    assert!(!seats.is_available("12A".parse().unwrap(), chrono::Utc::now()));
    let b = app.booking(booking).await;
    assert_eq!(b.status, Some(BookingStatus::Ticketed));
    assert_eq!(b.passengers.len(), 1);
    assert_eq!(b.passengers[0].passenger_id.to_string(), first);

    // The last one is cancelled with the booking, not alone.
    let r = app
        .post(
            &format!("/bookings/{booking}/passengers/{first}/cancel"),
            Some(&token),
            json!({"reason": "cannot come"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT, "INVALID_STATE").await;
    // Cancelling the booking refunds what is left, never the share twice.
    let r = app
        .post(
            &format!("/bookings/{booking}/cancel"),
            Some(&token),
            json!({"reason": "all off"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_refunded(booking, "840.00", WAIT).await;
    app.wait_for(booking, BookingStatus::Cancelled, WAIT).await;
    assert_eq!(app.provider_books(payment_id).await, (1, dec("840.00")));

    // The read side lists the passenger travelling and the refunds.
    app.catch_up().await;
    let data = app
        .gql(
            Some(&token),
            "query($id: ID!) { booking(id: $id) { passengers { id } refund { amount } } }",
            json!({"id": booking}),
        )
        .await;
    assert_eq!(data["booking"]["passengers"].as_array().unwrap().len(), 1);
    assert_eq!(data["booking"]["refund"]["amount"], "840.00");
}
