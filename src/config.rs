//! The one TOML file an admin edits. Unknown keys are errors, so a typo never
//! silently falls back to a default.

use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

mod api;
mod events;
mod load;
mod validate;

pub use api::{ApiConfig, CallScope, RecordingAccess, RoleConfig, WriteKind, BUILTIN_ROLES};
pub use events::{EventsConfig, NatsConfig, WebhookConfig};

use validate::problems_text;
pub use validate::{Problem, Purpose};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// Every problem found, one line each.
    #[error("{}", problems_text(path, problems))]
    Invalid {
        /// `None`: the embedded defaults, with command-line overrides.
        path: Option<PathBuf>,
        problems: Vec<Problem>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub pbx: PbxConfig,
    pub sip: SipConfig,
    pub tracker: TimersConfig,
    pub recording: RecordingConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub capture: CaptureConfig,
    pub hep: HepConfig,
    pub admin: AdminConfig,
    pub daemon: DaemonConfig,
    pub crm: CrmConfig,
    pub storage: StorageConfig,
    /// The CRM's HTTP API; `run` serves it only when the section is present.
    pub api: Option<ApiConfig>,
    pub events: EventsConfig,
    pub webhooks: Vec<WebhookConfig>,
}

/// Live capture and the folder of rotating capture files (`pbxbridge run`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interfaces to capture on by name ("eth0", "lo", or "any"). Empty: no live capture.
    pub interfaces: Vec<String>,
    /// BPF filter applied in the kernel. Empty: everything.
    pub filter: String,
    pub promiscuous: bool,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Kernel capture buffer per interface, in MiB.
    pub buffer_mib: u32,
    /// Packets waiting between the capture threads and the tracker thread.
    pub queue_packets: usize,
    /// A folder of rotating captures (`tcpdump -G -w`), each read once it is complete.
    pub folder: Option<PathBuf>,
    /// A file nobody has written to for this long is complete even if no newer file follows.
    pub folder_settle_secs: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interfaces: Vec::new(),
            filter: String::new(),
            promiscuous: false,
            snaplen: 65535,
            buffer_mib: 32,
            queue_packets: 65536,
            folder: None,
            folder_settle_secs: 10,
        }
    }
}

/// The HEP v2/v3 listener (SIP mirrored by Asterisk, FreeSWITCH, Kamailio, OpenSIPS).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HepConfig {
    pub enabled: bool,
    /// Address for both the UDP socket and the TCP listener.
    pub listen: std::net::SocketAddr,
    /// TCP connections served at once; more are refused.
    pub max_connections: usize,
}

impl Default for HepConfig {
    fn default() -> Self {
        HepConfig {
            enabled: false,
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], 9060)),
            max_connections: 64,
        }
    }
}

/// The operator's HTTP endpoint: /metrics, /healthz, /readyz.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub enabled: bool,
    pub listen: std::net::SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9091)),
        }
    }
}

/// Where the daemon keeps what must survive a crash: the outbox of finished
/// calls not yet in the database and the snapshots of calls in flight.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    pub state_dir: PathBuf,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            state_dir: PathBuf::from("state"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PbxConfig {
    /// ISO 3166 country used to read national numbers, e.g. "US", "DE".
    pub default_country: String,
    /// A dialled or calling user part that matches this is an internal extension.
    pub extension_pattern: String,
    /// Networks of phones and the PBX; decides direction when numbers don't.
    pub internal_networks: Vec<IpNet>,
    /// Names this capture point. A call is one row per (sensor, Call-ID): keep
    /// the default unless two independent PBXs write to one database.
    pub sensor: String,
}

