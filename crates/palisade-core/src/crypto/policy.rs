//! What each data classification demands of the encryption service: its cipher, whether its data
//! may be compressed before encryption, whether its keys must live under an HSM, and how often its
//! key rotates. Validated once, when the service is built.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::envelope::DataClassification;

/// An authenticated cipher the service seals with. Both take a 256-bit key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// AES-256-GCM with a random 96-bit nonce (aws-lc-rs). The default: hardware-accelerated, and
    /// safe for 2^32 messages per key version (rotation keeps each version far below).
    #[serde(rename = "AES-256-GCM")]
    Aes256Gcm,
    /// XChaCha20-Poly1305 with a random 192-bit nonce (RustCrypto `chacha20poly1305`): constant-time
    /// without AES instructions, and a nonce space large enough for any number of messages.
    #[serde(rename = "XCHACHA20-POLY1305")]
    XChaCha20Poly1305,
}

impl Algorithm {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "AES-256-GCM",
            Self::XChaCha20Poly1305 => "XCHACHA20-POLY1305",
        }
    }

    /// Parses a wire name, in any letter case, also with underscores (`AES_256_GCM`, as the
    /// original guide writes it).
    pub fn parse(s: &str) -> Option<Self> {
        let name = s.trim().to_ascii_uppercase().replace('_', "-");
        [Self::Aes256Gcm, Self::XChaCha20Poly1305].into_iter().find(|a| a.as_str() == name)
    }

    /// Length of its nonce in bytes.
    pub fn nonce_len(self) -> usize {
        match self {
            Self::Aes256Gcm => 12,
            Self::XChaCha20Poly1305 => 24,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rules of one classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassPolicy {
    /// The cipher new data is sealed with.
    pub algorithm: Algorithm,
    /// Whether a caller may ask for compression before encryption. Compressed size depends on the
    /// content, and a ciphertext's length is visible: when an attacker can mix their own input with
    /// a secret in one plaintext, lengths reveal the secret byte by byte (CRIME, BREACH). Off for
    /// RESTRICTED and TOP_SECRET by default.
    pub compression: bool,
    /// Whether this class's keys must be wrapped by an HSM: encryption is refused (503) while no
    /// HSM is configured. On for TOP_SECRET by default when an HSM is configured.
    pub hsm_required: bool,
    /// Days after which this class's key is rotated by the schedule.
    pub rotation_days: u32,
}

/// Why a policy setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// The policies of every classification, and the service's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionPolicies {
    classes: BTreeMap<DataClassificationKey, ClassPolicy>,
    /// The largest plaintext accepted, in bytes.
    pub max_plaintext: usize,
}

/// `DataClassification` ordered for the map (by sensitivity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct DataClassificationKey(usize);

impl DataClassificationKey {
    fn of(class: DataClassification) -> Self {
        Self(DataClassification::ALL.iter().position(|c| *c == class).unwrap_or(usize::MAX))
    }
}

/// The default rotation period, in days (`encryption.key_rotation_days` in the original guide).
pub const DEFAULT_ROTATION_DAYS: u32 = 90;

/// The highest plaintext limit a configuration may set: 64 MiB.
pub const MAX_PLAINTEXT_CEILING: usize = 64 * 1024 * 1024;

/// The default largest plaintext: 512 KiB (its base64 fits the HTTP body limit of 1 MiB).
pub const DEFAULT_MAX_PLAINTEXT: usize = 512 * 1024;

impl EncryptionPolicies {
    /// The built-in policies. `hsm_configured`: whether a PKCS#11 module is configured, which makes
    /// TOP_SECRET require it.
    pub fn defaults(hsm_configured: bool) -> Self {
        let classes = DataClassification::ALL
            .into_iter()
            .map(|class| {
                let sensitive = class.is_sensitive();
                let policy = ClassPolicy {
                    algorithm: Algorithm::Aes256Gcm,
                    compression: !sensitive,
                    hsm_required: hsm_configured && class == DataClassification::TopSecret,
                    rotation_days: DEFAULT_ROTATION_DAYS,
                };
                (DataClassificationKey::of(class), policy)
            })
            .collect();
        Self { classes, max_plaintext: DEFAULT_MAX_PLAINTEXT }
    }

    /// The policy of `class`.
    pub fn of(&self, class: DataClassification) -> ClassPolicy {
        self.classes.get(&DataClassificationKey::of(class)).copied().unwrap_or(ClassPolicy {
            algorithm: Algorithm::Aes256Gcm,
            compression: false,
            hsm_required: false,
            rotation_days: DEFAULT_ROTATION_DAYS,
        })
    }

    /// Every class with its policy, least sensitive first.
    pub fn all(&self) -> Vec<(DataClassification, ClassPolicy)> {
        DataClassification::ALL.into_iter().map(|c| (c, self.of(c))).collect()
    }

    /// Sets the rotation period of every class that `overrides` does not set itself.
    pub fn with_rotation_days(mut self, days: u32) -> Result<Self, PolicyError> {
        check_rotation_days(days)?;
        for policy in self.classes.values_mut() {
            policy.rotation_days = days;
        }
        Ok(self)
    }

    /// Applies overrides, each `CLASS.key=value`, e.g. `RESTRICTED.algorithm=XCHACHA20-POLY1305`,
    /// `RESTRICTED.rotation_days=30`, `TOP_SECRET.hsm=false`, `INTERNAL.compression=false`. Keys:
    /// `algorithm`, `compression` (true/false), `hsm` (true/false), `rotation_days` (1–3650).
    /// `hsm=true` without an HSM configured is refused: data of that class could never be sealed.
    pub fn with_overrides(mut self, overrides: &[String], hsm_configured: bool) -> Result<Self, PolicyError> {
        for item in overrides.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let shape = || PolicyError(format!("`{item}`: expected CLASS.key=value, e.g. RESTRICTED.rotation_days=30"));
            let (target, value) = item.split_once('=').ok_or_else(shape)?;
            let (class, key) = target.split_once('.').ok_or_else(shape)?;
            let class = DataClassification::parse(class).ok_or_else(|| {
                let names: Vec<&str> = DataClassification::ALL.iter().map(|c| c.as_str()).collect();
                PolicyError(format!("`{}` is not a classification (one of {})", class.trim(), names.join(", ")))
            })?;
            let mut policy = self.of(class);
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "algorithm" => {
                    policy.algorithm = Algorithm::parse(value).ok_or_else(|| {
                        PolicyError(format!("{class}: algorithm `{value}` is not AES-256-GCM or XCHACHA20-POLY1305"))
                    })?;
                }
                "compression" => policy.compression = boolean(class, "compression", value)?,
                "hsm" => policy.hsm_required = boolean(class, "hsm", value)?,
                "rotation_days" => {
                    let days = value
                        .parse()
                        .map_err(|_| PolicyError(format!("{class}: rotation_days `{value}` is not a whole number")))?;
                    check_rotation_days(days).map_err(|e| PolicyError(format!("{class}: {e}")))?;
                    policy.rotation_days = days;
                }
                other => {
                    return Err(PolicyError(format!(
                        "{class}: unknown key `{other}` (one of algorithm, compression, hsm, rotation_days)"
                    )));
                }
            }
            if policy.hsm_required && !hsm_configured {
                return Err(PolicyError(format!(
                    "{class}: hsm=true needs an HSM, and none is configured (this build has no HSM support yet): \
                     its data could never be sealed"
                )));
            }
            self.classes.insert(DataClassificationKey::of(class), policy);
        }
        Ok(self)
    }

    /// Sets the largest plaintext accepted (1 byte – [`MAX_PLAINTEXT_CEILING`]).
    pub fn with_max_plaintext(mut self, bytes: usize) -> Result<Self, PolicyError> {
        if !(1..=MAX_PLAINTEXT_CEILING).contains(&bytes) {
            return Err(PolicyError(format!("max plaintext {bytes} bytes: expected 1 byte to 64 MiB")));
        }
        self.max_plaintext = bytes;
        Ok(self)
    }
}

