//! The one table of settings, and the rule for which environment names are ours.
//!
//! Everything else in `config` is driven from [`Setting::spec`]: the toml keys, the clap flags and
//! their help, the environment variables and aliases, the defaults, the expected forms quoted in
//! error messages, and `docs/configuration.md` mirrors it. Adding a setting means adding a variant
//! here, a field to [`super::Config`] and one line in `Config::build`.
//!
//! This module must never read the environment or the file system: it only names and classifies.

use std::fmt;

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
}

impl Setting {
    /// Every setting, in the order of `--help`, describe() and the docs.
    pub const ALL: [Setting; 11] = [
        Setting::Bind,
        Setting::Issuer,
        Setting::DatabaseUrl,
        Setting::DatabaseMaxConnections,
        Setting::RedisUrl,
        Setting::MasterKey,
        Setting::DataDir,
        Setting::TrustedProxies,
        Setting::LogFormat,
        Setting::LogLevel,
        Setting::RequestTimeout,
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
            },
            Setting::DatabaseMaxConnections => Spec {
                key: "database_max_connections",
                flag: "database-max-connections",
                env: "PALISADE_DATABASE_MAX_CONNECTIONS",
                alias: None,
                default: DefaultValue::Text("10"),
                secret: false,
                value_name: "N",
                about: "size of the durable store's connection pool",
                expected: "a whole number from 1 to 1000",
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

pub(crate) const PLANNED: &[Planned] = &[
    Planned { what: "HSM module", key: "hsm_module", names: &["PALISADE_HSM_MODULE"] },
    Planned { what: "HSM slot", key: "hsm_slot", names: &["PALISADE_HSM_SLOT", "HSM_SLOT"] },
    Planned { what: "HSM PIN", key: "hsm_pin", names: &["PALISADE_HSM_PIN", "HSM_PIN"] },
    Planned { what: "JWT algorithm", key: "jwt_algorithm", names: &["PALISADE_JWT_ALGORITHM", "JWT_ALGORITHM"] },
    Planned { what: "HS256 secret", key: "jwt_secret", names: &["PALISADE_JWT_SECRET", "JWT_SECRET_KEY"] },
    Planned {
        what: "access token lifetime",
        key: "access_ttl",
        names: &["PALISADE_ACCESS_TTL", "JWT_ACCESS_TOKEN_EXPIRE_MINUTES"],
    },
    Planned {
        what: "refresh token lifetime",
        key: "refresh_ttl",
        names: &["PALISADE_REFRESH_TTL", "JWT_REFRESH_TOKEN_EXPIRE_DAYS"],
    },
    Planned {
        what: "login lockout threshold",
        key: "max_login_attempts",
        names: &["PALISADE_MAX_LOGIN_ATTEMPTS", "SECURITY_MAX_LOGIN_ATTEMPTS"],
    },
    Planned {
        what: "login lockout duration",
        key: "lockout_duration",
        names: &["PALISADE_LOCKOUT_DURATION", "SECURITY_LOCKOUT_DURATION"],
    },
    Planned {
        what: "password minimum length",
        key: "password_min_length",
        names: &["PALISADE_PASSWORD_MIN_LENGTH", "SECURITY_PASSWORD_MIN_LENGTH"],
    },
    Planned {
        what: "MFA required for everyone",
        key: "mfa_required",
        names: &["PALISADE_MFA_REQUIRED", "SECURITY_MFA_REQUIRED"],
    },
    Planned { what: "GeoIP database", key: "geoip_db", names: &["PALISADE_GEOIP_DB", "GEOIP_DATABASE_PATH"] },
];

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
/// 1. a setting's `PALISADE_` name or alias, or `PALISADE_CONFIG`: read;
/// 2. a name of a contract setting not built yet (either spelling): refused when non-empty;
/// 3. other names without the `PALISADE_` prefix: not ours, ignored;
/// 4. `PALISADE_TEST_*` (test harness), the client-tool names in [`CLIENT_TOOL_VARS`], and the
///    service-link variables Kubernetes and Docker inject for a service or container named
///    `palisade…` (`*_SERVICE_HOST`, `*_SERVICE_PORT`, `*_SERVICE_PORT_*`, `*_PORT_<n>_<TCP|UDP|SCTP>[_ADDR|_PORT|_PROTO]`,
///    `*_PORT` whose value is `tcp://…`/`udp://…`/`sctp://…`, `*_ENV_*`, `*_NAME` whose value starts with `/`): ignored;
/// 5. any other `PALISADE_` name: refused, since it is most likely a typo of a setting.
pub(crate) fn classify(name: &str, value: &str) -> VarClass {
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

/// Kubernetes (`enableServiceLinks`, on by default) and Docker's legacy `--link` inject variables
/// named after every service/container in the namespace; one called `palisade` or `palisade-…`
/// yields `PALISADE_SERVICE_HOST`, `PALISADE_PORT=tcp://10.0.0.7:8080`,
/// `PALISADE_PORT_8080_TCP_ADDR`, … No setting may ever end in `_PORT`, `_SERVICE_HOST`,
/// `_SERVICE_PORT`, `_NAME` or contain `_ENV_`/`_PORT_`, so these never collide with ours.
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
    name.ends_with("_PORT") && ["tcp://", "udp://", "sctp://"].iter().any(|scheme| value.starts_with(scheme))
}
