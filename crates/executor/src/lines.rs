//! Streaming parsers for pytest's terminal output, fed chunk by chunk as the process writes.
//!
//! [`LineParser`] reads the whole standard output of `pytest -v -rA` line by line (each line
//! bounded by [`MAX_LINE_BYTES`]; longer lines are cut for parsing only) and keeps what Warden
//! needs when there is no JUnit report, or to cross-check one: the per-test results of the `-v`
//! progress lines and the `-rA` short summary, the final counts line, collection errors, the
//! reason for an interruption, and the test that has started but not finished (the test that
//! was running when a deadline hit).
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
//! with capture disabled can still print anything; the JUnit report, which never contains test
//! output, is therefore Warden's primary source of per-test results.
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

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::collections::HashMap;

use camino::{Utf8Path, Utf8PathBuf};
use warden_taxonomy::{TestCounts, TestOutcome, TestResult};

use crate::evidence::CollectionError;

/// Lines longer than this are cut to this many bytes before parsing (the capture still counts
/// and hashes every byte). pytest's own lines are far shorter; only test output is this long.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// Per-run bound on test records kept from the stream; further tests are only counted.
pub(crate) const MAX_TEST_RECORDS: usize = 100_000;

/// Bound on one kept message, in characters.
pub(crate) const MAX_MESSAGE_CHARS: usize = 1_000;

/// Bound on the collection errors kept per run.
pub(crate) const MAX_COLLECTION_ERRORS: usize = 200;

/// Splits a byte stream into lines of bounded length.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    overlong: bool,
}

/// One line from a [`LineSplitter`], as bytes (most lines are dismissed or read without
/// being decoded), and the chunk it came in, when it lies in one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub(crate) bytes: &'a [u8],
    chunk: Option<Chunk<'a>>,
}

/// A chunk fed to a [`LineSplitter`], with what is known of it as text.
#[derive(Debug, Clone, Copy)]
struct Chunk<'a> {
    bytes: &'a [u8],
    text: &'a ChunkText<'a>,
    /// Where the line starts in it.
    start: usize,
}

/// Checking a whole chunk for UTF-8 in one pass is much quicker per byte than line by line,
/// but a waste when few of its lines are decoded (most lines are not): lines are decoded one
/// by one until they add up to an eighth of their chunk, and then the chunk is, once.
#[derive(Debug, Default)]
struct ChunkText<'a> {
    /// The chunk's longest valid UTF-8 prefix (a line end is always a character boundary).
    whole: OnceCell<&'a str>,
    /// Bytes decoded line by line so far.
    by_line: Cell<usize>,
}

impl<'a> Line<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Line { bytes, chunk: None }
    }

    /// The line as text, invalid UTF-8 replaced.
    pub(crate) fn text(&self) -> Cow<'a, str> {
        if let Some(Chunk { bytes, text, start }) = self.chunk {
            let whole = match text.whole.get() {
                Some(whole) => Some(*whole),
                None if text.by_line.get() >= bytes.len() / 8 => {
                    Some(*text.whole.get_or_init(|| valid_prefix(bytes)))
                }
                None => {
                    text.by_line.set(text.by_line.get() + self.bytes.len());
                    None
                }
            };
            if let Some(line) = whole.and_then(|whole| whole.get(start..start + self.bytes.len())) {
                return Cow::Borrowed(line);
            }
        }
        String::from_utf8_lossy(self.bytes)
    }
}

/// What a [`LineSplitter`] hands lines to.
pub(crate) trait LineSink {
    /// Takes whole the line at the start of `rest` (what is left of a chunk), if it can tell
    /// where the line ends without a search: returns the line's length with its `\n`, having
    /// handled it as [`LineSink::on_line`] would have handled the line.
    fn take_line(&mut self, _rest: &[u8]) -> Option<usize> {
        None
    }

