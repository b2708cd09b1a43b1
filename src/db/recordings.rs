//! The recording columns the uploader owns: a call row goes from `pending` to
//! `stored` once storage has the file, matched by its object key.

use sqlx::Row;

use super::{names, DbError, DbTime};
use crate::report::RecordingStatus;

/// What the database says about one recording key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingState {
    pub status: RecordingStatus,
    pub sha256: Option<String>,
}

impl super::Db {
    /// Marks the rows whose recording has `key` as stored; the number of rows
    /// changed (0 while the call record is still in the outbox). A row that
    /// retention already expired is left alone.
    pub async fn mark_stored(
        &self,
        key: &str,
        backend: &str,
        size: u64,
        sha256: &str,
        stored_at: DbTime,
    ) -> Result<u64, DbError> {
        let sql = self.sql(
            "UPDATE {calls} SET recording_status = ?, recording_backend = ?, \
             recording_bytes = ?, recording_sha256 = ?, recording_stored_at = ?, \
             recording_path = NULL, updated_at = ? \
             WHERE recording_key = ? AND recording_status IN (?, ?)",
        );
        let q = |source| DbError::Query {
            what: "marking a recording stored",
            source,
        };
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        with_pool!(&self.pool, p => sqlx::query(&sql)
            .bind(RecordingStatus::Stored.as_str())
            .bind(backend)
            .bind(size)
            .bind(sha256)
            .bind(stored_at)
            .bind(stored_at)
            .bind(key)
            .bind(RecordingStatus::Pending.as_str())
            .bind(RecordingStatus::Stored.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(q))
    }

    /// The state of the recording with `key`, if a call row names it (the
    /// most advanced one when several do: stored or expired before pending).
    pub async fn recording_state(&self, key: &str) -> Result<Option<RecordingState>, DbError> {
        let sql = self
            .sql("SELECT recording_status, recording_sha256 FROM {calls} WHERE recording_key = ?");
        let q = |source| DbError::Query {
            what: "reading a recording's state",
            source,
        };
        let rows = with_pool!(&self.pool, p => {
            let mut out = Vec::new();
            for row in sqlx::query(&sql).bind(key).fetch_all(p).await.map_err(q)? {
                let status = names::decode("recording_status", row.try_get(0).map_err(q)?);
                let sha256: Option<String> = row.try_get(1).map_err(q)?;
                out.push(RecordingState {
                    status: status.map_err(q)?,
                    sha256,
                });
            }
            out
        });
        let rank = |s: &RecordingState| match s.status {
            RecordingStatus::Expired => 2,
            RecordingStatus::Stored => 1,
            _ => 0,
        };
        Ok(rows.into_iter().max_by_key(rank))
    }
}
