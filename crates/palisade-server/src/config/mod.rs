//! Palisade's configuration: typed, layered, validated once, passed in.
//!
//! # Layout
//! - `settings`: the one table of settings (toml key, flag, variable, alias, default, expected
//!   form, secrecy, `--help` group, and the unit and range of numeric settings, including an
//!   alias's own unit) and the rule for which environment names are ours.
//! - `flags`: [`SettingFlags`], the clap flags generated from that table.
//! - `sources`: [`Sources`], the layers (file, `.env`, environment, flags) and which one wins.
//! - `values`: a parser per non-numeric setting, one for every whole number (driven by the table),
//!   and the masking of secrets for display. Checks that involve two settings (HS256 needs a
//!   secret, refresh outlives access, idle within lifetime, the SMTP settings that go together,
//!   what `sms_provider = twilio` needs, `session_binding = asn` needs an ASN database, an alert
//!   URL needs the alert signing key, the encryption policies built from their five settings, the
//!   re-encryption pacing checked by core's own rule) are in `Config::build`.
//! - `error`: [`ConfigError`], whose message names the setting, the source, the problem and the
//!   expected form.
//!
//! Sources, later wins: built-in defaults, `palisade.toml` (or `--config FILE`), `./.env`, the
//! process environment, command-line flags. `docs/configuration.md` is the operator's reference.
//!
//! This module must never write the process environment (`set_var` is unsafe in edition 2024 and
//! races with every other thread), never keep a global configuration (a [`Config`] is passed to
//! whatever needs it), and never show a secret's value: not in `Debug`, errors, [`Config::describe`]
//! or logs.

mod error;
mod flags;
mod settings;
mod sources;
mod values;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use lettre::message::Mailbox;
use palisade_core::crypto::reencrypt::ReencryptionSettings;
use palisade_core::crypto::{Algorithm, DataClassification, EncryptionPolicies, PolicyError};
use palisade_core::device::service::SessionBinding;
use palisade_core::notify::PhoneNumber;
use palisade_core::risk::{FactorName, RiskThresholds, RiskWeights};
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

pub use error::ConfigError;
pub use flags::SettingFlags;
pub use settings::Setting;
pub use sources::{DEFAULT_FILE, DOTENV_FILE, Sources};

use error::Origin;
use settings::{DefaultValue, Unit};
use sources::Layers;

/// Every setting's value, validated. Secrets are typed ([`SecretString`]) and `Debug` shows them as
/// `[REDACTED]`; read them with `.expose_secret()` only where they are used.
///
/// Build one with [`Config::load`] (the real sources) or [`Config::load_from`] (explicit sources;
/// `Config::load_from(Sources::default())` gives the defaults).
#[derive(Debug, Clone)]
pub struct Config {
    /// `PALISADE_BIND`: the listen address. Default `127.0.0.1:8080`; port 0 picks a free port.
    pub bind: SocketAddr,
    /// `PALISADE_ISSUER`: the public base URL. Default `http://127.0.0.1:8080`. Always http or
    /// https, with a host and without credentials, query or fragment. Note that [`Url`] always has
    /// a path, `/` when none was given: trim the trailing `/` where an exact `iss` string is meant.
    pub issuer: Url,
    /// `PALISADE_DATABASE_URL`: `sqlite:…` or `postgres://…`/`postgresql://…`. Default
    /// `sqlite://<data_dir>/palisade.db`, i.e. `sqlite://./palisade-data/palisade.db`.
    pub database_url: SecretString,
    /// `PALISADE_DATABASE_MAX_CONNECTIONS`: pool size, 1..=1000, default 10.
    pub database_max_connections: u32,
    /// `PALISADE_REDIS_URL` (alias `REDIS_URL`): `redis://`, `rediss://` or `redis+cluster://`.
    /// `None`: the durable store holds the ephemeral data.
    pub redis_url: Option<SecretString>,
    /// `PALISADE_MASTER_KEY` (alias `ENCRYPTION_KEY`): checked to be base64 of exactly 32 bytes, as
    /// `palisade_core::crypto::MasterKey::from_base64` reads it. `None`: use (or create) the
    /// development key file in `data_dir`, with a loud warning.
    pub master_key: Option<SecretString>,
    /// `PALISADE_HSM_MODULE` (alias `HSM_MODULE`): the PKCS#11 library whose token holds the master
    /// key. `Some` only when the HSM is on (`hsm_enabled` true or unset); then `hsm_pin` is `Some`
    /// and `master_key` is `None`. See [`crate::hsm::HsmSettings::from_config`].
    pub hsm_module: Option<PathBuf>,
    /// `PALISADE_HSM_SLOT` (alias `HSM_SLOT`): a slot id or index, or a token label. `None`: the
    /// first slot holding an initialised token.
    pub hsm_slot: Option<crate::hsm::HsmSlot>,
    /// `PALISADE_HSM_PIN` (alias `HSM_PIN`): the token's user PIN.
    pub hsm_pin: Option<SecretString>,
    /// `PALISADE_HSM_PROVIDER` (alias `HSM_PROVIDER`): a name for the logs (`SoftHSM`); it changes nothing.
    pub hsm_provider: Option<String>,
    /// `PALISADE_HSM_ENABLED` (alias `HSM_ENABLED`) as given: `Some(false)` turns a configured
    /// module off. `hsm_module` already reflects it.
    pub hsm_enabled: Option<bool>,
    /// `PALISADE_DATA_DIR`: default `./palisade-data`; relative to the working directory.
    pub data_dir: PathBuf,
    /// `PALISADE_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed; bare addresses are
    /// stored as /32 or /128, duplicates dropped, host bits always zero. Compare the peer after
    /// `IpAddr::to_canonical()`, since a dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`.
    pub trusted_proxies: Vec<IpNet>,
    /// `PALISADE_LOG_FORMAT`: text (default) or json.
    pub log_format: LogFormat,
    /// `PALISADE_LOG`: a tracing `EnvFilter` directive, already checked to parse. Default `info`.
    pub log_level: String,
    /// `PALISADE_REQUEST_TIMEOUT`: whole seconds, 1..=600, default 30.
    pub request_timeout: Duration,

    // ------------------------------------------------------------------------------- tokens
    /// `PALISADE_JWT_ALGORITHM` (alias `JWT_ALGORITHM`): EdDSA (default), ES256, RS256 or HS256,
    /// read in any letter case.
    pub jwt_algorithm: JwtAlgorithm,
    /// `PALISADE_JWT_SECRET` (alias `JWT_SECRET_KEY`): the HS256 shared secret. When
    /// `jwt_algorithm` is HS256 it is always `Some` and at least 32 bytes; otherwise it is unused
    /// (and [`Config::warnings`] says so if it is set).
    pub jwt_secret: Option<SecretString>,
    /// `PALISADE_AUDIENCE`: the `aud` of issued access tokens. Default `palisade`; never empty,
    /// no whitespace.
    pub audience: String,
    /// `PALISADE_API_KEY_PREFIX`: the text every API key starts with. Default `spa_`.
    pub api_key_prefix: String,
    /// `PALISADE_SIGNING_KEY_ROTATION_DAYS`: rotate the signing key when it is this old (unset: only by
    /// `palisade keys rotate`).
    pub signing_key_rotation: Option<Duration>,
    /// `PALISADE_ACCESS_TTL` in seconds (alias `JWT_ACCESS_TOKEN_EXPIRE_MINUTES`, in minutes):
    /// 60 s..=24 h, default 900 s.
    pub access_ttl: Duration,
    /// `PALISADE_REFRESH_TTL` in seconds (alias `JWT_REFRESH_TOKEN_EXPIRE_DAYS`, in days):
    /// 5 min..=400 days, default 30 days; always longer than `access_ttl`.
    pub refresh_ttl: Duration,
    /// `PALISADE_REFRESH_GRACE`: how long a just-rotated refresh token is still accepted, 0..=60 s,
    /// default 0.
    pub refresh_grace: Duration,

    // ------------------------------------------------------------------------------ sessions
    /// `PALISADE_SESSION_LIFETIME`: absolute session lifetime, 60 s..=400 days, default 3600 s.
    pub session_lifetime: Duration,
    /// `PALISADE_SESSION_IDLE_TIMEOUT`: 60 s..=`session_lifetime`. Default 1800 s, or
    /// `session_lifetime` when that is shorter; a value set explicitly above it is refused.
    pub session_idle_timeout: Duration,
    /// `PALISADE_SESSION_CACHE_MS` (milliseconds): how long a session or revocation check may be
    /// answered from memory, i.e. the staleness bound of revocation. 0..=10 s, default 1 s; zero
    /// means every check goes to the hot store.
    pub session_cache: Duration,
    /// `PALISADE_MAX_SESSIONS_PER_USER` (toml `max_sessions_per_user`): most live sessions per user,
    /// 0..=10000; a new login ends the oldest past it. Default 0: no limit.
    pub max_sessions_per_user: u32,
    /// `PALISADE_CONCURRENT_SESSIONS` (alias `ENABLE_CONCURRENT_SESSIONS`, toml
    /// `enable_concurrent_sessions`): whether a user may hold several sessions at once. Default true.
    pub concurrent_sessions: bool,
    /// `PALISADE_SESSION_BINDING`: off, device (default), asn or address. `asn` is accepted only
    /// with `geoip_asn_db` set.
    pub session_binding: SessionBinding,

    // ---------------------------------------------------------------------- login protection
    /// `PALISADE_MAX_LOGIN_ATTEMPTS` (alias `SECURITY_MAX_LOGIN_ATTEMPTS`): failed logins before
    /// the account is locked for `lockout_duration`. 1..=100, default 5.
    pub max_login_attempts: u32,
    /// `PALISADE_LOCKOUT_DURATION` (alias `SECURITY_LOCKOUT_DURATION`), seconds: 1..=86400,
    /// default 900. Also the window of `ip_max_login_failures`.
    pub lockout_duration: Duration,
    /// `PALISADE_IP_MAX_LOGIN_FAILURES`: failed logins per client IP per `lockout_duration`
    /// window before that IP's logins are answered 429. 1..=100000, default 50.
    pub ip_max_login_failures: u32,

    // ----------------------------------------------------------------------------- passwords
    /// `PALISADE_PASSWORD_MIN_LENGTH` (alias `SECURITY_PASSWORD_MIN_LENGTH`): 8..=128, default 12.
    pub password_min_length: u32,
    /// `PALISADE_PASSWORD_REQUIRE`: character classes a new password must contain. Default empty
    /// (NIST SP 800-63B advises against composition rules). No duplicates, in [`CharClass::ALL`]
    /// order.
    pub password_require: Vec<CharClass>,
    /// `PALISADE_PASSWORD_MIN_SCORE`: minimum zxcvbn score, 0..=4, default 3.
    pub password_min_score: u8,
    /// `PALISADE_PASSWORD_HISTORY`: previous passwords that may not be reused, 0..=24, default 5.
    pub password_history: u32,
    /// `PALISADE_PASSWORD_MAX_AGE_DAYS` (days): 1..=3650 days. `None` (default; an empty value
    /// unsets it): passwords do not expire.
    pub password_max_age: Option<Duration>,

