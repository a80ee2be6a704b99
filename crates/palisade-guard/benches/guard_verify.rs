//! The guard's cost per request beside a bare Ed25519 verify (aws-lc-rs) of the same token.
//!
//! `cargo bench -p palisade-guard --bench guard_verify` — serves a one-key JWK Set on loopback for the
//! guard to fetch, then times `Guard::verify` and a bare signature check, and prints the ratio.

// A benchmark: panicking on a broken setup is the right failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::disallowed_methods)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&public), "kid": "k1", "alg": "EdDSA", "use": "sig"}]});
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"at+jwt","alg":"EdDSA","kid":"k1"}"#);
    let claims = serde_json::json!({"iss": "https://id.example", "aud": "palisade", "sub": "01a2", "sid": "s", "jti": "j", "scope": "user", "iat": now, "nbf": now, "exp": now + 900});
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let input = format!("{header}.{payload}");
    let signature = pair.sign(input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));

    let guard = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/.well-known/jwks.json", axum::routing::get(move || async move { axum::Json(jwks) }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        palisade_guard::Guard::new(&base, "https://id.example", "palisade").await.unwrap()
    });
    assert!(runtime.block_on(guard.verify(&token)).is_ok(), "the token verifies");

    let rounds = 20_000;
    let time = |f: &mut dyn FnMut()| {
        for _ in 0..1_000 {
            f();
        }
        let started = Instant::now();
        for _ in 0..rounds {
            f();
        }
        started.elapsed() / rounds
    };
    let verifier = UnparsedPublicKey::new(&ED25519, public.clone());
    let bare: Duration = time(&mut || verifier.verify(input.as_bytes(), signature.as_ref()).unwrap());
    let guarded: Duration = time(&mut || {
        runtime.block_on(guard.verify(&token)).unwrap();
    });
    println!("bare Ed25519 verify: {} ns/op", bare.as_nanos());
    println!("Guard::verify:       {} ns/op", guarded.as_nanos());
    println!("ratio:               {:.2}", guarded.as_secs_f64() / bare.as_secs_f64());
}
