//! The device registry and session binding over HTTP: devices registered at login, renamed,
//! trusted and removed (ending their sessions); malformed device descriptions refused before
//! anything counts; hijack detection on bearer requests and refreshes at each binding level; the
//! per-user session limit and single-session mode; sessions naming their device and place.

use std::sync::Arc;

use palisade_core::clock::ManualClock;
use serde_json::{Value, json};
use time::Duration;

use crate::{
    TestApp, audit_event_kinds, geoip_test_db, login_from, login_user, post_login, register_user, spawn_app_with,
    spawn_app_with_clock, status_json,
};

const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
/// The same browser family, one version on.
const CHROME_NEXT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36";
const CURL: &str = "curl/8.5.0";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
/// GB, London in MaxMind's GeoIP2-City-Test database.
const LONDON: &str = "81.2.69.142";
/// Not in the test databases.
const UNKNOWN: &str = "198.51.100.9";

/// A login that must succeed with tokens; the answer.
async fn logged_in(app: &TestApp, username: &str, headers: &[(&str, &str)], device: Option<Value>) -> Value {
    let (status, answer) = status_json(login_from(app, username, headers, device).await).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["access_token"].is_string(), "{answer}");
    answer
}

fn access(answer: &Value) -> &str {
    answer["access_token"].as_str().unwrap()
}

fn refresh_token(answer: &Value) -> &str {
    answer["refresh_token"].as_str().unwrap()
}

