//! What a person at a terminal sees: the report and the live progress on a pseudo-terminal,
//! coloured or not as asked, with everything the run controls (node ids, messages, printed
//! output) escaped; failures named as they happen; no log lines without `-v`; early stops
//! counted; `verify --help` and `check` saying what they should.

// Helpers here are part of the tests: they fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;

use warden_e2e::{Fixture, VERIFY_DEADLINE, run, warden, warden_at};

/// Runs `warden ARGS` on `root` with stdout and stderr on one pseudo-terminal (100 columns) and
/// `env` set; returns the exit code and everything the terminal showed.
fn on_a_terminal(root: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let mut cmd = warden_at(root);
    cmd.args(args)
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave));
    let mut child = cmd.spawn().unwrap();
    // Only the child may hold the terminal's other end, so reading ends when it exits.
    drop(cmd);
    let mut master = fs::File::from(pty.master);
    let terminal = std::thread::spawn(move || {
        let mut seen = Vec::new();
        // Linux reports EIO once the last holder of the other end is gone; what was read stays.
        let _ = master.read_to_end(&mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });
    let status = child.wait().unwrap();
    (status.code(), terminal.join().unwrap())
}

/// A project whose test ids and output try to drive the terminal: ids with escape sequences
/// (pytest escapes ids unless the ini option below says not to), and a test that prints
/// escape sequences and a forged progress line to the real stdout, past pytest's capture.
fn hostile() -> Fixture {
    let fixture = Fixture::named("passing");
    fixture.write(
        "pytest.ini",
        "[pytest]\n\
         disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n",
    );
    fixture.write(
        "runtime/tests/test_hostile.py",
        r#"import time

import pytest


@pytest.mark.parametrize("x", ["\x1b]0;owned\x07\x1b[2J", "\u202eevil"])
def test_evil_id(x):
    time.sleep(0.3)
    assert x == "harmless"


def test_prints_into_the_progress_stream(capsys):
    with capsys.disabled():
        print("\x1b[2J\x1b]0;pwned\x07runtime/tests/test_hostile.py::fake\x1b[31m PASSED")
    time.sleep(0.3)
"#,
    );
    fixture
}

/// Raw control sequences a test tried to send, which must never reach the terminal.
const INJECTED: [&str; 4] = ["\u{1b}]0;", "\u{1b}[2J", "\u{7}", "\u{202e}"];

#[test]
fn hostile_ids_and_output_are_escaped_and_failures_named_as_they_happen() {
    let fixture = hostile();
    let (code, terminal) = on_a_terminal(fixture.root(), &["verify", "runtime/tests"], &[]);
    assert_eq!(code, Some(1), "{terminal}");
    for raw in INJECTED {
        assert!(
            !terminal.contains(raw),
            "{raw:?} reached the terminal: {terminal:?}"
        );
    }
    // Failures are named above the progress line as they happen, ids escaped, in colour.
    assert!(
        terminal.contains(
            "FAILED\u{1b}[0m runtime/tests/test_hostile.py::test_evil_id[\\u{1b}]0;owned\\u{7}\\u{1b}[2J]"
        ),
        "{terminal:?}"
    );
    assert!(
        terminal
            .contains("FAILED\u{1b}[0m runtime/tests/test_hostile.py::test_evil_id[\\u{202e}evil]"),
        "{terminal:?}"
    );
    // The report: coloured status, class and failing ids; pytest's explanation lines and
    // where the failure happened.
    assert!(terminal.contains("\u{1b}[1m\u{1b}[31mFAILED\u{1b}[0m (\u{1b}[1mtest_failure"));
    assert!(
        terminal
            .contains("failing:   \u{1b}[1m\u{1b}[31mruntime/tests/test_hostile.py::test_evil_id[")
    );
    assert!(terminal.contains("runtime/tests/test_hostile.py:9: AssertionError"));
    assert!(terminal.contains("AssertionError: assert '\\u202eevil' == 'harmless'"));
    assert!(terminal.contains("- harmless"), "{terminal:?}");
}

