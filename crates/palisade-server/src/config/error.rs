//! [`ConfigError`]: why start-up stopped, said so an operator can fix it.
//!
//! Every message names the setting (its toml key, flag and variables), where the bad value came
//! from, the problem and the expected form. It must never carry a secret's value: secret settings
//! are shown as `***`, syntax errors in files are reported by line and column only (the parsers'
//! own messages quote the offending line, which may hold a key), and unknown variables are named
//! without their value.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use super::settings::{Planned, Refusal, Setting};

/// Where a value came from, by the name it had there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Default,
    File(PathBuf),
    DotEnv(String),
    Env(String),
    Flag,
}

impl Origin {
    /// Where the value came from, for messages: "environment variable JWT_ALGORITHM".
    pub(crate) fn describe(&self, setting: Setting) -> String {
        match self {
            Origin::Default => "the built-in default".to_owned(),
            Origin::File(path) => format!("`{}` in {}", setting.key(), path.display()),
            Origin::DotEnv(name) => format!("{name} in the .env file"),
            Origin::Env(name) => format!("environment variable {name}"),
            Origin::Flag => format!("flag --{}", setting.flag()),
        }
    }

    /// Whether the value was read under the setting's alias (which may be in another unit).
    pub(crate) fn is_alias(&self, setting: Setting) -> bool {
        match self {
            Origin::Env(name) | Origin::DotEnv(name) => setting.alias() == Some(name.as_str()),
            Origin::Default | Origin::File(_) | Origin::Flag => false,
        }
    }
}

/// Which variable layer an unknown name was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarSource {
    DotEnv,
    Env,
}

