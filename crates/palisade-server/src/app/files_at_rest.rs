//! Start-up checks of the files Palisade keeps at rest in its data directory.
//!
//! The files themselves are guarded where they are opened: the development key file by
//! `palisade_core::crypto::MasterKey::load_or_create_dev_file` (refused when open to group or
//! others), the SQLite files by `palisade_store` (made 0600, tightened when open). This module only
//! looks at the data directory, which either of them may have made (0700). Unix only.

use std::path::Path;

/// The warning to log when the data directory exists and the group or others may enter or list it;
/// `None` when it is private, missing (whoever needs it makes it private) or not on Unix.
#[cfg(unix)]
pub(super) fn data_dir_warning(dir: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(dir) {
        Ok(metadata) => metadata.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("cannot read the permissions of the data directory {}: {e}", dir.display())),
    };
    (mode & 0o077 != 0).then(|| {
        format!(
            "the data directory {dir} is open to group or others (mode {mode:04o}); it holds the SQLite \
             database and the development key file by default: run `chmod 700 {dir}`",
            dir = dir.display()
        )
    })
}

#[cfg(not(unix))]
pub(super) fn data_dir_warning(_dir: &Path) -> Option<String> {
    None
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_data_directory_open_to_group_or_others_is_warned_about_with_the_fix() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("palisade-data");
        std::fs::create_dir(&dir).unwrap();
        for mode in [0o755, 0o750, 0o711, 0o701, 0o770] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            let warning = data_dir_warning(&dir).unwrap();
            assert!(warning.contains(&format!("chmod 700 {}", dir.display())), "{warning}");
            assert!(warning.contains(&format!("mode {mode:04o}")), "{warning}");
        }
        for mode in [0o700, 0o500] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(data_dir_warning(&dir), None, "{mode:o}");
        }
    }

    #[test]
    fn a_missing_data_directory_is_not_warned_about() {
        let temp = tempfile::tempdir().unwrap();
        assert_eq!(data_dir_warning(&temp.path().join("not-yet")), None);
    }
}
