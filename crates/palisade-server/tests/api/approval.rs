//! Device approval and remember-device over HTTP.
//!
//! Device approval (`PALISADE_DEVICE_APPROVAL`): a user's first device logs in by itself; a later
//! one passes every step but gets no tokens, only an `approval_token` to poll
//! `POST /auth/login/approval` with, until the device is approved — from a session on an approved
//! device (`POST /auth/devices/{id}/approve`) or through the link mailed to the user (its token is
//! what the page `/devices/approve` posts to `POST /auth/devices/approve-link`). Covered: the wait
//! and its single-use completion, the mailed link (single use), expiry on the manual clock, a
//! device removed while it waits or after it logged in, and forged tokens.
//!
//! Remember device: a `device_token` is issued only after a second factor; presented at a later
//! login from the same device it adds `trusted_device` (halving the score), and it is worth nothing
//! from another client, once its device is removed, or past `PALISADE_REMEMBER_DEVICE_TTL`.
//!
//! A device here is a client signature: every request carries the User-Agent and Accept-Language
//! of its device, as a browser would, and bearer requests those of their login (session binding).
//!
//! The approval link is mailed in the background, after the login has answered. It goes through
//! the real SMTP sender to `src/notify/smtp_sink.py` (aiosmtpd, as in `mfa_messages.rs`), reached
//! through a loopback relay that reports each finished SMTP connection: the sink writes a message
//! to its file before it accepts it, so a test awaits those reports instead of sleeping. Without
//! python3 and aiosmtpd the mail tests say why and pass, except under `CI=true` where they fail.

use std::collections::BTreeSet;
use std::sync::Arc;

use palisade_core::clock::{Clock as _, ManualClock};
use palisade_core::mfa::totp::TotpSecret;
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::smtp_sink::SmtpSink;
use crate::{PASSWORD, TestApp, audit_event_kinds, register_user, spawn_app_with_clock};

const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// The user's first device.
const LAPTOP: &[(&str, &str)] = &[("user-agent", CHROME), ("accept-language", "en-GB,en;q=0.9")];
/// Another browser: another device.
const PHONE: &[(&str, &str)] = &[("user-agent", FIREFOX), ("accept-language", "en-GB,en;q=0.9")];
/// The laptop's browser with other languages: another client signature, so another device.
const LAPTOP_IN_FRENCH: &[(&str, &str)] = &[("user-agent", CHROME), ("accept-language", "fr-FR,fr;q=0.9")];

/// The issuer the mailed links are built on.
const ISSUER: &str = "https://id.example.test";
const APPROVAL_MAIL: &str = "Approve a new device";

// ---- requests ------------------------------------------------------------------------------------

/// A request from the device whose headers are `from`, with a bearer token and a JSON body when given.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    from: &[(&str, &str)],
    bearer: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path));
    for (name, value) in from {
        request = request.header(*name, *value);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// The status and body of a response (`null` for an empty one, as a 204 has).
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text:?}"))
    };
    (status, body)
}

/// Asserts a problem (`application/problem+json`) with `status` and `code`, and no token in it.
async fn refused(response: reqwest::Response, status: u16, code: &str) -> Value {
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let (got, body) = answer(response).await;
    assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{body}");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "{body}");
    body
}

/// A login of `username` with [`PASSWORD`] and the `extra` fields, from `from`.
async fn login(app: &TestApp, username: &str, from: &[(&str, &str)], extra: Value) -> (u16, Value) {
    let mut body = json!({"username": username, "password": PASSWORD});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    answer(call(app, Method::POST, "/auth/login", from, None, Some(&body)).await).await
}

/// A login that must answer tokens.
async fn logged_in(app: &TestApp, username: &str, from: &[(&str, &str)]) -> Value {
    let (status, tokens) = login(app, username, from, json!({})).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string(), "{tokens}");
    tokens
}

/// Asserts the approval-required answer: exactly its four members, and no token.
fn assert_waiting(answer: &Value) {
    let members: BTreeSet<&str> = answer.as_object().unwrap().keys().map(String::as_str).collect();
    let expected = BTreeSet::from(["approval_required", "approval_token", "device_id", "expires_in"]);
    assert_eq!(members, expected, "{answer}");
    assert_eq!(answer["approval_required"], true, "{answer}");
    assert!(answer["approval_token"].as_str().unwrap().starts_with("apr."), "{answer}");
    assert!(answer["expires_in"].as_u64().unwrap() >= 1, "{answer}");
}

