//! The encryption service: encrypt and decrypt application data by classification, encrypt the
//! named fields of a record, rewrap under the newest key, and issue data keys for client-side
//! encryption (the shape of Vault's transit engine).
//!
//! Each classification has its own key family (`class:restricted`, …) and its policy
//! ([`EncryptionPolicies`]). Envelopes are [`SealedEnvelope`]s bound to their context. Callers need
//! the scope `crypto:encrypt` or `crypto:decrypt`, or the same narrowed to one class
//! (`crypto:decrypt:restricted`); `admin` alone grants neither. Every decryption of RESTRICTED or
//! TOP_SECRET data, done or refused, is audited with the caller and the purpose.
//!
//! This module never logs a plaintext, a key or a context's owner beyond the audit record.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::aead::derive_key;
use super::envelope::{DataClassification, EncryptionContext};
use super::keyring::{CryptoError, Keyring, LoadedKey, open_under, seal_under};
use super::policy::EncryptionPolicies;
use super::sealed::{FORMAT, SealedEnvelope, aad};
use super::{AeadError, DataKeyMaterial, KeyPurpose, OwnerKeyId};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::auth::{AuthError, Principal};

/// Longest purpose, owner or field name accepted in a context.
const MAX_CONTEXT_PART: usize = 256;
/// Most fields one `encrypt_fields` call may encrypt.
pub const MAX_FIELDS: usize = 256;
/// The most a compressed envelope is inflated to: the highest plaintext limit a configuration may set.
const MAX_INFLATED: usize = super::policy::MAX_PLAINTEXT_CEILING;
/// zstd level: fast, as Vault and most stores use for data on the request path.
const ZSTD_LEVEL: i32 = 3;

/// Why an encryption-service call failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoServiceError {
    /// The caller may not do this (scope).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A request field is invalid; says which and why.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The plaintext is larger than the configured limit.
    #[error("plaintext is {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The envelope does not open under this context: altered, moved to another context, or its
    /// key is unknown. Deliberately says nothing more.
    #[error("decryption failed: the envelope was altered, belongs to another context, or its key is unknown")]
    DecryptionFailed,
    /// The envelope's key version is retired (below its family's minimum decryption version).
    #[error("key version {version} of {family} is retired: an administrator can move the family's minimum back")]
    KeyVersionRetired {
        /// The key family.
        family: String,
        /// The version.
        version: u32,
    },
    /// The class's policy needs an HSM and none is available.
    #[error("{0} data needs an HSM and none is available")]
    HsmRequired(DataClassification),
    /// The keyring or the store failed.
    #[error(transparent)]
    Crypto(CryptoError),
    /// A sensitive decryption could not be audited (so it is not answered).
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<CryptoError> for CryptoServiceError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Aead(AeadError::Open) | CryptoError::UnknownKey(_) | CryptoError::Mismatch => {
                Self::DecryptionFailed
            }
            other => Self::Crypto(other),
        }
    }
}

impl From<AeadError> for CryptoServiceError {
    fn from(e: AeadError) -> Self {
        Self::from(CryptoError::Aead(e))
    }
}

fn invalid(field: &str, message: impl Into<String>) -> CryptoServiceError {
    CryptoServiceError::Invalid { field: field.to_owned(), message: message.into() }
}

/// Options of one encryption.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealOptions {
    /// zstd-compress the plaintext first (refused where the class's policy forbids it).
    pub compress: bool,
}

/// A data key for client-side encryption: the key itself (when asked for) and the same key sealed
/// under the class's key, to store beside the data and decrypt with `POST /crypto/decrypt`.
#[derive(Debug)]
pub struct DataKey {
    /// The 256-bit key, when the caller asked for it.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The key sealed under the classification's key, bound to the context.
    pub sealed: SealedEnvelope,
}

/// What an operation is, for scope names.
#[derive(Debug, Clone, Copy)]
enum Operation {
    Encrypt,
    Decrypt,
}

