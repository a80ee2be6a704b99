//! The incident store's queries, written once for both dialects (the read-for-update of
//! `raise_incident` is the dialect's `OPEN_INCIDENT`).
//!
//! - `raise_incident` is one transaction: an INSERT whose `ON CONFLICT (cause, subject) WHERE state
//!   <> 'resolved' DO NOTHING` meets the partial unique index, so of concurrent raises one opens the
//!   incident; the others (on PostgreSQL after the opener commits) read it for update and attach.
//! - `set_incident_state` is one conditional UPDATE matching only the expected state.
//! - `revert_incident_action` is one conditional UPDATE matching only an action not yet reverted.

use async_trait::async_trait;
use palisade_core::monitoring::{
    Incident, IncidentAction, IncidentFilter, IncidentRaise, IncidentState, MAX_ATTACHED_EVENTS, ResponseKind, Severity,
};
use palisade_core::store::{IncidentStore, StoreError};

use super::durable::{Stored, bucket_micros, up_to_a_microsecond};
use super::{SqlStore, on_pool};
use crate::error;

const INSERT: &str = "INSERT INTO incidents (id, cause, subject, severity, state, title, details, events, \
     occurrences, opened_at, last_seen_at, updated_at, updated_by) \
     VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, 1, $8, $8, $8, NULL) \
     ON CONFLICT (cause, subject) WHERE state <> 'resolved' DO NOTHING";

const ATTACH: &str = "UPDATE incidents SET severity = $2, events = $3, occurrences = occurrences + 1, \
     last_seen_at = $4 WHERE id = $1";

const BY_ID: &str = "SELECT id, cause, subject, severity, state, title, details, events, occurrences, opened_at, \
     last_seen_at, updated_at, updated_by FROM incidents WHERE id = $1";

const SET_STATE: &str =
    "UPDATE incidents SET state = $3, updated_by = $4, updated_at = $5 WHERE id = $1 AND state = $2";

const UNRESOLVED: &str = "SELECT severity, COUNT(*) FROM incidents WHERE state <> 'resolved' GROUP BY severity";

const ACTION_COLUMNS: &str =
    "SELECT id, incident_id, kind, target, taken_at, expires_at, reverted_at, reverted_by FROM incident_actions";

const INSERT_ACTION: &str = "INSERT INTO incident_actions \
     (id, incident_id, kind, target, taken_at, expires_at, reverted_at, reverted_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const REVERT_ACTION: &str =
    "UPDATE incident_actions SET reverted_at = $3, reverted_by = $2 WHERE id = $1 AND reverted_at IS NULL";

/// An `incident_actions` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct ActionRow<Id, At> {
    id: Id,
    incident_id: Id,
    kind: String,
    target: String,
    taken_at: At,
    expires_at: Option<At>,
    reverted_at: Option<At>,
    reverted_by: Option<String>,
}

impl<Id, At> ActionRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<IncidentAction, StoreError> {
        let id = self.id.into_domain()?;
        Ok(IncidentAction {
            id,
            incident: self.incident_id.into_domain()?,
            kind: ResponseKind::parse(&self.kind)
                .ok_or_else(|| error::corrupt(format!("incident action {id} has kind {:?}", self.kind)))?,
            target: self.target,
            taken_at: self.taken_at.into_domain()?,
            expires_at: self.expires_at.map(Stored::into_domain).transpose()?,
            reverted_at: self.reverted_at.map(Stored::into_domain).transpose()?,
            reverted_by: self.reverted_by,
        })
    }
}

/// An `incidents` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct IncidentRow<Id, At> {
    id: Id,
    cause: String,
    subject: String,
    severity: String,
    state: String,
    title: String,
    details: String,
    events: String,
    occurrences: i64,
    opened_at: At,
    last_seen_at: At,
    updated_at: At,
    updated_by: Option<String>,
}

