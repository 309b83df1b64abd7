//! Pure functions from test results and history to a failure class and a retry context.
//!
//! This crate does no I/O. An [`Observation`] holds the facts of one verification (the gate's
//! verdict, an infrastructure failure, a timeout, pytest's exit code, the first attempt's
//! per-test results, run-level diagnostics, the reruns of failed tests and the code
//! fingerprint); [`classify`] turns it, together with earlier runs as [`HistoryRun`]s, into a
//! [`Classification`]: the [`FailureClass`](warden_taxonomy::FailureClass), the flaky and the
//! failed tests, and a bounded [`RetryContext`](warden_taxonomy::RetryContext).
//!
//! A flake is a test that both passed and failed **on the same code**: in a rerun of this
//! verification, or in a history run whose fingerprint equals this one. A test that passed under
//! another fingerprint and fails now is a regression, not a flake; without a fingerprint,
//! history proves nothing. Stored reports are classified again with [`classify_report`].
//!
//! ```
//! use warden_classifier::{classify, HistoryRun, Observation};
//! use warden_taxonomy::{FailureClass, TestOutcome, TestResult};
//!
//! let failing = |nodeid: &str| TestResult {
//!     nodeid: nodeid.into(),
//!     outcome: TestOutcome::Failed,
//!     message: Some("assert 41 == 42".into()),
//!     duration_ms: Some(3),
//!     subtests: Vec::new(),
//! };
//! let now = Observation {
//!     exit_code: Some(1),
//!     tests: vec![failing("tests/test_a.py::test_answer")],
//!     reruns: vec![vec![failing("tests/test_a.py::test_answer")]],
//!     fingerprint: Some("tree-after-edit".into()),
//!     ..Observation::default()
//! };
//! // It passed before the edit: that is a regression, not a flake.
//! let before = HistoryRun {
//!     fingerprint: Some("tree-before-edit".into()),
//!     outcomes: vec![("tests/test_a.py::test_answer".into(), TestOutcome::Passed)],
//! };
//! let verdict = classify(&now, [&before]);
//! assert_eq!(verdict.failure_class, Some(FailureClass::TestFailure));
//! let context = verdict.retry_context.unwrap();
//! assert_eq!(context.failed_tests, ["tests/test_a.py::test_answer"]);
//! assert_eq!(context.error_messages, ["assert 41 == 42"]);
//!
//! // Had it passed on this very tree, it would be a flake.
//! let same_tree = HistoryRun { fingerprint: now.fingerprint.clone(), ..before };
//! assert_eq!(classify(&now, [same_tree]).failure_class, Some(FailureClass::TestFlake));
//! ```

mod classify;
mod context;
mod message;
mod observation;

pub use classify::{Classification, classify, classify_report};
pub use observation::{CollectionFault, Gate, HistoryRun, Observation, TreeChange};
