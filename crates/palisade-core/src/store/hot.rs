//! The hot store: short-lived state with a time to live, counters and one-shot values.

use async_trait::async_trait;
use std::fmt;
use time::Duration;

use super::StoreError;

/// A key in the hot store.
///
/// Keys that belong to one entity share a tag, rendered as a Redis Cluster hash tag
/// (`pal:{tag}:suffix`), so a script touching several of them stays on one shard.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HotKey(String);

impl HotKey {
    /// A key for `suffix` within the entity `tag` (e.g. tag `user:42`, suffix `sessions`).
    ///
    /// Braces are removed from both parts so callers cannot break the hash tag.
    pub fn new(tag: &str, suffix: &str) -> Self {
        let clean = |s: &str| s.replace(['{', '}'], "");
        if suffix.is_empty() {
            Self(format!("pal:{{{}}}", clean(tag)))
        } else {
            Self(format!("pal:{{{}}}:{}", clean(tag), clean(suffix)))
        }
    }

    /// The rendered key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The entity tag it was made with (braces already removed).
    pub fn tag(&self) -> &str {
        let inner = self.0.strip_prefix("pal:{").unwrap_or(&self.0);
        inner.split_once('}').map_or(inner, |(tag, _)| tag)
    }
}

impl fmt::Debug for HotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for HotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state of a fixed-window counter after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Hits counted in the current window, this one included.
    pub count: u64,
    /// Time until the window closes and the count starts again.
    pub resets_in: Duration,
}

/// One window of a rate limit: at most `limit` hits per `window`, counted at `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateWindow {
    /// Where the window's count lives. Every window of one limit shares one hash tag.
    pub key: HotKey,
    /// Hits allowed per window.
    pub limit: u64,
    /// The window's length (fixed window, starting at its first hit).
    pub window: Duration,
}

/// What [`HotStore::hit_windows`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the hit was allowed (and counted in every window).
    pub allowed: bool,
    /// Each window's count after the call (this hit included when allowed) and time to reset, in the
    /// order given.
    pub windows: Vec<WindowCount>,
}

/// One step of [`HotStore::tally`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// Counts a hit in the fixed window at `key`, as [`HotStore::increment`]; answers the count.
    Hit {
        /// The counter.
        key: HotKey,
        /// The window's length.
        window: Duration,
    },
    /// Adds `member` to the set at `key` and (re)sets its time to live, as [`HotStore::set_add`];
    /// answers how many members the set has afterwards.
    Add {
        /// The set.
        key: HotKey,
        /// The member.
        member: String,
        /// The set's new time to live.
        ttl: Duration,
    },
    /// Reads the counter at `key`, as [`HotStore::count`]; answers it.
    Peek {
        /// The counter.
        key: HotKey,
    },
}

impl Tally {
    /// The key the step touches.
    pub fn key(&self) -> &HotKey {
        match self {
            Self::Hit { key, .. } | Self::Add { key, .. } | Self::Peek { key } => key,
        }
    }
}

/// `steps`' one hash tag, or an error naming the two that differ: [`HotStore::tally`] runs on one
/// shard of a Redis Cluster, so every backend refuses a mix alike.
pub fn one_tag(steps: &[Tally]) -> Result<Option<&str>, StoreError> {
    let mut tags = steps.iter().map(|step| step.key().tag());
    let Some(first) = tags.next() else { return Ok(None) };
    match tags.find(|tag| *tag != first) {
        Some(other) => Err(StoreError::Other(format!("tally keys must share one tag, got {first:?} and {other:?}"))),
        None => Ok(Some(first)),
    }
}

