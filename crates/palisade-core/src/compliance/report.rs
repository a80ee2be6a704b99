//! Reports of technical control checks, one per [`Standard`]: each requirement of a standard that
//! Palisade can check on itself is a named control (password policy strength, MFA coverage of the
//! administrators, encryption at rest, key ages, the audit chain, retention, consent coverage,
//! lockout, session lifetimes, transport settings), with its status, the evidence behind it (the
//! measured value, what was expected, the configuration excerpt with secrets masked, and the query
//! that measured it with its result) and a recommendation when it is not met.
//!
//! # Layout
//! - [`ComplianceReports`]: the service. It checks the caller, gathers [`Measurements`] (counts are
//!   done by the store in SQL, so a report costs a few queries whatever the number of users, plus
//!   one walk of the audit chain), evaluates, and audits the run (`compliance.report`).
//! - [`evaluate`]: a pure function from [`ReportInputs`] to a [`Report`]; every control and every
//!   threshold is there, which is what the unit tests drive.
//! - [`DeploymentFacts`]: what only the caller (the server, from its configuration) knows: the
//!   issuer, the proxies, the stores' links, where the master key lives, and the configuration
//!   excerpt, masked again here so that no secret can reach a report.
//!
//! This module must never say "certified" or "compliant": a report lists *technical control
//! checks* Palisade measured on itself. Organisational measures (policies, training, contracts,
//! risk assessments) are outside what any software can measure, and a met control is evidence for
//! an auditor, not a verdict.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{ComplianceSettings, Standard, may_read_all};
use crate::audit::{AuditEvent, AuditKind, AuditLog, ChainReport, Outcome, RequestMeta};
use crate::auth::{AuthError, LoginLimits, Principal};
use crate::clock::Clock;
use crate::crypto::{DataClassification, EncryptionPolicies, KeyInfo, KeyPurpose, Keyring};
use crate::password::{Argon2Params, PasswordPolicy};
use crate::session::SessionPolicy;
use crate::store::{DurableStore, StoreError};
use crate::token::keys::{SigningKeyError, SigningKeys};

/// How every report describes itself.
pub const WORDING: &str = "technical control checks";

/// The sentence every report carries, in JSON and on the page.
pub const DISCLAIMER: &str = "Technical control checks Palisade measured on itself at the time shown. They are \
     evidence for an assessment, not a certification or an attestation: organisational measures (policies, \
     training, contracts, risk assessments) and the systems around Palisade are outside what it can measure.";

/// The consent type whose coverage the consent control measures.
pub const COVERAGE_CONSENT: &str = "data_processing";

/// The shortest range a report may cover (5 minutes).
pub const MIN_RANGE: Duration = Duration::seconds(300);
/// The longest range a report may cover (366 days).
pub const MAX_RANGE: Duration = Duration::days(366);
/// The range when the caller gives none (30 days).
pub const DEFAULT_RANGE: Duration = Duration::days(30);

/// Keys the schedule rotates are allowed this much past their period: the schedule ticks every
/// 30 s, and an instance may have been down for a while.
const ROTATION_GRACE: Duration = Duration::days(1);
/// Without a rotation schedule, the JWT signing key should be younger than this (NIST SP 800-57's
/// cryptoperiods for signing keys are one to three years; one year is the cautious end).
const UNSCHEDULED_SIGNING_KEY_AGE: Duration = Duration::days(365);

/// A control Palisade checks on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ControlId {
    /// Password policy strength: length, common-password list, history (PCI: character classes).
    PasswordPolicy,
    /// Password hashing: Argon2id at or above the OWASP minimum, no stored hash of another kind.
    PasswordHashing,
    /// Account lockout after failed logins.
    AccountLockout,
    /// Every administrator holds a confirmed second factor or a passkey.
    AdminMfa,
    /// Access-token, session and idle lifetimes.
    SessionLifetimes,
    /// Encryption at rest: the data keys of every class in use, authenticated ciphers, no
    /// compression of sensitive classes.
    EncryptionAtRest,
    /// Data keys and the JWT signing key younger than their rotation periods.
    KeyRotation,
    /// The master key is in an HSM or given by the operator (not the development key file).
    MasterKeyProtection,
    /// The audit chain verifies from its first record to its last.
    AuditChain,
    /// Audit records are kept at least as long as the standard asks.
    AuditRetention,
    /// Personal data (login history, alert deliveries) is kept for a bounded time.
    PersonalDataRetention,
    /// Erasure is carried out within a month, and withdrawing consent schedules it.
    Erasure,
    /// Every user holds a live `data_processing` consent.
    ConsentCoverage,
    /// The issuer is https, no proxy is trusted blindly, remote stores are reached over TLS.
    TransportSecurity,
}

impl ControlId {
    /// The stable id in reports (`admin_mfa`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordPolicy => "password_policy",
            Self::PasswordHashing => "password_hashing",
            Self::AccountLockout => "account_lockout",
            Self::AdminMfa => "admin_mfa",
            Self::SessionLifetimes => "session_lifetimes",
            Self::EncryptionAtRest => "encryption_at_rest",
            Self::KeyRotation => "key_rotation",
            Self::MasterKeyProtection => "master_key_protection",
            Self::AuditChain => "audit_chain",
            Self::AuditRetention => "audit_retention",
            Self::PersonalDataRetention => "personal_data_retention",
            Self::Erasure => "erasure",
            Self::ConsentCoverage => "consent_coverage",
            Self::TransportSecurity => "transport_security",
        }
    }

    /// A short title for people.
    pub fn title(self) -> &'static str {
        match self {
            Self::PasswordPolicy => "Password policy strength",
            Self::PasswordHashing => "Password hashing",
            Self::AccountLockout => "Account lockout after failed logins",
            Self::AdminMfa => "MFA coverage of administrators",
            Self::SessionLifetimes => "Session and token lifetimes",
            Self::EncryptionAtRest => "Encryption at rest of each classification",
            Self::KeyRotation => "Key rotation age",
            Self::MasterKeyProtection => "Master key protection",
            Self::AuditChain => "Audit chain integrity",
            Self::AuditRetention => "Audit record retention",
            Self::PersonalDataRetention => "Retention of personal data",
            Self::Erasure => "Erasure of personal data",
            Self::ConsentCoverage => "Consent coverage",
            Self::TransportSecurity => "Transport security settings",
        }
    }

    /// The configuration keys shown as this control's evidence.
    fn config_keys(self) -> &'static [&'static str] {
        match self {
            Self::PasswordPolicy => &[
                "password_min_length",
                "password_require",
                "password_min_score",
                "password_history",
                "password_max_age_days",
            ],
            Self::PasswordHashing => &["argon2_memory_kib", "argon2_iterations", "argon2_parallelism"],
            Self::AccountLockout => &["max_login_attempts", "lockout_duration", "ip_max_login_failures"],
            Self::AdminMfa => &["mfa_required", "mfa_required_roles", "mfa_factors"],
            Self::SessionLifetimes => &["access_ttl", "refresh_ttl", "session_lifetime", "session_idle_timeout"],
            Self::EncryptionAtRest => &["encryption_algorithm", "encryption_compression", "encryption_policies"],
            Self::KeyRotation => &["encryption_key_rotation_days", "encryption_policies", "signing_key_rotation_days"],
            Self::MasterKeyProtection => &["master_key", "hsm_enabled", "hsm_module", "hsm_provider"],
            Self::AuditChain => &[],
            Self::AuditRetention => &["compliance_audit_retention_days"],
            Self::PersonalDataRetention => &[
                "compliance_login_history_retention_days",
                "compliance_incident_retention_days",
                "compliance_alert_delivery_retention_days",
            ],
            Self::Erasure => &["compliance_deletion_delay", "compliance_erasure_on_withdrawal"],
            Self::ConsentCoverage => &["compliance_consent_validity", "compliance_consent_validity_per_type"],
            Self::TransportSecurity => &["issuer", "trusted_proxies", "database_url", "redis_url"],
        }
    }
}

