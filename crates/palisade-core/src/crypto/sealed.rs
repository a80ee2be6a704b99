//! The encryption service's envelope (format 2): a self-describing JSON object an application stores
//! beside its data, and the additional authenticated data that binds it to its context.
//!
//! ```json
//! {"v": 2, "key_id": "…", "key_version": 3, "algorithm": "AES-256-GCM",
//!  "classification": "RESTRICTED", "compressed": false,
//!  "nonce": "<base64url>", "ciphertext": "<base64url: ciphertext || 16-byte tag>"}
//! ```
//!
//! Everything but the nonce and the ciphertext is also inside the AAD, with the context: changing
//! any field, or decrypting under another purpose, owner or field, fails the tag check.

use serde::{Deserialize, Serialize};

use super::envelope::{DataClassification, EncryptionContext, optional, part};
use super::policy::Algorithm;

/// The envelope format version this module writes and reads.
pub const FORMAT: u8 = 2;

/// An encrypted value with what is needed to decrypt it, except the key and the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedEnvelope {
    /// Format version (2).
    pub v: u8,
    /// The data key's id.
    pub key_id: uuid::Uuid,
    /// The data key's version within its family.
    pub key_version: u32,
    /// The cipher.
    pub algorithm: Algorithm,
    /// The classification the data was sealed as.
    pub classification: DataClassification,
    /// Whether the plaintext was zstd-compressed before encryption.
    #[serde(default)]
    pub compressed: bool,
    /// The owner's key (its id), when the context names an owner: the data key is then derived
    /// from the class key and this one, and destroying the owner's keys makes the envelope
    /// unreadable (crypto-shredding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_key: Option<uuid::Uuid>,
    /// The nonce, base64url without padding.
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    /// Ciphertext and tag, base64url without padding.
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

impl SealedEnvelope {
    /// Canonical, unambiguous AAD: a label, the envelope's header fields and the context, each part
    /// length-prefixed, optional parts with a presence byte.
    pub(crate) fn aad(&self, context: &EncryptionContext) -> Vec<u8> {
        aad(
            self.key_id,
            self.key_version,
            self.algorithm,
            self.classification,
            self.compressed,
            self.owner_key,
            context,
        )
    }
}

/// See [`SealedEnvelope::aad`]. The context's classification is bound too (it must equal the
/// envelope's, or the tag check fails).
pub(crate) fn aad(
    key_id: uuid::Uuid,
    key_version: u32,
    algorithm: Algorithm,
    classification: DataClassification,
    compressed: bool,
    owner_key: Option<uuid::Uuid>,
    context: &EncryptionContext,
) -> Vec<u8> {
    let mut out = b"palisade envelope v2".to_vec();
    part(&mut out, key_id.as_bytes());
    out.extend_from_slice(&key_version.to_be_bytes());
    part(&mut out, algorithm.as_str().as_bytes());
    part(&mut out, classification.as_str().as_bytes());
    out.push(u8::from(compressed));
    optional(&mut out, owner_key.as_ref().map(|id| id.as_bytes().as_slice()));
    part(&mut out, context.data_classification.as_str().as_bytes());
    part(&mut out, context.purpose.as_bytes());
    optional(&mut out, context.user_id.as_deref().map(str::as_bytes));
    optional(&mut out, context.field.as_deref().map(str::as_bytes));
    out
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> SealedEnvelope {
        SealedEnvelope {
            v: FORMAT,
            key_id: uuid::Uuid::nil(),
            key_version: 1,
            algorithm: Algorithm::Aes256Gcm,
            classification: DataClassification::Restricted,
            compressed: false,
            owner_key: None,
            nonce: vec![0; 12],
            ciphertext: vec![1; 20],
        }
    }

    #[test]
    fn json_form_round_trips_and_refuses_unknown_fields() {
        let e = envelope();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["algorithm"], "AES-256-GCM");
        assert_eq!(json["classification"], "RESTRICTED");
        assert_eq!(json["nonce"], "AAAAAAAAAAAAAAAA");
        assert_eq!(serde_json::from_value::<SealedEnvelope>(json.clone()).unwrap(), e);
        let mut extra = json;
        extra["hint"] = "x".into();
        assert!(serde_json::from_value::<SealedEnvelope>(extra).is_err());
    }

    #[test]
    fn every_header_field_and_context_part_changes_the_aad() {
        let ctx = EncryptionContext::new(DataClassification::Restricted, "billing");
        let base = envelope();
        let reference = base.aad(&ctx);
        let variants = [
            SealedEnvelope { key_id: uuid::Uuid::max(), ..base.clone() },
            SealedEnvelope { key_version: 2, ..base.clone() },
            SealedEnvelope { algorithm: Algorithm::XChaCha20Poly1305, ..base.clone() },
            SealedEnvelope { classification: DataClassification::TopSecret, ..base.clone() },
            SealedEnvelope { compressed: true, ..base.clone() },
            SealedEnvelope { owner_key: Some(uuid::Uuid::nil()), ..base.clone() },
        ];
        for v in variants {
            assert_ne!(v.aad(&ctx), reference, "{v:?}");
        }
        let mut other = ctx.clone();
        other.purpose = "billing2".into();
        assert_ne!(base.aad(&other), reference);
        let mut owner = ctx.clone();
        owner.user_id = Some("u1".into());
        assert_ne!(base.aad(&owner), reference);
        let mut field = ctx.clone();
        field.field = Some("u1".into());
        assert_ne!(base.aad(&field), base.aad(&owner), "owner and field are told apart");
        assert_eq!(base.aad(&ctx.clone()), reference, "the same inputs give the same bytes");
    }
}
