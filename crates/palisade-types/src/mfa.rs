//! Bodies of the multi-factor routes under `/auth/mfa` and of the login's second step.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::TokenResponse;

/// What `POST /auth/login` and `POST /auth/mfa/verify` answer: the token pair, or the next step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    /// A second factor is needed.
    MfaRequired(MfaRequiredResponse),
    /// The device waits for approval (`PALISADE_DEVICE_APPROVAL`).
    ApprovalRequired(ApprovalRequiredResponse),
    /// Logged in.
    Tokens(TokenResponse),
}

/// Every step passed, but the device must be approved first — from a session on another device
/// (`POST /auth/devices/{id}/approve`) or through the link mailed to the user. Poll
/// `POST /auth/login/approval` with the token. No token pair was issued.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRequiredResponse {
    /// Always `true`.
    pub approval_required: bool,
    /// The opaque token to poll with; single use once approved.
    pub approval_token: String,
    /// The device waiting (as listed by `GET /auth/devices` on the user's other sessions).
    pub device_id: String,
    /// Seconds the wait lasts.
    pub expires_in: u64,
}

impl std::fmt::Debug for ApprovalRequiredResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalRequiredResponse")
            .field("device_id", &self.device_id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// `POST /auth/login/approval`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPollRequest {
    /// The `approval_token` of the login answer.
    pub approval_token: String,
}

impl std::fmt::Debug for ApprovalPollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApprovalPollRequest { <hidden> }")
    }
}

/// `POST /auth/devices/approve-link`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalLinkRequest {
    /// The token of the mailed link (after `#token=`).
    pub token: String,
}

impl std::fmt::Debug for ApprovalLinkRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApprovalLinkRequest { <hidden> }")
    }
}

impl LoginResponse {
    /// The token pair, if the login is complete.
    pub fn into_tokens(self) -> Option<TokenResponse> {
        match self {
            Self::Tokens(tokens) => Some(tokens),
            Self::MfaRequired(_) | Self::ApprovalRequired(_) => None,
        }
    }

    /// The second step, if a factor is needed.
    pub fn into_mfa_required(self) -> Option<MfaRequiredResponse> {
        match self {
            Self::MfaRequired(step) => Some(step),
            Self::Tokens(_) | Self::ApprovalRequired(_) => None,
        }
    }
}

/// The password was right; a second factor is needed. No token was issued.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MfaRequiredResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// The opaque token of this login's second step: pass it to `POST /auth/mfa/verify` (and to
    /// `/auth/mfa/sms/send` or `/auth/mfa/email/send` first, for those methods). Single use.
    pub mfa_token: String,
    /// The methods that can pass it: `totp`, `backup_code`, `sms`, `email`, `webauthn` (a passkey:
    /// `/auth/webauthn/login/start` with this token).
    pub methods: Vec<String>,
    /// Distinct methods still to pass (2 for enhanced MFA).
    pub factors_required: u8,
    /// Seconds the `mfa_token` lives.
    pub expires_in: u64,
    /// The login's risk score (0 to 1), when logins are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<f64>,
    /// The names of the risk factors that fired, when logins are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_factors: Option<Vec<String>>,
}

impl std::fmt::Debug for MfaRequiredResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaRequiredResponse")
            .field("methods", &self.methods)
            .field("factors_required", &self.factors_required)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// `POST /auth/mfa/verify`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    /// The `mfa_token` of the login answer.
    pub mfa_token: String,
    /// `totp`, `backup_code`, `sms` or `email`.
    pub method: String,
    /// The code: 6 digits, or a backup code (`xxxxx-xxxxx`).
    pub code: String,
}

impl std::fmt::Debug for MfaVerifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaVerifyRequest").field("method", &self.method).finish_non_exhaustive()
    }
}

/// `POST /auth/mfa/sms/send` and `POST /auth/mfa/email/send`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaSendRequest {
    /// The `mfa_token` of the login answer.
    pub mfa_token: String,
}

impl std::fmt::Debug for MfaSendRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaSendRequest { <hidden> }")
    }
}

/// A code was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CodeSentResponse {
    /// What happened.
    pub message: String,
    /// Seconds the code lives (300 by default).
    pub expires_in: u64,
}

/// `POST /auth/mfa/totp/setup`: shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotpSetupResponse {
    /// The shared secret in base32, to type into an app.
    pub secret: String,
    /// The `otpauth://totp/...` URI (Google's Key URI format).
    pub otpauth_uri: String,
    /// The URI as an inline SVG QR code.
    pub qr_svg: String,
    /// A new set of single-use backup codes when this is the user's first factor; empty when they
    /// already have one (their set is kept; `POST /auth/mfa/backup-codes` makes a new one).
    pub backup_codes: Vec<String>,
}

impl std::fmt::Debug for TotpSetupResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetupResponse { <hidden> }")
    }
}

/// A code confirming a new factor (`/auth/mfa/{totp,sms,email}/confirm`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// 6 digits.
    pub code: String,
}

impl std::fmt::Debug for CodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeRequest { <hidden> }")
    }
}

/// `POST /auth/mfa/sms/setup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsSetupRequest {
    /// The phone number, E.164 (`+14155550123`; spaces and dashes are ignored).
    pub phone: String,
}

/// `POST /auth/mfa/email/setup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSetupRequest {
    /// The address; the account's own when left out.
    #[serde(default)]
    pub email: Option<String>,
}

/// A confirmation code was sent to a new phone number or address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentResponse {
    /// Where the code went, mostly hidden.
    pub destination: String,
    /// Seconds the code lives.
    pub expires_in: u64,
}

/// `DELETE /auth/mfa/{totp,sms,email}`: the password, or (TOTP only) a fresh code.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorRemovalRequest {
    /// The account's password.
    #[serde(default)]
    pub password: Option<String>,
    /// A current code of the TOTP factor being removed.
    #[serde(default)]
    pub code: Option<String>,
}

impl std::fmt::Debug for FactorRemovalRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FactorRemovalRequest { <hidden> }")
    }
}

/// `POST /auth/mfa/backup-codes`: shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupCodesResponse {
    /// The new single-use codes; the previous set is dead.
    pub backup_codes: Vec<String>,
}

impl std::fmt::Debug for BackupCodesResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupCodesResponse { <hidden> }")
    }
}

/// `GET /auth/mfa`: the caller's second factors, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MfaStatusResponse {
    /// Confirmed factors: `totp`, `sms`, `email`.
    pub methods: Vec<String>,
    /// Factors set up but not confirmed yet.
    pub pending: Vec<String>,
    /// Unused backup codes.
    pub backup_codes_remaining: usize,
    /// Registered passkeys (`/auth/webauthn/credentials`).
    pub passkeys: usize,
    /// The factors this server can deliver (`totp` always; `sms` and `email` when a provider is
    /// configured; `webauthn` when a relying party is).
    pub available: Vec<String>,
}
