//! Links made by people and by `match-past-calls`, and reading a call with
//! its links or a record with its calls.
//!
//! An unlink keeps the row with `removed_at` set: matching inserts links
//! ignoring conflicts, so the tombstone keeps a removed link from coming back.

use serde::Serialize;
use sqlx::Row;

use super::{call_key, Db, DbError, DbTime, LinkSource};
use crate::call::{Direction, EndReason, Outcome};
use crate::config::CrmConfig;
use crate::report::RecordingStatus;
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum CallLinkError {
    #[error("record type {record_type:?} is not configured in [[crm.records]] (known: {known})")]
    UnknownType { record_type: String, known: String },
    #[error("record id {record_id:?} must be 1 to 191 bytes")]
    BadRecordId { record_id: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What `link` or `unlink` changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkChange {
    Added,
    /// A removed link was linked again.
    Restored,
    AlreadyLinked,
    Removed,
    AlreadyRemoved,
    /// There was no link; a removed one is kept so matching never adds it.
    NotLinked,
}

/// A call as listed with its links.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRow {
    pub id: i64,
    pub sensor: String,
    pub call_id: String,
    pub direction: Direction,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub other_number: Option<String>,
    pub agent: Option<String>,
    pub agent_type: Option<String>,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub started_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Timestamp,
    pub duration: f64,
    pub outcome: Outcome,
    pub end_reason: EndReason,
    pub recording_status: RecordingStatus,
    pub recording_path: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    pub record_type: String,
    pub record_id: String,
    pub field: Option<String>,
    pub source: String,
    pub via_type: Option<String>,
    pub via_id: Option<String>,
    pub display_name: Option<String>,
    pub created_at: Timestamp,
    /// Set when a person removed the link.
    pub removed_at: Option<Timestamp>,
}

/// One of a record's calls, with how it came to be linked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordCall {
    pub call: CallRow,
    pub source: String,
    pub field: Option<String>,
    pub via_type: Option<String>,
    pub via_id: Option<String>,
}

/// What `match_past_calls` found and added.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BackfillReport {
    /// The record's numbers (and extensions) that were looked for.
    pub numbers: Vec<String>,
    /// Calls whose other party (or, for an agent type, agent) is one of them.
    pub calls_matched: i64,
    /// Links that did not exist before (removed ones stay removed).
    pub links_added: u64,
}

pub(super) const CALL_ROW_COLUMNS: &str = "c.id, c.sensor, c.call_id, c.direction, c.from_number, \
    c.to_number, c.other_number, c.agent, c.agent_type, c.agent_id, c.agent_name, c.started_at, \
    c.answered_at, c.ended_at, c.duration, c.outcome, c.end_reason, c.recording_status, \
    c.recording_path";

macro_rules! call_row {
    ($r:expr) => {{
        let r = $r;
        let started: DbTime = r.try_get(11)?;
        let answered: Option<DbTime> = r.try_get(12)?;
        let ended: DbTime = r.try_get(13)?;
        CallRow {
            id: r.try_get(0)?,
            sensor: r.try_get(1)?,
            call_id: r.try_get(2)?,
            direction: $crate::db::names::decode("direction", r.try_get(3)?)?,
            from_number: r.try_get(4)?,
            to_number: r.try_get(5)?,
            other_number: r.try_get(6)?,
            agent: r.try_get(7)?,
            agent_type: r.try_get(8)?,
            agent_id: r.try_get(9)?,
            agent_name: r.try_get(10)?,
            started_at: started.0,
            answered_at: answered.map(|t| t.0),
            ended_at: ended.0,
            duration: r.try_get(14)?,
            outcome: $crate::db::names::decode("outcome", r.try_get(15)?)?,
            end_reason: $crate::db::names::decode("end_reason", r.try_get(16)?)?,
            recording_status: $crate::db::names::decode("recording_status", r.try_get(17)?)?,
            recording_path: r.try_get(18)?,
        }
    }};
}
pub(super) use call_row;

