//! Reading where a call's recording is kept, for links and retention.
//! (Writing it is the uploader's business, in `recordings`.)

use sqlx::Row;

use super::{call_key, names, Db, DbError, DbTime};
use crate::report::RecordingStatus;
use crate::time::Timestamp;

/// A call's recording as the call record describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingRef {
    /// The call row's id.
    pub id: i64,
    pub call_id: String,
    pub started_at: Timestamp,
    pub status: RecordingStatus,
    /// `local`, `share` or `s3`; `None` for rows written before storage
    /// backends existed (local).
    pub backend: Option<String>,
    /// The object's key in storage.
    pub key: Option<String>,
    /// The file under `recording.dir` (local backend).
    pub path: Option<String>,
    pub sensor: String,
    /// Size, SHA-256 (hex) and time of the stored copy, once storage has it.
    pub bytes: Option<i64>,
    pub sha256: Option<String>,
    pub stored_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, call_id, started_at, recording_status, recording_backend, \
     recording_key, recording_path, sensor, recording_bytes, recording_sha256, recording_stored_at";

/// A row of `COLUMNS` → `RecordingRef` (a macro: each backend's row type).
macro_rules! recording_ref {
    ($r:expr) => {{
        let r = $r;
        let started: DbTime = r.try_get(2)?;
        let stored: Option<DbTime> = r.try_get(10)?;
        RecordingRef {
            id: r.try_get(0)?,
            call_id: r.try_get(1)?,
            started_at: started.0,
            status: names::decode("recording_status", r.try_get(3)?)?,
            backend: r.try_get(4)?,
            key: r.try_get(5)?,
            path: r.try_get(6)?,
            sensor: r.try_get(7)?,
            bytes: r.try_get(8)?,
            sha256: r.try_get(9)?,
            stored_at: stored.map(|t| t.0),
        }
    }};
}

fn query_err(what: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |source| DbError::Query { what, source }
}

/// The recording of call `call_id` seen by `sensor`; `None` when there is no
/// such call.
pub async fn recording_of(
    db: &Db,
    sensor: &str,
    call_id: &str,
) -> Result<Option<RecordingRef>, DbError> {
    let q = query_err("reading a call's recording");
    let key = call_key(call_id).into_owned();
    let sql = db.sql(&format!(
        "SELECT {COLUMNS} FROM {{calls}} WHERE sensor = ? AND call_id = ?"
    ));
    super::with_pool!(db.pool(), p => {
        let row = sqlx::query(&sql)
            .bind(sensor)
            .bind(key.as_str())
            .fetch_optional(p)
            .await
            .map_err(&q)?;
        row.as_ref()
            .map(|r| -> Result<RecordingRef, sqlx::Error> { Ok(recording_ref!(r)) })
            .transpose()
            .map_err(&q)
    })
}

/// The recording of the call with row id `row`; `None` when there is no
/// such call.
pub async fn recording_by_row(db: &Db, row: i64) -> Result<Option<RecordingRef>, DbError> {
    let q = query_err("reading a call's recording");
    let sql = db.sql(&format!("SELECT {COLUMNS} FROM {{calls}} WHERE id = ?"));
    super::with_pool!(db.pool(), p => {
        let found = sqlx::query(&sql)
            .bind(row)
            .fetch_optional(p)
            .await
            .map_err(&q)?;
        found
            .as_ref()
            .map(|r| -> Result<RecordingRef, sqlx::Error> { Ok(recording_ref!(r)) })
            .transpose()
            .map_err(&q)
    })
}

/// Up to `limit` stored recordings of calls that started before `cutoff`,
/// with row ids above `after_id`, in id order (so a caller pages through
/// them even when some cannot be deleted).
pub async fn stored_before(
    db: &Db,
    cutoff: Timestamp,
    after_id: i64,
    limit: u32,
) -> Result<Vec<RecordingRef>, DbError> {
    let q = query_err("listing recordings past retention");
    let sql = db.sql(&format!(
        "SELECT {COLUMNS} FROM {{calls}} \
         WHERE recording_status = ? AND started_at < ? AND id > ? \
         ORDER BY id LIMIT {limit}"
    ));
    super::with_pool!(db.pool(), p => {
        let rows = sqlx::query(&sql)
            .bind(RecordingStatus::Stored.as_str())
            .bind(DbTime(cutoff))
            .bind(after_id)
            .fetch_all(p)
            .await
            .map_err(&q)?;
        rows.iter()
            .map(|r| -> Result<RecordingRef, sqlx::Error> { Ok(recording_ref!(r)) })
            .collect::<Result<Vec<_>, _>>()
            .map_err(&q)
    })
}

/// Marks a stored recording expired; false when the row was no longer
/// `stored` (another run got there first).
pub async fn mark_expired(db: &Db, id: i64) -> Result<bool, DbError> {
    let q = query_err("marking a recording expired");
    let sql =
        db.sql("UPDATE {calls} SET recording_status = ?, updated_at = ? WHERE id = ? AND recording_status = ?");
    super::with_pool!(db.pool(), p => {
        let done = sqlx::query(&sql)
            .bind(RecordingStatus::Expired.as_str())
            .bind(DbTime(Timestamp::now()))
            .bind(id)
            .bind(RecordingStatus::Stored.as_str())
            .execute(p)
            .await
            .map_err(&q)?;
        Ok(done.rows_affected() == 1)
    })
}
