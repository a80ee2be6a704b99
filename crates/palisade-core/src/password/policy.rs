//! The password policy: the rules a new password must pass, each failure reported separately.

use secrecy::SecretString;
use time::{Duration, OffsetDateTime};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::common::is_common;
use super::{collect_exact, normalize};

/// The hard cap on a password's length, in Unicode characters after NFKC normalisation. No
/// configuration can raise it; it keeps every password well inside what is hashed at all.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The shortest username or e-mail local part that a password is checked not to contain.
const MIN_PERSONAL_CHARS: usize = 3;

/// What a new password must satisfy. Built from configuration; [`validate`](Self::validate) it once
/// at start-up.
///
/// The defaults follow NIST SP 800-63B and OWASP ASVS 5 §6.2: length and a common-password and
/// guessability check, no composition rules (`require_*` are off), no periodic expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values after NFKC). Default 12.
    pub min_length: usize,
    /// Most characters; never above [`MAX_PASSWORD_CHARS`]. Default 128.
    pub max_length: usize,
    /// Require an upper-case letter. Default off.
    pub require_uppercase: bool,
    /// Require a lower-case letter. Default off.
    pub require_lowercase: bool,
    /// Require a digit. Default off.
    pub require_digit: bool,
    /// Require a character that is neither a letter nor a digit (space counts). Default off.
    pub require_symbol: bool,
    /// Lowest zxcvbn score accepted, 0–4; 0 disables the check. Default 3.
    pub min_zxcvbn_score: u8,
    /// How many previous passwords may not be reused (the current one included); 0 disables.
    /// Checked by the caller against stored hashes with
    /// [`PasswordService::matches_any`](super::PasswordService::matches_any). Default 5.
    pub history: u32,
    /// Passwords older than this must be changed. Default `None` (ASVS V6.2.10: no periodic rotation).
    pub max_age: Option<Duration>,
    /// Refuse passwords on the common-password list. Default on.
    pub reject_common: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 12,
            max_length: MAX_PASSWORD_CHARS,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_symbol: false,
            min_zxcvbn_score: 3,
            history: 5,
            max_age: None,
            reject_common: true,
        }
    }
}

/// One failed rule. `rule` is a stable machine-readable name; `message` is for people and never
/// contains the password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyViolation {
    /// `min_length`, `max_length`, `uppercase`, `lowercase`, `digit`, `symbol`, `common_password`,
    /// `contains_username`, `contains_email`, `weak` or `reused`.
    pub rule: &'static str,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl PolicyViolation {
    fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self { rule, message: message.into() }
    }

    /// The password is one of the last `history` passwords (found by the caller with
    /// [`PasswordService::matches_any`](super::PasswordService::matches_any)).
    pub fn reused(history: u32) -> Self {
        let which =
            if history == 1 { "your current password".to_owned() } else { format!("your last {history} passwords") };
        Self::new("reused", format!("The password must differ from {which}."))
    }
}

/// A policy setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password policy `{setting}`: {problem}")]
pub struct PolicyConfigError {
    /// The setting's field name.
    pub setting: &'static str,
    /// What is wrong with its value, and what is expected.
    pub problem: String,
}

