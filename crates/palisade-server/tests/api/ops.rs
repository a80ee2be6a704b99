//! The operational surface: health, readiness, metrics, OpenAPI, docs, problems and request ids.

use std::sync::Arc;

use secrecy::ExposeSecret as _;

use crate::{TestApp, spawn_app};

async fn problem(app: &TestApp, response: reqwest::Response) -> serde_json::Value {
    let _ = app;
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], request_id.as_str(), "the problem quotes the request id");
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(body.get(field).is_some(), "problem lacks {field}: {body}");
    }
    body
}

#[tokio::test]
async fn health_answers_healthy_with_a_request_id() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID request id: {id}");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"status": "HEALTHY"}));
}

#[tokio::test]
async fn ready_reports_every_component_healthy_on_sqlite() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["overall"], "HEALTHY");
    for component in ["database", "cache", "encryption", "audit", "signing_keys"] {
        assert_eq!(body["components"][component], "HEALTHY", "{body}");
    }
    // The typed client reads the same answer.
    let answer = palisade_client::Client::new(&app.address).unwrap().ready().await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.ready.components.len(), 5);
}

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/no/such/route")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body = problem(&app, response).await;
    assert_eq!(body["code"], "NOT_FOUND");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn wrong_methods_are_405_problems_with_allow() {
    let app = spawn_app().await;
    let response = app.http.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers()["allow"].to_str().unwrap().contains("GET"));
    assert_eq!(problem(&app, response).await["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413_problems() {
    let app = spawn_app().await;
    let body = vec![b'a'; 1024 * 1024 + 1];
    let response =
        app.http.post(app.url("/health")).header("content-type", "application/json").body(body).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(problem(&app, response).await["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_plain_caller_request_id_is_echoed_and_a_hostile_one_replaced() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/health")).header("x-request-id", "trace-42.a_b").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42.a_b");
    let hostile = "x\tinjected=1 level=error";
    let response = app.http.get(app.url("/health")).header("x-request-id", hostile).send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, hostile);
    assert!(uuid::Uuid::parse_str(id).is_ok());
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.http.get(app.url("/health")).send().await.unwrap();
    }
    app.http.get(app.url("/nowhere/123")).send().await.unwrap();
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let health_line = text
        .lines()
        .find(|l| {
            l.starts_with("palisade_http_requests_total")
                && l.contains("route=\"/health\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no /health counter in:\n{text}"));
    let count: f64 = health_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{health_line}");
    assert!(text.contains("palisade_http_request_duration_seconds_bucket"), "a latency histogram");
    assert!(!text.contains("/nowhere/123"), "raw paths must not become labels");
    assert!(text.contains("route=\"unmatched\""));
}

