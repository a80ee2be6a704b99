//! The layers a configuration is read from, and which one wins for each setting.
//!
//! [`Sources`] holds the raw layers; [`Sources::from_process`] is the only function in `config`
//! that reads the process environment and the working directory. Everything after it is pure,
//! which is what lets the tests drive every layer without touching the process.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Kind, Origin, VarSource};
use super::flags::SettingFlags;
use super::settings::{CONFIG_FILE_VAR, PLANNED, Setting, VarClass, classify, is_port_link};

/// The default configuration file, relative to the working directory; absent is fine.
pub const DEFAULT_FILE: &str = "palisade.toml";
/// The dotenv file, relative to the working directory; absent is fine.
pub const DOTENV_FILE: &str = ".env";

/// Every layer of a configuration, lowest first. Build one by hand in tests; [`Sources::from_process`]
/// builds the real one. `Debug` shows variable names, never values.
#[derive(Default)]
pub struct Sources {
    /// The toml file to read, if any.
    pub file: Option<PathBuf>,
    /// Whether a missing `file` is an error (true for `--config`/`PALISADE_CONFIG`, false for the
    /// default `palisade.toml`).
    pub file_required: bool,
    /// The variables of the `.env` file.
    pub dotenv: HashMap<String, String>,
    /// The process environment (only its UTF-8 entries; see [`Sources::from_process`]).
    pub env: HashMap<String, String>,
    /// The command line.
    pub flags: SettingFlags,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut dotenv: Vec<&String> = self.dotenv.keys().collect();
        dotenv.sort();
        let mut env: Vec<&String> = self.env.keys().collect();
        env.sort();
        f.debug_struct("Sources")
            .field("file", &self.file)
            .field("file_required", &self.file_required)
            .field("dotenv_names", &dotenv)
            .field("env_names", &env)
            .field("flags", &self.flags)
            .finish()
    }
}

impl Sources {
    /// Reads the real layers: `./.env`, the process environment (never modified), and the file
    /// named by `--config`, else by `PALISADE_CONFIG` (environment, then `.env`), else
    /// `./palisade.toml` if it exists.
    pub fn from_process(flags: &SettingFlags) -> Result<Self, ConfigError> {
        let dotenv = read_dotenv(Path::new(DOTENV_FILE))?;
        let env = read_process_env()?;
        let named = flags.config.clone().or_else(|| {
            [&env, &dotenv]
                .into_iter()
                .find_map(|vars| vars.get(CONFIG_FILE_VAR).filter(|v| !v.trim().is_empty()))
                .map(|v| PathBuf::from(v.trim()))
        });
        let (file, file_required) = match named {
            Some(path) => (Some(path), true),
            None => (Some(PathBuf::from(DEFAULT_FILE)), false),
        };
        Ok(Self { file, file_required, dotenv, env, flags: flags.clone() })
    }
}

/// The process environment as UTF-8. `std::env::vars` would panic on a non-UTF-8 entry, so read
/// `vars_os`: entries that are not ours are skipped whatever they hold; one of ours that is not
/// UTF-8 is an error (without its value).
fn read_process_env() -> Result<HashMap<String, String>, ConfigError> {
    let mut vars = HashMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        match value.into_string() {
            Ok(value) => {
                vars.insert(name.to_owned(), value);
            }
            Err(_) => {
                if classify(name, "x") != VarClass::Ignored {
                    return Err(ConfigError::new(Kind::NotUnicode { name: name.to_owned() }));
                }
            }
        }
    }
    Ok(vars)
}

/// Reads a dotenv file into a map with dotenvy's iterator API (the process environment is never
/// written). A missing file is an empty map. A variable of ours given twice is refused.
pub(crate) fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(e) if e.not_found() => return Ok(HashMap::new()),
        Err(dotenvy::Error::Io(source)) => {
            return Err(ConfigError::new(Kind::DotEnvRead { path: path.to_owned(), source }));
        }
        Err(_) => return Err(ConfigError::new(Kind::DotEnvSyntax { path: path.to_owned(), near: None })),
    };
    let mut vars = HashMap::new();
    for item in iter {
        let (name, value) = match item {
            Ok(pair) => pair,
            Err(dotenvy::Error::Io(source)) => {
                return Err(ConfigError::new(Kind::DotEnvRead { path: path.to_owned(), source }));
            }
            // dotenvy's message quotes the whole line, which may hold a secret: name the variable only.
            Err(dotenvy::Error::LineParse(line, _)) => {
                return Err(ConfigError::new(Kind::DotEnvSyntax { path: path.to_owned(), near: line_name(&line) }));
            }
            Err(_) => return Err(ConfigError::new(Kind::DotEnvSyntax { path: path.to_owned(), near: None })),
        };
        let ours = classify(&name, &value) != VarClass::Ignored;
        if vars.insert(name.clone(), value).is_some() && ours {
            return Err(ConfigError::new(Kind::DuplicateDotEnv { path: path.to_owned(), name }));
        }
    }
    Ok(vars)
}

