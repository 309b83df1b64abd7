//! `cargo xtask demo`: Warden at work on the bundled example project, `examples/demo`.
//!
//! The demo is a script of [`Step`]s run against a temporary copy of the project (some steps
//! plant hostile files or edit code as an agent would, and the repository must stay clean).
//! It has two acts: `warden check` deciding requests, then the whole loop with
//! `warden verify`: a passing run, a bug the agent introduced (a failure and its retry
//! context), the fix, a flaky test confirmed by its rerun, a hang stopped on time, denied
//! requests, and the evidence ledger checked and summarised at the end. Each command's output is
//! Warden's own output for people, shown as it is. Each step states what it expects (decision,
//! exit code, failure class, what the report for people says), checked against that output
//! (and, for details, the `--json` answer of `check` or the report `verify` recorded in the
//! ledger), so the demo is also a smoke test of the real binary: any surprise makes it fail. Steps that run pytest get their interpreter from
//! `crate::venv::ensure`, the virtualenv `cargo xtask test` uses.

use std::fs;
use std::io;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::process::{self, describe};
use crate::venv::{self, VenvError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    #[error("could not build the warden binary: `{command}` {problem}")]
    Build { command: String, problem: String },
    #[error("cannot copy the example project {from} to {to}: {source}")]
    Copy {
        from: Utf8PathBuf,
        to: Utf8PathBuf,
        source: io::Error,
    },
    #[error("the temporary directory {0} is not valid UTF-8")]
    NonUtf8Temp(String),
    #[error("cannot prepare the demo project ({what}): {source}")]
    Prepare {
        what: &'static str,
        source: io::Error,
    },
    #[error("the demo needs Python with pytest: {0}")]
    Venv(#[from] VenvError),
    #[error("{failed} of {total} demo steps did not behave as expected (marked UNEXPECTED above)")]
    Unexpected { failed: usize, total: usize },
}

/// A decision the script expects.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Allowed, resolving to this root-relative path (a node id's `::...` part aside).
    Allow(&'static str),
    Deny,
}

/// One request to `warden check`.
#[derive(Debug, Clone, Copy)]
struct Check {
    tool: &'static str,
    action: &'static str,
    target: Option<&'static str>,
    args: &'static [&'static str],
    expect: Expect,
}

