//! Creating, listing, revoking and validating API keys, with their rate limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

use super::ApiKeyRecord;
use super::format::{ApiKeyText, ParseError};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::crypto::{CryptoError, Keyring};
use crate::store::{DurableStore, HotKey, HotStore, RateWindow, StoreError};
use crate::user::UserId;

/// Label of the subkey, derived from a data key, that hashes API-key secrets.
const HASH_LABEL: &[u8] = b"palisade api-key secret hash v1";

/// How often, at most, a key's `last_used_at` is written.
const TOUCH_INTERVAL: Duration = Duration::seconds(60);

/// Keys kept by the lookup cache before it is swept.
const CACHE_CAPACITY: usize = 100_000;

/// Settings of the API-key service.
#[derive(Debug, Clone)]
pub struct ApiKeySettings {
    /// The text every key starts with (default `spa_`, as in the original guide).
    pub prefix: String,
    /// How long a key looked up in the store is trusted locally: the bound within which a revocation
    /// on another instance takes effect here (default 1 s, like sessions).
    pub cache_ttl: Duration,
}

impl Default for ApiKeySettings {
    fn default() -> Self {
        Self { prefix: "spa_".into(), cache_ttl: Duration::seconds(1) }
    }
}

/// Requests allowed per minute, hour and day (`None`: no limit for that window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Per minute.
    pub per_minute: Option<u32>,
    /// Per hour.
    pub per_hour: Option<u32>,
    /// Per day.
    pub per_day: Option<u32>,
}

/// What a new key is to be.
#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    /// A name for its owner (1–100 characters).
    pub name: String,
    /// Scopes it grants (RFC 6749 scope tokens).
    pub scopes: Vec<String>,
    /// Lifetime (`None`: until revoked).
    pub expires_in: Option<Duration>,
    /// Rate limits.
    pub limits: RateLimits,
    /// CIDR networks (or single addresses) it may be used from; empty: anywhere.
    pub ip_allow: Vec<String>,
}

/// A key just made: its text, shown once, and its record.
#[derive(Debug)]
pub struct CreatedApiKey {
    /// The full key. Only its hash is stored: it cannot be shown again.
    pub key: SecretString,
    /// The stored record.
    pub record: ApiKeyRecord,
}

/// A key that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedApiKey {
    /// The key's id.
    pub key_id: uuid::Uuid,
    /// Its owner.
    pub owner: UserId,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Requests left in the tightest window (`None`: the key has no limit).
    pub rate_limit_remaining: Option<u64>,
    /// The tightest window's limit and seconds to its reset, for `RateLimit` headers.
    pub rate_limit: Option<(u64, u64)>,
}

