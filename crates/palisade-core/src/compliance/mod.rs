//! Compliance: the GDPR consent ledger, the data subject's rights (export and scheduled erasure),
//! retention, real-time checks of an action against explicit rules, and reports of technical
//! control checks per standard.
//!
//! # Layout
//! - `consent.rs`: the append-only consent ledger.
//! - `erasure.rs`: erasure requests and the job that carries them out, once across instances.
//! - `check.rs`: real-time checks of an action against explicit, documented rules.
//! - `export.rs`: everything Palisade holds on a user, as a stream of JSON pieces.
//! - `retention.rs`: the retention policy applied by a scheduled job, with a dry run.
//! - `report.rs`: reports of technical control checks per [`Standard`].
//! - this file: the settings, the standards and the scopes.
//!
//! Nothing here claims certification: a report says which technical controls Palisade measured on
//! itself and what it found, never that a deployment "is compliant".

pub mod check;
pub mod consent;
pub mod erasure;
pub mod export;
pub mod report;
pub mod retention;
mod service;

pub use consent::{Consent, ConsentRequest, ConsentType, Withdrawal};
pub use erasure::{ErasureRequest, ErasureState};
pub use service::{ComplianceParts, ComplianceService};

use std::collections::BTreeMap;

use crate::auth::{AuthError, Principal, SCOPE_ADMIN};

/// The scope that lets a caller read every user's consents, exports and the reports.
pub const SCOPE_READ: &str = "compliance:read";
/// The scope that lets a caller act for any user (erasure, consents) besides reading.
pub const SCOPE_ADMIN_COMPLIANCE: &str = "compliance:admin";

/// A standard a report checks controls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standard {
    /// The EU General Data Protection Regulation.
    Gdpr,
    /// The US Health Insurance Portability and Accountability Act (Security Rule).
    Hipaa,
    /// The Payment Card Industry Data Security Standard.
    PciDss,
    /// The Sarbanes-Oxley Act (IT general controls).
    Sox,
    /// ISO/IEC 27001 (Annex A controls).
    Iso27001,
}

impl Standard {
    /// Every standard, in the order reports list them.
    pub const ALL: [Standard; 5] = [Self::Gdpr, Self::Hipaa, Self::PciDss, Self::Sox, Self::Iso27001];

    /// The name used in routes, settings and reports (`GDPR`, `PCI_DSS` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gdpr => "GDPR",
            Self::Hipaa => "HIPAA",
            Self::PciDss => "PCI_DSS",
            Self::Sox => "SOX",
            Self::Iso27001 => "ISO27001",
        }
    }

    /// Parses a standard's name, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Standard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long each kind of data is kept before the retention job removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Audit records (the guide's `COMPLIANCE_AUDIT_RETENTION_DAYS`, 2555 days: seven years). Older
    /// records are archived behind a sealed checkpoint, so the rest of the chain still verifies.
    pub audit: time::Duration,
    /// Risk records of past logins (the sessions' history).
    pub login_history: time::Duration,
    /// Resolved incidents, with their actions.
    pub incidents: time::Duration,
    /// Finished alert deliveries (sent, suppressed or dead).
    pub alert_deliveries: time::Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            audit: time::Duration::days(2555),
            login_history: time::Duration::days(365),
            incidents: time::Duration::days(730),
            alert_deliveries: time::Duration::days(90),
        }
    }
}

/// How compliance works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceSettings {
    /// The standards reports may be asked for (the guide's `COMPLIANCE_*_ENABLED`; PCI DSS is off
    /// by default, as there).
    pub standards: Vec<Standard>,
    /// How long after a request (or the withdrawal of a consent that requires it) an erasure is
    /// carried out; it can be cancelled until then. The guide's `deletion_delay`, 30 days.
    pub deletion_delay: time::Duration,
    /// How long a consent of a type stays valid, per type; absent types use
    /// `default_consent_validity`.
    pub consent_validity: BTreeMap<String, time::Duration>,
    /// How long a consent stays valid when its type has no entry above (default 365 days).
    pub default_consent_validity: time::Duration,
    /// Consent types whose withdrawal schedules the erasure of the user's data (default
    /// `data_processing`).
    pub erasure_on_withdrawal: Vec<String>,
    /// How long each kind of data is kept.
    pub retention: RetentionPolicy,
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        Self {
            standards: vec![Standard::Gdpr, Standard::Hipaa, Standard::Sox, Standard::Iso27001],
            deletion_delay: time::Duration::seconds(2_592_000),
            consent_validity: BTreeMap::new(),
            default_consent_validity: time::Duration::days(365),
            erasure_on_withdrawal: vec!["data_processing".to_owned()],
            retention: RetentionPolicy::default(),
        }
    }
}

impl ComplianceSettings {
    /// How long a consent of `consent_type` stays valid.
    pub fn validity_of(&self, consent_type: &str) -> time::Duration {
        self.consent_validity.get(consent_type).copied().unwrap_or(self.default_consent_validity)
    }
}

/// Why a compliance call failed.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    /// The caller may not do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A field is wrong; `message` says how.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such thing (user, consent, request).
    #[error("{0}")]
    NotFound(&'static str),
    /// The state does not allow this; the message says why.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The audit chain could not take the event.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// A key could not be destroyed or read.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl ComplianceError {
    /// Whether this failure is a store being unreachable.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_unavailable(),
            Self::Audit(e) => e.is_unavailable(),
            Self::Crypto(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

/// A JSON object's members (the details of an audit event); anything else gives none.
pub(crate) fn facts(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(members) => members,
        _ => serde_json::Map::new(),
    }
}

/// An instant as RFC 3339 text (the Unix epoch if it cannot be formatted, which a valid instant can).
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> ComplianceError {
    ComplianceError::Invalid { field, message: message.into() }
}

/// Whether `principal` may read any user's compliance data (`admin`, `compliance:read` or
/// `compliance:admin`).
pub fn may_read_all(principal: &Principal) -> bool {
    principal.has_scope(SCOPE_ADMIN) || principal.has_scope(SCOPE_READ) || principal.has_scope(SCOPE_ADMIN_COMPLIANCE)
}

/// Whether `principal` may act for any user (`admin` or `compliance:admin`).
pub fn may_act_for_all(principal: &Principal) -> bool {
    principal.has_scope(SCOPE_ADMIN) || principal.has_scope(SCOPE_ADMIN_COMPLIANCE)
}

/// Refuses unless `principal` may read every user's compliance data.
pub fn require_reader(principal: &Principal) -> Result<(), ComplianceError> {
    if may_read_all(principal) { Ok(()) } else { Err(AuthError::InsufficientScope(SCOPE_READ).into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standards_parse_by_their_names_only() {
        for s in Standard::ALL {
            assert_eq!(Standard::parse(s.as_str()), Some(s));
            assert_eq!(Standard::parse(&s.as_str().to_lowercase()), Some(s));
        }
        assert_eq!(Standard::parse("PCI-DSS"), None);
        assert_eq!(Standard::parse(""), None);
    }

    #[test]
    fn consent_validity_falls_back_to_the_default() {
        let mut settings = ComplianceSettings::default();
        settings.consent_validity.insert("marketing".into(), time::Duration::days(30));
        assert_eq!(settings.validity_of("marketing"), time::Duration::days(30));
        assert_eq!(settings.validity_of("analytics"), time::Duration::days(365));
    }
}
