//! Paying a booking: the card goes to the payment provider for a token, and
//! the booking moves to `PAYMENT_PENDING` together with a new payment
//! stream. The fulfilment saga charges, confirms and tickets.
//!
//! The card number stops here: it is checked (Luhn), handed to the gateway
//! and dropped; the events keep the token, the brand and the last four
//! digits.

use std::time::Duration;

use chrono::Datelike;
use domain::booking::{Booking, BookingCommand};
use domain::payment::{Payment, PaymentCommand};
use domain::Aggregate;
use eventstore::{ExpectedVersion, StreamAppend, StreamId};
use gateway::{Card, CardToken, GatewayError};
use serde_json::json;
use uuid::Uuid;

use crate::bookings::owned_by;
use crate::command::encode_events;
use crate::error::{booking_error, CommandError, CommandResult, FieldError};
use crate::{CommandContext, Loaded, Outcome, Services};
use auth::Caller;

/// How long the provider gets to tokenize a card.
const TOKENIZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Card details as entered; never printed.
pub struct CardInput {
    pub card_number: String,
    pub expiry_month: u32,
    pub expiry_year: i32,
    pub cvc: String,
    pub holder: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardInput { .. }")
    }
}

impl CardInput {
    /// The card, if it can be charged on `today`; every invalid field named.
    fn validate(self, today: chrono::NaiveDate) -> CommandResult<Card> {
        let mut errors = vec![];
        let number: String = self
            .card_number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if !domain::payment::luhn_valid(&number) {
            errors.push(FieldError::new("card_number", "not a valid card number"));
        }
        if !(1..=12).contains(&self.expiry_month) {
            errors.push(FieldError::new("expiry_month", "must be 1 to 12"));
        } else {
            let (year, month) = (today.year(), today.month());
            if self.expiry_year < year || (self.expiry_year == year && self.expiry_month < month) {
                errors.push(FieldError::new("expiry_year", "the card has expired"));
            } else if self.expiry_year > year + 20 {
                errors.push(FieldError::new("expiry_year", "is too far in the future"));
            }
        }
        if !(3..=4).contains(&self.cvc.len()) || !self.cvc.chars().all(|c| c.is_ascii_digit()) {
            errors.push(FieldError::new("cvc", "must be 3 or 4 digits"));
        }
        let holder = domain::values::plain_text(&self.holder, 100);
        if holder.is_err() {
            errors.push(FieldError::new(
                "holder",
                "must be 1 to 100 characters, none of them control or invisible formatting characters",
            ));
        }
        if !errors.is_empty() {
            return Err(CommandError::Invalid(errors));
        }
        Ok(Card {
            number,
            expiry_month: self.expiry_month,
            expiry_year: self.expiry_year,
            cvc: self.cvc,
            holder: holder.unwrap_or_default(),
        })
    }
}

impl Services {
    /// Pays a held booking. The reply comes before the charge: the booking
    /// goes on to `TICKETED`, or `PAYMENT_FAILED` when the card is declined.
    pub async fn pay_booking(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        card: CardInput,
    ) -> CommandResult<Outcome> {
        let now = ctx.now;
        let card = card.validate(now.date_naive())?;
        // Refuse before the card goes anywhere.
        let loaded = self.commands.load::<Booking>(id).await?;
        owned_by(&loaded.state, caller)?;
        loaded
            .state
            .decide(BookingCommand::SubmitPayment {
                payment_id: Uuid::nil(),
                now,
            })
            .map_err(booking_error)?;

        let token = gateway::within(TOKENIZE_TIMEOUT, self.gateway.tokenize(&card))
            .await
            .map_err(|e| match e {
                GatewayError::Rejected(reason) => CommandError::invalid("card_number", reason),
                other => CommandError::Unavailable(other.to_string()),
            })?;
        drop(card);

        let payment_id = Uuid::now_v7();
        let (token, ctx) = (&token, &ctx);
        let first = std::sync::Mutex::new(Some(loaded));
        self.commands
            .retrying(Booking::CATEGORY, move || {
                // The booking read above serves the first attempt.
                let read = first.lock().unwrap_or_else(|p| p.into_inner()).take();
                async move {
                    let loaded = match read {
                        Some(l) => l,
                        None => self.commands.load::<Booking>(id).await?,
                    };
                    self.payment_request(ctx, &loaded, payment_id, token).await
                }
            })
            .await
    }

    /// The booking's `PAYMENT_PENDING` and its new payment stream, appended
    /// together.
    async fn payment_request(
        &self,
        ctx: &CommandContext,
        loaded: &Loaded<Booking>,
        payment_id: Uuid,
        token: &CardToken,
    ) -> CommandResult<Outcome> {
        let (id, now) = (loaded.state.id().unwrap_or_default(), ctx.now);
        let booking_events = loaded
            .state
            .decide(BookingCommand::SubmitPayment { payment_id, now })
            .map_err(booking_error)?;
        let total = loaded
            .state
            .info
            .as_ref()
            .map(|i| i.total)
            .ok_or_else(|| CommandError::not_found("booking"))?;
        let payment_events = Payment::default()
            .decide(PaymentCommand::Request {
                payment_id,
                booking_id: id,
                amount: total,
                card_brand: token.brand.clone(),
                card_last4: token.last4.clone(),
                card_token: Some(token.token.clone()),
                now,
            })
            .map_err(CommandError::internal)?;
        let sealer = self.commands.sealer();
        let appends = vec![
            StreamAppend {
                stream: StreamId::new(Booking::CATEGORY, id),
                expected: ExpectedVersion::Exact(loaded.version),
                events: encode_events(sealer, &booking_events, ctx).await?,
            },
            StreamAppend {
                stream: StreamId::new(Payment::CATEGORY, payment_id),
                expected: ExpectedVersion::NO_STREAM,
                events: encode_events(sealer, &payment_events, ctx).await?,
            },
        ];
        let reply = json!({
            "booking_id": id,
            "payment_id": payment_id,
            "status": "PAYMENT_PENDING",
            "amount": total,
            "card_brand": token.brand,
            "card_last4": token.last4,
        });
        self.commands.append(ctx, appends, reply).await
    }
}
