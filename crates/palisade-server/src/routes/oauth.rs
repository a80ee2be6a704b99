//! The OAuth 2.0 back-channel endpoints (`/oauth2/*`): RFC 6749's own request and error shapes, not
//! the API's problem+json. The token endpoint (authorization code, refresh token, client
//! credentials), introspection (RFC 7662), revocation (RFC 7009), UserInfo and the discovery
//! document. The browser's side (`/oauth2/authorize`, `/oauth2/logout`) is `authorize.rs`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use palisade_core::oauth::PresentedClient;
use palisade_core::oauth::client_auth::JWT_BEARER_ASSERTION;
use palisade_core::oauth::token::{OAuthErrorCode, TokenEndpointError, TokenRequest};
use palisade_core::oauth::userinfo::UserinfoError;
use secrecy::{ExposeSecret as _, SecretString};

use crate::app::AppState;
use crate::extract::Meta;

/// Largest form accepted (a client assertion is the largest part).
const MAX_FORM: usize = 16 * 1024;

/// An RFC 6749 §5.2 error answer: JSON `{error, error_description}`, never cached; `invalid_client`
/// is 401 with `WWW-Authenticate`.
fn oauth_error(code: OAuthErrorCode, description: &str) -> Response {
    let status = if code == OAuthErrorCode::InvalidClient { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
    let body = serde_json::json!({"error": code.as_str(), "error_description": description});
    let mut response = (status, axum::Json(body)).into_response();
    no_store(response.headers_mut());
    if code == OAuthErrorCode::InvalidClient {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"palisade\""));
    }
    response
}

/// A failure of the server itself: 503 when a store is unreachable, else 500; the cause goes to
/// the log only. A throttled address is 429 with `Retry-After`.
fn server_error(error: &TokenEndpointError) -> Response {
    if let TokenEndpointError::Throttled { retry_after_secs } = error {
        let body = serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "too many failed client authentications from this address; retry later",
        });
        let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        no_store(response.headers_mut());
        if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let (status, code) = if error.is_unavailable() {
        tracing::warn!(%error, "failing closed: the token endpoint's store is unavailable");
        (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    } else {
        tracing::error!(%error, "the token endpoint failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
    };
    let body = serde_json::json!({"error": code, "error_description": "the server could not answer; try again later"});
    let mut response = (status, axum::Json(body)).into_response();
    no_store(response.headers_mut());
    response
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The form's parameters, each at most once (RFC 6749 §3.2: a repeated parameter is an error); a
/// parameter sent without a value counts as absent.
pub(crate) fn parse_form(body: &[u8]) -> Result<std::collections::HashMap<String, String>, String> {
    let mut form = std::collections::HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if form.contains_key(name.as_ref()) {
            return Err(format!("{name} is repeated"));
        }
        if !value.is_empty() {
            form.insert(name.into_owned(), value.into_owned());
        } else {
            form.insert(name.into_owned(), String::new());
        }
    }
    form.retain(|_, v| !v.is_empty());
    Ok(form)
}

/// The form of a request to an OAuth endpoint: `application/x-www-form-urlencoded` (anything else
/// is `invalid_request`), at most [`MAX_FORM`] bytes, each parameter once.
fn read_form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<std::collections::HashMap<String, String>, (OAuthErrorCode, String)> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        return Err((OAuthErrorCode::InvalidRequest, "the body must be application/x-www-form-urlencoded".into()));
    }
    if body.len() > MAX_FORM {
        return Err((OAuthErrorCode::InvalidRequest, "the request body is too large".into()));
    }
    parse_form(body).map_err(|problem| (OAuthErrorCode::InvalidRequest, problem))
}

