//! Bodies of the administration routes under `/admin`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One account as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserSummary {
    /// Its id.
    pub user_id: String,
    /// Its canonical username.
    pub username: String,
    /// Its e-mail address.
    pub email: Option<String>,
    /// Locked by an administrator.
    pub locked: bool,
    /// An administrator.
    pub admin: bool,
    /// When it was made (RFC 3339).
    pub created_at: String,
}

/// `GET /admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    /// Accounts ordered by id.
    pub users: Vec<UserSummary>,
}

/// `POST /admin/tokens/revoke`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokenRequest {
    /// The access token to revoke (its `jti` is what is revoked).
    pub token: String,
}

impl std::fmt::Debug for RevokeTokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevokeTokenRequest { token: <hidden> }")
    }
}
