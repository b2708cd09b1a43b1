//! NATS JetStream between sensors and the central node (DESIGN §10): each
//! sensor's [`Publisher`] sends its event log to the stream, and `serve`'s
//! [`Consumer`] copies the stream into its own log, from which live calls,
//! SSE and webhooks are served once for every sensor.
//!
//! Every event is published with `Nats-Msg-Id` = its id, so the stream
//! stores a retried publish once; the consumer's log skips ids it holds, so
//! a redelivery is not seen twice either.

mod connect;
mod consume;
mod publish;
pub mod subject;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_nats::jetstream;

use crate::backoff::Backoff;
use crate::config::NatsConfig;

use connect::connect;

pub use consume::Consumer;
pub use publish::{load_cursor, Publisher, CURSOR_FILE};

/// A JetStream request (or a publish's acknowledgement) not answered in
/// this long has failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the stream remembers a `Nats-Msg-Id` to drop a repeat.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Counters of both directions; a node uses one side.
#[derive(Debug, Default)]
pub struct NatsStats {
    /// Events the stream acknowledged (a repeat it dropped included).
    pub published: AtomicU64,
    /// ... of which the stream already held (a retried publish).
    pub duplicates: AtomicU64,
    /// Failed attempts: connect, stream, publish or acknowledgement.
    pub publish_errors: AtomicU64,
    /// Events too large for the server, skipped.
    pub too_large: AtomicU64,
    /// Events in the log not yet acknowledged by the stream.
    pub backlog: AtomicU64,
    /// Messages taken from the stream into the log (repeats included).
    pub consumed: AtomicU64,
    pub consume_errors: AtomicU64,
    /// Messages that were not an event: acknowledged and dropped.
    pub malformed: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("events.nats.url: {url:?} is not a NATS server address: {source}")]
    Url {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to NATS: {0}")]
    Connect(#[source] async_nats::ConnectError),
    #[error("JetStream stream: {0}")]
    Stream(#[source] jetstream::context::CreateStreamError),
    #[error("JetStream consumer: {0}")]
    Consumer(#[source] jetstream::stream::ConsumerError),
    #[error("JetStream consumer messages: {0}")]
    Messages(#[source] jetstream::consumer::StreamError),
    #[error("JetStream pull: {0}")]
    Pull(#[source] jetstream::consumer::pull::MessagesError),
    #[error("publish: {0}")]
    Publish(#[source] jetstream::context::PublishError),
    #[error(transparent)]
    Log(#[from] crate::events::LogError),
    #[error("the connection to NATS was lost")]
    Disconnected,
    #[error("the consumer's message stream ended")]
    Ended,
}

/// The servers of `url` (comma-separated).
pub fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, NatsError> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse().map_err(|source| NatsError::Url {
                url: u.to_owned(),
                source,
            })
        })
        .collect()
}

/// `host:port` of every server, for logs: never a user or password.
fn servers_shown(url: &str) -> String {
    match server_addrs(url) {
        Ok(addrs) => addrs
            .iter()
            .map(|a| format!("{}:{}", a.host(), a.port()))
            .collect::<Vec<_>>()
            .join(","),
        Err(_) => "(bad url)".into(),
    }
}

fn context(client: async_nats::Client) -> jetstream::Context {
    jetstream::context::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .build(client)
}

/// The stream, made if missing (a stream that exists is used as it is).
async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &NatsConfig,
) -> Result<jetstream::stream::Stream, NatsError> {
    let config = jetstream::stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![format!("{}.>", cfg.subject_prefix)],
        max_age: Duration::from_secs(cfg.max_age_days.saturating_mul(86_400)),
        duplicate_window: DUPLICATE_WINDOW,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map_err(NatsError::Stream)
}

/// Sleeps for the next backoff step, or less when `stop` is set meanwhile.
/// `true`: stop was asked.
async fn pause(backoff: &mut Backoff, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(backoff.next_wait()) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_shown_without_credentials() {
        let shown = servers_shown("nats://u:hunter2@n1:4222, tls://n2");
        assert_eq!(shown, "n1:4222,n2:4222");
        assert!(server_addrs("nats://a:1,nats://b:2").unwrap().len() == 2);
        assert!(server_addrs("nats://[::1:4222").is_err());
    }
}
