//! The one table of settings, and the rule for which environment names are ours.
//!
//! Everything else in `config` is driven from [`Setting::spec`]: the toml keys, the clap flags and
//! their help, the environment variables and aliases, the defaults, the expected forms quoted in
//! error messages, the ranges of numeric settings and the units they are written in, and
//! `docs/configuration.md` mirrors it. Adding a setting means adding a variant here, a field to
//! [`super::Config`], one line in `Config::build` and one in `Config::describe_one`.
//!
//! This module must never read the environment or the file system: it only names and classifies.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// One configurable setting. [`Setting::ALL`] lists them in documentation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// `bind`: the listen address.
    Bind,
    /// `issuer`: the public base URL.
    Issuer,
    /// `database_url`: the durable store (secret).
    DatabaseUrl,
    /// `database_max_connections`: the durable store's pool size.
    DatabaseMaxConnections,
    /// `redis_url`: the hot/ephemeral store (secret).
    RedisUrl,
    /// `master_key`: the key that wraps data keys (secret).
    MasterKey,
    /// `hsm_enabled`: whether the master key is in the PKCS#11 HSM (default: when `hsm_module` is set).
    HsmEnabled,
    /// `hsm_module`: the PKCS#11 library of the HSM.
    HsmModule,
    /// `hsm_slot`: the slot (id, index or token label) of the token holding the master key.
    HsmSlot,
    /// `hsm_pin`: the token's user PIN (secret).
    HsmPin,
    /// `hsm_provider`: what the HSM is (`SoftHSM`, a vendor name), for the logs only.
    HsmProvider,
    /// `data_dir`: where the SQLite file and the development key file live by default.
    DataDir,
    /// `trusted_proxies`: peers whose `X-Forwarded-For` is believed.
    TrustedProxies,
    /// `log_format`: text or json.
    LogFormat,
    /// `log_level`: a tracing filter directive.
    LogLevel,
    /// `request_timeout`: seconds before a request is abandoned.
    RequestTimeout,
    /// `jwt_algorithm`: how tokens are signed.
    JwtAlgorithm,
    /// `jwt_secret`: the HS256 shared secret (secret).
    JwtSecret,
    /// `audience`: the `aud` of the tokens this server issues.
    Audience,
    /// `api_key_prefix`: the text every API key starts with.
    ApiKeyPrefix,
    /// `signing_key_rotation_days`: rotate the JWT signing key when it is this old, days.
    SigningKeyRotation,
    /// `access_ttl`: access token lifetime, seconds.
    AccessTtl,
    /// `refresh_ttl`: refresh token lifetime, seconds.
    RefreshTtl,
    /// `refresh_grace`: how long a rotated refresh token is still accepted, seconds.
    RefreshGrace,
    /// `session_lifetime`: absolute session lifetime, seconds.
    SessionLifetime,
    /// `session_idle_timeout`: session idle timeout, seconds.
    SessionIdleTimeout,
    /// `session_cache_ms`: staleness bound of session and revocation checks, milliseconds.
    SessionCache,
    /// `max_sessions_per_user`: most live sessions per user (0: no limit).
    MaxSessionsPerUser,
    /// `enable_concurrent_sessions`: whether a user may hold several sessions at once.
    ConcurrentSessions,
    /// `session_binding`: how tightly a session is bound to where it was opened.
    SessionBinding,
    /// `max_login_attempts`: failed logins before an account is locked.
    MaxLoginAttempts,
    /// `lockout_duration`: how long an account stays locked, seconds.
    LockoutDuration,
    /// `ip_max_login_failures`: failed logins per client IP per lockout window.
    IpMaxLoginFailures,
    /// `password_min_length`: minimum password length.
    PasswordMinLength,
    /// `password_require`: character classes a password must contain.
    PasswordRequire,
    /// `password_min_score`: minimum zxcvbn strength score.
    PasswordMinScore,
    /// `password_history`: how many previous passwords may not be reused.
    PasswordHistory,
    /// `password_max_age_days`: password expiry, days.
    PasswordMaxAge,
    /// `argon2_memory_kib`: Argon2id memory cost, KiB.
    Argon2MemoryKib,
    /// `argon2_iterations`: Argon2id time cost.
    Argon2Iterations,
    /// `argon2_parallelism`: Argon2id lanes.
    Argon2Parallelism,
    /// `hash_concurrency`: password hashes computed at once.
    HashConcurrency,
    /// `mfa_issuer`: the issuer name authenticator apps show.
    MfaIssuer,
    /// `mfa_required`: every login needs a second factor.
    MfaRequired,
    /// `mfa_required_roles`: logins of users with these roles need a second factor.
    MfaRequiredRoles,
    /// `mfa_factors`: distinct second factors a login must pass (2: enhanced MFA).
    MfaFactors,
    /// `mfa_code_ttl`: lifetime of an SMS or e-mail code, seconds.
    MfaCodeTtl,
    /// `mfa_resend_interval`: shortest time between two codes sent to one user by one method, seconds.
    MfaResendInterval,
    /// `smtp_server`: the mail server's host name or address.
    SmtpServer,
    /// `smtp_port`: the mail server's port.
    SmtpPort,
    /// `smtp_username`: the user name Palisade signs in to the mail server with.
    SmtpUsername,
    /// `smtp_password`: the mail server password (secret).
    SmtpPassword,
    /// `smtp_tls`: how the mail server connection is encrypted.
    SmtpTls,
    /// `smtp_from`: the From of every message.
    SmtpFrom,
    /// `sms_provider`: who sends text messages.
    SmsProvider,
    /// `twilio_account_sid`: the Twilio account.
    TwilioAccountSid,
    /// `twilio_auth_token`: the Twilio account's auth token (secret).
    TwilioAuthToken,
    /// `twilio_from`: the Twilio number messages come from.
    TwilioFrom,
    /// `twilio_base_url`: where the Twilio REST API is.
    TwilioBaseUrl,
    /// `notify_webhook_url`: where security notices are also posted as JSON (secret).
    NotifyWebhookUrl,
    /// `webauthn_rp_id`: the WebAuthn relying party id passkeys are bound to.
    WebauthnRpId,
    /// `webauthn_origin`: the origin the passkey pages run on.
    WebauthnOrigin,
    /// `geoip_db`: a MaxMind City or Country database.
    GeoipDb,
    /// `geoip_asn_db`: a MaxMind ASN database.
    GeoipAsnDb,
    /// `geoip_anonymous_db`: a MaxMind Anonymous-IP database.
    GeoipAnonymousDb,
    /// `risk_enabled`: whether logins are scored.
    RiskEnabled,
    /// `risk_thresholds`: the scores above which MFA, enhanced MFA and a block apply.
    RiskThresholds,
    /// `risk_weights`: factor weights that replace the built-in ones.
    RiskWeights,
    /// `risk_max_travel_kmh`: travel faster than this between two logins is impossible.
    RiskMaxTravelKmh,
    /// `risk_deny_cidrs`: addresses whose logins are refused.
    RiskDenyCidrs,
    /// `risk_allow_cidrs`: addresses exempt from the address factors.
    RiskAllowCidrs,
    /// `device_approval`: a login from a new device waits for approval.
    DeviceApproval,
    /// `device_approval_ttl`: how long an approval waits, seconds.
    DeviceApprovalTtl,
    /// `remember_device_ttl`: how long "remember this device" lasts, seconds.
    RememberDeviceTtl,
    /// `encryption_algorithm`: the cipher of every classification unless a policy says otherwise.
    EncryptionAlgorithm,
    /// `encryption_key_rotation_days`: each classification's data key is rotated when it is this old, days.
    EncryptionKeyRotation,
    /// `encryption_compression`: whether callers may ask for compression before encryption at all.
    EncryptionCompression,
    /// `encryption_max_plaintext`: the largest plaintext the encryption service accepts, bytes.
    EncryptionMaxPlaintext,
    /// `encryption_policies`: per-classification overrides, `CLASS.key=value`.
    EncryptionPolicies,
    /// `encryption_reencrypt_batch_size`: rows per batch (and per checkpoint) of the background re-encryption.
    EncryptionReencryptBatchSize,
    /// `encryption_reencrypt_rate`: most rows per second of the background re-encryption.
    EncryptionReencryptRate,
    /// `monitoring_detectors`: whether the detectors examine the audit chain and open incidents.
    MonitoringDetectors,
    /// `monitoring_brute_force_failures`: failed logins on one account that open a `brute_force` incident.
    MonitoringBruteForceFailures,
    /// `monitoring_brute_force_window`: the window of `monitoring_brute_force_failures`, seconds.
    MonitoringBruteForceWindow,
    /// `monitoring_spraying_accounts`: accounts failing from one address that open a `password_spraying` incident.
    MonitoringSprayingAccounts,
    /// `monitoring_spraying_window`: the window of `monitoring_spraying_accounts`, seconds.
    MonitoringSprayingWindow,
    /// `monitoring_stuffing_failures`: failed logins everywhere that may open a `credential_stuffing` incident.
    MonitoringStuffingFailures,
    /// `monitoring_stuffing_addresses`: distinct addresses those failures must come from.
    MonitoringStuffingAddresses,
    /// `monitoring_stuffing_failure_percent`: share of all logins that must be failing, percent.
    MonitoringStuffingFailurePercent,
    /// `monitoring_stuffing_window`: the window of the credential-stuffing counts, seconds.
    MonitoringStuffingWindow,
    /// `monitoring_api_key_refusals`: refused API-key uses from one address that open an `api_key_abuse` incident.
    MonitoringApiKeyRefusals,
    /// `monitoring_api_key_window`: the window of `monitoring_api_key_refusals`, seconds.
    MonitoringApiKeyWindow,
    /// `monitoring_baseline_slot`: the length of one slot of a user's activity history, seconds.
    MonitoringBaselineSlot,
    /// `monitoring_baseline_slots`: the past slots that make a user's activity baseline.
    MonitoringBaselineSlots,
    /// `monitoring_baseline_min_events`: the least events in one slot that may open an `unusual_activity` incident.
    MonitoringBaselineMinEvents,
    /// `monitoring_incident_auto_response`: whether opening an incident takes its cause's actions.
    MonitoringIncidentAutoResponse,
    /// `monitoring_responses`: the actions per cause, `cause=action[:seconds][+action…]`.
    MonitoringResponses,
    /// `monitoring_alert_severity_threshold`: incidents at least this severe are sent to the administrators.
    MonitoringAlertSeverityThreshold,
    /// `monitoring_alert_emails`: the administrators' e-mail addresses for alerts.
    MonitoringAlertEmails,
    /// `monitoring_alert_webhook_url`: where the administrators' alerts are posted, signed (secret).
    MonitoringAlertWebhookUrl,
    /// `monitoring_push_url`: the push gateway users' push alerts are posted to, signed (secret).
    MonitoringPushUrl,
    /// `monitoring_alert_webhook_secret`: the HMAC-SHA256 key alerts are signed with (secret).
    MonitoringAlertWebhookSecret,
    /// `monitoring_alerts_per_hour`: alerts per recipient per hour, at most.
    MonitoringAlertsPerHour,
    /// `compliance_gdpr_enabled`: GDPR reports may be asked for.
    ComplianceGdprEnabled,
    /// `compliance_hipaa_enabled`: HIPAA reports may be asked for.
    ComplianceHipaaEnabled,
    /// `compliance_pci_dss_enabled`: PCI DSS reports may be asked for.
    CompliancePciDssEnabled,
    /// `compliance_sox_enabled`: SOX reports may be asked for.
    ComplianceSoxEnabled,
    /// `compliance_iso27001_enabled`: ISO 27001 reports may be asked for.
    ComplianceIso27001Enabled,
    /// `compliance_deletion_delay`: how long after a request an erasure is carried out, seconds.
    ComplianceDeletionDelay,
    /// `compliance_consent_validity`: how long a consent stays valid, seconds.
    ComplianceConsentValidity,
    /// `compliance_consent_validity_per_type`: validity per consent type, `type=seconds,…`.
    ComplianceConsentValidityPerType,
    /// `compliance_erasure_on_withdrawal`: consent types whose withdrawal schedules an erasure.
    ComplianceErasureOnWithdrawal,
    /// `compliance_audit_retention_days`: how long audit records are kept, days.
    ComplianceAuditRetentionDays,
    /// `compliance_login_history_retention_days`: how long the login history is kept, days.
    ComplianceLoginHistoryRetentionDays,
    /// `compliance_incident_retention_days`: how long resolved incidents are kept, days.
    ComplianceIncidentRetentionDays,
    /// `compliance_alert_delivery_retention_days`: how long finished alert deliveries are kept, days.
    ComplianceAlertDeliveryRetentionDays,
    /// `oauth2_require_pkce`: whether every OAuth client must use PKCE (S256).
    Oauth2RequirePkce,
    /// `oauth2_code_ttl`: how long an authorization code lives, seconds.
    Oauth2CodeTtl,
    /// `oauth2_allow_private_jwks_uri`: whether clients' `jwks_uri` may reach private addresses.
    Oauth2AllowPrivateJwksUri,
    /// `oauth2_pending_per_ip`: sign-ins one address may start per ten minutes.
    Oauth2PendingPerIp,
}

