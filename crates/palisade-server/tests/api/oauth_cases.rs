//! The OAuth 2.0 / OpenID Connect provider's refusals and options over HTTP, case by case: RFC 6749
//! and RFC 9700's errors at the authorization endpoint (shown before the redirect URI is trusted,
//! sent back with `state` and `iss` after, RFC 9207), PKCE and its downgrade, codes bound to their
//! client and redirect URI, `prompt` and `max_age`, the form-post response mode, public clients,
//! the sign-in forms' binding to their browser, the second factor, consent memory and its
//! revocation, introspection and revocation of a grant's tokens, failing closed, and discovery.
//!
//! The flow's helpers are `oauth_flow.rs`'s; time moves on a manual clock where it matters.

use std::collections::HashMap;
use std::sync::Arc;

use palisade_core::audit::RequestMeta;
use palisade_core::clock::{Clock as _, ManualClock};
use palisade_core::mfa::totp::TotpSecret;
use palisade_core::oauth::{ClientKind, ClientRegistration};
use serde_json::{Value, json};

use crate::oauth_flow::{
    Answer, Browser, Client, Pkce, REDIRECT, authorize_url, claims, exchange, oidc_app, refresh, register_client,
    userinfo,
};
use crate::{TestApp, audit_event_kinds, login_user, register_user};

/// The scopes the test clients may ask for.
const SCOPES: [&str; 4] = ["openid", "profile", "email", "orders:read"];
/// The `state` [`authorize_url`] sends.
const STATE: &str = "st-1 &x";

/// Like [`oidc_app`], with the services on `clock`.
pub async fn oidc_app_with_clock(clock: Arc<ManualClock>, extra: &[(&str, &str)]) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://127.0.0.1:{port}");
    let mut settings = vec![("PALISADE_BIND", bind.as_str()), ("PALISADE_ISSUER", issuer.as_str())];
    settings.extend_from_slice(extra);
    crate::spawn_app_with_clock(&settings, clock).await
}

/// A confidential client with the code and refresh grants and [`SCOPES`].
pub async fn confidential(app: &TestApp) -> Client {
    register_client(app, ClientKind::Confidential, &["authorization_code", "refresh_token"], &SCOPES).await
}

