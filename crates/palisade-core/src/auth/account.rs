//! Account management: password changes, removing a second factor, and the administrators' user
//! operations.

use secrecy::SecretString;

use super::error::AuthError;
use super::lockout::Gate;
use super::service::{AuthService, Principal, SCOPE_ADMIN, SCOPE_PASSWORD_CHANGE, SCOPE_USER, secs};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::mfa::FactorKind;
use crate::password::PolicyViolation;
use crate::token::RevokeReason;
use crate::user::{Email, User, UserId, Username};

/// What proves a request to remove a second factor.
pub enum FactorRemovalProof {
    /// The account's password.
    Password(SecretString),
    /// A fresh code of the factor itself (TOTP only).
    Code(String),
}

impl std::fmt::Debug for FactorRemovalProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Password(_) => "FactorRemovalProof::Password(<hidden>)",
            Self::Code(_) => "FactorRemovalProof::Code(<hidden>)",
        })
    }
}

impl AuthService {
    /// Removes one of the caller's second factors (`DELETE /auth/mfa/{kind}`), proven by the password
    /// (counted against the login lockout) or, for TOTP, by a fresh code (counted against the MFA
    /// failure limit). With no confirmed factor left, the backup codes go too.
    pub async fn remove_factor(
        &self,
        principal: &Principal,
        kind: FactorKind,
        proof: FactorRemovalProof,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        principal.require_scope(SCOPE_USER)?;
        principal.session()?;
        let user = self.store.user_by_id(principal.user_id).await?.ok_or(AuthError::InvalidToken)?;
        match proof {
            FactorRemovalProof::Password(password) => {
                self.check_password(&user, password, AuditKind::MfaDisabled, meta).await?
            }
            FactorRemovalProof::Code(code) if kind == FactorKind::Totp => {
                self.mfa.verify_own_totp(user.id, &code, meta).await?;
            }
            FactorRemovalProof::Code(_) => {
                return Err(AuthError::Invalid(crate::user::InvalidInput::new(
                    "password",
                    "the account's password (only a TOTP factor can be removed with one of its codes)",
                )));
            }
        }
        self.mfa.remove(user.id, kind, meta).await
    }

    /// Checks the account's password for a sensitive change: guesses count against the same limits
    /// as logins; a wrong one is audited as `kind`'s failure.
    async fn check_password(
        &self,
        user: &User,
        password: SecretString,
        kind: AuditKind,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        let slot = match self.lockout.gate(user.username.as_str(), meta.ip.as_deref()).await? {
            Gate::Open { slot, .. } => slot,
            Gate::IpThrottled(wait) => {
                self.audit_failure(kind, Some(&user.username), "address throttled", meta).await;
                return Err(AuthError::RateLimited { retry_after_secs: secs(wait) });
            }
            Gate::AccountLocked(wait) => {
                self.audit_failure(kind, Some(&user.username), "account locked out", meta).await;
                return Err(AuthError::AccountLocked { retry_after_secs: secs(wait) });
            }
        };
        let verified = self.verify(password, &user.password_hash).await;
        let failed = matches!(verified, Ok(false));
        if failed {
            self.audit_failure(kind, Some(&user.username), "wrong current password", meta).await;
        }
        // A failure is counted before the slot is given back, so the address's failures plus its
        // attempts in flight never drop below what they were.
        let counted = if failed { self.lockout.count_ip_failure(meta.ip.as_deref()).await } else { Ok(()) };
        self.lockout.release(slot).await;
        counted?;
        if !verified? {
            return Err(AuthError::InvalidCredentials);
        }
        self.lockout.clear(&user.username).await?;
        Ok(())
    }

