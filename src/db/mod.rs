//! The CRM database: migrations compiled into the binary, idempotent call writes.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::report::CallReport;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `url` is always redacted: errors end up in logs.
    #[error("database URL {url:?} is not usable: {source}")]
    Url {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot open database {url:?}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating database {url:?} failed: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("writing call {call_id:?} failed: {source}")]
    Write {
        call_id: String,
        #[source]
        source: sqlx::Error,
    },
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: SqlitePool,
}

impl Db {
    /// Opens (creating the file if missing) and migrates.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|source| DbError::Url {
                url: crate::config::redact_url(url),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|source| DbError::Connect {
                url: crate::config::redact_url(url),
                source,
            })?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|source| DbError::Migrate {
                url: crate::config::redact_url(url),
                source,
            })?;
        Ok(Db { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Writes finished calls in one transaction. Writing the same call again
    /// replaces its row with the same values, so a replay is idempotent.
    pub async fn upsert_calls(&self, calls: &[CallReport]) -> Result<(), DbError> {
        let first = calls.first().map(|c| c.call_id.clone()).unwrap_or_default();
        let mut tx = self.pool.begin().await.map_err(|source| DbError::Write {
            call_id: first.clone(),
            source,
        })?;
        for c in calls {
            upsert_one(&mut tx, c)
                .await
                .map_err(|source| DbError::Write {
                    call_id: c.call_id.clone(),
                    source,
                })?;
        }
        tx.commit().await.map_err(|source| DbError::Write {
            call_id: first,
            source,
        })
    }
}

async fn upsert_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    c: &CallReport,
) -> Result<(), sqlx::Error> {
    let r = &c.recording;
    sqlx::query(
        "INSERT INTO calls (call_id, direction, from_number, to_number, from_raw, to_raw,
            from_display, agent, started_at, answered_at, ended_at, duration, outcome, sip_code,
            end_reason, answered_elsewhere, dtmf, held, recording_status, recording_path,
            recording_codec, recording_sample_rate, recording_channels, recording_samples,
            recording_bytes, sip_src, sip_dst, caller_rtp_packets, caller_rtp_lost,
            caller_rtp_jitter_ms, callee_rtp_packets, callee_rtp_lost, callee_rtp_jitter_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
            ?, ?, ?, ?, ?, ?)
         ON CONFLICT (call_id) DO UPDATE SET
            direction = excluded.direction, from_number = excluded.from_number,
            to_number = excluded.to_number, from_raw = excluded.from_raw,
            to_raw = excluded.to_raw, from_display = excluded.from_display,
            agent = excluded.agent, started_at = excluded.started_at,
            answered_at = excluded.answered_at, ended_at = excluded.ended_at,
            duration = excluded.duration, outcome = excluded.outcome,
            sip_code = excluded.sip_code, end_reason = excluded.end_reason,
            answered_elsewhere = excluded.answered_elsewhere, dtmf = excluded.dtmf,
            held = excluded.held, recording_status = excluded.recording_status,
            recording_path = excluded.recording_path, recording_codec = excluded.recording_codec,
            recording_sample_rate = excluded.recording_sample_rate,
            recording_channels = excluded.recording_channels,
            recording_samples = excluded.recording_samples,
            recording_bytes = excluded.recording_bytes, sip_src = excluded.sip_src,
            sip_dst = excluded.sip_dst, caller_rtp_packets = excluded.caller_rtp_packets,
            caller_rtp_lost = excluded.caller_rtp_lost,
            caller_rtp_jitter_ms = excluded.caller_rtp_jitter_ms,
            callee_rtp_packets = excluded.callee_rtp_packets,
            callee_rtp_lost = excluded.callee_rtp_lost,
            callee_rtp_jitter_ms = excluded.callee_rtp_jitter_ms",
    )
    .bind(&c.call_id)
    .bind(&c.direction)
    .bind(&c.from_number)
    .bind(&c.to_number)
    .bind(&c.from_raw)
    .bind(&c.to_raw)
    .bind(&c.from_display)
    .bind(&c.agent)
    .bind(&c.started_at)
    .bind(&c.answered_at)
    .bind(&c.ended_at)
    .bind(c.duration)
    .bind(&c.outcome)
    .bind(c.sip_code.map(i64::from))
    .bind(&c.end_reason)
    .bind(c.answered_elsewhere)
    .bind(&c.dtmf)
    .bind(c.held)
    .bind(&r.status)
    .bind(&r.path)
    .bind(&r.codec)
    .bind(r.sample_rate.map(i64::from))
    .bind(r.channels.map(i64::from))
    .bind(r.samples.map(|v| v as i64))
    .bind(r.bytes.map(|v| v as i64))
    .bind(&c.sip_src)
    .bind(&c.sip_dst)
    .bind(c.rtp.caller.packets as i64)
    .bind(c.rtp.caller.lost as i64)
    .bind(c.rtp.caller.jitter_ms)
    .bind(c.rtp.callee.packets as i64)
    .bind(c.rtp.callee.lost as i64)
    .bind(c.rtp.callee.jitter_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
