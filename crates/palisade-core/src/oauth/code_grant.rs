//! The token endpoint's grants for a user: the authorization code (RFC 6749 §4.1.3, with PKCE,
//! RFC 7636) and the refresh token (§6), and what each returns (access token, refresh token, ID
//! token).
//!
//! # One redemption per code
//! A code is checked (client, redirect URI, PKCE), then claimed with a set-if-absent on its "spent"
//! marker: of concurrent redemptions exactly one wins. The winner records the session it opened in
//! the marker. Any later presentation of the code (RFC 6749 §4.1.2: "the authorization server MUST
//! deny the request and SHOULD revoke … all tokens previously issued based on that authorization
//! code") ends that session — its access tokens stop being accepted and its refresh family is
//! revoked — and is audited as `oauth.code_reused`. A reuse that lands while the winner is still
//! issuing marks the claim revoked; the winner sees it and undoes its session.

use secrecy::SecretString;
use time::Duration;

use super::authorize::{CodeRecord, code_key, digest_hex};
use super::client::{GrantType, OAuthClient};
use super::id_token::{self, IdTokenFacts};
use super::token::{OAuthErrorCode, TokenEndpoint, TokenEndpointError, TokenRequest, TokenResponse};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::auth::AuthError;
use crate::session::{Session, SessionGrant};
use crate::store::HotKey;
use crate::token::{RevokeReason, SessionId};
use crate::user::{User, UserId};

/// How long a redeemed code is remembered, so a second use still revokes what the first issued.
const SPENT_TTL: Duration = Duration::hours(24);
const CLAIMED: &[u8] = b"claimed";
const REVOKED: &[u8] = b"revoked";

type Refusal = (&'static str, TokenEndpointError);

fn refused(code: OAuthErrorCode, description: &str, reason: &'static str) -> Refusal {
    (reason, TokenEndpointError::Refused { code, description: description.to_owned() })
}

fn spent_key(code: &str) -> HotKey {
    HotKey::new(&format!("oauth-code:{}", digest_hex(code)), "spent")
}

fn store_failure(e: impl Into<TokenEndpointError>) -> Refusal {
    ("store failure", e.into())
}

impl From<crate::store::StoreError> for TokenEndpointError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Registry(e.into())
    }
}

impl From<AuthError> for TokenEndpointError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable(e) => Self::Unavailable(e),
            other => Self::Issue(other.to_string()),
        }
    }
}