impl fmt::Display for VarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VarSource::DotEnv => "in the .env file",
            VarSource::Env => "in the environment",
        })
    }
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// A value that does not parse or is out of range.
    Invalid {
        setting: Setting,
        origin: Origin,
        /// The value, for non-secret settings only (`None` shows `***`).
        shown: Option<String>,
        problem: String,
        /// The expected form, in the unit of the name the value came under.
        expected: Cow<'static, str>,
    },
    /// A setting that another setting's value makes necessary, and that nothing sets.
    Missing {
        setting: Setting,
        /// Why it is needed, naming the other setting and where its value came from.
        because: String,
    },
    /// A top-level key of the file that is not a setting.
    UnknownFileKey { path: PathBuf, key: String, planned: Option<&'static Planned> },
    /// A setting given in the file with a toml type that cannot hold it (a table, a bool…).
    FileType { path: PathBuf, setting: Setting, found: &'static str },
    /// A variable the rule in `settings::classify` refuses.
    RefusedVariable { name: String, source: VarSource, refusal: Refusal },
    /// A variable of ours whose value is not UTF-8.
    NotUnicode { name: String },
    /// The same variable twice in `.env`.
    DuplicateDotEnv { path: PathBuf, name: String },
    /// The configuration file could not be read (an explicitly named file that is missing, too).
    FileRead { path: PathBuf, source: std::io::Error },
    /// The configuration file is not valid toml.
    FileSyntax { path: PathBuf, line: usize, column: usize, message: String },
    /// `.env` could not be read.
    DotEnvRead { path: PathBuf, source: std::io::Error },
    /// `.env` has a line dotenvy cannot parse. `near` is the variable name on it, if one could be told.
    DotEnvSyntax { path: PathBuf, near: Option<String> },
}

/// Why the configuration could not be loaded. Its `Display` is the whole message for the operator
/// and never contains a secret's value; `Debug` carries no more than `Display`.
#[derive(Debug)]
pub struct ConfigError {
    kind: Kind,
}

impl ConfigError {
    pub(crate) fn new(kind: Kind) -> Self {
        Self { kind }
    }

    pub(crate) fn invalid(setting: Setting, origin: Origin, value: &str, problem: impl Into<String>) -> Self {
        let shown = (!setting.is_secret()).then(|| truncate(value));
        let expected = setting.expected(origin.is_alias(setting));
        Self::new(Kind::Invalid { setting, origin, shown, problem: problem.into(), expected })
    }

    pub(crate) fn missing(setting: Setting, because: impl Into<String>) -> Self {
        Self::new(Kind::Missing { setting, because: because.into() })
    }

    /// The setting the error is about, when it is about one.
    pub fn setting(&self) -> Option<Setting> {
        match &self.kind {
            Kind::Invalid { setting, .. } | Kind::Missing { setting, .. } | Kind::FileType { setting, .. } => {
                Some(*setting)
            }
            _ => None,
        }
    }
}

/// Non-secret values are quoted, but not at any length.
fn truncate(value: &str) -> String {
    const MAX: usize = 200;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

fn valid_keys() -> String {
    Setting::ALL.iter().map(|s| s.key()).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Invalid { setting, origin, shown, problem, expected } => {
                // `{:?}` quotes and escapes control characters, so a value cannot forge terminal output.
                let value = match shown {
                    Some(value) => format!("{value:?}"),
                    None => "*** (secret, not shown)".to_owned(),
                };
                write!(
                    f,
                    "invalid {key} from {from}: {value} {problem}; expected {expected} ({names})",
                    key = setting.key(),
                    from = origin.describe(*setting),
                    names = setting.names(),
                )
            }
            Kind::Missing { setting, because } => write!(
                f,
                "missing {key}: {because}; expected {expected} ({names})",
                key = setting.key(),
                expected = setting.spec().expected,
                names = setting.names(),
            ),
            Kind::UnknownFileKey { path, key, planned } => {
                write!(f, "unknown setting `{key}` in {}", path.display())?;
                if let Some(planned) = planned {
                    write!(f, ": the {} is not supported by this build of Palisade yet; remove the key", planned.what)?;
                } else {
                    write!(f, " (a typo?)")?;
                }
                write!(f, "; valid keys: {}", valid_keys())
            }
            Kind::FileType { path, setting, found } => write!(
                f,
                "invalid {key} in {path}: a toml {found} cannot hold it; write it as a string{array}; \
                 expected {expected} ({names})",
                key = setting.key(),
                path = path.display(),
                array = if setting.spec().list { " or an array of strings" } else { "" },
                expected = setting.spec().expected,
                names = setting.names(),
            ),
            Kind::RefusedVariable { name, source, refusal } => match refusal {
                Refusal::Unknown => write!(
                    f,
                    "unknown variable {name} {source}: no Palisade setting has this name (a typo?). \
                     PALISADE_ variables are: {vars}, PALISADE_CONFIG; \
                     PALISADE_TEST_* and the names listed in docs/configuration.md are ignored",
                    vars = Setting::ALL.iter().map(|s| s.env()).collect::<Vec<_>>().join(", "),
                ),
                Refusal::Planned(planned) => write!(
                    f,
                    "variable {name} {source} sets the {what}, which this build of Palisade does not \
                     support yet; it cannot be honoured, so unset it",
                    what = planned.what,
                ),
                Refusal::Port => write!(
                    f,
                    "unknown variable {name} {source}: Palisade's only port setting is PALISADE_SMTP_PORT, \
                     the mail server's; give the listen port in PALISADE_BIND (IP:PORT) and the stores' \
                     inside their URLs. (Kubernetes and Docker service-link variables, whose value is \
                     tcp://…, are ignored.)"
                ),
            },
            Kind::NotUnicode { name } => {
                write!(f, "variable {name} in the environment is not valid UTF-8 (value not shown)")
            }
            Kind::DuplicateDotEnv { path, name } => write!(
                f,
                "{name} is set twice in {}; keep one line so there is no doubt which value applies",
                path.display()
            ),
            Kind::FileRead { path, source } => {
                write!(f, "cannot read the configuration file {}: {source}", path.display())
            }
            Kind::FileSyntax { path, line, column, message } => write!(
                f,
                "{} is not valid toml at line {line}, column {column}: {message} (the line is not shown: it may hold a secret)",
                path.display()
            ),
            Kind::DotEnvRead { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Kind::DotEnvSyntax { path, near } => match near {
                Some(name) => write!(
                    f,
                    "{} has a line that cannot be parsed, the one setting {name} (the line is not shown: \
                     it may hold a secret); expected NAME=value, with quotes closed",
                    path.display()
                ),
                None => write!(
                    f,
                    "{} has a line that cannot be parsed (not shown: it may hold a secret); expected \
                     NAME=value, with quotes closed",
                    path.display()
                ),
            },
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::FileRead { source, .. } | Kind::DotEnvRead { source, .. } => Some(source),
            _ => None,
        }
    }
}
