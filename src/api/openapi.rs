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

/// Adds the answers every operation can give, where a handler's annotation
/// left them out: 401 (every route needs a key), 503 (the database is away),
/// 400 (a bad parameter), 404 (a path naming nothing), and for a request
/// body 413 and 415. A response schemathesis sees must be in the document.
pub fn add_common_responses(doc: &mut Document) {
    use utoipa::openapi::{RefOr, ResponseBuilder};
    let problem = || {
        RefOr::T(
            ResponseBuilder::new()
                .description("A problem (RFC 9457)")
                .content(
                    "application/problem+json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            item.get.as_mut(),
            item.head.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            let mut codes = vec!["400", "401", "503"];
            let has_path_params = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path)
            });
            if has_path_params {
                codes.push("404");
            }
            if op.request_body.is_some() {
                codes.extend(["413", "415"]);
            }
            for code in codes {
                op.responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(problem);
            }
        }
    }
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
