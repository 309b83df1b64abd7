//! What the parser does with each line: sections, progress lines, the short summary, records.

use std::hash::BuildHasher as _;

use warden_taxonomy::{SubtestResult, TestOutcome, TestResult};

use super::progress::*;
use super::splitter::{Line, LineSink};
use super::summary::*;
use super::text::*;
use super::traceback::{ExceptionTracker, is_exception_line};
use super::{
    MAX_COLLECTION_ERRORS, MAX_RECORD_BYTES, MAX_SUBTEST_RECORDS, MAX_TEST_RECORDS,
    RECORD_OVERHEAD_BYTES, Section, State,
};
use crate::evidence::CollectionError;

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
            // `PASSED`, `FAILED`, `ERROR`, `XFAIL`, `XPASS`, and the subtests' `SUB...` (a
            // `SKIPPED` line names no test; a `SUBSKIPPED` one counts subtests).
            Section::ShortSummary => matches!(line[0], b'P' | b'F' | b'E' | b'X' | b'S'),
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
            "short test summary info" => {
                self.summary_subtests.get_or_insert_default();
                Section::ShortSummary
            }
            _ => {
                if let Some(counts) = parse_summary(title) {
                    self.summary = Some(counts);
                } else if is_collect_only_summary(title) {
                    self.collect_only = true;
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
            Some(Progress::Subtest { nodeid, outcome }) => {
                // The test goes on after its subtest: it is still the one running.
                self.running = Some(nodeid.to_owned());
                self.progress_subtests.record(outcome, 1);
                if outcome.is_failure() {
                    self.failures += 1;
                }
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

    pub(super) fn close_collect_block(&mut self) {
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

    /// A subtest's line of the short summary: `SUBFAILED[msg] (i=1) nodeid - message`,
    /// `SUBXFAIL(i=2) nodeid - reason`, or `SUBSKIPPED[msg] [3] path:line: reason` (a
    /// location, and how many skips it groups).
    fn on_short_summary_subtest(&mut self, outcome: TestOutcome, rest: &str) {
        let tally = self.summary_subtests.get_or_insert_default();
        if outcome == TestOutcome::Skipped {
            tally.record(outcome, grouped_count(rest).unwrap_or(1));
            return;
        }
        if outcome == TestOutcome::Passed {
            return;
        }
        tally.record(outcome, 1);
        let Some((description, nodeid, message)) = self.split_subtest_line(rest) else {
            return;
        };
        if self.subtest_results.len() < MAX_SUBTEST_RECORDS {
            let message = (!message.is_empty()).then(|| truncate(message));
            self.subtest_results.push((
                nodeid.to_owned(),
                SubtestResult {
                    description: truncate(description),
                    outcome,
                    message,
                },
            ));
        }
    }

    /// Splits `description nodeid - message` (the message optional). A description is free
    /// text (a subtest's message and parameters' reprs), so the node id is found as the first
    /// test this run reported that follows a space and is followed by ` - ` or the end; else
    /// the first node id-like word placed so.
    fn split_subtest_line<'l>(&self, rest: &'l str) -> Option<(&'l str, &'l str, &'l str)> {
        let candidates = || {
            rest.match_indices(' ').filter_map(|(space, _)| {
                let tail = &rest[space + 1..];
                let end = nodeid_end(tail)?;
                let after = &tail[end..];
                let message = if after.is_empty() {
                    ""
                } else {
                    after.strip_prefix(" - ")?
                };
                let nodeid = &tail[..end];
                contains_double_colon(nodeid.as_bytes()).then_some((
                    &rest[..space],
                    nodeid,
                    message,
                ))
            })
        };
        candidates()
            .find(|(_, nodeid, _)| self.indexed(nodeid).is_some())
            .or_else(|| candidates().next())
    }

    /// The record of `nodeid`, found through the index (by hash, then compared).
    fn indexed(&self, nodeid: &str) -> Option<usize> {
        self.index
            .get(&self.hasher.hash_one(nodeid))
            .copied()
            .filter(|&i| self.tests.get(i).is_some_and(|t| t.nodeid == nodeid))
    }

    fn on_short_summary_line(&mut self, line: &str) {
        if let Some((outcome, rest)) = subtest_word(line) {
            self.on_short_summary_subtest(outcome, rest);
            return;
        }
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
            _ => self.indexed(nodeid),
        };
        if let Some(i) = known {
            self.update(i, outcome, message, authoritative);
            return;
        }
        let cost = record_cost(nodeid, message.as_deref());
        if self.tests.len() >= MAX_TEST_RECORDS || self.kept_bytes + cost > MAX_RECORD_BYTES {
            self.tests_omitted += 1;
            return;
        }
        self.kept_bytes += cost;
        // On the rare collision of two ids' hashes the first keeps the entry; the second is
        // recorded but found only through the hint.
        self.index
            .entry(self.hasher.hash_one(nodeid))
            .or_insert(self.tests.len());
        self.next_hint = self.tests.len() + 1;
        self.reads_back.push(reads_back(nodeid));
        self.tests.push(TestResult {
            nodeid: nodeid.to_owned(),
            outcome,
            message,
            duration_ms: None,
            subtests: Vec::new(),
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
        let replace = if authoritative {
            test.outcome = outcome;
            message.is_some()
        } else {
            test.message.is_none() && test.outcome == outcome
        };
        if replace {
            // Messages count against the byte bound too: past it, they are dropped.
            let old = test.message.as_ref().map_or(0, String::len);
            let new = message.as_ref().map_or(0, String::len);
            if self.kept_bytes - old + new <= MAX_RECORD_BYTES {
                self.kept_bytes = self.kept_bytes - old + new;
                self.tests[i].message = message;
            }
        }
    }
}

/// What a new record costs against [`MAX_RECORD_BYTES`]: its node id, its message, and a
/// fixed allowance for the structures around them.
fn record_cost(nodeid: &str, message: Option<&str>) -> usize {
    nodeid.len() + message.map_or(0, str::len) + RECORD_OVERHEAD_BYTES
}

/// The `N` of the first ` [N] ` in a `SUBSKIPPED` line: how many skips with that location and
/// reason the line stands for.
fn grouped_count(rest: &str) -> Option<u64> {
    rest.match_indices(" [").find_map(|(i, _)| {
        let (digits, after) = rest[i + 2..].split_once(']')?;
        let n = digits.parse::<u64>().ok()?;
        after.starts_with(' ').then_some(n)
    })
}
