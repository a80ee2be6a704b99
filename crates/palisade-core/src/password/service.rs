//! The async face of [`PasswordHasher`]: every derivation on the blocking pool, at most
//! `max_concurrent` at a time, and a dummy hash so that unknown users cost what known users do.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use secrecy::SecretString;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{PasswordHashError, PasswordHasher, PasswordPolicy, PolicyViolation};

/// Counts the derivations running right now, and the most ever seen at once.
#[derive(Default)]
struct Load {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// Marks one derivation as running until dropped.
struct Running<'a>(&'a Load);

impl<'a> Running<'a> {
    fn start(load: &'a Load) -> Self {
        let now = load.in_flight.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        load.peak.fetch_max(now, Ordering::SeqCst);
        Self(load)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Password hashing for async code.
///
/// Argon2 is tens of milliseconds of pure CPU per call (7–9 ms in release at the default
/// parameters). Run on a tokio worker it would stall every other request on that worker; run on
/// `spawn_blocking` without a bound, a login flood would start hundreds of threads and 19 MiB
/// arenas. So each call first takes a permit from a semaphore sized to the cores (configurable),
/// then derives on the blocking pool; beyond that, callers wait in the semaphore's FIFO queue while
/// the async workers keep serving everything else. Each derivation uses exactly one thread, so the
/// permits count cores whatever the lanes. The permit is held by the blocking task itself: a caller
/// that gives up (a dropped request) does not free it before the work it started has finished.
///
/// The current tracing span is carried onto the blocking thread. Passwords are moved into the
/// blocking task as [`SecretString`]s and wiped when it ends.
pub struct PasswordService {
    hasher: Arc<PasswordHasher>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    /// A hash of a random password with the configured parameters, for [`Self::verify_dummy`].
    dummy: Arc<str>,
    load: Arc<Load>,
}

impl PasswordService {
    /// The default concurrency: the number of cores the process may use.
    pub fn default_concurrency() -> NonZeroUsize {
        std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
    }

    /// A service over `hasher` running at most `max_concurrent` derivations at once.
    ///
    /// Blocks for one derivation, to make the dummy hash: call it at start-up.
    ///
    /// # Errors
    /// When the dummy hash cannot be made ([`PasswordHashError::Random`] or
    /// [`PasswordHashError::Argon2`]): the configuration cannot hash at all.
    pub fn new(mut hasher: PasswordHasher, max_concurrent: NonZeroUsize) -> Result<Self, PasswordHashError> {
        let max_concurrent = max_concurrent.get();
        // At most one arena per permit is ever in use, so at most that many are worth keeping.
        hasher.set_pool_capacity(max_concurrent);
        let mut random = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(random.as_mut()).map_err(|_| PasswordHashError::Random)?;
        let dummy = Arc::from(hasher.hash_bytes(random.as_ref())?);
        // The arena the dummy hash used is freed: an idle server holds no argon2 memory.
        hasher.release_arenas();
        Ok(Self {
            hasher: Arc::new(hasher),
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            dummy,
            load: Arc::default(),
        })
    }

    /// A service over `hasher` with [`Self::default_concurrency`].
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_default_concurrency(hasher: PasswordHasher) -> Result<Self, PasswordHashError> {
        Self::new(hasher, Self::default_concurrency())
    }

    /// Hashes a new password; returns the PHC string to store.
    ///
    /// # Errors
    /// As [`PasswordHasher::hash`], or [`PasswordHashError::Unavailable`] if the blocking task did
    /// not complete.
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordHashError> {
        self.run(move |hasher| hasher.hash(&password)).await?
    }

    /// Whether `password` matches the stored `phc`.
    ///
    /// # Errors
    /// As [`PasswordHasher::verify`], or [`PasswordHashError::Unavailable`]. A wrong password is
    /// `Ok(false)`.
    pub async fn verify(&self, password: SecretString, phc: &str) -> Result<bool, PasswordHashError> {
        let phc = phc.to_owned();
        self.run(move |hasher| hasher.verify(&password, &phc)).await?
    }

    /// Spends exactly what [`Self::verify`] spends on a known user, for a login whose user does not
    /// exist (or whose name is malformed), so response times do not reveal which accounts exist.
    /// Always a failure; nothing is returned because there is nothing to decide.
    pub async fn verify_dummy(&self, password: SecretString) {
        let dummy = Arc::clone(&self.dummy);
        match self.run(move |hasher| hasher.verify(&password, &dummy)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) | Err(e) => tracing::warn!(error = %e, "dummy password verification failed"),
        }
    }

    /// Whether `password` matches any of `hashes` (the current and previous password hashes), for
    /// the history rule. Runs on the blocking pool under one permit, stopping at the first match.
    /// A stored hash that cannot be read counts as no match (and is logged).
    pub async fn matches_any(&self, password: SecretString, hashes: &[String]) -> bool {
        if hashes.is_empty() {
            return false;
        }
        let hashes = hashes.to_vec();
        let outcome = self
            .run(move |hasher| {
                hashes.iter().any(|phc| match hasher.verify(&password, phc) {
                    Ok(matched) => matched,
                    Err(e) => {
                        tracing::warn!(error = %e, "a stored password hash in the history could not be checked");
                        false
                    }
                })
            })
            .await;
        outcome.unwrap_or_else(|e| {
            tracing::error!(error = %e, "password history check did not run");
            false
        })
    }

    /// [`PasswordPolicy::check`] on the blocking pool, under the same permits as hashing.
    ///
    /// zxcvbn is not cheap on long inputs (about 0.2 ms for 25 characters, 10 ms or more for 100 in a
    /// release build, more than an argon2 hash), so registration and password change should check
    /// here rather than on the async worker.
    ///
    /// # Errors
    /// [`PasswordHashError::Unavailable`] if the blocking task did not complete; otherwise the
    /// policy's own answer is inside.
    pub async fn check_policy(
        &self,
        policy: &PasswordPolicy,
        password: SecretString,
        username: &str,
        email: Option<&str>,
    ) -> Result<Result<(), Vec<PolicyViolation>>, PasswordHashError> {
        let policy = policy.clone();
        let username = username.to_owned();
        let email = email.map(str::to_owned);
        self.run(move |_| policy.check(&password, &username, email.as_deref())).await
    }

    /// Whether a stored hash should be replaced after a successful login (cheap: no derivation).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        self.hasher.needs_rehash(phc)
    }

