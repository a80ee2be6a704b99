//! The controls as a table: each one met and not met from measured inputs, per standard where the
//! thresholds differ; the score's arithmetic; and masking, which must never let a secret through.

use time::macros::datetime;

use super::*;
use crate::audit::BrokenLink;
use crate::crypto::Algorithm;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

fn key(purpose: KeyPurpose, age_days: i64) -> KeyInfo {
    KeyInfo {
        id: uuid::Uuid::new_v4(),
        purpose,
        version: 1,
        provider: "local:test".into(),
        created_at: NOW - Duration::days(age_days),
        active: true,
    }
}

/// A deployment where every control is met.
fn good() -> ReportInputs {
    let mut facts = DeploymentFacts {
        issuer: Some("https://id.example.com".into()),
        trusted_proxies: vec!["10.0.0.0/8".into()],
        durable: Some(StoreLink { backend: "postgres".into(), encrypted: Some(true), local: false }),
        hot: Some(StoreLink { backend: "redis".into(), encrypted: Some(true), local: false }),
        master_key: Some(MasterKeySource::Configured),
        signing_key_rotation: Some(Duration::days(90)),
        ..DeploymentFacts::default()
    };
    facts.set_config([("password_min_length", "12".to_owned(), false)]);
    let mut settings = ReportSettings::of(&crate::PalisadeSettings::default());
    settings.mfa_required_roles = vec!["admin".into()];
    ReportInputs {
        settings,
        facts,
        measured: Measurements {
            now: NOW,
            since: NOW - DEFAULT_RANGE,
            accounts: AccountCounts { users: 10, users_with_mfa: 4, admins: 2, admins_with_mfa: 2, other_hashes: 0 },
            consents: ConsentCounts { users: 10, covered: 10 },
            chain: ChainReport { verified: 42, redacted: 0, checkpoint: None, broken: None },
            oldest_audit_record: Some(NOW - Duration::days(3)),
            audit_in_range: BTreeMap::from([("auth.lockout".to_owned(), (2, 0))]),
            keys: vec![
                key(KeyPurpose::Data, 10),
                key(KeyPurpose::Audit, 10),
                key(KeyPurpose::Class(DataClassification::Restricted), 30),
            ],
            signing_key_created: Some(NOW - Duration::days(20)),
        },
    }
}

fn status(standard: Standard, inputs: &ReportInputs, id: ControlId) -> ControlStatus {
    let report = evaluate(standard, inputs);
    match report.controls.iter().find(|c| c.id == id) {
        Some(control) => control.status,
        None => panic!("{standard} does not map {}", id.as_str()),
    }
}

#[test]
fn a_good_deployment_meets_every_control_of_every_standard() {
    let mut inputs = good();
    // PCI DSS asks more of the defaults: character classes, 30-minute lockouts, 15-minute idle.
    inputs.settings.password_policy.require_digit = true;
    inputs.settings.password_policy.require_lowercase = true;
    inputs.settings.limits.window = Duration::minutes(30);
    inputs.settings.sessions.idle_timeout = Duration::minutes(15);
    inputs.settings.compliance.retention.audit = Duration::days(2555);
    for standard in Standard::ALL {
        let report = evaluate(standard, &inputs);
        let not_met: Vec<_> = report.violation_summaries();
        assert!(not_met.is_empty(), "{standard}: {not_met:?}");
        assert_eq!(report.met(), report.total(), "{standard}");
        assert_eq!((report.score(), report.percent()), (1.0, 100.0));
        assert!(report.recommendations().is_empty());
    }
}

type Change = fn(&mut ReportInputs);

