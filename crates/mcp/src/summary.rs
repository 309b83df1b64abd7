//! The short text beside `verify`'s structured answer, for a model that reads only text: the
//! verdict, the counts, what failed and why, what to do next, and where the evidence went.

use std::fmt::Write as _;

use warden_build_mission::Verification;

/// At most this many failing or flaky tests are named (the retry context has the rest).
const NAMED: usize = 5;

/// The summary of a verification.
pub(crate) fn verify(verification: &Verification) -> String {
    let report = &verification.report;
    let mut text = String::new();
    let class = report
        .failure_class
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let _ = write!(text, "{}{class}: {}", report.status, report.target);
    if !report.decision.allowed {
        let _ = write!(text, "\ndenied: {}", report.decision.reason);
    } else {
        let c = &report.counts;
        let _ = write!(
            text,
            "\n{} passed, {} failed, {} errors, {} skipped in {:.1} s",
            c.passed,
            c.failed,
            c.errors,
            c.skipped,
            report.duration_ms as f64 / 1000.0
        );
        if report.attempts.len() > 1 {
            let _ = write!(text, " ({} attempts)", report.attempts.len());
        }
    }
    let failing = report
        .tests
        .iter()
        .filter(|t| t.outcome.is_failure() && !report.flaky_tests.contains(&t.nodeid));
    for test in failing.take(NAMED) {
        let message = test
            .message
            .as_deref()
            .map(|m| format!(": {}", first_line(m)))
            .unwrap_or_default();
        let _ = write!(text, "\nfailed {}{message}", test.nodeid);
    }
    for flaky in report.flaky_tests.iter().take(NAMED) {
        let _ = write!(
            text,
            "\nflaky {flaky} (failed, then passed on the same code)"
        );
    }
    if let Some(test) = &report.timed_out_test {
        let _ = write!(text, "\ntimed out in {test}");
    }
    if let Some(context) = &report.retry_context {
        let _ = write!(text, "\nnext: {}", context.suggestion);
    }
    for note in &verification.notes {
        let _ = write!(text, "\nnote: {note}");
    }
    match &verification.ledger_entry {
        Some(entry) => {
            let _ = write!(text, "\nevidence: ledger record {}", entry.seq);
        }
        None => text.push_str("\nevidence: not recorded"),
    }
    text
}

/// The first line of a message, cut at 200 characters.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or("");
    if line.chars().count() > 200 {
        let cut: String = line.chars().take(200).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}
