//! Public keys: the JWK Set that verifies every access token still alive.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::error::ApiError;

/// The JWK Set of every key that can still verify a live token (HS256 keys are never published).
///
/// **Permissions** - none
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys", responses((status = 200, description = "RFC 7517 JWK Set", body = Object)))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let set = state.palisade.signing_keys().jwks();
    Ok(([(header::CACHE_CONTROL, "public, max-age=60")], Json(set)))
}
