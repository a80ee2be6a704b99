//! Administration: accounts and everyone's API keys. Every route needs the `admin` scope, checked by
//! the service.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use palisade_core::user::UserId;
use palisade_types::admin::{UserList, UserSummary};
use palisade_types::api_keys::ApiKeyList;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{Authenticated, Meta};

/// Paging of `GET /admin/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct Page {
    /// Users after this id.
    after: Option<String>,
    /// At most this many (1–1000, default 100).
    limit: Option<u32>,
}

/// Accounts, ordered by id.
///
/// **Permissions** - `admin`
#[utoipa::path(get, path = "/admin/users", tag = "admin", security(("bearer" = []), ("api_key" = [])), params(Page), responses((status = 200, body = UserList)))]
pub(crate) async fn users(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(page): Query<Page>,
) -> Result<Json<UserList>, ApiError> {
    let after =
        page.after.as_deref().map(UserId::parse).transpose().map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let users = state.palisade.auth().admin_list_users(&principal, after, limit).await?;
    let users = users
        .into_iter()
        .map(|u| UserSummary {
            user_id: u.id.to_string(),
            username: u.username.to_string(),
            email: u.email.map(|e| e.to_string()),
            locked: u.locked,
            admin: u.admin,
            created_at: u.created_at.format(&Rfc3339).unwrap_or_default(),
        })
        .collect();
    Ok(Json(UserList { users }))
}

/// Locks an account: its sessions end and it cannot log in until unlocked.
///
/// **Permissions** - `admin`
#[utoipa::path(post, path = "/admin/users/{id}/lock", tag = "admin", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path)), responses((status = 204), (status = 404, body = palisade_types::problem::Problem)))]
pub(crate) async fn lock(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_locked(&state, &meta, &principal, &id, true).await
}

/// Unlocks an account.
///
/// **Permissions** - `admin`
#[utoipa::path(post, path = "/admin/users/{id}/unlock", tag = "admin", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path)), responses((status = 204), (status = 404, body = palisade_types::problem::Problem)))]
pub(crate) async fn unlock(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_locked(&state, &meta, &principal, &id, false).await
}

/// The one body of `lock` and `unlock`.
async fn set_locked(
    state: &AppState,
    meta: &palisade_core::audit::RequestMeta,
    principal: &palisade_core::auth::Principal,
    id: &str,
    locked: bool,
) -> Result<StatusCode, ApiError> {
    let id = UserId::parse(id).map_err(|_| ApiError::NotFound)?;
    state.palisade.auth().admin_set_locked(principal, id, locked, meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everyone's API keys (never their secrets).
///
/// **Permissions** - `admin`
#[utoipa::path(get, path = "/admin/api-keys", tag = "admin", security(("bearer" = []), ("api_key" = [])), responses((status = 200, body = ApiKeyList)))]
pub(crate) async fn api_keys(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<ApiKeyList>, ApiError> {
    let keys = state.palisade.api_keys().admin_list(&principal, 10_000).await?;
    Ok(Json(ApiKeyList { api_keys: keys.iter().map(crate::routes::api_keys::info).collect() }))
}

/// Revokes anyone's API key.
///
/// **Permissions** - `admin`
#[utoipa::path(delete, path = "/admin/api-keys/{id}", tag = "admin", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path)), responses((status = 204), (status = 404, body = palisade_types::problem::Problem)))]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = uuid::Uuid::try_parse(&id).map_err(|_| ApiError::NotFound)?;
    state.palisade.api_keys().admin_revoke(&principal, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes one access token by its `jti`: refused at once on this instance, on the others within
/// `PALISADE_SESSION_CACHE_MS`. Its session and other tokens go on (end the session for those).
///
/// **Permissions** - `admin`
#[utoipa::path(post, path = "/admin/tokens/revoke", tag = "admin", security(("bearer" = []), ("api_key" = [])), request_body = palisade_types::admin::RevokeTokenRequest, responses(
    (status = 204, description = "revoked (or already expired)"),
    (status = 401, description = "not a token of this server", body = palisade_types::problem::Problem),
))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    crate::extract::ApiJson(body): crate::extract::ApiJson<palisade_types::admin::RevokeTokenRequest>,
) -> Result<StatusCode, ApiError> {
    state.palisade.auth().admin_revoke_access_token(&principal, &body.token, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
