//! The pure booking domain: aggregates, commands, events, `decide`/`evolve`,
//! pricing and refund policy, and the value types every other crate parses
//! its input into.
//!
//! Nothing here does I/O, reads a clock or draws random numbers: time
//! (`now`), ids and random bytes arrive as arguments, so every decision is a
//! deterministic function that can be replayed by auditors and tested without
//! a database.
//!
//! # Layout
//!
//! - [`event`]: the [`Aggregate`] and [`DomainEvent`] traits, and
//!   [`encode`]/[`decode`] which split an event into the `(type, version,
//!   data)` triple the event store keeps and rebuild it (upcasting old
//!   versions on the way).
//! - [`values`]: parse-at-the-edge value types: [`Money`](values::Money),
//!   [`Seat`](values::Seat), [`Cabin`](values::Cabin), [`Pnr`](values::Pnr),
//!   [`Email`](values::Email), [`Personal`](values::Personal) and friends.
//! - [`user`]: registration, profile, role, erasure (`user-…` streams).
//! - [`flight`]: schedule, fares, reschedule, cancellation (`flight-…`).
//! - [`seats`]: the seat locks of one flight (`seats-…`), the heart of
//!   overbooking safety.
//! - [`booking`]: the booking lifecycle (`booking-…`) and
//!   [`place_booking`](booking::place_booking), the decision that holds
//!   seats and creates a booking in one go.
//! - [`discount`]: discount codes (`discount-…`), their terms and uses,
//!   redeemed inside the booking decision.
//! - [`payment`]: billing for one booking (`payment-…`): capture, refunds,
//!   invoices; card helpers.
//! - [`pricing`]: fares per passenger and the cancellation refund policy.
//! - [`fulfilment`]: the booking -> payment -> ticket process's decisions:
//!   what to do next, and each step over the booking and its seats.
//! - [`testing`] (feature `testing`): a given/when/then harness for
//!   aggregates, for this and other crates' tests.
//!
//! # Personal data
//!
//! Every event that carries personal data keeps it in exactly one top-level
//! field named `personal` (a [`Personal`](values::Personal)) next to a
//! top-level `subject` (the person whose key encrypts it). Infrastructure
//! encrypts that one field and, once the key is shredded, hands it back as
//! `Erased`; every `evolve` copes with that.

pub mod booking;
pub mod discount;
pub mod event;
pub mod flight;
pub mod fulfilment;
pub mod payment;
pub mod pricing;
pub mod seats;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod user;
pub mod values;
pub mod waitlist;

pub use event::{decode, encode, try_encode, Aggregate, DecodeError, DomainEvent, UpcastError};
