//! Multi-factor routes: the login's second step (`/auth/mfa/verify`, sending SMS and e-mail codes)
//! and managing one's own factors and backup codes under `/auth/mfa`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_core::auth::{FactorRemovalProof, MfaPending, MfaStep};
use palisade_core::mfa::{FactorKind, MfaStatus};
use palisade_core::user::UserId;
use palisade_types::mfa::{
    BackupCodesResponse, CodeRequest, CodeSentResponse, EmailSetupRequest, EnrolmentResponse, FactorRemovalRequest,
    LoginResponse, MfaRequiredResponse, MfaSendRequest, MfaStatusResponse, MfaVerifyRequest, SmsSetupRequest,
    TotpSetupResponse,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, Meta};
use crate::routes::auth::token_response;

type Problem = palisade_types::problem::Problem;

/// The answer for a login waiting for a second factor.
pub(crate) fn approval_required(
    pending: palisade_core::auth::ApprovalPending,
) -> palisade_types::mfa::ApprovalRequiredResponse {
    palisade_types::mfa::ApprovalRequiredResponse {
        approval_required: true,
        approval_token: pending.approval_token.expose_secret().to_owned(),
        device_id: pending.device_id.to_string(),
        expires_in: pending.expires_in,
    }
}

pub(crate) fn mfa_required(pending: MfaPending) -> MfaRequiredResponse {
    MfaRequiredResponse {
        mfa_required: true,
        mfa_token: pending.mfa_token.expose_secret().to_owned(),
        methods: pending.methods.iter().map(|m| m.as_str().to_owned()).collect(),
        factors_required: pending.factors_required,
        expires_in: pending.expires_in,
        risk_score: pending.risk.as_ref().map(|r| r.score),
        risk_factors: pending.risk.map(|r| r.factors),
    }
}

/// Passes one factor of a login's second step. Answers the token pair, or — for enhanced MFA — the
/// next step with the same `mfa_token` and the methods left.
///
/// **Permissions** - the `mfa_token` of a login whose password was right
#[utoipa::path(post, path = "/auth/mfa/verify", tag = "mfa", request_body = MfaVerifyRequest, responses(
    (status = 200, body = LoginResponse),
    (status = 401, description = "INVALID_CREDENTIALS (wrong, used or expired code; the mfa_token stays usable), INVALID_TOKEN (unknown or already used mfa_token), TOKEN_EXPIRED (log in again)", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: a malformed code or a method this login does not offer; nothing is consumed", body = Problem),
    (status = 423, description = "ACCOUNT_LOCKED: too many wrong codes, with Retry-After", body = Problem),
))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<MfaVerifyRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let token = SecretString::from(body.mfa_token);
    let step = state.palisade.auth().verify_mfa(&token, &body.method, &body.code, &meta).await?;
    Ok(Json(step_response(step)))
}

/// The answer for a passed factor: the token pair, or the next step.
pub(crate) fn step_response(step: MfaStep) -> LoginResponse {
    match step {
        MfaStep::Done(pair) => LoginResponse::Tokens(token_response(pair)),
        MfaStep::Continue(pending) => LoginResponse::MfaRequired(mfa_required(pending)),
        MfaStep::ApprovalRequired(pending) => LoginResponse::ApprovalRequired(approval_required(pending)),
    }
}

/// Sends a login code by SMS to the user's confirmed phone (at most one live code; resends
/// throttled).
///
/// **Permissions** - the `mfa_token` of a login that offers `sms`
#[utoipa::path(post, path = "/auth/mfa/sms/send", tag = "mfa", request_body = MfaSendRequest, responses(
    (status = 200, body = CodeSentResponse),
    (status = 401, description = "INVALID_TOKEN or TOKEN_EXPIRED", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: this login does not offer sms", body = Problem),
    (status = 429, description = "RATE_LIMITED: a code was sent moments ago, with Retry-After", body = Problem),
    (status = 503, description = "SERVICE_UNAVAILABLE: the SMS provider failed", body = Problem),
))]
pub(crate) async fn sms_send(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<MfaSendRequest>,
) -> Result<Json<CodeSentResponse>, ApiError> {
    send(&state, FactorKind::Sms, body, &meta).await
}

/// Sends a login code by e-mail to the user's confirmed address (at most one live code; resends
/// throttled).
///
/// **Permissions** - the `mfa_token` of a login that offers `email`
#[utoipa::path(post, path = "/auth/mfa/email/send", tag = "mfa", request_body = MfaSendRequest, responses(
    (status = 200, body = CodeSentResponse),
    (status = 401, description = "INVALID_TOKEN or TOKEN_EXPIRED", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: this login does not offer email", body = Problem),
    (status = 429, description = "RATE_LIMITED: a code was sent moments ago, with Retry-After", body = Problem),
    (status = 503, description = "SERVICE_UNAVAILABLE: the SMTP server failed", body = Problem),
))]
pub(crate) async fn email_send(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<MfaSendRequest>,
) -> Result<Json<CodeSentResponse>, ApiError> {
    send(&state, FactorKind::Email, body, &meta).await
}

