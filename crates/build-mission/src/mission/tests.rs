//! The orchestration logic against a scripted runner (no Python here; the end-to-end tests in
//! `tests/verify.rs` run the real one).

use std::sync::Mutex;

use async_trait::async_trait;
use tempfile::TempDir;
use warden_executor::{CollectionError, ResultsSource};
use warden_taxonomy::{FailureClass, RunStatus, TestCounts, TestResult};

use super::*;

/// What a scripted run returns, given the call's index (0 for the first) and its permission.
type Script = dyn Fn(usize, &Authorized) -> RunEvidence + Send + Sync;

/// A runner that records each call's targets and deadline and answers from a script.
struct Scripted {
    script: Box<Script>,
    calls: Mutex<Vec<(Vec<String>, Duration)>>,
}

impl Scripted {
    fn new(
        script: impl Fn(usize, &Authorized) -> RunEvidence + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Scripted {
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<(Vec<String>, Duration)> {
        self.calls.lock().unwrap().clone()
    }

    fn targets(&self) -> Vec<Vec<String>> {
        self.calls().into_iter().map(|(t, _)| t).collect()
    }

    fn deadlines(&self) -> Vec<Duration> {
        self.calls().into_iter().map(|(_, d)| d).collect()
    }
}

#[async_trait]
impl Runner for Scripted {
    async fn run(&self, auth: &Authorized, deadline: Duration) -> RunEvidence {
        let index = {
            let mut calls = self.calls.lock().unwrap();
            calls.push((auth.targets().to_vec(), deadline));
            calls.len() - 1
        };
        (self.script)(index, auth)
    }
}

const A: &str = "runtime/tests/test_a.py::test_ok";
const B: &str = "runtime/tests/test_a.py::test_b";
const C: &str = "runtime/tests/test_a.py::test_c";

/// Evidence of a run with these results, taking `secs` seconds.
fn evidence(results: &[(&str, TestOutcome)], secs: f64) -> RunEvidence {
    let tests: Vec<TestResult> = results
        .iter()
        .map(|(nodeid, outcome)| TestResult {
            nodeid: (*nodeid).to_owned(),
            outcome: *outcome,
            message: outcome
                .is_failure()
                .then(|| format!("AssertionError: {nodeid} is wrong")),
            duration_ms: Some(1),
            subtests: Vec::new(),
        })
        .collect();
    let counts = TestCounts::of(&tests);
    let failed = counts.failures() > 0;
    RunEvidence {
        argv: vec!["python".into(), "-m".into(), "pytest".into()],
        outcome: if failed {
            RunOutcome::TestsFailed
        } else {
            RunOutcome::Passed
        },
        exit_code: Some(i32::from(failed)),
        signal: None,
        duration_ms: (secs * 1000.0) as u64,
        deadline_ms: 0,
        timed_out: false,
        timed_out_test: None,
        counts,
        tests,
        tests_omitted: 0,
        results_source: ResultsSource::Records,
        collection_errors: vec![],
        diagnostics: vec![],
        stdout: report::empty_stream(),
        stderr: report::empty_stream(),
        output_complete: true,
        leaked_processes: vec![],
        sandbox: None,
    }
}

use TestOutcome::{Failed, Passed};

/// A root with a test file (so node ids resolve and the tree has something to fingerprint).
fn project() -> (TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runtime/tests")).unwrap();
    std::fs::write(
        dir.path().join("runtime/tests/test_a.py"),
        "def test_ok():\n    pass\n",
    )
    .unwrap();
    // The file a scripted collection error names: results must name files that exist.
    std::fs::write(dir.path().join("runtime/tests/test_z.py"), "import nope\n").unwrap();
    let root = Root::new(dir.path()).unwrap();
    (dir, root)
}

/// The built-in rule for `runtime/tests` with these `[limits]` lines.
fn policy(limits: &str) -> Policy {
    Policy::from_toml_str(&warden_e2e::runtime_tests_policy(limits)).unwrap()
}

fn mission(root: &Root, policy: Policy, runner: &Arc<Scripted>) -> Mission {
    Mission::new(root.clone(), policy).with_runner(runner.clone())
}

fn request(target: &str) -> VerifyRequest {
    VerifyRequest::new(target)
}

fn no_history() -> std::iter::Empty<HistoryRun> {
    std::iter::empty()
}

/// `v` must carry a note that `says` accepts.
fn assert_noted(v: &Verification, says: impl Fn(&str) -> bool) {
    assert!(v.notes.iter().any(|n| says(n)), "{:?}", v.notes);
}

/// `m` verifies `target` with the policy's limits and no history.
async fn verify(m: &mut Mission, target: &str) -> Verification {
    m.verify(&request(target), no_history()).await.unwrap()
}

#[tokio::test]
async fn reruns_only_the_failed_ids_and_a_failure_on_every_attempt_is_a_failure() {
    let (_dir, root) = project();
    let runner = Scripted::new(|i, _| match i {
        0 => evidence(&[(A, Passed), (B, Failed), (C, Failed)], 1.0),
        _ => evidence(&[(B, Failed), (C, Failed)], 0.5),
    });
    let mut m = mission(&root, Policy::builtin(), &runner);
    let v = verify(&mut m, "runtime/tests").await;

    let failed = vec![B.to_owned(), C.to_owned()];
    assert_eq!(
        runner.targets(),
        [vec!["runtime/tests".to_owned()], failed.clone(), failed]
    );
    assert_eq!(v.attempts.len(), 3);
    assert_eq!(v.report.attempts.len(), 3);
    assert_eq!(v.report.attempts[1].duration_ms, 500);
    assert_eq!(v.report.status, RunStatus::Failed);
    assert_eq!(v.report.failure_class, Some(FailureClass::TestFailure));
    assert_eq!(v.exit_code(), 1);
    // Counts and tests are the first attempt's.
    assert_eq!(v.report.counts.passed, 1);
    assert_eq!(v.report.counts.failed, 2);
    assert_eq!(v.report.tests.len(), 3);
    assert!(v.report.flaky_tests.is_empty());
    let context = v.report.retry_context.unwrap();
    assert_eq!(context.failed_tests, [B, C]);
    assert!(
        context.suggestion.contains("every attempt"),
        "{}",
        context.suggestion
    );
    assert_eq!(v.report.resolved_target.as_deref(), Some("runtime/tests"));
    assert_eq!(v.report.fingerprint.as_ref().map(String::len), Some(64));
    assert!(v.report.decision.allowed);
    assert_eq!(v.report.decision.matched_rules, ["pytest-runtime-tests"]);
}

#[tokio::test]
async fn a_test_that_passes_on_a_rerun_is_a_flake_and_reruns_stop_there() {
    let (_dir, root) = project();
    let runner = Scripted::new(|i, _| match i {
        0 => evidence(&[(A, Passed), (B, Failed)], 1.0),
        _ => evidence(&[(B, Passed)], 0.5),
    });
    let mut m = mission(&root, Policy::builtin(), &runner);
    let v = verify(&mut m, "runtime/tests").await;
    assert_eq!(runner.calls().len(), 2, "no second rerun once B passed");
    assert_eq!(v.report.status, RunStatus::Passed);
    assert_eq!(v.report.failure_class, Some(FailureClass::TestFlake));
    assert_eq!(v.report.flaky_tests, [B]);
    assert_eq!(v.exit_code(), 0);
    // The first attempt is what the counts describe, failure included.
    assert_eq!(v.report.counts.failed, 1);
    assert_eq!(v.report.exit_code, Some(1));
}

#[tokio::test]
async fn every_first_failure_is_rerun_each_time_until_each_has_passed_once() {
    let (_dir, root) = project();
    let runner = Scripted::new(|i, _| match i {
        0 => evidence(&[(B, Failed), (C, Failed)], 1.0),
        1 => evidence(&[(B, Passed), (C, Failed)], 0.5),
        _ => evidence(&[(B, Failed), (C, Passed)], 0.5),
    });
    let mut m = mission(&root, policy("retries = 5"), &runner);
    let v = verify(&mut m, "runtime/tests").await;
    let both = vec![B.to_owned(), C.to_owned()];
    assert_eq!(runner.targets()[1..], [both.clone(), both]);
    assert_eq!(v.attempts.len(), 3, "stopped once both had passed");
    assert_eq!(v.report.failure_class, Some(FailureClass::TestFlake));
    assert_eq!(v.report.flaky_tests, [B, C]);
}

#[tokio::test]
async fn no_reruns_after_a_timeout_a_collection_error_or_an_infrastructure_failure() {
    let (_dir, root) = project();

    let runner = Scripted::new(|_, _| {
        let mut ev = evidence(&[(A, Passed)], 3.0);
        ev.outcome = RunOutcome::TimedOut;
        ev.timed_out = true;
        ev.exit_code = None;
        ev.signal = Some(15);
        ev.timed_out_test = Some(B.into());
        ev
    });
    let v = verify(
        &mut mission(&root, Policy::builtin(), &runner),
        "runtime/tests",
    )
    .await;
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(v.report.status, RunStatus::Timeout);
    assert_eq!(v.report.failure_class, Some(FailureClass::TestTimeout));
    assert_eq!(v.report.timed_out_test.as_deref(), Some(B));
    assert_eq!(
        v.report
            .retry_context
            .as_ref()
            .unwrap()
            .timed_out_test
            .as_deref(),
        Some(B)
    );
    assert_eq!(v.exit_code(), 4);

    let runner = Scripted::new(|_, _| {
        let mut ev = evidence(
            &[
                (A, Passed),
                (B, Failed),
                ("runtime/tests/test_z.py", TestOutcome::Error),
            ],
            1.0,
        );
        ev.outcome = RunOutcome::CollectionFailed;
        ev.exit_code = Some(2);
        ev.collection_errors = vec![CollectionError {
            path: Some("runtime/tests/test_z.py".into()),
            message: "ModuleNotFoundError: No module named 'nope'".into(),
            syntax_error: false,
            conftest: false,
        }];
        ev
    });
    let v = verify(
        &mut mission(&root, Policy::builtin(), &runner),
        "runtime/tests",
    )
    .await;
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(v.report.failure_class, Some(FailureClass::CollectionError));
    assert_eq!(v.exit_code(), 1);

    let runner = Scripted::new(|_, _| {
        let mut ev = evidence(&[], 0.0);
        ev.outcome = RunOutcome::Infrastructure;
        ev.exit_code = None;
        ev.diagnostics = vec!["`python9` was not found".into()];
        ev
    });
    let v = verify(
        &mut mission(&root, Policy::builtin(), &runner),
        "runtime/tests",
    )
    .await;
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(v.report.status, RunStatus::Error);
    assert_eq!(v.report.failure_class, Some(FailureClass::Infrastructure));
    assert_eq!(v.exit_code(), 5);
}

#[tokio::test]
async fn a_broad_failure_is_not_rerun() {
    let (_dir, root) = project();
    let ids: Vec<String> = (0..=MAX_RERUN_TESTS)
        .map(|i| format!("runtime/tests/test_a.py::test_{i}"))
        .collect();
    let results: Vec<(&str, TestOutcome)> = ids.iter().map(|id| (id.as_str(), Failed)).collect();
    let first = evidence(&results, 1.0);
    let runner = Scripted::new(move |_, _| first.clone());
    let v = verify(
        &mut mission(&root, Policy::builtin(), &runner),
        "runtime/tests",
    )
    .await;
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(v.report.failure_class, Some(FailureClass::TestFailure));
    assert_noted(&v, |n| n.contains("21 tests failed"));
}

#[tokio::test]
async fn results_from_outside_the_target_are_a_policy_violation_and_not_rerun() {
    let (dir, root) = project();
    std::fs::write(
        dir.path().join("runtime/tests/test_other.py"),
        "def test_x():\n    assert 0\n",
    )
    .unwrap();
    // The run names a failing test outside the authorised file: the policy would not allow it
    // (nor its rerun), so the verification is a violation, whatever the tests say.
    let runner =
        Scripted::new(|_, _| evidence(&[("runtime/tests/test_other.py::test_x", Failed)], 1.0));
    let v = verify(
        &mut mission(&root, Policy::builtin(), &runner),
        "runtime/tests/test_a.py",
    )
    .await;
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(v.report.failure_class, Some(FailureClass::PolicyDenied));
    assert_eq!(v.exit_code(), 3);
    assert!(!v.report.decision.allowed);
    assert!(
        v.report
            .decision
            .reason
            .contains("`runtime/tests/test_other.py`"),
        "{}",
        v.report.decision.reason
    );
    assert_noted(&v, |n| n.starts_with("policy violation after the run:"));
}

#[tokio::test]
async fn a_result_whose_file_is_gone_after_the_run_is_a_policy_violation() {
    let (_dir, root) = project();
    // Nothing at `runtime/tests/gone/test_g.py` now: nothing shows it was inside the scope.
    let runner = Scripted::new(|_, _| {
        evidence(
            &[
                (A, Passed),
                ("runtime/tests/gone/test_g.py::test_g", Passed),
            ],
            1.0,
        )
    });
    let v = verify(
        &mut mission(&root, Policy::builtin(), &runner),
        "runtime/tests",
    )
    .await;
    assert_eq!(v.report.failure_class, Some(FailureClass::PolicyDenied));
    assert!(
        v.report.decision.reason.contains("is gone after the run"),
        "{}",
        v.report.decision.reason
    );
}

#[tokio::test]
async fn a_denied_request_runs_nothing_and_is_still_recorded() {
    let (dir, root) = project();
    let runner = Scripted::new(|_, _| unreachable!("a denied request must not run"));
    let mut m = mission(&root, Policy::builtin(), &runner).with_mission_id(Some("m-1".into()));
    let v = verify(&mut m, "src/../../etc").await;
    assert!(runner.calls().is_empty());
    let r = &v.report;
    assert_eq!(r.status, RunStatus::Denied);
    assert_eq!(r.failure_class, Some(FailureClass::PolicyDenied));
    assert_eq!(v.exit_code(), 3);
    assert!(!r.decision.allowed);
    assert!(!r.decision.reason.is_empty());
    assert_eq!(r.target, "src/../../etc");
    assert_eq!(r.resolved_target, None);
    assert_eq!(r.fingerprint, None);
    assert_eq!(r.exit_code, None);
    assert_eq!(r.counts, TestCounts::default());
    assert!(r.tests.is_empty() && r.attempts.is_empty() && v.attempts.is_empty());
    assert_eq!(r.stdout, report::empty_stream());
    assert_eq!(r.stderr.sha256, report::empty_stream().sha256);
    let context = r.retry_context.as_ref().unwrap();
    assert_eq!(context.failure_class, FailureClass::PolicyDenied);
    assert!(!context.suggestion.is_empty());
    assert_eq!(context.error_messages.len(), 1, "the reason: {context:?}");

    let entry = v.ledger_entry.unwrap();
    assert_eq!(entry.mission.as_deref(), Some("m-1"));
    let ledger = Ledger::new(dir.path().join(".warden/ledger.jsonl"));
    let stored: Vec<_> = ledger.entries().unwrap().map(Result::unwrap).collect();
    assert_eq!(stored, [entry]);
}

#[tokio::test]
async fn each_verification_appends_one_record_with_the_mission_id() {
    let (dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed)], 1.0));
    let mut m = mission(&root, Policy::builtin(), &runner).with_mission_id(Some("m-2".into()));
    verify(&mut m, "runtime/tests").await;
    verify(&mut m, "elsewhere").await;
    let v = verify(&mut m, "runtime/tests").await;
    assert_eq!(v.ledger_entry.as_ref().map(|e| e.seq), Some(3));
    let ledger = Ledger::new(dir.path().join(".warden/ledger.jsonl"));
    let stored: Vec<_> = ledger.entries().unwrap().map(Result::unwrap).collect();
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|e| e.mission.as_deref() == Some("m-2")));
    assert_eq!(
        stored.iter().map(|e| e.report.status).collect::<Vec<_>>(),
        [RunStatus::Passed, RunStatus::Denied, RunStatus::Passed]
    );
    // The ledger does not change the tree's fingerprint.
    assert_eq!(stored[0].report.fingerprint, stored[2].report.fingerprint);

    // Without a ledger, nothing is written.
    let mut m = mission(&root, Policy::builtin(), &runner).with_ledger(None);
    let v = verify(&mut m, "runtime/tests").await;
    assert!(v.ledger_entry.is_none());
    assert_eq!(ledger.entries().unwrap().count(), 3);
}

