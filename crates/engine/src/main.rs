use clap::Parser;
use engine::app::{shutdown_signal, Application};
use engine::cli::{Cli, Command, ProjectionsCommand};
use engine::database::Database;
use engine::ops;

/// jemalloc rather than the system allocator: decoding events and
/// building read-model rows allocate many small, short-lived values, and
/// glibc's malloc took about a third of a projection rebuild's CPU (perf).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to standard error: standard output is the commands' answer
    // (`booking audit` prints JSON, `booking tail` the topic's envelopes).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    // Tailing a topic needs no database.
    if let Command::Tail {
        topic,
        group,
        from_beginning,
        brokers,
    } = &cli.command
    {
        return Ok(relay::tail(
            brokers,
            topic,
            group.as_deref(),
            *from_beginning,
            shutdown_signal(),
        )
        .await?);
    }
    let db = Database::open(cli.db.database_url.clone(), cli.db.data_dir.clone()).await?;
    let result = run(cli.command, &db.url).await;
    // Stop the embedded PostgreSQL (if any) whatever happened.
    db.shutdown().await?;
    result
}

async fn run(command: Command, database_url: &str) -> anyhow::Result<()> {
    match command {
        Command::Serve(mut config) => {
            config.database_url = engine::app::Secret::new(database_url);
            let app = Application::build(*config).await?;
            tracing::info!(addr = %app.local_addr(), "booking engine listening");
            app.run_until_stopped(shutdown_signal()).await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => ops::migrate(database_url).await,
        Command::Projections(ProjectionsCommand::Rebuild { name }) => {
            ops::rebuild(database_url, &name).await
        }
        Command::Projections(ProjectionsCommand::Status) => ops::status(database_url).await,
        Command::Audit(args) => engine::audit::run(database_url, args).await,
        Command::Tail { .. } => unreachable!("tail runs without a database"),
    }
}
