//! The per-address throttle of the back-channel endpoints (token, introspection, revocation), and
//! the per-address budget of audited refusals at the authorization endpoint.
//!
//! A client secret is 256 bits, so guessing one is hopeless; but every refused authentication is an
//! audit record, and an address could fill the chain with them. Failed client authentications are
//! counted per address in the hot store (the login's `ip_max_failures` per `window`); at the limit
//! the address is throttled for the rest of the window: it is answered 429 before anything is
//! checked, and those answers are not audited one by one — the record of the failure that reached
//! the limit says so (`throttled: true`).
//!
//! The authorization endpoint is anonymous (a browser): its refusals are always answered, but past
//! the same per-address limit they are no longer audited one by one.

use std::sync::Arc;

use time::Duration;

use crate::auth::LoginLimits;
use crate::clock::Clock;
use crate::store::{HotKey, HotStore, StoreError};

/// Failures of one kind per address.
pub(crate) struct ClientThrottle {
    hot: Arc<dyn HotStore>,
    clock: Arc<dyn Clock>,
    limits: LoginLimits,
    /// What is counted: part of the hot-store keys (`oauth-client`, `oauth-authorize`).
    name: &'static str,
}

impl ClientThrottle {
    pub(crate) fn new(hot: Arc<dyn HotStore>, clock: Arc<dyn Clock>, limits: LoginLimits, name: &'static str) -> Self {
        Self { hot, clock, limits, name }
    }

    fn failures_key(&self, ip: &str) -> HotKey {
        HotKey::new(&format!("ip:{ip}"), &format!("{}-failures", self.name))
    }

    fn throttled_key(&self, ip: &str) -> HotKey {
        HotKey::new(&format!("ip:{ip}"), &format!("{}-throttled", self.name))
    }

    /// How long `ip` must still wait, if it is throttled.
    pub(crate) async fn wait(&self, ip: Option<&str>) -> Result<Option<Duration>, StoreError> {
        let Some(ip) = ip else { return Ok(None) };
        let Some(until) = self.hot.get(&self.throttled_key(ip)).await? else { return Ok(None) };
        let until = std::str::from_utf8(&until).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        Ok(Some(Duration::seconds((until - self.clock.now().unix_timestamp()).max(1))))
    }

    /// Counts one failed client authentication from `ip`; `true` when it reached the limit (the
    /// address is throttled from now on).
    pub(crate) async fn count_failure(&self, ip: Option<&str>) -> Result<bool, StoreError> {
        let Some(ip) = ip else { return Ok(false) };
        let counted = self.hot.increment(&self.failures_key(ip), self.limits.window).await?;
        if counted.count < u64::from(self.limits.ip_max_failures) {
            return Ok(false);
        }
        let ttl = counted.resets_in.max(Duration::seconds(1));
        let until = (self.clock.now() + ttl).unix_timestamp();
        self.hot.put(&self.throttled_key(ip), until.to_string().as_bytes(), ttl).await?;
        Ok(true)
    }
}
