//! Bodies of the API-key routes: `/auth/api-keys` and `/api-keys/validate`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Rate limits of a key; a missing field means no limit for that window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Requests per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u32>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u32>,
}

/// `POST /auth/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// A name for the key (1–100 characters).
    pub name: String,
    /// Scopes it grants (RFC 6749 scope tokens, 1–50).
    pub scopes: Vec<String>,
    /// Lifetime in seconds (absent: until revoked).
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Rate limits (absent: none).
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// IPv4/IPv6 addresses or CIDR networks it may be used from (absent or empty: anywhere).
    #[serde(default)]
    pub ip_whitelist: Option<Vec<String>>,
}

/// `201` answer of `POST /auth/api-keys`: the key is shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKeyResponse {
    /// The key (`spa_…`). Only its hash is kept: store it now.
    pub api_key: String,
    /// Its id.
    pub api_key_id: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its rate limits.
    pub rate_limits: RateLimitSpec,
    /// When it expires (RFC 3339), if it does.
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for CreateApiKeyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateApiKeyResponse").field("api_key_id", &self.api_key_id).finish_non_exhaustive()
    }
}

/// One key in `GET /auth/api-keys` (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyInfo {
    /// Its id.
    pub api_key_id: String,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub user_id: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its rate limits.
    pub rate_limits: RateLimitSpec,
    /// Its allow-list.
    pub ip_whitelist: Vec<String>,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it expires (RFC 3339).
    pub expires_at: Option<String>,
    /// When it was last used (RFC 3339; recorded at most once a minute).
    pub last_used_at: Option<String>,
    /// When it was revoked (RFC 3339).
    pub revoked_at: Option<String>,
}

/// `GET /auth/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    /// The caller's keys, oldest first.
    pub api_keys: Vec<ApiKeyInfo>,
}

/// `POST /api-keys/validate`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateApiKeyRequest {
    /// The key to check.
    pub api_key: String,
    /// Scopes it must hold.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// The address the key was presented from (checked against its allow-list).
    #[serde(default)]
    pub ip_address: Option<String>,
}

impl std::fmt::Debug for ValidateApiKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidateApiKeyRequest").field("required_scopes", &self.required_scopes).finish_non_exhaustive()
    }
}

/// The answer of `POST /api-keys/validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidateApiKeyResponse {
    /// Whether the key is valid for this use.
    pub valid: bool,
    /// Its owner, when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Its scopes, when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Requests left in its tightest window (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_remaining: Option<u64>,
    /// Why not, when not valid: `INVALID_TOKEN`, `FORBIDDEN_IP`, `INSUFFICIENT_SCOPE`, `RATE_LIMITED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
