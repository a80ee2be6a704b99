//! The `palisade` binary as an operator meets it: help, configuration errors, diagnostics, audit
//! verification, health and a graceful stop on SIGTERM. Each test runs the real binary in its own
//! temporary directory.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// These tests poll a child process from synchronous code; blocking the test thread is the point.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod clients;
mod compliance;
mod reencryption;

const MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

fn palisade(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.current_dir(dir)
        .env_remove("REDIS_URL")
        .env_remove("ENCRYPTION_KEY")
        .env_remove("PALISADE_REDIS_URL")
        .env("PALISADE_DATA_DIR", dir)
        .env("PALISADE_DATABASE_URL", format!("sqlite://{}/palisade.db", dir.display()))
        .env("PALISADE_MASTER_KEY", MASTER_KEY)
        .env("PALISADE_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

#[test]
fn serve_help_lists_every_setting_with_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (output, stdout, _) = run(palisade(dir.path()).args(["serve", "--help"]));
    assert!(output.status.success());
    for name in [
        "PALISADE_BIND",
        "PALISADE_ISSUER",
        "PALISADE_DATABASE_URL",
        "PALISADE_REDIS_URL",
        "REDIS_URL",
        "PALISADE_MASTER_KEY",
        "ENCRYPTION_KEY",
        "PALISADE_DATA_DIR",
        "PALISADE_TRUSTED_PROXIES",
        "--config",
    ] {
        assert!(stdout.contains(name), "serve --help does not mention {name}:\n{stdout}");
    }
    for command in
        [&["migrate", "--help"][..], &["diagnose", "--help"], &["health", "--help"], &["audit", "verify", "--help"]]
    {
        assert!(run(palisade(dir.path()).args(command)).0.status.success(), "{command:?}");
    }
}

#[test]
fn a_bad_value_stops_start_up_naming_the_setting_and_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (output, _, stderr) = run(palisade(dir.path()).args(["serve"]).env("PALISADE_BIND", "not-an-address"));
    assert!(!output.status.success());
    assert!(stderr.contains("PALISADE_BIND"), "{stderr}");

    let secret = "c2hvcnQtYnV0LXNlY3JldA==";
    let (output, _, stderr) = run(palisade(dir.path()).args(["serve"]).env("PALISADE_MASTER_KEY", secret));
    assert!(!output.status.success());
    assert!(stderr.contains("PALISADE_MASTER_KEY"), "{stderr}");
    assert!(!stderr.contains(secret), "the secret was echoed: {stderr}");

    std::fs::write(dir.path().join("palisade.toml"), "bind = \"127.0.0.1:0\"\nmaster_kee = \"x\"\n").unwrap();
    let (output, _, stderr) = run(palisade(dir.path()).args(["serve"]));
    assert!(!output.status.success());
    assert!(stderr.contains("master_kee"), "an unknown key in the file is named: {stderr}");
}

#[test]
fn diagnose_prints_a_table_and_passes_on_a_fresh_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let (output, stdout, stderr) = run(palisade(dir.path()).arg("diagnose"));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for check in ["durable store", "hot store", "encryption", "signing keys", "audit chain"] {
        let line = stdout.lines().find(|l| l.starts_with(check)).unwrap_or_else(|| panic!("no {check} row:\n{stdout}"));
        assert!(line.contains(" OK "), "{line}");
    }
}

#[test]
fn diagnose_fails_with_exit_1_when_a_store_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (output, stdout, _) =
        run(palisade(dir.path()).arg("diagnose").env("PALISADE_REDIS_URL", format!("redis://127.0.0.1:{port}")));
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
}

#[tokio::test]
async fn audit_verify_names_the_first_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        assert!(run(palisade(dir.path()).arg("diagnose")).0.status.success());
    }
    let (output, stdout, _) = run(palisade(dir.path()).args(["audit", "verify"]));
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("intact"), "{stdout}");

    let url = format!("sqlite://{}/palisade.db", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let edited = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2").execute(&pool).await.unwrap();
    assert_eq!(edited.rows_affected(), 1);
    pool.close().await;

    let (output, stdout, _) = run(palisade(dir.path()).args(["audit", "verify"]));
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("BROKEN at record 2"), "{stdout}");
}

#[test]
fn migrate_applies_once_then_reports_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let (output, stdout, stderr) = run(palisade(dir.path()).arg("migrate"));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("applied"), "{stdout}");
    let (output, stdout, _) = run(palisade(dir.path()).arg("migrate"));
    assert!(output.status.success());
    assert!(stdout.contains("up to date"), "{stdout}");
}

