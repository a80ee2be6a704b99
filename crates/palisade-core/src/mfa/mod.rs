//! Multi-factor authentication: TOTP with backup codes, one-time codes by SMS and e-mail, and the
//! second step of a login (the `mfa_token` challenge).
//!
//! # Layout
//! - [`totp`]: RFC 6238 codes, secrets, the `otpauth://` URI and its QR code.
//! - [`code`]: parsing what people type (6-digit codes, backup codes).
//! - `challenge`: the login's second step, kept in the hot store behind an opaque `mfa_token`.
//! - [`passkey`], `passkey_service`: passkeys (WebAuthn) — registration, second factor and
//!   passwordless login.
//! - `service`: [`MfaService`] — enrolment, confirmation, removal, backup codes, sending codes,
//!   and checking a code with the replay guard and the failure count.
//!
//! # What is stored how
//! Factors live in the durable store with their secret part (the TOTP secret, the phone number, the
//! e-mail address) sealed by the keyring under a context naming the user and the factor, so a sealed
//! value cannot be moved to another user or kind. Backup codes and one-time codes are kept only as
//! HMAC-SHA256 under a subkey of a data key. The last accepted TOTP step, the live one-time codes and
//! the failure counts are in the hot store, so every instance sees them at once.
//!
//! This module never reads the system clock and never logs a secret or a code.

mod challenge;
pub mod code;
pub mod passkey;
mod passkey_service;
mod service;
pub mod totp;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::user::UserId;

pub use challenge::{ChallengeState, MfaChallenge};
pub use passkey::{PasskeyRecord, PasskeySettings};
/// What a factor's sealed secret is bound to: its user, kind and id (a secret moved to another
/// factor or user does not decrypt).
pub fn factor_context(user: UserId, kind: FactorKind, id: uuid::Uuid) -> crate::crypto::EncryptionContext {
    let mut context = crate::crypto::EncryptionContext::new(crate::crypto::DataClassification::Restricted, "mfa");
    context.user_id = Some(user.to_string());
    context.field = Some(format!("{}:{id}", kind.as_str()));
    context
}

pub use service::{EnrolmentSent, MfaParts, MfaService, MfaStatus, TotpDiagnosis, TotpSetup};

/// A second factor a user can enrol (passkeys are kept apart, with their own credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// An authenticator app (RFC 6238).
    Totp,
    /// Codes sent by SMS to a confirmed phone number.
    Sms,
    /// Codes sent by e-mail to a confirmed address.
    Email,
}

impl FactorKind {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(Self::Totp),
            "sms" => Some(Self::Sms),
            "email" => Some(Self::Email),
            _ => None,
        }
    }

    /// The login method this factor gives.
    pub fn method(self) -> MfaMethod {
        match self {
            Self::Totp => MfaMethod::Totp,
            Self::Sms => MfaMethod::Sms,
            Self::Email => MfaMethod::Email,
        }
    }
}

/// A way to pass the second step of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethod {
    /// A code from an authenticator app.
    Totp,
    /// One of the user's backup codes.
    BackupCode,
    /// A code sent by SMS.
    Sms,
    /// A code sent by e-mail.
    Email,
    /// A passkey (WebAuthn) with user verification.
    #[serde(rename = "webauthn")]
    WebAuthn,
}

impl MfaMethod {
    /// The stable name used in the API (`methods`, `method`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::BackupCode => "backup_code",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::WebAuthn => "webauthn",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(Self::Totp),
            "backup_code" => Some(Self::BackupCode),
            "sms" => Some(Self::Sms),
            "email" => Some(Self::Email),
            "webauthn" => Some(Self::WebAuthn),
            _ => None,
        }
    }

    /// The RFC 8176 authentication method references: `otp` for an app's code and for a backup code
    /// (both are one-time passwords), `sms`, `email` (not registered by RFC 8176; Keycloak and
    /// Zitadel use it too), and `hwk` + `user` for a passkey (a key held in hardware, unlocked by the
    /// user's verification: biometric or PIN).
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Totp | Self::BackupCode => &["otp"],
            Self::Sms => &["sms"],
            Self::Email => &["email"],
            Self::WebAuthn => &["hwk", "user"],
        }
    }
}

/// The `amr` values of a login: `pwd` when a password was checked, each method's values once, and
/// `mfa` when two or more factors were used (a password and a method, or a passkey, which is a
/// possession factor unlocked by the user's verification).
pub fn amr_of(password: bool, methods: &[MfaMethod]) -> Vec<String> {
    let mut amr = Vec::new();
    if password {
        amr.push("pwd".to_owned());
    }
    for value in methods.iter().flat_map(|m| m.amr()) {
        if !amr.iter().any(|a| a == value) {
            amr.push((*value).to_owned());
        }
    }
    if (password && !methods.is_empty()) || methods.contains(&MfaMethod::WebAuthn) {
        amr.push("mfa".to_owned());
    }
    amr
}

