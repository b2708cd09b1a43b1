//! Notes on calls (`/v1/calls/{id}/notes`): reading them. A note may carry a
//! status it set on the linked CRM record.

use serde::Serialize;
use sqlx::Row;

use super::{Db, DbError, DbTime};
use crate::time::Timestamp;

/// Notes shown with one call, at most.
pub const MAX_NOTES_PER_CALL: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoteRow {
    pub id: i64,
    pub call_row: i64,
    pub author: Option<String>,
    pub body: String,
    /// The CRM record status this note set, if any.
    pub status: Option<String>,
    /// The API key that wrote it (`None` for notes from elsewhere).
    pub key_id: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub(super) const NOTE_COLUMNS: &str =
    "id, call_row, author, body, status, key_id, created_at, updated_at";

macro_rules! note_row {
    ($r:expr) => {{
        let r = $r;
        let created: DbTime = r.try_get(6)?;
        let updated: DbTime = r.try_get(7)?;
        NoteRow {
            id: r.try_get(0)?,
            call_row: r.try_get(1)?,
            author: r.try_get(2)?,
            body: r.try_get(3)?,
            status: r.try_get(4)?,
            key_id: r.try_get(5)?,
            created_at: created.0,
            updated_at: updated.0,
        }
    }};
}
pub(super) use note_row;

impl Db {
    /// A call's notes, oldest first.
    pub async fn notes_of(&self, call_row: i64) -> Result<Vec<NoteRow>, DbError> {
        let q = |source| DbError::Query {
            what: "reading a call's notes",
            source,
        };
        let sql = self.sql(&format!(
            "SELECT {NOTE_COLUMNS} FROM {{call_notes}} WHERE call_row = ? ORDER BY id LIMIT ?"
        ));
        with_pool!(self.pool(), p => {
            let rows = sqlx::query(&sql)
                .bind(call_row)
                .bind(MAX_NOTES_PER_CALL)
                .fetch_all(p)
                .await
                .map_err(&q)?;
            rows.iter()
                .map(|r| -> Result<NoteRow, sqlx::Error> { Ok(note_row!(r)) })
                .collect::<Result<Vec<_>, _>>()
                .map_err(&q)
        })
    }
}
