//! End to end, with real pytest: verdicts must be earned. A run that ends early is not a pass
//! whatever its exit code, nothing at the root stands in for pytest or the standard library,
//! and no ini key makes pytest write where Warden did not say.

mod support;

use support::{Files, Project, RECORDS_PATH_PY, plant, runner};
use warden_executor::{RunEvidence, RunOutcome, Runner};
use warden_governance_api::Root;

/// A project made of `files`, in a fresh temporary root.
#[allow(clippy::expect_used)] // a failed step is a failed test
fn project(files: Files<'_>) -> Project {
    let dir = tempfile::tempdir().expect("temporary directory");
    plant(dir.path(), files);
    let root = Root::new(dir.path()).expect("root");
    Project { dir, root }
}

async fn run_files(files: Files<'_>) -> (Project, RunEvidence) {
    let project = project(files);
    let auth = project.authorize("runtime/tests", &[], "");
    let evidence = runner().run(&auth, auth.limits().timeout).await;
    (project, evidence)
}

/// Six tests; `test_2` is `body`.
fn six_tests(body: &str) -> String {
    let mut text = String::from("import os, sys\n\n");
    for i in 1..=6 {
        if i == 2 {
            text.push_str(&format!("def test_{i}():\n    {body}\n\n"));
        } else {
            text.push_str(&format!("def test_{i}():\n    pass\n\n"));
        }
    }
    text
}

/// Six passing tests under `conftest`: pytest exits 0, yet the run must be interrupted, with a
/// diagnostic containing `expected`.
async fn six_passing_tests_under(conftest: &str, expected: &str) {
    let (_p, ev) = run_files(&[
        ("runtime/tests/conftest.py", conftest),
        ("runtime/tests/test_six.py", &six_tests("pass")),
    ])
    .await;
    assert_eq!(ev.exit_code, Some(0));
    assert_interrupted(&ev, expected);
}

fn assert_interrupted(ev: &RunEvidence, expected: &str) {
    assert_eq!(ev.outcome, RunOutcome::Interrupted, "{ev:#?}");
    assert!(
        ev.diagnostics.iter().any(|d| d.contains(expected)),
        "expected a diagnostic containing {expected:?}: {:?}",
        ev.diagnostics
    );
}

#[tokio::test]
async fn a_test_that_exits_0_after_one_of_six_is_interrupted_not_passed() {
    // The example of issue 10: exit 0, no summary line, no report.
    let tests = six_tests("os._exit(0)");
    let (_p, ev) = run_files(&[("runtime/tests/test_six.py", &tests)]).await;
    assert_eq!(ev.exit_code, Some(0));
    assert_interrupted(
        &ev,
        "pytest exited 0 after 1 of 6 collected tests; no summary line, an incomplete report",
    );
}

#[tokio::test]
async fn records_forged_to_look_complete_do_not_make_an_early_exit_a_pass() {
    // The test writes the session's end into the records and leaves: the records look
    // complete, but pytest's output does not.
    let forge = format!(
        "path = {RECORDS_PATH_PY}; f = open(path, 'a'); f.write('{{\"end\": 0}}\\n'); f.close(); os._exit(0)"
    );
    let tests = six_tests(&forge);
    let (_p, ev) = run_files(&[("runtime/tests/test_six.py", &tests)]).await;
    assert_eq!(ev.exit_code, Some(0));
    assert_interrupted(
        &ev,
        "pytest exited 0 after 1 of 6 collected tests; no summary line",
    );
}

#[tokio::test]
async fn a_conftest_that_closes_the_records_descriptor_does_not_make_a_pass() {
    // The descriptor is found through /proc and closed, then a file of the test's own takes
    // its number: the plugin's later writes fail or land in that file, never in the records.
    let conftest = "import os\n\ndef pytest_collection_finish(session):\n    for fd in os.listdir('/proc/self/fd'):\n        try:\n            target = os.readlink('/proc/self/fd/' + fd)\n        except OSError:\n            continue\n        if target.endswith('records.jsonl'):\n            os.close(int(fd))\n            os.open(os.devnull, os.O_WRONLY)\n";
    six_passing_tests_under(
        conftest,
        "with 6 of 6 collected tests reported; an incomplete report",
    )
    .await;
}