/// Why a key was refused or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// Not a key, unknown, revoked or expired: one answer.
    #[error("invalid API key")]
    Invalid,
    /// Used from outside its allow-list.
    #[error("this API key may not be used from this address")]
    ForbiddenIp,
    /// It lacks a required scope.
    #[error("the API key lacks the `{0}` scope")]
    InsufficientScope(String),
    /// Over a limit: retry after the given seconds.
    #[error("rate limit exceeded")]
    RateLimited {
        /// Seconds until the exceeded window resets.
        retry_after_secs: u64,
        /// That window's limit.
        limit: u64,
    },
    /// A field of a new key is wrong.
    #[error("{field}: {problem}")]
    BadInput {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// No such key of the caller's.
    #[error("not found")]
    NotFound,
    /// A store is unreachable: fail closed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiKeyError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

impl From<CryptoError> for ApiKeyError {
    fn from(e: CryptoError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

fn bad(field: &'static str, problem: impl Into<String>) -> ApiKeyError {
    ApiKeyError::BadInput { field, problem: problem.into() }
}

/// Scopes no user can give themselves: `admin`; the encryption service's (`crypto:…`), which
/// decrypt data of any owner; monitoring's (`monitoring:…`), which read everyone's security
/// events and write events about any user; and compliance's (`compliance:…`), which read every
/// user's consents, exports and the reports, and act for any user. Only an administrator (or a key
/// holding that very scope) grants them.
fn is_privileged_scope(scope: &str) -> bool {
    scope == "admin"
        || scope.starts_with("crypto:")
        || scope.starts_with("monitoring:")
        || scope.starts_with("compliance:")
}

/// Whether `scope` is an RFC 6749 scope token (printable ASCII but space, `"` and `\`).
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= 128
        && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Creates, lists, revokes and validates API keys.
pub struct ApiKeyService {
    store: Arc<dyn DurableStore>,
    hot: Arc<dyn HotStore>,
    keyring: Arc<Keyring>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    settings: ApiKeySettings,
    /// Records recently read, by id, with when. `std::sync::Mutex`: never held across an `.await`.
    cache: Mutex<HashMap<uuid::Uuid, (Arc<ApiKeyRecord>, OffsetDateTime)>>,
}

impl ApiKeyService {
    /// The service over its ports.
    pub fn new(
        store: Arc<dyn DurableStore>,
        hot: Arc<dyn HotStore>,
        keyring: Arc<Keyring>,
        audit: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
        settings: ApiKeySettings,
    ) -> Self {
        Self { store, hot, keyring, audit, clock, settings, cache: Mutex::default() }
    }

    /// HMAC-SHA256 of a secret under the subkey derived from data key `key_id` (the active data key
    /// when `None`); returns the key id used and the MAC.
    async fn secret_hash(
        &self,
        key_id: Option<uuid::Uuid>,
        secret: &[u8],
    ) -> Result<(uuid::Uuid, Vec<u8>), ApiKeyError> {
        let (key_id, mac) = self.keyring.keyed_hash(HASH_LABEL, key_id, secret).await?;
        Ok((key_id, mac.to_vec()))
    }

    /// Makes a key for `owner`. `owner_scopes` are the creator's own scopes: `admin` can only be
    /// granted by a caller who holds it.
    pub async fn create(
        &self,
        owner: UserId,
        owner_scopes: &[String],
        input: NewApiKey,
        meta: &RequestMeta,
    ) -> Result<CreatedApiKey, ApiKeyError> {
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(bad("name", "1 to 100 characters, no control characters"));
        }
        if input.scopes.is_empty() || input.scopes.len() > 50 {
            return Err(bad("scopes", "1 to 50 scopes"));
        }
        if let Some(wrong) = input.scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(bad(
                "scopes",
                format!("`{wrong}` is not a scope token (printable ASCII, no spaces or quotes)"),
            ));
        }
        let is_admin = owner_scopes.iter().any(|s| s == "admin");
        if let Some(privileged) = input.scopes.iter().find(|s| is_privileged_scope(s))
            && !is_admin
            && !owner_scopes.contains(privileged)
        {
            return Err(bad("scopes", format!("only an administrator can grant `{privileged}`")));
        }
        let mut ip_allow = Vec::with_capacity(input.ip_allow.len());
        for entry in &input.ip_allow {
            let net = entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| bad("ip_whitelist", format!("`{entry}` is not an IPv4/IPv6 address or CIDR")))?;
            ip_allow.push(net.trunc().to_string());
        }
        for (field, value) in [
            ("requests_per_minute", input.limits.per_minute),
            ("requests_per_hour", input.limits.per_hour),
            ("requests_per_day", input.limits.per_day),
        ] {
            if value == Some(0) {
                return Err(bad(field, "a positive number (leave it out for no limit)"));
            }
        }
        let now = self.clock.now();
        let expires_at = match input.expires_in {
            Some(d) if d <= Duration::ZERO || d > Duration::days(3650) => {
                return Err(bad("expires_in", "seconds from 1 to 10 years"));
            }
            Some(d) => Some(now + d),
            None => None,
        };
        let id = uuid::Uuid::now_v7();
        let (key, parsed) = ApiKeyText::generate(&self.settings.prefix, id)
            .map_err(|_| ApiKeyError::Internal("random generator failed".into()))?;
        let (hash_key_id, secret_hash) = self.secret_hash(None, parsed.secret_bytes()).await?;
        let record = ApiKeyRecord {
            id,
            owner,
            name,
            secret_hash,
            hash_key_id,
            scopes: input.scopes,
            ip_allow,
            per_minute: input.limits.per_minute,
            per_hour: input.limits.per_hour,
            per_day: input.limits.per_day,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_api_key(&record).await?;
        self.audit
            .append(
                AuditEvent::new(AuditKind::ApiKeyCreated, Outcome::Success)
                    .actor(owner.to_string())
                    .subject(id.to_string())
                    .request(meta.clone())
                    .detail("scopes", record.scopes.join(" ")),
            )
            .await
            .map_err(|e| ApiKeyError::Unavailable(e.to_string()))?;
        Ok(CreatedApiKey { key, record })
    }

    /// Every user's keys, for an administrator.
    pub async fn admin_list(
        &self,
        principal: &crate::auth::Principal,
        limit: u32,
    ) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
        if !principal.has_scope(crate::auth::SCOPE_ADMIN) {
            return Err(ApiKeyError::InsufficientScope(crate::auth::SCOPE_ADMIN.to_owned()));
        }
        self.list(None, limit).await
    }

    /// Revokes anyone's key, for an administrator.
    pub async fn admin_revoke(
        &self,
        principal: &crate::auth::Principal,
        id: uuid::Uuid,
        meta: &RequestMeta,
    ) -> Result<(), ApiKeyError> {
        if !principal.has_scope(crate::auth::SCOPE_ADMIN) {
            return Err(ApiKeyError::InsufficientScope(crate::auth::SCOPE_ADMIN.to_owned()));
        }
        self.revoke(id, None, &principal.user_id.to_string(), meta).await
    }

    /// The keys of `owner` (everyone's with `None`).
    pub async fn list(&self, owner: Option<UserId>, limit: u32) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
        Ok(self.store.api_keys(owner, None, limit).await?)
    }

    /// Revokes key `id` — only `owner`'s when given. Effective here at once, on other instances within
    /// the cache's time to live.
    pub async fn revoke(
        &self,
        id: uuid::Uuid,
        owner: Option<UserId>,
        actor: &str,
        meta: &RequestMeta,
    ) -> Result<(), ApiKeyError> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        if !self.store.revoke_api_key(id, owner, self.clock.now()).await? {
            return Err(ApiKeyError::NotFound);
        }
        self.audit
            .append(
                AuditEvent::new(AuditKind::ApiKeyRevoked, Outcome::Success)
                    .actor(actor)
                    .subject(id.to_string())
                    .request(meta.clone()),
            )
            .await
            .map_err(|e| ApiKeyError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Lifts the revocation of key `id` (an automatic response reverted by `actor`). Conditional on
    /// the revocation read here still being the one in place, so a concurrent change is not undone.
    pub async fn restore(&self, id: uuid::Uuid, actor: &str, meta: &RequestMeta) -> Result<(), ApiKeyError> {
        let record = self.store.api_key(id).await?.ok_or(ApiKeyError::NotFound)?;
        let revoked_at = record.revoked_at.ok_or(ApiKeyError::NotFound)?;
        if !self.store.restore_api_key(id, revoked_at).await? {
            return Err(ApiKeyError::NotFound);
        }
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        self.audit
            .append(
                AuditEvent::new(AuditKind::ApiKeyRestored, Outcome::Success)
                    .actor(actor)
                    .subject(id.to_string())
                    .request(meta.clone()),
            )
            .await
            .map_err(|e| ApiKeyError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Checks a key presented by a caller at `ip`: format and checksum (no lookup), the keyed hash
    /// (constant time), revocation and expiry, the allow-list, `required` scopes, and finally the rate
    /// limits — all windows counted in one atomic hot-store round trip. Refusals are audited.
    pub async fn validate(
        &self,
        text: &str,
        required: &[String],
        ip: Option<IpAddr>,
        meta: &RequestMeta,
    ) -> Result<ValidatedApiKey, ApiKeyError> {
        match self.check(text, required, ip).await {
            Ok(valid) => Ok(valid),
            Err(e @ (ApiKeyError::Unavailable(_) | ApiKeyError::Internal(_))) => Err(e),
            Err(e) => {
                let reason = match &e {
                    ApiKeyError::ForbiddenIp => "address not allowed".to_owned(),
                    ApiKeyError::InsufficientScope(s) => format!("missing scope {s}"),
                    ApiKeyError::RateLimited { .. } => "rate limited".to_owned(),
                    _ => "invalid, unknown, revoked or expired key".to_owned(),
                };
                let mut event = AuditEvent::new(AuditKind::ApiKeyRejected, Outcome::Failure)
                    .request(meta.clone())
                    .detail("reason", reason);
                // These refusals come after the secret matched: the key is proven, so name it (an
                // automatic response may revoke it). A wrong secret names nothing.
                if matches!(
                    e,
                    ApiKeyError::ForbiddenIp | ApiKeyError::InsufficientScope(_) | ApiKeyError::RateLimited { .. }
                ) && let Ok(parsed) = ApiKeyText::parse(&self.settings.prefix, text)
                {
                    event = event.subject(parsed.id.to_string());
                }
                if let Err(audit) = self.audit.append(event).await {
                    tracing::error!(error = %audit, "could not audit an API-key refusal");
                }
                Err(e)
            }
        }
    }

    async fn check(&self, text: &str, required: &[String], ip: Option<IpAddr>) -> Result<ValidatedApiKey, ApiKeyError> {
        let parsed = ApiKeyText::parse(&self.settings.prefix, text).map_err(|e| match e {
            ParseError::Malformed | ParseError::Checksum => ApiKeyError::Invalid,
        })?;
        let record = self.record(parsed.id).await?.ok_or(ApiKeyError::Invalid)?;
        let (_, mac) = self.secret_hash(Some(record.hash_key_id), parsed.secret_bytes()).await?;
        if !crate::crypto::constant_time_eq(&mac, &record.secret_hash) {
            return Err(ApiKeyError::Invalid);
        }
        let now = self.clock.now();
        if record.revoked_at.is_some() || record.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiKeyError::Invalid);
        }
        if !record.ip_allow.is_empty() {
            let allowed = ip.is_some_and(|ip| {
                let ip = ip.to_canonical();
                record.ip_allow.iter().filter_map(|n| n.parse::<ipnet::IpNet>().ok()).any(|net| net.contains(&ip))
            });
            if !allowed {
                return Err(ApiKeyError::ForbiddenIp);
            }
        }
        if let Some(missing) = required.iter().find(|r| !record.scopes.contains(r)) {
            return Err(ApiKeyError::InsufficientScope(missing.clone()));
        }
        let windows: Vec<RateWindow> = [
            ("minute", record.per_minute, Duration::minutes(1)),
            ("hour", record.per_hour, Duration::hours(1)),
            ("day", record.per_day, Duration::days(1)),
        ]
        .into_iter()
        .filter_map(|(name, limit, window)| {
            limit.map(|limit| RateWindow {
                key: HotKey::new(&format!("apikey:{}", record.id), &format!("rate:{name}")),
                limit: u64::from(limit),
                window,
            })
        })
        .collect();
        let (remaining, rate_limit) = if windows.is_empty() {
            (None, None)
        } else {
            let decision = self.hot.hit_windows(&windows).await?;
            let tightest = windows
                .iter()
                .zip(&decision.windows)
                .map(|(w, c)| (w.limit.saturating_sub(c.count), w.limit, c.resets_in))
                .min_by_key(|(left, _, _)| *left);
            let Some((left, limit, resets_in)) = tightest else {
                return Err(ApiKeyError::Internal("the hot store answered no windows".into()));
            };
            let reset_secs = u64::try_from(resets_in.whole_seconds()).unwrap_or(0).max(1);
            if !decision.allowed {
                return Err(ApiKeyError::RateLimited { retry_after_secs: reset_secs, limit });
            }
            (Some(left), Some((limit, reset_secs)))
        };
        if record.last_used_at.is_none_or(|at| now - at >= TOUCH_INTERVAL) {
            self.touch(&record, now).await;
        }
        Ok(ValidatedApiKey {
            key_id: record.id,
            owner: record.owner,
            scopes: record.scopes.clone(),
            rate_limit_remaining: remaining,
            rate_limit,
        })
    }

    /// A record through the short-lived cache.
    async fn record(&self, id: uuid::Uuid) -> Result<Option<Arc<ApiKeyRecord>>, ApiKeyError> {
        let now = self.clock.now();
        if let Some((record, at)) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&id)
            && now - *at < self.settings.cache_ttl
        {
            return Ok(Some(record.clone()));
        }
        let Some(record) = self.store.api_key(id).await? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        if self.settings.cache_ttl > Duration::ZERO {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(id, (record.clone(), now));
        }
        Ok(Some(record))
    }

    /// Records a use; a failure only costs the timestamp, so it is logged, not raised.
    async fn touch(&self, record: &ApiKeyRecord, now: OffsetDateTime) {
        if let Err(e) = self.store.touch_api_key(record.id, now).await {
            tracing::warn!(error = %e, key_id = %record.id, "could not record an API key's use");
            return;
        }
        let mut updated = record.clone();
        updated.last_used_at = Some(now);
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(record.id, (Arc::new(updated), now));
    }
}
