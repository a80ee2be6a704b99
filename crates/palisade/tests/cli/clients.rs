//! `palisade client create/list/delete`: the secret printed once as JSON, never listed, deletion, and
//! a bad registration refused with exit 1 naming the field.

use super::{palisade, run};

#[tokio::test]
async fn clients_are_created_listed_and_deleted_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (output, stdout, stderr) = run(palisade(dir.path()).args([
        "client",
        "create",
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/callback",
        "--scope",
        "openid",
        "--scope",
        "orders:read",
    ]));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let created: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "{created}");
    assert_eq!(created["client_type"], "confidential");
    assert_eq!(created["scope"], "openid orders:read");
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created["redirect_uris"], serde_json::json!(["https://shop.example/callback"]));
    assert!(stderr.contains("only this once"), "{stderr}");
    assert!(!stderr.contains(&secret), "the secret goes to standard output only");

    // A public client: no secret.
    let (output, stdout, stderr) = run(palisade(dir.path()).args([
        "client",
        "create",
        "--name",
        "Phone",
        "--type",
        "public",
        "--redirect-uri",
        "com.example.phone:/cb",
    ]));
    assert!(output.status.success(), "{stderr}");
    let public: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(public["client_secret"].is_null(), "{public}");
    assert_eq!(public["token_endpoint_auth_method"], "none");

    // private_key_jwt with the keys in a file.
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]});
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();
    let (output, stdout, stderr) = run(palisade(dir.path())
        .args(["client", "create", "--name", "Signed", "--grant", "client_credentials"])
        .args(["--auth-method", "private_key_jwt", "--jwks-file"])
        .arg(&file));
    assert!(output.status.success(), "{stderr}");
    let signed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(signed["jwks"], jwks);
    assert!(signed["client_secret"].is_null());

    // Listed as JSON lines, never with the secret.
    let (output, stdout, _) = run(palisade(dir.path()).args(["client", "list"]));
    assert!(output.status.success());
    let listed: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 3, "{stdout}");
    let shop = listed.iter().find(|c| c["client_id"] == id.as_str()).unwrap();
    assert_eq!(shop["client_name"], "Shop");
    assert!(shop.get("client_secret").is_none(), "{shop}");
    assert!(!stdout.contains(&secret), "the secret is never listed");

    let (output, stdout, _) = run(palisade(dir.path()).args(["client", "delete", &id]));
    assert!(output.status.success(), "{stdout}");
    let (_, stdout, _) = run(palisade(dir.path()).args(["client", "list"]));
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(!stdout.contains(&id), "{stdout}");
    let (output, _, stderr) = run(palisade(dir.path()).args(["client", "delete", &id]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("no client"), "{stderr}");

    // A bad redirect URI: exit 1, the field named, nothing registered.
    let (output, stdout, stderr) = run(palisade(dir.path()).args([
        "client",
        "create",
        "--name",
        "Plain",
        "--redirect-uri",
        "http://plain.example/cb",
    ]));
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stderr.contains("redirect_uris") && stderr.contains("loopback"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let (output, _, stderr) = run(palisade(dir.path()).args(["client", "create", "--name", "X", "--type", "trusted"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("--type"), "{stderr}");
    let (_, stdout, _) = run(palisade(dir.path()).args(["client", "list"]));
    assert_eq!(stdout.lines().count(), 2, "{stdout}");

    // Creations and the deletion are audited by the command line, and the chain holds.
    let url = format!("sqlite://{}/palisade.db", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let events: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT kind, actor, subject FROM audit_log WHERE kind LIKE 'oauth.client_%' ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds, ["oauth.client_created", "oauth.client_created", "oauth.client_created", "oauth.client_deleted"]);
    assert_eq!(events[3].2.as_deref(), Some(id.as_str()));
    assert!(events.iter().all(|(_, actor, _)| actor.as_deref() == Some("cli")), "{events:?}");
    let (output, stdout, _) = run(palisade(dir.path()).args(["audit", "verify"]));
    assert!(output.status.success(), "{stdout}");
}