/// The authorization endpoint with exactly `pairs` as its query.
fn authorize_with<K: AsRef<str>, V: AsRef<str>>(app: &TestApp, pairs: &[(K, V)]) -> String {
    let mut url = url::Url::parse(&app.url("/oauth2/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// Asserts that `answer` is an error page for the user: 400, HTML, and no redirect anywhere.
pub fn assert_error_page(answer: &Answer) {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.location.is_none(), "an error page redirects nowhere: {:?}", answer.location);
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(answer.body.contains("class=\"error\""), "{}", answer.body);
    assert!(!answer.body.contains("http-equiv"), "no meta refresh: {}", answer.body);
}

/// Asserts that `answer` sends the browser back to [`REDIRECT`] with `error`, the request's state and
/// the issuer (RFC 9207), and no code; the parameters.
fn assert_error_redirect(app: &TestApp, answer: &Answer, error: &str) -> HashMap<String, String> {
    assert_eq!(answer.status, 303, "{error}: {}", answer.body);
    let location = answer.location.as_deref().unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let params = answer.redirect_params();
    assert_eq!(params.get("error").map(String::as_str), Some(error), "{params:?}");
    assert_eq!(params.get("iss").map(String::as_str), Some(app.address.as_str()), "RFC 9207: {params:?}");
    assert_eq!(params.get("state").map(String::as_str), Some(STATE), "{params:?}");
    assert!(!params.contains_key("code"), "{params:?}");
    params
}

/// A new browser that signed `username` in and allowed `client` `scope`; the browser and the tokens.
pub async fn signed_in(app: &TestApp, client: &Client, username: &str, scope: &str) -> (Browser, Value) {
    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(app, &client.id, scope, &pkce, &[])).await;
    let consent = browser.sign_in(app, &page, username).await;
    let back = browser.allow(app, &consent).await;
    let code = back.redirect_params()["code"].clone();
    let (status, tokens) = exchange(app, client, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    (browser, tokens)
}

/// A code straight from `browser`, which is signed in and has consented to `scope`.
pub async fn direct_code(app: &TestApp, browser: &mut Browser, client: &Client, scope: &str, pkce: &Pkce) -> String {
    let answer = browser.get(&authorize_url(app, &client.id, scope, pkce, &[])).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    answer.redirect_params()["code"].clone()
}

/// POSTs `form` to `path` with `client`'s Basic credentials if given: status, headers, JSON body.
async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<&Client>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app.http.post(app.url(path)).form(form);
    if let Some(client) = basic {
        request = request.basic_auth(&client.id, Some(&client.secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// Parameters of a request, in order.
type Params<'a> = Vec<(&'a str, &'a str)>;

/// A good authorization request's parameters for `client`, `redirect_uri` and `challenge`.
fn request_pairs<'a>(client: &'a str, redirect_uri: &'a str, challenge: &'a str) -> [(&'a str, &'a str); 7] {
    [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect_uri),
        ("scope", "openid"),
        ("state", STATE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

fn code_form<'a>(code: &'a str, verifier: Option<&'a str>, redirect_uri: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
    form.extend(redirect_uri.map(|r| ("redirect_uri", r)));
    form.extend(verifier.map(|v| ("code_verifier", v)));
    form
}

fn assert_invalid_grant(status: u16, body: &Value) {
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn errors_before_the_redirect_uri_is_trusted_are_shown_and_sent_nowhere() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new();
    let good = |redirect| request_pairs(&client.id, redirect, &pkce.challenge);

    // An unregistered redirect URI (one that listens): a page, nothing sent there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil = format!("http://{}/cb", listener.local_addr().unwrap());
    for redirect in [evil.as_str(), "https://rp.example/cb/", "https://rp.example/cb?x=1", "https://RP.example/cb"] {
        let answer = browser.get(&authorize_with(&app, &good(redirect))).await;
        assert_error_page(&answer);
        assert!(answer.body.contains("did not register"), "{}", answer.body);
        assert!(!answer.body.contains(redirect), "the page does not link to it: {}", answer.body);
    }
    let contacted = tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(contacted.is_err(), "the unregistered redirect URI was contacted");

    // An unknown, a missing, an overlong client_id; client_id or redirect_uri sent twice.
    let mut unknown = good(REDIRECT);
    unknown[1].1 = "no-such-client";
    let answer = browser.get(&authorize_with(&app, &unknown)).await;
    assert_error_page(&answer);
    assert!(answer.body.contains("not registered here"), "{}", answer.body);
    let long = "c".repeat(300);
    unknown[1].1 = &long;
    assert_error_page(&browser.get(&authorize_with(&app, &unknown)).await);
    let without: Vec<_> = good(REDIRECT).into_iter().filter(|(k, _)| *k != "client_id").collect();
    assert_error_page(&browser.get(&authorize_with(&app, &without)).await);
    for (name, value) in [("client_id", "other"), ("redirect_uri", REDIRECT)] {
        let mut pairs = good(REDIRECT).to_vec();
        pairs.push((name, value));
        let answer = browser.get(&authorize_with(&app, &pairs)).await;
        assert_error_page(&answer);
        assert!(answer.body.contains("more than once"), "{}", answer.body);
    }

    // Without redirect_uri: a client with one registered URI may leave it out — unless it asks for
    // openid (OpenID Connect Core §3.1.2.1 requires it).
    let registration = ClientRegistration {
        name: "single".into(),
        kind: ClientKind::Confidential,
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into()],
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        auth_method: None,
        jwks: None,
        jwks_uri: None,
    };
    let single =
        app.palisade.oauth_clients().register_as(None, "test", &registration, &RequestMeta::default()).await.unwrap();
    let single_id = single.client.client_id;
    let mut pairs = [
        ("response_type", "code"),
        ("client_id", single_id.as_str()),
        ("scope", "orders:read"),
        ("state", STATE),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = browser.get(&authorize_with(&app, &pairs)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/oauth2/authorize/login\""), "{}", page.body);
    pairs[2].1 = "openid orders:read";
    let answer = browser.get(&authorize_with(&app, &pairs)).await;
    assert_error_page(&answer);
    assert!(answer.body.contains("redirect_uri is missing"), "{}", answer.body);

    assert!(audit_event_kinds(&app).await.iter().any(|k| k == "oauth.authorize_refused"));
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_trusted_go_back_with_state_and_iss() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    let public = register_client(&app, ClientKind::Public, &["authorization_code"], &SCOPES).await;
    let machine = register_client(&app, ClientKind::Confidential, &["client_credentials"], &SCOPES).await;
    let pkce = Pkce::new();
    let mut browser = Browser::new();
    let base = |client: &str| {
        vec![
            ("response_type".to_owned(), "code".to_owned()),
            ("client_id".to_owned(), client.to_owned()),
            ("redirect_uri".to_owned(), REDIRECT.to_owned()),
            ("scope".to_owned(), "openid".to_owned()),
            ("state".to_owned(), STATE.to_owned()),
            ("code_challenge".to_owned(), pkce.challenge.clone()),
            ("code_challenge_method".to_owned(), "S256".to_owned()),
        ]
    };
    // Each case: the client, parameters to set (an empty value removes it), parameters to add, and
    // the error expected.
    let challenge_plus = format!("{}+", &pkce.challenge[..42]);
    let cases: Vec<(&str, Params, Params, &str)> = vec![
        (&client.id, vec![("response_type", "token")], vec![], "unsupported_response_type"),
        (&client.id, vec![("response_type", "code id_token")], vec![], "unsupported_response_type"),
        (&client.id, vec![("response_type", "")], vec![], "invalid_request"),
        (&client.id, vec![("code_challenge_method", "plain")], vec![], "invalid_request"),
        (&client.id, vec![("code_challenge_method", "")], vec![], "invalid_request"),
        (&client.id, vec![("code_challenge", ""), ("code_challenge_method", "")], vec![], "invalid_request"),
        (&public.id, vec![("code_challenge", ""), ("code_challenge_method", "")], vec![], "invalid_request"),
        (&client.id, vec![("code_challenge", &pkce.challenge[..42])], vec![], "invalid_request"),
        (&client.id, vec![("code_challenge", &challenge_plus)], vec![], "invalid_request"),
        (&client.id, vec![("code_challenge", &pkce.verifier[..20])], vec![], "invalid_request"),
        (&client.id, vec![], vec![("scope", "openid")], "invalid_request"),
        (
            &client.id,
            vec![],
            vec![("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")],
            "invalid_request",
        ),
        (&client.id, vec![("scope", "openid admin")], vec![], "invalid_scope"),
        (&client.id, vec![("scope", "")], vec![], "invalid_scope"),
        (&client.id, vec![("prompt", "none login")], vec![], "invalid_request"),
        (&client.id, vec![("prompt", "select_account")], vec![], "invalid_request"),
        (&client.id, vec![("max_age", "-1")], vec![], "invalid_request"),
        (&client.id, vec![("response_mode", "fragment")], vec![], "invalid_request"),
        (&client.id, vec![], vec![("request", "eyJhbGciOiJub25lIn0.e30.")], "request_not_supported"),
        (&machine.id, vec![], vec![], "unauthorized_client"),
    ];
    for (client_id, set, add, error) in cases {
        let mut pairs = base(client_id);
        for (name, value) in set {
            pairs.retain(|(k, _)| k != name);
            if !value.is_empty() {
                pairs.push((name.to_owned(), value.to_owned()));
            }
        }
        pairs.extend(add.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        let answer = browser.get(&authorize_with(&app, &pairs)).await;
        let params = assert_error_redirect(&app, &answer, error);
        assert!(params.get("error_description").is_some_and(|d| !d.is_empty()), "{pairs:?}: {params:?}");
    }
    let kinds = audit_event_kinds(&app).await;
    assert!(kinds.iter().filter(|k| *k == "oauth.authorize_refused").count() >= 20, "{kinds:?}");
    assert!(!kinds.iter().any(|k| k == "oauth.authorized"));
}

#[tokio::test]
async fn the_code_verifier_must_be_present_and_match() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, _) = signed_in(&app, &client, "alice", "openid").await;

    let pkce = Pkce::new();
    let other = Pkce::new();
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let (status, body) = exchange(&app, &client, &code, &other.verifier).await;
    assert_invalid_grant(status, &body);

    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let (status, _, body) =
        post_form(&app, "/oauth2/token", &code_form(&code, None, Some(REDIRECT)), Some(&client)).await;
    assert_invalid_grant(status, &body);

    // The challenge itself is not the verifier; nor is a malformed verifier.
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let (status, body) = exchange(&app, &client, &code, &pkce.challenge).await;
    assert_invalid_grant(status, &body);
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let (status, body) = exchange(&app, &client, &code, &format!("{}+", pkce.verifier)).await;
    assert_invalid_grant(status, &body);

    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let (status, body) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn without_required_pkce_a_verifier_for_a_code_issued_without_challenge_is_a_downgrade() {
    let app = oidc_app(&[("PALISADE_OAUTH2_REQUIRE_PKCE", "false")]).await;
    let client = confidential(&app).await;
    let public = register_client(&app, ClientKind::Public, &["authorization_code"], &SCOPES).await;
    register_user(&app, "alice").await;
    let mut browser = Browser::new();
    let no_challenge = |client: &str| {
        authorize_with(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", client),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("state", STATE),
            ],
        )
    };

    // A public client still needs PKCE.
    let answer = browser.get(&no_challenge(&public.id)).await;
    assert_error_redirect(&app, &answer, "invalid_request");

    // A confidential one may go without: sign in, consent, a code without a challenge.
    let page = browser.get(&no_challenge(&client.id)).await;
    let consent = browser.sign_in(&app, &page, "alice").await;
    let code = browser.allow(&app, &consent).await.redirect_params()["code"].clone();
    // Redeemed WITH a verifier: the attacker's downgrade (RFC 9700 §4.8.2) is refused.
    let attacker = Pkce::new();
    let form = code_form(&code, Some(&attacker.verifier), Some(REDIRECT));
    let (status, _, body) = post_form(&app, "/oauth2/token", &form, Some(&client)).await;
    assert_invalid_grant(status, &body);

    // Without one, as issued: fine.
    let answer = browser.get(&no_challenge(&client.id)).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let code = answer.redirect_params()["code"].clone();
    let (status, _, body) =
        post_form(&app, "/oauth2/token", &code_form(&code, None, Some(REDIRECT)), Some(&client)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string());
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_its_redirect_uri() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    let other = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, _) = signed_in(&app, &client, "alice", "openid").await;
    let pkce = Pkce::new();

    // Code injection: the code of client A, redeemed by client B (authenticated as itself).
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let (status, body) = exchange(&app, &other, &code, &pkce.verifier).await;
    assert_invalid_grant(status, &body);

    // Another registered redirect URI than the authorization request's, or none at all.
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let form = code_form(&code, Some(&pkce.verifier), Some("http://127.0.0.1:9/other"));
    let (status, _, body) = post_form(&app, "/oauth2/token", &form, Some(&client)).await;
    assert_invalid_grant(status, &body);
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let (status, _, body) =
        post_form(&app, "/oauth2/token", &code_form(&code, Some(&pkce.verifier), None), Some(&client)).await;
    assert_invalid_grant(status, &body);

    // The same redirect URI as the request's: fine.
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let (status, body) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["id_token"].as_str().unwrap())["aud"], client.id);
}

