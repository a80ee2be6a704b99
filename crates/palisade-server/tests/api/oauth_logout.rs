//! RP-initiated logout (`/oauth2/logout`) over HTTP: with an `id_token_hint` the browser is signed
//! out at once and sent back to a registered `post_logout_redirect_uri` with its `state`; a forged
//! hint or an unregistered address is an error page that redirects nowhere; without a hint the
//! user confirms on a page whose form works once, and only in that browser. Signing out ends the
//! browser's sign-in and the grants it gave (their refresh and access tokens).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::oauth_cases::{assert_error_page, confidential, direct_code, signed_in};
use crate::oauth_flow::{Answer, Browser, Client, POST_LOGOUT, Pkce, authorize_url, exchange, refresh, userinfo};
use crate::{TestApp, register_user};

const STATE: &str = "bye &1";

fn logout_url(app: &TestApp, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/oauth2/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// Whether `browser` is still signed in: a request it consented to comes straight back with a code.
async fn is_signed_in(app: &TestApp, browser: &mut Browser, client: &Client) -> bool {
    let answer = browser.get(&authorize_url(app, &client.id, "openid", &Pkce::new(), &[])).await;
    match answer.status {
        303 => {
            assert!(answer.redirect_params().contains_key("code"), "{:?}", answer.location);
            true
        }
        200 => {
            assert!(answer.body.contains("action=\"/oauth2/authorize/login\""), "{}", answer.body);
            false
        }
        other => panic!("{other}: {}", answer.body),
    }
}

/// Asserts that `answer` clears the browser cookie.
fn assert_cookie_cleared(answer: &Answer) {
    let cookies: Vec<&str> =
        answer.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("palisade_browser=;") && c.contains("Max-Age=0") && c.contains("Path=/oauth2")),
        "{cookies:?}"
    );
}

/// Asserts that the grant `tokens` gave is over: its refresh and access tokens are refused.
async fn assert_grant_ended(app: &TestApp, client: &Client, tokens: &Value) {
    let (status, body) = refresh(app, client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert_eq!(userinfo(app, tokens["access_token"].as_str().unwrap()).await.0, 401);
}

#[tokio::test]
async fn logout_with_an_id_token_hint_signs_out_and_returns_to_the_client_with_its_state() {
    let app = crate::oauth_flow::oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, tokens) = signed_in(&app, &client, "alice", "openid").await;
    let cookie = browser.cookie.clone().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    // A code issued before the logout, redeemed after it.
    let pkce = Pkce::new();
    let code = direct_code(&app, &mut browser, &client, "openid", &pkce).await;

    let answer = browser
        .get(&logout_url(
            &app,
            &[("id_token_hint", id_token), ("post_logout_redirect_uri", POST_LOGOUT), ("state", STATE)],
        ))
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = url::Url::parse(answer.location.as_deref().unwrap()).unwrap();
    assert_eq!(location.as_str().split('?').next(), Some(POST_LOGOUT));
    let query: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(query, vec![("state".to_owned(), STATE.to_owned())]);
    assert_cookie_cleared(&answer);
    assert!(browser.cookie.is_none());

    // Signed out on the server too: the old cookie, presented again, is not signed in.
    browser.cookie = Some(cookie);
    assert!(!is_signed_in(&app, &mut browser, &client).await);
    assert_grant_ended(&app, &client, &tokens).await;
    let (status, body) = exchange(&app, &client, &code, &pkce.verifier).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");

    // An expired-session hint still works for the redirect (nothing left to end).
    let mut fresh = Browser::new();
    let again =
        fresh.get(&logout_url(&app, &[("id_token_hint", id_token), ("post_logout_redirect_uri", POST_LOGOUT)])).await;
    assert_eq!((again.status, again.location.as_deref()), (303, Some(POST_LOGOUT)), "{}", again.body);
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_is_an_error_page_and_nothing_ends() {
    let app = crate::oauth_flow::oidc_app(&[]).await;
    let client = confidential(&app).await;
    let other = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, tokens) = signed_in(&app, &client, "alice", "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();

    for uri in ["https://evil.example/bye", "https://rp.example/bye/", "https://rp.example/cb"] {
        let answer =
            browser.get(&logout_url(&app, &[("id_token_hint", id_token), ("post_logout_redirect_uri", uri)])).await;
        assert_error_page(&answer);
        assert!(answer.headers.get("set-cookie").is_none(), "the cookie stays");
    }
    // Without the client named (no hint, no client_id), no address can be checked: refused too.
    let answer = browser.get(&logout_url(&app, &[("post_logout_redirect_uri", POST_LOGOUT)])).await;
    assert_error_page(&answer);
    // A client_id that is not the hint's audience.
    let answer = browser
        .get(&logout_url(
            &app,
            &[("id_token_hint", id_token), ("client_id", &other.id), ("post_logout_redirect_uri", POST_LOGOUT)],
        ))
        .await;
    assert_error_page(&answer);

    assert!(is_signed_in(&app, &mut browser, &client).await);
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.0, 200);
}

