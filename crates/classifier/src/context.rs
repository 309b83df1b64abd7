//! The retry context: a bounded, ranked summary an agent can act on.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use warden_taxonomy::{FailureClass, RetryContext, TestOutcome};

use crate::classify::is_collector;
use crate::message;
use crate::observation::{Observation, TreeChange};

/// Builds the retry context for a run classified as `class`.
///
/// `failed` and `flaky` are sorted. Failed ids list broken collectors (whole files) first, as
/// they hide every test inside them; for a flake, the flaky tests. Messages come from the
/// run-level diagnostics and the failures of the tests that matter for the class (for a real
/// failure, messages of merely flaky tests rank last), deduplicated after condensing, ranked by
/// how informative they are, then by how many tests share them, then alphabetically, so the
/// result does not depend on input order.
pub(crate) fn build(
    class: FailureClass,
    obs: &Observation,
    failed: &[String],
    flaky: &[String],
) -> RetryContext {
    let ids: Vec<&String> = if class == FailureClass::TestFlake {
        flaky.iter().collect()
    } else {
        let (collectors, tests): (Vec<&String>, Vec<&String>) =
            failed.iter().partition(|id| is_collector(id));
        collectors.into_iter().chain(tests).collect()
    };
    let failed_tests: Vec<String> = ids
        .iter()
        .take(RetryContext::MAX_FAILED_TESTS)
        .map(|id| (*id).clone())
        .collect();

    // Condensed text -> (best tier, number of occurrences). Tier 0: run-level diagnostics and the
    // failures that decide the class; tier 1: failures of tests shown to be flaky.
    let mut seen: BTreeMap<String, (u8, usize)> = BTreeMap::new();
    let mut note = |text: &str, tier: u8| {
        let short = message::condense(text);
        if short.is_empty() {
            return;
        }
        let entry = seen.entry(short).or_insert((tier, 0));
        entry.0 = entry.0.min(tier);
        entry.1 += 1;
    };
    for diagnostic in &obs.diagnostics {
        note(diagnostic, 0);
    }
    let flaky_class = class == FailureClass::TestFlake;
    for test in obs.tests.iter().chain(obs.reruns.iter().flatten()) {
        let Some(text) = test.message.as_deref() else {
            continue;
        };
        if !test.outcome.is_failure() {
            continue;
        }
        let tier = if failed.binary_search(&test.nodeid).is_ok() {
            0
        } else if flaky.binary_search(&test.nodeid).is_ok() {
            u8::from(!flaky_class)
        } else {
            continue;
        };
        note(text, tier);
    }
    let mut ranked: Vec<(u8, u8, Reverse<usize>, String)> = seen
        .into_iter()
        .map(|(text, (tier, count))| (tier, message::rank(&text), Reverse(count), text))
        .collect();
    ranked.sort();
    let error_messages = ranked
        .into_iter()
        .take(RetryContext::MAX_ERROR_MESSAGES)
        .map(|(_, _, _, text)| text)
        .collect();

    let subject = match class {
        FailureClass::TestTimeout => obs.timed_out_test.as_deref(),
        _ => ids.first().map(|id| id.as_str()),
    };
    RetryContext {
        failure_class: class,
        failed_tests,
        error_messages,
        suggestion: truthful(suggestion(class, subject, ids.len()), class, obs, &ids),
        timed_out_test: obs.timed_out_test.clone(),
    }
}

/// Most changed files a suggestion names; the rest are counted.
const NAMED_FILES: usize = 3;

