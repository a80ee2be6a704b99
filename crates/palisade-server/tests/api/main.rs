//! End-to-end tests of the server: each test spawns the real application on 127.0.0.1:0 with its own
//! temporary SQLite database and talks to it over HTTP. One binary for the crate (see STYLE.md).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod admin;
mod alerts;
mod api_keys;
mod approval;
mod auth;
mod backends;
mod client;
mod client_auth;
mod client_keys;
mod clients;
mod compliance;
mod crypto;
mod devices;
mod fail_closed;
mod file_modes;
mod guard;
mod mfa;
mod mfa_messages;
mod monitoring;
mod oauth_cases;
mod oauth_flow;
mod oauth_logout;
mod oauth_token;
mod oidc_interop;
mod ops;
mod passkeys;
mod reencryption;
mod reports;
mod responses;
mod risk;
mod smtp_sink;

use std::collections::HashMap;

use palisade_server::Application;
use palisade_server::config::{Config, Sources};

/// A running application on a free port, with its data in a temporary directory.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub palisade: std::sync::Arc<palisade_core::Palisade>,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
}

/// A configuration as the environment would give it, over a temporary data directory.
pub fn config(dir: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = HashMap::from([
        ("PALISADE_BIND".into(), "127.0.0.1:0".into()),
        ("PALISADE_DATA_DIR".into(), dir.display().to_string()),
        ("PALISADE_DATABASE_URL".into(), format!("sqlite://{}/palisade.db", dir.display())),
        // A fixed test master key (base64 of 32 bytes of 0x2a).
        ("PALISADE_MASTER_KEY".into(), "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=".into()),
    ]);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Config::load_from(Sources { env, ..Sources::default() }).unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build(config(dir.path(), extra)).await.unwrap();
    serve(app, dir)
}

/// Like [`spawn_app_with`], with the services on `clock` (a manual clock lets tests move time).
pub async fn spawn_app_with_clock(
    extra: &[(&str, &str)],
    clock: std::sync::Arc<dyn palisade_core::clock::Clock>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_app_in(dir, extra, clock).await
}

/// Like [`spawn_app_with_clock`], over the data directory `dir`, which the app keeps.
pub async fn spawn_app_in(
    dir: tempfile::TempDir,
    extra: &[(&str, &str)],
    clock: std::sync::Arc<dyn palisade_core::clock::Clock>,
) -> TestApp {
    let config = config(dir.path(), extra);
    let palisade = palisade_server::bootstrap(&config, clock).await.unwrap();
    serve(Application::with_palisade(config, palisade).await.unwrap(), dir)
}

/// Runs `app` until the test stops it; `dir` lives as long as the [`TestApp`].
pub fn serve(app: Application, dir: tempfile::TempDir) -> TestApp {
    let address = format!("http://{}", app.local_addr().unwrap());
    let palisade = app.palisade();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp { address, http: reqwest::Client::new(), palisade, stop: Some(stop), server, _dir: dir }
}

/// A password every test account can use (long, uncommon, scores well).
pub const PASSWORD: &str = "correct-Horse-battery-9-staple";

/// Registers `username` with [`PASSWORD`]; returns the new user id.
pub async fn register_user(app: &TestApp, username: &str) -> String {
    let body = serde_json::json!({"username": username, "password": PASSWORD});
    let response = app.http.post(app.url("/auth/register")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json::<serde_json::Value>().await.unwrap()["user_id"].as_str().unwrap().to_owned()
}

/// Logs `username` in with [`PASSWORD`]; returns the token answer.
pub async fn login_user(app: &TestApp, username: &str) -> serde_json::Value {
    let body = serde_json::json!({"username": username, "password": PASSWORD});
    let response = app.http.post(app.url("/auth/login")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Gives the user `user_id` the administrator role (as `palisade user grant-admin` does).
pub async fn make_admin(app: &TestApp, user_id: &str) {
    let id = palisade_core::user::UserId::parse(user_id).unwrap();
    let meta = palisade_core::audit::RequestMeta::default();
    app.palisade.auth().set_admin(id, true, "test", &meta).await.unwrap();
}

/// The path of one of MaxMind's test databases in `tests/data/geoip` (see its README for what they
/// hold: 81.2.69.142 is London, 89.160.20.112 Linköping …).
pub fn geoip_test_db(name: &str) -> String {
    format!("{}/tests/data/geoip/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Posts the login `body` with the extra request `headers` (`User-Agent`, `X-Forwarded-For` …).
pub async fn post_login(app: &TestApp, body: &serde_json::Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.post(app.url("/auth/login")).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Posts a login of `username` with [`PASSWORD`], the extra request `headers` and, when given, the
/// `device` description; the response as it came.
pub async fn login_from(
    app: &TestApp,
    username: &str,
    headers: &[(&str, &str)],
    device: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut body = serde_json::json!({"username": username, "password": PASSWORD});
    if let Some(device) = device {
        body["device"] = device;
    }
    post_login(app, &body, headers).await
}

/// The status and JSON body of a response.
pub async fn status_json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The kinds of the audit chain's events (`auth.login`, `session.hijack_suspected` …), oldest first.
pub async fn audit_event_kinds(app: &TestApp) -> Vec<String> {
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    records.into_iter().map(|r| r.kind).collect()
}
