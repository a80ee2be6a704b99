//! [`ComplianceService`]: the struct the consent ledger, export and erasure are methods of (each
//! in its own file), and who may read whose data.

use std::sync::Arc;

use super::{ComplianceError, ComplianceSettings, may_read_all};
use crate::audit::AuditLog;
use crate::auth::{AuthError, AuthService, Principal, SCOPE_USER};
use crate::clock::Clock;
use crate::crypto::CryptoService;
use crate::store::DurableStore;
use crate::user::UserId;

/// What a [`ComplianceService`] is built from.
pub struct ComplianceParts {
    /// The durable store (ledger, requests, everything exported or erased).
    pub store: Arc<dyn DurableStore>,
    /// The audit chain.
    pub audit: Arc<AuditLog>,
    /// Accounts and sessions (ending sessions, reading them for an export).
    pub auth: Arc<AuthService>,
    /// Field encryption (crypto-shredding a user's keys).
    pub crypto: Arc<CryptoService>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The settings.
    pub settings: ComplianceSettings,
    /// The key of the hashes of checked data (a stable subkey of the keyring).
    pub data_hash_key: zeroize::Zeroizing<[u8; 32]>,
}

/// The consent ledger, the data subject's rights and the erasure job.
pub struct ComplianceService {
    pub(super) store: Arc<dyn DurableStore>,
    pub(super) audit: Arc<AuditLog>,
    pub(super) auth: Arc<AuthService>,
    pub(super) crypto: Arc<CryptoService>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) settings: ComplianceSettings,
    pub(super) data_hash_key: zeroize::Zeroizing<[u8; 32]>,
}

impl ComplianceService {
    /// A service over its parts.
    pub fn new(parts: ComplianceParts) -> Self {
        Self {
            store: parts.store,
            audit: parts.audit,
            auth: parts.auth,
            crypto: parts.crypto,
            clock: parts.clock,
            settings: parts.settings,
            data_hash_key: parts.data_hash_key,
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &ComplianceSettings {
        &self.settings
    }

    /// Whose data `principal` reads when asking for `user`: their own (`user` scope), or anyone's
    /// with `admin`, `compliance:read` or `compliance:admin`.
    pub(super) fn subject_for_reading(
        &self,
        principal: &Principal,
        user: Option<UserId>,
    ) -> Result<UserId, ComplianceError> {
        match user {
            Some(user) if user != principal.user_id => {
                if may_read_all(principal) {
                    Ok(user)
                } else {
                    Err(AuthError::InsufficientScope(super::SCOPE_READ).into())
                }
            }
            _ => {
                principal.require_scope(SCOPE_USER)?;
                Ok(principal.user_id)
            }
        }
    }
}
