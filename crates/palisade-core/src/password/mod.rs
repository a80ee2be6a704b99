//! Passwords: the policy, and hashing with argon2id on a bounded blocking pool.
//!
//! # Layout
//! - [`Argon2Params`] (`params`): the cost parameters, never below the OWASP minimum.
//! - [`PasswordHasher`] (`hasher`): synchronous argon2id hash / verify / needs-rehash over PHC
//!   strings, with a small pool of reusable argon2 memory arenas.
//! - [`PasswordService`] (`service`): the async face of the hasher. Every derivation runs on
//!   `tokio::task::spawn_blocking` behind a semaphore sized to the cores, so a login flood queues
//!   instead of starving the async workers; a dummy hash makes unknown users cost what known ones do.
//! - [`PasswordPolicy`] (`policy`): the configurable rules a new password must pass, each failure
//!   reported as a [`PolicyViolation`].
//! - `common`: the 19,640 common passwords Django ships (BSD-3, `data/common-passwords.LICENSE`).
//!
//! # What this module must never do
//! - Log, `Debug`-print, echo or return a password, or put one into an error or a violation message.
//! - Derive a hash on an async worker thread (only [`PasswordHasher`] itself blocks; callers in async
//!   code go through [`PasswordService`]).
//! - Compare a derived hash with anything but [`subtle::ConstantTimeEq`].
//!
//! Every password is NFKC-normalised (NIST SP 800-63B §5.1.1.2) before it is measured by the policy
//! and before it is hashed or verified, so the same password typed as composed or decomposed Unicode,
//! or with full-width characters, is the same password.

mod common;
mod hasher;
mod params;
mod policy;
mod service;

pub use common::common_password_count;
pub use hasher::{PasswordHashError, PasswordHasher};
pub use params::Argon2Params;
pub use policy::{MAX_PASSWORD_CHARS, PasswordPolicy, PolicyConfigError, PolicyViolation};
pub use service::PasswordService;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// The longest password input, in UTF-8 bytes, that is normalised, measured or hashed at all.
///
/// Far above what the policy lets anyone set ([`MAX_PASSWORD_CHARS`] characters is at most 512
/// bytes), and low enough that an attacker cannot make normalisation or the argon2 pre-hash
/// expensive by posting a megabyte-long "password".
pub(crate) const MAX_PASSWORD_BYTES: usize = 4096;

/// The NFKC form of `password` in a buffer that is wiped on drop, or `None` when the input (or its
/// normal form) is longer than [`MAX_PASSWORD_BYTES`].
///
/// The length of the normal form is counted first so the buffer is allocated once at its final
/// size: a growing `String` would leave copies of the password behind in freed memory.
pub(crate) fn normalize(password: &SecretString) -> Option<Zeroizing<String>> {
    let raw = password.expose_secret();
    if raw.len() > MAX_PASSWORD_BYTES {
        return None;
    }
    Some(collect_exact(|| raw.nfkc())).filter(|normal| normal.len() <= MAX_PASSWORD_BYTES)
}

/// Collects the characters produced by `chars` into a wiped-on-drop `String` allocated once, at the
/// exact size (the iterator is run twice: once to measure, once to fill).
pub(crate) fn collect_exact<I, F>(chars: F) -> Zeroizing<String>
where
    F: Fn() -> I,
    I: Iterator<Item = char>,
{
    let len: usize = chars().map(char::len_utf8).sum();
    let mut out = Zeroizing::new(String::with_capacity(len));
    out.extend(chars());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_applies_nfkc() {
        // "é" composed and decomposed, and a full-width "Ａ", normalise to the same bytes.
        let composed = normalize(&SecretString::from("caf\u{e9}\u{ff21}")).unwrap();
        let decomposed = normalize(&SecretString::from("cafe\u{301}A")).unwrap();
        assert_eq!(composed.as_str(), decomposed.as_str());
        assert_eq!(composed.as_str(), "caf\u{e9}A");
    }

    #[test]
    fn normalize_refuses_oversized_input() {
        assert!(normalize(&SecretString::from("a".repeat(MAX_PASSWORD_BYTES))).is_some());
        assert!(normalize(&SecretString::from("a".repeat(MAX_PASSWORD_BYTES + 1))).is_none());
        // U+FDFA expands to 18 characters (33 bytes) under NFKC: short input, oversized normal form.
        assert!(normalize(&SecretString::from("\u{fdfa}".repeat(200))).is_none());
    }

    #[test]
    fn collect_exact_allocates_once() {
        let s = collect_exact(|| "ab\u{e9}".chars());
        assert_eq!(s.as_str(), "ab\u{e9}");
        assert_eq!(s.capacity(), s.len());
    }
}
