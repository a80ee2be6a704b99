//! The end-user flows of CONTRACT §5 over HTTP: register, login, profile, refresh with reuse
//! detection, logout, password change, sessions, lockout, throttling, JWKS and audit.

use serde_json::{Value, json};

use crate::{TestApp, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct-Horse-battery-9-staple";

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.http.post(app.url(path)).json(&body).send().await.unwrap()
}

async fn register(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    post(app, "/auth/register", json!({"username": username, "password": password})).await
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    post(app, "/auth/login", json!({"username": username, "password": password})).await
}

async fn signed_up(app: &TestApp, username: &str) -> Value {
    assert_eq!(register(app, username, PASSWORD).await.status(), 201);
    let response = login(app, username, PASSWORD).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn bearer_get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http.get(app.url(path)).bearer_auth(token).send().await.unwrap()
}

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn register_login_and_profile() {
    let app = spawn_app().await;
    let response =
        post(&app, "/auth/register", json!({"username": "Alice", "password": PASSWORD, "email": "alice@Example.com"}))
            .await;
    assert_eq!(response.status(), 201);
    let user_id = body(response).await["user_id"].as_str().unwrap().to_owned();

    let tokens: Value = body(login(&app, "ALICE", PASSWORD).await).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["user_id"], user_id.as_str());
    assert_eq!(tokens["expires_in"], 900);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh.rsplit('.').next().unwrap().len(), 43, "256 random bits after the ids: {refresh}");
    assert!(tokens.get("password_expired").is_none());

    let profile = bearer_get(&app, "/auth/profile", tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(profile.status(), 200);
    let profile = body(profile).await;
    assert_eq!(profile["username"], "alice", "usernames are stored normalised");
    assert_eq!(profile["email"], "alice@example.com");
    assert_eq!(profile["user_id"], user_id.as_str());
    assert_eq!(profile["mfa_methods"], json!([]));
}

#[tokio::test]
async fn usernames_are_unique_whatever_their_spelling() {
    let app = spawn_app().await;
    assert_eq!(register(&app, "bob", PASSWORD).await.status(), 201);
    for twin in ["BOB", " bob ", "ｂｏｂ"] {
        let response = register(&app, twin, PASSWORD).await;
        assert_eq!(response.status(), 409, "{twin}");
        assert_eq!(body(response).await["code"], "CONFLICT");
    }
}

