//! A typed async client for Palisade's HTTP API, over `palisade-types`. Used by the `palisade` CLI
//! where it talks to a running server, by the integration tests, and by Rust applications.

use palisade_types::health::{Health, Ready};
use palisade_types::problem::Problem;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL cannot be used.
    #[error("invalid server URL: {0}")]
    Url(#[from] url::ParseError),
    /// The server could not be reached or the connection broke.
    #[error("could not reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered with a problem.
    #[error("{} {}: {}", .0.status, .0.code, .0.detail)]
    Problem(Box<Problem>),
    /// The server answered something that is not the documented shape.
    #[error("unexpected answer ({status}): {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// A client for one Palisade server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
}

/// `/ready`'s answer with its HTTP status: a 503 still carries the component report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyAnswer {
    /// 200 or 503.
    pub status: u16,
    /// The report.
    pub ready: Ready,
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        Ok(Self { http, base: url::Url::parse(base)? })
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let response = self.http.get(self.base.join("/health")?).send().await?;
        decode(response).await
    }

    /// `GET /ready`; a 503 with a report is an answer, not an error.
    pub async fn ready(&self) -> Result<ReadyAnswer, ClientError> {
        let response = self.http.get(self.base.join("/ready")?).send().await?;
        let status = response.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let bytes = response.bytes().await?;
            if let Ok(ready) = serde_json::from_slice::<Ready>(&bytes) {
                return Ok(ReadyAnswer { status: status.as_u16(), ready });
            }
            return Err(unexpected(status, &bytes));
        }
        Ok(ReadyAnswer { status: status.as_u16(), ready: decode(response).await? })
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|_| unexpected(status, &bytes));
    }
    match serde_json::from_slice::<Problem>(&bytes) {
        Ok(problem) => Err(ClientError::Problem(Box::new(problem))),
        Err(_) => Err(unexpected(status, &bytes)),
    }
}

fn unexpected(status: StatusCode, bytes: &[u8]) -> ClientError {
    let body = String::from_utf8_lossy(bytes.get(..bytes.len().min(200)).unwrap_or_default()).into_owned();
    ClientError::Unexpected { status: status.as_u16(), body }
}
