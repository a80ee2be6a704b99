//! API keys: `/auth/api-keys` for their owners, `/api-keys/validate` for other services.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use palisade_core::api_key::{ApiKeyError, ApiKeyRecord, NewApiKey, RateLimits, ValidatedApiKey};
use palisade_types::api_keys::{
    ApiKeyInfo, ApiKeyList, CreateApiKeyRequest, CreateApiKeyResponse, RateLimitSpec, ValidateApiKeyRequest,
    ValidateApiKeyResponse,
};
use secrecy::ExposeSecret as _;
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, ClientIp, Meta, PresentedApiKey};

/// The scope an API key needs to call `POST /api-keys/validate`.
pub const VALIDATE_SCOPE: &str = "api-keys:validate";

/// Makes an API key for the caller; the key is in this answer only.
///
/// **Permissions** - a bearer access token with the `user` scope
#[utoipa::path(post, path = "/auth/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = CreateApiKeyRequest, responses(
    (status = 201, body = CreateApiKeyResponse),
    (status = 422, description = "VALIDATION_ERROR naming the field", body = palisade_types::problem::Problem),
))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreateApiKeyResponse>), ApiError> {
    principal.require_scope(palisade_core::auth::SCOPE_USER)?;
    let limits = body.rate_limit.unwrap_or_default();
    let input = NewApiKey {
        name: body.name,
        scopes: body.scopes,
        expires_in: body.expires_in.map(|s| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX))),
        limits: RateLimits {
            per_minute: limits.requests_per_minute,
            per_hour: limits.requests_per_hour,
            per_day: limits.requests_per_day,
        },
        ip_allow: body.ip_whitelist.unwrap_or_default(),
    };
    let created = state.palisade.api_keys().create(principal.user_id, &principal.scopes, input, &meta).await?;
    let record = created.record;
    Ok((
        StatusCode::CREATED,
        Json(CreateApiKeyResponse {
            api_key: created.key.expose_secret().to_owned(),
            api_key_id: record.id.to_string(),
            rate_limits: limits_of(&record),
            expires_at: record.expires_at.map(rfc3339),
            scopes: record.scopes,
        }),
    ))
}

/// The caller's API keys (never their secrets).
///
/// **Permissions** - a bearer access token with the `user` scope
#[utoipa::path(get, path = "/auth/api-keys", tag = "api-keys", security(("bearer" = [])), responses((status = 200, body = ApiKeyList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<ApiKeyList>, ApiError> {
    principal.require_scope(palisade_core::auth::SCOPE_USER)?;
    let keys = state.palisade.api_keys().list(Some(principal.user_id), 1000).await?;
    Ok(Json(ApiKeyList { api_keys: keys.iter().map(info).collect() }))
}

/// Revokes one of the caller's API keys.
///
/// **Permissions** - a bearer access token with the `user` scope; only the caller's own keys
#[utoipa::path(delete, path = "/auth/api-keys/{id}", tag = "api-keys", security(("bearer" = [])), params(("id" = String, Path, description = "API key id")), responses(
    (status = 204),
    (status = 404, body = palisade_types::problem::Problem),
))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require_scope(palisade_core::auth::SCOPE_USER)?;
    let id = uuid::Uuid::try_parse(&id).map_err(|_| ApiError::NotFound)?;
    state.palisade.api_keys().revoke(id, Some(principal.user_id), &principal.user_id.to_string(), &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells another service whether an API key is valid for a use (scopes, address) and counts the use
/// against the key's rate limits. The caller authenticates with its own API key in `X-API-Key`, which
/// must hold the `api-keys:validate` scope.
///
/// **Permissions** - an API key (`X-API-Key`) with the `api-keys:validate` scope
#[utoipa::path(post, path = "/api-keys/validate", tag = "api-keys", security(("api_key" = [])), request_body = ValidateApiKeyRequest, responses(
    (status = 200, body = ValidateApiKeyResponse, description = "valid, or not with the reason in `error`"),
    (status = 401, description = "the caller's own key is missing or invalid", body = palisade_types::problem::Problem),
    (status = 403, description = "the caller's key lacks api-keys:validate", body = palisade_types::problem::Problem),
    (status = 429, description = "the caller's key is over its rate limit", body = palisade_types::problem::Problem),
))]
pub(crate) async fn validate(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ClientIp(caller_ip): ClientIp,
    PresentedApiKey(caller_key): PresentedApiKey,
    ApiJson(body): ApiJson<ValidateApiKeyRequest>,
) -> Result<(HeaderMap, Json<ValidateApiKeyResponse>), ApiError> {
    let service = state.palisade.api_keys();
    let caller = service.validate(&caller_key, &[VALIDATE_SCOPE.to_owned()], Some(caller_ip), &meta).await?;
    let ip = match body.ip_address.as_deref() {
        Some(text) => {
            Some(text.parse().map_err(|_| ApiError::unprocessable("ip_address: not an IPv4 or IPv6 address"))?)
        }
        None => None,
    };
    // The presented key is the end client's: its refusals are about the client's address (as the
    // caller states it), never the caller's own — a resource server must not get itself blocked for
    // the clients it checks keys for.
    let client =
        palisade_core::audit::RequestMeta { ip: ip.map(|ip: std::net::IpAddr| ip.to_string()), ..meta.clone() };
    let answer = match service.validate(&body.api_key, &body.required_scopes, ip, &client).await {
        Ok(valid) => ValidateApiKeyResponse {
            valid: true,
            user_id: Some(valid.owner.to_string()),
            scopes: Some(valid.scopes),
            rate_limit_remaining: valid.rate_limit_remaining,
            error: None,
        },
        Err(e @ (ApiKeyError::Unavailable(_) | ApiKeyError::Internal(_))) => return Err(e.into()),
        Err(e) => ValidateApiKeyResponse {
            valid: false,
            user_id: None,
            scopes: None,
            rate_limit_remaining: matches!(e, ApiKeyError::RateLimited { .. }).then_some(0),
            error: Some(crate::error::api_key_code(&e).to_owned()),
        },
    };
    Ok((rate_limit_headers(&caller), Json(answer)))
}

/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` for a key that passed.
pub(crate) fn rate_limit_headers(key: &ValidatedApiKey) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let (Some(remaining), Some((limit, reset))) = (key.rate_limit_remaining, key.rate_limit) {
        headers.insert("ratelimit-limit", HeaderValue::from(limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(reset));
    }
    headers
}

fn limits_of(record: &ApiKeyRecord) -> RateLimitSpec {
    RateLimitSpec {
        requests_per_minute: record.per_minute,
        requests_per_hour: record.per_hour,
        requests_per_day: record.per_day,
    }
}

pub(crate) fn info(record: &ApiKeyRecord) -> ApiKeyInfo {
    ApiKeyInfo {
        api_key_id: record.id.to_string(),
        name: record.name.clone(),
        user_id: record.owner.to_string(),
        scopes: record.scopes.clone(),
        rate_limits: limits_of(record),
        ip_whitelist: record.ip_allow.clone(),
        created_at: rfc3339(record.created_at),
        expires_at: record.expires_at.map(rfc3339),
        last_used_at: record.last_used_at.map(rfc3339),
        revoked_at: record.revoked_at.map(rfc3339),
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}
