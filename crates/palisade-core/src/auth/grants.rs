//! What the OAuth provider needs of accounts and sessions: the session an OAuth client holds for a
//! user's grant (opened when a code is redeemed, renewed by the refresh grant, ended by logout,
//! consent revocation or a reused code), and the check of the access tokens issued in it.
//!
//! Such a session carries [`SessionGrant`]: its tokens name the client (`client_id`), Palisade's own
//! routes refuse them, and its refresh tokens renew only at the token endpoint, for that client.

use secrecy::{ExposeSecret as _, SecretString};

use super::error::AuthError;
use super::service::{AuthService, refresh_token_owner, revoked_key};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::session::{NewSession, OpenError, Session, SessionGrant};
use crate::token::access::{AccessClaims, TokenError};
use crate::token::{RevokeReason, SessionId};
use crate::user::{User, UserId};

/// A session opened for an OAuth grant.
pub(crate) struct GrantSession {
    /// The user (unlocked when it was opened).
    pub(crate) user: User,
    /// The session.
    pub(crate) session: Session,
    /// Its first refresh token, when the client may refresh.
    pub(crate) refresh_token: Option<SecretString>,
}

/// The user and session a refresh token names, if it has the form of one (nothing is checked).
pub(crate) fn refresh_token_session(token: &SecretString) -> Option<(UserId, SessionId)> {
    refresh_token_owner(token.expose_secret())
}

impl AuthService {
    /// Opens the session `grant.client_id` holds for `user`, with a refresh family when `refresh`.
    /// A locked or deleted account gets none ([`AuthError::InvalidToken`]).
    pub(crate) async fn open_grant_session(
        &self,
        user: UserId,
        grant: SessionGrant,
        amr: Vec<String>,
        refresh: bool,
        meta: &RequestMeta,
    ) -> Result<GrantSession, AuthError> {
        let Some(user) = self.store.user_by_id(user).await?.filter(|u| !u.locked) else {
            return Err(AuthError::InvalidToken);
        };
        let new = NewSession {
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            amr,
            oauth: Some(grant),
            ..NewSession::default()
        };
        let opened = match self.sessions.create(user.id, new).await {
            Ok(opened) => opened,
            Err(OpenError::LimitReached) => return Err(AuthError::SessionLimit),
            Err(OpenError::Store(e)) => return Err(e.into()),
        };
        let now = self.clock.now();
        for evicted in &opened.evicted {
            self.store.revoke_session_families(*evicted, RevokeReason::SessionEnded, now).await?;
        }
        let session = opened.session;
        let refresh_token = if refresh { Some(self.new_family(user.id, session.id).await?) } else { None };
        Ok(GrantSession { user, session, refresh_token })
    }

    /// Spends an OAuth refresh token of `client_id` and returns the session and the next token. A
    /// token of a login (not of an OAuth grant) or of another client is refused as unknown.
    pub(crate) async fn refresh_grant(
        &self,
        presented: &SecretString,
        client_id: &str,
        meta: &RequestMeta,
    ) -> Result<(User, Session, SecretString), AuthError> {
        let Some((user_id, session_id)) = refresh_token_owner(presented.expose_secret()) else {
            return Err(AuthError::InvalidToken);
        };
        let Some(session) = self.sessions.alive(user_id, session_id).await? else {
            self.store.revoke_session_families(session_id, RevokeReason::SessionEnded, self.clock.now()).await?;
            return Err(AuthError::TokenRevoked { require_reauth: true });
        };
        if session.oauth.as_ref().is_none_or(|g| g.client_id != client_id) {
            return Err(AuthError::InvalidToken);
        }
        let next = self.spend_refresh(presented, user_id, session_id, meta).await?;
        let Some(user) = self.user(user_id).await?.filter(|u| !u.locked) else {
            self.end_grant_session(user_id, session_id, RevokeReason::SessionEnded).await?;
            return Err(AuthError::TokenRevoked { require_reauth: true });
        };
        Ok((user, session, next))
    }

    /// Ends a session and revokes its refresh families (no audit record: the caller writes the one
    /// that says why).
    pub(crate) async fn end_grant_session(
        &self,
        user: UserId,
        session: SessionId,
        reason: RevokeReason,
    ) -> Result<(), AuthError> {
        self.sessions.end(user, session).await?;
        self.store.revoke_session_families(session, reason, self.clock.now()).await?;
        Ok(())
    }

    /// Ends every session of `user` an OAuth client holds that matches `which`, with its refresh
    /// family; returns how many. Audited as `session.ended` each.
    pub(crate) async fn end_grant_sessions(
        &self,
        user: UserId,
        which: impl Fn(&SessionGrant) -> bool,
        actor: &str,
        meta: &RequestMeta,
    ) -> Result<usize, AuthError> {
        let mut ended = 0;
        for session in self.sessions.list(user).await? {
            if session.oauth.as_ref().is_some_and(&which) {
                self.end_grant_session(user, session.id, RevokeReason::SessionEnded).await?;
                self.record(
                    AuditEvent::new(AuditKind::SessionEnded, Outcome::Success)
                        .actor(actor.to_owned())
                        .subject(session.id.to_string())
                        .request(meta.clone()),
                )
                .await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Ends a browser session (RP-initiated logout) and its refresh family, audited as `logout`.
    pub(crate) async fn end_browser_session(
        &self,
        user: UserId,
        session: SessionId,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        self.end_grant_session(user, session, RevokeReason::Logout).await?;
        self.record(
            AuditEvent::new(AuditKind::Logout, Outcome::Success)
                .actor(user.to_string())
                .subject(session.to_string())
                .request(meta.clone()),
        )
        .await
    }

    /// The live session `id` of `user`, if alive (no cache).
    pub(crate) async fn live_session(&self, user: UserId, id: SessionId) -> Result<Option<Session>, AuthError> {
        Ok(self.sessions.alive(user, id).await?)
    }

    /// A user by id, through the short-lived cache.
    pub(crate) async fn user_by_id(&self, id: UserId) -> Result<Option<User>, AuthError> {
        self.user(id).await
    }

    /// Checks an access token issued to an OAuth client for a user: signature and claims, then that
    /// its session is alive and the token not revoked. `Ok(None)`: not active.
    pub(crate) async fn check_grant_token(&self, token: &str) -> Result<Option<AccessClaims>, AuthError> {
        let claims = match self.tokens.verify(token) {
            Ok(claims) => claims,
            Err(TokenError::Expired | TokenError::Invalid(_)) => return Ok(None),
        };
        let (Some(session), Some(_)) = (claims.sid, claims.client_id.as_ref()) else { return Ok(None) };
        let Ok(user) = UserId::parse(&claims.sub) else { return Ok(None) };
        let (alive, revoked) = tokio::join!(self.sessions.liveness(user, session), self.is_revoked(user, claims.jti));
        let Some(live) = alive? else { return Ok(None) };
        if revoked? || live.client_id.as_deref() != claims.client_id.as_deref() {
            return Ok(None);
        }
        Ok(Some(claims))
    }

    /// Revokes one access token of a grant (by its `jti`), until it would have expired anyway.
    pub(crate) async fn revoke_grant_token(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        let Ok(user) = UserId::parse(&claims.sub) else { return Ok(()) };
        let ttl = (claims.expires_at - self.clock.now()) + time::Duration::seconds(60);
        self.not_revoked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&claims.jti);
        self.hot.put(&revoked_key(user, claims.jti), b"1", ttl.max(time::Duration::seconds(1))).await?;
        Ok(())
    }
}
