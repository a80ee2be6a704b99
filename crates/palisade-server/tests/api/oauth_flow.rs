//! The authorization-code flow over HTTP, driven as a browser and a relying party would: the
//! sign-in and consent pages, PKCE, the code exchange, ID tokens, UserInfo, refresh rotation, and
//! the single use of codes (a second use revokes what the first issued).
//!
//! The helpers here (`OidcApp`, `Browser`, `Pkce`) are shared with the other OAuth flow tests.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_core::audit::RequestMeta;
use palisade_core::oauth::{ClientKind, ClientRegistration};
use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::{PASSWORD, TestApp, register_user};

pub const REDIRECT: &str = "https://rp.example/cb";
pub const POST_LOGOUT: &str = "https://rp.example/bye";

/// A server whose issuer is its own address (as relying parties check), with `extra` settings.
pub async fn oidc_app(extra: &[(&str, &str)]) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://127.0.0.1:{port}");
    let mut settings = vec![("PALISADE_BIND", bind.as_str()), ("PALISADE_ISSUER", issuer.as_str())];
    settings.extend_from_slice(extra);
    crate::spawn_app_with(&settings).await
}

/// A registered client: its id and secret (empty for a public client).
pub struct Client {
    pub id: String,
    pub secret: String,
}

pub async fn register_client(app: &TestApp, kind: ClientKind, grants: &[&str], scopes: &[&str]) -> Client {
    let registration = ClientRegistration {
        name: "Shop <Demo> & Co".into(),
        kind,
        redirect_uris: vec![REDIRECT.into(), "http://127.0.0.1:9/other".into()],
        post_logout_redirect_uris: vec![POST_LOGOUT.into()],
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        auth_method: (kind == ClientKind::Public).then(|| "none".to_owned()),
        jwks: None,
        jwks_uri: None,
    };
    let created =
        app.palisade.oauth_clients().register_as(None, "test", &registration, &RequestMeta::default()).await.unwrap();
    Client {
        id: created.client.client_id,
        secret: created.secret.map(|s| s.expose_secret().to_owned()).unwrap_or_default(),
    }
}

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Self { challenge: URL_SAFE_NO_PAD.encode(digest.as_ref()), verifier }
    }
}

/// A browser: follows nothing by itself, keeps the `palisade_browser` cookie.
pub struct Browser {
    http: reqwest::Client,
    pub cookie: Option<String>,
}

/// A page or redirect the server answered.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The value of the hidden input `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).unwrap_or_else(|| panic!("no {name} in {}", self.body)) + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].replace("&amp;", "&").replace("&quot;", "\"")
    }

    /// The parameters of the redirect's query.
    pub fn redirect_params(&self) -> std::collections::HashMap<String, String> {
        let location =
            self.location.as_deref().unwrap_or_else(|| panic!("not a redirect: {} {}", self.status, self.body));
        let url = url::Url::parse(location).unwrap();
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, cookie: None }
    }

    async fn finish(&mut self, response: reqwest::Response) -> Answer {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            assert_eq!(name, "palisade_browser");
            assert!(
                text.contains("HttpOnly") && text.contains("SameSite=Lax") && text.contains("Path=/oauth2"),
                "{text}"
            );
            self.cookie = (!value.is_empty()).then(|| value.to_owned());
        }
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let headers = response.headers().clone();
        Answer { status, location, headers, body: response.text().await.unwrap() }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        let mut request = self.http.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("palisade_browser={cookie}"));
        }
        let response = request.send().await.unwrap();
        self.finish(response).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let mut request = self.http.post(url).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("palisade_browser={cookie}"));
        }
        let response = request.send().await.unwrap();
        self.finish(response).await
    }

    /// Signs in on the sign-in page `page` (which must be one) with `username` and [`PASSWORD`].
    pub async fn sign_in(&mut self, app: &TestApp, page: &Answer, username: &str) -> Answer {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("action=\"/oauth2/authorize/login\""), "not the sign-in page: {}", page.body);
        let request = page.hidden("request");
        self.post(
            &app.url("/oauth2/authorize/login"),
            &[("request", &request), ("username", username), ("password", PASSWORD)],
        )
        .await
    }

    /// Allows on the consent page `page`.
    pub async fn allow(&mut self, app: &TestApp, page: &Answer) -> Answer {
        assert!(page.body.contains("action=\"/oauth2/authorize/consent\""), "not the consent page: {}", page.body);
        let request = page.hidden("request");
        self.post(&app.url("/oauth2/authorize/consent"), &[("request", &request), ("decision", "allow")]).await
    }
}

