//! Passkeys (WebAuthn Level 2 through webauthn-rs): registration, the second factor of a login, and
//! passwordless login with a discoverable passkey.
//!
//! This is what the original guide's "biometric authentication" means on real devices: the
//! platform authenticator (Touch ID, Windows Hello, an Android phone, a security key with a PIN)
//! checks the fingerprint, face or PIN locally and signs the challenge; the server requires the
//! user-verified (UV) flag and checks the signature against the public key registered for that
//! credential, and the signature counter against the last one seen. No biometric template ever
//! leaves the device, and none is accepted or stored here.
//!
//! # State
//! A ceremony's state (webauthn-rs's registration or authentication state, serialised) is kept in
//! the hot store under a random `challenge_id` for five minutes and *taken* when the ceremony
//! finishes: single use, on every instance. Credentials (public keys, counters) are durable, as
//! webauthn-rs's `Passkey` JSON.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use crate::user::UserId;

/// Where passkeys are bound: the relying party id (a registrable domain, e.g. `example.com`) and
/// the origin pages run on (`https://login.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySettings {
    /// `PALISADE_WEBAUTHN_RP_ID`.
    pub rp_id: String,
    /// `PALISADE_WEBAUTHN_ORIGIN`.
    pub origin: Url,
    /// The name authenticators show (the MFA issuer).
    pub rp_name: String,
}

/// One registered passkey as stored: the credential id, its owner and name, and webauthn-rs's
/// `Passkey` (public key, algorithm, counter, flags) as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The credential id (raw bytes).
    pub credential_id: Vec<u8>,
    /// Its owner.
    pub user_id: UserId,
    /// A name its owner gave it.
    pub name: String,
    /// webauthn-rs's `Passkey`, serialised.
    pub passkey: String,
    /// When it was registered.
    pub created_at: time::OffsetDateTime,
    /// When it last signed a login.
    pub last_used_at: Option<time::OffsetDateTime>,
}

/// Why a WebAuthn ceremony failed.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The relying party cannot be set up from these settings.
    #[error("WebAuthn settings: {0}")]
    Settings(String),
    /// The browser's answer is not a WebAuthn credential of the expected kind.
    #[error("not a WebAuthn {0} response")]
    Malformed(&'static str),
    /// The answer does not verify (signature, origin, challenge, user verification, counter …).
    #[error("the passkey did not verify: {0}")]
    Rejected(String),
    /// A stored value could not be read.
    #[error("a stored passkey or ceremony is corrupt: {0}")]
    Corrupt(String),
}

/// The relying party.
pub struct RelyingParty {
    webauthn: Webauthn,
}

impl fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelyingParty")
    }
}

/// A ceremony in progress, as kept in the hot store.
#[derive(Serialize, Deserialize)]
pub(crate) enum Ceremony {
    /// Registering a passkey for `user`.
    Register { user: UserId, state: PasskeyRegistration },
    /// A passkey as the second factor of the login challenge whose token hashes to `challenge`.
    SecondFactor { user: UserId, challenge: String, state: PasskeyAuthentication },
    /// Passwordless login with any discoverable passkey.
    Passwordless { state: DiscoverableAuthentication },
}

impl RelyingParty {
    /// The relying party for `settings`; webauthn-rs checks that the origin's host is the RP id or
    /// one of its subdomains.
    pub fn new(settings: &PasskeySettings) -> Result<Self, PasskeyError> {
        let webauthn = WebauthnBuilder::new(&settings.rp_id, &settings.origin)
            .map_err(|e| PasskeyError::Settings(e.to_string()))?
            .rp_name(&settings.rp_name)
            .build()
            .map_err(|e| PasskeyError::Settings(e.to_string()))?;
        Ok(Self { webauthn })
    }

