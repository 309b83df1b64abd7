//! Success metrics from the evidence ledger: how often the agent's verifications pass, time
//! out or flake, which tests flake most, and how much test time they took.
//!
//! [`Ledger::stats`] reads the ledger in one streaming pass, checking the hash chain as it goes,
//! and [`LedgerStats::from_entries`] computes the same numbers from records already in hand.
//! Memory does not grow with the number of records: the tally is a fixed set of counters plus
//! the per-test flake counts, which are capped (see [Bounded memory](#bounded-memory)).
//! `Display` renders a compact table for people; `Serialize` gives the JSON form.
//!
//! ```
//! use warden_build_mission::{Ledger, LedgerStats};
//! # use warden_taxonomy::*;
//! # let report = |status: RunStatus, failure_class: Option<FailureClass>, flaky: &[&str]| VerifyReport {
//! #     schema_version: VerifyReport::SCHEMA_VERSION, status, failure_class,
//! #     decision: DecisionRecord::default(), target: "runtime/tests".into(),
//! #     resolved_target: Some("runtime/tests".into()), fingerprint: None, exit_code: Some(0),
//! #     duration_ms: 250, counts: TestCounts::default(), tests: vec![], timed_out_test: None,
//! #     flaky_tests: flaky.iter().map(|t| t.to_string()).collect(),
//! #     stdout: CapturedStream::default(), stderr: CapturedStream::default(),
//! #     attempts: vec![AttemptSummary { exit_code: Some(0), duration_ms: 200, counts: TestCounts::default() }],
//! #     retry_context: None,
//! #     interpreter: None,
//! #     sandbox: None,
//! # };
//! let dir = tempfile::tempdir()?;
//! let ledger = Ledger::new(dir.path().join(".warden/ledger.jsonl"));
//! ledger.append(&report(RunStatus::Passed, None, &[]))?;
//! ledger.append(&report(RunStatus::Passed, Some(FailureClass::TestFlake), &["t.py::test_x"]))?;
//! ledger.append(&report(RunStatus::Denied, Some(FailureClass::PolicyDenied), &[]))?;
//!
//! let stats: LedgerStats = ledger.stats()?;
//! assert_eq!((stats.runs, stats.executed_runs), (3, 2));
//! assert_eq!(stats.pass_rate, Some(1.0)); // the denied run ran nothing: not in the denominator
//! assert_eq!(stats.flake_rate, Some(0.5));
//! assert_eq!(stats.flakiest_tests[0].nodeid, "t.py::test_x");
//! assert_eq!(stats.failure_classes.get(FailureClass::PolicyDenied), 1);
//! assert_eq!(stats.test_time.total_ms, 500);
//! assert!(stats.to_string().contains("flake rate"));
//! assert_eq!(serde_json::to_value(&stats)?["schema_version"], 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Definitions
//!
//! Every record of the ledger is one *run* (one `warden verify`). A run *ran tests* when pytest
//! was started: its status is `passed`, `failed` or `timeout`. Denied runs (policy or budget)
//! and `error` runs (Python or pytest could not be started) ran nothing, so they are counted in
//! `runs`, `by_status` and `failure_classes` but left out of every rate's denominator and of
//! the test time: they say nothing about the code under test.
//!
//! - `pass_rate` = runs with status `passed` / runs that ran tests. A flake counts as passed,
//!   as in `warden verify` (every failing test passed again on the same code).
//! - `timeout_rate` = runs with status `timeout` / runs that ran tests.
//! - `flake_rate` = `flaky_runs` / runs that ran tests, where a *flaky run* ran tests and is
//!   classified `test_flake` or lists at least one of `flaky_tests` (a run can fail for real
//!   and still expose a flaky test).
//! - `flakiest_tests`: the [`LedgerStats::FLAKIEST_TESTS`] tests listed in `flaky_tests` by the
//!   most runs that ran tests (a test listed twice in one run counts once), most first, ties
//!   broken by node id in byte order.
//! - `test_time.total_ms`: the sum of `duration_ms` (the whole verification, reruns
//!   included) over runs that ran tests; `test_time.attempts_ms`: the sum of every attempt's
//!   `duration_ms` (time inside pytest processes) over the same runs;
//!   `test_time.mean_run_ms`: `total_ms` / runs that ran tests, rounded to the nearest
//!   millisecond. Sums saturate at `u64::MAX` rather than wrap.
//! - `first_ts_ms`, `last_ts_ms`: the append time of the first and the last record in chain
//!   order (not the minimum and maximum: clocks can step backwards).
//!
//! A rate whose denominator is 0 is `null` (shown as `-`), never `NaN`.
//!
//! # JSON shape
//!
//! `schema_version` 1. Every key is always present and in this order; `failure_classes` has
//! all twelve classes, in [`FailureClass::ALL`] order, with zeros; rates are fractions between
//! 0 and 1 (not percentages) or `null`.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "runs": int,
//!   "executed_runs": int,
//!   "torn_tail": bool,
//!   "first_ts_ms": int|null,
//!   "last_ts_ms": int|null,
//!   "by_status": {"passed": int, "failed": int, "timeout": int, "denied": int, "error": int},
//!   "failure_classes": {"policy_denied": int, "budget_exhausted": int, "infrastructure": int,
//!                       "test_timeout": int, "syntax_error": int, "collection_error": int,
//!                       "usage_error": int, "internal_error": int, "interrupted": int,
//!                       "no_tests": int, "test_failure": int, "test_flake": int},
//!   "pass_rate": float|null,
//!   "timeout_rate": float|null,
//!   "flaky_runs": int,
//!   "flake_rate": float|null,
//!   "flakiest_tests": [{"nodeid": str, "flaky_runs": int}],
//!   "distinct_flaky_tests": int,
//!   "untracked_flaky_observations": int,
//!   "test_time": {"total_ms": int, "attempts_ms": int, "mean_run_ms": int|null}
//! }
//! ```
//!
//! - `executed_runs`: runs that ran tests, the denominator of the three rates.
//! - `torn_tail`: the ledger ends with a torn line (an append interrupted by a crash). It is
//!   not a record, so it is not counted; the records before it are intact, and the next
//!   append removes it. A break anywhere in the chain is an error instead (see
//!   [`Ledger::stats`]).
//! - `failure_classes` counts runs by their `failure_class`; runs that passed cleanly have none,
//!   so the classes sum to `runs` minus those.
//! - `distinct_flaky_tests`: how many distinct tests the tally is counting (at most
//!   [`LedgerStats::MAX_TRACKED_FLAKY_TESTS`]).
//! - `untracked_flaky_observations`: flaky (run, test) pairs left uncounted because the
//!   tracked set was full; 0 unless the cap was reached (see below).
//!
//! # Bounded memory
//!
//! The counters are fixed in number, except the per-test flake counts. Those are exact for the
//! first [`LedgerStats::MAX_TRACKED_FLAKY_TESTS`] distinct flaky tests, holding at most
//! [`LedgerStats::MAX_TRACKED_FLAKY_TEST_BYTES`] bytes of node ids, in the order the ledger
//! first shows them flaky. Once either cap is reached, tests already tracked keep being
//! counted exactly, and a test first seen flaky afterwards is not tracked: each of its
//! observations adds 1 to `untracked_flaky_observations`. The counts in `flakiest_tests` are
//! therefore never overestimated, and a non-zero `untracked_flaky_observations` says that the
//! ranking may miss tests that only began flaking late. Run-level numbers (`flaky_runs`,
//! `flake_rate`) are always exact.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::time::{Duration, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use warden_taxonomy::{FailureClass, RunStatus, VerifyReport};

