//! Wire types of the OAuth client registry (`/admin/clients`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /admin/clients`: a client to register (the names of RFC 7591's client metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// A name for people (shown on the consent page).
    pub client_name: String,
    /// `confidential` (default: a server-side application) or `public` (a browser or native app).
    #[serde(default)]
    pub client_type: Option<String>,
    /// Where authorization responses may be sent; matched exactly. `https`, `http` on a loopback
    /// address, or a private-use scheme named after a domain (public native apps).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the user back; matched exactly.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials` (default: the first two).
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// The scopes it may be given (default `openid profile email`), space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    /// `client_secret_basic` (default for confidential), `client_secret_post`, `private_key_jwt` or
    /// `none` (public clients).
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// Its public keys, a JWK Set, for `private_key_jwt`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where its public keys are published, for `private_key_jwt`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

/// A registered client (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    /// Its id.
    pub client_id: String,
    /// Its name.
    pub client_name: String,
    /// `confidential` or `public`.
    pub client_type: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types.
    pub grant_types: Vec<String>,
    /// Scopes, space-separated.
    pub scope: String,
    /// How it authenticates at the token endpoint.
    pub token_endpoint_auth_method: String,
    /// Its JWK Set, for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Its JWK Set's URL, for `private_key_jwt`.
    pub jwks_uri: Option<String>,
    /// When it was registered (RFC 3339).
    pub created_at: String,
}

/// `POST /admin/clients` → 201: the client and, for the methods that use one, its secret — shown this
/// once; only a keyed hash is kept.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClientCreated {
    /// The client.
    #[serde(flatten)]
    pub client: ClientView,
    /// Its secret (`client_secret_basic`, `client_secret_post`): store it now.
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for ClientCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCreated")
            .field("client", &self.client)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// `GET /admin/clients`: clients ordered by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClientList {
    /// The clients.
    pub clients: Vec<ClientView>,
}
