//! Security events over HTTP: applications report events with a `monitoring:write` key
//! (`POST /monitoring/events`, the guide's `process_security_event`), and administrators read every
//! event — Palisade's own audited ones and the reports — filtered and paged
//! (`GET /monitoring/events`).

use serde_json::{Value, json};

use crate::{TestApp, login_user, make_admin, register_user, spawn_app, status_json};

async fn admin_token(app: &TestApp) -> String {
    let id = register_user(app, "root").await;
    make_admin(app, &id).await;
    login_user(app, "root").await["access_token"].as_str().unwrap().to_owned()
}

async fn api_key(app: &TestApp, bearer: &str, scopes: &[&str]) -> (u16, Value) {
    let body = json!({"name": "app", "scopes": scopes});
    status_json(app.http.post(app.url("/auth/api-keys")).bearer_auth(bearer).json(&body).send().await.unwrap()).await
}

async fn report(app: &TestApp, key: &str, body: &Value) -> (u16, Value) {
    status_json(app.http.post(app.url("/monitoring/events")).header("x-api-key", key).json(body).send().await.unwrap())
        .await
}

async fn events(app: &TestApp, bearer: &str, query: &str) -> (u16, Value) {
    let url = app.url(&format!("/monitoring/events{query}"));
    status_json(app.http.get(url).bearer_auth(bearer).send().await.unwrap()).await
}

#[tokio::test]
async fn an_application_reports_events_and_an_administrator_reads_them_with_palisades_own() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let (status, created) = api_key(&app, &admin, &["monitoring:write"]).await;
    assert_eq!(status, 201, "{created}");
    let key = created["api_key"].as_str().unwrap().to_owned();
    let key_id = created["api_key_id"].as_str().unwrap().to_owned();

    // A failed login Palisade sees itself…
    register_user(&app, "alice").await;
    // A failed login's subject is the username tried (an unknown user has no id).
    let alice = "alice".to_owned();
    let wrong = json!({"username": "alice", "password": "not-the-password-at-all"});
    assert_eq!(app.http.post(app.url("/auth/login")).json(&wrong).send().await.unwrap().status(), 401);

    // …and one the application saw on its own login form, reported.
    let body = json!({
        "event_type": "login_failure",
        "user_id": alice,
        "ip_address": "203.0.113.9",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "details": {"reason": "wrong password", "attempt": 3},
        "source": "web_application",
    });
    let (status, stored) = report(&app, &key, &body).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["event_type"], "LOGIN_FAILURE");
    assert_eq!(stored["kind"], "event.login_failure", "a report never takes Palisade's own kind");
    assert_eq!(stored["reported"], true);
    assert_eq!(stored["actor"], format!("api_key:{key_id}"));
    assert_eq!(
        (stored["user_id"].as_str(), stored["ip_address"].as_str()),
        (Some(alice.as_str()), Some("203.0.113.9"))
    );
    assert_eq!(stored["details"]["attempt"], 3);
    assert_eq!(stored["details"]["source"], "web_application");
    assert_eq!(stored["details"]["reporter_ip"], "127.0.0.1");
    let (status, test_event) =
        report(&app, &key, &json!({"event_type": "SYSTEM_TEST", "source": "health-check"})).await;
    assert_eq!((status, test_event["event_type"].as_str()), (201, Some("SYSTEM_TEST")), "{test_event}");

    // LOGIN_FAILURE for alice: both, newest first, told apart by `reported`.
    let (status, page) = events(&app, &admin, &format!("?user_id={alice}&type=LOGIN_FAILURE")).await;
    assert_eq!(status, 200, "{page}");
    let list = page["events"].as_array().unwrap();
    let kinds: Vec<&str> = list.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["event.login_failure", "auth.login_failed"], "{page}");
    assert_eq!((list[0]["reported"].as_bool(), list[1]["reported"].as_bool()), (Some(true), Some(false)));
    assert!(list.iter().all(|e| e["event_type"] == "LOGIN_FAILURE" && e["user_id"] == alice.as_str()));
    assert!(page["next_cursor"].is_null(), "a short page is the last: {page}");

    // The chain still verifies with the reports in it.
    assert!(app.palisade.audit().verify().await.unwrap().broken.is_none());

    // Time filters: nothing before the epoch's year 2000, everything since.
    let (_, none) = events(&app, &admin, "?until=2000-01-01T00:00:00Z").await;
    assert_eq!(none["events"].as_array().unwrap().len(), 0, "{none}");
    let (_, since) = events(&app, &admin, "?since=2000-01-01T00:00:00Z&type=SYSTEM_TEST").await;
    assert_eq!(since["events"].as_array().unwrap().len(), 1, "{since}");
}

