//! Streaming parsers for pytest's terminal output, fed chunk by chunk as the process writes.
//!
//! [`LineParser`] reads the whole standard output of `pytest -v -ra` (or `-rap`, `-rA`) line by line
//! (each line bounded by [`MAX_LINE_BYTES`]; longer lines are cut for parsing only) and keeps
//! what Warden needs when there are no results records, or to cross-check them: the per-test
//! results of the `-v` progress lines and the short test summary, the final counts line,
//! collection errors, the reason for an interruption, and the test that has started but not
//! finished (the test that was running when a deadline hit).
//!
//! It is built for throughput (it sees every byte a run prints, at gigabytes per second): lines
//! are handed on in place and decoded only when parsed in full, most lines (test output,
//! tracebacks) are dismissed after a few byte comparisons, a result line about the test
//! expected next is matched against its record as bytes (which also finds where the line
//! ends), and a result line allocates only when it names a test not seen before.
//!
//! It is section-aware: result lines count only in the progress section (after `test session
//! starts`) and in the short test summary, so a test's captured output, which pytest prints in
//! the `FAILURES`/`PASSES` sections, cannot pose as a result. A test that writes to the terminal
//! with capture disabled can still print anything; the results records, which never contain test
//! output, are therefore Warden's primary source of per-test results.
//!
//! ```
//! use warden_executor::lines::LineParser;
//! use warden_taxonomy::TestOutcome;
//!
//! let mut parser = LineParser::new();
//! parser.feed(b"============ test session starts ============\n");
//! parser.feed(b"collected 2 items\n\ntests/test_a.py::test_ok PASSED   [ 50%]\n");
//! parser.feed(b"tests/test_a.py::test_hang "); // printed before the test runs; no newline yet
//! assert_eq!(parser.running_test(), Some("tests/test_a.py::test_hang"));
//! parser.finish(); // the process was killed: the stream ends mid-line
//! assert_eq!(parser.running_test(), Some("tests/test_a.py::test_hang"));
//! assert_eq!(parser.tests()[0].outcome, TestOutcome::Passed);
//! assert_eq!(parser.collected(), Some(2));
//! ```

mod progress;
mod splitter;
mod state;
mod stderr;
mod summary;
#[cfg(test)]
mod tests;
mod text;
mod traceback;

use std::collections::HashMap;

use camino::{Utf8Path, Utf8PathBuf};
use warden_taxonomy::{SubtestResult, TestCounts, TestOutcome, TestResult};

use crate::evidence::CollectionError;
use progress::{Progress, parse_progress_line};
pub(crate) use splitter::{LineSink, LineSplitter};
pub(crate) use stderr::StderrScanner;
pub(crate) use text::truncate;
pub(crate) use traceback::ExceptionTracker;

/// Lines longer than this are cut to this many bytes before parsing (the capture still counts
/// and hashes every byte). pytest's own lines are far shorter; only test output is this long.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// Per-run bound on test records kept from the stream; further tests are only counted.
pub(crate) const MAX_TEST_RECORDS: usize = 100_000;

/// Per-run bound on the bytes of node ids and messages kept in test records, by the stream's
/// parser, by the records' reader, and in the merged results: a test can print (or write into
/// the report) any number of distinct long node ids, and the record count alone would let
/// 100 000 of them of 8 KiB each through. Further tests are only counted, as past
/// [`MAX_TEST_RECORDS`]. 4 MiB keeps some 28 000 tests with node ids of 80 bytes (their counts
/// stay exact: they come from pytest's summary line), and Warden's peak RSS under 64 MiB
/// with every copy the results go through (report, ledger record, JSON output).
pub(crate) const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;

/// What a record costs against [`MAX_RECORD_BYTES`] besides its strings (the record itself,
/// its index entry, allocation slack), so that a flood of tiny ids is bounded too.
pub(crate) const RECORD_OVERHEAD_BYTES: usize = 64;

/// Bound on one kept message, in characters.
pub(crate) const MAX_MESSAGE_CHARS: usize = 1_000;

/// Bound on the collection errors kept per run.
pub(crate) const MAX_COLLECTION_ERRORS: usize = 200;

