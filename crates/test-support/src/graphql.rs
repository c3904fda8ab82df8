//! The read side in tests: projectors caught up on demand, GraphQL calls.

use std::time::Duration;

use domain::values::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::TestApp;

impl TestApp {
    /// Applies every event so far to the read models. The log is read
    /// only below the server-wide snapshot horizon, which transactions of
    /// tests running alongside hold back: catch up until every projector is
    /// past the last event.
    pub async fn catch_up(&self) {
        let head: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx::text::bigint, position FROM es_events ORDER BY tx DESC, position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .unwrap();
        let Some((tx, seq)) = head else { return };
        let head = eventstore::Position::new(tx as u64, seq as u64);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            for p in projections::all() {
                self.runner.catch_up(p.as_ref()).await.unwrap();
            }
            if projections::wait_for(&self.pool, head, Duration::ZERO)
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the projectors did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A token for a user who need not exist (the read side only checks it).
    pub fn token(&self, role: Role) -> (Uuid, String) {
        let id = Uuid::now_v7();
        (
            id,
            self.state.tokens.issue(id, role, Uuid::now_v7()).unwrap(),
        )
    }

    /// Schedules a flight: business rows 1-2 (AC, 4 seats) at
    /// `business_fare`, economy rows 10-`last_economy_row` (AB) at
    /// `economy_fare`. Returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn flight_on(
        &self,
        admin: &str,
        origin: &str,
        destination: &str,
        departs_at: &str,
        economy_fare: &str,
        business_fare: &str,
        last_economy_row: u32,
    ) -> Uuid {
        let departs: chrono::DateTime<chrono::Utc> = departs_at.parse().unwrap();
        let arrives = departs + chrono::Duration::hours(8);
        let r = self
            .post(
                "/flights",
                Some(admin),
                json!({
                    "flight_number": "BA117", "airline": "British Airways",
                    "origin": origin, "destination": destination,
                    "departs_at": departs.to_rfc3339(), "arrives_at": arrives.to_rfc3339(),
                    "currency": "USD",
                    "cabins": [
                        {"cabin": "business", "first_row": 1, "last_row": 2, "seat_letters": "AC", "fare": business_fare},
                        {"cabin": "economy", "first_row": 10, "last_row": last_economy_row, "seat_letters": "AB", "fare": economy_fare}
                    ]
                }),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        crate::id_in(r, "flight_id").await
    }

    /// Runs a GraphQL query; returns (HTTP status, body).
    pub async fn gql_with(
        &self,
        token: Option<&str>,
        read_after: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("http://{}/graphql", self.addr))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(p) = read_after {
            req = req.header("X-Read-After", p);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// Runs a query that must succeed; returns `data`.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql_with(token, None, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }

    /// Runs a query that must fail with `code`; returns the body.
    pub async fn gql_err(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        code: &str,
    ) -> Value {
        let (_, body) = self.gql_with(token, None, query, variables).await;
        assert_eq!(error_code(&body), Some(code.to_string()), "{body}");
        body
    }
}

/// The code of a GraphQL answer's first error.
pub fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}
