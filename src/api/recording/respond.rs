//! The answer to a GET or HEAD of a recording: status and headers from the
//! Range plan, the audit row, then the streamed body.
//!
//! The audit row is written when the response starts, before any byte is
//! sent, and `bytes` is what the response promised (its Content-Length): a
//! client that hangs up early read less. Writing it first means an access
//! is never served unaudited: when the row cannot be written the request
//! fails instead.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::range::{self, Plan};
use super::source::Located;
use super::Access;
use crate::api::auth::Caller;
use crate::api::problem::{ApiError, Problem};
use crate::api::{ApiState, CallRef};
use crate::db::recording_access;
use crate::db::recording_lookup::RecordingRef;
use crate::time::Timestamp;

/// How long a presigned S3 URL of a redirect works: long enough for a
/// player to fetch its ranges, short enough not to be a second link.
const REDIRECT_SECS: u64 = 300;

pub struct Request<'a> {
    pub caller: &'a Caller,
    pub call: &'a CallRef,
    pub rec: &'a RecordingRef,
    pub access: Access,
    pub head: bool,
    pub headers: &'a HeaderMap,
}

impl Request<'_> {
    async fn audit(
        &self,
        state: &ApiState,
        status: StatusCode,
        range: Option<(u64, u64)>,
        bytes: u64,
    ) -> Result<(), ApiError> {
        if self.head {
            return Ok(());
        }
        let row = recording_access::Access {
            key_id: self.caller.key_id,
            call_row: self.call.row,
            sensor: self.call.sensor.clone(),
            call_id: self.call.call_id.clone(),
            access: self.access.as_str(),
            at: Timestamp::now(),
            range,
            bytes,
            http_status: status.as_u16(),
        };
        state.db().await?.record_access(&row).await?;
        Ok(())
    }
}

/// Only letters, digits, `.`, `_` and `-`: the name is safe in a header and
/// on every file system.
fn safe(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `<sensor>-<call>-<started>.<ext>`, e.g. `pbx1-a1b2_host-20240102T030405Z.wav`.
pub fn file_name(rec: &RecordingRef, ext: &str) -> String {
    let started = chrono::DateTime::from_timestamp_micros(rec.started_at.micros())
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default();
    format!(
        "{}-{}-{}.{ext}",
        safe(&rec.sensor, 32),
        safe(&rec.call_id, 64),
        started
    )
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn respond(
    state: &ApiState,
    req: &Request<'_>,
    loc: &Located,
) -> Result<Response, ApiError> {
    if state.api_config().s3_redirect && loc.is_s3() {
        return redirect(state, req, loc).await;
    }
    let plan = range::plan(req.headers, loc.size, &loc.etag, loc.modified);
    let mut resp = match &plan {
        Plan::Unsatisfiable => {
            req.audit(state, StatusCode::RANGE_NOT_SATISFIABLE, None, 0)
                .await?;
            let mut r = (
                StatusCode::RANGE_NOT_SATISFIABLE,
                axum::Json(Problem {
                    kind: "https://pbxbridge.dev/problems/range-not-satisfiable".into(),
                    title: "Range Not Satisfiable".into(),
                    status: 416,
                    detail: format!(
                        "the recording has {} bytes; the Range asks for none of them",
                        loc.size
                    ),
                    param: Some("Range".into()),
                }),
            )
                .into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            h.insert(
                header::CONTENT_RANGE,
                value(&format!("bytes */{}", loc.size)),
            );
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(r);
        }
        Plan::Full => {
            let len = loc.size;
            req.audit(state, StatusCode::OK, None, len).await?;
            let body = if req.head || len == 0 {
                Body::empty()
            } else {
                super::source::open(loc, 0..=len - 1).await?
            };
            let mut r = Response::new(body);
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, value(&len.to_string()));
            r
        }
        Plan::Partial(range) => {
            let (start, end) = (*range.start(), *range.end());
            let len = end - start + 1;
            req.audit(state, StatusCode::PARTIAL_CONTENT, Some((start, end)), len)
                .await?;
            let body = if req.head {
                Body::empty()
            } else {
                super::source::open(loc, range.clone()).await?
            };
            let mut r = Response::new(body);
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = r.headers_mut();
            h.insert(header::CONTENT_LENGTH, value(&len.to_string()));
            h.insert(
                header::CONTENT_RANGE,
                value(&format!("bytes {start}-{end}/{}", loc.size)),
            );
            r
        }
    };
    let name = file_name(req.rec, loc.format.ext);
    let disposition = match req.access {
        Access::Download => format!("attachment; filename=\"{name}\""),
        Access::Listen => format!("inline; filename=\"{name}\""),
    };
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(loc.format.content_type),
    );
    h.insert(header::ETAG, value(&loc.etag));
    if let Some(m) = loc.modified {
        h.insert(header::LAST_MODIFIED, value(&range::http_date(m)));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    h.insert(header::CONTENT_DISPOSITION, value(&disposition));
    Ok(resp)
}

/// 302 to a presigned S3 URL (`[api] s3_redirect`): the browser fetches the
/// audio, and its ranges, from S3 itself.
async fn redirect(
    state: &ApiState,
    req: &Request<'_>,
    loc: &Located,
) -> Result<Response, ApiError> {
    let super::source::Where::Object { storage, key } = &loc.place else {
        return Err(ApiError::Internal);
    };
    let url = storage
        .presigned_get(key, std::time::Duration::from_secs(REDIRECT_SECS))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot presign a recording");
            ApiError::Unavailable
        })?;
    req.audit(state, StatusCode::FOUND, None, 0).await?;
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FOUND;
    let h = r.headers_mut();
    h.insert(header::LOCATION, value(&url));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RecordingStatus;

    #[test]
    fn file_names_are_plain_ascii() {
        let rec = RecordingRef {
            id: 1,
            call_id: "a\"b/../c;d@host".into(),
            started_at: Timestamp::from_secs(1_700_000_000),
            status: RecordingStatus::Stored,
            backend: None,
            key: None,
            path: None,
            sensor: "pbx 1".into(),
            bytes: None,
            sha256: None,
            stored_at: None,
        };
        assert_eq!(
            file_name(&rec, "wav"),
            "pbx_1-a_b_.._c_d_host-20231114T221320Z.wav"
        );
    }
}
