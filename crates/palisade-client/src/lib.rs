//! A typed async client for Palisade's HTTP API, over `palisade-types`. Used by the `palisade` CLI
//! where it talks to a running server, by the integration tests, and by Rust applications.

use palisade_types::admin::{RevokeTokenRequest, UserList};
use palisade_types::api_keys::{
    ApiKeyList, CreateApiKeyRequest, CreateApiKeyResponse, ValidateApiKeyRequest, ValidateApiKeyResponse,
};
use palisade_types::auth::{
    LoginRequest, PasswordChangeRequest, Profile, RefreshRequest, RegisterRequest, RegisterResponse, SessionList,
    TokenResponse,
};
use palisade_types::devices::{DeviceList, DeviceRemoved, DeviceUpdateRequest, RiskAssessmentList};
use palisade_types::health::{Health, Ready};
use palisade_types::mfa::{
    BackupCodesResponse, CodeRequest, CodeSentResponse, EmailSetupRequest, EnrolmentResponse, FactorRemovalRequest,
    LoginResponse, MfaSendRequest, MfaStatusResponse, MfaVerifyRequest, SmsSetupRequest, TotpSetupResponse,
};
use palisade_types::problem::Problem;
use palisade_types::tokens::{ValidateTokenRequest, ValidateTokenResponse};
use palisade_types::webauthn::{
    CeremonyResponse, PasskeyInfo, PasskeyList, PasskeyLoginFinishRequest, PasskeyLoginStartRequest,
    PasskeyRegisterFinishRequest, PasskeyRenameRequest,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL cannot be used.
    #[error("invalid server URL: {0}")]
    Url(#[from] url::ParseError),
    /// The server could not be reached or the connection broke.
    #[error("could not reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered with a problem.
    #[error("{} {}: {}", .0.status, .0.code, .0.detail)]
    Problem(Box<Problem>),
    /// The server answered something that is not the documented shape.
    #[error("unexpected answer ({status}): {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// A client for one Palisade server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
}

/// `/ready`'s answer with its HTTP status: a 503 still carries the component report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyAnswer {
    /// 200 or 503.
    pub status: u16,
    /// The report.
    pub ready: Ready,
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        Ok(Self { http, base: url::Url::parse(base)? })
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        decode(self.request(Method::GET, self.url("/health")?, Auth::None).send().await?).await
    }

    /// `GET /ready`; a 503 with a report is an answer, not an error.
    pub async fn ready(&self) -> Result<ReadyAnswer, ClientError> {
        let response = self.request(Method::GET, self.url("/ready")?, Auth::None).send().await?;
        let status = response.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let bytes = response.bytes().await?;
            if let Ok(ready) = serde_json::from_slice::<Ready>(&bytes) {
                return Ok(ReadyAnswer { status: status.as_u16(), ready });
            }
            return Err(unexpected(status, &bytes));
        }
        Ok(ReadyAnswer { status: status.as_u16(), ready: decode(response).await? })
    }

    /// `GET /.well-known/jwks.json`: the public signing keys, as a JSON Web Key Set.
    pub async fn jwks(&self) -> Result<serde_json::Value, ClientError> {
        decode(self.request(Method::GET, self.url("/.well-known/jwks.json")?, Auth::None).send().await?).await
    }

    /// `POST /auth/register`: makes an account (`201`).
    pub async fn register(&self, request: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/register")?, Auth::None);
        decode(builder.json(request).send().await?).await
    }

    /// `POST /auth/login`: a token pair for a username and password, or the second step when the
    /// user has a second factor.
    pub async fn login(&self, request: &LoginRequest) -> Result<LoginResponse, ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/login")?, Auth::None);
        decode(builder.json(request).send().await?).await
    }

    /// `POST /auth/mfa/verify`: passes one factor of a login's second step.
    pub async fn mfa_verify(&self, mfa_token: &str, method: &str, code: &str) -> Result<LoginResponse, ClientError> {
        let body =
            MfaVerifyRequest { mfa_token: mfa_token.to_owned(), method: method.to_owned(), code: code.to_owned() };
        let builder = self.request(Method::POST, self.url("/auth/mfa/verify")?, Auth::None);
        decode(builder.json(&body).send().await?).await
    }

    /// `POST /auth/mfa/{sms,email}/send`: sends a login code by `method` (`sms` or `email`).
    pub async fn mfa_send(&self, method: &str, mfa_token: &str) -> Result<CodeSentResponse, ClientError> {
        let body = MfaSendRequest { mfa_token: mfa_token.to_owned() };
        let builder = self.request(Method::POST, self.url_segments(&["auth", "mfa", method, "send"])?, Auth::None);
        decode(builder.json(&body).send().await?).await
    }

    /// `GET /auth/mfa`: the caller's second factors.
    pub async fn mfa_status(&self, access_token: &str) -> Result<MfaStatusResponse, ClientError> {
        decode(self.request(Method::GET, self.url("/auth/mfa")?, Auth::Bearer(access_token)).send().await?).await
    }

    /// `POST /auth/mfa/totp/setup`: a new authenticator-app secret and backup codes.
    pub async fn totp_setup(&self, access_token: &str) -> Result<TotpSetupResponse, ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/mfa/totp/setup")?, Auth::Bearer(access_token));
        decode(builder.send().await?).await
    }

    /// `POST /auth/mfa/{totp,sms,email}/confirm`: confirms a pending factor of `method` (`204`).
    pub async fn mfa_confirm(&self, access_token: &str, method: &str, code: &str) -> Result<(), ClientError> {
        let url = self.url_segments(&["auth", "mfa", method, "confirm"])?;
        let builder = self.request(Method::POST, url, Auth::Bearer(access_token));
        no_content(builder.json(&CodeRequest { code: code.to_owned() }).send().await?).await
    }

    /// `POST /auth/mfa/sms/setup`: sends a confirmation code to `phone`.
    pub async fn sms_setup(&self, access_token: &str, phone: &str) -> Result<EnrolmentResponse, ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/mfa/sms/setup")?, Auth::Bearer(access_token));
        decode(builder.json(&SmsSetupRequest { phone: phone.to_owned() }).send().await?).await
    }

    /// `POST /auth/mfa/email/setup`: sends a confirmation code to `email` (the account's when `None`).
    pub async fn email_setup(&self, access_token: &str, email: Option<&str>) -> Result<EnrolmentResponse, ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/mfa/email/setup")?, Auth::Bearer(access_token));
        decode(builder.json(&EmailSetupRequest { email: email.map(str::to_owned) }).send().await?).await
    }

    /// `DELETE /auth/mfa/{method}`: removes a factor, proven by the password or (TOTP) a code (`204`).
    pub async fn remove_factor(
        &self,
        access_token: &str,
        method: &str,
        proof: &FactorRemovalRequest,
    ) -> Result<(), ClientError> {
        let url = self.url_segments(&["auth", "mfa", method])?;
        no_content(self.request(Method::DELETE, url, Auth::Bearer(access_token)).json(proof).send().await?).await
    }

    /// `POST /auth/mfa/backup-codes`: a new set of backup codes; the old one dies.
    pub async fn regenerate_backup_codes(&self, access_token: &str) -> Result<BackupCodesResponse, ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/mfa/backup-codes")?, Auth::Bearer(access_token));
        decode(builder.send().await?).await
    }

    /// `POST /auth/webauthn/register/start`: the options for `navigator.credentials.create`.
    pub async fn passkey_register_start(&self, access_token: &str) -> Result<CeremonyResponse, ClientError> {
        let url = self.url("/auth/webauthn/register/start")?;
        decode(self.request(Method::POST, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `POST /auth/webauthn/register/finish`: stores the passkey the authenticator made (`201`).
    pub async fn passkey_register_finish(
        &self,
        access_token: &str,
        request: &PasskeyRegisterFinishRequest,
    ) -> Result<PasskeyInfo, ClientError> {
        let url = self.url("/auth/webauthn/register/finish")?;
        decode(self.request(Method::POST, url, Auth::Bearer(access_token)).json(request).send().await?).await
    }

    /// `POST /auth/webauthn/login/start`: a passkey as the second factor of `mfa_token`'s login, or
    /// (with `None`) a passwordless login.
    pub async fn passkey_login_start(&self, mfa_token: Option<&str>) -> Result<CeremonyResponse, ClientError> {
        let body = PasskeyLoginStartRequest { mfa_token: mfa_token.map(str::to_owned) };
        let url = self.url("/auth/webauthn/login/start")?;
        decode(self.request(Method::POST, url, Auth::None).json(&body).send().await?).await
    }

    /// `POST /auth/webauthn/login/finish`.
    pub async fn passkey_login_finish(
        &self,
        request: &PasskeyLoginFinishRequest,
    ) -> Result<LoginResponse, ClientError> {
        let url = self.url("/auth/webauthn/login/finish")?;
        decode(self.request(Method::POST, url, Auth::None).json(request).send().await?).await
    }

    /// `GET /auth/webauthn/credentials`: the caller's passkeys.
    pub async fn passkeys(&self, access_token: &str) -> Result<PasskeyList, ClientError> {
        let url = self.url("/auth/webauthn/credentials")?;
        decode(self.request(Method::GET, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `PATCH /auth/webauthn/credentials/{id}`: renames a passkey (`204`).
    pub async fn rename_passkey(&self, access_token: &str, id: &str, name: &str) -> Result<(), ClientError> {
        let url = self.url_segments(&["auth", "webauthn", "credentials", id])?;
        let body = PasskeyRenameRequest { name: name.to_owned() };
        no_content(self.request(Method::PATCH, url, Auth::Bearer(access_token)).json(&body).send().await?).await
    }

    /// `DELETE /auth/webauthn/credentials/{id}`: removes a passkey (`204`).
    pub async fn delete_passkey(&self, access_token: &str, id: &str) -> Result<(), ClientError> {
        let url = self.url_segments(&["auth", "webauthn", "credentials", id])?;
        no_content(self.request(Method::DELETE, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `POST /admin/users/{id}/mfa/reset`: removes every second factor of a user (`204`).
    pub async fn admin_mfa_reset(&self, access_token: &str, user_id: &str) -> Result<(), ClientError> {
        let url = self.url_segments(&["admin", "users", user_id, "mfa", "reset"])?;
        no_content(self.request(Method::POST, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `POST /auth/refresh`: trades a refresh token (single use) for a new token pair.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, ClientError> {
        let body = RefreshRequest { refresh_token: refresh_token.to_owned() };
        let builder = self.request(Method::POST, self.url("/auth/refresh")?, Auth::None);
        decode(builder.json(&body).send().await?).await
    }

    /// `POST /auth/logout`: ends the session of `access_token` and its refresh family (`204`).
    pub async fn logout(&self, access_token: &str) -> Result<(), ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/logout")?, Auth::Bearer(access_token));
        no_content(builder.send().await?).await
    }

    /// `GET /auth/profile`: the caller's account.
    pub async fn profile(&self, access_token: &str) -> Result<Profile, ClientError> {
        let builder = self.request(Method::GET, self.url("/auth/profile")?, Auth::Bearer(access_token));
        decode(builder.send().await?).await
    }

    /// `POST /auth/password`: changes the caller's password (`204`).
    pub async fn change_password(
        &self,
        access_token: &str,
        request: &PasswordChangeRequest,
    ) -> Result<(), ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/password")?, Auth::Bearer(access_token));
        no_content(builder.json(request).send().await?).await
    }

    /// `GET /auth/sessions`: the caller's live sessions, newest first.
    pub async fn sessions(&self, access_token: &str) -> Result<SessionList, ClientError> {
        let builder = self.request(Method::GET, self.url("/auth/sessions")?, Auth::Bearer(access_token));
        decode(builder.send().await?).await
    }

    /// `DELETE /auth/sessions/{id}`: ends one of the caller's sessions (`204`).
    pub async fn end_session(&self, access_token: &str, session_id: &str) -> Result<(), ClientError> {
        let url = self.url_with_id("/auth/sessions", session_id)?;
        no_content(self.request(Method::DELETE, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `GET /auth/devices`: the caller's devices, most recently seen first.
    pub async fn devices(&self, access_token: &str) -> Result<DeviceList, ClientError> {
        decode(self.request(Method::GET, self.url("/auth/devices")?, Auth::Bearer(access_token)).send().await?).await
    }

    /// `PATCH /auth/devices/{id}`: renames and/or re-trusts a device; answers the device as stored.
    pub async fn update_device(
        &self,
        access_token: &str,
        device_id: &str,
        update: &DeviceUpdateRequest,
    ) -> Result<palisade_types::devices::Device, ClientError> {
        let url = self.url_segments(&["auth", "devices", device_id])?;
        decode(self.request(Method::PATCH, url, Auth::Bearer(access_token)).json(update).send().await?).await
    }

    /// `POST /auth/devices/{id}/approve`: approves a device (`204`).
    pub async fn approve_device(&self, access_token: &str, device_id: &str) -> Result<(), ClientError> {
        let url = self.url_segments(&["auth", "devices", device_id, "approve"])?;
        no_content(self.request(Method::POST, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `DELETE /auth/devices/{id}`: forgets a device and ends the sessions opened from it.
    pub async fn remove_device(&self, access_token: &str, device_id: &str) -> Result<DeviceRemoved, ClientError> {
        let url = self.url_segments(&["auth", "devices", device_id])?;
        decode(self.request(Method::DELETE, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `GET /admin/users/{id}/risk`: a user's recent risk assessments, newest first.
    pub async fn admin_user_risk(&self, access_token: &str, user_id: &str) -> Result<RiskAssessmentList, ClientError> {
        let url = self.url_segments(&["admin", "users", user_id, "risk"])?;
        decode(self.request(Method::GET, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `POST /auth/api-keys`: makes an API key (`201`); the key is in the answer this once.
    pub async fn create_api_key(
        &self,
        access_token: &str,
        request: &CreateApiKeyRequest,
    ) -> Result<CreateApiKeyResponse, ClientError> {
        let builder = self.request(Method::POST, self.url("/auth/api-keys")?, Auth::Bearer(access_token));
        decode(builder.json(request).send().await?).await
    }

    /// `GET /auth/api-keys`: the caller's API keys, oldest first (never the secrets).
    pub async fn api_keys(&self, access_token: &str) -> Result<ApiKeyList, ClientError> {
        let builder = self.request(Method::GET, self.url("/auth/api-keys")?, Auth::Bearer(access_token));
        decode(builder.send().await?).await
    }

    /// `DELETE /auth/api-keys/{id}`: revokes one of the caller's API keys (`204`).
    pub async fn revoke_api_key(&self, access_token: &str, api_key_id: &str) -> Result<(), ClientError> {
        let url = self.url_with_id("/auth/api-keys", api_key_id)?;
        no_content(self.request(Method::DELETE, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `POST /api-keys/validate`: checks another API key; the caller authenticates with its own key
    /// (`caller_api_key`, sent as `X-API-Key`, which needs the `api-keys:validate` scope).
    pub async fn validate_api_key(
        &self,
        caller_api_key: &str,
        request: &ValidateApiKeyRequest,
    ) -> Result<ValidateApiKeyResponse, ClientError> {
        let builder = self.request(Method::POST, self.url("/api-keys/validate")?, Auth::ApiKey(caller_api_key));
        decode(builder.json(request).send().await?).await
    }

    /// `POST /tokens/validate`: asks the server whether an access token is valid; the caller's own API
    /// key (`X-API-Key`) must hold the `tokens:validate` scope.
    pub async fn validate_token(
        &self,
        caller_api_key: &str,
        token: &str,
    ) -> Result<ValidateTokenResponse, ClientError> {
        let body = ValidateTokenRequest { token: token.to_owned() };
        let builder = self.request(Method::POST, self.url("/tokens/validate")?, Auth::ApiKey(caller_api_key));
        decode(builder.json(&body).send().await?).await
    }

    /// `GET /admin/users` (the `admin` scope): accounts ordered by id, `limit` of them.
    pub async fn admin_users(&self, access_token: &str, limit: u32) -> Result<UserList, ClientError> {
        let mut url = self.url("/admin/users")?;
        url.query_pairs_mut().append_pair("limit", &limit.to_string());
        decode(self.request(Method::GET, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `POST /admin/users/{id}/lock` or `/unlock` (the `admin` scope).
    pub async fn admin_set_locked(&self, access_token: &str, user_id: &str, locked: bool) -> Result<(), ClientError> {
        let mut url = self.url_with_id("/admin/users", user_id)?;
        url.path_segments_mut()
            .map_err(|()| ClientError::Url(url::ParseError::RelativeUrlWithCannotBeABaseBase))?
            .push(if locked { "lock" } else { "unlock" });
        no_content(self.request(Method::POST, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `GET /admin/api-keys` (the `admin` scope): everyone's keys.
    pub async fn admin_api_keys(&self, access_token: &str) -> Result<ApiKeyList, ClientError> {
        decode(self.request(Method::GET, self.url("/admin/api-keys")?, Auth::Bearer(access_token)).send().await?).await
    }

    /// `DELETE /admin/api-keys/{id}` (the `admin` scope): revokes anyone's key.
    pub async fn admin_revoke_api_key(&self, access_token: &str, api_key_id: &str) -> Result<(), ClientError> {
        let url = self.url_with_id("/admin/api-keys", api_key_id)?;
        no_content(self.request(Method::DELETE, url, Auth::Bearer(access_token)).send().await?).await
    }

    /// `POST /admin/tokens/revoke` (the `admin` scope): revokes one access token by its `jti`.
    pub async fn admin_revoke_token(&self, access_token: &str, token: &str) -> Result<(), ClientError> {
        let body = RevokeTokenRequest { token: token.to_owned() };
        let builder = self.request(Method::POST, self.url("/admin/tokens/revoke")?, Auth::Bearer(access_token));
        no_content(builder.json(&body).send().await?).await
    }

    /// The absolute URL of `path` (which starts with `/`) on this server.
    fn url(&self, path: &str) -> Result<url::Url, ClientError> {
        Ok(self.base.join(path)?)
    }

    /// The URL whose path is `segments`, each percent-encoded as one segment.
    fn url_segments(&self, segments: &[&str]) -> Result<url::Url, ClientError> {
        let mut url = self.url("/")?;
        url.path_segments_mut()
            .map_err(|()| ClientError::Url(url::ParseError::RelativeUrlWithCannotBeABaseBase))?
            .clear()
            .extend(segments);
        Ok(url)
    }

    /// The URL of `path` followed by `id` as one percent-encoded path segment.
    fn url_with_id(&self, path: &str, id: &str) -> Result<url::Url, ClientError> {
        let mut url = self.url(path)?;
        url.path_segments_mut()
            .map_err(|()| ClientError::Url(url::ParseError::RelativeUrlWithCannotBeABaseBase))?
            .push(id);
        Ok(url)
    }

    /// A request to `url` carrying the caller's credentials, if any.
    fn request(&self, method: Method, url: url::Url, auth: Auth<'_>) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match auth {
            Auth::None => builder,
            Auth::Bearer(token) => builder.bearer_auth(token),
            Auth::ApiKey(key) => builder.header("X-API-Key", key),
        }
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    /// Not at all.
    None,
    /// `Authorization: Bearer <access token>`.
    Bearer(&'a str),
    /// `X-API-Key: <key>`.
    ApiKey(&'a str),
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|_| unexpected(status, &bytes));
    }
    Err(failure(status, &bytes))
}

/// A `204 No Content` answer is `Ok(())`; anything else is an error.
async fn no_content(response: reqwest::Response) -> Result<(), ClientError> {
    let status = response.status();
    if status == StatusCode::NO_CONTENT {
        return Ok(());
    }
    let bytes = response.bytes().await?;
    Err(failure(status, &bytes))
}

/// The error for an answer that is not the expected success: its problem, if it carries one.
fn failure(status: StatusCode, bytes: &[u8]) -> ClientError {
    if status.is_success() {
        return unexpected(status, bytes);
    }
    match serde_json::from_slice::<Problem>(bytes) {
        Ok(problem) => ClientError::Problem(Box::new(problem)),
        Err(_) => unexpected(status, bytes),
    }
}

fn unexpected(status: StatusCode, bytes: &[u8]) -> ClientError {
    let body = String::from_utf8_lossy(bytes.get(..bytes.len().min(200)).unwrap_or_default()).into_owned();
    ClientError::Unexpected { status: status.as_u16(), body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new("http://127.0.0.1:8080").unwrap()
    }

    #[test]
    fn ids_are_one_encoded_path_segment() {
        let url = client().url_with_id("/auth/sessions", "a/b?c#d").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/auth/sessions/a%2Fb%3Fc%23d");
    }

    #[test]
    fn bearer_and_api_key_headers() {
        let c = client();
        let bearer = c.request(Method::GET, c.url("/auth/profile").unwrap(), Auth::Bearer("tok")).build().unwrap();
        assert_eq!(bearer.headers().get("authorization").unwrap(), "Bearer tok");
        assert!(bearer.headers().get("x-api-key").is_none());
        let key = c.request(Method::POST, c.url("/api-keys/validate").unwrap(), Auth::ApiKey("spa_x")).build().unwrap();
        assert_eq!(key.headers().get("x-api-key").unwrap(), "spa_x");
        assert!(key.headers().get("authorization").is_none());
        let none = c.request(Method::GET, c.url("/health").unwrap(), Auth::None).build().unwrap();
        assert!(none.headers().is_empty());
        assert_eq!(none.url().as_str(), "http://127.0.0.1:8080/health");
    }

    #[test]
    fn problems_and_unexpected_answers() {
        let body =
            br#"{"type":"about:blank","title":"Not Found","status":404,"detail":"no such session","code":"NOT_FOUND"}"#;
        match failure(StatusCode::NOT_FOUND, body) {
            ClientError::Problem(p) => assert_eq!(p.code, "NOT_FOUND"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(failure(StatusCode::BAD_GATEWAY, b"<html>"), ClientError::Unexpected { status: 502, .. }));
        assert!(matches!(failure(StatusCode::OK, b"{}"), ClientError::Unexpected { status: 200, .. }));
    }
}
