//! End to end: the real runner, a real `python -m pytest`, the fixture projects in
//! `tests/fixtures/`, permissions from a real policy.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::{
    Files, Project, assert_nothing_written_into, processes_mentioning, python, runner,
    wait_until_gone,
};
use warden_executor::{MissionBudget, ResultsSource, RunEvidence, RunOutcome, Runner};
use warden_governance_api::{Policy, ToolRequest, Verdict};
use warden_taxonomy::{TestCounts, TestOutcome};

/// Runs `target` of a fixture under the built-in policy with its full deadline.
async fn run(fixture: &str, target: &str) -> (Project, RunEvidence) {
    let project = Project::new(fixture);
    let auth = project.authorize(target, &[], "");
    let evidence = runner().run(&auth, auth.limits().timeout).await;
    (project, evidence)
}

fn outcomes(evidence: &RunEvidence) -> BTreeMap<String, TestOutcome> {
    evidence
        .tests
        .iter()
        .map(|t| (t.nodeid.clone(), t.outcome))
        .collect()
}

fn counts(
    passed: u64,
    failed: u64,
    errors: u64,
    skipped: u64,
    xfailed: u64,
    xpassed: u64,
) -> TestCounts {
    TestCounts {
        passed,
        failed,
        errors,
        skipped,
        xfailed,
        xpassed,
        ..TestCounts::default()
    }
}

fn message<'a>(evidence: &'a RunEvidence, nodeid: &str) -> &'a str {
    evidence
        .tests
        .iter()
        .find(|t| t.nodeid == nodeid)
        .and_then(|t| t.message.as_deref())
        .unwrap_or_else(|| panic!("no message for {nodeid}: {:#?}", evidence.tests))
}

#[tokio::test]
async fn a_passing_project_passes_with_exact_node_ids() {
    let (project, ev) = run("passing", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::Passed, "{:#?}", ev.diagnostics);
    assert_eq!(ev.exit_code, Some(0));
    assert_eq!(ev.results_source, ResultsSource::Records);
    assert_eq!(ev.counts, counts(9, 0, 0, 0, 0, 0));
    let t = "runtime/tests/test_basic.py::";
    let expected: Vec<String> = [
        "runtime/tests/sub/test_deep.py::test_in_subdirectory".to_owned(),
        format!("{t}test_plain"),
        format!("{t}test_param[1]"),
        format!("{t}test_param[a b]"),
        format!("{t}test_param[x.y]"),
        format!("{t}test_param[c::d]"),
        format!("{t}test_param[e[f]]"),
        format!("{t}TestOuter::test_method"),
        format!("{t}TestOuter::TestInner::test_nested"),
    ]
    .into();
    let mut got: Vec<String> = ev.tests.iter().map(|t| t.nodeid.clone()).collect();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(
        ev.tests
            .iter()
            .all(|t| t.outcome == TestOutcome::Passed && t.duration_ms.is_some())
    );
    assert!(!ev.timed_out && ev.timed_out_test.is_none());
    assert!(ev.leaked_processes.is_empty() && ev.output_complete);
    assert!(ev.stdout.text.contains("9 passed"));
    assert_eq!(ev.stdout.sha256.len(), 64);
    // The argv is what ran: the interpreter, Warden's options, the separator, the target.
    assert_eq!(ev.argv[0], python());
    assert_eq!(ev.argv.last().map(String::as_str), Some("runtime/tests"));
    assert_nothing_written_into(project.dir.path());
}

#[tokio::test]
async fn a_failure_is_reported_with_its_message() {
    let (_project, ev) = run("failing", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::TestsFailed);
    assert_eq!(ev.exit_code, Some(1));
    assert_eq!(ev.counts, counts(1, 1, 0, 0, 0, 0));
    let failing = "runtime/tests/test_math.py::test_wrong_answer";
    assert_eq!(ev.failed_tests(), [failing]);
    assert!(message(&ev, failing).starts_with("AssertionError: the answer is wrong"));
    assert_eq!(ev.attempt().counts, ev.counts);
}