async fn get(app: &TestApp, path: &str, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.get(app.url(path)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn refresh(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.post(app.url("/auth/refresh")).json(&json!({"refresh_token": token}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn devices(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = status_json(get(app, "/auth/devices", token, &[]).await).await;
    assert_eq!(status, 200, "{body}");
    body["devices"].as_array().unwrap().clone()
}

async fn sessions(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> Vec<Value> {
    let (status, body) = status_json(get(app, "/auth/sessions", token, headers).await).await;
    assert_eq!(status, 200, "{body}");
    body["sessions"].as_array().unwrap().clone()
}

async fn patch(app: &TestApp, token: &str, device_id: &str, body: Value) -> (u16, Value) {
    let response =
        app.http.patch(app.url(&format!("/auth/devices/{device_id}"))).bearer_auth(token).json(&body).send().await;
    status_json(response.unwrap()).await
}

fn factor_names(answer: &Value) -> Vec<String> {
    answer["risk_factors"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect()
}

/// Asserts a 401 with `code`.
async fn refused(response: reqwest::Response, code: &str) -> Value {
    let (status, body) = status_json(response).await;
    assert_eq!((status, body["code"].as_str()), (401, Some(code)), "{body}");
    body
}

#[tokio::test]
async fn devices_are_registered_renamed_and_trusted() {
    let city = geoip_test_db("GeoIP2-City-Test.mmdb");
    let app = spawn_app_with(&[("PALISADE_GEOIP_DB", &city), ("PALISADE_TRUSTED_PROXIES", "127.0.0.1")]).await;
    register_user(&app, "kate").await;
    let london = [("x-forwarded-for", LONDON)];
    let laptop =
        json!({"name": "Work laptop", "type": "desktop", "os": "Linux", "browser": "Firefox", "fingerprint": "abc"});

    let first = logged_in(&app, "kate", &london, Some(laptop.clone())).await;
    let laptop_id = first["device_id"].as_str().unwrap().to_owned();
    let list = devices(&app, access(&first)).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let device = &list[0];
    assert_eq!(device["device_id"], laptop_id.as_str());
    assert_eq!(device["name"], "Work laptop");
    assert_eq!((device["type"].as_str(), device["os"].as_str()), (Some("desktop"), Some("Linux")), "{device}");
    assert_eq!(device["browser"], "Firefox");
    assert_eq!(device["trust_level"], "low");
    assert_eq!(device["current"], true);
    assert_eq!((device["last_country"].as_str(), device["last_city"].as_str()), (Some("GB"), Some("London")));
    assert_eq!(device["last_ip"], LONDON);

    // The same fingerprint is the same device, whatever else the login says.
    let again = logged_in(&app, "kate", &london, Some(json!({"fingerprint": "abc"}))).await;
    assert_eq!(again["device_id"], laptop_id.as_str());
    assert_eq!(devices(&app, access(&again)).await.len(), 1);
    // Another fingerprint is another device; only it is current for its session.
    let phone = logged_in(&app, "kate", &london, Some(json!({"fingerprint": "def"}))).await;
    let phone_id = phone["device_id"].as_str().unwrap().to_owned();
    assert_ne!(phone_id, laptop_id);
    let list = devices(&app, access(&phone)).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let current: Vec<&Value> = list.iter().filter(|d| d["current"] == true).collect();
    assert_eq!(current.len(), 1, "{list:?}");
    assert_eq!(current[0]["device_id"], phone_id.as_str());

    // Rename and trust.
    let token = access(&phone).to_owned();
    let (status, changed) = patch(&app, &token, &laptop_id, json!({"name": "Old laptop", "trust_level": "high"})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!((changed["name"].as_str(), changed["trust_level"].as_str()), (Some("Old laptop"), Some("high")));
    assert_eq!(changed["device_id"], laptop_id.as_str());
    for bad in
        [json!({"trust_level": "total"}), json!({"name": "x".repeat(101)}), json!({"name": "a\u{7}b"}), json!({})]
    {
        let (status, body) = patch(&app, &token, &laptop_id, bad.clone()).await;
        assert_eq!((status, body["code"].as_str()), (422, Some("VALIDATION_ERROR")), "{bad}: {body}");
    }

    // Another user cannot see or touch it.
    register_user(&app, "leo").await;
    let leo = login_user(&app, "leo").await;
    let leo_token = access(&leo);
    let (status, body) = patch(&app, leo_token, &laptop_id, json!({"name": "Mine now"})).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    let approve = app
        .http
        .post(app.url(&format!("/auth/devices/{laptop_id}/approve")))
        .bearer_auth(leo_token)
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 404);
    let delete = app.http.delete(app.url(&format!("/auth/devices/{laptop_id}"))).bearer_auth(leo_token).send().await;
    assert_eq!(delete.unwrap().status(), 404);
    assert!(devices(&app, leo_token).await.iter().all(|d| d["device_id"] != laptop_id.as_str()));
    let (status, _) = patch(&app, &token, "not-a-uuid", json!({"name": "x"})).await;
    assert_eq!(status, 404);

    let list = devices(&app, &token).await;
    let laptop_now = list.iter().find(|d| d["device_id"] == laptop_id.as_str()).unwrap();
    assert_eq!((laptop_now["name"].as_str(), laptop_now["trust_level"].as_str()), (Some("Old laptop"), Some("high")));

    // A login from the trusted device says so; one from the other does not.
    let trusted = logged_in(&app, "kate", &london, Some(json!({"fingerprint": "abc"}))).await;
    assert!(factor_names(&trusted).contains(&"trusted_device".to_owned()), "{trusted}");
    let untrusted = logged_in(&app, "kate", &london, Some(json!({"fingerprint": "def"}))).await;
    assert!(!factor_names(&untrusted).contains(&"trusted_device".to_owned()), "{untrusted}");
}

#[tokio::test]
async fn removing_a_device_ends_its_sessions() {
    let app = spawn_app_with(&[]).await;
    register_user(&app, "mia").await;
    let phone = Some(json!({"name": "Phone", "fingerprint": "phone-a"}));
    let tablet = Some(json!({"name": "Tablet", "fingerprint": "tablet-b"}));
    let a1 = logged_in(&app, "mia", &[], phone.clone()).await;
    let a2 = logged_in(&app, "mia", &[], phone).await;
    let b1 = logged_in(&app, "mia", &[], tablet).await;
    let phone_id = a1["device_id"].as_str().unwrap().to_owned();
    assert_eq!(a2["device_id"], phone_id.as_str());
    assert_ne!(b1["device_id"], phone_id.as_str());

    let removed = app.http.delete(app.url(&format!("/auth/devices/{phone_id}"))).bearer_auth(access(&b1)).send().await;
    let (status, body) = status_json(removed.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"sessions_ended": 2}));

    for gone in [&a1, &a2] {
        let profile = get(&app, "/auth/profile", access(gone), &[]).await;
        assert_eq!(profile.status(), 401);
        let renewed = refresh(&app, refresh_token(gone), &[]).await;
        assert_eq!(renewed.status(), 401);
    }
    // The tablet's session goes on, refresh included.
    assert_eq!(get(&app, "/auth/profile", access(&b1), &[]).await.status(), 200);
    let (status, renewed) = status_json(refresh(&app, refresh_token(&b1), &[]).await).await;
    assert_eq!(status, 200, "{renewed}");
    let list = devices(&app, access(&renewed)).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["device_id"], b1["device_id"]);
    let again = app.http.delete(app.url(&format!("/auth/devices/{phone_id}"))).bearer_auth(access(&renewed)).send();
    assert_eq!(again.await.unwrap().status(), 404);
    assert!(audit_event_kinds(&app).await.iter().any(|k| k == "device.removed"));
}

#[tokio::test]
async fn malformed_device_descriptions_are_refused_before_anything_counts() {
    let app = spawn_app_with(&[]).await;
    register_user(&app, "nora").await;
    let bad_devices =
        [json!({"name": "n".repeat(10 * 1024)}), json!({"name": "bad\u{7}name"}), json!({"fingerprint": "has space"})];
    for device in &bad_devices {
        // With the right password and with a wrong one: neither gets past the description.
        for password in [crate::PASSWORD, "a-wrong-password-entirely"] {
            let body = json!({"username": "nora", "password": password, "device": device});
            let (status, problem) = status_json(post_login(&app, &body, &[]).await).await;
            assert_eq!((status, problem["code"].as_str()), (422, Some("VALIDATION_ERROR")), "{problem}");
            assert!(problem.get("access_token").is_none() && problem.get("mfa_token").is_none(), "{problem}");
        }
    }
    // Nothing was counted (no failures on the account, no failed-login events) and no device was
    // registered by the refused attempts.
    let answer = logged_in(&app, "nora", &[], None).await;
    let names = factor_names(&answer);
    assert!(!names.contains(&"account_failures".to_owned()), "{names:?}");
    assert!(!names.contains(&"address_failures".to_owned()), "{names:?}");
    assert!(!audit_event_kinds(&app).await.iter().any(|k| k == "auth.login_failed"));
    let list = devices(&app, access(&answer)).await;
    assert_eq!(list.len(), 1, "only the device of the accepted login: {list:?}");
    assert_eq!(list[0]["device_id"], answer["device_id"]);
    let registered = audit_event_kinds(&app).await.iter().filter(|k| *k == "device.registered").count();
    assert_eq!(registered, 1);
}

#[tokio::test]
async fn a_token_used_from_another_client_ends_the_session() {
    let app = spawn_app_with(&[]).await;
    register_user(&app, "oscar").await;
    let chrome = [("user-agent", CHROME)];
    let answer = logged_in(&app, "oscar", &chrome, None).await;
    let token = access(&answer);
    assert_eq!(get(&app, "/auth/profile", token, &chrome).await.status(), 200);
    // A browser update is the same client.
    assert_eq!(get(&app, "/auth/profile", token, &[("user-agent", CHROME_NEXT)]).await.status(), 200);

    let stolen =
        refused(get(&app, "/auth/profile", token, &[("user-agent", CURL)]).await, "SESSION_HIJACK_SUSPECTED").await;
    assert_eq!(stolen["require_reauth"], true, "{stolen}");
    // The session is over for everyone, its owner included.
    assert_eq!(get(&app, "/auth/profile", token, &chrome).await.status(), 401);
    assert_eq!(refresh(&app, refresh_token(&answer), &chrome).await.status(), 401);
    assert!(audit_event_kinds(&app).await.iter().any(|k| k == "session.hijack_suspected"));
    // Logging in again works.
    let again = logged_in(&app, "oscar", &chrome, None).await;
    assert_eq!(get(&app, "/auth/profile", access(&again), &chrome).await.status(), 200);
}

#[tokio::test]
async fn programs_share_one_family_and_a_browser_token_in_a_program_is_refused() {
    let app = spawn_app_with(&[]).await;
    register_user(&app, "olga").await;
    // One HTTP library logs in, another calls (no User-Agent at all): one client.
    let library = [("user-agent", "python-requests/2.32.3")];
    let answer = logged_in(&app, "olga", &library, None).await;
    assert_eq!(get(&app, "/auth/profile", access(&answer), &[]).await.status(), 200);
    assert_eq!(
        get(&app, "/auth/profile", access(&answer), &[("user-agent", "Go-http-client/2.0")]).await.status(),
        200
    );
    // A browser's token sent by a program without a User-Agent has moved.
    let chrome = [("user-agent", CHROME)];
    let browser = logged_in(&app, "olga", &chrome, None).await;
    refused(get(&app, "/auth/profile", access(&browser), &[]).await, "SESSION_HIJACK_SUSPECTED").await;
}

#[tokio::test]
async fn a_refresh_from_another_client_is_refused() {
    let app = spawn_app_with(&[]).await;
    register_user(&app, "pia").await;
    let chrome = [("user-agent", CHROME)];
    let answer = logged_in(&app, "pia", &chrome, None).await;
    let stolen =
        refused(refresh(&app, refresh_token(&answer), &[("user-agent", FIREFOX)]).await, "SESSION_HIJACK_SUSPECTED")
            .await;
    assert_eq!(stolen["require_reauth"], true, "{stolen}");
    // Neither the refresh token nor the access token of the session is any good now.
    assert_eq!(refresh(&app, refresh_token(&answer), &chrome).await.status(), 401);
    assert_eq!(get(&app, "/auth/profile", access(&answer), &chrome).await.status(), 401);
}

#[tokio::test]
async fn a_changed_accept_language_counts_as_another_client() {
    let app = spawn_app_with(&[]).await;
    register_user(&app, "quinn").await;
    let english = [("user-agent", CHROME), ("accept-language", "en-GB,en;q=0.9")];
    let answer = logged_in(&app, "quinn", &english, None).await;
    assert_eq!(get(&app, "/auth/profile", access(&answer), &english).await.status(), 200);
    let french = [("user-agent", CHROME), ("accept-language", "fr-FR,fr;q=0.9")];
    let body = refused(get(&app, "/auth/profile", access(&answer), &french).await, "SESSION_HIJACK_SUSPECTED").await;
    assert_eq!(body["require_reauth"], true);
    assert_eq!(get(&app, "/auth/profile", access(&answer), &english).await.status(), 401);
}

#[tokio::test]
async fn binding_off_lets_another_client_through() {
    let app = spawn_app_with(&[("PALISADE_SESSION_BINDING", "off")]).await;
    register_user(&app, "rex").await;
    let answer = logged_in(&app, "rex", &[("user-agent", CHROME)], None).await;
    assert_eq!(get(&app, "/auth/profile", access(&answer), &[("user-agent", CURL)]).await.status(), 200);
    let (status, body) = status_json(refresh(&app, refresh_token(&answer), &[("user-agent", FIREFOX)]).await).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn address_binding_refuses_another_address_and_device_binding_does_not() {
    let here = [("user-agent", CHROME), ("x-forwarded-for", "198.51.100.1")];
    let there = [("user-agent", CHROME), ("x-forwarded-for", "198.51.100.2")];
    for (binding, moved_ok) in [("address", false), ("device", true)] {
        let app =
            spawn_app_with(&[("PALISADE_SESSION_BINDING", binding), ("PALISADE_TRUSTED_PROXIES", "127.0.0.1")]).await;
        register_user(&app, "sam").await;
        let answer = logged_in(&app, "sam", &here, None).await;
        assert_eq!(get(&app, "/auth/profile", access(&answer), &here).await.status(), 200, "{binding}");
        let moved = get(&app, "/auth/profile", access(&answer), &there).await;
        if moved_ok {
            assert_eq!(moved.status(), 200, "{binding}");
        } else {
            let body = refused(moved, "SESSION_HIJACK_SUSPECTED").await;
            assert_eq!(body["require_reauth"], true, "{binding}");
            assert_eq!(get(&app, "/auth/profile", access(&answer), &here).await.status(), 401, "{binding}");
        }
    }
}

#[tokio::test]
async fn past_the_session_limit_the_oldest_session_ends() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_app_with_clock(&[("PALISADE_MAX_SESSIONS_PER_USER", "2")], clock.clone()).await;
    register_user(&app, "tara").await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(login_user(&app, "tara").await);
        clock.advance(Duration::seconds(1));
    }
    refused(get(&app, "/auth/profile", access(&answers[0]), &[]).await, "TOKEN_REVOKED").await;
    assert_eq!(refresh(&app, refresh_token(&answers[0]), &[]).await.status(), 401);
    let list = sessions(&app, access(&answers[2]), &[]).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let mut ids: Vec<&str> = list.iter().map(|s| s["session_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected = vec![answers[1]["session_id"].as_str().unwrap(), answers[2]["session_id"].as_str().unwrap()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert_eq!(get(&app, "/auth/profile", access(&answers[1]), &[]).await.status(), 200);
    assert!(audit_event_kinds(&app).await.iter().any(|k| k == "session.evicted"));
}

#[tokio::test]
async fn parallel_logins_stay_within_the_session_limit() {
    // Attempts are counted before the password is checked, so 8 logins in flight at once would meet
    // the default lockout (5); the limit is raised to look at sessions alone.
    let app = spawn_app_with(&[("PALISADE_MAX_SESSIONS_PER_USER", "2"), ("PALISADE_MAX_LOGIN_ATTEMPTS", "20")]).await;
    register_user(&app, "uma").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = app.http.clone();
        let url = app.url("/auth/login");
        tasks.push(tokio::spawn(async move {
            let body = json!({"username": "uma", "password": crate::PASSWORD});
            let response = http.post(url).json(&body).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    let mut live = Vec::new();
    for answer in &answers {
        if get(&app, "/auth/profile", access(answer), &[]).await.status() == 200 {
            live.push(answer);
        }
    }
    assert_eq!(live.len(), 2, "exactly the limit of sessions still work after 8 parallel logins");
    let list = sessions(&app, access(live[0]), &[]).await;
    assert_eq!(list.len(), 2, "{list:?}");
}

#[tokio::test]
async fn without_concurrent_sessions_a_second_login_waits_for_logout() {
    let app = spawn_app_with(&[("PALISADE_CONCURRENT_SESSIONS", "false")]).await;
    register_user(&app, "vera").await;
    let first = login_user(&app, "vera").await;
    let (status, body) = status_json(login_from(&app, "vera", &[], None).await).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("CONFLICT")), "{body}");
    assert!(body.get("access_token").is_none());
    // The first session is untouched by the refused login.
    assert_eq!(get(&app, "/auth/profile", access(&first), &[]).await.status(), 200);
    let logout = app.http.post(app.url("/auth/logout")).bearer_auth(access(&first)).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    let second = logged_in(&app, "vera", &[], None).await;
    assert_eq!(sessions(&app, access(&second), &[]).await.len(), 1);
}

#[tokio::test]
async fn sessions_name_their_device_and_place() {
    let city = geoip_test_db("GeoIP2-City-Test.mmdb");
    let app = spawn_app_with(&[("PALISADE_GEOIP_DB", &city), ("PALISADE_TRUSTED_PROXIES", "127.0.0.1")]).await;
    register_user(&app, "walt").await;
    let london =
        logged_in(&app, "walt", &[("x-forwarded-for", LONDON)], Some(json!({"fingerprint": "walt-laptop"}))).await;
    let unknown =
        logged_in(&app, "walt", &[("x-forwarded-for", UNKNOWN)], Some(json!({"fingerprint": "walt-phone"}))).await;

    let list = sessions(&app, access(&london), &[("x-forwarded-for", LONDON)]).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let registered = devices(&app, access(&london)).await;
    let of = |answer: &Value| list.iter().find(|s| s["session_id"] == answer["session_id"]).unwrap().clone();

    let in_london = of(&london);
    assert_eq!(in_london["device_id"], london["device_id"], "{in_london}");
    assert!(registered.iter().any(|d| d["device_id"] == in_london["device_id"]), "{registered:?}");
    assert_eq!((in_london["country"].as_str(), in_london["city"].as_str()), (Some("GB"), Some("London")));
    assert_eq!(in_london["current"], true);

    let elsewhere = of(&unknown);
    assert_eq!(elsewhere["device_id"], unknown["device_id"], "{elsewhere}");
    assert_ne!(elsewhere["device_id"], in_london["device_id"]);
    assert!(registered.iter().any(|d| d["device_id"] == elsewhere["device_id"]), "{registered:?}");
    assert!(elsewhere["country"].is_null() && elsewhere["city"].is_null(), "unknown to GeoIP: {elsewhere}");
}