/// `(what, change, control, standard, status after the change)`; every row starts from [`good`].
const TABLE: &[(&str, Change, ControlId, Standard, ControlStatus)] = {
    use ControlId as C;
    use ControlStatus::{Met, NotApplicable as Na, NotMet};
    use Standard as S;
    &[
        ("the default policy", |_| {}, C::PasswordPolicy, S::Gdpr, Met),
        ("11 characters", |i| i.settings.password_policy.min_length = 11, C::PasswordPolicy, S::Gdpr, NotMet),
        ("8 characters", |i| i.settings.password_policy.min_length = 8, C::PasswordPolicy, S::Iso27001, NotMet),
        ("no common list", |i| i.settings.password_policy.reject_common = false, C::PasswordPolicy, S::Hipaa, NotMet),
        ("history 3", |i| i.settings.password_policy.history = 3, C::PasswordPolicy, S::Sox, NotMet),
        ("PCI without classes", |_| {}, C::PasswordPolicy, S::PciDss, NotMet),
        (
            "PCI with digit and lower",
            |i| {
                i.settings.password_policy.require_digit = true;
                i.settings.password_policy.require_lowercase = true;
            },
            C::PasswordPolicy,
            S::PciDss,
            Met,
        ),
        ("OWASP minimum", |i| i.settings.argon2 = Argon2Params::OWASP_MINIMUM, C::PasswordHashing, S::PciDss, Met),
        ("below OWASP memory", |i| i.settings.argon2.memory_kib = 8192, C::PasswordHashing, S::PciDss, NotMet),
        ("a bcrypt hash left", |i| i.measured.accounts.other_hashes = 1, C::PasswordHashing, S::Gdpr, NotMet),
        ("5 attempts, 15 min", |_| {}, C::AccountLockout, S::Gdpr, Met),
        ("11 attempts", |i| i.settings.limits.max_attempts = 11, C::AccountLockout, S::Gdpr, NotMet),
        ("lockout 14 min", |i| i.settings.limits.window = Duration::minutes(14), C::AccountLockout, S::Hipaa, NotMet),
        ("PCI, 15 min", |_| {}, C::AccountLockout, S::PciDss, NotMet),
        ("PCI, 30 min", |i| i.settings.limits.window = Duration::minutes(30), C::AccountLockout, S::PciDss, Met),
        ("both admins enrolled", |_| {}, C::AdminMfa, S::PciDss, Met),
        ("one admin of two", |i| i.measured.accounts.admins_with_mfa = 1, C::AdminMfa, S::PciDss, NotMet),
        (
            "no admin at all",
            |i| {
                i.measured.accounts.admins = 0;
                i.measured.accounts.admins_with_mfa = 0;
            },
            C::AdminMfa,
            S::Sox,
            Na,
        ),
        ("default lifetimes", |_| {}, C::SessionLifetimes, S::Hipaa, Met),
        ("PCI, 30 min idle", |_| {}, C::SessionLifetimes, S::PciDss, NotMet),
        ("2 h access", |i| i.settings.access_ttl = Duration::hours(2), C::SessionLifetimes, S::Sox, NotMet),
        (
            "2-day session",
            |i| i.settings.sessions.lifetime = Duration::days(2),
            C::SessionLifetimes,
            S::Iso27001,
            NotMet,
        ),
        ("the default policies", |_| {}, C::EncryptionAtRest, S::Hipaa, Met),
        (
            "RESTRICTED compressible",
            |i| {
                let items = ["RESTRICTED.compression=true".to_owned()];
                i.settings.encryption = i.settings.encryption.clone().with_overrides(&items, false).unwrap();
            },
            C::EncryptionAtRest,
            S::PciDss,
            NotMet,
        ),
        (
            "XChaCha20 everywhere",
            |i| {
                let items = [format!("TOP_SECRET.algorithm={}", Algorithm::XChaCha20Poly1305)];
                i.settings.encryption = i.settings.encryption.clone().with_overrides(&items, false).unwrap();
            },
            C::EncryptionAtRest,
            S::Gdpr,
            Met,
        ),
        (
            "no audit key",
            |i| i.measured.keys.retain(|k| k.purpose != KeyPurpose::Audit),
            C::EncryptionAtRest,
            S::Gdpr,
            NotMet,
        ),
        ("fresh keys", |_| {}, C::KeyRotation, S::Gdpr, Met),
        ("data key 92 days old", |i| i.measured.keys[0] = key(KeyPurpose::Data, 92), C::KeyRotation, S::Hipaa, NotMet),
        (
            "RESTRICTED key within its grace day",
            |i| i.measured.keys[2] = key(KeyPurpose::Class(DataClassification::Restricted), 91),
            C::KeyRotation,
            S::Hipaa,
            Met,
        ),
        (
            "signing key past its schedule",
            |i| i.measured.signing_key_created = Some(NOW - Duration::days(100)),
            C::KeyRotation,
            S::PciDss,
            NotMet,
        ),
        (
            "unscheduled signing key of 200 days",
            |i| {
                i.facts.signing_key_rotation = None;
                i.measured.signing_key_created = Some(NOW - Duration::days(200));
            },
            C::KeyRotation,
            S::Iso27001,
            Met,
        ),
        (
            "unscheduled signing key of 400 days",
            |i| {
                i.facts.signing_key_rotation = None;
                i.measured.signing_key_created = Some(NOW - Duration::days(400));
            },
            C::KeyRotation,
            S::Iso27001,
            NotMet,
        ),
        ("HSM", |i| i.facts.master_key = Some(MasterKeySource::Hsm), C::MasterKeyProtection, S::PciDss, Met),
        (
            "development key file",
            |i| i.facts.master_key = Some(MasterKeySource::DevelopmentFile),
            C::MasterKeyProtection,
            S::PciDss,
            NotMet,
        ),
        ("unknown master key", |i| i.facts.master_key = None, C::MasterKeyProtection, S::Gdpr, Na),
        ("intact chain", |_| {}, C::AuditChain, S::Sox, Met),
        (
            "broken chain",
            |i| {
                i.measured.chain = ChainReport {
                    verified: 6,
                    redacted: 1,
                    checkpoint: None,
                    broken: Some(BrokenLink { seq: 7, reason: "MAC mismatch".into() }),
                }
            },
            C::AuditChain,
            S::Sox,
            NotMet,
        ),
        ("2555 days for SOX", |_| {}, C::AuditRetention, S::Sox, Met),
        (
            "2554 days for SOX",
            |i| i.settings.compliance.retention.audit = Duration::days(2554),
            C::AuditRetention,
            S::Sox,
            NotMet,
        ),
        (
            "400 days for PCI",
            |i| i.settings.compliance.retention.audit = Duration::days(400),
            C::AuditRetention,
            S::PciDss,
            Met,
        ),
        (
            "400 days for HIPAA",
            |i| i.settings.compliance.retention.audit = Duration::days(400),
            C::AuditRetention,
            S::Hipaa,
            NotMet,
        ),
        ("default personal retention", |_| {}, C::PersonalDataRetention, S::Gdpr, Met),
        (
            "three years of login history",
            |i| i.settings.compliance.retention.login_history = Duration::days(1095),
            C::PersonalDataRetention,
            S::Gdpr,
            NotMet,
        ),
        ("30 days, on withdrawal", |_| {}, C::Erasure, S::Gdpr, Met),
        ("31 days", |i| i.settings.compliance.deletion_delay = Duration::days(31), C::Erasure, S::Gdpr, NotMet),
        (
            "withdrawal schedules nothing",
            |i| i.settings.compliance.erasure_on_withdrawal.clear(),
            C::Erasure,
            S::Iso27001,
            NotMet,
        ),
        ("everyone consented", |_| {}, C::ConsentCoverage, S::Gdpr, Met),
        ("9 of 10 consented", |i| i.measured.consents.covered = 9, C::ConsentCoverage, S::Gdpr, NotMet),
        ("no user", |i| i.measured.consents = ConsentCounts::default(), C::ConsentCoverage, S::Gdpr, Na),
        ("https and TLS links", |_| {}, C::TransportSecurity, S::Hipaa, Met),
        (
            "plain http issuer",
            |i| i.facts.issuer = Some("http://id.example.com".into()),
            C::TransportSecurity,
            S::Hipaa,
            NotMet,
        ),
        (
            "every proxy trusted",
            |i| i.facts.trusted_proxies = vec!["0.0.0.0/0".into()],
            C::TransportSecurity,
            S::PciDss,
            NotMet,
        ),
        (
            "plain Redis elsewhere",
            |i| i.facts.hot = Some(StoreLink { backend: "redis".into(), encrypted: Some(false), local: false }),
            C::TransportSecurity,
            S::Gdpr,
            NotMet,
        ),
        (
            "plain PostgreSQL on loopback",
            |i| i.facts.durable = Some(StoreLink { backend: "postgres".into(), encrypted: Some(false), local: true }),
            C::TransportSecurity,
            S::Gdpr,
            Met,
        ),
        ("facts unknown", |i| i.facts = DeploymentFacts::default(), C::TransportSecurity, S::Gdpr, Na),
    ]
};

