//! Where `warden verify` may write its ledger: inside the root, and nowhere else.
//!
//! The contract says nothing outside the root is ever written. A ledger path (the default
//! `.warden/ledger.jsonl` as much as a `--ledger FILE`, which is relative to the root) is
//! therefore resolved the way the policy resolves targets: the part that exists is
//! canonicalised (symlinks and `..` resolved by the file system), the part that does not exist
//! yet must be plain names, and the result must lie under the canonical root, compared
//! component by component. A ledger file that exists must be a regular file, reached through
//! no link that leaves the root. Files under the root belong to the agent, so a link planted
//! after this check could still redirect the write; the check narrows that window to the
//! final path component, which is the resolved file itself.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Resolves `requested` (relative to `root`, or absolute) to the file a ledger may be written
/// at, or says why it may not.
pub(crate) fn ledger_inside(root: &Path, requested: &Path) -> Result<PathBuf, String> {
    let joined = root.join(requested);
    let Some(Component::Normal(name)) = joined.components().next_back() else {
        return Err("it does not name a file".to_owned());
    };
    if requested.as_os_str().is_empty() || requested.to_string_lossy().ends_with('/') {
        return Err("it does not name a file".to_owned());
    }
    // Walk up to the deepest directory that exists; what lies below it must be plain names.
    let mut missing = vec![name.to_owned()];
    let mut existing = joined
        .parent()
        .ok_or_else(|| "it does not name a file".to_owned())?;
    loop {
        match existing.symlink_metadata() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot inspect {}: {e}", existing.display())),
        }
        match existing.components().next_back() {
            Some(Component::Normal(part)) => missing.push(part.to_owned()),
            _ => {
                return Err(format!(
                    "{} does not exist, so a `..` or `.` after it cannot be resolved",
                    existing.display()
                ));
            }
        }
        existing = existing
            .parent()
            .ok_or_else(|| "no part of it exists".to_owned())?;
    }
    let base = existing
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", existing.display()))?;
    let mut resolved = base;
    for part in missing.iter().rev() {
        resolved.push(part);
    }
    let root = root
        .canonicalize()
        .map_err(|e| format!("cannot resolve the root {}: {e}", root.display()))?;
    let outside = |path: &Path| {
        format!(
            "it resolves to {}, outside the root {}; a ledger must be written inside the root",
            path.display(),
            root.display()
        )
    };
    if !resolved.starts_with(&root) {
        return Err(outside(&resolved));
    }
    // An existing file (or link) at the end: follow it, and it must stay inside and be a file.
    match resolved.symlink_metadata() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(resolved),
        Err(e) => Err(format!("cannot inspect {}: {e}", resolved.display())),
        Ok(meta) => {
            let target = if meta.file_type().is_symlink() {
                resolved.canonicalize().map_err(|e| {
                    format!(
                        "{} is a link that cannot be followed: {e}",
                        resolved.display()
                    )
                })?
            } else {
                resolved
            };
            if !target.starts_with(&root) {
                return Err(outside(&target));
            }
            if !target.metadata().is_ok_and(|m| m.is_file()) {
                return Err(format!("{} is not a regular file", target.display()));
            }
            Ok(target)
        }
    }
}

#[cfg(test)]
mod tests {
    // Test setup failing is a test failure.
    #![allow(clippy::unwrap_used)]

    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        (dir, root, outside)
    }

    #[test]
    fn paths_inside_the_root_resolve() {
        let (_dir, root, _) = setup();
        let ok = |p: &str| ledger_inside(&root, Path::new(p)).unwrap();
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
        symlink("existing.jsonl", root.join("sub/link.jsonl")).unwrap();
        assert_eq!(ok("sub/link.jsonl"), root.join("sub/existing.jsonl"));
    }

    #[test]
    fn paths_that_leave_the_root_are_refused() {
        let (_dir, root, outside) = setup();
        symlink(&outside, root.join("escape")).unwrap();
        symlink(outside.join("ledger.jsonl"), root.join("dangling.jsonl")).unwrap();
        fs::write(outside.join("real.jsonl"), "").unwrap();
        symlink(outside.join("real.jsonl"), root.join("out.jsonl")).unwrap();
        let rootx = root.with_file_name("rootX");
        fs::create_dir_all(&rootx).unwrap();
        let cases = [
            "../outside/l.jsonl",
            "../root/../outside/l.jsonl",
            "escape/l.jsonl",
            "escape/new/l.jsonl",
            "dangling.jsonl",
            "out.jsonl",
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
                ledger_inside(&root, Path::new(case)).is_err(),
                "{case:?} was accepted"
            );
        }
        let message = ledger_inside(&root, Path::new("escape/l.jsonl")).unwrap_err();
        assert!(message.contains("outside the root"), "{message}");
    }
}