/// An authorization URL for `client` with `pkce`, `state` and `nonce`, plus `extra` parameters.
pub fn authorize_url(app: &TestApp, client: &str, scope: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-1 &x")
        .append_pair("nonce", "n-0S6_WzA2Mj")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

/// Exchanges `code` at the token endpoint with HTTP Basic: the status and body.
pub async fn exchange(app: &TestApp, client: &Client, code: &str, verifier: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

pub async fn refresh(app: &TestApp, client: &Client, token: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

pub async fn userinfo(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app.http.get(app.url("/oauth2/userinfo")).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The claims of a JWT, unverified (the tests that need verification use PyJWT).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn the_code_flow_with_pkce_signs_in_asks_consent_and_issues_verifiable_tokens() {
    let app = oidc_app(&[]).await;
    let client = register_client(
        &app,
        ClientKind::Confidential,
        &["authorization_code", "refresh_token"],
        &["openid", "profile", "email", "orders:read"],
    )
    .await;
    let user_id = register_user(&app, "alice").await;
    let mut browser = Browser::new();
    let pkce = Pkce::new();

    // The first visit: a new browser gets its cookie and the sign-in page, naming the client escaped.
    let page = browser.get(&authorize_url(&app, &client.id, "openid profile orders:read", &pkce, &[])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let first_cookie = browser.cookie.clone().expect("a browser cookie");
    assert!(page.body.contains("Shop &lt;Demo&gt; &amp; Co"), "{}", page.body);
    assert!(!page.body.contains("<Demo>"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));

    // A wrong password: the same page again, with the error, nothing else.
    let request = page.hidden("request");
    let wrong = browser
        .post(
            &app.url("/oauth2/authorize/login"),
            &[("request", &request), ("username", "alice"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("Wrong username or password."), "{}", wrong.body);

    // The right one: the browser's cookie is replaced (no fixation), then the consent page.
    let consent = browser.sign_in(&app, &page, "alice").await;
    assert_ne!(browser.cookie.as_deref(), Some(first_cookie.as_str()), "signing in issues a new cookie");
    assert!(consent.body.contains("See your username"), "{}", consent.body);
    assert!(consent.body.contains("Use “orders:read”"));

    // Allowing sends the browser back with a code, the state and the issuer (RFC 9207).
    let back = browser.allow(&app, &consent).await;
    assert_eq!(back.status, 303);
    assert!(back.location.as_deref().unwrap().starts_with("https://rp.example/cb?"));
    let params = back.redirect_params();
    assert_eq!(params["state"], "st-1 &x");
    assert_eq!(params["iss"], app.address);
    let code = params["code"].clone();
    assert_eq!(code.len(), 43);

    // The exchange: access, refresh and ID tokens.
    let (status, tokens) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile orders:read");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["iss"], app.address);
    assert_eq!(id_token["sub"], user_id);
    assert_eq!(id_token["aud"], client.id);
    assert_eq!(id_token["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id_token["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id_token["acr"], "urn:palisade:acr:pwd");
    assert!(id_token["auth_time"].as_i64().unwrap() <= id_token["iat"].as_i64().unwrap());
    // at_hash: the left half of SHA-512 of the access token (EdDSA).
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, access.as_bytes());
    assert_eq!(id_token["at_hash"], URL_SAFE_NO_PAD.encode(&digest.as_ref()[..32]));
    let at = claims(&access);
    assert_eq!((at["sub"].as_str(), at["client_id"].as_str()), (Some(user_id.as_str()), Some(client.id.as_str())));

    // UserInfo: what the scopes allow (profile, no email).
    let (status, info) = userinfo(&app, &access).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info, serde_json::json!({"sub": user_id, "preferred_username": "alice"}));
    // By POST, the token in the form (RFC 6750 §2.2) answers the same; in both places it is refused.
    let posted = app.http.post(app.url("/oauth2/userinfo")).form(&[("access_token", &access)]).send().await.unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(posted.json::<Value>().await.unwrap(), info);
    let twice = app
        .http
        .post(app.url("/oauth2/userinfo"))
        .bearer_auth(&access)
        .form(&[("access_token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    assert!(twice.headers()["www-authenticate"].to_str().unwrap().contains("invalid_request"));

    // The client's token is not a Palisade session token.
    let profile = app.http.get(app.url("/auth/profile")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(profile.status(), 401);

    // A second authorization in the same browser: no sign-in, no consent — straight back.
    let again = Pkce::new();
    let direct = browser.get(&authorize_url(&app, &client.id, "openid profile", &again, &[])).await;
    assert_eq!(direct.status, 303, "{}", direct.body);
    let code2 = direct.redirect_params()["code"].clone();
    let (status, second) = exchange(&app, &client, &code2, &again.verifier).await;
    assert_eq!(status, 200, "{second}");

    // Palisade's own refresh endpoint refuses an OAuth refresh token (and spends nothing).
    let own = app
        .http
        .post(app.url("/auth/refresh"))
        .json(&serde_json::json!({"refresh_token": second["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 401);
    let (status, _) = refresh(&app, &client, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "still good at the token endpoint");

    // Refresh rotates; presenting the spent token again revokes the family.
    let refresh1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh(&app, &client, &refresh1).await;
    assert_eq!(status, 200, "{rotated}");
    let refresh2 = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh1, refresh2);
    assert_eq!(claims(rotated["id_token"].as_str().unwrap())["auth_time"], id_token["auth_time"]);
    let (status, reused) = refresh(&app, &client, &refresh1).await;
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(&app, &client, &refresh2).await;
    assert_eq!(status, 400, "the family is revoked with the reuse");
    let (status, _) = userinfo(&app, rotated["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 401, "and its session ended");

    let kinds = crate::audit_event_kinds(&app).await;
    for kind in ["oauth.consent_granted", "oauth.authorized", "oauth.token_issued", "token.refresh_reuse"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn a_code_works_once_and_its_second_use_revokes_what_the_first_issued() {
    let app = oidc_app(&[]).await;
    let client =
        register_client(&app, ClientKind::Confidential, &["authorization_code", "refresh_token"], &["openid"]).await;
    register_user(&app, "bob").await;
    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[])).await;
    let consent = browser.sign_in(&app, &page, "bob").await;
    let code = browser.allow(&app, &consent).await.redirect_params()["code"].clone();

    let (status, first) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.0, 200);

    // The user's export (GDPR Art. 15) names the application, its scopes and the session it holds.
    let login = crate::login_user(&app, "bob").await;
    let export: Value = app
        .http
        .get(app.url("/compliance/export"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["oauth_authorizations"][0]["client_id"], client.id);
    assert_eq!(export["oauth_authorizations"][0]["scope"], "openid");
    let held: Vec<&Value> =
        export["sessions"].as_array().unwrap().iter().filter(|s| s["oauth_client_id"] == client.id.as_str()).collect();
    assert_eq!(held.len(), 1, "{}", export["sessions"]);

    let (status, again) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "{again}");
    assert_eq!(userinfo(&app, access).await.0, 401, "the first redemption's access token is revoked");
    let (status, _) = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "and its refresh token");
    assert!(crate::audit_event_kinds(&app).await.iter().any(|k| k == "oauth.code_reused"));
}

/// What the OpenID Foundation's basic plan sends besides the essentials must not break a request
/// (oidcc-ensure-request-with-unknown-parameter-succeeds, -display-page/-popup, -login-hint,
/// -ui-locales, -claims-locales, -ensure-request-with-acr-values-succeeds, -claims-essential,
/// -id-token-hint, -ensure-request-without-nonce-succeeds-for-code-flow, -scope-address/-phone):
/// they are accepted and ignored, and the flow completes — here on an RS256 server, whose ID token
/// carries the RS256 at_hash (oidcc-idtoken-rs256).
#[tokio::test]
async fn optional_parameters_are_accepted_and_ignored_and_rs256_servers_work() {
    let app = oidc_app(&[("PALISADE_JWT_ALGORITHM", "RS256")]).await;
    let client = register_client(
        &app,
        ClientKind::Confidential,
        &["authorization_code"],
        &["openid", "profile", "email", "address", "phone"],
    )
    .await;
    register_user(&app, "carol").await;
    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let mut url = url::Url::parse(&app.url("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid address phone")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("display", "popup")
        .append_pair("login_hint", "carol")
        .append_pair("ui_locales", "fr-CA fr en")
        .append_pair("claims_locales", "fr")
        .append_pair("acr_values", "urn:palisade:acr:mfa")
        .append_pair("claims", r#"{"id_token":{"email":{"essential":true}}}"#)
        .append_pair("id_token_hint", "not.a.token")
        .append_pair("extra_unknown_parameter", "whatever");
    let page = browser.get(url.as_str()).await;
    let consent = browser.sign_in(&app, &page, "carol").await;
    let back = browser.allow(&app, &consent).await;
    let params = back.redirect_params();
    assert!(!params.contains_key("state"), "no state was sent, none comes back");
    let (status, tokens) = exchange(&app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(tokens["id_token"].as_str().unwrap().split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert!(id_token.get("nonce").is_none(), "no nonce was sent, none is claimed");
    let access = tokens["access_token"].as_str().unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(id_token["at_hash"], URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
    let (status, info) = userinfo(&app, access).await;
    assert_eq!((status, info.as_object().unwrap().len()), (200, 1), "only sub: no address or phone is kept: {info}");
}

/// The authorization endpoint is anonymous: its refusals are always answered, but an address's
/// refusals are audited only up to the per-address limit (`ip_max_login_failures`), so junk
/// requests cannot fill the audit chain.
#[tokio::test]
async fn refused_authorization_requests_are_audited_within_a_per_address_budget() {
    let app = oidc_app(&[("PALISADE_IP_MAX_LOGIN_FAILURES", "3")]).await;
    let mut browser = Browser::new();
    for attempt in 0..6 {
        let page = browser.get(&app.url(&format!("/oauth2/authorize?client_id=nobody-{attempt}"))).await;
        assert_eq!(page.status, 400, "attempt {attempt}");
        assert!(page.body.contains("not registered here"), "{}", page.body);
    }
    let refused = crate::audit_event_kinds(&app).await.iter().filter(|k| *k == "oauth.authorize_refused").count();
    assert_eq!(refused, 3);
}

#[tokio::test]
async fn one_address_cannot_start_more_sign_ins_than_its_budget() {
    let app = oidc_app(&[("PALISADE_OAUTH2_PENDING_PER_IP", "10")]).await;
    let client = register_client(&app, ClientKind::Confidential, &["authorization_code"], &["openid"]).await;
    let pkce = Pkce::new();
    let url = authorize_url(&app, &client.id, "openid", &pkce, &[]);
    // Fresh browsers each time, as a flood would be: each start keeps a pending request.
    let mut started = Vec::new();
    for _ in 0..10 {
        let mut browser = Browser::new();
        let page = browser.get(&url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        started.push((browser, page));
    }
    let refused = Browser::new().get(&url).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.body.contains("Too many sign-ins"), "{}", refused.body);
    let retry: i64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    assert_eq!(refused.headers["content-type"], "text/html; charset=utf-8");
    for _ in 0..5 {
        assert_eq!(Browser::new().get(&url).await.status, 429);
    }
    // One audit record for the window, not one per refusal.
    let refusals = crate::audit_event_kinds(&app).await.iter().filter(|k| *k == "oauth.authorize_refused").count();
    assert_eq!(refusals, 1);
    // Sign-ins already started go on.
    crate::register_user(&app, "budget-user").await;
    let (mut browser, page) = started.remove(0);
    let signed_in = browser.sign_in(&app, &page, "budget-user").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert!(signed_in.body.contains("action=\"/oauth2/authorize/consent\""), "{}", signed_in.body);
}

#[tokio::test]
async fn deleting_a_client_ends_its_tokens() {
    let app = oidc_app(&[]).await;
    let grants = ["authorization_code", "refresh_token", "client_credentials"];
    let client = register_client(&app, ClientKind::Confidential, &grants, &["openid", "orders:read"]).await;
    let auditor = register_client(&app, ClientKind::Confidential, &["client_credentials"], &["orders:read"]).await;
    register_user(&app, "carol").await;
    let mut browser = Browser::new();
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[])).await;
    let consent = browser.sign_in(&app, &page, "carol").await;
    let code = browser.allow(&app, &consent).await.redirect_params()["code"].clone();
    let (status, tokens) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let user_token = tokens["access_token"].as_str().unwrap().to_owned();
    let form = [("grant_type", "client_credentials")];
    let response =
        app.http.post(app.url("/oauth2/token")).form(&form).basic_auth(&client.id, Some(&client.secret)).send().await;
    let client_token = response.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();

    let active = |token: String| {
        let request = app.http.post(app.url("/oauth2/introspect")).form(&[("token", token)]);
        let request = request.basic_auth(&auditor.id, Some(&auditor.secret));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap()["active"].as_bool().unwrap() }
    };
    assert!(active(user_token.clone()).await && active(client_token.clone()).await);
    assert_eq!(userinfo(&app, &user_token).await.0, 200);

    app.palisade.oauth_clients().delete_as("test", &client.id, &RequestMeta::default()).await.unwrap();
    assert!(!active(user_token.clone()).await, "the user's grant token ended with its client");
    assert!(!active(client_token).await, "and the client's own token");
    assert_eq!(userinfo(&app, &user_token).await.0, 401);
    let (status, _) = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 401, "the deleted client cannot authenticate to refresh");
}
