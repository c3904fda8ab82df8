//! Given/when/then for the fulfilment process manager's decisions: given
//! the booking's and the payment's histories (and the saga's progress), when
//! it looks at them at some moment, then this is its next action.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::booking::{
    Booking, BookingCommand, BookingEvent, BookingMoveHeld, BookingMoved, CancelledBy,
    IssuedTicket, MovedPassenger, NewPassenger, PassengerDetails, PassengerType,
};
use domain::fulfilment::{next, Action, Compensation, Outcome, Progress, Step};
use domain::payment::{InvoiceLineInput, Payment, PaymentCommand};
use domain::values::{Cabin, Currency, Money, Pnr, Seat, TicketNumber};
use domain::Aggregate;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}
fn hold_expiry() -> DateTime<Utc> {
    t0() + Duration::minutes(10)
}
fn move_expiry() -> DateTime<Utc> {
    t0() + Duration::minutes(35)
}
fn departs() -> DateTime<Utc> {
    t0() + Duration::days(10)
}
fn usd(s: &str) -> Money {
    Money::parse(s, Currency::USD).unwrap()
}
const BOOKING: Uuid = Uuid::from_u128(100);
const PAYMENT: Uuid = Uuid::from_u128(200);
const PASSENGER: Uuid = Uuid::from_u128(300);
const SUPPLEMENT: Uuid = Uuid::from_u128(201);
const LATER: Uuid = Uuid::from_u128(3);

/// A booking (and payment) history, built from real domain decisions.
struct Given {
    booking: Booking,
    payment: Option<Payment>,
    supplements: Vec<Payment>,
    progress: Progress,
}

fn given_a_held_booking() -> Given {
    let booking = Booking::default();
    let events = booking
        .decide(BookingCommand::Create {
            booking_id: BOOKING,
            pnr: Pnr::parse("ABCDEF").unwrap(),
            flight_id: Uuid::from_u128(1),
            customer_id: Uuid::from_u128(2),
            created_by: Uuid::from_u128(2),
            passengers: vec![NewPassenger {
                passenger_id: PASSENGER,
                kind: PassengerType::Adult,
                seat: Some(Seat::parse("12A").unwrap()),
                travels_with: None,
                cabin: Cabin::Economy,
                fare: usd("420.00"),
                details: PassengerDetails {
                    first_name: "Ada".into(),
                    last_name: "Lovelace".into(),
                    date_of_birth: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
                    email: None,
                    phone: None,
                    passport: None,
                },
            }],
            connections: vec![],
            total: usd("420.00"),
            discount: None,
            hold_expires_at: hold_expiry(),
            now: t0(),
        })
        .unwrap();
    Given {
        booking: Booking::fold(&events),
        payment: None,
        supplements: vec![],
        progress: Progress::started(),
    }
}

impl Given {
    fn booking(mut self, command: BookingCommand) -> Self {
        let events = self
            .booking
            .decide(command)
            .expect("the booking accepts it");
        self.booking = events.iter().fold(self.booking, |b, e| b.evolve(e));
        self
    }

    fn payment(mut self, command: PaymentCommand) -> Self {
        let payment = self.payment.take().unwrap_or_default();
        let events = payment.decide(command).expect("the payment accepts it");
        self.payment = Some(events.iter().fold(payment, |p, e| p.evolve(e)));
        self
    }

    fn submitted(self) -> Self {
        self.booking(BookingCommand::SubmitPayment {
            payment_id: PAYMENT,
            now: t0() + Duration::minutes(1),
        })
        .payment(PaymentCommand::Request {
            payment_id: PAYMENT,
            booking_id: BOOKING,
            amount: usd("420.00"),
            card_brand: "visa".into(),
            card_last4: "4242".into(),
            card_token: Some("tok_1".into()),
            now: t0() + Duration::minutes(1),
        })
    }

    fn charging(mut self) -> Self {
        self.progress.register(Compensation::RefundPayment);
        self.progress.charge_started = true;
        self
    }