use crate::ledger::{Ledger, LedgerEntry, LedgerError};

/// The success metrics of a ledger; see the [module documentation](self) for the definition
/// of each field and the JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerStats {
    /// Always [`LedgerStats::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Records in the ledger.
    pub runs: u64,
    /// Runs in which pytest was started (status `passed`, `failed` or `timeout`).
    pub executed_runs: u64,
    /// Whether the ledger ends with a torn line left by an interrupted append (not counted).
    pub torn_tail: bool,
    /// Append time of the first record, Unix milliseconds.
    pub first_ts_ms: Option<u64>,
    /// Append time of the last record, Unix milliseconds.
    pub last_ts_ms: Option<u64>,
    /// Runs per status.
    pub by_status: StatusCounts,
    /// Runs per failure class, every class present.
    pub failure_classes: ClassCounts,
    /// Passed runs / executed runs; `None` when no run ran tests.
    pub pass_rate: Option<f64>,
    /// Timed-out runs / executed runs; `None` when no run ran tests.
    pub timeout_rate: Option<f64>,
    /// Executed runs classified `test_flake` or listing flaky tests.
    pub flaky_runs: u64,
    /// Flaky runs / executed runs; `None` when no run ran tests.
    pub flake_rate: Option<f64>,
    /// The tests flaky in the most runs, at most [`LedgerStats::FLAKIEST_TESTS`].
    pub flakiest_tests: Vec<FlakyTest>,
    /// Distinct flaky tests counted (at most [`LedgerStats::MAX_TRACKED_FLAKY_TESTS`]).
    pub distinct_flaky_tests: u64,
    /// Flaky (run, test) pairs not counted because the tracked set was full.
    pub untracked_flaky_observations: u64,
    /// Time spent by the runs that ran tests.
    pub test_time: TestTime,
}

/// Runs per [`RunStatus`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Runs that passed (flakes included).
    pub passed: u64,
    /// Runs that failed.
    pub failed: u64,
    /// Runs stopped at their deadline.
    pub timeout: u64,
    /// Runs refused by policy or budget.
    pub denied: u64,
    /// Runs Warden could not start.
    pub error: u64,
}

