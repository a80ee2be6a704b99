//! Every control and every threshold: [`evaluate`], a pure function from [`ReportInputs`] to a
//! [`Report`], one function per control. What the unit tests drive; nothing here does I/O.

use super::*;

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
