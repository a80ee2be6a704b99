//! The hot store on the SQL database, for deployments without Redis.
//!
//! Expiry is explicit: every row carries `expires_at_ms` computed from the injected clock, every read
//! filters on it, and [`HotStore::purge_expired`] deletes what has passed (run it periodically).
//! Each operation is one statement — the conditional upserts and `DELETE … RETURNING` are atomic in
//! both dialects, so of concurrent callers exactly one takes a value or wins a compare-and-set —
//! except `set_add`, one transaction of three statements that locks the set's row first,
//! `ranked_add` and `ranked_add_if_room`, likewise (below), and `hit_windows`, one transaction over
//! all its windows (below), and `tally`, one transaction over all its steps in order, each the
//! statements of the operation it stands for.
//!
//! `hit_windows` locks every window's row in key order (so two callers never wait on each other
//! crosswise), reads the live counts, and either rolls back (refused: nothing counted) or counts the
//! hit in every window with `INCREMENT` and commits. A row must exist to be locked, so an absent key
//! first gets a placeholder: a counter that expired at `now`, which every read treats as absent and
//! `INCREMENT` restarts; a refusal rolls it back with the rest. SQLite's `BEGIN IMMEDIATE` takes the
//! database's write lock for the whole transaction; PostgreSQL takes the rows' locks (`FOR UPDATE`).
//!
//! A key holds a value or a counter (the schema forbids both): `increment` and `count` on a live
//! value are errors, as `INCR` on a non-number is in Redis. Sets live in their own tables, and ranked
//! sets in theirs.
//!
//! `ranked_add` and `ranked_add_if_room` are one transaction each, shaped like `set_add`'s: an expired
//! ranked set goes first, then the set's row is created or its expiry reset, which locks it
//! (PostgreSQL: the upsert's row lock; SQLite: `BEGIN IMMEDIATE`), so concurrent adds to one set run
//! one at a time and each counts the members the one before committed. `ranked_add` then trims the
//! lowest ranks beyond `keep`; `ranked_add_if_room` counts first and, with no room, rolls back
//! (nothing added, the time to live untouched). Members order by rank, then bytewise, as in a Redis
//! sorted set.

use std::sync::Arc;

use async_trait::async_trait;
use palisade_core::clock::Clock;
use palisade_core::store::{HotKey, HotStore, RateDecision, RateWindow, StoreError, Tally, WindowCount, one_tag};
use time::Duration;

use super::{SqlPool, on_pool};
use crate::{error, ttl};

const PUT: &str = "INSERT INTO hot_entries (key, value, counter, expires_at_ms) VALUES ($1, $2, NULL, $3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, counter = NULL, expires_at_ms = excluded.expires_at_ms";

const GET: &str = "SELECT value FROM hot_entries WHERE key = $1 AND expires_at_ms > $2 AND value IS NOT NULL";

const TAKE: &str =
    "DELETE FROM hot_entries WHERE key = $1 AND expires_at_ms > $2 AND value IS NOT NULL RETURNING value";

/// Deletes whatever is there, expired or not, and tells whether it was live.
const DELETE: &str = "DELETE FROM hot_entries WHERE key = $1 RETURNING expires_at_ms > $2";

/// Inserts, or replaces only an expired entry: a live one (value or counter) makes it a no-op.
const SET_IF_ABSENT: &str = "INSERT INTO hot_entries (key, value, counter, expires_at_ms) VALUES ($1, $2, NULL, $3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, counter = NULL, expires_at_ms = excluded.expires_at_ms \
     WHERE hot_entries.expires_at_ms <= $4";

/// Replaces only a live value equal to the expected one. PostgreSQL re-checks the condition on the
/// latest row version after waiting for a concurrent writer, so of racing callers one matches.
const SET_IF_EQUAL: &str = "UPDATE hot_entries SET value = $2, expires_at_ms = $3 \
     WHERE key = $1 AND value = $4 AND expires_at_ms > $5";

