//! Building the application from its configuration, serving it, and stopping it cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use palisade_core::api_key::ApiKeySettings;
use palisade_core::audit::{AuditEvent, AuditKind, Outcome};
use palisade_core::auth::{AuthSettings, LoginLimits};
use palisade_core::clock::{Clock, SystemClock};
use palisade_core::crypto::MasterKey;
use palisade_core::mfa::MfaSettings;
use palisade_core::password::{Argon2Params, PasswordPolicy};
use palisade_core::session::SessionPolicy;
use palisade_core::token::keys::{REFRESH_INTERVAL, SigningAlgorithm};
use palisade_core::{Palisade, PalisadeSettings};
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;

use crate::config::Config;
use crate::error::{problem_for_status, problem_response};
use crate::{middleware, openapi, routes};

mod files_at_rest;

/// Largest request body accepted (1 MiB); larger ones get 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The services.
    pub palisade: Arc<Palisade>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

/// Options of the router that come from configuration.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
}

/// The whole HTTP surface over `state`, with its layers. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so client addresses are known.
pub fn router(state: AppState, options: &RouterOptions) -> Router {
    let trusted = Arc::new(options.trusted_proxies.clone());
    let blocks = state.palisade.monitoring().blocks().clone();
    Router::new()
        .route("/health", get(routes::ops::health))
        .route("/ready", get(routes::ops::ready))
        .route("/metrics", get(routes::ops::metrics))
        .route("/.well-known/jwks.json", get(routes::keys::jwks))
        .route("/auth/register", post(routes::auth::register))
        .route("/auth/login", post(routes::auth::login))
        .route("/auth/login/approval", post(routes::auth::poll_approval))
        .route("/auth/refresh", post(routes::auth::refresh))
        .route("/auth/logout", post(routes::auth::logout))
        .route("/auth/profile", get(routes::auth::profile))
        .route("/auth/password", post(routes::auth::change_password))
        .route("/auth/sessions", get(routes::auth::sessions))
        .route("/auth/sessions/{id}", delete(routes::auth::end_session))
        .route("/crypto/encrypt", post(routes::crypto::encrypt))
        .route("/crypto/decrypt", post(routes::crypto::decrypt))
        .route("/crypto/fields", post(routes::crypto::fields))
        .route("/crypto/rewrap", post(routes::crypto::rewrap))
        .route("/crypto/datakey", post(routes::crypto::datakey))
        .route("/auth/devices", get(routes::devices::list))
        .route("/auth/devices/{id}", patch(routes::devices::update).delete(routes::devices::remove))
        .route("/auth/devices/{id}/approve", post(routes::devices::approve))
        .route("/auth/devices/approve-link", post(routes::devices::approve_link))
        .route("/devices/approve", get(routes::pages::approve))
        .route("/devices/approve.js", get(routes::pages::approve_js))
        .route("/auth/mfa", get(routes::mfa::status))
        .route("/auth/mfa/verify", post(routes::mfa::verify))
        .route("/auth/mfa/totp/setup", post(routes::mfa::totp_setup))
        .route("/auth/mfa/totp/confirm", post(routes::mfa::totp_confirm))
        .route("/auth/mfa/sms/setup", post(routes::mfa::sms_setup))
        .route("/auth/mfa/sms/confirm", post(routes::mfa::sms_confirm))
        .route("/auth/mfa/sms/send", post(routes::mfa::sms_send))
        .route("/auth/mfa/email/setup", post(routes::mfa::email_setup))
        .route("/auth/mfa/email/confirm", post(routes::mfa::email_confirm))
        .route("/auth/mfa/email/send", post(routes::mfa::email_send))
        .route("/auth/mfa/backup-codes", post(routes::mfa::backup_codes))
        .route("/auth/mfa/{method}", delete(routes::mfa::remove))
        .route("/auth/webauthn/register/start", post(routes::webauthn::register_start))
        .route("/auth/webauthn/register/finish", post(routes::webauthn::register_finish))
        .route("/auth/webauthn/login/start", post(routes::webauthn::login_start))
        .route("/auth/webauthn/login/finish", post(routes::webauthn::login_finish))
        .route("/auth/webauthn/credentials", get(routes::webauthn::credentials))
        .route("/signin.js", get(routes::pages::signin_js))
        .route("/passkeys", get(routes::pages::passkeys))
        .route("/passkeys.js", get(routes::pages::passkeys_js))
        .route("/passkeys.css", get(routes::pages::passkeys_css))
        .route("/dashboard", get(routes::pages::dashboard))
        .route("/dashboard.js", get(routes::pages::dashboard_js))
        .route("/dashboard.css", get(routes::pages::dashboard_css))
        .route(
            "/auth/webauthn/credentials/{id}",
            axum::routing::patch(routes::webauthn::rename).delete(routes::webauthn::delete),
        )
        .route("/auth/api-keys", post(routes::api_keys::create).get(routes::api_keys::list))
        .route("/auth/api-keys/{id}", delete(routes::api_keys::revoke))
        .route("/api-keys/validate", post(routes::api_keys::validate))
        .route("/tokens/validate", post(routes::tokens::validate))
        .route("/admin/users", get(routes::admin::users))
        .route("/admin/users/{id}/lock", post(routes::admin::lock))
        .route("/admin/users/{id}/unlock", post(routes::admin::unlock))
        .route("/admin/users/{id}/mfa/reset", post(routes::mfa::admin_reset))
        .route("/admin/users/{id}/risk", get(routes::devices::user_risk))
        .route("/admin/api-keys", get(routes::admin::api_keys))
        .route("/admin/api-keys/{id}", delete(routes::admin::revoke_api_key))
        .route("/admin/tokens/revoke", post(routes::admin::revoke_token))
        .route("/admin/keys", get(routes::keys::list))
        .route("/admin/keys/rotate", post(routes::keys::rotate))
        .route("/admin/keys/rotation", get(routes::keys::rotation))
        .route("/monitoring/events", get(routes::monitoring::events).post(routes::monitoring::report))
        .route("/monitoring/event-types", get(routes::monitoring::event_types))
        .route("/monitoring/dashboard", get(routes::monitoring::dashboard))
        .route("/monitoring/alerts/config", get(routes::alerts::config).put(routes::alerts::set_config))
        .route("/monitoring/alerts/test", post(routes::alerts::test))
        .route("/monitoring/alerts/deliveries", get(routes::alerts::deliveries))
        .route("/monitoring/alerts/deliveries/{id}/retry", post(routes::alerts::retry))
        .route("/monitoring/incidents", get(routes::monitoring::incidents))
        .route(
            "/monitoring/incidents/{id}",
            get(routes::monitoring::incident).patch(routes::monitoring::update_incident),
        )
        .route("/monitoring/incidents/{id}/actions/{action}/revert", post(routes::monitoring::revert_action))
        .route("/admin/keys/{family}", patch(routes::keys::update_family))
        .route("/admin/clients", get(routes::clients::list).post(routes::clients::create))
        .route("/oauth2/token", post(routes::oauth::token))
        .route("/oauth2/introspect", post(routes::oauth::introspect))
        .route("/oauth2/revoke", post(routes::oauth::revoke))
        .route("/oauth2/userinfo", get(routes::oauth::userinfo).post(routes::oauth::userinfo_post))
        .route("/.well-known/openid-configuration", get(routes::oauth::discovery))
        .route("/oauth2/authorize", get(routes::authorize::authorize).post(routes::authorize::authorize_post))
        .route("/oauth2/authorize/login", post(routes::authorize::login))
        .route("/oauth2/authorize/mfa", post(routes::authorize::second_factor))
        .route("/oauth2/authorize/approval", post(routes::authorize::approval))
        .route("/oauth2/authorize/consent", post(routes::authorize::consent))
        .route("/oauth2/logout", get(routes::authorize::logout).post(routes::authorize::logout_post))
        .route("/oauth2/pages.css", get(routes::authorize::pages_css))
        .route("/oauth2/form_post.js", get(routes::authorize::form_post_js))
        .route("/auth/authorizations", get(routes::authorizations::list))
        .route("/auth/authorizations/{client_id}", delete(routes::authorizations::revoke))
        .route("/admin/clients/{id}", get(routes::clients::get).delete(routes::clients::delete))
        .route("/compliance/consents", get(routes::compliance::consents).post(routes::compliance::record_consent))
        .route("/compliance/consents/{type}", delete(routes::compliance::withdraw_consent))
        .route("/compliance/export", get(routes::compliance::export))
        .route("/compliance/check", post(routes::compliance::check))
        .route(
            "/compliance/retention",
            get(routes::compliance::retention_preview).post(routes::compliance::retention_apply),
        )
        .route("/compliance/reports/{standard}", get(routes::reports::report))
        .route("/compliance/report.css", get(routes::reports::stylesheet))
        .route(
            "/compliance/erasure",
            get(routes::compliance::erasure_requests).post(routes::compliance::request_erasure),
        )
        .route(
            "/compliance/erasure/{id}",
            get(routes::compliance::erasure_request).delete(routes::compliance::cancel_erasure),
        )
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi::ApiDoc::openapi()))
        .fallback(not_found)
        .with_state(state)
        // Layers run bottom-up for requests: the last added sees the request first.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, options.request_timeout))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("a handler panicked");
            let (code, detail) = problem_for_status(StatusCode::INTERNAL_SERVER_ERROR);
            problem_response(StatusCode::INTERNAL_SERVER_ERROR, &code, detail)
        }))
        .layer(from_fn_with_state(blocks, middleware::refuse_blocked))
        .layer(from_fn_with_state(trusted, middleware::client_ip))
        // Outside the timeout, the panic catcher and the address blocks, so their answers (503, 500,
        // 403) are counted too.
        .layer(from_fn(middleware::metrics))
        .layer(from_fn(middleware::problems))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(from_fn(sanitize_request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ]))
}

