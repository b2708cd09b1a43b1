//! `[events]`, `[events.nats]` and `[[webhooks]]`: how events leave
//! pbxbridge (DESIGN §9, §10).

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Events kept in the log (state folder, `events/`) for SSE resume once
    /// every webhook and NATS has them.
    pub log_max_events: u64,
    /// ... and for how many days at most.
    pub log_max_age_days: u64,
    /// Kept for a webhook or NATS that is away, at most; beyond it the
    /// oldest are dropped (counted in `pbxbridge_events_dropped_total`).
    pub log_hard_max_events: u64,
    /// An SSE stream with nothing to say sends a comment this often, so
    /// proxies keep it open.
    pub sse_heartbeat_secs: u64,
    /// Where webhooks may go: host names, IP addresses or networks
    /// (`crm.example.com`, `10.0.0.0/8`). Nothing else is ever called, so
    /// a webhook URL cannot be turned against other hosts.
    pub webhook_allow: Vec<String>,
    /// A receiver that has not answered in this long has failed this attempt.
    pub webhook_timeout_secs: u64,
    /// Waits between attempts (the Standard Webhooks schedule by default:
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the last, the
    /// delivery is kept as failed and can be redelivered through the API.
    pub webhook_retry_secs: Vec<u64>,
    /// Deliveries in flight at once per endpoint (events of one call are
    /// always sent one after another, in order).
    pub webhook_concurrency: usize,
    pub nats: Option<NatsConfig>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            log_max_events: 200_000,
            log_max_age_days: 7,
            log_hard_max_events: 2_000_000,
            sse_heartbeat_secs: 15,
            webhook_allow: Vec::new(),
            webhook_timeout_secs: 10,
            webhook_retry_secs: vec![5, 300, 1800, 7200, 18_000, 36_000, 36_000],
            webhook_concurrency: 8,
            nats: None,
        }
    }
}

/// NATS JetStream: sensors publish their events, `serve` consumes them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// `nats://host:4222` (several, comma-separated, for a cluster).
    pub url: String,
    /// A `.creds` file (NATS decentralised auth), or user and password file.
    pub credentials_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The JetStream stream, created when missing.
    pub stream: String,
    /// Subjects are `<prefix>.<sensor>.<type>`.
    pub subject_prefix: String,
    /// The durable consumer `serve` reads with; one name per central
    /// deployment, so several `serve` nodes share the work.
    pub consumer: String,
    /// How long the stream keeps events.
    pub max_age_days: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            credentials_file: None,
            user: None,
            password_file: None,
            stream: "PBXBRIDGE".into(),
            subject_prefix: "pbxbridge".into(),
            consumer: "pbxbridge-serve".into(),
            max_age_days: 7,
        }
    }
}

/// One webhook endpoint from the config (the API adds more, kept in the
/// database).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names it in logs, metrics and the API (`cfg-<name>`).
    pub name: String,
    pub url: String,
    /// Event types sent; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// A file holding the signing secret(s), `whsec_<base64>`, one per line:
    /// during a rotation, each is used to sign (several signatures).
    pub secret_file: PathBuf,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}
