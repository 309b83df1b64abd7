//! Orchestrates a verification: policy, governed run, flake reruns, classification, retry
//! context, budget and evidence ledger.
//!
//! This crate keeps the evidence of verifications and ties their results to the code they ran
//! on:
//!
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

pub mod fingerprint;
pub mod ledger;
pub mod mission;
mod report;
pub mod stats;

pub use fingerprint::{FingerprintError, FingerprintOptions, fingerprint};
pub use ledger::{
    ChainReport, Entries, Ledger, LedgerEntry, LedgerError, LedgerHistory, LedgerHistoryIter,
    Tamper,
};
pub use mission::{MAX_RERUN_TESTS, Mission, MissionError, Verification, VerifyRequest};
pub use report::exit_code_for;
pub use stats::{ClassCounts, FlakyTest, LedgerStats, StatusCounts, TestTime};