    /// Handles a line (without its `\n` or `\r\n`).
    fn on_line(&mut self, line: Line<'_>);
}

impl<F: FnMut(Line<'_>)> LineSink for F {
    fn on_line(&mut self, line: Line<'_>) {
        self(line)
    }
}

impl LineSplitter {
    /// Feeds bytes, calling `on_line` with every complete line (without its `\n` or `\r\n`).
    pub(crate) fn feed(&mut self, bytes: &[u8], mut on_line: impl FnMut(Line<'_>)) {
        self.feed_to(bytes, &mut on_line);
    }

    /// Feeds bytes to `sink`: every complete line, taken whole by the sink or handed on.
    pub(crate) fn feed_to(&mut self, mut bytes: &[u8], sink: &mut impl LineSink) {
        if !self.pending.is_empty() || self.overlong {
            // The line begun in an earlier chunk ends here, if at all.
            let Some(end) = memchr::memchr(b'\n', bytes) else {
                self.append(bytes);
                return;
            };
            self.append(&bytes[..end]);
            sink.on_line(Line::new(strip_cr(&self.pending)));
            self.pending.clear();
            self.overlong = false;
            bytes = &bytes[end + 1..];
        }
        // Lines within the chunk are taken whole or handed on in place, without copying.
        let text = ChunkText::default();
        let mut start = 0;
        while let Some(rest) = bytes.get(start..).filter(|rest| !rest.is_empty()) {
            if let Some(taken) = sink.take_line(rest) {
                start += taken;
                continue;
            }
            let Some(end) = memchr::memchr(b'\n', rest) else {
                break;
            };
            sink.on_line(Line {
                bytes: strip_cr(&rest[..end.min(MAX_LINE_BYTES)]),
                chunk: Some(Chunk {
                    bytes,
                    text: &text,
                    start,
                }),
            });
            start += end + 1;
        }
        self.append(&bytes[start..]);
    }

    /// The line received so far but not yet ended, unless it is too long to be pytest's.
    pub(crate) fn partial(&self) -> Option<&[u8]> {
        (!self.pending.is_empty() && !self.overlong).then_some(self.pending.as_slice())
    }

    /// The unterminated last line, if any (a process killed mid-line leaves one).
    pub(crate) fn finish(&mut self, mut on_line: impl FnMut(Line<'_>)) {
        if !self.pending.is_empty() || self.overlong {
            on_line(Line::new(strip_cr(&self.pending)));
        }
        self.pending.clear();
        self.overlong = false;
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES - self.pending.len();
        if bytes.len() > room {
            self.overlong = true;
        }
        self.pending
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The longest prefix of `bytes` that is valid UTF-8.
fn valid_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // Checked twice, but only in a chunk with invalid UTF-8 or a character cut at its end.
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
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

/// Streaming parser of `pytest -v -rA` standard output. See the [module docs](self).
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
    tests: Vec<TestResult>,
    index: HashMap<String, usize, foldhash::fast::RandomState>,
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
    running: Option<String>,
    summary: Option<TestCounts>,
    interruption: Option<String>,
    internal_error: Option<String>,
    collection_errors: Vec<CollectionError>,
    collecting: Option<(String, ExceptionTracker)>,
    finished: u64,
    failures: u64,
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
                tests: Vec::new(),
                index: HashMap::default(),
                next_hint: 0,
                reads_back: Vec::new(),
                #[cfg(test)]
                fast_paths: true,
                tests_omitted: 0,
                running: None,
                summary: None,
                interruption: None,
                internal_error: None,
                collection_errors: Vec::new(),
                collecting: None,
                finished: 0,
                failures: 0,
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

    /// Tests seen beyond the record bound (counted, not kept).
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

    /// The text of pytest's `!!! Interrupted: ... !!!` line, if it printed one.
    pub fn interruption(&self) -> Option<&str> {
        self.state.interruption.as_deref()
    }

    /// The exception of an `INTERNALERROR>` report on this stream, if any.
    pub(crate) fn internal_error(&self) -> Option<&str> {
        self.state.internal_error.as_deref()
    }
}

impl LineSink for State {
    fn take_line(&mut self, rest: &[u8]) -> Option<usize> {
        #[cfg(test)]
        if !self.fast_paths {
            return None;
        }
        self.take_expected_result_line(rest)
    }

    fn on_line(&mut self, line: Line<'_>) {
        if self.may_matter(line.bytes) {
            self.on_text_line(&line.text());
        }
    }
}

impl State {
    /// The fast path for most lines of a big run: a result line in its common form
    /// (`nodeid PASSED      [ 50%]` in the progress section, `PASSED nodeid` in the short
    /// summary) about the test expected next, as pytest reports tests in the same order in
    /// both, and the short summary repeats the progress lines. Compared with that test's node
    /// id where it reads back (see `reads_back`), the line at the start of `rest` needs no
    /// search for its end (every byte is compared anyway), for the node id's end, or
    /// decoding. Returns the length of the line taken (see [`LineSink::take_line`]); for
    /// every line this takes, the full parse would do the same.
    fn take_expected_result_line(&mut self, rest: &[u8]) -> Option<usize> {
        let hint = self.next_hint;
        let (Some(test), Some(true)) = (self.tests.get(hint), self.reads_back.get(hint)) else {
            return None;
        };
        let nodeid = test.nodeid.as_bytes();
        match self.section {
            Section::Progress => {
                let (outcome, content) = plain_progress_line(rest, nodeid)?;
                let taken = whole_line(rest, content)?;
                self.running = None;
                self.finished += 1;
                if outcome.is_failure() {
                    self.failures += 1;
                }
                self.update(hint, outcome, None, true);
                Some(taken)
            }
            Section::ShortSummary => {
                let (outcome, after) = strip_outcome_word(rest)?;
                let after = after.strip_prefix(b" ")?;
                let named = after.get(..nodeid.len())?;
                if outcome == TestOutcome::Skipped || !same_bytes(named, nodeid) {
                    return None;
                }
                let taken = whole_line(rest, rest.len() - after.len() + nodeid.len())?;
                self.update(hint, outcome, None, false);
                Some(taken)
            }
            _ => None,
        }
    }

    /// Whether `line` can change anything, by a few byte comparisons: most of a stream is test
    /// output, tracebacks or sections Warden does not read, and skips decoding and parsing.
    /// Conservative: `true` for anything the full parse might act on.
    fn may_matter(&self, line: &[u8]) -> bool {
        match line.first() {
            None => return false,
            Some(b'=' | b'!') => return true,
            Some(b'I') if line.starts_with(b"INTERNALERROR> ") => return true,
            Some(_) => {}
        }
        match self.section {
            Section::Preamble | Section::Other => false,
            // A progress line has a node id (with `::`) or ends in a `[ 50%]` indicator.
            Section::Progress => {
                may_end_with_bracket(line)
                    || contains_double_colon(line)
                    || line.starts_with(b"collect")
                    || line.starts_with(b"[gw")
            }
            Section::Errors => self.collecting.is_some() || line[0] == b'_',
            // `PASSED`, `FAILED`, `ERROR`, `XFAIL`, `XPASS` (a `SKIPPED` line names no test).
            Section::ShortSummary => matches!(line[0], b'P' | b'F' | b'E' | b'X'),
        }
    }

    fn on_text_line(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("INTERNALERROR> ") {
            if is_exception_line(rest.trim()) {
                self.internal_error = Some(truncate(rest.trim()));
            }
            return;
        }
        if let Some(title) = banner(line, '=') {
            self.on_section(title);
            return;
        }
        if let Some(text) = banner(line, '!') {
            self.interruption = Some(truncate(text));
            return;
        }
        match self.section {
            Section::Preamble | Section::Other => {}
            Section::Progress => self.on_progress_line(line),
            Section::Errors => self.on_errors_line(line),
            Section::ShortSummary => self.on_short_summary_line(line),
        }
    }

    fn on_section(&mut self, title: &str) {
        self.close_collect_block();
        self.running = None;
        self.section = match title {
            "test session starts" => {
                self.session_started = true;
                Section::Progress
            }
            "ERRORS" => Section::Errors,
            "short test summary info" => Section::ShortSummary,
            _ => {
                if let Some(counts) = parse_summary(title) {
                    self.summary = Some(counts);
                }
                Section::Other
            }
        };
    }

    fn on_progress_line(&mut self, line: &str) {
        if let Some(n) = parse_collected(line) {
            self.collected = Some(n);
            return;
        }
        match parse_progress_line(line) {
            Some(Progress::Started(nodeid)) => self.running = Some(nodeid.to_owned()),
            Some(Progress::Finished {
                nodeid,
                outcome,
                reason,
            }) => {
                let running = self.running.take();
                let Some(nodeid) = nodeid.or(running.as_deref()) else {
                    return;
                };
                self.finished += 1;
                if outcome.is_failure() {
                    self.failures += 1;
                }
                self.record(nodeid, outcome, reason.map(truncate), true);
            }
            None => {}
        }
    }

    fn on_errors_line(&mut self, line: &str) {
        if let Some(title) = banner(line, '_') {
            self.close_collect_block();
            if let Some(path) = title.strip_prefix("ERROR collecting ") {
                self.collecting = Some((path.trim().to_owned(), ExceptionTracker::default()));
            }
            return;
        }
        if let Some((_, tracker)) = &mut self.collecting {
            tracker.feed(line);
        }
    }

    fn close_collect_block(&mut self) {
        let Some((path, tracker)) = self.collecting.take() else {
            return;
        };
        let (message, syntax_error) = tracker.conclude(self.root.as_deref());
        let message = message.unwrap_or_else(|| "collection failure".to_owned());
        self.record(&path, TestOutcome::Error, Some(message.clone()), true);
        self.add_collection_error(CollectionError {
            path: Some(path),
            message,
            syntax_error,
            conftest: false,
        });
    }

    fn add_collection_error(&mut self, error: CollectionError) {
        if let Some(known) = self
            .collection_errors
            .iter_mut()
            .find(|e| e.path == error.path && e.conftest == error.conftest)
        {
            if known.message == "collection failure" {
                *known = error;
            }
            return;
        }
        if self.collection_errors.len() < MAX_COLLECTION_ERRORS {
            self.collection_errors.push(error);
        }
    }

    fn on_short_summary_line(&mut self, line: &str) {
        let Some((word, rest)) = split_at_space(line) else {
            return;
        };
        let Some(outcome) = outcome_word(word) else {
            return;
        };
        if outcome == TestOutcome::Skipped {
            // `SKIPPED [n] path:line: reason` names a location, not a test.
            return;
        }
        let Some(end) = nodeid_end(rest) else {
            return;
        };
        let nodeid = &rest[..end];
        let after = rest[end..].trim_start();
        let message = trim(after.strip_prefix("- ").unwrap_or(after));
        let message = (!message.is_empty()).then(|| truncate(message));
        if !contains_double_colon(nodeid.as_bytes()) {
            if outcome == TestOutcome::Error {
                // A file that failed to collect.
                let message = message.unwrap_or_else(|| "collection failure".to_owned());
                self.record(nodeid, outcome, Some(message.clone()), false);
                self.add_collection_error(CollectionError {
                    path: Some(nodeid.to_owned()),
                    message,
                    syntax_error: false,
                    conftest: false,
                });
            }
            return;
        }
        // The short summary groups lines by outcome, not by time, so it never overrides an
        // outcome seen on a progress line; it adds messages and tests the progress lines missed
        // (e.g. a result glued to output printed with capture disabled).
        self.record(nodeid, outcome, message, false);
    }

    /// Records a result. `authoritative` results (progress lines) replace an earlier outcome
    /// for the same node id (last wins); others only fill in what is missing.
    fn record(
        &mut self,
        nodeid: &str,
        outcome: TestOutcome,
        message: Option<String>,
        authoritative: bool,
    ) {
        let known = match self.tests.get(self.next_hint) {
            Some(test) if test.nodeid == nodeid => Some(self.next_hint),
            _ => self.index.get(nodeid).copied(),
        };
        if let Some(i) = known {
            self.update(i, outcome, message, authoritative);
            return;
        }
        if self.tests.len() >= MAX_TEST_RECORDS {
            self.tests_omitted += 1;
            return;
        }
        self.index.insert(nodeid.to_owned(), self.tests.len());
        self.next_hint = self.tests.len() + 1;
        self.reads_back.push(reads_back(nodeid));
        self.tests.push(TestResult {
            nodeid: nodeid.to_owned(),
            outcome,
            message,
            duration_ms: None,
        });
    }

    /// Records a result for the known test `i` (see [`State::record`]).
    #[inline(always)]
    fn update(
        &mut self,
        i: usize,
        outcome: TestOutcome,
        message: Option<String>,
        authoritative: bool,
    ) {
        self.next_hint = i + 1;
        let test = &mut self.tests[i];
        if authoritative {
            test.outcome = outcome;
            if message.is_some() {
                test.message = message;
            }
        } else if test.message.is_none() && test.outcome == outcome {
            test.message = message;
        }
    }
}

/// One parsed progress line.
#[derive(Debug, PartialEq, Eq)]
enum Progress<'a> {
    /// `nodeid ` printed before the test runs (or followed by the test's own output).
    Started(&'a str),
    /// An outcome; `nodeid` is `None` when the outcome word was glued to test output and
    /// belongs to the running test.
    Finished {
        nodeid: Option<&'a str>,
        outcome: TestOutcome,
        reason: Option<&'a str>,
    },
}

const OUTCOME_WORDS: [(&str, TestOutcome); 6] = [
    ("PASSED", TestOutcome::Passed),
    ("FAILED", TestOutcome::Failed),
    ("ERROR", TestOutcome::Error),
    ("SKIPPED", TestOutcome::Skipped),
    ("XFAIL", TestOutcome::Xfailed),
    ("XPASS", TestOutcome::Xpassed),
];

fn outcome_word(word: &str) -> Option<TestOutcome> {
    OUTCOME_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, o)| *o)
}

/// `runtime/tests/test_a.py::test_x[1] PASSED   [ 50%]`, `... SKIPPED (reason)   [ 60%]`,
/// a bare `nodeid ` (started), pytest-xdist's `[gw0] [ 50%] PASSED nodeid`, or output glued to
/// an outcome: `some output PASSED   [100%]`.
fn parse_progress_line(line: &str) -> Option<Progress<'_>> {
    let line = trim_end(line);
    if let Some(rest) = line.strip_prefix("[gw") {
        return parse_xdist_line(rest);
    }
    let (body, had_progress) = match strip_progress_suffix(line) {
        Some(body) => (body, true),
        None => (line, false),
    };
    if let Some(end) =
        nodeid_end(body).filter(|end| contains_double_colon(&body.as_bytes()[..*end]))
    {
        let nodeid = &body[..end];
        let rest = trim_start(&body[end..]);
        if rest.is_empty() {
            return Some(Progress::Started(nodeid));
        }
        if let Some((outcome, reason)) = leading_outcome(rest) {
            return Some(Progress::Finished {
                nodeid: Some(nodeid),
                outcome,
                reason,
            });
        }
        if had_progress && let Some(outcome) = trailing_outcome(rest) {
            return Some(Progress::Finished {
                nodeid: Some(nodeid),
                outcome,
                reason: None,
            });
        }
        return Some(Progress::Started(nodeid));
    }
    if had_progress && let Some(outcome) = trailing_outcome(body) {
        return Some(Progress::Finished {
            nodeid: None,
            outcome,
            reason: None,
        });
    }
    None
}

fn parse_xdist_line(rest: &str) -> Option<Progress<'_>> {
    // `N] [ 50%] PASSED nodeid`
    let (_, rest) = rest.split_once("] ")?;
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once("] ")?.1,
        None => rest,
    };
    let (word, nodeid) = rest.split_once(' ')?;
    let outcome = outcome_word(word)?;
    let end = nodeid_end(nodeid)?;
    Some(Progress::Finished {
        nodeid: Some(&nodeid[..end]),
        outcome,
        reason: None,
    })
}

