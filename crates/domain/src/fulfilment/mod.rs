//! The fulfilment process manager's decisions, pure (the process itself,
//! with its I/O, is the `sagas` crate): from the booking and
//! its payment as they stand (and the saga's own progress), what to do next.
//!
//! ```text
//! HELD ──(hold expires)──────────────────────────────▶ ExpireHold
//! PAYMENT_PENDING, payment pending ──────────────────▶ Charge
//!                  (hold expired / payment timed out) ▶ ExpireHold / FailPayment
//!                  payment captured ─────────────────▶ Confirm (seats + booking)
//!                  payment declined ─────────────────▶ FailPayment (seats released)
//! CONFIRMED ─────────────────────────────────────────▶ IssueTickets
//! TICKETED, not invoiced ────────────────────────────▶ IssueInvoice, then Finish
//! CANCELLED / EXPIRED / PAYMENT_FAILED / FAILED ─────▶ settle the payment
//!     (learn a started charge's outcome, void an unstarted one), then run
//!     the registered compensations newest first, then Finish
//! ```
//!
//! Deciding from the aggregates' current state, rather than from a stored
//! step pointer, is what makes the process crash-proof: a worker that dies
//! anywhere leaves the log and the provider in a state the next worker
//! reads, and every action it may repeat is idempotent (command ids derived
//! from the saga and the step, provider idempotency keys likewise).
//!
//! Seats move in the same transaction as the booking transition that needs
//! it (confirm with confirm, release with payment failure, expiry with
//! expiry, return with failure or cancellation), so the seat compensations
//! are done by the time a booking is final; the money compensation is a
//! separate step because it talks to the provider.

mod status;
mod steps;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::booking::{Booking, BookingStatus};
use crate::payment::{Payment, PaymentStatus};
use crate::values::Money;

pub use status::{SagaKind, SagaStatus, UnknownName};
pub use steps::{
    complete, confirm, expire_hold, fail_payment, fail_ticketing, Completed, StepEvents,
    StepRefused,
};

/// What undoes a step; registered before the step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compensation {
    /// Give held seats back (registered when the saga starts).
    ReleaseSeats,
    /// Refund what was captured (registered before the charge).
    RefundPayment,
    /// Put sold seats back on sale (registered before the confirmation).
    ReturnSeats,
}

impl Compensation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Compensation::ReleaseSeats => "release_seats",
            Compensation::RefundPayment => "refund_payment",
            Compensation::ReturnSeats => "return_seats",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub name: Compensation,
    pub done: bool,
}

/// The saga's own memory, beyond what the aggregates say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Set (durably) before the first charge call: from then on the charge's
    /// outcome has to be learnt from the provider, never assumed.
    pub charge_started: bool,
    pub compensations: Vec<Registered>,
    /// When a submitted payment stops being worth waiting for.
    pub payment_deadline: Option<DateTime<Utc>>,
    /// The move differences (their payment ids) whose charge started: as
    /// for the first payment, their outcome is learnt, never assumed.
    #[serde(default)]
    pub supplements_charged: Vec<uuid::Uuid>,
}

impl Progress {
    /// A new fulfilment: the booking's seats are held, so their release is
    /// the first compensation.
    pub fn started() -> Self {
        Self {
            compensations: vec![Registered {
                name: Compensation::ReleaseSeats,
                done: false,
            }],
            ..Self::default()
        }
    }

    /// Registers `c` unless it already is.
    pub fn register(&mut self, c: Compensation) -> bool {
        if self.compensations.iter().any(|r| r.name == c) {
            return false;
        }
        self.compensations.push(Registered {
            name: c,
            done: false,
        });
        true
    }

    pub fn mark_done(&mut self, c: Compensation) {
        for r in &mut self.compensations {
            if r.name == c {
                r.done = true;
            }
        }
    }
}

/// How a saga ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ticketed and invoiced.
    Completed,
    /// The booking ended otherwise; seats and money are back where they
    /// belong.
    Compensated,
}

