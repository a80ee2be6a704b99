//! The token endpoint (`POST /oauth2/token`) over HTTP with the client-credentials grant: the three
//! client authentication methods, RFC 6749 §5.2 errors with their statuses and headers, scopes, the
//! audit records, and the token itself — verified by Python's PyJWT against the server's JWKS (code we
//! did not write), and refused by the routes that act for users.

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use palisade_core::audit::RequestMeta;
use palisade_core::oauth::{ClientKind, ClientRegistration};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::client_auth::Signer;
use crate::{TestApp, spawn_app};

async fn register(app: &TestApp, kind: ClientKind, method: &str, grants: &[&str], scopes: &[&str]) -> (String, String) {
    let jwks = (method == "private_key_jwt").then(|| json!({"keys": [SIGNER.with(Signer::jwk)]}));
    let registration = ClientRegistration {
        name: "service".into(),
        kind,
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        auth_method: Some(method.into()),
        jwks,
        jwks_uri: None,
    };
    let created =
        app.palisade.oauth_clients().register_as(None, "test", &registration, &RequestMeta::default()).await.unwrap();
    let secret = created.secret.map(|s| s.expose_secret().to_owned()).unwrap_or_default();
    (created.client.client_id, secret)
}

thread_local! {
    static SIGNER: Signer = Signer::new("svc-1");
}

/// POSTs `form` to the token endpoint with `basic` credentials if given; the status, the headers
/// that matter and the JSON body.
async fn token(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app.http.post(app.url("/oauth2/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// The issuer of the test configuration (the default: the tests do not set one).
const ISSUER: &str = "http://127.0.0.1:8080";

const SCOPES: [&str; 3] = ["orders:read", "orders:write", "openid"];

#[tokio::test]
async fn client_credentials_with_each_authentication_method() {
    let app = spawn_app().await;
    let grants = ["client_credentials"];
    let (basic_id, basic_secret) =
        register(&app, ClientKind::Confidential, "client_secret_basic", &grants, &SCOPES).await;
    let (post_id, post_secret) = register(&app, ClientKind::Confidential, "client_secret_post", &grants, &SCOPES).await;
    let (jwt_id, _) = register(&app, ClientKind::Confidential, "private_key_jwt", &grants, &SCOPES).await;

    // Basic, without a scope: every registered scope but those that need a user.
    let (status, headers, body) =
        token(&app, &[("grant_type", "client_credentials")], Some((&basic_id, &basic_secret))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "orders:read orders:write");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    let basic_token = body["access_token"].as_str().unwrap().to_owned();

    // Post, asking for one scope.
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "orders:read"),
        ("client_id", &post_id),
        ("client_secret", &post_secret),
    ];
    let (status, _, body) = token(&app, &form, None).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("orders:read")), "{body}");

    // private_key_jwt, with the assertion's aud the token endpoint.
    let now = app.palisade.clock().now().unix_timestamp();
    let aud = format!("{ISSUER}/oauth2/token");
    let assertion =
        SIGNER.with(|s| s.assertion(json!({"iss": jwt_id, "sub": jwt_id, "aud": aud, "exp": now + 60, "jti": "a-1"})));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", &assertion),
    ];
    let (status, _, body) = token(&app, &form, None).await;
    assert_eq!(status, 200, "{body}");
    // The same assertion again is a replay.
    let (status, headers, body) = token(&app, &form, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
    assert!(headers.contains_key("www-authenticate"));

    // PyJWT verifies the client's token with the server's published keys.
    let jwks: Value = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let claims = pyjwt_verify(&basic_token, &jwks, "palisade", ISSUER);
    assert_eq!(claims["sub"], basic_id.as_str());
    assert_eq!(claims["client_id"], basic_id.as_str());
    assert_eq!(claims["scope"], "orders:read orders:write");
    assert!(claims.get("sid").is_none(), "{claims}");

    // A client's token acts for no user.
    let profile = app.http.get(app.url("/auth/profile")).bearer_auth(&basic_token).send().await.unwrap();
    assert_eq!(profile.status(), 401);
    // What POST /tokens/validate answers from: a token with no session is no user's.
    assert!(app.palisade.auth().validate_token(&basic_token).await.is_err());

    let kinds = crate::audit_event_kinds(&app).await;
    assert_eq!(kinds.iter().filter(|k| *k == "oauth.token_issued").count(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "oauth.token_refused").count(), 1, "{kinds:?}");
}