#[tokio::test]
async fn prompt_none_answers_login_required_then_consent_required() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let pkce = Pkce::new();

    let mut stranger = Browser::new();
    let answer = stranger.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("prompt", "none")])).await;
    assert_error_redirect(&app, &answer, "login_required");

    let (mut browser, _) = signed_in(&app, &client, "alice", "openid").await;
    // Signed in, but not consented to profile.
    let answer = browser.get(&authorize_url(&app, &client.id, "openid profile", &pkce, &[("prompt", "none")])).await;
    assert_error_redirect(&app, &answer, "consent_required");
    // What was consented to: straight back with a code.
    let answer = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("prompt", "none")])).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(answer.redirect_params().contains_key("code"));
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in_and_prompt_consent_asks_again() {
    let clock = Arc::new(ManualClock::fixed());
    let app = oidc_app_with_clock(clock.clone(), &[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, tokens) = signed_in(&app, &client, "alice", "openid").await;
    let first_auth_time = claims(tokens["id_token"].as_str().unwrap())["auth_time"].as_i64().unwrap();
    assert_eq!(first_auth_time, clock.now().unix_timestamp());
    let pkce = Pkce::new();

    clock.advance(time::Duration::seconds(10));
    // A sign-in 10 s old satisfies max_age=60 ...
    let answer = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("max_age", "60")])).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    // ... but not max_age=5 nor max_age=0: the sign-in page again.
    for max_age in ["5", "0"] {
        let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("max_age", max_age)])).await;
        assert_eq!(page.status, 200, "max_age={max_age}: {}", page.body);
        assert!(page.body.contains("action=\"/oauth2/authorize/login\""), "{}", page.body);
    }
    // With prompt=none, a sign-in too old is login_required.
    let answer =
        browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("max_age", "5"), ("prompt", "none")])).await;
    assert_error_redirect(&app, &answer, "login_required");
    // Signing in again: consent is remembered, so a code, and the ID token's auth_time is the new one.
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("max_age", "0")])).await;
    let back = browser.sign_in(&app, &page, "alice").await;
    assert_eq!(back.status, 303, "{}", back.body);
    let (status, tokens) = exchange(&app, &client, &back.redirect_params()["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["auth_time"], first_auth_time + 10);

    // prompt=login: the sign-in page even though the browser is signed in (and just now).
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("prompt", "login")])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/oauth2/authorize/login\""), "{}", page.body);

    // prompt=consent: the consent page even though consent is remembered; allowing gives a code.
    let consent = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("prompt", "consent")])).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let back = browser.allow(&app, &consent).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert!(back.redirect_params().contains_key("code"));
}