/// Bound on the subtest reports kept per run (each test keeps at most
/// [`warden_taxonomy::MAX_SUBTESTS_KEPT`] of them; the counts count them all).
pub(crate) const MAX_SUBTEST_RECORDS: usize = 1_000;

/// Subtest outcomes by kind (pytest 9's `subtests` fixture, `unittest`'s `subTest`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubtestTally {
    /// Subtests that passed.
    pub passed: u64,
    /// Subtests that failed.
    pub failed: u64,
    /// Subtests that were skipped.
    pub skipped: u64,
    /// Subtests that failed as expected.
    pub xfailed: u64,
}

impl SubtestTally {
    fn record(&mut self, outcome: TestOutcome, n: u64) {
        match outcome {
            TestOutcome::Passed => self.passed += n,
            TestOutcome::Failed | TestOutcome::Error => self.failed += n,
            TestOutcome::Skipped => self.skipped += n,
            TestOutcome::Xfailed | TestOutcome::Xpassed => self.xfailed += n,
        }
    }
}

/// Where in pytest's report a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Before `test session starts` (or output that is not pytest's at all).
    Preamble,
    /// Collection and the `-v` progress lines.
    Progress,
    /// The `ERRORS` section, which explains collection and setup/teardown errors.
    Errors,
    /// `short test summary info`.
    ShortSummary,
    /// Any other section (`FAILURES`, `PASSES`, warnings, ...): test output lives here.
    Other,
}

/// Streaming parser of `pytest -v -ra` standard output. See the [module docs](self).
#[derive(Debug)]
pub struct LineParser {
    splitter: LineSplitter,
    state: State,
}

#[derive(Debug)]
struct State {
    root: Option<Utf8PathBuf>,
    section: Section,
    session_started: bool,
    collected: Option<u64>,
    /// The final line was `--collect-only`'s (`2 tests collected in 0.01s`).
    collect_only: bool,
    tests: Vec<TestResult>,
    /// Record by the hash of its node id (with a per-parser random seed), so that each node
    /// id is stored once, in its record; a lookup compares the record's id.
    index: HashMap<u64, usize, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
    /// The record the next result is likely about: pytest reports tests in the order they ran,
    /// in the progress lines and again in the short summary, so this usually saves a lookup,
    /// and lets the fast path compare a line with just this record.
    next_hint: usize,
    /// Per record: whether its node id, followed by a space, reads back as exactly itself (it
    /// has `::`, no space outside brackets and no bracket left open), so that a result line
    /// naming it can take a fast path that does not search for the node id's end.
    reads_back: Vec<bool>,
    /// Whether the fast paths are taken; tests turn them off to check them against the full
    /// parse.
    #[cfg(test)]
    fast_paths: bool,
    tests_omitted: u64,
    /// Bytes kept in records, against [`MAX_RECORD_BYTES`].
    kept_bytes: usize,
    running: Option<String>,
    summary: Option<TestCounts>,
    interruption: Option<String>,
    internal_error: Option<String>,
    collection_errors: Vec<CollectionError>,
    collecting: Option<(String, ExceptionTracker)>,
    finished: u64,
    failures: u64,
    /// Subtest outcomes on progress lines. A `unittest` `subTest`'s are printed while the
    /// test's output is captured, and so are not among them.
    progress_subtests: SubtestTally,
    /// Subtest outcomes in the short summary (which lists every failing, skipped and xfailed
    /// one, `unittest`'s included), once that section has begun.
    summary_subtests: Option<SubtestTally>,
    /// The failing and xfailed subtests the short summary names, with their test's node id.
    subtest_results: Vec<(String, SubtestResult)>,
}

impl Default for LineParser {
    fn default() -> Self {
        LineParser::new()
    }
}

