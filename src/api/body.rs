//! Request bodies and paths whose rejections are problems naming the field.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// `Json<T>` whose errors are problem details: a missing or unknown field,
/// a wrong type, a body over the cap, or a missing content type.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::TooLarge {
                    detail: "the request body is larger than [api] max_body_kib allows".into(),
                })
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::Unsupported {
                detail: "the body must be JSON: send Content-Type: application/json".into(),
            }),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::bad("body", e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad("body", e.body_text())),
            Err(e) => Err(ApiError::bad("body", e.body_text())),
        }
    }
}