impl StatusCounts {
    /// The count for one status.
    pub fn get(&self, status: RunStatus) -> u64 {
        match status {
            RunStatus::Passed => self.passed,
            RunStatus::Failed => self.failed,
            RunStatus::Timeout => self.timeout,
            RunStatus::Denied => self.denied,
            RunStatus::Error => self.error,
        }
    }

    fn record(&mut self, status: RunStatus) {
        let slot = match status {
            RunStatus::Passed => &mut self.passed,
            RunStatus::Failed => &mut self.failed,
            RunStatus::Timeout => &mut self.timeout,
            RunStatus::Denied => &mut self.denied,
            RunStatus::Error => &mut self.error,
        };
        *slot += 1;
    }
}

/// Runs per [`FailureClass`]; serialises as an object with every class, in
/// [`FailureClass::ALL`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts([u64; FailureClass::ALL.len()]);

impl ClassCounts {
    /// The count for one class.
    pub fn get(&self, class: FailureClass) -> u64 {
        self.iter()
            .find_map(|(c, n)| (c == class).then_some(n))
            .unwrap_or(0)
    }

    /// Every class with its count, in [`FailureClass::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (FailureClass, u64)> + '_ {
        FailureClass::ALL.into_iter().zip(self.0.iter().copied())
    }

    fn record(&mut self, class: FailureClass) {
        for (slot, c) in self.0.iter_mut().zip(FailureClass::ALL) {
            if c == class {
                *slot += 1;
            }
        }
    }
}

impl Serialize for ClassCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (class, count) in self.iter() {
            map.serialize_entry(class.as_str(), &count)?;
        }
        map.end()
    }
}

/// A test and the number of runs in which it was flaky.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlakyTest {
    /// pytest's node id.
    pub nodeid: String,
    /// Runs that ran tests and listed it among their flaky tests.
    pub flaky_runs: u64,
}

/// Time spent by the runs that ran tests, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TestTime {
    /// Sum of the runs' `duration_ms` (whole verifications, reruns included).
    pub total_ms: u64,
    /// Sum of every attempt's `duration_ms` (time inside pytest processes).
    pub attempts_ms: u64,
    /// `total_ms` / executed runs, rounded; `None` when no run ran tests.
    pub mean_run_ms: Option<u64>,
}

impl LedgerStats {
    /// The version of the JSON shape this crate writes.
    pub const SCHEMA_VERSION: u32 = 1;
    /// How many tests [`LedgerStats::flakiest_tests`] lists at most.
    pub const FLAKIEST_TESTS: usize = 10;
    /// How many distinct flaky tests the tally counts at most (see the module documentation).
    pub const MAX_TRACKED_FLAKY_TESTS: usize = 4096;
    /// How many bytes of node ids the tally keeps at most (see the module documentation).
    pub const MAX_TRACKED_FLAKY_TEST_BYTES: usize = 1024 * 1024;

    /// Computes the metrics from records, oldest first, in one pass. Pure: it reads nothing
    /// and checks no chain (use [`Ledger::stats`] for a ledger file); `torn_tail` is false.
    pub fn from_entries<I>(entries: I) -> LedgerStats
    where
        I: IntoIterator,
        I::Item: Borrow<LedgerEntry>,
    {
        let mut tally = Tally::new(Caps::DEFAULT);
        for entry in entries {
            tally.add(entry.borrow());
        }
        tally.finish(false)
    }
}

impl Ledger {
    /// The ledger's success metrics, computed in one streaming pass that checks the hash
    /// chain as it reads (memory bounded as the [module documentation](crate::stats)
    /// describes). A missing file has no runs.
    ///
    /// A torn final line is tolerated and reported as [`LedgerStats::torn_tail`]. Any other
    /// break in the chain is [`LedgerError::Damaged`], naming the first bad record's line:
    /// metrics over a ledger that cannot be trusted would be evidence of nothing.
    pub fn stats(&self) -> Result<LedgerStats, LedgerError> {
        let mut entries = self.entries()?;
        let mut tally = Tally::new(Caps::DEFAULT);
        for entry in entries.by_ref() {
            tally.add(&entry?);
        }
        Ok(tally.finish(entries.torn_tail().is_some()))
    }
}

/// Bounds on the per-test flake counts.
#[derive(Debug, Clone, Copy)]
struct Caps {
    tests: usize,
    bytes: usize,
}

impl Caps {
    const DEFAULT: Caps = Caps {
        tests: LedgerStats::MAX_TRACKED_FLAKY_TESTS,
        bytes: LedgerStats::MAX_TRACKED_FLAKY_TEST_BYTES,
    };
}

/// The running counters of one pass over a ledger.
#[derive(Debug)]
struct Tally {
    caps: Caps,
    runs: u64,
    executed_runs: u64,
    first_ts_ms: Option<u64>,
    last_ts_ms: Option<u64>,
    by_status: StatusCounts,
    failure_classes: ClassCounts,
    flaky_runs: u64,
    flaky_tests: HashMap<String, u64>,
    flaky_test_bytes: usize,
    untracked_flaky_observations: u64,
    total_ms: u64,
    attempts_ms: u64,
}