#[test]
fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = palisade(dir.path())
        .arg("serve")
        .env("PALISADE_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "the server did not start listening within 5 s");

    let (output, stdout, stderr) = run(palisade(dir.path()).args(["health", "--url", &url]));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("\"overall\": \"HEALTHY\""), "{stdout}");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the server did not stop within 10 s of SIGTERM")
    });
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");

    let (output, _, _) = run(palisade(dir.path()).args(["health", "--url", &url]));
    assert_eq!(output.status.code(), Some(1), "health fails when nothing answers");
}

#[test]
fn users_are_created_listed_locked_and_unlocked_from_the_cli() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let create = |name: &str, password: &str| {
        let mut child = palisade(dir.path())
            .args(["user", "create", name, "--email", &format!("{name}@example.com")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let created = create("Zoe", "correct-Horse-battery-9-staple");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).starts_with("created user "));

    let weak = create("yann", "password");
    assert!(!weak.status.success());
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(stderr.contains("common_password") && stderr.contains("min_length"), "{stderr}");

    let (output, stdout, _) = run(palisade(dir.path()).args(["user", "list", "--json"]));
    assert!(output.status.success());
    let users: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(users.len(), 1, "the refused user was not created: {stdout}");
    assert_eq!(users[0]["username"], "zoe");
    assert_eq!(users[0]["locked"], false);

    let (output, stdout, _) = run(palisade(dir.path()).args(["user", "lock", "ZOE"]));
    assert!(output.status.success(), "{stdout}");
    let (_, stdout, _) = run(palisade(dir.path()).args(["user", "list", "--json"]));
    assert!(stdout.contains("\"locked\":true"), "{stdout}");
    let (output, _, _) = run(palisade(dir.path()).args(["user", "unlock", "zoe"]));
    assert!(output.status.success());
    let (_, stdout, _) = run(palisade(dir.path()).args(["user", "list", "--json"]));
    assert!(stdout.contains("\"locked\":false"), "{stdout}");

    let (output, stdout, _) = run(palisade(dir.path()).args(["user", "grant-admin", "zoe"]));
    assert!(output.status.success(), "{stdout}");
    let (_, stdout, _) = run(palisade(dir.path()).args(["user", "list", "--json"]));
    assert!(stdout.contains("\"admin\":true"), "{stdout}");
    let (output, _, _) = run(palisade(dir.path()).args(["user", "revoke-admin", "zoe"]));
    assert!(output.status.success());
    let (_, stdout, _) = run(palisade(dir.path()).args(["user", "list", "--json"]));
    assert!(stdout.contains("\"admin\":false"), "{stdout}");

    let (output, _, stderr) = run(palisade(dir.path()).args(["user", "lock", "nobody"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("no such user"), "{stderr}");
}

#[test]
fn api_keys_are_created_listed_and_revoked_from_the_cli() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = palisade(dir.path())
        .args(["user", "create", "ops"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"correct-Horse-battery-9-staple\n").unwrap();
    assert!(child.wait().unwrap().success());

    let (output, stdout, stderr) = run(palisade(dir.path()).args([
        "apikey",
        "create",
        "--user",
        "ops",
        "--name",
        "ci",
        "--scope",
        "read:data",
        "--per-minute",
        "60",
        "--ip",
        "10.0.0.0/8",
    ]));
    assert!(output.status.success(), "{stderr}");
    let key = stdout.trim();
    assert!(key.starts_with("spa_"), "{stdout}");

    let (_, stdout, _) = run(palisade(dir.path()).args(["apikey", "list", "--user", "ops"]));
    let listed: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(listed["name"], "ci");
    assert_eq!(listed["ip_whitelist"], serde_json::json!(["10.0.0.0/8"]));
    assert_eq!(listed["rate_limits"]["requests_per_minute"], 60);
    assert!(listed["revoked_at"].is_null());
    assert!(!stdout.contains(key.rsplit('_').next().unwrap()), "the secret is never listed");

    let id = listed["api_key_id"].as_str().unwrap();
    let (output, _, _) = run(palisade(dir.path()).args(["apikey", "revoke", id]));
    assert!(output.status.success());
    let (_, stdout, _) = run(palisade(dir.path()).args(["apikey", "list"]));
    assert!(!stdout.contains("\"revoked_at\":null"), "{stdout}");
    let (output, _, stderr) = run(palisade(dir.path()).args(["apikey", "revoke", id]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("no live API key"), "{stderr}");
}

#[test]
fn keys_are_listed_and_rotated_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (output, stdout, stderr) = run(palisade(dir.path()).args(["keys", "status"]));
    assert!(output.status.success(), "{stderr}");
    let rows = |text: &str, kind: &str| text.lines().filter(|l| l.starts_with(kind)).count();
    assert_eq!(rows(&stdout, "signing"), 1, "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("signing") && l.contains(" signing ")), "{stdout}");
    assert_eq!(rows(&stdout, "data"), 1);
    assert_eq!(rows(&stdout, "audit"), 1);

    let (output, stdout, _) = run(palisade(dir.path()).args(["keys", "rotate"]));
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("rotated the signing key"), "{stdout}");
    let (_, stdout, _) = run(palisade(dir.path()).args(["keys", "status"]));
    assert_eq!(rows(&stdout, "signing"), 2, "{stdout}");
    assert!(stdout.contains(" published "), "the new key waits before it signs: {stdout}");

    let (output, stdout, _) = run(palisade(dir.path()).args(["keys", "rotate", "--key", "data"]));
    assert!(output.status.success());
    assert!(stdout.contains("version 2"), "{stdout}");
    let (_, stdout, _) = run(palisade(dir.path()).args(["keys", "status"]));
    assert_eq!(rows(&stdout, "data"), 2);

    // A classification's key: rotating a family that has no key yet makes its version 1.
    let (output, stdout, _) =
        run(palisade(dir.path()).args(["keys", "rotate", "--key", "data", "--class", "restricted"]));
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("RESTRICTED data key version"), "{stdout}");
    let (_, stdout, _) = run(palisade(dir.path()).args(["keys", "status"]));
    assert_eq!(rows(&stdout, "class:restricted"), 1, "{stdout}");
    assert_eq!(rows(&stdout, "data"), 2, "Palisade's own data key did not move: {stdout}");
    let (output, _, stderr) =
        run(palisade(dir.path()).args(["keys", "rotate", "--key", "data", "--class", "SECRETISH"]));
    assert!(!output.status.success());
    assert!(stderr.contains("not a classification"), "{stderr}");
    let (output, _, stderr) = run(palisade(dir.path()).args(["keys", "rotate", "--key", "audit", "--class", "PII"]));
    assert!(!output.status.success());
    assert!(stderr.contains("--class goes with --key data"), "{stderr}");
    let (output, stdout, _) = run(palisade(dir.path()).args(["audit", "verify"]));
    assert!(output.status.success(), "rotations are audited and the chain holds: {stdout}");
}

/// Sets up and confirms TOTP for a new user `alice` in the database of `dir`, through the library
/// (as the HTTP API would); returns the secret.
fn alice_with_totp(dir: &Path) -> palisade_core::mfa::totp::TotpSecret {
    use palisade_server::config::{Config, Sources};
    use secrecy::SecretString;
    let env = std::collections::HashMap::from([
        ("PALISADE_DATA_DIR".to_owned(), dir.display().to_string()),
        ("PALISADE_DATABASE_URL".to_owned(), format!("sqlite://{}/palisade.db", dir.display())),
        ("PALISADE_MASTER_KEY".to_owned(), MASTER_KEY.to_owned()),
    ]);
    let config = Config::load_from(Sources { env, ..Sources::default() }).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let clock: std::sync::Arc<dyn palisade_core::clock::Clock> =
            std::sync::Arc::new(palisade_core::clock::SystemClock);
        let palisade = palisade_server::bootstrap(&config, clock.clone()).await.unwrap();
        let meta = palisade_core::audit::RequestMeta::default();
        let password = "correct-Horse-battery-9-staple";
        let input = palisade_core::auth::RegisterInput {
            username: "alice".into(),
            password: SecretString::from(password),
            email: None,
        };
        palisade.auth().register(input, "test", &meta).await.unwrap();
        let outcome = palisade.auth().login("alice", SecretString::from(password), None, &meta).await.unwrap();
        let palisade_core::auth::LoginOutcome::Tokens(pair) = outcome else { panic!("no factor yet") };
        let principal = palisade.auth().authenticate(&pair.access_token, &meta).await.unwrap();
        let setup = palisade.mfa().totp_setup(&principal, &meta).await.unwrap();
        let secret = palisade_core::mfa::totp::TotpSecret::from_base32(&setup.secret).unwrap();
        let now = u64::try_from(clock.now().unix_timestamp()).unwrap();
        palisade.mfa().totp_confirm(&principal, &secret.code_at(now).unwrap(), &meta).await.unwrap();
        secret
    })
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> (Output, String) {
    use std::io::Write as _;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

#[test]
fn diagnose_totp_tells_a_right_code_from_a_drifting_clock_and_mfa_reset_removes_the_factor() {
    let dir = tempfile::tempdir().unwrap();
    let secret = alice_with_totp(dir.path());
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();

    let (output, stdout) = run_with_stdin(
        palisade(dir.path()).args(["diagnose", "--totp", "alice"]),
        &(secret.code_at(now).unwrap() + "\n"),
    );
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("server time") && stdout.contains("TOTP step") && stdout.contains("confirmed"), "{stdout}");
    assert!(stdout.contains("result       OK"), "{stdout}");

    // A phone whose clock runs two minutes ahead.
    let ahead = secret.code_at(now + 120).unwrap();
    let (output, stdout) = run_with_stdin(palisade(dir.path()).args(["diagnose", "--totp", "alice"]), &(ahead + "\n"));
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("WRONG CLOCK") && stdout.contains("ahead of"), "{stdout}");

    let (output, stdout) = run_with_stdin(palisade(dir.path()).args(["diagnose", "--totp", "alice"]), "12ab56\n");
    assert!(!output.status.success());
    assert!(stdout.contains("not a code"), "{stdout}");

    let (output, stdout, _) = run(palisade(dir.path()).args(["user", "mfa-reset", "alice"]));
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("removed 1 second factor"), "{stdout}");
    let (output, stdout) = run_with_stdin(palisade(dir.path()).args(["diagnose", "--totp", "alice"]), "123456\n");
    assert!(!output.status.success());
    assert!(stdout.contains("has no TOTP factor"), "{stdout}");
    let (output, _, stderr) = run(palisade(dir.path()).args(["user", "mfa-reset", "nobody"]));
    assert!(!output.status.success());
    assert!(stderr.contains("no such user"), "{stderr}");
}

