//! The OpenAPI 3.1 document, generated from the handlers' annotations: a
//! route that is served is in it (utoipa-axum registers both at once).

use std::sync::Arc;

use axum::{Extension, Json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::problem::Problem;
use super::ApiState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pbxbridge",
        description = "Calls, recordings, notes and links for the CRM. Every route needs \
                       `Authorization: Bearer <key>` (`pbxbridge keys create`). Errors are \
                       RFC 9457 problem details. Times are RFC 3339 UTC.",
    ),
    components(schemas(Problem)),
    security(("bearer" = [])),
    modifiers(&BearerScheme),
)]
struct Base;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: pbxb_…"))
                    .build(),
            ),
        );
    }
}

pub fn base() -> Document {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"),
        (status = 401, description = "No valid key", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn openapi_json(_caller: Caller, Extension(doc): Extension<Arc<Document>>) -> Json<Document> {
    Json((*doc).clone())
}