/// Starts a window (count 1) when the key is absent or expired, else counts in the current one.
/// A live value under the key updates nothing and returns no row.
const INCREMENT: &str = "INSERT INTO hot_entries (key, value, counter, expires_at_ms) VALUES ($1, NULL, 1, $2) \
     ON CONFLICT (key) DO UPDATE SET \
       counter = CASE WHEN hot_entries.expires_at_ms <= $3 THEN 1 ELSE hot_entries.counter + 1 END, \
       value = NULL, \
       expires_at_ms = CASE WHEN hot_entries.expires_at_ms <= $3 \
                            THEN excluded.expires_at_ms ELSE hot_entries.expires_at_ms END \
     WHERE hot_entries.counter IS NOT NULL OR hot_entries.expires_at_ms <= $3 \
     RETURNING counter, expires_at_ms";

/// `hit_windows`' placeholder for an absent key: a counter expired at `$2` (now), so it reads as
/// absent and `INCREMENT` restarts it. Only there to be locked; a live or expired row stays as it is.
const HIT_RESERVE: &str = "INSERT INTO hot_entries (key, value, counter, expires_at_ms) VALUES ($1, NULL, 1, $2) \
     ON CONFLICT (key) DO NOTHING";

/// `set_add`, in one transaction: an expired set goes first (its members with it), then the set's
/// row is created or its expiry reset (which locks it against concurrent adds), then the member.
const SET_DROP_EXPIRED: &str = "DELETE FROM hot_sets WHERE key = $1 AND expires_at_ms <= $2";
const SET_UPSERT: &str = "INSERT INTO hot_sets (key, expires_at_ms) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET expires_at_ms = excluded.expires_at_ms";
const SET_ADD_MEMBER: &str =
    "INSERT INTO hot_set_members (key, member) VALUES ($1, $2) ON CONFLICT (key, member) DO NOTHING";

/// A set's size, right after `SET_UPSERT` made it live.
const SET_SIZE: &str = "SELECT COUNT(*) FROM hot_set_members WHERE key = $1";

const SET_REMOVE: &str = "DELETE FROM hot_set_members WHERE key = $1 AND member = $2 \
     AND EXISTS (SELECT 1 FROM hot_sets WHERE hot_sets.key = $1 AND hot_sets.expires_at_ms > $3)";

const SET_MEMBERS: &str = "SELECT m.member FROM hot_set_members m JOIN hot_sets s ON s.key = m.key \
     WHERE m.key = $1 AND s.expires_at_ms > $2";

/// The count of a live counter; a live value reads as a row with no counter.
const COUNT: &str = "SELECT counter FROM hot_entries WHERE key = $1 AND expires_at_ms > $2";

/// The ranked sets' statements, in the order `ranked_add` runs them: an expired set goes (its members
/// with it), the set's row is created or its expiry reset (locking it), the member is added or takes
/// its new rank, and the members beyond `$2` in rank order from the highest are removed.
const RANKED_DROP_EXPIRED: &str = "DELETE FROM hot_ranked_sets WHERE key = $1 AND expires_at_ms <= $2";
const RANKED_UPSERT: &str = "INSERT INTO hot_ranked_sets (key, expires_at_ms) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET expires_at_ms = excluded.expires_at_ms";
const RANKED_ADD_MEMBER: &str = "INSERT INTO hot_ranked_set_members (key, member, rank) VALUES ($1, $2, $3) \
     ON CONFLICT (key, member) DO UPDATE SET rank = excluded.rank";
const RANKED_TRIM: &str = "DELETE FROM hot_ranked_set_members WHERE key = $1 AND member IN (\
     SELECT member FROM (\
       SELECT member, ROW_NUMBER() OVER (ORDER BY rank DESC, member DESC) AS place \
       FROM hot_ranked_set_members WHERE key = $1) ranked \
     WHERE place > $2) \
     RETURNING member, rank";

/// `ranked_add_if_room`'s count, after the set's row is locked: the members, and whether `$2` is one.
const RANKED_ROOM: &str = "SELECT COUNT(*), \
     EXISTS (SELECT 1 FROM hot_ranked_set_members WHERE key = $1 AND member = $2) \
     FROM hot_ranked_set_members WHERE key = $1";

