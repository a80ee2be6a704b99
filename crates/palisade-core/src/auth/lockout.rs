//! Failed-login counting per account and per client address, in the hot store.
//!
//! Failures are counted per canonical username whether or not the account exists, so a lockout
//! answer says nothing about existence; and per client IP. When a count reaches its limit a marker is
//! put with the window's remaining time; logins check only the two markers (one round trip each, in
//! parallel). Locks are temporary: a permanent lock would let anyone lock real users out. A success
//! clears the account's count.

use std::sync::Arc;

use time::Duration;

use crate::clock::Clock;
use crate::store::{HotKey, HotStore, StoreError};
use crate::user::Username;

/// Limits on failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per account within `window` before it is locked (default 5).
    pub max_attempts: u32,
    /// The counting window and the lock's duration (default 900 s).
    pub window: Duration,
    /// Failures per client IP within `window` before the address is throttled (default 50).
    pub ip_max_failures: u32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self { max_attempts: 5, window: Duration::seconds(900), ip_max_failures: 50 }
    }
}

/// What the markers say before a login is tried.
pub(crate) enum Gate {
    Open,
    AccountLocked(Duration),
    IpThrottled(Duration),
}

/// What counting one failure led to.
pub(crate) struct Counted {
    pub(crate) account_locked_now: bool,
}

pub(crate) struct Lockout {
    hot: Arc<dyn HotStore>,
    clock: Arc<dyn Clock>,
    limits: LoginLimits,
}

fn account_tag(username: &str) -> String {
    format!("login:{username}")
}

fn ip_tag(ip: &str) -> String {
    format!("ip:{ip}")
}

impl Lockout {
    pub(crate) fn new(hot: Arc<dyn HotStore>, clock: Arc<dyn Clock>, limits: LoginLimits) -> Self {
        Self { hot, clock, limits }
    }

    /// Reads the account and address markers (concurrently).
    pub(crate) async fn gate(&self, username: &str, ip: Option<&str>) -> Result<Gate, StoreError> {
        let account = HotKey::new(&account_tag(username), "locked");
        let ip_key = ip.map(|ip| HotKey::new(&ip_tag(ip), "login-throttled"));
        let (account, ip) = tokio::join!(self.hot.get(&account), async {
            match &ip_key {
                Some(key) => self.hot.get(key).await,
                None => Ok(None),
            }
        });
        if let Some(until) = ip? {
            return Ok(Gate::IpThrottled(self.remaining(&until)));
        }
        if let Some(until) = account? {
            return Ok(Gate::AccountLocked(self.remaining(&until)));
        }
        Ok(Gate::Open)
    }

    /// Counts one failure against the account and the address, and puts the markers when a limit is
    /// reached.
    pub(crate) async fn count_failure(&self, username: &str, ip: Option<&str>) -> Result<Counted, StoreError> {
        let tag = account_tag(username);
        let counted = self.hot.increment(&HotKey::new(&tag, "failures"), self.limits.window).await?;
        let account_locked_now = counted.count == u64::from(self.limits.max_attempts);
        if counted.count >= u64::from(self.limits.max_attempts) {
            self.mark(&HotKey::new(&tag, "locked"), counted.resets_in).await?;
        }
        if let Some(ip) = ip {
            let tag = ip_tag(ip);
            let counted = self.hot.increment(&HotKey::new(&tag, "login-failures"), self.limits.window).await?;
            if counted.count >= u64::from(self.limits.ip_max_failures) {
                self.mark(&HotKey::new(&tag, "login-throttled"), counted.resets_in).await?;
            }
        }
        Ok(Counted { account_locked_now })
    }

    /// Clears the account's failure count after a success.
    pub(crate) async fn clear(&self, username: &Username) -> Result<(), StoreError> {
        self.hot.delete(&HotKey::new(&account_tag(username.as_str()), "failures")).await?;
        Ok(())
    }

    async fn mark(&self, key: &HotKey, for_: Duration) -> Result<(), StoreError> {
        let ttl = for_.max(Duration::seconds(1));
        let until = (self.clock.now() + ttl).unix_timestamp();
        self.hot.put(key, until.to_string().as_bytes(), ttl).await
    }

    fn remaining(&self, until: &[u8]) -> Duration {
        let until = std::str::from_utf8(until).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        Duration::seconds((until - self.clock.now().unix_timestamp()).max(1))
    }
}