fn check_rotation_days(days: u32) -> Result<(), PolicyError> {
    if (1..=3650).contains(&days) {
        Ok(())
    } else {
        Err(PolicyError(format!("rotation_days {days}: expected 1 to 3650 days")))
    }
}

fn boolean(class: DataClassification, key: &str, value: &str) -> Result<bool, PolicyError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(PolicyError(format!("{class}: {key} `{value}` is not true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_forbid_compression_of_sensitive_classes_and_ask_an_hsm_only_when_there_is_one() {
        let without = EncryptionPolicies::defaults(false);
        for (class, policy) in without.all() {
            assert_eq!(policy.compression, !class.is_sensitive(), "{class}");
            assert!(!policy.hsm_required, "{class}");
            assert_eq!(policy.algorithm, Algorithm::Aes256Gcm);
            assert_eq!(policy.rotation_days, 90);
        }
        let with = EncryptionPolicies::defaults(true);
        assert!(with.of(DataClassification::TopSecret).hsm_required);
        assert!(!with.of(DataClassification::Restricted).hsm_required);
    }

    #[test]
    fn overrides_apply_and_bad_ones_name_the_problem() {
        let policies = EncryptionPolicies::defaults(false)
            .with_overrides(
                &["restricted.algorithm=xchacha20_poly1305".into(), " RESTRICTED.rotation_days = 30".into()],
                false,
            )
            .unwrap();
        let restricted = policies.of(DataClassification::Restricted);
        assert_eq!(restricted.algorithm, Algorithm::XChaCha20Poly1305);
        assert_eq!(restricted.rotation_days, 30);
        assert!(!restricted.compression, "untouched keys keep their value");
        assert_eq!(
            policies.of(DataClassification::Internal),
            EncryptionPolicies::defaults(false).of(DataClassification::Internal)
        );

        for (bad, says) in [
            ("RESTRICTED", "expected CLASS.key=value"),
            ("RESTRICTED=1", "expected CLASS.key=value"),
            ("SECRETISH.compression=true", "not a classification"),
            ("INTERNAL.algorithm=DES", "is not AES-256-GCM"),
            ("INTERNAL.compression=maybe", "not true or false"),
            ("INTERNAL.rotation_days=0", "1 to 3650"),
            ("INTERNAL.rotation_days=ten", "not a whole number"),
            ("INTERNAL.colour=blue", "unknown key `colour`"),
            ("INTERNAL.compression", "expected CLASS.key=value"),
            ("TOP_SECRET.hsm=true", "needs an HSM"),
        ] {
            let err = EncryptionPolicies::defaults(false).with_overrides(&[bad.into()], false).unwrap_err();
            assert!(err.0.contains(says), "{bad}: {err}");
        }
        assert!(EncryptionPolicies::defaults(true).with_overrides(&["TOP_SECRET.hsm=false".into()], true).is_ok());
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305] {
            assert_eq!(Algorithm::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert_eq!(Algorithm::parse("aes_256_gcm"), Some(Algorithm::Aes256Gcm));
        assert_eq!(Algorithm::parse("ROT13"), None);
    }
}