/// One step of the demo script.
enum Step {
    /// Change the project copy, as an agent (or an attacker) might.
    Prepare {
        what: &'static str,
        apply: fn(&Utf8Path) -> io::Result<()>,
    },
    /// Ask `warden check` for a decision.
    Check { what: &'static str, check: Check },
    /// Run `warden verify` and look at the result.
    Verify { what: &'static str, verify: Verify },
    /// Check the evidence ledger's chain and show its statistics.
    Evidence { what: &'static str, runs: u64 },
}

/// One `warden verify` and what it must do.
#[derive(Debug, Clone, Copy)]
struct Verify {
    target: &'static str,
    /// Options, and pytest arguments after `--`.
    args: &'static [&'static str],
    /// The contract's exit code.
    code: i32,
    /// The failure class (`None`: passed cleanly).
    class: Option<&'static str>,
    /// What the report for people must say (each a piece of one of its lines).
    shows: &'static [&'static str],
    /// A further check of the result and how long warden took.
    also: Option<ResultCheck>,
}

/// Checks a verification's result, given how long warden took; `Err` says what is wrong.
type ResultCheck = fn(&VerifyOutput, Duration) -> Result<(), String>;

fn pytest(target: &'static str, args: &'static [&'static str], expect: Expect) -> Check {
    Check {
        tool: "pytest",
        action: "run",
        target: Some(target),
        args,
        expect,
    }
}

fn write_file(target: &'static str, expect: Expect) -> Check {
    Check {
        tool: "fs",
        action: "write",
        target: Some(target),
        args: &[],
        expect,
    }
}

/// The demo, in the order it is told.
fn script() -> Vec<Step> {
    use Expect::{Allow, Deny};
    let check = |what, check| Step::Check { what, check };
    let mut steps = vec![
        check(
            "run the project's tests",
            pytest("runtime/tests", &[], Allow("runtime/tests")),
        ),
        check(
            "run one test by node id",
            pytest(
                "runtime/tests/test_calc.py::test_add",
                &[],
                Allow("runtime/tests/test_calc.py"),
            ),
        ),
        check(
            "run with allowlisted pytest options",
            pytest(
                "runtime/tests",
                &["-x", "-q", "--tb=short"],
                Allow("runtime/tests"),
            ),
        ),
        check(
            "run the source tree (out of scope)",
            pytest("src", &[], Deny),
        ),
        check(
            "escape the scope with `..`",
            pytest("runtime/tests/../../src", &[], Deny),
        ),
        check(
            "escape the root with `..`",
            pytest("../../../etc", &[], Deny),
        ),
        check("an absolute path", pytest("/etc", &[], Deny)),
        Step::Prepare {
            what: "plant runtime/testsX/test_sneaky.py, a sibling whose name extends the scope's",
            apply: |root| {
                fs::create_dir_all(root.join("runtime/testsX"))?;
                fs::write(
                    root.join("runtime/testsX/test_sneaky.py"),
                    "def test_sneaky():\n    pass\n",
                )
            },
        },
        check(
            "the prefix trick runtime/testsX",
            pytest("runtime/testsX", &[], Deny),
        ),
        check(
            "move pytest's root with --rootdir=/",
            pytest("runtime/tests", &["--rootdir=/"], Deny),
        ),
        check(
            "load a plugin with -p",
            pytest("runtime/tests", &["-p", "evil_plugin"], Deny),
        ),
        Step::Prepare {
            what: "add the protected surface docs/00_foundations",
            apply: |root| {
                fs::create_dir_all(root.join("docs/00_foundations"))?;
                fs::write(root.join("docs/00_foundations/charter.md"), "# Charter\n")
            },
        },
        check(
            "write into the protected docs/00_foundations",
            write_file("docs/00_foundations/charter.md", Deny),
        ),
        check(
            "write to the source tree",
            write_file("src/calc.py", Allow("src/calc.py")),
        ),
        check(
            "an unknown tool",
            Check {
                tool: "shell",
                action: "exec",
                target: Some("runtime/tests"),
                args: &[],
                expect: Deny,
            },
        ),
    ];
    if cfg!(unix) {
        steps.extend([
            Step::Prepare {
                what: "plant a symlink runtime/tests/escape -> ../../src",
                apply: symlink_escape,
            },
            check(
                "run through the symlink",
                pytest("runtime/tests/escape", &[], Deny),
            ),
            check(
                "run the scope that now holds an escaping link",
                pytest("runtime/tests", &[], Deny),
            ),
            Step::Prepare {
                what: "remove the escaping symlink again",
                apply: |root| fs::remove_file(root.join("runtime/tests/escape")),
            },
        ]);
    }
    steps.extend(verify_script());
    steps
}

/// The second act: the whole loop with `warden verify`.
fn verify_script() -> Vec<Step> {
    let verify = |what, verify| Step::Verify { what, verify };
    vec![
        verify(
            "run the project's tests",
            Verify {
                target: "runtime/tests",
                args: &[],
                code: 0,
                class: None,
                shows: &["tests:     4 passed"],
                also: Some(|out, _| expect_counts(out, 4, 0)),
            },
        ),
        Step::Prepare {
            what: "the agent edits src/calc.py and gets mean() wrong (divides by len + 1)",
            apply: |root| edit(root, "src/calc.py", "/ len(values)", "/ (len(values) + 1)"),
        },
        verify(
            "run the tests after the edit: a real failure, with a retry context",
            Verify {
                target: "runtime/tests",
                args: &[],
                code: 1,
                class: Some("test_failure"),
                shows: &[
                    "failing:   runtime/tests/test_calc.py::test_mean[",
                    "at runtime/tests/test_calc.py:12: AssertionError",
                    "next:",
                ],
                also: Some(|out, _| {
                    expect_counts(out, 2, 2)?;
                    let context = out.retry_context.as_ref().ok_or("no retry context")?;
                    if context.failed_tests.len() == 2 && !context.error_messages.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("a thin retry context: {context:?}"))
                    }
                }),
            },
        ),
        Step::Prepare {
            what: "the agent reads the retry context and fixes the bug",
            apply: |root| edit(root, "src/calc.py", "/ (len(values) + 1)", "/ len(values)"),
        },
        verify(
            "run the tests after the fix",
            Verify {
                target: "runtime/tests",
                args: &[],
                code: 0,
                class: None,
                shows: &[],
                also: None,
            },
        ),
        Step::Prepare {
            what: "add runtime/tests/test_cache.py, which fails while its cache is cold (a flaky \
                   test)",
            apply: |root| fs::write(root.join("runtime/tests/test_cache.py"), FLAKY_TEST),
        },
        verify(
            "run the flaky test: it fails, passes on the rerun, and is reported as flaky",
            Verify {
                target: "runtime/tests/test_cache.py",
                args: &[],
                code: 0,
                class: Some("test_flake"),
                shows: &[
                    "flaky:     runtime/tests/test_cache.py::test_lookup_is_fast_enough",
                    "depends on state it writes: runtime/tests/.lookup-cache",
                ],
                also: Some(|out, _| {
                    if out.flaky_tests.is_empty() || out.attempts.len() < 2 {
                        Err("the flake was not confirmed by a rerun".to_owned())
                    } else {
                        Ok(())
                    }
                }),
            },
        ),
        Step::Prepare {
            what: "add runtime/tests/test_hang.py, a test that never returns",
            apply: |root| fs::write(root.join("runtime/tests/test_hang.py"), HANGING_TEST),
        },
        verify(
            "run the hanging test with an 8 s deadline",
            Verify {
                target: "runtime/tests/test_hang.py",
                args: &["--timeout", "8"],
                code: 4,
                class: Some("test_timeout"),
                shows: &[
                    "timed out: runtime/tests/test_hang.py::test_waits_forever",
                    "stopped:   at the deadline",
                ],
                also: Some(|out, took| {
                    if out.timed_out_test.as_deref()
                        != Some("runtime/tests/test_hang.py::test_waits_forever")
                    {
                        return Err(format!("timed out test: {:?}", out.timed_out_test));
                    }
                    // Deadline, the default 5 s grace at most, and a margin. The deadline leaves
                    // room for pytest's start under the sandbox, which compiles the standard
                    // library and pytest afresh on every run (the bytecode cache is read-only to
                    // the run; README, Performance).
                    if took > Duration::from_secs(8 + 5 + 3) {
                        return Err(format!("warden took {took:?} to stop an 8 s run"));
                    }
                    Ok(())
                }),
            },
        ),
        verify(
            "run the source tree (out of scope): denied, nothing runs",
            Verify {
                target: "src",
                args: &[],
                code: 3,
                class: Some("policy_denied"),
                shows: &["decision:  denied"],
                also: Some(|out, _| {
                    if out.attempts.is_empty() {
                        Ok(())
                    } else {
                        Err("a denied request ran".to_owned())
                    }
                }),
            },
        ),
        verify(
            "run the tests with --rootdir=/ smuggled in after `--`: denied",
            Verify {
                target: "runtime/tests/test_calc.py",
                args: &["--", "--rootdir=/"],
                code: 3,
                class: Some("policy_denied"),
                shows: &["decision:  denied"],
                also: None,
            },
        ),
        Step::Evidence {
            what: "check the evidence ledger and show what it says",
            runs: 7,
        },
    ]
}