#[tokio::test]
async fn a_forged_or_garbage_id_token_hint_is_an_error_page() {
    let app = crate::oauth_flow::oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let bob = register_user(&app, "bob").await;
    let (mut browser, tokens) = signed_in(&app, &client, "alice", "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // The real token with its payload changed (bob instead of alice), the signature kept.
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = Value::from(bob);
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    let forged = parts.join(".");
    // An unsigned token ("alg": "none") with the real claims.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", id_token.split('.').nth(1).unwrap());
    // The access token is ours and signed, but it is not an ID token.
    let access = tokens["access_token"].as_str().unwrap();

    // Without a post_logout_redirect_uri, so that only the hint can be the reason.
    for hint in [forged.as_str(), unsigned.as_str(), "garbage", "a.b.c", access] {
        let answer = browser.get(&logout_url(&app, &[("id_token_hint", hint)])).await;
        assert_error_page(&answer);
        assert!(answer.headers.get("set-cookie").is_none());
    }
    assert!(is_signed_in(&app, &mut browser, &client).await);
    assert_eq!(userinfo(&app, access).await.0, 200);
}

#[tokio::test]
async fn logout_without_a_hint_asks_for_confirmation_in_that_browser_only() {
    let app = crate::oauth_flow::oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    register_user(&app, "mallory").await;
    let (mut browser, tokens) = signed_in(&app, &client, "alice", "openid").await;

    // A link without a hint: a page asking, and nothing ends yet.
    let page = browser
        .get(&logout_url(
            &app,
            &[("client_id", &client.id), ("post_logout_redirect_uri", POST_LOGOUT), ("state", STATE)],
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/oauth2/logout\""), "{}", page.body);
    assert!(page.body.contains("Shop &lt;Demo&gt; &amp; Co"), "{}", page.body);
    assert!(page.headers.get("set-cookie").is_none());
    let confirm = page.hidden("confirm");
    assert!(is_signed_in(&app, &mut browser, &client).await);

    // The confirmation posted from another browser (signed in or not): expired, nothing ends.
    let (mut mallory, _) = signed_in(&app, &client, "mallory", "openid").await;
    let answer = mallory.post(&app.url("/oauth2/logout"), &[("confirm", &confirm)]).await;
    assert_error_page(&answer);
    assert!(answer.body.contains("expired"), "{}", answer.body);
    let answer = Browser::new().post(&app.url("/oauth2/logout"), &[("confirm", &confirm)]).await;
    assert_error_page(&answer);
    assert!(is_signed_in(&app, &mut browser, &client).await);
    assert!(is_signed_in(&app, &mut mallory, &client).await);
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.0, 200);

    // A fresh confirmation, posted by the browser itself: signed out, back to the client.
    let page = browser
        .get(&logout_url(
            &app,
            &[("client_id", &client.id), ("post_logout_redirect_uri", POST_LOGOUT), ("state", STATE)],
        ))
        .await;
    let confirm = page.hidden("confirm");
    let cookie = browser.cookie.clone().unwrap();
    let answer = browser.post(&app.url("/oauth2/logout"), &[("confirm", &confirm)]).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = url::Url::parse(answer.location.as_deref().unwrap()).unwrap();
    assert_eq!(location.query_pairs().into_owned().collect::<Vec<_>>(), vec![("state".to_owned(), STATE.to_owned())]);
    assert_cookie_cleared(&answer);
    browser.cookie = Some(cookie.clone());
    assert!(!is_signed_in(&app, &mut browser, &client).await);
    assert_grant_ended(&app, &client, &tokens).await;
    // The form works once.
    browser.cookie = Some(cookie);
    let again = browser.post(&app.url("/oauth2/logout"), &[("confirm", &confirm)]).await;
    assert_error_page(&again);

    // Without a redirect: a page saying so.
    let pkce = Pkce::new();
    let page = mallory.get(&logout_url(&app, &[])).await;
    let answer = mallory.post(&app.url("/oauth2/logout"), &[("confirm", &page.hidden("confirm"))]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("You are signed out."), "{}", answer.body);
    assert_cookie_cleared(&answer);
    let login = mallory.get(&authorize_url(&app, &client.id, "openid", &pkce, &[])).await;
    assert!(login.body.contains("action=\"/oauth2/authorize/login\""), "{}", login.body);
}

