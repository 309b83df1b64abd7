//! Warden's shared vocabulary: the words every other crate uses to talk about a test run.
//!
//! This crate does no I/O. It names the failure classes an agent acts on ([`FailureClass`]),
//! the overall status of a verification ([`RunStatus`]), what happened to each test
//! ([`TestOutcome`], [`TestResult`], [`TestCounts`]), and the result documents Warden hands
//! out ([`VerifyReport`], [`RetryContext`], [`CapturedStream`]). All of them serialise to the
//! JSON that `docs/contract.md` specifies (snake_case names, every key present).
//!
//! ```
//! use warden_taxonomy::{FailureClass, RunStatus, TestCounts, TestOutcome};
//!
//! let mut counts = TestCounts::default();
//! counts.record(TestOutcome::Passed);
//! counts.record(TestOutcome::Failed);
//! assert_eq!(counts.total(), 2);
//! assert_eq!(counts.failures(), 1);
//!
//! let class: FailureClass = serde_json::from_str("\"test_flake\"").unwrap();
//! assert_eq!(class, FailureClass::TestFlake);
//! assert_eq!(class.status(), RunStatus::Passed);
//! assert_eq!(FailureClass::TestTimeout.to_string(), "test_timeout");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a verification did not simply pass: the one word an agent branches on.
///
/// The set and the spelling are fixed by the contract; [`FailureClass::ALL`] lists them in the
/// classifier's priority order (earlier classes win when several apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The policy refused the request; nothing ran.
    PolicyDenied,
    /// The mission's cumulative test-time budget would be exceeded; nothing ran.
    BudgetExhausted,
    /// Python, pytest or the process itself could not be started.
    Infrastructure,
    /// The run hit its deadline and its process tree was killed.
    TestTimeout,
    /// A file under test (or a conftest) does not parse.
    SyntaxError,
    /// Collection failed for another reason, typically an import error.
    CollectionError,
    /// pytest rejected its invocation or configuration (exit 4), e.g. a broken conftest.
    UsageError,
    /// pytest itself crashed (exit 3).
    InternalError,
    /// The run was interrupted (exit 2 without a collection error).
    Interrupted,
    /// Nothing was collected (exit 5).
    NoTests,
    /// At least one test failed on every attempt on the same code.
    TestFailure,
    /// Every failing test also passed on the same code: the failures are not reproducible.
    TestFlake,
}

impl FailureClass {
    /// Every class, in the classifier's priority order.
    pub const ALL: [FailureClass; 12] = [
        FailureClass::PolicyDenied,
        FailureClass::BudgetExhausted,
        FailureClass::Infrastructure,
        FailureClass::TestTimeout,
        FailureClass::SyntaxError,
        FailureClass::CollectionError,
        FailureClass::UsageError,
        FailureClass::InternalError,
        FailureClass::Interrupted,
        FailureClass::NoTests,
        FailureClass::TestFailure,
        FailureClass::TestFlake,
    ];