impl PasswordPolicy {
    /// Checks the settings themselves.
    ///
    /// # Errors
    /// The first unusable setting: `min_length` below 8 (ASVS V6.2.1) or above `max_length`,
    /// `max_length` below 64 (ASVS V6.2.9) or above [`MAX_PASSWORD_CHARS`], `min_zxcvbn_score`
    /// above 4, or a `max_age` that is not positive.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        let fail = |setting, problem: String| Err(PolicyConfigError { setting, problem });
        if self.min_length < 8 {
            return fail("min_length", format!("{} is too short; at least 8 is required", self.min_length));
        }
        if self.max_length < 64 || self.max_length > MAX_PASSWORD_CHARS {
            return fail(
                "max_length",
                format!("{} is out of range; expected 64 to {MAX_PASSWORD_CHARS}", self.max_length),
            );
        }
        if self.min_length > self.max_length {
            return fail("min_length", format!("{} is above max_length ({})", self.min_length, self.max_length));
        }
        if self.min_zxcvbn_score > 4 {
            return fail(
                "min_zxcvbn_score",
                format!("{} is out of range; expected 0 (off) to 4", self.min_zxcvbn_score),
            );
        }
        if self.max_age.is_some_and(|age| !age.is_positive()) {
            return fail("max_age", "must be positive, or unset for no expiry".to_owned());
        }
        Ok(())
    }

    /// The effective maximum length: `max_length`, never above [`MAX_PASSWORD_CHARS`].
    pub fn max_chars(&self) -> usize {
        self.max_length.min(MAX_PASSWORD_CHARS)
    }

    /// Checks a new password for the account `username` (and `email`, when it has one).
    ///
    /// The password is NFKC-normalised first; length counts Unicode characters of that form. The
    /// username and the e-mail's local part (when at least 3 characters) may not appear in it,
    /// ignoring case, and are given to zxcvbn as user inputs.
    ///
    /// Runs zxcvbn, which is CPU work that grows fast with length (about 0.2 ms for 25 characters,
    /// 10 ms or more for 100, release build): async callers should use
    /// [`PasswordService::check_policy`](super::PasswordService::check_policy), which runs it on the
    /// blocking pool.
    ///
    /// # Errors
    /// Every failed rule, in a stable order (length, composition, common, personal, weak). A
    /// password over 4096 bytes is reported as `max_length` alone, without looking further.
    pub fn check(
        &self,
        password: &SecretString,
        username: &str,
        email: Option<&str>,
    ) -> Result<(), Vec<PolicyViolation>> {
        let max = self.max_chars();
        let too_long =
            || PolicyViolation::new("max_length", format!("The password must be at most {max} characters long."));
        let Some(normal) = normalize(password) else {
            return Err(vec![too_long()]);
        };
        let mut violations = Vec::new();

        let length = normal.chars().count();
        if length < self.min_length {
            violations.push(PolicyViolation::new(
                "min_length",
                format!("The password must be at least {} characters long.", self.min_length),
            ));
        }
        if length > max {
            violations.push(too_long());
        }

        for (required, rule, test, what) in [
            (self.require_uppercase, "uppercase", char::is_uppercase as fn(char) -> bool, "an upper-case letter"),
            (self.require_lowercase, "lowercase", char::is_lowercase, "a lower-case letter"),
            (self.require_digit, "digit", char::is_numeric, "a digit"),
            (self.require_symbol, "symbol", is_symbol, "a character that is not a letter or a digit"),
        ] {
            if required && !normal.chars().any(test) {
                violations.push(PolicyViolation::new(rule, format!("The password must contain {what}.")));
            }
        }

        let lower = collect_exact(|| normal.chars().flat_map(char::to_lowercase));
        if self.reject_common && is_common(&lower) {
            violations
                .push(PolicyViolation::new("common_password", "The password is on a list of commonly used passwords."));
        }

        let local_part = email.map(|e| e.rsplit_once('@').map_or(e, |(local, _)| local));
        if personal(username).is_some_and(|name| lower.contains(name.as_str())) {
            violations.push(PolicyViolation::new("contains_username", "The password must not contain the username."));
        }
        if local_part.and_then(personal).is_some_and(|local| lower.contains(local.as_str())) {
            violations.push(PolicyViolation::new(
                "contains_email",
                "The password must not contain the e-mail address's name.",
            ));
        }

        if self.min_zxcvbn_score > 0 {
            // zxcvbn lower-cases these itself and finds them (and their l33t and reversed forms)
            // as dictionary words inside the password.
            let inputs: Vec<&str> = [Some(username), local_part, email]
                .into_iter()
                .flatten()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let estimate = zxcvbn::zxcvbn(&normal, &inputs);
            let score = u8::from(estimate.score());
            if score < self.min_zxcvbn_score {
                let mut message = format!(
                    "The password is too easy to guess (strength {score} of 4; at least {} is required).",
                    self.min_zxcvbn_score
                );
                if let Some(feedback) = estimate.feedback() {
                    if let Some(warning) = feedback.warning() {
                        message.push_str(&format!(" {warning}"));
                    }
                    for suggestion in feedback.suggestions() {
                        message.push_str(&format!(" {suggestion}"));
                    }
                }
                violations.push(PolicyViolation::new("weak", message));
            }
        }

        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }

    /// Whether a password set at `changed_at` has passed `max_age` at `now` (never, without one).
    pub fn is_expired(&self, changed_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        self.max_age.is_some_and(|age| changed_at.checked_add(age).is_some_and(|deadline| now >= deadline))
    }
}

