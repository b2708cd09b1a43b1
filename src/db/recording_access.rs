//! The audit of recording accesses (`{recording_access}`): one row per GET
//! of `/v1/calls/{id}/recording`, and the state of the key that signed a
//! recording link (a revoked key's links stop working).

use sqlx::Row;

use super::{Db, DbError, DbTime};
use crate::time::Timestamp;

/// One access, as written when the response starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The bearer key, or the key that signed the link.
    pub key_id: i64,
    pub call_row: i64,
    pub sensor: String,
    pub call_id: String,
    /// `listen` or `download`.
    pub access: &'static str,
    pub at: Timestamp,
    /// The byte range served (inclusive), for a 206.
    pub range: Option<(u64, u64)>,
    /// The bytes the response promised (its Content-Length): written before
    /// the body is sent, so a client that stops early reads fewer.
    pub bytes: u64,
    pub http_status: u16,
}

/// An audit row read back (tests, and an admin's look at who listened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRow {
    pub key_id: i64,
    pub call_row: i64,
    pub access: String,
    pub range_start: Option<i64>,
    pub range_end: Option<i64>,
    pub bytes: i64,
    pub http_status: i64,
}

/// What a link's signing key may still do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerKey {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub agent_id: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

fn query_err(what: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |source| DbError::Query { what, source }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Db {
    /// Writes one audit row.
    pub async fn record_access(&self, a: &Access) -> Result<(), DbError> {
        let q = query_err("writing the recording audit");
        let sql = self.sql(
            "INSERT INTO {recording_access} (key_id, call_row, sensor, call_id, access, \
             accessed_at, range_start, range_end, bytes, http_status) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let (start, end) = match a.range {
            Some((s, e)) => (Some(as_i64(s)), Some(as_i64(e))),
            None => (None, None),
        };
        with_pool!(self.pool(), p => sqlx::query(&sql)
            .bind(a.key_id)
            .bind(a.call_row)
            .bind(a.sensor.as_str())
            .bind(a.call_id.as_str())
            .bind(a.access)
            .bind(DbTime(a.at))
            .bind(start)
            .bind(end)
            .bind(as_i64(a.bytes))
            .bind(i64::from(a.http_status))
            .execute(p)
            .await
            .map(|_| ())
            .map_err(&q))
    }

    /// The audit rows of one call, oldest first, at most `limit`.
    pub async fn recording_accesses(
        &self,
        call_row: i64,
        limit: u32,
    ) -> Result<Vec<AccessRow>, DbError> {
        let q = query_err("reading the recording audit");
        let sql = self.sql(&format!(
            "SELECT key_id, call_row, access, range_start, range_end, bytes, http_status \
             FROM {{recording_access}} WHERE call_row = ? ORDER BY id LIMIT {limit}"
        ));
        with_pool!(self.pool(), p => {
            let rows = sqlx::query(&sql).bind(call_row).fetch_all(p).await.map_err(&q)?;
            rows.iter()
                .map(|r| -> Result<AccessRow, sqlx::Error> {
                    Ok(AccessRow {
                        key_id: r.try_get(0)?,
                        call_row: r.try_get(1)?,
                        access: r.try_get(2)?,
                        range_start: r.try_get(3)?,
                        range_end: r.try_get(4)?,
                        bytes: r.try_get(5)?,
                        http_status: r.try_get(6)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(&q)
        })
    }

    /// The key with id `id`, whatever its state; `None` when there is none.
    pub async fn signer_key(&self, id: i64) -> Result<Option<SignerKey>, DbError> {
        let q = query_err("reading a link's signing key");
        let sql = self.sql(
            "SELECT id, role, agent_id, expires_at, revoked_at, name FROM {api_keys} WHERE id = ?",
        );
        with_pool!(self.pool(), p => {
            let row = sqlx::query(&sql).bind(id).fetch_optional(p).await.map_err(&q)?;
            row.as_ref()
                .map(|r| -> Result<SignerKey, sqlx::Error> {
                    let expires: Option<DbTime> = r.try_get(3)?;
                    let revoked: Option<DbTime> = r.try_get(4)?;
                    Ok(SignerKey {
                        id: r.try_get(0)?,
                        name: r.try_get(5)?,
                        role: r.try_get(1)?,
                        agent_id: r.try_get(2)?,
                        expires_at: expires.map(|t| t.0),
                        revoked_at: revoked.map(|t| t.0),
                    })
                })
                .transpose()
                .map_err(&q)
        })
    }
}
