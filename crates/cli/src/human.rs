//! `warden verify`'s answer for people: status and class, counts, failing and flaky tests, the
//! retry context's suggestion, and where the evidence went.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use warden_build_mission::LedgerEntry;
use warden_taxonomy::{FailureClass, RunStatus, TestCounts, TestOutcome, VerifyReport};

use crate::failure;
use crate::style::{Palette, Tone, escape, escape_cut};

/// Longest line shown of a message, in characters.
const MESSAGE_CHARS: usize = 200;
/// Most lines shown of one test's message (pytest's explanation lines, `where 3.5 = ...`);
/// the whole message is in `--json`.
const MESSAGE_LINES: usize = 8;
/// Longest suggestion shown, in characters (the classifier writes them; they are short).
const SUGGESTION_CHARS: usize = 1000;

/// Where the evidence of a verification went.
pub(crate) enum Evidence<'a> {
    /// Appended to the ledger at this path as this record.
    Recorded(&'a Path, &'a LedgerEntry),
    /// `--no-ledger`.
    NotRecorded,
    /// The append failed (said on stderr).
    Failed,
}

/// The report as text for a terminal, coloured with `palette`. Every piece of text that came
/// from the run or the request is escaped ([`escape`]).
pub(crate) fn render(
    report: &VerifyReport,
    notes: &[String],
    evidence: &Evidence<'_>,
    palette: Palette,
) -> String {
    let mut out = String::new();
    let class = report
        .failure_class
        .map(|c| format!(" ({})", palette.paint(Tone::Strong, c.as_str())))
        .unwrap_or_default();
    let (status, tone) = match report.status {
        RunStatus::Passed if report.failure_class.is_some() => ("PASSED", Tone::Warn),
        RunStatus::Passed => ("PASSED", Tone::Good),
        RunStatus::Failed => ("FAILED", Tone::Bad),
        RunStatus::Timeout => ("TIMEOUT", Tone::Bad),
        RunStatus::Denied => ("DENIED", Tone::Bad),
        RunStatus::Error => ("ERROR", Tone::Bad),
    };
    line(
        &mut out,
        &format!(
            "{}{class}  {}",
            palette.paint(tone, status),
            escape(&report.target)
        ),
    );

    let decision = &report.decision;
    let rules = if decision.matched_rules.is_empty() {
        String::new()
    } else {
        format!(" [{}]", escape(&decision.matched_rules.join(", ")))
    };
    let verdict = if decision.allowed {
        "allowed"
    } else {
        "denied"
    };
    field(
        &mut out,
        "decision",
        &format!("{verdict}{rules}: {}", escape(&decision.reason)),
    );
    if let Some(resolved) = &report.resolved_target {
        field(&mut out, "ran", &escape(resolved));
    }

    let ran = !report.attempts.is_empty();
    if ran {
        let exit = report
            .exit_code
            .map_or("no exit code".to_owned(), |c| format!("exit code {c}"));
        let attempts = match report.attempts.len() {
            1 => "1 attempt".to_owned(),
            n => format!("{n} attempts"),
        };
        field(
            &mut out,
            "tests",
            &format!(
                "{} (first attempt, {exit}); {attempts}, {}",
                counts(&report.counts),
                millis(report.duration_ms)
            ),
        );
        if let Some(stopped) = stopped_early(report) {
            field(&mut out, "stopped", &palette.paint(Tone::Warn, &stopped));
        }
    } else {
        field(&mut out, "tests", "none ran");
    }
    if let Some(test) = &report.timed_out_test {
        field(
            &mut out,
            "timed out",
            &palette.paint(Tone::Bad, &escape(test)),
        );
    }

    let failing: Vec<&str> = match &report.retry_context {
        Some(context) => context.failed_tests.iter().map(String::as_str).collect(),
        None => Vec::new(),
    };
    for (at, nodeid) in failing.iter().enumerate() {
        let label = if at == 0 { "failing" } else { "" };
        field(&mut out, label, &palette.paint(Tone::Bad, &escape(nodeid)));
        if let Some(at) = failure::location(&report.stdout.text, nodeid) {
            field(
                &mut out,
                "",
                &format!(
                    "  at {}",
                    palette.paint(Tone::Strong, &escape_cut(at, MESSAGE_CHARS))
                ),
            );
        }
        let message = report
            .tests
            .iter()
            .find(|t| t.nodeid == *nodeid && t.outcome.is_failure())
            .and_then(|t| t.message.as_deref());
        if let Some(message) = message {
            message_lines(&mut out, message);
        }
    }
    for (at, nodeid) in report.flaky_tests.iter().enumerate() {
        let label = if at == 0 { "flaky" } else { "" };
        field(
            &mut out,
            label,
            &format!(
                "{} (failed, and passed on the same code)",
                palette.paint(Tone::Warn, &escape(nodeid))
            ),
        );
    }
    if let Some(context) = &report.retry_context {
        let shown_with_tests = report.tests.iter().any(|t| {
            t.outcome.is_failure() && t.message.is_some() && failing.contains(&t.nodeid.as_str())
        });
        if !shown_with_tests {
            for (at, message) in context.error_messages.iter().enumerate() {
                let label = if at == 0 { "errors" } else { "" };
                field(&mut out, label, &first_line(message));
            }
        }
        field(
            &mut out,
            "next",
            &first_line_cut(&context.suggestion, SUGGESTION_CHARS),
        );
    }

    if let Some(python) = &report.interpreter {
        field(
            &mut out,
            "python",
            &format!("{} ({})", escape(&python.path), escape(&python.reason)),
        );
    }
    if let Some(sandbox) = &report.sandbox {
        field(&mut out, "sandbox", &escape(&sandbox_line(sandbox)));
    }

    match evidence {
        Evidence::Recorded(path, entry) => field(
            &mut out,
            "evidence",
            &format!(
                "{} record {} (hash {})",
                escape(&path.display().to_string()),
                entry.seq,
                entry.hash.get(..16).unwrap_or(&entry.hash)
            ),
        ),
        Evidence::NotRecorded => field(&mut out, "evidence", "not recorded (--no-ledger)"),
        Evidence::Failed => field(
            &mut out,
            "evidence",
            &palette.paint(Tone::Bad, "NOT RECORDED: the append failed"),
        ),
    }
    for (at, note) in notes.iter().enumerate() {
        let label = if at == 0 { "notes" } else { "" };
        field(&mut out, label, &first_line_cut(note, SUGGESTION_CHARS));
    }
    if ran {
        field(
            &mut out,
            "output",
            &format!(
                "stdout {}, stderr {} (kept text and sha256 in `--json`)",
                bytes(report.stdout.total_bytes, report.stdout.truncated),
                bytes(report.stderr.total_bytes, report.stderr.truncated)
            ),
        );
    }
    out
}