/// A test that fails the first time it runs in a fresh checkout and passes once its cache is
/// warm: the kind of order-dependent flake an agent must not "fix".
const FLAKY_TEST: &str = r#""""Fails while the lookup cache is cold, passes once it is warm: a flaky test.

The cache is a file the test writes next to itself: state, not code. Warden sees that only
it changed during the verification, so the rerun ran the same code, and says the test depends
on state it writes.
"""
import os

CACHE = os.path.join(os.path.dirname(__file__), ".lookup-cache")


def test_lookup_is_fast_enough():
    warm = os.path.exists(CACHE)
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    with open(CACHE, "w", encoding="utf-8") as f:
        f.write("warm")
    assert warm, "cold cache: the lookup took too long"
"#;

/// A test that never returns.
const HANGING_TEST: &str = r#""""Waits for an event that never comes."""
import time


def test_waits_forever():
    while True:
        time.sleep(1)
"#;

/// Replaces `from` (which must be there) with `to` in the file at `rel`.
fn edit(root: &Utf8Path, rel: &str, from: &str, to: &str) -> io::Result<()> {
    let path = root.join(rel);
    let text = fs::read_to_string(&path)?;
    if !text.contains(from) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path} does not contain {from:?}"),
        ));
    }
    fs::write(&path, text.replacen(from, to, 1))
}

fn expect_counts(out: &VerifyOutput, passed: u64, failed: u64) -> Result<(), String> {
    if (out.counts.passed, out.counts.failed) == (passed, failed) {
        Ok(())
    } else {
        Err(format!(
            "expected {passed} passed and {failed} failed, got {:?}",
            out.counts
        ))
    }
}

