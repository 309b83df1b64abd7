//! Shared helpers for Warden's end-to-end tests, which live in `tests/tests/`.
//!
//! The tests drive the real `warden` binary (built on demand into the same target directory as
//! the tests themselves) against real pytest projects copied into temporary directories:
//!
//! - [`warden`] gives a [`Command`] for the binary; [`run`] runs any command with a deadline
//!   and captures its output as a [`Run`];
//! - [`Fixture`] copies a project (the bundled demo, or one of `tests/fixtures/`) into a
//!   temporary directory the test may change freely ([`copy_tree`] is the copy itself, for
//!   tests that keep their own temporary directory);
//! - [`python`] finds the Python interpreter tests must use (`WARDEN_PYTHON`, else the
//!   workspace's virtualenv, else `python3`), and [`warden_at`] hands it to the binary;
//! - [`processes_mentioning`] searches the process table, so a test can prove a run left
//!   nothing behind, and [`Run::peak_rss_kib`] is the binary's own peak memory.
//!
//! ```no_run
//! use std::time::Duration;
//! use warden_e2e::{Fixture, run, warden};
//!
//! let demo = Fixture::demo();
//! let mut cmd = warden();
//! cmd.arg("--root").arg(demo.root()).args(["--json", "check", "--tool", "pytest", "--action", "run"]);
//! cmd.args(["--target", "runtime/tests"]);
//! let out = run(&mut cmd, None, Duration::from_secs(60));
//! assert_eq!(out.code, Some(0), "{}", out.stderr);
//! assert_eq!(out.json()["allowed"], true);
//! ```

// Helpers for tests: a failure to set up is a test failure, reported by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Deadline for building the binary (a cold build on a small machine takes a while).
const BUILD_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent", manifest.display()))
        .to_path_buf()
}

/// The `warden` binary, built (once per test process) with the same profile and into the same
/// target directory as the running test, so tests never run a stale binary.
pub fn warden_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_warden)
}

/// A command for the `warden` binary, with a clean logging environment.
pub fn warden() -> Command {
    let mut cmd = Command::new(warden_bin());
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A command for `warden --root ROOT`, running pytest with [`python_with_pytest`] (through
/// `WARDEN_PYTHON`).
pub fn warden_at(root: &Path) -> Command {
    let mut cmd = warden();
    cmd.arg("--root")
        .arg(root)
        .env("WARDEN_PYTHON", python_with_pytest());
    cmd
}

/// Deadline for one `warden verify` in a test: long enough for a slow machine running several
/// pytest processes, short enough that a hang fails the test.
pub const VERIFY_DEADLINE: Duration = Duration::from_secs(180);

/// Runs `warden --root ROOT --json verify ARGS...` (pytest from [`python_with_pytest`]).
pub fn verify_json(root: &Path, args: &[&str]) -> Run {
    let mut cmd = warden_at(root);
    cmd.args(["--json", "verify"]).args(args);
    run(&mut cmd, None, VERIFY_DEADLINE)
}

fn build_warden() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // Test executables live in <target>/<profile>/deps/.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("unexpected test executable path {}", exe.display()));
    let target_dir = profile_dir.parent().unwrap_or_else(|| {
        panic!(
            "unexpected target directory layout at {}",
            profile_dir.display()
        )
    });
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--package",
        "warden-cli",
        "--bin",
        "warden",
    ])
    .arg("--manifest-path")
    .arg(workspace_root().join("Cargo.toml"))
    .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = run(&mut cmd, None, BUILD_DEADLINE);
    assert_eq!(
        out.code,
        Some(0),
        "building the warden binary failed:\n{}",
        out.stderr
    );
    let bin = profile_dir.join(format!("warden{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "cargo built warden-cli but {} is missing",
        bin.display()
    );
    bin
}

/// The Python interpreter tests run pytest with: `WARDEN_PYTHON` if set, else the workspace's
/// virtualenv (`target/venv`, made by `cargo xtask test`) if it exists, else `python3`.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("WARDEN_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let venv = workspace_root().join("target/venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// [`python`], checked once to have pytest; a test that needs it fails with a clear message
/// rather than being skipped.
pub fn python_with_pytest() -> &'static Path {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let python = python();
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "pytest", "--version"]);
        let out = run(&mut cmd, None, Duration::from_secs(60));
        assert_eq!(
            out.code,
            Some(0),
            "these tests need Python with pytest; `{}` does not work (set WARDEN_PYTHON, or run `cargo xtask test`, which makes target/venv):\n{}{}",
            python.display(),
            out.stdout,
            out.stderr
        );
        python
    })
}

