//! The webhook service: the endpoints, a dispatcher for each enabled one,
//! and what the API asks of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::allow::{AllowList, Guard};
use super::dispatch::{Cmd, Handle};
use super::endpoint::{parse_types, Endpoint, Source, API_PREFIX};
use super::files::{FailedDelivery, Files};
use super::registry::{blocking, known_cursors, lock, not_found, read_only, Service, Slot};
use super::sign::Secret;
use super::{
    Ctx, EndpointChange, EndpointGauge, EndpointInfo, NewEndpoint, Schedule, WebhookError,
    WebhookStats, ROTATION_OVERLAP,
};
use crate::config::Config;
use crate::db::webhooks::WebhookRow;
use crate::db::SharedDb;
use crate::events::EventLog;
use crate::time::Timestamp;

/// Endpoints made through the API, at most.
pub const MAX_API_ENDPOINTS: usize = 100;
/// A dispatcher being stopped for a change gets this long to save its cursor.
const CHANGE_STOP: Duration = Duration::from_secs(5);

/// The running webhook service. Cheap to clone: the API holds one.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Service>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("endpoints", &self.inner.slots().len())
            .finish()
    }
}

fn client(allow: &Arc<AllowList>, timeout: Duration) -> Result<reqwest::Client, WebhookError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect would lead past the allow-list; a proxy would resolve
        // the name itself.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(Guard(allow.clone())))
        .user_agent(concat!("pbxbridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(WebhookError::Client)
}

impl Webhooks {
    /// Starts a dispatcher for every enabled endpoint of the config now, and
    /// for those of the database once it answers (it may be away at start).
    pub async fn start(
        cfg: &Config,
        state_dir: &Path,
        log: Arc<EventLog>,
        db: SharedDb,
    ) -> Result<Webhooks, WebhookError> {
        let ev = &cfg.events;
        let allow = Arc::new(AllowList::parse(&ev.webhook_allow)?);
        let root = state_dir.join("webhooks");
        std::fs::create_dir_all(&root).map_err(|source| WebhookError::StateDir {
            path: root.clone(),
            source,
        })?;
        let (gone_tx, gone_rx) = mpsc::channel(64);
        let ctx = Arc::new(Ctx {
            client: client(&allow, Duration::from_secs(ev.webhook_timeout_secs.max(1)))?,
            allow,
            schedule: Schedule::from_secs(&ev.webhook_retry_secs),
            concurrency: ev.webhook_concurrency.clamp(1, 64),
            stats: Arc::default(),
            gone: gone_tx,
            serials: AtomicU64::new(1),
            log,
        });
        let startup_pins = known_cursors(&root)
            .into_iter()
            .map(|c| ctx.log.pin(c))
            .collect();
        let svc = Arc::new(Service {
            ctx,
            root,
            db,
            slots: Mutex::new(BTreeMap::new()),
            ops: tokio::sync::Mutex::new(()),
            loaded: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            background: Mutex::new(Vec::new()),
            startup_pins: Mutex::new(startup_pins),
        });
        for c in &cfg.webhooks {
            svc.install(Endpoint::from_config(c)?, None).await?;
        }
        let tasks = vec![
            tokio::spawn(svc.clone().load()),
            tokio::spawn(svc.clone().watch_gone(gone_rx)),
        ];
        *lock(&svc.background) = tasks;
        Ok(Webhooks { inner: svc })
    }

    /// Stops every dispatcher; each saves its cursor (`deadline` at most).
    pub async fn finish(&self, deadline: Duration) {
        let svc = &self.inner;
        svc.stopped.store(true, Ordering::Release);
        for t in lock(&svc.background).drain(..) {
            t.abort();
        }
        let _op = svc.ops.lock().await;
        let handles: Vec<Handle> = svc
            .slots()
            .values_mut()
            .filter_map(|s| s.run.take())
            .collect();
        for h in &handles {
            h.stop();
        }
        let end = tokio::time::Instant::now() + deadline;
        for h in handles {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            h.join(left).await;
        }
    }

    pub fn stats(&self) -> &Arc<WebhookStats> {
        &self.inner.ctx.stats
    }

    /// Backlog and age of the oldest pending event, per enabled endpoint.
    pub fn gauges(&self) -> Vec<EndpointGauge> {
        let now = Timestamp::now();
        self.inner
            .slots()
            .values()
            .filter_map(|s| {
                let g = &s.run.as_ref()?.gauges;
                Some(EndpointGauge {
                    id: s.ep.id.clone(),
                    backlog: g.backlog.load(Ordering::Relaxed),
                    oldest_pending_age: g.oldest_pending_age(now),
                })
            })
            .collect()
    }

    /// The database's endpoints are loaded (and sending).
    pub fn loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    pub fn list(&self) -> Vec<EndpointInfo> {
        self.inner.slots().values().map(info).collect()
    }

    pub fn get(&self, id: &str) -> Result<EndpointInfo, WebhookError> {
        self.inner
            .slots()
            .get(id)
            .map(info)
            .ok_or_else(|| not_found(id))
    }

    /// Creates an endpoint that sends from the events that happen next;
    /// the answer holds its secret, shown this once.
    pub async fn create(&self, new: NewEndpoint) -> Result<(EndpointInfo, Secret), WebhookError> {
        let svc = &self.inner;
        let _op = svc.op().await?;
        let url = svc.check_url(&new.url).await?;
        let types = parse_types(&new.events)?;
        let api_count = svc
            .slots()
            .values()
            .filter(|s| s.ep.source == Source::Api)
            .count();
        if api_count >= MAX_API_ENDPOINTS {
            return Err(WebhookError::TooMany {
                max: MAX_API_ENDPOINTS,
            });
        }
        let secret = Secret::generate()?;
        let now = Timestamp::now();
        let row = WebhookRow {
            id: format!("{API_PREFIX}{}", ulid::Ulid::new()),
            url,
            events: types.iter().map(|t| t.as_str().to_owned()).collect(),
            secret: secret.expose().to_owned(),
            previous_secret: None,
            previous_until: None,
            enabled: new.enabled,
            disabled_reason: (!new.enabled).then(|| BY_API.to_owned()),
            created_at: now,
            updated_at: now,
        };
        let files = Arc::new(Files::new(&svc.root, &row.id));
        let end = svc.ctx.log.last_seq();
        let f = files.clone();
        blocking(move || f.write_cursor(end)).await?;
        let inserted = match svc.db().await {
            Ok(db) => db.insert_webhook(&row).await.map_err(WebhookError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = inserted {
            let f = files.clone();
            let _ = blocking(move || f.remove_all()).await;
            return Err(e);
        }
        tracing::info!(webhook = %row.id, url = %row.url, "webhook endpoint created");
        let ep = Endpoint::from_row(&row)?;
        svc.install(ep, Some(row.clone())).await?;
        Ok((self.get(&row.id)?, secret))
    }

    pub async fn update(
        &self,
        id: &str,
        change: EndpointChange,
    ) -> Result<EndpointInfo, WebhookError> {
        let svc = &self.inner;
        let _op = svc.op().await?;
        let (mut row, was_enabled, reason) = {
            let slots = svc.slots();
            let s = slots.get(id).ok_or_else(|| not_found(id))?;
            let row = s.row.clone().ok_or_else(|| read_only(id))?;
            (row, s.ep.enabled, s.ep.disabled_reason.clone())
        };
        if let Some(url) = &change.url {
            row.url = svc.check_url(url).await?;
        }
        if let Some(events) = &change.events {
            row.events = parse_types(events)?
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect();
        }
        let enable = change.enabled.unwrap_or(was_enabled);
        row.enabled = enable;
        row.disabled_reason = match (enable, was_enabled) {
            (true, _) => None,
            (false, true) => Some(BY_API.to_owned()),
            (false, false) => reason,
        };
        row.updated_at = Timestamp::now();
        if !svc.db().await?.update_webhook(&row).await? {
            return Err(not_found(id));
        }
        let ep = Arc::new(Endpoint::from_row(&row)?);
        let (old, files) = {
            let mut slots = svc.slots();
            let s = slots.get_mut(id).ok_or_else(|| not_found(id))?;
            s.ep = ep.clone();
            s.row = Some(row);
            let old = if enable != was_enabled {
                s.run.take()
            } else {
                if let Some(h) = &s.run {
                    h.spec.send_replace(ep.clone());
                }
                None
            };
            (old, s.files.clone())
        };
        if let Some(h) = old {
            h.join(CHANGE_STOP).await;
        }
        if enable && !was_enabled {
            // Back on: from the events that happen now, as a new endpoint.
            let (f, end) = (files.clone(), svc.ctx.log.last_seq());
            blocking(move || f.clear_disabled().and_then(|()| f.write_cursor(end))).await?;
            let h = svc.launch(&files, ep).await?;
            if let Some(s) = svc.slots().get_mut(id) {
                s.run = Some(h);
            }
        }
        tracing::info!(webhook = %id, enabled = enable, "webhook endpoint changed");
        self.get(id)
    }

    pub async fn delete(&self, id: &str) -> Result<(), WebhookError> {
        let svc = &self.inner;
        let _op = svc.op().await?;
        {
            let slots = svc.slots();
            let s = slots.get(id).ok_or_else(|| not_found(id))?;
            if s.ep.source != Source::Api {
                return Err(read_only(id));
            }
        }
        svc.db().await?.delete_webhook(id).await?;
        let Some(slot) = svc.slots().remove(id) else {
            return Err(not_found(id));
        };
        if let Some(h) = slot.run {
            h.join(CHANGE_STOP).await;
        }
        let files = slot.files;
        blocking(move || files.remove_all()).await?;
        tracing::info!(webhook = %id, "webhook endpoint deleted");
        Ok(())
    }

    /// A new secret; the old one signs too for a day, so the receiver can
    /// switch meanwhile. A second rotation within the day drops the oldest.
    pub async fn rotate_secret(&self, id: &str) -> Result<Secret, WebhookError> {
        let svc = &self.inner;
        let _op = svc.op().await?;
        let mut row = {
            let slots = svc.slots();
            let s = slots.get(id).ok_or_else(|| not_found(id))?;
            s.row.clone().ok_or_else(|| read_only(id))?
        };
        let secret = Secret::generate()?;
        let now = Timestamp::now();
        row.previous_secret = Some(std::mem::replace(
            &mut row.secret,
            secret.expose().to_owned(),
        ));
        row.previous_until = Some(now.saturating_add(ROTATION_OVERLAP));
        row.updated_at = now;
        if !svc.db().await?.update_webhook(&row).await? {
            return Err(not_found(id));
        }
        let ep = Arc::new(Endpoint::from_row(&row)?);
        if let Some(s) = svc.slots().get_mut(id) {
            if let Some(h) = &s.run {
                h.spec.send_replace(ep.clone());
            }
            s.ep = ep;
            s.row = Some(row);
        }
        tracing::info!(webhook = %id, "webhook secret rotated");
        Ok(secret)
    }

    /// Deliveries that ran out of retries and were not redelivered, newest first.
    pub async fn failed(&self, id: &str) -> Result<Vec<FailedDelivery>, WebhookError> {
        let files = self.inner.files(id)?;
        blocking(move || files.failed()).await
    }

    /// Sends a failed delivery again (same `webhook-id`, a fresh schedule).
    pub async fn redeliver(&self, id: &str, event_id: &str) -> Result<(), WebhookError> {
        let found = self
            .failed(id)
            .await?
            .into_iter()
            .find(|d| d.event_id == event_id)
            .ok_or_else(|| WebhookError::NoDelivery {
                id: id.to_owned(),
                event_id: event_id.chars().take(64).collect(),
            })?;
        let slots = self.inner.slots();
        let s = slots.get(id).ok_or_else(|| not_found(id))?;
        let h = s
            .run
            .as_ref()
            .ok_or_else(|| WebhookError::Disabled { id: id.to_owned() })?;
        h.cmd
            .try_send(Cmd::Redeliver(found))
            .map_err(|_| WebhookError::Busy { id: id.to_owned() })
    }
}

/// Why an endpoint disabled through the API is.
const BY_API: &str = "disabled through the API";

fn info(s: &Slot) -> EndpointInfo {
    let now = Timestamp::now();
    let g = s.run.as_ref().map(|h| &h.gauges);
    EndpointInfo {
        id: s.ep.id.clone(),
        source: s.ep.source,
        url: s.ep.url.clone(),
        events: s.ep.types.iter().map(|t| t.as_str().to_owned()).collect(),
        enabled: s.ep.enabled,
        disabled_reason: s.ep.disabled_reason.clone(),
        created_at: s.ep.created_at,
        previous_secret_until: s
            .ep
            .secrets
            .iter()
            .filter_map(|(_, until)| *until)
            .find(|u| now < *u),
        backlog: g.map_or(0, |g| g.backlog.load(Ordering::Relaxed)),
        oldest_pending_secs: g
            .and_then(|g| g.oldest_pending_age(now))
            .map(|d| d.as_secs_f64()),
    }
}
