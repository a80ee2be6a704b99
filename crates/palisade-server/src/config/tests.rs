//! Unit tests of the configuration: layering, aliases, the unknown-name rules, every parser, and
//! that no secret escapes through errors, `Debug` or `describe()`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use clap::{Args as _, FromArgMatches as _};
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
fn a_planned_file_key_says_it_is_not_supported_yet() {
    let (_dir, path) = toml_file("mfa_required = \"true\"\n");
    let message = err(with_file(&path));
    assert!(message.contains("`mfa_required`") && message.contains("not supported"), "{message}");
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

#[test]
fn contract_settings_not_built_yet_are_refused_rather_than_ignored() {
    for name in ["PALISADE_JWT_ALGORITHM", "JWT_ALGORITHM", "SECURITY_MFA_REQUIRED", "HSM_PIN"] {
        let message = err(env_only(&[(name, "x")]));
        assert!(message.contains(name) && message.contains("not support"), "{message}");
    }
    let message = err(env_only(&[("JWT_SECRET_KEY", SECRET_PW)]));
    assert!(!message.contains(SECRET_PW), "{message}");
    // Empty means "not asking for anything": fine.
    ok(env_only(&[("SECURITY_MFA_REQUIRED", "")]));
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
    for setting in Setting::ALL {
        let spec = setting.spec();
        assert!(help.contains(&format!("--{}", spec.flag)), "{help}");
        assert!(help.contains(spec.env), "{help}");
        if let Some(alias) = spec.alias {
            assert!(help.contains(alias), "{help}");
        }
        assert!(help.contains(spec.default.describe()), "{help}");
    }
    let long = cmd.render_long_help().to_string();
    assert!(long.contains("openssl rand -base64 32") && long.contains("visible"), "{long}");
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
            assert!(!name.ends_with("_PORT") && !name.contains("_PORT_") && !name.contains("_SERVICE_"), "{name}");
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