/// Strips pytest's right-aligned progress indicator (`[ 50%]` or, in `count` style, `[3/17]`).
fn strip_progress_suffix(line: &str) -> Option<&str> {
    let inner_start = line.bytes().rposition(|b| b == b'[')?;
    let inner = trim(line[inner_start + 1..].strip_suffix(']')?);
    let is_progress = match inner.strip_suffix('%') {
        Some(pct) => !pct.is_empty() && pct.bytes().all(|b| b.is_ascii_digit()),
        None => match inner.split_once('/') {
            Some((a, b)) => {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            }
            None => false,
        },
    };
    is_progress.then(|| trim_end(&line[..inner_start]))
}

/// The outcome of the line `rest` starts with if it is pytest's progress line for `nodeid`
/// in its common form, `nodeid PASSED      [ 50%]`, and how long that is (the line's end is
/// not checked).
///
/// Where `nodeid` [reads back](reads_back), [`parse_progress_line`] reads the same from that
/// line as text (this node id, this outcome, no reason). A line in any other form (with tabs
/// or Unicode spaces, a reason, xdist's prefix, ...) gives `None`, for the full parse.
#[inline(always)]
fn plain_progress_line(rest: &[u8], nodeid: &[u8]) -> Option<(TestOutcome, usize)> {
    if rest.starts_with(b"[gw") {
        return None;
    }
    let (start, after) = rest.split_at_checked(nodeid.len())?;
    if !same_bytes(start, nodeid) {
        return None;
    }
    // Only a space ends the node id (not a tab); more may follow.
    let after = after.strip_prefix(b" ")?;
    let (outcome, after) = strip_outcome_word(&after[leading_spaces(after)..])?;
    // The padding, then the indicator, the percentage right-aligned in three places:
    // `[  5%]`, `[ 50%]`, `[100%]`.
    let padding = leading_spaces(after);
    let [b'[', hundreds, tens, ones, b'%', b']'] = after[padding..].first_chunk::<6>()? else {
        return None;
    };
    let percentage = ones.is_ascii_digit()
        && (tens.is_ascii_digit() || (*tens == b' ' && *hundreds == b' '))
        && (hundreds.is_ascii_digit() || *hundreds == b' ');
    percentage.then_some((outcome, rest.len() - after.len() + padding + 6))
}

/// How many spaces `bytes` start with: counted eight at a time, as pytest pads its progress
/// lines with runs of them.
#[inline(always)]
fn leading_spaces(bytes: &[u8]) -> usize {
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    let mut count = 0;
    while let Some(eight) = bytes[count..].first_chunk::<8>() {
        // The first byte is the least significant.
        let not_spaces = u64::from_le_bytes(*eight) ^ SPACES;
        if not_spaces != 0 {
            return count + not_spaces.trailing_zeros() as usize / 8;
        }
        count += 8;
    }
    count + bytes[count..].iter().take_while(|b| **b == b' ').count()
}

/// The length, with its `\n` or `\r\n`, of the line at the start of `rest` whose content
/// is the first `content` bytes (none of them a `\n`), if it ends right there, and
/// [`LineSplitter`] would not cut it.
#[inline(always)]
fn whole_line(rest: &[u8], content: usize) -> Option<usize> {
    let newline = match rest.get(content..)? {
        [b'\n', ..] => content,
        [b'\r', b'\n', ..] => content + 1,
        _ => return None,
    };
    (newline <= MAX_LINE_BYTES).then_some(newline + 1)
}

/// `a == b`, inlined: for strings as short as node ids a call to `memcmp` costs more than
/// the comparison.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a, b);
    while let (Some((x16, x_rest)), Some((y16, y_rest))) =
        (x.split_first_chunk::<16>(), y.split_first_chunk::<16>())
    {
        if x16 != y16 {
            return false;
        }
        (x, y) = (x_rest, y_rest);
    }
    // The last bytes, as one more block of sixteen (overlapping) where the strings have one.
    match (a.last_chunk::<16>(), b.last_chunk::<16>()) {
        (Some(a16), Some(b16)) => a16 == b16,
        _ => x == y,
    }
}

/// The outcome word `bytes` start with, and the bytes after it: [`outcome_word`] for a word
/// that ends where the bytes given it end.
#[inline(always)]
fn strip_outcome_word(bytes: &[u8]) -> Option<(TestOutcome, &[u8])> {
    // Chosen by the first four letters, then compared whole; literals, as a comparison of
    // known length is a few instructions, not a call.
    let (outcome, rest) = match bytes.first_chunk::<4>()? {
        b"PASS" => (TestOutcome::Passed, bytes.strip_prefix(b"PASSED")),
        b"FAIL" => (TestOutcome::Failed, bytes.strip_prefix(b"FAILED")),
        b"ERRO" => (TestOutcome::Error, bytes.strip_prefix(b"ERROR")),
        b"SKIP" => (TestOutcome::Skipped, bytes.strip_prefix(b"SKIPPED")),
        b"XFAI" => (TestOutcome::Xfailed, bytes.strip_prefix(b"XFAIL")),
        b"XPAS" => (TestOutcome::Xpassed, bytes.strip_prefix(b"XPASS")),
        _ => return None,
    };
    Some((outcome, rest?))
}

/// `PASSED`, `SKIPPED (reason)`, ... at the start of `rest`.
fn leading_outcome(rest: &str) -> Option<(TestOutcome, Option<&str>)> {
    let (word, after) = match split_at_space(rest) {
        Some((w, a)) => (w, trim(a)),
        None => (rest, ""),
    };
    let outcome = outcome_word(word)?;
    if after.is_empty() {
        return Some((outcome, None));
    }
    let reason = after.strip_prefix('(')?.strip_suffix(')')?;
    Some((outcome, Some(reason)))
}