/// The scope that grants `operation` on every class.
pub const SCOPE_ENCRYPT: &str = "crypto:encrypt";
/// See [`SCOPE_ENCRYPT`].
pub const SCOPE_DECRYPT: &str = "crypto:decrypt";

fn class_scope(operation: Operation, class: DataClassification) -> &'static str {
    use DataClassification as C;
    match (operation, class) {
        (Operation::Encrypt, C::Public) => "crypto:encrypt:public",
        (Operation::Encrypt, C::Internal) => "crypto:encrypt:internal",
        (Operation::Encrypt, C::Confidential) => "crypto:encrypt:confidential",
        (Operation::Encrypt, C::Pii) => "crypto:encrypt:pii",
        (Operation::Encrypt, C::Restricted) => "crypto:encrypt:restricted",
        (Operation::Encrypt, C::TopSecret) => "crypto:encrypt:top_secret",
        (Operation::Decrypt, C::Public) => "crypto:decrypt:public",
        (Operation::Decrypt, C::Internal) => "crypto:decrypt:internal",
        (Operation::Decrypt, C::Confidential) => "crypto:decrypt:confidential",
        (Operation::Decrypt, C::Pii) => "crypto:decrypt:pii",
        (Operation::Decrypt, C::Restricted) => "crypto:decrypt:restricted",
        (Operation::Decrypt, C::TopSecret) => "crypto:decrypt:top_secret",
    }
}

fn require(principal: &Principal, operation: Operation, class: DataClassification) -> Result<(), AuthError> {
    let all = match operation {
        Operation::Encrypt => SCOPE_ENCRYPT,
        Operation::Decrypt => SCOPE_DECRYPT,
    };
    let one = class_scope(operation, class);
    if principal.has_scope(all) || principal.has_scope(one) { Ok(()) } else { Err(AuthError::InsufficientScope(one)) }
}

/// The encryption service.
pub struct CryptoService {
    keyring: Arc<Keyring>,
    audit: Arc<AuditLog>,
    policies: EncryptionPolicies,
    hsm: bool,
}

impl CryptoService {
    /// Wires the service. `hsm`: whether the keyring's provider is an HSM.
    pub fn new(keyring: Arc<Keyring>, audit: Arc<AuditLog>, policies: EncryptionPolicies, hsm: bool) -> Self {
        Self { keyring, audit, policies, hsm }
    }

    /// The policies in force.
    pub fn policies(&self) -> &EncryptionPolicies {
        &self.policies
    }

    /// Crypto-shredding: destroys every key of `owner` (the `user_id` of the contexts their data was
    /// encrypted with), so every envelope bound to them — in Palisade's database, the
    /// application's, or any backup — can no longer be decrypted by anyone. Irreversible. Returns how
    /// many keys were destroyed (0 when the owner had none). Other instances stop within 60 s.
    pub async fn shred_owner(&self, owner: &str) -> Result<u64, CryptoError> {
        self.keyring.destroy(KeyPurpose::Owner(OwnerKeyId::of(owner))).await
    }

    /// The rotation schedule: rotates each classification's key that is older than its policy's
    /// `rotation_days`. Returns the classes rotated with their new versions. Older versions keep
    /// decrypting; `POST /crypto/rewrap` moves data to the new one.
    pub async fn rotate_due(&self) -> Result<Vec<(DataClassification, u32)>, CryptoError> {
        let mut rotated = Vec::new();
        for (class, policy) in self.policies.all() {
            let period = time::Duration::days(i64::from(policy.rotation_days));
            if let Some(version) = self.keyring.rotate_if_older_than(KeyPurpose::Class(class), period).await? {
                rotated.push((class, version));
            }
        }
        Ok(rotated)
    }

