//! Finished calls into the outbox (fsynced) before anything else happens to
//! them: the outbox is the truth until the database writer commits a batch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::outbox::{Outbox, OutboxError};
use crate::backoff::Backoff;
use crate::call::Outcome;
use crate::recording::InflightJournal;
use crate::report::CallReport;

/// Counters the metrics endpoint shows.
#[derive(Debug, Default)]
pub struct PersistStats {
    pub ended_by_outcome: Mutex<BTreeMap<String, u64>>,
    /// MOS-CQ of answered calls that carried RTP.
    pub mos: Mutex<crate::ops::metrics::MosHistogram>,
    pub recorded_bytes: AtomicU64,
    /// Calls put in the outbox by this run.
    pub calls_submitted: AtomicU64,
    pub db_rows_written: AtomicU64,
    pub db_write_errors: AtomicU64,
    /// CRM relation lookups the database refused (the calls were written
    /// without those related links).
    pub crm_relation_errors: AtomicU64,
    pub db_ready: AtomicBool,
    /// Why the database could not be written to, while it cannot.
    last_db_error: Mutex<Option<String>>,
}

impl PersistStats {
    pub fn last_db_error(&self) -> Option<String> {
        self.last_db_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn set_last_error(&self, e: &dyn std::fmt::Display) {
        *self.last_db_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    pub(super) fn clear_last_error(&self) {
        *self.last_db_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Hands finished calls to the sinks. Cheap to clone; blocking (it fsyncs),
/// so it belongs on a thread, not on the runtime.
#[derive(Clone)]
pub struct Submitter {
    pub(super) outbox: Arc<Outbox>,
    pub(super) stats: Arc<PersistStats>,
    pub(super) wake: Arc<Notify>,
}

impl Submitter {
    /// Puts a batch in the outbox and wakes the database writer; the calls
    /// are safe on disk once this returns `Ok`.
    pub fn submit(&self, batch: &[CallReport]) -> Result<(), OutboxError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.outbox.append(batch)?;
        let stats = &self.stats;
        stats
            .calls_submitted
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        {
            let mut by_outcome = stats
                .ended_by_outcome
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for r in batch {
                *by_outcome.entry(r.outcome.as_str().to_owned()).or_insert(0) += 1;
                if let Some(b) = r.recording.bytes {
                    stats.recorded_bytes.fetch_add(b, Ordering::Relaxed);
                }
            }
        }
        {
            let mut mos = stats.mos.lock().unwrap_or_else(|p| p.into_inner());
            for r in batch {
                if let (Outcome::Answered, Some(m)) = (r.outcome, r.rtp.mos) {
                    mos.observe(m);
                }
            }
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// The daemon's persist thread: runs until every sender of `rx` is gone.
/// Each batch reaches the outbox (retried until it does) before its in-flight
/// snapshots are forgotten.
pub(super) fn persist_thread(
    rx: crossbeam_channel::Receiver<Vec<CallReport>>,
    submitter: Submitter,
    journal: Option<InflightJournal>,
) {
    while let Ok(mut batch) = rx.recv() {
        // Whatever else is already waiting shares the one fsync.
        while let Ok(more) = rx.try_recv() {
            batch.extend(more);
            if batch.len() >= 1024 {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        while let Err(e) = submitter.submit(&batch) {
            // Keep the snapshots: they are the only copy until this works.
            tracing::error!(error = %e, calls = batch.len(), "cannot write finished calls to the outbox; retrying");
            std::thread::sleep(backoff.next_wait());
        }
        for r in &batch {
            if let Some(j) = &journal {
                j.remove(&r.call_id);
            }
            tracing::info!(
                call_id = %r.call_id,
                direction = %r.direction,
                from = r.from_number.as_deref().or(r.from_raw.as_deref()).unwrap_or("-"),
                to = r.to_number.as_deref().or(r.to_raw.as_deref()).unwrap_or("-"),
                outcome = %r.outcome,
                end_reason = %r.end_reason,
                talk_secs = r.duration,
                recording = %r.recording.status,
                path = r.recording.path.as_deref().unwrap_or("-"),
                "call ended"
            );
        }
    }
}
