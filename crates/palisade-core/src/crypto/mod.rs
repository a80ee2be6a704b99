//! Keys and encryption: the master key, versioned data keys wrapped by it, and AEAD envelopes whose
//! additional authenticated data binds each ciphertext to its context; the encryption service with
//! its per-classification policies (`service`, `policy`) and its envelope format (`sealed`).
//!
//! Primitives come from aws-lc-rs only; nothing here implements a cipher or a MAC by hand.

mod aead;
mod envelope;
mod keyring;
mod master;
pub mod policy;
pub mod reencrypt;
mod sealed;
pub mod service;

pub use aead::{AeadError, DataKeyMaterial};
pub use envelope::{DataClassification, EncryptionContext, Envelope, EnvelopeParseError};
pub use keyring::{CryptoError, KeyInfo, Keyring};
pub use master::{KeyProvider, LocalKeyProvider, MasterKey, MasterKeyError};
pub use policy::{Algorithm, ClassPolicy, EncryptionPolicies, PolicyError};
pub use sealed::SealedEnvelope;
pub use service::{CryptoService, CryptoServiceError, DataKey, SealOptions};

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a data key is for: its family. Keys of different families never mix; versions count
/// within a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// Palisade's own secrets at rest (TOTP secrets, signing keys) and keyed hashes (AES-256-GCM,
    /// HMAC-SHA256).
    Data,
    /// The audit chain's HMAC-SHA256 key.
    Audit,
    /// The encryption service's data of one classification (`POST /crypto/encrypt`): one family per
    /// class, so each class rotates, retires and is wrapped (HSM or not) on its own.
    Class(DataClassification),
    /// One data owner's key (crypto-shredding): every envelope whose context names this owner is
    /// sealed under a key derived from the class key *and* this one, so deleting this family makes
    /// them unreadable. The 16 bytes are the first half of SHA-256 over the owner's id.
    Owner(OwnerKeyId),
}

/// Which owner an [`KeyPurpose::Owner`] family belongs to: the first 16 bytes of SHA-256 over the
/// owner's id as the application names it (`context.user_id`), so any id maps to a fixed-size name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnerKeyId(pub [u8; 16]);

impl OwnerKeyId {
    /// The owner key id of `owner`.
    pub fn of(owner: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, owner.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(digest.as_ref().get(..16).unwrap_or(&[0u8; 16]));
        Self(id)
    }
}

impl KeyPurpose {
    /// The stable name used in the store (`data`, `audit`, `class:restricted`, `user:<32 hex>`).
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Data => "data".into(),
            Self::Audit => "audit".into(),
            Self::Class(class) => class.key_family().into(),
            Self::Owner(OwnerKeyId(id)) => {
                let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
                format!("user:{hex}").into()
            }
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "data" => Some(Self::Data),
            "audit" => Some(Self::Audit),
            _ => {
                if let Some(hex) = s.strip_prefix("user:") {
                    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                        return None;
                    }
                    let mut id = [0u8; 16];
                    for (i, byte) in id.iter_mut().enumerate() {
                        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
                    }
                    return Some(Self::Owner(OwnerKeyId(id)));
                }
                DataClassification::ALL.into_iter().find(|c| c.key_family() == s).map(Self::Class)
            }
        }
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A data key as stored: its material encrypted ("wrapped") by the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    /// Unique id, carried in every envelope and audit record it protects.
    pub id: uuid::Uuid,
    /// What the key is for.
    pub purpose: KeyPurpose,
    /// Version within the purpose, from 1; the highest is the active one.
    pub version: u32,
    /// Which key provider wrapped it, with the master key's fingerprint (`local:ab12cd34`).
    pub provider: String,
    /// The wrapped material: nonce and AES-256-GCM ciphertext under the master key.
    pub wrapped: Vec<u8>,
    /// When it was made.
    pub created_at: time::OffsetDateTime,
}

/// Compares two secrets (or digests of secrets) in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests;
