//! The parser on recorded pytest output and on streams made to trip it.

use super::progress::*;
use super::splitter::*;
use super::summary::*;
use super::traceback::*;
use super::*;
use proptest::prelude::*;
use warden_taxonomy::TestOutcome;

mod fast_paths;
mod subtests;
mod xdist;

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
    let c =
        parse_summary("2 failed, 11 passed, 1 skipped, 1 xfailed, 1 xpassed, 2 errors in 0.08s")
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

}

#[test]
fn kept_records_are_bounded_in_bytes_whatever_the_ids() {
    // Distinct node ids of ~8 KiB each: the record count alone would keep them all.
    let mut p = LineParser::new();
    p.feed(b"=== test session starts ===\ncollected 3000 items\n");
    let long = "x".repeat(8_000);
    for i in 0..3_000 {
        p.feed(format!("t/test_a.py::test_{i}_{long} PASSED [ 50%]\n").as_bytes());
    }
    p.finish();
    let kept: usize = p
        .tests()
        .iter()
        .map(|t| t.nodeid.len() + RECORD_OVERHEAD_BYTES)
        .sum();
    assert!(kept <= MAX_RECORD_BYTES, "{kept} bytes kept");
    assert!(p.tests().len() < 3_000);
    assert_eq!(p.tests().len() as u64 + p.tests_omitted(), 3_000);
    // Counting goes on past the bound.
    assert_eq!(p.finished_count(), 3_000);
}
