//! Orchestrates a verification: policy, governed run, flake reruns, classification, retry
//! context, budget and evidence ledger.
//!
//! The crate's job is `warden verify` as a library: [`Mission::verify`] takes a
//! [`VerifyRequest`] (a target, extra pytest arguments, an optional shorter timeout and fewer
//! retries) and returns a [`Verification`]: the contract's report, the evidence of every
//! attempt, the ledger record and the contract's exit code. It goes through the policy facade
//! (`warden-governance-api`) first, runs tests only through the executor's
//! [`Runner`](warden_executor::Runner) within the mission's budget, reruns failed tests to tell
//! flakes from failures, and lets the classifier decide, with history streamed in. See
//! [`mission`] for every decision it makes on the way.
//!
//! ```
//! use std::sync::Arc;
//! use warden_build_mission::{Mission, VerifyRequest};
//! use warden_executor::PytestRunner;
//! use warden_governance_api::{Policy, Root};
//! use warden_taxonomy::{FailureClass, RunStatus};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("runtime/tests"))?;
//! std::fs::write(dir.path().join("runtime/tests/test_a.py"), "def test_a():\n    pass\n")?;
//! let root = Root::new(dir.path())?;
//!
//! // An interpreter that does not exist, so this example runs without Python; with a real one
//! // (`PytestRunner::new()` finds it) the same call runs pytest.
//! let runner = PytestRunner::new().with_python("/nonexistent/python3");
//! let mut mission = Mission::new(root, Policy::builtin())
//!     .with_runner(Arc::new(runner))
//!     .with_mission_id(Some("fix-issue-42".into()));
//!
//! // The built-in policy runs tests only inside runtime/tests: nothing runs, exit 3.
//! let denied = mission.verify(&VerifyRequest::new("src"), std::iter::empty()).await?;
//! assert_eq!(denied.report.failure_class, Some(FailureClass::PolicyDenied));
//! assert_eq!(denied.exit_code(), 3);
//! assert!(denied.attempts.is_empty());
//!
//! // Allowed, but Python is missing: an infrastructure error (exit 5) that says what to do.
//! let v = mission.verify(&VerifyRequest::new("runtime/tests"), std::iter::empty()).await?;
//! assert_eq!(v.report.status, RunStatus::Error);
//! assert_eq!(v.exit_code(), 5);
//! println!("{}", v.report.retry_context.as_ref().map_or("", |c| &c.suggestion));
//!
//! // Both verifications are evidence, in the ledger under the root, with the mission id.
//! let ledger = mission.ledger().expect("a ledger by default");
//! assert!(ledger.verify()?.is_intact());
//! assert_eq!(ledger.mission_spent("fix-issue-42")?.as_secs(), 0);
//! assert_eq!(v.ledger_entry.as_ref().and_then(|e| e.mission.as_deref()), Some("fix-issue-42"));
//! # Ok(())
//! # }
//! ```
//!
//! `examples/agent_loop.rs` is a whole agent loop around it, run against `examples/demo`.
//!
//! The rest of the crate keeps the evidence of verifications and ties their results to the code
//! they ran on:
//!
//! - [`mission`]: the orchestration itself ([`Mission`], [`VerifyRequest`], [`Verification`],
//!   [`MissionError`]).
//! - [`ledger`]: the append-only, hash-chained evidence ledger ([`Ledger`]), with a streaming
//!   chain check ([`Ledger::verify`]) and streaming readers for statistics and classifier
//!   history ([`Ledger::entries`], [`Ledger::history`]).
//! - [`fingerprint`](mod@fingerprint): the hash of the working tree the tests saw
//!   ([`fingerprint()`]), so that a test passing and failing on the *same* code can be told
//!   from a regression.
//! - [`stats`]: the success metrics of a ledger ([`LedgerStats`], [`Ledger::stats`]).
//!
//! ```
//! use warden_build_mission::{ChainReport, FingerprintOptions, Ledger, fingerprint};
//! # use warden_taxonomy::*;
//! # let report = |fingerprint: &str| VerifyReport {
//! #     schema_version: VerifyReport::SCHEMA_VERSION, status: RunStatus::Passed,
//! #     failure_class: None, decision: DecisionRecord::default(), target: "tests".into(),
//! #     resolved_target: Some("tests".into()), fingerprint: Some(fingerprint.into()),
//! #     exit_code: Some(0), duration_ms: 12, counts: TestCounts::default(), tests: vec![],
//! #     timed_out_test: None, flaky_tests: vec![], stdout: CapturedStream::default(),
//! #     stderr: CapturedStream::default(), attempts: vec![], retry_context: None,
//! #     interpreter: None, sandbox: None,
//! # };
//! let root = tempfile::tempdir()?;
//! std::fs::write(root.path().join("test_a.py"), "def test_a():\n    assert True\n")?;
//! let tree = fingerprint(root.path(), &FingerprintOptions::default())?;
//! assert_eq!(tree.len(), 64);
//!
//! // Warden's own files are not part of the code under test.
//! let ledger = Ledger::new(root.path().join(".warden/ledger.jsonl"));
//! let first = ledger.append(&report(&tree))?;
//! let second = ledger.append(&report(&tree))?;
//! assert_eq!(second.prev, first.hash);
//! assert_eq!(fingerprint(root.path(), &FingerprintOptions::default())?, tree);
//!
//! assert_eq!(
//!     ledger.verify()?,
//!     ChainReport::Intact { records: 2, head: Some(second.hash.clone()) }
//! );
//! for run in ledger.history()? {
//!     assert_eq!(run?.fingerprint.as_deref(), Some(tree.as_str()));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod changes;
pub mod fingerprint;
pub mod governance;
pub mod history;
pub mod ledger;
pub mod mission;
mod report;
mod scope;
pub mod stats;
pub mod warden_dir;

pub use fingerprint::{FingerprintError, FingerprintOptions, fingerprint};
pub use governance::load_governance;
pub use history::{History, HistoryError, read_report};
pub use ledger::{
    ChainReport, Entries, Ledger, LedgerEntry, LedgerError, LedgerHistory, LedgerHistoryIter,
    Tamper,
};
pub use mission::{
    BYTECODE_CACHE_PATH, MAX_RERUN_TESTS, Mission, MissionError, Verification, VerifyRequest,
};
pub use report::exit_code_for;
pub use stats::{ClassCounts, FlakyTest, LedgerStats, StatusCounts, TestTime};