/// An outcome word at the very end of `text` (possibly glued to output before it).
fn trailing_outcome(text: &str) -> Option<TestOutcome> {
    OUTCOME_WORDS
        .iter()
        .find(|(w, _)| text.ends_with(w))
        .map(|(_, o)| *o)
}

/// The end of the node id that starts `text`: the first space outside `[...]` parameter
/// brackets (parameter ids may contain spaces), or the end of `text`.
fn nodeid_end(text: &str) -> Option<usize> {
    match first_space_outside_brackets(text.as_bytes()) {
        Ok(space) => (space > 0).then_some(space),
        Err(_) => (!text.is_empty()).then_some(text.len()),
    }
}

/// Where the first space outside `[...]` brackets is, or else how many brackets the bytes
/// leave open. Byte offsets are char boundaries in UTF-8 text: these bytes are ASCII, which
/// UTF-8 never reuses.
fn first_space_outside_brackets(bytes: &[u8]) -> Result<usize, usize> {
    // The portable (word-at-a-time) search wins on strings this short: no dispatch, inlined.
    let specials = memchr::arch::all::memchr::Three::new(b' ', b'[', b']');
    let mut depth = 0usize;
    for i in specials.iter(bytes) {
        match bytes[i] {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b' ' if depth == 0 => return Ok(i),
            _ => {}
        }
    }
    Err(depth)
}

/// Whether `nodeid` is a test's (with `::`) and reads back as itself from a line that names
/// it followed by a space: [`nodeid_end`] stops right after it, as no space outside brackets
/// comes before and no bracket is left open.
fn reads_back(nodeid: &str) -> bool {
    !nodeid.is_empty()
        && first_space_outside_brackets(nodeid.as_bytes()) == Err(0)
        && contains_double_colon(nodeid.as_bytes())
}

/// Whether `bytes` contain `::` (a node id's separator). A searcher built once beats a scan
/// for `:` even on strings this short.
fn contains_double_colon(bytes: &[u8]) -> bool {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"::"));
    FINDER.find(bytes).is_some()
}

/// Whether `line`, with trailing whitespace trimmed as [`str::trim_end`] does, may end in `]`.
/// A non-ASCII last byte may be Unicode whitespace (or invalid) and so answers `true`.
fn may_end_with_bracket(line: &[u8]) -> bool {
    match line.iter().rev().find(|b| !is_ascii_white_space(**b)) {
        Some(b']') => true,
        Some(b) => !b.is_ascii(),
        None => false,
    }
}

/// The ASCII characters with Unicode's `White_Space` property (what [`str::trim`] removes);
/// unlike [`u8::is_ascii_whitespace`], this includes the vertical tab.
fn is_ascii_white_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// [`str::trim_end`], quicker on the ASCII padding of pytest's lines.
fn trim_end(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    // pytest pads its progress lines with runs of spaces: skip them eight at a time.
    while let Some(word) = end.checked_sub(8).and_then(|start| bytes.get(start..end))
        && word == b"        "
    {
        end -= 8;
    }
    while end > 0 && is_ascii_white_space(bytes[end - 1]) {
        end -= 1;
    }
    if end > 0 && !bytes[end - 1].is_ascii() {
        return text[..end].trim_end();
    }
    &text[..end]
}

/// [`str::trim`], quicker on ASCII.
fn trim(text: &str) -> &str {
    trim_start(trim_end(text))
}

/// [`str::split_once`] at the first space.
fn split_at_space(text: &str) -> Option<(&str, &str)> {
    let i = text.bytes().position(|b| b == b' ')?;
    Some((&text[..i], &text[i + 1..]))
}

/// [`str::trim_start`], quicker on ASCII.
fn trim_start(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() && is_ascii_white_space(bytes[start]) {
        start += 1;
    }
    if start < bytes.len() && !bytes[start].is_ascii() {
        return text[start..].trim_start();
    }
    &text[start..]
}

/// `collected 17 items`, `collecting ... collected 1 item / 2 errors`,
/// `collected 3 items / 1 deselected / 2 selected`.
fn parse_collected(line: &str) -> Option<u64> {
    let rest = line
        .strip_prefix("collecting ... ")
        .unwrap_or(line)
        .strip_prefix("collected ")?;
    let count = leading_number(rest)?;
    let selected = rest.split(" / ").find_map(|part| {
        part.trim()
            .strip_suffix(" selected")
            .and_then(leading_number)
    });
    Some(selected.unwrap_or(count))
}

fn leading_number(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text[..digits].parse().ok()
}

/// The title of a pytest separator line: `=== title ===` (or with `_`, `!`, `-`).
fn banner(line: &str, ch: char) -> Option<&str> {
    if !line.starts_with(ch) {
        return None;
    }
    let line = trim_end(line);
    let inner = line.strip_prefix(ch)?.strip_suffix(ch)?;
    let inner = inner.trim_start_matches(ch).trim_end_matches(ch);
    let title = inner.strip_prefix(' ')?.strip_suffix(' ')?;
    (!title.is_empty()).then_some(title)
}

/// pytest's final counts: `2 failed, 11 passed, 1 skipped, 2 errors in 0.08s` (optionally
/// followed by ` (0:01:02)`), or `no tests ran in 0.01s`.
pub(crate) fn parse_summary(title: &str) -> Option<TestCounts> {
    let (parts, time) = title.rsplit_once(" in ")?;
    let time = time.split(" (").next()?;
    let secs = time.strip_suffix('s')?;
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let mut counts = TestCounts::default();
    if parts == "no tests ran" {
        return Some(counts);
    }
    let mut known = false;
    for part in parts.split(", ") {
        let (n, word) = part.split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        let slot = match word {
            "passed" => &mut counts.passed,
            "failed" => &mut counts.failed,
            "error" | "errors" => &mut counts.errors,
            "skipped" => &mut counts.skipped,
            "xfailed" => &mut counts.xfailed,
            "xpassed" => &mut counts.xpassed,
            // warnings, deselected, reruns, subtests...: not outcomes of tests.
            _ => continue,
        };
        *slot += n;
        known = true;
    }
    known.then_some(counts)
}

/// Follows a traceback and remembers the exception it ends with (pytest's `E   ` lines).
#[derive(Debug, Default)]
pub(crate) struct ExceptionTracker {
    exception: Option<String>,
    syntax_location: Option<(String, String)>,
    first_line: Option<String>,
}

impl ExceptionTracker {
    pub(crate) fn feed(&mut self, line: &str) {
        if let Some(content) = line.strip_prefix('E')
            && content.starts_with([' ', '\t'])
        {
            let content = content.trim();
            if let Some(location) = content.strip_prefix("File \"") {
                if let Some((path, rest)) = location.split_once("\", line ") {
                    let line_no: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    self.syntax_location = Some((path.to_owned(), line_no));
                }
            } else if is_exception_line(content) {
                self.exception = Some(truncate(content));
            }
            return;
        }
        let trimmed = line.trim();
        if self.first_line.is_none() && !trimmed.is_empty() {
            self.first_line = Some(truncate(trimmed));
        }
    }

    /// The error message (the exception line, or the first line of the report) and whether
    /// it is a syntax error.
    pub(crate) fn conclude(self, root: Option<&Utf8Path>) -> (Option<String>, bool) {
        let Some(exception) = self.exception else {
            return (self.first_line, false);
        };
        let name = exception.split(':').next().unwrap_or_default();
        let name = name.rsplit('.').next().unwrap_or(name);
        let syntax = matches!(name, "SyntaxError" | "IndentationError" | "TabError");
        let message = match (syntax, self.syntax_location) {
            (true, Some((path, line))) => {
                let path = relative_to(root, &path);
                truncate(&format!("{exception} ({path}, line {line})"))
            }
            _ => exception,
        };
        (Some(message), syntax)
    }
}

/// `path` relative to `root` when it lies inside it (component-wise), else unchanged.
pub(crate) fn relative_to(root: Option<&Utf8Path>, path: &str) -> String {
    root.and_then(|root| Utf8Path::new(path).strip_prefix(root).ok())
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.to_owned())
}

