//! The SQL adapters: SQLite (the embedded default) and PostgreSQL.
//!
//! # Layout
//! - [`SqlStore`]: the durable store. Its queries: `durable.rs` (data keys, the audit chain),
//!   `user.rs` (accounts, password history), `refresh_token.rs` (refresh-token families and
//!   rotation), `signing_key.rs` (JWT signing keys), `api_key.rs` (API keys), `mfa.rs` (second
//!   factors and backup codes), `passkey.rs` (passkeys), `device.rs` (the device registry),
//!   `risk.rs` (scored login attempts and the login history), `reencryption.rs` (the
//!   re-encryption job: pages of sealed rows, batches committed with their checkpoint).
//! - [`SqlHotStore`]: the hot store on the same pool, for deployments without Redis; `hot.rs`.
//! - `sqlite.rs`, `postgres.rs`: everything that differs between the dialects, and nothing else —
//!   opening a pool, the embedded migrations, how a transaction that will write begins, and how ids
//!   and instants are stored (SQLite has no uuid or timestamp types).
//! - `sqlite_files.rs`: the SQLite files' permissions at rest (a private directory and file).
//!
//! The queries are written once: both dialects take `$N` placeholders, `ON CONFLICT … DO UPDATE …
//! WHERE` and `RETURNING`. `on_pool!` is the one place the dialects meet: it runs one body against
//! the concrete pool of whichever dialect is open, with a name bound to that dialect's module, so the
//! body is compiled once per dialect with concrete types and no backend test appears in the queries.
//!
//! This module must never hold business rules, nor read-modify-write in the process: every port
//! method is one statement or one transaction.

mod alert;
mod api_key;
mod consent;
mod device;
mod durable;
mod erasure;
mod hot;
mod incident;
mod mfa;
mod oauth_client;
mod oauth_consent;
mod passkey;
#[cfg(feature = "postgres")]
mod postgres;
mod reencryption;
mod refresh_token;
mod report;
mod retention;
mod risk;
mod signing_key;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_files;
mod user;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use palisade_core::clock::Clock;
use palisade_core::store::StoreError;
use sqlx::migrate::{Migrate, Migrator};

use crate::AppliedMigration;
use crate::error;

pub use hot::SqlHotStore;

/// An open pool of one dialect.
#[derive(Clone)]
pub(crate) enum SqlPool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool and `$dialect` to its dialect module
/// (`sqlite` or `postgres`), e.g. `on_pool!(&self.pool, |pool, d| query(d::BEGIN_WRITE)…)`.
macro_rules! on_pool {
    ($sql_pool:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match $sql_pool {
            #[cfg(feature = "sqlite")]
            $crate::sql::SqlPool::Sqlite($pool) => {
                #[allow(unused_imports)]
                use $crate::sql::sqlite as $dialect;
                $body
            }
            #[cfg(feature = "postgres")]
            $crate::sql::SqlPool::Postgres($pool) => {
                #[allow(unused_imports)]
                use $crate::sql::postgres as $dialect;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// The durable store over SQLite or PostgreSQL. Cloning shares the pool.
#[derive(Clone)]
pub struct SqlStore {
    pool: SqlPool,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

/// Which dialect a database URL names.
enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn of(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            // Name only the scheme: the rest of the URL may hold a password.
            let scheme = url
                .split_once(':')
                .map(|(scheme, _)| scheme)
                .filter(|s| {
                    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                })
                .map_or_else(|| "none".to_owned(), |s| format!("`{s}`"));
            Err(StoreError::Other(format!(
                "unsupported database URL (scheme {scheme}): expected sqlite://PATH, sqlite::memory:, \
                 postgres://… or postgresql://…"
            )))
        }
    }
}

impl SqlStore {
    /// Opens a pool of at most `max_connections` (at least 1) on `database_url`: `sqlite://PATH`
    /// (created, with its directory, when missing — on Unix the file 0600 and the directory 0700,
    /// and an existing file open to group or others is tightened with a warning; WAL with
    /// `synchronous = NORMAL` — see the `sqlite` module for what that trades — foreign keys on,
    /// 5 s busy timeout),
    /// `sqlite::memory:` (one connection, gone when the store is closed), or `postgres://…` /
    /// `postgresql://…`. Errors never contain the URL.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let max_connections = max_connections.max(1);
        let pool = match Dialect::of(database_url)? {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => SqlPool::Sqlite(sqlite::connect(database_url, max_connections).await?),
            #[cfg(feature = "postgres")]
            Dialect::Postgres => SqlPool::Postgres(postgres::connect(database_url, max_connections).await?),
            #[allow(unreachable_patterns)]
            _ => return Err(StoreError::Other("this build of palisade-store lacks that database's feature".into())),
        };
        Ok(Self { pool })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        on_pool!(&self.pool, |_pool, d| d::BACKEND)
    }

    /// The hot store on this store's pool, its expiry read from `clock`.
    pub fn hot_store(&self, clock: Arc<dyn Clock>) -> SqlHotStore {
        SqlHotStore::new(self.pool.clone(), clock)
    }

    /// Creates or upgrades the schema; returns the migrations this call applied, oldest first.
    pub async fn migrate(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        on_pool!(&self.pool, |pool, d| {
            let mut conn = pool.acquire().await.map_err(error::sql)?;
            let exists = d::migrations_table_exists(&mut conn).await?;
            let before = applied_versions(&mut *conn, exists, &d::MIGRATOR).await?;
            if let Err(e) = d::MIGRATOR.run(&mut *conn).await {
                // A migration that runs outside sqlx's transaction (`-- no-transaction`, e.g. SQLite's
                // 0008) may fail inside a transaction of its own, or with foreign keys switched
                // off: close the connection rather than return it to the pool in that state.
                // Closing rolls back whatever the migration left uncommitted.
                if let Err(close) = conn.close().await {
                    tracing::warn!(backend = d::BACKEND, error = %close, "closing the connection of a failed migration");
                }
                return Err(error::migrate(e));
            }
            let applied: Vec<AppliedMigration> = up_migrations(&d::MIGRATOR)
                .filter(|m| !before.contains_key(&m.version))
                .map(|m| AppliedMigration { version: m.version, description: m.description.to_string() })
                .collect();
            for migration in &applied {
                tracing::info!(backend = d::BACKEND, %migration, "applied migration");
            }
            Ok(applied)
        })
    }

    /// Fails unless every migration of this build is applied, unchanged, and the database has none
    /// this build does not know. Reads only.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, |pool, d| {
            let mut conn = pool.acquire().await.map_err(error::sql)?;
            let exists = d::migrations_table_exists(&mut conn).await?;
            let applied = applied_versions(&mut *conn, exists, &d::MIGRATOR).await?;
            schema_verdict(&d::MIGRATOR, &applied)
        })
    }

    /// Answers when the database is reachable.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, |pool, _d| sqlx::query("SELECT 1").execute(pool).await.map(drop).map_err(error::sql))
    }

    /// Closes the pool: waits for connections in use to come back, then closes them all.
    pub async fn close(&self) {
        on_pool!(&self.pool, |pool, _d| pool.close().await)
    }

    pub(crate) fn pool(&self) -> &SqlPool {
        &self.pool
    }
}

