//! `/v1/keys`: API keys, for keys with the admin permission. The CLI
//! (`pbxbridge keys`) does the same on the server itself.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::body::JsonBody;
use super::problem::{ApiError, Problem};
use super::roles::{permissions, role_names, Need};
use super::ApiState;
use crate::db::api_keys::ApiKey;
use crate::time::Timestamp;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    /// The token's public part: `pbxb_<prefix>_…`.
    pub prefix: String,
    pub role: String,
    pub agent_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
}

impl From<ApiKey> for KeyInfo {
    fn from(k: ApiKey) -> KeyInfo {
        KeyInfo {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            role: k.role,
            agent_id: k.agent_id,
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub data: Vec<KeyInfo>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What the key is for, e.g. "crm-prod".
    pub name: String,
    /// admin, supervisor, agent, integration, ops, or a role from `[[api.roles]]`.
    pub role: String,
    /// The CRM user id whose calls a see-own role (agent) sees.
    pub agent_id: Option<String>,
    /// Days until the key stops working; unset: never.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// Shown once: only its hash is kept.
    pub token: String,
    pub key: KeyInfo,
}

/// Checks a new key's fields; shared with the CLI.
pub fn check_new_key(
    state_api: Option<&crate::config::ApiConfig>,
    name: &str,
    role: &str,
    agent_id: Option<&str>,
) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 128 {
        return Err(ApiError::bad("name", "must be 1 to 128 characters"));
    }
    let Some(perms) = permissions(state_api, role) else {
        return Err(ApiError::bad(
            "role",
            format!(
                "unknown role {role:?}; roles: {}",
                role_names(state_api).join(", ")
            ),
        ));
    };
    if let Some(a) = agent_id {
        if a.is_empty() || a.len() > 191 {
            return Err(ApiError::bad("agent_id", "must be 1 to 191 characters"));
        }
    } else if perms.calls == crate::config::CallScope::Own {
        return Err(ApiError::bad(
            "agent_id",
            format!("role {role:?} sees only its agent's calls: give the agent id"),
        ));
    }
    Ok(())
}

/// Every key, newest first (revoked ones too).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses(
        (status = 200, body = KeyList),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_keys(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<KeyList>, ApiError> {
    caller.require(Need::Admin)?;
    let keys = state.db().await?.api_keys().await?;
    Ok(Json(KeyList {
        data: keys.into_iter().map(KeyInfo::from).collect(),
    }))
}

/// Creates a key; its token is in this answer only.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey,
    responses(
        (status = 201, body = CreatedKey),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_key(
    caller: Caller,
    State(state): State<ApiState>,
    JsonBody(new): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Need::Admin)?;
    check_new_key(state.api(), &new.name, &new.role, new.agent_id.as_deref())?;
    let expires = match new.expires_days {
        None => None,
        Some(d @ 1..=3650) => Some(
            Timestamp::now().saturating_add(std::time::Duration::from_secs(u64::from(d) * 86_400)),
        ),
        Some(_) => return Err(ApiError::bad("expires_days", "must be 1 to 3650")),
    };
    let (key, token) = state
        .db()
        .await?
        .create_api_key(new.name.trim(), &new.role, new.agent_id.as_deref(), expires)
        .await?;
    tracing::info!(key = key.id, name = %key.name, role = %key.role, by = caller.key_id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            token: token.0,
            key: key.into(),
        }),
    ))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = i64, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_key(
    caller: Caller,
    State(state): State<ApiState>,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    let id: i64 = key_id
        .parse()
        .map_err(|_| ApiError::bad("key_id", "must be a key's numeric id"))?;
    if state.db().await?.revoke_api_key(&id.to_string()).await? {
        tracing::info!(key = id, by = caller.key_id, "API key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("key"))
    }
}
