//! `POST /v1/calls` and `DELETE /v1/calls/{id}`: the call-log operations a
//! CRM uses for calls pbxbridge did not capture (Pipedrive's call logs).
//!
//! A created call is matched to CRM records as a captured one is (the
//! linker, over the phone index: its links have source `auto`). With an
//! `Idempotency-Key` a retried create answers with the call the key made
//! (200, `Idempotent-Replayed: true`); the same key with another body is a
//! 409, as Stripe does.
//!
//! A delete removes the recording first, then the rows: the row is first
//! marked `expired` (nothing serves or uploads the recording any more), then
//! the file or object is deleted, then the call with its notes, links and
//! idempotency keys. A failure half-way leaves a row that says its
//! recording is gone and still names it, so the client's retry finishes the
//! job; the other order could leave a file that no row names, which nothing
//! would ever find and delete.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::body::JsonBody;
use super::call_item::CallDetail;
use super::call_new::{NewCall, NewCallBody};
use super::call_ref;
use super::fields::PathParams;
use super::problem::{ApiError, Problem};
use super::recording::remove;
use super::roles::Need;
use super::ApiState;
use crate::db::call_write::{Created, Idempotency};
use crate::db::note_writes::NewNote;
use crate::db::recording_lookup::recording_of;
use crate::db::{Db, LinkSource, NewLink};
use crate::matching::linker::Linker;
use crate::time::Timestamp;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_call))
        .routes(routes!(delete_call))
}

/// The longest `Idempotency-Key` (the column is VARCHAR(191)).
const MAX_IDEMPOTENCY_KEY: usize = 191;

/// The `Idempotency-Key` header: 1 to 191 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
        )
    };
    let text = v.to_str().map_err(|_| bad())?;
    if text.is_empty()
        || text.len() > MAX_IDEMPOTENCY_KEY
        || !text.bytes().all(|b| (0x20..=0x7e).contains(&b))
    {
        return Err(bad());
    }
    Ok(Some(text.to_owned()))
}

/// `api-` and 128 random bits in hex.
fn new_call_id() -> Result<String, ApiError> {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).map_err(|e| {
        tracing::error!(error = %e, "the system's random source failed");
        ApiError::Internal
    })?;
    let hex: String = hex::encode(buf);
    Ok(format!("api-{hex}"))
}

/// The agent a body names: (extension for the `agent` column, the agent
/// record (type, id, name) when named by id).
type AgentChoice = (Option<String>, Option<(String, String, Option<String>)>);

async fn choose_agent(
    state: &ApiState,
    db: &Db,
    call: &NewCall,
    own: Option<&str>,
) -> Result<AgentChoice, ApiError> {
    let numbers = state.numbers();
    // Unnamed: the extension on the PBX side, else a see-own key's agent.
    let named = match (call.agent.as_deref(), call.pbx_side_extension(numbers)) {
        (Some(a), _) => a,
        (None, Some(ext)) => return Ok((Some(ext), None)),
        (None, None) => match own {
            Some(own) => own,
            None => return Ok((None, None)),
        },
    };
    let agent = named;
    if let Some(ext) = numbers.normalize(agent).filter(|n| !n.starts_with('+')) {
        return Ok((Some(ext), None));
    }
    let types: Vec<&str> = state
        .config()
        .crm
        .records
        .iter()
        .filter(|r| r.is_agent())
        .map(|r| r.kind.as_str())
        .collect();
    match db.agent_record(&types, agent).await? {
        Some((kind, name, ext)) => Ok((ext, Some((kind, agent.to_owned(), name)))),
        None => Err(ApiError::bad(
            "agent",
            "is neither an extension (pbx.extension_pattern) nor the id of an agent record in the phone index",
        )),
    }
}

