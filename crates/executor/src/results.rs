//! Turning what a run produced into results: per-test outcomes, counts, collection errors, and
//! the run's outcome with its diagnostics.
//!
//! Per-test results come from the results records when there are any: they are structured,
//! written from pytest's own reports, and never mixed with test output. The output stream
//! completes them when they are cut short (the run was killed: the test that was running has no
//! record) and replaces them when they are missing. Counts are pytest's own final
//! summary line when it printed one (it counts reports, so a test that passes and then errors in
//! teardown counts twice, as pytest says); a disagreement with the per-test results is logged.

use std::collections::HashMap;

use warden_taxonomy::{MAX_SUBTESTS_KEPT, SubtestResult, TestCounts, TestOutcome, TestResult};

use crate::evidence::{CollectionError, ResultsSource, RunOutcome};
use crate::lines::{LineParser, MAX_RECORD_BYTES, RECORD_OVERHEAD_BYTES, StderrScanner, truncate};
use crate::records::Records;

/// Per-test findings of one run.
#[derive(Debug)]
pub(crate) struct Findings {
    pub(crate) tests: Vec<TestResult>,
    pub(crate) tests_omitted: u64,
    pub(crate) counts: TestCounts,
    pub(crate) source: ResultsSource,
    pub(crate) collection_errors: Vec<CollectionError>,
    /// What became of the results records.
    pub(crate) report: Report,
}

/// Whether the results records were there to read, and read to the session's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// No report: pytest never wrote it, or something removed it.
    Missing,
    /// Cut short, malformed, or over the size bound.
    Incomplete,
    /// Read to its end.
    Complete,
}

/// Combines the report, the stdout parser and the stderr scanner.
pub(crate) fn merge(
    records: Option<Records>,
    stream: &LineParser,
    stderr: &StderrScanner,
) -> Findings {
    let mut collection_errors: Vec<CollectionError> = stream.collection_errors().to_vec();
    let report_state = match &records {
        None => Report::Missing,
        Some(report) if report.complete => Report::Complete,
        Some(_) => Report::Incomplete,
    };
    let mut failure_messages = HashMap::new();
    let (mut tests, mut tests_omitted, source) = match records {
        Some(report) if !report.cases.is_empty() || report.complete => {
            let complete = report.complete;
            let omitted = report.omitted;
            let mut tests = from_records(
                report,
                stream,
                &mut collection_errors,
                &mut failure_messages,
            );
            if !complete {
                tracing::warn!(
                    "results records incomplete; completing them from the output stream"
                );
                let known: HashMap<String, ()> =
                    tests.iter().map(|t| (t.nodeid.clone(), ())).collect();
                tests.extend(
                    stream
                        .tests()
                        .iter()
                        .filter(|t| !known.contains_key(&t.nodeid))
                        .cloned(),
                );
            }
            (tests, omitted, ResultsSource::Records)
        }
        _ if !stream.tests().is_empty() || stream.session_started() => (
            stream.tests().to_vec(),
            stream.tests_omitted(),
            ResultsSource::Stream,
        ),
        _ => (Vec::new(), 0, ResultsSource::None),
    };
    tests_omitted = tests_omitted.max(stream.tests_omitted());
    // Before the byte bound, which counts the subtests kept too.
    apply_subtests(&mut tests, stream, &failure_messages);
    tests_omitted += keep_within_bytes(&mut tests);
    // Collection-error entries carry the collection error's message.
    for test in &mut tests {
        if let Some(e) = collection_errors
            .iter()
            .find(|e| e.path.as_deref() == Some(test.nodeid.as_str()))
            && test.outcome == TestOutcome::Error
        {
            test.message = Some(e.message.clone());
        }
    }
    collection_errors.extend(stderr.conftest_errors().iter().cloned());

    let subtests = stream.subtests();
    let mut counted = TestCounts::of(&tests);
    // As pytest counts them (see [`TestCounts`]): subtests that did not pass beside the tests.
    counted.failed += subtests.failed;
    counted.skipped += subtests.skipped;
    counted.xfailed += subtests.xfailed;
    counted.subtests_passed = subtests.passed;
    let counts = match stream.summary() {
        Some(summary) => {
            if summary != counted && tests_omitted == 0 {
                tracing::warn!(
                    ?summary,
                    ?counted,
                    "pytest's summary line and the per-test results disagree; reporting pytest's counts"
                );
            }
            summary
        }
        None => counted,
    };
    let counts = TestCounts {
        subtests_failed: subtests.failed,
        subtests_skipped: subtests.skipped,
        subtests_xfailed: subtests.xfailed,
        ..counts
    };
    // Keep tests sorted as they appeared; nothing else to do.
    tests.shrink_to_fit();
    Findings {
        tests,
        tests_omitted,
        counts,
        source,
        collection_errors,
        report: report_state,
    }
}

