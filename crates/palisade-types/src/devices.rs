//! The device registry (`/auth/devices`) and the administrator's view of a user's risk
//! assessments (`/admin/users/{id}/risk`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One device of the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// Its id.
    pub device_id: String,
    /// The name the user knows it by (given at login or by a rename; otherwise "browser on OS").
    pub name: String,
    /// `mobile`, `desktop`, `pc`, `smartphone`, … as described or as the user agent says.
    #[serde(rename = "type")]
    pub device_type: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// Browser or client.
    pub browser: Option<String>,
    /// First login from it (RFC 3339).
    pub first_seen_at: String,
    /// Last login from it (RFC 3339).
    pub last_seen_at: String,
    /// Address of the last login.
    pub last_ip: Option<String>,
    /// Country (ISO 3166 code) of the last login, when a GeoIP database knows it.
    pub last_country: Option<String>,
    /// City of the last login, when a GeoIP database knows it.
    pub last_city: Option<String>,
    /// `low` (new), `medium` (approved or used again), `high` (trusted by the user: lowers the risk
    /// of its logins).
    pub trust_level: String,
    /// Whether it is approved.
    pub approved: bool,
    /// Whether the session making the request was opened from it.
    pub current: bool,
}

/// `GET /auth/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceList {
    /// Most recently seen first.
    pub devices: Vec<Device>,
}

/// `PATCH /auth/devices/{id}`: what to change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceUpdateRequest {
    /// A new name (1 to 100 characters, no control characters).
    #[serde(default)]
    pub name: Option<String>,
    /// `low`, `medium` or `high`.
    #[serde(default)]
    pub trust_level: Option<String>,
}

/// `DELETE /auth/devices/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceRemoved {
    /// Sessions opened from the device that were ended with it.
    pub sessions_ended: usize,
}

/// One factor of an assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskFactorView {
    /// Its stable name (`new_device`, `new_country`, `new_network`, `impossible_travel`,
    /// `account_failures`, `address_failures`, `unusual_hour`, `unusual_weekday`,
    /// `denied_address`, `anonymizer`, `trusted_device`).
    pub name: String,
    /// Its contribution (configured weight × strength); for `trusted_device`, the fraction of the
    /// score taken off.
    pub weight: f64,
    /// Why it fired.
    pub detail: String,
}

/// A factor that could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AbsentFactorView {
    /// Its stable name.
    pub name: String,
    /// Why it was not evaluated (no database, no history …).
    pub reason: String,
}

/// One scored login of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskAssessmentView {
    /// The record's id.
    pub id: String,
    /// When (RFC 3339).
    pub at: String,
    /// The client address.
    pub ip: Option<String>,
    /// Country, when known.
    pub country: Option<String>,
    /// City, when known.
    pub city: Option<String>,
    /// Autonomous system, when known.
    pub asn: Option<u32>,
    /// The registered device, when it was known at the time.
    pub device_id: Option<String>,
    /// 0 to 1.
    pub score: f64,
    /// `allow`, `mfa`, `enhanced_mfa` or `block`.
    pub decision: String,
    /// `pending` (second step not completed), `succeeded` or `blocked`.
    pub result: String,
    /// The factors that fired, strongest first.
    pub factors: Vec<RiskFactorView>,
    /// The factors that could not be evaluated.
    pub absent: Vec<AbsentFactorView>,
}

/// `GET /admin/users/{id}/risk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskAssessmentList {
    /// Newest first.
    pub assessments: Vec<RiskAssessmentView>,
}
