//! `/v1/records/{type}/{id}/calls`: a CRM record's timeline, the calls
//! linked to it (removed links aside), newest first unless sorted
//! otherwise, with the call log's filters and paging.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::call_page::{self, CallPage};
use super::call_params::{record_ref, CallListQuery, ListParams, Route};
use super::problem::ApiError;
use super::ApiState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(record_calls))
}

/// The record's calls: the call log narrowed to the calls linked to it.
/// `record` is not taken here (the path names the record).
#[utoipa::path(get, path = "/v1/records/{type}/{id}/calls", tag = "records",
    params(
        ("type" = String, Path, description = "A record type from [[crm.records]], e.g. contact"),
        ("id" = String, Path, description = "The record's id in the CRM"),
        CallListQuery,
    ),
    responses(
        (status = 200, description = "A page of the record's calls, or with Accept: text/csv all of them as CSV",
            content(
                (CallPage = "application/json"),
                (String = "text/csv"),
            )),
    ))]
async fn record_calls(
    caller: Caller,
    State(state): State<ApiState>,
    Path((kind, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = record_ref(&state, "type", "id", &kind, &id)?;
    let mut p = ListParams::parse(&state, raw.as_deref(), Route::Timeline)?;
    p.query.record = Some(record);
    call_page::answer(&state, &caller, p, call_page::wants_csv(&headers)).await
}