    /// The contract's snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureClass::PolicyDenied => "policy_denied",
            FailureClass::BudgetExhausted => "budget_exhausted",
            FailureClass::Infrastructure => "infrastructure",
            FailureClass::TestTimeout => "test_timeout",
            FailureClass::SyntaxError => "syntax_error",
            FailureClass::CollectionError => "collection_error",
            FailureClass::UsageError => "usage_error",
            FailureClass::InternalError => "internal_error",
            FailureClass::Interrupted => "interrupted",
            FailureClass::NoTests => "no_tests",
            FailureClass::TestFailure => "test_failure",
            FailureClass::TestFlake => "test_flake",
        }
    }

    /// The overall status a verification with this class reports.
    ///
    /// A flake is reported as passed: every failing test passed when rerun on the same code,
    /// so the code is not shown to be wrong (the flaky tests are still listed).
    pub const fn status(self) -> RunStatus {
        match self {
            FailureClass::PolicyDenied | FailureClass::BudgetExhausted => RunStatus::Denied,
            FailureClass::Infrastructure => RunStatus::Error,
            FailureClass::TestTimeout => RunStatus::Timeout,
            FailureClass::TestFlake => RunStatus::Passed,
            FailureClass::SyntaxError
            | FailureClass::CollectionError
            | FailureClass::UsageError
            | FailureClass::InternalError
            | FailureClass::Interrupted
            | FailureClass::NoTests
            | FailureClass::TestFailure => RunStatus::Failed,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The overall status of one verification, as the contract's `status` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// All tests passed (possibly after reruns that exposed flakes).
    Passed,
    /// Tests failed or could not be collected.
    Failed,
    /// The run was stopped at its deadline.
    Timeout,
    /// Policy or budget refused the run; nothing ran.
    Denied,
    /// Warden could not run the tests (configuration or infrastructure).
    Error,
}

impl RunStatus {
    /// The contract's snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Timeout => "timeout",
            RunStatus::Denied => "denied",
            RunStatus::Error => "error",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one test, in pytest's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// The test passed.
    Passed,
    /// An assertion or exception in the test body.
    Failed,
    /// An exception in setup or teardown (or a collection error attributed to a file).
    Error,
    /// Skipped by a marker or `pytest.skip`.
    Skipped,
    /// Failed as expected by `xfail`.
    Xfailed,
    /// Passed although marked `xfail` (non-strict).
    Xpassed,
}

impl TestOutcome {
    /// Every outcome.
    pub const ALL: [TestOutcome; 6] = [
        TestOutcome::Passed,
        TestOutcome::Failed,
        TestOutcome::Error,
        TestOutcome::Skipped,
        TestOutcome::Xfailed,
        TestOutcome::Xpassed,
    ];

    /// Whether this outcome makes the run fail.
    pub const fn is_failure(self) -> bool {
        matches!(self, TestOutcome::Failed | TestOutcome::Error)
    }

    /// The contract's snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TestOutcome::Passed => "passed",
            TestOutcome::Failed => "failed",
            TestOutcome::Error => "error",
            TestOutcome::Skipped => "skipped",
            TestOutcome::Xfailed => "xfailed",
            TestOutcome::Xpassed => "xpassed",
        }
    }
}

impl fmt::Display for TestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many tests ended in each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCounts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests (or collectors) that errored.
    pub errors: u64,
    /// Tests that were skipped.
    pub skipped: u64,
    /// Tests that failed as expected.
    pub xfailed: u64,
    /// Tests that passed unexpectedly.
    pub xpassed: u64,
    /// Subtests that passed (pytest's `subtests` fixture, `unittest`'s `subTest`): pytest's
    /// `N subtests passed`, which it counts apart from `passed`. *(extension)*
    #[serde(default)]
    pub subtests_passed: u64,
    /// Of `failed`, how many are failing subtests: pytest counts each failing subtest in
    /// `failed`, beside the test it belongs to (which fails too). *(extension)*
    #[serde(default)]
    pub subtests_failed: u64,
    /// Of `skipped`, how many are skipped subtests. *(extension)*
    #[serde(default)]
    pub subtests_skipped: u64,
    /// Of `xfailed`, how many are subtests that failed as expected. *(extension)*
    #[serde(default)]
    pub subtests_xfailed: u64,
}

impl TestCounts {
    /// Counts one more test with `outcome`.
    pub fn record(&mut self, outcome: TestOutcome) {
        *self.slot(outcome) += 1;
    }

    /// The count for one outcome.
    pub fn get(&self, outcome: TestOutcome) -> u64 {
        match outcome {
            TestOutcome::Passed => self.passed,
            TestOutcome::Failed => self.failed,
            TestOutcome::Error => self.errors,
            TestOutcome::Skipped => self.skipped,
            TestOutcome::Xfailed => self.xfailed,
            TestOutcome::Xpassed => self.xpassed,
        }
    }

    /// A mutable reference to the count for one outcome.
    pub fn slot(&mut self, outcome: TestOutcome) -> &mut u64 {
        match outcome {
            TestOutcome::Passed => &mut self.passed,
            TestOutcome::Failed => &mut self.failed,
            TestOutcome::Error => &mut self.errors,
            TestOutcome::Skipped => &mut self.skipped,
            TestOutcome::Xfailed => &mut self.xfailed,
            TestOutcome::Xpassed => &mut self.xpassed,
        }
    }

