//! The common-password list: the 19,640 entries Django ships (`data/common-passwords.txt`, BSD-3,
//! provenance and licence in `data/common-passwords.LICENSE`), compiled into the binary and loaded
//! into a set on first use.

use std::collections::HashSet;
use std::sync::LazyLock;

static LIST: &str = include_str!("../../data/common-passwords.txt");

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| LIST.lines().map(str::trim).filter(|line| !line.is_empty()).collect());

/// How many distinct entries the common-password list holds.
pub fn common_password_count() -> usize {
    COMMON.len()
}

/// Whether `lowercase` — a password already NFKC-normalised and lower-cased — is on the list.
/// Surrounding white space is ignored, as Django does.
pub(crate) fn is_common(lowercase: &str) -> bool {
    COMMON.contains(lowercase.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_complete_and_lower_case() {
        assert!(common_password_count() >= 10_000, "{}", common_password_count());
        assert_eq!(common_password_count(), 19_640);
        assert!(COMMON.iter().all(|entry| entry.to_lowercase() == *entry));
    }

    #[test]
    fn known_entries_are_found() {
        for entry in ["password", "123456", "qwerty123", "password1234", "password1!", "iloveyou"] {
            assert!(is_common(entry), "{entry}");
        }
        assert!(is_common(" password1234 "));
        assert!(!is_common("correct horse battery staple"));
        assert!(!is_common(""));
    }
}
