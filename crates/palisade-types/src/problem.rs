//! The error body of every route: RFC 9457 problem details with a stable machine-readable `code`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An `application/problem+json` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short human summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence, for a human. Never carries a secret, SQL or a stack trace.
    pub detail: String,
    /// The stable code to branch on (`VALIDATION_ERROR`, `NOT_FOUND`, `SERVICE_UNAVAILABLE` …).
    pub code: String,
    /// The request's id, also sent as `X-Request-Id`; quote it when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `TOKEN_REVOKED`: the client must log in again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_reauth: Option<bool>,
    /// `PASSWORD_POLICY` and `VALIDATION_ERROR`: every rule or field that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemItem>>,
    /// `RISK_BLOCKED`: the login's risk score (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<f64>,
    /// `RISK_BLOCKED`: the names of the risk factors that fired (`new_country`, `denied_address` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_factors: Option<Vec<String>>,
}

/// One failed rule or field of a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProblemItem {
    /// The rule (`min_length`, `common_password` …) or the field.
    pub rule: String,
    /// What is wrong, for a human.
    pub message: String,
}
