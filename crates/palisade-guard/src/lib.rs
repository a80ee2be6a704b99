//! A resource-server guard for axum applications that accept Palisade access tokens.
//!
//! - The JWK Set is fetched from the server's `/.well-known/jwks.json` and cached; a token signed with
//!   a key not in the cache triggers one re-fetch (at most once every [`MIN_REFETCH`]), so a rotation
//!   on the server is picked up without a restart.
//! - Verification is local (no call per request): the algorithm is the key's own (never the token
//!   header's choice), `typ` must be `at+jwt`, and `iss`, `aud`, `exp` and `nbf` are checked.
//! - [`Guard::require`] is an axum middleware that refuses requests without a valid token (401) or
//!   without the route's scopes (403), and hands the claims to handlers as an extension.
//!
//! Local verification cannot see a logout or a revoked token before the token expires (at most the
//! access-token lifetime, 15 minutes by default); [`Guard::with_remote_validation`] also asks the server
//! (`POST /tokens/validate`) for every token, and so sees them at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Shortest time between two JWKS fetches triggered by unknown keys (so forged `kid`s cannot make
/// the guard hammer the server).
pub const MIN_REFETCH: Duration = Duration::from_secs(10);

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// The user (or client) the token is for.
    pub sub: String,
    /// The session.
    pub sid: String,
    /// The token's id.
    pub jti: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
}

impl Claims {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// No `Authorization: Bearer` token.
    #[error("missing bearer token")]
    Missing,
    /// Malformed, forged, expired, for another issuer or audience, or signed by an unknown key.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token lacks a scope the route needs.
    #[error("insufficient scope: {0} required")]
    InsufficientScope(String),
    /// The JWK Set could not be fetched.
    #[error("could not fetch the JWK Set: {0}")]
    Jwks(String),
}

struct Keys {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
    fetched: Instant,
}

/// Verifies Palisade access tokens for one issuer and audience.
pub struct Guard {
    jwks_url: String,
    /// `POST /tokens/validate` and the API key (scope `tokens:validate`) to call it with, when every
    /// token is also checked by the server (sees logouts and revocations at once).
    remote: Option<(String, String)>,
    issuer: String,
    audience: String,
    http: reqwest::Client,
    /// The shortest time between two fetches of the JWK Set for unknown `kid`s ([`MIN_REFETCH`]).
    min_refetch: Duration,
    /// `std::sync::RwLock`: never held across an `.await`.
    keys: RwLock<Keys>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("issuer", &self.issuer).field("audience", &self.audience).finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard for tokens issued by the Palisade server at `base_url`, whose `PALISADE_ISSUER` is
    /// `issuer`, for `audience` (its `PALISADE_AUDIENCE`); fetches the JWK Set once now.
    pub async fn new(base_url: &str, issuer: &str, audience: &str) -> Result<Arc<Self>, GuardError> {
        Self::with_min_refetch(base_url, issuer, audience, MIN_REFETCH).await
    }

