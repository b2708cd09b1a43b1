//! `pbxbridge serve`: the HTTP API alone, over the configured database and
//! storage, with no capture (the central node of several sensors).

use tokio::signal::unix::{signal, SignalKind};

use std::sync::Arc;
use std::time::Duration;

use crate::api::event_source::DbResolve;
use crate::api::events::ApiEvents;
use crate::api::{ApiServeError, ApiStartError, ApiState};
use crate::config::Config;
use crate::db::{DbTarget, SharedDb};
use crate::events::live::LiveCalls;
use crate::events::nats::Consumer as NatsConsumer;
use crate::events::webhook::{WebhookError, Webhooks};
use crate::events::Events;
use crate::ops::metrics::MetricsSnapshot;
use crate::ops::{OpsState, DEFAULT_STALE_AFTER};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] ApiStartError),
    #[error(transparent)]
    Serve(#[from] ApiServeError),
    #[error("api.listen {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Events(#[from] crate::events::LogError),
    #[error(transparent)]
    Webhooks(#[from] WebhookError),
    #[error("cannot listen for signals: {0}")]
    Signals(#[source] std::io::Error),
}

/// Binds `[api] listen` and serves until SIGTERM or SIGINT.
pub async fn run(cfg: Config) -> Result<(), ServeError> {
    let api = cfg.api.clone().unwrap_or_default();
    if cfg.api.is_none() {
        tracing::warn!(listen = %api.listen, "no [api] section: serving on its defaults");
    }
    let db = SharedDb::new(DbTarget::from_config(&cfg));
    // Open and migrate now, so a wrong URL shows at start; an unreachable
    // server is retried by each request (answered 503 meanwhile).
    if let Err(e) = db.get().await {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database not reachable yet; requests answer 503 until it is");
        } else {
            tracing::error!(error = %e, "database");
        }
    }
    // Its own event log and webhook cursors, beside a daemon's that may
    // share the state folder.
    let own_state = cfg.daemon.state_dir.join("serve");
    let mut events = Events::open(
        &own_state.join("events"),
        crate::daemon::log_limits(&cfg),
        &cfg.pbx.sensor,
    )?;
    events.run(DbResolve::new(&cfg, db.clone()));
    let hooks = Webhooks::start(&cfg, &own_state, events.log.clone(), db.clone()).await?;
    // Every sensor's events, from NATS into this log.
    let consumer = cfg
        .events
        .nats
        .clone()
        .map(|n| NatsConsumer::start(n, events.log.clone()));
    let live = Arc::new(LiveCalls::default());
    let live_task = live.follow(events.log.clone());
    let api_events = ApiEvents::new(
        events.log.clone(),
        live,
        Some(events.emitter.clone()),
        Duration::from_secs(cfg.events.sse_heartbeat_secs.max(1)),
    );
    let state = ApiState::new(&cfg, db.clone(), &cfg.daemon.state_dir)?
        .with_events(api_events)
        .with_webhooks(hooks.clone());
    let listener = tokio::net::TcpListener::bind(api.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: api.listen,
            source,
        })?;
    let gauges = crate::ops::event_gauges::source(
        &events,
        Some(hooks.clone()),
        consumer.as_ref().map(|c| c.stats.clone()),
    );
    let admin = admin_endpoint(&cfg, db.clone(), gauges).await;
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
    };
    crate::api::serve(listener, state, stop).await?;
    if let Some(c) = consumer {
        c.stop(Duration::from_secs(5)).await;
    }
    events.finish(Duration::from_secs(5)).await;
    hooks.finish(Duration::from_secs(5)).await;
    live_task.abort();
    for task in admin {
        task.abort();
    }
    db.close().await;
    tracing::info!("pbxbridge serve stopped");
    Ok(())
}

/// `/metrics`, `/healthz` and `/readyz` on `[admin] listen`, as the daemon
/// has them: the event, webhook and NATS figures, and the database's
/// readiness. A port already taken (a daemon on the same host) is logged,
/// not fatal: the API is what `serve` is for.
async fn admin_endpoint(
    cfg: &Config,
    db: SharedDb,
    gauges: crate::ops::event_gauges::EventSource,
) -> Vec<tokio::task::JoinHandle<()>> {
    if !cfg.admin.enabled {
        return Vec::new();
    }
    let listener = match tokio::net::TcpListener::bind(cfg.admin.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(addr = %cfg.admin.listen, error = %e, "admin endpoint not started");
            return Vec::new();
        }
    };
    let ops = Arc::new(OpsState::new(DEFAULT_STALE_AFTER, &["database"]));
    let publisher = {
        let ops = ops.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                ops.publish(MetricsSnapshot {
                    events: gauges(),
                    uptime_secs: started.elapsed().as_secs(),
                    ..MetricsSnapshot::default()
                });
                ops.set_ready("database", db.get().await.is_ok());
                ops.set_live_heartbeat(std::time::Instant::now());
            }
        })
    };
    let server = tokio::spawn(async move {
        if let Err(e) = crate::ops::admin::serve(listener, ops, std::future::pending()).await {
            tracing::error!(error = %e, "admin endpoint stopped");
        }
    });
    vec![publisher, server]
}
