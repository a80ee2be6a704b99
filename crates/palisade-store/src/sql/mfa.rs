//! The MFA store's queries: second factors and backup codes, written once for both dialects
//! (passkeys have `passkey.rs`; `delete_all_factors` deletes them too).
//!
//! - `put_pending_factor` is one upsert on `UNIQUE (user_id, kind)` whose update only matches a
//!   pending row: a new setup replaces a pending factor (new id, secret and creation time) and
//!   leaves a confirmed one alone, reporting `false`. A reused id is an error (the primary key).
//! - `confirm_factor` and `use_backup_code` are one conditional UPDATE each. PostgreSQL re-checks
//!   the condition on the latest row version after waiting for a concurrent writer, and SQLite runs
//!   writes one at a time, so of concurrent callers exactly one matches.
//! - `delete_factor`, `delete_all_factors` and `replace_backup_codes` (and the passkey store's
//!   `delete_passkey`) are one transaction each, whose first statement is `LOCK_USER`: an UPDATE of
//!   the user's row that changes nothing. On PostgreSQL (read committed) that row lock makes these
//!   transactions run one at a time per user, and each later statement reads what the one before
//!   committed. Without it, two removals of a user's last two confirmed factors or passkeys (or of
//!   the last factor and the last passkey) could each still see the other one and both keep the
//!   backup codes, and two regenerations could collide on the new codes' indices. The lock is on
//!   the user's row, not on their factors' rows, because it must exist whatever the user has: a
//!   user with passkeys and no factor has no factor row to lock. It is the row lock PostgreSQL
//!   takes for an UPDATE that leaves the keys alone (`FOR NO KEY UPDATE`), so it neither waits for
//!   nor holds up the foreign-key checks of rows being inserted for the user, and `locked` is in no
//!   index, so PostgreSQL can update the row in place. SQLite needs none of it (`BEGIN IMMEDIATE`
//!   holds the database's write lock); there the lock is a no-op write.
//! - `factors` come back in [`FactorKind`]'s order, `unused_backup_codes` by index.
//!
//! Backup-code hashes are compared by the database: the caller passes a hash it read from this
//! store after checking the code in constant time, not a value an attacker supplies, so the
//! comparison's timing tells nothing.

use async_trait::async_trait;
use palisade_core::mfa::{BackupCodeRecord, FactorKind, FactorRecord};
use palisade_core::store::{MfaStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

/// Inserts a pending factor, or replaces the user's factor of that kind while it is pending.
const PUT_PENDING: &str = "INSERT INTO mfa_factors (id, user_id, kind, sealed, created_at, confirmed_at) \
     VALUES ($1, $2, $3, $4, $5, NULL) \
     ON CONFLICT (user_id, kind) DO UPDATE \
     SET id = excluded.id, sealed = excluded.sealed, created_at = excluded.created_at \
     WHERE mfa_factors.confirmed_at IS NULL";

/// Matches only the pending factor `$2` of user `$1`.
const CONFIRM: &str =
    "UPDATE mfa_factors SET confirmed_at = $3 WHERE user_id = $1 AND id = $2 AND confirmed_at IS NULL";

const FACTORS: &str = "SELECT id, user_id, kind, sealed, created_at, confirmed_at FROM mfa_factors WHERE user_id = $1";

/// Takes the row lock of user `$1` (PostgreSQL) and changes nothing: the per-user lock of every
/// transaction that deletes factors, passkeys or backup codes, or replaces the codes.
pub(super) const LOCK_USER: &str = "UPDATE users SET locked = locked WHERE id = $1";

const DELETE_FACTOR: &str = "DELETE FROM mfa_factors WHERE user_id = $1 AND kind = $2";

const DELETE_FACTORS: &str = "DELETE FROM mfa_factors WHERE user_id = $1";

const DELETE_PASSKEYS: &str = "DELETE FROM passkeys WHERE user_id = $1";

/// Deletes the backup codes of user `$1` when no confirmed factor and no passkey is left.
pub(super) const DELETE_ORPHAN_CODES: &str = "DELETE FROM mfa_backup_codes WHERE user_id = $1 \
     AND NOT EXISTS (SELECT 1 FROM mfa_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL) \
     AND NOT EXISTS (SELECT 1 FROM passkeys WHERE user_id = $1)";

const DELETE_CODES: &str = "DELETE FROM mfa_backup_codes WHERE user_id = $1";

const INSERT_CODES: &str = "INSERT INTO mfa_backup_codes (user_id, idx, code_hash, hash_key_id, created_at, used_at) ";

const UNUSED_CODES: &str = "SELECT user_id, idx, code_hash, hash_key_id, created_at, used_at FROM mfa_backup_codes \
     WHERE user_id = $1 AND used_at IS NULL ORDER BY idx";

/// Matches only code `$2` of user `$1` while it is unused and still has the hash `$3`.
const USE_CODE: &str = "UPDATE mfa_backup_codes SET used_at = $4 \
     WHERE user_id = $1 AND idx = $2 AND code_hash = $3 AND used_at IS NULL";

/// An `mfa_factors` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
pub(super) struct FactorRow<Id, At> {
    id: Id,
    user_id: Id,
    kind: String,
    sealed: String,
    created_at: At,
    confirmed_at: Option<At>,
}

impl<Id, At> FactorRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    pub(super) fn into_domain(self) -> Result<FactorRecord, StoreError> {
        let id = self.id.into_domain()?;
        Ok(FactorRecord {
            id,
            user_id: UserId::from_uuid(self.user_id.into_domain()?),
            kind: FactorKind::parse(&self.kind)
                .ok_or_else(|| error::corrupt(format!("MFA factor {id} has unknown kind {:?}", self.kind)))?,
            sealed: self.sealed,
            created_at: self.created_at.into_domain()?,
            confirmed_at: self.confirmed_at.map(Stored::into_domain).transpose()?,
        })
    }
}