/// A login that must wait for approval; the answer.
async fn waiting(app: &TestApp, username: &str, from: &[(&str, &str)]) -> Value {
    let (status, pending) = login(app, username, from, json!({})).await;
    assert_eq!(status, 200, "{pending}");
    assert_waiting(&pending);
    pending
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}"))
}

fn access(tokens: &Value) -> &str {
    text(&tokens["access_token"])
}

async fn poll(app: &TestApp, from: &[(&str, &str)], approval_token: &str) -> reqwest::Response {
    let body = json!({"approval_token": approval_token});
    call(app, Method::POST, "/auth/login/approval", from, None, Some(&body)).await
}

/// A poll that must answer tokens.
async fn poll_tokens(app: &TestApp, from: &[(&str, &str)], approval_token: &str) -> Value {
    let (status, tokens) = answer(poll(app, from, approval_token).await).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string() && tokens["refresh_token"].is_string(), "{tokens}");
    assert!(tokens.get("approval_required").is_none(), "{tokens}");
    tokens
}

async fn approve(app: &TestApp, from: &[(&str, &str)], bearer: &str, device_id: &str) -> reqwest::Response {
    call(app, Method::POST, &format!("/auth/devices/{device_id}/approve"), from, Some(bearer), None).await
}

async fn approve_link(app: &TestApp, token: &str) -> reqwest::Response {
    call(app, Method::POST, "/auth/devices/approve-link", &[], None, Some(&json!({"token": token}))).await
}

async fn remove(app: &TestApp, from: &[(&str, &str)], bearer: &str, device_id: &str) -> (u16, Value) {
    answer(call(app, Method::DELETE, &format!("/auth/devices/{device_id}"), from, Some(bearer), None).await).await
}

async fn get_list(app: &TestApp, path: &str, member: &str, from: &[(&str, &str)], bearer: &str) -> Vec<Value> {
    let (status, body) = answer(call(app, Method::GET, path, from, Some(bearer), None).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body[member].as_array().unwrap().clone()
}

async fn devices(app: &TestApp, from: &[(&str, &str)], bearer: &str) -> Vec<Value> {
    get_list(app, "/auth/devices", "devices", from, bearer).await
}

async fn sessions(app: &TestApp, from: &[(&str, &str)], bearer: &str) -> Vec<Value> {
    get_list(app, "/auth/sessions", "sessions", from, bearer).await
}

fn device<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter().find(|d| d["device_id"] == id).unwrap_or_else(|| panic!("no device {id} in {list:?}"))
}

async fn profile(app: &TestApp, from: &[(&str, &str)], bearer: &str) -> reqwest::Response {
    call(app, Method::GET, "/auth/profile", from, Some(bearer), None).await
}

async fn register_with_email(app: &TestApp, username: &str, email: &str) {
    let body = json!({"username": username, "password": PASSWORD, "email": email});
    let response = call(app, Method::POST, "/auth/register", &[], None, Some(&body)).await;
    assert_eq!(response.status(), 201);
}

/// A server with device approval on, the `extra` settings, and `clock`.
async fn spawn_approving(clock: &Arc<ManualClock>, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![("PALISADE_DEVICE_APPROVAL", "true")];
    settings.extend_from_slice(extra);
    spawn_app_with_clock(&settings, clock.clone()).await
}

// ---- the SMTP server -------------------------------------------------------------------------------

/// The SMTP sink (`smtp_sink.rs`) behind a loopback relay that reports every SMTP connection once
/// it is over; the relay is stopped on drop (and the sink with it).
struct MailSink {
    sink: SmtpSink,
    /// The relay's port: the one the server is configured with.
    port: u16,
    /// One `()` per finished SMTP connection.
    finished: mpsc::UnboundedReceiver<()>,
    relay: tokio::task::JoinHandle<()>,
}

