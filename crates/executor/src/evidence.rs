//! What one run leaves behind: [`RunEvidence`] and its parts.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_taxonomy::{AttemptSummary, CapturedStream, TestCounts, TestResult};

/// How a run ended, told apart as finely as the classifier needs.
///
/// pytest's exit codes 0–5 map to the first seven variants (exit 2 splits into
/// [`RunOutcome::CollectionFailed`] and [`RunOutcome::Interrupted`]); the rest are Warden's own
/// observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Exit 0: every collected test passed (or was skipped/xfailed/xpassed), and the run is
    /// complete: every collected test reported, the counts line printed, the report read.
    Passed,
    /// Exit 1: at least one test failed or errored.
    TestsFailed,
    /// Exit 2 with collection errors: a test module (see
    /// [`RunEvidence::collection_errors`]) could not be imported, often a syntax error.
    CollectionFailed,
    /// Exit 2 without a collection error: the session was interrupted (e.g. `KeyboardInterrupt`
    /// or `pytest.exit`). Also exit 0 from a run that did not finish (a test or hook called
    /// `os._exit(0)`, the report is missing): [`RunEvidence::diagnostics`] says what is missing.
    Interrupted,
    /// Exit 3: pytest itself crashed (`INTERNALERROR`).
    InternalError,
    /// Exit 4: pytest rejected its invocation or configuration, e.g. a conftest that fails to
    /// load (listed in [`RunEvidence::collection_errors`] with `conftest: true`) or a target
    /// that does not exist.
    UsageError,
    /// Exit 5: no tests were collected.
    NoTests,
    /// The deadline hit; the process group was stopped (SIGTERM, grace period, SIGKILL).
    TimedOut,
    /// The process died of a signal Warden did not send, or exited with a code pytest never
    /// uses (a test called `os._exit`, the interpreter crashed, pytest did not start).
    Crashed,
    /// The run could not happen: Python or pytest missing, or the process failed to start.
    /// [`RunEvidence::diagnostics`] says what to install or fix.
    Infrastructure,
}

impl RunOutcome {
    /// The outcome pytest's own exit code stands for, before Warden's refinements (exit 2 is
    /// [`RunOutcome::Interrupted`] here; it becomes [`RunOutcome::CollectionFailed`] when
    /// collection errors were seen). `None` for codes pytest never uses.
    pub const fn from_exit_code(code: i32) -> Option<RunOutcome> {
        match code {
            0 => Some(RunOutcome::Passed),
            1 => Some(RunOutcome::TestsFailed),
            2 => Some(RunOutcome::Interrupted),
            3 => Some(RunOutcome::InternalError),
            4 => Some(RunOutcome::UsageError),
            5 => Some(RunOutcome::NoTests),
            _ => None,
        }
    }

    /// The snake_case name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Passed => "passed",
            RunOutcome::TestsFailed => "tests_failed",
            RunOutcome::CollectionFailed => "collection_failed",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::InternalError => "internal_error",
            RunOutcome::UsageError => "usage_error",
            RunOutcome::NoTests => "no_tests",
            RunOutcome::TimedOut => "timed_out",
            RunOutcome::Crashed => "crashed",
            RunOutcome::Infrastructure => "infrastructure",
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file that could not be collected, or a conftest that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionError {
    /// The root-relative path of the file, when pytest named it.
    pub path: Option<String>,
    /// The exception, e.g. `ModuleNotFoundError: No module named 'x'` or
    /// `SyntaxError: invalid syntax (runtime/tests/test_a.py, line 3)`.
    pub message: String,
    /// The exception is a `SyntaxError` (or `IndentationError`/`TabError`): the file does not
    /// parse.
    pub syntax_error: bool,
    /// The file is a `conftest.py` that failed to load (pytest exits 4 before collecting).
    pub conftest: bool,
}

/// A process that was still alive after the run's main process exited, and that Warden killed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakedProcess {
    /// Its process id.
    pub pid: i32,
    /// Its command line (shortened).
    pub command: String,
    /// It had left the run's process group (e.g. via `setsid`) and was found by the run's
    /// environment marker instead.
    pub escaped_group: bool,
}

/// Where the per-test results came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultsSource {
    /// The records Warden's plugin wrote from pytest's own reports, completed by the output
    /// stream where they are cut short (see `records`). Ledgers written before the records
    /// replaced pytest's JUnit report say `junit`.
    #[serde(alias = "junit")]
    Records,
    /// The output stream only: the report was missing or unreadable (the run was killed, or
    /// pytest never got as far as writing it).
    Stream,
    /// Nothing ran, or nothing could be read.
    None,
}

