//! The sensor side: the event log is the outbox. A durable cursor says
//! which events the stream has acknowledged; everything after it is
//! published again after a loss, and the `Nats-Msg-Id` lets the stream drop
//! what it already had. With NATS away the log keeps the events (its pin
//! holds them) and the daemon runs on. Events go in log order, and after a
//! loss they go again in log order on a new connection (see `connect`),
//! so the events of a call reach the stream in the order they happened.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::context::PublishAckFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{connect, context, ensure_stream, pause, servers_shown, NatsError, NatsStats};
use crate::backoff::Backoff;
use crate::config::NatsConfig;
use crate::events::log::{EventLog, Pin};

/// The cursor's file, in the event log's folder.
pub const CURSOR_FILE: &str = "nats-cursor";
/// Publishes awaiting their acknowledgement at once.
const MAX_IN_FLIGHT: usize = 256;
/// The cursor is written at most this often (and at stop).
const SAVE_EVERY: Duration = Duration::from_millis(200);
/// Room left beside an event for the subject and headers.
const OVERHEAD: usize = 512;

/// The last event the stream acknowledged, from `path`: 0 when there is
/// none yet, or when the file is unreadable (everything is published again;
/// the stream and the consumer drop the repeats).
pub fn load_cursor(path: &Path) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(path = %path.display(), "NATS cursor unreadable: publishing the whole event log again");
            0
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "NATS cursor unreadable: publishing the whole event log again");
            0
        }
    }
}

/// Writes a new file beside it and renames it over, so a crash leaves the
/// old cursor or the new one.
fn save_cursor(path: &Path, seq: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{seq}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The publishing task of a sensor.
pub struct Publisher {
    pub stats: Arc<NatsStats>,
    stop: watch::Sender<bool>,
    acked: Arc<AtomicU64>,
    cursor_path: PathBuf,
    task: JoinHandle<()>,
}

impl Publisher {
    /// Starts publishing `log` after the cursor kept in `cursor_path`.
    /// Returns at once: connecting is the task's work, retried until NATS
    /// answers.
    pub fn start(
        cfg: NatsConfig,
        sensor: &str,
        log: Arc<EventLog>,
        cursor_path: PathBuf,
    ) -> Publisher {
        let mut cursor = load_cursor(&cursor_path);
        if cursor > log.last_seq() {
            // The log was made anew under an old cursor: nothing of it
            // was published.
            tracing::warn!(
                cursor,
                last = log.last_seq(),
                "NATS cursor is past the event log's end: publishing the log from its start"
            );
            cursor = 0;
        }
        let stats = Arc::new(NatsStats::default());
        let acked = Arc::new(AtomicU64::new(cursor));
        let (stop, stop_rx) = watch::channel(false);
        let name = format!("pbxbridge {sensor}");
        let task = Task {
            pin: log.pin(cursor),
            log,
            cfg,
            name,
            stats: stats.clone(),
            acked: acked.clone(),
            path: cursor_path.clone(),
            saved: cursor,
            saved_at: Instant::now(),
            stop: stop_rx,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
            failing: false,
        };
        task.set_backlog();
        Publisher {
            stats,
            stop,
            acked,
            cursor_path,
            task: tokio::spawn(task.run()),
        }
    }

    /// The last event the stream acknowledged.
    pub fn cursor(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }

    /// Publishes what is left while NATS answers, for up to `deadline`,
    /// then stops; the cursor is saved either way.
    pub async fn stop(self, deadline: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            task.abort();
            let seq = self.acked.load(Ordering::Acquire);
            let path = self.cursor_path.clone();
            let saved = tokio::task::spawn_blocking(move || save_cursor(&path, seq)).await;
            if !matches!(saved, Ok(Ok(()))) {
                tracing::warn!(path = %self.cursor_path.display(), "cannot save the NATS cursor at stop; events after the last save are published again");
            }
            tracing::warn!(
                backlog = self.stats.backlog.load(Ordering::Relaxed),
                "NATS: events left unpublished at stop; they go at the next start"
            );
        }
    }
}

struct Task {
    cfg: NatsConfig,
    name: String,
    log: Arc<EventLog>,
    pin: Pin,
    stats: Arc<NatsStats>,
    acked: Arc<AtomicU64>,
    path: PathBuf,
    saved: u64,
    saved_at: Instant,
    stop: watch::Receiver<bool>,
    backoff: Backoff,
    failing: bool,
}

/// A publish on its way: `None` for an event skipped (too large), which
/// counts as done once those before it are.
type InFlight = VecDeque<(u64, Option<PublishAckFuture>)>;

impl Task {
    async fn run(mut self) {
        let mut client: Option<async_nats::Client> = None;
        loop {
            match self.session(&mut client).await {
                Ok(()) => break,
                Err(e) => {
                    // A new client for the next try: this one may hold
                    // publishes that must not go after a reconnect.
                    client = None;
                    self.set_backlog();
                    self.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                    let backlog = self.stats.backlog.load(Ordering::Relaxed);
                    if self.failing {
                        tracing::debug!(error = %e, backlog, "NATS: still cannot publish");
                    } else {
                        tracing::warn!(servers = %servers_shown(&self.cfg.url), error = %e, backlog,
                            "NATS: cannot publish events; they wait in the event log, retrying");
                        self.failing = true;
                    }
                }
            }
            self.save(true).await;
            if pause(&mut self.backoff, &mut self.stop).await {
                break;
            }
        }
        self.save(true).await;
    }

