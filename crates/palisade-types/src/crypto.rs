//! The encryption service (`/crypto/*`): requests and answers. An envelope is the JSON object the
//! service returns; store it as it is and give it back, with the same context, to decrypt.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the data is and whose: bound into the ciphertext, so decrypting needs the same context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CryptoContext {
    /// `PUBLIC`, `INTERNAL`, `CONFIDENTIAL`, `PII`, `RESTRICTED` or `TOP_SECRET`: picks the key family
    /// and the policy (cipher, compression, HSM).
    pub data_classification: String,
    /// Why the data is kept (`billing`, `user_data_storage`, …); 1–256 bytes.
    pub purpose: String,
    /// Whose data it is, if one person's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Which field or column, if one field of a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Compliance frameworks the data falls under (`GDPR`, `HIPAA`, …): recorded in the audit of
    /// sensitive decryptions, not bound into the ciphertext.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compliance_requirements: Vec<String>,
}

/// An encrypted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeView {
    /// Format version (2).
    pub v: u8,
    /// The data key's id.
    pub key_id: String,
    /// The data key's version within its classification's family.
    pub key_version: u32,
    /// `AES-256-GCM` or `XCHACHA20-POLY1305`.
    pub algorithm: String,
    /// The classification it was sealed as.
    pub classification: String,
    /// Whether the plaintext was zstd-compressed before encryption.
    #[serde(default)]
    pub compressed: bool,
    /// The owner's key id, when the context named an owner (`user_id`): destroying the owner's keys
    /// (crypto-shredding) makes the envelope unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_key: Option<String>,
    /// The nonce (base64url, no padding).
    pub nonce: String,
    /// Ciphertext and 16-byte tag (base64url, no padding).
    pub ciphertext: String,
}

/// `POST /crypto/encrypt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptRequest {
    /// The data: text as it is, or bytes in base64 with `"encoding": "base64"`.
    pub plaintext: String,
    /// `utf8` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The context.
    pub context: CryptoContext,
    /// zstd-compress before encryption (refused for classes whose policy forbids it).
    #[serde(default)]
    pub compress: bool,
}

/// `POST /crypto/decrypt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    /// The envelope as `encrypt` returned it.
    pub envelope: EnvelopeView,
    /// The same context it was encrypted with.
    pub context: CryptoContext,
    /// `utf8` (default: refused with 422 when the data is not UTF-8) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

/// The answer of `POST /crypto/decrypt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DecryptResponse {
    /// The data, in the encoding asked for.
    pub plaintext: String,
    /// `utf8` or `base64`.
    pub encoding: String,
}

/// `POST /crypto/fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldsRequest {
    /// A JSON object.
    #[schema(value_type = Object)]
    pub record: serde_json::Map<String, serde_json::Value>,
    /// Field name → classification, for the fields to encrypt.
    pub classifications: std::collections::BTreeMap<String, String>,
    /// Why the record is kept (bound into every field's ciphertext, with the field's name).
    pub purpose: String,
    /// Whose record it is, if one person's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// The answer of `POST /crypto/fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldsResponse {
    /// The record, each named field that was present replaced by its envelope.
    #[schema(value_type = Object)]
    pub record: serde_json::Map<String, serde_json::Value>,
    /// The fields encrypted (named ones absent or `null` are left out).
    pub encrypted_fields: Vec<String>,
}

/// `POST /crypto/rewrap`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewrapRequest {
    /// The envelope.
    pub envelope: EnvelopeView,
    /// Its context.
    pub context: CryptoContext,
}

/// `POST /crypto/datakey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataKeyRequest {
    /// The context the sealed key is bound to.
    pub context: CryptoContext,
    /// Return the key itself too (default true); false returns only the sealed key, to hand to
    /// whoever will decrypt it later.
    #[serde(default = "yes")]
    pub include_plaintext: bool,
}

fn yes() -> bool {
    true
}