#[tokio::test]
async fn a_conftest_that_unregisters_warden_s_plugin_does_not_make_a_pass() {
    // pytest registers the plugin under no name (no `-p no:NAME` reaches it), but a conftest
    // can still find it among the plugins and take it out: then there are no records.
    let conftest = "def pytest_configure(config):\n    for plugin in list(config.pluginmanager.get_plugins()):\n        if hasattr(plugin, 'pytest_runtest_logreport') and type(plugin).__module__ == '__main__':\n            config.pluginmanager.unregister(plugin)\n";
    six_passing_tests_under(
        conftest,
        "with 6 of 6 collected tests reported; an incomplete report",
    )
    .await;
}

#[tokio::test]
async fn a_fixture_that_exits_0_is_interrupted() {
    let conftest = "import os, pytest\n\n@pytest.fixture\ndef boom():\n    os._exit(0)\n";
    let tests = six_tests("pass").replace("def test_4():", "def test_4(boom):");
    let (_p, ev) = run_files(&[
        ("runtime/tests/conftest.py", conftest),
        ("runtime/tests/test_six.py", &tests),
    ])
    .await;
    assert_eq!(ev.exit_code, Some(0));
    assert_interrupted(&ev, "after 3 of 6 collected tests");
}

#[tokio::test]
async fn a_conftest_that_exits_0_at_session_finish_is_interrupted() {
    let conftest = "import os\n\ndef pytest_sessionfinish(session, exitstatus):\n    os._exit(0)\n";
    let (_p, ev) = run_files(&[
        ("runtime/tests/conftest.py", conftest),
        ("runtime/tests/test_six.py", &six_tests("pass")),
    ])
    .await;
    assert_eq!(ev.exit_code, Some(0));
    assert_interrupted(&ev, "no summary line");
    // A failing test, then exit 0 before pytest reports: the failure stands.
    let (_p, ev) = run_files(&[
        ("runtime/tests/conftest.py", conftest),
        ("runtime/tests/test_six.py", &six_tests("assert False")),
    ])
    .await;
    assert_eq!(ev.outcome, RunOutcome::TestsFailed, "{ev:#?}");
}

#[tokio::test]
async fn sys_exit_0_from_a_plugin_hook_is_not_a_pass() {
    // At session finish, before pytest prints its counts: every test passed, nothing says so.
    let conftest =
        "import sys\n\ndef pytest_sessionfinish(session, exitstatus):\n    sys.exit(0)\n";
    let (_p, ev) = run_files(&[
        ("runtime/tests/conftest.py", conftest),
        ("runtime/tests/test_six.py", &six_tests("pass")),
    ])
    .await;
    assert_eq!(ev.exit_code, Some(0));
    assert_interrupted(&ev, "with 6 of 6 collected tests reported; no summary line");

    // At unconfigure, after everything was reported: the run is complete, and a failure in
    // it is a failure, whatever the exit status says.
    let conftest = "import sys\n\ndef pytest_unconfigure(config):\n    sys.exit(0)\n";
    let (_p, ev) = run_files(&[
        ("runtime/tests/conftest.py", conftest),
        ("runtime/tests/test_six.py", &six_tests("assert False")),
    ])
    .await;
    assert_eq!(ev.exit_code, Some(0));
    assert_eq!(ev.outcome, RunOutcome::TestsFailed, "{ev:#?}");
    assert!(
        ev.diagnostics[0].starts_with("pytest exited 0 but reported 1 failed or errored tests"),
        "{:?}",
        ev.diagnostics
    );
}

#[tokio::test]
async fn a_deleted_report_is_not_a_pass() {
    // Every test passes and pytest prints its counts, but the records Warden reads are
    // removed at the very end (their path follows Warden's program on the command line).
    let conftest =
        format!("import os\n\ndef pytest_unconfigure(config):\n    os.remove({RECORDS_PATH_PY})\n");
    six_passing_tests_under(&conftest, "with 6 of 6 collected tests reported; no report").await;
}

#[tokio::test]
async fn a_killed_pytest_is_not_a_pass() {
    let tests = six_tests("import signal; os.kill(os.getpid(), signal.SIGKILL)");
    let (_p, ev) = run_files(&[("runtime/tests/test_six.py", &tests)]).await;
    assert_eq!(ev.outcome, RunOutcome::Crashed, "{ev:#?}");
    assert_eq!(ev.signal, Some(9));
}

