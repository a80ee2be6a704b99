//! The durable store port's semantics (data keys, the audit chain), identical on SQLite and
//! PostgreSQL, and a real `AuditLog` over each.

use std::sync::Arc;

use palisade_core::audit::{AuditEvent, AuditKind, AuditLog, AuditRecord, Outcome, RequestMeta};
use palisade_core::clock::Clock;
use palisade_core::crypto::{DataClassification, KeyPurpose, Keyring, LocalKeyProvider, MasterKey, WrappedDataKey};
use palisade_core::store::{AuditStore, KeyStore, StoreError};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::Barrier;

use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        backend_and_ping,
        data_keys_insert_list_get,
        duplicate_key_version_is_refused,
        concurrent_key_creation_has_one_winner,
        class_key_families_have_their_own_versions,
        min_decryption_versions_are_per_family_and_can_move_both_ways,
        every_classification_and_owner_has_a_family_that_round_trips,
        a_stored_family_this_build_does_not_know_is_corrupt,
        deleting_a_family_deletes_only_its_keys_and_never_a_referenced_one,
        audit_append_head_and_paging,
        duplicate_audit_seq_is_refused,
        audit_batches_are_stored_all_or_nothing,
        audit_instants_round_trip_to_the_microsecond,
        concurrent_appends_of_one_seq_have_one_winner,
        audit_log_verifies_and_names_the_tampered_record,
        concurrent_audit_logs_build_one_chain,
    ]
);

fn data_key(purpose: KeyPurpose, version: u32, created_at: OffsetDateTime) -> WrappedDataKey {
    WrappedDataKey {
        id: uuid::Uuid::now_v7(),
        purpose,
        version,
        provider: "local:0123abcd".into(),
        wrapped: vec![version as u8; 60],
        created_at,
    }
}

async fn audit_key(h: &DurableHarness) -> uuid::Uuid {
    let key = data_key(KeyPurpose::Audit, 1, h.clock.now());
    assert!(h.store.insert_data_key(&key).await.unwrap());
    key.id
}

fn record(seq: i64, key_id: uuid::Uuid, at: OffsetDateTime) -> AuditRecord {
    AuditRecord {
        seq,
        id: uuid::Uuid::now_v7(),
        at,
        kind: "system.started".into(),
        outcome: if seq % 2 == 0 { "failure".into() } else { "success".into() },
        actor: (seq % 3 != 0).then(|| format!("user-{seq}")),
        subject: Some("subject é ✓".into()),
        ip: Some("203.0.113.7".into()),
        user_agent: None,
        request_id: Some(format!("req-{seq}")),
        details: format!(r#"{{"n":{seq},"text":"a \"quoted\" value"}}"#),
        key_id,
        prev_mac: vec![seq as u8; 32],
        mac: vec![(seq as u8).wrapping_add(1); 32],
        // Even records are v2 (their personal fields sealed by a digest), odd ones v1.
        personal: (seq % 2 == 0).then(|| palisade_core::audit::PersonalSeal {
            salt: Some(vec![seq as u8; 16]),
            digest: vec![(seq as u8).wrapping_add(2); 32],
        }),
        redacted_at: None,
    }
}

fn micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1000 * 1000).unwrap()
}

pub async fn backend_and_ping(h: &DurableHarness) {
    h.store.ping().await.unwrap();
    h.stores.hot.ping().await.unwrap();
    let expected = if h.database.sqlite_path().is_some() { "sqlite" } else { "postgres" };
    assert_eq!(h.store.backend(), expected);
    assert_eq!(h.stores.hot.backend(), expected, "without Redis the hot store is the durable database");
}

pub async fn data_keys_insert_list_get(h: &DurableHarness) {
    let at = datetime!(2026-03-04 05:06:07.123456789 UTC);
    let v1 = data_key(KeyPurpose::Data, 1, at);
    let v2 = data_key(KeyPurpose::Data, 2, at + time::Duration::hours(1));
    let audit = data_key(KeyPurpose::Audit, 1, at);
    // Inserted out of order: listing sorts by version.
    for key in [&v2, &audit, &v1] {
        assert!(h.store.insert_data_key(key).await.unwrap());
    }
    let stored = |k: &WrappedDataKey| WrappedDataKey { created_at: micros(k.created_at), ..k.clone() };
    assert_eq!(h.store.data_keys(KeyPurpose::Data).await.unwrap(), [stored(&v1), stored(&v2)], "oldest first");
    assert_eq!(h.store.data_keys(KeyPurpose::Audit).await.unwrap(), [stored(&audit)], "purposes never mix");
    assert_eq!(h.store.data_key(v2.id).await.unwrap(), Some(stored(&v2)));
    assert_eq!(h.store.data_key(uuid::Uuid::now_v7()).await.unwrap(), None, "an unknown id is absent");
}

