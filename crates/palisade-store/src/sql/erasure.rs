//! Erasure requests' queries, written once for both dialects.
//!
//! - `insert_erasure_request` is one INSERT … ON CONFLICT on the partial unique index of open
//!   requests: a user's second open request stores nothing.
//! - `claim_erasure_request` is one conditional UPDATE matching an open, due row whose lease is
//!   absent or lapsed, so of concurrent claims one updates it.
//! - `advance_erasure_request` and `finish_erasure_request` are one UPDATE matching the lease owner.
//! - `erase_account` is one transaction: the owner-matching progress UPDATE first (nothing else
//!   happens when the lease was lost), then the account's deletion, the pseudonym on incidents, and
//!   the user's other requests (deleted; as a requester for others, forgotten).

use async_trait::async_trait;
use palisade_core::compliance::erasure::{ErasureCounts, ErasureProgress, ErasureReason, ErasureStep};
use palisade_core::compliance::{ErasureRequest, ErasureState};
use palisade_core::store::{ErasureStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const INSERT: &str = "INSERT INTO erasure_requests (id, user_id, pseudonym, requested_by, reason, state, step, \
     audit_cursor, counts, requested_at, due_at, finished_at, outcome, lease_owner, lease_until) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL) \
     ON CONFLICT (user_id) WHERE state IN ('scheduled', 'running') DO NOTHING";

const COLUMNS: &str = "SELECT id, user_id, pseudonym, requested_by, reason, state, step, audit_cursor, counts, \
     requested_at, due_at, finished_at, outcome FROM erasure_requests";

const CANCEL: &str = "UPDATE erasure_requests SET state = 'cancelled', finished_at = $2, outcome = 'cancelled' \
     WHERE id = $1 AND state = 'scheduled'";

const CLAIM: &str = "UPDATE erasure_requests SET state = 'running', lease_owner = $2, lease_until = $3 \
     WHERE id = $1 AND state IN ('scheduled', 'running') AND due_at <= $4 \
     AND (lease_until IS NULL OR lease_until <= $4)";

const ADVANCE: &str = "UPDATE erasure_requests SET step = $3, audit_cursor = $4, counts = $5, lease_until = $6 \
     WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

/// `ADVANCE` without touching the lease (within `erase_account`'s transaction).
const PROGRESS: &str = "UPDATE erasure_requests SET step = $3, audit_cursor = $4, counts = $5 \
     WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

const OWNED_USER: &str =
    "SELECT user_id FROM erasure_requests WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

const COMPLETE: &str = "UPDATE erasure_requests SET state = 'completed', user_id = NULL, \
     requested_by = CASE WHEN requested_by = user_id THEN NULL ELSE requested_by END, step = $3, \
     audit_cursor = $4, counts = $5, finished_at = $6, outcome = $7, lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

const REFUSE: &str = "UPDATE erasure_requests SET state = 'refused', step = $3, audit_cursor = $4, counts = $5, \
     finished_at = $6, outcome = $7, lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND lease_owner = $2 AND state = 'running'";

const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";

const DELETE_DELIVERIES: &str = "DELETE FROM alert_deliveries WHERE recipient = $1";

/// The user's other requests, which would name them after the erasure.
const DELETE_OTHER_REQUESTS: &str =
    "DELETE FROM erasure_requests WHERE user_id = $1 AND id <> $2 AND state IN ('cancelled', 'refused')";

/// Requests the user made for others keep who made them only as long as the user exists.
const FORGET_REQUESTER: &str = "UPDATE erasure_requests SET requested_by = NULL WHERE requested_by = $1 AND id <> $2";

const COUNT_ADMINS: &str = "SELECT COUNT(*) FROM users WHERE admin";

/// An `erasure_requests` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct RequestRow<Id, At> {
    id: Id,
    user_id: Option<Id>,
    pseudonym: String,
    requested_by: Option<Id>,
    reason: String,
    state: String,
    step: String,
    audit_cursor: i64,
    counts: String,
    requested_at: At,
    due_at: At,
    finished_at: Option<At>,
    outcome: Option<String>,
}

