//! The registry of OAuth 2.0 clients: who may ask for tokens, how they authenticate, where they may
//! be sent back to, and for what.
//!
//! - **Confidential** clients authenticate at the token endpoint with a secret (`client_secret_basic`,
//!   `client_secret_post`) or a signed JWT (`private_key_jwt`, with `jwks` or `jwks_uri`).
//!   **Public** clients (browser and native apps) cannot keep a secret: `none`, PKCE always.
//! - A secret is 256 random bits, shown once at registration; only a keyed hash (HMAC-SHA256 under a
//!   data key, as for API keys) is stored, and it is compared in constant time.
//! - Redirect URIs are matched exactly (no wildcard, no prefix). They are absolute, without a
//!   fragment, `https` — or `http` on a loopback address (RFC 8252 §7.3), or a private-use scheme
//!   with a reverse-domain name for a public native app (RFC 8252 §7.1).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde_json::Value;
use time::OffsetDateTime;

use crate::audit::{AuditError, AuditEvent, AuditKind, AuditLog, Outcome, RequestMeta};
use crate::auth::{AuthError, Principal, SCOPE_ADMIN};
use crate::clock::Clock;
use crate::crypto::{CryptoError, Keyring};
use crate::store::{DurableStore, HotStore, StoreError};
use crate::user::UserId;

/// The label of the keyed hash of client secrets.
const SECRET_HASH_LABEL: &[u8] = b"palisade/oauth-client-secret/v1";
/// Most redirect URIs (or post-logout redirect URIs) per client.
const MAX_URIS: usize = 20;
/// Longest URI accepted.
const MAX_URI_LEN: usize = 2000;
/// Most scopes per client.
const MAX_SCOPES: usize = 50;
/// Longest client name.
const MAX_NAME: usize = 100;
/// Largest `jwks` document, serialized.
const MAX_JWKS: usize = 16 * 1024;

/// Whether a client can keep a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A server-side application: it authenticates at the token endpoint.
    Confidential,
    /// A browser or native application: it cannot authenticate; PKCE protects its codes.
    Public,
}

impl ClientKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Confidential, Self::Public].into_iter().find(|k| k.as_str() == name)
    }
}