#[tokio::test]
async fn an_exhausted_budget_refuses_the_run_before_it_starts() {
    let (_dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed)], 99.5));
    let mut m = mission(
        &root,
        policy("timeout_secs = 40\nbudget_secs = 100"),
        &runner,
    )
    .with_mission_id(Some("m-3".into()));
    let first = verify(&mut m, "runtime/tests").await;
    assert_eq!(first.report.status, RunStatus::Passed);
    assert_eq!(m.budget().spent(), Duration::from_millis(99_500));

    let v = verify(&mut m, "runtime/tests").await;
    assert_eq!(runner.calls().len(), 1, "the second run never started");
    let r = &v.report;
    assert_eq!(r.status, RunStatus::Denied);
    assert_eq!(r.failure_class, Some(FailureClass::BudgetExhausted));
    assert_eq!(v.exit_code(), 3);
    assert!(
        r.decision.allowed,
        "the policy allowed it; the budget refused"
    );
    assert_eq!(r.resolved_target.as_deref(), Some("runtime/tests"));
    assert!(r.attempts.is_empty() && v.attempts.is_empty());
    let context = r.retry_context.as_ref().unwrap();
    assert!(
        context.suggestion.contains("budget"),
        "{}",
        context.suggestion
    );
    assert!(
        context.error_messages[0].contains("99.5 s of 100.0 s spent"),
        "{:?}",
        context.error_messages
    );
}

