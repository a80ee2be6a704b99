//! The hot store on Redis (feature `redis`).
//!
//! # URLs
//! - `redis://[user:password@]host:port[/db]` (or `redis+unix:///path`): one server, through an
//!   [`aio::ConnectionManager`](::redis::aio::ConnectionManager) that reconnects by itself.
//! - `redis+cluster://[user:password@]host1:port1,host2:port2,…`: a Redis Cluster, reached through
//!   any of the listed nodes (the rest are discovered). Every key carries its entity's `{hash tag}`
//!   ([`HotKey`]), so a script only ever touches one slot.
//!
//! # Failing fast, recovering alone
//! Connecting and each answer time out after 2 s, and a lost connection is retried once after
//! 50–500 ms: with Redis down a call fails with [`StoreError::Unavailable`] within about 2 s instead
//! of hanging, and the first call after Redis is back gets a fresh connection. Nothing here retries
//! an operation: callers fail closed.
//!
//! # Atomicity
//! Single commands where Redis has one (`SET PX`, `SET NX PX`, `GETDEL`, `DEL`, `SREM`, `ZREM`), Lua
//! scripts where an operation takes several steps (compare-and-set on a value, counting in a window,
//! counting one hit against several windows all or nothing, adding to a set and resetting its time
//! to live, adding to a ranked set and trimming it or adding only while it has room, a detector
//! batch's counts in `tally`). Redis expires keys by itself, with its own clock: the injected clock
//! plays no part here and [`HotStore::purge_expired`] has nothing to do. `GETDEL` needs Redis 6.2 or later.
//!
//! Ranked sets are sorted sets, their ranks the scores. A score is a double, so ranks beyond ±2^53,
//! which it cannot hold exactly, are refused — here and in the SQL hot store, so that every backend
//! orders the same ranks alike.
//!
//! This module must never read-modify-write across two round trips: what must be atomic is one
//! command or one script.

use std::time::Duration as StdDuration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClientBuilder;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use async_trait::async_trait;
use palisade_core::store::{HotKey, HotStore, RateDecision, RateWindow, StoreError, Tally, WindowCount, one_tag};
use time::Duration;

use crate::{error, ttl};

/// How long to wait for a connection to open, and for each answer.
const TIMEOUT: StdDuration = StdDuration::from_secs(2);

/// Sets `KEYS[1]` to `ARGV[2]` for `ARGV[3]` ms only if its value is exactly `ARGV[1]`.
const COMPARE_AND_SET: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Counts a hit in the window that started at the first one and lasts `ARGV[1]` ms; returns the count
/// and the window's remaining ms. A counter found without an expiry gets one rather than counting forever.
const INCREMENT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// One hit against several fixed windows, all or nothing: `KEYS[i]` is window i's counter, `ARGV[2i-1]`
/// its limit and `ARGV[2i]` its length in ms. Reads every live count (0 when absent); when any is at
/// or over its limit, answers refused with the counts and remaining ms (0 when absent) and changes
/// nothing; else counts the hit in every window as `INCREMENT` does. Answers `{allowed, count1,
/// ms1, count2, ms2, …}`. The keys share one hash tag, so on a cluster the script runs on one shard.
const HIT_WINDOWS: &str = r"
local counts = {}
local refused = false
for i = 1, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  local count = 0
  if raw then
    count = tonumber(raw)
    if count == nil then
      return redis.error_reply(KEYS[i] .. ' holds a value, not a counter')
    end
  end
  counts[i] = count
  if count >= tonumber(ARGV[2 * i - 1]) then
    refused = true
  end
end
local out = {}
if refused then
  out[1] = 0
  for i = 1, #KEYS do
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      ttl = 0
    end
    out[2 * i] = counts[i]
    out[2 * i + 1] = ttl
  end
  return out
end
out[1] = 1
for i = 1, #KEYS do
  local count = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if count == 1 or ttl < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
    ttl = tonumber(ARGV[2 * i])
  end
  out[2 * i] = count
  out[2 * i + 1] = ttl
end
return out
";