#[tokio::test]
async fn setup_and_teardown_errors_are_errors() {
    let (_project, ev) = run("setup_error", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::TestsFailed);
    // pytest counts the passing test whose teardown failed both as passed and as an error.
    assert_eq!(ev.counts, counts(2, 0, 2, 0, 0, 0));
    let t = "runtime/tests/test_fixtures.py::";
    let expected = BTreeMap::from([
        (format!("{t}test_fine"), TestOutcome::Passed),
        (format!("{t}test_setup_breaks"), TestOutcome::Error),
        (format!("{t}test_teardown_breaks"), TestOutcome::Error),
    ]);
    assert_eq!(outcomes(&ev), expected);
    assert!(message(&ev, &format!("{t}test_setup_breaks")).contains("database unavailable"));
    assert!(message(&ev, &format!("{t}test_teardown_breaks")).contains("cleanup failed"));
}

#[tokio::test]
async fn skips_xfails_and_xpasses_are_counted_exactly() {
    let (_project, ev) = run("outcomes", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::TestsFailed);
    assert_eq!(ev.counts, counts(1, 1, 0, 2, 1, 1));
    let t = "runtime/tests/test_outcomes.py::";
    let expected = BTreeMap::from([
        (format!("{t}test_passes"), TestOutcome::Passed),
        (format!("{t}test_skipped_by_marker"), TestOutcome::Skipped),
        (format!("{t}test_skipped_at_runtime"), TestOutcome::Skipped),
        (format!("{t}test_expected_failure"), TestOutcome::Xfailed),
        (format!("{t}test_unexpected_pass"), TestOutcome::Xpassed),
        (
            format!("{t}test_strict_unexpected_pass"),
            TestOutcome::Failed,
        ),
    ]);
    assert_eq!(outcomes(&ev), expected);
    assert_eq!(TestCounts::of(&ev.tests), ev.counts);
    assert_eq!(
        message(&ev, &format!("{t}test_skipped_by_marker")),
        "not today"
    );
    assert_eq!(
        message(&ev, &format!("{t}test_expected_failure")),
        "known bug"
    );
}

#[tokio::test]
async fn a_hanging_test_is_stopped_on_time_and_leaves_nothing_behind() {
    let project = Project::new("hang");
    let marker = project.marker();
    let auth = project.authorize("runtime/tests", &[], "grace_secs = 1");
    let deadline = Duration::from_secs(4);
    let started = Instant::now();
    let ev = runner().run(&auth, deadline).await;
    let took = started.elapsed();
    let latency = took.saturating_sub(deadline);
    println!(
        "hang: returned {} ms after the deadline (grace 1000 ms)",
        latency.as_millis()
    );
    assert!(ev.timed_out, "{ev:#?}");
    assert_eq!(ev.outcome, RunOutcome::TimedOut);
    assert_eq!(
        ev.timed_out_test.as_deref(),
        Some("runtime/tests/test_hang.py::test_hangs")
    );
    assert_eq!(
        ev.signal,
        Some(9),
        "the test ignores SIGTERM, so only SIGKILL stops it"
    );
    assert_eq!(ev.exit_code, None);
    assert!(took >= deadline);
    assert!(
        latency < Duration::from_millis(1000 + 1500),
        "returned {latency:?} after the deadline"
    );
    // What finished before the hang is reported.
    assert_eq!(
        outcomes(&ev),
        BTreeMap::from([(
            "runtime/tests/test_hang.py::test_quick".to_owned(),
            TestOutcome::Passed
        )])
    );
    // From the records written before the kill (pytest never ended its session), completed by
    // the output stream.
    assert_eq!(ev.results_source, ResultsSource::Records);
    assert!(ev.stdout.text.contains("grandchild holding the pipes"));
    assert!(ev.output_complete);
    assert!(
        ev.diagnostics[0].contains("deadline"),
        "{:?}",
        ev.diagnostics
    );
    // When run returns, nothing it started is alive: the process table shows no pytest and no
    // grandchild for this root.
    assert_eq!(processes_mentioning(&marker), Vec::<(i32, String)>::new());
}