impl Drop for MailSink {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

impl MailSink {
    /// `None` when python3 with aiosmtpd is missing (the test is skipped), except under `CI=true`.
    async fn start() -> Option<Self> {
        let sink = SmtpSink::start("the approval link tests")?;
        let sink_port = sink.port;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (report, finished) = mpsc::unbounded_channel();
        let relay = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let report = report.clone();
                tokio::spawn(async move {
                    if let Ok(mut sink) = TcpStream::connect(("127.0.0.1", sink_port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut sink).await;
                    }
                    let _ = report.send(());
                });
            }
        });
        Some(Self { sink, port, finished, relay })
    }

    /// The settings pointing the server at this sink.
    fn settings(&self) -> Vec<(String, String)> {
        [
            ("SMTP_SERVER", "127.0.0.1".to_owned()),
            ("SMTP_PORT", self.port.to_string()),
            ("SMTP_TLS", "off".to_owned()),
            ("SMTP_FROM", "Palisade <no-reply@example.com>".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The messages accepted so far, oldest first.
    fn received(&self) -> Vec<Value> {
        self.sink.received()
    }

    /// The messages titled `subject` accepted so far.
    fn titled(&self, subject: &str) -> Vec<Value> {
        self.received().into_iter().filter(|m| m["subject"] == subject).collect()
    }

    /// The first message titled `subject`, waiting (at most 10 s) for the connections still to finish.
    async fn mail(&mut self, subject: &str) -> Value {
        loop {
            if let Some(mail) = self.titled(subject).into_iter().next() {
                return mail;
            }
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), self.finished.recv()).await;
            assert!(matches!(next, Ok(Some(()))), "no mail {subject:?} within 10 s; received {:?}", self.received());
        }
    }
}

/// A server with device approval on, mailing through `sink`, links built on [`ISSUER`].
async fn spawn_mailing(clock: &Arc<ManualClock>, sink: &MailSink, extra: &[(&str, &str)]) -> TestApp {
    let owned = sink.settings();
    let mut settings: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    settings.push(("PALISADE_ISSUER", ISSUER));
    settings.extend_from_slice(extra);
    spawn_approving(clock, &settings).await
}

/// The approval link of a mail, and its token (what follows `#token=`).
fn link_token(mail: &Value) -> String {
    let body = text(&mail["body"]);
    let prefix = format!("{ISSUER}/devices/approve#token=");
    let links: Vec<&str> = body.split_whitespace().filter(|word| word.starts_with(&prefix)).collect();
    assert_eq!(links.len(), 1, "not exactly one approval link in {body:?}");
    let token = &links[0][prefix.len()..];
    assert!(token.starts_with("apl.") && token.len() > 40, "{token:?}");
    token.to_owned()
}

