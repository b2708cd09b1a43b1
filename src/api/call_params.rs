//! The query string of the call-log routes (`GET /v1/calls`, its CSV, a
//! record's timeline), read by hand: `direction=a&direction=b` repeats, and
//! every unknown parameter or bad value is a 400 naming the parameter.

use utoipa::IntoParams;

use super::call_item::{DirectionName, OutcomeName};
use super::cursor_token;
use super::problem::ApiError;
use super::ApiState;
use crate::call::{Direction, Outcome};
use crate::db::call_list::{CallQuery, Sort, Start};
use crate::time::Timestamp;

pub const DEFAULT_LIMIT: u32 = 25;
pub const MAX_LIMIT: u32 = 100;
/// Pages past this are refused: offsets that deep are what cursors are for.
pub const MAX_PAGE: u64 = 100_000;
/// Parameters in one query string, at most.
const MAX_PARAMS: usize = 64;
/// Longest `q`, `agent`, `number`, `sensor`, record id.
const MAX_TEXT: usize = 191;

/// Every query parameter of the call-log routes (for the OpenAPI document;
/// the handler reads the raw query string with `ListParams::parse`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by utoipa only
pub struct CallListQuery {
    /// Only these directions; repeat the parameter or separate with commas.
    #[param(value_type = Option<Vec<DirectionName>>, style = Form, explode)]
    direction: Option<Vec<String>>,
    /// Only these outcomes; repeat the parameter or separate with commas.
    #[param(value_type = Option<Vec<OutcomeName>>, style = Form, explode)]
    outcome: Option<Vec<String>>,
    /// Started at or after: RFC 3339, or a date (its first moment, UTC).
    from: Option<String>,
    /// Started before: RFC 3339, or a date (up to the end of that day, UTC).
    to: Option<String>,
    /// Talk time at least this many seconds.
    #[param(minimum = 0)]
    min_duration: Option<f64>,
    /// Talk time at most this many seconds.
    #[param(minimum = 0)]
    max_duration: Option<f64>,
    /// The worse direction's E-model MOS-CQ (`quality.mos`) at least this,
    /// 1 to 5; calls without RTP after the answer are left out.
    #[param(minimum = 1, maximum = 5)]
    min_mos: Option<f64>,
    /// The worse direction's packet loss (`quality.loss_pct`) at most this
    /// many percent, 0 to 100; calls without RTP after the answer are left out.
    #[param(minimum = 0, maximum = 100)]
    max_loss: Option<f64>,
    /// true: a recording exists or is on its way (status stored or
    /// pending); false: none of those.
    recorded: Option<bool>,
    /// true: the call has at least one note; false: none.
    has_note: Option<bool>,
    /// The agent's extension or CRM id.
    #[param(max_length = 191)]
    agent: Option<String>,
    /// Any party's number, normalised first (`(415) 555-1212` finds
    /// `+14155551212`), or an extension.
    #[param(max_length = 64)]
    number: Option<String>,
    /// `TYPE:ID`: calls linked to that CRM record (a configured type).
    record: Option<String>,
    /// The sensor (pbx.sensor) that saw the call.
    #[param(max_length = 64)]
    sensor: Option<String>,
    /// The SIP Call-ID.
    #[param(max_length = 1024)]
    call_id: Option<String>,
    /// Text in a number, the agent, the agent's name, or a linked record's
    /// display name (case-insensitive; % and _ are taken literally).
    #[param(max_length = 191)]
    q: Option<String>,
    /// Only calls changed at or after this time (RFC 3339 or a date), for
    /// incremental sync.
    updated_since: Option<String>,
    /// started_at, duration, direction or agent; `-` first for descending.
    /// Ties are broken by id in the same direction. Default -started_at.
    #[param(pattern = "^-?(started_at|duration|direction|agent)$")]
    sort: Option<String>,
    /// Calls per page (JSON only; the CSV has them all).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page (made for the same sort).
    cursor: Option<String>,
    /// Page number for simple UIs (1-based; not with cursor): the answer
    /// then has `pagination`.
    #[param(minimum = 1, maximum = 100000)]
    page: Option<u64>,
    /// true: the answer has `total`, the number of matching calls.
    include_total: Option<bool>,
}

/// A call-log request, checked.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub query: CallQuery,
    pub limit: u32,
    pub start: Start,
    /// `page` was given (1-based).
    pub page: Option<u64>,
    pub include_total: bool,
}

/// Where the list is read from: the timeline takes its record from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Calls,
    Timeline,
}

/// The same single-valued parameter given twice is refused.
fn once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(ApiError::bad(name, "given more than once"));
    }
    *slot = Some(value);
    Ok(())
}

fn text(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > max {
        return Err(ApiError::bad(
            name,
            format!("must be 1 to {max} bytes long"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad(name, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad(name, "must be true or false")),
    }
}

/// A number within `lo..=hi`.
fn number_in(name: &str, value: &str, lo: f64, hi: f64) -> Result<f64, ApiError> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
        _ => Err(ApiError::bad(
            name,
            format!("must be a number from {lo} to {hi}"),
        )),
    }
}

fn seconds(name: &str, value: &str) -> Result<f64, ApiError> {
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(ApiError::bad(
            name,
            "must be a number of seconds, 0 or more",
        )),
    }
}

/// RFC 3339, or a date: its first moment (`days_after` 0) or the first
/// moment of the next day (1), UTC.
fn time(name: &str, value: &str, days_after: u64) -> Result<Timestamp, ApiError> {
    if let Some(t) = Timestamp::parse_rfc3339(value) {
        return Ok(t);
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.checked_add_days(chrono::Days::new(days_after)))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Timestamp::from_micros(t.and_utc().timestamp_micros()))
        .ok_or_else(|| {
            ApiError::bad(
                name,
                "give an RFC 3339 time (2026-11-21T10:00:00Z) or a date (2026-11-21)",
            )
        })
}