/// The controls a standard maps to, each with the requirement it gives evidence for, in report
/// order. The mapping is documented in `docs/compliance.md` (Reports).
pub fn requirements(standard: Standard) -> &'static [(ControlId, &'static str)] {
    use ControlId as C;
    match standard {
        Standard::Gdpr => &[
            (C::PasswordPolicy, "GDPR Art. 32(1)(b)"),
            (C::PasswordHashing, "GDPR Art. 32(1)(a)"),
            (C::AccountLockout, "GDPR Art. 32(1)(b)"),
            (C::AdminMfa, "GDPR Art. 32(1)(b)"),
            (C::EncryptionAtRest, "GDPR Art. 25(1), Art. 32(1)(a)"),
            (C::KeyRotation, "GDPR Art. 32(1)(a)"),
            (C::MasterKeyProtection, "GDPR Art. 32(1)(a)"),
            (C::AuditChain, "GDPR Art. 5(1)(f), Art. 5(2), Art. 30"),
            (C::PersonalDataRetention, "GDPR Art. 5(1)(e)"),
            (C::Erasure, "GDPR Art. 12(3), Art. 17(1)"),
            (C::ConsentCoverage, "GDPR Art. 6(1)(a), Art. 7(1)"),
            (C::TransportSecurity, "GDPR Art. 32(1)(a)"),
        ],
        Standard::Hipaa => &[
            (C::PasswordPolicy, "HIPAA §164.308(a)(5)(ii)(D)"),
            (C::PasswordHashing, "HIPAA §164.312(d)"),
            (C::AccountLockout, "HIPAA §164.312(a)(1), §164.312(d)"),
            (C::AdminMfa, "HIPAA §164.312(d)"),
            (C::SessionLifetimes, "HIPAA §164.312(a)(2)(iii)"),
            (C::EncryptionAtRest, "HIPAA §164.312(a)(2)(iv), §164.312(c)(1)"),
            (C::KeyRotation, "HIPAA §164.312(a)(2)(iv)"),
            (C::MasterKeyProtection, "HIPAA §164.312(a)(2)(iv)"),
            (C::AuditChain, "HIPAA §164.312(b), §164.312(c)(1)"),
            (C::AuditRetention, "HIPAA §164.316(b)(2)(i)"),
            (C::TransportSecurity, "HIPAA §164.312(e)(1)"),
        ],
        Standard::PciDss => &[
            (C::PasswordPolicy, "PCI DSS v4.0 8.3.6, 8.3.7"),
            (C::PasswordHashing, "PCI DSS v4.0 8.3.2"),
            (C::AccountLockout, "PCI DSS v4.0 8.3.4"),
            (C::AdminMfa, "PCI DSS v4.0 8.4.1"),
            (C::SessionLifetimes, "PCI DSS v4.0 8.2.8"),
            (C::EncryptionAtRest, "PCI DSS v4.0 3.5.1"),
            (C::KeyRotation, "PCI DSS v4.0 3.6.1, 3.7.4"),
            (C::MasterKeyProtection, "PCI DSS v4.0 3.6.1.2"),
            (C::AuditChain, "PCI DSS v4.0 10.2.1, 10.3.2"),
            (C::AuditRetention, "PCI DSS v4.0 10.5.1"),
            (C::TransportSecurity, "PCI DSS v4.0 4.2.1"),
        ],
        Standard::Sox => &[
            (C::PasswordPolicy, "SOX ITGC: access to programs and data (authentication)"),
            (C::PasswordHashing, "SOX ITGC: access to programs and data (authentication)"),
            (C::AccountLockout, "SOX ITGC: access to programs and data (authentication)"),
            (C::AdminMfa, "SOX ITGC: access to programs and data (privileged access)"),
            (C::SessionLifetimes, "SOX ITGC: access to programs and data (session control)"),
            (C::AuditChain, "SOX ITGC: logging and monitoring (§404)"),
            (C::AuditRetention, "SOX §802: records kept seven years"),
        ],
        Standard::Iso27001 => &[
            (C::PasswordPolicy, "ISO/IEC 27001:2022 A.5.17"),
            (C::PasswordHashing, "ISO/IEC 27001:2022 A.5.17, A.8.24"),
            (C::AccountLockout, "ISO/IEC 27001:2022 A.8.5"),
            (C::AdminMfa, "ISO/IEC 27001:2022 A.5.15, A.8.2, A.8.5"),
            (C::SessionLifetimes, "ISO/IEC 27001:2022 A.8.5"),
            (C::EncryptionAtRest, "ISO/IEC 27001:2022 A.8.24"),
            (C::KeyRotation, "ISO/IEC 27001:2022 A.8.24"),
            (C::MasterKeyProtection, "ISO/IEC 27001:2022 A.8.24"),
            (C::AuditChain, "ISO/IEC 27001:2022 A.8.15"),
            (C::AuditRetention, "ISO/IEC 27001:2022 A.8.15"),
            (C::PersonalDataRetention, "ISO/IEC 27001:2022 A.5.34, A.8.10"),
            (C::Erasure, "ISO/IEC 27001:2022 A.8.10"),
            (C::ConsentCoverage, "ISO/IEC 27001:2022 A.5.34"),
            (C::TransportSecurity, "ISO/IEC 27001:2022 A.5.14, A.8.24"),
        ],
    }
}

