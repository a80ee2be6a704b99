//! Compliance over HTTP (issue #11): the consent ledger (who, what, when, how, per-type validity,
//! withdrawal scheduling erasure), the export of everything held on a user (without secrets, the
//! audit history streamed in bounded memory), scheduled erasure carried out by the job (sessions
//! ended, account deleted, audit records redacted with the chain still verifying, keys shredded),
//! the last administrator kept, real-time checks audited by a hash of the data, and 401 everywhere
//! without credentials. Time is a manual clock; the erasure job is called directly.

use std::sync::Arc;

use palisade_core::audit::{AuditEvent, AuditKind, AuditRecord, Outcome, PSEUDONYM_PREFIX, REDACTED_DETAILS};
use palisade_core::clock::{Clock as _, ManualClock};
use palisade_core::mfa::totp::TotpSecret;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::{PASSWORD, TestApp, login_user, make_admin, register_user, spawn_app, spawn_app_with_clock, status_json};

/// The user agent every call of these tests sends (the ledger must record it).
const AGENT: &str = "ComplianceTest/1.0 (palisade)";
/// A consent text, version 1.
const TEXT_V1: &str = "I agree that Example Ltd processes my account data to provide the service.";
/// A user id no account has.
const NOBODY: &str = "0190a000-0000-7000-8000-000000000001";

/// An app on a manual clock.
struct Env {
    app: TestApp,
    clock: Arc<ManualClock>,
}

async fn spawn(extra: &[(&str, &str)]) -> Env {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_app_with_clock(extra, clock.clone()).await;
    Env { app, clock }
}

/// Registers and logs `username` in; their id and access token.
async fn user(app: &TestApp, username: &str) -> (String, String) {
    let id = register_user(app, username).await;
    (id, login_user(app, username).await["access_token"].as_str().unwrap().to_owned())
}

/// Registers `username` as an administrator; their id and access token.
async fn admin(app: &TestApp, username: &str) -> (String, String) {
    let id = register_user(app, username).await;
    make_admin(app, &id).await;
    (id, login_user(app, username).await["access_token"].as_str().unwrap().to_owned())
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(path)).header("user-agent", AGENT);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    send(app, reqwest::Method::GET, path, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> (u16, Value) {
    send(app, reqwest::Method::POST, path, Some(token), Some(body)).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    send(app, reqwest::Method::DELETE, path, Some(token), None).await
}

async fn give(app: &TestApp, token: &str, consent_type: &str, text: &str, version: &str) -> (u16, Value) {
    post(app, "/compliance/consents", token, &json!({"type": consent_type, "text": text, "version": version})).await
}

fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap_or_else(|| panic!("not a time: {value}")), &Rfc3339).unwrap()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}"))
}

async fn chain(app: &TestApp) -> Vec<AuditRecord> {
    app.palisade.durable_store().audit_records(0, 1_000_000).await.unwrap()
}

fn is_about(record: &AuditRecord, who: &[&str]) -> bool {
    [&record.actor, &record.subject].into_iter().any(|f| f.as_deref().is_some_and(|v| who.contains(&v)))
}

/// The names of every member of every object in `value`, at any depth.
fn member_names(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (name, inner) in members {
                names.push(name.clone());
                member_names(inner, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| member_names(v, names)),
        _ => {}
    }
}

// ---- consent ledger ----------------------------------------------------------------------------

