//! The one TOML file an admin edits. Unknown keys are errors, so a typo never
//! silently falls back to a default.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

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
    #[error("{}: {key}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        reason: String,
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
}

impl Default for PbxConfig {
    fn default() -> Self {
        PbxConfig {
            default_country: "US".into(),
            extension_pattern: "^[0-9]{2,6}$".into(),
            internal_networks: Vec::new(),
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
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: true,
            dir: PathBuf::from("recordings"),
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
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://pbxbridge.db".into(),
            url_file: None,
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("url_file", &self.url_file)
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

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Config::parse(&text, path)?;
        cfg.resolve_secrets(path)?;
        Ok(cfg)
    }

    /// Fills `database.url` from `url_file` or the environment; the file wins
    /// over the config text and the environment wins over both.
    pub fn resolve_secrets(&mut self, path: &Path) -> Result<(), ConfigError> {
        if let Some(file) = &self.database.url_file {
            let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Invalid {
                path: path.to_owned(),
                key: "database.url_file".into(),
                reason: format!("cannot read {}: {e}", file.display()),
            })?;
            self.database.url = text.lines().next().unwrap_or("").trim().to_owned();
        }
        if let Ok(url) = std::env::var(DATABASE_URL_ENV) {
            if !url.is_empty() {
                self.database.url = url;
            }
        }
        if self.database.url.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                key: "database.url".into(),
                reason: "is empty".into(),
            });
        }
        Ok(())
    }

    /// `path` only names the source in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            reason,
        };
        if let Err(e) = regex::Regex::new(&self.pbx.extension_pattern) {
            return Err(invalid("pbx.extension_pattern", e.to_string()));
        }
        if crate::matching::number::parse_country(&self.pbx.default_country).is_none() {
            return Err(invalid(
                "pbx.default_country",
                format!(
                    "{:?} is not an ISO 3166 alpha-2 country code such as \"US\" or \"DE\"",
                    self.pbx.default_country
                ),
            ));
        }
        let t = &self.tracker;
        for (key, v) in [
            ("tracker.no_response_secs", t.no_response_secs),
            ("tracker.ring_timeout_secs", t.ring_timeout_secs),
            ("tracker.rtp_timeout_secs", t.rtp_timeout_secs),
            ("tracker.max_duration_secs", t.max_duration_secs),
            ("tracker.bye_timeout_secs", t.bye_timeout_secs),
        ] {
            if v == 0 || v > 7 * 24 * 3600 {
                return Err(invalid(
                    key,
                    format!("{v} must be between 1 and 604800 seconds"),
                ));
            }
        }
        if t.max_calls == 0 {
            return Err(invalid("tracker.max_calls", "must be at least 1".into()));
        }
        let c = &self.capture;
        for (i, name) in c.interfaces.iter().enumerate() {
            if !interface_exists(name) {
                return Err(invalid(
                    &format!("capture.interfaces[{i}]"),
                    format!("no such interface {name:?}"),
                ));
            }
        }
        if !(64..=262_144).contains(&c.snaplen) {
            return Err(invalid(
                "capture.snaplen",
                format!("{} must be between 64 and 262144 bytes", c.snaplen),
            ));
        }
        if !(1..=4096).contains(&c.buffer_mib) {
            return Err(invalid(
                "capture.buffer_mib",
                format!("{} must be between 1 and 4096 MiB", c.buffer_mib),
            ));
        }
        if !(16..=16_777_216).contains(&c.queue_packets) {
            return Err(invalid(
                "capture.queue_packets",
                format!("{} must be between 16 and 16777216", c.queue_packets),
            ));
        }
        if c.folder_settle_secs == 0 {
            return Err(invalid(
                "capture.folder_settle_secs",
                "must be at least 1".into(),
            ));
        }
        if !(1..=10_000).contains(&self.hep.max_connections) {
            return Err(invalid(
                "hep.max_connections",
                format!("{} must be between 1 and 10000", self.hep.max_connections),
            ));
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")) {
            return Err(invalid(
                "database.url",
                format!("{db:?}: only sqlite:// URLs are supported in this version"),
            ));
        }
        Ok(())
    }
}

/// Live capture needs a real interface; "any" is libpcap's pseudo-device.
fn interface_exists(name: &str) -> bool {
    if name == "any" {
        return true;
    }
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return false;
    }
    Path::new("/sys/class/net").join(name).exists()
}
