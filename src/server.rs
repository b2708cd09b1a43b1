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
use crate::events::webhook::{WebhookError, Webhooks};
use crate::events::nats::Consumer as NatsConsumer;
use crate::events::Events;

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
    db.close().await;
    tracing::info!("pbxbridge serve stopped");
    Ok(())
}