#[tokio::test]
async fn the_consent_ledger_records_who_what_when_and_how_and_withdrawal_schedules_erasure() {
    let env = spawn(&[("PALISADE_COMPLIANCE_CONSENT_VALIDITY_PER_TYPE", "marketing=86400")]).await;
    let app = &env.app;
    let start = env.clock.now();
    admin(app, "root").await;
    let (ada, ada_token) = user(app, "ada").await;
    user(app, "bob").await;

    let (status, given) = give(app, &ada_token, "data_processing", TEXT_V1, "1").await;
    assert_eq!(status, 201, "{given}");
    assert_eq!(
        (given["type"].as_str(), given["seq"].as_i64(), given["action"].as_str(), given["version"].as_str()),
        (Some("data_processing"), Some(1), Some("given"), Some("1"))
    );
    assert_eq!(given["method"], "web_form", "the default method");
    assert_eq!(given["ip_address"], "127.0.0.1");
    assert_eq!(given["user_agent"], AGENT);
    assert_eq!(text(&given["text_sha256"]).len(), 64);
    assert_eq!(instant(&given["recorded_at"]), start);
    assert_eq!(instant(&given["valid_until"]), start + Duration::days(365), "365 days by default");

    // The per-type validity setting holds for marketing only.
    let body = json!({"type": "marketing", "text": "Send me news.", "version": "2024-01", "method": "api"});
    let (status, marketing) = post(app, "/compliance/consents", &ada_token, &body).await;
    assert_eq!(status, 201, "{marketing}");
    assert_eq!(marketing["method"], "api");
    assert_eq!(instant(&marketing["valid_until"]), start + Duration::days(1));

    // A version's text cannot change; the same text again is a second entry.
    let (status, problem) = give(app, &ada_token, "data_processing", "Another text entirely.", "1").await;
    assert_eq!(status, 409, "{problem}");
    let (status, again) = give(app, &ada_token, "data_processing", TEXT_V1, "1").await;
    assert_eq!((status, again["seq"].as_i64(), again["action"].as_str()), (201, Some(2), Some("given")), "{again}");
    assert_eq!(again["text_sha256"], given["text_sha256"]);

    // Bad input: a 422 naming the field.
    for (body, field) in [
        (json!({"type": "marketing", "version": "1"}), "text"),
        (json!({"type": "marketing", "text": "   ", "version": "1"}), "text"),
        (json!({"type": "marketing", "text": "Yes."}), "version"),
        (json!({"type": "Marketing!", "text": "Yes.", "version": "1"}), "type"),
        (json!({"text": "Yes.", "version": "1"}), "type"),
        (json!({"type": "marketing", "text": "Yes.", "version": "1", "method": "by carrier pigeon"}), "method"),
    ] {
        let (status, problem) = post(app, "/compliance/consents", &ada_token, &body).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(text(&problem["detail"]).contains(field), "{body} → {problem}");
    }

    let (status, list) = get(app, "/compliance/consents", &ada_token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["user_id"], ada.as_str());
    let states: Vec<(&str, &str, i64)> = list["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (text(&c["latest"]["type"]), text(&c["status"]), c["latest"]["seq"].as_i64().unwrap()))
        .collect();
    assert_eq!(states, vec![("data_processing", "given", 2), ("marketing", "given", 1)]);
    let history = list["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{list}");
    assert!(history.iter().all(|c| c["ip_address"] == "127.0.0.1" && c["user_agent"] == AGENT), "{list}");

    // Marketing lapses after its one day; data processing holds. (The access tokens lapse too.)
    env.clock.advance(Duration::days(2));
    let ada_token = login_user(app, "ada").await["access_token"].as_str().unwrap().to_owned();
    let bob_token = login_user(app, "bob").await["access_token"].as_str().unwrap().to_owned();
    let root_token = login_user(app, "root").await["access_token"].as_str().unwrap().to_owned();
    let (_, list) = get(app, "/compliance/consents", &ada_token).await;
    let statuses: Vec<&str> = list["consents"].as_array().unwrap().iter().map(|c| text(&c["status"])).collect();
    assert_eq!(statuses, vec!["given", "expired"], "{list}");

    // Withdrawing marketing schedules nothing; a second withdrawal finds nothing given.
    let (status, withdrawn) = delete(app, "/compliance/consents/marketing", &ada_token).await;
    assert_eq!(status, 200, "{withdrawn}");
    assert_eq!(
        withdrawn,
        json!({"withdrawn": true, "data_deletion_scheduled": false, "deletion_date": null, "erasure_request_id": null})
    );
    let (status, problem) = delete(app, "/compliance/consents/marketing", &ada_token).await;
    assert_eq!(status, 404, "{problem}");
    let (status, _) = delete(app, "/compliance/consents/Not%20A%20Type", &ada_token).await;
    assert_eq!(status, 422);
    let (status, _) = delete(app, "/compliance/consents/analytics", &ada_token).await;
    assert_eq!(status, 404, "never given");

    // Withdrawing data processing schedules the erasure 30 days on.
    let (status, withdrawn) = delete(app, "/compliance/consents/data_processing", &ada_token).await;
    assert_eq!(status, 200, "{withdrawn}");
    assert_eq!(
        (withdrawn["withdrawn"].as_bool(), withdrawn["data_deletion_scheduled"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(instant(&withdrawn["deletion_date"]), env.clock.now() + Duration::days(30));
    let request_id = text(&withdrawn["erasure_request_id"]);
    let (status, request) = get(app, &format!("/compliance/erasure/{request_id}"), &ada_token).await;
    assert_eq!(status, 200, "{request}");
    assert_eq!((request["state"].as_str(), request["reason"].as_str()), (Some("scheduled"), Some("consent_withdrawn")));
    assert_eq!(request["user_id"], ada.as_str());

    let (_, list) = get(app, "/compliance/consents", &ada_token).await;
    let statuses: Vec<&str> = list["consents"].as_array().unwrap().iter().map(|c| text(&c["status"])).collect();
    assert_eq!(statuses, vec!["withdrawn", "withdrawn"], "{list}");
    let history = list["history"].as_array().unwrap();
    assert_eq!(history.len(), 5, "append-only: {list}");
    let last = history.iter().find(|c| c["type"] == "data_processing" && c["seq"] == 3).unwrap();
    assert_eq!((last["action"].as_str(), &last["valid_until"]), (Some("withdrawn"), &Value::Null), "{last}");

    // Someone else's consents: an administrator only.
    let path = format!("/compliance/consents?user_id={ada}");
    assert_eq!(get(app, &path, &bob_token).await.0, 403);
    let (status, theirs) = get(app, &path, &root_token).await;
    assert_eq!((status, theirs["history"].as_array().map(Vec::len)), (200, Some(5)), "{theirs}");
    assert_eq!(get(app, "/compliance/consents?user_id=nope", &root_token).await.0, 422);
    let (_, bobs) = get(app, "/compliance/consents", &bob_token).await;
    assert_eq!(bobs["history"], json!([]), "bob sees his own, empty ledger");

    // Each entry is in the audit chain, with the request's facts, by hash and never the text.
    let records = chain(app).await;
    let given: Vec<&AuditRecord> =
        records.iter().filter(|r| r.kind == "compliance.consent_given" && r.subject.as_deref() == Some(&ada)).collect();
    let withdrawn: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.kind == "compliance.consent_withdrawn" && r.subject.as_deref() == Some(&ada))
        .collect();
    assert_eq!((given.len(), withdrawn.len()), (3, 2));
    for record in given.iter().chain(&withdrawn) {
        assert_eq!((record.ip.as_deref(), record.user_agent.as_deref()), (Some("127.0.0.1"), Some(AGENT)));
        assert_eq!(record.actor.as_deref(), Some(ada.as_str()));
        assert!(!record.details.contains("Example Ltd"), "{}", record.details);
    }
    assert!(given[0].details.contains("text_sha256"), "{}", given[0].details);
    assert!(records.iter().any(|r| r.kind == "compliance.erasure_requested" && r.subject.as_deref() == Some(&ada)));
}

// ---- export ------------------------------------------------------------------------------------

#[tokio::test]
async fn an_export_holds_everything_about_the_user_and_no_secret() {
    let env = spawn(&[]).await;
    let app = &env.app;
    let (_root, root_token) = admin(app, "root").await;
    let (ada, ada_token) = user(app, "ada").await;
    let (_bob, bob_token) = user(app, "bob").await;

    let (status, created) =
        post(app, "/auth/api-keys", &ada_token, &json!({"name": "exporter", "scopes": ["read:data"]})).await;
    assert_eq!(status, 201, "{created}");
    let api_key = text(&created["api_key"]).to_owned();
    let key_secret = api_key.rsplit('_').next().unwrap().to_owned();

    let (status, setup) = post(app, "/auth/mfa/totp/setup", &ada_token, &json!({})).await;
    assert_eq!(status, 200, "{setup}");
    let totp = text(&setup["secret"]).to_owned();
    let backup_codes: Vec<String> =
        setup["backup_codes"].as_array().unwrap().iter().map(|c| text(c).to_owned()).collect();
    let secret = TotpSecret::from_base32(&totp).unwrap();
    let code = secret.code_at(u64::try_from(env.clock.now().unix_timestamp()).unwrap()).unwrap();
    let (status, _) = post(app, "/auth/mfa/totp/confirm", &ada_token, &json!({"code": code})).await;
    assert_eq!(status, 204);

    assert_eq!(give(app, &ada_token, "marketing", "Send me news.", "1").await.0, 201);

    let response = app
        .http
        .get(app.url("/compliance/export"))
        .bearer_auth(&ada_token)
        .header("user-agent", AGENT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.text().await.unwrap();
    let export: Value = serde_json::from_str(&body).expect("the export is valid JSON");

    assert_eq!(export["format"], "palisade-export/1");
    assert_eq!(
        (export["user"]["user_id"].as_str(), export["user"]["username"].as_str()),
        (Some(ada.as_str()), Some("ada"))
    );
    assert!(!export["sessions"].as_array().unwrap().is_empty(), "the login's session: {}", export["sessions"]);
    let keys = export["api_keys"].as_array().unwrap();
    assert_eq!((keys.len(), keys[0]["name"].as_str()), (1, Some("exporter")), "{keys:?}");
    let factors = export["mfa_factors"].as_array().unwrap();
    assert!(factors.iter().any(|f| f["kind"] == "totp" && f["confirmed_at"].is_string()), "{factors:?}");
    let consents = export["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 1, "{consents:?}");
    let hash = text(&consents[0]["text_sha256"]);
    assert_eq!(export["consent_texts"][hash]["text"], "Send me news.");

    // No secret: not the API key, not the TOTP seed (in any case), not a backup code, and no
    // member that would carry one.
    assert!(!body.contains(&api_key) && !body.contains(&key_secret), "the API key leaks");
    assert!(!body.contains(&totp) && !body.to_lowercase().contains(&totp.to_lowercase()), "the TOTP secret leaks");
    for code in &backup_codes {
        assert!(!body.contains(code.as_str()), "backup code {code} leaks");
    }
    let mut names = Vec::new();
    for part in ["user", "sessions", "devices", "mfa_factors", "passkeys", "api_keys"] {
        member_names(&export[part], &mut names);
    }
    for name in &names {
        let name = name.to_lowercase();
        assert!(!["secret", "hash", "seed", "wrapped"].iter().any(|w| name.contains(w)), "member {name}");
    }

    // The audit events about the user, in chain order, all of them, counted.
    let events = export["audit_events"].as_array().unwrap();
    assert_eq!(export["audit_events_count"].as_u64(), Some(events.len() as u64));
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let expected: Vec<i64> =
        chain(app).await.iter().filter(|r| is_about(r, &[ada.as_str(), "ada"])).map(|r| r.seq).collect();
    assert_eq!(seqs, expected);
    let kinds: Vec<&str> = events.iter().map(|e| text(&e["kind"])).collect();
    for kind in
        ["user.registered", "auth.login", "apikey.created", "compliance.consent_given", "compliance.data_exported"]
    {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    // Another user's export: an administrator only; an unknown or malformed id.
    assert_eq!(get(app, &format!("/compliance/export?user_id={ada}"), &bob_token).await.0, 403);
    let (status, theirs) = get(app, &format!("/compliance/export?user_id={ada}"), &root_token).await;
    assert_eq!((status, theirs["user"]["username"].as_str()), (200, Some("ada")));
    assert_eq!(get(app, &format!("/compliance/export?user_id={NOBODY}"), &root_token).await.0, 404);
    assert_eq!(get(app, "/compliance/export?user_id=not-an-id", &root_token).await.0, 422);
}

/// How many elements the export's `audit_events` array has, read without keeping them.
struct Counted(u64);

impl<'de> serde::Deserialize<'de> for Counted {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> serde::de::Visitor<'de> for Count {
            type Value = Counted;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Counted, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Counted(n))
            }
        }
        deserializer.deserialize_seq(Count)
    }
}

/// The members of the export this test reads; the others are skipped as they stream by.
#[derive(serde::Deserialize)]
struct ExportTail {
    format: String,
    audit_events: Counted,
    audit_events_count: u64,
}

/// The body chunks, read as one `std::io::Read` by a blocking JSON parser.
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => (self.current, self.at) = (chunk, 0),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Issue #11: "an export of a large history streams in bounded memory (test with 100k audit
/// events)". The body is parsed as it arrives, never held whole.
#[tokio::test]
async fn large_export_streams() {
    const EVENTS: usize = 100_000;
    let app = spawn_app().await;
    let (ada, ada_token) = user(&app, "ada").await;
    let before =
        app.palisade.durable_store().audit_records_about(&[ada.clone(), "ada".into()], 0, 10_000).await.unwrap();

    let started = std::time::Instant::now();
    for chunk in 0..EVENTS / 1000 {
        let appends = (0..1000).map(|i| {
            let event = AuditEvent::new(AuditKind::DiagnosticsRun, Outcome::Success)
                .actor("test:bulk")
                .subject(ada.clone())
                .detail("bulk", chunk * 1000 + i);
            app.palisade.audit().append(event)
        });
        for appended in futures::future::join_all(appends).await {
            appended.unwrap();
        }
    }
    let appended_in = started.elapsed();

    let peak_before = peak_rss_kib();
    let started = std::time::Instant::now();
    let mut response = app
        .http
        .get(app.url("/compliance/export"))
        .bearer_auth(&ada_token)
        .header("user-agent", AGENT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (sender, chunks) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let parser = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader { chunks, current: Vec::new(), at: 0 };
        serde_json::from_reader::<_, ExportTail>(std::io::BufReader::new(reader))
    });
    let (mut count, mut bytes) = (0u64, 0usize);
    while let Some(chunk) = response.chunk().await.unwrap() {
        count += 1;
        bytes += chunk.len();
        sender.send(chunk.to_vec()).await.unwrap();
    }
    drop(sender);
    let tail = parser.await.unwrap().expect("the streamed export is valid JSON");
    let exported_in = started.elapsed();
    // The process's peak RSS (server and test together; other tests running alongside add theirs).
    let peak_after = peak_rss_kib();
    eprintln!(
        "large_export_streams: {EVENTS} events appended in {appended_in:?}; export of {bytes} bytes in {count} \
         chunks in {exported_in:?}; peak RSS {peak_before} KiB before the export, {peak_after} KiB after"
    );

    assert_eq!(tail.format, "palisade-export/1");
    // Those before, the bulk, and the export's own record.
    let expected = (before.len() + EVENTS + 1) as u64;
    assert_eq!(tail.audit_events_count, expected);
    assert_eq!(tail.audit_events.0, expected, "the array holds as many events as it says");
    assert!(count > 10, "sent in {count} chunks");
}

/// The process's peak resident set (`VmHWM`), in KiB; 0 where /proc is not there.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

// ---- erasure -----------------------------------------------------------------------------------

#[tokio::test]
async fn an_erasure_is_scheduled_cancellable_and_carried_out_by_the_job() {
    let env = spawn(&[("PALISADE_COMPLIANCE_DELETION_DELAY", "60")]).await;
    let app = &env.app;
    let (_root, root_token) = admin(app, "root").await;
    let (erin, erin_token) = user(app, "erin").await;
    let (_bob, bob_token) = user(app, "bob").await;

    // Data the application encrypted for erin, with the administrator's crypto key.
    let (status, created) = post(
        app,
        "/auth/api-keys",
        &root_token,
        &json!({"name": "app", "scopes": ["crypto:encrypt", "crypto:decrypt"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let crypto_key = text(&created["api_key"]).to_owned();
    let context =
        json!({"data_classification": "CONFIDENTIAL", "purpose": "billing", "user_id": erin, "field": "iban"});
    let crypto = |path: &'static str, body: Value| {
        let request = app.http.post(app.url(path)).header("x-api-key", crypto_key.as_str()).json(&body);
        async move { status_json(request.send().await.unwrap()).await }
    };
    let (status, envelope) = crypto("/crypto/encrypt", json!({"plaintext": "DE89 3704", "context": context})).await;
    assert_eq!(status, 200, "{envelope}");
    let open = json!({"envelope": envelope, "context": context});
    assert_eq!(crypto("/crypto/decrypt", open.clone()).await.0, 200);

    // Things about erin in the chain: a consent with address and agent, a failed login by name, a key.
    assert_eq!(give(app, &erin_token, "marketing", "Send me news.", "1").await.0, 201);
    let (status, _) = send(
        app,
        reqwest::Method::POST,
        "/auth/login",
        None,
        Some(&json!({"username": "erin", "password": "not-the-password-at-all"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, created) =
        post(app, "/auth/api-keys", &erin_token, &json!({"name": "mine", "scopes": ["read:data"]})).await;
    assert_eq!(status, 201, "{created}");
    let erin_key = text(&created["api_key"]).to_owned();

    // Request (with no body), ask again (same request), cancel, request again (a new one).
    let now = env.clock.now();
    let (status, first) = send(app, reqwest::Method::POST, "/compliance/erasure", Some(&erin_token), None).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(
        (first["state"].as_str(), first["reason"].as_str(), first["user_id"].as_str()),
        (Some("scheduled"), Some("user_request"), Some(erin.as_str()))
    );
    assert_eq!(first["requested_by"], erin.as_str());
    assert_eq!(instant(&first["deletion_date"]), now + Duration::seconds(60));
    let first_id = text(&first["request_id"]).to_owned();
    let (status, again) = post(app, "/compliance/erasure", &erin_token, &json!({})).await;
    assert_eq!((status, again["request_id"].as_str()), (202, Some(first_id.as_str())), "{again}");
    // Nobody else sees or cancels it.
    assert_eq!(get(app, &format!("/compliance/erasure/{first_id}"), &bob_token).await.0, 404);
    assert_eq!(delete(app, &format!("/compliance/erasure/{first_id}"), &bob_token).await.0, 404);
    assert_eq!(get(app, "/compliance/erasure?all=true", &bob_token).await.0, 403);
    assert_eq!(get(app, &format!("/compliance/erasure?user_id={erin}"), &bob_token).await.0, 403);
    let (status, cancelled) = delete(app, &format!("/compliance/erasure/{first_id}"), &erin_token).await;
    assert_eq!((status, cancelled["state"].as_str()), (200, Some("cancelled")), "{cancelled}");
    assert_eq!(delete(app, &format!("/compliance/erasure/{first_id}"), &erin_token).await.0, 409);
    let (status, second) = post(app, "/compliance/erasure", &erin_token, &json!({})).await;
    assert_eq!(status, 202, "{second}");
    let id = text(&second["request_id"]).to_owned();
    assert_ne!(id, first_id);
    let (_, mine) = get(app, "/compliance/erasure", &erin_token).await;
    let listed: Vec<(&str, &str)> =
        mine["requests"].as_array().unwrap().iter().map(|r| (text(&r["request_id"]), text(&r["state"]))).collect();
    assert_eq!(listed, vec![(id.as_str(), "scheduled"), (first_id.as_str(), "cancelled")], "newest first");

    // Not due yet: the job leaves it.
    assert_eq!(app.palisade.compliance().run_due_erasures("test-owner").await.unwrap(), 0);
    let about_erin: Vec<i64> =
        chain(app).await.iter().filter(|r| is_about(r, &[erin.as_str(), "erin"])).map(|r| r.seq).collect();
    assert!(about_erin.len() >= 6, "{about_erin:?}");

    env.clock.advance(Duration::seconds(61));
    assert_eq!(app.palisade.compliance().run_due_erasures("test-owner").await.unwrap(), 1);
    let (status, done) = get(app, &format!("/compliance/erasure/{id}"), &root_token).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!((done["state"].as_str(), done["step"].as_str()), (Some("completed"), Some("done")), "{done}");
    assert_eq!(done["user_id"], Value::Null, "the request forgets whose it was: {done}");
    assert_eq!(done["counts"]["account_deleted"], true, "{done}");
    assert!(done["counts"]["audit_redacted"].as_u64().unwrap() > 0, "{done}");
    assert!(done["counts"]["keys_destroyed"].as_u64().unwrap() >= 1, "{done}");
    assert!(done["finished_at"].is_string(), "{done}");

    // The chain keeps its records, redacted, and still verifies. (Read before the logins below, whose
    // failure for the unknown name "erin" is a new record.)
    let records = chain(app).await;
    let named: Vec<String> = records
        .iter()
        .filter(|r| is_about(r, &[erin.as_str(), "erin"]))
        .map(|r| format!("{} {} {:?} {:?} {}", r.seq, r.kind, r.actor, r.subject, r.details))
        .collect();
    assert!(named.is_empty(), "records still name erin: {named:#?}");
    let completed = records.iter().find(|r| r.kind == "compliance.erasure_completed").unwrap();
    let pseudonym = completed.subject.clone().unwrap();
    assert!(pseudonym.starts_with(PSEUDONYM_PREFIX), "{pseudonym}");
    for seq in &about_erin {
        let record = records.iter().find(|r| r.seq == *seq).unwrap();
        assert!(is_about(record, &[pseudonym.as_str()]), "{record:?}");
        assert_eq!((record.ip.as_deref(), record.user_agent.as_deref()), (None, None), "{record:?}");
        assert_eq!(record.details, REDACTED_DETAILS, "{record:?}");
        assert!(record.redacted_at.is_some());
    }
    for record in &records {
        let all = format!(
            "{:?} {:?} {:?} {:?} {}",
            record.actor, record.subject, record.ip, record.user_agent, record.details
        );
        assert!(!all.contains(&erin), "erin's id is still in record {} ({}): {all}", record.seq, record.kind);
    }
    let report = app.palisade.audit().verify().await.unwrap();
    assert_eq!(report.broken, None);
    assert!(report.redacted >= about_erin.len() as u64, "{report:?}");

    // Erin is gone: no login, no session, no API key, not listed.
    let (status, _) =
        send(app, reqwest::Method::POST, "/auth/login", None, Some(&json!({"username": "erin", "password": PASSWORD})))
            .await;
    assert_eq!(status, 401);
    assert_eq!(get(app, "/auth/profile", &erin_token).await.0, 401, "the old access token is refused");
    assert_eq!(get(app, "/compliance/consents", &erin_token).await.0, 401);
    let (status, _) = send_key(app, "/compliance/consents", &erin_key).await;
    assert_eq!(status, 401, "the API key went with the account");
    let (status, users) = get(app, "/admin/users", &root_token).await;
    assert_eq!(status, 200, "{users}");
    assert!(
        users["users"].as_array().unwrap().iter().all(|u| u["user_id"] != erin.as_str() && u["username"] != "erin")
    );

    // Crypto-shredding: what was encrypted for erin opens no more.
    let (status, problem) = crypto("/crypto/decrypt", open).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("DECRYPTION_FAILED")), "{problem}");

    // A completed request cannot be cancelled.
    let (status, problem) = delete(app, &format!("/compliance/erasure/{id}"), &root_token).await;
    assert_eq!(status, 409, "{problem}");
}

/// GDPR Art. 17: once erased, no request row names the user any more — not the completed one (its
/// `requested_by` when they asked themselves), and the one they cancelled before is gone.
#[tokio::test]
async fn a_completed_erasure_leaves_no_request_naming_the_user() {
    let env = spawn(&[("PALISADE_COMPLIANCE_DELETION_DELAY", "60")]).await;
    let app = &env.app;
    let (_root, root_token) = admin(app, "root").await;
    let (erin, erin_token) = user(app, "erin").await;
    let (status, first) = post(app, "/compliance/erasure", &erin_token, &json!({})).await;
    assert_eq!(status, 202, "{first}");
    let path = format!("/compliance/erasure/{}", text(&first["request_id"]));
    assert_eq!(delete(app, &path, &erin_token).await.0, 200);
    assert_eq!(post(app, "/compliance/erasure", &erin_token, &json!({})).await.0, 202);

    env.clock.advance(Duration::seconds(61));
    assert_eq!(app.palisade.compliance().run_due_erasures("test-owner").await.unwrap(), 1);
    let (status, all) = get(app, "/compliance/erasure?all=true", &root_token).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["requests"].as_array().map(Vec::len), Some(1), "the cancelled request went with erin: {all}");
    assert_eq!(all["requests"][0]["state"], "completed");
    assert!(all["requests"][0]["requested_by"].is_null(), "{all}");
    assert!(!all.to_string().contains(&erin), "a request still names erin: {all:#}");
}

async fn send_key(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
    let response = app.http.get(app.url(path)).header("x-api-key", key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_last_administrator_is_never_erased() {
    let env = spawn(&[("PALISADE_COMPLIANCE_DELETION_DELAY", "60")]).await;
    let app = &env.app;
    let (root, root_token) = admin(app, "root").await;
    let (bob, bob_token) = user(app, "bob").await;
    let (carl, _carl_token) = user(app, "carl").await;

    let (status, problem) = post(app, "/compliance/erasure", &root_token, &json!({})).await;
    assert_eq!(status, 409, "{problem}");
    assert!(text(&problem["detail"]).contains("last administrator"), "{problem}");
    let (status, problem) = post(app, "/compliance/erasure", &root_token, &json!({"user_id": root})).await;
    assert_eq!(status, 409, "naming oneself is the same: {problem}");
    // Withdrawing the consent whose withdrawal erases schedules nothing for the last administrator:
    // the withdrawal stands, and says so.
    let consent = json!({"type": "data_processing", "text": "We process your data.", "version": "1"});
    assert_eq!(post(app, "/compliance/consents", &root_token, &consent).await.0, 201);
    let (status, withdrawal) =
        send(app, reqwest::Method::DELETE, "/compliance/consents/data_processing", Some(&root_token), None).await;
    assert_eq!(status, 200, "{withdrawal}");
    assert_eq!(withdrawal["withdrawn"], true);
    assert_eq!(withdrawal["data_deletion_scheduled"], false, "{withdrawal}");
    assert!(withdrawal["deletion_date"].is_null());
    assert!(
        app.palisade
            .durable_store()
            .open_erasure_request(palisade_core::user::UserId::parse(&root).unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // A non-administrator cannot erase another user; an administrator can.
    assert_eq!(post(app, "/compliance/erasure", &bob_token, &json!({"user_id": carl})).await.0, 403);
    let (status, request) = post(app, "/compliance/erasure", &root_token, &json!({"user_id": carl})).await;
    assert_eq!(status, 202, "{request}");
    assert_eq!(
        (request["reason"].as_str(), request["requested_by"].as_str(), request["user_id"].as_str()),
        (Some("administrator"), Some(root.as_str()), Some(carl.as_str()))
    );
    assert_eq!(post(app, "/compliance/erasure", &root_token, &json!({"user_id": NOBODY})).await.0, 404);
    assert_eq!(post(app, "/compliance/erasure", &root_token, &json!({"user_id": "nope"})).await.0, 422);
    assert_eq!(post(app, "/compliance/erasure", &root_token, &json!({"user": bob})).await.0, 422, "unknown member");

    // With a second administrator, both may ask; when the job comes, the second to run is the last one
    // left and is refused.
    let (_ada, ada_token) = admin(app, "ada").await;
    let (status, root_request) = post(app, "/compliance/erasure", &root_token, &json!({})).await;
    assert_eq!(status, 202, "{root_request}");
    let (status, ada_request) = post(app, "/compliance/erasure", &ada_token, &json!({})).await;
    assert_eq!(status, 202, "{ada_request}");

    env.clock.advance(Duration::seconds(61));
    assert_eq!(app.palisade.compliance().run_due_erasures("test-owner").await.unwrap(), 3, "carl, root, ada");
    let mut states = Vec::new();
    for request in [&root_request, &ada_request] {
        let id = uuid::Uuid::parse_str(text(&request["request_id"])).unwrap();
        let stored = app.palisade.durable_store().erasure_request(id).await.unwrap().unwrap();
        states.push((stored.state.as_str(), stored.outcome.clone().unwrap_or_default()));
    }
    states.sort();
    assert_eq!(states[0].0, "completed", "{states:?}");
    assert_eq!(states[1].0, "refused", "{states:?}");
    assert!(states[1].1.contains("last administrator"), "{states:?}");
    assert_eq!(app.palisade.durable_store().count_admins().await.unwrap(), 1, "one administrator is left");
    assert!(chain(app).await.iter().any(|r| r.kind == "compliance.erasure_refused" && r.outcome == "failure"));
    assert_eq!(app.palisade.audit().verify().await.unwrap().broken, None);
}

// ---- real-time checks --------------------------------------------------------------------------

#[tokio::test]
async fn checks_apply_the_documented_rules_and_audit_a_hash_of_the_data() {
    let env = spawn(&[]).await;
    let app = &env.app;
    let (_root, root_token) = admin(app, "root").await;
    let (ada, ada_token) = user(app, "ada").await;
    let (_bob, bob_token) = user(app, "bob").await;
    let check = |token: &str, body: Value| {
        let token = token.to_owned();
        async move { post(app, "/compliance/check", &token, &body).await }
    };
    let marketing =
        json!({"action": "process", "data": {"user_id": ada, "purpose": "marketing"}, "standards": ["GDPR"]});

    // Consent for the purpose: refused before, allowed while given, refused once withdrawn.
    let (status, refused) = check(&ada_token, marketing.clone()).await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["allowed"], false, "{refused}");
    assert_eq!(refused["violations"][0]["rule"], "gdpr.consent_for_purpose", "{refused}");
    assert_eq!(refused["violations"][0]["standard"], "GDPR");
    assert_eq!(refused["message"], "Action blocked due to compliance violations");
    assert_eq!(refused["rules_applied"], json!(["gdpr.consent_for_purpose"]));
    assert_eq!(refused["standards"], json!(["GDPR"]));
    assert_eq!(give(app, &ada_token, "marketing", "Send me news.", "1").await.0, 201);
    let (_, allowed) = check(&ada_token, marketing.clone()).await;
    assert_eq!((allowed["allowed"].as_bool(), &allowed["violations"]), (Some(true), &json!([])), "{allowed}");
    assert_eq!(allowed["message"], Value::Null);
    assert_eq!(delete(app, "/compliance/consents/marketing", &ada_token).await.0, 200);
    assert_eq!(check(&ada_token, marketing.clone()).await.1["allowed"], false);

    // RESTRICTED data leaves only encrypted.
    let export = |encrypted: bool| json!({"action": "export", "data": {"user_id": ada, "data_classification": "RESTRICTED", "encrypted": encrypted}});
    let (_, refused) = check(&ada_token, export(false)).await;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert_eq!(refused["violations"][0]["rule"], "gdpr.restricted_data_leaves_encrypted");
    assert_eq!(check(&ada_token, export(true)).await.1["allowed"], true);

    // HIPAA: health data needs a stated purpose.
    let health =
        json!({"action": "access", "data": {"user_id": ada, "data_categories": ["health"]}, "standards": ["HIPAA"]});
    let (_, refused) = check(&ada_token, health).await;
    assert_eq!(
        (refused["allowed"].as_bool(), refused["violations"][0]["rule"].as_str()),
        (Some(false), Some("hipaa.health_access_has_a_purpose"))
    );
    let health = json!({"action": "access", "data": {"user_id": ada, "data_categories": ["health"], "purpose": "treatment"}, "standards": ["HIPAA"]});
    assert_eq!(check(&ada_token, health).await.1["allowed"], true);

    // Unknown or disabled standards, bad members, someone else's data.
    for (body, field) in [
        (json!({"action": "process", "data": {"user_id": ada}, "standards": ["CCPA"]}), "standards"),
        (
            json!({"action": "store", "data": {"user_id": ada, "data_categories": ["payment_card"]}, "standards": ["PCI_DSS"]}),
            "PCI_DSS",
        ),
        (json!({"action": "", "data": {"user_id": ada}}), "action"),
        (json!({"action": "process", "data": {"user_id": ada, "encrypted": "yes"}}), "encrypted"),
    ] {
        let (status, problem) = check(&ada_token, body.clone()).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(text(&problem["detail"]).contains(field), "{body} → {problem}");
    }
    assert_eq!(check(&bob_token, marketing.clone()).await.0, 403, "bob checks ada's data");
    assert_eq!(
        check(&bob_token, json!({"action": "export", "data": {"data_classification": "RESTRICTED"}})).await.0,
        403
    );
    assert_eq!(check(&root_token, marketing.clone()).await.0, 200, "an administrator checks anyone's");

    // A refusal is audited with the hash of the data, never the data.
    let secret = "ssn-123-45-6789";
    let body = json!({"action": "process", "data": {"user_id": ada, "purpose": "marketing", "ssn": secret}, "standards": ["GDPR"]});
    let (_, refused) = check(&ada_token, body).await;
    assert_eq!(refused["allowed"], false);
    let hash = text(&refused["data_hash"]).to_owned();
    assert_eq!(hash.len(), 64);
    assert_ne!(refused["data_hash"], allowed["data_hash"], "another data, another hash");
    let records = chain(app).await;
    let record = records
        .iter()
        .find(|r| r.kind == "compliance.check" && r.details.contains(&hash))
        .unwrap_or_else(|| panic!("no compliance.check record holds {hash}"));
    assert_eq!(record.outcome, "failure");
    assert_eq!(record.subject.as_deref(), Some(ada.as_str()));
    let details: Value = serde_json::from_str(&record.details).unwrap();
    assert_eq!(details["data_hash"], hash.as_str());
    assert_eq!(details["violations"], json!(["gdpr.consent_for_purpose"]));
    for record in &records {
        assert!(!format!("{record:?}").contains(secret), "the data is in record {}: {record:?}", record.seq);
    }
}

// ---- authentication ----------------------------------------------------------------------------

#[tokio::test]
async fn every_compliance_route_wants_credentials() {
    let app = spawn_app().await;
    let id = "0190a000-0000-7000-8000-0000000000aa";
    let consent = json!({"type": "marketing", "text": "Yes.", "version": "1"});
    let check = json!({"action": "process", "data": {}});
    let erasure = json!({});
    let routes: [(reqwest::Method, String, Option<&Value>); 10] = [
        (reqwest::Method::POST, "/compliance/consents".into(), Some(&consent)),
        (reqwest::Method::GET, "/compliance/consents".into(), None),
        (reqwest::Method::DELETE, "/compliance/consents/marketing".into(), None),
        (reqwest::Method::GET, "/compliance/export".into(), None),
        (reqwest::Method::POST, "/compliance/erasure".into(), Some(&erasure)),
        (reqwest::Method::GET, "/compliance/erasure".into(), None),
        (reqwest::Method::GET, format!("/compliance/erasure/{id}"), None),
        (reqwest::Method::DELETE, format!("/compliance/erasure/{id}"), None),
        (reqwest::Method::POST, "/compliance/check".into(), Some(&check)),
        (reqwest::Method::GET, "/compliance/consents?user_id=nope".into(), None),
    ];
    for (method, path, body) in routes {
        let (status, answer) = send(&app, method.clone(), &path, None, body).await;
        assert_eq!(status, 401, "{method} {path}: {answer}");
        let (status, _) = send(&app, method.clone(), &path, Some("not-a-token"), body).await;
        assert_eq!(status, 401, "{method} {path} with a bad token");
    }
}
