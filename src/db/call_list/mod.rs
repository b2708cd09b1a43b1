//! The call log: calls narrowed by any of the API's filters, in one of its
//! sorts, a page at a time by keyset cursor or by offset
//! (`GET /v1/calls`, a record's timeline, the CSV export, `pbxbridge calls
//! list`).

mod cursor;
mod filter;
mod row;

use sqlx::Row;

pub use cursor::{Cursor, CursorError, KeyValue, Sort, SortKey};
pub use filter::{contains_pattern, RECORDED};
pub use row::{links_of, CallRecord, RtpLeg};

use super::links::{call_row, CALL_ROW_COLUMNS};
use super::{CallRow, Db, DbError, DbTime, RecordCall};
use crate::call::{Direction, Outcome};
use crate::time::Timestamp;
use row::call_record;

/// Which calls, in which order. Empty lists and `None` do not narrow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallQuery {
    /// One of these directions.
    pub directions: Vec<Direction>,
    /// One of these outcomes.
    pub outcomes: Vec<Outcome>,
    /// `started_at >= from`.
    pub from: Option<Timestamp>,
    /// `started_at < to`.
    pub to: Option<Timestamp>,
    /// Talk time at least this many seconds.
    pub min_duration: Option<f64>,
    /// Talk time at most this many seconds.
    pub max_duration: Option<f64>,
    /// The worse direction's MOS-CQ at least this (calls without one are left out).
    pub min_mos: Option<f64>,
    /// The worse direction's packet loss at most this many percent (calls
    /// without a measure are left out).
    pub max_loss: Option<f64>,
    /// True: a recording exists or is on its way (`RECORDED`); false: not.
    pub recorded: Option<bool>,
    /// True: the call has at least one note.
    pub has_note: Option<bool>,
    /// The agent's extension (`agent`) or CRM id (`agent_id`).
    pub agent: Option<String>,
    /// Any party's number (from, to or other), as stored: E.164 or an extension.
    pub number: Option<String>,
    /// Calls linked (not removed) to this record: (type, id).
    pub record: Option<(String, String)>,
    pub sensor: Option<String>,
    /// The SIP Call-ID.
    pub call_id: Option<String>,
    /// Text found (case-insensitively) in a number, the agent, the agent's
    /// name or a linked record's display name.
    pub q: Option<String>,
    /// `updated_at >= updated_since`.
    pub updated_since: Option<Timestamp>,
    /// A see-own key: only calls with this agent id (`""`: none at all).
    pub own_agent: Option<String>,
    /// Only the call with this row id.
    pub row: Option<i64>,
    pub sort: Sort,
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// After this row (keyset), or at the beginning.
    After(Option<Cursor>),
    /// Skipping this many rows (page mode, for simple UIs).
    Offset(u64),
}

/// A value bound to a `?`.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Text(String),
    Time(DbTime),
    Float(f64),
    Int(i64),
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for b in $binds {
            query = match b {
                Bind::Text(s) => query.bind(s.as_str()),
                Bind::Time(t) => query.bind(*t),
                Bind::Float(f) => query.bind(*f),
                Bind::Int(i) => query.bind(*i),
            };
        }
        query
    }};
}

fn query_err(what: &'static str) -> impl Fn(sqlx::Error) -> DbError + Copy {
    move |source| DbError::Query { what, source }
}

impl CallQuery {
    /// The position just after `call` in this query's sort.
    pub fn cursor_after(&self, call: &CallRecord) -> Cursor {
        let value = match self.sort.key {
            SortKey::StartedAt => KeyValue::Time(call.started_at.micros()),
            SortKey::Duration => KeyValue::Float(call.duration),
            SortKey::Direction => KeyValue::Text(call.direction.as_str().to_owned()),
            SortKey::Agent => KeyValue::Text(call.agent.clone().unwrap_or_default()),
        };
        Cursor {
            sort: self.sort,
            value,
            id: call.id,
        }
    }

    /// At most `limit` calls from `start`, in the query's sort.
    pub async fn fetch(
        &self,
        db: &Db,
        start: &Start,
        limit: u32,
    ) -> Result<Vec<CallRecord>, DbError> {
        let mut w = filter::conditions(self);
        let mut offset = None;
        match start {
            Start::After(Some(c)) => {
                let (cond, binds) = c.after(db.backend());
                w.cond.push(cond);
                w.binds.extend(binds);
            }
            Start::After(None) => {}
            Start::Offset(n) => offset = Some(i64::try_from(*n).unwrap_or(i64::MAX)),
        }
        let sql = db.sql(&format!(
            "SELECT {} FROM {{calls}} c{}{} LIMIT ?{}",
            row::COLUMNS,
            w.clause(),
            self.sort.order_by(),
            if offset.is_some() { " OFFSET ?" } else { "" }
        ));
        let q = query_err("listing calls");
        super::with_pool!(db.pool(), p => {
            let mut query = bind_all!(sqlx::query(&sql), &w.binds).bind(i64::from(limit));
            if let Some(n) = offset {
                query = query.bind(n);
            }
            let rows = query.fetch_all(p).await.map_err(q)?;
            rows.iter()
                .map(|r| -> Result<CallRecord, sqlx::Error> { Ok(call_record!(r)) })
                .collect::<Result<Vec<_>, _>>()
                .map_err(q)
        })
    }