#[tokio::test]
async fn dropping_a_run_kills_its_process_group() {
    let project = Project::new("hang");
    let marker = project.marker();
    let auth = project.authorize("runtime/tests", &[], "");
    let runner = runner();
    let run = runner.run(&auth, auth.limits().timeout);
    // Give pytest time to reach the hanging test and start the grandchild, then cancel.
    assert!(
        tokio::time::timeout(Duration::from_secs(3), run)
            .await
            .is_err()
    );
    let left = wait_until_gone(&marker, Duration::from_secs(2));
    assert!(left.is_empty(), "still alive after cancellation: {left:?}");
}

#[tokio::test]
async fn leftover_processes_are_killed_and_reported() {
    let (project, ev) = run("leaky", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::Passed, "{:#?}", ev.diagnostics);
    assert_eq!(ev.leaked_processes.len(), 2, "{:#?}", ev.leaked_processes);
    let escaped: Vec<bool> = ev
        .leaked_processes
        .iter()
        .map(|p| p.escaped_group)
        .collect();
    assert!(escaped.contains(&true) && escaped.contains(&false));
    assert!(
        ev.leaked_processes
            .iter()
            .all(|p| p.command.contains(&project.marker()))
    );
    assert!(ev.diagnostics.iter().any(|d| d.contains("were killed")));
    assert!(processes_mentioning(&project.marker()).is_empty());
}

#[tokio::test]
async fn invalid_utf8_output_is_kept_as_replacement_characters() {
    let (_project, ev) = run("invalid_utf8", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::Passed, "{:#?}", ev.diagnostics);
    assert_eq!(ev.counts.passed, 2);
    assert!(
        ev.stdout
            .text
            .contains("bad bytes: \u{FFFD}\u{FFFD}\u{FFFD}( end"),
        "{}",
        ev.stdout.text
    );
    assert!(
        ev.stderr.text.contains("bad stderr: \u{FFFD}\u{FFFD}"),
        "{}",
        ev.stderr.text
    );
    // pytest escapes non-ASCII parameter ids; the node id is what pytest says it is.
    assert!(
        outcomes(&ev).contains_key("runtime/tests/test_bytes.py::test_unicode_id[caf\\xe9]"),
        "{:?}",
        outcomes(&ev)
    );
}

