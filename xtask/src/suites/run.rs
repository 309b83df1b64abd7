//! One run of each contender on a project tree: bare pytest as the project's developers run it,
//! and `warden verify` with the same arguments. Output goes to log files under
//! `target/suites/logs`, named after the project and the run, so any disagreement can be read.

use std::ffi::OsString;
use std::fs::{self, File};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use super::SuitesError;
use super::counts::{self, Counts};
use super::projects::Project;
use crate::process::describe;

/// Longest a single run may take before it is killed and the yardstick fails: a hung suite
/// must not hang the command (Warden's own deadline, the policy's, is far shorter).
const RUN_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How often a running contender is polled for its exit: small against any suite's run time.
const POLL: Duration = Duration::from_millis(5);

/// Python settings that would make a bare run unlike a person's (or inject options), taken out
/// of the environment the bare run inherits.
const NOT_A_PERSONS: [&str; 6] = [
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPYCACHEPREFIX",
    "PYTHONUNBUFFERED",
    "PYTHONPATH",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
];

/// The programs compared, and where their logs go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contenders<'a> {
    pub(crate) warden: &'a Utf8Path,
    pub(crate) venv: &'a Utf8Path,
    pub(crate) python: &'a Utf8Path,
    pub(crate) logs: &'a Utf8Path,
}

/// A bare pytest run.
#[derive(Debug, Clone)]
pub(crate) struct BareRun {
    pub(crate) elapsed: Duration,
    pub(crate) counts: Counts,
}

/// A `warden verify` run.
#[derive(Debug, Clone)]
pub(crate) struct WardenRun {
    pub(crate) elapsed: Duration,
    pub(crate) counts: Counts,
    pub(crate) fingerprint: Option<String>,
    /// The first test's node id, for a narrow second run.
    pub(crate) first_test: Option<String>,
    /// The report's `sandbox.enforced` (`None`: the run was not confined).
    pub(crate) sandbox_enforced: Option<bool>,
    pub(crate) log: Utf8PathBuf,
}

impl Contenders<'_> {
    /// The venv as an activated one looks: `VIRTUAL_ENV` set and its `bin` first on `PATH`.
    fn activated(&self, command: &mut Command) {
        let bin = self.venv.join("bin");
        let mut path = OsString::from(bin.as_str());
        if let Some(rest) = std::env::var_os("PATH") {
            path.push(":");
            path.push(rest);
        }
        command.env("VIRTUAL_ENV", self.venv).env("PATH", path);
    }

    /// `pytest ARGS` in `tree`, as the project's docs say to run it.
    pub(crate) fn bare(
        &self,
        project: &Project,
        tree: &Utf8Path,
        run: &str,
    ) -> Result<BareRun, SuitesError> {
        let mut command = Command::new(self.venv.join("bin").join("pytest"));
        command.args(project.args).current_dir(tree);
        for name in NOT_A_PERSONS {
            command.env_remove(name);
        }
        self.activated(&mut command);
        let log = self.logs.join(format!("{}-bare-{run}.txt", project.name));
        let (elapsed, status) = timed(&mut command, &log, &log)?;
        let output = fs::read(&log).map_err(super::io_error(format!("read {log}")))?;
        let text = String::from_utf8_lossy(&output);
        // 0: all passed; 1: some failed. Anything else (interrupted, internal error, usage
        // error, no tests) means the run is not what the yardstick compares.
        if !matches!(status.code(), Some(0 | 1)) {
            return Err(SuitesError::Unexpected(format!(
                "{}: bare `{}` exited with {status}; see {log}",
                project.label(),
                project.command()
            )));
        }
        let counts = counts::from_pytest_line(&text).ok_or_else(|| {
            SuitesError::Unexpected(format!(
                "{}: bare pytest printed no final summary line; see {log}",
                project.label()
            ))
        })?;
        Ok(BareRun { elapsed, counts })
    }

    /// `warden verify TARGET --retries 0 -- ARGS` in `tree` (bare pytest does not rerun failed
    /// tests, so Warden is told not to either: one run against one run).
    pub(crate) fn warden(
        &self,
        project: &Project,
        tree: &Utf8Path,
        target: &str,
        run: &str,
    ) -> Result<WardenRun, SuitesError> {
        let mut command = Command::new(self.warden);
        command
            .arg("--root")
            .arg(tree)
            .args(["--json", "verify", target, "--retries", "0", "--"])
            .args(project.args)
            .current_dir(tree)
            .env("WARDEN_PYTHON", self.python);
        self.activated(&mut command);
        let log = self
            .logs
            .join(format!("{}-warden-{run}.json", project.name));
        let stderr = self.logs.join(format!("{}-warden-{run}.log", project.name));
        let (elapsed, status) = timed(&mut command, &log, &stderr)?;
        let text = fs::read_to_string(&log).map_err(super::io_error(format!("read {log}")))?;
        let document: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            SuitesError::Unexpected(format!(
                "{}: `warden verify` printed no JSON document ({e}); see {log} and {stderr}",
                project.label()
            ))
        })?;
        if !matches!(status.code(), Some(0 | 1)) {
            return Err(SuitesError::Unexpected(format!(
                "{}: `warden verify` exited with {status}, status {}, class {}: {}; see {log} \
                 and {stderr}",
                project.label(),
                document["status"],
                document["failure_class"],
                document
                    .get("error")
                    .or_else(|| document.pointer("/decision/reason"))
                    .unwrap_or(&serde_json::Value::Null),
            )));
        }
        let counts = counts::from_warden_json(&document).ok_or_else(|| {
            SuitesError::Unexpected(format!(
                "{}: Warden's JSON has no `counts` object; see {log}",
                project.label()
            ))
        })?;
        Ok(WardenRun {
            elapsed,
            counts,
            fingerprint: document["fingerprint"].as_str().map(str::to_owned),
            first_test: document
                .pointer("/tests/0/nodeid")
                .and_then(|id| id.as_str())
                .map(str::to_owned),
            sandbox_enforced: document
                .pointer("/sandbox/enforced")
                .and_then(|e| e.as_bool()),
            log,
        })
    }
}

/// Runs `command` to its end with stdout and stderr in files (the same file when they are
/// one path), timing it from spawn to exit; kills it after [`RUN_LIMIT`].
fn timed(
    command: &mut Command,
    stdout: &Utf8Path,
    stderr: &Utf8Path,
) -> Result<(Duration, ExitStatus), SuitesError> {
    let described = describe(command);
    let out = File::create(stdout).map_err(super::io_error(format!("create {stdout}")))?;
    let err = if stderr == stdout {
        out.try_clone()
    } else {
        File::create(stderr)
    }
    .map_err(super::io_error(format!("create {stderr}")))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| SuitesError::Spawn {
        command: described.clone(),
        source,
    })?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok((started.elapsed(), status)),
            Ok(None) if started.elapsed() > RUN_LIMIT => {
                // Best effort: the run has failed whether or not the kill lands.
                let _ = child.kill();
                let _ = child.wait();
                return Err(SuitesError::Unexpected(format!(
                    "`{described}` ran for more than {} s and was killed; see {stdout}",
                    RUN_LIMIT.as_secs()
                )));
            }
            Ok(None) => thread::sleep(POLL),
            Err(e) => return Err(super::io_error(format!("wait for `{described}`"))(e)),
        }
    }
}
