//! Warden's own directory at the root, `.warden/`: made with a `.gitignore` that keeps all of
//! it out of version control (the ledger and the bytecode cache are Warden's, not the
//! project's).

use warden_rootfs::{Dir, Open};

/// The directory's name at the root.
pub const NAME: &str = crate::fingerprint::WARDEN_DIR;

/// What `.warden/.gitignore` holds: everything in the directory is ignored.
pub const GITIGNORE: &str = "*\n";

/// Opens `.warden` in `root` (never through a link), making it (mode 0700) with its
/// `.gitignore` when it is missing.
pub fn ensure(root: &Dir) -> warden_rootfs::Result<Dir> {
    let made = root.create_dir(NAME)?;
    let dir = root.open_dir(NAME)?;
    if made {
        match dir.open_file(".gitignore", Open::CreateNew) {
            Ok(mut file) => {
                if let Err(e) = std::io::Write::write_all(&mut file, GITIGNORE.as_bytes()) {
                    tracing::warn!(error = %e, "could not write .warden/.gitignore");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not write .warden/.gitignore"),
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_with_a_gitignore_and_opened_as_it_is_afterwards() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        ensure(&root).unwrap();
        let ignore = tmp.path().join(".warden/.gitignore");
        assert_eq!(std::fs::read_to_string(&ignore).unwrap(), "*\n");
        // An existing directory is left as the user keeps it.
        std::fs::remove_file(&ignore).unwrap();
        ensure(&root).unwrap();
        assert!(!ignore.exists());
    }

    #[test]
    fn a_link_in_its_place_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join(NAME)).unwrap();
        let refused = ensure(&Dir::open(tmp.path()).unwrap()).unwrap_err();
        assert!(refused.is_wrong_kind(), "{refused}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