/// Adds `ARGV[1]` to the set `KEYS[1]` and (re)sets the whole set's time to live to `ARGV[2]` ms.
const SET_ADD: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Adds `ARGV[1]` with rank `ARGV[2]` to the sorted set `KEYS[1]` (a member already there takes the
/// new rank), (re)sets the whole set's time to live to `ARGV[3]` ms, then removes the lowest-ranked
/// members until at most `ARGV[4]` remain and returns them, lowest first.
const RANKED_ADD: &str = r"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess <= 0 then
  return {}
end
local removed = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
return removed
";

/// Adds `ARGV[1]` with rank `ARGV[2]` to the sorted set `KEYS[1]` and (re)sets its time to live to
/// `ARGV[4]` ms, only if it holds fewer than `ARGV[3]` members or holds `ARGV[1]` already; returns 1
/// when it is a member afterwards, else 0 (and changes nothing).
const RANKED_ADD_IF_ROOM: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
";

/// `tally`: step i is `KEYS[i]` with `ARGV[3i-2]` its operation (`h` a hit in a window of
/// `ARGV[3i-1]` ms, as `INCREMENT`; `a` adding member `ARGV[3i]` to a set and resetting its time to
/// live to `ARGV[3i-1]` ms, answering its size; `p` reading a counter, 0 when absent). Answers one
/// number per step.
const TALLY: &str = r"
local out = {}
for i = 1, #KEYS do
  local op = ARGV[3 * i - 2]
  local ms = ARGV[3 * i - 1]
  if op == 'h' then
    local count = redis.call('INCR', KEYS[i])
    if count == 1 or redis.call('PTTL', KEYS[i]) < 0 then
      redis.call('PEXPIRE', KEYS[i], ms)
    end
    out[i] = count
  elseif op == 'a' then
    redis.call('SADD', KEYS[i], ARGV[3 * i])
    redis.call('PEXPIRE', KEYS[i], ms)
    out[i] = redis.call('SCARD', KEYS[i])
  else
    local raw = redis.call('GET', KEYS[i])
    local count = 0
    if raw then
      count = tonumber(raw)
      if count == nil then
        return redis.error_reply(KEYS[i] .. ' holds a value, not a counter')
      end
    end
    out[i] = count
  end
end
return out
";

/// The largest rank a sorted set holds exactly (its scores are doubles).
const MAX_RANK: i64 = 1 << 53;

/// `rank`, refused when a sorted set could not hold it exactly (the SQL hot store checks the same).
fn exact_rank(rank: i64) -> Result<i64, StoreError> {
    if rank.unsigned_abs() > MAX_RANK.unsigned_abs() {
        return Err(StoreError::Other(format!("rank {rank} is outside ±2^53")));
    }
    Ok(rank)
}

/// One server or a cluster.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The hot store on Redis. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisHotStore {
    connection: Connection,
    compare_and_set: Script,
    increment: Script,
    hit_windows: Script,
    set_add: Script,
    ranked_add: Script,
    ranked_add_if_room: Script,
    tally: Script,
}

impl std::fmt::Debug for RedisHotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.connection {
            Connection::Single(_) => "single",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisHotStore").field("mode", &mode).finish_non_exhaustive()
    }
}

impl RedisHotStore {
    /// Connects to the server or cluster at `url` (see the module documentation for the forms) and
    /// waits for the first connection. Errors never contain the URL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let connection = match url.strip_prefix("redis+cluster://") {
            Some(nodes) => Connection::Cluster(connect_cluster(nodes).await?),
            None => Connection::Single(connect_single(url).await?),
        };
        Ok(Self {
            connection,
            compare_and_set: Script::new(COMPARE_AND_SET),
            increment: Script::new(INCREMENT),
            hit_windows: Script::new(HIT_WINDOWS),
            set_add: Script::new(SET_ADD),
            ranked_add: Script::new(RANKED_ADD),
            ranked_add_if_room: Script::new(RANKED_ADD_IF_ROOM),
            tally: Script::new(TALLY),
        })
    }

    fn connection(&self) -> Connection {
        self.connection.clone()
    }
}

async fn connect_single(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = ::redis::Client::open(url).map_err(|e| invalid_url(&e))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(1)
        .set_min_delay(StdDuration::from_millis(50))
        .set_max_delay(StdDuration::from_millis(500));
    ConnectionManager::new_with_config(client, config).await.map_err(error::redis)
}

/// `[user:password@]host1:port1,host2:port2` → one `redis://` URL per node, credentials on each.
async fn connect_cluster(nodes: &str) -> Result<ClusterConnection, StoreError> {
    let (credentials, hosts) = match nodes.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), nodes),
    };
    let urls: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.trim().is_empty())
        .map(|h| format!("redis://{credentials}{}", h.trim()))
        .collect();
    if urls.is_empty() {
        return Err(StoreError::Other("a redis+cluster:// URL must list at least one host:port".into()));
    }
    let client = ClusterClientBuilder::new(urls)
        .connection_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .retries(1)
        .build()
        .map_err(|e| invalid_url(&e))?;
    client.get_async_connection().await.map_err(error::redis)
}

