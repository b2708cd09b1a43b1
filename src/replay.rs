//! `pbxbridge replay`: captures in, call records and recordings out.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::call::{EndReason, Stats};
use crate::capture::pcapfile::{CaptureError, PcapFileReader};
use crate::config::Config;
use crate::pipeline::{Pipeline, PipelineError};
use crate::report::{CallReport, RecordingStatus};
use crate::sinks::{OutboxError, Role, Sinks, SinksError, Submitter};
use crate::store::uploader::UploadStats;
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// One line per input that cannot be replayed.
    #[error("{}", inputs_text(.0))]
    Inputs(Vec<CaptureError>),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Sinks(#[from] SinksError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("{failed} of {total} capture files could not be read (see the errors above)")]
    Files { failed: usize, total: usize },
    #[error("{calls} calls could not be written to the database within {waited_secs} s (--db-wait); they are kept in the outbox {outbox} and are written by the next replay or by the daemon using that state folder{}", cause.as_deref().map(|c| format!(". The database's last error: {c}")).unwrap_or_default())]
    NotWritten {
        calls: u64,
        waited_secs: u64,
        outbox: PathBuf,
        /// The database's last error, when it was away.
        cause: Option<String>,
    },
    #[error("{files} recordings ({mib} MiB) could not be uploaded to storage within {waited_secs} s (--db-wait); they stay in {dir} and are uploaded by the next replay or by the daemon")]
    NotUploaded {
        files: u64,
        mib: u64,
        waited_secs: u64,
        dir: PathBuf,
    },
    #[error("replay worker stopped unexpectedly: {0}")]
    Worker(String),
}

/// How long replay waits, by default, for its calls to reach the database.
pub const DEFAULT_DB_WAIT: Duration = Duration::from_secs(300);

pub struct ReplayOptions {
    pub files: Vec<PathBuf>,
    pub json: bool,
    /// Where the outbox lives; `None` means `[daemon] state_dir`, so that what
    /// replay could not write is picked up by the daemon, and the other way round.
    pub state_dir: Option<PathBuf>,
    /// How long to wait at the end for the outbox to drain into the database.
    pub db_wait: Duration,
}

impl ReplayOptions {
    pub fn new(files: Vec<PathBuf>, json: bool) -> Self {
        ReplayOptions {
            files,
            json,
            state_dir: None,
            db_wait: DEFAULT_DB_WAIT,
        }
    }
}

/// What a replay did, for the summary and for benchmarks.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub stats: Stats,
    pub reasm: Vec<(String, u64)>,
    pub calls: Vec<CallReport>,
    pub elapsed_secs: f64,
    pub files_failed: usize,
    pub recordings_dir: Option<PathBuf>,
    /// With remote storage: what the uploader did.
    pub uploads: Option<Arc<UploadStats>>,
}