    // ------------------------------------------------------------------------------- hashing
    /// `PALISADE_ARGON2_MEMORY_KIB`: Argon2id memory cost, 19456 (the OWASP minimum, default)
    /// ..=4194304 KiB.
    pub argon2_memory_kib: u32,
    /// `PALISADE_ARGON2_ITERATIONS`: Argon2id time cost, 2..=100, default 2.
    pub argon2_iterations: u32,
    /// `PALISADE_ARGON2_PARALLELISM`: Argon2id lanes, 1..=16, default 1.
    pub argon2_parallelism: u32,
    /// `PALISADE_HASH_CONCURRENCY`: how many password hashes run at once on the blocking pool,
    /// 1..=256. `None` (default): one per CPU core (`std::thread::available_parallelism`).
    pub hash_concurrency: Option<usize>,

    // ------------------------------------------------------------ multi-factor authentication
    /// `PALISADE_MFA_ISSUER`: the issuer authenticator apps show. Default `Palisade`; never empty,
    /// no `:` or control characters, at most 64 characters.
    pub mfa_issuer: String,
    /// `PALISADE_MFA_REQUIRED` (alias `SECURITY_MFA_REQUIRED`): every login needs a second factor.
    /// Default false; read as true/false, yes/no, on/off or 1/0, and as a toml boolean in the file.
    pub mfa_required: bool,
    /// `PALISADE_MFA_REQUIRED_ROLES`: logins of users with these roles need a second factor.
    /// Default empty; each entry is one of `palisade_core::mfa::KNOWN_ROLES` (`admin`), in its
    /// canonical spelling, without duplicates.
    pub mfa_required_roles: Vec<String>,
    /// `PALISADE_MFA_FACTORS`: distinct second factors a login must pass, 1 (default) or 2
    /// (enhanced MFA).
    pub mfa_factors: u8,
    /// `PALISADE_MFA_CODE_TTL`: lifetime of an SMS or e-mail code, 30..=3600 s, default 300 s.
    pub mfa_code_ttl: Duration,
    /// `PALISADE_MFA_RESEND_INTERVAL`: shortest time between two codes sent to one user by one
    /// method, 1..=3600 s, default 30 s.
    pub mfa_resend_interval: Duration,

    // ---------------------------------------------------------------------------- messages
    /// `PALISADE_SMTP_SERVER` (alias `SMTP_SERVER`): the mail server, a lower-case host name or an
    /// IP address (IPv6 without brackets). `None` (default): no e-mail sender.
    pub smtp_server: Option<String>,
    /// `PALISADE_SMTP_PORT` (alias `SMTP_PORT`): 1..=65535. Default 587, or 465 when `smtp_tls`
    /// is [`SmtpTls::Tls`] and no layer sets the port.
    pub smtp_port: u16,
    /// `PALISADE_SMTP_USERNAME` (alias `SMTP_USERNAME`): set exactly when `smtp_password` is.
    pub smtp_username: Option<String>,
    /// `PALISADE_SMTP_PASSWORD` (alias `SMTP_PASSWORD`): set exactly when `smtp_username` is.
    pub smtp_password: Option<SecretString>,
    /// `PALISADE_SMTP_TLS` (alias `SMTP_TLS`): STARTTLS (default), implicit TLS or off.
    pub smtp_tls: SmtpTls,
    /// `PALISADE_SMTP_FROM` (alias `SMTP_FROM`): the From of every message; always `Some` when
    /// `smtp_server` is.
    pub smtp_from: Option<Mailbox>,
    /// `PALISADE_SMS_PROVIDER` (alias `SMS_PROVIDER`). `None` (default): no SMS sender. With
    /// [`SmsProvider::Twilio`], `twilio_account_sid`, `twilio_auth_token` and `twilio_from` are
    /// all `Some`.
    pub sms_provider: Option<SmsProvider>,
    /// `PALISADE_TWILIO_ACCOUNT_SID` (alias `TWILIO_ACCOUNT_SID`): `AC` and 32 hexadecimal digits.
    pub twilio_account_sid: Option<String>,
    /// `PALISADE_TWILIO_AUTH_TOKEN` (alias `TWILIO_AUTH_TOKEN`): no whitespace.
    pub twilio_auth_token: Option<SecretString>,
    /// `PALISADE_TWILIO_FROM` (alias `TWILIO_FROM_NUMBER`): the sending number, E.164.
    pub twilio_from: Option<PhoneNumber>,
    /// `PALISADE_TWILIO_BASE_URL`: default `https://api.twilio.com`; http or https, with a host and
    /// without credentials, query or fragment. Tests point it at a local fake.
    pub twilio_base_url: Url,
    /// `PALISADE_NOTIFY_WEBHOOK_URL`: where security notices are also posted as JSON; http or https,
    /// with a host, without fragment. A secret: its path or query is often the only credential.
    /// `None` (default): no webhook.
    pub notify_webhook_url: Option<SecretString>,
    /// `PALISADE_WEBAUTHN_RP_ID`: the relying party id of passkeys. `None` (default): the issuer's
    /// host when it is a domain name; with an IP-address issuer and no setting, passkeys are off.
    pub webauthn_rp_id: Option<String>,
    /// `PALISADE_WEBAUTHN_ORIGIN`: the origin of the passkey pages. `None` (default): the issuer's.
    /// Its host is the relying party id or a subdomain of it (checked at start).
    pub webauthn_origin: Option<Url>,

    // ---------------------------------------------------------------- risk, devices, GeoIP
    /// `PALISADE_GEOIP_DB` (alias `GEOIP_DATABASE_PATH`): a MaxMind City or Country database. Not
    /// checked here: a missing or damaged file degrades the geo signals (and `/ready`), it does not
    /// stop start-up. `None` (default): no country or location signals.
    pub geoip_db: Option<PathBuf>,
    /// `PALISADE_GEOIP_ASN_DB`: a MaxMind ASN database. `None` (default): no network signals.
    pub geoip_asn_db: Option<PathBuf>,
    /// `PALISADE_GEOIP_ANONYMOUS_DB`: a MaxMind Anonymous-IP database. `None` (default): no
    /// anonymizer signals.
    pub geoip_anonymous_db: Option<PathBuf>,
    /// `PALISADE_RISK_ENABLED` (alias `SECURITY_RISK_ANALYSIS_ENABLED`): whether logins are
    /// scored. Default true.
    pub risk_enabled: bool,
    /// `PALISADE_RISK_THRESHOLDS`: `mfa,enhanced,block`, default 0.2,0.5,0.8; checked by
    /// `RiskSettings::validate`.
    pub risk_thresholds: RiskThresholds,
    /// `PALISADE_RISK_WEIGHTS`: the built-in weights with the listed ones replaced; each in 0..=1
    /// (`denied_address` is fixed at 1 and cannot be listed).
    pub risk_weights: RiskWeights,
    /// `PALISADE_RISK_MAX_TRAVEL_KMH`: 100..=20000 km/h, default 900.
    pub risk_max_travel_kmh: u32,
    /// `PALISADE_RISK_DENY_CIDRS`: addresses whose logins are refused; parsed like
    /// `trusted_proxies`. Default empty.
    pub risk_deny_cidrs: Vec<IpNet>,
    /// `PALISADE_RISK_ALLOW_CIDRS`: addresses exempt from the address factors; parsed like
    /// `trusted_proxies`. Default empty.
    pub risk_allow_cidrs: Vec<IpNet>,
    /// `PALISADE_DEVICE_APPROVAL`: a login from a new device waits for approval. Default false.
    pub device_approval: bool,
    /// `PALISADE_DEVICE_APPROVAL_TTL`: 60 s..=24 h, default 900 s.
    pub device_approval_ttl: Duration,
    /// `PALISADE_REMEMBER_DEVICE_TTL`: 0..=400 days in seconds, default 30 days; zero turns
    /// "remember this device" off.
    pub remember_device_ttl: Duration,

    // ------------------------------------------------------------------- encryption service
    /// `PALISADE_ENCRYPTION_ALGORITHM`: the cipher of every classification unless
    /// `encryption_policies` says otherwise. Default AES-256-GCM; read in any letter case, `_` for `-`.
    pub encryption_algorithm: Algorithm,
    /// `PALISADE_ENCRYPTION_KEY_ROTATION_DAYS`: every classification's data key is rotated by the
    /// schedule after this many days, unless `encryption_policies` sets its own. 1..=3650, default 90.
    pub encryption_key_rotation_days: u32,
    /// `PALISADE_ENCRYPTION_COMPRESSION`: false forbids compression for every class (before
    /// `encryption_policies`, which may allow it again for one); true keeps each class's policy.
    /// Default true.
    pub encryption_compression: bool,
    /// `PALISADE_ENCRYPTION_MAX_PLAINTEXT`: bytes, 1..=786432 (its base64 fits the 1 MiB body
    /// limit), default 524288 (512 KiB).
    pub encryption_max_plaintext: usize,
    /// `PALISADE_ENCRYPTION_POLICIES`: the operator's `CLASS.key=value` items, trimmed, in order.
    /// Default empty: the built-in policies.
    pub encryption_policies: Vec<String>,
    /// The policies the five settings above describe, built by `build_encryption_policies` when the
    /// configuration is loaded (so a bad item stops start-up, naming its setting) and handed to
    /// the encryption service by `app::settings`. Derived like `session_idle_timeout`: changing
    /// the `encryption_*` fields of a loaded `Config` does not rebuild it.
    pub encryption: EncryptionPolicies,
    /// How the background re-encryption (of Palisade's own sealed data, after the data key
    /// rotates) is paced, handed to core by `app::settings`:
    /// - `batch_size`: `PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE`, rows read, rewritten and
    ///   checkpointed per batch, 1..=10000, default 500;
    /// - `rows_per_second`: `PALISADE_ENCRYPTION_REENCRYPT_RATE`, at most this many rows per second,
    ///   1..=1000000. `None` (default; an empty value unsets it): no limit.
    pub reencryption: ReencryptionSettings,