/// A "symbol": anything printable that is neither a letter nor a digit (space included, as in
/// OWASP's list of special characters).
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_control()
}

/// A username or local part as compared with the password: trimmed, NFKC, lower-case; `None` when
/// shorter than [`MIN_PERSONAL_CHARS`] (too short to mean anything inside a password).
fn personal(value: &str) -> Option<Zeroizing<String>> {
    let key = collect_exact(|| value.trim().nfkc().flat_map(char::to_lowercase));
    (key.chars().count() >= MIN_PERSONAL_CHARS).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A password that passes every default rule for the user "alice".
    const STRONG: &str = "violet-Harbour-48-quantum";

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    fn rules(result: Result<(), Vec<PolicyViolation>>) -> Vec<&'static str> {
        match result {
            Ok(()) => Vec::new(),
            Err(violations) => violations.into_iter().map(|v| v.rule).collect(),
        }
    }

    /// The default policy with zxcvbn and the common list off, so each test isolates one rule.
    fn bare() -> PasswordPolicy {
        PasswordPolicy { min_zxcvbn_score: 0, reject_common: false, ..PasswordPolicy::default() }
    }

    #[test]
    fn defaults() {
        let p = PasswordPolicy::default();
        assert_eq!((p.min_length, p.max_length, p.min_zxcvbn_score, p.history), (12, 128, 3, 5));
        assert!(!p.require_uppercase && !p.require_lowercase && !p.require_digit && !p.require_symbol);
        assert!(p.reject_common && p.max_age.is_none());
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn a_strong_password_passes() {
        assert_eq!(PasswordPolicy::default().check(&secret(STRONG), "alice", Some("alice@example.com")), Ok(()));
        let strict = PasswordPolicy {
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_symbol: true,
            ..PasswordPolicy::default()
        };
        assert_eq!(strict.check(&secret(STRONG), "alice", None), Ok(()));
    }

    #[test]
    fn min_length_alone() {
        assert_eq!(rules(bare().check(&secret("elevenchars"), "alice", None)), ["min_length"]);
        assert_eq!(rules(bare().check(&secret("twelve chars"), "alice", None)), Vec::<&str>::new());
    }

    #[test]
    fn max_length_alone_and_the_hard_cap() {
        let policy = PasswordPolicy { max_length: 64, ..bare() };
        assert_eq!(rules(policy.check(&secret(&"x".repeat(64)), "alice", None)), Vec::<&str>::new());
        assert_eq!(rules(policy.check(&secret(&"x".repeat(65)), "alice", None)), ["max_length"]);
        // A configured value above the hard cap is refused by validate and capped by check.
        let lax = PasswordPolicy { max_length: 1000, ..bare() };
        assert!(lax.validate().is_err());
        assert_eq!(rules(lax.check(&secret(&"x".repeat(129)), "alice", None)), ["max_length"]);
        // Absurd input is answered without looking further.
        assert_eq!(rules(lax.check(&secret(&"x".repeat(100_000)), "alice", None)), ["max_length"]);
    }

    #[test]
    fn length_counts_unicode_characters_after_nfkc() {
        let policy = PasswordPolicy { min_length: 12, ..bare() };
        // 12 characters, 24 bytes: long enough although each "é" is two bytes.
        assert_eq!(rules(policy.check(&secret(&"\u{e9}".repeat(12)), "alice", None)), Vec::<&str>::new());
        // 11 characters in NFKC, though written as 22 code points (e + combining acute).
        assert_eq!(rules(policy.check(&secret(&"e\u{301}".repeat(11)), "alice", None)), ["min_length"]);
        // 12 emoji: 48 bytes, 12 characters.
        assert_eq!(rules(policy.check(&secret(&"\u{1f512}".repeat(12)), "alice", None)), Vec::<&str>::new());
        // U+FB01 "ﬁ" is one code point but two characters once normalised: 6 × 2 = 12.
        assert_eq!(rules(policy.check(&secret(&"\u{fb01}".repeat(6)), "alice", None)), Vec::<&str>::new());
        let max = PasswordPolicy { max_length: 64, ..bare() };
        assert_eq!(rules(max.check(&secret(&"\u{e9}".repeat(64)), "alice", None)), Vec::<&str>::new());
        assert_eq!(rules(max.check(&secret(&"\u{e9}".repeat(65)), "alice", None)), ["max_length"]);
    }

    #[test]
    fn each_composition_rule_alone() {
        let base = "a long enough passphrase";
        for (policy, password, rule) in [
            (PasswordPolicy { require_uppercase: true, ..bare() }, base, "uppercase"),
            (PasswordPolicy { require_lowercase: true, ..bare() }, "A LONG ENOUGH PASSPHRASE", "lowercase"),
            (PasswordPolicy { require_digit: true, ..bare() }, base, "digit"),
            (PasswordPolicy { require_symbol: true, ..bare() }, "alongenoughpassphrase", "symbol"),
        ] {
            assert_eq!(rules(policy.check(&secret(password), "alice", None)), [rule], "{rule}");
        }
        // And each is satisfied by the matching character, Unicode included.
        let all = PasswordPolicy {
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_symbol: true,
            ..bare()
        };
        assert_eq!(rules(all.check(&secret("\u{c9}t\u{e9} quatre-vingt 4"), "alice", None)), Vec::<&str>::new());
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        let policy = PasswordPolicy { reject_common: true, ..bare() };
        // "password1234" is on the list (line 4538) and is 12 characters long.
        for variant in ["password1234", "Password1234", "PASSWORD1234", "pAsSwOrD1234", "\u{ff30}assword1234"] {
            assert_eq!(rules(policy.check(&secret(variant), "alice", None)), ["common_password"], "{variant}");
        }
        assert_eq!(rules(policy.check(&secret("qwertyuiop123"), "alice", None)), ["common_password"]);
        let off = bare();
        assert_eq!(rules(off.check(&secret("Password1234"), "alice", None)), Vec::<&str>::new());
    }

    #[test]
    fn username_and_email_containment() {
        let policy = bare();
        assert_eq!(rules(policy.check(&secret("my name is Alice!!"), "alice", None)), ["contains_username"]);
        assert_eq!(rules(policy.check(&secret("xxALICExx1234"), "Alice", None)), ["contains_username"]);
        assert_eq!(
            rules(policy.check(&secret("bob.smith rocks 99"), "robert", Some("Bob.Smith@example.com"))),
            ["contains_email"]
        );
        // Usernames shorter than three characters are not checked.
        assert_eq!(rules(policy.check(&secret("jo jo jo jo jo"), "jo", Some("jo@example.com"))), Vec::<&str>::new());
        // Both at once.
        assert_eq!(
            rules(policy.check(&secret("alice and bsmith 2024"), "alice", Some("bsmith@example.com"))),
            ["contains_username", "contains_email"]
        );
    }

    #[test]
    fn zxcvbn_rule_alone_and_disabled() {
        let policy = PasswordPolicy { min_zxcvbn_score: 3, ..bare() };
        assert_eq!(rules(policy.check(&secret("aaaaaaaaaaaaaaaa"), "alice", None)), ["weak"]);
        assert_eq!(rules(policy.check(&secret("abcdefghijklmnop"), "alice", None)), ["weak"]);
        assert_eq!(rules(policy.check(&secret(STRONG), "alice", None)), Vec::<&str>::new());
        let off = PasswordPolicy { min_zxcvbn_score: 0, ..bare() };
        assert_eq!(rules(off.check(&secret("aaaaaaaaaaaaaaaa"), "alice", None)), Vec::<&str>::new());
    }

    #[test]
    fn zxcvbn_sees_the_personal_inputs() {
        // With zxcvbn alone: the username makes a password guessable that otherwise passes.
        let policy = PasswordPolicy { min_zxcvbn_score: 4, ..bare() };
        let password = secret("zebulon.kowalczyk1987");
        assert_eq!(rules(policy.check(&password, "someone", None)), Vec::<&str>::new());
        let with_email = rules(policy.check(&password, "someone", Some("zebulon.kowalczyk1987@example.com")));
        assert_eq!(with_email, ["contains_email", "weak"]);
    }

    #[test]
    fn every_failure_is_listed_together() {
        let policy = PasswordPolicy {
            require_uppercase: true,
            require_digit: true,
            require_symbol: true,
            ..PasswordPolicy::default()
        };
        let result = policy.check(&secret("alice"), "alice", Some("alice@example.com"));
        assert_eq!(
            rules(result.clone()),
            [
                "min_length",
                "uppercase",
                "digit",
                "symbol",
                "common_password",
                "contains_username",
                "contains_email",
                "weak"
            ]
        );
        for violation in result.unwrap_err() {
            assert!(!violation.message.is_empty());
            assert!(!violation.message.to_lowercase().contains("alice"), "{}", violation.message);
        }
    }

    #[test]
    fn messages_never_echo_the_password() {
        let password = "Tr0ub4dor&3";
        let violations = PasswordPolicy::default().check(&secret(password), "someone", None).unwrap_err();
        assert!(!violations.is_empty());
        for v in violations {
            assert!(!v.message.contains(password) && !v.message.contains("troub"), "{}", v.message);
        }
    }

    #[test]
    fn reused_violation() {
        assert_eq!(PolicyViolation::reused(5).rule, "reused");
        assert!(PolicyViolation::reused(5).message.contains("last 5"));
        assert!(PolicyViolation::reused(1).message.contains("current"));
    }

    #[test]
    fn expiry() {
        let changed = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let never = PasswordPolicy::default();
        assert!(!never.is_expired(changed, changed + Duration::days(10_000)));
        let sixty = PasswordPolicy { max_age: Some(Duration::days(60)), ..PasswordPolicy::default() };
        assert!(!sixty.is_expired(changed, changed + Duration::days(60) - Duration::seconds(1)));
        assert!(sixty.is_expired(changed, changed + Duration::days(60)));
        assert!(sixty.is_expired(changed, changed + Duration::days(61)));
        // A clock that went backwards does not expire anything.
        assert!(!sixty.is_expired(changed, changed - Duration::days(1)));
    }

    #[test]
    fn validate_names_the_bad_setting() {
        for (policy, setting) in [
            (PasswordPolicy { min_length: 7, ..PasswordPolicy::default() }, "min_length"),
            (PasswordPolicy { max_length: 63, ..PasswordPolicy::default() }, "max_length"),
            (PasswordPolicy { max_length: 129, ..PasswordPolicy::default() }, "max_length"),
            (PasswordPolicy { min_length: 100, max_length: 80, ..PasswordPolicy::default() }, "min_length"),
            (PasswordPolicy { min_zxcvbn_score: 5, ..PasswordPolicy::default() }, "min_zxcvbn_score"),
            (PasswordPolicy { max_age: Some(Duration::ZERO), ..PasswordPolicy::default() }, "max_age"),
        ] {
            assert_eq!(policy.validate().unwrap_err().setting, setting);
        }
    }
}