/// Cuts `tests` to what fits in [`MAX_RECORD_BYTES`] (node ids, messages and the fixed
/// allowance per record), returning how many were cut: the merged results are kept, cloned
/// into the report and written to the ledger, so they are bounded like each source.
fn keep_within_bytes(tests: &mut Vec<TestResult>) -> u64 {
    let mut kept = 0usize;
    let fits = tests
        .iter()
        .position(|t| {
            kept += t.nodeid.len()
                + t.message.as_ref().map_or(0, String::len)
                + RECORD_OVERHEAD_BYTES
                + t.subtests
                    .iter()
                    .map(|s| {
                        s.description.len()
                            + s.message.as_ref().map_or(0, String::len)
                            + RECORD_OVERHEAD_BYTES
                    })
                    .sum::<usize>();
            kept > MAX_RECORD_BYTES
        })
        .unwrap_or(tests.len());
    let cut = tests.len() - fits;
    tests.truncate(fits);
    cut as u64
}

/// Gives each test the subtests the stream reported for it (pytest 9's `subtests` fixture,
/// `unittest`'s `subTest`), with the full messages of the records' failures
/// (`failure_messages`, by node id; the short summary's are cut to the terminal's width).
///
/// A failing subtest fails its test (pytest 9.2 reports a `unittest` test whose `subTest`s
/// failed as passed), and a test whose own message says nothing more gets its first failing
/// subtest's description and message. A test that passed with skipped or xfailed subtests
/// passed: a test has one case in the records, whose outcome takes the subtest's skip.
fn apply_subtests(
    tests: &mut [TestResult],
    stream: &LineParser,
    failure_messages: &HashMap<String, Vec<String>>,
) {
    let tally = stream.subtests();
    let results = stream.subtest_results();
    if results.is_empty() && tally.skipped + tally.xfailed == 0 {
        return;
    }
    let mut by_test: HashMap<&str, Vec<&SubtestResult>> = HashMap::new();
    for (nodeid, result) in results {
        by_test.entry(nodeid.as_str()).or_default().push(result);
    }
    let streamed: HashMap<&str, TestOutcome> = stream
        .tests()
        .iter()
        .map(|t| (t.nodeid.as_str(), t.outcome))
        .collect();
    for test in tests.iter_mut() {
        let subtests = by_test.get(test.nodeid.as_str());
        let messages = failure_messages
            .get(&test.nodeid)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut failed = 0;
        for sub in subtests.into_iter().flatten() {
            let mut sub = (*sub).clone();
            if sub.outcome == TestOutcome::Failed {
                // The records' failures come in the order pytest reported the subtests.
                if let Some(full) = messages.get(failed).filter(|m| !m.is_empty()) {
                    sub.message = Some(full.clone());
                }
                failed += 1;
            }
            if test.subtests.len() < MAX_SUBTESTS_KEPT {
                test.subtests.push(sub);
            }
        }
        if failed > 0 {
            if !test.outcome.is_failure() {
                test.outcome = TestOutcome::Failed;
            }
            // The test's own message is pytest's "contains 1 failed subtest", one of the
            // subtests' (no failure of its own), or none: the first subtest's says more.
            let own_failure = messages.len() > failed
                && !test
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("contains ") && m.contains(" failed subtest"));
            if !own_failure
                && let Some(first) = test
                    .subtests
                    .iter()
                    .find(|s| s.outcome == TestOutcome::Failed)
            {
                let mut message = match &first.message {
                    Some(m) => format!("{}: {m}", first.description),
                    None => first.description.clone(),
                };
                if failed > 1 {
                    message.push_str(&format!(" (and {} more failing subtests)", failed - 1));
                }
                test.message = Some(truncate(&message));
            }
        } else if matches!(test.outcome, TestOutcome::Skipped | TestOutcome::Xfailed)
            && streamed.get(test.nodeid.as_str()) == Some(&TestOutcome::Passed)
        {
            test.outcome = TestOutcome::Passed;
            test.message = None;
        }
    }
}

