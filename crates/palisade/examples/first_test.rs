//! The original guide's "Premier Test": build a Palisade on SQLite, create a test user, authenticate
//! it, and print the outcome.
//!
//! Run: `cargo run -p palisade --example first_test`

use std::sync::Arc;

use palisade_core::Palisade;
use palisade_core::audit::RequestMeta;
use palisade_core::auth::{LoginOutcome, RegisterInput};
use palisade_core::clock::{Clock, SystemClock};
use palisade_core::crypto::MasterKey;
use secrecy::SecretString;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("palisade-first-test-{}", std::process::id()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stores =
        palisade_store::connect(&format!("sqlite://{}/palisade.db", dir.display()), None, clock.clone(), 4).await?;
    stores.migrate().await?;
    let palisade = Palisade::builder()
        .durable_store(stores.durable)
        .hot_store(stores.hot)
        .master_key(MasterKey::generate()?)
        .clock(clock)
        .build()
        .await?;
    println!("✅ Module de sécurité initialisé avec succès !");

    // Créer un utilisateur de test
    let user_id = palisade
        .auth()
        .register(
            RegisterInput {
                username: "test@example.com".into(),
                password: SecretString::from("SecurePassword123!"),
                email: Some("test@example.com".into()),
            },
            "example",
            &RequestMeta::default(),
        )
        .await?;
    println!("created user {user_id}");

    // Test d'authentification
    let meta = RequestMeta {
        ip: Some("127.0.0.1".into()),
        user_agent: Some("Test Agent".into()),
        request_id: None,
        accept_language: None,
    };
    let result = palisade.auth().login("test@example.com", SecretString::from("SecurePassword123!"), None, &meta).await;
    match result {
        Ok(LoginOutcome::Tokens(pair)) => {
            println!(
                "🎉 Authentification réussie ! session {} (access token valid {} s)",
                pair.session_id, pair.expires_in
            );
        }
        Ok(LoginOutcome::MfaRequired(step)) => {
            println!("🔐 second factor required: one of {:?}", step.methods);
        }
        Ok(LoginOutcome::ApprovalRequired(wait)) => {
            println!("📱 device {} waits for approval", wait.device_id);
        }
        Err(e) => println!("❌ Échec de l'authentification: {e}"),
    }

    let wrong = palisade.auth().login("test@example.com", SecretString::from("wrong password"), None, &meta).await;
    println!("with a wrong password: {}", wrong.err().map_or_else(|| "accepted (bug!)".to_owned(), |e| e.to_string()));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
