//! The OAuth client registry port — clients read back exactly (lists, optional keys and hashes),
//! a taken id refused, the listing in byte order with its cursor, deletion, and the schema's own
//! refusals (a secret without its key, a public client with a method, a malformed list) — identical
//! on SQLite and PostgreSQL.

use palisade_core::crypto::KeyPurpose;
use palisade_core::oauth::{ClientKind, GrantType, OAuthClient, TokenAuthMethod};
use palisade_core::store::OAuthConsent;

use crate::mfa::T0;
use crate::support::{DurableHarness, conformance};
use crate::users::{inserted, user};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        clients_read_back_exactly,
        a_taken_client_id_is_refused,
        clients_list_in_byte_order_after_the_cursor,
        deleting_a_client_is_reported_once,
        the_schema_refuses_inconsistent_clients,
        consents_are_one_per_user_and_client_and_go_with_either,
    ]
);

async fn data_key(h: &DurableHarness) -> uuid::Uuid {
    let key = h.store.data_keys(KeyPurpose::Data).await.unwrap();
    if let Some(k) = key.first() {
        return k.id;
    }
    let key = palisade_core::crypto::WrappedDataKey {
        id: uuid::Uuid::now_v7(),
        purpose: KeyPurpose::Data,
        version: 1,
        provider: "local".into(),
        wrapped: vec![7; 60],
        created_at: T0,
    };
    assert!(h.store.insert_data_key(&key).await.unwrap());
    key.id
}

fn confidential(id: &str, key: uuid::Uuid) -> OAuthClient {
    OAuthClient {
        client_id: id.into(),
        name: "Shop ✓ \"quoted\"".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some(vec![3; 32]),
        hash_key_id: Some(key),
        redirect_uris: vec!["https://shop.example/cb".into(), "http://127.0.0.1:9000/cb?x=1&y=2".into()],
        post_logout_redirect_uris: vec!["https://shop.example/bye".into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials],
        scopes: vec!["openid".into(), "profile".into(), "orders:read".into()],
        auth_method: TokenAuthMethod::ClientSecretBasic,
        jwks: None,
        jwks_uri: None,
        created_at: T0,
        created_by: None,
    }
}

