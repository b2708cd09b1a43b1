//! The operator's HTTP endpoint: `/metrics`, `/healthz`, `/readyz`.
//!
//! Kept apart from any CRM-facing API (none is built yet) so it can listen on
//! localhost or a management network only, and so a scrape storm can never
//! slow the CRM's requests.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::metrics;
use super::OpsState;

#[derive(Debug, Clone)]
struct AdminState {
    ops: Arc<OpsState>,
    registry: Arc<Registry>,
}

/// The admin routes, with a metrics registry holding just the snapshot collector.
pub fn router(state: Arc<OpsState>) -> Router {
    let registry = metrics::registry(Arc::clone(&state));
    router_with_registry(state, registry)
}

/// As [`router`], for a caller that registered more metrics on `registry`
/// (start from [`metrics::registry`] to keep the snapshot metrics).
pub fn router_with_registry(state: Arc<OpsState>, registry: Registry) -> Router {
    Router::new()
        .route("/metrics", get(get_metrics))
        .route("/healthz", get(get_healthz))
        .route("/readyz", get(get_readyz))
        .fallback(not_found)
        .with_state(AdminState {
            ops: state,
            registry: Arc::new(registry),
        })
}

/// Serves the admin routes on `listener` until `shutdown` completes, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<OpsState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin endpoint listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn get_metrics(State(state): State<AdminState>) -> Response {
    match metrics::render(&state.registry) {
        Ok(body) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response(),
        Err(std::fmt::Error) => {
            // Only a bug in an encoder gets here; say so instead of serving half a page.
            tracing::error!("encoding metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "metrics encoding failed" })),
            )
                .into_response()
        }
    }
}

async fn get_healthz(State(state): State<AdminState>) -> Response {
    let live = state.ops.liveness();
    let age = live.heartbeat_age.as_secs_f64();
    let limit = live.stale_after.as_secs_f64();
    if live.is_live() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ok", "tracker_heartbeat_age_secs": age })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "stale",
                "stale": ["tracker"],
                "tracker_heartbeat_age_secs": age,
                "stale_after_secs": limit,
            })),
        )
            .into_response()
    }
}

async fn get_readyz(State(state): State<AdminState>) -> Response {
    // One read of the flags, so the list and the verdict can't disagree.
    let flags = state.ops.components();
    let not_ready: Vec<&str> = flags.iter().filter(|(_, r)| !r).map(|(c, _)| *c).collect();
    let components: serde_json::Map<String, serde_json::Value> = flags
        .iter()
        .map(|(c, ready)| ((*c).to_owned(), (*ready).into()))
        .collect();
    if not_ready.is_empty() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "components": components })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "not_ready": not_ready,
                "components": components,
            })),
        )
            .into_response()
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "error": "not found",
            "path": uri.path(),
            "endpoints": ["/metrics", "/healthz", "/readyz"],
        })),
    )
        .into_response()
}
