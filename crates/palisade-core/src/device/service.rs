//! The device registry's use cases and the session binding check.
//!
//! # Fingerprints
//! Two keyed hashes (HMAC-SHA256 under a key derived from the first data key, so they survive
//! data-key rotation), never the raw headers:
//! - the *client signature* of a request: its user-agent family (browser and OS, as woothee reads
//!   them) and its `Accept-Language`. A session is bound to the signature of its login; a request
//!   or refresh with another one is taken for a hijack (unless binding is `off`).
//! - the *device fingerprint* of a user's device: the client's own `device.fingerprint` when the
//!   login gives one, otherwise its client signature — bound to the user, so one device of two users
//!   is two records and a fingerprint says nothing across accounts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::{digest, hmac};
use time::Duration;

use super::model::{
    DeviceFingerprint, DeviceId, DeviceRecord, DeviceSeen, DeviceUpdate, TrustLevel, parse_device_name,
};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::auth::{AuthError, Principal};
use crate::clock::Clock;
use crate::notify::{EmailSender, WebhookSender};
use crate::risk::{DeviceFamiliarity, GeoInfo, GeoIp};
use crate::session::{DeviceInfo, SessionOrigin};
use crate::store::DurableStore;
use crate::user::{User, UserId};

/// Client signatures remembered per raw header digest before the cache is swept.
const SIGNATURE_CACHE: usize = 10_000;

/// How tightly a session is bound to where it was opened. Every level but `off` ends a session
/// whose requests come from another device (another user-agent family, or other stable headers);
/// `asn` also ends it when the requests come from another network (autonomous system, which needs
/// a GeoIP ASN database), and `address` when they come from any other address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionBinding {
    /// No hijack check.
    Off,
    /// Same device (default).
    Device,
    /// Same device and network.
    Asn,
    /// Same device and address.
    Address,
}

impl SessionBinding {
    /// The stable name (`off`, `device`, `asn`, `address`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Device => "device",
            Self::Asn => "asn",
            Self::Address => "address",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "device" => Some(Self::Device),
            "asn" => Some(Self::Asn),
            "address" => Some(Self::Address),
            _ => None,
        }
    }
}

/// Settings of the device registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSettings {
    /// A login from a new device waits for approval from an existing session or a mailed link
    /// (`PALISADE_DEVICE_APPROVAL`, default false).
    pub approval: bool,
    /// How long an approval waits (default 15 min).
    pub approval_ttl: Duration,
    /// How long "remember this device" lasts (default 30 days; zero turns it off).
    pub remember_ttl: Duration,
    /// Hijack detection strictness (default `device`).
    pub binding: SessionBinding,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            approval: false,
            approval_ttl: Duration::minutes(15),
            remember_ttl: Duration::days(30),
            binding: SessionBinding::Device,
        }
    }
}

/// What a request's headers say about its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSignature {
    /// Browser and OS family (`Chrome/Linux`), or `other` for programs.
    pub ua_family: String,
    /// The keyed hash of the family and the languages.
    pub fingerprint: [u8; 32],
}

impl ClientSignature {
    /// The fingerprint in hex, as sessions keep it.
    pub fn hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.fingerprint)
    }
}

/// The parts a [`DeviceService`] is built from.
pub struct DeviceParts {
    /// The durable store (the registry).
    pub store: Arc<dyn DurableStore>,
    /// GeoIP, for places and networks.
    pub geo: Arc<dyn GeoIp>,
    /// The audit chain.
    pub audit: Arc<AuditLog>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub settings: DeviceSettings,
    /// The fingerprint key (see [`crate::crypto::Keyring::stable_subkey`]).
    pub key: zeroize::Zeroizing<[u8; 32]>,
    /// Where new-device notices are e-mailed, if anywhere.
    pub email: Option<Arc<dyn EmailSender>>,
    /// Where new-device notices are posted, if anywhere.
    pub webhook: Option<Arc<dyn WebhookSender>>,
    /// The server's public URL, for links in mail (approval).
    pub issuer: String,
}

/// Devices of users.
pub struct DeviceService {
    store: Arc<dyn DurableStore>,
    geo: Arc<dyn GeoIp>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    settings: DeviceSettings,
    key: hmac::Key,
    parser: woothee::parser::Parser,
    /// Signatures by the SHA-256 of the raw headers they came from, so a bearer request costs one
    /// digest and a lookup. `std::sync::Mutex`: never held across an `.await`.
    signatures: Mutex<HashMap<[u8; 32], ClientSignature>>,
    email: Option<Arc<dyn EmailSender>>,
    webhook: Option<Arc<dyn WebhookSender>>,
    issuer: String,
}