fn from_records(
    report: Records,
    stream: &LineParser,
    collection_errors: &mut Vec<CollectionError>,
    failure_messages: &mut HashMap<String, Vec<String>>,
) -> Vec<TestResult> {
    let streamed: HashMap<&str, &TestResult> = stream
        .tests()
        .iter()
        .map(|t| (t.nodeid.as_str(), t))
        .collect();
    // One case per node id: the records' reader keeps a test's last attempt.
    let mut tests: Vec<TestResult> = Vec::with_capacity(report.cases.len());
    for case in report.cases {
        let nodeid = case.nodeid;
        if let Some((message, syntax_error)) = case.collection_error.clone()
            && !collection_errors.iter().any(|e| {
                e.path.as_deref() == Some(nodeid.as_str()) && e.message != "collection failure"
            })
        {
            collection_errors.retain(|e| e.path.as_deref() != Some(nodeid.as_str()));
            collection_errors.push(CollectionError {
                path: Some(nodeid.clone()),
                message: message.unwrap_or_else(|| "collection failure".to_owned()),
                syntax_error,
                conftest: false,
            });
        }
        if !case.failure_messages.is_empty() {
            failure_messages.insert(nodeid.clone(), case.failure_messages);
        }
        let mut result = TestResult {
            nodeid,
            outcome: case.outcome,
            message: case.message,
            duration_ms: case.duration_ms,
            subtests: Vec::new(),
        };
        // A non-strict XPASS's reason is on the short summary line, not in its report.
        if let Some(seen) = streamed.get(result.nodeid.as_str())
            && result.message.is_none()
            && seen.outcome == result.outcome
        {
            result.message.clone_from(&seen.message);
        }
        tests.push(result);
    }
    tests
}

/// What the process did, as far as the outcome is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
}

