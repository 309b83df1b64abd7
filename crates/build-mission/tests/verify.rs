//! `Mission::verify` end to end: the real `PytestRunner` running `python -m pytest` on fixture
//! projects (`tests/fixtures/`) copied into temporary roots, one test per class of result.
// Helpers here unwrap like the tests do; this marks the whole file as test code for clippy.
#![cfg(test)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use warden_build_mission::{
    ChainReport, Ledger, Mission, Verification, VerifyRequest, ledger::DEFAULT_LEDGER_PATH,
};
use warden_classifier::HistoryRun;
use warden_e2e::{Fixture, python_with_pytest};
use warden_executor::PytestRunner;
use warden_governance_api::{Policy, Root};
use warden_taxonomy::{FailureClass, RunStatus, TestOutcome, VerifyReport};

/// A fixture project copied into a temporary root, with its mission.
struct Project {
    fixture: Fixture,
    root: Root,
}

impl Project {
    fn new(fixture: &str) -> Project {
        let fixture = Fixture::named(fixture);
        let root = Root::new(fixture.root()).unwrap();
        Project { fixture, root }
    }

    fn path(&self) -> &Path {
        self.fixture.root()
    }

    fn ledger(&self) -> Ledger {
        Ledger::new(self.path().join(DEFAULT_LEDGER_PATH))
    }

    /// A mission under `policy` running pytest with the test interpreter.
    fn mission(&self, policy: Policy) -> Mission {
        self.mission_with_python(policy, &python_with_pytest().display().to_string())
    }

    fn mission_with_python(&self, policy: Policy, python: &str) -> Mission {
        Mission::new(self.root.clone(), policy)
            .with_runner(Arc::new(PytestRunner::new().with_python(python)))
    }
}

/// The built-in rule for `runtime/tests` with these `[limits]` lines.
fn policy(limits: &str) -> Policy {
    Policy::from_toml_str(&warden_e2e::runtime_tests_policy(limits)).unwrap()
}

async fn verify(mission: &mut Mission, target: &str) -> Verification {
    mission
        .verify(&VerifyRequest::new(target), std::iter::empty())
        .await
        .unwrap()
}

fn class(v: &Verification) -> Option<FailureClass> {
    v.report.failure_class
}

/// The report as the contract's JSON, with every key present.
fn assert_contract_shape(v: &Verification) {
    let json = serde_json::to_value(&v.report).unwrap();
    for key in VerifyReport::KEYS {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert_eq!(json["schema_version"], 1);
}

#[tokio::test]
async fn a_passing_run_passes_once_and_is_recorded() {
    let p = Project::new("passing");
    let v = verify(&mut p.mission(Policy::builtin()), "runtime/tests").await;
    assert_contract_shape(&v);
    let r = &v.report;
    assert_eq!(r.status, RunStatus::Passed, "{r:#?}");
    assert_eq!(class(&v), None);
    assert_eq!(v.exit_code(), 0);
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.counts.failures(), 0);
    assert!(r.counts.passed > 0);
    assert_eq!(r.counts.passed, r.tests.len() as u64);
    assert!(r.retry_context.is_none());
    assert_eq!(r.fingerprint.as_ref().map(String::len), Some(64));
    assert!(r.stdout.text.contains("passed"), "{}", r.stdout.text);
    assert!(r.duration_ms >= r.attempts[0].duration_ms);

    let ledger = p.ledger();
    assert_eq!(
        ledger.verify().unwrap(),
        ChainReport::Intact {
            records: 1,
            head: v.ledger_entry.as_ref().map(|e| e.hash.clone()),
        }
    );
}

#[tokio::test]
async fn a_test_failing_on_every_attempt_is_a_failure_with_its_retry_context() {
    let p = Project::new("failing");
    let v = verify(&mut p.mission(Policy::builtin()), "runtime/tests").await;
    assert_contract_shape(&v);
    let r = &v.report;
    let wrong = "runtime/tests/test_math.py::test_wrong_answer";
    assert_eq!(class(&v), Some(FailureClass::TestFailure), "{r:#?}");
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(v.exit_code(), 1);
    // The first run, then two reruns (the default retries) of the failing test alone.
    assert_eq!(r.attempts.len(), 3);
    assert_eq!((r.counts.passed, r.counts.failed), (1, 1));
    for rerun in &v.attempts[1..] {
        assert_eq!(rerun.counts.failed, 1);
        assert_eq!(rerun.counts.passed, 0, "only the failed test is rerun");
        assert_eq!(rerun.tests[0].nodeid, wrong);
    }
    let context = r.retry_context.as_ref().unwrap();
    assert_eq!(context.failed_tests, [wrong]);
    assert!(
        context
            .error_messages
            .iter()
            .any(|m| m.contains("the answer is wrong")),
        "{context:?}"
    );
    assert!(r.flaky_tests.is_empty());
}

