//! Login attempts counted per account and failures per client address, in the hot store.
//!
//! Attempts are counted per canonical username — whether or not the account exists, so a lockout
//! answer says nothing about existence — before the password is checked: a burst of concurrent
//! guesses is counted as it arrives, and the one past the limit is refused without hashing. A success
//! clears the count, so only failures add up. Failures per client IP are counted after the check; at
//! the limit a marker throttles the address for the rest of the window. Locks are temporary: a
//! permanent lock would let anyone lock real users out.
//!
//! So that one burst from an address cannot pass its limit by its concurrency either, an attempt
//! takes an **in-flight slot** of its address before the password is checked: the slots are capped
//! at the failures the address has left (`ip_max_failures` minus those counted), atomically across
//! instances, and an attempt that finds none is throttled without hashing. The slot is given back
//! when the check is over (a failure is then counted as before); one left by a crash lapses with
//! [`SLOT_TTL`].

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

/// How long an in-flight slot outlives an attempt that never gave it back (a crash).
pub(crate) const SLOT_TTL: Duration = Duration::seconds(60);

/// An address's in-flight attempt, held while its password is checked.
pub(crate) struct Slot {
    key: HotKey,
    member: String,
}

/// What the gate says before a password is checked.
pub(crate) enum Gate {
    /// Go on; this is the account's `count`-th attempt in the window. Give `slot` back with
    /// [`Lockout::release`] once the password is checked.
    Open { count: u64, slot: Option<Slot> },
    /// Too many attempts on this account: wait.
    AccountLocked(Duration),
    /// Too many failures from this address: wait.
    IpThrottled(Duration),
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

/// Where login attempts on an account are counted (cleared by a success).
pub(crate) fn account_attempts_key(username: &str) -> HotKey {
    HotKey::new(&account_tag(username), "attempts")
}

/// Where failed logins from `ip` are counted (the risk engine reads it).
pub(crate) fn ip_failures_key(ip: &str) -> HotKey {
    HotKey::new(&ip_tag(ip), "login-failures")
}

impl Lockout {
    pub(crate) fn new(hot: Arc<dyn HotStore>, clock: Arc<dyn Clock>, limits: LoginLimits) -> Self {
        Self { hot, clock, limits }
    }

    /// The most attempts an account gets per window.
    pub(crate) fn max_attempts(&self) -> u64 {
        u64::from(self.limits.max_attempts)
    }

    /// Counts this attempt against the account **before** the password is checked (one atomic
    /// increment), so a burst of concurrent guesses cannot all pass before the first failures are
    /// counted; and reads the address's throttle marker. A success clears the count ([`Self::clear`]).
    pub(crate) async fn gate(&self, username: &str, ip: Option<&str>) -> Result<Gate, StoreError> {
        let account = account_attempts_key(username);
        let ip_key = ip.map(|ip| HotKey::new(&ip_tag(ip), "login-throttled"));
        let (attempt, throttled, failures) = tokio::join!(
            self.hot.increment(&account, self.limits.window),
            async {
                match &ip_key {
                    Some(key) => self.hot.get(key).await,
                    None => Ok(None),
                }
            },
            async {
                match ip {
                    Some(ip) => self.hot.count(&ip_failures_key(ip)).await,
                    None => Ok(0),
                }
            }
        );
        if let Some(until) = throttled? {
            return Ok(Gate::IpThrottled(self.remaining(&until)));
        }
        let attempt = attempt?;
        if attempt.count > self.max_attempts() {
            return Ok(Gate::AccountLocked(attempt.resets_in.max(Duration::seconds(1))));
        }
        let slot = match ip {
            Some(ip) => match self.take_slot(ip, failures?).await? {
                Some(slot) => Some(slot),
                None => return Ok(Gate::IpThrottled(Duration::seconds(1))),
            },
            None => None,
        };
        Ok(Gate::Open { count: attempt.count, slot })
    }

    /// The address part of [`Self::gate`] alone (a login whose username cannot even be parsed still
    /// costs a dummy hash): `Err(wait)` when `ip` is throttled or has no slot left.
    pub(crate) async fn gate_address(&self, ip: Option<&str>) -> Result<Result<Option<Slot>, Duration>, StoreError> {
        let Some(ip) = ip else { return Ok(Ok(None)) };
        if let Some(until) = self.hot.get(&HotKey::new(&ip_tag(ip), "login-throttled")).await? {
            return Ok(Err(self.remaining(&until)));
        }
        let failures = self.hot.count(&ip_failures_key(ip)).await?;
        Ok(self.take_slot(ip, failures).await?.map(Some).ok_or(Duration::seconds(1)))
    }

    /// An in-flight slot of `ip`, which has `failures` counted, if it has one left: as many
    /// attempts may be in flight as the address has failures left before it is throttled.
    async fn take_slot(&self, ip: &str, failures: u64) -> Result<Option<Slot>, StoreError> {
        let left = u64::from(self.limits.ip_max_failures).saturating_sub(failures);
        let cap = u32::try_from(left).unwrap_or(u32::MAX);
        let slot = Slot { key: HotKey::new(&ip_tag(ip), "login-in-flight"), member: uuid::Uuid::new_v4().to_string() };
        let now = self.clock.now().unix_timestamp();
        if cap == 0 || !self.hot.ranked_add_if_room(&slot.key, &slot.member, now, cap, SLOT_TTL).await? {
            return Ok(None);
        }
        Ok(Some(slot))
    }

    /// Gives back an attempt's in-flight slot (count a failure first, with [`Self::count_ip_failure`]).
    /// A slot that cannot be given back lapses with [`SLOT_TTL`].
    pub(crate) async fn release(&self, slot: Option<Slot>) {
        let Some(slot) = slot else { return };
        if let Err(e) = self.hot.ranked_remove(&slot.key, &slot.member).await {
            tracing::warn!(error = %e, "could not give back a login's in-flight slot; it lapses by itself");
        }
    }

    /// Counts one failure against the client address and throttles it at the limit.
    pub(crate) async fn count_ip_failure(&self, ip: Option<&str>) -> Result<(), StoreError> {
        let Some(ip) = ip else { return Ok(()) };
        let tag = ip_tag(ip);
        let counted = self.hot.increment(&ip_failures_key(ip), self.limits.window).await?;
        if counted.count >= u64::from(self.limits.ip_max_failures) {
            let ttl = counted.resets_in.max(Duration::seconds(1));
            let until = (self.clock.now() + ttl).unix_timestamp();
            self.hot.put(&HotKey::new(&tag, "login-throttled"), until.to_string().as_bytes(), ttl).await?;
        }
        Ok(())
    }

    /// Clears the account's attempt count after a success.
    pub(crate) async fn clear(&self, username: &Username) -> Result<(), StoreError> {
        self.hot.delete(&account_attempts_key(username.as_str())).await?;
        Ok(())
    }

    fn remaining(&self, until: &[u8]) -> Duration {
        let until = std::str::from_utf8(until).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        Duration::seconds((until - self.clock.now().unix_timestamp()).max(1))
    }
}
