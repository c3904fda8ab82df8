//! `booking audit ...`: the auditor's reads with database access and no
//! running engine. The answers are the REST routes' (`/api/v1/audit`),
//! printed as JSON; a log or digest that does not verify exits 1, so a
//! scheduled job can alert on it. Each read is recorded like a REST one,
//! by `cli:<the OS user>`.

use std::io::Write as _;

use anyhow::Context as _;
use audit::{AsOf, Audit, LogQuery, SignedDigest};
use eventstore::{PgEventStore, Position, Sealer, StreamId};
use futures::StreamExt as _;
use sqlx::PgPool;

use crate::cli::{AuditArgs, AuditCommand, DigestCommand};

pub async fn run(database_url: &str, args: AuditArgs) -> anyhow::Result<()> {
    let pool = PgPool::connect(database_url).await?;
    crate::migrations::run(&pool).await?;
    let seed = args
        .audit_key
        .as_deref()
        .map(audit::parse_seed)
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("BOOKING_AUDIT_KEY")?;
    let audit = Audit::new(
        PgEventStore::new(pool.clone()),
        Sealer::postgres(pool),
        seed,
    )
    .await?;
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let record = |action: &'static str, target: String| {
        let (audit, actor) = (audit.clone(), actor.clone());
        async move { audit.record(&actor, None, action, &target).await }
    };
    match args.command {
        AuditCommand::Verify { stream } => {
            let stream = stream.as_deref().map(StreamId::parse).transpose()?;
            record(
                "verify",
                stream.as_ref().map_or("*".into(), |s| s.to_string()),
            )
            .await?;
            let report = audit.verify(stream.as_ref()).await?;
            print_json(&report)?;
            anyhow::ensure!(report.ok, "the log does not verify");
        }
        AuditCommand::Export { after, out } => {
            let after = after.as_deref().map(str::parse::<Position>).transpose()?;
            record(
                "export",
                format!("after={}", after.map_or("start".into(), |p| p.to_string())),
            )
            .await?;
            let mut sink: Box<dyn std::io::Write> = match out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut pages = std::pin::pin!(audit.export(LogQuery {
                after,
                ..LogQuery::default()
            }));
            while let Some(page) = pages.next().await {
                sink.write_all(&page?)?;
            }
            sink.flush()?;
        }
        AuditCommand::State { stream, as_of } => {
            let stream = StreamId::parse(&stream)?;
            let at = as_of
                .as_deref()
                .map(str::parse::<AsOf>)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            record(
                "state",
                format!("{stream} as_of={}", as_of.as_deref().unwrap_or("now")),
            )
            .await?;
            print_json(&audit.state(&stream, at).await?)?;
        }
        AuditCommand::Digest { command: None } => {
            record("digest", "*".into()).await?;
            print_json(&audit.digest().await?)?;
        }
        AuditCommand::Digest {
            command: Some(DigestCommand::Verify { file }),
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let saved: SignedDigest =
                serde_json::from_str(&text).context("the file is not a digest")?;
            record(
                "digest_verify",
                saved
                    .digest
                    .position
                    .clone()
                    .unwrap_or_else(|| "empty".into()),
            )
            .await?;
            let check = audit.verify_digest(&saved).await?;
            print_json(&check)?;
            anyhow::ensure!(check.ok, "the log does not match the digest");
        }
    }
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