impl<Id, At> RequestRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<ErasureRequest, StoreError> {
        let id = self.id.into_domain()?;
        let what = || format!("erasure request {id}");
        Ok(ErasureRequest {
            id,
            user_id: self.user_id.map(Stored::into_domain).transpose()?.map(UserId::from_uuid),
            pseudonym: self.pseudonym,
            requested_by: self.requested_by.map(Stored::into_domain).transpose()?.map(UserId::from_uuid),
            reason: ErasureReason::parse(&self.reason)
                .ok_or_else(|| error::corrupt(format!("{} has reason {:?}", what(), self.reason)))?,
            state: ErasureState::parse(&self.state)
                .ok_or_else(|| error::corrupt(format!("{} has state {:?}", what(), self.state)))?,
            progress: ErasureProgress {
                step: ErasureStep::parse(&self.step)
                    .ok_or_else(|| error::corrupt(format!("{} has step {:?}", what(), self.step)))?,
                audit_cursor: self.audit_cursor,
                counts: serde_json::from_str::<ErasureCounts>(&self.counts)
                    .map_err(|e| error::corrupt(format!("{} has invalid counts ({e})", what())))?,
            },
            requested_at: self.requested_at.into_domain()?,
            due_at: self.due_at.into_domain()?,
            finished_at: self.finished_at.map(Stored::into_domain).transpose()?,
            outcome: self.outcome,
        })
    }
}

fn counts_text(progress: &ErasureProgress) -> Result<String, StoreError> {
    serde_json::to_string(&progress.counts).map_err(|e| StoreError::Other(format!("erasure counts: {e}")))
}

