//! The classifier's inputs: the facts of one verification, and earlier runs as history.

use serde::{Deserialize, Serialize};
use warden_taxonomy::{FailureClass, RunStatus, TestOutcome, TestResult, VerifyReport};

/// Whether the governance gate let the run start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// The request was authorised and within budget; the run went ahead.
    #[default]
    Allowed,
    /// The policy refused the request; nothing ran.
    PolicyDenied,
    /// The mission's test-time budget would have been exceeded; nothing ran.
    BudgetExhausted,
}

/// A failure of the run as a whole, before or instead of per-test results.
///
/// Declared in priority order (the derived `Ord` puts the strongest first): when several
/// apply, the earliest wins. A syntax error is the most specific diagnosis, an interruption the
/// least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionFault {
    /// A test module or conftest does not parse.
    SyntaxError,
    /// A test module could not be collected, typically an import error.
    CollectionError,
    /// pytest rejected its invocation or configuration (exit 4), e.g. a conftest that fails to
    /// import.
    UsageError,
    /// pytest itself crashed (exit 3), or the process ended with a code pytest never uses.
    InternalError,
    /// The run stopped early without a collection error (exit 2, or killed by a signal that was
    /// not Warden's deadline).
    Interrupted,
}

impl CollectionFault {
    /// The failure class this fault is reported as.
    pub const fn class(self) -> FailureClass {
        match self {
            CollectionFault::SyntaxError => FailureClass::SyntaxError,
            CollectionFault::CollectionError => FailureClass::CollectionError,
            CollectionFault::UsageError => FailureClass::UsageError,
            CollectionFault::InternalError => FailureClass::InternalError,
            CollectionFault::Interrupted => FailureClass::Interrupted,
        }
    }

    /// The fault a class names, if it is one of the collection-level classes.
    pub const fn from_class(class: FailureClass) -> Option<CollectionFault> {
        match class {
            FailureClass::SyntaxError => Some(CollectionFault::SyntaxError),
            FailureClass::CollectionError => Some(CollectionFault::CollectionError),
            FailureClass::UsageError => Some(CollectionFault::UsageError),
            FailureClass::InternalError => Some(CollectionFault::InternalError),
            FailureClass::Interrupted => Some(CollectionFault::Interrupted),
            _ => None,
        }
    }
}

/// How the working tree changed between the start of the first attempt and the end of the
/// last rerun: what decides whether the reruns' passes were on the same code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeChange {
    /// Nothing changed: every attempt saw the same tree (or there were no reruns).
    #[default]
    Unchanged,
    /// Only files that are neither code nor configuration changed (a counter file, a cache, a
    /// database next to a test), root-relative, sorted: the code is the same, so a rerun's
    /// pass is a flake, and a test that passed only after they were written depends on state
    /// it writes.
    StateWritten(Vec<String>),
    /// Code or configuration changed (these files, root-relative, sorted, at most a few): a
    /// rerun's pass was on other code and proves nothing about the code that failed.
    CodeChanged(Vec<String>),
    /// The tree could not be fingerprinted again, so nothing ties the reruns to the same code.
    Unknown,
}

impl TreeChange {
    /// Whether a rerun's pass is evidence on the same code as the first attempt.
    pub fn same_code(&self) -> bool {
        matches!(self, TreeChange::Unchanged | TreeChange::StateWritten(_))
    }
}

/// Everything the classifier needs to know about one verification.
///
/// Build it from a fresh run's evidence (the executor's facts, field by field) or from a stored
/// report with [`Observation::from_report`]. `Observation::default()` describes a run that was
/// allowed but ended without an exit code, which classifies as
/// [`FailureClass::Interrupted`]: fill in at least `exit_code` and `tests`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Observation {
    /// What the governance gate said.
    pub gate: Gate,
    /// Python or pytest was missing, or the process could not be started.
    pub infrastructure: bool,
    /// The run hit its deadline and was killed.
    pub timed_out: bool,
    /// The test that was running when the deadline hit, if known.
    pub timed_out_test: Option<String>,
    /// pytest's exit code for the first attempt; `None` when killed by a signal or never started.
    pub exit_code: Option<i32>,
    /// Per-test results of the first attempt, collection errors included (an `error` entry whose
    /// node id names a file or directory rather than a test).
    pub tests: Vec<TestResult>,
    /// A run-level fault the executor recognised itself. The classifier also derives faults from
    /// the exit code, the collection-error entries in `tests` and `diagnostics`; the strongest of
    /// all of them wins.
    pub fault: Option<CollectionFault>,
    /// Run-level messages not tied to a test: a conftest import error from stderr, the reason a
    /// request was denied, what is missing for the run to start.
    pub diagnostics: Vec<String>,
    /// Per-test results of each rerun of the failed tests, in order. When they ran on the same
    /// code as the first attempt ([`Observation::tree`]), a test that passes in any of them is
    /// flaky; otherwise they only let the retry context say truthfully what happened.
    pub reruns: Vec<Vec<TestResult>>,
    /// How the tree changed during the verification (default: it did not).
    pub tree: TreeChange,
    /// The fingerprint of the working tree the tests saw; `None` when it could not be computed
    /// (then history cannot prove a flake).
    pub fingerprint: Option<String>,
}

