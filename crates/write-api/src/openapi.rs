//! The OpenAPI document, generated from the handlers' annotations.
//!
//! [`document`] lists every REST command of [`crate::http`]; the engine
//! serves it at `/api/v1/openapi.json`, and `schema/openapi.json` is its
//! checked-in copy (`tests/openapi.rs` fails when the two differ, and
//! rewrites the file with `UPDATE_SCHEMA=1`).
//!
//! Every error answer is an RFC 9457 [`Problem`] document: error responses
//! the handlers describe without a body are given that one here.

use axum::http::StatusCode;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::http::{
    audit, auth, bookings, discounts, flights, payments, sagas, users, waitlist, webhooks,
};

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request body.
#[derive(Debug, ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorDoc {
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem document, the body of every error answer.
#[derive(Debug, ToSchema)]
#[schema(example = json!({
    "type": "urn:problem:booking:seat-unavailable",
    "title": "Conflict",
    "status": 409,
    "detail": "seats not available: 12A",
    "code": "SEAT_UNAVAILABLE",
    "seats": ["12A"]
}))]
pub struct Problem {
    /// A URI naming the kind of problem, `urn:problem:booking:<code>`.
    pub r#type: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// Stable and upper case, for programs: `VALIDATION_FAILED`,
    /// `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, `SEAT_UNAVAILABLE`,
    /// `CONFLICT`, `INVALID_STATE`, `DISCOUNT_UNAVAILABLE`, `RATE_LIMITED`,
    /// `INTERNAL`...
    pub code: String,
    /// With `VALIDATION_FAILED`: the invalid fields.
    pub errors: Option<Vec<FieldErrorDoc>>,
    /// With `SEAT_UNAVAILABLE`: the seats held or sold.
    pub seats: Option<Vec<String>>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flight booking engine: commands",
        description = "REST commands of the event-sourced booking engine. JSON in and out; \
            money is `{\"amount\": \"420.00\", \"currency\": \"USD\"}`; times are RFC 3339 UTC; \
            ids are UUIDs. Every command accepts an `Idempotency-Key` header, and every \
            accepted command answers the `position` it reached in the log. Errors are \
            `application/problem+json`."
    ),
    paths(
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::change_password,
        auth::request_password_reset,
        auth::confirm_password_reset,
        auth::verify_email,
        users::update_profile,
        users::change_role,
        users::erase,
        users::suspend,
        users::reactivate,
        flights::schedule,
        flights::change_fare,
        flights::reschedule,
        flights::cancel,
        bookings::create,
        bookings::cancel,
        bookings::update_passenger,
        bookings::change_seat,
        bookings::cancel_passenger,
        bookings::move_booking,
        discounts::create,
        waitlist::join,
        waitlist::leave,
        payments::pay,
        sagas::retry,
        webhooks::register,
        webhooks::deliveries,
        webhooks::retry,
        audit::stream,
        audit::state_at,
        audit::events,
        audit::verify,
        audit::digest,
        audit::verify_digest,
        audit::public_key,
        audit::reads,
    ),
    components(schemas(
        Problem,
        FieldErrorDoc,
        auth::RegisterRequest,
        auth::RegisterResponse,
        auth::LoginRequest,
        auth::RefreshRequest,
        auth::TokenResponse,
        auth::ChangePasswordRequest,
        auth::PasswordResetRequest,
        auth::ConfirmPasswordResetRequest,
        auth::VerifyEmailRequest,
        users::RoleName,
        users::UpdateProfileRequest,
        users::ProfileResponse,
        users::ChangeRoleRequest,
        users::RoleResponse,
        users::SuspendRequest,
        users::AccountStatus,
        users::StatusResponse,
        flights::ScheduleFlightRequest,
        flights::CabinRequest,
        flights::ChangeFareRequest,
        flights::RescheduleRequest,
        flights::CancelFlightRequest,
        bookings::CreateBookingRequest,
        bookings::SeatInput,
        bookings::PassengerInput,
        bookings::CancelBookingRequest,
        bookings::UpdatePassengerRequest,
        bookings::ChangeSeatRequest,
        bookings::MoveBookingRequest,
        bookings::PassengerView,
        discounts::CreateDiscountCodeRequest,
        discounts::MoneyInput,
        waitlist::JoinWaitlistRequest,
        payments::PaymentRequest,
        audit::DigestBody,
        audit::CheckpointBody,
        audit::PublicKey,
        webhooks::RegisterWebhookRequest,
        webhooks::RegisteredWebhook,
        webhooks::Deliveries,
        webhooks::DeliveryView,
    )),
    modifiers(&BearerScheme, &CommonAnswers, &ProblemBodies, &OperationIds),
    tags(
        (name = "auth", description = "Registration, login, token refresh and logout"),
        (name = "users", description = "Profiles, roles and erasure"),
        (name = "flights", description = "Scheduling and changing flights (admin)"),
        (name = "bookings", description = "Booking seats, cancelling, editing passengers"),
        (name = "discounts", description = "Discount codes (admin); bookings redeem them"),
        (name = "waitlist", description = "Waiting lists of sold-out cabins; offers are HELD bookings"),
        (name = "sagas", description = "The fulfilment process managers (admin)"),
        (name = "webhooks", description = "Notification endpoints, their deliveries and retries (admin)"),
        (name = "audit", description = "Replaying, exporting and proving the log (auditors and admins)"),
    )
)]
pub struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty-printed JSON.
pub fn json() -> String {
    document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}

