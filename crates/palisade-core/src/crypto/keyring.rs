//! The keyring: versioned data keys, made on first use, wrapped by the key provider, kept in the
//! durable store and cached unwrapped in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use time::Duration;

use super::aead::{AeadError, AeadKey, DataKeyMaterial};
use super::envelope::{EncryptionContext, Envelope};
use super::master::KeyProvider;
use super::{KeyPurpose, WrappedDataKey};
use crate::clock::Clock;
use crate::store::{KeyStore, StoreError};

/// How long an instance trusts its idea of the active key before re-reading the store, so a rotation
/// made on another instance is picked up within this bound.
const ACTIVE_KEY_REFRESH: Duration = Duration::seconds(60);

/// Why a keyring operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key store is unreachable (callers answer 503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Decryption failed: wrong context, altered data, or wrong key.
    #[error(transparent)]
    Aead(#[from] AeadError),
    /// The envelope names a key this store does not have.
    #[error("unknown data key {0}")]
    UnknownKey(uuid::Uuid),
    /// A stored data key cannot be unwrapped: the configured master key is not the one that wrapped it.
    #[error(
        "data key {key_id} cannot be unwrapped by the configured master key ({provider}); it was wrapped by {wrapped_by}"
    )]
    WrongMasterKey {
        /// The key that failed.
        key_id: uuid::Uuid,
        /// The configured provider.
        provider: String,
        /// The provider recorded with the key.
        wrapped_by: String,
    },
    /// The envelope's key is not a data-encryption key, or its version disagrees with the store.
    #[error("envelope does not match its key")]
    Mismatch,
    /// A minimum decryption version outside 1 ..= the family's active version.
    #[error("{purpose}: the minimum decryption version must be from 1 to the active version {active}, not {version}")]
    VersionOutOfRange {
        /// The family.
        purpose: KeyPurpose,
        /// The version asked for.
        version: u32,
        /// The active version (0: the family has no key).
        active: u32,
    },
}

impl CryptoError {
    /// Whether this failure is the store being unreachable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_unavailable()) || matches!(self, Self::Aead(AeadError::Unavailable))
    }
}

/// A data key unwrapped and ready for use.
pub(crate) struct LoadedKey {
    pub(crate) id: uuid::Uuid,
    pub(crate) version: u32,
    pub(crate) purpose: KeyPurpose,
    pub(crate) material: DataKeyMaterial,
    aead: AeadKey,
}

/// Seals with `algorithm` under raw `material` (a derived key) and a fresh random nonce.
pub(crate) fn seal_under(
    material: &DataKeyMaterial,
    algorithm: super::Algorithm,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), AeadError> {
    match algorithm {
        super::Algorithm::Aes256Gcm => AeadKey::new(material)?.seal_detached(plaintext, aad),
        super::Algorithm::XChaCha20Poly1305 => super::aead::xchacha_seal(material, plaintext, aad),
    }
}