    /// How many calls the filters let through (sort and cursor aside).
    pub async fn count(&self, db: &Db) -> Result<i64, DbError> {
        let w = filter::conditions(self);
        let sql = db.sql(&format!("SELECT COUNT(*) FROM {{calls}} c{}", w.clause()));
        let q = query_err("counting calls");
        super::with_pool!(db.pool(), p => {
            let row = bind_all!(sqlx::query(&sql), &w.binds)
                .fetch_one(p)
                .await
                .map_err(q)?;
            row.try_get::<i64, _>(0).map_err(q)
        })
    }
}

/// `pbxbridge calls list`'s filter: the newest calls, narrowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// Any party's number (from, to or other), as stored: E.164 or an extension.
    pub number: Option<String>,
    /// `started_at >= since`.
    pub since: Option<Timestamp>,
    /// `started_at < until`.
    pub until: Option<Timestamp>,
    /// One of these outcomes.
    pub outcomes: Vec<Outcome>,
    /// One of these directions.
    pub directions: Vec<Direction>,
    /// The agent's extension (`agent`) or CRM id (`agent_id`).
    pub agent: Option<String>,
    /// Calls linked (not removed) to this record: (type, id).
    pub record: Option<(String, String)>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl CallFilter {
    fn query(&self) -> CallQuery {
        CallQuery {
            number: self.number.clone(),
            from: self.since,
            to: self.until,
            outcomes: self.outcomes.clone(),
            directions: self.directions.clone(),
            agent: self.agent.clone(),
            record: self.record.clone(),
            ..CallQuery::default()
        }
    }
}

/// The short rows of `ids`, in that order.
async fn call_rows(db: &Db, ids: &[i64]) -> Result<Vec<CallRow>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = db.sql(&format!(
        "SELECT {CALL_ROW_COLUMNS} FROM {{calls}} c WHERE c.id IN ({})",
        vec!["?"; ids.len()].join(", ")
    ));
    let q = query_err("listing calls");
    let mut rows: Vec<CallRow> = super::with_pool!(db.pool(), p => {
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(p).await.map_err(q)?;
        rows.iter()
            .map(|r| -> Result<CallRow, sqlx::Error> { Ok(call_row!(r)) })
            .collect::<Result<Vec<_>, _>>()
            .map_err(q)?
    });
    rows.sort_by_key(|c| ids.iter().position(|i| *i == c.id));
    Ok(rows)
}

/// The calls `filter` lets through (its `record` aside), newest first.
pub async fn list_calls(db: &Db, filter: &CallFilter) -> Result<Vec<CallRow>, DbError> {
    let mut query = filter.query();
    query.record = None;
    let found = query.fetch(db, &Start::After(None), filter.limit).await?;
    let ids: Vec<i64> = found.iter().map(|c| c.id).collect();
    call_rows(db, &ids).await
}

/// A record's calls (linked, not removed) that `filter` lets through, newest
/// first, with how each came to be linked.
pub async fn record_calls(
    db: &Db,
    record_type: &str,
    record_id: &str,
    filter: &CallFilter,
) -> Result<Vec<RecordCall>, DbError> {
    let mut query = filter.query();
    query.record = Some((record_type.to_owned(), record_id.to_owned()));
    let found = query.fetch(db, &Start::After(None), filter.limit).await?;
    let ids: Vec<i64> = found.iter().map(|c| c.id).collect();
    let mut links = links_of(db, &ids, false).await?;
    let calls = call_rows(db, &ids).await?;
    Ok(calls
        .into_iter()
        .map(|call| {
            let link = links.remove(&call.id).and_then(|ls| {
                ls.into_iter()
                    .find(|l| l.record_type == record_type && l.record_id == record_id)
            });
            let (source, field, via_type, via_id) = match link {
                Some(l) => (l.source, l.field, l.via_type, l.via_id),
                None => (String::new(), None, None, None),
            };
            RecordCall {
                call,
                source,
                field,
                via_type,
                via_id,
            }
        })
        .collect())
}