#[tokio::test]
async fn a_complete_run_still_passes() {
    let tests = six_tests("pass");
    let (_p, ev) = run_files(&[("runtime/tests/test_six.py", &tests)]).await;
    assert_eq!(ev.outcome, RunOutcome::Passed, "{ev:#?}");
    assert_eq!(ev.counts.passed, 6);
    assert!(ev.diagnostics.is_empty(), "{:?}", ev.diagnostics);
    assert_eq!(
        ev.stderr.text, "",
        "the bootstrap must not make pytest complain"
    );
}

/// A fake `pytest` session, as a module standing in for pytest would print it before exiting 0.
const FAKE_SESSION: &str = "import os\nos.makedirs('shadow-ran', exist_ok=True)\nprint('=== test session starts ===')\nprint('collected 1 item')\nprint('runtime/tests/test_real.py::test_fails PASSED [100%]')\nprint('=== 1 passed in 0.01s ===')\nraise SystemExit(0)\n";

#[tokio::test]
async fn nothing_at_the_root_stands_in_for_pytest_or_the_standard_library() {
    // Every module pytest needs, shadowed at the root; the tests still import a module of the
    // root, as they may under `python -m pytest`.
    let (p, ev) = run_files(&[
        ("pytest.py", FAKE_SESSION),
        ("_pytest/__init__.py", FAKE_SESSION),
        ("pluggy/__init__.py", FAKE_SESSION),
        ("fnmatch.py", FAKE_SESSION),
        ("argparse.py", FAKE_SESSION),
        ("iniconfig.py", FAKE_SESSION),
        ("helper_at_root.py", "VALUE = 42\n"),
        (
            "runtime/tests/test_real.py",
            "import helper_at_root\n\ndef test_imports_from_the_root():\n    assert helper_at_root.VALUE == 42\n\ndef test_fails():\n    assert False, 'real'\n",
        ),
    ])
    .await;
    assert!(
        !p.dir.path().join("shadow-ran").exists(),
        "a module at the root ran"
    );
    // The real session: one pass (the root module imported), one real failure.
    assert_eq!(ev.outcome, RunOutcome::TestsFailed, "{ev:#?}");
    assert_eq!((ev.counts.passed, ev.counts.failed), (1, 1));
    let fails = ev
        .tests
        .iter()
        .find(|t| t.nodeid == "runtime/tests/test_real.py::test_fails")
        .expect("the real result");
    assert_eq!(fails.outcome, warden_taxonomy::TestOutcome::Failed);
}

#[tokio::test]
async fn a_python_without_safe_path_is_refused_as_infrastructure() {
    // Python 3.10 and older do not know `-P`; a stand-in answers as they do.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("python3.10");
    warden_e2e::write_executable(
        &fake,
        "#!/bin/sh\necho 'Unknown option: -P' >&2\necho 'usage: python3.10 [option] ... [-c cmd | -m mod | file | -] [arg] ...' >&2\nexit 2\n",
    );
    let project = project(&[("runtime/tests/test_a.py", "def test_a():\n    pass\n")]);
    let auth = project.authorize(
        "runtime/tests",
        &[],
        &format!("python = \"{}\"", fake.display()),
    );
    let ev = runner().run(&auth, auth.limits().timeout).await;
    assert_eq!(ev.outcome, RunOutcome::Infrastructure, "{ev:#?}");
    assert!(
        ev.diagnostics[0].contains("Warden needs Python 3.11 or later"),
        "{:?}",
        ev.diagnostics
    );
}

#[tokio::test]
async fn ini_keys_cannot_make_pytest_write_outside_the_root_or_hide_progress() {
    let outside = tempfile::tempdir().unwrap();
    let log = outside.path().join("truncated.log");
    std::fs::write(&log, "precious").unwrap();
    let cache = outside.path().join("cache");
    let ini = format!(
        "[pytest]\nlog_file = {}\nlog_file_level = INFO\nlog_file_mode = w\ncache_dir = {}\nverbosity_test_cases = 0\n",
        log.display(),
        cache.display()
    );
    let (_p, ev) = run_files(&[
        ("pytest.ini", &ini),
        (
            "runtime/tests/test_log.py",
            "import logging\n\ndef test_logs():\n    logging.getLogger('x').warning('into the log file')\n",
        ),
    ])
    .await;
    assert_eq!(ev.outcome, RunOutcome::Passed, "{ev:#?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "precious");
    assert!(!cache.exists(), "the cache directory was written");
    assert!(
        ev.stdout
            .text
            .contains("runtime/tests/test_log.py::test_logs PASSED"),
        "progress lines were hidden: {}",
        ev.stdout.text
    );
}
