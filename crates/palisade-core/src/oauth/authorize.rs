//! The authorization endpoint (RFC 6749 §4.1, OpenID Connect Core §3.1): the authorization-code
//! flow with PKCE, the browser's sign-in (password, second factor, device approval, the risk
//! decision — all of them the login of [`AuthService`]), consent, and codes.
//!
//! # The browser
//! A browser is known by one random 256-bit cookie value, stored nowhere: the hot store keys hold
//! its SHA-256. A pending request is bound to the browser that opened it, and its id (256 random
//! bits, only ever written into that browser's page) is the forms' CSRF token: a form posted from
//! another browser, or with another request's id, is refused. Signing in replaces the cookie value
//! (no session fixation) and records the browser's sign-in (`sso`): the user, the Palisade session
//! opened by that login, when, and how (`amr`). Later requests of that browser skip the login while
//! that session is alive, unless `prompt=login` or `max_age` ask for a fresh one.
//!
//! # Errors
//! Before the client and its redirect URI are known to be right, an error is shown to the user and
//! never sent anywhere ([`Step::Error`]); afterwards, errors go back to the client's redirect URI
//! with `state` and `iss` (RFC 9207), in the response mode asked for.
//!
//! # Codes
//! 256 random bits, kept for `code_ttl` (600 s) as a hot-store record under their SHA-256; the
//! token endpoint (`code_grant.rs`) spends them once.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use time::Duration;

use super::OAuthSettings;
use super::client::{GrantType, OAuthClient, OAuthClients};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::auth::{AuthError, AuthService, LoginOptions, LoginOutcome, MfaStep, Principal, TokenPair};
use crate::clock::Clock;
use crate::mfa::{FactorKind, MfaMethod, MfaService};
use crate::store::{HotKey, HotStore, OAuthConsent, StoreError};
use crate::token::SessionId;
use crate::token::keys::SigningKeys;
use crate::user::UserId;

/// How long a pending authorization request waits for the user.
const REQUEST_TTL: Duration = Duration::minutes(10);
/// Longest `state` and `nonce` accepted.
const MAX_STATE: usize = 1024;
/// Longest `scope` accepted.
const MAX_SCOPE: usize = 2048;

/// The parameters of an authorization request, as received (each at most once: the server refuses
/// a repeated one before this).
#[derive(Debug, Clone, Default)]
pub struct AuthorizeQuery {
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `response_type`.
    pub response_type: Option<String>,
    /// `response_mode`.
    pub response_mode: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `code_challenge`.
    pub code_challenge: Option<String>,
    /// `code_challenge_method`.
    pub code_challenge_method: Option<String>,
    /// `prompt`.
    pub prompt: Option<String>,
    /// `max_age`.
    pub max_age: Option<String>,
    /// `request` (request objects are not supported).
    pub request: Option<String>,
    /// `request_uri` (not supported).
    pub request_uri: Option<String>,
    /// A parameter sent more than once, if any.
    pub repeated: Option<String>,
}

/// How the answer reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    /// In the redirect URI's query (the default of the code flow).
    Query,
    /// In a form the browser posts to the redirect URI (OAuth 2.0 Form Post Response Mode).
    FormPost,
}

/// An answer for the client, at its redirect URI.
#[derive(Debug, Clone)]
pub struct AuthorizationResponse {
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// How to deliver it.
    pub mode: ResponseMode,
    /// The parameters (`code` or `error`…, `state`, `iss`).
    pub params: Vec<(&'static str, String)>,
}

impl AuthorizationResponse {
    /// The redirect URI with the parameters added to its query (for [`ResponseMode::Query`]).
    pub fn location(&self) -> String {
        let mut url = self.redirect_uri.clone();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.params {
            query.append_pair(name, value);
        }
        url.push(if self.redirect_uri.contains('?') { '&' } else { '?' });
        url.push_str(&query.finish());
        url
    }

