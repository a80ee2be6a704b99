//! [`MfaService`]: enrolling, confirming and removing second factors, backup codes, sending one-time
//! codes, and checking any code with the replay guard and the per-account failure count.

use std::sync::Arc;

use secrecy::SecretString;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::challenge::{Challenges, MfaChallenge};
use super::code::{BackupCode, OtpCode};
use super::passkey::RelyingParty;
use super::totp::{self, TotpSecret};
use super::{BackupCodeRecord, FactorKind, FactorRecord, MfaMethod, MfaSettings};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::auth::{AuthError, LoginLimits, Principal, SCOPE_ADMIN, SCOPE_MFA_ENROLL, SCOPE_USER};
use crate::clock::Clock;
use crate::crypto::{EncryptionContext, Envelope, Keyring, constant_time_eq};
use crate::notify::{EmailSender, NotifyError, PhoneNumber, SmsSender};
use crate::store::{DurableStore, HotKey, HotStore};
use crate::user::{Email, InvalidInput, User, UserId};

/// Label of the keyed hash of backup codes.
const BACKUP_LABEL: &[u8] = b"palisade backup-code hash v1";
/// Label of the keyed hash of SMS and e-mail codes.
const OTP_LABEL: &[u8] = b"palisade one-time-code hash v1";
/// How long the last accepted TOTP step is remembered: past it, every step in the skew window is
/// later than the remembered one anyway.
const TOTP_REPLAY_TTL: Duration = Duration::seconds(180);
/// What a spent one-time code is replaced with for a moment (never a valid stored code: those are
/// 48 bytes).
const SPENT: &[u8] = b"spent";
/// Tries of the compare-and-set loops before giving up (only contention makes them retry).
const CAS_TRIES: usize = 8;

/// What `POST /auth/mfa/totp/setup` answers: shown once.
pub struct TotpSetup {
    /// The secret in base32, for typing into an app.
    pub secret: Zeroizing<String>,
    /// The `otpauth://` URI.
    pub otpauth_uri: Zeroizing<String>,
    /// The URI as an inline SVG QR code.
    pub qr_svg: String,
    /// A new set of backup codes (`xxxxx-xxxxx`) when this is the user's first factor; empty when
    /// they already have a factor (and a set, regenerated only on purpose).
    pub backup_codes: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup { <hidden> }")
    }
}

/// A confirmation code was sent to a new phone number or address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentSent {
    /// Where it went, mostly hidden (`+*********23`, `a***@example.com`).
    pub destination: String,
    /// Seconds the code lives.
    pub expires_in: u64,
}

/// A user's second factors, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MfaStatus {
    /// Confirmed factors.
    pub factors: Vec<FactorKind>,
    /// Factors set up but not confirmed yet.
    pub pending: Vec<FactorKind>,
    /// Unused backup codes.
    pub backup_codes_remaining: usize,
    /// Registered passkeys.
    pub passkeys: usize,
}

/// What a login's second step may use.
pub(crate) struct LoginMethods {
    /// The user has at least one confirmed factor.
    pub(crate) enrolled: bool,
    /// The methods usable now (a factor whose provider is not configured is left out).
    pub(crate) usable: Vec<MfaMethod>,
}

/// Second factors over the stores, the keyring and the message senders.
pub struct MfaService {
    pub(super) store: Arc<dyn DurableStore>,
    pub(super) hot: Arc<dyn HotStore>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) audit: Arc<AuditLog>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) settings: MfaSettings,
    pub(super) limits: LoginLimits,
    pub(super) sms: Option<Arc<dyn SmsSender>>,
    pub(super) email: Option<Arc<dyn EmailSender>>,
    pub(super) challenges: Challenges,
    pub(super) relying_party: Option<RelyingParty>,
    /// Recent answers of [`MfaService::status_of`] (the profile reads it on every request).
    pub(super) statuses: crate::cache::TtlCache<UserId, MfaStatus>,
}

/// The parts an [`MfaService`] is built from.
pub struct MfaParts {
    /// The durable store.
    pub store: Arc<dyn DurableStore>,
    /// The hot store.
    pub hot: Arc<dyn HotStore>,
    /// The keyring (sealing, keyed hashes).
    pub keyring: Arc<Keyring>,
    /// The audit chain.
    pub audit: Arc<AuditLog>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub settings: MfaSettings,
    /// The lockout rules wrong codes count against (the same as passwords').
    pub limits: LoginLimits,
    /// The SMS sender, if one is configured.
    pub sms: Option<Arc<dyn SmsSender>>,
    /// The e-mail sender, if one is configured.
    pub email: Option<Arc<dyn EmailSender>>,
    /// How long a user's factor list may be served from memory: changes made through another
    /// instance show within it (the session cache's time to live).
    pub cache_ttl: Duration,
}

pub(super) fn user_tag(user: UserId) -> String {
    format!("user:{user}")
}

/// What a one-time code in the hot store is for: a login's (bound to that login's challenge, so a
/// code sent for one login cannot complete another) or an enrolment's, by method.
#[derive(Debug, Clone, Copy)]
enum CodePurpose<'a> {
    Login(FactorKind, &'a str),
    Enrol(FactorKind),
}