    // ------------------------------------------------------------------ security monitoring
    // Handed to core's `MonitoringSettings` (and its `detect::Thresholds`) by `app::settings`; every
    // default is core's.
    /// `PALISADE_MONITORING_DETECTORS` (alias `SECURITY_THREAT_DETECTION_ENABLED`): whether the
    /// detectors examine the audit chain and open incidents. Default true; off, events are still
    /// stored and every query still answers.
    pub monitoring_detectors: bool,
    /// `PALISADE_MONITORING_BRUTE_FORCE_FAILURES`: failed logins on one account per
    /// `monitoring_brute_force_window` that open a `brute_force` incident. 1..=1000000, default 10.
    pub monitoring_brute_force_failures: u64,
    /// `PALISADE_MONITORING_BRUTE_FORCE_WINDOW`: 1 s..=1 day, default 300 s.
    pub monitoring_brute_force_window: Duration,
    /// `PALISADE_MONITORING_SPRAYING_ACCOUNTS`: distinct accounts failing from one address per
    /// `monitoring_spraying_window` that open a `password_spraying` incident. 1..=1000000, default 10.
    pub monitoring_spraying_accounts: u64,
    /// `PALISADE_MONITORING_SPRAYING_WINDOW`: 1 s..=1 day, default 600 s.
    pub monitoring_spraying_window: Duration,
    /// `PALISADE_MONITORING_STUFFING_FAILURES`: failed logins everywhere per
    /// `monitoring_stuffing_window` that open a `credential_stuffing` incident, with the two below.
    /// 1..=1000000, default 100.
    pub monitoring_stuffing_failures: u64,
    /// `PALISADE_MONITORING_STUFFING_ADDRESSES`: distinct addresses those failures come from, at
    /// least. 1..=1000000, default 20.
    pub monitoring_stuffing_addresses: u64,
    /// `PALISADE_MONITORING_STUFFING_FAILURE_PERCENT`: share of all logins failing, at least, in
    /// percent. 1..=100, default 80.
    pub monitoring_stuffing_failure_percent: u64,
    /// `PALISADE_MONITORING_STUFFING_WINDOW`: 1 s..=1 day, default 300 s.
    pub monitoring_stuffing_window: Duration,
    /// `PALISADE_MONITORING_API_KEY_REFUSALS`: refused API-key uses from one address per
    /// `monitoring_api_key_window` that open an `api_key_abuse` incident. 1..=1000000, default 20.
    pub monitoring_api_key_refusals: u64,
    /// `PALISADE_MONITORING_API_KEY_WINDOW`: 1 s..=1 day, default 60 s.
    pub monitoring_api_key_window: Duration,
    /// `PALISADE_MONITORING_BASELINE_SLOT`: the length of one slot of a user's activity history,
    /// for `unusual_activity`. 1 min..=1 day, default 900 s.
    pub monitoring_baseline_slot: Duration,
    /// `PALISADE_MONITORING_BASELINE_SLOTS`: the past slots that make a user's baseline. 2..=96,
    /// default 16.
    pub monitoring_baseline_slots: u32,
    /// `PALISADE_MONITORING_BASELINE_MIN_EVENTS`: the least events in one slot that may open an
    /// `unusual_activity` incident. 1..=1000000, default 30.
    pub monitoring_baseline_min_events: u64,
    /// `PALISADE_MONITORING_INCIDENT_AUTO_RESPONSE`: whether `monitoring_responses` is carried out
    /// (the guide's `incident_auto_response`). Default true.
    pub monitoring_incident_auto_response: bool,
    /// `PALISADE_MONITORING_RESPONSES`: the actions per cause of incident.
    pub monitoring_responses: palisade_core::monitoring::ResponseRules,
    /// `PALISADE_MONITORING_ALERT_SEVERITY_THRESHOLD`: incidents at least this severe are sent to
    /// the administrators' channels. Read in any letter case; default MEDIUM.
    pub monitoring_alert_severity_threshold: palisade_core::monitoring::Severity,
    /// `PALISADE_MONITORING_ALERT_EMAILS`: the administrators' addresses, without duplicates.
    /// Default empty. They need the `smtp_*` settings to be sent ([`Config::warnings`] says so).
    pub monitoring_alert_emails: Vec<palisade_core::user::Email>,
    /// `PALISADE_MONITORING_ALERT_WEBHOOK_URL`: where the administrators' alerts are posted,
    /// signed; the rules of `notify_webhook_url`. `None` (default): no webhook. When set,
    /// `monitoring_alert_webhook_secret` is `Some`.
    pub monitoring_alert_webhook_url: Option<SecretString>,
    /// `PALISADE_MONITORING_PUSH_URL`: the push gateway users' push alerts are posted to, signed;
    /// the rules of `notify_webhook_url`. `None` (default): no push alerts. When set,
    /// `monitoring_alert_webhook_secret` is `Some`.
    pub monitoring_push_url: Option<SecretString>,
    /// `PALISADE_MONITORING_ALERT_WEBHOOK_SECRET`: the HMAC-SHA256 key (its UTF-8 bytes) both alert
    /// URLs are signed with; at least 32 bytes.
    pub monitoring_alert_webhook_secret: Option<SecretString>,
    /// `PALISADE_MONITORING_ALERTS_PER_HOUR`: alerts per recipient per hour, 0..=10000 (0: no
    /// limit), default 20.
    pub monitoring_alerts_per_hour: u32,

    // ------------------------------------------------------------------------- compliance
    // Handed to core's `ComplianceSettings` by `app::settings`; every default is core's.
    /// `PALISADE_COMPLIANCE_GDPR_ENABLED` (alias `COMPLIANCE_GDPR_ENABLED`): GDPR reports may be
    /// asked for. Default true.
    pub compliance_gdpr_enabled: bool,
    /// `PALISADE_COMPLIANCE_HIPAA_ENABLED` (alias `COMPLIANCE_HIPAA_ENABLED`). Default true.
    pub compliance_hipaa_enabled: bool,
    /// `PALISADE_COMPLIANCE_PCI_DSS_ENABLED` (alias `COMPLIANCE_PCI_DSS_ENABLED`). Default false, as
    /// in the guide.
    pub compliance_pci_dss_enabled: bool,
    /// `PALISADE_COMPLIANCE_SOX_ENABLED` (alias `COMPLIANCE_SOX_ENABLED`). Default true.
    pub compliance_sox_enabled: bool,
    /// `PALISADE_COMPLIANCE_ISO27001_ENABLED` (alias `COMPLIANCE_ISO27001_ENABLED`). Default true.
    pub compliance_iso27001_enabled: bool,
    /// `PALISADE_COMPLIANCE_DELETION_DELAY`: how long after a request an erasure is carried out,
    /// 1 s..=10 years, default 2592000 s (30 days).
    pub compliance_deletion_delay: Duration,
    /// `PALISADE_COMPLIANCE_CONSENT_VALIDITY`: how long a consent stays valid, 1 min..=10 years,
    /// default 365 days.
    pub compliance_consent_validity: Duration,
    /// `PALISADE_COMPLIANCE_CONSENT_VALIDITY_PER_TYPE`: validity per consent type, each in the range
    /// of `compliance_consent_validity`. Default empty.
    pub compliance_consent_validity_per_type: std::collections::BTreeMap<String, Duration>,
    /// `PALISADE_COMPLIANCE_ERASURE_ON_WITHDRAWAL`: consent types whose withdrawal schedules an
    /// erasure, without duplicates; empty when set to `none`. Default `data_processing`.
    pub compliance_erasure_on_withdrawal: Vec<String>,
    /// `PALISADE_COMPLIANCE_AUDIT_RETENTION_DAYS` (alias `COMPLIANCE_AUDIT_RETENTION_DAYS`): 1..=36500
    /// days, default 2555.
    pub compliance_audit_retention: Duration,
    /// `PALISADE_COMPLIANCE_LOGIN_HISTORY_RETENTION_DAYS`: 1..=36500 days, default 365.
    pub compliance_login_history_retention: Duration,
    /// `PALISADE_COMPLIANCE_INCIDENT_RETENTION_DAYS`: 1..=36500 days, default 730.
    pub compliance_incident_retention: Duration,
    /// `PALISADE_COMPLIANCE_ALERT_DELIVERY_RETENTION_DAYS`: 1..=36500 days, default 90.
    pub compliance_alert_delivery_retention: Duration,
    /// Whether every OAuth client must use PKCE (S256). Default true.
    pub oauth2_require_pkce: bool,
    /// How long an authorization code lives. Default 600 s.
    pub oauth2_code_ttl: Duration,
    /// Whether clients' `jwks_uri` may reach loopback, private and link-local addresses. Default false.
    pub oauth2_allow_private_jwks_uri: bool,
    /// Sign-ins one address may start per ten minutes. Default 300.
    pub oauth2_pending_per_ip: u32,
}

/// How the connection to the mail server is encrypted (`smtp_tls`). In both TLS modes the server's
/// certificate is verified against the system's roots and the host name in `smtp_server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// Connect in plain text and upgrade with STARTTLS; a server that cannot is refused before any
    /// credential or message is sent (submission, port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (submissions, port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a test server.
    Off,
}

impl SmtpTls {
    /// `starttls`, `tls` or `off`, as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::Off => "off",
        }
    }
}

impl std::fmt::Display for SmtpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who sends text messages (`sms_provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProvider {
    /// The Twilio Messages API.
    Twilio,
}

impl SmsProvider {
    /// `twilio`, as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsProvider::Twilio => "twilio",
        }
    }
}

impl std::fmt::Display for SmsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json`, as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How access and ID tokens are signed (the JOSE `alg`).
#[allow(clippy::upper_case_acronyms)] // the JOSE names, as operators write them
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JwtAlgorithm {
    /// Ed25519 signatures (RFC 8037) with the keyring's signing key.
    #[default]
    EdDSA,
    /// ECDSA with P-256 and SHA-256, with the keyring's signing key.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, with the keyring's signing key.
    RS256,
    /// HMAC-SHA-256 with [`Config::jwt_secret`]: whoever can verify a token can also mint one.
    HS256,
}

impl JwtAlgorithm {
    /// The JOSE name: `EdDSA`, `ES256`, `RS256` or `HS256`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::EdDSA => "EdDSA",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::HS256 => "HS256",
        }
    }
}

impl std::fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A character class a password can be required to contain (`password_require`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CharClass {
    /// An uppercase letter (any script).
    Upper,
    /// A lowercase letter (any script).
    Lower,
    /// A numeric character.
    Digit,
    /// Anything that is not a letter, a number or a control character (space counts).
    Symbol,
}

impl CharClass {
    /// Every class, in the order [`Config::password_require`] keeps them.
    pub const ALL: [CharClass; 4] = [CharClass::Upper, CharClass::Lower, CharClass::Digit, CharClass::Symbol];

    /// As written in the configuration: `upper`, `lower`, `digit`, `symbol`.
    pub fn as_str(self) -> &'static str {
        match self {
            CharClass::Upper => "upper",
            CharClass::Lower => "lower",
            CharClass::Digit => "digit",
            CharClass::Symbol => "symbol",
        }
    }

    /// Whether `c` belongs to this class (Unicode-aware: `É` is upper, `٣` is a digit).
    pub fn matches(self, c: char) -> bool {
        match self {
            CharClass::Upper => c.is_uppercase(),
            CharClass::Lower => c.is_lowercase(),
            CharClass::Digit => c.is_numeric(),
            CharClass::Symbol => !c.is_alphanumeric() && !c.is_control(),
        }
    }
}

impl std::fmt::Display for CharClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Config {
    /// Loads defaults → `palisade.toml` (or `--config FILE`, else `PALISADE_CONFIG`; a missing
    /// default file is fine, a missing named file is an error) → `./.env` → the process
    /// environment (`PALISADE_*` and aliases) → command-line flags. Reads the environment and the
    /// working directory but never writes either.
    pub fn load(flags: &SettingFlags) -> Result<Config, ConfigError> {
        Self::load_from(Sources::from_process(flags)?)
    }