// ------------------------------------------------------------------------------------ HSM
// Against a real SoftHSM2 token that each test initialises in its own directory. SoftHSM reads
// SOFTHSM2_CONF when the library is initialised, so it is set on the child processes only.

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const HSM_PIN: &str = "4711-user-pin";

/// A fresh token labelled `palisade` under `dir`, and the config file that points at it; `None`
/// (after saying so) when softhsm2 is not installed, except under CI=true where that fails.
fn softhsm_token(dir: &Path) -> Option<std::path::PathBuf> {
    let installed = Path::new(SOFTHSM_MODULE).exists()
        && Command::new("softhsm2-util").arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "softhsm2 is not installed ({SOFTHSM_MODULE}, softhsm2-util); .ci/run installs it"
        );
        eprintln!("skipped: softhsm2 is not installed (apt-get install -y softhsm2)");
        return None;
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )
    .unwrap();
    let (output, stdout, stderr) = run(Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "palisade", "--so-pin", "12345678", "--pin", HSM_PIN])
        .env("SOFTHSM2_CONF", &conf));
    assert!(output.status.success(), "softhsm2-util: {stdout}{stderr}");
    Some(conf)
}

/// `palisade` with the HSM as its master key (and no PALISADE_MASTER_KEY), through the guide's names.
fn palisade_hsm(dir: &Path, conf: &Path) -> Command {
    let mut cmd = palisade(dir);
    cmd.env_remove("PALISADE_MASTER_KEY")
        .env("SOFTHSM2_CONF", conf)
        .env("PALISADE_HSM_MODULE", SOFTHSM_MODULE)
        .env("HSM_SLOT", "palisade")
        .env("HSM_PIN", HSM_PIN)
        .env("HSM_PROVIDER", "SoftHSM");
    cmd
}

