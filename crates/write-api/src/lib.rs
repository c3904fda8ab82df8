//! The write side: REST commands over `/api/v1`.
//!
//! A request is authenticated, parsed into domain types, decided by the pure
//! domain and appended to the event store; the answer carries the
//! `position` the command reached so a client can read its own writes.
//!
//! # Layout
//! - [`http`]: one module per area (`auth`, `users`, `flights`, `bookings`),
//!   each exposing `router()`; [`http::router`] merges them with the
//!   middleware (request ids, idempotency keys, body limit, timeouts).
//! - [`commands`]: the one command path (load, decide, append, retry), and
//!   the per-flight [`commands::lane`] that serialises and group-commits hot
//!   flights.
//! - [`auth`]: access tokens, passwords, refresh tokens, login rate limits.
//! - [`error`]: the API's error type and its problem documents.
//! - [`extract`]: extractors whose rejections are problem documents.
//! - [`openapi`]: the OpenAPI document, generated from the handlers.
//! - [`state`]: configuration and shared handles.

pub mod auth;
pub mod commands;
pub mod error;
pub mod extract;
pub mod http;
pub mod openapi;
pub mod state;

pub use error::{ApiError, ApiResult};
pub use http::{router, router_with};
pub use state::{AppState, WriteConfig};
