//! The OpenAPI description of every route, served at `/openapi.json` and rendered at `/docs`.

use palisade_types::{admin, api_keys, auth, health, mfa, problem, tokens, webauthn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The API document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Palisade", description = "Security and identity service"),
    paths(
        crate::routes::ops::health,
        crate::routes::ops::ready,
        crate::routes::ops::metrics,
        crate::routes::auth::register,
        crate::routes::auth::login,
        crate::routes::auth::refresh,
        crate::routes::auth::logout,
        crate::routes::auth::profile,
        crate::routes::auth::change_password,
        crate::routes::auth::sessions,
        crate::routes::auth::end_session,
        crate::routes::mfa::status,
        crate::routes::mfa::verify,
        crate::routes::mfa::totp_setup,
        crate::routes::mfa::totp_confirm,
        crate::routes::mfa::sms_setup,
        crate::routes::mfa::sms_confirm,
        crate::routes::mfa::sms_send,
        crate::routes::mfa::email_setup,
        crate::routes::mfa::email_confirm,
        crate::routes::mfa::email_send,
        crate::routes::mfa::backup_codes,
        crate::routes::mfa::remove,
        crate::routes::mfa::admin_reset,
        crate::routes::webauthn::register_start,
        crate::routes::webauthn::register_finish,
        crate::routes::webauthn::login_start,
        crate::routes::webauthn::login_finish,
        crate::routes::webauthn::credentials,
        crate::routes::webauthn::rename,
        crate::routes::webauthn::delete,
        crate::routes::pages::passkeys,
        crate::routes::pages::passkeys_js,
        crate::routes::pages::passkeys_css,
        crate::routes::keys::jwks,
        crate::routes::api_keys::create,
        crate::routes::api_keys::list,
        crate::routes::api_keys::revoke,
        crate::routes::api_keys::validate,
        crate::routes::tokens::validate,
        crate::routes::admin::users,
        crate::routes::admin::lock,
        crate::routes::admin::unlock,
        crate::routes::admin::api_keys,
        crate::routes::admin::revoke_api_key,
        crate::routes::admin::revoke_token,
    ),
    components(schemas(
        health::Health,
        health::Ready,
        health::HealthStatus,
        problem::Problem,
        problem::ProblemItem,
        auth::RegisterRequest,
        auth::RegisterResponse,
        auth::LoginRequest,
        auth::DeviceDescription,
        auth::TokenResponse,
        auth::RefreshRequest,
        auth::Profile,
        auth::PasswordChangeRequest,
        auth::SessionInfo,
        auth::SessionList,
        mfa::LoginResponse,
        mfa::MfaRequiredResponse,
        mfa::MfaVerifyRequest,
        mfa::MfaSendRequest,
        mfa::CodeSentResponse,
        mfa::TotpSetupResponse,
        mfa::CodeRequest,
        mfa::SmsSetupRequest,
        mfa::EmailSetupRequest,
        mfa::EnrolmentResponse,
        mfa::FactorRemovalRequest,
        mfa::BackupCodesResponse,
        mfa::MfaStatusResponse,
        webauthn::CeremonyResponse,
        webauthn::PasskeyRegisterFinishRequest,
        webauthn::PasskeyLoginStartRequest,
        webauthn::PasskeyLoginFinishRequest,
        webauthn::PasskeyInfo,
        webauthn::PasskeyList,
        webauthn::PasskeyRenameRequest,
        api_keys::RateLimitSpec,
        api_keys::CreateApiKeyRequest,
        api_keys::CreateApiKeyResponse,
        api_keys::ApiKeyInfo,
        api_keys::ApiKeyList,
        api_keys::ValidateApiKeyRequest,
        api_keys::ValidateApiKeyResponse,
        tokens::ValidateTokenRequest,
        tokens::ValidateTokenResponse,
        admin::UserSummary,
        admin::UserList,
        admin::RevokeTokenRequest,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "operations", description = "Liveness, readiness and metrics"),
        (name = "auth", description = "Accounts, login, tokens and sessions"),
        (name = "mfa", description = "Second factors: TOTP, backup codes, SMS and e-mail codes, the login's second step"),
        (name = "webauthn", description = "Passkeys: registration, second factor, passwordless login"),
        (name = "pages", description = "Pages the server serves"),
        (name = "keys", description = "Public keys to verify tokens"),
        (name = "api-keys", description = "API keys and their validation"),
        (name = "admin", description = "Administration (the `admin` scope)"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme (a JWT access token).
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
            );
            components.add_security_scheme(
                "api_key",
                SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                    utoipa::openapi::security::ApiKeyValue::new("X-API-Key"),
                )),
            );
        }
    }
}
