//! The refresh-token store's queries: families of rotated tokens, written once for both dialects
//! except the rotation statement itself.
//!
//! # Rotation
//! `rotate_refresh_token` never reads and then writes what it read: every write is conditional.
//! 1. `d::ROTATE`, one statement (so one transaction, holding SQLite's write lock or PostgreSQL's
//!    row lock on the presented token): if the presented token is live — unexpired, its family
//!    unrevoked, and unspent or, with a grace window, spent less than `grace` ago — it is marked spent
//!    (a retry keeps the first spend time) and its child is stored with the same family, user and
//!    session → `Rotated`. This is the whole of the common case. PostgreSQL does it with a
//!    conditional `UPDATE … RETURNING` feeding the `INSERT` in one statement: concurrent
//!    presentations queue on the token's row lock, and each re-checks the condition on the row as
//!    the one before left it, so with no grace exactly one matches. SQLite has no data-modifying
//!    `WITH`: it inserts the child from the live parent (`INSERT … SELECT`, which takes the write
//!    lock before it reads) and the schema's trigger `refresh_tokens_spend_parent` spends the parent.
//! 2. No row: the token is not live, and one transaction tells why. `REVOKE_REUSED` revokes the
//!    family (reason `reuse`) if the token is spent, unexpired and the family still live →
//!    `Reused`. Only the call that revokes the family answers `Reused`: of concurrent replays one
//!    raises the alarm and the others see `Revoked`.
//! 3. Otherwise `CLASSIFY` reads which of `Unknown`, `Revoked` or `Expired` it is, in that order of
//!    precedence. Nothing is written.
//!
//! Step 2 runs after step 1, outside its transaction; that is sound because a token's state only
//! moves forward (unspent → spent, live family → revoked, and `now` is fixed): a token step 1 found
//! not live is not live later either, and step 2's statements decide on what they read themselves.
//! The common case costs one statement because each statement is a round trip (to the server, or to
//! the SQLite connection's thread): as a `BEGIN IMMEDIATE; UPDATE; INSERT; COMMIT` transaction,
//! rotation on SQLite measured about 3,500/s with 16 concurrent callers on 2 cores; as one
//! statement about 6,000/s (`benches/refresh_rotation.rs`).
//!
//! Expiry is exclusive: a token is live strictly before its `expires_at`.

use async_trait::async_trait;
use palisade_core::store::{RefreshTokenStore, StoreError};
use palisade_core::token::{RefreshTokenRecord, RevokeReason, Rotation, SessionId, TokenHash};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const INSERT_FAMILY: &str =
    "INSERT INTO refresh_families (id, user_id, session_id, created_at) VALUES ($1, $2, $3, $4)";

const INSERT_FIRST_TOKEN: &str = "INSERT INTO refresh_tokens \
     (hash, family_id, parent, user_id, session_id, issued_at, expires_at) VALUES ($1, $2, NULL, $3, $4, $5, $6)";

/// The condition on the presented token (in `refresh_tokens`) for `d::ROTATE`: `$1` its hash, `$2`
/// now, `$3` the grace cutoff (a spend after it is a retry; NULL: no grace).
macro_rules! presented_is_live {
    () => {
        "hash = $1 AND expires_at > $2 AND (spent_at IS NULL OR spent_at > $3) \
         AND NOT EXISTS (SELECT 1 FROM refresh_families f \
                         WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NOT NULL)"
    };
}
pub(crate) use presented_is_live;

/// `$1` presented hash, `$2` now.
const REVOKE_REUSED: &str = "UPDATE refresh_families SET revoked_at = $2, revoked_reason = 'reuse' \
     WHERE revoked_at IS NULL AND id = (SELECT family_id FROM refresh_tokens \
                                        WHERE hash = $1 AND expires_at > $2 AND spent_at IS NOT NULL) \
     RETURNING id, user_id, session_id";

/// `$1` presented hash, `$2` now: (family revoked, token expired), or no row for an unknown token.
const CLASSIFY: &str = "SELECT f.revoked_at IS NOT NULL, t.expires_at <= $2 \
     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.hash = $1";

const REVOKE_SESSION: &str = "UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3 \
     WHERE session_id = $1 AND revoked_at IS NULL";

const REVOKE_USER: &str = "UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3 \
     WHERE user_id = $1 AND revoked_at IS NULL";

const REVOKE_USER_EXCEPT: &str = "UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3 \
     WHERE user_id = $1 AND revoked_at IS NULL AND session_id <> $4";

const PURGE_TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at < $1";

/// A family whose tokens are all gone can never be presented again.
const PURGE_EMPTY_FAMILIES: &str = "DELETE FROM refresh_families \
     WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.id)";

/// (family, user, session) as stored.
type Lineage<Id> = (Id, Id, Id);

