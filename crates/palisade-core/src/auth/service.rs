//! The authentication use cases.

use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use time::Duration;

use super::error::AuthError;
use super::lockout::{Lockout, LoginLimits};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::password::{PasswordPolicy, PasswordService};
use crate::session::{Session, SessionService};
use crate::store::DurableStore;
use crate::token::access::{AccessTokens, TokenError};
use crate::token::{RefreshTokenRecord, RevokeReason, Rotation, SessionId, TokenHash};
use crate::user::{Email, User, UserId, UserInsert, Username};

/// The scope of an ordinary login.
pub const SCOPE_USER: &str = "user";
/// The scope of an administrator's login: the `/admin` routes.
pub const SCOPE_ADMIN: &str = "admin";
/// The only scope of a login whose password is past its maximum age: it may change the password.
pub const SCOPE_PASSWORD_CHANGE: &str = "password:change";
/// The only scope of a login of a user who must have a second factor but has none: it may enrol one
/// (`/auth/mfa/...` setup and confirmation), then log in again.
pub const SCOPE_MFA_ENROLL: &str = "mfa:enroll";

/// Settings of the authentication service.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Failed-login limits.
    pub limits: LoginLimits,
    /// Lifetime of each refresh token.
    pub refresh_ttl: Duration,
    /// How long a spent refresh token may still be presented (a concurrent retry) without being
    /// taken for a reuse. Default zero: any second presentation revokes the family.
    pub refresh_grace: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self { limits: LoginLimits::default(), refresh_ttl: Duration::days(30), refresh_grace: Duration::ZERO }
    }
}

/// A registration request.
#[derive(Debug)]
pub struct RegisterInput {
    /// The username as typed.
    pub username: String,
    /// The password.
    pub password: SecretString,
    /// The e-mail address, if any.
    pub email: Option<String>,
}

/// An access token and a refresh token for one session.
#[derive(Debug)]
pub struct TokenPair {
    /// The JWT access token.
    pub access_token: String,
    /// The opaque refresh token (shown once; only its hash is stored).
    pub refresh_token: SecretString,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The session.
    pub session_id: SessionId,
    /// The user.
    pub user_id: UserId,
    /// The password is past its maximum age: the tokens only allow changing it.
    pub password_expired: bool,
    /// The user must have a second factor and has none: the tokens only allow enrolling one.
    pub mfa_enrolment_required: bool,
    /// The login's risk assessment (absent on refresh, and when scoring is off).
    pub risk: Option<crate::risk::RiskSummary>,
    /// The registered device the session was opened from (absent on refresh).
    pub device_id: Option<crate::device::DeviceId>,
    /// A remember-device token and its lifetime in seconds, when the login asked for one and
    /// passed a second factor.
    pub device_token: Option<(SecretString, u64)>,
}

/// A login waiting for its second step.
#[derive(Debug)]
pub struct MfaPending {
    /// The opaque token naming the challenge (shown once; only its hash is stored).
    pub mfa_token: SecretString,
    /// The methods that can pass it.
    pub methods: Vec<crate::mfa::MfaMethod>,
    /// Distinct methods still to pass.
    pub factors_required: u8,
    /// Seconds the token lives.
    pub expires_in: u64,
    /// The password step's risk assessment, when scoring is on.
    pub risk: Option<crate::risk::RiskSummary>,
}

/// A login from a device that waits for approval (`PALISADE_DEVICE_APPROVAL`).
#[derive(Debug)]
pub struct ApprovalPending {
    /// The opaque token the waiting client polls with (`POST /auth/login/approval`); shown once.
    pub approval_token: SecretString,
    /// The device waiting.
    pub device_id: crate::device::DeviceId,
    /// Seconds the wait lasts.
    pub expires_in: u64,
}

/// What a login came to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Logged in.
    Tokens(TokenPair),
    /// The password was right; a second factor is needed (`POST /auth/mfa/verify`).
    MfaRequired(MfaPending),
    /// Every step passed, but the device must be approved first.
    ApprovalRequired(ApprovalPending),
}