#[tokio::test]
async fn a_syntax_error_is_a_collection_failure_named_as_such() {
    let (_project, ev) = run("syntax_error", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::CollectionFailed);
    assert_eq!(ev.exit_code, Some(2));
    assert_eq!(ev.collection_errors.len(), 1, "{:#?}", ev.collection_errors);
    let error = &ev.collection_errors[0];
    assert_eq!(error.path.as_deref(), Some("runtime/tests/test_broken.py"));
    assert!(error.syntax_error && !error.conftest);
    assert!(
        error.message.starts_with("SyntaxError"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains("runtime/tests/test_broken.py, line 4"),
        "{}",
        error.message
    );
    assert_eq!(
        outcomes(&ev),
        BTreeMap::from([(
            "runtime/tests/test_broken.py".to_owned(),
            TestOutcome::Error
        )])
    );
    assert_eq!(ev.counts.errors, 1);
    assert!(
        ev.failed_tests().is_empty(),
        "a file is not a test to rerun"
    );
}

#[tokio::test]
async fn an_import_error_is_a_collection_failure() {
    let (_project, ev) = run("import_error", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::CollectionFailed);
    let error = &ev.collection_errors[0];
    assert_eq!(error.path.as_deref(), Some("runtime/tests/test_imports.py"));
    assert!(!error.syntax_error);
    assert_eq!(
        error.message,
        "ModuleNotFoundError: No module named 'warden_fixture_missing_module'"
    );
}

#[tokio::test]
async fn a_broken_conftest_is_a_usage_error_with_the_conftest_named() {
    let (_project, ev) = run("broken_conftest", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::UsageError);
    assert_eq!(ev.exit_code, Some(4));
    let error = &ev.collection_errors[0];
    assert!(error.conftest && !error.syntax_error);
    assert_eq!(error.path.as_deref(), Some("runtime/tests/conftest.py"));
    assert!(
        error.message.contains("warden_fixture_missing_plugin"),
        "{}",
        error.message
    );
    assert!(
        ev.diagnostics.iter().any(|d| d.contains("conftest")),
        "{:?}",
        ev.diagnostics
    );
    assert!(ev.tests.is_empty());
}

#[tokio::test]
async fn a_conftest_that_does_not_parse_is_a_syntax_error() {
    let (_project, ev) = run("conftest_syntax_error", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::UsageError);
    let error = &ev.collection_errors[0];
    assert!(error.conftest && error.syntax_error, "{error:?}");
    assert!(
        error.message.contains("runtime/tests/conftest.py, line 4"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_empty_directory_collects_no_tests() {
    let (_project, ev) = run("empty", "runtime/tests").await;
    assert_eq!(ev.outcome, RunOutcome::NoTests);
    assert_eq!(ev.exit_code, Some(5));
    assert_eq!(ev.counts, TestCounts::default());
    assert!(ev.tests.is_empty());
}

#[tokio::test]
async fn a_missing_interpreter_is_infrastructure() {
    let project = Project::new("passing");
    let auth = project.authorize("runtime/tests", &[], "");
    let ev = warden_executor::PytestRunner::new()
        .with_python("/nonexistent/bin/python3")
        .run(&auth, auth.limits().timeout)
        .await;
    assert_eq!(ev.outcome, RunOutcome::Infrastructure);
    assert_eq!((ev.exit_code, ev.signal), (None, None));
    assert!(ev.diagnostics[0].contains("`/nonexistent/bin/python3` was not found"));
    assert!(ev.diagnostics[0].contains("install Python 3"));
}

#[tokio::test]
async fn a_python_without_pytest_is_infrastructure() {
    let venv = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(venv.path())
        .status()
        .expect("python3 must exist to build a virtualenv without pytest");
    assert!(status.success());
    let bare = venv.path().join("bin/python").display().to_string();
    let project = Project::new("passing");
    let policy = format!("python = \"{bare}\"");
    let auth = project.authorize("runtime/tests", &[], &policy);
    let ev = runner().run(&auth, auth.limits().timeout).await;
    assert_eq!(ev.outcome, RunOutcome::Infrastructure, "{ev:#?}");
    assert_eq!(
        ev.argv[0], bare,
        "the policy's interpreter wins over the runner's"
    );
    assert!(
        ev.diagnostics[0].contains(&format!("{bare} -m pip install pytest")),
        "{:?}",
        ev.diagnostics
    );
}

#[tokio::test]
async fn the_environment_is_an_allowlist() {
    let project = Project::new("environment");
    // Everything in this process's environment that the run must not see, and one name the
    // policy lets through.
    let allowed = "CARGO_PKG_NAME";
    let base = ["PATH", "HOME", "LANG", "TMPDIR"];
    let absent: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| !base.contains(&k.as_str()) && !k.starts_with("LC_") && k != allowed)
        .filter(|k| {
            !["PYTHONPYCACHEPREFIX", "PYTHONPATH", "PYTHONUNBUFFERED"].contains(&k.as_str())
        })
        .collect();
    assert!(!absent.is_empty());
    let present: Vec<&str> = std::env::var_os(allowed)
        .map(|_| allowed)
        .into_iter()
        .collect();
    let spec = serde_json::json!({
        "absent": absent,
        "present": present,
        "root": project.marker(),
    });
    std::fs::write(
        project
            .dir
            .path()
            .join("runtime/tests/env_expectations.json"),
        spec.to_string(),
    )
    .unwrap();
    let auth = project.authorize(
        "runtime/tests",
        &[],
        &format!("env_allow = [\"{allowed}\"]"),
    );
    let ev = runner().run(&auth, auth.limits().timeout).await;
    assert_eq!(ev.outcome, RunOutcome::Passed, "{}", ev.stdout.text);
}

#[tokio::test]
async fn a_projects_addopts_cannot_override_warden() {
    // The ini's `--junitxml` and `--log-file` name these paths, outside the root.
    let outside = [
        "/tmp/warden-hostile-ini-report.xml",
        "/tmp/warden-hostile-ini.log",
    ];
    let modified = || outside.map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let before = modified();
    let project = Project::new("hostile_ini");
    let auth = project.authorize("runtime/tests", &[], "");
    assert_eq!(auth.addopts(), ["-x", "-q"]);
    let dropped: Vec<&str> = auth
        .addopts_dropped()
        .iter()
        .map(|(i, _)| i.as_str())
        .collect();
    assert_eq!(
        dropped,
        [
            "--junitxml=/tmp/warden-hostile-ini-report.xml",
            "--log-file=/tmp/warden-hostile-ini.log"
        ]
    );
    let ev = runner().run(&auth, auth.limits().timeout).await;
    assert_eq!(
        modified(),
        before,
        "the ini's options wrote outside the root: {outside:?}"
    );
    assert_eq!(ev.outcome, RunOutcome::TestsFailed);
    // Stopped by the kept -x as bare pytest would be, still verbose, and Warden's own records
    // were written and read.
    assert_eq!(ev.results_source, ResultsSource::Records);
    assert_eq!(ev.counts, counts(0, 1, 0, 0, 0, 0));
    assert!(
        ev.stdout
            .text
            .contains("test_ini.py::test_fails_first FAILED"),
        "{}",
        ev.stdout.text
    );
}

#[tokio::test]
async fn a_projects_addopts_that_would_block_the_output_warden_reads_refuse_the_run() {
    let project = Project::new("hostile_ini");
    std::fs::write(
        project.root.path().join("pytest.ini"),
        "[pytest]\naddopts = -q -p no:terminal\n",
    )
    .unwrap();
    let request = ToolRequest::pytest_run("runtime/tests", Vec::<String>::new());
    let Verdict::Denied(decision) = Policy::builtin().authorize(&project.root, &request) else {
        panic!("a project's `-p no:terminal` was allowed");
    };
    assert!(
        decision.reason.contains("`pytest.ini` [pytest]"),
        "{}",
        decision.reason
    );
    assert!(
        decision.reason.contains("`-p no:terminal`"),
        "{}",
        decision.reason
    );
}

#[tokio::test]
async fn a_projects_addopts_select_tests_as_under_bare_pytest() {
    let project = Project::new("passing");
    std::fs::write(
        project.root.path().join("pytest.ini"),
        "[pytest]\nmarkers =\n    slow: long\naddopts = -m \"not slow\" --strict-markers -p no:logging -p no:junitxml\n",
    )
    .unwrap();
    std::fs::write(
        project.root.path().join("runtime/tests/test_slow.py"),
        "import pytest\n\n@pytest.mark.slow\ndef test_slow():\n    assert False\n\ndef test_fast():\n    pass\n",
    )
    .unwrap();
    let all = project.authorize("runtime/tests", &[], "");
    let ev = runner().run(&all, all.limits().timeout).await;
    assert_eq!(ev.outcome, RunOutcome::Passed, "{}", ev.stdout.text);
    assert!(outcomes(&ev).contains_key("runtime/tests/test_slow.py::test_fast"));
    assert!(!outcomes(&ev).contains_key("runtime/tests/test_slow.py::test_slow"));
    // pytest's JUnit writer switched off takes nothing from Warden: its own records were read.
    assert_eq!(ev.results_source, ResultsSource::Records);
}

/// A conftest that leaves `<its directory>/<name>` behind when pytest imports it.
fn marking_conftest(name: &str) -> String {
    format!("import pathlib\npathlib.Path(__file__).with_name({name:?}).write_text('ran')\n")
}

#[tokio::test]
async fn configuration_above_the_root_is_never_read_or_run() {
    let outer_conftest = marking_conftest("outer-conftest-ran");
    let test = ("runtime/tests/test_x.py", "def test_x():\n    pass\n");
    // Above the root: a configuration that would collect nothing from the root (no file
    // matches), and a conftest that marks that it ran. The second layout gives the root a
    // pyproject.toml without pytest settings, which pytest passes over on its way up.
    let layouts: [(Files<'_>, Files<'_>); 2] = [
        (
            &[
                ("pytest.ini", "[pytest]\npython_files = nothing_*.py\n"),
                ("conftest.py", &outer_conftest),
            ],
            &[test],
        ),
        (
            &[
                ("tox.ini", "[pytest]\npython_files = nothing_*.py\n"),
                ("conftest.py", &outer_conftest),
            ],
            &[test, ("pyproject.toml", "[project]\nname = \"demo\"\n")],
        ),
    ];
    for (outside, inside) in layouts {
        let (project, outer) = Project::below(outside, inside);
        let auth = project.authorize("runtime/tests", &[], "");
        let ev = runner().run(&auth, auth.limits().timeout).await;
        assert!(
            !outer.join("outer-conftest-ran").exists(),
            "a conftest above the root ran: {:?}",
            ev.argv
        );
        assert_eq!(ev.outcome, RunOutcome::Passed, "{}", ev.stdout.text);
        assert_eq!(
            outcomes(&ev),
            BTreeMap::from([(
                "runtime/tests/test_x.py::test_x".to_owned(),
                TestOutcome::Passed
            )])
        );
    }
}

#[tokio::test]
async fn configuration_and_conftests_inside_the_root_still_apply() {
    let root_conftest = format!(
        "{}import pytest\n\n@pytest.fixture\ndef answer():\n    return 42\n",
        marking_conftest("root-conftest-ran")
    );
    let inside = [
        ("pytest.ini", "[pytest]\npython_files = check_*.py\n"),
        ("conftest.py", root_conftest.as_str()),
        (
            "runtime/tests/check_answer.py",
            "def test_answer(answer):\n    assert answer == 42\n",
        ),
        (
            "runtime/tests/test_ignored.py",
            "def test_ignored():\n    assert False\n",
        ),
    ];
    let (project, _outer) = Project::below(&[], &inside);
    let auth = project.authorize("runtime/tests", &[], "");
    let ev = runner().run(&auth, auth.limits().timeout).await;
    assert!(project.root.path().join("root-conftest-ran").exists());
    assert_eq!(ev.outcome, RunOutcome::Passed, "{}", ev.stdout.text);
    assert_eq!(
        outcomes(&ev),
        BTreeMap::from([(
            "runtime/tests/check_answer.py::test_answer".to_owned(),
            TestOutcome::Passed
        )])
    );
}

#[tokio::test]
async fn failed_tests_can_be_rerun_by_node_id() {
    let project = Project::new("failing");
    let auth = project.authorize("runtime/tests", &["-x"], "");
    let runner = runner();
    let first = runner.run(&auth, auth.limits().timeout).await;
    let rerun = auth
        .narrow(&first.failed_tests())
        .expect("narrowed within scope");
    let second = runner.run(&rerun, rerun.limits().timeout).await;
    assert_eq!(
        outcomes(&second),
        BTreeMap::from([(
            "runtime/tests/test_math.py::test_wrong_answer".to_owned(),
            TestOutcome::Failed
        )])
    );
    assert!(second.argv.contains(&"-x".to_owned()));
    // The runner published its progress while the run streamed.
    let progress = runner.progress().borrow().clone();
    assert!(!progress.running);
    assert_eq!(
        (progress.collected, progress.finished, progress.failures),
        (Some(1), 1, 1)
    );
}

#[tokio::test]
async fn deadlines_are_clamped_to_the_policy_and_the_budget() {
    let project = Project::new("passing");
    let auth = project.authorize("runtime/tests", &[], "timeout_secs = 30\nbudget_secs = 45");
    let runner = runner();
    let ev = runner.run(&auth, Duration::from_secs(3600)).await;
    assert_eq!(ev.deadline_ms, 30_000);
    let mut budget = MissionBudget::from_limits(auth.limits());
    budget.charge(Duration::from_secs(25));
    let ev = budget.run(&runner, &auth).await.unwrap();
    assert_eq!(
        ev.deadline_ms, 20_000,
        "what is left of the budget, not the 30 s timeout"
    );
    assert_eq!(budget.spent(), Duration::from_secs(25) + ev.duration());
    budget.charge(Duration::from_secs(20));
    assert!(budget.run(&runner, &auth).await.is_err());
}

#[tokio::test]
async fn a_permission_for_another_tool_runs_nothing() {
    let project = Project::new("passing");
    let request = ToolRequest {
        tool: "fs".into(),
        action: "write".into(),
        args: warden_governance_api::RequestArgs {
            target: Some("runtime/tests/test_basic.py".into()),
            extra_args: vec![],
        },
    };
    let Verdict::Allowed(auth) = Policy::builtin().authorize(&project.root, &request) else {
        panic!("the built-in policy allows writes in the root");
    };
    let ev = runner().run(&auth, Duration::from_secs(10)).await;
    assert_eq!(ev.outcome, RunOutcome::Infrastructure);
    assert!(ev.argv.is_empty());
    assert!(ev.diagnostics[0].contains("not pytest/run"));
}

#[tokio::test]
async fn an_escaped_process_holding_the_pipes_is_found_and_killed() {
    let project = Project::new("escaper");
    let auth = project.authorize(
        "runtime/tests/test_escape.py::test_escapes_holding_the_pipes",
        &[],
        "",
    );
    let started = Instant::now();
    let ev = runner().run(&auth, auth.limits().timeout).await;
    assert_eq!(ev.outcome, RunOutcome::Passed, "{:#?}", ev.diagnostics);
    assert!(
        ev.output_complete,
        "the pipes closed once the escaper was killed"
    );
    assert_eq!(ev.leaked_processes.len(), 1, "{:#?}", ev.leaked_processes);
    assert!(ev.leaked_processes[0].escaped_group);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(processes_mentioning(&project.marker()).is_empty());
}

/// The known gap: a process that leaves the group and drops its environment is out of reach.
/// Warden does not hang on the pipes it holds, and says the output may be incomplete.
#[tokio::test]
async fn a_process_out_of_reach_cannot_hold_the_run_open() {
    let project = Project::new("escaper");
    let auth = project.authorize(
        "runtime/tests/test_escape.py::test_escapes_with_an_empty_environment",
        &[],
        "",
    );
    let ev = runner().run(&auth, auth.limits().timeout).await;
    let strangers = processes_mentioning(&project.marker());
    for (pid, _) in &strangers {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_eq!(
        strangers.len(),
        1,
        "the stranger escaped Warden: {strangers:?}"
    );
    assert_eq!(ev.outcome, RunOutcome::Passed, "{:#?}", ev.diagnostics);
    assert!(!ev.output_complete);
    assert!(ev.leaked_processes.is_empty());
    assert!(
        ev.diagnostics
            .iter()
            .any(|d| d.contains("kept the output pipes open"))
    );
    assert!(
        ev.stdout.text.contains("1 passed"),
        "pytest's own output was all read"
    );
    assert!(ev.duration() < Duration::from_secs(10));
}
