//! A recording uploaded through the API (`POST /v1/calls/{id}/recording`)
//! takes the call row's recording columns, as the uploader's `mark_stored`
//! does for a captured one.

use super::{Db, DbError, DbTime};
use crate::report::RecordingStatus;
use crate::time::Timestamp;

/// Where an uploaded recording now is, and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// `local`, `share` or `s3`.
    pub backend: String,
    /// The object key (share, s3).
    pub key: Option<String>,
    /// The file (local backend).
    pub path: Option<String>,
    pub bytes: u64,
    pub sha256: String,
    /// The container: `wav`, `mp3`, `ogg`, `m4a`, `webm` (kept in recording_codec).
    pub format: String,
    /// For a WAV: its sample rate, channels and frames.
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    pub samples: Option<u64>,
    pub at: Timestamp,
}

impl Db {
    /// Points call `row` at an uploaded recording, if its recording status is
    /// still `expected` (two uploads at once: one wins, the other learns it
    /// lost). True when the row changed.
    pub async fn set_uploaded_recording(
        &self,
        row: i64,
        expected: RecordingStatus,
        u: &Uploaded,
    ) -> Result<bool, DbError> {
        let q = |source| DbError::Query {
            what: "storing an uploaded recording",
            source,
        };
        let sql = self.sql(
            "UPDATE {calls} SET recording_status = ?, recording_backend = ?, recording_key = ?, \
             recording_path = ?, recording_bytes = ?, recording_sha256 = ?, \
             recording_stored_at = ?, recording_codec = ?, recording_sample_rate = ?, \
             recording_channels = ?, recording_samples = ?, updated_at = ? \
             WHERE id = ? AND recording_status = ?",
        );
        let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        with_pool!(self.pool(), p => sqlx::query(&sql)
            .bind(RecordingStatus::Stored.as_str())
            .bind(u.backend.as_str())
            .bind(u.key.as_deref())
            .bind(u.path.as_deref())
            .bind(big(u.bytes))
            .bind(u.sha256.as_str())
            .bind(DbTime(u.at))
            .bind(u.format.as_str())
            .bind(u.sample_rate.map(i64::from))
            .bind(u.channels.map(i64::from))
            .bind(u.samples.map(big))
            .bind(DbTime(u.at))
            .bind(row)
            .bind(expected.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(q))
    }
}
