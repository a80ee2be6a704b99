//! The text of an API key: `<prefix><id>_<secret><checksum>`.
//!
//! - `prefix`: from configuration (default `spa_`), so leaked keys are recognised by secret scanners;
//! - `id`: the key's UUID in 32 lower-case hex digits (the lookup needs no hash);
//! - `secret`: 256 random bits in base64url (43 characters);
//! - `checksum`: the first 4 bytes of SHA-256 over everything before it, in 8 hex digits, so a typo is
//!   refused without a store lookup.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};

const ID_LEN: usize = 32;
const SECRET_LEN: usize = 43;
const CHECKSUM_LEN: usize = 8;

/// Why a text is not an API key of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Wrong prefix, length or characters.
    #[error("not an API key of this server")]
    Malformed,
    /// The checksum does not match: a typo or a forgery.
    #[error("the API key's checksum does not match")]
    Checksum,
}

/// A parsed API key: its id and its secret part.
#[derive(Debug)]
pub struct ApiKeyText {
    /// The key's id.
    pub id: uuid::Uuid,
    /// The 43-character secret part (never logged).
    pub secret: SecretString,
}

fn checksum(body: &str) -> String {
    let d = digest::digest(&digest::SHA256, body.as_bytes());
    d.as_ref().iter().take(CHECKSUM_LEN / 2).map(|b| format!("{b:02x}")).collect()
}

impl ApiKeyText {
    /// A new key with `prefix` and `id`; returns its full text.
    pub fn generate(prefix: &str, id: uuid::Uuid) -> Result<(SecretString, Self), ParseError> {
        let mut random = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(random.as_mut()).map_err(|_| ParseError::Malformed)?;
        let secret = URL_SAFE_NO_PAD.encode(random.as_ref());
        let body = format!("{prefix}{}_{secret}", id.simple());
        let text = format!("{body}{}", checksum(&body));
        Ok((SecretString::from(text), Self { id, secret: SecretString::from(secret) }))
    }

    /// Parses and checks a key's text (no store lookup).
    pub fn parse(prefix: &str, text: &str) -> Result<Self, ParseError> {
        let rest = text.strip_prefix(prefix).ok_or(ParseError::Malformed)?;
        if rest.len() != ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN || !rest.is_ascii() {
            return Err(ParseError::Malformed);
        }
        let (id, rest) = rest.split_at(ID_LEN);
        let rest = rest.strip_prefix('_').ok_or(ParseError::Malformed)?;
        let (secret, sum) = rest.split_at(SECRET_LEN);
        if !secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ParseError::Malformed);
        }
        let id = uuid::Uuid::try_parse(id).map_err(|_| ParseError::Malformed)?;
        let body_len = prefix.len() + ID_LEN + 1 + SECRET_LEN;
        let body = text.get(..body_len).ok_or(ParseError::Malformed)?;
        if checksum(body) != sum {
            return Err(ParseError::Checksum);
        }
        Ok(Self { id, secret: SecretString::from(secret.to_owned()) })
    }

    /// The secret part's bytes, for hashing.
    pub(crate) fn secret_bytes(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_and_typos_are_caught() {
        let id = uuid::Uuid::now_v7();
        let (text, made) = ApiKeyText::generate("spa_", id).unwrap();
        let text = text.expose_secret().to_owned();
        assert!(text.starts_with("spa_"));
        let parsed = ApiKeyText::parse("spa_", &text).unwrap();
        assert_eq!(parsed.id, id);
        assert_eq!(parsed.secret.expose_secret(), made.secret.expose_secret());
        // Every single-character change is refused by the checksum or the format, without a lookup.
        for i in 4..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(ApiKeyText::parse("spa_", &typo).is_err(), "position {i}");
        }
        assert_eq!(ApiKeyText::parse("xyz_", &text).unwrap_err(), ParseError::Malformed);
        assert_eq!(ApiKeyText::parse("spa_", "spa_short").unwrap_err(), ParseError::Malformed);
    }
}
