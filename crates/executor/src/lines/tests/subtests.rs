//! pytest 9's subtests (its `subtests` fixture and `unittest`'s `subTest`) on recorded output.

use super::*;
use warden_taxonomy::SubtestResult;

/// Recorded from pytest 9.2.0 (`-v -rA`, 80 columns) on `tests/test_sub.py` and
/// `tests/test_more.py` of the e2e fixture `subtests`: passing, failing, skipped and xfailed
/// subtests of both kinds. A `unittest` test's subtest lines land in its captured output (the
/// `PASSES` section), and pytest reports such a test as `PASSED` even when a subtest failed.
const RECORDED: &str = include_str!("subtests_pytest_9_2.txt");

#[test]
fn the_final_line_counts_subtests_apart() {
    let p = parse(RECORDED);
    let summary = p.summary().unwrap();
    assert_eq!(
        (
            summary.failed,
            summary.passed,
            summary.skipped,
            summary.xfailed,
            summary.subtests_passed
        ),
        (7, 7, 2, 1, 10)
    );
    assert_eq!(
        parse_summary("765 passed, 21194 subtests passed in 78.70s (0:01:18)")
            .map(|c| (c.passed, c.subtests_passed)),
        Some((765, 21194))
    );
}

#[test]
fn subtests_are_counted_from_the_short_summary_unittest_ones_included() {
    let p = parse(RECORDED);
    assert_eq!(
        p.subtests(),
        SubtestTally {
            passed: 10,
            // 7 failed on the final line: these five, and the two tests they fail with pytest's
            // `subtests` fixture.
            failed: 5,
            skipped: 2,
            xfailed: 1
        }
    );
    // Each test once, with its own outcome: the subtest lines are not tests.
    let tests = outcomes(&p);
    assert_eq!(tests.len(), 9, "{tests:?}");
    assert!(tests.iter().all(|(id, _)| !id.contains("SUB")), "{tests:?}");
    assert!(tests.contains(&("tests/test_sub.py::T::test_sub".into(), TestOutcome::Passed)));
    assert!(tests.contains(&("tests/test_sub.py::test_native".into(), TestOutcome::Failed)));
}

#[test]
fn failing_and_xfailed_subtests_are_named_with_their_test_and_parameters() {
    let p = parse(RECORDED);
    let named: Vec<(&str, &SubtestResult)> = p
        .subtest_results()
        .iter()
        .map(|(id, r)| (id.as_str(), r))
        .collect();
    let shown: Vec<(&str, &str, TestOutcome, Option<&str>)> = named
        .iter()
        .map(|(id, r)| (*id, r.description.as_str(), r.outcome, r.message.as_deref()))
        .collect();
    assert_eq!(
        shown,
        [
            (
                "tests/test_more.py::test_native_xfail",
                "[xf]",
                TestOutcome::Xfailed,
                Some("known")
            ),
            (
                "tests/test_more.py::test_native_all_fail_then_own_fail",
                "[a]",
                TestOutcome::Failed,
                Some("Asserti...")
            ),
            (
                "tests/test_more.py::U::test_error_sub",
                "[boom]",
                TestOutcome::Failed,
                Some("ValueError: bad value")
            ),
            (
                "tests/test_sub.py::test_native",
                "[custom] (i=1)",
                TestOutcome::Failed,
                Some("assert (1 % 2) == 0")
            ),
            (
                "tests/test_sub.py::T::test_sub",
                "(i=0, name='x y')",
                TestOutcome::Failed,
                Some("AssertionError: 0...")
            ),
            (
                "tests/test_sub.py::T::test_sub",
                "(i=2, name='x y')",
                TestOutcome::Failed,
                Some("AssertionError: 2...")
            ),
        ]
    );
}

#[test]
fn a_description_that_looks_like_a_node_id_does_not_hide_the_test() {
    let text = "\
=== test session starts ===
collected 1 item

t/test_a.py::test_x SUBFAILED[see t/test_b.py::test_y - x] (p='a - b')      [100%]
t/test_a.py::test_x FAILED                                               [100%]
=== short test summary info ===
SUBFAILED[see t/test_b.py::test_y - x] (p='a - b') t/test_a.py::test_x - assert 0
SUBSKIPPED[s] [3] t/test_a.py:9: later
FAILED t/test_a.py::test_x - contains 1 failed subtest
=== 2 failed, 3 skipped in 0.01s ===
";
    let p = parse(text);
    let results = p.subtest_results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, "t/test_a.py::test_x");
    assert_eq!(
        results[0].1.description,
        "[see t/test_b.py::test_y - x] (p='a - b')"
    );
    assert_eq!(results[0].1.message.as_deref(), Some("assert 0"));
    assert_eq!((p.subtests().failed, p.subtests().skipped), (1, 3));
    assert_eq!(
        outcomes(&p),
        [("t/test_a.py::test_x".into(), TestOutcome::Failed)]
    );
}

#[test]
fn without_a_short_summary_the_progress_lines_count_native_subtests() {
    // Killed after the subtests of the first test: no short summary, no final line.
    let text = "\
=== test session starts ===
collected 2 items

t/test_a.py::test_x SUBPASSED(i=0)                                       [ 50%]
t/test_a.py::test_x SUBFAILED(i=1)                                       [ 50%]
t/test_a.py::test_x SUBSKIPPED[s] (why)                                  [ 50%]
t/test_a.py::test_x ";
    let p = parse(text);
    assert_eq!(
        p.subtests(),
        SubtestTally {
            passed: 1,
            failed: 1,
            skipped: 1,
            xfailed: 0
        }
    );
    assert_eq!(p.running_test(), Some("t/test_a.py::test_x"));
    assert_eq!(p.failure_count(), 1);
    assert!(p.tests().is_empty());
}

#[test]
fn subtest_words_need_their_description() {
    assert_eq!(
        subtest_word("SUBPASSED[a] (i=1)"),
        Some((TestOutcome::Passed, "[a] (i=1)"))
    );
    assert_eq!(
        subtest_word("SUBXFAIL(<subtest>)"),
        Some((TestOutcome::Xfailed, "(<subtest>)"))
    );
    assert_eq!(subtest_word("SUBPASSED"), None);
    assert_eq!(subtest_word("SUBPASSEDX"), None);
    assert_eq!(subtest_word("PASSED[a]"), None);
}
