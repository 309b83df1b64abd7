//! From evidence to the classifier's facts, and from a classification to the contract's report.

use sha2::{Digest, Sha256};
use warden_classifier::{Classification, CollectionFault, Gate, Observation, TreeChange};
use warden_executor::{RunEvidence, RunOutcome};
use warden_taxonomy::{CapturedStream, DecisionRecord, InterpreterChoice, RunStatus, VerifyReport};

/// The contract's `warden verify` exit code for a report's status: 0 passed (flakes included),
/// 1 failed, 3 denied by policy or budget, 4 timeout, 5 infrastructure. (Exit 2, a usage or
/// configuration error, is the command line's and never comes from a report.)
pub fn exit_code_for(report: &VerifyReport) -> i32 {
    match report.status {
        RunStatus::Passed => 0,
        RunStatus::Failed => 1,
        RunStatus::Denied => 3,
        RunStatus::Timeout => 4,
        RunStatus::Error => 5,
    }
}

/// The classifier's facts about a verification whose first attempt is `first`.
///
/// `reruns` are the rerun attempts; `tree` says whether they ran the same code as the first.
pub(crate) fn observation(
    first: &RunEvidence,
    reruns: &[RunEvidence],
    fingerprint: Option<String>,
    tree: TreeChange,
) -> Observation {
    Observation {
        gate: Gate::Allowed,
        infrastructure: first.outcome == RunOutcome::Infrastructure,
        timed_out: first.timed_out,
        timed_out_test: first.timed_out_test.clone(),
        exit_code: first.exit_code,
        tests: first.tests.clone(),
        fault: fault(first),
        diagnostics: first.diagnostics.clone(),
        reruns: reruns.iter().map(|r| r.tests.clone()).collect(),
        fingerprint,
        tree,
    }
}

/// The strongest run-level fault the executor saw itself. The classifier derives more from the
/// exit code, the collector entries and the diagnostics, and keeps the strongest of all.
fn fault(evidence: &RunEvidence) -> Option<CollectionFault> {
    let from_files = evidence.collection_errors.iter().map(|e| {
        if e.syntax_error {
            // A conftest that does not parse is a syntax error too: the fix is the same.
            CollectionFault::SyntaxError
        } else if e.conftest {
            CollectionFault::UsageError
        } else {
            CollectionFault::CollectionError
        }
    });
    let from_outcome = match evidence.outcome {
        RunOutcome::CollectionFailed => Some(CollectionFault::CollectionError),
        RunOutcome::UsageError => Some(CollectionFault::UsageError),
        RunOutcome::InternalError => Some(CollectionFault::InternalError),
        RunOutcome::Interrupted => Some(CollectionFault::Interrupted),
        // Killed by a signal that was not Warden's, or an exit code pytest never uses (which
        // could otherwise pass for a test failure or a pass).
        RunOutcome::Crashed if evidence.signal.is_some() || evidence.exit_code.is_none() => {
            Some(CollectionFault::Interrupted)
        }
        RunOutcome::Crashed => Some(CollectionFault::InternalError),
        RunOutcome::Passed
        | RunOutcome::TestsFailed
        | RunOutcome::NoTests
        | RunOutcome::TimedOut
        | RunOutcome::Infrastructure => None,
    };
    from_files.chain(from_outcome).min()
}

/// What the report says about a verification, beyond the classification.
pub(crate) struct Facts<'a> {
    pub(crate) target: &'a str,
    pub(crate) decision: DecisionRecord,
    pub(crate) resolved_target: Option<String>,
    pub(crate) fingerprint: Option<String>,
    pub(crate) duration_ms: u64,
    /// The interpreter a run used; `None` when nothing ran.
    pub(crate) interpreter: Option<InterpreterChoice>,
}

/// The report of a verification that ran: counts, tests and streams of the first attempt, every
/// attempt's summary, and the classification.
pub(crate) fn ran(
    facts: Facts<'_>,
    attempts: &[RunEvidence],
    classification: Classification,
) -> VerifyReport {
    let first = attempts.first();
    VerifyReport {
        schema_version: VerifyReport::SCHEMA_VERSION,
        status: classification.status(),
        failure_class: classification.failure_class,
        decision: facts.decision,
        target: facts.target.to_owned(),
        resolved_target: facts.resolved_target,
        fingerprint: facts.fingerprint,
        exit_code: first.and_then(|f| f.exit_code),
        duration_ms: facts.duration_ms,
        counts: first.map(|f| f.counts).unwrap_or_default(),
        tests: first.map(|f| f.tests.clone()).unwrap_or_default(),
        timed_out_test: first.and_then(|f| f.timed_out_test.clone()),
        flaky_tests: classification.flaky_tests,
        stdout: first.map_or_else(empty_stream, |f| f.stdout.clone()),
        stderr: first.map_or_else(empty_stream, |f| f.stderr.clone()),
        attempts: attempts.iter().map(RunEvidence::attempt).collect(),
        retry_context: classification.retry_context,
        interpreter: facts.interpreter,
        sandbox: first.and_then(|f| f.sandbox.as_ref()).map(sandbox_report),
    }
}

