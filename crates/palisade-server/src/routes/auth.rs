//! End-user routes under `/auth`: register, login, refresh, logout, profile, password, sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_core::auth::{LoginOutcome, RegisterInput, TokenPair};
use palisade_core::session::DeviceInfo;
use palisade_core::token::SessionId;
use palisade_types::auth::{
    DeviceDescription, LoginRequest, PasswordChangeRequest, Profile, RefreshRequest, RegisterRequest, RegisterResponse,
    SessionInfo, SessionList, TokenResponse,
};
use palisade_types::mfa::LoginResponse;
use secrecy::{ExposeSecret as _, SecretString};
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, Meta};

/// Creates an account.
///
/// **Permissions** - none
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest, responses(
    (status = 201, body = RegisterResponse),
    (status = 409, description = "username or e-mail taken", body = palisade_types::problem::Problem),
    (status = 422, description = "PASSWORD_POLICY (every failed rule listed) or VALIDATION_ERROR", body = palisade_types::problem::Problem),
))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    let input =
        RegisterInput { username: body.username, password: SecretString::from(body.password), email: body.email };
    let id = state.palisade.auth().register(input, "self", &meta).await?;
    Ok((StatusCode::CREATED, Json(RegisterResponse { user_id: id.to_string() })))
}

/// Logs in with a username and a password.
///
/// **Permissions** - none
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "the token pair, or `mfa_required` with an `mfa_token` when a second factor is needed", body = LoginResponse),
    (status = 401, description = "INVALID_CREDENTIALS: the same answer, in the same time, for unknown users", body = palisade_types::problem::Problem),
    (status = 403, description = "RISK_BLOCKED: the password was right but the login's risk score is past the block threshold; `risk_score` and `risk_factors` say why", body = palisade_types::problem::Problem),
    (status = 409, description = "CONFLICT: concurrent sessions are off and another session is active", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: a malformed `device` (over-long or control characters)", body = palisade_types::problem::Problem),
    (status = 423, description = "ACCOUNT_LOCKED, with Retry-After", body = palisade_types::problem::Problem),
    (status = 429, description = "RATE_LIMITED (too many failures from this address), with Retry-After", body = palisade_types::problem::Problem),
))]
pub(crate) async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let device = body
        .device
        .map(|d| DeviceInfo::parse(d.name, d.device_type, d.os, d.browser, d.fingerprint))
        .transpose()
        .map_err(palisade_core::auth::AuthError::from)?;
    let options = palisade_core::auth::LoginOptions {
        device,
        remember_device: body.remember_device,
        device_token: body.device_token.map(SecretString::from),
    };
    let outcome =
        state.palisade.auth().login_with(&body.username, SecretString::from(body.password), options, &meta).await?;
    Ok(Json(match outcome {
        LoginOutcome::Tokens(pair) => LoginResponse::Tokens(token_response(pair)),
        LoginOutcome::MfaRequired(pending) => LoginResponse::MfaRequired(crate::routes::mfa::mfa_required(pending)),
        LoginOutcome::ApprovalRequired(pending) => {
            LoginResponse::ApprovalRequired(crate::routes::mfa::approval_required(pending))
        }
    }))
}

/// Polls a login whose device waits for approval: the same `approval_required` answer while it
/// waits, the token pair once the device is approved (once: the token is then spent).
///
/// **Permissions** - the `approval_token` of the login answer
#[utoipa::path(post, path = "/auth/login/approval", tag = "auth", request_body = palisade_types::mfa::ApprovalPollRequest, responses(
    (status = 200, description = "`approval_required` again while waiting, or the token pair", body = LoginResponse),
    (status = 401, description = "INVALID_TOKEN: unknown, expired or already used, or the device was removed", body = palisade_types::problem::Problem),
))]
pub(crate) async fn poll_approval(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<palisade_types::mfa::ApprovalPollRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let outcome = state.palisade.auth().poll_approval(&SecretString::from(body.approval_token), &meta).await?;
    Ok(Json(match outcome {
        LoginOutcome::Tokens(pair) => LoginResponse::Tokens(token_response(pair)),
        LoginOutcome::MfaRequired(pending) => LoginResponse::MfaRequired(crate::routes::mfa::mfa_required(pending)),
        LoginOutcome::ApprovalRequired(pending) => {
            LoginResponse::ApprovalRequired(crate::routes::mfa::approval_required(pending))
        }
    }))
}