// ---- device approval ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_second_device_waits_until_the_first_approves_it_and_completes_once() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_approving(&clock, &[]).await;
    register_user(&app, "alice").await;

    // The first device has nothing to be approved from: it logs in by itself.
    let laptop = logged_in(&app, "alice", LAPTOP).await;
    let laptop_token = access(&laptop);
    let laptop_id = text(&laptop["device_id"]).to_owned();
    let list = devices(&app, LAPTOP, laptop_token).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(device(&list, &laptop_id)["approved"], true, "{list:?}");

    // The second gets no tokens: it waits, for the default 15 minutes.
    let pending = waiting(&app, "alice", PHONE).await;
    assert_eq!(pending["expires_in"], 900, "{pending}");
    let approval_token = text(&pending["approval_token"]).to_owned();
    let phone_id = text(&pending["device_id"]).to_owned();
    assert_ne!(phone_id, laptop_id);
    let list = devices(&app, LAPTOP, laptop_token).await;
    assert_eq!(device(&list, &phone_id)["approved"], false, "listed, waiting: {list:?}");

    // Polling while it waits: 200 with the same answer, the wait shorter by the time passed.
    clock.advance(Duration::seconds(60));
    let (status, again) = answer(poll(&app, PHONE, &approval_token).await).await;
    assert_eq!(status, 200, "{again}");
    assert_waiting(&again);
    assert_eq!(again["approval_token"], approval_token.as_str(), "the same token");
    assert_eq!(again["device_id"], phone_id.as_str(), "{again}");
    assert_eq!(again["expires_in"], 840, "{again}");

    // Approved from the laptop's session, the next poll logs the phone in.
    assert_eq!(approve(&app, LAPTOP, laptop_token, &phone_id).await.status(), 204);
    let tokens = poll_tokens(&app, PHONE, &approval_token).await;
    assert_eq!(tokens["device_id"], phone_id.as_str(), "{tokens}");
    assert_eq!(tokens["user_id"], laptop["user_id"], "{tokens}");
    // Once: the approval token is spent.
    refused(poll(&app, PHONE, &approval_token).await, 401, "INVALID_TOKEN").await;
    refused(poll(&app, PHONE, &approval_token).await, 401, "INVALID_TOKEN").await;

    // The phone's session works and lists the phone approved, as its current device.
    let phone_token = access(&tokens);
    assert_eq!(profile(&app, PHONE, phone_token).await.status(), 200);
    let list = devices(&app, PHONE, phone_token).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let phone = device(&list, &phone_id);
    assert_eq!((phone["approved"].as_bool(), phone["current"].as_bool()), (Some(true), Some(true)), "{phone}");
    assert_eq!(sessions(&app, LAPTOP, laptop_token).await.len(), 2, "one session each, no more");
    // An approved device logs in by itself from now on.
    let direct = logged_in(&app, "alice", PHONE).await;
    assert_eq!(direct["device_id"], phone_id.as_str());

    let kinds = audit_event_kinds(&app).await;
    for kind in ["device.approval_requested", "device.approved"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} not in {kinds:?}");
    }
    // The audit chain never holds the token itself.
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    assert!(records.iter().all(|r| !r.details.contains(&approval_token)), "the approval token was audited");
}

#[tokio::test]
async fn the_mailed_link_approves_the_device_once() {
    let Some(mut sink) = MailSink::start().await else { return };
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_mailing(&clock, &sink, &[]).await;
    register_with_email(&app, "fay", "fay@example.com").await;
    let laptop = logged_in(&app, "fay", LAPTOP).await;
    let pending = waiting(&app, "fay", PHONE).await;
    let approval_token = text(&pending["approval_token"]).to_owned();
    let phone_id = text(&pending["device_id"]).to_owned();

    let mail = sink.mail(APPROVAL_MAIL).await;
    assert_eq!(mail["rcpt_tos"], json!(["fay@example.com"]), "{mail}");
    let token = link_token(&mail);
    assert!(!text(&mail["body"]).contains(&approval_token), "the mail must not carry the poll token");

    // The page the link opens approves nothing by itself; its script posts the fragment's token to
    // the route this test posts it to.
    let page = call(&app, Method::GET, "/devices/approve", &[], None, None).await;
    assert_eq!(page.status(), 200);
    let script = call(&app, Method::GET, "/devices/approve.js", &[], None, None).await.text().await.unwrap();
    assert!(script.contains("\"/auth/devices/approve-link\"") && script.contains("token"), "{script}");
    let (status, still) = answer(poll(&app, PHONE, &approval_token).await).await;
    assert_eq!(status, 200, "{still}");
    assert_waiting(&still);

    // The link approves the device: the poll logs the phone in.
    let (status, body) = answer(approve_link(&app, &token).await).await;
    assert_eq!((status, body), (204, Value::Null));
    let tokens = poll_tokens(&app, PHONE, &approval_token).await;
    assert_eq!(tokens["device_id"], phone_id.as_str(), "{tokens}");
    let list = devices(&app, LAPTOP, access(&laptop)).await;
    assert_eq!(device(&list, &phone_id)["approved"], true, "{list:?}");

    // Single use.
    refused(approve_link(&app, &token).await, 401, "INVALID_TOKEN").await;
    assert_eq!(sink.titled(APPROVAL_MAIL).len(), 1, "one link per wait");
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    let approvals: Vec<_> = records.iter().filter(|r| r.kind == "device.approved").collect();
    assert_eq!(approvals.len(), 2, "the approval and the refused second use: {approvals:?}");
    assert_eq!((approvals[0].outcome.as_str(), approvals[1].outcome.as_str()), ("success", "failure"));
    assert!(approvals[0].details.contains("mailed link"), "{}", approvals[0].details);
    assert!(records.iter().all(|r| !r.details.contains(&token)), "the link token was audited");
}

