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