/// A run that ended before every collected test ran: why, and how many never ran.
fn stopped_early(report: &VerifyReport) -> Option<String> {
    let stdout = &report.stdout.text;
    let after = failure::stopped_after(stdout);
    let timed_out = report.status == RunStatus::Timeout;
    let interrupted = report.failure_class == Some(FailureClass::Interrupted);
    if after.is_none() && !timed_out && !interrupted {
        return None;
    }
    let why = match after {
        Some(1) => "after 1 failure".to_owned(),
        Some(n) => format!("after {n} failures"),
        None if timed_out => "at the deadline".to_owned(),
        None => "before the end of the run".to_owned(),
    };
    let ran: BTreeSet<&str> = report
        .tests
        .iter()
        .filter(|t| t.nodeid.contains("::"))
        .map(|t| t.nodeid.as_str())
        .collect();
    // The test that hung started but never finished: it is named on its own line.
    let hung = report
        .timed_out_test
        .as_deref()
        .is_some_and(|t| !ran.contains(t));
    let not_run =
        failure::collected(stdout).map(|c| c.saturating_sub(ran.len() as u64 + u64::from(hung)));
    Some(match not_run {
        Some(0) | None => why,
        Some(1) => format!("{why}; 1 test not run"),
        Some(n) => format!("{why}; {n} tests not run"),
    })
}

/// The lines of a failure message, pytest's explanation lines included, each escaped and cut,
/// at most [`MESSAGE_LINES`] of them.
fn message_lines(out: &mut String, message: &str) {
    let lines: Vec<&str> = message.lines().filter(|l| !l.trim().is_empty()).collect();
    for text in lines.iter().take(MESSAGE_LINES) {
        field(out, "", &format!("  {}", escape_cut(text, MESSAGE_CHARS)));
    }
    if lines.len() > MESSAGE_LINES {
        field(
            out,
            "",
            &format!(
                "  ... {} more lines (the whole message is in `--json`)",
                lines.len() - MESSAGE_LINES
            ),
        );
    }
}

