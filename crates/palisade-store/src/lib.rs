//! The adapters behind palisade-core's store ports: SQLite (the embedded default) and PostgreSQL for
//! the durable store, and the same SQL database or Redis for the hot store.
//!
//! # Layout
//! - [`connect`] opens what a configuration names and returns [`Stores`]; [`migrate`] creates or
//!   upgrades a database's schema.
//! - [`sql`]: [`SqlStore`] (the durable store) and [`SqlHotStore`] (the hot store on the same pool), one
//!   body of queries for both dialects; what differs between SQLite and PostgreSQL lives in one
//!   module per dialect.
//! - [`redis`] (feature `redis`): [`RedisHotStore`], atomic multi-step operations as Lua scripts.
//! - `error`: the one mapping from driver errors to [`StoreError`] (unreachable → `Unavailable`,
//!   undecodable → `Corrupt`, the rest → `Other`). No error is ever read as "absent".
//!
//! Every adapter passes the one conformance suite in `tests/conformance`, run against real servers.
//!
//! This crate must never hold business rules: it stores and fetches what the services decide, and
//! makes each port method atomic in the store (one statement, one transaction or one Lua script).

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("palisade-store needs at least one of the `sqlite` and `postgres` features");

mod error;
#[cfg(feature = "redis")]
pub mod redis;
pub mod sql;
mod ttl;

use std::fmt;
use std::sync::Arc;

use palisade_core::clock::Clock;
use palisade_core::store::{DurableStore, HotStore, StoreError};

#[cfg(feature = "redis")]
pub use crate::redis::RedisHotStore;
pub use crate::sql::{SqlHotStore, SqlStore};

/// The stores a Palisade instance runs on.
pub struct Stores {
    /// The source of truth (SQLite or PostgreSQL).
    pub durable: Arc<dyn DurableStore>,
    /// TTL state, counters and one-shot values: Redis when configured, else the durable database.
    pub hot: Arc<dyn HotStore>,
    sql: SqlStore,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").field("durable", &self.durable.backend()).field("hot", &self.hot.backend()).finish()
    }
}

impl Stores {
    /// Creates or upgrades the durable database's schema; returns the migrations this call applied.
    pub async fn migrate(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        self.sql.migrate().await
    }

    /// Fails unless the durable database's schema is exactly the one this build expects: every
    /// migration applied, unchanged, and none unknown to this build.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        self.sql.check_schema().await
    }

    /// Closes the database pool (the Redis connection closes when the last handle is dropped).
    pub async fn close(&self) {
        self.sql.close().await;
    }
}

/// One migration applied by [`migrate`]; displays as `0001 foundation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Its number, the file name's prefix.
    pub version: i64,
    /// Its description, the rest of the file name.
    pub description: String,
}

impl fmt::Display for AppliedMigration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04} {}", self.version, self.description)
    }
}

/// Opens the durable store at `database_url` and the hot store: Redis at `redis_url` when given, else
/// the SQL hot store on the durable store's pool, with expiry taken from `clock` (Redis keeps its own
/// time). Does not migrate: call [`Stores::migrate`] or [`Stores::check_schema`].
///
/// Database URLs: `sqlite://PATH` (the file and its directory are created when missing),
/// `sqlite::memory:`, `postgres://…` or `postgresql://…`. Redis URLs: see [`RedisHotStore::connect`].
/// Errors never contain the URLs' passwords.
pub async fn connect(
    database_url: &str,
    redis_url: Option<&str>,
    clock: Arc<dyn Clock>,
    max_connections: u32,
) -> Result<Stores, StoreError> {
    let sql = SqlStore::connect(database_url, max_connections).await?;
    let hot: Arc<dyn HotStore> = match redis_url {
        Some(url) => open_redis(url).await?,
        None => Arc::new(sql.hot_store(clock)),
    };
    Ok(Stores { durable: Arc::new(sql.clone()), hot, sql })
}

#[cfg(feature = "redis")]
async fn open_redis(url: &str) -> Result<Arc<dyn HotStore>, StoreError> {
    Ok(Arc::new(RedisHotStore::connect(url).await?))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(_url: &str) -> Result<Arc<dyn HotStore>, StoreError> {
    Err(StoreError::Other("a Redis URL is configured but palisade-store was built without the `redis` feature".into()))
}

/// Creates or upgrades the schema of the database at `database_url`; returns the migrations applied
/// by this call, oldest first (empty when the schema was up to date).
pub async fn migrate(database_url: &str) -> Result<Vec<AppliedMigration>, StoreError> {
    let sql = SqlStore::connect(database_url, 1).await?;
    let applied = sql.migrate().await;
    sql.close().await;
    applied
}
