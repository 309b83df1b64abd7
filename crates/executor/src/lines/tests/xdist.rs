//! pytest-xdist's output on recorded real runs: results in any order, prefixed by the worker.

use super::*;

/// Recorded from pytest 9.2.0 with pytest-xdist 3.8.0 (`-n 2 -v -rA`) on a file with six
/// parametrised tests (one failing), a skip, an xfail and a test with a failing subtest.
const RECORDED: &str = include_str!("xdist_3_8.txt");

#[test]
fn worker_results_in_any_order_count_exactly() {
    let p = parse(RECORDED);
    let mut got = outcomes(&p);
    got.sort();
    let id = |s: &str| format!("runtime/tests/test_x.py::{s}");
    let mut want = vec![
        (id("test_p[0]"), TestOutcome::Passed),
        (id("test_p[1]"), TestOutcome::Passed),
        (id("test_p[2]"), TestOutcome::Passed),
        (id("test_p[3]"), TestOutcome::Failed),
        (id("test_p[4]"), TestOutcome::Passed),
        (id("test_p[5]"), TestOutcome::Passed),
        (id("test_skip"), TestOutcome::Skipped),
        (id("test_sub"), TestOutcome::Failed),
        (id("test_xf"), TestOutcome::Xfailed),
    ];
    want.sort();
    assert_eq!(got, want);
    // xdist says `2 workers [9 items]` where pytest says `collected 9 items`.
    assert_eq!(p.collected(), Some(9));
    assert_eq!(p.finished_count(), 9);
    // test_p[3], test_sub and its failing subtest.
    assert_eq!(p.failure_count(), 3);
    let summary = p.summary().unwrap();
    assert_eq!(
        (summary.failed, summary.passed, summary.subtests_passed),
        (3, 5, 1)
    );
    assert_eq!(
        p.subtests(),
        SubtestTally {
            passed: 1,
            failed: 1,
            skipped: 0,
            xfailed: 0
        }
    );
    assert_eq!(p.subtest_results()[0].0, id("test_sub"));
    assert_eq!(p.subtest_results()[0].1.description, "(i='1')");
}

#[test]
fn xdist_line_forms() {
    use Progress::*;
    assert_eq!(
        parse_progress_line("[gw1] [ 66%] FAILED t/test_a.py::test_p[3] "),
        Some(Finished {
            nodeid: Some("t/test_a.py::test_p[3]"),
            outcome: TestOutcome::Failed,
            reason: None
        })
    );
    assert_eq!(
        parse_progress_line("[gw0] [100%] SUBFAILED[m x] (i='1', j=[2 ::]) t/a.py::test_s[p q] "),
        Some(Subtest {
            nodeid: "t/a.py::test_s[p q]",
            outcome: TestOutcome::Failed
        })
    );
    assert_eq!(
        parse_progress_line("[gw12] PASSED t/test_a.py::test_b"),
        Some(Finished {
            nodeid: Some("t/test_a.py::test_b"),
            outcome: TestOutcome::Passed,
            reason: None
        })
    );
    assert_eq!(parse_collected("2 workers [9 items]"), Some(9));
    assert_eq!(parse_collected("16 workers [1 item]"), Some(1));
    assert_eq!(parse_collected("2 workers [9 items] extra"), None);
}
