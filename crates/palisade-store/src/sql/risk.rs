//! The risk store's queries: scored login attempts, written once for both dialects.
//!
//! - `insert_risk_record` is one INSERT; a reused id is an error (the primary key), and so is a
//!   device that is not in the registry (the foreign key).
//! - `settle_risk_record` is one conditional UPDATE that matches only a pending attempt, so of
//!   concurrent settlements exactly one reports `true`.
//! - `risk_records` and `login_history` come back newest first (ties by id, which is time-ordered),
//!   on the `(user_id, at)` index and its partial twin for succeeded attempts.
//!
//! The assessment is stored whole as JSON text; its score and decision are stored beside it as
//! well, for the schema's checks and for queries. Read back, the score column is the score (a
//! float survives the database bit for bit; JSON text may not), and a decision that disagrees with
//! the JSON is corruption.

use async_trait::async_trait;
use palisade_core::device::DeviceId;
use palisade_core::risk::{LoginResult, PastLogin, RiskAssessment, RiskDecision, RiskRecord};
use palisade_core::store::{RiskStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const INSERT: &str = "INSERT INTO risk_records \
     (id, user_id, at, ip, country, city, latitude, longitude, accuracy_km, asn, device_id, score, decision, \
      assessment, result) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// Matches only attempt `$1` while it is pending.
const SETTLE: &str = "UPDATE risk_records SET result = $2 WHERE id = $1 AND result = 'pending'";

const OF_USER: &str = "SELECT id, user_id, at, ip, country, city, latitude, longitude, accuracy_km, asn, device_id, \
     score, decision, assessment, result FROM risk_records WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2";

const HISTORY: &str = "SELECT at, country, latitude, longitude, accuracy_km, asn FROM risk_records \
     WHERE user_id = $1 AND result = 'succeeded' ORDER BY at DESC, id DESC LIMIT $2";

const PURGE: &str = "DELETE FROM risk_records WHERE at < $1";

/// A `risk_records` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct RiskRow<Id, At> {
    id: Id,
    user_id: Id,
    at: At,
    ip: Option<String>,
    country: Option<String>,
    city: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_km: Option<i64>,
    asn: Option<i64>,
    device_id: Option<Id>,
    score: f64,
    decision: String,
    assessment: String,
    result: String,
}

impl<Id, At> RiskRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<RiskRecord, StoreError> {
        let id = self.id.into_domain()?;
        let what = || format!("risk record {id}");
        let decision = RiskDecision::parse(&self.decision)
            .ok_or_else(|| error::corrupt(format!("{} has unknown decision {:?}", what(), self.decision)))?;
        let mut assessment: RiskAssessment = serde_json::from_str(&self.assessment)
            .map_err(|e| error::corrupt(format!("{} has an invalid assessment ({e})", what())))?;
        if assessment.decision != decision {
            return Err(error::corrupt(format!(
                "{} has decision {:?} but its assessment says {:?}",
                what(),
                self.decision,
                assessment.decision.as_str()
            )));
        }
        assessment.score = self.score;
        Ok(RiskRecord {
            id,
            user_id: UserId::from_uuid(self.user_id.into_domain()?),
            at: self.at.into_domain()?,
            ip: self.ip,
            country: self.country,
            city: self.city,
            location: location(self.latitude, self.longitude, &what)?,
            accuracy_km: unsigned(self.accuracy_km, "accuracy", &what)?,
            asn: unsigned(self.asn, "ASN", &what)?,
            device_id: self.device_id.map(Stored::into_domain).transpose()?.map(DeviceId::from_uuid),
            assessment,
            result: LoginResult::parse(&self.result)
                .ok_or_else(|| error::corrupt(format!("{} has unknown result {:?}", what(), self.result)))?,
        })
    }
}

/// A row of the login history.
#[derive(sqlx::FromRow)]
struct PastLoginRow<At> {
    at: At,
    country: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_km: Option<i64>,
    asn: Option<i64>,
}

impl<At> PastLoginRow<At>
where
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<PastLogin, StoreError> {
        let at = self.at.into_domain()?;
        let what = || format!("the succeeded login at {at}");
        Ok(PastLogin {
            at,
            country: self.country,
            asn: unsigned(self.asn, "ASN", &what)?,
            location: location(self.latitude, self.longitude, &what)?,
            accuracy_km: unsigned(self.accuracy_km, "accuracy", &what)?,
        })
    }
}

/// Both coordinates or neither (the schema's promise).
fn location(
    latitude: Option<f64>,
    longitude: Option<f64>,
    what: &dyn Fn() -> String,
) -> Result<Option<(f64, f64)>, StoreError> {
    match (latitude, longitude) {
        (Some(latitude), Some(longitude)) => Ok(Some((latitude, longitude))),
        (None, None) => Ok(None),
        _ => Err(error::corrupt(format!("{} has only one coordinate", what()))),
    }
}

fn unsigned(value: Option<i64>, field: &str, what: &dyn Fn() -> String) -> Result<Option<u32>, StoreError> {
    value.map(|n| u32::try_from(n).map_err(|_| error::corrupt(format!("{} has {field} {n}", what())))).transpose()
}

#[async_trait]
impl RiskStore for SqlStore {
    async fn insert_risk_record(&self, record: &RiskRecord) -> Result<(), StoreError> {
        let assessment = serde_json::to_string(&record.assessment)
            .map_err(|e| StoreError::Other(format!("risk record {} cannot be encoded: {e}", record.id)))?;
        let (latitude, longitude) = record.location.unzip();
        on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT)
                .bind(d::id(record.id))
                .bind(d::id(record.user_id.as_uuid()))
                .bind(d::instant(record.at)?)
                .bind(record.ip.as_deref())
                .bind(record.country.as_deref())
                .bind(record.city.as_deref())
                .bind(latitude)
                .bind(longitude)
                .bind(record.accuracy_km.map(i64::from))
                .bind(record.asn.map(i64::from))
                .bind(record.device_id.map(|device| d::id(device.as_uuid())))
                .bind(record.assessment.score)
                .bind(record.assessment.decision.as_str())
                .bind(&assessment)
                .bind(record.result.as_str())
                .execute(pool)
                .await
                .map(drop)
                .map_err(error::sql)
        })
    }

    async fn settle_risk_record(&self, id: uuid::Uuid, result: LoginResult) -> Result<bool, StoreError> {
        if result == LoginResult::Pending {
            return Err(StoreError::Other(format!("risk record {id} cannot be settled as pending")));
        }
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(SETTLE).bind(d::id(id)).bind(result.as_str());
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn risk_records(&self, user: UserId, limit: u32) -> Result<Vec<RiskRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, RiskRow<d::StoredId, d::StoredInstant>>(OF_USER)
                .bind(d::id(user.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(RiskRow::into_domain).collect()
        })
    }

    async fn login_history(&self, user: UserId, limit: u32) -> Result<Vec<PastLogin>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, PastLoginRow<d::StoredInstant>>(HISTORY)
                .bind(d::id(user.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(PastLoginRow::into_domain).collect()
        })
    }

    async fn purge_risk_records(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(PURGE).bind(d::instant(before)?);
            query.execute(pool).await.map(|done| done.rows_affected()).map_err(error::sql)
        })
    }
}
