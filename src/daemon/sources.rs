//! Starting and stopping the packet sources, and what the operator sees of
//! them: metrics, readiness, systemd status and watchdog.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::capture::folder::{FolderError, FolderStats, FolderWatcher};
use crate::capture::hep::{HepListenError, HepListener, HepListenerStats};
use crate::capture::live::{CaptureStats, LiveCapture, LiveError};
use crate::capture::{InputReceiver, InputSender};
use crate::config::Config;
use crate::ops::metrics::{HepCounters, InterfaceCounters, MetricsSnapshot, QueueGauge};
use crate::ops::notify::Notifier;
use crate::ops::OpsState;
use crate::pipeline::Pipeline;

use super::persist::PersistStats;
use super::tracker_thread::Observer;
use super::DaemonError;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Hep(#[from] HepListenError),
    #[error("nothing to capture from: set capture.interfaces, capture.folder or hep.enabled in the config")]
    Nothing,
}

pub struct Sources {
    live: Vec<LiveCapture>,
    folder: Option<FolderWatcher>,
    hep: Option<HepListener>,
}

/// Shared counters of every source, for metrics.
#[derive(Clone, Default)]
pub struct SourceStats {
    pub interfaces: Vec<(String, Arc<CaptureStats>)>,
    pub folder: Option<Arc<FolderStats>>,
    pub hep: Option<Arc<HepListenerStats>>,
}

impl std::fmt::Debug for SourceStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.interfaces.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SourceStats")
            .field("interfaces", &names)
            .field("folder", &self.folder.is_some())
            .field("hep", &self.hep.is_some())
            .finish()
    }
}

pub fn start(
    cfg: &Config,
    tx: &InputSender,
    state_dir: &Path,
    stop: Arc<AtomicBool>,
) -> Result<Sources, SourceError> {
    let mut sources = Sources {
        live: Vec::new(),
        folder: None,
        hep: None,
    };
    // HEP first: a live capture started before it could see the HEP packets
    // themselves and must not mistake them for anything.
    if cfg.hep.enabled {
        sources.hep = Some(HepListener::spawn(
            cfg.hep.listen,
            cfg.hep.max_connections,
            tx.clone(),
            stop.clone(),
        )?);
    }
    if let Some(dir) = &cfg.capture.folder {
        let started = FolderWatcher::start(
            dir.clone(),
            Duration::from_secs(cfg.capture.folder_settle_secs),
            state_dir.join("folder-done.txt"),
            tx.clone(),
            stop.clone(),
        );
        match started {
            Ok(w) => sources.folder = Some(w),
            Err(e) => {
                sources.stop_and_join();
                return Err(e.into());
            }
        }
    }
    match LiveCapture::start_all(&cfg.capture, tx, &stop) {
        Ok(live) => sources.live = live,
        Err(e) => {
            sources.stop_and_join();
            return Err(e.into());
        }
    }
    Ok(sources)
}

impl Sources {
    pub fn stats(&self) -> SourceStats {
        SourceStats {
            interfaces: self
                .live
                .iter()
                .map(|c| (c.interface().to_owned(), c.stats().clone()))
                .collect(),
            folder: self.folder.as_ref().map(|f| f.stats().clone()),
            hep: self.hep.as_ref().map(|h| h.stats()),
        }
    }

    /// Stops every source and waits for its thread; their input senders go with them.
    pub fn stop_and_join(self) -> SourceStats {
        let stats = self.stats();
        for c in self.live {
            c.stop();
        }
        if let Some(f) = self.folder {
            f.stop();
        }
        if let Some(h) = self.hep {
            drop(h);
        }
        stats
    }
}

/// The operator's view: metrics, health, systemd.
pub struct Ops {
    state: Arc<OpsState>,
    notifier: Arc<Notifier>,
    sources: SourceStats,
    persist: Arc<PersistStats>,
    watchdog: Option<Duration>,
}

impl Ops {
    pub fn new(_cfg: &Config, sources: SourceStats, persist: Arc<PersistStats>) -> Ops {
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
            watchdog,
        }
    }

    pub fn observer(&self, cfg: &Config, state_dir: &Path) -> Box<dyn Observer> {
        Box::new(Publisher {
            heartbeat: state_dir.join(HEARTBEAT),
            state: self.state.clone(),
            notifier: self.notifier.clone(),
            sources: self.sources.clone(),
            persist: self.persist.clone(),
            spool_dir: cfg
                .recording
                .enabled
                .then(|| cfg.recording.dir.join(".spool")),
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
    heartbeat: std::path::PathBuf,
    state: Arc<OpsState>,
    notifier: Arc<Notifier>,
    sources: SourceStats,
    persist: Arc<PersistStats>,
    spool_dir: Option<std::path::PathBuf>,
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
            .calls_by_state()
            .iter()
            .map(|(s, n)| (s.as_str(), *n))
            .collect();
        let (spool_files, spool_bytes) =
            self.spool_dir.as_deref().map(spool_usage).unwrap_or((0, 0));
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
                let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
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
            interfaces,
            hep,
            queues: vec![QueueGauge {
                name: "input",
                depth: input.depth() as u64,
                capacity: input.capacity() as u64,
                dropped: input.counters().dropped_full.load(Ordering::Relaxed),
            }],
            recorded_bytes: p.recorded_bytes.load(Ordering::Relaxed),
            spool_bytes,
            spool_files,
            outbox_pending: p.outbox_pending.load(Ordering::Relaxed),
            db_write_errors: p.db_write_errors.load(Ordering::Relaxed),
            files_done: folder.map_or(0, |f| f.files_done),
            files_failed: folder.map_or(0, |f| f.files_failed),
            uptime_secs: self.started.elapsed().as_secs(),
            tracker: stats,
        };
        let packets = snapshot.tracker.packets;
        self.state.publish(snapshot);
        // Tells the next start, after a crash, until when open calls were still up.
        let now = super::tracker_thread::wall_clock().micros().to_string();
        let _ = std::fs::write(&self.heartbeat, now);
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
                .find(|(s, _)| *s == "answered")
                .map_or(0, |(_, n)| *n);
            let _ = self.notifier.status(&format!(
                "{active} active calls ({answered} answered), {rate:.0} packets/s"
            ));
        }
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