/// The run's outcome, and run-level diagnostics to go with it.
pub(crate) fn outcome(
    exit: Option<Exit>,
    timed_out: bool,
    python: &str,
    stream: &LineParser,
    stderr: &StderrScanner,
    findings: &Findings,
) -> (RunOutcome, Vec<String>) {
    let mut diagnostics = Vec::new();
    let has_collection_errors = findings.collection_errors.iter().any(|e| !e.conftest);
    let pytest_started = stream.session_started() || findings.source == ResultsSource::Records;
    let outcome = if timed_out {
        RunOutcome::TimedOut
    } else {
        match exit {
            None => {
                diagnostics.push("the pytest process could not be waited for".to_owned());
                RunOutcome::Crashed
            }
            Some(Exit {
                signal: Some(signal),
                ..
            }) => {
                diagnostics.push(format!(
                    "pytest was killed by signal {signal} ({}), not by Warden",
                    signal_name(signal)
                ));
                RunOutcome::Crashed
            }
            Some(Exit { code: Some(2), .. }) if !pytest_started && stderr.no_safe_path() => {
                diagnostics.push(format!(
                    "`{python}` does not know `-P` (Python 3.10 or older): Warden needs Python 3.11 or later, whose safe path keeps modules in the root from standing in for pytest and the standard library; point Warden at a newer interpreter (the policy's `python`, or WARDEN_PYTHON)"
                ));
                RunOutcome::Infrastructure
            }
            Some(Exit { code: Some(1), .. }) if !pytest_started && stderr.pytest_missing() => {
                diagnostics.push(format!(
                    "pytest is not installed for `{python}`: install it with `{python} -m pip install pytest`, or point Warden at an interpreter that has it (the policy's `python`, or WARDEN_PYTHON)"
                ));
                RunOutcome::Infrastructure
            }
            Some(Exit { code: Some(1), .. }) if !pytest_started => {
                diagnostics.push(format!(
                    "`{python}` failed before pytest started: {}",
                    stderr.last_line().unwrap_or("no error output")
                ));
                RunOutcome::Crashed
            }
            Some(Exit {
                code: Some(code), ..
            }) => match RunOutcome::from_exit_code(code) {
                Some(RunOutcome::Interrupted) if has_collection_errors => {
                    RunOutcome::CollectionFailed
                }
                Some(RunOutcome::Interrupted) => {
                    if stream
                        .interruption()
                        .is_some_and(|i| i.contains("during collection"))
                    {
                        RunOutcome::CollectionFailed
                    } else {
                        RunOutcome::Interrupted
                    }
                }
                Some(outcome) => outcome,
                None => {
                    diagnostics.push(format!(
                        "pytest exited with code {code}, which pytest itself never uses (a test or plugin exited the process)"
                    ));
                    RunOutcome::Crashed
                }
            },
            Some(Exit {
                code: None,
                signal: None,
            }) => RunOutcome::Crashed,
        }
    };
    let outcome = match outcome {
        RunOutcome::Passed if failures_reported(findings) > 0 => {
            diagnostics.push(format!(
                "pytest exited 0 but reported {} failed or errored tests: a test, fixture or plugin changed the exit status",
                failures_reported(findings)
            ));
            RunOutcome::TestsFailed
        }
        RunOutcome::Passed => match incomplete(stream, findings) {
            Some(missing) => {
                diagnostics.push(missing);
                RunOutcome::Interrupted
            }
            None => RunOutcome::Passed,
        },
        other => other,
    };
    match outcome {
        RunOutcome::Interrupted => {
            if let Some(text) = stream.interruption() {
                diagnostics.push(text.to_owned());
            }
        }
        RunOutcome::InternalError => {
            if let Some(e) = stream.internal_error().or(stderr.internal_error()) {
                diagnostics.push(format!("pytest internal error: {e}"));
            }
        }
        RunOutcome::UsageError => {
            for e in findings.collection_errors.iter().filter(|e| e.conftest) {
                // pytest's own phrase, which the classifier reads as a broken conftest (a usage
                // error) rather than as the import error the message also names.
                diagnostics.push(format!(
                    "error while loading conftest {}: {}",
                    e.path.as_deref().unwrap_or("?"),
                    e.message
                ));
            }
            if let Some(usage) = stderr.usage_error() {
                diagnostics.push(usage.to_owned());
            }
        }
        RunOutcome::NoTests => diagnostics.push("pytest collected no tests".to_owned()),
        _ => {}
    }
    (outcome, diagnostics)
}

/// Failures and errors in the results: pytest's counts, or the tests when they say more.
fn failures_reported(findings: &Findings) -> u64 {
    let failing = findings
        .tests
        .iter()
        .filter(|t| t.outcome.is_failure())
        .count() as u64;
    findings.counts.failures().max(failing)
}

