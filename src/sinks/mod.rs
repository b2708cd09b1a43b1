//! Where finished calls go, for the daemon and `pbxbridge replay` alike: the
//! outbox on disk, the database writer (each call matched against the phone
//! index), the uploader (recordings to remote storage) and, in the daemon,
//! retention, all on one database handle and under one lock of the state
//! folder.
//!
//! `Sinks::start` brings them up; finished calls go in through a `Submitter`
//! (or the daemon's persist thread); `finish` waits, up to a deadline, for
//! what was handed over to reach the database and storage. The shutdown
//! future given to `start` stops the background work (phone index
//! refreshes, retention) as soon as the run begins to stop.

mod db_writer;
mod index_task;
mod outbox;
mod persist;
mod retention_task;
mod state_lock;
mod wait;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use index_task::{IndexMetrics, IndexReady};
pub use outbox::{Outbox, OutboxError};
pub use persist::{PersistStats, Submitter};
pub use state_lock::{Holder, StateLock, StateLockError};

use crate::config::Config;
use crate::db::{DbError, DbTarget, SharedDb};
use crate::events::Emitter;
use crate::recording::InflightJournal;
use crate::report::CallReport;
use crate::store::uploader::{UploadControl, UploadStats, Uploader};

/// How long a daemon stop lets an upload in progress finish.
const UPLOAD_STOP_GRACE: Duration = Duration::from_secs(5);
/// Batches of finished calls the persist thread may have waiting.
const PERSIST_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum SinksError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Lock(#[from] StateLockError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot use state folder {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the persist thread: {0}")]
    Thread(#[source] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs until stopped: keeps the phone index fresh, applies retention,
    /// waits for a database that is away however long it takes.
    Daemon,
    /// One pass: brings the index up to date once, says at once when the
    /// database refuses us, and waits for another replay holding the state
    /// folder (up to `lock_wait`).
    Replay { lock_wait: Duration },
}

/// What `finish` left undone.
#[derive(Debug, Default)]
pub struct Finished {
    /// Calls still in the outbox (this run's and earlier ones').
    pub unwritten_calls: u64,
    /// Outbox batches left for the next start.
    pub outbox_batches: usize,
    /// Why the database could not take them, when it was away.
    pub last_db_error: Option<String>,
    /// Replay: recordings the storage did not take in time (files, bytes).
    pub unuploaded: Option<(u64, u64)>,
}

struct Uploads {
    task: JoinHandle<()>,
    control: UploadControl,
    stats: Arc<UploadStats>,
}

pub struct Sinks {
    role: Role,
    state_dir: PathBuf,
    _lock: StateLock,
    submitter: Submitter,
    /// Calls an earlier run left in the outbox.
    leftover: u64,
    index: index_task::IndexHandle,
    stop_writer: watch::Sender<Option<Instant>>,
    writer: Option<JoinHandle<()>>,
    uploads: Option<Uploads>,
    retention: Option<(JoinHandle<()>, watch::Sender<bool>)>,
    persist: Option<std::thread::JoinHandle<()>>,
    /// Waits for the shutdown future.
    watcher: JoinHandle<()>,
    db: SharedDb,
}

impl Sinks {
    /// Locks the state folder, opens the outbox and starts the database
    /// writer, the phone index task and (with remote storage) the uploader;
    /// the daemon also retention. When `shutdown` resolves, the background
    /// work stops; `finish` completes the stop.
    pub async fn start<S>(
        cfg: &Config,
        state_dir: &Path,
        role: Role,
        events: Option<Emitter>,
        shutdown: S,
    ) -> Result<Sinks, SinksError>
    where
        S: Future<Output = ()> + Send + 'static,
    {
        std::fs::create_dir_all(state_dir).map_err(|source| SinksError::State {
            path: state_dir.to_path_buf(),
            source,
        })?;
        // The daemon and replay drain the same outbox; one at a time.
        let lock = match role {
            Role::Daemon => StateLock::acquire_daemon(state_dir)?,
            Role::Replay { lock_wait } => wait::lock_state(state_dir, lock_wait).await?,
        };
        let outbox = Arc::new(Outbox::open(&state_dir.join("outbox"))?);
        // Replay counts what it leaves behind; the daemon never gives up.
        let leftover = match role {
            Role::Daemon => 0,
            Role::Replay { .. } => outbox.calls()?,
        };
        if leftover > 0 {
            tracing::info!(
                calls = leftover,
                outbox = %state_dir.join("outbox").display(),
                "calls an earlier run left in the outbox are written too"
            );
        }
        let db = SharedDb::new(DbTarget::from_config(cfg));
        if role != Role::Daemon {
            preflight(&db).await?;
        }
        // Only recordings are uploaded; the spool is resumed from the start:
        // what earlier runs left goes first.
        let uploader = if cfg.recording.enabled {
            Uploader::new(&cfg.storage, &cfg.recording.dir, db.clone(), events.clone())
        } else {
            None
        };
        let uploads = uploader.map(|u| Uploads {
            stats: u.stats(),
            control: u.control(),
            task: tokio::spawn(u.run()),
        });
        let retention = (role == Role::Daemon).then(|| {
            let (stop, rx) = watch::channel(false);
            (
                tokio::spawn(retention_task::run(cfg.clone(), db.clone(), rx)),
                stop,
            )
        });
        // Calls are matched against the phone index: the writer waits for
        // its first build (reading captures does not).
        let index = match role {
            Role::Daemon => index_task::spawn(cfg, db.clone()),
            Role::Replay { .. } => index_task::spawn_once(cfg, db.clone()),
        };
        let submitter = Submitter {
            outbox,
            stats: Arc::default(),
            wake: Arc::new(Notify::new()),
        };
        let (stop_writer, stop_rx) = watch::channel(None);
        let writer = tokio::spawn(
            db_writer::DbWriter {
                db: db.clone(),
                linker: Arc::new(crate::matching::linker::Linker::new(&cfg.crm)),
                index_ready: Some(index.ready.clone()),
                outbox: submitter.outbox.clone(),
                stats: submitter.stats.clone(),
                wake: submitter.wake.clone(),
                events: events.clone(),
            }
            .run(stop_rx),
        );
        let index_stop = index.abort_handle();
        let retention_stop = retention.as_ref().map(|(_, s)| s.clone());
        let watcher = tokio::spawn(async move {
            shutdown.await;
            index_stop.abort();
            if let Some(s) = retention_stop {
                let _ = s.send(true);
            }
        });
        Ok(Sinks {
            role,
            state_dir: state_dir.to_path_buf(),
            _lock: lock,
            submitter,
            leftover,
            index,
            stop_writer,
            writer: Some(writer),
            uploads,
            retention,
            persist: None,
            watcher,
            db,
        })
    }

    /// Where finished calls go in (from a thread: it fsyncs).
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// The daemon's persist thread: batches sent here reach the outbox (retried
    /// until they do) and are then forgotten by `journal`. It ends when every
    /// sender is gone; `finish` waits for that.
    pub fn persist_thread(
        &mut self,
        journal: Option<InflightJournal>,
    ) -> Result<crossbeam_channel::Sender<Vec<CallReport>>, SinksError> {
        let (tx, rx) = crossbeam_channel::bounded(PERSIST_QUEUE);
        let submitter = self.submitter.clone();
        let thread = std::thread::Builder::new()
            .name("pbxbridge-persist".into())
            .spawn(move || persist::persist_thread(rx, submitter, journal))
            .map_err(SinksError::Thread)?;
        self.persist = Some(thread);
        Ok(tx)
    }

    /// The database handle every sink shares (the HTTP API uses it too).
    pub fn db(&self) -> &SharedDb {
        &self.db
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.submitter.outbox
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.state_dir.join("outbox")
    }

    pub fn stats(&self) -> &Arc<PersistStats> {
        &self.submitter.stats
    }

    pub fn index_metrics(&self) -> &Arc<IndexMetrics> {
        &self.index.metrics
    }

    pub fn upload_stats(&self) -> Option<&Arc<UploadStats>> {
        self.uploads.as_ref().map(|u| &u.stats)
    }

    /// Waits for every call handed over to reach the database, up to
    /// `deadline` from now; what is left waits in the outbox (and the spool)
    /// for the next start. The persist thread, if any, must be losing its
    /// last sender (the daemon has stopped its tracker).
    pub async fn finish(mut self, deadline: Duration) -> Finished {
        if let Some(t) = self.persist.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let until = Instant::now() + deadline;
        self.stop_writer.send_replace(Some(until));
        self.submitter.wake.notify_one();
        let stats = self.submitter.stats.clone();
        let expected = self.leftover + stats.calls_submitted.load(Ordering::Relaxed);
        if let Some(mut writer) = self.writer.take() {
            match self.role {
                Role::Daemon => {
                    let _ = writer.await;
                }
                Role::Replay { .. } => {
                    wait::for_writer(&mut writer, self.outbox(), &stats, expected, until).await
                }
            }
        }
        self.index.stop();
        if let Some((task, stop)) = self.retention.take() {
            let _ = stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let mut unuploaded = None;
        if let Some(Uploads {
            mut task,
            control,
            stats: up,
        }) = self.uploads.take()
        {
            match self.role {
                // The last recordings stay in the spool for the next start;
                // an upload in hand may finish.
                Role::Daemon => {
                    control.stop();
                    if tokio::time::timeout(UPLOAD_STOP_GRACE, &mut task)
                        .await
                        .is_err()
                    {
                        task.abort();
                    }
                }
                Role::Replay { .. } => {
                    control.finish();
                    if !wait::for_uploads(&mut task, &up, &control, until).await {
                        unuploaded = Some((
                            up.pending_files.load(Ordering::Relaxed),
                            up.pending_bytes.load(Ordering::Relaxed),
                        ));
                    }
                }
            }
        }
        self.db.close().await;
        let outbox = self.outbox();
        Finished {
            unwritten_calls: if outbox.is_empty() {
                0
            } else {
                wait::unwritten(expected, &stats)
            },
            outbox_batches: outbox.len(),
            last_db_error: stats.last_db_error(),
            unuploaded,
        }
    }
}

impl Drop for Sinks {
    /// Dropped without `finish` (an error on the way): stop every task; what
    /// reached the outbox and the spool stays there for the next run.
    fn drop(&mut self) {
        self.watcher.abort();
        self.index.stop();
        if let Some(w) = &self.writer {
            w.abort();
        }
        if let Some(u) = &self.uploads {
            u.control.stop();
            u.task.abort();
        }
        if let Some((t, _)) = &self.retention {
            t.abort();
        }
    }
}

/// A database that refuses us (bad URL, password, a newer schema) will not get
/// better by waiting: say so at once. One that cannot be reached is the
/// outbox's job.
async fn preflight(db: &SharedDb) -> Result<(), DbError> {
    match db.get().await {
        Ok(_) => Ok(()),
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "database unreachable; finished calls wait in the outbox until it answers");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