/// A caller may send its own `X-Request-Id` to correlate logs, but only a short, plain one: anything
/// else is dropped and replaced, so it cannot inject text into logs and audit records.
async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let acceptable = req.headers().get(&REQUEST_ID).is_some_and(|v| {
        let bytes = v.as_bytes();
        !bytes.is_empty() && bytes.len() <= 64 && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
    });
    if !acceptable {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::NotFound
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will show only what reaches ours");
            }
            handle
        })
        .clone()
}

/// Opens the stores and the keyring as configured: migrates SQLite by itself, refuses a PostgreSQL
/// schema that is not up to date, and loads or creates the master key.
pub async fn bootstrap(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Palisade>> {
    // Risky but valid choices (the development master key above all) are said loudly at every start.
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    // A data directory open to others is said once, before anything in it is opened; the files in
    // it are guarded where they are opened (the key file refused, the database tightened).
    if let Some(warning) = files_at_rest::data_dir_warning(&config.data_dir) {
        tracing::warn!("{warning}");
    }
    // The master key: inside the HSM when one is configured (opened before the stores, so a wrong
    // PIN or a missing key stops start-up with its own message), else from the settings or the
    // development key file.
    let hsm = match crate::hsm::HsmSettings::from_config(config) {
        Some(settings) => {
            if let Some(provider) = &config.hsm_provider {
                tracing::info!(%provider, "HSM provider (information only)");
            }
            let provider = crate::hsm::Pkcs11KeyProvider::open(settings).await.context("opening the HSM")?;
            Some(Arc::new(provider))
        }
        None => None,
    };
    let master_key = match (&hsm, &config.master_key) {
        (Some(_), _) => None,
        (None, Some(key)) => Some(MasterKey::from_base64(key.expose_secret()).context("PALISADE_MASTER_KEY")?),
        (None, None) => {
            let path = config.data_dir.join("master.key");
            let (key, created) = MasterKey::load_or_create_dev_file(&path)?;
            tracing::info!(path = %path.display(), created, "development master key file");
            Some(key)
        }
    };
    let database_url = config.database_url.expose_secret();
    let redis_url = config.redis_url.as_ref().map(|u| u.expose_secret().to_owned());
    let stores =
        palisade_store::connect(database_url, redis_url.as_deref(), clock.clone(), config.database_max_connections)
            .await
            .context("opening the stores")?;
    if database_url.starts_with("sqlite:") {
        stores.migrate().await.context("migrating the SQLite database")?;
    } else {
        stores.check_schema().await.context("checking the database schema")?;
    }
    let senders = crate::notify::senders(config).context("setting up the message senders")?;
    // The alert channels: every request signed with the alert key (the configuration refuses an
    // alert URL without it), timestamped by the services' clock.
    let signed = |setting: &'static str, url: Option<&secrecy::SecretString>| {
        let Some(url) = url else { return anyhow::Ok(None) };
        let secret = config
            .monitoring_alert_webhook_secret
            .as_ref()
            .with_context(|| format!("{setting} is set without monitoring_alert_webhook_secret"))?;
        let sender = crate::notify::HttpWebhookSender::signed(setting, url, secret, clock.clone())
            .with_context(|| format!("setting up the {setting} sender"))?;
        anyhow::Ok(Some(Arc::new(sender)))
    };
    let alert_webhook = signed("monitoring_alert_webhook_url", config.monitoring_alert_webhook_url.as_ref())?;
    let push_gateway = signed("monitoring_push_url", config.monitoring_push_url.as_ref())?;
    let mut builder = Palisade::builder()
        .durable_store(stores.durable)
        .hot_store(stores.hot)
        .clock(clock)
        .settings(settings(config)?)
        .deployment_facts(routes::reports::deployment_facts(config))
        .key_set_fetcher(Arc::new(
            crate::client_keys::HttpKeySetFetcher::new(config.oauth2_allow_private_jwks_uri)
                .context("setting up the HTTP client that fetches OAuth clients' jwks_uri")?,
        ));
    match (hsm, master_key) {
        (Some(provider), _) => {
            let provider: Arc<dyn palisade_core::crypto::KeyProvider> = provider;
            builder = builder.key_provider(provider);
        }
        (None, Some(key)) => builder = builder.master_key(key),
        // Not reached: without an HSM a master key was read or made above.
        (None, None) => anyhow::bail!("no master key and no HSM"),
    }
    match senders.sms {
        Some(sms) => {
            tracing::info!(provider = sms.provider(), "SMS codes are sent");
            builder = builder.sms_sender(sms);
        }
        None => tracing::info!("no SMS provider configured (sms_provider): there is no SMS factor"),
    }
    match senders.email {
        Some(email) => {
            let server = config.smtp_server.as_deref().unwrap_or_default();
            tracing::info!(%server, port = config.smtp_port, tls = %config.smtp_tls, "e-mail codes are sent");
            builder = builder.email_sender(email);
        }
        None => tracing::info!("no SMTP server configured (smtp_server): there is no e-mail factor"),
    }
    if let Some(webhook) = senders.webhook {
        // The URL is a secret (its path is often the credential): the host is all that is logged.
        let host = config
            .notify_webhook_url
            .as_ref()
            .and_then(|url| url::Url::parse(url.expose_secret()).ok())
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        tracing::info!(%host, "security notices are also posted to a webhook");
        builder = builder.webhook_sender(webhook);
    }
    if let Some(webhook) = alert_webhook {
        // The origin only: the URL's path or query may be its credential.
        tracing::info!(origin = webhook.origin(), "administrators' alerts are posted, signed, to a webhook");
        builder = builder.alert_webhook(webhook);
    }
    if let Some(push) = push_gateway {
        tracing::info!(origin = push.origin(), "users' push alerts are posted, signed, to a push gateway");
        builder = builder.push_gateway(push);
    }
    let geoip_paths = crate::geoip::GeoIpPaths::from_config(config);
    if geoip_paths.any() {
        // Reading a City database is tens of megabytes of file I/O: off the async workers.
        let geoip = tokio::task::spawn_blocking(move || crate::geoip::MaxMindGeoIp::open(geoip_paths))
            .await
            .context("loading the GeoIP databases")?;
        let geoip = Arc::new(geoip);
        for db in geoip.databases() {
            match &db.problem {
                None => tracing::info!(
                    setting = db.setting,
                    path = %db.path.display(),
                    database_type = db.database_type.as_deref().unwrap_or_default(),
                    build_epoch = db.build_epoch.unwrap_or_default(),
                    "GeoIP database loaded"
                ),
                // Not fatal: the factors it feeds are reported absent, and /ready shows geoip DEGRADED.
                Some(problem) => tracing::warn!("GeoIP database not loaded: {problem}"),
            }
        }
        // Detached: it lives as long as the runtime (the process, for `palisade serve`).
        crate::geoip::spawn_reload(geoip.clone(), crate::geoip::RELOAD_INTERVAL);
        builder = builder.geoip(geoip);
    } else if config.risk_enabled {
        tracing::info!(
            "no GeoIP database configured (geoip_db, geoip_asn_db, geoip_anonymous_db): the country, travel, \
             network and anonymizer risk factors are off"
        );
    }
    let palisade = builder.build().await.context("opening the keyring")?;
    Ok(Arc::new(palisade))
}