/// Each comma-separated name of `value`, once, as `T`.
fn names<T: Copy + PartialEq>(
    name: &str,
    value: &str,
    all: &[T],
    as_str: fn(T) -> &'static str,
    into: &mut Vec<T>,
) -> Result<(), ApiError> {
    for part in value.split(',') {
        let v = all
            .iter()
            .copied()
            .find(|v| as_str(*v) == part)
            .ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
                ApiError::bad(name, format!("{part:?} is not one of {}", known.join(", ")))
            })?;
        if !into.contains(&v) {
            into.push(v);
        }
    }
    Ok(())
}

/// A record type the config knows, and a record id that can be one.
pub fn record_ref(
    state: &ApiState,
    param_type: &str,
    param_id: &str,
    kind: &str,
    id: &str,
) -> Result<(String, String), ApiError> {
    let records = &state.config().crm.records;
    if !records.iter().any(|r| r.kind == kind) {
        let known: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        return Err(ApiError::bad(
            param_type,
            format!(
                "{kind:?} is not a record type in [[crm.records]] (known: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let id = text(param_id, id, MAX_TEXT)?;
    if id.contains(['/', '\\']) || id.split('.').all(str::is_empty) || id.contains("..") {
        return Err(ApiError::bad(param_id, "is not a record id"));
    }
    Ok((kind.to_owned(), id))
}

impl ListParams {
    /// Reads `raw` (the query string, undecoded). The see-own restriction
    /// is the caller's to add.
    pub fn parse(state: &ApiState, raw: Option<&str>, route: Route) -> Result<Self, ApiError> {
        let mut q = CallQuery::default();
        let mut limit = None;
        let mut cursor = None;
        let mut page = None;
        let mut include_total = None;
        let mut sort = None;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .take(MAX_PARAMS + 1)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.len() > MAX_PARAMS {
            return Err(ApiError::bad(
                "query",
                format!("at most {MAX_PARAMS} parameters"),
            ));
        }
        for (name, value) in &pairs {
            let (n, v) = (name.as_str(), value.as_str());
            match n {
                "direction" => names(n, v, &Direction::ALL, Direction::as_str, &mut q.directions)?,
                "outcome" => names(n, v, &Outcome::ALL, Outcome::as_str, &mut q.outcomes)?,
                "from" => once(&mut q.from, n, time(n, v, 0)?)?,
                "to" => once(&mut q.to, n, time(n, v, 1)?)?,
                "updated_since" => once(&mut q.updated_since, n, time(n, v, 0)?)?,
                "min_duration" => once(&mut q.min_duration, n, seconds(n, v)?)?,
                "max_duration" => once(&mut q.max_duration, n, seconds(n, v)?)?,
                "min_mos" => once(&mut q.min_mos, n, number_in(n, v, 1.0, 5.0)?)?,
                "max_loss" => once(&mut q.max_loss, n, number_in(n, v, 0.0, 100.0)?)?,
                "recorded" => once(&mut q.recorded, n, boolean(n, v)?)?,
                "has_note" => once(&mut q.has_note, n, boolean(n, v)?)?,
                "include_total" => once(&mut include_total, n, boolean(n, v)?)?,
                "agent" => once(&mut q.agent, n, text(n, v, MAX_TEXT)?)?,
                "sensor" => once(&mut q.sensor, n, text(n, v, 64)?)?,
                "call_id" => once(&mut q.call_id, n, text(n, v, 1024)?)?,
                "q" => once(&mut q.q, n, text(n, v, MAX_TEXT)?)?,
                "number" => {
                    let raw = text(n, v, 64)?;
                    let number = state
                        .numbers()
                        .normalize(&raw)
                        .ok_or_else(|| ApiError::bad(n, "is not a phone number or an extension"))?;
                    once(&mut q.number, n, number)?
                }
                "record" if route == Route::Calls => {
                    let (kind, id) = v
                        .split_once(':')
                        .ok_or_else(|| ApiError::bad(n, "must be TYPE:ID, e.g. contact:42"))?;
                    once(&mut q.record, n, record_ref(state, n, n, kind, id)?)?
                }
                "sort" => {
                    let s = Sort::parse(v).ok_or_else(|| {
                        ApiError::bad(
                            n,
                            "must be started_at, duration, direction or agent, with - first for descending",
                        )
                    })?;
                    once(&mut sort, n, s)?
                }
                "limit" => {
                    let l = v
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            ApiError::bad(
                                n,
                                format!("must be a whole number from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                    once(&mut limit, n, l)?
                }
                "page" => {
                    let p = v
                        .parse::<u64>()
                        .ok()
                        .filter(|p| (1..=MAX_PAGE).contains(p))
                        .ok_or_else(|| {
                            ApiError::bad(n, format!("must be a whole number from 1 to {MAX_PAGE}"))
                        })?;
                    once(&mut page, n, p)?
                }
                "cursor" => once(&mut cursor, n, v.to_owned())?,
                _ => {
                    let shown: String = n.chars().take(64).collect();
                    return Err(ApiError::bad(shown, "is not a parameter of this route"));
                }
            }
        }
        q.sort = sort.unwrap_or_default();
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        let start = match (&cursor, page) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad(
                    "page",
                    "give either page or cursor, not both",
                ))
            }
            (None, Some(p)) => Start::Offset((p - 1) * u64::from(limit)),
            (Some(c), None) => Start::After(Some(cursor_token::decode(state, c, q.sort)?)),
            (None, None) => Start::After(None),
        };
        Ok(ListParams {
            query: q,
            limit,
            start,
            page,
            include_total: include_total.unwrap_or(false),
        })
    }
}
