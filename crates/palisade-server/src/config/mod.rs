//! Palisade's configuration: typed, layered, validated once, passed in.
//!
//! # Layout
//! - `settings`: the one table of settings (toml key, flag, variable, alias, default, expected
//!   form, secrecy) and the rule for which environment names are ours.
//! - `flags`: [`SettingFlags`], the clap flags generated from that table.
//! - `sources`: [`Sources`], the layers (file, `.env`, environment, flags) and which one wins.
//! - `values`: a parser per setting, and the masking of secrets for display.
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
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

pub use error::ConfigError;
pub use flags::SettingFlags;
pub use settings::Setting;
pub use sources::{DEFAULT_FILE, DOTENV_FILE, Sources};

use error::Origin;
use settings::DefaultValue;
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
        let database_url = match layers.resolve(Setting::DatabaseUrl) {
            Some(found) => parse_found(Setting::DatabaseUrl, found, values::database_url)?,
            None => default_database_url(&data_dir)?,
        };
        Ok(Config {
            bind: required(layers, Setting::Bind, values::bind)?,
            issuer: required(layers, Setting::Issuer, values::issuer)?,
            database_url,
            database_max_connections: required(layers, Setting::DatabaseMaxConnections, values::max_connections)?,
            redis_url: optional(layers, Setting::RedisUrl, values::redis_url)?,
            master_key: optional(layers, Setting::MasterKey, values::master_key)?,
            data_dir,
            trusted_proxies: optional(layers, Setting::TrustedProxies, values::trusted_proxies)?.unwrap_or_default(),
            log_format: required(layers, Setting::LogFormat, values::log_format)?,
            log_level: required(layers, Setting::LogLevel, values::log_level)?,
            request_timeout: required(layers, Setting::RequestTimeout, values::request_timeout)?,
        })
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
                None => format!("(unset: the development key file in {})", self.data_dir.display()),
            },
            Setting::DataDir => self.data_dir.display().to_string(),
            Setting::TrustedProxies => {
                if self.trusted_proxies.is_empty() {
                    "(none)".to_owned()
                } else {
                    self.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                }
            }
            Setting::LogFormat => self.log_format.to_string(),
            Setting::LogLevel => self.log_level.clone(),
            Setting::RequestTimeout => self.request_timeout.as_secs().to_string(),
        }
    }

    /// Valid but risky choices, one sentence each, for the caller to log at start-up (logging is
    /// not set up yet while the configuration loads). Never contains a secret.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.master_key.is_none() {
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
        warnings
    }
}

/// Parses the winning value of a setting that always has one (its default otherwise).
fn required<T>(layers: &Layers, setting: Setting, parse: fn(&str) -> Result<T, String>) -> Result<T, ConfigError> {
    match layers.resolve(setting) {
        Some(found) => parse_found(setting, found, parse),
        None => match setting.spec().default {
            DefaultValue::Text(text) => parse_text(setting, text, Origin::Default, parse),
            // Only settings with a text default are read with `required`; reaching here is a
            // mistake in the table, reported as one rather than with a panic.
            DefaultValue::DatabaseInDataDir | DefaultValue::Unset(_) => {
                Err(ConfigError::invalid(setting, Origin::Default, "", "has no default (a bug in the settings table)"))
            }
        },
    }
}

/// Parses the winning value of a setting that may be unset; an empty value unsets it.
fn optional<T>(
    layers: &Layers,
    setting: Setting,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    match layers.resolve(setting) {
        Some(("", _)) | None => Ok(None),
        Some((text, origin)) => parse_text(setting, text, origin, parse).map(Some),
    }
}

fn parse_found<T>(
    setting: Setting,
    (text, origin): (&str, Origin),
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    if text.is_empty() {
        return Err(ConfigError::invalid(setting, origin, text, "is empty (this setting cannot be unset)"));
    }
    parse_text(setting, text, origin, parse)
}

fn parse_text<T>(
    setting: Setting,
    text: &str,
    origin: Origin,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    parse(text).map_err(|problem| ConfigError::invalid(setting, origin, text, problem))
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
