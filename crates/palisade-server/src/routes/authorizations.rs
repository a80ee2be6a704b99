//! The applications a user authorized through the OAuth provider (`/auth/authorizations`): listed,
//! and revoked (the consent is forgotten and the sessions the application holds end, with their
//! refresh tokens).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_types::authorizations::{AuthorizationList, AuthorizationView};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{Authenticated, Meta};

/// The applications the caller consented to.
///
/// **Permissions** - `user`
#[utoipa::path(get, path = "/auth/authorizations", tag = "auth", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = AuthorizationList),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<AuthorizationList>, ApiError> {
    let consents = state.palisade.authorizer().consents(&principal).await?;
    Ok(Json(AuthorizationList {
        authorizations: consents
            .into_iter()
            .map(|(consent, client_name)| AuthorizationView {
                client_id: consent.client_id,
                client_name,
                scope: consent.scopes.join(" "),
                granted_at: palisade_core::compliance::rfc3339(consent.granted_at),
            })
            .collect(),
    }))
}

/// Revokes the caller's consent to an application and ends the sessions it holds for them.
///
/// **Permissions** - `user`
#[utoipa::path(delete, path = "/auth/authorizations/{client_id}", tag = "auth", params(("client_id" = String, Path)), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 204),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND: no consent nor session of this application", body = palisade_types::problem::Problem),
))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.palisade.authorizer().revoke_consent(&principal, &client_id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
