//! The `booking` binary's library: command-line interface and the wiring of
//! every role (HTTP APIs, projectors, sagas) over one event store.
//!
//! # Layout
//! - [`app`]: `booking serve`: the [`app::Application`] (one router on one
//!   port), its configuration and the shutdown signal.
//! - [`cli`]: the commands and their flags (`booking --help`).
//! - [`database`]: which PostgreSQL to use: `DATABASE_URL`, or an embedded one.
//! - [`embedded_pg`]: runs a private PostgreSQL from the machine's installation.
//! - [`ops`]: one-shot operator commands (`migrate`, `projections ...`).
//! - [`ops`]: one-shot operator commands (`migrate`, `projections ...`).
//! - [`bench`]: `booking bench`, the benchmarks behind the README's figures.

pub mod app;
pub mod bench;
pub mod cli;
pub mod database;
pub mod embedded_pg;
pub mod ops;