    /// Publishes until stopped and caught up (`Ok`) or until something
    /// fails (the caller waits, then comes back from the cursor).
    async fn session(&mut self, client: &mut Option<async_nats::Client>) -> Result<(), NatsError> {
        let c = match client {
            Some(c) => c.clone(),
            None => {
                let c = connect(&self.cfg, &self.name, false).await?;
                *client = Some(c.clone());
                c
            }
        };
        if c.connection_state() != State::Connected {
            return Err(NatsError::Disconnected);
        }
        let js = context(c.clone());
        ensure_stream(&js, &self.cfg).await?;
        let max_payload = c.server_info().max_payload;
        let mut tail = self.log.subscribe();
        let mut sent = self.acked.load(Ordering::Acquire);
        let mut inflight: InFlight = VecDeque::new();
        loop {
            let mut read = false;
            if inflight.len() < MAX_IN_FLIGHT && sent < self.log.last_seq() {
                let (log, from, n) = (self.log.clone(), sent, MAX_IN_FLIGHT - inflight.len());
                let events = tokio::task::spawn_blocking(move || log.read_after(from, n))
                    .await
                    .map_err(|_| NatsError::Ended)?
                    .map_err(NatsError::Log)?;
                let gone = self.log.first_seq().saturating_sub(1);
                if events.is_empty() && gone > sent {
                    // Dropped from the log before they went (its hard cap).
                    sent = gone;
                    if inflight.is_empty() {
                        self.advance(sent);
                    }
                    read = true;
                }
                read |= !events.is_empty();
                for ev in events {
                    if c.connection_state() != State::Connected {
                        return Err(NatsError::Disconnected);
                    }
                    sent = ev.seq;
                    if ev.json.len() + OVERHEAD > max_payload {
                        self.stats.too_large.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(id = %ev.id, bytes = ev.json.len(), max_payload,
                            "event larger than the NATS server takes; not published");
                        inflight.push_back((ev.seq, None));
                        continue;
                    }
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(async_nats::header::NATS_MESSAGE_ID, &*ev.id);
                    let subject =
                        super::subject::subject(&self.cfg.subject_prefix, &ev.sensor, ev.kind);
                    let ack = js
                        .publish_with_headers(subject, headers, ev.json.to_string().into())
                        .await
                        .map_err(NatsError::Publish)?;
                    inflight.push_back((ev.seq, Some(ack)));
                }
            }
            if read {
                continue;
            }
            if let Some((seq, ack)) = inflight.pop_front() {
                if let Some(ack) = ack {
                    let ack = ack.await.map_err(NatsError::Publish)?;
                    self.stats.published.fetch_add(1, Ordering::Relaxed);
                    if ack.duplicate {
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                }
                self.advance(seq);
                if self.failing {
                    self.failing = false;
                    tracing::info!(
                        backlog = self.stats.backlog.load(Ordering::Relaxed),
                        "NATS: publishing again"
                    );
                }
                self.backoff.reset();
                self.save(false).await;
                continue;
            }
            self.set_backlog();
            self.save(true).await;
            if *self.stop.borrow() {
                return Ok(());
            }
            tokio::select! {
                changed = tail.changed() => if changed.is_err() { return Ok(()) },
                _ = self.stop.changed() => {}
            }
        }
    }

    fn advance(&self, seq: u64) {
        self.acked.fetch_max(seq, Ordering::AcqRel);
        self.pin.advance(seq);
        self.set_backlog();
    }

    fn set_backlog(&self) {
        let backlog = self
            .log
            .last_seq()
            .saturating_sub(self.acked.load(Ordering::Acquire));
        self.stats.backlog.store(backlog, Ordering::Relaxed);
    }

    /// Writes the cursor when it moved, and `now` or after `SAVE_EVERY`.
    async fn save(&mut self, now: bool) {
        let seq = self.acked.load(Ordering::Acquire);
        if seq == self.saved || (!now && self.saved_at.elapsed() < SAVE_EVERY) {
            return;
        }
        let path = self.path.clone();
        match tokio::task::spawn_blocking(move || save_cursor(&path, seq)).await {
            Ok(Ok(())) => self.saved = seq,
            Ok(Err(e)) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot save the NATS cursor")
            }
            Err(_) => {}
        }
        self.saved_at = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_survives_and_defaults_to_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CURSOR_FILE);
        assert_eq!(load_cursor(&path), 0);
        save_cursor(&path, 42).unwrap();
        assert_eq!(load_cursor(&path), 42);
        save_cursor(&path, 43).unwrap();
        assert_eq!(load_cursor(&path), 43);
        assert!(!path.with_extension("tmp").exists());
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(load_cursor(&path), 0);
    }
}