/// What a control came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlStatus {
    /// The measured value meets what the standard's requirement asks of it.
    Met,
    /// It does not; the recommendation says what to change.
    NotMet,
    /// Nothing to measure here (no administrator, no user, facts the caller did not give).
    NotApplicable,
}

impl ControlStatus {
    /// `met`, `not_met` or `not_applicable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::NotMet => "not_met",
            Self::NotApplicable => "not_applicable",
        }
    }
}

/// The query that measured a control, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceQuery {
    /// What was asked (of the store, the audit chain or the keyring).
    pub description: String,
    /// What it answered.
    pub result: String,
}

/// Why a control has its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The value Palisade measured.
    pub measured: String,
    /// What the requirement asks of it.
    pub expected: String,
    /// The settings involved, as configured, secrets masked (`***`).
    pub config: BTreeMap<String, String>,
    /// The query behind the measurement, when there was one.
    pub query: Option<EvidenceQuery>,
}

/// One control in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlResult {
    /// Which control.
    pub id: ControlId,
    /// The standard's requirement it gives evidence for.
    pub requirement: &'static str,
    /// What it came to.
    pub status: ControlStatus,
    /// Why.
    pub evidence: Evidence,
    /// What to change, when it is not met.
    pub recommendation: Option<String>,
}

/// A report of technical control checks for one standard.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The standard.
    pub standard: Standard,
    /// When the measurements were taken.
    pub generated_at: OffsetDateTime,
    /// The start of the range the audit queries covered.
    pub since: OffsetDateTime,
    /// Its end (`generated_at`).
    pub until: OffsetDateTime,
    /// Every control the standard maps to, in order.
    pub controls: Vec<ControlResult>,
}

impl Report {
    /// Controls met.
    pub fn met(&self) -> usize {
        self.controls.iter().filter(|c| c.status == ControlStatus::Met).count()
    }

    /// Controls that count: met or not met (not-applicable ones count neither way).
    pub fn total(&self) -> usize {
        self.controls.iter().filter(|c| c.status != ControlStatus::NotApplicable).count()
    }

    /// `met / total`, from 0 to 1; 0 when no control counts.
    pub fn score(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        // Both are at most a few dozen: exact as f64.
        self.met() as f64 / total as f64
    }

    /// The score as a percentage rounded to one decimal.
    pub fn percent(&self) -> f64 {
        (self.score() * 1000.0).round() / 10.0
    }

    /// The controls not met.
    pub fn violations(&self) -> impl Iterator<Item = &ControlResult> {
        self.controls.iter().filter(|c| c.status == ControlStatus::NotMet)
    }

    /// One sentence per control not met: `"<title> (<requirement>): measured …; expected …"`.
    pub fn violation_summaries(&self) -> Vec<String> {
        self.violations()
            .map(|c| {
                format!(
                    "{} ({}): measured {}; expected {}",
                    c.id.title(),
                    c.requirement,
                    c.evidence.measured,
                    c.evidence.expected
                )
            })
            .collect()
    }

    /// The recommendations of the controls not met, without repeats, in control order.
    pub fn recommendations(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for text in self.violations().filter_map(|c| c.recommendation.as_ref()) {
            if !out.contains(text) {
                out.push(text.clone());
            }
        }
        out
    }
}

/// Where the master key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeySource {
    /// In a PKCS#11 HSM.
    Hsm,
    /// Given by the operator (`PALISADE_MASTER_KEY`).
    Configured,
    /// The generated development key file in the data directory.
    DevelopmentFile,
}

impl MasterKeySource {
    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Hsm => "in an HSM (PKCS#11)",
            Self::Configured => "given by the operator (master_key)",
            Self::DevelopmentFile => "the generated development key file",
        }
    }
}

/// A link to a store: its backend and whether it is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLink {
    /// `sqlite`, `postgres`, `redis`, or `durable store` (the hot data in the durable store).
    pub backend: String,
    /// `None`: not a network link (a local file, or the durable store's own link); `Some(true)`:
    /// TLS (`rediss://`, `sslmode=require` or stricter); `Some(false)`: plain text.
    pub encrypted: Option<bool>,
    /// Whether the host is the local machine (loopback or a Unix socket).
    pub local: bool,
}

/// What the caller knows about the deployment and Palisade cannot see itself. The default knows
/// nothing, and the controls built on it are not applicable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFacts {
    /// The public issuer URL.
    pub issuer: Option<String>,
    /// The peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// The durable store's link.
    pub durable: Option<StoreLink>,
    /// The hot store's link.
    pub hot: Option<StoreLink>,
    /// Where the master key lives.
    pub master_key: Option<MasterKeySource>,
    /// The JWT signing key's rotation period, when it rotates on a schedule.
    pub signing_key_rotation: Option<Duration>,
    /// The configuration, as `key → value`, masked (see [`DeploymentFacts::set_config`]).
    config: BTreeMap<String, String>,
}

impl DeploymentFacts {
    /// Records the configuration, every value masked again on the way in (see [`mask`]), so that a
    /// caller's mistake cannot put a secret in a report.
    pub fn set_config<'a>(&mut self, entries: impl IntoIterator<Item = (&'a str, String, bool)>) {
        for (key, value, secret) in entries {
            self.config.insert(key.to_owned(), mask(&value, secret));
        }
    }

    /// The configuration as recorded (masked).
    pub fn config(&self) -> &BTreeMap<String, String> {
        &self.config
    }
}

/// A configuration value made safe to show. A value of a `secret` setting is kept only when it is
/// `***` or says the setting is unset (`(unset…`); a URL keeps its scheme and host (`redis://cache/***`);
/// anything else becomes `***`. In every other value, the password of each
/// `scheme://user:password@host` becomes `***`.
pub fn mask(value: &str, secret: bool) -> String {
    if !secret {
        return mask_url_passwords(value);
    }
    if value == "***" || value.starts_with("(unset") {
        return value.to_owned();
    }
    url_origin(value).unwrap_or_else(|| "***".to_owned())
}

/// `scheme://host[:port]` of a URL, followed by `/***` when it had credentials, a path or a query.
fn url_origin(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once("://")?;
    let plain = |c: char| c.is_ascii_alphanumeric() || "+-.".contains(c);
    if scheme.is_empty() || !scheme.chars().all(plain) {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (true, authority.get(at + 1..).unwrap_or_default()),
        None => (false, authority),
    };
    if host.is_empty() || !host.chars().all(|c| plain(c) || "[]:".contains(c)) {
        return None;
    }
    let hidden = userinfo || !tail.is_empty();
    Some(if hidden { format!("{scheme}://{host}/***") } else { format!("{scheme}://{host}") })
}

