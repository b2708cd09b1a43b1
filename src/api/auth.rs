//! Who is calling: the bearer key, checked against `{api_keys}` on every
//! request, and what its role lets it do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::problem::ApiError;
use super::roles::{permissions, Need, Permissions};
use super::ApiState;
use crate::config::CallScope;
use crate::time::Timestamp;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: i64,
    pub key_name: String,
    pub role: String,
    pub agent_id: Option<String>,
    pub perms: Permissions,
}

impl Caller {
    /// 403 unless the role has `need`.
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        if self.perms.allows(need) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.role.clone(),
                needs: need.as_str(),
            })
        }
    }

    /// For a see-own key, the agent id its calls must carry. A see-own key
    /// without an agent id sees nothing (`Some("")` matches no call).
    pub fn own_agent(&self) -> Option<&str> {
        match self.perms.calls {
            CallScope::All => None,
            CallScope::Own => Some(self.agent_id.as_deref().unwrap_or("")),
        }
    }

    /// May this key see a call whose agent id is `agent_id`?
    pub fn may_see(&self, agent_id: Option<&str>) -> bool {
        match self.own_agent() {
            None => true,
            Some(own) => !own.is_empty() && agent_id == Some(own),
        }
    }
}

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Keys remembered for throttling; past this the memory starts over.
const TOUCH_CAP: usize = 10_000;

#[derive(Debug, Default)]
pub struct KeyUse {
    last: Mutex<HashMap<i64, Instant>>,
}

impl KeyUse {
    fn due(&self, id: i64, now: Instant) -> bool {
        let Ok(mut m) = self.last.lock() else {
            return false;
        };
        if m.len() >= TOUCH_CAP {
            m.clear();
        }
        match m.get(&id) {
            Some(t) if now.duration_since(*t) < TOUCH_EVERY => false,
            _ => {
                m.insert(id, now);
                true
            }
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ApiError::BadKey)?;
    let (scheme, token) = text.split_once(' ').ok_or(ApiError::BadKey)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::BadKey);
    }
    Ok(Some(token.trim()))
}

/// The caller a token belongs to, or why it may not call.
pub async fn authenticate(state: &ApiState, token: &str) -> Result<Caller, ApiError> {
    let db = state.db().await?;
    let key = db.api_key_for_token(token).await?.ok_or(ApiError::BadKey)?;
    let now = Timestamp::now();
    if key.revoked_at.is_some() {
        return Err(ApiError::Revoked);
    }
    if let Some(at) = key.expires_at {
        if now >= at {
            return Err(ApiError::Expired {
                at: at.to_rfc3339(),
            });
        }
    }
    // A role removed from the config leaves its keys powerless, not admin.
    let perms = permissions(state.api(), &key.role).ok_or(ApiError::BadKey)?;
    if state.key_use.due(key.id, Instant::now()) {
        if let Err(e) = db.touch_api_key(key.id, now).await {
            tracing::debug!(error = %e, "could not note an API key's use");
        }
    }
    Ok(Caller {
        key_id: key.id,
        key_name: key.name,
        role: key.role,
        agent_id: key.agent_id,
        perms,
    })
}

/// The caller a signed link stands for, once its signature and expiry are
/// checked: the key that made it must still exist, be neither revoked nor
/// expired, and keep its role.
pub async fn link_signer(state: &ApiState, key_id: i64) -> Result<Caller, ApiError> {
    let bad = |reason: &str| ApiError::BadLink {
        reason: reason.to_owned(),
    };
    let db = state.db().await?;
    let key = db
        .signer_key(key_id)
        .await?
        .ok_or_else(|| bad("the key that made it no longer exists"))?;
    if key.revoked_at.is_some() {
        return Err(bad("the key that made it was revoked"));
    }
    if key.expires_at.is_some_and(|at| Timestamp::now() >= at) {
        return Err(bad("the key that made it expired"));
    }
    let perms = permissions(state.api(), &key.role).ok_or(ApiError::BadKey)?;
    Ok(Caller {
        key_id: key.id,
        key_name: key.name,
        role: key.role,
        agent_id: key.agent_id,
        perms,
    })
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = bearer(parts)?.ok_or(ApiError::NoKey)?;
        let caller = authenticate(state, token).await?;
        tracing::Span::current().record("key", caller.key_id);
        Ok(caller)
    }
}