/// The services' tunables, from the configuration.
pub fn settings(config: &Config) -> anyhow::Result<PalisadeSettings> {
    use crate::config::{CharClass, JwtAlgorithm};
    use palisade_core::device::service::DeviceSettings;
    use palisade_core::risk::RiskSettings;
    let time = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
    let jwt_algorithm = match config.jwt_algorithm {
        JwtAlgorithm::EdDSA => SigningAlgorithm::EdDSA,
        JwtAlgorithm::ES256 => SigningAlgorithm::ES256,
        JwtAlgorithm::RS256 => SigningAlgorithm::RS256,
        JwtAlgorithm::HS256 => SigningAlgorithm::HS256,
    };
    let requires = |class: CharClass| config.password_require.contains(&class);
    let password_policy = PasswordPolicy {
        min_length: usize::try_from(config.password_min_length)?,
        require_uppercase: requires(CharClass::Upper),
        require_lowercase: requires(CharClass::Lower),
        require_digit: requires(CharClass::Digit),
        require_symbol: requires(CharClass::Symbol),
        min_zxcvbn_score: config.password_min_score,
        history: config.password_history,
        max_age: config.password_max_age.map(time),
        ..PasswordPolicy::default()
    };
    let risk = RiskSettings {
        enabled: config.risk_enabled,
        thresholds: config.risk_thresholds,
        weights: config.risk_weights,
        max_travel_kmh: f64::from(config.risk_max_travel_kmh),
        deny: config.risk_deny_cidrs.clone(),
        allow: config.risk_allow_cidrs.clone(),
        ..RiskSettings::default()
    };
    // The configuration checked each piece; this checks the whole as the engine will see it.
    risk.validate().map_err(|problem| anyhow::anyhow!("risk settings: {problem}"))?;
    Ok(PalisadeSettings {
        issuer: config.issuer.as_str().trim_end_matches('/').to_owned(),
        audience: config.audience.clone(),
        jwt_algorithm,
        jwt_secret: config
            .jwt_secret
            .as_ref()
            .map(|s| secrecy::SecretSlice::from(s.expose_secret().as_bytes().to_vec())),
        access_ttl: time(config.access_ttl),
        sessions: SessionPolicy {
            lifetime: time(config.session_lifetime),
            idle_timeout: time(config.session_idle_timeout),
            cache_ttl: time(config.session_cache),
            max_per_user: config.max_sessions_per_user,
            concurrent: config.concurrent_sessions,
        },
        auth: AuthSettings {
            limits: LoginLimits {
                max_attempts: config.max_login_attempts,
                window: time(config.lockout_duration),
                ip_max_failures: config.ip_max_login_failures,
            },
            refresh_ttl: time(config.refresh_ttl),
            refresh_grace: time(config.refresh_grace),
        },
        password_policy,
        argon2: Argon2Params {
            memory_kib: config.argon2_memory_kib,
            iterations: config.argon2_iterations,
            parallelism: config.argon2_parallelism,
        },
        hash_concurrency: config.hash_concurrency.and_then(std::num::NonZeroUsize::new),
        api_keys: ApiKeySettings { prefix: config.api_key_prefix.clone(), cache_ttl: time(config.session_cache) },
        mfa: MfaSettings {
            issuer: config.mfa_issuer.clone(),
            required: config.mfa_required,
            required_roles: config.mfa_required_roles.clone(),
            factors: config.mfa_factors,
            code_ttl: time(config.mfa_code_ttl),
            resend_interval: time(config.mfa_resend_interval),
            passkeys: config.webauthn().map(|(rp_id, origin)| palisade_core::mfa::PasskeySettings {
                rp_id,
                origin,
                rp_name: config.mfa_issuer.clone(),
            }),
            ..MfaSettings::default()
        },
        risk,
        devices: DeviceSettings {
            approval: config.device_approval,
            approval_ttl: time(config.device_approval_ttl),
            remember_ttl: time(config.remember_device_ttl),
            binding: config.session_binding,
        },
        // Built, and checked, when the configuration was loaded.
        encryption: config.encryption.clone(),
        reencryption: config.reencryption,
        // The monitoring_* settings.
        monitoring: palisade_core::monitoring::MonitoringSettings {
            detectors: config.monitoring_detectors,
            thresholds: palisade_core::monitoring::detect::Thresholds {
                brute_force_failures: config.monitoring_brute_force_failures,
                brute_force_window: time(config.monitoring_brute_force_window),
                spraying_accounts: config.monitoring_spraying_accounts,
                spraying_window: time(config.monitoring_spraying_window),
                stuffing_failures: config.monitoring_stuffing_failures,
                stuffing_addresses: config.monitoring_stuffing_addresses,
                stuffing_failure_percent: config.monitoring_stuffing_failure_percent,
                stuffing_window: time(config.monitoring_stuffing_window),
                api_key_refusals: config.monitoring_api_key_refusals,
                api_key_window: time(config.monitoring_api_key_window),
                baseline_slot: time(config.monitoring_baseline_slot),
                baseline_slots: config.monitoring_baseline_slots,
                baseline_min_events: config.monitoring_baseline_min_events,
            },
            responses: if config.monitoring_incident_auto_response {
                config.monitoring_responses.clone()
            } else {
                palisade_core::monitoring::ResponseRules::none()
            },
            alert_threshold: config.monitoring_alert_severity_threshold,
            alert_emails: config.monitoring_alert_emails.clone(),
            alerts_per_hour: config.monitoring_alerts_per_hour,
        },
        // The compliance_* settings.
        compliance: compliance_settings(config),
        oauth: palisade_core::oauth::OAuthSettings {
            require_pkce: config.oauth2_require_pkce,
            code_ttl: time(config.oauth2_code_ttl),
            pending_per_address: config.oauth2_pending_per_ip,
        },
    })
}

