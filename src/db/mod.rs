//! The CRM database: SQLite, PostgreSQL or MySQL/MariaDB, chosen by the URL.
//!
//! One build serves all three: queries are checked at run time, written once
//! with `?` placeholders and `{table}` names (see `dialect`), and run on the
//! pool the URL opened (`with_pool!`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::backoff::Backoff;

/// Runs `$body` with `$p` bound to the typed pool: the body is compiled once
/// per backend, so every bind and decode is checked for all three.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
            $crate::db::Pool::MySql($p) => $body,
        }
    };
}
pub(crate) use with_pool;

pub mod api_keys;
pub mod call_list;
pub mod call_lookup;
pub mod call_write;
mod calls;
mod connect;
mod dbtime;
pub mod dialect;
pub mod links;
mod migrate;
mod names;
pub mod note_writes;
pub mod notes;
mod phone_index;
pub mod recording_access;
pub mod recording_lookup;
pub mod recording_upload;
mod recordings;
mod retry;
mod shared;
pub mod webhooks;

pub use calls::{call_key, CallWrite, LinkSource, NewLink, WriteSummary};
pub use dbtime::DbTime;
pub use dialect::{Backend, Dialect};
pub use links::{BackfillReport, CallLinkError, CallRow, Link, LinkChange, RecordCall};
pub use migrate::MIGRATIONS;
pub use phone_index::{
    CrmChunk, IndexCounts, IndexMsg, IndexRow, IndexState, InvalidValue, ReadEnd, WriteMode,
};
pub use recordings::RecordingState;
pub use retry::{retry_until, FailureLog};
pub use shared::SharedDb;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `url` is always redacted: errors end up in logs.
    #[error("database URL {url:?} is not usable: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot open database {url:?}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("connection refused to {addr} — is the server running?")]
    Refused { addr: String },
    #[error("database host {host:?} is unknown (the name does not resolve: {reason})")]
    UnknownHost { host: String, reason: String },
    #[error(
        "no answer from {addr} within {secs} s — is the address right, or a firewall in the way?"
    )]
    NoAnswer { addr: String, secs: u64 },
    /// Wrong credentials do not fix themselves: not retried.
    #[error("{addr} refused the login of user {user:?} — wrong user name or password? ({source})")]
    AuthRefused {
        addr: String,
        user: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database {name:?} does not exist on {addr} — create it, or fix the name in the URL ({source})")]
    NoDatabase {
        addr: String,
        name: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating database {url:?} (step {version}) failed: {source}")]
    Migrate {
        url: String,
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("database {url:?} was migrated by a newer pbxbridge (schema step {found}; this one knows up to {known})")]
    SchemaTooNew { url: String, found: i64, known: i64 },
    #[error("database {url:?}: migration step {version} differs from the one applied; the binary and the database disagree")]
    MigrationChanged { url: String, version: i64 },
    #[error("writing call {call_id:?} failed: {source}")]
    Write {
        call_id: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{what} failed: {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("no call {call_id:?} (sensor {sensor:?}) in the database")]
    NoSuchCall { sensor: String, call_id: String },
    #[error("the system's random source failed: {reason}")]
    Random { reason: String },
}

impl DbError {
    /// True when the database could not be reached or dropped the connection,
    /// as opposed to refusing a statement: the caller should retry later.
    pub fn is_unavailable(&self) -> bool {
        let source = match self {
            DbError::Refused { .. } | DbError::UnknownHost { .. } | DbError::NoAnswer { .. } => {
                return true
            }
            DbError::Connect { source, .. }
            | DbError::Migrate { source, .. }
            | DbError::Write { source, .. }
            | DbError::Query { source, .. } => source,
            _ => return false,
        };
        if matches!(
            source,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_)
        ) {
            return true;
        }
        // A server starting up or shutting down answers with an error rather
        // than not at all: PostgreSQL 57P01-57P03, MySQL 1053 (shutdown in
        // progress) and 08S01 (communication link failure).
        source
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| {
                matches!(
                    c.as_ref(),
                    "57P01" | "57P02" | "57P03" | "08S01" | "1053" | "08006" | "08001"
                )
            })
    }
}

/// SHA-256 of `bytes` as lowercase hex: migration checksums, long Call-IDs,
/// API key hashes, request hashes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// SQLITE_BUSY (5) / SQLITE_LOCKED (6), with or without extended bits.
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// Where pbxbridge's tables live and how many connections it may hold.
#[derive(Debug, Clone, PartialEq)]
pub struct DbOptions {
    pub table_prefix: String,
    pub schema: String,
    pub max_connections: u32,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            table_prefix: String::new(),
            schema: String::new(),
            max_connections: 4,
        }
    }
}

