//! Automatic responses: when a detector opens an incident, the rules for its cause
//! ([`ResponseRules`], the original guide's `incident_auto_response`) say what to do about it — block
//! the address for a while, lock the account for a while, end the user's sessions and refresh
//! families, or revoke the API key that was abused. Every action is stored on the incident
//! ([`IncidentAction`]), audited as `incident.response`, and — except ending sessions, which cannot be
//! undone — reversible by an administrator (audited as `incident.response_reverted`). Timed actions
//! lapse by themselves: a blocked address is free again at its `expires_at`, and a locked account is
//! unlocked by the first instance whose sweep sees the lock lapse.
//!
//! Address blocks are enforced on every request, by every instance, from [`IpBlocks`]: a copy of the
//! live blocks in memory, refreshed from the durable store every second (so a block taken on one
//! instance holds on all of them within about a second), checked without any I/O.
//!
//! What this module must never do: act on a subject it cannot tie to the incident (an API key is
//! revoked only when the refused request proved it held the key's secret), or lock an account an
//! administrator had locked already (the lapse would then unlock it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use time::{Duration, OffsetDateTime};

use super::detect::{Detector, Observed};
use super::{Incident, MonitoringError};
use crate::api_key::{ApiKeyError, ApiKeyService};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::auth::AuthService;
use crate::clock::Clock;
use crate::store::{DurableStore, StoreError};
use crate::user::{UserId, Username};

/// What an automatic response does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    /// Refuses every request from the incident's address for a while.
    BlockIp,
    /// Locks the incident's account for a while (its sessions end with the lock).
    LockAccount,
    /// Ends every session and refresh family of the incident's user.
    EndSessions,
    /// Revokes the API key whose use was refused.
    RevokeApiKey,
}

impl ResponseKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::BlockIp, Self::LockAccount, Self::EndSessions, Self::RevokeApiKey];

    /// The name in rules, the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlockIp => "block_ip",
            Self::LockAccount => "lock_account",
            Self::EndSessions => "end_sessions",
            Self::RevokeApiKey => "revoke_api_key",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }

    /// Whether the action lasts a set time (and a rule must say how long).
    pub fn is_timed(self) -> bool {
        matches!(self, Self::BlockIp | Self::LockAccount)
    }
}

/// One action a rule takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRule {
    /// What it does.
    pub kind: ResponseKind,
    /// For how long (timed kinds only).
    pub duration: Option<Duration>,
}

/// The longest a timed response may last.
pub const MAX_RESPONSE_DURATION: Duration = Duration::days(30);

/// Which actions follow an incident of each cause.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseRules {
    rules: Vec<(&'static str, Vec<ResponseRule>)>,
}

impl ResponseRules {
    /// No automatic response at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// The defaults: brute force locks the account for 15 minutes; password spraying blocks the
    /// address for an hour; API-key abuse blocks the address for 15 minutes; token reuse and session
    /// hijack end the user's sessions. Credential stuffing has no single subject to act on.
    pub fn defaults() -> Self {
        let timed = |kind, minutes| ResponseRule { kind, duration: Some(Duration::minutes(minutes)) };
        let once = |kind| ResponseRule { kind, duration: None };
        Self {
            rules: vec![
                (Detector::BruteForce.name(), vec![timed(ResponseKind::LockAccount, 15)]),
                (Detector::PasswordSpraying.name(), vec![timed(ResponseKind::BlockIp, 60)]),
                (Detector::ApiKeyAbuse.name(), vec![timed(ResponseKind::BlockIp, 15)]),
                (Detector::TokenReuse.name(), vec![once(ResponseKind::EndSessions)]),
                (Detector::SessionHijack.name(), vec![once(ResponseKind::EndSessions)]),
            ],
        }
    }