#[tokio::test]
async fn without_a_mission_id_each_verification_has_a_fresh_budget() {
    let (_dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed)], 99.5));
    let mut m = mission(
        &root,
        policy("timeout_secs = 40\nbudget_secs = 100"),
        &runner,
    );
    for _ in 0..3 {
        let v = verify(&mut m, "runtime/tests").await;
        assert_eq!(v.report.status, RunStatus::Passed);
    }
    assert_eq!(runner.deadlines(), [Duration::from_secs(40); 3]);
}

#[tokio::test]
async fn the_budget_left_shortens_deadlines_and_skips_reruns_it_cannot_pay_for() {
    let (_dir, root) = project();
    let runner = Scripted::new(|i, _| match i {
        0 => evidence(&[(A, Passed)], 70.0),
        _ => evidence(&[(B, Failed)], 29.5),
    });
    let mut m = mission(
        &root,
        policy("timeout_secs = 40\nbudget_secs = 100"),
        &runner,
    )
    .with_mission_id(Some("m-4".into()));
    verify(&mut m, "runtime/tests").await;
    let v = verify(&mut m, "runtime/tests").await;
    assert_eq!(
        runner.deadlines(),
        [Duration::from_secs(40), Duration::from_secs(30)]
    );
    assert_noted(&v, |n| n.contains("cut from 40.0 s to the 30.0 s"));
    // 0.5 s left: the rerun is skipped, so the failure stands unconfirmed as a failure.
    assert_eq!(v.attempts.len(), 1);
    assert_eq!(v.report.failure_class, Some(FailureClass::TestFailure));
    assert_noted(&v, |n| {
        n.starts_with("rerun 1 of 2 skipped") && n.contains("budget")
    });
}

