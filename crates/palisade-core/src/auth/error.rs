//! What authentication answers when it refuses.

use crate::password::PolicyViolation;
use crate::store::StoreError;

/// Why an authentication operation was refused. The variants are the answers callers may see; the
/// real reason (unknown user, wrong password, disabled account …) goes only to the audit chain.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong username or password, unknown user or disabled account — one answer for all.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins for this account: locked for `retry_after_secs`.
    #[error("account temporarily locked")]
    AccountLocked {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
    /// Too many failed logins from this address.
    #[error("too many failed logins from this address")]
    RateLimited {
        /// Seconds until the address may try again.
        retry_after_secs: u64,
    },
    /// The new password breaks the policy; every failed rule is listed.
    #[error("the password does not meet the policy")]
    PasswordPolicy(Vec<PolicyViolation>),
    /// A field is malformed.
    #[error("{0}")]
    Invalid(#[from] crate::user::InvalidInput),
    /// The username or e-mail address is taken.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// The access token is malformed, forged or for another audience.
    #[error("invalid token")]
    InvalidToken,
    /// The access token has expired.
    #[error("token expired")]
    TokenExpired,
    /// The token (or its session or family) was revoked; with `require_reauth` the client must log
    /// in again.
    #[error("token revoked")]
    TokenRevoked {
        /// The whole family was revoked: log in again.
        require_reauth: bool,
    },
    /// The token lacks a scope the operation needs.
    #[error("insufficient scope: {0} required")]
    InsufficientScope(&'static str),
    /// The operation needs a login session (a bearer access token), not an API key.
    #[error("this needs a login session, not an API key")]
    SessionRequired,
    /// No such resource (a session of the caller's, …).
    #[error("not found")]
    NotFound,
    /// Changing second factors needs a session that passed one: log in again with it.
    #[error("this needs a login that passed a second factor")]
    StepUpRequired,
    /// A second-factor code is wrong, already used or expired (one answer for all).
    #[error("the code is wrong, already used or expired")]
    InvalidCode,
    /// Too many wrong second-factor codes for this account: its MFA is locked for `retry_after_secs`.
    #[error("too many wrong codes: multi-factor authentication is locked for a while")]
    MfaLocked {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
    /// The passkey's answer did not verify (signature, origin, user verification, counter …).
    #[error("the passkey did not verify")]
    PasskeyRejected,
    /// The WebAuthn ceremony is unknown, expired or already finished.
    #[error("unknown, expired or already used challenge_id")]
    CeremonyUnknown,
    /// The `mfa_token` already completed its login.
    #[error("this mfa_token was already used")]
    MfaTokenUsed,
    /// The method is not one this user or this server can use here.
    #[error("{0}")]
    MethodUnavailable(String),
    /// A factor of this kind is already confirmed: remove it first.
    #[error("a confirmed {0} factor exists; remove it first")]
    AlreadyEnrolled(&'static str),
    /// Nothing of this kind awaits confirmation.
    #[error("no {0} setup awaits confirmation")]
    NotPending(&'static str),
    /// Another code was asked for too soon or too often.
    #[error("a code was sent recently; wait before asking for another")]
    CodeThrottled {
        /// Seconds until another code may be sent.
        retry_after_secs: u64,
    },
    /// The password was right but the login's risk score is past the block threshold.
    #[error("the login was refused: its risk is too high")]
    RiskBlocked {
        /// The score.
        score: f64,
        /// The names of the factors that fired.
        factors: Vec<String>,
    },
    /// The session was used from another device or network than it was opened from; it was
    /// ended with its refresh family: log in again.
    #[error("the session was used from another client and was ended")]
    SessionHijackSuspected,
    /// Concurrent sessions are off and the user has a live one.
    #[error("another session of this account is active: log out there first")]
    SessionLimit,
    /// A store this needs is unreachable: fail closed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else (logged, answered as an internal error).
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

impl From<crate::crypto::CryptoError> for AuthError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

impl From<crate::audit::AuditError> for AuthError {
    fn from(e: crate::audit::AuditError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}