#[tokio::test]
async fn pages_follow_the_cursor_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let key = api_key(&app, &admin, &["monitoring:write"]).await.1["api_key"].as_str().unwrap().to_owned();
    for n in 0..7 {
        let body = json!({"event_type": "DATA_ACCESS", "user_id": "u-1", "details": {"n": n}, "source": "batch"});
        assert_eq!(report(&app, &key, &body).await.0, 201);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = events(&app, &admin, &format!("?type=DATA_ACCESS&limit=3{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["details"]["n"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, [6, 5, 4, 3, 2, 1, 0]);
}

#[tokio::test]
async fn bad_reports_get_clear_refusals_and_only_the_right_callers_get_in() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let key = api_key(&app, &admin, &["monitoring:write"]).await.1["api_key"].as_str().unwrap().to_owned();

    let (status, problem) = report(&app, &key, &json!({"event_type": "LOGIN_EXPLODED", "source": "web"})).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("VALIDATION_ERROR")), "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("LOGIN_EXPLODED") && detail.contains("LOGIN_FAILURE") && detail.contains("SYSTEM_TEST"));

    let big = "x".repeat(17 * 1024);
    let (status, problem) =
        report(&app, &key, &json!({"event_type": "SYSTEM_TEST", "source": "web", "details": {"blob": big}})).await;
    assert_eq!((status, problem["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")), "{problem}");

    for (body, field) in [
        (json!({"event_type": "SYSTEM_TEST", "source": "  "}), "source"),
        (json!({"event_type": "SYSTEM_TEST", "source": "web", "ip_address": "300.1.1.1"}), "ip_address"),
        (json!({"event_type": "SYSTEM_TEST", "source": "web", "user_id": "a\nb"}), "user_id"),
    ] {
        let (status, problem) = report(&app, &key, &body).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap().starts_with(field), "{problem}");
    }
    let (status, _) = report(&app, &key, &json!({"event_type": "SYSTEM_TEST", "source": "web", "extra": 1})).await;
    assert_eq!(status, 422, "unknown fields are refused");
    // None of the refusals was recorded.
    let (_, page) = events(&app, &admin, "?type=SYSTEM_TEST").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "{page}");

    // A plain user can neither mint a monitoring key nor read events.
    register_user(&app, "bob").await;
    let bob = login_user(&app, "bob").await["access_token"].as_str().unwrap().to_owned();
    let (status, problem) = api_key(&app, &bob, &["monitoring:write"]).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("only an administrator"), "{problem}");
    let (status, problem) = events(&app, &bob, "").await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("INSUFFICIENT_SCOPE")), "{problem}");
    // A reader key reads but does not write.
    let reader = api_key(&app, &admin, &["monitoring:read"]).await.1["api_key"].as_str().unwrap().to_owned();
    let url = app.url("/monitoring/events?limit=1");
    let (status, page) = status_json(app.http.get(url).header("x-api-key", &reader).send().await.unwrap()).await;
    assert_eq!((status, page["events"].as_array().map(Vec::len)), (200, Some(1)), "{page}");
    let (status, _) = report(&app, &reader, &json!({"event_type": "SYSTEM_TEST", "source": "web"})).await;
    assert_eq!(status, 403);

    for query in [
        "?limit=0",
        "?limit=501",
        "?type=NOPE",
        "?since=yesterday",
        "?before=abc",
        "?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z",
    ] {
        let (status, problem) = events(&app, &admin, query).await;
        assert_eq!(status, 422, "{query}: {problem}");
    }
}

