//! The start gate, with real pytest runs: nothing of the code under test runs before the gate
//! opens, and nothing at all when its key is dropped unopened, whether the run is confined by
//! the sandbox (whose helper is already setting up and waits on its standard input) or not.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::path::Path;
use std::time::Duration;

use support::{Files, Project, runner, wait_until_gone};
use warden_executor::{GateKey, PytestRunner, RunEvidence, RunOutcome, Runner, StartGate};

/// A conftest that leaves a mark in the root the moment pytest loads it.
const FILES: Files<'static> = &[
    (
        "runtime/tests/conftest.py",
        "open('started', 'w').close()\n",
    ),
    ("runtime/tests/test_x.py", "def test_x():\n    pass\n"),
];

/// Far longer than the interpreter takes to reach the conftest when nothing holds it back.
const HELD: Duration = Duration::from_millis(2500);

fn runners() -> [(&'static str, PytestRunner); 2] {
    [
        ("unconfined", runner()),
        (
            "confined",
            runner().with_sandbox_launcher(warden_e2e::warden_bin()),
        ),
    ]
}

fn started(root: &Path) -> bool {
    root.join("started").exists()
}

/// A run of the fixture by `runner` behind a closed gate, which [`HELD`] later gets `then`
/// (opened or dropped). Returns the project, the evidence, and whether a test had started
/// while the gate was still closed.
async fn behind_a_gate(
    runner: &PytestRunner,
    then: impl FnOnce(GateKey),
) -> (Project, RunEvidence, bool) {
    let (project, _) = Project::below(&[], FILES);
    let root = project.root.path().as_std_path().to_owned();
    let auth = project.authorize("runtime/tests", &[], "");
    let (key, gate) = StartGate::closed();
    let later = async {
        tokio::time::sleep(HELD).await;
        let early = started(&root);
        then(key);
        early
    };
    let (evidence, early) =
        tokio::join!(runner.run_gated(&auth, auth.limits().timeout, gate), later);
    (project, evidence, early)
}

#[tokio::test]
async fn no_test_code_runs_before_the_gate_opens() {
    for (how, runner) in runners() {
        let (project, evidence, early) = behind_a_gate(&runner, GateKey::open).await;
        assert!(!early, "{how}: a test started before the gate opened");
        assert_eq!(
            evidence.outcome,
            RunOutcome::Passed,
            "{how}: {:?}",
            evidence.diagnostics
        );
        assert!(started(project.root.path().as_std_path()), "{how}");
        assert_eq!(
            evidence.sandbox.as_ref().is_some_and(|s| s.enforced),
            how == "confined",
            "{how}: {:?}",
            evidence.sandbox
        );
    }
}

#[tokio::test]
async fn a_gate_whose_key_is_dropped_runs_nothing_and_leaves_nothing() {
    for (how, runner) in runners() {
        let (project, evidence, early) = behind_a_gate(&runner, drop).await;
        assert!(
            !early,
            "{how}: a test started before the gate was called off"
        );
        assert_eq!(evidence.outcome, RunOutcome::Infrastructure, "{how}");
        assert!(
            evidence
                .diagnostics
                .iter()
                .any(|d| d.contains("called off")),
            "{how}: {:?}",
            evidence.diagnostics
        );
        assert!(
            !started(project.root.path().as_std_path()),
            "{how}: a test ran"
        );
        let left = wait_until_gone(&project.marker(), Duration::from_secs(2));
        assert!(left.is_empty(), "{how}: still alive: {left:?}");
    }
}