/// The variable name at the start of a dotenv line (`export NAME=…` or `NAME=…`), if it has one.
fn line_name(line: &str) -> Option<String> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.').collect();
    (!name.is_empty()).then_some(name)
}

/// Refuses the variables the rule in `settings::classify` refuses.
fn check_vars(vars: &HashMap<String, String>, source: VarSource) -> Result<(), ConfigError> {
    // Sorted, so the error names the same variable every time.
    let mut names: Vec<(&String, &String)> = vars.iter().collect();
    names.sort();
    for (name, value) in names {
        if let VarClass::Refused(refusal) = classify(name, value) {
            return Err(ConfigError::new(Kind::RefusedVariable { name: name.clone(), source, refusal }));
        }
    }
    Ok(())
}

/// The file, read and checked: each setting's value as text.
struct FileLayer {
    path: PathBuf,
    values: BTreeMap<Setting, String>,
}

fn read_file(path: &Path, required: bool) -> Result<Option<FileLayer>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(source) => return Err(ConfigError::new(Kind::FileRead { path: path.to_owned(), source })),
    };
    parse_file(path, &text).map(Some)
}

/// Parses the toml text. We check keys against the settings table rather than with
/// `#[serde(deny_unknown_fields)]` on a mirror struct: the effect is the same (an unknown key stops
/// start-up), and the table stays the single list of settings.
fn parse_file(path: &Path, text: &str) -> Result<FileLayer, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        // `Display` of a toml error prints the offending line, which may hold a secret.
        let at = e.span().map_or(0, |span| span.start);
        let before = text.get(..at).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError::new(Kind::FileSyntax {
            path: path.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        })
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let Some(setting) = Setting::from_key(&key) else {
            let planned = PLANNED.iter().find(|p| p.key == key);
            return Err(ConfigError::new(Kind::UnknownFileKey { path: path.to_owned(), key, planned }));
        };
        let type_error = |found| ConfigError::new(Kind::FileType { path: path.to_owned(), setting, found });
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Array(items) if setting.spec().list => {
                let mut entries = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => entries.push(s),
                        _ => return Err(type_error("array of non-strings")),
                    }
                }
                entries.join(",")
            }
            toml::Value::Array(_) => return Err(type_error("array")),
            toml::Value::Boolean(b) if setting.spec().boolean => b.to_string(),
            toml::Value::Boolean(_) => return Err(type_error("boolean")),
            toml::Value::Float(_) => return Err(type_error("float")),
            toml::Value::Datetime(_) => return Err(type_error("date-time")),
            toml::Value::Table(_) => return Err(type_error("table (sections are not used: keys go at the top level)")),
        };
        values.insert(setting, text);
    }
    Ok(FileLayer { path: path.to_owned(), values })
}

/// The layers after checking, ready to answer "which value wins for this setting?".
pub(crate) struct Layers {
    file: Option<FileLayer>,
    dotenv: HashMap<String, String>,
    env: HashMap<String, String>,
    flags: SettingFlags,
}

impl Layers {
    /// Reads the file and refuses unknown keys and variables, in every layer, before any value is
    /// looked at.
    pub(crate) fn check(sources: Sources) -> Result<Self, ConfigError> {
        let Sources { file, file_required, dotenv, env, flags } = sources;
        let file = match &file {
            Some(path) => read_file(path, file_required)?,
            None => None,
        };
        check_vars(&dotenv, VarSource::DotEnv)?;
        check_vars(&env, VarSource::Env)?;
        Ok(Self { file, dotenv, env, flags })
    }

    /// The winning value of `setting`, trimmed, and where it came from: flag, then environment,
    /// then `.env`, then file. Within one variable layer the `PALISADE_` name beats the alias.
    /// `None` when no layer sets it (the caller applies the default).
    pub(crate) fn resolve(&self, setting: Setting) -> Option<(&str, Origin)> {
        if let Some(text) = self.flags.get(setting) {
            return Some((text.trim(), Origin::Flag));
        }
        if let Some((text, name)) = from_vars(&self.env, setting) {
            return Some((text.trim(), Origin::Env(name.to_owned())));
        }
        if let Some((text, name)) = from_vars(&self.dotenv, setting) {
            return Some((text.trim(), Origin::DotEnv(name.to_owned())));
        }
        let file = self.file.as_ref()?;
        file.values.get(&setting).map(|text| (text.trim(), Origin::File(file.path.clone())))
    }
}

/// The setting's value in one variable layer: the `PALISADE_` name, else the alias. A service-link
/// value under a port setting's name (`SMTP_PORT=tcp://…`, see `settings::is_port_link`) is not
/// the setting's and counts as absent.
fn from_vars(vars: &HashMap<String, String>, setting: Setting) -> Option<(&str, &'static str)> {
    [Some(setting.env()), setting.alias()]
        .into_iter()
        .flatten()
        .find_map(|name| vars.get(name).filter(|value| !is_port_link(name, value)).map(|value| (value.as_str(), name)))
}
