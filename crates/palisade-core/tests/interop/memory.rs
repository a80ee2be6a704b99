//! In-memory data-key and signing-key stores, and signing keys over them: enough of the durable
//! store for the interop test and the token benchmark (`benches/token_verify.rs` includes this file;
//! both allow `expect` at their top).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use palisade_core::clock::Clock;
use palisade_core::crypto::{KeyPurpose, Keyring, LocalKeyProvider, MasterKey, WrappedDataKey};
use palisade_core::store::{KeyStore, SigningKeyStore, StoreError};
use palisade_core::token::SigningKeyRecord;
use palisade_core::token::keys::{SigningAlgorithm, SigningKeyError, SigningKeys};

/// Data keys and signing keys, in memory.
#[derive(Default)]
pub struct MemoryStore {
    data_keys: Mutex<Vec<WrappedDataKey>>,
    min_versions: Mutex<std::collections::HashMap<KeyPurpose, u32>>,
    signing_keys: Mutex<Vec<SigningKeyRecord>>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Other("poisoned".into())
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_data_key(&self, key: &WrappedDataKey) -> Result<bool, StoreError> {
        let mut keys = self.data_keys.lock().map_err(poisoned)?;
        if keys.iter().any(|k| k.purpose == key.purpose && k.version == key.version) {
            return Ok(false);
        }
        keys.push(key.clone());
        Ok(true)
    }

    async fn data_keys(&self, purpose: KeyPurpose) -> Result<Vec<WrappedDataKey>, StoreError> {
        Ok(self.data_keys.lock().map_err(poisoned)?.iter().filter(|k| k.purpose == purpose).cloned().collect())
    }

    async fn data_key(&self, id: uuid::Uuid) -> Result<Option<WrappedDataKey>, StoreError> {
        Ok(self.data_keys.lock().map_err(poisoned)?.iter().find(|k| k.id == id).cloned())
    }
    async fn delete_data_keys(&self, purpose: KeyPurpose) -> Result<u64, StoreError> {
        let mut keys = self.data_keys.lock().map_err(poisoned)?;
        let before = keys.len();
        keys.retain(|k| k.purpose != purpose);
        Ok((before - keys.len()) as u64)
    }

    async fn min_decryption_version(&self, purpose: KeyPurpose) -> Result<u32, StoreError> {
        Ok(self.min_versions.lock().map_err(poisoned)?.get(&purpose).copied().unwrap_or(1))
    }

    async fn set_min_decryption_version(
        &self,
        purpose: KeyPurpose,
        version: u32,
        _at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.min_versions.lock().map_err(poisoned)?.insert(purpose, version);
        Ok(())
    }
}

#[async_trait]
impl SigningKeyStore for MemoryStore {
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError> {
        let mut keys = self.signing_keys.lock().map_err(poisoned)?;
        if keys.iter().any(|k| k.algorithm == key.algorithm && k.version == key.version) {
            return Ok(false);
        }
        if keys.iter().any(|k| k.kid == key.kid) {
            return Err(StoreError::Other("duplicate kid".into()));
        }
        keys.push(key.clone());
        Ok(true)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        Ok(self.signing_keys.lock().map_err(poisoned)?.clone())
    }

    async fn retire_signing_key(&self, kid: &str, at: time::OffsetDateTime) -> Result<bool, StoreError> {
        let mut keys = self.signing_keys.lock().map_err(poisoned)?;
        Ok(keys.iter_mut().find(|k| k.kid == kid).map(|k| k.retired_at = Some(at)).is_some())
    }
}

/// A keyring over `store` with a fixed test master key.
pub fn keyring(store: &Arc<MemoryStore>, clock: &Arc<dyn Clock>) -> Arc<Keyring> {
    let provider = LocalKeyProvider::new(&MasterKey::from_bytes([42; 32])).expect("a 32-byte master key");
    Arc::new(Keyring::new(Arc::new(provider), store.clone(), clock.clone()))
}

/// Signing keys of `algorithm` over `store` (creating the key on first use).
pub async fn signing_keys(
    store: &Arc<MemoryStore>,
    keyring: &Arc<Keyring>,
    clock: &Arc<dyn Clock>,
    algorithm: SigningAlgorithm,
) -> Result<SigningKeys, SigningKeyError> {
    // 15 minutes of token lifetime and 30 s of leeway, the defaults.
    let token_life = time::Duration::seconds(15 * 60 + 30);
    SigningKeys::load_or_create(store.clone(), keyring.clone(), clock.clone(), algorithm, None, token_life).await
}
