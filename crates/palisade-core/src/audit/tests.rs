//! The chain over an in-memory store: appends link up, and any edit, removal or reorder is caught.

use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::crypto::{LocalKeyProvider, MasterKey};
use crate::testing::MemoryStore;

fn log(store: Arc<MemoryStore>) -> AuditLog {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    let provider = Arc::new(LocalKeyProvider::new(&MasterKey::from_bytes([5; 32])).unwrap());
    let keyring = Arc::new(Keyring::new(provider, store.clone(), clock.clone()));
    AuditLog::new(store, keyring, clock)
}

async fn chain_of(n: usize) -> (Arc<MemoryStore>, AuditLog) {
    let store = Arc::new(MemoryStore::default());
    let log = log(store.clone());
    for i in 0..n {
        log.append(AuditEvent::new(AuditKind::SystemStarted, Outcome::Success).actor(format!("a{i}")).detail("i", i))
            .await
            .unwrap();
    }
    (store, log)
}

#[tokio::test]
async fn appended_records_link_and_verify() {
    let (store, log) = chain_of(5).await;
    let report = log.verify().await.unwrap();
    assert_eq!(report, ChainReport { verified: 5, broken: None });
    let records = store.audit_records(0, 10).await.unwrap();
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert_eq!(records[0].prev_mac, GENESIS_MAC.to_vec());
    assert_eq!(records[1].prev_mac, records[0].mac);
}

#[tokio::test]
async fn an_edited_field_is_named_as_the_first_broken_link() {
    let (store, log) = chain_of(5).await;
    store.audit.lock().unwrap().get_mut(&3).unwrap().actor = Some("mallory".into());
    let report = log.verify().await.unwrap();
    assert_eq!(report.verified, 2);
    assert_eq!(report.broken.unwrap().seq, 3);
}

#[tokio::test]
async fn a_removed_record_is_caught() {
    let (store, log) = chain_of(5).await;
    store.audit.lock().unwrap().remove(&2);
    assert_eq!(log.verify().await.unwrap().broken.unwrap().seq, 2);
}

#[tokio::test]
async fn a_resealed_record_without_the_key_breaks_the_next_link() {
    let (store, log) = chain_of(4).await;
    {
        let mut audit = store.audit.lock().unwrap();
        let record = audit.get_mut(&2).unwrap();
        record.details = r#"{"i":99}"#.into();
        record.mac = vec![0; 32];
    }
    assert_eq!(log.verify().await.unwrap().broken.unwrap().seq, 2);
}

#[tokio::test]
async fn concurrent_appends_make_one_gapless_chain() {
    let store = Arc::new(MemoryStore::default());
    let log = Arc::new(log(store.clone()));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(AuditEvent::new(AuditKind::SystemStarted, Outcome::Success)).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(log.verify().await.unwrap(), ChainReport { verified: 20, broken: None });
}

#[tokio::test]
async fn two_writers_over_one_store_keep_one_chain() {
    // Two AuditLogs stand for two server instances: each caches the head it last wrote, so the other's
    // appends make its cached head stale and its next insert must lose, re-read and seal again.
    let store = Arc::new(MemoryStore::default());
    let a = Arc::new(log(store.clone()));
    let b = Arc::new(log(store.clone()));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let writer = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            writer.append(AuditEvent::new(AuditKind::SystemStarted, Outcome::Success).detail("i", i)).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    a.append(AuditEvent::new(AuditKind::SystemStarted, Outcome::Success)).await.unwrap();
    b.append(AuditEvent::new(AuditKind::SystemStarted, Outcome::Success)).await.unwrap();
    assert_eq!(a.verify().await.unwrap(), ChainReport { verified: 32, broken: None });
}
