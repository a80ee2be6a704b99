//! The device registry's queries, written once for both dialects.
//!
//! - `record_device_seen` is one transaction: an INSERT that does nothing on a known
//!   `(user_id, fingerprint)`, and — when it did nothing — an UPDATE of the known row that moves
//!   only the last-seen fields (and fills the type, OS and browser where they are empty). On
//!   PostgreSQL a second INSERT of the same pair waits for the first one's transaction and then does
//!   nothing, and SQLite runs writes one at a time, so of concurrent first logins from one device
//!   exactly one inserts and reports the device new; the others update the row it made. A device
//!   forgotten between the two statements (PostgreSQL: a concurrent `delete_device` commits in
//!   between) is inserted afresh on the next round. A reused id (the primary key) is an error.
//! - `update_device`, `approve_device` and `delete_device` are one statement each, matching only the
//!   user's own device.
//! - `devices` come back most recently seen first (ties by id), on the `(user_id, last_seen_at)`
//!   index.

use async_trait::async_trait;
use palisade_core::device::{DeviceFingerprint, DeviceId, DeviceRecord, DeviceSeen, DeviceUpdate, TrustLevel};
use palisade_core::store::{DeviceStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

/// The columns every read returns, in `DeviceRow`'s order.
macro_rules! columns {
    () => {
        "id, user_id, fingerprint, name, device_type, os, browser, first_seen_at, last_seen_at, last_ip, \
         last_country, last_city, trust_level, approved"
    };
}

/// The `RETURNING` clause of every write that answers the device.
macro_rules! returning {
    () => {
        concat!("RETURNING ", columns!())
    };
}

/// The start of every read.
macro_rules! select {
    () => {
        concat!("SELECT ", columns!(), " FROM devices ")
    };
}

/// Inserts a device unless the user already has one with that fingerprint.
const INSERT: &str = concat!(
    "INSERT INTO devices (id, user_id, fingerprint, name, device_type, os, browser, first_seen_at, last_seen_at, \
     last_ip, last_country, last_city, trust_level, approved) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT (user_id, fingerprint) DO NOTHING ",
    returning!()
);

/// Records a login from the known device with fingerprint `$2` of user `$1`: the last-seen fields
/// move, the type, OS and browser fill only where empty, and the rest stays.
const SEEN: &str = concat!(
    "UPDATE devices SET last_seen_at = $3, last_ip = $4, last_country = $5, last_city = $6, \
     device_type = COALESCE(device_type, $7), os = COALESCE(os, $8), browser = COALESCE(browser, $9) \
     WHERE user_id = $1 AND fingerprint = $2 ",
    returning!()
);

const BY_FINGERPRINT: &str = concat!(select!(), "WHERE user_id = $1 AND fingerprint = $2");

const BY_ID: &str = concat!(select!(), "WHERE user_id = $1 AND id = $2");

const OF_USER: &str = concat!(select!(), "WHERE user_id = $1 ORDER BY last_seen_at DESC, id DESC");

/// Renames (`$3`) and/or re-trusts (`$4`) device `$2` of user `$1`; NULL leaves a field as it is.
const UPDATE: &str = concat!(
    "UPDATE devices SET name = COALESCE($3, name), trust_level = COALESCE($4, trust_level) \
     WHERE user_id = $1 AND id = $2 ",
    returning!()
);

/// Approves device `$2` of user `$1` (`$3` is true) and raises a low trust to medium.
const APPROVE: &str = "UPDATE devices SET approved = $3, \
     trust_level = CASE WHEN trust_level = 'low' THEN 'medium' ELSE trust_level END \
     WHERE user_id = $1 AND id = $2";

const DELETE: &str = "DELETE FROM devices WHERE user_id = $1 AND id = $2";

/// How many times `record_device_seen` tries the insert-or-update before giving up: a second round
/// only happens when the device was forgotten between its two statements.
const SEEN_ROUNDS: usize = 3;

/// A `devices` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct DeviceRow<Id, At> {
    id: Id,
    user_id: Id,
    fingerprint: Vec<u8>,
    name: String,
    device_type: Option<String>,
    os: Option<String>,
    browser: Option<String>,
    first_seen_at: At,
    last_seen_at: At,
    last_ip: Option<String>,
    last_country: Option<String>,
    last_city: Option<String>,
    trust_level: String,
    approved: bool,
}