pub async fn duplicate_key_version_is_refused(h: &DurableHarness) {
    let first = data_key(KeyPurpose::Data, 1, h.clock.now());
    assert!(h.store.insert_data_key(&first).await.unwrap());
    let rival = WrappedDataKey { wrapped: vec![9; 60], ..data_key(KeyPurpose::Data, 1, h.clock.now()) };
    assert!(!h.store.insert_data_key(&rival).await.unwrap(), "that version exists: false");
    assert_eq!(h.store.data_key(rival.id).await.unwrap(), None, "and nothing was stored");
    let keys = h.store.data_keys(KeyPurpose::Data).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, first.id);
    // The same version of the other purpose is a different key.
    assert!(h.store.insert_data_key(&data_key(KeyPurpose::Audit, 1, h.clock.now())).await.unwrap());
    // A reused id is a bug, not a lost race: it must not read as `false` (a caller would loop).
    let same_id = WrappedDataKey { version: 2, ..first.clone() };
    assert!(h.store.insert_data_key(&same_id).await.is_err(), "a duplicate id is an error");
}

pub async fn concurrent_key_creation_has_one_winner(h: &DurableHarness) {
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier, now) = (h.store.clone(), barrier.clone(), h.clock.now());
            tokio::spawn(async move {
                barrier.wait().await;
                store.insert_data_key(&data_key(KeyPurpose::Data, 7, now)).await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one of 20 instances creates version 7");
    assert_eq!(h.store.data_keys(KeyPurpose::Data).await.unwrap().len(), 1);
}

pub async fn class_key_families_have_their_own_versions(h: &DurableHarness) {
    let at = datetime!(2026-03-04 05:06:07.123456 UTC);
    let restricted = KeyPurpose::Class(DataClassification::Restricted);
    let top_secret = KeyPurpose::Class(DataClassification::TopSecret);
    let restricted_v1 = data_key(restricted, 1, at);
    let restricted_v2 = data_key(restricted, 2, at);
    let restricted_v3 = data_key(restricted, 3, at);
    let top_secret_v1 = data_key(top_secret, 1, at);
    let data_v1 = data_key(KeyPurpose::Data, 1, at);
    // Version 1 of three families side by side; each family's versions inserted out of order.
    for key in [&restricted_v3, &data_v1, &restricted_v1, &top_secret_v1, &restricted_v2] {
        assert!(h.store.insert_data_key(key).await.unwrap(), "{:?} v{}", key.purpose, key.version);
    }
    let rival = data_key(restricted, 1, at);
    assert!(!h.store.insert_data_key(&rival).await.unwrap(), "class:restricted already has version 1: false");
    assert_eq!(h.store.data_key(rival.id).await.unwrap(), None, "and nothing was stored");

    assert_eq!(
        h.store.data_keys(restricted).await.unwrap(),
        [restricted_v1.clone(), restricted_v2, restricted_v3],
        "one family, in version order"
    );
    assert_eq!(h.store.data_keys(top_secret).await.unwrap(), [top_secret_v1]);
    assert_eq!(h.store.data_keys(KeyPurpose::Data).await.unwrap(), [data_v1], "class families never mix with data");
    assert!(h.store.data_keys(KeyPurpose::Class(DataClassification::Pii)).await.unwrap().is_empty());
    assert!(h.store.data_keys(KeyPurpose::Audit).await.unwrap().is_empty());
    assert_eq!(h.store.data_key(restricted_v1.id).await.unwrap(), Some(restricted_v1), "read back by id");
}

pub async fn min_decryption_versions_are_per_family_and_can_move_both_ways(h: &DurableHarness) {
    let at = datetime!(2026-03-04 05:06:07.123456 UTC);
    let restricted = KeyPurpose::Class(DataClassification::Restricted);
    let internal = KeyPurpose::Class(DataClassification::Internal);
    assert_eq!(h.store.min_decryption_version(restricted).await.unwrap(), 1, "nothing retired by default");
    h.store.set_min_decryption_version(restricted, 3, at).await.unwrap();
    assert_eq!(h.store.min_decryption_version(restricted).await.unwrap(), 3);
    assert_eq!(h.store.min_decryption_version(internal).await.unwrap(), 1, "another family is untouched");
    assert_eq!(h.store.min_decryption_version(KeyPurpose::Data).await.unwrap(), 1);
    // Moved back in an emergency.
    h.store.set_min_decryption_version(restricted, 2, at).await.unwrap();
    assert_eq!(h.store.min_decryption_version(restricted).await.unwrap(), 2);
    assert!(h.store.set_min_decryption_version(restricted, u32::MAX, at).await.is_err(), "out of the storable range");
    assert_eq!(h.store.min_decryption_version(restricted).await.unwrap(), 2, "and nothing changed");
}

pub async fn every_classification_and_owner_has_a_family_that_round_trips(h: &DurableHarness) {
    let at = datetime!(2026-03-04 05:06:07.123456 UTC);
    let mut keys: Vec<WrappedDataKey> =
        DataClassification::ALL.into_iter().map(|class| data_key(KeyPurpose::Class(class), 1, at)).collect();
    // And an owner's family (crypto-shredding), named by a hash of the owner's id.
    keys.push(data_key(KeyPurpose::Owner(palisade_core::crypto::OwnerKeyId::of("customer-7")), 1, at));
    for key in &keys {
        assert!(h.store.insert_data_key(key).await.unwrap(), "the schema accepts {}", key.purpose.name());
    }
    for key in &keys {
        assert_eq!(h.store.data_keys(key.purpose).await.unwrap(), std::slice::from_ref(key));
        assert_eq!(h.store.data_key(key.id).await.unwrap().as_ref(), Some(key), "{} reads back", key.purpose.name());
    }
}

pub async fn a_stored_family_this_build_does_not_know_is_corrupt(h: &DurableHarness) {
    // A row of a family this build cannot name (say, written by a newer Palisade): the check is set
    // aside to write it, as a newer schema would allow it.
    if h.database.sqlite_path().is_some() {
        h.database
            .execute(
                "PRAGMA ignore_check_constraints = ON; \
                 INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-0000000000f1', 'signing', 1, 'p', X'01', 0)",
            )
            .await
            .unwrap();
    } else {
        h.database.execute("ALTER TABLE data_keys DROP CONSTRAINT data_keys_purpose_check").await.unwrap();
        h.database
            .execute(
                "INSERT INTO data_keys VALUES ('0190a000-0000-7000-8000-0000000000f1', 'signing', 1, 'p', '\\x01', now())",
            )
            .await
            .unwrap();
    }
    let id = uuid::Uuid::parse_str("0190a000-0000-7000-8000-0000000000f1").unwrap();
    match h.store.data_key(id).await {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("signing") && message.contains(&id.to_string()), "{message}");
        }
        other => panic!("an unknown family must read as corrupt, got {other:?}"),
    }
    // The other families still read.
    let data = data_key(KeyPurpose::Data, 1, h.clock.now());
    assert!(h.store.insert_data_key(&data).await.unwrap());
    assert_eq!(h.store.data_keys(KeyPurpose::Data).await.unwrap().len(), 1);
}

