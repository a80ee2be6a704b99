//! Typed audit events, emitted by the services (never by handlers).

use serde_json::{Map, Value};

/// What happened. One variant per kind of security-relevant action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A server instance started.
    SystemStarted,
    /// A data key was rotated.
    KeyRotated,
    /// A key family's minimum decryption version was moved (versions retired or brought back).
    KeyRetired,
    /// A re-encryption of Palisade's own sealed data under the new data key ended (completed or
    /// failed), with its counts.
    KeyReencrypted,
    /// The security diagnostics ran.
    DiagnosticsRun,
    /// The audit chain was verified.
    AuditVerified,
    /// An account was created.
    UserRegistered,
    /// A login succeeded.
    LoginSucceeded,
    /// A login failed (the real reason is in the details).
    LoginFailed,
    /// An account reached its failed-login limit and is locked for a while.
    AccountLockedOut,
    /// A refresh token was rotated (or a rotation refused).
    TokenRefreshed,
    /// A spent refresh token was presented again: its family was revoked.
    RefreshTokenReused,
    /// A user logged out.
    Logout,
    /// A session was ended by its user.
    SessionEnded,
    /// A password was changed (or a change refused).
    PasswordChanged,
    /// An administrator locked an account.
    UserLocked,
    /// An administrator unlocked an account.
    UserUnlocked,
    /// A bearer access token was refused.
    TokenRejected,
    /// An API key was made.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// An API key was refused (invalid, revoked, expired, wrong address, missing scope, rate limited).
    ApiKeyRejected,
    /// A revoked API key was restored (an automatic response reverted).
    ApiKeyRestored,
    /// A user was made an administrator.
    AdminGranted,
    /// A user's administrator role was withdrawn.
    AdminRevoked,
    /// An access token was revoked by its id.
    AccessTokenRevoked,
    /// A login passed its password step and was asked for a second factor.
    MfaChallenged,
    /// A second factor was set up (awaiting confirmation).
    MfaEnrolled,
    /// A second factor was confirmed with its first right code (or a confirmation refused).
    MfaConfirmed,
    /// A second factor was passed during a login.
    MfaVerified,
    /// A second-factor code was refused (wrong, reused, expired, or the account's MFA throttled).
    MfaFailed,
    /// An account reached its limit of wrong second-factor codes and its MFA is locked for a while.
    MfaLockedOut,
    /// A second factor was removed by its user.
    MfaDisabled,
    /// A one-time code was sent by SMS or e-mail.
    MfaCodeSent,
    /// A backup code was used.
    MfaBackupCodeUsed,
    /// A new set of backup codes was made (the old ones died).
    MfaBackupCodesRegenerated,
    /// An administrator removed every second factor of a user.
    MfaReset,
    /// A passkey was renamed by its owner.
    PasskeyRenamed,
    /// A login's password was right but its risk score refused it.
    LoginRiskBlocked,
    /// A login came from a device the user had not used: it was registered.
    DeviceRegistered,
    /// A user renamed or re-trusted a device.
    DeviceUpdated,
    /// A login from a device waiting for approval was parked (device approval on).
    DeviceApprovalRequested,
    /// A device was approved.
    DeviceApproved,
    /// A user forgot a device (its sessions ended).
    DeviceRemoved,
    /// A session was used from another device or network than it was opened from: it was ended.
    SessionHijackSuspected,
    /// A login ended older sessions to stay within the per-user limit.
    SessionEvicted,
    /// Data of a sensitive classification (RESTRICTED, TOP_SECRET) was decrypted, or its decryption
    /// was refused; with the caller, the class and the purpose.
    DataDecrypted,
    /// A security event an application reported (`POST /monitoring/events`), under its type's
    /// `event.<type>` kind — never under the kind Palisade writes for its own events of that type.
    Reported(crate::monitoring::EventType),
    /// A detector opened an incident.
    IncidentOpened,
    /// An administrator moved an incident along its lifecycle.
    IncidentUpdated,
    /// An automatic response was taken for an incident.
    IncidentResponse,
    /// An automatic response was reverted (by an administrator, or as it lapsed).
    IncidentResponseReverted,
    /// A user gave consent (the consent ledger).
    ConsentGiven,
    /// A user withdrew consent.
    ConsentWithdrawn,
    /// A user's data was exported (GDPR Art. 15/20).
    DataExported,
    /// The erasure of a user's data was requested (scheduled after the deletion delay).
    ErasureRequested,
    /// A scheduled erasure was cancelled.
    ErasureCancelled,
    /// An erasure was carried out (the subject is the pseudonym that replaced the user).
    ErasureCompleted,
    /// An erasure was refused when it was due (the last administrator, say).
    ErasureRefused,
    /// An action was checked against the compliance rules (a refusal is a failure, with the
    /// rules violated and a hash of the data, never the data).
    ComplianceChecked,
    /// A report of technical control checks was generated.
    ComplianceReport,
    /// The retention job ran (or was previewed), with what it removed per kind.
    RetentionApplied,
    /// A prefix of the audit chain was archived behind a sealed checkpoint.
    AuditArchived,
    /// An authorization code was issued to a client for a user.
    OAuthAuthorized,
    /// An authorization request was refused (sent back to the client, or shown).
    OAuthAuthorizeRefused,
    /// A user consented to a client's scopes.
    OAuthConsentGranted,
    /// A user refused a client's scopes.
    OAuthConsentDenied,
    /// A user revoked a client's consent (and the sessions it held).
    OAuthConsentRevoked,
    /// An authorization code was presented again: what it issued was revoked.
    OAuthCodeReused,
    /// An OAuth client was registered.
    OAuthClientCreated,
    /// An OAuth client was deleted.
    OAuthClientDeleted,
    /// The token endpoint issued a token (the grant type and scopes in the details).
    OAuthTokenIssued,
    /// The token endpoint refused a request (the RFC 6749 error and the real reason).
    OAuthTokenRefused,
    /// A client revoked one of its tokens (RFC 7009).
    OAuthTokenRevoked,
}

