//! [`MfaService`]'s passkey ceremonies: registering, listing, renaming and removing passkeys, and
//! the two ways to log in with one (second factor, passwordless). The WebAuthn checks themselves are
//! webauthn-rs's, wrapped in [`super::passkey`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::Duration;

use super::passkey::{self, Ceremony, PasskeyError, PasskeyRecord, RelyingParty};
use super::service::MfaService;
use super::{MfaChallenge, MfaMethod};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::auth::{AuthError, Principal, SCOPE_USER};
use crate::store::HotKey;
use crate::user::{InvalidInput, UserId};

/// How long a ceremony may take (the authenticator's own timeout is five minutes too).
const CEREMONY_TTL: Duration = Duration::seconds(300);

/// The name a passkey gets when its owner gives none.
const DEFAULT_NAME: &str = "Passkey";

fn ceremony_key(id: &str) -> HotKey {
    HotKey::new(&format!("webauthn:{id}"), "")
}

fn malformed(e: &PasskeyError) -> AuthError {
    tracing::debug!(error = %e, "a WebAuthn answer could not be read");
    AuthError::Invalid(InvalidInput::new(
        "credential",
        "a PublicKeyCredential as navigator.credentials returns it, in JSON (base64url binary fields)",
    ))
}

fn corrupt(e: PasskeyError) -> AuthError {
    AuthError::Internal(e.to_string())
}

/// A passkey's name: trimmed, 1 to 100 characters, no control characters.
fn passkey_name(name: Option<&str>) -> Result<String, AuthError> {
    let name = name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(DEFAULT_NAME);
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(InvalidInput::new("name", "1 to 100 characters, no control characters")));
    }
    Ok(name.to_owned())
}

impl MfaService {
    /// Whether passkeys are configured on this server.
    pub fn passkeys_available(&self) -> bool {
        self.relying_party.is_some()
    }

    fn relying_party(&self) -> Result<&RelyingParty, AuthError> {
        self.relying_party.as_ref().ok_or_else(|| {
            AuthError::MethodUnavailable(
                "webauthn is not available: set PALISADE_WEBAUTHN_RP_ID and PALISADE_WEBAUTHN_ORIGIN (or an \
                 issuer URL with a domain name)"
                    .into(),
            )
        })
    }