    /// Same as [`Config::load`], from explicit sources: reads the file named in `sources` and
    /// nothing else from the process or the working directory (`PALISADE_CONFIG` in
    /// `sources.env` is accepted but not followed: `sources.file` says which file).
    pub fn load_from(sources: Sources) -> Result<Config, ConfigError> {
        let layers = Layers::check(sources)?;
        Self::build(&layers)
    }

    fn build(layers: &Layers) -> Result<Config, ConfigError> {
        let data_dir = required(layers, Setting::DataDir, |t| Ok(PathBuf::from(t)))?;
        let database_url = match winning(layers, Setting::DatabaseUrl)? {
            Some(found) => read(Setting::DatabaseUrl, found, values::database_url)?.value,
            None => default_database_url(&data_dir)?,
        };

        let jwt_algorithm = required(layers, Setting::JwtAlgorithm, values::jwt_algorithm)?;
        let jwt_secret = optional(layers, Setting::JwtSecret, values::jwt_secret)?;
        if jwt_algorithm == JwtAlgorithm::HS256 {
            check_hs256_secret(layers, jwt_secret.as_ref())?;
        }
        let access_ttl = duration(layers, Setting::AccessTtl)?;
        let refresh_ttl = duration(layers, Setting::RefreshTtl)?;
        if refresh_ttl.value <= access_ttl.value {
            return Err(ConfigError::invalid(
                Setting::RefreshTtl,
                refresh_ttl.origin,
                refresh_ttl.text,
                format!(
                    "({} seconds) is not longer than access_ttl ({} seconds, from {}): a refresh token must \
                     outlive the access tokens it renews",
                    refresh_ttl.value.as_secs(),
                    access_ttl.value.as_secs(),
                    access_ttl.origin.describe(Setting::AccessTtl),
                ),
            ));
        }
        let session_lifetime = duration(layers, Setting::SessionLifetime)?;
        let idle = duration(layers, Setting::SessionIdleTimeout)?;
        let session_idle_timeout = if idle.origin == Origin::Default {
            // Only the operator's own value is held against the lifetime: lowering the lifetime
            // alone must not fail on the default idle timeout.
            idle.value.min(session_lifetime.value)
        } else if idle.value > session_lifetime.value {
            return Err(ConfigError::invalid(
                Setting::SessionIdleTimeout,
                idle.origin,
                idle.text,
                format!(
                    "is longer than session_lifetime ({} seconds, from {}), which ends every session first; \
                     lower this or raise session_lifetime",
                    session_lifetime.value.as_secs(),
                    session_lifetime.origin.describe(Setting::SessionLifetime),
                ),
            ));
        } else {
            idle.value
        };

        let smtp = Smtp::read(layers)?;
        let twilio = Twilio::read(layers)?;

        let geoip_asn_db = optional(layers, Setting::GeoipAsnDb, values::geoip_path)?;
        let session_binding = required(layers, Setting::SessionBinding, values::session_binding)?;
        if session_binding == SessionBinding::Asn && geoip_asn_db.is_none() {
            return Err(ConfigError::missing(
                Setting::GeoipAsnDb,
                format!(
                    "session_binding is asn (from {}), which ends a session whose requests come from another \
                     network, and telling networks apart needs a GeoIP ASN database (or choose session_binding \
                     device or address)",
                    from_where(layers, Setting::SessionBinding)
                ),
            ));
        }

        let alerts = Alerts::read(layers)?;
        let hsm = Hsm::read(layers)?;
        let encryption = Encryption::read(layers, hsm.module.is_some())?;
        let reencryption = read_reencryption(layers)?;

        let config = Config {
            bind: required(layers, Setting::Bind, values::bind)?,
            issuer: required(layers, Setting::Issuer, values::issuer)?,
            database_url,
            database_max_connections: count(layers, Setting::DatabaseMaxConnections)?,
            redis_url: optional(layers, Setting::RedisUrl, values::redis_url)?,
            master_key: hsm.master_key,
            hsm_module: hsm.module,
            hsm_slot: hsm.slot,
            hsm_pin: hsm.pin,
            hsm_provider: hsm.provider,
            hsm_enabled: hsm.enabled,
            data_dir,
            trusted_proxies: optional(layers, Setting::TrustedProxies, values::trusted_proxies)?.unwrap_or_default(),
            log_format: required(layers, Setting::LogFormat, values::log_format)?,
            log_level: required(layers, Setting::LogLevel, values::log_level)?,
            request_timeout: duration(layers, Setting::RequestTimeout)?.value,
            jwt_algorithm,
            jwt_secret,
            audience: required(layers, Setting::Audience, values::audience)?,
            api_key_prefix: required(layers, Setting::ApiKeyPrefix, values::api_key_prefix)?,
            signing_key_rotation: number(layers, Setting::SigningKeyRotation, to_duration)?.map(|found| found.value),
            access_ttl: access_ttl.value,
            refresh_ttl: refresh_ttl.value,
            refresh_grace: duration(layers, Setting::RefreshGrace)?.value,
            session_lifetime: session_lifetime.value,
            session_idle_timeout,
            session_cache: duration(layers, Setting::SessionCache)?.value,
            max_sessions_per_user: count(layers, Setting::MaxSessionsPerUser)?,
            concurrent_sessions: required(layers, Setting::ConcurrentSessions, values::boolean)?,
            session_binding,
            max_login_attempts: count(layers, Setting::MaxLoginAttempts)?,
            lockout_duration: duration(layers, Setting::LockoutDuration)?.value,
            ip_max_login_failures: count(layers, Setting::IpMaxLoginFailures)?,
            password_min_length: count(layers, Setting::PasswordMinLength)?,
            password_require: optional(layers, Setting::PasswordRequire, values::password_require)?.unwrap_or_default(),
            password_min_score: count(layers, Setting::PasswordMinScore)?,
            password_history: count(layers, Setting::PasswordHistory)?,
            password_max_age: number(layers, Setting::PasswordMaxAge, to_duration)?.map(|found| found.value),
            argon2_memory_kib: count(layers, Setting::Argon2MemoryKib)?,
            argon2_iterations: count(layers, Setting::Argon2Iterations)?,
            argon2_parallelism: count(layers, Setting::Argon2Parallelism)?,
            hash_concurrency: number(layers, Setting::HashConcurrency, to_count)?.map(|found| found.value),
            mfa_issuer: required(layers, Setting::MfaIssuer, values::mfa_issuer)?,
            mfa_required: required(layers, Setting::MfaRequired, values::boolean)?,
            mfa_required_roles: optional(layers, Setting::MfaRequiredRoles, values::mfa_required_roles)?
                .unwrap_or_default(),
            mfa_factors: count(layers, Setting::MfaFactors)?,
            mfa_code_ttl: duration(layers, Setting::MfaCodeTtl)?.value,
            mfa_resend_interval: duration(layers, Setting::MfaResendInterval)?.value,
            smtp_server: smtp.server,
            smtp_port: smtp.port,
            smtp_username: smtp.username,
            smtp_password: smtp.password,
            smtp_tls: smtp.tls,
            smtp_from: smtp.from,
            sms_provider: twilio.provider,
            twilio_account_sid: twilio.account_sid,
            twilio_auth_token: twilio.auth_token,
            twilio_from: twilio.from,
            twilio_base_url: required(layers, Setting::TwilioBaseUrl, values::twilio_base_url)?,
            notify_webhook_url: optional(layers, Setting::NotifyWebhookUrl, values::notify_webhook_url)?,
            webauthn_rp_id: optional(layers, Setting::WebauthnRpId, values::webauthn_rp_id)?,
            webauthn_origin: optional(layers, Setting::WebauthnOrigin, values::webauthn_origin)?,
            geoip_db: optional(layers, Setting::GeoipDb, values::geoip_path)?,
            geoip_asn_db,
            geoip_anonymous_db: optional(layers, Setting::GeoipAnonymousDb, values::geoip_path)?,
            risk_enabled: required(layers, Setting::RiskEnabled, values::boolean)?,
            risk_thresholds: required(layers, Setting::RiskThresholds, values::risk_thresholds)?,
            risk_weights: optional(layers, Setting::RiskWeights, values::risk_weights)?.unwrap_or_default(),
            risk_max_travel_kmh: count(layers, Setting::RiskMaxTravelKmh)?,
            risk_deny_cidrs: optional(layers, Setting::RiskDenyCidrs, values::cidr_list)?.unwrap_or_default(),
            risk_allow_cidrs: optional(layers, Setting::RiskAllowCidrs, values::cidr_list)?.unwrap_or_default(),
            device_approval: required(layers, Setting::DeviceApproval, values::boolean)?,
            device_approval_ttl: duration(layers, Setting::DeviceApprovalTtl)?.value,
            remember_device_ttl: duration(layers, Setting::RememberDeviceTtl)?.value,
            encryption_algorithm: encryption.algorithm,
            encryption_key_rotation_days: encryption.rotation_days,
            encryption_compression: encryption.compression,
            encryption_max_plaintext: encryption.max_plaintext,
            encryption_policies: encryption.overrides,
            encryption: encryption.policies,
            reencryption,
            monitoring_detectors: required(layers, Setting::MonitoringDetectors, values::boolean)?,
            monitoring_brute_force_failures: count(layers, Setting::MonitoringBruteForceFailures)?,
            monitoring_brute_force_window: duration(layers, Setting::MonitoringBruteForceWindow)?.value,
            monitoring_spraying_accounts: count(layers, Setting::MonitoringSprayingAccounts)?,
            monitoring_spraying_window: duration(layers, Setting::MonitoringSprayingWindow)?.value,
            monitoring_stuffing_failures: count(layers, Setting::MonitoringStuffingFailures)?,
            monitoring_stuffing_addresses: count(layers, Setting::MonitoringStuffingAddresses)?,
            monitoring_stuffing_failure_percent: count(layers, Setting::MonitoringStuffingFailurePercent)?,
            monitoring_stuffing_window: duration(layers, Setting::MonitoringStuffingWindow)?.value,
            monitoring_api_key_refusals: count(layers, Setting::MonitoringApiKeyRefusals)?,
            monitoring_api_key_window: duration(layers, Setting::MonitoringApiKeyWindow)?.value,
            monitoring_baseline_slot: duration(layers, Setting::MonitoringBaselineSlot)?.value,
            monitoring_baseline_slots: count(layers, Setting::MonitoringBaselineSlots)?,
            monitoring_baseline_min_events: count(layers, Setting::MonitoringBaselineMinEvents)?,
            monitoring_incident_auto_response: required(
                layers,
                Setting::MonitoringIncidentAutoResponse,
                values::boolean,
            )?,
            monitoring_responses: required(layers, Setting::MonitoringResponses, values::response_rules)?,
            monitoring_alert_severity_threshold: required(
                layers,
                Setting::MonitoringAlertSeverityThreshold,
                values::severity,
            )?,
            monitoring_alert_emails: optional(layers, Setting::MonitoringAlertEmails, values::email_list)?
                .unwrap_or_default(),
            monitoring_alert_webhook_url: alerts.webhook_url,
            monitoring_push_url: alerts.push_url,
            monitoring_alert_webhook_secret: alerts.secret,
            monitoring_alerts_per_hour: count(layers, Setting::MonitoringAlertsPerHour)?,
            compliance_gdpr_enabled: required(layers, Setting::ComplianceGdprEnabled, values::boolean)?,
            compliance_hipaa_enabled: required(layers, Setting::ComplianceHipaaEnabled, values::boolean)?,
            compliance_pci_dss_enabled: required(layers, Setting::CompliancePciDssEnabled, values::boolean)?,
            compliance_sox_enabled: required(layers, Setting::ComplianceSoxEnabled, values::boolean)?,
            compliance_iso27001_enabled: required(layers, Setting::ComplianceIso27001Enabled, values::boolean)?,
            compliance_deletion_delay: duration(layers, Setting::ComplianceDeletionDelay)?.value,
            compliance_consent_validity: duration(layers, Setting::ComplianceConsentValidity)?.value,
            compliance_consent_validity_per_type: optional(
                layers,
                Setting::ComplianceConsentValidityPerType,
                values::consent_validity_per_type,
            )?
            .unwrap_or_default(),
            compliance_erasure_on_withdrawal: required(
                layers,
                Setting::ComplianceErasureOnWithdrawal,
                values::consent_types,
            )?,
            compliance_audit_retention: duration(layers, Setting::ComplianceAuditRetentionDays)?.value,
            compliance_login_history_retention: duration(layers, Setting::ComplianceLoginHistoryRetentionDays)?.value,
            compliance_incident_retention: duration(layers, Setting::ComplianceIncidentRetentionDays)?.value,
            compliance_alert_delivery_retention: duration(layers, Setting::ComplianceAlertDeliveryRetentionDays)?.value,
            oauth2_require_pkce: required(layers, Setting::Oauth2RequirePkce, values::boolean)?,
            oauth2_code_ttl: duration(layers, Setting::Oauth2CodeTtl)?.value,
            oauth2_allow_private_jwks_uri: required(layers, Setting::Oauth2AllowPrivateJwksUri, values::boolean)?,
            oauth2_pending_per_ip: count(layers, Setting::Oauth2PendingPerIp)?,
        };
        check_webauthn(layers, &config)?;
        Ok(config)
    }

