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
