//! `warden verify`'s answer for people: status and class, counts, failing and flaky tests, the
//! retry context's suggestion, and where the evidence went.

use std::fmt::Write as _;
use std::path::Path;

use warden_build_mission::LedgerEntry;
use warden_taxonomy::{RunStatus, TestCounts, TestOutcome, VerifyReport};

/// Longest message shown per test or error, in characters.
const MESSAGE_CHARS: usize = 200;
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

/// The report as text for a terminal.
pub(crate) fn render(report: &VerifyReport, notes: &[String], evidence: &Evidence<'_>) -> String {
    let mut out = String::new();
    let class = report
        .failure_class
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let status = match report.status {
        RunStatus::Passed => "PASSED",
        RunStatus::Failed => "FAILED",
        RunStatus::Timeout => "TIMEOUT",
        RunStatus::Denied => "DENIED",
        RunStatus::Error => "ERROR",
    };
    line(
        &mut out,
        &format!("{status}{class}  {}", clean(&report.target)),
    );

    let decision = &report.decision;
    let rules = if decision.matched_rules.is_empty() {
        String::new()
    } else {
        format!(" [{}]", decision.matched_rules.join(", "))
    };
    let verdict = if decision.allowed {
        "allowed"
    } else {
        "denied"
    };
    field(
        &mut out,
        "decision",
        &format!("{verdict}{rules}: {}", clean(&decision.reason)),
    );
    if let Some(resolved) = &report.resolved_target {
        field(&mut out, "ran", &clean(resolved));
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
    } else {
        field(&mut out, "tests", "none ran");
    }
    if let Some(test) = &report.timed_out_test {
        field(&mut out, "timed out", &clean(test));
    }

    let failing: Vec<&str> = match &report.retry_context {
        Some(context) => context.failed_tests.iter().map(String::as_str).collect(),
        None => Vec::new(),
    };
    for (at, nodeid) in failing.iter().enumerate() {
        let label = if at == 0 { "failing" } else { "" };
        field(&mut out, label, &clean(nodeid));
        let message = report
            .tests
            .iter()
            .find(|t| t.nodeid == *nodeid && t.outcome.is_failure())
            .and_then(|t| t.message.as_deref());
        if let Some(message) = message {
            field(&mut out, "", &format!("  {}", clean(message)));
        }
    }
    for (at, nodeid) in report.flaky_tests.iter().enumerate() {
        let label = if at == 0 { "flaky" } else { "" };
        field(
            &mut out,
            label,
            &format!("{} (failed, and passed on the same code)", clean(nodeid)),
        );
    }
    if let Some(context) = &report.retry_context {
        let shown_with_tests = report.tests.iter().any(|t| {
            t.outcome.is_failure() && t.message.is_some() && failing.contains(&t.nodeid.as_str())
        });
        if !shown_with_tests {
            for (at, message) in context.error_messages.iter().enumerate() {
                let label = if at == 0 { "errors" } else { "" };
                field(&mut out, label, &clean(message));
            }
        }
        field(
            &mut out,
            "next",
            &clean_to(&context.suggestion, SUGGESTION_CHARS),
        );
    }

    match evidence {
        Evidence::Recorded(path, entry) => field(
            &mut out,
            "evidence",
            &format!(
                "{} record {} (hash {})",
                path.display(),
                entry.seq,
                entry.hash.get(..16).unwrap_or(&entry.hash)
            ),
        ),
        Evidence::NotRecorded => field(&mut out, "evidence", "not recorded (--no-ledger)"),
        Evidence::Failed => field(&mut out, "evidence", "NOT RECORDED: the append failed"),
    }
    for (at, note) in notes.iter().enumerate() {
        let label = if at == 0 { "notes" } else { "" };
        field(&mut out, label, &clean(note));
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

/// The first line of `text`, cut to [`MESSAGE_CHARS`], with control characters (which a test
/// could use to drive the terminal) shown escaped.
fn clean(text: &str) -> String {
    clean_to(text, MESSAGE_CHARS)
}

/// [`clean`] with another length limit.
fn clean_to(text: &str, limit: usize) -> String {
    let first = text.lines().next().unwrap_or_default();
    let mut shown = String::new();
    for (at, c) in first.chars().enumerate() {
        if at == limit {
            shown.push_str("...");
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
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
        }
    }

    #[test]
    fn a_failure_shows_tests_messages_flakes_and_the_suggestion() {
        let text = render(
            &report(),
            &["retries clamped".to_owned()],
            &Evidence::NotRecorded,
        );
        for expected in [
            "FAILED (test_failure)  runtime/tests",
            "allowed [pytest-runtime-tests]: inside runtime/tests",
            "2 passed, 1 failed (first attempt, exit code 1); 2 attempts, 1.5 s",
            "failing:   runtime/tests/test_a.py::test_b",
            "  assert 1 == 2 ...",
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
    fn control_characters_cannot_reach_the_terminal() {
        let shown = clean("evil \u{1b}[2J\u{7}");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(clean(&"x".repeat(500)).chars().count(), MESSAGE_CHARS + 3);
    }
}
