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
use palisade_core::audit::{AuditCheckpoint, AuditFilter, AuditRecord, PersonalSeal, REDACTED_DETAILS, RedactionPage};
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
     (seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, details, key_id, prev_mac, mac, \
     personal_salt, personal_digest, redacted_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (seq) DO NOTHING";

/// The columns of an `AuditRow`.
pub(crate) const AUDIT_COLUMNS: &str = "seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, \
     details, key_id, prev_mac, mac, personal_salt, personal_digest, redacted_at";

const SELECT_AUDIT_HEAD: &str = "SELECT seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, \
     details, key_id, prev_mac, mac, personal_salt, personal_digest, redacted_at FROM audit_log \
     ORDER BY seq DESC LIMIT 1";

const SELECT_AUDIT_AFTER: &str = "SELECT seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, \
     details, key_id, prev_mac, mac, personal_salt, personal_digest, redacted_at FROM audit_log \
     WHERE seq > $1 ORDER BY seq LIMIT $2";

const CHECKPOINT: &str = "SELECT seq, mac, archived, at, key_id, seal FROM audit_checkpoints ORDER BY seq DESC LIMIT 1";

/// Stores a checkpoint unless one at or after its `seq` exists, or its record is the head.
const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints (seq, mac, archived, at, key_id, seal) \
     SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq >= $1) \
     AND $1 < (SELECT MAX(seq) FROM audit_log) ON CONFLICT DO NOTHING";

const ARCHIVE: &str = "DELETE FROM audit_log WHERE seq <= $1";

/// The first record at or after the cutoff, walking from the oldest (the prefix before it is what
/// may be archived, so the walk is bounded by what is archived).
const FIRST_RECENT: &str = "SELECT seq FROM audit_log WHERE at >= $1 ORDER BY seq LIMIT 1";

const BOUNDS: &str = "SELECT MIN(seq), MAX(seq) FROM audit_log";

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
    personal_salt: Option<Vec<u8>>,
    personal_digest: Option<Vec<u8>>,
    redacted_at: Option<At>,
}

impl<Id, At> AuditRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<AuditRecord, StoreError> {
        let personal = match (self.personal_salt, self.personal_digest) {
            (salt, Some(digest)) => Some(PersonalSeal { salt, digest }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(error::corrupt(format!("audit record {} has a salt but no digest", self.seq)));
            }
        };
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
            personal,
            redacted_at: self.redacted_at.map(Stored::into_domain).transpose()?,
        })
    }
}

/// Pushes `(…)`: the `seq`s of the first `limit` records after `after` whose actor or subject is one
/// of `who`, as a union of one ordered, limited walk of the (actor, seq) or (subject, seq) index per
/// column and identifier — so each page reads about `limit` index entries per walk, however long
/// the user's history (an `OR` or an `IN` would gather every later match and sort them).
fn push_seqs_about<DB: sqlx::Database>(query: &mut sqlx::QueryBuilder<DB>, who: &[String], after: i64, limit: u32)
where
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    query.push("(");
    let mut arm = 0;
    for column in ["actor", "subject"] {
        for id in who {
            if arm > 0 {
                query.push(" UNION ALL ");
            }
            query
                .push("SELECT seq FROM (SELECT seq FROM audit_log WHERE ")
                .push(column)
                .push(" = ")
                .push_bind(id.clone())
                .push(" AND seq > ")
                .push_bind(after)
                .push(" ORDER BY seq LIMIT ")
                .push_bind(i64::from(limit))
                .push(format!(") AS walk{arm}"));
            arm += 1;
        }
    }
    query.push(")");
}

/// Pushes `(actor IN (…) OR subject IN (…))` for the identifiers `who`.
fn push_about<DB: sqlx::Database>(query: &mut sqlx::QueryBuilder<DB>, who: &[String])
where
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    query.push("(");
    push_in(query, "actor", who);
    query.push(" OR ");
    push_in(query, "subject", who);
    query.push(")");
}

