//! [`TwilioSender`]: text messages through the Twilio Messages API.
//!
//! One `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` per message, HTTP basic auth with the
//! account SID and auth token, form fields `To`, `From`, `Body`. 2xx: Twilio has queued the message.
//! 4xx: refused, with Twilio's error `code` and `message` when its JSON carries them (429, "too
//! many requests", is the exception: it may pass later). 5xx, a timeout or no connection: unavailable.
//! Redirects are not followed (the credentials must go to the configured host only), and an error
//! body is read only up to [`ERROR_BODY_LIMIT`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use palisade_core::notify::{NotifyError, PhoneNumber, SmsSender};
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use super::{SEND_TIMEOUT, SetupError, scrub};

/// The most of an error answer read, to find Twilio's code and message in.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// The most of Twilio's error message repeated in a [`NotifyError`].
const MESSAGE_LIMIT: usize = 300;

/// Sends SMS from one Twilio number.
pub struct TwilioSender {
    client: reqwest::Client,
    /// `{base}/2010-04-01/Accounts/{sid}/Messages.json`.
    endpoint: Url,
    account_sid: String,
    auth_token: SecretString,
    from: PhoneNumber,
    timeout: Duration,
}

impl fmt::Debug for TwilioSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSender")
            .field("endpoint", &self.endpoint.as_str())
            .field("from", &self.from)
            .field("auth_token", &"***")
            .finish()
    }
}

impl TwilioSender {
    /// A sender for the account `account_sid` (`AC…`, the configuration has checked its form) at
    /// `base_url` (`https://api.twilio.com`, or a test double), sending from `from`.
    pub fn new(
        base_url: &Url,
        account_sid: &str,
        auth_token: SecretString,
        from: PhoneNumber,
    ) -> Result<Self, SetupError> {
        Self::with_timeout(base_url, account_sid, auth_token, from, SEND_TIMEOUT)
    }

    /// [`TwilioSender::new`] with another bound on each request (tests).
    pub(crate) fn with_timeout(
        base_url: &Url,
        account_sid: &str,
        auth_token: SecretString,
        from: PhoneNumber,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        // The SID becomes a path segment: nothing but letters and digits may get there.
        if account_sid.is_empty() || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SetupError::new("twilio", "the account SID is not letters and digits"));
        }
        let endpoint =
            format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", base_url.as_str().trim_end_matches('/'));
        let endpoint = Url::parse(&endpoint).map_err(|e| SetupError::new("twilio", format!("the API URL: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::new("twilio", format!("the HTTP client: {e}")))?;
        Ok(Self { client, endpoint, account_sid: account_sid.to_owned(), auth_token, from, timeout })
    }

    /// A request that got no answer.
    fn transport_error(&self, e: reqwest::Error) -> NotifyError {
        if e.is_timeout() {
            return NotifyError::Unavailable(format!("Twilio did not answer within {} ms", self.timeout.as_millis()));
        }
        let what = if e.is_connect() { "cannot connect to Twilio" } else { "the request to Twilio failed" };
        let host = self.endpoint.host_str().unwrap_or_default();
        let chain = error_chain(&e.without_url());
        NotifyError::Unavailable(scrub(&format!("{what} at {host}: {chain}"), self.auth_token.expose_secret()))
    }

    /// An answer other than 2xx.
    async fn refusal(&self, status: StatusCode, response: reqwest::Response) -> NotifyError {
        let detail = twilio_detail(&read_bounded(response).await);
        let detail = scrub(&detail, self.auth_token.expose_secret());
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            NotifyError::Unavailable(format!("Twilio answered {status}{detail}"))
        } else if status.is_client_error() {
            NotifyError::Rejected(format!("Twilio refused the message ({status}){detail}"))
        } else {
            NotifyError::Unavailable(format!("Twilio answered {status}, which is not an answer to a message"))
        }
    }
}

#[async_trait]
impl SmsSender for TwilioSender {
    fn provider(&self) -> &'static str {
        "twilio"
    }

    #[tracing::instrument(skip_all, fields(to = %to.masked()))]
    async fn send_sms(&self, to: &PhoneNumber, body: &str) -> Result<(), NotifyError> {
        let response = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&[("To", to.as_str()), ("From", self.from.as_str()), ("Body", body)])
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(self.refusal(status, response).await)
    }
}

