//! [`SmtpSender`]: e-mail through an SMTP server, on lettre's pooled async transport.
//!
//! STARTTLS (`starttls_relay`: a server that cannot upgrade is refused before any credential or
//! message is sent), implicit TLS (`relay`) or plain text (`builder_dangerous`), as `smtp_tls` says;
//! the certificate is checked against the system roots. The password is handed to lettre once, at
//! construction, and is scrubbed from any error text the server might echo it in.
//!
//! Timeouts: lettre's async transport bounds only the TCP connect, so the whole exchange (connect,
//! greeting, TLS, AUTH, the message) is bounded by [`SEND_TIMEOUT`] here. Abandoning an exchange
//! half-way would hand a connection in an unknown state back to lettre's pool, so connections are
//! never reused (`max_size(0)`): each message opens its own, which one-time codes can afford.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use palisade_core::notify::{EmailSender, NotifyError};
use palisade_core::user::Email;
use secrecy::{ExposeSecret as _, SecretString};

use super::{SEND_TIMEOUT, SetupError, scrub};
use crate::config::SmtpTls;

/// Sends plain-text UTF-8 e-mail through one SMTP server.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for messages.
    server: String,
    tls: SmtpTls,
    /// Kept only to scrub it from error text.
    password: Option<SecretString>,
    /// The bound on one whole exchange.
    timeout: Duration,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .field("authenticated", &self.password.is_some())
            .finish()
    }
}

impl SmtpSender {
    /// A sender to `server` (a host name or IP address) on `port`, signing in with `credentials`
    /// (user name, password) when given, writing `from` as the From of every message. Must be
    /// called inside a Tokio runtime: the connection pool starts its upkeep task here. Nothing is
    /// sent, and no connection is made, until the first message.
    pub fn new(
        server: &str,
        port: u16,
        tls: SmtpTls,
        credentials: Option<(String, SecretString)>,
        from: Mailbox,
    ) -> Result<Self, SetupError> {
        Self::with_timeout(server, port, tls, credentials, from, SEND_TIMEOUT)
    }

    /// [`SmtpSender::new`] with another bound on each exchange (tests).
    pub(crate) fn with_timeout(
        server: &str,
        port: u16,
        tls: SmtpTls,
        credentials: Option<(String, SecretString)>,
        from: Mailbox,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SetupError::new("smtp", "it must be built inside a Tokio runtime"));
        }
        let tls_error = |e: lettre::transport::smtp::Error| SetupError::new("smtp", format!("TLS for {server}: {e}"));
        let builder = match tls {
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(server).map_err(tls_error)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(server).map_err(tls_error)?,
            SmtpTls::Off => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server),
        };
        let mut builder =
            builder.port(port).timeout(Some(timeout)).pool_config(PoolConfig::new().min_idle(0).max_size(0));
        let password = match credentials {
            Some((user, password)) => {
                builder = builder.credentials(Credentials::new(user, password.expose_secret().to_owned()));
                Some(password)
            }
            None => None,
        };
        let server = if server.contains(':') { format!("[{server}]:{port}") } else { format!("{server}:{port}") };
        Ok(Self { transport: builder.build(), from, server, tls, password, timeout })
    }

    fn timed_out(&self) -> NotifyError {
        NotifyError::Unavailable(format!(
            "the SMTP server {} did not finish the exchange within {} ms",
            self.server,
            self.timeout.as_millis()
        ))
    }

    /// Maps lettre's error: an SMTP 5xx is a refusal; a 4xx, a timeout and any connection, TLS or
    /// protocol trouble may pass.
    fn error(&self, e: &lettre::transport::smtp::Error) -> NotifyError {
        let detail = scrub(&e.to_string(), self.password.as_ref().map_or("", |p| p.expose_secret()));
        let server = &self.server;
        if e.is_permanent() {
            NotifyError::Rejected(format!("the SMTP server {server} refused the message: {detail}"))
        } else if e.is_transient() {
            NotifyError::Unavailable(format!("the SMTP server {server} deferred the message: {detail}"))
        } else if e.is_timeout() {
            self.timed_out()
        } else {
            NotifyError::Unavailable(format!("cannot send through the SMTP server {server}: {detail}"))
        }
    }
}