/// Replaces the password of every `scheme://user:password@` in `text` with `***`.
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', '?', '#', ' ', ',']).unwrap_or(tail.len());
        let (authority, after) = tail.split_at(authority_end);
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let (userinfo, host) = authority.split_at(userinfo_end);
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The settings a report judges: a copy of the parts of [`crate::PalisadeSettings`] it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    /// The password policy.
    pub password_policy: PasswordPolicy,
    /// Argon2id parameters of new hashes.
    pub argon2: Argon2Params,
    /// Failed-login limits and the lockout duration.
    pub limits: LoginLimits,
    /// Every login needs a second factor.
    pub mfa_required: bool,
    /// Roles whose logins need a second factor.
    pub mfa_required_roles: Vec<String>,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// The encryption service's policies.
    pub encryption: EncryptionPolicies,
    /// Compliance settings (enabled standards, retention, erasure, consent validity).
    pub compliance: ComplianceSettings,
}

impl ReportSettings {
    /// The parts of `settings` a report judges.
    pub fn of(settings: &crate::PalisadeSettings) -> Self {
        Self {
            password_policy: settings.password_policy.clone(),
            argon2: settings.argon2,
            limits: settings.auth.limits,
            mfa_required: settings.mfa.required,
            mfa_required_roles: settings.mfa.required_roles.clone(),
            access_ttl: settings.access_ttl,
            refresh_ttl: settings.auth.refresh_ttl,
            sessions: settings.sessions,
            encryption: settings.encryption.clone(),
            compliance: settings.compliance.clone(),
        }
    }

    /// How often Palisade's own data key is rotated: the RESTRICTED class's period (see
    /// [`crate::Palisade::data_key_rotation_period`]).
    fn data_key_period(&self) -> Duration {
        Duration::days(i64::from(self.encryption.of(DataClassification::Restricted).rotation_days))
    }
}

/// Counts over the accounts, made by the store in SQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountCounts {
    /// Every account.
    pub users: u64,
    /// Accounts holding a confirmed second factor or a passkey.
    pub users_with_mfa: u64,
    /// Administrators.
    pub admins: u64,
    /// Administrators holding a confirmed second factor or a passkey.
    pub admins_with_mfa: u64,
    /// Accounts whose stored password hash is not Argon2id.
    pub other_hashes: u64,
}

/// How many users hold a live consent of one type, counted by the store (two counts taken one
/// after the other: a user registered in between may make `covered` lag by one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentCounts {
    /// Every account.
    pub users: u64,
    /// Accounts whose latest consent of the type is a giving that has not lapsed.
    pub covered: u64,
}

/// Everything a report measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurements {
    /// When.
    pub now: OffsetDateTime,
    /// The range's start.
    pub since: OffsetDateTime,
    /// The accounts.
    pub accounts: AccountCounts,
    /// Coverage of [`COVERAGE_CONSENT`].
    pub consents: ConsentCounts,
    /// The audit chain's verification.
    pub chain: ChainReport,
    /// When the oldest audit record still held was written.
    pub oldest_audit_record: Option<OffsetDateTime>,
    /// Audit records in the range per kind: `(succeeded, failed)`.
    pub audit_in_range: BTreeMap<String, (u64, u64)>,
    /// Every data key (data, audit, the classes), with which one is active.
    pub keys: Vec<KeyInfo>,
    /// When the key that signs JWTs was made (`None`: HS256, a configured secret).
    pub signing_key_created: Option<OffsetDateTime>,
}

impl Measurements {
    fn audited(&self, kind: &str) -> (u64, u64) {
        self.audit_in_range.get(kind).copied().unwrap_or((0, 0))
    }

    fn audited_with_prefix(&self, prefix: &str) -> u64 {
        self.audit_in_range.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, (s, f))| s + f).sum()
    }

    /// The active key of `purpose`, if the family has one.
    fn active_key(&self, purpose: KeyPurpose) -> Option<&KeyInfo> {
        self.keys.iter().find(|k| k.purpose == purpose && k.active)
    }
}

/// Everything [`evaluate`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportInputs {
    /// The settings judged.
    pub settings: ReportSettings,
    /// The caller's facts.
    pub facts: DeploymentFacts,
    /// What was measured.
    pub measured: Measurements,
}

/// The controls of `standard` evaluated over `inputs`.
pub fn evaluate(standard: Standard, inputs: &ReportInputs) -> Report {
    let controls = requirements(standard)
        .iter()
        .map(|(id, requirement)| {
            let outcome = check(*id, standard, inputs);
            let config = id
                .config_keys()
                .iter()
                .filter_map(|key| inputs.facts.config.get(*key).map(|value| ((*key).to_owned(), value.clone())))
                .collect();
            ControlResult {
                id: *id,
                requirement,
                status: outcome.status,
                recommendation: (outcome.status == ControlStatus::NotMet).then_some(outcome.recommendation),
                evidence: Evidence {
                    measured: outcome.measured,
                    expected: outcome.expected,
                    config,
                    query: outcome.query,
                },
            }
        })
        .collect();
    Report {
        standard,
        generated_at: inputs.measured.now,
        since: inputs.measured.since,
        until: inputs.measured.now,
        controls,
    }
}

/// One control's verdict before it is placed in a report.
struct Finding {
    status: ControlStatus,
    measured: String,
    expected: String,
    query: Option<EvidenceQuery>,
    recommendation: String,
}

fn verdict(ok: bool) -> ControlStatus {
    if ok { ControlStatus::Met } else { ControlStatus::NotMet }
}

fn query(description: impl Into<String>, result: impl Into<String>) -> Option<EvidenceQuery> {
    Some(EvidenceQuery { description: description.into(), result: result.into() })
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.whole_seconds())
}

fn days(d: Duration) -> String {
    format!("{} days", d.whole_days())
}

fn check(id: ControlId, standard: Standard, inputs: &ReportInputs) -> Finding {
    match id {
        ControlId::PasswordPolicy => password_policy(standard, inputs),
        ControlId::PasswordHashing => password_hashing(inputs),
        ControlId::AccountLockout => account_lockout(standard, inputs),
        ControlId::AdminMfa => admin_mfa(inputs),
        ControlId::SessionLifetimes => session_lifetimes(standard, inputs),
        ControlId::EncryptionAtRest => encryption_at_rest(inputs),
        ControlId::KeyRotation => key_rotation(inputs),
        ControlId::MasterKeyProtection => master_key_protection(inputs),
        ControlId::AuditChain => audit_chain(inputs),
        ControlId::AuditRetention => audit_retention(standard, inputs),
        ControlId::PersonalDataRetention => personal_data_retention(inputs),
        ControlId::Erasure => erasure(inputs),
        ControlId::ConsentCoverage => consent_coverage(inputs),
        ControlId::TransportSecurity => transport_security(inputs),
    }
}