    /// `(setting, value)` for every setting, in [`Setting::ALL`] order, for `--print-config` and
    /// diagnostics. `master_key` shows `***`; the store URLs show their password (and any
    /// credential-like query parameter) as `***`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        Setting::ALL.into_iter().map(|s| (s.key(), self.describe_one(s))).collect()
    }

    fn describe_one(&self, setting: Setting) -> String {
        match setting {
            Setting::Bind => self.bind.to_string(),
            Setting::Issuer => self.issuer.to_string(),
            Setting::DatabaseUrl => values::mask_url(self.database_url.expose_secret()),
            Setting::DatabaseMaxConnections => self.database_max_connections.to_string(),
            Setting::RedisUrl => match &self.redis_url {
                Some(url) => values::mask_url(url.expose_secret()),
                None => format!("({})", setting.spec().default.describe()),
            },
            Setting::MasterKey => match &self.master_key {
                Some(_) => "***".to_owned(),
                None if self.hsm_module.is_some() => "(unset: the HSM holds the master key)".to_owned(),
                None => format!("(unset: the development key file in {})", self.data_dir.display()),
            },
            Setting::HsmEnabled => self.hsm_module.is_some().to_string(),
            Setting::HsmModule => unset_or(setting, self.hsm_module.as_ref().map(|p| p.display().to_string())),
            Setting::HsmSlot => unset_or(
                setting,
                self.hsm_slot.as_ref().map(|slot| match slot {
                    crate::hsm::HsmSlot::Number(n) => n.to_string(),
                    crate::hsm::HsmSlot::TokenLabel(label) => label.clone(),
                }),
            ),
            Setting::HsmPin => unset_or(setting, self.hsm_pin.as_ref().map(|_| "***".to_owned())),
            Setting::HsmProvider => unset_or(setting, self.hsm_provider.clone()),
            Setting::DataDir => self.data_dir.display().to_string(),
            Setting::TrustedProxies => nets(&self.trusted_proxies),
            Setting::LogFormat => self.log_format.to_string(),
            Setting::LogLevel => self.log_level.clone(),
            Setting::RequestTimeout => self.request_timeout.as_secs().to_string(),
            Setting::JwtAlgorithm => self.jwt_algorithm.to_string(),
            Setting::JwtSecret => match &self.jwt_secret {
                Some(_) => "***".to_owned(),
                None => format!("({})", setting.spec().default.describe()),
            },
            Setting::Audience => self.audience.clone(),
            Setting::ApiKeyPrefix => self.api_key_prefix.clone(),
            Setting::SigningKeyRotation => match self.signing_key_rotation {
                Some(age) => (age.as_secs() / 86_400).to_string(),
                None => format!("({})", setting.spec().default.describe()),
            },
            Setting::AccessTtl => self.access_ttl.as_secs().to_string(),
            Setting::RefreshTtl => self.refresh_ttl.as_secs().to_string(),
            Setting::RefreshGrace => self.refresh_grace.as_secs().to_string(),
            Setting::SessionLifetime => self.session_lifetime.as_secs().to_string(),
            Setting::SessionIdleTimeout => self.session_idle_timeout.as_secs().to_string(),
            Setting::SessionCache => self.session_cache.as_millis().to_string(),
            Setting::MaxSessionsPerUser => self.max_sessions_per_user.to_string(),
            Setting::ConcurrentSessions => self.concurrent_sessions.to_string(),
            Setting::SessionBinding => self.session_binding.as_str().to_owned(),
            Setting::MaxLoginAttempts => self.max_login_attempts.to_string(),
            Setting::LockoutDuration => self.lockout_duration.as_secs().to_string(),
            Setting::IpMaxLoginFailures => self.ip_max_login_failures.to_string(),
            Setting::PasswordMinLength => self.password_min_length.to_string(),
            Setting::PasswordRequire => {
                if self.password_require.is_empty() {
                    "(none)".to_owned()
                } else {
                    self.password_require.iter().map(|class| class.as_str()).collect::<Vec<_>>().join(", ")
                }
            }
            Setting::PasswordMinScore => self.password_min_score.to_string(),
            Setting::PasswordHistory => self.password_history.to_string(),
            Setting::PasswordMaxAge => match self.password_max_age {
                Some(age) => (age.as_secs() / 86_400).to_string(),
                None => format!("({})", setting.spec().default.describe()),
            },
            Setting::Argon2MemoryKib => self.argon2_memory_kib.to_string(),
            Setting::Argon2Iterations => self.argon2_iterations.to_string(),
            Setting::Argon2Parallelism => self.argon2_parallelism.to_string(),
            Setting::HashConcurrency => match self.hash_concurrency {
                Some(n) => n.to_string(),
                None => format!("({})", setting.spec().default.describe()),
            },
            Setting::MfaIssuer => self.mfa_issuer.clone(),
            Setting::MfaRequired => self.mfa_required.to_string(),
            Setting::MfaRequiredRoles => {
                if self.mfa_required_roles.is_empty() {
                    "(none)".to_owned()
                } else {
                    self.mfa_required_roles.join(", ")
                }
            }
            Setting::MfaFactors => self.mfa_factors.to_string(),
            Setting::MfaCodeTtl => self.mfa_code_ttl.as_secs().to_string(),
            Setting::MfaResendInterval => self.mfa_resend_interval.as_secs().to_string(),
            Setting::SmtpServer => unset_or(setting, self.smtp_server.clone()),
            Setting::SmtpPort => self.smtp_port.to_string(),
            Setting::SmtpUsername => unset_or(setting, self.smtp_username.clone()),
            Setting::SmtpPassword => unset_or(setting, self.smtp_password.as_ref().map(|_| "***".to_owned())),
            Setting::SmtpTls => self.smtp_tls.to_string(),
            Setting::SmtpFrom => unset_or(setting, self.smtp_from.as_ref().map(ToString::to_string)),
            Setting::SmsProvider => unset_or(setting, self.sms_provider.map(|p| p.to_string())),
            Setting::TwilioAccountSid => unset_or(setting, self.twilio_account_sid.clone()),
            Setting::TwilioAuthToken => unset_or(setting, self.twilio_auth_token.as_ref().map(|_| "***".to_owned())),
            Setting::TwilioFrom => unset_or(setting, self.twilio_from.as_ref().map(ToString::to_string)),
            Setting::TwilioBaseUrl => self.twilio_base_url.to_string(),
            Setting::NotifyWebhookUrl => {
                unset_or(setting, self.notify_webhook_url.as_ref().map(|u| values::mask_webhook_url(u.expose_secret())))
            }
            Setting::WebauthnRpId => unset_or(setting, self.webauthn_rp_id.clone()),
            Setting::WebauthnOrigin => {
                unset_or(setting, self.webauthn_origin.as_ref().map(|o| o.origin().ascii_serialization()))
            }
            Setting::GeoipDb => unset_or(setting, self.geoip_db.as_ref().map(|p| p.display().to_string())),
            Setting::GeoipAsnDb => unset_or(setting, self.geoip_asn_db.as_ref().map(|p| p.display().to_string())),
            Setting::GeoipAnonymousDb => {
                unset_or(setting, self.geoip_anonymous_db.as_ref().map(|p| p.display().to_string()))
            }
            Setting::RiskEnabled => self.risk_enabled.to_string(),
            Setting::RiskThresholds => {
                let t = &self.risk_thresholds;
                format!("{},{},{}", t.mfa, t.enhanced, t.block)
            }
            Setting::RiskWeights => FactorName::ALL
                .into_iter()
                .filter(|f| *f != FactorName::DeniedAddress)
                .map(|f| format!("{}={}", f.as_str(), self.risk_weights.of(f)))
                .collect::<Vec<_>>()
                .join(", "),
            Setting::RiskMaxTravelKmh => self.risk_max_travel_kmh.to_string(),
            Setting::RiskDenyCidrs => nets(&self.risk_deny_cidrs),
            Setting::RiskAllowCidrs => nets(&self.risk_allow_cidrs),
            Setting::DeviceApproval => self.device_approval.to_string(),
            Setting::DeviceApprovalTtl => self.device_approval_ttl.as_secs().to_string(),
            Setting::RememberDeviceTtl => self.remember_device_ttl.as_secs().to_string(),
            Setting::EncryptionAlgorithm => self.encryption_algorithm.to_string(),
            Setting::EncryptionKeyRotation => self.encryption_key_rotation_days.to_string(),
            Setting::EncryptionCompression => self.encryption_compression.to_string(),
            Setting::EncryptionMaxPlaintext => self.encryption_max_plaintext.to_string(),
            Setting::EncryptionPolicies => {
                let items = (!self.encryption_policies.is_empty()).then(|| self.encryption_policies.join(", "));
                unset_or(setting, items)
            }
            Setting::EncryptionReencryptBatchSize => self.reencryption.batch_size.to_string(),
            Setting::EncryptionReencryptRate => {
                unset_or(setting, self.reencryption.rows_per_second.map(|rate| rate.to_string()))
            }
            Setting::MonitoringDetectors => self.monitoring_detectors.to_string(),
            Setting::MonitoringBruteForceFailures => self.monitoring_brute_force_failures.to_string(),
            Setting::MonitoringBruteForceWindow => self.monitoring_brute_force_window.as_secs().to_string(),
            Setting::MonitoringSprayingAccounts => self.monitoring_spraying_accounts.to_string(),
            Setting::MonitoringSprayingWindow => self.monitoring_spraying_window.as_secs().to_string(),
            Setting::MonitoringStuffingFailures => self.monitoring_stuffing_failures.to_string(),
            Setting::MonitoringStuffingAddresses => self.monitoring_stuffing_addresses.to_string(),
            Setting::MonitoringStuffingFailurePercent => self.monitoring_stuffing_failure_percent.to_string(),
            Setting::MonitoringStuffingWindow => self.monitoring_stuffing_window.as_secs().to_string(),
            Setting::MonitoringApiKeyRefusals => self.monitoring_api_key_refusals.to_string(),
            Setting::MonitoringApiKeyWindow => self.monitoring_api_key_window.as_secs().to_string(),
            Setting::MonitoringBaselineSlot => self.monitoring_baseline_slot.as_secs().to_string(),
            Setting::MonitoringBaselineSlots => self.monitoring_baseline_slots.to_string(),
            Setting::MonitoringBaselineMinEvents => self.monitoring_baseline_min_events.to_string(),
            Setting::MonitoringIncidentAutoResponse => self.monitoring_incident_auto_response.to_string(),
            Setting::MonitoringResponses => self.monitoring_responses.to_string(),
            Setting::MonitoringAlertSeverityThreshold => self.monitoring_alert_severity_threshold.as_str().to_owned(),
            Setting::MonitoringAlertEmails => {
                if self.monitoring_alert_emails.is_empty() {
                    "(none)".to_owned()
                } else {
                    self.monitoring_alert_emails.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
                }
            }
            Setting::MonitoringAlertWebhookUrl => unset_or(
                setting,
                self.monitoring_alert_webhook_url.as_ref().map(|u| values::mask_webhook_url(u.expose_secret())),
            ),
            Setting::MonitoringPushUrl => unset_or(
                setting,
                self.monitoring_push_url.as_ref().map(|u| values::mask_webhook_url(u.expose_secret())),
            ),
            Setting::MonitoringAlertWebhookSecret => {
                unset_or(setting, self.monitoring_alert_webhook_secret.as_ref().map(|_| "***".to_owned()))
            }
            Setting::MonitoringAlertsPerHour => self.monitoring_alerts_per_hour.to_string(),
            Setting::ComplianceGdprEnabled => self.compliance_gdpr_enabled.to_string(),
            Setting::ComplianceHipaaEnabled => self.compliance_hipaa_enabled.to_string(),
            Setting::CompliancePciDssEnabled => self.compliance_pci_dss_enabled.to_string(),
            Setting::ComplianceSoxEnabled => self.compliance_sox_enabled.to_string(),
            Setting::ComplianceIso27001Enabled => self.compliance_iso27001_enabled.to_string(),
            Setting::ComplianceDeletionDelay => self.compliance_deletion_delay.as_secs().to_string(),
            Setting::ComplianceConsentValidity => self.compliance_consent_validity.as_secs().to_string(),
            Setting::ComplianceConsentValidityPerType => {
                let items: Vec<String> = self
                    .compliance_consent_validity_per_type
                    .iter()
                    .map(|(name, validity)| format!("{name}={}", validity.as_secs()))
                    .collect();
                unset_or(setting, (!items.is_empty()).then(|| items.join(", ")))
            }
            Setting::ComplianceErasureOnWithdrawal => {
                if self.compliance_erasure_on_withdrawal.is_empty() {
                    "none".to_owned()
                } else {
                    self.compliance_erasure_on_withdrawal.join(", ")
                }
            }
            Setting::ComplianceAuditRetentionDays => (self.compliance_audit_retention.as_secs() / 86_400).to_string(),
            Setting::ComplianceLoginHistoryRetentionDays => {
                (self.compliance_login_history_retention.as_secs() / 86_400).to_string()
            }
            Setting::ComplianceIncidentRetentionDays => {
                (self.compliance_incident_retention.as_secs() / 86_400).to_string()
            }
            Setting::ComplianceAlertDeliveryRetentionDays => {
                (self.compliance_alert_delivery_retention.as_secs() / 86_400).to_string()
            }
            Setting::Oauth2RequirePkce => self.oauth2_require_pkce.to_string(),
            Setting::Oauth2CodeTtl => self.oauth2_code_ttl.as_secs().to_string(),
            Setting::Oauth2AllowPrivateJwksUri => self.oauth2_allow_private_jwks_uri.to_string(),
            Setting::Oauth2PendingPerIp => self.oauth2_pending_per_ip.to_string(),
        }
    }

    /// The WebAuthn relying party id and origin in force: the settings, or what the issuer gives
    /// (its host, when that is a domain name, and its origin). `None`: passkeys are off.
    pub fn webauthn(&self) -> Option<(String, Url)> {
        let issuer_host = match self.issuer.host() {
            Some(url::Host::Domain(domain)) => Some(domain.to_ascii_lowercase()),
            _ => None,
        };
        let rp_id = self.webauthn_rp_id.clone().or(issuer_host)?;
        let origin = match &self.webauthn_origin {
            Some(origin) => origin.clone(),
            None => Url::parse(&self.issuer.origin().ascii_serialization()).ok()?,
        };
        Some((rp_id, origin))
    }

    /// Valid but risky choices, one sentence each, for the caller to log at start-up (logging is
    /// not set up yet while the configuration loads). Never contains a secret.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.hsm_module.is_none() && self.hsm_pin.is_some() {
            let why = if self.hsm_enabled == Some(false) { "hsm_enabled is false" } else { "hsm_module is not set" };
            warnings.push(format!(
                "hsm_pin is set but {why}: the HSM is not used and the master key comes from master_key or the \
                 development key file; unset hsm_pin so an unused PIN does not sit in the configuration"
            ));
        }
        if self.master_key.is_none() && self.hsm_module.is_none() {
            warnings.push(format!(
                "no master key is configured (PALISADE_MASTER_KEY): a development key file in {} is used; \
                 it is not fit for production, and losing it loses every encrypted value",
                self.data_dir.display()
            ));
        }
        let loopback_issuer = match self.issuer.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if self.issuer.scheme() == "http" && !loopback_issuer {
            warnings.push(format!(
                "the issuer {} is plain http on a non-loopback host: tokens and credentials would cross the \
                 network unencrypted; use https",
                self.issuer
            ));
        }
        if loopback_issuer && !self.bind.ip().is_loopback() && !self.bind.ip().is_unspecified() {
            warnings.push(format!(
                "the issuer {} is a loopback URL but the server listens on {}: set PALISADE_ISSUER to the \
                 public URL clients use",
                self.issuer, self.bind
            ));
        }
        if let Some(everyone) = self.trusted_proxies.iter().find(|net| net.prefix_len() == 0) {
            warnings.push(format!(
                "trusted_proxies contains {everyone}: every peer may set X-Forwarded-For, so any client can \
                 choose the address that rate limits, IP allow-lists and the audit log see"
            ));
        }
        if self.access_ttl > Duration::from_secs(3600) {
            // Also catches seconds written into JWT_ACCESS_TOKEN_EXPIRE_MINUTES (900 → 15 hours).
            warnings.push(format!(
                "access_ttl is {} seconds ({:.1} hours): a stolen access token stays usable that long; \
                 keep it short (the default is 900 seconds) and let refresh tokens carry long sign-ins",
                self.access_ttl.as_secs(),
                self.access_ttl.as_secs_f64() / 3600.0,
            ));
        }
        match (self.jwt_algorithm, &self.jwt_secret) {
            (JwtAlgorithm::HS256, _) => warnings.push(
                "jwt_algorithm is HS256: every service that verifies tokens holds the secret that mints them, \
                 and no public key can be published for others to verify with; prefer EdDSA"
                    .to_owned(),
            ),
            (algorithm, Some(_)) => warnings.push(format!(
                "a jwt_secret is set (PALISADE_JWT_SECRET or JWT_SECRET_KEY) but jwt_algorithm is {algorithm}, \
                 which does not use it; unset it so an unused secret does not sit in the configuration"
            )),
            (_, None) => {}
        }
        warnings.extend(self.message_warnings());
        warnings.extend(self.risk_warnings());
        warnings.extend(self.encryption_warnings());
        warnings
    }

    /// A sensitive classification whose policy allows compression (only an explicit
    /// `CLASS.compression=true` in `encryption_policies` does that).
    fn encryption_warnings(&self) -> Vec<String> {
        self.encryption
            .all()
            .into_iter()
            .filter(|(class, policy)| class.is_sensitive() && policy.compression)
            .map(|(class, _)| {
                format!(
                    "encryption_policies allows compression for {class}: the length of a compressed ciphertext \
                     reveals its content to whoever can mix their own input into it (CRIME, BREACH); remove \
                     {class}.compression=true unless no caller ever does"
                )
            })
            .collect()
    }

    /// The warnings about sessions, devices and risk scoring: settings that cancel each other.
    fn risk_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.concurrent_sessions && self.max_sessions_per_user > 1 {
            warnings.push(format!(
                "max_sessions_per_user is {} but enable_concurrent_sessions is false: a user holds one session \
                 at a time anyway",
                self.max_sessions_per_user
            ));
        }
        if let Some(net) = self.risk_allow_cidrs.iter().find(|net| net.prefix_len() == 0) {
            warnings.push(format!(
                "risk_allow_cidrs contains {net}: every address is exempt from the deny list, anonymizer, \
                 address-failure and new-network factors"
            ));
        }
        if !self.risk_enabled {
            let unused = keys_of_set([
                (Setting::RiskDenyCidrs, !self.risk_deny_cidrs.is_empty()),
                (Setting::RiskAllowCidrs, !self.risk_allow_cidrs.is_empty()),
            ]);
            if !unused.is_empty() {
                warnings.push(format!(
                    "{} set but risk_enabled is false: logins are not scored, so the lists are not applied",
                    unused.join(", ")
                ));
            }
        }
        warnings
    }

    /// The warnings about the message senders: plain-text connections, and settings that do
    /// nothing because their sender is not configured.
    fn message_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        match &self.smtp_server {
            Some(server) if self.smtp_tls == SmtpTls::Off && !is_loopback_host(server) => {
                let what = if self.smtp_password.is_some() { "the SMTP password and " } else { "" };
                warnings.push(format!(
                    "smtp_tls is off: {what}the one-time codes sent by e-mail cross the network to {server} \
                     unencrypted; use starttls or tls"
                ));
            }
            Some(_) => {}
            None => {
                let unused = keys_of_set([
                    (Setting::SmtpUsername, self.smtp_username.is_some()),
                    (Setting::SmtpPassword, self.smtp_password.is_some()),
                    (Setting::SmtpFrom, self.smtp_from.is_some()),
                ]);
                if !unused.is_empty() {
                    warnings.push(format!(
                        "{} set but smtp_server is not: no e-mail is sent, and there is no e-mail factor",
                        unused.join(", ")
                    ));
                }
            }
        }
        if self.sms_provider.is_none() {
            let unused = keys_of_set([
                (Setting::TwilioAccountSid, self.twilio_account_sid.is_some()),
                (Setting::TwilioAuthToken, self.twilio_auth_token.is_some()),
                (Setting::TwilioFrom, self.twilio_from.is_some()),
            ]);
            if !unused.is_empty() {
                warnings.push(format!(
                    "{} set but sms_provider is not: no text message is sent, and there is no SMS factor; \
                     set sms_provider = twilio to use them",
                    unused.join(", ")
                ));
            }
        } else if self.twilio_base_url.scheme() == "http"
            && !self.twilio_base_url.host_str().is_some_and(is_loopback_host)
        {
            warnings.push(format!(
                "twilio_base_url {} is plain http on a non-loopback host: the Twilio auth token and every \
                 code would cross the network unencrypted; use https",
                self.twilio_base_url
            ));
        }
        if let Some(url) = self.notify_webhook_url.as_ref().and_then(|u| Url::parse(u.expose_secret()).ok())
            && url.scheme() == "http"
            && !url.host_str().is_some_and(is_loopback_host)
        {
            warnings.push(format!(
                "notify_webhook_url {} is plain http on a non-loopback host: the notices, and the URL's \
                 credential, would cross the network unencrypted; use https",
                values::mask_webhook_url(url.as_str())
            ));
        }
        for (key, url) in [
            (Setting::MonitoringAlertWebhookUrl.key(), &self.monitoring_alert_webhook_url),
            (Setting::MonitoringPushUrl.key(), &self.monitoring_push_url),
        ] {
            if let Some(url) = url.as_ref().and_then(|u| Url::parse(u.expose_secret()).ok())
                && url.scheme() == "http"
                && !url.host_str().is_some_and(is_loopback_host)
            {
                warnings.push(format!(
                    "{key} {} is plain http on a non-loopback host: the alerts, and the URL's credential, would \
                     cross the network unencrypted (the signature proves who sent them, it does not hide them); \
                     use https",
                    values::mask_webhook_url(url.as_str())
                ));
            }
        }
        if !self.monitoring_alert_emails.is_empty() && self.smtp_server.is_none() {
            warnings.push(
                "monitoring_alert_emails is set but smtp_server is not: administrators get no alert by e-mail; \
                 set the smtp_* settings"
                    .to_owned(),
            );
        }
        if self.monitoring_alert_webhook_secret.is_some()
            && self.monitoring_alert_webhook_url.is_none()
            && self.monitoring_push_url.is_none()
        {
            warnings.push(
                "monitoring_alert_webhook_secret is set but neither monitoring_alert_webhook_url nor \
                 monitoring_push_url is: it signs nothing; unset it so an unused key does not sit in the \
                 configuration"
                    .to_owned(),
            );
        }
        warnings
    }
}

