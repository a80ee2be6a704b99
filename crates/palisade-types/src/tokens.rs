//! Bodies of `POST /tokens/validate`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /tokens/validate`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateTokenRequest {
    /// The access token to check.
    pub token: String,
}

impl std::fmt::Debug for ValidateTokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValidateTokenRequest { token: <hidden> }")
    }
}

/// The answer of `POST /tokens/validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidateTokenResponse {
    /// Whether the token is genuine, unexpired, for this audience, and its session alive.
    pub valid: bool,
    /// Its user, when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Its scopes, when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// When it expires (RFC 3339), when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Why not, when not valid: `INVALID_TOKEN`, `TOKEN_EXPIRED` or `TOKEN_REVOKED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