#[test]
fn reruns_are_labelled_on_the_progress_line() {
    let fixture = Fixture::named("failing");
    let (code, terminal) = on_a_terminal(
        fixture.root(),
        &["verify", "runtime/tests", "--no-ledger"],
        &[("NO_COLOR", "1")],
    );
    assert_eq!(code, Some(1), "{terminal}");
    assert!(
        terminal.contains("    FAILED runtime/tests/test_math.py::test_wrong_answer  "),
        "{terminal:?}"
    );
    assert!(
        terminal.contains("    FAILED runtime/tests/test_math.py::test_wrong_answer (rerun 1/2)"),
        "{terminal:?}"
    );
    assert!(
        terminal.contains("runtime/tests: rerun 1/2 of 1 failed test"),
        "{terminal:?}"
    );
    assert!(
        terminal.contains("runtime/tests: rerun 2/2 of 1 failed test"),
        "{terminal:?}"
    );
}

#[test]
fn colour_is_off_with_no_color_and_never_and_never_in_json() {
    let fixture = Fixture::named("failing");
    let args = ["verify", "runtime/tests", "--retries", "0", "--no-ledger"];
    let colour = "\u{1b}[31m";

    let (code, terminal) = on_a_terminal(fixture.root(), &args, &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(1), "{terminal}");
    assert!(terminal.contains("FAILED (test_failure)"), "{terminal:?}");
    assert!(!terminal.contains(colour), "{terminal:?}");

    let never = [&["--color", "never"][..], &args].concat();
    let (code, terminal) = on_a_terminal(fixture.root(), &never, &[]);
    assert_eq!(code, Some(1), "{terminal}");
    assert!(terminal.contains("FAILED (test_failure)"), "{terminal:?}");
    assert!(!terminal.contains(colour), "{terminal:?}");

    // `always` colours a pipe too, whatever NO_COLOR says; `--json` stays plain JSON.
    let always = [&["--color", "always"][..], &args].concat();
    let mut cmd = warden_at(fixture.root());
    cmd.args(&always).env("NO_COLOR", "1");
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert!(
        out.stdout.starts_with("\u{1b}[1m\u{1b}[31mFAILED"),
        "{:?}",
        out.stdout
    );
    let json = [&["--color", "always", "--json"][..], &args].concat();
    let (code, terminal) = on_a_terminal(fixture.root(), &json, &[]);
    assert_eq!(code, Some(1), "{terminal}");
    assert!(!terminal.contains('\u{1b}'), "{terminal:?}");
    let doc: serde_json::Value = serde_json::from_str(terminal.trim()).unwrap();
    assert_eq!(doc["failure_class"], "test_failure");
}

#[test]
fn no_log_line_reaches_the_terminal_without_verbose() {
    let fixture = Fixture::named("passing");
    // A timeout above the policy's is clamped: a note in the report, not a log line.
    let args = ["verify", "runtime/tests", "--timeout", "500", "--no-ledger"];
    let (code, terminal) = on_a_terminal(fixture.root(), &args, &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(0), "{terminal}");
    assert!(!terminal.contains("WARN"), "{terminal:?}");
    assert!(!terminal.contains("INFO"), "{terminal:?}");
    assert!(terminal.contains("notes:     timeout 500s is above the policy's 300s"));

    let verbose = [&["-v"][..], &args].concat();
    let (code, terminal) = on_a_terminal(fixture.root(), &verbose, &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(0), "{terminal}");
    assert!(terminal.contains("WARN"), "{terminal:?}");
}

#[test]
fn a_run_stopped_by_x_says_how_many_tests_never_ran() {
    let fixture = Fixture::named("passing");
    fixture.write(
        "runtime/tests/test_early.py",
        "def test_a_fails():\n    assert 1 == 2\n\ndef test_b():\n    pass\n\ndef test_c():\n    pass\n",
    );
    let mut cmd = warden_at(fixture.root());
    cmd.args([
        "verify",
        "runtime/tests/test_early.py",
        "--no-ledger",
        "--",
        "-x",
    ]);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("stopped:   after 1 failure; 2 tests not run"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("at runtime/tests/test_early.py:2: AssertionError"),
        "{}",
        out.stdout
    );

    // --maxfail=2 on a complete run: nothing is said to be missing.
    let mut cmd = warden_at(fixture.root());
    cmd.args([
        "verify",
        "runtime/tests/test_early.py",
        "--no-ledger",
        "--",
        "--maxfail=2",
    ]);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("stopped:"), "{}", out.stdout);
}

