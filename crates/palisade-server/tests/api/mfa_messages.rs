//! SMS and e-mail second factors over HTTP, through the real senders: e-mail goes through the SMTP
//! sender (lettre) to a real SMTP server, `src/notify/smtp_sink.py` (Python's aiosmtpd), and text
//! messages through the Twilio sender (reqwest) to a fake Twilio Messages API on a loopback port.
//! Every code a test types is read out of what the provider received, as a user would.
//!
//! Covered: enrolment and confirmation, the login's second step, the resend throttle (30 s, and 10
//! an hour), codes bound to their login and spent once, one live code per user and purpose, expiry,
//! malformed numbers, a failing provider (503 and the audit chain), a server without providers, and
//! enhanced MFA over both factors. Time is a manual clock: windows are crossed without sleeping.
//!
//! Without python3 and aiosmtpd the e-mail tests say why and pass, except under `CI=true` where
//! they fail (as the SMTP sender's own tests do).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use palisade_core::clock::ManualClock;
use palisade_server::Application;
use serde_json::{Value, json};
use time::Duration;

use crate::smtp_sink::SmtpSink;
use crate::{PASSWORD, TestApp};

// ---- the SMTP server ---------------------------------------------------------------------------

/// The From of every e-mail.
const SMTP_FROM: &str = "Palisade <no-reply@example.com>";

// ---- the fake Twilio -----------------------------------------------------------------------------

const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "5up3r-s3cret-auth-token-0123456789";
const TWILIO_FROM: &str = "+15005550006";

/// One request to the Messages resource, as the fake read it.
#[derive(Debug, Clone)]
struct Sms {
    /// The account in the path.
    sid: String,
    /// The basic-auth `user:password`, decoded.
    authorization: Option<String>,
    content_type: Option<String>,
    to: String,
    from: String,
    body: String,
}

#[derive(Default)]
struct TwilioState {
    /// Every request, accepted or not. A std mutex: never held across an `.await`.
    received: Mutex<Vec<Sms>>,
    /// Answer 500 to every authenticated request.
    failing: AtomicBool,
}

/// A fake Twilio Messages API on a loopback port: checks the basic auth and the account as Twilio
/// does, records each form, and answers 201 (or 500 when told to fail).
struct FakeTwilio {
    base: String,
    state: Arc<TwilioState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn twilio_messages(
    State(state): State<Arc<TwilioState>>,
    UrlPath(sid): UrlPath<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name| headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok()).map(str::to_owned);
    let authorization = header(header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Basic ").map(str::to_owned))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let field =
        |name: &str| url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let sms = Sms {
        sid: sid.clone(),
        authorization: authorization.clone(),
        content_type: header(header::CONTENT_TYPE),
        to: field("To").unwrap_or_default(),
        from: field("From").unwrap_or_default(),
        body: field("Body").unwrap_or_default(),
    };
    state.received.lock().unwrap().push(sms.clone());
    if authorization.as_deref() != Some(format!("{TWILIO_SID}:{TWILIO_TOKEN}").as_str()) || sid != TWILIO_SID {
        let error = json!({"code": 20003, "message": "Authenticate", "status": 401});
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    if state.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    let answer = json!({
        "sid": "SM0123456789abcdef0123456789abcdef",
        "account_sid": sid,
        "to": sms.to,
        "from": sms.from,
        "status": "queued",
    });
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

impl FakeTwilio {
    async fn start() -> Self {
        let state = Arc::new(TwilioState::default());
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(twilio_messages))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, state, server }
    }

    fn received(&self) -> Vec<Sms> {
        self.state.received.lock().unwrap().clone()
    }

    fn last(&self) -> Sms {
        self.received().last().cloned().expect("no text message was sent")
    }

    fn fail(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }
}

// ---- the application -----------------------------------------------------------------------------

/// Which providers the server is configured with.
#[derive(Debug, Clone, Copy)]
struct Providers {
    sms: bool,
    email: bool,
}

const SMS: Providers = Providers { sms: true, email: false };
const EMAIL: Providers = Providers { sms: false, email: true };
const BOTH: Providers = Providers { sms: true, email: true };
const NONE: Providers = Providers { sms: false, email: false };

/// The running providers (the fake Twilio always runs; it is configured only when asked) and the
/// settings that point the server at them.
struct Outside {
    twilio: FakeTwilio,
    sink: Option<SmtpSink>,
}

impl Outside {
    /// `None` when e-mail is asked for and aiosmtpd is missing (the test is skipped).
    async fn start(providers: Providers) -> Option<Self> {
        let sink = if providers.email { Some(SmtpSink::start("the e-mail factor tests")?) } else { None };
        Some(Self { twilio: FakeTwilio::start().await, sink })
    }

