//! The public keys a `private_key_jwt` client's assertions are verified with, when the client
//! publishes them at its `jwks_uri` (OpenID Connect Core §10.1.1) instead of registering them.
//!
//! - The document is fetched through the [`KeySetFetcher`] port (the server's adapter is an HTTPS
//!   client with time and size limits that refuses loopback, private and link-local addresses), so
//!   core makes no network call of its own and tests can count the fetches.
//! - A fetched set is trusted for [`FRESH_FOR`]; after that the next assertion fetches it again. An
//!   assertion naming a `kid` the set lacks fetches it again at once (the client rotated its keys),
//!   but never sooner than [`MIN_REFETCH`] after the last fetch: a stream of made-up `kid`s cannot
//!   turn Palisade into a load generator against the client's server.
//! - A fetch that fails, or a document that is not a public JWK Set, refuses the assertion
//!   (`invalid_client`, the reason in the audit record) unless the set already held is still fresh
//!   (a refetch for an unknown `kid` failed): no set outlives [`FRESH_FOR`], so a key the client
//!   withdrew stops working within it. A failure is remembered for [`MIN_REFETCH`].
//! - One fetch per URI at a time: concurrent assertions wait for the fetch in progress.
//! - Entries are keyed by the URI of a registered client: the cache is bounded by the URIs that
//!   clients have registered, which only an administrator can add.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;

/// How long a fetched key set is used before it is fetched again.
pub const FRESH_FOR: Duration = Duration::minutes(5);
/// The shortest time between two fetches of one URI (an unknown `kid`, or after a failure).
pub const MIN_REFETCH: Duration = Duration::seconds(10);
/// The largest key-set document accepted, in bytes (what the fetcher reads at most).
pub const MAX_KEY_SET_BYTES: usize = 64 * 1024;

/// Why a key set could not be fetched. The text is for the audit record; it never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URI is not one Palisade fetches: a scheme other than https, or a host that resolves to a
    /// loopback, private or link-local address (server-side request forgery).
    #[error("the jwks_uri is not fetched: {0}")]
    Refused(String),
    /// The fetch failed: no connection, a timeout, a status other than 200, a redirect, a document
    /// too large.
    #[error("the jwks_uri could not be fetched: {0}")]
    Failed(String),
}

/// Fetches the document at a client's `jwks_uri`.
#[async_trait]
pub trait KeySetFetcher: Send + Sync + 'static {
    /// The body of a `200` answer to `GET uri`, at most [`MAX_KEY_SET_BYTES`] long.
    async fn fetch(&self, uri: &str) -> Result<String, FetchError>;
}

/// Checks that `set` is a JWK Set of public keys: an object whose `keys` is a non-empty array of
/// objects, none private (`d`) and none symmetric (`oct`, `k`). The reason when it is not.
pub(crate) fn check_public_key_set(set: &Value) -> Result<(), &'static str> {
    let keys = set.get("keys").and_then(Value::as_array);
    if !keys.is_some_and(|k| !k.is_empty() && k.iter().all(Value::is_object)) {
        return Err("must be a JWK Set: an object whose `keys` is a non-empty array of keys");
    }
    if keys.is_some_and(|k| k.iter().any(|key| key.get("d").is_some())) {
        return Err("holds a private key (`d`): only public keys may be published");
    }
    if keys.is_some_and(|k| k.iter().any(|key| key.get("k").is_some() || key.get("kty") == Some(&"oct".into()))) {
        return Err("holds a symmetric key (`oct`): private_key_jwt needs public keys");
    }
    Ok(())
}

