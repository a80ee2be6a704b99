//! Wire types of the applications a user authorized (`/auth/authorizations`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One application the user consented to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationView {
    /// The OAuth client.
    pub client_id: String,
    /// Its name (`null` when the client was deleted since).
    pub client_name: Option<String>,
    /// The scopes consented to, space-separated.
    pub scope: String,
    /// When consent was last given (RFC 3339).
    pub granted_at: String,
}

/// `GET /auth/authorizations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationList {
    /// The applications, by client id.
    pub authorizations: Vec<AuthorizationView>,
}