#[tokio::test]
async fn denying_consent_sends_access_denied_and_remembers_nothing() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &client.id, "openid profile", &pkce, &[])).await;
    let consent = browser.sign_in(&app, &page, "alice").await;
    let request = consent.hidden("request");
    let back =
        browser.post(&app.url("/oauth2/authorize/consent"), &[("request", &request), ("decision", "deny")]).await;
    assert_error_redirect(&app, &back, "access_denied");

    let kinds = audit_event_kinds(&app).await;
    assert!(kinds.iter().any(|k| k == "oauth.consent_denied"), "{kinds:?}");
    assert!(!kinds.iter().any(|k| k == "oauth.consent_granted" || k == "oauth.authorized"), "{kinds:?}");
    // Nothing was remembered: the next request asks again (the browser stays signed in).
    let again = browser.get(&authorize_url(&app, &client.id, "openid profile", &pkce, &[])).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("action=\"/oauth2/authorize/consent\""), "{}", again.body);
}

#[tokio::test]
async fn form_post_answers_with_a_form_that_posts_to_the_redirect_uri() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("response_mode", "form_post")])).await;
    let consent = browser.sign_in(&app, &page, "alice").await;
    let answer = browser.allow(&app, &consent).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.location.is_none());
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert!(answer.body.contains(&format!("<form method=\"post\" action=\"{REDIRECT}\"")), "{}", answer.body);
    assert!(answer.body.contains("<script src=\"/oauth2/form_post.js\"></script>"), "{}", answer.body);
    assert_eq!(answer.hidden("state"), STATE);
    assert_eq!(answer.hidden("iss"), app.address);
    let code = answer.hidden("code");
    let (status, tokens) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");

    // The script the page loads is served, from here (the page's CSP allows only 'self').
    let script = app.http.get(app.url("/oauth2/form_post.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("getElementById(\"response\").submit()"));
    assert!(answer.body.contains("id=\"response\""));

    // An error in form_post mode is posted the same way.
    let refused = browser
        .get(&authorize_url(&app, &client.id, "openid", &pkce, &[("response_mode", "form_post"), ("prompt", "bogus")]))
        .await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(refused.location.is_none());
    assert_eq!(refused.hidden("error"), "invalid_request");
    assert_eq!(refused.hidden("state"), STATE);
    assert_eq!(refused.hidden("iss"), app.address);

    // An unknown response mode: an error, in the query.
    let bogus = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("response_mode", "bogus")])).await;
    assert_error_redirect(&app, &bogus, "invalid_request");
}