/// The shortest password any standard here is checked against (PCI DSS 8.3.6; NIST SP 800-63B
/// asks 8 at least, 15 for single-factor).
const MIN_PASSWORD_LENGTH: usize = 12;
/// Previous passwords that may not be reused (PCI DSS 8.3.7: not any of the last four).
const MIN_PASSWORD_HISTORY: u32 = 4;

fn password_policy(standard: Standard, inputs: &ReportInputs) -> Finding {
    let p = &inputs.settings.password_policy;
    let mut missing = Vec::new();
    if p.min_length < MIN_PASSWORD_LENGTH {
        missing.push(format!("raise password_min_length to at least {MIN_PASSWORD_LENGTH}"));
    }
    if !p.reject_common {
        missing.push("turn the common-password list on".to_owned());
    }
    if p.history < MIN_PASSWORD_HISTORY {
        missing.push(format!("set password_history to at least {MIN_PASSWORD_HISTORY}"));
    }
    let pci = standard == Standard::PciDss;
    let alphanumeric = p.require_digit && (p.require_uppercase || p.require_lowercase);
    if pci && !alphanumeric {
        missing.push("require digits and letters (password_require = digit,lower)".to_owned());
    }
    let mut expected = format!(
        "at least {MIN_PASSWORD_LENGTH} characters, common passwords refused, the last {MIN_PASSWORD_HISTORY} \
         passwords not reusable"
    );
    if pci {
        expected.push_str(", numeric and alphabetic characters required");
    }
    let classes: Vec<&str> = [
        (p.require_uppercase, "upper"),
        (p.require_lowercase, "lower"),
        (p.require_digit, "digit"),
        (p.require_symbol, "symbol"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let measured = format!(
        "minimum length {}, common-password list {}, history {}, required classes {}, minimum strength score {}",
        p.min_length,
        if p.reject_common { "on" } else { "off" },
        p.history,
        if classes.is_empty() { "none".to_owned() } else { classes.join(", ") },
        p.min_zxcvbn_score,
    );
    let (changed, refused) = inputs.measured.audited("auth.password_changed");
    Finding {
        status: verdict(missing.is_empty()),
        measured,
        expected,
        query: query(
            "password changes in the range (audit kind auth.password_changed)",
            format!("{changed} accepted, {refused} refused"),
        ),
        recommendation: format!("Strengthen the password policy: {}.", missing.join("; ")),
    }
}

fn password_hashing(inputs: &ReportInputs) -> Finding {
    let a = inputs.settings.argon2;
    let floor = Argon2Params::OWASP_MINIMUM;
    let strong = a.memory_kib >= floor.memory_kib && a.iterations >= floor.iterations && a.parallelism >= 1;
    let others = inputs.measured.accounts.other_hashes;
    let users = inputs.measured.accounts.users;
    Finding {
        status: verdict(strong && others == 0),
        measured: format!(
            "Argon2id m={} KiB, t={}, p={}; {others} of {users} stored hashes are not Argon2id",
            a.memory_kib, a.iterations, a.parallelism
        ),
        expected: format!(
            "Argon2id at or above the OWASP minimum (m={} KiB, t={}, p={}) and every stored hash Argon2id",
            floor.memory_kib, floor.iterations, floor.parallelism
        ),
        query: query(
            "accounts whose stored password hash is not Argon2id (store count)",
            format!("{others} of {users}"),
        ),
        recommendation: if strong {
            "Accounts with a hash of another kind get Argon2id when they next log in; reset the passwords of \
             those that do not."
                .to_owned()
        } else {
            "Raise argon2_memory_kib and argon2_iterations to at least the OWASP minimum.".to_owned()
        },
    }
}

fn account_lockout(standard: Standard, inputs: &ReportInputs) -> Finding {
    let limits = inputs.settings.limits;
    // PCI DSS 8.3.4: not more than 10 attempts, locked for at least 30 minutes.
    let min_lockout = if standard == Standard::PciDss { Duration::minutes(30) } else { Duration::minutes(15) };
    let ok = (1..=10).contains(&limits.max_attempts) && limits.window >= min_lockout;
    let (lockouts, _) = inputs.measured.audited("auth.lockout");
    let (refused, failed) = inputs.measured.audited("auth.login_failed");
    Finding {
        status: verdict(ok),
        measured: format!(
            "locked after {} failed logins for {}; {} failures per address per window",
            limits.max_attempts,
            seconds(limits.window),
            limits.ip_max_failures
        ),
        expected: format!("locked after at most 10 failed logins, for at least {}", seconds(min_lockout)),
        query: query(
            "lockouts and failed logins in the range (audit kinds auth.lockout, auth.login_failed)",
            format!("{lockouts} lockouts, {} failed logins", refused + failed),
        ),
        recommendation: format!(
            "Set max_login_attempts to 10 or fewer and lockout_duration to at least {} seconds.",
            min_lockout.whole_seconds()
        ),
    }
}

fn admin_mfa(inputs: &ReportInputs) -> Finding {
    let a = inputs.measured.accounts;
    let enforced = inputs.settings.mfa_required || inputs.settings.mfa_required_roles.iter().any(|r| r == "admin");
    let status = if a.admins == 0 { ControlStatus::NotApplicable } else { verdict(a.admins_with_mfa >= a.admins) };
    let without = a.admins.saturating_sub(a.admins_with_mfa);
    let mut recommendation = format!(
        "{without} administrator(s) hold neither a confirmed second factor nor a passkey: have them enrol one \
         (POST /auth/mfa/totp/setup or a passkey)"
    );
    if !enforced {
        recommendation.push_str(", and set mfa_required_roles = admin so no administrator can log in without one");
    }
    recommendation.push('.');
    Finding {
        status,
        measured: format!(
            "{} of {} administrators ({}); {} of {} accounts overall; a second factor {} for administrators",
            a.admins_with_mfa,
            a.admins,
            percent(a.admins_with_mfa, a.admins),
            a.users_with_mfa,
            a.users,
            if enforced { "is required" } else { "is not required" }
        ),
        expected: "every administrator holds a confirmed second factor or a passkey".to_owned(),
        query: query(
            "administrators holding a confirmed second factor or a passkey (store count)",
            format!("{} of {}", a.admins_with_mfa, a.admins),
        ),
        recommendation,
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "n/a".to_owned();
    }
    // Counts well below 2^53: exact as f64.
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

fn session_lifetimes(standard: Standard, inputs: &ReportInputs) -> Finding {
    let s = &inputs.settings;
    // PCI DSS 8.2.8: idle for more than 15 minutes needs authenticating again.
    let max_idle = if standard == Standard::PciDss { Duration::minutes(15) } else { Duration::minutes(30) };
    let max_access = Duration::hours(1);
    let max_lifetime = Duration::hours(24);
    let ok = s.access_ttl <= max_access && s.sessions.idle_timeout <= max_idle && s.sessions.lifetime <= max_lifetime;
    let (reuse, _) = inputs.measured.audited("token.refresh_reuse");
    Finding {
        status: verdict(ok),
        measured: format!(
            "access token {}, session idle timeout {}, session lifetime {}, refresh token {}",
            seconds(s.access_ttl),
            seconds(s.sessions.idle_timeout),
            seconds(s.sessions.lifetime),
            seconds(s.refresh_ttl)
        ),
        expected: format!(
            "access token at most {}, idle timeout at most {}, session lifetime at most {}",
            seconds(max_access),
            seconds(max_idle),
            seconds(max_lifetime)
        ),
        query: query(
            "refresh tokens presented again after use in the range (audit kind token.refresh_reuse)",
            format!("{reuse} (each revoked its whole family)"),
        ),
        recommendation: format!(
            "Set access_ttl to at most {}, session_idle_timeout to at most {} and session_lifetime to at most {} \
             seconds.",
            max_access.whole_seconds(),
            max_idle.whole_seconds(),
            max_lifetime.whole_seconds()
        ),
    }
}

fn key_age(now: OffsetDateTime, key: &KeyInfo) -> Duration {
    now - key.created_at
}

fn encryption_at_rest(inputs: &ReportInputs) -> Finding {
    let m = &inputs.measured;
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for (name, purpose) in [("Palisade's own data", KeyPurpose::Data), ("audit MAC", KeyPurpose::Audit)] {
        match m.active_key(purpose) {
            Some(key) => lines.push(format!("{name}: v{} ({} old)", key.version, days(key_age(m.now, key)))),
            None => {
                lines.push(format!("{name}: no key"));
                problems.push(format!("{name} has no key"));
            }
        }
    }
    for (class, policy) in inputs.settings.encryption.all() {
        let key = m.active_key(KeyPurpose::Class(class));
        let state = match key {
            Some(key) => format!("v{} {}", key.version, policy.algorithm),
            None => format!("no data sealed yet ({})", policy.algorithm),
        };
        lines.push(format!("{class}: {state}{}", if policy.compression { ", compression allowed" } else { "" }));
        if class.is_sensitive() && policy.compression {
            problems.push(format!("{class} allows compression"));
        }
    }
    let families = m.keys.iter().filter(|k| k.active).count();
    Finding {
        status: verdict(problems.is_empty()),
        measured: lines.join("; "),
        expected: "an active data key for Palisade's own data and the audit chain, every classification sealed \
                   with an authenticated cipher (AES-256-GCM or XChaCha20-Poly1305) under its own key family, \
                   no compression of RESTRICTED or TOP_SECRET data"
            .to_owned(),
        query: query("active data keys per family (keyring status)", format!("{families} active families")),
        recommendation: format!("Fix the encryption policies: {}.", problems.join("; ")),
    }
}

fn key_rotation(inputs: &ReportInputs) -> Finding {
    let m = &inputs.measured;
    let s = &inputs.settings;
    let mut lines = Vec::new();
    let mut overdue = Vec::new();
    let mut families: Vec<(String, KeyPurpose, Duration)> =
        vec![("data key".to_owned(), KeyPurpose::Data, s.data_key_period())];
    for (class, policy) in s.encryption.all() {
        families.push((
            format!("{class} key"),
            KeyPurpose::Class(class),
            Duration::days(i64::from(policy.rotation_days)),
        ));
    }
    for (name, purpose, period) in families {
        let Some(key) = m.active_key(purpose) else { continue };
        let age = key_age(m.now, key);
        lines.push(format!("{name} {} old (period {})", days(age), days(period)));
        if age > period + ROTATION_GRACE {
            overdue.push(format!("{name} is {} old, past its {} period", days(age), days(period)));
        }
    }
    match (m.signing_key_created, inputs.facts.signing_key_rotation) {
        (Some(created), schedule) => {
            let age = m.now - created;
            let limit = schedule.unwrap_or(UNSCHEDULED_SIGNING_KEY_AGE);
            let how = match schedule {
                Some(period) => format!("rotated every {}", days(period)),
                None => "no rotation schedule".to_owned(),
            };
            lines.push(format!("JWT signing key {} old ({how})", days(age)));
            if age > limit + ROTATION_GRACE {
                overdue.push(format!("the JWT signing key is {} old", days(age)));
            }
        }
        (None, _) => lines.push("JWT signing key: an HS256 secret from the configuration".to_owned()),
    }
    let (rotations, _) = m.audited("key.rotated");
    Finding {
        status: verdict(overdue.is_empty()),
        measured: lines.join("; "),
        expected: format!(
            "every data key younger than its rotation period (plus {} for the schedule), the JWT signing key \
             younger than its rotation period or, without a schedule, {}",
            days(ROTATION_GRACE),
            days(UNSCHEDULED_SIGNING_KEY_AGE)
        ),
        query: query("key rotations in the range (audit kind key.rotated)", format!("{rotations}")),
        recommendation: format!(
            "Rotate the overdue keys (palisade keys rotate) and keep the server running so the schedule does it \
             (signing_key_rotation_days for the JWT key): {}.",
            overdue.join("; ")
        ),
    }
}

fn master_key_protection(inputs: &ReportInputs) -> Finding {
    let (status, measured) = match inputs.facts.master_key {
        None => (ControlStatus::NotApplicable, "not known to this report".to_owned()),
        Some(source) => (verdict(source != MasterKeySource::DevelopmentFile), source.describe().to_owned()),
    };
    Finding {
        status,
        measured,
        expected: "the master key in an HSM or given by the operator from a secret store, never the generated \
                   development key file"
            .to_owned(),
        query: None,
        recommendation: "Set PALISADE_MASTER_KEY from a secret store (openssl rand -base64 32) or keep the master \
                         key in an HSM (hsm_module), and move the data keys to it (palisade keys rotate)."
            .to_owned(),
    }
}

fn audit_chain(inputs: &ReportInputs) -> Finding {
    let chain = &inputs.measured.chain;
    let broken = chain.broken.as_ref().map(|link| format!("record {}: {}", link.seq, link.reason));
    let result = format!(
        "{} records verified ({} of them redacted by an erasure); first broken link: {}",
        chain.verified,
        chain.redacted,
        broken.as_deref().unwrap_or("none")
    );
    Finding {
        status: verdict(chain.broken.is_none()),
        measured: result.clone(),
        expected: "every record links to the one before and its HMAC-SHA256 verifies".to_owned(),
        query: query("verify the whole audit chain (as palisade audit verify does)", result),
        recommendation: "Investigate the broken link: compare with a backup and with the exported chain head; \
                         the records from it on cannot be trusted."
            .to_owned(),
    }
}

fn audit_retention(standard: Standard, inputs: &ReportInputs) -> Finding {
    let (minimum, why) = match standard {
        Standard::Hipaa => (Duration::days(6 * 365), "six years"),
        Standard::Sox => (Duration::days(2555), "seven years"),
        Standard::PciDss => (Duration::days(365), "twelve months"),
        // ISO 27001 leaves the period to the organisation; GDPR sets none (it does not map here).
        Standard::Iso27001 | Standard::Gdpr => (Duration::days(365), "one year (the organisation's choice)"),
    };
    let kept = inputs.settings.compliance.retention.audit;
    let m = &inputs.measured;
    let oldest = match m.oldest_audit_record {
        Some(at) => format!("the oldest held record is {} old", days(m.now - at)),
        None => "the chain is empty".to_owned(),
    };
    Finding {
        status: verdict(kept >= minimum),
        measured: format!("audit records kept {}", days(kept)),
        expected: format!("kept at least {} ({why})", days(minimum)),
        query: query("the oldest audit record still held (store)", oldest),
        recommendation: format!("Set compliance_audit_retention_days to at least {}.", minimum.whole_days()),
    }
}

/// The longest a login history (addresses, locations) should be kept.
const MAX_LOGIN_HISTORY: Duration = Duration::days(730);
/// The longest finished alert deliveries (addresses, phone numbers) should be kept.
const MAX_ALERT_DELIVERIES: Duration = Duration::days(365);

fn personal_data_retention(inputs: &ReportInputs) -> Finding {
    let r = &inputs.settings.compliance.retention;
    Finding {
        status: verdict(r.login_history <= MAX_LOGIN_HISTORY && r.alert_deliveries <= MAX_ALERT_DELIVERIES),
        measured: format!(
            "login history kept {}, alert deliveries {}, resolved incidents {}",
            days(r.login_history),
            days(r.alert_deliveries),
            days(r.incidents)
        ),
        expected: format!(
            "login history at most {}, alert deliveries at most {}",
            days(MAX_LOGIN_HISTORY),
            days(MAX_ALERT_DELIVERIES)
        ),
        query: None,
        recommendation: format!(
            "Lower compliance_login_history_retention_days to at most {} and compliance_alert_delivery_retention_days \
             to at most {}.",
            MAX_LOGIN_HISTORY.whole_days(),
            MAX_ALERT_DELIVERIES.whole_days()
        ),
    }
}

/// GDPR Art. 12(3): a request is answered within one month.
const MAX_DELETION_DELAY: Duration = Duration::days(30);

fn erasure(inputs: &ReportInputs) -> Finding {
    let c = &inputs.settings.compliance;
    let on_withdrawal = c.erasure_on_withdrawal.iter().any(|t| t == COVERAGE_CONSENT);
    let erasures = inputs.measured.audited_with_prefix("compliance.erasure");
    Finding {
        status: verdict(c.deletion_delay <= MAX_DELETION_DELAY && on_withdrawal),
        measured: format!(
            "erasure carried out {} after the request; withdrawing {} consent {}",
            seconds(c.deletion_delay),
            if c.erasure_on_withdrawal.is_empty() { "any".to_owned() } else { c.erasure_on_withdrawal.join(", ") },
            if c.erasure_on_withdrawal.is_empty() { "schedules nothing" } else { "schedules it" }
        ),
        expected: format!(
            "erasure within {} ({}), and withdrawing the {COVERAGE_CONSENT} consent schedules it",
            days(MAX_DELETION_DELAY),
            seconds(MAX_DELETION_DELAY)
        ),
        query: query("erasure events in the range (audit kinds compliance.erasure*)", format!("{erasures}")),
        recommendation: format!(
            "Set compliance_deletion_delay to at most {} seconds and keep {COVERAGE_CONSENT} in \
             compliance_erasure_on_withdrawal.",
            MAX_DELETION_DELAY.whole_seconds()
        ),
    }
}

fn consent_coverage(inputs: &ReportInputs) -> Finding {
    let c = inputs.measured.consents;
    let status = if c.users == 0 { ControlStatus::NotApplicable } else { verdict(c.covered >= c.users) };
    Finding {
        status,
        measured: format!("{} of {} users ({})", c.covered, c.users, percent(c.covered, c.users)),
        expected: format!("every user holds a live {COVERAGE_CONSENT} consent (given, not withdrawn, not lapsed)"),
        query: query(
            format!("users whose latest {COVERAGE_CONSENT} consent is a live giving (store count over the ledger)"),
            format!("{} of {}", c.covered, c.users),
        ),
        recommendation: format!(
            "{} user(s) hold no live {COVERAGE_CONSENT} consent: ask them again (POST /compliance/consents), or \
             record the other lawful basis their data is processed on.",
            c.users.saturating_sub(c.covered)
        ),
    }
}

fn transport_security(inputs: &ReportInputs) -> Finding {
    let f = &inputs.facts;
    let Some(issuer) = &f.issuer else {
        return Finding {
            status: ControlStatus::NotApplicable,
            measured: "not known to this report".to_owned(),
            expected: "an https issuer".to_owned(),
            query: None,
            recommendation: String::new(),
        };
    };
    let mut problems = Vec::new();
    let https = issuer.to_ascii_lowercase().starts_with("https://");
    if !https {
        problems.push(format!("the issuer {issuer} is not https"));
    }
    let open_proxy = f.trusted_proxies.iter().any(|p| p.ends_with("/0"));
    if open_proxy {
        problems.push("trusted_proxies trusts every address".to_owned());
    }
    let mut links = Vec::new();
    for (name, link) in [("durable store", &f.durable), ("hot store", &f.hot)] {
        let Some(link) = link else { continue };
        let state = match (link.encrypted, link.local) {
            (None, _) => "not a network link".to_owned(),
            (Some(true), _) => "TLS".to_owned(),
            (Some(false), true) => "plain text on the local machine".to_owned(),
            (Some(false), false) => {
                problems.push(format!("the {name} ({}) is reached in plain text", link.backend));
                "plain text over the network".to_owned()
            }
        };
        links.push(format!("{name} {}: {state}", link.backend));
    }
    Finding {
        status: verdict(problems.is_empty()),
        measured: format!(
            "issuer {issuer}; trusted proxies {}; {}",
            if f.trusted_proxies.is_empty() { "none".to_owned() } else { f.trusted_proxies.join(", ") },
            links.join("; ")
        ),
        expected: "an https issuer (TLS at Palisade's edge, with HSTS set there: Palisade itself serves plain \
                   HTTP behind it), no proxy trusted for every address, stores on other hosts reached over TLS"
            .to_owned(),
        query: None,
        recommendation: format!(
            "Serve Palisade behind TLS and set issuer to its https URL; list only your proxies in trusted_proxies; \
             use rediss:// and sslmode=verify-full for stores on other hosts ({}).",
            problems.join("; ")
        ),
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The caller may not read reports.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The standard is turned off in this deployment; `setting` turns it on.
    #[error("{standard} reports are turned off in this deployment: set {setting} = true to check its controls")]
    Disabled {
        /// The standard asked for.
        standard: Standard,
        /// The setting that turns it on.
        setting: &'static str,
    },
    /// The range is out of bounds.
    #[error("range: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit chain could not be read or the report could not be audited.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The keyring could not be read.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// The signing keys could not be read.
    #[error(transparent)]
    SigningKeys(#[from] SigningKeyError),
}

impl ReportError {
    /// Whether this failure is a store being unreachable.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_unavailable(),
            Self::Audit(e) => e.is_unavailable(),
            Self::Crypto(e) => e.is_unavailable(),
            Self::SigningKeys(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

/// The setting that turns `standard`'s reports on (the guide's `COMPLIANCE_*_ENABLED`).
pub fn enabled_setting(standard: Standard) -> &'static str {
    match standard {
        Standard::Gdpr => "compliance_gdpr_enabled",
        Standard::Hipaa => "compliance_hipaa_enabled",
        Standard::PciDss => "compliance_pci_dss_enabled",
        Standard::Sox => "compliance_sox_enabled",
        Standard::Iso27001 => "compliance_iso27001_enabled",
    }
}

/// What [`ComplianceReports`] is built from.
pub struct ReportParts {
    /// The durable store (counts, the audit records, the keys).
    pub store: Arc<dyn DurableStore>,
    /// The audit chain (verification, and the record of each report).
    pub audit: Arc<AuditLog>,
    /// The keyring (key status).
    pub keyring: Arc<Keyring>,
    /// The JWT signing keys (their age).
    pub signing_keys: Arc<SigningKeys>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The settings judged.
    pub settings: ReportSettings,
    /// The caller's facts about the deployment.
    pub facts: DeploymentFacts,
}

/// Makes reports of technical control checks.
pub struct ComplianceReports {
    parts: ReportParts,
}

impl ComplianceReports {
    /// The service over its parts.
    pub fn new(parts: ReportParts) -> Self {
        Self { parts }
    }

    /// The standards reports may be asked for.
    pub fn enabled(&self) -> &[Standard] {
        &self.parts.settings.compliance.standards
    }

    /// The report of `standard` over the last `range`, for `principal`, audited as
    /// `compliance.report`.
    ///
    /// **Permissions** - `admin`, `compliance:read` or `compliance:admin`.
    pub async fn report(
        &self,
        principal: &Principal,
        standard: Standard,
        range: Duration,
        meta: &RequestMeta,
    ) -> Result<Report, ReportError> {
        if !may_read_all(principal) {
            return Err(AuthError::InsufficientScope(super::SCOPE_READ).into());
        }
        self.generate(&principal.actor(), standard, range, meta).await
    }

    /// The report of `standard` for an operator on the server's own machine (`palisade compliance
    /// report`), who reads the configuration and the database already; audited with actor `cli`.
    pub async fn report_for_operator(&self, standard: Standard, range: Duration) -> Result<Report, ReportError> {
        self.generate("cli", standard, range, &RequestMeta::default()).await
    }

    async fn generate(
        &self,
        actor: &str,
        standard: Standard,
        range: Duration,
        meta: &RequestMeta,
    ) -> Result<Report, ReportError> {
        if !self.enabled().contains(&standard) {
            return Err(ReportError::Disabled { standard, setting: enabled_setting(standard) });
        }
        if range < MIN_RANGE || range > MAX_RANGE {
            return Err(ReportError::Invalid(format!(
                "{} seconds is outside {} to {} seconds",
                range.whole_seconds(),
                MIN_RANGE.whole_seconds(),
                MAX_RANGE.whole_seconds()
            )));
        }
        let measured = self.measure(range).await?;
        let inputs = ReportInputs { settings: self.parts.settings.clone(), facts: self.parts.facts.clone(), measured };
        let report = evaluate(standard, &inputs);
        let event = AuditEvent::new(AuditKind::ComplianceReport, Outcome::Success)
            .actor(actor)
            .request(meta.clone())
            .detail("standard", standard.as_str())
            .detail("range_seconds", range.whole_seconds())
            .detail("requirements_met", report.met())
            .detail("requirements_total", report.total())
            .detail("violations", report.violations().map(|c| c.id.as_str()).collect::<Vec<_>>());
        self.parts.audit.append(event).await?;
        Ok(report)
    }

    /// Takes every measurement: a few counting queries, the keys, and one walk of the chain.
    async fn measure(&self, range: Duration) -> Result<Measurements, ReportError> {
        let p = &self.parts;
        let now = p.clock.now();
        let since = now - range;
        let (accounts, consented, chain, oldest, counts, keys, signing) = tokio::join!(
            p.store.account_counts(),
            p.store.count_live_consents(COVERAGE_CONSENT, now),
            p.audit.verify(),
            p.store.audit_records(0, 1),
            p.store.audit_counts(since, now, range),
            p.keyring.status(),
            p.signing_keys.status(),
        );
        let mut audit_in_range: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for count in counts? {
            let entry = audit_in_range.entry(count.kind).or_default();
            if count.outcome == Outcome::Success.as_str() {
                entry.0 += count.count;
            } else {
                entry.1 += count.count;
            }
        }
        let signing_key_created = signing?.into_iter().find(|k| k.state == "signing").map(|k| k.created_at);
        let accounts = accounts?;
        Ok(Measurements {
            now,
            since,
            accounts,
            consents: ConsentCounts { users: accounts.users, covered: consented?.min(accounts.users) },
            chain: chain?,
            oldest_audit_record: oldest?.first().map(|r| r.at),
            audit_in_range,
            keys: keys?,
            signing_key_created,
        })
    }
}

#[cfg(test)]
mod tests;
