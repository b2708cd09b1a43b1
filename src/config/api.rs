//! `[api]`: the CRM's HTTP API (`/v1`), served by `run` when the section is
//! present and by `serve` always.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key: both set, or neither (plain HTTP,
    /// for a reverse proxy in front).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Web origins allowed to call the API from a browser, e.g.
    /// `https://crm.example.com`. Empty: no cross-origin calls.
    pub cors_origins: Vec<String>,
    /// Largest JSON request body.
    pub max_body_kib: u64,
    /// Largest recording upload (`POST /v1/calls/{id}/recording`).
    pub max_upload_mib: u64,
    /// A request that takes longer is answered 503 (not streamed downloads,
    /// which run as long as the client reads).
    pub request_timeout_secs: u64,
    /// Signs the short-lived recording links (`/recording/link`). Every
    /// `serve` node behind one load balancer needs the same secret. Unset: a
    /// random secret kept in the state folder (`api-link-secret`).
    pub link_secret_file: Option<PathBuf>,
    /// How long a signed recording link works, at most.
    pub link_max_secs: u64,
    /// `GET /recording` on S3 answers 302 to a presigned URL instead of
    /// streaming through pbxbridge (the CRM's browser must reach S3).
    pub s3_redirect: bool,
    /// Extra roles beside the built-in admin, supervisor, agent, integration, ops.
    pub roles: Vec<RoleConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            cors_origins: Vec::new(),
            max_body_kib: 1024,
            max_upload_mib: 200,
            request_timeout_secs: 30,
            link_secret_file: None,
            link_max_secs: 3600,
            s3_redirect: false,
            roles: Vec::new(),
        }
    }
}

/// A role a key can have: what it may see and do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    pub name: String,
    /// `all`, or `own`: calls whose agent is the key's agent id.
    pub calls: CallScope,
    #[serde(default)]
    pub recordings: RecordingAccess,
    /// Any of `notes`, `links`, `calls` (create and delete calls).
    #[serde(default)]
    pub writes: Vec<WriteKind>,
    /// SIP messages and captures of calls.
    #[serde(default)]
    pub ops: bool,
    /// Keys and webhooks.
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallScope {
    All,
    Own,
}

/// Ordered: download includes listen.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordingAccess {
    #[default]
    None,
    Listen,
    Download,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    Notes,
    Links,
    Calls,
}

/// The roles every install has.
pub const BUILTIN_ROLES: [&str; 5] = ["admin", "supervisor", "agent", "integration", "ops"];
