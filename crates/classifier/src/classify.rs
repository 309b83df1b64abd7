//! From an [`Observation`] and history to a [`Classification`].

use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use warden_taxonomy::{FailureClass, RetryContext, RunStatus, TestOutcome, VerifyReport};

use crate::context;
use crate::message;
use crate::observation::{CollectionFault, Gate, HistoryRun, Observation};

/// The classifier's verdict on one verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// Why the run did not simply pass; `None` when it passed cleanly.
    pub failure_class: Option<FailureClass>,
    /// Failing tests shown to have also passed on the same code (by a rerun or by history with
    /// an equal fingerprint), sorted.
    pub flaky_tests: Vec<String>,
    /// Failing first-attempt entries (tests and broken collectors) not shown to be flaky,
    /// sorted.
    pub failed_tests: Vec<String>,
    /// What the agent should do next; `None` when the run passed cleanly.
    pub retry_context: Option<RetryContext>,
}

impl Classification {
    /// The overall status the verification reports.
    pub fn status(&self) -> RunStatus {
        self.failure_class
            .map_or(RunStatus::Passed, FailureClass::status)
    }
}

/// Classifies one verification.
///
/// `history` is consumed as a stream, one run at a time, and only while it can still change the
/// verdict: it is not read at all unless the verdict comes down to flake versus failure, and
/// reading stops once every failing test is shown to be flaky. Memory is bounded by the number
/// of currently failing tests, time is linear in the history's length, and the result depends
/// only on the inputs as sets (the order of tests, reruns and history runs does not matter).
///
/// Priority, strongest first: policy denial and budget exhaustion, infrastructure, timeout,
/// collection-level faults (syntax error, collection error, usage error, internal error,
/// interrupted), no tests, then flake versus failure.
pub fn classify<H>(observation: &Observation, history: H) -> Classification
where
    H: IntoIterator,
    H::Item: Borrow<HistoryRun>,
{
    let obs = observation;
    let early = match obs.gate {
        Gate::PolicyDenied => Some(FailureClass::PolicyDenied),
        Gate::BudgetExhausted => Some(FailureClass::BudgetExhausted),
        Gate::Allowed => None,
    }
    .or_else(|| obs.infrastructure.then_some(FailureClass::Infrastructure))
    .or_else(|| obs.timed_out.then_some(FailureClass::TestTimeout))
    .or_else(|| run_fault(obs).map(CollectionFault::class))
    .or_else(|| no_tests(obs).then_some(FailureClass::NoTests));

    // Node id -> shown flaky. Keys borrow from the observation, so memory is bounded by the
    // number of failing entries whatever the history's length.
    let mut failing: BTreeMap<&str, bool> = obs
        .tests
        .iter()
        .filter(|t| t.outcome.is_failure())
        .map(|t| (t.nodeid.as_str(), false))
        .collect();

    let class = match early {
        Some(class) => Some(class),
        None => {
            if failing.is_empty() {
                // pytest said tests failed but named none: never report that as a pass.
                (obs.exit_code == Some(1)).then_some(FailureClass::TestFailure)
            } else {
                mark_flaky(obs, history, &mut failing);
                if failing.values().all(|&flaky| flaky) {
                    Some(FailureClass::TestFlake)
                } else {
                    Some(FailureClass::TestFailure)
                }
            }
        }
    };

    let flaky_tests: Vec<String> = failing
        .iter()
        .filter(|(_, flaky)| **flaky)
        .map(|(id, _)| (*id).to_owned())
        .collect();
    let failed_tests: Vec<String> = failing
        .iter()
        .filter(|(_, flaky)| !**flaky)
        .map(|(id, _)| (*id).to_owned())
        .collect();
    let retry_context = class.map(|class| context::build(class, obs, &failed_tests, &flaky_tests));
    Classification {
        failure_class: class,
        flaky_tests,
        failed_tests,
        retry_context,
    }
}