impl CodePurpose<'_> {
    fn kind(self) -> FactorKind {
        match self {
            Self::Login(kind, _) | Self::Enrol(kind) => kind,
        }
    }

    /// Where the code lives: one live code per user and purpose.
    fn name(self) -> String {
        match self {
            Self::Login(kind, _) => format!("login-{}", kind.as_str()),
            Self::Enrol(kind) => format!("enrol-{}", kind.as_str()),
        }
    }

    /// What the code's hash is bound to besides the user.
    fn binding(self) -> String {
        match self {
            Self::Login(kind, challenge) => format!("login-{}:{challenge}", kind.as_str()),
            Self::Enrol(kind) => format!("enrol-{}", kind.as_str()),
        }
    }
}

fn mask_email(email: &Email) -> String {
    let text = email.as_str();
    match text.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

fn secs(d: Duration) -> u64 {
    u64::try_from(d.whole_seconds()).unwrap_or(0).max(1)
}

fn random_digits() -> Result<String, AuthError> {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AuthError::Internal("random generator failed".into()))?;
    // 2^64 mod 10^6 is tiny against 2^64: the bias is below 10^-13.
    Ok(format!("{:06}", u64::from_le_bytes(bytes) % 1_000_000))
}

impl MfaService {
    /// Wires the service.
    pub fn new(parts: MfaParts) -> Self {
        let challenges = Challenges::new(parts.hot.clone(), parts.clock.clone(), parts.settings.challenge_ttl);
        // Checked by `MfaSettings::validate` when the settings were built: this cannot fail then.
        let relying_party = parts.settings.passkeys.as_ref().and_then(|p| match RelyingParty::new(p) {
            Ok(rp) => Some(rp),
            Err(e) => {
                tracing::error!(error = %e, "passkeys are off: the relying party cannot be set up");
                None
            }
        });
        Self {
            relying_party,
            statuses: crate::cache::TtlCache::new(parts.cache_ttl),
            store: parts.store,
            hot: parts.hot,
            keyring: parts.keyring,
            audit: parts.audit,
            clock: parts.clock,
            settings: parts.settings,
            limits: parts.limits,
            sms: parts.sms,
            email: parts.email,
            challenges,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &MfaSettings {
        &self.settings
    }

    pub(crate) fn challenges(&self) -> &Challenges {
        &self.challenges
    }

    /// Whether codes can be sent by `kind` on this server (TOTP always can).
    pub fn is_available(&self, kind: FactorKind) -> bool {
        match kind {
            FactorKind::Totp => true,
            FactorKind::Sms => self.sms.is_some(),
            FactorKind::Email => self.email.is_some(),
        }
    }

    /// Whether `user` must pass a second factor whatever they have enrolled.
    pub(crate) fn is_required_for(&self, user: &User) -> bool {
        self.settings.required || (user.admin && self.settings.required_roles.iter().any(|r| r == "admin"))
    }

    /// The caller, if they may manage their own factors: a login session (not an API key) with the
    /// `user` scope, or the enrolment-only scope of a user who must enrol.
    pub(super) fn enrolling(principal: &Principal) -> Result<UserId, AuthError> {
        if principal.session_id.is_none() {
            return Err(AuthError::SessionRequired);
        }
        if principal.has_scope(SCOPE_USER) || principal.has_scope(SCOPE_MFA_ENROLL) {
            Ok(principal.user_id)
        } else {
            Err(AuthError::InsufficientScope(SCOPE_USER))
        }
    }

    /// Whether `user` has a confirmed factor (other than of kind `except`) or a passkey.
    pub(super) async fn has_second_factor(&self, user: UserId, except: Option<FactorKind>) -> Result<bool, AuthError> {
        let factors = self.store.factors(user).await?;
        if factors.iter().any(|f| f.confirmed_at.is_some() && Some(f.kind) != except) {
            return Ok(true);
        }
        Ok(!self.store.passkeys(user).await?.is_empty())
    }

    /// The caller, if they may add or change second factors: [`Self::enrolling`], and — once the
    /// user has a second factor — a session that passed one. A stolen password-only or
    /// enrolment-only session (or a token lifted from one) cannot add its own factor to an account
    /// that is protected by another.
    pub(super) async fn changing(&self, principal: &Principal) -> Result<UserId, AuthError> {
        let user = Self::enrolling(principal)?;
        if !principal.passed_mfa() && self.has_second_factor(user, None).await? {
            return Err(AuthError::StepUpRequired);
        }
        Ok(user)
    }

    /// The caller, if they may confirm their pending factor of `kind`: as [`Self::changing`], not
    /// counting that factor itself.
    async fn confirming(&self, principal: &Principal, kind: FactorKind) -> Result<UserId, AuthError> {
        let user = Self::enrolling(principal)?;
        if !principal.passed_mfa() && self.has_second_factor(user, Some(kind)).await? {
            return Err(AuthError::StepUpRequired);
        }
        Ok(user)
    }

    fn context(user: UserId, kind: FactorKind, id: uuid::Uuid) -> EncryptionContext {
        super::factor_context(user, kind, id)
    }

    async fn seal(&self, user: UserId, kind: FactorKind, id: uuid::Uuid, secret: &[u8]) -> Result<String, AuthError> {
        Ok(self.keyring.encrypt(secret, &Self::context(user, kind, id)).await?.to_compact())
    }

    async fn unseal(&self, factor: &FactorRecord) -> Result<Zeroizing<Vec<u8>>, AuthError> {
        let envelope = Envelope::parse_compact(&factor.sealed)
            .map_err(|_| AuthError::Internal(format!("factor {} holds no envelope", factor.id)))?;
        Ok(self.keyring.decrypt(&envelope, &Self::context(factor.user_id, factor.kind, factor.id)).await?)
    }

    /// The phone number of `user`'s confirmed SMS factor, if they have one (alerts go there).
    pub async fn sms_number(&self, user: UserId) -> Result<Option<PhoneNumber>, AuthError> {
        let Some(factor) = self.factor(user, FactorKind::Sms).await?.filter(|f| f.confirmed_at.is_some()) else {
            return Ok(None);
        };
        let secret = self.unseal(&factor).await?;
        let text = std::str::from_utf8(&secret)
            .map_err(|_| AuthError::Internal(format!("SMS factor {} holds no phone number", factor.id)))?;
        Ok(Some(PhoneNumber::parse(text)?))
    }

    async fn factor(&self, user: UserId, kind: FactorKind) -> Result<Option<FactorRecord>, AuthError> {
        Ok(self.store.factors(user).await?.into_iter().find(|f| f.kind == kind))
    }

    pub(super) async fn user(&self, id: UserId) -> Result<User, AuthError> {
        self.store.user_by_id(id).await?.ok_or(AuthError::InvalidToken)
    }

    /// The caller's factors and backup codes, without secrets.
    pub async fn status(&self, principal: &Principal) -> Result<MfaStatus, AuthError> {
        if !principal.has_scope(SCOPE_USER) && !principal.has_scope(SCOPE_MFA_ENROLL) {
            return Err(AuthError::InsufficientScope(SCOPE_USER));
        }
        self.status_of(principal.user_id).await
    }

    /// A user's factors and backup codes, without secrets.
    pub async fn status_of(&self, user: UserId) -> Result<MfaStatus, AuthError> {
        let now = self.clock.now();
        if let Some(status) = self.statuses.get(&user, now) {
            return Ok(status);
        }
        let (factors, codes, passkeys) =
            tokio::join!(self.store.factors(user), self.store.unused_backup_codes(user), self.store.passkeys(user));
        let mut status = MfaStatus { passkeys: passkeys?.len(), ..MfaStatus::default() };
        for factor in factors? {
            if factor.confirmed_at.is_some() {
                status.factors.push(factor.kind)
            } else {
                status.pending.push(factor.kind)
            }
        }
        status.factors.sort();
        status.pending.sort();
        if !status.factors.is_empty() || status.passkeys > 0 {
            status.backup_codes_remaining = codes?.len();
        }
        self.statuses.put(user, status.clone(), now);
        Ok(status)
    }

    /// The methods a login of `user` can use for its second step.
    pub(crate) async fn login_methods(&self, user: UserId) -> Result<LoginMethods, AuthError> {
        let mut confirmed: Vec<FactorKind> =
            self.store.factors(user).await?.into_iter().filter(|f| f.confirmed_at.is_some()).map(|f| f.kind).collect();
        confirmed.sort();
        let passkeys = !self.store.passkeys(user).await?.is_empty();
        let enrolled = !confirmed.is_empty() || passkeys;
        let mut usable: Vec<MfaMethod> =
            confirmed.into_iter().filter(|k| self.is_available(*k)).map(FactorKind::method).collect();
        if passkeys && self.relying_party.is_some() {
            usable.push(MfaMethod::WebAuthn);
        }
        if enrolled && !self.store.unused_backup_codes(user).await?.is_empty() {
            usable.push(MfaMethod::BackupCode);
        }
        Ok(LoginMethods { enrolled, usable })
    }

    // ---- TOTP ----------------------------------------------------------------------------------

    /// Sets up an authenticator app for the caller: a new secret (sealed at rest), its URI and QR
    /// code, and a new set of backup codes. The app is usable once confirmed with a right code.
    pub async fn totp_setup(&self, principal: &Principal, meta: &RequestMeta) -> Result<TotpSetup, AuthError> {
        let user_id = self.changing(principal).await?;
        let user = self.user(user_id).await?;
        if self.factor(user_id, FactorKind::Totp).await?.is_some_and(|f| f.confirmed_at.is_some()) {
            return Err(AuthError::AlreadyEnrolled("totp"));
        }
        let secret = TotpSecret::generate().map_err(|e| AuthError::Internal(e.to_string()))?;
        // The label's `issuer:account` form reserves `:`.
        let account = user.username.as_str().replace(':', "_");
        let issuer = self.settings.issuer.replace(':', "_");
        let otpauth_uri = secret.otpauth_uri(&issuer, &account).map_err(|e| AuthError::Internal(e.to_string()))?;
        let qr_svg = totp::qr_svg(&otpauth_uri).map_err(|e| AuthError::Internal(e.to_string()))?;
        let id = uuid::Uuid::now_v7();
        let factor = FactorRecord {
            id,
            user_id,
            kind: FactorKind::Totp,
            sealed: self.seal(user_id, FactorKind::Totp, id, secret.expose_bytes()).await?,
            created_at: self.clock.now(),
            confirmed_at: None,
        };
        self.statuses.forget(&factor.user_id);
        if !self.store.put_pending_factor(&factor).await? {
            return Err(AuthError::AlreadyEnrolled("totp"));
        }
        // The first factor comes with backup codes; a user who has one keeps the set they printed
        // (an abandoned setup must not kill it), and regenerates it on purpose.
        let backup_codes = if self.has_second_factor(user_id, Some(FactorKind::Totp)).await? {
            Vec::new()
        } else {
            let codes = self.new_backup_codes(user_id).await?;
            self.record(
                AuditEvent::new(AuditKind::MfaBackupCodesRegenerated, Outcome::Success)
                    .actor(user_id.to_string())
                    .request(meta.clone())
                    .detail("codes", codes.len())
                    .detail("with", "totp setup"),
            )
            .await?;
            codes
        };
        self.record(
            AuditEvent::new(AuditKind::MfaEnrolled, Outcome::Success)
                .actor(user_id.to_string())
                .subject(id.to_string())
                .request(meta.clone())
                .detail("method", "totp"),
        )
        .await?;
        Ok(TotpSetup { secret: secret.to_base32(), otpauth_uri, qr_svg, backup_codes })
    }

    /// Confirms the caller's pending authenticator app with a right code.
    pub async fn totp_confirm(&self, principal: &Principal, code: &str, meta: &RequestMeta) -> Result<(), AuthError> {
        let user = self.confirming(principal, FactorKind::Totp).await?;
        let code = OtpCode::parse(code)?;
        let factor = match self.factor(user, FactorKind::Totp).await? {
            Some(f) if f.confirmed_at.is_none() => f,
            Some(_) => return Err(AuthError::AlreadyEnrolled("totp")),
            None => return Err(AuthError::NotPending("totp")),
        };
        self.attempt(user, MfaMethod::Totp, AuditKind::MfaConfirmed, meta, self.check_totp(&factor, &code)).await?;
        self.confirm(user, &factor, meta).await
    }

    /// Checks a TOTP code against `factor`: right for a step within the skew window and later than
    /// the last step accepted for this user (a compare-and-set in the hot store, so two instances
    /// cannot both accept one code).
    async fn check_totp(&self, factor: &FactorRecord, code: &OtpCode) -> Result<Result<(), &'static str>, AuthError> {
        let secret = TotpSecret::from_bytes(self.unseal(factor).await?.to_vec());
        let now = u64::try_from(self.clock.now().unix_timestamp()).unwrap_or(0);
        let Some(step) = secret.matching_step(code.expose(), now).map_err(|e| AuthError::Internal(e.to_string()))?
        else {
            return Ok(Err("wrong code"));
        };
        let key = HotKey::new(&user_tag(factor.user_id), "totp-last-step");
        for _ in 0..CAS_TRIES {
            let last = self.hot.get(&key).await?;
            let last_step =
                last.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse::<u64>().ok());
            if last_step.is_some_and(|last| step <= last) {
                return Ok(Err("code already used"));
            }
            if self.hot.compare_and_set(&key, last.as_deref(), step.to_string().as_bytes(), TOTP_REPLAY_TTL).await? {
                return Ok(Ok(()));
            }
        }
        Ok(Err("code already used"))
    }

