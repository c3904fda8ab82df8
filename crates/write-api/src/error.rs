//! The API's one error type: every failure becomes an RFC 9457
//! `application/problem+json` answer with a stable upper-case `code`.
//! Unexpected errors are logged with their cause and answered with a bare
//! 500 whose details never reach the client.

use application::CommandError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub type ApiResult<T> = Result<T, ApiError>;

pub use application::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the body parsed but its content is invalid.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 400: the request could not be read (malformed JSON, a bad id...).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// 403 with a specific code (`ACCOUNT_SUSPENDED`).
    #[error("{detail}")]
    Refused { code: &'static str, detail: String },
    #[error("{0}")]
    NotFound(String),
    /// 409: the named seats are held or sold.
    #[error("seats not available: {}", .0.join(", "))]
    SeatUnavailable(Vec<String>),
    /// 409 with a specific code (`EMAIL_TAKEN`, `INVALID_STATE`, `CONFLICT`...).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 422: the same Idempotency-Key was used with a different request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn invalid_state(detail: impl Into<String>) -> Self {
        Self::Conflict {
            code: "INVALID_STATE",
            detail: detail.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Refused { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::SeatUnavailable(_) | Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::Refused { code, .. } => code,
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::SeatUnavailable(_) => "SEAT_UNAVAILABLE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::TooManyRequests { .. } => "RATE_LIMITED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Value {
        let status = self.status();
        let detail = match self {
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_string(),
            Self::Validation(errors) if errors.len() == 1 => {
                format!("{}: {}", errors[0].field, errors[0].message)
            }
            Self::Validation(_) => "the request has invalid fields".to_string(),
            other => other.to_string(),
        };
        let code = self.code();
        let mut body = json!({
            "type": format!("urn:problem:booking:{}", code.to_ascii_lowercase().replace('_', "-")),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
        });
        match self {
            Self::Validation(errors) => body["errors"] = json!(errors),
            Self::SeatUnavailable(seats) => body["seats"] = json!(seats),
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = %e, source = ?e.source(), "internal error");
        }
        problem_response(
            self.status(),
            self.problem(),
            match &self {
                Self::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
                _ => None,
            },
        )
    }
}

pub(crate) fn problem_response(
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(secs) = retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// The one mapping of command errors to HTTP answers.
impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Invalid(errors) => Self::Validation(errors),
            CommandError::Unauthorized(s) => Self::Unauthorized(s),
            CommandError::Forbidden(s) => Self::Forbidden(s),
            CommandError::NotFound(s) => Self::NotFound(s),
            CommandError::SeatUnavailable(seats) => Self::SeatUnavailable(seats),
            CommandError::CabinFull(detail) => Self::Conflict {
                code: "SEAT_UNAVAILABLE",
                detail,
            },
            CommandError::InvalidState(detail) => Self::Conflict {
                code: "INVALID_STATE",
                detail,
            },
            CommandError::HoldLimit(detail) => Self::Conflict {
                code: "HOLD_LIMIT",
                detail,
            },
            CommandError::DiscountUnavailable(detail) => Self::Conflict {
                code: "DISCOUNT_UNAVAILABLE",
                detail,
            },
            CommandError::AlreadyExists(detail) | CommandError::Concurrency(detail) => {
                Self::Conflict {
                    code: "CONFLICT",
                    detail,
                }
            }
            e @ CommandError::InvalidToken => Self::BadRequest {
                code: "INVALID_TOKEN",
                detail: e.to_string(),
            },
            e @ CommandError::AccountSuspended => Self::Refused {
                code: "ACCOUNT_SUSPENDED",
                detail: e.to_string(),
            },
            e @ CommandError::EmailTaken => Self::Conflict {
                code: "EMAIL_TAKEN",
                detail: e.to_string(),
            },
            CommandError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            CommandError::RateLimited { retry_after } => Self::TooManyRequests {
                retry_after_secs: retry_after.as_secs().max(1),
            },
            CommandError::Unavailable(s) => Self::Unavailable(s),
            CommandError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<auth::Error> for ApiError {
    fn from(e: auth::Error) -> Self {
        CommandError::from(e).into()
    }
}