/// Core's compliance settings from the `compliance_*` settings.
fn compliance_settings(config: &Config) -> palisade_core::compliance::ComplianceSettings {
    use palisade_core::compliance::{ComplianceSettings, RetentionPolicy, Standard};
    let time = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
    let enabled = [
        (Standard::Gdpr, config.compliance_gdpr_enabled),
        (Standard::Hipaa, config.compliance_hipaa_enabled),
        (Standard::PciDss, config.compliance_pci_dss_enabled),
        (Standard::Sox, config.compliance_sox_enabled),
        (Standard::Iso27001, config.compliance_iso27001_enabled),
    ];
    ComplianceSettings {
        standards: enabled.into_iter().filter_map(|(standard, on)| on.then_some(standard)).collect(),
        deletion_delay: time(config.compliance_deletion_delay),
        consent_validity: config
            .compliance_consent_validity_per_type
            .iter()
            .map(|(name, validity)| (name.clone(), time(*validity)))
            .collect(),
        default_consent_validity: time(config.compliance_consent_validity),
        erasure_on_withdrawal: config.compliance_erasure_on_withdrawal.clone(),
        retention: RetentionPolicy {
            audit: time(config.compliance_audit_retention),
            login_history: time(config.compliance_login_history_retention),
            incidents: time(config.compliance_incident_retention),
            alert_deliveries: time(config.compliance_alert_delivery_retention),
        },
    }
}

