//! `/v1/calls/{id}/links`: linking a call to a CRM record by hand and
//! removing a link (kept as a tombstone, so matching never brings it back),
//! and `/v1/records/{type}/{id}/match-past-calls`: linking a record's past
//! calls once its numbers are known.

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
use super::call_item::LinkHistory;
use super::call_ref::{self, CallRef};
use super::fields::{Fields, PathParams};
use super::problem::{ApiError, Problem};
use super::roles::Need;
use super::ApiState;
use crate::db::call_lookup::CallIdentity;
use crate::db::links::{self as db_links, CallLinkError, Link, LinkChange};
use crate::db::{Db, DbError, LinkSource};
use crate::events::model::LinkData;
use crate::events::EventType;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(add_link))
        .routes(routes!(remove_link))
        .routes(routes!(match_past_calls))
}

/// What linking did, and the link as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkResult {
    /// `added`, `restored` (a removed link linked again) or `already_linked`.
    #[schema(value_type = String, example = "added")]
    pub change: LinkChange,
    pub link: LinkHistory,
}

/// A record to link the call to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLinkBody {
    /// A `[[crm.records]]` type, e.g. `contact`.
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 64)]
    pub record_type: String,
    /// The record's id in the CRM.
    #[schema(min_length = 1, max_length = 191)]
    pub id: String,
}

/// What match-past-calls found and linked.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchPastCalls {
    /// The record's numbers (and extensions) looked for.
    pub numbers: Vec<String>,
    /// Past calls whose other party (or, for an agent type, agent) has one.
    pub calls_matched: i64,
    /// Links that did not exist before; removed ones stay removed.
    pub links_added: u64,
}

/// A type or id refused, as a problem naming the parameter.
fn record_problem(e: CallLinkError, type_param: &str, id_param: &str) -> ApiError {
    match e {
        CallLinkError::UnknownType { .. } => ApiError::bad(type_param, e.to_string()),
        CallLinkError::BadRecordId { .. } => ApiError::bad(id_param, e.to_string()),
        CallLinkError::Db(e) => e.into(),
    }
}

/// A call deleted while the request ran is a call not found.
fn call_problem(e: DbError) -> ApiError {
    match e {
        DbError::NoSuchCall { .. } => ApiError::not_found("call"),
        e => e.into(),
    }
}

/// The call's link to (type, id), removed or not.
async fn find_link(
    db: &Db,
    call: &CallRef,
    record_type: &str,
    record_id: &str,
) -> Result<Option<Link>, ApiError> {
    let found = db_links::call_with_links(db, &call.sensor, &call.call_id).await?;
    let Some((_, links)) = found else {
        return Err(ApiError::not_found("call"));
    };
    Ok(links
        .into_iter()
        .find(|l| l.record_type == record_type && l.record_id == record_id))
}

/// Links the call to a CRM record (source `manual`); linking a removed link
/// again restores it.
#[utoipa::path(post, path = "/v1/calls/{id}/links", tag = "links", request_body = NewLinkBody,
    params(("id" = String, Path, description = "The call: its row id, or sensor/call_id with the slash as %2F")),
    responses(
        (status = 201, description = "Added, or restored", body = LinkResult),
        (status = 200, description = "Already linked", body = LinkResult),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn add_link(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<LinkResult>), ApiError> {
    caller.require(Need::Links)?;
    let call = call_ref::resolve(&state, &caller, &id).await?;
    let mut f = Fields::new(body, &["type", "id"])?;
    let new = NewLinkBody {
        record_type: f.need("type")?,
        id: f.need("id")?,
    };
    db_links::check_record(&state.config().crm, &new.record_type, &new.id)
        .map_err(|e| record_problem(e, "type", "id"))?;
    let db = state.db().await?;
    let change = db_links::link(
        &db,
        &call.sensor,
        &call.call_id,
        &new.record_type,
        &new.id,
        LinkSource::Manual,
    )
    .await
    .map_err(call_problem)?;
    let link = find_link(&db, &call, &new.record_type, &new.id)
        .await?
        .ok_or_else(|| ApiError::not_found("link"))?;
    tracing::info!(call = call.row, record_type = %new.record_type, record_id = %new.id, ?change, key = caller.key_id, "call linked");
    let status = match change {
        LinkChange::AlreadyLinked => StatusCode::OK,
        _ => {
            link_event(
                &state,
                &call,
                EventType::CallLinked,
                &new.record_type,
                &new.id,
            );
            StatusCode::CREATED
        }
    };
    Ok((
        status,
        Json(LinkResult {
            change,
            link: link.into(),
        }),
    ))
}

/// Removes a link. It is kept as removed, so matching never adds it again
/// (linking it by hand does).
#[utoipa::path(delete, path = "/v1/calls/{id}/links/{type}/{record_id}", tag = "links",
    params(
        ("id" = String, Path, description = "The call: its row id, or sensor/call_id with the slash as %2F"),
        ("type" = String, Path, description = "The record type"),
        ("record_id" = String, Path, description = "The record's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call, or the call is not linked to the record", body = Problem, content_type = "application/problem+json"),
    ))]
