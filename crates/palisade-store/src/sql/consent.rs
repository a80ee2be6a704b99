//! The consent ledger's queries, written once for both dialects.
//!
//! - `put_consent_text` is one INSERT … ON CONFLICT DO NOTHING (the hash and the (type, version)
//!   pair are both unique), then, when nothing was inserted, one read of the text stored for that
//!   type and version to tell "already there" from "another text has that version".
//! - `try_append_consent` is one INSERT … ON CONFLICT (user_id, consent_type, seq) DO NOTHING: of two
//!   writers taking the same next number, one inserts and the other gets `false`.
//! - The table refuses UPDATE (a trigger): the ledger is append-only.

use async_trait::async_trait;
use palisade_core::compliance::Consent;
use palisade_core::compliance::consent::{ConsentAction, ConsentText, ConsentTextPut};
use palisade_core::store::{ConsentStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const PUT_TEXT: &str = "INSERT INTO consent_texts (hash, consent_type, version, text, recorded_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

const TEXT_OF_VERSION: &str = "SELECT hash FROM consent_texts WHERE consent_type = $1 AND version = $2";

const TEXT: &str = "SELECT hash, consent_type, version, text, recorded_at FROM consent_texts WHERE hash = $1";

const APPEND: &str = "INSERT INTO consents (id, user_id, consent_type, seq, action, version, text_hash, method, ip, \
     user_agent, reason, at, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (user_id, consent_type, seq) DO NOTHING";

const COLUMNS: &str = "SELECT id, user_id, consent_type, seq, action, version, text_hash, method, ip, user_agent, \
     reason, at, valid_until FROM consents";

/// Users whose newest entry of the type is a consent given and valid at `$2`.
const COUNT_LIVE: &str = "SELECT COUNT(*) FROM consents c WHERE c.consent_type = $1 AND c.action = 'given' \
     AND c.valid_until > $2 AND c.seq = (SELECT MAX(m.seq) FROM consents m \
     WHERE m.user_id = c.user_id AND m.consent_type = c.consent_type)";

/// A `consents` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct ConsentRow<Id, At> {
    id: Id,
    user_id: Id,
    consent_type: String,
    seq: i64,
    action: String,
    version: String,
    text_hash: Vec<u8>,
    method: String,
    ip: Option<String>,
    user_agent: Option<String>,
    reason: Option<String>,
    at: At,
    valid_until: Option<At>,
}

impl<Id, At> ConsentRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<Consent, StoreError> {
        let id = self.id.into_domain()?;
        Ok(Consent {
            id,
            user_id: UserId::from_uuid(self.user_id.into_domain()?),
            action: ConsentAction::parse(&self.action)
                .ok_or_else(|| error::corrupt(format!("consent {id} has action {:?}", self.action)))?,
            consent_type: self.consent_type,
            seq: self.seq,
            version: self.version,
            text_hash: self.text_hash,
            method: self.method,
            ip: self.ip,
            user_agent: self.user_agent,
            reason: self.reason,
            at: self.at.into_domain()?,
            valid_until: self.valid_until.map(Stored::into_domain).transpose()?,
        })
    }
}

#[async_trait]
impl ConsentStore for SqlStore {
    async fn put_consent_text(&self, text: &ConsentText) -> Result<ConsentTextPut, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let inserted = sqlx::query(PUT_TEXT)
                .bind(&text.hash)
                .bind(&text.consent_type)
                .bind(&text.version)
                .bind(&text.text)
                .bind(d::instant(text.recorded_at)?)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected();
            if inserted == 1 {
                return Ok(ConsentTextPut::Stored);
            }
            let stored: Option<Vec<u8>> = sqlx::query_scalar(TEXT_OF_VERSION)
                .bind(&text.consent_type)
                .bind(&text.version)
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            // No row for that version means the hash was the conflict: the same type, version
            // and text (the hash covers all three) are stored.
            Ok(match stored {
                Some(hash) if hash != text.hash => ConsentTextPut::VersionTaken,
                _ => ConsentTextPut::Stored,
            })
        })
    }

    async fn consent_text(&self, hash: &[u8]) -> Result<Option<ConsentText>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row: Option<(Vec<u8>, String, String, String, d::StoredInstant)> =
                sqlx::query_as(TEXT).bind(hash).fetch_optional(pool).await.map_err(error::sql)?;
            row.map(|(hash, consent_type, version, text, recorded_at)| {
                Ok(ConsentText { hash, consent_type, version, text, recorded_at: recorded_at.into_domain()? })
            })
            .transpose()
        })
    }

    async fn try_append_consent(&self, entry: &Consent) -> Result<bool, StoreError> {
        let inserted = on_pool!(self.pool(), |pool, d| {
            sqlx::query(APPEND)
                .bind(d::id(entry.id))
                .bind(d::id(entry.user_id.as_uuid()))
                .bind(&entry.consent_type)
                .bind(entry.seq)
                .bind(entry.action.as_str())
                .bind(&entry.version)
                .bind(&entry.text_hash)
                .bind(&entry.method)
                .bind(entry.ip.as_deref())
                .bind(entry.user_agent.as_deref())
                .bind(entry.reason.as_deref())
                .bind(d::instant(entry.at)?)
                .bind(entry.valid_until.map(d::instant).transpose()?)
                .execute(pool)
                .await
                .map_err(error::sql)?
                .rows_affected()
        });
        Ok(inserted == 1)
    }

    async fn consent_ledger(&self, user: UserId) -> Result<Vec<Consent>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let rows = sqlx::QueryBuilder::new(COLUMNS)
                .push(" WHERE user_id = ")
                .push_bind(d::id(user.as_uuid()))
                .push(" ORDER BY consent_type")
                .push(d::BYTE_ORDER)
                .push(", seq")
                .build_query_as::<ConsentRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(ConsentRow::into_domain).collect()
        })
    }

    async fn latest_consent(&self, user: UserId, consent_type: &str) -> Result<Option<Consent>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row = sqlx::QueryBuilder::new(COLUMNS)
                .push(" WHERE user_id = ")
                .push_bind(d::id(user.as_uuid()))
                .push(" AND consent_type = ")
                .push_bind(consent_type)
                .push(" ORDER BY seq DESC LIMIT 1")
                .build_query_as::<ConsentRow<d::StoredId, d::StoredInstant>>()
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(ConsentRow::into_domain).transpose()
        })
    }

    async fn count_live_consents(&self, consent_type: &str, now: time::OffsetDateTime) -> Result<u64, StoreError> {
        let count: i64 = on_pool!(self.pool(), |pool, d| {
            sqlx::query_scalar(COUNT_LIVE)
                .bind(consent_type)
                .bind(d::instant(now)?)
                .fetch_one(pool)
                .await
                .map_err(error::sql)?
        });
        u64::try_from(count).map_err(|_| error::corrupt(format!("a count of {count} live consents")))
    }
}
