//! What checking a second factor costs in process, before any store round trip: a TOTP code against
//! its secret (HMAC-SHA-1 per step tried, 20-byte secret, skew one step either side), and parsing
//! the codes a person types.
//!
//! `TotpSecret::matching_step` builds a totp-rs `Totp` and tries the window oldest first (previous,
//! current, next step), stopping at the first match: a code of the previous step costs one HMAC, a
//! current one two, a wrong one all three (the worst case, and what a guesser pays for).
//!
//! Run: `cargo bench -p palisade-core --bench totp`

// A benchmark whose setup fails has nobody to report to but the terminal: aborting is the answer.
#![allow(clippy::expect_used)]

use divan::Bencher;
use palisade_core::mfa::code::{BackupCode, OtpCode};
use palisade_core::mfa::totp::{STEP_SECS, TotpSecret, step_of};

/// A fixed instant in the middle of a step, so the window never straddles a boundary mid-run.
const NOW: u64 = 1_800_000_015;

fn main() {
    divan::main();
}

fn secret() -> TotpSecret {
    TotpSecret::generate().expect("random secret")
}

fn code_of_step(secret: &TotpSecret, step: u64) -> String {
    secret.code_at(step * STEP_SECS).expect("code")
}

/// [`TotpSecret::matching_step`] at [`NOW`].
mod matching_step {
    use super::*;

    fn run(bencher: Bencher, secret: &TotpSecret, code: &str, expected: Option<u64>) {
        assert_eq!(secret.matching_step(code, NOW).expect("check"), expected);
        bencher.bench_local(|| secret.matching_step(divan::black_box(code), divan::black_box(NOW)));
    }

    /// The code of the current step: matched on the second step tried.
    #[divan::bench]
    fn current_step(bencher: Bencher) {
        let secret = secret();
        let code = code_of_step(&secret, step_of(NOW));
        run(bencher, &secret, &code, Some(step_of(NOW)));
    }

    /// The code of the previous step (a clock running late, or a code typed as it changed): matched
    /// on the first step tried.
    #[divan::bench]
    fn previous_step(bencher: Bencher) {
        let secret = secret();
        let code = code_of_step(&secret, step_of(NOW) - 1);
        run(bencher, &secret, &code, Some(step_of(NOW) - 1));
    }

    /// A code of none of the three steps: all three computed.
    #[divan::bench]
    fn wrong(bencher: Bencher) {
        let secret = secret();
        let window: Vec<String> = (step_of(NOW) - 1..=step_of(NOW) + 1).map(|s| code_of_step(&secret, s)).collect();
        let code = (0u32..)
            .map(|n| format!("{:06}", (123_456 + n) % 1_000_000))
            .find(|c| !window.contains(c))
            .expect("a code outside the window");
        run(bencher, &secret, &code, None);
    }
}

/// For reference: [`TotpSecret::code_at`], one `Totp` built and one step computed.
#[divan::bench]
fn code_at(bencher: Bencher) {
    let secret = secret();
    bencher.bench_local(|| secret.code_at(divan::black_box(NOW)));
}

/// [`BackupCode::parse`] of a code as shown (`xxxxx-xxxxx`), and as typed loosely (upper case,
/// a space, the letters read as digits).
#[divan::bench(args = ["3f7k2-9xq4m", " 3F7K2 9XQ4O "])]
fn backup_code_parse(text: &str) -> BackupCode {
    BackupCode::parse(divan::black_box(text)).expect("a valid backup code")
}

/// [`OtpCode::parse`] of six digits.
#[divan::bench]
fn otp_code_parse() -> OtpCode {
    OtpCode::parse(divan::black_box("048213")).expect("a valid code")
}