#[cfg(unix)]
fn symlink_escape(root: &Utf8Path) -> io::Result<()> {
    std::os::unix::fs::symlink("../../src", root.join("runtime/tests/escape"))
}

#[cfg(not(unix))]
fn symlink_escape(_: &Utf8Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symlinks are only planted on unix",
    ))
}

/// Runs the demo from the workspace at `root`.
pub(crate) fn run(root: &Utf8Path) -> Result<(), DemoError> {
    println!("==> demo: building warden, preparing Python, copying examples/demo");
    let warden = build_warden(root)?;
    println!("==> demo: warden is {warden}");
    let temp = tempfile::tempdir().map_err(|source| DemoError::Prepare {
        what: "create a temporary directory",
        source,
    })?;
    let temp_path = Utf8Path::from_path(temp.path())
        .ok_or_else(|| DemoError::NonUtf8Temp(temp.path().display().to_string()))?;
    let project = temp_path.join("demo");
    let example = root.join("examples").join("demo");
    copy_tree(&example, &project).map_err(|source| DemoError::Copy {
        from: example.clone(),
        to: project.clone(),
        source,
    })?;
    println!("==> demo: making sure target/venv has the pinned pytest");
    let python = venv::ensure(root)?;
    println!("Warden demo on a copy of examples/demo at {project}");
    println!(
        "(each command runs with `--root <copy>`, and pytest with WARDEN_PYTHON={python}; what \
         follows each command is warden's own output, as a person sees it)\n"
    );

    let steps = script();
    let mut failed = 0;
    let mut number = 0;
    // A numbered step: its title, then what it found if that was not what was expected.
    let mut numbered = |what: &str, run: &dyn Fn() -> Result<(), String>| {
        number += 1;
        println!("[{number}] {what}");
        if let Err(problem) = run() {
            println!("    UNEXPECTED: {problem}");
            failed += 1;
        }
        println!();
    };
    for step in &steps {
        match step {
            Step::Prepare { what, apply } => {
                println!("-- {what}\n");
                apply(&project).map_err(|source| DemoError::Prepare { what, source })?;
            }
            Step::Check { what, check } => numbered(what, &|| run_check(&warden, &project, check)),
            Step::Verify { what, verify } => {
                numbered(what, &|| run_verify(&warden, &project, &python, verify));
            }
            Step::Evidence { what, runs } => {
                numbered(what, &|| run_evidence(&warden, &project, *runs));
            }
        }
    }
    if failed > 0 {
        return Err(DemoError::Unexpected {
            failed,
            total: number,
        });
    }
    println!("demo: all {number} steps behaved as expected");
    Ok(())
}

/// `warden check --json` output (the contract's keys this demo reads; others are ignored).
#[derive(Debug, Deserialize)]
struct CheckOutput {
    allowed: bool,
    resolved_target: Option<String>,
}

/// Runs one check as a person would and shows warden's answer; then asks again with `--json`
/// to hold the answer to what the script expects, and says what was unexpected, if anything.
fn run_check(warden: &Utf8Path, project: &Utf8Path, check: &Check) -> Result<(), String> {
    let request = |command: &mut Command| {
        command.args(["check", "--tool", check.tool, "--action", check.action]);
        if let Some(target) = check.target {
            // `--flag=value` keeps a value that starts with `-` from reading as a flag.
            command.arg(format!("--target={target}"));
        }
        for arg in check.args {
            command.arg(format!("--arg={arg}"));
        }
    };
    let mut shown = Command::new(warden);
    request(&mut shown);
    println!("    $ {}", describe(&shown));
    shown
        .arg("--root")
        .arg(project)
        .arg(colour())
        .stdin(Stdio::null());
    let human = output_of(&mut shown)?;
    show(&human.stdout);

    let mut command = Command::new(warden);
    request(&mut command);
    command
        .arg("--root")
        .arg(project)
        .arg("--json")
        .stdin(Stdio::null());
    let output = output_of(&mut command)?;
    let code = output.status.code();
    let decision: CheckOutput = contract_json(&output)?;
    let said = plain(&String::from_utf8_lossy(&human.stdout));
    let word = if decision.allowed {
        "allowed:"
    } else {
        "denied:"
    };
    if !said.starts_with(word) || human.status.code() != code {
        return Err(format!(
            "the output for people ({}) does not say `{word}` as the JSON answer does",
            human.status
        ));
    }

    let expected_code = if decision.allowed { Some(0) } else { Some(1) };
    if code != expected_code {
        return Err(format!(
            "{} does not match allowed={} (contract: exit 0 allowed, 1 denied)",
            output.status, decision.allowed
        ));
    }
    match (check.expect, decision.allowed) {
        (Expect::Deny, true) => Err("expected a denial, but warden allowed it".to_owned()),
        (Expect::Allow(_), false) => {
            Err("expected it to be allowed, but warden denied it".to_owned())
        }
        (Expect::Allow(path), true) => {
            let resolved = decision.resolved_target.unwrap_or_default();
            let resolved_path = resolved.split("::").next().unwrap_or_default();
            if resolved_path == path {
                Ok(())
            } else {
                Err(format!(
                    "expected the resolved target {path}, got {resolved:?}"
                ))
            }
        }
        (Expect::Deny, false) => Ok(()),
    }
}

