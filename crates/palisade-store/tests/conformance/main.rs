//! The conformance suite: one binary, the same tests against every backend.
//!
//! - `hot`: the hot store port on SQLite, PostgreSQL, Redis and (when `PALISADE_TEST_REDIS_CLUSTER_URL`
//!   is set) Redis Cluster (`hot::<backend>::<test>`).
//! - `durable`: the durable store port (data keys, the audit chain), and a real audit log, on SQLite
//!   and PostgreSQL; `users`, `refresh_tokens`, `signing_keys`, `api_keys`, `mfa` (second factors
//!   and backup codes), `passkeys` (WebAuthn credentials), `devices` (the device registry), `risk`
//!   (scored login attempts, the login history), `reencryption` (the re-encryption job's
//!   checkpoint and its batches of rewrites) and `incidents` (what the monitoring detectors raise):
//!   the rest of the durable store. `audit_search`: searching the audit chain (the security events),
//!   on SQLite and PostgreSQL.
//! - `compliance`: the consent ledger, erasure requests and the audit chain's redaction, on SQLite
//!   and PostgreSQL.
//! - `oauth_clients`: the OAuth client registry, on SQLite and PostgreSQL.
//! - `schema`: migrations and constraints on each SQL backend; URL handling.
//! - `redis_failures`: Redis going away and coming back.
//!
//! PostgreSQL runs when `PALISADE_TEST_DATABASE_URL` is set (each test in a database of its own),
//! Redis when `PALISADE_TEST_REDIS_URL` is set (each test under key tags of its own). Without them
//! those tests skip with a message, except under `CI=true`, where they fail.

// The whole binary is test code, most of it in generic test bodies and harnesses that clippy's
// in-test exemptions (clippy.toml) do not see as tests: a failed unwrap here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod alerts;
mod api_keys;
mod audit_search;
mod compliance;
mod devices;
mod durable;
mod hot;
mod incidents;
mod mfa;
mod oauth_clients;
mod passkeys;
mod redis_failures;
mod reencryption;
mod refresh_tokens;
mod reports;
mod risk;
mod schema;
mod signing_keys;
mod support;
mod users;