/// An `mfa_backup_codes` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct BackupCodeRow<Id, At> {
    user_id: Id,
    idx: i32,
    code_hash: Vec<u8>,
    hash_key_id: Id,
    created_at: At,
    used_at: Option<At>,
}

impl<Id, At> BackupCodeRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<BackupCodeRecord, StoreError> {
        let user_id = UserId::from_uuid(self.user_id.into_domain()?);
        Ok(BackupCodeRecord {
            user_id,
            index: u8::try_from(self.idx)
                .map_err(|_| error::corrupt(format!("backup code of user {user_id} has index {}", self.idx)))?,
            hash: self.code_hash,
            hash_key_id: self.hash_key_id.into_domain()?,
            created_at: self.created_at.into_domain()?,
            used_at: self.used_at.map(Stored::into_domain).transpose()?,
        })
    }
}

#[async_trait]
impl MfaStore for SqlStore {
    async fn put_pending_factor(&self, factor: &FactorRecord) -> Result<bool, StoreError> {
        if factor.confirmed_at.is_some() {
            return Err(StoreError::Other("a factor awaiting confirmation cannot be confirmed already".into()));
        }
        let result = on_pool!(self.pool(), |pool, d| {
            sqlx::query(PUT_PENDING)
                .bind(d::id(factor.id))
                .bind(d::id(factor.user_id.as_uuid()))
                .bind(factor.kind.as_str())
                .bind(&factor.sealed)
                .bind(d::instant(factor.created_at)?)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn confirm_factor(&self, user: UserId, id: uuid::Uuid, at: time::OffsetDateTime) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(CONFIRM).bind(d::id(user.as_uuid())).bind(d::id(id)).bind(d::instant(at)?);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn factors(&self, user: UserId) -> Result<Vec<FactorRecord>, StoreError> {
        let mut factors = on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, FactorRow<d::StoredId, d::StoredInstant>>(FACTORS)
                .bind(d::id(user.as_uuid()))
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(FactorRow::into_domain).collect::<Result<Vec<_>, _>>()
        })?;
        factors.sort_by_key(|f| f.kind);
        Ok(factors)
    }

    async fn delete_factor(&self, user: UserId, kind: FactorKind) -> Result<bool, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let user = d::id(user.as_uuid());
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            sqlx::query(LOCK_USER).bind(user).execute(&mut *tx).await.map_err(error::sql)?;
            let deleted = sqlx::query(DELETE_FACTOR)
                .bind(user)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?
                .rows_affected();
            if deleted == 0 {
                // No such factor: dropping the transaction rolls it back, and nothing changes.
                return Ok(false);
            }
            sqlx::query(DELETE_ORPHAN_CODES).bind(user).execute(&mut *tx).await.map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)?;
            Ok(true)
        })
    }

    async fn delete_all_factors(&self, user: UserId) -> Result<u64, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let user = d::id(user.as_uuid());
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            sqlx::query(LOCK_USER).bind(user).execute(&mut *tx).await.map_err(error::sql)?;
            let factors =
                sqlx::query(DELETE_FACTORS).bind(user).execute(&mut *tx).await.map_err(error::sql)?.rows_affected();
            let passkeys =
                sqlx::query(DELETE_PASSKEYS).bind(user).execute(&mut *tx).await.map_err(error::sql)?.rows_affected();
            sqlx::query(DELETE_CODES).bind(user).execute(&mut *tx).await.map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)?;
            Ok(factors + passkeys)
        })
    }

    async fn replace_backup_codes(&self, user: UserId, codes: &[BackupCodeRecord]) -> Result<(), StoreError> {
        if let Some(other) = codes.iter().find(|c| c.user_id != user) {
            return Err(StoreError::Other(format!(
                "backup code {} of user {} is in a set for user {user}",
                other.index, other.user_id
            )));
        }
        on_pool!(self.pool(), |pool, d| {
            let user = d::id(user.as_uuid());
            let mut rows = Vec::with_capacity(codes.len());
            for code in codes {
                let used_at = code.used_at.map(d::instant).transpose()?;
                rows.push((code, d::id(code.hash_key_id), d::instant(code.created_at)?, used_at));
            }
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            sqlx::query(LOCK_USER).bind(user).execute(&mut *tx).await.map_err(error::sql)?;
            sqlx::query(DELETE_CODES).bind(user).execute(&mut *tx).await.map_err(error::sql)?;
            if !rows.is_empty() {
                // One multi-row INSERT; a duplicate index fails it, and the whole transaction with it.
                let mut insert = sqlx::QueryBuilder::new(INSERT_CODES);
                insert.push_values(&rows, |mut row, (code, hash_key_id, created_at, used_at)| {
                    row.push_bind(user)
                        .push_bind(i32::from(code.index))
                        .push_bind(&code.hash)
                        .push_bind(*hash_key_id)
                        .push_bind(*created_at)
                        .push_bind(*used_at);
                });
                insert.build().execute(&mut *tx).await.map_err(error::sql)?;
            }
            tx.commit().await.map_err(error::sql)
        })
    }

    async fn unused_backup_codes(&self, user: UserId) -> Result<Vec<BackupCodeRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, BackupCodeRow<d::StoredId, d::StoredInstant>>(UNUSED_CODES)
                .bind(d::id(user.as_uuid()))
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(BackupCodeRow::into_domain).collect()
        })
    }

    async fn use_backup_code(
        &self,
        user: UserId,
        index: u8,
        hash: &[u8],
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            sqlx::query(USE_CODE)
                .bind(d::id(user.as_uuid()))
                .bind(i32::from(index))
                .bind(hash)
                .bind(d::instant(at)?)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }
}
