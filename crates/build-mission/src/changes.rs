//! What changed in the tree during a verification, and whether it was code.
//!
//! A test that writes state into the tree (a counter file, a cache, a database next to it) and
//! passes on the rerun because of it is the classic non-idempotent flake: the code did not
//! change, the state did. When every path that changed between the fingerprint before the first
//! attempt and the one after the last rerun is a regular file that is neither code nor
//! configuration, the reruns ran the same code ([`TreeChange::StateWritten`]); any other change
//! ([`TreeChange::CodeChanged`]) means a rerun's pass was on other code.

use std::ffi::OsStr;
use std::path::Path;

use warden_classifier::TreeChange;

use crate::fingerprint::Manifest;

/// Most changed code files kept for the report (the rest only change the verdict).
const KEPT_CODE_FILES: usize = 10;
/// Most state files kept for the report.
const KEPT_STATE_FILES: usize = 10;

/// Extensions of files Python imports, or that change what it imports.
const CODE_EXTENSIONS: &[&str] = &["py", "pyc", "pyo", "pyd", "pyi", "pyw", "so", "pth"];

/// Files that configure pytest, Python packaging or Warden.
const CONFIG_FILES: &[&str] = &[
    "conftest.py",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "warden.toml",
];

/// Whether a root-relative path is code or configuration: importable Python (sources,
/// bytecode, extension modules, `.pth` files), a conftest, or a pytest, packaging or Warden
/// configuration file.
pub fn is_code_or_config(path: &Path) -> bool {
    let Some(name) = path.file_name() else {
        return true;
    };
    if CONFIG_FILES.iter().any(|c| name == OsStr::new(c)) {
        return true;
    }
    // `module.cpython-311-x86_64-linux-gnu.so` ends in `.so` too.
    path.extension()
        .is_some_and(|ext| CODE_EXTENSIONS.iter().any(|c| ext == OsStr::new(c)))
}

/// How the tree changed from `before` to `after`. Anything that is not a regular file on
/// either side (a link, a directory, a FIFO) counts as code: Warden cannot vouch for it.
pub(crate) fn tree_change(before: &Manifest, after: &Manifest) -> TreeChange {
    let changed = after.changed_since(before);
    if changed.is_empty() {
        return TreeChange::Unchanged;
    }
    let regular = |path: &Path| {
        let present_before = before.contains(path);
        let present_after = after.contains(path);
        (!present_before || before.is_regular_file(path))
            && (!present_after || after.is_regular_file(path))
    };
    let (code, state): (Vec<_>, Vec<_>) = changed
        .iter()
        .partition(|path| is_code_or_config(path) || !regular(path));
    let shown = |paths: Vec<&std::path::PathBuf>, kept: usize| {
        paths
            .into_iter()
            .take(kept)
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    if code.is_empty() {
        TreeChange::StateWritten(shown(state, KEPT_STATE_FILES))
    } else {
        TreeChange::CodeChanged(shown(code, KEPT_CODE_FILES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_configuration_are_told_from_state() {
        for code in [
            "src/app.py",
            "runtime/tests/conftest.py",
            "pkg/mod.cpython-311-x86_64-linux-gnu.so",
            "pkg/mod.pyc",
            "pytest.ini",
            "sub/pyproject.toml",
            "setup.cfg",
            "tox.ini",
            "warden.toml",
            "site.pth",
        ] {
            assert!(is_code_or_config(Path::new(code)), "{code}");
        }
        for state in [
            "runtime/tests/x/.state",
            "runtime/tests/counter.txt",
            "data.db",
            "cache.json",
            "notes.py.bak",
        ] {
            assert!(!is_code_or_config(Path::new(state)), "{state}");
        }
    }
}
