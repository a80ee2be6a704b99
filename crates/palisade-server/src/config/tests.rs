//! Unit tests of the configuration: layering, aliases, the unknown-name rules, every parser, and
//! that no secret escapes through errors, `Debug` or `describe()`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use clap::{Args as _, FromArgMatches as _};
use palisade_core::crypto::reencrypt::ReencryptionSettings;
use palisade_core::crypto::{Algorithm, DataClassification, EncryptionPolicies};
use palisade_core::device::service::SessionBinding;
use palisade_core::monitoring::MonitoringSettings;
use palisade_core::monitoring::detect::Thresholds;
use palisade_core::risk::{RiskSettings, RiskThresholds, RiskWeights};
use secrecy::ExposeSecret as _;

use super::*;

// ---------------------------------------------------------------- helpers

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn env_only(pairs: &[(&str, &str)]) -> Sources {
    Sources { env: vars(pairs), ..Sources::default() }
}

fn ok(sources: Sources) -> Config {
    match Config::load_from(sources) {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected a configuration, got: {e}"),
    }
}

fn err(sources: Sources) -> String {
    match Config::load_from(sources) {
        Ok(cfg) => panic!("expected an error, got {:?}", cfg.describe()),
        Err(e) => e.to_string(),
    }
}

/// A toml file in a fresh directory (kept alive by the returned guard).
fn toml_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palisade.toml");
    std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
    (dir, path)
}

fn with_file(path: &std::path::Path) -> Sources {
    Sources { file: Some(path.to_owned()), file_required: true, ..Sources::default() }
}

fn key_of(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

/// A secret that must never appear in any message; distinctive so a leak cannot hide.
const SECRET_PW: &str = "Hunter2-Zq9XsecretPW";

// ---------------------------------------------------------------- defaults and layering

#[test]
fn defaults_match_the_contract() {
    let cfg = ok(Sources::default());
    assert_eq!(cfg.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(cfg.issuer.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(cfg.database_url.expose_secret(), "sqlite://./palisade-data/palisade.db");
    assert_eq!(cfg.database_max_connections, 10);
    assert!(cfg.redis_url.is_none());
    assert!(cfg.master_key.is_none());
    assert_eq!(cfg.data_dir, PathBuf::from("./palisade-data"));
    assert!(cfg.trusted_proxies.is_empty());
    assert_eq!(cfg.log_format, LogFormat::Text);
    assert_eq!(cfg.log_level, "info");
    assert_eq!(cfg.request_timeout, std::time::Duration::from_secs(30));

    assert_eq!(cfg.jwt_algorithm, JwtAlgorithm::EdDSA);
    assert!(cfg.jwt_secret.is_none());
    assert_eq!(cfg.audience, "palisade");
    assert_eq!(cfg.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(cfg.refresh_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(cfg.refresh_grace, Duration::ZERO);
    assert_eq!(cfg.session_lifetime, Duration::from_secs(3600));
    assert_eq!(cfg.session_idle_timeout, Duration::from_secs(1800));
    assert_eq!(cfg.session_cache, Duration::from_millis(1000));
    assert_eq!(cfg.max_login_attempts, 5);
    assert_eq!(cfg.lockout_duration, Duration::from_secs(900));
    assert_eq!(cfg.ip_max_login_failures, 50);
    assert_eq!(cfg.password_min_length, 12);
    assert!(cfg.password_require.is_empty());
    assert_eq!(cfg.password_min_score, 3);
    assert_eq!(cfg.password_history, 5);
    assert_eq!(cfg.password_max_age, None);
    assert_eq!(cfg.argon2_memory_kib, 19_456);
    assert_eq!(cfg.argon2_iterations, 2);
    assert_eq!(cfg.argon2_parallelism, 1);
    assert_eq!(cfg.hash_concurrency, None);

    assert_eq!(cfg.mfa_issuer, "Palisade");
    assert!(!cfg.mfa_required);
    assert!(cfg.mfa_required_roles.is_empty());
    assert_eq!(cfg.mfa_factors, 1);
    assert_eq!(cfg.mfa_code_ttl, Duration::from_secs(300));
    assert_eq!(cfg.mfa_resend_interval, Duration::from_secs(30));
    assert_eq!(cfg.smtp_server, None);
    assert_eq!(cfg.smtp_port, 587);
    assert!(cfg.smtp_username.is_none() && cfg.smtp_password.is_none() && cfg.smtp_from.is_none());
    assert_eq!(cfg.smtp_tls, SmtpTls::StartTls);
    assert_eq!(cfg.sms_provider, None);
    assert!(cfg.twilio_account_sid.is_none() && cfg.twilio_auth_token.is_none() && cfg.twilio_from.is_none());
    assert_eq!(cfg.twilio_base_url.as_str(), "https://api.twilio.com/");
    assert!(cfg.notify_webhook_url.is_none());

    assert_eq!(cfg.max_sessions_per_user, 0);
    assert!(cfg.concurrent_sessions);
    assert_eq!(cfg.session_binding, SessionBinding::Device);
    assert_eq!((&cfg.geoip_db, &cfg.geoip_asn_db, &cfg.geoip_anonymous_db), (&None, &None, &None));
    assert!(cfg.risk_enabled);
    assert_eq!(cfg.risk_thresholds, RiskThresholds { mfa: 0.2, enhanced: 0.5, block: 0.8 });
    assert_eq!(cfg.risk_weights, RiskWeights::default());
    assert_eq!(cfg.risk_max_travel_kmh, 900);
    assert!(cfg.risk_deny_cidrs.is_empty() && cfg.risk_allow_cidrs.is_empty());
    assert!(!cfg.device_approval);
    assert_eq!(cfg.device_approval_ttl, Duration::from_secs(15 * 60));
    assert_eq!(cfg.remember_device_ttl, Duration::from_secs(30 * 86_400));

    assert_eq!(cfg.encryption_algorithm, Algorithm::Aes256Gcm);
    assert_eq!(cfg.encryption_key_rotation_days, 90);
    assert!(cfg.encryption_compression);
    assert_eq!(cfg.encryption_max_plaintext, 512 * 1024);
    assert!(cfg.encryption_policies.is_empty());
    assert_eq!(cfg.reencryption, ReencryptionSettings { batch_size: 500, rows_per_second: None });
}

#[test]
fn each_layer_beats_the_one_below() {
    let (_dir, path) = toml_file("bind = \"127.0.0.1:1001\"\nlog_level = \"warn\"\n");
    let dotenv = vars(&[("PALISADE_BIND", "127.0.0.1:1002"), ("PALISADE_LOG", "error")]);
    let env = vars(&[("PALISADE_BIND", "127.0.0.1:1003")]);
    let flags = SettingFlags::default().with(Setting::Bind, "127.0.0.1:1004");
    let layered = |file: bool, dotenv: bool, env: bool, flag: bool| Sources {
        file: file.then(|| path.clone()),
        file_required: true,
        dotenv: if dotenv { vars(&[("PALISADE_BIND", "127.0.0.1:1002")]) } else { HashMap::new() },
        env: if env { vars(&[("PALISADE_BIND", "127.0.0.1:1003")]) } else { HashMap::new() },
        flags: if flag { flags.clone() } else { SettingFlags::default() },
    };
    assert_eq!(ok(layered(false, false, false, false)).bind.port(), 8080, "default");
    assert_eq!(ok(layered(true, false, false, false)).bind.port(), 1001, "file > default");
    assert_eq!(ok(layered(true, true, false, false)).bind.port(), 1002, ".env > file");
    assert_eq!(ok(layered(true, true, true, false)).bind.port(), 1003, "env > .env");
    assert_eq!(ok(layered(true, true, true, true)).bind.port(), 1004, "flag > env");
    assert_eq!(ok(layered(true, false, false, true)).bind.port(), 1004, "flag > file");
    assert_eq!(ok(layered(false, false, true, false)).bind.port(), 1003, "env > default");

    // Layers are per setting: a higher layer that is silent on a setting does not hide a lower one.
    let cfg = ok(Sources { file: Some(path.clone()), file_required: true, dotenv, env, flags });
    assert_eq!(cfg.bind.port(), 1004);
    assert_eq!(cfg.log_level, "error", "from .env, over the file's warn");
}

#[test]
fn flags_parsed_by_clap_are_the_top_layer() {
    let cmd = SettingFlags::augment_args(clap::Command::new("serve"));
    let matches = cmd
        .try_get_matches_from([
            "serve",
            "--bind",
            "127.0.0.1:9000",
            "--trusted-proxies",
            "10.0.0.1",
            "--log-format",
            "json",
            "--config",
            "/etc/palisade/palisade.toml",
        ])
        .unwrap();
    let flags = SettingFlags::from_arg_matches(&matches).unwrap();
    assert_eq!(flags.config, Some(PathBuf::from("/etc/palisade/palisade.toml")));
    assert!(flags.is_set(Setting::Bind) && !flags.is_set(Setting::Issuer));
    let cfg = ok(Sources { env: vars(&[("PALISADE_BIND", "127.0.0.1:1")]), flags, ..Sources::default() });
    assert_eq!(cfg.bind.port(), 9000);
    assert_eq!(cfg.log_format, LogFormat::Json);
    assert_eq!(cfg.trusted_proxies.len(), 1);
}

#[test]
fn an_empty_value_unsets_an_optional_setting_and_is_refused_for_the_others() {
    let env = vars(&[("PALISADE_REDIS_URL", "redis://cache:6379/0")]);
    let flags = SettingFlags::default().with(Setting::RedisUrl, "");
    assert!(ok(Sources { env, flags, ..Sources::default() }).redis_url.is_none());

    let message = err(env_only(&[("PALISADE_BIND", "  ")]));
    assert!(message.contains("is empty"), "{message}");
}

#[test]
fn the_default_database_follows_the_data_dir() {
    let cfg = ok(env_only(&[("PALISADE_DATA_DIR", "/var/lib/palisade/")]));
    assert_eq!(cfg.database_url.expose_secret(), "sqlite:///var/lib/palisade/palisade.db");
    let cfg = ok(env_only(&[("PALISADE_DATA_DIR", "/x"), ("PALISADE_DATABASE_URL", "sqlite::memory:")]));
    assert_eq!(cfg.database_url.expose_secret(), "sqlite::memory:");
}

// ---------------------------------------------------------------- aliases

#[test]
fn aliases_are_accepted_and_the_palisade_name_wins_over_them() {
    let cfg = ok(env_only(&[("REDIS_URL", "redis://guide:6379/0"), ("ENCRYPTION_KEY", &key_of(1))]));
    assert_eq!(cfg.redis_url.as_ref().unwrap().expose_secret(), "redis://guide:6379/0");
    assert_eq!(cfg.master_key.as_ref().unwrap().expose_secret(), key_of(1));

    let cfg = ok(env_only(&[
        ("REDIS_URL", "redis://guide:6379/0"),
        ("PALISADE_REDIS_URL", "rediss://ours:6380/1"),
        ("ENCRYPTION_KEY", &key_of(1)),
        ("PALISADE_MASTER_KEY", &key_of(2)),
    ]));
    assert_eq!(cfg.redis_url.as_ref().unwrap().expose_secret(), "rediss://ours:6380/1");
    assert_eq!(cfg.master_key.as_ref().unwrap().expose_secret(), key_of(2));

    // The PALISADE_ name wins inside one layer, even when the alias holds garbage.
    let cfg = ok(env_only(&[("ENCRYPTION_KEY", "not a key"), ("PALISADE_MASTER_KEY", &key_of(3))]));
    assert_eq!(cfg.master_key.as_ref().unwrap().expose_secret(), key_of(3));
}

#[test]
fn layers_come_before_names_an_alias_in_the_environment_beats_the_palisade_name_in_dotenv() {
    let cfg = ok(Sources {
        dotenv: vars(&[("PALISADE_REDIS_URL", "redis://from-dotenv")]),
        env: vars(&[("REDIS_URL", "redis://from-env")]),
        ..Sources::default()
    });
    assert_eq!(cfg.redis_url.as_ref().unwrap().expose_secret(), "redis://from-env");
}

#[test]
fn an_error_from_an_alias_names_the_alias_it_came_from() {
    let message = err(env_only(&[("REDIS_URL", "http://cache")]));
    assert!(message.contains("environment variable REDIS_URL"), "{message}");
    assert!(message.contains("PALISADE_REDIS_URL"), "{message}");
}

// ---------------------------------------------------------------- the file

#[test]
fn an_unknown_file_key_is_refused_by_name_with_the_valid_keys() {
    let (_dir, path) = toml_file("bind = \"127.0.0.1:8080\"\ntrusted_proxy = \"10.0.0.1\"\n");
    let message = err(with_file(&path));
    assert!(message.contains("`trusted_proxy`"), "{message}");
    for setting in Setting::ALL {
        assert!(message.contains(setting.key()), "{message} lacks {}", setting.key());
    }
}

#[test]
fn the_hsm_settings_are_read_from_the_file_too() {
    let (_dir, path) = toml_file(
        "hsm_module = \"/usr/lib/softhsm/libsofthsm2.so\"\nhsm_slot = \"1\"\nhsm_pin = \"1234\"\nhsm_enabled = true\n",
    );
    let cfg = ok(with_file(&path));
    assert_eq!(cfg.hsm_module, Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")));
    assert_eq!(cfg.hsm_slot, Some(crate::hsm::HsmSlot::Number(1)));
    assert_eq!(cfg.hsm_pin.as_ref().map(|p| p.expose_secret().to_owned()), Some("1234".to_owned()));
}

#[test]
fn sections_and_wrong_types_in_the_file_are_refused() {
    let (_dir, path) = toml_file("[server]\nbind = \"127.0.0.1:8080\"\n");
    assert!(err(with_file(&path)).contains("unknown setting `server`"));
    let (_dir, path) = toml_file("log_format = true\n");
    let message = err(with_file(&path));
    assert!(message.contains("log_format") && message.contains("boolean"), "{message}");
}

#[test]
fn the_file_takes_integers_and_a_proxy_array() {
    let (_dir, path) = toml_file(
        "database_max_connections = 25\nrequest_timeout = 5\ntrusted_proxies = [\"10.0.0.1\", \"fd00::/8\"]\n",
    );
    let cfg = ok(with_file(&path));
    assert_eq!(cfg.database_max_connections, 25);
    assert_eq!(cfg.request_timeout.as_secs(), 5);
    assert_eq!(cfg.trusted_proxies.len(), 2);
}

#[test]
fn a_missing_named_file_is_an_error_and_a_missing_default_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let message = err(with_file(&missing));
    assert!(message.contains("nope.toml"), "{message}");
    let cfg = ok(Sources { file: Some(missing), file_required: false, ..Sources::default() });
    assert_eq!(cfg.bind.port(), 8080);
}

#[test]
fn a_toml_syntax_error_gives_the_line_but_never_the_text() {
    let (_dir, path) = toml_file(&format!("bind = \"127.0.0.1:8080\"\nmaster_key = \"{SECRET_PW}\n"));
    let message = err(with_file(&path));
    assert!(message.contains("line 2"), "{message}");
    assert!(!message.contains(SECRET_PW), "{message}");
}

#[test]
fn a_bad_value_in_the_file_names_the_key_and_the_file() {
    let (_dir, path) = toml_file("bind = \"localhost:80\"\n");
    let message = err(with_file(&path));
    assert!(message.contains("`bind` in ") && message.contains("palisade.toml"), "{message}");
    assert!(message.contains("\"localhost:80\""), "non-secret values are quoted: {message}");
}

// ---------------------------------------------------------------- .env

#[test]
fn dotenv_is_read_into_a_map_without_touching_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "# comment\nexport PALISADE_BIND=127.0.0.1:7000\nPALISADE_LOG='debug'\nPALISADE_TEST_DOTENV_PROBE_7F3A=1\n",
    )
    .unwrap();
    let map = sources::read_dotenv(&path).unwrap();
    assert_eq!(map.get("PALISADE_BIND").map(String::as_str), Some("127.0.0.1:7000"));
    assert_eq!(map.get("PALISADE_LOG").map(String::as_str), Some("debug"));
    assert!(std::env::var_os("PALISADE_TEST_DOTENV_PROBE_7F3A").is_none(), "the process environment was written");
    assert!(sources::read_dotenv(&dir.path().join("absent")).unwrap().is_empty());
}

#[test]
fn a_dotenv_syntax_error_names_the_variable_but_not_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, format!("PALISADE_MASTER_KEY=\"{SECRET_PW}\n")).unwrap();
    let message = sources::read_dotenv(&path).unwrap_err().to_string();
    assert!(message.contains("PALISADE_MASTER_KEY"), "{message}");
    assert!(!message.contains(SECRET_PW), "{message}");
}

#[test]
fn a_variable_of_ours_twice_in_dotenv_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, "PALISADE_BIND=127.0.0.1:1\nUNRELATED=a\nUNRELATED=b\nPALISADE_BIND=127.0.0.1:2\n").unwrap();
    let message = sources::read_dotenv(&path).unwrap_err().to_string();
    assert!(message.contains("PALISADE_BIND is set twice"), "{message}");
}

// ---------------------------------------------------------------- unknown and reserved variables

#[test]
fn an_unknown_palisade_variable_is_refused_by_name_in_env_and_dotenv() {
    let message = err(env_only(&[("PALISADE_TRUSTED_PROXY", "10.0.0.1")]));
    assert!(message.contains("PALISADE_TRUSTED_PROXY") && message.contains("environment"), "{message}");
    let message = err(Sources { dotenv: vars(&[("PALISADE_MASTERKEY", SECRET_PW)]), ..Sources::default() });
    assert!(message.contains("PALISADE_MASTERKEY") && message.contains(".env"), "{message}");
    assert!(!message.contains(SECRET_PW), "{message}");
}

#[test]
fn legitimate_foreign_palisade_variables_are_ignored() {
    ok(env_only(&[
        // the test harness
        ("PALISADE_TEST_DATABASE", "postgres://x"),
        // the peer benchmark kit, which starts the server with these exported
        ("PALISADE_BASE", "http://127.0.0.1:8080"),
        ("PALISADE_START", "./start.sh"),
        ("PALISADE_READY_PATH", "/health"),
        ("PALISADE_API_KEY", "pk_abc"),
        ("PALISADE_API_KEY_HEADER", "X-API-Key"),
        // Kubernetes service links for services `palisade` and `palisade-redis`
        ("PALISADE_SERVICE_HOST", "10.0.0.7"),
        ("PALISADE_SERVICE_PORT", "8080"),
        ("PALISADE_SERVICE_PORT_HTTP", "8080"),
        ("PALISADE_PORT", "tcp://10.0.0.7:8080"),
        ("PALISADE_PORT_8080_TCP", "tcp://10.0.0.7:8080"),
        ("PALISADE_PORT_8080_TCP_ADDR", "10.0.0.7"),
        ("PALISADE_PORT_8080_TCP_PORT", "8080"),
        ("PALISADE_PORT_8080_TCP_PROTO", "tcp"),
        ("PALISADE_REDIS_SERVICE_HOST", "10.0.0.8"),
        ("PALISADE_REDIS_PORT", "tcp://10.0.0.8:6379"),
        ("PALISADE_REDIS_PORT_6379_TCP_ADDR", "10.0.0.8"),
        // Docker legacy links
        ("PALISADE_NAME", "/web/palisade"),
        ("PALISADE_ENV_FOO", "bar"),
        // the config file pointer and unrelated names
        ("PALISADE_CONFIG", "/etc/palisade.toml"),
        ("HOME", "/root"),
        ("REDIS_PASSWORD", "x"),
    ]));
}

#[test]
fn a_port_variable_that_is_not_a_service_link_is_refused_with_a_hint() {
    let message = err(env_only(&[("PALISADE_PORT", "9000")]));
    assert!(message.contains("PALISADE_PORT") && message.contains("PALISADE_BIND"), "{message}");
}

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

#[test]
fn the_hsm_settings_are_accepted_under_the_guides_names_and_the_pin_is_masked() {
    let cfg = ok(env_only(&[
        ("HSM_ENABLED", "true"),
        ("PALISADE_HSM_MODULE", SOFTHSM),
        ("HSM_SLOT", "palisade"),
        ("HSM_PIN", SECRET_PW),
        ("HSM_PROVIDER", "SoftHSM"),
    ]));
    assert_eq!(cfg.hsm_module, Some(PathBuf::from(SOFTHSM)));
    assert_eq!(cfg.hsm_slot, Some(crate::hsm::HsmSlot::TokenLabel("palisade".to_owned())));
    assert_eq!(cfg.hsm_provider.as_deref(), Some("SoftHSM"));
    assert!(cfg.master_key.is_none());
    assert_eq!(described(&cfg, "hsm_pin"), "***");
    assert_eq!(described(&cfg, "hsm_enabled"), "true");
    assert_eq!(described(&cfg, "master_key"), "(unset: the HSM holds the master key)");
    assert!(!format!("{cfg:?}").contains(SECRET_PW));
    assert!(!cfg.warnings().iter().any(|w| w.contains("development key file")), "{:?}", cfg.warnings());
    let settings = crate::hsm::HsmSettings::from_config(&cfg).unwrap();
    assert_eq!(settings.key_label, "palisade-master");
    assert!(!format!("{settings:?}").contains(SECRET_PW));
    // The PALISADE_ names and the slot as a number.
    let cfg =
        ok(env_only(&[("PALISADE_HSM_MODULE", SOFTHSM), ("PALISADE_HSM_PIN", "1234"), ("PALISADE_HSM_SLOT", "0")]));
    assert_eq!(cfg.hsm_slot, Some(crate::hsm::HsmSlot::Number(0)));
    // Unset: no HSM.
    let cfg = ok(env_only(&[]));
    assert!(cfg.hsm_module.is_none() && crate::hsm::HsmSettings::from_config(&cfg).is_none());
}