    /// Parses `cause=action[:duration][+action…]`, rules separated by commas, e.g.
    /// `brute_force=lock_account:15m,api_key_abuse=block_ip:1h+revoke_api_key`; `none` (or an empty
    /// text) is no rule at all. Durations are read by `duration` (the configuration's own syntax).
    /// The error says what is wrong and what is expected.
    pub fn parse(text: &str, duration: impl Fn(&str) -> Result<Duration, String>) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text == "none" {
            return Ok(Self::none());
        }
        let mut rules: Vec<(&'static str, Vec<ResponseRule>)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (cause, actions) =
                part.split_once('=').ok_or_else(|| format!("{part:?} is not cause=action[:duration]"))?;
            let cause =
                Detector::ALL.into_iter().map(Detector::name).find(|n| *n == cause.trim()).ok_or_else(|| {
                    let names: Vec<_> = Detector::ALL.into_iter().map(Detector::name).collect();
                    format!("{:?} is not a detector; expected one of {}", cause.trim(), names.join(", "))
                })?;
            if rules.iter().any(|(c, _)| *c == cause) {
                return Err(format!("{cause} has two rules; give it one with its actions joined by +"));
            }
            let mut list = Vec::new();
            for action in actions.split('+').map(str::trim) {
                let (name, length) = match action.split_once(':') {
                    Some((name, length)) => (name, Some(length)),
                    None => (action, None),
                };
                let kind = ResponseKind::parse(name).ok_or_else(|| {
                    let names: Vec<_> = ResponseKind::ALL.into_iter().map(ResponseKind::as_str).collect();
                    format!("{name:?} is not an action; expected one of {}", names.join(", "))
                })?;
                let duration = match (kind.is_timed(), length) {
                    (true, Some(length)) => {
                        let d = duration(length.trim())?;
                        if d <= Duration::ZERO || d > MAX_RESPONSE_DURATION {
                            return Err(format!("{name}:{length} must last more than 0 and at most 30 days"));
                        }
                        Some(d)
                    }
                    (true, None) => return Err(format!("{name} needs a duration, e.g. {name}:15m")),
                    (false, Some(_)) => return Err(format!("{name} takes no duration")),
                    (false, None) => None,
                };
                if list.iter().any(|r: &ResponseRule| r.kind == kind) {
                    return Err(format!("{cause} lists {name} twice"));
                }
                list.push(ResponseRule { kind, duration });
            }
            rules.push((cause, list));
        }
        Ok(Self { rules })
    }

    /// The actions for incidents of `cause`.
    pub fn for_cause(&self, cause: &str) -> &[ResponseRule] {
        self.rules.iter().find(|(c, _)| *c == cause).map_or(&[], |(_, rules)| rules.as_slice())
    }

    /// Whether there is no rule at all.
    pub fn is_empty(&self) -> bool {
        self.rules.iter().all(|(_, rules)| rules.is_empty())
    }
}

/// The rules in [`ResponseRules::parse`]'s grammar, durations in whole seconds (`none` when empty).
impl std::fmt::Display for ResponseRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rules: Vec<_> = self.rules.iter().filter(|(_, actions)| !actions.is_empty()).collect();
        if rules.is_empty() {
            return f.write_str("none");
        }
        for (n, (cause, actions)) in rules.into_iter().enumerate() {
            f.write_str(if n == 0 { "" } else { "," })?;
            write!(f, "{cause}=")?;
            for (m, rule) in actions.iter().enumerate() {
                f.write_str(if m == 0 { "" } else { "+" })?;
                f.write_str(rule.kind.as_str())?;
                if let Some(d) = rule.duration {
                    write!(f, ":{}", d.whole_seconds())?;
                }
            }
        }
        Ok(())
    }
}

/// An action taken on an incident's behalf, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentAction {
    /// Its id.
    pub id: uuid::Uuid,
    /// The incident it answers.
    pub incident: uuid::Uuid,
    /// What was done.
    pub kind: ResponseKind,
    /// To what: an address, a user id or an API key id.
    pub target: String,
    /// When.
    pub taken_at: OffsetDateTime,
    /// When a timed action lapses by itself.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was reverted (by an administrator, or at its lapse for a locked account).
    pub reverted_at: Option<OffsetDateTime>,
    /// By whom (`expiry` for a lapse).
    pub reverted_by: Option<String>,
}