/// What passing one factor of a login's second step came to.
#[derive(Debug)]
pub enum MfaStep {
    /// Logged in.
    Done(TokenPair),
    /// Another distinct factor is needed (enhanced MFA), with the same token.
    Continue(MfaPending),
    /// Every step passed, but the device must be approved first.
    ApprovalRequired(ApprovalPending),
}

/// What the tokens of a new session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Access {
    /// Everything the user may (only a password change when it has expired).
    Full {
        /// The password is past its maximum age.
        password_expired: bool,
    },
    /// Only enrolling a second factor.
    EnrolOnly,
}

/// An authenticated caller: a user through a bearer access token (with its session) or through one
/// of their API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// The session the access token belongs to (`None` for an API key).
    pub session_id: Option<SessionId>,
    /// The credential's scopes.
    pub scopes: Vec<String>,
    /// The access token's id (`None` for an API key).
    pub jti: Option<String>,
    /// When the access token expires (`None` for an API key).
    pub expires_at: Option<time::OffsetDateTime>,
    /// The API key used (`None` for an access token).
    pub api_key_id: Option<uuid::Uuid>,
    /// How the session was authenticated (the token's `amr`; empty for an API key).
    pub amr: Vec<String>,
}

impl Principal {
    /// A caller authenticated by an API key.
    pub fn from_api_key(key: &crate::api_key::ValidatedApiKey) -> Self {
        Self {
            user_id: key.owner,
            session_id: None,
            scopes: key.scopes.clone(),
            jti: None,
            expires_at: None,
            api_key_id: Some(key.key_id),
            amr: Vec::new(),
        }
    }

    /// The caller's session, for operations that need a login (not an API key).
    pub(crate) fn session(&self) -> Result<SessionId, AuthError> {
        self.session_id.ok_or(AuthError::SessionRequired)
    }

    /// Whether the caller's session passed a second factor (its `amr` has `mfa`).
    pub fn passed_mfa(&self) -> bool {
        self.amr.iter().any(|a| a == "mfa")
    }

    /// Whether the caller holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Who the caller is in an audit record: `api_key:<id>` when an API key acts for the user,
    /// otherwise the user's id.
    pub fn actor(&self) -> String {
        match &self.api_key_id {
            Some(key) => format!("api_key:{key}"),
            None => self.user_id.to_string(),
        }
    }

    /// Refuses with `INSUFFICIENT_SCOPE` unless the caller holds `scope`.
    pub fn require_scope(&self, scope: &'static str) -> Result<(), AuthError> {
        self.require(scope)
    }

    fn require(&self, scope: &'static str) -> Result<(), AuthError> {
        if self.has_scope(scope) { Ok(()) } else { Err(AuthError::InsufficientScope(scope)) }
    }
}

/// Registration, login, tokens, sessions and password changes.
pub struct AuthService {
    pub(super) store: Arc<dyn DurableStore>,
    pub(super) passwords: Arc<PasswordService>,
    pub(super) policy: PasswordPolicy,
    pub(super) sessions: Arc<SessionService>,
    pub(super) tokens: Arc<AccessTokens>,
    pub(super) audit: Arc<AuditLog>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) lockout: Lockout,
    pub(super) settings: AuthSettings,
    pub(super) users: UserCache,
    pub(super) hot: Arc<dyn crate::store::HotStore>,
    pub(super) mfa: Arc<crate::mfa::MfaService>,
    pub(super) devices: Arc<crate::device::DeviceService>,
    pub(super) risk: Arc<crate::risk::RiskService>,
    /// Access-token ids recently found not revoked, with when. `std::sync::Mutex`: never held across
    /// an `.await`. Same time to live as the session cache (the revocation staleness bound).
    pub(super) not_revoked: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, time::OffsetDateTime>>,
}

