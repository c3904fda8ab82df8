//! Mail: what each notification says, and the SMTP transport (lettre) that
//! sends it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use uuid::Uuid;

/// The longest an SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The outgoing mail server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("BOOKING_SMTP_URL: {0}")]
    Url(String),
    #[error("BOOKING_MAIL_FROM: {0}")]
    From(String),
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl Mailer {
    /// `url` as lettre reads it: `smtp://host:port` (plain, or STARTTLS with
    /// `?tls=required` / `?tls=opportunistic`), `smtps://host:port` (TLS),
    /// and `user:password@` for authentication.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Url(e.to_string()))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| MailError::From(e.to_string()))?;
        Ok(Self { transport, from })
    }

    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        self.transport.send(message).await?;
        Ok(())
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }
}

/// A PDF to attach.
#[derive(Debug, Clone)]
pub struct Pdf {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What a mail is written from.
#[derive(Debug, Clone)]
pub struct Letter {
    pub delivery_id: Uuid,
    pub event_type: String,
    pub to_name: String,
    pub to_email: String,
    /// `BA117 LHR → JFK`, when it is about a flight.
    pub flight: Option<FlightLine>,
    pub data: Value,
    /// A reset or verification token, for account mails.
    pub token: Option<String>,
    pub attachment: Option<Pdf>,
}

#[derive(Debug, Clone)]
pub struct FlightLine {
    pub number: String,
    pub origin: String,
    pub destination: String,
    pub departs_at: DateTime<Utc>,
}

impl FlightLine {
    fn describe(&self) -> String {
        format!(
            "{} {} to {}, departing {}",
            self.number,
            self.origin,
            self.destination,
            self.departs_at.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A time of `data` as a reader reads it (`2027-01-05 09:15 UTC`); as
/// stored when it is not one.
fn when(v: &Value, key: &str) -> String {
    let raw = text(v, key);
    raw.parse::<DateTime<Utc>>()
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or(raw)
}

/// The subject and the plain-text body of `letter`.
pub fn compose(letter: &Letter) -> (String, String) {
    let d = &letter.data;
    let pnr = text(d, "pnr");
    let flight = letter
        .flight
        .as_ref()
        .map(FlightLine::describe)
        .unwrap_or_else(|| "your flight".into());
    let hello = format!("Hello {},\n\n", letter.to_name);
    let (subject, body) = match letter.event_type.as_str() {
        "booking.ticketed" => (
            format!("Your e-ticket for booking {pnr}"),
            format!(
                "Your booking {pnr} is paid and ticketed: {flight}.\n\
                 Ticket numbers: {}.\n\nYour e-ticket is attached.",
                d["tickets"]
                    .as_array()
                    .map(|t| t
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
        ),
        "booking.reminder" => (
            format!("Reminder: booking {pnr} departs in 24 hours"),
            format!("A reminder that {flight}. Booking reference {pnr}."),
        ),
        "booking.payment_failed" => (
            format!("Payment failed for booking {pnr}"),
            format!(
                "The payment for booking {pnr} ({flight}) did not go through: {}.\n\
                 Your seats are released; you may book again.",
                text(d, "reason")
            ),
        ),
        "booking.cancelled" => (
            format!("Booking {pnr} is cancelled"),
            format!(
                "Your booking {pnr} ({flight}) is cancelled: {}.\n\
                 Refund: {} {}.",
                text(d, "reason"),
                text(&d["refund"], "amount"),
                text(&d["refund"], "currency")
            ),
        ),
        "booking.expired" => (
            format!("Booking {pnr} expired unpaid"),
            format!("Your booking {pnr} ({flight}) was not paid in time; its seats are released."),
        ),
        "flight.rescheduled" => (
            format!("Booking {pnr}: your flight has a new time"),
            format!(
                "Your flight has a new time: {flight} (it was to depart {}).\n\
                 Booking reference {pnr}.",
                text(d, "previous_departs_at")
            ),
        ),
        "flight.cancelled" => (
            format!("Booking {pnr}: your flight is cancelled"),
            format!(
                "We are sorry: {flight} is cancelled ({}).\n\
                 Your booking {pnr} is cancelled and refunded in full.",
                text(d, "reason")
            ),
        ),
        "waitlist.offered" => {
            // The PNR is missed only when the offer's booking came in a
            // later batch: its id finds it all the same.
            let reference = if pnr.is_empty() {
                text(d, "booking_id")
            } else {
                pnr.clone()
            };
            (
                format!("Seats are held for you: booking {reference}"),
                format!(
                    "Seats came back on {flight} and, as you were next on the waiting list, \
                     they are held for you until {}.\n\
                     Pay booking {reference} before then to keep them; after that they go \
                     to the next in line.",
                    when(d, "expires_at")
                ),
            )
        }
        "account.password_reset" => (
            "Reset your password".to_string(),
            format!(
                "Someone (we hope you) asked to reset the password of this account.\n\n\
                 Reset token: {}\n\n\
                 Send it with your new password to POST /api/v1/auth/password-reset/confirm \
                 ({{\"token\": ..., \"new_password\": ...}}) before {}. It works once.\n\
                 If you did not ask, ignore this mail: your password stays as it is.",
                letter.token.as_deref().unwrap_or_default(),
                text(d, "expires_at")
            ),
        ),
        "account.verify_email" => (
            "Confirm your email address".to_string(),
            format!(
                "Welcome! Confirm this address by sending this token to \
                 POST /api/v1/auth/verify-email ({{\"token\": ...}}):\n\n{}",
                letter.token.as_deref().unwrap_or_default()
            ),
        ),
        other => (format!("About booking {pnr}"), format!("{other}: {d}")),
    };
    (
        subject,
        format!("{hello}{body}\n\n-- \nThe booking engine\n"),
    )
}

/// The message: headers that let a receiver dedupe (`Message-ID` and
/// `Booking-Delivery` are the delivery id), the text, and the attachment.
pub fn message(from: &Mailbox, letter: &Letter) -> Result<Message, MailError> {
    let (subject, body) = compose(letter);
    let to = Mailbox::new(
        Some(letter.to_name.clone()),
        letter
            .to_email
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?,
    );
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}@booking-engine>", letter.delivery_id)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Booking-Delivery"),
            letter.delivery_id.to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Booking-Event"),
            letter.event_type.clone(),
        ));
    let built = match &letter.attachment {
        None => builder.singlepart(SinglePart::plain(body)),
        Some(pdf) => builder.multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(Attachment::new(pdf.name.clone()).body(
                    pdf.bytes.clone(),
                    ContentType::parse("application/pdf").expect("a valid content type"),
                )),
        ),
    };
    built.map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn letter(event_type: &str, data: Value) -> Letter {
        Letter {
            delivery_id: Uuid::nil(),
            event_type: event_type.into(),
            to_name: "Ada Lovelace".into(),
            to_email: "ada@example.com".into(),
            flight: Some(FlightLine {
                number: "BA117".into(),
                origin: "LHR".into(),
                destination: "JFK".into(),
                departs_at: "2027-01-05T09:00:00Z".parse().unwrap(),
            }),
            data,
            token: Some("tok.en".into()),
            attachment: None,
        }
    }