/// `ValueError: bad`, `ModuleNotFoundError: No module named 'x'`, `pkg.Error: y`,
/// `KeyboardInterrupt`.
pub(crate) fn is_exception_line(content: &str) -> bool {
    let (name, rest) = match content.split_once(':') {
        Some((name, rest)) => (name, Some(rest)),
        None => (content, None),
    };
    let Some(first) = name.chars().next() else {
        return false;
    };
    let identifier = (first.is_ascii_alphabetic() || first == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !identifier || !name.chars().any(|c| c.is_ascii_uppercase()) {
        return false;
    }
    match rest {
        Some(rest) => rest.is_empty() || rest.starts_with(' '),
        None => ["Error", "Exception", "Interrupt", "Exit"]
            .iter()
            .any(|suffix| name.ends_with(suffix)),
    }
}

/// Cuts `text` to [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn truncate(text: &str) -> String {
    let mut out = String::new();
    truncate_into(&mut out, text);
    out
}

/// [`truncate`] into `out`, reusing its allocation.
fn truncate_into(out: &mut String, text: &str) {
    out.clear();
    // No more bytes than the bound means no more characters either.
    let cut = (text.len() > MAX_MESSAGE_CHARS)
        .then(|| text.char_indices().nth(MAX_MESSAGE_CHARS))
        .flatten();
    match cut {
        Some((cut, _)) => {
            out.push_str(&text[..cut]);
            out.push_str("...");
        }
        None => out.push_str(text),
    }
}

/// Scans pytest's standard error for what only appears there: a conftest that failed to load,
/// a missing pytest module, usage errors, and the last line (for crashes).
#[derive(Debug, Default)]
pub(crate) struct StderrScanner {
    splitter: LineSplitter,
    root: Option<Utf8PathBuf>,
    pytest_missing: bool,
    conftest: Option<(String, ExceptionTracker)>,
    conftest_errors: Vec<CollectionError>,
    usage_error: Option<String>,
    internal_error: Option<String>,
    /// The last non-blank line (empty until there is one), reused line after line.
    last_line: String,
}