#[tokio::test]
async fn a_public_client_redeems_its_code_with_pkce_and_no_secret() {
    let app = oidc_app(&[]).await;
    let public = register_client(&app, ClientKind::Public, &["authorization_code", "refresh_token"], &SCOPES).await;
    assert!(public.secret.is_empty());
    let user_id = register_user(&app, "alice").await;
    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &public.id, "openid profile", &pkce, &[])).await;
    let consent = browser.sign_in(&app, &page, "alice").await;
    let code = browser.allow(&app, &consent).await.redirect_params()["code"].clone();

    let mut form = code_form(&code, Some(&pkce.verifier), Some(REDIRECT));
    form.push(("client_id", &public.id));
    let (status, headers, tokens) = post_form(&app, "/oauth2/token", &form, None).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(headers["cache-control"], "no-store");
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        (id_token["sub"].as_str(), id_token["aud"].as_str()),
        (Some(user_id.as_str()), Some(public.id.as_str()))
    );
    let (status, info) = userinfo(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!((status, info["preferred_username"].as_str()), (200, Some("alice")), "{info}");
    // Its refresh token works the same way, by client_id alone.
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &public.id)];
    let (status, _, body) = post_form(&app, "/oauth2/token", &form, None).await;
    assert_eq!(status, 200, "{body}");

    // Without the verifier, a public client's code is worth nothing.
    let code = direct_code(&app, &mut browser, &public, "openid profile", &pkce).await;
    let mut form = code_form(&code, None, Some(REDIRECT));
    form.push(("client_id", &public.id));
    let (status, _, body) = post_form(&app, "/oauth2/token", &form, None).await;
    assert_invalid_grant(status, &body);

    // A public client cannot introspect.
    let form = [("token", tokens["access_token"].as_str().unwrap()), ("client_id", public.id.as_str())];
    let (status, _, body) = post_form(&app, "/oauth2/introspect", &form, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
}