impl Tally {
    fn new(caps: Caps) -> Tally {
        Tally {
            caps,
            runs: 0,
            executed_runs: 0,
            first_ts_ms: None,
            last_ts_ms: None,
            by_status: StatusCounts::default(),
            failure_classes: ClassCounts::default(),
            flaky_runs: 0,
            flaky_tests: HashMap::new(),
            flaky_test_bytes: 0,
            untracked_flaky_observations: 0,
            total_ms: 0,
            attempts_ms: 0,
        }
    }

    fn add(&mut self, entry: &LedgerEntry) {
        let report = &entry.report;
        self.runs += 1;
        self.first_ts_ms.get_or_insert(entry.ts_ms);
        self.last_ts_ms = Some(entry.ts_ms);
        self.by_status.record(report.status);
        if let Some(class) = report.failure_class {
            self.failure_classes.record(class);
        }
        if !ran_tests(report) {
            return;
        }
        self.executed_runs += 1;
        self.total_ms = self.total_ms.saturating_add(report.duration_ms);
        for attempt in &report.attempts {
            self.attempts_ms = self.attempts_ms.saturating_add(attempt.duration_ms);
        }
        if report.failure_class == Some(FailureClass::TestFlake) || !report.flaky_tests.is_empty() {
            self.flaky_runs += 1;
        }
        // A test listed twice in one run was still flaky in only one run.
        let mut flaky: Vec<&str> = report.flaky_tests.iter().map(String::as_str).collect();
        flaky.sort_unstable();
        flaky.dedup();
        for nodeid in flaky {
            self.count_flaky(nodeid);
        }
    }

    fn count_flaky(&mut self, nodeid: &str) {
        if let Some(count) = self.flaky_tests.get_mut(nodeid) {
            *count += 1;
        } else if self.flaky_tests.len() < self.caps.tests
            && self.flaky_test_bytes + nodeid.len() <= self.caps.bytes
        {
            self.flaky_test_bytes += nodeid.len();
            self.flaky_tests.insert(nodeid.to_owned(), 1);
        } else {
            self.untracked_flaky_observations += 1;
        }
    }

    fn finish(self, torn_tail: bool) -> LedgerStats {
        let executed = self.executed_runs;
        let mut ranked: Vec<(&String, &u64)> = self.flaky_tests.iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let flakiest_tests = ranked
            .into_iter()
            .take(LedgerStats::FLAKIEST_TESTS)
            .map(|(nodeid, &flaky_runs)| FlakyTest {
                nodeid: nodeid.clone(),
                flaky_runs,
            })
            .collect();
        LedgerStats {
            schema_version: LedgerStats::SCHEMA_VERSION,
            runs: self.runs,
            executed_runs: executed,
            torn_tail,
            first_ts_ms: self.first_ts_ms,
            last_ts_ms: self.last_ts_ms,
            by_status: self.by_status,
            failure_classes: self.failure_classes,
            pass_rate: ratio(self.by_status.passed, executed),
            timeout_rate: ratio(self.by_status.timeout, executed),
            flaky_runs: self.flaky_runs,
            flake_rate: ratio(self.flaky_runs, executed),
            flakiest_tests,
            distinct_flaky_tests: self.flaky_tests.len() as u64,
            untracked_flaky_observations: self.untracked_flaky_observations,
            test_time: TestTime {
                total_ms: self.total_ms,
                attempts_ms: self.attempts_ms,
                mean_run_ms: (executed > 0).then(|| {
                    let mean = (u128::from(self.total_ms) + u128::from(executed) / 2)
                        / u128::from(executed);
                    u64::try_from(mean).unwrap_or(u64::MAX)
                }),
            },
        }
    }
}

/// Whether pytest was started: the run's numbers say something about the code under test.
fn ran_tests(report: &VerifyReport) -> bool {
    matches!(
        report.status,
        RunStatus::Passed | RunStatus::Failed | RunStatus::Timeout
    )
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Width of the table's label column.
const LABEL: usize = 18;
/// Width of the table's (right-aligned) value column.
const VALUE: usize = 10;

impl fmt::Display for LedgerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runs == 0 {
            writeln!(f, "no runs recorded")?;
        } else {
            self.fmt_summary(f)?;
            writeln!(f)?;
            row(f, "failure class", "runs", "")?;
            for (class, count) in self.failure_classes.iter() {
                row(f, class.as_str(), count, "")?;
            }
            writeln!(f)?;
            self.fmt_flakiest(f)?;
        }
        if self.untracked_flaky_observations > 0 {
            writeln!(
                f,
                "note: {} flaky observations of tests beyond the first {} distinct were not \
                 ranked",
                self.untracked_flaky_observations, self.distinct_flaky_tests
            )?;
        }
        if self.torn_tail {
            writeln!(
                f,
                "note: the ledger ends with a torn line (an interrupted append); it is not \
                 counted, and the next append removes it"
            )?;
        }
        Ok(())
    }
}

