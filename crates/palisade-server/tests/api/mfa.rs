//! Multi-factor login over HTTP (issue #7): TOTP enrolment and confirmation, the login's second step,
//! the replay guard and the skew window, backup codes, brute-force throttling across fresh logins,
//! enhanced MFA, required MFA with enrolment-only tokens, factor removal and the administrator's
//! reset. Time is a manual clock, so windows and expiries are crossed without sleeping.

use std::sync::Arc;

use base64::Engine as _;
use palisade_core::clock::{Clock, ManualClock};
use palisade_core::mfa::totp::TotpSecret;
use serde_json::{Value, json};
use time::Duration;

use crate::{PASSWORD, TestApp, make_admin, register_user, spawn_app_with_clock};

struct Mfa {
    app: TestApp,
    clock: Arc<ManualClock>,
}

async fn spawn(extra: &[(&str, &str)]) -> Mfa {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_app_with_clock(extra, clock.clone()).await;
    Mfa { app, clock }
}

impl Mfa {
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.app.http.post(self.app.url(path)).json(&body).send().await.unwrap()
    }

    async fn post_bearer(&self, path: &str, token: &str, body: Option<Value>) -> reqwest::Response {
        let request = self.app.http.post(self.app.url(path)).bearer_auth(token);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        request.send().await.unwrap()
    }

    async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.app.http.get(self.app.url(path)).bearer_auth(token).send().await.unwrap()
    }

    async fn login(&self, username: &str) -> Value {
        let response = self.post("/auth/login", json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn verify(&self, mfa_token: &str, method: &str, code: &str) -> reqwest::Response {
        self.post("/auth/mfa/verify", json!({"mfa_token": mfa_token, "method": method, "code": code})).await
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().unix_timestamp()).unwrap()
    }

    /// The code of `secret` `steps` steps from now.
    fn code(&self, secret: &TotpSecret, steps: i64) -> String {
        let at = self.now().checked_add_signed(steps * 30).unwrap();
        secret.code_at(at).unwrap()
    }

    fn next_step(&self) {
        self.clock.advance(Duration::seconds(30));
    }

    /// Registers `username`, logs in, sets TOTP up and confirms it; returns the secret, the backup
    /// codes and the first login's access token. The clock moves to the next step afterwards, so the
    /// confirming code's step is behind.
    async fn enrolled(&self, username: &str) -> (TotpSecret, Vec<String>, String) {
        register_user(&self.app, username).await;
        let access = self.login(username).await["access_token"].as_str().unwrap().to_owned();
        let setup: Value = self.post_bearer("/auth/mfa/totp/setup", &access, None).await.json().await.unwrap();
        let secret = TotpSecret::from_base32(setup["secret"].as_str().unwrap()).unwrap();
        let confirm =
            self.post_bearer("/auth/mfa/totp/confirm", &access, Some(json!({"code": self.code(&secret, 0)}))).await;
        assert_eq!(confirm.status(), 204);
        self.next_step();
        let codes = setup["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        (secret, codes, access)
    }
}

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn audit_kinds(app: &TestApp) -> Vec<String> {
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    records.into_iter().map(|r| r.kind).collect()
}

#[tokio::test]
async fn totp_setup_confirm_then_login_asks_for_the_code() {
    let t = spawn(&[]).await;
    register_user(&t.app, "alice").await;
    let first = t.login("alice").await;
    assert!(first.get("mfa_required").is_none(), "no factor yet: {first}");
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["pwd"]));

    let setup = t.post_bearer("/auth/mfa/totp/setup", access, None).await;
    assert_eq!(setup.status(), 200);
    let setup: Value = setup.json().await.unwrap();
    let secret_text = setup["secret"].as_str().unwrap();
    assert_eq!(secret_text.len(), 32, "160 bits in unpadded base32");
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Palisade:alice?"), "{uri}");
    assert!(uri.contains(&format!("secret={secret_text}")) && uri.contains("issuer=Palisade"), "{uri}");
    assert!(
        setup["qr_svg"].as_str().unwrap().starts_with("<?xml") || setup["qr_svg"].as_str().unwrap().contains("<svg")
    );
    let codes = setup["backup_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.as_str().unwrap().len() == 11 && c.as_str().unwrap().as_bytes()[5] == b'-'));

    // Not confirmed yet: logins do not ask for it.
    assert!(t.login("alice").await.get("access_token").is_some());
    let secret = TotpSecret::from_base32(secret_text).unwrap();
    let wrong = if t.code(&secret, 0) == "000000" { "111111" } else { "000000" };
    let (status, body) =
        problem(t.post_bearer("/auth/mfa/totp/confirm", access, Some(json!({"code": wrong}))).await).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (401, "INVALID_CREDENTIALS"));
    let confirm = t.post_bearer("/auth/mfa/totp/confirm", access, Some(json!({"code": t.code(&secret, 0)}))).await;
    assert_eq!(confirm.status(), 204);

    let pending = t.login("alice").await;
    assert_eq!(pending["mfa_required"], true);
    assert_eq!(pending["methods"], json!(["totp", "backup_code"]));
    assert_eq!(pending["factors_required"], 1);
    assert_eq!(pending["expires_in"], 300);
    assert!(pending.get("access_token").is_none() && pending.get("refresh_token").is_none(), "{pending}");
    let mfa_token = pending["mfa_token"].as_str().unwrap();

    // The code that confirmed the app is spent for the rest of its window.
    let (status, _) = problem(t.verify(mfa_token, "totp", &t.code(&secret, 0)).await).await;
    assert_eq!(status, 401, "a code once accepted is refused in its window");
    t.next_step();
    let done = t.verify(mfa_token, "totp", &t.code(&secret, 0)).await;
    assert_eq!(done.status(), 200);
    let tokens: Value = done.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["pwd", "otp", "mfa"]));

    // The mfa_token is single use.
    let (status, body) = problem(t.verify(mfa_token, "totp", &t.code(&secret, 1)).await).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (401, "INVALID_TOKEN"));
    assert!(body["detail"].as_str().unwrap().contains("already used"), "{body}");

    let profile: Value = t.get_bearer("/auth/profile", access).await.json().await.unwrap();
    assert_eq!(profile["mfa_methods"], json!(["totp"]));
    assert_eq!(profile["backup_codes_remaining"], 10);

    // A refresh keeps how the session was authenticated.
    let refreshed: Value =
        t.post("/auth/refresh", json!({"refresh_token": tokens["refresh_token"]})).await.json().await.unwrap();
    assert_eq!(claims(refreshed["access_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));

    let kinds = audit_kinds(&t.app).await;
    for kind in ["mfa.enrolled", "mfa.confirmed", "mfa.failed", "auth.mfa_challenge", "mfa.verified"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn codes_of_the_neighbouring_steps_pass_and_older_ones_do_not() {
    let t = spawn(&[]).await;
    let (secret, _, _) = t.enrolled("bob").await;
    t.next_step();
    t.next_step();
    let older = t.code(&secret, -2);
    let previous = t.code(&secret, -1);
    let next = t.code(&secret, 1);
    let token = t.login("bob").await["mfa_token"].as_str().unwrap().to_owned();
    if older != previous && older != t.code(&secret, 0) && older != next {
        assert_eq!(t.verify(&token, "totp", &older).await.status(), 401, "two steps back is outside the window");
    }
    assert_eq!(t.verify(&token, "totp", &previous).await.status(), 200, "one step back is inside the window");
    // After the previous step was accepted, the next step's code is still new.
    let token = t.login("bob").await["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(t.verify(&token, "totp", &next).await.status(), 200, "one step ahead is inside the window");
    // ... and now nothing at or before that step passes until the clock moves past it.
    let token = t.login("bob").await["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(t.verify(&token, "totp", &t.code(&secret, 0)).await.status(), 401);
}

#[tokio::test]
async fn malformed_codes_are_refused_before_anything_is_consumed_or_counted() {
    let t = spawn(&[]).await;
    let (secret, codes, _) = t.enrolled("carol").await;
    let token = t.login("carol").await["mfa_token"].as_str().unwrap().to_owned();
    for bad in ["", "12345", "1234567", "12a456", "abcdef"] {
        let (status, body) = problem(t.verify(&token, "totp", bad).await).await;
        assert_eq!((status, body["code"].as_str().unwrap()), (422, "VALIDATION_ERROR"), "{bad:?}");
        assert_eq!(body["errors"][0]["rule"], "code", "{body}");
    }
    let (status, _) = problem(t.verify(&token, "backup_code", "not-a-code!").await).await;
    assert_eq!(status, 422);
    let (status, body) = problem(t.verify(&token, "fingerprint", "123456").await).await;
    assert_eq!((status, body["errors"][0]["rule"].as_str().unwrap()), (422, "method"));
    let (status, _) = problem(t.verify(&token, "sms", "123456").await).await;
    assert_eq!(status, 422, "sms is not one of this login's methods");
    // Eight refusals and still nothing counted: more than the 5 wrong codes that would lock.
    assert_eq!(t.verify(&token, "backup_code", &codes[0]).await.status(), 200);
    let _ = secret;
}

#[tokio::test]
async fn backup_codes_are_single_use_and_regeneration_kills_the_old_set() {
    let t = spawn(&[]).await;
    let (_, codes, _) = t.enrolled("dave").await;
    let token = t.login("dave").await["mfa_token"].as_str().unwrap().to_owned();
    // Typed in capitals, without the dash: read the same way.
    let typed = codes[3].replace('-', "").to_uppercase();
    let done = t.verify(&token, "backup_code", &typed).await;
    assert_eq!(done.status(), 200);
    let access = done.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["amr"], json!(["pwd", "otp", "mfa"]));
    let profile: Value = t.get_bearer("/auth/profile", &access).await.json().await.unwrap();
    assert_eq!(profile["backup_codes_remaining"], 9);

    let token = t.login("dave").await["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(t.verify(&token, "backup_code", &codes[3]).await.status(), 401, "used once already");

    let fresh: Value = t.post_bearer("/auth/mfa/backup-codes", &access, None).await.json().await.unwrap();
    let fresh: Vec<String> =
        fresh["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(fresh.len(), 10);
    assert_eq!(t.verify(&token, "backup_code", &codes[4]).await.status(), 401, "the old set is dead");
    assert_eq!(t.verify(&token, "backup_code", &fresh[0]).await.status(), 200);
    let kinds = audit_kinds(&t.app).await;
    assert!(
        kinds.iter().any(|k| k == "mfa.backup_code_used") && kinds.iter().any(|k| k == "mfa.backup_codes_regenerated")
    );
}

#[tokio::test]
async fn wrong_codes_count_across_fresh_logins_and_lock_the_second_factor() {
    let t = spawn(&[("SECURITY_MAX_LOGIN_ATTEMPTS", "5"), ("SECURITY_LOCKOUT_DURATION", "900")]).await;
    let (secret, _, _) = t.enrolled("erin").await;
    let right = t.code(&secret, 0);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for attempt in 0..5 {
        // A fresh password login for some of them: it must not reset the count.
        let token = t.login("erin").await["mfa_token"].as_str().unwrap().to_owned();
        let (status, body) = problem(t.verify(&token, "totp", wrong).await).await;
        assert_eq!((status, body["code"].as_str().unwrap()), (401, "INVALID_CREDENTIALS"), "attempt {attempt}");
    }
    let token = t.login("erin").await["mfa_token"].as_str().unwrap().to_owned();
    let response = t.verify(&token, "totp", &right).await;
    assert_eq!(response.status(), 423, "locked: even the right code is refused");
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "ACCOUNT_LOCKED");
    assert!(audit_kinds(&t.app).await.iter().any(|k| k == "mfa.lockout"));

    t.clock.advance(Duration::seconds(901));
    let token = t.login("erin").await["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(t.verify(&token, "totp", &t.code(&secret, 0)).await.status(), 200, "the lock is temporary");
}

#[tokio::test]
async fn an_mfa_token_expires_and_a_forged_one_is_unknown() {
    let t = spawn(&[]).await;
    let (secret, _, _) = t.enrolled("frank").await;
    let token = t.login("frank").await["mfa_token"].as_str().unwrap().to_owned();
    t.clock.advance(Duration::seconds(301));
    let (status, body) = problem(t.verify(&token, "totp", &t.code(&secret, 0)).await).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (401, "TOKEN_EXPIRED"));
    let (status, body) =
        problem(t.verify("mfa.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "totp", "123456").await).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (401, "INVALID_TOKEN"));
    let (status, _) = problem(t.verify("nonsense", "totp", "123456").await).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn concurrent_right_codes_for_one_challenge_complete_it_once() {
    let t = spawn(&[]).await;
    let (_, codes, _) = t.enrolled("gina").await;
    let token = t.login("gina").await["mfa_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for code in codes.iter().take(6) {
        let (http, url) = (t.app.http.clone(), t.app.url("/auth/mfa/verify"));
        let body = json!({"mfa_token": token, "method": "backup_code", "code": code});
        tasks.push(tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
}

#[tokio::test]
async fn removing_totp_needs_a_code_or_the_password_and_takes_the_backup_codes() {
    let t = spawn(&[]).await;
    let (secret, codes, access) = t.enrolled("hank").await;
    let delete = |body: Value| {
        let request = t.app.http.delete(t.app.url("/auth/mfa/totp")).bearer_auth(&access).json(&body);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(delete(json!({"password": "not the password at all"})).await.status(), 401);
    assert_eq!(delete(json!({})).await.status(), 422, "neither proof");
    assert_eq!(delete(json!({"password": PASSWORD, "code": "123456"})).await.status(), 422, "both proofs");
    assert_eq!(delete(json!({"code": t.code(&secret, 0)})).await.status(), 204);
    assert_eq!(delete(json!({"password": PASSWORD})).await.status(), 404, "already gone");

    let login = t.login("hank").await;
    assert!(login.get("access_token").is_some(), "no factor left: {login}");
    let profile: Value =
        t.get_bearer("/auth/profile", login["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(profile["mfa_methods"], json!([]));
    assert_eq!(profile["backup_codes_remaining"], 0);
    let _ = codes;
    assert!(audit_kinds(&t.app).await.iter().any(|k| k == "mfa.disabled"));
}

#[tokio::test]
async fn a_user_who_must_have_mfa_gets_an_enrolment_only_login() {
    let t = spawn(&[("SECURITY_MFA_REQUIRED", "true")]).await;
    register_user(&t.app, "ivy").await;
    let login = t.login("ivy").await;
    assert_eq!(login["mfa_enrolment_required"], true);
    let access = login["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["scope"], "mfa:enroll");
    assert_eq!(t.get_bearer("/auth/profile", &access).await.status(), 403, "nothing but enrolment");
    let refreshed: Value =
        t.post("/auth/refresh", json!({"refresh_token": login["refresh_token"]})).await.json().await.unwrap();
    assert_eq!(claims(refreshed["access_token"].as_str().unwrap())["scope"], "mfa:enroll", "a refresh keeps it so");

    let status: Value = t.get_bearer("/auth/mfa", &access).await.json().await.unwrap();
    assert_eq!(status["methods"], json!([]));
    assert_eq!(status["available"], json!(["totp"]), "no SMS or SMTP provider configured");
    let setup: Value = t.post_bearer("/auth/mfa/totp/setup", &access, None).await.json().await.unwrap();
    let secret = TotpSecret::from_base32(setup["secret"].as_str().unwrap()).unwrap();
    let confirm = t.post_bearer("/auth/mfa/totp/confirm", &access, Some(json!({"code": t.code(&secret, 0)}))).await;
    assert_eq!(confirm.status(), 204);
    t.next_step();
    // The enrolment-only session has done its job: it may not add more, nor be refreshed.
    let (status, body) = problem(t.post_bearer("/auth/mfa/backup-codes", &access, None).await).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (401, "MFA_REQUIRED"));
    let (status, body) =
        problem(t.post("/auth/refresh", json!({"refresh_token": refreshed["refresh_token"]})).await).await;
    assert_eq!((status, body["code"].as_str().unwrap(), &body["require_reauth"]), (401, "TOKEN_REVOKED", &json!(true)));
    let pending = t.login("ivy").await;
    assert_eq!(pending["mfa_required"], true);
    let done: Value =
        t.verify(pending["mfa_token"].as_str().unwrap(), "totp", &t.code(&secret, 0)).await.json().await.unwrap();
    assert_eq!(claims(done["access_token"].as_str().unwrap())["scope"], "user");
}

#[tokio::test]
async fn mfa_required_for_the_admin_role_only() {
    let t = spawn(&[("PALISADE_MFA_REQUIRED_ROLES", "admin")]).await;
    let admin = register_user(&t.app, "root").await;
    make_admin(&t.app, &admin).await;
    register_user(&t.app, "plain").await;
    assert_eq!(t.login("root").await["mfa_enrolment_required"], true);
    let plain = t.login("plain").await;
    assert!(plain.get("mfa_enrolment_required").is_none(), "{plain}");
    assert_eq!(claims(plain["access_token"].as_str().unwrap())["scope"], "user");
}

#[tokio::test]
async fn enhanced_mfa_counts_factors_not_backup_codes() {
    let t = spawn(&[("PALISADE_MFA_FACTORS", "2")]).await;
    let (secret, _codes, _) = t.enrolled("jack").await;
    // TOTP is jack's only factor: backup codes stand in for a factor, they never add one, so the
    // login asks for the one he has (two distinct factors: tests/api/mfa_messages.rs, sms + email).
    let pending = t.login("jack").await;
    assert_eq!(pending["factors_required"], 1, "{pending}");
    assert_eq!(pending["methods"], json!(["totp", "backup_code"]));
    let token = pending["mfa_token"].as_str().unwrap().to_owned();
    let done: Value = t.verify(&token, "totp", &t.code(&secret, 0)).await.json().await.unwrap();
    assert!(done["access_token"].is_string(), "{done}");
    assert_eq!(claims(done["access_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn an_administrator_resets_a_users_factors() {
    let t = spawn(&[]).await;
    let (_, _, _) = t.enrolled("kate").await;
    let admin = register_user(&t.app, "boss").await;
    make_admin(&t.app, &admin).await;
    let boss = t.login("boss").await["access_token"].as_str().unwrap().to_owned();
    let kate = t.app.palisade.auth().find_user("kate").await.unwrap().unwrap().id.to_string();
    assert_eq!(t.post_bearer(&format!("/admin/users/{kate}/mfa/reset"), &boss, None).await.status(), 204);
    assert!(t.login("kate").await.get("access_token").is_some(), "the factor is gone");
    let nobody = uuid::Uuid::new_v4();
    assert_eq!(t.post_bearer(&format!("/admin/users/{nobody}/mfa/reset"), &boss, None).await.status(), 404);
    let own = t.login("kate").await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(t.post_bearer(&format!("/admin/users/{kate}/mfa/reset"), &own, None).await.status(), 403);
    assert!(audit_kinds(&t.app).await.iter().any(|k| k == "mfa.reset"));
}

#[tokio::test]
async fn changing_factors_needs_a_session_that_passed_one() {
    let t = spawn(&[]).await;
    let (secret, _, password_only) = t.enrolled("liam").await;
    // The session from before TOTP (or a token stolen from it) cannot add, regenerate or replace.
    for (path, body) in [
        ("/auth/mfa/totp/setup", None),
        ("/auth/mfa/backup-codes", None),
        ("/auth/mfa/sms/setup", Some(json!({"phone": "+14155550123"}))),
    ] {
        let (status, body) = problem(t.post_bearer(path, &password_only, body).await).await;
        assert_eq!((status, body["code"].as_str().unwrap()), (401, "MFA_REQUIRED"), "{path}: {body}");
    }
    // A login that passed TOTP may.
    let token = t.login("liam").await["mfa_token"].as_str().unwrap().to_owned();
    let done: Value = t.verify(&token, "totp", &t.code(&secret, 0)).await.json().await.unwrap();
    let access = done["access_token"].as_str().unwrap().to_owned();
    let (status, body) = problem(t.post_bearer("/auth/mfa/totp/setup", &access, None).await).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (409, "CONFLICT"), "one TOTP factor per user");
    let (status, _) =
        problem(t.post_bearer("/auth/mfa/totp/confirm", &access, Some(json!({"code": "123456"}))).await).await;
    assert_eq!(status, 409, "nothing pending");
    let regenerated = t.post_bearer("/auth/mfa/backup-codes", &access, None).await;
    assert_eq!(regenerated.status(), 200);
    let sms = t.post_bearer("/auth/mfa/sms/setup", &access, Some(json!({"phone": "+14155550123"}))).await;
    let (status, body) = problem(sms).await;
    assert_eq!((status, body["code"].as_str().unwrap()), (422, "VALIDATION_ERROR"), "no SMS provider: {body}");
}
