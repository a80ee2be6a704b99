//! The API-key store's queries, written once for both dialects.
//!
//! - `insert_api_key` is one INSERT; a reused id is an error (the primary key).
//! - `revoke_api_key` is one conditional UPDATE: it matches only a live key of the given owner (any
//!   owner when none is given), so of concurrent revocations exactly one reports `true`.
//! - `restore_api_key` is one conditional UPDATE matching the revocation instant it lifts.
//! - `touch_api_key` is one conditional UPDATE that only moves `last_used_at` forward: a late or
//!   repeated touch cannot move it back.
//! - `api_keys` pages by id: ids are uuid v7, so id order is creation order.
//!
//! Scopes and the IP allow-list are stored as JSON arrays of strings (text, in both dialects).

use async_trait::async_trait;
use palisade_core::api_key::ApiKeyRecord;
use palisade_core::store::{ApiKeyStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const INSERT: &str = "INSERT INTO api_keys \
     (id, owner, name, secret_hash, hash_key_id, scopes, ip_allow, per_minute, per_hour, per_day, \
      created_at, expires_at, last_used_at, revoked_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// Lifts exactly the revocation made at `$2`.
const RESTORE: &str = "UPDATE api_keys SET revoked_at = NULL WHERE id = $1 AND revoked_at = $2";

/// The columns every read selects, in `ApiKeyRow`'s order.
macro_rules! columns {
    () => {
        "SELECT id, owner, name, secret_hash, hash_key_id, scopes, ip_allow, per_minute, per_hour, per_day, \
         created_at, expires_at, last_used_at, revoked_at FROM api_keys "
    };
}

const BY_ID: &str = concat!(columns!(), "WHERE id = $1");
const LIST_ALL: &str = concat!(columns!(), "ORDER BY id LIMIT $1");
const LIST_ALL_AFTER: &str = concat!(columns!(), "WHERE id > $1 ORDER BY id LIMIT $2");
const LIST_OWNER: &str = concat!(columns!(), "WHERE owner = $1 ORDER BY id LIMIT $2");
const LIST_OWNER_AFTER: &str = concat!(columns!(), "WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3");

/// Matches only a live key, and only the owner's when `$2` is given.
const REVOKE: &str =
    "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND revoked_at IS NULL AND ($2 IS NULL OR owner = $2)";

/// Only ever moves `last_used_at` forward.
const TOUCH: &str =
    "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";

/// An `api_keys` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct ApiKeyRow<Id, At> {
    id: Id,
    owner: Id,
    name: String,
    secret_hash: Vec<u8>,
    hash_key_id: Id,
    scopes: String,
    ip_allow: String,
    per_minute: Option<i64>,
    per_hour: Option<i64>,
    per_day: Option<i64>,
    created_at: At,
    expires_at: Option<At>,
    last_used_at: Option<At>,
    revoked_at: Option<At>,
}

impl<Id, At> ApiKeyRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<ApiKeyRecord, StoreError> {
        let id = self.id.into_domain()?;
        let list = |what: &str, json: &str| {
            serde_json::from_str::<Vec<String>>(json)
                .map_err(|e| error::corrupt(format!("API key {id} has invalid {what} ({e})")))
        };
        let limit = |what: &str, n: Option<i64>| {
            n.map(|n| u32::try_from(n).map_err(|_| error::corrupt(format!("API key {id} has {what} {n}")))).transpose()
        };
        Ok(ApiKeyRecord {
            id,
            owner: UserId::from_uuid(self.owner.into_domain()?),
            name: self.name,
            secret_hash: self.secret_hash,
            hash_key_id: self.hash_key_id.into_domain()?,
            scopes: list("scopes", &self.scopes)?,
            ip_allow: list("ip_allow", &self.ip_allow)?,
            per_minute: limit("per_minute", self.per_minute)?,
            per_hour: limit("per_hour", self.per_hour)?,
            per_day: limit("per_day", self.per_day)?,
            created_at: self.created_at.into_domain()?,
            expires_at: self.expires_at.map(Stored::into_domain).transpose()?,
            last_used_at: self.last_used_at.map(Stored::into_domain).transpose()?,
            revoked_at: self.revoked_at.map(Stored::into_domain).transpose()?,
        })
    }
}

fn json_list(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Other(format!("cannot encode a list as JSON: {e}")))
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let (scopes, ip_allow) = (json_list(&key.scopes)?, json_list(&key.ip_allow)?);
        on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT)
                .bind(d::id(key.id))
                .bind(d::id(key.owner.as_uuid()))
                .bind(&key.name)
                .bind(&key.secret_hash)
                .bind(d::id(key.hash_key_id))
                .bind(&scopes)
                .bind(&ip_allow)
                .bind(key.per_minute.map(i64::from))
                .bind(key.per_hour.map(i64::from))
                .bind(key.per_day.map(i64::from))
                .bind(d::instant(key.created_at)?)
                .bind(key.expires_at.map(d::instant).transpose()?)
                .bind(key.last_used_at.map(d::instant).transpose()?)
                .bind(key.revoked_at.map(d::instant).transpose()?)
                .execute(pool)
                .await
                .map(drop)
                .map_err(error::sql)
        })
    }

    async fn api_key(&self, id: uuid::Uuid) -> Result<Option<ApiKeyRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, ApiKeyRow<d::StoredId, d::StoredInstant>>(BY_ID)
                .bind(d::id(id))
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(ApiKeyRow::into_domain)
                .transpose()
        })
    }

    async fn api_keys(
        &self,
        owner: Option<UserId>,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            type Row = ApiKeyRow<d::StoredId, d::StoredInstant>;
            let query = match (owner, after) {
                (None, None) => sqlx::query_as::<_, Row>(LIST_ALL),
                (None, Some(after)) => sqlx::query_as(LIST_ALL_AFTER).bind(d::id(after)),
                (Some(owner), None) => sqlx::query_as(LIST_OWNER).bind(d::id(owner.as_uuid())),
                (Some(owner), Some(after)) => {
                    sqlx::query_as(LIST_OWNER_AFTER).bind(d::id(owner.as_uuid())).bind(d::id(after))
                }
            };
            let rows = query.bind(i64::from(limit)).fetch_all(pool).await.map_err(error::sql)?;
            rows.into_iter().map(ApiKeyRow::into_domain).collect()
        })
    }

    async fn revoke_api_key(
        &self,
        id: uuid::Uuid,
        owner: Option<UserId>,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query =
                sqlx::query(REVOKE).bind(d::id(id)).bind(owner.map(|o| d::id(o.as_uuid()))).bind(d::instant(at)?);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn restore_api_key(&self, id: uuid::Uuid, revoked_at: time::OffsetDateTime) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(RESTORE).bind(d::id(id)).bind(d::instant(revoked_at)?);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn touch_api_key(&self, id: uuid::Uuid, at: time::OffsetDateTime) -> Result<(), StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(TOUCH).bind(d::id(id)).bind(d::instant(at)?);
            query.execute(pool).await.map(drop)
        })
        .map_err(error::sql)
    }
}
