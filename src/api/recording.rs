//! `/v1/calls/{id}/recording`: play or download a call's recording with
//! Range requests (from the local folder, the share or S3), make a
//! short-lived signed link for an `<audio src>`, and upload a recording for
//! a call pbxbridge did not capture. Every GET is written to the
//! `{recording_access}` audit.

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{link_signer, Caller};
use super::call_ref::{self, CallRef};
use super::problem::{ApiError, Problem};
use super::roles::Need;
use super::ApiState;
use crate::db::call_lookup::CallSelector;
use crate::db::recording_lookup::{recording_by_row, RecordingRef};
use crate::time::Timestamp;

pub(super) mod range;
pub(super) mod remove;
mod respond;
mod signed;
mod source;
mod upload;

pub use signed::Access;
// For `DELETE /v1/calls/{id}` (call_write.rs), which removes the recording too.
#[allow(unused_imports)]
pub use remove::delete_recording_object;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(get_recording))
        .routes(routes!(recording_link))
}

/// The upload, apart: it runs as long as the file takes to arrive (the
/// request timeout would cut a large upload on a slow link), and its cap is
/// `[api] max_upload_mib`, counted while the file is streamed to disk (this
/// function does not see the config), not the router-wide JSON cap.
pub fn upload_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(upload::upload_recording))
        .layer(DefaultBodyLimit::disable())
}

/// The caller of a route that also takes signed links: a bearer key when
/// the request has `Authorization`, else nobody (the link must then carry
/// a valid signature).
pub enum Who {
    Key(Caller),
    Anonymous,
}

impl FromRequestParts<ApiState> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            Ok(Who::Key(Caller::from_request_parts(parts, state).await?))
        } else {
            Ok(Who::Anonymous)
        }
    }
}

/// The query of `GET /v1/calls/{id}/recording`.
/// (Documented in `get_recording`'s params.)
#[derive(Debug, Default, Deserialize)]
pub struct RecordingQuery {
    pub download: Option<String>,
    pub access: Option<String>,
    pub expires: Option<String>,
    pub key: Option<String>,
    pub sig: Option<String>,
}

fn flag(param: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("0" | "false" | "") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(ApiError::bad(param, "must be 1, true, 0 or false")),
    }
}

fn need(access: Access) -> Need {
    match access {
        Access::Listen => Need::Listen,
        Access::Download => Need::Download,
    }
}

fn bad_link(reason: impl Into<String>) -> ApiError {
    ApiError::BadLink {
        reason: reason.into(),
    }
}

/// The caller a signed link stands for, checked: the signature binds the
/// call, access and expiry; the key that made it must still exist, be
/// neither revoked nor expired, and keep the permission.
async fn link_caller(
    state: &ApiState,
    id: &str,
    q: &RecordingQuery,
    sig: &str,
) -> Result<(Caller, Access), ApiError> {
    let CallSelector::Row(row) = call_ref::selector(id)? else {
        return Err(bad_link("a signed link names the call by its row id"));
    };
    let access = q
        .access
        .as_deref()
        .and_then(Access::parse)
        .ok_or_else(|| bad_link("access must be listen or download"))?;
    let expires: i64 = q
        .expires
        .as_deref()
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| bad_link("expires must be Unix seconds"))?;
    let key_id: i64 = q
        .key
        .as_deref()
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| bad_link("key must be the id of the key that made the link"))?;
    let grant = signed::Grant {
        row,
        access,
        expires,
        key_id,
    };
    if !signed::verify(state.link_key(), &grant, sig) {
        return Err(bad_link(
            "the signature does not match this call, access, expiry and key",
        ));
    }
    let now = Timestamp::now();
    if now.micros() / 1_000_000 >= expires {
        return Err(bad_link(format!(
            "it expired at {}",
            Timestamp::from_secs(expires).to_rfc3339()
        )));
    }
    Ok((link_signer(state, key_id).await?, access))
}

/// The call and its recording row, for a caller that may see the call.
async fn call_and_recording(
    state: &ApiState,
    caller: &Caller,
    id: &str,
) -> Result<(CallRef, RecordingRef), ApiError> {
    let call = call_ref::resolve(state, caller, id).await?;
    let db = state.db().await?;
    let rec = recording_by_row(&db, call.row)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    Ok((call, rec))
}