    /// All outcomes together.
    pub fn total(&self) -> u64 {
        TestOutcome::ALL.iter().map(|o| self.get(*o)).sum()
    }

    /// Failed plus errored.
    pub fn failures(&self) -> u64 {
        self.failed + self.errors
    }

    /// Counts a list of per-test results.
    pub fn of<'a>(tests: impl IntoIterator<Item = &'a TestResult>) -> Self {
        let mut counts = TestCounts::default();
        for t in tests {
            counts.record(t.outcome);
        }
        counts
    }
}

/// The result of one test in one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestResult {
    /// pytest's node id, e.g. `runtime/tests/test_a.py::test_x[1]`.
    pub nodeid: String,
    /// What happened.
    pub outcome: TestOutcome,
    /// The failure, error or skip message, if any (kept short).
    pub message: Option<String>,
    /// How long the test took, when known.
    pub duration_ms: Option<u64>,
    /// The subtests of this test that did not pass (failed, skipped or xfailed), in the order
    /// pytest reported them, at most [`MAX_SUBTESTS_KEPT`]; left out of the JSON when there
    /// are none. A failing subtest fails its test. *(extension)*
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtests: Vec<SubtestResult>,
}

/// Most subtests kept per test in [`TestResult::subtests`] (the counts count them all).
pub const MAX_SUBTESTS_KEPT: usize = 20;

/// A subtest that did not pass: pytest's `subtests.test(msg, **params)` or `unittest`'s
/// `self.subTest(msg, **params)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubtestResult {
    /// The subtest as pytest describes it: `[msg]`, then the parameters, `(i=1, name='x')`.
    pub description: String,
    /// `failed`, `skipped` or `xfailed`.
    pub outcome: TestOutcome,
    /// The failure, skip or xfail message, if any (kept short).
    pub message: Option<String>,
}

/// One output stream of a run, captured within a fixed bound.
///
/// `total_bytes` and `sha256` cover the whole stream, not just the kept `text`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturedStream {
    /// The kept head and tail, with a marker where bytes were omitted.
    pub text: String,
    /// Bytes the process wrote to the stream in all.
    pub total_bytes: u64,
    /// Whether bytes were omitted from `text`.
    pub truncated: bool,
    /// Lower-case hex SHA-256 of the whole stream.
    pub sha256: String,
}

/// A summary of one attempt (the first run or a rerun of failed tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptSummary {
    /// The process exit code; `None` when it was killed by a signal or never started.
    pub exit_code: Option<i32>,
    /// Wall-clock time of the attempt.
    pub duration_ms: u64,
    /// Outcome counts of the attempt.
    pub counts: TestCounts,
}

/// The policy decision as it appears in a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRecord {
    /// Whether the request was allowed.
    pub allowed: bool,
    /// Why, in words a person can act on.
    pub reason: String,
    /// The policy rules that decided it.
    pub matched_rules: Vec<String>,
}

/// What an agent needs to make its next attempt: compact, bounded, actionable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryContext {
    /// The class of the failure.
    pub failure_class: FailureClass,
    /// Failing test ids (at most [`RetryContext::MAX_FAILED_TESTS`]).
    pub failed_tests: Vec<String>,
    /// Distinct, short error messages, most informative first (at most
    /// [`RetryContext::MAX_ERROR_MESSAGES`]).
    pub error_messages: Vec<String>,
    /// What to try next.
    pub suggestion: String,
    /// The test that was running when the deadline hit, if known.
    pub timed_out_test: Option<String>,
}

impl RetryContext {
    /// Bound on [`RetryContext::failed_tests`].
    pub const MAX_FAILED_TESTS: usize = 10;
    /// Bound on [`RetryContext::error_messages`].
    pub const MAX_ERROR_MESSAGES: usize = 5;
    /// Bound on the length of each error message, in characters.
    pub const MAX_MESSAGE_CHARS: usize = 300;
}