    #[test]
    fn every_notification_names_its_booking_and_flight() {
        for t in [
            "booking.ticketed",
            "booking.reminder",
            "booking.payment_failed",
            "booking.cancelled",
            "booking.expired",
            "flight.rescheduled",
            "flight.cancelled",
            "waitlist.offered",
        ] {
            let (subject, body) = compose(&letter(
                t,
                json!({"pnr": "K7Q2MZ", "tickets": ["1250000000001"]}),
            ));
            assert!(subject.contains("K7Q2MZ"), "{t}: {subject}");
            assert!(
                body.contains("BA117 LHR to JFK, departing 2027-01-05 09:00 UTC"),
                "{t}: {body}"
            );
            assert!(body.starts_with("Hello Ada Lovelace"), "{t}");
        }
    }

    #[test]
    fn a_waiting_list_offer_says_until_when_the_seats_are_held() {
        let data = json!({
            "entry_id": Uuid::nil(),
            "booking_id": "0190a4c2-9d1e-7c4b-8f3a-2b6e5d4c3b2a",
            "pnr": "W4ZTKQ",
            "expires_at": "2027-01-04T09:15:00.123456Z",
        });
        let (subject, body) = compose(&letter("waitlist.offered", data.clone()));
        assert_eq!(subject, "Seats are held for you: booking W4ZTKQ");
        assert!(
            body.contains("held for you until 2027-01-04 09:15 UTC"),
            "{body}"
        );
        assert!(body.contains("Pay booking W4ZTKQ"), "{body}");
        // Without the PNR, the booking's id.
        let mut no_pnr = data;
        no_pnr["pnr"] = Value::Null;
        let (subject, _) = compose(&letter("waitlist.offered", no_pnr));
        assert_eq!(
            subject,
            "Seats are held for you: booking 0190a4c2-9d1e-7c4b-8f3a-2b6e5d4c3b2a"
        );
    }

    #[test]
    fn account_mails_carry_their_token() {
        for t in ["account.password_reset", "account.verify_email"] {
            let (_, body) = compose(&letter(t, json!({})));
            assert!(body.contains("tok.en"), "{t}");
        }
    }

    #[test]
    fn the_message_carries_the_delivery_id_and_the_attachment() {
        let mut l = letter("booking.ticketed", json!({"pnr": "K7Q2MZ"}));
        l.attachment = Some(Pdf {
            name: "e-ticket-K7Q2MZ.pdf".into(),
            bytes: b"%PDF-1.4".to_vec(),
        });
        let from: Mailbox = "Booking <booking@example.com>".parse().unwrap();
        let raw = String::from_utf8(message(&from, &l).unwrap().formatted()).unwrap();
        assert!(raw.contains(&format!("Message-ID: <{}@booking-engine>", Uuid::nil())));
        assert!(raw.contains(&format!("Booking-Delivery: {}", Uuid::nil())));
        assert!(raw.contains("e-ticket-K7Q2MZ.pdf"));
        assert!(raw.contains("application/pdf"));
    }
}
