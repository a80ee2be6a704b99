//! What the encryption service costs in process, beside a bare AES-256-GCM call (aws-lc-rs
//! `LessSafeKey::seal_in_place_append_tag` / `open_in_place` with a random nonce, no envelope): the
//! issue's target is at most 1.2× the bare call for 1 KiB.
//!
//! - `encrypt` / `decrypt`: `CryptoService::encrypt` and `decrypt` (scope check, context checks,
//!   the class's cached key, AAD built from the context, seal with a fresh nonce, the envelope) for
//!   64 B, 1 KiB and 1 MiB, INTERNAL data with no owner (not audited), AES-256-GCM (`0`) and
//!   XChaCha20-Poly1305 (`1`); `encrypt_owner_bound`: the same with an owner (a derived key);
//! - `bare_aes_gcm`: the cipher alone, same sizes.
//!
//! The service runs over a SQLite file (the keys are read once, then cached); each iteration is one
//! `block_on` of a current-thread runtime (no I/O happens in it).
//!
//! Run: `cargo bench -p palisade-server --bench crypto_service`

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use divan::Bencher;
use divan::counter::BytesCount;
use palisade_core::Palisade;
use palisade_core::audit::RequestMeta;
use palisade_core::auth::Principal;
use palisade_core::clock::SystemClock;
use palisade_core::crypto::{DataClassification, EncryptionContext, EncryptionPolicies, SealOptions};
use palisade_core::user::UserId;
use palisade_server::config::{Config, Sources};

const SIZES: [usize; 3] = [64, 1024, 1 << 20];

fn main() {
    divan::main();
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    palisade: Arc<Palisade>,
    _dir: tempfile::TempDir,
}

fn fixture(algorithm: &str) -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let config: Config = Config::load_from(Sources::default()).expect("config");
    let mut settings = palisade_server::app::settings(&config).expect("settings");
    settings.encryption = EncryptionPolicies::defaults(false)
        .with_overrides(&[format!("INTERNAL.algorithm={algorithm}")], false)
        .and_then(|p| p.with_max_plaintext(2 << 20))
        .expect("policies");
    let palisade = runtime.block_on(async {
        let url = format!("sqlite://{}/palisade.db", dir.path().display());
        let stores = palisade_store::connect(&url, None, Arc::new(SystemClock), 4).await.expect("stores");
        stores.migrate().await.expect("migrate");
        Palisade::builder()
            .durable_store(stores.durable)
            .hot_store(stores.hot)
            .clock(Arc::new(SystemClock))
            .master_key(palisade_core::crypto::MasterKey::from_bytes([0x2a; 32]))
            .settings(settings)
            .build()
            .await
            .expect("build")
    });
    Fixture { runtime, palisade: Arc::new(palisade), _dir: dir }
}

fn caller() -> Principal {
    Principal {
        user_id: UserId::generate(),
        session_id: None,
        scopes: vec!["crypto:encrypt".into(), "crypto:decrypt".into()],
        jti: None,
        expires_at: None,
        api_key_id: Some(uuid::Uuid::now_v7()),
        amr: Vec::new(),
    }
}

fn context() -> EncryptionContext {
    EncryptionContext {
        data_classification: DataClassification::Internal,
        purpose: "bench".into(),
        user_id: None,
        field: Some("notes".into()),
        compliance: Vec::new(),
    }
}

#[divan::bench(args = SIZES, consts = [0, 1])]
fn encrypt<const XCHACHA: usize>(bencher: Bencher, size: usize) {
    let f = fixture(if XCHACHA == 1 { "XCHACHA20-POLY1305" } else { "AES-256-GCM" });
    let (who, ctx, data) = (caller(), context(), vec![7u8; size]);
    let crypto = f.palisade.crypto();
    f.runtime.block_on(crypto.encrypt(&who, &data, &ctx, SealOptions::default())).expect("warm");
    bencher
        .counter(BytesCount::new(size))
        .bench_local(|| f.runtime.block_on(crypto.encrypt(&who, &data, &ctx, SealOptions::default())));
}

#[divan::bench(args = SIZES, consts = [0, 1])]
fn decrypt<const XCHACHA: usize>(bencher: Bencher, size: usize) {
    let f = fixture(if XCHACHA == 1 { "XCHACHA20-POLY1305" } else { "AES-256-GCM" });
    let (who, ctx, data) = (caller(), context(), vec![7u8; size]);
    let crypto = f.palisade.crypto();
    let sealed = f.runtime.block_on(crypto.encrypt(&who, &data, &ctx, SealOptions::default())).expect("seal");
    let meta = RequestMeta::default();
    assert_eq!(f.runtime.block_on(crypto.decrypt(&who, &sealed, &ctx, &meta)).expect("open").len(), size);
    bencher
        .counter(BytesCount::new(size))
        .bench_local(|| f.runtime.block_on(crypto.decrypt(&who, &sealed, &ctx, &meta)));
}

/// An owner's data (`user_id` set): the data key is derived per call (HKDF-SHA256 over the class
/// key, salted with the owner's key), so the owner's keys can be destroyed (crypto-shredding).
#[divan::bench(args = [1024])]
fn encrypt_owner_bound(bencher: Bencher, size: usize) {
    let f = fixture("AES-256-GCM");
    let (who, data) = (caller(), vec![7u8; size]);
    let ctx = EncryptionContext { user_id: Some("customer-7".into()), ..context() };
    let crypto = f.palisade.crypto();
    f.runtime.block_on(crypto.encrypt(&who, &data, &ctx, SealOptions::default())).expect("warm");
    bencher
        .counter(BytesCount::new(size))
        .bench_local(|| f.runtime.block_on(crypto.encrypt(&who, &data, &ctx, SealOptions::default())));
}

/// What the benches' `block_on` itself costs (a server handler has no such step).
#[divan::bench]
fn block_on_alone(bencher: Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    bencher.bench_local(|| runtime.block_on(async { divan::black_box(1) }));
}

/// The cipher alone: a fresh random nonce, seal in place into a buffer sized like the envelope's.
#[divan::bench(args = SIZES)]
fn bare_aes_gcm_seal(bencher: Bencher, size: usize) {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x2a; 32]).expect("key"));
    let data = vec![7u8; size];
    bencher.counter(BytesCount::new(size)).bench_local(|| {
        let mut nonce = [0u8; 12];
        aws_lc_rs::rand::fill(&mut nonce).expect("random");
        let mut buf = Vec::with_capacity(size + 16);
        buf.extend_from_slice(&data);
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"aad"), &mut buf).expect("seal");
        (nonce, buf)
    });
}

/// The cipher alone: open in place a copy of a sealed buffer.
#[divan::bench(args = SIZES)]
fn bare_aes_gcm_open(bencher: Bencher, size: usize) {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x2a; 32]).expect("key"));
    let mut sealed = vec![7u8; size];
    let nonce = [1u8; 12];
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"aad"), &mut sealed).expect("seal");
    bencher.counter(BytesCount::new(size)).bench_local(|| {
        let mut buf = sealed.clone();
        key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(b"aad"), &mut buf)
            .map(|p| p.len())
            .expect("open")
    });
}