async fn send(
    state: &AppState,
    kind: FactorKind,
    body: MfaSendRequest,
    meta: &palisade_core::audit::RequestMeta,
) -> Result<Json<CodeSentResponse>, ApiError> {
    let token = SecretString::from(body.mfa_token);
    let expires_in = state.palisade.mfa().send_login_code(&token, kind, meta).await?;
    Ok(Json(CodeSentResponse { message: format!("a code was sent by {}", kind.as_str()), expires_in }))
}

/// The caller's second factors and backup codes left, without secrets.
///
/// **Permissions** - a bearer access token with the `user` or `mfa:enroll` scope
#[utoipa::path(get, path = "/auth/mfa", tag = "mfa", security(("bearer" = [])), responses((status = 200, body = MfaStatusResponse)))]
pub(crate) async fn status(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<MfaStatusResponse>, ApiError> {
    let mfa = state.palisade.mfa();
    let status = mfa.status(&principal).await?;
    let mut available: Vec<String> = [FactorKind::Totp, FactorKind::Sms, FactorKind::Email]
        .into_iter()
        .filter(|k| mfa.is_available(*k))
        .map(|k| k.as_str().to_owned())
        .collect();
    if mfa.passkeys_available() {
        available.push("webauthn".to_owned());
    }
    Ok(Json(status_response(status, available)))
}

fn status_response(status: MfaStatus, available: Vec<String>) -> MfaStatusResponse {
    let names = |kinds: Vec<FactorKind>| kinds.into_iter().map(|k| k.as_str().to_owned()).collect();
    MfaStatusResponse {
        methods: names(status.factors),
        pending: names(status.pending),
        backup_codes_remaining: status.backup_codes_remaining,
        passkeys: status.passkeys,
        available,
    }
}

/// Sets up an authenticator app: a new secret, its `otpauth://` URI and QR code, and — when it is
/// the user's first factor — a set of backup codes, all shown once. The app is used for logins once
/// confirmed. A user who already has a second factor needs a session that passed it.
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope
#[utoipa::path(post, path = "/auth/mfa/totp/setup", tag = "mfa", security(("bearer" = [])), responses(
    (status = 200, body = TotpSetupResponse),
    (status = 401, description = "MFA_REQUIRED: the user has a second factor and this session did not pass it", body = Problem),
    (status = 409, description = "CONFLICT: a confirmed TOTP factor exists; remove it first", body = Problem),
))]
pub(crate) async fn totp_setup(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
) -> Result<Json<TotpSetupResponse>, ApiError> {
    let setup = state.palisade.mfa().totp_setup(&principal, &meta).await?;
    Ok(Json(TotpSetupResponse {
        secret: setup.secret.to_string(),
        otpauth_uri: setup.otpauth_uri.to_string(),
        qr_svg: setup.qr_svg,
        backup_codes: setup.backup_codes.iter().map(|c| c.to_string()).collect(),
    }))
}

/// Confirms the pending authenticator app with a current code; from now on logins ask for it.
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope
#[utoipa::path(post, path = "/auth/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])), request_body = CodeRequest, responses(
    (status = 204),
    (status = 401, description = "INVALID_CREDENTIALS: wrong or already used code", body = Problem),
    (status = 409, description = "CONFLICT: nothing to confirm, or already confirmed", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: not 6 digits", body = Problem),
    (status = 423, description = "ACCOUNT_LOCKED: too many wrong codes", body = Problem),
))]
pub(crate) async fn totp_confirm(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    state.palisade.mfa().totp_confirm(&principal, &body.code, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets up SMS codes: sends a confirmation code to the number.
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope
#[utoipa::path(post, path = "/auth/mfa/sms/setup", tag = "mfa", security(("bearer" = [])), request_body = SmsSetupRequest, responses(
    (status = 200, body = EnrolmentResponse),
    (status = 409, description = "CONFLICT: a confirmed SMS factor exists", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: not an E.164 number, or no SMS provider is configured", body = Problem),
    (status = 429, description = "RATE_LIMITED: a code was sent moments ago", body = Problem),
    (status = 503, description = "SERVICE_UNAVAILABLE: the SMS provider failed", body = Problem),
))]
pub(crate) async fn sms_setup(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<SmsSetupRequest>,
) -> Result<Json<EnrolmentResponse>, ApiError> {
    let sent = state.palisade.mfa().sms_setup(&principal, &body.phone, &meta).await?;
    Ok(Json(EnrolmentResponse { destination: sent.destination, expires_in: sent.expires_in }))
}

