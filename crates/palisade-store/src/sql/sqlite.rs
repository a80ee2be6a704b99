//! What is particular to SQLite, and only that: opening the pool, the embedded migrations, how a
//! writing transaction begins, and how ids and instants are stored (uuid text, integer µs). The
//! database files' permissions are in `sqlite_files.rs`.
//!
//! Every item here has a namesake in `postgres.rs`; the shared queries reach them through `on_pool!`.
//!
//! # Durability
//! A database file runs in WAL mode with `synchronous = NORMAL` (SQLite's own default is `FULL`): a
//! commit is written to the WAL but not fsynced; the WAL is fsynced before each checkpoint. What
//! that means for operators:
//! - a crash of the Palisade process loses nothing that was committed (the written WAL is in the
//!   operating system's hands), and the database is never corrupted;
//! - a power loss or an operating-system crash may lose the transactions committed since the WAL
//!   was last fsynced, after their clients were answered, and leaves a consistent database. Among
//!   what can be undone: refresh-token rotations (the client's new token becomes unknown: it logs
//!   in again), password changes, the newest audit records (the chain stays intact, its tail is
//!   gone) and revocations — a logout or a reuse detection that is lost makes that family live again.
//!
//! `FULL` fsyncs every commit, which caps writes at the disk's fsync rate: refresh-token rotation
//! measured about 2,500/s with `FULL` and 6,000/s with `NORMAL` here (`benches/refresh_rotation.rs`,
//! 2 cores, 16 concurrent callers). Deployments that cannot accept losing the last writes on power
//! loss run PostgreSQL (which fsyncs each commit by default) or a disk with a power-loss-protected
//! write cache.

use std::str::FromStr;
use std::time::Duration;

use palisade_core::store::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;

use crate::error;

/// The backend's name, for diagnostics.
pub(crate) const BACKEND: &str = "sqlite";

/// `migrations/sqlite`, embedded at build time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Takes the write lock at once: a deferred transaction that reads before it writes can fail with
/// SQLITE_BUSY without waiting out the busy timeout when another connection writes first.
/// Reads the unresolved incident of cause `$1` and subject `$2` inside `raise_incident`'s
/// transaction. SQLite needs no row lock: `BEGIN IMMEDIATE` already holds the database's write lock.
pub(crate) const OPEN_INCIDENT: &str = "SELECT id, cause, subject, severity, state, title, details, events, \
     occurrences, opened_at, last_seen_at, updated_at, updated_by FROM incidents \
     WHERE cause = $1 AND subject = $2 AND state <> 'resolved'";

pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// `audit_counts`: `$1` since and `$2` until (microseconds), `$3` the bucket in microseconds.
pub(crate) const AUDIT_COUNTS: &str = "SELECT (at - $1) / $3 AS bucket, kind, outcome, COUNT(*) AS n \
     FROM audit_log WHERE at >= $1 AND at < $2 GROUP BY 1, 2, 3";

/// `incident_counts`: as `AUDIT_COUNTS`, over the incidents' `opened_at`.
pub(crate) const INCIDENT_COUNTS: &str = "SELECT (opened_at - $1) / $3 AS bucket, cause, COUNT(*) AS n \
     FROM incidents WHERE opened_at >= $1 AND opened_at < $2 GROUP BY 1, 2";

/// Appended to a text column in `ORDER BY`: byte order (SQLite's own, spelled out).
pub(crate) const BYTE_ORDER: &str = " COLLATE BINARY";

/// What a unique violation (`error::unique_violation`) names when a username is taken.
pub(crate) const USERNAME_TAKEN: &str = "users.username";

/// What a unique violation names when an e-mail address is taken.
pub(crate) const EMAIL_TAKEN: &str = "users.email";

/// Rotates a live refresh token in one statement (the plan is in `refresh_token.rs`). SQLite has no
/// data-modifying `WITH`, so this stores the child of the presented token if that one is live, and
/// the schema's trigger `refresh_tokens_spend_parent` marks the parent spent in the same statement.
/// An `INSERT` takes the write lock before it reads, so concurrent callers see each other's spends.
/// `$1` presented hash, `$2` now, `$3` grace cutoff, `$4` child hash, `$5` child expiry.
pub(crate) const ROTATE: &str = concat!(
    "INSERT INTO refresh_tokens (hash, family_id, parent, user_id, session_id, issued_at, expires_at) \
     SELECT $4, family_id, hash, user_id, session_id, $2, $5 FROM refresh_tokens WHERE ",
    super::refresh_token::presented_is_live!(),
    " RETURNING family_id, user_id, session_id"
);

/// Reads a hot-store counter inside `hit_windows`' transaction. SQLite has no row locks and needs
/// none: `BEGIN IMMEDIATE` already holds the database's write lock. `$1` key.
pub(crate) const HIT_READ: &str = "SELECT counter, value IS NOT NULL, expires_at_ms FROM hot_entries WHERE key = $1";

/// How a uuid is stored: hyphenated text.
pub(crate) type StoredId = uuid::fmt::Hyphenated;

/// How an instant is stored: microseconds since the Unix epoch.
pub(crate) type StoredInstant = i64;

pub(crate) fn id(id: uuid::Uuid) -> StoredId {
    id.hyphenated()
}

pub(crate) fn instant(at: OffsetDateTime) -> Result<StoredInstant, StoreError> {
    super::unix_micros(at)
}

/// How long a caller may wait for a pooled connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the pool. `max_connections` is not used: SQLite runs every write one at a time anyway, and
/// several connections only add lock contention (a writer waiting on another's lock sleeps in SQLite's
/// busy handler) and a thread hop per connection. One connection measured fastest here: refresh
/// rotation through the server went from about 2,400/s with 10 connections to about 3,300/s with one
/// (docs/benchmarks.md). Callers queue for it asynchronously.
pub(crate) async fn connect(url: &str, _max_connections: u32) -> Result<SqlitePool, StoreError> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid SQLite URL: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = if in_memory {
        // An in-memory database lives as long as a connection to it: keep exactly one, forever.
        // (Several connections would share it through SQLite's shared cache, whose table locks
        // fail at once instead of waiting.)
        SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
    } else {
        // Private files at rest (see `sqlite_files`): the directory (0700) and the file (0600) are
        // made here, before SQLite opens the file, so the -wal and -shm files it makes are 0600 too.
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            super::sqlite_files::create_private_dir(dir)?;
        }
        super::sqlite_files::secure_database_file(file)?;
        SqlitePoolOptions::new().max_connections(1)
    };
    // See "Durability" above for what NORMAL trades away under WAL.
    let options = if in_memory {
        options
    } else {
        options.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
    };
    pool.acquire_timeout(ACQUIRE_TIMEOUT).connect_with(options).await.map_err(error::sql)
}

pub(crate) async fn migrations_table_exists(conn: &mut sqlx::SqliteConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')")
        .fetch_one(conn)
        .await
        .map_err(error::sql)
}

/// Reads stored ids and instants back.
impl super::durable::Stored for uuid::fmt::Hyphenated {
    type Output = uuid::Uuid;
    fn into_domain(self) -> Result<uuid::Uuid, StoreError> {
        Ok(self.into_uuid())
    }
}

impl super::durable::Stored for i64 {
    type Output = OffsetDateTime;
    fn into_domain(self) -> Result<OffsetDateTime, StoreError> {
        super::from_unix_micros(self)
    }
}

/// A user's OAuth consents in client-id byte order.
pub(crate) const OAUTH_CONSENTS_OF: &str =
    "SELECT client_id, scopes, granted_at FROM oauth_consents WHERE user_id = $1 ORDER BY client_id COLLATE BINARY";