/// Reverses [`seal_under`].
pub(crate) fn open_under(
    material: &DataKeyMaterial,
    algorithm: super::Algorithm,
    nonce: &[u8],
    sealed: &[u8],
    aad: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, AeadError> {
    match algorithm {
        super::Algorithm::Aes256Gcm => {
            let nonce: [u8; super::aead::NONCE_BYTES] = nonce.try_into().map_err(|_| AeadError::Open)?;
            AeadKey::new(material)?.open_with_nonce(nonce, sealed, aad)
        }
        super::Algorithm::XChaCha20Poly1305 => super::aead::xchacha_open(material, nonce, sealed, aad),
    }
}

impl LoadedKey {
    /// Seals with `algorithm` and a fresh random nonce: `(nonce, ciphertext || tag)`.
    pub(crate) fn seal_with(
        &self,
        algorithm: super::Algorithm,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), AeadError> {
        match algorithm {
            super::Algorithm::Aes256Gcm => self.aead.seal_detached(plaintext, aad),
            super::Algorithm::XChaCha20Poly1305 => super::aead::xchacha_seal(&self.material, plaintext, aad),
        }
    }

    /// Reverses [`LoadedKey::seal_with`].
    pub(crate) fn open_with(
        &self,
        algorithm: super::Algorithm,
        nonce: &[u8],
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, AeadError> {
        match algorithm {
            super::Algorithm::Aes256Gcm => {
                let nonce: [u8; super::aead::NONCE_BYTES] = nonce.try_into().map_err(|_| AeadError::Open)?;
                self.aead.open_with_nonce(nonce, sealed, aad)
            }
            super::Algorithm::XChaCha20Poly1305 => super::aead::xchacha_open(&self.material, nonce, sealed, aad),
        }
    }
}

struct ActiveKey {
    key: Arc<LoadedKey>,
    checked_at: time::OffsetDateTime,
}

/// Public facts about one data key, for status displays; never the material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's id.
    pub id: uuid::Uuid,
    /// Its purpose.
    pub purpose: KeyPurpose,
    /// Its version.
    pub version: u32,
    /// The provider that wrapped it.
    pub provider: String,
    /// When it was made.
    pub created_at: time::OffsetDateTime,
    /// Whether it is the version new data is sealed with.
    pub active: bool,
}

/// Versioned data keys over a [`KeyProvider`] and a [`KeyStore`].
///
/// `std::sync::RwLock` guards the caches: they are never held across an `.await`.
pub struct Keyring {
    provider: Arc<dyn KeyProvider>,
    store: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    by_id: RwLock<HashMap<uuid::Uuid, Arc<LoadedKey>>>,
    active: RwLock<HashMap<KeyPurpose, ActiveKey>>,
    /// Each family's minimum decryption version, with when it was read.
    min_versions: RwLock<HashMap<KeyPurpose, (u32, time::OffsetDateTime)>>,
    /// When each cached owner key was last seen in the store: an owner's family can be deleted
    /// (crypto-shredding) on any instance, and this one must stop using its copy within 60 s.
    owner_checked: RwLock<HashMap<uuid::Uuid, time::OffsetDateTime>>,
}

impl Keyring {
    /// A keyring over the given provider and store.
    pub fn new(provider: Arc<dyn KeyProvider>, store: Arc<dyn KeyStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            provider,
            store,
            clock,
            by_id: RwLock::default(),
            active: RwLock::default(),
            min_versions: RwLock::default(),
            owner_checked: RwLock::default(),
        }
    }

    /// The provider's id (`local:<fingerprint>`).
    pub fn provider_id(&self) -> String {
        self.provider.id()
    }

    /// Whether the master key is in an HSM.
    pub fn provider_is_hardware(&self) -> bool {
        self.provider.is_hardware()
    }

    /// Whether the provider answers now (see [`KeyProvider::health`]).
    pub async fn provider_health(&self) -> Result<(), AeadError> {
        self.provider.health().await
    }

    /// Encrypts `plaintext` with the newest data key, bound to `context`.
    ///
    /// The newest version is read from the store at each call rather than from the 60 s cache of
    /// [`Self::active`]: what this seals (second factors, signing keys) is rare, and a value sealed
    /// under a version another instance has just replaced could land behind the re-encryption
    /// job's cursor and stay on the old key.
    pub async fn encrypt(&self, plaintext: &[u8], context: &EncryptionContext) -> Result<Envelope, CryptoError> {
        let key = self.newest(KeyPurpose::Data).await?;
        Ok(Self::seal_data(&key, plaintext, context)?)
    }

    /// Seals with `key` as [`Self::encrypt`] does.
    pub(crate) fn seal_data(
        key: &LoadedKey,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Envelope, AeadError> {
        let data = key.aead.seal(plaintext, &context.aad(key.id, key.version))?;
        Ok(Envelope { v: 1, key_id: key.id, key_version: key.version, data })
    }

    /// The newest version of `purpose` as the store has it now (made, version 1, if there is none),
    /// which also refreshes this instance's idea of the active key.
    pub(crate) async fn newest(&self, purpose: KeyPurpose) -> Result<Arc<LoadedKey>, CryptoError> {
        let now = self.clock.now();
        let key = loop {
            let newest = self.store.data_keys(purpose).await?.into_iter().max_by_key(|k| k.version);
            match newest {
                Some(stored) => break self.load(stored).await?,
                None => {
                    if let Some(made) = self.create(purpose, 1).await? {
                        break made;
                    }
                }
            }
        };
        write(&self.active).insert(purpose, ActiveKey { key: key.clone(), checked_at: now });
        Ok(key)
    }

    /// Decrypts an envelope made by [`Keyring::encrypt`] under the same `context`.
    pub async fn decrypt(
        &self,
        envelope: &Envelope,
        context: &EncryptionContext,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        let key = self.by_id(envelope.key_id).await?;
        if key.purpose != KeyPurpose::Data || key.version != envelope.key_version || envelope.v != 1 {
            return Err(CryptoError::Mismatch);
        }
        Ok(key.aead.open(&envelope.data, &context.aad(key.id, key.version))?)
    }

    /// HMAC-SHA256 of `secret` under a subkey derived from a data key: the subkey is the HMAC of
    /// `label` under the data key `key_id` (the active data key when `None`), so each use (API-key
    /// secrets, backup codes, one-time codes) hashes under its own key. Returns the key id used and
    /// the MAC. Compare MACs with [`crate::crypto::constant_time_eq`].
    pub async fn keyed_hash(
        &self,
        label: &[u8],
        key_id: Option<uuid::Uuid>,
        secret: &[u8],
    ) -> Result<(uuid::Uuid, [u8; 32]), CryptoError> {
        let key = match key_id {
            Some(id) => self.by_id(id).await?,
            None => self.active(KeyPurpose::Data).await?,
        };
        if key.purpose != KeyPurpose::Data {
            return Err(CryptoError::Mismatch);
        }
        let root = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.material.expose());
        let subkey = aws_lc_rs::hmac::sign(&root, label);
        let mac =
            aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, subkey.as_ref()), secret);
        let mut out = [0u8; 32];
        out.copy_from_slice(mac.as_ref());
        Ok((key.id, out))
    }

    /// A 256-bit key for `label` that stays the same across data-key rotations: the HMAC of `label`
    /// under the *first* data key. For identifiers that must keep matching for as long as the
    /// records that hold them (device fingerprints), where [`Self::keyed_hash`] under the active
    /// key would change at each rotation.
    pub async fn stable_subkey(&self, label: &[u8]) -> Result<zeroize::Zeroizing<[u8; 32]>, CryptoError> {
        let first = self.store.data_keys(KeyPurpose::Data).await?.into_iter().min_by_key(|k| k.version);
        let (_, mac) = self.keyed_hash(label, first.map(|k| k.id), b"").await?;
        Ok(zeroize::Zeroizing::new(mac))
    }

    /// Makes a new version of the keys for `purpose` and makes it active; older versions keep
    /// decrypting and verifying. Returns the new version.
    pub async fn rotate(&self, purpose: KeyPurpose) -> Result<u32, CryptoError> {
        loop {
            let latest = self.store.data_keys(purpose).await?.into_iter().map(|k| k.version).max().unwrap_or(0);
            if let Some(key) = self.create(purpose, latest.saturating_add(1)).await? {
                return Ok(key.version);
            }
        }
    }

    /// Rotates `purpose` when its newest version is at least `period` old: the rotation schedule.
    /// A family with no key yet is left alone (its first use makes one). Of several instances
    /// running the schedule at once, one makes the new version and the others see it made: the
    /// answer is the new version, or `None` when nothing was due or another instance did it.
    pub async fn rotate_if_older_than(
        &self,
        purpose: KeyPurpose,
        period: Duration,
    ) -> Result<Option<u32>, CryptoError> {
        let Some(newest) = self.store.data_keys(purpose).await?.into_iter().max_by_key(|k| k.version) else {
            return Ok(None);
        };
        if self.clock.now() - newest.created_at < period {
            return Ok(None);
        }
        Ok(self.create(purpose, newest.version.saturating_add(1)).await?.map(|key| key.version))
    }

    /// The lowest version of `purpose` that may still decrypt (Vault's `min_decryption_version`),
    /// re-read from the store at most every 60 s (the bound within which a retirement made on
    /// another instance takes effect here).
    pub async fn min_decryption_version(&self, purpose: KeyPurpose) -> Result<u32, CryptoError> {
        let now = self.clock.now();
        if let Some((version, read_at)) = read(&self.min_versions).get(&purpose)
            && now - *read_at < ACTIVE_KEY_REFRESH
        {
            return Ok(*version);
        }
        let version = self.store.min_decryption_version(purpose).await?;
        write(&self.min_versions).insert(purpose, (version, now));
        Ok(version)
    }

    /// Retires the versions of `purpose` below `version` (or, lowered, brings them back). The
    /// active version can never be retired. Takes effect here at once, elsewhere within 60 s.
    pub async fn set_min_decryption_version(&self, purpose: KeyPurpose, version: u32) -> Result<(), CryptoError> {
        let active = self.store.data_keys(purpose).await?.into_iter().map(|k| k.version).max().unwrap_or(0);
        if version == 0 || version > active {
            return Err(CryptoError::VersionOutOfRange { purpose, version, active });
        }
        let now = self.clock.now();
        self.store.set_min_decryption_version(purpose, version, now).await?;
        write(&self.min_versions).insert(purpose, (version, now));
        Ok(())
    }

    /// Deletes every version of `purpose`'s family (crypto-shredding an owner) and forgets this
    /// instance's copies; other instances stop using theirs within 60 s. Returns how many keys went.
    pub async fn destroy(&self, purpose: KeyPurpose) -> Result<u64, CryptoError> {
        let deleted = self.store.delete_data_keys(purpose).await?;
        self.forget(purpose);
        tracing::info!(%purpose, deleted, "destroyed a key family");
        Ok(deleted)
    }

    /// Drops every cached key of `purpose`.
    fn forget(&self, purpose: KeyPurpose) {
        let gone: Vec<uuid::Uuid> =
            read(&self.by_id).iter().filter(|(_, k)| k.purpose == purpose).map(|(id, _)| *id).collect();
        let mut by_id = write(&self.by_id);
        let mut checked = write(&self.owner_checked);
        for id in gone {
            by_id.remove(&id);
            checked.remove(&id);
        }
        drop((by_id, checked));
        write(&self.active).remove(&purpose);
        write(&self.min_versions).remove(&purpose);
    }

    /// Every data key, with which one is active per purpose.
    pub async fn status(&self) -> Result<Vec<KeyInfo>, CryptoError> {
        let mut out = Vec::new();
        let classes = super::DataClassification::ALL.into_iter().map(KeyPurpose::Class);
        for purpose in [KeyPurpose::Data, KeyPurpose::Audit].into_iter().chain(classes) {
            let keys = self.store.data_keys(purpose).await?;
            let top = keys.iter().map(|k| k.version).max();
            out.extend(keys.into_iter().map(|k| KeyInfo {
                active: Some(k.version) == top,
                id: k.id,
                purpose: k.purpose,
                version: k.version,
                provider: k.provider,
                created_at: k.created_at,
            }));
        }
        Ok(out)
    }

    /// The active key of `purpose`, made (version 1) if there is none yet.
    pub(crate) async fn active(&self, purpose: KeyPurpose) -> Result<Arc<LoadedKey>, CryptoError> {
        let now = self.clock.now();
        if let Some(active) = read(&self.active).get(&purpose)
            && now - active.checked_at < ACTIVE_KEY_REFRESH
        {
            return Ok(active.key.clone());
        }
        self.newest(purpose).await
    }

    /// A key by id, from the cache or the store. An owner's key cached more than 60 s ago is looked
    /// up again: it may have been shredded on another instance.
    pub(crate) async fn by_id(&self, id: uuid::Uuid) -> Result<Arc<LoadedKey>, CryptoError> {
        let cached = read(&self.by_id).get(&id).cloned();
        if let Some(key) = cached {
            if !matches!(key.purpose, KeyPurpose::Owner(_)) {
                return Ok(key);
            }
            let now = self.clock.now();
            let fresh = read(&self.owner_checked).get(&id).is_some_and(|at| now - *at < ACTIVE_KEY_REFRESH);
            if fresh {
                return Ok(key);
            }
            if self.store.data_key(id).await?.is_some() {
                write(&self.owner_checked).insert(id, now);
                return Ok(key);
            }
            self.forget(key.purpose);
            return Err(CryptoError::UnknownKey(id));
        }
        let stored = self.store.data_key(id).await?.ok_or(CryptoError::UnknownKey(id))?;
        self.load(stored).await
    }

    /// Generates, wraps and stores `version` of `purpose`; `None` when another writer stored that
    /// version first.
    async fn create(&self, purpose: KeyPurpose, version: u32) -> Result<Option<Arc<LoadedKey>>, CryptoError> {
        let material = DataKeyMaterial::generate()?;
        let id = uuid::Uuid::now_v7();
        let wrapped = WrappedDataKey {
            id,
            purpose,
            version,
            provider: self.provider.id(),
            wrapped: self.provider.wrap(id, &material).await?,
            created_at: self.clock.now(),
        };
        if !self.store.insert_data_key(&wrapped).await? {
            return Ok(None);
        }
        tracing::info!(key_id = %id, %purpose, version, "created data key");
        let key = self.cache(id, version, purpose, material)?;
        write(&self.active).insert(purpose, ActiveKey { key: key.clone(), checked_at: self.clock.now() });
        Ok(Some(key))
    }

    async fn load(&self, stored: WrappedDataKey) -> Result<Arc<LoadedKey>, CryptoError> {
        if let Some(key) = read(&self.by_id).get(&stored.id) {
            return Ok(key.clone());
        }
        let material = self.provider.unwrap(stored.id, &stored.wrapped).await.map_err(|e| match e {
            AeadError::Unavailable => CryptoError::Aead(e),
            _ => CryptoError::WrongMasterKey {
                key_id: stored.id,
                provider: self.provider.id(),
                wrapped_by: stored.provider.clone(),
            },
        })?;
        self.cache(stored.id, stored.version, stored.purpose, material)
    }

    fn cache(
        &self,
        id: uuid::Uuid,
        version: u32,
        purpose: KeyPurpose,
        material: DataKeyMaterial,
    ) -> Result<Arc<LoadedKey>, CryptoError> {
        let aead = AeadKey::new(&material)?;
        let key = Arc::new(LoadedKey { id, version, purpose, material, aead });
        write(&self.by_id).insert(id, key.clone());
        if matches!(purpose, KeyPurpose::Owner(_)) {
            write(&self.owner_checked).insert(id, self.clock.now());
        }
        Ok(key)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
