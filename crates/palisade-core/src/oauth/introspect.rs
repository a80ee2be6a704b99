//! Token introspection (RFC 7662) and revocation (RFC 7009) for authenticated clients.
//!
//! - **Introspection** tells a resource server whether an access token is active now and what it
//!   carries. Only a confidential client that authenticates may ask (a public client cannot). A
//!   user's token is active while its signature, lifetime and session hold and it was not revoked;
//!   a client's token (client credentials) while its signature and lifetime hold and it was not
//!   revoked. Anything else — expired, revoked, malformed, another server's — is just
//!   `{"active": false}`, with no reason.
//! - **Revocation** ends a token the asking client was issued: its `jti` is marked revoked in the hot
//!   store until the token would have expired anyway, so introspection says inactive at once, on
//!   every instance. A token that is already invalid needs nothing (RFC 7009 §2.2: 200). A valid
//!   token issued to someone else is refused (`unauthorized_client`). Revocations are audited.
//!
//! A resource server that verifies access tokens locally with the JWKS does not see revocations:
//! that is the nature of self-contained tokens, kept short-lived (`access_ttl`) for that reason.

use time::OffsetDateTime;

use super::client_auth::{ClientAuthError, PresentedClient};
use super::token::{OAuthErrorCode, TokenEndpoint, TokenEndpointError};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::store::HotKey;
use crate::token::access::{AccessClaims, TokenError};

/// What introspection found about an active token (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// `scope`.
    pub scope: String,
    /// `client_id`, for a token issued to a client.
    pub client_id: Option<String>,
    /// `sub`: the user, or the client for its own token.
    pub sub: String,
    /// `exp`.
    pub exp: OffsetDateTime,
    /// `iat`.
    pub iat: OffsetDateTime,
    /// `jti`.
    pub jti: String,
    /// `iss`.
    pub iss: String,
    /// `aud`.
    pub aud: String,
}

/// The marker of a revoked client-credentials token.
fn revoked_key(client_id: &str, jti: &str) -> HotKey {
    HotKey::new(&format!("oauth-client:{client_id}"), &format!("revoked:{jti}"))
}