/// A built application: its listener is bound, so its port is known before it serves.
pub struct Application {
    listener: TcpListener,
    router: Router,
    palisade: Arc<Palisade>,
    rotation: Option<time::Duration>,
}

impl Application {
    /// Opens the stores, binds the listener (port 0 picks a free one) and builds the router.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let palisade = bootstrap(&config, clock).await?;
        Self::with_palisade(config, palisade).await
    }

    /// Like [`Application::build`] over an already built [`Palisade`] (tests, embedding).
    pub async fn with_palisade(config: Config, palisade: Arc<Palisade>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.bind).await.with_context(|| format!("binding {}", config.bind))?;
        let state = AppState { palisade: palisade.clone(), metrics: metrics_handle() };
        let options =
            RouterOptions { trusted_proxies: config.trusted_proxies.clone(), request_timeout: config.request_timeout };
        let rotation = config.signing_key_rotation.map(|d| time::Duration::try_from(d).unwrap_or(time::Duration::MAX));
        Ok(Self { listener, router: router(state, &options), palisade, rotation })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The services behind the application.
    pub fn palisade(&self) -> Arc<Palisade> {
        self.palisade.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and returns.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let addr = self.local_addr()?;
        let started = AuditEvent::new(AuditKind::SystemStarted, Outcome::Success).detail("bind", addr.to_string());
        if let Err(e) = self.palisade.audit().append(started).await {
            tracing::warn!(error = %e, "could not audit the start");
        }
        let background = spawn_background(self.palisade.clone(), self.rotation);
        let reencryption = spawn_reencryption_watch(self.palisade.clone());
        tracing::info!(%addr, "palisade is serving");
        let served = axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        background.abort();
        reencryption.abort();
        tracing::info!("palisade stopped");
        served
    }
}

