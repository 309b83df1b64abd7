//! Reading the run's results records within fixed bounds.
//!
//! The run's pytest writes one JSON line per report it makes ([`crate::invocation::BOOTSTRAP`]
//! registers the plugin that does it), as it makes it, and a last line when the session ends.
//! This replaces pytest's JUnit XML report, which pytest builds in memory and writes only at
//! the end: it cost a run about 3 % more instructions than bare pytest (counted with cachegrind
//! on toolz), and a run killed at its deadline left none. A killed run's records now hold every
//! report made before the kill.
//!
//! The file is read up to [`MAX_REPORT_BYTES`], one line of at most [`MAX_LINE_BYTES`] at a
//! time, so that neither a huge file nor one huge line can make Warden's memory grow. The
//! reports of one test become one [`Case`] as pytest's JUnit writer would have made them (its
//! outcome is the most severe of its reports', a setup or teardown failure is an error
//! `failed on setup with "..."`, a failing subtest adds a failure), so what Warden reports did
//! not change with the channel. The file is written by the process under test, like the JUnit
//! report was: it is complete only when every line parsed and the session's last line is the
//! last line of the file.

use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

use camino::Utf8Path;
use serde::Deserialize;
use warden_taxonomy::TestOutcome;

use crate::lines::{
    ExceptionTracker, MAX_RECORD_BYTES, MAX_TEST_RECORDS, RECORD_OVERHEAD_BYTES, truncate,
};

/// The most of a records file Warden reads.
pub(crate) const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// The longest line Warden parses: the plugin cuts messages to 4,000 characters and a
/// collection error's traceback to its last 16,384, so its lines stay well under this.
pub(crate) const MAX_LINE_BYTES: usize = 256 * 1024;

/// The longest line of a collection error's traceback fed to the [`ExceptionTracker`].
const MAX_TRACEBACK_LINE_BYTES: usize = crate::lines::MAX_LINE_BYTES;

/// Most failure messages kept per case.
pub(crate) const MAX_FAILURE_MESSAGES: usize = warden_taxonomy::MAX_SUBTESTS_KEPT + 1;

/// How many lines pass between two looks at the clock.
const LINES_PER_CLOCK_CHECK: u32 = 1024;

/// One test's reports (or one collector's), as one result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    pub(crate) nodeid: String,
    pub(crate) outcome: TestOutcome,
    pub(crate) message: Option<String>,
    pub(crate) duration_ms: Option<u64>,
    /// The message of every failure, in order (at most [`MAX_FAILURE_MESSAGES`]): a test with
    /// failing subtests has one per failing subtest, in the order pytest reported them, then
    /// (for pytest's `subtests` fixture) its own.
    pub(crate) failure_messages: Vec<String>,
    /// For a collector that failed: the exception message at the end of its traceback and
    /// whether it is a syntax error.
    pub(crate) collection_error: Option<(Option<String>, bool)>,
    /// A setup or call report of the test itself (not a subtest's) was read: the next one
    /// starts the test's next attempt.
    attempted: bool,
    seconds: f64,
}

/// The cases of a records file, and whether it was read to its end.
#[derive(Debug, Default)]
pub(crate) struct Records {
    pub(crate) cases: Vec<Case>,
    pub(crate) omitted: u64,
    /// Every line parsed and the session's last line ended the file (within the size and
    /// time bounds).
    pub(crate) complete: bool,
    /// Where each node id's case is in `cases`.
    index: std::collections::HashMap<String, usize>,
    /// Bytes of node ids and messages kept, against [`MAX_RECORD_BYTES`].
    kept_bytes: usize,
}

/// One line of the file, as the plugin writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: Option<String>,
    when: Option<String>,
    outcome: Option<String>,
    duration: Option<f64>,
    message: Option<String>,
    xfail: Option<String>,
    #[serde(default)]
    subtest: bool,
    traceback: Option<String>,
    end: Option<i64>,
}

/// Reads the records from `file` (opened by the caller, who checked it is a regular file),
/// giving up (incomplete) at `deadline`.
pub(crate) fn read_records(file: std::fs::File, root: &Utf8Path, deadline: Instant) -> Records {
    let oversized = file
        .metadata()
        .map(|m| m.len() > MAX_REPORT_BYTES)
        .unwrap_or(false);
    if oversized {
        tracing::warn!(
            limit = MAX_REPORT_BYTES,
            "the results records exceed the size bound; reading their start only"
        );
    }
    let mut records = parse_until(
        BufReader::new(file.take(MAX_REPORT_BYTES)),
        Some(root),
        Some(deadline),
    );
    records.complete &= !oversized;
    records
}

