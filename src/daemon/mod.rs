//! `pbxbridge run`: the long-running daemon beside the PBX.
//!
//! Threads: one per capture source (live interface, capture folder, HEP
//! listener) → one bounded input queue → the tracker thread → the recorder
//! thread (WAV files; builds each finished call's report) → the sinks
//! (`crate::sinks`: persist thread, outbox, database writer, phone index,
//! uploader, retention). The admin HTTP server and signal handling run on
//! tokio.

mod sources;
mod status;
mod tracker_thread;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::api::event_source::DbResolve;
use crate::api::events::ApiEvents;
use crate::config::Config;
use crate::events::live::LiveCalls;
use crate::events::nats::{Publisher as NatsPublisher, CURSOR_FILE as NATS_CURSOR};
use crate::events::webhook::{WebhookError, Webhooks};
use crate::events::{Events, LogLimits};
use crate::logging::LogHandle;
use crate::pipeline::{tracker_config, Pipeline, PipelineError};
use crate::recording::InflightJournal;
use crate::sinks::{OutboxError, Role, Sinks, SinksError};

pub use sources::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sinks(#[from] SinksError),
    #[error("cannot use state folder {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for signals: {0}")]
    Signals(#[source] std::io::Error),
    #[error("admin endpoint {addr}: {source}")]
    Admin {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("api.listen {addr}: {source}")]
    ApiBind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Api(#[from] crate::api::ApiStartError),
    #[error(transparent)]
    Events(#[from] crate::events::LogError),
    #[error(transparent)]
    Webhooks(#[from] WebhookError),
    #[error("the tracker thread stopped unexpectedly")]
    TrackerPanicked,
}

pub struct RunOptions {
    /// The file SIGHUP reloads; `None` when running on the embedded defaults.
    pub config_path: Option<PathBuf>,
    pub log: LogHandle,
}

/// How long a stop waits for the database before leaving calls in the outbox.
const STOP_DB_DEADLINE: Duration = Duration::from_secs(20);

pub async fn run(cfg: Config, opts: RunOptions) -> Result<(), DaemonError> {
    if cfg.capture.interfaces.is_empty() && cfg.capture.folder.is_none() && !cfg.hep.enabled {
        return Err(SourceError::Nothing.into());
    }
    let state_dir = cfg.daemon.state_dir.clone();
    let state_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DaemonError::State { path, source }
    };
    // Stops the sinks' background work as soon as a signal says stop.
    let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let mut events = Events::open(&state_dir.join("events"), log_limits(&cfg), &cfg.pbx.sensor)?;
    let mut sinks = Sinks::start(
        &cfg,
        &state_dir,
        Role::Daemon,
        Some(events.emitter.clone()),
        async move {
            let _ = shutdown_rx.await;
        },
    )
    .await?;
    events.run(DbResolve::new(&cfg, sinks.db().clone()));
    // With NATS, the central `serve` sends webhooks, once for every sensor.
    let hooks = if cfg.events.nats.is_none() {
        Some(Webhooks::start(&cfg, &state_dir, events.log.clone(), sinks.db().clone()).await?)
    } else {
        None
    };
    let publisher = cfg.events.nats.clone().map(|n| {
        let cursor = state_dir.join("events").join(NATS_CURSOR);
        NatsPublisher::start(n, &cfg.pbx.sensor, events.log.clone(), cursor)
    });
    let live = Arc::new(LiveCalls::default());
    let live_task = live.follow(events.log.clone());
    let outbox = sinks.outbox().clone();
    let inflight_dir = state_dir.join("inflight");
    let journal = InflightJournal::open(&inflight_dir).map_err(state_err(&inflight_dir))?;

    // Before the recorder opens its spool (which would set leftovers aside),
    // turn what a crash left into records.
    let done = outbox.call_ids()?;
    let alive = status::read_heartbeat(&state_dir);
    let recovered = journal
        .recover(&done, alive)
        .map_err(state_err(&inflight_dir))?;
    if !recovered.is_empty() {
        let mut recovered = recovered;
        // Their files were filed under recording.dir: with remote storage
        // they wait there for the uploader like any other.
        if let (Some(remote), Ok(dir)) = (
            crate::store::uploader::RemoteTarget::from_config(&cfg.storage),
            std::fs::canonicalize(&cfg.recording.dir),
        ) {
            for r in &mut recovered {
                remote.mark_pending(&mut r.recording, &dir);
            }
        }
        outbox.append(&recovered)?;
        for r in &recovered {
            journal.remove(&r.call_id);
        }
        tracing::warn!(
            calls = recovered.len(),
            "recovered calls that were open when the daemon last stopped unexpectedly"
        );
    }

    // The recorder hands finished calls to the persist thread; a full channel
    // makes it, and then the tracker thread, wait. Each batch reaches the
    // outbox before its in-flight snapshots go.
    let report_tx = sinks.persist_thread(Some(journal.clone()))?;
    let persist_stats = sinks.stats().clone();
    let mut pipeline = Pipeline::new(&cfg, report_tx)?;
    pipeline.set_inflight(journal.clone());
    pipeline.set_events(events.emitter.clone());
    let stop = Arc::new(AtomicBool::new(false));

    let (input_tx, input_rx) = crate::capture::input_queue(cfg.capture.queue_packets);
    let sources = sources::start(&cfg, &input_tx, &state_dir, stop.clone())?;
    drop(input_tx);

    let mut ops = status::Ops::new(
        &cfg,
        &state_dir,
        sources.stats(),
        persist_stats.clone(),
        outbox.clone(),
        sinks.index_metrics().clone(),
    );
    if let Some(stats) = sinks.upload_stats() {
        ops.set_uploads(stats.clone());
    }
    ops.set_events(crate::ops::event_gauges::source(
        &events,
        hooks.clone(),
        publisher.as_ref().map(|p| p.stats.clone()),
    ));
    let (control_tx, control_rx) = crossbeam_channel::bounded(16);
    let tracker = {
        let observer = ops.observer();
        std::thread::Builder::new()
            .name("pbxbridge-tracker".into())
            .spawn(move || tracker_thread::run(pipeline, input_rx, control_rx, observer))
            .map_err(|source| DaemonError::Thread {
                what: "tracker",
                source,
            })?
    };
    let admin = ops.serve(&cfg).await?;
    let api_events = ApiEvents::new(
        events.log.clone(),
        live.clone(),
        Some(events.emitter.clone()),
        Duration::from_secs(cfg.events.sse_heartbeat_secs.max(1)),
    );
    let (api_stop, api) = start_api(&cfg, &sinks, &state_dir, api_events, hooks.clone()).await?;
    ops.ready();
    tracing::info!(
        interfaces = ?cfg.capture.interfaces,
        hep = cfg.hep.enabled.then(|| cfg.hep.listen.to_string()),
        folder = ?cfg.capture.folder,
        "pbxbridge is running"
    );

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut current = cfg.clone();
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => reload(&mut current, &opts, &control_tx),
            _ = ops.watchdog_tick() => {}
            _ = housekeeping.tick() => ops.housekeeping().await,
        }
    }

    // Stop order matters: no new input, then every open call ends and is
    // recorded, then the records reach the outbox, then the database.
    ops.stopping();
    let _ = shutdown.send(());
    // The API answers until the calls are flushed: stop taking requests now.
    let _ = api_stop.send(());
    stop.store(true, Ordering::Release);
    let source_stats = tokio::task::spawn_blocking(move || sources.stop_and_join())
        .await
        .unwrap_or_default();
    tracing::debug!(?source_stats, "capture sources stopped");
    let pipeline = tokio::task::spawn_blocking(move || tracker.join())
        .await
        .map_err(|_| DaemonError::TrackerPanicked)?
        .map_err(|_| DaemonError::TrackerPanicked)?;
    // Waits for the recorder thread to finish every WAV and hand on every
    // record. The recorder held the last sender: the persist thread ends once
    // the very last record is in the outbox, and the writer drains after it.
    drop(pipeline);
    sinks.finish(STOP_DB_DEADLINE).await;
    if let Some(admin) = admin {
        admin.abort();
    }
    if let Some(api) = api {
        let _ = tokio::time::timeout(Duration::from_secs(11), api).await;
    }
    events.finish(Duration::from_secs(5)).await;
    if let Some(p) = publisher {
        p.stop(Duration::from_secs(5)).await;
    }
    if let Some(h) = &hooks {
        h.finish(Duration::from_secs(5)).await;
    }
    live_task.abort();
    tracing::info!(
        calls_written = persist_stats.db_rows_written.load(Ordering::Relaxed),
        outbox_pending = outbox.len(),
        "pbxbridge stopped"
    );
    Ok(())
}

/// Serves the HTTP API when `[api]` is set, on the sinks' database handle.
async fn start_api(
    cfg: &Config,
    sinks: &Sinks,
    state_dir: &Path,
    events: ApiEvents,
    hooks: Option<Webhooks>,
) -> Result<
    (
        tokio::sync::oneshot::Sender<()>,
        Option<tokio::task::JoinHandle<()>>,
    ),
    DaemonError,
> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let Some(api) = &cfg.api else {
        return Ok((stop, None));
    };
    let mut state =
        crate::api::ApiState::new(cfg, sinks.db().clone(), state_dir)?.with_events(events);
    if let Some(h) = hooks {
        state = state.with_webhooks(h);
    }
    let listener = tokio::net::TcpListener::bind(api.listen)
        .await
        .map_err(|source| DaemonError::ApiBind {
            addr: api.listen,
            source,
        })?;
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        if let Err(e) = crate::api::serve(listener, state, stopped).await {
            tracing::error!(error = %e, "the HTTP API stopped");
        }
    });
    Ok((stop, Some(task)))
}