    fn captured(self) -> Self {
        self.charging().payment(PaymentCommand::Capture {
            gateway_reference: "ch_1".into(),
            now: t0() + Duration::minutes(2),
        })
    }

    fn confirmed(mut self) -> Self {
        self.progress.register(Compensation::ReturnSeats);
        self.booking(BookingCommand::Confirm {
            now: t0() + Duration::minutes(2),
        })
    }

    /// A move to the later flight, held while its 80.00 difference is
    /// charged as payment `SUPPLEMENT`.
    fn moving(mut self) -> Self {
        let held = BookingMoveHeld {
            booking_id: BOOKING,
            from_flight_id: Uuid::from_u128(1),
            to_flight_id: LATER,
            passengers: moved_passengers(),
            total: usd("500.00"),
            difference: usd("80.00"),
            payment_id: SUPPLEMENT,
            hold_expires_at: move_expiry(),
            held_at: t0() + Duration::minutes(20),
        };
        self.booking = self.booking.evolve(&BookingEvent::BookingMoveHeld(held));
        self.supplement(PaymentCommand::Request {
            payment_id: SUPPLEMENT,
            booking_id: BOOKING,
            amount: usd("80.00"),
            card_brand: "visa".into(),
            card_last4: "4242".into(),
            card_token: Some("tok_1".into()),
            now: t0() + Duration::minutes(20),
        })
    }

    fn supplement(mut self, command: PaymentCommand) -> Self {
        let payment = self.supplements.pop().unwrap_or_default();
        let events = payment.decide(command).expect("the payment accepts it");
        self.supplements
            .push(events.iter().fold(payment, |p, e| p.evolve(e)));
        self
    }

    fn supplement_captured(mut self) -> Self {
        self.progress.supplements_charged.push(SUPPLEMENT);
        self.supplement(PaymentCommand::Capture {
            gateway_reference: "ch_2".into(),
            now: t0() + Duration::minutes(21),
        })
    }

    fn moved(mut self) -> Self {
        let moved = BookingMoved {
            booking_id: BOOKING,
            from_flight_id: Uuid::from_u128(1),
            to_flight_id: LATER,
            passengers: moved_passengers(),
            total: usd("500.00"),
            refund: usd("0.00"),
            moved_at: t0() + Duration::minutes(21),
        };
        self.booking = self.booking.evolve(&BookingEvent::BookingMoved(moved));
        self
    }

    fn invoiced(self) -> Self {
        self.payment(PaymentCommand::IssueInvoice {
            invoice_number: "INV-ABCDEF".into(),
            tax_rate: Default::default(),
            lines: vec![InvoiceLineInput::charge("Adult fare", usd("420.00"))],
            now: t0() + Duration::minutes(4),
        })
    }

    fn ticketed(self) -> Self {
        self.booking(BookingCommand::IssueTickets {
            tickets: vec![IssuedTicket::new(
                PASSENGER,
                TicketNumber::new(125, 1).unwrap(),
            )],
            now: t0() + Duration::minutes(3),
        })
    }

    fn refunded(self, amount: &str) -> Self {
        self.payment(PaymentCommand::Refund {
            refund_id: Uuid::from_u128(400),
            amount: usd(amount),
            reason: "refund".into(),
            now: t0() + Duration::minutes(30),
        })
    }

    fn expired(self) -> Self {
        self.booking(BookingCommand::Expire { now: hold_expiry() })
    }

    fn with_payment_deadline(mut self, at: DateTime<Utc>) -> Self {
        self.progress.payment_deadline = Some(at);
        self
    }

    fn when_at(&self, now: DateTime<Utc>) -> Action {
        next(
            &self.booking,
            self.payment.as_ref(),
            &self.supplements,
            &self.progress,
            now,
        )
    }

    fn when(&self) -> Action {
        self.when_at(t0() + Duration::minutes(5))
    }
}