impl LineParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        LineParser {
            splitter: LineSplitter::default(),
            state: State {
                root: None,
                section: Section::Preamble,
                session_started: false,
                collected: None,
                collect_only: false,
                tests: Vec::new(),
                index: HashMap::default(),
                hasher: foldhash::fast::RandomState::default(),
                next_hint: 0,
                reads_back: Vec::new(),
                #[cfg(test)]
                fast_paths: true,
                tests_omitted: 0,
                kept_bytes: 0,
                running: None,
                summary: None,
                interruption: None,
                internal_error: None,
                collection_errors: Vec::new(),
                collecting: None,
                finished: 0,
                failures: 0,
                progress_subtests: SubtestTally::default(),
                summary_subtests: None,
                subtest_results: Vec::new(),
            },
        }
    }

    /// A parser that reports paths in error messages relative to `root` (the directory pytest
    /// ran in) where it can.
    pub(crate) fn with_root(root: &Utf8Path) -> Self {
        let mut parser = LineParser::new();
        parser.state.root = Some(root.to_owned());
        parser
    }

    /// Feeds the next bytes of the stream, in chunks of any size.
    pub fn feed(&mut self, bytes: &[u8]) {
        let state = &mut self.state;
        self.splitter.feed_to(bytes, state);
        // pytest names a test (`nodeid `) before running it and ends the line only when it
        // finishes: a test is running while its line is still open.
        if state.section == Section::Progress
            && let Some(partial) = self.splitter.partial()
            && let Some(Progress::Started(nodeid)) =
                parse_progress_line(&String::from_utf8_lossy(partial))
            && state.running.as_deref() != Some(nodeid)
        {
            state.running = Some(nodeid.to_owned());
        }
    }

    /// Ends the stream: parses a last unterminated line, such as the node id pytest printed
    /// before a test that never finished.
    pub fn finish(&mut self) {
        let state = &mut self.state;
        self.splitter.finish(|line| state.on_line(line));
        state.close_collect_block();
    }

    /// Per-test results seen so far, in order of first appearance, one per node id (the last
    /// outcome reported for a node id wins). Collection errors appear as `error` results whose
    /// node id is the file that failed to collect.
    pub fn tests(&self) -> &[TestResult] {
        &self.state.tests
    }

    /// Tests seen beyond the record bounds (count and bytes): counted, not kept.
    pub fn tests_omitted(&self) -> u64 {
        self.state.tests_omitted
    }

    /// The counts of pytest's final summary line (`=== 1 failed, 2 passed in 0.1s ===`), once
    /// it has been printed.
    pub fn summary(&self) -> Option<TestCounts> {
        self.state.summary
    }

    /// The test that has started but not yet reported an outcome.
    pub fn running_test(&self) -> Option<&str> {
        self.state.running.as_deref()
    }

    /// The number of tests pytest collected (or selected), once it said so.
    pub fn collected(&self) -> Option<u64> {
        self.state.collected
    }

    /// Whether pytest's final line was `--collect-only`'s (`2 tests collected in 0.01s`): it
    /// collected and ran nothing, by request.
    pub(crate) fn collect_only(&self) -> bool {
        self.state.collect_only
    }

    /// Outcomes reported so far on progress lines (for live progress).
    pub fn finished_count(&self) -> u64 {
        self.state.finished
    }

    /// Failed or errored outcomes reported so far on progress lines.
    pub fn failure_count(&self) -> u64 {
        self.state.failures
    }

    /// Whether pytest printed its `test session starts` header (it got as far as running).
    pub fn session_started(&self) -> bool {
        self.state.session_started
    }

    /// Files that failed to collect, with the error pytest gave.
    pub fn collection_errors(&self) -> &[CollectionError] {
        &self.state.collection_errors
    }

    /// Subtest outcomes of the run: passed ones from pytest's final line (or, without one,
    /// the progress lines), the others from the short summary (or, without one, the progress
    /// lines, which miss `unittest`'s).
    pub fn subtests(&self) -> SubtestTally {
        let state = &self.state;
        let mut tally = state.summary_subtests.unwrap_or(state.progress_subtests);
        tally.passed = match state.summary {
            Some(summary) => summary.subtests_passed,
            None => state.progress_subtests.passed,
        };
        tally
    }

    /// The failing and xfailed subtests the short summary named, with their test's node id,
    /// in the order reported.
    pub(crate) fn subtest_results(&self) -> &[(String, SubtestResult)] {
        &self.state.subtest_results
    }

    /// The text of pytest's `!!! Interrupted: ... !!!` line, if it printed one.
    pub fn interruption(&self) -> Option<&str> {
        self.state.interruption.as_deref()
    }

    /// The exception of an `INTERNALERROR>` report on this stream, if any.
    pub(crate) fn internal_error(&self) -> Option<&str> {
        self.state.internal_error.as_deref()
    }
}
