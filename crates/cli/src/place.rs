//! Where `warden verify` may write its ledger: inside the root, and nowhere else.
//!
//! The contract says nothing outside the root is ever written. A ledger path (the default
//! `.warden/ledger.jsonl` as much as a `--ledger FILE`, which is relative to the root) is
//! therefore turned into plain names beneath the root: `.` dropped, `..` taken back a name
//! (and refused if it would leave the root), an absolute path accepted only under the root.
//! What exists of it is then looked at from a handle on the root without following links:
//! each directory on the way must be a directory and the file, if there, a regular file. A
//! link anywhere is refused rather than followed, because the root belongs to the agent: the
//! ledger is then written beneath the same held handle ([`Ledger::beneath`]), so a link
//! planted after this check is refused at the write as well, never written through.

use std::path::{Component, Path, PathBuf};

use warden_build_mission::Ledger;
use warden_rootfs::{Dir, Kind};

/// The ledger `requested` names (relative to `root`, or absolute under `root_path`), beneath
/// the held `root`, or why it may not be written there.
pub(crate) fn ledger_inside(root: &Dir, requested: &Path) -> Result<Ledger, String> {
    let rel = plain_inside(root.path(), requested)?;
    let mut at = PathBuf::new();
    let mut parts = rel.components().peekable();
    while let Some(part) = parts.next() {
        at.push(part);
        let last = parts.peek().is_none();
        let expected = if last { Kind::File } else { Kind::Dir };
        match root.status_of(&at) {
            Ok(status) if status.kind == expected => {}
            Ok(status) => {
                return Err(format!(
                    "{} is a {}, not a {expected}; Warden does not follow links under the root: \
                     name the real file",
                    root.path().join(&at).display(),
                    status.kind
                ));
            }
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(Ledger::beneath(root.clone(), rel))
}

/// `requested` as plain names beneath `root`, without touching the file system.
fn plain_inside(root: &Path, requested: &Path) -> Result<PathBuf, String> {
    if requested.as_os_str().is_empty() || requested.to_string_lossy().ends_with('/') {
        return Err("it does not name a file".to_owned());
    }
    let outside = || {
        format!(
            "it lies outside the root {}; a ledger must be written inside the root",
            root.display()
        )
    };
    let relative = if requested.is_absolute() {
        requested.strip_prefix(root).map_err(|_| outside())?
    } else {
        requested
    };
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or_else(outside)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    if !matches!(
        requested.components().next_back(),
        Some(Component::Normal(_))
    ) || parts.is_empty()
    {
        return Err("it does not name a file".to_owned());
    }
    Ok(parts.iter().collect())
}

#[cfg(test)]
mod tests {
    // Test setup failing is a test failure.
    #![allow(clippy::unwrap_used)]

    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    fn setup() -> (tempfile::TempDir, Dir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        (dir, Dir::open(&root).unwrap(), root, outside)
    }

    #[test]
    fn paths_inside_the_root_resolve() {
        let (_dir, held, root, _) = setup();
        let ok = |p: &str| {
            ledger_inside(&held, Path::new(p))
                .unwrap()
                .path()
                .to_owned()
        };
        assert_eq!(
            ok(".warden/ledger.jsonl"),
            root.join(".warden/ledger.jsonl")
        );
        assert_eq!(ok("./sub//l.jsonl"), root.join("sub/l.jsonl"));
        assert_eq!(ok("sub/../l.jsonl"), root.join("l.jsonl"));
        assert_eq!(ok("new/deeper/l.jsonl"), root.join("new/deeper/l.jsonl"));
        let absolute = root.join("sub/abs.jsonl");
        assert_eq!(ok(absolute.to_str().unwrap()), absolute);
        fs::write(root.join("sub/existing.jsonl"), "").unwrap();
        assert_eq!(ok("sub/existing.jsonl"), root.join("sub/existing.jsonl"));
    }

    #[test]
    fn paths_that_leave_the_root_or_pass_a_link_are_refused() {
        let (_dir, held, root, outside) = setup();
        symlink(&outside, root.join("escape")).unwrap();
        symlink(outside.join("ledger.jsonl"), root.join("dangling.jsonl")).unwrap();
        fs::write(outside.join("real.jsonl"), "").unwrap();
        symlink(outside.join("real.jsonl"), root.join("out.jsonl")).unwrap();
        fs::write(root.join("sub/existing.jsonl"), "").unwrap();
        symlink("existing.jsonl", root.join("sub/link.jsonl")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(root.join("sub/pipe.jsonl"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let rootx = root.with_file_name("rootX");
        fs::create_dir_all(&rootx).unwrap();
        let cases = [
            "../outside/l.jsonl",
            "../root/../outside/l.jsonl",
            "escape/l.jsonl",
            "escape/new/l.jsonl",
            "dangling.jsonl",
            "out.jsonl",
            "sub/link.jsonl",
            "sub/pipe.jsonl",
            "missing/../../outside/l.jsonl",
            "/tmp/l.jsonl",
            "../rootX/l.jsonl",
            "sub",
            "sub/",
            "",
            "..",
            ".",
        ];
        for case in cases {
            assert!(
                ledger_inside(&held, Path::new(case)).is_err(),
                "{case:?} was accepted"
            );
        }
        let message = ledger_inside(&held, Path::new("escape/l.jsonl")).unwrap_err();
        assert!(message.contains("symbolic link"), "{message}");
        let message = ledger_inside(&held, Path::new("../outside/l.jsonl")).unwrap_err();
        assert!(message.contains("outside the root"), "{message}");
        let message = ledger_inside(&held, Path::new("sub/pipe.jsonl")).unwrap_err();
        assert!(message.contains("FIFO"), "{message}");
    }
}