pub async fn deleting_a_family_deletes_only_its_keys_and_never_a_referenced_one(h: &DurableHarness) {
    // `KeyStore::delete_data_keys` (crypto-shredding).
    let sql = &h.store;
    let restricted = KeyPurpose::Class(DataClassification::Restricted);
    let at = h.clock.now();
    let doomed = [data_key(restricted, 1, at), data_key(restricted, 2, at)];
    let kept = data_key(KeyPurpose::Class(DataClassification::Pii), 1, at);
    for key in doomed.iter().chain([&kept]) {
        assert!(h.store.insert_data_key(key).await.unwrap());
    }
    let audit_key_id = audit_key(h).await;
    assert!(h.store.try_append_audit(&record(1, audit_key_id, at)).await.unwrap());

    assert_eq!(sql.delete_data_keys(restricted).await.unwrap(), 2, "every version of the family");
    assert!(h.store.data_keys(restricted).await.unwrap().is_empty());
    for key in &doomed {
        assert_eq!(h.store.data_key(key.id).await.unwrap(), None, "gone by id too");
    }
    assert_eq!(h.store.data_keys(kept.purpose).await.unwrap().len(), 1, "other families stay");
    assert_eq!(sql.delete_data_keys(restricted).await.unwrap(), 0, "deleting again deletes nothing");

    // A key the audit chain refers to cannot go: an error, and the key stays.
    assert!(sql.delete_data_keys(KeyPurpose::Audit).await.is_err(), "a referenced key is never deleted");
    assert_eq!(h.store.data_key(audit_key_id).await.unwrap().map(|k| k.id), Some(audit_key_id));
}

