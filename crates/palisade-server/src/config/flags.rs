//! [`SettingFlags`]: one command-line flag per setting, plus `--config FILE`, generated from the
//! settings table so that `palisade serve --help` lists every setting with its variables and default.
//!
//! clap only collects text here: it gets no defaults (they would hide the file and environment
//! layers) and no `env` (the environment is a layer of its own, below flags). Validation happens in
//! `Config::load_from`, so a bad flag gets the same message as a bad variable.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use secrecy::{ExposeSecret as _, SecretString};

use super::settings::{CONFIG_FILE_VAR, Group, Setting};

const CONFIG_ID: &str = "config";

/// A flag's value. Secret ones are held as [`SecretString`] so `Debug` shows `[REDACTED]`.
#[derive(Debug, Clone)]
enum FlagValue {
    Plain(String),
    Secret(SecretString),
}

/// The settings given on the command line: the top layer of the configuration.
///
/// Flatten it into a clap command (`#[command(flatten)] settings: SettingFlags`), or build it in
/// code with [`SettingFlags::with`] (tests: `SettingFlags::default().with(Setting::Bind, "127.0.0.1:0")`).
/// `Debug` never shows a secret.
#[derive(Debug, Clone, Default)]
pub struct SettingFlags {
    /// `--config FILE`: the configuration file; unlike the default `palisade.toml`, it must exist.
    pub config: Option<PathBuf>,
    values: BTreeMap<Setting, FlagValue>,
}

impl SettingFlags {
    /// Sets `setting` as if `--<flag> value` had been given. An empty value unsets an optional
    /// setting (and is an error for the others), as with the other layers.
    pub fn set(&mut self, setting: Setting, value: impl Into<String>) {
        let value = value.into();
        let value =
            if setting.is_secret() { FlagValue::Secret(SecretString::from(value)) } else { FlagValue::Plain(value) };
        self.values.insert(setting, value);
    }

    /// [`SettingFlags::set`], by value.
    #[must_use]
    pub fn with(mut self, setting: Setting, value: impl Into<String>) -> Self {
        self.set(setting, value);
        self
    }

    /// Whether `setting` was given.
    pub fn is_set(&self, setting: Setting) -> bool {
        self.values.contains_key(&setting)
    }

    /// The flag's text. Crate-private: the only reader is the layering in `sources`.
    pub(crate) fn get(&self, setting: Setting) -> Option<&str> {
        self.values.get(&setting).map(|v| match v {
            FlagValue::Plain(text) => text.as_str(),
            FlagValue::Secret(secret) => secret.expose_secret(),
        })
    }
}

/// `[env: PALISADE_X, ALIAS] [default: …]`, the tail of every flag's help.
fn env_and_default(setting: Setting) -> String {
    let spec = setting.spec();
    let vars = match spec.alias {
        Some(alias) => format!("{}, {alias}", spec.env),
        None => spec.env.to_owned(),
    };
    format!("[env: {vars}] [default: {}]", spec.default.describe())
}

fn arg_for(setting: Setting) -> Arg {
    let spec = setting.spec();
    let short = format!("{} {}", capitalised(spec.about), env_and_default(setting));
    let mut long = format!("{}.\nExpected: {}.\n{}", capitalised(spec.about), spec.expected, env_and_default(setting));
    if spec.secret {
        long.push_str(
            "\nSecret: never printed. Prefer the environment or a 0600 file: a command line is visible \
             to other local users (ps, /proc) and lands in shell history.",
        );
    }
    Arg::new(spec.key)
        .long(spec.flag)
        .value_name(spec.value_name)
        .action(ArgAction::Set)
        .value_parser(clap::value_parser!(String))
        .help(short)
        .long_help(long)
        .help_heading(spec.group.heading())
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn config_arg() -> Arg {
    Arg::new(CONFIG_ID)
        .long("config")
        .value_name("FILE")
        .action(ArgAction::Set)
        .value_parser(clap::value_parser!(PathBuf))
        .help(format!("Configuration file (toml) [env: {CONFIG_FILE_VAR}] [default: ./palisade.toml if it exists]"))
        .long_help(format!(
            "Configuration file (toml, flat keys named like the settings below). \
             A file named here must exist; the default ./palisade.toml may be absent.\n\
             [env: {CONFIG_FILE_VAR}] [default: ./palisade.toml if it exists]"
        ))
        .help_heading(Group::Server.heading())
}

impl Args for SettingFlags {
    fn augment_args(cmd: Command) -> Command {
        Setting::ALL.into_iter().fold(cmd.arg(config_arg()), |cmd, s| cmd.arg(arg_for(s)))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

fn matches_error(err: clap::parser::MatchesError) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("settings flags: {err}\n"))
}

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        // try_get_one, not get_one: get_one panics when the command lacks the argument.
        if let Some(path) = matches.try_get_one::<PathBuf>(CONFIG_ID).map_err(matches_error)? {
            self.config = Some(path.clone());
        }
        for setting in Setting::ALL {
            if let Some(value) = matches.try_get_one::<String>(setting.key()).map_err(matches_error)? {
                self.set(setting, value.clone());
            }
        }
        Ok(())
    }
}
