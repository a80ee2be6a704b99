//! The one mapping from driver errors to [`StoreError`].
//!
//! - `Unavailable`: the store cannot be reached or did not answer in time (connection refused or
//!   dropped, I/O errors, timeouts, an exhausted pool, a server shutting down, SQLite busy past its
//!   busy timeout). Callers fail closed and answer 503.
//! - `Corrupt`: what came back does not decode as the schema promises.
//! - `Other`: everything else (constraint violations, SQL errors, bugs).
//!
//! Driver messages go into the error for the logs; they never contain a URL or a password.

use palisade_core::store::StoreError;

/// Maps a SQL driver error.
pub(crate) fn sql(e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    if let E::Migrate(e) = e {
        return migrate(*e);
    }
    let message = e.to_string();
    match &e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => StoreError::Unavailable(message),
        E::Database(db) if database_unavailable(db.as_ref()) => StoreError::Unavailable(message),
        E::Database(db) if database_corrupt(db.as_ref()) => StoreError::Corrupt(message),
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. } => StoreError::Corrupt(message),
        _ => StoreError::Other(message),
    }
}

/// What a unique violation names, or `None` when `e` is not one: PostgreSQL's constraint (or unique
/// index) name, SQLite's `table.column` list (SQLite reports columns, not constraint names). Each
/// dialect module holds the names its queries expect; any other violation stays an error.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<&str> {
    let sqlx::Error::Database(db) = e else { return None };
    if db.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return None;
    }
    if let Some(constraint) = db.constraint() {
        return Some(constraint);
    }
    db.message().strip_prefix("UNIQUE constraint failed: ")
}

/// Maps a migration error.
pub(crate) fn migrate(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(e) => sql(e),
        other => StoreError::Other(format!("migration failed: {other}")),
    }
}

/// SQLite's primary result codes that mean "cannot get at the database now".
#[cfg(feature = "sqlite")]
const SQLITE_BUSY: i64 = 5;
#[cfg(feature = "sqlite")]
const SQLITE_LOCKED: i64 = 6;
#[cfg(feature = "sqlite")]
const SQLITE_IOERR: i64 = 10;
#[cfg(feature = "sqlite")]
const SQLITE_CORRUPT: i64 = 11;
#[cfg(feature = "sqlite")]
const SQLITE_FULL: i64 = 13;
#[cfg(feature = "sqlite")]
const SQLITE_CANTOPEN: i64 = 14;
#[cfg(feature = "sqlite")]
const SQLITE_NOTADB: i64 = 26;

#[cfg(feature = "sqlite")]
fn sqlite_primary_code(db: &dyn sqlx::error::DatabaseError) -> Option<i64> {
    use sqlx::error::DatabaseError as _;
    let e = db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    // The driver reports the extended code; its low byte is the primary one.
    e.code().and_then(|c| c.parse::<i64>().ok()).map(|c| c & 0xff)
}

fn database_unavailable(db: &dyn sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "sqlite")]
    if let Some(code) = sqlite_primary_code(db) {
        return matches!(code, SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN);
    }
    #[cfg(feature = "postgres")]
    if let Some(e) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // SQLSTATE classes 08 (connection exception) and 53 (insufficient resources, e.g. too many
        // connections); 57P01-57P05 (admin or crash shutdown, cannot connect now, idle timeouts).
        let code = e.code();
        return code.starts_with("08") || code.starts_with("53") || code.starts_with("57P");
    }
    false
}

fn database_corrupt(db: &dyn sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "sqlite")]
    if let Some(code) = sqlite_primary_code(db) {
        return matches!(code, SQLITE_CORRUPT | SQLITE_NOTADB);
    }
    #[cfg(feature = "postgres")]
    if let Some(e) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // Class XX: internal error, data_corrupted, index_corrupted.
        return e.code().starts_with("XX00");
    }
    false
}

/// Maps a Redis error.
#[cfg(feature = "redis")]
pub(crate) fn redis(e: ::redis::RedisError) -> StoreError {
    use ::redis::{ErrorKind, ServerErrorKind};
    let message = e.to_string();
    if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
        return StoreError::Unavailable(message);
    }
    match e.kind() {
        ErrorKind::ClusterConnectionNotFound
        | ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::TryAgain,
        ) => StoreError::Unavailable(message),
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Corrupt(message),
        _ => StoreError::Other(message),
    }
}

/// The error for a value that came back but breaks the schema's promise.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
