//! Logging in: the password step with its lockout and throttling, then — when the user has a second
//! factor, or must have one — the MFA step through an `mfa_token` challenge, and finally the session
//! and its tokens.

use secrecy::{ExposeSecret as _, SecretString};

use super::error::AuthError;
use super::lockout::Gate;
use super::service::{Access, AuthService, LoginOutcome, MfaPending, MfaStep, TokenPair, secs};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::mfa::code::{BackupCode, OtpCode};
use crate::mfa::{ChallengeState, MfaChallenge, MfaMethod, amr_of};
use crate::risk::{LoginAttempt, RiskDecision, RiskSummary};
use crate::session::{DeviceInfo, NewSession, OpenError};
use crate::token::RevokeReason;
use crate::user::{InvalidInput, User, Username};

/// Passwordless passkey logins one client address may start per [`PASSWORDLESS_WINDOW`].
const PASSWORDLESS_STARTS: u64 = 30;
/// The window of [`PASSWORDLESS_STARTS`].
const PASSWORDLESS_WINDOW: time::Duration = time::Duration::minutes(1);

/// What a login may carry besides the username and password.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    /// The device, as the client describes it.
    pub device: Option<DeviceInfo>,
    /// Issue a remember-device token when the login passes a second factor.
    pub remember_device: bool,
    /// A remember-device token from an earlier login on this device.
    pub device_token: Option<SecretString>,
}

/// What a login carries from its password step to the session.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct LoginCarry {
    pub(super) device: Option<DeviceInfo>,
    pub(super) risk: Option<RiskSummary>,
    pub(super) remember_device: bool,
}

/// What completing a login came to.
pub(super) enum Finished {
    /// A session and its tokens.
    Tokens(TokenPair),
    /// The device waits for approval.
    Approval(super::service::ApprovalPending),
}

impl From<Finished> for MfaStep {
    fn from(finished: Finished) -> Self {
        match finished {
            Finished::Tokens(pair) => Self::Done(pair),
            Finished::Approval(pending) => Self::ApprovalRequired(pending),
        }
    }
}

impl AuthService {
    /// Logs in with a password.
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        device: Option<DeviceInfo>,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AuthError> {
        self.login_with(username, password, LoginOptions { device, ..LoginOptions::default() }, meta).await
    }

