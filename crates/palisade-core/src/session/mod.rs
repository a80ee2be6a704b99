//! Sessions: made at login, kept in the hot store with an absolute lifetime and an idle timeout,
//! listed and ended by their user, and checked on every bearer request through a short local cache.
//!
//! # Keys
//! A session lives at `pal:{user:<id>}:session:<sid>`, and the user's set of session ids at
//! `pal:{user:<id>}:sessions`; both share the user's hash tag. The entry's time to live is the
//! smaller of the idle timeout and what remains of the absolute lifetime, so the hot store itself
//! ends idle and over-age sessions.
//!
//! The index is a ranked set ranked by creation time, so a per-user session limit ends the oldest
//! ones atomically (one script or transaction), across instances.
//!
//! # Staleness bound
//! [`SessionService::is_alive`] remembers a positive answer for `cache_ttl` (default 1 s). A session
//! ended on this instance is forgotten at once; one ended on another instance stops being accepted
//! here within `cache_ttl`. With `cache_ttl` zero every check asks the hot store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::store::{HotKey, HotStore, StoreError};
use crate::token::SessionId;
use crate::user::UserId;

/// How often, at most, a session's activity is written back (so every request is not a write).
const TOUCH_INTERVAL: Duration = Duration::seconds(60);

/// Entries kept by the liveness cache before it is swept.
const CACHE_CAPACITY: usize = 100_000;

/// Facts about the device a session was opened from, as the client described it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// A name the user knows it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `mobile`, `desktop`, `tablet` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Operating system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// A client-computed fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Its id (the `sid` claim).
    pub id: SessionId,
    /// Its user.
    pub user_id: UserId,
    /// When it began.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it ends whatever the activity.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Last recorded activity (recorded at most once a minute).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Client address at login.
    pub ip: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// Device described at login.
    #[serde(default)]
    pub device: Option<DeviceInfo>,
    /// How the user authenticated (RFC 8176 `amr` values: `pwd`, `otp`, `sms`, `email`, `mfa` …),
    /// carried into every access token of the session.
    #[serde(default)]
    pub amr: Vec<String>,
    /// Where the session was opened, for the hijack check (`None` for sessions made before it
    /// existed, or with binding off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<SessionOrigin>,
    /// The registered device it was opened from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<crate::device::DeviceId>,
    /// Country (ISO code) of the login address, if GeoIP knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City of the login address, if GeoIP knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// The OAuth grant this session carries, when an OAuth client holds it (the authorization-code
    /// grant opens one session per grant). Such a session's tokens are the client's: Palisade's own
    /// routes refuse them, and its refresh tokens only work at `/oauth2/token` for that client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<SessionGrant>,
}

/// What an OAuth client was granted in a session it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGrant {
    /// The client.
    pub client_id: String,
    /// The scopes the user consented to.
    pub scopes: Vec<String>,
    /// When the user last authenticated (Unix seconds; the ID token's `auth_time`).
    pub auth_time: i64,
    /// The browser session the user signed in with, ended by RP-initiated logout with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_session: Option<SessionId>,
}

/// What a session is bound to: the keyed fingerprint of the client's stable headers (user-agent
/// family and languages) and the network it logged in from. Never raw headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOrigin {
    /// Hex HMAC-SHA256 of the client's stable headers.
    pub fingerprint: String,
    /// The user-agent family (`Chrome/Linux`), for explanations.
    pub ua_family: String,
    /// The login address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The login address's autonomous system, if GeoIP knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

/// What a new session is opened with.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// Client address.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Device described by the client.
    pub device: Option<DeviceInfo>,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// The binding for the hijack check.
    pub origin: Option<SessionOrigin>,
    /// The registered device.
    pub device_id: Option<crate::device::DeviceId>,
    /// Country of the login address.
    pub country: Option<String>,
    /// City of the login address.
    pub city: Option<String>,
    /// The OAuth grant, for a session an OAuth client holds.
    pub oauth: Option<SessionGrant>,
}

/// What opening a session did.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The new session.
    pub session: Session,
    /// Older sessions of the user it ended to stay within `max_per_user`.
    pub evicted: Vec<SessionId>,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Concurrent sessions are off and the user has a live one.
    #[error("the user already has a live session")]
    LimitReached,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A live session as the liveness check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    /// The session's `amr`.
    pub amr: Vec<String>,
    /// Its binding.
    pub origin: Option<SessionOrigin>,
    /// The OAuth client holding it, when one does.
    pub client_id: Option<String>,
}

impl Liveness {
    fn of(session: &Session) -> Self {
        Self {
            amr: session.amr.clone(),
            origin: session.origin.clone(),
            client_id: session.oauth.as_ref().map(|g| g.client_id.clone()),
        }
    }
}