/// What is tried, the form, the Basic credentials, and the status and error expected.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test]
async fn errors_are_rfc_6749_with_their_statuses() {
    let app = spawn_app().await;
    let (id, secret) =
        register(&app, ClientKind::Confidential, "client_secret_basic", &["client_credentials"], &SCOPES).await;
    let (code_id, code_secret) = register(&app, ClientKind::Confidential, "client_secret_basic", &[], &SCOPES).await;
    let (public_id, _) = register(&app, ClientKind::Public, "none", &[], &["openid"]).await;
    let cc = ("grant_type", "client_credentials");
    let good = Some((id.as_str(), secret.as_str()));
    let cases: Vec<Case> = vec![
        ("no grant_type", vec![], good, 400, "invalid_request"),
        ("an unknown grant", vec![("grant_type", "password")], good, 400, "unsupported_grant_type"),
        ("a grant the client lacks", vec![("grant_type", "authorization_code")], good, 400, "unauthorized_client"),
        ("a wrong secret", vec![cc], Some((id.as_str(), "wrong")), 401, "invalid_client"),
        ("an unknown client", vec![cc], Some(("nobody", "x")), 401, "invalid_client"),
        ("no authentication", vec![cc], None, 401, "invalid_client"),
        (
            "the basic client's secret in the form",
            vec![cc, ("client_id", &id), ("client_secret", &secret)],
            None,
            401,
            "invalid_client",
        ),
        ("two methods", vec![cc, ("client_secret", &secret)], good, 400, "invalid_request"),
        (
            "a repeated parameter",
            vec![cc, ("scope", "orders:read"), ("scope", "orders:write")],
            good,
            400,
            "invalid_request",
        ),
        ("a user scope", vec![cc, ("scope", "openid")], good, 400, "invalid_scope"),
        ("a scope not registered", vec![cc, ("scope", "orders:read billing:read")], good, 400, "invalid_scope"),
        (
            "a client without the grant",
            vec![cc],
            Some((code_id.as_str(), code_secret.as_str())),
            400,
            "unauthorized_client",
        ),
        ("a public client", vec![cc, ("client_id", &public_id)], None, 400, "unauthorized_client"),
        ("an assertion without its type", vec![cc, ("client_assertion", "a.b.c")], None, 400, "invalid_request"),
    ];
    for (what, form, basic, status, error) in cases {
        let (got, headers, body) = token(&app, &form, basic).await;
        assert_eq!((got, body["error"].as_str()), (status, Some(error)), "{what}: {body}");
        assert!(body["error_description"].is_string(), "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
        assert_eq!(headers.contains_key("www-authenticate"), status == 401, "{what}");
        // A refusal never tells why a client failed.
        if error == "invalid_client" {
            assert!(!body.to_string().contains("secret"), "{what}: {body}");
        }
    }
    // Not a form.
    let response = app
        .http
        .post(app.url("/oauth2/token"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Malformed Basic credentials.
    let garbage = base64::engine::general_purpose::STANDARD.encode("no-colon-here");
    let response = app
        .http
        .post(app.url("/oauth2/token"))
        .header("authorization", format!("Basic {garbage}"))
        .form(&[cc])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// The claims of `token` as PyJWT reads them, verified with the key of `jwks` its header names
/// (EdDSA, the default), the audience and the issuer.
fn pyjwt_verify(token: &str, jwks: &Value, audience: &str, issuer: &str) -> Value {
    const SCRIPT: &str = r#"
import json, sys, jwt
token, audience, issuer = sys.argv[1], sys.argv[2], sys.argv[3]
jwks = json.load(sys.stdin)
kid = jwt.get_unverified_header(token)["kid"]
key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience=audience, issuer=issuer,
                    options={"require": ["exp", "iat", "sub", "jti"]})
print(json.dumps(claims))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, token, audience, issuer])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with PyJWT is needed (pip install 'pyjwt[crypto]')");
    child.stdin.take().unwrap().write_all(jwks.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "PyJWT refused the token");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// POSTs `form` to `path` with Basic credentials when given: the status and the JSON body (null when
/// there is none).
async fn backchannel(app: &TestApp, path: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
    let mut request = app.http.post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A client-credentials token for the client of `basic`.
async fn issue(app: &TestApp, basic: Option<(&str, &str)>) -> String {
    let (status, _, body) = token(app, &[("grant_type", "client_credentials")], basic).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn introspection_and_revocation_for_authenticated_clients() {
    let app = spawn_app().await;
    let grants = ["client_credentials"];
    let (a_id, a_secret) = register(&app, ClientKind::Confidential, "client_secret_basic", &grants, &SCOPES).await;
    let (b_id, b_secret) = register(&app, ClientKind::Confidential, "client_secret_basic", &grants, &SCOPES).await;
    let (public_id, _) = register(&app, ClientKind::Public, "none", &[], &["openid"]).await;
    let (a, b) = (Some((a_id.as_str(), a_secret.as_str())), Some((b_id.as_str(), b_secret.as_str())));
    let a_token = issue(&app, a).await;

    // The client's own token: active, with what it carries.
    let (status, answer) = backchannel(&app, "/oauth2/introspect", &[("token", &a_token)], b).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["active"], true);
    assert_eq!((answer["client_id"].as_str(), answer["sub"].as_str()), (Some(a_id.as_str()), Some(a_id.as_str())));
    assert_eq!(answer["scope"], "orders:read orders:write");
    assert_eq!((answer["iss"].as_str(), answer["aud"].as_str()), (Some(ISSUER), Some("palisade")));
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["exp"].as_i64().unwrap() - answer["iat"].as_i64().unwrap(), 900);

    // A user's login token: active while the session lives.
    let user_id = crate::register_user(&app, "ada").await;
    let login = crate::login_user(&app, "ada").await;
    let user_token = login["access_token"].as_str().unwrap().to_owned();
    let (_, answer) =
        backchannel(&app, "/oauth2/introspect", &[("token", &user_token), ("token_type_hint", "access_token")], a)
            .await;
    assert_eq!((answer["active"].as_bool(), answer["sub"].as_str()), (Some(true), Some(user_id.as_str())), "{answer}");
    assert!(answer["client_id"].is_null());
    let logout = app.http.post(app.url("/auth/logout")).bearer_auth(&user_token).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    let (_, answer) = backchannel(&app, "/oauth2/introspect", &[("token", &user_token)], a).await;
    assert_eq!(answer, json!({"active": false}), "the session ended");

    // Inactive is all that is said about anything else.
    let (_, answer) = backchannel(&app, "/oauth2/introspect", &[("token", "not-a-token")], a).await;
    assert_eq!(answer, json!({"active": false}));
    // Only an authenticated confidential client may ask.
    assert_eq!(backchannel(&app, "/oauth2/introspect", &[("token", &a_token)], None).await.0, 401);
    assert_eq!(backchannel(&app, "/oauth2/introspect", &[("token", &a_token)], Some((&a_id, "wrong"))).await.0, 401);
    let (status, answer) =
        backchannel(&app, "/oauth2/introspect", &[("token", &a_token), ("client_id", &public_id)], None).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("invalid_client")));
    let (status, answer) = backchannel(&app, "/oauth2/introspect", &[], a).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")));

    // Revocation: only the client the token was issued to; then inactive everywhere at once.
    let (status, answer) = backchannel(&app, "/oauth2/revoke", &[("token", &a_token)], b).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("unauthorized_client")));
    let (_, answer) = backchannel(&app, "/oauth2/introspect", &[("token", &a_token)], a).await;
    assert_eq!(answer["active"], true, "a refused revocation changes nothing");
    assert_eq!(backchannel(&app, "/oauth2/revoke", &[("token", &a_token)], a).await.0, 200);
    for asker in [a, b] {
        let (_, answer) = backchannel(&app, "/oauth2/introspect", &[("token", &a_token)], asker).await;
        assert_eq!(answer, json!({"active": false}));
    }
    // A token that is invalid already needs nothing; a login's token is no client's to revoke.
    assert_eq!(backchannel(&app, "/oauth2/revoke", &[("token", "garbage")], a).await.0, 200);
    let other = crate::login_user(&app, "ada").await;
    let (status, answer) =
        backchannel(&app, "/oauth2/revoke", &[("token", other["access_token"].as_str().unwrap())], a).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("unauthorized_client")));
    // Another token of the same client is untouched.
    let fresh = issue(&app, a).await;
    assert_eq!(backchannel(&app, "/oauth2/introspect", &[("token", &fresh)], a).await.1["active"], true);

    let kinds = crate::audit_event_kinds(&app).await;
    assert_eq!(kinds.iter().filter(|k| *k == "oauth.token_revoked").count(), 1, "{kinds:?}");
    assert!(
        kinds.iter().filter(|k| *k == "oauth.token_refused").count() >= 4,
        "client failures and refused revocations: {kinds:?}"
    );
}