impl IncidentAction {
    /// Whether it is in force at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.reverted_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// The addresses blocked now, in memory: checked on every request without I/O, refreshed from the
/// store every second. `std::sync::RwLock`: never held across an `.await`.
pub struct IpBlocks {
    store: Arc<dyn DurableStore>,
    clock: Arc<dyn Clock>,
    blocked: RwLock<HashMap<IpAddr, OffsetDateTime>>,
}

impl IpBlocks {
    /// An empty list over `store`; call [`Self::refresh`] to fill it.
    pub fn new(store: Arc<dyn DurableStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock, blocked: RwLock::new(HashMap::new()) }
    }

    /// How much longer `ip` is blocked, if it is.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let until = *self.blocked.read().unwrap_or_else(PoisonError::into_inner).get(&ip.to_canonical())?;
        let left = until - self.clock.now();
        (left > Duration::ZERO).then_some(left)
    }

    /// Replaces the list with the blocks live in the store.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let live = self.store.live_incident_actions(ResponseKind::BlockIp, now).await?;
        let mut fresh = HashMap::with_capacity(live.len());
        for action in live {
            let Ok(ip) = action.target.parse::<IpAddr>() else { continue };
            let until =
                action.expires_at.unwrap_or(OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap_or(now));
            let entry = fresh.entry(ip.to_canonical()).or_insert(until);
            *entry = (*entry).max(until);
        }
        *self.blocked.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    fn insert(&self, ip: IpAddr, until: OffsetDateTime) {
        let mut blocked = self.blocked.write().unwrap_or_else(PoisonError::into_inner);
        let entry = blocked.entry(ip.to_canonical()).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn remove(&self, ip: IpAddr) {
        self.blocked.write().unwrap_or_else(PoisonError::into_inner).remove(&ip.to_canonical());
    }
}

/// Takes and reverts automatic responses.
pub struct Responder {
    rules: ResponseRules,
    store: Arc<dyn DurableStore>,
    auth: Arc<AuthService>,
    api_keys: Arc<ApiKeyService>,
    blocks: Arc<IpBlocks>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
}

