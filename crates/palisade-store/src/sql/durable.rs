//! The durable store's queries for wrapped data keys and the audit chain, written once for both
//! dialects (accounts, refresh tokens and signing keys have modules of their own).
//!
//! A data key's `purpose` column holds its family's name (`KeyPurpose::name`: `data`, `audit`,
//! `class:restricted`, …); the schema's check lists the families, and a stored name this build
//! cannot parse reads as `StoreError::Corrupt`, never as absent.
//!
//! The races the ports describe are settled by the schema: `UNIQUE (purpose, version)` lets one
//! instance create a key version within its family, the primary key on `audit_log.seq` lets one
//! writer take a sequence number. `ON CONFLICT (that constraint) DO NOTHING` turns losing into
//! `false`; any other conflict (a reused key id or event id) stays an error, so a caller never
//! retries forever on a bug.

use async_trait::async_trait;
use palisade_core::audit::{AuditFilter, AuditRecord};
use palisade_core::crypto::{KeyPurpose, WrappedDataKey};
use palisade_core::store::{AuditStore, DurableStore, KeyStore, StoreError};

use super::{SqlStore, on_pool};
use crate::error;

/// A stored representation (of an id or an instant) that converts back to its domain type.
pub(crate) trait Stored {
    type Output;
    fn into_domain(self) -> Result<Self::Output, StoreError>;
}

const INSERT_DATA_KEY: &str = "INSERT INTO data_keys (id, purpose, version, provider, wrapped, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (purpose, version) DO NOTHING";

const SELECT_DATA_KEYS: &str = "SELECT id, purpose, version, provider, wrapped, created_at FROM data_keys \
     WHERE purpose = $1 ORDER BY version";

const SELECT_DATA_KEY: &str = "SELECT id, purpose, version, provider, wrapped, created_at FROM data_keys WHERE id = $1";

const DELETE_DATA_KEYS: &str = "DELETE FROM data_keys WHERE purpose = $1";
const SELECT_MIN_DECRYPTION_VERSION: &str = "SELECT min_decryption_version FROM key_families WHERE purpose = $1";
const UPSERT_MIN_DECRYPTION_VERSION: &str = "INSERT INTO key_families (purpose, min_decryption_version, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (purpose) DO UPDATE SET min_decryption_version = excluded.min_decryption_version, \
     updated_at = excluded.updated_at";

const INSERT_AUDIT: &str = "INSERT INTO audit_log \
     (seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, details, key_id, prev_mac, mac) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (seq) DO NOTHING";

const SELECT_AUDIT_HEAD: &str = "SELECT seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, \
     details, key_id, prev_mac, mac FROM audit_log ORDER BY seq DESC LIMIT 1";

const SELECT_AUDIT_AFTER: &str = "SELECT seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, \
     details, key_id, prev_mac, mac FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";

/// A `data_keys` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct DataKeyRow<Id, At> {
    id: Id,
    purpose: String,
    version: i32,
    provider: String,
    wrapped: Vec<u8>,
    created_at: At,
}

impl<Id, At> DataKeyRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<WrappedDataKey, StoreError> {
        let id = self.id.into_domain()?;
        Ok(WrappedDataKey {
            id,
            purpose: KeyPurpose::parse(&self.purpose).ok_or_else(|| {
                error::corrupt(format!(
                    "data key {id} belongs to key family {:?}, which this build does not know",
                    self.purpose
                ))
            })?,
            version: u32::try_from(self.version)
                .map_err(|_| error::corrupt(format!("data key {id} has version {}", self.version)))?,
            provider: self.provider,
            wrapped: self.wrapped,
            created_at: self.created_at.into_domain()?,
        })
    }
}

/// An `audit_log` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct AuditRow<Id, At> {
    seq: i64,
    id: Id,
    at: At,
    kind: String,
    outcome: String,
    actor: Option<String>,
    subject: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: String,
    key_id: Id,
    prev_mac: Vec<u8>,
    mac: Vec<u8>,
}

