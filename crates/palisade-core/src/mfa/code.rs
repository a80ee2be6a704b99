//! The codes a person types: 6-digit one-time codes and backup codes. Parsed before anything is
//! looked up or counted, so a malformed code is refused (422) without consuming a thing.

use std::fmt;

use zeroize::Zeroizing;

use crate::user::InvalidInput;

/// A 6-digit one-time code (TOTP, SMS, e-mail), as typed: surrounding whitespace is ignored.
#[derive(Clone)]
pub struct OtpCode(Zeroizing<String>);

impl OtpCode {
    /// Exactly six ASCII digits.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let code = text.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(Zeroizing::new(code.to_owned())))
        } else {
            Err(InvalidInput::new("code", "exactly 6 digits"))
        }
    }

    /// The digits.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<hidden>)")
    }
}

/// Characters of a backup code: Crockford's base32 alphabet in lower case (no i, l, o or u), 5 bits
/// each.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters in a backup code: 10, that is 50 bits.
pub const BACKUP_CODE_CHARS: usize = 10;

/// A backup code, normalised: 10 characters of [`ALPHABET`]. Shown as `xxxxx-xxxxx`.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupCode(Zeroizing<String>);

impl BackupCode {
    /// A new code from the OS generator.
    pub fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut bytes = Zeroizing::new([0u8; BACKUP_CODE_CHARS]);
        aws_lc_rs::rand::fill(bytes.as_mut())?;
        // 32 symbols: the low five bits of each byte are uniform, and always an index of ALPHABET.
        let code: Option<String> =
            bytes.iter().map(|b| ALPHABET.get(usize::from(b & 31)).copied().map(char::from)).collect();
        code.map(|code| Self(Zeroizing::new(code))).ok_or(aws_lc_rs::error::Unspecified)
    }

    /// Reads a typed code: case, spaces and dashes do not matter, and the letters people confuse
    /// with digits (`o`, `i`, `l`) are read as `0`, `1`, `1`, as Crockford's base32 does.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        const EXPECTED: &str = "a backup code: 10 letters and digits, as shown (e.g. 3f7k2-9xq4m)";
        let mut code = String::with_capacity(BACKUP_CODE_CHARS);
        for c in text.trim().chars() {
            let c = match c.to_ascii_lowercase() {
                '-' | ' ' => continue,
                'o' => '0',
                'i' | 'l' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return Err(InvalidInput::new("code", EXPECTED)),
            };
            code.push(c);
            if code.len() > BACKUP_CODE_CHARS {
                return Err(InvalidInput::new("code", EXPECTED));
            }
        }
        if code.len() == BACKUP_CODE_CHARS {
            Ok(Self(Zeroizing::new(code)))
        } else {
            Err(InvalidInput::new("code", EXPECTED))
        }
    }

    /// The normalised characters (what is hashed).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// As shown to the user: `xxxxx-xxxxx`.
    pub fn display(&self) -> Zeroizing<String> {
        let (a, b) = self.0.split_at(BACKUP_CODE_CHARS / 2);
        Zeroizing::new(format!("{a}-{b}"))
    }
}

impl fmt::Debug for BackupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCode(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn otp_codes_are_exactly_six_digits() {
        assert_eq!(OtpCode::parse("012345").unwrap().expose(), "012345");
        assert_eq!(OtpCode::parse(" 987654\n").unwrap().expose(), "987654");
        for bad in ["", "12345", "1234567", "12a456", "abcdef", "12 456", "１２３４５６", "-12345"] {
            let err = OtpCode::parse(bad).unwrap_err();
            assert_eq!(err.field, "code", "{bad:?}");
            assert_eq!(err.expected, "exactly 6 digits");
        }
    }

    #[test]
    fn backup_codes_are_read_forgivingly_and_shown_grouped() {
        let code = BackupCode::parse("3F7K2-9XQ4M").unwrap();
        assert_eq!(code.expose(), "3f7k29xq4m");
        assert_eq!(code.display().as_str(), "3f7k2-9xq4m");
        assert_eq!(BackupCode::parse("3f7k2 9xq4m").unwrap(), code);
        assert_eq!(BackupCode::parse("O1IL0-abcde").unwrap().expose(), "01110abcde");
        for bad in ["", "3f7k2-9xq4", "3f7k2-9xq4mm", "3f7k2-9xq4u", "3f7k2_9xq4m", "ü3f7k-9xq4m"] {
            assert!(BackupCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_backup_codes_parse_back_and_differ() {
        let codes: Vec<BackupCode> = (0..50).map(|_| BackupCode::generate().unwrap()).collect();
        for code in &codes {
            assert_eq!(&BackupCode::parse(&code.display()).unwrap(), code);
        }
        let mut texts: Vec<&str> = codes.iter().map(BackupCode::expose).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), 50);
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepts_only_the_forms(text in ".{0,24}") {
            if let Ok(code) = OtpCode::parse(&text) {
                prop_assert!(code.expose().len() == 6 && code.expose().bytes().all(|b| b.is_ascii_digit()));
            }
            if let Ok(code) = BackupCode::parse(&text) {
                prop_assert_eq!(code.expose().len(), BACKUP_CODE_CHARS);
                prop_assert!(code.expose().bytes().all(|b| ALPHABET.contains(&b)));
            }
        }
    }
}