#[tokio::test]
async fn a_confidential_client_must_authenticate_to_redeem_a_code() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, _) = signed_in(&app, &client, "alice", "openid").await;
    let pkce = Pkce::new();
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;
    let form = code_form(&code, Some(&pkce.verifier), Some(REDIRECT));

    // No authentication; client_id alone (as a public client would); a wrong secret.
    let mut with_id = form.clone();
    with_id.push(("client_id", &client.id));
    let mut wrong_secret = with_id.clone();
    wrong_secret.push(("client_secret", "not-the-secret"));
    for attempt in [&form, &with_id, &wrong_secret] {
        let (status, headers, body) = post_form(&app, "/oauth2/token", attempt, None).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{attempt:?}: {body}");
        assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Basic"), "{headers:?}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(body.get("access_token").is_none());
    }
    // Refused before the grant was looked at: the code is still the client's to redeem.
    let (status, body) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_sign_in_forms_are_bound_to_their_browser_and_used_once() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let pkce = Pkce::new();
    let url = authorize_url(&app, &client.id, "openid", &pkce, &[]);
    let mut victim = Browser::new();
    let page = victim.get(&url).await;
    let request = page.hidden("request");
    let mut attacker = Browser::new();
    attacker.get(&url).await;
    assert!(attacker.cookie.is_some() && attacker.cookie != victim.cookie);

    // The victim's request id with the attacker's cookie, or with none: expired, and no login.
    let credentials = [("request", request.as_str()), ("username", "alice"), ("password", crate::PASSWORD)];
    let answer = attacker.post(&app.url("/oauth2/authorize/login"), &credentials).await;
    assert_error_page(&answer);
    assert!(answer.body.contains("expired"), "{}", answer.body);
    let mut bare = Browser::new();
    let answer = bare.post(&app.url("/oauth2/authorize/login"), &credentials).await;
    assert_error_page(&answer);
    assert!(bare.cookie.is_none(), "no cookie is handed out with a refusal");
    let kinds = audit_event_kinds(&app).await;
    assert!(!kinds.iter().any(|k| k.starts_with("auth.login")), "no password was checked: {kinds:?}");
    // A request id of the right shape but unknown, with the victim's cookie: expired too.
    let forged = "A".repeat(43);
    let answer = victim
        .post(
            &app.url("/oauth2/authorize/login"),
            &[("request", &forged), ("username", "alice"), ("password", crate::PASSWORD)],
        )
        .await;
    assert_error_page(&answer);

    // The victim's own browser goes on with the same form.
    let consent = victim.sign_in(&app, &page, "alice").await;
    assert!(consent.body.contains("action=\"/oauth2/authorize/consent\""), "{}", consent.body);
    let consent_request = consent.hidden("request");
    // The consent form from another browser: expired, no code.
    let allow = [("request", consent_request.as_str()), ("decision", "allow")];
    let answer = attacker.post(&app.url("/oauth2/authorize/consent"), &allow).await;
    assert_error_page(&answer);

    // Allowed once; the same form again (allow or deny) is expired.
    let back = victim.post(&app.url("/oauth2/authorize/consent"), &allow).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert!(back.redirect_params().contains_key("code"));
    let again = victim.post(&app.url("/oauth2/authorize/consent"), &allow).await;
    assert_error_page(&again);
    assert!(again.body.contains("expired"), "{}", again.body);
    let deny = [("request", consent_request.as_str()), ("decision", "deny")];
    assert_error_page(&victim.post(&app.url("/oauth2/authorize/consent"), &deny).await);
    let kinds = audit_event_kinds(&app).await;
    assert_eq!(kinds.iter().filter(|k| *k == "oauth.authorized").count(), 1, "{kinds:?}");
}