#[test]
fn an_hsm_module_without_a_pin_is_refused_naming_both() {
    let message = err(env_only(&[("PALISADE_HSM_MODULE", SOFTHSM)]));
    assert!(message.contains("hsm_pin") && message.contains("hsm_module"), "{message}");
    assert!(message.contains("PALISADE_HSM_PIN") && message.contains("HSM_PIN"), "{message}");
    let message = err(env_only(&[("HSM_ENABLED", "yes"), ("HSM_PIN", "1234")]));
    assert!(message.contains("hsm_module") && message.contains("hsm_enabled"), "{message}");
}

#[test]
fn a_master_key_beside_an_hsm_is_refused_without_showing_either_secret() {
    let key = key_of(9);
    let message = err(env_only(&[("PALISADE_HSM_MODULE", SOFTHSM), ("HSM_PIN", SECRET_PW), ("ENCRYPTION_KEY", &key)]));
    assert!(message.contains("master_key") && message.contains("hsm_module"), "{message}");
    assert!(!message.contains(&key) && !message.contains(SECRET_PW), "{message}");
    // hsm_enabled=false turns the HSM off: the master key is used, and the unused PIN is warned about.
    let cfg = ok(env_only(&[
        ("PALISADE_HSM_MODULE", SOFTHSM),
        ("HSM_PIN", SECRET_PW),
        ("ENCRYPTION_KEY", &key),
        ("HSM_ENABLED", "false"),
    ]));
    assert!(cfg.hsm_module.is_none() && cfg.master_key.is_some());
    assert!(
        cfg.warnings().iter().any(|w| w.contains("hsm_pin is set but hsm_enabled is false")),
        "{:?}",
        cfg.warnings()
    );
}

#[test]
fn bad_hsm_values_are_refused_without_echoing_the_pin() {
    let message = err(env_only(&[("PALISADE_HSM_MODULE", SOFTHSM), ("HSM_PIN", "12")]));
    assert!(message.contains("HSM_PIN") && message.contains("4 to 255"), "{message}");
    assert!(!message.contains("\"12\""), "{message}");
    let message =
        err(env_only(&[("PALISADE_HSM_MODULE", SOFTHSM), ("HSM_PIN", "1234"), ("HSM_SLOT", &"x".repeat(40))]));
    assert!(message.contains("HSM_SLOT") && message.contains("32"), "{message}");
    let message = err(env_only(&[("PALISADE_HSM_MODULE", SOFTHSM), ("HSM_PIN", "1234"), ("HSM_ENABLED", "maybe")]));
    assert!(message.contains("HSM_ENABLED"), "{message}");
    // Empty means "not asking for anything": fine.
    ok(env_only(&[("HSM_PIN", ""), ("PALISADE_HSM_MODULE", "")]));
}

