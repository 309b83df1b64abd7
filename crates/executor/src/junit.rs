//! Reading pytest's JUnit XML report within fixed bounds.
//!
//! The report is stream-parsed (quick-xml) from a file read up to [`MAX_REPORT_BYTES`], through
//! a filter that cuts any single run of character data or attribute value to
//! [`MAX_RUN_BYTES`], so that neither a huge report nor one huge exception message can make
//! Warden's memory grow. Only what Warden uses is kept: per test case its names, file, outcome,
//! message and time; for collection errors, the exception at the end of the traceback.

use std::io::{self, BufRead, BufReader, Read};

use camino::Utf8Path;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use std::time::Instant;

use warden_taxonomy::TestOutcome;

use crate::lines::{
    ExceptionTracker, MAX_LINE_BYTES, MAX_RECORD_BYTES, MAX_TEST_RECORDS, RECORD_OVERHEAD_BYTES,
    truncate,
};

/// The most of a report file Warden reads.
pub(crate) const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// The longest run of text or attribute value passed on to the XML parser.
pub(crate) const MAX_RUN_BYTES: usize = 16 * 1024;

/// One `<testcase>` of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JunitCase {
    pub(crate) classname: String,
    pub(crate) name: String,
    pub(crate) file: Option<String>,
    pub(crate) outcome: TestOutcome,
    pub(crate) message: Option<String>,
    pub(crate) duration_ms: Option<u64>,
    /// The message of every `<failure>`, in order (at most [`MAX_FAILURE_MESSAGES`]): a test
    /// with failing subtests has one per failing subtest, in the order pytest reported them,
    /// then (for pytest's `subtests` fixture) its own.
    pub(crate) failure_messages: Vec<String>,
    /// For a collection error (a case with an empty classname and an `<error>` whose message
    /// is `collection failure`): the exception message and whether it is a syntax error.
    pub(crate) collection_error: Option<(Option<String>, bool)>,
}

/// Most `<failure>` messages kept per case.
pub(crate) const MAX_FAILURE_MESSAGES: usize = warden_taxonomy::MAX_SUBTESTS_KEPT + 1;

/// The test cases of a report, and whether it was read to its end.
#[derive(Debug, Default)]
pub(crate) struct JunitReport {
    pub(crate) cases: Vec<JunitCase>,
    pub(crate) omitted: u64,
    /// The document parsed to its end without error (and within the size and time bounds).
    pub(crate) complete: bool,
    /// Bytes of names and messages kept, against [`MAX_RECORD_BYTES`].
    kept_bytes: usize,
}

/// How many parser events pass between two looks at the clock.
const EVENTS_PER_CLOCK_CHECK: u32 = 4096;

impl JunitReport {
    fn push(&mut self, case: JunitCase) {
        if case.name.is_empty() && case.classname.is_empty() {
            // A case pytest opened for a test it then interrupted (`<testcase time="0.000" />`,
            // after a KeyboardInterrupt at the deadline): it names no test and has no outcome.
            return;
        }
        let cost = case.classname.len()
            + case.name.len()
            + case.file.as_ref().map_or(0, String::len)
            + case.message.as_ref().map_or(0, String::len)
            + RECORD_OVERHEAD_BYTES;
        if self.cases.len() < MAX_TEST_RECORDS && self.kept_bytes + cost <= MAX_RECORD_BYTES {
            self.kept_bytes += cost;
            self.cases.push(case);
        } else {
            self.omitted += 1;
        }
    }
}

/// Reads the report from `file` (opened by the caller, who checked it is a regular file).
pub(crate) fn read_report(file: std::fs::File, root: &Utf8Path, deadline: Instant) -> JunitReport {
    let oversized = file
        .metadata()
        .map(|m| m.len() > MAX_REPORT_BYTES)
        .unwrap_or(false);
    if oversized {
        tracing::warn!(
            limit = MAX_REPORT_BYTES,
            "JUnit report exceeds the size bound; reading its start only"
        );
    }
    let reader = BufReader::new(BoundedRuns::new(file.take(MAX_REPORT_BYTES)));
    let mut report = parse_until(reader, Some(root), Some(deadline));
    report.complete &= !oversized;
    report
}