/// A finished process: its exit code and its output.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// Everything it wrote to stdout (lossily decoded).
    pub stdout: String,
    /// Everything it wrote to stderr (lossily decoded).
    pub stderr: String,
    /// How long it ran, from start to exit.
    pub elapsed: Duration,
    /// The highest peak resident set size (`VmHWM`, KiB) of the process itself seen while it
    /// ran, sampled from `/proc`; `None` where there is no `/proc` or it exited before a sample.
    pub peak_rss_kib: Option<u64>,
}

impl Run {
    /// stdout parsed as exactly one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The message of a `--json` error document (`{"error": ...}` on stdout).
    pub fn error(&self) -> String {
        let doc = self.json();
        doc["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {doc}"))
            .to_owned()
    }
}

/// Runs `cmd` with `stdin` as its input (or none), capturing stdout and stderr. A process
/// still running at `deadline` is killed and the test fails.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, deadline: Duration) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Feed stdin and drain the pipes on their own threads, so a full pipe never blocks us.
    let feeder = stdin.map(|input| {
        let input = input.to_vec();
        let mut pipe = child.stdin.take().expect("piped stdin");
        thread::spawn(move || {
            // The process may exit without reading everything; that is its business.
            let _ = pipe.write_all(&input);
        })
    });
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let started = Instant::now();
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak_rss_kib = None;
    let status: ExitStatus = loop {
        // VmHWM only grows, so the last sample before the exit is (nearly) the true peak.
        if let Some(hwm) = vm_hwm_kib(&status_file) {
            peak_rss_kib = Some(peak_rss_kib.map_or(hwm, |seen: u64| seen.max(hwm)));
        }
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {deadline:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    if let Some(feeder) = feeder {
        feeder.join().expect("stdin thread");
    }
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout.join().expect("stdout thread")).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.join().expect("stderr thread")).into_owned(),
        elapsed,
        peak_rss_kib,
    }
}

/// `VmHWM` from a `/proc/<pid>/status` file, in KiB (`None` once the process is gone).
fn vm_hwm_kib(status_file: &Path) -> Option<u64> {
    let status = fs::read_to_string(status_file).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Live (non-zombie) processes whose command line contains `marker`, as `(pid, command)`:
/// how a test finds what a run left behind (fixture processes carry the project root in their
/// command lines).
pub fn processes_mentioning(marker: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    // Without the process table a test could not see a leak, so it must not pass as if clean.
    let entries = fs::read_dir("/proc").expect("the process table, /proc");
    let me = std::process::id();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if matches!(state, Some('Z' | 'X')) {
            continue;
        }
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push((pid as i32, cmdline));
        }
    }
    found
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// The lines of a text file (a ledger, say), without their line ends.
pub fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `lines` to `path`, each ended by a newline: a ledger as someone with write access to
/// the file might leave it.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A policy (TOML) holding the built-in rule for `runtime/tests`, `pytest-runtime-tests`, with
/// `limits` as the lines of its `[limits]` table (empty: the defaults).
pub fn runtime_tests_policy(limits: &str) -> String {
    format!(
        "version = 1\n\n[limits]\n{limits}\n\n[[rule]]\nid = \"pytest-runtime-tests\"\n\
         effect = \"allow\"\ntool = \"pytest\"\naction = \"run\"\nscope = [\"runtime/tests\"]\n"
    )
}

/// A copy of a project in a temporary directory, removed when dropped.
#[derive(Debug)]
pub struct Fixture {
    _dir: TempDir,
    root: PathBuf,
}

impl Fixture {
    /// A copy of the bundled demo project, `examples/demo`.
    pub fn demo() -> Fixture {
        Fixture::copy(workspace_root().join("examples/demo"))
    }

    /// A copy of `tests/fixtures/<name>`.
    pub fn named(name: &str) -> Fixture {
        Fixture::copy(workspace_root().join("tests/fixtures").join(name))
    }