/// `Authorization: Basic` as RFC 6749 §2.3.1 writes it: base64 of the form-urlencoded id and
/// secret, joined by `:`. `None` without the header; `Err` when it is malformed.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, SecretString)>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ())?;
    let Some((scheme, encoded)) = value.split_once(' ') else { return Err(()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded =
        zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| ())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| ())?;
    let (id, secret) = text.split_once(':').ok_or(())?;
    let decode = |part: &str| -> String {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (decode(id), zeroize::Zeroizing::new(decode(secret)));
    if id.is_empty() {
        return Err(());
    }
    Ok(Some((id, SecretString::from(secret.as_str()))))
}

/// How the client presented itself: exactly one method (RFC 6749 §2.3: "MUST NOT use more than one
/// authentication method in each request").
fn presented_client(
    headers: &HeaderMap,
    form: &mut std::collections::HashMap<String, String>,
) -> Result<PresentedClient, (OAuthErrorCode, &'static str)> {
    let basic = basic_credentials(headers)
        .map_err(|()| (OAuthErrorCode::InvalidClient, "the Authorization header is not valid Basic credentials"))?;
    let secret = form.remove("client_secret").map(SecretString::from);
    let assertion = form.remove("client_assertion");
    let assertion_type = form.remove("client_assertion_type");
    let client_id = form.remove("client_id");
    let methods = usize::from(basic.is_some()) + usize::from(secret.is_some()) + usize::from(assertion.is_some());
    if methods > 1 {
        return Err((OAuthErrorCode::InvalidRequest, "use one client authentication method, not several"));
    }
    if let Some((id, secret)) = basic {
        if client_id.as_ref().is_some_and(|c| *c != id) {
            return Err((OAuthErrorCode::InvalidRequest, "client_id differs from the Basic credentials"));
        }
        return Ok(PresentedClient::Basic { client_id: id, secret });
    }
    if let Some(assertion) = assertion {
        if assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
            return Err((
                OAuthErrorCode::InvalidRequest,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        return Ok(PresentedClient::Assertion { client_id, assertion });
    }
    if assertion_type.is_some() {
        return Err((OAuthErrorCode::InvalidRequest, "client_assertion_type without client_assertion"));
    }
    match (client_id, secret) {
        (Some(client_id), Some(secret)) => Ok(PresentedClient::Post { client_id, secret }),
        (None, Some(_)) => Err((OAuthErrorCode::InvalidRequest, "client_secret without client_id")),
        (Some(client_id), None) => Ok(PresentedClient::Public { client_id }),
        (None, None) => Err((OAuthErrorCode::InvalidClient, "the client did not authenticate")),
    }
}

/// The token endpoint (RFC 6749 §3.2): `application/x-www-form-urlencoded`, the client
/// authenticated by `client_secret_basic`, `client_secret_post` or `private_key_jwt` (or a public
/// client by `client_id` alone). Grants: `authorization_code` (with PKCE), `refresh_token` (rotated,
/// with reuse detection), `client_credentials`. Answers are never cached; errors are RFC 6749 §5.2's.
///
/// **Permissions** - an authenticated OAuth client
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "grant_type=authorization_code&code=…&redirect_uri=…&code_verifier=…, grant_type=refresh_token&refresh_token=…[&scope=…], or grant_type=client_credentials[&scope=…]; with client_id/client_secret, client_assertion/client_assertion_type, HTTP Basic, or client_id alone for a public client"), responses(
    (status = 200, description = "`{access_token, token_type: Bearer, expires_in, scope[, refresh_token][, id_token]}`", content_type = "application/json", body = Object),
    (status = 400, description = "`{error, error_description}`: invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope", content_type = "application/json", body = Object),
    (status = 401, description = "`{error: invalid_client}` with WWW-Authenticate", content_type = "application/json", body = Object),
    (status = 429, description = "`{error: temporarily_unavailable}` with Retry-After: too many failed client authentications from this address", content_type = "application/json", body = Object),
    (status = 503, description = "`{error: temporarily_unavailable}`", content_type = "application/json", body = Object),
))]
pub(crate) async fn token(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut form = match read_form(&headers, &body) {
        Ok(form) => form,
        Err((code, description)) => return oauth_error(code, &description),
    };
    let client = match presented_client(&headers, &mut form) {
        Ok(client) => client,
        Err((code, description)) => return oauth_error(code, description),
    };
    let mut request = TokenRequest::new(form.remove("grant_type").unwrap_or_default(), client);
    request.scope = form.remove("scope");
    request.code = form.remove("code");
    request.redirect_uri = form.remove("redirect_uri");
    request.code_verifier = form.remove("code_verifier");
    request.refresh_token = form.remove("refresh_token").map(SecretString::from);
    match state.palisade.token_endpoint().token(request, &meta).await {
        Ok(issued) => {
            let mut body = serde_json::Map::new();
            body.insert("access_token".into(), issued.access_token.expose_secret().into());
            body.insert("token_type".into(), issued.token_type.into());
            body.insert("expires_in".into(), issued.expires_in.into());
            body.insert("scope".into(), issued.scope.into());
            if let Some(refresh) = &issued.refresh_token {
                body.insert("refresh_token".into(), refresh.expose_secret().into());
            }
            if let Some(id_token) = issued.id_token {
                body.insert("id_token".into(), id_token.into());
            }
            let body = serde_json::Value::Object(body);
            let mut response = (StatusCode::OK, axum::Json(body)).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(TokenEndpointError::Refused { code, description }) => oauth_error(code, &description),
        Err(e) => server_error(&e),
    }
}

/// Reads an introspection or revocation request: a form with `token` (and `token_type_hint`,
/// which only narrows where to look and is ignored here: every token is looked for), and the client.
fn backchannel_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(PresentedClient, String), (OAuthErrorCode, String)> {
    let mut form = read_form(headers, body)?;
    let client = presented_client(headers, &mut form).map_err(|(code, description)| (code, description.to_owned()))?;
    let token = form.remove("token").ok_or((OAuthErrorCode::InvalidRequest, "token is required".to_owned()))?;
    Ok((client, token))
}

/// Token introspection (RFC 7662): whether an access token is active now and what it carries.
/// Only a confidential client that authenticates may ask. An inactive token — expired, revoked,
/// ended session, malformed, unknown — is `{"active": false}` and nothing more.
///
/// **Permissions** - an authenticated confidential OAuth client
#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "token=…[&token_type_hint=access_token], with the client's authentication"), responses(
    (status = 200, description = "`{active: true, scope, client_id, sub, exp, iat, jti, iss, aud, token_type}` or `{active: false}`", content_type = "application/json", body = Object),
    (status = 400, description = "`{error: invalid_request}`", content_type = "application/json", body = Object),
    (status = 401, description = "`{error: invalid_client}` with WWW-Authenticate", content_type = "application/json", body = Object),
    (status = 429, description = "`{error: temporarily_unavailable}` with Retry-After", content_type = "application/json", body = Object),
))]
pub(crate) async fn introspect(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (client, token) = match backchannel_request(&headers, &body) {
        Ok(request) => request,
        Err((code, description)) => return oauth_error(code, &description),
    };
    let answer = match state.palisade.token_endpoint().introspect(&client, &token, &meta).await {
        Ok(Some(active)) => serde_json::json!({
            "active": true,
            "scope": active.scope,
            "client_id": active.client_id,
            "sub": active.sub,
            "exp": active.exp.unix_timestamp(),
            "iat": active.iat.unix_timestamp(),
            "jti": active.jti,
            "iss": active.iss,
            "aud": active.aud,
            "token_type": "Bearer",
        }),
        Ok(None) => serde_json::json!({"active": false}),
        Err(TokenEndpointError::Refused { code, description }) => return oauth_error(code, &description),
        Err(e) => return server_error(&e),
    };
    let mut response = (StatusCode::OK, axum::Json(answer)).into_response();
    no_store(response.headers_mut());
    response
}

