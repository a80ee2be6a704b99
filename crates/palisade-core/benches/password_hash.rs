//! What a password costs: argon2id hash and verify at the default (OWASP minimum) parameters,
//! m=19456 KiB, t=2, p=1, with and without a reused argon2 arena, and a burst of logins through the
//! bounded async service.
//!
//! Run: `cargo bench -p palisade-core --bench password_hash`

// A benchmark whose setup fails has nobody to report to but the terminal: aborting is the answer.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use argon2_rust::{Algorithm, Argon2, Version};
use divan::Bencher;
use divan::counter::ItemsCount;
use palisade_core::password::{Argon2Params, PasswordHasher, PasswordPolicy, PasswordService};
use secrecy::SecretString;

const PASSWORD: &str = "correct horse battery staple";
const BURST: usize = 16;

fn main() {
    divan::main();
}

fn hasher(pool_capacity: usize) -> PasswordHasher {
    PasswordHasher::new(Argon2Params::default()).expect("default parameters").with_pool_capacity(pool_capacity)
}

/// [`PasswordHasher::hash`]: `reused` keeps one argon2 arena between calls (as the service does),
/// `one_shot` maps a fresh 19 MiB arena every call (pool capacity 0).
mod hash {
    use super::*;

    fn run(bencher: Bencher, pool_capacity: usize) {
        let hasher = hasher(pool_capacity);
        let password = SecretString::from(PASSWORD);
        bencher.bench_local(|| hasher.hash(divan::black_box(&password)).expect("hash"));
    }

    #[divan::bench]
    fn reused(bencher: Bencher) {
        run(bencher, 1);
    }

    #[divan::bench]
    fn one_shot(bencher: Bencher) {
        run(bencher, 0);
    }
}

/// [`PasswordHasher::verify`] of a correct password (a wrong one costs the same), arenas as above.
mod verify {
    use super::*;

    fn run(bencher: Bencher, pool_capacity: usize) {
        let hasher = hasher(pool_capacity);
        let password = SecretString::from(PASSWORD);
        let phc = hasher.hash(&password).expect("hash");
        bencher.bench_local(|| assert!(hasher.verify(divan::black_box(&password), &phc).expect("verify")));
    }

    #[divan::bench]
    fn reused(bencher: Bencher) {
        run(bencher, 1);
    }

    #[divan::bench]
    fn one_shot(bencher: Bencher) {
        run(bencher, 0);
    }
}

/// The engine alone, as measured in DEPENDENCIES.md: argon2-rust one-shot vs a reused `Hasher`.
mod engine {
    use super::*;

    fn argon2() -> Argon2 {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_rust::Params::default())
    }

    #[divan::bench]
    fn one_shot(bencher: Bencher) {
        let argon2 = argon2();
        let mut tag = [0u8; 32];
        bencher.bench_local(|| argon2.hash_into(divan::black_box(PASSWORD.as_bytes()), b"somesaltsomesalt", &mut tag));
    }

    #[divan::bench]
    fn reused_hasher(bencher: Bencher) {
        let mut hasher = argon2().hasher();
        let mut tag = [0u8; 32];
        bencher.bench_local(|| hasher.hash_into(divan::black_box(PASSWORD.as_bytes()), b"somesaltsomesalt", &mut tag));
    }
}

/// [`PasswordPolicy::check`] at the defaults (zxcvbn included), which runs on the async worker: a
/// typical passphrase, and the longest password the policy accepts (zxcvbn reads 100 characters).
#[divan::bench(args = [25, 128])]
fn policy_check(bencher: Bencher, length: usize) {
    let policy = PasswordPolicy::default();
    // Dictionary words, l33t, digits, a date and a keyboard walk: zxcvbn's matchers all have work.
    let text = "violet-Harbour-48-quantum-p@ssw0rd-19/07/1987-qwertyuiop-Tr0ub4dor&3-correcthorsebattery-zxcvbnm-";
    let password = SecretString::from(text.repeat(2).chars().take(length).collect::<String>());
    bencher.bench_local(|| policy.check(divan::black_box(&password), "alice", Some("alice@example.com")));
}

/// A burst of 16 concurrent logins through [`PasswordService`] (permits = cores): the time for the
/// whole burst, and logins per second.
#[divan::bench(sample_count = 20)]
fn service_verify_burst(bencher: Bencher) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let service = Arc::new(PasswordService::with_default_concurrency(hasher(1)).expect("service"));
    let phc: Arc<str> = Arc::from(service.hasher().hash(&SecretString::from(PASSWORD)).expect("hash"));
    bencher.counter(ItemsCount::new(BURST)).bench_local(|| {
        runtime.block_on(async {
            let mut logins = tokio::task::JoinSet::new();
            for _ in 0..BURST {
                let service = Arc::clone(&service);
                let phc = Arc::clone(&phc);
                logins.spawn(async move { service.verify(SecretString::from(PASSWORD), &phc).await });
            }
            while let Some(joined) = logins.join_next().await {
                assert!(joined.expect("join").expect("verify"));
            }
        });
    });
}
