//! What the operator sees of the running daemon: metrics, readiness, systemd
//! status and watchdog, and the heartbeat crash recovery reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::capture::InputReceiver;
use crate::config::Config;
use crate::ops::metrics::{
    HepCounters, InterfaceCounters, MetricsSnapshot, QueueGauge, UploadGauges,
};
use crate::ops::notify::Notifier;
use crate::ops::OpsState;
use crate::pipeline::Pipeline;
use crate::store::uploader::UploadStats;

use super::sources::SourceStats;
use super::tracker_thread::Observer;
use super::DaemonError;
use crate::sinks::{IndexMetrics, Outbox, PersistStats};

/// The operator's view: metrics, health, systemd.
pub struct Ops {
    state: Arc<OpsState>,
    notifier: Arc<Notifier>,
    sources: SourceStats,
    persist: Arc<PersistStats>,
    outbox: Arc<Outbox>,
    index: Arc<IndexMetrics>,
    watchdog: Option<Duration>,
    spool: Arc<SpoolGauge>,
    spool_dir: Option<PathBuf>,
    heartbeat: PathBuf,
    uploads: Option<Arc<UploadStats>>,
    events: Option<EventSource>,
}

/// Filled by [`Ops::housekeeping`] off the tracker thread: listing the spool
/// costs a stat per open call.
#[derive(Debug, Default)]
struct SpoolGauge {
    files: AtomicU64,
    bytes: AtomicU64,
}

impl Ops {
    pub fn new(
        cfg: &Config,
        state_dir: &Path,
        sources: SourceStats,
        persist: Arc<PersistStats>,
        outbox: Arc<Outbox>,
        index: Arc<IndexMetrics>,
    ) -> Ops {
        let notifier = Notifier::from_env();
        let watchdog = notifier.watchdog_interval();
        Ops {
            state: Arc::new(OpsState::new(
                crate::ops::DEFAULT_STALE_AFTER,
                &["capture", "database"],
            )),
            notifier: Arc::new(notifier),
            sources,
            persist,
            outbox,
            index,
            watchdog,
            spool: Arc::default(),
            spool_dir: cfg
                .recording
                .enabled
                .then(|| cfg.recording.dir.join(".spool")),
            heartbeat: state_dir.join(HEARTBEAT),
            uploads: None,
            events: None,
        }
    }

    /// With remote storage: the uploader's figures go to `/metrics`.
    /// Reads the event metrics at each publish (log, webhooks, NATS).
    pub fn set_events(&mut self, gauges: EventSource) {
        self.events = Some(gauges);
    }

    pub fn set_uploads(&mut self, stats: Arc<UploadStats>) {
        self.uploads = Some(stats);
    }

    /// Once a second, on a blocking thread: the spool gauge, and the heartbeat
    /// that tells the next start, after a crash, until when open calls were up.
    pub async fn housekeeping(&self) {
        let (spool, dir, heartbeat) = (
            self.spool.clone(),
            self.spool_dir.clone(),
            self.heartbeat.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(dir) = dir {
                let (files, bytes) = spool_usage(&dir);
                spool.files.store(files, Ordering::Relaxed);
                spool.bytes.store(bytes, Ordering::Relaxed);
            }
            let now = crate::time::Timestamp::now().micros().to_string();
            if let Err(e) = std::fs::write(&heartbeat, now) {
                tracing::warn!(path = %heartbeat.display(), error = %e, "cannot write the heartbeat");
            }
        })
        .await;
    }

    pub fn observer(&self) -> Box<dyn Observer> {
        Box::new(Publisher {
            state: self.state.clone(),
            notifier: self.notifier.clone(),
            sources: self.sources.clone(),
            persist: self.persist.clone(),
            outbox: self.outbox.clone(),
            index: self.index.clone(),
            spool: self.spool.clone(),
            uploads: self.uploads.clone(),
            events: self.events.clone(),
            started: Instant::now(),
            last_publish: None,
            last_packets: 0,
            last_status: Instant::now(),
        })
    }

    pub async fn serve(
        &self,
        cfg: &Config,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, DaemonError> {
        if !cfg.admin.enabled {
            return Ok(None);
        }
        let addr = cfg.admin.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Admin { addr, source })?;
        let state = self.state.clone();
        Ok(Some(tokio::spawn(async move {
            if let Err(e) = crate::ops::admin::serve(listener, state, std::future::pending()).await
            {
                tracing::error!(error = %e, "admin endpoint stopped");
            }
        })))
    }

    pub fn ready(&self) {
        self.state.set_ready("capture", true);
        if let Err(e) = self.notifier.ready() {
            tracing::warn!(error = %e, "cannot tell systemd we are ready");
        }
    }

    pub fn stopping(&self) {
        self.state.set_ready("capture", false);
        let _ = self.notifier.stopping();
    }

    /// Resolves at each watchdog period, after pinging systemd if the tracker
    /// thread is alive. A stuck tracker stops the pings, and systemd restarts us.
    pub async fn watchdog_tick(&self) {
        let Some(every) = self.watchdog else {
            return std::future::pending().await;
        };
        tokio::time::sleep(every).await;
        if self.state.liveness().is_live() {
            let _ = self.notifier.watchdog();
        } else {
            tracing::error!(
                stale_secs = self.state.heartbeat_age().as_secs(),
                "the tracker thread has stopped publishing; withholding the watchdog ping"
            );
        }
    }
}