#[test]
fn verify_help_has_examples_the_builtin_policy_and_warden_init() {
    let mut cmd = warden();
    cmd.args(["verify", "--help"]);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for expected in [
        "Examples:",
        "warden verify runtime/tests/test_math.py::test_add",
        "-- -x",
        "the built-in policy applies",
        "inside `runtime/tests`",
        "`warden init`",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?}: {}",
            out.stdout
        );
    }
}

#[test]
fn check_on_a_file_write_says_what_would_be_written() {
    let fixture = Fixture::demo();
    let mut cmd = warden_at(fixture.root());
    cmd.args([
        "check",
        "--tool",
        "fs",
        "--action",
        "write",
        "--target",
        "src/app.py",
    ]);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("  writes: src/app.py\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("runs:"), "{}", out.stdout);
}

#[test]
fn a_timeout_keeps_the_failures_before_the_hang_and_names_the_hanging_test() {
    let fixture = Fixture::named("passing");
    fixture.write(
        "runtime/tests/test_late.py",
        "import time\n\n\
         def test_a_fails():\n    assert 1 + 1 == 3\n\n\
         def test_b_hangs():\n    time.sleep(1000)\n\n\
         def test_c_never_runs():\n    pass\n",
    );
    let target = "runtime/tests/test_late.py";
    // A deadline long enough for pytest to start and fail the first test on a loaded machine,
    // and a grace period long enough for it to report after the interrupt.
    let policy = fixture.policy("grace_secs = 10");
    let mut cmd = warden_at(fixture.root());
    cmd.args(["verify", target, "--timeout", "20", "--policy"])
        .arg(&policy);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(4), "{}{}", out.stdout, out.stderr);
    for expected in [
        "TIMEOUT (test_timeout)",
        "stopped:   at the deadline; 1 test not run",
        "timed out: runtime/tests/test_late.py::test_b_hangs",
        "failing:   runtime/tests/test_late.py::test_a_fails",
        "at runtime/tests/test_late.py:4: AssertionError",
        "assert (1 + 1) == 3",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?}:\n{}",
            out.stdout
        );
    }

    // The evidence keeps them too: the recorded report, and its retry context.
    let ledger = fs::read_to_string(fixture.ledger()).unwrap();
    let record: serde_json::Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
    let doc = &record["report"];
    assert_eq!(
        doc["timed_out_test"],
        "runtime/tests/test_late.py::test_b_hangs"
    );
    let tests = doc["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert_eq!(
        tests[0]["nodeid"],
        "runtime/tests/test_late.py::test_a_fails"
    );
    assert_eq!(tests[0]["message"], "assert (1 + 1) == 3");
    let context = &doc["retry_context"];
    assert_eq!(
        context["failed_tests"][0],
        "runtime/tests/test_late.py::test_a_fails"
    );
    assert!(
        context["error_messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "assert (1 + 1) == 3"),
        "{context}"
    );
}

#[test]
fn a_run_that_ends_early_says_how_many_tests_never_ran() {
    let fixture = Fixture::named("passing");
    fixture.write(
        "runtime/tests/test_exit.py",
        "import os\n\ndef test_a():\n    pass\n\ndef test_b_exits():\n    os._exit(0)\n\n\
         def test_c():\n    pass\n\ndef test_d():\n    pass\n",
    );
    let mut cmd = warden_at(fixture.root());
    cmd.args(["verify", "runtime/tests/test_exit.py", "--no-ledger"]);
    let out = run(&mut cmd, None, VERIFY_DEADLINE);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with("FAILED (interrupted)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("stopped:   before the end of the run; 3 tests not run"),
        "{}",
        out.stdout
    );
}

#[test]
fn log_lines_from_verbose_are_escaped_too() {
    let fixture = hostile();
    // The policy refuses to rerun the ids with control characters and logs why, naming them.
    let (code, terminal) = on_a_terminal(
        fixture.root(),
        &["-vv", "verify", "runtime/tests", "--no-ledger"],
        &[("NO_COLOR", "1")],
    );
    assert_eq!(code, Some(1), "{terminal}");
    assert!(terminal.contains("DEBUG"), "{terminal:?}");
    for raw in INJECTED {
        assert!(
            !terminal.contains(raw),
            "{raw:?} reached the terminal: {terminal:?}"
        );
    }
}
