//! Administration: the `admin` scope comes from the administrator role; without it every /admin
//! route is 403.

use serde_json::{Value, json};

use crate::{PASSWORD, login_user as login, make_admin, register_user as register, spawn_app};

#[tokio::test]
async fn administrators_list_lock_and_revoke_and_others_cannot() {
    let app = spawn_app().await;
    let admin_id = register(&app, "root-of-trust").await;
    let user_id = register(&app, "victor").await;
    make_admin(&app, &admin_id).await;

    let admin = login(&app, "root-of-trust").await;
    let admin_token = admin["access_token"].as_str().unwrap();
    let user = login(&app, "victor").await;
    let user_token = user["access_token"].as_str().unwrap();

    let list = app.http.get(app.url("/admin/users")).bearer_auth(admin_token).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["users"].as_array().unwrap().len(), 2);
    assert!(list["users"].as_array().unwrap().iter().any(|u| u["username"] == "root-of-trust" && u["admin"] == true));

    let denied = app.http.get(app.url("/admin/users")).bearer_auth(user_token).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.json::<Value>().await.unwrap()["code"], "INSUFFICIENT_SCOPE");

    // A user's key, revoked by the administrator.
    let key: Value = app
        .http
        .post(app.url("/auth/api-keys"))
        .bearer_auth(user_token)
        .json(&json!({"name": "k", "scopes": ["user"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all: Value =
        app.http.get(app.url("/admin/api-keys")).bearer_auth(admin_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(all["api_keys"].as_array().unwrap().len(), 1);
    let id = key["api_key_id"].as_str().unwrap();
    let revoked =
        app.http.delete(app.url(&format!("/admin/api-keys/{id}"))).bearer_auth(admin_token).send().await.unwrap();
    assert_eq!(revoked.status(), 204);
    let used = app
        .http
        .get(app.url("/auth/profile"))
        .header("x-api-key", key["api_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 401);
    let not_theirs =
        app.http.delete(app.url(&format!("/admin/api-keys/{id}"))).bearer_auth(user_token).send().await.unwrap();
    assert_eq!(not_theirs.status(), 403);

    // Locking ends the user's sessions at once; unlocking lets them in again.
    let locked =
        app.http.post(app.url(&format!("/admin/users/{user_id}/lock"))).bearer_auth(admin_token).send().await.unwrap();
    assert_eq!(locked.status(), 204);
    assert_eq!(app.http.get(app.url("/auth/profile")).bearer_auth(user_token).send().await.unwrap().status(), 401);
    let r = app
        .http
        .post(app.url("/auth/login"))
        .json(&json!({"username": "victor", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let self_lock =
        app.http.post(app.url(&format!("/admin/users/{admin_id}/lock"))).bearer_auth(admin_token).send().await.unwrap();
    assert_eq!(self_lock.status(), 422, "an administrator cannot lock themselves out");
    let unlocked = app
        .http
        .post(app.url(&format!("/admin/users/{user_id}/unlock")))
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(unlocked.status(), 204);
    login(&app, "victor").await;
}

#[tokio::test]
async fn an_administrator_revokes_one_access_token_and_its_session_goes_on() {
    let app = spawn_app().await;
    let admin_id = register(&app, "warden").await;
    register(&app, "xena").await;
    make_admin(&app, &admin_id).await;
    let admin = login(&app, "warden").await;
    let admin_token = admin["access_token"].as_str().unwrap();
    let user = login(&app, "xena").await;
    let user_token = user["access_token"].as_str().unwrap();
    assert_eq!(app.http.get(app.url("/auth/profile")).bearer_auth(user_token).send().await.unwrap().status(), 200);

    let revoke = |by: &str, token: &str| {
        app.http.post(app.url("/admin/tokens/revoke")).bearer_auth(by).json(&json!({"token": token})).send()
    };
    assert_eq!(revoke(user_token, admin_token).await.unwrap().status(), 403, "only administrators");
    assert_eq!(revoke(admin_token, user_token).await.unwrap().status(), 204);
    let refused = app.http.get(app.url("/auth/profile")).bearer_auth(user_token).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "TOKEN_REVOKED");
    assert_eq!(problem["require_reauth"], false, "only the token: the session goes on");
    // The session's refresh token still works and gives a fresh, accepted access token.
    let refreshed: Value = app
        .http
        .post(app.url("/auth/refresh"))
        .json(&json!({"refresh_token": user["refresh_token"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = refreshed["access_token"].as_str().unwrap();
    assert_eq!(app.http.get(app.url("/auth/profile")).bearer_auth(fresh).send().await.unwrap().status(), 200);
    assert_eq!(revoke(admin_token, "not.a.token").await.unwrap().status(), 401);
}
