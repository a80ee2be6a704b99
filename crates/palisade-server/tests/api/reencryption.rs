//! Re-encryption of Palisade's own sealed data over HTTP: `POST /admin/keys/rotate {"key":"data"}`
//! makes a new data key and moves every second factor and signing key under it in the background;
//! `GET /admin/keys/rotation` shows the guide's `reencryption_progress`, `pending_tasks` and
//! `estimated_completion`; the factors keep working afterwards.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use palisade_core::clock::{Clock, ManualClock};
use palisade_core::crypto::Envelope;
use palisade_core::mfa::totp::TotpSecret;
use palisade_core::mfa::{FactorKind, FactorRecord};
use palisade_core::user::{User, UserId, Username};
use serde_json::{Value, json};
use time::Duration;

use crate::{PASSWORD, TestApp, make_admin, register_user, spawn_app_with_clock, status_json};

async fn bearer_get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    status_json(app.http.get(app.url(path)).bearer_auth(token).send().await.unwrap()).await
}

async fn bearer_post(app: &TestApp, path: &str, token: &str, body: &Value) -> (u16, Value) {
    status_json(app.http.post(app.url(path)).bearer_auth(token).json(body).send().await.unwrap()).await
}

async fn login(app: &TestApp, username: &str) -> Value {
    let body = json!({"username": username, "password": PASSWORD});
    status_json(app.http.post(app.url("/auth/login")).json(&body).send().await.unwrap()).await.1
}

/// `count` users made straight in the store, each with a pending factor of every kind whose secret
/// is sealed as the MFA service seals it; returns each factor's id and secret.
async fn seed_factors(app: &TestApp, users: usize) -> Vec<(uuid::Uuid, Vec<u8>)> {
    let store = app.palisade.durable_store();
    let now = app.palisade.clock().now();
    let mut made = Vec::new();
    for n in 0..users {
        let user = User {
            id: UserId::generate(),
            username: Username::parse(&format!("seeded-{n}")).unwrap(),
            email: None,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2VlZGVkc2VlZGVk$c2VlZGVkc2VlZGVkc2VlZGVkc2VlZGVkc2VlZGVk"
                .into(),
            password_changed_at: now,
            created_at: now,
            locked: false,
            admin: false,
        };
        store.insert_user(&user).await.unwrap();
        for kind in [FactorKind::Totp, FactorKind::Sms, FactorKind::Email] {
            let id = uuid::Uuid::now_v7();
            let secret = format!("secret of {n} {}", kind.as_str()).into_bytes();
            let context = palisade_core::mfa::factor_context(user.id, kind, id);
            let sealed = app.palisade.keyring().encrypt(&secret, &context).await.unwrap().to_compact();
            let factor = FactorRecord { id, user_id: user.id, kind, sealed, created_at: now, confirmed_at: None };
            assert!(store.put_pending_factor(&factor).await.unwrap());
            made.push((id, secret));
        }
    }
    made
}

