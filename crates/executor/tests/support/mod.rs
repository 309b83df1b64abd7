//! Shared helpers for the executor's end-to-end tests: fixture projects copied into temporary
//! roots, permissions from a real policy, the interpreter, and the process table.

// Each test binary uses a different subset; and in test helpers a failed step is a failed test.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use warden_executor::PytestRunner;
use warden_governance_api::{Authorized, Policy, Root, ToolRequest, Verdict};

pub(crate) use warden_e2e::processes_mentioning;

/// A Python expression for the path of the run's results records, as the code under test can
/// find it: the argument after Warden's program on the interpreter's command line (`python
/// -P -c BOOTSTRAP RECORDS ...`; the bootstrap takes it off `sys.argv`, not off `/proc`).
pub(crate) const RECORDS_PATH_PY: &str = "open('/proc/self/cmdline', 'rb').read().split(b'\\0')[4]";

/// The Python with pytest the tests use (`WARDEN_PYTHON`, else the workspace's virtualenv,
/// else `python3`), as the runner is given it.
pub(crate) fn python() -> String {
    warden_e2e::python_with_pytest().display().to_string()
}

/// A runner on the test interpreter.
pub(crate) fn runner() -> PytestRunner {
    PytestRunner::new().with_python(python())
}

/// A fixture project copied into a fresh temporary root.
pub(crate) struct Project {
    pub(crate) dir: TempDir,
    pub(crate) root: Root,
}

impl Project {
    pub(crate) fn new(fixture: &str) -> Project {
        let dir = tempfile::tempdir().expect("temporary directory");
        let source = warden_e2e::workspace_root()
            .join("tests/fixtures")
            .join(fixture);
        assert!(source.is_dir(), "no fixture {}", source.display());
        warden_e2e::copy_tree(&source, dir.path());
        let root = Root::new(dir.path()).expect("root");
        Project { dir, root }
    }

    /// A root at `<tmp>/outer/root` holding `inside`, with `outside` planted around it in
    /// `<tmp>/outer` (returned), for what lies above a root.
    pub(crate) fn below(outside: Files<'_>, inside: Files<'_>) -> (Project, PathBuf) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let outer = dir.path().join("outer");
        plant(&outer, outside);
        plant(&outer.join("root"), inside);
        let root = Root::new(outer.join("root")).expect("root");
        (Project { dir, root }, outer)
    }

    /// The canonical root path as a string, which the fixtures' processes carry in their
    /// command lines.
    pub(crate) fn marker(&self) -> String {
        self.root.path().to_string()
    }

    /// Permission to run `target` with `extra_args` under the built-in policy, or under
    /// `limits` (TOML lines for the `[limits]` table) with the built-in rule for
    /// `runtime/tests`.
    pub(crate) fn authorize(&self, target: &str, extra_args: &[&str], limits: &str) -> Authorized {
        let policy = if limits.is_empty() {
            Policy::builtin()
        } else {
            Policy::from_toml_str(&warden_e2e::runtime_tests_policy(limits)).expect("test policy")
        };
        let request = ToolRequest::pytest_run(target, extra_args.iter().map(|a| a.to_string()));
        match policy.authorize(&self.root, &request) {
            Verdict::Allowed(auth) => auth,
            Verdict::Denied(decision) => panic!("denied: {}", decision.reason),
        }
    }
}

/// Files to write: `(relative path, contents)`.
pub(crate) type Files<'a> = &'a [(&'a str, &'a str)];

/// Writes `files` under `base`, creating directories as needed.
pub(crate) fn plant(base: &Path, files: Files<'_>) {
    for (path, text) in files {
        let path = base.join(path);
        std::fs::create_dir_all(path.parent().expect("a file has a directory"))
            .expect("create directory");
        std::fs::write(path, text).expect("write file");
    }
}

/// Waits (up to `limit`) until no live process mentions `marker`; returns what is left.
pub(crate) fn wait_until_gone(marker: &str, limit: Duration) -> Vec<(i32, String)> {
    let until = std::time::Instant::now() + limit;
    loop {
        let left = processes_mentioning(marker);
        if left.is_empty() || std::time::Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The peak resident set size of this process, in KiB.
pub(crate) fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Every path under `dir`.
pub(crate) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        all.push(entry.path());
        if entry.file_type().unwrap().is_dir() {
            all.extend(walk(&entry.path()));
        }
    }
    all
}

/// Fails if a run wrote bytecode or a pytest cache anywhere under `dir` (the tree's
/// fingerprint must not move because tests ran).
pub(crate) fn assert_nothing_written_into(dir: &Path) {
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name != "__pycache__" && name != ".pytest_cache" && !name.ends_with(".pyc"),
            "the run wrote {}",
            entry.display()
        );
    }
}
