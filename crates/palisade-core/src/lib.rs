//! Palisade's domain: the services and the ports they stand on.
//!
//! # Layout
//! - [`clock`]: time as a port.
//! - [`store`]: the durable and hot store ports; adapters live in `palisade-store`.
//! - [`crypto`]: the master key, the keyring of versioned data keys, AES-256-GCM envelopes.
//! - [`audit`]: the HMAC-chained audit log.
//! - [`auth`], [`mfa`], [`session`], [`token`], [`api_key`]: accounts, login and its second factors,
//!   sessions, tokens, API keys.
//! - [`risk`], [`device`]: risk-based login decisions (GeoIP port, the scoring engine) and the
//!   device registry.
//! - [`compliance`]: the consent ledger, export and erasure, retention, real-time checks and
//!   reports of technical control checks.
//! - [`oauth`]: the OAuth 2.0 / OpenID Connect provider (its client registry so far).
//! - [`notify`]: the ports of the SMS and e-mail senders.
//! - [`palisade`]: the [`Palisade`] facade that wires the services, for embedding and for the server.
//!
//! This crate must never import HTTP, SQL or Redis code: arrows point into it, not out of it.

pub mod api_key;
pub mod audit;
pub mod auth;
mod cache;
pub mod clock;
pub mod compliance;
pub mod crypto;
pub mod device;
pub mod mfa;
pub mod monitoring;
pub mod notify;
pub mod oauth;
mod palisade;
pub mod password;
pub mod risk;
pub mod session;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod token;
pub mod user;

pub use palisade::{BuildError, Check, ComponentHealth, Palisade, PalisadeBuilder, PalisadeSettings, Readiness};