#[tokio::test]
async fn past_the_approval_ttl_neither_the_poll_nor_the_link_issues_anything() {
    let Some(mut sink) = MailSink::start().await else { return };
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_mailing(&clock, &sink, &[("PALISADE_DEVICE_APPROVAL_TTL", "120")]).await;
    register_with_email(&app, "gus", "gus@example.com").await;
    let laptop = logged_in(&app, "gus", LAPTOP).await;
    let laptop_token = access(&laptop);
    let pending = waiting(&app, "gus", PHONE).await;
    assert_eq!(pending["expires_in"], 120, "{pending}");
    let approval_token = text(&pending["approval_token"]).to_owned();
    let phone_id = text(&pending["device_id"]).to_owned();
    let link = link_token(&sink.mail(APPROVAL_MAIL).await);

    // Its last second.
    clock.advance(Duration::seconds(119));
    let (status, last) = answer(poll(&app, PHONE, &approval_token).await).await;
    assert_eq!(status, 200, "{last}");
    assert_waiting(&last);
    assert_eq!(last["expires_in"], 1, "{last}");

    // 120 s after the login the wait is over, for the poll and for the link alike.
    clock.advance(Duration::seconds(1));
    refused(poll(&app, PHONE, &approval_token).await, 401, "INVALID_TOKEN").await;
    refused(approve_link(&app, &link).await, 401, "INVALID_TOKEN").await;
    let list = devices(&app, LAPTOP, laptop_token).await;
    assert_eq!(device(&list, &phone_id)["approved"], false, "an expired link approves nothing: {list:?}");

    // Approving the device now does not revive the wait: nothing is issued for it.
    assert_eq!(approve(&app, LAPTOP, laptop_token, &phone_id).await.status(), 204);
    refused(poll(&app, PHONE, &approval_token).await, 401, "INVALID_TOKEN").await;
    assert_eq!(sessions(&app, LAPTOP, laptop_token).await.len(), 1, "the laptop's session only");
    let logins = audit_event_kinds(&app).await.into_iter().filter(|k| k == "auth.login").count();
    assert_eq!(logins, 1, "the laptop's login only");
}

#[tokio::test]
async fn a_device_removed_while_it_waits_cannot_complete_and_one_removed_later_loses_its_session() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_approving(&clock, &[]).await;
    register_user(&app, "dora").await;
    let laptop = logged_in(&app, "dora", LAPTOP).await;
    let laptop_token = access(&laptop);

    // Removed while it waits: the wait ends with it.
    let pending = waiting(&app, "dora", PHONE).await;
    let approval_token = text(&pending["approval_token"]).to_owned();
    let first_id = text(&pending["device_id"]).to_owned();
    let (status, removed) = remove(&app, LAPTOP, laptop_token, &first_id).await;
    assert_eq!((status, removed), (200, json!({"sessions_ended": 0})));
    refused(poll(&app, PHONE, &approval_token).await, 401, "INVALID_TOKEN").await;
    refused(approve(&app, LAPTOP, laptop_token, &first_id).await, 404, "NOT_FOUND").await;
    refused(poll(&app, PHONE, &approval_token).await, 401, "INVALID_TOKEN").await;
    assert_eq!(sessions(&app, LAPTOP, laptop_token).await.len(), 1);

    // The phone logging in again is a new device, waiting anew.
    let pending = waiting(&app, "dora", PHONE).await;
    let phone_id = text(&pending["device_id"]).to_owned();
    assert_ne!(phone_id, first_id);
    assert_ne!(pending["approval_token"], approval_token.as_str());
    assert_eq!(approve(&app, LAPTOP, laptop_token, &phone_id).await.status(), 204);
    let phone = poll_tokens(&app, PHONE, text(&pending["approval_token"])).await;
    let phone_token = access(&phone);
    assert_eq!(profile(&app, PHONE, phone_token).await.status(), 200);

    // Removed after its login: its session ends, refresh included; the laptop's goes on.
    let (status, removed) = remove(&app, LAPTOP, laptop_token, &phone_id).await;
    assert_eq!((status, removed), (200, json!({"sessions_ended": 1})));
    let (status, body) = answer(profile(&app, PHONE, phone_token).await).await;
    assert_eq!(status, 401, "{body}");
    let renew = json!({"refresh_token": phone["refresh_token"]});
    let (status, body) = answer(call(&app, Method::POST, "/auth/refresh", PHONE, None, Some(&renew)).await).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(profile(&app, LAPTOP, laptop_token).await.status(), 200);
    // And a forgotten device must be approved again.
    let again = waiting(&app, "dora", PHONE).await;
    assert_ne!(again["device_id"], phone_id.as_str());
}