/// A recorded `verify` report (the contract's keys this demo reads; others are ignored).
#[derive(Debug, Deserialize)]
struct VerifyOutput {
    status: String,
    failure_class: Option<String>,
    counts: Counts,
    timed_out_test: Option<String>,
    flaky_tests: Vec<String>,
    attempts: Vec<serde_json::Value>,
    retry_context: Option<RetryContext>,
}

#[derive(Debug, Deserialize)]
struct Counts {
    passed: u64,
    failed: u64,
}

#[derive(Debug, Deserialize)]
struct RetryContext {
    failed_tests: Vec<String>,
    error_messages: Vec<String>,
}

/// Runs one verification as a person would (live progress on the demo's terminal, the report
/// on stdout), shows warden's report, and holds the result to what the script expects: the exit
/// code, the report's first line, and the recorded report in the ledger for the details.
fn run_verify(
    warden: &Utf8Path,
    project: &Utf8Path,
    python: &Utf8Path,
    verify: &Verify,
) -> Result<(), String> {
    let mut shown = Command::new(warden);
    shown.args(["verify", verify.target]).args(verify.args);
    println!("    $ {}", describe(&shown));
    // The global options go first: after `--`, everything is pytest's.
    let mut command = Command::new(warden);
    command
        .arg("--root")
        .arg(project)
        .arg(colour())
        .args(["verify", verify.target])
        .args(verify.args)
        .env("WARDEN_PYTHON", python)
        .stdin(Stdio::null())
        // Live progress goes to stderr: the demo's own terminal shows it as a user sees it.
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let output = output_of(&mut command)?;
    let took = started.elapsed();
    show(&output.stdout);
    println!(
        "    (exit {}, {:.1} s)",
        describe_code(output.status.code()),
        took.as_secs_f64()
    );
    let result = recorded(project)?;

    let report = plain(&String::from_utf8_lossy(&output.stdout));
    let headline = match result.failure_class.as_deref() {
        Some(class) => format!("{} ({class})", result.status.to_uppercase()),
        None => result.status.to_uppercase(),
    };
    if !report.starts_with(&headline) {
        return Err(format!(
            "the report for people does not start with `{headline}`, as the recorded report says"
        ));
    }
    if let Some(missing) = verify.shows.iter().find(|piece| !report.contains(*piece)) {
        return Err(format!("the report for people does not say {missing:?}"));
    }
    let class = result.failure_class.as_deref();
    if output.status.code() != Some(verify.code) || class != verify.class {
        return Err(format!(
            "expected exit code {} and class {}, got {} and {}",
            verify.code,
            verify.class.unwrap_or("none"),
            output.status,
            class.unwrap_or("none")
        ));
    }
    match verify.also {
        Some(check) => check(&result, took),
        None => Ok(()),
    }
}

/// The report of the last verification, as the ledger recorded it.
fn recorded(project: &Utf8Path) -> Result<VerifyOutput, String> {
    let ledger = project.join(".warden/ledger.jsonl");
    let text = fs::read_to_string(&ledger).map_err(|e| format!("cannot read {ledger}: {e}"))?;
    let last = text.lines().last().ok_or("the ledger is empty")?;
    #[derive(Deserialize)]
    struct Record {
        report: VerifyOutput,
    }
    let record: Record = serde_json::from_str(last)
        .map_err(|e| format!("the ledger's last record is not a verify report ({e})"))?;
    Ok(record.report)
}

