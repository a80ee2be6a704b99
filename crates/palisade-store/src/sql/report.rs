//! The counts behind the compliance reports, written once for both dialects. Each method is one
//! statement that counts in the database: a report never lists users.
//!
//! - `account_counts`: every account, those with a confirmed second factor or a passkey (two
//!   `EXISTS` probes on the `(user_id, kind)` key of `mfa_factors` and `passkeys_user_id`), the
//!   administrators and their share of those, and the hashes that are not Argon2id. `admin` is an
//!   integer in SQLite and a boolean in PostgreSQL; `WHERE admin` reads both.
//!
//! Consent coverage is `ConsentStore::count_live_consents` (`consent.rs`).

use async_trait::async_trait;
use palisade_core::compliance::report::AccountCounts;
use palisade_core::store::{ComplianceStatsStore, StoreError};

use super::{SqlStore, on_pool};
use crate::error;

/// `$1`: the prefix of an Argon2id PHC string.
const ACCOUNTS: &str = "SELECT \
       (SELECT COUNT(*) FROM users) AS users, \
       (SELECT COUNT(*) FROM users u WHERE \
           EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = u.id AND f.confirmed_at IS NOT NULL) \
           OR EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id)) AS users_with_mfa, \
       (SELECT COUNT(*) FROM users WHERE admin) AS admins, \
       (SELECT COUNT(*) FROM users u WHERE u.admin AND ( \
           EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = u.id AND f.confirmed_at IS NOT NULL) \
           OR EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id))) AS admins_with_mfa, \
       (SELECT COUNT(*) FROM users WHERE password_hash NOT LIKE $1) AS other_hashes";

/// `LIKE` pattern of an Argon2id hash (`$` and `a`–`z` are not wildcards).
const ARGON2ID: &str = "$argon2id$%";

#[derive(sqlx::FromRow)]
struct AccountRow {
    users: i64,
    users_with_mfa: i64,
    admins: i64,
    admins_with_mfa: i64,
    other_hashes: i64,
}

fn count(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| error::corrupt(format!("a count of {what} is negative ({n})")))
}

#[async_trait]
impl ComplianceStatsStore for SqlStore {
    async fn account_counts(&self) -> Result<AccountCounts, StoreError> {
        let row = on_pool!(self.pool(), |pool, _d| {
            sqlx::query_as::<_, AccountRow>(ACCOUNTS).bind(ARGON2ID).fetch_one(pool).await.map_err(error::sql)?
        });
        Ok(AccountCounts {
            users: count(row.users, "users")?,
            users_with_mfa: count(row.users_with_mfa, "users with MFA")?,
            admins: count(row.admins, "administrators")?,
            admins_with_mfa: count(row.admins_with_mfa, "administrators with MFA")?,
            other_hashes: count(row.other_hashes, "hashes")?,
        })
    }
}
