//! Human-readable logs by default, JSON on request; always on stderr so stdout
//! stays clean for `--json` output. The level can change on SIGHUP.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::LogFormat;

/// Environment variable that overrides `log.level`.
pub const LOG_ENV: &str = "PBXBRIDGE_LOG";

/// Changes the level of the running logger.
#[derive(Clone)]
pub struct LogHandle(Option<reload::Handle<EnvFilter, Registry>>);

#[derive(Debug, thiserror::Error)]
pub enum LogLevelError {
    #[error("log.level {level:?} is not a valid filter: {reason}")]
    Invalid { level: String, reason: String },
    #[error("the logger cannot be changed: {0}")]
    Reload(String),
}

impl LogHandle {
    /// Applies `level` unless `PBXBRIDGE_LOG` is set, which always wins.
    pub fn set_level(&self, level: &str) -> Result<bool, LogLevelError> {
        let filter = EnvFilter::try_new(level).map_err(|e| LogLevelError::Invalid {
            level: level.into(),
            reason: e.to_string(),
        })?;
        if std::env::var_os(LOG_ENV).is_some() {
            return Ok(false);
        }
        match &self.0 {
            Some(h) => h
                .reload(filter)
                .map(|_| true)
                .map_err(|e| LogLevelError::Reload(e.to_string())),
            None => Ok(false),
        }
    }
}

pub fn init(format: LogFormat, level: &str) -> LogHandle {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let res = match format {
        LogFormat::Json => registry.with(fmt.json().flatten_event(false)).try_init(),
        LogFormat::Text => registry.with(fmt).try_init(),
    };
    LogHandle(res.ok().map(|_| handle))
}