/// One line: what confined the run (and what was missing, for best-effort).
fn sandbox_line(s: &warden_taxonomy::SandboxReport) -> String {
    let landlock = s.landlock_abi.map_or_else(
        || "no landlock".to_owned(),
        |abi| format!("landlock ABI {abi}"),
    );
    let namespaces = if s.namespaces.is_empty() {
        "no namespaces".to_owned()
    } else {
        format!("namespaces {}", s.namespaces.join("+"))
    };
    let mb =
        |b: Option<u64>| b.map_or_else(|| "unlimited".to_owned(), |b| format!("{} MiB", b >> 20));
    let mut line = format!(
        "{} ({}): {landlock}, {namespaces}, network {}, memory {}, processes {}",
        if s.enforced { "on" } else { "partial" },
        s.mode,
        s.network,
        mb(s.memory_bytes),
        s.processes
            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
    );
    if !s.missing.is_empty() {
        line.push_str(&format!("; missing: {}", s.missing.join("; ")));
    }
    if !s.removed.is_empty() {
        line.push_str(&format!(
            "; removed what the run planted: {}",
            s.removed.join(", ")
        ));
    }
    line
}

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    out.push('\n');
}

/// A labelled line, values aligned.
fn field(out: &mut String, label: &str, value: &str) {
    let label = if label.is_empty() {
        String::new()
    } else {
        format!("{label}:")
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "  {label:<10} {value}");
}

/// Non-zero counts in the contract's order, or "no tests".
fn counts(counts: &TestCounts) -> String {
    let parts: Vec<String> = TestOutcome::ALL
        .iter()
        .filter_map(|&outcome| {
            let n = counts.get(outcome);
            (n > 0).then(|| format!("{n} {}", noun(outcome, n)))
        })
        .collect();
    if parts.is_empty() {
        "no tests".to_owned()
    } else {
        parts.join(", ")
    }
}

fn noun(outcome: TestOutcome, n: u64) -> &'static str {
    match (outcome, n) {
        (TestOutcome::Error, 1) => "error",
        (TestOutcome::Error, _) => "errors",
        (other, _) => other.as_str(),
    }
}

fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn bytes(total: u64, truncated: bool) -> String {
    let cut = if truncated { ", truncated" } else { "" };
    format!("{total} bytes{cut}")
}

/// The first line of `text`, escaped and cut to [`MESSAGE_CHARS`], with ` ...` when more
/// lines follow.
fn first_line(text: &str) -> String {
    first_line_cut(text, MESSAGE_CHARS)
}

/// [`first_line`] with another length limit.
fn first_line_cut(text: &str, limit: usize) -> String {
    let first = text.lines().next().unwrap_or_default();
    let mut shown = escape_cut(first, limit);
    if text.lines().nth(1).is_some() && !shown.ends_with("...") {
        shown.push_str(" ...");
    }
    shown
}

#[cfg(test)]
mod tests {
    use warden_taxonomy::{
        AttemptSummary, CapturedStream, DecisionRecord, FailureClass, RetryContext, TestResult,
    };

    use super::*;

    fn report() -> VerifyReport {
        let nodeid = "runtime/tests/test_a.py::test_b".to_owned();
        VerifyReport {
            schema_version: 1,
            status: RunStatus::Failed,
            failure_class: Some(FailureClass::TestFailure),
            decision: DecisionRecord {
                allowed: true,
                reason: "inside runtime/tests".into(),
                matched_rules: vec!["pytest-runtime-tests".into()],
            },
            target: "runtime/tests".into(),
            resolved_target: Some("runtime/tests".into()),
            fingerprint: None,
            exit_code: Some(1),
            duration_ms: 1_500,
            counts: TestCounts {
                passed: 2,
                failed: 1,
                ..TestCounts::default()
            },
            tests: vec![TestResult {
                nodeid: nodeid.clone(),
                outcome: TestOutcome::Failed,
                message: Some("assert 1 == 2\nmore".into()),
                duration_ms: Some(3),
                subtests: Vec::new(),
            }],
            timed_out_test: None,
            flaky_tests: vec!["runtime/tests/test_a.py::test_c".into()],
            stdout: CapturedStream::default(),
            stderr: CapturedStream::default(),
            attempts: vec![
                AttemptSummary {
                    exit_code: Some(1),
                    duration_ms: 1_000,
                    counts: TestCounts::default(),
                };
                2
            ],
            retry_context: Some(RetryContext {
                failure_class: FailureClass::TestFailure,
                failed_tests: vec![nodeid],
                error_messages: vec!["assert 1 == 2".into()],
                suggestion: "fix the code under test".into(),
                timed_out_test: None,
            }),
            interpreter: None,
            sandbox: None,
        }
    }

