//! `/auth`: registration, login, rate limits, refresh-token rotation, logout,
//! access-token checks and the admin bootstrap, over HTTP against PostgreSQL.

use std::time::Duration;

use application::Settings;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use domain::user::User;
use domain::values::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{problem, spawn, spawn_with, Options, TestApp, ADMIN_EMAIL, PASSWORD, SECRET};
use uuid::Uuid;

async fn register(app: &TestApp, email: &str) -> reqwest::Response {
    app.post(
        "/auth/register",
        None,
        json!({"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"}),
    )
    .await
}

async fn register_ok(app: &TestApp, email: &str) -> Uuid {
    let r = register(app, email).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn login_raw(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post(
        "/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

async fn login_pair(app: &TestApp, email: &str) -> Value {
    let r = login_raw(app, email, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/auth/refresh", None, json!({"refresh_token": token}))
        .await
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_register_a_customer(pool: PgPool) {
    let app = spawn(pool).await;
    let r = register(&app, "  Ada@Example.com ").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let user_id: Uuid = str_of(&body, "user_id").parse().unwrap();
    assert!(!str_of(&body, "position").is_empty());

    let user = app.state.commands.load::<User>(user_id).await.unwrap();
    assert_eq!(user.version, 1);
    assert_eq!(user.state.role, Some(Role::Customer));
    let personal = user.state.personal.known().unwrap();
    assert_eq!(personal.email.as_str(), "ada@example.com");
    assert_eq!(personal.full_name, "Ada Lovelace");

    // The credential is in its table, lower-cased and hashed with argon2id...
    let (email, hash): (String, String) =
        sqlx::query_as("SELECT email, password_hash FROM auth_credentials WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(email, "ada@example.com");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    // ...and neither the email nor the password is in the log.
    let raw: Vec<String> = sqlx::query_scalar("SELECT data::text || metadata::text FROM es_events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(raw.len(), 1);
    assert!(!raw[0].to_lowercase().contains("ada@example.com"));
    assert!(!raw[0].contains(PASSWORD) && !raw[0].contains("argon2"));
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_refuse_a_taken_email_whatever_its_case(pool: PgPool) {
    let app = spawn(pool).await;
    register_ok(&app, "ada@example.com").await;
    for email in ["ada@example.com", "ADA@Example.COM"] {
        let body = problem(
            register(&app, email).await,
            StatusCode::CONFLICT,
            "EMAIL_TAKEN",
        )
        .await;
        assert!(body["detail"].as_str().unwrap().contains("registered"));
    }
    let credentials: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_credentials")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(credentials, 1);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_refuse_invalid_registrations_field_by_field(pool: PgPool) {
    let app = spawn(pool).await;
    let cases = [
        (
            json!({"email": "ada@example.com", "password": "Short1!", "full_name": "Ada"}),
            "password",
        ),
        (
            json!({"email": "ada@example.com", "password": "onlylowercaseletters", "full_name": "Ada"}),
            "password",
        ),
        (
            json!({"email": "ada@example.com", "password": "1234567890123", "full_name": "Ada"}),
            "password",
        ),
        (
            json!({"email": "longer.ada@example.com", "password": "Longer.Ada@Example.com", "full_name": "Ada"}),
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD, "full_name": "Ada"}),
            "email",
        ),
        (
            json!({"email": "ada@example.com", "password": PASSWORD, "full_name": "  "}),
            "full_name",
        ),
        (
            json!({"email": "ada@example.com", "password": PASSWORD, "full_name": "x".repeat(101)}),
            "full_name",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/auth/register", None, body.clone()).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{body}: {p}");
    }

    // Every invalid field is reported at once.
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"email": "nope", "password": "short", "full_name": ""}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(p["errors"].as_array().unwrap().len(), 3, "{p}");

    // Nothing was written.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_answer_unreadable_bodies_with_problem_documents(pool: PgPool) {
    let app = spawn(pool).await;
    // A missing field and a wrong type: the body's shape is wrong.
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert!(p.to_string().contains("full_name"), "{p}");
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"email": 42, "password": PASSWORD, "full_name": "Ada"}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;

    // Not JSON at all.
    let r = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;

    // Over 64 KiB.
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"email": "ada@example.com", "password": PASSWORD, "full_name": "x".repeat(70 * 1024)}),
        )
        .await;
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_log_in_with_the_right_password(pool: PgPool) {
    let app = spawn(pool).await;
    let user_id = register_ok(&app, "ada@example.com").await;
    let r = login_raw(&app, "ADA@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 15 * 60);
    assert_eq!(body["user_id"], user_id.to_string());
    assert_eq!(body["role"], "customer");
    assert_eq!(
        str_of(&body, "refresh_token").len(),
        43,
        "256 bits, base64url"
    );

    // The access token authenticates the user.
    let r = app
        .send(
            Method::PATCH,
            &format!("/users/{user_id}"),
            Some(str_of(&body, "access_token")),
            Some(json!({"phone": "+44 20 7946 0958"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Only a hash of the refresh token is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM auth_refresh_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert_ne!(stored, str_of(&body, "refresh_token").as_bytes());
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_refuse_wrong_credentials_alike(pool: PgPool) {
    let app = spawn(pool).await;
    register_ok(&app, "ada@example.com").await;
    let wrong_password = problem(
        login_raw(&app, "ada@example.com", "wrong password 123").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let unknown_email = problem(
        login_raw(&app, "bob@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    let not_an_email = problem(
        login_raw(&app, "bob", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(wrong_password, unknown_email);
    assert_eq!(wrong_password, not_an_email);
    let r = app
        .post("/auth/login", None, json!({"email": "ada@example.com"}))
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_rate_limit_failed_logins_per_email(pool: PgPool) {
    let mut config = Settings::with_secret(SECRET.to_vec());
    config.login_attempts_per_minute = 3;
    let app = spawn_with(
        pool,
        Options {
            settings: config,
            ..Options::default()
        },
    )
    .await;
    register_ok(&app, "ada@example.com").await;
    for _ in 0..3 {
        let r = login_raw(&app, "ada@example.com", "wrong password 123").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_raw(&app, "ada@example.com", "wrong password 123").await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    // Even the right password waits: the limit is checked first.
    let r = login_raw(&app, "ADA@example.com", PASSWORD).await;
    problem(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_rate_limit_failed_logins_per_client_address(pool: PgPool) {
    let mut config = Settings::with_secret(SECRET.to_vec());
    config.login_attempts_per_minute = 3;
    let app = spawn_with(
        pool,
        Options {
            settings: config,
            ..Options::default()
        },
    )
    .await;
    register_ok(&app, "ada@example.com").await;
    for i in 0..3 {
        let r = login_raw(&app, &format!("guess{i}@example.com"), PASSWORD).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Another email, but the same address.
    let r = login_raw(&app, "ada@example.com", PASSWORD).await;
    problem(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_not_count_successful_logins(pool: PgPool) {
    let mut config = Settings::with_secret(SECRET.to_vec());
    config.login_attempts_per_minute = 2;
    let app = spawn_with(
        pool,
        Options {
            settings: config,
            ..Options::default()
        },
    )
    .await;
    register_ok(&app, "ada@example.com").await;
    for _ in 0..5 {
        login_pair(&app, "ada@example.com").await;
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_rotate_refresh_tokens(pool: PgPool) {
    let app = spawn(pool).await;
    let user_id = register_ok(&app, "ada@example.com").await;
    let first = login_pair(&app, "ada@example.com").await;

    let r = refresh(&app, str_of(&first, "refresh_token")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["user_id"], user_id.to_string());
    assert_eq!(second["role"], "customer");
    assert_eq!(second["token_type"], "Bearer");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert!(app
        .state
        .tokens
        .verify(str_of(&second, "access_token"))
        .is_ok());

    // The next one is good for one more exchange.
    let r = refresh(&app, str_of(&second, "refresh_token")).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_revoke_the_family_when_a_spent_token_is_reused(pool: PgPool) {
    let app = spawn(pool).await;
    register_ok(&app, "ada@example.com").await;
    let first = login_pair(&app, "ada@example.com").await;
    let other_session = login_pair(&app, "ada@example.com").await;
    let second: Value = refresh(&app, str_of(&first, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    let third: Value = refresh(&app, str_of(&second, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();

    // A thief replays the first (spent) token.
    let r = refresh(&app, str_of(&first, "refresh_token")).await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // The newest token of that family stopped working too...
    let r = refresh(&app, str_of(&third, "refresh_token")).await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // ...but another login's family is untouched.
    let r = refresh(&app, str_of(&other_session, "refresh_token")).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_let_only_one_of_two_concurrent_refreshes_succeed(pool: PgPool) {
    let app = spawn(pool).await;
    register_ok(&app, "ada@example.com").await;
    for _ in 0..5 {
        let pair = login_pair(&app, "ada@example.com").await;
        let token = str_of(&pair, "refresh_token");
        let (a, b) = tokio::join!(refresh(&app, token), refresh(&app, token));
        let ok = [a.status(), b.status()]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "{} and {}", a.status(), b.status());
        assert!([a.status(), b.status()].contains(&StatusCode::UNAUTHORIZED));
    }
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_refuse_unknown_and_expired_refresh_tokens(pool: PgPool) {
    let app = spawn(pool).await;
    register_ok(&app, "ada@example.com").await;
    let r = refresh(&app, "bm90LWEtdG9rZW4").await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    let pair = login_pair(&app, "ada@example.com").await;
    sqlx::query("UPDATE auth_refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = refresh(&app, str_of(&pair, "refresh_token")).await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_log_out_a_session(pool: PgPool) {
    let app = spawn(pool).await;
    register_ok(&app, "ada@example.com").await;
    register_ok(&app, "bob@example.com").await;
    let ada = login_pair(&app, "ada@example.com").await;
    let bob = login_pair(&app, "bob@example.com").await;
    let ada_token = str_of(&ada, "access_token");

    // Without an access token: 401.
    let r = app
        .post(
            "/auth/logout",
            None,
            json!({"refresh_token": ada["refresh_token"]}),
        )
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // Bob's token is not Ada's to revoke: same answer, nothing revoked.
    let r = app
        .post(
            "/auth/logout",
            Some(ada_token),
            json!({"refresh_token": bob["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = refresh(&app, str_of(&bob, "refresh_token")).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Ada's own session ends, including tokens rotated from it.
    let rotated: Value = refresh(&app, str_of(&ada, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post(
            "/auth/logout",
            Some(ada_token),
            json!({"refresh_token": rotated["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = refresh(&app, str_of(&rotated, "refresh_token")).await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // Logging out twice is fine.
    let r = app
        .post(
            "/auth/logout",
            Some(ada_token),
            json!({"refresh_token": rotated["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

fn jwt(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string()),
        signature
    )
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_refuse_bad_access_tokens(pool: PgPool) {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    let app = spawn(pool).await;
    let user_id = register_ok(&app, "ada@example.com").await;
    let path = format!("/users/{user_id}");
    let body = json!({"full_name": "Ada King"});
    let now = chrono::Utc::now().timestamp();
    let session = Uuid::now_v7();
    let claims = |exp: i64| {
        json!({"sub": user_id, "role": "admin", "sid": session, "iat": now, "exp": exp,
               "iss": "booking-engine", "jti": Uuid::now_v7()})
    };

    // No token, and a header that is not a bearer token.
    let r = app
        .send(Method::PATCH, &path, None, Some(body.clone()))
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let r = app
        .client
        .patch(app.url(&path))
        .header("authorization", "Basic YWRhOnB3")
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    let bad_tokens = [
        // Signed with another secret.
        encode(
            &Header::new(Algorithm::HS256),
            &claims(now + 600),
            &EncodingKey::from_secret(b"not-the-secret-not-the-secret-not-the"),
        )
        .unwrap(),
        // `alg: none`, unsigned.
        jwt(
            &json!({"alg": "none", "typ": "JWT"}),
            &claims(now + 600),
            "",
        ),
        // Expired an hour ago, correctly signed.
        encode(
            &Header::new(Algorithm::HS256),
            &claims(now - 3600),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap(),
        // Another issuer.
        encode(
            &Header::new(Algorithm::HS256),
            &{
                let mut c = claims(now + 600);
                c["iss"] = json!("someone-else");
                c
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap(),
        "garbage".to_string(),
        // No session: a token nobody could revoke.
        encode(
            &Header::new(Algorithm::HS256),
            &{
                let mut c = claims(now + 600);
                c.as_object_mut().unwrap().remove("sid");
                c
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap(),
    ];
    for token in bad_tokens {
        let r = app
            .send(Method::PATCH, &path, Some(&token), Some(body.clone()))
            .await;
        problem(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }

    // The same claims, properly signed and fresh, are accepted.
    let good = encode(
        &Header::new(Algorithm::HS256),
        &claims(now + 600),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let r = app
        .send(Method::PATCH, &path, Some(&good), Some(body))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_bootstrap_the_admin_idempotently(pool: PgPool) {
    let app = spawn(pool).await;
    let ensure = || app.state.ensure_admin(ADMIN_EMAIL, PASSWORD);
    let (a, b) = tokio::join!(ensure(), ensure());
    let id = a.unwrap();
    assert_eq!(b.unwrap(), id);
    assert_eq!(ensure().await.unwrap(), id);
    let user = app.state.commands.load::<User>(id).await.unwrap();
    assert_eq!(user.state.role, Some(Role::Admin));
    assert_eq!(user.version, 1, "one registration, nothing more");
    let pair = login_pair(&app, ADMIN_EMAIL).await;
    assert_eq!(pair["role"], "admin");

    // An existing customer is promoted and keeps their password.
    let customer = register_ok(&app, "ada@example.com").await;
    let promoted = app
        .state
        .ensure_admin("ada@example.com", "another Password 1")
        .await
        .unwrap();
    assert_eq!(promoted, customer);
    assert_eq!(login_pair(&app, "ada@example.com").await["role"], "admin");

    // A weak bootstrap password is refused.
    let weak = app.state.ensure_admin("root@example.com", "admin").await;
    assert!(weak.is_err());
}

#[sqlx::test(migrator = "test_support::MIGRATOR")]
async fn it_should_answer_a_repeated_registration_from_its_idempotency_key(pool: PgPool) {
    let app = spawn(pool).await;
    let send = || {
        app.client
            .post(app.url("/auth/register"))
            .header("idempotency-key", "register-ada-1")
            .json(&json!({"email": "ada@example.com", "password": PASSWORD, "full_name": "Ada"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_credentials")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[test]
fn it_should_document_the_auth_and_user_endpoints() {
    use utoipa::OpenApi;

    #[derive(OpenApi)]
    #[openapi(paths(
        write_api::http::auth::register,
        write_api::http::auth::login,
        write_api::http::auth::refresh,
        write_api::http::auth::logout,
        write_api::http::users::update_profile,
        write_api::http::users::change_role,
        write_api::http::users::erase,
    ))]
    struct Doc;

    let doc = serde_json::to_value(Doc::openapi()).unwrap();
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/role",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "RegisterRequest",
        "TokenResponse",
        "ProfileResponse",
        "Role",
    ] {
        assert!(schemas[schema].is_object(), "{schema} missing: {schemas}");
    }
    assert_eq!(
        schemas["TokenResponse"]["properties"]["role"]["$ref"],
        "#/components/schemas/Role"
    );
    assert_eq!(
        schemas["Role"]["enum"],
        json!(["customer", "agent", "analyst", "auditor", "admin"])
    );
}
