//! A command's failure is its own: a flight's lane decides and appends many
//! commands together, and one that the store refuses, or that names the
//! same booking or command id as another of its batch, must not fail the
//! others. Real PostgreSQL; commands submitted concurrently so they share
//! batches.

use std::sync::Arc;

use application::command::lane::{BookingRef, Decided};
use application::{CommandContext, CommandError, Idempotency};
use auth::Caller;
use chrono::Utc;
use domain::booking::{BookingEvent, BookingStatus, CancelledBy};
use domain::values::Role;
use eventstore::Actor;
use sqlx::PgPool;
use test_support::spawn;
use uuid::Uuid;

fn ctx(idempotency: Option<Uuid>) -> CommandContext {
    CommandContext {
        correlation_id: Uuid::now_v7(),
        actor: Actor::system("test"),
        idempotency: idempotency.map(|command_id| Idempotency {
            command_id,
            fingerprint: b"same request".to_vec(),
        }),
        data_subject: None,
        now: Utc::now(),
    }
}

/// `n` bookings on `flight` by four other customers, to run beside a
/// command under test so that they share its lane's batches; their
/// statuses.
async fn others_book(
    app: &test_support::TestApp,
    flight: Uuid,
    n: usize,
) -> impl std::future::Future<Output = Vec<reqwest::StatusCode>> + '_ {
    let mut customers = Vec::new();
    for _ in 0..4 {
        customers.push(app.user("customer").await.1);
    }
    futures::future::join_all((0..n).map(move |i| {
        let token = customers[i % customers.len()].clone();
        async move { app.book(&token, flight, &["economy"]).await.status() }
    }))
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_command_the_store_refuses_fails_alone(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.user("customer").await;
    let victim = app.book_id(&token, flight, &["1A"]).await;
    let lanes = app.state.commands.lanes.clone();
    let booking = app.state.commands.load(victim).await.unwrap();

    // A decision the domain would never make: a cancellation whose reason
    // PostgreSQL cannot store (jsonb has no NUL). It reaches the lane in the
    // middle of forty bookings by others.
    let bogus = {
        let lanes = lanes.clone();
        let read = BookingRef::read(victim, booking);
        async move {
            lanes
                .submit(
                    flight,
                    ctx(None),
                    Some(read),
                    Box::new(move |_, _, b, _| {
                        Ok(Decided {
                            booking: vec![BookingEvent::BookingCancelled(
                                domain::booking::BookingCancelled {
                                    booking_id: b.id().unwrap(),
                                    reason: "\u{0}".into(),
                                    refund: b.info.as_ref().unwrap().total,
                                    cancelled_by: CancelledBy::Customer,
                                    previous_status: BookingStatus::Held,
                                    cancelled_at: Utc::now(),
                                },
                            )],
                            ..Decided::default()
                        })
                    }),
                )
                .await
        }
    };
    let others = others_book(&app, flight, 40).await;
    let (bogus, others) = tokio::join!(bogus, others);
    assert!(
        matches!(bogus, Err(CommandError::Unavailable(_))),
        "{bogus:?}"
    );
    assert!(
        others.iter().all(|s| *s == reqwest::StatusCode::CREATED),
        "every other booking went through: {others:?}"
    );
    // The bogus event was never stored; the victim is still held.
    assert_eq!(app.booking(victim).await.status, Some(BookingStatus::Held));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn commands_on_one_booking_in_one_batch_see_each_other(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (owner, token) = app.user("customer").await;
    let booking = app.book_id(&token, flight, &["1A", "1C"]).await;
    let caller = Caller {
        user_id: owner,
        role: Role::Customer,
        session: Uuid::now_v7(),
    };
    let services = Arc::new(app.state.services.clone());
    // Two cancels of one booking at the same moment (a double click), among
    // others' bookings: one cancels, the other sees a cancelled booking.
    let cancel = || {
        let services = services.clone();
        async move {
            services
                .cancel_booking(&caller, ctx(None), booking, "double click".into())
                .await
        }
    };
    let mut customers = Vec::new();
    for _ in 0..4 {
        customers.push(app.user("customer").await.1);
    }
    let others = (0..30).map(|i| {
        let (app, token) = (&app, customers[i % customers.len()].clone());
        async move { app.book(&token, flight, &["economy"]).await.status() }
    });
    let (a, b, others) = tokio::join!(cancel(), cancel(), futures::future::join_all(others));
    let outcomes = [&a, &b];
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{a:?} {b:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Err(CommandError::InvalidState(_)))),
        "the second sees it cancelled: {a:?} {b:?}"
    );
    assert!(
        others.iter().all(|s| *s == reqwest::StatusCode::CREATED),
        "{others:?}"
    );
    let cancelled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM es_events WHERE event_type = 'BookingCancelled'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(cancelled, 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn the_same_command_twice_in_a_batch_answers_the_first_outcome(pool: PgPool) {
    let app = spawn(pool).await;
    let flight = app.flight().await;
    let lanes = app.state.commands.lanes.clone();
    let command = Uuid::now_v7();
    // Fifteen copies of one command (a client retrying before its answer
    // came): each decision would create a booking of its own.
    let twins = (0..15).map(|_| {
        let lanes = lanes.clone();
        async move {
            let booking = Uuid::now_v7();
            lanes
                .submit(
                    flight,
                    ctx(Some(command)),
                    Some(BookingRef::new(booking)),
                    Box::new(move |_, _, _, _| {
                        Ok(Decided {
                            reply: serde_json::json!({ "made": booking }),
                            ..Decided::default()
                        })
                    }),
                )
                .await
        }
    });
    let outcomes = futures::future::join_all(twins).await;
    let replies: Vec<_> = outcomes
        .iter()
        .map(|o| o.as_ref().expect("every copy is answered").reply.clone())
        .collect();
    assert!(replies.iter().all(|r| *r == replies[0]), "{replies:?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| !o.as_ref().unwrap().replayed)
            .count(),
        1,
        "one ran, the others were told its outcome"
    );
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_command_whose_payment_moved_fails_alone(pool: PgPool) {
    use application::command::lane::PaymentAppend;
    use domain::payment::{PaymentCaptured, PaymentEvent};

    let app = spawn(pool).await;
    let flight = app.flight().await;
    let (_, token) = app.user("customer").await;
    let paid = app.book_id(&token, flight, &["1A"]).await;
    assert_eq!(
        app.pay(&token, paid, test_support::CARD_OK).await.status(),
        reqwest::StatusCode::ACCEPTED
    );
    let booking = app.booking(paid).await;
    let payment_id = booking.payment_id.unwrap();
    let amount = booking.info.as_ref().unwrap().total;
    let lanes = app.state.commands.lanes.clone();

    // A command that read the payment before it was requested (version 0;
    // it stands at 1) and captures it, amid forty bookings by others on
    // the same lane.
    let stale = {
        let lanes = lanes.clone();
        async move {
            lanes
                .submit(
                    flight,
                    ctx(None),
                    None,
                    Box::new(move |_, _, _, _| {
                        Ok(Decided {
                            payment: Some(PaymentAppend {
                                payment_id,
                                version: 0,
                                events: vec![PaymentEvent::PaymentCaptured(PaymentCaptured {
                                    payment_id,
                                    booking_id: paid,
                                    amount,
                                    gateway_reference: "ch_stale".into(),
                                    captured_at: Utc::now(),
                                })],
                            }),
                            ..Decided::default()
                        })
                    }),
                )
                .await
        }
    };
    let others = others_book(&app, flight, 40).await;
    let (stale, others) = tokio::join!(stale, others);
    assert!(
        matches!(stale, Err(CommandError::Concurrency(_))),
        "{stale:?}"
    );
    assert!(
        others.iter().all(|s| *s == reqwest::StatusCode::CREATED),
        "every other booking went through: {others:?}"
    );
    // Nothing of the stale command was stored.
    let payment = app.payment_of(paid).await.unwrap();
    assert!(payment.captured.is_none(), "{payment:?}");
}