/// Short-lived shared state: sessions, counters, one-time codes, challenges, markers.
///
/// Every method is atomic on its own, across all instances sharing the store. Values are opaque
/// bytes; an entry past its time to live is absent. A `ttl` must be positive (at least 1 ms); a
/// shorter one is an error. A key holds either a value or a counter: `increment` on a value is an error.
#[async_trait]
pub trait HotStore: Send + Sync + 'static {
    /// Which backend this is (`sqlite`, `postgres`, `redis`), for diagnostics.
    fn backend(&self) -> &'static str;

    /// Answers when the store is reachable.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores `value` under `key` for `ttl`, replacing any value.
    async fn put(&self, key: &HotKey, value: &[u8], ttl: Duration) -> Result<(), StoreError>;

    /// The live value under `key`.
    async fn get(&self, key: &HotKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads and deletes the value in one step: of concurrent callers, exactly one gets it.
    async fn take(&self, key: &HotKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes the value or counter at `key`; `true` when a live one was there. Sets are not touched:
    /// a set goes when its time to live passes or its members are removed.
    async fn delete(&self, key: &HotKey) -> Result<bool, StoreError>;

    /// Sets `key` to `new` (for `ttl`) only if its live value is `expected` (`None`: only if absent).
    /// Returns whether it was set: of concurrent callers expecting the same value, exactly one wins.
    async fn compare_and_set(
        &self,
        key: &HotKey,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Counts one hit in the fixed window that starts at the first hit and lasts `window`.
    async fn increment(&self, key: &HotKey, window: Duration) -> Result<WindowCount, StoreError>;

    /// One hit against several windows at once, atomically (one Lua script on Redis; one transaction in
    /// SQL): when every window is below its limit the hit is counted in all of them and allowed;
    /// otherwise nothing is counted and it is refused. Of N concurrent hits against a limit L, exactly
    /// min(N, L) are allowed, across all instances. The keys share one hash tag.
    async fn hit_windows(&self, windows: &[RateWindow]) -> Result<RateDecision, StoreError>;

    /// Adds `member` to the set at `key` and (re)sets the whole set's time to live.
    async fn set_add(&self, key: &HotKey, member: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Removes `member`; `true` when it was there.
    async fn set_remove(&self, key: &HotKey, member: &str) -> Result<bool, StoreError>;

    /// The members of the set at `key`, in no particular order.
    async fn set_members(&self, key: &HotKey) -> Result<Vec<String>, StoreError>;

    /// The count of the live window of a counter made by [`Self::increment`], without counting a
    /// hit; 0 when there is none.
    async fn count(&self, key: &HotKey) -> Result<u64, StoreError>;

    /// Adds `member` with `rank` to the ranked set at `key` (a member already there takes the new
    /// rank) and (re)sets the whole set's time to live; then removes the members with the lowest
    /// ranks until at most `keep` remain, and returns those removed, lowest rank first. Atomic: of
    /// concurrent adds past `keep`, every survivor set has at most `keep` members.
    async fn ranked_add(
        &self,
        key: &HotKey,
        member: &str,
        rank: i64,
        keep: u32,
        ttl: Duration,
    ) -> Result<Vec<String>, StoreError>;

    /// Adds `member` with `rank` only if the ranked set at `key` has fewer than `cap` members (or
    /// holds `member` already); `true` when it is a member afterwards. Atomic: of N concurrent adds
    /// of distinct members into a set with room for R, exactly min(N, R) succeed.
    async fn ranked_add_if_room(
        &self,
        key: &HotKey,
        member: &str,
        rank: i64,
        cap: u32,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Removes `member` from the ranked set; `true` when it was there.
    async fn ranked_remove(&self, key: &HotKey, member: &str) -> Result<bool, StoreError>;

    /// The members of the ranked set at `key`, lowest rank first.
    async fn ranked_members(&self, key: &HotKey) -> Result<Vec<String>, StoreError>;

    /// Applies `steps` in order in one round trip (one Lua script on Redis; one transaction in SQL),
    /// with no other call's change in between, and answers one number per step (see [`Tally`]).
    /// Every key shares one hash tag ([`one_tag`]); a mix is refused before anything is touched.
    /// This is how the detectors count a whole batch of events at the cost of one call.
    async fn tally(&self, steps: &[Tally]) -> Result<Vec<u64>, StoreError>;

    /// Removes expired entries; backends that expire by themselves return 0.
    async fn purge_expired(&self) -> Result<u64, StoreError>;
}
