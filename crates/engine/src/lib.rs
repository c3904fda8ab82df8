//! The `booking` binary's library: command-line interface and the wiring of
//! every role (HTTP APIs, projectors, sagas) over one event store.
//!
//! # Layout
//! - [`audit`]: `booking audit ...`, the auditor's reads without an engine.
//! - [`app`]: `booking serve`: the [`app::Application`] (one router on one
//!   port), its configuration and the shutdown signal.
//! - [`cli`]: the commands and their flags (`booking --help`).
//! - [`database`]: which PostgreSQL to use: `DATABASE_URL`, or an embedded one.
//! - [`embedded_pg`]: runs a private PostgreSQL from the machine's installation.
//! - [`migrations`]: every crate's migrations, in one list.
//! - [`ops`]: one-shot operator commands (`migrate`, `projections ...`).
//!
//! The benchmarks are the `bench` crate's `booking-bench` binary.

pub mod app;
pub mod audit;
pub mod cli;
pub mod database;
pub mod embedded_pg;
pub mod migrations;
pub mod ops;
