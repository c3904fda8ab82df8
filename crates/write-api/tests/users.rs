//! `/users`: profile edits, role changes and erasure (crypto-shredding), with
//! their ownership rules and idempotency keys.

use domain::user::{User, UserStatus};
use domain::values::Role;
use eventstore::{EventStore, Sealer, StreamId};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn, TestApp, PASSWORD};
use uuid::Uuid;

const ADA: &str = "ada.lovelace@example.com";

/// Registers Ada and logs her in: (user id, access token, refresh token).
async fn ada(app: &TestApp) -> (Uuid, String, String) {
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"email": ADA, "password": PASSWORD, "full_name": "Ada Lovelace"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"email": ADA, "password": PASSWORD}),
        )
        .await;
    let pair: Value = r.json().await.unwrap();
    (
        id,
        pair["access_token"].as_str().unwrap().to_string(),
        pair["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn patch(
    app: &TestApp,
    id: impl std::fmt::Display,
    token: &str,
    body: Value,
) -> reqwest::Response {
    app.send(
        Method::PATCH,
        &format!("/users/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn set_role(
    app: &TestApp,
    id: impl std::fmt::Display,
    token: &str,
    role: &str,
) -> reqwest::Response {
    app.send(
        Method::PUT,
        &format!("/users/{id}/role"),
        Some(token),
        Some(json!({"role": role})),
    )
    .await
}

async fn delete(app: &TestApp, id: Uuid, token: &str) -> reqwest::Response {
    app.send(Method::DELETE, &format!("/users/{id}"), Some(token), None)
        .await
}

async fn event_count(app: &TestApp, id: Uuid) -> u64 {
    app.store
        .stream_version(&StreamId::new("user", id))
        .await
        .unwrap()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_let_users_edit_their_own_profile(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, token, _) = ada(&app).await;
    let r = patch(
        &app,
        id,
        &token,
        json!({"full_name": " Ada King ", "phone": "+44 20 7946 0958"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user_id"], id.to_string());
    assert_eq!(body["full_name"], "Ada King");
    assert_eq!(body["phone"], "+44 20 7946 0958");
    assert!(body["position"].is_string());

    // A partial edit keeps the other field; an empty phone removes it.
    let r = patch(&app, id, &token, json!({"phone": ""})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["full_name"], "Ada King");
    assert_eq!(body["phone"], Value::Null);

    let user = app.state.commands.load::<User>(id).await.unwrap().state;
    let personal = user.personal.known().unwrap();
    assert_eq!(personal.full_name, "Ada King");
    assert_eq!(personal.phone, None);
    assert_eq!(personal.email.as_str(), ADA);
    assert_eq!(event_count(&app, id).await, 3);

    // An edit that changes nothing appends nothing.
    let r = patch(&app, id, &token, json!({"full_name": "Ada King"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(event_count(&app, id).await, 3);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_refuse_invalid_profile_edits(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, token, _) = ada(&app).await;
    for (body, field) in [
        (json!({"phone": "call me maybe"}), "phone"),
        (json!({"full_name": ""}), "full_name"),
        (json!({"full_name": "x".repeat(101)}), "full_name"),
    ] {
        let p = problem(
            patch(&app, id, &token, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    // The email is not editable here.
    let r = patch(&app, id, &token, json!({"email": "other@example.com"})).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = patch(&app, id, &token, json!({"phone": 12345678})).await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(event_count(&app, id).await, 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_apply_ownership_to_profile_edits(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, _, _) = ada(&app).await;
    let (_, other) = app.user("customer").await;
    let (_, agent) = app.user("agent").await;
    let admin = app.admin_token().await;

    // Another customer, or an agent: 403.
    let r = patch(&app, id, &other, json!({"full_name": "Mallory"})).await;
    problem(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let r = patch(&app, id, &agent, json!({"full_name": "Mallory"})).await;
    problem(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    // A customer learns nothing about ids that are not users either.
    let r = patch(
        &app,
        Uuid::now_v7(),
        &other,
        json!({"full_name": "Mallory"}),
    )
    .await;
    problem(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // An admin may.
    let r = patch(&app, id, &admin, json!({"full_name": "Ada King"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["full_name"], "Ada King");

    // And learns 404 for unknown ids; anything but a UUID is a 400.
    let r = patch(&app, Uuid::now_v7(), &admin, json!({"full_name": "Nobody"})).await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let r = patch(&app, "not-a-uuid", &admin, json!({"full_name": "Nobody"})).await;
    problem(r, StatusCode::BAD_REQUEST, "INVALID_ID").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_let_admins_change_roles(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, token, _) = ada(&app).await;
    let admin = app.admin_token().await;

    let r = set_role(&app, id, &admin, "agent").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user_id"], id.to_string());
    assert_eq!(body["role"], "agent");
    assert!(body["position"].is_string());
    assert_eq!(
        app.state
            .commands
            .load::<User>(id)
            .await
            .unwrap()
            .state
            .role,
        Some(Role::Agent)
    );
    // Her tokens carried the old role: they stop working at once.
    let r = set_role(&app, id, &token, "admin").await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // The next login carries the new role.
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"email": ADA, "password": PASSWORD}),
        )
        .await;
    let login: Value = r.json().await.unwrap();
    assert_eq!(login["role"], "agent");
    let token = login["access_token"].as_str().unwrap().to_owned();

    // Not for non-admins, not for unknown roles or users.
    let r = set_role(&app, id, &token, "admin").await;
    problem(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let r = set_role(&app, id, &admin, "pilot").await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(p["errors"][0]["field"], "role", "{p}");
    let r = set_role(&app, Uuid::now_v7(), &admin, "agent").await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(event_count(&app, id).await, 2);

    // An admin cannot demote themselves (someone must stay admin).
    let admin_id = app.state.tokens.verify(&admin).unwrap().user_id;
    let r = set_role(&app, admin_id, &admin, "customer").await;
    problem(r, StatusCode::CONFLICT, "INVALID_STATE").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_erase_a_user_by_shredding_their_key(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, token, refresh_token) = ada(&app).await;
    let r = patch(&app, id, &token, json!({"phone": "+44 20 7946 0958"})).await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = delete(&app, id, &token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers().contains_key("position"));
    assert!(r.bytes().await.unwrap().is_empty());

    // They cannot log in or refresh any more...
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"email": ADA, "password": PASSWORD}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let r = app
        .post(
            "/auth/refresh",
            None,
            json!({"refresh_token": refresh_token}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM auth_credentials WHERE user_id = $1) \
              + (SELECT count(*) FROM auth_refresh_tokens WHERE user_id = $1)",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows, 0);
    // ...and their access token stops working at once (it has not expired,
    // but its session ended with the account).
    let r = patch(&app, id, &token, json!({"full_name": "Ada"})).await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // The log is intact: three events, every hash chain verifies.
    let report = app.store.verify(None).await.unwrap();
    assert!(report.ok, "{report:?}");
    let stream = StreamId::new("user", id);
    let events = app.store.read_stream(&stream, 1, None).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["UserRegistered", "UserProfileUpdated", "UserErased"]
    );

    // The stored events never held the email or phone in plaintext...
    let raw: Vec<String> =
        sqlx::query_scalar("SELECT data::text FROM es_events WHERE stream_id = $1")
            .bind(stream.as_str())
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for data in &raw {
        assert!(
            !data.contains("ada.lovelace") && !data.contains("7946"),
            "{data}"
        );
        assert!(!data.contains("Lovelace"), "{data}");
    }
    // ...and they no longer open, even for a process with a cold key cache.
    let sealer = Sealer::postgres(app.pool.clone());
    for e in &events[..2] {
        let opened = sealer.open(e.data.clone()).await.unwrap();
        assert_eq!(opened["personal"], "erased", "{opened}");
    }
    let user = app.state.commands.load::<User>(id).await.unwrap();
    assert_eq!(user.version, 3);
    assert_eq!(user.state.status, UserStatus::Erased);
    assert!(user.state.personal.is_erased());
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM es_subject_keys WHERE subject = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 0);

    // The email is free again for a new account.
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"email": ADA, "password": PASSWORD, "full_name": "Ada Again"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_apply_ownership_to_erasure(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, _, _) = ada(&app).await;
    let (_, other) = app.user("customer").await;
    let admin = app.admin_token().await;

    let r = delete(&app, id, &other).await;
    problem(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let r = delete(&app, Uuid::now_v7(), &admin).await;
    problem(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let r = app
        .send(Method::DELETE, &format!("/users/{id}"), None, None)
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(event_count(&app, id).await, 1);

    let r = delete(&app, id, &admin).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Erasing again finishes any clean-up and appends nothing.
    let r = delete(&app, id, &admin).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(event_count(&app, id).await, 2);
    assert!(app.store.verify(None).await.unwrap().ok);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_answer_a_repeated_edit_from_its_idempotency_key(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, token, _) = ada(&app).await;
    let send = |key: &'static str, body: Value| {
        app.client
            .patch(app.url(&format!("/users/{id}")))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send("edit-1", json!({"full_name": "Ada King"}))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();

    let again = send("edit-1", json!({"full_name": "Ada King"}))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(event_count(&app, id).await, 2, "one edit appended once");

    let reused = send("edit-1", json!({"full_name": "Ada Byron"}))
        .await
        .unwrap();
    problem(
        reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(event_count(&app, id).await, 2);

    // Concurrent twins with a fresh key: one edit, one answer.
    let (a, b) = tokio::join!(
        send("edit-2", json!({"phone": "+1 555 0100 200"})),
        send("edit-2", json!({"phone": "+1 555 0100 200"}))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(b.status(), StatusCode::OK);
    assert_eq!(
        a.json::<Value>().await.unwrap(),
        b.json::<Value>().await.unwrap()
    );
    assert_eq!(event_count(&app, id).await, 3);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_replay_an_erasure_from_its_idempotency_key(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, token, _) = ada(&app).await;
    let admin = app.admin_token().await;
    let send = |token: String| {
        app.client
            .delete(app.url(&format!("/users/{id}")))
            .bearer_auth(token)
            .header("idempotency-key", "erase-1")
            .send()
    };
    // An admin erases her, and retries.
    let first = send(admin.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    let again = send(admin).await.unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert!(again.bytes().await.unwrap().is_empty(), "a 204 has no body");
    assert_eq!(event_count(&app, id).await, 2);
    // Her own (ended) session gets no answer from it, replayed or not.
    let theirs = send(token).await.unwrap();
    problem(theirs, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(event_count(&app, id).await, 2);
}

const NEW_PASSWORD: &str = "a new Passphrase 2";

/// Logs Ada in once more: a second session (access token, refresh token).
async fn login_again(app: &TestApp, password: &str) -> (String, String) {
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"email": ADA, "password": password}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let pair: Value = r.json().await.unwrap();
    (
        pair["access_token"].as_str().unwrap().to_string(),
        pair["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post(
        "/auth/refresh",
        None,
        json!({"refresh_token": refresh_token}),
    )
    .await
}

async fn login_status(app: &TestApp, password: &str) -> reqwest::Response {
    app.post(
        "/auth/login",
        None,
        json!({"email": ADA, "password": password}),
    )
    .await
}

async fn change_password(
    app: &TestApp,
    token: Option<&str>,
    current: &str,
    new: &str,
) -> reqwest::Response {
    app.post(
        "/auth/password",
        token,
        json!({"current_password": current, "new_password": new}),
    )
    .await
}

async fn suspend(app: &TestApp, id: Uuid, token: &str, reason: &str) -> reqwest::Response {
    app.post(
        &format!("/users/{id}/suspend"),
        Some(token),
        json!({"reason": reason}),
    )
    .await
}

async fn reactivate(app: &TestApp, id: Uuid, token: &str) -> reqwest::Response {
    app.send(
        Method::POST,
        &format!("/users/{id}/reactivate"),
        Some(token),
        None,
    )
    .await
}

async fn event_types(app: &TestApp, id: Uuid) -> Vec<String> {
    app.store
        .read_stream(&StreamId::new("user", id), 1, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_end_the_other_sessions_on_a_password_change_but_keep_this_one(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, access, refresh_token) = ada(&app).await;
    let (other_access, other_refresh) = login_again(&app, PASSWORD).await;

    let r = change_password(&app, Some(&access), PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "{}",
        r.text().await.unwrap()
    );

    // The other session is over: its refresh token is refused, and so is
    // its access token, by a command.
    problem(
        refresh(&app, &other_refresh).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    problem(
        patch(&app, id, &other_access, json!({"full_name": "Eve"})).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    // This one goes on, access and refresh token alike.
    let r = patch(&app, id, &access, json!({"full_name": "Ada King"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(refresh(&app, &refresh_token).await.status(), StatusCode::OK);

    // Only the new password logs in.
    problem(
        login_status(&app, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    login_again(&app, NEW_PASSWORD).await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_change_nothing_when_the_current_password_is_wrong(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, access, _) = ada(&app).await;
    let (other_access, other_refresh) = login_again(&app, PASSWORD).await;

    let body = problem(
        change_password(&app, Some(&access), "not my Password 1", NEW_PASSWORD).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "current_password", "{body}");

    // The new password must obey the registration rules.
    let body = problem(
        change_password(&app, Some(&access), PASSWORD, "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "new_password", "{body}");
    let body = problem(
        change_password(&app, Some(&access), PASSWORD, PASSWORD).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "new_password", "{body}");
    problem(
        change_password(&app, None, PASSWORD, NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    // Nothing changed: the other session lives, the old password logs in,
    // the new one does not.
    let r = patch(&app, id, &other_access, json!({"full_name": "Ada King"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(refresh(&app, &other_refresh).await.status(), StatusCode::OK);
    login_again(&app, PASSWORD).await;
    problem(
        login_status(&app, NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_end_a_suspended_users_sessions_and_refuse_them_until_reactivated(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, access, refresh_token) = ada(&app).await;
    let admin = app.admin_token().await;

    let r = suspend(&app, id, &admin, " chargebacks under investigation ").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "SUSPENDED");
    assert!(body["position"].is_string());

    // Her sessions are over and every command of hers is refused.
    problem(
        patch(&app, id, &access, json!({"full_name": "Ada King"})).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    problem(
        refresh(&app, &refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // Login: the right password learns of the suspension, a wrong one
    // learns nothing.
    problem(
        login_status(&app, PASSWORD).await,
        StatusCode::FORBIDDEN,
        "ACCOUNT_SUSPENDED",
    )
    .await;
    problem(
        login_status(&app, "not my Password 1").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    // Suspending again changes nothing.
    let before = event_count(&app, id).await;
    assert_eq!(
        suspend(&app, id, &admin, "again").await.status(),
        StatusCode::OK
    );
    assert_eq!(event_count(&app, id).await, before);

    let r = reactivate(&app, id, &admin).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ACTIVE");
    let (access, _) = login_again(&app, PASSWORD).await;
    let r = patch(&app, id, &access, json!({"full_name": "Ada King"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The old tokens stay dead.
    problem(
        refresh(&app, &refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    assert_eq!(
        event_types(&app, id).await,
        [
            "UserRegistered",
            "UserSuspended",
            "UserReactivated",
            "UserProfileUpdated"
        ]
    );
    let user = app.state.commands.load::<User>(id).await.unwrap().state;
    assert_eq!(user.status, UserStatus::Active);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_let_only_admins_suspend_and_reactivate(pool: PgPool) {
    let app = spawn(pool).await;
    let (id, access, _) = ada(&app).await;
    let (_, agent) = app.user("agent").await;
    let (other, _) = app.customer().await;
    for token in [&access, &agent] {
        for target in [id, other] {
            problem(
                suspend(&app, target, token, "because").await,
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
            )
            .await;
            problem(
                reactivate(&app, target, token).await,
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
            )
            .await;
        }
    }
    assert_eq!(event_count(&app, id).await, 1);
    problem(
        suspend(&app, id, "not a token", "because").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;

    let admin = app.admin_token().await;
    let body = problem(
        suspend(&app, id, &admin, "  ").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "reason", "{body}");
    problem(
        suspend(&app, Uuid::now_v7(), &admin, "because").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let (admin_id, _) = app.user("admin").await;
    let admin_of_self = app
        .state
        .ensure_admin(test_support::ADMIN_EMAIL, PASSWORD)
        .await
        .unwrap();
    problem(
        suspend(&app, admin_of_self, &admin, "oops").await,
        StatusCode::CONFLICT,
        "INVALID_STATE",
    )
    .await;
    // Another admin may be suspended.
    assert_eq!(
        suspend(&app, admin_id, &admin, "left the company")
            .await
            .status(),
        StatusCode::OK
    );
    // Erasure still reaches a suspended account.
    assert_eq!(
        suspend(&app, id, &admin, "fraud").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        delete(&app, id, &admin).await.status(),
        StatusCode::NO_CONTENT
    );
}