/// A value as read: parsed, with the text it was parsed from and where that came from (for
/// errors that compare it with another setting).
struct Read<'a, T> {
    value: T,
    text: &'a str,
    origin: Origin,
}

/// The text that decides `setting`, and where it came from: the highest layer that sets it, else
/// the table's default text. `None`: unset (for the database URL: derived from `data_dir`). An
/// empty value unsets a setting whose default is "unset", and is an error for the others.
fn winning(layers: &Layers, setting: Setting) -> Result<Option<(&str, Origin)>, ConfigError> {
    let default = setting.spec().default;
    match layers.resolve(setting) {
        Some(("", origin)) => match default {
            DefaultValue::Unset(_) => Ok(None),
            DefaultValue::Text(_) | DefaultValue::DatabaseInDataDir => {
                Err(ConfigError::invalid(setting, origin, "", "is empty (this setting cannot be unset)"))
            }
        },
        Some(found) => Ok(Some(found)),
        None => match default {
            DefaultValue::Text(text) => Ok(Some((text, Origin::Default))),
            DefaultValue::Unset(_) | DefaultValue::DatabaseInDataDir => Ok(None),
        },
    }
}

/// Where the winning value of `setting` came from (the default when no layer sets it).
fn origin_of(layers: &Layers, setting: Setting) -> Origin {
    layers.resolve(setting).map_or(Origin::Default, |(_, origin)| origin)
}

