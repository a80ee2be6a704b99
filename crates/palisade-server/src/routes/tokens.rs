//! `POST /tokens/validate`: access-token checks for other services.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use palisade_core::auth::AuthError;
use palisade_types::tokens::{ValidateTokenRequest, ValidateTokenResponse};
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ClientIp, Meta, PresentedApiKey};
use crate::routes::api_keys::rate_limit_headers;

/// The scope an API key needs to call `POST /tokens/validate`.
pub const VALIDATE_SCOPE: &str = "tokens:validate";

/// Tells another service whether an access token is valid: signature, issuer, audience, expiry and a
/// live session. The caller authenticates with its own API key in `X-API-Key`, which must hold the
/// `tokens:validate` scope.
///
/// **Permissions** - an API key (`X-API-Key`) with the `tokens:validate` scope
#[utoipa::path(post, path = "/tokens/validate", tag = "api-keys", security(("api_key" = [])), request_body = ValidateTokenRequest, responses(
    (status = 200, body = ValidateTokenResponse, description = "valid, or not with the reason in `error`"),
    (status = 401, description = "the caller's own key is missing or invalid", body = palisade_types::problem::Problem),
    (status = 403, description = "the caller's key lacks tokens:validate", body = palisade_types::problem::Problem),
    (status = 429, description = "the caller's key is over its rate limit", body = palisade_types::problem::Problem),
))]
pub(crate) async fn validate(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ClientIp(caller_ip): ClientIp,
    PresentedApiKey(caller_key): PresentedApiKey,
    ApiJson(body): ApiJson<ValidateTokenRequest>,
) -> Result<(HeaderMap, Json<ValidateTokenResponse>), ApiError> {
    let caller =
        state.palisade.api_keys().validate(&caller_key, &[VALIDATE_SCOPE.to_owned()], Some(caller_ip), &meta).await?;
    let answer = match state.palisade.auth().validate_token(&body.token).await {
        Ok(principal) => ValidateTokenResponse {
            valid: true,
            user_id: Some(principal.user_id.to_string()),
            expires_at: principal.expires_at.and_then(|at| at.format(&Rfc3339).ok()),
            scopes: Some(principal.scopes),
            error: None,
        },
        Err(e @ (AuthError::Unavailable(_) | AuthError::Internal(_))) => return Err(e.into()),
        Err(e) => ValidateTokenResponse {
            valid: false,
            user_id: None,
            scopes: None,
            expires_at: None,
            error: Some(
                match e {
                    AuthError::TokenExpired => "TOKEN_EXPIRED",
                    AuthError::TokenRevoked { .. } => "TOKEN_REVOKED",
                    _ => "INVALID_TOKEN",
                }
                .to_owned(),
            ),
        },
    };
    Ok((rate_limit_headers(&caller), Json(answer)))
}
