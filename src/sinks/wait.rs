//! Replay's waits: for the state folder another replay holds, and at its end
//! for the database writer and the uploader, saying what still waits.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::outbox::Outbox;
use super::persist::PersistStats;
use super::state_lock::{Holder, StateLock, StateLockError};
use crate::store::uploader::{UploadControl, UploadStats};

/// Waits for the state folder while another replay has it (it ends by itself),
/// but not behind the daemon, which never lets go.
pub(super) async fn lock_state(dir: &Path, wait: Duration) -> Result<StateLock, StateLockError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut told = false;
    loop {
        match StateLock::try_acquire(dir, "replay") {
            Ok(lock) => return Ok(lock),
            Err((Holder::Other(holder), e @ StateLockError::Busy { .. })) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(e);
                }
                if !told {
                    tracing::info!(state_dir = %dir.display(), %holder, "the state folder is in use; waiting for that process to finish with it");
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err((_, e)) => return Err(e),
        }
    }
}

pub(super) fn unwritten(expected: u64, stats: &PersistStats) -> u64 {
    expected.saturating_sub(stats.db_rows_written.load(Ordering::Relaxed))
}

const UNREACHABLE_REMINDER: Duration = Duration::from_secs(30);

/// Lets the writer finish (it stops by itself once the outbox is empty and
/// `finish` is set), saying every few seconds what is still waiting, and stops
/// it at `deadline`.
pub(super) async fn for_writer(
    writer: &mut tokio::task::JoinHandle<()>,
    outbox: &Outbox,
    stats: &PersistStats,
    expected: u64,
    deadline: tokio::time::Instant,
) {
    // The writer said why the database is away; this only reminds, seldom.
    let mut reminded: Option<tokio::time::Instant> = None;
    loop {
        let tick = (tokio::time::Instant::now() + Duration::from_secs(5)).min(deadline);
        tokio::select! {
            _ = &mut *writer => return,
            _ = tokio::time::sleep_until(tick) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            writer.abort();
            let _ = (&mut *writer).await;
            return;
        }
        if outbox.is_empty() {
            continue;
        }
        let calls = unwritten(expected, stats);
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_secs();
        if stats.db_ready.load(Ordering::Relaxed) {
            tracing::info!(
                calls,
                "writing to the database: {calls} calls still in the outbox"
            );
        } else if reminded.is_none_or(|t| t.elapsed() >= UNREACHABLE_REMINDER) {
            reminded = Some(tokio::time::Instant::now());
            tracing::warn!(
                calls,
                retrying_for_secs = left,
                "database unreachable; {calls} calls wait in the outbox, retrying for up to {left} s more (--db-wait)"
            );
        }
    }
}

/// Lets the uploader empty the spool until `deadline`, saying every few
/// seconds what still waits; false (and the uploader stopped) if it could not.
pub(super) async fn for_uploads(
    task: &mut tokio::task::JoinHandle<()>,
    stats: &UploadStats,
    control: &UploadControl,
    deadline: tokio::time::Instant,
) -> bool {
    loop {
        let tick = (tokio::time::Instant::now() + Duration::from_secs(5)).min(deadline);
        tokio::select! {
            _ = &mut *task => return true,
            _ = tokio::time::sleep_until(tick) => {}
        }
        let files = stats.pending_files.load(Ordering::Relaxed);
        let mib = stats.pending_bytes.load(Ordering::Relaxed) / (1024 * 1024);
        if tokio::time::Instant::now() >= deadline {
            control.stop();
            task.abort();
            let _ = (&mut *task).await;
            tracing::warn!(
                files,
                "storage did not take every recording in time; {files} recordings ({mib} MiB) stay in the spool"
            );
            return false;
        }
        tracing::info!(
            files,
            "uploading recordings: {files} ({mib} MiB) still in the spool"
        );
    }
}