    // ---- SMS and e-mail --------------------------------------------------------------------------

    /// Sets up SMS codes to `phone` for the caller and sends a confirmation code there.
    pub async fn sms_setup(
        &self,
        principal: &Principal,
        phone: &str,
        meta: &RequestMeta,
    ) -> Result<EnrolmentSent, AuthError> {
        let user = self.changing(principal).await?;
        let phone = PhoneNumber::parse(phone)?;
        let destination = phone.masked();
        self.enrol_destination(user, FactorKind::Sms, phone.as_str(), destination, meta).await
    }

    /// Sets up e-mail codes for the caller (to `email`, or the account's address) and sends a
    /// confirmation code there.
    pub async fn email_setup(
        &self,
        principal: &Principal,
        email: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<EnrolmentSent, AuthError> {
        let user_id = self.changing(principal).await?;
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(text) => Email::parse(text)?,
            None => self.user(user_id).await?.email.ok_or(AuthError::Invalid(InvalidInput::new(
                "email",
                "an e-mail address: the account has none to default to",
            )))?,
        };
        let destination = mask_email(&email);
        self.enrol_destination(user_id, FactorKind::Email, email.as_str(), destination, meta).await
    }

    async fn enrol_destination(
        &self,
        user: UserId,
        kind: FactorKind,
        address: &str,
        destination: String,
        meta: &RequestMeta,
    ) -> Result<EnrolmentSent, AuthError> {
        if !self.is_available(kind) {
            return Err(Self::unavailable(kind));
        }
        if self.factor(user, kind).await?.is_some_and(|f| f.confirmed_at.is_some()) {
            return Err(AuthError::AlreadyEnrolled(kind.as_str()));
        }
        // The throttles first: a refused setup must not replace the pending destination.
        self.reserve_send(user, kind).await?;
        let id = uuid::Uuid::now_v7();
        let factor = FactorRecord {
            id,
            user_id: user,
            kind,
            sealed: self.seal(user, kind, id, address.as_bytes()).await?,
            created_at: self.clock.now(),
            confirmed_at: None,
        };
        self.statuses.forget(&factor.user_id);
        if !self.store.put_pending_factor(&factor).await? {
            return Err(AuthError::AlreadyEnrolled(kind.as_str()));
        }
        self.record(
            AuditEvent::new(AuditKind::MfaEnrolled, Outcome::Success)
                .actor(user.to_string())
                .subject(id.to_string())
                .request(meta.clone())
                .detail("method", kind.as_str()),
        )
        .await?;
        let expires_in = self.deliver_code(user, CodePurpose::Enrol(kind), address, meta).await?;
        Ok(EnrolmentSent { destination, expires_in })
    }

