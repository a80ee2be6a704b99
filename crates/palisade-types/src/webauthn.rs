//! Bodies of the passkey (WebAuthn) routes under `/auth/webauthn`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A WebAuthn ceremony started: pass `options` to `navigator.credentials.create` (registration) or
/// `navigator.credentials.get` (login), after decoding its base64url fields to `ArrayBuffer`s, then
/// send the result back with `challenge_id` to the matching `finish` route within five minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CeremonyResponse {
    /// The ceremony's id (single use).
    pub challenge_id: String,
    /// `{"publicKey": PublicKeyCredentialCreationOptions | PublicKeyCredentialRequestOptions}` with
    /// binary members in unpadded base64url; a passwordless login's options also carry
    /// `"mediation": "conditional"` for autofill.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// `POST /auth/webauthn/register/finish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegisterFinishRequest {
    /// The `challenge_id` of `register/start`.
    pub challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`, as JSON with binary members in
    /// base64url (`{id, rawId, type, response: {attestationObject, clientDataJSON}, extensions}`).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// A name for it (default "Passkey"), 1 to 100 characters.
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /auth/webauthn/login/start`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginStartRequest {
    /// The `mfa_token` of a login whose methods include `webauthn`: the passkey is its second
    /// factor. Left out: a passwordless login with any discoverable passkey.
    #[serde(default)]
    pub mfa_token: Option<String>,
}

impl std::fmt::Debug for PasskeyLoginStartRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyLoginStartRequest").field("second_factor", &self.mfa_token.is_some()).finish()
    }
}

/// `POST /auth/webauthn/login/finish`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginFinishRequest {
    /// The `challenge_id` of `login/start`.
    pub challenge_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, as JSON with binary members in
    /// base64url (`{id, rawId, type, response: {authenticatorData, clientDataJSON, signature,
    /// userHandle}, extensions}`).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// The same `mfa_token` as at `login/start`, for a second factor.
    #[serde(default)]
    pub mfa_token: Option<String>,
}

impl std::fmt::Debug for PasskeyLoginFinishRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyLoginFinishRequest").field("challenge_id", &self.challenge_id).finish_non_exhaustive()
    }
}

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PasskeyInfo {
    /// The credential id, base64url.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// When it last logged in (RFC 3339), if ever.
    pub last_used_at: Option<String>,
}

/// `GET /auth/webauthn/credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PasskeyList {
    /// The caller's passkeys, oldest first.
    pub credentials: Vec<PasskeyInfo>,
}

/// `PATCH /auth/webauthn/credentials/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRenameRequest {
    /// The new name, 1 to 100 characters.
    pub name: String,
}
