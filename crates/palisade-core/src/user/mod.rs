//! Users: identifiers, normalised usernames, e-mail addresses and the stored account.
//!
//! Values are parsed once at the edge into these types ("parse, don't validate"); a `Username` in
//! hand is already normalised, so two spellings of one name can never become two accounts.

use std::fmt;

use unicode_normalization::UnicodeNormalization as _;

/// A user's stable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UserId(uuid::Uuid);

impl UserId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Wraps a stored id.
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id)
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        uuid::Uuid::try_parse(text).map(Self).map_err(|_| InvalidInput::new("user_id", "expected a UUID"))
    }

    /// The UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a value given by a caller was refused: which field, and what form it must take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {expected}")]
pub struct InvalidInput {
    /// The field.
    pub field: &'static str,
    /// What it must be.
    pub expected: &'static str,
}

impl InvalidInput {
    /// A refusal of `field`.
    pub fn new(field: &'static str, expected: &'static str) -> Self {
        Self { field, expected }
    }
}

/// Longest username, in characters, after normalisation.
pub const USERNAME_MAX_CHARS: usize = 64;

/// A username in its canonical form: Unicode NFKC, then lower-cased, trimmed; 1 to 64 characters, no
/// whitespace or control characters. `Alice`, `ALICE` and `Ａｌｉｃｅ` (full-width) are one name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Normalises and checks `text`.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let canonical: String = text.trim().nfkc().collect::<String>().to_lowercase().nfkc().collect();
        let count = canonical.chars().count();
        if count == 0 || count > USERNAME_MAX_CHARS {
            return Err(InvalidInput::new("username", "1 to 64 characters"));
        }
        if canonical.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidInput::new("username", "no spaces or control characters"));
        }
        Ok(Self(canonical))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address: one `@`, a non-empty local part, a domain with a dot; at most 254 characters.
/// The domain is lower-cased (the local part is kept as given, as RFC 5321 says it may matter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Checks and normalises `text`.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        const EXPECTED: &str = "an e-mail address such as name@example.com";
        let text = text.trim();
        let (local, domain) = text.rsplit_once('@').ok_or(InvalidInput::new("email", EXPECTED))?;
        let valid = !local.is_empty()
            && text.len() <= 254
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !text.chars().any(|c| c.is_whitespace() || c.is_control())
            && !local.contains('@');
        if !valid {
            return Err(InvalidInput::new("email", EXPECTED));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its canonical username (unique).
    pub username: Username,
    /// Its e-mail address, if given (unique when present).
    pub email: Option<Email>,
    /// The password hash in PHC string form (`$argon2id$v=19$m=…`). Never logged or returned.
    pub password_hash: String,
    /// When the password was last set.
    pub password_changed_at: time::OffsetDateTime,
    /// When the account was made.
    pub created_at: time::OffsetDateTime,
    /// Locked by an administrator (distinct from the temporary lockout after failed logins).
    pub locked: bool,
    /// An administrator: their logins carry the `admin` scope.
    pub admin: bool,
}

/// What inserting a user came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserInsert {
    /// Stored.
    Inserted,
    /// The username is taken; nothing stored.
    UsernameTaken,
    /// The e-mail address is taken; nothing stored.
    EmailTaken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_one_name_whatever_the_case_or_width() {
        let a = Username::parse("Alice").unwrap();
        assert_eq!(a, Username::parse("ALICE").unwrap());
        assert_eq!(a, Username::parse("  alice ").unwrap());
        assert_eq!(a, Username::parse("Ａｌｉｃｅ").unwrap(), "full-width letters fold under NFKC");
        assert_eq!(Username::parse("ﬁle").unwrap().as_str(), "file", "ligatures fold under NFKC");
        assert_eq!(Username::parse("test@example.com").unwrap().as_str(), "test@example.com");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse("two words").is_err());
        assert!(Username::parse("tab\there").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse(&"é".repeat(64)).is_ok(), "the limit counts characters, not bytes");
    }

    #[test]
    fn emails_are_checked_and_their_domain_lowercased() {
        assert_eq!(Email::parse("Bob@Example.COM").unwrap().as_str(), "Bob@example.com");
        for bad in ["", "bob", "@example.com", "bob@", "bob@localhost", "bob@.com", "bob@com.", "b ob@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