#[tokio::test]
async fn the_consent_form_cannot_skip_a_sign_in_that_was_asked_for() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, _) = signed_in(&app, &client, "alice", "openid").await;
    let pkce = Pkce::new();

    // prompt=login: the browser is signed in, but the client wants the password again. Posting the
    // sign-in page's request id to the consent form instead must not produce a code.
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("prompt", "login")])).await;
    assert!(page.body.contains("action=\"/oauth2/authorize/login\""), "{}", page.body);
    let request = page.hidden("request");
    let skipped =
        browser.post(&app.url("/oauth2/authorize/consent"), &[("request", &request), ("decision", "allow")]).await;
    assert_error_page(&skipped);
    let kinds = audit_event_kinds(&app).await;
    assert_eq!(kinds.iter().filter(|k| *k == "oauth.authorized").count(), 1, "{kinds:?}");

    // The sign-in itself still works with that page.
    let back = browser.sign_in(&app, &page, "alice").await;
    assert_eq!(back.status, 303, "{}", back.body);
    let (status, body) = exchange(&app, &client, &back.redirect_params()["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_second_factor_is_asked_on_its_page_and_shows_in_the_id_token() {
    let clock = Arc::new(ManualClock::fixed());
    let app = oidc_app_with_clock(clock.clone(), &[]).await;
    let client = confidential(&app).await;
    let now = || u64::try_from(clock.now().unix_timestamp()).unwrap();

    // Alice enrols an authenticator app (as tests/api/mfa.rs does).
    let user_id = register_user(&app, "alice").await;
    let access = login_user(&app, "alice").await["access_token"].as_str().unwrap().to_owned();
    let setup: Value =
        app.http.post(app.url("/auth/mfa/totp/setup")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    let secret = TotpSecret::from_base32(setup["secret"].as_str().unwrap()).unwrap();
    let confirm = app
        .http
        .post(app.url("/auth/mfa/totp/confirm"))
        .bearer_auth(&access)
        .json(&json!({"code": secret.code_at(now()).unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 204);
    clock.advance(time::Duration::seconds(30));

    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[])).await;
    let second = browser.sign_in(&app, &page, "alice").await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(second.body.contains("action=\"/oauth2/authorize/mfa\""), "{}", second.body);
    assert!(second.body.contains("<option value=\"totp\">Authenticator app</option>"), "{}", second.body);
    assert!(!second.body.contains("action=\"/oauth2/authorize/consent\""));
    let request = second.hidden("request");
    let mfa_token = second.hidden("mfa_token");

    // A wrong code: the same page, with the error.
    let right = secret.code_at(now()).unwrap();
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let form = |code: &str| {
        vec![
            ("request".to_owned(), request.clone()),
            ("mfa_token".to_owned(), mfa_token.clone()),
            ("method".to_owned(), "totp".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("action".to_owned(), "verify".to_owned()),
        ]
    };
    let pairs = form(&wrong);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let again = browser.post(&app.url("/oauth2/authorize/mfa"), &pairs).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("That code is wrong"), "{}", again.body);
    assert!(again.body.contains("action=\"/oauth2/authorize/mfa\""), "{}", again.body);

    // The right one: consent, then a code whose ID token says how alice signed in.
    let pairs = form(&right);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let consent = browser.post(&app.url("/oauth2/authorize/mfa"), &pairs).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let back = browser.allow(&app, &consent).await;
    let (status, tokens) = exchange(&app, &client, &back.redirect_params()["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["sub"], user_id);
    let amr: Vec<&str> = id_token["amr"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(amr.contains(&"pwd") && amr.contains(&"otp") && amr.contains(&"mfa"), "{amr:?}");
    assert_eq!(id_token["acr"], "urn:palisade:acr:mfa");
}

#[tokio::test]
async fn revoking_an_authorization_forgets_the_consent_and_ends_the_clients_sessions() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    let other = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, tokens) = signed_in(&app, &client, "alice", "openid profile").await;
    let (_, kept) = signed_in(&app, &other, "alice", "openid").await;
    let login = login_user(&app, "alice").await;
    let bearer = login["access_token"].as_str().unwrap();
    let list = |bearer: String| {
        let request = app.http.get(app.url("/auth/authorizations")).bearer_auth(bearer);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (status, body) = list(bearer.to_owned()).await;
    assert_eq!(status, 200, "{body}");
    let entries = body["authorizations"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{body}");
    let entry = entries.iter().find(|e| e["client_id"] == client.id.as_str()).unwrap();
    assert_eq!(entry["client_name"], "Shop <Demo> & Co");
    assert_eq!(entry["scope"], "openid profile");
    assert!(
        time::OffsetDateTime::parse(
            entry["granted_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    // Another user sees none of it; without a login, nothing at all.
    register_user(&app, "bob").await;
    let bob = login_user(&app, "bob").await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(list(bob.clone()).await.1["authorizations"], json!([]));
    let anonymous = app.http.get(app.url("/auth/authorizations")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    // Nor may bob revoke alice's.
    let path = app.url(&format!("/auth/authorizations/{}", client.id));
    let response = app.http.delete(&path).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.0, 200);

    let response = app.http.delete(&path).bearer_auth(bearer).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let (status, body) = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_invalid_grant(status, &body);
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.0, 401);
    let remaining = list(bearer.to_owned()).await.1;
    let remaining = remaining["authorizations"].as_array().unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["client_id"], other.id.as_str());
    // The other application's grant is untouched.
    assert_eq!(userinfo(&app, kept["access_token"].as_str().unwrap()).await.0, 200);
    let (status, body) = refresh(&app, &other, kept["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");

    let response = app.http.delete(&path).bearer_auth(bearer).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(audit_event_kinds(&app).await.iter().any(|k| k == "oauth.consent_revoked"));

    // The browser is still signed in, but the application must ask again.
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &client.id, "openid profile", &pkce, &[])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/oauth2/authorize/consent\""), "{}", page.body);
}

#[tokio::test]
async fn introspection_sees_a_grants_token_until_the_client_revokes_its_refresh_token() {
    let app = oidc_app(&[]).await;
    let client = confidential(&app).await;
    let other = confidential(&app).await;
    let user_id = register_user(&app, "alice").await;
    let (_, tokens) = signed_in(&app, &client, "alice", "openid profile").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let (status, headers, body) = post_form(&app, "/oauth2/introspect", &[("token", access)], Some(&client)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], user_id);
    assert_eq!(body["client_id"], client.id);
    assert_eq!(body["scope"], "openid profile");
    assert_eq!(body["token_type"], "Bearer");

    // Another client cannot revoke it: RFC 7009 answers 200, and nothing happens.
    let (status, _, _) = post_form(
        &app,
        "/oauth2/revoke",
        &[("token", refresh_token), ("token_type_hint", "refresh_token")],
        Some(&other),
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, body) = post_form(&app, "/oauth2/introspect", &[("token", access)], Some(&client)).await;
    assert_eq!(body["active"], true, "{body}");

    // Its own client revokes the refresh token: the grant's session ends with it.
    let (status, _, _) = post_form(&app, "/oauth2/revoke", &[("token", refresh_token)], Some(&client)).await;
    assert_eq!(status, 200);
    let (status, _, body) = post_form(&app, "/oauth2/introspect", &[("token", access)], Some(&client)).await;
    assert_eq!((status, body), (200, json!({"active": false})));
    let (status, body) = refresh(&app, &client, refresh_token).await;
    assert_invalid_grant(status, &body);
    assert_eq!(userinfo(&app, access).await.0, 401);
    assert!(audit_event_kinds(&app).await.iter().any(|k| k == "oauth.token_revoked"));
}

/// A Redis server of this test's own, on a free port (as `fail_closed.rs` starts one).
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    async fn start() -> Option<Self> {
        if std::process::Command::new("redis-server").arg("--version").output().is_err() {
            assert!(std::env::var("CI").is_err(), "redis-server is required on CI");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let redis = Self { port, child };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(redis);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis on {port} did not start");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_sign_in_fails_closed_with_a_503_page_when_the_hot_store_is_down() {
    let Some(redis) = OwnRedis::start().await else {
        eprintln!("skipped: redis-server not installed");
        return;
    };
    let app = oidc_app(&[("PALISADE_REDIS_URL", &format!("redis://127.0.0.1:{}", redis.port))]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let url = authorize_url(&app, &client.id, "openid", &pkce, &[]);
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);

    drop(redis);
    let unavailable = |answer: &Answer| {
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert!(answer.location.is_none());
        assert!(answer.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert_eq!(answer.headers["cache-control"], "no-store");
        assert!(answer.body.contains("unavailable right now"), "{}", answer.body);
        let lower = answer.body.to_lowercase();
        assert!(!lower.contains("redis") && !lower.contains("refused"), "no driver text: {}", answer.body);
    };
    // A new request, and the pending one's form: neither reads the outage as "no such request".
    unavailable(&browser.get(&url).await);
    unavailable(&Browser::new().get(&url).await);
    let request = page.hidden("request");
    let credentials = [("request", request.as_str()), ("username", "alice"), ("password", crate::PASSWORD)];
    unavailable(&browser.post(&app.url("/oauth2/authorize/login"), &credentials).await);
}

#[tokio::test]
async fn discovery_names_this_server_and_only_what_it_serves() {
    let app = oidc_app(&[]).await;
    let response = app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["issuer"], app.address);
    assert_eq!(document["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(document["response_types_supported"], json!(["code"]));
    assert_eq!(document["response_modes_supported"], json!(["query", "form_post"]));
    assert_eq!(document["authorization_response_iss_parameter_supported"], true);
    assert!(document["scopes_supported"].as_array().unwrap().contains(&json!("openid")));

    // Every endpoint listed is this server's, and answers there as such an endpoint does.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let endpoints = [
        ("authorization_endpoint", "GET", 400),
        ("token_endpoint", "POST", 401),
        ("introspection_endpoint", "POST", 401),
        ("revocation_endpoint", "POST", 401),
        ("userinfo_endpoint", "GET", 401),
        ("end_session_endpoint", "GET", 200),
        ("jwks_uri", "GET", 200),
    ];
    for (name, method, expected) in endpoints {
        let url = document[name].as_str().unwrap_or_else(|| panic!("{name} missing: {document}"));
        assert!(url.starts_with(&format!("{}/", app.address)), "{name}: {url}");
        let request = match method {
            "GET" => http.get(url),
            _ => http.post(url).form(&[("grant_type", "authorization_code"), ("token", "x")]),
        };
        let status = request.send().await.unwrap().status().as_u16();
        assert_eq!(status, expected, "{name} at {url}");
    }
    let jwks: Value = http.get(document["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let algorithm = &document["id_token_signing_alg_values_supported"][0];
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["alg"] == *algorithm), "{jwks} {algorithm}");
}
