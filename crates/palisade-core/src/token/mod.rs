//! Tokens: refresh-token families (this module's model) and, in submodules, signing keys and access
//! tokens.

pub mod access;
pub mod keys;

use std::fmt;

use crate::user::UserId;

/// A session's identifier (the `sid` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    /// A new random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Wraps a stored id.
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// SHA-256 of a refresh token: all the store ever sees of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 4 bytes are enough to tell hashes apart in a log, and reveal nothing usable.
        write!(f, "TokenHash(")?;
        for b in self.0.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A refresh token as stored: its hash, its family and its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The family: every token rotated from one login.
    pub family_id: uuid::Uuid,
    /// The token this one was rotated from (`None` for the first of a family).
    pub parent: Option<TokenHash>,
    /// The owner.
    pub user_id: UserId,
    /// The session the family belongs to.
    pub session_id: SessionId,
    /// When it was issued.
    pub issued_at: time::OffsetDateTime,
    /// When it stops being accepted.
    pub expires_at: time::OffsetDateTime,
}

/// What presenting a refresh token for rotation came to. Decided atomically in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent and `next` is stored in its place.
    Rotated {
        /// The family, unchanged.
        family_id: uuid::Uuid,
        /// The owner.
        user_id: UserId,
        /// The session.
        session_id: SessionId,
    },
    /// The token was already spent (outside the grace window): the family is now revoked.
    Reused {
        /// The family just revoked.
        family_id: uuid::Uuid,
        /// The owner.
        user_id: UserId,
        /// The session of the family.
        session_id: SessionId,
    },
    /// The family had been revoked before (logout, reuse, password change).
    Revoked,
    /// The token is past its expiry.
    Expired,
    /// No such token.
    Unknown,
}

/// Why a family was revoked, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// A spent token was presented again.
    Reuse,
    /// The user changed their password (other sessions end).
    PasswordChange,
    /// The session was ended by its user or an administrator.
    SessionEnded,
}

impl RevokeReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Reuse => "reuse",
            Self::PasswordChange => "password_change",
            Self::SessionEnded => "session_ended",
        }
    }
}

/// A JWT signing key as stored: the private part encrypted by the keyring, the public part as a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// RFC 7638 thumbprint of the public key (base64url SHA-256); the JWT `kid`.
    pub kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    pub algorithm: String,
    /// Version within the algorithm, from 1; the highest signs.
    pub version: u32,
    /// The private key (PKCS#8 DER) sealed by the keyring, in compact envelope form. HS256 keys are
    /// never stored: they come from configuration and live only in memory.
    pub private_key: String,
    /// The public key as a JWK JSON object.
    pub public_jwk: Option<String>,
    /// When it was made.
    pub created_at: time::OffsetDateTime,
    /// After this instant it no longer signs (`None`: still may sign).
    pub retired_at: Option<time::OffsetDateTime>,
}
