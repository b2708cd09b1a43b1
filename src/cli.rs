//! Command line. The `replay` contract is relied on by tools outside the project:
//! keep its flags and its `--json` output stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::call::{Direction, Outcome};
use crate::config::{Config, LogFormat, Purpose};
use crate::time::Timestamp;

mod calls;
mod keys;

pub use calls::run_calls;
pub use keys::run_keys;

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
        /// Database URL, overriding the config file's database.url.
        #[arg(long)]
        db: Option<String>,
    },
    /// Serve the CRM's HTTP API ([api]) alone, over the configured database
    /// and storage, with no capture: the central node in front of a database
    /// that several sensors write to.
    Serve {
        /// Config file (TOML). Without it the embedded defaults are used.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL, overriding the config file's database.url.
        #[arg(long)]
        db: Option<String>,
    },
    /// API keys for the HTTP API: create (prints the token once), list, revoke.
    Keys {
        #[command(flatten)]
        target: DbArgs,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check a config file as `run` would, and print every problem with it.
    CheckConfig {
        /// The config file (TOML) to check.
        file: PathBuf,
    },
    /// The call log: list and show written calls, link them to CRM records by hand.
    Calls {
        #[command(flatten)]
        target: DbArgs,
        #[command(subcommand)]
        command: CallsCommand,
    },
    /// Link every call already written whose other party has one of this CRM
    /// record's numbers (source "backfill"). Running it again adds nothing.
    MatchPastCalls {
        #[command(flatten)]
        target: DbArgs,
        /// A type from [[crm.records]], e.g. contact.
        #[arg(value_name = "TYPE")]
        record_type: String,
        /// The record's id.
        #[arg(value_name = "ID")]
        record_id: String,
    },
    /// The index of the CRM's phone values that calls are matched against.
    Index {
        #[command(flatten)]
        target: DbArgs,
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Recordings in storage: links for the CRM, retention.
    Recordings {
        #[command(flatten)]
        target: DbArgs,
        #[command(subcommand)]
        command: RecordingsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// Print a time-limited link to a call's recording (S3 backend).
    Link {
        /// The call's SIP Call-ID.
        call_id: String,
        /// How long the link works: seconds, or with s/m/h/d (at most 7d).
        #[arg(long, default_value = "15m")]
        expires: String,
    },
    /// Delete recordings older than storage.retention_days; the calls stay,
    /// marked expired.
    Expire {
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Where the calls are: the config file and, optionally, another database.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// Config file (TOML). Without it the embedded defaults are used.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Database URL, overriding the config file's.
    #[arg(long, global = true)]
    pub db: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// Link a call to a CRM record (source "manual"); links a removed link again.
    Link {
        /// The call's SIP Call-ID.
        call_id: String,
        /// A type from [[crm.records]], e.g. contact.
        #[arg(value_name = "TYPE")]
        record_type: String,
        /// The record's id.
        #[arg(value_name = "ID")]
        record_id: String,
    },
    /// Remove a link; matching never adds it back.
    Unlink {
        /// The call's SIP Call-ID.
        call_id: String,
        /// A type from [[crm.records]], e.g. contact.
        #[arg(value_name = "TYPE")]
        record_type: String,
        /// The record's id.
        #[arg(value_name = "ID")]
        record_id: String,
    },
    /// Show a call and its links (removed ones marked).
    Show {
        /// The call's SIP Call-ID.
        call_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the newest calls; the options narrow the list.
    List {
        /// Calls with this number as any party's, read as a CRM phone value is
        /// (national numbers in pbx.default_country): `(415) 555-1212`,
        /// `+14155551212`, or an extension.
        #[arg(long)]
        number: Option<String>,
        /// Calls started at or after this: RFC 3339 (`2026-11-21T10:00:00Z`)
        /// or a date (`2026-11-21`, from its start, UTC).
        #[arg(long, value_name = "TIME", value_parser = calls::parse_since)]
        since: Option<Timestamp>,
        /// Calls started before this: RFC 3339, or a date (that whole day
        /// included, UTC).
        #[arg(long, value_name = "TIME", value_parser = calls::parse_until)]
        until: Option<Timestamp>,
        /// Calls with this outcome; repeat for several.
        #[arg(long, value_parser = calls::outcome_parser())]
        outcome: Vec<Outcome>,
        /// Calls in this direction; repeat for several.
        #[arg(long, value_parser = calls::direction_parser())]
        direction: Vec<Direction>,
        /// Calls of this agent: the extension or the CRM user's id.
        #[arg(long)]
        agent: Option<String>,
        /// A CRM record's calls, with how each was linked: TYPE ID, e.g.
        /// `--record contact 42`.
        #[arg(long, num_args = 2, value_names = ["TYPE", "ID"])]
        record: Vec<String>,
        /// At most this many calls, newest first (1 to 1000).
        #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token (shown this once; only a hash is kept).
    Create {
        /// What the key is for, e.g. crm-prod.
        #[arg(long)]
        name: String,
        /// admin, supervisor, agent, integration, ops, or an [[api.roles]] name.
        #[arg(long)]
        role: String,
        /// The CRM user id whose calls a see-own role (agent) sees.
        #[arg(long)]
        agent_id: Option<String>,
        /// The key stops working after this long: 90d, 12h, 30m (default: never).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id or prefix; it stops working at once.
    Revoke {
        /// The key's id or prefix (from `keys list`).
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Per record type: records, values, valid, invalid, extensions, when
    /// built; then the values that are not valid numbers.
    Stats {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Invalid values listed at most.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Read every configured CRM table again and rebuild the index.
    Rebuild {
        /// Only this record type (`crm.records[].type`).
        #[arg(long = "type")]
        kind: Option<String>,
    },
}

/// The config a command runs with: the file (or the embedded defaults) with
/// the command line's overrides on top, checked for `purpose`. `run` and
/// `check-config` both come here, so they cannot disagree; every problem is
/// reported at once.
pub fn effective_config(
    config: Option<&PathBuf>,
    db: Option<&String>,
    recordings: Option<&PathBuf>,
    log_format: Option<&String>,
    purpose: Purpose,
) -> Result<Config, crate::config::ConfigError> {
    let (mut cfg, problems) = match config {
        Some(p) => Config::read(p)?,
        None => (Config::default(), Vec::new()),
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
    cfg.checked(config.map(PathBuf::as_path), problems, purpose)
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Link(#[from] crate::db::CallLinkError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("cannot print JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Index(#[from] crate::matching::index::IndexError),
    #[error("--type {kind:?}: no [[crm.records]] entry has this type")]
    UnknownIndexType { kind: String },
    #[error("{failed} of {total} record types could not be indexed (see the errors above)")]
    IndexFailed { failed: usize, total: usize },
    #[error(transparent)]
    RecordingLink(#[from] crate::store::link::RecordingLinkError),
    #[error(transparent)]
    Storage(#[from] crate::store::StoreError),
    #[error(transparent)]
    Retention(#[from] crate::store::retention::RetentionError),
    #[error("--expires {text:?}: give seconds or a number with s, m, h or d, from 1s to 7d")]
    BadLifetime { text: String },
    #[error("links: storage.backend is local: recordings are files under recording.dir, and links need the s3 backend (the HTTP API serves them: POST /v1/calls/{{id}}/recording/link)")]
    NoLinkStorage,
    #[error("--number {text:?}: not a phone number or extension (national numbers are read as in pbx.default_country {country:?})")]
    BadNumber { text: String, country: String },
    #[error("{failed} recordings could not be expired (see above)")]
    ExpireFailed { failed: usize },
    #[error("--{param}: {reason}")]
    BadArg { param: String, reason: String },
    #[error("no active key {key:?}")]
    NoSuchKey { key: String },
}

impl CommandError {
    /// 2 for a wrong command line (as for a bad config), 1 for a failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Link(
                crate::db::CallLinkError::UnknownType { .. }
                | crate::db::CallLinkError::BadRecordId { .. },
            ) => 2,
            CommandError::UnknownIndexType { .. }
            | CommandError::BadLifetime { .. }
            | CommandError::BadNumber { .. }
            | CommandError::BadArg { .. } => 2,
            _ => 1,
        }
    }
}

/// Runs `match-past-calls` and prints what it added.
pub async fn run_match_past_calls(
    cfg: &Config,
    record_type: &str,
    record_id: &str,
) -> Result<(), CommandError> {
    crate::db::links::check_record(&cfg.crm, record_type, record_id)?;
    let db = crate::db::DbTarget::from_config(cfg).connect().await?;
    // The record's numbers as the CRM holds them now, not as last indexed.
    if let Err(e) = crate::matching::index::reindex_record(&db, cfg, record_type, record_id).await {
        db.close().await;
        return Err(e.into());
    }
    let report = crate::db::links::match_past_calls(&db, &cfg.crm, record_type, record_id).await;
    db.close().await;
    let report = report?;
    let plural = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    println!(
        "{record_type} {record_id}: numbers [{}]; {} matched; {} added",
        report.numbers.join(", "),
        plural(report.calls_matched.max(0) as u64, "past call"),
        plural(report.links_added, "link")
    );
    Ok(())
}

/// Runs an `index` subcommand: stats on stdout, or a rebuild reported per type.
pub async fn run_index(cfg: &Config, cmd: &IndexCommand) -> Result<(), CommandError> {
    use crate::matching::index;
    if let IndexCommand::Rebuild {
        kind: Some(kind), ..
    } = cmd
    {
        if !cfg.crm.records.iter().any(|r| &r.kind == kind) {
            return Err(CommandError::UnknownIndexType { kind: kind.clone() });
        }
    }
    let db = index::connect(cfg).await?;
    let out = match cmd {
        IndexCommand::Stats { json, limit, .. } => {
            let stats = index::stats(&db, *limit).await;
            match stats {
                Ok(stats) if *json => serde_json::to_string_pretty(&stats)
                    .map(|text| println!("{text}"))
                    .map_err(CommandError::from),
                Ok(stats) => {
                    print!("{}", index::render_stats(&stats, cfg, *limit));
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        IndexCommand::Rebuild { kind, .. } => {
            let results = match kind {
                Some(k) => vec![index::build_type(&db, cfg, k).await],
                None if cfg.crm.records.is_empty() => {
                    println!("no [[crm.records]] configured: nothing to index");
                    Vec::new()
                }
                None => index::build_each(&db, cfg).await,
            };
            let total = results.len();
            let mut failed = 0;
            for r in results {
                match r {
                    Ok(r) => println!("{}", index::render_report(&r)),
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                Err(CommandError::IndexFailed { failed, total })
            } else {
                Ok(())
            }
        }
    };
    db.close().await;
    out
}

/// Runs a `recordings` subcommand, printing on stdout.
pub async fn run_recordings(cfg: &Config, cmd: &RecordingsCommand) -> Result<(), CommandError> {
    use crate::store::{link, retention, Storage};
    if let RecordingsCommand::Link { expires, .. } = cmd {
        link::parse_lifetime(expires)
            .filter(|d| d.as_secs() >= 1 && *d <= link::MAX_LINK_LIFETIME)
            .ok_or_else(|| CommandError::BadLifetime {
                text: expires.clone(),
            })?;
    }
    let storage = Storage::from_config(&cfg.storage)?;
    let db = crate::db::DbTarget::from_config(cfg).connect().await?;
    let out = match cmd {
        RecordingsCommand::Link {
            call_id, expires, ..
        } => {
            let lifetime = link::parse_lifetime(expires).unwrap_or(link::MAX_LINK_LIFETIME);
            match &storage {
                None => Err(CommandError::NoLinkStorage),
                Some(st) => link::recording_link(&db, st, &cfg.pbx.sensor, call_id, lifetime)
                    .await
                    .map(|url| println!("{url}"))
                    .map_err(CommandError::from),
            }
        }
        RecordingsCommand::Expire { dry_run, json, .. } => {
            let now = Timestamp::now();
            match retention::expire(&db, storage.as_ref(), cfg, now, *dry_run).await {
                Ok(r) => print_expire(&r, *json, cfg.storage.retention_days).and_then(|()| {
                    if r.failed.is_empty() {
                        Ok(())
                    } else {
                        Err(CommandError::ExpireFailed {
                            failed: r.failed.len(),
                        })
                    }
                }),
                Err(e) => Err(e.into()),
            }
        }
    };
    db.close().await;
    out
}

fn print_expire(
    r: &crate::store::retention::ExpireReport,
    json: bool,
    days: u32,
) -> Result<(), CommandError> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    if days == 0 {
        println!("storage.retention_days is 0: recordings are kept forever");
        return Ok(());
    }
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb} {} recordings ({} bytes) of calls started before {}",
        r.deleted,
        r.bytes,
        r.cutoff.as_deref().unwrap_or("-")
    );
    for id in &r.call_ids {
        println!("  {id}");
    }
    if r.already_gone > 0 {
        println!("{} already gone (marked expired)", r.already_gone);
    }
    for f in &r.failed {
        println!("not expired: {}: {}", f.call_id, f.reason);
    }
    Ok(())
}