const RANKED_REMOVE: &str = "DELETE FROM hot_ranked_set_members WHERE key = $1 AND member = $2 \
     AND EXISTS (SELECT 1 FROM hot_ranked_sets WHERE hot_ranked_sets.key = $1 AND hot_ranked_sets.expires_at_ms > $3)";

const RANKED_MEMBERS: &str = "SELECT m.member FROM hot_ranked_set_members m \
     JOIN hot_ranked_sets s ON s.key = m.key \
     WHERE m.key = $1 AND s.expires_at_ms > $2 ORDER BY m.rank, m.member";

const PURGE_ENTRIES: &str = "DELETE FROM hot_entries WHERE expires_at_ms <= $1";
const PURGE_SETS: &str = "DELETE FROM hot_sets WHERE expires_at_ms <= $1";
const PURGE_RANKED_SETS: &str = "DELETE FROM hot_ranked_sets WHERE expires_at_ms <= $1";

/// The largest rank every backend holds exactly: Redis keeps scores as doubles.
const MAX_RANK: i64 = 1 << 53;

/// `rank`, refused when a Redis sorted set could not hold it exactly (`redis.rs` checks the same),
/// so that every backend orders the same ranks the same way.
fn exact_rank(rank: i64) -> Result<i64, StoreError> {
    if rank.unsigned_abs() > MAX_RANK.unsigned_abs() {
        return Err(StoreError::Other(format!("rank {rank} is outside ±2^53")));
    }
    Ok(rank)
}

/// The hot store over the durable store's pool. Cloning shares the pool and the clock.
#[derive(Clone)]
pub struct SqlHotStore {
    pool: SqlPool,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqlHotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlHotStore").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

impl SqlHotStore {
    pub(crate) fn new(pool: SqlPool, clock: Arc<dyn Clock>) -> Self {
        Self { pool, clock }
    }