    fn settings(&self, providers: Providers) -> Vec<(String, String)> {
        let mut settings = Vec::new();
        let mut set = |k: &str, v: &str| settings.push((k.to_owned(), v.to_owned()));
        if providers.sms {
            set("SMS_PROVIDER", "twilio");
            set("TWILIO_ACCOUNT_SID", TWILIO_SID);
            set("TWILIO_AUTH_TOKEN", TWILIO_TOKEN);
            set("TWILIO_FROM_NUMBER", TWILIO_FROM);
            set("PALISADE_TWILIO_BASE_URL", &self.twilio.base);
        }
        if let (true, Some(sink)) = (providers.email, &self.sink) {
            set("SMTP_SERVER", "127.0.0.1");
            set("SMTP_PORT", &sink.port.to_string());
            set("SMTP_TLS", "off");
            set("SMTP_FROM", SMTP_FROM);
        }
        settings
    }
}

/// Like `spawn_app_with_clock`, over a data directory the caller keeps (to start a second server
/// on the same database).
async fn spawn_in(dir: &Path, extra: &[(&str, &str)], clock: Arc<ManualClock>) -> TestApp {
    let config = crate::config(dir, extra);
    let palisade = palisade_server::bootstrap(&config, clock).await.unwrap();
    let app = Application::with_palisade(config, palisade).await.unwrap();
    // The caller keeps `dir`; the app holds an empty one of its own.
    crate::serve(app, tempfile::tempdir().unwrap())
}

struct Messages {
    app: TestApp,
    clock: Arc<ManualClock>,
    outside: Outside,
    /// Kept for a second server on the same database.
    dir: tempfile::TempDir,
}

impl Messages {
    /// A server with `providers` configured and `extra` settings; `None` when the e-mail tests
    /// cannot run here.
    async fn start(providers: Providers, extra: &[(&str, &str)]) -> Option<Self> {
        let outside = Outside::start(providers).await?;
        let clock = Arc::new(ManualClock::fixed());
        let dir = tempfile::tempdir().unwrap();
        let settings = outside.settings(providers);
        let mut pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.extend_from_slice(extra);
        let app = spawn_in(dir.path(), &pairs, clock.clone()).await;
        Some(Self { app, clock, outside, dir })
    }

    fn twilio(&self) -> &FakeTwilio {
        &self.outside.twilio
    }

    fn mails(&self) -> Vec<Value> {
        self.outside.sink.as_ref().expect("no SMTP server for this test").received()
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
    }

    /// Past the resend throttle (30 s per user and method).
    fn past_the_resend_interval(&self) {
        self.advance(30);
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.app.http.post(self.app.url(path)).json(&body).send().await.unwrap()
    }