/// An address that keeps failing client authentication is throttled (429 with Retry-After) once it
/// reaches the login's per-address limit: the failures up to the limit are audited, the throttled
/// requests are not (a flood cannot fill the audit chain), and the right secret waits too.
#[tokio::test]
async fn failed_client_authentications_throttle_the_address_without_flooding_the_audit_chain() {
    let app = crate::spawn_app_with(&[("PALISADE_IP_MAX_LOGIN_FAILURES", "3")]).await;
    let (id, secret) =
        register(&app, ClientKind::Confidential, "client_secret_basic", &["client_credentials"], &SCOPES).await;
    let refused = |kinds: &[String]| kinds.iter().filter(|k| *k == "oauth.token_refused").count();
    for attempt in 1..=3 {
        let (status, _, body) = token(&app, &[("grant_type", "client_credentials")], Some((&id, "wrong"))).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "attempt {attempt}");
    }
    assert_eq!(refused(&crate::audit_event_kinds(&app).await), 3);
    for _ in 0..5 {
        let (status, headers, body) = token(&app, &[("grant_type", "client_credentials")], Some((&id, "wrong"))).await;
        assert_eq!((status, body["error"].as_str()), (429, Some("temporarily_unavailable")));
        let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
    }
    let (status, _, _) = token(&app, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
    assert_eq!(status, 429, "the address waits whatever it presents");
    let (status, _) = backchannel(&app, "/oauth2/introspect", &[("token", "x")], Some((&id, &secret))).await;
    assert_eq!(status, 429, "introspection shares the throttle");
    assert_eq!(refused(&crate::audit_event_kinds(&app).await), 3, "throttled requests are not audited");
}
