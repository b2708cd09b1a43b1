//! Command line. The `replay` contract is relied on by tools outside the project:
//! keep its flags and its `--json` output stable.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "pbxbridge",
    version,
    about = "SIP call tracking and recording for the CRM"
)]
pub struct Cli {
    /// Log format on stderr (overrides the config file).
    #[arg(long, global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay pcap/pcapng captures: track every call, record answered ones, write call records.
    Replay {
        /// Config file (TOML). Without it the embedded defaults are used.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL, e.g. sqlite://pbxbridge.db (created when missing).
        #[arg(long)]
        db: Option<String>,
        /// Folder for the WAV recordings.
        #[arg(long)]
        recordings: Option<PathBuf>,
        /// Print one JSON object per finished call on stdout.
        #[arg(long)]
        json: bool,
        /// State folder whose outbox holds calls on their way to the database
        /// (default: `[daemon] state_dir`, shared with the daemon, so either
        /// one writes what the other could not). Locked while replay runs.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Seconds to wait at the end for the database to take every call; past
        /// that, replay exits with 1 and the calls stay in the outbox.
        #[arg(long, value_name = "SECS", default_value_t = crate::replay::DEFAULT_DB_WAIT.as_secs())]
        db_wait: u64,
        /// Capture files, replayed in the order given.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the daemon: capture live, from a folder of captures and/or HEP; record
    /// answered calls; write every finished call to the database.
    Run {
        /// Config file (TOML). Without it the embedded defaults are used.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a config file and print what is wrong with it, if anything.
    CheckConfig { file: PathBuf },
}

/// Applies command-line overrides on top of the config file.
pub fn effective_config(
    config: Option<&PathBuf>,
    db: Option<&String>,
    recordings: Option<&PathBuf>,
    log_format: Option<&String>,
) -> Result<Config, crate::config::ConfigError> {
    let mut cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(db) = db {
        cfg.database.url = db.clone();
    }
    if let Some(dir) = recordings {
        cfg.recording.dir = dir.clone();
    }
    match log_format.map(String::as_str) {
        Some("json") => cfg.log.format = LogFormat::Json,
        Some("text") => cfg.log.format = LogFormat::Text,
        _ => {}
    }
    Ok(cfg)
}
