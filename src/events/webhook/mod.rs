//! Webhooks (DESIGN §9): every event an endpoint wants, POSTed to it signed
//! as the Standard Webhooks specification says, from the event log as a
//! durable outbox. Endpoints come from `[[webhooks]]` and from the API
//! (`/v1/webhooks`, kept in the database); each has a dispatcher and, in
//! the state folder (`webhooks/<id>/`), a cursor, its failed deliveries and
//! whether a 410 disabled it.
//!
//! Deliveries retry on the configured schedule (±20%), heed Retry-After on
//! 429 and 503, stop at 410 (the endpoint is disabled), and go only where
//! `events.webhook_allow` lets them.

pub mod allow;
mod dispatch;
pub mod endpoint;
pub mod files;
mod registry;
pub mod schedule;
mod send;
mod service;
pub mod sign;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::events::EventLog;
use crate::time::Timestamp;

pub use allow::{AllowList, BadEntry, Refused};
pub use dispatch::EndpointGauges;
pub use endpoint::{Endpoint, EndpointError, Source};
pub use files::{FailedDelivery, FileError};
pub use schedule::Schedule;
pub use service::Webhooks;
pub use sign::{Secret, SecretError};

/// How long a rotated-out secret keeps signing.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(86_400);

/// Counters over every endpoint since start.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Requests sent (first attempts and retries).
    pub attempts: AtomicU64,
    /// Events a receiver took (2xx).
    pub delivered: AtomicU64,
    /// Attempts that failed (an error status, no answer, refused).
    pub attempt_failures: AtomicU64,
    /// Attempts not made: the destination is not allowed.
    pub refused: AtomicU64,
    /// Deliveries whose schedule ran out (kept for redelivery).
    pub failed: AtomicU64,
    /// Endpoints disabled by a 410.
    pub disabled: AtomicU64,
}

/// One endpoint's gauges, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointGauge {
    pub id: String,
    pub backlog: u64,
    pub oldest_pending_age: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("events.webhook_allow: {0}")]
    Allow(#[from] BadEntry),
    #[error("the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no webhook {id:?}")]
    NotFound { id: String },
    #[error("webhook {id:?} has no failed delivery of event {event_id:?}")]
    NoDelivery { id: String, event_id: String },
    #[error("webhook {id:?} comes from the config ([[webhooks]]): change it there")]
    ReadOnly { id: String },
    #[error("webhook {id:?} is disabled; enable it first")]
    Disabled { id: String },
    #[error("at most {max} webhooks can be made through the API")]
    TooMany { max: usize },
    #[error("webhook {id:?} has too many redeliveries waiting; try again shortly")]
    Busy { id: String },
    #[error("{0}")]
    Url(#[from] Refused),
    #[error("{0}")]
    Type(#[from] crate::events::model::UnknownEventType),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the webhook service has stopped")]
    Stopped,
}

/// An endpoint as the API shows it: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointInfo {
    /// `wh_<ULID>`, or `cfg-<name>` for one from the config.
    pub id: String,
    pub source: Source,
    pub url: String,
    /// Event types sent; empty: all.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why it is disabled: a 410 from the receiver, the API, or the config.
    pub disabled_reason: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
    /// During a rotation: when the previous secret stops signing.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_until: Option<Timestamp>,
    /// Events not yet delivered or given up on.
    pub backlog: u64,
    /// Seconds since the oldest of them happened.
    pub oldest_pending_secs: Option<f64>,
}

/// A new endpoint (`POST /v1/webhooks`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// http or https, to a host `events.webhook_allow` lists.
    pub url: String,
    /// Event types to send, e.g. `["call.ringing", "call.completed"]`; empty or unset: all.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Changes to an endpoint (`PATCH /v1/webhooks/{id}`); unset: unchanged.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `true` after a 410 sends again, starting with the events that
    /// happen from then on.
    pub enabled: Option<bool>,
}

/// A receiver answered 410: its dispatcher has stopped.
struct Gone {
    id: String,
    /// Which dispatcher: one started since goes on.
    serial: u64,
    reason: String,
}

/// What every dispatcher shares.
struct Ctx {
    log: Arc<EventLog>,
    client: reqwest::Client,
    allow: Arc<AllowList>,
    schedule: Schedule,
    concurrency: usize,
    stats: Arc<WebhookStats>,
    gone: mpsc::Sender<Gone>,
    /// Numbers the dispatchers.
    serials: AtomicU64,
}
