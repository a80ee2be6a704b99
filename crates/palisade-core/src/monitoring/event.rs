//! The security event model: one documented list of event types covering everything Palisade audits
//! and what applications report (`POST /monitoring/events`, the original guide's
//! `process_security_event`).
//!
//! Events live in the audit chain, so they are tamper-evident and stored once. A type has up to
//! two audit kinds: the one Palisade itself writes (`LOGIN_FAILURE` is `auth.login_failed`), and
//! `event.<type>` for what an application reports. An application's report never takes Palisade's
//! own kind, so the chain always tells what Palisade saw from what it was told.

use crate::audit::AuditKind;

/// One event type: its wire name and the kind Palisade audits it under, if it does.
#[derive(Debug)]
pub struct EventTypeSpec {
    /// The wire name (`LOGIN_FAILURE`).
    pub name: &'static str,
    /// The audit kind of Palisade's own events of this type.
    pub native: Option<AuditKind>,
    /// The audit kind of applications' reports of this type.
    pub reported: &'static str,
    /// What it means.
    pub about: &'static str,
}

/// A security event type.
#[derive(Debug, Clone, Copy)]
pub struct EventType(&'static EventTypeSpec);

impl PartialEq for EventType {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for EventType {}

impl std::hash::Hash for EventType {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

macro_rules! types {
    ($( $name:literal, $native:expr, $reported:literal, $about:literal; )*) => {
        /// Every event type, in the documented order.
        pub static EVENT_TYPES: &[EventTypeSpec] = &[
            $( EventTypeSpec { name: $name, native: $native, reported: $reported, about: $about }, )*
        ];
    };
}

types! {
    "LOGIN_SUCCESS", Some(AuditKind::LoginSucceeded), "event.login_success", "a login succeeded";
    "LOGIN_FAILURE", Some(AuditKind::LoginFailed), "event.login_failure", "a login failed (wrong password, unknown user, locked account)";
    "ACCOUNT_LOCKED", Some(AuditKind::AccountLockedOut), "event.account_locked", "an account reached its failed-login limit";
    "RISK_BLOCKED", Some(AuditKind::LoginRiskBlocked), "event.risk_blocked", "a login was refused for its risk";
    "MFA_CHALLENGE", Some(AuditKind::MfaChallenged), "event.mfa_challenge", "a login was asked for a second factor";
    "MFA_SUCCESS", Some(AuditKind::MfaVerified), "event.mfa_success", "a second factor was verified";
    "MFA_FAILURE", Some(AuditKind::MfaFailed), "event.mfa_failure", "a second factor was wrong";
    "MFA_LOCKED", Some(AuditKind::MfaLockedOut), "event.mfa_locked", "too many wrong second factors";
    "LOGOUT", Some(AuditKind::Logout), "event.logout", "a user logged out";
    "PASSWORD_CHANGE", Some(AuditKind::PasswordChanged), "event.password_change", "a password was changed";
    "USER_REGISTERED", Some(AuditKind::UserRegistered), "event.user_registered", "an account was created";
    "TOKEN_REFRESH", Some(AuditKind::TokenRefreshed), "event.token_refresh", "a refresh token was rotated";
    "TOKEN_REUSE", Some(AuditKind::RefreshTokenReused), "event.token_reuse", "a spent refresh token came back: its family was revoked";
    "TOKEN_REJECTED", Some(AuditKind::TokenRejected), "event.token_rejected", "an access token was refused";
    "SESSION_HIJACK_SUSPECTED", Some(AuditKind::SessionHijackSuspected), "event.session_hijack_suspected", "a session was used from a client that does not match it";
    "API_KEY_CREATED", Some(AuditKind::ApiKeyCreated), "event.api_key_created", "an API key was made";
    "API_KEY_REVOKED", Some(AuditKind::ApiKeyRevoked), "event.api_key_revoked", "an API key was revoked";
    "API_KEY_REJECTED", Some(AuditKind::ApiKeyRejected), "event.api_key_rejected", "an API key was refused (unknown, expired, rate-limited, forbidden address)";
    "DEVICE_NEW", Some(AuditKind::DeviceRegistered), "event.device_new", "a device was seen for the first time";
    "DATA_DECRYPTED", Some(AuditKind::DataDecrypted), "event.data_decrypted", "sensitive data was decrypted";
    "KEY_ROTATED", Some(AuditKind::KeyRotated), "event.key_rotated", "a key was rotated";
    "ADMIN_CHANGE", Some(AuditKind::AdminGranted), "event.admin_change", "administrator rights were granted";
    "PERMISSION_DENIED", None, "event.permission_denied", "an application refused an action for lack of rights";
    "DATA_ACCESS", None, "event.data_access", "an application read sensitive data";
    "DATA_EXPORT", None, "event.data_export", "an application exported data";
    "CONFIGURATION_CHANGE", None, "event.configuration_change", "an application's security configuration changed";
    "SUSPICIOUS_ACTIVITY", None, "event.suspicious_activity", "an application saw something suspicious";
    "SYSTEM_TEST", None, "event.system_test", "a test event (the original guide's SYSTEM_TEST)";
}

impl EventType {
    /// The type named `name` (any letter case).
    pub fn parse(name: &str) -> Option<Self> {
        EVENT_TYPES.iter().find(|t| t.name.eq_ignore_ascii_case(name.trim())).map(Self)
    }

    /// The type an audit record of `kind` is, if any.
    pub fn of_kind(kind: &str) -> Option<Self> {
        EVENT_TYPES.iter().find(|t| t.reported == kind || t.native.is_some_and(|k| k.as_str() == kind)).map(Self)
    }

    /// Every type's name, in order.
    pub fn names() -> Vec<&'static str> {
        EVENT_TYPES.iter().map(|t| t.name).collect()
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// What it means.
    pub fn about(self) -> &'static str {
        self.0.about
    }

    /// The audit kinds that hold events of this type: Palisade's own, then applications' reports.
    pub fn kinds(self) -> (Option<&'static str>, &'static str) {
        (self.0.native.map(AuditKind::as_str), self.0.reported)
    }

    /// The audit kind an application's report of this type is stored under.
    pub fn reported_kind(self) -> &'static str {
        self.0.reported
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds_are_unique_and_round_trip() {
        let mut names = std::collections::HashSet::new();
        let mut kinds = std::collections::HashSet::new();
        for spec in EVENT_TYPES {
            assert!(names.insert(spec.name), "{} twice", spec.name);
            assert!(kinds.insert(spec.reported), "{} twice", spec.reported);
            assert_eq!(spec.reported, format!("event.{}", spec.name.to_ascii_lowercase()));
            if let Some(native) = spec.native {
                assert!(kinds.insert(native.as_str()), "{} twice", native.as_str());
            }
            let parsed = EventType::parse(&spec.name.to_ascii_lowercase()).unwrap();
            assert_eq!(parsed.name(), spec.name);
            assert_eq!(EventType::of_kind(spec.reported), Some(parsed));
            if let Some(native) = spec.native {
                assert_eq!(EventType::of_kind(native.as_str()), Some(parsed));
            }
        }
        assert!(EventType::parse("LOGIN_FAILED").is_none());
        assert!(EventType::of_kind("system.started").is_none());
        assert!(names.contains("SYSTEM_TEST"));
    }
}