impl StderrScanner {
    pub(crate) fn with_root(root: &Utf8Path) -> Self {
        StderrScanner {
            root: Some(root.to_owned()),
            ..StderrScanner::default()
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.feed(bytes, |line| self.on_line(&line.text()));
        self.splitter = splitter;
    }

    pub(crate) fn finish(&mut self) {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.finish(|line| self.on_line(&line.text()));
        self.close_conftest();
    }

    fn on_line(&mut self, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        truncate_into(&mut self.last_line, trimmed);
        if trimmed.ends_with("No module named pytest") {
            self.pytest_missing = true;
        }
        if let Some(rest) = trimmed.strip_prefix("ImportError while loading conftest '") {
            self.close_conftest();
            let path = rest.trim_end_matches('.').trim_end_matches('\'');
            let path = relative_to(self.root.as_deref(), path);
            self.conftest = Some((path, ExceptionTracker::default()));
            return;
        }
        if let Some(rest) = trimmed.strip_prefix("INTERNALERROR> ") {
            if is_exception_line(rest.trim()) {
                self.internal_error = Some(truncate(rest.trim()));
            }
            return;
        }
        if self.usage_error.is_none()
            && let Some(rest) = trimmed.strip_prefix("ERROR: ")
        {
            self.usage_error = Some(truncate(rest));
        }
        if let Some((_, tracker)) = &mut self.conftest {
            tracker.feed(line);
        }
    }

    fn close_conftest(&mut self) {
        let Some((path, tracker)) = self.conftest.take() else {
            return;
        };
        let (message, syntax_error) = tracker.conclude(self.root.as_deref());
        if self.conftest_errors.len() < MAX_COLLECTION_ERRORS {
            self.conftest_errors.push(CollectionError {
                path: Some(path),
                message: message.unwrap_or_else(|| "conftest failed to load".to_owned()),
                syntax_error,
                conftest: true,
            });
        }
    }

    pub(crate) fn pytest_missing(&self) -> bool {
        self.pytest_missing
    }

    pub(crate) fn conftest_errors(&self) -> &[CollectionError] {
        &self.conftest_errors
    }

    pub(crate) fn usage_error(&self) -> Option<&str> {
        self.usage_error.as_deref()
    }

    pub(crate) fn internal_error(&self) -> Option<&str> {
        self.internal_error.as_deref()
    }

    pub(crate) fn last_line(&self) -> Option<&str> {
        (!self.last_line.is_empty()).then_some(self.last_line.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> LineParser {
        let mut p = LineParser::new();
        p.feed(text.as_bytes());
        p.finish();
        p
    }

    fn outcomes(p: &LineParser) -> Vec<(String, TestOutcome)> {
        p.tests()
            .iter()
            .map(|t| (t.nodeid.clone(), t.outcome))
            .collect()
    }

    /// Recorded from pytest 9.2 (`-v -rA`) on a file with one test of each kind.
    const MIXED: &str = "\
============================= test session starts ==============================
platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0 -- /venv/bin/python
rootdir: /tmp/exp
collecting ... collected 17 items

runtime/tests/sub/test_b.py::test_b PASSED                               [  5%]
runtime/tests/test_a.py::test_fail FAILED                                [ 17%]
runtime/tests/test_a.py::test_setup_err ERROR                            [ 23%]
runtime/tests/test_a.py::test_teardown_err PASSED                        [ 29%]
runtime/tests/test_a.py::test_teardown_err ERROR                         [ 29%]
runtime/tests/test_a.py::test_skip SKIPPED (not now)                     [ 35%]
runtime/tests/test_a.py::test_xfail XFAIL (known bug)                    [ 41%]
runtime/tests/test_a.py::test_xpass XPASS (maybe fixed)                  [ 47%]
runtime/tests/test_a.py::test_param[a b] PASSED                          [ 64%]
runtime/tests/test_a.py::test_param[e[f]] PASSED                         [ 76%]
runtime/tests/test_a.py::test_param[PASSED x] PASSED                     [ 82%]
runtime/tests/test_a.py::TestOuter::TestInner::test_nested PASSED        [ 88%]
runtime/tests/test_a.py::test_print_disabled out line 1
out PASSED line 2PASSED                      [100%]

==================================== ERRORS ====================================
_______________________ ERROR at setup of test_setup_err _______________________
E       RuntimeError: setup broke
=================================== FAILURES ===================================
__________________________________ test_fail ___________________________________
runtime/tests/test_a.py::test_fake PASSED                                [100%]
==================================== PASSES ====================================
=========================== short test summary info ============================
PASSED runtime/tests/sub/test_b.py::test_b
PASSED runtime/tests/test_a.py::test_teardown_err
PASSED runtime/tests/test_a.py::test_print_disabled
SKIPPED [1] runtime/tests/test_a.py:24: not now
XFAIL runtime/tests/test_a.py::test_xfail - known bug
XPASS runtime/tests/test_a.py::test_xpass - maybe fixed
ERROR runtime/tests/test_a.py::test_setup_err - RuntimeError: setup broke
ERROR runtime/tests/test_a.py::test_teardown_err - RuntimeError: teardown broke
FAILED runtime/tests/test_a.py::test_fail - AssertionError: boom
=== 1 failed, 7 passed, 1 skipped, 1 xfailed, 1 xpassed, 2 errors in 0.08s ====
";

    #[test]
    fn a_recorded_mixed_run_parses_exactly() {
        let p = parse(MIXED);
        let t = "runtime/tests/test_a.py::";
        let expected: Vec<(String, TestOutcome)> = [
            ("runtime/tests/sub/test_b.py::test_b", TestOutcome::Passed),
            (&format!("{t}test_fail"), TestOutcome::Failed),
            (&format!("{t}test_setup_err"), TestOutcome::Error),
            (&format!("{t}test_teardown_err"), TestOutcome::Error),
            (&format!("{t}test_skip"), TestOutcome::Skipped),
            (&format!("{t}test_xfail"), TestOutcome::Xfailed),
            (&format!("{t}test_xpass"), TestOutcome::Xpassed),
            (&format!("{t}test_param[a b]"), TestOutcome::Passed),
            (&format!("{t}test_param[e[f]]"), TestOutcome::Passed),
            (&format!("{t}test_param[PASSED x]"), TestOutcome::Passed),
            (
                &format!("{t}TestOuter::TestInner::test_nested"),
                TestOutcome::Passed,
            ),
            (&format!("{t}test_print_disabled"), TestOutcome::Passed),
        ]
        .iter()
        .map(|(n, o)| (n.to_string(), *o))
        .collect();
        assert_eq!(outcomes(&p), expected);
        assert_eq!(p.collected(), Some(17));
        assert_eq!(p.running_test(), None);
        assert!(p.session_started());
        let summary = p.summary().unwrap();
        assert_eq!(
            (
                summary.failed,
                summary.passed,
                summary.skipped,
                summary.xfailed,
                summary.xpassed,
                summary.errors
            ),
            (1, 7, 1, 1, 1, 2)
        );
        let by_id = |id: &str| p.tests().iter().find(|t| t.nodeid == id).unwrap();
        assert_eq!(
            by_id(&format!("{t}test_skip")).message.as_deref(),
            Some("not now")
        );
        assert_eq!(
            by_id(&format!("{t}test_fail")).message.as_deref(),
            Some("AssertionError: boom")
        );
        assert_eq!(
            by_id(&format!("{t}test_teardown_err")).message.as_deref(),
            Some("RuntimeError: teardown broke")
        );
        // The fake result printed inside FAILURES is test output, not a result.
        assert!(p.tests().iter().all(|t| !t.nodeid.ends_with("test_fake")));
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let whole = parse(MIXED);
        for size in [1, 2, 7, 64, 1000] {
            let mut p = LineParser::new();
            for chunk in MIXED.as_bytes().chunks(size) {
                p.feed(chunk);
            }
            p.finish();
            assert_eq!(p.tests(), whole.tests(), "chunk size {size}");
            assert_eq!(p.summary(), whole.summary());
        }
    }

    #[test]
    fn the_unfinished_test_is_the_running_one() {
        let p = parse(
            "=== test session starts ===\ncollected 2 items\n\n\
             runtime/tests/test_h.py::test_ok PASSED [ 50%]\n\
             runtime/tests/test_h.py::test_hang ",
        );
        assert_eq!(p.running_test(), Some("runtime/tests/test_h.py::test_hang"));
        assert_eq!(p.tests().len(), 1);
        assert_eq!(p.summary(), None);
    }

    #[test]
    fn a_test_is_running_while_its_line_is_open() {
        let mut p = LineParser::new();
        p.feed(b"=== test session starts ===\na.py::test_one ");
        assert_eq!(p.running_test(), Some("a.py::test_one"));
        p.feed(b"PASSED [ 50%]\na.py::test_two");
        assert_eq!(p.running_test(), Some("a.py::test_two"));
        p.feed(b" FAILED [100%]\n");
        assert_eq!(p.running_test(), None);
        assert_eq!((p.finished_count(), p.failure_count()), (2, 1));
    }

    #[test]
    fn a_running_test_with_output_stays_running() {
        let p = parse(
            "=== test session starts ===\n\
             runtime/tests/test_h.py::test_noisy[x y] starting up\nmore output\n",
        );
        assert_eq!(
            p.running_test(),
            Some("runtime/tests/test_h.py::test_noisy[x y]")
        );
    }

    #[test]
    fn collection_errors_are_recognised() {
        let p = parse(
            "=== test session starts ===\ncollecting ... collected 1 item / 2 errors\n\n\
             ==================================== ERRORS ====================================\n\
             __________________ ERROR collecting runtime/tests/test_imp.py __________________\n\
             ImportError while importing test module '/r/runtime/tests/test_imp.py'.\n\
             E   ModuleNotFoundError: No module named 'nope'\n\
             ________________ ERROR collecting runtime/tests/test_syntax.py _________________\n\
             /venv/_pytest/python.py:528: in importtestmodule\n\
             E     File \"/r/runtime/tests/test_syntax.py\", line 1\n\
             E       def test_ok(:\n\
             E                   ^\n\
             E   SyntaxError: invalid syntax\n\
             =========================== short test summary info ============================\n\
             ERROR runtime/tests/test_imp.py\n\
             ERROR runtime/tests/test_syntax.py\n\
             !!!!!!!!!!!!!!!!!!! Interrupted: 2 errors during collection !!!!!!!!!!!!!!!!!!!!\n\
             ============================== 2 errors in 0.23s ===============================\n",
        );
        assert_eq!(
            p.interruption(),
            Some("Interrupted: 2 errors during collection")
        );
        let errors = p.collection_errors();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].path.as_deref(), Some("runtime/tests/test_imp.py"));
        assert_eq!(
            errors[0].message,
            "ModuleNotFoundError: No module named 'nope'"
        );
        assert!(!errors[0].syntax_error);
        assert!(errors[1].syntax_error);
        assert_eq!(
            errors[1].message,
            "SyntaxError: invalid syntax (/r/runtime/tests/test_syntax.py, line 1)"
        );
        assert_eq!(p.summary().unwrap().errors, 2);
        assert_eq!(
            outcomes(&p),
            vec![
                ("runtime/tests/test_imp.py".to_owned(), TestOutcome::Error),
                (
                    "runtime/tests/test_syntax.py".to_owned(),
                    TestOutcome::Error
                ),
            ]
        );
    }

    #[test]
    fn syntax_error_paths_are_made_relative_to_the_root() {
        let mut p = LineParser::with_root(Utf8Path::new("/r"));
        p.feed(
            b"=== ERRORS ===\n___ ERROR collecting t/test_s.py ___\n\
              E     File \"/r/t/test_s.py\", line 3\nE   IndentationError: unexpected indent\n",
        );
        p.finish();
        assert_eq!(
            p.collection_errors()[0].message,
            "IndentationError: unexpected indent (t/test_s.py, line 3)"
        );
        assert!(p.collection_errors()[0].syntax_error);
    }

    #[test]
    fn summary_lines() {
        let c = parse_summary(
            "2 failed, 11 passed, 1 skipped, 1 xfailed, 1 xpassed, 2 errors in 0.08s",
        )
        .unwrap();
        assert_eq!(
            (
                c.failed, c.passed, c.skipped, c.xfailed, c.xpassed, c.errors
            ),
            (2, 11, 1, 1, 1, 2)
        );
        assert_eq!(
            parse_summary("no tests ran in 0.00s"),
            Some(TestCounts::default())
        );
        let c = parse_summary("1 passed, 3 warnings in 61.02s (0:01:01)").unwrap();
        assert_eq!(c.passed, 1);
        assert_eq!(parse_summary("1 error in 0.1s").unwrap().errors, 1);
        assert_eq!(parse_summary("test session starts"), None);
        assert_eq!(parse_summary("FAILURES"), None);
        assert_eq!(parse_summary("3 warnings in 0.1s"), None);
        assert_eq!(parse_summary("lots passed in 1s"), None);
    }

    #[test]
    fn only_the_last_summary_counts() {
        let p = parse("=== 5 passed in 1s ===\n=== 1 failed in 2.5s ===\n");
        assert_eq!(p.summary().unwrap().failed, 1);
        assert_eq!(p.summary().unwrap().passed, 0);
    }

    #[test]
    fn progress_line_forms() {
        use Progress::*;
        assert_eq!(
            parse_progress_line("a.py::t PASSED"),
            Some(Finished {
                nodeid: Some("a.py::t"),
                outcome: TestOutcome::Passed,
                reason: None
            })
        );
        assert_eq!(
            parse_progress_line("a.py::t SKIPPED (no (nested) luck)   [3/17]"),
            Some(Finished {
                nodeid: Some("a.py::t"),
                outcome: TestOutcome::Skipped,
                reason: Some("no (nested) luck")
            })
        );
        assert_eq!(
            parse_progress_line("[gw1] [ 50%] FAILED a.py::t[1 2]"),
            Some(Finished {
                nodeid: Some("a.py::t[1 2]"),
                outcome: TestOutcome::Failed,
                reason: None
            })
        );
        assert_eq!(
            parse_progress_line("noise ERROR        [100%]"),
            Some(Finished {
                nodeid: None,
                outcome: TestOutcome::Error,
                reason: None
            })
        );
        assert_eq!(parse_progress_line("a.py::t "), Some(Started("a.py::t")));
        assert_eq!(parse_progress_line("just output"), None);
        assert_eq!(parse_progress_line("output that says PASSED"), None);
        assert_eq!(parse_progress_line("[ 50%]"), None);
    }

    #[test]
    fn internal_errors_are_noticed() {
        let p = parse(
            "INTERNALERROR> Traceback (most recent call last):\nINTERNALERROR> ValueError: broke\n",
        );
        assert_eq!(p.internal_error(), Some("ValueError: broke"));
    }

    #[test]
    fn overlong_lines_are_cut_but_later_lines_still_parse() {
        let mut text = String::from("=== test session starts ===\n");
        text.push_str(&"x".repeat(3 * MAX_LINE_BYTES));
        text.push_str("\nruntime/t.py::test_a PASSED [100%]\n=== 1 passed in 0.1s ===\n");
        let p = parse(&text);
        assert_eq!(p.tests().len(), 1);
        assert_eq!(p.summary().unwrap().passed, 1);
    }

    #[test]
    fn splitter_bounds_lines() {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        let long = vec![b'a'; MAX_LINE_BYTES + 10];
        s.feed(&long, |l| lines.push(l.bytes.len()));
        s.feed(b"b\r\nc\n", |l| lines.push(l.bytes.len()));
        s.feed(b"tail", |l| lines.push(l.bytes.len()));
        s.finish(|l| lines.push(l.bytes.len()));
        assert_eq!(lines, vec![MAX_LINE_BYTES, 1, 4]);
    }

    #[test]
    fn splitter_lines_are_text_whatever_the_chunks_and_bytes() {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        // "é" cut between chunks, an invalid byte, then valid lines after it.
        let stream: &[&[u8]] = &[b"caf\xc3", b"\xa9\nbad \xff\nok\r\n", b"\xe2\x9c\x93\nend"];
        for chunk in stream {
            s.feed(chunk, |l| lines.push(l.text().into_owned()));
        }
        s.finish(|l| lines.push(l.text().into_owned()));
        assert_eq!(lines, ["café", "bad \u{fffd}", "ok", "✓", "end"]);
    }

    #[test]
    fn lines_decode_alike_one_by_one_and_with_their_chunk() {
        // Enough lines that the first are decoded one by one and the rest with their chunk,
        // whose valid prefix ends at an invalid byte part way.
        let mut chunk = Vec::new();
        for i in 0..200 {
            chunk.extend(format!("line {i} é ").as_bytes());
            if i == 150 {
                chunk.push(0xff);
            }
            chunk.push(b'\n');
        }
        let mut decoded = Vec::new();
        LineSplitter::default().feed(&chunk, |l| {
            decoded.push((
                l.text().into_owned(),
                String::from_utf8_lossy(l.bytes).into_owned(),
            ));
        });
        assert_eq!(decoded.len(), 200);
        for (text, lossy) in &decoded {
            assert_eq!(text, lossy);
        }
        assert!(decoded[150].0.ends_with('\u{fffd}'));
    }

    #[test]
    fn exception_lines() {
        assert!(is_exception_line("ValueError: x"));
        assert!(is_exception_line("pkg.mod.CustomError: x"));
        assert!(is_exception_line("KeyboardInterrupt"));
        assert!(is_exception_line("AssertionError:"));
        assert!(!is_exception_line("assert 1 == 2"));
        assert!(!is_exception_line("where 1 = f()"));
        assert!(!is_exception_line("Something"));
        assert!(!is_exception_line("http://x"));
    }

    #[test]
    fn stderr_conftest_and_missing_pytest() {
        let mut s = StderrScanner::with_root(Utf8Path::new("/r"));
        s.feed(
            b"ImportError while loading conftest '/r/runtime/tests/conftest.py'.\n\
              /usr/lib/python3.11/ast.py:50: in parse\n\
              E     File \"/r/runtime/tests/conftest.py\", line 1\n\
              E       def oops(:\n\
              E   SyntaxError: invalid syntax\n",
        );
        s.finish();
        let e = &s.conftest_errors()[0];
        assert_eq!(e.path.as_deref(), Some("runtime/tests/conftest.py"));
        assert!(e.syntax_error && e.conftest);
        assert_eq!(
            e.message,
            "SyntaxError: invalid syntax (runtime/tests/conftest.py, line 1)"
        );
        assert!(!s.pytest_missing());

        let mut s = StderrScanner::default();
        s.feed(b"/tmp/venv/bin/python: No module named pytest\n");
        s.finish();
        assert!(s.pytest_missing());
        assert_eq!(
            s.last_line(),
            Some("/tmp/venv/bin/python: No module named pytest")
        );

        let mut s = StderrScanner::default();
        s.feed(b"ERROR: file or directory not found: runtime/nothere\n\n");
        s.finish();
        assert_eq!(
            s.usage_error(),
            Some("file or directory not found: runtime/nothere")
        );
    }

    /// Everything a parser reports, to compare two parsers.
    fn report(p: &LineParser) -> String {
        format!(
            "{:?}",
            (
                p.tests(),
                p.tests_omitted(),
                p.summary(),
                p.running_test(),
                p.collected(),
                (p.finished_count(), p.failure_count(), p.session_started()),
                p.collection_errors(),
                p.interruption(),
                p.internal_error(),
            )
        )
    }

    /// Parses `stream` in chunks of `chunk` bytes with and without the fast paths, and checks
    /// that both report the same, as far as it goes after every chunk, in full at the end.
    fn assert_fast_paths_agree(stream: &[u8], chunk: usize) {
        let mut fast = LineParser::new();
        let mut full = LineParser::new();
        full.state.fast_paths = false;
        let so_far = |p: &LineParser| {
            let last = p.tests().last().map(|t| (&t.nodeid, t.outcome, &t.message));
            let counts = (p.tests().len(), p.finished_count(), p.failure_count());
            format!("{:?}", (p.running_test(), counts, last))
        };
        for (i, piece) in stream.chunks(chunk).enumerate() {
            fast.feed(piece);
            full.feed(piece);
            assert_eq!(
                so_far(&fast),
                so_far(&full),
                "after chunk {i} of {chunk} bytes"
            );
        }
        fast.finish();
        full.finish();
        assert_eq!(report(&fast), report(&full), "at the end");
    }

    /// Node ids a line reads back wrongly if the fast path gets them wrong: spaces, `::`,
    /// outcome words, `%` and brackets (balanced or not) in parameters, tabs, non-ASCII.
    const TRICKY_IDS: [&str; 12] = [
        "t/test_a.py::test_plain",
        "t/test_a.py::test_p[a b]",
        "t/test_a.py::test_p[c::d]",
        "t/test_a.py::test_p[PASSED x]",
        "t/test_a.py::test_p[x PASSED]",
        "t/test_a.py::test_p[e[f]]",
        "t/test_a.py::test_p[open",
        "t/test_a.py::test_p[ 50%]",
        "t/test_a.py::TestC::test_n[\tx]",
        "t/test_a.py::test_é[ü ß]",
        "[gw0]::test_odd",
        "t/test_a.py",
    ];

    /// How many forms of result line [`result_line`] knows.
    const KINDS: usize = 26;

    /// One result line about `id`, in one of many forms (`kind`), most of them not the plain
    /// form the fast paths take.
    fn result_line(kind: usize, id: &str, word: &str, pad: usize, pct: u32) -> Vec<u8> {
        let spaces = " ".repeat(pad);
        let line = match kind % KINDS {
            0..=5 => format!("{id} {word}{spaces}[{pct:>3}%]"),
            6 => format!("{id} {word}{spaces}[{pct:>3}%]\r"),
            7 => format!("{id}\t{word} [{pct:>3}%]"),
            8 => format!("{id}  {word} (why (not)) [{pct:>3}%]"),
            9 => format!("{id} {word} [{pct}/17]"),
            10 => format!("[gw1] [{pct:>3}%] {word} {id}"),
            11 => format!("{id} {word}{spaces}[{pct:>3}%]  "),
            12 => format!("{id} "),
            13 => format!("{id} {word}\u{2003}[{pct:>3}%]"),
            14 => format!("output {word}{spaces}[{pct:>3}%]"),
            15 => format!("{id} {word}[{pct:>3}%]"),
            16 => format!("{id}{word} [{pct:>3}%]"),
            17 => format!("{id} {word}    [{pct:>4}%]"),
            18 => format!("{id} {word} [{pct:>3}% ]"),
            19 => format!("{id} {word}{spaces} [{pct:>3}%]x"),
            20 => format!("{id} {word}{}[ 50%]", " ".repeat(MAX_LINE_BYTES)),
            21 => {
                let mut bytes = format!("{id} {word} [{pct:>3}%]").into_bytes();
                bytes.insert(id.len() / 2, 0xff);
                return bytes;
            }
            22 => format!("{id} {word} PASSED{spaces}[{pct:>3}%]"),
            23 => format!("{id} {word}{spaces}[{pct:>2}%]"),
            24 => format!("{id} {word}{spaces}[{pct:>3}%]\rX"),
            _ => {
                // Three places, one of them blank: ` 15`, `0 6`, `01 `.
                let mut odd = format!("{pct:03}").into_bytes();
                odd[pct as usize % 3] = b' ';
                format!("{id} {word}{spaces}[{}%]", String::from_utf8_lossy(&odd))
            }
        };
        line.into_bytes()
    }

    /// A short summary line about `id`, plain (`PASSED id`) or not.
    fn summary_line(kind: usize, id: &str, word: &str) -> Vec<u8> {
        match kind % 9 {
            0..=3 => format!("{word} {id}"),
            7 => format!("{word} {id}\rX"),
            4 => format!("{word} {id} - AssertionError: no"),
            5 => format!("{word} {id}\r"),
            6 => format!("{word}  {id}"),
            _ => format!("{word} {id} "),
        }
        .into_bytes()
    }

    /// A run in pytest's order, `rounds` times over (so later rounds name recorded tests):
    /// progress lines, the short summary, the counts; `kinds` says the form of each line.
    fn run_stream(ids: &[&str], kinds: &[(usize, usize, usize, u32)], rounds: usize) -> Vec<u8> {
        let mut kinds = kinds.iter().cycle();
        let mut out = Vec::new();
        for _ in 0..rounds {
            out.extend_from_slice(b"==== test session starts ====\ncollected 3 items\n\n");
            for id in ids {
                let &(kind, word, pad, pct) = kinds.next().unwrap();
                out.extend(result_line(kind, id, OUTCOME_WORDS[word].0, pad, pct));
                out.push(b'\n');
            }
            out.extend_from_slice(b"==== short test summary info ====\n");
            for id in ids {
                let &(kind, word, _, _) = kinds.next().unwrap();
                out.extend(summary_line(kind, id, OUTCOME_WORDS[word].0));
                out.push(b'\n');
            }
            out.extend_from_slice(b"==== 1 failed, 2 passed in 0.10s ====\n");
        }
        out
    }

    #[test]
    fn the_fast_paths_take_plain_lines_of_ids_that_read_back() {
        for id in TRICKY_IDS {
            for (word, outcome) in OUTCOME_WORDS {
                let line = format!("{id} {word}{}[  5%]", " ".repeat(13));
                let fast = plain_progress_line(format!("{line}\nmore").as_bytes(), id.as_bytes());
                let taken = (!id.starts_with("[gw")).then_some((outcome, line.len()));
                assert_eq!(fast, taken, "{line}");
                if reads_back(id) && !id.starts_with("[gw") {
                    assert_eq!(
                        parse_progress_line(&line),
                        Some(Progress::Finished {
                            nodeid: Some(id),
                            outcome,
                            reason: None
                        }),
                        "{line}"
                    );
                }
            }
        }
        let reading_back: Vec<bool> = TRICKY_IDS.iter().map(|id| reads_back(id)).collect();
        // Not: a bracket left open, no `::`.
        assert_eq!(
            reading_back,
            [
                true, true, true, true, true, true, false, true, true, true, true, false
            ]
        );
        for (word, outcome) in OUTCOME_WORDS {
            assert_eq!(
                strip_outcome_word(format!("{word} x").as_bytes()),
                Some((outcome, &b" x"[..]))
            );
            assert_eq!(strip_outcome_word(&word.as_bytes()[1..]), None);
            assert_eq!(strip_outcome_word(&word.as_bytes()[..4]), None);
        }
    }

    #[test]
    fn the_fast_paths_agree_with_the_full_parse_on_tricky_lines() {
        // Every form of line with every outcome word for every tricky node id, as the test
        // expected next (recorded by the short summary, then the one after the test before),
        // in one piece and cut every few bytes.
        for id in TRICKY_IDS {
            for kind in 0..KINDS {
                for (word, _) in OUTCOME_WORDS {
                    let mut stream = format!(
                        "=== short test summary info ===\nPASSED a.py::before\nPASSED {id}\n\
                         PASSED a.py::before\n=== test session starts ===\n"
                    )
                    .into_bytes();
                    stream.extend(result_line(kind, id, word, kind, 7 * kind as u32));
                    stream.extend(b"\n=== short test summary info ===\nPASSED a.py::before\n");
                    stream.extend(summary_line(kind, id, word));
                    stream.push(b'\n');
                    for chunk in [stream.len(), 7] {
                        assert_fast_paths_agree(&stream, chunk);
                    }
                }
            }
        }
    }

    #[test]
    fn plain_lines_about_the_next_test_are_taken_whole() {
        let mut p = LineParser::new();
        p.feed(b"=== test session starts ===\na.py::t1 PASSED [ 50%]\na.py::t2 PASSED [100%]\n");
        p.feed(b"=== short test summary info ===\nPASSED a.py::t1\n");
        assert_eq!(p.state.take_line(b"XPASS a.py::t2\r\nPASSED"), Some(16));
        p.feed(b"=== test session starts ===\na.py::t1 PASSED [ 50%]\n");
        assert_eq!(p.state.take_line(b"a.py::t2 PASSED [100%]"), None);
        assert_eq!(p.state.take_line(b"a.py::t2 FAILED  [100%] \n"), None);
        assert_eq!(p.state.take_line(b"a.py::t2 FAILED  [100%]\n\n"), Some(24));
        assert_eq!(
            (p.tests()[1].outcome, p.finished_count(), p.failure_count()),
            (TestOutcome::Failed, 4, 1)
        );
        // Not a line the splitter would cut.
        let mut p = LineParser::new();
        p.feed(b"=== test session starts ===\na.py::t1 PASSED [ 50%]\na.py::t2 PASSED [100%]\n");
        p.feed(b"=== short test summary info ===\nPASSED a.py::t1\n");
        p.feed(b"=== test session starts ===\n");
        let long = format!("a.py::t2 PASSED{}[100%]\n", " ".repeat(MAX_LINE_BYTES));
        assert_eq!(p.state.take_line(long.as_bytes()), None);
    }

    proptest! {
        #[test]
        fn any_bytes_in_any_chunks_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..3000),
            chunk in 1usize..200,
        ) {
            let mut p = LineParser::new();
            let mut s = StderrScanner::default();
            for c in data.chunks(chunk) {
                p.feed(c);
                s.feed(c);
            }
            p.finish();
            s.finish();
            prop_assert!(p.tests().len() <= MAX_TEST_RECORDS);
        }