/// Confirms the pending phone number with the code sent to it.
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope
#[utoipa::path(post, path = "/auth/mfa/sms/confirm", tag = "mfa", security(("bearer" = [])), request_body = CodeRequest, responses(
    (status = 204),
    (status = 401, description = "INVALID_CREDENTIALS: wrong, used or expired code", body = Problem),
    (status = 409, description = "CONFLICT: nothing to confirm", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: not 6 digits", body = Problem),
    (status = 423, description = "ACCOUNT_LOCKED: too many wrong codes", body = Problem),
))]
pub(crate) async fn sms_confirm(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    state.palisade.mfa().destination_confirm(&principal, FactorKind::Sms, &body.code, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets up e-mail codes: sends a confirmation code to the address (the account's when none is
/// given).
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope
#[utoipa::path(post, path = "/auth/mfa/email/setup", tag = "mfa", security(("bearer" = [])), request_body = EmailSetupRequest, responses(
    (status = 200, body = EnrolmentResponse),
    (status = 409, description = "CONFLICT: a confirmed e-mail factor exists", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: not an address, or no SMTP server is configured", body = Problem),
    (status = 429, description = "RATE_LIMITED: a code was sent moments ago", body = Problem),
    (status = 503, description = "SERVICE_UNAVAILABLE: the SMTP server failed", body = Problem),
))]
pub(crate) async fn email_setup(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<EmailSetupRequest>,
) -> Result<Json<EnrolmentResponse>, ApiError> {
    let sent = state.palisade.mfa().email_setup(&principal, body.email.as_deref(), &meta).await?;
    Ok(Json(EnrolmentResponse { destination: sent.destination, expires_in: sent.expires_in }))
}

/// Confirms the pending e-mail address with the code sent to it.
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope
#[utoipa::path(post, path = "/auth/mfa/email/confirm", tag = "mfa", security(("bearer" = [])), request_body = CodeRequest, responses(
    (status = 204),
    (status = 401, description = "INVALID_CREDENTIALS: wrong, used or expired code", body = Problem),
    (status = 409, description = "CONFLICT: nothing to confirm", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: not 6 digits", body = Problem),
    (status = 423, description = "ACCOUNT_LOCKED: too many wrong codes", body = Problem),
))]
pub(crate) async fn email_confirm(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    state.palisade.mfa().destination_confirm(&principal, FactorKind::Email, &body.code, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a second factor (`totp`, `sms` or `email`), proven by the password or, for TOTP, a
/// current code. With no confirmed factor left, the backup codes go too.
///
/// **Permissions** - a login session with the `user` scope
#[utoipa::path(delete, path = "/auth/mfa/{method}", tag = "mfa", security(("bearer" = [])), params(("method" = String, Path, description = "totp, sms or email")), request_body = FactorRemovalRequest, responses(
    (status = 204),
    (status = 401, description = "INVALID_CREDENTIALS: wrong password or code", body = Problem),
    (status = 404, description = "no such factor", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: give exactly one of password and code", body = Problem),
))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(method): Path<String>,
    ApiJson(body): ApiJson<FactorRemovalRequest>,
) -> Result<StatusCode, ApiError> {
    let kind = FactorKind::parse(&method).ok_or(ApiError::NotFound)?;
    let proof = match (body.password, body.code) {
        (Some(password), None) => FactorRemovalProof::Password(SecretString::from(password)),
        (None, Some(code)) => FactorRemovalProof::Code(code),
        _ => return Err(ApiError::unprocessable("give exactly one of `password` and `code`")),
    };
    state.palisade.auth().remove_factor(&principal, kind, proof, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new set of backup codes, shown once; the old set dies.
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope, and a confirmed factor
#[utoipa::path(post, path = "/auth/mfa/backup-codes", tag = "mfa", security(("bearer" = [])), responses(
    (status = 200, body = BackupCodesResponse),
    (status = 401, description = "MFA_REQUIRED: the session did not pass a second factor", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: no confirmed second factor", body = Problem),
))]
pub(crate) async fn backup_codes(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
) -> Result<Json<BackupCodesResponse>, ApiError> {
    let codes = state.palisade.mfa().regenerate_backup_codes(&principal, &meta).await?;
    Ok(Json(BackupCodesResponse { backup_codes: codes.iter().map(|c| c.to_string()).collect() }))
}

/// Removes every second factor and backup code of a user (who lost their device).
///
/// **Permissions** - `admin`
#[utoipa::path(post, path = "/admin/users/{id}/mfa/reset", tag = "admin", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path)), responses(
    (status = 204),
    (status = 404, body = Problem),
))]
pub(crate) async fn admin_reset(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = UserId::parse(&id).map_err(|_| ApiError::NotFound)?;
    state.palisade.mfa().admin_reset(&principal, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
