//! The central side: a durable pull consumer copies the stream into this
//! node's event log. A batch is acknowledged only once it is in the log
//! (fsynced), so what NATS lets go of is on disk; a redelivery (an
//! acknowledgement lost on the way) finds its id in the log and is skipped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{connect, context, ensure_stream, pause, servers_shown, NatsError, NatsStats};
use crate::backoff::Backoff;
use crate::config::NatsConfig;
use crate::events::log::EventLog;
use crate::events::model::Event;

/// Messages taken and appended with one fsync at most.
const BATCH: usize = 256;
/// The server says it is alive this often while there is nothing to send.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A pull request stands this long before a new one replaces it.
const PULL_EXPIRES: Duration = Duration::from_secs(30);

/// The consuming task of `serve`.
pub struct Consumer {
    pub stats: Arc<NatsStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Consumer {
    /// Starts copying the stream into `log`. Returns at once: connecting is
    /// the task's work, retried until NATS answers.
    pub fn start(cfg: NatsConfig, log: Arc<EventLog>) -> Consumer {
        let stats = Arc::new(NatsStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let task = Task {
            cfg,
            log,
            stats: stats.clone(),
            stop: stop_rx,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
            failing: false,
        };
        Consumer {
            stats,
            stop,
            task: tokio::spawn(task.run()),
        }
    }

    /// Stops after the batch in hand is in the log and acknowledged, or
    /// after `deadline` (what was not acknowledged is delivered again).
    pub async fn stop(self, deadline: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            task.abort();
        }
    }
}

struct Task {
    cfg: NatsConfig,
    log: Arc<EventLog>,
    stats: Arc<NatsStats>,
    stop: watch::Receiver<bool>,
    backoff: Backoff,
    failing: bool,
}

impl Task {
    async fn run(mut self) {
        let mut client: Option<async_nats::Client> = None;
        loop {
            match self.session(&mut client).await {
                Ok(()) => break,
                Err(e) => {
                    self.stats.consume_errors.fetch_add(1, Ordering::Relaxed);
                    if self.failing {
                        tracing::debug!(error = %e, "NATS: still cannot consume");
                    } else {
                        tracing::warn!(servers = %servers_shown(&self.cfg.url), error = %e,
                            "NATS: cannot take events from the stream; retrying");
                        self.failing = true;
                    }
                }
            }
            if pause(&mut self.backoff, &mut self.stop).await {
                break;
            }
        }
    }

    async fn session(&mut self, client: &mut Option<async_nats::Client>) -> Result<(), NatsError> {
        let c = match client {
            Some(c) => c.clone(),
            None => {
                let c = connect(&self.cfg, "pbxbridge serve", true).await?;
                *client = Some(c.clone());
                c
            }
        };
        let js = context(c);
        let stream = ensure_stream(&js, &self.cfg).await?;
        let config = pull::Config {
            durable_name: Some(self.cfg.consumer.clone()),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            filter_subject: format!("{}.>", self.cfg.subject_prefix),
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&self.cfg.consumer, config)
            .await
            .map_err(NatsError::Consumer)?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .heartbeat(HEARTBEAT)
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(NatsError::Messages)?;
        if self.failing {
            self.failing = false;
            tracing::info!("NATS: consuming again");
        }
        self.backoff.reset();
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            let first = tokio::select! {
                biased;
                _ = self.stop.changed() => return Ok(()),
                m = messages.next() => m,
            };
            let mut batch = vec![first.ok_or(NatsError::Ended)?.map_err(NatsError::Pull)?];
            let mut failed = None;
            while batch.len() < BATCH {
                match messages.next().now_or_never() {
                    Some(Some(Ok(m))) => batch.push(m),
                    Some(Some(Err(e))) => {
                        failed = Some(NatsError::Pull(e));
                        break;
                    }
                    Some(None) => {
                        failed = Some(NatsError::Ended);
                        break;
                    }
                    None => break,
                }
            }
            self.take(batch).await;
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }

    /// Appends the events of `batch`, then acknowledges it all (what is not
    /// an event too: it would only come back).
    async fn take(&mut self, batch: Vec<async_nats::jetstream::Message>) {
        let mut events = Vec::with_capacity(batch.len());
        for m in &batch {
            match serde_json::from_slice::<Event>(&m.payload) {
                Ok(ev) => events.push(ev),
                Err(e) => {
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(subject = %m.subject, error = %e,
                        "NATS: a message on the events stream is not an event; dropped");
                }
            }
        }
        if !events.is_empty() && !self.append(events).await {
            return;
        }
        for m in &batch {
            if let Err(e) = m.ack().await {
                // It comes again and the log skips it.
                self.stats.consume_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "NATS: acknowledgement not sent");
            }
        }
    }

    /// Retries until the disk takes it; `false` when stopped first (the
    /// batch is not acknowledged and comes again).
    async fn append(&mut self, events: Vec<Event>) -> bool {
        let n = events.len() as u64;
        let events = Arc::new(events);
        let mut wait = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            let (log, evs) = (self.log.clone(), events.clone());
            match tokio::task::spawn_blocking(move || log.append(&evs)).await {
                Ok(Ok(_)) => {
                    self.stats.consumed.fetch_add(n, Ordering::Relaxed);
                    return true;
                }
                Ok(Err(e)) => {
                    self.stats.consume_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, events = n, "cannot write events from NATS to the log; retrying");
                }
                Err(_) => return false,
            }
            if pause(&mut wait, &mut self.stop).await {
                return false;
            }
        }
    }
}
