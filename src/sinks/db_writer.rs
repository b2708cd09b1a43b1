//! The database writer: drains the outbox into the database in order,
//! matching each call against the phone index, retrying with backoff while
//! the database is away. A batch leaves the outbox only once committed.

use std::collections::HashSet;
use std::iter::Peekable;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use std::vec::IntoIter;

use crate::events::model::RecordingData;
use crate::events::{Emitter, EventType};
use crate::report::{CallReport, RecordingStatus};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::index_task::IndexReady;
use super::outbox::Outbox;
use super::persist::PersistStats;
use crate::backoff::Backoff;
use crate::db::{retry_until, Db, FailureLog, SharedDb};
use crate::matching::linker::Linker;

/// Once a write holds this many calls, no further outbox file joins it.
const MERGE_CALLS: usize = 500;
/// The writer's retry steps while the database is away.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Everything the database writer works with.
pub struct DbWriter {
    pub db: SharedDb,
    pub linker: Arc<Linker>,
    /// When set, nothing is written before the phone index's first build.
    pub index_ready: Option<IndexReady>,
    pub outbox: Arc<Outbox>,
    pub stats: Arc<PersistStats>,
    /// Rung when a batch reaches the outbox (or the stop is given).
    pub wake: Arc<Notify>,
    /// Told of each call once its row and links are committed.
    pub events: Option<Emitter>,
}

impl DbWriter {
    /// Drains the outbox until `stop` carries a deadline (no record will come
    /// any more) and the outbox is empty, or that deadline passes; what is
    /// left then waits in the outbox for the next start.
    pub async fn run(self, stop: watch::Receiver<Option<Instant>>) {
        let DbWriter {
            db: shared,
            linker,
            index_ready,
            outbox,
            stats,
            wake,
            events,
        } = self;
        let sensor = shared.target().sensor.clone();
        let mut db: Option<Db> = None;
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        let mut failures = FailureLog::default();
        let mut told_waiting = false;
        loop {
            let stop_at = *stop.borrow();
            if db.is_none() {
                let what = "database unavailable; finished calls wait in the outbox";
                let got = match stop_at {
                    // No record will come any more: nothing to do but wait
                    // for the database, up to the deadline.
                    Some(deadline) => {
                        let get = || shared.get();
                        retry_until(Some(deadline), &mut backoff, &mut failures, what, get).await
                    }
                    None => shared.get().await,
                };
                match got {
                    Ok(d) => {
                        tracing::info!(url = %shared.target().shown_url(), "database connected");
                        db = Some(d);
                        backoff.reset();
                    }
                    Err(e) => {
                        stats.db_ready.store(false, Ordering::Relaxed);
                        stats.db_write_errors.fetch_add(1, Ordering::Relaxed);
                        stats.set_last_error(&e);
                        if stop_at.is_none() {
                            failures.failed(what, &e, backoff.current());
                        }
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
                match drain(d, &sensor, &linker, &outbox, &stats, events.as_ref()).await {
                    Ok(()) => {
                        stats.db_ready.store(true, Ordering::Relaxed);
                        stats.clear_last_error();
                        failures.recovered();
                        backoff.reset();
                        drained = true;
                    }
                    Err(e) => {
                        stats.db_ready.store(false, Ordering::Relaxed);
                        stats.db_write_errors.fetch_add(1, Ordering::Relaxed);
                        stats.set_last_error(&e);
                        tracing::warn!(error = %e, retry_in = ?backoff.current(), "cannot write calls to the database; they wait in the outbox");
                        db = None;
                        shared.reset().await;
                    }
                }
            }
            if let Some(deadline) = stop_at {
                if (drained && outbox.is_empty()) || Instant::now() >= deadline {
                    if !outbox.is_empty() {
                        tracing::warn!(
                            batches = outbox.len(),
                            "stopping with calls still in the outbox; they are written at the next start"
                        );
                    }
                    return;
                }
            }
            let wait = if !index_ok {
                Duration::from_millis(200)
            } else if drained {
                Duration::from_secs(5)
            } else {
                backoff.next_wait()
            };
            let _ = tokio::time::timeout(wait, wake.notified()).await;
        }
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
    sensor: &str,
    linker: &Linker,
    outbox: &Outbox,
    stats: &PersistStats,
    events: Option<&Emitter>,
) -> Result<(), DrainError> {
    let mut files = outbox.pending()?.into_iter().peekable();
    while files.peek().is_some() {
        let (paths, reports) = take_group(outbox, &mut files);
        if reports.is_empty() {
            continue;
        }
        // A lookup failure fails the group (it stays in the outbox); a CRM
        // relation the database refuses only costs those related links.
        let written = linker.write(db, sensor, &reports).await;
        stats
            .crm_relation_errors
            .store(linker.relation_errors(), Ordering::Relaxed);
        let written = written?;
        stats
            .db_rows_written
            .fetch_add(reports.len() as u64, Ordering::Relaxed);
        for r in &reports {
            tracing::debug!(call_id = %r.call_id, "call written to the database");
            if let Some(ev) = events {
                completed(ev, r);
            }
        }
        tracing::debug!(
            calls = written.calls,
            links_added = written.links_added,
            files = paths.len(),
            "batch written"
        );
        for path in &paths {
            outbox.remove(path)?;
        }
    }
    Ok(())
}

/// The next outbox files, oldest first, merged until they hold `MERGE_CALLS`
/// calls: a backlog of small batches (a call each when calls end a few at a
/// time) costs one commit, not one each. A file naming a call already in
/// the group starts the next group, as one upsert must not name a call twice.
fn take_group(
    outbox: &Outbox,
    files: &mut Peekable<IntoIter<PathBuf>>,
) -> (Vec<PathBuf>, Vec<CallReport>) {
    let (mut paths, mut reports) = (Vec::new(), Vec::new());
    let mut ids: HashSet<String> = HashSet::new();
    while reports.len() < MERGE_CALLS {
        let Some(path) = files.peek() else { break };
        let batch = match outbox.read(path) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "outbox batch cannot be read; moved aside as .bad");
                outbox.quarantine(path);
                files.next();
                continue;
            }
        };
        if !paths.is_empty() && batch.reports.iter().any(|r| ids.contains(&r.call_id)) {
            break;
        }
        ids.extend(batch.reports.iter().map(|r| r.call_id.clone()));
        reports.extend(batch.reports);
        paths.extend(files.next());
    }
    (paths, reports)
}

