//! Bodies of the end-user routes under `/auth`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /auth/register`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 1 to 64 characters; compared case-insensitively after Unicode NFKC normalisation.
    pub username: String,
    /// The password (see the password policy).
    pub password: String,
    /// An e-mail address (optional, unique when given).
    #[serde(default)]
    pub email: Option<String>,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("email", &self.email)
            .finish()
    }
}

/// `201` answer of `POST /auth/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    /// The new account's id.
    pub user_id: String,
}

/// The device a login comes from, as the client describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceDescription {
    /// A name the user knows it by.
    #[serde(default)]
    pub name: Option<String>,
    /// `mobile`, `desktop`, `tablet` …
    #[serde(default, rename = "type")]
    pub device_type: Option<String>,
    /// Operating system.
    #[serde(default)]
    pub os: Option<String>,
    /// Browser.
    #[serde(default)]
    pub browser: Option<String>,
    /// A client-computed fingerprint.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// `POST /auth/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
    /// The device, if the client describes it.
    #[serde(default)]
    pub device: Option<DeviceDescription>,
    /// Ask for a remember-device token (`device_token` in the answer) when the login passes a
    /// second factor; presented at later logins from this device, it lowers their risk score.
    #[serde(default)]
    pub remember_device: bool,
    /// A remember-device token from an earlier login on this device.
    #[serde(default)]
    pub device_token: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("device", &self.device)
            .field("remember_device", &self.remember_device)
            .field("device_token", &self.device_token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// A token pair: the answer of a login and of a refresh.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT access token (`Authorization: Bearer …`).
    pub access_token: String,
    /// The refresh token: opaque, single use, shown once.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The session.
    pub session_id: String,
    /// The user.
    pub user_id: String,
    /// Present and true when the password is past its maximum age: the tokens only allow
    /// `POST /auth/password`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub password_expired: bool,
    /// Present and true when the user must have a second factor and has none: the tokens only allow
    /// enrolling one (`/auth/mfa/...` setup and confirm); log in again afterwards.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_enrolment_required: bool,
    /// The login's risk score (0 to 1), when logins are scored; absent on refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<f64>,
    /// The names of the risk factors that fired, when logins are scored; absent on refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_factors: Option<Vec<String>>,
    /// The registered device the session was opened from (`/auth/devices`); absent on refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// A remember-device token, when the login asked for one (`remember_device`) and passed a
    /// second factor: keep it on this device and send it as `device_token` at later logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
    /// Seconds the `device_token` lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_token_expires_in: Option<u64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("session_id", &self.session_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// `POST /auth/refresh`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { refresh_token: <hidden> }")
    }
}

/// `GET /auth/profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    /// The user's id.
    pub user_id: String,
    /// The canonical username.
    pub username: String,
    /// The e-mail address, if any.
    pub email: Option<String>,
    /// When the account was made (RFC 3339).
    pub created_at: String,
    /// Confirmed second factors: `totp`, `sms`, `email`, and `webauthn` when the user has a passkey.
    pub mfa_methods: Vec<String>,
    /// Unused backup codes.
    pub backup_codes_remaining: usize,
}

/// `POST /auth/password`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    /// The password now.
    pub current_password: String,
    /// The password to set.
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChangeRequest { <hidden> }")
    }
}

/// One session in `GET /auth/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    /// The session's id.
    pub session_id: String,
    /// When it began (RFC 3339).
    pub created_at: String,
    /// When it ends at the latest (RFC 3339).
    pub expires_at: String,
    /// Last recorded activity (RFC 3339; recorded at most once a minute).
    pub last_seen_at: String,
    /// Client address at login.
    pub ip: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// The device described at login.
    pub device: Option<DeviceDescription>,
    /// The registered device it was opened from (`/auth/devices`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Country (ISO 3166 code) of the login address, when a GeoIP database knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City of the login address, when a GeoIP database knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

/// `GET /auth/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// Live sessions, newest first.
    pub sessions: Vec<SessionInfo>,
}
