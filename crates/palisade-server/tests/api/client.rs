//! The typed client (palisade-client) against a live server: every route it covers, and problems
//! surfacing as typed errors.

use palisade_client::{Client, ClientError};
use palisade_types::api_keys::{CreateApiKeyRequest, RateLimitSpec, ValidateApiKeyRequest};
use palisade_types::auth::{LoginRequest, PasswordChangeRequest, RegisterRequest};

use crate::spawn_app;

#[tokio::test]
async fn the_typed_client_drives_every_route() {
    let app = spawn_app().await;
    let client = Client::new(&app.address).unwrap();
    let password = "correct-Horse-battery-9-staple".to_owned();
    let registered = client
        .register(&RegisterRequest { username: "ursula".into(), password: password.clone(), email: None })
        .await
        .unwrap();
    let login = LoginRequest {
        username: "ursula".into(),
        password: password.clone(),
        device: None,
        remember_device: false,
        device_token: None,
    };
    let tokens = client.login(&login).await.unwrap().into_tokens().unwrap();
    assert_eq!(tokens.user_id, registered.user_id);
    assert_eq!(client.profile(&tokens.access_token).await.unwrap().username, "ursula");
    assert_eq!(client.sessions(&tokens.access_token).await.unwrap().sessions.len(), 1);
    assert!(client.jwks().await.unwrap()["keys"].as_array().is_some_and(|k| !k.is_empty()));

    let rotated = client.refresh(&tokens.refresh_token).await.unwrap();
    match client.refresh(&tokens.refresh_token).await {
        Err(ClientError::Problem(problem)) => {
            assert_eq!(problem.code, "TOKEN_REVOKED");
            assert_eq!(problem.require_reauth, Some(true));
        }
        other => panic!("a reused refresh token must be a TOKEN_REVOKED problem: {other:?}"),
    }
    assert!(client.profile(&rotated.access_token).await.is_err(), "the family (and session) ended");

    let tokens = client.login(&login).await.unwrap().into_tokens().unwrap();
    let create = |name: &str, scopes: &[&str]| CreateApiKeyRequest {
        name: name.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        expires_in: None,
        rate_limit: Some(RateLimitSpec { requests_per_minute: Some(50), ..RateLimitSpec::default() }),
        ip_whitelist: None,
    };
    let key = client.create_api_key(&tokens.access_token, &create("k", &["read"])).await.unwrap();
    let checker = client
        .create_api_key(&tokens.access_token, &create("c", &["api-keys:validate", "tokens:validate"]))
        .await
        .unwrap();
    assert_eq!(client.api_keys(&tokens.access_token).await.unwrap().api_keys.len(), 2);
    let answer = client
        .validate_api_key(
            &checker.api_key,
            &ValidateApiKeyRequest {
                api_key: key.api_key.clone(),
                required_scopes: vec!["read".into()],
                ip_address: None,
            },
        )
        .await
        .unwrap();
    assert!(answer.valid);
    assert_eq!(answer.rate_limit_remaining, Some(49));
    assert!(client.validate_token(&checker.api_key, &tokens.access_token).await.unwrap().valid);
    client.revoke_api_key(&tokens.access_token, &key.api_key_id).await.unwrap();

    client
        .change_password(
            &tokens.access_token,
            &PasswordChangeRequest { current_password: password, new_password: "another-Strong-passphrase-77".into() },
        )
        .await
        .unwrap();
    client.logout(&tokens.access_token).await.unwrap();
    assert!(!client.validate_token(&checker.api_key, &tokens.access_token).await.unwrap().valid);

    // Administration, once the user is an administrator.
    crate::make_admin(&app, &registered.user_id).await;
    let login = LoginRequest {
        username: "ursula".into(),
        password: "another-Strong-passphrase-77".into(),
        device: None,
        remember_device: false,
        device_token: None,
    };
    let admin = client.login(&login).await.unwrap().into_tokens().unwrap();
    let other = client
        .register(&RegisterRequest {
            username: "vera".into(),
            password: "correct-Horse-battery-9-staple".into(),
            email: None,
        })
        .await
        .unwrap();
    assert_eq!(client.admin_users(&admin.access_token, 10).await.unwrap().users.len(), 2);
    client.admin_set_locked(&admin.access_token, &other.user_id, true).await.unwrap();
    assert!(
        client
            .admin_users(&admin.access_token, 10)
            .await
            .unwrap()
            .users
            .iter()
            .any(|u| u.username == "vera" && u.locked)
    );
    client.admin_set_locked(&admin.access_token, &other.user_id, false).await.unwrap();
    assert_eq!(client.admin_api_keys(&admin.access_token).await.unwrap().api_keys.len(), 2);
    client.admin_revoke_api_key(&admin.access_token, &checker.api_key_id).await.unwrap();
    let second = client.login(&login).await.unwrap().into_tokens().unwrap();
    client.admin_revoke_token(&admin.access_token, &second.access_token).await.unwrap();
    assert!(client.profile(&second.access_token).await.is_err());
}