/// The report of a verification refused before anything ran (policy or budget): every key
/// present, counts zero, empty streams, no attempts.
pub(crate) fn refused(facts: Facts<'_>, classification: Classification) -> VerifyReport {
    ran(facts, &[], classification)
}

/// The report's form of what confined a run.
fn sandbox_report(status: &warden_executor::SandboxStatus) -> warden_taxonomy::SandboxReport {
    warden_taxonomy::SandboxReport {
        mode: serde_name(&status.mode),
        enforced: status.enforced,
        landlock_abi: status.landlock_abi,
        scopes: status.scopes.clone(),
        namespaces: status.namespaces.clone(),
        network: serde_name(&status.network),
        memory_bytes: status.limits.memory_bytes,
        processes: status.limits.processes,
        file_size_bytes: status.limits.file_size_bytes,
        read_only: status
            .read_only
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        missing: status.missing.clone(),
        removed: status
            .removed
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    }
}

/// The serialised name of a unit enum variant (`best-effort`, `loopback`).
fn serde_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A stream nothing was written to, hashed like any other.
pub(crate) fn empty_stream() -> CapturedStream {
    CapturedStream {
        text: String::new(),
        total_bytes: 0,
        truncated: false,
        sha256: hex::encode(Sha256::digest([])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_executor::{CollectionError, ResultsSource};
    use warden_taxonomy::TestCounts;

    fn evidence(outcome: RunOutcome, exit_code: Option<i32>) -> RunEvidence {
        RunEvidence {
            argv: vec![],
            outcome,
            exit_code,
            signal: None,
            duration_ms: 10,
            deadline_ms: 1000,
            timed_out: false,
            timed_out_test: None,
            counts: TestCounts::default(),
            tests: vec![],
            tests_omitted: 0,
            results_source: ResultsSource::None,
            collection_errors: vec![],
            diagnostics: vec![],
            stdout: empty_stream(),
            stderr: empty_stream(),
            output_complete: true,
            leaked_processes: vec![],
            sandbox: None,
        }
    }

    fn collection_error(syntax_error: bool, conftest: bool) -> CollectionError {
        CollectionError {
            path: Some("runtime/tests/x.py".into()),
            message: "boom".into(),
            syntax_error,
            conftest,
        }
    }

    #[test]
    fn the_empty_stream_hash_is_sha256_of_nothing() {
        assert_eq!(
            empty_stream().sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn faults_follow_the_executor_findings() {
        let mut ev = evidence(RunOutcome::CollectionFailed, Some(2));
        ev.collection_errors = vec![collection_error(false, false)];
        assert_eq!(fault(&ev), Some(CollectionFault::CollectionError));
        ev.collection_errors.push(collection_error(true, false));
        assert_eq!(fault(&ev), Some(CollectionFault::SyntaxError));

        let mut ev = evidence(RunOutcome::UsageError, Some(4));
        ev.collection_errors = vec![collection_error(false, true)];
        assert_eq!(fault(&ev), Some(CollectionFault::UsageError));
        ev.collection_errors = vec![collection_error(true, true)];
        assert_eq!(fault(&ev), Some(CollectionFault::SyntaxError));

        assert_eq!(
            fault(&evidence(RunOutcome::InternalError, Some(3))),
            Some(CollectionFault::InternalError)
        );
        assert_eq!(
            fault(&evidence(RunOutcome::Crashed, Some(1))),
            Some(CollectionFault::InternalError)
        );
        let mut killed = evidence(RunOutcome::Crashed, None);
        killed.signal = Some(9);
        assert_eq!(fault(&killed), Some(CollectionFault::Interrupted));
        for quiet in [
            RunOutcome::Passed,
            RunOutcome::TestsFailed,
            RunOutcome::NoTests,
            RunOutcome::TimedOut,
            RunOutcome::Infrastructure,
        ] {
            assert_eq!(fault(&evidence(quiet, Some(0))), None, "{quiet}");
        }
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        let mut report = refused(
            Facts {
                target: "t",
                decision: DecisionRecord::default(),
                resolved_target: None,
                fingerprint: None,
                duration_ms: 0,
                interpreter: None,
            },
            Classification {
                failure_class: None,
                flaky_tests: vec![],
                failed_tests: vec![],
                retry_context: None,
            },
        );
        for (status, code) in [
            (RunStatus::Passed, 0),
            (RunStatus::Failed, 1),
            (RunStatus::Denied, 3),
            (RunStatus::Timeout, 4),
            (RunStatus::Error, 5),
        ] {
            report.status = status;
            assert_eq!(exit_code_for(&report), code, "{status}");
        }
    }
}