fn describe_code(code: Option<i32>) -> String {
    code.map_or("by a signal".to_owned(), |c| c.to_string())
}

/// `--color=always` when the demo's own output is a terminal that wants colour (warden's
/// stdout is captured here, so it would not colour by itself), else `--color=never`.
fn colour() -> &'static str {
    use std::io::IsTerminal as _;
    let wanted = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if wanted {
        "--color=always"
    } else {
        "--color=never"
    }
}

/// Shows a command's output for people, indented under it.
fn show(stdout: &[u8]) {
    for line in String::from_utf8_lossy(stdout).lines() {
        println!("      {line}");
    }
}

/// `text` without ANSI colour sequences (`ESC [ ... m`), to read what it says.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `warden ledger verify` then `warden ledger stats` on the copy's ledger: the chain must be
/// intact and hold `runs` records.
fn run_evidence(warden: &Utf8Path, project: &Utf8Path, runs: u64) -> Result<(), String> {
    let mut verify = Command::new(warden);
    verify.args(["ledger", "verify", ".warden/ledger.jsonl"]);
    println!("    $ {}", describe(&verify));
    verify.current_dir(project).stdin(Stdio::null());
    show(&output_of(&mut verify)?.stdout);
    // Asked again with `--json`, to hold the answer to what the script expects.
    let mut verify = Command::new(warden);
    verify.args(["ledger", "verify", ".warden/ledger.jsonl"]);
    verify
        .arg("--json")
        .current_dir(project)
        .stdin(Stdio::null());
    let output = output_of(&mut verify)?;
    #[derive(Deserialize)]
    struct Chain {
        intact: bool,
        records: Option<u64>,
    }
    let chain: Chain = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{}: not the ledger report ({e}){}",
            output.status,
            excerpt("stderr", &output.stderr)
        )
    })?;
    if !chain.intact || output.status.code() != Some(0) || chain.records != Some(runs) {
        return Err(format!(
            "expected an intact chain of {runs} records (exit 0), got {}",
            output.status
        ));
    }

    let mut stats = Command::new(warden);
    stats.args(["ledger", "stats", ".warden/ledger.jsonl"]);
    println!("    $ {}", describe(&stats));
    stats.current_dir(project).stdin(Stdio::null());
    let output = output_of(&mut stats)?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if line.is_empty() {
            println!();
        } else {
            println!("      {line}");
        }
    }
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ledger stats failed: {}", output.status))
    }
}

/// Runs `command` to its end, capturing its output.
fn output_of(command: &mut Command) -> Result<Output, String> {
    command.output().map_err(|e| {
        let program = command.get_program().to_string_lossy();
        format!("could not run {program}: {e}")
    })
}

/// A command's stdout as the contract's JSON document `T`; `Err` shows what came out instead.
fn contract_json<T: DeserializeOwned>(output: &Output) -> Result<T, String> {
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{}, and stdout is not the contract's JSON ({e}){}{}",
            output.status,
            excerpt("stdout", &output.stdout),
            excerpt("stderr", &output.stderr)
        )
    })
}

/// A short labelled excerpt of a child's output for an error message, or nothing if empty.
fn excerpt(label: &str, bytes: &[u8]) -> String {
    const LIMIT: usize = 400;
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        _ if text.is_empty() => String::new(),
        Some((cut, _)) => format!("; {label}: {}...", &text[..cut]),
        None => format!("; {label}: {text}"),
    }
}

/// Builds `warden` (see [`process::build_warden`]).
fn build_warden(root: &Utf8Path) -> Result<Utf8PathBuf, DemoError> {
    process::build_warden(root, false).map_err(|e| DemoError::Build {
        command: e.command,
        problem: e.problem,
    })
}

