//! `/v1/calls/{id}/notes`: what agents write after a call. Reading needs
//! only to see the call; writing needs the notes permission. A note may set
//! the linked CRM records' status (`status_column` in `[[crm.records]]`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::body::JsonBody;
use super::call_ref;
use super::fields::{row_id, text, Fields, PathParams};
use super::problem::{ApiError, Problem};
use super::roles::Need;
use super::ApiState;
use crate::db::note_writes::{NewNote, NoteError, NoteWritten, StatusSet};
use crate::db::notes::NoteRow;
use crate::events::model::NoteData;
use crate::events::EventType;
use crate::time::Timestamp;

/// A note's body, at most (characters).
pub const MAX_BODY_CHARS: usize = 10_000;
/// An author's name, at most (the column is VARCHAR(191)).
pub const MAX_AUTHOR_CHARS: usize = 191;
/// A status value, at most (the column is VARCHAR(64)).
pub const MAX_STATUS_CHARS: usize = 64;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_notes, add_note))
        .routes(routes!(update_note, delete_note))
}

/// A note on a call.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteItem {
    pub id: i64,
    pub author: Option<String>,
    pub body: String,
    /// The CRM status this note set on the call's linked records, if any.
    pub status: Option<String>,
    /// The API key that wrote it.
    pub key_id: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<NoteRow> for NoteItem {
    fn from(n: NoteRow) -> NoteItem {
        NoteItem {
            id: n.id,
            author: n.author,
            body: n.body,
            status: n.status,
            key_id: n.key_id,
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoteList {
    pub data: Vec<NoteItem>,
}

/// A CRM record whose status column a note wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusSetItem {
    #[serde(rename = "type")]
    pub record_type: String,
    pub id: String,
}

/// A note as written, with the records whose status it set.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenNote {
    #[serde(flatten)]
    pub note: NoteItem,
    /// Empty unless the request had a `status`.
    pub status_set: Vec<StatusSetItem>,
}

impl From<NoteWritten> for WrittenNote {
    fn from(w: NoteWritten) -> WrittenNote {
        WrittenNote {
            note: w.note.into(),
            status_set: w
                .status_set
                .into_iter()
                .map(
                    |StatusSet {
                         record_type,
                         record_id,
                     }| StatusSetItem {
                        record_type,
                        id: record_id,
                    },
                )
                .collect(),
        }
    }
}

/// A new note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNoteBody {
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
    /// Who wrote it; the API key's name when absent.
    #[schema(min_length = 1, max_length = 191)]
    pub author: Option<String>,
    /// A value of a linked record type's `status_values`: written to that
    /// record's `status_column` in the CRM.
    #[schema(min_length = 1, max_length = 64)]
    pub status: Option<String>,
}

impl NewNoteBody {
    fn parse(body: Value) -> Result<NewNoteBody, ApiError> {
        let mut f = Fields::new(body, &["body", "author", "status"])?;
        let note = NewNoteBody {
            body: f.need("body")?,
            author: f.take("author")?,
            status: f.take("status")?,
        };
        text("body", &note.body, MAX_BODY_CHARS, true)?;
        if let Some(a) = &note.author {
            text("author", a, MAX_AUTHOR_CHARS, false)?;
        }
        check_status(note.status.as_deref())?;
        Ok(note)
    }
}

/// A note's changes: its body, its status, or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotePatch {
    #[schema(min_length = 1, max_length = 10000)]
    pub body: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    pub status: Option<String>,
}

impl NotePatch {
    fn parse(body: Value) -> Result<NotePatch, ApiError> {
        let mut f = Fields::new(body, &["body", "status"])?;
        let patch = NotePatch {
            body: f.take("body")?,
            status: f.take("status")?,
        };
        if let Some(b) = &patch.body {
            text("body", b, MAX_BODY_CHARS, true)?;
        }
        check_status(patch.status.as_deref())?;
        if patch.body.is_none() && patch.status.is_none() {
            return Err(ApiError::bad("body", "give body, status or both"));
        }
        Ok(patch)
    }
}

fn check_status(status: Option<&str>) -> Result<(), ApiError> {
    match status {
        Some(s) => text("status", s, MAX_STATUS_CHARS, false),
        None => Ok(()),
    }
}

