//! Security monitoring over HTTP (`/monitoring/*`): parse, call one `Monitoring` method, shape the
//! answer.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use palisade_core::monitoring::{
    EVENT_TYPES, EventQuery, EventType, Incident, IncidentAction, IncidentFilter, IncidentState, ReportedEvent,
    SecurityEvent, Severity,
};
use palisade_types::monitoring::{
    Dashboard, DashboardCharts, DashboardCompliance, DashboardIncidents, DashboardMetrics, DashboardThreats, EventPage,
    EventTypeView, IncidentActionView, IncidentList, IncidentUpdate, IncidentView, ReportEventRequest,
    SecurityEventView, SuspiciousAddress,
};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, Meta};

fn event_type(text: &str) -> Result<EventType, ApiError> {
    EventType::parse(text).ok_or_else(|| {
        ApiError::unprocessable(format!(
            "event_type: `{text}` is not an event type (one of {})",
            EventType::names().join(", ")
        ))
    })
}

fn view(event: SecurityEvent) -> SecurityEventView {
    SecurityEventView {
        event_id: event.id.to_string(),
        seq: event.seq,
        timestamp: event.at.format(&Rfc3339).unwrap_or_default(),
        event_type: event.event_type.map(|t| t.name().to_owned()),
        kind: event.kind,
        outcome: event.outcome,
        reported: event.reported,
        actor: event.actor,
        user_id: event.user_id,
        ip_address: event.ip_address,
        user_agent: event.user_agent,
        details: event.details,
    }
}

/// Records a security event an application saw (the original guide's `process_security_event`)
/// into the audit chain, under its type's `event.<type>` kind with the reporting key as actor.
/// `details` over 16 KiB is refused with 413.
///
/// **Permissions** - `monitoring:write` (an API key only an administrator can make)
#[utoipa::path(post, path = "/monitoring/events", tag = "monitoring", security(("api_key" = []), ("bearer" = [])), request_body = ReportEventRequest, responses(
    (status = 201, body = SecurityEventView),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 413, description = "PAYLOAD_TOO_LARGE: details over 16 KiB", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: an unknown event type (the valid ones listed) or a bad field", body = palisade_types::problem::Problem),
))]
pub(crate) async fn report(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<ReportEventRequest>,
) -> Result<(StatusCode, Json<SecurityEventView>), ApiError> {
    let ip_address = body
        .ip_address
        .as_deref()
        .map(|ip| {
            ip.trim().parse().map_err(|_| ApiError::unprocessable(format!("ip_address: `{ip}` is not an IP address")))
        })
        .transpose()?;
    let event = ReportedEvent {
        event_type: event_type(&body.event_type)?,
        user_id: body.user_id,
        ip_address,
        user_agent: body.user_agent,
        details: body.details,
        source: body.source,
    };
    let stored = state.palisade.monitoring().report(&principal, event, &meta).await?;
    Ok((StatusCode::CREATED, Json(view(stored))))
}

/// Which events `GET /monitoring/events` returns.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsParams {
    /// Only events concerning this user: the audit record's subject, which is the user's id — or,
    /// for a failed login, the username tried (an unknown user has no id).
    user_id: Option<String>,
    /// Only events of this type: Palisade's own and applications' reports.
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Only events at or after this instant (RFC 3339).
    since: Option<String>,
    /// Only events before this instant (RFC 3339).
    until: Option<String>,
    /// The `next_cursor` of the page before.
    before: Option<String>,
    /// At most this many (1–500, default 100).
    limit: Option<u32>,
}

fn instant(field: &str, text: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    text.map(|t| {
        OffsetDateTime::parse(t.trim(), &Rfc3339)
            .map_err(|_| ApiError::unprocessable(format!("{field}: `{t}` is not an RFC 3339 instant")))
    })
    .transpose()
}

/// Security events, newest first: everything Palisade audits and what applications reported,
/// filtered by user, type and time, a page at a time.
///
/// **Permissions** - `admin` or `monitoring:read`
#[utoipa::path(get, path = "/monitoring/events", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), params(EventsParams), responses(
    (status = 200, body = EventPage),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR", body = palisade_types::problem::Problem),
))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(params): Query<EventsParams>,
) -> Result<Json<EventPage>, ApiError> {
    let query = EventQuery {
        user_id: params.user_id,
        event_type: params.event_type.as_deref().map(event_type).transpose()?,
        since: instant("since", params.since.as_deref())?,
        until: instant("until", params.until.as_deref())?,
        before: params
            .before
            .as_deref()
            .map(|b| b.trim().parse::<i64>().map_err(|_| ApiError::unprocessable("before: not a cursor")))
            .transpose()?,
        limit: params.limit.unwrap_or(100),
    };
    let page = state.palisade.monitoring().events(&principal, &query).await?;
    Ok(Json(EventPage {
        events: page.events.into_iter().map(view).collect(),
        next_cursor: page.next.map(|seq| seq.to_string()),
    }))
}

