//! OAuth client authentication (`OAuthClients::authenticate`) on a real server's store: secrets by
//! HTTP Basic and by form only for the method registered, public clients, and `private_key_jwt`
//! assertions built here by hand (a JWS signed with aws-lc-rs's Ed25519, not by the code under test)
//! — audience, issuer/subject, lifetime, algorithm, kid, single use, all checked against a manual
//! clock.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_core::audit::RequestMeta;
use palisade_core::clock::{Clock, ManualClock};
use palisade_core::oauth::{ClientAuthError, ClientKind, ClientRegistration, PresentedClient};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use crate::{TestApp, spawn_app_with_clock};

const TOKEN_ENDPOINT: &str = "http://127.0.0.1:8080/oauth2/token";

fn registration(method: &str, jwks: Option<Value>) -> ClientRegistration {
    ClientRegistration {
        name: format!("client {method}"),
        kind: if method == "none" { ClientKind::Public } else { ClientKind::Confidential },
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![],
        scopes: vec![],
        auth_method: Some(method.into()),
        jwks,
        jwks_uri: None,
    }
}

async fn register(app: &TestApp, method: &str, jwks: Option<Value>) -> (String, Option<SecretString>) {
    let created = app
        .palisade
        .oauth_clients()
        .register_as(None, "test", &registration(method, jwks), &RequestMeta::default())
        .await
        .unwrap();
    (created.client.client_id, created.secret)
}

async fn auth(app: &TestApp, presented: &PresentedClient) -> Result<String, String> {
    match app.palisade.oauth_clients().authenticate(presented, &[TOKEN_ENDPOINT]).await {
        Ok(client) => Ok(client.client_id),
        Err(ClientAuthError::Invalid(reason)) => Err(reason.to_owned()),
        Err(e) => panic!("not a refusal: {e}"),
    }
}

fn basic(id: &str, secret: &str) -> PresentedClient {
    PresentedClient::Basic { client_id: id.into(), secret: SecretString::from(secret) }
}

fn post(id: &str, secret: &str) -> PresentedClient {
    PresentedClient::Post { client_id: id.into(), secret: SecretString::from(secret) }
}

#[tokio::test]
async fn secrets_authenticate_only_by_the_method_registered() {
    let app = spawn_app_with_clock(&[], Arc::new(ManualClock::fixed())).await;
    let (basic_id, basic_secret) = register(&app, "client_secret_basic", None).await;
    let basic_secret = basic_secret.unwrap();
    let (post_id, post_secret) = register(&app, "client_secret_post", None).await;
    let post_secret = post_secret.unwrap();

    assert_eq!(auth(&app, &basic(&basic_id, basic_secret.expose_secret())).await, Ok(basic_id.clone()));
    assert_eq!(auth(&app, &post(&post_id, post_secret.expose_secret())).await, Ok(post_id.clone()));
    // The right secret by the other method is refused.
    let other = auth(&app, &post(&basic_id, basic_secret.expose_secret())).await.unwrap_err();
    assert!(other.contains("another authentication method"), "{other}");
    assert!(auth(&app, &basic(&post_id, post_secret.expose_secret())).await.is_err());
    // A wrong secret, another client's secret, an unknown client.
    assert_eq!(auth(&app, &basic(&basic_id, "wrong")).await, Err("wrong client secret".into()));
    assert_eq!(auth(&app, &basic(&basic_id, post_secret.expose_secret())).await, Err("wrong client secret".into()));
    assert_eq!(auth(&app, &basic("nobody", "x")).await, Err("unknown client".into()));
    // A confidential client cannot pass as public; a public one can.
    assert!(auth(&app, &PresentedClient::Public { client_id: basic_id.clone() }).await.is_err());
    let (public_id, secret) = register(&app, "none", None).await;
    assert!(secret.is_none());
    assert_eq!(auth(&app, &PresentedClient::Public { client_id: public_id.clone() }).await, Ok(public_id));
}

/// An Ed25519 key pair: its public JWK (with `kid`) and a signer of compact JWS.
pub(crate) struct Signer {
    pair: aws_lc_rs::signature::Ed25519KeyPair,
    kid: String,
}