impl<Id, At> IncidentRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<Incident, StoreError> {
        let id = self.id.into_domain()?;
        let what = || format!("incident {id}");
        Ok(Incident {
            id,
            severity: Severity::parse(&self.severity)
                .ok_or_else(|| error::corrupt(format!("{} has severity {:?}", what(), self.severity)))?,
            state: IncidentState::parse(&self.state)
                .ok_or_else(|| error::corrupt(format!("{} has state {:?}", what(), self.state)))?,
            details: serde_json::from_str(&self.details)
                .map_err(|e| error::corrupt(format!("{} has invalid details ({e})", what())))?,
            events: serde_json::from_str(&self.events)
                .map_err(|e| error::corrupt(format!("{} has an invalid event list ({e})", what())))?,
            occurrences: u64::try_from(self.occurrences)
                .map_err(|_| error::corrupt(format!("{} has {} occurrences", what(), self.occurrences)))?,
            cause: self.cause,
            subject: self.subject,
            title: self.title,
            opened_at: self.opened_at.into_domain()?,
            last_seen_at: self.last_seen_at.into_domain()?,
            updated_at: self.updated_at.into_domain()?,
            updated_by: self.updated_by,
        })
    }
}

fn encode_events(events: &[i64]) -> String {
    serde_json::Value::from(events.to_vec()).to_string()
}