/// Plays or downloads the call's recording. Takes a bearer key or a signed
/// link (`/recording/link`). `Range` (one range; several get the whole
/// file), `If-Range` with the ETag or Last-Modified. Every GET is audited.
#[utoipa::path(method(get, head), path = "/v1/calls/{id}/recording", tag = "recordings",
    params(
        ("id" = String, Path, description = "The call's row id, or sensor/call_id (slash as %2F)"),
        ("download" = Option<String>, Query, description = "`1` or `true`: an attachment with a file name (needs the download permission); `0` or `false`: inline (the default)"),
        ("access" = Option<String>, Query, description = "Signed links: `listen` or `download` (set by /recording/link)"),
        ("expires" = Option<String>, Query, description = "Signed links: expiry, Unix seconds"),
        ("key" = Option<String>, Query, description = "Signed links: the id of the key that made the link"),
        ("sig" = Option<String>, Query, description = "Signed links: hex HMAC-SHA256"),
        ("Range" = Option<String>, Header, description = "bytes=a-b, bytes=a- or bytes=-n"),
        ("If-Range" = Option<String>, Header, description = "The ETag (or Last-Modified) the client holds"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The whole recording",
            content(("audio/wav"), ("audio/mpeg"), ("audio/ogg"), ("audio/mp4"), ("audio/webm")),
            headers(
                ("Accept-Ranges" = String), ("Content-Length" = u64), ("ETag" = String),
                ("Last-Modified" = String), ("Content-Disposition" = String),
                ("Cache-Control" = String),
            )),
        (status = 206, description = "The range asked for",
            content(("audio/wav"), ("audio/mpeg"), ("audio/ogg"), ("audio/mp4"), ("audio/webm")),
            headers(
                ("Content-Range" = String, description = "bytes a-b/size"),
                ("Accept-Ranges" = String), ("Content-Length" = u64), ("ETag" = String),
                ("Content-Disposition" = String),
            )),
        (status = 302, description = "`[api] s3_redirect`: a presigned S3 URL in Location",
            headers(("Location" = String))),
        (status = 401, description = "No key, a bad key, or a bad, expired or revoked link",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call, or it has no recording (the detail says why)",
            body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range is past the end; Content-Range: bytes */size",
            body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_recording(
    who: Who,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    method: Method,
    query: Result<Query<RecordingQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let download = flag("download", q.download.as_deref())?;
    let (caller, access) = match (who, q.sig.as_deref()) {
        (Who::Key(c), _) => (
            c,
            if download {
                Access::Download
            } else {
                Access::Listen
            },
        ),
        (Who::Anonymous, Some(sig)) => {
            let (c, granted) = link_caller(&state, &id, &q, sig).await?;
            if download && granted == Access::Listen {
                return Err(ApiError::LinkDenied {
                    reason: "it is a listen link; ask /recording/link for a download link".into(),
                });
            }
            (c, granted)
        }
        (Who::Anonymous, None) => return Err(ApiError::NoKey),
    };
    caller.require(need(access))?;
    let (call, rec) = call_and_recording(&state, &caller, &id).await?;
    let loc = source::locate(&state, &rec).await?;
    let req = respond::Request {
        caller: &caller,
        call: &call,
        rec: &rec,
        access,
        head: method == Method::HEAD,
        headers: &headers,
    };
    respond::respond(&state, &req, &loc).await
}

/// `POST /v1/calls/{id}/recording/link`'s body; both fields are optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// `listen` (plays inline; the default) or `download` (an attachment;
    /// needs the download permission).
    pub access: Option<String>,
    /// Seconds the link works: 1 to `[api] link_max_secs`; default 300.
    pub expires_in: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingLink {
    /// Path and query of the signed link, relative to the API's base URL;
    /// works without an `Authorization` header until `expires_at`.
    pub url: String,
    pub access: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

const DEFAULT_LINK_SECS: u64 = 300;

/// Makes a short-lived signed link to the recording, for an `<audio src>`.
/// The link stops working when the key that made it is revoked.
#[utoipa::path(post, path = "/v1/calls/{id}/recording/link", tag = "recordings",
    params(("id" = String, Path, description = "The call's row id, or sensor/call_id (slash as %2F)")),
    request_body(content = Option<LinkRequest>, content_type = "application/json"),
    responses(
        (status = 200, body = RecordingLink),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call, or it has no recording",
            body = Problem, content_type = "application/problem+json"),
    ))]
async fn recording_link(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<RecordingLink>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                detail: "the request body is larger than [api] max_body_kib allows".into(),
            }
        } else {
            ApiError::bad("body", e.body_text())
        }
    })?;
    let asked: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad("body", e.to_string()))?
    };
    let access = match asked.access.as_deref() {
        None => Access::Listen,
        Some(a) => {
            Access::parse(a).ok_or_else(|| ApiError::bad("access", "must be listen or download"))?
        }
    };
    let max = state.api_config().link_max_secs.max(1);
    let secs = asked.expires_in.unwrap_or(DEFAULT_LINK_SECS.min(max));
    if secs == 0 || secs > max {
        return Err(ApiError::bad(
            "expires_in",
            format!("must be 1 to {max} seconds ([api] link_max_secs)"),
        ));
    }
    caller.require(need(access))?;
    let (call, rec) = call_and_recording(&state, &caller, &id).await?;
    source::check_status(&rec)?;
    let expires_at = Timestamp::now().saturating_add_secs(secs);
    let grant = signed::Grant {
        row: call.row,
        access,
        expires: expires_at.micros() / 1_000_000,
        key_id: caller.key_id,
    };
    let url = signed::url(state.link_key(), &grant);
    Ok(Json(RecordingLink {
        url,
        access: access.as_str().to_owned(),
        expires_at: Timestamp::from_secs(grant.expires),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_method_is_in_the_openapi_document() {
        let doc = serde_json::to_value(crate::api::openapi_document()).unwrap();
        let item = &doc["paths"]["/v1/calls/{id}/recording"];
        for m in ["get", "head", "post"] {
            assert!(item[m].is_object(), "{m} missing: {item}");
        }
        assert!(item["get"]["responses"]["206"].is_object());
        assert!(item["post"]["responses"]["415"].is_object());
        assert!(doc["paths"]["/v1/calls/{id}/recording/link"]["post"].is_object());
    }
}
