//! Tests that write into the tree during a verification, on real pytest: state that makes a
//! rerun pass is a non-idempotent flake named by its files; code that changes makes a rerun's
//! pass no flake, and the retry context says what happened.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use warden_e2e::{Fixture, VERIFY_DEADLINE, run, verify_json, warden_at};

const NEEDS_STATE: &str = r#"import pathlib

STATE = pathlib.Path(__file__).parent / "x" / ".state"


def test_needs_state():
    if not STATE.exists():
        STATE.parent.mkdir(exist_ok=True)
        STATE.write_text("written by the first run")
        assert False, "no state yet"
"#;

const WRITES_CODE: &str = r#"import pathlib

FLAG = pathlib.Path(__file__).parent / "flag.py"


def test_needs_code():
    if not FLAG.exists():
        FLAG.write_text("READY = True\n")
        assert False, "no code yet"
"#;

#[test]
fn a_test_that_passes_on_state_it_wrote_is_a_flake_naming_the_files() {
    let fixture = Fixture::named("passing");
    fixture.write("runtime/tests/test_state.py", NEEDS_STATE);
    let out = verify_json(fixture.root(), &["runtime/tests/test_state.py"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["failure_class"], "test_flake");
    let id = "runtime/tests/test_state.py::test_needs_state";
    assert_eq!(doc["flaky_tests"], serde_json::json!([id]));
    // The tree changed during the verification: it gets no fingerprint.
    assert!(doc["fingerprint"].is_null());
    let suggestion = doc["retry_context"]["suggestion"].as_str().unwrap();
    assert!(
        suggestion.contains("depends on state it writes: runtime/tests/x/.state"),
        "{suggestion}"
    );

    // Again, for people: the file is named (the state is there now, so start from scratch).
    std::fs::remove_file(fixture.root().join("runtime/tests/x/.state")).unwrap();
    let mut cmd = warden_at(fixture.root());
    cmd.args(["verify", "runtime/tests/test_state.py", "--no-ledger"]);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    for expected in [
        "PASSED (test_flake)",
        "flaky:     runtime/tests/test_state.py::test_needs_state",
        "depends on state it writes: runtime/tests/x/.state",
        "only in files that are neither code nor configuration (runtime/tests/x/.state)",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn a_test_that_passes_after_code_changed_is_no_flake_and_the_context_says_why() {
    let fixture = Fixture::named("passing");
    fixture.write("runtime/tests/test_code.py", WRITES_CODE);
    let out = verify_json(fixture.root(), &["runtime/tests/test_code.py"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["failure_class"], "test_failure");
    assert_eq!(doc["flaky_tests"], serde_json::json!([]));
    let id = "runtime/tests/test_code.py::test_needs_code";
    assert_eq!(
        doc["retry_context"]["failed_tests"],
        serde_json::json!([id])
    );
    // The rerun ran and passed, on other code.
    assert_eq!(doc["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(doc["attempts"][1]["counts"]["passed"], 1);
    let suggestion = doc["retry_context"]["suggestion"].as_str().unwrap();
    for expected in [
        "failed on the first attempt and passed on a rerun",
        "the code changed during the verification (runtime/tests/flag.py)",
        "not a flake",
    ] {
        assert!(suggestion.contains(expected), "{expected:?}: {suggestion}");
    }
    assert!(!suggestion.contains("every attempt"), "{suggestion}");
}

/// A passing test whose process, as it exits, writes a module into the tree.
const WRITES_AS_IT_EXITS: &str = r#"import atexit, pathlib


def write():
    (pathlib.Path(__file__).parent / "late.py").write_text("LATE = True\n")


atexit.register(write)


def test_passes():
    pass
"#;

#[test]
fn a_file_written_as_the_run_s_last_process_exits_is_in_the_fingerprint_after_it() {
    // One attempt, no reruns: the fingerprint after it is taken as soon as the run's
    // processes are gone, while Warden still reads what they left. It must see the tree as
    // they left it.
    let fixture = Fixture::named("passing");
    fixture.write("runtime/tests/test_late.py", WRITES_AS_IT_EXITS);
    let out = verify_json(fixture.root(), &["runtime/tests/test_late.py"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["attempts"].as_array().map(Vec::len), Some(1), "{doc}");
    assert!(fixture.root().join("runtime/tests/late.py").exists());
    // The tree changed during the verification: it gets no fingerprint.
    assert!(doc["fingerprint"].is_null(), "{}", doc["fingerprint"]);
}
