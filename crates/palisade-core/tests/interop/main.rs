#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! The independent checks. `totp`: TOTP codes and the otpauth URI against pyotp. Here: access tokens
//! Palisade issues, verified by PyJWT (a JWT implementation
//! we did not write) from the published JWK Set alone — signature, `iss`, `aud`, `exp` — and refused
//! by it when tampered with.
//!
//! Needs `python3` with `pyjwt` and `cryptography` (`pip install pyjwt cryptography`). Without them
//! the test is skipped with a message, except under `CI=true`, where it fails.

mod memory;
mod totp;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use palisade_core::clock::{Clock, ManualClock, SystemClock};
use palisade_core::token::SessionId;
use palisade_core::token::access::{AccessTokenSettings, AccessTokens};
use palisade_core::token::keys::SigningAlgorithm;
use palisade_core::user::UserId;
use serde_json::json;

const ISSUER: &str = "http://127.0.0.1:8080";
const AUDIENCE: &str = "http://127.0.0.1:8080";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/verify_pyjwt.py");

/// Whether PyJWT can run here; panics under CI when it cannot.
fn pyjwt_available() -> bool {
    let ok =
        Command::new("python3").args(["-c", "import jwt, cryptography"]).output().is_ok_and(|out| out.status.success());
    if !ok {
        let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        assert!(!ci, "CI=true but `python3 -c 'import jwt, cryptography'` fails: pip install pyjwt cryptography");
        // Straight to stderr, past the test harness's capture, so the skip shows in a normal run.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED pyjwt interop: python3 with pyjwt and cryptography is not available (pip install pyjwt cryptography)"
        );
    }
    ok
}

fn settings() -> AccessTokenSettings {
    AccessTokenSettings::new(ISSUER, AUDIENCE)
}

fn write_json(dir: &Path, name: &str, value: &impl serde::Serialize) {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

#[tokio::test]
async fn pyjwt_verifies_our_tokens_from_the_jwks_alone() {
    if !pyjwt_available() {
        return;
    }
    // PyJWT checks `exp` against the real time, so these tokens are timed by the system clock.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(memory::MemoryStore::default());
    let keyring = memory::keyring(&store, &clock);

    // One store holding a key of each algorithm, so the JWK Set has several keys to pick from by kid.
    let algorithms = [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256, SigningAlgorithm::RS256];
    let mut cases = Vec::new();
    let mut jwks = None;
    for algorithm in algorithms {
        let keys = Arc::new(memory::signing_keys(&store, &keyring, &clock, algorithm).await.unwrap());
        let (subject, session) = (UserId::generate().to_string(), SessionId::generate());
        let scopes = ["user".to_owned(), "profile:read".to_owned()];

        let issued =
            AccessTokens::new(keys.clone(), clock.clone(), settings()).issue(&subject, session, &scopes).unwrap();
        cases.push(json!({
            "name": format!("{algorithm}-valid"), "expect": "valid", "token": issued.token,
            "sub": subject, "jti": issued.jti.to_string(), "sid": session.to_string(), "scope": "user profile:read",
        }));

        // Issued two hours ago: long past `exp` (15 minutes) and any leeway.
        let past: Arc<dyn Clock> = Arc::new(ManualClock::new(clock.now() - time::Duration::hours(2)));
        let expired = AccessTokens::new(keys.clone(), past, settings()).issue(&subject, session, &scopes).unwrap();
        cases.push(json!({
            "name": format!("{algorithm}-expired"), "expect": "expired", "token": expired.token,
            "sub": subject, "jti": expired.jti.to_string(), "sid": session.to_string(), "scope": "user profile:read",
        }));
        jwks = Some(keys.jwks());
    }
    let jwks = jwks.unwrap();
    assert_eq!(jwks.keys.len(), algorithms.len(), "the last instance publishes every stored key");

    let dir = tempfile::tempdir().unwrap();
    write_json(dir.path(), "jwks.json", &jwks);
    write_json(dir.path(), "expect.json", &json!({ "issuer": ISSUER, "audience": AUDIENCE }));
    write_json(dir.path(), "cases.json", &cases);

    let output = Command::new("python3").arg(SCRIPT).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "PyJWT refused our tokens (exit {:?}):\n{stdout}\n{stderr}", output.status.code());

    let verdicts: Vec<&str> = stdout.lines().collect();
    let mut expected = vec!["PASS jwks:".to_owned()];
    for algorithm in algorithms {
        for suffix in ["valid", "valid-tampered", "valid-wrong-audience", "valid-wrong-issuer", "expired"] {
            expected.push(format!("PASS {algorithm}-{suffix}:"));
        }
    }
    for verdict in &expected {
        assert!(verdicts.iter().any(|line| line.starts_with(verdict.as_str())), "no verdict {verdict:?} in:\n{stdout}");
    }
    assert!(!verdicts.iter().any(|line| line.starts_with("FAIL")), "{stdout}");
    assert_eq!(verdicts.iter().filter(|line| line.starts_with("PASS")).count(), expected.len(), "{stdout}");
    assert!(stdout.contains("OK: 0 failure(s)"), "{stdout}");
    // The verdict names the algorithm PyJWT verified with, which must be the token's.
    for algorithm in algorithms {
        assert!(
            verdicts
                .iter()
                .any(|l| l.starts_with(&format!("PASS {algorithm}-valid:"))
                    && l.contains(&format!("{algorithm} signature"))),
            "{stdout}"
        );
    }
}