/// The step a saga is at, for people reading `sagas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    AwaitingPayment,
    /// A flight-cancellation saga cancelling the flight's bookings.
    CancellingBookings,
    Charging,
    /// A paid booking moving to a dearer flight: charging the difference,
    /// then moving it (or letting the move go).
    Moving,
    Confirming,
    Ticketing,
    Invoicing,
    Compensating,
    Done,
}

status::names!(Step {
    AwaitingPayment => "AWAITING_PAYMENT",
    CancellingBookings => "CANCELLING_BOOKINGS",
    Charging => "CHARGING",
    Moving => "MOVING",
    Confirming => "CONFIRMING",
    Ticketing => "TICKETING",
    Invoicing => "INVOICING",
    Compensating => "COMPENSATING",
    Done => "DONE",
});

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing to do until `until` (a deadline), or until something happens
    /// to the booking.
    Wait {
        step: Step,
        until: Option<DateTime<Utc>>,
    },
    /// The hold ran out: booking `EXPIRED`, the hold recorded as expired.
    ExpireHold,
    /// Charge the card (or learn what a started charge became).
    Charge,
    /// Close a payment that was never sent to the provider.
    VoidPayment,
    /// Seats sold and booking `CONFIRMED`, together.
    Confirm,
    /// Booking `PAYMENT_FAILED`, seats released, together.
    FailPayment {
        reason: String,
    },
    IssueTickets,
    IssueInvoice,
    /// Charge a move's difference (or learn what a started charge became).
    ChargeSupplement {
        payment_id: Uuid,
    },
    /// Close a difference's payment that was never sent to the provider.
    VoidSupplement {
        payment_id: Uuid,
    },
    /// The difference is in: sell the new seats, return the old ones, move
    /// the booking (or abandon the move when that is refused).
    CompleteMove,
    /// Let the move go: held seats back, the difference owed back if it
    /// was `captured`.
    AbandonMove {
        captured: bool,
        reason: String,
    },
    /// The invoice of a move's difference.
    InvoiceSupplement {
        payment_id: Uuid,
    },
    /// Give back `amount` of payment `payment_id` (the booking's payment or
    /// a difference's).
    Refund {
        payment_id: Uuid,
        amount: Money,
    },
    /// A compensation with nothing (left) to do.
    MarkDone(Compensation),
    Finish(Outcome),
}

impl Action {
    /// The compensation to register before this action runs.
    pub fn registers(&self) -> Option<Compensation> {
        match self {
            Action::Charge => Some(Compensation::RefundPayment),
            Action::Confirm => Some(Compensation::ReturnSeats),
            _ => None,
        }
    }

    pub fn step(&self) -> Step {
        match self {
            Action::Wait { step, .. } => *step,
            Action::ExpireHold | Action::FailPayment { .. } => Step::Compensating,
            Action::Charge => Step::Charging,
            Action::Confirm => Step::Confirming,
            Action::IssueTickets => Step::Ticketing,
            Action::IssueInvoice | Action::InvoiceSupplement { .. } => Step::Invoicing,
            Action::ChargeSupplement { .. }
            | Action::VoidSupplement { .. }
            | Action::CompleteMove
            | Action::AbandonMove { .. } => Step::Moving,
            Action::VoidPayment | Action::Refund { .. } | Action::MarkDone(_) => Step::Compensating,
            Action::Finish(_) => Step::Done,
        }
    }
}

use BookingStatus as S;