/// Token revocation (RFC 7009): the authenticated client revokes an access token it was issued, or
/// a refresh token of one of its grants (the grant's session ends with its access tokens);
/// introspection says inactive at once, on every instance. A token that is already invalid needs
/// nothing (200); a valid token issued to another client (or to a login) is `unauthorized_client`.
///
/// **Permissions** - an authenticated confidential OAuth client, for its own tokens
#[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth2", request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "token=…[&token_type_hint=access_token|refresh_token], with the client's authentication"), responses(
    (status = 200, description = "revoked, or nothing to revoke"),
    (status = 400, description = "`{error: invalid_request | unauthorized_client}`", content_type = "application/json", body = Object),
    (status = 401, description = "`{error: invalid_client}` with WWW-Authenticate", content_type = "application/json", body = Object),
    (status = 429, description = "`{error: temporarily_unavailable}` with Retry-After", content_type = "application/json", body = Object),
))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (client, token) = match backchannel_request(&headers, &body) {
        Ok(request) => request,
        Err((code, description)) => return oauth_error(code, &description),
    };
    match state.palisade.token_endpoint().revoke(&client, &token, &meta).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(response.headers_mut());
            response
        }
        Err(TokenEndpointError::Refused { code, description }) => oauth_error(code, &description),
        Err(e) => server_error(&e),
    }
}