#[tokio::test]
async fn a_weak_password_is_refused_with_every_failed_rule() {
    let app = spawn_app().await;
    let response = register(&app, "carol", "password").await;
    assert_eq!(response.status(), 422);
    let problem = body(response).await;
    assert_eq!(problem["code"], "PASSWORD_POLICY");
    let rules: Vec<&str> = problem["errors"].as_array().unwrap().iter().map(|e| e["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"min_length"), "{rules:?}");
    assert!(rules.contains(&"common_password"), "{rules:?}");
    assert!(rules.len() >= 3, "every failed rule, not just the first: {rules:?}");

    let response = register(&app, "carolina", "carolina-Carolina-2024").await;
    assert_eq!(response.status(), 422);
    let problem = body(response).await;
    let rules: Vec<&str> = problem["errors"].as_array().unwrap().iter().map(|e| e["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"contains_username"), "{rules:?}");
}

#[tokio::test]
async fn bad_input_gets_clear_problems() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = post(&app, "/auth/login", json!({"username": "x"})).await;
    assert_eq!(response.status(), 422);
    assert_eq!(body(response).await["code"], "VALIDATION_ERROR");
    let response = post(&app, "/auth/register", json!({"username": "two words", "password": PASSWORD})).await;
    assert_eq!(response.status(), 422);
    let problem = body(response).await;
    assert_eq!(problem["code"], "VALIDATION_ERROR");
    assert_eq!(problem["errors"][0]["rule"], "username");
    let response =
        post(&app, "/auth/register", json!({"username": "dan", "password": PASSWORD, "email": "not-an-email"})).await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    signed_up(&app, "erin").await;
    let wrong = login(&app, "erin", "wrong-Password-123456").await;
    let unknown = login(&app, "nobody-here", "wrong-Password-123456").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let (mut a, mut b) = (body(wrong).await, body(unknown).await);
    a.as_object_mut().unwrap().remove("request_id");
    b.as_object_mut().unwrap().remove("request_id");
    assert_eq!(a, b);
    assert_eq!(a["code"], "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn bearer_failures_are_401_with_www_authenticate() {
    let app = spawn_app().await;
    let none = app.http.get(app.url("/auth/profile")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_eq!(body(none).await["code"], "INVALID_TOKEN");
    let garbage = bearer_get(&app, "/auth/profile", "not.a.jwt").await;
    assert_eq!(garbage.status(), 401);
    assert_eq!(body(garbage).await["code"], "INVALID_TOKEN");
}

#[tokio::test]
async fn five_failures_lock_the_account_whether_or_not_it_exists() {
    let app = spawn_app().await;
    signed_up(&app, "frank").await;
    for name in ["frank", "ghost-user"] {
        for _ in 0..5 {
            assert_eq!(login(&app, name, "wrong-Password-123456").await.status(), 401);
        }
        let locked = login(&app, name, "wrong-Password-123456").await;
        assert_eq!(locked.status(), 423, "{name}");
        assert!(locked.headers().get("retry-after").is_some());
        assert_eq!(body(locked).await["code"], "ACCOUNT_LOCKED");
    }
    // Even the right password waits for the lock to end.
    assert_eq!(login(&app, "frank", PASSWORD).await.status(), 423);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let app = spawn_app().await;
    signed_up(&app, "grace").await;
    for _ in 0..4 {
        login(&app, "grace", "wrong-Password-123456").await;
    }
    assert_eq!(login(&app, "grace", PASSWORD).await.status(), 200);
    for _ in 0..4 {
        assert_eq!(login(&app, "grace", "wrong-Password-123456").await.status(), 401);
    }
    assert_eq!(login(&app, "grace", PASSWORD).await.status(), 200, "the count started again after the success");
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_with_429() {
    let app = spawn_app_with(&[("PALISADE_IP_MAX_LOGIN_FAILURES", "3")]).await;
    for i in 0..3 {
        assert_eq!(login(&app, &format!("spray-{i}"), "wrong-Password-123456").await.status(), 401);
    }
    let throttled = login(&app, "spray-9", "wrong-Password-123456").await;
    assert_eq!(throttled.status(), 429);
    let retry: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900);
    assert_eq!(body(throttled).await["code"], "RATE_LIMITED");
}

/// The per-address limit holds against one concurrent burst too: each attempt takes one of the
/// address's remaining failures before its password is hashed, so a burst of twelve guesses against
/// a limit of three gets three checked and nine refused without a hash.
#[tokio::test]
async fn a_concurrent_burst_from_one_address_cannot_pass_its_limit() {
    let app = spawn_app_with(&[("PALISADE_IP_MAX_LOGIN_FAILURES", "3")]).await;
    // Twelve accounts, so no account's own limit is reached.
    let names: Vec<String> = (0..12).map(|i| format!("burst-{i}")).collect();
    let attempts = names.iter().map(|name| login(&app, name, "wrong-Password-123456"));
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 3, "{checked} passwords were checked: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 12 - checked, "{statuses:?}");
    // Malformed names count against the same limit: the address is throttled now.
    assert_eq!(login(&app, "", "wrong-Password-123456").await.status(), 429);
    let records = app.palisade.durable_store().audit_records(0, 1000).await.unwrap();
    let hashed = records.iter().filter(|r| r.details.contains("unknown user")).count();
    assert_eq!(hashed, checked, "every checked attempt is audited with its reason");
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = spawn_app().await;
    let first = signed_up(&app, "heidi").await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();
    let response = post(&app, "/auth/refresh", json!({"refresh_token": old})).await;
    assert_eq!(response.status(), 200);
    let second = body(response).await;
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["session_id"], first["session_id"]);
    assert_eq!(bearer_get(&app, "/auth/profile", second["access_token"].as_str().unwrap()).await.status(), 200);

    let reuse = post(&app, "/auth/refresh", json!({"refresh_token": old})).await;
    assert_eq!(reuse.status(), 401);
    let problem = body(reuse).await;
    assert_eq!(problem["code"], "TOKEN_REVOKED");
    assert_eq!(problem["require_reauth"], true);

    // The whole family and its session are gone: the newest refresh token and the access token too.
    let newest = post(&app, "/auth/refresh", json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(newest.status(), 401);
    assert_eq!(body(newest).await["code"], "TOKEN_REVOKED");
    assert_eq!(bearer_get(&app, "/auth/profile", second["access_token"].as_str().unwrap()).await.status(), 401);

    let unknown = post(&app, "/auth/refresh", json!({"refresh_token": "A".repeat(43)})).await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(body(unknown).await["code"], "INVALID_TOKEN");
    // A token of the right form for a live session, but never issued: unknown, and nothing revoked.
    let live = signed_up(&app, "heidi2").await;
    let forged = format!(
        "{}.{}.{}",
        live["user_id"].as_str().unwrap().replace('-', ""),
        live["session_id"].as_str().unwrap().replace('-', ""),
        "B".repeat(43)
    );
    let unknown = post(&app, "/auth/refresh", json!({"refresh_token": forged})).await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(body(unknown).await["code"], "INVALID_TOKEN");
    let still = post(&app, "/auth/refresh", json!({"refresh_token": live["refresh_token"]})).await;
    assert_eq!(still.status(), 200, "a forged token does not disturb the real family");
    let unknown = post(&app, "/auth/refresh", json!({"refresh_token": "A".repeat(43)})).await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(body(unknown).await["code"], "INVALID_TOKEN");
}

#[tokio::test]
async fn twenty_simultaneous_refreshes_of_one_token_give_exactly_one_success() {
    let app = spawn_app().await;
    let tokens = signed_up(&app, "ivan").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let requests = (0..20).map(|_| {
        let http = app.http.clone();
        let url = app.url("/auth/refresh");
        let refresh = refresh.clone();
        tokio::spawn(
            async move { http.post(url).json(&json!({"refresh_token": refresh})).send().await.unwrap().status() },
        )
    });
    let statuses: Vec<u16> = futures_join(requests).await.into_iter().map(|s| s.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
}

async fn futures_join<T: Send + 'static>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn logout_ends_the_session_and_its_refresh_family() {
    let app = spawn_app().await;
    let tokens = signed_up(&app, "judy").await;
    let access = tokens["access_token"].as_str().unwrap();
    let response = app.http.post(app.url("/auth/logout")).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let after = bearer_get(&app, "/auth/profile", access).await;
    assert_eq!(after.status(), 401);
    assert_eq!(body(after).await["code"], "TOKEN_REVOKED");
    let refresh = post(&app, "/auth/refresh", json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!(refresh.status(), 401);
    assert_eq!(body(refresh).await["code"], "TOKEN_REVOKED");
}

#[tokio::test]
async fn password_change_checks_the_current_password_the_policy_and_history_and_ends_other_sessions() {
    let app = spawn_app().await;
    let here = signed_up(&app, "mallory-not").await;
    let elsewhere: Value = body(login(&app, "mallory-not", PASSWORD).await).await;
    let access = here["access_token"].as_str().unwrap();
    let change = |current: &str, new: &str| {
        app.http
            .post(app.url("/auth/password"))
            .bearer_auth(access)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    let wrong = change("wrong-Password-123456", "another-Strong-passphrase-77").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let weak = change(PASSWORD, "short").await.unwrap();
    assert_eq!(weak.status(), 422);
    assert_eq!(body(weak).await["code"], "PASSWORD_POLICY");
    let same = change(PASSWORD, PASSWORD).await.unwrap();
    assert_eq!(same.status(), 422, "the current password is in the history");

    let ok = change(PASSWORD, "another-Strong-passphrase-77").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(bearer_get(&app, "/auth/profile", access).await.status(), 200, "this session goes on");
    let other = bearer_get(&app, "/auth/profile", elsewhere["access_token"].as_str().unwrap()).await;
    assert_eq!(other.status(), 401, "the other session ended");
    let other_refresh = post(&app, "/auth/refresh", json!({"refresh_token": elsewhere["refresh_token"]})).await;
    assert_eq!(other_refresh.status(), 401);
    assert_eq!(login(&app, "mallory-not", PASSWORD).await.status(), 401);
    assert_eq!(login(&app, "mallory-not", "another-Strong-passphrase-77").await.status(), 200);

    let back = app
        .http
        .post(app.url("/auth/password"))
        .bearer_auth(access)
        .json(&json!({"current_password": "another-Strong-passphrase-77", "new_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 422, "one of the last 5 passwords");
}

#[tokio::test]
async fn sessions_are_listed_and_ended_by_their_user() {
    let app = spawn_app().await;
    let one = signed_up(&app, "niaj").await;
    let two: Value = body(login(&app, "niaj", PASSWORD).await).await;
    let access = one["access_token"].as_str().unwrap();
    let list = body(bearer_get(&app, "/auth/sessions", access).await).await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(sessions.iter().any(|s| s["session_id"] == one["session_id"] && s["current"] == true));

    let other = two["session_id"].as_str().unwrap();
    let ended = app.http.delete(app.url(&format!("/auth/sessions/{other}"))).bearer_auth(access).send().await.unwrap();
    assert_eq!(ended.status(), 204);
    assert_eq!(bearer_get(&app, "/auth/profile", two["access_token"].as_str().unwrap()).await.status(), 401);
    let again = app.http.delete(app.url(&format!("/auth/sessions/{other}"))).bearer_auth(access).send().await.unwrap();
    assert_eq!(again.status(), 404);
    let list = body(bearer_get(&app, "/auth/sessions", access).await).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn access_tokens_carry_the_claims_and_verify_against_the_published_jwks() {
    let app = spawn_app().await;
    let tokens = signed_up(&app, "olivia").await;
    let token = tokens["access_token"].as_str().unwrap();
    let mut parts = token.split('.');
    let decode = |p: &str| -> Value {
        use base64::Engine as _;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    let header = decode(parts.next().unwrap());
    let claims = decode(parts.next().unwrap());
    assert_eq!(header["alg"], "EdDSA");
    for claim in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "scope"] {
        assert!(claims.get(claim).is_some(), "missing {claim}: {claims}");
    }
    assert_eq!(claims["sub"], tokens["user_id"]);
    assert_eq!(claims["sid"], tokens["session_id"]);

    let jwks = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
    let jwks = body(jwks).await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is published");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert!(key.get("d").is_none(), "never the private part");
}

#[tokio::test]
async fn auth_events_are_audited_without_secrets() {
    let app = spawn_app().await;
    signed_up(&app, "peggy").await;
    login(&app, "peggy", "wrong-Password-123456").await;
    let records = app.palisade.durable_store().audit_records(0, 1000).await.unwrap();
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    for kind in ["user.registered", "auth.login", "auth.login_failed"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let failed = records.iter().find(|r| r.kind == "auth.login_failed").unwrap();
    assert!(failed.details.contains("wrong password"), "the real reason is kept: {}", failed.details);
    assert_eq!(failed.ip.as_deref(), Some("127.0.0.1"));
    assert!(failed.request_id.is_some());
    for record in &records {
        let text = format!("{record:?}");
        assert!(!text.contains(PASSWORD) && !text.contains("wrong-Password"), "a password reached the audit chain");
    }
    assert!(app.palisade.audit().verify().await.unwrap().broken.is_none());
}

async fn insert_user(app: &TestApp, username: &str, hash: String, changed_at: time::OffsetDateTime) {
    use palisade_core::user::{User, UserId, UserInsert, Username};
    let user = User {
        id: UserId::generate(),
        username: Username::parse(username).unwrap(),
        email: None,
        password_hash: hash,
        password_changed_at: changed_at,
        created_at: changed_at,
        locked: false,
        admin: false,
    };
    assert_eq!(app.palisade.durable_store().insert_user(&user).await.unwrap(), UserInsert::Inserted);
}

#[tokio::test]
async fn an_expired_password_only_allows_changing_it() {
    let app = spawn_app_with(&[("PALISADE_PASSWORD_MAX_AGE_DAYS", "90")]).await;
    let hasher =
        palisade_core::password::PasswordHasher::new(palisade_core::password::Argon2Params::OWASP_MINIMUM).unwrap();
    let hash = hasher.hash(&secrecy::SecretString::from(PASSWORD)).unwrap();
    let long_ago = app.palisade.clock().now() - time::Duration::days(365);
    insert_user(&app, "quentin", hash, long_ago).await;

    let tokens = body(login(&app, "quentin", PASSWORD).await).await;
    assert_eq!(tokens["password_expired"], true, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let profile = bearer_get(&app, "/auth/profile", access).await;
    assert_eq!(profile.status(), 403);
    assert_eq!(body(profile).await["code"], "INSUFFICIENT_SCOPE");
    let changed = app
        .http
        .post(app.url("/auth/password"))
        .bearer_auth(access)
        .json(&json!({"current_password": PASSWORD, "new_password": "another-Strong-passphrase-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let fresh = body(login(&app, "quentin", "another-Strong-passphrase-77").await).await;
    assert!(fresh.get("password_expired").is_none(), "{fresh}");
    assert_eq!(bearer_get(&app, "/auth/profile", fresh["access_token"].as_str().unwrap()).await.status(), 200);
}

#[tokio::test]
async fn a_hash_with_old_parameters_is_replaced_at_login() {
    let app = spawn_app().await;
    let stronger = palisade_core::password::Argon2Params { memory_kib: 19_456, iterations: 3, parallelism: 1 };
    let old_hash = palisade_core::password::PasswordHasher::new(stronger)
        .unwrap()
        .hash(&secrecy::SecretString::from(PASSWORD))
        .unwrap();
    assert!(old_hash.contains("t=3"));
    insert_user(&app, "rupert", old_hash.clone(), app.palisade.clock().now()).await;
    assert_eq!(login(&app, "rupert", PASSWORD).await.status(), 200);
    let username = palisade_core::user::Username::parse("rupert").unwrap();
    let stored = app.palisade.durable_store().user_by_username(&username).await.unwrap().unwrap();
    assert_ne!(stored.password_hash, old_hash, "re-hashed with the configured parameters");
    assert!(stored.password_hash.contains("m=19456,t=2,p=1"), "{}", stored.password_hash);
    assert_eq!(login(&app, "rupert", PASSWORD).await.status(), 200, "and the new hash verifies");
}

#[tokio::test]
async fn a_burst_of_concurrent_guesses_gets_no_more_than_the_limit() {
    let app = spawn_app().await;
    signed_up(&app, "sybil").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (http, url) = (app.http.clone(), app.url("/auth/login"));
            tokio::spawn(async move {
                let body = json!({"username": "sybil", "password": "wrong-Password-123456"});
                http.post(url).json(&body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let statuses = futures_join(tasks.into_iter()).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 5, "only 5 guesses are checked, the rest refused unchecked: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 423).count(), 15, "{statuses:?}");
}

#[tokio::test]
async fn guesses_at_the_current_password_are_limited_like_logins() {
    let app = spawn_app().await;
    let tokens = signed_up(&app, "trent").await;
    let access = tokens["access_token"].as_str().unwrap();
    let change = |current: &'static str| {
        app.http
            .post(app.url("/auth/password"))
            .bearer_auth(access)
            .json(&json!({"current_password": current, "new_password": "another-Strong-passphrase-77"}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(change("wrong-Password-123456").await.unwrap().status(), 401);
    }
    assert_eq!(change(PASSWORD).await.unwrap().status(), 423, "locked even with the right password");
}
