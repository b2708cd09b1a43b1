//! A page of the call log, shared by `GET /v1/calls` and a record's
//! timeline: keyset pages with `next_cursor`, or numbered pages with
//! `pagination`.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::call_item::CallItem;
use super::call_params::ListParams;
use super::problem::ApiError;
use super::{call_csv, cursor_token, ApiState};
use crate::db::call_list::{links_of, Start};

/// Page mode's position.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    /// Matching calls.
    pub total: i64,
    /// This page (1-based).
    pub page: u64,
    pub limit: u32,
    /// Pages in all.
    pub pages: u64,
}

/// A page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallPage {
    pub data: Vec<CallItem>,
    /// Pass as `cursor` (with the same sort and filters) for the next page;
    /// null on the last page and in page mode.
    pub next_cursor: Option<String>,
    /// Matching calls; only with include_total=true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// Only in page mode (`page=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// Does the client ask for CSV (`Accept: text/csv`)?
pub fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// The page `p` asks for, seen as `caller` may: JSON, or the whole CSV.
pub async fn answer(
    state: &ApiState,
    caller: &Caller,
    mut p: ListParams,
    csv: bool,
) -> Result<Response, ApiError> {
    p.query.own_agent = caller.own_agent().map(str::to_owned);
    let db = state.db().await?;
    if csv {
        return call_csv::response(db, p.query).await;
    }
    // One more than asked says whether there is a next page.
    let mut calls = p.query.fetch(&db, &p.start, p.limit + 1).await?;
    let more = calls.len() > p.limit as usize;
    calls.truncate(p.limit as usize);
    let next_cursor = match (&p.start, more, calls.last()) {
        (Start::After(_), true, Some(last)) => {
            Some(cursor_token::encode(state, &p.query.cursor_after(last)))
        }
        _ => None,
    };
    let total = if p.include_total || p.page.is_some() {
        Some(p.query.count(&db).await?)
    } else {
        None
    };
    let ids: Vec<i64> = calls.iter().map(|c| c.id).collect();
    let links = links_of(&db, &ids, false).await?;
    let pagination = p.page.map(|page| {
        let total = total.unwrap_or(0);
        let t = u64::try_from(total).unwrap_or(0);
        Pagination {
            total,
            page,
            limit: p.limit,
            pages: t.div_ceil(u64::from(p.limit)),
        }
    });
    Ok(Json(CallPage {
        data: CallItem::page(calls, links),
        next_cursor,
        total: total.filter(|_| p.include_total),
        pagination,
    })
    .into_response())
}