fn read<T>(
    setting: Setting,
    (text, origin): (&str, Origin),
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Read<'_, T>, ConfigError> {
    match parse(text) {
        Ok(value) => Ok(Read { value, text, origin }),
        Err(problem) => Err(ConfigError::invalid(setting, origin, text, problem)),
    }
}

/// A mistake in the settings table, reported as one rather than with a panic.
fn table_bug(setting: Setting, what: &str) -> ConfigError {
    ConfigError::invalid(setting, Origin::Default, "", format!("{what} (a bug in the settings table)"))
}

/// Parses the winning value of a setting that always has one (its default otherwise).
fn required<T>(layers: &Layers, setting: Setting, parse: fn(&str) -> Result<T, String>) -> Result<T, ConfigError> {
    match winning(layers, setting)? {
        Some(found) => read(setting, found, parse).map(|found| found.value),
        None => Err(table_bug(setting, "has no default")),
    }
}

/// The passkey origin's host must be the relying party id or a subdomain of it, or every
/// registration would fail in the browser.
fn check_webauthn(layers: &Layers, config: &Config) -> Result<(), ConfigError> {
    let Some((rp_id, origin)) = config.webauthn() else { return Ok(()) };
    let host = origin.host_str().unwrap_or_default().to_ascii_lowercase();
    if host == rp_id || host.ends_with(&format!(".{rp_id}")) {
        return Ok(());
    }
    let (setting, problem) = if config.webauthn_origin.is_some() {
        (
            Setting::WebauthnOrigin,
            format!("has the host {host}, which is not the relying party id {rp_id} or one of its subdomains"),
        )
    } else {
        (
            Setting::WebauthnRpId,
            format!("is not the issuer's host {host} or a parent domain of it: set webauthn_origin too"),
        )
    };
    match winning(layers, setting)? {
        Some((text, origin)) => Err(ConfigError::invalid(setting, origin, text, problem)),
        None => Err(ConfigError::missing(setting, problem)),
    }
}

/// Parses the winning value of a setting that may be unset; an empty value unsets it.
fn optional<T>(
    layers: &Layers,
    setting: Setting,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    winning(layers, setting)?.map(|found| read(setting, found, parse).map(|found| found.value)).transpose()
}

/// Reads a whole-number setting by its [`settings::Number`] row: range-checked in the unit of the
/// name it came under (an alias may be in minutes or days), then converted by `convert`.
fn number<T>(
    layers: &Layers,
    setting: Setting,
    convert: fn(u64, Option<Unit>) -> Option<T>,
) -> Result<Option<Read<'_, T>>, ConfigError> {
    let Some(rule) = setting.spec().number else {
        return Err(table_bug(setting, "is read as a number but has no range"));
    };
    let Some((text, origin)) = winning(layers, setting)? else {
        return Ok(None);
    };
    let rule = rule.rule(origin.is_alias(setting));
    read(setting, (text, origin), |text| {
        let n = values::whole(text, rule)?;
        convert(n, rule.0).ok_or_else(|| "is out of range".to_owned())
    })
    .map(Some)
}

fn to_count<T: TryFrom<u64>>(n: u64, _unit: Option<Unit>) -> Option<T> {
    T::try_from(n).ok()
}

fn to_duration(n: u64, unit: Option<Unit>) -> Option<Duration> {
    unit?.duration(n)
}

/// A count that always has a value.
fn count<T: TryFrom<u64>>(layers: &Layers, setting: Setting) -> Result<T, ConfigError> {
    number(layers, setting, to_count)?.map(|found| found.value).ok_or_else(|| table_bug(setting, "has no default"))
}

/// A duration that always has a value.
fn duration(layers: &Layers, setting: Setting) -> Result<Read<'_, Duration>, ConfigError> {
    number(layers, setting, to_duration)?.ok_or_else(|| table_bug(setting, "has no default"))
}

/// HS256 signs with the shared secret: it must be set, and as long as the HMAC output.
fn check_hs256_secret(layers: &Layers, secret: Option<&SecretString>) -> Result<(), ConfigError> {
    let algorithm_from = origin_of(layers, Setting::JwtAlgorithm).describe(Setting::JwtAlgorithm);
    let Some(secret) = secret else {
        return Err(ConfigError::missing(
            Setting::JwtSecret,
            format!(
                "jwt_algorithm is HS256 (from {algorithm_from}), which signs tokens with a shared secret, and none \
                 is set (or choose EdDSA, ES256 or RS256, which sign with the keyring's keys)"
            ),
        ));
    };
    if secret.expose_secret().len() < values::HS256_MIN_SECRET_BYTES {
        return Err(ConfigError::invalid(
            Setting::JwtSecret,
            origin_of(layers, Setting::JwtSecret),
            "",
            format!(
                "is shorter than the {} bytes HS256 needs (jwt_algorithm is HS256, from {algorithm_from})",
                values::HS256_MIN_SECRET_BYTES
            ),
        ));
    }
    Ok(())
}

/// `sqlite://<data_dir>/palisade.db`: moving the data directory moves the default database too.
fn default_database_url(data_dir: &std::path::Path) -> Result<SecretString, ConfigError> {
    let dir = data_dir.to_str().filter(|d| !d.contains(['?', '#']));
    let Some(dir) = dir else {
        return Err(ConfigError::invalid(
            Setting::DatabaseUrl,
            Origin::Default,
            "",
            "cannot be derived from a data directory that is not UTF-8 or contains ? or #; set it explicitly",
        ));
    };
    let url = format!("sqlite://{}/palisade.db", dir.trim_end_matches('/'));
    values::database_url(&url)
        .map_err(|problem| ConfigError::invalid(Setting::DatabaseUrl, Origin::Default, "", problem))
}

/// The keys of the settings flagged as set, in order.
fn keys_of_set<const N: usize>(settings: [(Setting, bool); N]) -> Vec<&'static str> {
    settings.into_iter().filter(|(_, set)| *set).map(|(setting, _)| setting.key()).collect()
}

