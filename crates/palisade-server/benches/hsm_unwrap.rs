//! What wrapping and unwrapping a data key costs through a real SoftHSM2 token (`CKM_AES_GCM` with
//! the key id as AAD, one logged-in session, each call on `spawn_blocking`), beside the same
//! operation with the master key in memory (`LocalKeyProvider`):
//! - `hsm_unwrap` / `hsm_wrap`: `Pkcs11KeyProvider::unwrap` / `wrap` of one 32-byte data key;
//! - `local_unwrap`: `LocalKeyProvider::unwrap`, for scale.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the library is initialised. Without it, this bench makes a
//! token in a temporary directory with `softhsm2-util` and runs itself again with the variable set
//! on the child (the code forbids `unsafe`, so it never sets the variable in its own process).
//! With no softhsm2 installed it says so and exits.
//!
//! Run: `cargo bench -p palisade-server --bench hsm_unwrap`

// A benchmark whose setup fails has nobody to report to but the terminal: aborting is the answer.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use divan::Bencher;
use palisade_core::crypto::{DataKeyMaterial, KeyProvider, LocalKeyProvider, MasterKey};
use palisade_server::hsm::{HsmSettings, MASTER_KEY_LABEL, Pkcs11KeyProvider};
use secrecy::SecretString;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4711-bench-pin";

fn main() {
    if std::env::var_os("SOFTHSM2_CONF").is_none() {
        if !Path::new(MODULE).exists() {
            eprintln!("hsm_unwrap: softhsm2 is not installed ({MODULE}); apt-get install -y softhsm2");
            return;
        }
        let dir = std::env::temp_dir().join(format!("palisade-hsm-bench-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        let status = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", "palisade", "--so-pin", "12345678", "--pin", PIN])
            .env("SOFTHSM2_CONF", &conf)
            .status()
            .unwrap();
        assert!(status.success(), "softhsm2-util --init-token failed");
        let status = Command::new(std::env::current_exe().unwrap())
            .args(std::env::args_os().skip(1))
            .env("SOFTHSM2_CONF", &conf)
            .env("PALISADE_BENCH_HSM_PIN", PIN)
            .status()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        std::process::exit(status.code().unwrap_or(1));
    }
    divan::main();
}

fn settings() -> HsmSettings {
    HsmSettings {
        module: PathBuf::from(std::env::var("PALISADE_BENCH_HSM_MODULE").unwrap_or_else(|_| MODULE.to_owned())),
        slot: None,
        pin: SecretString::from(std::env::var("PALISADE_BENCH_HSM_PIN").unwrap_or_else(|_| PIN.to_owned())),
        key_label: MASTER_KEY_LABEL.to_owned(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

#[divan::bench]
fn hsm_unwrap(bencher: Bencher) {
    let rt = runtime();
    let (provider, _) = rt.block_on(Pkcs11KeyProvider::init(settings())).unwrap();
    let id = uuid::Uuid::new_v4();
    let wrapped = rt.block_on(provider.wrap(id, &DataKeyMaterial::generate().unwrap())).unwrap();
    bencher.bench_local(|| rt.block_on(provider.unwrap(id, &wrapped)).unwrap());
}

#[divan::bench]
fn hsm_wrap(bencher: Bencher) {
    let rt = runtime();
    let (provider, _) = rt.block_on(Pkcs11KeyProvider::init(settings())).unwrap();
    let id = uuid::Uuid::new_v4();
    let material = DataKeyMaterial::generate().unwrap();
    bencher.bench_local(|| rt.block_on(provider.wrap(id, &material)).unwrap());
}

#[divan::bench]
fn local_unwrap(bencher: Bencher) {
    let rt = runtime();
    let provider = LocalKeyProvider::new(&MasterKey::generate().unwrap()).unwrap();
    let id = uuid::Uuid::new_v4();
    let wrapped = rt.block_on(provider.wrap(id, &DataKeyMaterial::generate().unwrap())).unwrap();
    bencher.bench_local(|| rt.block_on(provider.unwrap(id, &wrapped)).unwrap());
}