#[test]
fn the_contract_settings_built_now_are_accepted_under_both_names() {
    let secret = "0123456789abcdef0123456789abcdef-hs"; // 35 bytes
    let cfg = ok(env_only(&[
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SECRET_KEY", secret),
        ("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "10"),
        ("JWT_REFRESH_TOKEN_EXPIRE_DAYS", "7"),
        ("SECURITY_MAX_LOGIN_ATTEMPTS", "3"),
        ("SECURITY_LOCKOUT_DURATION", "600"),
        ("SECURITY_PASSWORD_MIN_LENGTH", "14"),
    ]));
    assert_eq!(cfg.jwt_algorithm, JwtAlgorithm::HS256);
    assert_eq!(cfg.jwt_secret.as_ref().unwrap().expose_secret(), secret);
    assert_eq!(cfg.access_ttl, Duration::from_secs(600));
    assert_eq!(cfg.refresh_ttl, Duration::from_secs(7 * 86_400));
    assert_eq!(cfg.max_login_attempts, 3);
    assert_eq!(cfg.lockout_duration, Duration::from_secs(600), "SECURITY_LOCKOUT_DURATION is in seconds");
    assert_eq!(cfg.password_min_length, 14);

    let cfg = ok(env_only(&[
        ("PALISADE_JWT_ALGORITHM", "ES256"),
        ("PALISADE_ACCESS_TTL", "120"),
        ("PALISADE_REFRESH_TTL", "3600"),
        ("PALISADE_MAX_LOGIN_ATTEMPTS", "10"),
        ("PALISADE_LOCKOUT_DURATION", "60"),
        ("PALISADE_PASSWORD_MIN_LENGTH", "8"),
    ]));
    assert_eq!(cfg.jwt_algorithm, JwtAlgorithm::ES256);
    assert_eq!((cfg.access_ttl.as_secs(), cfg.refresh_ttl.as_secs()), (120, 3600));
    assert_eq!((cfg.max_login_attempts, cfg.lockout_duration.as_secs(), cfg.password_min_length), (10, 60, 8));

    // Their toml keys, which used to be refused as "not supported yet", are settings now.
    let (_dir, path) = toml_file(
        "jwt_algorithm = \"rs256\"\naccess_ttl = 300\nrefresh_ttl = 86400\nmax_login_attempts = 7\n\
         lockout_duration = 30\npassword_min_length = 16\n",
    );
    let cfg = ok(with_file(&path));
    assert_eq!(cfg.jwt_algorithm, JwtAlgorithm::RS256);
    assert_eq!((cfg.access_ttl.as_secs(), cfg.refresh_ttl.as_secs()), (300, 86_400));
    assert_eq!((cfg.max_login_attempts, cfg.lockout_duration.as_secs(), cfg.password_min_length), (7, 30, 16));
    for planned in settings::PLANNED {
        assert!(!["jwt_algorithm", "jwt_secret", "access_ttl", "refresh_ttl"].contains(&planned.key));
    }
}

// ---------------------------------------------------------------- values

#[test]
fn a_bad_bind_names_palisade_bind_and_the_expected_form() {
    for bad in ["localhost:8080", "8080", "127.0.0.1", "1.2.3.4:99999"] {
        let message = err(env_only(&[("PALISADE_BIND", bad)]));
        assert!(message.contains("PALISADE_BIND"), "{message}");
        assert!(message.contains("IP:PORT") && message.contains("127.0.0.1:8080"), "{message}");
        assert!(message.contains(&format!("{bad:?}")), "{message}");
    }
    assert_eq!(ok(env_only(&[("PALISADE_BIND", "[::1]:0")])).bind.port(), 0);
}

#[test]
fn a_bad_master_key_is_refused_without_echoing_it() {
    let short = STANDARD.encode(SECRET_PW.as_bytes()); // 20 bytes
    let long = STANDARD.encode([b'k'; 48]);
    let not_base64 = format!("{SECRET_PW}!!");
    let passphrase = "your-encryption-key-32-bytes-exa"; // the guide's kind of "key"
    for (bad, problem) in
        [(&short, "20 bytes"), (&long, "48 bytes"), (&not_base64, "not base64"), (&passphrase.to_owned(), "")]
    {
        for sources in [
            env_only(&[("PALISADE_MASTER_KEY", bad)]),
            env_only(&[("ENCRYPTION_KEY", bad)]),
            Sources { flags: SettingFlags::default().with(Setting::MasterKey, bad.as_str()), ..Sources::default() },
        ] {
            let message = err(sources);
            assert!(message.contains("master_key") && message.contains(problem), "{message}");
            assert!(message.contains("32 random bytes"), "expected form: {message}");
            assert!(!message.contains(bad.as_str()), "{message}");
            assert!(!message.contains(SECRET_PW), "{message}");
            assert!(message.contains("***"), "{message}");
        }
    }
}

#[test]
fn master_keys_are_accepted_exactly_as_palisade_core_reads_them() {
    let raw = [0xfbu8; 32]; // encodes with + and /
    for text in [STANDARD.encode(raw), STANDARD_NO_PAD.encode(raw), format!("  {}\n", STANDARD.encode(raw))] {
        let cfg = ok(env_only(&[("PALISADE_MASTER_KEY", &text)]));
        let stored = cfg.master_key.unwrap();
        assert!(palisade_core::crypto::MasterKey::from_base64(stored.expose_secret()).is_ok());
    }
    let url_safe = base64::engine::general_purpose::URL_SAFE.encode(raw);
    assert!(palisade_core::crypto::MasterKey::from_base64(&url_safe).is_err());
    err(env_only(&[("PALISADE_MASTER_KEY", &url_safe)]));
}

#[test]
fn trusted_proxies_parse_addresses_and_networks() {
    let cfg = ok(env_only(&[(
        "PALISADE_TRUSTED_PROXIES",
        " 10.0.0.1, 2001:db8::1,192.168.0.0/16 , 2001:db8::/32,10.0.0.1,",
    )]));
    let shown: Vec<String> = cfg.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.0.0.1/32", "2001:db8::1/128", "192.168.0.0/16", "2001:db8::/32"]);
    assert!(cfg.trusted_proxies[0].contains(&"10.0.0.1".parse::<std::net::IpAddr>().unwrap()));
    assert!(!cfg.trusted_proxies[0].contains(&"10.0.0.2".parse::<std::net::IpAddr>().unwrap()));

    for bad in ["proxy.example.com", "10.0.0.1/33", "10.0.0", "fe80::1%eth0", "10.0.0.1;10.0.0.2"] {
        let message = err(env_only(&[("PALISADE_TRUSTED_PROXIES", bad)]));
        assert!(message.contains("PALISADE_TRUSTED_PROXIES") && message.contains("CIDR"), "{message}");
    }
    let message = err(env_only(&[("PALISADE_TRUSTED_PROXIES", "10.0.0.5/8")]));
    assert!(message.contains("10.0.0.0/8") && message.contains("10.0.0.5/32"), "{message}");
}

#[test]
fn the_issuer_must_be_a_plain_http_or_https_url() {
    let cfg = ok(env_only(&[("PALISADE_ISSUER", "https://id.example.com/tenant")]));
    assert_eq!(cfg.issuer.as_str(), "https://id.example.com/tenant");
    for (bad, problem) in [
        ("ftp://id.example.com", "scheme"),
        ("https://id.example.com/?a=b", "query"),
        ("https://id.example.com/#x", "fragment"),
        ("https://admin:pw@id.example.com", "password"),
        ("id.example.com", "absolute URL"),
    ] {
        let message = err(env_only(&[("PALISADE_ISSUER", bad)]));
        assert!(message.contains("PALISADE_ISSUER") && message.contains(problem), "{message}");
    }
}

#[test]
fn store_urls_are_checked_without_echoing_them() {
    for good in ["sqlite::memory:", "sqlite:data.db", "postgres://u:p@db/palisade", "postgresql://db/palisade"] {
        ok(env_only(&[("PALISADE_DATABASE_URL", good)]));
    }
    for bad in
        [format!("mysql://root:{SECRET_PW}@db/x"), format!("postgres://u:{SECRET_PW}@db:99999/x"), "sqlite:".to_owned()]
    {
        let message = err(env_only(&[("PALISADE_DATABASE_URL", &bad)]));
        assert!(message.contains("PALISADE_DATABASE_URL") && message.contains("postgres://USER"), "{message}");
        assert!(!message.contains(SECRET_PW) && !message.contains("mysql"), "{message}");
    }
    for good in ["redis://cache:6379/0", "rediss://:pw@cache:6380", "redis+cluster://a:7000"] {
        ok(env_only(&[("PALISADE_REDIS_URL", good)]));
    }
    for bad in [format!("http://:{SECRET_PW}@cache"), "redis://".to_owned(), SECRET_PW.to_owned()] {
        let message = err(env_only(&[("PALISADE_REDIS_URL", &bad)]));
        assert!(message.contains("redis_url") && !message.contains(SECRET_PW), "{message}");
    }
}

#[test]
fn numbers_are_range_checked() {
    for bad in ["0", "1001", "-1", "ten", "1.5"] {
        let message = err(env_only(&[("PALISADE_DATABASE_MAX_CONNECTIONS", bad)]));
        assert!(message.contains("1 to 1000"), "{message}");
    }
    assert_eq!(ok(env_only(&[("PALISADE_DATABASE_MAX_CONNECTIONS", "1000")])).database_max_connections, 1000);
    for bad in ["0", "601", "30s"] {
        let message = err(env_only(&[("PALISADE_REQUEST_TIMEOUT", bad)]));
        assert!(message.contains("seconds from 1 to 600"), "{message}");
    }
    assert_eq!(ok(env_only(&[("PALISADE_REQUEST_TIMEOUT", "600")])).request_timeout.as_secs(), 600);
}

#[test]
fn log_settings_are_checked() {
    assert_eq!(ok(env_only(&[("PALISADE_LOG_FORMAT", "JSON")])).log_format, LogFormat::Json);
    assert!(err(env_only(&[("PALISADE_LOG_FORMAT", "xml")])).contains("text or json"));
    let directive = "info,palisade_server=debug,tower_http=warn";
    assert_eq!(ok(env_only(&[("PALISADE_LOG", directive)])).log_level, directive);
    let message = err(env_only(&[("PALISADE_LOG", "info,palisade_server=loud")]));
    assert!(message.contains("PALISADE_LOG") && message.contains("filter"), "{message}");
}

// ---------------------------------------------------------------- tokens

#[test]
fn aliases_in_minutes_and_days_are_converted() {
    let cfg = ok(env_only(&[("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "15"), ("JWT_REFRESH_TOKEN_EXPIRE_DAYS", "400")]));
    assert_eq!(cfg.access_ttl, Duration::from_secs(900));
    assert_eq!(cfg.refresh_ttl, Duration::from_secs(400 * 86_400));
    // The same in .env; and describe() shows seconds, the unit of the key.
    let cfg = ok(Sources {
        dotenv: vars(&[("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "1440"), ("JWT_REFRESH_TOKEN_EXPIRE_DAYS", "2")]),
        ..Sources::default()
    });
    assert_eq!((cfg.access_ttl.as_secs(), cfg.refresh_ttl.as_secs()), (86_400, 2 * 86_400));
    let described = cfg.describe();
    assert!(described.contains(&("access_ttl", "86400".to_owned())), "{described:?}");
    // Every other name is in seconds, and the PALISADE_ name beats the alias in the same layer.
    let cfg = ok(env_only(&[("PALISADE_ACCESS_TTL", "60"), ("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "30")]));
    assert_eq!(cfg.access_ttl, Duration::from_secs(60));
    let flags = SettingFlags::default().with(Setting::RefreshTtl, "7200");
    let cfg = ok(Sources { env: vars(&[("JWT_REFRESH_TOKEN_EXPIRE_DAYS", "9")]), flags, ..Sources::default() });
    assert_eq!(cfg.refresh_ttl, Duration::from_secs(7200));
}

#[test]
fn an_alias_in_other_units_is_range_checked_in_its_unit_and_its_error_says_so() {
    // Seconds written into the minutes alias: beyond 24 hours it is refused (below, warned about).
    for bad in ["0", "1441", "900000", "15m", "-1"] {
        let message = err(env_only(&[("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", bad)]));
        assert!(message.contains("environment variable JWT_ACCESS_TOKEN_EXPIRE_MINUTES"), "{message}");
        assert!(message.contains("whole number of minutes from 1 to 1440"), "{message}");
        assert!(message.contains("PALISADE_ACCESS_TTL") && message.contains("in seconds"), "{message}");
    }
    assert!(err(env_only(&[("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "0")])).contains("below the minimum, 1 minute;"));
    let warnings = ok(env_only(&[("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "900")])).warnings().join("\n");
    assert!(warnings.contains("access_ttl is 54000 seconds (15.0 hours)"), "{warnings}");
    for bad in ["0", "401", "30d"] {
        let message = err(Sources { dotenv: vars(&[("JWT_REFRESH_TOKEN_EXPIRE_DAYS", bad)]), ..Sources::default() });
        assert!(message.contains("JWT_REFRESH_TOKEN_EXPIRE_DAYS in the .env file"), "{message}");
        assert!(message.contains("whole number of days from 1 to 400"), "{message}");
    }
    // The PALISADE_ name gets the range in seconds.
    let message = err(env_only(&[("PALISADE_ACCESS_TTL", "15")]));
    assert!(message.contains("seconds from 60 to 86400") && !message.contains("1 to 1440"), "{message}");
    assert!(message.contains("below the minimum, 60 seconds"), "{message}");
}

#[test]
fn hs256_without_a_secret_is_refused_naming_both_settings() {
    for sources in [env_only(&[("PALISADE_JWT_ALGORITHM", "HS256")]), env_only(&[("JWT_ALGORITHM", "hs256")])] {
        let message = err(sources);
        assert!(message.starts_with("missing jwt_secret"), "{message}");
        assert!(message.contains("HS256") && message.contains("jwt_algorithm"), "{message}");
        assert!(message.contains("PALISADE_JWT_SECRET") && message.contains("JWT_SECRET_KEY"), "{message}");
        assert!(message.contains("JWT_ALGORITHM"), "where HS256 came from: {message}");
    }
    // An empty secret is no secret.
    let message = err(env_only(&[("PALISADE_JWT_ALGORITHM", "HS256"), ("PALISADE_JWT_SECRET", "")]));
    assert!(message.starts_with("missing jwt_secret"), "{message}");
}

#[test]
fn a_short_hs256_secret_is_refused_without_echoing_it() {
    assert!(SECRET_PW.len() < 32);
    for (name, alias) in [("PALISADE_JWT_SECRET", false), ("JWT_SECRET_KEY", true)] {
        let message = err(env_only(&[("JWT_ALGORITHM", "HS256"), (name, SECRET_PW)]));
        assert!(message.contains(&format!("environment variable {name}")), "{message}");
        assert!(message.contains("PALISADE_JWT_SECRET") && message.contains("JWT_SECRET_KEY"), "{message}");
        assert!(message.contains("32 bytes") && message.contains("jwt_algorithm is HS256"), "{message}");
        assert!(!message.contains(SECRET_PW) && message.contains("***"), "alias {alias}: {message}");
    }
    let flags = SettingFlags::default().with(Setting::JwtSecret, SECRET_PW);
    let message = err(Sources { env: vars(&[("PALISADE_JWT_ALGORITHM", "HS256")]), flags, ..Sources::default() });
    assert!(message.contains("flag --jwt-secret") && !message.contains(SECRET_PW), "{message}");

    let long = format!("{SECRET_PW}{SECRET_PW}");
    let cfg = ok(env_only(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET_KEY", &long)]));
    assert_eq!(cfg.jwt_secret.as_ref().unwrap().expose_secret(), long);
    let shown = format!("{:?} {:?} {:?}", cfg, cfg.describe(), cfg.warnings());
    assert!(!shown.contains(SECRET_PW), "{shown}");
    assert!(cfg.describe().contains(&("jwt_secret", "***".to_owned())));
    assert!(cfg.warnings().iter().any(|w| w.contains("HS256")), "{:?}", cfg.warnings());
}

#[test]
fn a_secret_without_hs256_is_accepted_unused_with_a_warning() {
    // A guide-era JWT_SECRET_KEY, even a weak one, must not stop an EdDSA server.
    let cfg = ok(env_only(&[("JWT_SECRET_KEY", SECRET_PW)]));
    assert_eq!(cfg.jwt_algorithm, JwtAlgorithm::EdDSA);
    let warnings = cfg.warnings().join("\n");
    assert!(warnings.contains("jwt_secret is set") && warnings.contains("EdDSA"), "{warnings}");
    assert!(!warnings.contains(SECRET_PW), "{warnings}");
}

#[test]
fn the_jwt_algorithm_is_read_in_any_case_and_stored_canonically() {
    for (text, alg) in [
        ("EdDSA", JwtAlgorithm::EdDSA),
        ("eddsa", JwtAlgorithm::EdDSA),
        ("es256", JwtAlgorithm::ES256),
        ("Rs256", JwtAlgorithm::RS256),
        ("HS256", JwtAlgorithm::HS256),
    ] {
        let secret = ("PALISADE_JWT_SECRET", "k".repeat(32));
        let cfg = ok(env_only(&[("PALISADE_JWT_ALGORITHM", text), (secret.0, &secret.1)]));
        assert_eq!(cfg.jwt_algorithm, alg);
        assert!(cfg.describe().contains(&("jwt_algorithm", alg.as_str().to_owned())));
    }
    assert_eq!(JwtAlgorithm::EdDSA.as_str(), "EdDSA");
    assert_eq!(JwtAlgorithm::HS256.to_string(), "HS256");
    for (bad, problem) in [("none", "unsigned"), ("RS512", "not a supported"), ("Ed25519", "not a supported")] {
        let message = err(env_only(&[("JWT_ALGORITHM", bad)]));
        assert!(message.contains(problem) && message.contains("EdDSA, ES256, RS256 or HS256"), "{message}");
    }
}

#[test]
fn the_refresh_ttl_must_exceed_the_access_ttl() {
    for (access, refresh) in [("3600", "3600"), ("3600", "600")] {
        let message = err(env_only(&[("PALISADE_ACCESS_TTL", access), ("PALISADE_REFRESH_TTL", refresh)]));
        assert!(message.contains("invalid refresh_ttl from environment variable PALISADE_REFRESH_TTL"), "{message}");
        assert!(message.contains("not longer than access_ttl (3600 seconds"), "{message}");
    }
    // Across units: 1 day of refresh against 24 h of access.
    let message = err(env_only(&[("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "1440"), ("JWT_REFRESH_TOKEN_EXPIRE_DAYS", "1")]));
    assert!(message.contains("(86400 seconds) is not longer than access_ttl (86400 seconds"), "{message}");
    assert!(message.contains("JWT_ACCESS_TOKEN_EXPIRE_MINUTES"), "{message}");
    ok(env_only(&[("PALISADE_ACCESS_TTL", "3600"), ("PALISADE_REFRESH_TTL", "3601")]));
}

#[test]
fn the_audience_and_the_refresh_grace_are_checked() {
    assert_eq!(ok(env_only(&[("PALISADE_AUDIENCE", "https://api.example.com")])).audience, "https://api.example.com");
    for bad in ["my api", "api\u{7}"] {
        let message = err(env_only(&[("PALISADE_AUDIENCE", bad)]));
        assert!(message.contains("PALISADE_AUDIENCE") && message.contains("whitespace"), "{message}");
    }
    assert!(err(env_only(&[("PALISADE_AUDIENCE", " ")])).contains("is empty"));
    assert_eq!(ok(env_only(&[("PALISADE_REFRESH_GRACE", "60")])).refresh_grace, Duration::from_secs(60));
    assert!(err(env_only(&[("PALISADE_REFRESH_GRACE", "61")])).contains("seconds from 0 to 60"));
}

// ---------------------------------------------------------------- sessions

#[test]
fn an_idle_timeout_longer_than_the_session_lifetime_is_refused() {
    let message = err(env_only(&[("PALISADE_SESSION_LIFETIME", "600"), ("PALISADE_SESSION_IDLE_TIMEOUT", "601")]));
    assert!(message.contains("invalid session_idle_timeout"), "{message}");
    assert!(message.contains("longer than session_lifetime (600 seconds, from environment variable"), "{message}");
    // Against the default lifetime too.
    let message = err(env_only(&[("PALISADE_SESSION_IDLE_TIMEOUT", "7200")]));
    assert!(message.contains("session_lifetime (3600 seconds, from the built-in default)"), "{message}");

    let cfg = ok(env_only(&[("PALISADE_SESSION_LIFETIME", "600"), ("PALISADE_SESSION_IDLE_TIMEOUT", "600")]));
    assert_eq!(cfg.session_idle_timeout, Duration::from_secs(600));
    // Lowering only the lifetime caps the default idle timeout instead of failing on it.
    let cfg = ok(env_only(&[("PALISADE_SESSION_LIFETIME", "600")]));
    assert_eq!((cfg.session_lifetime.as_secs(), cfg.session_idle_timeout.as_secs()), (600, 600));
    let cfg = ok(env_only(&[("PALISADE_SESSION_LIFETIME", "34560000")]));
    assert_eq!(cfg.session_idle_timeout, Duration::from_secs(1800));
}

#[test]
fn the_session_cache_is_in_milliseconds() {
    assert_eq!(ok(env_only(&[("PALISADE_SESSION_CACHE_MS", "0")])).session_cache, Duration::ZERO);
    let cfg = ok(env_only(&[("PALISADE_SESSION_CACHE_MS", "250")]));
    assert_eq!(cfg.session_cache, Duration::from_millis(250));
    assert!(cfg.describe().contains(&("session_cache_ms", "250".to_owned())));
    let message = err(env_only(&[("PALISADE_SESSION_CACHE_MS", "10001")]));
    assert!(message.contains("milliseconds from 0 to 10000") && message.contains("above the maximum"), "{message}");
}

// ---------------------------------------------------------------- login protection, passwords, hashing

#[test]
fn login_protection_limits_are_range_checked() {
    let cfg = ok(env_only(&[("PALISADE_IP_MAX_LOGIN_FAILURES", "100000"), ("SECURITY_MAX_LOGIN_ATTEMPTS", "100")]));
    assert_eq!((cfg.ip_max_login_failures, cfg.max_login_attempts), (100_000, 100));
    for (name, bad, expected) in [
        ("SECURITY_MAX_LOGIN_ATTEMPTS", "0", "from 1 to 100"),
        ("PALISADE_MAX_LOGIN_ATTEMPTS", "101", "from 1 to 100"),
        ("SECURITY_LOCKOUT_DURATION", "86401", "seconds from 1 to 86400"),
        ("PALISADE_IP_MAX_LOGIN_FAILURES", "0", "from 1 to 100000"),
        ("PALISADE_IP_MAX_LOGIN_FAILURES", "99999999999999999999999", "from 1 to 100000"),
    ] {
        let message = err(env_only(&[(name, bad)]));
        assert!(message.contains(name) && message.contains(expected), "{message}");
    }
}

#[test]
fn password_require_parses_a_list_of_character_classes() {
    let cfg = ok(env_only(&[("PALISADE_PASSWORD_REQUIRE", " Symbol, digit,upper ,, DIGIT,")]));
    assert_eq!(cfg.password_require, [CharClass::Upper, CharClass::Digit, CharClass::Symbol]);
    assert!(cfg.describe().contains(&("password_require", "upper, digit, symbol".to_owned())));
    let all = ok(env_only(&[("PALISADE_PASSWORD_REQUIRE", "lower,upper,symbol,digit")]));
    assert_eq!(all.password_require, CharClass::ALL);
    // The file may give an array; an empty value unsets a lower layer's list.
    let (_dir, path) = toml_file("password_require = [\"lower\", \"digit\"]\n");
    assert_eq!(ok(with_file(&path)).password_require, [CharClass::Lower, CharClass::Digit]);
    let cfg = ok(Sources { env: vars(&[("PALISADE_PASSWORD_REQUIRE", "")]), ..with_file(&path) });
    assert!(cfg.password_require.is_empty());

    for bad in ["special", "upper;digit", "uppercase"] {
        let message = err(env_only(&[("PALISADE_PASSWORD_REQUIRE", bad)]));
        assert!(message.contains("not a character class"), "{message}");
        assert!(message.contains("upper, lower, digit and symbol"), "{message}");
    }
    assert_eq!(CharClass::Symbol.as_str(), "symbol");
    assert!(CharClass::Upper.matches('É') && !CharClass::Upper.matches('é') && CharClass::Lower.matches('é'));
    assert!(CharClass::Digit.matches('7') && !CharClass::Digit.matches('x'));
    assert!(CharClass::Symbol.matches('!') && CharClass::Symbol.matches(' ') && !CharClass::Symbol.matches('a'));
    assert!(!CharClass::Symbol.matches('\n') && !CharClass::Symbol.matches('5'));
}

#[test]
fn password_policy_numbers_and_the_optional_max_age() {
    let cfg = ok(env_only(&[
        ("PALISADE_PASSWORD_MIN_SCORE", "4"),
        ("PALISADE_PASSWORD_HISTORY", "0"),
        ("PALISADE_PASSWORD_MAX_AGE_DAYS", "90"),
    ]));
    assert_eq!((cfg.password_min_score, cfg.password_history), (4, 0));
    assert_eq!(cfg.password_max_age, Some(Duration::from_secs(90 * 86_400)));
    assert!(cfg.describe().contains(&("password_max_age_days", "90".to_owned())));
    let unset = ok(Sources {
        dotenv: vars(&[("PALISADE_PASSWORD_MAX_AGE_DAYS", "90")]),
        env: vars(&[("PALISADE_PASSWORD_MAX_AGE_DAYS", "")]),
        ..Sources::default()
    });
    assert_eq!(unset.password_max_age, None);
    assert!(unset.describe().contains(&("password_max_age_days", "(unset: passwords do not expire)".to_owned())));
    for (name, bad, expected) in [
        ("PALISADE_PASSWORD_MIN_SCORE", "5", "from 0 to 4"),
        ("PALISADE_PASSWORD_HISTORY", "25", "from 0 to 24"),
        ("PALISADE_PASSWORD_MAX_AGE_DAYS", "0", "days from 1 to 3650"),
        ("PALISADE_PASSWORD_MAX_AGE_DAYS", "3651", "days from 1 to 3650"),
        ("SECURITY_PASSWORD_MIN_LENGTH", "7", "from 8 to 128"),
        ("PALISADE_PASSWORD_MIN_LENGTH", "129", "from 8 to 128"),
    ] {
        let message = err(env_only(&[(name, bad)]));
        assert!(message.contains(name) && message.contains(expected), "{message}");
    }
}

#[test]
fn argon2_below_the_owasp_minimum_is_refused() {
    for (name, bad) in [("PALISADE_ARGON2_MEMORY_KIB", "19455"), ("PALISADE_ARGON2_ITERATIONS", "1")] {
        let message = err(env_only(&[(name, bad)]));
        assert!(message.contains(name) && message.contains("below the minimum"), "{message}");
        assert!(message.contains("OWASP minimum"), "{message}");
    }
    for (name, bad) in [
        ("PALISADE_ARGON2_MEMORY_KIB", "4194305"),
        ("PALISADE_ARGON2_MEMORY_KIB", "64MiB"),
        ("PALISADE_ARGON2_ITERATIONS", "101"),
        ("PALISADE_ARGON2_PARALLELISM", "0"),
        ("PALISADE_ARGON2_PARALLELISM", "17"),
        ("PALISADE_HASH_CONCURRENCY", "0"),
        ("PALISADE_HASH_CONCURRENCY", "257"),
    ] {
        let message = err(env_only(&[(name, bad)]));
        assert!(message.contains(name), "{message}");
    }
    let cfg = ok(env_only(&[
        ("PALISADE_ARGON2_MEMORY_KIB", "65536"),
        ("PALISADE_ARGON2_ITERATIONS", "3"),
        ("PALISADE_ARGON2_PARALLELISM", "4"),
        ("PALISADE_HASH_CONCURRENCY", "8"),
    ]));
    assert_eq!((cfg.argon2_memory_kib, cfg.argon2_iterations, cfg.argon2_parallelism), (65_536, 3, 4));
    assert_eq!(cfg.hash_concurrency, Some(8));
    assert_eq!(ok(env_only(&[("PALISADE_HASH_CONCURRENCY", "")])).hash_concurrency, None);
}

// ---------------------------------------------------------------- multi-factor authentication and messages

const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// Every message setting under the original guide's names, valid and complete.
const GUIDE_MESSAGES: &[(&str, &str)] = &[
    ("SMTP_SERVER", "Mail.Example.com"),
    ("SMTP_PORT", "2525"),
    ("SMTP_USERNAME", "mailer"),
    ("SMTP_PASSWORD", SECRET_PW),
    ("SMTP_TLS", "TLS"),
    ("SMTP_FROM", "Palisade <no-reply@example.com>"),
    ("SMS_PROVIDER", "Twilio"),
    ("TWILIO_ACCOUNT_SID", TWILIO_SID),
    ("TWILIO_AUTH_TOKEN", SECRET_PW),
    ("TWILIO_FROM_NUMBER", "+1 (415) 555-0123"),
];

fn with_messages(extra: &[(&str, &str)]) -> Sources {
    let mut env = vars(GUIDE_MESSAGES);
    env.extend(vars(extra));
    Sources { env, ..Sources::default() }
}

fn described(cfg: &Config, key: &str) -> String {
    cfg.describe().into_iter().find(|(k, _)| *k == key).map(|(_, v)| v).unwrap()
}

#[test]
fn mfa_settings_are_read_from_every_layer_and_name() {
    let cfg = ok(env_only(&[
        ("PALISADE_MFA_ISSUER", "Example Corp"),
        ("SECURITY_MFA_REQUIRED", "True"),
        ("PALISADE_MFA_REQUIRED_ROLES", " ADMIN, admin ,"),
        ("PALISADE_MFA_FACTORS", "2"),
        ("PALISADE_MFA_CODE_TTL", "3600"),
        ("PALISADE_MFA_RESEND_INTERVAL", "1"),
    ]));
    assert_eq!(cfg.mfa_issuer, "Example Corp");
    assert!(cfg.mfa_required);
    assert_eq!(cfg.mfa_required_roles, ["admin"]);
    assert_eq!(cfg.mfa_factors, 2);
    assert_eq!((cfg.mfa_code_ttl.as_secs(), cfg.mfa_resend_interval.as_secs()), (3600, 1));
    assert_eq!(described(&cfg, "mfa_required"), "true");
    assert_eq!(described(&cfg, "mfa_required_roles"), "admin");
    assert_eq!(described(&cfg, "mfa_code_ttl"), "3600");

    for (text, expected) in [
        ("true", true),
        ("FALSE", false),
        ("yes", true),
        ("No", false),
        ("on", true),
        ("off", false),
        ("1", true),
        ("0", false),
    ] {
        assert_eq!(ok(env_only(&[("PALISADE_MFA_REQUIRED", text)])).mfa_required, expected, "{text}");
    }
    // The PALISADE_ name beats the guide's in one layer; a higher layer beats both.
    assert!(!ok(env_only(&[("SECURITY_MFA_REQUIRED", "true"), ("PALISADE_MFA_REQUIRED", "false")])).mfa_required);
    let flags = SettingFlags::default().with(Setting::MfaRequired, "false");
    assert!(!ok(Sources { env: vars(&[("SECURITY_MFA_REQUIRED", "true")]), flags, ..Sources::default() }).mfa_required);

    // The file takes a toml boolean, an array of roles and integers; a boolean elsewhere is still refused.
    let (_dir, path) = toml_file(
        "mfa_required = true\nmfa_required_roles = [\"admin\"]\nmfa_factors = 2\nmfa_code_ttl = 120\n\
         mfa_resend_interval = 60\nmfa_issuer = \"Acme\"\n",
    );
    let cfg = ok(with_file(&path));
    assert!(cfg.mfa_required);
    assert_eq!((cfg.mfa_required_roles.len(), cfg.mfa_factors), (1, 2));
    assert_eq!((cfg.mfa_code_ttl.as_secs(), cfg.mfa_resend_interval.as_secs()), (120, 60));
    assert_eq!(cfg.mfa_issuer, "Acme");
    let (_dir, path) = toml_file("mfa_factors = true\n");
    let message = err(with_file(&path));
    assert!(message.contains("mfa_factors") && message.contains("boolean"), "{message}");
}

#[test]
fn bad_mfa_values_are_refused_naming_the_setting_and_the_expected_form() {
    for (name, bad, expected) in [
        ("PALISADE_MFA_ISSUER", "Acme:Corp", "`:`"),
        ("PALISADE_MFA_ISSUER", " ", "is empty"),
        ("PALISADE_MFA_ISSUER", "Acme\u{1b}[31m", "control character"),
        ("SECURITY_MFA_REQUIRED", "maybe", "true or false"),
        ("PALISADE_MFA_REQUIRED", "", "is empty"),
        (
            "PALISADE_MFA_REQUIRED_ROLES",
            "admin,auditor",
            "\"auditor\", which is not a role Palisade knows (known roles: admin)",
        ),
        ("PALISADE_MFA_FACTORS", "0", "from 1 to 2"),
        ("PALISADE_MFA_FACTORS", "3", "from 1 to 2"),
        ("PALISADE_MFA_CODE_TTL", "29", "seconds from 30 to 3600"),
        ("PALISADE_MFA_CODE_TTL", "3601", "seconds from 30 to 3600"),
        ("PALISADE_MFA_RESEND_INTERVAL", "0", "seconds from 1 to 3600"),
        ("PALISADE_MFA_RESEND_INTERVAL", "30s", "seconds from 1 to 3600"),
    ] {
        let message = err(env_only(&[(name, bad)]));
        assert!(message.contains(&format!("environment variable {name}")), "{message}");
        assert!(message.contains(expected), "{name}={bad:?}: {message}");
    }
}

#[test]
fn smtp_settings_are_read_under_the_guides_names_and_ours() {
    let cfg = ok(with_messages(&[]));
    assert_eq!(cfg.smtp_server.as_deref(), Some("mail.example.com"));
    assert_eq!(cfg.smtp_port, 2525);
    assert_eq!(cfg.smtp_username.as_deref(), Some("mailer"));
    assert_eq!(cfg.smtp_password.as_ref().unwrap().expose_secret(), SECRET_PW);
    assert_eq!(cfg.smtp_tls, SmtpTls::Tls);
    assert_eq!(cfg.smtp_from.as_ref().unwrap().to_string(), "Palisade <no-reply@example.com>");
    assert_eq!(described(&cfg, "smtp_password"), "***");
    assert_eq!(described(&cfg, "smtp_tls"), "tls");

    let cfg = ok(env_only(&[
        ("PALISADE_SMTP_SERVER", "[2001:db8::25]"),
        ("PALISADE_SMTP_TLS", "off"),
        ("PALISADE_SMTP_FROM", "no-reply@example.com"),
    ]));
    assert_eq!((cfg.smtp_server.as_deref(), cfg.smtp_port), (Some("2001:db8::25"), 587));
    assert_eq!(cfg.smtp_tls, SmtpTls::Off);
    assert!(cfg.smtp_username.is_none() && cfg.smtp_password.is_none());
    assert_eq!(cfg.smtp_from.as_ref().unwrap().email.to_string(), "no-reply@example.com");

    // Implicit TLS moves the default port to 465; a port that is set stays.
    let tls = [("PALISADE_SMTP_SERVER", "192.0.2.25"), ("PALISADE_SMTP_FROM", "a@example.com"), ("SMTP_TLS", "tls")];
    assert_eq!(ok(env_only(&tls)).smtp_port, 465);
    let (_dir, path) = toml_file("smtp_port = 587\n");
    assert_eq!(ok(Sources { env: vars(&tls), ..with_file(&path) }).smtp_port, 587);
    assert_eq!(ok(env_only(&[("PALISADE_SMTP_TLS", "starttls")])).smtp_port, 587);
}

#[test]
fn bad_smtp_values_are_refused_naming_the_setting() {
    for (name, bad, expected) in [
        ("PALISADE_SMTP_SERVER", "smtp://mail.example.com", "scheme"),
        ("PALISADE_SMTP_SERVER", "mail.example.com:587", "give the port in smtp_port"),
        ("SMTP_SERVER", "mail_server.example.com", "not a host name"),
        ("SMTP_SERVER", "-mail.example.com", "not a host name"),
        ("SMTP_SERVER", "[mail.example.com]", "not an IPv6 address"),
        ("PALISADE_SMTP_PORT", "0", "from 1 to 65535"),
        ("SMTP_PORT", "65536", "from 1 to 65535"),
        ("SMTP_PORT", "smtp", "from 1 to 65535"),
        ("SMTP_TLS", "ssl", "starttls (upgrade"),
        ("PALISADE_SMTP_TLS", "", "is empty"),
        ("PALISADE_SMTP_FROM", "Palisade", "is not a mailbox"),
        ("SMTP_FROM", "a@example.com, b@example.com", "more than one mailbox"),
        ("SMTP_FROM", "Palisade <no-reply@>", "is not a mailbox"),
        ("SMTP_FROM", "no-reply@example.com trailing words", "is not a mailbox"),
        ("SMTP_FROM", "no-reply@example.com; x@example.com", "mailbox"),
        ("PALISADE_SMTP_USERNAME", "mai\u{7}ler", "control character"),
    ] {
        let message = err(env_only(&[(name, bad)]));
        assert!(message.contains(&format!("environment variable {name}")), "{message}");
        assert!(message.contains(expected), "{name}={bad:?}: {message}");
    }
    // The password's problems are told without its value.
    let message = err(env_only(&[("SMTP_PASSWORD", &format!("{SECRET_PW}\u{7}"))]));
    assert!(message.contains("invalid smtp_password") && message.contains("***"), "{message}");
    assert!(!message.contains(SECRET_PW), "{message}");
}

#[test]
fn smtp_cross_checks_name_both_settings_and_never_the_password() {
    let message = err(env_only(&[("SMTP_SERVER", "mail.example.com")]));
    assert!(
        message.starts_with("missing smtp_from: smtp_server is set (from environment variable SMTP_SERVER)"),
        "{message}"
    );
    assert!(message.contains("PALISADE_SMTP_FROM (alias SMTP_FROM)") && message.contains("RFC 5322"), "{message}");

    let message = err(env_only(&[("PALISADE_SMTP_USERNAME", "mailer")]));
    assert!(message.starts_with("missing smtp_password: smtp_username is set (from environment"), "{message}");
    // An empty password is no password.
    let message = err(env_only(&[("SMTP_USERNAME", "mailer"), ("SMTP_PASSWORD", "")]));
    assert!(message.starts_with("missing smtp_password"), "{message}");

    let message = err(env_only(&[("SMTP_PASSWORD", SECRET_PW)]));
    assert!(
        message.starts_with("missing smtp_username: smtp_password is set (from environment variable SMTP_PASSWORD)")
    );
    assert!(!message.contains(SECRET_PW), "{message}");

    // Credentials without a server are allowed (with a warning), and so is a server without them.
    ok(env_only(&[("SMTP_USERNAME", "mailer"), ("SMTP_PASSWORD", SECRET_PW)]));
    ok(env_only(&[("SMTP_SERVER", "mail.example.com"), ("SMTP_FROM", "a@example.com")]));
}

#[test]
fn twilio_settings_are_read_and_checked_together() {
    let cfg = ok(with_messages(&[]));
    assert_eq!(cfg.sms_provider, Some(SmsProvider::Twilio));
    assert_eq!(cfg.twilio_account_sid.as_deref(), Some(TWILIO_SID));
    assert_eq!(cfg.twilio_auth_token.as_ref().unwrap().expose_secret(), SECRET_PW);
    assert_eq!(cfg.twilio_from.as_ref().unwrap().as_str(), "+14155550123");
    assert_eq!(cfg.twilio_base_url.as_str(), "https://api.twilio.com/");
    assert_eq!(described(&cfg, "twilio_auth_token"), "***");
    assert_eq!(described(&cfg, "twilio_from"), "+14155550123");
    assert_eq!(described(&cfg, "sms_provider"), "twilio");
    let cfg = ok(with_messages(&[("PALISADE_TWILIO_BASE_URL", "http://127.0.0.1:9999")]));
    assert_eq!(cfg.twilio_base_url.as_str(), "http://127.0.0.1:9999/");

    for missing in ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"] {
        let mut sources = with_messages(&[]);
        sources.env.remove(missing);
        let message = err(sources);
        assert!(message.starts_with("missing twilio_"), "{message}");
        assert!(message.contains(missing), "names the variable: {message}");
        assert!(message.contains("sms_provider is twilio (from environment variable SMS_PROVIDER)"), "{message}");
        assert!(!message.contains(SECRET_PW), "{message}");
    }
    // Without a provider, the Twilio settings alone are accepted (with a warning).
    ok(env_only(&[("TWILIO_ACCOUNT_SID", TWILIO_SID)]));

    for (name, bad, expected) in [
        ("SMS_PROVIDER", "nexmo", "not a supported SMS provider"),
        ("SMS_PROVIDER", "nexmo", "twilio (the only provider"),
        ("TWILIO_ACCOUNT_SID", "SK0123456789abcdef0123456789abcdef", "API key SID"),
        ("TWILIO_ACCOUNT_SID", "AC0123", "AC followed by 32 hexadecimal digits"),
        ("PALISADE_TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdeg", "not an account SID"),
        ("TWILIO_FROM_NUMBER", "004415550123", "E.164"),
        ("PALISADE_TWILIO_FROM", "+1 415 CALL NOW", "E.164"),
        ("PALISADE_TWILIO_BASE_URL", "ftp://api.twilio.com", "scheme"),
        ("PALISADE_TWILIO_BASE_URL", "https://sid:token@api.twilio.com", "password"),
    ] {
        let message = err(env_only(&[(name, bad)]));
        assert!(message.contains(&format!("environment variable {name}")), "{message}");
        assert!(message.contains(expected), "{name}={bad:?}: {message}");
    }
    let message = err(env_only(&[("TWILIO_AUTH_TOKEN", &format!("{SECRET_PW} x"))]));
    assert!(message.contains("invalid twilio_auth_token") && message.contains("whitespace"), "{message}");
    assert!(!message.contains(SECRET_PW) && message.contains("***"), "{message}");
}

#[test]
fn message_secrets_never_show_in_debug_describe_or_warnings() {
    let cfg = ok(with_messages(&[("SMTP_SERVER", "mail.example.com"), ("SMTP_TLS", "off")]));
    let shown = format!("{cfg:?} {:?} {:?}", cfg.describe(), cfg.warnings());
    assert!(!shown.contains(SECRET_PW), "{shown}");
    assert!(shown.contains("mailer") && shown.contains(TWILIO_SID), "still useful: {shown}");
}

#[test]
fn a_service_link_under_a_port_settings_name_is_ignored() {
    // Kubernetes injects SMTP_PORT=tcp://… for a Service called `smtp`, and PALISADE_SMTP_PORT for
    // one called `palisade-smtp`: neither is the operator's port.
    let link = "tcp://10.0.0.9:25";
    assert_eq!(ok(env_only(&[("SMTP_PORT", link)])).smtp_port, 587);
    assert_eq!(ok(env_only(&[("PALISADE_SMTP_PORT", link), ("SMTP_PORT", "2525")])).smtp_port, 2525);
    let cfg = ok(Sources {
        dotenv: vars(&[("PALISADE_SMTP_PORT", "2526")]),
        env: vars(&[("PALISADE_SMTP_PORT", link), ("SMTP_PORT", link)]),
        ..Sources::default()
    });
    assert_eq!(cfg.smtp_port, 2526, "the link does not hide a lower layer");
    // Anything else under the name is read, and checked.
    let message = err(env_only(&[("SMTP_PORT", "http://10.0.0.9:25")]));
    assert!(message.contains("environment variable SMTP_PORT") && message.contains("1 to 65535"), "{message}");
}

#[test]
fn message_warnings_flag_plain_text_and_settings_that_do_nothing() {
    let cfg = ok(with_messages(&[("SMTP_TLS", "off"), ("PALISADE_TWILIO_BASE_URL", "http://twilio.internal")]));
    let warnings = cfg.warnings().join("\n");
    assert!(warnings.contains("smtp_tls is off: the SMTP password and the one-time codes"), "{warnings}");
    assert!(warnings.contains("mail.example.com"), "{warnings}");
    assert!(warnings.contains("twilio_base_url http://twilio.internal/ is plain http"), "{warnings}");
    assert!(!warnings.contains(SECRET_PW), "{warnings}");

    // A relay on the same host may be plain text; and https is fine.
    let cfg = ok(with_messages(&[("SMTP_SERVER", "127.0.0.1"), ("SMTP_TLS", "off")]));
    assert!(!cfg.warnings().iter().any(|w| w.contains("smtp_tls") || w.contains("twilio")), "{:?}", cfg.warnings());

    let cfg = ok(env_only(&[
        ("SMTP_FROM", "a@example.com"),
        ("TWILIO_ACCOUNT_SID", TWILIO_SID),
        ("TWILIO_AUTH_TOKEN", SECRET_PW),
    ]));
    let warnings = cfg.warnings().join("\n");
    assert!(warnings.contains("smtp_from set but smtp_server is not"), "{warnings}");
    assert!(warnings.contains("twilio_account_sid, twilio_auth_token set but sms_provider is not"), "{warnings}");
    assert!(!warnings.contains(SECRET_PW), "{warnings}");
}

// ---------------------------------------------------------------- risk, devices, GeoIP, session limits

#[test]
fn the_defaults_are_the_core_defaults() {
    let cfg = ok(Sources::default());
    let risk = RiskSettings::default();
    assert_eq!(
        (cfg.risk_enabled, cfg.risk_thresholds, cfg.risk_weights, f64::from(cfg.risk_max_travel_kmh)),
        (risk.enabled, risk.thresholds, risk.weights, risk.max_travel_kmh)
    );
    let devices = palisade_core::device::service::DeviceSettings::default();
    assert_eq!(cfg.device_approval, devices.approval);
    assert_eq!(time::Duration::try_from(cfg.device_approval_ttl).unwrap(), devices.approval_ttl);
    assert_eq!(time::Duration::try_from(cfg.remember_device_ttl).unwrap(), devices.remember_ttl);
    assert_eq!(cfg.session_binding, devices.binding);
    let sessions = palisade_core::session::SessionPolicy::default();
    assert_eq!((cfg.max_sessions_per_user, cfg.concurrent_sessions), (sessions.max_per_user, sessions.concurrent));
    // The table's text for the default weights is the engine's.
    let text = Setting::RiskWeights.spec().default.describe();
    let listed = text.strip_prefix("the built-in weights: ").unwrap().replace(", ", ",");
    assert_eq!(values::risk_weights(&listed).unwrap(), RiskWeights::default());
    assert_eq!(described(&cfg, "risk_weights").replace(", ", ","), listed);
}

#[test]
fn the_guides_names_are_aliases() {
    let cfg = ok(env_only(&[
        ("GEOIP_DATABASE_PATH", "/var/lib/GeoIP/GeoLite2-City.mmdb"),
        ("SECURITY_RISK_ANALYSIS_ENABLED", "false"),
        ("ENABLE_CONCURRENT_SESSIONS", "no"),
    ]));
    assert_eq!(cfg.geoip_db, Some(PathBuf::from("/var/lib/GeoIP/GeoLite2-City.mmdb")));
    assert!(!cfg.risk_enabled);
    assert!(!cfg.concurrent_sessions);
    // The PALISADE_ names win within a layer.
    let cfg = ok(env_only(&[
        ("GEOIP_DATABASE_PATH", "/guide.mmdb"),
        ("PALISADE_GEOIP_DB", "/ours.mmdb"),
        ("SECURITY_RISK_ANALYSIS_ENABLED", "false"),
        ("PALISADE_RISK_ENABLED", "true"),
        ("ENABLE_CONCURRENT_SESSIONS", "false"),
        ("PALISADE_CONCURRENT_SESSIONS", "true"),
    ]));
    assert_eq!(cfg.geoip_db, Some(PathBuf::from("/ours.mmdb")));
    assert!(cfg.risk_enabled && cfg.concurrent_sessions);
    // An error under an alias names it.
    let message = err(env_only(&[("SECURITY_RISK_ANALYSIS_ENABLED", "maybe")]));
    assert!(message.contains("environment variable SECURITY_RISK_ANALYSIS_ENABLED"), "{message}");
    assert!(message.contains("risk_enabled") && message.contains("true or false"), "{message}");
}

#[test]
fn good_values_of_every_new_setting_are_read() {
    let cfg = ok(env_only(&[
        ("PALISADE_GEOIP_DB", "/geo/GeoIP2-City.mmdb"),
        ("PALISADE_GEOIP_ASN_DB", "/geo/GeoLite2-ASN.mmdb"),
        ("PALISADE_GEOIP_ANONYMOUS_DB", "/geo/GeoIP2-Anonymous-IP.mmdb"),
        ("PALISADE_RISK_ENABLED", "on"),
        ("PALISADE_RISK_THRESHOLDS", " 0.3, 0.6 ,0.9"),
        ("PALISADE_RISK_WEIGHTS", "new_country=0.5, Anonymizer=1,trusted_device=0"),
        ("PALISADE_RISK_MAX_TRAVEL_KMH", "1200"),
        ("PALISADE_RISK_DENY_CIDRS", "203.0.113.0/24, 2001:db8:bad::/48,198.51.100.7"),
        ("PALISADE_RISK_ALLOW_CIDRS", "192.0.2.0/24"),
        ("PALISADE_DEVICE_APPROVAL", "yes"),
        ("PALISADE_DEVICE_APPROVAL_TTL", "600"),
        ("PALISADE_REMEMBER_DEVICE_TTL", "0"),
        ("PALISADE_SESSION_BINDING", "ASN"),
        ("PALISADE_MAX_SESSIONS_PER_USER", "5"),
        ("PALISADE_CONCURRENT_SESSIONS", "1"),
        ("PALISADE_NOTIFY_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/abc"),
    ]));
    assert_eq!(cfg.geoip_db, Some(PathBuf::from("/geo/GeoIP2-City.mmdb")));
    assert_eq!(cfg.geoip_asn_db, Some(PathBuf::from("/geo/GeoLite2-ASN.mmdb")));
    assert_eq!(cfg.geoip_anonymous_db, Some(PathBuf::from("/geo/GeoIP2-Anonymous-IP.mmdb")));
    assert!(cfg.risk_enabled);
    assert_eq!(cfg.risk_thresholds, RiskThresholds { mfa: 0.3, enhanced: 0.6, block: 0.9 });
    let expected = RiskWeights { new_country: 0.5, anonymizer: 1.0, trusted_device: 0.0, ..RiskWeights::default() };
    assert_eq!(cfg.risk_weights, expected);
    assert_eq!(cfg.risk_max_travel_kmh, 1200);
    let deny: Vec<String> = cfg.risk_deny_cidrs.iter().map(ToString::to_string).collect();
    assert_eq!(deny, ["203.0.113.0/24", "2001:db8:bad::/48", "198.51.100.7/32"]);
    assert_eq!(cfg.risk_allow_cidrs.len(), 1);
    assert!(cfg.device_approval);
    assert_eq!(cfg.device_approval_ttl, Duration::from_secs(600));
    assert_eq!(cfg.remember_device_ttl, Duration::ZERO, "0 turns remembering off");
    assert_eq!(cfg.session_binding, SessionBinding::Asn);
    assert_eq!((cfg.max_sessions_per_user, cfg.concurrent_sessions), (5, true));
    assert_eq!(
        cfg.notify_webhook_url.as_ref().unwrap().expose_secret(),
        "https://hooks.example.com/services/T0/B0/abc"
    );
    // And they reach the core's settings.
    let settings = crate::app::settings(&cfg).unwrap();
    assert_eq!(settings.risk.thresholds, cfg.risk_thresholds);
    assert_eq!(settings.risk.weights, expected);
    assert_eq!(settings.risk.max_travel_kmh, 1200.0);
    assert_eq!(settings.risk.deny, cfg.risk_deny_cidrs);
    assert!(settings.devices.approval);
    assert_eq!(settings.devices.approval_ttl, time::Duration::minutes(10));
    assert_eq!(settings.devices.remember_ttl, time::Duration::ZERO);
    assert_eq!(settings.devices.binding, SessionBinding::Asn);
    assert_eq!((settings.sessions.max_per_user, settings.sessions.concurrent), (5, true));

    for (text, binding) in
        [("off", SessionBinding::Off), ("Device", SessionBinding::Device), ("address", SessionBinding::Address)]
    {
        assert_eq!(ok(env_only(&[("PALISADE_SESSION_BINDING", text)])).session_binding, binding);
    }
    let cfg = ok(env_only(&[("PALISADE_RISK_ENABLED", "false"), ("PALISADE_CONCURRENT_SESSIONS", "off")]));
    let settings = crate::app::settings(&cfg).unwrap();
    assert!(!settings.risk.enabled && !settings.sessions.concurrent);
}

#[test]
fn the_file_takes_the_new_keys_with_arrays_and_booleans() {
    let (_dir, path) = toml_file(
        "geoip_db = \"/geo/GeoLite2-Country.mmdb\"\nrisk_enabled = false\nrisk_thresholds = \"0.1,0.4,0.9\"\n\
         risk_weights = [\"new_device=0.3\", \"unusual_hour=0\"]\nrisk_max_travel_kmh = 1000\n\
         risk_deny_cidrs = [\"203.0.113.0/24\"]\nrisk_allow_cidrs = [\"10.0.0.0/8\", \"fd00::/8\"]\n\
         device_approval = true\ndevice_approval_ttl = 300\nremember_device_ttl = 604800\n\
         session_binding = \"address\"\nmax_sessions_per_user = 3\nenable_concurrent_sessions = false\n",
    );
    let cfg = ok(with_file(&path));
    assert_eq!(cfg.geoip_db, Some(PathBuf::from("/geo/GeoLite2-Country.mmdb")));
    assert!(!cfg.risk_enabled);
    assert_eq!(cfg.risk_thresholds, RiskThresholds { mfa: 0.1, enhanced: 0.4, block: 0.9 });
    assert_eq!(cfg.risk_weights, RiskWeights { new_device: 0.3, unusual_hour: 0.0, ..RiskWeights::default() });
    assert_eq!(cfg.risk_max_travel_kmh, 1000);
    assert_eq!((cfg.risk_deny_cidrs.len(), cfg.risk_allow_cidrs.len()), (1, 2));
    assert!(cfg.device_approval);
    assert_eq!((cfg.device_approval_ttl.as_secs(), cfg.remember_device_ttl.as_secs()), (300, 604_800));
    assert_eq!(cfg.session_binding, SessionBinding::Address);
    assert_eq!((cfg.max_sessions_per_user, cfg.concurrent_sessions), (3, false));
}

/// The message for `value` under `var`, which must name the setting's key and contain each of `needles`.
fn refused(var: &str, value: &str, key: &str, needles: &[&str]) {
    let message = err(env_only(&[(var, value)]));
    assert!(message.starts_with(&format!("invalid {key} from environment variable {var}")), "{message}");
    for needle in needles {
        assert!(message.contains(needle), "{value:?}: {message} lacks {needle:?}");
    }
}

#[test]
fn bad_values_of_every_new_setting_are_refused_naming_the_setting() {
    for (value, problem) in [
        ("0.2,0.5", "2 comma-separated values instead of three"),
        ("0.2,0.5,0.8,0.9", "4 comma-separated values"),
        ("0.5,0.2,0.8", "0 ≤ mfa ≤ enhanced ≤ block ≤ 1"),
        ("0.2,0.5,1.5", "0 ≤ mfa ≤ enhanced ≤ block ≤ 1"),
        ("-0.1,0.5,0.8", "0 ≤ mfa"),
        ("low,mid,high", "\"low\", which is not a number"),
        ("0.2,NaN,0.8", "not a number"),
    ] {
        refused("PALISADE_RISK_THRESHOLDS", value, "risk_thresholds", &[problem, "such as 0.2,0.5,0.8"]);
    }
    for (value, problem) in [
        (
            "new_device=0.5,new_place=0.2",
            "\"new_place\", which is not a risk factor (the factors are: new_device, new_country",
        ),
        ("denied_address=0.5", "denied_address, whose weight is fixed at 1"),
        ("new_device=1.5", "risk weight new_device must be within 0..=1, got 1.5"),
        ("anonymizer=-0.1", "risk weight anonymizer must be within 0..=1"),
        ("new_device", "\"new_device\", which is not factor=weight"),
        ("new_device=high", "\"high\", which is not a number"),
        ("new_device=0.1,new_device=0.2", "sets new_device twice"),
    ] {
        refused("PALISADE_RISK_WEIGHTS", value, "risk_weights", &[problem]);
    }
    // An unknown factor's message lists every factor that can be weighted, and not the fixed one.
    let message = err(env_only(&[("PALISADE_RISK_WEIGHTS", "bogus=1")]));
    for factor in palisade_core::risk::FactorName::ALL {
        let listed =
            message.contains(&format!("{}, ", factor.as_str())) || message.contains(&format!("{})", factor.as_str()));
        assert_eq!(listed, factor != palisade_core::risk::FactorName::DeniedAddress, "{factor:?}: {message}");
    }

    for value in ["99", "20001", "900.5", "fast"] {
        refused("PALISADE_RISK_MAX_TRAVEL_KMH", value, "risk_max_travel_kmh", &["km/h from 100 to 20000"]);
    }
    for var in ["PALISADE_RISK_DENY_CIDRS", "PALISADE_RISK_ALLOW_CIDRS"] {
        let key = if var.contains("DENY") { "risk_deny_cidrs" } else { "risk_allow_cidrs" };
        refused(var, "evil.example.com", key, &["not an IP address or CIDR network", "comma-separated list"]);
        refused(var, "10.0.0.5/8", key, &["did you mean 10.0.0.0/8 or 10.0.0.5/32"]);
    }
    for var in ["PALISADE_RISK_ENABLED", "PALISADE_DEVICE_APPROVAL", "PALISADE_CONCURRENT_SESSIONS"] {
        let message = err(env_only(&[(var, "sometimes")]));
        assert!(message.contains(var) && message.contains("is not true or false"), "{message}");
    }
    refused("PALISADE_DEVICE_APPROVAL_TTL", "59", "device_approval_ttl", &["below the minimum, 60 seconds"]);
    refused("PALISADE_DEVICE_APPROVAL_TTL", "86401", "device_approval_ttl", &["seconds from 60 to 86400"]);
    refused("PALISADE_DEVICE_APPROVAL_TTL", "15m", "device_approval_ttl", &["not a whole number of seconds"]);
    refused("PALISADE_REMEMBER_DEVICE_TTL", "34560001", "remember_device_ttl", &["seconds from 0 to 34560000"]);
    refused("PALISADE_REMEMBER_DEVICE_TTL", "-1", "remember_device_ttl", &["not a whole number of seconds"]);
    refused(
        "PALISADE_SESSION_BINDING",
        "strict",
        "session_binding",
        &["is not a binding level", "off, device (same device), asn"],
    );
    refused("PALISADE_MAX_SESSIONS_PER_USER", "10001", "max_sessions_per_user", &["from 0 to 10000"]);
    refused("PALISADE_MAX_SESSIONS_PER_USER", "-1", "max_sessions_per_user", &["not a whole number"]);
    refused("PALISADE_GEOIP_DB", "/geo/\u{7}.mmdb", "geoip_db", &["control character"]);

    // An empty value is refused for the settings that always have a value.
    for var in ["PALISADE_RISK_THRESHOLDS", "PALISADE_SESSION_BINDING", "PALISADE_RISK_MAX_TRAVEL_KMH"] {
        assert!(err(env_only(&[(var, "")])).contains("is empty"), "{var}");
    }
    // …and unsets the optional ones.
    let cfg = ok(Sources {
        dotenv: vars(&[("PALISADE_GEOIP_DB", "/a.mmdb"), ("PALISADE_RISK_WEIGHTS", "new_device=1")]),
        env: vars(&[("PALISADE_GEOIP_DB", ""), ("PALISADE_RISK_WEIGHTS", "")]),
        ..Sources::default()
    });
    assert_eq!((cfg.geoip_db, cfg.risk_weights), (None, RiskWeights::default()));
}

#[test]
fn a_bad_webhook_url_is_refused_without_echoing_it() {
    for (bad, problem) in [
        (format!("ftp://hooks.example.com/{SECRET_PW}"), "not an http:// or https:// URL"),
        (format!("hooks.example.com/{SECRET_PW}"), "not an absolute URL"),
        (format!("https://hooks.example.com/x#{SECRET_PW}"), "fragment"),
    ] {
        let message = err(env_only(&[("PALISADE_NOTIFY_WEBHOOK_URL", &bad)]));
        assert!(message.contains("notify_webhook_url") && message.contains(problem), "{message}");
        assert!(!message.contains(SECRET_PW) && message.contains("***"), "{message}");
    }
}

#[test]
fn a_webhook_url_is_a_secret_shown_as_its_origin_only() {
    let url = format!("https://palisade:{SECRET_PW}@hooks.example.com:8443/services/T0/B0/{SECRET_PW}?token=x");
    let cfg = ok(env_only(&[("PALISADE_NOTIFY_WEBHOOK_URL", &url)]));
    assert_eq!(described(&cfg, "notify_webhook_url"), "https://hooks.example.com:8443/***");
    assert!(!format!("{cfg:?}").contains(SECRET_PW));
    let cfg = ok(env_only(&[("PALISADE_NOTIFY_WEBHOOK_URL", "https://hooks.example.com")]));
    assert_eq!(described(&cfg, "notify_webhook_url"), "https://hooks.example.com/");
    assert!(described(&ok(Sources::default()), "notify_webhook_url").starts_with("(unset"));

    let cfg = ok(env_only(&[("PALISADE_NOTIFY_WEBHOOK_URL", &format!("http://alerts.internal/hook/{SECRET_PW}"))]));
    let warnings = cfg.warnings().join("\n");
    assert!(warnings.contains("notify_webhook_url http://alerts.internal/*** is plain http"), "{warnings}");
    assert!(!warnings.contains(SECRET_PW), "{warnings}");
    let cfg = ok(env_only(&[("PALISADE_NOTIFY_WEBHOOK_URL", "http://127.0.0.1:9000/hook")]));
    assert!(!cfg.warnings().iter().any(|w| w.contains("notify_webhook_url")));
}

#[test]
fn asn_binding_without_an_asn_database_is_refused_naming_both_settings() {
    let message = err(env_only(&[("PALISADE_SESSION_BINDING", "asn"), ("PALISADE_GEOIP_DB", "/geo/city.mmdb")]));
    assert!(message.starts_with("missing geoip_asn_db: session_binding is asn"), "{message}");
    assert!(message.contains("from environment variable PALISADE_SESSION_BINDING"), "{message}");
    assert!(message.contains("GeoIP ASN database") && message.contains("PALISADE_GEOIP_ASN_DB"), "{message}");
    let (_dir, path) = toml_file("session_binding = \"asn\"\n");
    let message = err(with_file(&path));
    assert!(message.contains("missing geoip_asn_db") && message.contains("`session_binding` in"), "{message}");
    // With one it starts; the file need not exist yet (a missing file degrades, it does not stop).
    let cfg = ok(env_only(&[("PALISADE_SESSION_BINDING", "asn"), ("PALISADE_GEOIP_ASN_DB", "/does/not/exist.mmdb")]));
    assert_eq!(cfg.session_binding, SessionBinding::Asn);
}

#[test]
fn describe_shows_the_new_settings() {
    let cfg = ok(env_only(&[
        ("PALISADE_GEOIP_DB", "/geo/city.mmdb"),
        ("PALISADE_RISK_DENY_CIDRS", "203.0.113.0/24,2001:db8::1"),
        ("PALISADE_RISK_THRESHOLDS", "0.25,0.5,0.75"),
        ("PALISADE_SESSION_BINDING", "address"),
    ]));
    assert_eq!(described(&cfg, "geoip_db"), "/geo/city.mmdb");
    assert!(described(&cfg, "geoip_asn_db").starts_with("(unset"));
    assert_eq!(described(&cfg, "risk_deny_cidrs"), "203.0.113.0/24, 2001:db8::1/128");
    assert_eq!(described(&cfg, "risk_allow_cidrs"), "(none)");
    assert_eq!(described(&cfg, "risk_thresholds"), "0.25,0.5,0.75");
    assert_eq!(described(&cfg, "session_binding"), "address");
    assert_eq!(described(&cfg, "enable_concurrent_sessions"), "true");
    assert_eq!(described(&cfg, "remember_device_ttl"), "2592000");
    assert_eq!(described(&cfg, "risk_max_travel_kmh"), "900");
}

#[test]
fn risk_warnings_flag_settings_that_cancel_each_other() {
    let cfg = ok(env_only(&[
        ("PALISADE_CONCURRENT_SESSIONS", "false"),
        ("PALISADE_MAX_SESSIONS_PER_USER", "4"),
        ("PALISADE_RISK_ENABLED", "false"),
        ("PALISADE_RISK_DENY_CIDRS", "203.0.113.0/24"),
        ("PALISADE_RISK_ALLOW_CIDRS", "0.0.0.0/0"),
    ]));
    let warnings = cfg.warnings().join("\n");
    assert!(warnings.contains("max_sessions_per_user is 4 but enable_concurrent_sessions is false"), "{warnings}");
    assert!(warnings.contains("risk_allow_cidrs contains 0.0.0.0/0"), "{warnings}");
    assert!(warnings.contains("risk_deny_cidrs, risk_allow_cidrs set but risk_enabled is false"), "{warnings}");
}

// ---------------------------------------------------------------- encryption service

/// The per-class (algorithm, compression, rotation days) the service will enforce.
fn class_policies(policies: &EncryptionPolicies) -> Vec<(DataClassification, Algorithm, bool, u32)> {
    policies.all().into_iter().map(|(c, p)| (c, p.algorithm, p.compression, p.rotation_days)).collect()
}

#[test]
fn the_encryption_defaults_are_the_core_defaults() {
    let cfg = ok(Sources::default());
    let core = EncryptionPolicies::defaults(false);
    assert_eq!(cfg.encryption, core);
    assert_eq!(crate::app::settings(&cfg).unwrap().encryption, core);
    assert_eq!(cfg.encryption_max_plaintext, palisade_core::crypto::policy::DEFAULT_MAX_PLAINTEXT);
    assert_eq!(cfg.encryption_key_rotation_days, palisade_core::crypto::policy::DEFAULT_ROTATION_DAYS);
    // Compression is refused for the sensitive classes only, and no class needs an HSM.
    for (class, policy) in cfg.encryption.all() {
        assert_eq!(policy.compression, !class.is_sensitive(), "{class}");
        assert!(!policy.hsm_required, "{class}");
    }
    assert_eq!(described(&cfg, "encryption_algorithm"), "AES-256-GCM");
    assert_eq!(described(&cfg, "encryption_key_rotation_days"), "90");
    assert_eq!(described(&cfg, "encryption_compression"), "true");
    assert_eq!(described(&cfg, "encryption_max_plaintext"), "524288");
    assert!(described(&cfg, "encryption_policies").starts_with("(the built-in policies"));
    assert!(!cfg.warnings().iter().any(|w| w.contains("encryption")), "{:?}", cfg.warnings());
}

#[test]
fn the_reencryption_defaults_are_the_core_defaults() {
    let cfg = ok(Sources::default());
    assert_eq!(cfg.reencryption, ReencryptionSettings::default());
    assert_eq!((cfg.reencryption.batch_size, cfg.reencryption.rows_per_second), (500, None));
    assert_eq!(crate::app::settings(&cfg).unwrap().reencryption, ReencryptionSettings::default());
    assert_eq!(described(&cfg, "encryption_reencrypt_batch_size"), "500");
    assert_eq!(described(&cfg, "encryption_reencrypt_rate"), "(unset: no limit)");
}

#[test]
fn encryption_settings_are_read_from_the_environment() {
    let cfg = ok(env_only(&[
        ("PALISADE_ENCRYPTION_ALGORITHM", "xchacha20_poly1305"),
        ("PALISADE_ENCRYPTION_KEY_ROTATION_DAYS", "365"),
        ("PALISADE_ENCRYPTION_COMPRESSION", "off"),
        ("PALISADE_ENCRYPTION_MAX_PLAINTEXT", "786432"),
        ("PALISADE_ENCRYPTION_POLICIES", " RESTRICTED.rotation_days=30, ,top_secret.hsm=false,"),
    ]));
    assert_eq!(cfg.encryption_algorithm, Algorithm::XChaCha20Poly1305);
    assert_eq!(cfg.encryption_key_rotation_days, 365);
    assert!(!cfg.encryption_compression);
    assert_eq!(cfg.encryption_max_plaintext, 786_432);
    assert_eq!(cfg.encryption_policies, ["RESTRICTED.rotation_days=30", "top_secret.hsm=false"]);
    assert_eq!(described(&cfg, "encryption_algorithm"), "XCHACHA20-POLY1305", "stored canonically");
    assert_eq!(described(&cfg, "encryption_compression"), "false");
    assert_eq!(described(&cfg, "encryption_policies"), "RESTRICTED.rotation_days=30, top_secret.hsm=false");
    assert_eq!(cfg.encryption.max_plaintext, 786_432);

    for (text, algorithm) in [
        ("AES-256-GCM", Algorithm::Aes256Gcm),
        ("aes_256_gcm", Algorithm::Aes256Gcm),
        ("AES_256_GCM", Algorithm::Aes256Gcm),
        ("XChaCha20-Poly1305", Algorithm::XChaCha20Poly1305),
    ] {
        assert_eq!(ok(env_only(&[("PALISADE_ENCRYPTION_ALGORITHM", text)])).encryption_algorithm, algorithm, "{text}");
    }
    // The bounds are accepted; an empty list unsets a lower layer's.
    let cfg =
        ok(env_only(&[("PALISADE_ENCRYPTION_KEY_ROTATION_DAYS", "1"), ("PALISADE_ENCRYPTION_MAX_PLAINTEXT", "1")]));
    assert_eq!((cfg.encryption_key_rotation_days, cfg.encryption.max_plaintext), (1, 1));
    assert_eq!(ok(env_only(&[("PALISADE_ENCRYPTION_KEY_ROTATION_DAYS", "3650")])).encryption_key_rotation_days, 3650);
    let cfg = ok(Sources {
        dotenv: vars(&[("PALISADE_ENCRYPTION_POLICIES", "PUBLIC.rotation_days=7")]),
        env: vars(&[("PALISADE_ENCRYPTION_POLICIES", "")]),
        ..Sources::default()
    });
    assert!(cfg.encryption_policies.is_empty());
    assert_eq!(cfg.encryption, EncryptionPolicies::defaults(false));
    // A flag beats the environment, for the list too.
    let flags = SettingFlags::default()
        .with(Setting::EncryptionPolicies, "PII.algorithm=XCHACHA20-POLY1305")
        .with(Setting::EncryptionCompression, "false");
    let env =
        vars(&[("PALISADE_ENCRYPTION_POLICIES", "PII.rotation_days=2"), ("PALISADE_ENCRYPTION_COMPRESSION", "true")]);
    let cfg = ok(Sources { env, flags, ..Sources::default() });
    assert_eq!(cfg.encryption_policies, ["PII.algorithm=XCHACHA20-POLY1305"]);
    assert!(!cfg.encryption_compression);
}

#[test]
fn encryption_settings_are_read_from_the_file_with_the_policies_as_an_array() {
    let (_dir, path) = toml_file(
        "encryption_algorithm = \"XCHACHA20-POLY1305\"\nencryption_key_rotation_days = 180\n\
         encryption_compression = false\nencryption_max_plaintext = 65536\n\
         encryption_policies = [\"RESTRICTED.algorithm=AES-256-GCM\", \"CONFIDENTIAL.rotation_days=45\"]\n",
    );
    let cfg = ok(with_file(&path));
    assert_eq!(cfg.encryption_algorithm, Algorithm::XChaCha20Poly1305);
    assert_eq!(cfg.encryption_key_rotation_days, 180);
    assert!(!cfg.encryption_compression);
    assert_eq!(cfg.encryption_max_plaintext, 65_536);
    assert_eq!(cfg.encryption_policies, ["RESTRICTED.algorithm=AES-256-GCM", "CONFIDENTIAL.rotation_days=45"]);
    assert_eq!(cfg.encryption.of(DataClassification::Restricted).algorithm, Algorithm::Aes256Gcm);
    assert_eq!(cfg.encryption.of(DataClassification::Confidential).rotation_days, 45);

    // A string works for the list and the boolean too; the environment beats the file.
    let (_dir, path) = toml_file(
        "encryption_policies = \"PII.rotation_days=10\"\nencryption_compression = \"no\"\n\
         encryption_max_plaintext = 1000\n",
    );
    let cfg = ok(Sources { env: vars(&[("PALISADE_ENCRYPTION_MAX_PLAINTEXT", "2000")]), ..with_file(&path) });
    assert_eq!(cfg.encryption_policies, ["PII.rotation_days=10"]);
    assert!(!cfg.encryption_compression);
    assert_eq!(cfg.encryption_max_plaintext, 2000);

    // A wrong toml type names the setting.
    let (_dir, path) = toml_file("encryption_max_plaintext = 512.5\n");
    let message = err(with_file(&path));
    assert!(message.contains("encryption_max_plaintext") && message.contains("float"), "{message}");
    let (_dir, path) = toml_file("encryption_policies = [30]\n");
    let message = err(with_file(&path));
    assert!(message.contains("encryption_policies") && message.contains("array of non-strings"), "{message}");
}

#[test]
fn bad_encryption_values_stop_start_up_naming_the_setting() {
    for bad in ["AES-128-GCM", "ChaCha20-Poly1305", "none", "AES 256 GCM"] {
        refused(
            "PALISADE_ENCRYPTION_ALGORITHM",
            bad,
            "encryption_algorithm",
            &["is not a supported cipher", "AES-256-GCM or XCHACHA20-POLY1305"],
        );
    }
    refused(
        "PALISADE_ENCRYPTION_KEY_ROTATION_DAYS",
        "0",
        "encryption_key_rotation_days",
        &["below the minimum, 1 day"],
    );
    refused(
        "PALISADE_ENCRYPTION_KEY_ROTATION_DAYS",
        "3651",
        "encryption_key_rotation_days",
        &["above the maximum, 3650 days", "days from 1 to 3650"],
    );
    refused(
        "PALISADE_ENCRYPTION_KEY_ROTATION_DAYS",
        "90d",
        "encryption_key_rotation_days",
        &["not a whole number of days"],
    );
    refused("PALISADE_ENCRYPTION_MAX_PLAINTEXT", "0", "encryption_max_plaintext", &["below the minimum, 1 byte"]);
    refused(
        "PALISADE_ENCRYPTION_MAX_PLAINTEXT",
        "786433",
        "encryption_max_plaintext",
        &["above the maximum, 786432 bytes", "1 MiB request body limit"],
    );
    refused("PALISADE_ENCRYPTION_MAX_PLAINTEXT", "1048576", "encryption_max_plaintext", &["above the maximum"]);
    refused(
        "PALISADE_ENCRYPTION_MAX_PLAINTEXT",
        "512KiB",
        "encryption_max_plaintext",
        &["not a whole number of bytes"],
    );
    refused("PALISADE_ENCRYPTION_COMPRESSION", "sometimes", "encryption_compression", &["is not true or false"]);

    // Each override is checked by the encryption service's own code, whose message follows the value.
    for (bad, problem) in [
        ("RESTRICTED", "`RESTRICTED`: expected CLASS.key=value"),
        ("RESTRICTED.rotation_days", "expected CLASS.key=value"),
        ("RESTRICTED=30", "expected CLASS.key=value"),
        ("SECRET.rotation_days=30", "`SECRET` is not a classification (one of PUBLIC, INTERNAL"),
        ("INTERNAL.algorithm=DES", "INTERNAL: algorithm `DES` is not AES-256-GCM or XCHACHA20-POLY1305"),
        ("INTERNAL.compression=maybe", "compression `maybe` is not true or false"),
        ("INTERNAL.rotation_days=0", "1 to 3650"),
        ("INTERNAL.rotation_days=3651", "1 to 3650"),
        ("INTERNAL.colour=blue", "unknown key `colour`"),
        ("TOP_SECRET.hsm=true", "TOP_SECRET: hsm=true needs an HSM"),
    ] {
        let value = format!("PUBLIC.rotation_days=7,{bad}");
        refused(
            "PALISADE_ENCRYPTION_POLICIES",
            &value,
            "encryption_policies",
            &["is refused: ", problem, "CLASS.key=value"],
        );
    }
    // With the master key in an HSM, TOP_SECRET needs it by default and any class may ask for it.
    let with_hsm = ok(env_only(&[
        ("PALISADE_HSM_MODULE", SOFTHSM),
        ("PALISADE_HSM_PIN", "1234"),
        ("PALISADE_ENCRYPTION_POLICIES", "PII.hsm=true,RESTRICTED.hsm=true"),
    ]));
    let required: Vec<DataClassification> =
        DataClassification::ALL.into_iter().filter(|c| with_hsm.encryption.of(*c).hsm_required).collect();
    assert_eq!(required, [DataClassification::Pii, DataClassification::Restricted, DataClassification::TopSecret]);
    // From the file, the message names the key and the file.
    let (_dir, path) = toml_file("encryption_policies = [\"PII.hsm=true\"]\n");
    let message = err(with_file(&path));
    assert!(message.starts_with("invalid encryption_policies from `encryption_policies` in "), "{message}");
    assert!(message.contains("PII: hsm=true needs an HSM"), "{message}");

    // An empty value is refused for the settings that always have a value.
    for var in [
        "PALISADE_ENCRYPTION_ALGORITHM",
        "PALISADE_ENCRYPTION_KEY_ROTATION_DAYS",
        "PALISADE_ENCRYPTION_COMPRESSION",
        "PALISADE_ENCRYPTION_MAX_PLAINTEXT",
    ] {
        assert!(err(env_only(&[(var, "")])).contains("is empty"), "{var}");
    }
}

#[test]
fn the_encryption_settings_reach_the_service_policies() {
    use DataClassification::{Confidential, Internal, Pii, Public, Restricted, TopSecret};
    use palisade_core::crypto::Algorithm::{Aes256Gcm, XChaCha20Poly1305};

    // One cipher everywhere, RESTRICTED rotated monthly; compression stays per class.
    let cfg = ok(env_only(&[
        ("PALISADE_ENCRYPTION_ALGORITHM", "XCHACHA20-POLY1305"),
        ("PALISADE_ENCRYPTION_POLICIES", "RESTRICTED.rotation_days=30"),
    ]));
    let policies = crate::app::settings(&cfg).unwrap().encryption;
    assert_eq!(
        class_policies(&policies),
        [
            (Public, XChaCha20Poly1305, true, 90),
            (Internal, XChaCha20Poly1305, true, 90),
            (Confidential, XChaCha20Poly1305, true, 90),
            (Pii, XChaCha20Poly1305, true, 90),
            (Restricted, XChaCha20Poly1305, false, 30),
            (TopSecret, XChaCha20Poly1305, false, 90),
        ]
    );
    assert_eq!(policies.max_plaintext, 512 * 1024);

    // Compression off everywhere, a rotation period for all, and a class's own cipher and
    // compression where the operator's items say so: they are applied last, so they win.
    let cfg = ok(env_only(&[
        ("PALISADE_ENCRYPTION_COMPRESSION", "false"),
        ("PALISADE_ENCRYPTION_KEY_ROTATION_DAYS", "30"),
        ("PALISADE_ENCRYPTION_MAX_PLAINTEXT", "4096"),
        (
            "PALISADE_ENCRYPTION_POLICIES",
            "PUBLIC.compression=true,TOP_SECRET.algorithm=XCHACHA20-POLY1305,PII.rotation_days=7",
        ),
    ]));
    let policies = crate::app::settings(&cfg).unwrap().encryption;
    assert_eq!(
        class_policies(&policies),
        [
            (Public, Aes256Gcm, true, 30),
            (Internal, Aes256Gcm, false, 30),
            (Confidential, Aes256Gcm, false, 30),
            (Pii, Aes256Gcm, false, 7),
            (Restricted, Aes256Gcm, false, 30),
            (TopSecret, XChaCha20Poly1305, false, 30),
        ]
    );
    assert_eq!(policies.max_plaintext, 4096);
    assert!(policies.all().iter().all(|(_, policy)| !policy.hsm_required));
    assert_eq!(policies, cfg.encryption, "settings() hands on what the configuration built");
}

#[test]
fn compression_allowed_for_a_sensitive_class_is_warned_about() {
    let cfg =
        ok(env_only(&[("PALISADE_ENCRYPTION_POLICIES", "RESTRICTED.compression=true,INTERNAL.compression=true")]));
    let warnings = cfg.warnings().join("\n");
    assert!(warnings.contains("encryption_policies allows compression for RESTRICTED"), "{warnings}");
    assert!(warnings.contains("CRIME, BREACH") && !warnings.contains("for INTERNAL"), "{warnings}");
    // encryption_compression = false does not stop the operator's own item from allowing it again.
    let cfg = ok(env_only(&[
        ("PALISADE_ENCRYPTION_COMPRESSION", "false"),
        ("PALISADE_ENCRYPTION_POLICIES", "TOP_SECRET.compression=true"),
    ]));
    assert!(cfg.encryption.of(DataClassification::TopSecret).compression);
    assert!(cfg.warnings().iter().any(|w| w.contains("compression for TOP_SECRET")));
}

#[test]
fn reencryption_settings_are_read_from_every_layer() {
    // The file, as integers.
    let (_dir, path) = toml_file("encryption_reencrypt_batch_size = 250\nencryption_reencrypt_rate = 1000\n");
    let cfg = ok(with_file(&path));
    assert_eq!(cfg.reencryption, ReencryptionSettings { batch_size: 250, rows_per_second: Some(1000) });
    assert_eq!(described(&cfg, "encryption_reencrypt_batch_size"), "250");
    assert_eq!(described(&cfg, "encryption_reencrypt_rate"), "1000");
    assert_eq!(crate::app::settings(&cfg).unwrap().reencryption, cfg.reencryption, "settings() hands it on");

    // The environment (and .env); the environment beats the file.
    let cfg = ok(env_only(&[
        ("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", " 2000 "),
        ("PALISADE_ENCRYPTION_REENCRYPT_RATE", "50"),
    ]));
    assert_eq!(cfg.reencryption, ReencryptionSettings { batch_size: 2000, rows_per_second: Some(50) });
    let cfg = ok(Sources { env: vars(&[("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "100")]), ..with_file(&path) });
    assert_eq!(cfg.reencryption, ReencryptionSettings { batch_size: 100, rows_per_second: Some(1000) });
    let cfg = ok(Sources { dotenv: vars(&[("PALISADE_ENCRYPTION_REENCRYPT_RATE", "7")]), ..Sources::default() });
    assert_eq!(cfg.reencryption.rows_per_second, Some(7));

    // A flag beats the environment; an empty rate unsets a lower layer's (no limit again).
    let flags = SettingFlags::default()
        .with(Setting::EncryptionReencryptBatchSize, "10")
        .with(Setting::EncryptionReencryptRate, "");
    let env = vars(&[("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "20"), ("PALISADE_ENCRYPTION_REENCRYPT_RATE", "30")]);
    let cfg = ok(Sources { env, flags, ..with_file(&path) });
    assert_eq!(cfg.reencryption, ReencryptionSettings { batch_size: 10, rows_per_second: None });
    assert_eq!(described(&cfg, "encryption_reencrypt_rate"), "(unset: no limit)");

    // The bounds are accepted.
    for (batch, rate) in [("1", "1"), ("10000", "1000000")] {
        let cfg = ok(env_only(&[
            ("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", batch),
            ("PALISADE_ENCRYPTION_REENCRYPT_RATE", rate),
        ]));
        let expected = ReencryptionSettings { batch_size: batch.parse().unwrap(), rows_per_second: rate.parse().ok() };
        assert_eq!(cfg.reencryption, expected);
        assert_eq!(cfg.reencryption.validate(), Ok(()), "core accepts what the configuration does");
    }
}

#[test]
fn bad_reencryption_values_stop_start_up_naming_the_setting() {
    let batch = ("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "encryption_reencrypt_batch_size");
    let rate = ("PALISADE_ENCRYPTION_REENCRYPT_RATE", "encryption_reencrypt_rate");
    for ((var, key), value, problem) in [
        (batch, "0", "below the minimum, 1"),
        (batch, "10001", "above the maximum, 10000"),
        (batch, "99999999999999999999999", "above the maximum, 10000"),
        (batch, "-1", "not a whole number"),
        (batch, "500rows", "not a whole number"),
        (batch, "12.5", "not a whole number"),
        (rate, "0", "below the minimum, 1"),
        (rate, "1000001", "above the maximum, 1000000"),
        (rate, "unlimited", "not a whole number"),
    ] {
        let expected = if key == batch.1 { "a whole number from 1 to 10000" } else { "from 1 to 1000000" };
        refused(var, value, key, &[problem, expected]);
    }
    // The batch size always has a value: empty is refused, unlike the rate.
    let message = err(env_only(&[("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "")]));
    assert!(message.starts_with("invalid encryption_reencrypt_batch_size from environment variable"), "{message}");
    assert!(message.contains("is empty"), "{message}");

    // From the file and from a flag, the message names the key or the flag.
    let (_dir, path) = toml_file("encryption_reencrypt_rate = 0\n");
    let message = err(with_file(&path));
    assert!(message.starts_with("invalid encryption_reencrypt_rate from `encryption_reencrypt_rate` in "), "{message}");
    assert!(message.contains("below the minimum, 1"), "{message}");
    let (_dir, path) = toml_file("encryption_reencrypt_batch_size = 512.5\n");
    let message = err(with_file(&path));
    assert!(message.contains("encryption_reencrypt_batch_size") && message.contains("float"), "{message}");
    let flags = SettingFlags::default().with(Setting::EncryptionReencryptBatchSize, "0");
    let message = err(Sources { flags, ..Sources::default() });
    assert!(
        message.starts_with("invalid encryption_reencrypt_batch_size from flag --encryption-reencrypt-batch-size"),
        "{message}"
    );
    assert!(message.contains("below the minimum, 1"), "{message}");
}

#[test]
fn the_reencryption_ranges_are_the_ones_core_accepts() {
    // The table's bounds pass core's own check, and one step past them fails it, so the two
    // cannot drift apart unnoticed (core has no upper bound on the rate).
    let number = |setting: Setting| setting.spec().number.unwrap();
    let batch = number(Setting::EncryptionReencryptBatchSize);
    let core = ReencryptionSettings::default();
    for n in [batch.min, batch.max] {
        let settings = ReencryptionSettings { batch_size: u32::try_from(n).unwrap(), ..core };
        assert_eq!(settings.validate(), Ok(()), "{n}");
    }
    for n in [batch.min - 1, batch.max + 1] {
        assert!(ReencryptionSettings { batch_size: u32::try_from(n).unwrap(), ..core }.validate().is_err(), "{n}");
    }
    let rate = number(Setting::EncryptionReencryptRate);
    for n in [rate.min, rate.max] {
        let settings = ReencryptionSettings { rows_per_second: Some(u32::try_from(n).unwrap()), ..core };
        assert_eq!(settings.validate(), Ok(()), "{n}");
    }
    assert!(ReencryptionSettings { rows_per_second: Some(0), ..core }.validate().is_err());
}

// ---------------------------------------------------------------- security monitoring

/// Every threshold setting of the detectors, and whether it is a window (in seconds) or a count.
const MONITORING_NUMBERS: [(Setting, bool); 13] = [
    (Setting::MonitoringBruteForceFailures, false),
    (Setting::MonitoringBruteForceWindow, true),
    (Setting::MonitoringSprayingAccounts, false),
    (Setting::MonitoringSprayingWindow, true),
    (Setting::MonitoringStuffingFailures, false),
    (Setting::MonitoringStuffingAddresses, false),
    (Setting::MonitoringStuffingFailurePercent, false),
    (Setting::MonitoringStuffingWindow, true),
    (Setting::MonitoringApiKeyRefusals, false),
    (Setting::MonitoringApiKeyWindow, true),
    (Setting::MonitoringBaselineSlot, true),
    (Setting::MonitoringBaselineSlots, false),
    (Setting::MonitoringBaselineMinEvents, false),
];

/// The least value of a monitoring threshold: 1 (a second, for a window), but a baseline slot of
/// at least a minute and a baseline of at least two slots.
fn monitoring_minimum(setting: Setting) -> u64 {
    match setting {
        Setting::MonitoringBaselineSlot => 60,
        Setting::MonitoringBaselineSlots => 2,
        _ => 1,
    }
}

/// The monitoring settings `app::settings` hands to core.
fn monitoring_of(cfg: &Config) -> MonitoringSettings {
    crate::app::settings(cfg).unwrap().monitoring
}

#[test]
fn the_monitoring_defaults_are_the_core_defaults() {
    let cfg = ok(Sources::default());
    assert_eq!(monitoring_of(&cfg), MonitoringSettings::default());
    assert!(cfg.monitoring_detectors);
    // The table's default texts (what --help and the docs show) are core's numbers.
    let core = Thresholds::default();
    let seconds = |d: time::Duration| u64::try_from(d.whole_seconds()).unwrap().to_string();
    let expected = [
        core.brute_force_failures.to_string(),
        seconds(core.brute_force_window),
        core.spraying_accounts.to_string(),
        seconds(core.spraying_window),
        core.stuffing_failures.to_string(),
        core.stuffing_addresses.to_string(),
        core.stuffing_failure_percent.to_string(),
        seconds(core.stuffing_window),
        core.api_key_refusals.to_string(),
        seconds(core.api_key_window),
        seconds(core.baseline_slot),
        core.baseline_slots.to_string(),
        core.baseline_min_events.to_string(),
    ];
    for ((setting, _), expected) in MONITORING_NUMBERS.into_iter().zip(expected) {
        assert_eq!(setting.spec().default.describe(), expected, "{setting}");
        assert_eq!(described(&cfg, setting.key()), expected, "{setting}");
    }
    assert_eq!(described(&cfg, "monitoring_detectors"), "true");
    // Every monitoring setting is in the list above, a switch, the responses or an alert setting.
    let listed = Setting::ALL.into_iter().filter(|s| s.key().starts_with("monitoring_")).count();
    assert_eq!(
        listed,
        MONITORING_NUMBERS.len() + 3 + ALERT_SETTINGS.len(),
        "the numbers, the two switches, the responses and the alert settings"
    );
}

#[test]
fn automatic_responses_are_rules_per_cause_and_can_be_turned_off() {
    let defaults = ok(Sources::default());
    assert_eq!(monitoring_of(&defaults).responses, palisade_core::monitoring::ResponseRules::defaults());
    let custom = ok(env_only(&[("PALISADE_MONITORING_RESPONSES", "api_key_abuse=block_ip:60+revoke_api_key")]));
    let rules = monitoring_of(&custom).responses;
    assert_eq!(rules.for_cause("api_key_abuse").len(), 2);
    assert!(rules.for_cause("brute_force").is_empty(), "the setting replaces the defaults");
    assert_eq!(described(&custom, "monitoring_responses"), "api_key_abuse=block_ip:60+revoke_api_key");
    let none = ok(env_only(&[("PALISADE_MONITORING_RESPONSES", "none")]));
    assert!(monitoring_of(&none).responses.is_empty());
    let off = ok(env_only(&[("PALISADE_MONITORING_INCIDENT_AUTO_RESPONSE", "off")]));
    assert!(monitoring_of(&off).responses.is_empty(), "the switch empties the rules");
    assert_eq!(described(&off, "monitoring_incident_auto_response"), "false");
    let key = "monitoring_responses";
    let var = "PALISADE_MONITORING_RESPONSES";
    refused(var, "brute_force=lock_account:15m", key, &["`15m` is not a whole number of seconds", var]);
    refused(var, "brute_force=lock_account", key, &["lock_account needs a duration"]);
    refused(var, "dragons=block_ip:60", key, &["\"dragons\" is not a detector"]);
    refused(var, "brute_force=nuke", key, &["\"nuke\" is not an action"]);
    refused(var, "brute_force=lock_account:2592001", key, &["at most 30 days"]);
    refused(
        "PALISADE_MONITORING_INCIDENT_AUTO_RESPONSE",
        "maybe",
        "monitoring_incident_auto_response",
        &["is not true or false"],
    );
}

#[test]
fn monitoring_settings_are_read_from_every_layer() {
    // The file: integers and a toml boolean.
    let (_dir, path) = toml_file(
        "monitoring_detectors = false\nmonitoring_brute_force_failures = 3\nmonitoring_brute_force_window = 60\n\
         monitoring_spraying_accounts = 4\nmonitoring_spraying_window = 120\nmonitoring_stuffing_failures = 500\n\
         monitoring_stuffing_addresses = 50\nmonitoring_stuffing_failure_percent = 95\n\
         monitoring_stuffing_window = 900\nmonitoring_api_key_refusals = 7\nmonitoring_api_key_window = 30\n\
         monitoring_baseline_slot = 3600\nmonitoring_baseline_slots = 24\nmonitoring_baseline_min_events = 100\n",
    );
    let cfg = ok(with_file(&path));
    let from_file = MonitoringSettings {
        detectors: false,
        thresholds: Thresholds {
            brute_force_failures: 3,
            brute_force_window: time::Duration::seconds(60),
            spraying_accounts: 4,
            spraying_window: time::Duration::seconds(120),
            stuffing_failures: 500,
            stuffing_addresses: 50,
            stuffing_failure_percent: 95,
            stuffing_window: time::Duration::seconds(900),
            api_key_refusals: 7,
            api_key_window: time::Duration::seconds(30),
            baseline_slot: time::Duration::hours(1),
            baseline_slots: 24,
            baseline_min_events: 100,
        },
        ..MonitoringSettings::default()
    };
    assert_eq!(monitoring_of(&cfg), from_file, "settings() hands every value on");
    assert_eq!(described(&cfg, "monitoring_detectors"), "false");
    assert_eq!(described(&cfg, "monitoring_stuffing_window"), "900");
    assert_eq!(described(&cfg, "monitoring_baseline_slot"), "3600");

    // The environment beats the file, setting by setting; the rest stays the file's.
    let env = vars(&[
        ("PALISADE_MONITORING_DETECTORS", "yes"),
        ("PALISADE_MONITORING_BRUTE_FORCE_FAILURES", " 25 "),
        ("PALISADE_MONITORING_API_KEY_WINDOW", "86400"),
        ("PALISADE_MONITORING_BASELINE_SLOTS", "96"),
    ]);
    let cfg = ok(Sources { env, ..with_file(&path) });
    let settings = monitoring_of(&cfg);
    assert!(settings.detectors);
    assert_eq!(settings.thresholds.brute_force_failures, 25);
    assert_eq!(settings.thresholds.api_key_window, time::Duration::days(1));
    assert_eq!(settings.thresholds.baseline_slots, 96);
    assert_eq!(settings.thresholds.spraying_accounts, 4, "from the file");
    assert_eq!(settings.thresholds.baseline_min_events, 100, "from the file");

    // .env, under the defaults otherwise; the environment beats it.
    let dotenv = vars(&[
        ("PALISADE_MONITORING_SPRAYING_WINDOW", "1"),
        ("PALISADE_MONITORING_STUFFING_FAILURE_PERCENT", "100"),
        ("PALISADE_MONITORING_BASELINE_SLOT", "300"),
    ]);
    let env = vars(&[("PALISADE_MONITORING_SPRAYING_WINDOW", "30"), ("PALISADE_MONITORING_BASELINE_SLOT", "1800")]);
    let cfg = ok(Sources { dotenv: dotenv.clone(), ..Sources::default() });
    assert_eq!(cfg.monitoring_spraying_window, Duration::from_secs(1));
    assert_eq!(cfg.monitoring_stuffing_failure_percent, 100);
    assert_eq!(monitoring_of(&cfg).thresholds.baseline_slot, time::Duration::minutes(5));
    assert_eq!(monitoring_of(&cfg).thresholds.brute_force_failures, Thresholds::default().brute_force_failures);
    let cfg = ok(Sources { dotenv, env, ..Sources::default() });
    assert_eq!(cfg.monitoring_spraying_window, Duration::from_secs(30));
    assert_eq!(cfg.monitoring_baseline_slot, Duration::from_secs(1800));

    // A flag beats everything below it.
    let flags = SettingFlags::default()
        .with(Setting::MonitoringStuffingAddresses, "1")
        .with(Setting::MonitoringDetectors, "off")
        .with(Setting::MonitoringBaselineMinEvents, "5");
    let env = vars(&[
        ("PALISADE_MONITORING_STUFFING_ADDRESSES", "30"),
        ("PALISADE_MONITORING_DETECTORS", "on"),
        ("PALISADE_MONITORING_BASELINE_MIN_EVENTS", "50"),
    ]);
    let cfg = ok(Sources { env, flags, ..with_file(&path) });
    assert_eq!((cfg.monitoring_stuffing_addresses, cfg.monitoring_detectors), (1, false));
    assert_eq!(monitoring_of(&cfg).thresholds.baseline_min_events, 5);

    // The bounds are accepted.
    for (setting, window) in MONITORING_NUMBERS {
        let rule = setting.spec().number.unwrap();
        assert_eq!(rule.min, monitoring_minimum(setting), "{setting}");
        if window {
            assert_eq!((rule.unit, rule.max), (Some(settings::Unit::Seconds), 86_400), "{setting}: up to a day");
        }
        for bound in [rule.min, rule.max] {
            let cfg = ok(env_only(&[(setting.env(), &bound.to_string())]));
            assert_eq!(described(&cfg, setting.key()), bound.to_string(), "{setting}");
        }
    }
}

#[test]
fn the_guides_threat_detection_switch_is_an_alias() {
    let cfg = ok(env_only(&[("SECURITY_THREAT_DETECTION_ENABLED", "false")]));
    assert!(!cfg.monitoring_detectors);
    assert!(!monitoring_of(&cfg).detectors);
    let cfg = ok(env_only(&[("SECURITY_THREAT_DETECTION_ENABLED", "TRUE")]));
    assert!(cfg.monitoring_detectors);
    // The PALISADE_ name wins within a layer; a higher layer wins whatever name it uses.
    let cfg =
        ok(env_only(&[("SECURITY_THREAT_DETECTION_ENABLED", "false"), ("PALISADE_MONITORING_DETECTORS", "true")]));
    assert!(cfg.monitoring_detectors);
    let cfg = ok(Sources {
        dotenv: vars(&[("PALISADE_MONITORING_DETECTORS", "true")]),
        env: vars(&[("SECURITY_THREAT_DETECTION_ENABLED", "0")]),
        ..Sources::default()
    });
    assert!(!cfg.monitoring_detectors);
    // An error under the alias names it.
    let message = err(env_only(&[("SECURITY_THREAT_DETECTION_ENABLED", "sometimes")]));
    assert!(
        message.starts_with("invalid monitoring_detectors from environment variable SECURITY_THREAT_DETECTION_ENABLED"),
        "{message}"
    );
    assert!(message.contains("is not true or false") && message.contains("PALISADE_MONITORING_DETECTORS"), "{message}");
}

#[test]
fn bad_monitoring_values_stop_start_up_naming_the_setting() {
    for (setting, window) in MONITORING_NUMBERS {
        let (var, key) = (setting.env(), setting.key());
        let (min, max) = (monitoring_minimum(setting), setting.spec().number.unwrap().max);
        let below = (min - 1).to_string();
        let cases: Vec<(String, String)> = if window {
            vec![
                (below, format!("is below the minimum, {}", settings::Unit::Seconds.of(min))),
                ("86401".into(), "is above the maximum, 86400 seconds".into()),
                ("5m".into(), "is not a whole number of seconds".into()),
                ("PT5M".into(), "is not a whole number of seconds".into()),
                ("-1".into(), "is not a whole number of seconds".into()),
            ]
        } else {
            vec![
                (below, format!("is below the minimum, {min}")),
                ((max + 1).to_string(), format!("is above the maximum, {max}")),
                ("99999999999999999999999".into(), format!("is above the maximum, {max}")),
                ("ten".into(), "is not a whole number".into()),
                ("2.5".into(), "is not a whole number".into()),
            ]
        };
        let expected = if window {
            format!("expected a whole number of seconds from {min} to 86400")
        } else {
            format!("expected a whole number from {min} to {max}")
        };
        for (value, problem) in cases {
            refused(var, &value, key, &[&problem, &expected, var]);
        }
        // Each always has a value: empty is refused.
        refused(var, "", key, &["is empty (this setting cannot be unset)"]);
    }
    // The share is a percentage.
    refused(
        "PALISADE_MONITORING_STUFFING_FAILURE_PERCENT",
        "101",
        "monitoring_stuffing_failure_percent",
        &["is above the maximum, 100", "from 1 to 100 (percent)"],
    );
    refused("PALISADE_MONITORING_DETECTORS", "maybe", "monitoring_detectors", &["is not true or false", "yes/no"]);

    // From the file and from a flag, the message names the key or the flag.
    let (_dir, path) = toml_file("monitoring_brute_force_failures = 0\n");
    let message = err(with_file(&path));
    assert!(
        message.starts_with("invalid monitoring_brute_force_failures from `monitoring_brute_force_failures` in "),
        "{message}"
    );
    assert!(message.contains("below the minimum, 1"), "{message}");
    let (_dir, path) = toml_file("monitoring_spraying_window = 2.5\n");
    let message = err(with_file(&path));
    assert!(message.contains("monitoring_spraying_window") && message.contains("float"), "{message}");
    let (_dir, path) = toml_file("monitoring_api_key_window = \"1m\"\n");
    let message = err(with_file(&path));
    assert!(message.starts_with("invalid monitoring_api_key_window from `monitoring_api_key_window` in "), "{message}");
    assert!(message.contains("is not a whole number of seconds"), "{message}");
    let (_dir, path) = toml_file("monitoring_baseline_slot = 30\n");
    let message = err(with_file(&path));
    assert!(message.starts_with("invalid monitoring_baseline_slot from `monitoring_baseline_slot` in "), "{message}");
    assert!(message.contains("is below the minimum, 60 seconds"), "{message}");
    let (_dir, path) = toml_file("monitoring_detectors = 1.0\n");
    let message = err(with_file(&path));
    assert!(message.contains("monitoring_detectors") && message.contains("float"), "{message}");
    let flags = SettingFlags::default().with(Setting::MonitoringStuffingWindow, "86401");
    let message = err(Sources { flags, ..Sources::default() });
    assert!(
        message.starts_with("invalid monitoring_stuffing_window from flag --monitoring-stuffing-window"),
        "{message}"
    );
    assert!(message.contains("above the maximum, 86400 seconds"), "{message}");
    let flags = SettingFlags::default().with(Setting::MonitoringBaselineSlots, "97");
    let message = err(Sources { flags, ..Sources::default() });
    assert!(
        message.starts_with("invalid monitoring_baseline_slots from flag --monitoring-baseline-slots"),
        "{message}"
    );
    assert!(message.contains("above the maximum, 96") && message.contains("from 2 to 96"), "{message}");
    // A bad value the environment overrides does not stop start-up (only the winner is checked).
    let (_dir, path) = toml_file("monitoring_spraying_accounts = 0\n");
    let env = vars(&[("PALISADE_MONITORING_SPRAYING_ACCOUNTS", "5")]);
    assert_eq!(ok(Sources { env, ..with_file(&path) }).monitoring_spraying_accounts, 5);
}

// ---------------------------------------------------------------- alerts

/// The alert settings, in table order.
const ALERT_SETTINGS: [Setting; 6] = [
    Setting::MonitoringAlertSeverityThreshold,
    Setting::MonitoringAlertEmails,
    Setting::MonitoringAlertWebhookUrl,
    Setting::MonitoringPushUrl,
    Setting::MonitoringAlertWebhookSecret,
    Setting::MonitoringAlertsPerHour,
];

/// A valid alert signing key (42 bytes) that must never be shown.
const ALERT_KEY: &str = "Hunter2-alert-signing-key-0123456789abcdef";

/// Alert URLs whose paths are their credentials.
const ALERT_HOOK: &str = "https://hooks.example.com/services/T0/B0/Hunter2-hook-token";
const PUSH_GATEWAY: &str = "https://push.example.com:8443/v1/Hunter2-push-token?app=palisade";

#[test]
fn the_alert_defaults_are_the_core_defaults() {
    let cfg = ok(Sources::default());
    let core = MonitoringSettings::default();
    let handed = monitoring_of(&cfg);
    assert_eq!(handed.alert_threshold, core.alert_threshold);
    assert_eq!(handed.alert_emails, core.alert_emails);
    assert_eq!(handed.alerts_per_hour, core.alerts_per_hour);
    // The table's texts (what --help and the docs show) are core's values.
    let threshold = Setting::MonitoringAlertSeverityThreshold;
    assert_eq!(threshold.spec().default.describe(), core.alert_threshold.as_str());
    assert_eq!(Setting::MonitoringAlertsPerHour.spec().default.describe(), core.alerts_per_hour.to_string());
    assert!(core.alert_emails.is_empty());
    assert_eq!(described(&cfg, "monitoring_alert_severity_threshold"), "MEDIUM");
    assert_eq!(described(&cfg, "monitoring_alerts_per_hour"), "20");
    assert_eq!(described(&cfg, "monitoring_alert_emails"), "(none)");
    for key in ["monitoring_alert_webhook_url", "monitoring_push_url", "monitoring_alert_webhook_secret"] {
        assert!(described(&cfg, key).starts_with("(unset"), "{key}");
    }
    assert!(cfg.monitoring_alert_webhook_url.is_none() && cfg.monitoring_push_url.is_none());
    assert!(cfg.monitoring_alert_webhook_secret.is_none());
    // The URLs and the key are secrets; the rest are not.
    for setting in ALERT_SETTINGS {
        let secret = matches!(
            setting,
            Setting::MonitoringAlertWebhookUrl | Setting::MonitoringPushUrl | Setting::MonitoringAlertWebhookSecret
        );
        assert_eq!(setting.is_secret(), secret, "{setting}");
    }
}

#[test]
fn alert_settings_are_read_from_every_layer_and_handed_to_core() {
    let cfg = ok(env_only(&[
        ("PALISADE_MONITORING_ALERT_SEVERITY_THRESHOLD", "high"),
        ("PALISADE_MONITORING_ALERT_EMAILS", " security@example.com , oncall@Example.COM,,oncall@example.com"),
        ("PALISADE_MONITORING_ALERTS_PER_HOUR", "0"),
        ("PALISADE_MONITORING_ALERT_WEBHOOK_URL", ALERT_HOOK),
        ("PALISADE_MONITORING_PUSH_URL", PUSH_GATEWAY),
        ("PALISADE_MONITORING_ALERT_WEBHOOK_SECRET", ALERT_KEY),
    ]));
    let emails = ["security@example.com", "oncall@example.com"].map(|e| palisade_core::user::Email::parse(e).unwrap());
    assert_eq!(cfg.monitoring_alert_emails, emails, "the domain is lower-cased and the duplicate dropped");
    let handed = monitoring_of(&cfg);
    assert_eq!(handed.alert_threshold, palisade_core::monitoring::Severity::High);
    assert_eq!(handed.alert_emails, emails);
    assert_eq!(handed.alerts_per_hour, 0, "0 is no limit, and accepted");
    assert_eq!(cfg.monitoring_alert_webhook_url.as_ref().map(|u| u.expose_secret()), Some(ALERT_HOOK));
    assert_eq!(cfg.monitoring_push_url.as_ref().map(|u| u.expose_secret()), Some(PUSH_GATEWAY));
    assert_eq!(cfg.monitoring_alert_webhook_secret.as_ref().map(|k| k.expose_secret()), Some(ALERT_KEY));
    assert_eq!(described(&cfg, "monitoring_alert_severity_threshold"), "HIGH");
    assert_eq!(described(&cfg, "monitoring_alert_emails"), "security@example.com, oncall@example.com");
    assert_eq!(described(&cfg, "monitoring_alert_webhook_url"), "https://hooks.example.com/***");
    assert_eq!(described(&cfg, "monitoring_push_url"), "https://push.example.com:8443/***");
    assert_eq!(described(&cfg, "monitoring_alert_webhook_secret"), "***");
    assert_eq!(described(&cfg, "monitoring_alerts_per_hour"), "0");
    let shown = format!("{cfg:?} {:?} {:?}", cfg.describe(), cfg.warnings());
    assert!(!shown.contains("Hunter2"), "no alert secret is ever shown: {shown}");

    // The file: an array of addresses, a number, any letter case; the environment beats it; a flag
    // beats both.
    let (_dir, path) = toml_file(
        "monitoring_alert_severity_threshold = \"critical\"\n\
         monitoring_alert_emails = [\"a@example.com\", \"b@example.com\"]\n\
         monitoring_alerts_per_hour = 10000\n",
    );
    let cfg = ok(with_file(&path));
    let handed = monitoring_of(&cfg);
    assert_eq!(handed.alert_threshold, palisade_core::monitoring::Severity::Critical);
    assert_eq!(handed.alert_emails.iter().map(|e| e.as_str()).collect::<Vec<_>>(), ["a@example.com", "b@example.com"]);
    assert_eq!(handed.alerts_per_hour, 10_000);
    let env = vars(&[("PALISADE_MONITORING_ALERTS_PER_HOUR", "7"), ("PALISADE_MONITORING_ALERT_EMAILS", "")]);
    let cfg = ok(Sources { env: env.clone(), ..with_file(&path) });
    assert_eq!((cfg.monitoring_alerts_per_hour, cfg.monitoring_alert_emails.len()), (7, 0), "empty unsets the list");
    assert_eq!(cfg.monitoring_alert_severity_threshold, palisade_core::monitoring::Severity::Critical, "the file's");
    let flags = SettingFlags::default()
        .with(Setting::MonitoringAlertsPerHour, "5")
        .with(Setting::MonitoringAlertSeverityThreshold, "Low");
    let cfg = ok(Sources { env, flags, ..with_file(&path) });
    assert_eq!(cfg.monitoring_alerts_per_hour, 5);
    assert_eq!(monitoring_of(&cfg).alert_threshold, palisade_core::monitoring::Severity::Low);
}

#[test]
fn an_alert_url_without_the_signing_key_stops_start_up_naming_both() {
    for (var, key) in [
        ("PALISADE_MONITORING_ALERT_WEBHOOK_URL", "monitoring_alert_webhook_url"),
        ("PALISADE_MONITORING_PUSH_URL", "monitoring_push_url"),
    ] {
        let message = err(env_only(&[(var, ALERT_HOOK)]));
        assert!(
            message.starts_with(&format!(
                "missing monitoring_alert_webhook_secret: {key} is set (from environment variable {var})"
            )),
            "{message}"
        );
        assert!(
            message.contains("signed") && message.contains("PALISADE_MONITORING_ALERT_WEBHOOK_SECRET"),
            "{message}"
        );
        assert!(message.contains("at least 32 bytes"), "the expected form: {message}");
        assert!(!message.contains("Hunter2"), "{message}");
        // With the key it starts; an empty URL unsets it, and then no key is needed.
        let cfg = ok(env_only(&[(var, ALERT_HOOK), ("PALISADE_MONITORING_ALERT_WEBHOOK_SECRET", ALERT_KEY)]));
        assert!(cfg.monitoring_alert_webhook_secret.is_some());
        let cfg = ok(Sources { dotenv: vars(&[(var, ALERT_HOOK)]), env: vars(&[(var, "")]), ..Sources::default() });
        assert!(cfg.monitoring_alert_webhook_url.is_none() && cfg.monitoring_push_url.is_none());
    }
    // From the file, the message says which file.
    let (_dir, path) = toml_file(&format!("monitoring_push_url = \"{PUSH_GATEWAY}\"\n"));
    let message = err(with_file(&path));
    assert!(
        message.starts_with(
            "missing monitoring_alert_webhook_secret: monitoring_push_url is set (from `monitoring_push_url` in "
        ),
        "{message}"
    );
    assert!(!message.contains("Hunter2"), "{message}");
}

#[test]
fn bad_alert_values_are_refused_naming_the_setting() {
    let var = "PALISADE_MONITORING_ALERT_SEVERITY_THRESHOLD";
    let key = "monitoring_alert_severity_threshold";
    for value in ["SEVERE", "info", "3"] {
        refused(var, value, key, &["is not a severity", "LOW, MEDIUM, HIGH or CRITICAL (any letter case)"]);
    }
    refused(var, "", key, &["is empty (this setting cannot be unset)"]);

    let (var, key) = ("PALISADE_MONITORING_ALERTS_PER_HOUR", "monitoring_alerts_per_hour");
    refused(var, "10001", key, &["is above the maximum, 10000", "a whole number from 0 to 10000 (0: no limit)"]);
    refused(var, "-1", key, &["is not a whole number"]);
    refused(var, "twenty", key, &["is not a whole number"]);
    refused(var, "", key, &["is empty"]);

    let (var, key) = ("PALISADE_MONITORING_ALERT_EMAILS", "monitoring_alert_emails");
    refused(
        var,
        "ops@example.com,not-an-address",
        key,
        &["contains \"not-an-address\", which is not an e-mail address", "a comma-separated list of e-mail addresses"],
    );
    refused(var, "ops@localhost", key, &["\"ops@localhost\", which is not an e-mail address"]);

    // The key: long enough, never shown.
    let (var, key) = ("PALISADE_MONITORING_ALERT_WEBHOOK_SECRET", "monitoring_alert_webhook_secret");
    let short = "Hunter2-only-31-bytes-long-xxxx";
    assert_eq!(short.len(), 31);
    refused(var, short, key, &["is 31 bytes long; an HMAC-SHA256 key needs at least 32", "***", "openssl rand"]);
    assert!(!err(env_only(&[(var, short)])).contains("Hunter2"));
    refused(var, "Hunter2-a-key-with-a-tab-\t-in-it-0123456789", key, &["control character"]);
    assert!(ok(env_only(&[(var, &"k".repeat(32))])).monitoring_alert_webhook_secret.is_some(), "32 bytes is enough");

    // The URLs: the rules of notify_webhook_url, never echoed.
    for (var, key) in [
        ("PALISADE_MONITORING_ALERT_WEBHOOK_URL", "monitoring_alert_webhook_url"),
        ("PALISADE_MONITORING_PUSH_URL", "monitoring_push_url"),
    ] {
        for (bad, problem) in [
            ("ftp://hooks.example.com/Hunter2", "not an http:// or https:// URL"),
            ("hooks.example.com/Hunter2", "not an absolute URL"),
            ("https://hooks.example.com/x#Hunter2", "fragment"),
        ] {
            let message = err(env_only(&[(var, bad), ("PALISADE_MONITORING_ALERT_WEBHOOK_SECRET", ALERT_KEY)]));
            assert!(message.starts_with(&format!("invalid {key} from environment variable {var}")), "{message}");
            assert!(message.contains(problem) && message.contains("***"), "{message}");
            assert!(!message.contains("Hunter2"), "{message}");
        }
    }
}

#[test]
fn alert_warnings_flag_plain_http_e_mails_without_a_mail_server_and_an_unused_key() {
    let cfg = ok(env_only(&[
        ("PALISADE_MONITORING_ALERT_WEBHOOK_URL", "http://alerts.internal/hook/Hunter2-hook-token"),
        ("PALISADE_MONITORING_PUSH_URL", "http://127.0.0.1:9000/push"),
        ("PALISADE_MONITORING_ALERT_WEBHOOK_SECRET", ALERT_KEY),
        ("PALISADE_MONITORING_ALERT_EMAILS", "security@example.com"),
    ]));
    let warnings = cfg.warnings().join("\n");
    assert!(
        warnings
            .contains("monitoring_alert_webhook_url http://alerts.internal/*** is plain http on a non-loopback host"),
        "{warnings}"
    );
    assert!(!warnings.contains("monitoring_push_url"), "a loopback gateway is fine: {warnings}");
    assert!(warnings.contains("monitoring_alert_emails is set but smtp_server is not"), "{warnings}");
    assert!(!warnings.contains("Hunter2"), "{warnings}");
    assert!(!warnings.contains("signs nothing"), "{warnings}");

    let cfg = ok(env_only(&[("PALISADE_MONITORING_ALERT_WEBHOOK_SECRET", ALERT_KEY)]));
    let warnings = cfg.warnings().join("\n");
    assert!(warnings.contains("monitoring_alert_webhook_secret is set but neither"), "{warnings}");
    assert!(!warnings.contains("Hunter2"), "{warnings}");

    // With a mail server, the addresses are used: no warning.
    let cfg = ok(with_messages(&[("PALISADE_MONITORING_ALERT_EMAILS", "security@example.com")]));
    assert!(!cfg.warnings().iter().any(|w| w.contains("monitoring_alert_emails")), "{:?}", cfg.warnings());
}

// ---------------------------------------------------------------- secrets never shown

fn config_full_of_secrets() -> Config {
    ok(env_only(&[
        (
            "PALISADE_DATABASE_URL",
            &format!("postgres://palisade:{SECRET_PW}@db:5432/palisade?sslmode=require&password={SECRET_PW}"),
        ),
        ("PALISADE_REDIS_URL", &format!("rediss://default:{SECRET_PW}@cache:6380/0")),
        ("PALISADE_MASTER_KEY", &key_of(0x5a)),
    ]))
}

#[test]
fn debug_of_config_and_flags_and_sources_shows_no_secret() {
    let cfg = config_full_of_secrets();
    let debug = format!("{cfg:?}");
    assert!(!debug.contains(SECRET_PW), "{debug}");
    assert!(!debug.contains(&key_of(0x5a)), "{debug}");
    assert!(debug.contains("bind"), "still useful: {debug}");

    let flags = SettingFlags::default().with(Setting::MasterKey, key_of(0x5a)).with(Setting::Bind, "127.0.0.1:1");
    let debug = format!("{flags:?}");
    assert!(!debug.contains(&key_of(0x5a)) && debug.contains("127.0.0.1:1"), "{debug}");

    let sources = Sources { env: vars(&[("PALISADE_MASTER_KEY", SECRET_PW)]), ..Sources::default() };
    let debug = format!("{sources:?}");
    assert!(!debug.contains(SECRET_PW) && debug.contains("PALISADE_MASTER_KEY"), "{debug}");
}

#[test]
fn describe_masks_secrets_and_url_passwords() {
    let cfg = config_full_of_secrets();
    let described = cfg.describe();
    let keys: Vec<&str> = described.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, Setting::ALL.map(Setting::key));
    let all = format!("{described:?}");
    assert!(!all.contains(SECRET_PW), "{all}");
    assert!(!all.contains(&key_of(0x5a)), "{all}");
    let value = |key: &str| described.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(value("master_key"), "***");
    let database = value("database_url");
    assert!(database.starts_with("postgres://palisade:***@db:5432/palisade?"), "{database}");
    assert!(database.contains("sslmode=require") && database.contains("password=***"), "{database}");
    assert_eq!(value("redis_url"), "rediss://default:***@cache:6380/0");

    let cfg = ok(Sources::default());
    let described = cfg.describe();
    let value = |key: &str| described.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(value("database_url"), "sqlite://./palisade-data/palisade.db");
    assert!(value("master_key").contains("development key file"));
    assert_eq!(value("bind"), "127.0.0.1:8080");
    assert_eq!(value("request_timeout"), "30");
}

#[test]
fn an_error_never_shows_a_secret_settings_value_even_when_it_is_not_secret_looking() {
    let message = err(env_only(&[("PALISADE_DATABASE_URL", "oracle://visible-host/db")]));
    assert!(!message.contains("visible-host"), "{message}");
    assert!(message.contains("***"), "{message}");
}

// ---------------------------------------------------------------- help and table

#[test]
fn help_lists_every_setting_with_its_flag_variables_and_default() {
    let mut cmd = SettingFlags::augment_args(clap::Command::new("serve"));
    cmd.build();
    cmd.clone().debug_assert();
    let help = cmd.render_help().to_string();
    assert!(help.contains("--config <FILE>") && help.contains("PALISADE_CONFIG"), "{help}");
    // Help text wraps at the terminal's width: compare with whitespace collapsed.
    let flat = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat_help = flat(&help);
    for setting in Setting::ALL {
        let spec = setting.spec();
        assert!(help.contains(&format!("--{}", spec.flag)), "{help}");
        assert!(help.contains(spec.env), "{help}");
        if let Some(alias) = spec.alias {
            assert!(help.contains(alias), "{help}");
        }
        assert!(flat_help.contains(&flat(spec.default.describe())), "{help}");
    }
    let long = cmd.render_long_help().to_string();
    assert!(long.contains("openssl rand -base64 32") && long.contains("visible"), "{long}");
    // Grouped: each section's heading, in table order.
    let mut at = 0;
    for heading in [
        "server, stores, logging",
        "tokens",
        "sessions",
        "login protection",
        "passwords",
        "password hashing",
        "multi-factor authentication and messages",
        "risk-based login, devices and GeoIP",
        "encryption service",
        "security monitoring",
    ] {
        let heading = format!("Settings: {heading}");
        let found = help.get(at..).and_then(|rest| rest.find(&heading)).unwrap_or_else(|| panic!("{heading}: {help}"));
        at += found + heading.len();
    }
    let tokens = help.find("Settings: tokens").unwrap();
    assert!(help.find("--jwt-algorithm").unwrap() > tokens && help.find("--request-timeout").unwrap() < tokens);
    assert!(long.contains("JWT_ACCESS_TOKEN_EXPIRE_MINUTES is in minutes"), "{long}");
}

#[test]
fn the_table_is_consistent() {
    let mut names = std::collections::HashSet::new();
    for setting in Setting::ALL {
        let spec = setting.spec();
        assert_eq!(Setting::from_key(spec.key), Some(setting));
        assert_eq!(spec.flag, spec.key.replace('_', "-"));
        assert!(spec.env.starts_with("PALISADE_"));
        for name in [Some(spec.env), spec.alias].into_iter().flatten() {
            assert!(names.insert(name), "{name} used twice");
            assert_eq!(
                settings::classify(name, "x"),
                settings::VarClass::Setting { setting, alias: Some(name) == spec.alias }
            );
            // A setting name must never look like a service-link variable (see settings::is_service_link).
            assert!(!name.contains("_PORT_") && !name.contains("_SERVICE_") && !name.contains("_ENV_"), "{name}");
            assert!(!name.ends_with("_NAME") && !name.ends_with("_SERVICE_HOST"), "{name}");
            // …except `…_PORT`, allowed for a number only: a link's `tcp://…` value under it is ignored.
            if name.ends_with("_PORT") {
                assert!(spec.number.is_some(), "{name} ends in _PORT but does not take a number");
                assert_eq!(settings::classify(name, "tcp://10.0.0.9:25"), settings::VarClass::Ignored, "{name}");
            }
        }
    }
    // The groups of --help are contiguous runs of ALL.
    let mut seen: Vec<settings::Group> = Vec::new();
    for setting in Setting::ALL {
        let group = setting.spec().group;
        if seen.last() != Some(&group) {
            assert!(!seen.contains(&group), "{setting} breaks up the {group:?} group");
            seen.push(group);
        }
    }
    // The expected text of a numeric setting states its range and unit, as the parser checks them.
    for setting in Setting::ALL {
        let spec = setting.spec();
        let Some(number) = spec.number else { continue };
        assert!(matches!(spec.default, settings::DefaultValue::Text(_) | settings::DefaultValue::Unset(_)));
        assert!(number.min <= number.max, "{setting}");
        // "from MIN … to MAX", each bound a whole token (a parenthesis may follow the minimum).
        let whole_token = |text: &str, needle: &str| {
            text.match_indices(needle).find_map(|(at, _)| {
                let next = text.get(at + needle.len()..)?.chars().next();
                (!next.is_some_and(|c| c.is_ascii_digit())).then_some(at + needle.len())
            })
        };
        let after_min = whole_token(spec.expected, &format!("from {}", number.min));
        let max_after = after_min
            .and_then(|at| spec.expected.get(at..))
            .and_then(|rest| whole_token(rest, &format!(" to {}", number.max)));
        assert!(max_after.is_some(), "{setting}: {:?} does not state its range", spec.expected);
        if let Some(unit) = number.unit {
            assert!(spec.expected.contains(unit.name()), "{setting}: {:?} lacks the unit", spec.expected);
        }
        if let settings::DefaultValue::Text(default) = spec.default {
            let n: u64 = default.parse().unwrap();
            assert!((number.min..=number.max).contains(&n), "{setting}: default {n} out of its own range");
        }
        if let Some(alias_unit) = number.alias_unit {
            let alias = spec.alias.unwrap();
            assert!(spec.expected.contains(&format!("{alias} is in {}", alias_unit.name())), "{setting}");
        }
    }
    for planned in settings::PLANNED {
        assert!(Setting::from_key(planned.key).is_none());
        for name in planned.names {
            assert!(names.insert(name), "{name} used twice");
        }
    }
}

#[test]
fn the_docs_mention_every_setting_and_every_name() {
    let docs = include_str!("../../../../docs/configuration.md");
    for setting in Setting::ALL {
        let spec = setting.spec();
        for needle in [spec.key, spec.env, spec.flag] {
            assert!(docs.contains(needle), "docs/configuration.md lacks {needle}");
        }
        if let Some(alias) = spec.alias {
            assert!(docs.contains(alias), "docs/configuration.md lacks {alias}");
        }
    }
    for name in settings::CLIENT_TOOL_VARS {
        assert!(docs.contains(name), "docs/configuration.md lacks {name}");
    }
    for planned in settings::PLANNED {
        for needle in planned.names.iter().chain([&planned.key]) {
            assert!(docs.contains(needle), "docs/configuration.md lacks {needle}");
        }
    }
}

#[test]
fn the_docs_example_file_loads() {
    let docs = include_str!("../../../../docs/configuration.md");
    let start = docs.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + docs[start..].find("```").unwrap();
    let (_dir, path) = toml_file(&docs[start..end]);
    let cfg = ok(with_file(&path));
    assert_eq!(cfg.bind.port(), 8080);
    assert_eq!(cfg.refresh_ttl, Duration::from_secs(14 * 86_400));
    assert!(cfg.password_require.is_empty());
    assert_eq!((cfg.argon2_memory_kib, cfg.hash_concurrency), (65_536, Some(8)));
    assert_eq!(
        (cfg.mfa_issuer.as_str(), cfg.mfa_required_roles.as_slice()),
        ("Example Corp", ["admin".to_owned()].as_slice())
    );
    assert_eq!(
        (cfg.smtp_server.as_deref(), cfg.smtp_port, cfg.smtp_tls),
        (Some("smtp.example.com"), 587, SmtpTls::StartTls)
    );
    assert_eq!(cfg.sms_provider, None);
    assert_eq!(cfg.geoip_db.as_deref(), Some(std::path::Path::new("/var/lib/GeoIP/GeoLite2-City.mmdb")));
    assert_eq!((cfg.max_sessions_per_user, cfg.session_binding), (10, SessionBinding::Device));
    assert_eq!(cfg.risk_weights, RiskWeights { new_country: 0.4, ..RiskWeights::default() });
    assert_eq!((cfg.risk_allow_cidrs.len(), cfg.remember_device_ttl.as_secs()), (1, 1_209_600));
    assert_eq!(cfg.encryption_algorithm, Algorithm::XChaCha20Poly1305);
    let restricted = cfg.encryption.of(DataClassification::Restricted);
    assert_eq!((restricted.algorithm, restricted.rotation_days), (Algorithm::XChaCha20Poly1305, 30));
    assert_eq!(cfg.encryption.of(DataClassification::Internal).rotation_days, 90);
    assert_eq!(cfg.reencryption, ReencryptionSettings { batch_size: 500, rows_per_second: Some(200) });
    assert!(cfg.monitoring_detectors);
    assert_eq!(
        (cfg.monitoring_brute_force_failures, cfg.monitoring_brute_force_window, cfg.monitoring_api_key_refusals),
        (10, Duration::from_secs(300), 50)
    );
    assert_eq!(cfg.monitoring_alert_severity_threshold, palisade_core::monitoring::Severity::High);
    assert_eq!(cfg.monitoring_alert_emails.iter().map(|e| e.as_str()).collect::<Vec<_>>(), ["security@example.com"]);
    assert_eq!(cfg.monitoring_alerts_per_hour, 20);

    // The encryption lines of the environment example load too (the rest of it holds placeholders).
    let start = docs.find("```sh\n").unwrap() + "```sh\n".len();
    let end = start + docs[start..].find("```").unwrap();
    let lines: Vec<(&str, &str)> = docs[start..end]
        .lines()
        .filter(|line| line.starts_with("PALISADE_ENCRYPTION_"))
        .map(|line| line.split_once('=').unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let cfg = ok(env_only(&lines));
    assert_eq!(cfg.encryption_algorithm, Algorithm::Aes256Gcm);
    assert_eq!(cfg.encryption.of(DataClassification::TopSecret).rotation_days, 30);
}

// ---------------------------------------------------------------- warnings

#[test]
fn warnings_flag_the_dev_key_plain_http_and_trusting_everyone() {
    let defaults = ok(Sources::default()).warnings();
    assert_eq!(defaults.len(), 1, "{defaults:?}");
    assert!(defaults[0].contains("development key"));

    let cfg = ok(env_only(&[
        ("PALISADE_MASTER_KEY", &key_of(9)),
        ("PALISADE_ISSUER", "http://id.example.com"),
        ("PALISADE_TRUSTED_PROXIES", "0.0.0.0/0"),
    ]));
    let warnings = cfg.warnings().join("\n");
    assert!(warnings.contains("plain http") && warnings.contains("0.0.0.0/0"), "{warnings}");
    assert!(!warnings.contains(&key_of(9)));
}

#[test]
fn passkeys_follow_the_issuer_or_their_own_settings() {
    // The default issuer is an IP address: browsers refuse those as relying party ids.
    assert_eq!(ok(env_only(&[])).webauthn(), None);
    let cfg = ok(env_only(&[("PALISADE_ISSUER", "https://Login.Example.com:8443/")]));
    let (rp_id, origin) = cfg.webauthn().unwrap();
    assert_eq!(rp_id, "login.example.com");
    assert_eq!(origin.as_str(), "https://login.example.com:8443/");

    let cfg = ok(env_only(&[
        ("PALISADE_ISSUER", "https://id.example.com"),
        ("PALISADE_WEBAUTHN_RP_ID", "example.com"),
        ("PALISADE_WEBAUTHN_ORIGIN", "https://app.example.com"),
    ]));
    assert_eq!(cfg.webauthn().unwrap().0, "example.com");
    assert_eq!(cfg.webauthn().unwrap().1.as_str(), "https://app.example.com/");
    assert_eq!(described(&cfg, "webauthn_origin"), "https://app.example.com");
    let cfg = ok(env_only(&[
        ("PALISADE_WEBAUTHN_RP_ID", "localhost"),
        ("PALISADE_WEBAUTHN_ORIGIN", "http://localhost:8080"),
    ]));
    assert_eq!(cfg.webauthn().unwrap().0, "localhost");

    for (rp_id, problem) in [
        ("127.0.0.1", "IP address"),
        ("https://example.com", "bare domain"),
        ("example.com:443", "bare domain"),
        ("Example.com", "lower-case"),
        ("exa mple.com", "lower-case"),
    ] {
        let message = err(env_only(&[("PALISADE_WEBAUTHN_RP_ID", rp_id)]));
        assert!(message.contains("webauthn_rp_id") && message.contains(problem), "{rp_id}: {message}");
    }
    for (origin, problem) in [
        ("http://example.com", "plain http"),
        ("https://example.com/login", "has a path"),
        ("ftp://example.com", "scheme"),
    ] {
        let message =
            err(env_only(&[("PALISADE_WEBAUTHN_RP_ID", "example.com"), ("PALISADE_WEBAUTHN_ORIGIN", origin)]));
        assert!(message.contains("webauthn_origin") && message.contains(problem), "{origin}: {message}");
    }
    // The origin's host must be the relying party id or a subdomain of it.
    let message = err(env_only(&[
        ("PALISADE_WEBAUTHN_RP_ID", "example.com"),
        ("PALISADE_WEBAUTHN_ORIGIN", "https://example.com.evil.net"),
    ]));
    assert!(
        message.contains("webauthn_origin") && message.contains("not the relying party id example.com"),
        "{message}"
    );
    let message =
        err(env_only(&[("PALISADE_ISSUER", "https://id.example.com"), ("PALISADE_WEBAUTHN_RP_ID", "other.org")]));
    assert!(message.contains("webauthn_rp_id") && message.contains("set webauthn_origin too"), "{message}");
}

// ---------------------------------------------------------------- compliance

/// The compliance settings `app::settings` hands to core.
fn compliance_of(cfg: &Config) -> palisade_core::compliance::ComplianceSettings {
    crate::app::settings(cfg).unwrap().compliance
}

/// The switches of the reports, with their standard.
const COMPLIANCE_SWITCHES: [(Setting, palisade_core::compliance::Standard); 5] = {
    use palisade_core::compliance::Standard;
    [
        (Setting::ComplianceGdprEnabled, Standard::Gdpr),
        (Setting::ComplianceHipaaEnabled, Standard::Hipaa),
        (Setting::CompliancePciDssEnabled, Standard::PciDss),
        (Setting::ComplianceSoxEnabled, Standard::Sox),
        (Setting::ComplianceIso27001Enabled, Standard::Iso27001),
    ]
};

/// The retention settings, in days.
const RETENTION_DAYS: [Setting; 4] = [
    Setting::ComplianceAuditRetentionDays,
    Setting::ComplianceLoginHistoryRetentionDays,
    Setting::ComplianceIncidentRetentionDays,
    Setting::ComplianceAlertDeliveryRetentionDays,
];

#[test]
fn the_compliance_defaults_are_the_core_defaults() {
    use palisade_core::compliance::{ComplianceSettings, report};
    let cfg = ok(Sources::default());
    let core = ComplianceSettings::default();
    assert_eq!(compliance_of(&cfg), core);
    // The table's texts (what --help and the docs show) are core's values.
    for (setting, standard) in COMPLIANCE_SWITCHES {
        let on = core.standards.contains(&standard);
        assert_eq!(setting.spec().default.describe(), on.to_string(), "{setting}");
        assert_eq!(described(&cfg, setting.key()), on.to_string(), "{setting}");
        assert_eq!(setting.key(), report::enabled_setting(standard), "core names the setting that turns it on");
        assert!(setting.spec().boolean && setting.alias().is_some_and(|a| a.starts_with("COMPLIANCE_")), "{setting}");
    }
    assert!(!cfg.compliance_pci_dss_enabled, "PCI DSS is off by default, as in the guide");
    let seconds = |d: time::Duration| d.whole_seconds().to_string();
    let days = |d: time::Duration| d.whole_days().to_string();
    for (setting, expected) in [
        (Setting::ComplianceDeletionDelay, seconds(core.deletion_delay)),
        (Setting::ComplianceConsentValidity, seconds(core.default_consent_validity)),
        (Setting::ComplianceErasureOnWithdrawal, core.erasure_on_withdrawal.join(",")),
        (Setting::ComplianceAuditRetentionDays, days(core.retention.audit)),
        (Setting::ComplianceLoginHistoryRetentionDays, days(core.retention.login_history)),
        (Setting::ComplianceIncidentRetentionDays, days(core.retention.incidents)),
        (Setting::ComplianceAlertDeliveryRetentionDays, days(core.retention.alert_deliveries)),
    ] {
        assert_eq!(setting.spec().default.describe(), expected, "{setting}");
        assert_eq!(described(&cfg, setting.key()), expected, "{setting}");
    }
    assert_eq!(described(&cfg, "compliance_deletion_delay"), "2592000", "the guide's 30 days");
    assert_eq!(described(&cfg, "compliance_audit_retention_days"), "2555");
    assert!(described(&cfg, "compliance_consent_validity_per_type").starts_with("(none"));
    assert!(core.consent_validity.is_empty());
    // Every compliance setting is above.
    let listed = Setting::ALL.into_iter().filter(|s| s.key().starts_with("compliance_")).count();
    assert_eq!(listed, COMPLIANCE_SWITCHES.len() + 4 + RETENTION_DAYS.len());
}

#[test]
fn compliance_settings_are_read_from_every_layer_and_the_guides_names() {
    use palisade_core::compliance::Standard;
    // The guide's names.
    let cfg = ok(env_only(&[
        ("COMPLIANCE_GDPR_ENABLED", "false"),
        ("COMPLIANCE_HIPAA_ENABLED", "no"),
        ("COMPLIANCE_PCI_DSS_ENABLED", "true"),
        ("COMPLIANCE_SOX_ENABLED", "off"),
        ("COMPLIANCE_ISO27001_ENABLED", "0"),
        ("COMPLIANCE_AUDIT_RETENTION_DAYS", "3650"),
    ]));
    let core = compliance_of(&cfg);
    assert_eq!(core.standards, [Standard::PciDss]);
    assert_eq!(core.retention.audit, time::Duration::days(3650));
    // The PALISADE_ names win within a layer.
    let cfg = ok(env_only(&[("COMPLIANCE_GDPR_ENABLED", "false"), ("PALISADE_COMPLIANCE_GDPR_ENABLED", "true")]));
    assert!(cfg.compliance_gdpr_enabled);

    // The file: booleans, numbers, arrays; the environment and flags above it.
    let (_dir, path) = toml_file(
        "compliance_pci_dss_enabled = true\ncompliance_sox_enabled = false\ncompliance_deletion_delay = 86400\n\
         compliance_consent_validity = 2592000\n\
         compliance_consent_validity_per_type = [\"marketing=7776000\", \"analytics=600\"]\n\
         compliance_erasure_on_withdrawal = [\"data_processing\", \"profiling\"]\n\
         compliance_audit_retention_days = 2190\ncompliance_login_history_retention_days = 90\n\
         compliance_incident_retention_days = 365\ncompliance_alert_delivery_retention_days = 30\n",
    );
    let cfg = ok(with_file(&path));
    let core = compliance_of(&cfg);
    assert_eq!(core.standards, [Standard::Gdpr, Standard::Hipaa, Standard::PciDss, Standard::Iso27001]);
    assert_eq!(core.deletion_delay, time::Duration::days(1));
    assert_eq!(core.default_consent_validity, time::Duration::days(30));
    assert_eq!(core.validity_of("marketing"), time::Duration::days(90));
    assert_eq!(core.validity_of("analytics"), time::Duration::minutes(10));
    assert_eq!(core.validity_of("data_processing"), time::Duration::days(30));
    assert_eq!(core.erasure_on_withdrawal, ["data_processing", "profiling"]);
    assert_eq!(core.retention.audit, time::Duration::days(2190));
    assert_eq!(core.retention.login_history, time::Duration::days(90));
    assert_eq!(core.retention.incidents, time::Duration::days(365));
    assert_eq!(core.retention.alert_deliveries, time::Duration::days(30));
    assert_eq!(described(&cfg, "compliance_consent_validity_per_type"), "analytics=600, marketing=7776000");
    assert_eq!(described(&cfg, "compliance_erasure_on_withdrawal"), "data_processing, profiling");

    let env = vars(&[
        ("PALISADE_COMPLIANCE_ERASURE_ON_WITHDRAWAL", "none"),
        ("PALISADE_COMPLIANCE_CONSENT_VALIDITY_PER_TYPE", ""),
        ("PALISADE_COMPLIANCE_DELETION_DELAY", "1"),
    ]);
    let cfg = ok(Sources { env: env.clone(), ..with_file(&path) });
    let core = compliance_of(&cfg);
    assert!(core.erasure_on_withdrawal.is_empty() && core.consent_validity.is_empty(), "none, and empty unsets");
    assert_eq!(core.deletion_delay, time::Duration::seconds(1));
    assert_eq!(described(&cfg, "compliance_erasure_on_withdrawal"), "none");
    assert_eq!(core.retention.login_history, time::Duration::days(90), "the file's");
    let flags = SettingFlags::default()
        .with(Setting::ComplianceAuditRetentionDays, "36500")
        .with(Setting::ComplianceGdprEnabled, "false");
    let cfg = ok(Sources { env, flags, ..with_file(&path) });
    let core = compliance_of(&cfg);
    assert_eq!(core.retention.audit, time::Duration::days(36_500));
    assert!(!core.standards.contains(&Standard::Gdpr));
    // The bounds are accepted.
    for (setting, min, max) in
        [(Setting::ComplianceDeletionDelay, 1, 315_360_000), (Setting::ComplianceConsentValidity, 60, 315_360_000)]
    {
        let rule = setting.spec().number.unwrap();
        assert_eq!((rule.unit, rule.min, rule.max), (Some(settings::Unit::Seconds), min, max), "{setting}");
        for bound in [min, max] {
            assert_eq!(
                described(&ok(env_only(&[(setting.env(), &bound.to_string())])), setting.key()),
                bound.to_string()
            );
        }
    }
    for setting in RETENTION_DAYS {
        let rule = setting.spec().number.unwrap();
        assert_eq!((rule.unit, rule.min, rule.max), (Some(settings::Unit::Days), 1, 36_500), "{setting}");
        for bound in ["1", "36500"] {
            assert_eq!(described(&ok(env_only(&[(setting.env(), bound)])), setting.key()), bound, "{setting}");
        }
    }
}

#[test]
fn bad_compliance_values_stop_start_up_naming_the_setting() {
    for (setting, _) in COMPLIANCE_SWITCHES {
        refused(setting.env(), "sometimes", setting.key(), &["is not true or false"]);
        let alias = setting.alias().unwrap();
        let message = err(env_only(&[(alias, "sometimes")]));
        assert!(
            message.starts_with(&format!("invalid {} from environment variable {alias}", setting.key())),
            "{message}"
        );
    }
    for setting in RETENTION_DAYS {
        let (var, key) = (setting.env(), setting.key());
        refused(var, "0", key, &["is below the minimum, 1 day", "a whole number of days from 1 to 36500"]);
        refused(var, "36501", key, &["is above the maximum, 36500 days"]);
        refused(var, "7y", key, &["is not a whole number of days"]);
        refused(var, "", key, &["is empty (this setting cannot be unset)"]);
    }
    let message = err(env_only(&[("COMPLIANCE_AUDIT_RETENTION_DAYS", "-5")]));
    assert!(
        message.starts_with(
            "invalid compliance_audit_retention_days from environment variable COMPLIANCE_AUDIT_RETENTION_DAYS"
        ),
        "{message}"
    );
    let (var, key) = ("PALISADE_COMPLIANCE_DELETION_DELAY", "compliance_deletion_delay");
    refused(var, "0", key, &["is below the minimum, 1 second", "1 second to 10 years"]);
    refused(var, "315360001", key, &["is above the maximum, 315360000 seconds"]);
    refused(var, "30d", key, &["is not a whole number of seconds"]);
    let (var, key) = ("PALISADE_COMPLIANCE_CONSENT_VALIDITY", "compliance_consent_validity");
    refused(var, "59", key, &["is below the minimum, 60 seconds"]);

    let (var, key) = ("PALISADE_COMPLIANCE_CONSENT_VALIDITY_PER_TYPE", "compliance_consent_validity_per_type");
    refused(var, "marketing", key, &["contains \"marketing\", which is not type=seconds", "type=seconds"]);
    refused(var, "Marketing=600", key, &["\"Marketing\", which is not a consent type"]);
    refused(var, "marketing=10", key, &["gives marketing a validity that is below the minimum, 60 seconds"]);
    refused(var, "marketing=1y", key, &["is not a whole number of seconds"]);
    refused(var, "marketing=600,marketing=900", key, &["names marketing twice"]);

    let (var, key) = ("PALISADE_COMPLIANCE_ERASURE_ON_WITHDRAWAL", "compliance_erasure_on_withdrawal");
    refused(var, "data processing", key, &["\"data processing\", which is not a consent type"]);
    refused(var, ",", key, &["names no consent type (write none for no type)"]);
    refused(var, "", key, &["is empty (this setting cannot be unset)"]);
    // From the file, the message names the key.
    let (_dir, path) = toml_file("compliance_incident_retention_days = 0\n");
    let message = err(with_file(&path));
    assert!(
        message.starts_with("invalid compliance_incident_retention_days from `compliance_incident_retention_days` in "),
        "{message}"
    );
}

#[test]
fn the_oauth_settings_default_to_pkce_and_ten_minute_codes_and_refuse_longer() {
    let cfg = ok(env_only(&[]));
    assert!(cfg.oauth2_require_pkce);
    assert_eq!(cfg.oauth2_code_ttl, Duration::from_secs(600));
    assert_eq!(
        (described(&cfg, "oauth2_require_pkce"), described(&cfg, "oauth2_code_ttl")),
        ("true".into(), "600".into())
    );
    let cfg = ok(env_only(&[("PALISADE_OAUTH2_REQUIRE_PKCE", "off"), ("PALISADE_OAUTH2_CODE_TTL", "60")]));
    assert!(!cfg.oauth2_require_pkce);
    assert_eq!(cfg.oauth2_code_ttl, Duration::from_secs(60));
    let (var, key) = ("PALISADE_OAUTH2_CODE_TTL", "oauth2_code_ttl");
    // RFC 6749 §4.1.2 and ASVS V10.4.3: at most ten minutes.
    refused(var, "601", key, &["is above the maximum, 600 seconds"]);
    refused(var, "9", key, &["is below the minimum, 10 seconds"]);
    refused("PALISADE_OAUTH2_REQUIRE_PKCE", "maybe", "oauth2_require_pkce", &["true or false"]);
    // jwks_uri fetches stay on public addresses unless an operator allows private ones.
    assert!(!ok(env_only(&[])).oauth2_allow_private_jwks_uri);
    let cfg = ok(env_only(&[("PALISADE_OAUTH2_ALLOW_PRIVATE_JWKS_URI", "yes")]));
    assert!(cfg.oauth2_allow_private_jwks_uri);
    assert_eq!(described(&cfg, "oauth2_allow_private_jwks_uri"), "true");
    refused("PALISADE_OAUTH2_ALLOW_PRIVATE_JWKS_URI", "sometimes", "oauth2_allow_private_jwks_uri", &["true or false"]);
    assert_eq!(ok(env_only(&[])).oauth2_pending_per_ip, 300);
    assert_eq!(ok(env_only(&[("PALISADE_OAUTH2_PENDING_PER_IP", "5000")])).oauth2_pending_per_ip, 5000);
    refused("PALISADE_OAUTH2_PENDING_PER_IP", "9", "oauth2_pending_per_ip", &["is below the minimum, 10"]);
}
