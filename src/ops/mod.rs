//! The operator's view of a running daemon: metrics, liveness, readiness and
//! systemd notifications.
//!
//! [`OpsState`] is the one thing shared between the daemon's threads and the admin
//! HTTP server: the tracker thread publishes a [`MetricsSnapshot`] about once a
//! second (which doubles as its liveness heartbeat), and each subsystem flips its
//! readiness flag.

pub mod admin;
pub mod event_gauges;
pub mod metrics;
pub mod notify;

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

pub use metrics::{HepCounters, IndexGauge, InterfaceCounters, MetricsSnapshot, QueueGauge};
pub use notify::Notifier;

/// How long the tracker may go without publishing before `/healthz` fails.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(10);

/// Shared between the daemon's threads and the admin server (wrap it in an `Arc`).
#[derive(Debug)]
pub struct OpsState {
    snapshot: RwLock<MetricsSnapshot>,
    ready: RwLock<BTreeMap<&'static str, bool>>,
    heartbeat: Mutex<Instant>,
    stale_after: Duration,
}

/// Liveness as `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Liveness {
    pub heartbeat_age: Duration,
    pub stale_after: Duration,
}

impl Liveness {
    pub fn is_live(&self) -> bool {
        self.heartbeat_age <= self.stale_after
    }
}

impl OpsState {
    /// `components` must all report ready before `/readyz` succeeds; they start
    /// not ready. The heartbeat starts now, so a freshly started tracker gets
    /// `stale_after` to publish its first snapshot.
    pub fn new(stale_after: Duration, components: &[&'static str]) -> Self {
        OpsState {
            snapshot: RwLock::new(MetricsSnapshot::default()),
            ready: RwLock::new(components.iter().map(|c| (*c, false)).collect()),
            heartbeat: Mutex::new(Instant::now()),
            stale_after,
        }
    }

    /// Replaces the snapshot `/metrics` shows and counts as a tracker heartbeat.
    pub fn publish(&self, snapshot: MetricsSnapshot) {
        // A panicking writer elsewhere must not take metrics and health down with it:
        // the data is plain counters, so a poisoned lock still holds usable values.
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
        self.set_live_heartbeat(Instant::now());
    }

    /// A copy of the latest published snapshot.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks a component ready or not. A component not named in [`OpsState::new`]
    /// is registered by its first call.
    pub fn set_ready(&self, component: &'static str, ready: bool) {
        let mut map = self.ready.write().unwrap_or_else(PoisonError::into_inner);
        let previous = map.insert(component, ready);
        if previous != Some(ready) {
            tracing::info!(component, ready, "readiness changed");
        }
    }

    /// Every registered component and whether it is ready, sorted by name.
    pub fn components(&self) -> Vec<(&'static str, bool)> {
        self.ready
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(c, r)| (*c, *r))
            .collect()
    }

    /// Registered components that are not ready; empty means ready.
    pub fn not_ready(&self) -> Vec<&'static str> {
        self.components()
            .into_iter()
            .filter(|(_, ready)| !ready)
            .map(|(c, _)| c)
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready().is_empty()
    }

    /// Records a tracker heartbeat at `now` (for a tracker that is alive but has
    /// nothing new to publish). An older `now` than the last one is ignored, so a
    /// late caller can't make a live tracker look stale.
    pub fn set_live_heartbeat(&self, now: Instant) {
        let mut beat = self
            .heartbeat
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now > *beat {
            *beat = now;
        }
    }

    /// Time since the last heartbeat.
    pub fn heartbeat_age(&self) -> Duration {
        let beat = *self
            .heartbeat
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Instant::now().saturating_duration_since(beat)
    }

    pub fn liveness(&self) -> Liveness {
        Liveness {
            heartbeat_age: self.heartbeat_age(),
            stale_after: self.stale_after,
        }
    }
}
