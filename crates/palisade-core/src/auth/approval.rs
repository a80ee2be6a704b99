//! Device approval (`PALISADE_DEVICE_APPROVAL`): a login from a device the user has not approved
//! passes every step but gets no session; it waits, under an opaque `approval_token` the client
//! polls with, until the device is approved — from an existing session (`POST
//! /auth/devices/{id}/approve`) or through the link mailed to the user. The wait lives in the hot
//! store under the SHA-256 of its token (never the token) for `approval_ttl`, and completes once:
//! the approved poll takes it.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::AuthError;
use super::login::{Finished, LoginCarry};
use super::service::{Access, ApprovalPending, AuthService, LoginOutcome, secs};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::device::{DeviceId, DeviceRecord};
use crate::mfa::MfaMethod;
use crate::store::HotKey;
use crate::user::{User, UserId};

/// A login waiting for its device's approval.
#[derive(Debug, Serialize, Deserialize)]
struct Waiting {
    user_id: UserId,
    #[serde(with = "time::serde::rfc3339")]
    password_changed_at: OffsetDateTime,
    device_id: DeviceId,
    password: bool,
    methods: Vec<MfaMethod>,
    access: Access,
    carry: LoginCarry,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// What a mailed approval link approves.
#[derive(Debug, Serialize, Deserialize)]
struct Link {
    user_id: UserId,
    device_id: DeviceId,
}

fn digest_hex(token: &str) -> String {
    data_encoding::HEXLOWER.encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

fn waiting_key(token: &str) -> HotKey {
    HotKey::new(&format!("approval:{}", digest_hex(token)), "login")
}

fn link_key(token: &str) -> HotKey {
    HotKey::new(&format!("approval-link:{}", digest_hex(token)), "device")
}

/// A new opaque token: `<prefix>.<256 random bits, base64url>`.
fn new_token(prefix: &str) -> Result<SecretString, AuthError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| AuthError::Internal("random generator failed".into()))?;
    Ok(SecretString::from(format!("{prefix}.{}", URL_SAFE_NO_PAD.encode(bytes.as_ref()))))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AuthError> {
    serde_json::to_vec(value).map_err(|e| AuthError::Internal(format!("encoding an approval: {e}")))
}

impl AuthService {
    /// Parks a login whose device waits for approval, mails the user an approval link (when they
    /// have an address and a sender exists), and answers the token to poll with.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn await_approval(
        &self,
        user: &User,
        device: &DeviceRecord,
        password: bool,
        methods: &[MfaMethod],
        access: Access,
        carry: LoginCarry,
        meta: &RequestMeta,
    ) -> Result<ApprovalPending, AuthError> {
        let ttl = self.devices.settings().approval_ttl;
        let token = new_token("apr")?;
        let waiting = Waiting {
            user_id: user.id,
            password_changed_at: user.password_changed_at,
            device_id: device.id,
            password,
            methods: methods.to_vec(),
            access,
            carry,
            expires_at: self.clock.now() + ttl,
        };
        self.hot.put(&waiting_key(token.expose_secret()), &encode(&waiting)?, ttl).await?;
        if self.devices.can_mail(user) {
            let link = new_token("apl")?;
            let target = Link { user_id: user.id, device_id: device.id };
            self.hot.put(&link_key(link.expose_secret()), &encode(&target)?, ttl).await?;
            self.devices.mail_approval_link(user, device, &link);
        }
        self.record(
            AuditEvent::new(AuditKind::DeviceApprovalRequested, Outcome::Success)
                .actor(user.id.to_string())
                .subject(device.id.to_string())
                .request(meta.clone()),
        )
        .await?;
        Ok(ApprovalPending { approval_token: token, device_id: device.id, expires_in: secs(ttl) })
    }

    /// Polls a waiting login (`POST /auth/login/approval`): still waiting → the same answer again;
    /// approved → the session and its tokens, once.
    pub async fn poll_approval(&self, token: &SecretString, meta: &RequestMeta) -> Result<LoginOutcome, AuthError> {
        let key = waiting_key(token.expose_secret());
        let refuse = |reason: &'static str| async move {
            self.audit_failure(AuditKind::LoginFailed, None, reason, meta).await;
            AuthError::InvalidToken
        };
        let Some(bytes) = self.hot.get(&key).await? else {
            return Err(refuse("unknown or expired approval_token").await);
        };
        let waiting: Waiting =
            serde_json::from_slice(&bytes).map_err(|e| AuthError::Internal(format!("a stored approval: {e}")))?;
        let Some(device) = self.store.device(waiting.user_id, waiting.device_id).await? else {
            self.hot.delete(&key).await?;
            return Err(refuse("the waiting device was removed").await);
        };
        if !device.approved {
            return Ok(LoginOutcome::ApprovalRequired(ApprovalPending {
                approval_token: token.clone(),
                device_id: device.id,
                expires_in: secs(waiting.expires_at - self.clock.now()),
            }));
        }
        // Of concurrent polls after the approval, one takes the wait and logs in.
        if self.hot.take(&key).await?.is_none() {
            return Err(refuse("approval_token already used").await);
        }
        let user = self.store.user_by_id(waiting.user_id).await?;
        let Some(user) = user.filter(|u| !u.locked && u.password_changed_at == waiting.password_changed_at) else {
            return Err(refuse("account locked or password changed while the device waited").await);
        };
        Ok(
            match self
                .finish_login(&user, waiting.password, &waiting.methods, waiting.access, waiting.carry, meta)
                .await?
            {
                Finished::Tokens(pair) => LoginOutcome::Tokens(pair),
                // The poll came from another client than the login: that is a new device, waiting anew.
                Finished::Approval(pending) => LoginOutcome::ApprovalRequired(pending),
            },
        )
    }

    /// Approves a device through the link mailed to its user (`POST /auth/devices/approve-link`);
    /// the link works once.
    pub async fn approve_by_link(&self, token: &str, meta: &RequestMeta) -> Result<DeviceId, AuthError> {
        if token.len() > 100 {
            return Err(AuthError::InvalidToken);
        }
        let Some(bytes) = self.hot.take(&link_key(token)).await? else {
            self.audit_failure(AuditKind::DeviceApproved, None, "unknown, expired or used approval link", meta).await;
            return Err(AuthError::InvalidToken);
        };
        let link: Link =
            serde_json::from_slice(&bytes).map_err(|e| AuthError::Internal(format!("a stored approval link: {e}")))?;
        if !self.store.approve_device(link.user_id, link.device_id).await? {
            return Err(AuthError::NotFound);
        }
        self.record(
            AuditEvent::new(AuditKind::DeviceApproved, Outcome::Success)
                .actor(link.user_id.to_string())
                .subject(link.device_id.to_string())
                .request(meta.clone())
                .detail("via", "mailed link"),
        )
        .await?;
        Ok(link.device_id)
    }
}