#[test]
fn a_held_booking_waits_for_payment_until_its_hold_expires() {
    let g = given_a_held_booking();
    assert_eq!(
        g.when(),
        Action::Wait {
            step: Step::AwaitingPayment,
            until: Some(hold_expiry())
        }
    );
    assert_eq!(g.when_at(hold_expiry()), Action::ExpireHold);
}

#[test]
fn a_submitted_payment_is_charged_with_the_refund_registered_first() {
    let action = given_a_held_booking().submitted().when();
    assert_eq!(action, Action::Charge);
    assert_eq!(action.registers(), Some(Compensation::RefundPayment));
}

#[test]
fn a_pending_payment_past_its_deadline_fails_the_booking() {
    let g = given_a_held_booking()
        .submitted()
        .with_payment_deadline(t0() + Duration::minutes(3));
    assert!(matches!(g.when(), Action::FailPayment { reason } if reason.contains("in time")));
}

#[test]
fn a_pending_payment_past_the_hold_expires_the_booking() {
    let g = given_a_held_booking().submitted().charging();
    assert_eq!(g.when_at(hold_expiry()), Action::ExpireHold);
}

#[test]
fn a_capture_confirms_seats_and_booking_with_their_return_registered_first() {
    let action = given_a_held_booking().submitted().captured().when();
    assert_eq!(action, Action::Confirm);
    assert_eq!(action.registers(), Some(Compensation::ReturnSeats));
}