/// Periodic upkeep: expired hot-store rows (SQL backends), metric histograms, and the signing keys
/// (re-read every 30 s, so a rotation made on any instance is published here well before it signs).
fn spawn_background(palisade: Arc<Palisade>, rotation: Option<time::Duration>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_secs(u64::try_from(REFRESH_INTERVAL.whole_seconds()).unwrap_or(30));
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            metrics_handle().run_upkeep();
            if let Err(e) = palisade.signing_keys().refresh().await {
                tracing::warn!(error = %e, "could not re-read the signing keys");
            }
            if let Some(period) = rotation {
                match palisade.signing_keys().rotate_if_older_than(period).await {
                    Ok(Some(key)) => {
                        tracing::info!(kid = %key.kid, "rotated the JWT signing key on schedule");
                        let event = AuditEvent::new(AuditKind::KeyRotated, Outcome::Success)
                            .actor("schedule")
                            .detail("key", "signing key")
                            .detail("new", key.kid);
                        if let Err(e) = palisade.audit().append(event).await {
                            tracing::warn!(error = %e, "could not audit a scheduled rotation");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "scheduled signing-key rotation failed"),
                }
            }
            match palisade.crypto().rotate_due().await {
                Ok(rotated) => {
                    for (class, version) in rotated {
                        tracing::info!(%class, version, "rotated a classification's data key on schedule");
                        let event = AuditEvent::new(AuditKind::KeyRotated, Outcome::Success)
                            .actor("schedule")
                            .detail("key", format!("{class} data key"))
                            .detail("new", version);
                        if let Err(e) = palisade.audit().append(event).await {
                            tracing::warn!(error = %e, "could not audit a scheduled rotation");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduled data-key rotation failed"),
            }
            match palisade.reencryptor().rotate_if_due(palisade.data_key_rotation_period()).await {
                Ok(Some((version, job))) => {
                    tracing::info!(version, job = %job.id, "rotated the data key on schedule; re-encrypting");
                    let event = AuditEvent::new(AuditKind::KeyRotated, Outcome::Success)
                        .actor("schedule")
                        .detail("key", "data key")
                        .detail("new", version);
                    if let Err(e) = palisade.audit().append(event).await {
                        tracing::warn!(error = %e, "could not audit a scheduled rotation");
                    }
                    spawn_reencryption(palisade.clone());
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "scheduled data-key rotation failed"),
            }
            match palisade.hot_store().purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, "purged expired hot-store entries"),
                Err(e) => tracing::warn!(error = %e, "hot-store purge failed"),
            }
        }
    })
}