        #[test]
        fn progress_lines_round_trip(
            path in "[a-z]{1,8}(/[a-z_]{1,8}){0,3}\\.py",
            names in prop::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,10}", 1..4),
            param in prop::option::of("[ -Z\\\\^-~]{0,12}"),
            outcome in prop::sample::select(OUTCOME_WORDS.to_vec()),
            pct in 0u32..=100,
        ) {
            let mut nodeid = format!("{path}::{}", names.join("::"));
            if let Some(param) = &param {
                // pytest ids never contain unbalanced brackets of their own making.
                let param: String = param.chars().filter(|c| *c != '[' && *c != ']').collect();
                nodeid.push_str(&format!("[{param}]"));
            }
            let line = format!("{nodeid} {} {:>20}", outcome.0, format!("[{pct:>3}%]"));
            prop_assert_eq!(
                parse_progress_line(&line),
                Some(Progress::Finished { nodeid: Some(&nodeid), outcome: outcome.1, reason: None })
            );
        }

        #[test]
        fn the_fast_paths_agree_with_the_full_parse(
            ids in prop::collection::vec(
                prop_oneof![
                    4 => "[a-z]{1,3}(/[a-z]{1,3})?\\.py::[A-Za-z_]{1,5}(::[a-z]{1,3})?",
                    4 => "[a-z]{1,3}\\.py::t\\[[a-z0-9 :\\[\\]PASEDX%\t\u{e9}-]{0,8}\\]",
                    1 => "[a-z]{1,3}\\.py::t[a-z :\\[\\]PASED\t]{0,8}",
                    1 => prop::sample::select(TRICKY_IDS.to_vec()).prop_map(str::to_owned),
                ],
                1..6,
            ),
            kinds in prop::collection::vec((0usize..32, 0usize..6, 0usize..30, 0u32..=100), 1..40),
            rounds in 1usize..4,
            chunk in 1usize..300,
        ) {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            // Mostly plain lines, which the fast paths take.
            let kinds: Vec<_> = kinds
                .into_iter()
                .map(|(kind, word, pad, pct)| (if kind >= KINDS { 0 } else { kind }, word, pad, pct))
                .collect();
            assert_fast_paths_agree(&run_stream(&ids, &kinds, rounds), chunk);
        }
    }
}
