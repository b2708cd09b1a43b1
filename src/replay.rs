//! `pbxbridge replay`: captures in, call records and recordings out.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::call::{EndReason, Stats};
use crate::capture::pcapfile::PcapFileReader;
use crate::config::Config;
use crate::db::DbError;
use crate::pipeline::{Pipeline, PipelineError};
use crate::report::CallReport;
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{failed} of {total} capture files could not be read (see the errors above)")]
    Files { failed: usize, total: usize },
    #[error("replay worker stopped unexpectedly: {0}")]
    Worker(String),
}

pub struct ReplayOptions {
    pub files: Vec<PathBuf>,
    pub json: bool,
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
}

/// Reads every file in order through one pipeline (so a call may span files) and
/// writes each finished call to the database before it is printed.
pub async fn run(cfg: Config, opts: ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let target = crate::db::DbTarget::from_config(&cfg);
    let db = target.connect().await?;
    let mut pipeline = Pipeline::new(&cfg)?;
    let recordings_dir = pipeline.recordings_dir().map(PathBuf::from);
    let (tx, mut rx) = mpsc::channel::<Vec<CallReport>>(64);
    let files = opts.files.clone();
    let started = Instant::now();
    let worker = tokio::task::spawn_blocking(move || {
        let failed = replay_files(&mut pipeline, &files, &tx);
        (pipeline, failed)
    });

    let mut calls = Vec::new();
    let stdout = std::io::stdout();
    while let Some(batch) = rx.recv().await {
        db.upsert_calls(&target.sensor, &batch).await?;
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
    let (pipeline, files_failed) = worker
        .await
        .map_err(|e| ReplayError::Worker(e.to_string()))?;
    let (defrag, tcp) = pipeline.tracker().reasm_stats();
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
        stats: pipeline.stats().clone(),
        reasm,
        calls,
        elapsed_secs: started.elapsed().as_secs_f64(),
        files_failed,
        recordings_dir,
    };
    if files_failed > 0 {
        if !opts.json {
            print_summary(&summary);
        }
        return Err(ReplayError::Files {
            failed: files_failed,
            total: opts.files.len(),
        });
    }
    Ok(summary)
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

fn replay_files(
    pipeline: &mut Pipeline,
    files: &[PathBuf],
    tx: &mpsc::Sender<Vec<CallReport>>,
) -> usize {
    let mut failed = 0;
    let mut last_ts = Timestamp::default();
    let mut out = Vec::new();
    for path in files {
        let mut reader = match PcapFileReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "skipping capture file");
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
        };
        tracing::info!(file = %path.display(), "replaying");
        loop {
            match reader.next_packet() {
                Ok(Some(p)) => {
                    last_ts = last_ts.max(p.ts);
                    pipeline.handle_frame(p.ts, p.link, p.data, &mut out);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "capture file is damaged; the rest of it is skipped");
                    eprintln!("error: {e}");
                    failed += 1;
                    break;
                }
            }
            if out.len() >= 256 && tx.blocking_send(std::mem::take(&mut out)).is_err() {
                return failed;
            }
        }
    }
    pipeline.close_all(last_ts, EndReason::CaptureEnd, &mut out);
    if !out.is_empty() {
        let _ = tx.blocking_send(out);
    }
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
        .filter(|c| c.recording.status == "stored")
        .count();
    if let Some(dir) = &s.recordings_dir {
        let _ = writeln!(out, "recordings: {stored} stored under {}", dir.display());
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