/// Parses a report from any reader.
#[cfg(test)]
pub(crate) fn parse(source: impl BufRead, root: Option<&Utf8Path>) -> JunitReport {
    parse_until(source, root, None)
}

/// Parses a report from any reader, giving up (incomplete) at `deadline`. Linear in the
/// input: one pass, each event handled in time linear in its size.
pub(crate) fn parse_until(
    source: impl BufRead,
    root: Option<&Utf8Path>,
    deadline: Option<Instant>,
) -> JunitReport {
    let mut reader = Reader::from_reader(source);
    let mut report = JunitReport::default();
    let mut buf = Vec::new();
    let mut case: Option<JunitCase> = None;
    let mut traceback: Option<TextLines> = None;
    let mut events = 0u32;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(EVENTS_PER_CLOCK_CHECK)
            && let Some(deadline) = deadline
            && Instant::now() >= deadline
        {
            tracing::warn!("reading the JUnit report ran past its deadline; using what was read");
            break;
        }
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "JUnit report is malformed; using what was read");
                break;
            }
        };
        match event {
            Event::Start(e) if e.local_name().as_ref() == "testcase" => {
                case = Some(start_case(&e));
            }
            Event::Empty(e) if e.local_name().as_ref() == "testcase" => {
                report.push(start_case(&e));
            }
            Event::Start(e) => {
                if let Some(case) = &mut case
                    && apply_child(case, &e)
                {
                    traceback = Some(TextLines::default());
                }
            }
            Event::Empty(e) => {
                if let Some(case) = &mut case {
                    apply_child(case, &e);
                }
            }
            Event::Text(text) => {
                if let Some(lines) = &mut traceback {
                    lines.push(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(lines) = &mut traceback {
                    match reference.resolve_char_ref() {
                        Ok(Some(c)) => lines.push(c.encode_utf8(&mut [0; 4])),
                        _ => {
                            if let Some(s) =
                                quick_xml::escape::resolve_predefined_entity(&reference)
                            {
                                lines.push(s);
                            }
                        }
                    }
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "testcase" => {
                    if let Some(case) = case.take() {
                        report.push(case);
                    }
                }
                "error" => {
                    if let (Some(lines), Some(case)) = (traceback.take(), &mut case) {
                        case.collection_error = Some(lines.conclude(root));
                    }
                }
                _ => {}
            },
            Event::Eof => {
                report.complete = true;
                break;
            }
            _ => {}
        }
        buf.clear();
    }
    report
}

fn start_case(e: &BytesStart<'_>) -> JunitCase {
    let mut case = JunitCase {
        classname: String::new(),
        name: String::new(),
        file: None,
        outcome: TestOutcome::Passed,
        message: None,
        duration_ms: None,
        failure_messages: Vec::new(),
        collection_error: None,
    };
    for (key, value) in attributes(e) {
        match key.as_str() {
            "classname" => case.classname = value,
            "name" => case.name = value,
            "file" => case.file = Some(value),
            "time" => case.duration_ms = seconds_to_ms(&value),
            _ => {}
        }
    }
    case
}

/// Applies a `<failure>`, `<error>` or `<skipped>` child; returns whether its text is a
/// collection error's traceback worth reading.
fn apply_child(case: &mut JunitCase, e: &BytesStart<'_>) -> bool {
    let tag = e.local_name();
    let mut message = None;
    let mut kind = None;
    for (key, value) in attributes(e) {
        match key.as_str() {
            "message" => message = Some(value),
            "type" => kind = Some(value),
            _ => {}
        }
    }
    let outcome = match tag.as_ref() {
        "failure" => TestOutcome::Failed,
        "error" => TestOutcome::Error,
        "skipped" => match (kind.as_deref(), message.as_deref()) {
            (Some("pytest.xfail"), _) => TestOutcome::Xfailed,
            // pytest < 9 reported a strict XPASS (a failure) as a skip with this message.
            (_, Some("xfail-marked test passes unexpectedly")) => TestOutcome::Failed,
            _ => TestOutcome::Skipped,
        },
        _ => return false,
    };
    if outcome == TestOutcome::Failed && case.failure_messages.len() < MAX_FAILURE_MESSAGES {
        case.failure_messages
            .push(message.as_deref().map(truncate).unwrap_or_default());
    }
    if severity(outcome) >= severity(case.outcome) {
        case.outcome = outcome;
        case.message = message.as_deref().map(truncate);
    }
    let collection = outcome == TestOutcome::Error
        && case.classname.is_empty()
        && message.as_deref() == Some("collection failure");
    if collection {
        case.collection_error = Some((None, false));
    }
    collection
}

fn severity(outcome: TestOutcome) -> u8 {
    match outcome {
        TestOutcome::Passed | TestOutcome::Xpassed => 0,
        TestOutcome::Skipped | TestOutcome::Xfailed => 1,
        TestOutcome::Failed => 2,
        TestOutcome::Error => 3,
    }
}

fn attributes(e: &BytesStart<'_>) -> Vec<(String, String)> {
    e.attributes()
        .filter_map(Result::ok)
        .filter_map(|a| {
            let key = a.key.local_name().as_ref().to_owned();
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .ok()?
                .into_owned();
            Some((key, value))
        })
        .collect()
}

fn seconds_to_ms(value: &str) -> Option<u64> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64)
}