/// How often an instance looks for a re-encryption job to resume (one left by a restart, or by an
/// instance that died holding the lease).
const REENCRYPTION_WATCH: Duration = Duration::from_secs(5);

/// Works on the running re-encryption job now, in the background, unless another instance (or
/// this one) holds its lease.
pub(crate) fn spawn_reencryption(palisade: Arc<Palisade>) {
    tokio::spawn(async move { run_reencryption(&palisade).await });
}

async fn run_reencryption(palisade: &Palisade) {
    use palisade_core::crypto::reencrypt::RunOutcome;
    match palisade.reencryptor().run(&|_| {}).await {
        Ok(RunOutcome::Finished(job)) => {
            let outcome = if job.error.is_none() { Outcome::Success } else { Outcome::Failure };
            let event = AuditEvent::new(AuditKind::KeyReencrypted, outcome)
                .actor("reencryption")
                .detail("job", job.id.to_string())
                .detail("state", job.state.as_str())
                .detail("target_version", job.target_version)
                .detail("scanned", job.scanned)
                .detail("rewritten", job.rewritten);
            if let Err(e) = palisade.audit().append(event).await {
                tracing::warn!(error = %e, "could not audit the end of a re-encryption");
            }
        }
        Ok(RunOutcome::Idle | RunOutcome::Busy | RunOutcome::Stopped(_)) => {}
        Err(e) => tracing::warn!(error = %e, "re-encryption paused; it resumes from its checkpoint"),
    }
}

/// Resumes a running re-encryption job every few seconds: after a restart, or when the instance
/// working on it died and its lease lapsed.
fn spawn_reencryption_watch(palisade: Arc<Palisade>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REENCRYPTION_WATCH);
        loop {
            tick.tick().await;
            run_reencryption(&palisade).await;
        }
    })
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