#[tokio::test]
async fn the_event_types_are_listed_with_their_audit_kinds() {
    let app = spawn_app().await;
    let (status, list) = status_json(app.http.get(app.url("/monitoring/event-types")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    let failure = list.iter().find(|t| t["name"] == "LOGIN_FAILURE").unwrap();
    assert_eq!(
        (failure["audited_as"].as_str(), failure["reported_as"].as_str()),
        (Some("auth.login_failed"), Some("event.login_failure"))
    );
    let test = list.iter().find(|t| t["name"] == "SYSTEM_TEST").unwrap();
    assert!(test["audited_as"].is_null());
}

/// Polls the incidents until one of `cause` shows up (the detectors run on their own task).
async fn incident_of(app: &TestApp, bearer: &str, cause: &str) -> Value {
    for _ in 0..200 {
        let (status, list) =
            status_json(app.http.get(app.url("/monitoring/incidents")).bearer_auth(bearer).send().await.unwrap()).await;
        assert_eq!(status, 200, "{list}");
        if let Some(found) = list["incidents"].as_array().unwrap().iter().find(|i| i["cause"] == cause) {
            return found.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no {cause} incident after 5 s");
}

#[tokio::test]
async fn detectors_open_one_incident_per_cause_and_subject_and_administrators_close_them() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let key = api_key(&app, &admin, &["monitoring:write"]).await.1["api_key"].as_str().unwrap().to_owned();
    let failure = |user: &str, ip: &str| json!({"event_type": "LOGIN_FAILURE", "user_id": user, "ip_address": ip, "source": "web_application"});
    // Nine failures on one account: below the brute-force threshold (10 per 5 minutes).
    for _ in 0..9 {
        assert_eq!(report(&app, &key, &failure("victim", "198.51.100.1")).await.0, 201);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, none) =
        status_json(app.http.get(app.url("/monitoring/incidents")).bearer_auth(&admin).send().await.unwrap()).await;
    assert_eq!(none["incidents"].as_array().unwrap().len(), 0, "{none}");
    // The tenth opens it.
    assert_eq!(report(&app, &key, &failure("victim", "198.51.100.1")).await.0, 201);
    let incident = incident_of(&app, &admin, "brute_force").await;
    assert_eq!((incident["subject"].as_str(), incident["severity"].as_str()), (Some("user:victim"), Some("HIGH")));
    assert_eq!((incident["state"].as_str(), incident["occurrences"].as_u64()), (Some("open"), Some(1)));
    assert_eq!(incident["details"]["failures"], 10);
    assert_eq!(incident["events"].as_array().unwrap().len(), 1);

    // Ten more: the same incident, attached to (deduplicated), not a second one.
    for _ in 0..10 {
        assert_eq!(report(&app, &key, &failure("victim", "198.51.100.1")).await.0, 201);
    }
    let mut attached = Value::Null;
    for _ in 0..200 {
        let (_, list) = status_json(
            app.http.get(app.url("/monitoring/incidents?state=open")).bearer_auth(&admin).send().await.unwrap(),
        )
        .await;
        let brute: Vec<&Value> =
            list["incidents"].as_array().unwrap().iter().filter(|i| i["cause"] == "brute_force").collect();
        assert_eq!(brute.len(), 1, "one open incident per cause and subject: {list}");
        if brute[0]["occurrences"] == 2 {
            attached = brute[0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(attached["id"], incident["id"], "{attached}");
    assert_eq!(attached["events"].as_array().unwrap().len(), 2);

    // One address failing on ten accounts: password spraying, about the address.
    for n in 0..10 {
        assert_eq!(report(&app, &key, &failure(&format!("user-{n}"), "203.0.113.66")).await.0, 201);
    }
    let spraying = incident_of(&app, &admin, "password_spraying").await;
    assert_eq!(spraying["subject"], "ip:203.0.113.66");

    // The lifecycle: forward only, audited.
    let id = incident["id"].as_str().unwrap();
    let patch = |state: &str| {
        app.http
            .patch(app.url(&format!("/monitoring/incidents/{id}")))
            .bearer_auth(&admin)
            .json(&json!({"state": state}))
            .send()
    };
    let (status, acked) = status_json(patch("acknowledged").await.unwrap()).await;
    assert_eq!((status, acked["state"].as_str()), (200, Some("acknowledged")), "{acked}");
    assert!(acked["updated_by"].as_str().is_some());
    let (status, problem) = status_json(patch("acknowledged").await.unwrap()).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("CONFLICT")), "{problem}");
    let (status, resolved) = status_json(patch("resolved").await.unwrap()).await;
    assert_eq!((status, resolved["state"].as_str()), (200, Some("resolved")));
    let (status, _) = status_json(patch("open").await.unwrap()).await;
    assert_eq!(status, 422);
    let missing = app
        .http
        .patch(app.url(&format!("/monitoring/incidents/{}", uuid::Uuid::now_v7())))
        .bearer_auth(&admin)
        .json(&json!({"state": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let (_, opened) = events(&app, &admin, "").await;
    let kinds: Vec<&str> = opened["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"incident.opened") && kinds.contains(&"incident.updated"), "{kinds:?}");

    // Resolved is closed for good: the next firing opens a new incident.
    for _ in 0..10 {
        assert_eq!(report(&app, &key, &failure("victim", "198.51.100.1")).await.0, 201);
    }
    let mut reopened = Value::Null;
    for _ in 0..200 {
        let (_, list) = status_json(
            app.http.get(app.url("/monitoring/incidents?state=open")).bearer_auth(&admin).send().await.unwrap(),
        )
        .await;
        if let Some(found) = list["incidents"].as_array().unwrap().iter().find(|i| i["cause"] == "brute_force") {
            reopened = found.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(reopened["id"].is_string() && reopened["id"] != incident["id"], "{reopened}");

    // A plain user cannot read or move incidents.
    register_user(&app, "mallory").await;
    let user = login_user(&app, "mallory").await["access_token"].as_str().unwrap().to_owned();
    let response = app.http.get(app.url("/monitoring/incidents")).bearer_auth(&user).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .http
        .patch(app.url(&format!("/monitoring/incidents/{}", spraying["id"].as_str().unwrap())))
        .bearer_auth(&user)
        .json(&json!({"state": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

/// The incidents of `cause` now.
async fn incidents_of(app: &TestApp, bearer: &str, cause: &str) -> Vec<Value> {
    let (status, list) =
        status_json(app.http.get(app.url("/monitoring/incidents")).bearer_auth(bearer).send().await.unwrap()).await;
    assert_eq!(status, 200, "{list}");
    list["incidents"].as_array().unwrap().iter().filter(|i| i["cause"] == cause).cloned().collect()
}

/// A failed login of `username` over HTTP (a wrong password); its status.
async fn fail_login(app: &TestApp, username: &str) -> u16 {
    let wrong = json!({"username": username, "password": "not-the-password-at-all"});
    app.http.post(app.url("/auth/login")).json(&wrong).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_brute_force_threshold_is_a_setting() {
    // monitoring_brute_force_failures = 3: the third failed login on one account opens the incident.
    let app = crate::spawn_app_with(&[("PALISADE_MONITORING_BRUTE_FORCE_FAILURES", "3")]).await;
    let admin = admin_token(&app).await;
    register_user(&app, "victim").await;
    for _ in 0..2 {
        assert_eq!(fail_login(&app, "victim").await, 401);
    }
    // Not after two. The detectors take records in chain order on one task, so once the incident of a
    // later record shows up the two failures have been judged: a barrier rather than a guessed sleep.
    let key = api_key(&app, &admin, &["monitoring:write"]).await.1["api_key"].as_str().unwrap().to_owned();
    let barrier = json!({"event_type": "TOKEN_REUSE", "user_id": "nobody-at-all", "source": "test"});
    assert_eq!(report(&app, &key, &barrier).await.0, 201);
    incident_of(&app, &admin, "token_reuse").await;
    assert_eq!(incidents_of(&app, &admin, "brute_force").await, Vec::<Value>::new(), "two failures are below 3");

    // The third opens it (polled for up to 5 s: the detectors run on their own task).
    assert_eq!(fail_login(&app, "victim").await, 401);
    let incident = incident_of(&app, &admin, "brute_force").await;
    assert_eq!(incident["subject"], "user:victim", "{incident}");
    assert_eq!(incident["details"]["failures"], 3, "{incident}");
    assert_eq!(incident["details"]["threshold"], 3, "{incident}");
}

#[tokio::test]
async fn with_the_detectors_off_failures_are_stored_but_open_no_incident() {
    // Twelve failures are above the default brute-force threshold (10); the lockout is raised out of
    // the way so that every one is a plain wrong password.
    let app =
        crate::spawn_app_with(&[("PALISADE_MONITORING_DETECTORS", "false"), ("PALISADE_MAX_LOGIN_ATTEMPTS", "100")])
            .await;
    let admin = admin_token(&app).await;
    register_user(&app, "victim").await;
    for _ in 0..12 {
        assert_eq!(fail_login(&app, "victim").await, 401);
    }
    // No detector runs, so nothing can tell when one would have finished: watch for 1.5 s.
    for _ in 0..15 {
        let (status, list) =
            status_json(app.http.get(app.url("/monitoring/incidents")).bearer_auth(&admin).send().await.unwrap()).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["incidents"].as_array().unwrap().len(), 0, "the detectors are off: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The failures are stored and queryable all the same.
    let (status, page) = events(&app, &admin, "?user_id=victim&type=LOGIN_FAILURE&limit=100").await;
    assert_eq!(status, 200, "{page}");
    let failures = page["events"].as_array().unwrap();
    assert_eq!(failures.len(), 12, "{page}");
    assert!(failures.iter().all(|e| e["kind"] == "auth.login_failed" && e["reported"] == false), "{page}");
}

#[tokio::test]
async fn the_dashboard_counts_what_happened_from_the_stored_records() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let key = api_key(&app, &admin, &["monitoring:write"]).await.1["api_key"].as_str().unwrap().to_owned();
    let dashboard = |query: &'static str, bearer: String| {
        let url = app.url(&format!("/monitoring/dashboard{query}"));
        let http = app.http.clone();
        async move { status_json(http.get(url).bearer_auth(bearer).send().await.unwrap()).await }
    };
    let (status, before) = dashboard("", admin.clone()).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        (before["range_seconds"].as_u64(), before["charts"]["bucket_seconds"].as_u64()),
        (Some(86_400), Some(3600))
    );
    assert_eq!(before["charts"]["buckets"].as_array().unwrap().len(), 24);
    assert_eq!(before["threats"]["failed_logins"], 0);

    // Three failed logins Palisade sees, ten an application reports: a brute force on "victim".
    register_user(&app, "alice").await;
    let wrong = json!({"username": "alice", "password": "not-the-password-at-all"});
    for _ in 0..3 {
        assert_eq!(app.http.post(app.url("/auth/login")).json(&wrong).send().await.unwrap().status(), 401);
    }
    for _ in 0..10 {
        let body =
            json!({"event_type": "LOGIN_FAILURE", "user_id": "victim", "ip_address": "198.51.100.1", "source": "web"});
        assert_eq!(report(&app, &key, &body).await.0, 201);
    }
    incident_of(&app, &admin, "brute_force").await;
    let (_, after) = dashboard("?range=3600", admin.clone()).await;
    assert_eq!(after["charts"]["bucket_seconds"], 150, "an hour in 24 slices");
    assert_eq!(after["threats"]["failed_logins"], 13, "{after}");
    assert_eq!(after["threats"]["brute_force_attempts"], 1);
    assert!(after["metrics"]["security_incidents"].as_u64().unwrap() >= 1);
    assert!(after["metrics"]["total_events"].as_u64().unwrap() >= 13);
    assert!(after["compliance"]["audit_events"].as_u64() >= after["metrics"]["total_events"].as_u64());
    let series: u64 =
        after["charts"]["series"]["failed_logins"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(series, 13, "the chart holds every failure");
    assert_eq!(after["threats"]["suspicious_ips"][0], json!({"ip": "198.51.100.1", "failures": 10}), "{after}");
    assert_eq!(after["threats"]["suspicious_ips"][1], json!({"ip": "127.0.0.1", "failures": 3}), "{after}");
    assert!(after["incidents"]["unresolved"].as_u64().unwrap() >= 1);
    assert!(after["incidents"]["by_severity"]["HIGH"].as_u64().unwrap() >= 1);

    // The same story in Prometheus' counters (process-wide: other tests add to them).
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |line_start: &str| -> f64 {
        let line =
            metrics.lines().find(|l| l.starts_with(line_start)).unwrap_or_else(|| panic!("{line_start} in {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("palisade_security_events_total{type=\"LOGIN_FAILURE\"}") >= 13.0);
    assert!(value("palisade_incidents_opened_total{cause=\"brute_force\",severity=\"HIGH\"}") >= 1.0);
    assert!(value("palisade_detector_findings_total{detector=\"brute_force\"}") >= 1.0);

    for bad in ["?range=10", "?range=99999999", "?range=day"] {
        let (status, _) = dashboard(bad, admin.clone()).await;
        assert!(status == 422 || status == 400, "{bad}: {status}");
    }
    register_user(&app, "mallory").await;
    let user = login_user(&app, "mallory").await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(dashboard("", user).await.0, 403);
}