impl Default for PbxConfig {
    fn default() -> Self {
        PbxConfig {
            default_country: "US".into(),
            extension_pattern: "^[0-9]{2,6}$".into(),
            internal_networks: Vec::new(),
            sensor: "default".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// UDP/TCP ports always treated as SIP.
    pub ports: Vec<u16>,
    /// Also recognise SIP on any other port by its first line.
    pub detect_any_port: bool,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            ports: vec![5060, 5080],
            detect_any_port: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimersConfig {
    /// Calls tracked at once; more are counted and dropped.
    pub max_calls: usize,
    /// INVITE with no response at all.
    pub no_response_secs: u64,
    /// Ringing with no final response.
    pub ring_timeout_secs: u64,
    /// Answered call whose RTP stopped.
    pub rtp_timeout_secs: u64,
    /// Absolute cap on a call's length.
    pub max_duration_secs: u64,
    /// BYE sent but never confirmed by a 200.
    pub bye_timeout_secs: u64,
}

impl Default for TimersConfig {
    fn default() -> Self {
        TimersConfig {
            max_calls: 100_000,
            no_response_secs: 32,
            ring_timeout_secs: 300,
            rtp_timeout_secs: 300,
            max_duration_secs: 4 * 3600,
            bye_timeout_secs: 32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    pub enabled: bool,
    /// Finished WAV files go to `{dir}/{yyyy}/{mm}/{dd}/{call id}.wav`.
    pub dir: PathBuf,
    /// What a finished recording is kept as: `wav`, or `opus` (Ogg/Opus,
    /// RFC 7845, `{call id}.ogg`), about a tenth of the size.
    pub format: RecordingFormat,
    /// Ogg/Opus bitrate in bit/s for both channels together.
    pub opus_bitrate: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingFormat {
    #[default]
    Wav,
    Opus,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: true,
            dir: PathBuf::from("recordings"),
            format: RecordingFormat::Wav,
            opus_bitrate: 32_000,
        }
    }
}

/// The URL may hold a password: it can come from `url_file` or the
/// `PBXBRIDGE_DATABASE_URL` environment variable instead of this file, and
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: String,
    /// A file whose first line is the URL (e.g. a systemd credential).
    pub url_file: Option<PathBuf>,
    /// Put in front of every table pbxbridge owns (`pbx_` → `pbx_calls`), so
    /// they sit beside the CRM's own tables without clashing.
    pub table_prefix: String,
    /// PostgreSQL schema or MySQL database for pbxbridge's tables (created if
    /// missing). Empty: the one the URL connects to. Not for SQLite.
    pub schema: String,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://pbxbridge.db".into(),
            url_file: None,
            table_prefix: String::new(),
            schema: String::new(),
            max_connections: 4,
        }
    }
}

/// Where finished recordings are kept. `local` leaves them in `recording.dir`
/// (the default); `share` copies them to a mounted network share and `s3` to
/// an S3-compatible bucket, both from the local spool, which keeps each file
/// until storage has it.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// Key prefix: objects are `{prefix}/{yyyy}/{mm}/{dd}/{call id}.wav`.
    pub prefix: String,
    /// `share`: the mounted NFS/SMB folder.
    pub path: Option<PathBuf>,
    pub s3: S3Config,
    /// Delete recordings older than this many days (the call record stays,
    /// marked `expired`). 0: keep forever.
    pub retention_days: u32,
    /// How often the daemon looks for expired recordings.
    pub expire_interval_secs: u64,
    /// Alarm (metric and log) when the local spool holds more than this.
    pub spool_alarm_mib: u64,
    /// Files larger than this are uploaded in parts.
    pub multipart_threshold_mib: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Local,
            prefix: "recordings".into(),
            path: None,
            s3: S3Config::default(),
            retention_days: 0,
            expire_interval_secs: 3600,
            spool_alarm_mib: 10_240,
            multipart_threshold_mib: 16,
        }
    }
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("backend", &self.backend)
            .field("prefix", &self.prefix)
            .field("path", &self.path)
            .field("s3", &self.s3)
            .field("retention_days", &self.retention_days)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Recordings stay in `recording.dir`.
    #[default]
    Local,
    /// A mounted network share (`storage.path`).
    Share,
    /// An S3-compatible object store (`[storage.s3]`).
    S3,
}