/// Polls the rotation status until its job is no longer running.
async fn until_finished(app: &TestApp, admin: &str) -> Value {
    for _ in 0..400 {
        let (status, body) = bearer_get(app, "/admin/keys/rotation", admin).await;
        assert_eq!(status, 200, "{body}");
        if body["job"]["state"] != "running" {
            return body;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("the re-encryption did not finish in 20 s");
}

#[tokio::test]
async fn rotating_the_data_key_reencrypts_every_factor_and_signing_key_and_reports_progress() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()));
    // Small batches paced at 400 rows/s: the job runs for a while, with several checkpoints.
    let settings = [("PALISADE_ENCRYPTION_REENCRYPT_BATCH_SIZE", "7"), ("PALISADE_ENCRYPTION_REENCRYPT_RATE", "400")];
    let app = spawn_app_with_clock(&settings, clock.clone()).await;
    let root = register_user(&app, "root").await;
    make_admin(&app, &root).await;
    let admin = login(&app, "root").await["access_token"].as_str().unwrap().to_owned();

    // Before any rotation: version 1, no job, nothing pending.
    let (status, before) = bearer_get(&app, "/admin/keys/rotation", &admin).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!((before["active_version"].as_u64(), before["job"].is_null()), (Some(1), true), "{before}");
    assert_eq!((before["reencryption_progress"].as_f64(), before["pending_tasks"].as_u64()), (Some(1.0), Some(0)));
    let made = before["last_rotation"].as_str().unwrap();
    let next = before["next_rotation"].as_str().unwrap();
    let parse = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
    // Palisade's own data is RESTRICTED: its key follows that class's period (90 days by default).
    assert_eq!(parse(next) - parse(made), Duration::days(90));

    // Alice uses an authenticator app, set up through the API.
    register_user(&app, "alice").await;
    let access = login(&app, "alice").await["access_token"].as_str().unwrap().to_owned();
    let (status, setup) = bearer_post(&app, "/auth/mfa/totp/setup", &access, &json!({})).await;
    assert_eq!(status, 200, "{setup}");
    let secret = TotpSecret::from_base32(setup["secret"].as_str().unwrap()).unwrap();
    let at = |clock: &ManualClock| u64::try_from(clock.now().unix_timestamp()).unwrap();
    let code = secret.code_at(at(&clock)).unwrap();
    let confirm = app.http.post(app.url("/auth/mfa/totp/confirm")).bearer_auth(&access).json(&json!({"code": code}));
    assert_eq!(confirm.send().await.unwrap().status(), 204);
    let seeded = seed_factors(&app, 20).await;
    let factors = seeded.len() + 1;
    let signing_keys = app.palisade.durable_store().signing_keys().await.unwrap().len();

    let (status, rotated) = bearer_post(&app, "/admin/keys/rotate", &admin, &json!({"key": "data"})).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!((rotated["family"].as_str(), rotated["version"].as_u64()), (Some("data"), Some(2)), "{rotated}");
    let job = &rotated["reencryption"];
    assert_eq!((job["state"].as_str(), job["target_version"].as_u64()), (Some("running"), Some(2)), "{rotated}");
    assert_eq!(job["total"].as_u64(), Some(u64::try_from(factors + signing_keys).unwrap()), "{rotated}");

    // Asking again while it runs does not start a second scan.
    let mut seen_midway = false;
    for _ in 0..200 {
        let (_, status) = bearer_get(&app, "/admin/keys/rotation", &admin).await;
        if status["job"]["state"] != "running" {
            break;
        }
        let progress = status["reencryption_progress"].as_f64().unwrap();
        if progress > 0.0 && progress < 1.0 {
            seen_midway = true;
            assert!(status["pending_tasks"].as_u64().unwrap() > 0, "{status}");
            assert_eq!(status["job"]["id"], job["id"], "one job: {status}");
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert!(seen_midway, "the paced job was never seen half done");

    let done = until_finished(&app, &admin).await;
    assert_eq!(done["job"]["state"], "completed", "{done}");
    assert_eq!(done["job"]["id"], job["id"]);
    assert_eq!((done["reencryption_progress"].as_f64(), done["pending_tasks"].as_u64()), (Some(1.0), Some(0)));
    assert_eq!(done["active_version"].as_u64(), Some(2));
    assert!(done["estimated_completion"].is_string(), "{done}");
    // Every row was under version 1, and each was sealed again exactly once.
    assert_eq!(done["job"]["rewritten"].as_u64(), Some(u64::try_from(factors + signing_keys).unwrap()), "{done}");

    // In the store: every seeded factor under version 2, still opening to its secret.
    let store = app.palisade.durable_store();
    for (id, secret) in &seeded {
        let page = store.factor_page(Some(uuid::Uuid::nil()), 1000).await.unwrap();
        let factor = page.iter().find(|f| f.id == *id).unwrap();
        let envelope = Envelope::parse_compact(&factor.sealed).unwrap();
        assert_eq!(envelope.key_version, 2, "factor {id}");
        let context = palisade_core::mfa::factor_context(factor.user_id, factor.kind, factor.id);
        assert_eq!(app.palisade.keyring().decrypt(&envelope, &context).await.unwrap().as_slice(), secret.as_slice());
    }
    for key in store.signing_keys().await.unwrap() {
        assert_eq!(Envelope::parse_compact(&key.private_key).unwrap().key_version, 2, "{}", key.kid);
    }

    // Alice's authenticator still works (her secret was re-encrypted, not changed).
    clock.advance(Duration::seconds(30));
    let challenge = login(&app, "alice").await;
    let mfa_token = challenge["mfa_token"].as_str().unwrap();
    let body = json!({"mfa_token": mfa_token, "method": "totp", "code": secret.code_at(at(&clock)).unwrap()});
    let (status, pair) =
        status_json(app.http.post(app.url("/auth/mfa/verify")).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 200, "{pair}");

    // The end is audited with its counts.
    let records = store.audit_records(0, 10_000).await.unwrap();
    let ended = records.iter().find(|r| r.kind == "key.reencrypted").expect("a key.reencrypted record");
    let details: Value = serde_json::from_str(&ended.details).unwrap();
    assert_eq!(
        (details["state"].as_str(), details["rewritten"].as_u64()),
        (Some("completed"), done["job"]["rewritten"].as_u64())
    );
}

#[tokio::test]
async fn reencrypt_is_refused_for_other_keys_and_only_admins_see_the_rotation() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()));
    let app = spawn_app_with_clock(&[], clock).await;
    let root = register_user(&app, "root").await;
    make_admin(&app, &root).await;
    let admin = login(&app, "root").await["access_token"].as_str().unwrap().to_owned();
    for body in [
        json!({"key": "data", "class": "RESTRICTED", "reencrypt": true}),
        json!({"key": "signing", "reencrypt": true}),
        json!({"key": "audit", "reencrypt": true}),
    ] {
        let (status, problem) = bearer_post(&app, "/admin/keys/rotate", &admin, &body).await;
        assert_eq!((status, problem["code"].as_str()), (422, Some("VALIDATION_ERROR")), "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("/crypto/rewrap"), "{problem}");
    }
    // Nothing was rotated by the refusals.
    let (_, status) = bearer_get(&app, "/admin/keys/rotation", &admin).await;
    assert_eq!(status["active_version"].as_u64(), Some(1));

    // `reencrypt: false` rotates without a job.
    let body = json!({"key": "data", "reencrypt": false});
    let (status, rotated) = bearer_post(&app, "/admin/keys/rotate", &admin, &body).await;
    assert_eq!((status, rotated["version"].as_u64()), (200, Some(2)), "{rotated}");
    assert!(rotated.get("reencryption").is_none(), "{rotated}");
    let (_, status) = bearer_get(&app, "/admin/keys/rotation", &admin).await;
    assert_eq!((status["active_version"].as_u64(), status["job"].is_null()), (Some(2), true), "{status}");

    register_user(&app, "bob").await;
    let user = login(&app, "bob").await["access_token"].as_str().unwrap().to_owned();
    let (status, problem) = bearer_get(&app, "/admin/keys/rotation", &user).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("INSUFFICIENT_SCOPE")), "{problem}");
}