    /// Confirms the caller's pending phone number or address with the code sent to it.
    pub async fn destination_confirm(
        &self,
        principal: &Principal,
        kind: FactorKind,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        let user = self.confirming(principal, kind).await?;
        let code = OtpCode::parse(code)?;
        let factor = match self.factor(user, kind).await? {
            Some(f) if f.confirmed_at.is_none() => f,
            Some(_) => return Err(AuthError::AlreadyEnrolled(kind.as_str())),
            None => return Err(AuthError::NotPending(kind.as_str())),
        };
        let check = self.check_sent_code(user, CodePurpose::Enrol(kind), &code);
        self.attempt(user, kind.method(), AuditKind::MfaConfirmed, meta, check).await?;
        self.confirm(user, &factor, meta).await
    }

    fn unavailable(kind: FactorKind) -> AuthError {
        AuthError::MethodUnavailable(match kind {
            FactorKind::Sms => "sms is not available: no SMS provider is configured on this server".into(),
            FactorKind::Email => "email is not available: no SMTP server is configured on this server".into(),
            FactorKind::Totp => "totp is not available".into(),
        })
    }

    async fn confirm(&self, user: UserId, factor: &FactorRecord, meta: &RequestMeta) -> Result<(), AuthError> {
        self.statuses.forget(&user);
        if !self.store.confirm_factor(user, factor.id, self.clock.now()).await? {
            // Replaced by a new setup, or removed, while the code was checked.
            return Err(AuthError::NotPending(factor.kind.as_str()));
        }
        self.record(
            AuditEvent::new(AuditKind::MfaConfirmed, Outcome::Success)
                .actor(user.to_string())
                .subject(factor.id.to_string())
                .request(meta.clone())
                .detail("method", factor.kind.as_str()),
        )
        .await
    }

