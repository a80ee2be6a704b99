//! Alert preferences and the alert outbox, written once for both dialects.
//!
//! - `set_alert_preferences` is one upsert.
//! - `enqueue_deliveries` is one transaction.
//! - `claim_delivery` is one conditional UPDATE matching a pending row whose lease is absent or
//!   passed, so of concurrent claims one updates a row.
//! - `finish_delivery` is one conditional UPDATE matching the claim's owner.
//! - `retry_delivery` is one conditional UPDATE matching a dead row.

use async_trait::async_trait;
use palisade_core::monitoring::Severity;
use palisade_core::monitoring::alert::{
    AlertPreferences, AlertType, Channel, Delivery, DeliveryOutcome, DeliveryState,
};
use palisade_core::store::{AlertStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const PREFERENCES: &str =
    "SELECT email, sms, push, severity_threshold, alert_types FROM alert_preferences WHERE user_id = $1";

const SET_PREFERENCES: &str = "INSERT INTO alert_preferences \
     (user_id, email, sms, push, severity_threshold, alert_types, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, sms = excluded.sms, push = excluded.push, \
     severity_threshold = excluded.severity_threshold, alert_types = excluded.alert_types, \
     updated_at = excluded.updated_at";

const COLUMNS: &str = "SELECT id, alert_id, channel, recipient, alert, state, attempts, next_attempt_at, last_error, \
     created_at, sent_at FROM alert_deliveries";

const INSERT: &str = "INSERT INTO alert_deliveries (id, alert_id, channel, recipient, alert, state, attempts, \
     next_attempt_at, last_error, lease_owner, lease_until, created_at, sent_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10, $11)";

const CLAIM: &str = "UPDATE alert_deliveries SET lease_owner = $2, lease_until = $3 \
     WHERE id = $1 AND state = 'pending' AND (lease_until IS NULL OR lease_until <= $4)";

const SENT: &str = "UPDATE alert_deliveries SET state = 'sent', sent_at = $3, attempts = attempts + 1, \
     last_error = NULL, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2";

const RETRY: &str = "UPDATE alert_deliveries SET next_attempt_at = $3, last_error = $4, attempts = attempts + 1, \
     lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2";

const DEAD: &str = "UPDATE alert_deliveries SET state = 'dead', last_error = $3, attempts = attempts + 1, \
     lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2";

const REVIVE: &str = "UPDATE alert_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $2, \
     lease_owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'dead'";

/// An `alert_deliveries` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct DeliveryRow<Id, At> {
    id: Id,
    alert_id: Id,
    channel: String,
    recipient: String,
    alert: String,
    state: String,
    attempts: i32,
    next_attempt_at: At,
    last_error: Option<String>,
    created_at: At,
    sent_at: Option<At>,
}

impl<Id, At> DeliveryRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<Delivery, StoreError> {
        let id = self.id.into_domain()?;
        let what = || format!("alert delivery {id}");
        Ok(Delivery {
            id,
            alert_id: self.alert_id.into_domain()?,
            channel: Channel::parse(&self.channel)
                .ok_or_else(|| error::corrupt(format!("{} has channel {:?}", what(), self.channel)))?,
            recipient: self.recipient,
            alert: serde_json::from_str(&self.alert)
                .map_err(|e| error::corrupt(format!("{} holds an invalid alert ({e})", what())))?,
            state: DeliveryState::parse(&self.state)
                .ok_or_else(|| error::corrupt(format!("{} has state {:?}", what(), self.state)))?,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| error::corrupt(format!("{} has {} attempts", what(), self.attempts)))?,
            next_attempt_at: self.next_attempt_at.into_domain()?,
            last_error: self.last_error,
            created_at: self.created_at.into_domain()?,
            sent_at: self.sent_at.map(Stored::into_domain).transpose()?,
        })
    }
}

/// The longest error text kept on a row.
const MAX_ERROR: usize = 500;

