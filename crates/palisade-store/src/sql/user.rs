//! The user store's queries: accounts and their password history, written once for both dialects.
//!
//! - `insert_user` is one INSERT; the schema's unique constraints settle races between instances,
//!   and only a violation of the username or e-mail constraint (named per dialect) reads as "taken".
//!   Any other failure, a reused id included, stays an error.
//! - `change_password` is one transaction: a compare-and-set UPDATE on the hash (which takes the
//!   user's row lock, so concurrent changes serialize and the losers match nothing), then — when
//!   history is kept — the old hash (which is `expected`, since the UPDATE matched it) pushed at the
//!   next position and the history trimmed. A failed compare writes nothing.
//! - `rehash_password` and `set_user_locked` are one conditional UPDATE each.
//!
//! Hashes are compared by the database: they are PHC strings with their own salt, read by the caller
//! from this store, not secrets an attacker supplies, so the comparison's timing tells nothing.

use async_trait::async_trait;
use palisade_core::store::{StoreError, UserStore};
use palisade_core::user::{Email, User, UserId, UserInsert, Username};

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const INSERT_USER: &str = "INSERT INTO users \
     (id, username, email, password_hash, password_changed_at, created_at, locked, admin) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const USER_BY_ID: &str = "SELECT id, username, email, password_hash, password_changed_at, created_at, locked, admin \
     FROM users WHERE id = $1";

const USER_BY_USERNAME: &str = "SELECT id, username, email, password_hash, password_changed_at, created_at, locked, admin \
     FROM users WHERE username = $1";

const LIST_USERS: &str = "SELECT id, username, email, password_hash, password_changed_at, created_at, locked, admin \
     FROM users ORDER BY id LIMIT $1";

const LIST_USERS_AFTER: &str = "SELECT id, username, email, password_hash, password_changed_at, created_at, locked, admin \
     FROM users WHERE id > $1 ORDER BY id LIMIT $2";

const SET_LOCKED: &str = "UPDATE users SET locked = $2 WHERE id = $1";

const SET_ADMIN: &str = "UPDATE users SET admin = $2 WHERE id = $1";

/// The compare-and-set of `change_password`: matches only while the hash is still the expected one.
const CHANGE_HASH: &str =
    "UPDATE users SET password_hash = $3, password_changed_at = $4 WHERE id = $1 AND password_hash = $2";

/// The compare-and-set of `rehash_password`: the hash only, not when the password was set.
const REHASH: &str = "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2";

/// Pushes the replaced hash at the next position (1 for the first). Safe from duplicate positions:
/// it runs after `CHANGE_HASH` in the same transaction, which holds the user's row lock (PostgreSQL)
/// or the database's write lock (SQLite); the primary key would refuse a duplicate anyway.
const PUSH_HISTORY: &str = "INSERT INTO password_history (user_id, position, hash, replaced_at) \
     SELECT $1, COALESCE(MAX(position), 0) + 1, $2, $3 FROM password_history WHERE user_id = $1";

/// Keeps the newest `$2` entries.
const TRIM_HISTORY: &str = "DELETE FROM password_history WHERE user_id = $1 \
     AND position <= (SELECT MAX(position) FROM password_history WHERE user_id = $1) - $2";

const HISTORY: &str = "SELECT hash FROM password_history WHERE user_id = $1 ORDER BY position DESC LIMIT $2";

/// A `users` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct UserRow<Id, At> {
    id: Id,
    username: String,
    email: Option<String>,
    password_hash: String,
    password_changed_at: At,
    created_at: At,
    locked: bool,
    admin: bool,
}

impl<Id, At> UserRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<User, StoreError> {
        let id = self.id.into_domain()?;
        Ok(User {
            id: UserId::from_uuid(id),
            username: Username::parse(&self.username)
                .map_err(|e| error::corrupt(format!("user {id} has an invalid username ({e})")))?,
            email: self
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| error::corrupt(format!("user {id} has an invalid e-mail address ({e})")))?,
            password_hash: self.password_hash,
            password_changed_at: self.password_changed_at.into_domain()?,
            created_at: self.created_at.into_domain()?,
            locked: self.locked,
            admin: self.admin,
        })
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, user: &User) -> Result<UserInsert, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let inserted = sqlx::query(INSERT_USER)
                .bind(d::id(user.id.as_uuid()))
                .bind(user.username.as_str())
                .bind(user.email.as_ref().map(Email::as_str))
                .bind(&user.password_hash)
                .bind(d::instant(user.password_changed_at)?)
                .bind(d::instant(user.created_at)?)
                .bind(user.locked)
                .bind(user.admin)
                .execute(pool)
                .await;
            match inserted {
                Ok(_) => Ok(UserInsert::Inserted),
                Err(e) => match error::unique_violation(&e) {
                    Some(d::USERNAME_TAKEN) => Ok(UserInsert::UsernameTaken),
                    Some(d::EMAIL_TAKEN) => Ok(UserInsert::EmailTaken),
                    _ => Err(error::sql(e)),
                },
            }
        })
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, UserRow<d::StoredId, d::StoredInstant>>(USER_BY_ID)
                .bind(d::id(id.as_uuid()))
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(UserRow::into_domain)
                .transpose()
        })
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, UserRow<d::StoredId, d::StoredInstant>>(USER_BY_USERNAME)
                .bind(username.as_str())
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(UserRow::into_domain)
                .transpose()
        })
    }

    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let query = match after {
                None => sqlx::query_as::<_, UserRow<d::StoredId, d::StoredInstant>>(LIST_USERS),
                Some(after) => sqlx::query_as(LIST_USERS_AFTER).bind(d::id(after.as_uuid())),
            };
            let rows = query.bind(i64::from(limit)).fetch_all(pool).await.map_err(error::sql)?;
            rows.into_iter().map(UserRow::into_domain).collect()
        })
    }

    async fn set_user_locked(&self, id: UserId, locked: bool) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(SET_LOCKED).bind(d::id(id.as_uuid())).bind(locked);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn set_user_admin(&self, id: UserId, admin: bool) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(SET_ADMIN).bind(d::id(id.as_uuid())).bind(admin);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn change_password(
        &self,
        id: UserId,
        expected: &str,
        new_hash: &str,
        changed_at: time::OffsetDateTime,
        keep_history: u32,
    ) -> Result<bool, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let (user, changed_at) = (d::id(id.as_uuid()), d::instant(changed_at)?);
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let changed = sqlx::query(CHANGE_HASH)
                .bind(user)
                .bind(expected)
                .bind(new_hash)
                .bind(changed_at)
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?
                .rows_affected();
            if changed != 1 {
                // Dropping the transaction rolls it back; nothing was written.
                return Ok(false);
            }
            if keep_history > 0 {
                let push = sqlx::query(PUSH_HISTORY).bind(user).bind(expected).bind(changed_at);
                push.execute(&mut *tx).await.map_err(error::sql)?;
                let trim = sqlx::query(TRIM_HISTORY).bind(user).bind(i64::from(keep_history));
                trim.execute(&mut *tx).await.map_err(error::sql)?;
            }
            tx.commit().await.map_err(error::sql)?;
            Ok(true)
        })
    }

    async fn rehash_password(&self, id: UserId, expected: &str, new_hash: &str) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(REHASH).bind(d::id(id.as_uuid())).bind(expected).bind(new_hash);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn password_history(&self, id: UserId, limit: u32) -> Result<Vec<String>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_scalar(HISTORY).bind(d::id(id.as_uuid())).bind(i64::from(limit)).fetch_all(pool).await
        })
        .map_err(error::sql)
    }
}