    async fn post_bearer(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.app.http.post(self.app.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    async fn get_bearer(&self, path: &str, token: &str) -> Value {
        let response = self.app.http.get(self.app.url(path)).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn register(&self, username: &str, email: Option<&str>) {
        let body = json!({"username": username, "password": PASSWORD, "email": email});
        assert_eq!(self.post("/auth/register", body).await.status(), 201);
    }

    /// A password login; the answer (tokens, or the MFA step).
    async fn login(&self, username: &str) -> Value {
        let response = self.post("/auth/login", json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// A password login that must ask for a second factor; its `mfa_token`.
    async fn mfa_token(&self, username: &str) -> String {
        let login = self.login(username).await;
        assert_eq!(login["mfa_required"], true, "{login}");
        login["mfa_token"].as_str().unwrap().to_owned()
    }

    async fn access(&self, username: &str) -> String {
        let login = self.login(username).await;
        login["access_token"].as_str().unwrap_or_else(|| panic!("no tokens: {login}")).to_owned()
    }

    /// `POST /auth/mfa/{method}/send` for a login.
    async fn send(&self, method: &str, mfa_token: &str) -> reqwest::Response {
        self.post(&format!("/auth/mfa/{method}/send"), json!({"mfa_token": mfa_token})).await
    }

    async fn verify(&self, mfa_token: &str, method: &str, code: &str) -> reqwest::Response {
        self.post("/auth/mfa/verify", json!({"mfa_token": mfa_token, "method": method, "code": code})).await
    }

    /// Sets SMS codes up to `phone` and confirms them with the code the fake Twilio received.
    async fn enrol_sms(&self, access: &str, phone: &str) {
        let setup = self.post_bearer("/auth/mfa/sms/setup", access, json!({"phone": phone})).await;
        assert_eq!(setup.status(), 200);
        let code = code_in(&self.twilio().last().body);
        let confirm = self.post_bearer("/auth/mfa/sms/confirm", access, json!({"code": code})).await;
        assert_eq!(confirm.status(), 204);
    }

    /// Sets e-mail codes up to the account's address and confirms them with the code received.
    async fn enrol_email(&self, access: &str) {
        let setup = self.post_bearer("/auth/mfa/email/setup", access, json!({})).await;
        assert_eq!(setup.status(), 200);
        let code = code_in(last_mail(&self.mails())["body"].text());
        let confirm = self.post_bearer("/auth/mfa/email/confirm", access, json!({"code": code})).await;
        assert_eq!(confirm.status(), 204);
    }

    async fn audit(&self) -> Vec<palisade_core::audit::AuditRecord> {
        self.app.palisade.durable_store().audit_records(0, 10_000).await.unwrap()
    }
}

/// The one 6-digit code in a message's text.
fn code_in(text: impl AsRef<str>) -> String {
    let text = text.as_ref();
    let runs: Vec<&str> = text.split(|c: char| !c.is_ascii_digit()).filter(|run| run.len() == 6).collect();
    assert_eq!(runs.len(), 1, "not exactly one 6-digit code in {text:?}");
    runs[0].to_owned()
}

fn last_mail(mails: &[Value]) -> &Value {
    mails.last().expect("no e-mail was received")
}

trait AsText {
    fn text(&self) -> &str;
}

impl AsText for Value {
    fn text(&self) -> &str {
        self.as_str().unwrap_or_else(|| panic!("not a string: {self}"))
    }
}

impl AsRef<str> for Sms {
    fn as_ref(&self) -> &str {
        &self.body
    }
}

/// A 6-digit code that is not `code`.
fn other_than(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The `amr` of a token answer's access token.
async fn amr(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    claims(tokens["access_token"].as_str().unwrap_or_else(|| panic!("no tokens: {tokens}")))["amr"].clone()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

// ---- the tests -------------------------------------------------------------------------------------

#[tokio::test]
async fn email_codes_set_up_confirm_and_pass_a_login_through_smtp() {
    let Some(t) = Messages::start(EMAIL, &[]).await else { return };
    t.register("alice", Some("alice@example.com")).await;
    let access = t.access("alice").await;
    let status = t.get_bearer("/auth/mfa", &access).await;
    assert_eq!(status["available"], json!(["totp", "email"]));

    // No address given: the account's, masked in the answer.
    let setup = t.post_bearer("/auth/mfa/email/setup", &access, json!({})).await;
    assert_eq!(setup.status(), 200);
    let setup: Value = setup.json().await.unwrap();
    assert_eq!(setup, json!({"destination": "a***@example.com", "expires_in": 300}));
    let mails = t.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail["mail_from"], "no-reply@example.com");
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));
    assert_eq!(mail["from"], SMTP_FROM);
    assert_eq!(mail["to"], "alice@example.com");
    assert_eq!(mail["subject"], "Your Palisade code");
    assert_eq!(mail["content_type"], "text/plain");
    let body = mail["body"].text();
    assert!(body.contains("expires in 5 minutes"), "{body:?}");
    let code = code_in(body);
    let status = t.get_bearer("/auth/mfa", &access).await;
    assert_eq!((&status["methods"], &status["pending"]), (&json!([]), &json!(["email"])));
    assert!(t.login("alice").await.get("access_token").is_some(), "not confirmed: logins do not ask for it");

    let wrong = t.post_bearer("/auth/mfa/email/confirm", &access, json!({"code": other_than(&code)})).await;
    let (status, body) = problem(wrong).await;
    assert_eq!((status, body["code"].text()), (401, "INVALID_CREDENTIALS"));
    let confirm = t.post_bearer("/auth/mfa/email/confirm", &access, json!({"code": code})).await;
    assert_eq!(confirm.status(), 204, "a wrong try does not spend the code");
    let again = t.post_bearer("/auth/mfa/email/confirm", &access, json!({"code": code})).await;
    assert_eq!(again.status(), 409, "nothing pending any more");
    let profile = t.get_bearer("/auth/profile", &access).await;
    assert_eq!(profile["mfa_methods"], json!(["email"]));

    let pending = t.login("alice").await;
    assert_eq!(pending["mfa_required"], true, "{pending}");
    assert_eq!(pending["methods"], json!(["email"]));
    assert_eq!(pending["factors_required"], 1);
    assert!(pending.get("access_token").is_none(), "{pending}");
    let mfa_token = pending["mfa_token"].text();

    // The throttle is per user and method: the enrolment's code went out moments ago.
    let (status, body) = problem(t.send("email", mfa_token).await).await;
    assert_eq!((status, body["code"].text()), (429, "RATE_LIMITED"));
    t.past_the_resend_interval();
    let sent = t.send("email", mfa_token).await;
    assert_eq!(sent.status(), 200);
    assert_eq!(sent.json::<Value>().await.unwrap()["expires_in"], 300);
    let mails = t.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(mails[1]["rcpt_tos"], json!(["alice@example.com"]));
    let login_code = code_in(mails[1]["body"].text());

    let resend = t.send("email", mfa_token).await;
    assert_eq!(resend.status(), 429);
    let wait = retry_after(&resend);
    assert!((1..=30).contains(&wait), "Retry-After {wait}");
    assert_eq!(resend.json::<Value>().await.unwrap()["code"], "RATE_LIMITED");
    assert_eq!(t.mails().len(), 2, "a refused resend sends nothing");

    // The refused resend left the live code alone.
    assert_eq!(amr(t.verify(mfa_token, "email", &login_code).await).await, json!(["pwd", "email", "mfa"]));

    // Single use: not even for a new login.
    let next = t.mfa_token("alice").await;
    let (status, body) = problem(t.verify(&next, "email", &login_code).await).await;
    assert_eq!((status, body["code"].text()), (401, "INVALID_CREDENTIALS"));

    let records = t.audit().await;
    let sent: Vec<_> = records.iter().filter(|r| r.kind == "mfa.code_sent").collect();
    assert_eq!(sent.len(), 2, "enrolment and login");
    assert!(sent.iter().all(|r| r.outcome == "success"));
    assert!(records.iter().all(|r| !r.details.contains(&code) && !r.details.contains(&login_code)));
    assert!(records.iter().any(|r| r.kind == "mfa.verified" && r.details.contains("email")));
}

#[tokio::test]
async fn setting_up_email_codes_needs_an_address() {
    let Some(t) = Messages::start(EMAIL, &[]).await else { return };
    t.register("noaddress", None).await;
    let access = t.access("noaddress").await;
    let (status, body) = problem(t.post_bearer("/auth/mfa/email/setup", &access, json!({})).await).await;
    assert_eq!((status, body["errors"][0]["rule"].text()), (422, "email"), "{body}");
    let (status, body) =
        problem(t.post_bearer("/auth/mfa/email/setup", &access, json!({"email": "not an address"})).await).await;
    assert_eq!((status, body["errors"][0]["rule"].text()), (422, "email"), "{body}");
    let given = t.post_bearer("/auth/mfa/email/setup", &access, json!({"email": "Zoe@Example.com"})).await;
    assert_eq!(given.status(), 200);
    let destination = given.json::<Value>().await.unwrap()["destination"].text().to_owned();
    assert!(destination.starts_with("Z***@") || destination.starts_with("z***@"), "{destination}");
    assert_eq!(t.mails().len(), 1);
}

#[tokio::test]
async fn sms_codes_set_up_confirm_and_pass_a_login_through_twilio() {
    let t = Messages::start(SMS, &[]).await.unwrap();
    t.register("bob", None).await;
    let access = t.access("bob").await;
    assert_eq!(t.get_bearer("/auth/mfa", &access).await["available"], json!(["totp", "sms"]));

    for bad in ["0612345678", "+1 abc"] {
        let (status, body) = problem(t.post_bearer("/auth/mfa/sms/setup", &access, json!({"phone": bad})).await).await;
        assert_eq!((status, body["code"].text()), (422, "VALIDATION_ERROR"), "{bad:?}");
        assert_eq!(body["errors"][0]["rule"], "phone", "{bad:?}: {body}");
    }
    assert!(t.twilio().received().is_empty(), "nothing is sent to a malformed number");

    let setup = t.post_bearer("/auth/mfa/sms/setup", &access, json!({"phone": "+33 6 12 34 56 78"})).await;
    assert_eq!(setup.status(), 200);
    assert_eq!(setup.json::<Value>().await.unwrap(), json!({"destination": "+*********78", "expires_in": 300}));
    let received = t.twilio().received();
    assert_eq!(received.len(), 1, "{received:?}");
    let sms = &received[0];
    assert_eq!(sms.sid, TWILIO_SID);
    assert_eq!(sms.authorization.as_deref(), Some(format!("{TWILIO_SID}:{TWILIO_TOKEN}").as_str()));
    assert_eq!(sms.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!((sms.to.as_str(), sms.from.as_str()), ("+33612345678", TWILIO_FROM));
    assert!(sms.body.contains("Palisade") && sms.body.contains("expires in 5 minutes"), "{:?}", sms.body);
    let code = code_in(sms);

    let wrong = t.post_bearer("/auth/mfa/sms/confirm", &access, json!({"code": other_than(&code)})).await;
    assert_eq!(wrong.status(), 401);
    let (status, body) = problem(t.post_bearer("/auth/mfa/sms/confirm", &access, json!({"code": "12345"})).await).await;
    assert_eq!((status, body["errors"][0]["rule"].text()), (422, "code"));
    assert_eq!(t.post_bearer("/auth/mfa/sms/confirm", &access, json!({"code": code})).await.status(), 204);
    assert_eq!(t.get_bearer("/auth/profile", &access).await["mfa_methods"], json!(["sms"]));
    let again = t.post_bearer("/auth/mfa/sms/setup", &access, json!({"phone": "+14155550123"})).await;
    assert_eq!(again.status(), 401, "changing factors needs a session that passed one (MFA_REQUIRED)");

    t.past_the_resend_interval();
    let pending = t.login("bob").await;
    assert_eq!(pending["methods"], json!(["sms"]), "{pending}");
    let mfa_token = pending["mfa_token"].text();
    let (status, body) = problem(t.send("email", mfa_token).await).await;
    assert_eq!((status, body["errors"][0]["rule"].text()), (422, "method"), "email is not this login's method");
    let sent = t.send("sms", mfa_token).await;
    assert_eq!(sent.status(), 200);
    assert_eq!(sent.json::<Value>().await.unwrap()["expires_in"], 300);
    let sms = t.twilio().last();
    assert_eq!((sms.to.as_str(), sms.from.as_str()), ("+33612345678", TWILIO_FROM));
    assert_eq!(sms.authorization.as_deref(), Some(format!("{TWILIO_SID}:{TWILIO_TOKEN}").as_str()));
    let login_code = code_in(&sms);
    assert_eq!(amr(t.verify(mfa_token, "sms", &login_code).await).await, json!(["pwd", "sms", "mfa"]));
    assert_eq!(t.twilio().received().len(), 2);
}

#[tokio::test]
async fn a_login_code_is_bound_to_its_login_and_a_wrong_try_does_not_spend_it() {
    let t = Messages::start(SMS, &[]).await.unwrap();
    t.register("carol", None).await;
    let access = t.access("carol").await;
    t.enrol_sms(&access, "+14155550123").await;
    t.past_the_resend_interval();

    let a = t.mfa_token("carol").await;
    let b = t.mfa_token("carol").await;
    assert_eq!(t.send("sms", &a).await.status(), 200);
    let code_a = code_in(t.twilio().last());
    let (status, body) = problem(t.verify(&b, "sms", &code_a).await).await;
    assert_eq!((status, body["code"].text()), (401, "INVALID_CREDENTIALS"), "A's code on login B");
    // Refused as wrong, not spent: it still completes login A.
    assert_eq!(amr(t.verify(&a, "sms", &code_a).await).await, json!(["pwd", "sms", "mfa"]));

    // Login B is still open and gets its own code.
    t.past_the_resend_interval();
    assert_eq!(t.send("sms", &b).await.status(), 200);
    let code_b = code_in(t.twilio().last());
    assert_eq!(t.verify(&b, "sms", &code_a).await.status(), 401, "A's code, spent, on B");
    assert_eq!(amr(t.verify(&b, "sms", &code_b).await).await, json!(["pwd", "sms", "mfa"]));

    // One live login code per user and method: a code for login D replaces the one for login C.
    t.past_the_resend_interval();
    let c = t.mfa_token("carol").await;
    let d = t.mfa_token("carol").await;
    assert_eq!(t.send("sms", &c).await.status(), 200);
    let code_c = code_in(t.twilio().last());
    t.past_the_resend_interval();
    assert_eq!(t.send("sms", &d).await.status(), 200);
    let code_d = code_in(t.twilio().last());
    if code_c != code_d {
        assert_eq!(t.verify(&c, "sms", &code_c).await.status(), 401, "replaced by D's code");
    }
    assert_eq!(t.verify(&d, "sms", &code_d).await.status(), 200);
}

#[tokio::test]
async fn an_enrolment_code_lives_300_seconds() {
    let t = Messages::start(SMS, &[]).await.unwrap();
    t.register("dave", None).await;
    let access = t.access("dave").await;
    let setup = |phone: &'static str| t.post_bearer("/auth/mfa/sms/setup", &access, json!({"phone": phone}));
    assert_eq!(setup("+14155550123").await.status(), 200);
    let old = code_in(t.twilio().last());
    t.advance(301);
    let (status, body) = problem(t.post_bearer("/auth/mfa/sms/confirm", &access, json!({"code": old})).await).await;
    assert_eq!((status, body["code"].text()), (401, "INVALID_CREDENTIALS"), "older than 300 s");

    // A new setup of the still pending number sends a new code, right until its 300th second.
    assert_eq!(setup("+14155550123").await.status(), 200);
    let fresh = code_in(t.twilio().last());
    t.advance(299);
    assert_eq!(t.post_bearer("/auth/mfa/sms/confirm", &access, json!({"code": fresh})).await.status(), 204);
}

#[tokio::test]
async fn a_login_code_expires_while_its_login_stays_open() {
    // The login's mfa_token lives 300 s, as long as a code by default: a shorter code lifetime shows
    // the code's own expiry.
    let t = Messages::start(SMS, &[("PALISADE_MFA_CODE_TTL", "60")]).await.unwrap();
    t.register("erin", None).await;
    let access = t.access("erin").await;
    t.enrol_sms(&access, "+14155550123").await;
    t.past_the_resend_interval();

    let token = t.mfa_token("erin").await;
    let sent = t.send("sms", &token).await;
    assert_eq!(sent.json::<Value>().await.unwrap()["expires_in"], 60);
    let sms = t.twilio().last();
    assert!(sms.body.contains("expires in 1 minute."), "{:?}", sms.body);
    let code = code_in(&sms);
    t.advance(60);
    let (status, body) = problem(t.verify(&token, "sms", &code).await).await;
    assert_eq!((status, body["code"].text()), (401, "INVALID_CREDENTIALS"), "expired code, live mfa_token");
    assert_eq!(t.send("sms", &token).await.status(), 200);
    let code = code_in(t.twilio().last());
    assert_eq!(t.verify(&token, "sms", &code).await.status(), 200);
}

#[tokio::test]
async fn at_most_ten_codes_an_hour_are_sent_to_a_user() {
    let t = Messages::start(SMS, &[]).await.unwrap();
    t.register("frank", None).await;
    let access = t.access("frank").await;
    t.enrol_sms(&access, "+14155550123").await;
    // The enrolment's code was the first of the hour; nine login codes follow.
    for n in 2..=10 {
        t.past_the_resend_interval();
        let token = t.mfa_token("frank").await;
        assert_eq!(t.send("sms", &token).await.status(), 200, "code {n}");
    }
    t.past_the_resend_interval();
    let token = t.mfa_token("frank").await;
    let refused = t.send("sms", &token).await;
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    assert!((3600 - 300..=3600).contains(&wait), "the hour started 300 s ago: Retry-After {wait}");
    assert_eq!(t.twilio().received().len(), 10);

    t.advance(i64::try_from(wait).unwrap());
    let token = t.mfa_token("frank").await;
    assert_eq!(t.send("sms", &token).await.status(), 200, "a new hour");
    assert_eq!(t.twilio().received().len(), 11);
}

#[tokio::test]
async fn a_failing_sms_provider_answers_503_and_is_audited() {
    let t = Messages::start(SMS, &[]).await.unwrap();
    t.register("gina", None).await;
    let access = t.access("gina").await;
    t.twilio().fail(true);
    let (status, body) =
        problem(t.post_bearer("/auth/mfa/sms/setup", &access, json!({"phone": "+14155550123"})).await).await;
    assert_eq!((status, body["code"].text()), (503, "SERVICE_UNAVAILABLE"), "{body}");
    let detail = body["detail"].text().to_lowercase();
    assert!(!detail.contains("twilio") && !detail.contains("500"), "a 5xx shows no cause: {body}");
    let tried = t.twilio().received();
    assert_eq!(tried.len(), 1, "the provider was asked");
    let code = code_in(&tried[0]);

    let records = t.audit().await;
    let failed = records.iter().find(|r| r.kind == "mfa.code_sent" && r.outcome == "failure").unwrap_or_else(|| {
        panic!("no failed mfa.code_sent in {:?}", records.iter().map(|r| &r.kind).collect::<Vec<_>>())
    });
    let details: Value = serde_json::from_str(&failed.details).unwrap();
    assert_eq!(details["method"], "sms", "{details}");
    assert!(!failed.details.contains(&code) && !failed.details.contains(TWILIO_TOKEN), "{details}");

    // Back up: a new setup works.
    t.twilio().fail(false);
    t.past_the_resend_interval();
    t.enrol_sms(&access, "+14155550123").await;

    // A login's code through a failing provider: 503 too, audited with the login's purpose.
    t.past_the_resend_interval();
    let token = t.mfa_token("gina").await;
    t.twilio().fail(true);
    assert_eq!(t.send("sms", &token).await.status(), 503);
    let records = t.audit().await;
    let failures: Vec<Value> = records
        .iter()
        .filter(|r| r.kind == "mfa.code_sent" && r.outcome == "failure")
        .map(|r| serde_json::from_str(&r.details).unwrap())
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_ne!(failures[0]["purpose"], failures[1]["purpose"], "enrolment, then login: {failures:?}");
}

#[tokio::test]
async fn without_providers_only_totp_is_offered() {
    let t = Messages::start(NONE, &[]).await.unwrap();
    t.register("hank", Some("hank@example.com")).await;
    let access = t.access("hank").await;
    assert_eq!(t.get_bearer("/auth/mfa", &access).await["available"], json!(["totp"]));
    for (path, body) in
        [("/auth/mfa/sms/setup", json!({"phone": "+14155550123"})), ("/auth/mfa/email/setup", json!({}))]
    {
        let (status, answer) = problem(t.post_bearer(path, &access, body).await).await;
        assert_eq!((status, answer["code"].text()), (422, "VALIDATION_ERROR"), "{path}");
        assert_eq!(answer["errors"][0]["rule"], "method", "{path}: {answer}");
    }
    assert!(t.twilio().received().is_empty());
    let status = t.get_bearer("/auth/mfa", &access).await;
    assert_eq!(status["pending"], json!([]), "nothing was set up");
}

#[tokio::test]
async fn an_sms_only_user_cannot_log_in_on_a_server_without_an_sms_provider() {
    let mut t = Messages::start(SMS, &[]).await.unwrap();
    t.register("ivy", None).await;
    let access = t.access("ivy").await;
    t.enrol_sms(&access, "+14155550123").await;
    assert_eq!(t.login("ivy").await["methods"], json!(["sms"]));

    // The same database, served without SMS settings.
    t.app.stop.take().unwrap().send(()).unwrap();
    (&mut t.app.server).await.unwrap().unwrap();
    let app = spawn_in(t.dir.path(), &[], t.clock.clone()).await;
    let response = app.http.post(app.url("/auth/login")).json(&json!({"username": "ivy", "password": PASSWORD}));
    let (status, body) = problem(response.send().await.unwrap()).await;
    assert_eq!((status, body["code"].text()), (503, "SERVICE_UNAVAILABLE"), "fails closed: {body}");
    assert!(body.get("access_token").is_none() && body.get("mfa_token").is_none(), "{body}");
}

#[tokio::test]
async fn enhanced_mfa_passes_an_sms_code_then_an_email_code() {
    let Some(t) = Messages::start(BOTH, &[("PALISADE_MFA_FACTORS", "2")]).await else { return };
    t.register("jack", Some("jack@example.com")).await;
    let access = t.access("jack").await;
    assert_eq!(t.get_bearer("/auth/mfa", &access).await["available"], json!(["totp", "sms", "email"]));
    t.enrol_sms(&access, "+14155550123").await;
    // Adding a second factor needs a session that passed the first: log in with the SMS code.
    let (status, body) = problem(t.post_bearer("/auth/mfa/email/setup", &access, json!({})).await).await;
    assert_eq!((status, body["code"].text()), (401, "MFA_REQUIRED"));
    t.past_the_resend_interval();
    let token = t.login("jack").await["mfa_token"].text().to_owned();
    assert_eq!(t.send("sms", &token).await.status(), 200);
    let access: Value = t.verify(&token, "sms", &code_in(t.twilio().last())).await.json().await.unwrap();
    let access = access["access_token"].text().to_owned();
    t.enrol_email(&access).await;
    assert_eq!(t.get_bearer("/auth/profile", &access).await["mfa_methods"], json!(["sms", "email"]));
    t.past_the_resend_interval();

    let pending = t.login("jack").await;
    assert_eq!(pending["factors_required"], 2, "{pending}");
    assert_eq!(pending["methods"], json!(["sms", "email"]));
    let token = pending["mfa_token"].text();

    assert_eq!(t.send("sms", token).await.status(), 200);
    let step = t.verify(token, "sms", &code_in(t.twilio().last())).await;
    assert_eq!(step.status(), 200);
    let step: Value = step.json().await.unwrap();
    assert_eq!(step["mfa_required"], true, "{step}");
    assert_eq!(step["methods"], json!(["email"]));
    assert_eq!(step["factors_required"], 1);
    assert_eq!(step["mfa_token"], token);
    assert!(step.get("access_token").is_none(), "{step}");
    let (status, body) = problem(t.send("sms", token).await).await;
    assert_eq!((status, body["errors"][0]["rule"].text()), (422, "method"), "sms was passed already");

    assert_eq!(t.send("email", token).await.status(), 200);
    let mail = last_mail(&t.mails()).clone();
    assert_eq!(mail["rcpt_tos"], json!(["jack@example.com"]));
    let amr = amr(t.verify(token, "email", &code_in(mail["body"].text())).await).await;
    assert_eq!(amr, json!(["pwd", "sms", "email", "mfa"]));
}

/// A setup refused by the resend throttle (429) must change nothing: the code already sent to the
/// first number may only ever confirm that number.
#[tokio::test]
async fn a_throttled_re_setup_leaves_the_pending_number_as_it_was() {
    let t = Messages::start(SMS, &[]).await.unwrap();
    t.register("kate", None).await;
    let access = t.access("kate").await;
    let first = t.post_bearer("/auth/mfa/sms/setup", &access, json!({"phone": "+14155550123"})).await;
    assert_eq!(first.status(), 200);
    let code = code_in(t.twilio().last());
    let second = t.post_bearer("/auth/mfa/sms/setup", &access, json!({"phone": "+14155550199"})).await;
    assert_eq!(second.status(), 429);
    assert_eq!(t.twilio().received().len(), 1, "nothing was sent to the second number");

    // The code of the first number confirms the first number, or nothing.
    let confirm = t.post_bearer("/auth/mfa/sms/confirm", &access, json!({"code": code})).await;
    if confirm.status() == 204 {
        t.past_the_resend_interval();
        let token = t.mfa_token("kate").await;
        assert_eq!(t.send("sms", &token).await.status(), 200);
        assert_eq!(
            t.twilio().last().to,
            "+14155550123",
            "login codes go to a number that never received a confirmation code"
        );
    } else {
        assert_eq!(confirm.status(), 401);
    }
}