/// The parts a [`Responder`] works with.
pub struct ResponderParts {
    /// What to do per cause.
    pub rules: ResponseRules,
    /// Where actions are recorded, users and keys looked up.
    pub store: Arc<dyn DurableStore>,
    /// Locks accounts and ends sessions.
    pub auth: Arc<AuthService>,
    /// Revokes and restores keys.
    pub api_keys: Arc<ApiKeyService>,
    /// The blocked addresses.
    pub blocks: Arc<IpBlocks>,
    /// Where actions are audited.
    pub audit: Arc<AuditLog>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl Responder {
    /// The responder over its parts.
    pub fn new(parts: ResponderParts) -> Self {
        let ResponderParts { rules, store, auth, api_keys, blocks, audit, clock } = parts;
        Self { rules, store, auth, api_keys, blocks, audit, clock }
    }

    /// The blocked addresses.
    pub fn blocks(&self) -> &Arc<IpBlocks> {
        &self.blocks
    }

    /// Takes the actions the rules name for a just-opened `incident`, raised by `event`, and returns
    /// those taken. An action with nothing to act on (no address, no such account, an account an
    /// administrator locked already, a key not proven) is skipped; one that fails is logged, and the
    /// others are still taken.
    pub async fn respond(&self, incident: &Incident, event: &Observed) -> Vec<IncidentAction> {
        let mut taken = Vec::new();
        for rule in self.rules.for_cause(&incident.cause) {
            let result = self.act(*rule, incident, event).await;
            let outcome = match &result {
                Ok(Some(_)) => "taken",
                Ok(None) => "skipped",
                Err(_) => "failed",
            };
            metrics::counter!("palisade_auto_responses_total", "action" => rule.kind.as_str(), "outcome" => outcome)
                .increment(1);
            match result {
                Ok(Some(action)) => {
                    tracing::warn!(incident = %incident.id, action = action.kind.as_str(), target = %action.target,
                        "automatic response taken");
                    taken.push(action);
                }
                Ok(None) => {
                    tracing::info!(incident = %incident.id, action = rule.kind.as_str(), "nothing to act on")
                }
                Err(e) => tracing::warn!(incident = %incident.id, action = rule.kind.as_str(), error = %e,
                    "automatic response failed"),
            }
        }
        taken
    }

    async fn act(
        &self,
        rule: ResponseRule,
        incident: &Incident,
        event: &Observed,
    ) -> Result<Option<IncidentAction>, MonitoringError> {
        let now = self.clock.now();
        let expires_at = rule.duration.map(|d| now + d);
        let actor = format!("responder:{}", incident.id);
        let meta = RequestMeta::default();
        let target = match rule.kind {
            ResponseKind::BlockIp => {
                let address = incident.subject.strip_prefix("ip:").or(event.ip.as_deref());
                let Some(ip) = address.and_then(|a| a.parse::<IpAddr>().ok()) else { return Ok(None) };
                let ip = ip.to_canonical();
                // Loopback is the machine itself: a local proxy (all clients would be blocked) or the
                // operator.
                if ip.is_loopback() {
                    return Ok(None);
                }
                ip.to_string()
            }
            ResponseKind::LockAccount => {
                let Some(user) = self.user_of(incident, event).await? else { return Ok(None) };
                if user.1 {
                    return Ok(None);
                }
                self.auth.set_locked(user.0, true, &actor, &meta).await?;
                user.0.to_string()
            }
            ResponseKind::EndSessions => {
                let Some((id, _)) = self.user_of(incident, event).await? else { return Ok(None) };
                self.auth.end_all_sessions(id, &actor, &meta).await?;
                id.to_string()
            }
            ResponseKind::RevokeApiKey => {
                // Only a refusal of a key whose secret was right names the key (see the API-key
                // service): an unproven id would let anyone revoke anyone's key.
                let Some(key) = event.subject.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok()) else {
                    return Ok(None);
                };
                match self.api_keys.revoke(key, None, &actor, &meta).await {
                    Ok(()) => {}
                    Err(ApiKeyError::NotFound) => return Ok(None),
                    Err(e) => return Err(api_key_error(e)),
                }
                key.to_string()
            }
        };
        let action = IncidentAction {
            id: uuid::Uuid::now_v7(),
            incident: incident.id,
            kind: rule.kind,
            target,
            taken_at: now,
            expires_at,
            reverted_at: None,
            reverted_by: None,
        };
        self.store.record_incident_action(&action).await?;
        if let (ResponseKind::BlockIp, Some(until), Ok(ip)) = (action.kind, expires_at, action.target.parse()) {
            self.blocks.insert(ip, until);
        }
        self.audit_action(AuditKind::IncidentResponse, &action, &actor, &meta).await;
        Ok(Some(action))
    }

    /// The incident's user and whether they are locked already: the subject `user:<id or name>`, or
    /// the triggering event's subject.
    async fn user_of(&self, incident: &Incident, event: &Observed) -> Result<Option<(UserId, bool)>, StoreError> {
        let Some(name) = incident.subject.strip_prefix("user:").or(event.subject.as_deref()) else { return Ok(None) };
        let user = match UserId::parse(name) {
            Ok(id) => self.store.user_by_id(id).await?,
            Err(_) => match Username::parse(name) {
                Ok(username) => self.store.user_by_username(&username).await?,
                Err(_) => None,
            },
        };
        Ok(user.map(|u| (u.id, u.locked)))
    }