/// The client's complaint about a URL, which may quote the URL: keep only its category.
fn invalid_url(e: &::redis::RedisError) -> StoreError {
    StoreError::Other(format!(
        "invalid Redis URL ({}): expected redis://[user:password@]host:port[/db], rediss://… (TLS, not built in), \
         redis+unix:///path or redis+cluster://[user:password@]host1:port1,host2:port2",
        e.category()
    ))
}

#[async_trait]
impl HotStore for RedisHotStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let answer: String = ::redis::cmd("PING").query_async(&mut self.connection()).await.map_err(error::redis)?;
        if answer == "PONG" { Ok(()) } else { Err(error::corrupt(format!("PING answered {answer:?}"))) }
    }

    async fn put(&self, key: &HotKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let ms = ttl::millis(ttl)?;
        ::redis::cmd("SET")
            .arg(key.as_str())
            .arg(value)
            .arg("PX")
            .arg(ms)
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(error::redis)
    }

    async fn get(&self, key: &HotKey) -> Result<Option<Vec<u8>>, StoreError> {
        ::redis::cmd("GET").arg(key.as_str()).query_async(&mut self.connection()).await.map_err(error::redis)
    }

    async fn take(&self, key: &HotKey) -> Result<Option<Vec<u8>>, StoreError> {
        ::redis::cmd("GETDEL").arg(key.as_str()).query_async(&mut self.connection()).await.map_err(error::redis)
    }

    async fn delete(&self, key: &HotKey) -> Result<bool, StoreError> {
        let removed: i64 =
            ::redis::cmd("DEL").arg(key.as_str()).query_async(&mut self.connection()).await.map_err(error::redis)?;
        Ok(removed > 0)
    }

    async fn compare_and_set(
        &self,
        key: &HotKey,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ms = ttl::millis(ttl)?;
        match expected {
            None => {
                let answer: Option<String> = ::redis::cmd("SET")
                    .arg(key.as_str())
                    .arg(new)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut self.connection())
                    .await
                    .map_err(error::redis)?;
                Ok(answer.is_some())
            }
            Some(expected) => {
                let set: i64 = self
                    .compare_and_set
                    .key(key.as_str())
                    .arg(expected)
                    .arg(new)
                    .arg(ms)
                    .invoke_async(&mut self.connection())
                    .await
                    .map_err(error::redis)?;
                Ok(set == 1)
            }
        }
    }

    async fn increment(&self, key: &HotKey, window: Duration) -> Result<WindowCount, StoreError> {
        let ms = ttl::millis(window)?;
        let (count, remaining): (i64, i64) = self
            .increment
            .key(key.as_str())
            .arg(ms)
            .invoke_async(&mut self.connection())
            .await
            .map_err(error::redis)?;
        Ok(WindowCount {
            count: u64::try_from(count).map_err(|_| error::corrupt(format!("{key} has counter {count}")))?,
            resets_in: Duration::milliseconds(remaining.max(0)),
        })
    }

    async fn hit_windows(&self, windows: &[RateWindow]) -> Result<RateDecision, StoreError> {
        if windows.is_empty() {
            return Ok(RateDecision { allowed: true, windows: Vec::new() });
        }
        let mut invocation = self.hit_windows.prepare_invoke();
        for w in windows {
            invocation.key(w.key.as_str()).arg(w.limit).arg(ttl::millis(w.window)?);
        }
        let answer: Vec<i64> = invocation.invoke_async(&mut self.connection()).await.map_err(error::redis)?;
        let malformed = || error::corrupt(format!("the rate-limit script answered {answer:?}"));
        let mut values = answer.iter().copied();
        let allowed = match values.next() {
            Some(1) => true,
            Some(0) => false,
            _ => return Err(malformed()),
        };
        let mut counts = Vec::with_capacity(windows.len());
        for _ in windows {
            let (Some(count), Some(remaining)) = (values.next(), values.next()) else { return Err(malformed()) };
            counts.push(WindowCount {
                count: u64::try_from(count).map_err(|_| malformed())?,
                resets_in: Duration::milliseconds(remaining.max(0)),
            });
        }
        if values.next().is_some() {
            return Err(malformed());
        }
        Ok(RateDecision { allowed, windows: counts })
    }

    async fn set_add(&self, key: &HotKey, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let ms = ttl::millis(ttl)?;
        self.set_add
            .key(key.as_str())
            .arg(member)
            .arg(ms)
            .invoke_async::<()>(&mut self.connection())
            .await
            .map_err(error::redis)
    }

    async fn set_remove(&self, key: &HotKey, member: &str) -> Result<bool, StoreError> {
        let removed: i64 = ::redis::cmd("SREM")
            .arg(key.as_str())
            .arg(member)
            .query_async(&mut self.connection())
            .await
            .map_err(error::redis)?;
        Ok(removed > 0)
    }

    async fn set_members(&self, key: &HotKey) -> Result<Vec<String>, StoreError> {
        ::redis::cmd("SMEMBERS").arg(key.as_str()).query_async(&mut self.connection()).await.map_err(error::redis)
    }

    async fn count(&self, key: &HotKey) -> Result<u64, StoreError> {
        let raw: Option<Vec<u8>> =
            ::redis::cmd("GET").arg(key.as_str()).query_async(&mut self.connection()).await.map_err(error::redis)?;
        let Some(raw) = raw else { return Ok(0) };
        // `INCR` keeps a counter as the decimal text of a signed 64-bit integer.
        let count: i64 = std::str::from_utf8(&raw)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| StoreError::Other(format!("{key} holds a value, not a counter")))?;
        u64::try_from(count).map_err(|_| error::corrupt(format!("{key} has counter {count}")))
    }

    async fn ranked_add(
        &self,
        key: &HotKey,
        member: &str,
        rank: i64,
        keep: u32,
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let (rank, ms) = (exact_rank(rank)?, ttl::millis(ttl)?);
        self.ranked_add
            .key(key.as_str())
            .arg(member)
            .arg(rank)
            .arg(ms)
            .arg(keep)
            .invoke_async(&mut self.connection())
            .await
            .map_err(error::redis)
    }

    async fn ranked_add_if_room(
        &self,
        key: &HotKey,
        member: &str,
        rank: i64,
        cap: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (rank, ms) = (exact_rank(rank)?, ttl::millis(ttl)?);
        let added: i64 = self
            .ranked_add_if_room
            .key(key.as_str())
            .arg(member)
            .arg(rank)
            .arg(cap)
            .arg(ms)
            .invoke_async(&mut self.connection())
            .await
            .map_err(error::redis)?;
        Ok(added == 1)
    }

    async fn ranked_remove(&self, key: &HotKey, member: &str) -> Result<bool, StoreError> {
        let removed: i64 = ::redis::cmd("ZREM")
            .arg(key.as_str())
            .arg(member)
            .query_async(&mut self.connection())
            .await
            .map_err(error::redis)?;
        Ok(removed > 0)
    }

    async fn ranked_members(&self, key: &HotKey) -> Result<Vec<String>, StoreError> {
        ::redis::cmd("ZRANGE")
            .arg(key.as_str())
            .arg(0)
            .arg(-1)
            .query_async(&mut self.connection())
            .await
            .map_err(error::redis)
    }

    async fn tally(&self, steps: &[Tally]) -> Result<Vec<u64>, StoreError> {
        if one_tag(steps)?.is_none() {
            return Ok(Vec::new());
        }
        let mut invocation = self.tally.prepare_invoke();
        for step in steps {
            match step {
                Tally::Hit { key, window } => invocation.key(key.as_str()).arg("h").arg(ttl::millis(*window)?).arg(""),
                Tally::Add { key, member, ttl } => {
                    invocation.key(key.as_str()).arg("a").arg(ttl::millis(*ttl)?).arg(member.as_str())
                }
                Tally::Peek { key } => invocation.key(key.as_str()).arg("p").arg(0).arg(""),
            };
        }
        let answer: Vec<i64> = invocation.invoke_async(&mut self.connection()).await.map_err(error::redis)?;
        if answer.len() != steps.len() {
            return Err(error::corrupt(format!(
                "the tally script answered {} numbers for {} steps",
                answer.len(),
                steps.len()
            )));
        }
        answer
            .into_iter()
            .map(|count| u64::try_from(count).map_err(|_| error::corrupt(format!("the tally script answered {count}"))))
            .collect()
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
