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
//! - `controls.rs`: [`evaluate`], a pure function from [`ReportInputs`] to a [`Report`]; every
//!   control and every threshold is there, which is what the unit tests drive.
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

mod controls;
pub use controls::evaluate;

#[cfg(test)]
mod tests;