pub async fn audit_append_head_and_paging(h: &DurableHarness) {
    assert_eq!(h.store.audit_head().await.unwrap(), None, "an empty chain has no head");
    assert!(h.store.audit_records(0, 10).await.unwrap().is_empty());
    let key_id = audit_key(h).await;
    let base = datetime!(2026-01-01 00:00:00 UTC);
    let records: Vec<AuditRecord> =
        (1..=5).map(|seq| record(seq, key_id, base + time::Duration::microseconds(seq * 1001))).collect();
    for r in &records {
        assert!(h.store.try_append_audit(r).await.unwrap());
        assert_eq!(
            h.store.audit_head().await.unwrap().as_ref(),
            Some(r),
            "the head is the last record, field for field"
        );
    }
    assert_eq!(h.store.audit_records(0, 2).await.unwrap(), records[0..2]);
    assert_eq!(h.store.audit_records(2, 2).await.unwrap(), records[2..4]);
    assert_eq!(h.store.audit_records(4, 10).await.unwrap(), records[4..]);
    assert!(h.store.audit_records(5, 10).await.unwrap().is_empty());
    assert_eq!(h.store.audit_records(0, 1000).await.unwrap(), records, "every field round-trips");
    assert_eq!(h.store.audit_records(-1, 1).await.unwrap(), records[0..1]);
    assert!(h.store.audit_records(0, 0).await.unwrap().is_empty(), "a limit of 0 returns nothing");
}

pub async fn duplicate_audit_seq_is_refused(h: &DurableHarness) {
    let key_id = audit_key(h).await;
    let first = record(1, key_id, datetime!(2026-01-01 00:00:00.5 UTC));
    assert!(h.store.try_append_audit(&first).await.unwrap());
    let rival = AuditRecord { actor: Some("someone else".into()), ..record(1, key_id, first.at) };
    assert!(!h.store.try_append_audit(&rival).await.unwrap(), "seq 1 is taken: false");
    assert_eq!(h.store.audit_records(0, 10).await.unwrap(), std::slice::from_ref(&first), "and nothing changed");
    // A reused event id at a free seq is a bug, not a lost race: an error, never `false`.
    let same_id = AuditRecord { seq: 2, ..first.clone() };
    assert!(h.store.try_append_audit(&same_id).await.is_err(), "a duplicate id is an error");
    // The schema refuses what the chain never holds.
    let bad_seq = record(0, key_id, first.at);
    assert!(h.store.try_append_audit(&bad_seq).await.is_err(), "seq must be positive");
    let unknown_key = record(3, uuid::Uuid::now_v7(), first.at);
    assert!(h.store.try_append_audit(&unknown_key).await.is_err(), "the sealing key must exist");
}

pub async fn audit_batches_are_stored_all_or_nothing(h: &DurableHarness) {
    let key_id = audit_key(h).await;
    let at = datetime!(2026-01-01 00:00:00.25 UTC);
    let batch: Vec<AuditRecord> = (1..=3).map(|seq| record(seq, key_id, at)).collect();
    assert!(h.store.try_append_audit_batch(&batch).await.unwrap());
    assert_eq!(h.store.audit_records(0, 10).await.unwrap(), batch);
    // A batch whose first seq is free but whose second is taken stores nothing at all.
    let overlapping: Vec<AuditRecord> = vec![record(4, key_id, at), record(3, key_id, at), record(5, key_id, at)];
    assert!(!h.store.try_append_audit_batch(&overlapping).await.unwrap(), "seq 3 is taken: false");
    assert_eq!(h.store.audit_records(0, 10).await.unwrap().len(), 3, "and nothing of the batch was kept");
    assert!(h.store.try_append_audit_batch(&[]).await.unwrap(), "an empty batch is a no-op");
    let next: Vec<AuditRecord> = (4..=5).map(|seq| record(seq, key_id, at)).collect();
    assert!(h.store.try_append_audit_batch(&next).await.unwrap());
    assert_eq!(h.store.audit_head().await.unwrap().unwrap().seq, 5);
}