/// Checks a record type and id from a person (CLI, API) before linking.
pub fn check_record(
    crm: &CrmConfig,
    record_type: &str,
    record_id: &str,
) -> Result<(), CallLinkError> {
    if !crm.records.iter().any(|r| r.kind == record_type) {
        let known: Vec<&str> = crm.records.iter().map(|r| r.kind.as_str()).collect();
        return Err(CallLinkError::UnknownType {
            record_type: record_type.to_owned(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        });
    }
    if record_id.is_empty() || record_id.len() > 191 {
        return Err(CallLinkError::BadRecordId {
            record_id: record_id.to_owned(),
        });
    }
    Ok(())
}

fn query_err(what: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |source| DbError::Query { what, source }
}

/// Links a call to a record by hand (or any `source`); linking a removed link
/// again clears its tombstone.
pub async fn link(
    db: &Db,
    sensor: &str,
    call_id: &str,
    record_type: &str,
    record_id: &str,
    source: LinkSource,
) -> Result<LinkChange, DbError> {
    set_link(db, sensor, call_id, record_type, record_id, source, false).await
}

/// Removes a link, keeping it as a tombstone so matching never adds it again.
pub async fn unlink(
    db: &Db,
    sensor: &str,
    call_id: &str,
    record_type: &str,
    record_id: &str,
) -> Result<LinkChange, DbError> {
    set_link(
        db,
        sensor,
        call_id,
        record_type,
        record_id,
        LinkSource::Manual,
        true,
    )
    .await
}

async fn set_link(
    db: &Db,
    sensor: &str,
    call_id: &str,
    record_type: &str,
    record_id: &str,
    source: LinkSource,
    remove: bool,
) -> Result<LinkChange, DbError> {
    let what = if remove {
        "unlinking a call"
    } else {
        "linking a call"
    };
    let q = query_err(what);
    let key = call_key(call_id).into_owned();
    let now = DbTime(Timestamp::now());
    let find_call = db.sql("SELECT id FROM {calls} WHERE sensor = ? AND call_id = ?");
    let find_link = db.sql(
        "SELECT id, removed_at FROM {call_links} WHERE call_row = ? AND record_type = ? AND record_id = ?",
    );
    let name_sql = db.sql(
        "SELECT display_name FROM {phone_index} WHERE record_type = ? AND record_id = ? AND display_name IS NOT NULL",
    );
    let insert = db.sql(
        "INSERT INTO {call_links} (call_row, record_type, record_id, field, source, via_type, via_id, display_name, created_at, removed_at) \
         VALUES (?, ?, ?, NULL, ?, NULL, NULL, ?, ?, ?)",
    );
    let restore = db
        .sql("UPDATE {call_links} SET removed_at = NULL, source = ?, created_at = ? WHERE id = ?");
    let tombstone = db.sql("UPDATE {call_links} SET removed_at = ? WHERE id = ?");
    let touch = db.sql("UPDATE {calls} SET updated_at = ? WHERE id = ?");
    with_pool!(db.pool(), p => {
        let mut tx = p.begin().await.map_err(&q)?;
        let row = sqlx::query(&find_call)
            .bind(sensor)
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(&q)?;
        let Some(row) = row else {
            return Err(DbError::NoSuchCall {
                sensor: sensor.to_owned(),
                call_id: call_id.to_owned(),
            });
        };
        let call_row: i64 = row.try_get(0).map_err(&q)?;
        let existing = sqlx::query(&find_link)
            .bind(call_row)
            .bind(record_type)
            .bind(record_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(&q)?;
        let existing: Option<(i64, Option<DbTime>)> = match existing {
            Some(r) => Some((r.try_get(0).map_err(&q)?, r.try_get(1).map_err(&q)?)),
            None => None,
        };
        let change = match (existing, remove) {
            (Some((_, None)), false) => LinkChange::AlreadyLinked,
            (Some((_, Some(_))), true) => LinkChange::AlreadyRemoved,
            (Some((id, Some(_))), false) => {
                sqlx::query(&restore)
                    .bind(source.as_str())
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(&q)?;
                LinkChange::Restored
            }
            (Some((id, None)), true) => {
                sqlx::query(&tombstone)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(&q)?;
                LinkChange::Removed
            }
            (None, _) => {
                let name: Option<String> = match sqlx::query(&name_sql)
                    .bind(record_type)
                    .bind(record_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(&q)?
                {
                    Some(r) => r.try_get(0).map_err(&q)?,
                    None => None,
                };
                sqlx::query(&insert)
                    .bind(call_row)
                    .bind(record_type)
                    .bind(record_id)
                    .bind(source.as_str())
                    .bind(name)
                    .bind(now)
                    .bind(remove.then_some(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(&q)?;
                if remove {
                    LinkChange::NotLinked
                } else {
                    LinkChange::Added
                }
            }
        };
        // A CRM syncing by updated_since must see the link change.
        if !matches!(change, LinkChange::AlreadyLinked | LinkChange::AlreadyRemoved) {
            sqlx::query(&touch).bind(now).bind(call_row).execute(&mut *tx).await.map_err(&q)?;
        }
        tx.commit().await.map_err(&q)?;
        Ok(change)
    })
}

/// The call and all its links, removed ones included; `None` when unknown.
pub async fn call_with_links(
    db: &Db,
    sensor: &str,
    call_id: &str,
) -> Result<Option<(CallRow, Vec<Link>)>, DbError> {
    let q = query_err("reading a call");
    let key = call_key(call_id).into_owned();
    let call_sql = db.sql(&format!(
        "SELECT {CALL_ROW_COLUMNS} FROM {{calls}} c WHERE c.sensor = ? AND c.call_id = ?"
    ));
    let links_sql = db.sql(
        "SELECT record_type, record_id, field, source, via_type, via_id, display_name, created_at, removed_at \
         FROM {call_links} WHERE call_row = ? ORDER BY id",
    );
    with_pool!(db.pool(), p => {
        let row = sqlx::query(&call_sql)
            .bind(sensor)
            .bind(key.as_str())
            .fetch_optional(p)
            .await
            .map_err(&q)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let call = (|| -> Result<CallRow, sqlx::Error> { Ok(call_row!(&row)) })().map_err(&q)?;
        let rows = sqlx::query(&links_sql)
            .bind(call.id)
            .fetch_all(p)
            .await
            .map_err(&q)?;
        let links = rows
            .iter()
            .map(|r| -> Result<Link, sqlx::Error> {
                let created: DbTime = r.try_get(7)?;
                let removed: Option<DbTime> = r.try_get(8)?;
                Ok(Link {
                    record_type: r.try_get(0)?,
                    record_id: r.try_get(1)?,
                    field: r.try_get(2)?,
                    source: r.try_get(3)?,
                    via_type: r.try_get(4)?,
                    via_id: r.try_get(5)?,
                    display_name: r.try_get(6)?,
                    created_at: created.0,
                    removed_at: removed.map(|t| t.0),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(&q)?;
        Ok(Some((call, links)))
    })
}

/// The record's calls (linked, not removed), newest first, from every sensor.
pub async fn calls_for_record(
    db: &Db,
    record_type: &str,
    record_id: &str,
    limit: u32,
) -> Result<Vec<RecordCall>, DbError> {
    let filter = super::call_list::CallFilter {
        limit,
        ..Default::default()
    };
    super::call_list::record_calls(db, record_type, record_id, &filter).await
}

/// Links every call already written whose other party has one of the record's
/// numbers (and, for an agent type, every call that agent took), with source
/// `backfill`. Links that exist or were removed are left as they are, so a
/// second run adds nothing.
///
/// The numbers come from the record's `{phone_index}` rows, i.e. as of the
/// index's last refresh.
pub async fn match_past_calls(
    db: &Db,
    crm: &CrmConfig,
    record_type: &str,
    record_id: &str,
) -> Result<BackfillReport, CallLinkError> {
    check_record(crm, record_type, record_id)?;
    let is_agent = crm
        .records
        .iter()
        .any(|r| r.kind == record_type && r.is_agent());
    let q = query_err("matching past calls");
    let numbers_sql = db.sql(
        "SELECT field, number, display_name FROM {phone_index} \
         WHERE record_type = ? AND record_id = ? AND number IS NOT NULL ORDER BY field, number",
    );
    let columns: &[&str] = if is_agent {
        &["other_number", "agent"]
    } else {
        &["other_number"]
    };
    let d = db.dialect();
    let now = DbTime(Timestamp::now());
    with_pool!(db.pool(), p => {
        let rows = sqlx::query(&numbers_sql)
            .bind(record_type)
            .bind(record_id)
            .fetch_all(p)
            .await
            .map_err(&q)?;
        let mut values: Vec<(String, String, Option<String>)> = Vec::new();
        for r in &rows {
            values.push((
                r.try_get(0).map_err(&q)?,
                r.try_get(1).map_err(&q)?,
                r.try_get(2).map_err(&q)?,
            ));
        }
        let mut report = BackfillReport::default();
        let mut tx = p.begin().await.map_err(&q)?;
        for (field, number, name) in &values {
            if !report.numbers.contains(number) {
                report.numbers.push(number.clone());
            }
            for col in columns {
                let sql = d.render(&format!(
                    "{} {{call_links}} (call_row, record_type, record_id, field, source, via_type, via_id, display_name, created_at) \
                     SELECT c.id, ?, ?, ?, ?, NULL, NULL, ?, ? FROM {{calls}} c WHERE c.{col} = ?{}",
                    d.insert_ignore(),
                    d.on_conflict_ignore()
                ));
                let done = sqlx::query(&sql)
                    .bind(record_type)
                    .bind(record_id)
                    .bind(field.as_str())
                    .bind(LinkSource::Backfill.as_str())
                    .bind(name.clone())
                    .bind(now)
                    .bind(number.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(&q)?;
                report.links_added += done.rows_affected();
            }
        }
        if report.links_added > 0 {
            // The calls that just got a link: updated, for updated_since.
            let sql = db.sql(
                "UPDATE {calls} SET updated_at = ? WHERE id IN (SELECT call_row FROM {call_links} \
                 WHERE record_type = ? AND record_id = ? AND source = ? AND created_at = ?)",
            );
            sqlx::query(&sql)
                .bind(now)
                .bind(record_type)
                .bind(record_id)
                .bind(LinkSource::Backfill.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(&q)?;
        }
        if !report.numbers.is_empty() {
            let cond = columns
                .iter()
                .map(|c| format!("{c} IN ({})", vec!["?"; report.numbers.len()].join(", ")))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql = d.render(&format!("SELECT count(*) FROM {{calls}} WHERE {cond}"));
            let mut count = sqlx::query(&sql);
            for _ in columns {
                for n in &report.numbers {
                    count = count.bind(n.as_str());
                }
            }
            let row = count.fetch_one(&mut *tx).await.map_err(&q)?;
            report.calls_matched = row.try_get(0).map_err(&q)?;
        }
        tx.commit().await.map_err(&q)?;
        Ok(report)
    })
}