impl<Id, At> AuditRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<AuditRecord, StoreError> {
        Ok(AuditRecord {
            seq: self.seq,
            id: self.id.into_domain()?,
            at: self.at.into_domain()?,
            kind: self.kind,
            outcome: self.outcome,
            actor: self.actor,
            subject: self.subject,
            ip: self.ip,
            user_agent: self.user_agent,
            request_id: self.request_id,
            details: self.details,
            key_id: self.key_id.into_domain()?,
            prev_mac: self.prev_mac,
            mac: self.mac,
        })
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn insert_data_key(&self, key: &WrappedDataKey) -> Result<bool, StoreError> {
        let version = i32::try_from(key.version)
            .map_err(|_| StoreError::Other(format!("data key version {} is out of the storable range", key.version)))?;
        let result = on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT_DATA_KEY)
                .bind(d::id(key.id))
                .bind(key.purpose.name().into_owned())
                .bind(version)
                .bind(&key.provider)
                .bind(&key.wrapped)
                .bind(d::instant(key.created_at)?)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn data_keys(&self, purpose: KeyPurpose) -> Result<Vec<WrappedDataKey>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, DataKeyRow<d::StoredId, d::StoredInstant>>(SELECT_DATA_KEYS)
                .bind(purpose.name().into_owned())
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(DataKeyRow::into_domain).collect()
        })
    }

    async fn data_key(&self, id: uuid::Uuid) -> Result<Option<WrappedDataKey>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, DataKeyRow<d::StoredId, d::StoredInstant>>(SELECT_DATA_KEY)
                .bind(d::id(id))
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(DataKeyRow::into_domain)
                .transpose()
        })
    }

    async fn delete_data_keys(&self, purpose: KeyPurpose) -> Result<u64, StoreError> {
        on_pool!(self.pool(), |pool, _d| {
            sqlx::query(DELETE_DATA_KEYS)
                .bind(purpose.name().into_owned())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(error::sql)
        })
    }

    async fn min_decryption_version(&self, purpose: KeyPurpose) -> Result<u32, StoreError> {
        let stored: Option<i32> = on_pool!(self.pool(), |pool, _d| {
            sqlx::query_scalar(SELECT_MIN_DECRYPTION_VERSION)
                .bind(purpose.name().into_owned())
                .fetch_optional(pool)
                .await
                .map_err(error::sql)
        })?;
        match stored {
            None => Ok(1),
            Some(v) => u32::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("key family {purpose}: minimum decryption version {v}"))),
        }
    }

    async fn set_min_decryption_version(
        &self,
        purpose: KeyPurpose,
        version: u32,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let version = i32::try_from(version)
            .map_err(|_| StoreError::Other(format!("minimum decryption version {version} is out of range")))?;
        on_pool!(self.pool(), |pool, d| {
            sqlx::query(UPSERT_MIN_DECRYPTION_VERSION)
                .bind(purpose.name().into_owned())
                .bind(version)
                .bind(d::instant(at)?)
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(error::sql)
        })
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, AuditRow<d::StoredId, d::StoredInstant>>(SELECT_AUDIT_HEAD)
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(AuditRow::into_domain)
                .transpose()
        })
    }

    async fn try_append_audit(&self, record: &AuditRecord) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT_AUDIT)
                .bind(record.seq)
                .bind(d::id(record.id))
                .bind(d::instant(record.at)?)
                .bind(&record.kind)
                .bind(&record.outcome)
                .bind(record.actor.as_deref())
                .bind(record.subject.as_deref())
                .bind(record.ip.as_deref())
                .bind(record.user_agent.as_deref())
                .bind(record.request_id.as_deref())
                .bind(&record.details)
                .bind(d::id(record.key_id))
                .bind(&record.prev_mac)
                .bind(&record.mac)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn try_append_audit_batch(&self, records: &[AuditRecord]) -> Result<bool, StoreError> {
        match records {
            [] => return Ok(true),
            [one] => return self.try_append_audit(one).await,
            _ => {}
        }
        let expected = u64::try_from(records.len()).unwrap_or(u64::MAX);
        // One multi-row INSERT in one transaction: if any `seq` is taken, the transaction is rolled back
        // and nothing of the batch is stored.
        on_pool!(self.pool(), |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO audit_log \
                 (seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, details, key_id, prev_mac, mac) ",
            );
            let mut rows = Vec::with_capacity(records.len());
            for record in records {
                rows.push((record, d::id(record.id), d::instant(record.at)?, d::id(record.key_id)));
            }
            insert.push_values(&rows, |mut row, (record, id, at, key_id)| {
                row.push_bind(record.seq)
                    .push_bind(*id)
                    .push_bind(*at)
                    .push_bind(&record.kind)
                    .push_bind(&record.outcome)
                    .push_bind(record.actor.as_deref())
                    .push_bind(record.subject.as_deref())
                    .push_bind(record.ip.as_deref())
                    .push_bind(record.user_agent.as_deref())
                    .push_bind(record.request_id.as_deref())
                    .push_bind(&record.details)
                    .push_bind(*key_id)
                    .push_bind(&record.prev_mac)
                    .push_bind(&record.mac);
            });
            insert.push(" ON CONFLICT (seq) DO NOTHING");
            let inserted = insert.build().execute(&mut *tx).await.map_err(error::sql)?.rows_affected();
            if inserted == expected {
                tx.commit().await.map_err(error::sql)?;
                Ok(true)
            } else {
                tx.rollback().await.map_err(error::sql)?;
                Ok(false)
            }
        })
    }

    async fn audit_records(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, AuditRow<d::StoredId, d::StoredInstant>>(SELECT_AUDIT_AFTER)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(AuditRow::into_domain).collect()
        })
    }

    async fn audit_search(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        if filter.kinds.len() > 2 {
            return Err(StoreError::Other(format!(
                "an audit search takes at most two kinds, not {}",
                filter.kinds.len()
            )));
        }
        // Only the filters given become conditions, so each search uses the index that fits it
        // (migration 0011: subject, kind, at; the primary key for the cursor alone).
        on_pool!(self.pool(), |pool, d| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, details, key_id, \
                 prev_mac, mac FROM audit_log WHERE 1 = 1",
            );
            if let Some(before) = filter.before {
                query.push(" AND seq < ").push_bind(before);
            }
            if let Some(subject) = &filter.subject {
                query.push(" AND subject = ").push_bind(subject.clone());
            }
            match filter.kinds.as_slice() {
                [] => {}
                [kind] => {
                    query.push(" AND kind = ").push_bind(kind.clone());
                }
                [first, second, ..] => {
                    query
                        .push(" AND kind IN (")
                        .push_bind(first.clone())
                        .push(", ")
                        .push_bind(second.clone())
                        .push(")");
                }
            }
            if let Some(since) = filter.since {
                query.push(" AND at >= ").push_bind(d::instant(up_to_a_microsecond(since))?);
            }
            if let Some(until) = filter.until {
                query.push(" AND at < ").push_bind(d::instant(up_to_a_microsecond(until))?);
            }
            query.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(filter.limit));
            let rows = query
                .build_query_as::<AuditRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(AuditRow::into_domain).collect()
        })
    }

    async fn audit_counts(
        &self,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
        bucket: time::Duration,
    ) -> Result<Vec<palisade_core::audit::AuditCount>, StoreError> {
        let bucket_us = bucket_micros(bucket)?;
        let rows: Vec<(i64, String, String, i64)> = on_pool!(self.pool(), |pool, d| {
            sqlx::query_as(d::AUDIT_COUNTS)
                .bind(d::instant(up_to_a_microsecond(since))?)
                .bind(d::instant(up_to_a_microsecond(until))?)
                .bind(bucket_us)
                .fetch_all(pool)
                .await
                .map_err(error::sql)?
        });
        rows.into_iter()
            .map(|(bucket, kind, outcome, count)| {
                Ok(palisade_core::audit::AuditCount {
                    bucket: u32::try_from(bucket).map_err(|_| error::corrupt(format!("audit bucket {bucket}")))?,
                    kind,
                    outcome,
                    count: u64::try_from(count).map_err(|_| error::corrupt(format!("audit count {count}")))?,
                })
            })
            .collect()
    }

    async fn audit_top_addresses(
        &self,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
        kinds: &[&str],
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self.pool(), |pool, d| {
            let mut query = sqlx::QueryBuilder::new("SELECT ip, COUNT(*) AS n FROM audit_log WHERE at >= ");
            query.push_bind(d::instant(up_to_a_microsecond(since))?);
            query.push(" AND at < ").push_bind(d::instant(up_to_a_microsecond(until))?);
            query.push(" AND ip IS NOT NULL AND (outcome = 'failure'");
            if !kinds.is_empty() {
                query.push(" OR kind IN (");
                let mut list = query.separated(", ");
                for kind in kinds {
                    list.push_bind((*kind).to_owned());
                }
                query.push(")");
            }
            // Ties in byte order on both backends, whatever collation PostgreSQL's database has.
            query
                .push(") GROUP BY ip ORDER BY n DESC, ip")
                .push(d::BYTE_ORDER)
                .push(" LIMIT ")
                .push_bind(i64::from(limit));
            query.build_query_as().fetch_all(pool).await.map_err(error::sql)?
        });
        rows.into_iter()
            .map(|(ip, n)| Ok((ip, u64::try_from(n).map_err(|_| error::corrupt(format!("address count {n}")))?)))
            .collect()
    }
}