    /// Keeps a ceremony for [`CEREMONY_TTL`]; returns its id.
    async fn keep(&self, ceremony: &Ceremony) -> Result<String, AuthError> {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AuthError::Internal("random generator failed".into()))?;
        let id = URL_SAFE_NO_PAD.encode(bytes);
        let raw = serde_json::to_vec(ceremony).map_err(|e| AuthError::Internal(format!("encoding a ceremony: {e}")))?;
        self.hot.put(&ceremony_key(&id), &raw, CEREMONY_TTL).await?;
        Ok(id)
    }

    /// Takes a ceremony (single use, on every instance).
    async fn take(&self, id: &str) -> Result<Ceremony, AuthError> {
        if id.is_empty() || id.len() > 64 {
            return Err(AuthError::CeremonyUnknown);
        }
        let raw = self.hot.take(&ceremony_key(id)).await?.ok_or(AuthError::CeremonyUnknown)?;
        serde_json::from_slice(&raw).map_err(|e| AuthError::Internal(format!("a stored ceremony is corrupt: {e}")))
    }

    /// Starts registering a passkey for the caller (`POST /auth/webauthn/register/start`): the
    /// options for `navigator.credentials.create`, with user verification required.
    pub async fn passkey_register_start(
        &self,
        principal: &Principal,
    ) -> Result<(String, serde_json::Value), AuthError> {
        let user_id = Self::enrolling(principal)?;
        let rp = self.relying_party()?;
        let user = self.user(user_id).await?;
        let existing = self
            .store
            .passkeys(user_id)
            .await?
            .iter()
            .map(passkey::decode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        let (options, state) = rp.start_registration(user_id, user.username.as_str(), &existing).map_err(corrupt)?;
        let id = self.keep(&Ceremony::Register { user: user_id, state }).await?;
        Ok((id, options))
    }

    /// Finishes registering (`POST /auth/webauthn/register/finish`): verifies the authenticator's
    /// answer and stores the public key. A passkey is usable at once: the ceremony itself proved it.
    pub async fn passkey_register_finish(
        &self,
        principal: &Principal,
        ceremony_id: &str,
        credential: &serde_json::Value,
        name: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<PasskeyRecord, AuthError> {
        let user = self.changing(principal).await?;
        let rp = self.relying_party()?;
        let name = passkey_name(name)?;
        let credential = RelyingParty::parse_registration(credential).map_err(|e| malformed(&e))?;
        let Ceremony::Register { user: owner, state } = self.take(ceremony_id).await? else {
            return Err(AuthError::CeremonyUnknown);
        };
        if owner != user {
            return Err(AuthError::CeremonyUnknown);
        }
        let passkey = match rp.finish_registration(&credential, &state) {
            Ok(passkey) => passkey,
            Err(e) => {
                self.audit_failure(user, MfaMethod::WebAuthn, &e.to_string(), meta).await;
                return Err(AuthError::Invalid(InvalidInput::new(
                    "credential",
                    "an answer that verifies: the passkey could not be registered (see the audit log)",
                )));
            }
        };
        let record = PasskeyRecord {
            credential_id: passkey.cred_id().to_vec(),
            user_id: user,
            name,
            passkey: passkey::encode(&passkey).map_err(corrupt)?,
            created_at: self.clock.now(),
            last_used_at: None,
        };
        self.statuses.forget(&record.user_id);
        if !self.store.insert_passkey(&record).await? {
            return Err(AuthError::AlreadyEnrolled("passkey"));
        }
        self.record(
            AuditEvent::new(AuditKind::MfaEnrolled, Outcome::Success)
                .actor(user.to_string())
                .subject(passkey::credential_id_text(&record.credential_id))
                .request(meta.clone())
                .detail("method", "webauthn"),
        )
        .await?;
        Ok(record)
    }

    /// The caller's passkeys.
    pub async fn passkeys(&self, principal: &Principal) -> Result<Vec<PasskeyRecord>, AuthError> {
        let user = Self::enrolling(principal)?;
        Ok(self.store.passkeys(user).await?)
    }

    /// Renames one of the caller's passkeys.
    pub async fn rename_passkey(
        &self,
        principal: &Principal,
        credential_id: &[u8],
        name: &str,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        principal.require_scope(SCOPE_USER)?;
        let name = passkey_name(Some(name))?;
        if !self.store.rename_passkey(principal.user_id, credential_id, &name).await? {
            return Err(AuthError::NotFound);
        }
        self.record(
            AuditEvent::new(AuditKind::PasskeyRenamed, Outcome::Success)
                .actor(principal.user_id.to_string())
                .subject(passkey::credential_id_text(credential_id))
                .request(meta.clone()),
        )
        .await
    }

    /// Removes one of the caller's passkeys (a login session with the `user` scope).
    pub async fn delete_passkey(
        &self,
        principal: &Principal,
        credential_id: &[u8],
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        principal.require_scope(SCOPE_USER)?;
        principal.session()?;
        // The caller has a passkey, so a second factor: removing one needs a session that passed one.
        if !principal.passed_mfa() {
            return Err(AuthError::StepUpRequired);
        }
        self.statuses.forget(&principal.user_id);
        if !self.store.delete_passkey(principal.user_id, credential_id).await? {
            return Err(AuthError::NotFound);
        }
        self.record(
            AuditEvent::new(AuditKind::MfaDisabled, Outcome::Success)
                .actor(principal.user_id.to_string())
                .subject(passkey::credential_id_text(credential_id))
                .request(meta.clone())
                .detail("method", "webauthn"),
        )
        .await
    }

    /// Starts a passkey as the second factor of `challenge`'s login.
    pub(crate) async fn passkey_second_factor_start(
        &self,
        challenge: &MfaChallenge,
        user: UserId,
    ) -> Result<(String, serde_json::Value), AuthError> {
        let rp = self.relying_party()?;
        let passkeys = self
            .store
            .passkeys(user)
            .await?
            .iter()
            .map(passkey::decode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        if passkeys.is_empty() {
            return Err(AuthError::MethodUnavailable("the account has no passkey".into()));
        }
        let (options, state) = rp.start_authentication(&passkeys).map_err(corrupt)?;
        let id = self.keep(&Ceremony::SecondFactor { user, challenge: challenge.id().to_owned(), state }).await?;
        Ok((id, options))
    }

    /// Verifies a passkey answer for `challenge`'s login, under the account's failure count, and
    /// records the new counter.
    pub(crate) async fn passkey_second_factor_finish(
        &self,
        ceremony_id: &str,
        credential: &serde_json::Value,
        challenge: &MfaChallenge,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        let rp = self.relying_party()?;
        let assertion = RelyingParty::parse_assertion(credential).map_err(|e| malformed(&e))?;
        let Ceremony::SecondFactor { user, challenge: bound, state } = self.take(ceremony_id).await? else {
            return Err(AuthError::CeremonyUnknown);
        };
        if bound != challenge.id() || user != challenge.state.user_id {
            return Err(AuthError::CeremonyUnknown);
        }
        let records = self.store.passkeys(user).await?;
        let passkeys = records.iter().map(passkey::decode).collect::<Result<Vec<_>, _>>().map_err(corrupt)?;
        let check = async {
            match rp.finish_authentication(&assertion, &state, &passkeys) {
                Ok(used) if self.save_use(&records, &used).await? => Ok(Ok(())),
                Ok(_) => Ok(Err("passkey used by a concurrent request")),
                Err(PasskeyError::Corrupt(e)) => Err(AuthError::Internal(e)),
                Err(e) => {
                    tracing::info!(user_id = %user, error = %e, "a passkey assertion was refused");
                    Ok(Err("passkey did not verify"))
                }
            }
        };
        self.attempt(user, MfaMethod::WebAuthn, AuditKind::MfaVerified, meta, check).await
    }

    /// Starts a passwordless login with any discoverable passkey.
    pub(crate) async fn passkey_passwordless_start(&self) -> Result<(String, serde_json::Value), AuthError> {
        let rp = self.relying_party()?;
        let (options, state) = rp.start_passwordless().map_err(corrupt)?;
        let id = self.keep(&Ceremony::Passwordless { state }).await?;
        Ok((id, options))
    }

    /// Verifies a passwordless answer; returns the user it logs in. Failures are audited but not
    /// counted against the account the answer names: that name is unverified until the signature
    /// checks, and counting it would let anyone lock anyone's second factor.
    pub(crate) async fn passkey_passwordless_finish(
        &self,
        ceremony_id: &str,
        credential: &serde_json::Value,
        meta: &RequestMeta,
    ) -> Result<UserId, AuthError> {
        let rp = self.relying_party()?;
        let assertion = RelyingParty::parse_assertion(credential).map_err(|e| malformed(&e))?;
        let Ceremony::Passwordless { state } = self.take(ceremony_id).await? else {
            return Err(AuthError::CeremonyUnknown);
        };
        let refuse = |reason: String| async move {
            let event = AuditEvent::new(AuditKind::LoginFailed, Outcome::Failure)
                .request(meta.clone())
                .detail("method", "webauthn")
                .detail("reason", reason);
            if let Err(e) = self.audit.append(event).await {
                tracing::error!(error = %e, "could not audit a refused passkey login");
            }
            AuthError::PasskeyRejected
        };
        let (user, credential_id) = match rp.identify(&assertion) {
            Ok(found) => found,
            Err(e) => return Err(refuse(e.to_string()).await),
        };
        let Some(record) = self.store.passkey(&credential_id).await?.filter(|r| r.user_id == user) else {
            return Err(refuse("unknown credential or user handle".into()).await);
        };
        let stored = passkey::decode(&record).map_err(corrupt)?;
        match rp.finish_passwordless(&assertion, state, &stored) {
            Ok(used) => {
                if !self.save_use(std::slice::from_ref(&record), &used).await? {
                    return Err(refuse(format!("passkey used by a concurrent request (user {user})")).await);
                }
                self.record(
                    AuditEvent::new(AuditKind::MfaVerified, Outcome::Success)
                        .actor(user.to_string())
                        .request(meta.clone())
                        .detail("method", "webauthn")
                        .detail("passwordless", true),
                )
                .await?;
                Ok(user)
            }
            Err(PasskeyError::Corrupt(e)) => Err(AuthError::Internal(e)),
            Err(e) => Err(refuse(format!("{e} (user {user})")).await),
        }
    }

    /// Stores a passkey's moved-on counter and its last use, over the stored form it was read as;
    /// `false` when a concurrent use stored first (then this answer does not count: two uses cannot
    /// both pass on one counter value).
    async fn save_use(
        &self,
        records: &[PasskeyRecord],
        used: &webauthn_rs::prelude::Passkey,
    ) -> Result<bool, AuthError> {
        let Some(record) = records.iter().find(|r| r.credential_id.as_slice() == used.cred_id().as_slice()) else {
            return Ok(false);
        };
        let new = passkey::encode(used).map_err(corrupt)?;
        Ok(self.store.update_passkey(&record.credential_id, &record.passkey, &new, self.clock.now()).await?)
    }
}