/// Classifies a stored `verify` result again, with history (`warden classify`).
///
/// Equivalent to [`classify`] on [`Observation::from_report`].
pub fn classify_report<H>(report: &VerifyReport, history: H) -> Classification
where
    H: IntoIterator,
    H::Item: Borrow<HistoryRun>,
{
    classify(&Observation::from_report(report), history)
}

/// Marks failing tests that also passed on the same code: in this verification (first attempt
/// or reruns), or in a history run whose fingerprint equals the current one.
fn mark_flaky<H>(obs: &Observation, history: H, failing: &mut BTreeMap<&str, bool>)
where
    H: IntoIterator,
    H::Item: Borrow<HistoryRun>,
{
    // Reruns on other code (or on a tree that could not be checked) prove nothing.
    let reruns: &[Vec<_>] = if obs.tree.same_code() {
        &obs.reruns
    } else {
        &[]
    };
    let passes = obs
        .tests
        .iter()
        .chain(reruns.iter().flatten())
        .filter(|t| t.outcome == TestOutcome::Passed);
    for test in passes {
        if let Some(flaky) = failing.get_mut(test.nodeid.as_str()) {
            *flaky = true;
        }
    }
    let mut unproven = failing.values().filter(|&&flaky| !flaky).count();
    // Without a fingerprint nothing ties an earlier pass to this code.
    let Some(current) = obs.fingerprint.as_deref() else {
        return;
    };
    if unproven == 0 {
        return;
    }
    for run in history {
        let run = run.borrow();
        if run.fingerprint.as_deref() != Some(current) {
            continue;
        }
        for (nodeid, outcome) in &run.outcomes {
            if *outcome != TestOutcome::Passed {
                continue;
            }
            if let Some(flaky) = failing.get_mut(nodeid.as_str())
                && !*flaky
            {
                *flaky = true;
                unproven -= 1;
            }
        }
        if unproven == 0 {
            break;
        }
    }
}

/// The strongest run-level fault: the executor's own, or one derived from the exit code, the
/// collection-error entries and the run-level diagnostics.
pub(crate) fn run_fault(obs: &Observation) -> Option<CollectionFault> {
    let from_entries = obs
        .tests
        .iter()
        .filter(|t| t.outcome == TestOutcome::Error && is_collector(&t.nodeid))
        .map(|t| {
            t.message
                .as_deref()
                .and_then(message::fault_named)
                .unwrap_or(CollectionFault::CollectionError)
        });
    let from_exit = match obs.exit_code {
        Some(0 | 1 | 5) => None,
        Some(2) => Some(CollectionFault::Interrupted),
        Some(3) => Some(CollectionFault::InternalError),
        Some(4) => Some(CollectionFault::UsageError),
        // Killed by a signal that was not Warden's deadline (that is `timed_out`).
        None => Some(CollectionFault::Interrupted),
        // pytest never exits with another code: something else ended the process.
        Some(_) => Some(CollectionFault::InternalError),
    };
    // Run-level text explains a collection-phase exit; after exit 0 or 1 it would only be noise.
    let from_diagnostics = matches!(obs.exit_code, Some(2 | 4))
        .then(|| {
            obs.diagnostics
                .iter()
                .filter_map(|d| message::fault_named(d))
        })
        .into_iter()
        .flatten();
    obs.fault
        .into_iter()
        .chain(from_entries)
        .chain(from_exit)
        .chain(from_diagnostics)
        .min()
}

/// Whether a node id names a collector (a file or directory) rather than a test.
pub(crate) fn is_collector(nodeid: &str) -> bool {
    !nodeid.contains("::")
}

/// pytest found nothing to run (exit 5), or claims success without a single result (e.g.
/// `--collect-only`), which must not pass as a green run.
fn no_tests(obs: &Observation) -> bool {
    match obs.exit_code {
        Some(5) => true,
        Some(0) => obs.tests.is_empty(),
        _ => false,
    }
}