    fn now(&self) -> i64 {
        self.clock.now_millis()
    }
}

#[async_trait]
impl HotStore for SqlHotStore {
    fn backend(&self) -> &'static str {
        on_pool!(&self.pool, |_pool, d| d::BACKEND)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, |pool, _d| sqlx::query("SELECT 1").execute(pool).await.map(drop)).map_err(error::sql)
    }

    async fn put(&self, key: &HotKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let expires = self.now().saturating_add(ttl::millis(ttl)?);
        on_pool!(&self.pool, |pool, _d| {
            sqlx::query(PUT).bind(key.as_str()).bind(value).bind(expires).execute(pool).await.map(drop)
        })
        .map_err(error::sql)
    }

    async fn get(&self, key: &HotKey) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now();
        on_pool!(&self.pool, |pool, _d| {
            sqlx::query_scalar(GET).bind(key.as_str()).bind(now).fetch_optional(pool).await
        })
        .map_err(error::sql)
    }

    async fn take(&self, key: &HotKey) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now();
        on_pool!(&self.pool, |pool, _d| {
            sqlx::query_scalar(TAKE).bind(key.as_str()).bind(now).fetch_optional(pool).await
        })
        .map_err(error::sql)
    }

    async fn delete(&self, key: &HotKey) -> Result<bool, StoreError> {
        let now = self.now();
        let live: Option<bool> = on_pool!(&self.pool, |pool, _d| {
            sqlx::query_scalar(DELETE).bind(key.as_str()).bind(now).fetch_optional(pool).await
        })
        .map_err(error::sql)?;
        Ok(live.unwrap_or(false))
    }

    async fn compare_and_set(
        &self,
        key: &HotKey,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let expires = now.saturating_add(ttl::millis(ttl)?);
        let result = match expected {
            None => on_pool!(&self.pool, |pool, _d| {
                let query = sqlx::query(SET_IF_ABSENT).bind(key.as_str()).bind(new).bind(expires).bind(now);
                query.execute(pool).await.map(|done| done.rows_affected())
            }),
            Some(expected) => on_pool!(&self.pool, |pool, _d| {
                sqlx::query(SET_IF_EQUAL)
                    .bind(key.as_str())
                    .bind(new)
                    .bind(expires)
                    .bind(expected)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            }),
        };
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn increment(&self, key: &HotKey, window: Duration) -> Result<WindowCount, StoreError> {
        let now = self.now();
        let expires = now.saturating_add(ttl::millis(window)?);
        let row: Option<(i64, i64)> = on_pool!(&self.pool, |pool, _d| {
            sqlx::query_as(INCREMENT).bind(key.as_str()).bind(expires).bind(now).fetch_optional(pool).await
        })
        .map_err(error::sql)?;
        let (count, expires_at) =
            row.ok_or_else(|| StoreError::Other(format!("{key} holds a value, not a counter")))?;
        Ok(WindowCount {
            count: u64::try_from(count).map_err(|_| error::corrupt(format!("{key} has counter {count}")))?,
            resets_in: Duration::milliseconds(expires_at.saturating_sub(now).max(0)),
        })
    }

    async fn hit_windows(&self, windows: &[RateWindow]) -> Result<RateDecision, StoreError> {
        if windows.is_empty() {
            return Ok(RateDecision { allowed: true, windows: Vec::new() });
        }
        // Every window is checked before anything is touched; then they are locked in key order.
        let mut sorted = windows
            .iter()
            .enumerate()
            .map(|(index, w)| Ok((index, w, ttl::millis(w.window)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        sorted.sort_by(|a, b| a.1.key.as_str().cmp(b.1.key.as_str()));
        let now = self.now();
        let mut decided = vec![WindowCount { count: 0, resets_in: Duration::ZERO }; windows.len()];
        on_pool!(&self.pool, |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let mut allowed = true;
            for &(index, w, _) in &sorted {
                let key = w.key.as_str();
                sqlx::query(HIT_RESERVE).bind(key).bind(now).execute(&mut *tx).await.map_err(error::sql)?;
                let (counter, is_value, expires_at): (Option<i64>, bool, i64) =
                    sqlx::query_as(d::HIT_READ).bind(key).fetch_one(&mut *tx).await.map_err(error::sql)?;
                let live = expires_at > now;
                if live && is_value {
                    return Err(StoreError::Other(format!("{key} holds a value, not a counter")));
                }
                let current = match (live, counter) {
                    (true, Some(count)) => WindowCount {
                        count: u64::try_from(count)
                            .map_err(|_| error::corrupt(format!("{key} has counter {count}")))?,
                        resets_in: Duration::milliseconds(expires_at.saturating_sub(now)),
                    },
                    _ => WindowCount { count: 0, resets_in: Duration::ZERO },
                };
                allowed &= current.count < w.limit;
                if let Some(slot) = decided.get_mut(index) {
                    *slot = current;
                }
            }
            if !allowed {
                // Dropping the transaction rolls it back: the placeholders go, nothing is counted.
                return Ok(RateDecision { allowed: false, windows: decided });
            }
            for &(index, w, window_ms) in &sorted {
                let key = w.key.as_str();
                let (count, expires_at): (i64, i64) = sqlx::query_as(INCREMENT)
                    .bind(key)
                    .bind(now.saturating_add(window_ms))
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(error::sql)?
                    .ok_or_else(|| StoreError::Other(format!("{key} holds a value, not a counter")))?;
                if let Some(slot) = decided.get_mut(index) {
                    *slot = WindowCount {
                        count: u64::try_from(count)
                            .map_err(|_| error::corrupt(format!("{key} has counter {count}")))?,
                        resets_in: Duration::milliseconds(expires_at.saturating_sub(now).max(0)),
                    };
                }
            }
            tx.commit().await.map_err(error::sql)?;
            Ok(RateDecision { allowed: true, windows: decided })
        })
    }

    async fn set_add(&self, key: &HotKey, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = self.now();
        let expires = now.saturating_add(ttl::millis(ttl)?);
        on_pool!(&self.pool, |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            sqlx::query(SET_DROP_EXPIRED).bind(key.as_str()).bind(now).execute(&mut *tx).await.map_err(error::sql)?;
            sqlx::query(SET_UPSERT).bind(key.as_str()).bind(expires).execute(&mut *tx).await.map_err(error::sql)?;
            sqlx::query(SET_ADD_MEMBER).bind(key.as_str()).bind(member).execute(&mut *tx).await.map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)
        })
    }

    async fn set_remove(&self, key: &HotKey, member: &str) -> Result<bool, StoreError> {
        let now = self.now();
        let result = on_pool!(&self.pool, |pool, _d| {
            let query = sqlx::query(SET_REMOVE).bind(key.as_str()).bind(member).bind(now);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn set_members(&self, key: &HotKey) -> Result<Vec<String>, StoreError> {
        let now = self.now();
        on_pool!(&self.pool, |pool, _d| {
            sqlx::query_scalar(SET_MEMBERS).bind(key.as_str()).bind(now).fetch_all(pool).await
        })
        .map_err(error::sql)
    }

    async fn count(&self, key: &HotKey) -> Result<u64, StoreError> {
        let now = self.now();
        let row: Option<Option<i64>> = on_pool!(&self.pool, |pool, _d| {
            sqlx::query_scalar(COUNT).bind(key.as_str()).bind(now).fetch_optional(pool).await
        })
        .map_err(error::sql)?;
        match row {
            None => Ok(0),
            Some(None) => Err(StoreError::Other(format!("{key} holds a value, not a counter"))),
            Some(Some(count)) => u64::try_from(count).map_err(|_| error::corrupt(format!("{key} has counter {count}"))),
        }
    }

    async fn ranked_add(
        &self,
        key: &HotKey,
        member: &str,
        rank: i64,
        keep: u32,
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let rank = exact_rank(rank)?;
        let now = self.now();
        let expires = now.saturating_add(ttl::millis(ttl)?);
        let key = key.as_str();
        let mut removed: Vec<(String, i64)> = on_pool!(&self.pool, |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            sqlx::query(RANKED_DROP_EXPIRED).bind(key).bind(now).execute(&mut *tx).await.map_err(error::sql)?;
            sqlx::query(RANKED_UPSERT).bind(key).bind(expires).execute(&mut *tx).await.map_err(error::sql)?;
            let add = sqlx::query(RANKED_ADD_MEMBER).bind(key).bind(member).bind(rank);
            add.execute(&mut *tx).await.map_err(error::sql)?;
            let removed = sqlx::query_as(RANKED_TRIM)
                .bind(key)
                .bind(i64::from(keep))
                .fetch_all(&mut *tx)
                .await
                .map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)?;
            Ok::<_, StoreError>(removed)
        })?;
        // `RETURNING` promises no order: lowest rank first, then bytewise, as the set orders them.
        removed.sort_by(|(a, a_rank), (b, b_rank)| a_rank.cmp(b_rank).then_with(|| a.as_bytes().cmp(b.as_bytes())));
        Ok(removed.into_iter().map(|(member, _)| member).collect())
    }

    async fn ranked_add_if_room(
        &self,
        key: &HotKey,
        member: &str,
        rank: i64,
        cap: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let rank = exact_rank(rank)?;
        let now = self.now();
        let expires = now.saturating_add(ttl::millis(ttl)?);
        let key = key.as_str();
        on_pool!(&self.pool, |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            sqlx::query(RANKED_DROP_EXPIRED).bind(key).bind(now).execute(&mut *tx).await.map_err(error::sql)?;
            sqlx::query(RANKED_UPSERT).bind(key).bind(expires).execute(&mut *tx).await.map_err(error::sql)?;
            let (members, present): (i64, bool) =
                sqlx::query_as(RANKED_ROOM).bind(key).bind(member).fetch_one(&mut *tx).await.map_err(error::sql)?;
            if !present && members >= i64::from(cap) {
                // No room: dropping the transaction rolls it back, and nothing changes.
                return Ok(false);
            }
            let add = sqlx::query(RANKED_ADD_MEMBER).bind(key).bind(member).bind(rank);
            add.execute(&mut *tx).await.map_err(error::sql)?;
            tx.commit().await.map_err(error::sql)?;
            Ok(true)
        })
    }

    async fn ranked_remove(&self, key: &HotKey, member: &str) -> Result<bool, StoreError> {
        let now = self.now();
        let result = on_pool!(&self.pool, |pool, _d| {
            let query = sqlx::query(RANKED_REMOVE).bind(key.as_str()).bind(member).bind(now);
            query.execute(pool).await.map(|done| done.rows_affected())
        });
        Ok(result.map_err(error::sql)? == 1)
    }

    async fn ranked_members(&self, key: &HotKey) -> Result<Vec<String>, StoreError> {
        let now = self.now();
        on_pool!(&self.pool, |pool, _d| {
            sqlx::query_scalar(RANKED_MEMBERS).bind(key.as_str()).bind(now).fetch_all(pool).await
        })
        .map_err(error::sql)
    }

    async fn tally(&self, steps: &[Tally]) -> Result<Vec<u64>, StoreError> {
        if one_tag(steps)?.is_none() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let mut expiries = Vec::with_capacity(steps.len());
        for step in steps {
            expiries.push(match step {
                Tally::Hit { window, .. } => now.saturating_add(ttl::millis(*window)?),
                Tally::Add { ttl, .. } => now.saturating_add(ttl::millis(*ttl)?),
                Tally::Peek { .. } => now,
            });
        }
        on_pool!(&self.pool, |pool, d| {
            let mut tx = pool.begin_with(d::BEGIN_WRITE).await.map_err(error::sql)?;
            let mut counts = Vec::with_capacity(steps.len());
            for (step, &expires) in steps.iter().zip(&expiries) {
                let key = step.key().as_str();
                let count: i64 = match step {
                    Tally::Hit { .. } => {
                        let row: Option<(i64, i64)> = sqlx::query_as(INCREMENT)
                            .bind(key)
                            .bind(expires)
                            .bind(now)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(error::sql)?;
                        row.ok_or_else(|| StoreError::Other(format!("{key} holds a value, not a counter")))?.0
                    }
                    Tally::Add { member, .. } => {
                        sqlx::query(SET_DROP_EXPIRED)
                            .bind(key)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(error::sql)?;
                        sqlx::query(SET_UPSERT).bind(key).bind(expires).execute(&mut *tx).await.map_err(error::sql)?;
                        let add = sqlx::query(SET_ADD_MEMBER).bind(key).bind(member.as_str());
                        add.execute(&mut *tx).await.map_err(error::sql)?;
                        sqlx::query_scalar(SET_SIZE).bind(key).fetch_one(&mut *tx).await.map_err(error::sql)?
                    }
                    Tally::Peek { .. } => {
                        let row: Option<Option<i64>> = sqlx::query_scalar(COUNT)
                            .bind(key)
                            .bind(now)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(error::sql)?;
                        match row {
                            None => 0,
                            Some(None) => return Err(StoreError::Other(format!("{key} holds a value, not a counter"))),
                            Some(Some(count)) => count,
                        }
                    }
                };
                counts.push(u64::try_from(count).map_err(|_| error::corrupt(format!("{key} counts {count}")))?);
            }
            tx.commit().await.map_err(error::sql)?;
            Ok(counts)
        })
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = self.now();
        on_pool!(&self.pool, |pool, _d| {
            let entries = sqlx::query(PURGE_ENTRIES).bind(now).execute(pool).await.map_err(error::sql)?;
            let sets = sqlx::query(PURGE_SETS).bind(now).execute(pool).await.map_err(error::sql)?;
            let ranked = sqlx::query(PURGE_RANKED_SETS).bind(now).execute(pool).await.map_err(error::sql)?;
            Ok(entries.rows_affected().saturating_add(sets.rows_affected()).saturating_add(ranked.rows_affected()))
        })
    }
}