#[test]
fn each_control_is_met_or_not_from_what_was_measured() {
    for (what, change, control, standard, expected) in TABLE {
        let mut inputs = good();
        change(&mut inputs);
        assert_eq!(status(*standard, &inputs, *control), *expected, "{what}: {} for {standard}", control.as_str());
    }
}

#[test]
fn a_control_not_met_carries_its_evidence_and_a_recommendation() {
    let mut inputs = good();
    inputs.measured.accounts.admins_with_mfa = 1;
    inputs.settings.mfa_required_roles.clear();
    let report = evaluate(Standard::PciDss, &inputs);
    let control = report.controls.iter().find(|c| c.id == ControlId::AdminMfa).unwrap();
    assert_eq!(control.requirement, "PCI DSS v4.0 8.4.1");
    assert!(control.evidence.measured.starts_with("1 of 2 administrators (50.0%)"), "{:?}", control.evidence);
    let query = control.evidence.query.as_ref().unwrap();
    assert_eq!(query.result, "1 of 2");
    let recommendation = control.recommendation.as_deref().unwrap();
    assert!(recommendation.contains("1 administrator(s)") && recommendation.contains("mfa_required_roles"));
    assert!(report.violation_summaries().iter().any(|v| v.starts_with("MFA coverage of administrators (PCI DSS")));
    // A met control has no recommendation.
    let met = report.controls.iter().find(|c| c.id == ControlId::AuditChain).unwrap();
    assert_eq!((met.status, met.recommendation.as_ref()), (ControlStatus::Met, None));
    // The configuration excerpt shows the control's own settings only.
    let policy = report.controls.iter().find(|c| c.id == ControlId::PasswordPolicy).unwrap();
    assert_eq!(policy.evidence.config.get("password_min_length").map(String::as_str), Some("12"));
    assert!(control.evidence.config.is_empty());
}