/// Assembles the text of an element into lines for an [`ExceptionTracker`], within bounds.
#[derive(Default)]
struct TextLines {
    line: String,
    tracker: ExceptionTracker,
}

impl TextLines {
    fn push(&mut self, text: &str) {
        let mut rest = text;
        while let Some(i) = rest.find('\n') {
            self.append(&rest[..i]);
            self.tracker.feed(&self.line);
            self.line.clear();
            rest = &rest[i + 1..];
        }
        self.append(rest);
    }

    fn append(&mut self, text: &str) {
        let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
        let mut cut = room.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.line.push_str(&text[..cut]);
    }

    fn conclude(mut self, root: Option<&Utf8Path>) -> (Option<String>, bool) {
        if !self.line.is_empty() {
            self.tracker.feed(&self.line);
        }
        self.tracker.conclude(root)
    }
}

/// Cuts every run of character data and every attribute value to [`MAX_RUN_BYTES`], keeping
/// the document well-formed: tags and quotes are never dropped, and an entity reference that
/// has begun is finished.
struct BoundedRuns<R> {
    inner: R,
    state: Lex,
    run: usize,
    entity: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    Text,
    Tag,
    Quoted(u8),
}

/// The longest entity reference Warden lets finish after a cut (`&#x10FFFF;` is 10 bytes).
const MAX_ENTITY_BYTES: usize = 16;

impl<R> BoundedRuns<R> {
    fn new(inner: R) -> Self {
        BoundedRuns {
            inner,
            state: Lex::Text,
            run: 0,
            entity: None,
        }
    }

    fn keep(&mut self, b: u8) -> bool {
        match self.state {
            Lex::Text if b == b'<' => {
                self.state = Lex::Tag;
                true
            }
            Lex::Tag => {
                match b {
                    b'>' => self.enter(Lex::Text),
                    b'"' | b'\'' => self.enter(Lex::Quoted(b)),
                    _ => {}
                }
                true
            }
            Lex::Quoted(q) if b == q => {
                self.state = Lex::Tag;
                true
            }
            Lex::Text | Lex::Quoted(_) => self.limit(b),
        }
    }

    fn enter(&mut self, state: Lex) {
        self.state = state;
        self.run = 0;
        self.entity = None;
    }

    fn limit(&mut self, b: u8) -> bool {
        if let Some(len) = &mut self.entity {
            *len += 1;
            if b == b';' || *len > MAX_ENTITY_BYTES {
                self.entity = None;
            }
            return true;
        }
        if self.run >= MAX_RUN_BYTES {
            return false;
        }
        self.run += 1;
        if b == b'&' {
            self.entity = Some(0);
        }
        true
    }
}