/// Exchanges a refresh token for a new pair; the presented token is spent. A spent token presented
/// again revokes its whole family: 401 `TOKEN_REVOKED` with `require_reauth: true`.
///
/// **Permissions** - the refresh token itself
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, description = "INVALID_TOKEN, TOKEN_EXPIRED, TOKEN_REVOKED, or SESSION_HIJACK_SUSPECTED (presented by another client than the session's: the session ended)", body = palisade_types::problem::Problem),
))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let pair = state.palisade.auth().refresh(&SecretString::from(body.refresh_token), &meta).await?;
    Ok(Json(token_response(pair)))
}

/// Ends the caller's session and its refresh family.
///
/// **Permissions** - a bearer access token
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])), responses((status = 204)))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
) -> Result<StatusCode, ApiError> {
    state.palisade.auth().logout(&principal, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
///
/// **Permissions** - a bearer access token with the `user` scope
#[utoipa::path(get, path = "/auth/profile", tag = "auth", security(("bearer" = [])), responses((status = 200, body = Profile)))]
pub(crate) async fn profile(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Profile>, ApiError> {
    let user = state.palisade.auth().profile(&principal).await?;
    let mfa = state.palisade.mfa().status_of(user.id).await?;
    Ok(Json(Profile {
        user_id: user.id.to_string(),
        username: user.username.to_string(),
        email: user.email.map(|e| e.to_string()),
        created_at: rfc3339(user.created_at),
        mfa_methods: mfa
            .factors
            .iter()
            .map(|k| k.as_str().to_owned())
            .chain((mfa.passkeys > 0).then(|| "webauthn".to_owned()))
            .collect(),
        backup_codes_remaining: mfa.backup_codes_remaining,
    }))
}

/// Changes the caller's password; the caller's other sessions end.
///
/// **Permissions** - a bearer access token with the `user` or `password:change` scope
#[utoipa::path(post, path = "/auth/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChangeRequest, responses(
    (status = 204),
    (status = 401, description = "INVALID_CREDENTIALS: the current password is wrong", body = palisade_types::problem::Problem),
    (status = 422, description = "PASSWORD_POLICY", body = palisade_types::problem::Problem),
))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<PasswordChangeRequest>,
) -> Result<StatusCode, ApiError> {
    let current = SecretString::from(body.current_password);
    let new = SecretString::from(body.new_password);
    state.palisade.auth().change_password(&principal, current, new, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's live sessions.
///
/// **Permissions** - a bearer access token with the `user` scope
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", security(("bearer" = [])), responses((status = 200, body = SessionList)))]
pub(crate) async fn sessions(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.palisade.auth().list_sessions(&principal).await?;
    let sessions = sessions
        .into_iter()
        .map(|s| SessionInfo {
            current: Some(s.id) == principal.session_id,
            session_id: s.id.to_string(),
            created_at: rfc3339(s.created_at),
            expires_at: rfc3339(s.expires_at),
            last_seen_at: rfc3339(s.last_seen_at),
            ip: s.ip,
            user_agent: s.user_agent,
            device_id: s.device_id.map(|d| d.to_string()),
            country: s.country,
            city: s.city,
            device: s.device.map(|d| DeviceDescription {
                name: d.name,
                device_type: d.device_type,
                os: d.os,
                browser: d.browser,
                fingerprint: d.fingerprint,
            }),
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// Ends one of the caller's sessions and its refresh family.
///
/// **Permissions** - a bearer access token with the `user` scope; only the caller's own sessions
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", security(("bearer" = [])), params(("id" = String, Path, description = "session id")), responses(
    (status = 204),
    (status = 404, body = palisade_types::problem::Problem),
))]
pub(crate) async fn end_session(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = uuid::Uuid::try_parse(&id).map(SessionId::from_uuid).map_err(|_| ApiError::NotFound)?;
    state.palisade.auth().end_session(&principal, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn token_response(pair: TokenPair) -> TokenResponse {
    TokenResponse {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token.expose_secret().to_owned(),
        token_type: "Bearer".into(),
        expires_in: pair.expires_in,
        session_id: pair.session_id.to_string(),
        user_id: pair.user_id.to_string(),
        password_expired: pair.password_expired,
        mfa_enrolment_required: pair.mfa_enrolment_required,
        risk_score: pair.risk.as_ref().map(|r| r.score),
        risk_factors: pair.risk.map(|r| r.factors),
        device_id: pair.device_id.map(|d| d.to_string()),
        device_token_expires_in: pair.device_token.as_ref().map(|(_, ttl)| *ttl),
        device_token: pair.device_token.map(|(token, _)| token.expose_secret().to_owned()),
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}
