//! Keyring behaviour over an in-memory store: envelopes refuse any change of bit, context or key.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::store::KeyStore;
use crate::testing::MemoryStore;

fn keyring(store: Arc<MemoryStore>, master: [u8; 32]) -> Keyring {
    let provider = Arc::new(LocalKeyProvider::new(&MasterKey::from_bytes(master)).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    Keyring::new(provider, store, clock)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

fn context() -> impl Strategy<Value = EncryptionContext> {
    (
        prop_oneof![
            Just(DataClassification::Public),
            Just(DataClassification::Internal),
            Just(DataClassification::Confidential),
            Just(DataClassification::Restricted),
            Just(DataClassification::Pii),
        ],
        "[a-z]{0,8}",
        proptest::option::of("[a-z0-9]{0,6}"),
        proptest::option::of("[a-z]{0,6}"),
    )
        .prop_map(|(data_classification, purpose, user_id, field)| EncryptionContext {
            data_classification,
            purpose,
            user_id,
            field,
            compliance: Vec::new(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_flipped_bit_is_refused(plaintext in proptest::collection::vec(any::<u8>(), 0..256), ctx in context(), bit in any::<proptest::sample::Index>()) {
        let rt = runtime();
        let ring = keyring(Arc::new(MemoryStore::default()), [9; 32]);
        let envelope = rt.block_on(ring.encrypt(&plaintext, &ctx)).unwrap();
        let opened = rt.block_on(ring.decrypt(&envelope, &ctx)).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        let mut tampered = envelope.clone();
        let at = bit.index(tampered.data.len() * 8);
        if let Some(byte) = tampered.data.get_mut(at / 8) {
            *byte ^= 1 << (at % 8);
        }
        prop_assert!(rt.block_on(ring.decrypt(&tampered, &ctx)).is_err());
    }

    #[test]
    fn any_other_context_is_refused(plaintext in proptest::collection::vec(any::<u8>(), 0..64), a in context(), b in context()) {
        prop_assume!(a != b);
        let rt = runtime();
        let ring = keyring(Arc::new(MemoryStore::default()), [9; 32]);
        let envelope = rt.block_on(ring.encrypt(&plaintext, &a)).unwrap();
        prop_assert!(rt.block_on(ring.decrypt(&envelope, &b)).is_err());
    }
}

#[tokio::test]
async fn rotation_keeps_old_envelopes_readable_and_seals_with_the_new_version() {
    let store = Arc::new(MemoryStore::default());
    let ring = keyring(store.clone(), [3; 32]);
    let ctx = EncryptionContext::new(DataClassification::Pii, "profile");
    let old = ring.encrypt(b"before", &ctx).await.unwrap();
    assert_eq!(old.key_version, 1);
    assert_eq!(ring.rotate(KeyPurpose::Data).await.unwrap(), 2);
    let new = ring.encrypt(b"after", &ctx).await.unwrap();
    assert_eq!(new.key_version, 2);
    assert_ne!(new.key_id, old.key_id);
    assert_eq!(ring.decrypt(&old, &ctx).await.unwrap().as_slice(), b"before");

    // A fresh instance over the same store reads both; a wrong version number in the envelope is refused.
    let other = keyring(store, [3; 32]);
    assert_eq!(other.decrypt(&old, &ctx).await.unwrap().as_slice(), b"before");
    let mut lying = new.clone();
    lying.key_version = 1;
    assert!(matches!(other.decrypt(&lying, &ctx).await, Err(CryptoError::Mismatch)));
}

#[tokio::test]
async fn a_different_master_key_cannot_open_stored_keys() {
    let store = Arc::new(MemoryStore::default());
    let ctx = EncryptionContext::new(DataClassification::Internal, "x");
    let envelope = keyring(store.clone(), [1; 32]).encrypt(b"x", &ctx).await.unwrap();
    let wrong = keyring(store, [2; 32]);
    assert!(matches!(wrong.decrypt(&envelope, &ctx).await, Err(CryptoError::WrongMasterKey { .. })));
}

#[tokio::test]
async fn stored_keys_are_wrapped_not_plain() {
    let store = Arc::new(MemoryStore::default());
    let ring = keyring(store.clone(), [4; 32]);
    ring.encrypt(b"x", &EncryptionContext::new(DataClassification::Internal, "x")).await.unwrap();
    let key = ring.active(KeyPurpose::Data).await.unwrap();
    let stored = store.data_keys(KeyPurpose::Data).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].wrapped.len(), 12 + 32 + 16);
    assert!(!stored[0].wrapped.windows(32).any(|w| w == key.material.expose()));
    assert!(stored[0].provider.starts_with("local:"));
}

/// The encryption service over an in-memory store.
mod service {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::*;
    use crate::audit::{AuditLog, RequestMeta};
    use crate::auth::{AuthError, Principal};
    use crate::clock::{Clock, ManualClock};
    use crate::testing::MemoryStore;
    use crate::user::UserId;

    struct Harness {
        store: Arc<MemoryStore>,
        keyring: Arc<Keyring>,
        service: CryptoService,
    }

    fn harness(policies: EncryptionPolicies) -> Harness {
        let store = Arc::new(MemoryStore::default());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
        let provider = Arc::new(LocalKeyProvider::new(&MasterKey::from_bytes([3; 32])).unwrap());
        let keyring = Arc::new(Keyring::new(provider, store.clone(), clock.clone()));
        let audit = Arc::new(AuditLog::new(store.clone(), keyring.clone(), clock));
        let service = CryptoService::new(keyring.clone(), audit, policies, false);
        Harness { store, keyring, service }
    }

    fn caller(scopes: &[&str]) -> Principal {
        Principal {
            user_id: UserId::generate(),
            session_id: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            jti: None,
            expires_at: None,
            api_key_id: Some(uuid::Uuid::now_v7()),
            amr: Vec::new(),
        }
    }

    fn all() -> Principal {
        caller(&["crypto:encrypt", "crypto:decrypt"])
    }

    fn ctx(class: DataClassification) -> EncryptionContext {
        EncryptionContext {
            data_classification: class,
            purpose: "billing".into(),
            user_id: Some("u-42".into()),
            field: Some("card".into()),
            compliance: vec!["PCI_DSS".into()],
        }
    }

    fn meta() -> RequestMeta {
        RequestMeta::default()
    }

    fn decrypt_failed<T: std::fmt::Debug>(r: Result<T, CryptoServiceError>) -> bool {
        matches!(r, Err(CryptoServiceError::DecryptionFailed))
    }

    #[tokio::test]
    async fn every_class_and_cipher_round_trips_and_compresses_where_allowed() {
        for algorithm in ["AES-256-GCM", "XCHACHA20-POLY1305"] {
            let overrides: Vec<String> =
                DataClassification::ALL.iter().map(|c| format!("{c}.algorithm={algorithm}")).collect();
            let h = harness(EncryptionPolicies::defaults(false).with_overrides(&overrides, false).unwrap());
            for class in DataClassification::ALL {
                let plaintext = b"4111 1111 1111 1111 ".repeat(20);
                let sealed = h.service.encrypt(&all(), &plaintext, &ctx(class), SealOptions::default()).await.unwrap();
                assert_eq!(sealed.algorithm.as_str(), algorithm);
                assert_eq!(sealed.classification, class);
                assert_eq!(sealed.nonce.len(), sealed.algorithm.nonce_len());
                assert_eq!(sealed.ciphertext.len(), plaintext.len() + 16);
                let opened = h.service.decrypt(&all(), &sealed, &ctx(class), &meta()).await.unwrap();
                assert_eq!(opened.as_slice(), plaintext.as_slice());

                let compress = SealOptions { compress: true };
                let packed = h.service.encrypt(&all(), &plaintext, &ctx(class), compress).await;
                if class.is_sensitive() {
                    let err = packed.unwrap_err().to_string();
                    assert!(err.contains("never compressed") && err.contains("BREACH"), "{err}");
                } else {
                    let packed = packed.unwrap();
                    assert!(packed.compressed);
                    assert!(packed.ciphertext.len() < plaintext.len() / 2, "{} bytes", packed.ciphertext.len());
                    let opened = h.service.decrypt(&all(), &packed, &ctx(class), &meta()).await.unwrap();
                    assert_eq!(opened.as_slice(), plaintext.as_slice());
                }
            }
            // Each class has its own key family.
            let families: std::collections::HashSet<_> =
                h.keyring.status().await.unwrap().into_iter().map(|k| k.purpose).collect();
            assert!(DataClassification::ALL.iter().all(|c| families.contains(&KeyPurpose::Class(*c))));
        }
    }

    #[tokio::test]
    async fn an_envelope_moved_or_altered_does_not_open() {
        let h = harness(EncryptionPolicies::defaults(false));
        let class = DataClassification::Confidential;
        let sealed = h.service.encrypt(&all(), b"secret", &ctx(class), SealOptions::default()).await.unwrap();
        let moved = [
            EncryptionContext { user_id: Some("u-43".into()), ..ctx(class) },
            EncryptionContext { user_id: None, ..ctx(class) },
            EncryptionContext { field: Some("iban".into()), ..ctx(class) },
            EncryptionContext { purpose: "marketing".into(), ..ctx(class) },
            EncryptionContext { data_classification: DataClassification::Internal, ..ctx(class) },
        ];
        for context in moved {
            assert!(decrypt_failed(h.service.decrypt(&all(), &sealed, &context, &meta()).await), "{context:?}");
        }
        let other = h.service.encrypt(&all(), b"x", &ctx(DataClassification::Internal), SealOptions::default()).await;
        let altered = [
            SealedEnvelope { key_version: sealed.key_version + 1, ..sealed.clone() },
            SealedEnvelope { key_id: uuid::Uuid::now_v7(), ..sealed.clone() },
            SealedEnvelope { key_id: other.unwrap().key_id, ..sealed.clone() },
            SealedEnvelope { algorithm: Algorithm::XChaCha20Poly1305, nonce: vec![0; 24], ..sealed.clone() },
            SealedEnvelope { compressed: true, ..sealed.clone() },
            SealedEnvelope { classification: DataClassification::Pii, ..sealed.clone() },
            SealedEnvelope { nonce: vec![0; 12], ..sealed.clone() },
            SealedEnvelope { nonce: vec![0; 5], ..sealed.clone() },
            SealedEnvelope { v: 1, ..sealed.clone() },
            SealedEnvelope { ciphertext: sealed.ciphertext[..10].to_vec(), ..sealed.clone() },
        ];
        for envelope in altered {
            let answer = h.service.decrypt(&all(), &envelope, &ctx(envelope.classification), &meta()).await;
            assert!(decrypt_failed(answer), "{envelope:?}");
        }
        assert_eq!(h.service.decrypt(&all(), &sealed, &ctx(class), &meta()).await.unwrap().as_slice(), b"secret");
    }

    #[tokio::test]
    async fn scopes_grant_all_classes_or_one_and_admin_grants_none() {
        let h = harness(EncryptionPolicies::defaults(false));
        let restricted = ctx(DataClassification::Restricted);
        let sealed = h.service.encrypt(&all(), b"x", &restricted, SealOptions::default()).await.unwrap();
        let admin = caller(&["admin", "user"]);
        assert!(matches!(
            h.service.encrypt(&admin, b"x", &restricted, SealOptions::default()).await,
            Err(CryptoServiceError::Auth(AuthError::InsufficientScope("crypto:encrypt:restricted")))
        ));
        assert!(matches!(
            h.service.decrypt(&admin, &sealed, &restricted, &meta()).await,
            Err(CryptoServiceError::Auth(AuthError::InsufficientScope("crypto:decrypt:restricted")))
        ));
        let narrow = caller(&["crypto:decrypt:restricted"]);
        assert!(h.service.decrypt(&narrow, &sealed, &restricted, &meta()).await.is_ok());
        let top = h.service.encrypt(&all(), b"x", &ctx(DataClassification::TopSecret), SealOptions::default()).await;
        assert!(matches!(
            h.service.decrypt(&narrow, &top.unwrap(), &ctx(DataClassification::TopSecret), &meta()).await,
            Err(CryptoServiceError::Auth(_))
        ));
        let encrypt_only = caller(&["crypto:encrypt"]);
        assert!(matches!(
            h.service.decrypt(&encrypt_only, &sealed, &restricted, &meta()).await,
            Err(CryptoServiceError::Auth(_))
        ));
    }

    #[tokio::test]
    async fn sensitive_decryptions_are_audited_done_or_refused() {
        let h = harness(EncryptionPolicies::defaults(false));
        let restricted = ctx(DataClassification::Restricted);
        let sealed = h.service.encrypt(&all(), b"x", &restricted, SealOptions::default()).await.unwrap();
        h.service.decrypt(&all(), &sealed, &restricted, &meta()).await.unwrap();
        let wrong = EncryptionContext { purpose: "curiosity".into(), ..restricted.clone() };
        assert!(decrypt_failed(h.service.decrypt(&all(), &sealed, &wrong, &meta()).await));
        let internal = ctx(DataClassification::Internal);
        let plain = h.service.encrypt(&all(), b"x", &internal, SealOptions::default()).await.unwrap();
        h.service.decrypt(&all(), &plain, &internal, &meta()).await.unwrap();

        let records: Vec<_> = h.store.audit.lock().unwrap().values().cloned().collect();
        let decrypts: Vec<_> = records.iter().filter(|r| r.kind == "crypto.decrypt").collect();
        assert_eq!(decrypts.len(), 2, "INTERNAL is not audited: {decrypts:?}");
        assert_eq!(decrypts[0].outcome, "success");
        assert_eq!(decrypts[1].outcome, "failure");
        let details = decrypts[1].details.to_string();
        assert!(details.contains("curiosity") && details.contains("RESTRICTED"), "{details}");
        assert!(!details.contains("\"x\""), "never the plaintext: {details}");
        assert_eq!(decrypts[0].subject.as_deref(), Some("u-42"));
    }

    #[tokio::test]
    async fn limits_and_policies_are_enforced() {
        let h = harness(EncryptionPolicies::defaults(false).with_max_plaintext(64).unwrap());
        let internal = ctx(DataClassification::Internal);
        assert!(matches!(
            h.service.encrypt(&all(), &[0; 65], &internal, SealOptions::default()).await,
            Err(CryptoServiceError::TooLarge { size: 65, max: 64 })
        ));
        assert!(h.service.encrypt(&all(), &[0; 64], &internal, SealOptions::default()).await.is_ok());
        for bad in [
            EncryptionContext { purpose: " ".into(), ..internal.clone() },
            EncryptionContext { purpose: "x".repeat(257), ..internal.clone() },
            EncryptionContext { user_id: Some(String::new()), ..internal.clone() },
            EncryptionContext { field: Some("a\u{0}b".into()), ..internal.clone() },
        ] {
            assert!(
                matches!(
                    h.service.encrypt(&all(), b"x", &bad, SealOptions::default()).await,
                    Err(CryptoServiceError::Invalid { .. })
                ),
                "{bad:?}"
            );
        }
        // Data sealed under a higher limit still opens after the limit is lowered.
        let roomy = harness(EncryptionPolicies::defaults(false).with_max_plaintext(1 << 20).unwrap());
        let bomb = roomy.service.encrypt(&all(), &vec![0; 1 << 20], &internal, SealOptions { compress: true }).await;
        let bomb = bomb.unwrap();
        assert!(bomb.ciphertext.len() < 1024);
        let strict = CryptoService::new(
            roomy.keyring.clone(),
            Arc::new(AuditLog::new(roomy.store.clone(), roomy.keyring.clone(), Arc::new(ManualClock::fixed()))),
            EncryptionPolicies::defaults(false).with_max_plaintext(4096).unwrap(),
            false,
        );
        let opened = strict.decrypt(&all(), &bomb, &internal, &meta()).await.unwrap();
        assert_eq!(opened.len(), 1 << 20);
        // A class that needs an HSM is refused without one.
        let hsm = EncryptionPolicies::defaults(true);
        let without = harness(hsm);
        assert!(matches!(
            without.service.encrypt(&all(), b"x", &ctx(DataClassification::TopSecret), SealOptions::default()).await,
            Err(CryptoServiceError::HsmRequired(DataClassification::TopSecret))
        ));
    }

    #[tokio::test]
    async fn rewrap_moves_to_the_newest_version_and_old_envelopes_still_open() {
        let h = harness(EncryptionPolicies::defaults(false));
        let class = DataClassification::Restricted;
        let old = h.service.encrypt(&all(), b"pan", &ctx(class), SealOptions::default()).await.unwrap();
        let same = h.service.rewrap(&all(), &old, &ctx(class)).await.unwrap();
        assert_eq!(same, old, "already under the newest version");
        let version = h.keyring.rotate(KeyPurpose::Class(class)).await.unwrap();
        assert_eq!(version, 2);
        let new = h.service.rewrap(&all(), &old, &ctx(class)).await.unwrap();
        assert_eq!(new.key_version, 2);
        assert_ne!(new.key_id, old.key_id);
        for envelope in [&old, &new] {
            assert_eq!(h.service.decrypt(&all(), envelope, &ctx(class), &meta()).await.unwrap().as_slice(), b"pan");
        }
        let wrong = EncryptionContext { user_id: Some("someone else".into()), ..ctx(class) };
        assert!(decrypt_failed(h.service.rewrap(&all(), &old, &wrong).await));
        assert!(decrypt_failed(h.service.rewrap(&all(), &new, &wrong).await), "even when nothing would change");
        assert!(matches!(
            h.service.rewrap(&caller(&["crypto:decrypt"]), &old, &ctx(class)).await,
            Err(CryptoServiceError::Auth(_))
        ));
        // Other classes keep their version.
        let internal = ctx(DataClassification::Internal);
        let sealed = h.service.encrypt(&all(), b"x", &internal, SealOptions::default()).await.unwrap();
        assert_eq!(sealed.key_version, 1);
    }

    #[tokio::test]
    async fn data_keys_come_sealed_and_open_to_the_same_key() {
        let h = harness(EncryptionPolicies::defaults(false));
        let context = ctx(DataClassification::Confidential);
        let key = h.service.data_key(&all(), &context, true).await.unwrap();
        let plaintext = key.plaintext.unwrap();
        assert_eq!(plaintext.len(), 32);
        let opened = h.service.decrypt(&all(), &key.sealed, &context, &meta()).await.unwrap();
        assert_eq!(opened.as_slice(), plaintext.as_slice());
        let wrapped_only = h.service.data_key(&all(), &context, false).await.unwrap();
        assert!(wrapped_only.plaintext.is_none());
        assert_ne!(wrapped_only.sealed.ciphertext, key.sealed.ciphertext);
    }

    #[tokio::test]
    async fn fields_are_encrypted_one_by_one_and_bound_to_their_name() {
        let h = harness(EncryptionPolicies::defaults(false));
        let record = json!({"name": "Ada", "email": "ada@example.org", "ssn": "078-05-1120", "age": 36, "note": null});
        let classes = vec![
            ("email".to_owned(), DataClassification::Internal),
            ("ssn".to_owned(), DataClassification::Restricted),
            ("age".to_owned(), DataClassification::Confidential),
            ("note".to_owned(), DataClassification::Confidential),
            ("missing".to_owned(), DataClassification::Confidential),
        ];
        let base = EncryptionContext::new(DataClassification::Internal, "profile");
        let record = record.as_object().unwrap().clone();
        let (out, encrypted) = h.service.encrypt_fields(&all(), record, &classes, &base).await.unwrap();
        assert_eq!(encrypted, ["email", "ssn", "age"]);
        assert_eq!(out["name"], "Ada");
        assert_eq!(out["note"], serde_json::Value::Null);
        assert!(!out.contains_key("missing"));
        let ssn: SealedEnvelope = serde_json::from_value(out["ssn"].clone()).unwrap();
        assert_eq!(ssn.classification, DataClassification::Restricted);
        let at = |field: &str, class| EncryptionContext {
            data_classification: class,
            purpose: "profile".into(),
            user_id: None,
            field: Some(field.into()),
            compliance: Vec::new(),
        };
        let opened = h.service.decrypt(&all(), &ssn, &at("ssn", DataClassification::Restricted), &meta()).await;
        assert_eq!(opened.unwrap().as_slice(), b"\"078-05-1120\"");
        let age: SealedEnvelope = serde_json::from_value(out["age"].clone()).unwrap();
        let opened = h.service.decrypt(&all(), &age, &at("age", DataClassification::Confidential), &meta()).await;
        assert_eq!(opened.unwrap().as_slice(), b"36", "numbers keep their JSON form");
        // Moved to another field: refused.
        let moved = h.service.decrypt(&all(), &ssn, &at("email", DataClassification::Restricted), &meta()).await;
        assert!(decrypt_failed(moved));
        // One class the caller may not encrypt refuses the whole record.
        let narrow = caller(&["crypto:encrypt:internal"]);
        let record = json!({"email": "a@b.c", "ssn": "1"}).as_object().unwrap().clone();
        assert!(matches!(
            h.service.encrypt_fields(&narrow, record, &classes, &base).await,
            Err(CryptoServiceError::Auth(_))
        ));
    }
}

/// The per-class rotation schedule, on a manual clock.
mod schedule {
    use std::sync::Arc;

    use super::super::*;
    use crate::audit::AuditLog;
    use crate::auth::Principal;
    use crate::clock::{Clock, ManualClock};
    use crate::testing::MemoryStore;
    use crate::user::UserId;

    #[tokio::test]
    async fn each_used_class_rotates_after_its_own_period_once_across_instances() {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::fixed());
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let instance = || {
            let provider = Arc::new(LocalKeyProvider::new(&MasterKey::from_bytes([4; 32])).unwrap());
            let keyring = Arc::new(Keyring::new(provider, store.clone(), dyn_clock.clone()));
            let audit = Arc::new(AuditLog::new(store.clone(), keyring.clone(), dyn_clock.clone()));
            let policies = EncryptionPolicies::defaults(false)
                .with_overrides(&["RESTRICTED.rotation_days=30".into()], false)
                .unwrap();
            CryptoService::new(keyring, audit, policies, false)
        };
        let (a, b) = (instance(), instance());
        let caller = Principal {
            user_id: UserId::generate(),
            session_id: None,
            scopes: vec!["crypto:encrypt".into()],
            jti: None,
            expires_at: None,
            api_key_id: None,
            amr: Vec::new(),
        };
        for class in [DataClassification::Restricted, DataClassification::Internal] {
            let context = EncryptionContext::new(class, "p");
            a.encrypt(&caller, b"x", &context, SealOptions::default()).await.unwrap();
        }
        assert!(a.rotate_due().await.unwrap().is_empty(), "nothing is due on day 0");
        clock.advance(time::Duration::days(30));
        let (first, second) = tokio::join!(a.rotate_due(), b.rotate_due());
        let mut all: Vec<_> = first.unwrap().into_iter().chain(second.unwrap()).collect();
        all.sort_by_key(|(c, _)| c.as_str());
        assert_eq!(
            all,
            [(DataClassification::Restricted, 2)],
            "one instance rotates RESTRICTED; INTERNAL waits 90 days"
        );
        clock.advance(time::Duration::days(60));
        let mut rotated = a.rotate_due().await.unwrap();
        rotated.sort_by_key(|(c, _)| c.as_str());
        assert_eq!(rotated, [(DataClassification::Internal, 2), (DataClassification::Restricted, 3)]);
        // Families never used are not created by the schedule.
        let status = Keyring::new(
            Arc::new(LocalKeyProvider::new(&MasterKey::from_bytes([4; 32])).unwrap()),
            store.clone(),
            dyn_clock.clone(),
        )
        .status()
        .await
        .unwrap();
        assert!(!status.iter().any(|k| k.purpose == KeyPurpose::Class(DataClassification::Public)));
    }
}

/// Crypto-shredding: an owner's keys destroyed make their envelopes unreadable, everywhere.
mod shredding {
    use std::sync::Arc;

    use super::super::*;
    use crate::audit::{AuditLog, RequestMeta};
    use crate::auth::Principal;
    use crate::clock::{Clock, ManualClock};
    use crate::store::KeyStore;
    use crate::testing::MemoryStore;
    use crate::user::UserId;

    fn caller() -> Principal {
        Principal {
            user_id: UserId::generate(),
            session_id: None,
            scopes: vec!["crypto:encrypt".into(), "crypto:decrypt".into()],
            jti: None,
            expires_at: None,
            api_key_id: None,
            amr: Vec::new(),
        }
    }

    fn of(owner: Option<&str>) -> EncryptionContext {
        let mut context = EncryptionContext::new(DataClassification::Pii, "profile");
        context.user_id = owner.map(str::to_owned);
        context
    }

    async fn seal(service: &CryptoService, who: &Principal, owner: Option<&str>, text: &[u8]) -> SealedEnvelope {
        service.encrypt(who, text, &of(owner), SealOptions::default()).await.unwrap()
    }

    #[tokio::test]
    async fn an_owners_envelopes_stop_opening_on_every_instance_and_no_one_elses_do() {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::fixed());
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let instance = || {
            let provider = Arc::new(LocalKeyProvider::new(&MasterKey::from_bytes([6; 32])).unwrap());
            let keyring = Arc::new(Keyring::new(provider, store.clone(), dyn_clock.clone()));
            let audit = Arc::new(AuditLog::new(store.clone(), keyring.clone(), dyn_clock.clone()));
            CryptoService::new(keyring, audit, EncryptionPolicies::defaults(false), false)
        };
        let (a, b) = (instance(), instance());
        let (who, meta) = (caller(), RequestMeta::default());
        let ada = seal(&a, &who, Some("ada"), b"ada's").await;
        let bob = seal(&a, &who, Some("bob"), b"bob's").await;
        let nobody = seal(&a, &who, None, b"anyone's").await;
        assert!(ada.owner_key.is_some() && bob.owner_key.is_some() && nobody.owner_key.is_none());
        assert_ne!(ada.owner_key, bob.owner_key, "one key per owner");
        // Instance b has ada's key cached.
        assert_eq!(b.decrypt(&who, &ada, &of(Some("ada")), &meta).await.unwrap().as_slice(), b"ada's");
        // Her envelope under bob's name does not open (the owner is bound, not just named).
        assert!(matches!(
            b.decrypt(&who, &ada, &of(Some("bob")), &meta).await,
            Err(CryptoServiceError::DecryptionFailed)
        ));

        assert_eq!(a.shred_owner("ada").await.unwrap(), 1);
        assert!(store.data_keys(KeyPurpose::Owner(OwnerKeyId::of("ada"))).await.unwrap().is_empty());
        assert!(matches!(
            a.decrypt(&who, &ada, &of(Some("ada")), &meta).await,
            Err(CryptoServiceError::DecryptionFailed)
        ));
        // The other instance stops within the cache bound.
        clock.advance(time::Duration::seconds(61));
        assert!(matches!(
            b.decrypt(&who, &ada, &of(Some("ada")), &meta).await,
            Err(CryptoServiceError::DecryptionFailed)
        ));
        // Nobody else lost anything, and ada's new data goes under a new key.
        assert_eq!(b.decrypt(&who, &bob, &of(Some("bob")), &meta).await.unwrap().as_slice(), b"bob's");
        assert_eq!(b.decrypt(&who, &nobody, &of(None), &meta).await.unwrap().as_slice(), b"anyone's");
        let again = seal(&a, &who, Some("ada"), b"new").await;
        assert_ne!(again.owner_key, ada.owner_key);
        assert_eq!(a.decrypt(&who, &again, &of(Some("ada")), &meta).await.unwrap().as_slice(), b"new");
        assert_eq!(a.shred_owner("nobody-at-all").await.unwrap(), 0);
    }

    #[test]
    fn owner_families_have_stable_fixed_size_names_that_parse_back() {
        let purpose = KeyPurpose::Owner(OwnerKeyId::of("customer-7"));
        let name = purpose.name();
        assert_eq!(name.len(), 37);
        assert!(name.starts_with("user:"));
        assert_eq!(KeyPurpose::parse(&name), Some(purpose));
        assert_eq!(KeyPurpose::Owner(OwnerKeyId::of("customer-7")).name(), name, "stable");
        assert_ne!(KeyPurpose::Owner(OwnerKeyId::of("customer-8")).name(), name);
        for bad in
            ["user:", "user:XYZ", "user:0123456789abcdef0123456789ABCDEF", "user:0123456789abcdef0123456789abcde"]
        {
            assert_eq!(KeyPurpose::parse(bad), None, "{bad}");
        }
    }
}