/// One enrolled (or pending) factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorRecord {
    /// Its id; a new setup makes a new id.
    pub id: uuid::Uuid,
    /// Its user.
    pub user_id: UserId,
    /// Its kind.
    pub kind: FactorKind,
    /// The secret part sealed by the keyring, as an envelope's compact text.
    pub sealed: String,
    /// When it was set up.
    pub created_at: OffsetDateTime,
    /// When it was confirmed with its first right code; `None` while pending (it cannot be used).
    pub confirmed_at: Option<OffsetDateTime>,
}

/// One backup code as stored: only its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCodeRecord {
    /// Its user.
    pub user_id: UserId,
    /// Its position in the set (0–9).
    pub index: u8,
    /// HMAC-SHA256 of the normalised code under the subkey of data key `hash_key_id`.
    pub hash: Vec<u8>,
    /// The data key the hash was made under.
    pub hash_key_id: uuid::Uuid,
    /// When the set was made.
    pub created_at: OffsetDateTime,
    /// When it was used; `None` while usable.
    pub used_at: Option<OffsetDateTime>,
}

/// Tunables of MFA, with the original guide's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSettings {
    /// The issuer shown by authenticator apps (`PALISADE_MFA_ISSUER`, default "Palisade").
    pub issuer: String,
    /// Every login needs a second factor (`SECURITY_MFA_REQUIRED`).
    pub required: bool,
    /// Logins of users holding one of these roles need a second factor (`PALISADE_MFA_REQUIRED_ROLES`;
    /// the role Palisade knows is `admin`).
    pub required_roles: Vec<String>,
    /// Distinct second factors a login must pass (1; 2 is "enhanced" MFA).
    pub factors: u8,
    /// Lifetime of an SMS or e-mail code (default 300 s, as in the guide).
    pub code_ttl: Duration,
    /// Shortest time between two sends to one user by one method (default 30 s).
    pub resend_interval: Duration,
    /// Most codes sent to one user by one method per hour (default 10).
    pub sends_per_hour: u32,
    /// Lifetime of an `mfa_token` (default 300 s).
    pub challenge_ttl: Duration,
    /// Backup codes in a set (default 10).
    pub backup_codes: u8,
    /// The WebAuthn relying party (`None`: passkeys are off).
    pub passkeys: Option<PasskeySettings>,
}

/// The roles `required_roles` may name. Palisade's only role today is the administrator's.
pub const KNOWN_ROLES: &[&str] = &["admin"];

impl MfaSettings {
    /// Checks the settings hold together; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=2).contains(&self.factors) {
            return Err(format!("factors is {}: expected 1, or 2 for enhanced MFA", self.factors));
        }
        if let Some(unknown) = self.required_roles.iter().find(|r| !KNOWN_ROLES.contains(&r.as_str())) {
            return Err(format!(
                "required_roles names `{unknown}`: the roles Palisade knows are {}",
                KNOWN_ROLES.join(", ")
            ));
        }
        if self.issuer.is_empty() || self.issuer.contains(':') {
            return Err("issuer must be non-empty and hold no `:` (authenticator apps split labels on it)".into());
        }
        if self.code_ttl < Duration::seconds(30) || self.challenge_ttl < Duration::seconds(30) {
            return Err("code and challenge lifetimes must be at least 30 seconds".into());
        }
        if self.backup_codes == 0 || self.backup_codes > 20 {
            return Err("backup_codes must be 1 to 20".into());
        }
        if let Some(passkeys) = &self.passkeys {
            passkey::RelyingParty::new(passkeys).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            issuer: "Palisade".into(),
            required: false,
            required_roles: Vec::new(),
            factors: 1,
            code_ttl: Duration::seconds(300),
            resend_interval: Duration::seconds(30),
            sends_per_hour: 10,
            challenge_ttl: Duration::seconds(300),
            backup_codes: 10,
            passkeys: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amr_lists_the_password_each_method_once_and_mfa() {
        assert_eq!(amr_of(true, &[]), ["pwd"]);
        assert_eq!(amr_of(true, &[MfaMethod::Totp]), ["pwd", "otp", "mfa"]);
        assert_eq!(amr_of(true, &[MfaMethod::Totp, MfaMethod::BackupCode]), ["pwd", "otp", "mfa"]);
        assert_eq!(amr_of(true, &[MfaMethod::Sms, MfaMethod::Email]), ["pwd", "sms", "email", "mfa"]);
        assert_eq!(amr_of(true, &[MfaMethod::WebAuthn]), ["pwd", "hwk", "user", "mfa"]);
        assert_eq!(amr_of(false, &[MfaMethod::WebAuthn]), ["hwk", "user", "mfa"], "a passkey alone is two factors");
    }

    #[test]
    fn names_round_trip() {
        for kind in [FactorKind::Totp, FactorKind::Sms, FactorKind::Email] {
            assert_eq!(FactorKind::parse(kind.as_str()), Some(kind));
        }
        for method in [MfaMethod::Totp, MfaMethod::BackupCode, MfaMethod::Sms, MfaMethod::Email, MfaMethod::WebAuthn] {
            assert_eq!(MfaMethod::parse(method.as_str()), Some(method));
            assert_eq!(serde_json::to_value(method).unwrap(), method.as_str());
        }
        assert_eq!(MfaMethod::parse("TOTP"), None);
    }
}