#[test]
fn a_capture_after_the_hold_expired_expires_the_booking_then_refunds_it_all() {
    let g = given_a_held_booking().submitted().captured();
    assert_eq!(g.when_at(hold_expiry()), Action::ExpireHold);
    let g = g.expired();
    assert_eq!(
        g.when_at(hold_expiry()),
        Action::Refund {
            payment_id: PAYMENT,
            amount: usd("420.00")
        }
    );
    // Refunded: the registered compensations run newest first, then done.
    let mut g = g.refunded("420.00");
    let mut done = vec![];
    loop {
        match g.when_at(hold_expiry()) {
            Action::MarkDone(c) => {
                done.push(c);
                g.progress.mark_done(c);
            }
            Action::Finish(Outcome::Compensated) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        done,
        [Compensation::RefundPayment, Compensation::ReleaseSeats]
    );
}

#[test]
fn a_decline_fails_the_payment_with_the_providers_reason() {
    let g = given_a_held_booking()
        .submitted()
        .charging()
        .payment(PaymentCommand::Decline {
            code: "insufficient_funds".into(),
            reason: "Your card has insufficient funds.".into(),
            now: t0() + Duration::minutes(2),
        });
    assert!(matches!(g.when(), Action::FailPayment { reason } if reason.contains("insufficient")));
    // Once failed nothing is owed: compensations close, nothing refunded.
    let g = g.booking(BookingCommand::MarkPaymentFailed {
        reason: "declined".into(),
    });
    assert_eq!(g.when(), Action::MarkDone(Compensation::RefundPayment));
}

#[test]
fn a_confirmed_booking_is_ticketed_then_invoiced_then_done() {
    let g = given_a_held_booking().submitted().captured().confirmed();
    assert_eq!(g.when(), Action::IssueTickets);
    let g = g.ticketed();
    assert_eq!(g.when(), Action::IssueInvoice);
    let g = g.payment(PaymentCommand::IssueInvoice {
        invoice_number: "INV-ABCDEF".into(),
        tax_rate: rust_decimal::Decimal::ZERO,
        lines: vec![InvoiceLineInput {
            description: "Fare".into(),
            quantity: 1,
            unit_price: usd("420.00"),
            credit: false,
        }],
        now: t0() + Duration::minutes(4),
    });
    assert_eq!(g.when(), Action::Finish(Outcome::Completed));
}

#[test]
fn a_ticketing_failure_is_refunded_in_full() {
    let g = given_a_held_booking()
        .submitted()
        .captured()
        .confirmed()
        .booking(BookingCommand::Fail {
            reason: "ticketing failed".into(),
        });
    assert_eq!(
        g.when(),
        Action::Refund {
            payment_id: PAYMENT,
            amount: usd("420.00")
        }
    );
}

#[test]
fn a_booking_that_ended_before_the_charge_voids_or_resolves_its_payment() {
    // Never sent to the provider: closed without a call.
    let g = given_a_held_booking().submitted().expired();
    assert_eq!(g.when_at(hold_expiry()), Action::VoidPayment);
    // Sent: its outcome must be learnt from the provider (same key).
    let g = given_a_held_booking().submitted().charging().expired();
    assert_eq!(g.when_at(hold_expiry()), Action::Charge);
}

#[test]
fn a_customer_cancellation_refunds_what_the_policy_allows() {
    let now = departs() - Duration::hours(3);
    let g = given_a_held_booking()
        .submitted()
        .captured()
        .confirmed()
        .ticketed()
        .booking(BookingCommand::Cancel {
            reason: "changed plans".into(),
            now,
            departs_at: departs(),
            by: CancelledBy::Customer,
        });
    assert_eq!(
        g.when_at(now),
        Action::Refund {
            payment_id: PAYMENT,
            amount: usd("210.00")
        }
    );
    let g = g.refunded("210.00");
    assert_eq!(g.when_at(now), Action::MarkDone(Compensation::ReturnSeats));
}

#[test]
fn a_flight_cancelled_while_paying_refunds_the_late_capture_in_full() {
    let g = given_a_held_booking()
        .submitted()
        .charging()
        .booking(BookingCommand::Cancel {
            reason: "flight cancelled".into(),
            now: t0() + Duration::minutes(2),
            departs_at: departs(),
            by: CancelledBy::FlightCancelled,
        });
    assert_eq!(g.when(), Action::Charge);
    let g = g.payment(PaymentCommand::Capture {
        gateway_reference: "ch_1".into(),
        now: t0() + Duration::minutes(3),
    });
    assert_eq!(
        g.when(),
        Action::Refund {
            payment_id: PAYMENT,
            amount: usd("420.00")
        }
    );
}

#[test]
fn an_unpaid_booking_cancelled_while_held_owes_nothing() {
    let g = given_a_held_booking().booking(BookingCommand::Cancel {
        reason: "changed plans".into(),
        now: t0() + Duration::minutes(2),
        departs_at: departs(),
        by: CancelledBy::Customer,
    });
    assert_eq!(g.when(), Action::MarkDone(Compensation::ReleaseSeats));
    let mut g = g;
    g.progress.mark_done(Compensation::ReleaseSeats);
    assert_eq!(g.when(), Action::Finish(Outcome::Compensated));
}

/// The passenger in seat 14C of the later flight, at 500.00.
fn moved_passengers() -> Vec<MovedPassenger> {
    vec![MovedPassenger {
        passenger_id: PASSENGER,
        seat: Some(Seat::parse("14C").unwrap()),
        fare: usd("500.00"),
    }]
}

fn paid_and_moving() -> Given {
    given_a_held_booking()
        .submitted()
        .captured()
        .confirmed()
        .ticketed()
        .invoiced()
        .moving()
}

#[test]
fn a_move_waiting_for_its_difference_charges_it_before_anything_else() {
    let action = paid_and_moving().when_at(t0() + Duration::minutes(20));
    assert_eq!(
        action,
        Action::ChargeSupplement {
            payment_id: SUPPLEMENT
        }
    );
    assert_eq!(action.step(), Step::Moving);
}

#[test]
fn a_captured_difference_completes_the_move() {
    let g = paid_and_moving().supplement_captured();
    assert_eq!(
        g.when_at(t0() + Duration::minutes(21)),
        Action::CompleteMove
    );
}

#[test]
fn a_declined_difference_abandons_the_move_with_nothing_to_refund() {
    let g = paid_and_moving().supplement(PaymentCommand::Decline {
        code: "card_declined".into(),
        reason: "insufficient funds".into(),
        now: t0() + Duration::minutes(21),
    });
    assert_eq!(
        g.when_at(t0() + Duration::minutes(21)),
        Action::AbandonMove {
            captured: false,
            reason: "insufficient funds".into()
        }
    );
}

#[test]
fn a_move_whose_hold_ran_out_before_any_charge_is_abandoned_and_its_payment_voided() {
    let g = paid_and_moving();
    assert_eq!(
        g.when_at(move_expiry()),
        Action::AbandonMove {
            captured: false,
            reason: "the move's hold ran out before the difference was charged".into()
        }
    );
    // Abandoned: the difference's payment was never sent, so it is voided.
    let mut g = g;
    g.booking = g.booking.evolve(&BookingEvent::BookingMoveAbandoned(
        domain::booking::BookingMoveAbandoned {
            booking_id: BOOKING,
            to_flight_id: LATER,
            payment_id: SUPPLEMENT,
            reason: "hold ran out".into(),
            refund: usd("0.00"),
            abandoned_at: move_expiry(),
        },
    ));
    assert_eq!(
        g.when_at(move_expiry()),
        Action::VoidSupplement {
            payment_id: SUPPLEMENT
        }
    );
}

#[test]
fn a_started_charge_is_learnt_even_when_the_hold_ran_out() {
    let mut g = paid_and_moving();
    g.progress.supplements_charged.push(SUPPLEMENT);
    assert_eq!(
        g.when_at(move_expiry()),
        Action::ChargeSupplement {
            payment_id: SUPPLEMENT
        }
    );
}

#[test]
fn once_moved_the_difference_is_invoiced_then_the_saga_completes() {
    let g = paid_and_moving().supplement_captured().moved();
    // The move voids the tickets: new ones first.
    assert_eq!(
        g.when_at(t0() + Duration::minutes(22)),
        Action::IssueTickets
    );
    let g = g.booking(BookingCommand::IssueTickets {
        tickets: vec![IssuedTicket::new(
            PASSENGER,
            TicketNumber::new(125, 2).unwrap(),
        )],
        now: t0() + Duration::minutes(22),
    });
    assert_eq!(
        g.when_at(t0() + Duration::minutes(22)),
        Action::InvoiceSupplement {
            payment_id: SUPPLEMENT
        }
    );
    let g = g.supplement(PaymentCommand::IssueInvoice {
        invoice_number: "INV-ABCDEF-2".into(),
        tax_rate: Default::default(),
        lines: vec![InvoiceLineInput::charge("Fare difference", usd("80.00"))],
        now: t0() + Duration::minutes(22),
    });
    assert_eq!(
        g.when_at(t0() + Duration::minutes(22)),
        Action::Finish(Outcome::Completed)
    );
}

#[test]
fn a_cancelled_moved_booking_is_refunded_from_the_difference_first_then_the_first_payment() {
    let g = paid_and_moving()
        .supplement_captured()
        .moved()
        .booking(BookingCommand::Cancel {
            reason: "plans changed".into(),
            now: t0() + Duration::minutes(30),
            departs_at: departs(),
            by: CancelledBy::Admin,
        });
    let refunded = g.booking.refund.expect("a refund was decided");
    assert_eq!(
        g.when_at(t0() + Duration::minutes(30)),
        Action::Refund {
            payment_id: SUPPLEMENT,
            amount: usd("80.00")
        }
    );
    let g = g.supplement(PaymentCommand::Refund {
        refund_id: Uuid::from_u128(9),
        amount: usd("80.00"),
        reason: "booking cancelled".into(),
        now: t0() + Duration::minutes(30),
    });
    assert_eq!(
        g.when_at(t0() + Duration::minutes(30)),
        Action::Refund {
            payment_id: PAYMENT,
            amount: refunded.checked_sub(&usd("80.00")).unwrap()
        }
    );
}
