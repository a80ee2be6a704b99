//! Palisade's wire types: the JSON bodies of the HTTP API, shared by the server, the client and
//! applications. Plain data with serde and OpenAPI schemas; no I/O and no behaviour.

pub mod admin;
pub mod alerts;
pub mod api_keys;
pub mod auth;
pub mod authorizations;
pub mod clients;
pub mod compliance;
pub mod crypto;
pub mod devices;
pub mod health;
pub mod mfa;
pub mod monitoring;
pub mod problem;
pub mod reports;
pub mod tokens;
pub mod webauthn;
