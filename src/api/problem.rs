//! Errors as RFC 9457 problem details (`application/problem+json`): what is
//! wrong and, for a bad request, which parameter.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The parameter (query, path, header or body field) that is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing API key: send `Authorization: Bearer <key>`")]
    NoKey,
    #[error("the API key is not valid")]
    BadKey,
    #[error("the API key was revoked")]
    Revoked,
    #[error("the API key expired at {at}")]
    Expired { at: String },
    #[error("this key's role ({role}) lacks the permission \"{needs}\"")]
    Forbidden { role: String, needs: &'static str },
    #[error("the signed link is not valid: {reason}")]
    BadLink { reason: String },
    #[error("the signed link does not allow this: {reason}")]
    LinkDenied { reason: String },
    #[error("{param}: {reason}")]
    BadParam { param: String, reason: String },
    #[error("this route does not take the {method} method")]
    MethodNotAllowed { method: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{detail}")]
    Conflict { detail: String },
    #[error("{detail}")]
    TooLarge { detail: String },
    #[error("{detail}")]
    Unsupported { detail: String },
    #[error("the database is not reachable; try again shortly")]
    Unavailable,
    #[error("the request failed on the server (logged)")]
    Internal,
}

impl ApiError {
    pub fn bad(param: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::BadParam {
            param: param.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::NotFound { what: what.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoKey
            | ApiError::BadKey
            | ApiError::Revoked
            | ApiError::Expired { .. }
            | ApiError::BadLink { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::LinkDenied { .. } => StatusCode::FORBIDDEN,
            ApiError::BadParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unsupported { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::NoKey
            | ApiError::BadKey
            | ApiError::Revoked
            | ApiError::Expired { .. }
            | ApiError::BadLink { .. } => "unauthorized",
            ApiError::Forbidden { .. } | ApiError::LinkDenied { .. } => "forbidden",
            ApiError::BadParam { .. } => "invalid-parameter",
            ApiError::NotFound { .. } => "not-found",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::TooLarge { .. } => "too-large",
            ApiError::Unsupported { .. } => "unsupported-media-type",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("https://pbxbridge.dev/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            param: match self {
                ApiError::BadParam { param, .. } => Some(param.clone()),
                _ => None,
            },
        }
    }
}

/// A database error never reaches the client as text: it may name servers
/// and tables. It is logged, and the client learns only whether to retry.
impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "API request: database unavailable");
            ApiError::Unavailable
        } else {
            tracing::error!(error = %e, "API request failed");
            ApiError::Internal
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = (status, axum::Json(self.problem())).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pbxbridge\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// axum's own rejections (bad JSON, bad query string, bad path) as problems.
pub fn from_rejection(param: &str, text: String) -> ApiError {
    ApiError::bad(param, text)
}
