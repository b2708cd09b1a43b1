//! The service's registry of endpoints: each with its files and, when
//! enabled, its dispatcher; loaded from the config at once and from the
//! database when it answers, changed one operation at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::allow::Refused;
use super::dispatch::{self, Handle};
use super::endpoint::Endpoint;
use super::files::{FileError, Files};
use super::{Ctx, Gone, WebhookError};
use crate::backoff::Backoff;
use crate::db::webhooks::WebhookRow;
use crate::db::{Db, SharedDb};
use crate::events::Pin;
use crate::time::Timestamp;

/// A URL longer than this is refused.
const MAX_URL: usize = 2048;

pub(super) struct Service {
    pub(super) ctx: Arc<Ctx>,
    pub(super) root: PathBuf,
    pub(super) db: SharedDb,
    pub(super) slots: Mutex<BTreeMap<String, Slot>>,
    /// Changes one at a time (API calls, a 410, the load from the database).
    pub(super) ops: tokio::sync::Mutex<()>,
    pub(super) loaded: AtomicBool,
    pub(super) stopped: AtomicBool,
    pub(super) background: Mutex<Vec<JoinHandle<()>>>,
    /// Until the database's endpoints are loaded, what their cursors have
    /// not passed stays in the log.
    pub(super) startup_pins: Mutex<Vec<Pin>>,
}

pub(super) struct Slot {
    pub(super) ep: Arc<Endpoint>,
    /// The database row of an API endpoint.
    pub(super) row: Option<WebhookRow>,
    pub(super) files: Arc<Files>,
    pub(super) run: Option<Handle>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FileError> + Send + 'static,
) -> Result<T, WebhookError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| WebhookError::Stopped)?
        .map_err(Into::into)
}

pub(super) fn not_found(id: &str) -> WebhookError {
    WebhookError::NotFound {
        id: id.chars().take(64).collect(),
    }
}

pub(super) fn read_only(id: &str) -> WebhookError {
    WebhookError::ReadOnly { id: id.to_owned() }
}

/// The cursors already in the state folder.
pub(super) fn known_cursors(root: &Path) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        Files::new(root, &name).read_cursor().ok().flatten()
    })
    .collect()
}
impl Service {
    pub(super) fn slots(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        lock(&self.slots)
    }

    pub(super) async fn op(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, WebhookError> {
        let guard = self.ops.lock().await;
        if self.stopped.load(Ordering::Acquire) {
            return Err(WebhookError::Stopped);
        }
        Ok(guard)
    }

    pub(super) async fn db(&self) -> Result<Db, WebhookError> {
        match self.db.get().await {
            Ok(db) => Ok(db),
            Err(e) => {
                if e.is_unavailable() {
                    self.db.reset().await;
                }
                Err(e.into())
            }
        }
    }

    pub(super) fn files(&self, id: &str) -> Result<Arc<Files>, WebhookError> {
        self.slots()
            .get(id)
            .map(|s| s.files.clone())
            .ok_or_else(|| not_found(id))
    }

    /// A URL from the API: allowed, and resolving to allowed addresses now.
    pub(super) async fn check_url(&self, url: &str) -> Result<String, WebhookError> {
        let url = url.trim();
        if url.len() > MAX_URL {
            return Err(Refused::Url {
                reason: format!("longer than {MAX_URL} characters"),
            }
            .into());
        }
        self.ctx.allow.check_reachable(url).await?;
        Ok(url.to_owned())
    }

    /// Adds an endpoint and starts its dispatcher when it is enabled and no
    /// 410 from the same URL disabled it.
    pub(super) async fn install(
        &self,
        mut ep: Endpoint,
        row: Option<WebhookRow>,
    ) -> Result<(), WebhookError> {
        let files = Arc::new(Files::new(&self.root, &ep.id));
        if ep.enabled {
            let f = files.clone();
            let marker = tokio::task::spawn_blocking(move || f.disabled())
                .await
                .ok()
                .flatten();
            if let Some(d) = marker.filter(|d| d.url == ep.url) {
                ep.enabled = false;
                ep.disabled_reason = Some(d.reason);
            }
        }
        let ep = Arc::new(ep);
        let run = match ep.enabled {
            true => Some(self.launch(&files, ep.clone()).await?),
            false => None,
        };
        let old = self.slots().insert(
            ep.id.clone(),
            Slot {
                ep,
                row,
                files,
                run,
            },
        );
        if let Some(h) = old.and_then(|s| s.run) {
            h.stop();
        }
        Ok(())
    }

    /// Starts the dispatcher from the saved cursor, or from now.
    pub(super) async fn launch(
        &self,
        files: &Arc<Files>,
        ep: Arc<Endpoint>,
    ) -> Result<Handle, WebhookError> {
        let (f, end) = (files.clone(), self.ctx.log.last_seq());
        let cursor = blocking(move || match f.read_cursor()? {
            Some(c) => Ok(c),
            None => f.write_cursor(end).map(|()| end),
        })
        .await?;
        Ok(dispatch::spawn(self.ctx.clone(), files.clone(), ep, cursor))
    }

    /// Loads the database's endpoints, waiting for the database if need be.
    pub(super) async fn load(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let rows = loop {
            let got = match self.db().await {
                Ok(db) => db.webhooks().await.map_err(WebhookError::from),
                Err(e) => Err(e),
            };
            match got {
                Ok(rows) => break rows,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook endpoints not loaded from the database yet; retrying");
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        };
        let Ok(_op) = self.op().await else {
            return;
        };
        for row in rows {
            let id = row.id.clone();
            let added = match Endpoint::from_row(&row) {
                Ok(ep) => self.install(ep, Some(row)).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = added {
                tracing::error!(webhook = %id, error = %e, "webhook endpoint not started");
            }
        }
        self.loaded.store(true, Ordering::Release);
        lock(&self.startup_pins).clear();
    }

    /// A receiver answered 410: the endpoint is disabled, in the database too.
    pub(super) async fn watch_gone(self: Arc<Self>, mut rx: mpsc::Receiver<Gone>) {
        while let Some(g) = rx.recv().await {
            let Ok(_op) = self.op().await else {
                return;
            };
            let row = {
                let mut slots = self.slots();
                let Some(s) = slots.get_mut(&g.id) else {
                    continue;
                };
                // A dispatcher started since (the endpoint was enabled again) goes on.
                if s.run.as_ref().is_none_or(|h| h.serial != g.serial) {
                    continue;
                }
                s.run = None;
                let mut ep = (*s.ep).clone();
                ep.enabled = false;
                ep.disabled_reason = Some(g.reason.clone());
                s.ep = Arc::new(ep);
                s.row.as_mut().map(|r| {
                    r.enabled = false;
                    r.disabled_reason = Some(g.reason.clone());
                    r.updated_at = Timestamp::now();
                    r.clone()
                })
            };
            if let Some(r) = row {
                let saved = match self.db().await {
                    Ok(db) => db.update_webhook(&r).await.map_err(WebhookError::from),
                    Err(e) => Err(e),
                };
                if let Err(e) = saved {
                    // The state folder keeps it; the next start applies it.
                    tracing::warn!(webhook = %r.id, error = %e, "cannot record the disabling in the database");
                }
            }
        }
    }
}
