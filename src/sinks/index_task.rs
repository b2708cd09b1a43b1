//! Keeps the phone index current while the daemon runs: a full build at
//! start (retried while the database is away), then an incremental refresh
//! every `crm.refresh_secs` and a full rebuild every `crm.rebuild_secs`, which
//! also drops deleted CRM rows and re-reads tables without `updated_at`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::db::SharedDb;
use crate::matching::index::{self, BuildMode, IndexError, TypeReport};
use crate::ops::metrics::IndexGauge;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The index's figures for `/metrics`, by type.
#[derive(Debug, Default)]
pub struct IndexMetrics {
    types: Mutex<BTreeMap<String, IndexGauge>>,
}

impl IndexMetrics {
    pub fn snapshot(&self) -> Vec<IndexGauge> {
        self.types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Records a report; true when the type's counts changed.
    fn record(&self, r: &TypeReport) -> bool {
        let mut types = self.types.lock().unwrap_or_else(PoisonError::into_inner);
        let g = types
            .entry(r.record_type.clone())
            .or_insert_with(|| IndexGauge {
                record_type: r.record_type.clone(),
                ..IndexGauge::default()
            });
        let c = &r.counts;
        let before = (g.e164, g.extensions, g.invalid);
        g.e164 = c.valid.saturating_sub(c.extensions);
        g.extensions = c.extensions;
        g.invalid = c.invalid;
        if r.mode == BuildMode::Full {
            g.build_secs = r.secs;
        }
        before != (g.e164, g.extensions, g.invalid)
    }
}

/// Resolves once the first build attempt has finished, successfully or with
/// an error that is not the database being away: the database writer waits
/// for it so that calls are not matched against a half-built index.
#[derive(Clone, Debug)]
pub struct IndexReady(watch::Receiver<bool>);

impl IndexReady {
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn wait(&mut self) {
        // Err only when the task is gone; nothing is coming then either.
        let _ = self.0.wait_for(|ready| *ready).await;
    }
}

pub struct IndexHandle {
    pub ready: IndexReady,
    pub metrics: Arc<IndexMetrics>,
    pub(super) task: JoinHandle<()>,
}

impl IndexHandle {
    /// Stops the task; a build in progress is rolled back by the database.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Stops the task from elsewhere (the shutdown watcher).
    pub fn abort_handle(&self) -> tokio::task::AbortHandle {
        self.task.abort_handle()
    }
}

/// Starts the task on the current runtime.
pub fn spawn(cfg: &Config, db: SharedDb) -> IndexHandle {
    spawn_mode(cfg, db, Mode::Daemon)
}

/// For a one-off run (`pbxbridge replay`): bring the index up to date the
/// cheap way (`index::ensure_fresh`: a full build only for types never built
/// or built longer than `crm.rebuild_secs` ago), then stop.
pub fn spawn_once(cfg: &Config, db: SharedDb) -> IndexHandle {
    spawn_mode(cfg, db, Mode::Once)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Daemon,
    Once,
}

fn spawn_mode(cfg: &Config, db: SharedDb, mode: Mode) -> IndexHandle {
    let (tx, rx) = watch::channel(false);
    let metrics = Arc::new(IndexMetrics::default());
    let task = tokio::spawn(run(cfg.clone(), db, mode, tx, metrics.clone()));
    IndexHandle {
        ready: IndexReady(rx),
        metrics,
        task,
    }
}

async fn run(
    cfg: Config,
    shared: SharedDb,
    mode: Mode,
    ready: watch::Sender<bool>,
    metrics: Arc<IndexMetrics>,
) {
    if cfg.crm.records.is_empty() {
        tracing::info!("no [[crm.records]] configured: calls are not matched to CRM records");
        ready.send_replace(true);
        return;
    }
    let refresh_every = Duration::from_secs(cfg.crm.refresh_secs);
    let rebuild_every = Duration::from_secs(cfg.crm.rebuild_secs);
    let mut backoff = Backoff::new(BACKOFF_START, BACKOFF_MAX);
    let mut last_full: Option<Instant> = None;
    loop {
        let db = match shared.get().await {
            Ok(db) => db,
            Err(e) => {
                let wait = backoff.next_wait();
                if e.is_unavailable() {
                    tracing::warn!(error = %e, retry_in = ?wait, "phone index: database unreachable; retrying");
                } else {
                    tracing::error!(error = %e, retry_in = ?wait, "phone index: cannot open the database; retrying");
                    ready.send_replace(true);
                }
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let full = last_full.is_none_or(|t| t.elapsed() >= rebuild_every);
        let started = Instant::now();
        let results = if mode == Mode::Once {
            index::ensure_fresh_each(&db, &cfg).await
        } else if full {
            index::build_each(&db, &cfg).await
        } else {
            index::refresh_each(&db, &cfg).await
        };
        let away = results
            .iter()
            .any(|r| r.as_ref().is_err_and(IndexError::is_unavailable));
        for r in &results {
            log(r, &metrics);
        }
        if full && !away {
            last_full = Some(started);
            tracing::info!(
                secs = format!("{:.2}", started.elapsed().as_secs_f64()),
                "phone index built"
            );
        }
        if !away {
            ready.send_replace(true);
            if mode == Mode::Once {
                return;
            }
        }
        let pause = if away {
            shared.reset().await;
            backoff.next_wait()
        } else {
            backoff.reset();
            refresh_every
        };
        tokio::time::sleep(pause).await;
    }
}

fn log(result: &Result<TypeReport, IndexError>, metrics: &IndexMetrics) {
    match result {
        Ok(r) => {
            let changed = metrics.record(r);
            let c = &r.counts;
            let secs = format!("{:.2}", r.secs);
            match r.mode {
                BuildMode::Full => tracing::info!(
                    record_type = %r.record_type,
                    records = c.records,
                    values = c.values,
                    valid = c.valid,
                    extensions = c.extensions,
                    invalid = c.invalid,
                    secs,
                    "phone index: type built"
                ),
                BuildMode::Refresh if changed => tracing::info!(
                    record_type = %r.record_type,
                    records_read = c.records,
                    values = c.values,
                    valid = c.valid,
                    invalid = c.invalid,
                    secs,
                    "phone index: changed records refreshed"
                ),
                _ => tracing::debug!(
                    record_type = %r.record_type,
                    records_read = c.records,
                    secs,
                    "phone index: refreshed, nothing changed"
                ),
            }
        }
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "phone index: database unreachable; retrying")
        }
        Err(e) => tracing::error!(error = %e, "phone index: type not indexed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Pool;

    async fn sqlite_with_contacts(dir: &std::path::Path, table: &str) -> Config {
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let text = format!(
            "[database]\nurl = \"{url}\"\n[[crm.records]]\ntype = \"contact\"\ntable = \"{table}\"\nphones = [\"phone\"]\n"
        );
        let cfg = Config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        let db = index::connect(&cfg).await.unwrap();
        let Pool::Sqlite(p) = db.pool() else {
            panic!("not sqlite")
        };
        for sql in [
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, phone TEXT)",
            "INSERT INTO contacts VALUES (1, '(415) 555-1212'), (2, 'nobody'), (3, NULL)",
        ] {
            sqlx::query(sql).execute(p).await.unwrap();
        }
        db.close().await;
        cfg
    }

    fn shared(cfg: &Config) -> SharedDb {
        SharedDb::new(crate::db::DbTarget::from_config(cfg))
    }

    /// A guard against a hang, not a timing assertion.
    async fn wait(h: &mut IndexHandle) {
        tokio::time::timeout(Duration::from_secs(120), h.ready.wait())
            .await
            .expect("index task never became ready");
    }

    #[tokio::test]
    async fn without_crm_records_it_is_ready_at_once() {
        let cfg = Config::default();
        let mut h = spawn(&cfg, shared(&cfg));
        wait(&mut h).await;
        assert!(h.ready.is_ready());
        assert!(h.metrics.snapshot().is_empty());
    }

    #[tokio::test]
    async fn builds_at_start_and_publishes_counts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sqlite_with_contacts(dir.path(), "contacts").await;
        let mut h = spawn(&cfg, shared(&cfg));
        wait(&mut h).await;
        let m = h.metrics.snapshot();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].e164, m[0].extensions, m[0].invalid), (1, 0, 1));
        h.stop();
    }

    #[tokio::test]
    async fn a_broken_type_still_ends_the_first_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = sqlite_with_contacts(dir.path(), "no_such_table").await;
        let mut h = spawn(&cfg, shared(&cfg));
        wait(&mut h).await;
        assert!(h.metrics.snapshot().is_empty());
        h.stop();
    }
}
