//! Alerts over HTTP (`/monitoring/alerts/*`): parse, call one `Monitoring` method, shape the answer.

use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_core::monitoring::Severity;
use palisade_core::monitoring::alert::{AlertPreferences, AlertType, Delivery, DeliveryState};
use palisade_types::alerts::{AlertConfig, AlertDeliveryList, AlertDeliveryView, AlertTestResult};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated};

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn view(d: Delivery) -> AlertDeliveryView {
    AlertDeliveryView {
        id: d.id.to_string(),
        alert_id: d.alert_id.to_string(),
        channel: d.channel.as_str().into(),
        recipient: d.recipient,
        state: d.state.as_str().into(),
        attempts: d.attempts,
        next_attempt_at: rfc3339(d.next_attempt_at),
        last_error: d.last_error,
        created_at: rfc3339(d.created_at),
        sent_at: d.sent_at.map(rfc3339),
        alert: d.alert,
    }
}

fn config_view(p: AlertPreferences) -> AlertConfig {
    AlertConfig {
        email_alerts: p.email,
        sms_alerts: p.sms,
        push_notifications: p.push,
        severity_threshold: p.severity_threshold.as_str().into(),
        alert_types: p.alert_types.iter().map(|t| t.as_str().to_owned()).collect(),
    }
}

/// The caller's alert preferences (the guide's defaults until they set theirs).
///
/// **Permissions** - any signed-in user, for themselves
#[utoipa::path(get, path = "/monitoring/alerts/config", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = AlertConfig),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
))]
pub(crate) async fn config(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<AlertConfig>, ApiError> {
    Ok(Json(config_view(state.palisade.monitoring().alert_preferences(&principal).await?)))
}

/// Sets the caller's alert preferences (the guide's `configure_user_alerts`): channels, the lowest
/// severity, and the alert types.
///
/// **Permissions** - any signed-in user, for themselves
#[utoipa::path(put, path = "/monitoring/alerts/config", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), request_body = AlertConfig, responses(
    (status = 200, body = AlertConfig),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: an unknown severity or alert type", body = palisade_types::problem::Problem),
))]
pub(crate) async fn set_config(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<AlertConfig>,
) -> Result<Json<AlertConfig>, ApiError> {
    let severity_threshold = Severity::parse(&body.severity_threshold).ok_or_else(|| {
        ApiError::unprocessable(format!(
            "severity_threshold: `{}` is not LOW, MEDIUM, HIGH or CRITICAL",
            body.severity_threshold
        ))
    })?;
    let mut alert_types = Vec::new();
    for name in &body.alert_types {
        let parsed = AlertType::parse(name).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "alert_types: `{name}` is not one of login_anomaly, new_device, suspicious_activity, security_incident"
            ))
        })?;
        if !alert_types.contains(&parsed) {
            alert_types.push(parsed);
        }
    }
    let preferences = AlertPreferences {
        email: body.email_alerts,
        sms: body.sms_alerts,
        push: body.push_notifications,
        severity_threshold,
        alert_types,
    };
    let monitoring = state.palisade.monitoring();
    monitoring.set_alert_preferences(&principal, &preferences).await?;
    Ok(Json(config_view(monitoring.alert_preferences(&principal).await?)))
}

/// Sends a test alert (type `test`, `LOW`) to the caller's chosen channels — and, for an
/// administrator, to the administrators' channel — through the same outbox and senders as real
/// alerts. Answers the deliveries written; they are sent within a second or two.
///
/// **Permissions** - any signed-in user
#[utoipa::path(post, path = "/monitoring/alerts/test", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = AlertTestResult),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
))]
pub(crate) async fn test(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<AlertTestResult>, ApiError> {
    let deliveries = state.palisade.monitoring().test_alert(&principal).await?;
    Ok(Json(AlertTestResult {
        alert_id: deliveries.first().map(|d| d.alert_id.to_string()),
        deliveries: deliveries.into_iter().map(view).collect(),
    }))
}

/// Which deliveries `GET /monitoring/alerts/deliveries` returns.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesParams {
    /// `pending`, `sent`, `dead` (the dead letters) or `suppressed`.
    state: Option<String>,
    /// The `next_cursor` of the page before.
    before: Option<String>,
    /// At most this many (1–500, default 100).
    limit: Option<u32>,
}

/// Alert deliveries, newest first; `state=dead` lists the dead letters (every attempt failed).
///
/// **Permissions** - `admin`
#[utoipa::path(get, path = "/monitoring/alerts/deliveries", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), params(DeliveriesParams), responses(
    (status = 200, body = AlertDeliveryList),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR", body = palisade_types::problem::Problem),
))]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(params): Query<DeliveriesParams>,
) -> Result<Json<AlertDeliveryList>, ApiError> {
    let wanted = params
        .state
        .as_deref()
        .map(|s| {
            DeliveryState::parse(s).ok_or_else(|| {
                ApiError::unprocessable(format!("state: `{s}` is not pending, sent, dead or suppressed"))
            })
        })
        .transpose()?;
    let before = params
        .before
        .as_deref()
        .map(|b| uuid::Uuid::parse_str(b.trim()).map_err(|_| ApiError::unprocessable("before: not a cursor")))
        .transpose()?;
    let limit = params.limit.unwrap_or(100);
    let list = state.palisade.monitoring().deliveries(&principal, wanted, before, limit).await?;
    let next_cursor = (list.len() == limit as usize).then(|| list.last().map(|d| d.id.to_string())).flatten();
    Ok(Json(AlertDeliveryList { deliveries: list.into_iter().map(view).collect(), next_cursor }))
}

/// Sends a dead letter again: pending, due now, its attempts reset.
///
/// **Permissions** - `admin`
#[utoipa::path(post, path = "/monitoring/alerts/deliveries/{id}/retry", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = AlertDeliveryView),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND", body = palisade_types::problem::Problem),
    (status = 409, description = "CONFLICT: no such delivery, or not a dead letter", body = palisade_types::problem::Problem),
))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<AlertDeliveryView>, ApiError> {
    let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| ApiError::NotFound)?;
    Ok(Json(view(state.palisade.monitoring().retry_delivery(&principal, id).await?)))
}
