//! Writing a call's notes (`/v1/calls/{id}/notes`), keeping the call's
//! `note_count` and `updated_at` right in the same transaction.
//!
//! A note may carry a status: it is written into the `status_column` of
//! every CRM record the call is linked to whose type has one and allows the
//! value. That is the only write pbxbridge makes to the CRM's tables, and
//! only where `[[crm.records]]` names the column and its values.

use sqlx::Row;

use super::notes::{note_row, NoteRow, NOTE_COLUMNS};
use super::{Backend, Db, DbError, DbTime, Dialect};
use crate::config::{CrmConfig, CrmRecord};
use crate::matching::linker::literal;
use crate::time::Timestamp;

/// Linked records read to set a status, at most (the linker's own cap).
const MAX_STATUS_RECORDS: i64 = crate::matching::linker::MAX_LINKS_PER_CALL as i64;
/// Ids per `IN` list of a status update.
const IDS_PER_UPDATE: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("no call with row id {call_row}")]
    NoCall { call_row: i64 },
    #[error("call {call_row} has no note {note_id}")]
    NoNote { call_row: i64, note_id: i64 },
    #[error("no [[crm.records]] entry has a status_column: notes cannot set a status")]
    StatusOff,
    #[error(
        "the call is linked to no record whose type has a status column (types with one: {types})"
    )]
    NoStatusRecord { types: String },
    #[error("{value:?} is not a status of the linked records; allowed: {allowed}")]
    StatusNotAllowed { value: String, allowed: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A note to add.
#[derive(Debug, Clone, Copy)]
pub struct NewNote<'a> {
    pub author: Option<&'a str>,
    pub body: &'a str,
    pub status: Option<&'a str>,
    /// The API key writing it.
    pub key_id: Option<i64>,
}

/// A record whose status a note set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusSet {
    pub record_type: String,
    pub record_id: String,
}

/// The note as stored, and the records whose status it set.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteWritten {
    pub note: NoteRow,
    pub status_set: Vec<StatusSet>,
}

/// Which records of `links` get `value`, by type: those whose type has a
/// status column allowing it. An error when none does.
fn status_plan<'c>(
    crm: &'c CrmConfig,
    links: &[(String, String)],
    value: &str,
) -> Result<Vec<(&'c CrmRecord, Vec<String>)>, NoteError> {
    let with_column: Vec<&CrmRecord> = crm
        .records
        .iter()
        .filter(|r| r.status_column.is_some())
        .collect();
    if with_column.is_empty() {
        return Err(NoteError::StatusOff);
    }
    let linked: Vec<&CrmRecord> = with_column
        .iter()
        .copied()
        .filter(|r| links.iter().any(|(t, _)| *t == r.kind))
        .collect();
    if linked.is_empty() {
        let types: Vec<&str> = with_column.iter().map(|r| r.kind.as_str()).collect();
        return Err(NoteError::NoStatusRecord {
            types: types.join(", "),
        });
    }
    let plan: Vec<(&CrmRecord, Vec<String>)> = linked
        .iter()
        .filter(|r| r.status_values.iter().any(|v| v == value))
        .map(|r| {
            let ids = links
                .iter()
                .filter(|(t, _)| *t == r.kind)
                .map(|(_, id)| id.clone())
                .collect();
            (*r, ids)
        })
        .collect();
    if plan.is_empty() {
        let allowed: Vec<String> = linked
            .iter()
            .map(|r| format!("{} ({})", r.status_values.join(", "), r.kind))
            .collect();
        return Err(NoteError::StatusNotAllowed {
            value: value.to_owned(),
            allowed: allowed.join("; "),
        });
    }
    Ok(plan)
}

/// `UPDATE <crm table> SET <status column> = ? WHERE <id> IN (…)`. Table and
/// column names come from the config (checked as identifiers) and are
/// quoted; the value is bound. The ids are literals, as the linker writes
/// them: the CRM's id column may be of any type, and PostgreSQL compares an
/// untyped literal with it but refuses a text parameter.
fn status_sql(d: &Dialect, rec: &CrmRecord, column: &str, ids: &[String]) -> String {
    let list: Vec<String> = ids.iter().map(|id| literal(d.backend, id)).collect();
    let sql = format!(
        "UPDATE {} SET {} = ? WHERE {} IN ({})",
        d.quote_path(&rec.table),
        d.quote(column),
        d.quote(&rec.id),
        list.join(", ")
    );
    d.render(&sql)
}

