//! API keys over HTTP: creation shown once, listing, revocation, validation with scopes, allow-lists
//! and rate limits counted exactly under concurrency.

use serde_json::{Value, json};

use crate::{TestApp, login_user, register_user, spawn_app};

async fn user_token(app: &TestApp, username: &str) -> String {
    register_user(app, username).await;
    login_user(app, username).await["access_token"].as_str().unwrap().to_owned()
}

async fn create_key(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http.post(app.url("/auth/api-keys")).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn key(app: &TestApp, token: &str, body: Value) -> Value {
    let r = create_key(app, token, body).await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn validate(app: &TestApp, caller: &str, body: Value) -> reqwest::Response {
    app.http.post(app.url("/api-keys/validate")).header("x-api-key", caller).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_secrets_and_validated() {
    let app = spawn_app().await;
    let token = user_token(&app, "kim").await;
    let created = key(
        &app,
        &token,
        json!({"name": "reporting", "scopes": ["read:data"], "rate_limit": {"requests_per_minute": 10}}),
    )
    .await;
    let api_key = created["api_key"].as_str().unwrap();
    assert!(api_key.starts_with("spa_"), "{api_key}");
    assert_eq!(created["scopes"], json!(["read:data"]));
    assert_eq!(created["rate_limits"]["requests_per_minute"], 10);

    let list: Value =
        app.http.get(app.url("/auth/api-keys")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(api_key.rsplit('_').next().unwrap()), "the secret never comes back");

    let validator = key(&app, &token, json!({"name": "gateway", "scopes": ["api-keys:validate"]})).await;
    let caller = validator["api_key"].as_str().unwrap();
    let r = validate(&app, caller, json!({"api_key": api_key, "required_scopes": ["read:data"]})).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(answer["scopes"], json!(["read:data"]));
    assert_eq!(answer["rate_limit_remaining"], 9);

    let r = validate(&app, caller, json!({"api_key": api_key, "required_scopes": ["write:data"]})).await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["error"], "INSUFFICIENT_SCOPE");

    let mut typo = api_key.to_owned();
    typo.replace_range(10..11, if &api_key[10..11] == "a" { "b" } else { "a" });
    let answer: Value = validate(&app, caller, json!({"api_key": typo})).await.json().await.unwrap();
    assert_eq!(answer["error"], "INVALID_TOKEN");
}

#[tokio::test]
async fn callers_need_a_valid_key_with_the_validate_scope() {
    let app = spawn_app().await;
    let token = user_token(&app, "lee").await;
    let plain = key(&app, &token, json!({"name": "plain", "scopes": ["read:data"]})).await;
    let no_header = app.http.post(app.url("/api-keys/validate")).json(&json!({"api_key": "x"})).send().await.unwrap();
    assert_eq!(no_header.status(), 401);
    let r = validate(&app, plain["api_key"].as_str().unwrap(), json!({"api_key": plain["api_key"]})).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "INSUFFICIENT_SCOPE");
}

#[tokio::test]
async fn a_key_outside_its_cidr_list_is_forbidden_and_a_revoked_key_is_refused() {
    let app = spawn_app().await;
    let token = user_token(&app, "max").await;
    let fenced = key(
        &app,
        &token,
        json!({"name": "fenced", "scopes": ["api-keys:validate"], "ip_whitelist": ["10.0.0.0/8", "2001:db8::/32"]}),
    )
    .await;
    let r = validate(&app, fenced["api_key"].as_str().unwrap(), json!({"api_key": fenced["api_key"]})).await;
    assert_eq!(r.status(), 403, "the test client is 127.0.0.1, outside the list");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "FORBIDDEN_IP");

    let validator = key(&app, &token, json!({"name": "v", "scopes": ["api-keys:validate"]})).await;
    let caller = validator["api_key"].as_str().unwrap();
    for (ip, valid) in [("10.1.2.3", true), ("2001:db8::7", true), ("192.168.1.1", false)] {
        let answer: Value =
            validate(&app, caller, json!({"api_key": fenced["api_key"], "ip_address": ip})).await.json().await.unwrap();
        assert_eq!(answer["valid"], valid, "{ip}: {answer}");
    }

    let id = fenced["api_key_id"].as_str().unwrap();
    let revoked = app.http.delete(app.url(&format!("/auth/api-keys/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(revoked.status(), 204);
    let again = app.http.delete(app.url(&format!("/auth/api-keys/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.status(), 404);
    let answer: Value = validate(&app, caller, json!({"api_key": fenced["api_key"], "ip_address": "10.1.2.3"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["error"], "INVALID_TOKEN");

    let bad = create_key(&app, &token, json!({"name": "x", "scopes": ["read"], "ip_whitelist": ["not-a-net"]})).await;
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.json::<Value>().await.unwrap()["errors"][0]["rule"], "ip_whitelist");
    let admin = create_key(&app, &token, json!({"name": "x", "scopes": ["admin"]})).await;
    assert_eq!(admin.status(), 422, "a user cannot grant admin");
}

#[tokio::test]
async fn a_thousand_concurrent_checks_against_a_limit_of_100_allow_exactly_100() {
    let app = spawn_app().await;
    let token = user_token(&app, "nina").await;
    let limited = key(&app, &token, json!({"name": "limited", "scopes": ["read:data"], "rate_limit": {"requests_per_minute": 100, "requests_per_hour": 1000}})).await;
    let validator = key(&app, &token, json!({"name": "v", "scopes": ["api-keys:validate"]})).await;
    let caller = validator["api_key"].as_str().unwrap().to_owned();
    let limited_key = limited["api_key"].as_str().unwrap().to_owned();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (http, url, caller, key, permits) = (
                app.http.clone(),
                app.url("/api-keys/validate"),
                caller.clone(),
                limited_key.clone(),
                semaphore.clone(),
            );
            tokio::spawn(async move {
                let _permit = permits.acquire().await.unwrap();
                let r = http.post(url).header("x-api-key", caller).json(&json!({"api_key": key})).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()["valid"] == true
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 100);
}

#[tokio::test]
async fn a_caller_over_its_own_limit_gets_429_with_retry_after() {
    let app = spawn_app().await;
    let token = user_token(&app, "omar").await;
    let caller = key(
        &app,
        &token,
        json!({"name": "v", "scopes": ["api-keys:validate"], "rate_limit": {"requests_per_minute": 2}}),
    )
    .await;
    let caller = caller["api_key"].as_str().unwrap();
    for remaining in ["1", "0"] {
        let r = validate(&app, caller, json!({"api_key": "spa_x"})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ratelimit-limit"], "2");
        assert_eq!(r.headers()["ratelimit-remaining"], remaining);
    }
    let r = validate(&app, caller, json!({"api_key": "spa_x"})).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(r.headers()["ratelimit-limit"], "2");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert_eq!(r.headers()["ratelimit-reset"].to_str().unwrap(), retry.to_string());
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn api_keys_authenticate_on_protected_routes_with_their_scopes() {
    let app = spawn_app().await;
    let token = user_token(&app, "pia").await;
    let profile_key = key(&app, &token, json!({"name": "p", "scopes": ["user"]})).await;
    let other_key = key(&app, &token, json!({"name": "o", "scopes": ["read:data"]})).await;
    let get =
        |k: &Value| app.http.get(app.url("/auth/profile")).header("x-api-key", k["api_key"].as_str().unwrap()).send();
    let r = get(&profile_key).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["username"], "pia");
    let r = get(&other_key).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "INSUFFICIENT_SCOPE");
    // Logging out or changing a password needs a login session, never an API key.
    let r = app
        .http
        .post(app.url("/auth/logout"))
        .header("x-api-key", profile_key["api_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let id = profile_key["api_key_id"].as_str().unwrap();
    app.http.delete(app.url(&format!("/auth/api-keys/{id}"))).bearer_auth(&token).send().await.unwrap();
    let r = get(&profile_key).await.unwrap();
    assert_eq!(r.status(), 401, "a revoked key is refused at once on this instance");
}

#[tokio::test]
async fn tokens_are_validated_for_other_services() {
    let app = spawn_app().await;
    let token = user_token(&app, "quinn").await;
    let checker = key(&app, &token, json!({"name": "gw", "scopes": ["tokens:validate"]})).await;
    let caller = checker["api_key"].as_str().unwrap();
    let check = |t: &str| {
        app.http.post(app.url("/tokens/validate")).header("x-api-key", caller).json(&json!({"token": t})).send()
    };
    let answer: Value = check(&token).await.unwrap().json().await.unwrap();
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(answer["scopes"], json!(["user"]));
    assert!(answer["expires_at"].as_str().unwrap().contains('T'));
    let answer: Value = check("not.a.token").await.unwrap().json().await.unwrap();
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["error"], "INVALID_TOKEN");
    assert_eq!(app.http.post(app.url("/auth/logout")).bearer_auth(&token).send().await.unwrap().status(), 204);
    let answer: Value = check(&token).await.unwrap().json().await.unwrap();
    assert_eq!(answer["error"], "TOKEN_REVOKED");

    let second = user_token(&app, "quinn2").await;
    let wrong = key(&app, &second, json!({"name": "x", "scopes": ["api-keys:validate"]})).await;
    let r = app
        .http
        .post(app.url("/tokens/validate"))
        .header("x-api-key", wrong["api_key"].as_str().unwrap())
        .json(&json!({"token": second}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = spawn_app().await;
    let token = user_token(&app, "ruth").await;
    let short = key(&app, &token, json!({"name": "short", "scopes": ["user"], "expires_in": 1})).await;
    assert!(short["expires_at"].is_string());
    let get = || app.http.get(app.url("/auth/profile")).header("x-api-key", short["api_key"].as_str().unwrap()).send();
    assert_eq!(get().await.unwrap().status(), 200);
    // Past its expiry (and past the 1 s record cache), the key is refused like an unknown one.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let refused = get().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "INVALID_TOKEN");
}
