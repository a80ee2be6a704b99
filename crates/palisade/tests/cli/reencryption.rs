//! The re-encryption of Palisade's own sealed data after the `data` key rotates, end to end: a
//! server killed in the middle of the job and started again, `palisade keys rotate --key data
//! --reencrypt`, and instances racing for one job over one SQLite file.
//!
//! The stores are seeded through the library (users and second factors put straight into the
//! durable store, sealed by the keyring as the MFA service seals them): a login per user through
//! the HTTP API would take minutes for the thousands of rows that make a job last a few seconds.

use std::collections::HashMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use palisade_core::Palisade;
use palisade_core::clock::{Clock, SystemClock};
use palisade_core::crypto::reencrypt::{
    JobState, Phase, ReencryptionJob, ReencryptionSettings, Reencryptor, RunOutcome,
};
use palisade_core::crypto::{Envelope, KeyPurpose};
use palisade_core::mfa::{FactorKind, FactorRecord, factor_context};
use palisade_core::store::HotKey;
use palisade_core::user::{User, UserId, UserInsert, Username};
use serde_json::{Value, json};

use super::{MASTER_KEY, palisade, run, run_with_stdin};

const PASSWORD: &str = "correct-Horse-battery-9-staple";

// ------------------------------------------------------------------------------------ helpers

/// The configuration `palisade(dir)` gives the binary, plus `extra` variables.
fn config(dir: &Path, extra: &[(&str, &str)]) -> palisade_server::config::Config {
    use palisade_server::config::{Config, Sources};
    let mut env = HashMap::from([
        ("PALISADE_DATA_DIR".to_owned(), dir.display().to_string()),
        ("PALISADE_DATABASE_URL".to_owned(), format!("sqlite://{}/palisade.db", dir.display())),
        ("PALISADE_MASTER_KEY".to_owned(), MASTER_KEY.to_owned()),
    ]);
    env.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
    Config::load_from(Sources { env, ..Sources::default() }).unwrap()
}

/// Palisade over the data of `dir`, opened as the CLI opens it.
async fn open(dir: &Path, extra: &[(&str, &str)]) -> Arc<Palisade> {
    open_with_clock(dir, extra, Arc::new(SystemClock)).await
}

async fn open_with_clock(dir: &Path, extra: &[(&str, &str)], clock: Arc<dyn Clock>) -> Arc<Palisade> {
    palisade_server::bootstrap(&config(dir, extra), clock).await.unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

/// `users` users, each with a pending TOTP, SMS and e-mail factor sealed under the data key of the
/// moment; returns each factor's secret by factor id.
async fn seed_factors(palisade: &Palisade, users: usize) -> HashMap<uuid::Uuid, Vec<u8>> {
    let store = palisade.durable_store();
    let now = palisade.clock().now();
    let mut secrets = HashMap::new();
    for n in 0..users {
        let user = User {
            id: UserId::generate(),
            username: Username::parse(&format!("seeded{n:05}")).unwrap(),
            email: None,
            // Never checked: these users do not log in.
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2VlZGVkLXNhbHQ$c2VlZGVkLWhhc2gtbm90LWEtcmVhbC1vbmU".into(),
            password_changed_at: now,
            created_at: now,
            locked: false,
            admin: false,
        };
        assert_eq!(store.insert_user(&user).await.unwrap(), UserInsert::Inserted);
        for kind in [FactorKind::Totp, FactorKind::Sms, FactorKind::Email] {
            let id = uuid::Uuid::new_v4();
            let secret = format!("{}:{n}:{}", kind.as_str(), uuid::Uuid::new_v4()).into_bytes();
            let sealed = palisade.keyring().encrypt(&secret, &factor_context(user.id, kind, id)).await.unwrap();
            let factor = FactorRecord {
                id,
                user_id: user.id,
                kind,
                sealed: sealed.to_compact(),
                created_at: now,
                confirmed_at: None,
            };
            assert!(store.put_pending_factor(&factor).await.unwrap());
            secrets.insert(id, secret);
        }
    }
    secrets
}

/// Every sealed row of the two tables the job visits, with the data-key version its envelope names.
struct Sealed {
    factors: Vec<(FactorRecord, Envelope)>,
    signing_keys: Vec<(String, u32)>,
}

impl Sealed {
    async fn read(palisade: &Palisade) -> Self {
        let store = palisade.durable_store();
        let mut factors = Vec::new();
        let mut after = None;
        loop {
            let page = store.factor_page(after, 500).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for factor in page {
                let envelope = Envelope::parse_compact(&factor.sealed).unwrap();
                factors.push((factor, envelope));
            }
        }
        let signing_keys = store
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|key| (key.kid, Envelope::parse_compact(&key.private_key).unwrap().key_version))
            .collect();
        Self { factors, signing_keys }
    }

    fn rows(&self) -> usize {
        self.factors.len() + self.signing_keys.len()
    }

    /// Rows whose envelope names data-key `version`.
    fn under(&self, version: u32) -> usize {
        self.factors.iter().filter(|(_, e)| e.key_version == version).count()
            + self.signing_keys.iter().filter(|(_, v)| *v == version).count()
    }

    /// Every factor decrypts, under the context it was sealed with, to the secret seeded.
    async fn assert_secrets_intact(&self, palisade: &Palisade, secrets: &HashMap<uuid::Uuid, Vec<u8>>) {
        assert_eq!(self.factors.len(), secrets.len(), "no factor was lost or added");
        for (factor, envelope) in &self.factors {
            let context = factor_context(factor.user_id, factor.kind, factor.id);
            let plain = palisade.keyring().decrypt(envelope, &context).await.unwrap();
            assert_eq!(Some(&plain[..]), secrets.get(&factor.id).map(Vec::as_slice), "factor {}", factor.id);
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap()
}

async fn latest_job(palisade: &Palisade) -> ReencryptionJob {
    palisade.reencryptor().latest().await.unwrap().expect("a re-encryption job")
}

async fn job_rows(dir: &Path) -> i64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}/palisade.db", dir.display())).await.unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM reencryption_jobs").fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