#[tokio::test]
async fn logout_also_ends_what_the_browsers_earlier_sign_ins_gave() {
    let app = crate::oauth_flow::oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    let (mut browser, first) = signed_in(&app, &client, "alice", "openid").await;

    // The client asks for a fresh sign-in (step-up): a second sign-in in the same browser.
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("prompt", "login")])).await;
    let back = browser.sign_in(&app, &page, "alice").await;
    let (status, second) = exchange(&app, &client, &back.redirect_params()["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(userinfo(&app, first["access_token"].as_str().unwrap()).await.0, 200, "re-signing in ends nothing");

    // Logging out of the browser ends both sign-ins' grants, not only the latest's.
    let answer = browser.get(&logout_url(&app, &[("id_token_hint", second["id_token"].as_str().unwrap())])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("You are signed out."), "{}", answer.body);
    assert_grant_ended(&app, &client, &second).await;
    assert_grant_ended(&app, &client, &first).await;
}

#[tokio::test]
async fn another_user_signing_in_ends_the_previous_users_sign_in_in_that_browser() {
    let app = crate::oauth_flow::oidc_app(&[]).await;
    let client = confidential(&app).await;
    register_user(&app, "alice").await;
    register_user(&app, "bob").await;
    let (mut browser, alice) = signed_in(&app, &client, "alice", "openid").await;
    let cookie = browser.cookie.clone().unwrap();

    // On the same browser, bob signs in (prompt=login shows the form) and consents.
    let pkce = Pkce::new();
    let page = browser.get(&authorize_url(&app, &client.id, "openid", &pkce, &[("prompt", "login")])).await;
    let consent = browser.sign_in(&app, &page, "bob").await;
    let back = browser.allow(&app, &consent).await;
    let (status, bob) = exchange(&app, &client, &back.redirect_params()["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{bob}");
    assert_ne!(
        crate::oauth_flow::claims(bob["id_token"].as_str().unwrap())["sub"],
        crate::oauth_flow::claims(alice["id_token"].as_str().unwrap())["sub"]
    );

    // Alice's sign-in there is over, with what it gave; her old cookie signs in no one.
    assert_grant_ended(&app, &client, &alice).await;
    let mut old = Browser::new();
    old.cookie = Some(cookie);
    assert!(!is_signed_in(&app, &mut old, &client).await);
    assert_eq!(userinfo(&app, bob["access_token"].as_str().unwrap()).await.0, 200);
}
