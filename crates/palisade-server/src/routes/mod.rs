//! The HTTP routes. Handlers are thin: extract, call one service method, shape the answer.

pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod api_keys;
pub(crate) mod auth;
pub(crate) mod authorizations;
pub(crate) mod authorize;
pub(crate) mod clients;
pub(crate) mod compliance;
pub(crate) mod crypto;
pub(crate) mod devices;
pub(crate) mod keys;
pub(crate) mod mfa;
pub(crate) mod monitoring;
pub(crate) mod oauth;
pub(crate) mod ops;
pub(crate) mod pages;
pub(crate) mod reports;
pub(crate) mod tokens;
pub(crate) mod webauthn;