/// The secret can come from this file, `secret_access_key_file`, or the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`); `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// `https://s3.example.com` or `http://10.0.0.5:3900`; empty: AWS.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// `http://bucket.host/key` instead of `http://host/bucket/key`.
    pub virtual_hosted_style: bool,
    /// Allow plain HTTP (on-prem servers without TLS).
    pub allow_http: bool,
    /// Server-side encryption: "" (none), "AES256", or "aws:kms" with `kms_key_id`.
    pub sse: String,
    pub kms_key_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub secret_access_key_file: Option<PathBuf>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            region: "us-east-1".into(),
            bucket: String::new(),
            virtual_hosted_style: false,
            allow_http: false,
            sse: String::new(),
            kms_key_id: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            secret_access_key_file: None,
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret_access_key.is_empty() {
            ""
        } else {
            "***"
        };
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("allow_http", &self.allow_http)
            .field("sse", &self.sse)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &secret)
            .field("secret_access_key_file", &self.secret_access_key_file)
            .finish()
    }
}

/// The CRM's own tables whose records can own a phone number, and how records
/// relate, so a call can be linked to a contact's account as well.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrmConfig {
    pub records: Vec<CrmRecord>,
    pub relations: Vec<CrmRelation>,
    /// Re-read records changed since the last look (where `updated_at` is set).
    pub refresh_secs: u64,
    /// Rebuild the whole index this often, which also drops deleted records.
    pub rebuild_secs: u64,
}

impl Default for CrmConfig {
    fn default() -> Self {
        CrmConfig {
            records: Vec::new(),
            relations: Vec::new(),
            refresh_secs: 60,
            rebuild_secs: 6 * 3600,
        }
    }
}

/// One kind of CRM record: a table of the CRM's (contacts, accounts, …)
/// whose rows calls are linked to. "Record" here is the CRM's word; the
/// core's per-call snapshot is `call::CallRecord`, the stored call is
/// `report::CallReport`, and the WAV file is a recording (`crate::record`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmRecord {
    /// contact, lead, account, deal, case, user, …: the name links carry.
    #[serde(rename = "type")]
    pub kind: String,
    /// The CRM table, optionally schema-qualified (`crm.contacts`).
    pub table: String,
    /// Its primary key column.
    #[serde(default = "default_id_column")]
    pub id: String,
    /// Columns holding phone numbers or extensions. May be empty for records
    /// reached only through a relation (e.g. deals).
    #[serde(default)]
    pub phones: Vec<String>,
    /// A SQL expression for the name shown with a link, e.g.
    /// `first_name || ' ' || last_name`. Trusted: it is run as written.
    pub name: Option<String>,
    /// A column that changes whenever the row does; enables incremental refresh.
    pub updated_at: Option<String>,
    /// Its phones identify the agent of a call (default: true for type "user").
    pub agent: Option<bool>,
    /// A column a call note may set (`POST /v1/calls/{id}/notes` with
    /// `status`): the only write pbxbridge makes to a CRM table, off unless set.
    pub status_column: Option<String>,
    /// The values `status_column` may be set to.
    #[serde(default)]
    pub status_values: Vec<String>,
}

fn default_id_column() -> String {
    "id".into()
}

impl CrmRecord {
    pub fn is_agent(&self) -> bool {
        self.agent.unwrap_or(self.kind == "user")
    }
}

/// When a call links to a `from` record, also link the `to` records it names.
/// Exactly one of `column` (belongs-to: `from`'s table holds the `to` id, e.g.
/// contacts.account_id) or `foreign_key` (has-many: `to`'s table holds the
/// `from` id, e.g. deals.account_id) is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmRelation {
    pub from: String,
    pub to: String,
    pub column: Option<String>,
    pub foreign_key: Option<String>,
    /// A SQL condition on `to`'s table, e.g. `stage NOT IN ('won', 'lost')`. Trusted.
    pub filter: Option<String>,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("url_file", &self.url_file)
            .field("table_prefix", &self.table_prefix)
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

/// Environment variable that overrides `database.url`.
pub const DATABASE_URL_ENV: &str = "PBXBRIDGE_DATABASE_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. "info" or "pbxbridge=debug".
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}