pub(super) fn revoked_key(user: UserId, jti: uuid::Uuid) -> crate::store::HotKey {
    crate::store::HotKey::new(&format!("user:{user}"), &format!("revoked-jti:{jti}"))
}

/// Users recently read by id, so bearer requests do not each read the database. An entry lives for
/// the session cache's time to live (the same staleness bound as revocation); changes made through
/// this instance replace it at once.
pub(super) struct UserCache(crate::cache::TtlCache<UserId, User>);

impl UserCache {
    pub(super) const CAPACITY: usize = 100_000;

    pub(super) fn new(ttl: Duration) -> Self {
        Self(crate::cache::TtlCache::new(ttl))
    }

    pub(super) fn get(&self, id: UserId, now: time::OffsetDateTime) -> Option<User> {
        self.0.get(&id, now)
    }

    pub(super) fn put(&self, user: &User, now: time::OffsetDateTime) {
        self.0.put(user.id, user.clone(), now);
    }

    pub(super) fn forget(&self, id: UserId) {
        self.0.forget(&id);
    }
}

/// The parts an [`AuthService`] is built from.
pub struct AuthParts {
    /// The durable store.
    pub store: Arc<dyn DurableStore>,
    /// The hot store (lockout counters).
    pub hot: Arc<dyn crate::store::HotStore>,
    /// Password hashing.
    pub passwords: Arc<PasswordService>,
    /// The password policy.
    pub policy: PasswordPolicy,
    /// Sessions.
    pub sessions: Arc<SessionService>,
    /// Access tokens.
    pub tokens: Arc<AccessTokens>,
    /// The audit chain.
    pub audit: Arc<AuditLog>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub settings: AuthSettings,
    /// Second factors.
    pub mfa: Arc<crate::mfa::MfaService>,
    /// The device registry.
    pub devices: Arc<crate::device::DeviceService>,
    /// Risk scoring.
    pub risk: Arc<crate::risk::RiskService>,
}

fn hash_refresh(token: &str) -> TokenHash {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    TokenHash(out)
}

/// A new refresh token for `session` of `user`: `<user id>.<session id>.<256 random bits>`, the ids
/// in simple hex and the secret in base64url. The ids let a refresh check its session before it spends
/// anything; they are no secret (the client was given both), and the hash covers the whole string, so
/// changing them only makes an unknown token.
pub(super) fn new_refresh_token(user: UserId, session: SessionId) -> Result<(SecretString, TokenHash), AuthError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| AuthError::Internal("random generator failed".into()))?;
    let token = format!(
        "{}.{}.{}",
        user.as_uuid().simple(),
        session.as_uuid().simple(),
        URL_SAFE_NO_PAD.encode(bytes.as_ref())
    );
    let hash = hash_refresh(&token);
    Ok((SecretString::from(token), hash))
}

/// The user and session a refresh token names, if it has the form of one.
pub(super) fn refresh_token_owner(token: &str) -> Option<(UserId, SessionId)> {
    let mut parts = token.split('.');
    let user = uuid::Uuid::try_parse(parts.next()?).ok()?;
    let session = uuid::Uuid::try_parse(parts.next()?).ok()?;
    let secret = parts.next()?;
    (secret.len() == 43 && parts.next().is_none()).then(|| (UserId::from_uuid(user), SessionId::from_uuid(session)))
}

impl AuthService {
    /// Wires the service.
    pub fn new(parts: AuthParts) -> Self {
        let lockout = Lockout::new(parts.hot.clone(), parts.clock.clone(), parts.settings.limits);
        let users = UserCache::new(parts.sessions.policy().cache_ttl);
        Self {
            store: parts.store,
            passwords: parts.passwords,
            policy: parts.policy,
            sessions: parts.sessions,
            tokens: parts.tokens,
            audit: parts.audit,
            clock: parts.clock,
            lockout,
            settings: parts.settings,
            users,
            hot: parts.hot,
            mfa: parts.mfa,
            devices: parts.devices,
            risk: parts.risk,
            not_revoked: std::sync::Mutex::default(),
        }
    }