/// What a run that exited 0 is missing to count as passed, said as a person would, or `None`
/// when it is complete: every test pytest said it collected is reported, pytest printed its
/// final counts line, and its results records (the "report") were there and read to the
/// session's end. A genuine pytest session that exits 0 always does all three; a test, fixture
/// or plugin that ends the process early (`os._exit(0)`, `sys.exit(0)` from a hook), or removes
/// the records, does not.
///
/// A `--collect-only` run that collected and ran nothing is left alone: it is not a pass
/// either (the classifier reports no tests).
fn incomplete(stream: &LineParser, findings: &Findings) -> Option<String> {
    let reported = findings.tests.len() as u64 + findings.tests_omitted;
    if stream.collect_only() && reported == 0 {
        return None;
    }
    let mut missing = Vec::new();
    let short = stream.collected().filter(|&collected| reported < collected);
    if stream.summary().is_none() {
        missing.push("no summary line".to_owned());
    }
    match findings.report {
        Report::Missing => missing.push("no report".to_owned()),
        Report::Incomplete => missing.push("an incomplete report".to_owned()),
        Report::Complete => {}
    }
    if short.is_none() && missing.is_empty() {
        return None;
    }
    let progress = match (short, stream.collected()) {
        (Some(collected), _) => format!("after {reported} of {collected} collected tests"),
        (None, Some(collected)) => {
            format!("with {reported} of {collected} collected tests reported")
        }
        (None, None) => format!("with {reported} tests reported and no collection count"),
    };
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!("; {}", missing.join(", "))
    };
    Some(format!(
        "pytest exited 0 {progress}{missing}: the run did not finish, so it is not a pass"
    ))
}

/// The conventional name of a signal number.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(text: &str) -> LineParser {
        let mut p = LineParser::new();
        p.feed(text.as_bytes());
        p.finish();
        p
    }

    fn stderr(text: &str) -> StderrScanner {
        let mut s = StderrScanner::with_root(camino::Utf8Path::new("/r"));
        s.feed(text.as_bytes());
        s.finish();
        s
    }

    const STREAM: &str = "\
=== test session starts ===
collected 4 items