#[tokio::test]
async fn a_request_cannot_raise_the_policy_timeout_or_retries() {
    let (_dir, root) = project();
    let runner = Scripted::new(|i, _| match i {
        0 => evidence(&[(B, Failed)], 1.0),
        _ => evidence(&[(B, Failed)], 1.0),
    });
    let mut m = mission(&root, policy("timeout_secs = 40\nretries = 1"), &runner);
    let asked = VerifyRequest {
        timeout: Some(Duration::from_secs(1000)),
        retries: Some(5),
        ..request("runtime/tests")
    };
    let v = m.verify(&asked, no_history()).await.unwrap();
    assert_eq!(runner.deadlines(), [Duration::from_secs(40); 2]);
    assert_eq!(v.attempts.len(), 2, "one rerun, as the policy says");
    assert_eq!(v.notes.len(), 2, "{:?}", v.notes);

    // Lower values apply as asked.
    let runner = Scripted::new(|_, _| evidence(&[(B, Failed)], 1.0));
    let mut m = mission(&root, policy("timeout_secs = 40\nretries = 3"), &runner);
    let asked = VerifyRequest {
        timeout: Some(Duration::from_secs(5)),
        retries: Some(0),
        ..request("runtime/tests")
    };
    let v = m.verify(&asked, no_history()).await.unwrap();
    assert_eq!(runner.deadlines(), [Duration::from_secs(5)]);
    assert_eq!(v.attempts.len(), 1);
    assert!(v.notes.is_empty(), "{:?}", v.notes);
}