/// SIGHUP: re-read the file; apply what can change on the fly, and say what
/// needs a restart. A broken file changes nothing.
/// The event log's limits from `[events]`.
pub fn log_limits(cfg: &Config) -> LogLimits {
    let e = &cfg.events;
    LogLimits {
        max_events: e.log_max_events,
        max_age: Duration::from_secs(e.log_max_age_days.saturating_mul(86_400)),
        hard_max_events: e.log_hard_max_events.max(e.log_max_events),
        ..LogLimits::default()
    }
}

fn reload(
    current: &mut Config,
    opts: &RunOptions,
    control: &crossbeam_channel::Sender<tracker_thread::Control>,
) {
    let Some(path) = &opts.config_path else {
        tracing::warn!("SIGHUP: running on the embedded defaults; there is no file to reload");
        return;
    };
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: config not reloaded; still running on the previous one");
            return;
        }
    };
    let mut applied = Vec::new();
    if new.log.level != current.log.level {
        match opts.log.set_level(&new.log.level) {
            Ok(true) => applied.push("log.level"),
            Ok(false) => tracing::warn!("SIGHUP: log.level unchanged because PBXBRIDGE_LOG is set"),
            Err(e) => tracing::error!(error = %e, "SIGHUP: log.level not applied"),
        }
    }
    if new.tracker != current.tracker {
        if new.tracker.max_calls != current.tracker.max_calls {
            tracing::warn!("SIGHUP: tracker.max_calls needs a restart");
        }
        match regex::Regex::new(&new.pbx.extension_pattern) {
            Ok(re) => {
                let t = tracker_config(&new, re);
                if control
                    .try_send(tracker_thread::Control::SetTimers(Box::new(t)))
                    .is_ok()
                {
                    applied.push("tracker timers");
                }
            }
            Err(e) => tracing::error!(error = %e, "SIGHUP: tracker timers not applied"),
        }
    }
    let restart: Vec<&str> = [
        ("pbx", new.pbx != current.pbx),
        ("sip", new.sip != current.sip),
        ("capture", new.capture != current.capture),
        ("hep", new.hep != current.hep),
        ("admin", new.admin != current.admin),
        ("api", new.api != current.api),
        ("recording", new.recording != current.recording),
        ("database", new.database != current.database),
        ("daemon", new.daemon != current.daemon),
        ("crm", new.crm != current.crm),
        ("storage", new.storage != current.storage),
        ("log.format", new.log.format != current.log.format),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect();
    if !restart.is_empty() {
        tracing::warn!(sections = ?restart, "SIGHUP: these changes need a restart to take effect");
    }
    tracing::info!(applied = ?applied, "SIGHUP: config reloaded");
    // Keep what was not applied as it was, so the next reload reports it again.
    current.log.level = new.log.level;
    current.tracker = new.tracker;
}