    /// The session service.
    pub fn sessions(&self) -> &Arc<SessionService> {
        &self.sessions
    }

    /// The device registry.
    pub fn devices(&self) -> &Arc<crate::device::DeviceService> {
        &self.devices
    }

    /// Risk scoring.
    pub fn risk(&self) -> &Arc<crate::risk::RiskService> {
        &self.risk
    }

    /// Creates an account. `actor` names who did it (`self`, `cli`, an admin's id).
    pub async fn register(&self, input: RegisterInput, actor: &str, meta: &RequestMeta) -> Result<UserId, AuthError> {
        let username = Username::parse(&input.username)?;
        let email = input.email.as_deref().filter(|e| !e.trim().is_empty()).map(Email::parse).transpose()?;
        self.passwords
            .check_policy(&self.policy, input.password.clone(), username.as_str(), email.as_ref().map(Email::as_str))
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?
            .map_err(AuthError::PasswordPolicy)?;
        let password_hash =
            self.passwords.hash(input.password).await.map_err(|e| AuthError::Internal(e.to_string()))?;
        let now = self.clock.now();
        let user = User {
            id: UserId::generate(),
            username,
            email,
            password_hash,
            password_changed_at: now,
            created_at: now,
            locked: false,
            admin: false,
        };
        match self.store.insert_user(&user).await? {
            UserInsert::Inserted => {}
            UserInsert::UsernameTaken => return Err(AuthError::Conflict("username")),
            UserInsert::EmailTaken => return Err(AuthError::Conflict("email")),
        }
        self.record(
            AuditEvent::new(AuditKind::UserRegistered, Outcome::Success)
                .actor(actor)
                .subject(user.id.to_string())
                .request(meta.clone()),
        )
        .await?;
        Ok(user.id)
    }

    /// Rotates a refresh token: the old one is spent; a spent one presented again revokes its family.
    ///
    /// The session is checked first, so of concurrent presentations of one live token exactly one
    /// succeeds even though the others then revoke the family.
    pub async fn refresh(&self, presented: &SecretString, meta: &RequestMeta) -> Result<TokenPair, AuthError> {
        let Some((user_id, session_id)) = refresh_token_owner(presented.expose_secret()) else {
            self.audit_failure(AuditKind::TokenRefreshed, None, "malformed refresh token", meta).await;
            return Err(AuthError::InvalidToken);
        };
        let now = self.clock.now();
        let Some(live) = self.sessions.liveness(user_id, session_id).await? else {
            self.store.revoke_session_families(session_id, RevokeReason::SessionEnded, now).await?;
            self.audit_failure(AuditKind::TokenRefreshed, None, "session ended", meta).await;
            return Err(AuthError::TokenRevoked { require_reauth: true });
        };
        // An OAuth client's refresh token renews only at /oauth2/token, for that client.
        if live.client_id.is_some() {
            self.audit_failure(AuditKind::TokenRefreshed, None, "an OAuth client's refresh token", meta).await;
            return Err(AuthError::InvalidToken);
        }
        // A refresh from another client is a stolen refresh token: end it all before spending it.
        self.check_origin(user_id, session_id, live.origin.as_ref(), meta).await?;
        let amr = live.amr;
        let next = self.spend_refresh(presented, user_id, session_id, meta).await?;
        let Some(user) = self.user(user_id).await?.filter(|u| !u.locked) else {
            self.store.revoke_session_families(session_id, RevokeReason::SessionEnded, now).await?;
            self.audit_failure(AuditKind::TokenRefreshed, None, "account gone or disabled", meta).await;
            return Err(AuthError::TokenRevoked { require_reauth: true });
        };
        // A session opened without a second factor, of a user who must have one, stays enrolment-only.
        let access = if !amr.iter().any(|a| a == "mfa") && self.mfa.is_required_for(&user) {
            if self.mfa.login_methods(user.id).await?.enrolled {
                // The enrolment is done: this password-only session must not go on adding factors.
                self.sessions.end(user.id, session_id).await?;
                self.store.revoke_session_families(session_id, RevokeReason::SessionEnded, now).await?;
                self.audit_failure(AuditKind::TokenRefreshed, None, "enrolment-only session after enrolment", meta)
                    .await;
                return Err(AuthError::TokenRevoked { require_reauth: true });
            }
            Access::EnrolOnly
        } else {
            Access::Full { password_expired: self.policy.is_expired(user.password_changed_at, now) }
        };
        let issued = self.issue_access(&user, session_id, &amr, access)?;
        self.record(
            AuditEvent::new(AuditKind::TokenRefreshed, Outcome::Success)
                .actor(user.id.to_string())
                .subject(session_id.to_string())
                .request(meta.clone()),
        )
        .await?;
        Ok(TokenPair {
            access_token: issued.0,
            refresh_token: next,
            expires_in: issued.1,
            session_id,
            user_id: user.id,
            password_expired: access == (Access::Full { password_expired: true }),
            mfa_enrolment_required: access == Access::EnrolOnly,
            risk: None,
            device_id: None,
            device_token: None,
        })
    }

