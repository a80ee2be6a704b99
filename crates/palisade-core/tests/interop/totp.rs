//! The independent check of TOTP: pyotp, an implementation we did not write, parses the
//! `otpauth://` URI a setup answers, computes codes that Palisade accepts, and accepts the codes
//! Palisade computes — at many instants, including step boundaries.
//!
//! Needs `python3` with `pyotp` (`pip install pyotp`). Without it the test is skipped with a message,
//! except under `CI=true`, where it fails.

use std::io::Write as _;
use std::process::Command;

use palisade_core::mfa::totp::{STEP_SECS, TotpSecret, step_of};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/totp_pyotp.py");

fn pyotp_available() -> bool {
    let ok = Command::new("python3").args(["-c", "import pyotp"]).output().is_ok_and(|out| out.status.success());
    if !ok {
        let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        assert!(!ci, "CI=true but `python3 -c 'import pyotp'` fails: pip install pyotp");
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED pyotp interop: python3 with pyotp is not available (pip install pyotp)"
        );
    }
    ok
}

#[test]
fn pyotp_and_palisade_agree_on_codes_and_the_uri() {
    if !pyotp_available() {
        return;
    }
    let secret = TotpSecret::generate().unwrap();
    let uri = secret.otpauth_uri("Palisade", "alice@example.com").unwrap();
    // Instants around step boundaries, from 1970 to 2100.
    let mut times: Vec<u64> =
        vec![0, 29, 30, 59, 1_111_111_109, 1_234_567_890, 1_767_225_599, 1_767_225_600, 4_102_444_800];
    times.extend((0..40).map(|i| 1_800_000_000 + i * 37));
    let ours: Vec<Value> = times.iter().map(|t| json!({"time": t, "code": secret.code_at(*t).unwrap()})).collect();

    let dir = tempfile::tempdir().unwrap();
    let (request, answer) = (dir.path().join("request.json"), dir.path().join("answer.json"));
    std::fs::write(&request, serde_json::to_vec(&json!({"uri": uri.as_str(), "times": times, "ours": ours})).unwrap())
        .unwrap();
    let out = Command::new("python3").arg(SCRIPT).arg(&request).arg(&answer).output().unwrap();
    assert!(out.status.success(), "pyotp script failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&std::fs::read(&answer).unwrap()).unwrap();

    // pyotp read the URI as Google Authenticator would.
    assert_eq!(answer["secret"], secret.to_base32().as_str());
    assert_eq!(answer["issuer"], "Palisade");
    assert_eq!(answer["name"], "alice@example.com");
    assert_eq!((answer["digits"].as_u64(), answer["interval"].as_u64()), (Some(6), Some(STEP_SECS)));
    assert_eq!(answer["digest"], "sha1");

    // Codes pyotp computes are accepted by Palisade, for exactly their step.
    for entry in answer["codes"].as_array().unwrap() {
        let time = entry["time"].as_u64().unwrap();
        let code = entry["code"].as_str().unwrap();
        assert_eq!(code, secret.code_at(time).unwrap(), "pyotp and Palisade disagree at {time}");
        assert_eq!(secret.matching_step(code, time).unwrap(), Some(step_of(time)), "at {time}");
    }
    // Codes Palisade computes are accepted by pyotp (and refused three steps later).
    let verified: Vec<bool> = serde_json::from_value(answer["verified"].clone()).unwrap();
    assert_eq!(verified.len(), times.len());
    assert!(verified.iter().all(|v| *v), "pyotp refused some of our codes: {verified:?}");
    let refused: Vec<bool> = serde_json::from_value(answer["refused"].clone()).unwrap();
    assert!(refused.iter().filter(|v| **v).count() <= 1, "pyotp accepted stale codes: {refused:?}");
}
