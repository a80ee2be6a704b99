//! Security monitoring (`/monitoring/*`): reporting security events and reading them back.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /monitoring/events`: an application reports a security event (the original guide's
/// `process_security_event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportEventRequest {
    /// One of the documented types (`GET /monitoring/event-types`), e.g. `LOGIN_FAILURE`, `SYSTEM_TEST`.
    pub event_type: String,
    /// The user it concerns, as the application names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The address of the client it concerns (IPv4 or IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// The user agent of the client it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Anything else, as a JSON object of at most 16 KiB.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
    /// What saw it (`web_application`).
    pub source: String,
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecurityEventView {
    /// Its id.
    pub event_id: String,
    /// Its position in the audit chain (the cursor for the next page is the last one's).
    pub seq: i64,
    /// When it was recorded (RFC 3339).
    pub timestamp: String,
    /// Its documented type, when it has one (every application report does; some of Palisade's own
    /// audit records, such as `system.started`, do not).
    pub event_type: Option<String>,
    /// The audit kind it is stored under (`auth.login_failed`, `event.login_failure` …).
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Whether an application reported it (rather than Palisade seeing it).
    pub reported: bool,
    /// Who acted or reported it (`api_key:<id>`, a user id).
    pub actor: Option<String>,
    /// Whom it concerns.
    pub user_id: Option<String>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// `GET /monitoring/events`: a page of events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// The events.
    pub events: Vec<SecurityEventView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One documented event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventTypeView {
    /// The name (`LOGIN_FAILURE`).
    pub name: String,
    /// What it means.
    pub description: String,
    /// The audit kind of Palisade's own events of this type, if Palisade records them.
    pub audited_as: Option<String>,
    /// The audit kind applications' reports of this type are stored under.
    pub reported_as: String,
}

/// An incident a detector raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentView {
    /// Its id.
    pub id: String,
    /// The detector that raised it (`brute_force`, `password_spraying`, `credential_stuffing`,
    /// `token_reuse`, `session_hijack`, `api_key_abuse`).
    pub cause: String,
    /// What it is about (`user:alice`, `ip:203.0.113.9`, `global`).
    pub subject: String,
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`: the highest it was raised with.
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    pub state: String,
    /// One line for a human.
    pub title: String,
    /// What the detector saw (counts, threshold, window).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The audit records (`seq`) that raised it, oldest first, at most 100.
    pub events: Vec<i64>,
    /// How many times it was raised.
    pub occurrences: u64,
    /// When it was opened (RFC 3339).
    pub opened_at: String,
    /// When it was last raised (RFC 3339).
    pub last_seen_at: String,
    /// When its state last changed (RFC 3339).
    pub updated_at: String,
    /// Who last changed its state.
    pub updated_by: Option<String>,
    /// The automatic responses taken for it, oldest first (`GET /monitoring/incidents/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<IncidentActionView>>,
}

/// An automatic response taken for an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentActionView {
    /// Its id.
    pub id: String,
    /// The incident it answers.
    pub incident_id: String,
    /// `block_ip`, `lock_account`, `end_sessions` or `revoke_api_key`.
    pub kind: String,
    /// What it acted on: an address, a user id or an API key id.
    pub target: String,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    /// When a timed action (`block_ip`, `lock_account`) lapses by itself (RFC 3339).
    pub expires_at: Option<String>,
    /// When it was reverted (RFC 3339).
    pub reverted_at: Option<String>,
    /// Who reverted it (`expiry` when it lapsed).
    pub reverted_by: Option<String>,
    /// Whether it is in force now.
    pub live: bool,
}

/// `GET /monitoring/incidents`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentList {
    /// The incidents.
    pub incidents: Vec<IncidentView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `PATCH /monitoring/incidents/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdate {
    /// `acknowledged` or `resolved` (forward only).
    pub state: String,
}

/// `GET /monitoring/dashboard?range=86400`: the original guide's dashboard object, computed from the
/// audit chain and the incidents of the last `range_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Dashboard {
    /// The range covered, in seconds.
    pub range_seconds: u64,
    /// Its start (RFC 3339).
    pub since: String,
    /// Its end: when this was computed (RFC 3339).
    pub until: String,
    /// The headline counts.
    pub metrics: DashboardMetrics,
    /// What attacks looked like.
    pub threats: DashboardThreats,
    /// What the audit trail holds.
    pub compliance: DashboardCompliance,
    /// The incidents not resolved now.
    pub incidents: DashboardIncidents,
    /// Time series, one value per bucket.
    pub charts: DashboardCharts,
}

/// The dashboard's headline counts, over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DashboardMetrics {
    /// Records of a documented security event type (Palisade's own and applications' reports).
    pub total_events: u64,
    /// Incidents opened.
    pub security_incidents: u64,
    /// Requests refused for security: lockouts, risk blocks, refused API keys and bearer tokens, MFA
    /// lockouts.
    pub blocked_attempts: u64,
    /// Events flagged as anomalous as they happened: refresh-token reuse, session-hijack suspicions,
    /// logins blocked by the risk engine.
    pub anomalies_detected: u64,
}

/// The dashboard's view of attacks, over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DashboardThreats {
    /// The addresses with the most refused or failed records, most first (at most 10).
    pub suspicious_ips: Vec<SuspiciousAddress>,
    /// Failed logins (Palisade's own and reported).
    pub failed_logins: u64,
    /// Brute-force incidents opened.
    pub brute_force_attempts: u64,
}

/// One address and how many failures came from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuspiciousAddress {
    /// The address.
    pub ip: String,
    /// Its failed or refused records.
    pub failures: u64,
}

/// The dashboard's view of the audit trail, over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DashboardCompliance {
    /// Records appended to the audit chain (every kind).
    pub audit_events: u64,
    /// Refusals for breaking a policy: password changes refused.
    pub policy_violations: u64,
}

/// Incidents not resolved, now (whatever the range).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DashboardIncidents {
    /// Open or acknowledged.
    pub unresolved: u64,
    /// Of those, how many per severity (`LOW`, `MEDIUM`, `HIGH`, `CRITICAL`).
    pub by_severity: std::collections::BTreeMap<String, u64>,
}

/// Time series over the range, in `bucket_seconds` buckets, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DashboardCharts {
    /// Each bucket's length.
    pub bucket_seconds: u64,
    /// Each bucket's start (RFC 3339).
    pub buckets: Vec<String>,
    /// Per series (`events`, `failed_logins`, `blocked_attempts`, `incidents`), one count per bucket.
    pub series: std::collections::BTreeMap<String, Vec<u64>>,
}
