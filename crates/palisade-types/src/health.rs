//! Bodies of `/health` and `/ready`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The health of the server or of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// Working.
    Healthy,
    /// Working, with less than it should have.
    Degraded,
    /// Not working.
    Unhealthy,
}

/// `GET /health`: the process is alive and serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `HEALTHY` when the server answers.
    pub status: HealthStatus,
}

/// `GET /ready`: whether every component the server needs works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// The worst of the components.
    pub overall: HealthStatus,
    /// Each component by name (`database`, `cache`, `encryption`, `audit`).
    pub components: BTreeMap<String, HealthStatus>,
}
