//! Signed event-stream links: a browser's `EventSource` cannot send an
//! `Authorization` header, so the CRM's backend asks for a link with its key
//! and hands it to the tab. The signature (HMAC-SHA256 with the API's link
//! secret) binds the key and the expiry; the key is checked again at every
//! connect, so revoking it closes the door at once. Filters (`types`,
//! `agent`) may be added to the link; the key's own visibility still holds.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hmac::Mac;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{link_signer, Caller};
use super::problem::{ApiError, Problem};
use super::{ApiState, LinkKey};
use crate::time::Timestamp;

/// Keeps these tags from ever being valid for another use of the secret.
const CONTEXT: &[u8] = b"pbxbridge events link v1\0";

fn mac(key: &LinkKey, key_id: i64, expires: i64) -> hmac::Hmac<sha2::Sha256> {
    let mut m = key.mac(CONTEXT);
    m.update(format!("{key_id}|{expires}").as_bytes());
    m
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventLink {
    /// Path and query of the stream, relative to the API's base URL.
    pub url: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// A link to `/v1/events` that works without a header until it expires
/// (`[api] link_max_secs`), for `new EventSource(url)`.
#[utoipa::path(post, path = "/v1/events/link", tag = "events",
    responses(
        (status = 201, body = EventLink),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn events_link(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<(StatusCode, Json<EventLink>), ApiError> {
    let secs = i64::try_from(state.api_config().link_max_secs).unwrap_or(i64::MAX);
    let expires = (Timestamp::now().micros() / 1_000_000).saturating_add(secs);
    let sig = hex::encode(
        mac(state.link_key(), caller.key_id, expires)
            .finalize()
            .into_bytes(),
    );
    Ok((
        StatusCode::CREATED,
        Json(EventLink {
            url: format!(
                "/v1/events?expires={expires}&key={}&sig={sig}",
                caller.key_id
            ),
            expires_at: Timestamp::from_secs(expires),
        }),
    ))
}

/// The caller a link stands for, or why it does not work.
pub(super) async fn link_caller(
    state: &ApiState,
    key: Option<&str>,
    expires: Option<&str>,
    sig: &str,
) -> Result<Caller, ApiError> {
    let bad = |reason: String| ApiError::BadLink { reason };
    let expires: i64 = expires
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| bad("expires must be Unix seconds".into()))?;
    let key_id: i64 = key
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| bad("key must be the id of the key that made the link".into()))?;
    let valid = match hex::decode(sig) {
        Ok(s) if s.len() == 32 => mac(state.link_key(), key_id, expires)
            .verify_slice(&s)
            .is_ok(),
        _ => false,
    };
    if !valid {
        return Err(bad(
            "the signature does not match this key and expiry".into()
        ));
    }
    if Timestamp::now().micros() / 1_000_000 >= expires {
        return Err(bad(format!(
            "it expired at {}",
            Timestamp::from_secs(expires).to_rfc3339()
        )));
    }
    link_signer(state, key_id).await
}
