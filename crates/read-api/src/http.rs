//! The HTTP face of the schema: `POST /graphql` runs queries, `GET /graphql`
//! is the GraphiQL explorer, `GET /graphql/ws` serves subscriptions
//! (graphql-transport-ws, and the older graphql-ws).
//!
//! Before a query runs: the bearer token is checked (a bad one answers
//! 401 with code `UNAUTHORIZED`), then `X-Read-After` is honoured (a
//! malformed one answers 400 `BAD_REQUEST`; read models that do not reach
//! it within [`ReadSettings::read_after_timeout`](crate::ReadSettings)
//! answer 503 `STALE_READ`, with `Retry-After: 1`). These answers are
//! GraphQL responses (`{"data": null, "errors": [...]}`) too.

use async_graphql::http::{GraphiQLSource, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use eventstore::Position;
use serde_json::json;

use crate::auth::{viewer_from_authorization, viewer_from_headers, Viewer};
use crate::error::Code;
use crate::subscription::ConnectionSubscriptions;
use crate::Served;

pub const READ_AFTER: &str = "x-read-after";

fn failure(status: StatusCode, code: Code, message: &str) -> Response {
    let body = json!({
        "data": null,
        "errors": [{"message": message, "extensions": {"code": code.as_str()}}],
    });
    let mut res = (status, axum::Json(body)).into_response();
    if code == Code::StaleRead {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

/// Largest accepted request body, as on the REST side.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The body of `POST /graphql`, at most [`BODY_LIMIT`] bytes, as one
/// GraphQL request (batches are not accepted: each would be a query).
fn request_of(
    body: Result<Bytes, BytesRejection>,
) -> Result<async_graphql::Request, Box<Response>> {
    let bytes = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Box::new(failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::PayloadTooLarge,
                "the request body is larger than 64 KiB",
            )))
        }
        Err(_) => {
            return Err(Box::new(failure(
                StatusCode::BAD_REQUEST,
                Code::BadRequest,
                "the request body could not be read",
            )))
        }
    };
    serde_json::from_slice(&bytes).map_err(|_| {
        Box::new(failure(
            StatusCode::BAD_REQUEST,
            Code::BadRequest,
            "the body must be one GraphQL request as JSON: {\"query\", \"variables\", \"operationName\"}",
        ))
    })
}

pub(crate) async fn graphql(
    State(served): State<Served>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match request_of(body) {
        Ok(r) => r,
        Err(answer) => return *answer,
    };
    let viewer = match viewer_from_headers(&served.state.tokens, &headers) {
        Ok(v) => v,
        Err(message) => return failure(StatusCode::UNAUTHORIZED, Code::Unauthorized, &message),
    };
    if let Some(value) = headers.get(READ_AFTER) {
        let Some(position) = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<Position>().ok())
        else {
            return failure(
                StatusCode::BAD_REQUEST,
                Code::BadRequest,
                "X-Read-After must be a position a command answered with (32 hex digits)",
            );
        };
        let timeout = served.state.settings.read_after_timeout;
        match projections::wait_for(&served.state.pool, position, timeout).await {
            Ok(()) => {}
            Err(projections::Error::Stale { wanted, reached }) => {
                return failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::StaleRead,
                    &format!("the read models have not reached {wanted} yet (at {reached}); retry"),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "waiting for the read models failed");
                return failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Code::Internal,
                    "internal error",
                );
            }
        }
    }
    let request = request.data(viewer);
    GraphQLResponse::from(served.schema.execute(request).await).into_response()
}

pub async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("Booking engine: GraphQL")
            .finish(),
    )
}

/// The token comes from the upgrade request's `Authorization` header or
/// from `connection_init`'s payload (`{"Authorization": "Bearer ..."}` or
/// `{"token": "..."}`), as browsers cannot set headers on websockets. A bad
/// token closes the connection.
pub(crate) async fn graphql_ws(
    State(served): State<Served>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = match viewer_from_headers(&served.state.tokens, &headers) {
        Ok(v) => v,
        Err(message) => return failure(StatusCode::UNAUTHORIZED, Code::Unauthorized, &message),
    };
    // Websockets per address are bounded (its subscriptions per websocket
    // are too): one client cannot make the watchers do unbounded work.
    let max = served.state.settings.max_connections_per_address;
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let place = match peer {
        Some(ip) => match served.sockets.open(ip, max) {
            Some(place) => Some(place),
            None => {
                return failure(
                    StatusCode::TOO_MANY_REQUESTS,
                    Code::RateLimited,
                    &format!("at most {max} open subscription connections per address"),
                )
            }
        },
        None => None,
    };
    let tokens = served.state.tokens.clone();
    let schema = served.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            // Held until the socket closes.
            let _place = place;
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = ["Authorization", "authorization", "token"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                        .map(str::to_owned);
                    let viewer = match token {
                        Some(t) => viewer_from_authorization(&tokens, &t)
                            .map_err(|m| crate::error::error(Code::Unauthorized, m))?,
                        None => from_header,
                    };
                    let mut data = Data::default();
                    data.insert::<Viewer>(viewer);
                    data.insert(ConnectionSubscriptions::default());
                    Ok(data)
                })
                .serve()
                .await
        })
}
