//! Operations: liveness, readiness and metrics.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use palisade_core::ComponentHealth;
use palisade_types::health::{Health, HealthStatus, Ready};

use crate::app::AppState;

/// Liveness: answers 200 as long as the process serves, whatever the stores do.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: HealthStatus::Healthy })
}

/// Readiness: each component with one cheap check; 503 when any is UNHEALTHY.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, body = Ready, description = "every component works"),
    (status = 503, body = Ready, description = "a component is UNHEALTHY; the body names it"),
))]
pub(crate) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.palisade.readiness().await;
    let overall = wire(readiness.overall());
    let components: BTreeMap<String, HealthStatus> =
        readiness.components.iter().map(|(name, health)| ((*name).to_owned(), wire(*health))).collect();
    let status = if overall == HealthStatus::Unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (status, Json(Ready { overall, components }))
}

/// Prometheus text exposition of request counts and latencies.
///
/// **Permissions** - none; expose it only to your monitoring network
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

fn wire(health: ComponentHealth) -> HealthStatus {
    match health {
        ComponentHealth::Healthy => HealthStatus::Healthy,
        ComponentHealth::Degraded => HealthStatus::Degraded,
        ComponentHealth::Unhealthy => HealthStatus::Unhealthy,
    }
}