/// Parses records from any reader.
#[cfg(test)]
pub(crate) fn parse(source: impl BufRead) -> Records {
    parse_until(source, None, None)
}

/// Parses records from any reader, giving up (incomplete) at `deadline`. Linear in the
/// input: one pass, each line handled in time linear in its size.
pub(crate) fn parse_until(
    mut source: impl BufRead,
    root: Option<&Utf8Path>,
    deadline: Option<Instant>,
) -> Records {
    let mut records = Records::default();
    let mut line = Vec::new();
    let mut ended = false;
    // The first thing wrong with the file, and how many lines were: said once, at the end, so
    // a file of garbage cannot flood the log.
    let mut flawed: Option<String> = None;
    let mut flaws = 0u64;
    let mut flaw = |what: String| {
        flaws += 1;
        flawed.get_or_insert(what);
    };
    let mut lines = 0u32;
    loop {
        lines = lines.wrapping_add(1);
        if lines.is_multiple_of(LINES_PER_CLOCK_CHECK)
            && let Some(deadline) = deadline
            && Instant::now() >= deadline
        {
            flaw("reading them ran past their deadline".to_owned());
            break;
        }
        line.clear();
        match read_line(&mut source, &mut line) {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => {
                flaw(format!("a line is longer than {MAX_LINE_BYTES} bytes"));
                continue;
            }
            Ok(LineRead::Line) => {}
            Err(e) => {
                flaw(format!("they could not be read to their end: {e}"));
                break;
            }
        }
        match serde_json::from_slice::<Line>(&line) {
            Ok(_) if ended => flaw("they go on after the session's end".to_owned()),
            Ok(parsed) if parsed.end.is_some() => ended = true,
            Ok(parsed) => {
                if !records.apply(parsed, root) {
                    flaw("a record is not one Warden's plugin writes".to_owned());
                }
            }
            Err(e) => flaw(format!("a record is malformed: {e}")),
        }
    }
    for case in &mut records.cases {
        case.duration_ms = seconds_to_ms(case.seconds);
    }
    if let Some(first) = &flawed {
        tracing::warn!(
            lines = flaws,
            first = %first,
            "the results records are not sound; using what was read"
        );
    }
    records.complete = flaws == 0 && ended;
    records
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line (without its newline) into `out`, at most [`MAX_LINE_BYTES`] of it; the
/// rest of a longer line is consumed, not kept.
fn read_line(source: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<LineRead> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = source.fill_buf()?;
        if buf.is_empty() {
            return Ok(if too_long {
                LineRead::TooLong
            } else if any {
                LineRead::Line
            } else {
                LineRead::Eof
            });
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if out.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                out.clear();
            } else {
                out.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        source.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

impl Records {
    /// Applies one report; `false` when it is not one the plugin writes.
    fn apply(&mut self, line: Line, root: Option<&Utf8Path>) -> bool {
        let (Some(id), Some(when), Some(outcome)) = (line.id, line.when, line.outcome) else {
            return false;
        };
        if when == "collect" {
            return self.collected(id, &outcome, line.traceback.as_deref(), root);
        }
        let judged = judge(&when, &outcome, line.message, line.xfail);
        if judged.is_none() && outcome != "passed" {
            // pytest-rerunfailures' `rerun`: an attempt that is not the last.
            return outcome == "rerun";
        }
        let main = !line.subtest && (when == "setup" || when == "call");
        let Some(at) = self.case_for(&id, main) else {
            return true;
        };
        let seconds = line.duration.filter(|d| d.is_finite() && *d >= 0.0);
        self.cases[at].seconds += seconds.unwrap_or(0.0);
        self.cases[at].attempted |= main;
        let Some((result, message)) = judged else {
            return true;
        };
        let mut message = message.map(|m| truncate(&m));
        if let Some(m) = &message {
            if self.kept_bytes + m.len() > MAX_RECORD_BYTES {
                message = None;
            } else {
                self.kept_bytes += m.len();
            }
        }
        let case = &mut self.cases[at];
        if result == TestOutcome::Failed && case.failure_messages.len() < MAX_FAILURE_MESSAGES {
            case.failure_messages
                .push(message.clone().unwrap_or_default());
        }
        if severity(result) >= severity(case.outcome) {
            case.outcome = result;
            case.message = message;
        }
        true
    }

    /// The case a report of `id` goes to: the test's current one, a fresh one when `main`
    /// starts its next attempt (the last attempt wins, as in pytest's own summary), or a new
    /// one; `None` when the bounds are spent (then a test is counted as omitted once).
    fn case_for(&mut self, id: &str, main: bool) -> Option<usize> {
        if let Some(&at) = self.index.get(id) {
            let case = &mut self.cases[at];
            if main && case.attempted {
                *case = Case::new(case.nodeid.clone());
            }
            return Some(at);
        }
        let cost = id.len() * 2 + RECORD_OVERHEAD_BYTES;
        if self.cases.len() >= MAX_TEST_RECORDS || self.kept_bytes + cost > MAX_RECORD_BYTES {
            if main {
                self.omitted += 1;
            }
            return None;
        }
        self.kept_bytes += cost;
        self.index.insert(id.to_owned(), self.cases.len());
        self.cases.push(Case::new(id.to_owned()));
        Some(self.cases.len() - 1)
    }

    /// A collector that did not pass: a failed one is a collection error (with the exception
    /// its traceback ends with), a skipped one a skip.
    fn collected(
        &mut self,
        id: String,
        outcome: &str,
        traceback: Option<&str>,
        root: Option<&Utf8Path>,
    ) -> bool {
        let (result, message, error) = match outcome {
            "failed" => (
                TestOutcome::Error,
                "collection failure",
                Some(conclude(traceback.unwrap_or_default(), root)),
            ),
            "skipped" => (TestOutcome::Skipped, "collection skipped", None),
            _ => return false,
        };
        // The session itself (no node id) names no test, as in the JUnit report.
        if id.is_empty() {
            return true;
        }
        let Some(at) = self.case_for(&id, true) else {
            return true;
        };
        let case = &mut self.cases[at];
        case.outcome = result;
        case.message = Some(message.to_owned());
        case.collection_error = error;
        true
    }
}

impl Case {
    fn new(nodeid: String) -> Case {
        Case {
            nodeid,
            outcome: TestOutcome::Passed,
            message: None,
            duration_ms: None,
            failure_messages: Vec::new(),
            collection_error: None,
            attempted: false,
            seconds: 0.0,
        }
    }
}

/// What one test report says, as pytest's JUnit writer would have written it: `None` for a
/// report that changes nothing (a pass) or that Warden does not know.
fn judge(
    when: &str,
    outcome: &str,
    message: Option<String>,
    xfail: Option<String>,
) -> Option<(TestOutcome, Option<String>)> {
    match outcome {
        // A non-strict XPASS (a strict one fails).
        "passed" if when == "call" && xfail.is_some() => Some((TestOutcome::Xpassed, None)),
        "passed" => None,
        // pytest < 9 reported a strict XPASS as a failure with the xfail reason kept.
        "failed" if when == "call" && xfail.is_some() => Some((
            TestOutcome::Failed,
            Some("xfail-marked test passes unexpectedly".to_owned()),
        )),
        "failed" if when == "call" => Some((TestOutcome::Failed, message)),
        "failed" => {
            let stage = if when == "teardown" {
                "teardown"
            } else {
                "setup"
            };
            let reason = message.unwrap_or_default();
            Some((
                TestOutcome::Error,
                Some(format!("failed on {stage} with \"{reason}\"")),
            ))
        }
        "skipped" => Some(match xfail {
            Some(reason) => (
                TestOutcome::Xfailed,
                Some(
                    reason
                        .strip_prefix("reason: ")
                        .unwrap_or(&reason)
                        .to_owned(),
                ),
            ),
            None => (
                TestOutcome::Skipped,
                message.map(|m| m.strip_prefix("Skipped: ").unwrap_or(&m).to_owned()),
            ),
        }),
        _ => None,
    }
}

fn severity(outcome: TestOutcome) -> u8 {
    match outcome {
        TestOutcome::Passed | TestOutcome::Xpassed => 0,
        TestOutcome::Skipped | TestOutcome::Xfailed => 1,
        TestOutcome::Failed => 2,
        TestOutcome::Error => 3,
    }
}

fn seconds_to_ms(secs: f64) -> Option<u64> {
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64)
}

/// The exception a traceback ends with, and whether it is a syntax error.
fn conclude(traceback: &str, root: Option<&Utf8Path>) -> (Option<String>, bool) {
    let mut tracker = ExceptionTracker::default();
    for line in traceback.lines() {
        let mut cut = line.len().min(MAX_TRACEBACK_LINE_BYTES);
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        tracker.feed(&line[..cut]);
    }
    tracker.conclude(root)
}

#[cfg(test)]
mod tests;