t/test_a.py::test_ok PASSED [ 25%]
t/test_a.py::test_xp XPASS (maybe) [ 50%]
t/test_a.py::TestK::test_f FAILED [ 75%]
t/test_a.py::test_p[a.b] PASSED [100%]
=== short test summary info ===
XPASS t/test_a.py::test_xp - maybe
FAILED t/test_a.py::TestK::test_f - assert 0
=== 1 failed, 2 passed, 1 xpassed in 0.1s ===
";

    const RECORDS: &str = r#"{"id": "t/test_a.py::test_ok", "when": "call", "outcome": "passed", "duration": 0.001}
{"id": "t/test_a.py::test_xp", "when": "call", "outcome": "passed", "duration": 0.002, "xfail": "maybe"}
{"id": "t/test_a.py::TestK::test_f", "when": "call", "outcome": "failed", "duration": 0.003, "message": "assert 0"}
{"id": "t/test_a.py::test_p[a.b]", "when": "call", "outcome": "passed", "duration": 0.004}
{"end": 1}
"#;

    #[test]
    fn records_give_the_results_and_the_stream_the_xpass_reason() {
        let s = stream(STREAM);
        let report = crate::records::parse(RECORDS.as_bytes());
        let f = merge(Some(report), &s, &stderr(""));
        assert_eq!(f.source, ResultsSource::Records);
        let got: Vec<(&str, TestOutcome)> = f
            .tests
            .iter()
            .map(|t| (t.nodeid.as_str(), t.outcome))
            .collect();
        assert_eq!(
            got,
            [
                ("t/test_a.py::test_ok", TestOutcome::Passed),
                ("t/test_a.py::test_xp", TestOutcome::Xpassed),
                ("t/test_a.py::TestK::test_f", TestOutcome::Failed),
                ("t/test_a.py::test_p[a.b]", TestOutcome::Passed),
            ]
        );
        assert_eq!(f.tests[2].message.as_deref(), Some("assert 0"));
        assert_eq!(f.tests[2].duration_ms, Some(3));
        assert_eq!(f.tests[1].message.as_deref(), Some("maybe"));
        assert_eq!(f.counts, TestCounts::of(&f.tests));
    }

    #[test]
    fn reruns_fold_by_node_id_and_the_last_wins() {
        let records = r#"{"id": "t/test_a.py::test_f", "when": "call", "outcome": "failed", "duration": 0.1, "message": "first"}
{"id": "t/test_a.py::test_g", "when": "call", "outcome": "passed", "duration": 0.1}
{"id": "t/test_a.py::test_f", "when": "call", "outcome": "passed", "duration": 0.2}
{"end": 0}
"#;
        let s = stream("");
        let f = merge(
            Some(crate::records::parse(records.as_bytes())),
            &s,
            &stderr(""),
        );
        assert_eq!(f.tests.len(), 2);
        assert_eq!(f.tests[0].nodeid, "t/test_a.py::test_f");
        assert_eq!(f.tests[0].outcome, TestOutcome::Passed);
        assert_eq!(f.tests[0].duration_ms, Some(200));
    }

    #[test]
    fn without_a_report_the_stream_gives_partial_results() {
        let s = stream(
            "=== test session starts ===\nt/test_a.py::test_ok PASSED [ 50%]\nt/test_a.py::test_hang ",
        );
        let f = merge(None, &s, &stderr(""));
        assert_eq!(f.source, ResultsSource::Stream);
        assert_eq!(f.tests.len(), 1);
        assert_eq!(f.counts.passed, 1);
    }

    #[test]
    fn summary_counts_win_over_per_test_counts() {
        // A pass followed by a teardown error: pytest counts both.
        let s = stream(
            "=== test session starts ===\nt/test_a.py::test_t PASSED [100%]\nt/test_a.py::test_t ERROR [100%]\n=== 1 passed, 1 error in 0.1s ===\n",
        );
        let f = merge(None, &s, &stderr(""));
        assert_eq!(f.tests.len(), 1);
        assert_eq!(f.tests[0].outcome, TestOutcome::Error);
        assert_eq!((f.counts.passed, f.counts.errors), (1, 1));
    }

    fn decide(
        code: Option<i32>,
        signal: Option<i32>,
        out: &str,
        err: &str,
    ) -> (RunOutcome, Vec<String>) {
        decide_with_report(code, signal, out, err, None)
    }

    fn decide_with_report(
        code: Option<i32>,
        signal: Option<i32>,
        out: &str,
        err: &str,
        records: Option<&str>,
    ) -> (RunOutcome, Vec<String>) {
        let s = stream(out);
        let e = stderr(err);
        let report = records.map(|r| crate::records::parse(r.as_bytes()));
        let f = merge(report, &s, &e);
        outcome(Some(Exit { code, signal }), false, "py", &s, &e, &f)
    }

    #[test]
    fn exit_0_is_a_pass_only_when_the_run_is_complete() {
        let complete = "=== test session starts ===
collected 2 items

t/test_a.py::test_a PASSED [ 50%]
t/test_a.py::test_b PASSED [100%]
=== 2 passed in 0.1s ===
";
        let records = r#"{"id": "t/test_a.py::test_a", "when": "call", "outcome": "passed"}
{"id": "t/test_a.py::test_b", "when": "call", "outcome": "passed"}
{"end": 0}
"#;
        let (o, d) = decide_with_report(Some(0), None, complete, "", Some(records));
        assert_eq!((o, d), (RunOutcome::Passed, vec![]));

        // `os._exit(0)` in the first of six tests: no summary, no report.
        let cut = "=== test session starts ===
collected 6 items

t/test_a.py::test_a PASSED [ 16%]
t/test_a.py::test_b ";
        let (o, d) = decide(Some(0), None, cut, "");
        assert_eq!(o, RunOutcome::Interrupted);
        assert_eq!(
            d,
            [
                "pytest exited 0 after 1 of 6 collected tests; no summary line, no report: the run did not finish, so it is not a pass"
            ]
        );
        // Every test reported and the summary printed, but the report was removed.
        let (o, d) = decide(Some(0), None, complete, "");
        assert_eq!(o, RunOutcome::Interrupted);
        assert!(
            d[0].contains("with 2 of 2 collected tests reported; no report"),
            "{d:?}"
        );
        // A report that stops short.
        let (o, d) = decide_with_report(Some(0), None, complete, "", Some(&records[..60]));
        assert_eq!(o, RunOutcome::Interrupted);
        assert!(d[0].contains("an incomplete report"), "{d:?}");
        // A complete report that lists fewer tests than pytest collected.
        let short = records.replace(
            "{\"id\": \"t/test_a.py::test_b\", \"when\": \"call\", \"outcome\": \"passed\"}\n",
            "",
        );
        assert_ne!(short, records);
        let (o, d) = decide_with_report(
            Some(0),
            None,
            "=== test session starts ===
collected 2 items
=== 1 passed in 0.1s ===
",
            "",
            Some(&short),
        );
        assert_eq!(o, RunOutcome::Interrupted);
        assert!(
            d[0].starts_with("pytest exited 0 after 1 of 2 collected tests:"),
            "{d:?}"
        );
        // `--collect-only` ran nothing by request: left to the classifier (no tests).
        let co = "=== test session starts ===
collected 2 items

=== 2 tests collected in 0.1s ===
";
        let empty = "{\"end\": 0}\n";
        assert_eq!(
            decide_with_report(Some(0), None, co, "", Some(empty)).0,
            RunOutcome::Passed
        );
    }

    #[test]
    fn exit_codes_and_evidence_decide_the_outcome() {
        let session = "=== test session starts ===\n";
        let passed = "=== test session starts ===\n=== no tests ran in 0.1s ===\n";
        assert_eq!(
            decide_with_report(Some(0), None, passed, "", Some("{\"end\": 5}\n")).0,
            RunOutcome::Passed
        );
        assert_eq!(
            decide(Some(1), None, session, "").0,
            RunOutcome::TestsFailed
        );
        assert_eq!(
            decide(Some(2), None, session, "").0,
            RunOutcome::Interrupted
        );
        let collection = format!(
            "{session}=== ERRORS ===\n___ ERROR collecting t/test_x.py ___\nE   SyntaxError: bad\n!!! Interrupted: 1 error during collection !!!\n"
        );
        assert_eq!(
            decide(Some(2), None, &collection, "").0,
            RunOutcome::CollectionFailed
        );
        assert_eq!(
            decide(Some(3), None, session, "").0,
            RunOutcome::InternalError
        );
        let (o, d) = decide(
            Some(4),
            None,
            "",
            "ImportError while loading conftest '/r/t/conftest.py'.\nE   ModuleNotFoundError: No module named 'x'\n",
        );
        assert_eq!(o, RunOutcome::UsageError);
        assert_eq!(
            d,
            [
                "error while loading conftest t/conftest.py: ModuleNotFoundError: No module named 'x'"
            ]
        );
        assert_eq!(decide(Some(5), None, session, "").0, RunOutcome::NoTests);
        let (o, d) = decide(
            Some(1),
            None,
            "",
            "/venv/bin/python: No module named pytest\n",
        );
        assert_eq!(o, RunOutcome::Infrastructure);
        assert!(d[0].contains("py -m pip install pytest"), "{d:?}");
        assert_eq!(
            decide(Some(1), None, "", "Traceback...\nImportError: x\n").0,
            RunOutcome::Crashed
        );
        assert_eq!(decide(Some(7), None, session, "").0, RunOutcome::Crashed);
        let (o, d) = decide(None, Some(11), session, "");
        assert_eq!(o, RunOutcome::Crashed);
        assert!(d[0].contains("SIGSEGV"));
    }
}