impl AuditKind {
    /// The stable name stored in the chain.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemStarted => "system.started",
            Self::KeyRotated => "key.rotated",
            Self::KeyRetired => "key.retired",
            Self::KeyReencrypted => "key.reencrypted",
            Self::DiagnosticsRun => "system.diagnostics",
            Self::AuditVerified => "audit.verified",
            Self::UserRegistered => "user.registered",
            Self::LoginSucceeded => "auth.login",
            Self::LoginFailed => "auth.login_failed",
            Self::AccountLockedOut => "auth.lockout",
            Self::TokenRefreshed => "token.refresh",
            Self::RefreshTokenReused => "token.refresh_reuse",
            Self::Logout => "auth.logout",
            Self::SessionEnded => "session.ended",
            Self::PasswordChanged => "auth.password_changed",
            Self::UserLocked => "user.locked",
            Self::UserUnlocked => "user.unlocked",
            Self::TokenRejected => "token.rejected",
            Self::ApiKeyCreated => "apikey.created",
            Self::ApiKeyRevoked => "apikey.revoked",
            Self::ApiKeyRejected => "apikey.rejected",
            Self::ApiKeyRestored => "apikey.restored",
            Self::AdminGranted => "user.admin_granted",
            Self::AdminRevoked => "user.admin_revoked",
            Self::AccessTokenRevoked => "token.revoked",
            Self::MfaChallenged => "auth.mfa_challenge",
            Self::MfaEnrolled => "mfa.enrolled",
            Self::MfaConfirmed => "mfa.confirmed",
            Self::MfaVerified => "mfa.verified",
            Self::MfaFailed => "mfa.failed",
            Self::MfaLockedOut => "mfa.lockout",
            Self::MfaDisabled => "mfa.disabled",
            Self::MfaCodeSent => "mfa.code_sent",
            Self::MfaBackupCodeUsed => "mfa.backup_code_used",
            Self::MfaBackupCodesRegenerated => "mfa.backup_codes_regenerated",
            Self::MfaReset => "mfa.reset",
            Self::PasskeyRenamed => "mfa.passkey_renamed",
            Self::LoginRiskBlocked => "auth.login_risk_blocked",
            Self::DeviceRegistered => "device.registered",
            Self::DeviceUpdated => "device.updated",
            Self::DeviceApprovalRequested => "device.approval_requested",
            Self::DeviceApproved => "device.approved",
            Self::DeviceRemoved => "device.removed",
            Self::SessionHijackSuspected => "session.hijack_suspected",
            Self::SessionEvicted => "session.evicted",
            Self::DataDecrypted => "crypto.decrypt",
            Self::Reported(event_type) => event_type.reported_kind(),
            Self::IncidentOpened => "incident.opened",
            Self::IncidentUpdated => "incident.updated",
            Self::IncidentResponse => "incident.response",
            Self::IncidentResponseReverted => "incident.response_reverted",
            Self::ConsentGiven => "compliance.consent_given",
            Self::ConsentWithdrawn => "compliance.consent_withdrawn",
            Self::DataExported => "compliance.data_exported",
            Self::ErasureRequested => "compliance.erasure_requested",
            Self::ErasureCancelled => "compliance.erasure_cancelled",
            Self::ErasureCompleted => "compliance.erasure_completed",
            Self::ErasureRefused => "compliance.erasure_refused",
            Self::ComplianceChecked => "compliance.check",
            Self::ComplianceReport => "compliance.report",
            Self::RetentionApplied => "compliance.retention",
            Self::AuditArchived => "audit.archived",
            Self::OAuthAuthorized => "oauth.authorized",
            Self::OAuthAuthorizeRefused => "oauth.authorize_refused",
            Self::OAuthConsentGranted => "oauth.consent_granted",
            Self::OAuthConsentDenied => "oauth.consent_denied",
            Self::OAuthConsentRevoked => "oauth.consent_revoked",
            Self::OAuthCodeReused => "oauth.code_reused",
            Self::OAuthClientCreated => "oauth.client_created",
            Self::OAuthClientDeleted => "oauth.client_deleted",
            Self::OAuthTokenIssued => "oauth.token_issued",
            Self::OAuthTokenRefused => "oauth.token_refused",
            Self::OAuthTokenRevoked => "oauth.token_revoked",
        }
    }
}

/// Whether the action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed or was refused.
    Failure,
}

impl Outcome {
    /// The stable name stored in the chain.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Facts about the request an action came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The client's address (after trusted-proxy resolution).
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The id the server answers with in `X-Request-Id`.
    pub request_id: Option<String>,
    /// The client's `Accept-Language` (part of its client signature; not written to the chain).
    pub accept_language: Option<String>,
}

/// An event to seal into the chain.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub(crate) kind: AuditKind,
    pub(crate) outcome: Outcome,
    pub(crate) actor: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) request: RequestMeta,
    pub(crate) details: Value,
}

impl AuditEvent {
    /// An event of `kind` with `outcome`.
    pub fn new(kind: AuditKind, outcome: Outcome) -> Self {
        Self {
            kind,
            outcome,
            actor: None,
            subject: None,
            request: RequestMeta::default(),
            details: Value::Object(Map::new()),
        }
    }

    /// Who acted.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// What was acted upon.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The request it came from.
    pub fn request(mut self, request: RequestMeta) -> Self {
        self.request = request;
        self
    }

    /// Adds one fact. Never pass a secret.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Replaces the details with `details`.
    pub fn details(mut self, details: Map<String, Value>) -> Self {
        self.details = Value::Object(details);
        self
    }
}