async fn remove_link(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams((id, record_type, record_id)): PathParams<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Links)?;
    let call = call_ref::resolve(&state, &caller, &id).await?;
    db_links::check_record(&state.config().crm, &record_type, &record_id)
        .map_err(|e| record_problem(e, "type", "record_id"))?;
    let db = state.db().await?;
    // No live link: nothing to remove, and nothing is written (the CLI's
    // unlink would keep a tombstone; a 404 leaves no trace).
    let live = find_link(&db, &call, &record_type, &record_id)
        .await?
        .is_some_and(|l| l.removed_at.is_none());
    if !live {
        return Err(ApiError::not_found("link"));
    }
    let change = db_links::unlink(&db, &call.sensor, &call.call_id, &record_type, &record_id)
        .await
        .map_err(call_problem)?;
    if change != LinkChange::Removed {
        return Err(ApiError::not_found("link"));
    }
    tracing::info!(call = call.row, record_type = %record_type, record_id = %record_id, key = caller.key_id, "call unlinked");
    link_event(
        &state,
        &call,
        EventType::CallUnlinked,
        &record_type,
        &record_id,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Links every past call whose other party (or, for an agent type, agent)
/// has one of the record's numbers, as the CRM holds them now (source
/// `backfill`; removed links stay removed). Needs a key that sees all calls.
#[utoipa::path(post, path = "/v1/records/{type}/{id}/match-past-calls", tag = "links",
    params(
        ("type" = String, Path, description = "The record type"),
        ("id" = String, Path, description = "The record's id"),
    ),
    responses(
        (status = 200, body = MatchPastCalls),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn match_past_calls(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams((record_type, record_id)): PathParams<(String, String)>,
) -> Result<Json<MatchPastCalls>, ApiError> {
    caller.require(Need::Links)?;
    // It links calls the key may not see.
    if caller.own_agent().is_some() {
        return Err(ApiError::Forbidden {
            role: caller.role.clone(),
            needs: "calls: all",
        });
    }
    let cfg = state.config();
    db_links::check_record(&cfg.crm, &record_type, &record_id)
        .map_err(|e| record_problem(e, "type", "id"))?;
    let db = state.db().await?;
    // The record's numbers fresh from the CRM, as `pbxbridge links
    // match-past-calls` does. When that fails for another reason than the
    // database being away (an id that cannot be a literal, a CRM table the
    // config gets wrong) the index as last built is used: the failure is
    // the index's to report, and the backfill still does what it can.
    if let Err(e) = crate::matching::index::reindex_record(&db, cfg, &record_type, &record_id).await
    {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "match-past-calls: database unavailable");
            return Err(ApiError::Unavailable);
        }
        tracing::warn!(error = %e, record_type = %record_type, "match-past-calls: the record could not be read afresh; using the phone index as last built");
    }
    let report = db_links::match_past_calls(&db, &cfg.crm, &record_type, &record_id)
        .await
        .map_err(|e| record_problem(e, "type", "id"))?;
    tracing::info!(record_type = %record_type, record_id = %record_id, calls_matched = report.calls_matched, links_added = report.links_added, key = caller.key_id, "past calls matched");
    Ok(Json(MatchPastCalls {
        numbers: report.numbers,
        calls_matched: report.calls_matched,
        links_added: report.links_added,
    }))
}

/// `call.linked` / `call.unlinked` for a change made by hand.
fn link_event(
    state: &ApiState,
    call: &CallIdentity,
    kind: EventType,
    record_type: &str,
    record_id: &str,
) {
    if let Some(ev) = state.emitter() {
        let data = LinkData {
            call: call.row,
            agent_id: call.agent_id.clone(),
            record_type: record_type.to_owned(),
            record_id: record_id.to_owned(),
            source: "manual".into(),
        };
        ev.about_call(kind, &call.sensor, &call.call_id, &data);
    }
}