/// Runs on the tracker thread, once per tick.
struct Publisher {
    state: Arc<OpsState>,
    notifier: Arc<Notifier>,
    sources: SourceStats,
    persist: Arc<PersistStats>,
    outbox: Arc<Outbox>,
    index: Arc<IndexMetrics>,
    spool: Arc<SpoolGauge>,
    uploads: Option<Arc<UploadStats>>,
    events: Option<EventSource>,
    started: Instant,
    last_publish: Option<Instant>,
    last_packets: u64,
    last_status: Instant,
}

const PUBLISH_EVERY: Duration = Duration::from_secs(1);
const STATUS_EVERY: Duration = Duration::from_secs(5);

impl Observer for Publisher {
    fn tick(&mut self, pipeline: &Pipeline, input: &InputReceiver) {
        if self
            .last_publish
            .is_some_and(|t| t.elapsed() < PUBLISH_EVERY)
        {
            return;
        }
        self.last_publish = Some(Instant::now());
        let stats = pipeline.stats().clone();
        let by_state: Vec<(&'static str, u64)> = pipeline
            .tracker()
            .calls_by_state()
            .iter()
            .map(|(s, n)| (s.as_str(), *n))
            .collect();
        let interfaces = self
            .sources
            .interfaces
            .iter()
            .map(|(name, s)| {
                let s = s.snapshot();
                InterfaceCounters {
                    name: name.clone(),
                    received: s.received,
                    bytes: s.bytes,
                    kernel_dropped: s.kernel_dropped,
                    if_dropped: s.if_dropped,
                    queue_full: s.queue_full,
                }
            })
            .collect();
        let hep = self
            .sources
            .hep
            .as_ref()
            .map(|h| {
                let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
                HepCounters {
                    datagrams: l(&h.datagrams),
                    tcp_messages: l(&h.tcp_messages),
                    tcp_connections: l(&h.tcp_connections),
                    tcp_refused: l(&h.tcp_refused),
                    bad_frames: l(&h.bad_frames),
                }
            })
            .unwrap_or_default();
        let folder = self.sources.folder.as_ref().map(|f| f.snapshot());
        let p = &self.persist;
        let snapshot = MetricsSnapshot {
            calls_active_by_state: by_state.clone(),
            calls_ended_by_outcome: p
                .ended_by_outcome
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
            mos: p.mos.lock().map(|m| m.clone()).unwrap_or_default(),
            interfaces,
            hep,
            queues: vec![QueueGauge {
                name: "input",
                depth: input.depth() as u64,
                capacity: input.capacity() as u64,
                dropped: input.counters().dropped_full.load(Ordering::Relaxed),
            }],
            recorded_bytes: p.recorded_bytes.load(Ordering::Relaxed),
            spool_bytes: self.spool.bytes.load(Ordering::Relaxed),
            spool_files: self.spool.files.load(Ordering::Relaxed),
            outbox_pending: self.outbox.len() as u64,
            db_write_errors: p.db_write_errors.load(Ordering::Relaxed),
            crm_relation_errors: p.crm_relation_errors.load(Ordering::Relaxed),
            files_done: folder.map_or(0, |f| f.files_done),
            files_failed: folder.map_or(0, |f| f.files_failed),
            uptime_secs: self.started.elapsed().as_secs(),
            phone_index: self.index.snapshot(),
            uploads: self
                .uploads
                .as_deref()
                .map(upload_gauges)
                .unwrap_or_default(),
            events: self.events.as_ref().map(|f| f()).unwrap_or_default(),
            tracker: stats,
        };
        let packets = snapshot.tracker.packets;
        self.state.publish(snapshot);
        self.state
            .set_ready("database", p.db_ready.load(Ordering::Relaxed));
        let elapsed = self.last_status.elapsed();
        if elapsed >= STATUS_EVERY {
            let rate = (packets.saturating_sub(self.last_packets)) as f64 / elapsed.as_secs_f64();
            self.last_packets = packets;
            self.last_status = Instant::now();
            let active: u64 = by_state.iter().map(|(_, n)| n).sum();
            let answered = by_state
                .iter()
                .find(|(s, _)| *s == crate::call::CallState::Answered.as_str())
                .map_or(0, |(_, n)| *n);
            let _ = self.notifier.status(&format!(
                "{active} active calls ({answered} answered), {rate:.0} packets/s"
            ));
        }
    }
}

pub use crate::ops::event_gauges::EventSource;

fn upload_gauges(u: &UploadStats) -> UploadGauges {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    UploadGauges {
        pending_files: l(&u.pending_files),
        pending_bytes: l(&u.pending_bytes),
        over_alarm: u.over_alarm.load(Ordering::Relaxed),
        uploaded: l(&u.uploaded),
        uploaded_bytes: l(&u.uploaded_bytes),
        errors: l(&u.errors),
    }
}

const HEARTBEAT: &str = "alive";

/// The last heartbeat of a previous run.
pub fn read_heartbeat(state_dir: &Path) -> Option<crate::time::Timestamp> {
    let text = std::fs::read_to_string(state_dir.join(HEARTBEAT)).ok()?;
    text.trim()
        .parse()
        .ok()
        .map(crate::time::Timestamp::from_micros)
}

/// Files and bytes waiting in the recording spool (open calls' audio).
fn spool_usage(dir: &Path) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    rd.filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
}