    /// Whether this is an error answer.
    pub fn is_error(&self) -> bool {
        self.params.iter().any(|(name, _)| *name == "error")
    }
}

/// What the browser is shown or sent next.
#[derive(Debug)]
pub enum Step {
    /// An error for the user (the client cannot be told): the request is over.
    Error {
        /// What went wrong, for people.
        message: String,
    },
    /// Back to the client.
    Respond(AuthorizationResponse),
    /// The sign-in form.
    Login {
        /// The pending request (the form's CSRF token).
        request: String,
        /// The client's name.
        client_name: String,
        /// Why the last attempt failed.
        error: Option<String>,
    },
    /// The second step of the sign-in: a code.
    SecondFactor {
        /// The pending request.
        request: String,
        /// The client's name.
        client_name: String,
        /// The login's challenge token.
        mfa_token: SecretString,
        /// The methods a code can come from (passkeys are left out: this page has no script).
        methods: Vec<MfaMethod>,
        /// What happened last.
        notice: Option<String>,
        /// Why the last code failed.
        error: Option<String>,
    },
    /// The device waits for approval (sent by e-mail).
    Approval {
        /// The pending request.
        request: String,
        /// The client's name.
        client_name: String,
        /// The token to poll with.
        approval_token: SecretString,
        /// Still waiting, or why not.
        notice: Option<String>,
    },
    /// Too many sign-ins started from this address: try again after `retry_after` (a 429 page).
    Busy {
        /// How long until the address may start another.
        retry_after: Duration,
    },
    /// The consent form.
    Consent {
        /// The pending request.
        request: String,
        /// The client's name.
        client_name: String,
        /// Every scope asked for.
        scopes: Vec<String>,
    },
}

/// A step, and the browser cookie to set (a new browser, or one that just signed in).
#[derive(Debug)]
pub struct StepOut {
    /// What to show or send.
    pub step: Step,
    /// The new value of the browser cookie, when it changes.
    pub browser: Option<SecretString>,
}

impl StepOut {
    fn new(step: Step) -> Self {
        Self { step, browser: None }
    }
}

/// Why the flow could not go on (a failure of the server, not of the user).
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A store is unreachable: a 503 page.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a 500 page (the cause is logged).
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for FlowError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

impl From<AuthError> for FlowError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable(e) => Self::Unavailable(e),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::audit::AuditError> for FlowError {
    fn from(e: crate::audit::AuditError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

impl From<super::OAuthClientError> for FlowError {
    fn from(e: super::OAuthClientError) -> Self {
        match e {
            super::OAuthClientError::Store(s) => s.into(),
            super::OAuthClientError::Audit(a) => a.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A request waiting for the user, bound to its browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    /// Whether the request named it (then the token request must repeat it).
    redirect_uri_given: bool,
    scopes: Vec<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    mode: ResponseMode,
    prompt_none: bool,
    prompt_login: bool,
    prompt_consent: bool,
    max_age: Option<i64>,
    /// SHA-256 (hex) of the browser cookie it is bound to.
    browser: String,
    /// The user signed in during this request (a fresh login: `prompt=login` and `max_age` are met).
    signed_in: bool,
    /// The second step's methods, once the password step passed.
    #[serde(default)]
    methods: Vec<MfaMethod>,
    /// The consent page was shown for it: only then may the consent form answer it (a sign-in page's
    /// request id posted to the consent form would skip the sign-in that `prompt=login`, `max_age`
    /// or the second factor asked for).
    #[serde(default)]
    consent_asked: bool,
}

/// A browser's sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sso {
    user_id: UserId,
    session_id: SessionId,
    auth_time: i64,
    amr: Vec<String>,
    /// The sessions of this user's earlier sign-ins in this browser (a `prompt=login` or `max_age`
    /// asked for a fresh one), still alive: they end with this one at logout, as do the grants
    /// they gave.
    #[serde(default)]
    earlier: Vec<SessionId>,
}

/// How many earlier sign-ins a browser's record keeps; beyond, the oldest ends.
const MAX_EARLIER_SIGN_INS: usize = 8;

/// A code, as kept until it is redeemed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) redirect_uri_given: bool,
    pub(crate) user_id: UserId,
    pub(crate) browser_session: SessionId,
    pub(crate) scopes: Vec<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) auth_time: i64,
    pub(crate) amr: Vec<String>,
}

/// SHA-256 of a secret, as hex (hot-store keys never hold a secret itself).
pub(crate) fn digest_hex(secret: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// 256 random bits, base64url.
pub(crate) fn random_token() -> Result<String, FlowError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| FlowError::Internal("random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

fn pending_key(request: &str) -> HotKey {
    HotKey::new(&format!("oauth-request:{}", digest_hex(request)), "")
}

fn sso_key(browser_hash: &str) -> HotKey {
    HotKey::new(&format!("browser:{browser_hash}"), "sso")
}

pub(crate) fn code_key(code: &str) -> HotKey {
    HotKey::new(&format!("oauth-code:{}", digest_hex(code)), "")
}

/// Whether `challenge` has the form of an S256 code challenge (43 base64url characters).
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The authorization endpoint and what the browser does there.
pub struct Authorizer {
    clients: Arc<OAuthClients>,
    hot: Arc<dyn HotStore>,
    auth: Arc<AuthService>,
    mfa: Arc<MfaService>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    issuer: String,
    keys: Arc<SigningKeys>,
    settings: OAuthSettings,
    /// The per-address budget of audited refusals (the endpoint is anonymous).
    refusals: super::throttle::ClientThrottle,
}

/// What an [`Authorizer`] is built from.
pub struct AuthorizerParts {
    /// The client registry.
    pub clients: Arc<OAuthClients>,
    /// The hot store (pending requests, sign-ins, codes).
    pub hot: Arc<dyn HotStore>,
    /// Logins and sessions.
    pub auth: Arc<AuthService>,
    /// Second factors (sending codes).
    pub mfa: Arc<MfaService>,
    /// The audit chain.
    pub audit: Arc<AuditLog>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The issuer URL, without a trailing slash.
    pub issuer: String,
    /// The signing keys (ID tokens need an asymmetric algorithm; logout checks `id_token_hint`).
    pub keys: Arc<SigningKeys>,
    /// Settings.
    pub settings: OAuthSettings,
    /// The per-address limit of audited refusals (the login's `ip_max_failures` per `window`).
    pub limits: crate::auth::LoginLimits,
}

impl Authorizer {
    /// The endpoint over its parts.
    pub fn new(parts: AuthorizerParts) -> Self {
        Self {
            refusals: super::throttle::ClientThrottle::new(
                parts.hot.clone(),
                parts.clock.clone(),
                parts.limits,
                "oauth-authorize",
            ),
            clients: parts.clients,
            hot: parts.hot,
            auth: parts.auth,
            mfa: parts.mfa,
            audit: parts.audit,
            clock: parts.clock,
            issuer: parts.issuer,
            keys: parts.keys,
            settings: parts.settings,
        }
    }

    pub(super) fn clients(&self) -> &Arc<OAuthClients> {
        &self.clients
    }

    pub(super) fn hot(&self) -> &Arc<dyn HotStore> {
        &self.hot
    }

    pub(super) fn keys(&self) -> &Arc<SigningKeys> {
        &self.keys
    }

    pub(super) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The settings.
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Starts (or, for a browser already signed in, completes) an authorization request.
    pub async fn authorize(
        &self,
        query: AuthorizeQuery,
        browser: Option<&SecretString>,
        meta: &RequestMeta,
    ) -> Result<StepOut, FlowError> {
        let pending = match self.validate(query).await? {
            Ok(pending) => pending,
            Err(step) => {
                if let Step::Respond(response) = &step {
                    self.audit_refusal(response, meta).await;
                } else if let Step::Error { message } = &step {
                    self.audit_page_refusal(message, meta).await;
                }
                return Ok(StepOut::new(step));
            }
        };
        let (browser_hash, new_browser) = match browser {
            Some(b) => (digest_hex(b.expose_secret()), None),
            None => {
                let fresh = random_token()?;
                (digest_hex(&fresh), Some(SecretString::from(fresh)))
            }
        };
        let pending = Pending { browser: browser_hash, ..pending };
        let sso = self.sso(&pending.browser).await?;
        let now = self.clock.now().unix_timestamp();
        let fresh_enough = |sso: &Sso| pending.max_age.is_none_or(|max| now - sso.auth_time <= max);
        let step = match sso {
            Some(sso) if !pending.prompt_login && fresh_enough(&sso) => self.proceed(pending, &sso, meta).await?,
            _ if pending.prompt_none => {
                self.respond_error(&pending, "login_required", "the user is not signed in", meta).await
            }
            _ => match self.pending_budget(meta).await? {
                Some(retry_after) => Step::Busy { retry_after },
                None => {
                    let request = self.store_pending(&pending).await?;
                    Step::Login { request, client_name: pending.client_name, error: None }
                }
            },
        };
        Ok(StepOut { step, browser: new_browser })
    }

    /// The password step of the sign-in form.
    pub async fn login(
        &self,
        request: &str,
        browser: Option<&SecretString>,
        username: &str,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<StepOut, FlowError> {
        let pending = match self.pending(request, browser).await? {
            Ok(pending) => pending,
            Err(step) => return Ok(StepOut::new(step)),
        };
        let outcome = self.auth.login_with(username, password, LoginOptions::default(), meta).await;
        self.after_login_step(request, pending, browser, outcome.map(Into::into), meta).await
    }

    /// The second step of the sign-in form: a code from `method`.
    pub async fn second_factor(
        &self,
        request: &str,
        browser: Option<&SecretString>,
        mfa_token: SecretString,
        method: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<StepOut, FlowError> {
        let pending = match self.pending(request, browser).await? {
            Ok(pending) => pending,
            Err(step) => return Ok(StepOut::new(step)),
        };
        let outcome = self.auth.verify_mfa(&mfa_token, method, code.trim(), meta).await;
        let outcome = match outcome {
            Ok(step) => Ok(Stage::from(step)),
            Err(AuthError::InvalidCode | AuthError::Invalid(_) | AuthError::MethodUnavailable(_)) => {
                return Ok(StepOut::new(Step::SecondFactor {
                    request: request.to_owned(),
                    client_name: pending.client_name,
                    mfa_token,
                    methods: pending.methods,
                    notice: None,
                    error: Some("That code is wrong, already used or expired.".into()),
                }));
            }
            Err(e) => Err(e),
        };
        self.after_login_step(request, pending, browser, outcome, meta).await
    }

    /// Sends a sign-in code by SMS or e-mail for the second step.
    pub async fn send_code(
        &self,
        request: &str,
        browser: Option<&SecretString>,
        mfa_token: SecretString,
        method: &str,
        meta: &RequestMeta,
    ) -> Result<StepOut, FlowError> {
        let pending = match self.pending(request, browser).await? {
            Ok(pending) => pending,
            Err(step) => return Ok(StepOut::new(step)),
        };
        let kind = match method {
            "sms" => Some(FactorKind::Sms),
            "email" => Some(FactorKind::Email),
            _ => None,
        };
        let (notice, error) = match kind {
            None => (None, Some("Only SMS and e-mail codes are sent.".to_owned())),
            Some(kind) => match self.mfa.send_login_code(&mfa_token, kind, meta).await {
                Ok(_) => {
                    (Some(format!("A code was sent by {}.", if method == "sms" { "SMS" } else { "e-mail" })), None)
                }
                Err(AuthError::CodeThrottled { retry_after_secs }) => {
                    (None, Some(format!("A code was sent recently; wait {retry_after_secs} s before asking again.")))
                }
                Err(AuthError::Unavailable(e)) => return Err(FlowError::Unavailable(e)),
                Err(AuthError::TokenExpired | AuthError::InvalidToken | AuthError::MfaTokenUsed) => {
                    return self.restart_login(request, pending, "The sign-in took too long; start again.").await;
                }
                Err(e) => (None, Some(e.to_string())),
            },
        };
        Ok(StepOut::new(Step::SecondFactor {
            request: request.to_owned(),
            client_name: pending.client_name,
            mfa_token,
            methods: pending.methods,
            notice,
            error,
        }))
    }

    /// The device-approval wait: asks whether the device was approved.
    pub async fn poll_approval(
        &self,
        request: &str,
        browser: Option<&SecretString>,
        approval_token: SecretString,
        meta: &RequestMeta,
    ) -> Result<StepOut, FlowError> {
        let pending = match self.pending(request, browser).await? {
            Ok(pending) => pending,
            Err(step) => return Ok(StepOut::new(step)),
        };
        let outcome = self.auth.poll_approval(&approval_token, meta).await.map(Into::into);
        if let Ok(Stage::Approval(_)) = &outcome {
            return Ok(StepOut::new(Step::Approval {
                request: request.to_owned(),
                client_name: pending.client_name,
                approval_token,
                notice: Some("This device is still waiting for approval.".into()),
            }));
        }
        self.after_login_step(request, pending, browser, outcome, meta).await
    }

    /// The consent form's answer.
    pub async fn consent(
        &self,
        request: &str,
        browser: Option<&SecretString>,
        allow: bool,
        meta: &RequestMeta,
    ) -> Result<StepOut, FlowError> {
        let pending = match self.pending(request, browser).await? {
            Ok(pending) if pending.consent_asked => pending,
            Ok(_) => return Ok(StepOut::new(expired())),
            Err(step) => return Ok(StepOut::new(step)),
        };
        // One answer per request: of two posts of the form, one goes on.
        if !self.hot.delete(&pending_key(request)).await? {
            return Ok(StepOut::new(expired()));
        }
        let Some(sso) = self.sso(&pending.browser).await? else {
            return self.restart_login(request, pending, "Your sign-in ended; sign in again.").await;
        };
        if !allow {
            self.record(
                AuditEvent::new(AuditKind::OAuthConsentDenied, Outcome::Failure)
                    .actor(sso.user_id.to_string())
                    .subject(pending.client_id.clone())
                    .request(meta.clone())
                    .detail("scope", pending.scopes.join(" ")),
            )
            .await?;
            let step = self.respond_error(&pending, "access_denied", "the user refused", meta).await;
            return Ok(StepOut::new(step));
        }
        let store = self.clients.store();
        let mut scopes =
            store.oauth_consent(sso.user_id, &pending.client_id).await?.map(|c| c.scopes).unwrap_or_default();
        for scope in &pending.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        let consent = OAuthConsent { client_id: pending.client_id.clone(), scopes, granted_at: self.clock.now() };
        store.put_oauth_consent(sso.user_id, &consent).await?;
        self.record(
            AuditEvent::new(AuditKind::OAuthConsentGranted, Outcome::Success)
                .actor(sso.user_id.to_string())
                .subject(pending.client_id.clone())
                .request(meta.clone())
                .detail("scope", pending.scopes.join(" ")),
        )
        .await?;
        Ok(StepOut::new(self.issue_code(&pending, &sso, meta).await?))
    }

    /// The consents `principal` gave, with each client's name (`None` for a client since deleted).
    pub async fn consents(&self, principal: &Principal) -> Result<Vec<(OAuthConsent, Option<String>)>, AuthError> {
        principal.require_scope(crate::auth::SCOPE_USER)?;
        let store = self.clients.store();
        let mut out = Vec::new();
        for consent in store.oauth_consents(principal.user_id).await? {
            let name = store.oauth_client(&consent.client_id).await?.map(|c| c.name);
            out.push((consent, name));
        }
        Ok(out)
    }

    /// Revokes `principal`'s consent to `client_id` and ends the sessions the client holds for them
    /// (their refresh tokens die with them). [`AuthError::NotFound`]: there was no such consent nor
    /// session.
    pub async fn revoke_consent(
        &self,
        principal: &Principal,
        client_id: &str,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        principal.require_scope(crate::auth::SCOPE_USER)?;
        let user = principal.user_id;
        let forgotten = self.clients.store().delete_oauth_consent(user, client_id).await?;
        let actor = principal.actor();
        let ended = self.auth.end_grant_sessions(user, |g| g.client_id == client_id, &actor, meta).await?;
        if !forgotten && ended == 0 {
            return Err(AuthError::NotFound);
        }
        self.audit
            .append(
                AuditEvent::new(AuditKind::OAuthConsentRevoked, Outcome::Success)
                    .actor(actor)
                    .subject(client_id.to_owned())
                    .request(meta.clone())
                    .detail("sessions_ended", ended),
            )
            .await?;
        Ok(())
    }

    /// Ends the browser's sign-in (RP-initiated logout): its Palisade session and the sessions
    /// clients hold from it. `false`: the browser was not signed in.
    pub(crate) async fn sign_out(
        &self,
        browser: &SecretString,
        expected_user: Option<UserId>,
        meta: &RequestMeta,
    ) -> Result<bool, FlowError> {
        let hash = digest_hex(browser.expose_secret());
        let Some(sso) = self.sso_record(&hash).await? else { return Ok(false) };
        if expected_user.is_some_and(|u| u != sso.user_id) {
            // The hint names someone else: this browser's sign-in is not the one to end.
            return Ok(false);
        }
        self.hot.delete(&sso_key(&hash)).await?;
        let sessions: Vec<SessionId> = sso.earlier.iter().copied().chain([sso.session_id]).collect();
        self.end_sign_ins(sso.user_id, &sessions, meta).await?;
        Ok(true)
    }

    /// Ends the browser sessions `sessions` of `user` and the sessions clients hold from them.
    async fn end_sign_ins(&self, user: UserId, sessions: &[SessionId], meta: &RequestMeta) -> Result<(), FlowError> {
        self.auth
            .end_grant_sessions(
                user,
                |g| g.browser_session.is_some_and(|b| sessions.contains(&b)),
                &user.to_string(),
                meta,
            )
            .await?;
        for session in sessions {
            if self.auth.live_session(user, *session).await?.is_some() {
                self.auth.end_browser_session(user, *session, meta).await?;
            }
        }
        Ok(())
    }

    /// What a new sign-in of `user` in the browser `old` keeps of the browser's previous one: the
    /// same user's sessions stay linked (to end with the new one at logout); another user's sign-in
    /// ends here, with the grants it gave.
    async fn supersede(
        &self,
        old: &SecretString,
        user: UserId,
        meta: &RequestMeta,
    ) -> Result<Vec<SessionId>, FlowError> {
        let old_hash = digest_hex(old.expose_secret());
        let Some(previous) = self.sso_record(&old_hash).await? else { return Ok(Vec::new()) };
        self.hot.delete(&sso_key(&old_hash)).await?;
        let sessions: Vec<SessionId> = previous.earlier.iter().copied().chain([previous.session_id]).collect();
        if previous.user_id != user {
            self.end_sign_ins(previous.user_id, &sessions, meta).await?;
            return Ok(Vec::new());
        }
        let mut earlier = Vec::new();
        for session in sessions {
            if self.auth.live_session(user, session).await?.is_some() {
                earlier.push(session);
            }
        }
        let excess = earlier.len().saturating_sub(MAX_EARLIER_SIGN_INS);
        let oldest: Vec<SessionId> = earlier.drain(..excess).collect();
        self.end_sign_ins(user, &oldest, meta).await?;
        Ok(earlier)
    }

    /// The browser's sign-in, if its session is still alive.
    async fn sso(&self, browser_hash: &str) -> Result<Option<Sso>, FlowError> {
        let Some(sso) = self.sso_record(browser_hash).await? else { return Ok(None) };
        if self.auth.live_session(sso.user_id, sso.session_id).await?.is_none() {
            self.hot.delete(&sso_key(browser_hash)).await?;
            return Ok(None);
        }
        // A locked account's sign-in is over too.
        if self.auth.user_by_id(sso.user_id).await?.is_none_or(|u| u.locked) {
            return Ok(None);
        }
        Ok(Some(sso))
    }

    async fn sso_record(&self, browser_hash: &str) -> Result<Option<Sso>, FlowError> {
        let Some(bytes) = self.hot.get(&sso_key(browser_hash)).await? else { return Ok(None) };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// The pending request `request`, if it is alive and bound to this browser.
    async fn pending(&self, request: &str, browser: Option<&SecretString>) -> Result<Result<Pending, Step>, FlowError> {
        let Some(browser) = browser else { return Ok(Err(expired())) };
        if request.len() != 43 {
            return Ok(Err(expired()));
        }
        let Some(bytes) = self.hot.get(&pending_key(request)).await? else { return Ok(Err(expired())) };
        let pending: Pending =
            serde_json::from_slice(&bytes).map_err(|e| FlowError::Internal(format!("a pending request: {e}")))?;
        let hash = digest_hex(browser.expose_secret());
        if !crate::crypto::constant_time_eq(hash.as_bytes(), pending.browser.as_bytes()) {
            return Ok(Err(expired()));
        }
        Ok(Ok(pending))
    }

    /// Counts a sign-in started from the request's address; past [`OAuthSettings::pending_per_address`] within the
    /// life of a pending request, how long until another may start. Each pending request is kept in
    /// the hot store for [`REQUEST_TTL`] and anyone may start one, so an address cannot fill the
    /// store with them. The first refusal of a window is audited; the rest are only counted.
    async fn pending_budget(&self, meta: &RequestMeta) -> Result<Option<Duration>, FlowError> {
        let Some(ip) = meta.ip.as_deref() else { return Ok(None) };
        let counted = self.hot.increment(&HotKey::new(&format!("ip:{ip}"), "oauth-pending"), REQUEST_TTL).await?;
        let limit = u64::from(self.settings.pending_per_address);
        if counted.count <= limit {
            return Ok(None);
        }
        if counted.count == limit + 1 {
            let event = AuditEvent::new(AuditKind::OAuthAuthorizeRefused, Outcome::Failure)
                .request(meta.clone())
                .detail("error", "too many sign-ins started from this address")
                .detail("limit", limit);
            if let Err(e) = self.audit.append(event).await {
                tracing::error!(error = %e, "could not audit a throttled authorization request");
            }
        }
        Ok(Some(counted.resets_in.max(Duration::seconds(1))))
    }

    async fn store_pending(&self, pending: &Pending) -> Result<String, FlowError> {
        let request = random_token()?;
        self.put_pending(&request, pending).await?;
        Ok(request)
    }

    async fn put_pending(&self, request: &str, pending: &Pending) -> Result<(), FlowError> {
        let bytes = serde_json::to_vec(pending).map_err(|e| FlowError::Internal(e.to_string()))?;
        self.hot.put(&pending_key(request), &bytes, REQUEST_TTL).await?;
        Ok(())
    }

    async fn restart_login(&self, request: &str, pending: Pending, error: &str) -> Result<StepOut, FlowError> {
        let pending = Pending { methods: Vec::new(), consent_asked: false, ..pending };
        self.put_pending(request, &pending).await?;
        Ok(StepOut::new(Step::Login {
            request: request.to_owned(),
            client_name: pending.client_name,
            error: Some(error.to_owned()),
        }))
    }

    /// Where a step of the sign-in led.
    async fn after_login_step(
        &self,
        request: &str,
        pending: Pending,
        browser: Option<&SecretString>,
        outcome: Result<Stage, AuthError>,
        meta: &RequestMeta,
    ) -> Result<StepOut, FlowError> {
        let login_error = |message: String| Step::Login {
            request: request.to_owned(),
            client_name: pending.client_name.clone(),
            error: Some(message),
        };
        match outcome {
            Ok(Stage::Tokens(pair)) => self.signed_in(request, pending, browser, pair, meta).await,
            Ok(Stage::Mfa { mfa_token, methods }) => {
                let methods: Vec<MfaMethod> = methods.into_iter().filter(|m| *m != MfaMethod::WebAuthn).collect();
                if methods.is_empty() {
                    return Ok(StepOut::new(login_error(
                        "This account's second factor is a passkey, which this page cannot use yet. Sign in with \
                         a code from an authenticator app, a backup code, SMS or e-mail."
                            .into(),
                    )));
                }
                let pending = Pending { methods: methods.clone(), ..pending };
                self.put_pending(request, &pending).await?;
                Ok(StepOut::new(Step::SecondFactor {
                    request: request.to_owned(),
                    client_name: pending.client_name,
                    mfa_token,
                    methods,
                    notice: None,
                    error: None,
                }))
            }
            Ok(Stage::Approval(approval_token)) => Ok(StepOut::new(Step::Approval {
                request: request.to_owned(),
                client_name: pending.client_name,
                approval_token,
                notice: None,
            })),
            Err(AuthError::Unavailable(e)) => Err(FlowError::Unavailable(e)),
            Err(AuthError::InvalidCredentials | AuthError::Invalid(_)) => {
                Ok(StepOut::new(login_error("Wrong username or password.".into())))
            }
            Err(AuthError::AccountLocked { retry_after_secs } | AuthError::RateLimited { retry_after_secs }) => {
                Ok(StepOut::new(login_error(format!("Too many attempts: try again in {retry_after_secs} s."))))
            }
            Err(AuthError::MfaLocked { retry_after_secs }) => {
                Ok(StepOut::new(login_error(format!("Too many wrong codes: try again in {retry_after_secs} s."))))
            }
            Err(AuthError::RiskBlocked { .. }) => Ok(StepOut::new(login_error(
                "This sign-in was refused to protect the account. If it was you, try again from a device you \
                 have used before, or contact your administrator."
                    .into(),
            ))),
            Err(AuthError::SessionLimit) => {
                Ok(StepOut::new(login_error("Another session of this account is active: sign out there first.".into())))
            }
            Err(AuthError::TokenExpired | AuthError::MfaTokenUsed | AuthError::InvalidToken) => {
                self.restart_login(request, pending, "The sign-in took too long; start again.").await
            }
            Err(AuthError::TokenRevoked { .. }) => {
                self.restart_login(request, pending, "The sign-in was refused; start again.").await
            }
            Err(e) => Err(FlowError::Internal(e.to_string())),
        }
    }

    /// The login is complete: the browser is signed in (with a new cookie), then consent or a code.
    async fn signed_in(
        &self,
        request: &str,
        pending: Pending,
        browser: Option<&SecretString>,
        pair: TokenPair,
        meta: &RequestMeta,
    ) -> Result<StepOut, FlowError> {
        if pair.password_expired || pair.mfa_enrolment_required {
            self.auth.end_browser_session(pair.user_id, pair.session_id, meta).await?;
            self.hot.delete(&pending_key(request)).await?;
            let message = if pair.password_expired {
                "Your password has expired. Change it in Palisade first, then go back to the application."
            } else {
                "Your account needs a second factor before it can sign in to applications. Set one up in \
                 Palisade first, then go back to the application."
            };
            return Ok(StepOut::new(Step::Error { message: message.into() }));
        }
        let Some(session) = self.auth.live_session(pair.user_id, pair.session_id).await? else {
            return self.restart_login(request, pending, "The sign-in was refused; start again.").await;
        };
        let earlier = match browser {
            Some(old) => self.supersede(old, pair.user_id, meta).await?,
            None => Vec::new(),
        };
        let sso = Sso {
            user_id: pair.user_id,
            session_id: pair.session_id,
            auth_time: self.clock.now().unix_timestamp(),
            amr: session.amr,
            earlier,
        };
        let fresh = random_token()?;
        let hash = digest_hex(&fresh);
        let bytes = serde_json::to_vec(&sso).map_err(|e| FlowError::Internal(e.to_string()))?;
        let ttl = (session.expires_at - self.clock.now()).max(Duration::SECOND);
        self.hot.put(&sso_key(&hash), &bytes, ttl).await?;
        let pending = Pending { browser: hash, signed_in: true, methods: Vec::new(), ..pending };
        self.hot.delete(&pending_key(request)).await?;
        let step = self.proceed(pending, &sso, meta).await?;
        Ok(StepOut { step, browser: Some(SecretString::from(fresh)) })
    }

    /// A signed-in browser: consent if needed, else a code.
    async fn proceed(&self, pending: Pending, sso: &Sso, meta: &RequestMeta) -> Result<Step, FlowError> {
        let consented = self.clients.store().oauth_consent(sso.user_id, &pending.client_id).await?;
        let covered = consented.is_some_and(|c| pending.scopes.iter().all(|s| c.scopes.contains(s)));
        if covered && !pending.prompt_consent {
            return self.issue_code(&pending, sso, meta).await;
        }
        if pending.prompt_none {
            return Ok(self.respond_error(&pending, "consent_required", "the user has not consented", meta).await);
        }
        let pending = Pending { consent_asked: true, ..pending };
        let request = self.store_pending(&pending).await?;
        Ok(Step::Consent { request, client_name: pending.client_name, scopes: pending.scopes })
    }

    async fn issue_code(&self, pending: &Pending, sso: &Sso, meta: &RequestMeta) -> Result<Step, FlowError> {
        let code = random_token()?;
        let record = CodeRecord {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            redirect_uri_given: pending.redirect_uri_given,
            user_id: sso.user_id,
            browser_session: sso.session_id,
            scopes: pending.scopes.clone(),
            nonce: pending.nonce.clone(),
            code_challenge: pending.code_challenge.clone(),
            auth_time: sso.auth_time,
            amr: sso.amr.clone(),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| FlowError::Internal(e.to_string()))?;
        self.hot.put(&code_key(&code), &bytes, self.settings.code_ttl).await?;
        self.record(
            AuditEvent::new(AuditKind::OAuthAuthorized, Outcome::Success)
                .actor(sso.user_id.to_string())
                .subject(pending.client_id.clone())
                .request(meta.clone())
                .detail("scope", pending.scopes.join(" "))
                .detail("pkce", pending.code_challenge.is_some()),
        )
        .await?;
        let mut params = vec![("code", code)];
        params.extend(pending.state.clone().map(|s| ("state", s)));
        params.push(("iss", self.issuer.clone()));
        Ok(Step::Respond(AuthorizationResponse {
            redirect_uri: pending.redirect_uri.clone(),
            mode: pending.mode,
            params,
        }))
    }

    async fn respond_error(&self, pending: &Pending, error: &str, description: &str, meta: &RequestMeta) -> Step {
        let response = error_response(
            &pending.redirect_uri,
            pending.mode,
            pending.state.as_deref(),
            &self.issuer,
            error,
            description,
        );
        self.audit_refusal(&response, meta).await;
        Step::Respond(response)
    }

    async fn audit_refusal(&self, response: &AuthorizationResponse, meta: &RequestMeta) {
        let error = response.params.iter().find(|(n, _)| *n == "error").map(|(_, v)| v.clone()).unwrap_or_default();
        let description =
            response.params.iter().find(|(n, _)| *n == "error_description").map(|(_, v)| v.clone()).unwrap_or_default();
        let Some(throttled) = self.refusal_budget(meta).await else { return };
        let event = AuditEvent::new(AuditKind::OAuthAuthorizeRefused, Outcome::Failure)
            .request(meta.clone())
            .detail("error", error)
            .detail("reason", description)
            .detail("throttled", throttled);
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "could not audit a refused authorization request");
        }
    }

    async fn audit_page_refusal(&self, message: &str, meta: &RequestMeta) {
        let Some(throttled) = self.refusal_budget(meta).await else { return };
        let event = AuditEvent::new(AuditKind::OAuthAuthorizeRefused, Outcome::Failure)
            .request(meta.clone())
            .detail("error", "not_redirected")
            .detail("reason", message.chars().take(200).collect::<String>())
            .detail("throttled", throttled);
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "could not audit a refused authorization request");
        }
    }

    /// Whether a refusal from the caller's address is still audited: `None` past the per-address
    /// budget (anonymous traffic cannot flood the chain), else whether this one exhausts it.
    async fn refusal_budget(&self, meta: &RequestMeta) -> Option<bool> {
        match self.refusals.wait(meta.ip.as_deref()).await {
            Ok(Some(_)) => return None,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the refusal budget"),
        }
        match self.refusals.count_failure(meta.ip.as_deref()).await {
            Ok(throttled) => Some(throttled),
            Err(e) => {
                tracing::warn!(error = %e, "could not count a refused authorization request");
                Some(false)
            }
        }
    }

    async fn record(&self, event: AuditEvent) -> Result<(), FlowError> {
        self.audit.append(event).await?;
        Ok(())
    }

    /// Checks a request. `Err(step)`: the error to show or send back.
    async fn validate(&self, query: AuthorizeQuery) -> Result<Result<Pending, Step>, FlowError> {
        let page = |message: &str| Ok(Err(Step::Error { message: message.to_owned() }));
        if let Some(name) = query.repeated.as_deref().filter(|n| matches!(*n, "client_id" | "redirect_uri")) {
            return page(&format!("The application sent `{name}` more than once."));
        }
        let Some(client_id) = query.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return page("The application did not say who it is (client_id is missing).");
        };
        let client = if client_id.len() <= 64 { self.clients.find(client_id).await? } else { None };
        let Some(client) = client else {
            return page("The application is not registered here (unknown client_id).");
        };
        let wants_openid = query.scope.as_deref().is_some_and(|s| s.split(' ').any(|s| s == "openid"));
        let (redirect_uri, given) = match query.redirect_uri.as_deref() {
            Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => (uri.to_owned(), true),
            Some(_) => return page("The application asked to be sent back to an address it did not register."),
            None if client.redirect_uris.len() == 1 && !wants_openid => {
                (client.redirect_uris.first().cloned().unwrap_or_default(), false)
            }
            None => return page("The application did not say where to send you back (redirect_uri is missing)."),
        };
        let (mode, mode_error) = match query.response_mode.as_deref() {
            None | Some("query") => (ResponseMode::Query, None),
            Some("form_post") => (ResponseMode::FormPost, None),
            Some(_) => (ResponseMode::Query, Some("response_mode must be query or form_post")),
        };
        let state = query.state.clone();
        let fail = |error: &str, description: &str| {
            Ok(Err(Step::Respond(error_response(
                &redirect_uri,
                mode,
                state.as_deref().filter(|s| s.len() <= MAX_STATE),
                &self.issuer,
                error,
                description,
            ))))
        };
        if let Some(name) = &query.repeated {
            return fail("invalid_request", &format!("{name} was sent more than once"));
        }
        if let Some(description) = mode_error {
            return fail("invalid_request", description);
        }
        if query.request.is_some() {
            return fail("request_not_supported", "request objects are not supported");
        }
        if query.request_uri.is_some() {
            return fail("request_uri_not_supported", "request_uri is not supported");
        }
        match query.response_type.as_deref() {
            None | Some("") => return fail("invalid_request", "response_type is required"),
            Some("code") => {}
            Some(_) => return fail("unsupported_response_type", "response_type must be code"),
        }
        if !client.grant_types.contains(&GrantType::AuthorizationCode) {
            return fail("unauthorized_client", "this client is not registered for the authorization_code grant");
        }
        if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
            return fail("invalid_request", "state is too long");
        }
        if query.nonce.as_ref().is_some_and(|n| n.len() > MAX_STATE) {
            return fail("invalid_request", "nonce is too long");
        }
        let scopes = match self.scopes(&client, query.scope.as_deref()) {
            Ok(scopes) => scopes,
            Err(description) => return fail("invalid_scope", &description),
        };
        let code_challenge = match (query.code_challenge.as_deref(), query.code_challenge_method.as_deref()) {
            (None, None) if self.settings.require_pkce || client.kind == super::ClientKind::Public => {
                return fail("invalid_request", "code_challenge is required (PKCE with S256)");
            }
            (None, None) => None,
            (None, Some(_)) => return fail("invalid_request", "code_challenge_method without code_challenge"),
            (Some(_), None | Some("plain")) => {
                return fail("invalid_request", "code_challenge_method must be S256 (plain is not accepted)");
            }
            (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => Some(challenge.to_owned()),
            (Some(_), Some("S256")) => {
                return fail("invalid_request", "code_challenge must be 43 base64url characters (S256)");
            }
            (Some(_), Some(_)) => return fail("invalid_request", "code_challenge_method must be S256"),
        };
        let mut prompt = (false, false, false);
        for value in query.prompt.as_deref().unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.0 = true,
                "login" => prompt.1 = true,
                "consent" => prompt.2 = true,
                _ => return fail("invalid_request", "prompt must be none, login or consent"),
            }
        }
        if prompt.0 && (prompt.1 || prompt.2) {
            return fail("invalid_request", "prompt=none cannot be combined with another value");
        }
        let max_age = match query.max_age.as_deref() {
            None => None,
            Some(text) => match text.parse::<u32>() {
                Ok(seconds) => Some(i64::from(seconds)),
                Err(_) => return fail("invalid_request", "max_age must be a number of seconds"),
            },
        };
        Ok(Ok(Pending {
            client_id: client.client_id.clone(),
            client_name: client.name.clone(),
            redirect_uri,
            redirect_uri_given: given,
            scopes,
            state,
            nonce: query.nonce,
            code_challenge,
            mode,
            prompt_none: prompt.0,
            prompt_login: prompt.1,
            prompt_consent: prompt.2,
            max_age,
            browser: String::new(),
            signed_in: false,
            methods: Vec::new(),
            consent_asked: false,
        }))
    }

