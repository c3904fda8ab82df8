//! An accepted command's answer: its reply as JSON, with the `position` it
//! reached, under the status the route answers with.

use application::Outcome;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The answer to an accepted (or replayed) command.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub outcome: Outcome,
}

impl Reply {
    pub fn new(status: StatusCode, outcome: Outcome) -> Self {
        Self { status, outcome }
    }

    pub fn ok(outcome: Outcome) -> Self {
        Self::new(StatusCode::OK, outcome)
    }

    pub fn created(outcome: Outcome) -> Self {
        Self::new(StatusCode::CREATED, outcome)
    }

    pub fn accepted(outcome: Outcome) -> Self {
        Self::new(StatusCode::ACCEPTED, outcome)
    }

    /// The body: the reply with `position` added.
    pub fn body(&self) -> Value {
        let mut body = self.outcome.reply.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.insert(
                "position".into(),
                Value::String(self.outcome.position.to_string()),
            );
        }
        body
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let replayed = self.outcome.replayed;
        let mut res = if self.status == StatusCode::NO_CONTENT {
            // A 204 carries no body: the position travels in a header.
            let mut res = StatusCode::NO_CONTENT.into_response();
            if let Ok(position) = HeaderValue::from_str(&self.outcome.position.to_string()) {
                res.headers_mut().insert("position", position);
            }
            res
        } else {
            (self.status, axum::Json(self.body())).into_response()
        };
        if replayed {
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        res
    }
}