/// The suggestion, corrected for what the tree did during the verification, so it never claims
/// more than the evidence shows: a test that passed only after the run wrote state depends on
/// that state; a pass on a rerun after the code changed was on other code, and a failure on
/// every attempt was not all on one code.
fn truthful(usual: String, class: FailureClass, obs: &Observation, ids: &[&String]) -> String {
    let passed_on_a_rerun = |id: &str| {
        obs.reruns
            .iter()
            .flatten()
            .any(|t| t.nodeid == id && t.outcome == TestOutcome::Passed)
    };
    let tests = |ids: &[&String]| match ids {
        [] => "A test".to_owned(),
        [one] => format!("`{one}`"),
        [first, rest @ ..] => format!("`{first}` (and {} more)", rest.len()),
    };
    match (&obs.tree, class) {
        (TreeChange::StateWritten(files), FailureClass::TestFlake) => {
            let recovered: Vec<&String> = ids
                .iter()
                .copied()
                .filter(|id| passed_on_a_rerun(id))
                .collect();
            if recovered.is_empty() {
                return usual;
            }
            let files = named(files);
            format!(
                "{} failed, then passed on a rerun after the run wrote {files}, and no code or \
                 configuration changed: it depends on state it writes: {files}. Make the test set \
                 up and clean up its own state (pytest's `tmp_path`, a fixture) instead of \
                 changing the code under test.",
                tests(&recovered)
            )
        }
        (TreeChange::CodeChanged(_) | TreeChange::Unknown, FailureClass::TestFailure) => {
            let changed = match &obs.tree {
                TreeChange::CodeChanged(files) => format!(
                    "the code changed during the verification ({})",
                    named(files)
                ),
                _ => "the tree could not be checked again after the reruns".to_owned(),
            };
            let recovered: Vec<&String> = ids
                .iter()
                .copied()
                .filter(|id| passed_on_a_rerun(id))
                .collect();
            if recovered.is_empty() {
                format!(
                    "{} failed on every attempt, but {changed}, so the attempts did not all run \
                     the same code: verify again on the code as it is now, and fix what still \
                     fails.",
                    tests(ids)
                )
            } else {
                format!(
                    "{} failed on the first attempt and passed on a rerun, but {changed}: that \
                     pass was on other code, so it is not a flake. Verify again on the code as it \
                     is now.",
                    tests(&recovered)
                )
            }
        }
        _ => usual,
    }
}

/// Up to [`NAMED_FILES`] paths, and how many more.
fn named(files: &[String]) -> String {
    let shown: Vec<&str> = files.iter().take(NAMED_FILES).map(String::as_str).collect();
    let mut text = shown.join(", ");
    if files.len() > NAMED_FILES {
        text.push_str(&format!(" and {} more", files.len() - NAMED_FILES));
    }
    if text.is_empty() {
        text.push_str("files outside the code");
    }
    text
}

/// One actionable sentence per class, naming the test or file to look at when there is one.
pub(crate) fn suggestion(class: FailureClass, subject: Option<&str>, count: usize) -> String {
    let named = |fallback: &str| match subject {
        Some(id) if count > 1 => format!("`{id}` (and {} more)", count - 1),
        Some(id) => format!("`{id}`"),
        None => fallback.to_owned(),
    };
    match class {
        FailureClass::PolicyDenied => {
            "Do not repeat this request: ask only for targets inside the \
             policy's allowed scope (see the decision's reason), or ask a person to change the \
             policy."
                .to_owned()
        }
        FailureClass::BudgetExhausted => "The mission's test-time budget is spent: stop running \
             tests, report what you verified so far, and ask for a larger budget or a new \
             mission."
            .to_owned(),
        FailureClass::Infrastructure => "pytest could not be started: make sure the configured \
             Python interpreter exists and has pytest installed (`python -m pip install pytest`), \
             then rerun."
            .to_owned(),
        FailureClass::TestTimeout => format!(
            "{} did not finish before the deadline: look for an infinite loop, a blocking wait or \
             a network call, bound or remove it, then rerun that test alone.",
            match subject {
                Some(id) => format!("`{id}`"),
                None => "The run".to_owned(),
            }
        ),
        FailureClass::SyntaxError => format!(
            "Fix the syntax error in {} at the line the message shows, then rerun.",
            named("the file the message names")
        ),
        FailureClass::CollectionError => format!(
            "{} cannot be imported: fix the missing module, wrong import or module-level \
             exception the message shows, then rerun.",
            named("A test module")
        ),
        FailureClass::UsageError => "pytest rejected its configuration: fix the conftest.py or \
             pytest configuration error the message shows (or drop the offending argument), then \
             rerun."
            .to_owned(),
        FailureClass::InternalError => "pytest crashed internally: check the plugins, conftest \
             hooks and pytest version involved in the error shown, then rerun."
            .to_owned(),
        FailureClass::Interrupted => "The run stopped before it finished: rerun it, and if it \
             stops again look for a test or plugin that calls `pytest.exit`, raises \
             KeyboardInterrupt or kills processes."
            .to_owned(),
        FailureClass::NoTests => "No tests were collected: check that the target exists and \
             that its files and functions follow pytest's naming (`test_*.py`, `def test_*`), \
             then rerun."
            .to_owned(),
        FailureClass::TestFailure => format!(
            "{} failed on every attempt on this code: fix the code (or the test, if its \
             expectation is wrong) so the failure shown no longer occurs, then rerun the failing \
             tests.",
            named("A test")
        ),
        FailureClass::TestFlake => format!(
            "{} both passed and failed on the same code: make the test deterministic (fixed \
             seeds, no timing, ordering or shared-state dependence) instead of changing the code \
             under test.",
            named("A test")
        ),
    }
}
