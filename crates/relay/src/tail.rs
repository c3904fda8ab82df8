//! `booking tail`: an operator's view of a topic, one envelope per line.

use std::io::Write as _;

use futures::StreamExt as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;

use crate::RelayError;

/// Prints the values of `topic` as they arrive, as consumer `group`
/// (a fresh group of its own when `None`), from the oldest retained
/// message or only new ones. Runs until `stop` resolves.
pub async fn tail(
    brokers: &str,
    topic: &str,
    group: Option<&str>,
    from_beginning: bool,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), RelayError> {
    let group = group.map_or_else(
        || format!("booking-tail-{}", uuid::Uuid::now_v7()),
        str::to_owned,
    );
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", &group)
        .set(
            "auto.offset.reset",
            if from_beginning { "earliest" } else { "latest" },
        )
        .set("enable.auto.commit", "true")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut stop = std::pin::pin!(stop);
    let mut messages = consumer.stream();
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            m = messages.next() => match m {
                None => return Ok(()),
                Some(Err(e)) => tracing::warn!(error = %e, "reading {topic}"),
                Some(Ok(m)) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(m.payload().unwrap_or_default());
                    let _ = out.write_all(b"\n");
                    let _ = out.flush();
                }
            }
        }
    }
}
