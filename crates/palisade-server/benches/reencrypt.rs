//! How fast the background re-encryption moves Palisade's own sealed data to a new data key: each
//! iteration rotates the data key and runs the whole job (page of factors read, each envelope
//! opened under the old key and sealed under the new one, the batch's rewrites and checkpoint
//! committed in one transaction) over 10,002 second factors in a SQLite file, unpaced, batches of
//! 500 (the default). The counter is rows, so divan prints rows/s.
//!
//! Run: `cargo bench -p palisade-server --bench reencrypt`

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use divan::Bencher;
use divan::counter::ItemsCount;
use palisade_core::Palisade;
use palisade_core::clock::SystemClock;
use palisade_core::crypto::reencrypt::{JobState, RunOutcome};
use palisade_core::mfa::{FactorKind, FactorRecord};
use palisade_core::user::{User, UserId, Username};
use palisade_server::config::{Config, Sources};

/// Users seeded; each has a factor of every kind.
const USERS: usize = 3334;

fn main() {
    divan::main();
}

fn fixture() -> (tokio::runtime::Runtime, Arc<Palisade>, tempfile::TempDir) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let config: Config = Config::load_from(Sources::default()).expect("config");
    let settings = palisade_server::app::settings(&config).expect("settings");
    let palisade = runtime.block_on(async {
        let url = format!("sqlite://{}/palisade.db", dir.path().display());
        let stores = palisade_store::connect(&url, None, Arc::new(SystemClock), 4).await.expect("stores");
        stores.migrate().await.expect("migrate");
        let palisade = Palisade::builder()
            .durable_store(stores.durable)
            .hot_store(stores.hot)
            .clock(Arc::new(SystemClock))
            .master_key(palisade_core::crypto::MasterKey::from_bytes([0x2a; 32]))
            .settings(settings)
            .build()
            .await
            .expect("build");
        seed(&palisade).await;
        palisade
    });
    (runtime, Arc::new(palisade), dir)
}

async fn seed(palisade: &Palisade) {
    let store = palisade.durable_store();
    let now = palisade.clock().now();
    for n in 0..USERS {
        let user = User {
            id: UserId::generate(),
            username: Username::parse(&format!("user-{n}")).unwrap(),
            email: None,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            password_changed_at: now,
            created_at: now,
            locked: false,
            admin: false,
        };
        store.insert_user(&user).await.unwrap();
        for kind in [FactorKind::Totp, FactorKind::Sms, FactorKind::Email] {
            let id = uuid::Uuid::now_v7();
            let context = palisade_core::mfa::factor_context(user.id, kind, id);
            let sealed = palisade.keyring().encrypt(b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", &context).await.unwrap();
            let factor = FactorRecord {
                id,
                user_id: user.id,
                kind,
                sealed: sealed.to_compact(),
                created_at: now,
                confirmed_at: None,
            };
            assert!(store.put_pending_factor(&factor).await.unwrap());
        }
    }
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn rotate_and_reencrypt(bencher: Bencher) {
    let (runtime, palisade, _dir) = fixture();
    let rows = u64::try_from(USERS * 3).unwrap();
    bencher.counter(ItemsCount::new(rows)).bench_local(|| {
        runtime.block_on(async {
            let (_, job) = palisade.reencryptor().rotate().await.unwrap();
            assert!(job.total >= rows);
            let RunOutcome::Finished(done) = palisade.reencryptor().run(&|_| {}).await.unwrap() else {
                panic!("the job did not run");
            };
            assert_eq!(done.state, JobState::Completed);
            assert!(done.rewritten >= rows);
        });
    });
}
