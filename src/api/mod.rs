//! The CRM's HTTP API (`/v1`): call logs, a call's notes and links, customer
//! timelines, recordings with Range, keys and roles. Served by `run` when
//! `[api]` is set and by `serve` on its own; it reads and writes the same
//! database and storage as the sinks, and never touches the capture side.
//!
//! Conventions (DESIGN.md §8): JSON, RFC 3339 UTC times, E.164 numbers with
//! the raw value, RFC 9457 problems, `Authorization: Bearer` on every route,
//! keyset cursors on lists.

pub mod auth;
pub mod body;
mod call_csv;
pub mod call_item;
mod call_new;
mod call_page;
mod call_params;
pub mod call_quality;
pub mod call_ref;
mod call_write;
mod calls;
mod cursor_token;
mod event_link;
mod event_params;
mod event_schemas;
pub mod event_source;
pub mod events;
mod fields;
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod links;
mod notes;
pub mod openapi;
pub mod problem;
mod recording;
mod records;
pub mod roles;
mod secret;
mod serve;
mod webhooks;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::Router;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{ApiConfig, Config};
use crate::db::{Db, SharedDb};
use crate::phone::Normalizer;
use crate::store::Storage;

pub use call_ref::CallRef;
pub use keys::check_new_key as keys_check;
pub use problem::{ApiError, Problem};
pub use secret::LinkKey;
pub use serve::{serve, ApiServeError};

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiState {
    inner: Arc<Inner>,
    key_use: Arc<auth::KeyUse>,
    events: Option<events::ApiEvents>,
    webhooks: Option<crate::events::webhook::Webhooks>,
}

#[derive(Debug)]
struct Inner {
    cfg: Arc<Config>,
    api: ApiConfig,
    db: SharedDb,
    storage: Option<Storage>,
    numbers: Normalizer,
    link_key: LinkKey,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiStartError {
    #[error("api: {0}")]
    Secret(#[from] secret::SecretError),
    #[error("storage: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("pbx.default_country {0:?} is not a country code")]
    Country(String),
    #[error("pbx.extension_pattern: {0}")]
    Extension(#[from] regex::Error),
}

impl ApiState {
    /// `state_dir` keeps the link-signing secret when the config names none.
    pub fn new(cfg: &Config, db: SharedDb, state_dir: &Path) -> Result<ApiState, ApiStartError> {
        let api = cfg.api.clone().unwrap_or_default();
        let link_key = match &api.link_secret_file {
            Some(file) => LinkKey::from_file(file)?,
            None => LinkKey::load_or_create(&state_dir.join("api-link-secret"))?,
        };
        let country = crate::phone::parse_country(&cfg.pbx.default_country)
            .ok_or_else(|| ApiStartError::Country(cfg.pbx.default_country.clone()))?;
        let numbers = Normalizer::new(country, regex::Regex::new(&cfg.pbx.extension_pattern)?);
        let storage = Storage::from_config(&cfg.storage)?;
        Ok(ApiState {
            inner: Arc::new(Inner {
                cfg: Arc::new(cfg.clone()),
                api,
                db,
                storage,
                numbers,
                link_key,
            }),
            key_use: Arc::default(),
            events: None,
            webhooks: None,
        })
    }

    /// Serves live calls and SSE from this log, and reports the API's own
    /// events (notes, links) through its emitter.
    pub fn with_events(mut self, events: events::ApiEvents) -> ApiState {
        self.events = Some(events);
        self
    }

    /// Serves `/v1/webhooks` from this service.
    pub fn with_webhooks(mut self, webhooks: crate::events::webhook::Webhooks) -> ApiState {
        self.webhooks = Some(webhooks);
        self
    }

    /// The webhook service, when this node runs one.
    pub fn webhooks(&self) -> Option<&crate::events::webhook::Webhooks> {
        self.webhooks.as_ref()
    }

    /// The event side; 503 when this node keeps no events.
    pub fn events(&self) -> Result<&events::ApiEvents, ApiError> {
        self.events.as_ref().ok_or(ApiError::Unavailable)
    }

    /// Where the API's own events go, when events are kept.
    pub fn emitter(&self) -> Option<&crate::events::Emitter> {
        self.events.as_ref().and_then(|e| e.emitter.as_ref())
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// `[api]`, or its defaults when the section is absent.
    pub fn api_config(&self) -> &ApiConfig {
        &self.inner.api
    }

    /// `[api]` as the config has it (for the config's extra roles).
    pub fn api(&self) -> Option<&ApiConfig> {
        self.inner.cfg.api.as_ref()
    }

    /// The database, opened on first use.
    pub async fn db(&self) -> Result<Db, ApiError> {
        match self.inner.db.get().await {
            Ok(db) => Ok(db),
            Err(e) => {
                if e.is_unavailable() {
                    self.inner.db.reset().await;
                }
                Err(e.into())
            }
        }
    }

    /// Remote storage; `None` for the local backend (files under recording.dir).
    pub fn storage(&self) -> Option<&Storage> {
        self.inner.storage.as_ref()
    }

    /// Numbers as the call records store them (E.164, or an extension).
    pub fn numbers(&self) -> &Normalizer {
        &self.inner.numbers
    }

    pub fn link_key(&self) -> &LinkKey {
        &self.inner.link_key
    }

    /// The sensor name new and API-created calls carry.
    pub fn sensor(&self) -> &str {
        &self.inner.cfg.pbx.sensor
    }
}

/// An upload may take this long to arrive (it is capped in size too).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

/// Every `/v1` route with its OpenAPI description; with `timeout`, each
/// request that has not answered within it gets 503 (uploads get an hour).
fn api_routes(timeout: Option<Duration>) -> OpenApiRouter<ApiState> {
    let mut timed = OpenApiRouter::with_openapi(openapi::base())
        .merge(calls::routes())
        .merge(call_write::routes())
        .merge(records::routes())
        .merge(notes::routes())
        .merge(links::routes())
        .merge(recording::routes())
        .merge(keys::routes())
        .merge(events::routes())
        .merge(webhooks::routes())
        .merge(openapi::routes());
    let mut uploads = recording::upload_routes();
    if let Some(t) = timeout {
        timed = timed.layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            t,
        ));
        uploads = uploads.layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            UPLOAD_TIMEOUT,
        ));
    }
    timed.merge(uploads)
}