/// The documented event types: what each means and the audit kinds that hold it.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/monitoring/event-types", tag = "monitoring", responses((status = 200, body = Vec<EventTypeView>)))]
pub(crate) async fn event_types() -> Json<Vec<EventTypeView>> {
    Json(
        EVENT_TYPES
            .iter()
            .map(|t| EventTypeView {
                name: t.name.to_owned(),
                description: t.about.to_owned(),
                audited_as: t.native.map(|k| k.as_str().to_owned()),
                reported_as: t.reported.to_owned(),
            })
            .collect(),
    )
}

fn incident_view(i: Incident) -> IncidentView {
    IncidentView {
        id: i.id.to_string(),
        cause: i.cause,
        subject: i.subject,
        severity: i.severity.as_str().into(),
        state: i.state.as_str().into(),
        title: i.title,
        details: i.details,
        events: i.events,
        occurrences: i.occurrences,
        opened_at: i.opened_at.format(&Rfc3339).unwrap_or_default(),
        last_seen_at: i.last_seen_at.format(&Rfc3339).unwrap_or_default(),
        updated_at: i.updated_at.format(&Rfc3339).unwrap_or_default(),
        updated_by: i.updated_by,
        actions: None,
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn action_view(a: IncidentAction, now: OffsetDateTime) -> IncidentActionView {
    IncidentActionView {
        live: a.is_live(now),
        id: a.id.to_string(),
        incident_id: a.incident.to_string(),
        kind: a.kind.as_str().into(),
        target: a.target,
        taken_at: rfc3339(a.taken_at),
        expires_at: a.expires_at.map(rfc3339),
        reverted_at: a.reverted_at.map(rfc3339),
        reverted_by: a.reverted_by,
    }
}

fn path_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text.trim()).map_err(|_| ApiError::NotFound)
}

/// Which incidents `GET /monitoring/incidents` returns.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentParams {
    /// `open`, `acknowledged` or `resolved`.
    state: Option<String>,
    /// Only at least this severe: `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    severity: Option<String>,
    /// The `next_cursor` of the page before.
    before: Option<String>,
    /// At most this many (1–500, default 100).
    limit: Option<u32>,
}

/// Incidents the detectors raised, newest first.
///
/// **Permissions** - `admin` or `monitoring:read`
#[utoipa::path(get, path = "/monitoring/incidents", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), params(IncidentParams), responses(
    (status = 200, body = IncidentList),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR", body = palisade_types::problem::Problem),
))]
pub(crate) async fn incidents(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(params): Query<IncidentParams>,
) -> Result<Json<IncidentList>, ApiError> {
    let filter = IncidentFilter {
        state: params
            .state
            .as_deref()
            .map(|s| {
                IncidentState::parse(s).ok_or_else(|| {
                    ApiError::unprocessable(format!("state: `{s}` is not open, acknowledged or resolved"))
                })
            })
            .transpose()?,
        min_severity: params
            .severity
            .as_deref()
            .map(|s| {
                Severity::parse(s).ok_or_else(|| {
                    ApiError::unprocessable(format!("severity: `{s}` is not LOW, MEDIUM, HIGH or CRITICAL"))
                })
            })
            .transpose()?,
        before: params
            .before
            .as_deref()
            .map(|b| uuid::Uuid::parse_str(b.trim()).map_err(|_| ApiError::unprocessable("before: not a cursor")))
            .transpose()?,
        limit: params.limit.unwrap_or(100),
    };
    let list = state.palisade.monitoring().incidents(&principal, &filter).await?;
    let next_cursor = (list.len() == filter.limit as usize).then(|| list.last().map(|i| i.id.to_string())).flatten();
    Ok(Json(IncidentList { incidents: list.into_iter().map(incident_view).collect(), next_cursor }))
}

/// Moves an incident along its lifecycle: open → acknowledged → resolved (or open → resolved).
/// Audited as `incident.updated`.
///
/// **Permissions** - `admin`
#[utoipa::path(patch, path = "/monitoring/incidents/{id}", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path)), request_body = IncidentUpdate, responses(
    (status = 200, body = IncidentView),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND", body = palisade_types::problem::Problem),
    (status = 409, description = "CONFLICT: not a forward move from its state", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR", body = palisade_types::problem::Problem),
))]
pub(crate) async fn update_incident(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiJson(body): ApiJson<IncidentUpdate>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = path_id(&id)?;
    let to = IncidentState::parse(&body.state)
        .filter(|s| *s != IncidentState::Open)
        .ok_or_else(|| ApiError::unprocessable(format!("state: `{}` is not acknowledged or resolved", body.state)))?;
    let updated = state.palisade.monitoring().set_incident_state(&principal, id, to, &meta).await?;
    Ok(Json(incident_view(updated)))
}

