//! Logging in: the password step with its lockout and throttling, then — when the user has a second
//! factor, or must have one — the MFA step through an `mfa_token` challenge, and finally the session
//! and its tokens.

use secrecy::SecretString;

use super::error::AuthError;
use super::lockout::Gate;
use super::service::{Access, AuthService, LoginOutcome, MfaPending, MfaStep, TokenPair, secs};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::mfa::code::{BackupCode, OtpCode};
use crate::mfa::{ChallengeState, MfaChallenge, MfaMethod, amr_of};
use crate::session::DeviceInfo;
use crate::token::RevokeReason;
use crate::user::{InvalidInput, User, Username};

/// Passwordless passkey logins one client address may start per [`PASSWORDLESS_WINDOW`].
const PASSWORDLESS_STARTS: u64 = 30;
/// The window of [`PASSWORDLESS_STARTS`].
const PASSWORDLESS_WINDOW: time::Duration = time::Duration::minutes(1);

impl AuthService {
    /// Logs in with a password.
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        device: Option<DeviceInfo>,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AuthError> {
        let ip = meta.ip.as_deref();
        let Ok(username) = Username::parse(username) else {
            // Not even a possible name: the same work and answer as an unknown user.
            self.passwords.verify_dummy(password).await;
            let refused = self.login_failed(None, "malformed username", meta).await;
            self.lockout.count_ip_failure(ip).await?;
            return Err(refused);
        };
        let attempt = match self.lockout.gate(username.as_str(), ip).await? {
            Gate::Open { count } => count,
            Gate::IpThrottled(wait) => {
                self.audit_failure(AuditKind::LoginFailed, Some(&username), "address throttled", meta).await;
                return Err(AuthError::RateLimited { retry_after_secs: secs(wait) });
            }
            Gate::AccountLocked(wait) => {
                self.audit_failure(AuditKind::LoginFailed, Some(&username), "account locked out", meta).await;
                return Err(AuthError::AccountLocked { retry_after_secs: secs(wait) });
            }
        };
        let user = self.store.user_by_username(&username).await?;
        let verified = match &user {
            Some(user) => self.verify(password.clone(), &user.password_hash).await?,
            None => {
                self.passwords.verify_dummy(password.clone()).await;
                false
            }
        };
        let user = match user {
            Some(user) if verified && !user.locked => user,
            other => {
                let reason = match other {
                    None => "unknown user",
                    Some(u) if u.locked => "account disabled by an administrator",
                    Some(_) => "wrong password",
                };
                let refused = self.login_failed(Some(&username), reason, meta).await;
                if attempt == self.lockout.max_attempts() {
                    self.audit_failure(AuditKind::AccountLockedOut, Some(&username), "too many failed logins", meta)
                        .await;
                }
                self.lockout.count_ip_failure(ip).await?;
                return Err(refused);
            }
        };
        self.lockout.clear(&user.username).await?;
        if self.passwords.needs_rehash(&user.password_hash) {
            self.rehash(&user, password).await;
        }
        let password_expired = self.policy.is_expired(user.password_changed_at, self.clock.now());
        let methods = self.mfa.login_methods(user.id).await?;
        if methods.enrolled {
            if methods.usable.is_empty() {
                self.audit_failure(AuditKind::LoginFailed, Some(&username), "no usable second factor", meta).await;
                return Err(AuthError::Unavailable(
                    "the account's second factors need a message provider this server does not have".into(),
                ));
            }
            // Enhanced MFA asks for two distinct factors; a user with fewer passes all they have. Backup
            // codes may stand in for a factor the user cannot use, but never add one to the count.
            let factors = methods.usable.iter().filter(|m| **m != MfaMethod::BackupCode).count().max(1);
            let required = self.mfa.settings().factors.clamp(1, u8::try_from(factors).unwrap_or(u8::MAX));
            let state = ChallengeState {
                user_id: user.id,
                password_changed_at: user.password_changed_at,
                required,
                methods: methods.usable.clone(),
                done: Vec::new(),
                device,
                password_expired,
                spent: false,
            };
            let token = self.mfa.challenges().open(&state).await?;
            self.record(
                AuditEvent::new(AuditKind::MfaChallenged, Outcome::Success)
                    .actor(user.id.to_string())
                    .request(meta.clone())
                    .detail("methods", methods.usable.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","))
                    .detail("required_factors", required),
            )
            .await?;
            return Ok(LoginOutcome::MfaRequired(MfaPending {
                mfa_token: token,
                methods: methods.usable,
                factors_required: required,
                expires_in: secs(self.mfa.challenges().ttl()),
            }));
        }
        let access =
            if self.mfa.is_required_for(&user) { Access::EnrolOnly } else { Access::Full { password_expired } };
        let pair = self.finish_login(&user, true, &[], device, access, meta).await?;
        Ok(LoginOutcome::Tokens(pair))
    }

    /// Passes one factor of a login's second step (`POST /auth/mfa/verify`). The code is parsed
    /// first: a malformed one is refused (422) with nothing consumed or counted. When the factors
    /// required are passed, the challenge is spent and the login completes.
    pub async fn verify_mfa(
        &self,
        mfa_token: &SecretString,
        method: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<MfaStep, AuthError> {
        let method = MfaMethod::parse(method).filter(|m| *m != MfaMethod::WebAuthn).ok_or(AuthError::Invalid(
            InvalidInput::new(
                "method",
                "one of totp, backup_code, sms, email (a passkey answers /auth/webauthn/login/finish)",
            ),
        ))?;
        match method {
            MfaMethod::BackupCode => drop(BackupCode::parse(code)?),
            MfaMethod::Totp | MfaMethod::Sms | MfaMethod::Email | MfaMethod::WebAuthn => drop(OtpCode::parse(code)?),
        }
        let (challenge, user) = self.open_challenge(mfa_token, method, meta).await?;
        self.mfa.verify_login_code(&challenge, method, code, meta).await?;
        self.pass_factor(mfa_token, &challenge, &user, method, meta).await
    }

    /// The live challenge of `mfa_token`, that `method` may pass, and its user, still unlocked and
    /// with the password of the password step.
    pub(super) async fn open_challenge(
        &self,
        mfa_token: &SecretString,
        method: MfaMethod,
        meta: &RequestMeta,
    ) -> Result<(MfaChallenge, User), AuthError> {
        let challenge = match self.mfa.challenges().get(mfa_token).await {
            Ok(challenge) => challenge,
            Err(e) => {
                let reason = match &e {
                    AuthError::TokenExpired => "mfa_token expired",
                    AuthError::MfaTokenUsed => "mfa_token already used",
                    _ => "unknown mfa_token",
                };
                self.audit_failure(AuditKind::MfaFailed, None, reason, meta).await;
                return Err(e);
            }
        };
        let state = &challenge.state;
        if !state.remaining().contains(&method) {
            return Err(AuthError::MethodUnavailable(format!(
                "{} is not one of this login's methods",
                method.as_str()
            )));
        }
        let user = self.store.user_by_id(state.user_id).await?;
        let Some(user) = user.filter(|u| !u.locked && u.password_changed_at == state.password_changed_at) else {
            self.audit_failure(
                AuditKind::MfaFailed,
                None,
                "account locked or password changed since the password step",
                meta,
            )
            .await;
            return Err(AuthError::InvalidToken);
        };
        Ok((challenge, user))
    }

    /// Records `method` as passed on the challenge (compare-and-set: of two concurrent passes, one
    /// counts); completes the login when no factor is left.
    async fn pass_factor(
        &self,
        mfa_token: &SecretString,
        challenge: &MfaChallenge,
        user: &User,
        method: MfaMethod,
        meta: &RequestMeta,
    ) -> Result<MfaStep, AuthError> {
        let mut next = challenge.state.clone();
        next.done.push(method);
        next.spent = next.factors_left() == 0;
        if !self.mfa.challenges().advance(challenge, &next).await? {
            // Another request moved this challenge on first.
            return Err(AuthError::MfaTokenUsed);
        }
        if !next.spent {
            return Ok(MfaStep::Continue(MfaPending {
                mfa_token: mfa_token.clone(),
                methods: next.remaining(),
                factors_required: next.factors_left(),
                expires_in: secs(challenge.expires_at - self.clock.now()),
            }));
        }
        let access = Access::Full { password_expired: next.password_expired };
        Ok(MfaStep::Done(self.finish_login(user, true, &next.done, next.device, access, meta).await?))
    }

    /// Starts a passkey ceremony for logging in (`POST /auth/webauthn/login/start`): with an
    /// `mfa_token`, the passkey is the second factor of that login; without, a passwordless login
    /// with any discoverable passkey. Returns the ceremony's id and the options for
    /// `navigator.credentials.get`.
    pub async fn passkey_login_start(
        &self,
        mfa_token: Option<&SecretString>,
        meta: &RequestMeta,
    ) -> Result<(String, serde_json::Value), AuthError> {
        match mfa_token {
            Some(token) => {
                let (challenge, user) = self.open_challenge(token, MfaMethod::WebAuthn, meta).await?;
                self.mfa.passkey_second_factor_start(&challenge, user.id).await
            }
            None => {
                // Each start stores a ceremony for five minutes, for anyone: bounded per address.
                if let Some(ip) = meta.ip.as_deref() {
                    let key = crate::store::HotKey::new(&format!("ip:{ip}"), "passkey-starts");
                    let count = self.hot.increment(&key, PASSWORDLESS_WINDOW).await?;
                    if count.count > PASSWORDLESS_STARTS {
                        self.audit_failure(AuditKind::LoginFailed, None, "passkey login starts throttled", meta).await;
                        return Err(AuthError::RateLimited { retry_after_secs: secs(count.resets_in) });
                    }
                }
                self.mfa.passkey_passwordless_start().await
            }
        }
    }

    /// Finishes a passkey login (`POST /auth/webauthn/login/finish`): verifies the signature, the
    /// user-verification flag and the counter (failures count against the account's MFA limit),
    /// then passes the second factor of the `mfa_token`'s login, or — passwordless — logs in.
    pub async fn passkey_login_finish(
        &self,
        ceremony_id: &str,
        credential: &serde_json::Value,
        mfa_token: Option<&SecretString>,
        meta: &RequestMeta,
    ) -> Result<MfaStep, AuthError> {
        match mfa_token {
            Some(token) => {
                let (challenge, user) = self.open_challenge(token, MfaMethod::WebAuthn, meta).await?;
                self.mfa.passkey_second_factor_finish(ceremony_id, credential, &challenge, meta).await?;
                self.pass_factor(token, &challenge, &user, MfaMethod::WebAuthn, meta).await
            }
            None => {
                let user_id = self.mfa.passkey_passwordless_finish(ceremony_id, credential, meta).await?;
                let Some(user) = self.store.user_by_id(user_id).await?.filter(|u| !u.locked) else {
                    self.audit_failure(AuditKind::LoginFailed, None, "passkey of a missing or locked account", meta)
                        .await;
                    return Err(AuthError::InvalidCredentials);
                };
                let access = Access::Full {
                    password_expired: self.policy.is_expired(user.password_changed_at, self.clock.now()),
                };
                Ok(MfaStep::Done(self.finish_login(&user, false, &[MfaMethod::WebAuthn], None, access, meta).await?))
            }
        }
    }

    /// Opens the session and its refresh family for a user who passed every step, with the methods
    /// they used. A password change or an administrative lock that ran meanwhile (while the
    /// password was hashing, or between the steps) ended the user's sessions before this one
    /// existed: the account is read again afterwards and the login undone if so.
    async fn finish_login(
        &self,
        user: &User,
        password: bool,
        methods: &[MfaMethod],
        device: Option<DeviceInfo>,
        access: Access,
        meta: &RequestMeta,
    ) -> Result<TokenPair, AuthError> {
        let amr = amr_of(password, methods);
        let session =
            self.sessions.create(user.id, meta.ip.clone(), meta.user_agent.clone(), device, amr.clone()).await?;
        let pair = self.open_family(user, &session, access).await?;
        let current = self.store.user_by_id(user.id).await?;
        if current.as_ref().is_none_or(|u| u.locked || u.password_changed_at != user.password_changed_at) {
            self.sessions.end(user.id, session.id).await?;
            self.store.revoke_session_families(session.id, RevokeReason::SessionEnded, self.clock.now()).await?;
            let reason = "password changed or account locked during the login";
            return Err(self.login_failed(Some(&user.username), reason, meta).await);
        }
        let (password_expired, enrol_only) = match access {
            Access::Full { password_expired } => (password_expired, false),
            Access::EnrolOnly => (false, true),
        };
        self.record(
            AuditEvent::new(AuditKind::LoginSucceeded, Outcome::Success)
                .actor(user.id.to_string())
                .subject(session.id.to_string())
                .request(meta.clone())
                .detail("method", {
                    let mut used: Vec<&str> = if password { vec!["password"] } else { Vec::new() };
                    used.extend(methods.iter().map(|m| m.as_str()));
                    used.join("+")
                })
                .detail("amr", amr.join(" "))
                .detail("password_expired", password_expired)
                .detail("mfa_enrolment_required", enrol_only),
        )
        .await?;
        Ok(pair)
    }

    /// Verifies a password; a failure of the hashing service itself is an error, not a wrong password.
    pub(super) async fn verify(&self, password: SecretString, phc: &str) -> Result<bool, AuthError> {
        match self.passwords.verify(password, phc).await {
            Ok(ok) => Ok(ok),
            Err(crate::password::PasswordHashError::Unavailable) => {
                Err(AuthError::Unavailable("password hashing is unavailable".into()))
            }
            // A stored hash we cannot read never matches; the cause is logged.
            Err(e) => {
                tracing::error!(error = %e, "a stored password hash could not be used");
                Ok(false)
            }
        }
    }
}
