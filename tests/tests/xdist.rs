//! pytest-xdist's workers under Warden, end to end (the policy opts in with
//! `[pytest] allow_options = ["xdist"]`): results reported by workers in any order are counted
//! exactly, and the deadline's kill reaches the workers and what they started.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use serde_json::json;
use warden_e2e::{Fixture, processes_mentioning, verify_json};

/// A policy on top of the built-in rules that opts in to xdist.
fn xdist_policy(fixture: &Fixture, limits: &str) -> String {
    let path = fixture.outside().join("xdist.toml");
    fs::write(
        &path,
        format!(
            "version = 1\nextends = \"builtin\"\n\n[limits]\n{limits}\n\n[pytest]\nallow_options = [\"xdist\"]\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn worker_results_are_counted_exactly() {
    let fixture = Fixture::named("xdist");
    let policy = xdist_policy(&fixture, "");
    let out = verify_json(
        fixture.root(),
        &[
            "runtime/tests",
            "--retries",
            "0",
            "--policy",
            &policy,
            "--",
            "-n",
            "2",
        ],
    );
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["failure_class"], "test_failure");
    assert_eq!(
        doc["counts"],
        json!({
            "passed": 5, "failed": 3, "errors": 0, "skipped": 1, "xfailed": 1, "xpassed": 0,
            "subtests_passed": 1, "subtests_failed": 1, "subtests_skipped": 0,
            "subtests_xfailed": 0
        })
    );
    let mut tests: Vec<(String, String)> = doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["nodeid"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("runtime/tests/test_x.py::")
                    .to_owned(),
                t["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    tests.sort();
    let expected: Vec<(String, String)> = [
        ("test_p[0]", "passed"),
        ("test_p[1]", "passed"),
        ("test_p[2]", "passed"),
        ("test_p[3]", "failed"),
        ("test_p[4]", "passed"),
        ("test_p[5]", "passed"),
        ("test_skip", "skipped"),
        ("test_sub", "failed"),
        ("test_xf", "xfailed"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(tests, expected);
    // The run really had workers: pytest's output names them.
    assert!(
        doc["stdout"]["text"].as_str().unwrap().contains("[gw1]"),
        "{}",
        doc["stdout"]["text"]
    );
}

#[test]
fn a_hang_in_a_worker_is_killed_with_every_worker_at_the_deadline() {
    let fixture = Fixture::named("hang");
    let policy = xdist_policy(&fixture, "grace_secs = 1");
    let out = verify_json(
        fixture.root(),
        &[
            "runtime/tests",
            // Long enough for the workers to start on a loaded machine and report test_quick.
            "--timeout",
            "60",
            "--policy",
            &policy,
            "--",
            "-n",
            "2",
        ],
    );
    assert_eq!(out.code, Some(4), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "timeout");
    assert_eq!(doc["failure_class"], "test_timeout");
    assert_eq!(doc["counts"]["passed"], 1, "{}", doc["stdout"]["text"]);
    // The workers, the hanging test and its pipe-holding grandchild are all gone.
    let marker = fixture.root().display().to_string();
    assert_eq!(processes_mentioning(&marker), Vec::<(i32, String)>::new());
}
