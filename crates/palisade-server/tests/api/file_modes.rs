//! Files at rest (Unix): a fresh data directory is made private (0700) with private files in it
//! (0600), a development key file open to others stops start-up, and an open database is tightened.
#![cfg(unix)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use palisade_server::Application;
use palisade_server::config::{Config, Sources};

/// A configuration over `data_dir` with the defaults for the rest: the database in the data
/// directory and, without PALISADE_MASTER_KEY, the development key file beside it.
fn config_without_master_key(data_dir: &Path) -> Config {
    let env: HashMap<String, String> = HashMap::from([
        ("PALISADE_BIND".into(), "127.0.0.1:0".into()),
        ("PALISADE_DATA_DIR".into(), data_dir.display().to_string()),
    ]);
    Config::load_from(Sources { env, ..Sources::default() }).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Asserts the mode of `path`, shown in octal when it differs.
fn assert_mode(path: &Path, expected: u32) {
    let mode = mode_of(path);
    assert_eq!(mode, expected, "{}: mode {mode:04o}, expected {expected:04o}", path.display());
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The database file and whichever of its `-wal` and `-shm` files exist.
fn database_files(data_dir: &Path) -> Vec<PathBuf> {
    ["palisade.db", "palisade.db-wal", "palisade.db-shm"]
        .iter()
        .map(|name| data_dir.join(name))
        .filter(|path| path.exists())
        .collect()
}

#[tokio::test]
async fn a_fresh_start_makes_a_private_data_directory_database_and_key_file() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("palisade-data");
    let app = Application::build(config_without_master_key(&data_dir)).await.unwrap();

    assert_mode(&data_dir, 0o700);
    assert_mode(&data_dir.join("master.key"), 0o600);
    let files = database_files(&data_dir);
    assert!(files.contains(&data_dir.join("palisade.db")), "{files:?}");
    // While the app holds the database open in WAL mode, SQLite's -wal and -shm files exist too.
    for file in &files {
        assert_mode(file, 0o600);
    }
    drop(app);
}

#[tokio::test]
async fn migrate_makes_the_same_private_directory_and_database() {
    // `palisade migrate` opens the database without the rest of the app.
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("palisade-data");
    palisade_store::migrate(&format!("sqlite://{}/palisade.db", data_dir.display())).await.unwrap();
    assert_mode(&data_dir, 0o700);
    for file in database_files(&data_dir) {
        assert_mode(&file, 0o600);
    }
}

#[tokio::test]
async fn a_key_file_open_to_others_stops_start_naming_the_file_and_the_fix() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("palisade-data");
    std::fs::create_dir(&data_dir).unwrap();
    set_mode(&data_dir, 0o700);
    let key_file = data_dir.join("master.key");
    std::fs::write(&key_file, "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=\n").unwrap();
    set_mode(&key_file, 0o644);

    let Err(e) = Application::build(config_without_master_key(&data_dir)).await else {
        panic!("a 0644 key file must stop start-up");
    };
    let message = format!("{e:#}");
    assert!(message.contains(&format!("development key file {}", key_file.display())), "{message}");
    assert!(message.contains(&format!("`chmod 600 {}`", key_file.display())), "{message}");
    assert!(!message.contains("KioqKioq"), "the key must never be shown: {message}");
    // Nothing was opened: the database was not made, and the key file is as it was.
    assert!(!data_dir.join("palisade.db").exists());
    assert_mode(&key_file, 0o644);

    // Once fixed as the message says, start-up goes on.
    set_mode(&key_file, 0o600);
    Application::build(config_without_master_key(&data_dir)).await.unwrap();
}

#[tokio::test]
async fn an_existing_database_open_to_others_is_tightened_at_start() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("palisade-data");
    let first = Application::build(config_without_master_key(&data_dir)).await.unwrap();
    let fingerprint = first.palisade().keyring().provider_id();
    drop(first);
    // As an older Palisade, a restored backup or a careless copy would leave them. (The first
    // app's pool closes in the background, and its last connection removes -wal and -shm: a file
    // gone meanwhile is skipped.)
    for file in database_files(&data_dir) {
        if let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)) {
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{}: {e}", file.display());
        }
    }
    assert_mode(&data_dir.join("palisade.db"), 0o644);

    let again = Application::build(config_without_master_key(&data_dir)).await.unwrap();
    assert_mode(&data_dir.join("palisade.db"), 0o600);
    for file in database_files(&data_dir) {
        assert_mode(&file, 0o600);
    }
    // The same key file, not a new one.
    assert_eq!(again.palisade().keyring().provider_id(), fingerprint);
}