/// A list of networks for describe(), `(none)` when empty.
fn nets(list: &[IpNet]) -> String {
    if list.is_empty() {
        "(none)".to_owned()
    } else {
        list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// A setting's value for describe(), or its table default's text when unset.
fn unset_or(setting: Setting, value: Option<String>) -> String {
    value.unwrap_or_else(|| format!("({})", setting.spec().default.describe()))
}

/// `localhost` or a loopback address (with or without IPv6 brackets).
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Says where `setting`'s winning value came from, for messages about another setting.
fn from_where(layers: &Layers, setting: Setting) -> String {
    origin_of(layers, setting).describe(setting)
}

/// The SMTP settings, read and checked together.
struct Smtp {
    server: Option<String>,
    port: u16,
    username: Option<String>,
    password: Option<SecretString>,
    tls: SmtpTls,
    from: Option<Mailbox>,
}

impl Smtp {
    fn read(layers: &Layers) -> Result<Smtp, ConfigError> {
        let server = optional(layers, Setting::SmtpServer, values::smtp_server)?;
        let tls = required(layers, Setting::SmtpTls, values::smtp_tls)?;
        let port = number(layers, Setting::SmtpPort, to_count)?
            .ok_or_else(|| table_bug(Setting::SmtpPort, "has no default"))?;
        // 587 is the submission port, which speaks plain text first: with implicit TLS the
        // default would fail in a confusing handshake, so it follows the mode.
        let port = if port.origin == Origin::Default && tls == SmtpTls::Tls { 465 } else { port.value };
        let username = optional(layers, Setting::SmtpUsername, values::smtp_username)?;
        let password = optional(layers, Setting::SmtpPassword, values::smtp_password)?;
        match (&username, &password) {
            (Some(_), None) => {
                return Err(ConfigError::missing(
                    Setting::SmtpPassword,
                    format!(
                        "smtp_username is set (from {}), and signing in to the mail server needs its password \
                         (or unset smtp_username to send without signing in)",
                        from_where(layers, Setting::SmtpUsername)
                    ),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::missing(
                    Setting::SmtpUsername,
                    format!(
                        "smtp_password is set (from {}), and a password is useless without the user name it \
                         belongs to (or unset smtp_password to send without signing in)",
                        from_where(layers, Setting::SmtpPassword)
                    ),
                ));
            }
            _ => {}
        }
        let from = optional(layers, Setting::SmtpFrom, values::smtp_from)?;
        if server.is_some() && from.is_none() {
            return Err(ConfigError::missing(
                Setting::SmtpFrom,
                format!(
                    "smtp_server is set (from {}), and every message needs a From address",
                    from_where(layers, Setting::SmtpServer)
                ),
            ));
        }
        Ok(Smtp { server, port, username, password, tls, from })
    }
}

/// The alert channels' URLs and the key that signs what is posted to them, read together.
struct Alerts {
    webhook_url: Option<SecretString>,
    push_url: Option<SecretString>,
    secret: Option<SecretString>,
}

impl Alerts {
    fn read(layers: &Layers) -> Result<Alerts, ConfigError> {
        let webhook_url = optional(layers, Setting::MonitoringAlertWebhookUrl, values::alert_url)?;
        let push_url = optional(layers, Setting::MonitoringPushUrl, values::alert_url)?;
        let secret = optional(layers, Setting::MonitoringAlertWebhookSecret, values::alert_webhook_secret)?;
        if secret.is_none() {
            // An unsigned alert could not be told from a forgery by its receiver: refuse to start
            // rather than send them.
            let needs = [(Setting::MonitoringAlertWebhookUrl, &webhook_url), (Setting::MonitoringPushUrl, &push_url)]
                .into_iter()
                .find(|(_, url)| url.is_some());
            if let Some((setting, _)) = needs {
                return Err(ConfigError::missing(
                    Setting::MonitoringAlertWebhookSecret,
                    format!(
                        "{} is set (from {}), and every alert posted there is signed with this key so that the \
                         receiver can refuse forged ones (or unset {})",
                        setting.key(),
                        from_where(layers, setting),
                        setting.key()
                    ),
                ));
            }
        }
        Ok(Alerts { webhook_url, push_url, secret })
    }
}

/// The encryption service's settings, read together and built into its policies.
struct Encryption {
    algorithm: Algorithm,
    rotation_days: u32,
    compression: bool,
    max_plaintext: usize,
    overrides: Vec<String>,
    policies: EncryptionPolicies,
}

impl Encryption {
    /// `hsm`: whether the master key is in an HSM (`hsm_module` set), so classes may require one.
    fn read(layers: &Layers, hsm: bool) -> Result<Encryption, ConfigError> {
        let algorithm = required(layers, Setting::EncryptionAlgorithm, values::encryption_algorithm)?;
        let rotation_days = count(layers, Setting::EncryptionKeyRotation)?;
        let compression = required(layers, Setting::EncryptionCompression, values::boolean)?;
        let max_plaintext = count(layers, Setting::EncryptionMaxPlaintext)?;
        let overrides = optional(layers, Setting::EncryptionPolicies, values::encryption_policies)?.unwrap_or_default();
        let policies = build_encryption_policies(algorithm, rotation_days, compression, max_plaintext, &overrides, hsm)
            .map_err(|(setting, PolicyError(problem))| refused_by_core(layers, setting, &problem))?;
        Ok(Encryption { algorithm, rotation_days, compression, max_plaintext, overrides, policies })
    }
}

/// `setting`'s winning value, refused by core's own check with `problem`.
fn refused_by_core(layers: &Layers, setting: Setting, problem: &str) -> ConfigError {
    match winning(layers, setting) {
        Ok(Some((text, origin))) => ConfigError::invalid(setting, origin, text, format!("is refused: {problem}")),
        Ok(None) => table_bug(setting, &format!("is unset and refused: {problem}")),
        Err(e) => e,
    }
}

/// The background re-encryption's pacing. The table's ranges are core's, so they already hold;
/// core's own check runs too (as for the encryption policies), one setting at a time so that a
/// refusal names its setting, and fails only if the table and core drift apart.
fn read_reencryption(layers: &Layers) -> Result<ReencryptionSettings, ConfigError> {
    let batch_size = count(layers, Setting::EncryptionReencryptBatchSize)?;
    let rows_per_second = number(layers, Setting::EncryptionReencryptRate, to_count)?.map(|found| found.value);
    let core = ReencryptionSettings::default();
    for (setting, alone) in [
        (Setting::EncryptionReencryptBatchSize, ReencryptionSettings { batch_size, ..core }),
        (Setting::EncryptionReencryptRate, ReencryptionSettings { rows_per_second, ..core }),
    ] {
        alone.validate().map_err(|problem| refused_by_core(layers, setting, &problem))?;
    }
    Ok(ReencryptionSettings { batch_size, rows_per_second })
}

/// The encryption service's policies from its settings, in this order: the built-in policies; every
/// class's rotation period; `CLASS.algorithm=…` for every class and, when `compression` is false,
/// `CLASS.compression=false` for every class, as generated override items; the operator's own
/// `overrides`, which therefore win over all of those; the plaintext limit. Every step is the
/// encryption service's own check. An error says which setting it comes from.
fn build_encryption_policies(
    algorithm: Algorithm,
    rotation_days: u32,
    compression: bool,
    max_plaintext: usize,
    overrides: &[String],
    hsm_configured: bool,
) -> Result<EncryptionPolicies, (Setting, PolicyError)> {
    let every_class =
        |item: &str| -> Vec<String> { DataClassification::ALL.into_iter().map(|c| format!("{c}.{item}")).collect() };
    let blame = |setting: Setting| move |problem: PolicyError| (setting, problem);
    let mut policies = EncryptionPolicies::defaults(hsm_configured)
        .with_rotation_days(rotation_days)
        .map_err(blame(Setting::EncryptionKeyRotation))?
        .with_overrides(&every_class(&format!("algorithm={algorithm}")), hsm_configured)
        .map_err(blame(Setting::EncryptionAlgorithm))?;
    if !compression {
        policies = policies
            .with_overrides(&every_class("compression=false"), hsm_configured)
            .map_err(blame(Setting::EncryptionCompression))?;
    }
    policies
        .with_overrides(overrides, hsm_configured)
        .map_err(blame(Setting::EncryptionPolicies))?
        .with_max_plaintext(max_plaintext)
        .map_err(blame(Setting::EncryptionMaxPlaintext))
}

/// The master key's source: `master_key`, or the HSM settings, read and checked together.
struct Hsm {
    enabled: Option<bool>,
    module: Option<PathBuf>,
    slot: Option<crate::hsm::HsmSlot>,
    pin: Option<SecretString>,
    provider: Option<String>,
    master_key: Option<SecretString>,
}

impl Hsm {
    fn read(layers: &Layers) -> Result<Hsm, ConfigError> {
        let enabled = optional(layers, Setting::HsmEnabled, values::boolean)?;
        let module = optional(layers, Setting::HsmModule, values::hsm_module)?;
        let slot = optional(layers, Setting::HsmSlot, crate::hsm::HsmSlot::parse)?;
        let pin = optional(layers, Setting::HsmPin, values::hsm_pin)?;
        let provider = optional(layers, Setting::HsmProvider, values::hsm_provider)?;
        let master_key = optional(layers, Setting::MasterKey, values::master_key)?;
        if enabled == Some(false) {
            // Turned off on purpose: the other HSM settings stay in the file but do nothing.
            return Ok(Hsm { enabled, module: None, slot, pin, provider, master_key });
        }
        let Some(module) = module else {
            if enabled == Some(true) {
                return Err(ConfigError::missing(
                    Setting::HsmModule,
                    format!(
                        "hsm_enabled is true (from {}), and the HSM is reached through its PKCS#11 library \
                         (such as /usr/lib/softhsm/libsofthsm2.so)",
                        from_where(layers, Setting::HsmEnabled)
                    ),
                ));
            }
            return Ok(Hsm { enabled, module: None, slot, pin, provider, master_key });
        };
        if pin.is_none() {
            return Err(ConfigError::missing(
                Setting::HsmPin,
                format!(
                    "hsm_module is set (from {}), and the token holding the master key is opened with its user PIN",
                    from_where(layers, Setting::HsmModule)
                ),
            ));
        }
        if master_key.is_some() {
            return Err(ConfigError::invalid(
                Setting::MasterKey,
                origin_of(layers, Setting::MasterKey),
                "",
                format!(
                    "is set together with hsm_module (from {}): with an HSM the master key is the key inside the \
                     token; unset master_key (PALISADE_MASTER_KEY, ENCRYPTION_KEY) or set hsm_enabled=false",
                    from_where(layers, Setting::HsmModule)
                ),
            ));
        }
        Ok(Hsm { enabled, module: Some(module), slot, pin, provider, master_key })
    }
}

/// The SMS provider and the Twilio settings, read and checked together.
struct Twilio {
    provider: Option<SmsProvider>,
    account_sid: Option<String>,
    auth_token: Option<SecretString>,
    from: Option<PhoneNumber>,
}

impl Twilio {
    fn read(layers: &Layers) -> Result<Twilio, ConfigError> {
        let provider = optional(layers, Setting::SmsProvider, values::sms_provider)?;
        let account_sid = optional(layers, Setting::TwilioAccountSid, values::twilio_account_sid)?;
        let auth_token = optional(layers, Setting::TwilioAuthToken, values::twilio_auth_token)?;
        let from = optional(layers, Setting::TwilioFrom, values::twilio_from)?;
        if provider == Some(SmsProvider::Twilio) {
            let because = || {
                format!(
                    "sms_provider is twilio (from {}), which sends with an account SID, its auth token and a \
                     sending number",
                    from_where(layers, Setting::SmsProvider)
                )
            };
            for (setting, set) in [
                (Setting::TwilioAccountSid, account_sid.is_some()),
                (Setting::TwilioAuthToken, auth_token.is_some()),
                (Setting::TwilioFrom, from.is_some()),
            ] {
                if !set {
                    return Err(ConfigError::missing(setting, because()));
                }
            }
        }
        Ok(Twilio { provider, account_sid, auth_token, from })
    }
}
