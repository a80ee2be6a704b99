//! Palisade embedded in an application (the original guide's `SecurityManager`): open the stores on
//! SQLite, build the facade, encrypt a field bound to its owner, audit an action and verify the chain.
//!
//! Run: `cargo run -p palisade --example embedded`

use std::sync::Arc;

use palisade_core::Palisade;
use palisade_core::audit::{AuditEvent, AuditKind, Outcome};
use palisade_core::clock::{Clock, SystemClock};
use palisade_core::crypto::{DataClassification, EncryptionContext, MasterKey};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("palisade-example-{}", std::process::id()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    // Durable store on a SQLite file; the hot store shares it (pass a Redis URL to use Redis).
    let database_url = format!("sqlite://{}/palisade.db", dir.display());
    let stores = palisade_store::connect(&database_url, None, clock.clone(), 4).await?;
    stores.migrate().await?;

    // In production the master key comes from a secret manager (PALISADE_MASTER_KEY for the server).
    let palisade = Palisade::builder()
        .durable_store(stores.durable)
        .hot_store(stores.hot)
        .master_key(MasterKey::generate()?)
        .clock(clock)
        .build()
        .await?;
    println!("✅ Palisade initialised on {}", dir.display());

    // Field-level encryption: the ciphertext only opens for the same field of the same user.
    let mut context = EncryptionContext::new(DataClassification::Pii, "profile");
    context.user_id = Some("user-42".into());
    context.field = Some("phone".into());
    let envelope = palisade.keyring().encrypt(b"+33 6 12 34 56 78", &context).await?;
    println!("encrypted: {}", envelope.to_compact());
    let plain = palisade.keyring().decrypt(&envelope, &context).await?;
    println!("decrypted: {}", String::from_utf8_lossy(&plain));
    context.user_id = Some("user-43".into());
    println!(
        "for another user: {}",
        palisade.keyring().decrypt(&envelope, &context).await.map_or("refused", |_| "OPENED (bug!)")
    );

    // The audit chain.
    palisade.audit().append(AuditEvent::new(AuditKind::DiagnosticsRun, Outcome::Success).actor("example")).await?;
    let report = palisade.audit().verify().await?;
    println!("audit chain: {} records verified, broken: {:?}", report.verified, report.broken);

    for check in palisade.diagnose().await {
        println!("{:<14} {:<4} {}", check.name, if check.ok { "OK" } else { "FAIL" }, check.detail);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