#[tokio::test]
async fn openapi_describes_the_routes_and_docs_render_it_offline() {
    let app = spawn_app().await;
    let spec: serde_json::Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/.well-known/jwks.json",
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/profile",
        "/auth/password",
        "/auth/sessions",
        "/auth/sessions/{id}",
        "/auth/api-keys",
        "/auth/api-keys/{id}",
        "/api-keys/validate",
        "/tokens/validate",
        "/admin/users",
        "/admin/users/{id}/lock",
        "/admin/users/{id}/unlock",
        "/admin/api-keys",
        "/admin/api-keys/{id}",
        "/admin/tokens/revoke",
        "/auth/mfa",
        "/auth/mfa/verify",
        "/auth/mfa/totp/setup",
        "/auth/mfa/totp/confirm",
        "/auth/mfa/sms/setup",
        "/auth/mfa/sms/confirm",
        "/auth/mfa/sms/send",
        "/auth/mfa/email/setup",
        "/auth/mfa/email/confirm",
        "/auth/mfa/email/send",
        "/auth/mfa/backup-codes",
        "/auth/mfa/{method}",
        "/admin/users/{id}/mfa/reset",
        "/auth/webauthn/register/start",
        "/auth/webauthn/register/finish",
        "/auth/webauthn/login/start",
        "/auth/webauthn/login/finish",
        "/auth/webauthn/credentials",
        "/auth/webauthn/credentials/{id}",
        "/passkeys",
        "/passkeys.js",
        "/passkeys.css",
        "/auth/login/approval",
        "/auth/devices",
        "/auth/devices/{id}",
        "/auth/devices/{id}/approve",
        "/auth/devices/approve-link",
        "/admin/users/{id}/risk",
        "/devices/approve",
        "/devices/approve.js",
        "/crypto/encrypt",
        "/crypto/decrypt",
        "/crypto/fields",
        "/crypto/rewrap",
        "/crypto/datakey",
        "/admin/keys",
        "/admin/keys/rotate",
        "/admin/keys/rotation",
        "/monitoring/events",
        "/monitoring/event-types",
        "/monitoring/incidents",
        "/monitoring/incidents/{id}",
        "/admin/keys/{family}",
        "/admin/clients",
        "/admin/clients/{id}",
        "/oauth2/token",
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/oauth2/userinfo",
        "/.well-known/openid-configuration",
        "/oauth2/authorize",
        "/oauth2/authorize/login",
        "/oauth2/authorize/mfa",
        "/oauth2/authorize/approval",
        "/oauth2/authorize/consent",
        "/oauth2/logout",
        "/oauth2/pages.css",
        "/oauth2/form_post.js",
        "/auth/authorizations",
        "/auth/authorizations/{client_id}",
        "/compliance/consents",
        "/compliance/consents/{type}",
        "/compliance/export",
        "/compliance/check",
        "/compliance/retention",
        "/compliance/erasure",
        "/compliance/erasure/{id}",
        "/compliance/reports/{standard}",
        "/compliance/report.css",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    assert_eq!(spec["paths"].as_object().unwrap().len(), 101, "every route, and nothing that is not built");
    assert!(spec["components"]["securitySchemes"].get("bearer").is_some());
    assert!(spec["components"]["securitySchemes"].get("api_key").is_some());
    let page = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "the Swagger UI page");
    assert!(!html.contains("cdn"), "assets are vendored, not fetched from a CDN");
    let asset = app.http.get(app.url("/docs/swagger-ui-bundle.js")).send().await.unwrap();
    assert_eq!(asset.status(), 200);
}

#[tokio::test]
async fn the_start_is_audited_and_the_chain_verifies() {
    let app = spawn_app().await;
    // run_until_stopped appends system.started before serving; a request proves it is serving.
    app.http.get(app.url("/health")).send().await.unwrap();
    let report = app.palisade.audit().verify().await.unwrap();
    assert!(report.broken.is_none());
    assert!(report.verified >= 1);
}

#[tokio::test]
async fn graceful_shutdown_finishes_and_returns() {
    let mut app = spawn_app().await;
    app.http.get(app.url("/health")).send().await.unwrap();
    app.stop.take().unwrap().send(()).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), app.server).await.unwrap().unwrap();
    assert!(result.is_ok());
    assert!(reqwest::get(app.address.clone() + "/health").await.is_err(), "no longer listening");
}

/// A key provider standing in for an HSM that can be unplugged: the local provider's wrapping, and
/// `Unavailable` from every call while `down` — what the PKCS#11 provider answers once its token
/// stays unreachable after a reopen.
struct UnpluggableHsm {
    inner: palisade_core::crypto::LocalKeyProvider,
    down: std::sync::atomic::AtomicBool,
}