#[async_trait]
impl EmailSender for SmtpSender {
    fn provider(&self) -> &'static str {
        "smtp"
    }

    #[tracing::instrument(skip_all, fields(server = %self.server))]
    async fn send_email(&self, to: &Email, subject: &str, body: &str) -> Result<(), NotifyError> {
        let to: Address = to
            .as_str()
            .parse()
            .map_err(|_| NotifyError::Rejected("the recipient is not an address SMTP can deliver to".to_owned()))?;
        // Subjects are the core's fixed texts, but a line break in one must never start a header.
        let subject: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| NotifyError::Rejected(format!("the message could not be built: {e}")))?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_elapsed) => Err(self.timed_out()),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a real SMTP server: `smtp_sink.py`, Python's aiosmtpd on a free loopback port,
    //! which writes each message it accepts, parsed by Python's `email` package, as a JSON line.

    use std::io::{BufRead as _, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use super::*;

    const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/notify/smtp_sink.py");

    /// The running sink; killed (and reaped) on drop.
    struct Sink {
        child: Child,
        port: u16,
        out: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl Drop for Sink {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Sink {
        /// The messages received so far, one JSON object each. The sink writes a message before it
        /// answers 250, so one that `send_email` saw accepted is already here.
        fn received(&self) -> Vec<serde_json::Value> {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
        }
    }

    /// Whether aiosmtpd can be used here. Without it the SMTP tests cannot run: under `CI=true`
    /// that is a failure, elsewhere they say why and pass.
    fn aiosmtpd_available() -> bool {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if probe.is_ok_and(|status| status.success()) {
            return true;
        }
        let why = "python3 with aiosmtpd is needed for the SMTP tests (python3 -m pip install aiosmtpd)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipping: {why}");
        false
    }

    /// Starts the sink; `auth` makes it require AUTH with that user name and password.
    fn start_sink(auth: Option<(&str, &str)>) -> Option<Sink> {
        if !aiosmtpd_available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received.jsonl");
        let mut command = Command::new("python3");
        command.arg(SINK).arg(&out).stdout(Stdio::piped()).stderr(Stdio::inherit());
        if let Some((user, password)) = auth {
            command.arg(format!("{user}:{password}"));
        }
        let mut child = command.spawn().unwrap();
        // The sink prints its port once it listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("smtp_sink.py printed {line:?}, not its port"));
        Some(Sink { child, port, out, _dir: dir })
    }

    fn sender(port: u16, credentials: Option<(&str, &str)>) -> SmtpSender {
        SmtpSender::new(
            "127.0.0.1",
            port,
            SmtpTls::Off,
            credentials.map(|(user, password)| (user.to_owned(), SecretString::from(password))),
            "Palisade <no-reply@example.com>".parse().unwrap(),
        )
        .unwrap()
    }

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap()
    }

    /// A port nothing listens on: bound, read, released.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_message_arrives_as_plain_text_utf8_from_the_configured_mailbox() {
        let Some(sink) = start_sink(None) else { return };
        let body = "Your Palisade code is 482913.\nIt expires in 5 minutes. Grüße — ✓\n";
        let subject = "Palisade sign-in code ✓";
        sender(sink.port, None).send_email(&email("alice@example.com"), subject, body).await.unwrap();

        let received = sink.received();
        assert_eq!(received.len(), 1, "{received:?}");
        let message = &received[0];
        assert_eq!(message["mail_from"], "no-reply@example.com");
        assert_eq!(message["rcpt_tos"], serde_json::json!(["alice@example.com"]));
        assert_eq!(message["from"], "Palisade <no-reply@example.com>");
        assert_eq!(message["to"], "alice@example.com");
        assert_eq!(message["subject"], subject);
        assert_eq!(message["content_type"], "text/plain");
        assert_eq!(message["charset"], "utf-8");
        // The transfer encoding ends the body with a line break of its own.
        let received_body = message["body"].as_str().unwrap().replace("\r\n", "\n");
        assert_eq!(received_body.trim_end_matches('\n'), body.trim_end_matches('\n'), "{message}");
        // Non-ASCII text travels 7-bit clean, whatever the relays in between accept.
        let encoding = message["transfer_encoding"].as_str().unwrap_or_default();
        assert!(["quoted-printable", "base64"].contains(&encoding), "{message}");
    }

    #[tokio::test]
    async fn a_line_break_in_the_subject_cannot_add_a_header() {
        let Some(sink) = start_sink(None) else { return };
        sender(sink.port, None)
            .send_email(&email("bob@example.com"), "Code\r\nBcc: mallory@example.com", "body")
            .await
            .unwrap();
        let received = sink.received();
        assert_eq!(received[0]["rcpt_tos"], serde_json::json!(["bob@example.com"]));
        assert_eq!(received[0]["bcc"], serde_json::Value::Null);
        assert_eq!(received[0]["subject"], "Code  Bcc: mallory@example.com");
    }

    #[tokio::test]
    async fn credentials_are_used_and_a_refused_login_never_shows_the_password() {
        let Some(sink) = start_sink(Some(("mailer", "s3cret-Pw-77"))) else { return };
        sender(sink.port, Some(("mailer", "s3cret-Pw-77")))
            .send_email(&email("carol@example.com"), "s", "b")
            .await
            .unwrap();
        assert_eq!(sink.received()[0]["login"], "mailer");

        let err = sender(sink.port, Some(("mailer", "wrong-Pw-for-test")))
            .send_email(&email("carol@example.com"), "s", "b")
            .await
            .unwrap_err();
        let NotifyError::Rejected(message) = &err else { panic!("expected Rejected, got {err:?}") };
        assert!(message.contains("535"), "{message}");
        assert!(!message.contains("wrong-Pw-for-test") && !format!("{err:?}").contains("wrong-Pw-for-test"));
        assert_eq!(sink.received().len(), 1, "the refused login sent nothing");
    }

    #[tokio::test]
    async fn a_5xx_is_a_refusal_and_a_4xx_may_pass() {
        let Some(sink) = start_sink(None) else { return };
        let sender = sender(sink.port, None);
        let err = sender.send_email(&email("reject-me@example.com"), "s", "b").await.unwrap_err();
        let NotifyError::Rejected(message) = &err else { panic!("expected Rejected, got {err:?}") };
        assert!(message.contains("550") && message.contains("no such user"), "{message}");

        let err = sender.send_email(&email("busy-me@example.com"), "s", "b").await.unwrap_err();
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("451") && message.contains("try again later"), "{message}");
        assert!(sink.received().is_empty());
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_unavailable() {
        let err = sender(closed_port(), None).send_email(&email("dave@example.com"), "s", "b").await.unwrap_err();
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("127.0.0.1:"), "{message}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_as_unavailable() {
        // Accepts connections but never sends the greeting: lettre's own timeout (connect only)
        // would wait for ever.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let sender = SmtpSender::with_timeout(
            "127.0.0.1",
            port,
            SmtpTls::Off,
            None,
            "no-reply@example.com".parse().unwrap(),
            Duration::from_millis(300),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = sender.send_email(&email("erin@example.com"), "s", "b").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("within 300 ms"), "{message}");
        silent.abort();
        assert_eq!(SEND_TIMEOUT, Duration::from_secs(10));
    }

    #[tokio::test]
    async fn the_implicit_tls_and_starttls_senders_refuse_a_plain_text_server() {
        let Some(sink) = start_sink(None) else { return };
        for tls in [SmtpTls::StartTls, SmtpTls::Tls] {
            let sender =
                SmtpSender::new("127.0.0.1", sink.port, tls, None, "no-reply@example.com".parse().unwrap()).unwrap();
            let err = sender.send_email(&email("frank@example.com"), "s", "b").await.unwrap_err();
            assert!(matches!(err, NotifyError::Unavailable(_)), "{tls}: {err:?}");
        }
        assert!(sink.received().is_empty(), "nothing may be sent without the TLS that was asked for");
    }

    #[test]
    fn building_outside_a_runtime_is_an_error_not_a_panic() {
        let err = SmtpSender::new("127.0.0.1", 25, SmtpTls::Off, None, "a@example.com".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("Tokio runtime"), "{err}");
    }
}