impl LedgerStats {
    fn fmt_summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let executed = self.executed_runs;
        let of = |part: u64| format!("{part} of {executed}");
        row(f, "runs", self.runs, "")?;
        row(f, "  ran tests", executed, "passed, failed or timeout")?;
        for status in [
            RunStatus::Passed,
            RunStatus::Failed,
            RunStatus::Timeout,
            RunStatus::Denied,
            RunStatus::Error,
        ] {
            row(f, &format!("  {status}"), self.by_status.get(status), "")?;
        }
        row(
            f,
            "pass rate",
            percent(self.pass_rate),
            &of(self.by_status.passed),
        )?;
        row(
            f,
            "timeout rate",
            percent(self.timeout_rate),
            &of(self.by_status.timeout),
        )?;
        row(
            f,
            "flake rate",
            percent(self.flake_rate),
            &of(self.flaky_runs),
        )?;
        row(
            f,
            "test time",
            millis(self.test_time.total_ms),
            "runs that ran tests",
        )?;
        row(
            f,
            "  in pytest",
            millis(self.test_time.attempts_ms),
            "all attempts, reruns included",
        )?;
        let mean = self.test_time.mean_run_ms.map_or("-".to_owned(), millis);
        row(f, "  mean per run", mean, "")?;
        if let (Some(first), Some(last)) = (self.first_ts_ms, self.last_ts_ms) {
            row(f, "first record", timestamp(first), "")?;
            row(f, "last record", timestamp(last), "")?;
        }
        Ok(())
    }

    fn fmt_flakiest(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.flakiest_tests.is_empty() {
            return writeln!(f, "flakiest tests: none");
        }
        let header = format!("flakiest tests ({} distinct)", self.distinct_flaky_tests);
        // The widest name plus a gap, so a long id never runs into its count.
        let width = self
            .flakiest_tests
            .iter()
            .map(|t| t.nodeid.chars().count())
            .chain([header.chars().count()])
            .max()
            .map_or(LABEL, |widest| (widest + 2).max(LABEL));
        writeln!(f, "{header:<width$}{:>VALUE$}", "flaky runs")?;
        for test in &self.flakiest_tests {
            writeln!(f, "{:<width$}{:>VALUE$}", test.nodeid, test.flaky_runs)?;
        }
        Ok(())
    }
}

