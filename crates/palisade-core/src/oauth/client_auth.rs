//! Client authentication at the token endpoint (RFC 6749 §2.3, OpenID Connect Core §9): a secret in
//! HTTP Basic (`client_secret_basic`) or the form (`client_secret_post`), a JWT signed with the
//! client's key (`private_key_jwt`, RFC 7523 §2.2 and §3), or nothing for a public client.
//!
//! - A client authenticates only with the method it registered: a secret sent in the form by a
//!   `client_secret_basic` client is refused, as is a secret from a `private_key_jwt` client.
//! - Every refusal is one answer (`invalid_client`); the reason is for the audit record. An unknown
//!   client costs the same keyed hash as a known one, so timing does not tell which ids exist.
//! - An assertion is verified with the client's public keys (RSA, EC P-256 or Ed25519; never HMAC
//!   and never `none`), registered (`jwks`) or fetched from its `jwks_uri` (`client_keys.rs`): `iss` and `sub` are the client, `aud` names this token endpoint
//!   or issuer, `exp` is in the future and at most [`MAX_ASSERTION_LIFETIME`] away, `iat`/`nbf`
//!   are not in the future, and its `jti` is used once: a replay within its lifetime is refused
//!   across every instance (a hot-store marker set only if absent).

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::client::{OAuthClient, OAuthClientError, OAuthClients, TokenAuthMethod};
use crate::store::HotKey;

/// The only `client_assertion_type` (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may be valid (its `exp` from now): bounds the replay markers kept. One
/// hour, as Okta allows: authlib's `PrivateKeyJWT`, for one, makes its assertions valid for an hour.
pub const MAX_ASSERTION_LIFETIME: time::Duration = time::Duration::minutes(60);
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY: time::Duration = time::Duration::seconds(60);
/// Longest assertion accepted.
const MAX_ASSERTION_LEN: usize = 8 * 1024;
/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// How a client presented itself at the token endpoint.
pub enum PresentedClient {
    /// HTTP Basic (`client_secret_basic`), both parts already form-urldecoded (RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: SecretString,
    },
    /// `client_id` and `client_secret` in the form (`client_secret_post`).
    Post {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: SecretString,
    },
    /// `client_assertion` with `client_assertion_type` jwt-bearer (`private_key_jwt`).
    Assertion {
        /// The `client_id` of the form, when given (it must then be the assertion's `sub`).
        client_id: Option<String>,
        /// The signed JWT.
        assertion: String,
    },
    /// Only `client_id` (a public client).
    Public {
        /// The client id.
        client_id: String,
    },
}

impl std::fmt::Debug for PresentedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { client_id, .. } => write!(f, "Basic({client_id}, <hidden>)"),
            Self::Post { client_id, .. } => write!(f, "Post({client_id}, <hidden>)"),
            Self::Assertion { client_id, .. } => write!(f, "Assertion({client_id:?}, <hidden>)"),
            Self::Public { client_id } => write!(f, "Public({client_id})"),
        }
    }
}

/// Why a client was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// `invalid_client` (RFC 6749 §5.2). The reason is for logs and the audit record only.
    #[error("invalid_client: {0}")]
    Invalid(&'static str),
    /// The registry or a store failed.
    #[error(transparent)]
    Registry(#[from] OAuthClientError),
}

impl From<crate::store::StoreError> for ClientAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Registry(e.into())
    }
}

/// The claims of a client assertion this module reads (`aud` is checked by jsonwebtoken).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    jti: String,
}

/// The assertion's `sub`, read without verifying it (to find the client whose keys verify it).
fn unverified_subject(assertion: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("sub")?.as_str().map(str::to_owned)
}

/// The algorithms an assertion may use: asymmetric only.
fn allowed(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    )
}

