//! Passkeys over HTTP with a software authenticator we did not write (webauthn-authenticator-rs's
//! `SoftPasskey`, a CTAP2-style authenticator that signs with a P-256 key): registration, the
//! passkey as a login's second factor, the user-verification requirement, single-use ceremonies,
//! counters, and removal. Passwordless login with a discoverable passkey needs a resident key, which
//! the software authenticator cannot make: the browser test (`tests/browser/`) covers it with
//! Chromium's virtual authenticator.

use base64::Engine as _;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::{PASSWORD, TestApp, register_user, spawn_app_with};

const ORIGIN: &str = "https://login.example.test";
const SETTINGS: &[(&str, &str)] =
    &[("PALISADE_WEBAUTHN_RP_ID", "example.test"), ("PALISADE_WEBAUTHN_ORIGIN", "https://login.example.test")];

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
    let request = app.http.post(app.url(path)).json(&body);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.unwrap()
}

async fn login(app: &TestApp, username: &str) -> Value {
    post(app, "/auth/login", None, json!({"username": username, "password": PASSWORD})).await.json().await.unwrap()
}

fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Registers a passkey on `authenticator` for the holder of `access`; returns its id.
async fn register_passkey(app: &TestApp, access: &str, authenticator: &mut SoftPasskey, name: &str) -> String {
    let start: Value = post(app, "/auth/webauthn/register/start", Some(access), json!({})).await.json().await.unwrap();
    let selection = &start["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["userVerification"], "required", "{start}");
    assert_eq!(selection["residentKey"], "preferred", "{start}");
    assert_eq!(start["options"]["publicKey"]["rp"]["id"], "example.test");
    let options: CreationChallengeResponse = serde_json::from_value(start["options"].clone()).unwrap();
    let credential = authenticator.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
    let finish = post(
        app,
        "/auth/webauthn/register/finish",
        Some(access),
        json!({"challenge_id": start["challenge_id"], "credential": credential, "name": name}),
    )
    .await;
    assert_eq!(finish.status(), 201);
    let info: Value = finish.json().await.unwrap();
    assert_eq!(info["name"], name);
    info["id"].as_str().unwrap().to_owned()
}

/// Signs the ceremony `start` (a `login/start` answer) with `authenticator`.
fn sign(start: &Value, authenticator: &mut SoftPasskey) -> Value {
    let options: RequestChallengeResponse = serde_json::from_value(start["options"].clone()).unwrap();
    serde_json::to_value(authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap()
}

#[tokio::test]
async fn a_passkey_registers_and_passes_the_second_step() {
    let app = spawn_app_with(SETTINGS).await;
    register_user(&app, "alice").await;
    let access = login(&app, "alice").await["access_token"].as_str().unwrap().to_owned();
    let status: Value =
        app.http.get(app.url("/auth/mfa")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert!(status["available"].as_array().unwrap().contains(&json!("webauthn")), "{status}");

    // `true`: the soft authenticator claims user verification, as a platform authenticator would
    // after a fingerprint.
    let mut authenticator = SoftPasskey::new(true);
    let id = register_passkey(&app, &access, &mut authenticator, "laptop").await;
    let list: Value = app
        .http
        .get(app.url("/auth/webauthn/credentials"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(list["credentials"][0]["id"], id.as_str());
    assert!(list["credentials"][0]["last_used_at"].is_null());

    let pending = login(&app, "alice").await;
    assert_eq!(pending["mfa_required"], true);
    assert_eq!(pending["methods"], json!(["webauthn"]));
    let token = pending["mfa_token"].as_str().unwrap().to_owned();
    let start: Value =
        post(&app, "/auth/webauthn/login/start", None, json!({"mfa_token": token})).await.json().await.unwrap();
    assert_eq!(start["options"]["publicKey"]["userVerification"], "required");
    let assertion = sign(&start, &mut authenticator);
    let done = post(
        &app,
        "/auth/webauthn/login/finish",
        None,
        json!({"challenge_id": start["challenge_id"], "credential": assertion, "mfa_token": token}),
    )
    .await;
    assert_eq!(done.status(), 200);
    let tokens: Value = done.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["amr"], json!(["pwd", "hwk", "user", "mfa"]));

    // The counter moved on and the use was recorded.
    let record =
        app.palisade.durable_store().passkeys(app.palisade.auth().find_user("alice").await.unwrap().unwrap().id);
    let record = record.await.unwrap().remove(0);
    let stored: Value = serde_json::from_str(&record.passkey).unwrap();
    assert!(stored["cred"]["counter"].as_u64().unwrap() >= 1, "{stored}");
    assert!(record.last_used_at.is_some());
    let profile: Value =
        app.http.get(app.url("/auth/profile")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(profile["mfa_methods"], json!(["webauthn"]));

    // The ceremony and the mfa_token are single use: the same answer again is refused.
    let again = post(
        &app,
        "/auth/webauthn/login/finish",
        None,
        json!({"challenge_id": start["challenge_id"], "credential": assertion, "mfa_token": token}),
    )
    .await;
    assert_eq!(again.status(), 401);

    // An answer for one ceremony does not pass another (the challenge is signed).
    let token = login(&app, "alice").await["mfa_token"].as_str().unwrap().to_owned();
    let other: Value =
        post(&app, "/auth/webauthn/login/start", None, json!({"mfa_token": token})).await.json().await.unwrap();
    let replayed = post(
        &app,
        "/auth/webauthn/login/finish",
        None,
        json!({"challenge_id": other["challenge_id"], "credential": assertion, "mfa_token": token}),
    )
    .await;
    let (status, body) = (replayed.status(), replayed.json::<Value>().await.unwrap());
    assert_eq!((status.as_u16(), body["code"].as_str().unwrap()), (401, "INVALID_CREDENTIALS"), "{body}");
}

#[tokio::test]
async fn user_verification_is_required() {
    let app = spawn_app_with(SETTINGS).await;
    register_user(&app, "bob").await;
    let access = login(&app, "bob").await["access_token"].as_str().unwrap().to_owned();
    let mut verified = SoftPasskey::new(true);
    register_passkey(&app, &access, &mut verified, "key").await;

    // A client that asks the authenticator for presence only (a tampered page): the assertion has
    // no UV flag, and the server, which required it, refuses.
    let token = login(&app, "bob").await["mfa_token"].as_str().unwrap().to_owned();
    let mut start: Value =
        post(&app, "/auth/webauthn/login/start", None, json!({"mfa_token": token})).await.json().await.unwrap();
    start["options"]["publicKey"]["userVerification"] = json!("discouraged");
    let assertion = sign(&start, &mut verified);
    let flags = {
        let data = assertion["response"]["authenticatorData"].as_str().unwrap();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data.trim_end_matches('=')).unwrap()[32]
    };
    assert_eq!(flags & 0x04, 0, "the UV flag must be clear for this test to mean anything");
    let refused = post(
        &app,
        "/auth/webauthn/login/finish",
        None,
        json!({"challenge_id": start["challenge_id"], "credential": assertion, "mfa_token": token}),
    )
    .await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "INVALID_CREDENTIALS");
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    assert!(records.iter().any(|r| r.kind == "mfa.failed" && r.details.contains("webauthn")));
}

#[tokio::test]
async fn bad_answers_and_unknown_ceremonies_are_refused_clearly() {
    let app = spawn_app_with(SETTINGS).await;
    register_user(&app, "carol").await;
    let access = login(&app, "carol").await["access_token"].as_str().unwrap().to_owned();
    let start: Value =
        post(&app, "/auth/webauthn/register/start", Some(&access), json!({})).await.json().await.unwrap();
    let malformed = post(
        &app,
        "/auth/webauthn/register/finish",
        Some(&access),
        json!({"challenge_id": start["challenge_id"], "credential": {"id": "x"}}),
    )
    .await;
    let (status, body) = (malformed.status(), malformed.json::<Value>().await.unwrap());
    assert_eq!((status.as_u16(), body["errors"][0]["rule"].as_str().unwrap()), (422, "credential"), "{body}");
    // A malformed answer does not spend the ceremony.
    let options: CreationChallengeResponse = serde_json::from_value(start["options"].clone()).unwrap();
    let credential = SoftPasskey::new(true).do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
    let finish = post(
        &app,
        "/auth/webauthn/register/finish",
        Some(&access),
        json!({"challenge_id": start["challenge_id"], "credential": credential}),
    )
    .await;
    assert_eq!(finish.status(), 201);
    assert_eq!(finish.json::<Value>().await.unwrap()["name"], "Passkey", "the default name");

    let unknown = post(
        &app,
        "/auth/webauthn/register/finish",
        Some(&access),
        json!({"challenge_id": "nope", "credential": credential}),
    )
    .await;
    assert_eq!(unknown.status(), 401);

    // A page on another origin (a compromised sibling subdomain, which the browser lets use the
    // relying party id) does not verify: only the configured origin does. (A user without a passkey
    // yet: adding a second one would need a session that passed the first.)
    register_user(&app, "carla").await;
    let access = login(&app, "carla").await["access_token"].as_str().unwrap().to_owned();
    let start: Value =
        post(&app, "/auth/webauthn/register/start", Some(&access), json!({})).await.json().await.unwrap();
    let options: CreationChallengeResponse = serde_json::from_value(start["options"].clone()).unwrap();
    let sibling =
        SoftPasskey::new(true).do_registration(Url::parse("https://blog.example.test").unwrap(), options).unwrap();
    let refused = post(
        &app,
        "/auth/webauthn/register/finish",
        Some(&access),
        json!({"challenge_id": start["challenge_id"], "credential": sibling}),
    )
    .await;
    assert_eq!(refused.status(), 422);
    let list: Value = app
        .http
        .get(app.url("/auth/webauthn/credentials"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["credentials"].as_array().unwrap().len(), 0, "nothing stored from the refused answer");
}

#[tokio::test]
async fn removing_the_last_passkey_ends_the_second_step() {
    let app = spawn_app_with(SETTINGS).await;
    register_user(&app, "dave").await;
    let access = login(&app, "dave").await["access_token"].as_str().unwrap().to_owned();
    let mut authenticator = SoftPasskey::new(true);
    let id = register_passkey(&app, &access, &mut authenticator, "phone").await;
    let rename = app
        .http
        .patch(app.url(&format!("/auth/webauthn/credentials/{id}")))
        .bearer_auth(&access)
        .json(&json!({"name": "old phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rename.status(), 204);
    let list: Value = app
        .http
        .get(app.url("/auth/webauthn/credentials"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["credentials"][0]["name"], "old phone");
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    assert!(records.iter().any(|r| r.kind == "mfa.passkey_renamed"));
    assert_eq!(login(&app, "dave").await["mfa_required"], true);
    // Removing a factor needs a session that passed one: the password-only session may not.
    let refused = app.http.delete(app.url(&format!("/auth/webauthn/credentials/{id}"))).bearer_auth(&access).send();
    let refused = refused.await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "MFA_REQUIRED");
    let token = login(&app, "dave").await["mfa_token"].as_str().unwrap().to_owned();
    let start: Value =
        post(&app, "/auth/webauthn/login/start", None, json!({"mfa_token": token})).await.json().await.unwrap();
    let credential = sign(&start, &mut authenticator);
    let finish = json!({"challenge_id": start["challenge_id"], "credential": credential, "mfa_token": token});
    let tokens: Value = post(&app, "/auth/webauthn/login/finish", None, finish).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let delete = app
        .http
        .delete(app.url(&format!("/auth/webauthn/credentials/{id}")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    let again = app
        .http
        .delete(app.url(&format!("/auth/webauthn/credentials/{id}")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert!(login(&app, "dave").await.get("access_token").is_some(), "no second factor left");
}

#[tokio::test]
async fn without_a_relying_party_passkeys_are_absent() {
    // The default issuer is an IP address, which browsers refuse as a relying party id.
    let app = spawn_app_with(&[]).await;
    register_user(&app, "erin").await;
    let access = login(&app, "erin").await["access_token"].as_str().unwrap().to_owned();
    let status: Value =
        app.http.get(app.url("/auth/mfa")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert!(!status["available"].as_array().unwrap().contains(&json!("webauthn")), "{status}");
    let start = post(&app, "/auth/webauthn/register/start", Some(&access), json!({})).await;
    assert_eq!(start.status(), 422);
    let passwordless = post(&app, "/auth/webauthn/login/start", None, json!({})).await;
    assert_eq!(passwordless.status(), 422);
}

#[tokio::test]
async fn a_signature_counter_that_does_not_move_forward_is_refused() {
    let app = spawn_app_with(SETTINGS).await;
    register_user(&app, "fred").await;
    let access = login(&app, "fred").await["access_token"].as_str().unwrap().to_owned();
    let mut authenticator = SoftPasskey::new(true);
    register_passkey(&app, &access, &mut authenticator, "key").await;
    // A login starts (webauthn-rs's ceremony state holds the counter as it is now) ...
    let token = login(&app, "fred").await["mfa_token"].as_str().unwrap().to_owned();
    let start: Value =
        post(&app, "/auth/webauthn/login/start", None, json!({"mfa_token": token})).await.json().await.unwrap();
    // ... and meanwhile a clone of this key signs many times: the stored counter moves far ahead of
    // the authenticator's next value. The check must read the counter stored now, not at the start.
    let user = app.palisade.auth().find_user("fred").await.unwrap().unwrap().id;
    let record = app.palisade.durable_store().passkeys(user).await.unwrap().remove(0);
    let mut ahead: Value = serde_json::from_str(&record.passkey).unwrap();
    ahead["cred"]["counter"] = json!(1_000_000);
    let now = app.palisade.clock().now();
    let stored = app.palisade.durable_store();
    assert!(stored.update_passkey(&record.credential_id, &record.passkey, &ahead.to_string(), now).await.unwrap());

    let credential = sign(&start, &mut authenticator);
    let refused = post(
        &app,
        "/auth/webauthn/login/finish",
        None,
        json!({"challenge_id": start["challenge_id"], "credential": credential, "mfa_token": token}),
    )
    .await;
    assert_eq!(refused.status(), 401);
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    assert!(records.iter().any(|r| r.kind == "mfa.failed" && r.details.contains("webauthn")));
}

#[tokio::test]
async fn passwordless_starts_are_bounded_per_address() {
    let app = spawn_app_with(SETTINGS).await;
    for i in 0..30 {
        let start = post(&app, "/auth/webauthn/login/start", None, json!({})).await;
        assert_eq!(start.status(), 200, "start {i}");
        let start: Value = start.json().await.unwrap();
        assert!(start["options"]["publicKey"]["challenge"].is_string());
        assert!(start["options"]["publicKey"].get("allowCredentials").is_none_or(|c| c == &json!([])));
    }
    let refused = post(&app, "/auth/webauthn/login/start", None, json!({})).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}