/// A grant type a client may use at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantType {
    /// `authorization_code` (with PKCE).
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials` (confidential clients only).
    ClientCredentials,
}

impl GrantType {
    /// Every grant type, in the order they are listed.
    pub const ALL: [GrantType; 3] = [Self::AuthorizationCode, Self::RefreshToken, Self::ClientCredentials];

    /// The RFC 6749 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// Parses an RFC 6749 name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

/// How a client authenticates at the token endpoint (OpenID Connect Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
    /// No authentication (public clients).
    None,
}

impl TokenAuthMethod {
    /// Every method.
    pub const ALL: [TokenAuthMethod; 4] =
        [Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt, Self::None];

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// Parses a registered name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Whether the method uses a client secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// A registered client.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// Its id (a random UUID, as text).
    pub client_id: String,
    /// A name for people (shown on the consent page).
    pub name: String,
    /// Confidential or public.
    pub kind: ClientKind,
    /// The keyed hash of its secret (methods that use one).
    pub secret_hash: Option<Vec<u8>>,
    /// The data key that made `secret_hash`.
    pub hash_key_id: Option<uuid::Uuid>,
    /// Where authorization responses may be sent, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the user back, matched exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// The grants it may use.
    pub grant_types: Vec<GrantType>,
    /// The scopes it may be given.
    pub scopes: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub auth_method: TokenAuthMethod,
    /// Its public keys (a JWK Set document), for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Where its public keys are published, for `private_key_jwt`.
    pub jwks_uri: Option<String>,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// Who registered it (`None`: the command line).
    pub created_by: Option<UserId>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("secret_hash", &self.secret_hash.as_ref().map(|_| "<hidden>"))
            .field("auth_method", &self.auth_method)
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

/// A client as an administrator registers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRegistration {
    /// A name for people.
    pub name: String,
    /// Confidential or public.
    pub kind: ClientKind,
    /// Redirect URIs (required with `authorization_code`).
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// The grants (none given: `authorization_code` and `refresh_token`).
    pub grant_types: Vec<String>,
    /// The scopes it may be given (none given: `openid profile email`).
    pub scopes: Vec<String>,
    /// How it authenticates (none given: `client_secret_basic`, or `none` for a public client).
    pub auth_method: Option<String>,
    /// Its JWK Set, for `private_key_jwt`.
    pub jwks: Option<Value>,
    /// Its JWK Set's URL, for `private_key_jwt`.
    pub jwks_uri: Option<String>,
}

/// A client just registered, with its secret (shown this once).
#[derive(Debug)]
pub struct NewClient {
    /// The client.
    pub client: OAuthClient,
    /// Its secret, for the methods that use one.
    pub secret: Option<SecretString>,
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthClientError {
    /// The caller may not do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A field is wrong; `message` says how.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such client.
    #[error("no such client")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key of the secrets' hashes could not be had.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The audit chain could not take the event.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The system's random generator failed.
    #[error("the random generator failed")]
    Random,
}

fn invalid(field: &'static str, message: impl Into<String>) -> OAuthClientError {
    OAuthClientError::Invalid { field, message: message.into() }
}

/// Whether `scope` is one of Palisade's own: what its sessions and API keys carry (`user`,
/// `password:change`, `mfa:enroll`) and its administrative scopes. A token issued to a client must
/// never be able to act on a user's account or administer Palisade.
fn is_palisade_scope(scope: &str) -> bool {
    [SCOPE_ADMIN, crate::auth::SCOPE_USER, crate::auth::SCOPE_PASSWORD_CHANGE, crate::auth::SCOPE_MFA_ENROLL]
        .contains(&scope)
        || ["crypto:", "monitoring:", "compliance:"].iter().any(|p| scope.starts_with(p))
}

/// Checks one redirect URI (see the module's documentation). `native` allows private-use schemes.
fn redirect_uri(field: &'static str, uri: &str, native: bool) -> Result<String, OAuthClientError> {
    if uri.is_empty() || uri.len() > MAX_URI_LEN {
        return Err(invalid(field, format!("each URI is 1 to {MAX_URI_LEN} characters")));
    }
    if uri.contains('*') {
        return Err(invalid(field, format!("`{uri}`: wildcards are not allowed; URIs are matched exactly")));
    }
    let parsed = url::Url::parse(uri).map_err(|e| invalid(field, format!("`{uri}` is not an absolute URI ({e})")))?;
    if parsed.fragment().is_some() {
        return Err(invalid(field, format!("`{uri}` has a fragment (RFC 6749 §3.1.2)")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(field, format!("`{uri}` holds credentials")));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(uri.to_owned()),
        "http" if loopback => Ok(uri.to_owned()),
        "http" => Err(invalid(field, format!("`{uri}`: plain http is allowed only on a loopback address"))),
        scheme if native && scheme.contains('.') => Ok(uri.to_owned()),
        scheme => Err(invalid(
            field,
            format!(
                "`{uri}`: the scheme `{scheme}` is not https; a public native app may use a private-use scheme \
                 named after a domain it owns (com.example.app:/callback)"
            ),
        )),
    }
}

fn uris(field: &'static str, list: &[String], native: bool) -> Result<Vec<String>, OAuthClientError> {
    if list.len() > MAX_URIS {
        return Err(invalid(field, format!("at most {MAX_URIS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for uri in list {
        let uri = redirect_uri(field, uri, native)?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// Checks a registration and turns it into the client's settings (all but id, secret and dates).
fn validate(reg: &ClientRegistration) -> Result<OAuthClient, OAuthClientError> {
    let name = reg.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(invalid("client_name", format!("is required: 1 to {MAX_NAME} printable characters")));
    }
    let public = reg.kind == ClientKind::Public;
    let redirect_uris = uris("redirect_uris", &reg.redirect_uris, public)?;
    let post_logout_redirect_uris = uris("post_logout_redirect_uris", &reg.post_logout_redirect_uris, public)?;

    let names = if reg.grant_types.is_empty() {
        vec!["authorization_code".to_owned(), "refresh_token".to_owned()]
    } else {
        reg.grant_types.clone()
    };
    let mut grant_types = Vec::new();
    for name in &names {
        let grant = GrantType::parse(name).ok_or_else(|| {
            invalid("grant_types", format!("`{name}` is not authorization_code, refresh_token or client_credentials"))
        })?;
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    grant_types.sort();
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(invalid("redirect_uris", "at least one is required with the authorization_code grant"));
    }
    if grant_types.contains(&GrantType::RefreshToken) && !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(invalid("grant_types", "refresh_token needs authorization_code (refresh tokens come from it)"));
    }
    if public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(invalid("grant_types", "client_credentials needs a confidential client"));
    }

    let scopes = if reg.scopes.is_empty() {
        vec!["openid".to_owned(), "profile".to_owned(), "email".to_owned()]
    } else {
        let mut scopes: Vec<String> = Vec::new();
        for scope in &reg.scopes {
            let valid = !scope.is_empty()
                && scope.len() <= 128
                && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(invalid("scope", format!("`{scope}` is not a scope token (RFC 6749 §3.3)")));
            }
            if is_palisade_scope(scope) {
                return Err(invalid(
                    "scope",
                    format!(
                        "`{scope}` is one of Palisade's own scopes (its sessions and administration); no client \
                         may be given it"
                    ),
                ));
            }
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    };
    if scopes.len() > MAX_SCOPES {
        return Err(invalid("scope", format!("at most {MAX_SCOPES}")));
    }

    let auth_method = match reg.auth_method.as_deref() {
        None if public => TokenAuthMethod::None,
        None => TokenAuthMethod::ClientSecretBasic,
        Some(name) => TokenAuthMethod::parse(name).ok_or_else(|| {
            invalid(
                "token_endpoint_auth_method",
                format!("`{name}` is not client_secret_basic, client_secret_post, private_key_jwt or none"),
            )
        })?,
    };
    match (public, auth_method) {
        (true, TokenAuthMethod::None)
        | (false, TokenAuthMethod::ClientSecretBasic)
        | (false, TokenAuthMethod::ClientSecretPost)
        | (false, TokenAuthMethod::PrivateKeyJwt) => {}
        (true, _) => return Err(invalid("token_endpoint_auth_method", "a public client cannot authenticate: none")),
        (false, _) => {
            return Err(invalid("token_endpoint_auth_method", "a confidential client must authenticate: not none"));
        }
    }
    let (jwks, jwks_uri) = match (auth_method, &reg.jwks, &reg.jwks_uri) {
        (TokenAuthMethod::PrivateKeyJwt, Some(_), Some(_)) | (TokenAuthMethod::PrivateKeyJwt, None, None) => {
            return Err(invalid("jwks", "private_key_jwt needs exactly one of jwks and jwks_uri"));
        }
        (TokenAuthMethod::PrivateKeyJwt, Some(jwks), None) => {
            super::client_keys::check_public_key_set(jwks).map_err(|reason| invalid("jwks", reason))?;
            let text = jwks.to_string();
            if text.len() > MAX_JWKS {
                return Err(invalid("jwks", format!("is {} bytes; at most {MAX_JWKS}", text.len())));
            }
            (Some(text), None)
        }
        (TokenAuthMethod::PrivateKeyJwt, None, Some(uri)) => (None, Some(redirect_uri("jwks_uri", uri, false)?)),
        (_, None, None) => (None, None),
        (_, _, _) => return Err(invalid("jwks", "jwks and jwks_uri go only with private_key_jwt")),
    };
    Ok(OAuthClient {
        client_id: String::new(),
        name: name.to_owned(),
        kind: reg.kind,
        secret_hash: None,
        hash_key_id: None,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes,
        auth_method,
        jwks,
        jwks_uri,
        created_at: OffsetDateTime::UNIX_EPOCH,
        created_by: None,
    })
}

/// How long a client read from the store is trusted on this instance: a deletion on another instance
/// is seen within it (the same bound as the session cache's default). The entry holds the client's
/// keyed hash, never a secret.
const CLIENT_CACHE_TTL: time::Duration = time::Duration::seconds(1);

/// The client registry, and the authentication of clients (`client_auth.rs`).
pub struct OAuthClients {
    cache: crate::cache::TtlCache<String, OAuthClient>,
    /// The keys fetched from clients' `jwks_uri`s.
    remote_keys: super::client_keys::RemoteKeySets,
    store: Arc<dyn DurableStore>,
    hot: Arc<dyn HotStore>,
    keyring: Arc<Keyring>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
}

impl OAuthClients {
    /// A registry over its ports. Without a `fetcher`, clients registered with a `jwks_uri` cannot
    /// authenticate.
    pub fn new(
        store: Arc<dyn DurableStore>,
        hot: Arc<dyn HotStore>,
        keyring: Arc<Keyring>,
        audit: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
        fetcher: Option<Arc<dyn super::client_keys::KeySetFetcher>>,
    ) -> Self {
        Self {
            cache: crate::cache::TtlCache::new(CLIENT_CACHE_TTL),
            remote_keys: super::client_keys::RemoteKeySets::new(fetcher, clock.clone()),
            store,
            hot,
            keyring,
            audit,
            clock,
        }
    }

    /// A client by id, through the one-second cache (every token, introspection and authorization
    /// request reads its client).
    pub(crate) async fn find(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        let now = self.clock.now();
        if let Some(client) = self.cache.get(&client_id.to_owned(), now) {
            return Ok(Some(client));
        }
        let client = self.store.oauth_client(client_id).await?;
        if let Some(client) = &client {
            self.cache.put(client.client_id.clone(), client.clone(), now);
        }
        Ok(client)
    }

    pub(super) fn store(&self) -> &Arc<dyn DurableStore> {
        &self.store
    }

    pub(super) fn hot(&self) -> &Arc<dyn HotStore> {
        &self.hot
    }

    pub(super) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(super) fn remote_keys(&self) -> &super::client_keys::RemoteKeySets {
        &self.remote_keys
    }

    /// Spends the cost of checking a secret without a client (an unknown id).
    pub(super) async fn burn_a_hash(&self, secret: &[u8]) -> Result<(), OAuthClientError> {
        self.keyring.keyed_hash(SECRET_HASH_LABEL, None, secret).await?;
        Ok(())
    }

    /// Registers a client (`admin` scope). Audited as `oauth.client_created`.
    pub async fn register(
        &self,
        principal: &Principal,
        registration: &ClientRegistration,
        meta: &RequestMeta,
    ) -> Result<NewClient, OAuthClientError> {
        principal.require_scope(SCOPE_ADMIN)?;
        self.register_as(Some(principal.user_id), &principal.actor(), registration, meta).await
    }

    /// Registers a client for `actor` (the command line: an operator with access to the store).
    pub async fn register_as(
        &self,
        by: Option<UserId>,
        actor: &str,
        registration: &ClientRegistration,
        meta: &RequestMeta,
    ) -> Result<NewClient, OAuthClientError> {
        let mut client = validate(registration)?;
        client.client_id = uuid::Uuid::new_v4().to_string();
        // At the store's precision, so the answer is what a read gives back.
        let now = self.clock.now();
        client.created_at = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
        client.created_by = by;
        let secret = if client.auth_method.uses_secret() {
            let mut random = zeroize::Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(random.as_mut()).map_err(|_| OAuthClientError::Random)?;
            let secret = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.encode(random.as_ref()));
            let (key_id, mac) = self.keyring.keyed_hash(SECRET_HASH_LABEL, None, secret.as_bytes()).await?;
            client.secret_hash = Some(mac.to_vec());
            client.hash_key_id = Some(key_id);
            Some(SecretString::from(secret.as_str()))
        } else {
            None
        };
        self.store.insert_oauth_client(&client).await?;
        self.audit
            .append(
                AuditEvent::new(AuditKind::OAuthClientCreated, Outcome::Success)
                    .actor(actor)
                    .subject(client.client_id.clone())
                    .request(meta.clone())
                    .detail("name", client.name.clone())
                    .detail("kind", client.kind.as_str())
                    .detail("token_endpoint_auth_method", client.auth_method.as_str())
                    .detail("grant_types", client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>()),
            )
            .await?;
        Ok(NewClient { client, secret })
    }

    /// Every client, by id, those after `after`, at most `limit` (`admin` scope).
    pub async fn list(
        &self,
        principal: &Principal,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OAuthClient>, OAuthClientError> {
        principal.require_scope(SCOPE_ADMIN)?;
        Ok(self.store.oauth_clients(after, limit).await?)
    }

    /// Every client, by id (the command line).
    pub async fn list_all(&self, after: Option<&str>, limit: u32) -> Result<Vec<OAuthClient>, OAuthClientError> {
        Ok(self.store.oauth_clients(after, limit).await?)
    }

    /// One client (`admin` scope).
    pub async fn get(&self, principal: &Principal, client_id: &str) -> Result<OAuthClient, OAuthClientError> {
        principal.require_scope(SCOPE_ADMIN)?;
        self.store.oauth_client(client_id).await?.ok_or(OAuthClientError::NotFound)
    }

    /// Deletes a client (`admin` scope). Audited as `oauth.client_deleted`.
    pub async fn delete(
        &self,
        principal: &Principal,
        client_id: &str,
        meta: &RequestMeta,
    ) -> Result<(), OAuthClientError> {
        principal.require_scope(SCOPE_ADMIN)?;
        self.delete_as(&principal.actor(), client_id, meta).await
    }

    /// Deletes a client for `actor` (the command line).
    pub async fn delete_as(&self, actor: &str, client_id: &str, meta: &RequestMeta) -> Result<(), OAuthClientError> {
        let deleted = self.store.delete_oauth_client(client_id).await?;
        self.cache.forget(&client_id.to_owned());
        if !deleted {
            return Err(OAuthClientError::NotFound);
        }
        self.audit
            .append(
                AuditEvent::new(AuditKind::OAuthClientDeleted, Outcome::Success)
                    .actor(actor)
                    .subject(client_id.to_owned())
                    .request(meta.clone()),
            )
            .await?;
        Ok(())
    }

    /// Whether `secret` is the secret of `client` (a client whose method uses one), compared in
    /// constant time against its keyed hash.
    pub async fn secret_matches(&self, client: &OAuthClient, secret: &[u8]) -> Result<bool, OAuthClientError> {
        let (Some(stored), Some(key_id)) = (&client.secret_hash, client.hash_key_id) else { return Ok(false) };
        let (_, mac) = self.keyring.keyed_hash(SECRET_HASH_LABEL, Some(key_id), secret).await?;
        Ok(crate::crypto::constant_time_eq(&mac, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(kind: ClientKind) -> ClientRegistration {
        ClientRegistration {
            name: "Shop".into(),
            kind,
            redirect_uris: vec!["https://shop.example/callback".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            scopes: vec![],
            auth_method: None,
            jwks: None,
            jwks_uri: None,
        }
    }

    fn field_of(r: &ClientRegistration) -> &'static str {
        match validate(r) {
            Err(OAuthClientError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_code_flow_with_a_secret_or_none() {
        let c = validate(&reg(ClientKind::Confidential)).unwrap();
        assert_eq!(c.grant_types, vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
        assert_eq!(c.auth_method, TokenAuthMethod::ClientSecretBasic);
        assert_eq!(c.scopes, vec!["openid", "profile", "email"]);
        assert_eq!(validate(&reg(ClientKind::Public)).unwrap().auth_method, TokenAuthMethod::None);
    }

    #[test]
    fn redirect_uris_are_https_loopback_http_or_a_native_scheme() {
        for ok in ["https://a.example/cb?x=1", "http://127.0.0.1:8000/cb", "http://[::1]/cb", "http://localhost/cb"] {
            assert!(redirect_uri("r", ok, false).is_ok(), "{ok}");
        }
        assert!(redirect_uri("r", "com.example.app:/callback", true).is_ok());
        for bad in [
            "http://shop.example/cb",
            "https://shop.example/cb#frag",
            "https://*.example/cb",
            "/relative",
            "com.example.app:/callback",
            "myapp:/cb",
            "https://user:pw@shop.example/cb",
            "javascript:alert(1)",
            "",
        ] {
            assert!(redirect_uri("r", bad, false).is_err(), "{bad}");
        }
        assert!(redirect_uri("r", "myapp:/cb", true).is_err(), "a private-use scheme is a reverse domain");
    }

    #[test]
    fn inconsistent_registrations_name_the_field() {
        let mut r = reg(ClientKind::Public);
        r.grant_types = vec!["client_credentials".into()];
        assert_eq!(field_of(&r), "grant_types");
        let mut r = reg(ClientKind::Public);
        r.auth_method = Some("client_secret_basic".into());
        assert_eq!(field_of(&r), "token_endpoint_auth_method");
        let mut r = reg(ClientKind::Confidential);
        r.auth_method = Some("none".into());
        assert_eq!(field_of(&r), "token_endpoint_auth_method");
        let mut r = reg(ClientKind::Confidential);
        r.redirect_uris.clear();
        assert_eq!(field_of(&r), "redirect_uris");
        let mut r = reg(ClientKind::Confidential);
        r.redirect_uris.clear();
        r.grant_types = vec!["client_credentials".into()];
        assert!(validate(&r).is_ok(), "client credentials need no redirect");
        let mut r = reg(ClientKind::Confidential);
        r.grant_types = vec!["refresh_token".into()];
        assert_eq!(field_of(&r), "grant_types");
        let mut r = reg(ClientKind::Confidential);
        r.grant_types = vec!["implicit".into()];
        assert_eq!(field_of(&r), "grant_types");
        let mut r = reg(ClientKind::Confidential);
        r.scopes = vec!["admin".into()];
        assert_eq!(field_of(&r), "scope");
        for own in ["user", "password:change", "mfa:enroll", "crypto:decrypt:RESTRICTED", "compliance:read"] {
            let mut r = reg(ClientKind::Confidential);
            r.scopes = vec![own.into()];
            assert_eq!(field_of(&r), "scope", "{own}");
        }
        let mut r = reg(ClientKind::Confidential);
        r.scopes = vec!["has space".into()];
        assert_eq!(field_of(&r), "scope");
        let mut r = reg(ClientKind::Confidential);
        r.name = " ".into();
        assert_eq!(field_of(&r), "client_name");
    }

    #[test]
    fn private_key_jwt_needs_public_keys_one_way() {
        let key = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"});
        let mut r = reg(ClientKind::Confidential);
        r.auth_method = Some("private_key_jwt".into());
        assert_eq!(field_of(&r), "jwks", "neither");
        r.jwks = Some(serde_json::json!({"keys": [key]}));
        let c = validate(&r).unwrap();
        assert!(c.jwks.is_some() && c.jwks_uri.is_none());
        r.jwks_uri = Some("https://shop.example/jwks".into());
        assert_eq!(field_of(&r), "jwks", "both");
        r.jwks = None;
        assert_eq!(validate(&r).unwrap().jwks_uri.as_deref(), Some("https://shop.example/jwks"));
        r.jwks_uri = None;
        r.jwks = Some(serde_json::json!({"keys": [{"kty": "EC", "d": "secret"}]}));
        assert_eq!(field_of(&r), "jwks", "a private key");
        r.jwks = Some(serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}));
        assert_eq!(field_of(&r), "jwks", "a symmetric key");
        r.jwks = Some(serde_json::json!({"keys": []}));
        assert_eq!(field_of(&r), "jwks", "empty");
        let mut r = reg(ClientKind::Confidential);
        r.jwks_uri = Some("https://shop.example/jwks".into());
        assert_eq!(field_of(&r), "jwks", "keys without private_key_jwt");
    }
}