impl From<&crate::config::DatabaseConfig> for DbOptions {
    fn from(c: &crate::config::DatabaseConfig) -> Self {
        DbOptions {
            table_prefix: c.table_prefix.clone(),
            schema: c.schema.clone(),
            max_connections: c.max_connections,
        }
    }
}

/// Everything needed to open the database and key its rows.
#[derive(Clone, PartialEq)]
pub struct DbTarget {
    pub url: String,
    pub opts: DbOptions,
    /// `pbx.sensor`: part of every call's key.
    pub sensor: String,
}

impl DbTarget {
    pub fn from_config(cfg: &crate::config::Config) -> DbTarget {
        DbTarget {
            url: cfg.database.url.clone(),
            opts: DbOptions::from(&cfg.database),
            sensor: cfg.pbx.sensor.clone(),
        }
    }

    pub async fn connect(&self) -> Result<Db, DbError> {
        Db::connect(&self.url, &self.opts).await
    }

    /// The URL with its password hidden.
    pub fn shown_url(&self) -> String {
        crate::config::redact_url(&self.url)
    }
}

impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTarget")
            .field("url", &self.shown_url())
            .field("opts", &self.opts)
            .field("sensor", &self.sensor)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    dialect: Dialect,
    /// The URL with its password hidden, for errors.
    shown_url: String,
}

impl Db {
    /// Opens the database the URL names (creating a SQLite file when missing)
    /// and migrates pbxbridge's tables.
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Db, DbError> {
        let db = Db::open(url, opts).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Opens the database without looking at its tables (`SharedDb` checks
    /// the migrations once, not at every reconnect).
    pub async fn open(url: &str, opts: &DbOptions) -> Result<Db, DbError> {
        let shown = crate::config::redact_url(url);
        let backend = Backend::from_url(url).ok_or_else(|| DbError::Url {
            url: shown.clone(),
            reason: "the scheme must be sqlite:, postgres:// or mysql://".into(),
        })?;
        let bad_url = |e: sqlx::Error| DbError::Url {
            url: shown.clone(),
            reason: e.to_string(),
        };
        let connect_err = |source| DbError::Connect {
            url: shown.clone(),
            source,
        };
        let max = opts.max_connections.max(1);
        // Fail fast so the caller's backoff, not sqlx's, decides the retries.
        let acquire = Duration::from_secs(10);
        let pool = match backend {
            Backend::Sqlite => {
                let o = SqliteConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10));
                // Switching a new file to WAL needs it to itself and does not
                // wait for another process doing the same: try again shortly.
                let mut attempt = 0;
                let mut backoff =
                    Backoff::new(Duration::from_millis(50), Duration::from_millis(500));
                let pool = loop {
                    match SqlitePoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(acquire)
                        .connect_with(o.clone())
                        .await
                    {
                        Ok(p) => break p,
                        Err(e) if attempt < 10 && is_sqlite_busy(&e) => {
                            attempt += 1;
                            tokio::time::sleep(backoff.next_wait()).await;
                        }
                        Err(e) => return Err(connect_err(e)),
                    }
                };
                Pool::Sqlite(pool)
            }
            Backend::Postgres => {
                let o = PgConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .application_name("pbxbridge");
                connect::probe(&o, &connect::server_of!(o, shown)).await?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(acquire)
                        .connect_with(o)
                        .await
                        .map_err(connect_err)?,
                )
            }
            Backend::MySql => {
                // sqlx knows only the mysql:// spelling.
                let url = match url.split_once("://") {
                    Some((_, rest)) => format!("mysql://{rest}"),
                    None => url.to_owned(),
                };
                let o = MySqlConnectOptions::from_str(&url)
                    .map_err(bad_url)?
                    .charset("utf8mb4")
                    .timezone(Some(String::from("+00:00")));
                connect::probe(&o, &connect::server_of!(o, shown)).await?;
                Pool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(acquire)
                        .connect_with(o)
                        .await
                        .map_err(connect_err)?,
                )
            }
        };
        let schema = (!opts.schema.is_empty()).then_some(opts.schema.as_str());
        let dialect = Dialect::new(backend, &opts.table_prefix, schema);
        Ok(Db {
            pool,
            dialect,
            shown_url: shown,
        })
    }

    /// Brings pbxbridge's tables to this build's schema.
    pub async fn migrate(&self) -> Result<(), DbError> {
        migrate::migrate(&self.pool, &self.dialect, &self.shown_url).await
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    pub fn backend(&self) -> Backend {
        self.dialect.backend
    }

    /// The SQL text of a `?`/`{table}` template for this database.
    pub fn sql(&self, template: &str) -> String {
        self.dialect.render(template)
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        let q = |source| DbError::Query {
            what: "ping",
            source,
        };
        with_pool!(&self.pool, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(q))
    }

    pub async fn close(&self) {
        with_pool!(&self.pool, p => p.close().await)
    }
}
