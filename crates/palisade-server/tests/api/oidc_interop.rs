//! Interoperability with relying-party code we did not write, against a live server:
//!
//! - the `openidconnect` crate discovers the provider, builds the authorization request (PKCE S256,
//!   nonce), exchanges the code, verifies the ID token (signature from the JWKS, `iss`, `aud`,
//!   `nonce`, `at_hash`), calls UserInfo and refreshes — on the default EdDSA (Ed25519) server and on
//!   an ES256 one. The sign-in and consent pages are driven by [`Browser`], as a user would.
//! - Python's authlib (`tests/interop/authlib_rp.py`) does the same as a relying party, then the
//!   client-credentials grant with `client_secret_post` and with `private_key_jwt` (an Ed25519 key
//!   generated here, whose public JWK is registered for the client).

use std::future::Future;
use std::pin::Pin;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse as _,
};
use palisade_core::audit::RequestMeta;
use palisade_core::oauth::{ClientKind, ClientRegistration};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::oauth_flow::{Browser, REDIRECT, oidc_app, register_client};
use crate::{PASSWORD, TestApp, register_user};

/// openidconnect's asynchronous HTTP client over the workspace's reqwest 0.13 (the crate's own
/// `reqwest` feature is reqwest 0.12: a second HTTP stack to build). It follows no redirect, as the
/// crate asks of the clients it is given.
struct Http(reqwest::Client);

impl Http {
    fn new() -> Self {
        Self(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap())
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, reqwest::Error>> + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.execute(reqwest::Request::try_from(request)?).await?;
            let (status, headers) = (response.status(), response.headers().clone());
            let mut answer = HttpResponse::new(response.bytes().await?.to_vec());
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok(answer)
        })
    }
}

/// The whole code flow, as openidconnect's relying party, against a server with `extra` settings
/// whose ID tokens are signed with `algorithm`.
async fn openidconnect_code_flow(extra: &[(&str, &str)], algorithm: CoreJwsSigningAlgorithm) {
    let app = oidc_app(extra).await;
    let registered = register_client(
        &app,
        ClientKind::Confidential,
        &["authorization_code", "refresh_token"],
        &["openid", "profile", "email"],
    )
    .await;
    let user_id = register_user(&app, "alice").await;
    let http = Http::new();

    // Discovery: the document and its JWKS, with the issuer checked against the one asked for.
    let issuer = IssuerUrl::new(app.address.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http).await.unwrap();
    assert_eq!(metadata.id_token_signing_alg_values_supported(), &vec![algorithm.clone()]);
    assert!(!metadata.jwks().keys().is_empty());
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.id.clone()),
        Some(ClientSecret::new(registered.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    // The authorization request, built by the library; the user signs in and allows.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new();
    let page = browser.get(url.as_str()).await;
    let consent = browser.sign_in(&app, &page, "alice").await;
    let back = browser.allow(&app, &consent).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let params = back.redirect_params();
    assert_eq!(&params["state"], state.secret());
    assert_eq!(params["iss"], app.address);

    // The exchange (client_secret_basic, the PKCE verifier), and the ID token verified by the library:
    // signature with the JWKS key of its kid, alg as discovered, iss, aud, exp, nonce.
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let scopes: Vec<&str> = tokens.scopes().unwrap().iter().map(|s| s.as_str()).collect();
    assert_eq!(scopes, ["openid", "profile"]);
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).unwrap();
    assert_eq!(id_token.signing_alg().unwrap(), &algorithm);
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.issuer().as_str(), app.address);
    assert_eq!(claims.audiences().iter().map(|a| a.as_str()).collect::<Vec<_>>(), [registered.id.as_str()]);
    assert_eq!(claims.authorized_party().map(|p| p.as_str()), Some(registered.id.as_str()));
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("urn:palisade:acr:pwd"));
    assert_eq!(claims.auth_method_refs().unwrap().iter().map(|a| a.as_str()).collect::<Vec<_>>(), ["pwd"]);
    let auth_time = claims.auth_time().expect("auth_time");
    // at_hash, computed by the library with the hash of the ID token's algorithm and key.
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);
    // A nonce other than the one sent is refused.
    assert!(id_token.claims(&id_verifier, &Nonce::new("another".into())).is_err());

    // UserInfo, for the subject of the ID token (the library checks that they match).
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert!(info.email().is_none(), "no email scope was asked for");

    // Refresh: a rotated refresh token, a new access token that UserInfo takes, and a new ID token
    // the library verifies (same subject and auth_time; no nonce, which the library must accept).
    let first_refresh = tokens.refresh_token().expect("a refresh token");
    let refreshed = client.exchange_refresh_token(first_refresh).unwrap().request_async(&http).await.unwrap();
    let second_refresh = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    let new_id = refreshed.id_token().expect("a new ID token");
    let new_claims = new_id.claims(&id_verifier, |nonce: Option<&Nonce>| match nonce {
        None => Ok(()),
        Some(_) => Err("a refreshed ID token carries no nonce".to_owned()),
    });
    let new_claims = new_claims.unwrap();
    assert_eq!(new_claims.subject(), claims.subject());
    assert_eq!(new_claims.auth_time(), Some(auth_time));
    let info: CoreUserInfoClaims = client
        .user_info(refreshed.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), user_id);

    // The spent refresh token is refused: the library sees an RFC 6749 error.
    let reused = client.exchange_refresh_token(first_refresh).unwrap().request_async(&http).await;
    match reused {
        Err(openidconnect::RequestTokenError::ServerResponse(error)) => {
            assert_eq!(error.error().as_ref(), "invalid_grant");
        }
        other => panic!("a spent refresh token must be refused with invalid_grant: {other:?}"),
    }
}