#[tokio::test]
async fn a_test_that_fails_then_passes_on_rerun_is_a_flake() {
    let p = Project::new("flaky");
    let state = tempfile::tempdir().unwrap();
    p.fixture.write(
        "runtime/tests/state_dir.txt",
        &state.path().display().to_string(),
    );
    let v = verify(&mut p.mission(Policy::builtin()), "runtime/tests").await;
    assert_contract_shape(&v);
    let r = &v.report;
    let flaky = "runtime/tests/test_flaky.py::test_fails_first_time";
    assert_eq!(class(&v), Some(FailureClass::TestFlake), "{r:#?}");
    assert_eq!(r.status, RunStatus::Passed);
    assert_eq!(v.exit_code(), 0);
    assert_eq!(r.flaky_tests, [flaky]);
    assert_eq!(r.attempts.len(), 2, "one rerun was enough");
    assert_eq!(r.counts.failed, 1, "counts are the first attempt's");
    assert_eq!(v.attempts[1].counts.passed, 1);
    assert_eq!(v.attempts[1].tests.len(), 1);
    let context = r.retry_context.as_ref().unwrap();
    assert_eq!(context.failure_class, FailureClass::TestFlake);
    assert_eq!(context.failed_tests, [flaky]);
    assert!(context.suggestion.contains("deterministic"));
    assert!(
        r.fingerprint.is_some(),
        "the state is kept outside the tree"
    );
}

#[tokio::test]
async fn pass_then_edit_then_fail_is_a_regression_not_a_flake() {
    let p = Project::new("regression");
    let mut mission = p.mission(Policy::builtin());
    let before = verify(&mut mission, "runtime/tests").await;
    assert_eq!(before.report.status, RunStatus::Passed);

    p.fixture.write(
        "src/greeting.py",
        "def greet(name):\n    return f\"Hi, {name}!\"\n",
    );
    // The naive rule ("passed before, fails now") would call this a flake.
    let history = [HistoryRun::from_report(&before.report)];
    let after = mission
        .verify(&VerifyRequest::new("runtime/tests"), history)
        .await
        .unwrap();
    let r = &after.report;
    assert_eq!(class(&after), Some(FailureClass::TestFailure), "{r:#?}");
    assert_eq!(after.exit_code(), 1);
    assert!(r.flaky_tests.is_empty());
    assert_ne!(r.fingerprint, before.report.fingerprint);
    assert!(r.fingerprint.is_some());
    assert_eq!(
        r.retry_context.as_ref().unwrap().failed_tests,
        ["runtime/tests/test_greeting.py::test_greets_by_name"]
    );
    // Same with the ledger itself as the history.
    let again = mission
        .verify(
            &VerifyRequest::new("runtime/tests"),
            p.ledger().lazy_history(),
        )
        .await
        .unwrap();
    assert_eq!(class(&again), Some(FailureClass::TestFailure));
}

#[tokio::test]
async fn a_failure_that_passed_before_on_the_same_tree_is_a_flake_by_history() {
    let p = Project::new("flaky");
    let state = tempfile::tempdir().unwrap();
    p.fixture.write(
        "runtime/tests/state_dir.txt",
        &state.path().display().to_string(),
    );
    let target = "runtime/tests/test_flaky.py::test_follows_switch";
    let mut mission = p.mission(Policy::builtin());
    let passed = verify(&mut mission, target).await;
    assert_eq!(passed.report.status, RunStatus::Passed);

    std::fs::write(state.path().join("switch"), "fail").unwrap();
    let failed = verify(&mut mission, target).await;
    assert_eq!(class(&failed), Some(FailureClass::TestFailure));
    assert_eq!(failed.report.attempts.len(), 3, "failed on every attempt");
    assert_eq!(failed.report.fingerprint, passed.report.fingerprint);

    // The ledger remembers that it passed on this very tree.
    let ledger = p.ledger();
    let history = ledger.lazy_history();
    let v = mission
        .verify(&VerifyRequest::new(target), history.clone())
        .await
        .unwrap();
    assert!(history.take_error().is_none());
    assert_eq!(class(&v), Some(FailureClass::TestFlake), "{:#?}", v.report);
    assert_eq!(v.report.flaky_tests, [target]);
    assert_eq!(v.report.status, RunStatus::Passed);
    assert!(
        v.attempts
            .iter()
            .all(|a| a.tests.iter().all(|t| t.outcome == TestOutcome::Failed)),
        "it failed on every attempt this time"
    );
}

