//! The OAuth 2.0 / OpenID Connect provider.
//!
//! # Layout
//! - `client.rs`: the registry of clients ([`OAuthClients`]): confidential and public clients, their
//!   redirect URIs (matched exactly), grants, scopes and token-endpoint authentication method; secrets
//!   shown once and kept only as keyed hashes.
//! - `client_auth.rs`: authenticating a client at the token endpoint (`client_secret_basic`,
//!   `client_secret_post`, `private_key_jwt` with single-use assertions, or none for public clients).
//! - `token.rs`: the token endpoint's grants and RFC 6749 §5.2 errors (client credentials so far).
//! - `introspect.rs`: introspection (RFC 7662) and revocation (RFC 7009) for authenticated clients.
//!
//! The flows (authorization code with PKCE, client credentials, refresh, introspection, revocation,
//! discovery, ID tokens) build on this registry; nothing here speaks HTTP.

pub mod client;
pub mod client_auth;
pub mod introspect;
pub mod token;

pub use client::{
    ClientKind, ClientRegistration, GrantType, NewClient, OAuthClient, OAuthClientError, OAuthClients, TokenAuthMethod,
};
pub use client_auth::{ClientAuthError, PresentedClient};
