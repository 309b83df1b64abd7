//! `warden verify` end to end: the real binary runs real pytest on fixture projects, for every
//! status and failure class of the contract, with its exit codes, JSON, ledger and history.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_e2e::{
    Fixture, Run, processes_mentioning, python_with_pytest, run, verify_json, warden_at,
    write_executable,
};
use warden_taxonomy::VerifyReport;

fn keys(doc: &Value) -> BTreeSet<&str> {
    doc.as_object()
        .unwrap_or_else(|| panic!("not an object: {doc}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Checks the document's shape against the contract, key by key and type by type.
fn assert_contract(doc: &Value) {
    let contract: BTreeSet<&str> = keys(doc)
        .into_iter()
        .filter(|k| !VerifyReport::EXTENSION_KEYS.contains(k))
        .collect();
    assert_eq!(contract, VerifyReport::KEYS.into_iter().collect(), "{doc}");
    assert_eq!(doc["schema_version"], 1);
    assert!(
        ["passed", "failed", "timeout", "denied", "error"]
            .contains(&doc["status"].as_str().unwrap())
    );
    assert!(doc["failure_class"].is_null() || doc["failure_class"].is_string());
    assert_eq!(
        keys(&doc["decision"]),
        ["allowed", "matched_rules", "reason"].into()
    );
    assert!(doc["target"].is_string());
    assert!(doc["resolved_target"].is_null() || doc["resolved_target"].is_string());
    assert!(doc["fingerprint"].is_null() || doc["fingerprint"].is_string());
    assert!(doc["exit_code"].is_null() || doc["exit_code"].is_i64());
    assert!(doc["duration_ms"].is_u64());
    let count_keys: BTreeSet<&str> = [
        "passed",
        "failed",
        "errors",
        "skipped",
        "xfailed",
        "xpassed",
        "subtests_passed",
        "subtests_failed",
        "subtests_skipped",
        "subtests_xfailed",
    ]
    .into();
    assert_eq!(keys(&doc["counts"]), count_keys);
    for test in doc["tests"].as_array().unwrap() {
        // `subtests` (an extension) only for a test with subtests that did not pass.
        let mut test_keys = keys(test);
        test_keys.remove("subtests");
        assert_eq!(
            test_keys,
            ["duration_ms", "message", "nodeid", "outcome"].into()
        );
    }
    assert!(doc["timed_out_test"].is_null() || doc["timed_out_test"].is_string());
    assert!(
        doc["flaky_tests"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string)
    );
    for stream in ["stdout", "stderr"] {
        let s = &doc[stream];
        assert_eq!(
            keys(s),
            ["sha256", "text", "total_bytes", "truncated"].into()
        );
        let sha = s["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64
                && sha
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{sha}"
        );
        assert!(
            s["total_bytes"].as_u64().unwrap() >= s["text"].as_str().unwrap().len() as u64
                || s["truncated"] == true
        );
    }
    for attempt in doc["attempts"].as_array().unwrap() {
        assert_eq!(keys(attempt), ["counts", "duration_ms", "exit_code"].into());
        assert_eq!(keys(&attempt["counts"]), count_keys);
    }
    if !doc["retry_context"].is_null() {
        assert_eq!(
            keys(&doc["retry_context"]),
            [
                "error_messages",
                "failed_tests",
                "failure_class",
                "suggestion",
                "timed_out_test"
            ]
            .into()
        );
        assert_eq!(doc["retry_context"]["failure_class"], doc["failure_class"]);
    }
}

/// `verify --json`, checked against the contract and for an exit code that matches its status.
fn verify(root: &Path, args: &[&str], code: i32) -> Value {
    let out = verify_json(root, args);
    assert_eq!(
        out.code,
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let doc = out.json();
    assert_contract(&doc);
    doc
}

fn counts(doc: &Value) -> [u64; 6] {
    [
        "passed", "failed", "errors", "skipped", "xfailed", "xpassed",
    ]
    .map(|k| doc["counts"][k].as_u64().unwrap())
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Records in a ledger file (0 when it does not exist).
fn ledger_records(path: &Path) -> Vec<Value> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A wrapper interpreter that logs every start to `<outside>/python-starts.log` and then runs
/// the real Python: proof of whether warden started pytest at all.
fn spy_python(fixture: &Fixture) -> (String, std::path::PathBuf) {
    let outside = fixture.outside();
    let log = outside.join("python-starts.log");
    let spy = outside.join("python-spy");
    write_executable(
        &spy,
        &format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            python_with_pytest().display()
        ),
    );
    // The spy logs outside the root and runs a Python the sandbox would not know to let it
    // read: these tests are about what starts, not about containment.
    fixture.write(
        "warden.toml",
        "version = 1\nextends = \"builtin\"\n[sandbox]\nmode = \"off\"\n",
    );
    (spy.display().to_string(), log)
}

/// `warden --json verify runtime/tests --python SPY EXTRA...`, which must exit 2: refused
/// before anything runs.
fn refused(fixture: &Fixture, spy: &str, extra: &[&str]) -> Run {
    let mut args = vec!["runtime/tests", "--python", spy];
    args.extend(extra);
    let out = verify_json(fixture.root(), &args);
    assert_eq!(out.code, Some(2), "{extra:?}: {}{}", out.stdout, out.stderr);
    out
}

#[test]
fn a_passing_run_exits_0_with_every_key_exact_counts_and_real_hashes() {
    let fixture = Fixture::named("passing");
    let doc = verify(fixture.root(), &["runtime/tests"], 0);
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["failure_class"], Value::Null);
    assert_eq!(doc["retry_context"], Value::Null);
    assert_eq!(doc["decision"]["allowed"], true);
    assert_eq!(
        doc["decision"]["matched_rules"],
        json!(["pytest-runtime-tests"])
    );
    assert_eq!(doc["target"], "runtime/tests");
    assert_eq!(doc["resolved_target"], "runtime/tests");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(counts(&doc), [9, 0, 0, 0, 0, 0]);
    let tests = doc["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 9);
    assert!(tests.iter().all(|t| t["outcome"] == "passed"), "{tests:?}");
    assert!(
        tests
            .iter()
            .any(|t| t["nodeid"] == "runtime/tests/test_basic.py::test_plain")
    );
    assert_eq!(doc["flaky_tests"], json!([]));
    assert_eq!(doc["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(doc["attempts"][0]["exit_code"], 0);
    assert_eq!(doc["attempts"][0]["counts"], doc["counts"]);
    let fingerprint = doc["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 64);

    // The stream was small, so the kept text is all of it: its hash is the recorded hash.
    let stdout = &doc["stdout"];
    assert_eq!(stdout["truncated"], false);
    let text = stdout["text"].as_str().unwrap();
    assert!(text.contains("9 passed"), "{text}");
    assert_eq!(stdout["total_bytes"].as_u64().unwrap(), text.len() as u64);
    assert_eq!(
        stdout["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(text.as_bytes()))
    );

    // One record in the default ledger, for this very run.
    let records = ledger_records(&fixture.ledger());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["seq"], 1);
    assert_eq!(records[0]["report"]["fingerprint"], fingerprint);
    assert_eq!(records[0]["report"]["stdout"]["sha256"], stdout["sha256"]);
}

#[test]
fn people_get_a_summary_and_no_progress_line_without_a_terminal() {
    let fixture = Fixture::named("failing");
    let mut cmd = warden_at(fixture.root());
    cmd.args(["verify", "runtime/tests", "--retries", "1"]);
    let out = run(&mut cmd, None, warden_e2e::VERIFY_DEADLINE);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    for expected in [
        "FAILED (test_failure)  runtime/tests",
        "1 passed, 1 failed",
        "(first attempt, exit code 1); 2 attempts,",
        "failing:   runtime/tests/test_math.py::test_wrong_answer",
        "the answer is wrong",
        "next:",
        "evidence:",
        ".warden/ledger.jsonl record 1",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?} missing:\n{}",
            out.stdout
        );
    }
    // stderr is not a terminal here: no live progress, no carriage returns.
    assert!(!out.stderr.contains('\r'), "{:?}", out.stderr);
    assert!(!out.stderr.contains("tests,"), "{:?}", out.stderr);
}

/// Runs `warden [--json] verify ARGS` with stderr on a pseudo-terminal (100 columns) and
/// stdout on a pipe; returns the exit code, stdout, and what the terminal showed.
fn on_a_terminal(root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    use std::io::Read as _;
    use std::process::Stdio;

    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let mut cmd = warden_at(root);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(pty.slave));
    let child = cmd.spawn().unwrap();
    // Only the child may hold the terminal's other end, so reading ends when it exits.
    drop(cmd);
    let mut master = fs::File::from(pty.master);
    let terminal = std::thread::spawn(move || {
        let mut seen = Vec::new();
        // Linux reports EIO once the last holder of the other end is gone; what was read stays.
        let _ = master.read_to_end(&mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        terminal.join().unwrap(),
    )
}

#[test]
fn a_terminal_shows_live_progress_then_clears_it() {
    let fixture = Fixture::named("passing");
    fixture.write(
        "runtime/tests/test_slow.py",
        "import time\n\ndef test_a():\n    time.sleep(0.6)\n\ndef test_b():\n    time.sleep(0.6)\n",
    );
    let (code, stdout, terminal) = on_a_terminal(fixture.root(), &["verify", "runtime/tests"]);
    assert_eq!(code, Some(0), "{stdout}{terminal}");
    // Redrawn in place: the target, the time against the policy's 300 s deadline...
    assert!(terminal.contains("runtime/tests: "), "{terminal:?}");
    assert!(terminal.contains(" s of 300 s"), "{terminal:?}");
    assert!(terminal.contains('\r'), "{terminal:?}");
    // ...and erased at the end, so only the report remains (on stdout).
    assert!(terminal.trim_end().ends_with("\u{1b}[2K"), "{terminal:?}");
    assert!(stdout.starts_with("PASSED"), "{stdout}");
    assert!(!stdout.contains("of 300 s"));

    // With --json: no progress, even on a terminal.
    let (code, stdout, terminal) =
        on_a_terminal(fixture.root(), &["--json", "verify", "runtime/tests"]);
    assert_eq!(code, Some(0), "{stdout}{terminal}");
    assert!(!terminal.contains("of 300 s"), "{terminal:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["status"],
        "passed"
    );
}

#[test]
fn a_failing_test_is_a_test_failure_with_its_retry_context() {
    let fixture = Fixture::named("failing");
    let doc = verify(fixture.root(), &["runtime/tests"], 1);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["failure_class"], "test_failure");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(counts(&doc), [1, 1, 0, 0, 0, 0]);
    let nodeid = "runtime/tests/test_math.py::test_wrong_answer";
    let context = &doc["retry_context"];
    assert_eq!(strings(&context["failed_tests"]), [nodeid]);
    let messages = strings(&context["error_messages"]);
    assert!(
        messages.iter().any(|m| m.contains("the answer is wrong")),
        "{messages:?}"
    );
    assert!(!context["suggestion"].as_str().unwrap().is_empty());
    assert_eq!(doc["flaky_tests"], json!([]));
    // The first attempt and the policy's two reruns of the failed test, which failed again.
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for rerun in &attempts[1..] {
        assert_eq!(rerun["counts"]["failed"], 1);
        assert_eq!(
            rerun["counts"]["passed"], 0,
            "a rerun runs only the failed test"
        );
    }
}

#[test]
fn retries_can_be_lowered_from_the_command_line() {
    let fixture = Fixture::named("failing");
    let doc = verify(fixture.root(), &["runtime/tests", "--retries", "0"], 1);
    assert_eq!(doc["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(doc["failure_class"], "test_failure");
}

/// The `flaky` fixture with its state (what ran before, the switch) in a directory outside the
/// project, removed with it.
fn flaky_fixture() -> (Fixture, std::path::PathBuf) {
    let fixture = Fixture::named("flaky");
    let state = fixture.outside().join("flaky-state");
    fixture.write("runtime/tests/state_dir.txt", state.to_str().unwrap());
    (fixture, state)
}

#[test]
fn a_test_that_fails_then_passes_is_flaky_and_the_run_passes() {
    let (fixture, _state) = flaky_fixture();
    let doc = verify(fixture.root(), &["runtime/tests"], 0);
    assert_eq!(doc["status"], "passed");
    assert_eq!(doc["failure_class"], "test_flake");
    assert_eq!(
        strings(&doc["flaky_tests"]),
        ["runtime/tests/test_flaky.py::test_fails_first_time"]
    );
    // The first attempt saw the failure; the rerun of just that test passed.
    assert_eq!(counts(&doc), [2, 1, 0, 0, 0, 0]);
    let attempts = doc["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        2,
        "reruns stop once the test passed: {attempts:?}"
    );
    assert_eq!(attempts[1]["counts"]["passed"], 1);
    assert_eq!(doc["retry_context"]["failure_class"], "test_flake");
    assert_eq!(
        strings(&doc["retry_context"]["failed_tests"]),
        ["runtime/tests/test_flaky.py::test_fails_first_time"]
    );
}

#[test]
fn a_pass_then_an_edit_then_a_failure_is_a_regression_not_a_flake() {
    let fixture = Fixture::named("regression");
    let first = verify(fixture.root(), &["runtime/tests"], 0);
    assert_eq!(counts(&first), [2, 0, 0, 0, 0, 0]);

    // The agent edits the code; a test now fails, and the ledger (read as history) shows it
    // passing before, on other code. The naive "passed before, fails now" would call it flaky.
    let source = fixture.root().join("src/greeting.py");
    let code = fs::read_to_string(&source).unwrap();
    fs::write(&source, code.replace("Hello", "Hi")).unwrap();
    let second = verify(fixture.root(), &["runtime/tests"], 1);
    assert_ne!(second["fingerprint"], first["fingerprint"]);
    assert_eq!(second["failure_class"], "test_failure");
    assert_eq!(second["flaky_tests"], json!([]));
    assert_eq!(
        strings(&second["retry_context"]["failed_tests"]),
        ["runtime/tests/test_greeting.py::test_greets_by_name"]
    );
    assert_eq!(ledger_records(&fixture.ledger()).len(), 2);
}

#[test]
fn a_pass_and_a_failure_on_the_same_code_across_invocations_is_a_flake() {
    let (fixture, state) = flaky_fixture();
    let target = "runtime/tests/test_flaky.py::test_follows_switch";
    let first = verify(fixture.root(), &[target], 0);
    assert_eq!(first["failure_class"], Value::Null);

    // Nothing in the tree changes, yet the test fails, also on its rerun: only the ledger's
    // history shows it passing on this very code.
    fs::write(state.join("switch"), "fail").unwrap();
    let second = verify(fixture.root(), &[target, "--retries", "1"], 0);
    assert_eq!(second["fingerprint"], first["fingerprint"]);
    assert_eq!(second["status"], "passed");
    assert_eq!(second["failure_class"], "test_flake");
    assert_eq!(strings(&second["flaky_tests"]), [target]);
    assert_eq!(second["attempts"].as_array().unwrap().len(), 2);

    // Without the ledger there is no history: the same evidence is a plain failure.
    let third = verify(
        fixture.root(),
        &[target, "--retries", "1", "--no-ledger"],
        1,
    );
    assert_eq!(third["failure_class"], "test_failure");

    // An explicit --history brings it back, from one stored result or from a ledger.
    let stored = fixture.outside().join("first.json");
    fs::write(&stored, first.to_string()).unwrap();
    let stored = stored.display().to_string();
    let fourth = verify(
        fixture.root(),
        &[
            target,
            "--retries",
            "0",
            "--no-ledger",
            "--history",
            &stored,
        ],
        0,
    );
    assert_eq!(fourth["failure_class"], "test_flake");
    let ledger = fixture.ledger().display().to_string();
    let fifth = verify(
        fixture.root(),
        &[
            target,
            "--retries",
            "0",
            "--no-ledger",
            "--history",
            &ledger,
        ],
        0,
    );
    assert_eq!(fifth["failure_class"], "test_flake");
}

#[test]
fn a_hang_is_stopped_on_time_exits_4_and_leaves_no_process() {
    let fixture = Fixture::named("hang");
    let policy = fixture.policy("grace_secs = 1");
    // Room for pytest to reach the hanging test under the default sandbox, where every run
    // compiles the standard library and pytest afresh (its bytecode cache is read-only to it).
    let timeout = Duration::from_secs(8);
    let out = verify_json(
        fixture.root(),
        &[
            "runtime/tests",
            "--timeout",
            "8",
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    let latency = out.elapsed.saturating_sub(timeout);
    println!(
        "hang through the binary: warden exited {} ms after the 8 s deadline (grace 1 s), {} ms in all",
        latency.as_millis(),
        out.elapsed.as_millis()
    );
    assert_eq!(out.code, Some(4), "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_contract(&doc);
    assert_eq!(doc["status"], "timeout");
    assert_eq!(doc["failure_class"], "test_timeout");
    assert_eq!(
        doc["timed_out_test"],
        "runtime/tests/test_hang.py::test_hangs"
    );
    assert_eq!(
        doc["retry_context"]["timed_out_test"],
        "runtime/tests/test_hang.py::test_hangs"
    );
    assert_eq!(doc["exit_code"], Value::Null, "killed, so no exit code");
    // What finished before the hang is reported.
    assert_eq!(doc["counts"]["passed"], 1);
    assert_eq!(
        doc["attempts"].as_array().unwrap().len(),
        1,
        "a timeout is not rerun"
    );
    // Deadline + grace + a margin for starting Python, classifying and recording.
    assert!(out.elapsed >= timeout);
    assert!(
        out.elapsed < timeout + Duration::from_secs(1) + Duration::from_secs(3),
        "took {:?}",
        out.elapsed
    );
    // The test and its pipe-holding grandchild are gone.
    let marker = fixture.root().display().to_string();
    assert_eq!(processes_mentioning(&marker), Vec::<(i32, String)>::new());
}

#[test]
fn a_syntax_error_is_classified_as_such() {
    let fixture = Fixture::named("syntax_error");
    let doc = verify(fixture.root(), &["runtime/tests"], 1);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["failure_class"], "syntax_error");
    let context = &doc["retry_context"];
    let messages = strings(&context["error_messages"]).join("\n");
    assert!(messages.contains("SyntaxError"), "{messages}");
    assert!(
        strings(&context["failed_tests"])
            .iter()
            .any(|t| t.contains("test_broken.py")),
        "{context}"
    );
}

#[test]
fn an_import_error_at_collection_is_a_collection_error() {
    let fixture = Fixture::named("import_error");
    let doc = verify(fixture.root(), &["runtime/tests"], 1);
    assert_eq!(doc["failure_class"], "collection_error");
    let messages = strings(&doc["retry_context"]["error_messages"]).join("\n");
    assert!(
        messages.contains("warden_fixture_missing_module"),
        "{messages}"
    );
}

#[test]
fn a_broken_conftest_is_a_usage_error() {
    let fixture = Fixture::named("broken_conftest");
    let doc = verify(fixture.root(), &["runtime/tests"], 1);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["failure_class"], "usage_error");
    assert!(!strings(&doc["retry_context"]["error_messages"]).is_empty());
}

#[test]
fn an_empty_test_directory_is_no_tests_and_fails() {
    let fixture = Fixture::named("empty");
    let doc = verify(fixture.root(), &["runtime/tests"], 1);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["failure_class"], "no_tests");
    assert_eq!(counts(&doc), [0; 6]);
    assert_eq!(
        doc["exit_code"], 5,
        "pytest's own code for no tests collected"
    );
}

#[test]
fn an_out_of_scope_target_is_denied_runs_nothing_and_is_recorded() {
    let fixture = Fixture::demo();
    let (spy, starts) = spy_python(&fixture);
    let doc = verify(fixture.root(), &["src", "--python", &spy], 3);
    assert_eq!(doc["status"], "denied");
    assert_eq!(doc["failure_class"], "policy_denied");
    assert_eq!(doc["decision"]["allowed"], false);
    assert!(!doc["decision"]["reason"].as_str().unwrap().is_empty());
    assert_eq!(doc["resolved_target"], Value::Null);
    assert_eq!(doc["attempts"], json!([]));
    assert_eq!(doc["exit_code"], Value::Null);
    assert_eq!(doc["retry_context"]["failure_class"], "policy_denied");
    assert!(!starts.exists(), "a denied request started Python");
    // The denial is evidence too.
    let records = ledger_records(&fixture.ledger());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["report"]["status"], "denied");

    // The spy does start Python when the request is allowed (so its silence above means it).
    verify(fixture.root(), &["runtime/tests", "--python", &spy], 0);
    assert!(starts.exists());
}

#[test]
fn pytest_arguments_after_the_separator_pass_through_or_are_denied() {
    let fixture = Fixture::named("passing");
    let doc = verify(fixture.root(), &["runtime/tests", "--", "-k", "plain"], 0);
    assert_eq!(counts(&doc), [1, 0, 0, 0, 0, 0]);
    assert_eq!(
        doc["tests"][0]["nodeid"],
        "runtime/tests/test_basic.py::test_plain"
    );

    let (spy, starts) = spy_python(&fixture);
    for forbidden in [
        &["--rootdir=/"][..],
        &["-p", "evil_plugin"],
        &["-c", "/etc/passwd"],
    ] {
        let mut args = vec!["runtime/tests", "--python", &spy, "--"];
        args.extend_from_slice(forbidden);
        let doc = verify(fixture.root(), &args, 3);
        assert_eq!(doc["failure_class"], "policy_denied", "{forbidden:?}");
    }
    assert!(!starts.exists(), "a denied request started Python");
}

#[test]
fn a_spent_mission_budget_is_refused_before_the_run() {
    let fixture = Fixture::named("passing");
    // A run that takes its whole deadline, however loaded the machine: it spends the budget.
    fixture.write(
        "runtime/tests/slow/test_slow.py",
        "import time\n\ndef test_slow():\n    time.sleep(60)\n",
    );
    let policy = fixture
        .policy("timeout_secs = 2\nbudget_secs = 2\ngrace_secs = 1\n\n[sandbox]\nmode = \"off\"");
    let policy = policy.to_str().unwrap();
    let target = "runtime/tests/slow";
    let first = verify(
        fixture.root(),
        &[target, "--policy", policy, "--mission", "m-1"],
        4,
    );
    assert_eq!(first["status"], "timeout");

    // The same mission, another process: the ledger says all of its 2 s are spent.
    let (spy, starts) = spy_python(&fixture);
    let second = verify(
        fixture.root(),
        &[
            target,
            "--policy",
            policy,
            "--mission",
            "m-1",
            "--python",
            &spy,
        ],
        3,
    );
    assert_eq!(second["status"], "denied");
    assert_eq!(second["failure_class"], "budget_exhausted");
    assert_eq!(second["decision"]["allowed"], true, "the policy allowed it");
    assert_eq!(second["attempts"], json!([]));
    assert!(!starts.exists(), "an exhausted budget started Python");
    let records = ledger_records(&fixture.ledger());
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["mission"], "m-1");

    // Another mission has a budget of its own, and so has a run without a mission.
    for extra in [&["--mission", "m-2"][..], &[]] {
        let mut args = vec![target, "--policy", policy, "--python", &spy];
        args.extend_from_slice(extra);
        let other = verify(fixture.root(), &args, 4);
        assert_eq!(other["status"], "timeout", "{extra:?}: it ran");
    }
    assert!(starts.exists());
}

#[test]
fn a_missing_interpreter_is_infrastructure() {
    let fixture = Fixture::named("passing");
    let doc = verify(
        fixture.root(),
        &["runtime/tests", "--python", "/nonexistent/python3"],
        5,
    );
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["failure_class"], "infrastructure");
    let messages = strings(&doc["retry_context"]["error_messages"]).join("\n");
    assert!(messages.contains("/nonexistent/python3"), "{messages}");
}

/// Usage errors: exit 2, one JSON error document, nothing run and nothing recorded.
#[test]
fn usage_errors_exit_2_and_run_nothing() {
    let fixture = Fixture::named("passing");
    let (spy, starts) = spy_python(&fixture);
    let bad_policy = fixture.outside().join("bad.toml");
    fs::write(
        &bad_policy,
        "version = 1\n[limits]\ntimeout_secs = \"soon\"\n",
    )
    .unwrap();
    let bad_policy = bad_policy.display().to_string();
    let missing = fixture
        .outside()
        .join("missing.jsonl")
        .display()
        .to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--timeout", "0"], "--timeout"),
        (vec!["--timeout", "soon"], "--timeout"),
        (vec!["--retries", "many"], "--retries"),
        (vec!["--policy", &bad_policy], "timeout_secs"),
        (vec!["--history", &missing], "missing.jsonl"),
        (vec!["--ledger", "../elsewhere.jsonl"], "outside the root"),
        (vec!["--ledger", "/tmp/ledger.jsonl"], "outside the root"),
        (vec!["--no-ledger", "--ledger", "x.jsonl"], "--ledger"),
        (vec!["--no-ledger", "--mission", "m"], "--mission"),
    ];
    for (extra, mentions) in cases {
        let out = refused(&fixture, &spy, &extra);
        let error = out.error();
        assert!(error.contains(mentions), "{extra:?}: {error}");
        assert!(out.stderr.contains(mentions), "{extra:?}: {}", out.stderr);
    }
    assert!(!starts.exists(), "a usage error started Python");
    assert!(
        !fixture.root().join(".warden").exists(),
        "a usage error wrote a ledger"
    );
}

#[test]
fn a_ledger_link_out_of_the_root_is_refused() {
    let fixture = Fixture::named("passing");
    let outside = fixture.outside();
    fixture.symlink(".warden", &outside);
    let out = verify_json(fixture.root(), &["runtime/tests"]);
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.error().contains("symbolic link"), "{}", out.stdout);
    assert!(!outside.join("ledger.jsonl").exists());

    // A --ledger inside the root is used, and read back as history.
    let doc = verify(
        fixture.root(),
        &["runtime/tests", "--ledger", "evidence/l.jsonl"],
        0,
    );
    assert_eq!(doc["status"], "passed");
    assert_eq!(
        ledger_records(&fixture.root().join("evidence/l.jsonl")).len(),
        1
    );
}

#[test]
fn a_damaged_history_file_is_named_and_nothing_runs() {
    let fixture = Fixture::named("passing");
    for _ in 0..2 {
        verify(
            fixture.root(),
            &["runtime/tests/test_basic.py::test_plain"],
            0,
        );
    }
    let ledger = fixture.ledger();
    let text = fs::read_to_string(&ledger).unwrap();
    let copy = fixture.outside().join("copy.jsonl");
    fs::write(&copy, text.replacen("test_plain", "test_plaiN", 1)).unwrap();
    let (spy, starts) = spy_python(&fixture);
    let error = refused(&fixture, &spy, &["--history", copy.to_str().unwrap()]).error();
    assert!(error.contains("copy.jsonl"), "{error}");
    assert!(error.contains("line 1"), "{error}");
    let garbage = fixture.outside().join("garbage.json");
    fs::write(&garbage, "{\"schema_version\": 1, \"status\": \"fine\"}").unwrap();
    let error = refused(&fixture, &spy, &["--history", garbage.to_str().unwrap()]).error();
    assert!(error.contains("garbage.json"), "{error}");
    assert!(!starts.exists());

    // The ledger in use is checked the same way before a run.
    fs::write(&ledger, text.replacen("test_plain", "test_plaiN", 1)).unwrap();
    let error = refused(&fixture, &spy, &[]).error();
    assert!(error.contains("ledger verify"), "{error}");
    assert!(!starts.exists());
}

#[test]
fn the_200_mib_flood_keeps_warden_itself_small() {
    let fixture = Fixture::named("flood");
    let out = verify_json(fixture.root(), &["runtime/tests", "--retries", "0"]);
    let peak = out.peak_rss_kib.expect("VmHWM of the warden process");
    println!(
        "flood through the binary: warden's VmHWM {peak} KiB ({:.1} MiB), {} ms",
        peak as f64 / 1024.0,
        out.elapsed.as_millis()
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let doc = out.json();
    assert_contract(&doc);
    assert_eq!(doc["failure_class"], "test_failure");
    assert_eq!(counts(&doc), [1, 1, 0, 0, 0, 0]);
    let stdout = &doc["stdout"];
    assert!(stdout["total_bytes"].as_u64().unwrap() > 200 * 1024 * 1024);
    assert_eq!(stdout["truncated"], true);
    assert!(stdout["text"].as_str().unwrap().len() < 51_200 + 200);
    assert!(peak < 64 * 1024, "warden's peak RSS was {peak} KiB");
}

#[test]
fn sigint_stops_the_run_kills_its_processes_and_exits_130() {
    stop_with("INT", 130);
}

#[test]
fn sigterm_stops_the_run_kills_its_processes_and_exits_143() {
    stop_with("TERM", 143);
}

/// Sends SIG`signal` to warden while a test hangs: warden must stop at once with `code`,
/// leaving no process and no evidence behind.
fn stop_with(signal: &str, code: i32) {
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let fixture = Fixture::named("hang");
    let marker = fixture.root().display().to_string();
    let mut cmd = warden_at(fixture.root());
    cmd.args(["verify", "runtime/tests", "--timeout", "120"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Wait for the hanging test's grandchild: then pytest is surely running.
    let started = Instant::now();
    while !processes_mentioning(&marker)
        .iter()
        .any(|(_, cmd)| cmd.contains("warden-fixture-hang"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the test never started"
        );
        assert!(child.try_wait().unwrap().is_none(), "warden ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    let output = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "warden did not stop after SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("SIG{signal}: warden exited after {:?}", signalled.elapsed());
    assert_eq!(output.status.code(), Some(code));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("interrupted by SIG{signal}")),
        "{stderr}"
    );
    let left = wait_gone(&marker);
    assert_eq!(left, Vec::<(i32, String)>::new());
    assert!(
        !fixture.ledger().exists(),
        "an interrupted run recorded evidence"
    );
}

/// Processes mentioning `marker` still alive after a short wait (a SIGKILLed process may take
/// a moment to leave the table).
fn wait_gone(marker: &str) -> Vec<(i32, String)> {
    let until = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_mentioning(marker);
        if left.is_empty() || std::time::Instant::now() > until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