#[tokio::test]
async fn the_spent_budget_is_restored_from_the_ledger_for_the_same_mission_only() {
    let (dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed)], 70.0));
    let limits = "timeout_secs = 40\nbudget_secs = 100";
    let mut first = mission(&root, policy(limits), &runner).with_mission_id(Some("same".into()));
    verify(&mut first, "runtime/tests").await;

    // A new process (a new Mission) on the same ledger.
    let mut again = mission(&root, policy(limits), &runner).with_mission_id(Some("same".into()));
    verify(&mut again, "runtime/tests").await;
    let mut other = mission(&root, policy(limits), &runner).with_mission_id(Some("other".into()));
    verify(&mut other, "runtime/tests").await;
    let mut none = mission(&root, policy(limits), &runner);
    verify(&mut none, "runtime/tests").await;
    assert_eq!(
        runner.deadlines(),
        [40, 30, 40, 40].map(Duration::from_secs)
    );
    assert_eq!(again.budget().spent(), Duration::from_secs(140));
    assert_eq!(other.budget().spent(), Duration::from_secs(70));

    // A third time for `same`: 140 s spent of 100, refused.
    let mut third = mission(&root, policy(limits), &runner).with_mission_id(Some("same".into()));
    let v = verify(&mut third, "runtime/tests").await;
    assert_eq!(v.report.failure_class, Some(FailureClass::BudgetExhausted));
    assert_eq!(runner.calls().len(), 4);

    // A damaged ledger cannot vouch for the budget: nothing runs.
    let path = dir.path().join(".warden/ledger.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("runtime/tests", "runtime/tests2", 1)).unwrap();
    let err = mission(&root, policy(limits), &runner)
        .with_mission_id(Some("same".into()))
        .verify(&request("runtime/tests"), no_history())
        .await
        .unwrap_err();
    assert!(matches!(err, MissionError::Budget { ref mission, .. } if mission == "same"));
    assert!(err.to_string().contains("nothing ran"), "{err}");
    assert_eq!(runner.calls().len(), 4);
}