/// The OpenAPI document of every route (`GET /v1/openapi.json`).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = api_routes(None).split_for_parts().1;
    openapi::add_common_responses(&mut doc);
    event_schemas::add_event_schemas(&mut doc);
    doc
}

/// The whole API with its middleware: request ids, tracing, timeout, body
/// cap, compression, CORS.
pub fn router(state: ApiState) -> Router {
    let api = state.api_config().clone();
    let timeout = Duration::from_secs(api.request_timeout_secs.max(1));
    let (routes, mut doc) = api_routes(Some(timeout)).split_for_parts();
    openapi::add_common_responses(&mut doc);
    event_schemas::add_event_schemas(&mut doc);
    let doc = Arc::new(doc);
    let request_id = HeaderName::from_static("x-request-id");
    // Audio is already compressed, and a compressed Range answer would not
    // be the range asked for.
    let compress = SizeAbove::new(1024)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::const_new("audio/"))
        .and(NotForContentType::SSE);
    routes
        .layer(axum::Extension(doc))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::MethodNotAllowed {
                method: method.to_string(),
            }
        })
        .layer(DefaultBodyLimit::max(
            usize::try_from(api.max_body_kib.saturating_mul(1024)).unwrap_or(usize::MAX),
        ))
        .layer(CompressionLayer::new().compress_when(compress))
        .layer(cors(&api))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "api",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %id,
                    key = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

fn cors(api: &ApiConfig) -> CorsLayer {
    let origins: Vec<_> = api
        .cors_origins
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::RANGE,
            header::IF_RANGE,
            header::ACCEPT,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::CONTENT_LENGTH,
            header::ETAG,
            header::CONTENT_DISPOSITION,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(Duration::from_secs(600))
}