/// The `--help` section a setting is listed under; the settings of one group are contiguous in
/// [`Setting::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    Server,
    Tokens,
    Sessions,
    LoginProtection,
    Passwords,
    Hashing,
    Mfa,
    Risk,
    Encryption,
    Monitoring,
    Compliance,
    OAuth,
}

impl Group {
    /// The `--help` heading.
    pub(crate) fn heading(self) -> &'static str {
        match self {
            Group::Server => {
                "Settings: server, stores, logging (flags beat environment, .env, palisade.toml and defaults)"
            }
            Group::Tokens => "Settings: tokens",
            Group::Sessions => "Settings: sessions",
            Group::LoginProtection => "Settings: login protection",
            Group::Passwords => "Settings: passwords",
            Group::Hashing => "Settings: password hashing",
            Group::Mfa => "Settings: multi-factor authentication and messages",
            Group::Risk => "Settings: risk-based login, devices and GeoIP",
            Group::Encryption => "Settings: encryption service",
            Group::Monitoring => "Settings: security monitoring",
            Group::Compliance => "Settings: compliance (reports, erasure, consent, retention)",
            Group::OAuth => "Settings: OAuth 2.0 / OpenID Connect provider",
        }
    }
}

/// The unit a whole-number setting is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Milliseconds,
    Seconds,
    Minutes,
    Days,
    Kibibytes,
    Bytes,
}

impl Unit {
    /// As written after a number in messages: "seconds".
    pub(crate) fn name(self) -> &'static str {
        match self {
            Unit::Milliseconds => "milliseconds",
            Unit::Seconds => "seconds",
            Unit::Minutes => "minutes",
            Unit::Days => "days",
            Unit::Kibibytes => "KiB",
            Unit::Bytes => "bytes",
        }
    }

    /// As written after the number `n`: "1 second", "2 seconds".
    pub(crate) fn of(self, n: u64) -> String {
        let name = self.name();
        match name.strip_suffix('s') {
            Some(singular) if n == 1 => format!("{n} {singular}"),
            _ => format!("{n} {name}"),
        }
    }

    /// Milliseconds per unit, for the units of time.
    fn millis(self) -> Option<u64> {
        match self {
            Unit::Milliseconds => Some(1),
            Unit::Seconds => Some(1_000),
            Unit::Minutes => Some(60_000),
            Unit::Days => Some(86_400_000),
            Unit::Kibibytes | Unit::Bytes => None,
        }
    }

    /// `n` of this unit as a duration; `None` for a unit that is not time, or on overflow.
    pub(crate) fn duration(self, n: u64) -> Option<Duration> {
        n.checked_mul(self.millis()?).map(Duration::from_millis)
    }
}

/// The rule of a whole-number setting: its unit and inclusive range. The `expected` text of the
/// row must state the same range (a test checks that it names both bounds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Number {
    /// `None` for a plain count.
    pub(crate) unit: Option<Unit>,
    pub(crate) min: u64,
    pub(crate) max: u64,
    /// The unit of the alias when it differs (the original guide wrote token lifetimes in minutes
    /// and days). Its range is the same span, converted, rounded inwards.
    pub(crate) alias_unit: Option<Unit>,
}

impl Number {
    const fn count(min: u64, max: u64) -> Option<Number> {
        Some(Number { unit: None, min, max, alias_unit: None })
    }

    const fn of(unit: Unit, min: u64, max: u64) -> Option<Number> {
        Some(Number { unit: Some(unit), min, max, alias_unit: None })
    }

    /// The unit and range of a value read under the alias (`via_alias`) or any other name.
    pub(crate) fn rule(self, via_alias: bool) -> (Option<Unit>, u64, u64) {
        let converted = self.unit.and_then(Unit::millis).zip(self.alias_unit.and_then(|u| Some((u, u.millis()?))));
        match converted {
            Some((base, (alias_unit, per_alias))) if via_alias => {
                let (base, per_alias) = (u128::from(base), u128::from(per_alias));
                let min = (u128::from(self.min) * base).div_ceil(per_alias);
                let max = u128::from(self.max) * base / per_alias;
                let clamp = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
                (Some(alias_unit), clamp(min), clamp(max))
            }
            _ => (self.unit, self.min, self.max),
        }
    }
}

/// What a setting is when nothing sets it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DefaultValue {
    /// This text, parsed like any other value.
    Text(&'static str),
    /// `sqlite://<data_dir>/palisade.db`, so moving the data directory moves the database too.
    DatabaseInDataDir,
    /// Unset; the text says what happens then.
    Unset(&'static str),
}

impl DefaultValue {
    /// For help text, describe() and the docs.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Text(text) | Self::Unset(text) => text,
            Self::DatabaseInDataDir => "sqlite://<data_dir>/palisade.db",
        }
    }
}

/// The row of the table for one setting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The toml key, the name in describe() and in error messages.
    pub(crate) key: &'static str,
    /// The long flag, without `--`.
    pub(crate) flag: &'static str,
    /// The `PALISADE_` environment variable.
    pub(crate) env: &'static str,
    /// The original guide's name, accepted when the `PALISADE_` one is absent from the same source.
    pub(crate) alias: Option<&'static str>,
    pub(crate) default: DefaultValue,
    /// Secret values are never shown: not in errors, Debug, describe() or logs.
    pub(crate) secret: bool,
    /// The flag's value placeholder in `--help`.
    pub(crate) value_name: &'static str,
    /// What it protects or changes (one phrase, no trailing period).
    pub(crate) about: &'static str,
    /// The expected form, quoted in every error about this setting.
    pub(crate) expected: &'static str,
    /// The `--help` section.
    pub(crate) group: Group,
    /// Whole-number settings: unit and range, checked by the one parser of numbers.
    pub(crate) number: Option<Number>,
    /// A comma-separated list, which the file may also give as an array of strings.
    pub(crate) list: bool,
    /// A yes/no setting, which the file may also give as a toml boolean.
    pub(crate) boolean: bool,
}

impl Setting {
    /// Every setting, in the order of `--help`, describe() and the docs.
    pub const ALL: [Setting; 120] = [
        Setting::Bind,
        Setting::Issuer,
        Setting::DatabaseUrl,
        Setting::DatabaseMaxConnections,
        Setting::RedisUrl,
        Setting::MasterKey,
        Setting::HsmEnabled,
        Setting::HsmModule,
        Setting::HsmSlot,
        Setting::HsmPin,
        Setting::HsmProvider,
        Setting::DataDir,
        Setting::TrustedProxies,
        Setting::LogFormat,
        Setting::LogLevel,
        Setting::RequestTimeout,
        Setting::JwtAlgorithm,
        Setting::JwtSecret,
        Setting::Audience,
        Setting::ApiKeyPrefix,
        Setting::SigningKeyRotation,
        Setting::AccessTtl,
        Setting::RefreshTtl,
        Setting::RefreshGrace,
        Setting::SessionLifetime,
        Setting::SessionIdleTimeout,
        Setting::SessionCache,
        Setting::MaxSessionsPerUser,
        Setting::ConcurrentSessions,
        Setting::SessionBinding,
        Setting::MaxLoginAttempts,
        Setting::LockoutDuration,
        Setting::IpMaxLoginFailures,
        Setting::PasswordMinLength,
        Setting::PasswordRequire,
        Setting::PasswordMinScore,
        Setting::PasswordHistory,
        Setting::PasswordMaxAge,
        Setting::Argon2MemoryKib,
        Setting::Argon2Iterations,
        Setting::Argon2Parallelism,
        Setting::HashConcurrency,
        Setting::MfaIssuer,
        Setting::MfaRequired,
        Setting::MfaRequiredRoles,
        Setting::MfaFactors,
        Setting::MfaCodeTtl,
        Setting::MfaResendInterval,
        Setting::SmtpServer,
        Setting::SmtpPort,
        Setting::SmtpUsername,
        Setting::SmtpPassword,
        Setting::SmtpTls,
        Setting::SmtpFrom,
        Setting::SmsProvider,
        Setting::TwilioAccountSid,
        Setting::TwilioAuthToken,
        Setting::TwilioFrom,
        Setting::TwilioBaseUrl,
        Setting::NotifyWebhookUrl,
        Setting::WebauthnRpId,
        Setting::WebauthnOrigin,
        Setting::GeoipDb,
        Setting::GeoipAsnDb,
        Setting::GeoipAnonymousDb,
        Setting::RiskEnabled,
        Setting::RiskThresholds,
        Setting::RiskWeights,
        Setting::RiskMaxTravelKmh,
        Setting::RiskDenyCidrs,
        Setting::RiskAllowCidrs,
        Setting::DeviceApproval,
        Setting::DeviceApprovalTtl,
        Setting::RememberDeviceTtl,
        Setting::EncryptionAlgorithm,
        Setting::EncryptionKeyRotation,
        Setting::EncryptionCompression,
        Setting::EncryptionMaxPlaintext,
        Setting::EncryptionPolicies,
        Setting::EncryptionReencryptBatchSize,
        Setting::EncryptionReencryptRate,
        Setting::MonitoringDetectors,
        Setting::MonitoringBruteForceFailures,
        Setting::MonitoringBruteForceWindow,
        Setting::MonitoringSprayingAccounts,
        Setting::MonitoringSprayingWindow,
        Setting::MonitoringStuffingFailures,
        Setting::MonitoringStuffingAddresses,
        Setting::MonitoringStuffingFailurePercent,
        Setting::MonitoringStuffingWindow,
        Setting::MonitoringApiKeyRefusals,
        Setting::MonitoringApiKeyWindow,
        Setting::MonitoringBaselineSlot,
        Setting::MonitoringBaselineSlots,
        Setting::MonitoringBaselineMinEvents,
        Setting::MonitoringIncidentAutoResponse,
        Setting::MonitoringResponses,
        Setting::MonitoringAlertSeverityThreshold,
        Setting::MonitoringAlertEmails,
        Setting::MonitoringAlertWebhookUrl,
        Setting::MonitoringPushUrl,
        Setting::MonitoringAlertWebhookSecret,
        Setting::MonitoringAlertsPerHour,
        Setting::ComplianceGdprEnabled,
        Setting::ComplianceHipaaEnabled,
        Setting::CompliancePciDssEnabled,
        Setting::ComplianceSoxEnabled,
        Setting::ComplianceIso27001Enabled,
        Setting::ComplianceDeletionDelay,
        Setting::ComplianceConsentValidity,
        Setting::ComplianceConsentValidityPerType,
        Setting::ComplianceErasureOnWithdrawal,
        Setting::ComplianceAuditRetentionDays,
        Setting::ComplianceLoginHistoryRetentionDays,
        Setting::ComplianceIncidentRetentionDays,
        Setting::ComplianceAlertDeliveryRetentionDays,
        Setting::Oauth2RequirePkce,
        Setting::Oauth2CodeTtl,
        Setting::Oauth2AllowPrivateJwksUri,
        Setting::Oauth2PendingPerIp,
    ];