fn clip(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR) {
        Some((at, _)) => format!("{}…", &error[..at]),
        None => error.to_owned(),
    }
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn alert_preferences(&self, user: UserId) -> Result<Option<AlertPreferences>, StoreError> {
        let row: Option<(bool, bool, bool, String, String)> = on_pool!(self.pool(), |pool, d| {
            sqlx::query_as(PREFERENCES).bind(d::id(user.as_uuid())).fetch_optional(pool).await.map_err(error::sql)?
        });
        let Some((email, sms, push, threshold, types)) = row else { return Ok(None) };
        let severity_threshold = Severity::parse(&threshold)
            .ok_or_else(|| error::corrupt(format!("alert preferences of {user} have threshold {threshold:?}")))?;
        let names: Vec<String> = serde_json::from_str(&types)
            .map_err(|e| error::corrupt(format!("alert preferences of {user} have invalid types ({e})")))?;
        let alert_types = names
            .iter()
            .map(|n| AlertType::parse(n).ok_or_else(|| error::corrupt(format!("alert type {n:?} of {user}"))))
            .collect::<Result<_, _>>()?;
        Ok(Some(AlertPreferences { email, sms, push, severity_threshold, alert_types }))
    }

    async fn set_alert_preferences(
        &self,
        user: UserId,
        preferences: &AlertPreferences,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let types = serde_json::Value::from(preferences.alert_types.iter().map(|t| t.as_str()).collect::<Vec<_>>());
        on_pool!(self.pool(), |pool, d| {
            sqlx::query(SET_PREFERENCES)
                .bind(d::id(user.as_uuid()))
                .bind(preferences.email)
                .bind(preferences.sms)
                .bind(preferences.push)
                .bind(preferences.severity_threshold.as_str())
                .bind(types.to_string())
                .bind(d::instant(at)?)
                .execute(pool)
                .await
                .map_err(error::sql)?;
            Ok(())
        })
    }

    async fn enqueue_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            for delivery in deliveries {
                sqlx::query(INSERT)
                    .bind(d::id(delivery.id))
                    .bind(d::id(delivery.alert_id))
                    .bind(delivery.channel.as_str())
                    .bind(&delivery.recipient)
                    .bind(delivery.alert.to_string())
                    .bind(delivery.state.as_str())
                    .bind(i32::try_from(delivery.attempts).unwrap_or(i32::MAX))
                    .bind(d::instant(delivery.next_attempt_at)?)
                    .bind(delivery.last_error.as_deref())
                    .bind(d::instant(delivery.created_at)?)
                    .bind(delivery.sent_at.map(d::instant).transpose()?)
                    .execute(&mut *tx)
                    .await
                    .map_err(error::sql)?;
            }
            tx.commit().await.map_err(error::sql)
        })
    }

    async fn due_deliveries(&self, now: time::OffsetDateTime, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let now = d::instant(now)?;
            let rows = sqlx::QueryBuilder::new(COLUMNS)
                .push(" WHERE state = 'pending' AND next_attempt_at <= ")
                .push_bind(now)
                .push(" AND (lease_until IS NULL OR lease_until <= ")
                .push_bind(now)
                .push(") ORDER BY next_attempt_at, id LIMIT ")
                .push_bind(i64::from(limit))
                .build_query_as::<DeliveryRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(DeliveryRow::into_domain).collect()
        })
    }

    async fn claim_delivery(
        &self,
        id: uuid::Uuid,
        owner: &str,
        until: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let claimed = on_pool!(self.pool(), |pool, d| {
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
        Ok(claimed == 1)
    }

    async fn finish_delivery(
        &self,
        id: uuid::Uuid,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self.pool(), |pool, d| {
            let query = match outcome {
                DeliveryOutcome::Sent(at) => sqlx::query(SENT).bind(d::id(id)).bind(owner).bind(d::instant(*at)?),
                DeliveryOutcome::Retry { at, error } => {
                    sqlx::query(RETRY).bind(d::id(id)).bind(owner).bind(d::instant(*at)?).bind(clip(error))
                }
                DeliveryOutcome::Dead(error) => sqlx::query(DEAD).bind(d::id(id)).bind(owner).bind(clip(error)),
            };
            query.execute(pool).await.map_err(error::sql)?.rows_affected()
        });
        Ok(changed == 1)
    }

    async fn deliveries(
        &self,
        state: Option<DeliveryState>,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let mut query = sqlx::QueryBuilder::new(COLUMNS);
            query.push(" WHERE 1 = 1");
            if let Some(state) = state {
                query.push(" AND state = ").push_bind(state.as_str());
            }
            if let Some(before) = before {
                query.push(" AND id < ").push_bind(d::id(before));
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
            let rows = query
                .build_query_as::<DeliveryRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(DeliveryRow::into_domain).collect()
        })
    }

    async fn retry_delivery(&self, id: uuid::Uuid, now: time::OffsetDateTime) -> Result<Option<Delivery>, StoreError> {
        let changed = on_pool!(self.pool(), |pool, d| {
            sqlx::query(REVIVE)
                .bind(d::id(id))
                .bind(d::instant(now)?)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        on_pool!(self.pool(), |pool, d| {
            let row = sqlx::QueryBuilder::new(COLUMNS)
                .push(" WHERE id = ")
                .push_bind(d::id(id))
                .build_query_as::<DeliveryRow<d::StoredId, d::StoredInstant>>()
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(DeliveryRow::into_domain).transpose()
        })
    }
}