/// Everything one run of pytest left behind: the facts the contract's `verify` JSON needs for one
/// attempt, and what the classifier needs to name the failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEvidence {
    /// The command line that ran (interpreter first).
    pub argv: Vec<String>,
    /// How the run ended.
    pub outcome: RunOutcome,
    /// The process exit code; `None` when it was killed by a signal or never started.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    /// Wall-clock time from start to the return of the run, cleanup included.
    pub duration_ms: u64,
    /// The deadline the run was given.
    pub deadline_ms: u64,
    /// The deadline hit and the process group was stopped.
    pub timed_out: bool,
    /// The test that was running when the deadline hit, if pytest had named it.
    pub timed_out_test: Option<String>,
    /// Outcome counts: pytest's own final summary line when it printed one, else counted from
    /// [`RunEvidence::tests`]. (pytest counts a test that passes and then errors in teardown
    /// both as passed and as an error, so these may exceed the number of tests.)
    pub counts: TestCounts,
    /// Per-test results, one per node id (last report wins). Files that failed to collect
    /// appear as `error` results whose node id is the file's path.
    pub tests: Vec<TestResult>,
    /// Tests left out of [`RunEvidence::tests`] because the record bound was reached.
    pub tests_omitted: u64,
    /// Where [`RunEvidence::tests`] came from.
    pub results_source: ResultsSource,
    /// Files that failed to collect and conftests that failed to load.
    pub collection_errors: Vec<CollectionError>,
    /// Run-level messages a person or agent can act on: what to install, why the run stopped,
    /// what pytest complained about.
    pub diagnostics: Vec<String>,
    /// Standard output, bounded.
    pub stdout: CapturedStream,
    /// Standard error, bounded.
    pub stderr: CapturedStream,
    /// Both pipes reached end-of-file; `false` when a process outside Warden's reach held them
    /// open past the drain deadline and the rest of its output was abandoned.
    pub output_complete: bool,
    /// Processes found alive after the main process exited, all of which were killed.
    pub leaked_processes: Vec<LeakedProcess>,
    /// What the sandbox had in force (`None`: the run was not confined, because the runner
    /// has no sandbox launcher or the policy's `[sandbox] mode` is `off`). *(extension)*
    pub sandbox: Option<crate::SandboxStatus>,
}

impl RunEvidence {
    /// The run's wall-clock time.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }

    /// The contract's per-attempt summary.
    pub fn attempt(&self) -> AttemptSummary {
        AttemptSummary {
            exit_code: self.exit_code,
            duration_ms: self.duration_ms,
            counts: self.counts,
        }
    }

    /// Node ids of the tests that failed or errored (collection errors excluded: a file that
    /// does not import is not a test to rerun), in report order.
    pub fn failed_tests(&self) -> Vec<String> {
        self.tests
            .iter()
            .filter(|t| t.outcome.is_failure() && t.nodeid.contains("::"))
            .map(|t| t.nodeid.clone())
            .collect()
    }

    /// Evidence for a run that could not start.
    pub(crate) fn not_started(argv: Vec<String>, deadline: Duration, message: String) -> Self {
        RunEvidence {
            argv,
            outcome: RunOutcome::Infrastructure,
            exit_code: None,
            signal: None,
            duration_ms: 0,
            deadline_ms: millis(deadline),
            timed_out: false,
            timed_out_test: None,
            counts: TestCounts::default(),
            tests: Vec::new(),
            tests_omitted: 0,
            results_source: ResultsSource::None,
            collection_errors: Vec::new(),
            diagnostics: vec![message],
            stdout: crate::capture::Capture::new(0).finish(),
            stderr: crate::capture::Capture::new(0).finish(),
            output_complete: true,
            leaked_processes: Vec::new(),
            sandbox: None,
        }
    }
}

/// Whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_taxonomy::TestOutcome;

    #[test]
    fn pytest_exit_codes_map_to_outcomes() {
        let expected = [
            (0, Some(RunOutcome::Passed)),
            (1, Some(RunOutcome::TestsFailed)),
            (2, Some(RunOutcome::Interrupted)),
            (3, Some(RunOutcome::InternalError)),
            (4, Some(RunOutcome::UsageError)),
            (5, Some(RunOutcome::NoTests)),
            (6, None),
            (-1, None),
            (137, None),
        ];
        for (code, outcome) in expected {
            assert_eq!(RunOutcome::from_exit_code(code), outcome, "exit {code}");
        }
    }

    #[test]
    fn outcomes_serialise_as_their_names() {
        for o in [
            RunOutcome::Passed,
            RunOutcome::TestsFailed,
            RunOutcome::CollectionFailed,
            RunOutcome::Interrupted,
            RunOutcome::InternalError,
            RunOutcome::UsageError,
            RunOutcome::NoTests,
            RunOutcome::TimedOut,
            RunOutcome::Crashed,
            RunOutcome::Infrastructure,
        ] {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{o}\""));
            assert_eq!(serde_json::from_str::<RunOutcome>(&json).unwrap(), o);
        }
    }

    #[test]
    fn evidence_round_trips_and_lists_failed_tests() {
        let mut ev = RunEvidence::not_started(
            vec!["python3".into()],
            Duration::from_secs(3),
            "no python".into(),
        );
        ev.tests = vec![
            TestResult {
                nodeid: "t/test_a.py::test_x".into(),
                outcome: TestOutcome::Failed,
                message: Some("boom".into()),
                duration_ms: Some(1),
                subtests: Vec::new(),
            },
            TestResult {
                nodeid: "t/test_b.py".into(),
                outcome: TestOutcome::Error,
                message: None,
                duration_ms: None,
                subtests: Vec::new(),
            },
            TestResult {
                nodeid: "t/test_a.py::test_y".into(),
                outcome: TestOutcome::Passed,
                message: None,
                duration_ms: None,
                subtests: Vec::new(),
            },
        ];
        assert_eq!(ev.failed_tests(), ["t/test_a.py::test_x"]);
        assert_eq!(ev.deadline_ms, 3000);
        let json = serde_json::to_string(&ev).unwrap();
        let back: RunEvidence = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ev);
        assert_eq!(ev.attempt().exit_code, None);
    }
}