pub async fn audit_instants_round_trip_to_the_microsecond(h: &DurableHarness) {
    let key_id = audit_key(h).await;
    let instants = [
        datetime!(2026-01-01 00:00:00.000001 UTC),
        datetime!(2026-06-30 23:59:59.999999 UTC),
        datetime!(1999-12-31 23:59:59.123456 UTC),
        datetime!(2026-02-03 04:05:06.789 +02:00),
    ];
    for (i, at) in instants.iter().enumerate() {
        let r = record(i as i64 + 1, key_id, *at);
        assert!(h.store.try_append_audit(&r).await.unwrap());
        let back = h.store.audit_head().await.unwrap().unwrap();
        assert_eq!(back.at, *at, "instant {i} comes back exactly");
        assert_eq!(back.at.unix_timestamp_nanos(), at.unix_timestamp_nanos());
    }
    // Finer than a microsecond is truncated, never rounded: the MAC reads the instant the same way.
    let fine = datetime!(2026-01-01 00:00:00.000000999 UTC);
    assert!(h.store.try_append_audit(&record(10, key_id, fine)).await.unwrap());
    assert_eq!(h.store.audit_head().await.unwrap().unwrap().at, datetime!(2026-01-01 00:00:00 UTC));
}

pub async fn concurrent_appends_of_one_seq_have_one_winner(h: &DurableHarness) {
    let key_id = audit_key(h).await;
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            let r = AuditRecord { actor: Some(format!("writer-{i}")), ..record(1, key_id, h.clock.now()) };
            tokio::spawn(async move {
                barrier.wait().await;
                (store.try_append_audit(&r).await, r)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (appended, r) = task.await.unwrap();
        if appended.unwrap() {
            winners.push(r);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of 20 writers takes seq 1");
    assert_eq!(h.store.audit_records(0, 100).await.unwrap(), [micros_record(&winners[0])]);
}

fn micros_record(r: &AuditRecord) -> AuditRecord {
    AuditRecord { at: micros(r.at), ..r.clone() }
}

/// A keyring over the harness's store under a fresh master key, as a server instance has.
pub(crate) fn keyring(h: &DurableHarness) -> Arc<Keyring> {
    let master = MasterKey::generate().unwrap();
    let provider = Arc::new(LocalKeyProvider::new(&master).unwrap());
    let store: Arc<dyn KeyStore> = h.store.clone();
    Arc::new(Keyring::new(provider, store, h.clock.clone()))
}

/// An audit log over the harness's store and clock.
pub(crate) fn audit_log(h: &DurableHarness, keyring: Arc<Keyring>) -> AuditLog {
    let store: Arc<dyn AuditStore> = h.store.clone();
    AuditLog::new(store, keyring, h.clock.clone())
}

fn event(i: i64) -> AuditEvent {
    AuditEvent::new(AuditKind::SystemStarted, Outcome::Success)
        .actor(format!("admin-{i}"))
        .subject("palisade")
        .request(RequestMeta {
            ip: Some("198.51.100.4".into()),
            user_agent: Some("conformance/1".into()),
            request_id: Some(format!("r{i}")),
            accept_language: None,
        })
        .detail("n", i)
}

pub async fn audit_log_verifies_and_names_the_tampered_record(h: &DurableHarness) {
    let log = audit_log(h, keyring(h));
    for i in 1..=5 {
        // Sub-microsecond clock readings must not break the MAC after a round trip.
        h.clock.advance(time::Duration::nanoseconds(1_234_567));
        log.append(event(i)).await.unwrap();
    }
    let report = log.verify().await.unwrap();
    assert_eq!((report.verified, report.broken), (5, None), "an untouched chain verifies");

    let changed = h.database.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3").await.unwrap();
    assert_eq!(changed, 1);
    let report = log.verify().await.unwrap();
    let broken = report.broken.expect("the edit is detected");
    assert_eq!(broken.seq, 3, "the first broken link is the edited record: {}", broken.reason);
    assert_eq!(report.verified, 2, "the records before it still verify");
}

pub async fn concurrent_audit_logs_build_one_chain(h: &DurableHarness) {
    // Two server instances: separate keyrings over one store, appending at the same time.
    let keyring = keyring(h);
    keyring.rotate(KeyPurpose::Audit).await.unwrap();
    let instances = [Arc::new(audit_log(h, keyring.clone())), Arc::new(audit_log(h, keyring))];
    let tasks: Vec<_> = instances
        .iter()
        .enumerate()
        .map(|(n, log)| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..15 {
                    log.append(event(n as i64 * 100 + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let report = instances[0].verify().await.unwrap();
    assert_eq!((report.verified, report.broken), (30, None), "one gapless chain of 30 records");
    let seqs: Vec<i64> = h.store.audit_records(0, 100).await.unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
}