/// Copies a project tree, leaving out Python and Warden caches; symlinks stay symlinks (never
/// followed: a link in the example must not copy files from outside it).
fn copy_tree(from: &Utf8Path, to: &Utf8Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in from.read_dir_utf8()? {
        let entry = entry?;
        if matches!(
            entry.file_name(),
            "__pycache__" | ".pytest_cache" | ".warden"
        ) {
            continue;
        }
        let destination = to.join(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            copy_tree(entry.path(), &destination)?;
        } else if file_type.is_symlink() {
            copy_symlink(entry.path(), &destination)?;
        } else {
            fs::copy(entry.path(), &destination)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn copy_symlink(from: &Utf8Path, to: &Utf8Path) -> io::Result<()> {
    std::os::unix::fs::symlink(fs::read_link(from)?, to)
}

#[cfg(not(unix))]
fn copy_symlink(from: &Utf8Path, _: &Utf8Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("cannot copy the symlink {from} on this platform"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_expects_both_decisions() {
        let expectations: Vec<Expect> = script()
            .iter()
            .filter_map(|step| match step {
                Step::Check { check, .. } => Some(check.expect),
                _ => None,
            })
            .collect();
        assert!(expectations.iter().any(|e| matches!(e, Expect::Allow(_))));
        assert!(
            expectations
                .iter()
                .filter(|e| matches!(e, Expect::Deny))
                .count()
                >= 8
        );
    }

    #[test]
    fn the_verify_act_shows_the_whole_loop() {
        let runs: Vec<(i32, Option<&str>)> = script()
            .iter()
            .filter_map(|step| match step {
                Step::Verify { verify, .. } => Some((verify.code, verify.class)),
                _ => None,
            })
            .collect();
        for expected in [
            (0, None),
            (1, Some("test_failure")),
            (0, Some("test_flake")),
            (4, Some("test_timeout")),
            (3, Some("policy_denied")),
        ] {
            assert!(
                runs.contains(&expected),
                "{expected:?} missing from {runs:?}"
            );
        }
        // The evidence step expects one record per verification, denials included.
        let evidence = script().iter().find_map(|step| match step {
            Step::Evidence { runs, .. } => Some(*runs),
            _ => None,
        });
        assert_eq!(evidence, Some(runs.len() as u64));
    }

    /// A stand-in `warden` that answers with `json` when asked for JSON, with `human`
    /// otherwise, and exits with `code`.
    #[cfg(unix)]
    fn fake(dir: &Utf8Path, json: &str, human: &str, code: i32) -> Utf8PathBuf {
        let path = dir.join("warden");
        warden_e2e::write_executable(
            path.as_std_path(),
            &format!(
                "#!/bin/sh\ncase \" $* \" in\n*\" --json \"*) cat <<'EOF'\n{json}\nEOF\n;;\n\
                 *) cat <<'EOF'\n{human}\nEOF\n;;\nesac\nexit {code}\n"
            ),
        );
        path
    }

    /// [`fake`], with the human answer that matches `json`'s decision.
    #[cfg(unix)]
    fn fake_warden(dir: &Utf8Path, json: &str, code: i32) -> Utf8PathBuf {
        let human = if json.contains("\"allowed\": true") {
            "allowed: pytest/run src"
        } else {
            "denied: pytest/run src"
        };
        fake(dir, json, human, code)
    }

    #[cfg(unix)]
    #[test]
    fn run_check_catches_a_misbehaving_binary() {
        let temp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(temp.path()).unwrap();
        let allow = r#"{"allowed": true, "reason": "r", "matched_rules": ["a"], "tool": "pytest", "action": "run", "target": "src", "resolved_target": "src"}"#;
        let deny = r#"{"allowed": false, "reason": "r", "matched_rules": [], "tool": "pytest", "action": "run", "target": "src", "resolved_target": null}"#;
        let denied = pytest("src", &[], Expect::Deny);
        let allowed = pytest("src", &[], Expect::Allow("src"));

        assert_eq!(run_check(&fake_warden(dir, deny, 1), dir, &denied), Ok(()));
        assert_eq!(
            run_check(&fake_warden(dir, allow, 0), dir, &allowed),
            Ok(())
        );

        let cases = [
            (allow, 0, denied, "expected a denial"),
            (deny, 1, allowed, "expected it to be allowed"),
            (deny, 0, denied, "does not match allowed=false"),
            (allow, 1, allowed, "does not match allowed=true"),
            (deny, 2, denied, "does not match"),
            (
                "usage: warden check ...",
                2,
                denied,
                "not the contract's JSON",
            ),
        ];
        for (json, code, check, expected) in cases {
            let problem = run_check(&fake_warden(dir, json, code), dir, &check).unwrap_err();
            assert!(problem.contains(expected), "{json} exit {code}: {problem}");
        }
        let elsewhere = pytest("src", &[], Expect::Allow("runtime/tests"));
        let problem = run_check(&fake_warden(dir, allow, 0), dir, &elsewhere).unwrap_err();
        assert!(
            problem.contains("expected the resolved target runtime/tests"),
            "{problem}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn run_check_holds_the_output_for_people_to_the_decision() {
        let temp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(temp.path()).unwrap();
        let deny = r#"{"allowed": false, "reason": "r", "matched_rules": [], "tool": "pytest", "action": "run", "target": "src", "resolved_target": null}"#;
        let denied = pytest("src", &[], Expect::Deny);
        let lying = fake(dir, deny, "allowed: pytest/run src", 1);
        let problem = run_check(&lying, dir, &denied).unwrap_err();
        assert!(problem.contains("does not say `denied:`"), "{problem}");
    }

    #[cfg(unix)]
    #[test]
    fn run_verify_catches_a_misbehaving_binary() {
        let temp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(temp.path()).unwrap();
        let python = Utf8Path::new("python3");
        let failed = r#"{"status": "failed", "failure_class": "test_failure", "decision": {"allowed": true, "reason": "r", "matched_rules": []}, "counts": {"passed": 2, "failed": 2, "errors": 0}, "duration_ms": 5, "timed_out_test": null, "flaky_tests": [], "attempts": [{}, {}], "retry_context": {"failed_tests": ["a", "b"], "error_messages": ["m"], "suggestion": "fix it"}}"#;
        // The binary prints its report for people; the ledger holds the recorded report.
        fs::create_dir_all(dir.join(".warden")).unwrap();
        fs::write(
            dir.join(".warden/ledger.jsonl"),
            format!("{{\"seq\": 1, \"report\": {failed}}}\n"),
        )
        .unwrap();
        let report = "FAILED (test_failure)  runtime/tests\n  failing:   a";
        let step = |code, class| Verify {
            target: "runtime/tests",
            args: &[],
            code,
            class,
            shows: &["failing:   a"],
            also: Some(|out, _| expect_counts(out, 2, 2)),
        };
        let expected = step(1, Some("test_failure"));
        let warden = |human: &str, code| fake(dir, "{}", human, code);
        assert_eq!(
            run_verify(&warden(report, 1), dir, python, &expected),
            Ok(())
        );
        let cases = [
            (report, 0, expected, "expected exit code 1"),
            (report, 1, step(1, Some("test_flake")), "class test_flake"),
            (report, 1, step(1, None), "class none"),
            (
                "PASSED  runtime/tests",
                1,
                expected,
                "does not start with `FAILED (test_failure)`",
            ),
            (
                "FAILED (test_failure)  x",
                1,
                expected,
                "does not say \"failing:   a\"",
            ),
        ];
        for (human, code, verify, wanted) in cases {
            let problem = run_verify(&warden(human, code), dir, python, &verify).unwrap_err();
            assert!(problem.contains(wanted), "{human} exit {code}: {problem}");
        }
        let counted = Verify {
            also: Some(|out, _| expect_counts(out, 4, 0)),
            ..expected
        };
        let problem = run_verify(&warden(report, 1), dir, python, &counted).unwrap_err();
        assert!(problem.contains("expected 4 passed"), "{problem}");
        // No ledger record: nothing to check the report against.
        fs::remove_file(dir.join(".warden/ledger.jsonl")).unwrap();
        let problem = run_verify(&warden(report, 1), dir, python, &expected).unwrap_err();
        assert!(problem.contains("cannot read"), "{problem}");
    }

    #[test]
    fn preparations_apply_to_a_copy_of_the_example() {
        let temp = tempfile::tempdir().unwrap();
        let project = Utf8Path::from_path(temp.path()).unwrap().join("demo");
        let example = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
        copy_tree(&example, &project).unwrap();
        assert!(project.join("runtime/tests/test_calc.py").is_file());
        assert!(project.join("pytest.ini").is_file());
        for step in script() {
            if let Step::Prepare { what, apply } = step {
                apply(&project).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
        }
        assert!(project.join("runtime/testsX/test_sneaky.py").is_file());
        assert!(project.join("docs/00_foundations/charter.md").is_file());
        assert!(project.join("runtime/tests/test_cache.py").is_file());
        assert!(project.join("runtime/tests/test_hang.py").is_file());
        // The bug was made and fixed again.
        assert_eq!(
            fs::read_to_string(project.join("src/calc.py")).unwrap(),
            fs::read_to_string(example.join("src/calc.py")).unwrap()
        );
        // The example itself is untouched.
        assert!(!example.join("runtime/testsX").exists());
        assert!(!example.join("docs").exists());
    }
}
