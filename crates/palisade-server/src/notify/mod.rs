//! The real message senders behind `palisade_core::notify`'s ports: e-mail over SMTP (lettre), SMS
//! through the Twilio Messages API and security notices to a webhook (reqwest), built from the
//! [`Config`].
//!
//! # Layout
//! - `smtp`: [`SmtpSender`], an [`EmailSender`] on lettre's pooled async SMTP transport.
//! - `twilio`: [`TwilioSender`], an [`SmsSender`] that POSTs to `…/Accounts/{sid}/Messages.json`.
//! - `webhook`: [`HttpWebhookSender`], a [`WebhookSender`] that POSTs each notice as JSON.
//! - [`senders`]: the senders the configuration asks for, for `app::bootstrap`.
//!
//! The adapters answer `NotifyError::Unavailable` when retrying later may work (no connection, a
//! timeout, an SMTP 4xx, an HTTP 5xx or 429) and `NotifyError::Rejected` when it will not (an SMTP
//! 5xx, an HTTP 4xx: a bad number or address, wrong credentials). An error's text never holds a
//! password or token, and neither type's `Debug` shows one. Nothing here retries or logs a message
//! body: the code it carries is a secret.

mod smtp;
mod twilio;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use palisade_core::notify::{EmailSender, SmsSender, WebhookSender};

use crate::config::{Config, SmsProvider};

pub use smtp::SmtpSender;
pub use twilio::TwilioSender;
pub use webhook::HttpWebhookSender;

/// How long a sender waits for its provider: to connect, and then for each answer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The senders a [`Config`] asks for; `None` where the configuration has none (no SMTP server, no
/// SMS provider), and then the core offers no factor of that kind.
#[derive(Clone, Default)]
pub struct Senders {
    /// From `sms_provider` and the `twilio_*` settings.
    pub sms: Option<Arc<dyn SmsSender>>,
    /// From the `smtp_*` settings.
    pub email: Option<Arc<dyn EmailSender>>,
    /// From `notify_webhook_url`.
    pub webhook: Option<Arc<dyn WebhookSender>>,
}

impl std::fmt::Debug for Senders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Senders")
            .field("sms", &self.sms.as_ref().map(|s| s.provider()))
            .field("email", &self.email.as_ref().map(|s| s.provider()))
            .field("webhook", &self.webhook.is_some())
            .finish()
    }
}

/// A sender could not be set up (no Tokio runtime, a TLS configuration the platform cannot build).
/// Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the {sender} sender: {reason}")]
pub struct SetupError {
    sender: &'static str,
    reason: String,
}

impl SetupError {
    pub(crate) fn new(sender: &'static str, reason: impl Into<String>) -> Self {
        Self { sender, reason: reason.into() }
    }
}

/// Builds the senders the configuration asks for (no SMTP server, no SMS provider, no webhook URL:
/// `None` for that sender). Must run inside a Tokio runtime (the SMTP
/// connection pool starts its upkeep task). `Config::build` has already checked that every setting
/// a sender needs is present; one missing here is reported as a [`SetupError`], not a panic.
pub fn senders(config: &Config) -> Result<Senders, SetupError> {
    let email = match &config.smtp_server {
        Some(server) => {
            let from = config
                .smtp_from
                .clone()
                .ok_or_else(|| SetupError::new("smtp", "smtp_server is set without smtp_from"))?;
            let credentials = config.smtp_username.clone().zip(config.smtp_password.clone());
            let sender = SmtpSender::new(server, config.smtp_port, config.smtp_tls, credentials, from)?;
            Some(Arc::new(sender) as Arc<dyn EmailSender>)
        }
        None => None,
    };
    let sms = match config.sms_provider {
        Some(SmsProvider::Twilio) => {
            let missing =
                || SetupError::new("twilio", "sms_provider is twilio without its account SID, token and number");
            let sender = TwilioSender::new(
                &config.twilio_base_url,
                config.twilio_account_sid.as_deref().ok_or_else(missing)?,
                config.twilio_auth_token.clone().ok_or_else(missing)?,
                config.twilio_from.clone().ok_or_else(missing)?,
            )?;
            Some(Arc::new(sender) as Arc<dyn SmsSender>)
        }
        None => None,
    };
    let webhook = match &config.notify_webhook_url {
        Some(url) => Some(Arc::new(HttpWebhookSender::new(url)?) as Arc<dyn WebhookSender>),
        None => None,
    };
    Ok(Senders { sms, email, webhook })
}

/// `text` with every occurrence of `secret` replaced by `***`: a last guard for provider messages
/// that might echo what they were sent.
fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() { text.to_owned() } else { text.replace(secret, "***") }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Sources;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let env: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::load_from(Sources { env, ..Sources::default() }).unwrap()
    }

    #[tokio::test]
    async fn no_sender_is_built_unless_configured() {
        let senders = senders(&config(&[])).unwrap();
        assert!(senders.sms.is_none() && senders.email.is_none() && senders.webhook.is_none(), "{senders:?}");
    }

    #[tokio::test]
    async fn the_configured_senders_are_built_and_debug_shows_no_secret() {
        let token = "f00dfeedf00dfeedf00dfeedf00dfeed";
        let cfg = config(&[
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_PORT", "2525"),
            ("SMTP_TLS", "off"),
            ("SMTP_FROM", "Palisade <no-reply@example.com>"),
            ("SMTP_USERNAME", "mailer"),
            ("SMTP_PASSWORD", "Hunter2-smtp-pw"),
            ("SMS_PROVIDER", "twilio"),
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_AUTH_TOKEN", token),
            ("TWILIO_FROM_NUMBER", "+15005550006"),
            ("PALISADE_NOTIFY_WEBHOOK_URL", "https://hooks.example.com/services/T0/B0/Hunter2-hook-token"),
        ]);
        let senders = senders(&cfg).unwrap();
        assert_eq!(senders.email.as_ref().map(|s| s.provider()), Some("smtp"));
        assert_eq!(senders.sms.as_ref().map(|s| s.provider()), Some("twilio"));
        assert!(senders.webhook.is_some());
        assert_eq!(format!("{senders:?}"), r#"Senders { sms: Some("twilio"), email: Some("smtp"), webhook: true }"#);

        let smtp = SmtpSender::new(
            "127.0.0.1",
            2525,
            crate::config::SmtpTls::Off,
            Some(("mailer".to_owned(), secrecy::SecretString::from("Hunter2-smtp-pw"))),
            "no-reply@example.com".parse().unwrap(),
        )
        .unwrap();
        let twilio = TwilioSender::new(
            &cfg.twilio_base_url,
            "AC0123456789abcdef0123456789abcdef",
            secrecy::SecretString::from(token),
            cfg.twilio_from.clone().unwrap(),
        )
        .unwrap();
        let debug = format!("{smtp:?} {twilio:?}");
        assert!(!debug.contains("Hunter2-smtp-pw") && !debug.contains(token), "{debug}");
        assert!(debug.contains("127.0.0.1:2525") && debug.contains("AC0123456789abcdef0123456789abcdef"), "{debug}");
    }

    #[test]
    fn scrub_hides_every_occurrence_and_ignores_an_empty_secret() {
        assert_eq!(scrub("535 bad pw for pw", "pw"), "535 bad *** for ***");
        assert_eq!(scrub("unchanged", ""), "unchanged");
    }
}