#[tokio::test]
async fn a_failed_append_keeps_the_report_in_the_error() {
    let (dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed)], 1.0));
    // A directory where the ledger file should be.
    let blocked = dir.path().join("blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    let err = mission(&root, Policy::builtin(), &runner)
        .with_ledger(Some(Ledger::new(&blocked)))
        .verify(&request("runtime/tests"), no_history())
        .await
        .unwrap_err();
    let report = err.report().expect("the report survives");
    assert_eq!(report.status, RunStatus::Passed);
    assert_eq!(report.attempts.len(), 1);
    assert!(matches!(err, MissionError::Ledger { .. }));
}

#[tokio::test]
async fn a_tree_that_changes_during_the_verification_proves_no_flake() {
    let (dir, root) = project();
    let file = dir.path().join("runtime/tests/test_a.py");
    let runner = Scripted::new(move |i, _| {
        if i == 0 {
            // Someone edits the code while the first attempt runs.
            std::fs::write(&file, "def test_ok():\n    assert 1\n").unwrap();
            evidence(&[(B, Failed)], 1.0)
        } else {
            evidence(&[(B, Passed)], 1.0)
        }
    });
    let v = verify(
        &mut mission(&root, Policy::builtin(), &runner),
        "runtime/tests",
    )
    .await;
    assert_eq!(v.attempts.len(), 2, "the rerun ran and is recorded");
    assert_eq!(v.report.fingerprint, None);
    assert_eq!(v.report.failure_class, Some(FailureClass::TestFailure));
    assert!(v.report.flaky_tests.is_empty());
    assert_noted(&v, |n| n.contains("changed"));
}