#[async_trait]
impl ErasureStore for SqlStore {
    async fn insert_erasure_request(&self, request: &ErasureRequest) -> Result<bool, StoreError> {
        let counts = counts_text(&request.progress)?;
        let inserted = on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT)
                .bind(d::id(request.id))
                .bind(request.user_id.map(|u| d::id(u.as_uuid())))
                .bind(&request.pseudonym)
                .bind(request.requested_by.map(|u| d::id(u.as_uuid())))
                .bind(request.reason.as_str())
                .bind(request.state.as_str())
                .bind(request.progress.step.as_str())
                .bind(request.progress.audit_cursor)
                .bind(&counts)
                .bind(d::instant(request.requested_at)?)
                .bind(d::instant(request.due_at)?)
                .bind(request.finished_at.map(d::instant).transpose()?)
                .bind(request.outcome.as_deref())
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        Ok(inserted == 1)
    }

    async fn erasure_request(&self, id: uuid::Uuid) -> Result<Option<ErasureRequest>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row = sqlx::QueryBuilder::new(COLUMNS)
                .push(" WHERE id = ")
                .push_bind(d::id(id))
                .build_query_as::<RequestRow<d::StoredId, d::StoredInstant>>()
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(RequestRow::into_domain).transpose()
        })
    }

    async fn open_erasure_request(&self, user: UserId) -> Result<Option<ErasureRequest>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row = sqlx::QueryBuilder::new(COLUMNS)
                .push(" WHERE user_id = ")
                .push_bind(d::id(user.as_uuid()))
                .push(" AND state IN ('scheduled', 'running')")
                .build_query_as::<RequestRow<d::StoredId, d::StoredInstant>>()
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(RequestRow::into_domain).transpose()
        })
    }

    async fn erasure_requests(&self, user: Option<UserId>, limit: u32) -> Result<Vec<ErasureRequest>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let mut query = sqlx::QueryBuilder::new(COLUMNS);
            if let Some(user) = user {
                query.push(" WHERE user_id = ").push_bind(d::id(user.as_uuid()));
            }
            let rows = query
                .push(" ORDER BY requested_at DESC, id DESC LIMIT ")
                .push_bind(i64::from(limit))
                .build_query_as::<RequestRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(RequestRow::into_domain).collect()
        })
    }

    async fn cancel_erasure_request(&self, id: uuid::Uuid, at: time::OffsetDateTime) -> Result<bool, StoreError> {
        let changed = on_pool!(self.pool(), |pool, d| {
            sqlx::query(CANCEL)
                .bind(d::id(id))
                .bind(d::instant(at)?)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    async fn due_erasure_requests(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ErasureRequest>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let now = d::instant(now)?;
            let rows = sqlx::QueryBuilder::new(COLUMNS)
                .push(" WHERE state IN ('scheduled', 'running') AND due_at <= ")
                .push_bind(now)
                .push(" AND (lease_until IS NULL OR lease_until <= ")
                .push_bind(now)
                .push(") ORDER BY due_at, id LIMIT ")
                .push_bind(i64::from(limit))
                .build_query_as::<RequestRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(RequestRow::into_domain).collect()
        })
    }

    async fn claim_erasure_request(
        &self,
        id: uuid::Uuid,
        owner: &str,
        until: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self.pool(), |pool, d| {
            sqlx::query(CLAIM)
                .bind(d::id(id))
                .bind(owner)
                .bind(d::instant(until)?)
                .bind(d::instant(now)?)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    async fn advance_erasure_request(
        &self,
        id: uuid::Uuid,
        owner: &str,
        progress: &ErasureProgress,
        until: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let counts = counts_text(progress)?;
        let changed = on_pool!(self.pool(), |pool, d| {
            sqlx::query(ADVANCE)
                .bind(d::id(id))
                .bind(owner)
                .bind(progress.step.as_str())
                .bind(progress.audit_cursor)
                .bind(&counts)
                .bind(d::instant(until)?)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    async fn erase_account(
        &self,
        id: uuid::Uuid,
        owner: &str,
        who: &[String],
        pseudonym: &str,
        progress: &ErasureProgress,
    ) -> Result<bool, StoreError> {
        let counts = counts_text(progress)?;
        on_pool!(self.pool(), |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let user: Option<d::StoredId> = sqlx::query_scalar(OWNED_USER)
                .bind(d::id(id))
                .bind(owner)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::sql)?
                .flatten();
            let Some(user) = user else {
                tx.rollback().await.map_err(error::sql)?;
                return Ok(false);
            };
            let user = UserId::from_uuid(user.into_domain()?);
            sqlx::query(PROGRESS)
                .bind(d::id(id))
                .bind(owner)
                .bind(progress.step.as_str())
                .bind(progress.audit_cursor)
                .bind(&counts)
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?;
            sqlx::query(DELETE_USER).bind(d::id(user.as_uuid())).execute(&mut *tx).await.map_err(error::sql)?;
            sqlx::query(DELETE_DELIVERIES).bind(format!("user:{user}")).execute(&mut *tx).await.map_err(error::sql)?;
            for statement in [DELETE_OTHER_REQUESTS, FORGET_REQUESTER] {
                sqlx::query(statement)
                    .bind(d::id(user.as_uuid()))
                    .bind(d::id(id))
                    .execute(&mut *tx)
                    .await
                    .map_err(error::sql)?;
            }
            if !who.is_empty() {
                // Incidents name accounts as `user:<username or id>` in their subject, and in
                // their title in words: the subject takes the pseudonym, the title a neutral one.
                let mut update = sqlx::QueryBuilder::new("UPDATE incidents SET subject = ");
                update
                    .push_bind(format!("user:{pseudonym}"))
                    .push(", title = 'Incident about an erased account (' || cause || ')' WHERE subject IN (");
                let mut subjects = update.separated(", ");
                for identifier in who {
                    subjects.push_bind(format!("user:{identifier}"));
                }
                subjects.push_unseparated(")");
                update.build().execute(&mut *tx).await.map_err(error::sql)?;
            }
            tx.commit().await.map_err(error::sql)?;
            Ok(true)
        })
    }

    async fn finish_erasure_request(
        &self,
        id: uuid::Uuid,
        owner: &str,
        state: ErasureState,
        progress: &ErasureProgress,
        outcome: &str,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let statement = match state {
            ErasureState::Completed => COMPLETE,
            ErasureState::Refused => REFUSE,
            other => {
                return Err(StoreError::Other(format!("an erasure request cannot be finished as {}", other.as_str())));
            }
        };
        let counts = counts_text(progress)?;
        let changed = on_pool!(self.pool(), |pool, d| {
            sqlx::query(statement)
                .bind(d::id(id))
                .bind(owner)
                .bind(progress.step.as_str())
                .bind(progress.audit_cursor)
                .bind(&counts)
                .bind(d::instant(at)?)
                .bind(outcome)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    async fn count_admins(&self) -> Result<u64, StoreError> {
        let count: i64 = on_pool!(self.pool(), |pool, _d| {
            sqlx::query_scalar(COUNT_ADMINS).fetch_one(pool).await.map_err(error::sql)?
        });
        u64::try_from(count).map_err(|_| error::corrupt(format!("a count of {count} administrators")))
    }
}
