//! TOTP (RFC 6238) as authenticator apps expect it: HMAC-SHA-1, 6 digits, 30-second steps, a skew
//! window of one step either side. The arithmetic is totp-rs's; this module adds what it leaves to
//! its callers: secrets from the OS generator, the `otpauth://` URI and its QR code, and reporting
//! *which* step a code matched so the replay guard can refuse it for the rest of its window.

use std::fmt;

use totp_rs::{Builder, Totp};
use zeroize::Zeroizing;

/// Length of a new secret: 160 bits, RFC 4226's recommendation (and Google Authenticator's).
pub const SECRET_LEN: usize = 20;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;

/// A TOTP shared secret. Never printed; zeroed on drop.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<hidden>)")
    }
}

/// Why a TOTP could not be made or a secret read.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The random generator failed.
    #[error("the random generator failed")]
    Random,
    /// The secret, issuer or account name cannot make an RFC 6238 TOTP (a `:` in a label, a
    /// secret under 128 bits).
    #[error("cannot build a TOTP: {0}")]
    Invalid(String),
}

impl TotpSecret {
    /// A new random secret of [`SECRET_LEN`] bytes from the OS generator.
    pub fn generate() -> Result<Self, TotpError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut_slice()).map_err(|_| TotpError::Random)?;
        Ok(Self(bytes))
    }

    /// A secret from its raw bytes (as unsealed from the store).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A secret from its base32 text (as an app shows it; padding and case do not matter).
    pub fn from_base32(text: &str) -> Option<Self> {
        let clean: String = text.trim().trim_end_matches('=').to_ascii_uppercase();
        data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok().map(|bytes| Self(Zeroizing::new(bytes)))
    }

    /// The raw bytes, to be sealed by the keyring.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in unpadded RFC 4648 base32, as authenticator apps take it by hand.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&self.0))
    }

    fn totp(&self, issuer: Option<&str>, account: Option<&str>) -> Result<Totp, TotpError> {
        let mut builder = Builder::new().with_secret(self.0.as_slice()).with_skew(1).with_step_duration(STEP_SECS);
        if let Some(account) = account {
            builder = builder.with_account_name(account);
        }
        if let Some(issuer) = issuer {
            builder = builder.with_issuer(Some(issuer));
        }
        builder.build().map_err(|e| TotpError::Invalid(e.to_string()))
    }

    /// The step a 6-digit `code` is right for at `unix_time`, within one step either side.
    pub fn matching_step(&self, code: &str, unix_time: u64) -> Result<Option<u64>, TotpError> {
        Ok(self.totp(None, None)?.check(code, unix_time))
    }

    /// The code for `unix_time` (diagnostics and tests).
    pub fn code_at(&self, unix_time: u64) -> Result<String, TotpError> {
        Ok(self.totp(None, None)?.generate(unix_time).to_string())
    }

    /// The `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER` URI of Google's Key URI format.
    /// Neither label may contain `:`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<Zeroizing<String>, TotpError> {
        let uri = self.totp(Some(issuer), Some(account))?.to_url().map_err(|e| TotpError::Invalid(e.to_string()))?;
        Ok(Zeroizing::new(uri))
    }
}

/// The step `unix_time` falls in.
pub fn step_of(unix_time: u64) -> u64 {
    unix_time / STEP_SECS
}

/// An inline SVG QR code of `text` (medium error correction), rendered by the `qrcode` crate.
pub fn qr_svg(text: &str) -> Result<String, TotpError> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| TotpError::Invalid(format!("QR code: {e}")))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 secret is the ASCII string "12345678901234567890"; the table's
    /// codes have 8 digits, of which a 6-digit TOTP is the last six (the same HOTP value mod 10^6).
    const RFC6238_SHA1: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        for (time, eight) in RFC6238_SHA1 {
            let six = &eight[2..];
            assert_eq!(secret.code_at(time).unwrap(), six, "T = {time}");
            assert_eq!(secret.matching_step(six, time).unwrap(), Some(step_of(time)), "T = {time}");
        }
        // The 8-digit form of the same instant is checked by totp-rs itself with 8 digits.
        let eight = Builder::new()
            .with_secret(b"12345678901234567890".as_slice())
            .with_digits(8)
            .with_step_duration(30)
            .build()
            .unwrap();
        for (time, code) in RFC6238_SHA1 {
            assert_eq!(eight.generate(time).to_string(), code, "T = {time}");
        }
    }

    #[test]
    fn codes_match_one_step_either_side_and_no_further() {
        let secret = TotpSecret::generate().unwrap();
        let now = 1_800_000_015;
        let current = step_of(now);
        for offset in [-1i64, 0, 1] {
            let step = current.checked_add_signed(offset).unwrap();
            let code = secret.code_at(step * STEP_SECS).unwrap();
            assert_eq!(secret.matching_step(&code, now).unwrap(), Some(step), "offset {offset}");
        }
        for offset in [-3i64, -2, 2, 3] {
            let step = current.checked_add_signed(offset).unwrap();
            let code = secret.code_at(step * STEP_SECS).unwrap();
            // A code of a far step could collide with a near one by chance (1 in 10^6 per step).
            let near: Vec<String> =
                (current - 1..=current + 1).map(|s| secret.code_at(s * STEP_SECS).unwrap()).collect();
            if !near.contains(&code) {
                assert_eq!(secret.matching_step(&code, now).unwrap(), None, "offset {offset}");
            }
        }
    }

    #[test]
    fn malformed_codes_never_match() {
        let secret = TotpSecret::generate().unwrap();
        let now = 1_800_000_000;
        let code = secret.code_at(now).unwrap();
        for bad in ["", "12345", "1234567", "abcdef", &format!(" {code}"), &format!("{code}0")] {
            assert_eq!(secret.matching_step(bad, now).unwrap(), None, "{bad:?}");
        }
    }

    #[test]
    fn the_otpauth_uri_carries_issuer_account_and_base32_secret() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let uri = secret.otpauth_uri("Palisade", "alice").unwrap();
        assert!(uri.starts_with("otpauth://totp/Palisade:alice?"), "{}", *uri);
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{}", *uri);
        assert!(uri.contains("issuer=Palisade"), "{}", *uri);
        assert_eq!(secret.to_base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let back = TotpSecret::from_base32("gezdgnbvgy3tqojqgezdgnbvgy3tqojq").unwrap();
        assert_eq!(back.expose_bytes(), b"12345678901234567890");
        assert!(TotpSecret::from_base32("not base32!").is_none());
        assert!(secret.otpauth_uri("Pali:sade", "alice").is_err());
    }

    #[test]
    fn the_qr_code_is_an_svg_document() {
        let svg = qr_svg("otpauth://totp/Palisade:alice?secret=ABC&issuer=Palisade").unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.contains("</svg>"));
    }

    #[test]
    fn the_secret_is_never_printed() {
        let secret = TotpSecret::generate().unwrap();
        assert_eq!(format!("{secret:?}"), "TotpSecret(<hidden>)");
    }
}
