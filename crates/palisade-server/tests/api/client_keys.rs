//! `private_key_jwt` clients that publish their keys at a `jwks_uri`: a real server fetches them from
//! a key server on loopback (axum, counting its requests), caches them, fetches again when a client
//! rotates to a new `kid`, and refuses what it must not fetch — a private address unless allowed, a
//! redirect, a document too large, a 404, a set holding a private key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use palisade_core::audit::RequestMeta;
use palisade_core::clock::{Clock, ManualClock};
use palisade_core::oauth::{ClientAuthError, ClientKind, ClientRegistration, PresentedClient};
use serde_json::{Value, json};

use crate::client_auth::Signer;
use crate::{TestApp, spawn_app_with_clock};

/// The issuer of the test configuration and its token endpoint (an assertion's audience).
const TOKEN_ENDPOINT: &str = "http://127.0.0.1:8080/oauth2/token";

/// A client's key server: the document at `/jwks`, and the requests it has answered there.
#[derive(Clone)]
struct KeyServer {
    document: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    base: String,
}

impl KeyServer {
    async fn start(document: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = Self { document: Arc::new(Mutex::new(document)), hits: Arc::default(), base };
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/moved", get(|| async { Redirect::temporary("/jwks") }))
            .route("/huge", get(|| async { format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(100 * 1024)) }))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        server
    }

    fn uri(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn publish(&self, document: Value) {
        *self.document.lock().unwrap() = document;
    }
}

async fn jwks(State(server): State<KeyServer>) -> Response {
    server.hits.fetch_add(1, Ordering::SeqCst);
    let document = server.document.lock().unwrap().clone();
    ([("content-type", "application/jwk-set+json")], document.to_string()).into_response()
}

async fn register(app: &TestApp, jwks_uri: &str) -> String {
    let registration = ClientRegistration {
        name: "keys elsewhere".into(),
        kind: ClientKind::Confidential,
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        scopes: vec!["orders:read".into()],
        auth_method: Some("private_key_jwt".into()),
        jwks: None,
        jwks_uri: Some(jwks_uri.into()),
    };
    let created =
        app.palisade.oauth_clients().register_as(None, "test", &registration, &RequestMeta::default()).await.unwrap();
    created.client.client_id
}

/// Authenticates `id` with an assertion signed by `key`; the refusal's reason if refused.
async fn auth(app: &TestApp, key: &Signer, id: &str, jti: &str) -> Result<(), String> {
    let now = app.palisade.clock().now().unix_timestamp();
    let assertion = key.assertion(json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 60, "jti": jti}));
    let presented = PresentedClient::Assertion { client_id: Some(id.into()), assertion };
    match app.palisade.oauth_clients().authenticate(&presented, &[TOKEN_ENDPOINT]).await {
        Ok(client) => {
            assert_eq!(client.client_id, id);
            Ok(())
        }
        Err(ClientAuthError::Invalid(reason)) => Err(reason.to_owned()),
        Err(e) => panic!("not a refusal: {e}"),
    }
}

const ALLOW_PRIVATE: (&str, &str) = ("PALISADE_OAUTH2_ALLOW_PRIVATE_JWKS_URI", "true");

#[tokio::test]
async fn keys_are_fetched_cached_and_refetched_when_the_client_rotates() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_app_with_clock(&[ALLOW_PRIVATE], clock.clone()).await;
    let (old, new) = (Signer::new("2026-01"), Signer::new("2026-02"));
    let keys = KeyServer::start(json!({"keys": [old.jwk()]})).await;
    let id = register(&app, &keys.uri("/jwks")).await;

    for jti in ["a", "b", "c"] {
        assert_eq!(auth(&app, &old, &id, jti).await, Ok(()));
    }
    assert_eq!(keys.hits(), 1, "the set is fetched once and cached");

    // The client rotates: the new key alone is published. An assertion under the new kid fetches again.
    keys.publish(json!({"keys": [new.jwk()]}));
    clock.advance(time::Duration::seconds(11));
    assert_eq!(auth(&app, &new, &id, "d").await, Ok(()));
    assert_eq!(keys.hits(), 2);
    assert_eq!(
        auth(&app, &old, &id, "e").await,
        Err("no key of the client matches the assertion's kid".into()),
        "the withdrawn key no longer verifies"
    );
    // Made-up kids right after a fetch fetch nothing (no amplification against the key server).
    for jti in ["f", "g", "h"] {
        assert!(auth(&app, &Signer::new(&format!("forged-{jti}")), &id, jti).await.is_err());
    }
    assert_eq!(keys.hits(), 2);

    // After five minutes the set is fetched again.
    clock.advance(time::Duration::minutes(5));
    assert_eq!(auth(&app, &new, &id, "i").await, Ok(()));
    assert_eq!(keys.hits(), 3);

    // The whole token endpoint, over HTTP: a client-credentials token for the jwks_uri client.
    let now = clock.now().unix_timestamp();
    let assertion = new.assertion(json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 60, "jti": "j"}));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
    ];
    let response = app.http.post(app.url("/oauth2/token")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "orders:read");
}

#[tokio::test]
async fn a_loopback_jwks_uri_is_not_fetched_unless_private_addresses_are_allowed() {
    let app = spawn_app_with_clock(&[], Arc::new(ManualClock::fixed())).await;
    let key = Signer::new("k1");
    let keys = KeyServer::start(json!({"keys": [key.jwk()]})).await;
    let id = register(&app, &keys.uri("/jwks")).await;
    assert_eq!(
        auth(&app, &key, &id, "a").await,
        Err("the client's jwks_uri points at an address Palisade does not fetch".into())
    );
    assert_eq!(keys.hits(), 0, "nothing reached the loopback server");

    // The refusal is audited with its reason, as every client authentication failure is.
    let now = app.palisade.clock().now().unix_timestamp();
    let assertion = key.assertion(json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 60, "jti": "b"}));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
    ];
    let response = app.http.post(app.url("/oauth2/token")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    assert!(
        records.iter().any(|r| r.outcome == "failure" && r.details.contains("does not fetch")),
        "no audit record names the reason: {:?}",
        records.iter().map(|r| (&r.kind, &r.outcome, &r.details)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn redirects_large_missing_and_private_key_documents_are_refused() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_app_with_clock(&[ALLOW_PRIVATE], clock.clone()).await;
    let key = Signer::new("k1");
    let keys = KeyServer::start(json!({"keys": [key.jwk()]})).await;
    for path in ["/moved", "/huge", "/missing"] {
        let id = register(&app, &keys.uri(path)).await;
        assert_eq!(
            auth(&app, &key, &id, path).await,
            Err("the client's jwks_uri could not be fetched".into()),
            "{path}"
        );
    }
    assert_eq!(keys.hits(), 0, "the redirect was not followed");

    // A published private key is refused, not used.
    let mut private = key.jwk();
    private["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    keys.publish(json!({"keys": [private]}));
    let id = register(&app, &keys.uri("/jwks")).await;
    assert_eq!(
        auth(&app, &key, &id, "p").await,
        Err("the client's jwks_uri document is not a JWK Set of public keys".into())
    );
    // Fixed at the source, it works once the failure is no longer fresh.
    keys.publish(json!({"keys": [key.jwk()]}));
    clock.advance(time::Duration::seconds(11));
    assert_eq!(auth(&app, &key, &id, "q").await, Ok(()));
}