    #[test]
    fn a_failure_shows_tests_messages_flakes_and_the_suggestion() {
        let text = render(
            &report(),
            &["retries clamped".to_owned()],
            &Evidence::NotRecorded,
            Palette::PLAIN,
        );
        for expected in [
            "FAILED (test_failure)  runtime/tests",
            "allowed [pytest-runtime-tests]: inside runtime/tests",
            "2 passed, 1 failed (first attempt, exit code 1); 2 attempts, 1.5 s",
            "failing:   runtime/tests/test_a.py::test_b",
            "               assert 1 == 2\n               more\n",
            "flaky:     runtime/tests/test_a.py::test_c",
            "next:      fix the code under test",
            "evidence:  not recorded (--no-ledger)",
            "notes:     retries clamped",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn an_early_stop_says_how_many_collected_tests_never_ran() {
        let mut stopped = report();
        stopped.stdout.text = "collecting ... collected 5 items\n\
                               !!!!!!!!!!!!! stopping after 1 failures !!!!!!!!!!!!!\n"
            .into();
        assert_eq!(
            stopped_early(&stopped).as_deref(),
            Some("after 1 failure; 4 tests not run")
        );
        // A deadline: the test that hung is named on its own line, not counted as not run.
        let mut hung = report();
        hung.status = RunStatus::Timeout;
        hung.timed_out_test = Some("runtime/tests/test_a.py::test_hang".into());
        hung.stdout.text = "collected 3 items\n".into();
        assert_eq!(
            stopped_early(&hung).as_deref(),
            Some("at the deadline; 1 test not run")
        );
        hung.stdout.text = "collected 2 items\n".into();
        assert_eq!(stopped_early(&hung).as_deref(), Some("at the deadline"));
        // A complete run says nothing.
        assert_eq!(stopped_early(&report()), None);
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let mut evil = report();
        evil.tests[0].nodeid = "t.py::test[\u{1b}]0;owned\u{7}]".into();
        evil.tests[0].message = Some("boom \u{1b}[2J\rline\n\u{9b}31m second".into());
        evil.retry_context.as_mut().unwrap().failed_tests = vec![evil.tests[0].nodeid.clone()];
        evil.flaky_tests = vec!["t.py::f[\u{202e}]".into()];
        evil.target = "runtime/tests\u{1b}[1A".into();
        let text = render(
            &evil,
            &["a\u{1b}note".into()],
            &Evidence::NotRecorded,
            Palette::PLAIN,
        );
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
            "{text:?}"
        );
        assert!(text.contains("t.py::test[\\u{1b}]0;owned\\u{7}]"), "{text}");
        assert!(text.contains("boom \\u{1b}[2J\\rline"), "{text}");
        assert_eq!(
            first_line(&"x".repeat(500)).chars().count(),
            MESSAGE_CHARS + 3
        );
    }

    #[test]
    fn colour_marks_the_status_the_class_and_the_failing_tests() {
        let on = Palette { enabled: true };
        let text = render(&report(), &[], &Evidence::NotRecorded, on);
        assert!(
            text.starts_with("\u{1b}[1m\u{1b}[31mFAILED\u{1b}[0m"),
            "{text:?}"
        );
        assert!(text.contains("\u{1b}[1mtest_failure\u{1b}[0m"), "{text:?}");
        assert!(
            text.contains("\u{1b}[1m\u{1b}[31mruntime/tests/test_a.py::test_b\u{1b}[0m"),
            "{text:?}"
        );
        let plain = render(&report(), &[], &Evidence::NotRecorded, Palette::PLAIN);
        assert!(!plain.contains('\u{1b}'));
    }
}