    /// Reverts action `id` of incident `incident`, as `by`: unblocks the address, unlocks the account,
    /// or restores the key. Ending sessions cannot be reverted.
    pub async fn revert(
        &self,
        incident: uuid::Uuid,
        id: uuid::Uuid,
        by: &str,
        meta: &RequestMeta,
    ) -> Result<IncidentAction, MonitoringError> {
        let action = self.store.incident_action(id).await?.filter(|a| a.incident == incident);
        let action = action.ok_or(MonitoringError::NotFound)?;
        if action.kind == ResponseKind::EndSessions {
            return Err(MonitoringError::Conflict("ended sessions cannot come back: the user signs in again".into()));
        }
        if action.reverted_at.is_some() {
            return Err(MonitoringError::Conflict(format!("action {id} was reverted already")));
        }
        self.undo(&action, by, meta).await?;
        let reverted = self.store.revert_incident_action(id, by, self.clock.now()).await?;
        let reverted =
            reverted.ok_or_else(|| MonitoringError::Conflict(format!("action {id} was reverted meanwhile")))?;
        self.audit_action(AuditKind::IncidentResponseReverted, &reverted, by, meta).await;
        metrics::counter!("palisade_auto_responses_reverted_total", "action" => reverted.kind.as_str()).increment(1);
        Ok(reverted)
    }