/// Inserts with `$q` (an INSERT without RETURNING) and evaluates to the new
/// row's id: `RETURNING id` on SQLite and PostgreSQL, `LAST_INSERT_ID()` on
/// the same connection on MySQL.
macro_rules! insert_id {
    ($backend:expr, $tx:expr, $sql:expr, |$q:ident| $bind:expr) => {{
        if $backend == Backend::MySql {
            let $q = sqlx::query($sql);
            $bind.execute(&mut *$tx).await?;
            let row = sqlx::query("SELECT CAST(LAST_INSERT_ID() AS SIGNED)")
                .fetch_one(&mut *$tx)
                .await?;
            row.try_get::<i64, _>(0)?
        } else {
            let returning = format!("{} RETURNING id", $sql);
            let $q = sqlx::query(&returning);
            let row = $bind.fetch_one(&mut *$tx).await?;
            row.try_get::<i64, _>(0)?
        }
    }};
}
pub(super) use insert_id;

/// Runs the status plan for `value` inside the note's transaction.
macro_rules! set_status {
    ($db:expr, $tx:expr, $crm:expr, $call_row:expr, $value:expr) => {{
        let links_sql = $db.sql(
            "SELECT record_type, record_id FROM {call_links} \
             WHERE call_row = ? AND removed_at IS NULL ORDER BY id LIMIT ?",
        );
        let rows = sqlx::query(&links_sql)
            .bind($call_row)
            .bind(MAX_STATUS_RECORDS)
            .fetch_all(&mut *$tx)
            .await?;
        let mut links: Vec<(String, String)> = Vec::with_capacity(rows.len());
        for r in &rows {
            links.push((r.try_get(0)?, r.try_get(1)?));
        }
        match status_plan($crm, &links, $value) {
            Err(e) => Err(e),
            Ok(plan) => {
                let mut set = Vec::new();
                for (rec, ids) in plan {
                    let column = rec.status_column.as_deref().unwrap_or_default();
                    for chunk in ids.chunks(IDS_PER_UPDATE) {
                        let sql = status_sql($db.dialect(), rec, column, chunk);
                        sqlx::query(&sql).bind($value).execute(&mut *$tx).await?;
                    }
                    set.extend(ids.into_iter().map(|id| StatusSet {
                        record_type: rec.kind.clone(),
                        record_id: id,
                    }));
                }
                Ok(set)
            }
        }
    }};
}

/// A statement of a note write failed.
fn failed(what: &'static str) -> impl Fn(sqlx::Error) -> NoteError {
    move |source| NoteError::Db(DbError::Query { what, source })
}