    /// Spends the refresh token `presented` of `session_id` and returns its successor: a spent one
    /// presented again revokes its family (and ends the session); a revoked, expired or unknown one
    /// is refused. Audited when refused.
    pub(super) async fn spend_refresh(
        &self,
        presented: &SecretString,
        user_id: UserId,
        session_id: SessionId,
        meta: &RequestMeta,
    ) -> Result<SecretString, AuthError> {
        let now = self.clock.now();
        let presented_hash = hash_refresh(presented.expose_secret());
        let (next, next_hash) = new_refresh_token(user_id, session_id)?;
        let rotation = self
            .store
            .rotate_refresh_token(
                &presented_hash,
                &next_hash,
                now + self.settings.refresh_ttl,
                now,
                self.settings.refresh_grace,
            )
            .await?;
        match rotation {
            Rotation::Rotated { user_id: owner, session_id: of, .. } if owner == user_id && of == session_id => {}
            Rotation::Rotated { .. } => {
                // The hash matched, so the ids are the ones we wrote: this cannot differ.
                return Err(AuthError::Internal("a refresh token's record disagrees with its text".into()));
            }
            Rotation::Reused { family_id, user_id, session_id } => {
                // The family is already revoked (in the store's statement). The alarm comes first and
                // the refusal is answered whatever else fails.
                let alarm = AuditEvent::new(AuditKind::RefreshTokenReused, Outcome::Failure)
                    .actor(user_id.to_string())
                    .subject(session_id.to_string())
                    .request(meta.clone())
                    .detail("family", family_id.to_string());
                if let Err(e) = self.audit.append(alarm).await {
                    tracing::error!(error = %e, "could not audit a refresh-token reuse");
                }
                if let Err(e) = self.sessions.end(user_id, session_id).await {
                    tracing::warn!(error = %e, %session_id, "could not end the session of a reused refresh token");
                }
                return Err(AuthError::TokenRevoked { require_reauth: true });
            }
            Rotation::Revoked => {
                self.audit_failure(AuditKind::TokenRefreshed, None, "family revoked", meta).await;
                return Err(AuthError::TokenRevoked { require_reauth: true });
            }
            Rotation::Expired => {
                self.audit_failure(AuditKind::TokenRefreshed, None, "refresh token expired", meta).await;
                return Err(AuthError::TokenExpired);
            }
            Rotation::Unknown => {
                self.audit_failure(AuditKind::TokenRefreshed, None, "unknown refresh token", meta).await;
                return Err(AuthError::InvalidToken);
            }
        }
        Ok(next)
    }