/// Pushes `column IN ($…)` for the identifiers `who` (at least one).
fn push_in<DB: sqlx::Database>(query: &mut sqlx::QueryBuilder<DB>, column: &'static str, who: &[String])
where
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    query.push(column).push(" IN (");
    let mut values = query.separated(", ");
    for id in who {
        values.push_bind(id.clone());
    }
    values.push_unseparated(")");
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
                .bind(record.personal.as_ref().and_then(|p| p.salt.as_deref()))
                .bind(record.personal.as_ref().map(|p| p.digest.as_slice()))
                .bind(record.redacted_at.map(d::instant).transpose()?)
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
                 (seq, id, at, kind, outcome, actor, subject, ip, user_agent, request_id, details, key_id, prev_mac, mac, \
                 personal_salt, personal_digest, redacted_at) ",
            );
            let mut rows = Vec::with_capacity(records.len());
            for record in records {
                let redacted_at = record.redacted_at.map(d::instant).transpose()?;
                rows.push((record, d::id(record.id), d::instant(record.at)?, d::id(record.key_id), redacted_at));
            }
            insert.push_values(&rows, |mut row, (record, id, at, key_id, redacted_at)| {
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
                    .push_bind(&record.mac)
                    .push_bind(record.personal.as_ref().and_then(|p| p.salt.as_deref()))
                    .push_bind(record.personal.as_ref().map(|p| p.digest.as_slice()))
                    .push_bind(*redacted_at);
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
                 prev_mac, mac, personal_salt, personal_digest, redacted_at FROM audit_log WHERE 1 = 1",
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

    async fn audit_records_about(
        &self,
        who: &[String],
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        if who.is_empty() {
            return Ok(Vec::new());
        }
        on_pool!(self.pool(), |pool, d| {
            let mut query = sqlx::QueryBuilder::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq IN "));
            push_seqs_about(&mut query, who, after, limit);
            query.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
            let rows = query
                .build_query_as::<AuditRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(AuditRow::into_domain).collect()
        })
    }

    async fn redact_audit_records(
        &self,
        who: &[String],
        pseudonym: &str,
        after: i64,
        limit: u32,
        at: time::OffsetDateTime,
    ) -> Result<RedactionPage, StoreError> {
        if who.is_empty() {
            return Ok(RedactionPage::default());
        }
        on_pool!(self.pool(), |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let mut select = sqlx::QueryBuilder::new("SELECT seq FROM audit_log WHERE seq IN ");
            push_seqs_about(&mut select, who, after, limit);
            select.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
            let seqs: Vec<i64> = select.build_query_scalar().fetch_all(&mut *tx).await.map_err(error::sql)?;
            let (Some(first), Some(last)) = (seqs.first().copied(), seqs.last().copied()) else {
                tx.rollback().await.map_err(error::sql)?;
                return Ok(RedactionPage::default());
            };
            // The matching records between `first` and `last` are exactly `seqs`: records are only
            // ever appended after the head, beyond `last`.
            let mut update = sqlx::QueryBuilder::new("UPDATE audit_log SET actor = CASE WHEN ");
            push_in(&mut update, "actor", who);
            update.push(" THEN ").push_bind(pseudonym.to_owned()).push(" ELSE actor END, subject = CASE WHEN ");
            push_in(&mut update, "subject", who);
            update
                .push(" THEN ")
                .push_bind(pseudonym.to_owned())
                .push(" ELSE subject END, ip = NULL, user_agent = NULL, details = ")
                .push_bind(REDACTED_DETAILS)
                .push(", personal_salt = NULL, redacted_at = ")
                .push_bind(d::instant(at)?)
                .push(" WHERE seq >= ")
                .push_bind(first)
                .push(" AND seq <= ")
                .push_bind(last)
                .push(" AND personal_salt IS NOT NULL AND ");
            push_about(&mut update, who);
            let redacted = update.build().execute(&mut *tx).await.map_err(error::sql)?.rows_affected();
            tx.commit().await.map_err(error::sql)?;
            Ok(RedactionPage {
                last_seq: Some(last),
                examined: u64::try_from(seqs.len()).unwrap_or(u64::MAX),
                redacted,
            })
        })
    }

    async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row: Option<(i64, Vec<u8>, i64, d::StoredInstant, d::StoredId, Vec<u8>)> =
                sqlx::query_as(CHECKPOINT).fetch_optional(pool).await.map_err(error::sql)?;
            row.map(|(seq, mac, archived, at, key_id, seal)| {
                Ok(AuditCheckpoint {
                    seq,
                    mac,
                    archived: u64::try_from(archived)
                        .map_err(|_| error::corrupt(format!("audit checkpoint {seq} archived {archived}")))?,
                    at: at.into_domain()?,
                    key_id: key_id.into_domain()?,
                    seal,
                })
            })
            .transpose()
        })
    }

    async fn archive_audit_prefix(&self, checkpoint: &AuditCheckpoint) -> Result<bool, StoreError> {
        let archived = i64::try_from(checkpoint.archived)
            .map_err(|_| StoreError::Other(format!("{} archived records is out of range", checkpoint.archived)))?;
        on_pool!(self.pool(), |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let inserted = sqlx::query(INSERT_CHECKPOINT)
                .bind(checkpoint.seq)
                .bind(&checkpoint.mac)
                .bind(archived)
                .bind(d::instant(checkpoint.at)?)
                .bind(d::id(checkpoint.key_id))
                .bind(&checkpoint.seal)
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?
                .rows_affected();
            if inserted != 1 {
                tx.rollback().await.map_err(error::sql)?;
                return Ok(false);
            }
            sqlx::query(ARCHIVE).bind(checkpoint.seq).execute(&mut *tx).await.map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)?;
            Ok(true)
        })
    }

    async fn audit_prefix_before(&self, before: time::OffsetDateTime) -> Result<Option<i64>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let (first, last): (Option<i64>, Option<i64>) =
                sqlx::query_as(BOUNDS).fetch_one(pool).await.map_err(error::sql)?;
            let (Some(first), Some(last)) = (first, last) else { return Ok(None) };
            let recent: Option<i64> = sqlx::query_scalar(FIRST_RECENT)
                .bind(d::instant(up_to_a_microsecond(before))?)
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            Ok(match recent {
                None => Some(last),
                Some(seq) if seq > first => Some(seq - 1),
                Some(_) => None,
            })
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
