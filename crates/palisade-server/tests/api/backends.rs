//! The same flows on PostgreSQL + Redis, and two instances sharing them: what one instance does,
//! the other sees.

use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::{TestApp, spawn_app_with};

const PASSWORD: &str = "correct-Horse-battery-9-staple";

/// A fresh PostgreSQL database, migrated, dropped by [`Database::drop_now`].
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("PALISADE_TEST_DATABASE_URL") else {
            assert!(std::env::var("CI").is_err(), "PALISADE_TEST_DATABASE_URL is required on CI");
            eprintln!("skipped: PALISADE_TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!("palisade_api_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
        admin.close().await.unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        palisade_store::migrate(&url).await.unwrap();
        Some(Self { admin_url, name, url })
    }

    async fn drop_now(self) {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
    }
}

fn redis_url() -> Option<String> {
    match std::env::var("PALISADE_TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(std::env::var("CI").is_err(), "PALISADE_TEST_REDIS_URL is required on CI");
            None
        }
    }
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.http.post(app.url(path)).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn two_instances_on_postgres_and_redis_share_accounts_sessions_and_revocations() {
    let (Some(db), Some(redis)) = (Database::create().await, redis_url()) else { return };
    let env = [
        ("PALISADE_DATABASE_URL", db.url.as_str()),
        ("PALISADE_REDIS_URL", redis.as_str()),
        ("PALISADE_SESSION_CACHE_MS", "0"),
    ];
    let a = spawn_app_with(&env).await;
    let b = spawn_app_with(&env).await;
    assert_eq!(a.palisade.durable_store().backend(), "postgres");
    assert_eq!(a.palisade.hot_store().backend(), "redis");

    let username = format!("pg-{}", uuid::Uuid::new_v4().simple());
    let created = post(&a, "/auth/register", json!({"username": username, "password": PASSWORD})).await;
    assert_eq!(created.status(), 201);
    let taken = post(&b, "/auth/register", json!({"username": username.to_uppercase(), "password": PASSWORD})).await;
    assert_eq!(taken.status(), 409, "the other instance sees the account");

    let tokens: Value =
        post(&b, "/auth/login", json!({"username": username, "password": PASSWORD})).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    // Both instances share the signing key: a token from B verifies on A.
    let profile = a.http.get(a.url("/auth/profile")).bearer_auth(access).send().await.unwrap();
    assert_eq!(profile.status(), 200);

    // Exactly one of 20 concurrent refreshes, spread over both instances, wins.
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (http, url, refresh) = (app.http.clone(), app.url("/auth/refresh"), refresh.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url).json(&json!({"refresh_token": refresh})).send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");

    // A logout on A ends the session for B at once (session cache off here).
    let second: Value =
        post(&a, "/auth/login", json!({"username": username, "password": PASSWORD})).await.json().await.unwrap();
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(b.http.get(b.url("/auth/profile")).bearer_auth(access).send().await.unwrap().status(), 200);
    assert_eq!(a.http.post(a.url("/auth/logout")).bearer_auth(access).send().await.unwrap().status(), 204);
    assert_eq!(b.http.get(b.url("/auth/profile")).bearer_auth(access).send().await.unwrap().status(), 401);

    // Lockout counts across instances.
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = post(app, "/auth/login", json!({"username": username, "password": "wrong-Password-123456"})).await;
        assert_eq!(r.status(), 401);
    }
    assert_eq!(post(&b, "/auth/login", json!({"username": username, "password": PASSWORD})).await.status(), 423);

    assert!(a.palisade.audit().verify().await.unwrap().broken.is_none(), "one chain, written by both");
    drop((a, b));
    db.drop_now().await;
}

#[tokio::test]
async fn a_thousand_checks_over_two_instances_on_postgres_and_redis_allow_exactly_100() {
    let (Some(db), Some(redis)) = (Database::create().await, redis_url()) else { return };
    let env = [("PALISADE_DATABASE_URL", db.url.as_str()), ("PALISADE_REDIS_URL", redis.as_str())];
    let a = spawn_app_with(&env).await;
    let b = spawn_app_with(&env).await;
    let username = format!("rl-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(post(&a, "/auth/register", json!({"username": username, "password": PASSWORD})).await.status(), 201);
    let tokens: Value =
        post(&a, "/auth/login", json!({"username": username, "password": PASSWORD})).await.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let make = |body: Value| {
        let (http, url) = (a.http.clone(), a.url("/auth/api-keys"));
        async move { http.post(url).bearer_auth(token).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let limited =
        make(json!({"name": "limited", "scopes": ["read"], "rate_limit": {"requests_per_minute": 100}})).await;
    let caller = make(json!({"name": "gateway", "scopes": ["api-keys:validate"]})).await;
    let (limited, caller) =
        (limited["api_key"].as_str().unwrap().to_owned(), caller["api_key"].as_str().unwrap().to_owned());
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (http, url, caller, key, permits) =
            (app.http.clone(), app.url("/api-keys/validate"), caller.clone(), limited.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let r = http.post(url).header("x-api-key", caller).json(&json!({"api_key": key})).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["valid"] == true
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 100, "exactly the limit, across both instances");
    drop((a, b));
    db.drop_now().await;
}
