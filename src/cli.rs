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
    /// The index of the CRM's phone values that calls are matched against.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Per record type: records, values, valid, invalid, extensions, when
    /// built; then the values that are not valid numbers.
    Stats {
        /// Config file (TOML). Without it the embedded defaults are used.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides the config file).
        #[arg(long)]
        db: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Invalid values listed at most.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Read every configured CRM table again and rebuild the index.
    Rebuild {
        /// Config file (TOML) with the [[crm.records]] to index.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL (overrides the config file).
        #[arg(long)]
        db: Option<String>,
        /// Only this record type (`crm.records[].type`).
        #[arg(long = "type")]
        kind: Option<String>,
    },
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
