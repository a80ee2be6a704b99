//! The SQLite database's files at rest: the directory Palisade makes for the database is private
//! (0700), the database file is made private (0600) before SQLite opens it, and an existing database
//! file (or a `-wal`/`-shm` file left beside it) that the group or others may open is tightened, with
//! a warning naming it.
//!
//! SQLite gives the `-wal` and `-shm` files it creates the database file's permission bits, so a
//! private database file keeps them private too. Unix only: elsewhere these are no-ops.
//!
//! The calls are plain `std::fs`: a few system calls once, when the pool is opened.

use std::path::Path;

use palisade_core::store::StoreError;

/// Makes `dir` (and any missing parent) if it is missing: mode 0700 on Unix. An existing directory
/// keeps its mode.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| StoreError::Unavailable(format!("cannot create the database directory {}: {e}", dir.display())))
}

/// Makes the database file at `path` empty with mode 0600 if it is missing (SQLite reads an empty
/// file as an empty database), and tightens an existing one and its `-wal`/`-shm` files.
#[cfg(unix)]
pub(crate) fn secure_database_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let made = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    match made {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(StoreError::Unavailable(format!("cannot create the database file {}: {e}", path.display())));
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        tighten(Path::new(&name));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn secure_database_file(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Removes the group's and others' permission bits from `path` if it exists and has any, with a
/// warning. A file that cannot be tightened (another account owns it) is only warned about: it is
/// no more open than it was before this check, and refusing to start over it would stop a
/// deployment that shares the file with a group on purpose.
#[cfg(unix)]
fn tighten(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(path) {
        Ok(metadata) => metadata.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!("cannot read the permissions of the database file {}: {e}", path.display());
            return;
        }
    };
    if mode & 0o077 == 0 {
        return;
    }
    let private = mode & 0o700;
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(private)) {
        Ok(()) => tracing::warn!(
            "the database file {} was open to group or others (mode {mode:04o}); tightened to {private:04o}",
            path.display()
        ),
        Err(e) => tracing::warn!(
            "the database file {} is open to group or others (mode {mode:04o}) and cannot be tightened: {e}; \
             run `chmod 600 {}` as its owner",
            path.display(),
            path.display()
        ),
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_missing_directory_is_made_private_and_an_existing_one_is_left_alone() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("a").join("b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(mode_of(&temp.path().join("a")), 0o700);
        set_mode(&dir, 0o750);
        create_private_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir), 0o750);
    }

    #[test]
    fn a_missing_database_file_is_made_empty_and_private() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("palisade.db");
        secure_database_file(&path).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn open_database_files_are_tightened_and_their_content_kept() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("palisade.db");
        std::fs::write(&path, b"content").unwrap();
        std::fs::write(temp.path().join("palisade.db-wal"), b"wal").unwrap();
        std::fs::write(temp.path().join("palisade.db-shm"), b"shm").unwrap();
        set_mode(&path, 0o644);
        set_mode(&temp.path().join("palisade.db-wal"), 0o666);
        set_mode(&temp.path().join("palisade.db-shm"), 0o640);
        secure_database_file(&path).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&temp.path().join("palisade.db-wal")), 0o600);
        assert_eq!(mode_of(&temp.path().join("palisade.db-shm")), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"content");
    }

    #[test]
    fn owner_only_modes_are_left_as_they_are() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("palisade.db");
        std::fs::write(&path, b"").unwrap();
        set_mode(&path, 0o400);
        secure_database_file(&path).unwrap();
        assert_eq!(mode_of(&path), 0o400);
        // Only the owner's bits are kept: nothing is granted that was not there.
        set_mode(&path, 0o444);
        secure_database_file(&path).unwrap();
        assert_eq!(mode_of(&path), 0o400);
    }

    #[test]
    fn a_database_file_in_a_missing_directory_is_an_error_naming_it() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("missing").join("palisade.db");
        let err = secure_database_file(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