/// `call.completed`, and for a recording kept on the local disk (no upload
/// to wait for) its `recording.*` event. Both are dated at the call's end,
/// so writing the batch again after a crash makes the same events.
fn completed(ev: &Emitter, r: &CallReport) {
    ev.completed(&r.call_id, r.ended_at);
    let kind = match r.recording.status {
        RecordingStatus::Stored => EventType::RecordingStored,
        RecordingStatus::Failed => EventType::RecordingFailed,
        _ => return,
    };
    let data = RecordingData {
        call: 0,
        agent_id: None,
        status: r.recording.status.as_str().into(),
        key: r.recording.key.clone().or_else(|| r.recording.path.clone()),
        bytes: r.recording.bytes,
        detail: r.recording.detail.clone(),
    };
    ev.about_row(kind, &r.call_id, r.ended_at, &data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbTarget;
    use crate::sinks::persist::Submitter;

    fn ids(reports: &[CallReport]) -> Vec<&str> {
        reports.iter().map(|r| r.call_id.as_str()).collect()
    }

    #[test]
    fn outbox_files_merge_until_a_call_comes_again() {
        use super::super::outbox::tests::report;
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        outbox.append(&[report("a"), report("b")]).unwrap();
        outbox.append(&[report("c")]).unwrap();
        outbox.append(&[report("a")]).unwrap();
        outbox.append(&[report("d")]).unwrap();
        let mut files = outbox.pending().unwrap().into_iter().peekable();
        let (paths, reports) = take_group(&outbox, &mut files);
        assert_eq!((paths.len(), ids(&reports)), (2, vec!["a", "b", "c"]));
        let (paths, reports) = take_group(&outbox, &mut files);
        assert_eq!((paths.len(), ids(&reports)), (2, vec!["a", "d"]));
        assert!(files.peek().is_none());
    }

    #[test]
    fn a_merged_group_stops_at_its_size() {
        use super::super::outbox::tests::report;
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        for f in 0..3 {
            let batch: Vec<CallReport> = (0..MERGE_CALLS / 2)
                .map(|i| report(&format!("{f}-{i}")))
                .collect();
            outbox.append(&batch).unwrap();
        }
        let mut files = outbox.pending().unwrap().into_iter().peekable();
        let (paths, reports) = take_group(&outbox, &mut files);
        assert_eq!((paths.len(), reports.len()), (2, MERGE_CALLS));
        let (paths, _) = take_group(&outbox, &mut files);
        assert_eq!(paths.len(), 1);
    }

    /// Regression: at a stop, records that reach the outbox after the writer
    /// first found it empty must still be written before it finishes.
    #[tokio::test]
    async fn a_stop_writes_records_that_arrive_late() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Arc::new(Outbox::open(&dir.path().join("outbox")).unwrap());
        let url = format!("sqlite://{}", dir.path().join("calls.db").display());
        let (stats, wake) = (Arc::new(PersistStats::default()), Arc::new(Notify::new()));
        let target = DbTarget {
            url: url.clone(),
            opts: Default::default(),
            sensor: "default".into(),
        };
        let (stop, stop_rx) = watch::channel(None);
        let task = tokio::spawn(
            DbWriter {
                db: SharedDb::new(target.clone()),
                linker: Arc::new(Linker::new(&Default::default())),
                index_ready: None,
                outbox: outbox.clone(),
                stats: stats.clone(),
                wake: wake.clone(),
                events: None,
            }
            .run(stop_rx),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let submitter = Submitter {
            outbox: outbox.clone(),
            stats: stats.clone(),
            wake: wake.clone(),
        };
        submitter
            .submit(&[super::super::outbox::tests::report("late@pbx")])
            .unwrap();
        stop.send_replace(Some(Instant::now() + Duration::from_secs(10)));
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
