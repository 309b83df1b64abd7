//! pytest 9's subtests end to end: the real binary on real pytest, with the `subtests` fixture
//! and `unittest`'s `subTest` (fixture `subtests`).
//!
//! pytest 9.2 prints for this fixture: `7 failed, 7 passed, 2 skipped, 1 xfailed, 10 subtests
//! passed` (five failing subtests counted in `failed` beside the two tests they fail through
//! the `subtests` fixture, skipped and xfailed subtests in `skipped` and `xfailed`, passing ones
//! apart). Warden's counts say exactly that, and its tests say which test each failing subtest
//! belongs to, with the subtest's parameters and message.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use warden_e2e::{Fixture, verify_json};

fn verify(fixture: &Fixture, args: &[&str]) -> Value {
    let out = verify_json(fixture.root(), args);
    assert_eq!(
        out.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    out.json()
}

fn test<'a>(doc: &'a Value, nodeid: &str) -> &'a Value {
    doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["nodeid"] == nodeid)
        .unwrap_or_else(|| panic!("{nodeid} not in {}", doc["tests"]))
}

const NATIVE: &str = "runtime/tests/test_sub.py::test_native";
const UNITTEST: &str = "runtime/tests/test_sub.py::T::test_sub";

#[test]
fn subtests_are_counted_as_pytest_counts_them() {
    let fixture = Fixture::named("subtests");
    let doc = verify(&fixture, &["runtime/tests", "--retries", "0"]);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["failure_class"], "test_failure");
    assert_eq!(
        doc["counts"],
        json!({
            "passed": 7, "failed": 7, "errors": 0, "skipped": 2, "xfailed": 1, "xpassed": 0,
            "subtests_passed": 10, "subtests_failed": 5, "subtests_skipped": 2,
            "subtests_xfailed": 1
        })
    );
    assert_eq!(doc["attempts"][0]["counts"], doc["counts"]);
    // One entry per test, never per subtest.
    assert_eq!(
        doc["tests"].as_array().unwrap().len(),
        9,
        "{}",
        doc["tests"]
    );
}

#[test]
fn a_failing_subtest_fails_its_test_with_its_parameters_and_message() {
    let fixture = Fixture::named("subtests");
    let doc = verify(&fixture, &["runtime/tests", "--retries", "0"]);

    // The `subtests` fixture: pytest says "contains 1 failed subtest"; Warden names it.
    let native = test(&doc, NATIVE);
    assert_eq!(native["outcome"], "failed");
    assert_eq!(native["message"], "[custom] (i=1): assert (1 % 2) == 0");
    assert_eq!(
        native["subtests"],
        json!([{"description": "[custom] (i=1)", "outcome": "failed",
                "message": "assert (1 % 2) == 0"}])
    );

    // `unittest`'s `subTest`: pytest 9.2 reports the test itself as passed; it failed.
    let unit = test(&doc, UNITTEST);
    assert_eq!(unit["outcome"], "failed");
    assert_eq!(
        unit["message"],
        "(i=0, name='x y'): AssertionError: 0 != 1 (and 1 more failing subtests)"
    );
    let descriptions: Vec<&str> = unit["subtests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions, ["(i=0, name='x y')", "(i=2, name='x y')"]);
    // The full message from the results records, not the short summary's cut one.
    assert_eq!(unit["subtests"][1]["message"], "AssertionError: 2 != 1");

    // A test that fails itself keeps its own message; its failing subtest is still listed.
    let both = test(
        &doc,
        "runtime/tests/test_more.py::test_native_all_fail_then_own_fail",
    );
    assert_eq!(both["outcome"], "failed");
    assert!(both["message"].as_str().unwrap().contains("own"), "{both}");
    assert_eq!(both["subtests"][0]["description"], "[a]");

    // Passing tests with skipped or xfailed subtests passed (their case takes the subtest's skip).
    for passing in [
        "runtime/tests/test_sub.py::test_native_skip",
        "runtime/tests/test_more.py::U::test_skip_sub",
        "runtime/tests/test_more.py::test_native_xfail",
        "runtime/tests/test_sub.py::test_native_pass",
        "runtime/tests/test_sub.py::T::test_sub_pass",
    ] {
        assert_eq!(test(&doc, passing)["outcome"], "passed", "{passing}");
    }
    assert_eq!(
        test(&doc, "runtime/tests/test_more.py::test_native_xfail")["subtests"][0]["outcome"],
        "xfailed"
    );

    // The retry context carries the subtests' parameters and messages.
    let context = &doc["retry_context"];
    let failed: Vec<&str> = context["failed_tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&NATIVE) && failed.contains(&UNITTEST),
        "{failed:?}"
    );
    let messages = context["error_messages"].to_string();
    assert!(
        messages.contains("[custom] (i=1): assert (1 % 2) == 0"),
        "{messages}"
    );
    assert!(
        messages.contains("(i=0, name='x y'): AssertionError: 0 != 1"),
        "{messages}"
    );
}

#[test]
fn a_rerun_of_a_test_with_failing_subtests_fails_again_and_is_no_flake() {
    let fixture = Fixture::named("subtests");
    let doc = verify(&fixture, &[UNITTEST, "--retries", "1"]);
    assert_eq!(doc["failure_class"], "test_failure");
    assert_eq!(doc["flaky_tests"], json!([]));
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    for attempt in attempts {
        // pytest: "2 failed, 1 passed, 1 subtests passed".
        assert_eq!(attempt["counts"]["subtests_failed"], 2, "{attempt}");
        assert_eq!(attempt["counts"]["subtests_passed"], 1, "{attempt}");
    }
}
