//! Ports for messages sent to people: one-time codes by SMS and e-mail, security notices by e-mail
//! and webhook (and, later, alerts).
//!
//! The adapters (SMTP through lettre, the Twilio Messages API) live in `palisade-server`; this module
//! only names what a sender must do and the phone-number type they share. A deployment without a
//! sender configured has no SMS or e-mail factor at all: nothing here pretends to send.

use std::fmt;

use async_trait::async_trait;

use crate::user::{Email, InvalidInput};

/// A phone number in E.164 form: `+`, a country code starting with 1–9, 8 to 15 digits in all.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses an E.164 number. Spaces, dots, dashes and parentheses between digits are removed
    /// first (`+33 6 12 34 56 78` is accepted as `+33612345678`); anything else is refused.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        const EXPECTED: &str = "an E.164 phone number: + then 8 to 15 digits, the first not 0 (e.g. +14155550123)";
        let trimmed = text.trim();
        let Some(rest) = trimmed.strip_prefix('+') else {
            return Err(InvalidInput::new("phone", EXPECTED));
        };
        let mut digits = String::with_capacity(15);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '(' | ')' => {}
                _ => return Err(InvalidInput::new("phone", EXPECTED)),
            }
            if digits.len() > 15 {
                return Err(InvalidInput::new("phone", EXPECTED));
            }
        }
        if digits.len() < 8 || digits.starts_with('0') {
            return Err(InvalidInput::new("phone", EXPECTED));
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The number, `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but its last two digits hidden, for answers and logs: `+*********78`.
    pub fn masked(&self) -> String {
        let keep = self.0.len().saturating_sub(2);
        self.0.char_indices().map(|(i, c)| if i == 0 || i >= keep { c } else { '*' }).collect()
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a message could not be handed to its provider.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The provider could not be reached or failed (retrying later may work).
    #[error("the message provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the message (a bad number or address, a configuration error).
    #[error("the message provider refused the message: {0}")]
    Rejected(String),
}

/// Sends text messages.
#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    /// The provider's name (`twilio`), for diagnostics and audit.
    fn provider(&self) -> &'static str;

    /// Sends `body` to `to`; returns once the provider has accepted it.
    async fn send_sms(&self, to: &PhoneNumber, body: &str) -> Result<(), NotifyError>;
}

/// Sends e-mail.
#[async_trait]
pub trait EmailSender: Send + Sync + 'static {
    /// The provider's name (`smtp`), for diagnostics and audit.
    fn provider(&self) -> &'static str;

    /// Sends a plain-text message; returns once the provider has accepted it.
    async fn send_email(&self, to: &Email, subject: &str, body: &str) -> Result<(), NotifyError>;
}

/// Posts security notices (a login from a new device, …) as JSON to an operator's endpoint.
#[async_trait]
pub trait WebhookSender: Send + Sync + 'static {
    /// Posts `notice` (a JSON object with at least `event`); returns once the endpoint accepted it.
    async fn post(&self, notice: &serde_json::Value) -> Result<(), NotifyError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_parse_and_others_are_refused() {
        for (input, expected) in [
            ("+14155550123", "+14155550123"),
            ("+33 6 12 34 56 78", "+33612345678"),
            ("+44 (20) 7946-0958", "+442079460958"),
            (" +4917612345678 ", "+4917612345678"),
        ] {
            assert_eq!(PhoneNumber::parse(input).unwrap().as_str(), expected, "{input}");
        }
        for bad in [
            "",
            "+",
            "14155550123",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1415555O123",
            "+1 415 555 0123 x1",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_masked_number_shows_only_its_last_two_digits() {
        let phone = PhoneNumber::parse("+14155550123").unwrap();
        assert_eq!(phone.masked(), "+*********23");
        assert_eq!(format!("{phone:?}"), "+*********23");
    }
}