fn up_migrations(migrator: &Migrator) -> impl Iterator<Item = &sqlx::migrate::Migration> {
    migrator.iter().filter(|m| m.migration_type.is_up_migration())
}

/// The migrations recorded as applied (version → checksum); empty when the bookkeeping table does
/// not exist yet.
async fn applied_versions<C: Migrate>(
    conn: &mut C,
    table_exists: bool,
    migrator: &Migrator,
) -> Result<HashMap<i64, Vec<u8>>, StoreError> {
    if !table_exists {
        return Ok(HashMap::new());
    }
    if let Some(version) = conn.dirty_version(&migrator.table_name).await.map_err(error::migrate)? {
        return Err(StoreError::Other(format!(
            "migration {version:04} failed part-way earlier; repair the database before going on"
        )));
    }
    let applied = conn.list_applied_migrations(&migrator.table_name).await.map_err(error::migrate)?;
    Ok(applied.into_iter().map(|m| (m.version, m.checksum.into_owned())).collect())
}

fn schema_verdict(migrator: &Migrator, applied: &HashMap<i64, Vec<u8>>) -> Result<(), StoreError> {
    let mut pending = Vec::new();
    for migration in up_migrations(migrator) {
        match applied.get(&migration.version) {
            Some(checksum) if checksum.as_slice() != &*migration.checksum => {
                return Err(StoreError::Other(format!(
                    "migration {:04} {} was changed after it was applied to this database",
                    migration.version, migration.description
                )));
            }
            Some(_) => {}
            None => pending.push(format!("{:04} {}", migration.version, migration.description)),
        }
    }
    let mut unknown: Vec<i64> = applied.keys().filter(|v| !migrator.version_exists(**v)).copied().collect();
    unknown.sort_unstable();
    if let Some(version) = unknown.first() {
        return Err(StoreError::Other(format!(
            "the database has migration {version:04}, which this build does not know: it was upgraded by a newer Palisade"
        )));
    }
    if !pending.is_empty() {
        return Err(StoreError::Other(format!(
            "the database schema is not up to date ({} pending: {}): run `palisade migrate`",
            pending.len(),
            pending.join(", ")
        )));
    }
    Ok(())
}

/// Instants as the durable tables hold them: microseconds since the Unix epoch, truncated toward
/// zero exactly as the audit MAC reads them.
pub(crate) fn unix_micros(at: time::OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(at.unix_timestamp_nanos() / 1000)
        .map_err(|_| StoreError::Other(format!("instant {at} is out of the storable range")))
}

/// The inverse of [`unix_micros`].
pub(crate) fn from_unix_micros(micros: i64) -> Result<time::OffsetDateTime, StoreError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map_err(|_| error::corrupt(format!("stored instant {micros} µs is out of range")))
}
