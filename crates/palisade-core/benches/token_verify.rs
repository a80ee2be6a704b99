#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! Access-token verification against the floor it stands on: a bare aws-lc-rs Ed25519 signature
//! check of a message as long as the token's signing input. `AccessTokens::verify` adds the header
//! parse, the key lookup, base64 and the claims; the budget for all that is 20 % (ratio ≤ 1.2).
//!
//! `cargo bench -p palisade-core --bench token_verify` prints ns/op (median and best of interleaved
//! rounds, so a busy machine slows both sides alike) and the ratio; for information it also times
//! issuing, and verifying with the other algorithms. Run without `--bench` (as `cargo test
//! --all-targets` does) it only checks that everything it measures works.

#[path = "../tests/interop/memory.rs"]
mod memory;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use palisade_core::clock::{Clock, ManualClock};
use palisade_core::token::SessionId;
use palisade_core::token::access::{AccessTokenSettings, AccessTokens};
use palisade_core::token::keys::SigningAlgorithm;
use palisade_core::user::UserId;

const BUDGET: f64 = 1.2;

struct Plan {
    rounds: usize,
    per_round: usize,
}

/// Times `f` over interleaved rounds; returns ns/op of each round for each function.
fn interleaved(plan: &Plan, fs: &mut [&mut dyn FnMut()]) -> Vec<Vec<f64>> {
    let mut samples = vec![Vec::with_capacity(plan.rounds); fs.len()];
    for f in fs.iter_mut() {
        for _ in 0..plan.per_round / 4 + 1 {
            f(); // warm-up
        }
    }
    for _ in 0..plan.rounds {
        for (f, out) in fs.iter_mut().zip(samples.iter_mut()) {
            let start = Instant::now();
            for _ in 0..plan.per_round {
                f();
            }
            out.push(start.elapsed().as_nanos() as f64 / plan.per_round as f64);
        }
    }
    samples
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn best(samples: &[f64]) -> f64 {
    samples.iter().copied().fold(f64::INFINITY, f64::min)
}

fn tokens_for(runtime: &tokio::runtime::Runtime, algorithm: SigningAlgorithm) -> AccessTokens {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::fixed());
    let store = Arc::new(memory::MemoryStore::default());
    let keyring = memory::keyring(&store, &clock);
    let keys = runtime.block_on(memory::signing_keys(&store, &keyring, &clock, algorithm)).unwrap();
    AccessTokens::new(Arc::new(keys), clock, AccessTokenSettings::new("http://127.0.0.1:8080", "http://127.0.0.1:8080"))
}

fn issue(tokens: &AccessTokens) -> String {
    let scopes = ["user".to_owned()];
    tokens.issue(&UserId::generate().to_string(), SessionId::generate(), &scopes).unwrap().token
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full { Plan { rounds: 41, per_round: 400 } } else { Plan { rounds: 1, per_round: 3 } };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();

    let tokens = tokens_for(&runtime, SigningAlgorithm::EdDSA);
    let token = issue(&tokens);
    let (signing_input, _) = token.rsplit_once('.').unwrap();

    // The floor: another Ed25519 key, the same number of bytes signed, verified by aws-lc-rs alone.
    let pair = Ed25519KeyPair::generate().unwrap();
    let message = signing_input.as_bytes().to_vec();
    let signature = pair.sign(&message).as_ref().to_vec();
    let public = UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec());
    public.verify(&message, &signature).unwrap();
    tokens.verify(&token).unwrap();

    let samples = interleaved(
        &plan,
        &mut [&mut || public.verify(black_box(&message), black_box(&signature)).unwrap(), &mut || {
            black_box(tokens.verify(black_box(&token)).unwrap());
        }],
    );
    let (bare, ours) = (&samples[0], &samples[1]);
    println!(
        "token_verify: {} rounds x {} ops, signing input {} bytes, token {} bytes",
        plan.rounds,
        plan.per_round,
        message.len(),
        token.len()
    );
    println!("  {:<38} {:>10} {:>10}", "", "median ns", "best ns");
    println!("  {:<38} {:>10.0} {:>10.0}", "aws-lc-rs Ed25519 verify (bare)", median(bare), best(bare));
    println!("  {:<38} {:>10.0} {:>10.0}", "AccessTokens::verify (EdDSA)", median(ours), best(ours));
    let ratio = median(ours) / median(bare);
    println!("  ratio (median) {ratio:.3}, (best) {:.3}; budget {BUDGET}", best(ours) / best(bare));

    // For information: issuing, and verifying with the other algorithms.
    let others: Vec<(SigningAlgorithm, AccessTokens)> =
        [SigningAlgorithm::ES256, SigningAlgorithm::RS256].into_iter().map(|a| (a, tokens_for(&runtime, a))).collect();
    let info_plan = Plan { rounds: if full { 11 } else { 1 }, per_round: if full { 100 } else { 2 } };
    let mut issue_eddsa = || {
        black_box(issue(&tokens));
    };
    let issued = interleaved(&info_plan, &mut [&mut issue_eddsa]);
    println!("  {:<38} {:>10.0} {:>10.0}", "AccessTokens::issue (EdDSA)", median(&issued[0]), best(&issued[0]));
    for (algorithm, tokens) in &others {
        let token = issue(tokens);
        let mut verify = || {
            black_box(tokens.verify(black_box(&token)).unwrap());
        };
        let mut sign = || {
            black_box(issue(tokens));
        };
        let samples = interleaved(&info_plan, &mut [&mut verify, &mut sign]);
        println!(
            "  {:<38} {:>10.0} {:>10.0}",
            format!("AccessTokens::verify ({algorithm})"),
            median(&samples[0]),
            best(&samples[0])
        );
        println!(
            "  {:<38} {:>10.0} {:>10.0}",
            format!("AccessTokens::issue ({algorithm})"),
            median(&samples[1]),
            best(&samples[1])
        );
    }

    if full && ratio > BUDGET {
        eprintln!("token_verify: ratio {ratio:.3} is over the {BUDGET} budget");
        std::process::exit(1);
    }
}