/// The answer of `POST /crypto/datakey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DataKeyResponse {
    /// The 256-bit key, base64 (standard, padded), when asked for. Use it, then forget it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext_key: Option<String>,
    /// The key sealed under the classification's key: store it beside the data; `POST
    /// /crypto/decrypt` with `"encoding": "base64"` gives the key back.
    pub sealed_key: EnvelopeView,
}

/// One key, as `GET /admin/keys` lists it (never its material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// `signing`, `data`, `audit` or a classification's family (`class:restricted`).
    pub family: String,
    /// The key's id (`kid` for signing keys).
    pub id: String,
    /// Its version within the family.
    pub version: u32,
    /// Signing keys: `signing`, `published`, `verifying` or `retired`. Data keys: `active` (seals
    /// new data), `decrypting` (opens what it sealed) or `retired` (below the family's minimum
    /// decryption version).
    pub state: String,
    /// The algorithm (signing keys) or the cipher the family seals with now.
    pub algorithm: String,
    /// Which provider wrapped it (`local:<fingerprint>`); absent for signing keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// When it was made (RFC 3339).
    pub created_at: String,
}

/// The answer of `GET /admin/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    /// Every key.
    pub keys: Vec<KeyView>,
    /// Each data-key family's minimum decryption version (1: nothing retired).
    pub min_decryption_versions: std::collections::BTreeMap<String, u32>,
}

/// `POST /admin/keys/rotate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotateRequest {
    /// `signing` (the JWT signing key), `data` (Palisade's own data key, or with `class` that
    /// classification's) or `audit` (the audit chain's MAC key).
    pub key: String,
    /// With `key: data`: the classification whose key to rotate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Whether to re-encrypt Palisade's own sealed data (second factors, signing keys) under the
    /// new data key in the background. Only with `key: data` and no `class`, where it is the
    /// default; follow it at `GET /admin/keys/rotation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reencrypt: Option<bool>,
}

/// The answer of `POST /admin/keys/rotate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotated {
    /// The family rotated.
    pub family: String,
    /// The new version.
    pub version: u32,
    /// The new key's id (`kid` for a signing key).
    pub id: Option<String>,
    /// The background re-encryption started (or already running), when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reencryption: Option<ReencryptionStatus>,
}

/// `GET /admin/keys/rotation`: the data key's rotation schedule and the background
/// re-encryption of Palisade's own sealed data (the original guide's `get_key_rotation_status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotationStatus {
    /// When the active data key was made (RFC 3339).
    pub last_rotation: Option<String>,
    /// When the schedule rotates it next (RFC 3339).
    pub next_rotation: Option<String>,
    /// The active data-key version.
    pub active_version: u32,
    /// Share of rows visited by the latest job, 0.0 to 1.0 (1.0 when there is none).
    pub reencryption_progress: f64,
    /// Rows the running job has still to visit (0 when none is running).
    pub pending_tasks: u64,
    /// When the running job should finish at its pace so far, or when the last one did (RFC 3339).
    pub estimated_completion: Option<String>,
    /// The latest job, if any.
    pub job: Option<ReencryptionStatus>,
}

/// One re-encryption job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReencryptionStatus {
    /// Its id.
    pub id: String,
    /// `running`, `completed` or `failed`.
    pub state: String,
    /// The data-key version rows are moved to.
    pub target_version: u32,
    /// The table being visited: `signing_keys` or `mfa_factors`.
    pub phase: String,
    /// Rows counted at the start.
    pub total: u64,
    /// Rows visited.
    pub scanned: u64,
    /// Rows that were under an older key and were sealed again.
    pub rewritten: u64,
    /// Rows visited per second since the start.
    pub rows_per_second: Option<f64>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it last checkpointed (RFC 3339).
    pub updated_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// `PATCH /admin/keys/{family}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyFamilyUpdate {
    /// Versions below this one are retired: their envelopes are refused with `KEY_VERSION_RETIRED`
    /// (lower it again to bring them back). From 1 to the active version.
    pub min_decryption_version: u32,
}