/// Up to [`ERROR_BODY_LIMIT`] bytes of the answer, lossily as text; what could not be read is
/// left out (the status alone still classifies the answer).
async fn read_bounded(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `: error 21211: The 'To' number … is not a valid phone number.` from Twilio's error JSON, or
/// nothing when the body is not that. Control characters are dropped and the message is cut at
/// [`MESSAGE_LIMIT`] characters: it ends up in logs.
fn twilio_detail(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return String::new();
    };
    let code = json.get("code").and_then(serde_json::Value::as_u64);
    let message = json
        .get("message")
        .and_then(serde_json::Value::as_str)
        .map(|m| m.chars().filter(|c| !c.is_control()).take(MESSAGE_LIMIT).collect::<String>());
    match (code, message) {
        (Some(code), Some(message)) => format!(": error {code}: {message}"),
        (Some(code), None) => format!(": error {code}"),
        (None, Some(message)) => format!(": {message}"),
        (None, None) => String::new(),
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
    //! Against a fake Twilio on a loopback port: an axum app that checks what Twilio checks (basic
    //! auth, the account in the path, the form fields), records each request, and answers as
    //! Twilio does. Like Twilio's test credentials, some `To` numbers script an answer.

    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "5up3r-s3cret-auth-token-0123456789";
    /// Twilio's "invalid number" test number: 400 with error 21211.
    const INVALID: &str = "+15005550001";
    /// Scripted here: the fake answers 500.
    const BROKEN: &str = "+15005550009";
    /// Scripted here: the fake answers 429.
    const THROTTLED: &str = "+15005550429";
    /// Scripted here: the fake answers after 2 s.
    const SLOW: &str = "+15005550010";

    #[derive(Debug, Clone)]
    struct Recorded {
        sid: String,
        authorization: Option<String>,
        content_type: Option<String>,
        form: Vec<(String, String)>,
    }

    type Log = Arc<Mutex<Vec<Recorded>>>;

    fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
        let body = json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        });
        (status, axum::Json(body)).into_response()
    }

    async fn messages(State(log): State<Log>, Path(sid): Path<String>, headers: HeaderMap, body: String) -> Response {
        let header = |name| headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok()).map(str::to_owned);
        let authorization = header(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Basic ").map(str::to_owned))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let form: Vec<(String, String)> =
            url::form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        log.lock().unwrap().push(Recorded {
            sid: sid.clone(),
            authorization: authorization.clone(),
            content_type: header(header::CONTENT_TYPE),
            form: form.clone(),
        });
        if authorization.as_deref() != Some(&format!("{sid}:{TOKEN}")) || sid != SID {
            return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        }
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
        let to = field("To");
        match to.as_str() {
            INVALID => twilio_error(
                StatusCode::BAD_REQUEST,
                21211,
                &format!("The 'To' number {to} is not a valid phone number."),
            ),
            BROKEN => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
            THROTTLED => twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests"),
            _ => {
                if to == SLOW {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                let answer = json!({
                    "sid": "SM0123456789abcdef0123456789abcdef",
                    "account_sid": sid,
                    "to": to,
                    "from": field("From"),
                    "body": field("Body"),
                    "status": "queued",
                    "num_segments": "1",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "error_code": null,
                    "error_message": null,
                });
                (StatusCode::CREATED, axum::Json(answer)).into_response()
            }
        }
    }

    /// Starts the fake; returns its base URL and its request log.
    async fn fake_twilio() -> (Url, Log) {
        let log = Log::default();
        let app =
            Router::new().route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages)).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, log)
    }

    fn sender(base: &Url, token: &str) -> TwilioSender {
        TwilioSender::new(base, SID, SecretString::from(token), PhoneNumber::parse("+15005550006").unwrap()).unwrap()
    }

    fn phone(text: &str) -> PhoneNumber {
        PhoneNumber::parse(text).unwrap()
    }

    #[tokio::test]
    async fn a_message_is_posted_with_basic_auth_to_the_accounts_messages_resource() {
        let (base, log) = fake_twilio().await;
        let body = "Your Palisade code is 482913 & it expires in 5 min = ✓";
        sender(&base, TOKEN).send_sms(&phone("+44 7700 900123"), body).await.unwrap();

        let requests = log.lock().unwrap().clone();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let request = &requests[0];
        assert_eq!(request.sid, SID);
        assert_eq!(request.authorization.as_deref(), Some(format!("{SID}:{TOKEN}").as_str()));
        assert_eq!(request.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
        let form: Vec<(&str, &str)> = request.form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(form, [("To", "+447700900123"), ("From", "+15005550006"), ("Body", body)]);
    }

    #[tokio::test]
    async fn a_base_url_with_a_trailing_slash_or_a_path_prefix_reaches_the_same_resource() {
        let (base, log) = fake_twilio().await;
        let with_slash = Url::parse(&format!("{}/", base.as_str().trim_end_matches('/'))).unwrap();
        sender(&with_slash, TOKEN).send_sms(&phone("+15005550006"), "x").await.unwrap();
        assert_eq!(log.lock().unwrap().len(), 1);
        let endpoint = sender(&Url::parse("https://edge.example.com/twilio/").unwrap(), TOKEN).endpoint;
        assert_eq!(
            endpoint.as_str(),
            format!("https://edge.example.com/twilio/2010-04-01/Accounts/{SID}/Messages.json")
        );
    }

    #[tokio::test]
    async fn a_4xx_is_rejected_with_twilios_code_and_message() {
        let (base, _log) = fake_twilio().await;
        let err = sender(&base, TOKEN).send_sms(&phone(INVALID), "x").await.unwrap_err();
        let NotifyError::Rejected(message) = &err else { panic!("expected Rejected, got {err:?}") };
        assert!(message.contains("400"), "{message}");
        assert!(
            message.contains("error 21211: The 'To' number +15005550001 is not a valid phone number."),
            "{message}"
        );
    }

    #[tokio::test]
    async fn wrong_credentials_are_rejected_without_the_token_in_the_error() {
        let (base, _log) = fake_twilio().await;
        let wrong = "wrong-token-that-must-not-leak";
        let err = sender(&base, wrong).send_sms(&phone("+15005550006"), "x").await.unwrap_err();
        let NotifyError::Rejected(message) = &err else { panic!("expected Rejected, got {err:?}") };
        assert!(message.contains("401") && message.contains("error 20003: Authenticate"), "{message}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(wrong) && !shown.contains(TOKEN), "{shown}");
    }

    #[tokio::test]
    async fn a_5xx_or_a_429_is_unavailable() {
        let (base, _log) = fake_twilio().await;
        let err = sender(&base, TOKEN).send_sms(&phone(BROKEN), "x").await.unwrap_err();
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("500"), "{message}");
        let err = sender(&base, TOKEN).send_sms(&phone(THROTTLED), "x").await.unwrap_err();
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("429") && message.contains("20429"), "{message}");
    }

    #[tokio::test]
    async fn a_closed_port_is_unavailable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = sender(&base, TOKEN).send_sms(&phone("+15005550006"), "x").await.unwrap_err();
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("cannot connect to Twilio at 127.0.0.1"), "{message}");
        assert!(!message.contains(TOKEN), "{message}");
    }

    #[tokio::test]
    async fn a_slow_answer_times_out_as_unavailable() {
        let (base, _log) = fake_twilio().await;
        let sender = TwilioSender::with_timeout(
            &base,
            SID,
            SecretString::from(TOKEN),
            phone("+15005550006"),
            Duration::from_millis(300),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = sender.send_sms(&phone(SLOW), "x").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1900), "took {:?}", started.elapsed());
        let NotifyError::Unavailable(message) = &err else { panic!("expected Unavailable, got {err:?}") };
        assert!(message.contains("did not answer within 300 ms"), "{message}");
    }

    #[test]
    fn twilio_detail_reads_code_and_message_and_nothing_else() {
        assert_eq!(
            twilio_detail(r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient"}"#),
            ": error 21610: Attempt to send to unsubscribed recipient"
        );
        assert_eq!(twilio_detail(r#"{"message": "a\nb"}"#), ": ab");
        assert_eq!(twilio_detail("<html>Bad Gateway</html>"), "");
        assert_eq!(twilio_detail(&format!(r#"{{"message": "{}"}}"#, "x".repeat(1000))).len(), 2 + MESSAGE_LIMIT);
    }

    #[test]
    fn an_account_sid_that_could_change_the_path_is_refused() {
        let base = Url::parse("https://api.twilio.com").unwrap();
        for bad in ["", "AC../../x", "AC?x=1", "AC/Messages"] {
            assert!(TwilioSender::new(&base, bad, SecretString::from(TOKEN), phone("+15005550006")).is_err(), "{bad}");
        }
    }
}
