//! The OAuth client registry over HTTP (`/admin/clients`): parse, call one `OAuthClients` method,
//! shape the answer. The same shapes serve `palisade client create/list`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use palisade_core::oauth::{ClientKind, ClientRegistration, OAuthClient};
use palisade_types::clients::{ClientCreated, ClientList, ClientRequest, ClientView};
use secrecy::ExposeSecret as _;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, Meta};

/// A client as the API shows it (never its secret or its hash).
pub fn client_view(c: OAuthClient) -> ClientView {
    ClientView {
        client_id: c.client_id,
        client_name: c.name,
        client_type: c.kind.as_str().into(),
        redirect_uris: c.redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris,
        grant_types: c.grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
        scope: c.scopes.join(" "),
        token_endpoint_auth_method: c.auth_method.as_str().into(),
        jwks: c.jwks.and_then(|text| serde_json::from_str(&text).ok()),
        jwks_uri: c.jwks_uri,
        created_at: palisade_core::compliance::rfc3339(c.created_at),
    }
}

/// A request body as a registration; an unknown `client_type` is a 422.
pub fn registration(body: ClientRequest) -> Result<ClientRegistration, ApiError> {
    let kind = match body.client_type.as_deref() {
        None | Some("confidential") => ClientKind::Confidential,
        Some("public") => ClientKind::Public,
        Some(other) => {
            return Err(ApiError::unprocessable(format!("client_type: `{other}` is not confidential or public")));
        }
    };
    Ok(ClientRegistration {
        name: body.client_name,
        kind,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        grant_types: body.grant_types,
        scopes: body
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        auth_method: body.token_endpoint_auth_method,
        jwks: body.jwks,
        jwks_uri: body.jwks_uri,
    })
}

/// Registers an OAuth client. Its secret (for `client_secret_basic` and `client_secret_post`) is in
/// this answer only; Palisade keeps a keyed hash.
///
/// **Permissions** - `admin`
#[utoipa::path(post, path = "/admin/clients", tag = "admin", security(("bearer" = []), ("api_key" = [])), request_body = ClientRequest, responses(
    (status = 201, body = ClientCreated),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR naming the field", body = palisade_types::problem::Problem),
))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<ClientRequest>,
) -> Result<(StatusCode, Json<ClientCreated>), ApiError> {
    let created = state.palisade.oauth_clients().register(&principal, &registration(body)?, &meta).await?;
    Ok((
        StatusCode::CREATED,
        Json(ClientCreated {
            client: client_view(created.client),
            client_secret: created.secret.map(|s| s.expose_secret().to_owned()),
        }),
    ))
}

/// Which clients to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    /// Clients after this id.
    after: Option<String>,
    /// At most this many (1–1000, default 100).
    limit: Option<u32>,
}

/// Registered OAuth clients, ordered by id.
///
/// **Permissions** - `admin`
#[utoipa::path(get, path = "/admin/clients", tag = "admin", params(Page), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = ClientList),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(page): Query<Page>,
) -> Result<Json<ClientList>, ApiError> {
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let clients = state.palisade.oauth_clients().list(&principal, page.after.as_deref(), limit).await?;
    Ok(Json(ClientList { clients: clients.into_iter().map(client_view).collect() }))
}

/// One OAuth client.
///
/// **Permissions** - `admin`
#[utoipa::path(get, path = "/admin/clients/{id}", tag = "admin", params(("id" = String, Path)), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = ClientView),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND", body = palisade_types::problem::Problem),
))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(client_view(state.palisade.oauth_clients().get(&principal, &id).await?)))
}

/// Deletes an OAuth client.
///
/// **Permissions** - `admin`
#[utoipa::path(delete, path = "/admin/clients/{id}", tag = "admin", params(("id" = String, Path)), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 204),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND", body = palisade_types::problem::Problem),
))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.palisade.oauth_clients().delete(&principal, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