#[test]
fn the_score_is_met_over_the_controls_that_count() {
    let mut inputs = good();
    // GDPR maps 12 controls; make one not applicable and two not met.
    inputs.facts.master_key = None;
    inputs.measured.consents.covered = 3;
    inputs.settings.password_policy.min_length = 10;
    let report = evaluate(Standard::Gdpr, &inputs);
    assert_eq!(report.controls.len(), 12);
    assert_eq!((report.met(), report.total()), (9, 11));
    assert!((report.score() - 9.0 / 11.0).abs() < 1e-12);
    assert_eq!(report.percent(), 81.8);
    assert_eq!(report.violations().count(), 2);
    assert_eq!(report.recommendations().len(), 2);
    // Two thirds round to one decimal.
    inputs.settings.password_policy.min_length = 12;
    let mut report = evaluate(Standard::Sox, &inputs);
    report.controls.truncate(3);
    report.controls[0].status = ControlStatus::NotMet;
    assert_eq!((report.met(), report.total(), report.percent()), (2, 3, 66.7));
    // Nothing that counts: a score of 0, never a division by zero.
    for control in &mut report.controls {
        control.status = ControlStatus::NotApplicable;
    }
    assert_eq!((report.total(), report.score(), report.percent()), (0, 0.0, 0.0));
}