    /// Sends a login code by SMS or e-mail for the challenge of `mfa_token`.
    pub async fn send_login_code(
        &self,
        mfa_token: &SecretString,
        kind: FactorKind,
        meta: &RequestMeta,
    ) -> Result<u64, AuthError> {
        let challenge = self.challenges.get(mfa_token).await?;
        let user = challenge.state.user_id;
        // The same conditions as the code's check: no codes for a voided login or a locked factor.
        let account = self.store.user_by_id(user).await?;
        if !account.is_some_and(|u| !u.locked && u.password_changed_at == challenge.state.password_changed_at) {
            return Err(AuthError::InvalidToken);
        }
        if kind == FactorKind::Totp || !challenge.state.remaining().contains(&kind.method()) {
            return Err(AuthError::MethodUnavailable(format!("{} is not one of this login's methods", kind.as_str())));
        }
        let factor = self.factor(user, kind).await?.filter(|f| f.confirmed_at.is_some()).ok_or_else(|| {
            AuthError::MethodUnavailable(format!("{} is not one of this login's methods", kind.as_str()))
        })?;
        let address = self.unseal(&factor).await?;
        let address = std::str::from_utf8(&address)
            .map_err(|_| AuthError::Internal(format!("factor {} holds no text", factor.id)))?
            .to_owned();
        self.send_code(user, CodePurpose::Login(kind, challenge.id()), &address, meta).await
    }

    /// Makes a code for `purpose` (replacing any live one: one live code per user and purpose),
    /// throttled per user and method, and sends it. Returns its lifetime in seconds.
    async fn send_code(
        &self,
        user: UserId,
        purpose: CodePurpose<'_>,
        address: &str,
        meta: &RequestMeta,
    ) -> Result<u64, AuthError> {
        self.reserve_send(user, purpose.kind()).await?;
        self.deliver_code(user, purpose, address, meta).await
    }

