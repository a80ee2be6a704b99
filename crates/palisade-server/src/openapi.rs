//! The OpenAPI description of every route, served at `/openapi.json` and rendered at `/docs`.

use palisade_types::{health, problem};

/// The API document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Palisade", description = "Security and identity service"),
    paths(crate::routes::ops::health, crate::routes::ops::ready, crate::routes::ops::metrics),
    components(schemas(health::Health, health::Ready, health::HealthStatus, problem::Problem)),
    tags((name = "operations", description = "Liveness, readiness and metrics"))
)]
pub struct ApiDoc;