fn lineage<Id: Stored<Output = uuid::Uuid>>(
    (family, user, session): Lineage<Id>,
) -> Result<(uuid::Uuid, UserId, SessionId), StoreError> {
    Ok((family.into_domain()?, UserId::from_uuid(user.into_domain()?), SessionId::from_uuid(session.into_domain()?)))
}

#[async_trait]
impl RefreshTokenStore for SqlStore {
    async fn insert_refresh_family(&self, record: &RefreshTokenRecord) -> Result<(), StoreError> {
        if record.parent.is_some() {
            return Err(StoreError::Other("the first token of a refresh family cannot have a parent".into()));
        }
        on_pool!(self.pool(), |pool, d| {
            let (family, user, session) =
                (d::id(record.family_id), d::id(record.user_id.as_uuid()), d::id(record.session_id.as_uuid()));
            let issued_at = d::instant(record.issued_at)?;
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let insert_family = sqlx::query(INSERT_FAMILY).bind(family).bind(user).bind(session).bind(issued_at);
            insert_family.execute(&mut *tx).await.map_err(error::sql)?;
            sqlx::query(INSERT_FIRST_TOKEN)
                .bind(&record.hash.0[..])
                .bind(family)
                .bind(user)
                .bind(session)
                .bind(issued_at)
                .bind(d::instant(record.expires_at)?)
                .execute(&mut *tx)
                .await
                .map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)
        })
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next_hash: &TokenHash,
        next_expires_at: time::OffsetDateTime,
        now: time::OffsetDateTime,
        grace: time::Duration,
    ) -> Result<Rotation, StoreError> {
        let cutoff = if grace.is_positive() {
            Some(now.checked_sub(grace).ok_or_else(|| StoreError::Other(format!("grace {grace} is out of range")))?)
        } else {
            None
        };
        on_pool!(self.pool(), |pool, d| {
            let (now, cutoff) = (d::instant(now)?, cutoff.map(d::instant).transpose()?);
            let rotated: Option<Lineage<d::StoredId>> = sqlx::query_as(d::ROTATE)
                .bind(&presented.0[..])
                .bind(now)
                .bind(cutoff)
                .bind(&next_hash.0[..])
                .bind(d::instant(next_expires_at)?)
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            if let Some(rotated) = rotated {
                let (family_id, user_id, session_id) = lineage(rotated)?;
                return Ok(Rotation::Rotated { family_id, user_id, session_id });
            }

            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let revoked: Option<Lineage<d::StoredId>> = sqlx::query_as(REVOKE_REUSED)
                .bind(&presented.0[..])
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::sql)?;
            if let Some(revoked) = revoked {
                tx.commit().await.map_err(error::sql)?;
                let (family_id, user_id, session_id) = lineage(revoked)?;
                return Ok(Rotation::Reused { family_id, user_id, session_id });
            }

            let state: Option<(bool, bool)> = sqlx::query_as(CLASSIFY)
                .bind(&presented.0[..])
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::sql)?;
            // Nothing was written: the transaction rolls back when dropped.
            match state {
                None => Ok(Rotation::Unknown),
                Some((true, _)) => Ok(Rotation::Revoked),
                Some((false, true)) => Ok(Rotation::Expired),
                // Unexpired in a live family, yet neither spendable nor revocable: unreachable while a
                // token's state only moves forward. Say so rather than guess (the caller refuses).
                Some((false, false)) => Err(StoreError::Other(format!(
                    "refresh token {presented:?} is unexpired in a live family but could not be rotated"
                ))),
            }
        })
    }

    async fn revoke_session_families(
        &self,
        session: SessionId,
        reason: RevokeReason,
        now: time::OffsetDateTime,
    ) -> Result<u64, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let query = sqlx::query(REVOKE_SESSION).bind(d::id(session.as_uuid())).bind(d::instant(now)?);
            query.bind(reason.as_str()).execute(pool).await.map(|done| done.rows_affected()).map_err(error::sql)
        })
    }

    async fn revoke_user_families(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        now: time::OffsetDateTime,
    ) -> Result<u64, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let query = match keep {
                None => sqlx::query(REVOKE_USER),
                Some(_) => sqlx::query(REVOKE_USER_EXCEPT),
            };
            let query = query.bind(d::id(user.as_uuid())).bind(d::instant(now)?).bind(reason.as_str());
            let query = match keep {
                None => query,
                Some(keep) => query.bind(d::id(keep.as_uuid())),
            };
            query.execute(pool).await.map(|done| done.rows_affected()).map_err(error::sql)
        })
    }

    async fn purge_refresh_tokens(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let before = d::instant(before)?;
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let purged = sqlx::query(PURGE_TOKENS).bind(before).execute(&mut *tx).await.map_err(error::sql)?;
            sqlx::query(PURGE_EMPTY_FAMILIES).execute(&mut *tx).await.map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)?;
            Ok(purged.rows_affected())
        })
    }
}