    /// Checks an access token for another service (`POST /tokens/validate`): like [`Self::authenticate`],
    /// but a refusal is an answer, not an event of this caller's (it is not audited).
    pub async fn validate_token(&self, token: &str) -> Result<Principal, AuthError> {
        Ok(self.check_bearer(token).await?.0)
    }

    /// Checks a bearer access token: signature, claims, and that its session is still alive. Refusals
    /// are audited.
    pub async fn authenticate(&self, bearer: &str, meta: &RequestMeta) -> Result<Principal, AuthError> {
        match self.check_bearer(bearer).await {
            Ok((principal, origin)) => {
                if let Some(session) = principal.session_id {
                    self.check_origin(principal.user_id, session, origin.as_ref(), meta).await?;
                }
                Ok(principal)
            }
            Err(e @ (AuthError::Unavailable(_) | AuthError::Internal(_))) => Err(e),
            Err(e) => {
                let reason = match &e {
                    AuthError::TokenExpired => "access token expired",
                    AuthError::TokenRevoked { .. } => "session ended",
                    _ => "invalid access token",
                };
                self.audit_failure(AuditKind::TokenRejected, None, reason, meta).await;
                Err(e)
            }
        }
    }

    /// Checks a request against its session's binding; a mismatch ends the session and its refresh
    /// family, is audited, and answers `SESSION_HIJACK_SUSPECTED`.
    pub(super) async fn check_origin(
        &self,
        user: UserId,
        session: SessionId,
        origin: Option<&crate::session::SessionOrigin>,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        let Some(origin) = origin else { return Ok(()) };
        let Err(reason) = self.devices.check_origin(origin, meta) else { return Ok(()) };
        let now = self.clock.now();
        self.sessions.end(user, session).await?;
        self.store.revoke_session_families(session, RevokeReason::SessionEnded, now).await?;
        let event = AuditEvent::new(AuditKind::SessionHijackSuspected, Outcome::Failure)
            .actor(user.to_string())
            .subject(session.to_string())
            .request(meta.clone())
            .detail("reason", reason)
            .detail("login_address", origin.ip.clone().unwrap_or_default());
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "could not audit a suspected session hijack");
        }
        Err(AuthError::SessionHijackSuspected)
    }

    async fn check_bearer(
        &self,
        bearer: &str,
    ) -> Result<(Principal, Option<crate::session::SessionOrigin>), AuthError> {
        let claims = self.tokens.verify(bearer).map_err(|e| match e {
            TokenError::Expired => AuthError::TokenExpired,
            _ => AuthError::InvalidToken,
        })?;
        let user_id = UserId::parse(&claims.sub).map_err(|_| AuthError::InvalidToken)?;
        // A token without a session is a client's (client credentials): it names no user. A token
        // with both was issued to an OAuth client for a user: it is for the client's resource
        // servers (introspection, userinfo), never for Palisade's own routes.
        let session_id = claims.sid.ok_or(AuthError::InvalidToken)?;
        if claims.client_id.is_some() {
            return Err(AuthError::InvalidToken);
        }
        let (alive, revoked) =
            tokio::join!(self.sessions.liveness(user_id, session_id), self.is_revoked(user_id, claims.jti));
        let Some(live) = alive? else {
            return Err(AuthError::TokenRevoked { require_reauth: true });
        };
        if revoked? {
            return Err(AuthError::TokenRevoked { require_reauth: false });
        }
        let principal = Principal {
            user_id,
            session_id: Some(session_id),
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            jti: Some(claims.jti.to_string()),
            expires_at: Some(claims.expires_at),
            api_key_id: None,
            amr: claims.amr,
        };
        Ok((principal, live.origin))
    }

    /// Whether the access token `jti` of `user` was revoked, trusting a recent "no" for the session
    /// cache's time to live.
    pub(super) async fn is_revoked(&self, user: UserId, jti: uuid::Uuid) -> Result<bool, AuthError> {
        let now = self.clock.now();
        let ttl = self.sessions.policy().cache_ttl;
        if let Some(checked) = self.not_revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&jti)
            && now - *checked < ttl
        {
            return Ok(false);
        }
        if self.hot.get(&revoked_key(user, jti)).await?.is_some() {
            return Ok(true);
        }
        if ttl > Duration::ZERO {
            let mut cache = self.not_revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= UserCache::CAPACITY {
                cache.retain(|_, at| now - *at < ttl);
                if cache.len() >= UserCache::CAPACITY {
                    cache.clear();
                }
            }
            cache.insert(jti, now);
        }
        Ok(false)
    }

    /// Revokes one access token (by its `jti`) for an administrator: refused on this instance at once,
    /// on others within the session cache's time to live. The session and its other tokens go on.
    /// An expired or already invalid token needs nothing and is accepted as done.
    pub async fn admin_revoke_access_token(
        &self,
        principal: &Principal,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        principal.require(SCOPE_ADMIN)?;
        let claims = match self.tokens.verify(token) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => return Ok(()),
            Err(_) => return Err(AuthError::InvalidToken),
        };
        let user = UserId::parse(&claims.sub).map_err(|_| AuthError::InvalidToken)?;
        // Kept until the token could no longer pass anyway (its expiry plus the verifier's leeway).
        let ttl = (claims.expires_at - self.clock.now()) + Duration::seconds(60);
        self.not_revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&claims.jti);
        self.hot.put(&revoked_key(user, claims.jti), b"1", ttl.max(Duration::seconds(1))).await?;
        self.record(
            AuditEvent::new(AuditKind::AccessTokenRevoked, Outcome::Success)
                .actor(principal.user_id.to_string())
                .subject(claims.jti.to_string())
                .request(meta.clone()),
        )
        .await
    }

    /// Ends the caller's session and its refresh family.
    pub async fn logout(&self, principal: &Principal, meta: &RequestMeta) -> Result<(), AuthError> {
        self.end(principal, principal.session()?, RevokeReason::Logout, AuditKind::Logout, meta).await
    }

    /// The caller's account.
    pub async fn profile(&self, principal: &Principal) -> Result<User, AuthError> {
        principal.require(SCOPE_USER)?;
        self.user(principal.user_id).await?.ok_or(AuthError::InvalidToken)
    }

    /// A user by id, through the short-lived cache.
    pub(super) async fn user(&self, id: UserId) -> Result<Option<User>, AuthError> {
        let now = self.clock.now();
        if let Some(user) = self.users.get(id, now) {
            return Ok(Some(user));
        }
        let user = self.store.user_by_id(id).await?;
        if let Some(user) = &user {
            self.users.put(user, now);
        }
        Ok(user)
    }

    /// The caller's live sessions.
    pub async fn list_sessions(&self, principal: &Principal) -> Result<Vec<Session>, AuthError> {
        principal.require(SCOPE_USER)?;
        Ok(self.sessions.list(principal.user_id).await?)
    }

    /// Ends one of the caller's sessions (and its refresh family).
    pub async fn end_session(&self, principal: &Principal, id: SessionId, meta: &RequestMeta) -> Result<(), AuthError> {
        principal.require(SCOPE_USER)?;
        if self.sessions.get(principal.user_id, id).await?.is_none() {
            return Err(AuthError::NotFound);
        }
        self.end(principal, id, RevokeReason::SessionEnded, AuditKind::SessionEnded, meta).await
    }

    pub(super) async fn end(
        &self,
        principal: &Principal,
        session: SessionId,
        reason: RevokeReason,
        kind: AuditKind,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        self.sessions.end(principal.user_id, session).await?;
        self.store.revoke_session_families(session, reason, self.clock.now()).await?;
        self.record(
            AuditEvent::new(kind, Outcome::Success)
                .actor(principal.user_id.to_string())
                .subject(session.to_string())
                .request(meta.clone()),
        )
        .await?;
        Ok(())
    }

    /// Starts the refresh family of `session` and returns its first refresh token.
    pub(super) async fn new_family(&self, user: UserId, session: SessionId) -> Result<SecretString, AuthError> {
        let (refresh, hash) = new_refresh_token(user, session)?;
        let now = self.clock.now();
        let record = RefreshTokenRecord {
            hash,
            family_id: uuid::Uuid::now_v7(),
            parent: None,
            user_id: user,
            session_id: session,
            issued_at: now,
            expires_at: now + self.settings.refresh_ttl,
        };
        self.store.insert_refresh_family(&record).await?;
        Ok(refresh)
    }

    pub(super) async fn open_family(
        &self,
        user: &User,
        session: &Session,
        access: Access,
    ) -> Result<TokenPair, AuthError> {
        let refresh = self.new_family(user.id, session.id).await?;
        let (access_token, expires_in) = self.issue_access(user, session.id, &session.amr, access)?;
        Ok(TokenPair {
            access_token,
            refresh_token: refresh,
            expires_in,
            session_id: session.id,
            user_id: user.id,
            password_expired: access == (Access::Full { password_expired: true }),
            mfa_enrolment_required: access == Access::EnrolOnly,
            risk: None,
            device_id: session.device_id,
            device_token: None,
        })
    }

    pub(super) fn issue_access(
        &self,
        user: &User,
        session: SessionId,
        amr: &[String],
        access: Access,
    ) -> Result<(String, u64), AuthError> {
        let scopes: Vec<String> = if access == Access::EnrolOnly {
            vec![SCOPE_MFA_ENROLL.to_owned()]
        } else if access == (Access::Full { password_expired: true }) {
            vec![SCOPE_PASSWORD_CHANGE.to_owned()]
        } else if user.admin {
            vec![SCOPE_USER.to_owned(), SCOPE_ADMIN.to_owned()]
        } else {
            vec![SCOPE_USER.to_owned()]
        };
        let issued = self
            .tokens
            .issue_with_amr(&user.id.to_string(), session, &scopes, amr)
            .map_err(|e| AuthError::Internal(format!("signing an access token: {e}")))?;
        Ok((issued.token, issued.expires_in))
    }

    pub(super) async fn rehash(&self, user: &User, password: SecretString) {
        match self.passwords.hash(password).await {
            Ok(new_hash) => match self.store.rehash_password(user.id, &user.password_hash, &new_hash).await {
                Ok(_) => tracing::debug!(user_id = %user.id, "password re-hashed with the current parameters"),
                Err(e) => tracing::warn!(user_id = %user.id, error = %e, "could not store a re-hashed password"),
            },
            Err(e) => tracing::warn!(user_id = %user.id, error = %e, "could not re-hash a password"),
        }
    }

    pub(super) async fn login_failed(
        &self,
        username: Option<&Username>,
        reason: &str,
        meta: &RequestMeta,
    ) -> AuthError {
        self.audit_failure(AuditKind::LoginFailed, username, reason, meta).await;
        AuthError::InvalidCredentials
    }

    /// Audits a refusal. A refusal is answered even when the audit chain cannot be written (the
    /// failure is logged), so an audit outage never turns a refusal into something else.
    pub(super) async fn audit_failure(
        &self,
        kind: AuditKind,
        username: Option<&Username>,
        reason: &str,
        meta: &RequestMeta,
    ) {
        let mut event = AuditEvent::new(kind, Outcome::Failure).request(meta.clone()).detail("reason", reason);
        if let Some(username) = username {
            event = event.subject(username.to_string());
        }
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, kind = kind.as_str(), "could not audit a refusal");
        }
    }

    /// Audits a success: if the chain cannot be written, the operation fails (closed).
    pub(super) async fn record(&self, event: AuditEvent) -> Result<(), AuthError> {
        self.audit.append(event).await?;
        Ok(())
    }
}

pub(super) fn secs(d: Duration) -> u64 {
    u64::try_from(d.whole_seconds()).unwrap_or(0).max(1)
}