impl<R: Read> Read for BoundedRuns<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.inner.read(out)?;
            if n == 0 {
                return Ok(0);
            }
            let mut kept = 0;
            for i in 0..n {
                let b = out[i];
                if self.keep(b) {
                    out[kept] = b;
                    kept += 1;
                }
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from pytest 9.2 with `-o junit_family=xunit1`.
    const MIXED: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="2" failures="2" skipped="2" tests="17" time="0.093"><testcase classname="runtime.tests.sub.test_b" name="test_b" file="runtime/tests/sub/test_b.py" line="0" time="0.001" /><testcase classname="runtime.tests.test_a" name="test_fail" file="runtime/tests/test_a.py" line="5" time="0.012"><failure message="AssertionError: boom&#10;assert 1 == 2">def test_fail():
&gt;       assert 1 == 2, "boom"
E       AssertionError: boom</failure></testcase><testcase classname="runtime.tests.test_a" name="test_setup_err" file="runtime/tests/test_a.py" line="12" time="0.001"><error message="failed on setup with &quot;RuntimeError: setup broke&quot;">E       RuntimeError: setup broke</error></testcase><testcase classname="runtime.tests.test_a" name="test_skip" file="runtime/tests/test_a.py" line="23" time="0.000"><skipped type="pytest.skip" message="not now">/tmp/exp/runtime/tests/test_a.py:24: not now</skipped></testcase><testcase classname="runtime.tests.test_a" name="test_xfail" file="runtime/tests/test_a.py" line="27" time="0.000"><skipped type="pytest.xfail" message="known bug" /></testcase><testcase classname="runtime.tests.test_a" name="test_xpass_strict" file="runtime/tests/test_a.py" line="35" time="0.000"><failure message="[XPASS(strict)] strictly">[XPASS(strict)] strictly</failure></testcase><testcase classname="runtime.tests.test_a.TestOuter.TestInner" name="test_nested" file="runtime/tests/test_a.py" line="45" time="0.000" /><testcase classname="" name="runtime.tests.test_syntax" file="runtime/tests/test_syntax.py" time="0.000"><error message="collection failure">/venv/_pytest/python.py:528: in importtestmodule
    mod = import_path(
&lt;frozen importlib._bootstrap&gt;:1204: in _gcd_import
E     File "/r/runtime/tests/test_syntax.py", line 1
E       def test_ok(:
E                   ^
E   SyntaxError: invalid syntax</error></testcase></testsuite></testsuites>"#;

    #[test]
    fn an_interrupted_case_names_no_test() {
        let xml = r#"<testsuite><testcase classname="t.test_a" name="test_f" time="0.1"><failure message="boom">x</failure></testcase><testcase time="0.000" /></testsuite>"#;
        let report = parse(xml.as_bytes(), None);
        assert_eq!(report.cases.len(), 1);
        assert_eq!(report.cases[0].name, "test_f");
    }

    #[test]
    fn a_recorded_report_parses_exactly() {
        let report = parse(MIXED.as_bytes(), Some(Utf8Path::new("/r")));
        assert!(report.complete);
        type Row<'a> = (&'a str, &'a str, TestOutcome, Option<&'a str>, Option<u64>);
        let got: Vec<Row<'_>> = report
            .cases
            .iter()
            .map(|c| {
                (
                    c.classname.as_str(),
                    c.name.as_str(),
                    c.outcome,
                    c.message.as_deref(),
                    c.duration_ms,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "runtime.tests.sub.test_b",
                    "test_b",
                    TestOutcome::Passed,
                    None,
                    Some(1)
                ),
                (
                    "runtime.tests.test_a",
                    "test_fail",
                    TestOutcome::Failed,
                    Some("AssertionError: boom\nassert 1 == 2"),
                    Some(12)
                ),
                (
                    "runtime.tests.test_a",
                    "test_setup_err",
                    TestOutcome::Error,
                    Some("failed on setup with \"RuntimeError: setup broke\""),
                    Some(1)
                ),
                (
                    "runtime.tests.test_a",
                    "test_skip",
                    TestOutcome::Skipped,
                    Some("not now"),
                    Some(0)
                ),
                (
                    "runtime.tests.test_a",
                    "test_xfail",
                    TestOutcome::Xfailed,
                    Some("known bug"),
                    Some(0)
                ),
                (
                    "runtime.tests.test_a",
                    "test_xpass_strict",
                    TestOutcome::Failed,
                    Some("[XPASS(strict)] strictly"),
                    Some(0)
                ),
                (
                    "runtime.tests.test_a.TestOuter.TestInner",
                    "test_nested",
                    TestOutcome::Passed,
                    None,
                    Some(0)
                ),
                (
                    "",
                    "runtime.tests.test_syntax",
                    TestOutcome::Error,
                    Some("collection failure"),
                    Some(0)
                ),
            ]
        );
        let syntax = report.cases.last().unwrap();
        assert_eq!(syntax.file.as_deref(), Some("runtime/tests/test_syntax.py"));
        assert_eq!(
            syntax.collection_error,
            Some((
                Some(
                    "SyntaxError: invalid syntax (runtime/tests/test_syntax.py, line 1)".to_owned()
                ),
                true
            ))
        );
        assert!(report.cases[2].collection_error.is_none());
    }

    #[test]
    fn a_truncated_report_keeps_what_was_read() {
        let cut = &MIXED[..MIXED.find("test_skip").unwrap()];
        let report = parse(cut.as_bytes(), None);
        assert!(!report.complete);
        assert_eq!(report.cases.len(), 3);
    }

    #[test]
    fn older_strict_xpass_is_a_failure() {
        let xml = r#"<testsuite><testcase classname="t.test_a" name="test_x" time="0.1"><skipped message="xfail-marked test passes unexpectedly" /></testcase></testsuite>"#;
        let report = parse(xml.as_bytes(), None);
        assert_eq!(report.cases[0].outcome, TestOutcome::Failed);
    }

    #[test]
    fn huge_runs_are_cut_and_the_document_stays_well_formed() {
        let huge_message = "m&amp;".repeat(100_000);
        let huge_text = "x".repeat(1_000_000);
        let xml = format!(
            r#"<testsuite><testcase classname="t.test_a" name="test_big" time="1.5"><failure message="{huge_message}">{huge_text}&lt;
E   ValueError: tail</failure></testcase><testcase classname="t.test_a" name="test_after" time="0" /></testsuite>"#
        );
        let reader = BufReader::new(BoundedRuns::new(xml.as_bytes()));
        let report = parse(reader, None);
        assert!(report.complete, "the filtered document must still parse");
        assert_eq!(report.cases.len(), 2);
        assert_eq!(report.cases[0].outcome, TestOutcome::Failed);
        assert_eq!(report.cases[0].duration_ms, Some(1500));
        let message = report.cases[0].message.as_deref().unwrap();
        assert!(message.starts_with("m&m&m&"));
        assert!(message.len() <= MAX_RUN_BYTES + 3);
        assert_eq!(report.cases[1].name, "test_after");
    }

    #[test]
    fn the_filter_passes_small_documents_unchanged() {
        let mut out = Vec::new();
        BoundedRuns::new(MIXED.as_bytes())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, MIXED.as_bytes());
    }

    /// A forged report of `cases` test cases with classnames of `depth` dotted parts and long
    /// names, without `file` attributes (so node ids must be worked out the hard way).
    pub(crate) fn forged_report(cases: usize, depth: usize) -> String {
        let classname = vec!["a"; depth].join(".");
        let mut xml = String::from("<testsuite>");
        for i in 0..cases {
            xml.push_str(&format!(
                r#"<testcase classname="{classname}" name="test_{i}_{}" time="0"/>"#,
                "n".repeat(200)
            ));
        }
        xml.push_str("</testsuite>");
        xml
    }

    #[test]
    fn kept_names_are_bounded_in_bytes_not_only_in_count() {
        // 20 000 cases of ~8 KiB each: far more bytes than the bound, far fewer than the
        // record count.
        let xml = forged_report(20_000, 4_000);
        let report = parse(xml.as_bytes(), None);
        assert!(report.complete);
        let kept: usize = report
            .cases
            .iter()
            .map(|c| c.classname.len() + c.name.len() + RECORD_OVERHEAD_BYTES)
            .sum();
        assert!(kept <= MAX_RECORD_BYTES, "{kept} bytes kept");
        assert!(report.cases.len() < 20_000);
        assert_eq!(report.cases.len() as u64 + report.omitted, 20_000);
    }

    #[test]
    fn parsing_stops_at_its_deadline_and_says_the_report_is_incomplete() {
        let xml = forged_report(10_000, 2);
        let report = parse_until(xml.as_bytes(), None, Some(Instant::now()));
        assert!(!report.complete);
        assert!(report.cases.len() < 10_000);
        let report = parse_until(xml.as_bytes(), None, None);
        assert!(report.complete);
        assert_eq!(report.cases.len(), 10_000);
    }
}