    /// The synchronous hasher underneath.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// How many derivations may run at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// How many derivations are running right now.
    pub fn in_flight(&self) -> usize {
        self.load.in_flight.load(Ordering::SeqCst)
    }

    /// The most derivations that ever ran at once (a gauge for tuning `max_concurrent`).
    pub fn peak_in_flight(&self) -> usize {
        self.load.peak.load(Ordering::SeqCst)
    }

    /// Runs `job` on the blocking pool once a permit is free.
    async fn run<T, F>(&self, job: F) -> Result<T, PasswordHashError>
    where
        F: FnOnce(&PasswordHasher) -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits).acquire_owned().await.map_err(|_| PasswordHashError::Unavailable)?;
        let hasher = Arc::clone(&self.hasher);
        let load = Arc::clone(&self.load);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            // Dropped in reverse order: the count goes down before the permit is released, so the
            // next derivation can never be counted alongside this one.
            let _permit = permit;
            let _span = span.entered();
            let _running = Running::start(&load);
            job(&hasher)
        })
        .await
        .map_err(|_| PasswordHashError::Unavailable)
    }
}

impl fmt::Debug for PasswordService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordService")
            .field("hasher", &self.hasher)
            .field("max_concurrent", &self.max_concurrent)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::Argon2Params;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    fn service(max_concurrent: usize) -> PasswordService {
        let hasher = PasswordHasher::new(Argon2Params::default()).unwrap();
        PasswordService::new(hasher, NonZeroUsize::new(max_concurrent).unwrap()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hash_verify_round_trip_on_the_blocking_pool() {
        let passwords = service(2);
        let phc = passwords.hash(secret("correct horse battery staple")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(passwords.verify(secret("correct horse battery staple"), &phc).await, Ok(true));
        assert_eq!(passwords.verify(secret("wrong horse battery staple"), &phc).await, Ok(false));
        assert_eq!(passwords.verify(secret("x"), "garbage").await, Err(PasswordHashError::MalformedHash));
        assert!(!passwords.needs_rehash(&phc));
        assert_eq!(passwords.in_flight(), 0);
        assert!(passwords.peak_in_flight() >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_semaphore_of_one_never_runs_two_derivations_at_once() {
        let passwords = Arc::new(service(1));
        let phc = passwords.hash(secret("correct horse battery staple")).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..6 {
            let passwords = Arc::clone(&passwords);
            let phc = phc.clone();
            tasks.spawn(async move {
                match i % 3 {
                    0 => passwords.hash(secret("another password entirely")).await.map(|_| ()).unwrap(),
                    1 => assert_eq!(passwords.verify(secret("correct horse battery staple"), &phc).await, Ok(true)),
                    _ => passwords.verify_dummy(secret("nobody's password")).await,
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
        assert_eq!(passwords.peak_in_flight(), 1);
        assert_eq!(passwords.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_permits_allow_two_derivations_at_once() {
        // Not a bound test: proves the counter would see an overlap, so the test above means
        // something. Both derivations are started before either can finish.
        let passwords = Arc::new(service(2));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let passwords = Arc::clone(&passwords);
            tasks.spawn(async move { passwords.hash(secret("correct horse battery staple")).await.map(|_| ()) });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap().unwrap();
        }
        assert_eq!(passwords.peak_in_flight(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn async_workers_stay_free_while_hashing() {
        // On a single-threaded runtime, a derivation on the async worker would block the ticker.
        let passwords = service(1);
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            })
        };
        passwords.hash(secret("correct horse battery staple")).await.unwrap();
        ticker.abort();
        assert!(ticks.load(Ordering::SeqCst) > 1, "the runtime was blocked during the hash");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dummy_is_made_with_the_configured_parameters() {
        let passwords = service(1);
        assert!(passwords.dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!passwords.needs_rehash(&passwords.dummy));
        passwords.verify_dummy(secret("anything")).await;
        assert_eq!(passwords.peak_in_flight(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn matches_any_checks_the_history() {
        let passwords = service(2);
        let mut history = Vec::new();
        for old in ["first old password", "second old password", "third old password"] {
            history.push(passwords.hash(secret(old)).await.unwrap());
        }
        assert!(passwords.matches_any(secret("second old password"), &history).await);
        assert!(passwords.matches_any(secret("third old password"), &history).await);
        assert!(!passwords.matches_any(secret("a brand new password"), &history).await);
        assert!(!passwords.matches_any(secret("first old password"), &[]).await);
        // An unreadable entry is skipped, not fatal.
        let with_garbage = vec!["garbage".to_owned(), history[0].clone()];
        assert!(passwords.matches_any(secret("first old password"), &with_garbage).await);
        assert!(!passwords.matches_any(secret("nothing"), &["garbage".to_owned()]).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn policy_checks_run_on_the_blocking_pool() {
        let passwords = service(1);
        let policy = PasswordPolicy::default();
        let refused = passwords.check_policy(&policy, secret("password1234"), "alice", None).await.unwrap();
        let rules: Vec<_> = refused.unwrap_err().into_iter().map(|v| v.rule).collect();
        assert_eq!(rules, ["common_password", "weak"]);
        let accepted = passwords.check_policy(&policy, secret("violet-Harbour-48-quantum"), "alice", None).await;
        assert_eq!(accepted, Ok(Ok(())));
        assert_eq!(passwords.peak_in_flight(), 1);
    }

    #[test]
    fn debug_hides_the_dummy_hash() {
        let passwords = service(1);
        let text = format!("{passwords:?}");
        assert!(text.contains("max_concurrent: 1") && !text.contains("$argon2id"), "{text}");
    }
}
