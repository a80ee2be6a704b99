//! The resource-server guard (palisade-guard) protecting a separate axum application, against a live
//! Palisade server: JWKS fetched from it, tokens verified locally, scopes per route.

use axum::Extension;
use axum::routing::get;
use palisade_guard::{Claims, Guard};

use crate::{login_user, register_user, spawn_app};

#[tokio::test]
async fn a_guarded_application_accepts_palisade_tokens_and_checks_scopes() {
    let palisade = spawn_app().await;
    register_user(&palisade, "yusuf").await;
    let tokens = login_user(&palisade, "yusuf").await;
    let token = tokens["access_token"].as_str().unwrap();

    // The issuer is the test configuration's default PALISADE_ISSUER.
    let guard = Guard::new(&palisade.address, "http://127.0.0.1:8080", "palisade").await.unwrap();
    let users: &'static [&'static str] = &["user"];
    let admins: &'static [&'static str] = &["admin"];
    let app = axum::Router::new()
        .route(
            "/whoami",
            get(|Extension(claims): Extension<Claims>| async move { claims.sub })
                .layer(axum::middleware::from_fn_with_state((guard.clone(), users), Guard::require)),
        )
        .route(
            "/admin",
            get(|| async { "secret" })
                .layer(axum::middleware::from_fn_with_state((guard.clone(), admins), Guard::require)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();

    let ok = http.get(format!("{address}/whoami")).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), tokens["user_id"].as_str().unwrap());
    let forbidden = http.get(format!("{address}/admin")).bearer_auth(token).send().await.unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(http.get(format!("{address}/whoami")).send().await.unwrap().status(), 401);
    let mut tampered = token.to_owned();
    tampered.push('x');
    assert_eq!(http.get(format!("{address}/whoami")).bearer_auth(&tampered).send().await.unwrap().status(), 401);

    // Another issuer's or audience's guard refuses the same token.
    let elsewhere = Guard::new(&palisade.address, "https://other.example", "palisade").await.unwrap();
    assert!(elsewhere.verify(token).await.is_err());
    let other_audience = Guard::new(&palisade.address, "http://127.0.0.1:8080", "billing").await.unwrap();
    assert!(other_audience.verify(token).await.is_err());
    assert_eq!(guard.verify(token).await.unwrap().sid, tokens["session_id"].as_str().unwrap());
}

#[tokio::test]
async fn remote_validation_sees_a_logout_that_local_verification_cannot() {
    let palisade = spawn_app().await;
    register_user(&palisade, "zelda").await;
    let tokens = login_user(&palisade, "zelda").await;
    let token = tokens["access_token"].as_str().unwrap();
    let key: serde_json::Value = palisade
        .http
        .post(palisade.url("/auth/api-keys"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "guard", "scopes": ["tokens:validate"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let local = Guard::new(&palisade.address, "http://127.0.0.1:8080", "palisade").await.unwrap();
    let remote = Guard::with_remote_validation(
        &palisade.address,
        "http://127.0.0.1:8080",
        "palisade",
        key["api_key"].as_str().unwrap(),
    )
    .await
    .unwrap();
    assert!(remote.verify(token).await.is_ok());
    let out = palisade.http.post(palisade.url("/auth/logout")).bearer_auth(token).send().await.unwrap();
    assert_eq!(out.status(), 204);
    assert!(local.verify(token).await.is_ok(), "local verification cannot know of the logout");
    assert!(remote.verify(token).await.is_err(), "remote validation refuses it at once");
}

/// A rotation seen by a guard that cached the JWK Set before it: the first token signed with the new
/// key names a `kid` the guard does not know, and it fetches the set again — unless it fetched it
/// less than its minimum interval ago, when the token is refused.
#[tokio::test]
async fn a_guard_fetches_the_jwk_set_again_for_a_key_made_after_it_started() {
    use palisade_core::clock::{Clock as _, ManualClock, SystemClock};
    use palisade_core::token::keys::ACTIVATION_DELAY;
    use std::time::Duration;

    // The server's clock runs three minutes behind, so that after the activation delay its tokens
    // are still current for the guard, which checks them against the real time.
    let clock = std::sync::Arc::new(ManualClock::new(SystemClock.now() - time::Duration::minutes(3)));
    let palisade = crate::spawn_app_with_clock(&[], clock.clone()).await;
    register_user(&palisade, "zainab").await;
    let issuer = "http://127.0.0.1:8080";
    let eager = Guard::with_min_refetch(&palisade.address, issuer, "palisade", Duration::ZERO).await.unwrap();
    let patient =
        Guard::with_min_refetch(&palisade.address, issuer, "palisade", Duration::from_secs(3600)).await.unwrap();
    let before = login_user(&palisade, "zainab").await;
    assert!(eager.verify(before["access_token"].as_str().unwrap()).await.is_ok());

    let new = palisade.palisade.signing_keys().rotate().await.unwrap();
    clock.advance(ACTIVATION_DELAY);
    palisade.palisade.signing_keys().refresh().await.unwrap();
    let after = login_user(&palisade, "zainab").await;
    let token = after["access_token"].as_str().unwrap();
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], new.kid.as_str(), "signed with the new key");

    let refused = patient.verify(token).await.unwrap_err();
    assert!(refused.to_string().contains("unknown signing key"), "{refused}");
    assert_eq!(eager.verify(token).await.unwrap().sid, after["session_id"].as_str().unwrap());
    // The token of the old key still verifies after the refetch (both keys are published).
    assert!(eager.verify(before["access_token"].as_str().unwrap()).await.is_ok());
}