/// The `key.reencrypted` audit records' details, in chain order.
async fn reencrypted_records(palisade: &Palisade) -> Vec<(Option<String>, Value)> {
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let records = palisade.durable_store().audit_records(after, 500).await.unwrap();
        let Some(last) = records.last() else { break };
        after = last.seq;
        for record in records.into_iter().filter(|r| r.kind == "key.reencrypted") {
            found.push((record.actor, serde_json::from_str(&record.details).unwrap()));
        }
    }
    found
}

/// Polls `probe` every 50 ms until it answers, for at most `limit`.
fn poll<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// One HTTP/1.1 exchange with the server on `port` (this crate has no HTTP client that knows the
/// admin routes): the status and the body as JSON (`null` when it is not JSON).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, Value) {
    use std::fmt::Write as _;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        write!(request, "{name}: {value}\r\n").unwrap();
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, payload) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let payload = if chunked { dechunk(payload) } else { payload.to_owned() };
    (status, serde_json::from_str(&payload).unwrap_or(Value::Null))
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// `palisade serve` on a free port, with its log in `dir`; killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, name: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join(format!("{name}.log"));
        let mut command = palisade(dir);
        command
            .arg("serve")
            .env("PALISADE_BIND", format!("127.0.0.1:{port}"))
            .env("PALISADE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut server = Self { child: command.spawn().unwrap(), port, log };
        poll(Duration::from_secs(30), "the server listening", || {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the server stopped ({status}):\n{}", server.log());
            }
            std::net::TcpStream::connect(("127.0.0.1", server.port)).is_ok().then_some(())
        });
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str, api_key: &str) -> (u16, Value) {
        http(self.port, "GET", path, &[("x-api-key", api_key)], None)
    }

    /// SIGKILL: no shutdown, no lease released, no last checkpoint.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and a clean exit.
    fn stop(mut self) {
        let killed = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let status = wait_timeout(&mut self.child, Duration::from_secs(15));
        assert!(status.is_some_and(|s| s.success()), "no clean stop on SIGTERM: {status:?}\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An administrator `ops` (password [`PASSWORD`]) and an API key with the `admin` scope, made
/// with the CLI as an operator would.
fn admin_api_key(dir: &Path) -> String {
    let (output, _) = run_with_stdin(palisade(dir).args(["user", "create", "ops"]), &format!("{PASSWORD}\n"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(run(palisade(dir).args(["user", "grant-admin", "ops"])).0.status.success());
    let (output, stdout, stderr) =
        run(palisade(dir).args(["apikey", "create", "--user", "ops", "--name", "rotation", "--scope", "admin"]));
    assert!(output.status.success(), "{stderr}");
    stdout.trim().to_owned()
}

fn as_u64(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not a count: {value}"))
}

// ------------------------------------------------------------------------------------ server

#[test]
fn killing_the_server_mid_reencryption_loses_nothing_and_a_restart_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let (secrets, before) = runtime.block_on(async {
        let palisade = open(dir.path(), &[]).await;
        let secrets = seed_factors(&palisade, 500).await;
        (secrets, Sealed::read(&palisade).await)
    });
    assert_eq!(secrets.len(), 1500);
    assert!(!before.signing_keys.is_empty(), "opening the store made the signing key");
    // Every row the job has to move: all of them are under version 1 now.
    let stale = before.under(1);
    assert_eq!(stale, before.rows());
    let api_key = admin_api_key(dir.path());

    // 25 rows a batch at 300 rows/s: about 5 s for the whole job.
    let pacing = [("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "25"), ("PALISADE_ENCRYPTION_REENCRYPT_RATE", "300")];
    let first = Server::start(dir.path(), "first", &pacing);
    let (status, rotated) =
        http(first.port, "POST", "/admin/keys/rotate", &[("x-api-key", &api_key)], Some(&json!({"key": "data"})));
    assert_eq!(status, 200, "{rotated}\n{}", first.log());
    assert_eq!((rotated["family"].as_str(), rotated["version"].as_u64()), (Some("data"), Some(2)), "{rotated}");
    let job_id = rotated["reencryption"]["id"].as_str().unwrap().to_owned();
    assert_eq!(rotated["reencryption"]["state"], "running", "{rotated}");
    assert_eq!(as_u64(&rotated["reencryption"]["total"]), count(stale), "{rotated}");

    // Part of the way through: the status the API shows is consistent.
    let midway = poll(Duration::from_secs(30), "the job a tenth of the way", || {
        let (status, body) = first.get("/admin/keys/rotation", &api_key);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["job"]["id"], job_id.as_str(), "one job: {body}");
        assert_eq!(body["job"]["state"], "running", "it cannot be done yet at 300 rows/s: {body}");
        (as_u64(&body["job"]["scanned"]) >= 150).then_some(body)
    });
    let (total, scanned) = (as_u64(&midway["job"]["total"]), as_u64(&midway["job"]["scanned"]));
    assert!(scanned < total, "{midway}");
    assert_eq!(midway["active_version"], 2);
    assert_eq!(as_u64(&midway["pending_tasks"]), total - scanned, "{midway}");
    #[allow(clippy::cast_precision_loss)]
    let share = scanned as f64 / total as f64;
    assert!((midway["reencryption_progress"].as_f64().unwrap() - share).abs() < 1e-9, "{midway}");
    assert!(midway["estimated_completion"].is_string(), "a running job has an estimate: {midway}");
    assert!(midway["job"]["finished_at"].is_null(), "{midway}");

    first.kill();

    // What the dead instance left: a running job whose checkpoint matches the rows exactly.
    let at_kill = runtime.block_on(async {
        let palisade = open(dir.path(), &[]).await;
        let job = latest_job(&palisade).await;
        let sealed = Sealed::read(&palisade).await;
        assert_eq!(job.id.to_string(), job_id);
        assert_eq!(job.state, JobState::Running, "{job:?}");
        assert!(job.scanned >= scanned && job.scanned < job.total, "{job:?}");
        assert_eq!(job.phase, Phase::Factors, "{job:?}");
        assert_eq!(count(sealed.under(2)), job.rewritten, "each batch's rows and its checkpoint commit together");
        let cursor = job.cursor.clone().unwrap();
        for (factor, envelope) in &sealed.factors {
            let done = factor.id.to_string() <= cursor;
            assert_eq!(envelope.key_version, if done { 2 } else { 1 }, "factor {} against cursor {cursor}", factor.id);
        }
        assert!(sealed.signing_keys.iter().all(|(_, version)| *version == 2), "the first phase is done");
        job
    });

    // A new instance resumes it once the dead one's lease lapses (at least 15 s).
    let second = Server::start(dir.path(), "second", &pacing);
    let done = poll(Duration::from_secs(60), "the job completed after the restart", || {
        let (status, body) = second.get("/admin/keys/rotation", &api_key);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["job"]["id"], job_id.as_str(), "resumed, not restarted: {body}");
        assert!(as_u64(&body["job"]["scanned"]) >= at_kill.scanned, "the checkpoint never goes back: {body}");
        (body["job"]["state"] != "running").then_some(body)
    });
    let job = &done["job"];
    assert_eq!(job["state"], "completed", "{done}\n{}", second.log());
    assert_eq!(job["target_version"], 2);
    assert_eq!(as_u64(&job["scanned"]), count(stale), "every row visited once: {done}");
    assert_eq!(as_u64(&job["rewritten"]), count(stale), "every stale row rewritten once: {done}");
    assert!(job["error"].is_null());
    assert_eq!(done["reencryption_progress"], 1.0);
    assert_eq!(done["pending_tasks"], 0);
    assert_eq!(done["estimated_completion"], job["finished_at"], "{done}");

    // The server still signs: a login, and the token it issued is accepted.
    let (status, login) =
        http(second.port, "POST", "/auth/login", &[], Some(&json!({"username": "ops", "password": PASSWORD})));
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap_or_else(|| panic!("no token pair: {login}"));
    let (status, profile) =
        http(second.port, "GET", "/auth/profile", &[("authorization", &format!("Bearer {token}"))], None);
    assert_eq!(status, 200, "{profile}");
    let log = second.log();
    second.stop();

    runtime.block_on(async {
        let palisade = open(dir.path(), &[]).await;
        let job = latest_job(&palisade).await;
        assert_eq!(job.id, at_kill.id);
        assert_eq!(job.started_at, at_kill.started_at);
        assert_eq!(job_rows(dir.path()).await, 1, "no second job was started");
        let sealed = Sealed::read(&palisade).await;
        assert_eq!(sealed.signing_keys.len(), before.signing_keys.len());
        assert_eq!(sealed.under(2), sealed.rows(), "every row under data key version 2");
        sealed.assert_secrets_intact(&palisade, &secrets).await;

        let audited = reencrypted_records(&palisade).await;
        assert_eq!(audited.len(), 1, "one end, audited once: {audited:?}\n{log}");
        let (actor, details) = &audited[0];
        assert_eq!(actor.as_deref(), Some("reencryption"));
        assert_eq!(details["job"], job_id.as_str(), "{details}");
        assert_eq!(details["state"], "completed", "{details}");
        assert_eq!(as_u64(&details["rewritten"]), count(stale), "{details}");
    });
    let (output, stdout, _) = run(palisade(dir.path()).args(["audit", "verify"]));
    assert!(output.status.success() && stdout.contains("intact"), "{stdout}");
}

// ------------------------------------------------------------------------------------ CLI

/// A plain progress line: `re-encryption STATE: SCANNED/TOTAL rows visited, REWRITTEN rewritten (P %)`.
fn progress_line(line: &str) -> Option<(&str, u64, u64, u64)> {
    let (state, rest) = line.strip_prefix("re-encryption ")?.split_once(": ")?;
    let (scanned, rest) = rest.split_once('/')?;
    let (total, rest) = rest.split_once(" rows visited, ")?;
    let (rewritten, _) = rest.split_once(" rewritten (")?;
    Some((state, scanned.parse().ok()?, total.parse().ok()?, rewritten.parse().ok()?))
}

/// The closing line: `re-encrypted under data key version V: SCANNED rows visited, REWRITTEN
/// rewritten, RATE rows/s`.
fn summary_line(stdout: &str) -> (u32, u64, u64, f64) {
    let line = stdout.lines().last().unwrap_or_default();
    let parse = || -> Option<(u32, u64, u64, f64)> {
        let (version, rest) = line.strip_prefix("re-encrypted under data key version ")?.split_once(": ")?;
        let (scanned, rest) = rest.split_once(" rows visited, ")?;
        let (rewritten, rest) = rest.split_once(" rewritten, ")?;
        let rate = rest.strip_suffix(" rows/s")?;
        Some((version.parse().ok()?, scanned.parse().ok()?, rewritten.parse().ok()?, rate.parse().ok()?))
    };
    parse().unwrap_or_else(|| panic!("no closing line:\n{stdout}"))
}

fn data_key_versions(dir: &Path) -> usize {
    let (output, stdout, _) = run(palisade(dir).args(["keys", "status"]));
    assert!(output.status.success());
    stdout.lines().filter(|l| l.starts_with("data ")).count()
}

#[test]
fn keys_rotate_reencrypt_shows_progress_and_resumes_a_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let (secrets, stale) = runtime.block_on(async {
        let palisade = open(dir.path(), &[]).await;
        let secrets = seed_factors(&palisade, 100).await;
        (secrets, Sealed::read(&palisade).await.rows())
    });
    let stale = count(stale);
    // 50 rows a batch at 200 rows/s: about 1.5 s, so a line is printed while it runs.
    let pacing = [("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "50"), ("PALISADE_ENCRYPTION_REENCRYPT_RATE", "200")];
    let (output, stdout, stderr) =
        run(palisade(dir.path()).args(["keys", "rotate", "--key", "data", "--reencrypt"]).envs(pacing));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("rotated the data key: version 2; re-encrypting {stale} rows"), "{stdout}");
    let progress: Vec<_> = lines.iter().filter_map(|l| progress_line(l)).collect();
    assert_eq!(progress.first(), Some(&("running", 0, stale, 0)), "{stdout}");
    assert!(
        progress.iter().any(|&(state, scanned, total, _)| state == "running" && scanned > 0 && scanned < total),
        "a line while the job runs:\n{stdout}"
    );
    assert!(progress.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].3 <= w[1].3), "counts only grow:\n{stdout}");
    assert_eq!(progress.last(), Some(&("completed", stale, stale, stale)), "{stdout}");
    let (version, scanned, rewritten, rate) = summary_line(&stdout);
    assert_eq!((version, scanned, rewritten), (2, stale, stale), "{stdout}");
    // Paced: the first 251 rows alone take 1.25 s at 200 rows/s.
    assert!(rate > 0.0 && rate <= 250.0, "the pace is kept: {rate} rows/s\n{stdout}");
    assert!(!stderr.contains('\r'), "no progress bar off a terminal: {stderr:?}");

    let running = runtime.block_on(async {
        let palisade = open(dir.path(), &[]).await;
        let sealed = Sealed::read(&palisade).await;
        assert_eq!(sealed.under(2), sealed.rows(), "every row under data key version 2");
        sealed.assert_secrets_intact(&palisade, &secrets).await;
        let audited = reencrypted_records(&palisade).await;
        assert_eq!(audited.len(), 1, "{audited:?}");
        assert_eq!(audited[0].0.as_deref(), Some("cli"));
        assert_eq!(
            (audited[0].1["state"].as_str(), audited[0].1["rewritten"].as_u64()),
            (Some("completed"), Some(stale))
        );

        // A job left running by an instance that stopped before working on it (rotated, then
        // killed): `--reencrypt` finishes that job rather than rotating again.
        let (version, job) = palisade.reencryptor().rotate().await.unwrap();
        assert_eq!((version, job.state), (3, JobState::Running));
        job
    });
    let (output, stdout, stderr) =
        run(palisade(dir.path()).args(["keys", "rotate", "--key", "data", "--reencrypt"]).envs(pacing));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("a re-encryption toward data key version 3 is already running: resuming it\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("rotated the data key"), "{stdout}");
    let (version, scanned, rewritten, _) = summary_line(&stdout);
    assert_eq!((version, scanned, rewritten), (3, stale, stale), "{stdout}");
    assert_eq!(data_key_versions(dir.path()), 3, "no fourth version");
    runtime.block_on(async {
        let palisade = open(dir.path(), &[]).await;
        let job = latest_job(&palisade).await;
        assert_eq!((job.id, job.state), (running.id, JobState::Completed));
        assert_eq!(job_rows(dir.path()).await, 2);
        let sealed = Sealed::read(&palisade).await;
        assert_eq!(sealed.under(3), sealed.rows(), "every row under data key version 3");
        sealed.assert_secrets_intact(&palisade, &secrets).await;
    });

    // Only Palisade's own data key re-encrypts here; nothing is rotated when it is refused.
    let (_, keys_before, _) = run(palisade(dir.path()).args(["keys", "status"]));
    for args in [
        &["keys", "rotate", "--key", "data", "--class", "RESTRICTED", "--reencrypt"][..],
        &["keys", "rotate", "--key", "signing", "--reencrypt"],
        &["keys", "rotate", "--key", "audit", "--reencrypt"],
        &["keys", "rotate", "--reencrypt"],
    ] {
        let (output, stdout, stderr) = run(palisade(dir.path()).args(args));
        assert!(!output.status.success(), "{args:?}: {stdout}");
        assert!(stderr.contains("--reencrypt goes with --key data and no --class"), "{args:?}: {stderr}");
        assert!(stderr.contains("POST /crypto/rewrap"), "{args:?}: {stderr}");
    }
    let (_, keys_after, _) = run(palisade(dir.path()).args(["keys", "status"]));
    assert_eq!(keys_before, keys_after, "a refused rotation rotates nothing");
    assert_eq!(runtime.block_on(job_rows(dir.path())), 2, "and starts no job");
    let (output, stdout, _) = run(palisade(dir.path()).args(["audit", "verify"]));
    assert!(output.status.success() && stdout.contains("intact"), "{stdout}");
    let (output, stdout, _) = run(palisade(dir.path()).arg("diagnose"));
    let signing = stdout.lines().find(|l| l.starts_with("signing keys")).unwrap_or_default();
    assert!(output.status.success() && signing.contains(" OK "), "the re-sealed signing key loads: {stdout}");
}

/// The first plain progress line of `child`'s stdout with some rows visited, then SIGKILL.
fn kill_once_under_way(mut child: Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = seen.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let line = line.unwrap_or_else(|_| panic!("no progress within 30 s:\n{printed}"));
        printed.push_str(&line);
        printed.push('\n');
        if progress_line(&line)
            .is_some_and(|(state, scanned, total, _)| state == "running" && scanned > 0 && scanned < total)
        {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    printed
}

#[test]
fn keys_rotate_reencrypt_run_again_after_a_killed_run_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let stale = runtime.block_on(async {
        let palisade = open(dir.path(), &[]).await;
        seed_factors(&palisade, 100).await;
        count(Sealed::read(&palisade).await.rows())
    });
    // 20 rows a batch at 100 rows/s: about 3 s.
    let pacing = [("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "20"), ("PALISADE_ENCRYPTION_REENCRYPT_RATE", "100")];
    let child = palisade(dir.path())
        .args(["keys", "rotate", "--key", "data", "--reencrypt"])
        .envs(pacing)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let printed = kill_once_under_way(child);

    // The operator runs it again at once: the dead run's lease lapses after 15 s, and then this
    // run should take the job over and finish it (about 3 s of work left at most).
    let mut again = palisade(dir.path())
        .args(["keys", "rotate", "--key", "data", "--reencrypt"])
        .envs(pacing)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut again, Duration::from_secs(45));
    if status.is_none() {
        again.kill().unwrap();
    }
    let output = again.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.is_some_and(|s| s.success()),
        "the second run did not finish within 45 s ({status:?}); the first printed:\n{printed}\nthe second:\n{stdout}"
    );
    assert!(stdout.contains("is already running: resuming it"), "{stdout}");
    let (version, scanned, rewritten, _) = summary_line(&stdout);
    assert_eq!((version, scanned, rewritten), (2, stale, stale), "{stdout}");
    assert_eq!(data_key_versions(dir.path()), 2, "not rotated twice");
    runtime.block_on(async {
        let palisade = open(dir.path(), &[]).await;
        let sealed = Sealed::read(&palisade).await;
        assert_eq!(sealed.under(2), sealed.rows());
    });
}

// ------------------------------------------------------------------------------------ instances

#[test]
fn two_instances_racing_for_a_reencryption_job_do_its_work_once() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    runtime.block_on(async {
        // Small batches: a job of about 16 batches, so the two runs overlap.
        let batches = [("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "20")];
        let a = open(dir.path(), &batches).await;
        let secrets = seed_factors(&a, 100).await;
        for round in 1..=3_i64 {
            let version = a.keyring().rotate(KeyPurpose::Data).await.unwrap();
            // A second instance over the same file, opened after the rotation.
            let b = open(dir.path(), &batches).await;
            let before = Sealed::read(&a).await;
            let stale = count(before.rows() - before.under(version));
            assert_eq!(stale, count(before.rows()));

            let (from_a, from_b) = tokio::join!(a.reencryptor().start(), b.reencryptor().start());
            let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
            assert_eq!(from_a.id, from_b.id, "both got the one job");
            assert_eq!((from_a.target_version, from_a.total), (version, stale));
            assert_eq!(job_rows(dir.path()).await, round, "one job stored per rotation");

            let spawn_run = |reencryptor: Reencryptor, batches: Arc<AtomicU64>| {
                tokio::spawn(async move {
                    reencryptor
                        .run(&move |_| {
                            batches.fetch_add(1, Ordering::SeqCst);
                        })
                        .await
                        .unwrap()
                })
            };
            let (batches_a, batches_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let run_a = spawn_run(a.reencryptor().clone(), batches_a.clone());
            let run_b = spawn_run(b.reencryptor().clone(), batches_b.clone());
            let outcomes = [run_a.await.unwrap(), run_b.await.unwrap()];
            let batches = [batches_a.load(Ordering::SeqCst), batches_b.load(Ordering::SeqCst)];

            let finished: Vec<_> = outcomes
                .iter()
                .enumerate()
                .filter_map(|(n, outcome)| match outcome {
                    RunOutcome::Finished(job) => Some((n, job)),
                    RunOutcome::Busy | RunOutcome::Idle | RunOutcome::Stopped(_) => None,
                })
                .collect();
            let [(worker, job)] = finished[..] else { panic!("round {round}: not one finished run: {outcomes:?}") };
            assert_eq!((job.id, job.state), (from_a.id, JobState::Completed), "round {round}: {job:?}");
            assert_eq!((job.scanned, job.rewritten), (stale, stale), "round {round}: {job:?}");
            assert!(batches[worker] > 1, "round {round}: the worker reported its batches: {batches:?}");
            assert_eq!(batches[1 - worker], 0, "round {round}: the other one did no batch: {outcomes:?}");

            let stored = latest_job(&a).await;
            let counts =
                |job: &ReencryptionJob| (job.id, job.state, job.target_version, job.total, job.scanned, job.rewritten);
            assert_eq!(counts(&stored), counts(job), "round {round}: what the worker returned is what is stored");
            let after = Sealed::read(&a).await;
            assert_eq!(after.under(version), after.rows(), "round {round}: every row under version {version}");
            after.assert_secrets_intact(&a, &secrets).await;
        }
    });
}

/// A clock that, once armed, holds the first caller in `now()` until opened: here, the hot store
/// asking the time for a run's lease request (`run` reads the job first, then asks for the lease).
struct GateClock {
    armed: AtomicBool,
    entered: Mutex<mpsc::Sender<()>>,
    open: Mutex<mpsc::Receiver<()>>,
}

impl Clock for GateClock {
    fn now(&self) -> time::OffsetDateTime {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.entered.lock().unwrap().send(()).unwrap();
            self.open.lock().unwrap().recv().unwrap();
        }
        SystemClock.now()
    }
}

/// Runs `a`'s job in the background until at least `rows` rows are visited, then aborts the run
/// as a crash would (its lease stays), and deletes the lease, which stands for its lapse (15 s).
async fn crash_midway(a: &Palisade, rows: u64) -> ReencryptionJob {
    let paced = Reencryptor::new(
        a.durable_store().clone(),
        a.hot_store().clone(),
        a.keyring().clone(),
        a.clock().clone(),
        ReencryptionSettings { batch_size: 20, rows_per_second: Some(200) },
    );
    let running = tokio::spawn(async move { paced.run(&|_| {}).await });
    let start = Instant::now();
    loop {
        let job = latest_job(a).await;
        if job.scanned >= rows {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no progress: {job:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.abort();
    assert!(running.await.is_err_and(|e| e.is_cancelled()), "the run was over before it was aborted");
    // The lease's key in the hot store (reencrypt.rs `lease_key`).
    a.hot_store().delete(&HotKey::new("reencryption", "lease")).await.unwrap();
    let job = latest_job(a).await;
    assert!(job.state == JobState::Running && job.scanned >= rows && job.scanned < job.total, "{job:?}");
    job
}

#[test]
fn a_run_resumes_from_the_latest_checkpoint_not_the_one_it_read_before_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let (a, stale) = runtime.block_on(async {
        let a = open(dir.path(), &[]).await;
        seed_factors(&a, 100).await;
        let stale = count(Sealed::read(&a).await.rows());
        let (version, job) = a.reencryptor().rotate().await.unwrap();
        assert_eq!((version, job.total), (2, stale));
        (a, stale)
    });

    // Instance B, on a thread and runtime of its own since its clock blocks: it reads the job
    // (nothing done yet), then is held in its lease request.
    let (entered_tx, entered) = mpsc::channel();
    let (open_gate, open_rx) = mpsc::channel();
    let clock = Arc::new(GateClock {
        armed: AtomicBool::new(false),
        entered: Mutex::new(entered_tx),
        open: Mutex::new(open_rx),
    });
    let (outcome_tx, outcome) = mpsc::channel();
    let path = dir.path().to_owned();
    let b_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let b = open_with_clock(&path, &[], clock.clone()).await;
            clock.armed.store(true, Ordering::SeqCst);
            outcome_tx.send(b.reencryptor().run(&|_| {}).await.unwrap()).unwrap();
        });
    });
    entered.recv_timeout(Duration::from_secs(30)).unwrap();

    // Meanwhile instance A works on the job, then dies and its lease lapses.
    let crashed = runtime.block_on(crash_midway(&a, 100));
    assert!(crashed.rewritten >= 99, "{crashed:?}");

    // B gets the lease now and goes on.
    open_gate.send(()).unwrap();
    let outcome = outcome.recv_timeout(Duration::from_secs(60)).unwrap();
    b_thread.join().unwrap();
    runtime.block_on(async {
        let job = latest_job(&a).await;
        let sealed = Sealed::read(&a).await;
        assert_eq!(sealed.under(2), sealed.rows(), "every row is under version 2 all the same");
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!(
            job.rewritten, stale,
            "A rewrote {} rows before it died; B went on from the job as it read it before A's batches \
             (outcome {outcome:?})",
            crashed.rewritten
        );
    });
}

#[test]
fn an_instance_that_sealed_data_just_before_the_rotation_resumes_the_job_toward_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    runtime.block_on(async {
        let a = open(dir.path(), &[]).await;
        let b = open(dir.path(), &[]).await;
        let secrets = seed_factors(&a, 100).await;
        let stale = count(Sealed::read(&a).await.rows());
        // B seals something just before the rotation, as a serving instance does all the time (a
        // factor set up, a phone number confirmed).
        let context = factor_context(UserId::generate(), FactorKind::Sms, uuid::Uuid::new_v4());
        b.keyring().encrypt(b"+447700900123", &context).await.unwrap();

        // A rotates, starts the job, works on it for a while and dies; its lease lapses.
        let (version, _) = a.reencryptor().rotate().await.unwrap();
        assert_eq!(version, 2);
        let crashed = crash_midway(&a, 100).await;

        // B, well within a minute of the rotation, takes the job over.
        let outcome = b.reencryptor().run(&|_| {}).await.unwrap();
        let job = latest_job(&a).await;
        let sealed = Sealed::read(&a).await;
        assert_eq!(job.state, JobState::Completed, "{outcome:?}");
        sealed.assert_secrets_intact(&a, &secrets).await;
        assert_eq!(
            (job.target_version, sealed.under(2), job.rewritten),
            (2, sealed.rows(), stale),
            "A had moved {} rows to version 2 before it died; B left {} rows under version 1 (outcome {outcome:?})",
            crashed.rewritten,
            sealed.under(1)
        );
    });
}