impl UnpluggableHsm {
    fn check(&self) -> Result<(), palisade_core::crypto::AeadError> {
        match self.down.load(std::sync::atomic::Ordering::SeqCst) {
            true => Err(palisade_core::crypto::AeadError::Unavailable),
            false => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl palisade_core::crypto::KeyProvider for UnpluggableHsm {
    fn id(&self) -> String {
        "test-hsm".into()
    }

    async fn wrap(
        &self,
        key_id: uuid::Uuid,
        material: &palisade_core::crypto::DataKeyMaterial,
    ) -> Result<Vec<u8>, palisade_core::crypto::AeadError> {
        self.check()?;
        self.inner.wrap(key_id, material).await
    }

    async fn unwrap(
        &self,
        key_id: uuid::Uuid,
        wrapped: &[u8],
    ) -> Result<palisade_core::crypto::DataKeyMaterial, palisade_core::crypto::AeadError> {
        self.check()?;
        self.inner.unwrap(key_id, wrapped).await
    }

    fn is_hardware(&self) -> bool {
        true
    }

    async fn health(&self) -> Result<(), palisade_core::crypto::AeadError> {
        self.check()
    }
}

#[tokio::test]
async fn an_hsm_that_goes_away_degrades_ready_refuses_new_keys_with_503_and_recovers_without_restart() {
    use palisade_core::crypto::KeyProvider as _;
    use std::sync::atomic::Ordering;
    let hsm = Arc::new(UnpluggableHsm {
        inner: palisade_core::crypto::LocalKeyProvider::new(&palisade_core::crypto::MasterKey::from_bytes([7; 32]))
            .unwrap(),
        down: false.into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config(dir.path(), &[]);
    let clock: Arc<dyn palisade_core::clock::Clock> = Arc::new(palisade_core::clock::SystemClock);
    let stores = palisade_store::connect(config.database_url.expose_secret(), None, clock.clone(), 4).await.unwrap();
    stores.migrate().await.unwrap();
    // The policies as start-up builds them when `hsm_module` is set: TOP_SECRET requires the HSM.
    let mut settings = palisade_server::app::settings(&config).unwrap();
    settings.encryption = palisade_core::crypto::EncryptionPolicies::defaults(true);
    assert!(settings.encryption.of(palisade_core::crypto::DataClassification::TopSecret).hsm_required);
    let palisade = palisade_core::Palisade::builder()
        .durable_store(stores.durable)
        .hot_store(stores.hot)
        .clock(clock)
        .key_provider(hsm.clone())
        .settings(settings)
        .build()
        .await
        .unwrap();
    assert!(hsm.is_hardware());
    let app = crate::serve(palisade_server::Application::with_palisade(config, Arc::new(palisade)).await.unwrap(), dir);
    let ready = || async {
        let response = app.http.get(app.url("/ready")).send().await.unwrap();
        (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
    };
    let (status, body) = ready().await;
    assert_eq!(
        (status, body["components"]["hsm"].as_str(), body["overall"].as_str()),
        (200, Some("HEALTHY"), Some("HEALTHY")),
        "{body}"
    );

    // With the master key in an HSM, TOP_SECRET needs it (the default policy) and is served.
    let root = crate::register_user(&app, "root").await;
    crate::make_admin(&app, &root).await;
    let admin = crate::login_user(&app, "root").await["access_token"].as_str().unwrap().to_owned();
    let body = serde_json::json!({"name": "app", "scopes": ["crypto:encrypt", "crypto:decrypt"]});
    let created: serde_json::Value = app
        .http
        .post(app.url("/auth/api-keys"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let encrypt = |class: &'static str| {
        let body = serde_json::json!({"plaintext": "x", "context": {"data_classification": class, "purpose": "test"}});
        app.http.post(app.url("/crypto/encrypt")).header("x-api-key", key.clone()).json(&body).send()
    };
    assert_eq!(encrypt("TOP_SECRET").await.unwrap().status(), 200);

    hsm.down.store(true, Ordering::SeqCst);
    let (status, body) = ready().await;
    assert_eq!(
        (status, body["components"]["hsm"].as_str(), body["overall"].as_str()),
        (200, Some("DEGRADED"), Some("DEGRADED")),
        "{body}"
    );
    // A key already unwrapped keeps working; a class whose key must be made now cannot be, and says so.
    assert_eq!(encrypt("TOP_SECRET").await.unwrap().status(), 200);
    let refused = encrypt("CONFIDENTIAL").await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["code"], "SERVICE_UNAVAILABLE");

    // Plugged back in: no restart needed.
    hsm.down.store(false, Ordering::SeqCst);
    let (status, body) = ready().await;
    assert_eq!(
        (status, body["components"]["hsm"].as_str(), body["overall"].as_str()),
        (200, Some("HEALTHY"), Some("HEALTHY")),
        "{body}"
    );
    assert_eq!(encrypt("CONFIDENTIAL").await.unwrap().status(), 200);
}
