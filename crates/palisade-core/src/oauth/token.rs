//! The token endpoint's grants (RFC 6749 §4, §5): who gets which token, and the errors in RFC 6749
//! §5.2's words. The client-credentials grant (§4.4) is here: a confidential client, authenticated
//! by the method it registered, gets an access token for itself (RFC 9068: `sub` and `client_id` are
//! the client, no session), with the scopes it asked for among those it was registered with. The
//! user grants (authorization code, refresh token) are in `code_grant.rs`.
//!
//! Every answer is audited: `oauth.token_issued`, or `oauth.token_refused` with the error and the
//! real reason (an `invalid_client` says nothing more to the caller).

use std::sync::Arc;

use secrecy::SecretString;

use super::client::{GrantType, OAuthClient, OAuthClients};
use super::client_auth::{ClientAuthError, PresentedClient};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::auth::AuthService;
use crate::clock::Clock;
use crate::token::access::AccessTokens;

/// Scopes that only make sense with a user (OpenID Connect): never in a client's own token.
const USER_SCOPES: [&str; 6] = ["openid", "profile", "email", "address", "phone", "offline_access"];
/// Longest `scope` parameter accepted.
const MAX_SCOPE_PARAM: usize = 2048;

/// The error codes of RFC 6749 §5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// A parameter is missing, repeated, malformed or unsupported.
    InvalidRequest,
    /// The client did not authenticate (401).
    InvalidClient,
    /// The grant (code, refresh token, credentials) is invalid, expired or revoked.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not one this server supports.
    UnsupportedGrantType,
    /// A requested scope is invalid, unknown or beyond what the client may have.
    InvalidScope,
}

impl OAuthErrorCode {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
        }
    }
}

/// Why the token endpoint did not issue a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenEndpointError {
    /// An RFC 6749 §5.2 error, with a description safe to show (never the real reason of an
    /// `invalid_client`, which goes to the audit record).
    #[error("{}: {description}", code.as_str())]
    Refused {
        /// The error code.
        code: OAuthErrorCode,
        /// What to tell the client.
        description: String,
    },
    /// The registry, a store or the audit chain failed.
    #[error(transparent)]
    Registry(#[from] super::OAuthClientError),
    /// The token could not be signed.
    #[error("the token could not be issued: {0}")]
    Issue(String),
    /// A store the answer depends on is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Too many failed client authentications from this address: wait `retry_after_secs`.
    #[error("throttled for {retry_after_secs} s")]
    Throttled {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
}

impl TokenEndpointError {
    fn refused(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self::Refused { code, description: description.into() }
    }

    /// Whether this failure is a store being unreachable.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Registry(e) => match e {
                super::OAuthClientError::Store(s) => s.is_unavailable(),
                super::OAuthClientError::Audit(a) => a.is_unavailable(),
                super::OAuthClientError::Crypto(c) => c.is_unavailable(),
                _ => false,
            },
            Self::Unavailable(_) => true,
            _ => false,
        }
    }
}

/// A token request, as parsed from the form.
#[derive(Debug)]
pub struct TokenRequest {
    /// `grant_type`.
    pub grant_type: String,
    /// `scope`, when given.
    pub scope: Option<String>,
    /// How the client presented itself.
    pub client: PresentedClient,
    /// `code` (authorization-code grant).
    pub code: Option<String>,
    /// `redirect_uri` (authorization-code grant).
    pub redirect_uri: Option<String>,
    /// `code_verifier` (authorization-code grant, PKCE).
    pub code_verifier: Option<String>,
    /// `refresh_token` (refresh grant).
    pub refresh_token: Option<SecretString>,
}

impl TokenRequest {
    /// A request of `grant_type` by `client`, without the grant's own parameters.
    pub fn new(grant_type: impl Into<String>, client: PresentedClient) -> Self {
        Self {
            grant_type: grant_type.into(),
            scope: None,
            client,
            code: None,
            redirect_uri: None,
            code_verifier: None,
            refresh_token: None,
        }
    }
}

/// A successful answer (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    /// The access token (a bearer credential: never log it).
    pub access_token: SecretString,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// A refresh token (the user grants, for a client registered for `refresh_token`).
    pub refresh_token: Option<SecretString>,
    /// An ID token (the user grants, with `openid` in the scope).
    pub id_token: Option<String>,
    /// The user the tokens are for (`None` for a client's own token).
    pub user_id: Option<crate::user::UserId>,
}

