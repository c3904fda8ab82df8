//! The REST API over `/api/v1`: routes, extractors, request and response
//! bodies, the OpenAPI document, and the one mapping of command errors to
//! RFC 9457 problem documents. Every command runs in the `application`
//! crate; a handler parses the request, calls it, and shapes the answer,
//! which carries the `position` the command reached so a client can read
//! its own writes.
//!
//! # Layout
//! - [`http`]: one module per area (`auth`, `users`, `flights`, `bookings`,
//!   `payments`, `sagas`), each exposing `router()`; [`http::router`]
//!   merges them with the middleware (idempotency keys, body limit,
//!   timeouts).
//! - [`error`]: [`ApiError`], its problem documents, and `From<CommandError>`.
//! - [`extract`]: extractors whose rejections are problem documents; the
//!   caller from `Authorization: Bearer`.
//! - [`reply`]: an accepted command's answer.
//! - [`openapi`]: the OpenAPI document, generated from the handlers.
//! - [`state`]: the handlers' shared state.

pub mod error;
pub mod extract;
pub mod http;
pub mod openapi;
pub mod reply;
pub mod state;

pub use error::{ApiError, ApiResult};
pub use http::router;
pub use state::AppState;
