//! The passkey store's queries, written once for both dialects.
//!
//! - `insert_passkey` is one INSERT that does nothing on a taken credential id: a credential
//!   registered already, to anyone, reports `false` and is left as it was. An unknown user is an
//!   error (the foreign key).
//! - `update_passkey` is one conditional UPDATE that matches only while the stored form is still
//!   the `expected` text. PostgreSQL re-checks the condition on the latest row version after waiting
//!   for a concurrent writer, and SQLite runs writes one at a time, so of concurrent uses that
//!   started from one form exactly one updates, and a signature counter the store holds never moves
//!   back.
//! - `rename_passkey` is one UPDATE that matches only the owner's passkey.
//! - `delete_passkey` is one transaction that begins with the MFA store's per-user lock (see
//!   `mfa.rs`, which says why): it deletes the owner's passkey and, when the user has no confirmed
//!   factor and no passkey left, their backup codes.
//! - `passkeys` come back oldest first (ties by credential id), on the `(user_id, created_at)`
//!   index.
//!
//! The stored form is compared by the database: it holds a public key and a counter, nothing
//! secret, so the comparison's timing tells nothing.

use async_trait::async_trait;
use palisade_core::mfa::PasskeyRecord;
use palisade_core::store::{PasskeyStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::mfa::{DELETE_ORPHAN_CODES, LOCK_USER};
use super::{SqlStore, on_pool};
use crate::error;

/// Inserts a passkey unless its credential id is taken, by anyone.
const INSERT: &str = "INSERT INTO passkeys (credential_id, user_id, name, passkey, created_at, last_used_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING";

/// The columns every read selects, in `PasskeyRow`'s order.
macro_rules! columns {
    () => {
        "SELECT credential_id, user_id, name, passkey, created_at, last_used_at FROM passkeys "
    };
}

const OF_USER: &str = concat!(columns!(), "WHERE user_id = $1 ORDER BY created_at, credential_id");

const BY_ID: &str = concat!(columns!(), "WHERE credential_id = $1");

/// Matches only while the stored form of passkey `$1` is still `$2`.
const UPDATE: &str = "UPDATE passkeys SET passkey = $3, last_used_at = $4 WHERE credential_id = $1 AND passkey = $2";

/// Matches only passkey `$2` of user `$1`.
const RENAME: &str = "UPDATE passkeys SET name = $3 WHERE user_id = $1 AND credential_id = $2";

/// Matches only passkey `$2` of user `$1`.
const DELETE: &str = "DELETE FROM passkeys WHERE user_id = $1 AND credential_id = $2";

/// A `passkeys` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct PasskeyRow<Id, At> {
    credential_id: Vec<u8>,
    user_id: Id,
    name: String,
    passkey: String,
    created_at: At,
    last_used_at: Option<At>,
}

impl<Id, At> PasskeyRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<PasskeyRecord, StoreError> {
        Ok(PasskeyRecord {
            credential_id: self.credential_id,
            user_id: UserId::from_uuid(self.user_id.into_domain()?),
            name: self.name,
            passkey: self.passkey,
            created_at: self.created_at.into_domain()?,
            last_used_at: self.last_used_at.map(Stored::into_domain).transpose()?,
        })
    }
}

#[async_trait]
impl PasskeyStore for SqlStore {
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT)
                .bind(&passkey.credential_id)
                .bind(d::id(passkey.user_id.as_uuid()))
                .bind(&passkey.name)
                .bind(&passkey.passkey)
                .bind(d::instant(passkey.created_at)?)
                .bind(passkey.last_used_at.map(d::instant).transpose()?)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn passkeys(&self, user: UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, PasskeyRow<d::StoredId, d::StoredInstant>>(OF_USER)
                .bind(d::id(user.as_uuid()))
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(PasskeyRow::into_domain).collect()
        })
    }

    async fn passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, PasskeyRow<d::StoredId, d::StoredInstant>>(BY_ID)
                .bind(credential_id)
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(PasskeyRow::into_domain)
                .transpose()
        })
    }

    async fn update_passkey(
        &self,
        credential_id: &[u8],
        expected: &str,
        passkey: &str,
        used_at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(UPDATE).bind(credential_id).bind(expected).bind(passkey).bind(d::instant(used_at)?);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn rename_passkey(&self, user: UserId, credential_id: &[u8], name: &str) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(RENAME).bind(d::id(user.as_uuid())).bind(credential_id).bind(name);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn delete_passkey(&self, user: UserId, credential_id: &[u8]) -> Result<bool, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let user = d::id(user.as_uuid());
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            sqlx::query(LOCK_USER).bind(user).execute(&mut *tx).await.map_err(error::sql)?;
            let deleted = sqlx::query(DELETE)
                .bind(user)
                .bind(credential_id)
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?
                .rows_affected();
            if deleted == 0 {
                // Not the user's passkey: dropping the transaction rolls it back, and nothing changes.
                return Ok(false);
            }
            sqlx::query(DELETE_ORPHAN_CODES).bind(user).execute(&mut *tx).await.map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)?;
            Ok(true)
        })
    }
}