/// `bearer`: the access token from `/auth/login`, a JWT.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some("`Authorization: Bearer <access token>`"))
                        .build(),
                ),
            );
    }
}

/// Every operation of the document.
fn operations(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

/// The answers any operation may give besides its own: what the edge, the
/// extractors and the failure paths answer, so a client (and a fuzzer)
/// finds every status it can receive documented.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::ResponseBuilder;
        for operation in operations(openapi) {
            let has_body = operation.request_body.is_some();
            let has_path = operation.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path))
            });
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut answers: Vec<(&str, &str)> = Vec::new();
            if has_body || has_path {
                answers.push((
                    "400",
                    "`MALFORMED_JSON`, `INVALID_ID` or `BAD_REQUEST`: the request could not be read",
                ));
            }
            if secured {
                answers.push((
                    "401",
                    "`UNAUTHORIZED`: no valid access token of a live session",
                ));
                answers.push((
                    "403",
                    "`FORBIDDEN`: the caller's role or ownership does not allow it",
                ));
            }
            answers.push((
                "408",
                "The request took longer than 30 s; nothing it started was half done",
            ));
            if has_body {
                answers.push(("413", "`PAYLOAD_TOO_LARGE`: the body is over 64 KiB"));
                answers.push((
                    "415",
                    "`UNSUPPORTED_MEDIA_TYPE`: the body is not `application/json`",
                ));
                answers.push((
                    "422",
                    "`VALIDATION_FAILED`, with the invalid fields; or `IDEMPOTENCY_KEY_REUSED`",
                ));
            }
            answers.push((
                "429",
                "`RATE_LIMITED`: too many requests; see `Retry-After` and `RateLimit`",
            ));
            answers.push((
                "500",
                "`INTERNAL`: a fault of the server, logged with the request id",
            ));
            answers.push((
                "503",
                "`UNAVAILABLE`: a dependency is not available now; retry later",
            ));
            for (status, description) in answers {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| {
                        RefOr::T(ResponseBuilder::new().description(description).build())
                    });
            }
        }
    }
}

/// Gives every response described without words its status's reason
/// phrase, and every 4xx and 5xx response described without a body the
/// [`Problem`] body.
struct ProblemBodies;

impl Modify for ProblemBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for operation in operations(openapi) {
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if response.description.is_empty() {
                    if let Some(reason) = StatusCode::from_bytes(status.as_bytes())
                        .ok()
                        .and_then(|s| s.canonical_reason())
                    {
                        response.description = reason.to_string();
                    }
                }
                let is_error = status.starts_with('4') || status.starts_with('5');
                if is_error && response.content.is_empty() {
                    response.content.insert(
                        PROBLEM_JSON.to_string(),
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    );
                }
            }
        }
    }
}

/// Operation ids are the handler's name, qualified by its tag
/// (`bookings_cancel`, `flights_cancel`), so they are unique.
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for operation in operations(openapi) {
            let tag = operation.tags.as_ref().and_then(|t| t.first()).cloned();
            if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                if !id.starts_with(&format!("{tag}_")) {
                    *id = format!("{tag}_{id}");
                }
            }
        }
    }
}