#[test]
fn every_standard_maps_distinct_controls_to_its_own_requirements() {
    for standard in Standard::ALL {
        let mapped = requirements(standard);
        assert!(mapped.len() >= 7, "{standard}");
        let mut ids: Vec<_> = mapped.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), mapped.len(), "{standard}: a control twice");
        let prefix = match standard {
            Standard::Gdpr => "GDPR Art.",
            Standard::Hipaa => "HIPAA §164.",
            Standard::PciDss => "PCI DSS v4.0 ",
            Standard::Sox => "SOX ",
            Standard::Iso27001 => "ISO/IEC 27001:2022 A.",
        };
        assert!(mapped.iter().all(|(_, r)| r.starts_with(prefix)), "{standard}");
    }
}

#[test]
fn no_report_claims_certification_or_compliance() {
    let mut inputs = good();
    inputs.settings.password_policy.min_length = 8;
    inputs.facts.master_key = Some(MasterKeySource::DevelopmentFile);
    for standard in Standard::ALL {
        let text = format!("{:?} {DISCLAIMER} {WORDING}", evaluate(standard, &inputs)).to_lowercase();
        for word in ["compliant", "certified", "compliance achieved", "passes the audit"] {
            assert!(!text.contains(word), "{standard} says {word:?}");
        }
    }
    assert_eq!(WORDING, "technical control checks");
}

#[test]
fn masking_never_lets_a_secret_through() {
    const SECRET: &str = "Hunter2-s3cret";
    let mut facts = DeploymentFacts::default();
    facts.set_config([
        ("master_key", SECRET.to_owned(), true),
        ("hsm_pin", format!("({SECRET}"), true),
        ("redis_url", format!("rediss://default:{SECRET}@cache:6380/0"), true),
        ("database_url", format!("postgres://palisade:{SECRET}@db/palisade"), false),
        ("trusted_proxies", format!("http://a:{SECRET}@x, https://b:{SECRET}@y/z"), false),
        ("issuer", "https://id.example.com/".to_owned(), false),
        ("jwt_secret", "***".to_owned(), true),
        ("smtp_password", "(unset)".to_owned(), true),
        ("twilio_auth_token", format!("{SECRET}***"), true),
        ("notify_webhook_url", format!("https://hooks.example.com/{SECRET}?t={SECRET}"), true),
    ]);
    let shown = format!("{:?}", facts.config());
    assert!(!shown.contains("Hunter2"), "{shown}");
    let config = facts.config();
    assert_eq!(config["master_key"], "***");
    assert_eq!(config["hsm_pin"], "***", "only `(unset…` passes as a description");
    assert_eq!(config["redis_url"], "rediss://cache:6380/***", "a secret URL keeps its origin only");
    assert_eq!(config["database_url"], "postgres://palisade:***@db/palisade");
    assert_eq!(config["trusted_proxies"], "http://a:***@x, https://b:***@y/z");
    assert_eq!(config["issuer"], "https://id.example.com/");
    assert_eq!(config["jwt_secret"], "***");
    assert_eq!(config["smtp_password"], "(unset)");
    assert_eq!(config["twilio_auth_token"], "***");
    assert_eq!(config["notify_webhook_url"], "https://hooks.example.com/***");
    // And through a report: the excerpts come from the masked map only.
    let mut inputs = good();
    inputs.facts.set_config([
        ("master_key", SECRET.to_owned(), true),
        ("database_url", format!("postgresql://u:{SECRET}@db:5432/p?sslmode=require"), false),
    ]);
    for standard in Standard::ALL {
        let report = format!("{:?}", evaluate(standard, &inputs));
        assert!(!report.contains("Hunter2"), "{standard}: {report}");
    }
    let report = evaluate(Standard::Hipaa, &inputs);
    let master = report.controls.iter().find(|c| c.id == ControlId::MasterKeyProtection).unwrap();
    assert_eq!(master.evidence.config.get("master_key").map(String::as_str), Some("***"));
}

#[test]
fn a_disabled_standard_names_the_setting_that_turns_it_on() {
    let e = ReportError::Disabled { standard: Standard::PciDss, setting: enabled_setting(Standard::PciDss) };
    assert_eq!(
        e.to_string(),
        "PCI_DSS reports are turned off in this deployment: set compliance_pci_dss_enabled = true to check its controls"
    );
}
