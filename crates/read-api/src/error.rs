//! GraphQL errors with a stable `extensions.code`, the same codes as the
//! REST problem documents (`UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, ...).
//! Database failures are logged here and reach the client only as
//! `INTERNAL`.

use async_graphql::{Error, ErrorExtensions};

/// A stable, upper-case error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthorized,
    Forbidden,
    NotFound,
    BadRequest,
    StaleRead,
    QueryTooDeep,
    QueryTooComplex,
    /// More root fields (aliases included) than one operation may ask for.
    QueryTooWide,
    /// Too many requests or subscriptions.
    RateLimited,
    PayloadTooLarge,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::BadRequest => "BAD_REQUEST",
            Code::StaleRead => "STALE_READ",
            Code::QueryTooDeep => "QUERY_TOO_DEEP",
            Code::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Code::QueryTooWide => "QUERY_TOO_WIDE",
            Code::RateLimited => "RATE_LIMITED",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::Internal => "INTERNAL",
        }
    }
}

/// An error carrying `extensions.code`.
pub fn error(code: Code, message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, e| e.set("code", code.as_str()))
}

pub fn bad_request(message: impl Into<String>) -> Error {
    error(Code::BadRequest, message)
}

/// A failure the client cannot act on: logged with its cause, answered as
/// `INTERNAL` without details.
pub fn internal(cause: impl std::fmt::Display) -> Error {
    tracing::error!(error = %cause, "read side failure");
    error(Code::Internal, "internal error")
}

/// `?` on database calls inside resolvers.
pub trait OrInternal<T> {
    fn or_internal(self) -> async_graphql::Result<T>;
}

impl<T, E: std::fmt::Display> OrInternal<T> for Result<T, E> {
    fn or_internal(self) -> async_graphql::Result<T> {
        self.map_err(internal)
    }
}