#[tokio::test]
async fn openidconnect_completes_the_code_flow_with_pkce_against_an_eddsa_server() {
    openidconnect_code_flow(&[], CoreJwsSigningAlgorithm::EdDsa).await;
}

#[tokio::test]
async fn openidconnect_completes_the_code_flow_with_pkce_against_an_es256_server() {
    openidconnect_code_flow(&[("PALISADE_JWT_ALGORITHM", "ES256")], CoreJwsSigningAlgorithm::EcdsaP256Sha256).await;
}

const AUTHLIB_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop/authlib_rp.py");

/// Whether python3 has authlib and requests; under `CI=true` their absence fails the test.
fn authlib_available() -> bool {
    let probe = Command::new("python3").args(["-c", "import authlib, joserfc, requests"]).output();
    if probe.is_ok_and(|out| out.status.success()) {
        return true;
    }
    let why = "python3 with authlib (and its joserfc) and requests is needed: python3 -m pip install authlib requests";
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    assert!(!ci, "CI=true but {why}");
    eprintln!("SKIPPED authlib interop: {why}");
    false
}

/// Registers a client-credentials client authenticating with `method` (and `jwks` for
/// `private_key_jwt`): its id and secret (empty without one).
async fn register_service(app: &TestApp, method: &str, jwks: Option<Value>) -> (String, String) {
    let registration = ClientRegistration {
        name: format!("service ({method})"),
        kind: ClientKind::Confidential,
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        scopes: vec!["orders:read".into(), "orders:write".into()],
        auth_method: Some(method.into()),
        jwks,
        jwks_uri: None,
    };
    let created =
        app.palisade.oauth_clients().register_as(None, "test", &registration, &RequestMeta::default()).await.unwrap();
    (created.client.client_id, created.secret.map(|s| s.expose_secret().to_owned()).unwrap_or_default())
}

/// A new Ed25519 key: its PKCS#8 PEM (for the script) and its public JWK with `kid` (to register).
/// PKCS#8 v1: Python's cryptography refuses the v2 document (with the public key) that aws-lc-rs
/// writes by default ("ASN.1 parsing error: extra data").
fn ed25519_key(kid: &str) -> (String, Value) {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.as_ref()).unwrap();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(pkcs8.as_ref()));
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
                     "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
    (pem, jwk)
}

#[tokio::test]
async fn authlib_completes_the_code_flow_and_both_client_credentials_methods() {
    if !authlib_available() {
        return;
    }
    let app = oidc_app(&[]).await;
    let code_client = register_client(
        &app,
        ClientKind::Confidential,
        &["authorization_code", "refresh_token"],
        &["openid", "profile", "email"],
    )
    .await;
    let user_id = register_user(&app, "carol").await;
    let (post_id, post_secret) = register_service(&app, "client_secret_post", None).await;
    let (pem, jwk) = ed25519_key("authlib-1");
    let (jwt_id, _) = register_service(&app, "private_key_jwt", Some(json!({"keys": [jwk]}))).await;

    // The script talks to the server this runtime serves: run it off the runtime's threads.
    let issuer = app.address.clone();
    let envs = [
        ("PALISADE_RP_USERNAME", "carol".to_owned()),
        ("PALISADE_RP_PASSWORD", PASSWORD.to_owned()),
        ("PALISADE_RP_REDIRECT_URI", REDIRECT.to_owned()),
        ("PALISADE_RP_CODE_CLIENT_ID", code_client.id.clone()),
        ("PALISADE_RP_CODE_CLIENT_SECRET", code_client.secret.clone()),
        ("PALISADE_RP_POST_CLIENT_ID", post_id.clone()),
        ("PALISADE_RP_POST_CLIENT_SECRET", post_secret),
        ("PALISADE_RP_JWT_CLIENT_ID", jwt_id.clone()),
        ("PALISADE_RP_JWT_KEY_PEM", pem),
        ("PALISADE_RP_JWT_KID", "authlib-1".to_owned()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3").arg(AUTHLIB_SCRIPT).arg(&issuer).envs(envs).output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "authlib_rp.py failed ({}):\n{stdout}\n{stderr}", output.status);

    // One JSON object a line, by step.
    let steps: std::collections::HashMap<String, Value> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .map(|step| (step["step"].as_str().unwrap().to_owned(), step))
        .collect();
    let step = |name: &str| steps.get(name).unwrap_or_else(|| panic!("no {name} step in {stdout}"));
    assert_eq!(step("discovery")["issuer"], app.address);
    let code = step("authorization_code");
    assert_eq!(code["sub"], user_id.as_str());
    assert_eq!(code["aud"], code_client.id.as_str());
    assert_eq!(code["alg"], "EdDSA");
    assert_eq!(code["at_hash_checked"], true);
    assert_eq!(code["scope"], "openid profile email");
    assert_eq!(step("userinfo")["claims"], json!({"sub": user_id, "preferred_username": "carol"}));
    let refresh = step("refresh");
    assert_eq!((refresh["sub"].as_str(), refresh["rotated"].as_bool()), (Some(user_id.as_str()), Some(true)));
    let post = step("client_secret_post");
    assert_eq!((post["sub"].as_str(), post["client_id"].as_str()), (Some(post_id.as_str()), Some(post_id.as_str())));
    assert_eq!(post["scope"], "orders:read");
    let jwt = step("private_key_jwt");
    assert_eq!((jwt["sub"].as_str(), jwt["client_id"].as_str()), (Some(jwt_id.as_str()), Some(jwt_id.as_str())));
    assert_eq!(jwt["scope"], "orders:read orders:write");
}
