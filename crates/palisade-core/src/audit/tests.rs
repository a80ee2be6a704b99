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
    assert_eq!(report, ChainReport { verified: 5, redacted: 0, checkpoint: None, broken: None });
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
    assert_eq!(log.verify().await.unwrap(), ChainReport { verified: 20, redacted: 0, checkpoint: None, broken: None });
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
    assert_eq!(a.verify().await.unwrap(), ChainReport { verified: 32, redacted: 0, checkpoint: None, broken: None });
}

#[tokio::test]
async fn redacting_a_subject_keeps_the_chain_verifying_and_counts_it() {
    let store = Arc::new(MemoryStore::default());
    let log = log(store.clone());
    for i in 0..6 {
        let subject = if i % 2 == 0 { "user-a" } else { "user-b" };
        let event = AuditEvent::new(AuditKind::LoginFailed, Outcome::Failure)
            .subject(subject)
            .request(RequestMeta {
                ip: Some("203.0.113.9".into()),
                user_agent: Some("curl".into()),
                ..RequestMeta::default()
            })
            .detail("reason", "wrong password");
        log.append(event).await.unwrap();
    }
    let who = vec!["user-a".to_owned()];
    let at = time::OffsetDateTime::UNIX_EPOCH;
    let page = store.redact_audit_records(&who, "erased:p1", 0, 100, at).await.unwrap();
    assert_eq!(page, RedactionPage { last_seq: Some(5), examined: 3, redacted: 3 });
    // A second pass finds them already redacted.
    assert_eq!(store.redact_audit_records(&who, "erased:p1", 0, 100, at).await.unwrap().redacted, 0);

    assert_eq!(log.verify().await.unwrap(), ChainReport { verified: 6, redacted: 3, checkpoint: None, broken: None });
    let records = store.audit_records(0, 10).await.unwrap();
    assert_eq!(records[0].subject.as_deref(), Some("erased:p1"));
    assert_eq!(records[0].ip, None);
    assert_eq!(records[0].details, REDACTED_DETAILS);
    assert_eq!(records[1].subject.as_deref(), Some("user-b"), "another user's record is untouched");
    assert_eq!(records[1].ip.as_deref(), Some("203.0.113.9"));
}

#[tokio::test]
async fn an_edited_personal_field_of_a_v2_record_is_caught_by_its_digest() {
    let (store, log) = chain_of(3).await;
    store.audit.lock().unwrap().get_mut(&2).unwrap().ip = Some("198.51.100.1".into());
    let report = log.verify().await.unwrap();
    assert_eq!(report.verified, 1);
    let broken = report.broken.unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("personal fields"), "{}", broken.reason);
}

#[tokio::test]
async fn a_fake_redaction_that_keeps_personal_data_is_caught() {
    let (store, log) = chain_of(3).await;
    {
        let mut audit = store.audit.lock().unwrap();
        let record = audit.get_mut(&2).unwrap();
        // Dropping the salt alone, to let the fields change unseen, is not a redaction.
        record.personal.as_mut().unwrap().salt = None;
        record.redacted_at = Some(time::OffsetDateTime::UNIX_EPOCH);
        record.actor = Some("mallory".into());
    }
    let broken = log.verify().await.unwrap().broken.unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("not redacted"), "{}", broken.reason);
}

#[tokio::test]
async fn a_digest_swapped_for_another_records_breaks_the_mac() {
    let (store, log) = chain_of(3).await;
    {
        let mut audit = store.audit.lock().unwrap();
        let other = audit.get(&1).unwrap().clone();
        let record = audit.get_mut(&2).unwrap();
        record.personal = other.personal.clone();
        record.actor = other.actor.clone();
        record.details = other.details.clone();
    }
    let broken = log.verify().await.unwrap().broken.unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("MAC"), "{}", broken.reason);
}

#[tokio::test]
async fn an_archived_prefix_leaves_a_chain_that_verifies_from_its_checkpoint() {
    let (store, log) = chain_of(10).await;
    let checkpoint = log.archive_through(6).await.unwrap().unwrap();
    assert_eq!((checkpoint.seq, checkpoint.archived), (6, 6));
    assert_eq!(store.audit_records(0, 100).await.unwrap().first().unwrap().seq, 7, "1 to 6 are gone");
    assert_eq!(
        log.verify().await.unwrap(),
        ChainReport { verified: 4, redacted: 0, checkpoint: Some(6), broken: None }
    );
    // Nothing before the checkpoint is archived twice, and the head never is.
    assert_eq!(log.archive_through(5).await.unwrap(), None);
    let next = log.archive_through(100).await.unwrap().unwrap();
    assert_eq!((next.seq, next.archived), (9, 3), "up to the record before the head");
    assert_eq!(
        log.verify().await.unwrap(),
        ChainReport { verified: 1, redacted: 0, checkpoint: Some(9), broken: None }
    );
    // Appending goes on from the head.
    log.append(AuditEvent::new(AuditKind::SystemStarted, Outcome::Success)).await.unwrap();
    assert_eq!(log.verify().await.unwrap().verified, 2);
}

#[tokio::test]
async fn a_tampered_checkpoint_or_a_record_kept_behind_it_is_caught() {
    let (store, log) = chain_of(6).await;
    log.archive_through(3).await.unwrap().unwrap();
    store.checkpoints.lock().unwrap().last_mut().unwrap().seq = 2;
    let report = log.verify().await.unwrap();
    assert!(report.broken.unwrap().reason.contains("seal"), "a moved checkpoint no longer matches its seal");

    let (store, log) = chain_of(6).await;
    log.archive_through(3).await.unwrap().unwrap();
    // The record after the checkpoint no longer links to it when it is swapped for another.
    store.audit.lock().unwrap().get_mut(&4).unwrap().prev_mac = vec![0; 32];
    assert_eq!(log.verify().await.unwrap().broken.unwrap().seq, 4);
}