/// What the fulfilment of `booking` (paid by `payment`, if any, and by
/// `supplements`, the payments of its moves' differences) does next.
pub fn next(
    booking: &Booking,
    payment: Option<&Payment>,
    supplements: &[Payment],
    progress: &Progress,
    now: DateTime<Utc>,
) -> Action {
    let (Some(info), Some(status)) = (&booking.info, booking.status) else {
        return Action::Wait {
            step: Step::AwaitingPayment,
            until: None,
        };
    };
    let expired = now >= info.hold_expires_at;
    let payment_status = payment.and_then(|p| p.status);
    match status {
        S::Held if expired => Action::ExpireHold,
        S::Held => Action::Wait {
            step: Step::AwaitingPayment,
            until: Some(info.hold_expires_at),
        },
        S::PaymentPending => match payment_status {
            // Booking and payment are appended together; a payment that
            // cannot be read yet will be.
            None => Action::Wait {
                step: Step::Charging,
                until: Some(info.hold_expires_at),
            },
            _ if expired => Action::ExpireHold,
            Some(PaymentStatus::Pending) => {
                if progress.payment_deadline.is_some_and(|d| now >= d) {
                    Action::FailPayment {
                        reason: "the payment did not complete in time".into(),
                    }
                } else {
                    Action::Charge
                }
            }
            Some(PaymentStatus::Captured) => Action::Confirm,
            Some(PaymentStatus::Declined) => Action::FailPayment {
                reason: payment
                    .and_then(|p| p.decline.as_ref())
                    .map_or_else(|| "payment declined".into(), |d| d.reason.clone()),
            },
            // Money went back while the booking waited: it cannot be
            // confirmed any more.
            Some(PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded) => {
                Action::FailPayment {
                    reason: "the payment was refunded".into(),
                }
            }
        },
        // A move waiting for its difference goes first; then what is owed
        // back (a passenger taken off, a cheaper flight) is refunded before
        // anything else happens to the booking.
        S::Confirmed | S::Ticketed => {
            if let Some(action) = moving(booking, supplements, progress, now) {
                return action;
            }
            if let Some(action) = settle_supplements(booking, supplements, progress) {
                return action;
            }
            if let Some(action) = refund(booking, payment, supplements) {
                return action;
            }
            if status == S::Confirmed {
                return Action::IssueTickets;
            }
            match payment {
                Some(p) if p.captured.is_some() && p.invoice.is_none() => Action::IssueInvoice,
                _ => match unbilled(booking, supplements) {
                    Some(payment_id) => Action::InvoiceSupplement { payment_id },
                    None => Action::Finish(Outcome::Completed),
                },
            }
        }
        S::Cancelled | S::Expired | S::PaymentFailed | S::Failed => {
            settle(booking, payment, supplements, progress)
        }
    }
}

/// A held move's next step: charge its difference, then move (or let the
/// move go when the difference was declined, or its hold ran out before a
/// charge started).
fn moving(
    booking: &Booking,
    supplements: &[Payment],
    progress: &Progress,
    now: DateTime<Utc>,
) -> Option<Action> {
    let held = booking.pending_move.as_ref()?;
    let supplement = supplements
        .iter()
        .find(|p| p.requested.as_ref().map(|r| r.payment_id) == Some(held.payment_id));
    let started = progress.supplements_charged.contains(&held.payment_id);
    Some(match supplement.and_then(|p| p.status) {
        // Appended with the move: one not readable yet will be.
        None => Action::Wait {
            step: Step::Moving,
            until: Some(held.hold_expires_at),
        },
        Some(PaymentStatus::Pending) if now >= held.hold_expires_at && !started => {
            Action::AbandonMove {
                captured: false,
                reason: "the move's hold ran out before the difference was charged".into(),
            }
        }
        Some(PaymentStatus::Pending) => Action::ChargeSupplement {
            payment_id: held.payment_id,
        },
        Some(PaymentStatus::Captured) => Action::CompleteMove,
        Some(PaymentStatus::Declined) => Action::AbandonMove {
            captured: false,
            reason: supplement.and_then(|p| p.decline.as_ref()).map_or_else(
                || "the difference was declined".into(),
                |d| d.reason.clone(),
            ),
        },
        // Refunded before the move completed: nothing left to move for.
        Some(PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded) => Action::AbandonMove {
            captured: true,
            reason: "the difference was refunded".into(),
        },
    })
}

