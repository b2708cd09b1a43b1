//! From finished call to database row, without losing one on the way.
//!
//! The persist thread puts each batch of finished calls in the outbox (fsynced)
//! and only then forgets their in-flight snapshots. The database task drains the
//! outbox in order, retrying with backoff while the database is away; the outbox
//! is the truth until a batch is committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::db::{Db, DbTarget};

use super::index_task::IndexReady;
use crate::matching::linker::Linker;
use crate::recording::InflightJournal;
use crate::report::CallReport;

use super::outbox::Outbox;

/// Counters the metrics endpoint shows.
#[derive(Debug, Default)]
pub struct PersistStats {
    pub ended_by_outcome: Mutex<BTreeMap<String, u64>>,
    pub recorded_bytes: AtomicU64,
    pub db_rows_written: AtomicU64,
    pub db_write_errors: AtomicU64,
    /// CRM relation lookups the database refused (the calls were written
    /// without those related links).
    pub crm_relation_errors: AtomicU64,
    pub db_ready: AtomicBool,
}

/// Runs on its own thread until every sender of `rx` is gone.
pub fn persist_thread(
    rx: crossbeam_channel::Receiver<Vec<CallReport>>,
    outbox: Arc<Outbox>,
    journal: InflightJournal,
    stats: Arc<PersistStats>,
    wake_db: Arc<Notify>,
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
        let mut delay = Duration::from_millis(100);
        loop {
            match outbox.append(&batch) {
                Ok(_) => break,
                Err(e) => {
                    // Keep the snapshots: they are the only copy until this works.
                    tracing::error!(error = %e, calls = batch.len(), "cannot write finished calls to the outbox; retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        {
            let mut by_outcome = stats
                .ended_by_outcome
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for r in &batch {
                *by_outcome.entry(r.outcome.clone()).or_insert(0) += 1;
                if let Some(b) = r.recording.bytes {
                    stats.recorded_bytes.fetch_add(b, Ordering::Relaxed);
                }
            }
        }
        for r in &batch {
            journal.remove(&r.call_id);
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
        wake_db.notify_one();
    }
}

/// What the database writer needs besides the outbox.
pub struct Writer {
    pub target: DbTarget,
    pub linker: Arc<Linker>,
    /// When set, nothing is written before the phone index's first build.
    pub index_ready: Option<IndexReady>,
}

/// Connects (again and again if need be) and drains the outbox into the
/// database until `finish` is set (no record will come any more) and the
/// outbox is empty, or the deadline after `finish` passes; what is left then
/// waits in the outbox for the next start.
pub async fn db_task(
    writer: Writer,
    outbox: Arc<Outbox>,
    stats: Arc<PersistStats>,
    wake: Arc<Notify>,
    finish: Arc<AtomicBool>,
    done_writing: Arc<Notify>,
    stop_deadline: Duration,
) {
    let Writer {
        target,
        linker,
        index_ready,
    } = writer;
    let mut db: Option<Db> = None;
    let mut backoff = Duration::from_millis(500);
    let mut stop_since: Option<tokio::time::Instant> = None;
    let mut told_waiting = false;
    loop {
        let stopping = finish.load(Ordering::Acquire);
        if stopping && stop_since.is_none() {
            stop_since = Some(tokio::time::Instant::now());
        }
        if db.is_none() {
            match target.connect().await {
                Ok(d) => {
                    tracing::info!(url = %target.shown_url(), "database connected");
                    db = Some(d);
                    backoff = Duration::from_millis(500);
                }
                Err(e) => {
                    stats.db_ready.store(false, Ordering::Relaxed);
                    stats.db_write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in = ?backoff, "database unavailable; finished calls wait in the outbox");
                }
            }
        }
        let mut drained = false;
        // Calls are matched against the phone index: not before its first build.
        let index_ok = index_ready.as_ref().is_none_or(IndexReady::is_ready);
        if !index_ok && !told_waiting {
            tracing::info!("finished calls wait in the outbox until the phone index is built");
            told_waiting = true;
        }
        if let (Some(d), true) = (&db, index_ok) {
            match drain(d, &target, &linker, &outbox, &stats).await {
                Ok(()) => {
                    stats.db_ready.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(500);
                    drained = true;
                }
                Err(e) => {
                    stats.db_ready.store(false, Ordering::Relaxed);
                    stats.db_write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot write calls to the database; they wait in the outbox");
                    db = None;
                }
            }
        }
        if stopping {
            let past_deadline = stop_since.is_some_and(|t| t.elapsed() >= stop_deadline);
            if (drained && outbox.is_empty()) || past_deadline {
                if !outbox.is_empty() {
                    tracing::warn!(
                        batches = outbox.len(),
                        "stopping with calls still in the outbox; they are written at the next start"
                    );
                }
                done_writing.notify_one();
                return;
            }
        }
        let wait = if !index_ok {
            Duration::from_millis(200)
        } else if drained {
            Duration::from_secs(5)
        } else {
            let w = backoff;
            backoff = (backoff * 2).min(Duration::from_secs(10));
            w
        };
        let _ = tokio::time::timeout(wait, wake.notified()).await;
    }
}

#[derive(Debug, thiserror::Error)]
enum DrainError {
    #[error(transparent)]
    Outbox(#[from] super::outbox::OutboxError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

async fn drain(
    db: &Db,
    target: &DbTarget,
    linker: &Linker,
    outbox: &Outbox,
    stats: &PersistStats,
) -> Result<(), DrainError> {
    for path in outbox.pending()? {
        let batch = match outbox.read(&path) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "outbox batch cannot be read; moved aside as .bad");
                outbox.quarantine(&path);
                continue;
            }
        };
        // A lookup failure fails the batch (it stays in the outbox); a CRM
        // relation the database refuses only costs those related links.
        let written = linker.write(db, &target.sensor, &batch.reports).await;
        stats
            .crm_relation_errors
            .store(linker.relation_errors(), Ordering::Relaxed);
        let written = written?;
        stats
            .db_rows_written
            .fetch_add(batch.reports.len() as u64, Ordering::Relaxed);
        for r in &batch.reports {
            tracing::debug!(call_id = %r.call_id, "call written to the database");
        }
        tracing::debug!(
            calls = written.calls,
            links_added = written.links_added,
            "batch written"
        );
        outbox.remove(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: at a stop, records that reach the outbox after the writer
    /// first found it empty must still be written before it finishes.
    #[tokio::test]
    async fn a_stop_writes_records_that_arrive_late() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Arc::new(Outbox::open(&dir.path().join("outbox")).unwrap());
        let url = format!("sqlite://{}", dir.path().join("calls.db").display());
        let (stats, wake, finish, done) = (
            Arc::new(PersistStats::default()),
            Arc::new(Notify::new()),
            Arc::new(AtomicBool::new(false)),
            Arc::new(Notify::new()),
        );
        let target = DbTarget {
            url: url.clone(),
            opts: Default::default(),
            sensor: "default".into(),
        };
        let task = tokio::spawn(db_task(
            Writer {
                target: target.clone(),
                linker: Arc::new(Linker::new(&Default::default())),
                index_ready: None,
            },
            outbox.clone(),
            stats.clone(),
            wake.clone(),
            finish.clone(),
            done.clone(),
            Duration::from_secs(10),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        outbox
            .append(&[super::super::outbox::tests::report("late@pbx")])
            .unwrap();
        finish.store(true, Ordering::Release);
        wake.notify_one();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert!(outbox.is_empty());
        let db = target.connect().await.unwrap();
        let crate::db::Pool::Sqlite(pool) = db.pool() else {
            panic!("sqlite expected")
        };
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM calls WHERE call_id = 'late@pbx'")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(stats.db_rows_written.load(Ordering::Relaxed), 1);
    }
}