    fn scopes(&self, client: &OAuthClient, scope: Option<&str>) -> Result<Vec<String>, String> {
        let scope = scope.unwrap_or_default();
        if scope.len() > MAX_SCOPE {
            return Err("scope is too long".into());
        }
        let mut scopes: Vec<String> = Vec::new();
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            if !client.scopes.iter().any(|c| c == s) {
                return Err(format!("`{}` is not a scope this client may ask for", s.escape_debug()));
            }
            if !scopes.iter().any(|a| a == s) {
                scopes.push(s.to_owned());
            }
        }
        if scopes.is_empty() {
            return Err("scope is required".into());
        }
        if scopes.iter().any(|s| s == "openid") && self.keys.algorithm().is_symmetric() {
            return Err("ID tokens need an asymmetric signing key (jwt_algorithm is HS256)".into());
        }
        Ok(scopes)
    }
}

/// An error answer for the client.
fn error_response(
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> AuthorizationResponse {
    let mut params = vec![("error", error.to_owned()), ("error_description", description.to_owned())];
    params.extend(state.map(|s| ("state", s.to_owned())));
    params.push(("iss", issuer.to_owned()));
    AuthorizationResponse { redirect_uri: redirect_uri.to_owned(), mode, params }
}

fn expired() -> Step {
    Step::Error {
        message: "This sign-in page has expired or was opened in another browser. Go back to the application and \
                  start again."
            .into(),
    }
}

/// A step of the sign-in, whatever call made it.
enum Stage {
    Tokens(TokenPair),
    Mfa { mfa_token: SecretString, methods: Vec<MfaMethod> },
    Approval(SecretString),
}

impl From<LoginOutcome> for Stage {
    fn from(outcome: LoginOutcome) -> Self {
        match outcome {
            LoginOutcome::Tokens(pair) => Self::Tokens(pair),
            LoginOutcome::MfaRequired(p) => Self::Mfa { mfa_token: p.mfa_token, methods: p.methods },
            LoginOutcome::ApprovalRequired(p) => Self::Approval(p.approval_token),
        }
    }
}

impl From<MfaStep> for Stage {
    fn from(step: MfaStep) -> Self {
        match step {
            MfaStep::Done(pair) => Self::Tokens(pair),
            MfaStep::Continue(p) => Self::Mfa { mfa_token: p.mfa_token, methods: p.methods },
            MfaStep::ApprovalRequired(p) => Self::Approval(p.approval_token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_responses_keep_the_redirect_uris_own_query() {
        let response = AuthorizationResponse {
            redirect_uri: "https://app.example/cb?tenant=a".into(),
            mode: ResponseMode::Query,
            params: vec![("code", "abc".into()), ("state", "x y&z".into()), ("iss", "https://id.example".into())],
        };
        assert_eq!(
            response.location(),
            "https://app.example/cb?tenant=a&code=abc&state=x+y%26z&iss=https%3A%2F%2Fid.example"
        );
        assert!(!response.is_error());
    }

    #[test]
    fn s256_challenges_have_one_shape() {
        assert!(is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
    }
}