/// A difference's payment left pending by an abandoned move: learn what a
/// started charge became, void one never sent.
fn settle_supplements(
    booking: &Booking,
    supplements: &[Payment],
    progress: &Progress,
) -> Option<Action> {
    supplements.iter().find_map(|p| {
        let r = p.requested.as_ref()?;
        let waiting = booking
            .pending_move
            .as_ref()
            .is_some_and(|m| m.payment_id == r.payment_id);
        (p.status == Some(PaymentStatus::Pending) && !waiting).then(|| {
            if progress.supplements_charged.contains(&r.payment_id) {
                Action::ChargeSupplement {
                    payment_id: r.payment_id,
                }
            } else {
                Action::VoidSupplement {
                    payment_id: r.payment_id,
                }
            }
        })
    })
}

/// What to refund next, from which payment: the newest charge first (a
/// move's difference before the booking's first payment), as much as it
/// holds.
fn refund(booking: &Booking, payment: Option<&Payment>, supplements: &[Payment]) -> Option<Action> {
    let all: Vec<&Payment> = payment.into_iter().chain(supplements).collect();
    let left = outstanding_refund(booking, &all)?;
    let from = all
        .iter()
        .rev()
        .find(|p| p.refundable().is_some_and(|r| r.is_positive()))?;
    let refundable = from.refundable()?;
    let amount = if left.compare(&refundable).ok()?.is_gt() {
        refundable
    } else {
        left
    };
    Some(Action::Refund {
        payment_id: from.requested.as_ref()?.payment_id,
        amount,
    })
}

/// A captured difference of a move that happened, not invoiced yet.
fn unbilled(booking: &Booking, supplements: &[Payment]) -> Option<Uuid> {
    supplements.iter().find_map(|p| {
        let id = p.requested.as_ref()?.payment_id;
        let moved = booking
            .supplements
            .iter()
            .any(|s| s.payment_id == id && s.moved);
        (moved && p.captured.is_some() && p.invoice.is_none()).then_some(id)
    })
}

/// A final booking: settle the payments, then run what is registered,
/// newest first.
fn settle(
    booking: &Booking,
    payment: Option<&Payment>,
    supplements: &[Payment],
    progress: &Progress,
) -> Action {
    if let Some(p) = payment {
        if p.status == Some(PaymentStatus::Pending) {
            return if progress.charge_started {
                Action::Charge
            } else {
                Action::VoidPayment
            };
        }
    }
    if let Some(action) = settle_supplements(booking, supplements, progress) {
        return action;
    }
    // Whatever is owed goes back even if the charge started before the
    // refund could be registered.
    if let Some(action) = refund(booking, payment, supplements) {
        return action;
    }
    match progress.compensations.iter().rev().find(|r| !r.done) {
        Some(r) => Action::MarkDone(r.name),
        None => Action::Finish(Outcome::Compensated),
    }
}

/// What the customer is still owed over all the booking's `payments`: on a
/// final booking, the policy's refunds for a cancellation and everything
/// captured otherwise; on a paid one, the refunds of the passengers taken
/// off it, of a move to a cheaper flight and of a move abandoned after its
/// difference was captured; less what was refunded already.
pub fn outstanding_refund(booking: &Booking, payments: &[&Payment]) -> Option<Money> {
    let currency = booking.info.as_ref()?.total.currency();
    let captured = Money::sum(
        currency,
        payments.iter().filter_map(|p| p.captured.as_ref()),
    )
    .ok()?;
    if !captured.is_positive() {
        return None;
    }
    let refunded = Money::sum(
        currency,
        payments
            .iter()
            .flat_map(|p| p.refunds.iter().map(|r| &r.amount)),
    )
    .ok()?;
    let owed = match booking.status? {
        S::Cancelled => booking.refund.unwrap_or(captured),
        S::Expired | S::PaymentFailed | S::Failed => captured,
        S::Confirmed | S::Ticketed => booking.refund?,
        _ => return None,
    };
    let owed = if owed.compare(&captured).ok()?.is_gt() {
        captured
    } else {
        owed
    };
    let left = owed.saturating_sub(&refunded).ok()?;
    (!left.is_zero()).then_some(left)
}