    async fn undo(&self, action: &IncidentAction, by: &str, meta: &RequestMeta) -> Result<(), MonitoringError> {
        match action.kind {
            ResponseKind::BlockIp => {
                if let Ok(ip) = action.target.parse() {
                    self.blocks.remove(ip);
                }
            }
            ResponseKind::LockAccount => {
                let id = UserId::parse(&action.target)
                    .map_err(|_| StoreError::Corrupt(format!("action {} targets {:?}", action.id, action.target)))?;
                match self.auth.set_locked(id, false, by, meta).await {
                    Ok(()) | Err(crate::auth::AuthError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            ResponseKind::RevokeApiKey => {
                let key = uuid::Uuid::parse_str(&action.target)
                    .map_err(|_| StoreError::Corrupt(format!("action {} targets {:?}", action.id, action.target)))?;
                self.api_keys.restore(key, by, meta).await.map_err(api_key_error)?;
            }
            ResponseKind::EndSessions => {}
        }
        Ok(())
    }

    /// Reverts the timed actions that have lapsed and are still recorded as live: unlocks the
    /// accounts (an address block needs nothing: it lapses in every list by itself). Of several
    /// instances sweeping at once, the one whose conditional revert succeeds does the unlocking.
    /// Returns how many lapsed.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let lapsed = self.store.lapsed_incident_actions(now, 100).await?;
        let meta = RequestMeta::default();
        let mut count = 0;
        for action in lapsed {
            let Some(reverted) = self.store.revert_incident_action(action.id, "expiry", now).await? else { continue };
            count += 1;
            if reverted.kind == ResponseKind::LockAccount
                && let Err(e) = self.undo(&reverted, "expiry", &meta).await
            {
                tracing::warn!(action = %reverted.id, error = %e, "a lapsed account lock could not be lifted");
            }
        }
        Ok(count)
    }

    async fn audit_action(&self, kind: AuditKind, action: &IncidentAction, actor: &str, meta: &RequestMeta) {
        let mut event = AuditEvent::new(kind, Outcome::Success)
            .actor(actor)
            .subject(action.target.clone())
            .request(meta.clone())
            .detail("incident", action.incident.to_string())
            .detail("action", action.kind.as_str())
            .detail("action_id", action.id.to_string());
        if let Some(until) = action.expires_at {
            event = event.detail("expires_at", until.unix_timestamp().to_string());
        }
        if let Err(e) = self.audit.append(event).await {
            tracing::warn!(error = %e, action = %action.id, "could not audit an automatic response");
        }
    }
}

/// Keeps `responder`'s address blocks current (every second) and lifts lapsed account locks (every
/// five), until the process ends. Failures are logged and retried on the next tick.
pub async fn keep_current(responder: Arc<Responder>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for round in 0u64.. {
        tick.tick().await;
        if let Err(e) = responder.blocks.refresh().await {
            tracing::warn!(error = %e, "could not refresh the blocked addresses");
        }
        if round % 5 == 0
            && let Err(e) = responder.sweep().await
        {
            tracing::warn!(error = %e, "could not lift lapsed automatic responses");
        }
    }
}

fn api_key_error(e: ApiKeyError) -> MonitoringError {
    match e {
        ApiKeyError::NotFound => MonitoringError::Conflict("the key is gone, or was revoked again since".into()),
        ApiKeyError::Unavailable(m) => MonitoringError::Store(StoreError::Unavailable(m)),
        other => MonitoringError::Store(StoreError::Other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(text: &str) -> Result<Duration, String> {
        text.strip_suffix('m').and_then(|n| n.parse().ok()).map(Duration::minutes).ok_or_else(|| format!("bad {text}"))
    }

    #[test]
    fn rules_parse_and_refuse_with_reasons() {
        let rules =
            ResponseRules::parse("brute_force=lock_account:15m, api_key_abuse=block_ip:60m+revoke_api_key", minutes)
                .unwrap();
        assert_eq!(
            rules.for_cause("brute_force"),
            [ResponseRule { kind: ResponseKind::LockAccount, duration: Some(Duration::minutes(15)) }]
        );
        assert_eq!(rules.for_cause("api_key_abuse").len(), 2);
        assert!(rules.for_cause("password_spraying").is_empty(), "a cause without a rule does nothing");
        assert!(ResponseRules::parse("none", minutes).unwrap().is_empty());
        assert!(ResponseRules::parse("", minutes).unwrap().is_empty());
        for (text, says) in [
            ("brute_force", "cause=action"),
            ("nobody=block_ip:5m", "not a detector"),
            ("brute_force=explode", "not an action"),
            ("brute_force=lock_account", "needs a duration"),
            ("token_reuse=end_sessions:5m", "takes no duration"),
            ("brute_force=lock_account:0m", "more than 0"),
            ("brute_force=lock_account:50000m", "at most 30 days"),
            ("brute_force=lock_account:5x", "bad 5x"),
            ("brute_force=end_sessions,brute_force=end_sessions", "two rules"),
            ("brute_force=end_sessions+end_sessions", "twice"),
        ] {
            let error = ResponseRules::parse(text, minutes).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn the_defaults_name_real_detectors_and_time_what_is_timed() {
        let defaults = ResponseRules::defaults();
        for (cause, rules) in &defaults.rules {
            assert!(Detector::ALL.iter().any(|d| d.name() == *cause));
            for rule in rules {
                assert_eq!(rule.kind.is_timed(), rule.duration.is_some(), "{cause}: {rule:?}");
            }
        }
        assert!(defaults.for_cause("credential_stuffing").is_empty());
        let seconds = |t: &str| t.parse::<i64>().map(Duration::seconds).map_err(|e| e.to_string());
        let text = defaults.to_string();
        assert_eq!(ResponseRules::parse(&text, seconds).unwrap(), defaults, "{text} reads back as itself");
        assert_eq!(ResponseRules::none().to_string(), "none");
    }

    #[test]
    fn an_action_is_live_until_it_lapses_or_is_reverted() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let mut action = IncidentAction {
            id: uuid::Uuid::nil(),
            incident: uuid::Uuid::nil(),
            kind: ResponseKind::BlockIp,
            target: "198.51.100.7".into(),
            taken_at: now,
            expires_at: Some(now + Duration::minutes(5)),
            reverted_at: None,
            reverted_by: None,
        };
        assert!(action.is_live(now));
        assert!(!action.is_live(now + Duration::minutes(5)), "it lapses at expires_at");
        action.reverted_at = Some(now);
        assert!(!action.is_live(now));
        action.expires_at = None;
        action.reverted_at = None;
        assert!(action.is_live(now + Duration::days(365)), "an untimed action lasts until reverted");
    }
}