#[tokio::test]
async fn a_hang_is_stopped_at_the_deadline_and_not_rerun() {
    let p = Project::new("hang");
    let mut mission = p.mission(policy("timeout_secs = 2\ngrace_secs = 1"));
    let v = verify(&mut mission, "runtime/tests").await;
    assert_contract_shape(&v);
    let r = &v.report;
    assert_eq!(class(&v), Some(FailureClass::TestTimeout), "{r:#?}");
    assert_eq!(r.status, RunStatus::Timeout);
    assert_eq!(v.exit_code(), 4);
    assert_eq!(r.attempts.len(), 1);
    let hung = "runtime/tests/test_hang.py::test_hangs";
    assert_eq!(r.timed_out_test.as_deref(), Some(hung));
    let context = r.retry_context.as_ref().unwrap();
    assert_eq!(context.timed_out_test.as_deref(), Some(hung));
    assert!(context.suggestion.contains(hung), "{}", context.suggestion);
    assert!(v.attempts[0].duration() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_spent_budget_refuses_the_next_run_of_the_same_mission_before_it_starts() {
    let p = Project::new("hang");
    // A hang that ignores SIGTERM takes the 2 s deadline plus the 1 s grace period: the whole
    // 3 s budget.
    let limits = "timeout_secs = 2\ngrace_secs = 1\nbudget_secs = 3";
    let mut first = p
        .mission(policy(limits))
        .with_mission_id(Some("budget-e2e".into()));
    let v = verify(&mut first, "runtime/tests").await;
    assert_eq!(class(&v), Some(FailureClass::TestTimeout));

    // Another process, the same mission: the ledger says the budget is spent.
    let mut second = p
        .mission(policy(limits))
        .with_mission_id(Some("budget-e2e".into()));
    let v = verify(&mut second, "runtime/tests").await;
    assert_contract_shape(&v);
    let r = &v.report;
    assert_eq!(class(&v), Some(FailureClass::BudgetExhausted), "{r:#?}");
    assert_eq!(r.status, RunStatus::Denied);
    assert_eq!(v.exit_code(), 3);
    assert!(
        v.attempts.is_empty() && r.attempts.is_empty(),
        "nothing ran"
    );
    assert!(second.budget().spent() >= Duration::from_secs(3));

    let entries: Vec<_> = p.ledger().entries().unwrap().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|e| e.mission.as_deref() == Some("budget-e2e"))
    );
    assert!(p.ledger().mission_spent("budget-e2e").unwrap() >= Duration::from_secs(3));
}

#[tokio::test]
async fn collection_level_failures_are_named_and_not_rerun() {
    for (fixture, expected) in [
        ("syntax_error", FailureClass::SyntaxError),
        ("import_error", FailureClass::CollectionError),
        ("broken_conftest", FailureClass::UsageError),
        ("conftest_syntax_error", FailureClass::SyntaxError),
        ("empty", FailureClass::NoTests),
    ] {
        let p = Project::new(fixture);
        let v = verify(&mut p.mission(Policy::builtin()), "runtime/tests").await;
        assert_contract_shape(&v);
        assert_eq!(class(&v), Some(expected), "{fixture}: {:#?}", v.report);
        assert_eq!(v.report.status, RunStatus::Failed, "{fixture}");
        assert_eq!(v.exit_code(), 1, "{fixture}");
        assert_eq!(v.report.attempts.len(), 1, "{fixture}: no reruns");
        let context = v.report.retry_context.as_ref().unwrap();
        assert!(!context.error_messages.is_empty(), "{fixture}: {context:?}");
    }
}

#[tokio::test]
async fn an_out_of_scope_request_is_denied_and_recorded_and_nothing_runs() {
    let p = Project::new("passing");
    // An interpreter that does not exist: had anything run, it would be an infrastructure error.
    let mut mission = p.mission_with_python(Policy::builtin(), "/nonexistent/python3");
    let v = verify(&mut mission, "runtime/tests/../../..").await;
    assert_contract_shape(&v);
    let r = &v.report;
    assert_eq!(class(&v), Some(FailureClass::PolicyDenied), "{r:#?}");
    assert_eq!(r.status, RunStatus::Denied);
    assert_eq!(v.exit_code(), 3);
    assert!(!r.decision.allowed);
    assert_eq!(r.resolved_target, None);
    assert!(r.attempts.is_empty());
    assert_eq!(
        r.stdout.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(!r.retry_context.as_ref().unwrap().suggestion.is_empty());
    assert_eq!(p.ledger().entries().unwrap().count(), 1);
}

#[tokio::test]
async fn a_missing_interpreter_is_an_infrastructure_error() {
    let p = Project::new("passing");
    let mut mission = p.mission_with_python(Policy::builtin(), "/nonexistent/python3");
    let v = verify(&mut mission, "runtime/tests").await;
    assert_contract_shape(&v);
    let r = &v.report;
    assert_eq!(class(&v), Some(FailureClass::Infrastructure), "{r:#?}");
    assert_eq!(r.status, RunStatus::Error);
    assert_eq!(v.exit_code(), 5);
    assert_eq!(r.attempts.len(), 1);
    let context = r.retry_context.as_ref().unwrap();
    assert!(
        context.suggestion.contains("pytest"),
        "{}",
        context.suggestion
    );
}
