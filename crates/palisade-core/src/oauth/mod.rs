//! The OAuth 2.0 / OpenID Connect provider.
//!
//! # Layout
//! - `client.rs`: the registry of clients ([`OAuthClients`]): confidential and public clients, their
//!   redirect URIs (matched exactly), grants, scopes and token-endpoint authentication method; secrets
//!   shown once and kept only as keyed hashes.
//! - `client_auth.rs`: authenticating a client at the token endpoint (`client_secret_basic`,
//!   `client_secret_post`, `private_key_jwt` with single-use assertions, or none for public clients);
//!   `client_keys.rs`: the key sets of clients that publish them at a `jwks_uri`, fetched through the
//!   [`client_keys::KeySetFetcher`] port and cached.
//! - `authorize.rs`: the authorization endpoint ([`Authorizer`]): request checks, PKCE, the browser's
//!   sign-in (the login of `auth`, with its second factor and risk decision), consent, codes.
//! - `token.rs`: the token endpoint ([`token::TokenEndpoint`]), RFC 6749 §5.2 errors, and the
//!   client-credentials grant; `code_grant.rs`: the authorization-code and refresh grants.
//! - `id_token.rs`: ID tokens; `userinfo.rs`: the UserInfo endpoint; `logout.rs`: RP-initiated
//!   logout; `discovery.rs`: the provider metadata.
//! - `introspect.rs`: introspection (RFC 7662) and revocation (RFC 7009) for authenticated clients.
//!
//! Nothing here speaks HTTP: the server parses requests into these types and renders the steps.

pub mod authorize;
pub mod client;
pub mod client_auth;
pub mod client_keys;
mod code_grant;
pub mod discovery;
pub mod id_token;
pub mod introspect;
pub mod logout;
mod throttle;
pub mod token;
pub mod userinfo;

pub use authorize::{AuthorizeQuery, Authorizer, AuthorizerParts, FlowError, ResponseMode, Step, StepOut};
pub use client::{
    ClientKind, ClientRegistration, GrantType, NewClient, OAuthClient, OAuthClientError, OAuthClients, TokenAuthMethod,
};
pub use client_auth::{ClientAuthError, PresentedClient};
pub use logout::{LogoutQuery, LogoutStep};

/// Settings of the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthSettings {
    /// PKCE (S256) required of every client (default true); public clients need it whatever this says.
    pub require_pkce: bool,
    /// How long an authorization code lives (default 600 s).
    pub code_ttl: time::Duration,
    /// How many sign-ins one address may start within the ten minutes a pending request lives
    /// (default 300): each is kept in the hot store until it ends, and the endpoint is anonymous.
    pub pending_per_address: u32,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self { require_pkce: true, code_ttl: time::Duration::seconds(600), pending_per_address: 300 }
    }
}