impl From<NoteError> for ApiError {
    fn from(e: NoteError) -> ApiError {
        match e {
            NoteError::NoCall { .. } => ApiError::not_found("call"),
            NoteError::NoNote { .. } => ApiError::not_found("note"),
            NoteError::StatusOff
            | NoteError::NoStatusRecord { .. }
            | NoteError::StatusNotAllowed { .. } => ApiError::bad("status", e.to_string()),
            NoteError::Db(e) => e.into(),
        }
    }
}

/// The call's notes, oldest first (at most 1000).
#[utoipa::path(get, path = "/v1/calls/{id}/notes", tag = "notes",
    params(("id" = String, Path, description = "The call: its row id, or sensor/call_id with the slash as %2F")),
    responses(
        (status = 200, body = NoteList),
    ))]
async fn list_notes(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<NoteList>, ApiError> {
    let call = call_ref::resolve(&state, &caller, &id).await?;
    let notes = state.db().await?.notes_of(call.row).await?;
    Ok(Json(NoteList {
        data: notes.into_iter().map(NoteItem::from).collect(),
    }))
}

/// Adds a note; with `status`, also sets the linked CRM records' status.
#[utoipa::path(post, path = "/v1/calls/{id}/notes", tag = "notes", request_body = NewNoteBody,
    params(("id" = String, Path, description = "The call: its row id, or sensor/call_id with the slash as %2F")),
    responses(
        (status = 201, body = WrittenNote),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn add_note(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<WrittenNote>), ApiError> {
    caller.require(Need::Notes)?;
    let call = call_ref::resolve(&state, &caller, &id).await?;
    let new = NewNoteBody::parse(body)?;
    let author = new.author.as_deref().unwrap_or(&caller.key_name);
    let written = state
        .db()
        .await?
        .add_note(
            &state.config().crm,
            call.row,
            &NewNote {
                author: Some(author),
                body: &new.body,
                status: new.status.as_deref(),
                key_id: Some(caller.key_id),
            },
        )
        .await?;
    tracing::info!(
        call = call.row,
        note = written.note.id,
        key = caller.key_id,
        status_set = written.status_set.len(),
        "note added"
    );
    if let Some(ev) = state.emitter() {
        let data = NoteData {
            call: call.row,
            agent_id: call.agent_id.clone(),
            note: written.note.id,
            author: Some(author.to_owned()),
            text: new.body.clone(),
            status: new.status.clone(),
        };
        ev.about_call(EventType::NoteAdded, &call.sensor, &call.call_id, &data);
    }
    Ok((StatusCode::CREATED, Json(written.into())))
}

/// Changes a note's body or status.
#[utoipa::path(patch, path = "/v1/calls/{id}/notes/{note_id}", tag = "notes", request_body = NotePatch,
    params(
        ("id" = String, Path, description = "The call: its row id, or sensor/call_id with the slash as %2F"),
        ("note_id" = i64, Path, description = "The note's id"),
    ),
    responses(
        (status = 200, body = WrittenNote),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_note(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams((id, note_id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<WrittenNote>, ApiError> {
    caller.require(Need::Notes)?;
    let call = call_ref::resolve(&state, &caller, &id).await?;
    let note_id = row_id("note_id", &note_id, "note")?;
    let patch = NotePatch::parse(body)?;
    let written = state
        .db()
        .await?
        .update_note(
            &state.config().crm,
            call.row,
            note_id,
            patch.body.as_deref(),
            patch.status.as_deref(),
        )
        .await?;
    tracing::info!(
        call = call.row,
        note = note_id,
        key = caller.key_id,
        "note changed"
    );
    Ok(Json(written.into()))
}

/// Deletes a note (a status it set stays on the CRM record).
#[utoipa::path(delete, path = "/v1/calls/{id}/notes/{note_id}", tag = "notes",
    params(
        ("id" = String, Path, description = "The call: its row id, or sensor/call_id with the slash as %2F"),
        ("note_id" = i64, Path, description = "The note's id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_note(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams((id, note_id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Notes)?;
    let call = call_ref::resolve(&state, &caller, &id).await?;
    let note_id = row_id("note_id", &note_id, "note")?;
    state.db().await?.delete_note(call.row, note_id).await?;
    tracing::info!(
        call = call.row,
        note = note_id,
        key = caller.key_id,
        "note deleted"
    );
    Ok(StatusCode::NO_CONTENT)
}