    /// Encrypts `plaintext` under the active key of its context's classification, bound to the
    /// context.
    pub async fn encrypt(
        &self,
        principal: &Principal,
        plaintext: &[u8],
        context: &EncryptionContext,
        options: SealOptions,
    ) -> Result<SealedEnvelope, CryptoServiceError> {
        require(principal, Operation::Encrypt, context.data_classification)?;
        check_context(context)?;
        self.seal(plaintext, context, options).await
    }

    /// Decrypts an envelope under `context`; audits it when the class is sensitive.
    pub async fn decrypt(
        &self,
        principal: &Principal,
        envelope: &SealedEnvelope,
        context: &EncryptionContext,
        meta: &RequestMeta,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoServiceError> {
        require(principal, Operation::Decrypt, envelope.classification)?;
        check_context(context)?;
        let opened = self.open(envelope, context).await;
        if envelope.classification.is_sensitive() || context.data_classification.is_sensitive() {
            self.audit_decrypt(principal, envelope, context, meta, opened.as_ref().err()).await?;
        }
        opened
    }

    /// Encrypts the fields of `record` named in `classifications`, each under its own class and
    /// bound to its field name (so a value cannot be moved to another field); other fields are left
    /// as they are. A field named but absent is skipped; `null` stays `null`.
    pub async fn encrypt_fields(
        &self,
        principal: &Principal,
        mut record: Map<String, Value>,
        classifications: &[(String, DataClassification)],
        base: &EncryptionContext,
    ) -> Result<(Map<String, Value>, Vec<String>), CryptoServiceError> {
        if classifications.len() > MAX_FIELDS {
            return Err(invalid("classifications", format!("at most {MAX_FIELDS} fields per call")));
        }
        for (field, class) in classifications {
            require(principal, Operation::Encrypt, *class)?;
            if field.is_empty() || field.len() > MAX_CONTEXT_PART {
                return Err(invalid("classifications", format!("field names are 1 to {MAX_CONTEXT_PART} bytes")));
            }
        }
        let mut encrypted = Vec::new();
        for (field, class) in classifications {
            let Some(value) = record.get(field) else { continue };
            if value.is_null() {
                continue;
            }
            let plaintext =
                Zeroizing::new(serde_json::to_vec(value).map_err(|_| invalid("record", "a value cannot be encoded"))?);
            let context = EncryptionContext {
                data_classification: *class,
                purpose: base.purpose.clone(),
                user_id: base.user_id.clone(),
                field: Some(field.clone()),
                compliance: base.compliance.clone(),
            };
            check_context(&context)?;
            let sealed = self.seal(&plaintext, &context, SealOptions::default()).await?;
            let sealed =
                serde_json::to_value(&sealed).map_err(|_| invalid("record", "an envelope cannot be encoded"))?;
            record.insert(field.clone(), sealed);
            encrypted.push(field.clone());
        }
        Ok((record, encrypted))
    }

    /// Re-encrypts an envelope under the newest key version of its class (and the class's current
    /// cipher), inside the service: the plaintext never leaves it. Needs the encrypt scope of the
    /// class; an envelope already under the newest version comes back as it is.
    pub async fn rewrap(
        &self,
        principal: &Principal,
        envelope: &SealedEnvelope,
        context: &EncryptionContext,
    ) -> Result<SealedEnvelope, CryptoServiceError> {
        require(principal, Operation::Encrypt, envelope.classification)?;
        check_context(context)?;
        let policy = self.policies.of(envelope.classification);
        let active = self.keyring.active(KeyPurpose::Class(envelope.classification)).await?;
        if envelope.key_id == active.id && envelope.algorithm == policy.algorithm {
            // Prove the caller holds the right context before saying anything about the envelope.
            self.open(envelope, context).await?;
            return Ok(envelope.clone());
        }
        let plaintext = self.open(envelope, context).await?;
        self.seal(&plaintext, context, SealOptions { compress: envelope.compressed && policy.compression }).await
    }

    /// A fresh 256-bit data key, sealed under the class's key for `context`; with its plaintext
    /// when `with_plaintext` (Vault's `datakey/plaintext` against `datakey/wrapped`).
    pub async fn data_key(
        &self,
        principal: &Principal,
        context: &EncryptionContext,
        with_plaintext: bool,
    ) -> Result<DataKey, CryptoServiceError> {
        require(principal, Operation::Encrypt, context.data_classification)?;
        check_context(context)?;
        let material = DataKeyMaterial::generate()?;
        let sealed = self.seal(material.expose(), context, SealOptions::default()).await?;
        Ok(DataKey { plaintext: with_plaintext.then(|| Zeroizing::new(material.expose().to_vec())), sealed })
    }

    /// Seals without a scope check (the checks are the callers').
    async fn seal(
        &self,
        plaintext: &[u8],
        context: &EncryptionContext,
        options: SealOptions,
    ) -> Result<SealedEnvelope, CryptoServiceError> {
        let class = context.data_classification;
        let max = self.policies.max_plaintext;
        if plaintext.len() > max {
            return Err(CryptoServiceError::TooLarge { size: plaintext.len(), max });
        }
        let policy = self.policies.of(class);
        if options.compress && !policy.compression {
            return Err(invalid(
                "compress",
                format!(
                    "{class} data is never compressed: compressed length depends on the content, and a visible \
                     length can reveal a secret mixed with attacker-chosen input (CRIME, BREACH)"
                ),
            ));
        }
        if policy.hsm_required && !self.hsm {
            return Err(CryptoServiceError::HsmRequired(class));
        }
        let key = self.keyring.active(KeyPurpose::Class(class)).await?;
        let owner = match &context.user_id {
            Some(owner) => Some(self.keyring.active(KeyPurpose::Owner(OwnerKeyId::of(owner))).await?),
            None => None,
        };
        let compressed;
        let body: &[u8] = if options.compress {
            compressed = Zeroizing::new(
                zstd::bulk::compress(plaintext, ZSTD_LEVEL)
                    .map_err(|_| invalid("plaintext", "cannot be compressed"))?,
            );
            &compressed
        } else {
            plaintext
        };
        let owner_key = owner.as_ref().map(|o| o.id);
        let bound = aad(key.id, key.version, policy.algorithm, class, options.compress, owner_key, context);
        let (nonce, ciphertext) = match &owner {
            Some(owner) => {
                let derived = owner_bound(&key, owner)?;
                seal_under(&derived, policy.algorithm, body, &bound)?
            }
            None => key.seal_with(policy.algorithm, body, &bound)?,
        };
        Ok(SealedEnvelope {
            v: FORMAT,
            key_id: key.id,
            key_version: key.version,
            algorithm: policy.algorithm,
            classification: class,
            compressed: options.compress,
            owner_key,
            nonce,
            ciphertext,
        })
    }

    /// Opens and decompresses.
    async fn open(
        &self,
        envelope: &SealedEnvelope,
        context: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoServiceError> {
        if envelope.v != FORMAT || envelope.nonce.len() != envelope.algorithm.nonce_len() {
            return Err(CryptoServiceError::DecryptionFailed);
        }
        let key = self.keyring.by_id(envelope.key_id).await?;
        let family = KeyPurpose::Class(envelope.classification);
        if key.purpose != family || key.version != envelope.key_version {
            return Err(CryptoServiceError::DecryptionFailed);
        }
        if key.version < self.keyring.min_decryption_version(family).await? {
            return Err(CryptoServiceError::KeyVersionRetired {
                family: family.name().into_owned(),
                version: key.version,
            });
        }
        let bound = envelope.aad(context);
        let opened = match (envelope.owner_key, &context.user_id) {
            (None, _) => key.open_with(envelope.algorithm, &envelope.nonce, &envelope.ciphertext, &bound)?,
            (Some(owner_key), Some(owner)) => {
                let owner_key = self.keyring.by_id(owner_key).await?;
                if owner_key.purpose != KeyPurpose::Owner(OwnerKeyId::of(owner)) {
                    return Err(CryptoServiceError::DecryptionFailed);
                }
                let derived = owner_bound(&key, &owner_key)?;
                open_under(&derived, envelope.algorithm, &envelope.nonce, &envelope.ciphertext, &bound)?
            }
            (Some(_), None) => return Err(CryptoServiceError::DecryptionFailed),
        };
        if !envelope.compressed {
            return Ok(opened);
        }
        // Authenticated before it is inflated (a compression bomb needs the key), and inflated no
        // further than the largest plaintext any configuration accepts: lowering the limit later
        // must not make data sealed under a higher one unreadable.
        zstd::bulk::decompress(&opened, MAX_INFLATED)
            .map(Zeroizing::new)
            .map_err(|_| CryptoServiceError::DecryptionFailed)
    }

    async fn audit_decrypt(
        &self,
        principal: &Principal,
        envelope: &SealedEnvelope,
        context: &EncryptionContext,
        meta: &RequestMeta,
        failure: Option<&CryptoServiceError>,
    ) -> Result<(), CryptoServiceError> {
        let outcome = if failure.is_some() { Outcome::Failure } else { Outcome::Success };
        let mut event = AuditEvent::new(AuditKind::DataDecrypted, outcome)
            .actor(principal.actor())
            .request(meta.clone())
            .detail("classification", envelope.classification.as_str())
            .detail("purpose", context.purpose.clone())
            .detail("key_id", envelope.key_id.to_string())
            .detail("key_version", envelope.key_version);
        if let Some(owner) = &context.user_id {
            event = event.subject(owner.clone());
        }
        if let Some(field) = &context.field {
            event = event.detail("field", field.clone());
        }
        if !context.compliance.is_empty() {
            event = event.detail("compliance", context.compliance.join(","));
        }
        if let Some(e) = failure {
            event = event.detail("reason", e.to_string());
        }
        self.audit.append(event).await?;
        Ok(())
    }
}

/// The data key of an owner's envelope: HKDF over the class key with the owner's key as salt, and
/// both keys' ids as info. Losing either key loses it.
fn owner_bound(class_key: &LoadedKey, owner_key: &LoadedKey) -> Result<DataKeyMaterial, CryptoServiceError> {
    let mut info = b"palisade owner-bound key v1".to_vec();
    info.extend_from_slice(class_key.id.as_bytes());
    info.extend_from_slice(owner_key.id.as_bytes());
    Ok(derive_key(&owner_key.material, &class_key.material, &info)?)
}

/// Bounds on a context's free-text parts.
fn check_context(context: &EncryptionContext) -> Result<(), CryptoServiceError> {
    let purpose = context.purpose.trim();
    if purpose.is_empty() || context.purpose.len() > MAX_CONTEXT_PART {
        return Err(invalid("context.purpose", format!("a purpose of 1 to {MAX_CONTEXT_PART} bytes is required")));
    }
    for (name, part) in [("context.user_id", &context.user_id), ("context.field", &context.field)] {
        if let Some(part) = part
            && (part.is_empty() || part.len() > MAX_CONTEXT_PART)
        {
            return Err(invalid(name, format!("1 to {MAX_CONTEXT_PART} bytes when given")));
        }
    }
    if [Some(&context.purpose), context.user_id.as_ref(), context.field.as_ref()]
        .into_iter()
        .flatten()
        .any(|p| p.chars().any(char::is_control))
    {
        return Err(invalid("context", "control characters are not allowed"));
    }
    Ok(())
}

/// Decodes standard or URL-safe base64, padded or not (what clients send for binary plaintexts).
pub fn decode_base64(field: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoServiceError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let trimmed = text.trim().trim_end_matches('=');
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed);
    standard.or_else(|_| URL_SAFE_NO_PAD.decode(trimmed)).map(Zeroizing::new).map_err(|_| invalid(field, "not base64"))
}

/// Encodes bytes as standard padded base64.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