#[tokio::test]
async fn the_typed_client_drives_the_second_factor_routes() {
    use palisade_core::mfa::totp::TotpSecret;
    use palisade_types::mfa::FactorRemovalRequest;

    let app = crate::spawn_app_with(&[
        ("PALISADE_WEBAUTHN_RP_ID", "example.test"),
        ("PALISADE_WEBAUTHN_ORIGIN", "https://login.example.test"),
    ])
    .await;
    let client = Client::new(&app.address).unwrap();
    let password = "correct-Horse-battery-9-staple".to_owned();
    client
        .register(&RegisterRequest { username: "vera".into(), password: password.clone(), email: None })
        .await
        .unwrap();
    let login = LoginRequest {
        username: "vera".into(),
        password: password.clone(),
        device: None,
        remember_device: false,
        device_token: None,
    };
    let access = client.login(&login).await.unwrap().into_tokens().unwrap().access_token;

    let status = client.mfa_status(&access).await.unwrap();
    assert_eq!((status.methods.len(), status.available), (0, vec!["totp".to_owned(), "webauthn".to_owned()]));
    let setup = client.totp_setup(&access).await.unwrap();
    let secret = TotpSecret::from_base32(&setup.secret).unwrap();
    let now = || u64::try_from(app.palisade.clock().now().unix_timestamp()).unwrap();
    client.mfa_confirm(&access, "totp", &secret.code_at(now()).unwrap()).await.unwrap();
    assert_eq!(client.mfa_status(&access).await.unwrap().methods, ["totp"]);

    let step = client.login(&login).await.unwrap().into_mfa_required().unwrap();
    assert_eq!(step.methods, ["totp", "backup_code"]);
    match client.mfa_verify(&step.mfa_token, "totp", "12345").await {
        Err(ClientError::Problem(problem)) => {
            assert_eq!((problem.status, problem.code.as_str()), (422, "VALIDATION_ERROR"))
        }
        other => panic!("a 5-digit code must be a VALIDATION_ERROR problem: {other:?}"),
    }
    let tokens =
        client.mfa_verify(&step.mfa_token, "backup_code", &setup.backup_codes[0]).await.unwrap().into_tokens().unwrap();
    let fresh = client.regenerate_backup_codes(&tokens.access_token).await.unwrap();
    assert_eq!(fresh.backup_codes.len(), 10);
    assert!(client.passkeys(&tokens.access_token).await.unwrap().credentials.is_empty());
    let ceremony = client.passkey_register_start(&tokens.access_token).await.unwrap();
    assert!(ceremony.options["publicKey"]["challenge"].is_string());
    match client.mfa_send("sms", &step.mfa_token).await {
        Err(ClientError::Problem(problem)) => assert_eq!(problem.status, 401, "the mfa_token is spent"),
        other => panic!("{other:?}"),
    }
    let proof = FactorRemovalRequest { password: Some(password), code: None };
    client.remove_factor(&tokens.access_token, "totp", &proof).await.unwrap();
    assert!(client.login(&login).await.unwrap().into_tokens().is_some());
}