    /// Starts registering a passkey for `user`, excluding the credentials it has. Returns the
    /// `PublicKeyCredentialCreationOptions` for `navigator.credentials.create` and the state.
    /// User verification is required, and a discoverable credential is asked for ("preferred"), so
    /// the passkey can also log in without a username.
    pub(crate) fn start_registration(
        &self,
        user: UserId,
        username: &str,
        existing: &[Passkey],
    ) -> Result<(serde_json::Value, PasskeyRegistration), PasskeyError> {
        let exclude = existing.iter().map(|p| p.cred_id().clone()).collect::<Vec<_>>();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user.as_uuid(), username, username, Some(exclude))
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let mut options = serde_json::to_value(options).map_err(|e| PasskeyError::Corrupt(e.to_string()))?;
        if let Some(selection) =
            options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut())
        {
            selection.insert("residentKey".into(), "preferred".into());
        }
        Ok((options, state))
    }

    /// Reads a registration answer.
    pub(crate) fn parse_registration(
        credential: &serde_json::Value,
    ) -> Result<RegisterPublicKeyCredential, PasskeyError> {
        serde_json::from_value(credential.clone()).map_err(|_| PasskeyError::Malformed("registration"))
    }

    /// Verifies a registration answer against its state.
    pub(crate) fn finish_registration(
        &self,
        credential: &RegisterPublicKeyCredential,
        state: &PasskeyRegistration,
    ) -> Result<Passkey, PasskeyError> {
        self.webauthn.finish_passkey_registration(credential, state).map_err(|e| PasskeyError::Rejected(e.to_string()))
    }

    /// Starts an authentication by one of `passkeys` (the second factor of a login).
    pub(crate) fn start_authentication(
        &self,
        passkeys: &[Passkey],
    ) -> Result<(serde_json::Value, PasskeyAuthentication), PasskeyError> {
        let (options, state) =
            self.webauthn.start_passkey_authentication(passkeys).map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        Ok((serde_json::to_value(options).map_err(|e| PasskeyError::Corrupt(e.to_string()))?, state))
    }

    /// Starts a passwordless authentication by any discoverable passkey. The options ask for
    /// conditional mediation (autofill); pages that want a button drop `mediation`.
    pub(crate) fn start_passwordless(&self) -> Result<(serde_json::Value, DiscoverableAuthentication), PasskeyError> {
        let (options, state) =
            self.webauthn.start_discoverable_authentication().map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        Ok((serde_json::to_value(options).map_err(|e| PasskeyError::Corrupt(e.to_string()))?, state))
    }

    /// Reads an authentication answer.
    pub(crate) fn parse_assertion(credential: &serde_json::Value) -> Result<PublicKeyCredential, PasskeyError> {
        serde_json::from_value(credential.clone()).map_err(|_| PasskeyError::Malformed("authentication"))
    }

    /// The user handle and credential id a passwordless answer claims (not yet verified).
    pub(crate) fn identify(&self, assertion: &PublicKeyCredential) -> Result<(UserId, Vec<u8>), PasskeyError> {
        let (user, credential_id) = self
            .webauthn
            .identify_discoverable_authentication(assertion)
            .map_err(|_| PasskeyError::Malformed("passwordless authentication (no user handle)"))?;
        Ok((UserId::from_uuid(user), credential_id.to_vec()))
    }

    /// Verifies a second-factor answer; returns the passkey with its counter moved on.
    pub(crate) fn finish_authentication(
        &self,
        assertion: &PublicKeyCredential,
        state: &PasskeyAuthentication,
        passkeys: &[Passkey],
    ) -> Result<Passkey, PasskeyError> {
        let result = self
            .webauthn
            .finish_passkey_authentication(assertion, state)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let mut used = passkeys
            .iter()
            .find(|p| p.cred_id() == result.cred_id())
            .cloned()
            .ok_or_else(|| PasskeyError::Rejected("an unknown credential signed".into()))?;
        check_counter(&used, result.counter())?;
        used.update_credential(&result);
        Ok(used)
    }

    /// Verifies a passwordless answer by `passkey` (found by the credential id it claims).
    pub(crate) fn finish_passwordless(
        &self,
        assertion: &PublicKeyCredential,
        state: DiscoverableAuthentication,
        passkey: &Passkey,
    ) -> Result<Passkey, PasskeyError> {
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(assertion, state, passkey)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        check_counter(passkey, result.counter())?;
        let mut used = passkey.clone();
        used.update_credential(&result);
        Ok(used)
    }
}

/// The signature counter stored with a passkey (webauthn-rs keeps it private; its serialised form
/// has it).
fn stored_counter(passkey: &Passkey) -> Result<u64, PasskeyError> {
    let value = serde_json::to_value(passkey).map_err(|e| PasskeyError::Corrupt(e.to_string()))?;
    value
        .pointer("/cred/counter")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| PasskeyError::Corrupt("a stored passkey has no counter".into()))
}

/// Refuses an answer whose signature counter is not above the one stored *now* (webauthn-rs compares
/// with the one read when the ceremony started): a cloned authenticator used after the real one
/// moved the counter on. Authenticators that keep no counter (always 0) pass.
fn check_counter(stored: &Passkey, presented: u32) -> Result<(), PasskeyError> {
    let stored = stored_counter(stored)?;
    if (presented > 0 || stored > 0) && u64::from(presented) <= stored {
        return Err(PasskeyError::Rejected(format!(
            "the signature counter went from {stored} to {presented}: possibly a cloned authenticator"
        )));
    }
    Ok(())
}

/// A passkey's JSON form for the store.
pub(crate) fn encode(passkey: &Passkey) -> Result<String, PasskeyError> {
    serde_json::to_string(passkey).map_err(|e| PasskeyError::Corrupt(e.to_string()))
}

/// A stored passkey.
pub(crate) fn decode(record: &PasskeyRecord) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(&record.passkey)
        .map_err(|e| PasskeyError::Corrupt(format!("passkey of {}: {e}", record.user_id)))
}

/// The credential id as the API shows it (base64url, unpadded).
pub fn credential_id_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// The credential id from its API form.
pub fn parse_credential_id(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok().filter(|id| !id.is_empty() && id.len() <= 1023)
}