/// Lifetimes of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Absolute lifetime (default 3600 s).
    pub lifetime: Duration,
    /// Idle timeout (default 1800 s).
    pub idle_timeout: Duration,
    /// How long a positive liveness check is trusted locally (default 1 s).
    pub cache_ttl: Duration,
    /// Most live sessions per user; a new login ends the oldest past it (0, the default: no limit).
    pub max_per_user: u32,
    /// Whether a user may hold several sessions at once (default true). When false, a login is
    /// refused while the user has a live session (log out first, or end it from another device).
    pub concurrent: bool,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            lifetime: Duration::seconds(3600),
            idle_timeout: Duration::seconds(1800),
            cache_ttl: Duration::seconds(1),
            max_per_user: 0,
            concurrent: true,
        }
    }
}

/// Sessions over the hot store.
///
/// The cache's `std::sync::Mutex` is never held across an `.await`.
pub struct SessionService {
    hot: Arc<dyn HotStore>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    /// Sessions recently found alive: when, and what the check needs of them.
    alive: Mutex<HashMap<SessionId, (OffsetDateTime, Liveness)>>,
}

fn session_key(user: UserId, id: SessionId) -> HotKey {
    HotKey::new(&format!("user:{user}"), &format!("session:{id}"))
}

fn index_key(user: UserId) -> HotKey {
    HotKey::new(&format!("user:{user}"), "sessions-by-age")
}

impl SessionService {
    /// Sessions over `hot` with `policy`.
    pub fn new(hot: Arc<dyn HotStore>, clock: Arc<dyn Clock>, policy: SessionPolicy) -> Self {
        Self { hot, clock, policy, alive: Mutex::default() }
    }

    /// The policy in force.
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Opens a session for `user`, within the policy's limits: past `max_per_user` the oldest
    /// sessions end (returned in [`Opened::evicted`] so their refresh families can be revoked);
    /// with concurrent sessions off, a user with a live session is refused.
    pub async fn create(&self, user: UserId, new: NewSession) -> Result<Opened, OpenError> {
        let now = self.clock.now();
        let session = Session {
            id: SessionId::generate(),
            user_id: user,
            created_at: now,
            expires_at: now + self.policy.lifetime,
            last_seen_at: now,
            ip: new.ip,
            user_agent: new.user_agent,
            device: new.device,
            amr: new.amr,
            origin: new.origin,
            device_id: new.device_id,
            country: new.country,
            city: new.city,
            oauth: new.oauth,
        };
        let member = session.id.to_string();
        let rank = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let index = index_key(user);
        let mut evicted = Vec::new();
        // The session exists before the index names it, so an eviction racing this login always
        // finds what it ends (never a session that is live but unlisted).
        self.write(&session, now).await?;
        if self.policy.concurrent {
            let keep = if self.policy.max_per_user == 0 { u32::MAX } else { self.policy.max_per_user };
            for gone in self.hot.ranked_add(&index, &member, rank, keep, self.policy.lifetime).await? {
                if gone == member {
                    // Older than the sessions kept (clocks of two instances disagree): it goes.
                    self.hot.delete(&session_key(user, session.id)).await?;
                    return Err(OpenError::LimitReached);
                }
                if let Ok(id) = uuid::Uuid::try_parse(&gone).map(SessionId::from_uuid) {
                    self.forget(id);
                    if self.hot.delete(&session_key(user, id)).await? {
                        evicted.push(id);
                    }
                }
            }
        } else if !self.hot.ranked_add_if_room(&index, &member, rank, 1, self.policy.lifetime).await? {
            // The index may still name sessions that ended by themselves (idle, expired): drop those
            // and try once more. Of two concurrent logins, the store lets one in.
            self.list(user).await?;
            if !self.hot.ranked_add_if_room(&index, &member, rank, 1, self.policy.lifetime).await? {
                self.hot.delete(&session_key(user, session.id)).await?;
                return Err(OpenError::LimitReached);
            }
        }
        Ok(Opened { session, evicted })
    }

