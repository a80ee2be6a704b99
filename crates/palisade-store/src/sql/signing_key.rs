//! The signing-key store's queries, written once for both dialects.
//!
//! As with data keys, `UNIQUE (algorithm, version)` lets one instance create a version: `ON CONFLICT
//! (algorithm, version) DO NOTHING` turns losing into `false`, while a reused `kid` stays an error.
//! Retiring only ever moves the retirement earlier, so a late or repeated call cannot bring a
//! retired key back to signing.

use async_trait::async_trait;
use palisade_core::store::{SigningKeyStore, StoreError};
use palisade_core::token::SigningKeyRecord;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const INSERT: &str = "INSERT INTO signing_keys \
     (kid, algorithm, version, private_key, public_jwk, created_at, retired_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (algorithm, version) DO NOTHING";

const SELECT_ALL: &str = "SELECT kid, algorithm, version, private_key, public_jwk, created_at, retired_at \
     FROM signing_keys ORDER BY created_at, algorithm, version";

const RETIRE: &str = "UPDATE signing_keys \
     SET retired_at = CASE WHEN retired_at IS NULL OR retired_at > $2 THEN $2 ELSE retired_at END \
     WHERE kid = $1";

/// A `signing_keys` row, generic over how the dialect stores instants.
#[derive(sqlx::FromRow)]
struct SigningKeyRow<At> {
    kid: String,
    algorithm: String,
    version: i32,
    private_key: String,
    public_jwk: Option<String>,
    created_at: At,
    retired_at: Option<At>,
}

impl<At: Stored<Output = time::OffsetDateTime>> SigningKeyRow<At> {
    fn into_domain(self) -> Result<SigningKeyRecord, StoreError> {
        Ok(SigningKeyRecord {
            version: u32::try_from(self.version)
                .map_err(|_| error::corrupt(format!("signing key {} has version {}", self.kid, self.version)))?,
            kid: self.kid,
            algorithm: self.algorithm,
            private_key: self.private_key,
            public_jwk: self.public_jwk,
            created_at: self.created_at.into_domain()?,
            retired_at: self.retired_at.map(Stored::into_domain).transpose()?,
        })
    }
}

#[async_trait]
impl SigningKeyStore for SqlStore {
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError> {
        let version = i32::try_from(key.version).map_err(|_| {
            StoreError::Other(format!("signing key version {} is out of the storable range", key.version))
        })?;
        let result = on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT)
                .bind(&key.kid)
                .bind(&key.algorithm)
                .bind(version)
                .bind(&key.private_key)
                .bind(key.public_jwk.as_deref())
                .bind(d::instant(key.created_at)?)
                .bind(key.retired_at.map(d::instant).transpose()?)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, SigningKeyRow<d::StoredInstant>>(SELECT_ALL)
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(SigningKeyRow::into_domain).collect()
        })
    }

    async fn retire_signing_key(&self, kid: &str, at: time::OffsetDateTime) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(RETIRE).bind(kid).bind(d::instant(at)?);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }
}