    /// Changes the caller's password: the current one must be right, the new one must meet the policy
    /// and not be one of the last N; the caller's other sessions end.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        if !principal.has_scope(SCOPE_USER) && !principal.has_scope(SCOPE_PASSWORD_CHANGE) {
            return Err(AuthError::InsufficientScope(SCOPE_USER));
        }
        // A password changes only from a login, never with an API key.
        let own_session = principal.session()?;
        let user = self.store.user_by_id(principal.user_id).await?.ok_or(AuthError::InvalidToken)?;
        // Guesses at the current password count against the same limit as logins.
        self.check_password(&user, current, AuditKind::PasswordChanged, meta).await?;
        let checked = self
            .passwords
            .check_policy(&self.policy, new.clone(), user.username.as_str(), user.email.as_ref().map(Email::as_str))
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let mut violations = checked.err().unwrap_or_default();
        let history = self.policy.history;
        if history > 0 {
            let mut previous = vec![user.password_hash.clone()];
            previous.extend(self.store.password_history(user.id, history.saturating_sub(1)).await?);
            if self.passwords.matches_any(new.clone(), &previous).await {
                violations.push(PolicyViolation::reused(history));
            }
        }
        if !violations.is_empty() {
            self.audit_failure(
                AuditKind::PasswordChanged,
                Some(&user.username),
                "new password refused by the policy",
                meta,
            )
            .await;
            return Err(AuthError::PasswordPolicy(violations));
        }
        let new_hash = self.passwords.hash(new).await.map_err(|e| AuthError::Internal(e.to_string()))?;
        let now = self.clock.now();
        self.users.forget(user.id);
        // The other sessions end before the password changes: if this fails, nothing changed and a
        // retry does it all; if the change then fails, the user only has to log in again elsewhere.
        self.store.revoke_user_families(user.id, Some(own_session), RevokeReason::PasswordChange, now).await?;
        let ended = self.sessions.end_all_except(user.id, Some(own_session)).await?;
        if !self.store.change_password(user.id, &user.password_hash, &new_hash, now, history).await? {
            return Err(AuthError::Conflict("password"));
        }
        self.record(
            AuditEvent::new(AuditKind::PasswordChanged, Outcome::Success)
                .actor(user.id.to_string())
                .request(meta.clone())
                .detail("other_sessions_ended", ended.len()),
        )
        .await?;
        Ok(())
    }

    /// Users, for an administrator.
    pub async fn admin_list_users(
        &self,
        principal: &Principal,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, AuthError> {
        principal.require_scope(SCOPE_ADMIN)?;
        self.list_users(after, limit).await
    }

    /// Locks or unlocks an account, for an administrator.
    pub async fn admin_set_locked(
        &self,
        principal: &Principal,
        id: UserId,
        locked: bool,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        principal.require_scope(SCOPE_ADMIN)?;
        if locked && id == principal.user_id {
            return Err(AuthError::Invalid(crate::user::InvalidInput::new(
                "user_id",
                "an administrator cannot lock their own account",
            )));
        }
        self.set_locked(id, locked, &principal.user_id.to_string(), meta).await
    }

    /// Grants or withdraws the administrator role (the CLI makes the first administrator). Takes effect
    /// at the user's next login or refresh.
    pub async fn set_admin(&self, id: UserId, admin: bool, actor: &str, meta: &RequestMeta) -> Result<(), AuthError> {
        self.users.forget(id);
        if !self.store.set_user_admin(id, admin).await? {
            return Err(AuthError::NotFound);
        }
        let kind = if admin { AuditKind::AdminGranted } else { AuditKind::AdminRevoked };
        self.record(AuditEvent::new(kind, Outcome::Success).actor(actor).subject(id.to_string()).request(meta.clone()))
            .await
    }

    /// Users, by id, after `after`, at most `limit` (administration).
    pub async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, AuthError> {
        Ok(self.store.list_users(after, limit).await?)
    }

    /// Finds a user by username (administration).
    pub async fn find_user(&self, username: &str) -> Result<Option<User>, AuthError> {
        Ok(self.store.user_by_username(&Username::parse(username)?).await?)
    }

    /// Every live session of `id` (for an export of their data).
    pub async fn sessions_of(&self, id: UserId) -> Result<Vec<crate::session::Session>, AuthError> {
        Ok(self.sessions.list(id).await?)
    }

    /// Ends every session and refresh family of `id` (an automatic response to a stolen token or a
    /// hijacked session), audited as `session.ended` with the number ended.
    pub async fn end_all_sessions(&self, id: UserId, actor: &str, meta: &RequestMeta) -> Result<(), AuthError> {
        let ended = self.sessions.end_all_except(id, None).await?;
        self.store.revoke_user_families(id, None, RevokeReason::SessionEnded, self.clock.now()).await?;
        self.record(
            AuditEvent::new(AuditKind::SessionEnded, Outcome::Success)
                .actor(actor)
                .subject(id.to_string())
                .request(meta.clone())
                .detail("sessions", ended.len().to_string())
                .detail("reason", "all sessions ended"),
        )
        .await
    }

    /// Locks or unlocks an account by administrative decision; locking ends its sessions.
    pub async fn set_locked(&self, id: UserId, locked: bool, actor: &str, meta: &RequestMeta) -> Result<(), AuthError> {
        self.users.forget(id);
        if !self.store.set_user_locked(id, locked).await? {
            return Err(AuthError::NotFound);
        }
        if locked {
            self.sessions.end_all_except(id, None).await?;
            self.store.revoke_user_families(id, None, RevokeReason::SessionEnded, self.clock.now()).await?;
        }
        let kind = if locked { AuditKind::UserLocked } else { AuditKind::UserUnlocked };
        self.record(AuditEvent::new(kind, Outcome::Success).actor(actor).subject(id.to_string()).request(meta.clone()))
            .await?;
        Ok(())
    }
}