impl DeviceService {
    /// Wires the service.
    pub fn new(parts: DeviceParts) -> Self {
        Self {
            store: parts.store,
            geo: parts.geo,
            audit: parts.audit,
            clock: parts.clock,
            settings: parts.settings,
            key: hmac::Key::new(hmac::HMAC_SHA256, parts.key.as_ref()),
            parser: woothee::parser::Parser::new(),
            signatures: Mutex::default(),
            email: parts.email,
            webhook: parts.webhook,
            issuer: parts.issuer.trim_end_matches('/').to_owned(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &DeviceSettings {
        &self.settings
    }

    /// What GeoIP says about a textual address (empty when it does not parse).
    pub fn locate(&self, ip: Option<&str>) -> GeoInfo {
        ip.and_then(|ip| ip.parse::<IpAddr>().ok()).map(|ip| self.geo.lookup(ip)).unwrap_or_default()
    }

    /// The client signature of a request.
    pub fn signature(&self, meta: &RequestMeta) -> ClientSignature {
        let ua = meta.user_agent.as_deref().unwrap_or("");
        let languages = meta.accept_language.as_deref().unwrap_or("").trim().to_ascii_lowercase();
        let mut raw = digest::Context::new(&digest::SHA256);
        raw.update(ua.as_bytes());
        raw.update(b"\0");
        raw.update(languages.as_bytes());
        let mut raw_digest = [0u8; 32];
        raw_digest.copy_from_slice(raw.finish().as_ref());
        if let Some(known) = self.signatures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&raw_digest)
        {
            return known.clone();
        }
        let ua_family = match self.parser.parse(ua) {
            Some(r) if r.name != "UNKNOWN" => format!("{}/{}", r.name, r.os),
            // A program rather than a browser: no User-Agent, or one woothee does not know. Programs
            // set their User-Agent freely (one HTTP library logs in, another calls), so they share
            // one family: telling them apart would end honest sessions and stop no thief, who can
            // send any User-Agent. A browser's token used from a program still counts as moved.
            _ => "other".to_owned(),
        };
        let mut mac = hmac::Context::with_key(&self.key);
        mac.update(b"client-signature\0");
        mac.update(ua_family.as_bytes());
        mac.update(b"\0");
        mac.update(languages.as_bytes());
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(mac.sign().as_ref());
        let signature = ClientSignature { ua_family, fingerprint };
        let mut cache = self.signatures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= SIGNATURE_CACHE {
            cache.clear();
        }
        cache.insert(raw_digest, signature.clone());
        signature
    }

    /// The fingerprint of the device of `user` a login came from.
    pub fn fingerprint(
        &self,
        user: UserId,
        info: Option<&DeviceInfo>,
        signature: &ClientSignature,
    ) -> DeviceFingerprint {
        let mut mac = hmac::Context::with_key(&self.key);
        mac.update(b"device\0");
        mac.update(user.to_string().as_bytes());
        match info.and_then(|d| d.fingerprint.as_deref()) {
            Some(client) => {
                mac.update(b"\0client\0");
                mac.update(client.as_bytes());
            }
            None => {
                mac.update(b"\0signature\0");
                mac.update(&signature.fingerprint);
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(mac.sign().as_ref());
        DeviceFingerprint(out)
    }

    /// How familiar the device is to the user, and its record if known.
    pub async fn familiarity(
        &self,
        user: UserId,
        fingerprint: &DeviceFingerprint,
    ) -> Result<(Option<DeviceRecord>, DeviceFamiliarity), AuthError> {
        let device = self.store.device_by_fingerprint(user, fingerprint).await?;
        let familiarity = match &device {
            None => DeviceFamiliarity::New,
            Some(d) if d.trust_level == TrustLevel::High && d.approved => DeviceFamiliarity::Trusted,
            Some(_) => DeviceFamiliarity::Known,
        };
        Ok((device, familiarity))
    }

    /// Records a successful login from a device: registers it when new (audited, and the user
    /// told by e-mail and webhook, in the background), or updates where it was last seen.
    pub async fn record_login(
        &self,
        user: &User,
        fingerprint: DeviceFingerprint,
        info: Option<&DeviceInfo>,
        geo: &GeoInfo,
        meta: &RequestMeta,
    ) -> Result<DeviceSeen, AuthError> {
        let now = self.clock.now();
        let ua = meta.user_agent.as_deref().and_then(|ua| self.parser.parse(ua));
        let described = |f: fn(&DeviceInfo) -> Option<&String>| info.and_then(f).cloned();
        let browser = described(|d| d.browser.as_ref()).or_else(|| ua.as_ref().map(|r| r.name.to_owned()));
        let os = described(|d| d.os.as_ref()).or_else(|| ua.as_ref().map(|r| r.os.to_owned()));
        let device_type = described(|d| d.device_type.as_ref()).or_else(|| ua.as_ref().map(|r| r.category.to_owned()));
        let name = described(|d| d.name.as_ref()).unwrap_or_else(|| match (&browser, &os) {
            (Some(b), Some(o)) => format!("{b} on {o}"),
            _ => "Unknown device".to_owned(),
        });
        let name = parse_device_name(&name).unwrap_or_else(|_| "Unknown device".to_owned());
        let record = DeviceRecord {
            id: DeviceId::generate(),
            user_id: user.id,
            fingerprint,
            name,
            device_type: device_type.filter(|t| t != "UNKNOWN").map(|t| truncate(&t, 64)),
            os: os.filter(|t| t != "UNKNOWN").map(|t| truncate(&t, 64)),
            browser: browser.filter(|t| t != "UNKNOWN").map(|t| truncate(&t, 64)),
            first_seen_at: now,
            last_seen_at: now,
            last_ip: meta.ip.clone(),
            last_country: geo.country.clone(),
            last_city: geo.city.clone(),
            // A new device starts at low trust; approval makes it medium, the user may set it.
            trust_level: TrustLevel::Low,
            approved: !self.settings.approval,
        };
        // With approval on, a user's first device is approved by the login itself: there is nothing
        // to approve it from.
        let record = if record.approved {
            record
        } else {
            let any_approved = self.store.devices(user.id).await?.iter().any(|d| d.approved);
            DeviceRecord { approved: !any_approved, ..record }
        };
        let seen = self.store.record_device_seen(&record).await?;
        if seen.new {
            let devices = self.store.devices(user.id).await?.len();
            self.audit
                .append(
                    AuditEvent::new(AuditKind::DeviceRegistered, Outcome::Success)
                        .actor(user.id.to_string())
                        .subject(seen.device.id.to_string())
                        .request(meta.clone())
                        .detail("name", seen.device.name.clone())
                        .detail("country", geo.country.clone().unwrap_or_default())
                        .detail("approved", seen.device.approved)
                        .detail("first", devices <= 1),
                )
                .await?;
            // The first device of an account is where it began: only later ones are news. A device
            // still waiting for approval has not signed in: its approval request is the notice.
            if seen.device.approved && devices > 1 {
                self.notify_new_device(user, &seen.device, geo);
            }
        }
        Ok(seen)
    }

    /// Tells the user (e-mail) and the operator (webhook) of a new device, in the background: a
    /// provider's failure is logged and never fails the login.
    fn notify_new_device(&self, user: &User, device: &DeviceRecord, geo: &GeoInfo) {
        let place = match (&geo.city, &geo.country) {
            (Some(city), Some(country)) => format!("{city}, {country}"),
            (None, Some(country)) => country.clone(),
            _ => "an unknown place".to_owned(),
        };
        let address = device.last_ip.clone().unwrap_or_else(|| "an unknown address".into());
        let when = device
            .first_seen_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| device.first_seen_at.unix_timestamp().to_string());
        if let (Some(sender), Some(to)) = (self.email.clone(), user.email.clone()) {
            let subject = "New sign-in to your account".to_owned();
            let body = format!(
                "A new device signed in to your account ({username}):\n\n  {name}\n  from {place} ({address})\n  at {when}\n\n\
                 If this was you, nothing more is needed. If not, change your password and remove the device \
                 from your account's device list: its sessions end with it.\n",
                username = user.username,
                name = device.name,
            );
            tokio::spawn(async move {
                if let Err(e) = sender.send_email(&to, &subject, &body).await {
                    tracing::warn!(error = %e, "could not e-mail a new-device notice");
                }
            });
        }
        if let Some(webhook) = self.webhook.clone() {
            let notice = serde_json::json!({
                "event": "device.registered",
                "user_id": user.id.to_string(),
                "device_id": device.id.to_string(),
                "device_name": device.name,
                "ip": device.last_ip,
                "country": geo.country,
                "city": geo.city,
                "at": when,
                "approved": device.approved,
            });
            tokio::spawn(async move {
                if let Err(e) = webhook.post(&notice).await {
                    tracing::warn!(error = %e, "could not post a new-device notice");
                }
            });
        }
    }

    /// A remember-device token for `device` of `user`: `rd1.<user>.<device>.<expiry>.<mac>`, the
    /// MAC (HMAC-SHA256 under the fingerprint key) covering the ids, the expiry and the device's
    /// fingerprint, so the token is worth nothing on another device, for another user, after its
    /// expiry, or once the device is forgotten. `None` when remembering is off.
    pub fn remember_token(
        &self,
        user: UserId,
        device: DeviceId,
        fingerprint: &DeviceFingerprint,
    ) -> Option<(secrecy::SecretString, u64)> {
        if self.settings.remember_ttl <= Duration::ZERO {
            return None;
        }
        let expires = (self.clock.now() + self.settings.remember_ttl).unix_timestamp();
        let head = format!("rd1.{}.{}.{expires}", user.as_uuid().simple(), device.as_uuid().simple());
        let mac = self.remember_mac(&head, fingerprint);
        let token = format!("{head}.{}", data_encoding::BASE64URL_NOPAD.encode(&mac));
        let lifetime = u64::try_from(self.settings.remember_ttl.whole_seconds()).unwrap_or(0);
        Some((secrecy::SecretString::from(token), lifetime))
    }

    /// Whether `token` is a live remember-device token of `device` of `user` with `fingerprint`.
    pub fn check_remember_token(
        &self,
        token: &str,
        user: UserId,
        device: DeviceId,
        fingerprint: &DeviceFingerprint,
    ) -> bool {
        if self.settings.remember_ttl <= Duration::ZERO || token.len() > 200 {
            return false;
        }
        let Some((head, mac)) = token.rsplit_once('.') else { return false };
        let mut parts = head.split('.');
        let (Some("rd1"), Some(u), Some(d), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let names_this = uuid::Uuid::try_parse(u).ok() == Some(user.as_uuid())
            && uuid::Uuid::try_parse(d).ok() == Some(device.as_uuid());
        let live = expires.parse::<i64>().is_ok_and(|at| at > self.clock.now().unix_timestamp());
        let Ok(given) = data_encoding::BASE64URL_NOPAD.decode(mac.as_bytes()) else { return false };
        let expected = self.remember_mac(head, fingerprint);
        // The MAC is compared whatever else failed, so the answer's time says nothing.
        crate::crypto::constant_time_eq(&given, &expected) && names_this && live
    }

    fn remember_mac(&self, head: &str, fingerprint: &DeviceFingerprint) -> [u8; 32] {
        let mut mac = hmac::Context::with_key(&self.key);
        mac.update(b"remember-device\0");
        mac.update(head.as_bytes());
        mac.update(b"\0");
        mac.update(&fingerprint.0);
        let mut out = [0u8; 32];
        out.copy_from_slice(mac.sign().as_ref());
        out
    }

    /// Whether mail can reach `user` (an address and a sender).
    pub fn can_mail(&self, user: &User) -> bool {
        self.email.is_some() && user.email.is_some()
    }

    /// Mails `user` the link approving `device`, in the background (a failure is logged: the
    /// user can still approve from an existing session).
    pub fn mail_approval_link(&self, user: &User, device: &DeviceRecord, link: &secrecy::SecretString) {
        let (Some(sender), Some(to)) = (self.email.clone(), user.email.clone()) else { return };
        let place = match (&device.last_city, &device.last_country) {
            (Some(city), Some(country)) => format!("{city}, {country}"),
            (None, Some(country)) => country.clone(),
            _ => "an unknown place".to_owned(),
        };
        let body = format!(
            "A device is waiting for your approval to sign in to your account ({username}):\n\n  {name}\n  from {place} ({address})\n\n\
             If this is you, approve it here:\n\n  {issuer}/devices/approve#token={token}\n\n\
             If it is not you, do nothing and change your password: the request expires by itself.\n",
            username = user.username,
            name = device.name,
            address = device.last_ip.as_deref().unwrap_or("an unknown address"),
            issuer = self.issuer,
            token = secrecy::ExposeSecret::expose_secret(link),
        );
        tokio::spawn(async move {
            if let Err(e) = sender.send_email(&to, "Approve a new device", &body).await {
                tracing::warn!(error = %e, "could not e-mail a device approval link");
            }
        });
    }

    /// What a session opened now is bound to (`None` with binding off).
    pub fn origin(&self, signature: &ClientSignature, ip: Option<&str>, geo: &GeoInfo) -> Option<SessionOrigin> {
        (self.settings.binding != SessionBinding::Off).then(|| SessionOrigin {
            fingerprint: signature.hex(),
            ua_family: signature.ua_family.clone(),
            ip: ip.map(str::to_owned),
            asn: geo.asn,
        })
    }

    /// Checks a request against the session's binding: `Err(reason)` when it looks like another
    /// client. Cheap: a digest and a lookup, plus one GeoIP lookup when `asn` binding sees a new
    /// address.
    pub fn check_origin(&self, origin: &SessionOrigin, meta: &RequestMeta) -> Result<(), String> {
        if self.settings.binding == SessionBinding::Off {
            return Ok(());
        }
        let signature = self.signature(meta);
        if !crate::crypto::constant_time_eq(signature.hex().as_bytes(), origin.fingerprint.as_bytes()) {
            return Err(if signature.ua_family == origin.ua_family {
                "the client's languages changed".to_owned()
            } else {
                format!("user-agent family changed ({} → {})", origin.ua_family, signature.ua_family)
            });
        }
        let same_address = origin.ip.as_deref() == meta.ip.as_deref();
        match self.settings.binding {
            SessionBinding::Off | SessionBinding::Device => Ok(()),
            _ if same_address => Ok(()),
            SessionBinding::Address => Err("address changed".to_owned()),
            SessionBinding::Asn => {
                let now = self.locate(meta.ip.as_deref()).asn;
                match (origin.asn, now) {
                    (Some(was), Some(is)) if was == is => Ok(()),
                    (Some(was), Some(is)) => Err(format!("network changed (AS{was} → AS{is})")),
                    // Without an ASN on either side, only the same address is the same network.
                    _ => Err("address changed and its network is unknown".to_owned()),
                }
            }
        }
    }

    /// The caller's devices, most recently seen first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<DeviceRecord>, AuthError> {
        Ok(self.store.devices(principal.user_id).await?)
    }

    /// Renames or re-trusts one of the caller's devices (audited).
    pub async fn update(
        &self,
        principal: &Principal,
        id: DeviceId,
        update: DeviceUpdate,
        meta: &RequestMeta,
    ) -> Result<DeviceRecord, AuthError> {
        let update = DeviceUpdate { name: update.name.as_deref().map(parse_device_name).transpose()?, ..update };
        let device = self.store.update_device(principal.user_id, id, &update).await?.ok_or(AuthError::NotFound)?;
        let mut event = AuditEvent::new(AuditKind::DeviceUpdated, Outcome::Success)
            .actor(principal.user_id.to_string())
            .subject(id.to_string())
            .request(meta.clone());
        if let Some(level) = update.trust_level {
            event = event.detail("trust_level", level.as_str());
        }
        if update.name.is_some() {
            event = event.detail("renamed", true);
        }
        self.audit.append(event).await?;
        Ok(device)
    }

    /// Approves one of the caller's devices (audited).
    pub async fn approve(&self, principal: &Principal, id: DeviceId, meta: &RequestMeta) -> Result<(), AuthError> {
        if !self.store.approve_device(principal.user_id, id).await? {
            return Err(AuthError::NotFound);
        }
        self.audit
            .append(
                AuditEvent::new(AuditKind::DeviceApproved, Outcome::Success)
                    .actor(principal.user_id.to_string())
                    .subject(id.to_string())
                    .request(meta.clone()),
            )
            .await?;
        Ok(())
    }

    /// Forgets one of the caller's devices; the caller ends its sessions.
    pub(crate) async fn delete(&self, user: UserId, id: DeviceId) -> Result<bool, AuthError> {
        Ok(self.store.delete_device(user, id).await?)
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}
