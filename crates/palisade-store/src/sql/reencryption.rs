//! The re-encryption store's queries, written once for both dialects: pages of second factors, and
//! the job's checkpoint committed with each batch's rewrites.
//!
//! - `insert_reencryption_job` is one INSERT whose `ON CONFLICT (state) WHERE state = 'running' DO
//!   NOTHING` meets the partial unique index of running jobs: of instances starting a job at once,
//!   one stores it and the others get `false`. A reused id stays an error.
//! - `commit_reencryption_batch` is one transaction: first the conditional UPDATE of the job (only
//!   while it is running and still at the checkpoint the caller started from — on PostgreSQL this also takes the job row's lock, so two committers of
//!   one job run one after the other), then each row's UPDATE matching its old text, then the
//!   job's `rewritten` raised by the rows changed. Nothing of a batch survives without its
//!   checkpoint, and no checkpoint without its rows.
//! - `factor_page` reads in id order (the primary key), ids compared as the dialect stores them:
//!   hyphenated lowercase text on SQLite and uuid on PostgreSQL order the same way.

use async_trait::async_trait;
use palisade_core::crypto::reencrypt::{JobState, Phase, ReencryptionJob, Reseal};
use palisade_core::mfa::FactorRecord;
use palisade_core::store::{ReencryptionStore, StoreError};

use super::durable::Stored;
use super::mfa::FactorRow;
use super::{SqlStore, on_pool};
use crate::error;

const COUNT_FACTORS: &str = "SELECT COUNT(*) FROM mfa_factors";

const FIRST_FACTORS: &str =
    "SELECT id, user_id, kind, sealed, created_at, confirmed_at FROM mfa_factors ORDER BY id LIMIT $1";

const FACTORS_AFTER: &str =
    "SELECT id, user_id, kind, sealed, created_at, confirmed_at FROM mfa_factors WHERE id > $1 ORDER BY id LIMIT $2";

const INSERT_JOB: &str = "INSERT INTO reencryption_jobs \
     (id, target_version, state, phase, cursor, total, scanned, rewritten, started_at, updated_at, finished_at, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (state) WHERE state = 'running' DO NOTHING";

/// Saves job `$1`'s checkpoint while it is running and still at the checkpoint `$12`–`$14` (phase,
/// cursor, scanned) the caller started from; `rewritten` is raised after the rows.
const SAVE_JOB: &str = "UPDATE reencryption_jobs SET target_version = $2, state = $3, phase = $4, cursor = $5, \
     total = $6, scanned = $7, rewritten = $8, updated_at = $9, finished_at = $10, error = $11 \
     WHERE id = $1 AND state = 'running' AND phase = $12 AND cursor IS NOT DISTINCT FROM $13 AND scanned = $14";

const ADD_REWRITTEN: &str = "UPDATE reencryption_jobs SET rewritten = rewritten + $2 WHERE id = $1";

const RESEAL_FACTOR: &str = "UPDATE mfa_factors SET sealed = $3 WHERE id = $1 AND sealed = $2";

const RESEAL_SIGNING_KEY: &str = "UPDATE signing_keys SET private_key = $3 WHERE kid = $1 AND private_key = $2";

const LATEST_JOB: &str = "SELECT id, target_version, state, phase, cursor, total, scanned, rewritten, started_at, \
     updated_at, finished_at, error FROM reencryption_jobs ORDER BY started_at DESC, id DESC LIMIT 1";

/// A `reencryption_jobs` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct JobRow<Id, At> {
    id: Id,
    target_version: i32,
    state: String,
    phase: String,
    cursor: Option<String>,
    total: i64,
    scanned: i64,
    rewritten: i64,
    started_at: At,
    updated_at: At,
    finished_at: Option<At>,
    error: Option<String>,
}

impl<Id, At> JobRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<ReencryptionJob, StoreError> {
        let id = self.id.into_domain()?;
        let what = || format!("re-encryption job {id}");
        let count =
            |n: i64, field: &str| u64::try_from(n).map_err(|_| error::corrupt(format!("{} has {field} {n}", what())));
        Ok(ReencryptionJob {
            id,
            target_version: u32::try_from(self.target_version)
                .map_err(|_| error::corrupt(format!("{} has version {}", what(), self.target_version)))?,
            state: JobState::parse(&self.state)
                .ok_or_else(|| error::corrupt(format!("{} has unknown state {:?}", what(), self.state)))?,
            phase: Phase::parse(&self.phase)
                .ok_or_else(|| error::corrupt(format!("{} has unknown phase {:?}", what(), self.phase)))?,
            cursor: self.cursor,
            total: count(self.total, "total")?,
            scanned: count(self.scanned, "scanned")?,
            rewritten: count(self.rewritten, "rewritten")?,
            started_at: self.started_at.into_domain()?,
            updated_at: self.updated_at.into_domain()?,
            finished_at: self.finished_at.map(Stored::into_domain).transpose()?,
            error: self.error,
        })
    }
}