impl TokenEndpoint {
    /// Authenticates the caller of introspection or revocation: a confidential client only.
    async fn backchannel_client(
        &self,
        presented: &PresentedClient,
        endpoint: &'static str,
        meta: &RequestMeta,
    ) -> Result<super::OAuthClient, TokenEndpointError> {
        self.check_throttle(meta).await?;
        let refuse = |reason: &'static str| async move {
            let throttled = self.count_client_failure(meta).await;
            let event = AuditEvent::new(AuditKind::OAuthTokenRefused, Outcome::Failure)
                .request(meta.clone())
                .detail("endpoint", endpoint)
                .detail("error", "invalid_client")
                .detail("reason", reason)
                .detail("throttled", throttled);
            if let Err(e) = self.audit().append(event).await {
                tracing::error!(error = %e, "could not audit a refused client");
            }
            TokenEndpointError::Refused {
                code: OAuthErrorCode::InvalidClient,
                description: "client authentication failed".into(),
            }
        };
        if matches!(presented, PresentedClient::Public { .. }) {
            return Err(refuse("a public client cannot use this endpoint").await);
        }
        let audiences = [self.url(), self.issuer().to_owned()];
        let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
        match self.clients().authenticate(presented, &audiences).await {
            Ok(client) => Ok(client),
            Err(ClientAuthError::Invalid(reason)) => Err(refuse(reason).await),
            Err(ClientAuthError::Registry(e)) => Err(e.into()),
        }
    }

    /// Introspects `token` for an authenticated confidential client (RFC 7662). `Ok(None)`: not
    /// active.
    pub async fn introspect(
        &self,
        presented: &PresentedClient,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<Option<ActiveToken>, TokenEndpointError> {
        self.backchannel_client(presented, "introspect", meta).await?;
        let Some(claims) = self.live_claims(token).await? else { return Ok(None) };
        let settings = self.tokens().settings();
        Ok(Some(ActiveToken {
            scope: claims.scope,
            client_id: claims.client_id,
            sub: claims.sub,
            exp: claims.expires_at,
            iat: claims.issued_at,
            jti: claims.jti.to_string(),
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
        }))
    }

    /// The claims of `token` when it is active now; `None` otherwise.
    async fn live_claims(&self, token: &str) -> Result<Option<AccessClaims>, TokenEndpointError> {
        let claims = match self.tokens().verify(token) {
            Ok(claims) => claims,
            Err(TokenError::Expired | TokenError::Invalid(_)) => return Ok(None),
        };
        if let Some(client_id) = &claims.client_id
            && self.clients().find(client_id).await.map_err(|e| TokenEndpointError::Registry(e.into()))?.is_none()
        {
            // The client was deleted: its tokens ended with it (seen within the client cache's second).
            return Ok(None);
        }
        if claims.sid.is_some() && claims.client_id.is_some() {
            // A token of a user's grant to a client: its session must be alive, the token not revoked.
            return self.auth().check_grant_token(token).await.map_err(Into::into);
        }
        if claims.sid.is_some() {
            // A user's token: its session must be alive and the token not revoked.
            return match self.auth().validate_token(token).await {
                Ok(_) => Ok(Some(claims)),
                Err(crate::auth::AuthError::Unavailable(e)) => Err(TokenEndpointError::Unavailable(e)),
                Err(_) => Ok(None),
            };
        }
        let Some(client_id) = &claims.client_id else { return Ok(None) };
        let revoked = self
            .clients()
            .hot()
            .get(&revoked_key(client_id, &claims.jti.to_string()))
            .await
            .map_err(|e| TokenEndpointError::Registry(e.into()))?;
        Ok(revoked.is_none().then_some(claims))
    }

    /// Revokes `token` for the authenticated client it was issued to (RFC 7009).
    pub async fn revoke(
        &self,
        presented: &PresentedClient,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<(), TokenEndpointError> {
        let client = self.backchannel_client(presented, "revoke", meta).await?;
        let claims = match self.tokens().verify(token) {
            Ok(claims) => claims,
            Err(_) => {
                // A refresh token of this client's grant ends the grant's session (RFC 7009 §2.1).
                if super::code_grant::revoke_refresh_token(self, token, &client.client_id).await? {
                    self.audit_revocation(&client.client_id, "refresh_token", meta).await?;
                }
                // Anything else is already useless: nothing to do (RFC 7009 §2.2).
                return Ok(());
            }
        };
        if claims.client_id.as_deref() != Some(client.client_id.as_str()) {
            let event = AuditEvent::new(AuditKind::OAuthTokenRefused, Outcome::Failure)
                .actor(client.client_id.clone())
                .request(meta.clone())
                .detail("endpoint", "revoke")
                .detail("error", "unauthorized_client")
                .detail("reason", "the token was issued to another client or to a login");
            if let Err(e) = self.audit().append(event).await {
                tracing::error!(error = %e, "could not audit a refused revocation");
            }
            return Err(TokenEndpointError::Refused {
                code: OAuthErrorCode::UnauthorizedClient,
                description: "this token was not issued to this client".into(),
            });
        }
        if claims.sid.is_some() {
            // A token of a user's grant: revoked where the user's tokens are checked.
            self.auth().revoke_grant_token(&claims).await?;
            return self.audit_revocation(&claims.jti.to_string(), "access_token", meta).await;
        }
        let now = self.clock().now();
        // Kept until the token could no longer pass anyway (its expiry plus the verifier's leeway).
        let keep = (claims.expires_at - now + time::Duration::seconds(60)).max(time::Duration::SECOND);
        self.clients()
            .hot()
            .put(&revoked_key(&client.client_id, &claims.jti.to_string()), b"1", keep)
            .await
            .map_err(|e| TokenEndpointError::Registry(e.into()))?;
        self.audit()
            .append(
                AuditEvent::new(AuditKind::OAuthTokenRevoked, Outcome::Success)
                    .actor(client.client_id.clone())
                    .subject(claims.jti.to_string())
                    .request(meta.clone()),
            )
            .await
            .map_err(|e| TokenEndpointError::Registry(e.into()))?;
        Ok(())
    }

    async fn audit_revocation(&self, subject: &str, kind: &str, meta: &RequestMeta) -> Result<(), TokenEndpointError> {
        self.audit()
            .append(
                AuditEvent::new(AuditKind::OAuthTokenRevoked, Outcome::Success)
                    .subject(subject.to_owned())
                    .request(meta.clone())
                    .detail("token_type", kind),
            )
            .await
            .map_err(|e| TokenEndpointError::Registry(e.into()))?;
        Ok(())
    }
}