    /// The live session `id` of `user`.
    pub async fn get(&self, user: UserId, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.get_raw(user, id).await?.map(|(session, _)| session))
    }

    /// The live session with the bytes it is stored as (for a compare-and-set).
    async fn get_raw(&self, user: UserId, id: SessionId) -> Result<Option<(Session, Vec<u8>)>, StoreError> {
        let Some(bytes) = self.hot.get(&session_key(user, id)).await? else {
            return Ok(None);
        };
        let session: Session =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("session {id}: {e}")))?;
        Ok((session.expires_at > self.clock.now()).then_some((session, bytes)))
    }

    /// Whether the session is alive, trusting a recent positive answer for `cache_ttl`; records
    /// activity at most once a minute.
    pub async fn is_alive(&self, user: UserId, id: SessionId) -> Result<bool, StoreError> {
        Ok(self.liveness(user, id).await?.is_some())
    }

    /// The `amr` and binding of the session if it is alive, trusting a recent positive answer for
    /// `cache_ttl` (neither ever changes); records activity at most once a minute.
    pub async fn liveness(&self, user: UserId, id: SessionId) -> Result<Option<Liveness>, StoreError> {
        let now = self.clock.now();
        if self.policy.cache_ttl > Duration::ZERO {
            let cache = self.alive.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, live)) = cache.get(&id).filter(|(checked, _)| now - *checked < self.policy.cache_ttl) {
                return Ok(Some(live.clone()));
            }
        }
        let Some(session) = self.alive(user, id).await? else {
            return Ok(None);
        };
        if self.policy.cache_ttl > Duration::ZERO {
            let mut cache = self.alive.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= CACHE_CAPACITY {
                let ttl = self.policy.cache_ttl;
                cache.retain(|_, (checked, _)| now - *checked < ttl);
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
            }
            cache.insert(id, (now, Liveness::of(&session)));
        }
        Ok(Some(Liveness::of(&session)))
    }

    /// The live session `id` of `user`, read from the hot store (no cache); records activity at most
    /// once a minute.
    pub async fn alive(&self, user: UserId, id: SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.clock.now();
        let Some((session, stored)) = self.get_raw(user, id).await? else {
            self.forget(id);
            return Ok(None);
        };
        if now - session.last_seen_at >= TOUCH_INTERVAL {
            let mut touched = session.clone();
            touched.last_seen_at = now;
            // Only over the very bytes just read: a session ended meanwhile (logout, password change)
            // must not be written back to life.
            if !self.write_if_unchanged(&touched, &stored, now).await? && self.get(user, id).await?.is_none() {
                self.forget(id);
                return Ok(None);
            }
        }
        Ok(Some(session))
    }

    /// The user's live sessions, newest first. Ids of ended sessions are dropped from the index.
    pub async fn list(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let mut sessions = Vec::new();
        for member in self.hot.ranked_members(&index_key(user)).await? {
            let Ok(uuid) = uuid::Uuid::try_parse(&member) else {
                self.hot.ranked_remove(&index_key(user), &member).await?;
                continue;
            };
            match self.get(user, SessionId::from_uuid(uuid)).await? {
                Some(session) => sessions.push(session),
                None => {
                    self.hot.ranked_remove(&index_key(user), &member).await?;
                }
            }
        }
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(sessions)
    }

    /// Ends one session; `true` when it was alive.
    pub async fn end(&self, user: UserId, id: SessionId) -> Result<bool, StoreError> {
        self.forget(id);
        let existed = self.hot.delete(&session_key(user, id)).await?;
        self.hot.ranked_remove(&index_key(user), &id.to_string()).await?;
        Ok(existed)
    }

    /// Ends every session of `user` but `keep`; returns the ids ended.
    pub async fn end_all_except(&self, user: UserId, keep: Option<SessionId>) -> Result<Vec<SessionId>, StoreError> {
        let mut ended = Vec::new();
        for session in self.list(user).await? {
            if Some(session.id) != keep && self.end(user, session.id).await? {
                ended.push(session.id);
            }
        }
        Ok(ended)
    }

    fn forget(&self, id: SessionId) {
        self.alive.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
    }

    /// Rewrites the session only if it is still stored as `expected`; `false` when it changed or went.
    async fn write_if_unchanged(
        &self,
        session: &Session,
        expected: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let ttl = (session.expires_at - now).min(self.policy.idle_timeout);
        if ttl <= Duration::ZERO {
            return Ok(false);
        }
        let bytes = serde_json::to_vec(session).map_err(|e| StoreError::Other(format!("encoding a session: {e}")))?;
        let key = session_key(session.user_id, session.id);
        self.hot.compare_and_set(&key, Some(expected), &bytes, ttl.max(Duration::milliseconds(1))).await
    }

    async fn write(&self, session: &Session, now: OffsetDateTime) -> Result<(), StoreError> {
        let remaining = session.expires_at - now;
        let ttl = remaining.min(self.policy.idle_timeout);
        if ttl <= Duration::ZERO {
            return Ok(());
        }
        let bytes = serde_json::to_vec(session).map_err(|e| StoreError::Other(format!("encoding a session: {e}")))?;
        self.hot.put(&session_key(session.user_id, session.id), &bytes, ttl.max(Duration::milliseconds(1))).await
    }
}
