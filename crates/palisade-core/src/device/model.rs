//! The device registry's model: what Palisade remembers about each device a user logs in from.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::session::DeviceInfo;
use crate::user::{InvalidInput, UserId};

/// A device's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(uuid::Uuid);

impl DeviceId {
    /// A new id (time-ordered).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Wraps a stored id.
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id)
    }

    /// Parses an id from a path.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        uuid::Uuid::try_parse(text).map(Self).map_err(|_| InvalidInput::new("device_id", "a UUID"))
    }

    /// The UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How far the user trusts a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    /// New or distrusted.
    Low,
    /// Known: logged in from before, or approved.
    Medium,
    /// Trusted by the user: lowers the risk of its logins.
    High,
}

impl TrustLevel {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        match s {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            _ => Err(InvalidInput::new("trust_level", "one of low, medium, high")),
        }
    }
}

/// The keyed hash that identifies a device for one user: HMAC-SHA256 of the client's fingerprint
/// (or, without one, of the stable request headers) under a server key. The raw material is never
/// stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceFingerprint(pub [u8; 32]);

impl fmt::Debug for DeviceFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceFingerprint({})", data_encoding::HEXLOWER.encode(&self.0[..6]))
    }
}

/// One device of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Its id.
    pub id: DeviceId,
    /// Its user.
    pub user_id: UserId,
    /// What identifies it (unique per user).
    pub fingerprint: DeviceFingerprint,
    /// A name the user knows it by.
    pub name: String,
    /// `mobile`, `desktop`, `tablet`, … as described or as the user agent says.
    pub device_type: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// Browser or client.
    pub browser: Option<String>,
    /// First login from it.
    pub first_seen_at: OffsetDateTime,
    /// Last login from it.
    pub last_seen_at: OffsetDateTime,
    /// Address of the last login.
    pub last_ip: Option<String>,
    /// Country (ISO code) of the last login, if GeoIP knew it.
    pub last_country: Option<String>,
    /// City of the last login, if GeoIP knew it.
    pub last_city: Option<String>,
    /// The user's trust in it.
    pub trust_level: TrustLevel,
    /// Whether it is approved (always, unless device approval is on and it is waiting).
    pub approved: bool,
}

/// What [`crate::store::DeviceStore::record_device_seen`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSeen {
    /// The device as stored now.
    pub device: DeviceRecord,
    /// Whether this login registered it.
    pub new: bool,
}

/// A change to a device by its user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new trust level.
    pub trust_level: Option<TrustLevel>,
}

/// Longest device name, in characters.
pub const DEVICE_NAME_MAX_CHARS: usize = 100;
/// Longest type, OS or browser text, in characters.
pub const DEVICE_FIELD_MAX_CHARS: usize = 64;
/// Longest client fingerprint, in characters.
pub const DEVICE_FINGERPRINT_MAX_CHARS: usize = 256;

/// Checks one descriptive text: trimmed, 1..=`max` characters, no control characters.
fn text(
    field: &'static str,
    value: Option<String>,
    max: usize,
    expected: &'static str,
) -> Result<Option<String>, InvalidInput> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max || trimmed.chars().any(char::is_control) {
        return Err(InvalidInput::new(field, expected));
    }
    Ok(Some(trimmed.to_owned()))
}

/// Checks a device name given by a user (rename).
pub fn parse_device_name(name: &str) -> Result<String, InvalidInput> {
    text("name", Some(name.to_owned()), DEVICE_NAME_MAX_CHARS, "1 to 100 characters, no control characters")?
        .ok_or(InvalidInput::new("name", "1 to 100 characters, no control characters"))
}

impl DeviceInfo {
    /// Checks what a client says about its device: every field optional; names up to 100
    /// characters and the other texts up to 64, none with control characters; a fingerprint up to
    /// 256 printable ASCII characters. Blank fields count as absent.
    pub fn parse(
        name: Option<String>,
        device_type: Option<String>,
        os: Option<String>,
        browser: Option<String>,
        fingerprint: Option<String>,
    ) -> Result<Self, InvalidInput> {
        const FIELD: &str = "at most 64 characters, no control characters";
        let fingerprint = text(
            "device.fingerprint",
            fingerprint,
            DEVICE_FINGERPRINT_MAX_CHARS,
            "at most 256 printable ASCII characters",
        )?;
        if fingerprint.as_deref().is_some_and(|f| !f.chars().all(|c| c.is_ascii_graphic())) {
            return Err(InvalidInput::new("device.fingerprint", "at most 256 printable ASCII characters"));
        }
        Ok(Self {
            name: text("device.name", name, DEVICE_NAME_MAX_CHARS, "at most 100 characters, no control characters")?,
            device_type: text("device.type", device_type, DEVICE_FIELD_MAX_CHARS, FIELD)?,
            os: text("device.os", os, DEVICE_FIELD_MAX_CHARS, FIELD)?,
            browser: text("device.browser", browser, DEVICE_FIELD_MAX_CHARS, FIELD)?,
            fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_descriptions_are_checked() {
        let ok = DeviceInfo::parse(
            Some(" Work laptop ".into()),
            Some("desktop".into()),
            None,
            Some("".into()),
            Some("abc-123".into()),
        )
        .unwrap();
        assert_eq!(ok.name.as_deref(), Some("Work laptop"));
        assert_eq!(ok.browser, None);
        type Case = (Option<String>, Option<String>, Option<String>, &'static str);
        let cases: [Case; 5] = [
            (Some("x".repeat(101)), None, None, "device.name"),
            (Some("bad\u{7}name".into()), None, None, "device.name"),
            (None, Some("y".repeat(65)), None, "device.type"),
            (None, None, Some("has space".into()), "device.fingerprint"),
            (None, None, Some("z".repeat(257)), "device.fingerprint"),
        ];
        for (name, device_type, fingerprint, field) in cases {
            let err = DeviceInfo::parse(name, device_type, None, None, fingerprint).unwrap_err();
            assert_eq!(err.field, field);
        }
        assert_eq!(TrustLevel::parse("high").unwrap(), TrustLevel::High);
        assert!(TrustLevel::parse("total").is_err());
        assert!(parse_device_name("  ").is_err());
        assert_eq!(parse_device_name(" Phone ").unwrap(), "Phone");
    }
}
