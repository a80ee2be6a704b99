//! The second step of a login: after the password, the login answers an opaque `mfa_token` instead
//! of tokens. Its state lives in the hot store under the SHA-256 of the token (the store never holds
//! the token itself) for the challenge's lifetime.
//!
//! # The token
//! `mfa.<expiry, unix seconds>.<256 random bits, base64url>`. The expiry in the text only lets the
//! answer say "expired" rather than "unknown"; changing it changes the hash, so it extends nothing.
//!
//! # Single use
//! Every change of state is a compare-and-set on the whole stored value: of two concurrent right
//! codes for the same challenge, one moves it on and the other is refused. When enough factors are
//! passed the state becomes *spent* (kept until the expiry), and a spent token is refused as "already
//! used".

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::MfaMethod;
use crate::auth::AuthError;
use crate::clock::Clock;
use crate::session::DeviceInfo;
use crate::store::{HotKey, HotStore};
use crate::user::UserId;

/// What a live challenge remembers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengeState {
    /// The user who passed the password step.
    pub user_id: UserId,
    /// The user's `password_changed_at` at the password step: a password change in between voids
    /// the challenge.
    #[serde(with = "time::serde::rfc3339")]
    pub password_changed_at: OffsetDateTime,
    /// Distinct methods to pass.
    pub required: u8,
    /// Methods the user can use, as offered in the login answer.
    pub methods: Vec<MfaMethod>,
    /// Methods passed so far, in order.
    pub done: Vec<MfaMethod>,
    /// The device the login described.
    #[serde(default)]
    pub device: Option<DeviceInfo>,
    /// Whether the password was past its maximum age.
    #[serde(default)]
    pub password_expired: bool,
    /// The challenge was completed: the token is spent.
    #[serde(default)]
    pub spent: bool,
    /// The password step's risk assessment.
    #[serde(default)]
    pub risk: Option<crate::risk::RiskSummary>,
    /// The login asked for a remember-device token.
    #[serde(default)]
    pub remember_device: bool,
}

impl ChallengeState {
    /// Methods still offered: those not passed yet.
    pub fn remaining(&self) -> Vec<MfaMethod> {
        self.methods.iter().copied().filter(|m| !self.done.contains(m)).collect()
    }

    /// Factors still to pass.
    pub fn factors_left(&self) -> u8 {
        self.required.saturating_sub(u8::try_from(self.done.len()).unwrap_or(u8::MAX))
    }
}

/// A challenge as read from the store: its state and the exact stored bytes (for compare-and-set).
#[derive(Clone)]
pub struct MfaChallenge {
    key: HotKey,
    raw: Vec<u8>,
    /// Its state.
    pub state: ChallengeState,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

impl MfaChallenge {
    /// A stable id of the challenge (the store key, derived from the token's hash): what one-time
    /// codes sent for this login are bound to.
    pub fn id(&self) -> &str {
        self.key.as_str()
    }
}

impl fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaChallenge").field("state", &self.state).field("expires_at", &self.expires_at).finish()
    }
}

/// Challenges over the hot store.
pub(crate) struct Challenges {
    hot: Arc<dyn HotStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
}

fn key_of(token: &str) -> HotKey {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    HotKey::new(&format!("mfa:{}", data_encoding::HEXLOWER.encode(digest.as_ref())), "")
}

/// The expiry a token's text claims, if it has the form of one.
fn parse(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    (parts.next()? == "mfa").then_some(())?;
    let expiry = parts.next()?;
    let secret = parts.next()?;
    if parts.next().is_some() || secret.len() != 43 || expiry.len() > 12 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(secret).ok()?;
    expiry.parse().ok()
}

impl Challenges {
    pub(crate) fn new(hot: Arc<dyn HotStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self { hot, clock, ttl }
    }

    /// Lifetime of a challenge.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a challenge; returns its token (shown once).
    pub(crate) async fn open(&self, state: &ChallengeState) -> Result<SecretString, AuthError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| AuthError::Internal("random generator failed".into()))?;
        let expires = self.clock.now() + self.ttl;
        let token = format!("mfa.{}.{}", expires.unix_timestamp(), URL_SAFE_NO_PAD.encode(bytes.as_ref()));
        let raw = serde_json::to_vec(state).map_err(|e| AuthError::Internal(format!("encoding a challenge: {e}")))?;
        self.hot.put(&key_of(&token), &raw, self.ttl).await?;
        Ok(SecretString::from(token))
    }

    /// The live challenge of `token`. Malformed or unknown: `InvalidToken`; past its expiry:
    /// `TokenExpired`; already completed: `MfaTokenUsed`. Reads only.
    pub(crate) async fn get(&self, token: &SecretString) -> Result<MfaChallenge, AuthError> {
        let token = token.expose_secret();
        let expiry = parse(token).ok_or(AuthError::InvalidToken)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(expiry).map_err(|_| AuthError::InvalidToken)?;
        if self.clock.now() >= expires_at {
            return Err(AuthError::TokenExpired);
        }
        let key = key_of(token);
        let raw = self.hot.get(&key).await?.ok_or(AuthError::InvalidToken)?;
        let state: ChallengeState = serde_json::from_slice(&raw)
            .map_err(|e| AuthError::Internal(format!("a stored challenge is corrupt: {e}")))?;
        if state.spent {
            return Err(AuthError::MfaTokenUsed);
        }
        Ok(MfaChallenge { key, raw, state, expires_at })
    }

    /// Replaces the challenge's state with `next` if it is still what was read; `false` when another
    /// request changed it first.
    pub(crate) async fn advance(&self, challenge: &MfaChallenge, next: &ChallengeState) -> Result<bool, AuthError> {
        let ttl = challenge.expires_at - self.clock.now();
        if ttl <= Duration::ZERO {
            return Ok(false);
        }
        let raw = serde_json::to_vec(next).map_err(|e| AuthError::Internal(format!("encoding a challenge: {e}")))?;
        Ok(self
            .hot
            .compare_and_set(&challenge.key, Some(&challenge.raw), &raw, ttl.max(Duration::milliseconds(1)))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_form_parses() {
        let secret = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert_eq!(parse(&format!("mfa.1800000000.{secret}")), Some(1_800_000_000));
        for bad in [
            String::new(),
            format!("mfa.1800000000.{secret}.x"),
            format!("mft.1800000000.{secret}"),
            format!("mfa.18x.{secret}"),
            format!("mfa.1800000000.{}", &secret[1..]),
            format!("mfa.1800000000000000.{secret}"),
            "mfa..".to_owned(),
        ] {
            assert_eq!(parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn remaining_methods_and_factors() {
        let state = ChallengeState {
            user_id: UserId::generate(),
            password_changed_at: OffsetDateTime::UNIX_EPOCH,
            required: 2,
            methods: vec![MfaMethod::Totp, MfaMethod::BackupCode, MfaMethod::Sms],
            done: vec![MfaMethod::Totp],
            device: None,
            password_expired: false,
            spent: false,
            risk: None,
            remember_device: false,
        };
        assert_eq!(state.remaining(), [MfaMethod::BackupCode, MfaMethod::Sms]);
        assert_eq!(state.factors_left(), 1);
    }
}