/// The result of `warden verify`: the contract's JSON document, `schema_version` 1.
///
/// Unknown keys are accepted when reading, so newer Warden versions can add fields that older
/// readers (such as `warden classify`) ignore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Always [`VerifyReport::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Overall status.
    pub status: RunStatus,
    /// Why it did not simply pass; `None` when it passed cleanly.
    pub failure_class: Option<FailureClass>,
    /// The policy decision.
    pub decision: DecisionRecord,
    /// The target as the agent asked for it.
    pub target: String,
    /// The normalised, root-relative target that was run (`None` when denied).
    pub resolved_target: Option<String>,
    /// A hash of the working tree the tests saw.
    pub fingerprint: Option<String>,
    /// Exit code of the first attempt.
    pub exit_code: Option<i32>,
    /// Wall-clock time of the whole verification.
    pub duration_ms: u64,
    /// Outcome counts of the first attempt.
    pub counts: TestCounts,
    /// Per-test results of the first attempt.
    pub tests: Vec<TestResult>,
    /// The test that was running when the deadline hit.
    pub timed_out_test: Option<String>,
    /// Tests that failed and then passed on the same code.
    pub flaky_tests: Vec<String>,
    /// Captured standard output of the first attempt.
    pub stdout: CapturedStream,
    /// Captured standard error of the first attempt.
    pub stderr: CapturedStream,
    /// Every attempt in order.
    pub attempts: Vec<AttemptSummary>,
    /// What the agent should do next; `None` when it passed cleanly.
    pub retry_context: Option<RetryContext>,
    /// The Python interpreter the tests ran with, and why it was chosen; absent when nothing
    /// ran. *(extension)*
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<InterpreterChoice>,
    /// What confined the first attempt; absent when nothing ran or it ran unconfined.
    /// *(extension)*
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxReport>,
}

/// Which Python interpreter a run used, and why. *(extension)*
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterpreterChoice {
    /// The program run: an absolute path, a path relative to the root, or a name looked up on
    /// `PATH`.
    pub path: String,
    /// Where it came from: `policy`, `option` (`--python`), `warden_python` (the environment
    /// variable), `virtual_env` (an active virtualenv), `root_venv` (`.venv` or `venv` in the
    /// root), or `default` (`python3`).
    pub source: String,
    /// The choice in words, e.g. "the root's .venv (no interpreter named by the policy,
    /// --python, WARDEN_PYTHON or VIRTUAL_ENV)".
    pub reason: String,
}

/// The sandbox a run had (the report's `sandbox` object). *(extension)*
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxReport {
    /// `required` or `best-effort`.
    pub mode: String,
    /// Every protection asked for was in force.
    pub enforced: bool,
    /// The Landlock ABI of the file-system rules; `None`: no Landlock.
    pub landlock_abi: Option<u32>,
    /// Landlock scopes in force (`signal`, `abstract_unix_socket`).
    pub scopes: Vec<String>,
    /// Namespaces in force (`user`, `mount`, `pid`, `net`).
    pub namespaces: Vec<String>,
    /// `none`, `loopback` or `host`.
    pub network: String,
    /// Per-process memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// Processes and threads the run may have at once.
    pub processes: Option<u64>,
    /// Largest file a test may write, in bytes.
    pub file_size_bytes: Option<u64>,
    /// Paths kept read-only to the tests.
    pub read_only: Vec<String>,
    /// Protections asked for and not in force (best-effort), each with its reason.
    pub missing: Vec<String>,
    /// Protected paths that were absent and that the run created (a planted policy or
    /// repository); Warden removed them after the run.
    #[serde(default)]
    pub removed: Vec<String>,
}

impl VerifyReport {
    /// The schema version this crate writes.
    pub const SCHEMA_VERSION: u32 = 1;

