//! `Idempotency-Key` on every command.
//!
//! The key is scoped to its authenticated caller and turned into a
//! command id; the request's method, path and body are digested into a
//! fingerprint. A key seen before answers with the stored first response
//! (same fingerprint) or 422 (different request). A new key travels to the
//! handler, which records it atomically with the command's events.

use application::Idempotency;
use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{success_status, BODY_LIMIT};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::state::AppState;

/// Namespace of command ids derived from idempotency keys.
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_9b2e_4d4a_4c1e_9a57_3e0b_8f3d_2a10);
const MAX_KEY_LEN: usize = 255;

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get("idempotency-key") else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => k.to_owned(),
        _ => {
            return ApiError::BadRequest {
                code: "INVALID_IDEMPOTENCY_KEY",
                detail: format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible characters"),
            }
            .into_response()
        }
    };
    // Keys are scoped to the authenticated caller: a request whose token
    // does not verify (forged, expired, of an ended session) gets no replay
    // and records nothing; its handler answers 401.
    let caller = match req.headers().get(axum::http::header::AUTHORIZATION) {
        None => "anonymous".to_string(),
        Some(h) => match h
            .to_str()
            .ok()
            .and_then(::auth::bearer_token)
            .and_then(|t| state.tokens.verify(t).ok())
        {
            Some(caller) => caller.user_id.to_string(),
            None => return next.run(req).await,
        },
    };

    let status = req
        .extensions()
        .get::<MatchedPath>()
        .map(|route| success_status(req.method(), route.as_str()));
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return ApiError::PayloadTooLarge.into_response(),
    };
    let mut digest = Sha256::new();
    digest.update(parts.method.as_str());
    digest.update([0]);
    digest.update(parts.uri.path());
    digest.update([0]);
    digest.update(fingerprint_body(&bytes));
    let idem = Idempotency {
        command_id: Uuid::new_v5(&KEY_NAMESPACE, format!("{caller}\n{key}").as_bytes()),
        fingerprint: digest.finalize().to_vec(),
    };
    match state.commands.replay_of(&idem).await {
        Ok(Some(first)) => {
            let status = status.unwrap_or(axum::http::StatusCode::OK);
            return Reply::new(status, first).into_response();
        }
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(idem);
    next.run(req).await
}

/// The body as fingerprinted. A card's number and code are left out (the
/// last four digits stay): a plain hash of a card number can be reversed by
/// trying the few numbers that fit its brand and last digits, and the
/// fingerprint is stored.
fn fingerprint_body(bytes: &[u8]) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut body)) = serde_json::from_slice(bytes) else {
        return bytes.to_vec();
    };
    if !body.contains_key("card_number") && !body.contains_key("cvc") {
        return bytes.to_vec();
    }
    if let Some(serde_json::Value::String(number)) = body.get("card_number") {
        let last4 = domain::payment::card_last4(number).unwrap_or_default();
        body.insert("card_number".into(), serde_json::Value::String(last4));
    }
    body.remove("cvc");
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::fingerprint_body;

    #[test]
    fn it_should_leave_card_numbers_out_of_fingerprints() {
        let a = fingerprint_body(
            br#"{"card_number": "4242424242424242", "cvc": "123", "holder": "A"}"#,
        );
        let text = String::from_utf8(a.clone()).unwrap();
        assert!(
            !text.contains("424242424242") && !text.contains("123"),
            "{text}"
        );
        assert!(text.contains("4242"));
        let b = fingerprint_body(
            br#"{"card_number": "4242424242424242", "cvc": "123", "holder": "B"}"#,
        );
        assert_ne!(a, b);
        assert_eq!(
            fingerprint_body(b"{\"reason\": \"x\"}"),
            b"{\"reason\": \"x\"}"
        );
    }
}
