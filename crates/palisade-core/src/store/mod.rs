//! The ports to state: what the services need from a durable store and a hot store.
//!
//! Adapters live in `palisade-store`; this module never names SQL or Redis. Every method that must be
//! atomic across several server instances says so, and adapters implement it as one conditional
//! statement, one transaction or one Lua script — never read-modify-write in the process.

mod durable;
mod hot;

pub use durable::{
    AlertStore, ApiKeyStore, AuditStore, ComplianceStatsStore, ConsentStore, DeviceStore, DurableStore, ErasureStore,
    IncidentStore, KeyStore, MfaStore, OAuthClientStore, OAuthConsent, OAuthConsentStore, PasskeyStore,
    ReencryptionStore, RefreshTokenStore, RetentionStore, RiskStore, SigningKeyStore, UserStore,
};
pub use hot::{HotKey, HotStore, RateDecision, RateWindow, Tally, WindowCount, one_tag};

/// Why a store call failed. Never read an error as "absent": absence is `Ok(None)`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or did not answer in time. Callers fail closed (503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The stored data is not what the schema promises (a bug or tampering).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other failure of the store; the message is for logs, never for clients.
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether the failure is about reachability (so the caller should answer 503 and retry later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