    /// Like [`Guard::new`], re-fetching the JWK Set for an unknown `kid` at most once every
    /// `min_refetch` instead of [`MIN_REFETCH`] (shorter in tests; longer to spare a busy server).
    pub async fn with_min_refetch(
        base_url: &str,
        issuer: &str,
        audience: &str,
        min_refetch: Duration,
    ) -> Result<Arc<Self>, GuardError> {
        let base = base_url.trim_end_matches('/');
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GuardError::Jwks(e.to_string()))?;
        let guard = Self {
            remote: None,
            jwks_url: format!("{base}/.well-known/jwks.json"),
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            http,
            min_refetch,
            keys: RwLock::new(Keys { by_kid: HashMap::new(), fetched: Instant::now() }),
        };
        guard.fetch().await?;
        Ok(Arc::new(guard))
    }

    /// Like [`Guard::new`], and every token that passes the local checks is also checked by the server
    /// (`POST /tokens/validate`, with `api_key`, which needs the `tokens:validate` scope): a logout, an
    /// ended session or a revoked token is refused at once, at the price of one call per request.
    pub async fn with_remote_validation(
        base_url: &str,
        issuer: &str,
        audience: &str,
        api_key: &str,
    ) -> Result<Arc<Self>, GuardError> {
        let local = Self::new(base_url, issuer, audience).await?;
        let mut guard = Arc::try_unwrap(local).map_err(|_| GuardError::Jwks("the guard is shared already".into()))?;
        guard.remote = Some((format!("{}/tokens/validate", base_url.trim_end_matches('/')), api_key.to_owned()));
        Ok(Arc::new(guard))
    }

    async fn remote_check(&self, token: &str) -> Result<(), GuardError> {
        let Some((url, api_key)) = &self.remote else { return Ok(()) };
        #[derive(Deserialize)]
        struct Answer {
            valid: bool,
            error: Option<String>,
        }
        let answer: Answer = self
            .http
            .post(url)
            .header("X-API-Key", api_key)
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| GuardError::Jwks(format!("remote validation: {e}")))?
            .json()
            .await
            .map_err(|e| GuardError::Jwks(format!("remote validation: {e}")))?;
        if answer.valid {
            Ok(())
        } else {
            Err(GuardError::Invalid(answer.error.unwrap_or_else(|| "refused by the server".into())))
        }
    }

    async fn fetch(&self) -> Result<(), GuardError> {
        let set: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| GuardError::Jwks(e.to_string()))?
            .json()
            .await
            .map_err(|e| GuardError::Jwks(e.to_string()))?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), jwk.common.key_algorithm) else { continue };
            let Ok(algorithm) = alg.to_string().parse::<Algorithm>() else { continue };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                by_kid.insert(kid, (algorithm, key));
            }
        }
        tracing::debug!(keys = by_kid.len(), "fetched the JWK Set");
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Keys { by_kid, fetched: Instant::now() };
        Ok(())
    }

    fn key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).by_kid.get(kid).cloned()
    }

    /// Verifies a token locally; an unknown `kid` re-fetches the JWK Set once (rate-limited).
    pub async fn verify(&self, token: &str) -> Result<Claims, GuardError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| GuardError::Invalid(e.to_string()))?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(GuardError::Invalid("not an access token (typ)".into()));
        }
        let kid = header.kid.ok_or_else(|| GuardError::Invalid("no kid".into()))?;
        let found = match self.key(&kid) {
            Some(found) => found,
            None => {
                let stale = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).fetched.elapsed()
                    >= self.min_refetch;
                if stale {
                    self.fetch().await?;
                }
                self.key(&kid).ok_or_else(|| GuardError::Invalid("unknown signing key".into()))?
            }
        };
        let (algorithm, key) = found;
        if header.alg != algorithm {
            return Err(GuardError::Invalid("the algorithm is not the key's".into()));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| GuardError::Invalid(e.to_string()))?;
        self.remote_check(token).await?;
        Ok(claims)
    }

    /// An axum middleware (for `axum::middleware::from_fn_with_state`) admitting only requests whose
    /// bearer token is valid and carries every scope in `scopes`; the [`Claims`] are put in the
    /// request's extensions.
    pub async fn require(
        State((guard, scopes)): State<(Arc<Guard>, &'static [&'static str])>,
        mut req: Request,
        next: Next,
    ) -> Response {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let outcome = match token {
            None => Err(GuardError::Missing),
            Some(token) => {
                guard.verify(&token).await.and_then(|claims| match scopes.iter().find(|s| !claims.has_scope(s)) {
                    Some(missing) => Err(GuardError::InsufficientScope((*missing).to_owned())),
                    None => Ok(claims),
                })
            }
        };
        match outcome {
            Ok(claims) => {
                req.extensions_mut().insert(claims);
                next.run(req).await
            }
            Err(e) => refusal(&e),
        }
    }
}

fn refusal(e: &GuardError) -> Response {
    let (status, code) = match e {
        GuardError::Missing | GuardError::Invalid(_) => (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
        GuardError::InsufficientScope(_) => (StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE"),
        GuardError::Jwks(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
    };
    let body = serde_json::json!({"status": status.as_u16(), "code": code, "title": status.canonical_reason(), "detail": match e {
        GuardError::InsufficientScope(scope) => format!("this route needs the `{scope}` scope"),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    }});
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    response
}