    /// Takes one send of `kind` for `user` from the throttles (one per resend interval, and the
    /// hourly cap), or refuses with the time to wait. Called before anything else changes, so a
    /// refused request changes nothing.
    async fn reserve_send(&self, user: UserId, kind: FactorKind) -> Result<(), AuthError> {
        let tag = user_tag(user);
        let now = self.clock.now();
        let resend = HotKey::new(&tag, &format!("otp-resend:{}", kind.as_str()));
        let until = (now + self.settings.resend_interval).unix_timestamp().to_string();
        if !self.hot.compare_and_set(&resend, None, until.as_bytes(), self.settings.resend_interval).await? {
            let wait = self
                .hot
                .get(&resend)
                .await?
                .and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.parse::<i64>().ok()))
                .map_or(self.settings.resend_interval, |until| Duration::seconds(until - now.unix_timestamp()));
            return Err(AuthError::CodeThrottled { retry_after_secs: secs(wait) });
        }
        let hourly =
            self.hot.increment(&HotKey::new(&tag, &format!("otp-sends:{}", kind.as_str())), Duration::HOUR).await?;
        if hourly.count > u64::from(self.settings.sends_per_hour) {
            return Err(AuthError::CodeThrottled { retry_after_secs: secs(hourly.resets_in) });
        }
        Ok(())
    }

    /// Makes a code for `purpose` (replacing any live one: one live code per user and purpose) and
    /// hands it to the provider. When the provider fails, the resend interval is released so the
    /// user may retry at once (the hourly cap still counts the attempt).
    async fn deliver_code(
        &self,
        user: UserId,
        purpose: CodePurpose<'_>,
        address: &str,
        meta: &RequestMeta,
    ) -> Result<u64, AuthError> {
        let kind = purpose.kind();
        let tag = user_tag(user);
        let code = Zeroizing::new(random_digits()?);
        let (key_id, mac) = self.code_hash(None, user, purpose, &code).await?;
        let mut value = key_id.as_bytes().to_vec();
        value.extend_from_slice(&mac);
        self.hot.put(&HotKey::new(&tag, &format!("otp:{}", purpose.name())), &value, self.settings.code_ttl).await?;
        let minutes = self.settings.code_ttl.whole_minutes().max(1);
        let body = format!(
            "Your {} code is {}. It expires in {minutes} minute{}. Never share it.",
            self.settings.issuer,
            code.as_str(),
            if minutes == 1 { "" } else { "s" }
        );
        let sent = match kind {
            FactorKind::Sms => match &self.sms {
                Some(sms) => sms.send_sms(&PhoneNumber::parse(address)?, &body).await,
                None => return Err(Self::unavailable(kind)),
            },
            FactorKind::Email => match &self.email {
                Some(email) => {
                    let subject = format!("Your {} code", self.settings.issuer);
                    email.send_email(&Email::parse(address)?, &subject, &body).await
                }
                None => return Err(Self::unavailable(kind)),
            },
            FactorKind::Totp => return Err(Self::unavailable(kind)),
        };
        let outcome = if sent.is_ok() { Outcome::Success } else { Outcome::Failure };
        let mut event = AuditEvent::new(AuditKind::MfaCodeSent, outcome)
            .actor(user.to_string())
            .request(meta.clone())
            .detail("method", kind.as_str())
            .detail("purpose", purpose.name());
        // Only the kind of failure goes to the chain: a provider's message may quote the destination.
        if let Err(e) = &sent {
            let reason = match e {
                NotifyError::Unavailable(_) => "provider unavailable",
                NotifyError::Rejected(_) => "provider refused the message",
            };
            event = event.detail("reason", reason);
        }
        self.record(event).await?;
        if sent.is_err() {
            self.hot.delete(&HotKey::new(&tag, &format!("otp-resend:{}", kind.as_str()))).await?;
        }
        match sent {
            Ok(()) => Ok(secs(self.settings.code_ttl)),
            Err(NotifyError::Unavailable(cause) | NotifyError::Rejected(cause)) => {
                Err(AuthError::Unavailable(format!("sending a {} code: {cause}", kind.as_str())))
            }
        }
    }

    async fn code_hash(
        &self,
        key_id: Option<uuid::Uuid>,
        user: UserId,
        purpose: CodePurpose<'_>,
        code: &str,
    ) -> Result<(uuid::Uuid, [u8; 32]), AuthError> {
        let input = Zeroizing::new(format!("{user}:{}:{code}", purpose.binding()));
        Ok(self.keyring.keyed_hash(OTP_LABEL, key_id, input.as_bytes()).await?)
    }

    /// Checks a sent code; a right one is taken (single use: of concurrent right codes, one wins).
    async fn check_sent_code(
        &self,
        user: UserId,
        purpose: CodePurpose<'_>,
        code: &OtpCode,
    ) -> Result<Result<(), &'static str>, AuthError> {
        let key = HotKey::new(&user_tag(user), &format!("otp:{}", purpose.name()));
        let Some(stored) = self.hot.get(&key).await?.filter(|v| v.as_slice() != SPENT) else {
            return Ok(Err("no live code (expired, used or never sent)"));
        };
        let (Some(key_id), Some(mac)) = (stored.get(..16), stored.get(16..)) else {
            return Err(AuthError::Internal("a stored one-time code is corrupt".into()));
        };
        let key_id =
            uuid::Uuid::from_slice(key_id).map_err(|_| AuthError::Internal("a stored code is corrupt".into()))?;
        let (_, expected) = self.code_hash(Some(key_id), user, purpose, code.expose()).await?;
        if !constant_time_eq(&expected, mac) {
            return Ok(Err("wrong code"));
        }
        // Spend exactly this code (a compare-and-set to a short "spent" marker): a newer code sent
        // meanwhile is neither taken by nor lost to this request.
        if self.hot.compare_and_set(&key, Some(&stored), SPENT, Duration::seconds(1)).await? {
            Ok(Ok(()))
        } else {
            Ok(Err("code already used"))
        }
    }

    // ---- backup codes ----------------------------------------------------------------------------

    async fn new_backup_codes(&self, user: UserId) -> Result<Vec<Zeroizing<String>>, AuthError> {
        let now = self.clock.now();
        let mut shown = Vec::with_capacity(usize::from(self.settings.backup_codes));
        let mut records = Vec::with_capacity(shown.capacity());
        for index in 0..self.settings.backup_codes {
            let code = BackupCode::generate().map_err(|_| AuthError::Internal("random generator failed".into()))?;
            let (hash_key_id, hash) = self.backup_hash(None, user, &code).await?;
            records.push(BackupCodeRecord {
                user_id: user,
                index,
                hash: hash.to_vec(),
                hash_key_id,
                created_at: now,
                used_at: None,
            });
            shown.push(code.display());
        }
        self.statuses.forget(&user);
        self.store.replace_backup_codes(user, &records).await?;
        Ok(shown)
    }

    async fn backup_hash(
        &self,
        key_id: Option<uuid::Uuid>,
        user: UserId,
        code: &BackupCode,
    ) -> Result<(uuid::Uuid, [u8; 32]), AuthError> {
        let input = Zeroizing::new(format!("{user}:{}", code.expose()));
        Ok(self.keyring.keyed_hash(BACKUP_LABEL, key_id, input.as_bytes()).await?)
    }

    /// A new set of backup codes for the caller, who must have a confirmed factor; the old set dies.
    pub async fn regenerate_backup_codes(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<Vec<Zeroizing<String>>, AuthError> {
        let user = self.changing(principal).await?;
        if !self.store.factors(user).await?.iter().any(|f| f.confirmed_at.is_some())
            && self.store.passkeys(user).await?.is_empty()
        {
            return Err(AuthError::MethodUnavailable("backup codes need a confirmed second factor first".into()));
        }
        let codes = self.new_backup_codes(user).await?;
        self.record(
            AuditEvent::new(AuditKind::MfaBackupCodesRegenerated, Outcome::Success)
                .actor(user.to_string())
                .request(meta.clone())
                .detail("codes", codes.len()),
        )
        .await?;
        Ok(codes)
    }

    /// Checks a backup code and uses it up (a conditional update: of concurrent uses, one wins). Each
    /// unused code's hash is compared in constant time.
    async fn check_backup(&self, user: UserId, code: &BackupCode) -> Result<Result<(), &'static str>, AuthError> {
        let codes = self.store.unused_backup_codes(user).await?;
        let mut key_ids: Vec<uuid::Uuid> = codes.iter().map(|c| c.hash_key_id).collect();
        key_ids.sort_unstable();
        key_ids.dedup();
        let mut found = None;
        for key_id in key_ids {
            let (_, mac) = self.backup_hash(Some(key_id), user, code).await?;
            for record in codes.iter().filter(|c| c.hash_key_id == key_id) {
                if constant_time_eq(&mac, &record.hash) && found.is_none() {
                    found = Some(record);
                }
            }
        }
        let Some(record) = found else { return Ok(Err("wrong backup code")) };
        self.statuses.forget(&user);
        if self.store.use_backup_code(user, record.index, &record.hash, self.clock.now()).await? {
            Ok(Ok(()))
        } else {
            Ok(Err("backup code already used"))
        }
    }

    // ---- checking codes --------------------------------------------------------------------------

    /// Checks a code of `method` for `user` during a login's second step. The code was parsed by the
    /// caller's [`MfaMethod`] rules already.
    pub(crate) async fn verify_login_code(
        &self,
        challenge: &MfaChallenge,
        method: MfaMethod,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        let user = challenge.state.user_id;
        match method {
            MfaMethod::Totp => {
                let code = OtpCode::parse(code)?;
                let factor = self.confirmed(user, FactorKind::Totp).await?;
                self.attempt(user, method, AuditKind::MfaVerified, meta, self.check_totp(&factor, &code)).await
            }
            MfaMethod::Sms | MfaMethod::Email => {
                let code = OtpCode::parse(code)?;
                let kind = if method == MfaMethod::Sms { FactorKind::Sms } else { FactorKind::Email };
                let check = self.check_sent_code(user, CodePurpose::Login(kind, challenge.id()), &code);
                self.attempt(user, method, AuditKind::MfaVerified, meta, check).await
            }
            MfaMethod::BackupCode => {
                let code = BackupCode::parse(code)?;
                self.attempt(user, method, AuditKind::MfaVerified, meta, self.check_backup(user, &code)).await?;
                let left = self.store.unused_backup_codes(user).await?.len();
                self.record(
                    AuditEvent::new(AuditKind::MfaBackupCodeUsed, Outcome::Success)
                        .actor(user.to_string())
                        .request(meta.clone())
                        .detail("remaining", left),
                )
                .await
            }
            MfaMethod::WebAuthn => Err(AuthError::MethodUnavailable(
                "a passkey answers POST /auth/webauthn/login/finish, not a code".into(),
            )),
        }
    }

    /// Checks a code of the caller's own TOTP factor (to remove it without the password).
    pub(crate) async fn verify_own_totp(&self, user: UserId, code: &str, meta: &RequestMeta) -> Result<(), AuthError> {
        let code = OtpCode::parse(code)?;
        let factor = self.confirmed(user, FactorKind::Totp).await?;
        self.attempt(user, MfaMethod::Totp, AuditKind::MfaDisabled, meta, self.check_totp(&factor, &code)).await
    }

    async fn confirmed(&self, user: UserId, kind: FactorKind) -> Result<FactorRecord, AuthError> {
        self.factor(user, kind).await?.filter(|f| f.confirmed_at.is_some()).ok_or_else(|| {
            AuthError::MethodUnavailable(format!("the account has no confirmed {} factor", kind.as_str()))
        })
    }

    /// Runs one code check under the account's failure count: the attempt is counted **before** the
    /// check (a burst of guesses is counted as it arrives), past the limit nothing is checked and the
    /// answer is 423 with the time left; a right code clears the count. Fresh logins do not reset it.
    /// Every refusal is audited as `kind`'s failure.
    pub(super) async fn attempt(
        &self,
        user: UserId,
        method: MfaMethod,
        kind: AuditKind,
        meta: &RequestMeta,
        check: impl std::future::Future<Output = Result<Result<(), &'static str>, AuthError>>,
    ) -> Result<(), AuthError> {
        let key = HotKey::new(&user_tag(user), "mfa-attempts");
        let count = self.hot.increment(&key, self.limits.window).await?;
        let max = u64::from(self.limits.max_attempts);
        if count.count > max {
            self.audit_failure(user, method, "second factor locked after too many wrong codes", meta).await;
            return Err(AuthError::MfaLocked { retry_after_secs: secs(count.resets_in) });
        }
        match check.await? {
            Ok(()) => {
                self.hot.delete(&key).await?;
                if kind == AuditKind::MfaVerified {
                    self.record(
                        AuditEvent::new(kind, Outcome::Success)
                            .actor(user.to_string())
                            .request(meta.clone())
                            .detail("method", method.as_str()),
                    )
                    .await?;
                }
                Ok(())
            }
            Err(reason) => {
                self.audit_failure(user, method, reason, meta).await;
                if count.count == max {
                    let event = AuditEvent::new(AuditKind::MfaLockedOut, Outcome::Failure)
                        .actor(user.to_string())
                        .request(meta.clone())
                        .detail("reason", "too many wrong second-factor codes");
                    if let Err(e) = self.audit.append(event).await {
                        tracing::error!(error = %e, "could not audit an MFA lockout");
                    }
                }
                Err(if method == MfaMethod::WebAuthn { AuthError::PasskeyRejected } else { AuthError::InvalidCode })
            }
        }
    }

    // ---- removal ---------------------------------------------------------------------------------

    /// Removes the user's factor of `kind` (the caller proved it: password or code). With no
    /// confirmed factor left, the backup codes go too.
    pub(crate) async fn remove(&self, user: UserId, kind: FactorKind, meta: &RequestMeta) -> Result<(), AuthError> {
        self.statuses.forget(&user);
        if !self.store.delete_factor(user, kind).await? {
            return Err(AuthError::NotFound);
        }
        self.record(
            AuditEvent::new(AuditKind::MfaDisabled, Outcome::Success)
                .actor(user.to_string())
                .request(meta.clone())
                .detail("method", kind.as_str()),
        )
        .await
    }

    /// Removes every factor and backup code of `user`, and clears their MFA failure count, for an
    /// administrator (`palisade user mfa-reset`). Returns how many factors there were.
    pub async fn reset(&self, user: UserId, actor: &str, meta: &RequestMeta) -> Result<u64, AuthError> {
        self.statuses.forget(&user);
        let removed = self.store.delete_all_factors(user).await?;
        self.hot.delete(&HotKey::new(&user_tag(user), "mfa-attempts")).await?;
        self.record(
            AuditEvent::new(AuditKind::MfaReset, Outcome::Success)
                .actor(actor)
                .subject(user.to_string())
                .request(meta.clone())
                .detail("factors_removed", removed),
        )
        .await?;
        Ok(removed)
    }

    /// [`Self::reset`] for an administrator (`POST /admin/users/{id}/mfa/reset`).
    pub async fn admin_reset(&self, principal: &Principal, user: UserId, meta: &RequestMeta) -> Result<u64, AuthError> {
        principal.require_scope(SCOPE_ADMIN)?;
        if self.store.user_by_id(user).await?.is_none() {
            return Err(AuthError::NotFound);
        }
        self.reset(user, &principal.user_id.to_string(), meta).await
    }

    /// For `palisade diagnose --totp`: whether the user has a TOTP factor, and whether `code` is right
    /// for a step within ±`window` steps of now (the matched offset), without touching the replay
    /// guard or the failure count. Returns `None` when the user has no TOTP factor.
    pub async fn diagnose_totp(
        &self,
        user: UserId,
        code: Option<&str>,
        window: u8,
    ) -> Result<Option<TotpDiagnosis>, AuthError> {
        let Some(factor) = self.factor(user, FactorKind::Totp).await? else { return Ok(None) };
        let secret = TotpSecret::from_bytes(self.unseal(&factor).await?.to_vec());
        let now = self.clock.now();
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let step = totp::step_of(unix);
        let mut matched = None;
        if let Some(code) = code {
            let code = OtpCode::parse(code)?;
            for offset in -i64::from(window)..=i64::from(window) {
                let Some(at) = step.checked_add_signed(offset) else { continue };
                let expected = secret.code_at(at * totp::STEP_SECS).map_err(|e| AuthError::Internal(e.to_string()))?;
                if constant_time_eq(expected.as_bytes(), code.expose().as_bytes()) {
                    matched = Some(offset);
                    break;
                }
            }
        }
        Ok(Some(TotpDiagnosis {
            now,
            step,
            confirmed: factor.confirmed_at.is_some(),
            checked: code.is_some(),
            matched,
        }))
    }

    pub(super) async fn audit_failure(&self, user: UserId, method: MfaMethod, reason: &str, meta: &RequestMeta) {
        let event = AuditEvent::new(AuditKind::MfaFailed, Outcome::Failure)
            .actor(user.to_string())
            .request(meta.clone())
            .detail("method", method.as_str())
            .detail("reason", reason);
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "could not audit a refused second-factor code");
        }
    }

    pub(super) async fn record(&self, event: AuditEvent) -> Result<(), AuthError> {
        self.audit.append(event).await?;
        Ok(())
    }
}

/// What `palisade diagnose --totp` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpDiagnosis {
    /// The server's time.
    pub now: OffsetDateTime,
    /// The current step (`unix time / 30`).
    pub step: u64,
    /// Whether the factor is confirmed (a pending one cannot be used to log in).
    pub confirmed: bool,
    /// Whether a code was given.
    pub checked: bool,
    /// The step offset the code was right for (0: now; ±1 within the accepted skew), if any.
    pub matched: Option<i64>,
}
