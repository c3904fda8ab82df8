//! Password reset and email verification: tokens the notifier mails,
//! opened here as a user who read that mail would send them back. The
//! tokens are minted with the deployment's secret exactly as the notifier
//! mints them (from the ids the user stream records).

use std::time::Duration;

use auth::account_tokens::{AccountTokens, Purpose};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn, spawn_with, Options, TestApp, PASSWORD, SECRET};
use uuid::Uuid;

const ADA: &str = "ada.lovelace@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

async fn register(app: &TestApp, email: &str) -> Uuid {
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn request_reset(app: &TestApp, email: &str) {
    let r = app
        .post("/auth/password-reset", None, json!({"email": email}))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
}

/// The reset requests the user's stream recorded, oldest first.
async fn reset_ids(app: &TestApp, user: Uuid) -> Vec<Uuid> {
    sqlx::query_scalar::<_, String>(
        "SELECT data->>'token_id' FROM es_events \
         WHERE event_type = 'PasswordResetRequested' AND data->>'user_id' = $1 \
         ORDER BY position",
    )
    .bind(user.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fn reset_token(token_id: Uuid) -> String {
    AccountTokens::new(SECRET).mint(Purpose::PasswordReset, token_id)
}

async fn confirm(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post(
        "/auth/password-reset/confirm",
        None,
        json!({"token": token, "new_password": password}),
    )
    .await
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.post(
        "/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
    .status()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_reset_token_sets_a_new_password_once_and_ends_every_session(pool: PgPool) {
    let app = spawn(pool).await;
    let ada = register(&app, ADA).await;
    let session = app.login(ADA, PASSWORD).await;

    request_reset(&app, ADA).await;
    let ids = reset_ids(&app, ada).await;
    assert_eq!(ids.len(), 1);
    let token = reset_token(ids[0]);

    // A weak password is refused and leaves the token good.
    let r = confirm(&app, &token, "short").await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;

    let r = confirm(&app, &token, NEW_PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "{}",
        r.text().await.unwrap()
    );
    assert_eq!(
        login_status(&app, ADA, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login_status(&app, ADA, NEW_PASSWORD).await, StatusCode::OK);
    // The session from before the reset has ended.
    let r = app
        .post(
            "/auth/password",
            Some(&session),
            json!({"current_password": NEW_PASSWORD, "new_password": "whatever passphrase 9"}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // Single use.
    let r = confirm(&app, &token, "yet another passphrase 7").await;
    let body = problem(r, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
    assert!(body["detail"].as_str().unwrap().contains("token"), "{body}");
    assert_eq!(login_status(&app, ADA, NEW_PASSWORD).await, StatusCode::OK);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn a_reset_tells_nobody_which_emails_have_accounts(pool: PgPool) {
    let app = spawn(pool).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    request_reset(&app, "nobody@example.com").await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "nothing recorded for an unknown email");

    let r = app
        .post(
            "/auth/password-reset",
            None,
            json!({"email": "not an email"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = app
        .post("/auth/password-reset", None, json!({"email": 42}))
        .await;
    assert!(r.status().is_client_error());
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn forged_superseded_and_foreign_tokens_open_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let ada = register(&app, ADA).await;
    request_reset(&app, ADA).await;
    request_reset(&app, ADA).await;
    let ids = reset_ids(&app, ada).await;
    assert_eq!(ids.len(), 2);

    let forged = AccountTokens::new(b"another deployment's secret, as long")
        .mint(Purpose::PasswordReset, ids[1]);
    let verification = AccountTokens::new(SECRET).mint(Purpose::EmailVerification, ids[1]);
    for token in [
        forged.as_str(),
        verification.as_str(),
        &reset_token(ids[0]), // superseded by the newer request
        &reset_token(Uuid::new_v4()),
        "",
        "garbage",
    ] {
        let r = confirm(&app, token, NEW_PASSWORD).await;
        problem(r, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
    }
    assert_eq!(login_status(&app, ADA, PASSWORD).await, StatusCode::OK);
    // The newest one still works.
    let r = confirm(&app, &reset_token(ids[1]), NEW_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn an_expired_reset_token_is_refused(pool: PgPool) {
    let mut options = Options::default();
    options.settings.reset_token_ttl = Duration::from_secs(1);
    let app = spawn_with(pool, options).await;
    let ada = register(&app, ADA).await;
    request_reset(&app, ADA).await;
    let token = reset_token(reset_ids(&app, ada).await[0]);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let r = confirm(&app, &token, NEW_PASSWORD).await;
    problem(r, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
    assert_eq!(login_status(&app, ADA, PASSWORD).await, StatusCode::OK);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn racing_confirmations_of_one_token_succeed_once(pool: PgPool) {
    let app = spawn(pool).await;
    let ada = register(&app, ADA).await;
    request_reset(&app, ADA).await;
    let token = reset_token(reset_ids(&app, ada).await[0]);
    let attempts = (0..12).map(|n| {
        let (app, token) = (&app, &token);
        async move {
            let password = format!("racing passphrase number {n}");
            let status = confirm(app, token, &password).await.status();
            (status, password)
        }
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::NO_CONTENT)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, _) in &results {
        assert!(
            *status == StatusCode::NO_CONTENT || *status == StatusCode::BAD_REQUEST,
            "{status}"
        );
    }
    assert_eq!(login_status(&app, ADA, &winners[0].1).await, StatusCode::OK);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn suspended_accounts_get_no_reset(pool: PgPool) {
    let app = spawn(pool).await;
    let ada = register(&app, ADA).await;
    request_reset(&app, ADA).await;
    let token = reset_token(reset_ids(&app, ada).await[0]);
    let admin = app.admin_token().await;
    let r = app
        .post(
            &format!("/users/{ada}/suspend"),
            Some(&admin),
            json!({"reason": "chargebacks"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A token mailed before the suspension opens nothing now...
    let r = confirm(&app, &token, NEW_PASSWORD).await;
    problem(r, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
    // ...and no new one is issued.
    request_reset(&app, ADA).await;
    assert_eq!(reset_ids(&app, ada).await.len(), 1);
}

const ME: &str = "{ me { id emailVerified } }";

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn the_mailed_verification_token_verifies_the_email(pool: PgPool) {
    let app = spawn(pool).await;
    let ada = register(&app, ADA).await;
    let session = app.login(ADA, PASSWORD).await;
    app.catch_up().await;
    assert_eq!(
        app.gql(Some(&session), ME, json!({})).await["me"]["emailVerified"],
        false
    );

    let tokens = AccountTokens::new(SECRET);
    for bad in [
        tokens.mint(Purpose::PasswordReset, ada),
        tokens.mint(Purpose::EmailVerification, Uuid::new_v4()),
        "nonsense".to_string(),
    ] {
        let r = app
            .post("/auth/verify-email", None, json!({"token": bad}))
            .await;
        problem(r, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
    }
    let token = tokens.mint(Purpose::EmailVerification, ada);
    for _ in 0..2 {
        let r = app
            .post("/auth/verify-email", None, json!({"token": token}))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let verified: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM es_events WHERE event_type = 'EmailVerified' AND data->>'user_id' = $1",
    )
    .bind(ada.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(verified, 1, "verifying twice records it once");
    app.catch_up().await;
    let me = app.gql(Some(&session), ME, json!({})).await;
    assert_eq!(me["me"]["emailVerified"], true, "{me}");
}
