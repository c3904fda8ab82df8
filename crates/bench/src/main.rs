//! `booking-bench`: the benchmarks behind the README's figures.

use clap::{Parser, Subcommand};

/// jemalloc, as in the engine's own binary: the engine benchmarks run the
/// engine in this process.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Measure the booking engine on this machine. Each run uses a scratch
/// database on the PostgreSQL server DATABASE_URL names.
#[derive(Debug, Parser)]
#[command(name = "booking-bench", version, about, long_about)]
struct Cli {
    /// PostgreSQL server to run on, e.g. postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Event store appends and catch-up reads against plain PostgreSQL.
    Store(bench::store::StoreBench),
    /// Booking creations end to end over HTTP: spread over many flights,
    /// and all on one hot flight.
    Http(bench::http::HttpBench),
    /// The read side: projection rebuild rate over a log of a million
    /// domain events, `searchFlights` latency over HTTP with 10,000 flights,
    /// and projection lag while bookings are written.
    Read(bench::read::ReadBench),
    /// One-stop `searchItineraries` latency over HTTP with 10,000 flights
    /// in the read model.
    Itineraries(bench::itineraries::ItineraryBench),
    /// Fulfilment by the sagas: bookings created and paid over HTTP, then
    /// ticketed; bookings TICKETED per second and payment-to-TICKETED
    /// latency, read from the log.
    Saga(bench::saga::SagaBench),
    /// The auditor's reads over a log of a million events: hash-chain
    /// verification, the signed digest and its check, and the NDJSON
    /// export in process and over HTTP, with its memory.
    Audit(bench::audit::AuditBench),
    /// The Kafka relay against a tansu broker: a backlog of events published
    /// from an empty checkpoint (and read back by a consumer group), and
    /// commit-to-consumer latency while bookings arrive at a fixed rate.
    Relay(bench::relay::RelayBench),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let url = &cli.database_url;
    match cli.command {
        Command::Store(args) => bench::store::run(url, args).await,
        Command::Http(args) => bench::http::run(url, args).await,
        Command::Read(args) => bench::read::run(url, args).await,
        Command::Itineraries(args) => bench::itineraries::run(url, args).await,
        Command::Saga(args) => bench::saga::run(url, args).await,
        Command::Audit(args) => bench::audit::run(url, args).await,
        Command::Relay(args) => bench::relay::run(url, args).await,
    }
}
