//! `warden classify` end to end: stored results of real `warden verify` runs, classified again
//! offline, alone and with history.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use warden_e2e::{Fixture, Run, run, verify_json, warden};

const DEADLINE: Duration = Duration::from_secs(60);

/// `warden verify --json ARGS` in `fixture`, stored next to the project as `name`.
fn stored_verify(fixture: &Fixture, args: &[&str], code: i32, name: &str) -> (Value, PathBuf) {
    let out = verify_json(fixture.root(), args);
    assert_eq!(out.code, Some(code), "{}{}", out.stdout, out.stderr);
    let path = fixture.outside().join(name);
    fs::write(&path, &out.stdout).unwrap();
    (out.json(), path)
}

/// `warden [--json] classify RESULT [--history FILE]...`, from a directory of its own.
fn classify(result: &Path, history: &[&Path], json: bool) -> Run {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = warden();
    cmd.current_dir(cwd.path());
    if json {
        cmd.arg("--json");
    }
    cmd.arg("classify").arg(result);
    for file in history {
        cmd.arg("--history").arg(file);
    }
    let out = run(&mut cmd, None, DEADLINE);
    // Pure: it wrote nothing where it ran.
    assert_eq!(fs::read_dir(cwd.path()).unwrap().count(), 0);
    out
}

fn classified(result: &Path, history: &[&Path]) -> Value {
    let out = classify(result, history, true);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "--json is one line");
    let doc = out.json();
    let keys: BTreeSet<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["failure_class", "retry_context"].into());
    doc
}

#[test]
fn a_stored_result_classifies_as_verify_did() {
    let fixture = Fixture::named("failing");
    let (verified, result) = stored_verify(&fixture, &["runtime/tests"], 1, "failing.json");
    let doc = classified(&result, &[]);
    assert_eq!(doc["failure_class"], "test_failure");
    assert_eq!(doc["failure_class"], verified["failure_class"]);
    assert_eq!(
        doc["retry_context"]["failed_tests"],
        verified["retry_context"]["failed_tests"]
    );
    assert_eq!(doc["retry_context"], verified["retry_context"]);

    // Without --json: the same document, indented for people.
    let out = classify(&result, &[], false);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.lines().count() > 1);
    assert_eq!(out.json(), doc);
}

#[test]
fn every_kind_of_stored_result_keeps_its_class() {
    let cases: [(&str, &[&str], i32, Option<&str>); 5] = [
        ("passing", &["runtime/tests"], 0, None),
        ("syntax_error", &["runtime/tests"], 1, Some("syntax_error")),
        (
            "broken_conftest",
            &["runtime/tests"],
            1,
            Some("usage_error"),
        ),
        ("empty", &["runtime/tests"], 1, Some("no_tests")),
        ("passing", &["src/outside"], 3, Some("policy_denied")),
    ];
    for (name, args, code, class) in cases {
        let fixture = Fixture::named(name);
        let (verified, result) = stored_verify(&fixture, args, code, "result.json");
        let doc = classified(&result, &[]);
        assert_eq!(doc["failure_class"], json!(class), "{name} {args:?}");
        assert_eq!(doc["failure_class"], verified["failure_class"], "{name}");
        assert_eq!(doc["retry_context"], verified["retry_context"], "{name}");
    }
}

#[test]
fn a_flake_confirmed_by_rerun_stays_a_flake() {
    let fixture = Fixture::named("flaky");
    let state = fixture.outside().join("state");
    fixture.write("runtime/tests/state_dir.txt", state.to_str().unwrap());
    let (verified, result) = stored_verify(&fixture, &["runtime/tests"], 0, "flaky.json");
    assert_eq!(verified["failure_class"], "test_flake");
    let doc = classified(&result, &[]);
    assert_eq!(doc["failure_class"], "test_flake");
}

#[test]
fn history_turns_a_failure_on_the_same_code_into_a_flake() {
    let fixture = Fixture::named("flaky");
    let state = fixture.outside().join("state");
    fixture.write("runtime/tests/state_dir.txt", state.to_str().unwrap());
    let target = "runtime/tests/test_flaky.py::test_follows_switch";
    let (_, passed) = stored_verify(&fixture, &[target, "--no-ledger"], 0, "passed.json");
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join("switch"), "fail").unwrap();
    let (failed, result) = stored_verify(
        &fixture,
        &[target, "--no-ledger", "--retries", "0"],
        1,
        "failed.json",
    );
    assert_eq!(failed["failure_class"], "test_failure");
    assert_eq!(classified(&result, &[])["failure_class"], "test_failure");
    let doc = classified(&result, &[&passed]);
    assert_eq!(doc["failure_class"], "test_flake");

    // A ledger works as history too.
    let (_, _) = stored_verify(&fixture, &[target, "--retries", "0"], 1, "ledgered.json");
    fs::write(state.join("switch"), "pass").unwrap();
    stored_verify(&fixture, &[target], 0, "ledgered-pass.json");
    assert_eq!(
        classified(&result, &[&fixture.ledger()])["failure_class"],
        "test_flake"
    );

    // History from other code proves nothing: after an edit, the pass is no alibi.
    fixture.write("runtime/tests/test_new.py", "def test_new():\n    pass\n");
    fs::write(state.join("switch"), "fail").unwrap();
    let (edited, edited_result) = stored_verify(
        &fixture,
        &[target, "--no-ledger", "--retries", "0"],
        1,
        "edited.json",
    );
    assert_ne!(edited["fingerprint"], failed["fingerprint"]);
    assert_eq!(
        classified(&edited_result, &[&passed, &fixture.ledger()])["failure_class"],
        "test_failure"
    );
}

#[test]
fn unusable_files_exit_2_with_the_file_named() {
    let fixture = Fixture::named("failing");
    let (_, result) = stored_verify(&fixture, &["runtime/tests"], 1, "result.json");
    let outside = fixture.outside();
    let missing = outside.join("missing.json");
    let not_json = outside.join("not.json");
    fs::write(&not_json, "pytest said: 1 failed\n").unwrap();
    let wrong_shape = outside.join("shape.json");
    fs::write(&wrong_shape, r#"{"failure_class": "test_failure"}"#).unwrap();
    let future = outside.join("future.json");
    let mut doc: Value = serde_json::from_str(&fs::read_to_string(&result).unwrap()).unwrap();
    doc["schema_version"] = json!(2);
    fs::write(&future, doc.to_string()).unwrap();
    for (bad, mentions) in [
        (&missing, "does not exist"),
        (&not_json, "not.json"),
        (&wrong_shape, "shape.json"),
        (&future, "schema_version 2"),
    ] {
        let exits_2 = |out: Run| {
            let what = bad.display();
            assert_eq!(out.code, Some(2), "{what}: {}{}", out.stdout, out.stderr);
            out
        };
        let error = exits_2(classify(bad, &[], true)).error();
        assert!(error.contains(mentions), "{error}");
        // And as history.
        exits_2(classify(&result, &[bad], true));
    }
}
