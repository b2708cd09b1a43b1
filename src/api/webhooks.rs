//! `/v1/webhooks`: webhook endpoints, for keys with the admin permission.
//! Those of the config (`cfg-<name>`) are listed but changed only there.
//! A secret is in the answer that makes it and nowhere else.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::body::JsonBody;
use super::fields::PathParams;
use super::problem::{ApiError, Problem};
use super::roles::Need;
use super::ApiState;
use crate::events::webhook::{
    EndpointChange, EndpointInfo, FailedDelivery, NewEndpoint, WebhookError, Webhooks,
};
use crate::time::Timestamp;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver))
        .routes(routes!(rotate_secret))
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> ApiError {
        match e {
            WebhookError::NotFound { .. } => ApiError::not_found("webhook"),
            WebhookError::NoDelivery { .. } => ApiError::not_found("failed delivery"),
            WebhookError::ReadOnly { .. }
            | WebhookError::Disabled { .. }
            | WebhookError::TooMany { .. }
            | WebhookError::Busy { .. } => ApiError::Conflict {
                detail: e.to_string(),
            },
            WebhookError::Url(r) => ApiError::bad("url", r.to_string()),
            WebhookError::Type(t) => ApiError::bad("events", t.to_string()),
            WebhookError::Db(e) => e.into(),
            WebhookError::Stopped => ApiError::Unavailable,
            other => {
                tracing::error!(error = %other, "webhook request failed");
                ApiError::Internal
            }
        }
    }
}

fn service(state: &ApiState) -> Result<&Webhooks, ApiError> {
    state.webhooks().ok_or(ApiError::Unavailable)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<EndpointInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The signing secret (`whsec_…`): shown this once. Requests carry
    /// `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
    pub secret: String,
    pub webhook: EndpointInfo,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new secret, shown this once; it signs from now on.
    pub secret: String,
    /// The previous secret signs too until then.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_until: Option<Timestamp>,
}

/// A delivery that ran out of retries, with the event it carried.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedDeliveryInfo {
    #[serde(flatten)]
    pub delivery: FailedDelivery,
    /// The event as it was sent.
    pub event: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailedDeliveryList {
    pub data: Vec<FailedDeliveryInfo>,
}

/// Failed deliveries listed at most.
const MAX_LISTED: usize = 1000;

/// Every endpoint: the API's and the config's.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, body = WebhookList),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_webhooks(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<WebhookList>, ApiError> {
    caller.require(Need::Admin)?;
    Ok(Json(WebhookList {
        data: service(&state)?.list(),
    }))
}

/// Creates an endpoint; it gets the events that happen from now on. Its
/// secret is in this answer only.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = NewEndpoint,
    responses(
        (status = 201, body = CreatedWebhook),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_webhook(
    caller: Caller,
    State(state): State<ApiState>,
    JsonBody(new): JsonBody<NewEndpoint>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    caller.require(Need::Admin)?;
    let (webhook, secret) = service(&state)?.create(new).await?;
    tracing::info!(webhook = %webhook.id, by = caller.key_id, "webhook created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            secret: secret.expose().to_owned(),
            webhook,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_…`, or `cfg-<name>`")),
    responses(
        (status = 200, body = EndpointInfo),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_webhook(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<EndpointInfo>, ApiError> {
    caller.require(Need::Admin)?;
    Ok(Json(service(&state)?.get(&id)?))
}

/// Changes the URL, the event types, or whether it is enabled. Enabling
/// one that a 410 disabled sends the events that happen from then on.
#[utoipa::path(patch, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", request_body = EndpointChange,
    params(("webhook_id" = String, Path, description = "`wh_…`")),
    responses(
        (status = 200, body = EndpointInfo),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "The endpoint comes from the config"),
    ))]
async fn update_webhook(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
    JsonBody(change): JsonBody<EndpointChange>,
) -> Result<Json<EndpointInfo>, ApiError> {
    caller.require(Need::Admin)?;
    let info = service(&state)?.update(&id, change).await?;
    tracing::info!(webhook = %id, by = caller.key_id, "webhook changed");
    Ok(Json(info))
}

/// Deletes an endpoint with its pending and failed deliveries.
#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "The endpoint comes from the config"),
    ))]
async fn delete_webhook(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    service(&state)?.delete(&id).await?;
    tracing::info!(webhook = %id, by = caller.key_id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Deliveries that ran out of retries and were not redelivered since,
/// newest first (1000 at most).
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_…`, or `cfg-<name>`")),
    responses(
        (status = 200, body = FailedDeliveryList),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_deliveries(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<FailedDeliveryList>, ApiError> {
    caller.require(Need::Admin)?;
    let failed = service(&state)?.failed(&id).await?;
    let data = failed
        .into_iter()
        .take(MAX_LISTED)
        .map(|d| FailedDeliveryInfo {
            event: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
            delivery: d,
        })
        .collect();
    Ok(Json(FailedDeliveryList { data }))
}

/// Sends a failed delivery again, with the same `webhook-id` and a fresh
/// retry schedule; once it goes through it leaves the failed list.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/deliveries/{event_id}/redeliver", tag = "webhooks",
    params(
        ("webhook_id" = String, Path, description = "`wh_…`, or `cfg-<name>`"),
        ("event_id" = String, Path, description = "The event's id (`evt_…`)"),
    ),
    responses(
        (status = 202, description = "Queued"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "The endpoint is disabled, or has too many redeliveries waiting"),
    ))]
async fn redeliver(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams((id, event_id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Need::Admin)?;
    service(&state)?.redeliver(&id, &event_id).await?;
    tracing::info!(webhook = %id, event = %event_id, by = caller.key_id, "webhook redelivery asked");
    Ok(StatusCode::ACCEPTED)
}

/// A new secret for an API endpoint; the previous one signs too for 24
/// hours (two signatures per request meanwhile).
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/rotate-secret", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_…`")),
    responses(
        (status = 200, body = RotatedSecret),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "The endpoint comes from the config (rotate in its secret_file)"),
    ))]
async fn rotate_secret(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    caller.require(Need::Admin)?;
    let hooks = service(&state)?;
    let secret = hooks.rotate_secret(&id).await?;
    tracing::info!(webhook = %id, by = caller.key_id, "webhook secret rotated");
    Ok(Json(RotatedSecret {
        secret: secret.expose().to_owned(),
        previous_secret_until: hooks.get(&id)?.previous_secret_until,
    }))
}