impl OAuthClients {
    /// Authenticates a client at the token endpoint. `audiences` are the values an assertion's `aud`
    /// may hold (the token endpoint's URL and the issuer).
    pub async fn authenticate(
        &self,
        presented: &PresentedClient,
        audiences: &[&str],
    ) -> Result<OAuthClient, ClientAuthError> {
        match presented {
            PresentedClient::Basic { client_id, secret } | PresentedClient::Post { client_id, secret } => {
                let method = if matches!(presented, PresentedClient::Basic { .. }) {
                    TokenAuthMethod::ClientSecretBasic
                } else {
                    TokenAuthMethod::ClientSecretPost
                };
                let client = self.find(client_id).await?;
                let Some(client) = client else {
                    // The same keyed hash as for a known client, so timing does not tell.
                    self.burn_a_hash(secret.expose_secret().as_bytes()).await?;
                    return Err(ClientAuthError::Invalid("unknown client"));
                };
                // A client without a secret (private_key_jwt) costs the same hash, so timing does not
                // tell its method either.
                let matches = if client.secret_hash.is_some() {
                    self.secret_matches(&client, secret.expose_secret().as_bytes()).await?
                } else {
                    self.burn_a_hash(secret.expose_secret().as_bytes()).await?;
                    false
                };
                if client.auth_method != method {
                    return Err(ClientAuthError::Invalid("the client is registered for another authentication method"));
                }
                if !matches {
                    return Err(ClientAuthError::Invalid("wrong client secret"));
                }
                Ok(client)
            }
            PresentedClient::Public { client_id } => {
                let client = self.find(client_id).await?;
                match client {
                    Some(c) if c.auth_method == TokenAuthMethod::None => Ok(c),
                    Some(_) => Err(ClientAuthError::Invalid("a confidential client must authenticate")),
                    None => Err(ClientAuthError::Invalid("unknown client")),
                }
            }
            PresentedClient::Assertion { client_id, assertion } => {
                if assertion.len() > MAX_ASSERTION_LEN {
                    return Err(ClientAuthError::Invalid("the client assertion is too long"));
                }
                let subject = unverified_subject(assertion)
                    .ok_or(ClientAuthError::Invalid("the client assertion is not a JWT with a sub"))?;
                if client_id.as_ref().is_some_and(|id| *id != subject) {
                    return Err(ClientAuthError::Invalid("client_id is not the assertion's sub"));
                }
                let client = self.find(&subject).await?.ok_or(ClientAuthError::Invalid("unknown client"))?;
                if client.auth_method != TokenAuthMethod::PrivateKeyJwt {
                    return Err(ClientAuthError::Invalid("the client is registered for another authentication method"));
                }
                self.verify_assertion(&client, assertion, audiences).await?;
                Ok(client)
            }
        }
    }

    /// Verifies `assertion` with `client`'s registered keys and spends its `jti`.
    async fn verify_assertion(
        &self,
        client: &OAuthClient,
        assertion: &str,
        audiences: &[&str],
    ) -> Result<(), ClientAuthError> {
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| ClientAuthError::Invalid("the client assertion's header is malformed"))?;
        if !allowed(header.alg) {
            return Err(ClientAuthError::Invalid("the client assertion's algorithm is not allowed"));
        }
        let set = match (&client.jwks, &client.jwks_uri) {
            (Some(jwks), _) => std::sync::Arc::new(
                serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(jwks)
                    .map_err(|_| ClientAuthError::Invalid("the client's registered keys are unreadable"))?,
            ),
            (None, Some(uri)) => {
                self.remote_keys().keys(uri, header.kid.as_deref()).await.map_err(ClientAuthError::Invalid)?
            }
            (None, None) => return Err(ClientAuthError::Invalid("the client has no registered keys")),
        };
        let jwk = match &header.kid {
            Some(kid) => set.find(kid),
            None if set.keys.len() == 1 => set.keys.first(),
            None => None,
        }
        .ok_or(ClientAuthError::Invalid("no key of the client matches the assertion's kid"))?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|_| ClientAuthError::Invalid("the client's registered key is unusable"))?;
        let mut validation = Validation::new(header.alg);
        // Time is checked below against the injected clock, not the system's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims = ["iss", "sub", "aud", "exp"].into_iter().map(String::from).collect();
        validation.set_audience(audiences);
        validation.set_issuer(&[client.client_id.as_str()]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
            .map_err(|_| ClientAuthError::Invalid("the client assertion did not verify"))?
            .claims;
        if claims.iss != client.client_id || claims.sub != client.client_id {
            return Err(ClientAuthError::Invalid("the client assertion's iss and sub are not the client"));
        }
        let now = self.clock().now();
        let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).ok();
        let exp = at(claims.exp).ok_or(ClientAuthError::Invalid("the client assertion's exp is out of range"))?;
        if exp + LEEWAY <= now {
            return Err(ClientAuthError::Invalid("the client assertion has expired"));
        }
        if exp > now + MAX_ASSERTION_LIFETIME + LEEWAY {
            return Err(ClientAuthError::Invalid("the client assertion is valid for too long"));
        }
        for early in [claims.nbf, claims.iat].into_iter().flatten() {
            if at(early).is_none_or(|t| t > now + LEEWAY) {
                return Err(ClientAuthError::Invalid("the client assertion is not valid yet"));
            }
        }
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(ClientAuthError::Invalid("the client assertion has no usable jti"));
        }
        // RFC 7523 §3: a jti is used once. Kept until the assertion could no longer be accepted.
        let marker = HotKey::new(&format!("oauth-client:{}", client.client_id), &format!("assertion:{}", claims.jti));
        let keep = (exp + LEEWAY - now).max(time::Duration::SECOND);
        if !self.hot().compare_and_set(&marker, None, b"1", keep).await? {
            return Err(ClientAuthError::Invalid("the client assertion was used before"));
        }
        Ok(())
    }
}
