//! `/v1/calls`: the call log (JSON pages or CSV) and one call with its notes
//! and link history. A see-own key sees only its agent's calls; any other
//! call answers 404.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::call_item::{CallDetail, CallItem, CallNoteItem, LinkHistory};
use super::call_page::{self, CallPage};
use super::call_params::{CallListQuery, ListParams, Route};
use super::problem::ApiError;
use super::{call_ref, ApiState};
use crate::db::call_list::{links_of, CallQuery, Start};
use crate::db::Db;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_calls))
        .routes(routes!(calls_csv))
        .routes(routes!(get_call))
}

/// The call log: filtered, sorted, a page at a time. With `Accept:
/// text/csv`, every matching call as CSV (as `/v1/calls.csv`).
#[utoipa::path(get, path = "/v1/calls", tag = "calls",
    params(CallListQuery),
    responses(
        (status = 200, description = "A page of calls, or with Accept: text/csv all of them as CSV",
            content(
                (CallPage = "application/json"),
                (String = "text/csv"),
            )),
    ))]
async fn list_calls(
    caller: Caller,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = ListParams::parse(&state, raw.as_deref(), Route::Calls)?;
    call_page::answer(&state, &caller, p, call_page::wants_csv(&headers)).await
}

/// Every call the filters let through, in the sort asked for, as RFC 4180
/// CSV (UTF-8, CRLF) with a header row. Columns, in this order: id, sensor,
/// call_id, direction, from_number, from_raw, from_display, to_number,
/// to_raw, other_number, started_at, answered_at, ended_at, duration,
/// outcome, sip_code, end_reason, agent_extension, agent_type, agent_id,
/// agent_name, dtmf, held, answered_elsewhere, source, updated_at,
/// has_notes, recording_status, recording_duration, recording_format,
/// recording_url, caller_rtp_packets, caller_rtp_lost, callee_rtp_packets,
/// callee_rtp_lost, records (`type:id (display name)` joined with `; `).
/// `limit`, `cursor`, `page` and `include_total` are checked but do not
/// apply: the export has every matching call.
#[utoipa::path(get, path = "/v1/calls.csv", tag = "calls",
    params(CallListQuery),
    responses(
        (status = 200, description = "CSV, streamed", body = String, content_type = "text/csv"),
    ))]
async fn calls_csv(
    caller: Caller,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = ListParams::parse(&state, raw.as_deref(), Route::Calls)?;
    call_page::answer(&state, &caller, p, true).await
}

/// One call with its notes and every link, removed ones included.
#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls",
    params(("id" = String, Path,
        description = "The call's row id (42), or sensor/call_id with the slash as %2F")),
    responses(
        (status = 200, body = CallDetail),
    ))]
async fn get_call(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CallDetail>, ApiError> {
    let call = call_ref::resolve(&state, &caller, &id).await?;
    let db = state.db().await?;
    // Deleted between the two reads: gone, like any unknown call.
    call_detail(&db, call.row, caller.own_agent())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("call"))
}

/// Call `row` as `GET /v1/calls/{id}` shows it; `None` when it is gone or
/// not the see-own agent's.
pub async fn call_detail(
    db: &Db,
    row: i64,
    own_agent: Option<&str>,
) -> Result<Option<CallDetail>, ApiError> {
    let query = CallQuery {
        row: Some(row),
        own_agent: own_agent.map(str::to_owned),
        ..CallQuery::default()
    };
    let Some(record) = query.fetch(db, &Start::After(None), 1).await?.pop() else {
        return Ok(None);
    };
    let links = links_of(db, &[record.id], true)
        .await?
        .remove(&record.id)
        .unwrap_or_default();
    let notes = db.notes_of(record.id).await?;
    Ok(Some(CallDetail {
        call: CallItem::new(record, &links),
        notes: notes.into_iter().map(CallNoteItem::from).collect(),
        links: links.into_iter().map(LinkHistory::from).collect(),
    }))
}
