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