fn public(id: &str) -> OAuthClient {
    OAuthClient {
        client_id: id.into(),
        name: "App".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        hash_key_id: None,
        redirect_uris: vec!["com.example.app:/callback".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec!["openid".into()],
        auth_method: TokenAuthMethod::None,
        jwks: None,
        jwks_uri: None,
        created_at: T0,
        created_by: None,
    }
}

pub async fn clients_read_back_exactly(h: &DurableHarness) {
    let key = data_key(h).await;
    let admin = user("admin", None);
    inserted(h, &admin).await;
    let mut one = confidential("client-1", key);
    one.created_by = Some(admin.id);
    let mut jwt = confidential("client-2", key);
    jwt.secret_hash = None;
    jwt.hash_key_id = None;
    jwt.auth_method = TokenAuthMethod::PrivateKeyJwt;
    jwt.jwks = Some(r#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}"#.into());
    let app = public("client-3");
    for c in [&one, &jwt, &app] {
        h.store.insert_oauth_client(c).await.unwrap();
    }
    for c in [one, jwt, app] {
        assert_eq!(h.store.oauth_client(&c.client_id).await.unwrap(), Some(c));
    }
    assert_eq!(h.store.oauth_client("nobody").await.unwrap(), None);
}

pub async fn a_taken_client_id_is_refused(h: &DurableHarness) {
    let key = data_key(h).await;
    h.store.insert_oauth_client(&confidential("same", key)).await.unwrap();
    assert!(h.store.insert_oauth_client(&public("same")).await.is_err());
    assert_eq!(h.store.oauth_client("same").await.unwrap().unwrap().kind, ClientKind::Confidential);
}

pub async fn clients_list_in_byte_order_after_the_cursor(h: &DurableHarness) {
    for id in ["b", "B", "a", "é", "a-2"] {
        h.store.insert_oauth_client(&public(id)).await.unwrap();
    }
    let ids = |cs: Vec<OAuthClient>| cs.into_iter().map(|c| c.client_id).collect::<Vec<_>>();
    assert_eq!(ids(h.store.oauth_clients(None, 10).await.unwrap()), ["B", "a", "a-2", "b", "é"]);
    assert_eq!(ids(h.store.oauth_clients(Some("a"), 2).await.unwrap()), ["a-2", "b"]);
    assert_eq!(ids(h.store.oauth_clients(Some("é"), 10).await.unwrap()), Vec::<String>::new());
}

pub async fn deleting_a_client_is_reported_once(h: &DurableHarness) {
    h.store.insert_oauth_client(&public("gone")).await.unwrap();
    assert!(h.store.delete_oauth_client("gone").await.unwrap());
    assert!(!h.store.delete_oauth_client("gone").await.unwrap());
    assert_eq!(h.store.oauth_client("gone").await.unwrap(), None);
}

pub async fn the_schema_refuses_inconsistent_clients(h: &DurableHarness) {
    let key = data_key(h).await;
    let mut no_key = confidential("x1", key);
    no_key.hash_key_id = None;
    let mut public_with_method = public("x2");
    public_with_method.auth_method = TokenAuthMethod::ClientSecretPost;
    let mut secret_without_method = confidential("x3", key);
    secret_without_method.auth_method = TokenAuthMethod::PrivateKeyJwt;
    let mut unknown_key = confidential("x4", key);
    unknown_key.hash_key_id = Some(uuid::Uuid::now_v7());
    for bad in [no_key, public_with_method, secret_without_method, unknown_key] {
        assert!(h.store.insert_oauth_client(&bad).await.is_err(), "{}", bad.client_id);
    }
    assert!(h.store.oauth_clients(None, 10).await.unwrap().is_empty());
}

pub async fn consents_are_one_per_user_and_client_and_go_with_either(h: &DurableHarness) {
    let alice = user("alice", None);
    let bob = user("bob", None);
    inserted(h, &alice).await;
    inserted(h, &bob).await;
    for id in ["b-app", "a-app"] {
        h.store.insert_oauth_client(&public(id)).await.unwrap();
    }
    let consent = |client: &str, scopes: &[&str], at| OAuthConsent {
        client_id: client.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        granted_at: at,
    };
    assert_eq!(h.store.oauth_consent(alice.id, "a-app").await.unwrap(), None);
    h.store.put_oauth_consent(alice.id, &consent("b-app", &["openid"], T0)).await.unwrap();
    h.store.put_oauth_consent(alice.id, &consent("a-app", &["openid"], T0)).await.unwrap();
    // A second consent to the same client replaces the first.
    let later = T0 + time::Duration::hours(1);
    let wider = consent("b-app", &["openid", "email \"quoted\""], later);
    h.store.put_oauth_consent(alice.id, &wider).await.unwrap();
    assert_eq!(h.store.oauth_consent(alice.id, "b-app").await.unwrap(), Some(wider.clone()));
    let listed = h.store.oauth_consents(alice.id).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.client_id.as_str()).collect::<Vec<_>>(), ["a-app", "b-app"]);
    assert!(h.store.oauth_consents(bob.id).await.unwrap().is_empty(), "consents are per user");
    // A consent to an unknown client is refused by the schema.
    assert!(h.store.put_oauth_consent(bob.id, &consent("nobody", &["openid"], T0)).await.is_err());
    assert!(h.store.delete_oauth_consent(alice.id, "a-app").await.unwrap());
    assert!(!h.store.delete_oauth_consent(alice.id, "a-app").await.unwrap());
    // Deleting the client takes its consents with it.
    assert!(h.store.delete_oauth_client("b-app").await.unwrap());
    assert!(h.store.oauth_consents(alice.id).await.unwrap().is_empty());
}