/// One table row: label, right-aligned value, and an optional note (no trailing spaces).
fn row(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    value: impl fmt::Display,
    note: &str,
) -> fmt::Result {
    write!(f, "{label:<LABEL$}{:>VALUE$}", value.to_string())?;
    if note.is_empty() {
        writeln!(f)
    } else {
        writeln!(f, "  {note}")
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// Milliseconds below ten seconds, seconds with one decimal above.
fn millis(ms: u64) -> String {
    if ms < 10_000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// RFC 3339 in UTC, or raw milliseconds for a time RFC 3339 cannot show (after year 9999).
fn timestamp(ts_ms: u64) -> String {
    let mut text = String::new();
    let formatted = UNIX_EPOCH
        .checked_add(Duration::from_millis(ts_ms))
        .is_some_and(|time| write!(text, "{}", humantime::format_rfc3339_millis(time)).is_ok());
    if formatted {
        text
    } else {
        format!("{ts_ms} ms after the Unix epoch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::ChainReport;
    use serde_json::json;
    use warden_taxonomy::{
        AttemptSummary, CapturedStream, DecisionRecord, TestCounts, TestOutcome, TestResult,
    };

    /// A report with the given status, class, wall-clock time, attempt times and flaky tests.
    fn report(
        status: RunStatus,
        failure_class: Option<FailureClass>,
        duration_ms: u64,
        attempts_ms: &[u64],
        flaky_tests: &[&str],
    ) -> VerifyReport {
        let tests = vec![TestResult {
            nodeid: "runtime/tests/test_a.py::test_ok".into(),
            outcome: TestOutcome::Passed,
            message: None,
            duration_ms: Some(1),
            subtests: Vec::new(),
        }];
        let counts = TestCounts::of(&tests);
        let ran = !matches!(status, RunStatus::Denied);
        VerifyReport {
            schema_version: VerifyReport::SCHEMA_VERSION,
            status,
            failure_class,
            decision: DecisionRecord {
                allowed: ran,
                reason: "test".into(),
                matched_rules: vec![],
            },
            target: "runtime/tests".into(),
            resolved_target: ran.then(|| "runtime/tests".into()),
            fingerprint: None,
            exit_code: None,
            duration_ms,
            counts,
            tests,
            timed_out_test: None,
            flaky_tests: flaky_tests.iter().map(|t| (*t).to_owned()).collect(),
            stdout: CapturedStream::default(),
            stderr: CapturedStream::default(),
            attempts: attempts_ms
                .iter()
                .map(|&duration_ms| AttemptSummary {
                    exit_code: Some(0),
                    duration_ms,
                    counts,
                })
                .collect(),
            retry_context: None,
            interpreter: None,
            sandbox: None,
        }
    }

    const B: &str = "runtime/tests/test_a.py::test_b";
    const C: &str = "runtime/tests/test_a.py::test_c[1]";

    /// One run of each kind: pass, fail (exposing a flaky test too), flake, timeout, denied,
    /// infrastructure error.
    fn mixed_reports() -> Vec<VerifyReport> {
        vec![
            report(RunStatus::Passed, None, 100, &[90], &[]),
            report(
                RunStatus::Failed,
                Some(FailureClass::TestFailure),
                200,
                &[150, 40],
                &[B],
            ),
            report(
                RunStatus::Passed,
                Some(FailureClass::TestFlake),
                300,
                &[120, 130],
                &[C, B, B],
            ),
            report(
                RunStatus::Timeout,
                Some(FailureClass::TestTimeout),
                5000,
                &[4990],
                &[],
            ),
            report(
                RunStatus::Denied,
                Some(FailureClass::PolicyDenied),
                7,
                &[],
                &[],
            ),
            report(
                RunStatus::Error,
                Some(FailureClass::Infrastructure),
                3,
                &[2],
                &[],
            ),
        ]
    }

    fn ledger_with(reports: &[VerifyReport]) -> (tempfile::TempDir, Ledger, Vec<LedgerEntry>) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join(".warden/ledger.jsonl"));
        let entries = reports.iter().map(|r| ledger.append(r).unwrap()).collect();
        (dir, ledger, entries)
    }

    fn entry(ts_ms: u64, report: VerifyReport) -> LedgerEntry {
        LedgerEntry {
            version: 1,
            seq: 1,
            ts_ms,
            prev: String::new(),
            mission: None,
            report,
            hash: String::new(),
        }
    }

    #[test]
    fn every_metric_of_a_mixed_ledger() {
        let (_dir, ledger, entries) = ledger_with(&mixed_reports());
        let stats = ledger.stats().unwrap();

        assert_eq!(stats.schema_version, 1);
        assert_eq!(stats.runs, 6);
        assert_eq!(stats.executed_runs, 4);
        assert!(!stats.torn_tail);
        assert_eq!(stats.first_ts_ms, Some(entries[0].ts_ms));
        assert_eq!(stats.last_ts_ms, Some(entries[5].ts_ms));
        assert_eq!(
            stats.by_status,
            StatusCounts {
                passed: 2,
                failed: 1,
                timeout: 1,
                denied: 1,
                error: 1,
            }
        );
        for class in FailureClass::ALL {
            let expected = match class {
                FailureClass::TestFailure
                | FailureClass::TestFlake
                | FailureClass::TestTimeout
                | FailureClass::PolicyDenied
                | FailureClass::Infrastructure => 1,
                _ => 0,
            };
            assert_eq!(stats.failure_classes.get(class), expected, "{class}");
        }
        assert_eq!(stats.pass_rate, Some(0.5));
        assert_eq!(stats.timeout_rate, Some(0.25));
        assert_eq!(stats.flaky_runs, 2);
        assert_eq!(stats.flake_rate, Some(0.5));
        assert_eq!(
            stats.flakiest_tests,
            [
                FlakyTest {
                    nodeid: B.into(),
                    flaky_runs: 2,
                },
                FlakyTest {
                    nodeid: C.into(),
                    flaky_runs: 1,
                },
            ]
        );
        assert_eq!(stats.distinct_flaky_tests, 2);
        assert_eq!(stats.untracked_flaky_observations, 0);
        assert_eq!(
            stats.test_time,
            TestTime {
                total_ms: 100 + 200 + 300 + 5000,
                attempts_ms: 90 + 150 + 40 + 120 + 130 + 4990,
                mean_run_ms: Some(1400),
            }
        );

        // The pure form agrees with the streaming one on the same records.
        assert_eq!(LedgerStats::from_entries(&entries), stats);
    }

    #[test]
    fn json_has_the_documented_shape_in_order() {
        let entries: Vec<LedgerEntry> = mixed_reports()
            .into_iter()
            .enumerate()
            .map(|(i, r)| entry(1_700_000_000_000 + i as u64, r))
            .collect();
        let stats = LedgerStats::from_entries(entries);
        let value = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            value,
            json!({
                "schema_version": 1,
                "runs": 6,
                "executed_runs": 4,
                "torn_tail": false,
                "first_ts_ms": 1_700_000_000_000u64,
                "last_ts_ms": 1_700_000_000_005u64,
                "by_status": {"passed": 2, "failed": 1, "timeout": 1, "denied": 1, "error": 1},
                "failure_classes": {
                    "policy_denied": 1, "budget_exhausted": 0, "infrastructure": 1,
                    "test_timeout": 1, "syntax_error": 0, "collection_error": 0,
                    "usage_error": 0, "internal_error": 0, "interrupted": 0, "no_tests": 0,
                    "test_failure": 1, "test_flake": 1
                },
                "pass_rate": 0.5,
                "timeout_rate": 0.25,
                "flaky_runs": 2,
                "flake_rate": 0.5,
                "flakiest_tests": [
                    {"nodeid": B, "flaky_runs": 2},
                    {"nodeid": C, "flaky_runs": 1}
                ],
                "distinct_flaky_tests": 2,
                "untracked_flaky_observations": 0,
                "test_time": {"total_ms": 5600, "attempts_ms": 5520, "mean_run_ms": 1400}
            })
        );

        // `Value` sorts keys; the text itself must follow the documented order.
        let text = serde_json::to_string(&stats).unwrap();
        let positions = |keys: &[&str]| -> Vec<usize> {
            keys.iter()
                .map(|k| text.find(&format!("\"{k}\":")).unwrap())
                .collect()
        };
        let top = positions(&[
            "schema_version",
            "runs",
            "executed_runs",
            "torn_tail",
            "first_ts_ms",
            "last_ts_ms",
            "by_status",
            "failure_classes",
            "pass_rate",
            "timeout_rate",
            "flaky_runs",
            "flake_rate",
            "flakiest_tests",
            "distinct_flaky_tests",
            "untracked_flaky_observations",
            "test_time",
        ]);
        assert!(top.is_sorted(), "{text}");
        let classes: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
        assert!(positions(&classes).is_sorted(), "{text}");
    }

    #[test]
    fn an_empty_or_missing_ledger_has_no_runs_and_no_rates() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Ledger::new(dir.path().join("absent.jsonl"))
            .stats()
            .unwrap();
        assert_eq!(stats, LedgerStats::from_entries(Vec::<LedgerEntry>::new()));
        assert_eq!(stats.runs, 0);
        assert_eq!((stats.first_ts_ms, stats.last_ts_ms), (None, None));
        assert_eq!(
            (stats.pass_rate, stats.timeout_rate, stats.flake_rate),
            (None, None, None)
        );
        assert_eq!(stats.test_time.mean_run_ms, None);
        assert_eq!(stats.failure_classes.iter().count(), 12);
        assert!(stats.failure_classes.iter().all(|(_, n)| n == 0));
        let value = serde_json::to_value(&stats).unwrap();
        assert!(value["pass_rate"].is_null());
        assert!(value["first_ts_ms"].is_null());
        assert_eq!(stats.to_string(), "no runs recorded\n");
    }

    #[test]
    fn only_denied_runs_leave_every_rate_undefined() {
        let stats = LedgerStats::from_entries([
            entry(
                1,
                report(
                    RunStatus::Denied,
                    Some(FailureClass::PolicyDenied),
                    4,
                    &[],
                    &[],
                ),
            ),
            entry(
                2,
                report(
                    RunStatus::Denied,
                    Some(FailureClass::BudgetExhausted),
                    1,
                    &[],
                    &[],
                ),
            ),
        ]);
        assert_eq!((stats.runs, stats.executed_runs), (2, 0));
        assert_eq!(stats.by_status.denied, 2);
        assert_eq!(stats.failure_classes.get(FailureClass::BudgetExhausted), 1);
        assert_eq!(stats.pass_rate, None);
        assert_eq!(stats.test_time, TestTime::default());
        let table = stats.to_string();
        assert!(
            table.contains("pass rate                  -  0 of 0\n"),
            "{table}"
        );
    }

    #[test]
    fn a_tampered_ledger_is_an_error_naming_the_record() {
        let (_dir, ledger, _) = ledger_with(&mixed_reports());
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        let tampered = text.replacen("\"duration_ms\":200,", "\"duration_ms\":2,", 1);
        assert_ne!(tampered, text);
        std::fs::write(ledger.path(), tampered).unwrap();

        let err = ledger.stats().unwrap_err();
        assert!(
            matches!(
                &err,
                LedgerError::Damaged {
                    report: ChainReport::Tampered {
                        line: 2,
                        seq: 2,
                        ..
                    },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn a_torn_tail_is_tolerated_and_flagged() {
        let (_dir, ledger, entries) = ledger_with(&mixed_reports()[..2]);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(ledger.path())
            .unwrap();
        std::io::Write::write_all(&mut file, b"{\"version\":1,\"seq\":3,\"ts_ms\":").unwrap();
        drop(file);

        let stats = ledger.stats().unwrap();
        assert!(stats.torn_tail);
        assert_eq!(stats.runs, 2);
        assert_eq!(stats.last_ts_ms, Some(entries[1].ts_ms));
        assert_eq!(serde_json::to_value(&stats).unwrap()["torn_tail"], true);
        assert!(
            stats
                .to_string()
                .contains("note: the ledger ends with a torn line")
        );

        // The next append cuts the torn line off, and the flag goes away.
        ledger.append(&mixed_reports()[0]).unwrap();
        let stats = ledger.stats().unwrap();
        assert!(!stats.torn_tail);
        assert_eq!(stats.runs, 3);
    }

    #[test]
    fn flakiest_tests_are_the_top_ten_ties_by_node_id() {
        // Test `tNN` is flaky in `NN % 4 + 1` runs: many ties across twelve tests.
        let names: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
        let runs: Vec<LedgerEntry> = (0..4)
            .map(|round| {
                let flaky: Vec<&str> = names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 4 >= round)
                    .map(|(_, n)| n.as_str())
                    .collect();
                entry(
                    round as u64,
                    report(
                        RunStatus::Passed,
                        Some(FailureClass::TestFlake),
                        1,
                        &[1],
                        &flaky,
                    ),
                )
            })
            .collect();
        let stats = LedgerStats::from_entries(&runs);
        let ranked: Vec<(&str, u64)> = stats
            .flakiest_tests
            .iter()
            .map(|t| (t.nodeid.as_str(), t.flaky_runs))
            .collect();
        assert_eq!(
            ranked,
            [
                ("t03", 4),
                ("t07", 4),
                ("t11", 4),
                ("t02", 3),
                ("t06", 3),
                ("t10", 3),
                ("t01", 2),
                ("t05", 2),
                ("t09", 2),
                ("t00", 1),
            ]
        );
        assert_eq!(stats.distinct_flaky_tests, 12);
        assert_eq!(stats.flaky_runs, 4);
    }

    #[test]
    fn the_tracked_set_is_capped_by_count_and_by_bytes() {
        let flaky = |ts: u64, tests: &[&str]| {
            entry(
                ts,
                report(
                    RunStatus::Passed,
                    Some(FailureClass::TestFlake),
                    1,
                    &[1],
                    tests,
                ),
            )
        };
        let mut tally = Tally::new(Caps {
            tests: 2,
            bytes: 1024,
        });
        for e in [
            flaky(1, &["a", "b"]),
            flaky(2, &["c", "a"]),
            flaky(3, &["c", "b", "d"]),
        ] {
            tally.add(&e);
        }
        let stats = tally.finish(false);
        assert_eq!(stats.distinct_flaky_tests, 2);
        assert_eq!(stats.untracked_flaky_observations, 3); // c twice, d once
        assert_eq!(stats.flaky_runs, 3);
        let ranked: Vec<(&str, u64)> = stats
            .flakiest_tests
            .iter()
            .map(|t| (t.nodeid.as_str(), t.flaky_runs))
            .collect();
        assert_eq!(ranked, [("a", 2), ("b", 2)]);
        assert!(stats.to_string().contains(
            "note: 3 flaky observations of tests beyond the first 2 distinct were not ranked"
        ));

        let mut tally = Tally::new(Caps {
            tests: 10,
            bytes: 5,
        });
        tally.add(&flaky(1, &["abc", "de", "fgh"]));
        tally.add(&flaky(2, &["de"]));
        let stats = tally.finish(false);
        // Sorted within the run: "abc" (3 bytes) fits, "de" (5 in all) fits, "fgh" does not.
        assert_eq!(stats.distinct_flaky_tests, 2);
        assert_eq!(stats.untracked_flaky_observations, 1);
        assert_eq!(stats.flakiest_tests[0].nodeid, "de");
    }

    #[test]
    fn the_table_is_aligned_with_one_decimal_percentages() {
        let mut reports = mixed_reports();
        reports.push(report(RunStatus::Passed, None, 12_345, &[12_000], &[]));
        let entries: Vec<LedgerEntry> = reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| entry(1_700_000_000_000 + 1000 * i as u64, r))
            .collect();
        let table = LedgerStats::from_entries(&entries).to_string();
        let expected = "\
runs                       7
  ran tests                5  passed, failed or timeout
  passed                   3
  failed                   1
  timeout                  1
  denied                   1
  error                    1
pass rate              60.0%  3 of 5
timeout rate           20.0%  1 of 5
flake rate             40.0%  2 of 5
test time             17.9 s  runs that ran tests
  in pytest           17.5 s  all attempts, reruns included
  mean per run       3589 ms
first record      2023-11-14T22:13:20.000Z
last record       2023-11-14T22:13:26.000Z

failure class           runs
policy_denied              1
budget_exhausted           0
infrastructure             1
test_timeout               1
syntax_error               0
collection_error           0
usage_error                0
internal_error             0
interrupted                0
no_tests                   0
test_failure               1
test_flake                 1

flakiest tests (2 distinct)         flaky runs
runtime/tests/test_a.py::test_b              2
runtime/tests/test_a.py::test_c[1]           1
";
        assert_eq!(table, expected);
    }

    #[test]
    fn timestamps_beyond_rfc3339_fall_back_to_milliseconds() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            timestamp(u64::MAX),
            format!("{} ms after the Unix epoch", u64::MAX)
        );
        assert_eq!(
            timestamp(253_402_300_800_000),
            "253402300800000 ms after the Unix epoch"
        );
    }
}