#[test]
fn hsm_init_generates_a_non_extractable_key_once_and_status_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(conf) = softhsm_token(dir.path()) else { return };

    let (output, stdout, _) = run(palisade_hsm(dir.path(), &conf).args(["hsm", "status"]));
    assert_eq!(output.status.code(), Some(1), "no key yet: {stdout}");
    assert!(stdout.contains("palisade hsm init"), "{stdout}");

    let (output, stdout, stderr) = run(palisade_hsm(dir.path(), &conf).args(["hsm", "init"]));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("generated the master key `palisade-master`"), "{stdout}");
    assert!(stdout.contains("provider id: hsm:palisade:palisade-master"), "{stdout}");
    let (output, stdout, _) = run(palisade_hsm(dir.path(), &conf).args(["hsm", "init"]));
    assert!(output.status.success());
    assert!(stdout.contains("already in token `palisade`"), "init is idempotent: {stdout}");

    let (output, stdout, stderr) = run(palisade_hsm(dir.path(), &conf).args(["hsm", "status"]));
    assert!(output.status.success(), "{stdout}{stderr}");
    for expected in [SOFTHSM_MODULE, "SoftHSM", "token         palisade", "hsm:palisade:palisade-master"] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }
    // C_GetAttributeValue(CKA_VALUE) is refused, and the key is sensitive and never extractable.
    assert!(stdout.contains("non-extractable (the token refuses to read CKA_VALUE)"), "{stdout}");
    assert!(stdout.contains("round trip    OK"), "{stdout}");
    assert!(!stdout.contains(HSM_PIN) && !stderr.contains(HSM_PIN));
}

