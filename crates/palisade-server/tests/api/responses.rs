//! Automatic responses to incidents (`monitoring.incident_auto_response`): an address blocked on every
//! route and on every instance, an account locked, sessions ended — each recorded on the incident,
//! audited, and reverted by an administrator.

use serde_json::{Value, json};

use crate::{PASSWORD, TestApp, login_user, make_admin, register_user, spawn_app_with, status_json};

/// Requests may name their client in `X-Forwarded-For`: the tests play several addresses.
const TRUST_LOOPBACK: (&str, &str) = ("PALISADE_TRUSTED_PROXIES", "127.0.0.1/32");

async fn admin_token(app: &TestApp) -> String {
    let id = register_user(app, "root").await;
    make_admin(app, &id).await;
    login_user(app, "root").await["access_token"].as_str().unwrap().to_owned()
}

async fn reporter(app: &TestApp, admin: &str) -> String {
    let body = json!({"name": "app", "scopes": ["monitoring:write"]});
    let (status, created) =
        status_json(app.http.post(app.url("/auth/api-keys")).bearer_auth(admin).json(&body).send().await.unwrap())
            .await;
    assert_eq!(status, 201, "{created}");
    created["api_key"].as_str().unwrap().to_owned()
}

async fn report_failure(app: &TestApp, key: &str, user: &str, ip: &str) {
    let body = json!({"event_type": "LOGIN_FAILURE", "user_id": user, "ip_address": ip, "source": "web_application"});
    let response = app.http.post(app.url("/monitoring/events")).header("x-api-key", key).json(&body).send().await;
    assert_eq!(response.unwrap().status(), 201);
}