/// The UserInfo endpoint (OpenID Connect Core §5.3): the claims the access token's scopes allow
/// (`sub`; `preferred_username` with `profile`; `email` with `email`). The token must be one issued
/// to a client for a user, with `openid`; errors are RFC 6750's, in `WWW-Authenticate`.
///
/// **Permissions** - a Bearer access token of a user's grant, with `openid`
#[utoipa::path(get, path = "/oauth2/userinfo", tag = "oauth2", security(("bearer" = [])), responses(
    (status = 200, description = "`{sub, preferred_username?, email?}`", content_type = "application/json", body = Object),
    (status = 401, description = "no token, or an invalid one: `WWW-Authenticate: Bearer error=\"invalid_token\"`"),
    (status = 403, description = "`WWW-Authenticate: Bearer error=\"insufficient_scope\"`"),
    (status = 503, description = "a store is unavailable"),
))]
pub(crate) async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer_userinfo(&state, &headers, None).await
}

/// UserInfo by POST (OpenID Connect Core §5.3.1): the token in the `Authorization` header, or as the
/// form parameter `access_token` (RFC 6750 §2.2) — not both.
///
/// **Permissions** - a Bearer access token of a user's grant, with `openid`
#[utoipa::path(post, path = "/oauth2/userinfo", tag = "oauth2", security(("bearer" = [])), request_body(content_type = "application/x-www-form-urlencoded", content = String, description = "optional: access_token=…"), responses(
    (status = 200, description = "`{sub, preferred_username?, email?}`", content_type = "application/json", body = Object),
    (status = 400, description = "`WWW-Authenticate: Bearer error=\"invalid_request\"`: the token given twice, or a malformed form"),
    (status = 401, description = "no token, or an invalid one: `WWW-Authenticate: Bearer error=\"invalid_token\"`"),
    (status = 403, description = "`WWW-Authenticate: Bearer error=\"insufficient_scope\"`"),
))]
pub(crate) async fn userinfo_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let in_body = if body.is_empty() {
        None
    } else {
        match read_form(&headers, &body) {
            Ok(mut form) => form.remove("access_token"),
            Err(_) => {
                return bearer_challenge(
                    StatusCode::BAD_REQUEST,
                    "Bearer realm=\"palisade\", error=\"invalid_request\"",
                );
            }
        }
    };
    answer_userinfo(&state, &headers, in_body).await
}

fn bearer_challenge(status: StatusCode, value: &'static str) -> Response {
    let mut response = status.into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    no_store(response.headers_mut());
    response
}