/// The token endpoint, and introspection and revocation (`introspect.rs`).
pub struct TokenEndpoint {
    throttle: super::throttle::ClientThrottle,
    clients: Arc<OAuthClients>,
    tokens: Arc<AccessTokens>,
    auth: Arc<AuthService>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    issuer: String,
}

/// What a [`TokenEndpoint`] is built from.
pub struct TokenEndpointParts {
    /// The client registry.
    pub clients: Arc<OAuthClients>,
    /// The access tokens (issuing and verifying).
    pub tokens: Arc<AccessTokens>,
    /// Accounts and sessions (whether a user's token is alive).
    pub auth: Arc<AuthService>,
    /// The audit chain.
    pub audit: Arc<AuditLog>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The issuer URL, without a trailing slash.
    pub issuer: String,
    /// The per-address limit of failed client authentications (the login's `ip_max_failures`
    /// per `window`).
    pub limits: crate::auth::LoginLimits,
}

impl TokenEndpoint {
    /// The endpoint over its parts.
    pub fn new(parts: TokenEndpointParts) -> Self {
        Self {
            throttle: super::throttle::ClientThrottle::new(
                parts.clients.hot().clone(),
                parts.clock.clone(),
                parts.limits,
                "oauth-client",
            ),
            clients: parts.clients,
            tokens: parts.tokens,
            auth: parts.auth,
            audit: parts.audit,
            clock: parts.clock,
            issuer: parts.issuer,
        }
    }

    pub(super) fn clients(&self) -> &Arc<OAuthClients> {
        &self.clients
    }

    pub(super) fn tokens(&self) -> &Arc<AccessTokens> {
        &self.tokens
    }

    pub(super) fn auth(&self) -> &Arc<AuthService> {
        &self.auth
    }