    /// A copy of the project at `source` (relative paths are relative to the workspace root).
    /// Symlinks are copied as symlinks; caches (`__pycache__`, `.pytest_cache`) and Warden's
    /// own state (`.warden`) are left out.
    pub fn copy(source: impl AsRef<Path>) -> Fixture {
        let source = workspace_root().join(source.as_ref());
        assert!(
            source.is_dir(),
            "fixture {} is not a directory",
            source.display()
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let base = fs::canonicalize(dir.path()).expect("canonical temporary directory");
        let name = source.file_name().unwrap_or_else(|| "project".as_ref());
        let root = base.join(name);
        copy_tree(&source, &root);
        Fixture { _dir: dir, root }
    }

    /// An empty project directory.
    pub fn empty() -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let base = fs::canonicalize(dir.path()).expect("canonical temporary directory");
        let root = base.join("project");
        fs::create_dir(&root).expect("project directory");
        Fixture { _dir: dir, root }
    }

    /// The project's root directory (canonical, absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A directory next to the root, outside it: a place for symlinks to escape to.
    pub fn outside(&self) -> PathBuf {
        let outside = self
            .root
            .parent()
            .expect("the root has a parent")
            .join("outside");
        fs::create_dir_all(&outside).expect("outside directory");
        outside
    }

    /// Writes `contents` to `rel` under the root, creating parent directories.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("parent directories");
        }
        fs::write(&path, contents).expect("writing a fixture file");
        if rel.ends_with("state_dir.txt") {
            // The flaky fixture keeps its state outside the root, which the sandbox refuses
            // unless the policy lists it.
            fs::create_dir_all(contents.trim()).expect("the state directory");
            self.allow_sandbox("write", Path::new(contents.trim()));
        }
        path
    }

    /// Lets the sandbox of this project's runs `key` (`read` or `write`) `path`, through a
    /// `warden.toml` that extends the built-in policy.
    pub fn allow_sandbox(&self, key: &str, path: &Path) {
        fs::write(
            self.root.join("warden.toml"),
            format!(
                "version = 1\nextends = \"builtin\"\n[sandbox]\n{key} = [{:?}]\n",
                path.display().to_string()
            ),
        )
        .expect("writing warden.toml");
    }

    /// Writes [`runtime_tests_policy`]`(limits)` to a file outside the root and returns its
    /// path.
    pub fn policy(&self, limits: &str) -> PathBuf {
        let path = self.outside().join("policy.toml");
        fs::write(&path, runtime_tests_policy(limits)).expect("writing a policy");
        path
    }

    /// The default ledger of the project, `.warden/ledger.jsonl`.
    pub fn ledger(&self) -> PathBuf {
        self.root.join(".warden/ledger.jsonl")
    }

    /// Creates a symlink at `rel` under the root pointing to `to`.
    #[cfg(unix)]
    pub fn symlink(&self, rel: &str, to: impl AsRef<Path>) {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("parent directories");
        }
        std::os::unix::fs::symlink(to, &path).expect("creating a symlink");
    }
}

/// Writes an executable script at `path` from a child process, so the file is never open for
/// writing in this (multi-threaded) process: a sibling test forking at that moment would
/// inherit the descriptor and make executing the script fail with "Text file busy".
pub fn write_executable(path: &Path, text: &str) {
    let mut child = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start sh to write a script");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write the script");
    }
    let status = child.wait().expect("wait for sh");
    assert!(status.success(), "could not write {}", path.display());
}

/// Copies the project at `from` into `to` (created if need be): symlinks as symlinks, and
/// without caches (`__pycache__`, `.pytest_cache`) or Warden's own state (`.warden`), so a copy
/// starts as clean as the fixture in the repository.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("creating a fixture directory");
    for entry in fs::read_dir(from).expect("reading a fixture directory") {
        let entry = entry.expect("a fixture entry");
        let name = entry.file_name();
        if name == "__pycache__" || name == ".pytest_cache" || name == ".warden" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let file_type = entry.file_type().expect("a fixture entry's type");
        if file_type.is_symlink() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(fs::read_link(&src).expect("a link"), &dst)
                .expect("copying a symlink");
        } else if file_type.is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).expect("copying a fixture file");
        }
    }
}

/// `nodeid message` of every test in a `verify` document that did not pass, for assertion
/// messages.
pub fn failures(doc: &serde_json::Value) -> Vec<String> {
    doc["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["outcome"] != "passed")
        .map(|t| format!("{} {}", t["nodeid"], t["message"]))
        .collect()
}
