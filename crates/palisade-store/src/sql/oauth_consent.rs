//! Remembered OAuth consents, written once for both dialects: one statement each (`put` is an
//! upsert, so two concurrent consents leave one row, the later one).

use async_trait::async_trait;
use palisade_core::store::{OAuthConsent, OAuthConsentStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const PUT: &str = "INSERT INTO oauth_consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at";

const ONE: &str = "SELECT client_id, scopes, granted_at FROM oauth_consents WHERE user_id = $1 AND client_id = $2";

const DELETE: &str = "DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2";

fn into_domain<At: Stored<Output = time::OffsetDateTime>>(
    user: UserId,
    (client_id, scopes, granted_at): (String, String, At),
) -> Result<OAuthConsent, StoreError> {
    let scopes = serde_json::from_str(&scopes)
        .map_err(|e| error::corrupt(format!("the consent of {user} to {client_id} has invalid scopes ({e})")))?;
    Ok(OAuthConsent { client_id, scopes, granted_at: granted_at.into_domain()? })
}

#[async_trait]
impl OAuthConsentStore for SqlStore {
    async fn put_oauth_consent(&self, user: UserId, consent: &OAuthConsent) -> Result<(), StoreError> {
        let scopes = serde_json::Value::from(consent.scopes.clone()).to_string();
        on_pool!(self.pool(), |pool, d| {
            sqlx::query(PUT)
                .bind(d::id(user.as_uuid()))
                .bind(&consent.client_id)
                .bind(scopes)
                .bind(d::instant(consent.granted_at)?)
                .execute(pool)
                .await
                .map_err(error::sql)?;
            Ok(())
        })
    }

    async fn oauth_consent(&self, user: UserId, client_id: &str) -> Result<Option<OAuthConsent>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row: Option<(String, String, d::StoredInstant)> = sqlx::query_as(ONE)
                .bind(d::id(user.as_uuid()))
                .bind(client_id)
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(|r| into_domain(user, r)).transpose()
        })
    }

    async fn oauth_consents(&self, user: UserId) -> Result<Vec<OAuthConsent>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows: Vec<(String, String, d::StoredInstant)> = sqlx::query_as(d::OAUTH_CONSENTS_OF)
                .bind(d::id(user.as_uuid()))
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(|r| into_domain(user, r)).collect()
        })
    }

    async fn delete_oauth_consent(&self, user: UserId, client_id: &str) -> Result<bool, StoreError> {
        let deleted = on_pool!(self.pool(), |pool, d| {
            sqlx::query(DELETE)
                .bind(d::id(user.as_uuid()))
                .bind(client_id)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        Ok(deleted == 1)
    }
}