#[async_trait]
impl IncidentStore for SqlStore {
    async fn raise_incident(&self, raise: &IncidentRaise) -> Result<(Incident, bool), StoreError> {
        let details = raise.details.to_string();
        let mut fresh = raise.events.clone();
        let overflow = fresh.len().saturating_sub(MAX_ATTACHED_EVENTS);
        fresh.drain(..overflow);
        let events = encode_events(&fresh);
        on_pool!(self.pool(), |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let inserted = sqlx::query(INSERT)
                .bind(d::id(raise.id))
                .bind(&raise.cause)
                .bind(&raise.subject)
                .bind(raise.severity.as_str())
                .bind(&raise.title)
                .bind(&details)
                .bind(&events)
                .bind(d::instant(raise.at)?)
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?
                .rows_affected();
            let row = sqlx::query_as::<_, IncidentRow<d::StoredId, d::StoredInstant>>(d::OPEN_INCIDENT)
                .bind(&raise.cause)
                .bind(&raise.subject)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::sql)?
                .ok_or_else(|| {
                    StoreError::Other(format!("incident {}/{} vanished while raised", raise.cause, raise.subject))
                })?;
            let mut incident = row.into_domain()?;
            if inserted == 1 {
                tx.commit().await.map_err(error::sql)?;
                return Ok((incident, true));
            }
            incident.severity = incident.severity.max(raise.severity);
            incident.events.extend(raise.events.iter().copied());
            let overflow = incident.events.len().saturating_sub(MAX_ATTACHED_EVENTS);
            incident.events.drain(..overflow);
            incident.occurrences += 1;
            incident.last_seen_at = incident.last_seen_at.max(raise.at);
            sqlx::query(ATTACH)
                .bind(d::id(incident.id))
                .bind(incident.severity.as_str())
                .bind(encode_events(&incident.events))
                .bind(d::instant(incident.last_seen_at)?)
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)?;
            Ok((incident, false))
        })
    }

    async fn incident(&self, id: uuid::Uuid) -> Result<Option<Incident>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row = sqlx::query_as::<_, IncidentRow<d::StoredId, d::StoredInstant>>(BY_ID)
                .bind(d::id(id))
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(IncidentRow::into_domain).transpose()
        })
    }

    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT id, cause, subject, severity, state, title, details, events, occurrences, opened_at, \
                 last_seen_at, updated_at, updated_by FROM incidents WHERE 1 = 1",
            );
            if let Some(state) = filter.state {
                query.push(" AND state = ").push_bind(state.as_str());
            }
            if let Some(min) = filter.min_severity {
                let names: Vec<&'static str> =
                    Severity::ALL.into_iter().filter(|s| *s >= min).map(Severity::as_str).collect();
                query.push(" AND severity IN (");
                let mut list = query.separated(", ");
                for name in names {
                    list.push_bind(name);
                }
                query.push(")");
            }
            if let Some(before) = filter.before {
                query.push(" AND id < ").push_bind(d::id(before));
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(filter.limit));
            let rows = query
                .build_query_as::<IncidentRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(IncidentRow::into_domain).collect()
        })
    }

    async fn set_incident_state(
        &self,
        id: uuid::Uuid,
        from: IncidentState,
        to: IncidentState,
        by: &str,
        at: time::OffsetDateTime,
    ) -> Result<Option<Incident>, StoreError> {
        let changed = on_pool!(self.pool(), |pool, d| {
            sqlx::query(SET_STATE)
                .bind(d::id(id))
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(by)
                .bind(d::instant(at)?)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        self.incident(id).await
    }

    async fn incident_counts(
        &self,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
        bucket: time::Duration,
    ) -> Result<Vec<(u32, String, u64)>, StoreError> {
        let bucket_us = bucket_micros(bucket)?;
        let rows: Vec<(i64, String, i64)> = on_pool!(self.pool(), |pool, d| {
            sqlx::query_as(d::INCIDENT_COUNTS)
                .bind(d::instant(up_to_a_microsecond(since))?)
                .bind(d::instant(up_to_a_microsecond(until))?)
                .bind(bucket_us)
                .fetch_all(pool)
                .await
                .map_err(error::sql)?
        });
        rows.into_iter()
            .map(|(bucket, cause, n)| {
                let bucket = u32::try_from(bucket).map_err(|_| error::corrupt(format!("incident bucket {bucket}")))?;
                Ok((bucket, cause, u64::try_from(n).map_err(|_| error::corrupt(format!("incident count {n}")))?))
            })
            .collect()
    }

    async fn unresolved_incidents(&self) -> Result<Vec<(Severity, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            on_pool!(self.pool(), |pool, _d| sqlx::query_as(UNRESOLVED).fetch_all(pool).await.map_err(error::sql)?);
        rows.into_iter()
            .map(|(severity, n)| {
                let parsed = Severity::parse(&severity)
                    .ok_or_else(|| error::corrupt(format!("an incident has severity {severity:?}")))?;
                Ok((parsed, u64::try_from(n).map_err(|_| error::corrupt(format!("incident count {n}")))?))
            })
            .collect()
    }

    async fn record_incident_action(&self, action: &IncidentAction) -> Result<(), StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT_ACTION)
                .bind(d::id(action.id))
                .bind(d::id(action.incident))
                .bind(action.kind.as_str())
                .bind(&action.target)
                .bind(d::instant(action.taken_at)?)
                .bind(action.expires_at.map(d::instant).transpose()?)
                .bind(action.reverted_at.map(d::instant).transpose()?)
                .bind(action.reverted_by.as_deref())
                .execute(pool)
                .await
                .map_err(error::sql)?;
            Ok(())
        })
    }

    async fn incident_action(&self, id: uuid::Uuid) -> Result<Option<IncidentAction>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row = sqlx::QueryBuilder::new(ACTION_COLUMNS)
                .push(" WHERE id = ")
                .push_bind(d::id(id))
                .build_query_as::<ActionRow<d::StoredId, d::StoredInstant>>()
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(ActionRow::into_domain).transpose()
        })
    }

    async fn incident_actions(&self, incident: uuid::Uuid) -> Result<Vec<IncidentAction>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::QueryBuilder::new(ACTION_COLUMNS)
                .push(" WHERE incident_id = ")
                .push_bind(d::id(incident))
                .push(" ORDER BY id")
                .build_query_as::<ActionRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(ActionRow::into_domain).collect()
        })
    }

    async fn revert_incident_action(
        &self,
        id: uuid::Uuid,
        by: &str,
        at: time::OffsetDateTime,
    ) -> Result<Option<IncidentAction>, StoreError> {
        let changed = on_pool!(self.pool(), |pool, d| {
            sqlx::query(REVERT_ACTION)
                .bind(d::id(id))
                .bind(by)
                .bind(d::instant(at)?)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        self.incident_action(id).await
    }

    async fn live_incident_actions(
        &self,
        kind: ResponseKind,
        now: time::OffsetDateTime,
    ) -> Result<Vec<IncidentAction>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::QueryBuilder::new(ACTION_COLUMNS)
                .push(" WHERE reverted_at IS NULL AND kind = ")
                .push_bind(kind.as_str())
                .push(" AND (expires_at IS NULL OR expires_at > ")
                .push_bind(d::instant(now)?)
                .push(") ORDER BY id")
                .build_query_as::<ActionRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(ActionRow::into_domain).collect()
        })
    }

    async fn lapsed_incident_actions(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<IncidentAction>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::QueryBuilder::new(ACTION_COLUMNS)
                .push(" WHERE reverted_at IS NULL AND expires_at <= ")
                .push_bind(d::instant(now)?)
                .push(" ORDER BY expires_at, id LIMIT ")
                .push_bind(i64::from(limit))
                .build_query_as::<ActionRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(ActionRow::into_domain).collect()
        })
    }
}