/// Reads every file in order through one pipeline (so a call may span files).
/// Each batch of finished calls goes into the outbox (fsynced) before it is
/// printed; the sinks' database writer drains the outbox meanwhile, retrying
/// while the database is away, so reading captures never waits for it. At the
/// end replay waits up to `db_wait` for the outbox to empty.
pub async fn run(cfg: Config, opts: ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    // A mistyped path must leave no database, state folder or recordings
    // behind: every input is opened once before anything else is touched.
    check_inputs(&opts.files)?;
    let state_dir = opts
        .state_dir
        .clone()
        .unwrap_or_else(|| cfg.daemon.state_dir.clone());
    let role = Role::Replay {
        lock_wait: opts.db_wait,
    };
    // Replay stops by itself: `finish` is its stop.
    let sinks = Sinks::start(&cfg, &state_dir, role, None, std::future::pending()).await?;
    // The recorder thread hands finished calls to the sink below.
    let (report_tx, report_rx) = crossbeam_channel::bounded::<Vec<CallReport>>(64);
    let mut pipeline = Pipeline::new(&cfg, report_tx)?;
    let recordings_dir = pipeline.recordings_dir().map(PathBuf::from);

    let (tx, mut rx) = mpsc::channel::<Vec<CallReport>>(64);
    let files = opts.files.clone();
    let started = Instant::now();
    let worker = tokio::task::spawn_blocking(move || {
        let failed = replay_files(&mut pipeline, &files);
        // Every recording finished and every report handed on: the sink's
        // channel closes.
        (pipeline.finish(), failed)
    });
    let sink = {
        let submitter = sinks.submitter();
        tokio::task::spawn_blocking(move || Sink { submitter, tx }.drain(report_rx))
    };

    let mut calls = Vec::new();
    let stdout = std::io::stdout();
    while let Some(batch) = rx.recv().await {
        if opts.json {
            let mut out = stdout.lock();
            for c in &batch {
                if let Ok(line) = serde_json::to_string(c) {
                    let _ = writeln!(out, "{line}");
                }
            }
            let _ = out.flush();
        }
        calls.extend(batch);
    }
    let (tracker, files_failed) = worker
        .await
        .map_err(|e| ReplayError::Worker(e.to_string()))?;
    let queued = sink.await.map_err(|e| ReplayError::Worker(e.to_string()))?;
    // The packet rate in the summary is the replay's, not the database's.
    let elapsed_secs = started.elapsed().as_secs_f64();
    // What reached the outbox stays there for the next run.
    queued?;
    let uploads = sinks.upload_stats().cloned();
    let outbox_dir = sinks.outbox_dir();
    let finished = sinks.finish(opts.db_wait).await;
    let unuploaded = finished
        .unuploaded
        .map(|(files, bytes)| ReplayError::NotUploaded {
            files,
            mib: bytes.div_ceil(1024 * 1024),
            waited_secs: opts.db_wait.as_secs(),
            dir: recordings_dir.clone().unwrap_or_default(),
        });

    let (defrag, tcp) = tracker.reasm_stats();
    let mut reasm = Vec::new();
    for (k, v) in reasm_counters(defrag)
        .into_iter()
        .chain(reasm_counters(tcp))
    {
        if v > 0 {
            reasm.push((k, v));
        }
    }
    let summary = ReplaySummary {
        stats: tracker.stats().clone(),
        reasm,
        calls,
        elapsed_secs,
        files_failed,
        recordings_dir,
        uploads,
    };
    let unwritten = (finished.outbox_batches > 0).then(|| ReplayError::NotWritten {
        calls: finished.unwritten_calls,
        waited_secs: opts.db_wait.as_secs(),
        outbox: outbox_dir,
        cause: finished.last_db_error,
    });
    if let (Some(_), Some(e)) = (&unwritten, &unuploaded) {
        eprintln!("error: {e}");
    }
    let unwritten = unwritten.or(unuploaded);
    if files_failed > 0 || unwritten.is_some() {
        if !opts.json {
            print_summary(&summary);
        }
        if files_failed == 0 {
            if let Some(e) = unwritten {
                return Err(e);
            }
        }
        // main prints the returned error; this one would be lost otherwise.
        if let Some(e) = unwritten {
            eprintln!("error: {e}");
        }
        return Err(ReplayError::Files {
            failed: files_failed,
            total: opts.files.len(),
        });
    }
    Ok(summary)
}

/// Every input that is not a readable pcap/pcapng file, all of them at once.
fn check_inputs(files: &[PathBuf]) -> Result<(), ReplayError> {
    let bad: Vec<CaptureError> = files.iter().filter_map(|f| check_input(f).err()).collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ReplayError::Inputs(bad))
    }
}

fn check_input(path: &Path) -> Result<(), CaptureError> {
    match std::fs::metadata(path) {
        // A pipe or a device (`/dev/stdin`) can be read only once, by the
        // replay itself: reading its header here would lose it.
        Ok(m) if !m.is_file() && !m.is_dir() => Ok(()),
        _ => PcapFileReader::open(path).map(drop),
    }
}

