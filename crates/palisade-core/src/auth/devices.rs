//! A user's devices (list, rename, trust, approve, forget — forgetting ends the sessions opened
//! from it) and an administrator's view of a user's recent risk assessments.

use super::error::AuthError;
use super::service::{AuthService, Principal, SCOPE_ADMIN, SCOPE_USER};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::device::{DeviceId, DeviceRecord, DeviceUpdate};
use crate::risk::RiskRecord;
use crate::token::RevokeReason;
use crate::user::UserId;

impl AuthService {
    /// The caller's devices, most recently seen first.
    pub async fn devices_of(&self, principal: &Principal) -> Result<Vec<DeviceRecord>, AuthError> {
        principal.require_scope(SCOPE_USER)?;
        self.devices.list(principal).await
    }

    /// Renames or re-trusts one of the caller's devices.
    pub async fn update_device(
        &self,
        principal: &Principal,
        id: DeviceId,
        update: DeviceUpdate,
        meta: &RequestMeta,
    ) -> Result<DeviceRecord, AuthError> {
        principal.require_scope(SCOPE_USER)?;
        self.devices.update(principal, id, update, meta).await
    }

    /// Approves one of the caller's devices.
    pub async fn approve_device(
        &self,
        principal: &Principal,
        id: DeviceId,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        principal.require_scope(SCOPE_USER)?;
        self.devices.approve(principal, id, meta).await
    }

    /// Forgets one of the caller's devices and ends every session opened from it, with their
    /// refresh families (the caller's own session too, if it is one of them). Returns how many
    /// sessions ended.
    pub async fn remove_device(
        &self,
        principal: &Principal,
        id: DeviceId,
        meta: &RequestMeta,
    ) -> Result<usize, AuthError> {
        principal.require_scope(SCOPE_USER)?;
        let user = principal.user_id;
        if !self.devices.delete(user, id).await? {
            return Err(AuthError::NotFound);
        }
        let now = self.clock.now();
        let mut ended = 0;
        for session in self.sessions.list(user).await? {
            if session.device_id == Some(id) && self.sessions.end(user, session.id).await? {
                self.store.revoke_session_families(session.id, RevokeReason::SessionEnded, now).await?;
                ended += 1;
            }
        }
        self.record(
            AuditEvent::new(AuditKind::DeviceRemoved, Outcome::Success)
                .actor(user.to_string())
                .subject(id.to_string())
                .request(meta.clone())
                .detail("sessions_ended", ended),
        )
        .await?;
        Ok(ended)
    }

    /// A user's most recent risk assessments, newest first (administrators).
    pub async fn risk_of(&self, principal: &Principal, user: UserId, limit: u32) -> Result<Vec<RiskRecord>, AuthError> {
        principal.require_scope(SCOPE_ADMIN)?;
        if self.store.user_by_id(user).await?.is_none() {
            return Err(AuthError::NotFound);
        }
        self.risk.recent(user, limit).await
    }
}
