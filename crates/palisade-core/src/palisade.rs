//! The `Palisade` facade: one value that holds every service, built from its ports (the original
//! guide's `SecurityManager`). Applications embed it; the server wraps it.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretSlice;

use crate::api_key::{ApiKeyService, ApiKeySettings};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::auth::{AuthService, AuthSettings};
use crate::clock::{Clock, SystemClock};
use crate::crypto::{
    CryptoError, DataClassification, EncryptionContext, KeyProvider, Keyring, LocalKeyProvider, MasterKey,
};
use crate::mfa::{MfaParts, MfaService, MfaSettings};
use crate::notify::{EmailSender, SmsSender};
use crate::password::{Argon2Params, PasswordHashError, PasswordHasher, PasswordPolicy, PasswordService};
use crate::session::{SessionPolicy, SessionService};
use crate::store::{DurableStore, HotKey, HotStore};
use crate::token::access::{AccessTokenSettings, AccessTokens};
use crate::token::keys::{SigningAlgorithm, SigningKeyError, SigningKeys};

/// Why a [`Palisade`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A required part was not given.
    #[error("missing {0}: call PalisadeBuilder::{0}")]
    Missing(&'static str),
    /// The keyring could not be opened (wrong master key, store unreachable).
    #[error("keyring: {0}")]
    Keyring(#[from] CryptoError),
    /// The master key could not be used.
    #[error("master key: {0}")]
    MasterKey(#[from] crate::crypto::AeadError),
    /// The JWT signing keys could not be loaded or made.
    #[error("signing keys: {0}")]
    SigningKeys(#[from] SigningKeyError),
    /// Password hashing cannot work with these parameters.
    #[error("password hashing: {0}")]
    PasswordHashing(#[from] PasswordHashError),
    /// The MFA settings are inconsistent.
    #[error("mfa: {0}")]
    Mfa(String),
    /// The password policy is inconsistent.
    #[error("password policy: {0}")]
    PasswordPolicy(#[from] crate::password::PolicyConfigError),
    /// The risk settings are inconsistent.
    #[error("risk: {0}")]
    Risk(String),
    /// The re-encryption pace is out of range.
    #[error("re-encryption: {0}")]
    Reencryption(String),
}

/// Everything tunable about the services, with the contract's defaults.
pub struct PalisadeSettings {
    /// Tokens' `iss` (the public URL of the server).
    pub issuer: String,
    /// Tokens' `aud`.
    pub audience: String,
    /// The JWT signing algorithm.
    pub jwt_algorithm: SigningAlgorithm,
    /// The HS256 secret (only with HS256; ≥ 32 bytes).
    pub jwt_secret: Option<SecretSlice<u8>>,
    /// Access-token lifetime and clock-skew leeway.
    pub access_ttl: time::Duration,
    /// Session lifetimes and the liveness cache.
    pub sessions: SessionPolicy,
    /// Lockout, refresh lifetime and grace.
    pub auth: AuthSettings,
    /// The password policy.
    pub password_policy: PasswordPolicy,
    /// Argon2id parameters.
    pub argon2: Argon2Params,
    /// How many password hashes run at once (default: the number of cores).
    pub hash_concurrency: Option<NonZeroUsize>,
    /// API keys: their prefix and the revocation staleness bound.
    pub api_keys: ApiKeySettings,
    /// Second factors: issuer, who must use them, code lifetimes and throttles.
    pub mfa: MfaSettings,
    /// Risk-based login decisions: thresholds, weights, address lists.
    pub risk: crate::risk::RiskSettings,
    /// The device registry: approval, remembered devices, session binding.
    pub devices: crate::device::service::DeviceSettings,
    /// The encryption service's policy per classification and its limits.
    pub encryption: crate::crypto::EncryptionPolicies,
    /// The pace of the background re-encryption after the data key rotates.
    pub reencryption: crate::crypto::reencrypt::ReencryptionSettings,
    /// Security monitoring: whether the detectors run, and their thresholds.
    pub monitoring: crate::monitoring::MonitoringSettings,
    /// Compliance: enabled standards, erasure delay, consent validity, retention.
    pub compliance: crate::compliance::ComplianceSettings,
    /// The OAuth 2.0 / OpenID Connect provider: PKCE, code lifetime.
    pub oauth: crate::oauth::OAuthSettings,
}

impl Default for PalisadeSettings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            audience: "palisade".into(),
            jwt_algorithm: SigningAlgorithm::EdDSA,
            jwt_secret: None,
            access_ttl: time::Duration::minutes(15),
            sessions: SessionPolicy::default(),
            auth: AuthSettings::default(),
            password_policy: PasswordPolicy::default(),
            argon2: Argon2Params::OWASP_MINIMUM,
            hash_concurrency: None,
            api_keys: ApiKeySettings::default(),
            mfa: MfaSettings::default(),
            risk: crate::risk::RiskSettings::default(),
            devices: crate::device::service::DeviceSettings::default(),
            encryption: crate::crypto::EncryptionPolicies::defaults(false),
            reencryption: crate::crypto::reencrypt::ReencryptionSettings::default(),
            monitoring: crate::monitoring::MonitoringSettings::default(),
            compliance: crate::compliance::ComplianceSettings::default(),
            oauth: crate::oauth::OAuthSettings::default(),
        }
    }
}

/// Builds a [`Palisade`] from its ports.
#[derive(Default)]
pub struct PalisadeBuilder {
    durable: Option<Arc<dyn DurableStore>>,
    hot: Option<Arc<dyn HotStore>>,
    provider: Option<Arc<dyn KeyProvider>>,
    master_key: Option<MasterKey>,
    clock: Option<Arc<dyn Clock>>,
    settings: Option<PalisadeSettings>,
    sms: Option<Arc<dyn SmsSender>>,
    email: Option<Arc<dyn EmailSender>>,
    geoip: Option<Arc<dyn crate::risk::GeoIp>>,
    webhook: Option<Arc<dyn crate::notify::WebhookSender>>,
    alert_webhook: Option<Arc<dyn crate::notify::WebhookSender>>,
    push_gateway: Option<Arc<dyn crate::notify::WebhookSender>>,
    key_set_fetcher: Option<Arc<dyn crate::oauth::client_keys::KeySetFetcher>>,
    deployment: Option<crate::compliance::report::DeploymentFacts>,
}

impl PalisadeBuilder {
    /// The durable store (required).
    pub fn durable_store(mut self, store: Arc<dyn DurableStore>) -> Self {
        self.durable = Some(store);
        self
    }

    /// The hot store (required).
    pub fn hot_store(mut self, store: Arc<dyn HotStore>) -> Self {
        self.hot = Some(store);
        self
    }

    /// The master key, held in memory by a [`LocalKeyProvider`].
    pub fn master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(key);
        self
    }

    /// A key provider other than the in-memory one (an HSM).
    pub fn key_provider(mut self, provider: Arc<dyn KeyProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The SMS sender for one-time codes (default: none, and no SMS factor).
    pub fn sms_sender(mut self, sender: Arc<dyn SmsSender>) -> Self {
        self.sms = Some(sender);
        self
    }

    /// The e-mail sender for one-time codes (default: none, and no e-mail factor).
    pub fn email_sender(mut self, sender: Arc<dyn EmailSender>) -> Self {
        self.email = Some(sender);
        self
    }

    /// The GeoIP databases (default: none, and the geo factors are absent).
    pub fn geoip(mut self, geoip: Arc<dyn crate::risk::GeoIp>) -> Self {
        self.geoip = Some(geoip);
        self
    }

    /// Where security notices (a new device) are also posted (default: nowhere).
    pub fn webhook_sender(mut self, sender: Arc<dyn crate::notify::WebhookSender>) -> Self {
        self.webhook = Some(sender);
        self
    }

    /// Where alerts for administrators are posted (signed; default: nowhere).
    pub fn alert_webhook(mut self, sender: Arc<dyn crate::notify::WebhookSender>) -> Self {
        self.alert_webhook = Some(sender);
        self
    }

    /// The push gateway users' push alerts are posted to (signed; default: none, no push alerts).
    pub fn push_gateway(mut self, sender: Arc<dyn crate::notify::WebhookSender>) -> Self {
        self.push_gateway = Some(sender);
        self
    }

    /// Fetches the key sets OAuth clients publish at a `jwks_uri` (for `private_key_jwt`). Without
    /// one, such a client cannot authenticate; clients that register their `jwks` are unaffected.
    pub fn key_set_fetcher(mut self, fetcher: Arc<dyn crate::oauth::client_keys::KeySetFetcher>) -> Self {
        self.key_set_fetcher = Some(fetcher);
        self
    }

    /// What the compliance reports cannot see themselves: the issuer, proxies, the stores' links,
    /// where the master key lives, the masked configuration (default: nothing known, and the
    /// controls built on it are not applicable).
    pub fn deployment_facts(mut self, facts: crate::compliance::report::DeploymentFacts) -> Self {
        self.deployment = Some(facts);
        self
    }

    /// Tunables (default: [`PalisadeSettings::default`]).
    pub fn settings(mut self, settings: PalisadeSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Wires the services and opens the keyring: the data and audit keys are made on first use, and
    /// a master key that cannot unwrap the stored keys stops the build here.
    pub async fn build(self) -> Result<Palisade, BuildError> {
        let durable = self.durable.ok_or(BuildError::Missing("durable_store"))?;
        let hot = self.hot.ok_or(BuildError::Missing("hot_store"))?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let provider: Arc<dyn KeyProvider> = match (self.provider, self.master_key) {
            (Some(provider), _) => provider,
            (None, Some(master)) => Arc::new(LocalKeyProvider::new(&master)?),
            (None, None) => return Err(BuildError::Missing("master_key")),
        };
        let key_store: Arc<dyn crate::store::KeyStore> = durable.clone();
        let keyring = Arc::new(Keyring::new(provider, key_store, clock.clone()));
        keyring.active(crate::crypto::KeyPurpose::Data).await?;
        keyring.active(crate::crypto::KeyPurpose::Audit).await?;
        let audit_store: Arc<dyn crate::store::AuditStore> = durable.clone();
        let audit = Arc::new(AuditLog::new(audit_store, keyring.clone(), clock.clone()));
        let settings = self.settings.unwrap_or_default();
        settings.password_policy.validate()?;
        settings.mfa.validate().map_err(BuildError::Mfa)?;
        settings.risk.validate().map_err(BuildError::Risk)?;
        settings.reencryption.validate().map_err(BuildError::Reencryption)?;
        let report_settings = crate::compliance::report::ReportSettings::of(&settings);

        let key_store: Arc<dyn crate::store::SigningKeyStore> = durable.clone();
        let signing_keys = Arc::new(
            SigningKeys::load_or_create(
                key_store,
                keyring.clone(),
                clock.clone(),
                settings.jwt_algorithm,
                settings.jwt_secret,
                // Access and ID tokens live access_ttl; verifiers allow the default leeway.
                settings.access_ttl + crate::token::access::DEFAULT_LEEWAY,
            )
            .await?,
        );
        let login_limits = settings.auth.limits;
        let issuer = settings.issuer.clone();
        let oauth_issuer = settings.issuer.clone();
        let mut token_settings = AccessTokenSettings::new(settings.issuer, settings.audience);
        token_settings.ttl = settings.access_ttl;
        let tokens = Arc::new(AccessTokens::new(signing_keys.clone(), clock.clone(), token_settings));
        let hasher = PasswordHasher::new(settings.argon2)?;
        let concurrency = settings.hash_concurrency.unwrap_or_else(PasswordService::default_concurrency);
        // Making the dummy hash takes one derivation: keep it off the async workers.
        let passwords = Arc::new(
            tokio::task::spawn_blocking(move || PasswordService::new(hasher, concurrency))
                .await
                .map_err(|_| PasswordHashError::Unavailable)??,
        );
        let sessions = Arc::new(SessionService::new(hot.clone(), clock.clone(), settings.sessions));
        let api_keys = Arc::new(ApiKeyService::new(
            durable.clone(),
            hot.clone(),
            keyring.clone(),
            audit.clone(),
            clock.clone(),
            settings.api_keys,
        ));
        let mfa = Arc::new(MfaService::new(MfaParts {
            store: durable.clone(),
            hot: hot.clone(),
            keyring: keyring.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            settings: settings.mfa,
            limits: settings.auth.limits,
            sms: self.sms.clone(),
            email: self.email.clone(),
            cache_ttl: sessions.policy().cache_ttl,
        }));
        let geo: Arc<dyn crate::risk::GeoIp> = self.geoip.unwrap_or_else(|| Arc::new(crate::risk::NoGeoIp));
        let devices = Arc::new(crate::device::DeviceService::new(crate::device::service::DeviceParts {
            store: durable.clone(),
            geo: geo.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            settings: settings.devices,
            key: keyring.stable_subkey(b"palisade/device-fingerprint/v1").await?,
            email: self.email.clone(),
            webhook: self.webhook,
            issuer,
        }));
        let risk = Arc::new(crate::risk::RiskService::new(
            durable.clone(),
            hot.clone(),
            geo.clone(),
            clock.clone(),
            settings.risk,
        ));
        let auth = Arc::new(AuthService::new(crate::auth::AuthParts {
            store: durable.clone(),
            hot: hot.clone(),
            passwords,
            policy: settings.password_policy,
            sessions,
            tokens: tokens.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            settings: settings.auth,
            mfa: mfa.clone(),
            devices,
            risk,
        }));
        let crypto = Arc::new(crate::crypto::CryptoService::new(
            keyring.clone(),
            audit.clone(),
            settings.encryption,
            keyring.provider_is_hardware(),
        ));
        let reencryptor = crate::crypto::reencrypt::Reencryptor::new(
            durable.clone(),
            hot.clone(),
            keyring.clone(),
            clock.clone(),
            settings.reencryption,
        );
        let audit_store: Arc<dyn crate::store::AuditStore> = durable.clone();
        let incident_store: Arc<dyn crate::store::IncidentStore> = durable.clone();
        crate::monitoring::watch::zero_counters();
        let blocks = Arc::new(crate::monitoring::respond::IpBlocks::new(durable.clone(), clock.clone()));
        if let Err(e) = blocks.refresh().await {
            tracing::warn!(error = %e, "could not read the blocked addresses; retrying every second");
        }
        let responder =
            Arc::new(crate::monitoring::respond::Responder::new(crate::monitoring::respond::ResponderParts {
                rules: settings.monitoring.responses.clone(),
                store: durable.clone(),
                auth: auth.clone(),
                api_keys: api_keys.clone(),
                blocks: blocks.clone(),
                audit: audit.clone(),
                clock: clock.clone(),
            }));
        tokio::spawn(crate::monitoring::respond::keep_current(responder.clone()));
        let alerter = Arc::new(crate::monitoring::alert::Alerter::new(crate::monitoring::alert::AlerterParts {
            store: durable.clone(),
            hot: hot.clone(),
            mfa: mfa.clone(),
            email: self.email.clone(),
            sms: self.sms,
            settings: crate::monitoring::alert::AlertSettings {
                admin_webhook: self.alert_webhook,
                admin_emails: settings.monitoring.alert_emails.clone(),
                push: self.push_gateway,
                admin_threshold: settings.monitoring.alert_threshold,
                per_recipient_per_hour: settings.monitoring.alerts_per_hour,
            },
            clock: clock.clone(),
        }));
        tokio::spawn(crate::monitoring::alert::deliver_forever(alerter.clone()));
        let mut monitoring = crate::monitoring::Monitoring::new(
            audit.clone(),
            audit_store,
            incident_store.clone(),
            clock.clone(),
            responder.clone(),
            alerter.clone(),
        );
        // Every record stored from now on goes past the detectors, on a task of their own.
        if settings.monitoring.detectors {
            let responds = !settings.monitoring.responses.is_empty();
            let (detection, feed, queue) = crate::monitoring::watch::Detection::new(
                hot.clone(),
                incident_store,
                audit.clone(),
                clock.clone(),
                settings.monitoring.thresholds,
                responds.then_some(responder),
                alerter,
            );
            audit.observe_with(feed.clone());
            monitoring = monitoring.with_backpressure(feed);
            tokio::spawn(detection.run(queue));
        } else {
            audit.observe_with(crate::monitoring::watch::Feed::counting_only());
        }
        let monitoring = Arc::new(monitoring);
        let reports =
            Arc::new(crate::compliance::report::ComplianceReports::new(crate::compliance::report::ReportParts {
                store: durable.clone(),
                audit: audit.clone(),
                keyring: keyring.clone(),
                signing_keys: signing_keys.clone(),
                clock: clock.clone(),
                settings: report_settings,
                facts: self.deployment.unwrap_or_default(),
            }));
        let compliance = Arc::new(crate::compliance::ComplianceService::new(crate::compliance::ComplianceParts {
            store: durable.clone(),
            audit: audit.clone(),
            auth: auth.clone(),
            crypto: crypto.clone(),
            clock: clock.clone(),
            settings: settings.compliance.clone(),
            data_hash_key: keyring.stable_subkey(b"palisade/compliance-data-hash/v1").await?,
        }));
        tokio::spawn(crate::compliance::erasure::erase_forever(compliance.clone()));
        tokio::spawn(crate::compliance::retention::retain_forever(compliance.clone()));
        let oauth_clients = Arc::new(crate::oauth::OAuthClients::new(
            durable.clone(),
            hot.clone(),
            keyring.clone(),
            audit.clone(),
            clock.clone(),
            self.key_set_fetcher,
        ));
        let token_endpoint =
            Arc::new(crate::oauth::token::TokenEndpoint::new(crate::oauth::token::TokenEndpointParts {
                clients: oauth_clients.clone(),
                tokens,
                auth: auth.clone(),
                audit: audit.clone(),
                clock: clock.clone(),
                issuer: oauth_issuer.clone(),
                limits: login_limits,
            }));
        let authorizer = Arc::new(crate::oauth::Authorizer::new(crate::oauth::AuthorizerParts {
            clients: oauth_clients.clone(),
            hot: hot.clone(),
            auth: auth.clone(),
            mfa: mfa.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            issuer: oauth_issuer,
            keys: signing_keys.clone(),
            settings: settings.oauth,
            limits: login_limits,
        }));
        Ok(Palisade {
            durable,
            hot,
            keyring,
            audit,
            clock,
            signing_keys,
            auth,
            api_keys,
            mfa,
            geo,
            crypto,
            reencryptor,
            monitoring,
            reports,
            compliance,
            oauth_clients,
            token_endpoint,
            authorizer,
        })
    }
}

/// The health of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentHealth {
    /// Working.
    Healthy,
    /// Working, but slower or with less than it should.
    Degraded,
    /// Not working.
    Unhealthy,
}

/// The health of every component, as `/ready` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `(component, health)` in a fixed order: database, cache, encryption, audit, signing_keys.
    pub components: Vec<(&'static str, ComponentHealth)>,
}

impl Readiness {
    /// The worst of the components.
    pub fn overall(&self) -> ComponentHealth {
        let worst = |h: &ComponentHealth| match h {
            ComponentHealth::Healthy => 0,
            ComponentHealth::Degraded => 1,
            ComponentHealth::Unhealthy => 2,
        };
        self.components.iter().map(|(_, h)| *h).max_by_key(worst).unwrap_or(ComponentHealth::Healthy)
    }
}

/// One line of the security diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen (never a secret).
    pub detail: String,
    /// How long it took, in milliseconds.
    pub millis: u128,
}

/// Palisade's services, wired over their ports.
pub struct Palisade {
    durable: Arc<dyn DurableStore>,
    hot: Arc<dyn HotStore>,
    keyring: Arc<Keyring>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    signing_keys: Arc<SigningKeys>,
    auth: Arc<AuthService>,
    api_keys: Arc<ApiKeyService>,
    mfa: Arc<MfaService>,
    geo: Arc<dyn crate::risk::GeoIp>,
    crypto: Arc<crate::crypto::CryptoService>,
    reencryptor: crate::crypto::reencrypt::Reencryptor,
    monitoring: Arc<crate::monitoring::Monitoring>,
    reports: Arc<crate::compliance::report::ComplianceReports>,
    compliance: Arc<crate::compliance::ComplianceService>,
    oauth_clients: Arc<crate::oauth::OAuthClients>,
    token_endpoint: Arc<crate::oauth::token::TokenEndpoint>,
    authorizer: Arc<crate::oauth::Authorizer>,
}

impl Palisade {
    /// Starts building.
    pub fn builder() -> PalisadeBuilder {
        PalisadeBuilder::default()
    }

    /// The keyring (field encryption, key rotation).
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// The audit chain.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// Accounts, login, tokens and sessions.
    pub fn auth(&self) -> &Arc<AuthService> {
        &self.auth
    }

    /// API keys.
    pub fn api_keys(&self) -> &Arc<ApiKeyService> {
        &self.api_keys
    }

    /// Second factors (enrolment, backup codes, sending codes).
    pub fn mfa(&self) -> &Arc<MfaService> {
        &self.mfa
    }

    /// The encryption service (`/crypto/*`).
    pub fn crypto(&self) -> &Arc<crate::crypto::CryptoService> {
        &self.crypto
    }

    /// How often the schedule rotates Palisade's own data key: the RESTRICTED class's rotation
    /// period, since everything sealed under it (second factors, signing keys) is RESTRICTED.
    pub fn data_key_rotation_period(&self) -> time::Duration {
        let days = self.crypto.policies().of(crate::crypto::DataClassification::Restricted).rotation_days;
        time::Duration::days(i64::from(days))
    }

    /// Security monitoring: applications' reports and the event query.
    pub fn monitoring(&self) -> &Arc<crate::monitoring::Monitoring> {
        &self.monitoring
    }

    /// The OAuth token endpoint (`/oauth2/token`).
    pub fn token_endpoint(&self) -> &Arc<crate::oauth::token::TokenEndpoint> {
        &self.token_endpoint
    }

    /// The OAuth authorization endpoint, consent and logout (`/oauth2/authorize`, `/oauth2/logout`).
    pub fn authorizer(&self) -> &Arc<crate::oauth::Authorizer> {
        &self.authorizer
    }

    /// The registry of OAuth clients.
    pub fn oauth_clients(&self) -> &Arc<crate::oauth::OAuthClients> {
        &self.oauth_clients
    }

    /// The consent ledger, the data subject's rights and the erasure job.
    pub fn compliance(&self) -> &Arc<crate::compliance::ComplianceService> {
        &self.compliance
    }

    /// Reports of technical control checks per standard (`GET /compliance/reports/{standard}`).
    pub fn compliance_reports(&self) -> &Arc<crate::compliance::report::ComplianceReports> {
        &self.reports
    }

    /// The background re-encryption of Palisade's own sealed data.
    pub fn reencryptor(&self) -> &crate::crypto::reencrypt::Reencryptor {
        &self.reencryptor
    }

    /// Scores a login before the application lets anyone in (the original guide's
    /// `analyze_authentication_risk`): the user's past logins, the device (`device` as the client
    /// described it, and the request's headers), the address and what GeoIP says of it, and the
    /// recent failures. Nothing is recorded; the decision is the application's to apply.
    pub async fn assess_login_risk(
        &self,
        user: crate::user::UserId,
        device: Option<&crate::session::DeviceInfo>,
        meta: &crate::audit::RequestMeta,
    ) -> Result<crate::risk::RiskAssessment, crate::auth::AuthError> {
        let devices = self.auth.devices();
        let signature = devices.signature(meta);
        let fingerprint = devices.fingerprint(user, device, &signature);
        let geo = devices.locate(meta.ip.as_deref());
        let (known, familiarity) = devices.familiarity(user, &fingerprint).await?;
        let failures = match self.durable.user_by_id(user).await? {
            Some(u) => self.hot.count(&crate::auth::lockout::account_attempts_key(u.username.as_str())).await?,
            None => return Err(crate::auth::AuthError::NotFound),
        };
        let attempt = crate::risk::LoginAttempt {
            user,
            ip: meta.ip.as_deref(),
            geo: &geo,
            device: familiarity,
            device_id: known.map(|d| d.id),
            account_failures: failures,
        };
        self.auth.risk().assess(&attempt).await
    }

    /// The JWT signing keys (and the JWKS).
    pub fn signing_keys(&self) -> &Arc<SigningKeys> {
        &self.signing_keys
    }

    /// The hot store.
    pub fn hot_store(&self) -> &Arc<dyn HotStore> {
        &self.hot
    }

    /// The durable store.
    pub fn durable_store(&self) -> &Arc<dyn DurableStore> {
        &self.durable
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Checks each component cheaply (one round trip each, no full chain walk), for `/ready`.
    pub async fn readiness(&self) -> Readiness {
        let health = |ok: bool| if ok { ComponentHealth::Healthy } else { ComponentHealth::Unhealthy };
        let (database, cache, encryption, audit, hsm) = tokio::join!(
            self.durable.ping(),
            self.hot.ping(),
            self.encryption_round_trip(),
            self.durable.audit_head(),
            async {
                match self.keyring.provider_is_hardware() {
                    true => Some(self.keyring.provider_health().await),
                    false => None,
                }
            },
        );
        Readiness {
            components: vec![
                ("database", health(database.is_ok())),
                ("cache", health(cache.is_ok())),
                ("encryption", health(encryption.is_ok())),
                ("audit", health(audit.is_ok())),
                ("signing_keys", health(self.signing_keys.self_test().is_ok())),
            ]
            .into_iter()
            // The HSM wraps and unwraps data keys only: with it gone, keys already unwrapped keep
            // working and only new or uncached keys fail (503), so it degrades rather than fails.
            .chain(hsm.map(|result| match result {
                Ok(()) => ("hsm", ComponentHealth::Healthy),
                Err(_) => ("hsm", ComponentHealth::Degraded),
            }))
            .chain(match self.geo.status() {
                crate::risk::GeoStatus::Off => None,
                crate::risk::GeoStatus::Healthy => Some(("geoip", ComponentHealth::Healthy)),
                crate::risk::GeoStatus::Degraded(_) => Some(("geoip", ComponentHealth::Degraded)),
            })
            .collect(),
        }
    }

    /// The original guide's security diagnostics: each store with a real round trip, the encryption
    /// round trip, and a full verification of the audit chain. The run itself is audited.
    pub async fn diagnose(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        let started = Instant::now();
        let durable = self.durable.ping().await;
        checks.push(check(
            "durable store",
            started,
            durable.map(|()| format!("{} reachable", self.durable.backend())).map_err(|e| e.to_string()),
        ));

        let started = Instant::now();
        let hot = self.hot_round_trip().await;
        checks.push(check(
            "hot store",
            started,
            hot.map(|()| format!("{}: put, get and delete round trip", self.hot.backend())),
        ));

        let started = Instant::now();
        let encryption = self.encryption_round_trip().await;
        checks.push(check(
            "encryption",
            started,
            encryption.map(|()| "AES-256-GCM round trip, context bound".to_owned()),
        ));

        let started = Instant::now();
        match self.geo.status() {
            crate::risk::GeoStatus::Off => {}
            crate::risk::GeoStatus::Healthy => {
                let caps = self.geo.capabilities();
                let mut has = Vec::new();
                for (on, what) in [
                    (caps.country, "country"),
                    (caps.location, "location"),
                    (caps.asn, "network"),
                    (caps.anonymizer, "anonymizer flags"),
                ] {
                    if on {
                        has.push(what);
                    }
                }
                checks.push(check("geoip", started, Ok::<_, String>(format!("loaded: {}", has.join(", ")))));
            }
            crate::risk::GeoStatus::Degraded(problem) => {
                checks.push(check("geoip", started, Err::<String, _>(problem)))
            }
        }

        let started = Instant::now();
        let signing = self.signing_keys.self_test().map_err(|e| e.to_string()).map(|()| {
            let key = self.signing_keys.signing_key();
            format!("{} key {} signs and verifies", key.algorithm, key.kid)
        });
        checks.push(check("signing keys", started, signing));

        let started = Instant::now();
        let chain = match self.audit.verify().await {
            Ok(report) => match report.broken {
                None => Ok(format!("{} records verified", report.verified)),
                Some(link) => Err(format!("broken at record {}: {}", link.seq, link.reason)),
            },
            Err(e) => Err(e.to_string()),
        };
        checks.push(check("audit chain", started, chain));

        let failed = checks.iter().filter(|c| !c.ok).count();
        let event =
            AuditEvent::new(AuditKind::DiagnosticsRun, if failed == 0 { Outcome::Success } else { Outcome::Failure })
                .detail("failed_checks", failed);
        if let Err(e) = self.audit.append(event).await {
            tracing::warn!(error = %e, "could not audit the diagnostics run");
        }
        checks
    }

    async fn hot_round_trip(&self) -> Result<(), String> {
        let key = HotKey::new(&format!("diagnose:{}", uuid::Uuid::new_v4()), "");
        let value = uuid::Uuid::new_v4();
        let ttl = time::Duration::seconds(30);
        self.hot.put(&key, value.as_bytes(), ttl).await.map_err(|e| e.to_string())?;
        let read = self.hot.get(&key).await.map_err(|e| e.to_string())?;
        self.hot.delete(&key).await.map_err(|e| e.to_string())?;
        if read.as_deref() == Some(value.as_bytes().as_slice()) {
            Ok(())
        } else {
            Err("read back a different value".into())
        }
    }

    async fn encryption_round_trip(&self) -> Result<(), String> {
        let context = EncryptionContext::new(DataClassification::Internal, "diagnostics");
        let sample = b"Test encryption";
        let envelope = self.keyring.encrypt(sample, &context).await.map_err(|e| e.to_string())?;
        let plain = self.keyring.decrypt(&envelope, &context).await.map_err(|e| e.to_string())?;
        if plain.as_slice() == sample { Ok(()) } else { Err("decryption mismatch".into()) }
    }
}

fn check(name: &'static str, started: Instant, result: Result<String, String>) -> Check {
    let millis = started.elapsed().as_millis();
    match result {
        Ok(detail) => Check { name, ok: true, detail, millis },
        Err(detail) => Check { name, ok: false, detail, millis },
    }
}