    /// Logs in with a password and the options of [`LoginOptions`].
    pub async fn login_with(
        &self,
        username: &str,
        password: SecretString,
        options: LoginOptions,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, AuthError> {
        let LoginOptions { device, remember_device, device_token } = options;
        let ip = meta.ip.as_deref();
        let Ok(username) = Username::parse(username) else {
            // Not even a possible name: the same work and answer as an unknown user, within the
            // address's limits.
            let slot = match self.lockout.gate_address(ip).await? {
                Ok(slot) => slot,
                Err(wait) => {
                    self.audit_failure(AuditKind::LoginFailed, None, "address throttled", meta).await;
                    return Err(AuthError::RateLimited { retry_after_secs: secs(wait) });
                }
            };
            self.passwords.verify_dummy(password).await;
            let refused = self.login_failed(None, "malformed username", meta).await;
            let counted = self.lockout.count_ip_failure(ip).await;
            self.lockout.release(slot).await;
            counted?;
            return Err(refused);
        };
        let (attempt, slot) = match self.lockout.gate(username.as_str(), ip).await? {
            Gate::Open { count, slot } => (count, slot),
            Gate::IpThrottled(wait) => {
                self.audit_failure(AuditKind::LoginFailed, Some(&username), "address throttled", meta).await;
                return Err(AuthError::RateLimited { retry_after_secs: secs(wait) });
            }
            Gate::AccountLocked(wait) => {
                self.audit_failure(AuditKind::LoginFailed, Some(&username), "account locked out", meta).await;
                return Err(AuthError::AccountLocked { retry_after_secs: secs(wait) });
            }
        };
        let checked = self.check_credentials(&username, password.clone()).await;
        let (user, verified) = match checked {
            Ok(checked) => checked,
            Err(e) => {
                self.lockout.release(slot).await;
                return Err(e);
            }
        };
        let user = match user {
            Some(user) if verified && !user.locked => {
                self.lockout.release(slot).await;
                user
            }
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
                // Counted before the slot is given back (see `lockout`).
                let counted = self.lockout.count_ip_failure(ip).await;
                self.lockout.release(slot).await;
                counted?;
                return Err(refused);
            }
        };
        self.lockout.clear(&user.username).await?;
        if self.passwords.needs_rehash(&user.password_hash) {
            self.rehash(&user, password).await;
        }
        let password_expired = self.policy.is_expired(user.password_changed_at, self.clock.now());
        let risk = self.score_login(&user, device.as_ref(), device_token.as_ref(), attempt, meta).await?;
        let risk_factors = risk.as_ref().map_or(0, |r| r.decision.factors_required());
        let methods = self.mfa.login_methods(user.id).await?;
        if risk_factors > 0 && !methods.enrolled {
            // A user without a second factor cannot be asked for one: the step-up is recorded (and
            // SECURITY_MFA_REQUIRED is the setting that closes this gap).
            tracing::info!(user_id = %user.id, "risk asked for a second factor the user does not have");
        }
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
            let required =
                self.mfa.settings().factors.max(risk_factors).clamp(1, u8::try_from(factors).unwrap_or(u8::MAX));
            let state = ChallengeState {
                user_id: user.id,
                password_changed_at: user.password_changed_at,
                required,
                methods: methods.usable.clone(),
                done: Vec::new(),
                device,
                password_expired,
                spent: false,
                risk: risk.clone(),
                remember_device,
            };
            let token = self.mfa.challenges().open(&state).await?;
            self.record(
                AuditEvent::new(AuditKind::MfaChallenged, Outcome::Success)
                    .actor(user.id.to_string())
                    .request(meta.clone())
                    .detail("methods", methods.usable.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","))
                    .detail("required_factors", required)
                    .detail("risk_score", risk.as_ref().map(|r| r.score))
                    .detail("risk_factors", risk.as_ref().map(|r| r.factors.join(",")).unwrap_or_default()),
            )
            .await?;
            return Ok(LoginOutcome::MfaRequired(MfaPending {
                mfa_token: token,
                methods: methods.usable,
                factors_required: required,
                expires_in: secs(self.mfa.challenges().ttl()),
                risk,
            }));
        }
        let access =
            if self.mfa.is_required_for(&user) { Access::EnrolOnly } else { Access::Full { password_expired } };
        let carry = LoginCarry { device, risk, remember_device };
        Ok(match self.finish_login(&user, true, &[], access, carry, meta).await? {
            Finished::Tokens(pair) => LoginOutcome::Tokens(pair),
            Finished::Approval(pending) => LoginOutcome::ApprovalRequired(pending),
        })
    }

    /// Scores a login whose password was right; a block is recorded, audited and refused here.
    async fn score_login(
        &self,
        user: &User,
        device: Option<&DeviceInfo>,
        device_token: Option<&SecretString>,
        attempt: u64,
        meta: &RequestMeta,
    ) -> Result<Option<RiskSummary>, AuthError> {
        if !self.risk.enabled() {
            return Ok(None);
        }
        let signature = self.devices.signature(meta);
        let fingerprint = self.devices.fingerprint(user.id, device, &signature);
        let geo = self.devices.locate(meta.ip.as_deref());
        let (known, mut familiarity) = self.devices.familiarity(user.id, &fingerprint).await?;
        if let (Some(token), Some(device)) = (device_token, &known)
            && self.devices.check_remember_token(token.expose_secret(), user.id, device.id, &fingerprint)
        {
            familiarity = crate::risk::DeviceFamiliarity::Trusted;
        }
        let attempt = LoginAttempt {
            user: user.id,
            ip: meta.ip.as_deref(),
            geo: &geo,
            device: familiarity,
            device_id: known.map(|d| d.id),
            account_failures: attempt.saturating_sub(1),
        };
        let Some(record) = self.risk.assess_and_record(&attempt).await? else { return Ok(None) };
        let summary = RiskSummary::of(&record);
        if record.assessment.decision == RiskDecision::Block {
            let event = AuditEvent::new(AuditKind::LoginRiskBlocked, Outcome::Failure)
                .actor(user.id.to_string())
                .subject(user.username.to_string())
                .request(meta.clone())
                .detail("risk_score", summary.score)
                .detail("risk_factors", summary.factors.join(","))
                .detail("country", geo.country.clone().unwrap_or_default());
            if let Err(e) = self.audit.append(event).await {
                tracing::error!(error = %e, "could not audit a risk block");
            }
            return Err(AuthError::RiskBlocked { score: summary.score, factors: summary.factors });
        }
        Ok(Some(summary))
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
                risk: next.risk.clone(),
            }));
        }
        let access = Access::Full { password_expired: next.password_expired };
        let carry = LoginCarry { device: next.device, risk: next.risk, remember_device: next.remember_device };
        Ok(self.finish_login(user, true, &next.done, access, carry, meta).await?.into())
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
                let carry = LoginCarry::default();
                Ok(self.finish_login(&user, false, &[MfaMethod::WebAuthn], access, carry, meta).await?.into())
            }
        }
    }

    /// Opens the session and its refresh family for a user who passed every step, with the methods
    /// they used: registers the device (or updates it), binds the session to the client, ends older
    /// sessions past the per-user limit, and settles the risk record. A password change or an
    /// administrative lock that ran meanwhile (while the password was hashing, or between the steps)
    /// ended the user's sessions before this one existed: the account is read again afterwards and
    /// the login undone if so.
    pub(super) async fn finish_login(
        &self,
        user: &User,
        password: bool,
        methods: &[MfaMethod],
        access: Access,
        carry: LoginCarry,
        meta: &RequestMeta,
    ) -> Result<Finished, AuthError> {
        let signature = self.devices.signature(meta);
        let fingerprint = self.devices.fingerprint(user.id, carry.device.as_ref(), &signature);
        let geo = self.devices.locate(meta.ip.as_deref());
        let seen = self.devices.record_login(user, fingerprint, carry.device.as_ref(), &geo, meta).await?;
        if !seen.device.approved {
            // Device approval is on and this device waits: no session until it is approved.
            let pending = self.await_approval(user, &seen.device, password, methods, access, carry, meta).await?;
            return Ok(Finished::Approval(pending));
        }
        let LoginCarry { device, risk, remember_device } = carry;
        let amr = amr_of(password, methods);
        let new = NewSession {
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            device,
            amr: amr.clone(),
            origin: self.devices.origin(&signature, meta.ip.as_deref(), &geo),
            device_id: Some(seen.device.id),
            country: geo.country.clone(),
            city: geo.city.clone(),
            oauth: None,
        };
        let opened = match self.sessions.create(user.id, new).await {
            Ok(opened) => opened,
            Err(OpenError::LimitReached) => {
                self.audit_failure(AuditKind::LoginFailed, Some(&user.username), "another session is active", meta)
                    .await;
                return Err(AuthError::SessionLimit);
            }
            Err(OpenError::Store(e)) => return Err(e.into()),
        };
        let session = opened.session;
        for evicted in opened.evicted {
            self.store.revoke_session_families(evicted, RevokeReason::SessionEnded, self.clock.now()).await?;
            self.record(
                AuditEvent::new(AuditKind::SessionEvicted, Outcome::Success)
                    .actor(user.id.to_string())
                    .subject(evicted.to_string())
                    .request(meta.clone())
                    .detail("limit", self.sessions.policy().max_per_user),
            )
            .await?;
        }
        let mut pair = self.open_family(user, &session, access).await?;
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
                .detail("mfa_enrolment_required", enrol_only)
                .detail("device_id", seen.device.id.to_string())
                .detail("new_device", seen.new)
                .detail("country", geo.country.clone().unwrap_or_default())
                .detail("risk_score", risk.as_ref().map(|r| r.score))
                .detail("risk_decision", risk.as_ref().map(|r| r.decision.as_str()).unwrap_or_default())
                .detail("risk_factors", risk.as_ref().map(|r| r.factors.join(",")).unwrap_or_default()),
        )
        .await?;
        if let Some(risk) = &risk {
            self.risk.succeeded(risk.record).await?;
        }
        pair.risk = risk;
        // Remembered only after a second factor: a password alone never vouches for a device.
        if remember_device && !methods.is_empty() {
            pair.device_token = self.devices.remember_token(user.id, seen.device.id, &fingerprint);
        }
        Ok(Finished::Tokens(pair))
    }

    /// The account named `username`, if any, and whether `password` is its password (the dummy hash
    /// is verified for an unknown name, at the same cost).
    async fn check_credentials(
        &self,
        username: &Username,
        password: SecretString,
    ) -> Result<(Option<User>, bool), AuthError> {
        let user = self.store.user_by_username(username).await?;
        let verified = match &user {
            Some(user) => self.verify(password, &user.password_hash).await?,
            None => {
                self.passwords.verify_dummy(password).await;
                false
            }
        };
        Ok((user, verified))
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
