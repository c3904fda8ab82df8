//! The documents customers download, served from the read models:
//! `GET /api/v1/bookings/{id}/tickets.pdf` (the e-ticket) and
//! `GET /api/v1/invoices/{number}.pdf` (the invoice), rendered by the
//! `documents` crate.
//!
//! The booking's customer, agents, admins and auditors may read them;
//! others get 403, an unknown booking or invoice 404, a bad token 401,
//! each an RFC 9457 problem like the REST commands' answers.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use documents::{InvoiceRow, InvoiceView};
use domain::values::Role;
use projections::model::bookings::{booking_by, BookingRow};
use projections::model::documents::ticket_view;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::viewer_from_headers;
use crate::ReadState;

pub fn router(state: ReadState) -> Router {
    Router::new()
        .route("/api/v1/bookings/{id}/tickets.pdf", get(tickets))
        .route("/api/v1/invoices/{file}", get(invoice))
        .with_state(state)
}

/// An RFC 9457 problem answer.
fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("urn:problem:booking:{}", code.to_ascii_lowercase().replace('_', "-")),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn pdf(bytes: Vec<u8>, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a document could not be served");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "the document could not be made",
    )
}

/// The booking, if the caller may read its documents.
async fn readable(
    state: &ReadState,
    headers: &HeaderMap,
    booking: Uuid,
) -> Result<BookingRow, Response> {
    let viewer = viewer_from_headers(&state.tokens, headers)
        .map_err(|e| problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", &e))?;
    let caller = viewer.0.ok_or_else(|| {
        problem(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "this needs a bearer token",
        )
    })?;
    let row = booking_by(&state.pool, Some(booking), None)
        .await
        .map_err(internal)?
        .ok_or_else(|| problem(StatusCode::NOT_FOUND, "NOT_FOUND", "booking not found"))?;
    match caller.role {
        Role::Agent | Role::Admin | Role::Auditor => Ok(row),
        Role::Customer if row.customer_id == caller.user_id => Ok(row),
        _ => Err(problem(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this booking belongs to someone else",
        )),
    }
}

/// Get a booking's e-ticket (PDF).
async fn tickets(
    State(state): State<ReadState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return problem(StatusCode::NOT_FOUND, "NOT_FOUND", "booking not found");
    };
    let booking = match readable(&state, &headers, id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let view = match ticket_view(&state.pool, &booking).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    match documents::ticket_pdf(&view) {
        Ok(bytes) => pdf(bytes, &format!("e-ticket-{}.pdf", booking.pnr)),
        Err(e) => internal(e),
    }
}

/// Get an invoice (PDF) by its number, e.g. `INV-K7Q2MZ.pdf`.
async fn invoice(
    State(state): State<ReadState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let Some(number) = file.strip_suffix(".pdf") else {
        return problem(StatusCode::NOT_FOUND, "NOT_FOUND", "invoice not found");
    };
    // Authenticate before saying whether the number exists.
    match viewer_from_headers(&state.tokens, &headers) {
        Err(e) => return problem(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", &e),
        Ok(v) if v.0.is_none() => {
            return problem(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "this needs a bearer token",
            )
        }
        Ok(_) => {}
    }
    type InvoiceRecord = (
        Uuid,
        String,
        Value,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        chrono::DateTime<chrono::Utc>,
    );
    let row: Option<InvoiceRecord> = match sqlx::query_as(
        "SELECT booking_id, currency, lines, subtotal, tax_rate, tax, total, issued_at \
         FROM rm_invoices WHERE invoice_number = $1",
    )
    .bind(number)
    .fetch_optional(&state.pool)
    .await
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let Some((booking_id, currency, lines, subtotal, tax_rate, tax, total, issued_at)) = row else {
        return problem(StatusCode::NOT_FOUND, "NOT_FOUND", "invoice not found");
    };
    let booking = match readable(&state, &headers, booking_id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let money = |amount: &Value| -> String {
        let value = amount["amount"].as_str().unwrap_or("0");
        let currency = amount["currency"].as_str().unwrap_or(&currency);
        format!("{value} {currency}")
    };
    let rows: Vec<InvoiceRow> = lines
        .as_array()
        .map(|all| {
            all.iter()
                .map(|l| InvoiceRow {
                    description: l["description"].as_str().unwrap_or_default().to_owned(),
                    quantity: l["quantity"].as_u64().unwrap_or(1) as u32,
                    unit_price: money(&l["unit_price"]),
                    amount: money(&l["amount"]),
                    credit: l["credit"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    let view = InvoiceView {
        number: number.to_owned(),
        pnr: booking.pnr,
        issued_at: issued_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        lines: rows,
        subtotal: format!("{subtotal:.2} {currency}"),
        tax_rate: format!("{} %", (tax_rate * Decimal::ONE_HUNDRED).normalize()),
        tax: format!("{tax:.2} {currency}"),
        total: format!("{total:.2} {currency}"),
    };
    match documents::invoice_pdf(&view) {
        Ok(bytes) => pdf(bytes, &format!("{number}.pdf")),
        Err(e) => internal(e),
    }
}
