//! The OAuth client registry over HTTP (`/admin/clients`): confidential and public clients, the
//! defaults, every refusal naming its field, a secret shown once and kept only as a keyed hash, the
//! listing's order and cursor, deletion, the `admin` scope, and the audit chain.

use serde_json::{Value, json};

use crate::{TestApp, login_user as login, make_admin, register_user as register, spawn_app, status_json};

/// An administrator's access token (and a plain user's), on `app`.
async fn tokens(app: &TestApp) -> (String, String) {
    let admin_id = register(app, "registrar").await;
    register(app, "ursula").await;
    make_admin(app, &admin_id).await;
    let admin = login(app, "registrar").await["access_token"].as_str().unwrap().to_owned();
    let user = login(app, "ursula").await["access_token"].as_str().unwrap().to_owned();
    (admin, user)
}

async fn create(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    status_json(app.http.post(app.url("/admin/clients")).bearer_auth(token).json(body).send().await.unwrap()).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app.http.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The registered client `id` as the store holds it.
async fn stored(app: &TestApp, id: &str) -> palisade_core::oauth::OAuthClient {
    let all = app.palisade.oauth_clients().list_all(None, 1000).await.unwrap();
    all.into_iter().find(|c| c.client_id == id).unwrap_or_else(|| panic!("{id} is not stored"))
}

/// No member of `view` holds a secret or its hash.
fn shows_no_secret(view: &Value, secret: &str) {
    let text = view.to_string();
    assert!(!text.contains(secret), "the secret is shown again: {text}");
    for member in view.as_object().unwrap().keys() {
        assert!(!member.contains("secret") && !member.contains("hash"), "`{member}` in {text}");
    }
}

#[tokio::test]
async fn a_confidential_client_gets_its_secret_once_with_the_code_flow_defaults() {
    let app = spawn_app().await;
    let (admin, _) = tokens(&app).await;

    let (status, created) =
        create(&app, &admin, &json!({"client_name": "Shop", "redirect_uris": ["https://shop.example/callback"]})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url without padding: {secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{secret}");
    assert_eq!(created["client_name"], "Shop");
    assert_eq!(created["client_type"], "confidential");
    assert_eq!(created["redirect_uris"], json!(["https://shop.example/callback"]));
    assert_eq!(created["post_logout_redirect_uris"], json!([]));
    assert_eq!(created["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(created["scope"], "openid profile email");
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert!(created["jwks"].is_null() && created["jwks_uri"].is_null());
    assert!(created["created_at"].as_str().is_some_and(|t| t.contains('T')), "{created}");
    for member in created.as_object().unwrap().keys() {
        assert!(!member.contains("hash"), "`{member}` in {created}");
    }

    // Never again: neither the client nor the listing shows the secret or its hash.
    let (status, one) = get(&app, &admin, &format!("/admin/clients/{id}")).await;
    assert_eq!(status, 200);
    shows_no_secret(&one, &secret);
    // `created_at` aside: the 201 answer has the clock's nanoseconds, the store keeps microseconds.
    let mut without_secret = created.clone();
    without_secret.as_object_mut().unwrap().remove("client_secret");
    let at = |v: &mut Value| {
        let text = v.as_object_mut().unwrap().remove("created_at").unwrap();
        time::OffsetDateTime::parse(text.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    let mut one_view = one.clone();
    let (answered, kept) = (at(&mut without_secret), at(&mut one_view));
    assert!((answered - kept).abs() < time::Duration::microseconds(1), "{answered} / {kept}");
    assert_eq!(one_view, without_secret, "GET shows what was registered");
    let (_, list) = get(&app, &admin, "/admin/clients").await;
    assert_eq!(list["clients"].as_array().unwrap().len(), 1);
    shows_no_secret(&list["clients"][0], &secret);
    assert!(!list.to_string().contains(&secret));

    // The store keeps a keyed hash that the secret, and only the secret, matches.
    let client = stored(&app, &id).await;
    let hash = client.secret_hash.as_deref().unwrap();
    assert!(!hash.is_empty() && hash != secret.as_bytes(), "a hash, not the secret");
    let registry = app.palisade.oauth_clients();
    assert!(registry.secret_matches(&client, secret.as_bytes()).await.unwrap());
    let mut wrong = secret.clone().into_bytes();
    wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
    assert!(!registry.secret_matches(&client, &wrong).await.unwrap());
    assert!(!registry.secret_matches(&client, b"").await.unwrap());

    // Two registrations, two different secrets.
    let (_, other) =
        create(&app, &admin, &json!({"client_name": "Shop", "redirect_uris": ["https://shop.example/callback"]})).await;
    assert_ne!(other["client_secret"], created["client_secret"]);
    assert_ne!(other["client_id"], created["client_id"]);
    let other_client = stored(&app, other["client_id"].as_str().unwrap()).await;
    assert!(!registry.secret_matches(&other_client, secret.as_bytes()).await.unwrap());

    // client_secret_post is a secret method too.
    let (status, post) = create(
        &app,
        &admin,
        &json!({"client_name": "Form", "redirect_uris": ["https://form.example/cb"],
                "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    assert_eq!(status, 201, "{post}");
    assert_eq!(post["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(post["client_secret"].as_str().unwrap().len(), 43);
}

#[tokio::test]
async fn public_and_machine_and_key_clients_register_as_asked() {
    let app = spawn_app().await;
    let (admin, _) = tokens(&app).await;

    // A public native app: loopback http and a private-use scheme, no secret, `none`.
    let (status, public) = create(
        &app,
        &admin,
        &json!({"client_name": "Phone", "client_type": "public",
                "redirect_uris": ["http://127.0.0.1:8123/cb", "com.example.phone:/callback", "http://[::1]/cb"],
                "post_logout_redirect_uris": ["com.example.phone:/bye"], "scope": "openid offline"}),
    )
    .await;
    assert_eq!(status, 201, "{public}");
    assert_eq!(public["client_type"], "public");
    assert_eq!(public["token_endpoint_auth_method"], "none");
    assert!(public["client_secret"].is_null(), "{public}");
    assert_eq!(public["scope"], "openid offline");
    assert_eq!(public["post_logout_redirect_uris"], json!(["com.example.phone:/bye"]));
    assert_eq!(public["grant_types"], json!(["authorization_code", "refresh_token"]));
    let client = stored(&app, public["client_id"].as_str().unwrap()).await;
    assert!(client.secret_hash.is_none() && client.hash_key_id.is_none());
    assert!(!app.palisade.oauth_clients().secret_matches(&client, b"anything").await.unwrap());

    // A service: client_credentials only, no redirect URI needed.
    let (status, machine) = create(
        &app,
        &admin,
        &json!({"client_name": "Batch", "grant_types": ["client_credentials"], "scope": "read:reports"}),
    )
    .await;
    assert_eq!(status, 201, "{machine}");
    assert_eq!(machine["grant_types"], json!(["client_credentials"]));
    assert_eq!(machine["redirect_uris"], json!([]));
    assert_eq!(machine["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(machine["client_secret"].as_str().unwrap().len(), 43);

    // private_key_jwt with its public keys inline: returned as registered, and no secret.
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
                                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
    let (status, keyed) = create(
        &app,
        &admin,
        &json!({"client_name": "Signed", "redirect_uris": ["https://signed.example/cb"],
                "grant_types": ["authorization_code", "client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}),
    )
    .await;
    assert_eq!(status, 201, "{keyed}");
    assert_eq!(keyed["jwks"], jwks);
    assert!(keyed["jwks_uri"].is_null() && keyed["client_secret"].is_null());
    assert_eq!(keyed["grant_types"], json!(["authorization_code", "client_credentials"]));
    let (_, again) = get(&app, &admin, &format!("/admin/clients/{}", keyed["client_id"].as_str().unwrap())).await;
    assert_eq!(again["jwks"], jwks, "GET returns the keys as registered");

    // private_key_jwt with a JWK Set URL.
    let (status, remote) = create(
        &app,
        &admin,
        &json!({"client_name": "Remote", "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://remote.example/jwks.json"}),
    )
    .await;
    assert_eq!(status, 201, "{remote}");
    assert_eq!(remote["jwks_uri"], "https://remote.example/jwks.json");
    assert!(remote["jwks"].is_null() && remote["client_secret"].is_null());
}

#[tokio::test]
async fn every_bad_registration_is_a_422_naming_its_field_and_stores_nothing() {
    let app = spawn_app().await;
    let (admin, _) = tokens(&app).await;
    let cb = "https://shop.example/cb";
    let key = json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("http off loopback", json!({"redirect_uris": ["http://shop.example/cb"]}), "redirect_uris"),
        ("fragment", json!({"redirect_uris": ["https://shop.example/cb#top"]}), "redirect_uris"),
        ("wildcard", json!({"redirect_uris": ["https://*.shop.example/cb"]}), "redirect_uris"),
        ("credentials", json!({"redirect_uris": ["https://u:p@shop.example/cb"]}), "redirect_uris"),
        ("relative", json!({"redirect_uris": ["/cb"]}), "redirect_uris"),
        ("private-use scheme, confidential", json!({"redirect_uris": ["com.example.app:/cb"]}), "redirect_uris"),
        ("code flow without a redirect", json!({"redirect_uris": []}), "redirect_uris"),
        (
            "post-logout http",
            json!({"redirect_uris": [cb], "post_logout_redirect_uris": ["http://shop.example/bye"]}),
            "post_logout_redirect_uris",
        ),
        (
            "public client_credentials",
            json!({"client_type": "public", "grant_types": ["client_credentials"]}),
            "grant_types",
        ),
        (
            "public with a secret method",
            json!({"client_type": "public", "redirect_uris": [cb], "token_endpoint_auth_method": "client_secret_basic"}),
            "token_endpoint_auth_method",
        ),
        (
            "confidential with none",
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "none"}),
            "token_endpoint_auth_method",
        ),
        (
            "unknown method",
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "tls_client_auth"}),
            "token_endpoint_auth_method",
        ),
        (
            "private_key_jwt without keys",
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "private_key_jwt"}),
            "jwks",
        ),
        (
            "private_key_jwt with both",
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "private_key_jwt",
                   "jwks": {"keys": [key]}, "jwks_uri": "https://shop.example/jwks"}),
            "jwks",
        ),
        (
            "private_key_jwt with a private key",
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "private_key_jwt",
                   "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "private"}]}}),
            "jwks",
        ),
        (
            "private_key_jwt with an empty set",
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}}),
            "jwks",
        ),
        (
            "private_key_jwt with an http jwks_uri",
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "private_key_jwt",
                   "jwks_uri": "http://shop.example/jwks"}),
            "jwks_uri",
        ),
        ("keys without private_key_jwt", json!({"redirect_uris": [cb], "jwks": {"keys": [key]}}), "jwks"),
        (
            "a symmetric key",
            json!({"redirect_uris": [cb], "token_endpoint_auth_method": "private_key_jwt",
                   "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            "jwks",
        ),
        ("admin scope", json!({"redirect_uris": [cb], "scope": "openid admin"}), "scope"),
        ("monitoring scope", json!({"redirect_uris": [cb], "scope": "monitoring:read"}), "scope"),
        ("a session scope", json!({"redirect_uris": [cb], "scope": "openid user"}), "scope"),
        ("bad scope token", json!({"redirect_uris": [cb], "scope": "openid \"quoted\""}), "scope"),
        ("implicit", json!({"redirect_uris": [cb], "grant_types": ["implicit"]}), "grant_types"),
        ("refresh alone", json!({"redirect_uris": [cb], "grant_types": ["refresh_token"]}), "grant_types"),
        ("unknown client_type", json!({"redirect_uris": [cb], "client_type": "trusted"}), "client_type"),
        ("blank name", json!({"redirect_uris": [cb], "client_name": "  "}), "client_name"),
    ];
    for (case, mut body, field) in cases {
        if body.get("client_name").is_none() {
            body["client_name"] = json!("Shop");
        }
        let (status, problem) = create(&app, &admin, &body).await;
        assert_eq!(status, 422, "{case}: {problem}");
        assert_eq!(problem["code"], "VALIDATION_ERROR", "{case}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{field}: ")), "{case}: `{detail}` does not name {field}");
    }
    // A member RFC 7591 has but Palisade does not take is refused, not ignored.
    let (status, _) =
        create(&app, &admin, &json!({"client_name": "Shop", "redirect_uris": [cb], "software_id": "x"})).await;
    assert!(status == 400 || status == 422, "{status}");

    let (_, list) = get(&app, &admin, "/admin/clients").await;
    assert_eq!(list["clients"], json!([]), "no refused registration was stored");
    assert!(!audit_kinds(&app).await.iter().any(|k| k == "oauth.client_created"));
}

async fn audit_kinds(app: &TestApp) -> Vec<String> {
    crate::audit_event_kinds(app).await
}

#[tokio::test]
async fn clients_are_listed_by_id_with_a_cursor_fetched_and_deleted_and_both_are_audited() {
    let app = spawn_app().await;
    let (admin, _) = tokens(&app).await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let (status, c) =
            create(&app, &admin, &json!({"client_name": name, "grant_types": ["client_credentials"]})).await;
        assert_eq!(status, 201);
        ids.push(c["client_id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    let listed = |list: &Value| -> Vec<String> {
        list["clients"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap().to_owned()).collect()
    };

    let (status, list) = get(&app, &admin, "/admin/clients").await;
    assert_eq!(status, 200);
    assert_eq!(listed(&list), ids, "ordered by id");
    let (_, page) = get(&app, &admin, &format!("/admin/clients?after={}", ids[0])).await;
    assert_eq!(listed(&page), ids[1..], "those after the cursor");
    let (_, page) = get(&app, &admin, &format!("/admin/clients?after={}&limit=1", ids[0])).await;
    assert_eq!(listed(&page), ids[1..2]);
    let (_, page) = get(&app, &admin, &format!("/admin/clients?after={}", ids[2])).await;
    assert_eq!(listed(&page), Vec::<String>::new(), "past the last");

    let (status, one) = get(&app, &admin, &format!("/admin/clients/{}", ids[1])).await;
    assert_eq!(status, 200);
    assert_eq!(one["client_id"], ids[1]);
    let (status, missing) = get(&app, &admin, "/admin/clients/no-such-client").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["code"], "NOT_FOUND");

    let delete = |id: String| app.http.delete(app.url(&format!("/admin/clients/{id}"))).bearer_auth(&admin).send();
    assert_eq!(delete(ids[1].clone()).await.unwrap().status(), 204);
    assert_eq!(get(&app, &admin, &format!("/admin/clients/{}", ids[1])).await.0, 404);
    assert_eq!(delete(ids[1].clone()).await.unwrap().status(), 404, "gone");
    let (_, list) = get(&app, &admin, "/admin/clients").await;
    assert_eq!(listed(&list), [ids[0].clone(), ids[2].clone()]);

    // Both events are in the chain, about the client, by the administrator; the chain holds.
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    let created: Vec<_> = records.iter().filter(|r| r.kind == "oauth.client_created").collect();
    assert_eq!(created.len(), 3);
    let deleted: Vec<_> = records.iter().filter(|r| r.kind == "oauth.client_deleted").collect();
    assert_eq!(deleted.len(), 1, "the refused second delete is not an event");
    assert_eq!(deleted[0].subject.as_deref(), Some(ids[1].as_str()));
    assert_eq!(deleted[0].outcome, "success");
    let first = created.iter().find(|r| r.subject.as_deref() == Some(ids[1].as_str())).unwrap();
    assert!(first.details.contains("client_credentials"), "{}", first.details);
    assert!(first.actor.is_some() && first.actor == deleted[0].actor, "{:?} / {:?}", first.actor, deleted[0].actor);
    assert!(first.request_id.is_some());
    assert!(app.palisade.audit().verify().await.unwrap().broken.is_none());
}

#[tokio::test]
async fn only_administrators_reach_the_registry() {
    let app = spawn_app().await;
    let (admin, user) = tokens(&app).await;
    let (_, created) =
        create(&app, &admin, &json!({"client_name": "Kept", "grant_types": ["client_credentials"]})).await;
    let id = created["client_id"].as_str().unwrap();
    let body = json!({"client_name": "Sneaky", "grant_types": ["client_credentials"]});
    let path = format!("/admin/clients/{id}");

    let as_user = [
        app.http.post(app.url("/admin/clients")).bearer_auth(&user).json(&body),
        app.http.get(app.url("/admin/clients")).bearer_auth(&user),
        app.http.get(app.url(&path)).bearer_auth(&user),
        app.http.delete(app.url(&path)).bearer_auth(&user),
    ];
    for request in as_user {
        let (status, problem) = status_json(request.send().await.unwrap()).await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["code"], "INSUFFICIENT_SCOPE");
    }
    let anonymous = [
        app.http.post(app.url("/admin/clients")).json(&body),
        app.http.get(app.url("/admin/clients")),
        app.http.get(app.url(&path)),
        app.http.delete(app.url(&path)),
    ];
    for request in anonymous {
        assert_eq!(request.send().await.unwrap().status(), 401);
    }
    let (_, list) = get(&app, &admin, "/admin/clients").await;
    assert_eq!(list["clients"].as_array().unwrap().len(), 1, "nothing registered or deleted by them: {list}");
}
