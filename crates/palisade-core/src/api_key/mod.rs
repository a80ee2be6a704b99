//! API keys: long-lived credentials for programs, with scopes, an expiry, an IP allow-list and rate
//! limits. Only a keyed hash of the secret is stored; the key is shown once.

use crate::user::UserId;

/// An API key as stored. Never holds the secret: `secret_hash` is HMAC-SHA256 of it under the data key
/// `hash_key_id` (a keyring key, so a stolen database alone cannot be used to test guesses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key's id (also inside the key's text, so a lookup needs no hash).
    pub id: uuid::Uuid,
    /// The user the key acts for.
    pub owner: UserId,
    /// A name its owner gave it.
    pub name: String,
    /// HMAC-SHA256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// The keyring key that made `secret_hash`.
    pub hash_key_id: uuid::Uuid,
    /// Scopes the key grants.
    pub scopes: Vec<String>,
    /// CIDR networks the key may be used from (empty: anywhere).
    pub ip_allow: Vec<String>,
    /// Requests per minute (`None`: no limit).
    pub per_minute: Option<u32>,
    /// Requests per hour.
    pub per_hour: Option<u32>,
    /// Requests per day.
    pub per_day: Option<u32>,
    /// When it was made.
    pub created_at: time::OffsetDateTime,
    /// When it stops working (`None`: never).
    pub expires_at: Option<time::OffsetDateTime>,
    /// When it was last used (recorded at most once a minute).
    pub last_used_at: Option<time::OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<time::OffsetDateTime>,
}

mod format;
mod service;

pub use format::{ApiKeyText, ParseError};
pub use service::{ApiKeyError, ApiKeyService, ApiKeySettings, CreatedApiKey, NewApiKey, RateLimits, ValidatedApiKey};
