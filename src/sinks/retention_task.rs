//! The daemon's retention: deletes recordings past `storage.retention_days`
//! on a schedule.

use std::time::Duration;

use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::db::{FailureLog, SharedDb};

/// Waits for the database first (retrying), and does nothing when retention
/// is off.
pub(super) async fn run(cfg: Config, shared: SharedDb, stop: watch::Receiver<bool>) {
    if cfg.storage.retention_days == 0 {
        return;
    }
    let storage = match crate::store::Storage::from_config(&cfg.storage) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "retention is off: the storage cannot be opened");
            return;
        }
    };
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut failures = FailureLog::default();
    let db = loop {
        if *stop.borrow() {
            return;
        }
        match shared.get().await {
            Ok(db) => break db,
            Err(e) => {
                let wait = backoff.next_wait();
                failures.failed("retention waits for the database", &e, wait);
                tokio::time::sleep(wait).await;
            }
        }
    };
    crate::store::retention::run_periodically(db, storage, cfg, stop).await;
}
