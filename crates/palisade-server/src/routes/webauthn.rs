//! Passkey routes under `/auth/webauthn`: registering passkeys, listing, renaming and removing
//! them, and logging in with one — as the second factor of a login or passwordless.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_core::mfa::PasskeyRecord;
use palisade_core::mfa::passkey::{credential_id_text, parse_credential_id};
use palisade_types::mfa::LoginResponse;
use palisade_types::webauthn::{
    CeremonyResponse, PasskeyInfo, PasskeyList, PasskeyLoginFinishRequest, PasskeyLoginStartRequest,
    PasskeyRegisterFinishRequest, PasskeyRenameRequest,
};
use secrecy::SecretString;
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, Meta};
use crate::routes::mfa::step_response;

type Problem = palisade_types::problem::Problem;

fn info(record: PasskeyRecord) -> PasskeyInfo {
    PasskeyInfo {
        id: credential_id_text(&record.credential_id),
        name: record.name,
        created_at: record.created_at.format(&Rfc3339).unwrap_or_default(),
        last_used_at: record.last_used_at.map(|at| at.format(&Rfc3339).unwrap_or_default()),
    }
}

/// Starts registering a passkey for the caller; user verification (the device's biometric or PIN)
/// is required.
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope
#[utoipa::path(post, path = "/auth/webauthn/register/start", tag = "webauthn", security(("bearer" = [])), responses(
    (status = 200, body = CeremonyResponse),
    (status = 422, description = "VALIDATION_ERROR: passkeys are not configured on this server", body = Problem),
))]
pub(crate) async fn register_start(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<CeremonyResponse>, ApiError> {
    let (challenge_id, options) = state.palisade.mfa().passkey_register_start(&principal).await?;
    Ok(Json(CeremonyResponse { challenge_id, options }))
}

/// Finishes registering: verifies the authenticator's answer and stores the passkey's public key.
///
/// **Permissions** - the session that started the ceremony
#[utoipa::path(post, path = "/auth/webauthn/register/finish", tag = "webauthn", security(("bearer" = [])), request_body = PasskeyRegisterFinishRequest, responses(
    (status = 201, body = PasskeyInfo),
    (status = 401, description = "INVALID_TOKEN: unknown, expired or used challenge_id", body = Problem),
    (status = 409, description = "CONFLICT: this credential is registered already", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: not a WebAuthn answer, or one that does not verify", body = Problem),
))]
pub(crate) async fn register_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<PasskeyRegisterFinishRequest>,
) -> Result<(StatusCode, Json<PasskeyInfo>), ApiError> {
    let record = state
        .palisade
        .mfa()
        .passkey_register_finish(&principal, &body.challenge_id, &body.credential, body.name.as_deref(), &meta)
        .await?;
    Ok((StatusCode::CREATED, Json(info(record))))
}

/// Starts a passkey login: with an `mfa_token`, as that login's second factor; without, a
/// passwordless login with a discoverable passkey.
///
/// **Permissions** - none (or the `mfa_token` of a login that offers `webauthn`)
#[utoipa::path(post, path = "/auth/webauthn/login/start", tag = "webauthn", request_body = PasskeyLoginStartRequest, responses(
    (status = 200, body = CeremonyResponse),
    (status = 401, description = "INVALID_TOKEN or TOKEN_EXPIRED: the mfa_token", body = Problem),
    (status = 429, description = "RATE_LIMITED: too many passwordless starts from this address (30 a minute), with Retry-After", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: passkeys are not configured, or this login does not offer webauthn", body = Problem),
))]
pub(crate) async fn login_start(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<PasskeyLoginStartRequest>,
) -> Result<Json<CeremonyResponse>, ApiError> {
    let token = body.mfa_token.map(SecretString::from);
    let (challenge_id, options) = state.palisade.auth().passkey_login_start(token.as_ref(), &meta).await?;
    Ok(Json(CeremonyResponse { challenge_id, options }))
}

/// Finishes a passkey login: the token pair (or, for enhanced MFA, the next step).
///
/// **Permissions** - none (or the `mfa_token` given at `login/start`)
#[utoipa::path(post, path = "/auth/webauthn/login/finish", tag = "webauthn", request_body = PasskeyLoginFinishRequest, responses(
    (status = 200, body = LoginResponse),
    (status = 401, description = "INVALID_CREDENTIALS (the passkey did not verify: signature, user verification, counter), INVALID_TOKEN (challenge_id or mfa_token)", body = Problem),
    (status = 422, description = "VALIDATION_ERROR: not a WebAuthn answer", body = Problem),
    (status = 423, description = "ACCOUNT_LOCKED: too many failed second factors", body = Problem),
))]
pub(crate) async fn login_finish(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<PasskeyLoginFinishRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let token = body.mfa_token.map(SecretString::from);
    let step =
        state.palisade.auth().passkey_login_finish(&body.challenge_id, &body.credential, token.as_ref(), &meta).await?;
    Ok(Json(step_response(step)))
}

/// The caller's passkeys.
///
/// **Permissions** - a login session with the `user` or `mfa:enroll` scope
#[utoipa::path(get, path = "/auth/webauthn/credentials", tag = "webauthn", security(("bearer" = [])), responses((status = 200, body = PasskeyList)))]
pub(crate) async fn credentials(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<PasskeyList>, ApiError> {
    let records = state.palisade.mfa().passkeys(&principal).await?;
    Ok(Json(PasskeyList { credentials: records.into_iter().map(info).collect() }))
}

/// Renames one of the caller's passkeys.
///
/// **Permissions** - a bearer access token with the `user` scope
#[utoipa::path(patch, path = "/auth/webauthn/credentials/{id}", tag = "webauthn", security(("bearer" = [])), params(("id" = String, Path, description = "credential id, base64url")), request_body = PasskeyRenameRequest, responses(
    (status = 204),
    (status = 404, body = Problem),
    (status = 422, description = "VALIDATION_ERROR: the name", body = Problem),
))]
pub(crate) async fn rename(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasskeyRenameRequest>,
) -> Result<StatusCode, ApiError> {
    let id = parse_credential_id(&id).ok_or(ApiError::NotFound)?;
    state.palisade.mfa().rename_passkey(&principal, &id, &body.name, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one of the caller's passkeys.
///
/// **Permissions** - a login session with the `user` scope
#[utoipa::path(delete, path = "/auth/webauthn/credentials/{id}", tag = "webauthn", security(("bearer" = [])), params(("id" = String, Path, description = "credential id, base64url")), responses(
    (status = 204),
    (status = 404, body = Problem),
))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_credential_id(&id).ok_or(ApiError::NotFound)?;
    state.palisade.mfa().delete_passkey(&principal, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