fn inputs_text(errors: &[CaptureError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

fn reasm_counters(s: &crate::reasm::ReasmStats) -> Vec<(String, u64)> {
    // The stats struct serialises to a flat map of counters.
    match serde_json::to_value(s) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_u64()?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Where finished calls go: first the outbox, then the printer.
struct Sink {
    submitter: Submitter,
    tx: mpsc::Sender<Vec<CallReport>>,
}

impl Sink {
    /// False when the printer is gone and there is no point going on.
    fn put(&self, batch: Vec<CallReport>) -> Result<bool, OutboxError> {
        if batch.is_empty() {
            return Ok(true);
        }
        self.submitter.submit(&batch)?;
        Ok(self.tx.blocking_send(batch).is_ok())
    }

    /// Until the recorder thread lets go; when this stops early (the outbox
    /// fails, the printer is gone) the recorder stops, and so does reading.
    fn drain(self, rx: crossbeam_channel::Receiver<Vec<CallReport>>) -> Result<(), OutboxError> {
        while let Ok(mut batch) = rx.recv() {
            // Whatever else is already waiting shares the one fsync.
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            if !self.put(batch)? {
                break;
            }
        }
        Ok(())
    }
}

/// The number of files that failed.
fn replay_files(pipeline: &mut Pipeline, files: &[PathBuf]) -> usize {
    let mut failed = 0;
    let mut last_ts = Timestamp::default();
    for path in files {
        let mut reader = match PcapFileReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "skipping capture file");
                failed += 1;
                continue;
            }
        };
        tracing::info!(file = %path.display(), "replaying");
        loop {
            match reader.next_packet() {
                Ok(Some(p)) => {
                    last_ts = last_ts.max(p.ts);
                    pipeline.handle_frame(p.ts, p.link, p.data);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "capture file is damaged; the rest of it is skipped");
                    failed += 1;
                    break;
                }
            }
            if pipeline.is_stalled() {
                // The sink stopped (and says why); what is still open stays
                // in the spool for the next run.
                return failed;
            }
        }
    }
    pipeline.close_all(last_ts, EndReason::CaptureEnd);
    failed
}

/// The human view: a table of calls and what the input looked like.
pub fn print_summary(s: &ReplaySummary) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<26} {:<9} {:<16} {:<16} {:<10} {:>4} {:>9} {:<12} {:<10} CALL-ID",
        "STARTED (UTC)", "DIRECTION", "FROM", "TO", "OUTCOME", "CODE", "TALK", "END", "RECORDING"
    );
    for c in &s.calls {
        let show = |n: &Option<String>, raw: &Option<String>| {
            n.clone()
                .or_else(|| raw.clone())
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            out,
            "{:<26} {:<9} {:<16} {:<16} {:<10} {:>4} {:>8.2}s {:<12} {:<10} {}",
            c.started_at,
            c.direction,
            show(&c.from_number, &c.from_raw),
            show(&c.to_number, &c.to_raw),
            c.outcome,
            c.sip_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            c.duration,
            c.end_reason,
            c.recording.status,
            c.call_id
        );
    }
    let st = &s.stats;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "packets: {} ({} bytes) in {:.3} s ({:.0} packets/s)",
        st.packets,
        st.bytes,
        s.elapsed_secs,
        st.packets as f64 / s.elapsed_secs.max(1e-9)
    );
    let _ = writeln!(
        out,
        "SIP messages: {} (call-related {}, other methods {}, duplicates {}, orphans {}, after end {}, keep-alives {})",
        st.sip_messages,
        st.sip_messages.saturating_sub(st.sip_non_call),
        st.sip_non_call,
        st.sip_duplicates,
        st.sip_orphans,
        st.sip_after_end,
        st.sip_keepalives
    );
    let _ = writeln!(
        out,
        "RTP packets: {} matched to calls, {} unmatched, {} after hangup, {} from a second source",
        st.rtp_packets, st.rtp_unmatched, st.rtp_after_end, st.rtp_ignored_source
    );
    let mut by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &s.calls {
        *by_outcome.entry(c.outcome.as_str()).or_insert(0) += 1;
    }
    let outcomes: Vec<String> = by_outcome.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "calls: {} ({})", s.calls.len(), outcomes.join(", "));
    let stored = s
        .calls
        .iter()
        .filter(|c| c.recording.status == RecordingStatus::Stored)
        .count();
    match (&s.recordings_dir, &s.uploads) {
        (Some(dir), None) => {
            let _ = writeln!(out, "recordings: {stored} stored under {}", dir.display());
        }
        (Some(dir), Some(up)) => {
            let _ = writeln!(
                out,
                "recordings: {} uploaded to storage, {} waiting in {}",
                up.uploaded.load(Ordering::Relaxed),
                up.pending_files.load(Ordering::Relaxed),
                dir.display()
            );
        }
        _ => {}
    }
    if st.dropped.is_empty() {
        let _ = writeln!(out, "malformed/dropped: none");
    } else {
        let _ = writeln!(out, "malformed/dropped: {}", st.dropped_total());
        for (k, v) in &st.dropped {
            let _ = writeln!(out, "  {k:<32} {v}");
        }
    }
    if !s.reasm.is_empty() {
        let parts: Vec<String> = s.reasm.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "reassembly: {}", parts.join(", "));
    }
}