#[tokio::test]
async fn forged_approval_tokens_and_links_are_clear_problems() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_approving(&clock, &[]).await;
    register_user(&app, "erik").await;
    let laptop = logged_in(&app, "erik", LAPTOP).await;
    let laptop_token = access(&laptop);
    let pending = waiting(&app, "erik", PHONE).await;
    let approval_token = text(&pending["approval_token"]).to_owned();
    let phone_id = text(&pending["device_id"]).to_owned();

    // One character changed, wrong prefixes, empty, huge, not ASCII.
    let mut tampered = approval_token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let forged = [
        tampered,
        format!("apl.{}", &approval_token[4..]),
        "apr.forged".to_owned(),
        String::new(),
        " ".to_owned(),
        "é".repeat(80),
        "x".repeat(100_000),
    ];
    for token in &forged {
        refused(poll(&app, PHONE, token).await, 401, "INVALID_TOKEN").await;
        // As a link: the poll's own token is no link either.
        refused(approve_link(&app, token).await, 401, "INVALID_TOKEN").await;
    }
    refused(approve_link(&app, &approval_token).await, 401, "INVALID_TOKEN").await;

    // Malformed bodies: 400 or 422, never a 500.
    for path in ["/auth/login/approval", "/auth/devices/approve-link"] {
        let member = if path.ends_with("approval") { "approval_token" } else { "token" };
        let cases = [
            ("{}".to_owned(), 422),
            (format!(r#"{{"{member}": 5}}"#), 422),
            (format!(r#"{{"{member}": "apr.x", "extra": 1}}"#), 422),
            (format!(r#"{{"{member}": "#), 400),
            ("[]".to_owned(), 422),
        ];
        for (body, status) in cases {
            let response = app
                .http
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            refused(response, status, "VALIDATION_ERROR").await;
        }
        let plain = app.http.post(app.url(path)).body(format!(r#"{{"{member}": "x"}}"#)).send().await.unwrap();
        let content_type = plain.headers()["content-type"].clone();
        let (status, body) = answer(plain).await;
        assert!((400..500).contains(&status), "{path} without a JSON content type: {status} {body}");
        assert_eq!(content_type, "application/problem+json");
    }
    // Approving from a session: only a device of the caller's, by its id.
    refused(approve(&app, LAPTOP, laptop_token, "not-a-device-id").await, 404, "NOT_FOUND").await;
    refused(approve(&app, LAPTOP, laptop_token, "00000000-0000-4000-8000-000000000000").await, 404, "NOT_FOUND").await;
    let anonymous = call(&app, Method::POST, &format!("/auth/devices/{phone_id}/approve"), PHONE, None, None).await;
    assert_eq!(anonymous.status(), 401);

    // None of it approved anything or disturbed the real wait.
    let (status, still) = answer(poll(&app, PHONE, &approval_token).await).await;
    assert_eq!(status, 200, "{still}");
    assert_waiting(&still);
    assert_eq!(device(&devices(&app, LAPTOP, laptop_token).await, &phone_id)["approved"], false);
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    assert!(records.iter().any(|r| r.kind == "device.approval_requested"));
    assert!(records.iter().filter(|r| r.kind == "device.approved").all(|r| r.outcome == "failure"));
    assert!(records.iter().any(|r| r.kind == "auth.login_failed" && r.outcome == "failure"));
}

// ---- remember device -----------------------------------------------------------------------------

fn totp_now(secret: &TotpSecret, clock: &ManualClock) -> String {
    secret.code_at(u64::try_from(clock.now().unix_timestamp()).unwrap()).unwrap()
}

/// Sets TOTP up and confirms it with the session `bearer` of the device `from`; the secret.
async fn enrol_totp(app: &TestApp, clock: &ManualClock, from: &[(&str, &str)], bearer: &str) -> TotpSecret {
    let (status, setup) = answer(call(app, Method::POST, "/auth/mfa/totp/setup", from, Some(bearer), None).await).await;
    assert_eq!(status, 200, "{setup}");
    let secret = TotpSecret::from_base32(text(&setup["secret"])).unwrap();
    let code = json!({"code": totp_now(&secret, clock)});
    let confirm = call(app, Method::POST, "/auth/mfa/totp/confirm", from, Some(bearer), Some(&code)).await;
    assert_eq!(confirm.status(), 204);
    secret
}

/// A password login from `from` with the `extra` fields that must ask for the second factor.
async fn second_step(app: &TestApp, username: &str, from: &[(&str, &str)], extra: Value) -> Value {
    let (status, pending) = login(app, username, from, extra).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending["mfa_required"], true, "{pending}");
    pending
}

/// Passes the TOTP step of `pending` from `from`, 30 s on (a code is good once per step); the tokens.
async fn pass_totp(
    app: &TestApp,
    clock: &ManualClock,
    secret: &TotpSecret,
    from: &[(&str, &str)],
    pending: &Value,
) -> Value {
    clock.advance(Duration::seconds(30));
    let body = json!({"mfa_token": pending["mfa_token"], "method": "totp", "code": totp_now(secret, clock)});
    let (status, tokens) = answer(call(app, Method::POST, "/auth/mfa/verify", from, None, Some(&body)).await).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string(), "{tokens}");
    tokens
}

/// A wrong password, then a login with the `extra` fields, both from `from`: the second step's
/// answer. The failure gives the login a score to discount (`account_failures`, one of five at
/// weight 0.3: 0.06); the address factors are off (127.0.0.0/8 is allow-listed), so that is all.
async fn scored(app: &TestApp, username: &str, from: &[(&str, &str)], extra: Value) -> Value {
    let wrong = json!({"username": username, "password": "not-the-password-at-all"});
    let (status, body) = answer(call(app, Method::POST, "/auth/login", from, None, Some(&wrong)).await).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("INVALID_CREDENTIALS")), "{body}");
    second_step(app, username, from, extra).await
}

fn factor_names(answer: &Value) -> Vec<&str> {
    let factors = answer["risk_factors"].as_array().unwrap_or_else(|| panic!("no risk_factors in {answer}"));
    factors.iter().map(text).collect()
}

fn score(answer: &Value) -> f64 {
    answer["risk_score"].as_f64().unwrap_or_else(|| panic!("no risk_score in {answer}"))
}

fn trusted(answer: &Value) -> bool {
    factor_names(answer).contains(&"trusted_device")
}

#[tokio::test]
async fn a_device_token_is_issued_only_after_a_second_factor() {
    // Default lifetime (30 days), and remembering turned off.
    for (ttl, lifetime) in [(None, Some(30 * 24 * 3600)), (Some("0"), None)] {
        let clock = Arc::new(ManualClock::fixed());
        let extra: Vec<(&str, &str)> = ttl.map(|t| ("PALISADE_REMEMBER_DEVICE_TTL", t)).into_iter().collect();
        let app = spawn_app_with_clock(&extra, clock.clone()).await;
        let user_id = register_user(&app, "hana").await;

        // A password alone never vouches for a device.
        let (status, plain) = login(&app, "hana", LAPTOP, json!({"remember_device": true})).await;
        assert_eq!(status, 200, "{plain}");
        assert!(plain["access_token"].is_string(), "{plain}");
        assert!(plain.get("device_token").is_none() && plain.get("device_token_expires_in").is_none(), "{plain}");

        let secret = enrol_totp(&app, &clock, LAPTOP, access(&plain)).await;
        // A second factor without asking: none either.
        let pending = second_step(&app, "hana", LAPTOP, json!({})).await;
        let tokens = pass_totp(&app, &clock, &secret, LAPTOP, &pending).await;
        assert!(tokens.get("device_token").is_none() && tokens.get("device_token_expires_in").is_none(), "{tokens}");

        // Asked for, with a second factor.
        let pending = second_step(&app, "hana", LAPTOP, json!({"remember_device": true})).await;
        let tokens = pass_totp(&app, &clock, &secret, LAPTOP, &pending).await;
        let Some(lifetime) = lifetime else {
            assert!(tokens.get("device_token").is_none(), "remembering is off: {tokens}");
            assert!(tokens.get("device_token_expires_in").is_none(), "{tokens}");
            continue;
        };
        assert_eq!(tokens["device_token_expires_in"], lifetime, "{tokens}");
        let device_token = text(&tokens["device_token"]);
        // rd1.<user>.<device>.<expiry>.<mac>
        let parts: Vec<&str> = device_token.split('.').collect();
        assert_eq!(parts.len(), 5, "{device_token}");
        assert_eq!(parts[0], "rd1");
        assert_eq!(parts[1], user_id.replace('-', ""));
        assert_eq!(parts[2], text(&tokens["device_id"]).replace('-', ""));
        assert_eq!(parts[3].parse::<i64>().unwrap(), clock.now().unix_timestamp() + lifetime);
    }
}

#[tokio::test]
async fn a_device_token_counts_only_on_its_own_device_and_while_both_live() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_app_with_clock(
        &[("PALISADE_REMEMBER_DEVICE_TTL", "3600"), ("PALISADE_RISK_ALLOW_CIDRS", "127.0.0.0/8")],
        clock.clone(),
    )
    .await;
    register_user(&app, "ivan").await;
    let first = logged_in(&app, "ivan", LAPTOP).await;
    let secret = enrol_totp(&app, &clock, LAPTOP, access(&first)).await;
    let pending = second_step(&app, "ivan", LAPTOP, json!({"remember_device": true})).await;
    let tokens = pass_totp(&app, &clock, &secret, LAPTOP, &pending).await;
    let device_token = text(&tokens["device_token"]).to_owned();
    let expires_at = clock.now() + Duration::seconds(3600);
    let with_token = json!({"device_token": device_token});

    // The same login, from the same device, without and with the token.
    let without = scored(&app, "ivan", LAPTOP, json!({})).await;
    let with = scored(&app, "ivan", LAPTOP, with_token.clone()).await;
    assert!(factor_names(&without).contains(&"account_failures"), "{without}");
    assert!(!trusted(&without), "{without}");
    assert!(factor_names(&with).contains(&"account_failures") && trusted(&with), "{with}");
    assert!(score(&with) < score(&without), "{with} vs {without}");
    assert!((score(&with) - score(&without) / 2.0).abs() < 1e-3, "the default discount is half: {with} vs {without}");

    // From another device the token is worth nothing.
    for other in [PHONE, LAPTOP_IN_FRENCH] {
        let answer = scored(&app, "ivan", other, with_token.clone()).await;
        assert!(!trusted(&answer), "{other:?}: {answer}");
        assert!(factor_names(&answer).contains(&"new_device"), "{other:?}: {answer}");
    }

    // It lives PALISADE_REMEMBER_DEVICE_TTL: honoured in its last second, not after.
    clock.advance(expires_at - clock.now() - Duration::seconds(1));
    assert!(trusted(&scored(&app, "ivan", LAPTOP, with_token.clone()).await));
    clock.advance(Duration::seconds(1));
    let expired = scored(&app, "ivan", LAPTOP, with_token).await;
    assert!(!trusted(&expired), "{expired}");

    // A fresh token counts until its device is removed.
    let pending = second_step(&app, "ivan", LAPTOP, json!({"remember_device": true})).await;
    let tokens = pass_totp(&app, &clock, &secret, LAPTOP, &pending).await;
    let fresh = json!({"device_token": tokens["device_token"]});
    assert!(trusted(&scored(&app, "ivan", LAPTOP, fresh.clone()).await));
    let (status, removed) = remove(&app, LAPTOP, access(&tokens), text(&tokens["device_id"])).await;
    assert_eq!(status, 200, "{removed}");
    let forgotten = scored(&app, "ivan", LAPTOP, fresh).await;
    assert!(!trusted(&forgotten), "{forgotten}");
    assert!(factor_names(&forgotten).contains(&"new_device"), "{forgotten}");
}
