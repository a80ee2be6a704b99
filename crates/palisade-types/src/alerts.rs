//! Wire types of the alerts (`/monitoring/alerts/*`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET` and `PUT /monitoring/alerts/config`: what the caller wants to be told of, and how (the
/// original guide's `configure_user_alerts`). Every field may be left out of a `PUT`: it keeps the
/// guide's default (e-mail and push on, SMS off, `MEDIUM`, every type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// By e-mail, to the account's address.
    #[serde(default = "yes")]
    pub email_alerts: bool,
    /// By SMS, to the phone of the account's confirmed SMS factor.
    #[serde(default)]
    pub sms_alerts: bool,
    /// Through the configured push gateway.
    #[serde(default = "yes")]
    pub push_notifications: bool,
    /// Nothing less severe: `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    #[serde(default = "medium")]
    pub severity_threshold: String,
    /// Which: `login_anomaly`, `new_device`, `suspicious_activity`, `security_incident`.
    #[serde(default = "every_type")]
    pub alert_types: Vec<String>,
}

fn yes() -> bool {
    true
}

fn medium() -> String {
    "MEDIUM".into()
}

fn every_type() -> Vec<String> {
    ["login_anomaly", "new_device", "suspicious_activity", "security_incident"].map(String::from).to_vec()
}

/// One alert on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertDeliveryView {
    /// Its id.
    pub id: String,
    /// The alert's id (shared by its channels).
    pub alert_id: String,
    /// `email`, `sms`, `push` or `webhook`.
    pub channel: String,
    /// `user:<id>` or `admins`.
    pub recipient: String,
    /// `pending`, `sent`, `dead` (failed every attempt) or `suppressed` (over the recipient's hourly limit).
    pub state: String,
    /// Sends tried.
    pub attempts: u32,
    /// When it is due (again) (RFC 3339).
    pub next_attempt_at: String,
    /// Why the last send failed.
    pub last_error: Option<String>,
    /// When it was written (RFC 3339).
    pub created_at: String,
    /// When the channel accepted it (RFC 3339).
    pub sent_at: Option<String>,
    /// The alert as sent: `{alert_id, alert_type, severity, title, message, user_id, incident_id, created_at}`.
    #[schema(value_type = Object)]
    pub alert: serde_json::Value,
}

/// `POST /monitoring/alerts/test`: the deliveries the test alert made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertTestResult {
    /// The test alert's id (absent when no channel is on).
    pub alert_id: Option<String>,
    /// One per channel it goes to.
    pub deliveries: Vec<AlertDeliveryView>,
}

/// `GET /monitoring/alerts/deliveries`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertDeliveryList {
    /// The deliveries.
    pub deliveries: Vec<AlertDeliveryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}