    /// Keys this Warden adds to the contract's document *(extension)*, each present only when
    /// it has a value.
    pub const EXTENSION_KEYS: [&'static str; 2] = ["interpreter", "sandbox"];

    /// The contract's key list for the `verify` document: every key a report serialises to,
    /// in the contract's order, each always present (`null` when it has no value). Keys of
    /// [`VerifyReport::EXTENSION_KEYS`] may follow.
    pub const KEYS: [&'static str; 17] = [
        "schema_version",
        "status",
        "failure_class",
        "decision",
        "target",
        "resolved_target",
        "fingerprint",
        "exit_code",
        "duration_ms",
        "counts",
        "tests",
        "timed_out_test",
        "flaky_tests",
        "stdout",
        "stderr",
        "attempts",
        "retry_context",
    ];
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn failure_classes_serialise_as_the_contract_spells_them() {
        let names: Vec<String> = FailureClass::ALL
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        let expected = [
            "policy_denied",
            "budget_exhausted",
            "infrastructure",
            "test_timeout",
            "syntax_error",
            "collection_error",
            "usage_error",
            "internal_error",
            "interrupted",
            "no_tests",
            "test_failure",
            "test_flake",
        ];
        for (got, want) in names.iter().zip(expected) {
            assert_eq!(got, &format!("\"{want}\""));
        }
        for class in FailureClass::ALL {
            assert_eq!(
                serde_json::to_string(&class).unwrap(),
                format!("\"{class}\"")
            );
            let back: FailureClass = serde_json::from_str(&format!("\"{class}\"")).unwrap();
            assert_eq!(back, class);
        }
    }

    #[test]
    fn unknown_class_is_rejected() {
        assert!(serde_json::from_str::<FailureClass>("\"TestFailure\"").is_err());
        assert!(serde_json::from_str::<FailureClass>("\"flake\"").is_err());
    }

    #[test]
    fn statuses_and_outcomes_round_trip() {
        for s in [
            RunStatus::Passed,
            RunStatus::Failed,
            RunStatus::Timeout,
            RunStatus::Denied,
            RunStatus::Error,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<RunStatus>(&json).unwrap(), s);
        }
        for o in TestOutcome::ALL {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{o}\""));
            assert_eq!(serde_json::from_str::<TestOutcome>(&json).unwrap(), o);
        }
    }

    #[test]
    fn class_status_follows_the_contract() {
        assert_eq!(FailureClass::TestFlake.status(), RunStatus::Passed);
        assert_eq!(FailureClass::TestTimeout.status(), RunStatus::Timeout);
        assert_eq!(FailureClass::PolicyDenied.status(), RunStatus::Denied);
        assert_eq!(FailureClass::Infrastructure.status(), RunStatus::Error);
        assert_eq!(FailureClass::NoTests.status(), RunStatus::Failed);
        assert_eq!(FailureClass::SyntaxError.status(), RunStatus::Failed);
    }

    #[test]
    fn documents_from_before_subtests_still_read_and_tests_without_them_omit_the_key() {
        let counts: TestCounts = serde_json::from_str(
            r#"{"passed": 1, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}"#,
        )
        .unwrap();
        assert_eq!((counts.passed, counts.subtests_passed), (1, 0));
        let test: TestResult = serde_json::from_str(
            r#"{"nodeid": "t.py::a", "outcome": "passed", "message": null, "duration_ms": 1}"#,
        )
        .unwrap();
        assert!(test.subtests.is_empty());
        let json = serde_json::to_value(&test).unwrap();
        assert!(json.get("subtests").is_none(), "{json}");
        let failing = TestResult {
            subtests: vec![SubtestResult {
                description: "[msg] (i=1)".into(),
                outcome: TestOutcome::Failed,
                message: Some("assert 1 == 2".into()),
            }],
            ..test
        };
        let json = serde_json::to_value(&failing).unwrap();
        assert_eq!(
            json["subtests"],
            serde_json::json!([{"description": "[msg] (i=1)", "outcome": "failed", "message": "assert 1 == 2"}])
        );
        let back: TestResult = serde_json::from_value(json).unwrap();
        assert_eq!(back, failing);
    }

    #[test]
    fn counts_serialise_with_every_key() {
        let counts = TestCounts {
            passed: 3,
            errors: 1,
            ..TestCounts::default()
        };
        let json = serde_json::to_value(counts).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "errors",
                "failed",
                "passed",
                "skipped",
                "subtests_failed",
                "subtests_passed",
                "subtests_skipped",
                "subtests_xfailed",
                "xfailed",
                "xpassed"
            ]
        );
        assert_eq!(counts.failures(), 1);
        assert_eq!(counts.total(), 4);
    }

    fn outcome() -> impl Strategy<Value = TestOutcome> {
        prop::sample::select(TestOutcome::ALL.to_vec())
    }

    fn test_result() -> impl Strategy<Value = TestResult> {
        (
            "[a-z_/]{1,20}\\.py::[a-z_]{1,10}(\\[[^\\]]{0,5}\\])?",
            outcome(),
            prop::option::of(any::<String>()),
            prop::option::of(any::<u64>()),
        )
            .prop_map(|(nodeid, outcome, message, duration_ms)| TestResult {
                nodeid,
                outcome,
                message,
                duration_ms,
                subtests: Vec::new(),
            })
    }

    fn stream() -> impl Strategy<Value = CapturedStream> {
        (any::<String>(), any::<u64>(), any::<bool>(), "[0-9a-f]{64}").prop_map(
            |(text, total_bytes, truncated, sha256)| CapturedStream {
                text,
                total_bytes,
                truncated,
                sha256,
            },
        )
    }

    fn report() -> impl Strategy<Value = VerifyReport> {
        (
            prop::sample::select(FailureClass::ALL.to_vec()),
            prop::option::of("[0-9a-f]{16}"),
            prop::collection::vec(test_result(), 0..8),
            stream(),
            stream(),
            any::<bool>(),
        )
            .prop_map(|(class, fingerprint, tests, stdout, stderr, with_retry)| {
                let counts = TestCounts::of(&tests);
                let retry_context = with_retry.then(|| RetryContext {
                    failure_class: class,
                    failed_tests: tests.iter().map(|t| t.nodeid.clone()).take(10).collect(),
                    error_messages: vec!["AssertionError: assert 1 == 2".into()],
                    suggestion: "fix it".into(),
                    timed_out_test: None,
                });
                VerifyReport {
                    schema_version: VerifyReport::SCHEMA_VERSION,
                    status: class.status(),
                    failure_class: Some(class),
                    decision: DecisionRecord {
                        allowed: true,
                        reason: "allowed".into(),
                        matched_rules: vec!["allow-pytest".into()],
                    },
                    target: "runtime/tests".into(),
                    resolved_target: Some("runtime/tests".into()),
                    fingerprint,
                    exit_code: Some(1),
                    duration_ms: 12,
                    counts,
                    tests,
                    timed_out_test: None,
                    flaky_tests: vec![],
                    stdout,
                    stderr,
                    attempts: vec![AttemptSummary {
                        exit_code: Some(1),
                        duration_ms: 12,
                        counts,
                    }],
                    retry_context,
                    interpreter: None,
                    sandbox: None,
                }
            })
    }

    proptest! {
        #[test]
        fn reports_round_trip_through_json(report in report()) {
            let json = serde_json::to_string(&report).unwrap();
            let back: VerifyReport = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, report);
        }

        #[test]
        fn counts_of_results_sum_to_their_number(tests in prop::collection::vec(test_result(), 0..32)) {
            let counts = TestCounts::of(&tests);
            prop_assert_eq!(counts.total(), tests.len() as u64);
            let failing = tests.iter().filter(|t| t.outcome.is_failure()).count() as u64;
            prop_assert_eq!(counts.failures(), failing);
        }
    }

    #[test]
    fn report_has_every_contract_key() {
        let report = VerifyReport {
            schema_version: 1,
            status: RunStatus::Passed,
            failure_class: None,
            decision: DecisionRecord::default(),
            target: "t".into(),
            resolved_target: None,
            fingerprint: None,
            exit_code: None,
            duration_ms: 0,
            counts: TestCounts::default(),
            tests: vec![],
            timed_out_test: None,
            flaky_tests: vec![],
            stdout: CapturedStream::default(),
            stderr: CapturedStream::default(),
            attempts: vec![],
            retry_context: None,
            interpreter: None,
            sandbox: None,
        };
        let json = serde_json::to_value(&report).unwrap();
        let keys: BTreeSet<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let contract: BTreeSet<&str> = VerifyReport::KEYS.into_iter().collect();
        assert_eq!(contract.len(), 17, "the contract names 17 distinct keys");
        assert_eq!(keys, contract, "the serialised keys are the contract's");
        let text = serde_json::to_string(&report).unwrap();
        let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        assert!(
            VerifyReport::KEYS.windows(2).all(|w| at(w[0]) < at(w[1])),
            "written in the contract's order: {text}"
        );
        assert!(json["failure_class"].is_null());
        assert!(json["retry_context"].is_null());
    }
}
