//! A scratch repository with real files and symlinks, for tests of path checks.

// Each test crate uses part of this module; its helpers panic on setup failures like tests do.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use warden_policy::{Decision, Policy, Root, ToolRequest};

/// A temporary directory holding `root/` (the repository) and `outside/` (next to it).
pub struct World {
    _dir: TempDir,
    pub root: Root,
    pub root_path: PathBuf,
    pub outside: PathBuf,
}

impl World {
    /// A repository laid out like the demo project, plus a directory outside it.
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        let root_path = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret.py"), "def test_secret(): pass\n").unwrap();
        let world = World {
            root: {
                fs::create_dir_all(&root_path).unwrap();
                Root::new(&root_path).unwrap()
            },
            _dir: dir,
            root_path,
            outside,
        };
        world.file("runtime/tests/test_a.py");
        world.file("runtime/tests/sub/test_b.py");
        world.file("runtime/testsX/test_x.py");
        world.file("runtime/conftest.py");
        world.file("src/calc.py");
        world.file("docs/00_foundations/charter.md");
        world.file("docs/01_governance/rules.md");
        world
    }

    /// Creates a file (and its parents) under the root.
    pub fn file(&self, rel: &str) {
        let path = self.root_path.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "def test_x(): pass\n").unwrap();
    }

    /// Creates a directory under the root.
    pub fn dir(&self, rel: &str) {
        fs::create_dir_all(self.root_path.join(rel)).unwrap();
    }

    /// Creates a symlink at `rel` under the root pointing to `to` (as written; `{outside}` is
    /// replaced by the absolute path of the outside directory).
    pub fn link(&self, rel: &str, to: &str) {
        let path = self.root_path.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let to = to.replace("{outside}", &self.outside.display().to_string());
        // Replace whatever is there, so a case can turn a directory of the layout into a link.
        if let Ok(meta) = fs::symlink_metadata(&path) {
            if meta.is_dir() {
                fs::remove_dir_all(&path).unwrap();
            } else {
                fs::remove_file(&path).unwrap();
            }
        }
        symlink(to, path).unwrap();
    }

    pub fn decide(&self, request: &ToolRequest) -> Decision {
        Policy::builtin().decide(&self.root, request)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root_path.join(rel)
    }
}

/// Where `path` (absolute, without `.` or `..` components) really points: canonicalises the
/// longest existing prefix and appends the rest; a dangling symlink counts as where it points.
/// An oracle built on `std::fs::canonicalize` alone; `None` for a symlink loop.
pub fn real_location(path: &Path) -> Option<PathBuf> {
    real_location_within(path, 0)
}

fn real_location_within(path: &Path, depth: usize) -> Option<PathBuf> {
    if depth > 40 {
        return None;
    }
    let mut missing = Vec::new();
    let mut current = path.to_path_buf();
    loop {
        let found = match fs::canonicalize(&current) {
            Ok(real) => Some(real),
            Err(_) => match fs::read_link(&current) {
                // A dangling link (or a loop): follow it by hand.
                Ok(to) => Some(real_location_within(
                    &current.parent()?.join(to),
                    depth + 1,
                )?),
                Err(_) => None,
            },
        };
        if let Some(mut out) = found {
            for part in missing.iter().rev() {
                if part == ".." {
                    out.pop();
                } else {
                    out.push(part);
                }
            }
            return Some(out);
        }
        missing.push(current.file_name()?.to_os_string());
        if !current.pop() {
            return None;
        }
    }
}

/// The path part of a normalised pytest target (before any `::` or `[`).
pub fn path_part(target: &str) -> &str {
    let base = target.split('[').next().unwrap();
    base.split("::").next().unwrap()
}

/// Every symlink reachable beneath `dir`, following linked directories, by an independent walk
/// built on `std::fs::canonicalize`.
pub fn links_beneath(dir: &Path) -> Vec<(PathBuf, Option<PathBuf>)> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![fs::canonicalize(dir).unwrap()];
    while let Some(d) = stack.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let ft = entry.file_type().unwrap();
            if ft.is_symlink() {
                let real = fs::canonicalize(entry.path()).ok();
                if let Some(r) = real.as_ref().filter(|r| r.is_dir()) {
                    stack.push(r.clone());
                }
                out.push((entry.path(), real));
            } else if ft.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out
}