#[tokio::test]
async fn a_server_on_the_hsm_wraps_its_data_keys_there_and_decrypts_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let Some(conf) = softhsm_token(dir.path()) else { return };
    assert!(run(palisade_hsm(dir.path(), &conf).args(["hsm", "init"])).0.status.success());

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = palisade_hsm(dir.path(), &conf)
        .arg("serve")
        .env("PALISADE_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = (0..200).any(|_| {
        let connected = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if !connected {
            std::thread::sleep(Duration::from_millis(50));
        }
        connected
    });
    let health = run(palisade(dir.path()).args(["health", "--url", &url]));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let stopped = child.wait().unwrap();
    assert!(up, "the server on the HSM did not start listening within 10 s");
    assert!(health.0.status.success() && health.1.contains("\"overall\": \"HEALTHY\""), "{}", health.1);
    assert!(stopped.success(), "{stopped:?}");

    // Every data key the server made is wrapped by the HSM's key.
    let db = format!("sqlite://{}/palisade.db", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let providers: Vec<(String, String)> =
        sqlx::query_as("SELECT purpose, provider FROM data_keys").fetch_all(&pool).await.unwrap();
    assert!(providers.len() >= 2, "{providers:?}");
    assert!(providers.iter().all(|(_, p)| p == "hsm:palisade:palisade-master"), "{providers:?}");
    pool.close().await;

    // A restart: the data and audit keys are unwrapped by the HSM, then the signing key (sealed
    // under the data key) decrypts and signs, and the audit chain (MACed with the audit key) verifies.
    let (output, stdout, stderr) = run(palisade_hsm(dir.path(), &conf).arg("diagnose"));
    assert!(output.status.success(), "{stdout}{stderr}");
    for check in ["encryption", "signing keys", "audit chain"] {
        let line = stdout.lines().find(|l| l.starts_with(check)).unwrap_or_else(|| panic!("no {check}:\n{stdout}"));
        assert!(line.contains(" OK "), "{line}");
    }
    assert!(!stdout.contains(" 0 records verified"), "the server's start was audited: {stdout}");

    // A new data key version is wrapped by the HSM too.
    let (output, stdout, _) = run(palisade_hsm(dir.path(), &conf).args(["keys", "rotate", "--key", "data"]));
    assert!(output.status.success(), "{stdout}");
    let (output, stdout, _) = run(palisade_hsm(dir.path(), &conf).args(["audit", "verify"]));
    assert!(output.status.success() && stdout.contains("intact"), "{stdout}");

    // The same database without the HSM cannot unwrap its keys: the master key really is in the token.
    let (output, _, stderr) = run(palisade(dir.path()).arg("keys").arg("status"));
    assert!(!output.status.success());
    assert!(stderr.contains("hsm:palisade:palisade-master"), "{stderr}");
}

#[test]
fn a_wrong_hsm_pin_stops_start_up_with_a_clear_message_that_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(conf) = softhsm_token(dir.path()) else { return };
    assert!(run(palisade_hsm(dir.path(), &conf).args(["hsm", "init"])).0.status.success());
    let wrong = "9876-not-the-pin";
    let (output, stdout, stderr) = run(palisade_hsm(dir.path(), &conf).arg("serve").env("HSM_PIN", wrong));
    assert!(!output.status.success());
    assert!(stderr.contains("refused the PIN (hsm_pin)"), "{stderr}");
    assert!(!stderr.contains(wrong) && !stdout.contains(wrong), "the PIN was echoed: {stderr}");

    // A module without a PIN is refused by the configuration, naming both settings.
    let (output, _, stderr) =
        run(palisade_hsm(dir.path(), &conf).arg("serve").env_remove("HSM_PIN").env("PALISADE_BIND", "127.0.0.1:0"));
    assert!(!output.status.success());
    assert!(stderr.contains("hsm_pin") && stderr.contains("hsm_module"), "{stderr}");
}
