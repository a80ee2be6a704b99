//! Retention's queries, written once for both dialects: a count per kind for the dry run, and a
//! bounded DELETE per kind (the rows older than their cutoff, at most `limit` each call). Deleting
//! an incident deletes its actions (ON DELETE CASCADE).

use async_trait::async_trait;
use palisade_core::compliance::retention::{RetentionCounts, RetentionCutoffs};
use palisade_core::store::{RetentionStore, StoreError};

use super::{SqlStore, on_pool};
use crate::error;

const COUNT_LOGINS: &str = "SELECT COUNT(*) FROM risk_records WHERE at < $1";
const COUNT_INCIDENTS: &str = "SELECT COUNT(*) FROM incidents WHERE state = 'resolved' AND updated_at < $1";
const COUNT_DELIVERIES: &str =
    "SELECT COUNT(*) FROM alert_deliveries WHERE state IN ('sent', 'suppressed', 'dead') AND created_at < $1";

const DELETE_LOGINS: &str = "DELETE FROM risk_records WHERE id IN (SELECT id FROM risk_records WHERE at < $1 LIMIT $2)";
const DELETE_INCIDENTS: &str = "DELETE FROM incidents WHERE id IN \
     (SELECT id FROM incidents WHERE state = 'resolved' AND updated_at < $1 LIMIT $2)";
const DELETE_DELIVERIES: &str = "DELETE FROM alert_deliveries WHERE id IN (SELECT id FROM alert_deliveries \
     WHERE state IN ('sent', 'suppressed', 'dead') AND created_at < $1 LIMIT $2)";

fn count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| error::corrupt(format!("a count of {n} rows")))
}

#[async_trait]
impl RetentionStore for SqlStore {
    async fn retention_counts(&self, cutoffs: &RetentionCutoffs) -> Result<RetentionCounts, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let mut counts = [0i64; 3];
            for (slot, (sql, cutoff)) in counts.iter_mut().zip([
                (COUNT_LOGINS, cutoffs.login_history),
                (COUNT_INCIDENTS, cutoffs.incidents),
                (COUNT_DELIVERIES, cutoffs.alert_deliveries),
            ]) {
                *slot = sqlx::query_scalar(sql).bind(d::instant(cutoff)?).fetch_one(pool).await.map_err(error::sql)?;
            }
            let [login_history, incidents, alert_deliveries] = counts;
            Ok(RetentionCounts {
                login_history: count(login_history)?,
                incidents: count(incidents)?,
                alert_deliveries: count(alert_deliveries)?,
            })
        })
    }

    async fn apply_retention(&self, cutoffs: &RetentionCutoffs, limit: u32) -> Result<RetentionCounts, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let mut removed = [0u64; 3];
            for (slot, (sql, cutoff)) in removed.iter_mut().zip([
                (DELETE_LOGINS, cutoffs.login_history),
                (DELETE_INCIDENTS, cutoffs.incidents),
                (DELETE_DELIVERIES, cutoffs.alert_deliveries),
            ]) {
                *slot = sqlx::query(sql)
                    .bind(d::instant(cutoff)?)
                    .bind(i64::from(limit))
                    .execute(pool)
                    .await
                    .map_err(error::sql)?
                    .rows_affected();
            }
            let [login_history, incidents, alert_deliveries] = removed;
            Ok(RetentionCounts { login_history, incidents, alert_deliveries })
        })
    }
}