impl Observation {
    /// Rebuilds the facts of a stored `verify` result, for classifying it again offline.
    ///
    /// A report keeps per-test results of the first attempt only; the evidence of its reruns
    /// survives as `flaky_tests` (each of which passed on a rerun, on the same code), so those
    /// become one rerun in which they passed. Facts the report keeps only as its class
    /// (budget exhaustion, infrastructure failure, a run-level fault read from stderr) are taken
    /// from the stored class, together with its retry-context messages, so reclassifying a report
    /// changes only what new evidence (history) can change.
    pub fn from_report(report: &VerifyReport) -> Observation {
        let stored = report.failure_class;
        let gate = if !report.decision.allowed {
            Gate::PolicyDenied
        } else if stored == Some(FailureClass::BudgetExhausted) {
            Gate::BudgetExhausted
        } else {
            Gate::Allowed
        };
        let mut diagnostics = Vec::new();
        if !report.decision.allowed && !report.decision.reason.is_empty() {
            diagnostics.push(report.decision.reason.clone());
        }
        let test_derived = matches!(
            stored,
            Some(FailureClass::TestFailure | FailureClass::TestFlake)
        );
        if let Some(context) = &report.retry_context
            && !test_derived
        {
            diagnostics.extend(context.error_messages.iter().cloned());
        }
        let flaky_passes: Vec<TestResult> = report
            .flaky_tests
            .iter()
            .map(|nodeid| TestResult {
                nodeid: nodeid.clone(),
                outcome: TestOutcome::Passed,
                message: None,
                duration_ms: None,
                subtests: Vec::new(),
            })
            .collect();
        Observation {
            gate,
            infrastructure: stored == Some(FailureClass::Infrastructure),
            timed_out: stored == Some(FailureClass::TestTimeout)
                || report.status == RunStatus::Timeout,
            timed_out_test: report.timed_out_test.clone(),
            exit_code: report.exit_code,
            tests: report.tests.clone(),
            fault: stored.and_then(CollectionFault::from_class),
            diagnostics,
            reruns: if flaky_passes.is_empty() {
                Vec::new()
            } else {
                vec![flaky_passes]
            },
            fingerprint: report.fingerprint.clone(),
            tree: TreeChange::Unchanged,
        }
    }
}

/// One earlier run, as history for telling flakes from regressions.
///
/// Only its fingerprint and the outcomes it saw matter: a test that passed in a run with the
/// same fingerprint as the current one passed on the same code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRun {
    /// The fingerprint of the tree that run saw; `None` proves nothing.
    pub fingerprint: Option<String>,
    /// What each test did in that run (a node id may appear more than once, e.g. a first
    /// failure and a passing rerun).
    pub outcomes: Vec<(String, TestOutcome)>,
}

impl HistoryRun {
    /// The history a stored report contributes: its first-attempt outcomes, plus a pass for each
    /// test it found flaky (those passed on a rerun of the same code).
    pub fn from_report(report: &VerifyReport) -> HistoryRun {
        let outcomes = report
            .tests
            .iter()
            .map(|t| (t.nodeid.clone(), t.outcome))
            .chain(
                report
                    .flaky_tests
                    .iter()
                    .map(|nodeid| (nodeid.clone(), TestOutcome::Passed)),
            )
            .collect();
        HistoryRun {
            fingerprint: report.fingerprint.clone(),
            outcomes,
        }
    }
}