impl Db {
    /// Adds a note to call `call_row`, setting the linked records' status
    /// when it has one; nothing is written when the status is refused.
    pub async fn add_note(
        &self,
        crm: &CrmConfig,
        call_row: i64,
        note: &NewNote<'_>,
    ) -> Result<NoteWritten, NoteError> {
        let now = DbTime(Timestamp::now());
        let touch = self.sql("UPDATE {calls} SET updated_at = ? WHERE id = ?");
        let insert = self.sql(
            "INSERT INTO {call_notes} (call_row, author, body, status, key_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        let count = self.sql(
            "UPDATE {calls} SET note_count = (SELECT count(*) FROM {call_notes} WHERE call_row = ?) WHERE id = ?",
        );
        let backend = self.backend();
        let (id, status_set) = with_pool!(self.pool(), p => {
            let run = async {
                let mut tx = p.begin().await?;
                // Also takes the call row's lock: a delete waits for the note.
                let found = sqlx::query(&touch).bind(now).bind(call_row).execute(&mut *tx).await?;
                if found.rows_affected() == 0 {
                    return Ok(Err(NoteError::NoCall { call_row }));
                }
                let status_set = match note.status {
                    Some(value) => match set_status!(self, tx, crm, call_row, value) {
                        Ok(set) => set,
                        Err(e) => return Ok(Err(e)),
                    },
                    None => Vec::new(),
                };
                let id = insert_id!(backend, tx, &insert, |q| q
                    .bind(call_row)
                    .bind(note.author)
                    .bind(note.body)
                    .bind(note.status)
                    .bind(note.key_id)
                    .bind(now)
                    .bind(now));
                sqlx::query(&count).bind(call_row).bind(call_row).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Ok((id, status_set)))
            };
            run.await.map_err(failed("adding a note"))??
        });
        let note = self.note(call_row, id).await?.ok_or(NoteError::NoNote {
            call_row,
            note_id: id,
        })?;
        Ok(NoteWritten { note, status_set })
    }

    /// Changes a note's body and/or status (which is written to the linked
    /// records as when adding).
    pub async fn update_note(
        &self,
        crm: &CrmConfig,
        call_row: i64,
        note_id: i64,
        body: Option<&str>,
        status: Option<&str>,
    ) -> Result<NoteWritten, NoteError> {
        let now = DbTime(Timestamp::now());
        let update = self.sql(
            "UPDATE {call_notes} SET body = COALESCE(?, body), status = COALESCE(?, status), updated_at = ? \
             WHERE id = ? AND call_row = ?",
        );
        let touch = self.sql("UPDATE {calls} SET updated_at = ? WHERE id = ?");
        let status_set = with_pool!(self.pool(), p => {
            let run = async {
                let mut tx = p.begin().await?;
                let found = sqlx::query(&touch).bind(now).bind(call_row).execute(&mut *tx).await?;
                if found.rows_affected() == 0 {
                    return Ok(Err(NoteError::NoCall { call_row }));
                }
                let done = sqlx::query(&update)
                    .bind(body)
                    .bind(status)
                    .bind(now)
                    .bind(note_id)
                    .bind(call_row)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(Err(NoteError::NoNote { call_row, note_id }));
                }
                let set = match status {
                    Some(value) => match set_status!(self, tx, crm, call_row, value) {
                        Ok(set) => set,
                        Err(e) => return Ok(Err(e)),
                    },
                    None => Vec::new(),
                };
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Ok(set))
            };
            run.await.map_err(failed("changing a note"))??
        });
        let note = self
            .note(call_row, note_id)
            .await?
            .ok_or(NoteError::NoNote { call_row, note_id })?;
        Ok(NoteWritten { note, status_set })
    }

    /// Deletes a note. A status it set stays on the CRM record: the CRM's
    /// data is the CRM's, and another note may have set it since.
    pub async fn delete_note(&self, call_row: i64, note_id: i64) -> Result<(), NoteError> {
        let now = DbTime(Timestamp::now());
        let delete = self.sql("DELETE FROM {call_notes} WHERE id = ? AND call_row = ?");
        let recount = self.sql(
            "UPDATE {calls} SET note_count = (SELECT count(*) FROM {call_notes} WHERE call_row = ?), \
             updated_at = ? WHERE id = ?",
        );
        with_pool!(self.pool(), p => {
            let run = async {
                let mut tx = p.begin().await?;
                let done = sqlx::query(&delete).bind(note_id).bind(call_row).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Ok(Err(NoteError::NoNote { call_row, note_id }));
                }
                sqlx::query(&recount)
                    .bind(call_row)
                    .bind(now)
                    .bind(call_row)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Ok(()))
            };
            run.await.map_err(failed("deleting a note"))?
        })
    }

    /// One note of a call; `None` when the call has no such note.
    pub async fn note(&self, call_row: i64, note_id: i64) -> Result<Option<NoteRow>, DbError> {
        let q = |source| DbError::Query {
            what: "reading a note",
            source,
        };
        let sql = self.sql(&format!(
            "SELECT {NOTE_COLUMNS} FROM {{call_notes}} WHERE id = ? AND call_row = ?"
        ));
        with_pool!(self.pool(), p => {
            let row = sqlx::query(&sql)
                .bind(note_id)
                .bind(call_row)
                .fetch_optional(p)
                .await
                .map_err(&q)?;
            row.as_ref()
                .map(|r| -> Result<NoteRow, sqlx::Error> { Ok(note_row!(r)) })
                .transpose()
                .map_err(&q)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crm() -> CrmConfig {
        let text = r#"
            [[records]]
            type = "contact"
            table = "contacts"
            [[records]]
            type = "deal"
            table = "crm.deals"
            status_column = "stage"
            status_values = ["open", "won", "lost"]
            [[records]]
            type = "lead"
            table = "leads"
            status_column = "state"
            status_values = ["new", "won"]
        "#;
        toml::from_str(text).unwrap()
    }

    fn links(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(t, i)| (t.to_string(), i.to_string()))
            .collect()
    }

    #[test]
    fn a_status_goes_to_the_linked_types_that_allow_it() {
        let crm = crm();
        let l = links(&[
            ("contact", "1"),
            ("deal", "7"),
            ("deal", "8"),
            ("lead", "3"),
        ]);
        let plan = status_plan(&crm, &l, "lost").unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].0.kind, "deal");
        assert_eq!(plan[0].1, ["7", "8"]);
        let both = status_plan(&crm, &l, "won").unwrap();
        assert_eq!(both.len(), 2);
        let e = status_plan(&crm, &l, "closed").unwrap_err();
        assert!(e.to_string().contains("open, won, lost (deal)"), "{e}");
        let e = status_plan(&crm, &links(&[("contact", "1")]), "won").unwrap_err();
        assert!(matches!(e, NoteError::NoStatusRecord { .. }), "{e}");
        let off = CrmConfig::default();
        assert!(matches!(
            status_plan(&off, &l, "won"),
            Err(NoteError::StatusOff)
        ));
    }

    #[test]
    fn status_updates_quote_names_and_bind_the_value() {
        let crm = crm();
        let d = Dialect::new(Backend::Postgres, "", None);
        let sql = status_sql(&d, &crm.records[1], "stage", &["7".into(), "x'y".into()]);
        assert_eq!(
            sql,
            "UPDATE \"crm\".\"deals\" SET \"stage\" = $1 WHERE \"id\" IN ('7', 'x''y')"
        );
    }
}