/// One URI's last fetch.
#[derive(Default)]
struct Entry {
    /// The set and when it was fetched.
    set: Option<(Arc<JwkSet>, OffsetDateTime)>,
    /// When a fetch was last attempted, and its failure if it failed.
    attempt: Option<(OffsetDateTime, Option<&'static str>)>,
}

/// The key sets fetched from clients' `jwks_uri`s.
pub(crate) struct RemoteKeySets {
    fetcher: Option<Arc<dyn KeySetFetcher>>,
    clock: Arc<dyn Clock>,
    /// `std::sync::Mutex`, never held across an `.await`; each entry's `tokio` mutex is, so one
    /// URI is fetched once at a time while others go on.
    entries: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl RemoteKeySets {
    /// Key sets fetched through `fetcher`; without one, a client registered with a `jwks_uri` cannot
    /// authenticate (the embedded library without outbound HTTP).
    pub(crate) fn new(fetcher: Option<Arc<dyn KeySetFetcher>>, clock: Arc<dyn Clock>) -> Self {
        Self { fetcher, clock, entries: std::sync::Mutex::default() }
    }

    /// The key set at `uri` that holds `kid` (or any set when the assertion names none), fetched if
    /// the cached one is stale or lacks `kid`. The reason for the audit record when there is none.
    pub(crate) async fn keys(&self, uri: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, &'static str> {
        let Some(fetcher) = &self.fetcher else {
            return Err("the client's keys are published at a jwks_uri and this deployment fetches none");
        };
        let entry = {
            let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            entries.entry(uri.to_owned()).or_default().clone()
        };
        let mut entry = entry.lock().await;
        let now = self.clock.now();
        let has_kid = |set: &JwkSet| kid.is_none_or(|kid| set.find(kid).is_some());
        if let Some((set, at)) = &entry.set
            && now - *at < FRESH_FOR
            && has_kid(set)
        {
            return Ok(set.clone());
        }
        if let Some((at, failure)) = entry.attempt
            && now - at < MIN_REFETCH
        {
            // Fetched a moment ago: answer with what that fetch left.
            return match &entry.set {
                Some((set, at)) if now - *at < FRESH_FOR => Ok(set.clone()),
                _ => Err(failure.unwrap_or("the client's key set is stale and was fetched a moment ago")),
            };
        }
        let fetched = match fetcher.fetch(uri).await {
            Ok(body) => parse(&body),
            Err(FetchError::Refused(_)) => Err("the client's jwks_uri points at an address Palisade does not fetch"),
            Err(FetchError::Failed(_)) => Err("the client's jwks_uri could not be fetched"),
        };
        let now = self.clock.now();
        match fetched {
            Ok(set) => {
                let set = Arc::new(set);
                entry.set = Some((set.clone(), now));
                entry.attempt = Some((now, None));
                Ok(set)
            }
            Err(reason) => {
                entry.attempt = Some((now, Some(reason)));
                // A set still fresh keeps serving the keys it holds (a refetch for an unknown kid
                // failed); a stale one is dropped.
                match &entry.set {
                    Some((set, at)) if now - *at < FRESH_FOR => Ok(set.clone()),
                    _ => {
                        entry.set = None;
                        Err(reason)
                    }
                }
            }
        }
    }
}

/// A fetched document as a JWK Set of public keys.
fn parse(body: &str) -> Result<JwkSet, &'static str> {
    if body.len() > MAX_KEY_SET_BYTES {
        return Err("the client's jwks_uri document is too large");
    }
    let value: Value = serde_json::from_str(body).map_err(|_| "the client's jwks_uri document is not JSON")?;
    check_public_key_set(&value).map_err(|_| "the client's jwks_uri document is not a JWK Set of public keys")?;
    serde_json::from_value(value).map_err(|_| "the client's jwks_uri document holds an unreadable key")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;

    /// Serves whatever document it holds, counting the fetches.
    struct Fake {
        document: Mutex<Result<String, ()>>,
        fetches: AtomicUsize,
    }

    #[async_trait]
    impl KeySetFetcher for Fake {
        async fn fetch(&self, _uri: &str) -> Result<String, FetchError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            // Let other tasks run meanwhile, as a network fetch would.
            tokio::task::yield_now().await;
            self.document.lock().unwrap().clone().map_err(|()| FetchError::Failed("connection refused".into()))
        }
    }

