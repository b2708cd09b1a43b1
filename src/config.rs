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
    #[error("{path}: `{key}` is invalid: {reason}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub pbx: PbxConfig,
    pub sip: SipConfig,
    pub tracker: TimersConfig,
    pub recording: RecordingConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://pbxbridge.db".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
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
        Config::parse(&text, path)
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
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
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