    pub(super) fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    pub(super) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(super) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Refuses an address that failed client authentication too often (429, not audited).
    pub(super) async fn check_throttle(&self, meta: &RequestMeta) -> Result<(), TokenEndpointError> {
        match self.throttle.wait(meta.ip.as_deref()).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(TokenEndpointError::Throttled {
                retry_after_secs: u64::try_from(wait.whole_seconds()).unwrap_or(1).max(1),
            }),
            Err(e) => Err(TokenEndpointError::Registry(e.into())),
        }
    }

    /// Counts a failed client authentication from the caller's address; `true` when it throttles
    /// the address from now on. A store failure here is logged, not answered.
    pub(super) async fn count_client_failure(&self, meta: &RequestMeta) -> bool {
        match self.throttle.count_failure(meta.ip.as_deref()).await {
            Ok(throttled) => throttled,
            Err(e) => {
                tracing::warn!(error = %e, "could not count a failed client authentication");
                false
            }
        }
    }

    /// The token endpoint's URL.
    pub fn url(&self) -> String {
        format!("{}/oauth2/token", self.issuer)
    }

    /// Answers a token request.
    pub async fn token(&self, request: TokenRequest, meta: &RequestMeta) -> Result<TokenResponse, TokenEndpointError> {
        self.check_throttle(meta).await?;
        let outcome = self.grant(&request, meta).await;
        let throttled = match &outcome {
            Err((_, TokenEndpointError::Refused { code: OAuthErrorCode::InvalidClient, .. })) => {
                self.count_client_failure(meta).await
            }
            _ => false,
        };
        let (client_id, grant) = (presented_id(&request.client), request.grant_type.as_str());
        let event = match &outcome {
            Ok((client, response)) => Some(
                AuditEvent::new(AuditKind::OAuthTokenIssued, Outcome::Success)
                    .actor(client.client_id.clone())
                    .subject(response.user_id.map_or_else(|| client.client_id.clone(), |u| u.to_string()))
                    .detail("grant_type", grant)
                    .detail("scope", response.scope.clone()),
            ),
            Err((reason, TokenEndpointError::Refused { code, .. })) => {
                let mut event = AuditEvent::new(AuditKind::OAuthTokenRefused, Outcome::Failure)
                    .detail("grant_type", grant.chars().take(64).collect::<String>())
                    .detail("error", code.as_str())
                    .detail("reason", *reason)
                    .detail("throttled", throttled);
                if let Some(id) = client_id {
                    event = event.actor(id.chars().take(128).collect::<String>());
                }
                Some(event)
            }
            // A store or signing failure: logged by the caller, answered 500/503.
            Err(_) => None,
        };
        if let Some(event) = event
            && let Err(e) = self.audit.append(event.request(meta.clone())).await
        {
            if outcome.is_ok() {
                // A success is not answered if it cannot be audited (fail closed).
                return Err(TokenEndpointError::Registry(e.into()));
            }
            tracing::error!(error = %e, "could not audit a refused token request");
        }
        outcome.map(|(_, response)| response).map_err(|(_, e)| e)
    }

    /// The grant itself; a refusal comes with its real reason (for the audit record).
    async fn grant(
        &self,
        request: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<(OAuthClient, TokenResponse), (&'static str, TokenEndpointError)> {
        let refused =
            |code, description: &str, reason: &'static str| (reason, TokenEndpointError::refused(code, description));
        let grant = match request.grant_type.as_str() {
            "" => return Err(refused(OAuthErrorCode::InvalidRequest, "grant_type is required", "no grant_type")),
            "client_credentials" => GrantType::ClientCredentials,
            "authorization_code" => GrantType::AuthorizationCode,
            "refresh_token" => GrantType::RefreshToken,
            _ => {
                return Err(refused(
                    OAuthErrorCode::UnsupportedGrantType,
                    "grant_type must be authorization_code, refresh_token or client_credentials",
                    "an unknown grant type",
                ));
            }
        };
        let audiences = [self.url(), self.issuer.clone()];
        let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
        let client = match self.clients.authenticate(&request.client, &audiences).await {
            Ok(client) => client,
            Err(ClientAuthError::Invalid(reason)) => {
                return Err(refused(OAuthErrorCode::InvalidClient, "client authentication failed", reason));
            }
            Err(ClientAuthError::Registry(e)) => return Err(("registry failure", e.into())),
        };
        if !client.grant_types.contains(&grant) {
            return Err(refused(
                OAuthErrorCode::UnauthorizedClient,
                &format!("this client is not registered for the {} grant", grant.as_str()),
                "grant not registered",
            ));
        }
        let response = match grant {
            GrantType::ClientCredentials => self.client_credentials(&client, request)?,
            GrantType::AuthorizationCode => self.code_grant(&client, request, meta).await?,
            GrantType::RefreshToken => self.refresh_grant(&client, request, meta).await?,
        };
        Ok((client, response))
    }

    /// The client-credentials grant (RFC 6749 §4.4).
    fn client_credentials(
        &self,
        client: &OAuthClient,
        request: &TokenRequest,
    ) -> Result<TokenResponse, (&'static str, TokenEndpointError)> {
        let refused =
            |code, description: &str, reason: &'static str| (reason, TokenEndpointError::refused(code, description));
        let scopes = match &request.scope {
            Some(scope) if scope.len() > MAX_SCOPE_PARAM => {
                return Err(refused(OAuthErrorCode::InvalidScope, "scope is too long", "scope too long"));
            }
            Some(scope) if !scope.trim().is_empty() => {
                let mut asked: Vec<String> = Vec::new();
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    if USER_SCOPES.contains(&s) {
                        return Err(refused(
                            OAuthErrorCode::InvalidScope,
                            &format!("`{}` needs a user; a client's own token cannot have it", s.escape_debug()),
                            "a user scope asked for",
                        ));
                    }
                    if !client.scopes.iter().any(|c| c == s) {
                        return Err(refused(
                            OAuthErrorCode::InvalidScope,
                            &format!("`{}` is not a scope this client may have", s.escape_debug()),
                            "a scope beyond the client's",
                        ));
                    }
                    if !asked.iter().any(|a| a == s) {
                        asked.push(s.to_owned());
                    }
                }
                asked
            }
            _ => client.scopes.iter().filter(|s| !USER_SCOPES.contains(&s.as_str())).cloned().collect(),
        };
        let issued = self
            .tokens
            .issue_for_client(&client.client_id, &scopes)
            .map_err(|e| ("signing failed", TokenEndpointError::Issue(e.to_string())))?;
        Ok(TokenResponse {
            access_token: SecretString::from(issued.token),
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: scopes.join(" "),
            refresh_token: None,
            id_token: None,
            user_id: None,
        })
    }
}

/// The client id the caller presented, if it named one (for the audit record of a refusal).
fn presented_id(client: &PresentedClient) -> Option<&str> {
    match client {
        PresentedClient::Basic { client_id, .. }
        | PresentedClient::Post { client_id, .. }
        | PresentedClient::Public { client_id } => Some(client_id),
        PresentedClient::Assertion { client_id, .. } => client_id.as_deref(),
    }
}