/// Whether `verifier` has RFC 7636 §4.1's form: 43 to 128 unreserved characters.
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(verifier))` compared with `challenge` in constant time (RFC 7636 §4.6).
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    crate::crypto::constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

impl TokenEndpoint {
    /// The authorization-code grant.
    pub(super) async fn code_grant(
        &self,
        client: &OAuthClient,
        request: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, Refusal> {
        let Some(code) = request.code.as_deref() else {
            return Err(refused(OAuthErrorCode::InvalidRequest, "code is required", "no code"));
        };
        let invalid = |reason| refused(OAuthErrorCode::InvalidGrant, "the code is invalid, expired or used", reason);
        if code.len() != 43 {
            return Err(invalid("malformed code"));
        }
        let hot = self.clients().hot();
        let Some(bytes) = hot.get(&code_key(code)).await.map_err(store_failure)? else {
            // Expired, unknown — or redeemed already: then what it issued is revoked.
            if self.code_reused(code, client, meta).await? {
                return Err(invalid("the code was used before: what it issued is revoked"));
            }
            return Err(invalid("unknown or expired code"));
        };
        let record: CodeRecord =
            serde_json::from_slice(&bytes).map_err(|e| ("corrupt code", TokenEndpointError::Issue(e.to_string())))?;
        if record.client_id != client.client_id {
            return Err(invalid("the code was issued to another client"));
        }
        // RFC 6749 §4.1.3: the same redirect_uri as the authorization request, if it had one.
        match request.redirect_uri.as_deref() {
            Some(uri) if uri == record.redirect_uri => {}
            None if !record.redirect_uri_given => {}
            None => {
                return Err(refused(
                    OAuthErrorCode::InvalidGrant,
                    "redirect_uri is required: the authorization request had one",
                    "redirect_uri missing",
                ));
            }
            Some(_) => {
                return Err(refused(
                    OAuthErrorCode::InvalidGrant,
                    "redirect_uri differs from the authorization request's",
                    "redirect_uri mismatch",
                ));
            }
        }
        match (record.code_challenge.as_deref(), request.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if is_verifier(verifier) && pkce_matches(verifier, challenge) => {}
            (Some(_), Some(_)) => {
                return Err(refused(OAuthErrorCode::InvalidGrant, "PKCE verification failed", "wrong code_verifier"));
            }
            (Some(_), None) => {
                return Err(refused(OAuthErrorCode::InvalidGrant, "code_verifier is required", "no code_verifier"));
            }
            // A verifier for a code issued without a challenge: a downgrade (RFC 9700 §4.8.2).
            (None, Some(_)) => {
                return Err(refused(
                    OAuthErrorCode::InvalidGrant,
                    "this code was issued without a code_challenge",
                    "code_verifier without a challenge",
                ));
            }
            (None, None) => {}
        }
        // The one redemption.
        if !hot.compare_and_set(&spent_key(code), None, CLAIMED, SPENT_TTL).await.map_err(store_failure)? {
            self.code_reused(code, client, meta).await?;
            return Err(invalid("the code was used before: what it issued is revoked"));
        }
        hot.delete(&code_key(code)).await.map_err(store_failure)?;
        // A sign-in that ended since (logout) issues nothing.
        if self.auth().live_session(record.user_id, record.browser_session).await.map_err(store_failure)?.is_none() {
            return Err(invalid("the user's sign-in ended before the code was redeemed"));
        }
        let grant = SessionGrant {
            client_id: client.client_id.clone(),
            scopes: record.scopes.clone(),
            auth_time: record.auth_time,
            browser_session: Some(record.browser_session),
        };
        let refresh = client.grant_types.contains(&GrantType::RefreshToken);
        let opened =
            match self.auth().open_grant_session(record.user_id, grant, record.amr.clone(), refresh, meta).await {
                Ok(opened) => opened,
                Err(AuthError::InvalidToken) => return Err(invalid("the account is disabled or gone")),
                Err(AuthError::SessionLimit) => {
                    return Err(refused(
                        OAuthErrorCode::InvalidGrant,
                        "the user has another active session",
                        "session limit",
                    ));
                }
                Err(e) => return Err(store_failure(e)),
            };
        let session = opened.session;
        let marker = format!("session:{}:{}", record.user_id, session.id);
        if !hot
            .compare_and_set(&spent_key(code), Some(CLAIMED), marker.as_bytes(), SPENT_TTL)
            .await
            .map_err(store_failure)?
        {
            // A second presentation revoked this redemption while it was under way.
            self.auth()
                .end_grant_session(record.user_id, session.id, RevokeReason::Reuse)
                .await
                .map_err(store_failure)?;
            return Err(invalid("the code was used twice at once: both refused"));
        }
        self.respond(&opened.user, &session, &record.scopes, record.nonce.as_deref(), opened.refresh_token)
    }

    /// A code presented after its redemption: ends what the redemption opened. `true` when the code
    /// had been redeemed.
    async fn code_reused(&self, code: &str, client: &OAuthClient, meta: &RequestMeta) -> Result<bool, Refusal> {
        let hot = self.clients().hot();
        let key = spent_key(code);
        let mut revoked = None;
        for _ in 0..3 {
            let Some(marker) = hot.get(&key).await.map_err(store_failure)? else { return Ok(false) };
            if marker == REVOKED {
                revoked = Some(None);
                break;
            }
            if marker == CLAIMED {
                if hot.compare_and_set(&key, Some(CLAIMED), REVOKED, SPENT_TTL).await.map_err(store_failure)? {
                    revoked = Some(None);
                    break;
                }
                continue;
            }
            let text = String::from_utf8_lossy(&marker).into_owned();
            let mut parts = text.strip_prefix("session:").unwrap_or_default().split(':');
            let user = parts.next().and_then(|u| UserId::parse(u).ok());
            let session = parts.next().and_then(|s| uuid::Uuid::try_parse(s).ok()).map(SessionId::from_uuid);
            let (Some(user), Some(session)) = (user, session) else {
                return Err(("corrupt code marker", TokenEndpointError::Issue("a spent-code marker".into())));
            };
            self.auth().end_grant_session(user, session, RevokeReason::Reuse).await.map_err(store_failure)?;
            hot.put(&key, REVOKED, SPENT_TTL).await.map_err(store_failure)?;
            revoked = Some(Some((user, session)));
            break;
        }
        let Some(ended) = revoked else { return Ok(false) };
        let mut event = AuditEvent::new(AuditKind::OAuthCodeReused, Outcome::Failure)
            .actor(client.client_id.clone())
            .request(meta.clone());
        if let Some((user, session)) = ended {
            event = event.subject(user.to_string()).detail("session_ended", session.to_string());
        }
        if let Err(e) = self.audit().append(event).await {
            tracing::error!(error = %e, "could not audit a reused authorization code");
        }
        Ok(true)
    }

    /// The refresh-token grant: rotation with reuse detection (a spent token presented again
    /// revokes the family and ends the session).
    pub(super) async fn refresh_grant(
        &self,
        client: &OAuthClient,
        request: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, Refusal> {
        let Some(presented) = request.refresh_token.as_ref() else {
            return Err(refused(OAuthErrorCode::InvalidRequest, "refresh_token is required", "no refresh_token"));
        };
        let invalid = |reason| refused(OAuthErrorCode::InvalidGrant, "the refresh token is invalid or revoked", reason);
        let (user, session, next) = match self.auth().refresh_grant(presented, &client.client_id, meta).await {
            Ok(found) => found,
            Err(AuthError::InvalidToken) => return Err(invalid("unknown refresh token, or another client's")),
            Err(AuthError::TokenRevoked { .. }) => return Err(invalid("revoked refresh token (or reused)")),
            Err(AuthError::TokenExpired) => return Err(invalid("expired refresh token")),
            Err(e) => return Err(store_failure(e)),
        };
        let Some(grant) = session.oauth.clone() else { return Err(invalid("not an OAuth session")) };
        // A narrower scope may be asked for (RFC 6749 §6), never a wider one.
        let scopes = match request.scope.as_deref().filter(|s| !s.trim().is_empty()) {
            None => grant.scopes.clone(),
            Some(scope) => {
                let asked: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
                if let Some(extra) = asked.iter().find(|s| !grant.scopes.contains(s)) {
                    return Err(refused(
                        OAuthErrorCode::InvalidScope,
                        &format!("`{}` was not granted", extra.escape_debug()),
                        "a scope beyond the grant",
                    ));
                }
                asked
            }
        };
        self.respond(&user, &session, &scopes, None, Some(next))
    }

    /// The tokens of a user's grant.
    fn respond(
        &self,
        user: &User,
        session: &Session,
        scopes: &[String],
        nonce: Option<&str>,
        refresh_token: Option<SecretString>,
    ) -> Result<TokenResponse, Refusal> {
        let grant = session.oauth.as_ref().ok_or_else(|| invalid_state("a grant session without its grant"))?;
        let subject = user.id.to_string();
        let issued = self
            .tokens()
            .issue_for_grant(&subject, session.id, &grant.client_id, scopes, &session.amr)
            .map_err(|e| ("signing failed", TokenEndpointError::Issue(e.to_string())))?;
        let id_token = if scopes.iter().any(|s| s == "openid") {
            let facts = IdTokenFacts {
                issuer: self.issuer(),
                subject: &subject,
                client_id: &grant.client_id,
                issued_at: self.clock().now().unix_timestamp(),
                lifetime: self.tokens().settings().ttl.whole_seconds(),
                auth_time: grant.auth_time,
                nonce,
                amr: &session.amr,
                sid: grant.browser_session.map(|s| s.to_string()),
                access_token: Some(&issued.token),
                code: None,
                user_claims: serde_json::Map::new(),
            };
            Some(
                id_token::sign(self.tokens().keys(), &facts)
                    .map_err(|e| ("signing failed", TokenEndpointError::Issue(e.to_string())))?,
            )
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: SecretString::from(issued.token),
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: scopes.join(" "),
            refresh_token,
            id_token,
            user_id: Some(user.id),
        })
    }
}

fn invalid_state(what: &str) -> Refusal {
    ("inconsistent state", TokenEndpointError::Issue(what.to_owned()))
}

/// Revokes an OAuth refresh token of `client_id` (RFC 7009): the session it belongs to ends, with
/// its access tokens. `Ok(false)`: not a refresh token of this client.
pub(super) async fn revoke_refresh_token(
    endpoint: &TokenEndpoint,
    token: &str,
    client_id: &str,
) -> Result<bool, TokenEndpointError> {
    let presented = SecretString::from(token);
    let Some((user, session)) = crate::auth::grants::refresh_token_session(&presented) else { return Ok(false) };
    let Some(live) = endpoint.auth().live_session(user, session).await? else { return Ok(true) };
    if live.oauth.as_ref().is_none_or(|g| g.client_id != client_id) {
        return Ok(false);
    }
    endpoint.auth().end_grant_session(user, session, RevokeReason::SessionEnded).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn pkce_matches_the_rfc_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_verifier(verifier));
        assert!(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}+", "a".repeat(43))));
    }
}