/// A count as the databases store it.
fn stored_count(n: u64, field: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Other(format!("re-encryption {field} {n} is out of the storable range")))
}

fn stored_version(version: u32) -> Result<i32, StoreError> {
    i32::try_from(version)
        .map_err(|_| StoreError::Other(format!("data key version {version} is out of the storable range")))
}

#[async_trait]
impl ReencryptionStore for SqlStore {
    async fn count_factors(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self.pool(), |pool, _d| {
            sqlx::query_scalar(COUNT_FACTORS).fetch_one(pool).await.map_err(error::sql)?
        });
        u64::try_from(n).map_err(|_| error::corrupt(format!("mfa_factors counts {n} rows")))
    }

    async fn factor_page(&self, after: Option<uuid::Uuid>, limit: u32) -> Result<Vec<FactorRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let query = match after {
                None => {
                    sqlx::query_as::<_, FactorRow<d::StoredId, d::StoredInstant>>(FIRST_FACTORS).bind(i64::from(limit))
                }
                Some(after) => sqlx::query_as::<_, FactorRow<d::StoredId, d::StoredInstant>>(FACTORS_AFTER)
                    .bind(d::id(after))
                    .bind(i64::from(limit)),
            };
            let rows = query.fetch_all(pool).await.map_err(error::sql)?;
            rows.into_iter().map(FactorRow::into_domain).collect()
        })
    }

    async fn insert_reencryption_job(&self, job: &ReencryptionJob) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT_JOB)
                .bind(d::id(job.id))
                .bind(stored_version(job.target_version)?)
                .bind(job.state.as_str())
                .bind(job.phase.as_str())
                .bind(job.cursor.as_deref())
                .bind(stored_count(job.total, "total")?)
                .bind(stored_count(job.scanned, "scanned")?)
                .bind(stored_count(job.rewritten, "rewritten")?)
                .bind(d::instant(job.started_at)?)
                .bind(d::instant(job.updated_at)?)
                .bind(job.finished_at.map(d::instant).transpose()?)
                .bind(job.error.as_deref())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn commit_reencryption_batch(
        &self,
        previous: &ReencryptionJob,
        job: &ReencryptionJob,
        reseals: &[Reseal],
    ) -> Result<Option<u64>, StoreError> {
        if previous.id != job.id {
            return Err(StoreError::Other(format!(
                "re-encryption checkpoint of job {} given as continuing job {}",
                job.id, previous.id
            )));
        }
        on_pool!(self.pool(), |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let saved = sqlx::query(SAVE_JOB)
                .bind(d::id(job.id))
                .bind(stored_version(job.target_version)?)
                .bind(job.state.as_str())
                .bind(job.phase.as_str())
                .bind(job.cursor.as_deref())
                .bind(stored_count(job.total, "total")?)
                .bind(stored_count(job.scanned, "scanned")?)
                .bind(stored_count(job.rewritten, "rewritten")?)
                .bind(d::instant(job.updated_at)?)
                .bind(job.finished_at.map(d::instant).transpose()?)
                .bind(job.error.as_deref())
                .bind(previous.phase.as_str())
                .bind(previous.cursor.as_deref())
                .bind(stored_count(previous.scanned, "scanned")?)
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?
                .rows_affected();
            if saved == 0 {
                // Not running: dropping the transaction rolls it back.
                return Ok(None);
            }
            let mut rewritten: u64 = 0;
            for reseal in reseals {
                let changed = match reseal.table {
                    Phase::Factors => {
                        let id = uuid::Uuid::parse_str(&reseal.id)
                            .map_err(|_| StoreError::Other(format!("factor id {:?} is not a uuid", reseal.id)))?;
                        sqlx::query(RESEAL_FACTOR)
                            .bind(d::id(id))
                            .bind(&reseal.old)
                            .bind(&reseal.new)
                            .execute(&mut *tx)
                            .await
                    }
                    Phase::SigningKeys => {
                        sqlx::query(RESEAL_SIGNING_KEY)
                            .bind(&reseal.id)
                            .bind(&reseal.old)
                            .bind(&reseal.new)
                            .execute(&mut *tx)
                            .await
                    }
                };
                rewritten += changed.map_err(error::sql)?.rows_affected();
            }
            if rewritten > 0 {
                sqlx::query(ADD_REWRITTEN)
                    .bind(d::id(job.id))
                    .bind(stored_count(rewritten, "rewritten")?)
                    .execute(&mut *tx)
                    .await
                    .map_err(error::sql)?;
            }
            tx.commit().await.map_err(error::sql)?;
            Ok(Some(rewritten))
        })
    }

    async fn latest_reencryption_job(&self) -> Result<Option<ReencryptionJob>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row = sqlx::query_as::<_, JobRow<d::StoredId, d::StoredInstant>>(LATEST_JOB)
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(JobRow::into_domain).transpose()
        })
    }
}
