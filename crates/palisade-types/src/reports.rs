//! Compliance reports (`GET /compliance/reports/{standard}`): technical control checks Palisade
//! measured on itself for one standard, with the evidence of each. Never a certification.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A report of technical control checks for one standard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComplianceReport {
    /// `GDPR`, `HIPAA`, `PCI_DSS`, `SOX` or `ISO27001`.
    pub standard: String,
    /// When the measurements were taken (RFC 3339).
    pub generated_at: String,
    /// The range the audit queries covered.
    pub range: ReportRange,
    /// Always `technical control checks`: what this is.
    pub wording: String,
    /// What a report is and is not (not a certification or an attestation).
    pub disclaimer: String,
    /// `requirements_met / requirements_total`, from 0 to 1 (0 when no control counts).
    pub score: f64,
    /// The score in percent, one decimal.
    pub score_percent: f64,
    /// Controls met.
    pub requirements_met: u32,
    /// Controls that count: met or not met (not-applicable ones count neither way).
    pub requirements_total: u32,
    /// Every control the standard maps to, in order.
    pub controls: Vec<ControlView>,
    /// The controls not met.
    pub violations: Vec<ViolationSummary>,
    /// What to change, one entry per control not met (without repeats).
    pub recommendations: Vec<String>,
}

/// The range of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportRange {
    /// Its length in seconds.
    pub seconds: u64,
    /// Its start (RFC 3339).
    pub since: String,
    /// Its end (RFC 3339): when the report was generated.
    pub until: String,
}

/// One control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ControlView {
    /// Its stable id (`admin_mfa`, `audit_chain` …).
    pub id: String,
    /// Its title.
    pub title: String,
    /// The standard's requirement it gives evidence for (`GDPR Art. 32(1)(a)`).
    pub requirement: String,
    /// `met`, `not_met` or `not_applicable`.
    pub status: String,
    /// Why.
    pub evidence: EvidenceView,
    /// What to change, when it is not met.
    pub recommendation: Option<String>,
}

/// The evidence of a control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceView {
    /// What Palisade measured.
    pub measured: String,
    /// What the requirement asks of it.
    pub expected: String,
    /// The settings involved as configured, secrets masked (`***`).
    pub config: BTreeMap<String, String>,
    /// The query behind the measurement, when there was one.
    pub query: Option<EvidenceQueryView>,
}

/// A query behind a measurement and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceQueryView {
    /// What was asked (of the store, the audit chain or the keyring).
    pub description: String,
    /// What it answered.
    pub result: String,
}

/// A control not met, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ViolationSummary {
    /// The control's id.
    pub control: String,
    /// The requirement.
    pub requirement: String,
    /// `<title> (<requirement>): measured …; expected …`.
    pub summary: String,
}
