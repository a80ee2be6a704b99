//! What is particular to PostgreSQL, and only that: opening the pool, the embedded migrations, how a
//! writing transaction begins, and how ids and instants are stored (native uuid and timestamptz).
//!
//! Every item here has a namesake in `sqlite.rs`; the shared queries reach them through `on_pool!`.

use std::str::FromStr;
use std::time::Duration;

use palisade_core::store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use time::OffsetDateTime;

use crate::error;

/// The backend's name, for diagnostics.
pub(crate) const BACKEND: &str = "postgres";

/// `migrations/postgres`, embedded at build time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Read committed: every multi-statement operation is written so that row locks serialize it.
/// Reads the unresolved incident of cause `$1` and subject `$2` inside `raise_incident`'s
/// transaction. PostgreSQL locks the row, so concurrent attachers take turns and none loses another's events.
pub(crate) const OPEN_INCIDENT: &str = "SELECT id, cause, subject, severity, state, title, details, events, \
     occurrences, opened_at, last_seen_at, updated_at, updated_by FROM incidents \
     WHERE cause = $1 AND subject = $2 AND state <> 'resolved' FOR UPDATE";

pub(crate) const BEGIN_WRITE: &str = "BEGIN";

/// `audit_counts`: `$1` since and `$2` until, `$3` the bucket in microseconds. The offset from
/// `since` is taken in whole microseconds (exact: `extract` gives a numeric) and divided as
/// integers, never as a numeric quotient, which is rounded to some 16 digits and far from `since`
/// (30-day buckets 1,000 years on) rounds a hair under the next slice up into it.
pub(crate) const AUDIT_COUNTS: &str = "SELECT (extract(epoch FROM at - $1) * 1000000)::bigint / $3 AS bucket, \
     kind, outcome, COUNT(*) AS n FROM audit_log WHERE at >= $1 AND at < $2 GROUP BY 1, 2, 3";

/// `incident_counts`: as `AUDIT_COUNTS`, over the incidents' `opened_at`.
pub(crate) const INCIDENT_COUNTS: &str = "SELECT (extract(epoch FROM opened_at - $1) * 1000000)::bigint / $3 \
     AS bucket, cause, COUNT(*) AS n FROM incidents WHERE opened_at >= $1 AND opened_at < $2 GROUP BY 1, 2";

/// Appended to a text column in `ORDER BY`: byte order, as SQLite's, not the database's collation.
pub(crate) const BYTE_ORDER: &str = " COLLATE \"C\"";

/// What a unique violation (`error::unique_violation`) names when a username is taken.
pub(crate) const USERNAME_TAKEN: &str = "users_username_key";

/// What a unique violation names when an e-mail address is taken.
pub(crate) const EMAIL_TAKEN: &str = "users_email_key";

/// Rotates a live refresh token in one statement (the plan is in `refresh_token.rs`): a conditional
/// `UPDATE … RETURNING` marks the presented token spent if it is live — concurrent callers queue on
/// its row lock and re-check the condition once it is free — and feeds the child's `INSERT`.
/// `$1` presented hash, `$2` now, `$3` grace cutoff, `$4` child hash, `$5` child expiry.
pub(crate) const ROTATE: &str = concat!(
    "WITH spent AS (UPDATE refresh_tokens SET spent_at = COALESCE(spent_at, $2) WHERE ",
    super::refresh_token::presented_is_live!(),
    " RETURNING hash, family_id, user_id, session_id) \
     INSERT INTO refresh_tokens (hash, family_id, parent, user_id, session_id, issued_at, expires_at) \
     SELECT $4, family_id, hash, user_id, session_id, $2, $5 FROM spent \
     RETURNING family_id, user_id, session_id"
);

/// Reads a hot-store counter inside `hit_windows`' transaction and locks its row: concurrent
/// callers on that key queue here, and each then reads the latest committed count. `$1` key.
pub(crate) const HIT_READ: &str =
    "SELECT counter, value IS NOT NULL, expires_at_ms FROM hot_entries WHERE key = $1 FOR UPDATE";

/// How a uuid is stored: natively.
pub(crate) type StoredId = uuid::Uuid;

/// How an instant is stored: timestamptz (microsecond precision).
pub(crate) type StoredInstant = OffsetDateTime;

pub(crate) fn id(id: uuid::Uuid) -> StoredId {
    id
}

/// Truncated to the microsecond here, as the audit MAC reads it, rather than trusting the driver's
/// encoding to truncate too (PostgreSQL itself rounds sub-microsecond input).
pub(crate) fn instant(at: OffsetDateTime) -> Result<StoredInstant, StoreError> {
    super::from_unix_micros(super::unix_micros(at)?)
}

/// How long a caller may wait for a pooled connection (including connecting) before the store
/// counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    // The parser's messages name the faulty part, never the whole URL.
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid PostgreSQL URL: {e}")))?
        .application_name("palisade");
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(error::sql)
}

pub(crate) async fn migrations_table_exists(conn: &mut sqlx::PgConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(conn).await.map_err(error::sql)
}

/// Reads stored ids and instants back.
impl super::durable::Stored for uuid::Uuid {
    type Output = uuid::Uuid;
    fn into_domain(self) -> Result<uuid::Uuid, StoreError> {
        Ok(self)
    }
}

impl super::durable::Stored for OffsetDateTime {
    type Output = OffsetDateTime;
    fn into_domain(self) -> Result<OffsetDateTime, StoreError> {
        Ok(self)
    }
}

/// A user's OAuth consents in client-id byte order.
pub(crate) const OAUTH_CONSENTS_OF: &str =
    "SELECT client_id, scopes, granted_at FROM oauth_consents WHERE user_id = $1 ORDER BY client_id COLLATE \"C\"";
