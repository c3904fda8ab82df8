mod common;

use common::*;
use domain::payment::*;
use domain::testing::given;
use rust_decimal::Decimal;

const PAYMENT: u128 = 900;

fn request() -> PaymentCommand {
    PaymentCommand::Request {
        payment_id: id(PAYMENT),
        booking_id: id(BOOKING_A),
        amount: usd("840.00"),
        card_brand: "Visa".into(),
        card_last4: "4242".into(),
        card_token: Some("tok_test".into()),
        now: t0(),
    }
}

fn requested() -> PaymentEvent {
    PaymentEvent::PaymentRequested(PaymentRequested {
        payment_id: id(PAYMENT),
        booking_id: id(BOOKING_A),
        amount: usd("840.00"),
        card_brand: "visa".into(),
        card_last4: "4242".into(),
        card_token: Some("tok_test".into()),
        requested_at: t0(),
    })
}

fn captured() -> PaymentEvent {
    PaymentEvent::PaymentCaptured(PaymentCaptured {
        payment_id: id(PAYMENT),
        booking_id: id(BOOKING_A),
        amount: usd("840.00"),
        gateway_reference: "ch_1".into(),
        captured_at: t0(),
    })
}

fn refund(n: u128, amount: &str) -> PaymentCommand {
    PaymentCommand::Refund {
        refund_id: id(n),
        amount: usd(amount),
        reason: "cancelled".into(),
        now: t0(),
    }
}

#[test]
fn it_should_request_a_payment_without_the_card_number() {
    given::<Payment>([]).when(request()).then([requested()]);
    given::<Payment>([requested()])
        .when(request())
        .then_err(PaymentError::AlreadyRequested);
    let PaymentCommand::Request {
        payment_id,
        booking_id,
        card_brand,
        now,
        ..
    } = request()
    else {
        unreachable!()
    };
    given::<Payment>([])
        .when(PaymentCommand::Request {
            payment_id,
            booking_id,
            amount: usd("1"),
            card_brand,
            card_last4: "42".into(),
            card_token: None,
            now,
        })
        .then_err(PaymentError::InvalidCardLast4);
}

#[test]
fn it_should_capture_a_pending_payment_once() {
    let payment = given::<Payment>([requested()])
        .when(PaymentCommand::Capture {
            gateway_reference: "ch_1".into(),
            now: t0(),
        })
        .then([captured()]);
    assert_eq!(payment.status, Some(PaymentStatus::Captured));
    given::<Payment>([requested(), captured()])
        .when(PaymentCommand::Capture {
            gateway_reference: "ch_1".into(),
            now: t0(),
        })
        .then_err(PaymentError::AlreadyCaptured);
    given::<Payment>([])
        .when(PaymentCommand::Capture {
            gateway_reference: "ch_1".into(),
            now: t0(),
        })
        .then_err(PaymentError::NotRequested);
}

#[test]
fn it_should_decline_a_pending_payment() {
    let payment = given::<Payment>([requested()])
        .when(PaymentCommand::Decline {
            code: "card_declined".into(),
            reason: "declined".into(),
            now: t0(),
        })
        .then_events(|e| matches!(e, [PaymentEvent::PaymentDeclined(_)]));
    assert_eq!(payment.status, Some(PaymentStatus::Declined));
    given::<Payment>([requested(), captured()])
        .when(PaymentCommand::Decline {
            code: "x".into(),
            reason: "x".into(),
            now: t0(),
        })
        .then_err(PaymentError::InvalidState {
            status: PaymentStatus::Captured,
            action: "decline",
        });
}

#[test]
fn it_should_refund_part_then_the_rest() {
    let (_, partly) = given::<Payment>([requested(), captured()])
        .when(refund(1, "400.00"))
        .then_ok();
    assert_eq!(partly.status, Some(PaymentStatus::PartiallyRefunded));
    let (events, fully) = domain::testing::given_state(partly)
        .when(refund(2, "440.00"))
        .then_ok();
    assert!(
        matches!(&events[0], PaymentEvent::PaymentRefunded(r) if r.total_refunded == usd("840.00"))
    );
    assert_eq!(fully.status, Some(PaymentStatus::Refunded));
    domain::testing::given_state(fully)
        .when(refund(3, "0.01"))
        .then_err(PaymentError::InvalidState {
            status: PaymentStatus::Refunded,
            action: "refund",
        });
}

#[test]
fn it_should_not_refund_more_than_was_captured() {
    given::<Payment>([requested(), captured()])
        .when(refund(1, "840.01"))
        .then_err(PaymentError::ExceedsRefundable {
            requested: usd("840.01"),
            refundable: usd("840.00"),
        });
    given::<Payment>([requested(), captured()])
        .when(refund(1, "0"))
        .then_err(PaymentError::InvalidAmount);
}

#[test]
fn it_should_not_refund_an_uncaptured_payment() {
    given::<Payment>([requested()])
        .when(refund(1, "1"))
        .then_err(PaymentError::InvalidState {
            status: PaymentStatus::Pending,
            action: "refund",
        });
}

#[test]
fn it_should_recognise_a_repeated_refund() {
    let (_, state) = given::<Payment>([requested(), captured()])
        .when(refund(1, "1"))
        .then_ok();
    domain::testing::given_state(state)
        .when(refund(1, "1"))
        .then_err(PaymentError::DuplicateRefund(id(1)));
}

fn invoice(lines: Vec<InvoiceLineInput>) -> PaymentCommand {
    PaymentCommand::IssueInvoice {
        invoice_number: "INV-2030-0001".into(),
        tax_rate: Decimal::new(20, 2),
        lines,
        now: t0(),
    }
}

fn fare_line(quantity: u32) -> InvoiceLineInput {
    InvoiceLineInput {
        description: "Economy fare LHR-JFK".into(),
        quantity,
        unit_price: usd("420.00"),
        credit: false,
    }
}

#[test]
fn it_should_issue_an_invoice_showing_the_tax_inside_the_fares() {
    given::<Payment>([requested(), captured()]).when(invoice(vec![fare_line(2)])).then_events(|e| {
        matches!(&e[0], PaymentEvent::InvoiceIssued(i)
            if i.total == usd("840.00") && i.tax == usd("140.00") && i.subtotal == usd("700.00") && i.lines[0].amount == usd("840.00"))
    });
}

#[test]
fn it_should_refuse_an_invoice_that_does_not_add_up_or_comes_twice() {
    given::<Payment>([requested(), captured()])
        .when(invoice(vec![fare_line(1)]))
        .then_err(PaymentError::InvoiceTotalMismatch {
            lines: usd("420.00"),
            captured: usd("840.00"),
        });
    given::<Payment>([requested()])
        .when(invoice(vec![fare_line(2)]))
        .then_err_matching(|e| matches!(e, PaymentError::InvalidState { .. }));
    given::<Payment>([requested(), captured()])
        .when(invoice(vec![fare_line(0)]))
        .then_err(PaymentError::InvalidLines);
    let (_, invoiced) = given::<Payment>([requested(), captured()])
        .when(invoice(vec![fare_line(2)]))
        .then_ok();
    domain::testing::given_state(invoiced)
        .when(invoice(vec![fare_line(2)]))
        .then_err(PaymentError::AlreadyInvoiced);
}