/// One incident, with the automatic responses taken for it.
///
/// **Permissions** - `admin` or `monitoring:read`
#[utoipa::path(get, path = "/monitoring/incidents/{id}", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path)), responses(
    (status = 200, body = IncidentView),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND", body = palisade_types::problem::Problem),
))]
pub(crate) async fn incident(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    let (incident, actions) = state.palisade.monitoring().incident(&principal, path_id(&id)?).await?;
    let now = state.palisade.clock().now();
    let mut view = incident_view(incident);
    view.actions = Some(actions.into_iter().map(|a| action_view(a, now)).collect());
    Ok(Json(view))
}

/// Reverts an automatic response: unblocks the address, unlocks the account or restores the API key.
/// Ended sessions cannot come back (409). Audited as `incident.response_reverted`.
///
/// **Permissions** - `admin`
#[utoipa::path(post, path = "/monitoring/incidents/{id}/actions/{action}/revert", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path), ("action" = String, Path)), responses(
    (status = 200, body = IncidentActionView),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND: no such action on this incident", body = palisade_types::problem::Problem),
    (status = 409, description = "CONFLICT: reverted already, or sessions ended (cannot be reverted)", body = palisade_types::problem::Problem),
))]
pub(crate) async fn revert_action(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    axum::extract::Path((id, action)): axum::extract::Path<(String, String)>,
) -> Result<Json<IncidentActionView>, ApiError> {
    let reverted =
        state.palisade.monitoring().revert_action(&principal, path_id(&id)?, path_id(&action)?, &meta).await?;
    Ok(Json(action_view(reverted, state.palisade.clock().now())))
}

/// `GET /monitoring/dashboard`'s parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DashboardParams {
    /// The range in seconds, ending now (300 to 2678400; default 86400, the last 24 hours).
    range: Option<i64>,
}

/// The security dashboard (the original guide's `get_security_dashboard_data`): metrics, threats,
/// compliance figures and 24-slice time series over the last `range` seconds, computed from the audit
/// chain and the incidents.
///
/// **Permissions** - `admin` or `monitoring:read`
#[utoipa::path(get, path = "/monitoring/dashboard", tag = "monitoring", security(("bearer" = []), ("api_key" = [])), params(DashboardParams), responses(
    (status = 200, body = Dashboard),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: a range outside 300–2678400 seconds", body = palisade_types::problem::Problem),
))]
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(params): Query<DashboardParams>,
) -> Result<Json<Dashboard>, ApiError> {
    let range = time::Duration::seconds(params.range.unwrap_or(86_400));
    let data = state.palisade.monitoring().dashboard(&principal, range).await?;
    let bucket = data.bucket;
    let buckets = (0..palisade_core::monitoring::dashboard::BUCKETS)
        .map(|n| rfc3339(data.since + bucket * i32::try_from(n).unwrap_or(0)))
        .collect();
    Ok(Json(Dashboard {
        range_seconds: u64::try_from((data.until - data.since).whole_seconds()).unwrap_or(0),
        since: rfc3339(data.since),
        until: rfc3339(data.until),
        metrics: DashboardMetrics {
            total_events: data.total_events,
            security_incidents: data.security_incidents,
            blocked_attempts: data.blocked_attempts,
            anomalies_detected: data.anomalies_detected,
        },
        threats: DashboardThreats {
            suspicious_ips: data
                .suspicious_ips
                .into_iter()
                .map(|(ip, failures)| SuspiciousAddress { ip, failures })
                .collect(),
            failed_logins: data.failed_logins,
            brute_force_attempts: data.brute_force_attempts,
        },
        compliance: DashboardCompliance { audit_events: data.audit_events, policy_violations: data.policy_violations },
        incidents: DashboardIncidents {
            unresolved: data.unresolved.values().sum(),
            by_severity: data.unresolved.into_iter().map(|(s, n)| (s.as_str().to_owned(), n)).collect(),
        },
        charts: DashboardCharts {
            bucket_seconds: u64::try_from(bucket.whole_seconds()).unwrap_or(0),
            buckets,
            series: data.series.into_iter().map(|(name, values)| (name.to_owned(), values)).collect(),
        },
    }))
}