/// Logs a call pbxbridge did not capture.
#[utoipa::path(post, path = "/v1/calls", tag = "calls", request_body = NewCallBody,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1 to 191 printable ASCII characters: a retry with the same key and body answers with the same call")),
    responses(
        (status = 201, description = "Created", body = CallDetail,
            headers(("Location" = String, description = "The call's URL"))),
        (status = 200, description = "The call this Idempotency-Key made before", body = CallDetail,
            headers(("Idempotent-Replayed" = String, description = "true"))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_call(
    caller: Caller,
    State(state): State<ApiState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    caller.require(Need::WriteCalls)?;
    let idem_key = idempotency_key(&headers)?;
    let call = NewCall::parse(body, Timestamp::now())?;
    let db = state.db().await?;
    let (agent_ext, agent_by_id) = choose_agent(&state, &db, &call, caller.own_agent()).await?;
    let report = call.report(new_call_id()?, state.numbers(), agent_ext);
    let linker = Linker::new(&state.config().crm);
    let mut writes = linker
        .match_calls(&db, std::slice::from_ref(&report))
        .await?;
    let Some(mut write) = writes.pop() else {
        return Err(ApiError::Internal);
    };
    if let Some((kind, id, name)) = agent_by_id {
        if !write
            .links
            .iter()
            .any(|l| l.record_type == kind && l.record_id == id)
        {
            write.links.push(NewLink {
                record_type: kind.clone(),
                record_id: id.clone(),
                field: None,
                source: LinkSource::Auto,
                via: None,
                display_name: name.clone(),
            });
        }
        write.agent = Some((kind, id, name));
    }
    if let Some(own) = caller.own_agent() {
        if write.agent.as_ref().map(|a| a.1.as_str()) != Some(own) {
            return Err(ApiError::bad(
                "agent",
                "this key sees only its agent's calls and creates only those",
            ));
        }
    }
    let hash = call.request_hash();
    let idem = idem_key.as_deref().map(|key| Idempotency {
        key_id: caller.key_id,
        key,
        request_hash: &hash,
    });
    let note = call.note.as_deref().map(|body| NewNote {
        author: Some(caller.key_name.as_str()),
        body,
        status: None,
        key_id: Some(caller.key_id),
    });
    let created = db
        .create_call(state.sensor(), &write, note.as_ref(), idem.as_ref())
        .await?;
    let (row, replayed) = match created {
        Created::New(row) => (row, false),
        Created::Replayed(row) => (row, true),
        Created::KeyReused => {
            return Err(ApiError::Conflict {
                detail: "this Idempotency-Key was used with another request body; use a new key for a new call".into(),
            })
        }
    };
    let detail = super::calls::call_detail(&db, row, caller.own_agent())
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    let mut resp = if replayed {
        let mut r = (StatusCode::OK, Json(detail)).into_response();
        r.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
        r
    } else {
        tracing::info!(call = row, call_id = %detail.call.call_id, links = detail.links.len(), key = caller.key_id, "call created");
        (StatusCode::CREATED, Json(detail)).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/calls/{row}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Deletes a call with its notes, links and recording (file or object).
/// A second delete answers 404.
#[utoipa::path(delete, path = "/v1/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "The call: its row id, or sensor/call_id with the slash as %2F")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The recording cannot be deleted from here (a file outside recording.dir, or a storage backend not configured); nothing was deleted", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_call(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::WriteCalls)?;
    let call = call_ref::resolve(&state, &caller, &id).await?;
    let db = state.db().await?;
    let rec = recording_of(&db, &call.sensor, &call.call_id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    let place = (
        rec.backend.as_deref(),
        rec.key.as_deref(),
        rec.path.as_deref(),
    );
    let removal = remove::removal_plan(place, state.storage(), &state.config().recording.dir)?;
    if removal.file.is_some() || removal.object.is_some() {
        db.mark_recording_deleting(call.row).await?;
        remove::remove_recording(removal).await?;
    }
    if !db.delete_call(call.row).await? {
        return Err(ApiError::not_found("call"));
    }
    tracing::info!(call = call.row, call_id = %call.call_id, key = caller.key_id, "call deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_printable_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(idempotency_key(&h).unwrap(), None);
        h.insert("idempotency-key", HeaderValue::from_static("abc-123"));
        assert_eq!(idempotency_key(&h).unwrap().as_deref(), Some("abc-123"));
        h.insert("idempotency-key", HeaderValue::from_static(""));
        assert!(idempotency_key(&h).is_err());
        h.insert(
            "idempotency-key",
            HeaderValue::from_str(&"k".repeat(192)).unwrap(),
        );
        assert!(idempotency_key(&h).is_err());
        h.insert(
            "idempotency-key",
            HeaderValue::from_bytes(b"a\xffb").unwrap(),
        );
        assert!(idempotency_key(&h).is_err());
        assert!(new_call_id().unwrap().starts_with("api-"));
    }
}