impl Signer {
    pub(crate) fn new(kid: &str) -> Self {
        let pkcs8 =
            aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self { pair, kid: kid.into() }
    }

    pub(crate) fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair as _;
        json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "use": "sig",
               "x": URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref())})
    }

    fn sign(&self, header: Value, claims: Value) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    pub(crate) fn assertion(&self, claims: Value) -> String {
        self.sign(json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid}), claims)
    }
}

#[tokio::test]
async fn private_key_jwt_assertions_are_verified_and_used_once() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_app_with_clock(&[], clock.clone()).await;
    let key = Signer::new("k1");
    let stranger = Signer::new("k1");
    let (id, secret) = register(&app, "private_key_jwt", Some(json!({"keys": [key.jwk()]}))).await;
    assert!(secret.is_none(), "no secret for private_key_jwt");
    let now = clock.now().unix_timestamp();
    let claims =
        |jti: &str| json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 120, "iat": now, "jti": jti});
    let assert_with = |assertion: String, client_id: Option<&str>| PresentedClient::Assertion {
        client_id: client_id.map(String::from),
        assertion,
    };

    let good = key.assertion(claims("one"));
    assert_eq!(auth(&app, &assert_with(good.clone(), Some(&id))).await, Ok(id.clone()));
    assert_eq!(auth(&app, &assert_with(good, None)).await, Err("the client assertion was used before".into()));
    assert_eq!(
        auth(&app, &assert_with(key.assertion(claims("two")), None)).await,
        Ok(id.clone()),
        "client_id may be left out"
    );

    let refused = |claims: Value| key.assertion(claims);
    let mut cases: Vec<(&str, String)> = vec![
        ("signed by another key", stranger.assertion(claims("three"))),
        (
            "another audience",
            refused(json!({"iss": id, "sub": id, "aud": "https://elsewhere/token", "exp": now + 120, "jti": "a"})),
        ),
        (
            "another issuer",
            refused(json!({"iss": "someone", "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 120, "jti": "b"})),
        ),
        ("expired", refused(json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now - 120, "jti": "c"}))),
        (
            "valid for three hours",
            refused(json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 3 * 3600, "jti": "d"})),
        ),
        (
            "issued in the future",
            refused(
                json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 120, "iat": now + 600, "jti": "e"}),
            ),
        ),
        ("no jti", refused(json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 120}))),
        ("an unknown kid", key.sign(json!({"alg": "EdDSA", "kid": "k9"}), claims("f"))),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(claims("g").to_string())
            ),
        ),
        ("HS256 with the public key as secret", key.sign(json!({"alg": "HS256", "kid": "k1"}), claims("h"))),
        ("not a JWT", "garbage".into()),
    ];
    // A tampered payload under a good signature.
    let good = key.assertion(claims("i"));
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    parts[1] = URL_SAFE_NO_PAD
        .encode(json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 120, "jti": "j2"}).to_string());
    cases.push(("a tampered payload", parts.join(".")));
    for (what, assertion) in cases {
        assert!(auth(&app, &assert_with(assertion, None)).await.is_err(), "{what} was accepted");
    }
    // The form's client_id must be the assertion's subject.
    let mismatch = auth(&app, &assert_with(key.assertion(claims("k")), Some("another-client"))).await;
    assert_eq!(mismatch, Err("client_id is not the assertion's sub".into()));

    // Once the assertion's time is past, its replay marker may go; the assertion is expired anyway.
    let late = key.assertion(claims("late"));
    clock.advance(time::Duration::minutes(5));
    assert_eq!(auth(&app, &assert_with(late, None)).await, Err("the client assertion has expired".into()));

    // A secret client cannot use an assertion, and an assertion client cannot use a secret.
    let (secret_id, secret) = register(&app, "client_secret_basic", None).await;
    let now = clock.now().unix_timestamp();
    let theirs =
        key.assertion(json!({"iss": secret_id, "sub": secret_id, "aud": TOKEN_ENDPOINT, "exp": now + 60, "jti": "x"}));
    assert!(auth(&app, &assert_with(theirs, None)).await.unwrap_err().contains("another authentication method"));
    assert!(auth(&app, &basic(&id, secret.unwrap().expose_secret())).await.is_err());
}