#[tokio::test]
async fn history_on_the_same_tree_proves_a_flake_and_on_another_tree_does_not() {
    let (_dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed), (B, Failed)], 1.0));
    let mut m = mission(&root, Policy::builtin(), &runner).with_ledger(None);
    let first = verify(&mut m, "runtime/tests").await;
    assert_eq!(first.report.failure_class, Some(FailureClass::TestFailure));
    let tree = first.report.fingerprint.clone().unwrap();

    let passed_on = |fingerprint: &str| HistoryRun {
        fingerprint: Some(fingerprint.to_owned()),
        outcomes: vec![(B.to_owned(), Passed)],
    };
    let v = m
        .verify(&request("runtime/tests"), [passed_on("another tree")])
        .await
        .unwrap();
    assert_eq!(v.report.failure_class, Some(FailureClass::TestFailure));
    let v = m
        .verify(&request("runtime/tests"), [passed_on(&tree)])
        .await
        .unwrap();
    assert_eq!(v.report.failure_class, Some(FailureClass::TestFlake));
    assert_eq!(v.report.flaky_tests, [B]);
    assert_eq!(v.exit_code(), 0);
}

#[tokio::test]
async fn history_is_not_read_when_it_cannot_matter() {
    let (_dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed)], 1.0));
    let read = Arc::new(Mutex::new(0usize));
    let counter = read.clone();
    let history = std::iter::from_fn(move || {
        *counter.lock().unwrap() += 1;
        None::<HistoryRun>
    });
    let v = mission(&root, Policy::builtin(), &runner)
        .with_ledger(None)
        .verify(&request("runtime/tests"), history)
        .await
        .unwrap();
    assert_eq!(v.report.status, RunStatus::Passed);
    assert_eq!(*read.lock().unwrap(), 0);
}

#[test]
fn a_ledger_inside_the_root_is_found_through_symlinks_and_missing_directories() {
    let (dir, root) = project();
    let root_path = root.path().as_std_path();
    assert_eq!(
        within(root_path, &dir.path().join("evidence/ledger.jsonl")),
        Some(PathBuf::from("evidence/ledger.jsonl"))
    );
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path(), outside.path().join("link")).unwrap();
    assert_eq!(
        within(root_path, &outside.path().join("link/a/b.jsonl")),
        Some(PathBuf::from("a/b.jsonl"))
    );
    assert_eq!(
        within(root_path, &outside.path().join("ledger.jsonl")),
        None
    );
    assert_eq!(within(root_path, dir.path()), None);
    assert_eq!(within(root_path, &dir.path().join("missing/../x")), None);
}

#[tokio::test]
async fn a_ledger_kept_inside_the_root_does_not_change_the_fingerprint() {
    let (dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed)], 1.0));
    let mut m = mission(&root, Policy::builtin(), &runner)
        .with_ledger(Some(Ledger::new(dir.path().join("evidence.jsonl"))));
    let one = verify(&mut m, "runtime/tests").await;
    let two = verify(&mut m, "runtime/tests").await;
    assert!(one.report.fingerprint.is_some());
    assert_eq!(one.report.fingerprint, two.report.fingerprint);
}

#[test]
fn a_verification_can_run_on_a_multi_threaded_runtime() {
    fn assert_send<T: Send>(_: &T) {}
    let (_dir, root) = project();
    let runner = Scripted::new(|_, _| evidence(&[(A, Passed)], 1.0));
    let mut m = mission(&root, Policy::builtin(), &runner);
    let request = request("runtime/tests");
    let future = m.verify(&request, no_history());
    assert_send(&future);
}

#[tokio::test]
async fn a_denial_is_reported_even_when_the_ledger_cannot_restore_the_budget() {
    let (dir, root) = project();
    let runner = Scripted::new(|_, _| unreachable!("nothing runs"));
    let path = dir.path().join(".warden/ledger.jsonl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A damaged ledger: the denial still comes back (inside the append error), while a run
    // cannot learn what the mission has spent and does not start.
    std::fs::write(&path, "not a record\n").unwrap();
    let mut m = mission(&root, Policy::builtin(), &runner).with_mission_id(Some("m".into()));
    let err = m.verify(&request("src"), no_history()).await;
    assert!(
        matches!(err, Err(MissionError::Ledger { ref report, .. }) if report.failure_class == Some(FailureClass::PolicyDenied)),
        "{err:?}"
    );
    let err = m
        .verify(&request("runtime/tests"), no_history())
        .await
        .unwrap_err();
    assert!(matches!(err, MissionError::Budget { .. }), "{err:?}");
    assert!(runner.calls().is_empty());
}