/// Polls until an incident of `cause` has at least one action, and returns it with its actions.
async fn responded(app: &TestApp, admin: &str, cause: &str) -> Value {
    for _ in 0..200 {
        let (_, list) =
            status_json(app.http.get(app.url("/monitoring/incidents")).bearer_auth(admin).send().await.unwrap()).await;
        if let Some(id) = list["incidents"].as_array().unwrap().iter().find(|i| i["cause"] == cause).map(|i| &i["id"]) {
            let url = app.url(&format!("/monitoring/incidents/{}", id.as_str().unwrap()));
            let (status, incident) = status_json(app.http.get(url).bearer_auth(admin).send().await.unwrap()).await;
            assert_eq!(status, 200, "{incident}");
            if !incident["actions"].as_array().unwrap().is_empty() {
                return incident;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no {cause} incident with an action after 5 s");
}

async fn revert(app: &TestApp, bearer: &str, incident: &Value) -> (u16, Value) {
    let url = app.url(&format!(
        "/monitoring/incidents/{}/actions/{}/revert",
        incident["id"].as_str().unwrap(),
        incident["actions"][0]["id"].as_str().unwrap()
    ));
    status_json(app.http.post(url).bearer_auth(bearer).send().await.unwrap()).await
}

async fn profile_from(app: &TestApp, ip: &str, bearer: &str) -> reqwest::Response {
    app.http.get(app.url("/auth/profile")).header("x-forwarded-for", ip).bearer_auth(bearer).send().await.unwrap()
}

#[tokio::test]
async fn spraying_blocks_the_address_on_every_route_until_an_administrator_lifts_it() {
    let app = spawn_app_with(&[TRUST_LOOPBACK]).await;
    let admin = admin_token(&app).await;
    let key = reporter(&app, &admin).await;
    let attacker = "203.0.113.66";
    for n in 0..10 {
        report_failure(&app, &key, &format!("user-{n}"), attacker).await;
    }
    let incident = responded(&app, &admin, "password_spraying").await;
    let action = &incident["actions"][0];
    assert_eq!((action["kind"].as_str(), action["target"].as_str()), (Some("block_ip"), Some(attacker)), "{incident}");
    assert_eq!(action["live"], true);
    let taken = time::OffsetDateTime::parse(
        action["taken_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        action["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - taken, time::Duration::hours(1), "the default block lasts an hour");

    // Every route refuses the address — even with a valid token, even the login — but not the probes
    // and not anyone else.
    let user = login_user(&app, "root").await["access_token"].as_str().unwrap().to_owned();
    let refused = profile_from(&app, attacker, &user).await;
    assert_eq!(refused.status(), 403);
    let retry: i64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "Retry-After {retry}");
    let (_, problem) = status_json(refused).await;
    assert_eq!(problem["code"], "FORBIDDEN_IP", "{problem}");
    let login = json!({"username": "root", "password": PASSWORD});
    let response =
        app.http.post(app.url("/auth/login")).header("x-forwarded-for", attacker).json(&login).send().await.unwrap();
    assert_eq!(response.status(), 403, "a blocked address cannot even try a password");
    let health = app.http.get(app.url("/health")).header("x-forwarded-for", attacker).send().await.unwrap();
    assert_eq!(health.status(), 200, "the probes stay open");
    assert_eq!(profile_from(&app, "198.51.100.200", &user).await.status(), 200, "other addresses are not blocked");

    // A plain user may not lift it; an administrator may, once; it is audited.
    register_user(&app, "mallory").await;
    let mallory = login_user(&app, "mallory").await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(revert(&app, &mallory, &incident).await.0, 403);
    let (status, reverted) = revert(&app, &admin, &incident).await;
    assert_eq!(status, 200, "{reverted}");
    assert_eq!((reverted["live"].as_bool(), reverted["reverted_by"].is_string()), (Some(false), true), "{reverted}");
    assert_eq!(profile_from(&app, attacker, &user).await.status(), 200, "lifted at once on this instance");
    let (status, problem) = revert(&app, &admin, &incident).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("CONFLICT")), "{problem}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for counter in [
        "palisade_auto_responses_total{action=\"block_ip\",outcome=\"taken\"}",
        "palisade_auto_responses_reverted_total{action=\"block_ip\"}",
    ] {
        assert!(metrics.lines().any(|l| l.starts_with(counter)), "{counter} in {metrics}");
    }
    let kinds = crate::audit_event_kinds(&app).await;
    for kind in ["incident.response", "incident.response_reverted"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn a_block_taken_on_one_instance_holds_on_another_within_seconds() {
    let shared = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/shared.db", shared.path().display());
    let extra = [TRUST_LOOPBACK, ("PALISADE_DATABASE_URL", database.as_str())];
    let first = spawn_app_with(&extra).await;
    let second = spawn_app_with(&extra).await;
    let admin = admin_token(&first).await;
    let key = reporter(&first, &admin).await;
    let attacker = "203.0.113.77";
    let user = login_user(&second, "root").await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(profile_from(&second, attacker, &user).await.status(), 200);
    for n in 0..10 {
        report_failure(&first, &key, &format!("user-{n}"), attacker).await;
    }
    responded(&first, &admin, "password_spraying").await;
    let started = std::time::Instant::now();
    loop {
        if profile_from(&second, attacker, &user).await.status() == 403 {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "the other instance never blocked it");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn brute_force_locks_the_account_for_a_while_and_the_lock_can_be_lifted() {
    let app = spawn_app_with(&[]).await;
    let admin = admin_token(&app).await;
    let key = reporter(&app, &admin).await;
    let bob = register_user(&app, "bob").await;
    let session = login_user(&app, "bob").await["access_token"].as_str().unwrap().to_owned();
    // Reported failures (the application's own login form): Palisade's lockout counters are not
    // involved, only the detector.
    for _ in 0..10 {
        report_failure(&app, &key, "bob", "198.51.100.9").await;
    }
    let incident = responded(&app, &admin, "brute_force").await;
    let action = &incident["actions"][0];
    assert_eq!((action["kind"].as_str(), action["target"].as_str()), (Some("lock_account"), Some(bob.as_str())));
    let login = json!({"username": "bob", "password": PASSWORD});
    let response = app.http.post(app.url("/auth/login")).json(&login).send().await.unwrap();
    assert_eq!(response.status(), 401, "the right password does not open a locked account");
    let profile = app.http.get(app.url("/auth/profile")).bearer_auth(&session).send().await.unwrap();
    assert_eq!(profile.status(), 401, "the lock ended bob's session");

    let (status, reverted) = revert(&app, &admin, &incident).await;
    assert_eq!(status, 200, "{reverted}");
    login_user(&app, "bob").await;
}

#[tokio::test]
async fn a_brute_force_on_an_account_an_administrator_locked_leaves_the_lock_alone() {
    let app = spawn_app_with(&[]).await;
    let admin = admin_token(&app).await;
    let key = reporter(&app, &admin).await;
    let carol = register_user(&app, "carol").await;
    let lock = app.http.post(app.url(&format!("/admin/users/{carol}/lock"))).bearer_auth(&admin).send().await.unwrap();
    assert!(lock.status().is_success());
    for _ in 0..10 {
        report_failure(&app, &key, "carol", "198.51.100.9").await;
    }
    // The incident opens, but no action is recorded: a lapse would otherwise unlock what the
    // administrator locked.
    let mut incident = Value::Null;
    for _ in 0..200 {
        let (_, list) =
            status_json(app.http.get(app.url("/monitoring/incidents")).bearer_auth(&admin).send().await.unwrap()).await;
        if let Some(found) = list["incidents"].as_array().unwrap().iter().find(|i| i["cause"] == "brute_force") {
            incident = found.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let url = app.url(&format!("/monitoring/incidents/{}", incident["id"].as_str().unwrap()));
    let (_, detail) = status_json(app.http.get(url).bearer_auth(&admin).send().await.unwrap()).await;
    assert_eq!(detail["actions"], json!([]), "{detail}");
}

#[tokio::test]
async fn a_reused_refresh_token_ends_every_session_of_its_user_and_that_cannot_be_reverted() {
    let app = spawn_app_with(&[]).await;
    let admin = admin_token(&app).await;
    register_user(&app, "dave").await;
    let laptop = login_user(&app, "dave").await;
    let phone = login_user(&app, "dave").await;
    let refresh = |token: &str| app.http.post(app.url("/auth/refresh")).json(&json!({"refresh_token": token})).send();
    let spent = laptop["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(spent).await.unwrap().status(), 200);
    assert_eq!(refresh(spent).await.unwrap().status(), 401, "the reuse is caught");
    let incident = responded(&app, &admin, "token_reuse").await;
    assert_eq!(incident["actions"][0]["kind"], "end_sessions", "{incident}");
    // The phone's session, which the reuse itself did not touch, is over too.
    let profile = app.http.get(app.url("/auth/profile")).bearer_auth(phone["access_token"].as_str().unwrap());
    assert_eq!(profile.send().await.unwrap().status(), 401);
    assert_eq!(refresh(phone["refresh_token"].as_str().unwrap()).await.unwrap().status(), 401);
    let (status, problem) = revert(&app, &admin, &incident).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("CONFLICT")), "{problem}");
}

#[tokio::test]
async fn without_automatic_responses_incidents_open_and_nothing_is_done() {
    let app = spawn_app_with(&[TRUST_LOOPBACK, ("PALISADE_MONITORING_RESPONSES", "none")]).await;
    let admin = admin_token(&app).await;
    let key = reporter(&app, &admin).await;
    for n in 0..10 {
        report_failure(&app, &key, &format!("user-{n}"), "203.0.113.88").await;
    }
    let mut found = false;
    for _ in 0..200 {
        let (_, list) =
            status_json(app.http.get(app.url("/monitoring/incidents")).bearer_auth(&admin).send().await.unwrap()).await;
        if list["incidents"].as_array().unwrap().iter().any(|i| i["cause"] == "password_spraying") {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(found);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let user = login_user(&app, "root").await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(profile_from(&app, "203.0.113.88", &user).await.status(), 200);
}

#[tokio::test]
async fn a_timed_lock_lapses_by_itself() {
    let clock = std::sync::Arc::new(palisade_core::clock::ManualClock::fixed());
    let app = crate::spawn_app_with_clock(&[], clock.clone()).await;
    let admin = admin_token(&app).await;
    let key = reporter(&app, &admin).await;
    register_user(&app, "erin").await;
    for _ in 0..10 {
        report_failure(&app, &key, "erin", "198.51.100.9").await;
    }
    let incident = responded(&app, &admin, "brute_force").await;
    let login = json!({"username": "erin", "password": PASSWORD});
    assert_eq!(app.http.post(app.url("/auth/login")).json(&login).send().await.unwrap().status(), 401);
    // Fifteen minutes on, the next sweep (every five seconds) lifts it and records why. (Polled on the
    // incident, not by logging in: failed logins would trip the lockout.)
    clock.advance(time::Duration::minutes(15));
    let admin = login_user(&app, "root").await["access_token"].as_str().unwrap().to_owned();
    let url = app.url(&format!("/monitoring/incidents/{}", incident["id"].as_str().unwrap()));
    let started = std::time::Instant::now();
    loop {
        let (_, detail) = status_json(app.http.get(&url).bearer_auth(&admin).send().await.unwrap()).await;
        let action = &detail["actions"][0];
        if action["reverted_by"] == "expiry" {
            assert_eq!(action["live"], false, "{detail}");
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(8), "the lock never lapsed: {detail}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    login_user(&app, "erin").await;
}