async fn answer_userinfo(state: &AppState, headers: &HeaderMap, in_body: Option<String>) -> Response {
    let in_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let bearer = match (in_header, in_body) {
        (Some(_), Some(_)) => {
            return bearer_challenge(StatusCode::BAD_REQUEST, "Bearer realm=\"palisade\", error=\"invalid_request\"");
        }
        (Some(token), None) | (None, Some(token)) => Some(token),
        (None, None) => None,
    };
    let Some(bearer) = bearer else {
        return bearer_challenge(StatusCode::UNAUTHORIZED, "Bearer realm=\"palisade\"");
    };
    match state.palisade.token_endpoint().userinfo(&bearer).await {
        Ok(claims) => {
            let mut response = (StatusCode::OK, axum::Json(serde_json::Value::Object(claims))).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(UserinfoError::InvalidToken) => {
            bearer_challenge(StatusCode::UNAUTHORIZED, "Bearer realm=\"palisade\", error=\"invalid_token\"")
        }
        Err(UserinfoError::InsufficientScope) => bearer_challenge(
            StatusCode::FORBIDDEN,
            "Bearer realm=\"palisade\", error=\"insufficient_scope\", scope=\"openid\"",
        ),
        Err(UserinfoError::Server(e)) => {
            let unavailable = matches!(e, palisade_core::auth::AuthError::Unavailable(_));
            tracing::error!(error = %e, "userinfo failed");
            let status = if unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
            let mut response = status.into_response();
            no_store(response.headers_mut());
            response
        }
    }
}

/// The provider's metadata (OpenID Connect Discovery 1.0, RFC 8414): exactly what is implemented.
///
/// **Permissions** - none
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth2", responses(
    (status = 200, description = "the metadata document", content_type = "application/json", body = Object),
))]
pub(crate) async fn discovery(State(state): State<AppState>) -> Response {
    let endpoint = state.palisade.token_endpoint();
    let issuer = endpoint.url();
    let issuer = issuer.strip_suffix("/oauth2/token").unwrap_or(&issuer);
    let document = palisade_core::oauth::discovery::metadata(issuer, state.palisade.signing_keys().algorithm());
    let mut response = axum::Json(document).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("my%3Aclient:s%2Bcr%20t+x");
        let (id, secret) = basic_credentials(&headers(&format!("Basic {encoded}"))).unwrap().unwrap();
        assert_eq!(id, "my:client");
        assert_eq!(secret.expose_secret(), "s+cr t x");
        assert!(basic_credentials(&HeaderMap::new()).unwrap().is_none());
        for bad in [
            "Bearer abc",
            "Basic !!!",
            "Basic",
            &format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("no-colon")),
        ] {
            assert!(basic_credentials(&headers(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_repeated_parameter_is_refused_and_an_empty_one_is_absent() {
        assert!(parse_form(b"grant_type=a&grant_type=b").is_err());
        let form = parse_form(b"grant_type=client_credentials&scope=").unwrap();
        assert_eq!(form.get("grant_type").map(String::as_str), Some("client_credentials"));
        assert!(!form.contains_key("scope"));
    }

    #[test]
    fn one_authentication_method_only() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("id:secret");
        let mut form = parse_form(b"client_secret=x&client_id=id").unwrap();
        assert!(presented_client(&headers(&format!("Basic {encoded}")), &mut form).is_err());
        let mut form = parse_form(b"client_id=id&client_assertion=a.b.c").unwrap();
        assert!(presented_client(&HeaderMap::new(), &mut form).is_err(), "an assertion needs its type");
        let mut form = parse_form(b"client_id=id&client_secret=s").unwrap();
        assert!(matches!(presented_client(&HeaderMap::new(), &mut form), Ok(PresentedClient::Post { .. })));
        let mut form = parse_form(b"client_id=id").unwrap();
        assert!(matches!(presented_client(&HeaderMap::new(), &mut form), Ok(PresentedClient::Public { .. })));
        let mut form = parse_form(b"").unwrap();
        assert!(presented_client(&HeaderMap::new(), &mut form).is_err());
    }
}