impl<Id, At> DeviceRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<DeviceRecord, StoreError> {
        let id = self.id.into_domain()?;
        let fingerprint = <[u8; 32]>::try_from(self.fingerprint.as_slice()).map_err(|_| {
            error::corrupt(format!("device {id} has a fingerprint of {} bytes", self.fingerprint.len()))
        })?;
        Ok(DeviceRecord {
            id: DeviceId::from_uuid(id),
            user_id: UserId::from_uuid(self.user_id.into_domain()?),
            fingerprint: DeviceFingerprint(fingerprint),
            name: self.name,
            device_type: self.device_type,
            os: self.os,
            browser: self.browser,
            first_seen_at: self.first_seen_at.into_domain()?,
            last_seen_at: self.last_seen_at.into_domain()?,
            last_ip: self.last_ip,
            last_country: self.last_country,
            last_city: self.last_city,
            trust_level: TrustLevel::parse(&self.trust_level)
                .map_err(|_| error::corrupt(format!("device {id} has unknown trust level {:?}", self.trust_level)))?,
            approved: self.approved,
        })
    }
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn record_device_seen(&self, device: &DeviceRecord) -> Result<DeviceSeen, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let user = d::id(device.user_id.as_uuid());
            let fingerprint = &device.fingerprint.0[..];
            let last_seen_at = d::instant(device.last_seen_at)?;
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            for _ in 0..SEEN_ROUNDS {
                let inserted = sqlx::query_as::<_, DeviceRow<d::StoredId, d::StoredInstant>>(INSERT)
                    .bind(d::id(device.id.as_uuid()))
                    .bind(user)
                    .bind(fingerprint)
                    .bind(&device.name)
                    .bind(device.device_type.as_deref())
                    .bind(device.os.as_deref())
                    .bind(device.browser.as_deref())
                    .bind(d::instant(device.first_seen_at)?)
                    .bind(last_seen_at)
                    .bind(device.last_ip.as_deref())
                    .bind(device.last_country.as_deref())
                    .bind(device.last_city.as_deref())
                    .bind(device.trust_level.as_str())
                    .bind(device.approved)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(error::sql)?;
                let (row, new) = match inserted {
                    Some(row) => (row, true),
                    None => {
                        let updated = sqlx::query_as::<_, DeviceRow<d::StoredId, d::StoredInstant>>(SEEN)
                            .bind(user)
                            .bind(fingerprint)
                            .bind(last_seen_at)
                            .bind(device.last_ip.as_deref())
                            .bind(device.last_country.as_deref())
                            .bind(device.last_city.as_deref())
                            .bind(device.device_type.as_deref())
                            .bind(device.os.as_deref())
                            .bind(device.browser.as_deref())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(error::sql)?;
                        match updated {
                            Some(row) => (row, false),
                            // Forgotten since the INSERT looked: try again.
                            None => continue,
                        }
                    }
                };
                let device = row.into_domain()?;
                tx.commit().await.map_err(error::sql)?;
                return Ok(DeviceSeen { device, new });
            }
            Err(StoreError::Other(format!(
                "device {} of user {} kept disappearing while its login was recorded",
                device.id, device.user_id
            )))
        })
    }

    async fn device_by_fingerprint(
        &self,
        user: UserId,
        fingerprint: &DeviceFingerprint,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, DeviceRow<d::StoredId, d::StoredInstant>>(BY_FINGERPRINT)
                .bind(d::id(user.as_uuid()))
                .bind(&fingerprint.0[..])
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(DeviceRow::into_domain)
                .transpose()
        })
    }

    async fn device(&self, user: UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, DeviceRow<d::StoredId, d::StoredInstant>>(BY_ID)
                .bind(d::id(user.as_uuid()))
                .bind(d::id(id.as_uuid()))
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(DeviceRow::into_domain)
                .transpose()
        })
    }

    async fn devices(&self, user: UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::query_as::<_, DeviceRow<d::StoredId, d::StoredInstant>>(OF_USER)
                .bind(d::id(user.as_uuid()))
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(DeviceRow::into_domain).collect()
        })
    }

    async fn update_device(
        &self,
        user: UserId,
        id: DeviceId,
        update: &DeviceUpdate,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            sqlx::query_as::<_, DeviceRow<d::StoredId, d::StoredInstant>>(UPDATE)
                .bind(d::id(user.as_uuid()))
                .bind(d::id(id.as_uuid()))
                .bind(update.name.as_deref())
                .bind(update.trust_level.map(TrustLevel::as_str))
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?
                .map(DeviceRow::into_domain)
                .transpose()
        })
    }

    async fn approve_device(&self, user: UserId, id: DeviceId) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(APPROVE).bind(d::id(user.as_uuid())).bind(d::id(id.as_uuid())).bind(true);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn delete_device(&self, user: UserId, id: DeviceId) -> Result<bool, StoreError> {
        let result = on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(DELETE).bind(d::id(user.as_uuid())).bind(d::id(id.as_uuid()));
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }
}