    fn set(kids: &[&str]) -> String {
        let keys: Vec<Value> = kids
            .iter()
            .map(|kid| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    fn sets(document: Result<String, ()>) -> (RemoteKeySets, Arc<Fake>, Arc<ManualClock>) {
        let fake = Arc::new(Fake { document: Mutex::new(document), fetches: AtomicUsize::new(0) });
        let clock = Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)));
        (RemoteKeySets::new(Some(fake.clone()), clock.clone()), fake, clock)
    }

    const URI: &str = "https://rp.example/jwks";

    #[tokio::test]
    async fn a_set_is_fetched_once_while_fresh_then_again() {
        let (keys, fake, clock) = sets(Ok(set(&["a"])));
        for _ in 0..3 {
            assert!(keys.keys(URI, Some("a")).await.unwrap().find("a").is_some());
        }
        assert!(keys.keys(URI, None).await.is_ok());
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 1);
        clock.advance(FRESH_FOR);
        assert!(keys.keys(URI, Some("a")).await.is_ok());
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
        // Another URI is another entry.
        assert!(keys.keys("https://other.example/jwks", Some("a")).await.is_ok());
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_but_not_more_often_than_the_minimum() {
        let (keys, fake, clock) = sets(Ok(set(&["a"])));
        assert!(keys.keys(URI, Some("a")).await.is_ok());
        clock.advance(MIN_REFETCH);
        // The client rotated: "b" is published now.
        *fake.document.lock().unwrap() = Ok(set(&["b"]));
        let rotated = keys.keys(URI, Some("b")).await.unwrap();
        assert!(rotated.find("b").is_some() && rotated.find("a").is_none(), "the withdrawn key is gone");
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
        // Made-up kids within the minimum interval fetch nothing more.
        for kid in ["x", "y", "z"] {
            let answered = keys.keys(URI, Some(kid)).await.unwrap();
            assert!(answered.find(kid).is_none());
        }
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
        clock.advance(MIN_REFETCH);
        assert!(keys.keys(URI, Some("x")).await.is_ok());
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn failures_refuse_are_remembered_briefly_and_leave_no_stale_set() {
        let (keys, fake, clock) = sets(Ok(set(&["a"])));
        assert!(keys.keys(URI, Some("a")).await.is_ok());
        clock.advance(FRESH_FOR);
        *fake.document.lock().unwrap() = Err(());
        assert_eq!(keys.keys(URI, Some("a")).await.unwrap_err(), "the client's jwks_uri could not be fetched");
        assert_eq!(keys.keys(URI, Some("a")).await.unwrap_err(), "the client's jwks_uri could not be fetched");
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 2, "a failure is remembered for MIN_REFETCH");
        *fake.document.lock().unwrap() = Ok(set(&["a"]));
        clock.advance(MIN_REFETCH);
        assert!(keys.keys(URI, Some("a")).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_refetch_for_an_unknown_kid_keeps_the_fresh_set() {
        let (keys, fake, clock) = sets(Ok(set(&["a"])));
        assert!(keys.keys(URI, Some("a")).await.is_ok());
        clock.advance(MIN_REFETCH);
        *fake.document.lock().unwrap() = Err(());
        assert!(keys.keys(URI, Some("forged")).await.unwrap().find("forged").is_none());
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 2);
        assert!(keys.keys(URI, Some("a")).await.is_ok(), "the client's real key still works");
        // Once the set is stale, the failure refuses.
        clock.advance(FRESH_FOR);
        assert!(keys.keys(URI, Some("a")).await.is_err());
    }

    #[tokio::test]
    async fn documents_that_are_not_public_key_sets_are_refused() {
        let private = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}"#;
        let large = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(MAX_KEY_SET_BYTES));
        for (document, reason) in [
            ("not json", "the client's jwks_uri document is not JSON"),
            (r#"{"keys":[]}"#, "the client's jwks_uri document is not a JWK Set of public keys"),
            (private, "the client's jwks_uri document is not a JWK Set of public keys"),
            (
                r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
                "the client's jwks_uri document is not a JWK Set of public keys",
            ),
            (r#"{"keys":[{"kty":"OKP","kid":5}]}"#, "the client's jwks_uri document holds an unreadable key"),
            (large.as_str(), "the client's jwks_uri document is too large"),
        ] {
            let (keys, _, _) = sets(Ok(document.to_owned()));
            assert_eq!(keys.keys(URI, None).await.unwrap_err(), reason, "{document:.40}");
        }
    }

    #[tokio::test]
    async fn without_a_fetcher_nothing_is_fetched() {
        let keys = RemoteKeySets::new(None, Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)));
        assert!(keys.keys(URI, None).await.unwrap_err().contains("fetches none"));
    }

    #[tokio::test]
    async fn concurrent_assertions_share_one_fetch() {
        let (keys, fake, _) = sets(Ok(set(&["a"])));
        let keys = Arc::new(keys);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let keys = keys.clone();
                tokio::spawn(async move { keys.keys(URI, Some("a")).await.is_ok() })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 1);
    }
}