    /// The table. Keep `docs/configuration.md` in step with it.
    pub(crate) const fn spec(self) -> Spec {
        match self {
            Setting::Bind => Spec {
                key: "bind",
                flag: "bind",
                env: "PALISADE_BIND",
                alias: None,
                default: DefaultValue::Text("127.0.0.1:8080"),
                secret: false,
                value_name: "IP:PORT",
                about: "address the HTTP server listens on",
                expected: "IP:PORT, an IP address and a port such as 127.0.0.1:8080, 0.0.0.0:443 or [::1]:8080 \
                           (host names are not accepted; port 0 picks a free port)",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::Issuer => Spec {
                key: "issuer",
                flag: "issuer",
                env: "PALISADE_ISSUER",
                alias: None,
                default: DefaultValue::Text("http://127.0.0.1:8080"),
                secret: false,
                value_name: "URL",
                about: "public base URL of this server: the `iss` of every token and the base of OpenID discovery",
                expected: "an absolute http:// or https:// URL without user name, password, query or fragment, \
                           such as https://id.example.com",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::DatabaseUrl => Spec {
                key: "database_url",
                flag: "database-url",
                env: "PALISADE_DATABASE_URL",
                alias: None,
                default: DefaultValue::DatabaseInDataDir,
                secret: true,
                value_name: "URL",
                about: "durable store: users, keys, sessions, audit chain",
                expected: "sqlite:PATH, sqlite://PATH, sqlite::memory: or \
                           postgres://USER:PASSWORD@HOST:PORT/DATABASE (postgresql:// is accepted too)",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::DatabaseMaxConnections => Spec {
                key: "database_max_connections",
                flag: "database-max-connections",
                env: "PALISADE_DATABASE_MAX_CONNECTIONS",
                alias: None,
                default: DefaultValue::Text("10"),
                secret: false,
                value_name: "N",
                about: "size of the durable store's connection pool (PostgreSQL; SQLite always uses one connection)",
                expected: "a whole number from 1 to 1000",
                group: Group::Server,
                number: Number::count(1, 1000),
                list: false,
                boolean: false,
            },
            Setting::RedisUrl => Spec {
                key: "redis_url",
                flag: "redis-url",
                env: "PALISADE_REDIS_URL",
                alias: Some("REDIS_URL"),
                default: DefaultValue::Unset("unset: the durable store holds the ephemeral data"),
                secret: true,
                value_name: "URL",
                about: "hot/ephemeral store: rate-limit counters, one-time codes, token revocations",
                expected: "redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://… for TLS, \
                           or redis+cluster://[USER:PASSWORD@]HOST[:PORT]",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::MasterKey => Spec {
                key: "master_key",
                flag: "master-key",
                env: "PALISADE_MASTER_KEY",
                alias: Some("ENCRYPTION_KEY"),
                default: DefaultValue::Unset("unset: a generated development key file in the data directory"),
                secret: true,
                value_name: "BASE64",
                about: "master key that wraps every data key (encryption at rest)",
                expected: "standard base64 of exactly 32 random bytes (44 characters with `=` padding), \
                           such as the output of `openssl rand -base64 32`",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::HsmEnabled => Spec {
                key: "hsm_enabled",
                flag: "hsm-enabled",
                env: "PALISADE_HSM_ENABLED",
                alias: Some("HSM_ENABLED"),
                default: DefaultValue::Unset("unset: on when hsm_module is set"),
                secret: false,
                value_name: "BOOL",
                about: "whether the master key is a non-extractable key in the PKCS#11 HSM (hsm_module)",
                expected: "true or false (also yes/no, on/off, 1/0); true needs hsm_module and hsm_pin",
                group: Group::Server,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::HsmModule => Spec {
                key: "hsm_module",
                flag: "hsm-module",
                env: "PALISADE_HSM_MODULE",
                alias: Some("HSM_MODULE"),
                default: DefaultValue::Unset("unset: no HSM, the master key is master_key"),
                secret: false,
                value_name: "FILE",
                about: "the PKCS#11 library of the HSM holding the master key (then master_key stays unset)",
                expected: "the path of a PKCS#11 module, such as /usr/lib/softhsm/libsofthsm2.so",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::HsmSlot => Spec {
                key: "hsm_slot",
                flag: "hsm-slot",
                env: "PALISADE_HSM_SLOT",
                alias: Some("HSM_SLOT"),
                default: DefaultValue::Unset("unset: the first slot holding an initialised token"),
                secret: false,
                value_name: "SLOT",
                about: "the HSM slot whose token holds the master key",
                expected: "a slot id, or an index from 0 among the slots holding a token (such as 0), or a \
                           token label of 1 to 32 bytes (such as palisade)",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::HsmPin => Spec {
                key: "hsm_pin",
                flag: "hsm-pin",
                env: "PALISADE_HSM_PIN",
                alias: Some("HSM_PIN"),
                default: DefaultValue::Unset("unset: required with hsm_module"),
                secret: true,
                value_name: "PIN",
                about: "the user PIN of the HSM token",
                expected: "the token's user PIN (4 to 255 characters, no control characters)",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::HsmProvider => Spec {
                key: "hsm_provider",
                flag: "hsm-provider",
                env: "PALISADE_HSM_PROVIDER",
                alias: Some("HSM_PROVIDER"),
                default: DefaultValue::Unset("unset"),
                secret: false,
                value_name: "NAME",
                about: "what the HSM is (SoftHSM, a vendor's name): written in the logs only; hsm_module decides",
                expected: "a short name of 1 to 64 printable characters, such as SoftHSM",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::DataDir => Spec {
                key: "data_dir",
                flag: "data-dir",
                env: "PALISADE_DATA_DIR",
                alias: None,
                default: DefaultValue::Text("./palisade-data"),
                secret: false,
                value_name: "DIR",
                about: "directory of the default SQLite database and of the development master key file",
                expected: "a directory path; a relative path is relative to the working directory",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::TrustedProxies => Spec {
                key: "trusted_proxies",
                flag: "trusted-proxies",
                env: "PALISADE_TRUSTED_PROXIES",
                alias: None,
                default: DefaultValue::Unset("none: the client address is always the socket peer"),
                secret: false,
                value_name: "LIST",
                about: "peers whose X-Forwarded-For is believed; the client address feeds rate limits, \
                        IP allow-lists, risk scoring and the audit log",
                expected: "a comma-separated list of IP addresses or CIDR networks, such as \
                           10.0.0.1, 10.0.0.0/8, fd00::/8 (a bare address means /32 or /128; \
                           host bits must be zero)",
                group: Group::Server,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::LogFormat => Spec {
                key: "log_format",
                flag: "log-format",
                env: "PALISADE_LOG_FORMAT",
                alias: None,
                default: DefaultValue::Text("text"),
                secret: false,
                value_name: "FORMAT",
                about: "log line format",
                expected: "text or json",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::LogLevel => Spec {
                key: "log_level",
                flag: "log-level",
                env: "PALISADE_LOG",
                alias: None,
                default: DefaultValue::Text("info"),
                secret: false,
                value_name: "FILTER",
                about: "which log events are written",
                expected: "a tracing filter directive such as info, warn or info,palisade_server=debug",
                group: Group::Server,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::RequestTimeout => Spec {
                key: "request_timeout",
                flag: "request-timeout",
                env: "PALISADE_REQUEST_TIMEOUT",
                alias: None,
                default: DefaultValue::Text("30"),
                secret: false,
                value_name: "SECONDS",
                about: "time after which a request is abandoned",
                expected: "a whole number of seconds from 1 to 600",
                group: Group::Server,
                number: Number::of(Unit::Seconds, 1, 600),
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ tokens
            Setting::JwtAlgorithm => Spec {
                key: "jwt_algorithm",
                flag: "jwt-algorithm",
                env: "PALISADE_JWT_ALGORITHM",
                alias: Some("JWT_ALGORITHM"),
                default: DefaultValue::Text("EdDSA"),
                secret: false,
                value_name: "ALG",
                about: "how access and ID tokens are signed: EdDSA, ES256 and RS256 with the keyring's \
                        signing keys, HS256 with the shared jwt_secret",
                expected: "EdDSA, ES256, RS256 or HS256 (any letter case)",
                group: Group::Tokens,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::JwtSecret => Spec {
                key: "jwt_secret",
                flag: "jwt-secret",
                env: "PALISADE_JWT_SECRET",
                alias: Some("JWT_SECRET_KEY"),
                default: DefaultValue::Unset("unset: only HS256 needs it"),
                secret: true,
                value_name: "SECRET",
                about: "shared secret that signs and verifies tokens when jwt_algorithm is HS256; \
                        anyone holding it can mint tokens",
                expected: "at least 32 bytes of random text, such as the output of `openssl rand -base64 48`; \
                           required when jwt_algorithm is HS256, unused otherwise",
                group: Group::Tokens,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::Audience => Spec {
                key: "audience",
                flag: "audience",
                env: "PALISADE_AUDIENCE",
                alias: None,
                default: DefaultValue::Text("palisade"),
                secret: false,
                value_name: "AUD",
                about: "the `aud` of the access tokens this server issues, and the only one it accepts",
                expected: "a non-empty string without whitespace or control characters, such as palisade or \
                           https://api.example.com",
                group: Group::Tokens,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::ApiKeyPrefix => Spec {
                key: "api_key_prefix",
                flag: "api-key-prefix",
                env: "PALISADE_API_KEY_PREFIX",
                alias: None,
                default: DefaultValue::Text("spa_"),
                secret: false,
                value_name: "PREFIX",
                about: "the text every API key starts with, so secret scanners can recognise a leaked key",
                expected: "2 to 16 lower-case letters, digits or underscores, ending with an underscore, such as spa_",
                group: Group::Tokens,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::SigningKeyRotation => Spec {
                key: "signing_key_rotation_days",
                flag: "signing-key-rotation-days",
                env: "PALISADE_SIGNING_KEY_ROTATION_DAYS",
                alias: None,
                default: DefaultValue::Unset("unset: rotate with `palisade keys rotate`"),
                secret: false,
                value_name: "DAYS",
                about: "rotate the JWT signing key automatically when it is this old (the new key is published \
                        2 minutes before it signs)",
                expected: "a whole number of days from 1 to 3650 (empty: no automatic rotation)",
                group: Group::Tokens,
                number: Number::of(Unit::Days, 1, 3650),
                list: false,
                boolean: false,
            },
            Setting::AccessTtl => Spec {
                key: "access_ttl",
                flag: "access-ttl",
                env: "PALISADE_ACCESS_TTL",
                alias: Some("JWT_ACCESS_TOKEN_EXPIRE_MINUTES"),
                default: DefaultValue::Text("900"),
                secret: false,
                value_name: "SECONDS",
                about: "access token lifetime: how long a stolen access token stays usable",
                expected: "a whole number of seconds from 60 to 86400 (1 minute to 24 hours); \
                           the alias JWT_ACCESS_TOKEN_EXPIRE_MINUTES is in minutes",
                group: Group::Tokens,
                number: Some(Number {
                    unit: Some(Unit::Seconds),
                    min: 60,
                    max: 86_400,
                    alias_unit: Some(Unit::Minutes),
                }),
                list: false,
                boolean: false,
            },
            Setting::RefreshTtl => Spec {
                key: "refresh_ttl",
                flag: "refresh-ttl",
                env: "PALISADE_REFRESH_TTL",
                alias: Some("JWT_REFRESH_TOKEN_EXPIRE_DAYS"),
                default: DefaultValue::Text("2592000"),
                secret: false,
                value_name: "SECONDS",
                about: "refresh token lifetime (30 days by default): how long a client may stay signed in \
                        without a password",
                expected: "a whole number of seconds from 300 to 34560000 (5 minutes to 400 days), longer \
                           than access_ttl; the alias JWT_REFRESH_TOKEN_EXPIRE_DAYS is in days",
                group: Group::Tokens,
                number: Some(Number {
                    unit: Some(Unit::Seconds),
                    min: 300,
                    max: 34_560_000,
                    alias_unit: Some(Unit::Days),
                }),
                list: false,
                boolean: false,
            },
            Setting::RefreshGrace => Spec {
                key: "refresh_grace",
                flag: "refresh-grace",
                env: "PALISADE_REFRESH_GRACE",
                alias: None,
                default: DefaultValue::Text("0"),
                secret: false,
                value_name: "SECONDS",
                about: "how long a just-rotated refresh token is still accepted, for clients that retry a \
                        lost response; reuse after that revokes the whole token family",
                expected: "a whole number of seconds from 0 to 60",
                group: Group::Tokens,
                number: Number::of(Unit::Seconds, 0, 60),
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ sessions
            Setting::SessionLifetime => Spec {
                key: "session_lifetime",
                flag: "session-lifetime",
                env: "PALISADE_SESSION_LIFETIME",
                alias: None,
                default: DefaultValue::Text("3600"),
                secret: false,
                value_name: "SECONDS",
                about: "absolute session lifetime, counted from sign-in whatever the activity",
                expected: "a whole number of seconds from 60 to 34560000 (1 minute to 400 days)",
                group: Group::Sessions,
                number: Number::of(Unit::Seconds, 60, 34_560_000),
                list: false,
                boolean: false,
            },
            Setting::SessionIdleTimeout => Spec {
                key: "session_idle_timeout",
                flag: "session-idle-timeout",
                env: "PALISADE_SESSION_IDLE_TIMEOUT",
                alias: None,
                default: DefaultValue::Text("1800"),
                secret: false,
                value_name: "SECONDS",
                about: "session idle timeout: a session unused this long ends (the default is capped at \
                        session_lifetime)",
                expected: "a whole number of seconds from 60 to 34560000, no longer than session_lifetime",
                group: Group::Sessions,
                number: Number::of(Unit::Seconds, 60, 34_560_000),
                list: false,
                boolean: false,
            },
            Setting::SessionCache => Spec {
                key: "session_cache_ms",
                flag: "session-cache-ms",
                env: "PALISADE_SESSION_CACHE_MS",
                alias: None,
                default: DefaultValue::Text("1000"),
                secret: false,
                value_name: "MILLISECONDS",
                about: "how long a session or revocation check may be answered from memory: the longest a \
                        revoked session or token can still be used (0: every check asks the hot store)",
                expected: "a whole number of milliseconds from 0 to 10000",
                group: Group::Sessions,
                number: Number::of(Unit::Milliseconds, 0, 10_000),
                list: false,
                boolean: false,
            },
            Setting::MaxSessionsPerUser => Spec {
                key: "max_sessions_per_user",
                flag: "max-sessions-per-user",
                env: "PALISADE_MAX_SESSIONS_PER_USER",
                alias: None,
                default: DefaultValue::Text("0"),
                secret: false,
                value_name: "N",
                about: "most live sessions one user may hold; a new login ends the oldest past it, which bounds \
                        how many stolen sessions can stay alive unnoticed (0: no limit)",
                expected: "a whole number from 0 to 10000 (0: no limit)",
                group: Group::Sessions,
                number: Number::count(0, 10_000),
                list: false,
                boolean: false,
            },
            Setting::ConcurrentSessions => Spec {
                key: "enable_concurrent_sessions",
                flag: "enable-concurrent-sessions",
                env: "PALISADE_CONCURRENT_SESSIONS",
                alias: Some("ENABLE_CONCURRENT_SESSIONS"),
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether a user may hold several sessions at once; when false a login is refused while \
                        the user has a live session, so a second party cannot sign in unnoticed alongside",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Sessions,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::SessionBinding => Spec {
                key: "session_binding",
                flag: "session-binding",
                env: "PALISADE_SESSION_BINDING",
                alias: None,
                default: DefaultValue::Text("device"),
                secret: false,
                value_name: "LEVEL",
                about: "how tightly a session is bound to where it was opened: a stolen session token used from \
                        another device (or network, or address) ends the session",
                expected: "off, device (same device), asn (same device and network; needs geoip_asn_db) or \
                           address (same device and IP address)",
                group: Group::Sessions,
                number: None,
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ login protection
            Setting::MaxLoginAttempts => Spec {
                key: "max_login_attempts",
                flag: "max-login-attempts",
                env: "PALISADE_MAX_LOGIN_ATTEMPTS",
                alias: Some("SECURITY_MAX_LOGIN_ATTEMPTS"),
                default: DefaultValue::Text("5"),
                secret: false,
                value_name: "N",
                about: "failed logins in a row after which an account is locked for lockout_duration",
                expected: "a whole number from 1 to 100",
                group: Group::LoginProtection,
                number: Number::count(1, 100),
                list: false,
                boolean: false,
            },
            Setting::LockoutDuration => Spec {
                key: "lockout_duration",
                flag: "lockout-duration",
                env: "PALISADE_LOCKOUT_DURATION",
                alias: Some("SECURITY_LOCKOUT_DURATION"),
                default: DefaultValue::Text("900"),
                secret: false,
                value_name: "SECONDS",
                about: "how long a locked account stays locked, and the window of ip_max_login_failures",
                expected: "a whole number of seconds from 1 to 86400",
                group: Group::LoginProtection,
                number: Number::of(Unit::Seconds, 1, 86_400),
                list: false,
                boolean: false,
            },
            Setting::IpMaxLoginFailures => Spec {
                key: "ip_max_login_failures",
                flag: "ip-max-login-failures",
                env: "PALISADE_IP_MAX_LOGIN_FAILURES",
                alias: None,
                default: DefaultValue::Text("50"),
                secret: false,
                value_name: "N",
                about: "failed logins from one client IP per lockout_duration window before its logins are \
                        refused with 429 (against password spraying across accounts); failed OAuth client \
                        authentications are counted the same way, apart, for the token, introspection and \
                        revocation endpoints",
                expected: "a whole number from 1 to 100000",
                group: Group::LoginProtection,
                number: Number::count(1, 100_000),
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ passwords
            Setting::PasswordMinLength => Spec {
                key: "password_min_length",
                flag: "password-min-length",
                env: "PALISADE_PASSWORD_MIN_LENGTH",
                alias: Some("SECURITY_PASSWORD_MIN_LENGTH"),
                default: DefaultValue::Text("12"),
                secret: false,
                value_name: "N",
                about: "minimum password length",
                expected: "a whole number from 8 to 128",
                group: Group::Passwords,
                number: Number::count(8, 128),
                list: false,
                boolean: false,
            },
            Setting::PasswordRequire => Spec {
                key: "password_require",
                flag: "password-require",
                env: "PALISADE_PASSWORD_REQUIRE",
                alias: None,
                default: DefaultValue::Unset("none (NIST SP 800-63B advises against composition rules)"),
                secret: false,
                value_name: "LIST",
                about: "character classes every new password must contain",
                expected: "a comma-separated list of upper, lower, digit and symbol, such as upper,digit \
                           (empty: no composition rule)",
                group: Group::Passwords,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::PasswordMinScore => Spec {
                key: "password_min_score",
                flag: "password-min-score",
                env: "PALISADE_PASSWORD_MIN_SCORE",
                alias: None,
                default: DefaultValue::Text("3"),
                secret: false,
                value_name: "SCORE",
                about: "minimum zxcvbn strength score of a new password (0 accepts any, 4 is the strictest)",
                expected: "a whole number from 0 to 4",
                group: Group::Passwords,
                number: Number::count(0, 4),
                list: false,
                boolean: false,
            },
            Setting::PasswordHistory => Spec {
                key: "password_history",
                flag: "password-history",
                env: "PALISADE_PASSWORD_HISTORY",
                alias: None,
                default: DefaultValue::Text("5"),
                secret: false,
                value_name: "N",
                about: "how many previous passwords a user may not reuse (0: no history is kept)",
                expected: "a whole number from 0 to 24",
                group: Group::Passwords,
                number: Number::count(0, 24),
                list: false,
                boolean: false,
            },
            Setting::PasswordMaxAge => Spec {
                key: "password_max_age_days",
                flag: "password-max-age-days",
                env: "PALISADE_PASSWORD_MAX_AGE_DAYS",
                alias: None,
                default: DefaultValue::Unset("unset: passwords do not expire"),
                secret: false,
                value_name: "DAYS",
                about: "age after which a password must be changed (NIST SP 800-63B advises against \
                        periodic expiry)",
                expected: "a whole number of days from 1 to 3650 (empty: passwords do not expire)",
                group: Group::Passwords,
                number: Number::of(Unit::Days, 1, 3650),
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ hashing
            Setting::Argon2MemoryKib => Spec {
                key: "argon2_memory_kib",
                flag: "argon2-memory-kib",
                env: "PALISADE_ARGON2_MEMORY_KIB",
                alias: None,
                default: DefaultValue::Text("19456"),
                secret: false,
                value_name: "KIB",
                about: "Argon2id memory cost of each password hash (each concurrent hash holds this much)",
                expected: "a whole number of KiB from 19456 (19 MiB, the OWASP minimum) to 4194304 (4 GiB)",
                group: Group::Hashing,
                number: Number::of(Unit::Kibibytes, 19_456, 4_194_304),
                list: false,
                boolean: false,
            },
            Setting::Argon2Iterations => Spec {
                key: "argon2_iterations",
                flag: "argon2-iterations",
                env: "PALISADE_ARGON2_ITERATIONS",
                alias: None,
                default: DefaultValue::Text("2"),
                secret: false,
                value_name: "N",
                about: "Argon2id time cost (passes over the memory) of each password hash",
                expected: "a whole number from 2 (the OWASP minimum) to 100",
                group: Group::Hashing,
                number: Number::count(2, 100),
                list: false,
                boolean: false,
            },
            Setting::Argon2Parallelism => Spec {
                key: "argon2_parallelism",
                flag: "argon2-parallelism",
                env: "PALISADE_ARGON2_PARALLELISM",
                alias: None,
                default: DefaultValue::Text("1"),
                secret: false,
                value_name: "N",
                about: "Argon2id lanes of each password hash; changes the hash, so stored hashes keep the \
                        value they were made with",
                expected: "a whole number from 1 to 16",
                group: Group::Hashing,
                number: Number::count(1, 16),
                list: false,
                boolean: false,
            },
            Setting::HashConcurrency => Spec {
                key: "hash_concurrency",
                flag: "hash-concurrency",
                env: "PALISADE_HASH_CONCURRENCY",
                alias: None,
                default: DefaultValue::Unset("unset: one per CPU core"),
                secret: false,
                value_name: "N",
                about: "how many password hashes run at once on the blocking pool; more wait their turn, \
                        which bounds the memory and CPU a login flood can take",
                expected: "a whole number from 1 to 256 (empty: one per CPU core)",
                group: Group::Hashing,
                number: Number::count(1, 256),
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ multi-factor authentication
            Setting::MfaIssuer => Spec {
                key: "mfa_issuer",
                flag: "mfa-issuer",
                env: "PALISADE_MFA_ISSUER",
                alias: None,
                default: DefaultValue::Text("Palisade"),
                secret: false,
                value_name: "NAME",
                about: "issuer name authenticator apps show next to a TOTP account",
                expected: "a non-empty name without `:` or control characters, such as Palisade or \
                           Example Corp (authenticator apps split their labels on `:`)",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::MfaRequired => Spec {
                key: "mfa_required",
                flag: "mfa-required",
                env: "PALISADE_MFA_REQUIRED",
                alias: Some("SECURITY_MFA_REQUIRED"),
                default: DefaultValue::Text("false"),
                secret: false,
                value_name: "BOOL",
                about: "whether every login needs a second factor, whatever the user's role",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::MfaRequiredRoles => Spec {
                key: "mfa_required_roles",
                flag: "mfa-required-roles",
                env: "PALISADE_MFA_REQUIRED_ROLES",
                alias: None,
                default: DefaultValue::Unset("none: only mfa_required and each user's own factors decide"),
                secret: false,
                value_name: "LIST",
                about: "roles whose users always need a second factor",
                expected: "a comma-separated list of roles; the roles Palisade knows are: admin \
                           (empty: no role requires it)",
                group: Group::Mfa,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::MfaFactors => Spec {
                key: "mfa_factors",
                flag: "mfa-factors",
                env: "PALISADE_MFA_FACTORS",
                alias: None,
                default: DefaultValue::Text("1"),
                secret: false,
                value_name: "N",
                about: "distinct second factors a login must pass when one is needed (2: enhanced MFA)",
                expected: "a whole number from 1 to 2",
                group: Group::Mfa,
                number: Number::count(1, 2),
                list: false,
                boolean: false,
            },
            Setting::MfaCodeTtl => Spec {
                key: "mfa_code_ttl",
                flag: "mfa-code-ttl",
                env: "PALISADE_MFA_CODE_TTL",
                alias: None,
                default: DefaultValue::Text("300"),
                secret: false,
                value_name: "SECONDS",
                about: "lifetime of a one-time code sent by SMS or e-mail",
                expected: "a whole number of seconds from 30 to 3600",
                group: Group::Mfa,
                number: Number::of(Unit::Seconds, 30, 3600),
                list: false,
                boolean: false,
            },
            Setting::MfaResendInterval => Spec {
                key: "mfa_resend_interval",
                flag: "mfa-resend-interval",
                env: "PALISADE_MFA_RESEND_INTERVAL",
                alias: None,
                default: DefaultValue::Text("30"),
                secret: false,
                value_name: "SECONDS",
                about: "shortest time between two codes sent to one user by one method (SMS costs money)",
                expected: "a whole number of seconds from 1 to 3600",
                group: Group::Mfa,
                number: Number::of(Unit::Seconds, 1, 3600),
                list: false,
                boolean: false,
            },
            Setting::SmtpServer => Spec {
                key: "smtp_server",
                flag: "smtp-server",
                env: "PALISADE_SMTP_SERVER",
                alias: Some("SMTP_SERVER"),
                default: DefaultValue::Unset("unset: no e-mail is sent, and there is no e-mail factor"),
                secret: false,
                value_name: "HOST",
                about: "mail server that e-mail codes are handed to",
                expected: "a host name or IP address without port or scheme, such as smtp.example.com, \
                           192.0.2.25 or [2001:db8::25] (the port goes in smtp_port)",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::SmtpPort => Spec {
                key: "smtp_port",
                flag: "smtp-port",
                env: "PALISADE_SMTP_PORT",
                alias: Some("SMTP_PORT"),
                default: DefaultValue::Text("587"),
                secret: false,
                value_name: "PORT",
                about: "port of the mail server; when unset and smtp_tls is tls, 465 instead",
                expected: "a whole number from 1 to 65535 (587 for STARTTLS submission, 465 for implicit TLS)",
                group: Group::Mfa,
                number: Number::count(1, 65_535),
                list: false,
                boolean: false,
            },
            Setting::SmtpUsername => Spec {
                key: "smtp_username",
                flag: "smtp-username",
                env: "PALISADE_SMTP_USERNAME",
                alias: Some("SMTP_USERNAME"),
                default: DefaultValue::Unset("unset: no authentication"),
                secret: false,
                value_name: "NAME",
                about: "user name Palisade signs in to the mail server with (needs smtp_password)",
                expected: "a user name without control characters (given together with smtp_password)",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::SmtpPassword => Spec {
                key: "smtp_password",
                flag: "smtp-password",
                env: "PALISADE_SMTP_PASSWORD",
                alias: Some("SMTP_PASSWORD"),
                default: DefaultValue::Unset("unset: no authentication"),
                secret: true,
                value_name: "PASSWORD",
                about: "password Palisade signs in to the mail server with (needs smtp_username)",
                expected: "the mail account's password or app password (given together with smtp_username)",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::SmtpTls => Spec {
                key: "smtp_tls",
                flag: "smtp-tls",
                env: "PALISADE_SMTP_TLS",
                alias: Some("SMTP_TLS"),
                default: DefaultValue::Text("starttls"),
                secret: false,
                value_name: "MODE",
                about: "how the mail server connection is encrypted; the server's certificate is always verified",
                expected: "starttls (upgrade a plain connection, refuse if the server cannot), tls (implicit \
                           TLS, usually port 465) or off (plain text: only for a relay on the same host)",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::SmtpFrom => Spec {
                key: "smtp_from",
                flag: "smtp-from",
                env: "PALISADE_SMTP_FROM",
                alias: Some("SMTP_FROM"),
                default: DefaultValue::Unset("unset; required when smtp_server is set"),
                secret: false,
                value_name: "MAILBOX",
                about: "the From of every e-mail Palisade sends",
                expected: "an RFC 5322 mailbox, such as Palisade <no-reply@example.com> or no-reply@example.com",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::SmsProvider => Spec {
                key: "sms_provider",
                flag: "sms-provider",
                env: "PALISADE_SMS_PROVIDER",
                alias: Some("SMS_PROVIDER"),
                default: DefaultValue::Unset("unset: no text message is sent, and there is no SMS factor"),
                secret: false,
                value_name: "PROVIDER",
                about: "service that sends SMS codes",
                expected: "twilio (the only provider; it needs twilio_account_sid, twilio_auth_token and \
                           twilio_from)",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::TwilioAccountSid => Spec {
                key: "twilio_account_sid",
                flag: "twilio-account-sid",
                env: "PALISADE_TWILIO_ACCOUNT_SID",
                alias: Some("TWILIO_ACCOUNT_SID"),
                default: DefaultValue::Unset("unset; required when sms_provider is twilio"),
                secret: false,
                value_name: "SID",
                about: "the Twilio account messages are sent from",
                expected: "a Twilio account SID: AC followed by 32 hexadecimal digits, from the Twilio console",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::TwilioAuthToken => Spec {
                key: "twilio_auth_token",
                flag: "twilio-auth-token",
                env: "PALISADE_TWILIO_AUTH_TOKEN",
                alias: Some("TWILIO_AUTH_TOKEN"),
                default: DefaultValue::Unset("unset; required when sms_provider is twilio"),
                secret: true,
                value_name: "TOKEN",
                about: "the Twilio account's auth token: whoever holds it can send messages at your cost",
                expected: "the auth token from the Twilio console, without spaces",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::TwilioFrom => Spec {
                key: "twilio_from",
                flag: "twilio-from",
                env: "PALISADE_TWILIO_FROM",
                alias: Some("TWILIO_FROM_NUMBER"),
                default: DefaultValue::Unset("unset; required when sms_provider is twilio"),
                secret: false,
                value_name: "PHONE",
                about: "the Twilio phone number text messages come from",
                expected: "an E.164 phone number: + then 8 to 15 digits, the first not 0, such as +14155550123",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::TwilioBaseUrl => Spec {
                key: "twilio_base_url",
                flag: "twilio-base-url",
                env: "PALISADE_TWILIO_BASE_URL",
                alias: None,
                default: DefaultValue::Text("https://api.twilio.com"),
                secret: false,
                value_name: "URL",
                about: "base URL of the Twilio REST API (change it only for a regional edge or a test double)",
                expected: "an absolute http:// or https:// URL without user name, password, query or fragment, \
                           such as https://api.twilio.com",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::NotifyWebhookUrl => Spec {
                key: "notify_webhook_url",
                flag: "notify-webhook-url",
                env: "PALISADE_NOTIFY_WEBHOOK_URL",
                alias: None,
                default: DefaultValue::Unset("unset: security notices are not posted anywhere"),
                secret: true,
                value_name: "URL",
                about: "where security notices (a login from a new device, …) are also posted as JSON, so an \
                        operator hears of them; whoever holds the URL can post forged notices to it",
                expected: "an absolute http:// or https:// URL without a fragment, such as \
                           https://hooks.example.com/palisade (user:password@ in it is sent as basic auth)",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::WebauthnRpId => Spec {
                key: "webauthn_rp_id",
                flag: "webauthn-rp-id",
                env: "PALISADE_WEBAUTHN_RP_ID",
                alias: None,
                default: DefaultValue::Unset("the issuer's host when it is a domain name; otherwise passkeys are off"),
                secret: false,
                value_name: "DOMAIN",
                about: "the WebAuthn relying party id passkeys are bound to (they work on this domain and its \
                        subdomains only; changing it orphans every registered passkey)",
                expected: "a domain name such as example.com or localhost, lower case, without scheme, port or path",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::WebauthnOrigin => Spec {
                key: "webauthn_origin",
                flag: "webauthn-origin",
                env: "PALISADE_WEBAUTHN_ORIGIN",
                alias: None,
                default: DefaultValue::Unset("the issuer's origin"),
                secret: false,
                value_name: "URL",
                about: "the origin of the pages that call navigator.credentials (its host must be the relying \
                        party id or one of its subdomains)",
                expected: "an origin: https://host[:port] (http only for localhost), without path, query or fragment",
                group: Group::Mfa,
                number: None,
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ risk, devices, GeoIP
            Setting::GeoipDb => Spec {
                key: "geoip_db",
                flag: "geoip-db",
                env: "PALISADE_GEOIP_DB",
                alias: Some("GEOIP_DATABASE_PATH"),
                default: DefaultValue::Unset("unset: no country or location signals"),
                secret: false,
                value_name: "FILE",
                about: "a MaxMind City or Country database (.mmdb): logins from a new country, and impossible \
                        travel (City only), raise the risk score; re-read within a minute when the file changes",
                expected: "the path of a MaxMind DB file such as /var/lib/GeoIP/GeoLite2-City.mmdb (a missing or \
                           damaged file does not stop start-up: /ready reports geoip DEGRADED)",
                group: Group::Risk,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::GeoipAsnDb => Spec {
                key: "geoip_asn_db",
                flag: "geoip-asn-db",
                env: "PALISADE_GEOIP_ASN_DB",
                alias: None,
                default: DefaultValue::Unset("unset: no network signals"),
                secret: false,
                value_name: "FILE",
                about: "a MaxMind ASN database (.mmdb): logins from a new network raise the risk score, and \
                        session_binding = asn can tell networks apart",
                expected: "the path of a MaxMind DB file such as /var/lib/GeoIP/GeoLite2-ASN.mmdb",
                group: Group::Risk,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::GeoipAnonymousDb => Spec {
                key: "geoip_anonymous_db",
                flag: "geoip-anonymous-db",
                env: "PALISADE_GEOIP_ANONYMOUS_DB",
                alias: None,
                default: DefaultValue::Unset("unset: anonymizers are not recognised"),
                secret: false,
                value_name: "FILE",
                about: "a MaxMind Anonymous-IP database (.mmdb): logins through Tor, public proxies, anonymous \
                        VPNs and hosting networks raise the risk score",
                expected: "the path of a MaxMind DB file such as /var/lib/GeoIP/GeoIP2-Anonymous-IP.mmdb",
                group: Group::Risk,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::RiskEnabled => Spec {
                key: "risk_enabled",
                flag: "risk-enabled",
                env: "PALISADE_RISK_ENABLED",
                alias: Some("SECURITY_RISK_ANALYSIS_ENABLED"),
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether every login is scored for risk, so a stolen password used from an unusual \
                        device, place or network meets a second factor or a refusal",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Risk,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::RiskThresholds => Spec {
                key: "risk_thresholds",
                flag: "risk-thresholds",
                env: "PALISADE_RISK_THRESHOLDS",
                alias: None,
                default: DefaultValue::Text("0.2,0.5,0.8"),
                secret: false,
                value_name: "MFA,ENHANCED,BLOCK",
                about: "the risk scores above which a login needs one second factor, two, or is refused",
                expected: "three comma-separated numbers mfa,enhanced,block with 0 ≤ mfa ≤ enhanced ≤ block ≤ 1, \
                           such as 0.2,0.5,0.8",
                group: Group::Risk,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::RiskWeights => Spec {
                key: "risk_weights",
                flag: "risk-weights",
                env: "PALISADE_RISK_WEIGHTS",
                alias: None,
                default: DefaultValue::Unset(
                    "the built-in weights: new_device=0.25, new_country=0.35, new_network=0.15, \
                     impossible_travel=0.7, account_failures=0.3, address_failures=0.35, unusual_hour=0.1, \
                     unusual_weekday=0.05, anonymizer=0.45, trusted_device=0.5",
                ),
                secret: false,
                value_name: "LIST",
                about: "how much each risk factor weighs (trusted_device: the fraction of the score a trusted \
                        device takes off)",
                expected: "a comma-separated list of factor=weight, each weight from 0 to 1, such as \
                           new_country=0.5,anonymizer=0.6; the factors are new_device, new_country, new_network, \
                           impossible_travel, account_failures, address_failures, unusual_hour, unusual_weekday, \
                           anonymizer and trusted_device (denied_address is fixed at 1); factors not listed keep \
                           their built-in weight",
                group: Group::Risk,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::RiskMaxTravelKmh => Spec {
                key: "risk_max_travel_kmh",
                flag: "risk-max-travel-kmh",
                env: "PALISADE_RISK_MAX_TRAVEL_KMH",
                alias: None,
                default: DefaultValue::Text("900"),
                secret: false,
                value_name: "KMH",
                about: "travel faster than this between two logins is impossible travel: the same account used \
                        from two distant places by two people",
                expected: "a whole number of km/h from 100 to 20000 (900 is an airliner)",
                group: Group::Risk,
                number: Number::count(100, 20_000),
                list: false,
                boolean: false,
            },
            Setting::RiskDenyCidrs => Spec {
                key: "risk_deny_cidrs",
                flag: "risk-deny-cidrs",
                env: "PALISADE_RISK_DENY_CIDRS",
                alias: None,
                default: DefaultValue::Unset("none"),
                secret: false,
                value_name: "LIST",
                about: "addresses whose logins are always refused (risk score 1): known attack sources",
                expected: "a comma-separated list of IP addresses or CIDR networks, such as \
                           203.0.113.0/24, 2001:db8:bad::/48 (a bare address means /32 or /128; host bits must be \
                           zero)",
                group: Group::Risk,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::RiskAllowCidrs => Spec {
                key: "risk_allow_cidrs",
                flag: "risk-allow-cidrs",
                env: "PALISADE_RISK_ALLOW_CIDRS",
                alias: None,
                default: DefaultValue::Unset("none"),
                secret: false,
                value_name: "LIST",
                about: "addresses exempt from the address factors (deny list, anonymizer, address failures, new \
                        network): an office or VPN egress you vouch for",
                expected: "a comma-separated list of IP addresses or CIDR networks, such as \
                           198.51.100.0/24, 2001:db8:1::/48 (a bare address means /32 or /128; host bits must be \
                           zero)",
                group: Group::Risk,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::DeviceApproval => Spec {
                key: "device_approval",
                flag: "device-approval",
                env: "PALISADE_DEVICE_APPROVAL",
                alias: None,
                default: DefaultValue::Text("false"),
                secret: false,
                value_name: "BOOL",
                about: "whether a login from a new device waits for approval from an existing session or a \
                        mailed link, so a stolen password alone does not open a session on an unknown device",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Risk,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::DeviceApprovalTtl => Spec {
                key: "device_approval_ttl",
                flag: "device-approval-ttl",
                env: "PALISADE_DEVICE_APPROVAL_TTL",
                alias: None,
                default: DefaultValue::Text("900"),
                secret: false,
                value_name: "SECONDS",
                about: "how long a new device's login waits for approval before it must start again",
                expected: "a whole number of seconds from 60 to 86400",
                group: Group::Risk,
                number: Number::of(Unit::Seconds, 60, 86_400),
                list: false,
                boolean: false,
            },
            Setting::RememberDeviceTtl => Spec {
                key: "remember_device_ttl",
                flag: "remember-device-ttl",
                env: "PALISADE_REMEMBER_DEVICE_TTL",
                alias: None,
                default: DefaultValue::Text("2592000"),
                secret: false,
                value_name: "SECONDS",
                about: "how long \"remember this device\" lowers the risk of logins from a device after a passed \
                        second factor (30 days by default; 0 turns the option off)",
                expected: "a whole number of seconds from 0 to 34560000 (400 days; 0: off)",
                group: Group::Risk,
                number: Number::of(Unit::Seconds, 0, 34_560_000),
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------------ encryption service
            Setting::EncryptionAlgorithm => Spec {
                key: "encryption_algorithm",
                flag: "encryption-algorithm",
                env: "PALISADE_ENCRYPTION_ALGORITHM",
                alias: None,
                default: DefaultValue::Text("AES-256-GCM"),
                secret: false,
                value_name: "CIPHER",
                about: "the authenticated cipher new data of every classification is sealed with, unless \
                        encryption_policies says otherwise for a class (data already sealed keeps its cipher)",
                expected: "AES-256-GCM or XCHACHA20-POLY1305 (any letter case; `_` for `-` too, as in AES_256_GCM)",
                group: Group::Encryption,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::EncryptionKeyRotation => Spec {
                key: "encryption_key_rotation_days",
                flag: "encryption-key-rotation-days",
                env: "PALISADE_ENCRYPTION_KEY_ROTATION_DAYS",
                alias: None,
                default: DefaultValue::Text("90"),
                secret: false,
                value_name: "DAYS",
                about: "each classification's data key is rotated by the schedule when it is this old, which \
                        bounds how much data one key protects and how long a leaked key opens new data",
                expected: "a whole number of days from 1 to 3650 (encryption_policies may set a class's own, \
                           e.g. RESTRICTED.rotation_days=30)",
                group: Group::Encryption,
                number: Number::of(Unit::Days, 1, 3650),
                list: false,
                boolean: false,
            },
            Setting::EncryptionCompression => Spec {
                key: "encryption_compression",
                flag: "encryption-compression",
                env: "PALISADE_ENCRYPTION_COMPRESSION",
                alias: None,
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether callers may ask for zstd compression before encryption at all: false refuses it \
                        for every class; true leaves it to each class's policy, which refuses it for RESTRICTED \
                        and TOP_SECRET because a ciphertext's length then leaks its content (CRIME, BREACH)",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Encryption,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::EncryptionMaxPlaintext => Spec {
                key: "encryption_max_plaintext",
                flag: "encryption-max-plaintext",
                env: "PALISADE_ENCRYPTION_MAX_PLAINTEXT",
                alias: None,
                default: DefaultValue::Text("524288"),
                secret: false,
                value_name: "BYTES",
                about: "the largest plaintext /crypto/encrypt accepts, and the most a compressed value may \
                        expand to when it is decrypted, so one request cannot exhaust memory",
                expected: "a whole number of bytes from 1 to 786432 (768 KiB: its base64 must fit the 1 MiB \
                           request body limit; 524288 is 512 KiB)",
                group: Group::Encryption,
                number: Number::of(Unit::Bytes, 1, 786_432),
                list: false,
                boolean: false,
            },
            Setting::EncryptionPolicies => Spec {
                key: "encryption_policies",
                flag: "encryption-policies",
                env: "PALISADE_ENCRYPTION_POLICIES",
                alias: None,
                default: DefaultValue::Unset(
                    "the built-in policies: every class uses encryption_algorithm and \
                     encryption_key_rotation_days, compression is refused for RESTRICTED and TOP_SECRET, and \
                     TOP_SECRET needs the HSM when one holds the master key",
                ),
                secret: false,
                value_name: "LIST",
                about: "per-classification policies that replace the built-in ones, applied after \
                        encryption_algorithm, encryption_key_rotation_days and encryption_compression",
                expected: "a comma-separated list of CLASS.key=value, such as \
                           RESTRICTED.algorithm=XCHACHA20-POLY1305,RESTRICTED.rotation_days=30; the classes are \
                           PUBLIC, INTERNAL, CONFIDENTIAL, PII, RESTRICTED and TOP_SECRET, the keys algorithm \
                           (AES-256-GCM or XCHACHA20-POLY1305), compression (true or false), rotation_days (1 to \
                           3650) and hsm (true or false; true only when an HSM holds the master key, hsm_module); keys \
                           not listed keep their value",
                group: Group::Encryption,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::EncryptionReencryptBatchSize => Spec {
                key: "encryption_reencrypt_batch_size",
                flag: "encryption-reencrypt-batch-size",
                env: "PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE",
                alias: None,
                default: DefaultValue::Text("500"),
                secret: false,
                value_name: "ROWS",
                about: "rows the background re-encryption (second factors and signing keys moved to the newest \
                        data key) reads, rewrites and checkpoints per batch: larger batches finish sooner, \
                        smaller ones hold the store for less time at once and re-read fewer rows after a restart",
                expected: "a whole number from 1 to 10000",
                group: Group::Encryption,
                number: Number::count(1, 10_000),
                list: false,
                boolean: false,
            },
            Setting::EncryptionReencryptRate => Spec {
                key: "encryption_reencrypt_rate",
                flag: "encryption-reencrypt-rate",
                env: "PALISADE_ENCRYPTION_REENCRYPT_RATE",
                alias: None,
                default: DefaultValue::Unset("unset: no limit"),
                secret: false,
                value_name: "ROWS/S",
                about: "at most this many rows per second for the background re-encryption, so it does not \
                        starve the store of its real work",
                expected: "a whole number from 1 to 1000000 (empty: no limit)",
                group: Group::Encryption,
                number: Number::count(1, 1_000_000),
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ security monitoring
            // The defaults are core's (`palisade_core::monitoring::detect::Thresholds::default()`);
            // the table needs them as text, so a test holds the two together.
            Setting::MonitoringDetectors => Spec {
                key: "monitoring_detectors",
                flag: "monitoring-detectors",
                env: "PALISADE_MONITORING_DETECTORS",
                alias: Some("SECURITY_THREAT_DETECTION_ENABLED"),
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether the detectors (brute force, password spraying, credential stuffing, token reuse, \
                        session hijack, API-key abuse) examine every audited event and open incidents; off, \
                        events are still stored and queried but no attack is noticed",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Monitoring,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::MonitoringBruteForceFailures => Spec {
                key: "monitoring_brute_force_failures",
                flag: "monitoring-brute-force-failures",
                env: "PALISADE_MONITORING_BRUTE_FORCE_FAILURES",
                alias: None,
                default: DefaultValue::Text("10"),
                secret: false,
                value_name: "N",
                about: "failed logins on one account within monitoring_brute_force_window that open a brute_force \
                        incident (and attach to it again at each multiple): password guessing against one account",
                expected: "a whole number from 1 to 1000000",
                group: Group::Monitoring,
                number: Number::count(1, 1_000_000),
                list: false,
                boolean: false,
            },
            Setting::MonitoringBruteForceWindow => Spec {
                key: "monitoring_brute_force_window",
                flag: "monitoring-brute-force-window",
                env: "PALISADE_MONITORING_BRUTE_FORCE_WINDOW",
                alias: None,
                default: DefaultValue::Text("300"),
                secret: false,
                value_name: "SECONDS",
                about: "the window in which monitoring_brute_force_failures are counted",
                expected: "a whole number of seconds from 1 to 86400 (1 second to 1 day)",
                group: Group::Monitoring,
                number: Number::of(Unit::Seconds, 1, 86_400),
                list: false,
                boolean: false,
            },
            Setting::MonitoringSprayingAccounts => Spec {
                key: "monitoring_spraying_accounts",
                flag: "monitoring-spraying-accounts",
                env: "PALISADE_MONITORING_SPRAYING_ACCOUNTS",
                alias: None,
                default: DefaultValue::Text("10"),
                secret: false,
                value_name: "N",
                about: "distinct accounts failing from one address within monitoring_spraying_window that open a \
                        password_spraying incident: a few common passwords tried across many accounts",
                expected: "a whole number from 1 to 1000000",
                group: Group::Monitoring,
                number: Number::count(1, 1_000_000),
                list: false,
                boolean: false,
            },
            Setting::MonitoringSprayingWindow => Spec {
                key: "monitoring_spraying_window",
                flag: "monitoring-spraying-window",
                env: "PALISADE_MONITORING_SPRAYING_WINDOW",
                alias: None,
                default: DefaultValue::Text("600"),
                secret: false,
                value_name: "SECONDS",
                about: "the window in which monitoring_spraying_accounts are counted",
                expected: "a whole number of seconds from 1 to 86400 (1 second to 1 day)",
                group: Group::Monitoring,
                number: Number::of(Unit::Seconds, 1, 86_400),
                list: false,
                boolean: false,
            },
            Setting::MonitoringStuffingFailures => Spec {
                key: "monitoring_stuffing_failures",
                flag: "monitoring-stuffing-failures",
                env: "PALISADE_MONITORING_STUFFING_FAILURES",
                alias: None,
                default: DefaultValue::Text("100"),
                secret: false,
                value_name: "N",
                about: "failed logins on any account within monitoring_stuffing_window that open a credential_stuffing \
                        incident when they also come from monitoring_stuffing_addresses addresses and make \
                        monitoring_stuffing_failure_percent of all logins: leaked credentials replayed from many \
                        addresses",
                expected: "a whole number from 1 to 1000000",
                group: Group::Monitoring,
                number: Number::count(1, 1_000_000),
                list: false,
                boolean: false,
            },
            Setting::MonitoringStuffingAddresses => Spec {
                key: "monitoring_stuffing_addresses",
                flag: "monitoring-stuffing-addresses",
                env: "PALISADE_MONITORING_STUFFING_ADDRESSES",
                alias: None,
                default: DefaultValue::Text("20"),
                secret: false,
                value_name: "N",
                about: "distinct client addresses the failed logins of monitoring_stuffing_failures must come from, \
                        which tells a distributed replay from one client's mistakes",
                expected: "a whole number from 1 to 1000000",
                group: Group::Monitoring,
                number: Number::count(1, 1_000_000),
                list: false,
                boolean: false,
            },
            Setting::MonitoringStuffingFailurePercent => Spec {
                key: "monitoring_stuffing_failure_percent",
                flag: "monitoring-stuffing-failure-percent",
                env: "PALISADE_MONITORING_STUFFING_FAILURE_PERCENT",
                alias: None,
                default: DefaultValue::Text("80"),
                secret: false,
                value_name: "PERCENT",
                about: "share of all logins within monitoring_stuffing_window that must be failing, which tells a \
                        replay of leaked credentials from a busy hour of real users",
                expected: "a whole number from 1 to 100 (percent)",
                group: Group::Monitoring,
                number: Number::count(1, 100),
                list: false,
                boolean: false,
            },
            Setting::MonitoringStuffingWindow => Spec {
                key: "monitoring_stuffing_window",
                flag: "monitoring-stuffing-window",
                env: "PALISADE_MONITORING_STUFFING_WINDOW",
                alias: None,
                default: DefaultValue::Text("300"),
                secret: false,
                value_name: "SECONDS",
                about: "the window in which the credential-stuffing failures, addresses and share are counted",
                expected: "a whole number of seconds from 1 to 86400 (1 second to 1 day)",
                group: Group::Monitoring,
                number: Number::of(Unit::Seconds, 1, 86_400),
                list: false,
                boolean: false,
            },
            Setting::MonitoringApiKeyRefusals => Spec {
                key: "monitoring_api_key_refusals",
                flag: "monitoring-api-key-refusals",
                env: "PALISADE_MONITORING_API_KEY_REFUSALS",
                alias: None,
                default: DefaultValue::Text("20"),
                secret: false,
                value_name: "N",
                about: "refused API-key uses from one address within monitoring_api_key_window that open an \
                        api_key_abuse incident: keys guessed, or revoked and stolen keys replayed",
                expected: "a whole number from 1 to 1000000",
                group: Group::Monitoring,
                number: Number::count(1, 1_000_000),
                list: false,
                boolean: false,
            },
            Setting::MonitoringApiKeyWindow => Spec {
                key: "monitoring_api_key_window",
                flag: "monitoring-api-key-window",
                env: "PALISADE_MONITORING_API_KEY_WINDOW",
                alias: None,
                default: DefaultValue::Text("60"),
                secret: false,
                value_name: "SECONDS",
                about: "the window in which monitoring_api_key_refusals are counted",
                expected: "a whole number of seconds from 1 to 86400 (1 second to 1 day)",
                group: Group::Monitoring,
                number: Number::of(Unit::Seconds, 1, 86_400),
                list: false,
                boolean: false,
            },
            Setting::MonitoringBaselineSlot => Spec {
                key: "monitoring_baseline_slot",
                flag: "monitoring-baseline-slot",
                env: "PALISADE_MONITORING_BASELINE_SLOT",
                alias: None,
                default: DefaultValue::Text("900"),
                secret: false,
                value_name: "SECONDS",
                about: "the length of one slot of a user's activity history: an unusual_activity incident opens when \
                        the current slot's events are far above the user's usual per slot; shorter reacts faster to \
                        a burst (an account taken over and drained) and is noisier",
                expected: "a whole number of seconds from 60 to 86400 (1 minute to 1 day)",
                group: Group::Monitoring,
                number: Number::of(Unit::Seconds, 60, 86_400),
                list: false,
                boolean: false,
            },
            Setting::MonitoringBaselineSlots => Spec {
                key: "monitoring_baseline_slots",
                flag: "monitoring-baseline-slots",
                env: "PALISADE_MONITORING_BASELINE_SLOTS",
                alias: None,
                default: DefaultValue::Text("16"),
                secret: false,
                value_name: "N",
                about: "the past slots of monitoring_baseline_slot that make a user's baseline: more make a steadier \
                        baseline and need a longer history before one can fire",
                expected: "a whole number from 2 to 96",
                group: Group::Monitoring,
                number: Number::count(2, 96),
                list: false,
                boolean: false,
            },
            Setting::MonitoringBaselineMinEvents => Spec {
                key: "monitoring_baseline_min_events",
                flag: "monitoring-baseline-min-events",
                env: "PALISADE_MONITORING_BASELINE_MIN_EVENTS",
                alias: None,
                default: DefaultValue::Text("30"),
                secret: false,
                value_name: "N",
                about: "the least events in one slot that may open an unusual_activity incident, whatever the \
                        baseline: keeps a quiet user from alarming on a handful of events",
                expected: "a whole number from 1 to 1000000",
                group: Group::Monitoring,
                number: Number::count(1, 1_000_000),
                list: false,
                boolean: false,
            },
            Setting::MonitoringIncidentAutoResponse => Spec {
                key: "monitoring_incident_auto_response",
                flag: "monitoring-incident-auto-response",
                env: "PALISADE_MONITORING_INCIDENT_AUTO_RESPONSE",
                alias: None,
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether opening an incident takes the actions monitoring_responses names for its cause \
                        (block the address, lock the account, end the sessions, revoke the key); off, incidents \
                        only inform",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Monitoring,
                number: None,
                list: false,
                boolean: true,
            },
            // Core's `ResponseRules::defaults()` written in seconds; a test holds the two together.
            Setting::MonitoringResponses => Spec {
                key: "monitoring_responses",
                flag: "monitoring-responses",
                env: "PALISADE_MONITORING_RESPONSES",
                alias: None,
                default: DefaultValue::Text(
                    "brute_force=lock_account:900,password_spraying=block_ip:3600,api_key_abuse=block_ip:900,\
                     token_reuse=end_sessions,session_hijack=end_sessions",
                ),
                secret: false,
                value_name: "RULES",
                about: "the automatic response to each cause of incident: block_ip and lock_account for a number \
                        of seconds, end_sessions, revoke_api_key (only a key whose secret was right); every \
                        action is recorded on the incident and reversible by an administrator",
                expected: "cause=action[:seconds][+action…] separated by commas, e.g. \
                           brute_force=lock_account:900,api_key_abuse=block_ip:900+revoke_api_key, or none; causes: \
                           brute_force, password_spraying, credential_stuffing, token_reuse, session_hijack, \
                           api_key_abuse; block_ip and lock_account take 1 to 2592000 seconds",
                group: Group::Monitoring,
                number: None,
                list: false,
                boolean: false,
            },
            // The alert settings' defaults are core's `MonitoringSettings::default()`; a test holds
            // the two together.
            Setting::MonitoringAlertSeverityThreshold => Spec {
                key: "monitoring_alert_severity_threshold",
                flag: "monitoring-alert-severity-threshold",
                env: "PALISADE_MONITORING_ALERT_SEVERITY_THRESHOLD",
                alias: None,
                default: DefaultValue::Text("MEDIUM"),
                secret: false,
                value_name: "SEVERITY",
                about: "incidents at least this severe are sent to the administrators' alert channels (the \
                        original guide's alert_severity_threshold); users choose their own threshold",
                expected: "LOW, MEDIUM, HIGH or CRITICAL (any letter case)",
                group: Group::Monitoring,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::MonitoringAlertEmails => Spec {
                key: "monitoring_alert_emails",
                flag: "monitoring-alert-emails",
                env: "PALISADE_MONITORING_ALERT_EMAILS",
                alias: None,
                default: DefaultValue::Unset("none: administrators get no alert by e-mail"),
                secret: false,
                value_name: "LIST",
                about: "the administrators' e-mail addresses, which get every incident at or above \
                        monitoring_alert_severity_threshold (sent through the smtp_* mail server)",
                expected: "a comma-separated list of e-mail addresses, such as \
                           security@example.com,oncall@example.com",
                group: Group::Monitoring,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::MonitoringAlertWebhookUrl => Spec {
                key: "monitoring_alert_webhook_url",
                flag: "monitoring-alert-webhook-url",
                env: "PALISADE_MONITORING_ALERT_WEBHOOK_URL",
                alias: None,
                default: DefaultValue::Unset("unset: administrators get no alert by webhook"),
                secret: true,
                value_name: "URL",
                about: "where the administrators' alerts are posted as JSON, signed with \
                        monitoring_alert_webhook_secret; whoever holds the URL can post to it",
                expected: "an absolute http:// or https:// URL without a fragment, such as \
                           https://hooks.example.com/palisade-alerts (user:password@ in it is sent as basic auth)",
                group: Group::Monitoring,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::MonitoringPushUrl => Spec {
                key: "monitoring_push_url",
                flag: "monitoring-push-url",
                env: "PALISADE_MONITORING_PUSH_URL",
                alias: None,
                default: DefaultValue::Unset("unset: no push alerts"),
                secret: true,
                value_name: "URL",
                about: "the push gateway users' push alerts are posted to as JSON, signed with \
                        monitoring_alert_webhook_secret; it delivers them to the user's devices",
                expected: "an absolute http:// or https:// URL without a fragment, such as \
                           https://push.example.com/palisade (user:password@ in it is sent as basic auth)",
                group: Group::Monitoring,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::MonitoringAlertWebhookSecret => Spec {
                key: "monitoring_alert_webhook_secret",
                flag: "monitoring-alert-webhook-secret",
                env: "PALISADE_MONITORING_ALERT_WEBHOOK_SECRET",
                alias: None,
                default: DefaultValue::Unset("unset: only needed with an alert URL"),
                secret: true,
                value_name: "SECRET",
                about: "the HMAC-SHA256 key every alert posted to monitoring_alert_webhook_url or \
                        monitoring_push_url is signed with, so the receiver can refuse forged alerts; anyone \
                        holding it can forge them",
                expected: "at least 32 bytes of random text, such as the output of `openssl rand -hex 32`; \
                           required when monitoring_alert_webhook_url or monitoring_push_url is set",
                group: Group::Monitoring,
                number: None,
                list: false,
                boolean: false,
            },
            Setting::MonitoringAlertsPerHour => Spec {
                key: "monitoring_alerts_per_hour",
                flag: "monitoring-alerts-per-hour",
                env: "PALISADE_MONITORING_ALERTS_PER_HOUR",
                alias: None,
                default: DefaultValue::Text("20"),
                secret: false,
                value_name: "N",
                about: "alerts each recipient (a user, or the administrators) gets per hour at most; the rest \
                        are recorded as suppressed and never sent, so an attack cannot flood a phone or a channel",
                expected: "a whole number from 0 to 10000 (0: no limit)",
                group: Group::Monitoring,
                number: Number::count(0, 10_000),
                list: false,
                boolean: false,
            },
            // ------------------------------------------------------------ compliance
            // The defaults are core's (`palisade_core::compliance::ComplianceSettings::default()`); a test
            // holds the two together.
            Setting::ComplianceGdprEnabled => Spec {
                key: "compliance_gdpr_enabled",
                flag: "compliance-gdpr-enabled",
                env: "PALISADE_COMPLIANCE_GDPR_ENABLED",
                alias: Some("COMPLIANCE_GDPR_ENABLED"),
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether GDPR reports (GET /compliance/reports/{standard}) may be asked for: technical \
                        control checks mapped to its requirements; off, asking for one answers 404",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Compliance,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::ComplianceHipaaEnabled => Spec {
                key: "compliance_hipaa_enabled",
                flag: "compliance-hipaa-enabled",
                env: "PALISADE_COMPLIANCE_HIPAA_ENABLED",
                alias: Some("COMPLIANCE_HIPAA_ENABLED"),
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether HIPAA reports (GET /compliance/reports/{standard}) may be asked for: technical \
                        control checks mapped to its requirements; off, asking for one answers 404",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Compliance,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::CompliancePciDssEnabled => Spec {
                key: "compliance_pci_dss_enabled",
                flag: "compliance-pci-dss-enabled",
                env: "PALISADE_COMPLIANCE_PCI_DSS_ENABLED",
                alias: Some("COMPLIANCE_PCI_DSS_ENABLED"),
                default: DefaultValue::Text("false"),
                secret: false,
                value_name: "BOOL",
                about: "whether PCI DSS reports (GET /compliance/reports/{standard}) may be asked for: technical \
                        control checks mapped to its requirements; off, asking for one answers 404",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Compliance,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::ComplianceSoxEnabled => Spec {
                key: "compliance_sox_enabled",
                flag: "compliance-sox-enabled",
                env: "PALISADE_COMPLIANCE_SOX_ENABLED",
                alias: Some("COMPLIANCE_SOX_ENABLED"),
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether SOX reports (GET /compliance/reports/{standard}) may be asked for: technical \
                        control checks mapped to its requirements; off, asking for one answers 404",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Compliance,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::ComplianceIso27001Enabled => Spec {
                key: "compliance_iso27001_enabled",
                flag: "compliance-iso27001-enabled",
                env: "PALISADE_COMPLIANCE_ISO27001_ENABLED",
                alias: Some("COMPLIANCE_ISO27001_ENABLED"),
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether ISO 27001 reports (GET /compliance/reports/{standard}) may be asked for: technical \
                        control checks mapped to its requirements; off, asking for one answers 404",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::Compliance,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::ComplianceDeletionDelay => Spec {
                key: "compliance_deletion_delay",
                flag: "compliance-deletion-delay",
                env: "PALISADE_COMPLIANCE_DELETION_DELAY",
                alias: None,
                default: DefaultValue::Text("2592000"),
                secret: false,
                value_name: "SECONDS",
                about: "how long after it is requested (or after the withdrawal of a consent that asks for it) an \
                        erasure is carried out, cancellable until then (the guide's deletion_delay, 30 days); GDPR \
                        Art. 12(3) asks for an answer within one month",
                expected: "a whole number of seconds from 1 to 315360000 (1 second to 10 years)",
                group: Group::Compliance,
                number: Number::of(Unit::Seconds, 1, 315_360_000),
                list: false,
                boolean: false,
            },
            Setting::ComplianceConsentValidity => Spec {
                key: "compliance_consent_validity",
                flag: "compliance-consent-validity",
                env: "PALISADE_COMPLIANCE_CONSENT_VALIDITY",
                alias: None,
                default: DefaultValue::Text("31536000"),
                secret: false,
                value_name: "SECONDS",
                about: "how long a consent stays valid after it is given, for the types \
                        compliance_consent_validity_per_type does not list; a lapsed consent counts as not given",
                expected: "a whole number of seconds from 60 to 315360000 (1 minute to 10 years)",
                group: Group::Compliance,
                number: Number::of(Unit::Seconds, 60, 315_360_000),
                list: false,
                boolean: false,
            },
            Setting::ComplianceConsentValidityPerType => Spec {
                key: "compliance_consent_validity_per_type",
                flag: "compliance-consent-validity-per-type",
                env: "PALISADE_COMPLIANCE_CONSENT_VALIDITY_PER_TYPE",
                alias: None,
                default: DefaultValue::Unset("none: every type uses compliance_consent_validity"),
                secret: false,
                value_name: "LIST",
                about: "how long a consent of each listed type stays valid, replacing compliance_consent_validity \
                        for that type",
                expected: "a comma-separated list of type=seconds, such as marketing=15552000,analytics=7776000; a \
                           type is 1 to 64 lowercase letters, digits, _, -, . or :, the seconds 60 to 315360000",
                group: Group::Compliance,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::ComplianceErasureOnWithdrawal => Spec {
                key: "compliance_erasure_on_withdrawal",
                flag: "compliance-erasure-on-withdrawal",
                env: "PALISADE_COMPLIANCE_ERASURE_ON_WITHDRAWAL",
                alias: None,
                default: DefaultValue::Text("data_processing"),
                secret: false,
                value_name: "LIST",
                about: "consent types whose withdrawal schedules the erasure of the user's data after \
                        compliance_deletion_delay (the guide's data_processing)",
                expected: "a comma-separated list of consent types (1 to 64 lowercase letters, digits, _, -, . or :), \
                           or none",
                group: Group::Compliance,
                number: None,
                list: true,
                boolean: false,
            },
            Setting::ComplianceAuditRetentionDays => Spec {
                key: "compliance_audit_retention_days",
                flag: "compliance-audit-retention-days",
                env: "PALISADE_COMPLIANCE_AUDIT_RETENTION_DAYS",
                alias: Some("COMPLIANCE_AUDIT_RETENTION_DAYS"),
                default: DefaultValue::Text("2555"),
                secret: false,
                value_name: "DAYS",
                about: "how long audit records are kept before the retention job archives them behind a sealed checkpoint (the guide's \
                        2555 days: seven years, as SOX asks; HIPAA asks six, PCI DSS one)",
                expected: "a whole number of days from 1 to 36500 (100 years)",
                group: Group::Compliance,
                number: Number::of(Unit::Days, 1, 36_500),
                list: false,
                boolean: false,
            },
            Setting::ComplianceLoginHistoryRetentionDays => Spec {
                key: "compliance_login_history_retention_days",
                flag: "compliance-login-history-retention-days",
                env: "PALISADE_COMPLIANCE_LOGIN_HISTORY_RETENTION_DAYS",
                alias: None,
                default: DefaultValue::Text("365"),
                secret: false,
                value_name: "DAYS",
                about: "how long the scored login attempts (addresses, places, devices) are kept: personal data, kept no longer \
                        than needed",
                expected: "a whole number of days from 1 to 36500 (100 years)",
                group: Group::Compliance,
                number: Number::of(Unit::Days, 1, 36_500),
                list: false,
                boolean: false,
            },
            Setting::ComplianceIncidentRetentionDays => Spec {
                key: "compliance_incident_retention_days",
                flag: "compliance-incident-retention-days",
                env: "PALISADE_COMPLIANCE_INCIDENT_RETENTION_DAYS",
                alias: None,
                default: DefaultValue::Text("730"),
                secret: false,
                value_name: "DAYS",
                about: "how long resolved incidents and their actions are kept",
                expected: "a whole number of days from 1 to 36500 (100 years)",
                group: Group::Compliance,
                number: Number::of(Unit::Days, 1, 36_500),
                list: false,
                boolean: false,
            },
            Setting::ComplianceAlertDeliveryRetentionDays => Spec {
                key: "compliance_alert_delivery_retention_days",
                flag: "compliance-alert-delivery-retention-days",
                env: "PALISADE_COMPLIANCE_ALERT_DELIVERY_RETENTION_DAYS",
                alias: None,
                default: DefaultValue::Text("90"),
                secret: false,
                value_name: "DAYS",
                about: "how long finished alert deliveries (sent, suppressed or dead; they hold addresses and phone numbers) are kept",
                expected: "a whole number of days from 1 to 36500 (100 years)",
                group: Group::Compliance,
                number: Number::of(Unit::Days, 1, 36_500),
                list: false,
                boolean: false,
            },
            Setting::Oauth2RequirePkce => Spec {
                key: "oauth2_require_pkce",
                flag: "oauth2-require-pkce",
                env: "PALISADE_OAUTH2_REQUIRE_PKCE",
                alias: None,
                default: DefaultValue::Text("true"),
                secret: false,
                value_name: "BOOL",
                about: "whether every OAuth client must send a PKCE code_challenge (S256) with an authorization \
                        request (the guide's oauth2.require_pkce); public clients must whatever this says, and \
                        the plain method is always refused",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::OAuth,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::Oauth2CodeTtl => Spec {
                key: "oauth2_code_ttl",
                flag: "oauth2-code-ttl",
                env: "PALISADE_OAUTH2_CODE_TTL",
                alias: None,
                default: DefaultValue::Text("600"),
                secret: false,
                value_name: "SECONDS",
                about: "how long an authorization code can be redeemed after it is issued (the guide's \
                        oauth2.code_lifetime); each code is redeemed once",
                expected: "a whole number of seconds from 10 to 600",
                group: Group::OAuth,
                number: Number::of(Unit::Seconds, 10, 600),
                list: false,
                boolean: false,
            },
            Setting::Oauth2AllowPrivateJwksUri => Spec {
                key: "oauth2_allow_private_jwks_uri",
                flag: "oauth2-allow-private-jwks-uri",
                env: "PALISADE_OAUTH2_ALLOW_PRIVATE_JWKS_URI",
                alias: None,
                default: DefaultValue::Text("false"),
                secret: false,
                value_name: "BOOL",
                about: "whether the jwks_uri of a private_key_jwt client may point at a loopback, private or \
                        link-local address (and use plain http on loopback); off, Palisade fetches only public \
                        https addresses, so a client's URI cannot reach the internal network",
                expected: "true or false (also yes/no, on/off, 1/0, any letter case)",
                group: Group::OAuth,
                number: None,
                list: false,
                boolean: true,
            },
            Setting::Oauth2PendingPerIp => Spec {
                key: "oauth2_pending_per_ip",
                flag: "oauth2-pending-per-ip",
                env: "PALISADE_OAUTH2_PENDING_PER_IP",
                alias: None,
                default: DefaultValue::Text("300"),
                secret: false,
                value_name: "N",
                about: "sign-ins one client IP may start at /oauth2/authorize within ten minutes (the life of a \
                        pending request, kept in the hot store); past it the sign-in page answers 429 until the \
                        window ends, so an anonymous flood cannot fill the store. Raise it for many users \
                        behind one address",
                expected: "a whole number from 10 to 1000000",
                group: Group::OAuth,
                number: Number::count(10, 1_000_000),
                list: false,
                boolean: false,
            },
        }
    }

    /// The toml key (`bind`), also the setting's name in describe() and in error messages.
    pub fn key(self) -> &'static str {
        self.spec().key
    }

    /// The long flag without dashes (`bind` for `--bind`).
    pub fn flag(self) -> &'static str {
        self.spec().flag
    }

    /// The `PALISADE_` environment variable.
    pub fn env(self) -> &'static str {
        self.spec().env
    }

    /// The original guide's variable name, if it has one (`REDIS_URL`, `ENCRYPTION_KEY`).
    pub fn alias(self) -> Option<&'static str> {
        self.spec().alias
    }

    /// Whether the value is a secret: never shown in errors, Debug or describe().
    pub fn is_secret(self) -> bool {
        self.spec().secret
    }

    /// The setting whose toml key is `key`.
    pub fn from_key(key: &str) -> Option<Setting> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The flag, the variable(s) and the toml key, for the tail of error messages.
    pub(crate) fn names(self) -> String {
        let spec = self.spec();
        let vars = match spec.alias {
            Some(alias) => format!("{} (alias {alias})", spec.env),
            None => spec.env.to_owned(),
        };
        format!("set it with --{}, {vars} or `{}` in palisade.toml", spec.flag, spec.key)
    }

    /// The expected form quoted in an error about a value read under the alias (`via_alias`) or
    /// another name. An alias in another unit gets its own range, in its unit.
    pub(crate) fn expected(self, via_alias: bool) -> Cow<'static, str> {
        let spec = self.spec();
        let (Some(number), Some(alias), true) = (spec.number, spec.alias, via_alias) else {
            return Cow::Borrowed(spec.expected);
        };
        let (Some(alias_unit), Some(unit)) = (number.alias_unit, number.unit) else {
            return Cow::Borrowed(spec.expected);
        };
        let (_, min, max) = number.rule(true);
        Cow::Owned(format!(
            "a whole number of {alias_units} from {min} to {max} ({alias} is in {alias_units}; {env}, --{flag} \
             and `{key}` in palisade.toml are in {units})",
            alias_units = alias_unit.name(),
            units = unit.name(),
            env = spec.env,
            flag = spec.flag,
            key = spec.key,
        ))
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Settings named by the contract (CONTRACT.md §3) that this build does not implement yet. Setting
/// one must not be silently ignored (an operator who asks for `SECURITY_MFA_REQUIRED=true` and gets
/// no MFA is worse off than one whose server refuses to start), so each name is refused with a
/// message saying so. When one is implemented, move it into [`Setting`].
pub(crate) struct Planned {
    pub(crate) what: &'static str,
    pub(crate) key: &'static str,
    pub(crate) names: &'static [&'static str],
}

pub(crate) const PLANNED: &[Planned] = &[];

/// The variable that names the configuration file (`--config` wins over it).
pub(crate) const CONFIG_FILE_VAR: &str = "PALISADE_CONFIG";

/// `PALISADE_` names read by tools that talk *to* a Palisade server, never by the server. They are
/// in the server's environment when those tools start it (the peer benchmark kit's `run-all.sh`
/// exports them, then launches the server), so they must not stop it.
pub(crate) const CLIENT_TOOL_VARS: &[&str] =
    &["PALISADE_BASE", "PALISADE_START", "PALISADE_READY_PATH", "PALISADE_API_KEY", "PALISADE_API_KEY_HEADER"];

/// Variables whose name starts with this are the test harness's and are ignored.
pub(crate) const TEST_PREFIX: &str = "PALISADE_TEST_";

/// How the configuration treats an environment (or `.env`) variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarClass {
    /// A setting, by its `PALISADE_` name (`alias == false`) or its alias.
    Setting { setting: Setting, alias: bool },
    /// `PALISADE_CONFIG`.
    ConfigFile,
    /// Not ours, or ours to ignore.
    Ignored,
    /// Ours, and start-up must stop.
    Refused(Refusal),
}

/// Why a variable stops start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A `PALISADE_` name that nothing defines: most likely a typo.
    Unknown,
    /// A contract setting this build does not implement.
    Planned(&'static Planned),
    /// `PALISADE_PORT` (or `PALISADE_…_PORT`) that is not a Kubernetes/Docker service link.
    Port,
}

impl fmt::Debug for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key)
    }
}

impl PartialEq for Planned {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Planned {}

/// Classifies a variable of the process environment or of `.env`. The rule:
///
/// 0. a name ending in `_PORT` whose value is `tcp://…`, `udp://…` or `sctp://…`: a service link
///    (see [`is_port_link`]), ignored even under a setting's name: a Service called `smtp` or
///    `palisade-smtp` injects `SMTP_PORT=tcp://…` or `PALISADE_SMTP_PORT=tcp://…`;
/// 1. a setting's `PALISADE_` name or alias, or `PALISADE_CONFIG`: read;
/// 2. a name of a contract setting not built yet (either spelling): refused when non-empty;
/// 3. other names without the `PALISADE_` prefix: not ours, ignored;
/// 4. `PALISADE_TEST_*` (test harness), the client-tool names in [`CLIENT_TOOL_VARS`], and the
///    service-link variables Kubernetes and Docker inject for a service or container named
///    `palisade…` (`*_SERVICE_HOST`, `*_SERVICE_PORT`, `*_SERVICE_PORT_*`, `*_PORT_<n>_<TCP|UDP|SCTP>[_ADDR|_PORT|_PROTO]`,
///    `*_PORT` whose value is `tcp://…`/`udp://…`/`sctp://…`, `*_ENV_*`, `*_NAME` whose value starts with `/`): ignored;
/// 5. any other `PALISADE_` name: refused, since it is most likely a typo of a setting.
pub(crate) fn classify(name: &str, value: &str) -> VarClass {
    if is_port_link(name, value) {
        return VarClass::Ignored;
    }
    if let Some(setting) = Setting::ALL.into_iter().find(|s| s.env() == name) {
        return VarClass::Setting { setting, alias: false };
    }
    if let Some(setting) = Setting::ALL.into_iter().find(|s| s.alias() == Some(name)) {
        return VarClass::Setting { setting, alias: true };
    }
    if name == CONFIG_FILE_VAR {
        return VarClass::ConfigFile;
    }
    if let Some(planned) = PLANNED.iter().find(|p| p.names.contains(&name)) {
        return if value.trim().is_empty() { VarClass::Ignored } else { VarClass::Refused(Refusal::Planned(planned)) };
    }
    if !name.starts_with("PALISADE_") {
        return VarClass::Ignored;
    }
    if name.starts_with(TEST_PREFIX) || CLIENT_TOOL_VARS.contains(&name) || is_service_link(name, value) {
        return VarClass::Ignored;
    }
    if name.ends_with("_PORT") {
        return VarClass::Refused(Refusal::Port);
    }
    VarClass::Refused(Refusal::Unknown)
}

/// `…_PORT=tcp://HOST:PORT` (or `udp://`, `sctp://`): the one service-link variable whose name a
/// setting may share. The port settings (`PALISADE_SMTP_PORT`, alias `SMTP_PORT`) take a bare
/// number, so a value with a scheme under their name is a link injected for a Service called
/// `smtp` or `palisade-smtp`, never the operator's setting: it is ignored, and the setting is read
/// from a lower layer or its default (see `sources::from_vars`).
pub(crate) fn is_port_link(name: &str, value: &str) -> bool {
    let value = value.trim();
    name.ends_with("_PORT") && ["tcp://", "udp://", "sctp://"].iter().any(|scheme| value.starts_with(scheme))
}

/// Kubernetes (`enableServiceLinks`, on by default) and Docker's legacy `--link` inject variables
/// named after every service/container in the namespace; one called `palisade` or `palisade-…`
/// yields `PALISADE_SERVICE_HOST`, `PALISADE_PORT=tcp://10.0.0.7:8080`,
/// `PALISADE_PORT_8080_TCP_ADDR`, … No setting may ever end in `_SERVICE_HOST`, `_SERVICE_PORT`,
/// `_NAME` or contain `_ENV_`/`_PORT_`, so these never collide with ours. A setting may end in
/// `_PORT` only if it takes a number, so that [`is_port_link`] can tell the link's value from it.
fn is_service_link(name: &str, value: &str) -> bool {
    let value = value.trim();
    if name.ends_with("_SERVICE_HOST") || name.ends_with("_SERVICE_PORT") || name.contains("_SERVICE_PORT_") {
        return true;
    }
    if name.contains("_ENV_") || (name.ends_with("_NAME") && value.starts_with('/')) {
        return true;
    }
    // `…_PORT_<number>_<PROTO>` optionally followed by `_ADDR`, `_PORT` or `_PROTO`. Checked before
    // the bare `…_PORT`, which `…_PORT_8080_TCP_PORT` also ends with.
    let numbered = name.match_indices("_PORT_").any(|(at, _)| {
        let rest = name.get(at + "_PORT_".len()..).unwrap_or_default();
        let mut parts = rest.split('_');
        let number_ok = parts.next().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let proto_ok = parts.next().is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"));
        let suffix_ok = match parts.next() {
            None => true,
            Some(s) => matches!(s, "ADDR" | "PORT" | "PROTO"),
        };
        number_ok && proto_ok && suffix_ok && parts.next().is_none()
    });
    if numbered {
        return true;
    }
    is_port_link(name, value)
}
