//! [`HttpWebhookSender`]: security notices posted as JSON to the operator's endpoint.
//!
//! One `POST {notify_webhook_url}` per notice, `Content-Type: application/json`, the notice as the
//! body; credentials written in the URL (`https://user:password@host/…`) are sent as HTTP basic auth.
//! 2xx: delivered. 4xx: refused (a wrong URL or credential; 429, "too many requests", is the
//! exception: it may pass later). 5xx, a timeout or no connection: unavailable. Redirects are not
//! followed (the notice and the credential go to the configured host only; a 3xx is refused, so a
//! moved endpoint is noticed), and the answer's body is not read.
//!
//! The URL is a secret (a chat webhook's path is its only credential): neither `Debug` nor an error
//! shows more of it than its scheme, host and port.
//!
//! # Signed requests (the alert channels)
//! A sender made with [`HttpWebhookSender::signed`] (`monitoring_alert_webhook_url`,
//! `monitoring_push_url`) serializes the body once and adds two headers:
//! - `X-Palisade-Timestamp: <unix seconds>`, from the injected clock;
//! - `X-Palisade-Signature: v1=<hex>`, the lowercase hex of HMAC-SHA256 over
//!   `<timestamp>.<body bytes>` keyed with the UTF-8 bytes of `monitoring_alert_webhook_secret`.
//!
//! The receiver recomputes the MAC over the bytes it received, compares in constant time, and
//! refuses a timestamp far from its own clock (a replay). `notify_webhook_url` stays unsigned.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use palisade_core::clock::Clock;
use palisade_core::notify::{NotifyError, WebhookSender};
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use super::{SEND_TIMEOUT, SetupError, scrub};

/// The header that carries the signing time, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Palisade-Timestamp";
/// The header that carries the signature, `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Palisade-Signature";

/// Posts notices to one URL.
pub struct HttpWebhookSender {
    client: reqwest::Client,
    /// The whole URL, credential included; only ever given to reqwest.
    url: SecretString,
    /// `scheme://host:port`, what messages and `Debug` show.
    origin: String,
    timeout: Duration,
    /// The setting the URL comes from, named in messages.
    setting: &'static str,
    /// Signs each request (the alert channels); `None` for `notify_webhook_url`.
    signer: Option<Signer>,
}

/// The alert key and the clock of the signatures' timestamps.
struct Signer {
    /// aws-lc's key schedule of the secret; it shows no key material, not even in `Debug`.
    key: hmac::Key,
    clock: Arc<dyn Clock>,
}

impl Signer {
    fn new(secret: &SecretString, clock: Arc<dyn Clock>) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes()), clock }
    }
}

/// `v1=` and the lowercase hex of HMAC-SHA256(`key`, `"<timestamp>.<body>"`).
fn signature(key: &hmac::Key, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac::Context::with_key(key);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.sign();
    let mut text = String::with_capacity(3 + 2 * tag.as_ref().len());
    text.push_str("v1=");
    for byte in tag.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

impl fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWebhookSender")
            .field("setting", &self.setting)
            .field("origin", &self.origin)
            .field("url", &"***")
            .field("signed", &self.signer.is_some())
            .finish()
    }
}

impl HttpWebhookSender {
    /// An unsigned sender to `notify_webhook_url` (the configuration has checked it is http or
    /// https with a host).
    pub fn new(url: &SecretString) -> Result<Self, SetupError> {
        Self::with_timeout(url, SEND_TIMEOUT)
    }

    /// [`HttpWebhookSender::new`] with another bound on each request (tests).
    pub(crate) fn with_timeout(url: &SecretString, timeout: Duration) -> Result<Self, SetupError> {
        Self::build("notify_webhook_url", url, timeout, None)
    }