/// A bucket's length in microseconds, for the grouped counts. Stored instants and bounds
/// (`up_to_a_microsecond`) are whole microseconds, so with a whole-microsecond bucket the slices
/// the SQL computes are exactly `floor((at - since) / bucket)`. A bucket that is not positive, or
/// has a fraction of a microsecond, is refused rather than truncated into slices of another length;
/// one longer than any range (past `i64::MAX` µs) is taken as that: one slice.
pub(crate) fn bucket_micros(bucket: time::Duration) -> Result<i64, StoreError> {
    if !bucket.is_positive() || bucket.subsec_nanoseconds() % 1000 != 0 {
        return Err(StoreError::Other(format!(
            "a bucket must be a positive whole number of microseconds, not {bucket}"
        )));
    }
    Ok(i64::try_from(bucket.whole_microseconds()).unwrap_or(i64::MAX))
}

/// `at` rounded up to a whole microsecond, for a bound on stored instants. Those are whole
/// microseconds, so for every stored `t`, `t >= at` exactly when `t >= up_to_a_microsecond(at)`, and
/// `t < at` exactly when `t < up_to_a_microsecond(at)`. Truncating (as `d::instant` does, for the
/// instants it stores) would take in a record just before `since` and leave out one just before
/// `until`.
pub(crate) fn up_to_a_microsecond(at: time::OffsetDateTime) -> time::OffsetDateTime {
    match at.nanosecond() % 1000 {
        0 => at,
        below => at.checked_add(time::Duration::nanoseconds(i64::from(1000 - below))).unwrap_or(at), // the end of time
    }
}

#[async_trait]
impl DurableStore for SqlStore {
    fn backend(&self) -> &'static str {
        SqlStore::backend(self)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        SqlStore::ping(self).await
    }
}
