//! Versioned ciphertext envelopes and the context they are bound to.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// How sensitive a piece of data is (the original guide's `DataClassification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataClassification {
    /// Public data.
    Public,
    /// Internal data.
    Internal,
    /// Confidential data.
    Confidential,
    /// Restricted data (credentials, health, payment).
    Restricted,
    /// Personally identifiable information.
    Pii,
    /// The most sensitive data (card numbers in the original guide).
    TopSecret,
}

impl DataClassification {
    /// Every classification, least sensitive first (PII sits with CONFIDENTIAL).
    pub const ALL: [Self; 6] =
        [Self::Public, Self::Internal, Self::Confidential, Self::Pii, Self::Restricted, Self::TopSecret];

    /// The wire name (`TOP_SECRET`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "PUBLIC",
            Self::Internal => "INTERNAL",
            Self::Confidential => "CONFIDENTIAL",
            Self::Restricted => "RESTRICTED",
            Self::Pii => "PII",
            Self::TopSecret => "TOP_SECRET",
        }
    }

    /// Parses a wire name, in any letter case.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether decrypting data of this class is audited and its keys may demand an HSM:
    /// RESTRICTED and TOP_SECRET.
    pub fn is_sensitive(self) -> bool {
        matches!(self, Self::Restricted | Self::TopSecret)
    }

    /// The name of this class's key family in the store.
    pub(crate) fn key_family(self) -> &'static str {
        match self {
            Self::Public => "class:public",
            Self::Internal => "class:internal",
            Self::Confidential => "class:confidential",
            Self::Restricted => "class:restricted",
            Self::Pii => "class:pii",
            Self::TopSecret => "class:top_secret",
        }
    }
}

impl std::fmt::Display for DataClassification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a ciphertext belongs to. It is bound into the ciphertext as additional authenticated data:
/// decrypting with any other context fails, so a ciphertext cannot be moved to another field or user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionContext {
    /// Sensitivity of the data.
    pub data_classification: DataClassification,
    /// Why the data is kept (e.g. `profile`, `billing`).
    pub purpose: String,
    /// The owner, when the data belongs to one user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The field or column, when the data is one field of a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Compliance frameworks the data falls under (`GDPR`, `HIPAA`, …), as the original guide's
    /// `compliance_requirements`: recorded in the audit of sensitive decryptions, never bound into
    /// the ciphertext (a decryption need not repeat them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compliance: Vec<String>,
}

impl EncryptionContext {
    /// A context with only a classification and a purpose.
    pub fn new(data_classification: DataClassification, purpose: impl Into<String>) -> Self {
        Self { data_classification, purpose: purpose.into(), user_id: None, field: None, compliance: Vec::new() }
    }

    /// Canonical, unambiguous bytes of the context and the key it is sealed under: every part is
    /// length-prefixed and optional parts carry a presence byte.
    pub(crate) fn aad(&self, key_id: uuid::Uuid, key_version: u32) -> Vec<u8> {
        let mut out = b"palisade envelope v1".to_vec();
        part(&mut out, key_id.as_bytes());
        out.extend_from_slice(&key_version.to_be_bytes());
        part(&mut out, self.data_classification.as_str().as_bytes());
        part(&mut out, self.purpose.as_bytes());
        optional(&mut out, self.user_id.as_deref().map(str::as_bytes));
        optional(&mut out, self.field.as_deref().map(str::as_bytes));
        out
    }
}

/// Appends `bytes` length-prefixed (4 bytes, big-endian): one unambiguous part of an AAD.
pub(super) fn part(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends an optional part: the byte 0 when absent, else 1 and the part.
pub(super) fn optional(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            out.push(1);
            part(out, v);
        }
        None => out.push(0),
    }
}

/// An encrypted value: format version, the data key's id and version, and `nonce || ciphertext || tag`.
///
/// Its compact text form is `pe1.<key id>.<key version>.<base64url data>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope format version (1).
    pub v: u8,
    /// The data key's id.
    pub key_id: uuid::Uuid,
    /// The data key's version.
    pub key_version: u32,
    /// `nonce || ciphertext || tag`, base64url without padding.
    #[serde(with = "b64")]
    pub data: Vec<u8>,
}

/// Why an envelope's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed envelope: expected pe1.<key id>.<key version>.<base64url data>")]
pub struct EnvelopeParseError;

impl Envelope {
    /// The compact text form.
    pub fn to_compact(&self) -> String {
        format!("pe{}.{}.{}.{}", self.v, self.key_id.simple(), self.key_version, URL_SAFE_NO_PAD.encode(&self.data))
    }

    /// Parses the compact text form.
    pub fn parse_compact(text: &str) -> Result<Self, EnvelopeParseError> {
        let mut parts = text.split('.');
        let (Some("pe1"), Some(id), Some(version), Some(data), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(EnvelopeParseError);
        };
        Ok(Self {
            v: 1,
            key_id: uuid::Uuid::try_parse(id).map_err(|_| EnvelopeParseError)?,
            key_version: version.parse().map_err(|_| EnvelopeParseError)?,
            data: URL_SAFE_NO_PAD.decode(data).map_err(|_| EnvelopeParseError)?,
        })
    }
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
        URL_SAFE_NO_PAD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_form_round_trips_and_refuses_garbage() {
        let env = Envelope { v: 1, key_id: uuid::Uuid::new_v4(), key_version: 3, data: vec![1, 2, 3, 250] };
        assert_eq!(Envelope::parse_compact(&env.to_compact()).unwrap(), env);
        for bad in [
            "",
            "pe1",
            "pe2.x.1.AQ",
            "pe1.notauuid.1.AQ",
            "pe1.00000000000000000000000000000000.x.AQ",
            "pe1.00000000000000000000000000000000.1.@@",
            "pe1.00000000000000000000000000000000.1.AQ.extra",
        ] {
            assert!(Envelope::parse_compact(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aad_distinguishes_absent_from_empty_and_field_from_owner() {
        let id = uuid::Uuid::nil();
        let mut a = EncryptionContext::new(DataClassification::Pii, "profile");
        let mut b = a.clone();
        b.user_id = Some(String::new());
        assert_ne!(a.aad(id, 1), b.aad(id, 1));
        a.user_id = Some("x".into());
        b.user_id = None;
        b.field = Some("x".into());
        assert_ne!(a.aad(id, 1), b.aad(id, 1));
    }
}