    /// A sender to the URL of `setting` (`monitoring_alert_webhook_url`, `monitoring_push_url`)
    /// that signs every request with `secret` (`monitoring_alert_webhook_secret`), timestamped by
    /// `clock`.
    pub fn signed(
        setting: &'static str,
        url: &SecretString,
        secret: &SecretString,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SetupError> {
        Self::build(setting, url, SEND_TIMEOUT, Some(Signer::new(secret, clock)))
    }

    fn build(
        setting: &'static str,
        url: &SecretString,
        timeout: Duration,
        signer: Option<Signer>,
    ) -> Result<Self, SetupError> {
        // url's errors name the problem, never the input.
        let parsed = Url::parse(url.expose_secret())
            .map_err(|e| SetupError::new("webhook", format!("{setting} is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
            return Err(SetupError::new("webhook", format!("{setting} is not an http:// or https:// URL with a host")));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::new("webhook", format!("the HTTP client: {e}")))?;
        Ok(Self { client, url: url.clone(), origin: parsed.origin().ascii_serialization(), timeout, setting, signer })
    }

    /// `scheme://host:port` of the endpoint: what may be shown of it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A request that got no answer.
    fn transport_error(&self, e: reqwest::Error) -> NotifyError {
        if e.is_timeout() {
            return NotifyError::Unavailable(format!(
                "the webhook at {} did not answer within {} ms",
                self.origin,
                self.timeout.as_millis()
            ));
        }
        let what = if e.is_connect() { "cannot connect to the webhook" } else { "the request to the webhook failed" };
        let text = format!("{what} at {}: {}", self.origin, error_chain(&e.without_url()));
        NotifyError::Unavailable(scrub(&text, self.url.expose_secret()))
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    #[tracing::instrument(skip_all, fields(
        event = notice.get("event").or_else(|| notice.get("alert_type")).and_then(|e| e.as_str()).unwrap_or("-")
    ))]
    async fn post(&self, notice: &serde_json::Value) -> Result<(), NotifyError> {
        let request = self.client.post(self.url.expose_secret());
        let request = match &self.signer {
            None => request.json(notice),
            Some(signer) => {
                // Serialized once: the bytes signed are the bytes sent.
                let body = serde_json::to_vec(notice)
                    .map_err(|e| NotifyError::Rejected(format!("the notice is not serializable ({e})")))?;
                let timestamp = signer.clock.now().unix_timestamp();
                request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .header(SIGNATURE_HEADER, signature(&signer.key, timestamp, &body))
                    .body(body)
            }
        };
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let origin = &self.origin;
        if status.is_success() {
            Ok(())
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(NotifyError::Unavailable(format!("the webhook at {origin} answered {status}")))
        } else if status.is_redirection() {
            Err(NotifyError::Rejected(format!(
                "the webhook at {origin} answered {status}; redirects are not followed: set {} to the final URL",
                self.setting
            )))
        } else if status.is_client_error() {
            Err(NotifyError::Rejected(format!("the webhook at {origin} refused the notice ({status})")))
        } else {
            Err(NotifyError::Unavailable(format!("the webhook at {origin} answered {status}, which is not an answer")))
        }
    }
}

/// An error and its sources, `outer: inner: innermost`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    //! Against a real HTTP server on a loopback port: an axum app that records what arrives and
    //! answers with the status the path asks for.

    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Clone)]
    struct Recorded {
        path: String,
        content_type: Option<String>,
        authorization: Option<String>,
        timestamp: Option<String>,
        signature: Option<String>,
        /// The body as received, byte for byte.
        raw: String,
        body: serde_json::Value,
    }

    type Log = Arc<Mutex<Vec<Recorded>>>;

    async fn hook(State(log): State<Log>, Path(path): Path<String>, headers: HeaderMap, body: String) -> Response {
        let header = |name| headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok()).map(str::to_owned);
        let authorization = header(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Basic ").map(str::to_owned))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        log.lock().unwrap().push(Recorded {
            path: path.clone(),
            content_type: header(header::CONTENT_TYPE),
            authorization,
            timestamp: header(header::HeaderName::from_static("x-palisade-timestamp")),
            signature: header(header::HeaderName::from_static("x-palisade-signature")),
            body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            raw: body,
        });
        match path.as_str() {
            "broken" => (StatusCode::BAD_GATEWAY, "upstream down").into_response(),
            "busy" => StatusCode::TOO_MANY_REQUESTS.into_response(),
            "gone" => (StatusCode::NOT_FOUND, "no such hook").into_response(),
            "moved" => {
                (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "http://elsewhere.invalid/")]).into_response()
            }
            "slow" => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                StatusCode::NO_CONTENT.into_response()
            }
            _ => StatusCode::NO_CONTENT.into_response(),
        }
    }

    /// Starts the endpoint; returns its base URL (`http://127.0.0.1:PORT`) and its request log.
    async fn endpoint() -> (String, Log) {
        let log = Log::default();
        let app = Router::new().route("/hooks/{path}", post(hook)).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, log)
    }

    fn sender(url: &str) -> HttpWebhookSender {
        HttpWebhookSender::new(&SecretString::from(url)).unwrap()
    }

    fn notice() -> serde_json::Value {
        json!({
            "event": "new_device_login",
            "user_id": "0190d7a4-7c1e-7000-8000-000000000001",
            "device": "Firefox on Linux",
            "ip": "203.0.113.7",
            "country": "SE",
            "at": "2025-01-02T03:04:05Z",
        })
    }

    #[tokio::test]
    async fn the_notice_arrives_as_json() {
        let (base, log) = endpoint().await;
        sender(&format!("{base}/hooks/T0KEN-in-the-path")).post(&notice()).await.unwrap();
        let requests = log.lock().unwrap().clone();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let request = &requests[0];
        assert_eq!(request.path, "T0KEN-in-the-path");
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(request.body, notice());
        assert_eq!(request.authorization, None);
        assert_eq!((request.timestamp.as_deref(), request.signature.as_deref()), (None, None), "not signed");
    }

    /// A 40-byte alert key, and HMAC-SHA256 values computed independently of this code, with
    /// Python's `hmac` module:
    /// `hmac.new(KEY, b"1700000000." + BODY, hashlib.sha256).hexdigest()`.
    const KEY: &str = "palisade-test-alert-key-0123456789abcdef";
    const BODY: &str = r#"{"alert_type":"test","severity":"LOW"}"#;
    const KEY_BODY_MAC: &str = "753c6a263ffc942a237fe1af275f98eb423f4e4a6e76d21782db3367a5ff0f3f";
    /// `hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()`.
    const SHORT_MAC: &str = "9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae";

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body_in_lowercase_hex() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        assert_eq!(signature(&key, 1_700_000_000, b"{}"), format!("v1={SHORT_MAC}"));
        let key = hmac::Key::new(hmac::HMAC_SHA256, KEY.as_bytes());
        assert_eq!(signature(&key, 1_700_000_000, BODY.as_bytes()), format!("v1={KEY_BODY_MAC}"));
        // Every part counts: another second, another body.
        assert_ne!(signature(&key, 1_700_000_001, BODY.as_bytes()), format!("v1={KEY_BODY_MAC}"));
        assert_ne!(signature(&key, 1_700_000_000, b"{}"), format!("v1={KEY_BODY_MAC}"));
    }

    #[tokio::test]
    async fn a_signed_sender_sends_the_bytes_it_signed_with_the_clocks_timestamp() {
        let (base, log) = endpoint().await;
        let start = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let clock = Arc::new(palisade_core::clock::ManualClock::new(start));
        let url = SecretString::from(format!("{base}/hooks/alerts"));
        let signed =
            HttpWebhookSender::signed("monitoring_alert_webhook_url", &url, &SecretString::from(KEY), clock.clone())
                .unwrap();
        signed.post(&json!({"alert_type": "test", "severity": "LOW"})).await.unwrap();
        let request = log.lock().unwrap()[0].clone();
        assert_eq!(request.raw, BODY);
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(request.timestamp.as_deref(), Some("1700000000"));
        assert_eq!(request.signature, Some(format!("v1={KEY_BODY_MAC}")));

        // The timestamp is the injected clock's, read at each send.
        clock.advance(time::Duration::seconds(90));
        signed.post(&json!({"alert_type": "test", "severity": "LOW"})).await.unwrap();
        let request = log.lock().unwrap()[1].clone();
        assert_eq!(request.timestamp.as_deref(), Some("1700000090"));
        assert_ne!(request.signature, Some(format!("v1={KEY_BODY_MAC}")));

        let debug = format!("{signed:?}");
        assert!(debug.contains("signed: true") && debug.contains("monitoring_alert_webhook_url"), "{debug}");
        assert!(!debug.contains(KEY) && !debug.contains("alerts"), "{debug}");
    }

    #[tokio::test]
    async fn a_signed_senders_redirect_message_names_its_setting() {
        let (base, _log) = endpoint().await;
        let clock = Arc::new(palisade_core::clock::ManualClock::fixed());
        let url = SecretString::from(format!("{base}/hooks/moved"));
        let signed = HttpWebhookSender::signed("monitoring_push_url", &url, &SecretString::from(KEY), clock).unwrap();
        let err = signed.post(&notice()).await.unwrap_err();
        let NotifyError::Rejected(message) = &err else { panic!("expected Rejected, got {err:?}") };
        assert!(message.contains("set monitoring_push_url to the final URL"), "{message}");
    }

    #[tokio::test]
    async fn credentials_in_the_url_are_sent_as_basic_auth() {
        let (base, log) = endpoint().await;
        let url = base.replace("http://", "http://palisade:s3cr3t-pw@");
        sender(&format!("{url}/hooks/ok")).post(&notice()).await.unwrap();
        assert_eq!(log.lock().unwrap()[0].authorization.as_deref(), Some("palisade:s3cr3t-pw"));
    }

    #[tokio::test]
    async fn a_5xx_or_a_429_is_unavailable() {
        let (base, _log) = endpoint().await;
        for (path, status) in [("broken", "502"), ("busy", "429")] {
            let err = sender(&format!("{base}/hooks/{path}")).post(&notice()).await.unwrap_err();
            let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
            assert!(message.contains(status) && message.contains(&base), "{message}");
            assert!(!message.contains(path), "the URL's path is not shown: {message}");
        }
    }

    #[tokio::test]
    async fn a_4xx_or_a_redirect_is_rejected() {
        let (base, log) = endpoint().await;
        let err = sender(&format!("{base}/hooks/gone")).post(&notice()).await.unwrap_err();
        let NotifyError::Rejected(message) = &err else { panic!("expected Rejected, got {err:?}") };
        assert!(message.contains("404"), "{message}");
        let err = sender(&format!("{base}/hooks/moved")).post(&notice()).await.unwrap_err();
        let NotifyError::Rejected(message) = &err else { panic!("expected Rejected, got {err:?}") };
        assert!(message.contains("301") && message.contains("redirects are not followed"), "{message}");
        assert_eq!(log.lock().unwrap().len(), 2, "the redirect was not followed");
    }

    #[tokio::test]
    async fn a_closed_port_or_a_slow_endpoint_is_unavailable_without_the_secret() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://user:pw-that-must-not-leak@127.0.0.1:{port}/hooks/secret-path-token");
        let sender_closed = sender(&url);
        let err = sender_closed.post(&notice()).await.unwrap_err();
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("cannot connect to the webhook at http://127.0.0.1"), "{message}");
        let shown = format!("{err} {err:?} {sender_closed:?}");
        assert!(!shown.contains("pw-that-must-not-leak") && !shown.contains("secret-path-token"), "{shown}");

        let (base, _log) = endpoint().await;
        let slow = HttpWebhookSender::with_timeout(
            &SecretString::from(format!("{base}/hooks/slow")),
            Duration::from_millis(300),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = slow.post(&notice()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1900), "took {:?}", started.elapsed());
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("did not answer within 300 ms"), "{message}");
    }

    #[test]
    fn a_url_that_is_not_http_is_refused_at_setup() {
        for bad in ["ftp://example.com/x", "not a url", "https://"] {
            assert!(HttpWebhookSender::new(&SecretString::from(bad)).is_err(), "{bad}");
        }
        let ok = sender("https://hooks.example.com:8443/services/T0/B0/XyZ");
        assert_eq!(ok.origin(), "https://hooks.example.com:8443");
        assert!(!format!("{ok:?}").contains("XyZ"));
    }
}
